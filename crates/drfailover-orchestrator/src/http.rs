//! The orchestrator's HTTP endpoint: `GET /status` (JSON) and `GET /metrics` (Prometheus
//! text) for anyone who reaches it; `POST /ack` and `POST /switchover?to=NODE` only with
//! the control token (`Authorization: Bearer …`) and never cross-site.
//!
//! Served by the workspace's bounded HTTP server (`drfailover-http`) on the caller's thread:
//! connections are served concurrently (an idle, slow or held connection never delays
//! another), each request head must arrive whole within [`Limits::head_timeout`] and fit
//! in [`Limits::max_head_bytes`] (a longer request line gets 414/431 and costs no more
//! memory), request bodies are never read (a body larger than [`MAX_BODY_BYTES`] is
//! refused with 413), and every connection ends within [`Limits::connection_timeout`].
//! Malformed requests (invalid UTF-8 in the request line, …) get 400.

use std::net::TcpListener;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crossbeam_channel::{Sender, TrySendError};
use drfailover_http::header::{HeaderValue, AUTHORIZATION, HOST, ORIGIN};
use drfailover_http::{text, with_type, Method, Response, StatusCode};

use crate::control::{ControlToken, Outcome, Request, Ticket};

/// What the loop last published for readers: `/status` JSON and `/metrics` text.
#[derive(Debug, Default)]
pub struct Snapshot {
    /// `/status` body.
    pub status: String,
    /// `/metrics` body.
    pub metrics: String,
}

/// Largest request body accepted (bodies are ignored; the bound refuses abuse early).
pub const MAX_BODY_BYTES: u64 = 4096;

/// Bounds of the endpoint.
#[derive(Clone, Debug)]
pub struct Limits {
    /// The request line and headers must arrive within this (slowloris, idle sockets).
    pub head_timeout: Duration,
    /// Largest request line plus headers, in bytes (at least 8192, hyper's minimum buffer).
    pub max_head_bytes: usize,
    /// A switchover not yet committed after this long is cancelled (nothing changed) and
    /// the client told so; a committed one is always waited for.
    pub answer_timeout: Duration,
    /// Every connection is closed after this long, whatever it is doing.
    pub connection_timeout: Duration,
    /// Connections served at the same time; more are closed as soon as accepted.
    pub max_connections: usize,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            head_timeout: Duration::from_secs(5),
            max_head_bytes: 16 * 1024,
            answer_timeout: Duration::from_secs(60),
            connection_timeout: Duration::from_secs(300),
            max_connections: 4096,
        }
    }
}

/// What the control endpoint serves and where it sends requests.
#[derive(Clone, Debug)]
pub struct ControlEndpoint {
    /// Published by the loop.
    pub snapshot: Arc<Mutex<Snapshot>>,
    /// To the loop.
    pub requests: Sender<Request>,
    /// Mutating requests need it; without it they are refused (403).
    pub token: Option<ControlToken>,
    /// Deadlines and sizes the endpoint holds every request to.
    pub limits: Limits,
}

/// Serve on `listener` until `stop` is set (checked every 100 ms). Blocks: run it on a
/// thread of its own (it adds no other thread). Errors only when the runtime cannot be
/// built or the listener not registered.
pub fn serve(
    listener: TcpListener,
    endpoint: ControlEndpoint,
    stop: Arc<AtomicBool>,
) -> std::io::Result<()> {
    let limits = drfailover_http::Limits {
        head_timeout: endpoint.limits.head_timeout,
        max_head_bytes: endpoint.limits.max_head_bytes,
        connection_timeout: endpoint.limits.connection_timeout,
        max_connections: endpoint.limits.max_connections,
        keep_alive: false,
    };
    let state = Arc::new(State {
        endpoint,
        switchover_busy: AtomicBool::new(false),
    });
    drfailover_http::serve(listener, limits, stop, move |req| {
        let state = state.clone();
        async move { state.handle(req).await }
    })
}

struct State {
    endpoint: ControlEndpoint,
    /// A switchover request is being answered (a second one gets 409 at once).
    switchover_busy: AtomicBool,
}

/// Clears the busy flag when the request ends (answered, or dropped with its connection).
struct Busy<'a>(&'a AtomicBool);

impl Drop for Busy<'_> {
    fn drop(&mut self) {
        self.0.store(false, Ordering::SeqCst);
    }
}

/// Cancels a still pending switchover when its request is dropped (connection closed or
/// timed out): it then never runs later.
struct CancelOnDrop(Ticket);

impl Drop for CancelOnDrop {
    fn drop(&mut self) {
        self.0
            .cancel("the client went away before the switchover started");
    }
}

impl State {
    async fn handle(&self, req: drfailover_http::Request) -> Response {
        let path = req.uri().path();
        let method = req.method();
        match (method, path) {
            (&Method::GET, "/status") => {
                let body = self.snapshot(|s| s.status.clone());
                with_type(StatusCode::OK, "application/json", body)
            }
            (&Method::GET, "/metrics") => {
                let body = self.snapshot(|s| s.metrics.clone());
                with_type(
                    StatusCode::OK,
                    prometheus_client::encoding::prometheus_text::CONTENT_TYPE,
                    body,
                )
            }
            (&Method::POST, "/ack" | "/switchover") => {
                if let Some(refusal) = self.refusal(&req) {
                    return refusal;
                }
                if path == "/ack" {
                    self.ack().await
                } else {
                    let target = req
                        .uri()
                        .query()
                        .unwrap_or("")
                        .split('&')
                        .find_map(|kv| kv.strip_prefix("to="))
                        .unwrap_or("");
                    let Ok(target) = percent_encoding::percent_decode_str(target).decode_utf8()
                    else {
                        return text(StatusCode::BAD_REQUEST, "`to` is not UTF-8");
                    };
                    let target = target.into_owned();
                    self.switchover(&target).await
                }
            }
            (_, "/status" | "/metrics" | "/ack" | "/switchover") => {
                text(StatusCode::METHOD_NOT_ALLOWED, "method not allowed")
            }
            _ => text(StatusCode::NOT_FOUND, "not found"),
        }
    }

