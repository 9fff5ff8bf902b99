//! A local AWS metadata server on loopback, as strict as the real ones: EC2 instance metadata
//! with IMDSv2 required (`PUT /latest/api/token` with a TTL header gives a session token;
//! every `GET` without that token is answered 401, as on an instance with `HttpTokens=required`)
//! and the ECS/EKS container credential endpoint (`GET /creds` with the expected
//! `Authorization` header, else 401). It hands out credentials `ASIATEST1`, `ASIATEST2`, … that
//! expire after the lifetime the test sets, and records every request.
//!
//! Point clients at it with `AWS_EC2_METADATA_SERVICE_ENDPOINT=`[`MetadataServer::endpoint`]
//! or `AWS_CONTAINER_CREDENTIALS_FULL_URI=`[`MetadataServer::container_uri`].

use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

/// The IAM role the instance has.
pub const ROLE: &str = "drfailover-test-role";
/// The container endpoint's expected authorization token.
pub const CONTAINER_TOKEN: &str = "container-auth-token";
/// The secret key of every credential handed out (tests check it never appears in output).
pub const SECRET_KEY: &str = "metadataSecretKeyEXAMPLE";

/// One request seen: method, path, and the IMDSv2 or authorization token it carried.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Seen {
    /// `PUT` or `GET`.
    pub method: String,
    /// The path.
    pub path: String,
    /// `x-aws-ec2-metadata-token-ttl-seconds`, if sent.
    pub ttl: Option<String>,
    /// `x-aws-ec2-metadata-token` or `authorization`, if sent.
    pub token: Option<String>,
    /// The status answered.
    pub status: u16,
}

/// A running metadata server (a thread serving loopback). Stops answering when dropped.
pub struct MetadataServer {
    port: u16,
    seen: Arc<Mutex<Vec<Seen>>>,
    lifetime_secs: Arc<AtomicU64>,
    silent: Arc<AtomicBool>,
    stop: Arc<AtomicBool>,
}

impl MetadataServer {
    /// Listen on 127.0.0.1 (a free port); credentials expire `lifetime` after they are
    /// handed out.
    pub fn start(lifetime: Duration) -> MetadataServer {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind loopback");
        let port = listener.local_addr().expect("local addr").port();
        let server = MetadataServer {
            port,
            seen: Arc::default(),
            lifetime_secs: Arc::new(AtomicU64::new(lifetime.as_secs())),
            silent: Arc::default(),
            stop: Arc::default(),
        };
        let (seen, lifetime, silent, stop) = (
            server.seen.clone(),
            server.lifetime_secs.clone(),
            server.silent.clone(),
            server.stop.clone(),
        );
        std::thread::spawn(move || {
            let session = "imdsv2-session-token-1";
            let issued = AtomicU64::new(0);
            let mut held = Vec::new();
            for stream in listener.incoming() {
                if stop.load(Ordering::Relaxed) {
                    break;
                }
                let Ok(mut stream) = stream else { break };
                if silent.load(Ordering::Relaxed) {
                    held.push(stream); // accepted, never answered: a blackholed endpoint
                    continue;
                }
                let Ok(clone) = stream.try_clone() else {
                    continue;
                };
                let mut reader = BufReader::new(clone);
                let mut line = String::new();
                if reader.read_line(&mut line).is_err() {
                    continue;
                }
                let mut parts = line.split_whitespace();
                let method = parts.next().unwrap_or("").to_string();
                let path = parts.next().unwrap_or("").to_string();
                let (mut ttl, mut token) = (None, None);
                loop {
                    let mut header = String::new();
                    if reader.read_line(&mut header).is_err() || header.trim().is_empty() {
                        break;
                    }
                    if let Some((name, value)) = header.split_once(':') {
                        let value = Some(value.trim().to_string());
                        match name.trim().to_ascii_lowercase().as_str() {
                            "x-aws-ec2-metadata-token-ttl-seconds" => ttl = value,
                            "x-aws-ec2-metadata-token" | "authorization" => token = value,
                            _ => {}
                        }
                    }
                }
                let credentials = || {
                    let n = issued.fetch_add(1, Ordering::Relaxed) + 1;
                    let expires =
                        SystemTime::now() + Duration::from_secs(lifetime.load(Ordering::Relaxed));
                    format!(
                        r#"{{"Code":"Success","Type":"AWS-HMAC","AccessKeyId":"ASIATEST{n}","SecretAccessKey":"{SECRET_KEY}","Token":"session-token-{n}","Expiration":"{}"}}"#,
                        rfc3339(expires)
                    )
                };
                let imds_ok = token.as_deref() == Some(session);
                let (status, body) = match (method.as_str(), path.as_str()) {
                    ("PUT", "/latest/api/token") if ttl.is_some() => (200, session.to_string()),
                    ("PUT", "/latest/api/token") => (400, String::new()),
                    ("GET", "/latest/meta-data/iam/security-credentials/") if imds_ok => {
                        (200, format!("{ROLE}\n"))
                    }
                    ("GET", p)
                        if imds_ok
                            && p == format!(
                                "/latest/meta-data/iam/security-credentials/{ROLE}"
                            ) =>
                    {
                        (200, credentials())
                    }
                    ("GET", "/creds") if token.as_deref() == Some(CONTAINER_TOKEN) => {
                        (200, credentials())
                    }
                    ("GET", _) if !imds_ok => (401, String::new()),
                    _ => (404, String::new()),
                };
                seen.lock().unwrap_or_else(|e| e.into_inner()).push(Seen {
                    method,
                    path,
                    ttl,
                    token,
                    status,
                });
                let _ = write!(
                    stream,
                    "HTTP/1.1 {status} X\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                    body.len()
                );
            }
        });
        server
    }

    /// `http://127.0.0.1:<port>`: the instance metadata endpoint.
    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// The container credential URI (`/creds`).
    pub fn container_uri(&self) -> String {
        format!("http://127.0.0.1:{}/creds", self.port)
    }

    /// Credentials handed out from now on expire after `lifetime`.
    pub fn set_lifetime(&self, lifetime: Duration) {
        self.lifetime_secs
            .store(lifetime.as_secs(), Ordering::Relaxed);
    }

    /// Accept connections but never answer (a blackholed endpoint), from now on.
    pub fn go_silent(&self) {
        self.silent.store(true, Ordering::Relaxed);
    }

    /// The requests seen so far.
    pub fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }
}

impl Drop for MetadataServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        // Wake the accept loop so it sees the flag.
        let _ = std::net::TcpStream::connect(("127.0.0.1", self.port));
    }
}

/// `time` as RFC 3339 UTC (`2026-12-06T15:00:00Z`), the metadata endpoints' format.
fn rfc3339(time: SystemTime) -> String {
    use aws_smithy_types::date_time::{DateTime, Format};
    let whole = SystemTime::UNIX_EPOCH
        + Duration::from_secs(
            time.duration_since(SystemTime::UNIX_EPOCH)
                .unwrap_or_default()
                .as_secs(),
        );
    DateTime::from(whole)
        .fmt(Format::DateTime)
        .expect("a time after 1970 formats")
}

#[cfg(test)]
mod tests {
    #[test]
    fn rfc3339_dates() {
        use std::time::{Duration, SystemTime};
        let at = |s| super::rfc3339(SystemTime::UNIX_EPOCH + Duration::from_secs(s));
        assert_eq!(at(1_700_000_000), "2023-11-14T22:13:20Z");
    }
}
