//! The control endpoint's answer and the switchover agree: a request not started within the
//! answer timeout is cancelled (it can never run later) and answered 504; a committed one
//! is waited for and its outcome told. The loop's side is played by the test through the
//! real request channel.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use drfailover_orchestrator::control::ControlToken;
use drfailover_orchestrator::http::{serve, Endpoint, Limits, Snapshot};
use drfailover_orchestrator::{Outcome, Request};

const TOKEN: &str = "tok-0123456789abcdef";

fn post(addr: &str, path: &str) -> String {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    write!(
        s,
        "POST {path} HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {TOKEN}\r\n\r\n"
    )
    .unwrap();
    let mut answer = String::new();
    let _ = s.read_to_string(&mut answer);
    answer
}

#[test]
fn a_switchover_not_started_in_time_is_cancelled_and_a_committed_one_is_waited_for() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let (tx, rx) = crossbeam_channel::bounded(4);
    let answer_timeout = Duration::from_millis(300);
    let endpoint = Endpoint {
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
    let answer = post(&addr, "/switchover?to=db2");
    assert!(answer.starts_with("HTTP/1.1 504"), "{answer}");
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
    let answer = post(&addr, "/switchover?to=db3");
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
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
    let endpoint = Endpoint {
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
    let t = Instant::now();
    while ticket.cancelled().is_none() && t.elapsed() < Duration::from_secs(12) {
        std::thread::sleep(Duration::from_millis(10));
    }
    let why = ticket
        .cancelled()
        .expect("still pending after the client hung up");
    assert!(why.contains("went away"), "{why}");
    assert!(ticket.commit().is_err());
    stop.store(true, Ordering::SeqCst);
    server.join().unwrap().unwrap();
}
