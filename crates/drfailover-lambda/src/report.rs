//! What an invocation says about itself: the outcome's name and a one-paragraph summary, the
//! SNS subject and message attributes. Pure; no secret is ever part of them (the
//! configuration's secrets are not read here).

use crate::config::Config;
use crate::policy::{InvocationOutcome, SwapResult};
use crate::LambdaError;

/// The outcome's name (`no-action`, `already-done`, `failed-over`, `error`) and a summary of
/// what was seen and done.
pub fn summarize(
    config: &Config,
    result: &Result<InvocationOutcome, LambdaError>,
) -> (&'static str, String) {
    let promoted = |promoted: bool| if promoted { "promoted " } else { "" };
    match result {
        Ok(InvocationOutcome::NoAction(verdict)) => (
            "no-action",
            format!(
                "primary {} is healthy, nothing changed ({})",
                config.primary.instance_id, verdict.because
            ),
        ),
        Ok(InvocationOutcome::AlreadyDone(seen)) => (
            "already-done",
            format!(
                "the PRIMARY record of {} no longer names {} ({seen:?}): someone else acted, \
                 nothing changed",
                config.record_name, config.primary.endpoint.host
            ),
        ),
        Ok(InvocationOutcome::FailedOver {
            verdict,
            promoted: p,
            swap: SwapResult::Swapped(change),
        }) => (
            "failed-over",
            format!(
                "{} failed ({}); {}{} is writable; {} now names it (change {change})",
                config.primary.instance_id,
                verdict.because,
                promoted(*p),
                config.secondary.instance_id,
                config.record_name
            ),
        ),
        Ok(InvocationOutcome::FailedOver {
            verdict,
            promoted: p,
            swap: SwapResult::ChangedByOther(seen),
        }) => (
            "already-done",
            format!(
                "{} failed ({}); {}{} is writable; the record pair was already swapped when \
                 this invocation's change was sent ({seen:?}; by another invocation, or by an \
                 earlier attempt of this one whose reply was lost)",
                config.primary.instance_id,
                verdict.because,
                promoted(*p),
                config.secondary.instance_id
            ),
        ),
        Err(e) => ("error", e.to_string()),
    }
}

/// The SNS subject: `drfailover-lambda RECORD: OUTCOME`, cut to SNS's 99 characters.
pub fn sns_subject(config: &Config, outcome: &str) -> String {
    format!("drfailover-lambda {}: {outcome}", config.record_name)
        .chars()
        .take(99)
        .collect()
}

/// The SNS message attributes (name, data type, value), for subscription filters:
/// `outcome`, `record`, `primary`, `secondary`, `error_kind` (`none` without an error).
pub fn sns_attributes(
    config: &Config,
    outcome: &str,
    error: Option<&LambdaError>,
) -> Vec<(&'static str, &'static str, String)> {
    vec![
        ("outcome", "String", outcome.to_string()),
        ("record", "String", config.record_name.clone()),
        ("primary", "String", config.primary.instance_id.clone()),
        ("secondary", "String", config.secondary.instance_id.clone()),
        (
            "error_kind",
            "String",
            error.map_or("none", LambdaError::kind).to_string(),
        ),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::{PrimaryVerdict, Refusal};

    fn config() -> Config {
        let vars = [
            ("PRIMARY_DB_ENDPOINT", "10.0.0.1"),
            ("SECONDARY_DB_ENDPOINT", "10.0.0.2"),
            ("PRIMARY_DB_INSTANCE_ID", "db1"),
            ("SECONDARY_DB_INSTANCE_ID", "db2"),
            ("HOSTED_ZONE_ID", "Z1"),
            ("RECORD_NAME", "db.example.com"),
            ("PRIMARY_RECORD_SET_ID", "p"),
            ("SECONDARY_RECORD_SET_ID", "s"),
            ("SNS_TOPIC_ARN", "arn:aws:sns:eu-west-1:1:t"),
            ("DB_PROBE_USER", "probe"),
            ("DB_PROBE_PASSWORD", "probe-secret-xyz"),
            ("AWS_REGION", "eu-west-1"),
        ];
        Config::from_env(&|name: &str| {
            vars.iter()
                .find(|(n, _)| *n == name)
                .map(|(_, v)| v.to_string())
        })
        .unwrap()
    }

    #[test]
    fn summaries_name_what_was_seen_and_done() {
        let config = config();
        let verdict = PrimaryVerdict {
            failed: true,
            because: "probe: unreachable (refused); RDS: stopped".into(),
        };
        let (outcome, summary) = summarize(
            &config,
            &Ok(InvocationOutcome::FailedOver {
                verdict,
                promoted: true,
                swap: SwapResult::Swapped("/change/C1".into()),
            }),
        );
        assert_eq!(outcome, "failed-over");
        assert!(summary.contains("promoted db2 is writable"), "{summary}");
        assert!(summary.contains("RDS: stopped"), "{summary}");
        let error = LambdaError::Refused(Refusal::SecondaryNotWritable("read-only".into()));
        let attributes = sns_attributes(&config, "error", Some(&error));
        assert_eq!(attributes[4].2, "refused");
        assert_eq!(
            sns_subject(&config, "error"),
            "drfailover-lambda db.example.com: error"
        );
        let everything = format!("{attributes:?} {summary}");
        assert!(!everything.contains("probe-secret-xyz"));
    }
}
