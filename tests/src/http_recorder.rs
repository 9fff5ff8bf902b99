//! A real HTTP/1.1 server on loopback that records what it receives, for webhook and AWS
//! API tests. Served by the workspace's bounded HTTP server (`drfailover-http`).

use std::sync::{Arc, Mutex};

use drfailover_http::{bytes, read_body, Background, Limits, StatusCode};

/// One received request: the request line (`POST /path HTTP/1.1`) and the body.
pub type ReceivedRequest = (String, String);

/// Largest request body recorded; a larger one is answered 413 and not recorded.
pub const MAX_BODY_BYTES: usize = 1024 * 1024;

/// Records every request and answers with the replies given in turn (the last one repeats).
/// Stops serving when dropped.
pub struct HttpServer {
    server: Background,
    /// Requests received so far.
    pub requests: Arc<Mutex<Vec<ReceivedRequest>>>,
}

impl HttpServer {
    /// Listen on 127.0.0.1 (a free port) in a background thread, answering each request
    /// with the next of `statuses` and an empty body.
    pub fn start(statuses: Vec<u16>) -> HttpServer {
        HttpServer::start_with_replies(statuses.into_iter().map(|s| (s, String::new())).collect())
    }

    /// Like [`HttpServer::start`], answering each request with the next (status, body) of
    /// `replies` (the last one repeats).
    pub fn start_with_replies(replies: Vec<(u16, String)>) -> HttpServer {
        assert!(!replies.is_empty(), "HttpServer needs at least one reply");
        let requests: Arc<Mutex<Vec<ReceivedRequest>>> = Arc::default();
        let log = requests.clone();
        let replies = Arc::new(replies);
        let server = Background::on_loopback(Limits::default(), move |request| {
            let (log, replies) = (log.clone(), replies.clone());
            let line = format!(
                "{} {} {:?}",
                request.method(),
                request.uri(),
                request.version()
            );
            async move {
                let body = match read_body(request, MAX_BODY_BYTES).await {
                    Ok((_, body)) => body,
                    Err(e) => return bytes(StatusCode::PAYLOAD_TOO_LARGE, e.to_string()),
                };
                let mut log = log.lock().unwrap_or_else(|e| e.into_inner());
                log.push((line, String::from_utf8_lossy(&body).into_owned()));
                let (status, reply) = &replies[(log.len() - 1).min(replies.len() - 1)];
                let status =
                    StatusCode::from_u16(*status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
                bytes(status, reply.clone())
            }
        })
        .expect("serve HTTP on loopback");
        HttpServer { server, requests }
    }

    /// `http://127.0.0.1:<port><path>`.
    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.server.port())
    }

    /// A copy of the requests received so far.
    pub fn received(&self) -> Vec<ReceivedRequest> {
        self.requests
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }
}

/// A `ureq` client for the servers of a test: every status is an answer (not an error), no
/// proxy from the environment, each call bounded by `timeout` in all.
pub fn client(timeout: std::time::Duration) -> ureq::Agent {
    ureq::Agent::new_with_config(
        ureq::Agent::config_builder()
            .http_status_as_error(false)
            .proxy(None)
            .timeout_global(Some(timeout))
            .build(),
    )
}
