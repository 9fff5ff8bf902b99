//! The real `bootstrap` binary under the Lambda runtime emulator, against moto (RDS, Route 53,
//! SNS, Secrets Manager) with real `mariadbd` nodes behind the endpoints (see `rig/mod.rs`).
//! Every case checks what changed (promotions, record changes, SNS messages) and, where a
//! failover happens, the data.

mod rig;

use std::time::{Duration, Instant};

use drfailover_testkit::wait::eventually;
use rig::{
    alarm_event, rds_event, set_id, Options, Rig, AWS_SECRET, AWS_TOKEN, PROBE_PASSWORD,
    PROBE_PASSWORD_ROTATED,
};
use serde_json::Value;

const ROWS: u32 = 50;

/// Write `ROWS` rows on the primary and wait until the replica applied them.
fn write_rows(rig: &Rig) {
    let t = rig.topology.lock().unwrap();
    let primary = t.node(0);
    primary
        .sql("CREATE TABLE app.lambda_rows (id INT PRIMARY KEY, note VARCHAR(20))")
        .unwrap();
    for i in 0..ROWS {
        primary
            .sql(&format!(
                "INSERT INTO app.lambda_rows VALUES ({i}, 'before')"
            ))
            .unwrap();
    }
    t.wait_replicated(0, 1).unwrap();
}

/// Every acknowledged row is on node `i`, which takes a new write.
fn check_data_on(rig: &Rig, i: usize) {
    let t = rig.topology.lock().unwrap();
    let node = t.node(i);
    let count = node
        .sql_value("SELECT COUNT(*) FROM app.lambda_rows WHERE note = 'before'")
        .unwrap();
    assert_eq!(
        count.as_deref(),
        Some(ROWS.to_string().as_str()),
        "rows lost or duplicated"
    );
    node.sql("INSERT INTO app.lambda_rows VALUES (1000, 'after')")
        .unwrap();
}

/// Wait (bounded) until the harness's RDS has finished the promotion it started.
fn wait_promoted(rig: &Rig) {
    eventually(
        "the harness promotes the replica",
        Duration::from_secs(60),
        || {
            let part = rig.rds.lock().unwrap();
            assert!(
                part.errors.is_empty(),
                "promotion failed: {:?}",
                part.errors
            );
            part.writable_at.ok_or_else(|| "not yet".to_string())
        },
    );
}

fn assert_no_secrets(rig: &Rig) {
    let logs = rig.function_logs();
    let secrets = [
        AWS_SECRET,
        AWS_TOKEN,
        drfailover_testkit::APP_PASSWORD,
        PROBE_PASSWORD,
        PROBE_PASSWORD_ROTATED,
    ];
    for secret in secrets {
        assert!(
            !logs.contains(secret),
            "a secret in the function's log:\n{logs}"
        );
    }
    for (_, body) in rig.sns_messages() {
        let text = body.to_string();
        for secret in secrets {
            assert!(!text.contains(secret), "a secret in an SNS message: {text}");
        }
    }
}

fn swapped(rig: &Rig) -> bool {
    let records = rig.records();
    records.iter().any(|r| r.0 == "PRIMARY" && r.1 == rig.ip(1))
}

