//! Route 53 announcements against moto's server on loopback. moto checks the API contract:
//! the signed requests are accepted (and, in `signatures_and_permissions_are_checked`, their
//! SigV4 signatures and IAM permissions are verified), the record sets are what we wrote, the
//! change reaches INSYNC. It serves no DNS and evaluates no health check.

use std::time::{Duration, Instant};

use drfailover_dns::aws::credentials::{load_credentials, AwsIdentity};
use drfailover_dns::aws::{AwsClient, AwsError};
use drfailover_dns::retry::RetryPolicy;
use drfailover_dns::route53::{RecordSet, Route53Announcer};
use drfailover_dns::{
    AnnounceError, AnnounceOutcome, Announcer, NodeAddress, Route53Config, WriterChange,
};
use drfailover_testkit::http_recorder::HttpServer;
use drfailover_testkit::moto::{create_hosted_zone, xml_text, MotoServer};

const SECRET: &str = "drfailoverTESTsecretKEY0123456789abcdefXY";

fn moto() -> MotoServer {
    MotoServer::start().unwrap_or_else(|e| panic!("{e}"))
}

fn env_with(key: &str, secret: &str) -> impl Fn(&str) -> Option<String> {
    let (key, secret) = (key.to_string(), secret.to_string());
    move |name| match name {
        "AWS_ACCESS_KEY_ID" => Some(key.clone()),
        "AWS_SECRET_ACCESS_KEY" => Some(secret.clone()),
        _ => None,
    }
}

fn identity(key: &str, secret: &str) -> AwsIdentity {
    load_credentials(None, &env_with(key, secret)).unwrap()
}

fn policy() -> RetryPolicy {
    RetryPolicy {
        attempts: 3,
        per_attempt: Duration::from_secs(5),
        base_delay: Duration::from_millis(50),
        max_delay: Duration::from_millis(200),
    }
}

fn soon() -> Instant {
    Instant::now() + Duration::from_secs(20)
}

fn client(endpoint: &str, service: &'static str, key: &str, secret: &str) -> AwsClient {
    AwsClient::new(
        endpoint,
        service,
        "us-east-1".into(),
        identity(key, secret),
        policy(),
    )
    .unwrap()
}

/// Create hosted zone `example.test.` and return its id.
fn create_zone(route53: &AwsClient) -> String {
    create_hosted_zone(route53, "example.test.").unwrap()
}

fn roxmltree_id(xml: &str, tag: &str) -> String {
    xml_text(xml, tag).unwrap_or_else(|| panic!("no <{tag}> in {xml}"))
}

fn config(endpoint: &str, zone: &str, failover: bool) -> Route53Config {
    Route53Config {
        hosted_zone_id: zone.into(),
        name: "db.example.test".into(),
        failover,
        ttl: None,
        profile: None,
        region: None,
        endpoint: Some(endpoint.into()),
        timeout_ms: 5000,
        attempts: 3,
        insync_timeout_ms: 10_000,
        addresses: Default::default(),
    }
}

fn announcer(config: &Route53Config, key: &str, secret: &str) -> Route53Announcer {
    Route53Announcer::with_env(config, &env_with(key, secret)).unwrap_or_else(|e| panic!("{e}"))
}

fn change(old: Option<&str>, new: &str) -> WriterChange {
    WriterChange {
        old_writer: old.map(|h| NodeAddress::new("old", h)),
        new_writer: NodeAddress::new("new", new),
    }
}

