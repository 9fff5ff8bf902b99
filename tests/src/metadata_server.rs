//! A local AWS metadata server on loopback, as strict as the real ones: EC2 instance metadata
//! with IMDSv2 required (`PUT /latest/api/token` with a TTL header gives a session token;
//! every `GET` without that token is answered 401, as on an instance with `HttpTokens=required`)
//! and the ECS/EKS container credential endpoint (`GET /creds` with the expected
//! `Authorization` header, else 401). It hands out credentials `ASIATEST1`, `ASIATEST2`, … that
//! expire after the lifetime the test sets, and records every request.
//!
//! Point clients at it with `AWS_EC2_METADATA_SERVICE_ENDPOINT=`[`MetadataServer::endpoint`]
//! or `AWS_CONTAINER_CREDENTIALS_FULL_URI=`[`MetadataServer::container_uri`].

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use drfailover_http::{bytes, Background, Limits, StatusCode};

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
    /// The request path, without the query.
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
    server: Background,
    seen: Arc<Mutex<Vec<Seen>>>,
    lifetime_secs: Arc<AtomicU64>,
    silent: Arc<AtomicBool>,
}

/// The IMDSv2 session token the server hands out.
const SESSION: &str = "imdsv2-session-token-1";

/// What the endpoints answer; counts the credentials handed out in `issued`.
struct Answerer {
    seen: Arc<Mutex<Vec<Seen>>>,
    lifetime_secs: Arc<AtomicU64>,
    issued: AtomicU64,
}

impl Answerer {
    fn credentials(&self) -> String {
        let n = self.issued.fetch_add(1, Ordering::Relaxed) + 1;
        let expires =
            SystemTime::now() + Duration::from_secs(self.lifetime_secs.load(Ordering::Relaxed));
        format!(
            r#"{{"Code":"Success","Type":"AWS-HMAC","AccessKeyId":"ASIATEST{n}","SecretAccessKey":"{SECRET_KEY}","Token":"session-token-{n}","Expiration":"{}"}}"#,
            rfc3339(expires)
        )
    }

    fn answer(&self, request: &drfailover_http::Request) -> drfailover_http::Response {
        let header = |name: &str| {
            request
                .headers()
                .get(name)
                .map(|v| String::from_utf8_lossy(v.as_bytes()).trim().to_string())
        };
        let method = request.method().as_str().to_string();
        let path = request.uri().path().to_string();
        let ttl = header("x-aws-ec2-metadata-token-ttl-seconds");
        let token = header("x-aws-ec2-metadata-token").or_else(|| header("authorization"));
        let imds_ok = token.as_deref() == Some(SESSION);
        let (status, body) = match (method.as_str(), path.as_str()) {
            ("PUT", "/latest/api/token") if ttl.is_some() => (200, SESSION.to_string()),
            ("PUT", "/latest/api/token") => (400, String::new()),
            ("GET", "/latest/meta-data/iam/security-credentials/") if imds_ok => {
                (200, format!("{ROLE}\n"))
            }
            ("GET", p)
                if imds_ok && p == format!("/latest/meta-data/iam/security-credentials/{ROLE}") =>
            {
                (200, self.credentials())
            }
            ("GET", "/creds") if token.as_deref() == Some(CONTAINER_TOKEN) => {
                (200, self.credentials())
            }
            ("GET", _) if !imds_ok => (401, String::new()),
            _ => (404, String::new()),
        };
        self.seen
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(Seen {
                method,
                path,
                ttl,
                token,
                status,
            });
        bytes(
            StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
            body,
        )
    }
}

impl MetadataServer {
    /// Listen on 127.0.0.1 (a free port); credentials expire `lifetime` after they are
    /// handed out.
    pub fn start(lifetime: Duration) -> MetadataServer {
        let seen: Arc<Mutex<Vec<Seen>>> = Arc::default();
        let lifetime_secs = Arc::new(AtomicU64::new(lifetime.as_secs()));
        let silent: Arc<AtomicBool> = Arc::default();
        let answerer = Arc::new(Answerer {
            seen: seen.clone(),
            lifetime_secs: lifetime_secs.clone(),
            issued: AtomicU64::new(0),
        });
        let quiet = silent.clone();
        let server = Background::on_loopback(Limits::default(), move |request| {
            let answer = (!quiet.load(Ordering::Relaxed)).then(|| answerer.answer(&request));
            async move {
                match answer {
                    Some(answer) => answer,
                    // Accepted, never answered: a blackholed endpoint.
                    None => std::future::pending().await,
                }
            }
        })
        .expect("serve HTTP on loopback");
        MetadataServer {
            server,
            seen,
            lifetime_secs,
            silent,
        }
    }

    /// `http://127.0.0.1:<port>`: the instance metadata endpoint.
    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.server.port())
    }

    /// The container credential URI (`/creds`).
    pub fn container_uri(&self) -> String {
        format!("http://127.0.0.1:{}/creds", self.server.port())
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