#[test]
fn primary_killed_promotes_waits_for_writable_then_swaps_once() {
    // The probe's account comes from Secrets Manager here (the other tests give it as
    // variables), and its password is rotated after the function read it: the replica
    // probed (read-only, then writable) proves the function read the secret again.
    let rig = Rig::start(Options {
        probe_secret: true,
        ..Options::default()
    });
    write_rows(&rig);
    eventually(
        "the function read the probe's secret",
        Duration::from_secs(60),
        || {
            let logs = rig.function_logs();
            if logs.contains("probe account") {
                Ok(())
            } else {
                Err(logs)
            }
        },
    );
    rig.rotate_probe_secret();
    let before = rig.records();
    rig.kill_primary();

    let (status, reply) = rig.emulator.invoke(&alarm_event("ALARM"));
    assert_eq!(status, 200, "{reply}");
    assert_eq!(reply["outcome"], "failed-over", "{reply:#}");

    // One promotion, and the record changed only once the replica was writable (read by the
    // proxy when the change arrived, before forwarding it).
    wait_promoted(&rig);
    assert_eq!(rig.changes(), (1, 1), "promotions, record changes");
    assert_eq!(rig.rds.lock().unwrap().read_only_at_change, ["0"]);
    // The pair swapped roles, keeping SetIdentifier, HealthCheckId and TTL.
    let after = rig.records();
    assert_eq!(
        after,
        vec![
            (
                "PRIMARY".to_string(),
                rig.ip(1),
                set_id("PRIMARY"),
                before[0].3.clone(),
                "1".to_string()
            ),
            (
                "SECONDARY".to_string(),
                rig.ip(0),
                set_id("SECONDARY"),
                None,
                "1".to_string()
            ),
        ],
        "before: {before:?}"
    );
    assert_eq!(before[0].3.as_deref(), Some(rig.health_check.as_str()));
    // One SNS message saying what was seen and done.
    let messages = rig.sns_messages();
    assert_eq!(messages.len(), 1, "{messages:?}");
    let (subject, body) = &messages[0];
    assert!(subject.contains("failed-over"), "{subject}");
    assert_eq!(body["outcome"], "failed-over");
    let summary = body["summary"].as_str().unwrap();
    assert!(
        summary.contains("promoted db2") && summary.contains("stopped"),
        "{summary}"
    );
    assert!(body["steps"].as_array().unwrap().len() >= 6, "{body:#}");
    check_data_on(&rig, 1);
    // Read at start, and once more when the replica refused the old password.
    let fetched = rig.proxy.requests("GetSecretValue");
    assert_eq!(fetched.len(), 2, "{fetched:?}");
    for request in &fetched {
        assert_eq!(request.status, 200, "{fetched:?}");
        assert!(
            request
                .body
                .contains(rig.probe_secret_arn.as_deref().unwrap()),
            "{fetched:?}"
        );
    }
    assert!(body.to_string().contains("holds a new account"), "{body:#}");
    assert_no_secrets(&rig);
}

#[test]
fn alarm_on_a_healthy_primary_changes_nothing_and_says_so() {
    let rig = Rig::start(Options::default());
    let before = rig.records();
    let (status, reply) = rig.emulator.invoke(&alarm_event("ALARM"));
    assert_eq!(status, 200, "{reply}");
    assert_eq!(reply["outcome"], "no-action", "{reply:#}");
    assert_eq!(rig.changes(), (0, 0));
    assert_eq!(rig.records(), before);
    let messages = rig.sns_messages();
    assert_eq!(messages.len(), 1, "{messages:?}");
    assert_eq!(messages[0].1["outcome"], "no-action");
    assert!(
        messages[0].1["summary"]
            .as_str()
            .unwrap()
            .contains("probe: writable; RDS: available"),
        "{:#}",
        messages[0].1
    );
    // OK and foreign events: ignored, nothing published.
    for event in [
        alarm_event("OK"),
        serde_json::json!({"source": "aws.s3", "detail-type": "Object Created", "detail": {}}),
        rds_event("db9", "failure", "RDS-EVENT-0031"),
    ] {
        let (status, reply) = rig.emulator.invoke(&event);
        assert_eq!(status, 200, "{reply}");
        assert_eq!(reply["outcome"], "ignored", "{reply:#}");
    }
    assert_eq!(rig.sns_messages().len(), 1);
    assert_no_secrets(&rig);
}

