//! SNS publish as a drfailover-notify sink (feature `sns`): every event becomes one SNS message
//! whose body is the event's JSON and whose message attributes carry its key fields (`kind`,
//! `generation`, `client_id`, and `endpoint`, `old_writer`, `new_writer` when set), so
//! subscribers can filter on them. Requests are signed with SigV4 (see [`crate::aws`]).
//!
//! [`SnsPublisher::publish`] blocks (bounded by its deadline); [`SnsPublisher::into_sink`] runs it
//! on a worker thread of its own behind a bounded queue ([`AsyncSink`]), so a slow or
//! unreachable SNS never holds up the notifier.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use drfailover_notify::{AsyncSink, Event};
use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};
use serde::Deserialize;

use crate::aws::credentials::{load_region, process_env, Env};
use crate::aws::CredentialChain;
use crate::aws::{child_text, AwsClient};
use crate::retry::RetryPolicy;
use crate::AnnounceError;
use drfailover_aws::AwsError;

/// The `[sns]` table: where to publish failover events.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SnsConfig {
    /// The topic, e.g. `arn:aws:sns:eu-west-1:123456789012:db-failover`.
    pub topic_arn: String,
    /// Region to sign for and whose endpoint to use (default: the topic ARN's region, else
    /// `AWS_REGION`, `AWS_DEFAULT_REGION`, the profile's region).
    #[serde(default)]
    pub region: Option<String>,
    /// Profile of the shared AWS files (see the route53 kind).
    #[serde(default)]
    pub profile: Option<String>,
    /// API endpoint (default `https://sns.<region>.amazonaws.com`).
    #[serde(default)]
    pub endpoint: Option<String>,
    /// How long one request may take, in ms (default 5000).
    #[serde(default = "default_timeout_ms")]
    pub timeout_ms: u64,
    /// Attempts per message, for throttling, 5xx and network errors (default 3).
    #[serde(default = "default_attempts")]
    pub attempts: u32,
    /// Events queued for the worker thread before new ones are dropped (default 256).
    #[serde(default = "default_queue")]
    pub queue: usize,
}

fn default_timeout_ms() -> u64 {
    5000
}
fn default_attempts() -> u32 {
    3
}
fn default_queue() -> usize {
    256
}

/// Form encoding: everything but unreserved characters is escaped.
const FORM: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~');

/// The region in a topic ARN (`arn:aws:sns:REGION:ACCOUNT:NAME`), if it has one. Pure.
pub fn arn_region(arn: &str) -> Option<&str> {
    let parts: Vec<&str> = arn.split(':').collect();
    (parts.len() == 6 && parts[0] == "arn" && parts[2] == "sns" && !parts[3].is_empty())
        .then_some(parts[3])
}

/// The form body of an SNS `Publish` of `event` to `topic_arn`. Pure.
pub fn publish_form(topic_arn: &str, event: &Event) -> String {
    let mut attributes: Vec<(&str, &str, String)> = vec![
        ("kind", "String", event.kind.as_str().to_string()),
        ("generation", "Number", event.generation.to_string()),
        ("client_id", "Number", event.client_id.to_string()),
    ];
    for (name, value) in [
        ("endpoint", &event.endpoint),
        ("old_writer", &event.old_writer),
        ("new_writer", &event.new_writer),
    ] {
        if let Some(value) = value.as_ref().filter(|v| !v.is_empty()) {
            attributes.push((name, "String", value.clone()));
        }
    }
    message_form(
        topic_arn,
        &format!("drfailover: {}", event.kind.as_str()),
        &event.to_json(),
        &attributes,
    )
}

/// The form body of an SNS `Publish` of `message` with `subject` and message `attributes`
/// (name, data type `String` or `Number`, value) to `topic_arn`. Pure.
pub fn message_form(
    topic_arn: &str,
    subject: &str,
    message: &str,
    attributes: &[(&str, &str, String)],
) -> String {
    let mut fields: Vec<(String, String)> = vec![
        ("Action".into(), "Publish".into()),
        ("Version".into(), "2010-03-31".into()),
        ("TopicArn".into(), topic_arn.into()),
        ("Message".into(), message.into()),
        ("Subject".into(), subject.into()),
    ];
    for (i, (name, data_type, value)) in attributes.iter().enumerate() {
        let prefix = format!("MessageAttributes.entry.{}", i + 1);
        fields.push((format!("{prefix}.Name"), name.to_string()));
        fields.push((format!("{prefix}.Value.DataType"), data_type.to_string()));
        fields.push((format!("{prefix}.Value.StringValue"), value.clone()));
    }
    fields
        .iter()
        .map(|(k, v)| {
            format!(
                "{}={}",
                utf8_percent_encode(k, FORM),
                utf8_percent_encode(v, FORM)
            )
        })
        .collect::<Vec<_>>()
        .join("&")
}

/// Publishes events to one SNS topic.
#[derive(Debug)]
pub struct SnsPublisher {
    client: AwsClient,
    topic_arn: String,
    queue: usize,
    timeout: Duration,
    attempts: u32,
}

impl SnsPublisher {
    /// Check `config`, find credentials and region. Reads the AWS files; no network I/O.
    pub fn new(config: &SnsConfig) -> Result<SnsPublisher, AnnounceError> {
        SnsPublisher::with_env(config, &process_env)
    }

