//! The events the function accepts, read from EventBridge's JSON: CloudWatch alarm state
//! changes and RDS DB instance events. Pure.
//!
//! An event of another source is [`Incoming::Ignored`] (logged, nothing done). An event that
//! claims to be one of ours but lacks its fields, or a payload that is not a JSON object, is
//! an error: a deployment wired wrongly must not look like a quiet success.

use serde_json::Value;

use crate::LambdaError;

/// A CloudWatch alarm's state (`detail.state.value`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AlarmState {
    /// `ALARM`: the metric crossed its threshold.
    Alarm,
    /// `OK`: back to normal.
    Ok,
    /// `INSUFFICIENT_DATA`.
    InsufficientData,
}

/// What an RDS DB instance event says (`detail.EventCategories`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RdsEventKind {
    /// Category `failure`: the instance failed.
    Failure,
    /// Category `failover`: a Multi-AZ failover started or completed.
    Failover,
    /// Category `read replica`: e.g. the replica was promoted.
    ReadReplica,
    /// Category `availability`: shutdown or restart.
    Availability,
}

/// A trigger worth verifying.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Trigger {
    /// `CloudWatch Alarm State Change`.
    Alarm {
        /// `detail.alarmName`.
        name: String,
        /// `detail.state.value`.
        state: AlarmState,
        /// `detail.state.reason`, cut to 300 characters.
        reason: String,
    },
    /// `RDS DB Instance Event` about one of the pair.
    Rds {
        /// `detail.SourceIdentifier`: the instance.
        instance_id: String,
        /// The category that made it relevant.
        kind: RdsEventKind,
        /// `detail.EventID` (`RDS-EVENT-0031`), when present.
        event_id: Option<String>,
        /// `detail.Message`, cut to 300 characters.
        message: String,
    },
}

impl Trigger {
    /// One line for logs and the SNS message.
    pub fn describe(&self) -> String {
        match self {
            Trigger::Alarm { name, state, .. } => format!("alarm {name} is {state:?}"),
            Trigger::Rds {
                instance_id,
                kind,
                event_id,
                ..
            } => format!(
                "RDS {kind:?} event {} for {instance_id}",
                event_id.as_deref().unwrap_or("(no id)")
            ),
        }
    }
}

/// What arrived.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Incoming {
    /// A trigger to verify.
    Trigger(Trigger),
    /// Not for this function; the reason is logged.
    Ignored(String),
}

fn cut(text: &str) -> String {
    text.chars().take(300).collect()
}

fn malformed(what: String) -> LambdaError {
    LambdaError::MalformedEvent(what)
}

/// Read an EventBridge event. `instances` are the pair's RDS identifiers: an RDS event
/// about another instance is ignored. Pure.
pub fn parse(event: &Value, instances: [&str; 2]) -> Result<Incoming, LambdaError> {
    let object = event
        .as_object()
        .ok_or_else(|| malformed(format!("expected a JSON object, got {}", kind_of(event))))?;
    let source = object.get("source").and_then(Value::as_str);
    let detail_type = object.get("detail-type").and_then(Value::as_str);
    match (source, detail_type) {
        (Some("aws.cloudwatch"), Some("CloudWatch Alarm State Change")) => {
            let detail = detail(object)?;
            let name = detail
                .get("alarmName")
                .and_then(Value::as_str)
                .ok_or_else(|| malformed("alarm event without detail.alarmName".into()))?;
            let state = detail
                .get("state")
                .and_then(|s| s.get("value"))
                .and_then(Value::as_str)
                .ok_or_else(|| malformed("alarm event without detail.state.value".into()))?;
            let state = match state {
                "ALARM" => AlarmState::Alarm,
                "OK" => AlarmState::Ok,
                "INSUFFICIENT_DATA" => AlarmState::InsufficientData,
                other => {
                    return Err(malformed(format!(
                        "alarm event with detail.state.value `{}`: expected ALARM, OK or \
                         INSUFFICIENT_DATA",
                        cut(other)
                    )))
                }
            };
            let reason = detail
                .get("state")
                .and_then(|s| s.get("reason"))
                .and_then(Value::as_str)
                .unwrap_or("");
            Ok(Incoming::Trigger(Trigger::Alarm {
                name: cut(name),
                state,
                reason: cut(reason),
            }))
        }
        (Some("aws.rds"), Some("RDS DB Instance Event")) => {
            let detail = detail(object)?;
            let instance_id = detail
                .get("SourceIdentifier")
                .and_then(Value::as_str)
                .ok_or_else(|| malformed("RDS event without detail.SourceIdentifier".into()))?;
            let categories = detail
                .get("EventCategories")
                .and_then(Value::as_array)
                .ok_or_else(|| malformed("RDS event without detail.EventCategories".into()))?;
            if !instances.contains(&instance_id) {
                return Ok(Incoming::Ignored(format!(
                    "RDS event for {}, not {} or {}",
                    cut(instance_id),
                    instances[0],
                    instances[1]
                )));
            }
            let kind = categories
                .iter()
                .filter_map(Value::as_str)
                .find_map(|c| match c {
                    "failure" => Some(RdsEventKind::Failure),
                    "failover" => Some(RdsEventKind::Failover),
                    "read replica" => Some(RdsEventKind::ReadReplica),
                    "availability" => Some(RdsEventKind::Availability),
                    _ => None,
                });
            let Some(kind) = kind else {
                return Ok(Incoming::Ignored(format!(
                    "RDS event for {instance_id} of categories {}: not a failure, failover, \
                     read replica or availability event",
                    cut(&Value::Array(categories.clone()).to_string())
                )));
            };
            Ok(Incoming::Trigger(Trigger::Rds {
                instance_id: instance_id.to_string(),
                kind,
                event_id: detail.get("EventID").and_then(Value::as_str).map(cut),
                message: cut(detail.get("Message").and_then(Value::as_str).unwrap_or("")),
            }))
        }
        (Some(source), detail_type) => Ok(Incoming::Ignored(format!(
            "event from {} ({}): not an alarm state change or an RDS instance event",
            cut(source),
            cut(detail_type.unwrap_or("no detail-type"))
        ))),
        (None, _) => Err(malformed(
            "no `source`: expected an EventBridge event (CloudWatch Alarm State Change or RDS \
             DB Instance Event)"
                .into(),
        )),
    }
}

