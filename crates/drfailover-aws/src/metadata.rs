//! Credentials from the metadata endpoints, as the AWS SDKs read them:
//!
//! - ECS/EKS containers: `GET` of `http://169.254.170.2` + `AWS_CONTAINER_CREDENTIALS_RELATIVE_URI`,
//!   or of `AWS_CONTAINER_CREDENTIALS_FULL_URI` (https, or http to a loopback or the ECS/EKS
//!   agent addresses), with the `Authorization` header from `AWS_CONTAINER_AUTHORIZATION_TOKEN`
//!   or the file named by `AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE`. 2 s per request.
//! - EC2 instance metadata, IMDSv2 only: `PUT /latest/api/token` (token TTL header), then
//!   `GET /latest/meta-data/iam/security-credentials/` for the role name and
//!   `GET …/security-credentials/ROLE` for the keys. The endpoint is
//!   `AWS_EC2_METADATA_SERVICE_ENDPOINT` (default `http://169.254.169.254`);
//!   `AWS_EC2_METADATA_DISABLED=true` turns it off. 1 s per request and 1 attempt by default
//!   (`AWS_METADATA_SERVICE_TIMEOUT` seconds, `AWS_METADATA_SERVICE_NUM_ATTEMPTS`), like the
//!   SDKs, so a host without metadata costs at most about a second.
//!
//! Replies are read up to 64 KiB; errors name the endpoint, never a token or key.

use std::time::{Duration, Instant, SystemTime};

use aws_credential_types::Credentials;
use serde::Deserialize;

use crate::identity::{AwsIdentity, Env};
use crate::AwsError;

/// The default instance metadata endpoint.
pub const IMDS_ENDPOINT: &str = "http://169.254.169.254";
/// The ECS agent's credential endpoint (for a relative URI).
pub const ECS_ENDPOINT: &str = "http://169.254.170.2";
/// The SDKs' instance metadata timeout per request.
pub const IMDS_TIMEOUT: Duration = Duration::from_secs(1);
/// The SDKs' container endpoint timeout per request.
pub const CONTAINER_TIMEOUT: Duration = Duration::from_secs(2);
/// How long a whole credential lookup may take when the caller gives no deadline.
pub const LOOKUP_BUDGET: Duration = Duration::from_secs(5);
/// The largest metadata reply read.
const REPLY_LIMIT: u64 = 64 * 1024;
/// Lifetime asked for the IMDSv2 session token (the SDKs' default, 6 hours).
const IMDS_TOKEN_TTL: &str = "21600";

/// The JSON both endpoints answer with.
#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct Reply {
    access_key_id: String,
    secret_access_key: String,
    #[serde(default)]
    token: Option<String>,
    #[serde(default)]
    expiration: Option<String>,
}

/// Parse a metadata credentials reply (`AccessKeyId`, `SecretAccessKey`, `Token`,
/// `Expiration` in RFC 3339). Pure. Errors name `source`, never the body.
pub fn parse_reply(body: &str, source: &str) -> Result<AwsIdentity, AwsError> {
    let reply: Reply = serde_json::from_str(body).map_err(|e| {
        AwsError::Credentials(format!(
            "{source}: not a credentials document (line {} column {})",
            e.line(),
            e.column()
        ))
    })?;
    if reply.access_key_id.is_empty() || reply.secret_access_key.is_empty() {
        return Err(AwsError::Credentials(format!(
            "{source}: AccessKeyId or SecretAccessKey is empty"
        )));
    }
    let expiry = match reply.expiration.as_deref() {
        None => None,
        Some(text) => Some(parse_time(text).ok_or_else(|| {
            AwsError::Credentials(format!(
                "{source}: Expiration `{text}` is not an RFC 3339 time"
            ))
        })?),
    };
    Ok(AwsIdentity {
        credentials: Credentials::new(
            reply.access_key_id,
            reply.secret_access_key,
            reply.token.filter(|t| !t.is_empty()),
            expiry,
            "drfailover",
        ),
        source: source.to_string(),
    })
}

/// An RFC 3339 time (`2026-12-06T15:00:00Z`). Pure.
pub fn parse_time(text: &str) -> Option<SystemTime> {
    use aws_smithy_types::date_time::{DateTime, Format};
    let t = DateTime::from_str(text, Format::DateTimeWithOffset).ok()?;
    SystemTime::try_from(t).ok()
}

fn agent(timeout: Duration) -> ureq::Agent {
    ureq::Agent::new_with_config(
        ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(timeout))
            .max_redirects(0)
            .proxy(None)
            .user_agent(concat!("drfailover/", env!("CARGO_PKG_VERSION")))
            .build(),
    )
}

