//! A small AWS API client: SigV4-signed HTTPS requests (`aws-sigv4`) over `ureq`, bounded
//! retries for throttling and transient failures, AWS error bodies (XML or JSON) turned into
//! clear errors. Blocking; one request at a time.

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use aws_sigv4::http_request::{
    sign, PayloadChecksumKind, SignableBody, SignableRequest, SigningSettings,
};
use aws_sigv4::sign::v4;

use crate::chain::CredentialChain;
use crate::retry::{self, AttemptOutcome, RetryPolicy};
use crate::AwsError;

/// The largest reply body read (AWS API replies are a few KiB).
const REPLY_LIMIT: u64 = 1024 * 1024;

/// Error codes worth another attempt (throttling and transient service trouble).
const RETRYABLE_CODES: &[&str] = &[
    "Throttling",
    "ThrottlingException",
    "ThrottledException",
    "PriorRequestNotComplete",
    "RequestLimitExceeded",
    "TooManyRequestsException",
    "ServiceUnavailable",
    "InternalFailure",
    "InternalError",
    "InternalServiceError",
];

/// Error codes that mean the credentials themselves are wrong.
const CREDENTIAL_CODES: &[&str] = &[
    "InvalidClientTokenId",
    "SignatureDoesNotMatch",
    "UnrecognizedClientException",
    "IncompleteSignature",
    "ExpiredToken",
    "InvalidAccessKeyId",
    "MissingAuthenticationToken",
    "ExpiredTokenException",
];

/// One AWS service endpoint with credentials.
pub struct AwsClient {
    endpoint: String,
    service: &'static str,
    region: String,
    credentials: Arc<CredentialChain>,
    policy: RetryPolicy,
    agent: ureq::Agent,
}

impl std::fmt::Debug for AwsClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AwsClient")
            .field("endpoint", &self.endpoint)
            .field("service", &self.service)
            .field("region", &self.region)
            .field("credentials", &self.credentials)
            .field("policy", &self.policy)
            .finish_non_exhaustive()
    }
}

/// An AWS error reply: HTTP status, error code and message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ApiError {
    /// HTTP status.
    pub status: u16,
    /// AWS error code (`Throttling`, `InvalidChangeBatch`, …), or `HTTP <status>`.
    pub code: String,
    /// The message(s), joined.
    pub message: String,
}

/// Read an AWS error body: XML (`<ErrorResponse><Error><Code>`, or Route 53's
/// `<InvalidChangeBatch><Messages>`) or JSON (`{"__type": "…#Code", "message": "…"}`, the
/// JSON protocol of Secrets Manager). Pure.
pub fn parse_error(status: u16, body: &str) -> ApiError {
    let fallback = ApiError {
        status,
        code: format!("HTTP {status}"),
        message: body.chars().take(200).collect(),
    };
    if let Ok(serde_json::Value::Object(map)) = serde_json::from_str(body) {
        let text = |keys: &[&str]| {
            keys.iter()
                .find_map(|k| map.get(*k).and_then(|v| v.as_str()))
                .map(str::to_string)
        };
        return match text(&["__type", "code", "Code"]) {
            Some(code) => ApiError {
                status,
                code: code.rsplit('#').next().unwrap_or(&code).to_string(),
                message: text(&["message", "Message"]).unwrap_or_default(),
            },
            None => fallback,
        };
    }
    let Ok(doc) = roxmltree::Document::parse(body) else {
        return fallback;
    };
    let root = doc.root_element();
    let text_of = |tag: &str| {
        doc.descendants()
            .filter(|n| n.has_tag_name(tag))
            .filter_map(|n| n.text())
            .map(str::trim)
            .collect::<Vec<_>>()
    };
    let code = if root.has_tag_name("InvalidChangeBatch") {
        "InvalidChangeBatch".to_string()
    } else {
        match text_of("Code").first() {
            Some(code) => code.to_string(),
            None => return fallback,
        }
    };
    ApiError {
        status,
        code,
        message: text_of("Message").join("; "),
    }
}

/// The first text of element `tag` under `node`. Pure.
pub fn child_text<'a>(node: roxmltree::Node<'a, 'a>, tag: &str) -> Option<&'a str> {
    node.children()
        .find(|n| n.has_tag_name(tag))
        .and_then(|n| n.text())
        .map(str::trim)
}