    /// As [`SnsPublisher::new`] with an injected environment (for tests).
    pub fn with_env(config: &SnsConfig, env: Env<'_>) -> Result<SnsPublisher, AnnounceError> {
        let topic_arn = config.topic_arn.trim().to_string();
        if !topic_arn.starts_with("arn:") || topic_arn.split(':').count() != 6 {
            return Err(AnnounceError::Call(AwsError::Config(format!(
                "sns topic_arn `{topic_arn}`: expected arn:aws:sns:REGION:ACCOUNT:NAME"
            ))));
        }
        if config.attempts == 0 || config.timeout_ms == 0 {
            return Err(AnnounceError::Call(AwsError::Config(
                "sns: attempts and timeout_ms must be at least 1".into(),
            )));
        }
        // The chain (renewed before metadata keys expire), looked up once now so a missing
        // credential is a configuration error at start, not at the first announcement.
        let identity = std::sync::Arc::new(CredentialChain::new(config.profile.as_deref(), env));
        identity.get(Instant::now() + crate::aws::metadata::LOOKUP_BUDGET)?;
        let configured = config.region.as_deref().or(arn_region(&topic_arn));
        let region = load_region(configured, config.profile.as_deref(), env)?.ok_or_else(|| {
            AnnounceError::Call(AwsError::Config(
                "sns: no region: set `region`, use a topic ARN with a region, or set AWS_REGION"
                    .into(),
            ))
        })?;
        let endpoint = config
            .endpoint
            .clone()
            .unwrap_or_else(|| format!("https://sns.{region}.amazonaws.com"));
        let client = AwsClient::new(
            &endpoint,
            "sns",
            region,
            identity,
            RetryPolicy {
                attempts: config.attempts,
                per_attempt: Duration::from_millis(config.timeout_ms),
                base_delay: Duration::from_millis(200),
                max_delay: Duration::from_secs(2),
            },
        )?;
        Ok(SnsPublisher {
            client,
            topic_arn,
            queue: config.queue.max(1),
            timeout: Duration::from_millis(config.timeout_ms),
            attempts: config.attempts,
        })
    }

    /// Publish `event`; returns SNS's MessageId. Blocks until done or `deadline`.
    pub fn publish(&self, event: &Event, deadline: Instant) -> Result<String, AnnounceError> {
        self.send(publish_form(&self.topic_arn, event), deadline)
    }

    /// Publish one message of its own (see [`message_form`]); returns SNS's MessageId.
    /// Blocks until done or `deadline`.
    pub fn publish_message(
        &self,
        subject: &str,
        message: &str,
        attributes: &[(&str, &str, String)],
        deadline: Instant,
    ) -> Result<String, AnnounceError> {
        self.send(
            message_form(&self.topic_arn, subject, message, attributes),
            deadline,
        )
    }

    fn send(&self, body: String, deadline: Instant) -> Result<String, AnnounceError> {
        let (reply, _) = self.client.call(
            "POST",
            "/",
            Some(("application/x-www-form-urlencoded", &body)),
            deadline,
        )?;
        let doc = roxmltree::Document::parse(&reply).map_err(|e| {
            AnnounceError::Call(AwsError::Server {
                target: self.client.target(),
                reason: format!("Publish: unreadable reply: {e}"),
            })
        })?;
        doc.descendants()
            .find(|n| n.has_tag_name("PublishResult"))
            .and_then(|n| child_text(n, "MessageId"))
            .map(str::to_string)
            .ok_or_else(|| {
                AnnounceError::Call(AwsError::Server {
                    target: self.client.target(),
                    reason: "Publish: no MessageId in the reply".into(),
                })
            })
    }

    /// Run this publisher on a worker thread (`drfailover-sns`) behind a bounded queue; give
    /// events to it with [`AsyncSink::offer`] (e.g. from a `Notifier` subscription). Each event
    /// is published within `attempts × timeout_ms` plus backoff; failures are logged (without
    /// secrets) and the event is dropped.
    pub fn into_sink(self) -> std::io::Result<AsyncSink> {
        self.into_counted_sink(Arc::default())
    }

    /// [`SnsPublisher::into_sink`], adding one to `failures` for every event not published.
    pub fn into_counted_sink(self, failures: Arc<AtomicU64>) -> std::io::Result<AsyncSink> {
        let budget = self.timeout * self.attempts + Duration::from_secs(2);
        let drain = budget;
        AsyncSink::spawn("sns", self.queue, drain, move |event| {
            if let Err(e) = self.publish(event, Instant::now() + budget) {
                failures.fetch_add(1, Ordering::Relaxed);
                log::warn!(target: "drfailover", "sns: event {} not published: {e}", event.kind.as_str());
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use drfailover_notify::EventKind;

    #[test]
    fn form_and_arn() {
        assert_eq!(
            arn_region("arn:aws:sns:eu-west-1:123456789012:failover"),
            Some("eu-west-1")
        );
        assert_eq!(arn_region("arn:aws:sns::1:x"), None);
        let event = Event::new(EventKind::FailoverCompleted, 7, 3, Instant::now())
            .writers(Some("db1:3306".into()), Some("db2:3306".into()))
            .reason("primary down & replica promoted");
        let form = publish_form("arn:aws:sns:eu-west-1:1:t", &event);
        assert!(form.contains("Action=Publish"), "{form}");
        assert!(
            form.contains("MessageAttributes.entry.1.Name=kind"),
            "{form}"
        );
        assert!(
            form.contains("TopicArn=arn%3Aaws%3Asns%3Aeu-west-1%3A1%3At"),
            "{form}"
        );
        assert!(form.contains("new_writer"), "{form}");
        assert!(!form.contains(" & "), "{form}");
    }
}
