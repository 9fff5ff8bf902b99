//! The workspace's one HTTP server: hyper (HTTP/1.1) on a current-thread tokio runtime, with
//! every bound set. The orchestrator's endpoint, `drfailover health-server` and the test
//! harness's servers are built on it; every HTTP client in the workspace is `ureq`.
//!
//! [`serve`] blocks the caller's thread and adds no thread of its own (handlers that block use
//! [`run_blocking`], which borrows tokio's blocking pool). Connections are served concurrently,
//! so an idle, slow or held connection never delays another. Bounds ([`Limits`]): the request
//! head must arrive whole within `head_timeout` and fit in `max_head_bytes` (a longer one gets
//! 431/414 and costs no more memory), at most `max_connections` are served at once (more are
//! closed as soon as accepted), and every connection ends within `connection_timeout`. Request
//! bodies are read only by [`read_body`], up to a size the caller gives. Malformed requests get
//! 400 from hyper before any handler runs.

use std::future::Future;
use std::net::TcpListener;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use http_body_util::{BodyExt, Full, Limited};
use hyper_util::rt::{TokioIo, TokioTimer};

pub use hyper::body::Bytes;
pub use hyper::http::request::Parts as RequestHead;
pub use hyper::{header, Method, StatusCode};

/// A request as a handler receives it (the body not read yet: see [`read_body`]).
pub type Request = hyper::Request<hyper::body::Incoming>;

/// A whole answer, body in memory.
pub type Response = hyper::Response<Full<Bytes>>;

/// Bounds of a server.
#[derive(Clone, Debug)]
pub struct Limits {
    /// The request line and headers must arrive within this (slowloris, idle sockets).
    pub head_timeout: Duration,
    /// Largest request line plus headers, in bytes (at least 8192, hyper's minimum buffer).
    pub max_head_bytes: usize,
    /// Every connection is closed after this long, whatever it is doing.
    pub connection_timeout: Duration,
    /// Connections served at the same time; more are closed as soon as accepted.
    pub max_connections: usize,
    /// Serve several requests on one connection (else one request, then close).
    pub keep_alive: bool,
}

impl Default for Limits {
    /// 5 s for the head, 16 KiB of head, 300 s per connection, 4096 connections, one request
    /// per connection.
    fn default() -> Limits {
        Limits {
            head_timeout: Duration::from_secs(5),
            max_head_bytes: 16 * 1024,
            connection_timeout: Duration::from_secs(300),
            max_connections: 4096,
            keep_alive: false,
        }
    }
}

/// How often [`serve`] looks at its stop flag.
const STOP_CHECK: Duration = Duration::from_millis(100);

/// Serve `listener` with `handler` until `stop` is set (checked every 100 ms); connections
/// still open then are closed. Blocks: run it on a thread of its own (it adds no other thread
/// unless a handler uses [`run_blocking`]). Errors only when the runtime cannot be built or
/// the listener not registered.
pub fn serve<H, F>(
    listener: TcpListener,
    limits: Limits,
    stop: Arc<AtomicBool>,
    handler: H,
) -> std::io::Result<()>
where
    H: Fn(Request) -> F + Send + Sync + 'static,
    F: Future<Output = Response> + Send + 'static,
{
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_io()
        .enable_time()
        .build()?;
    listener.set_nonblocking(true)?;
    let handler = Arc::new(handler);
    runtime.block_on(async move {
        let listener = tokio::net::TcpListener::from_std(listener)?;
        let slots = Arc::new(tokio::sync::Semaphore::new(limits.max_connections));
        while !stop.load(Ordering::SeqCst) {
            let accepted = match tokio::time::timeout(STOP_CHECK, listener.accept()).await {
                Err(_) => continue,
                Ok(Err(_)) => {
                    // Out of descriptors or a connection reset before accept: try again soon.
                    tokio::time::sleep(Duration::from_millis(5)).await;
                    continue;
                }
                Ok(Ok((stream, _))) => stream,
            };
            let Ok(slot) = slots.clone().try_acquire_owned() else {
                drop(accepted);
                continue;
            };
            let handler = handler.clone();
            let limits = limits.clone();
            tokio::spawn(async move {
                let service = hyper::service::service_fn(move |req| {
                    let answer = handler(req);
                    async move { Ok::<_, std::convert::Infallible>(answer.await) }
                });
                let connection = hyper::server::conn::http1::Builder::new()
                    .timer(TokioTimer::new())
                    .header_read_timeout(limits.head_timeout)
                    .max_buf_size(limits.max_head_bytes.max(8192))
                    .keep_alive(limits.keep_alive)
                    .serve_connection(TokioIo::new(accepted), service);
                let _ = tokio::time::timeout(limits.connection_timeout, connection).await;
                drop(slot);
            });
        }
        Ok(())
    })
}

