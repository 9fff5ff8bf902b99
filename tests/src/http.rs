//! A minimal real HTTP/1.1 server on loopback for webhook tests.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::sync::{Arc, Mutex};

/// One received request: the request line (`POST /path HTTP/1.1`) and the body.
pub type Request = (String, String);

/// Records every request and answers with `statuses` in turn (the last one repeats).
pub struct HttpServer {
    port: u16,
    /// Requests received so far.
    pub requests: Arc<Mutex<Vec<Request>>>,
}

impl HttpServer {
    /// Listen on 127.0.0.1 (a free port) in a background thread.
    pub fn start(statuses: Vec<u16>) -> HttpServer {
        HttpServer::start_with_replies(statuses.into_iter().map(|s| (s, String::new())).collect())
    }

    /// Like [`HttpServer::start`], answering each request with the next (status, body) of
    /// `replies` (the last one repeats).
    pub fn start_with_replies(replies: Vec<(u16, String)>) -> HttpServer {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind loopback");
        let port = listener.local_addr().expect("local addr").port();
        let requests: Arc<Mutex<Vec<Request>>> = Arc::default();
        let log = requests.clone();
        std::thread::spawn(move || {
            for (n, stream) in listener.incoming().enumerate() {
                let Ok(mut stream) = stream else { break };
                let Ok(clone) = stream.try_clone() else {
                    continue;
                };
                let mut reader = BufReader::new(clone);
                let mut request_line = String::new();
                if reader.read_line(&mut request_line).is_err() {
                    continue;
                }
                let mut length = 0;
                loop {
                    let mut line = String::new();
                    if reader.read_line(&mut line).is_err() || line == "\r\n" || line.is_empty() {
                        break;
                    }
                    if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                        length = v.trim().parse().unwrap_or(0);
                    }
                }
                let mut body = vec![0; length];
                if reader.read_exact(&mut body).is_err() {
                    continue;
                }
                log.lock().unwrap_or_else(|e| e.into_inner()).push((
                    request_line.trim().to_string(),
                    String::from_utf8_lossy(&body).into_owned(),
                ));
                let (status, reply) = &replies[n.min(replies.len().saturating_sub(1))];
                let _ = write!(
                    stream,
                    "HTTP/1.1 {status} X\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{reply}",
                    reply.len()
                );
            }
        });
        HttpServer { port, requests }
    }

    /// `http://127.0.0.1:<port><path>`.
    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    /// A copy of the requests received so far.
    pub fn received(&self) -> Vec<Request> {
        self.requests
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }
}