/// Escape text for an XML element. Pure.
pub fn xml_escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

impl AwsClient {
    /// A client for `service` (signing name, e.g. `route53`, `sns`, `secretsmanager`) at
    /// `endpoint` (`https://route53.amazonaws.com`, or a local one), signing with `credentials`:
    /// fixed keys ([`crate::credentials::AwsIdentity`]) or a shared [`CredentialChain`] (renewed before they
    /// expire). No I/O.
    pub fn new(
        endpoint: &str,
        service: &'static str,
        region: String,
        credentials: impl Into<Arc<CredentialChain>>,
        policy: RetryPolicy,
    ) -> Result<AwsClient, AwsError> {
        let endpoint = endpoint.trim_end_matches('/').to_string();
        let authority = endpoint
            .split_once("://")
            .map_or(endpoint.as_str(), |(_, rest)| rest)
            .split(['/', '?', '#'])
            .next()
            .unwrap_or("");
        if authority.contains('@') {
            // Requests are signed (SigV4): credentials in the URL are a mistake, and the URL
            // would print them in every message.
            return Err(AwsError::Config(
                "endpoint: a URL with credentials (user:password@) is not accepted (not shown)"
                    .into(),
            ));
        }
        if !(endpoint.starts_with("https://") || endpoint.starts_with("http://")) {
            return Err(AwsError::Config(format!(
                "endpoint `{endpoint}`: expected an http:// or https:// URL"
            )));
        }
        let agent = ureq::Agent::new_with_config(
            ureq::Agent::config_builder()
                .http_status_as_error(false)
                .timeout_global(Some(policy.per_attempt))
                .user_agent(concat!("drfailover/", env!("CARGO_PKG_VERSION")))
                .build(),
        );
        Ok(AwsClient {
            endpoint,
            service,
            region,
            credentials: credentials.into(),
            policy,
            agent,
        })
    }

    /// `service at endpoint`, for messages.
    pub fn target(&self) -> String {
        format!("{} {}", self.service, self.endpoint)
    }