/// A server running [`serve`] on a thread of its own; stopped (and its thread joined, at most
/// about 100 ms) when dropped.
#[derive(Debug)]
pub struct Background {
    port: u16,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Background {
    /// Listen on 127.0.0.1 (a free port) and serve there on a new thread. Errors when no port
    /// can be bound or the thread not started.
    pub fn on_loopback<H, F>(limits: Limits, handler: H) -> std::io::Result<Background>
    where
        H: Fn(Request) -> F + Send + Sync + 'static,
        F: Future<Output = Response> + Send + 'static,
    {
        let listener = TcpListener::bind("127.0.0.1:0")?;
        let port = listener.local_addr()?.port();
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let thread = std::thread::Builder::new()
            .name(format!("http-{port}"))
            .spawn(move || {
                if let Err(e) = serve(listener, limits, flag, handler) {
                    eprintln!("http server on 127.0.0.1:{port} stopped: {e}");
                }
            })?;
        Ok(Background {
            port,
            stop,
            thread: Some(thread),
        })
    }

    /// The loopback port served.
    pub fn port(&self) -> u16 {
        self.port
    }
}

impl Drop for Background {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// Why a body could not be read.
#[derive(Debug)]
pub enum BodyError {
    /// Larger than the bound given to [`read_body`].
    TooLarge(usize),
    /// The connection failed or the body was malformed.
    Broken(String),
}

impl std::fmt::Display for BodyError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            BodyError::TooLarge(max) => write!(f, "request body larger than {max} bytes"),
            BodyError::Broken(e) => write!(f, "request body unreadable: {e}"),
        }
    }
}

impl std::error::Error for BodyError {}

/// Read the whole body of `request`, refusing it once it passes `max` bytes (so it never holds
/// more than `max` bytes). Waits for the body, within the server's `connection_timeout`.
pub async fn read_body(request: Request, max: usize) -> Result<(RequestHead, Bytes), BodyError> {
    let (parts, body) = request.into_parts();
    if declared_length(&parts.headers).is_some_and(|n| n > max as u64) {
        return Err(BodyError::TooLarge(max));
    }
    match Limited::new(body, max).collect().await {
        Ok(collected) => Ok((parts, collected.to_bytes())),
        Err(e) if e.is::<http_body_util::LengthLimitError>() => Err(BodyError::TooLarge(max)),
        Err(e) => Err(BodyError::Broken(e.to_string())),
    }
}

/// The body length a request declares in `Content-Length`, if it does.
pub fn declared_length(headers: &header::HeaderMap) -> Option<u64> {
    headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok())
}

/// Run `work`, which blocks, on tokio's blocking pool (a thread borrowed for the call) and
/// wait for it without holding up the other connections. `None` when `work` panicked.
pub async fn run_blocking<T: Send + 'static>(
    work: impl FnOnce() -> T + Send + 'static,
) -> Option<T> {
    tokio::task::spawn_blocking(work).await.ok()
}

/// An answer of `status` with `body` and a `Content-Type` of `kind`.
pub fn with_type(status: StatusCode, kind: &'static str, body: impl Into<Bytes>) -> Response {
    let mut r = hyper::Response::new(Full::new(body.into()));
    *r.status_mut() = status;
    r.headers_mut()
        .insert(header::CONTENT_TYPE, header::HeaderValue::from_static(kind));
    r
}

/// A plain-text answer: `body` and a newline.
pub fn text(status: StatusCode, body: impl Into<String>) -> Response {
    let mut body = body.into();
    body.push('\n');
    with_type(status, "text/plain; charset=utf-8", body)
}

/// An answer of `status` with `body` as it is and no `Content-Type`.
pub fn bytes(status: StatusCode, body: impl Into<Bytes>) -> Response {
    let mut r = hyper::Response::new(Full::new(body.into()));
    *r.status_mut() = status;
    r
}