#[test]
fn simple_record_upsert_reaches_insync() {
    let moto = moto();
    let zone = create_zone(&client(&moto.endpoint(), "route53", "AKIDTEST", SECRET));
    let r53 = announcer(&config(&moto.endpoint(), &zone, false), "AKIDTEST", SECRET);
    assert!(
        r53.describe().contains("db.example.test."),
        "{}",
        r53.describe()
    );
    assert!(!r53.describe().contains(SECRET));

    // No record yet: created.
    let outcome = r53.announce(&change(None, "10.0.0.1"), soon()).unwrap();
    assert!(
        matches!(outcome, AnnounceOutcome::Changed { .. }),
        "{outcome:?}"
    );
    assert_eq!(r53.current(soon()).unwrap(), ["A 10.0.0.1"]);

    // Compare-and-swap with the old writer.
    let outcome = r53
        .announce(&change(Some("10.0.0.1"), "10.0.0.2"), soon())
        .unwrap();
    assert_eq!(
        outcome,
        AnnounceOutcome::Changed {
            published: "A 10.0.0.2".into(),
            attempts: 1
        }
    );
    assert_eq!(r53.current(soon()).unwrap(), ["A 10.0.0.2"]);
    // What moto holds, read back through the API.
    let sets = r53.list(soon()).unwrap();
    let a: Vec<&RecordSet> = sets.iter().filter(|s| s.rtype == "A").collect();
    assert_eq!(a.len(), 1);
    assert_eq!(a[0].values, ["10.0.0.2"]);
    assert_eq!(a[0].ttl, Some(60));

    // Again: already current. A stale old writer: someone else changed it, nothing sent.
    let again = r53
        .announce(&change(Some("10.0.0.1"), "10.0.0.2"), soon())
        .unwrap();
    assert!(matches!(again, AnnounceOutcome::AlreadyCurrent { .. }));
    let err = r53
        .announce(&change(Some("10.0.0.1"), "10.0.0.3"), soon())
        .unwrap_err();
    assert!(err.is_conflict(), "{err}");
    assert_eq!(r53.current(soon()).unwrap(), ["A 10.0.0.2"]);

    // A name: the A is deleted and a CNAME written, in one batch.
    r53.announce(&change(Some("10.0.0.2"), "db3.example.test"), soon())
        .unwrap();
    assert_eq!(r53.current(soon()).unwrap(), ["CNAME db3.example.test."]);
}

#[test]
fn failover_pair_keeps_identifiers_and_health_checks() {
    let moto = moto();
    let route53 = client(&moto.endpoint(), "route53", "AKIDTEST", SECRET);
    let zone = create_zone(&route53);
    let hc_body = r#"<?xml version="1.0" encoding="UTF-8"?><CreateHealthCheckRequest xmlns="https://route53.amazonaws.com/doc/2013-04-01/"><CallerReference>hc-primary</CallerReference><HealthCheckConfig><IPAddress>10.0.0.1</IPAddress><Port>3306</Port><Type>TCP</Type><RequestInterval>10</RequestInterval><FailureThreshold>3</FailureThreshold></HealthCheckConfig></CreateHealthCheckRequest>"#;
    let (reply, _) = route53
        .call(
            "POST",
            "/2013-04-01/healthcheck",
            Some(("text/xml", hc_body)),
            soon(),
        )
        .unwrap();
    let health_check = roxmltree_id(&reply, "Id");

    let r53 = announcer(&config(&moto.endpoint(), &zone, true), "AKIDTEST", SECRET);
    // Without the pair: a clear error.
    let err = r53
        .announce(&change(Some("10.0.0.1"), "10.0.0.2"), soon())
        .unwrap_err();
    assert!(err.to_string().contains("no PRIMARY"), "{err}");

    let pair = |role: &str, ip: &str, hc: Option<&str>| RecordSet {
        name: "db.example.test.".into(),
        rtype: "A".into(),
        set_identifier: Some(format!("db-{}", role.to_ascii_lowercase())),
        failover: Some(role.into()),
        ttl: Some(10),
        values: vec![ip.into()],
        health_check_id: hc.map(str::to_string),
        alias: false,
    };
    r53.apply(
        &[
            ("CREATE", pair("PRIMARY", "10.0.0.1", Some(&health_check))),
            ("CREATE", pair("SECONDARY", "10.0.0.2", None)),
        ],
        soon(),
    )
    .unwrap();

    // Promote the SECONDARY's node: PRIMARY → it, SECONDARY → the old writer.
    let outcome = r53
        .announce(&change(Some("10.0.0.1"), "10.0.0.2"), soon())
        .unwrap();
    assert!(
        matches!(outcome, AnnounceOutcome::Changed { .. }),
        "{outcome:?}"
    );
    let mut sets = r53.list(soon()).unwrap();
    sets.sort_by(|a, b| a.failover.cmp(&b.failover));
    assert_eq!(sets.len(), 2, "{sets:?}");
    assert_eq!(sets[0], pair("PRIMARY", "10.0.0.2", Some(&health_check)));
    assert_eq!(sets[1], pair("SECONDARY", "10.0.0.1", None));
    let shown = r53.current(soon()).unwrap();
    assert!(
        shown.contains(&"A 10.0.0.2 (PRIMARY, db-primary)".to_string()),
        "{shown:?}"
    );
}

