//! HTTP POST of events (generic JSON or Slack-compatible text), with timeouts and retries.

use std::time::Duration;

use crate::backoff::Backoff;
use crate::Event;

/// Body format of a webhook.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WebhookFormat {
    /// The event's stable JSON form.
    Generic,
    /// `{"text": "<one-line summary>"}` — Slack incoming webhooks and compatible services.
    Slack,
}

/// Where and how to POST events.
#[derive(Clone)]
pub struct Webhook {
    url: String,
    /// Body format.
    pub format: WebhookFormat,
    /// TCP (and TLS) connect timeout.
    pub connect_timeout: Duration,
    /// Timeout of one whole request.
    pub timeout: Duration,
    /// Attempts after the first one failed (5xx, 429, network errors).
    pub retries: u32,
    /// Ceiling of the pause before the first retry; doubled for each further one (full
    /// jitter, see [`crate::backoff`]).
    pub backoff: Duration,
}

impl std::fmt::Debug for Webhook {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Webhook")
            .field("url", &redact_url(&self.url))
            .field("format", &self.format)
            .finish_non_exhaustive()
    }
}

/// A URL safe to log: scheme and host only (webhook paths and queries carry tokens).
pub fn redact_url(url: &str) -> String {
    let (scheme, rest) = url.split_once("://").unwrap_or(("", url));
    let host = rest.split(['/', '?', '#']).next().unwrap_or("");
    let host = host.rsplit_once('@').map_or(host, |(_, h)| h);
    if scheme.is_empty() {
        format!("{host}/…")
    } else {
        format!("{scheme}://{host}/…")
    }
}

impl Webhook {
    /// A webhook to `url` with 2 s connect / 5 s request timeouts and 3 retries from 200 ms.
    pub fn new(url: impl Into<String>, format: WebhookFormat) -> Self {
        Webhook {
            url: url.into(),
            format,
            connect_timeout: Duration::from_secs(2),
            timeout: Duration::from_secs(5),
            retries: 3,
            backoff: Duration::from_millis(200),
        }
    }

    /// The body for `event` in this webhook's format.
    pub fn body(&self, event: &Event) -> String {
        match self.format {
            WebhookFormat::Generic => event.to_json(),
            WebhookFormat::Slack => {
                serde_json::json!({ "text": format!("drfailover: {}", event.summary()) })
                    .to_string()
            }
        }
    }

    /// POST `event`, retrying on failure. Blocks up to about
    /// `(retries + 1) * timeout + backoff * 2^retries`: call it from a worker thread
    /// (see [`crate::AsyncSink`]), never from a latency-sensitive one. Errors never contain
    /// the URL's path or query.
    pub fn send(&self, event: &Event) -> Result<u16, String> {
        let agent = ureq::Agent::new_with_config(
            ureq::Agent::config_builder()
                .timeout_connect(Some(self.connect_timeout))
                .timeout_global(Some(self.timeout))
                .http_status_as_error(false)
                .build(),
        );
        let body = self.body(event);
        let backoff = Backoff::new(
            self.backoff,
            self.backoff.saturating_mul(1 << self.retries.min(16)),
        );
        let mut last = String::new();
        for attempt in 0..=self.retries {
            if attempt > 0 {
                std::thread::sleep(backoff.delay(attempt - 1));
            }
            let result = agent
                .post(&self.url)
                .header("content-type", "application/json")
                .header(
                    "user-agent",
                    concat!("drfailover/", env!("CARGO_PKG_VERSION")),
                )
                .send(&body);
            match result {
                Ok(response) => {
                    let status = response.status().as_u16();
                    if status < 300 {
                        return Ok(status);
                    }
                    last = format!("HTTP {status}");
                    if status != 429 && status < 500 {
                        break; // a client error will not get better by retrying
                    }
                }
                Err(e) => last = e.to_string().replace(&self.url, &redact_url(&self.url)),
            }
        }
        Err(format!("webhook {}: {last}", redact_url(&self.url)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redaction_keeps_only_scheme_and_host() {
        assert_eq!(
            redact_url("https://hooks.slack.com/services/T000/B000/XXXXSECRET"),
            "https://hooks.slack.com/…"
        );
        assert_eq!(
            redact_url("http://user:pw@h:8080/x?token=1"),
            "http://h:8080/…"
        );
        let hook = Webhook::new("https://h/secret-token", WebhookFormat::Generic);
        assert!(!format!("{hook:?}").contains("secret-token"));
    }
}