/// One bounded request; the 2xx body, else why not (status or network error).
fn request(
    agent: &ureq::Agent,
    method: &str,
    url: &str,
    headers: &[(&str, &str)],
    timeout: Duration,
) -> Result<String, String> {
    let mut builder = ureq::http::Request::builder().method(method).uri(url);
    for (name, value) in headers {
        builder = builder.header(*name, *value);
    }
    let request = builder.body(Vec::new()).map_err(|e| e.to_string())?;
    let request = agent
        .configure_request(request)
        .timeout_global(Some(timeout))
        .build();
    let response = agent.run(request).map_err(|e| e.to_string())?;
    let status = response.status().as_u16();
    let body = response
        .into_body()
        .with_config()
        .limit(REPLY_LIMIT)
        .read_to_string()
        .map_err(|e| format!("reading the reply: {e}"))?;
    if (200..300).contains(&status) {
        Ok(body)
    } else {
        Err(format!("HTTP {status}"))
    }
}

/// The time left before `deadline`, at most `per_request`; an error when none is left.
fn budget(per_request: Duration, deadline: Instant, what: &str) -> Result<Duration, String> {
    deadline
        .checked_duration_since(Instant::now())
        .filter(|d| !d.is_zero())
        .map(|d| d.min(per_request))
        .ok_or_else(|| format!("{what}: the deadline passed"))
}

fn is_true(value: Option<String>) -> bool {
    value.is_some_and(|v| v.eq_ignore_ascii_case("true"))
}

/// Credentials from the ECS/EKS container endpoint: `Ok(None)` when neither URI variable is
/// set. Blocks for at most 2 s (or until `deadline`).
pub fn container_credentials(
    env: Env<'_>,
    deadline: Instant,
) -> Result<Option<AwsIdentity>, AwsError> {
    let url = match (
        env("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI"),
        env("AWS_CONTAINER_CREDENTIALS_FULL_URI"),
    ) {
        (Some(relative), _) => format!("{ECS_ENDPOINT}{relative}"),
        (None, Some(full)) => {
            check_full_uri(&full)?;
            full
        }
        (None, None) => return Ok(None),
    };
    let token = match (
        env("AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE"),
        env("AWS_CONTAINER_AUTHORIZATION_TOKEN"),
    ) {
        (Some(file), _) => {
            let text = drfailover_files::read_text(
                std::path::Path::new(&file),
                drfailover_files::SECRET_FILE_LIMIT,
            )
            .map_err(|e| {
                AwsError::Credentials(format!("AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE: {e}"))
            })?;
            Some(text.trim().to_string())
        }
        (None, token) => token,
    };
    let source = format!("container endpoint {}", redact_query(&url));
    let timeout = budget(CONTAINER_TIMEOUT, deadline, &source).map_err(AwsError::Credentials)?;
    let mut headers = vec![("accept", "application/json")];
    if let Some(token) = token.as_deref() {
        if token.contains(['\r', '\n']) {
            return Err(AwsError::Credentials(
                "the container authorization token contains a line break".into(),
            ));
        }
        headers.push(("authorization", token));
    }
    let body = request(&agent(timeout), "GET", &url, &headers, timeout)
        .map_err(|why| AwsError::Credentials(format!("{source}: {why}")))?;
    parse_reply(&body, &source).map(Some)
}

/// A full container URI must be https, or http to loopback or the ECS/EKS agent addresses
/// (the SDKs' rule: credentials never travel in clear text off the host).
fn check_full_uri(url: &str) -> Result<(), AwsError> {
    if url.starts_with("https://") {
        return Ok(());
    }
    let host = url
        .strip_prefix("http://")
        .and_then(|rest| rest.split(['/', '?']).next())
        .map(|authority| {
            if let Some(v6) = authority.strip_prefix('[') {
                v6.split(']').next().unwrap_or("").to_string()
            } else {
                authority.split(':').next().unwrap_or("").to_string()
            }
        });
    let allowed = host.as_deref().is_some_and(|h| {
        h == "localhost"
            || h == "169.254.170.2"
            || h == "169.254.170.23"
            || h.parse::<std::net::IpAddr>().is_ok_and(|ip| {
                ip.is_loopback() || ip == "fd00:ec2::23".parse::<std::net::IpAddr>().unwrap()
            })
    });
    if allowed {
        Ok(())
    } else {
        Err(AwsError::Credentials(format!(
            "AWS_CONTAINER_CREDENTIALS_FULL_URI `{}`: must be https, or http to a loopback \
             address or the ECS/EKS agent",
            redact_query(url)
        )))
    }
}

fn redact_query(url: &str) -> &str {
    url.split('?').next().unwrap_or(url)
}

