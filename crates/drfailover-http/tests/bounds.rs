//! The server's bounds on real loopback sockets: bodies past the caller's bound are refused,
//! a request head that never completes is cut at the head deadline, connections past the
//! limit are closed at once, and a background server stops when dropped.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use drfailover_http::{bytes, read_body, Background, Limits, StatusCode};

/// Echoes bodies of at most 16 bytes.
fn echo(limits: Limits) -> Background {
    Background::on_loopback(limits, |request| async move {
        match read_body(request, 16).await {
            Ok((_, body)) => bytes(StatusCode::OK, body),
            Err(e) => bytes(StatusCode::PAYLOAD_TOO_LARGE, e.to_string()),
        }
    })
    .expect("serve on loopback")
}

fn post(port: u16, body: &str) -> (u16, String) {
    let agent = ureq::Agent::new_with_config(
        ureq::Agent::config_builder()
            .http_status_as_error(false)
            .proxy(None)
            .timeout_global(Some(Duration::from_secs(20)))
            .build(),
    );
    let mut answer = agent
        .post(format!("http://127.0.0.1:{port}/"))
        .send(body)
        .expect("an answer");
    let text = answer.body_mut().read_to_string().unwrap_or_default();
    (answer.status().as_u16(), text)
}

/// Bytes read until the server closes, and how long that took. Gives up after 30 s.
fn until_closed(mut stream: TcpStream) -> (Vec<u8>, Duration) {
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    let started = Instant::now();
    let mut answer = Vec::new();
    let _ = stream.read_to_end(&mut answer);
    (answer, started.elapsed())
}

#[test]
fn a_body_within_the_bound_is_read_and_a_larger_one_refused() {
    let server = echo(Limits::default());
    assert_eq!(
        post(server.port(), "sixteen bytes!!!"),
        (200, "sixteen bytes!!!".into())
    );
    let (status, text) = post(server.port(), "seventeen bytes!!");
    assert_eq!(status, 413, "{text}");
    assert!(text.contains("larger than 16 bytes"), "{text}");
}

#[test]
fn a_request_head_that_never_ends_is_cut_at_the_head_deadline() {
    let server = echo(Limits {
        head_timeout: Duration::from_millis(500),
        ..Limits::default()
    });
    let mut stream = TcpStream::connect(("127.0.0.1", server.port())).unwrap();
    stream.write_all(b"POST / HTTP/1.1\r\nHost: x\r\n").unwrap();
    let (_, took) = until_closed(stream);
    assert!(
        took >= Duration::from_millis(400) && took < Duration::from_secs(20),
        "closed after {took:?}"
    );
}

#[test]
fn connections_past_the_limit_are_closed_at_once_and_a_dropped_server_stops() {
    let server = echo(Limits {
        max_connections: 1,
        ..Limits::default()
    });
    let port = server.port();
    let mut held = TcpStream::connect(("127.0.0.1", port)).unwrap();
    held.write_all(b"POST / HTTP/1.1\r\n").unwrap();
    // The held connection may not have been accepted yet: try until one is turned away.
    let started = Instant::now();
    loop {
        let extra = TcpStream::connect(("127.0.0.1", port)).unwrap();
        let (answer, took) = until_closed(extra);
        if answer.is_empty() && took < Duration::from_secs(5) {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "a connection past the limit was served"
        );
    }
    drop(held);
    drop(server);
    assert!(
        TcpStream::connect(("127.0.0.1", port)).is_err(),
        "still listening after the server was dropped"
    );
}
