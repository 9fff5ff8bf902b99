//! SNS publish against moto's server on loopback, delivered to an HTTP subscription on our own
//! test server (moto POSTs each published message to HTTP subscribers, without its message
//! attributes: those are checked in what moto recorded, through its `/moto-api/` introspection).
#![cfg(feature = "sns")]

use std::time::{Duration, Instant};

use drfailover_dns::aws::credentials::load_credentials;
use drfailover_dns::aws::AwsClient;
use drfailover_dns::retry::RetryPolicy;
use drfailover_dns::{SnsConfig, SnsPublisher};
use drfailover_notify::{Event, EventKind};
use drfailover_testkit::http_recorder::HttpServer;
use drfailover_testkit::moto::{create_topic, MotoServer};

const SECRET: &str = "drfailoverSNSsecretKEY0123456789abcdefXYZ";

fn env(name: &str) -> Option<String> {
    match name {
        "AWS_ACCESS_KEY_ID" => Some("AKIDSNS".into()),
        "AWS_SECRET_ACCESS_KEY" => Some(SECRET.into()),
        _ => None,
    }
}

fn soon() -> Instant {
    Instant::now() + Duration::from_secs(20)
}

fn config(endpoint: &str, topic_arn: &str) -> SnsConfig {
    SnsConfig {
        topic_arn: topic_arn.into(),
        region: None,
        profile: None,
        endpoint: Some(endpoint.into()),
        timeout_ms: 5000,
        attempts: 3,
        queue: 16,
    }
}

#[test]
fn events_are_published_with_attributes_and_delivered() {
    let moto = MotoServer::start().unwrap_or_else(|e| panic!("{e}"));
    let sns = AwsClient::new(
        &moto.endpoint(),
        "sns",
        "eu-west-1".into(),
        load_credentials(None, &env).unwrap(),
        RetryPolicy {
            attempts: 2,
            per_attempt: Duration::from_secs(5),
            base_delay: Duration::from_millis(50),
            max_delay: Duration::from_millis(100),
        },
    )
    .unwrap();
    let form = "application/x-www-form-urlencoded";
    let topic = create_topic(&sns, "db-failover").unwrap();
    assert!(topic.starts_with("arn:aws:sns:eu-west-1:"), "{topic}");
    let subscriber = HttpServer::start(vec![200]);
    let subscribe = format!(
        "Action=Subscribe&TopicArn={}&Protocol=http&Endpoint={}&Version=2010-03-31",
        topic.replace(':', "%3A"),
        subscriber
            .url("/sns")
            .replace(':', "%3A")
            .replace('/', "%2F")
    );
    sns.call("POST", "/", Some((form, &subscribe)), soon())
        .unwrap();

    let publisher = SnsPublisher::with_env(&config(&moto.endpoint(), &topic), &env).unwrap();
    assert!(!format!("{publisher:?}").contains(SECRET));
    let epoch = Instant::now();
    let event = Event::new(EventKind::FailoverCompleted, 1, 2, epoch)
        .writers(Some("10.0.0.1:3306".into()), Some("10.0.0.2:3306".into()))
        .reason("primary 10.0.0.1 unreachable; replica promoted");
    let id = publisher.publish(&event, soon()).unwrap();
    assert!(!id.is_empty());

    // Through the asynchronous sink too: dropping it drains the queue.
    let sink = publisher.into_sink().unwrap();
    sink.offer(&Event::new(EventKind::FailoverStarted, 1, 2, epoch).reason("writer lost"));
    drop(sink);

    let received = subscriber.received();
    assert_eq!(received.len(), 2, "{received:?}");
    let first: serde_json::Value = serde_json::from_str(&received[0].1).unwrap();
    assert_eq!(first["Type"], "Notification");
    assert_eq!(first["TopicArn"], topic.as_str());
    assert_eq!(first["Subject"], "drfailover: failover_completed");
    let message: serde_json::Value =
        serde_json::from_str(first["Message"].as_str().unwrap()).unwrap();
    assert_eq!(message["kind"], "failover_completed");
    assert_eq!(message["new_writer"], "10.0.0.2:3306");
    let second: serde_json::Value = serde_json::from_str(&received[1].1).unwrap();
    assert_eq!(second["Subject"], "drfailover: failover_started");

    // moto does not forward message attributes to HTTP subscribers; check them in what moto
    // recorded for the topic (its introspection API, /moto-api/data.json).
    let data: serde_json::Value =
        serde_json::from_str(&moto.get("/moto-api/data.json").unwrap()).unwrap();
    let topics = data["sns"]["Topic"]
        .as_array()
        .expect("sns topics in moto's data");
    let recorded = topics
        .iter()
        .find(|t| t["arn"] == topic.as_str())
        .expect("our topic in moto's data");
    let sent = recorded["sent_notifications"].as_array().unwrap();
    assert_eq!(sent.len(), 2, "{sent:?}");
    // (message_id, message, subject, message_attributes, group_id)
    assert_eq!(sent[0][0], id.as_str());
    let attributes = &sent[0][3];
    assert_eq!(
        attributes["kind"]["Value"], "failover_completed",
        "{attributes}"
    );
    assert_eq!(attributes["kind"]["Type"], "String", "{attributes}");
    assert_eq!(
        attributes["new_writer"]["Value"], "10.0.0.2:3306",
        "{attributes}"
    );
    assert_eq!(
        attributes["old_writer"]["Value"], "10.0.0.1:3306",
        "{attributes}"
    );
    assert_eq!(attributes["generation"]["Type"], "Number", "{attributes}");
    assert_eq!(attributes["generation"]["Value"], "2", "{attributes}");
    assert_eq!(sent[1][3]["kind"]["Value"], "failover_started");
    for (_, body) in &received {
        assert!(!body.contains(SECRET));
    }
}