#[test]
fn invalid_change_batch_is_not_retried() {
    let moto = moto();
    let zone = create_zone(&client(&moto.endpoint(), "route53", "AKIDTEST", SECRET));
    let r53 = announcer(&config(&moto.endpoint(), &zone, false), "AKIDTEST", SECRET);
    r53.announce(&change(None, "10.0.0.1"), soon()).unwrap();
    let mut outside = r53
        .list(soon())
        .unwrap()
        .into_iter()
        .find(|s| s.rtype == "A")
        .unwrap();
    // A record outside the hosted zone: InvalidChangeBatch.
    outside.name = "db.elsewhere.test.".into();
    let started = Instant::now();
    let err = r53.apply(&[("CREATE", outside)], soon()).unwrap_err();
    assert!(
        matches!(err, AnnounceError::Call(AwsError::Rejected { .. })),
        "{err}"
    );
    assert!(err.to_string().contains("InvalidChangeBatch"), "{err}");
    assert!(started.elapsed() < Duration::from_secs(2));
}

#[test]
fn signatures_and_permissions_are_checked() {
    // moto checks SigV4 signatures and IAM policies after the first 3 requests.
    let moto = MotoServer::start_with_auth(3).unwrap_or_else(|e| panic!("{e}"));
    let iam_boot = client(&moto.endpoint(), "iam", "AKIDBOOT", SECRET);
    let form = |body: &str| Some(("application/x-www-form-urlencoded", body.to_string()));
    let iam = |c: &AwsClient, body: &str| {
        let (ct, b) = form(body).unwrap();
        c.call("POST", "/", Some((ct, &b)), soon())
            .unwrap_or_else(|e| panic!("{body}: {e}"))
            .0
    };
    iam(
        &iam_boot,
        "Action=CreateUser&UserName=admin&Version=2010-05-08",
    );
    let reply = iam(
        &iam_boot,
        "Action=CreateAccessKey&UserName=admin&Version=2010-05-08",
    );
    let (admin_key, admin_secret) = (
        roxmltree_id(&reply, "AccessKeyId"),
        roxmltree_id(&reply, "SecretAccessKey"),
    );
    let policy = "%7B%22Version%22%3A%222012-10-17%22%2C%22Statement%22%3A%5B%7B%22Effect%22%3A%22Allow%22%2C%22Action%22%3A%22*%22%2C%22Resource%22%3A%22*%22%7D%5D%7D";
    iam(
        &iam_boot,
        &format!("Action=PutUserPolicy&UserName=admin&PolicyName=all&PolicyDocument={policy}&Version=2010-05-08"),
    );
    // From here on, every request is verified.
    let admin_iam = client(&moto.endpoint(), "iam", &admin_key, &admin_secret);
    iam(
        &admin_iam,
        "Action=CreateUser&UserName=weak&Version=2010-05-08",
    );
    let reply = iam(
        &admin_iam,
        "Action=CreateAccessKey&UserName=weak&Version=2010-05-08",
    );
    let (weak_key, weak_secret) = (
        roxmltree_id(&reply, "AccessKeyId"),
        roxmltree_id(&reply, "SecretAccessKey"),
    );
    let zone = create_zone(&client(
        &moto.endpoint(),
        "route53",
        &admin_key,
        &admin_secret,
    ));
    let config = config(&moto.endpoint(), &zone, false);

    // Correctly signed with the admin's keys: accepted.
    let r53 = announcer(&config, &admin_key, &admin_secret);
    r53.announce(&change(None, "10.0.0.1"), soon()).unwrap();
    assert_eq!(r53.current(soon()).unwrap(), ["A 10.0.0.1"]);

    let mut printed = format!("{r53:?}\n{}\n", r53.describe());
    // Wrong secret: the signature does not match; a clear credentials error, not retried.
    let wrong = announcer(&config, &admin_key, SECRET);
    let started = Instant::now();
    let err = wrong
        .announce(&change(Some("10.0.0.1"), "10.0.0.2"), soon())
        .unwrap_err();
    assert!(
        matches!(err, AnnounceError::Call(AwsError::Credentials(_))),
        "{err}"
    );
    assert!(started.elapsed() < Duration::from_secs(3));
    printed += &format!("{wrong:?}\n{err}\n{err:?}\n");
    // Valid keys without permission: AccessDenied, not retried.
    let weak = announcer(&config, &weak_key, &weak_secret);
    let err = weak
        .announce(&change(Some("10.0.0.1"), "10.0.0.2"), soon())
        .unwrap_err();
    assert!(
        matches!(err, AnnounceError::Call(AwsError::Refused { .. })),
        "{err}"
    );
    assert!(err.to_string().contains("AccessDenied"), "{err}");
    printed += &format!("{weak:?}\n{err}\n{err:?}\n");
    assert_eq!(r53.current(soon()).unwrap(), ["A 10.0.0.1"]);
    for secret in [SECRET, admin_secret.as_str(), weak_secret.as_str()] {
        assert!(!printed.contains(secret), "secret printed:\n{printed}");
    }
}