    fn snapshot(&self, f: impl FnOnce(&Snapshot) -> String) -> String {
        f(&self
            .endpoint
            .snapshot
            .lock()
            .unwrap_or_else(|p| p.into_inner()))
    }

    /// Why a mutating request is refused, if it is: it needs the token in the
    /// `Authorization` header (never a form or the URL, which a cross-site page could
    /// send), no foreign `Origin`, a small body.
    fn refusal(&self, req: &drfailover_http::Request) -> Option<Response> {
        let Some(token) = &self.endpoint.token else {
            return Some(text(
                StatusCode::FORBIDDEN,
                "control requests are disabled: set control_token_file in [orchestrator]",
            ));
        };
        let headers = req.headers();
        if let Some(origin) = headers.get(ORIGIN) {
            let host = headers.get(HOST).and_then(|h| h.to_str().ok());
            let same = host.is_some_and(|h| {
                origin.to_str().ok() == Some(&format!("http://{h}"))
                    || origin.to_str().ok() == Some(&format!("https://{h}"))
            });
            if !same {
                return Some(text(StatusCode::FORBIDDEN, "cross-site request refused"));
            }
        }
        if headers
            .get("sec-fetch-site")
            .is_some_and(|v| v.as_bytes() == b"cross-site")
        {
            return Some(text(StatusCode::FORBIDDEN, "cross-site request refused"));
        }
        let presented = headers
            .get(AUTHORIZATION)
            .and_then(|v| v.as_bytes().strip_prefix(b"Bearer "))
            .unwrap_or(b"");
        if !token.matches(presented) {
            let mut r = text(
                StatusCode::UNAUTHORIZED,
                "missing or wrong control token (Authorization: Bearer …)",
            );
            r.headers_mut()
                .insert("www-authenticate", HeaderValue::from_static("Bearer"));
            return Some(r);
        }
        let length = drfailover_http::declared_length(headers).unwrap_or(0);
        if length > MAX_BODY_BYTES || headers.contains_key("transfer-encoding") {
            return Some(text(
                StatusCode::PAYLOAD_TOO_LARGE,
                format!("request body larger than {MAX_BODY_BYTES} bytes"),
            ));
        }
        None
    }

    /// Hand `request` to the loop; the answer to give when it cannot take it.
    fn send(&self, request: Request) -> Option<Response> {
        self.endpoint
            .requests
            .try_send(request)
            .err()
            .map(|e| match e {
                TrySendError::Full(_) => text(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "too many requests queued for the orchestrator loop",
                ),
                TrySendError::Disconnected(_) => {
                    text(StatusCode::SERVICE_UNAVAILABLE, "orchestrator stopped")
                }
            })
    }

    async fn ack(&self) -> Response {
        let (request, answer) = Request::ack();
        if let Some(r) = self.send(request) {
            return r;
        }
        match tokio::time::timeout(self.endpoint.limits.answer_timeout, answer).await {
            Ok(Ok(outcome)) => respond(outcome),
            Ok(Err(_)) => text(StatusCode::SERVICE_UNAVAILABLE, "orchestrator stopped"),
            Err(_) => text(
                StatusCode::GATEWAY_TIMEOUT,
                "no answer from the orchestrator loop in time",
            ),
        }
    }

    async fn switchover(&self, target: &str) -> Response {
        if target.is_empty() {
            return text(
                StatusCode::BAD_REQUEST,
                "give the target: /switchover?to=NODE",
            );
        }
        if self.switchover_busy.swap(true, Ordering::SeqCst) {
            return text(
                StatusCode::CONFLICT,
                "another switchover request is in progress",
            );
        }
        let _busy = Busy(&self.switchover_busy);
        let (request, ticket, mut answer) = Request::switchover(target);
        let _cancel = CancelOnDrop(ticket.clone());
        if let Some(r) = self.send(request) {
            return r;
        }
        let timeout = self.endpoint.limits.answer_timeout;
        match tokio::time::timeout(timeout, &mut answer).await {
            Ok(Ok(outcome)) => return respond(outcome),
            Ok(Err(_)) => return text(StatusCode::SERVICE_UNAVAILABLE, "orchestrator stopped"),
            Err(_) => {}
        }
        let why = format!(
            "not started within {} ms: cancelled, nothing was changed",
            timeout.as_millis()
        );
        if ticket.cancel(&why) {
            return text(StatusCode::GATEWAY_TIMEOUT, why);
        }
        // Committed: it changes the topology now; its steps are bounded, wait for them.
        match answer.await {
            Ok(outcome) => respond(outcome),
            Err(_) => text(StatusCode::SERVICE_UNAVAILABLE, "orchestrator stopped"),
        }
    }
}

fn respond(outcome: Outcome) -> Response {
    let status = match &outcome {
        Outcome::Done(_) => StatusCode::OK,
        Outcome::Refused(_) => StatusCode::CONFLICT,
        Outcome::Failed(_) => StatusCode::INTERNAL_SERVER_ERROR,
    };
    text(status, outcome.text())
}