/// Credentials from the EC2 instance metadata service (IMDSv2). `Err` carries why there are
/// none (disabled, unreachable, no role), for the chain's message. Blocks for at most
/// `attempts × 3 × timeout` (by default about 1 s when nothing answers), cut at `deadline`.
pub fn instance_credentials(env: Env<'_>, deadline: Instant) -> Result<AwsIdentity, String> {
    if is_true(env("AWS_EC2_METADATA_DISABLED")) {
        return Err("instance metadata is disabled (AWS_EC2_METADATA_DISABLED)".into());
    }
    let endpoint = env("AWS_EC2_METADATA_SERVICE_ENDPOINT")
        .unwrap_or_else(|| IMDS_ENDPOINT.to_string())
        .trim_end_matches('/')
        .to_string();
    let timeout = env("AWS_METADATA_SERVICE_TIMEOUT")
        .and_then(|s| s.trim().parse::<u64>().ok())
        .map(|s| Duration::from_secs(s.clamp(1, 60)))
        .unwrap_or(IMDS_TIMEOUT);
    let attempts = env("AWS_METADATA_SERVICE_NUM_ATTEMPTS")
        .and_then(|s| s.trim().parse::<u32>().ok())
        .unwrap_or(1)
        .clamp(1, 10);
    let what = format!("instance metadata at {endpoint}");
    let mut last = String::new();
    for _ in 0..attempts {
        match imds_once(&endpoint, timeout, deadline, &what) {
            Ok(identity) => return Ok(identity),
            Err(why) => last = why,
        }
        if Instant::now() >= deadline {
            break;
        }
    }
    Err(last)
}

fn imds_once(
    endpoint: &str,
    timeout: Duration,
    deadline: Instant,
    what: &str,
) -> Result<AwsIdentity, String> {
    let agent = agent(timeout);
    let fail = |step: &str, why: String| format!("{what}: {step}: {why}");
    let token = request(
        &agent,
        "PUT",
        &format!("{endpoint}/latest/api/token"),
        &[("x-aws-ec2-metadata-token-ttl-seconds", IMDS_TOKEN_TTL)],
        budget(timeout, deadline, what)?,
    )
    .map_err(|why| fail("session token", why))?;
    let token = token.trim();
    if token.is_empty() || token.contains(['\r', '\n']) {
        return Err(fail("session token", "malformed token".into()));
    }
    let roles = request(
        &agent,
        "GET",
        &format!("{endpoint}/latest/meta-data/iam/security-credentials/"),
        &[("x-aws-ec2-metadata-token", token)],
        budget(timeout, deadline, what)?,
    )
    .map_err(|why| fail("role", why))?;
    let role = roles
        .lines()
        .map(str::trim)
        .find(|l| !l.is_empty())
        .ok_or_else(|| fail("role", "the instance has no IAM role".into()))?;
    if !role
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || "+=,.@_-".contains(c))
    {
        return Err(fail("role", "the role name is not an IAM name".into()));
    }
    let body = request(
        &agent,
        "GET",
        &format!("{endpoint}/latest/meta-data/iam/security-credentials/{role}"),
        &[("x-aws-ec2-metadata-token", token)],
        budget(timeout, deadline, what)?,
    )
    .map_err(|why| fail("credentials", why))?;
    parse_reply(&body, &format!("{what} (role {role})")).map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replies_and_times() {
        let id = parse_reply(
            r#"{"Code":"Success","AccessKeyId":"ASIAX","SecretAccessKey":"SECRETKEY","Token":"TOKEN","Expiration":"2026-12-06T15:00:00Z"}"#,
            "test",
        )
        .unwrap();
        assert_eq!(id.credentials.access_key_id(), "ASIAX");
        assert_eq!(id.credentials.session_token(), Some("TOKEN"));
        let at = id.credentials.expiry().unwrap();
        assert_eq!(
            at.duration_since(SystemTime::UNIX_EPOCH).unwrap().as_secs(),
            1_796_569_200
        );
        let err = parse_reply(
            r#"{"AccessKeyId":"A","SecretAccessKey":"SECRETKEY","Expiration":"soon"}"#,
            "x",
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("soon") && !err.contains("SECRETKEY"), "{err}");
        let err = parse_reply("SECRETKEY garbage", "x")
            .unwrap_err()
            .to_string();
        assert!(!err.contains("SECRETKEY"), "{err}");
    }

    #[test]
    fn full_uris_stay_on_the_host_unless_https() {
        for ok in [
            "https://creds.example/x",
            "http://127.0.0.1:8080/creds",
            "http://[::1]/creds",
            "http://169.254.170.23/v1/credentials",
            "http://localhost/x",
        ] {
            assert!(check_full_uri(ok).is_ok(), "{ok}");
        }
        for bad in ["http://10.0.0.1/creds", "http://creds.example/x", "ftp://x"] {
            assert!(check_full_uri(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn disabled_metadata_costs_nothing() {
        let env = |name: &str| (name == "AWS_EC2_METADATA_DISABLED").then(|| "TRUE".to_string());
        let started = Instant::now();
        let err = instance_credentials(&env, Instant::now() + Duration::from_secs(5)).unwrap_err();
        assert!(err.contains("disabled"), "{err}");
        assert!(started.elapsed() < Duration::from_millis(100));
    }
}