#[test]
fn endpoint_down_is_a_bounded_error() {
    let mut moto = moto();
    let endpoint = moto.endpoint();
    moto.stop();
    let mut config = config(&endpoint, "Z123", false);
    config.timeout_ms = 500;
    let r53 = announcer(&config, "AKIDTEST", SECRET);
    let started = Instant::now();
    let err = r53
        .announce(&change(None, "10.0.0.1"), started + Duration::from_secs(3))
        .unwrap_err();
    assert!(
        matches!(err, AnnounceError::Call(AwsError::Timeout { .. })),
        "{err}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(4),
        "{:?}",
        started.elapsed()
    );
    assert!(!format!("{err}{err:?}").contains(SECRET));
}

#[test]
fn throttling_and_5xx_are_retried_client_errors_are_not() {
    // A real HTTP server of ours answering 503, 503, then 200.
    let flaky = HttpServer::start(vec![503, 503, 200]);
    let c = client(&flaky.url(""), "route53", "AKIDTEST", SECRET);
    let (_, attempts) = c
        .call("GET", "/2013-04-01/change/C1", None, soon())
        .unwrap();
    assert_eq!(attempts, 3);
    assert_eq!(flaky.received().len(), 3);
    // The request is signed (Authorization header), which the test server does not check.
    for (status, variant) in [(403u16, "Refused"), (400, "Rejected")] {
        let server = HttpServer::start(vec![status]);
        let c = client(&server.url(""), "route53", "AKIDTEST", SECRET);
        let err = c.call("GET", "/x", None, soon()).unwrap_err();
        assert!(format!("{err:?}").starts_with(variant), "{err:?}");
        assert_eq!(server.received().len(), 1, "retried a {status}");
    }
}

#[test]
fn missing_credentials_and_bad_config_are_clear() {
    let config = config("http://127.0.0.1:9", "Z123", false);
    // No keys anywhere, and never the real instance metadata endpoint.
    let none = |name: &str| (name == "AWS_EC2_METADATA_DISABLED").then(|| "true".to_string());
    let err = Route53Announcer::with_env(&config, &none).unwrap_err();
    assert!(err.to_string().contains("no AWS credentials"), "{err}");
    let mut bad = config.clone();
    bad.hosted_zone_id = "not a zone!".into();
    let err = Route53Announcer::with_env(&bad, &env_with("A", SECRET)).unwrap_err();
    assert!(err.to_string().contains("hosted_zone_id"), "{err}");
    let mut bad = config;
    bad.endpoint = Some("ftp://x".into());
    let err = Route53Announcer::with_env(&bad, &env_with("A", SECRET)).unwrap_err();
    assert!(err.to_string().contains("endpoint"), "{err}");
}

const LIST_A_10_0_0_1: &str = r#"<?xml version="1.0"?><ListResourceRecordSetsResponse xmlns="https://route53.amazonaws.com/doc/2013-04-01/"><ResourceRecordSets><ResourceRecordSet><Name>db.example.test.</Name><Type>A</Type><TTL>60</TTL><ResourceRecords><ResourceRecord><Value>10.0.0.1</Value></ResourceRecord></ResourceRecords></ResourceRecordSet></ResourceRecordSets><IsTruncated>false</IsTruncated><MaxItems>20</MaxItems></ListResourceRecordSetsResponse>"#;