    /// The endpoint URL.
    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }

    /// The region requests are signed for.
    pub fn region(&self) -> &str {
        &self.region
    }

    /// Where the credentials came from and the access key id (never the secret).
    pub fn credential_source(&self) -> String {
        self.credentials.describe()
    }

    /// Send a signed request (`path_and_query` already percent-encoded; `body` with its
    /// content type) and return the 2xx reply's body and the attempts made. Throttling, 5xx
    /// and network errors are retried with jittered backoff within `deadline`; other errors
    /// are returned at once. Blocks until `deadline` at most.
    pub fn call(
        &self,
        method: &str,
        path_and_query: &str,
        body: Option<(&str, &str)>,
        deadline: Instant,
    ) -> Result<(String, u32), AwsError> {
        self.call_with_headers(method, path_and_query, &[], body, deadline)
    }

    /// [`AwsClient::call`] with extra headers (signed too), e.g. the JSON protocol's
    /// `x-amz-target`. Blocks until `deadline` at most.
    pub fn call_with_headers(
        &self,
        method: &str,
        path_and_query: &str,
        extra_headers: &[(&str, &str)],
        body: Option<(&str, &str)>,
        deadline: Instant,
    ) -> Result<(String, u32), AwsError> {
        let url = format!("{}{}", self.endpoint, path_and_query);
        retry::run(&self.policy, &self.target(), deadline, |budget| {
            self.attempt(method, &url, extra_headers, body, budget, deadline)
        })
    }

    fn attempt(
        &self,
        method: &str,
        url: &str,
        extra_headers: &[(&str, &str)],
        body: Option<(&str, &str)>,
        budget: Duration,
        deadline: Instant,
    ) -> AttemptOutcome<String> {
        let identity = match self.credentials.get(deadline) {
            Ok(id) => id.credentials.into(),
            Err(e) => return AttemptOutcome::Fail(e),
        };
        let mut settings = SigningSettings::default();
        // Send (and sign) x-amz-content-sha256: accepted by every AWS service, and what lets
        // moto's signature check hash a GET's empty body instead of its query parameters.
        settings.payload_checksum_kind = PayloadChecksumKind::XAmzSha256;
        let params = match v4::SigningParams::builder()
            .identity(&identity)
            .region(&self.region)
            .name(self.service)
            .time(SystemTime::now())
            .settings(settings)
            .build()
        {
            Ok(p) => p.into(),
            Err(e) => return AttemptOutcome::Fail(AwsError::Config(format!("signing: {e}"))),
        };
        let mut headers: Vec<(&str, &str)> = extra_headers.to_vec();
        if let Some((content_type, _)) = body {
            headers.push(("content-type", content_type));
        }
        let payload = body.map(|(_, b)| b.as_bytes()).unwrap_or(b"");
        let signable = match SignableRequest::new(
            method,
            url,
            headers.iter().copied(),
            SignableBody::Bytes(payload),
        ) {
            Ok(s) => s,
            Err(e) => return AttemptOutcome::Fail(AwsError::Config(format!("signing {url}: {e}"))),
        };
        let instructions = match sign(signable, &params) {
            Ok(out) => out.into_parts().0,
            Err(e) => return AttemptOutcome::Fail(AwsError::Config(format!("signing: {e}"))),
        };
        let mut request = ureq::http::Request::builder().method(method).uri(url);
        for (name, value) in &headers {
            request = request.header(*name, *value);
        }
        for (name, value) in instructions.headers() {
            request = request.header(name, value);
        }
        let request = match request.body(payload.to_vec()) {
            Ok(r) => r,
            Err(e) => return AttemptOutcome::Fail(AwsError::Config(format!("request {url}: {e}"))),
        };
        let result = self
            .agent
            .configure_request(request)
            .timeout_global(Some(budget))
            .build();
        let response = match self.agent.run(result) {
            Ok(r) => r,
            Err(e) => return AttemptOutcome::Retry(e.to_string(), true),
        };
        let status = response.status().as_u16();
        let text = match response
            .into_body()
            .with_config()
            .limit(REPLY_LIMIT)
            .read_to_string()
        {
            Ok(t) => t,
            Err(e) => return AttemptOutcome::Retry(format!("reading the reply: {e}"), true),
        };
        if (200..300).contains(&status) {
            return AttemptOutcome::Done(text);
        }
        let error = parse_error(status, &text);
        let summary = format!("{} (HTTP {status}): {}", error.code, error.message);
        if status >= 500 || status == 429 || RETRYABLE_CODES.contains(&error.code.as_str()) {
            return AttemptOutcome::Retry(summary, false);
        }
        let target = self.target();
        if CREDENTIAL_CODES.contains(&error.code.as_str()) {
            // Keys from metadata may have been revoked early: look them up again next time.
            self.credentials.forget();
            return AttemptOutcome::Fail(AwsError::Credentials(format!(
                "{target} rejected the credentials from {}: {summary}",
                self.credential_source()
            )));
        }
        AttemptOutcome::Fail(if status == 403 || error.code.starts_with("AccessDenied") {
            AwsError::Refused {
                target,
                code: error.code,
                reason: format!("{summary} (credentials from {})", self.credential_source()),
            }
        } else {
            AwsError::Rejected {
                target,
                code: error.code,
                reason: summary,
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_bodies() {
        let e = parse_error(
            400,
            r#"<?xml version="1.0"?><ErrorResponse xmlns="https://route53.amazonaws.com/doc/2013-04-01/"><Error><Type>Sender</Type><Code>Throttling</Code><Message>Rate exceeded</Message></Error><RequestId>x</RequestId></ErrorResponse>"#,
        );
        assert_eq!(
            (e.code.as_str(), e.message.as_str()),
            ("Throttling", "Rate exceeded")
        );
        let e = parse_error(
            400,
            r#"<InvalidChangeBatch xmlns="https://route53.amazonaws.com/doc/2013-04-01/"><Messages><Message>Tried to create a record that already exists</Message></Messages></InvalidChangeBatch>"#,
        );
        assert_eq!(e.code, "InvalidChangeBatch");
        assert!(e.message.contains("already exists"));
        let e = parse_error(502, "<html>bad gateway</html>");
        assert_eq!(e.code, "HTTP 502");
        assert_eq!(xml_escape("a<b&\"c\">"), "a&lt;b&amp;&quot;c&quot;&gt;");
        let e = parse_error(
            400,
            r#"{"__type":"com.amazonaws.secretsmanager#ResourceNotFoundException","message":"Secrets Manager can't find the specified secret."}"#,
        );
        assert_eq!(e.code, "ResourceNotFoundException");
        assert!(e.message.contains("can't find"));
    }
}
