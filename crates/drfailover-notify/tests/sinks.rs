//! Webhooks against a real HTTP server on loopback, command hooks running real programs.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use drfailover_notify::{AsyncSink, CommandHook, Event, EventKind, Webhook, WebhookFormat};
use drfailover_testkit::http_recorder::HttpServer;

fn event() -> Event {
    Event::new(EventKind::FailoverCompleted, 7, 3, Instant::now())
        .writers(Some("10.0.0.1:3306".into()), Some("10.0.0.2:3306".into()))
        .duration(Duration::from_millis(12))
        .reason("refused")
}

fn fast(mut hook: Webhook) -> Webhook {
    hook.backoff = Duration::from_millis(10);
    hook
}

#[test]
fn generic_webhook_posts_the_json_event() {
    let server = HttpServer::start(vec![204]);
    let hook = fast(Webhook::new(
        server.url("/hooks/secret-token"),
        WebhookFormat::Generic,
    ));
    let e = event();
    assert_eq!(hook.send(&e), Ok(204));
    let requests = server.requests.lock().unwrap();
    assert_eq!(requests.len(), 1);
    assert_eq!(requests[0].0, "POST /hooks/secret-token HTTP/1.1");
    assert_eq!(requests[0].1, e.to_json());
}

#[test]
fn slack_webhook_posts_text_and_retries_server_errors() {
    let server = HttpServer::start(vec![500, 503, 200]);
    let hook = fast(Webhook::new(
        server.url("/services/T/B/XYZ"),
        WebhookFormat::Slack,
    ));
    assert_eq!(hook.send(&event()), Ok(200));
    let requests = server.requests.lock().unwrap();
    assert_eq!(requests.len(), 3, "two retries after 500 and 503");
    let body: serde_json::Value = serde_json::from_str(&requests[2].1).unwrap();
    let text = body["text"].as_str().unwrap();
    assert!(
        text.contains("failover_completed") && text.contains("10.0.0.2:3306"),
        "{text}"
    );
}

#[test]
fn client_errors_are_not_retried_and_errors_hide_the_token() {
    let server = HttpServer::start(vec![404]);
    let hook = fast(Webhook::new(
        server.url("/hooks/secret-token"),
        WebhookFormat::Generic,
    ));
    let err = hook.send(&event()).unwrap_err();
    assert_eq!(server.requests.lock().unwrap().len(), 1);
    assert!(
        err.contains("404") && !err.contains("secret-token"),
        "{err}"
    );

    // Nothing listens: fails within the timeouts, token still hidden.
    let port = drfailover_testkit::free_loopback_port();
    let mut hook = fast(Webhook::new(
        format!("http://127.0.0.1:{port}/secret-token"),
        WebhookFormat::Generic,
    ));
    hook.retries = 1;
    let t = Instant::now();
    let err = hook.send(&event()).unwrap_err();
    assert!(t.elapsed() < Duration::from_secs(5));
    assert!(!err.contains("secret-token"), "{err}");
}

#[test]
fn command_hook_gets_json_on_stdin_and_fields_in_env() {
    let dir = tempfile::tempdir().unwrap();
    let script = dir.path().join("hook.sh");
    let out = dir.path().join("out");
    drfailover_testkit::write_script(
        &script,
        format!(
            "#!/bin/sh\ncat > {o}.json\nenv | grep ^DRFAILOVER_ | sort > {o}.env\nexit 3\n",
            o = out.display()
        ),
    )
    .unwrap();
    let e = event();
    assert_eq!(CommandHook::new(&script).run(&e), Ok(3));
    let json = std::fs::read_to_string(out.with_extension("json")).unwrap();
    assert_eq!(json.trim(), e.to_json());
    let env = std::fs::read_to_string(out.with_extension("env")).unwrap();
    for expected in [
        "DRFAILOVER_EVENT=failover_completed",
        "DRFAILOVER_GENERATION=3",
        "DRFAILOVER_OLD_WRITER=10.0.0.1:3306",
        "DRFAILOVER_NEW_WRITER=10.0.0.2:3306",
        "DRFAILOVER_DURATION_US=12000",
        "DRFAILOVER_REASON=refused",
    ] {
        assert!(
            env.lines().any(|l| l == expected),
            "{expected} missing in:\n{env}"
        );
    }
}

#[test]
fn command_hook_is_killed_after_its_timeout() {
    let dir = tempfile::tempdir().unwrap();
    let script = dir.path().join("slow.sh");
    drfailover_testkit::write_script(&script, "#!/bin/sh\nexec sleep 30\n").unwrap();
    let mut hook = CommandHook::new(&script);
    hook.timeout = Duration::from_millis(200);
    let t = Instant::now();
    assert!(hook.run(&event()).is_err());
    assert!(t.elapsed() < Duration::from_secs(5));
}

#[test]
fn async_sink_never_blocks_the_caller() {
    let seen = Arc::new(Mutex::new(0));
    let s = seen.clone();
    let sink = AsyncSink::spawn("slow", 2, Duration::from_millis(300), move |_| {
        std::thread::sleep(Duration::from_millis(100));
        *s.lock().unwrap() += 1;
    })
    .unwrap();
    let t = Instant::now();
    for _ in 0..50 {
        sink.offer(&event());
    }
    assert!(
        t.elapsed() < Duration::from_millis(50),
        "offer blocked: {:?}",
        t.elapsed()
    );
    assert!(sink.dropped() >= 40, "dropped {}", sink.dropped());
    let t = Instant::now();
    drop(sink);
    assert!(t.elapsed() < Duration::from_secs(2), "drop waited too long");
    assert!(*seen.lock().unwrap() >= 1);
}