#[test]
fn the_same_event_twice_and_two_at_once_make_one_promotion_and_one_change() {
    let rig = Rig::start(Options {
        functions: 2,
        ..Options::default()
    });
    write_rows(&rig);
    rig.kill_primary();
    let event = rds_event("db1", "failure", "RDS-EVENT-0031");
    // Two invocations at once (two function instances), then the same event again.
    let replies: Vec<(u16, Value)> = std::thread::scope(|s| {
        let a = s.spawn(|| rig.emulator.invoke(&event));
        let b = s.spawn(|| rig.emulator.invoke(&event));
        vec![a.join().unwrap(), b.join().unwrap()]
    });
    let again = rig.emulator.invoke(&event);
    for (status, reply) in replies.iter().chain([&again]) {
        assert_eq!(*status, 200, "{reply:#}");
        assert!(
            ["failed-over", "already-done"].contains(&reply["outcome"].as_str().unwrap()),
            "{reply:#}"
        );
    }
    assert_eq!(again.1["outcome"], "already-done", "{:#}", again.1);
    // Two function processes handled them: they overlapped in time.
    assert_ne!(
        replies[0].1["process"], replies[1].1["process"],
        "{replies:#?}"
    );
    wait_promoted(&rig);
    assert_eq!(rig.changes(), (1, 1), "promotions, record changes");
    assert_eq!(rig.rds.lock().unwrap().promotions, 1);
    assert!(swapped(&rig), "{:?}", rig.records());
    let failed_over = replies
        .iter()
        .filter(|(_, r)| r["outcome"] == "failed-over")
        .count();
    assert_eq!(failed_over, 1, "{replies:#?}");
    assert_eq!(rig.sns_messages().len(), 3);
    check_data_on(&rig, 1);
    assert_no_secrets(&rig);
}

#[test]
fn a_record_already_swapped_by_someone_else_is_left_alone() {
    let rig = Rig::start(Options::default());
    write_rows(&rig);
    rig.kill_primary();
    // Someone else promoted the replica and swapped the pair.
    rig.topology.lock().unwrap().promote(1).unwrap();
    let swap = |rig: &Rig| {
        use drfailover_dns::route53::Route53Announcer;
        let env = |name: &str| match name {
            "AWS_ACCESS_KEY_ID" => Some("AKIDOTHER".to_string()),
            "AWS_SECRET_ACCESS_KEY" => Some("other-secret".to_string()),
            _ => None,
        };
        let r53 = Route53Announcer::with_env(
            &drfailover_dns::Route53Config {
                hosted_zone_id: rig.zone.clone(),
                name: rig::RECORD.into(),
                failover: true,
                ttl: None,
                profile: None,
                region: Some(rig::REGION.into()),
                endpoint: Some(rig.moto.endpoint()),
                timeout_ms: 5000,
                attempts: 3,
                insync_timeout_ms: 10_000,
                addresses: Default::default(),
            },
            &env,
        )
        .unwrap();
        drfailover_dns::Announcer::announce(
            &r53,
            &drfailover_dns::WriterChange {
                old_writer: Some(drfailover_dns::NodeAddress::new("db1", rig.ip(0))),
                new_writer: drfailover_dns::NodeAddress::new("db2", rig.ip(1)),
            },
            Instant::now() + Duration::from_secs(20),
        )
        .unwrap();
    };
    swap(&rig);
    let before = rig.records();
    let (status, reply) = rig.emulator.invoke(&alarm_event("ALARM"));
    assert_eq!(status, 200, "{reply}");
    assert_eq!(reply["outcome"], "already-done", "{reply:#}");
    assert_eq!(rig.changes(), (0, 0), "promotions, record changes");
    assert_eq!(rig.records(), before);
    let messages = rig.sns_messages();
    assert_eq!(messages.len(), 1);
    assert!(
        messages[0].1["summary"]
            .as_str()
            .unwrap()
            .contains("someone else acted"),
        "{:#}",
        messages[0].1
    );
    check_data_on(&rig, 1);
}

