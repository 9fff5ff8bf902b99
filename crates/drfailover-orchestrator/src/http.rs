//! The orchestrator's HTTP endpoint: `GET /status` (JSON), `GET /metrics` (Prometheus text),
//! `POST /ack`, `POST /switchover?to=NODE`. One thread, one request at a time, every read
//! and write bounded by a timeout; meant for loopback or a trusted network.

use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crossbeam_channel::Sender;

use crate::daemon::Request;

/// What the loop last published for readers: `/status` JSON and `/metrics` text.
#[derive(Debug, Default)]
pub struct Snapshot {
    /// `/status` body.
    pub status: String,
    /// `/metrics` body.
    pub metrics: String,
}

fn respond(stream: &mut TcpStream, status: u16, kind: &str, body: &str) {
    let reason = match status {
        200 => "OK",
        404 => "Not Found",
        405 => "Method Not Allowed",
        409 => "Conflict",
        _ => "Service Unavailable",
    };
    let _ = write!(
        stream,
        "HTTP/1.1 {status} {reason}\r\ncontent-type: {kind}\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
        body.len()
    );
}

/// Serve on `listener` until `stop` is set (checked every 100 ms). Blocks: run it on a
/// thread of its own. Switchover requests wait up to `request_timeout` for the loop.
pub fn serve(
    listener: TcpListener,
    snapshot: Arc<Mutex<Snapshot>>,
    requests: Sender<Request>,
    stop: Arc<AtomicBool>,
    request_timeout: Duration,
) {
    let _ = listener.set_nonblocking(true);
    while !stop.load(Ordering::SeqCst) {
        let mut stream = match listener.accept() {
            Ok((s, _)) => s,
            Err(_) => {
                std::thread::sleep(Duration::from_millis(20));
                continue;
            }
        };
        let _ = stream.set_nonblocking(false);
        let _ = stream.set_read_timeout(Some(Duration::from_secs(2)));
        let _ = stream.set_write_timeout(Some(Duration::from_secs(2)));
        let mut line = String::new();
        let mut reader = BufReader::new(match stream.try_clone() {
            Ok(s) => s,
            Err(_) => continue,
        });
        if reader.read_line(&mut line).is_err() || line.len() > 4096 {
            continue;
        }
        // Drain headers (bounded).
        for _ in 0..100 {
            let mut h = String::new();
            match reader.read_line(&mut h) {
                Ok(0) | Err(_) => break,
                Ok(_) if h == "\r\n" || h == "\n" => break,
                Ok(_) => {}
            }
        }
        let mut parts = line.split_whitespace();
        let (method, target) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
        let (path, query) = target.split_once('?').unwrap_or((target, ""));
        let snap =
            |f: fn(&Snapshot) -> String| f(&snapshot.lock().unwrap_or_else(|p| p.into_inner()));
        match (method, path) {
            ("GET", "/status") => respond(
                &mut stream,
                200,
                "application/json",
                &snap(|s| s.status.clone()),
            ),
            ("GET", "/metrics") => respond(
                &mut stream,
                200,
                "text/plain; version=0.0.4",
                &snap(|s| s.metrics.clone()),
            ),
            ("POST", "/ack") | ("POST", "/switchover") => {
                let (tx, rx) = crossbeam_channel::bounded(1);
                let request = if path == "/ack" {
                    Request::Ack(tx)
                } else {
                    let to = query
                        .split('&')
                        .find_map(|kv| kv.strip_prefix("to="))
                        .unwrap_or("")
                        .to_string();
                    Request::Switchover(to, tx)
                };
                let answer = requests
                    .send(request)
                    .map_err(|_| "orchestrator stopped".to_string())
                    .and_then(|()| {
                        rx.recv_timeout(request_timeout)
                            .map_err(|_| "no answer from the orchestrator loop in time".to_string())
                    })
                    .and_then(|r| r);
                match answer {
                    Ok(text) => respond(&mut stream, 200, "text/plain", &format!("{text}\n")),
                    Err(e) => respond(&mut stream, 409, "text/plain", &format!("{e}\n")),
                }
            }
            (_, "/status" | "/metrics" | "/ack" | "/switchover") => {
                respond(&mut stream, 405, "text/plain", "method not allowed\n")
            }
            _ => respond(&mut stream, 404, "text/plain", "not found\n"),
        }
    }
}