fn change_info(status: &str) -> String {
    format!(
        r#"<?xml version="1.0"?><ChangeResourceRecordSetsResponse xmlns="https://route53.amazonaws.com/doc/2013-04-01/"><ChangeInfo><Id>/change/C42</Id><Status>{status}</Status><SubmittedAt>2026-01-01T00:00:00Z</SubmittedAt></ChangeInfo></ChangeResourceRecordSetsResponse>"#
    )
}

const THROTTLED: &str = r#"<?xml version="1.0"?><ErrorResponse xmlns="https://route53.amazonaws.com/doc/2013-04-01/"><Error><Type>Sender</Type><Code>Throttling</Code><Message>Rate exceeded</Message></Error><RequestId>r</RequestId></ErrorResponse>"#;

/// moto answers INSYNC at once; a scripted server of ours (real HTTP on loopback) plays
/// Route 53's PENDING → INSYNC and its throttling.
#[test]
fn pending_change_is_polled_until_insync_and_throttling_is_retried() {
    let server = HttpServer::start_with_replies(vec![
        (200, LIST_A_10_0_0_1.into()),
        (400, THROTTLED.into()),
        (200, change_info("PENDING")),
        (200, change_info("PENDING")),
        (200, change_info("INSYNC")),
    ]);
    let r53 = announcer(&config(&server.url(""), "Z42", false), "AKIDTEST", SECRET);
    let outcome = r53
        .announce(&change(Some("10.0.0.1"), "10.0.0.2"), soon())
        .unwrap();
    assert_eq!(
        outcome,
        AnnounceOutcome::Changed {
            published: "A 10.0.0.2".into(),
            attempts: 2
        }
    );
    let lines: Vec<String> = server.received().into_iter().map(|(l, _)| l).collect();
    assert_eq!(lines.len(), 5, "{lines:?}");
    assert!(lines[0].starts_with("GET /2013-04-01/hostedzone/Z42/rrset?name=db.example.test."));
    assert!(lines[1].starts_with("POST /2013-04-01/hostedzone/Z42/rrset/"));
    assert!(lines[2].starts_with("POST /2013-04-01/hostedzone/Z42/rrset/"));
    assert!(
        lines[3].starts_with("GET /2013-04-01/change/C42"),
        "{lines:?}"
    );
    assert!(
        lines[4].starts_with("GET /2013-04-01/change/C42"),
        "{lines:?}"
    );
    let body = &server.received()[2].1;
    assert!(body.contains("<Action>UPSERT</Action>"), "{body}");
    assert!(body.contains("<Value>10.0.0.2</Value>"), "{body}");
}

#[test]
fn change_never_insync_is_a_bounded_error() {
    let server = HttpServer::start_with_replies(vec![
        (200, LIST_A_10_0_0_1.into()),
        (200, change_info("PENDING")),
    ]);
    let mut config = config(&server.url(""), "Z42", false);
    config.insync_timeout_ms = 800;
    let r53 = announcer(&config, "AKIDTEST", SECRET);
    let started = Instant::now();
    let err = r53
        .announce(&change(Some("10.0.0.1"), "10.0.0.2"), soon())
        .unwrap_err();
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );
    assert!(
        matches!(err, AnnounceError::Call(AwsError::Timeout { .. }))
            && err.to_string().contains("still PENDING"),
        "{err}"
    );
}

#[test]
fn throttling_that_persists_is_bounded() {
    let server = HttpServer::start_with_replies(vec![(400, THROTTLED.into())]);
    let mut config = config(&server.url(""), "Z42", false);
    config.attempts = 3;
    let r53 = announcer(&config, "AKIDTEST", SECRET);
    let err = r53.current(soon()).unwrap_err();
    assert!(
        matches!(err, AnnounceError::Call(AwsError::Server { .. })),
        "{err}"
    );
    assert!(err.to_string().contains("Throttling"), "{err}");
    assert_eq!(server.received().len(), 3);
}