#[test]
fn throttling_and_5xx_are_retried_within_the_deadline_then_an_error_is_returned() {
    let rig = Rig::start(Options::default());
    write_rows(&rig);
    rig.kill_primary();
    // Transient: RDS throttles twice and fails once with 503; the invocation still succeeds.
    rig.faults.lock().unwrap().answer = vec![
        (
            "rds".into(),
            "DescribeDBInstances".into(),
            2,
            rig::aws_error(400, "Throttling", "Rate exceeded"),
        ),
        (
            "rds".into(),
            "DescribeDBInstances".into(),
            1,
            (503, "Service Unavailable".into()),
        ),
    ];
    // Persistent on Route 53's change: every attempt is throttled until the function gives up.
    rig.faults.lock().unwrap().answer.push((
        "route53".into(),
        "ChangeResourceRecordSets".into(),
        u32::MAX,
        (400, "<ErrorResponse><Error><Type>Sender</Type><Code>Throttling</Code><Message>Rate exceeded</Message></Error></ErrorResponse>".into()),
    ));
    let started = Instant::now();
    let (status, reply) = rig.emulator.invoke(&alarm_event("ALARM"));
    let took = started.elapsed();
    assert_eq!(status, 500, "{reply:#}");
    let message = reply["errorMessage"].as_str().unwrap_or_default();
    assert!(
        message.contains("ChangeResourceRecordSets") && message.contains("Throttling"),
        "{reply:#}"
    );
    assert_eq!(reply["errorType"], "aws-api");
    let describes = rig.proxy.requests("DescribeDBInstances");
    assert!(
        describes.iter().filter(|s| s.status >= 400).count() >= 3,
        "{describes:?}"
    );
    let attempts = rig.proxy.requests("ChangeResourceRecordSets").len();
    assert!(attempts >= 3, "{attempts} attempts of the change");
    assert!(took < Duration::from_secs(120), "{took:?}");
    // Nothing changed in DNS; the error was published too.
    assert!(!swapped(&rig), "{:?}", rig.records());
    let messages = rig.sns_messages();
    assert_eq!(messages.len(), 1);
    assert_eq!(messages[0].1["outcome"], "error");
    assert_no_secrets(&rig);
}

#[test]
fn malformed_events_and_missing_configuration_are_clear_errors_that_change_nothing() {
    let mut rig = Rig::start(Options {
        functions: 0,
        ..Options::default()
    });
    rig.start_function_with(Options {
        without: vec!["HOSTED_ZONE_ID", "DB_PROBE_USER"],
        ..Options::default()
    });
    let (status, reply) = rig.emulator.invoke(&alarm_event("ALARM"));
    assert_eq!(status, 500, "{reply:#}");
    assert_eq!(reply["errorType"], "configuration", "{reply:#}");
    let message = reply["errorMessage"].as_str().unwrap();
    assert!(
        message.contains("HOSTED_ZONE_ID") && message.contains("DB_PROBE_USER"),
        "{message}"
    );
    rig.stop_functions();
    rig.start_function_with(Options::default());
    for event in [
        serde_json::json!("ALARM"),
        serde_json::json!([1, 2, 3]),
        serde_json::json!({"source": "aws.cloudwatch", "detail-type": "CloudWatch Alarm State Change", "detail": {"alarmName": "x", "newState": "ALARM"}}),
        serde_json::json!({"source": "aws.rds", "detail-type": "RDS DB Instance Event"}),
    ] {
        let (status, reply) = rig.emulator.invoke(&event);
        assert_eq!(status, 500, "{event}: {reply:#}");
        assert_eq!(reply["errorType"], "malformed-event", "{event}: {reply:#}");
    }
    assert_eq!(rig.changes(), (0, 0));
    assert!(
        rig.proxy.seen.lock().unwrap().is_empty(),
        "an AWS request was made"
    );
    assert_no_secrets(&rig);
}

#[test]
fn a_read_only_secondary_without_promotion_is_refused_and_dns_left_alone() {
    let rig = Rig::start(Options {
        promote: false,
        ..Options::default()
    });
    write_rows(&rig);
    rig.kill_primary();
    let before = rig.records();
    let (status, reply) = rig
        .emulator
        .invoke(&rds_event("db1", "failure", "RDS-EVENT-0031"));
    assert_eq!(status, 500, "{reply:#}");
    assert_eq!(reply["errorType"], "refused", "{reply:#}");
    let message = reply["errorMessage"].as_str().unwrap();
    assert!(
        message.contains("not writable") && message.contains("PROMOTE_READ_REPLICA is false"),
        "{message}"
    );
    assert_eq!(rig.changes(), (0, 0), "promotions, record changes");
    assert_eq!(rig.records(), before);
    let messages = rig.sns_messages();
    assert_eq!(messages.len(), 1);
    assert_eq!(messages[0].1["outcome"], "error");
    // The replica still has every row and is still read-only.
    let t = rig.topology.lock().unwrap();
    let node = t.node(1);
    assert_eq!(
        node.sql_value("SELECT COUNT(*) FROM app.lambda_rows")
            .unwrap()
            .as_deref(),
        Some(ROWS.to_string().as_str())
    );
    assert_eq!(
        node.sql_value("SELECT @@read_only").unwrap().as_deref(),
        Some("1")
    );
}
