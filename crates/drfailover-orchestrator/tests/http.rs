//! The control endpoint's answer and the switchover agree: a request not started within the
//! answer timeout is cancelled (it can never run later) and answered 504; a committed one
//! is waited for and its outcome told. The loop's side is played by the test through the
//! real request channel.

use std::io::Write;
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use drfailover_orchestrator::control::ControlToken;
use drfailover_orchestrator::http::{serve, ControlEndpoint, Limits, Snapshot};
use drfailover_orchestrator::{Outcome, Request};
use drfailover_testkit::eventually;

const TOKEN: &str = "tok-0123456789abcdef";

/// `POST http://addr/path` with the token: (status, body).
fn post(addr: &str, path: &str) -> (u16, String) {
    let mut answer = drfailover_testkit::http_recorder::client(Duration::from_secs(20))
        .post(format!("http://{addr}{path}"))
        .header("authorization", format!("Bearer {TOKEN}"))
        .send_empty()
        .expect("the endpoint answers");
    let body = answer.body_mut().read_to_string().unwrap_or_default();
    (answer.status().as_u16(), body)
}

#[test]
fn a_switchover_not_started_in_time_is_cancelled_and_a_committed_one_is_waited_for() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let (tx, rx) = crossbeam_channel::bounded(4);
    let answer_timeout = Duration::from_millis(300);
    let endpoint = ControlEndpoint {
        snapshot: Arc::new(Mutex::new(Snapshot::default())),
        requests: tx,
        token: Some(ControlToken::new(TOKEN).unwrap()),
        limits: Limits {
            answer_timeout,
            ..Limits::default()
        },
    };
    let stop = Arc::new(AtomicBool::new(false));
    let server = {
        let stop = stop.clone();
        std::thread::spawn(move || serve(listener, endpoint, stop))
    };

    // Nobody starts it: cancelled, 504, and the ticket can no longer commit.
    let (status, answer) = post(&addr, "/switchover?to=db2");
    assert_eq!(status, 504, "{answer}");
    assert!(answer.contains("nothing was changed"), "{answer}");
    let Ok(Request::Switchover { target, ticket, .. }) = rx.try_recv() else {
        panic!("no switchover request reached the loop");
    };
    assert_eq!(target, "db2");
    assert!(ticket.cancelled().is_some());
    assert!(
        ticket.commit().is_err(),
        "a cancelled request could still run"
    );

    // Committed before the timeout, done after it: the client is told the outcome.
    let lp = std::thread::spawn(move || {
        let Ok(Request::Switchover { ticket, reply, .. }) =
            rx.recv_timeout(Duration::from_secs(20))
        else {
            panic!("no request");
        };
        ticket.commit().unwrap();
        std::thread::sleep(answer_timeout * 3);
        let _ = reply.send(Outcome::Done("db3 is the primary".into()));
    });
    let started = Instant::now();
    let (status, answer) = post(&addr, "/switchover?to=db3");
    assert_eq!(status, 200, "{answer}");
    assert!(answer.contains("db3 is the primary"), "{answer}");
    assert!(started.elapsed() >= answer_timeout * 3);
    lp.join().unwrap();
    stop.store(true, Ordering::SeqCst);
    server.join().unwrap().unwrap();
}

/// A client that closes its connection while its switchover is pending cancels it at once.
#[test]
fn a_client_that_hangs_up_cancels_its_pending_switchover() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let (tx, rx) = crossbeam_channel::bounded(4);
    let endpoint = ControlEndpoint {
        snapshot: Arc::new(Mutex::new(Snapshot::default())),
        requests: tx,
        token: Some(ControlToken::new(TOKEN).unwrap()),
        limits: Limits {
            answer_timeout: Duration::from_secs(10),
            ..Limits::default()
        },
    };
    let stop = Arc::new(AtomicBool::new(false));
    let s2 = stop.clone();
    let server = std::thread::spawn(move || serve(listener, endpoint, s2));
    let mut s = TcpStream::connect(&addr).unwrap();
    write!(
        s,
        "POST /switchover?to=x HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {TOKEN}\r\n\r\n"
    )
    .unwrap();
    let Ok(Request::Switchover { ticket, .. }) = rx.recv_timeout(Duration::from_secs(5)) else {
        panic!("no switchover request reached the loop");
    };
    drop(s);
    let why = eventually(
        "the pending switchover cancelled after the client hung up",
        Duration::from_secs(12),
        || {
            ticket
                .cancelled()
                .ok_or_else(|| "still pending".to_string())
        },
    );
    assert!(why.contains("went away"), "{why}");
    assert!(ticket.commit().is_err());
    stop.store(true, Ordering::SeqCst);
    server.join().unwrap().unwrap();
}