fn detail(object: &serde_json::Map<String, Value>) -> Result<&Value, LambdaError> {
    object
        .get("detail")
        .filter(|d| d.is_object())
        .ok_or_else(|| malformed("event without a `detail` object".into()))
}

fn kind_of(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const PAIR: [&str; 2] = ["db1", "db2"];

    #[test]
    fn alarm_state_change() {
        let event = json!({
            "version": "0", "id": "c4c1c1c9", "detail-type": "CloudWatch Alarm State Change",
            "source": "aws.cloudwatch", "account": "123456789012", "region": "us-east-1",
            "resources": ["arn:aws:cloudwatch:us-east-1:123456789012:alarm:db-down"],
            "detail": {"alarmName": "db-down",
                       "state": {"value": "ALARM", "reason": "Threshold Crossed"},
                       "previousState": {"value": "OK"}}
        });
        assert_eq!(
            parse(&event, PAIR).unwrap(),
            Incoming::Trigger(Trigger::Alarm {
                name: "db-down".into(),
                state: AlarmState::Alarm,
                reason: "Threshold Crossed".into()
            })
        );
        // The field hand-written functions read is not there: state.value is required.
        let wrong = json!({"source": "aws.cloudwatch", "detail-type": "CloudWatch Alarm State Change",
                           "detail": {"alarmName": "db-down", "newState": "ALARM"}});
        let err = parse(&wrong, PAIR).unwrap_err().to_string();
        assert!(err.contains("detail.state.value"), "{err}");
    }

    #[test]
    fn rds_events() {
        let event = json!({
            "detail-type": "RDS DB Instance Event", "source": "aws.rds",
            "detail": {"EventCategories": ["failure"], "SourceType": "DB_INSTANCE",
                       "SourceIdentifier": "db1", "EventID": "RDS-EVENT-0031",
                       "Message": "DB instance put into a failed state"}
        });
        let Incoming::Trigger(Trigger::Rds { kind, event_id, .. }) = parse(&event, PAIR).unwrap()
        else {
            panic!()
        };
        assert_eq!(kind, RdsEventKind::Failure);
        assert_eq!(event_id.as_deref(), Some("RDS-EVENT-0031"));
        let other = json!({"detail-type": "RDS DB Instance Event", "source": "aws.rds",
                           "detail": {"EventCategories": ["failure"], "SourceIdentifier": "db9"}});
        assert!(matches!(parse(&other, PAIR).unwrap(), Incoming::Ignored(_)));
        let backup = json!({"detail-type": "RDS DB Instance Event", "source": "aws.rds",
                            "detail": {"EventCategories": ["backup"], "SourceIdentifier": "db1"}});
        assert!(matches!(
            parse(&backup, PAIR).unwrap(),
            Incoming::Ignored(_)
        ));
    }

    #[test]
    fn foreign_and_malformed() {
        let s3 = json!({"source": "aws.s3", "detail-type": "Object Created", "detail": {}});
        assert!(matches!(parse(&s3, PAIR).unwrap(), Incoming::Ignored(_)));
        for bad in [
            json!("ALARM"),
            json!([1, 2]),
            json!({"detail": {}}),
            json!(null),
        ] {
            let err = parse(&bad, PAIR).unwrap_err();
            assert!(matches!(err, LambdaError::MalformedEvent(_)), "{err}");
        }
        let no_detail = json!({"source": "aws.rds", "detail-type": "RDS DB Instance Event"});
        assert!(parse(&no_detail, PAIR).is_err());
    }
}