#[test]
fn bad_configuration_is_clear() {
    // No keys anywhere, and never the real instance metadata endpoint.
    let none = |name: &str| (name == "AWS_EC2_METADATA_DISABLED").then(|| "true".to_string());
    let err = SnsPublisher::with_env(
        &config("http://127.0.0.1:9", "arn:aws:sns:eu-west-1:1:t"),
        &none,
    )
    .unwrap_err();
    assert!(err.to_string().contains("no AWS credentials"), "{err}");
    let err = SnsPublisher::with_env(&config("http://127.0.0.1:9", "arn:aws:sns::1:t"), &env)
        .unwrap_err();
    assert!(err.to_string().contains("no region"), "{err}");
    let err =
        SnsPublisher::with_env(&config("http://127.0.0.1:9", "db-failover"), &env).unwrap_err();
    assert!(err.to_string().contains("topic_arn"), "{err}");
    // Credentials in the endpoint URL: refused, never printed.
    let err = SnsPublisher::with_env(
        &config(
            "http://admin:hunter2pw@127.0.0.1:9",
            "arn:aws:sns:eu-west-1:1:t",
        ),
        &env,
    )
    .unwrap_err();
    assert!(
        err.to_string().contains("credentials") && !err.to_string().contains("hunter2pw"),
        "{err}"
    );
}

#[test]
fn endpoint_down_is_bounded() {
    let mut moto = MotoServer::start().unwrap_or_else(|e| panic!("{e}"));
    let endpoint = moto.endpoint();
    moto.stop();
    let mut config = config(&endpoint, "arn:aws:sns:eu-west-1:1:t");
    config.timeout_ms = 300;
    let publisher = SnsPublisher::with_env(&config, &env).unwrap();
    let started = Instant::now();
    let event = Event::new(EventKind::FailoverStarted, 1, 1, started);
    let err = publisher
        .publish(&event, started + Duration::from_secs(2))
        .unwrap_err();
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );
    assert!(!format!("{err}{err:?}").contains(SECRET), "{err:?}");
}
