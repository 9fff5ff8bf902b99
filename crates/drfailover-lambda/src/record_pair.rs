//! The Route 53 failover record pair: read what the PRIMARY names, and swap the pair with a
//! compare-and-swap, using drfailover-dns's Route 53 code (listing, the pure swap plan that
//! keeps SetIdentifier, HealthCheckId and TTL, change submission).
//!
//! The swap is sent as one change batch that DELETEs each record set exactly as it was read
//! and CREATEs its new version. Route 53 applies a batch atomically and refuses a DELETE that
//! does not match the record set in every value, so of two invocations that read the same
//! pair, only the first batch applies; the second is refused (`InvalidChangeBatch`), the
//! pair is read again and found already swapped. An UPSERT would apply twice.

use std::time::{Duration, Instant};

use drfailover_dns::aws::credentials::Env;
use drfailover_dns::aws::AwsError;
use drfailover_dns::route53::{plan, Plan, RecordSet, Route53Announcer};
use drfailover_dns::{AnnounceError, Published, Route53Config};

use crate::config::Config;
use crate::policy::{RecordSeen, SwapResult};
use crate::LambdaError;

/// The failover pair of one record name.
#[derive(Debug)]
pub struct RecordPair {
    route53: Route53Announcer,
    name: String,
    primary: Published,
    secondary: Published,
    primary_set_id: String,
    secondary_set_id: String,
}

/// Turn the UPSERTs of a swap plan into a compare-and-swap batch: each record set as listed
/// in `sets` (same SetIdentifier) is DELETEd, then its new version CREATEd. Pure.
pub fn compare_and_swap_batch(
    upserts: Vec<(&'static str, RecordSet)>,
    sets: &[RecordSet],
) -> Result<Vec<(&'static str, RecordSet)>, String> {
    let mut batch = Vec::new();
    for (action, new) in upserts {
        if action != "UPSERT" {
            return Err(format!("unexpected {action} in a failover pair swap"));
        }
        let listed = sets
            .iter()
            .find(|s| {
                s.set_identifier == new.set_identifier
                    && s.rtype == new.rtype
                    && s.name
                        .trim_end_matches('.')
                        .eq_ignore_ascii_case(new.name.trim_end_matches('.'))
            })
            .ok_or_else(|| {
                format!(
                    "record set {} is not in the listing",
                    new.set_identifier
                        .as_deref()
                        .unwrap_or("(no SetIdentifier)")
                )
            })?;
        batch.push(("DELETE", listed.clone()));
        batch.push(("CREATE", new));
    }
    Ok(batch)
}

impl RecordPair {
    /// The pair named by `config`, through the Route 53 API at `config.route53_endpoint`
    /// (signed for the region [`drfailover_dns::route53::signing_region`] gives). No I/O.
    pub fn new(
        config: &Config,
        env: Env<'_>,
        attempts: u32,
        per_attempt: Duration,
    ) -> Result<RecordPair, LambdaError> {
        let route53 = Route53Announcer::with_env(
            &Route53Config {
                hosted_zone_id: config.hosted_zone_id.clone(),
                name: config.record_name.clone(),
                failover: true,
                ttl: None,
                profile: None,
                region: None,
                endpoint: Some(config.route53_endpoint.clone()),
                timeout_ms: per_attempt.as_millis() as u64,
                attempts,
                insync_timeout_ms: 60_000,
                addresses: Default::default(),
            },
            env,
        )
        .map_err(|e| LambdaError::Config(format!("route53: {e}")))?;
        let value = |host: &str| Published::parse(host).map_err(LambdaError::Config);
        Ok(RecordPair {
            route53,
            name: config.record_name.clone(),
            primary: value(&config.primary.endpoint.host)?,
            secondary: value(&config.secondary.endpoint.host)?,
            primary_set_id: config.primary_record_set_id.clone(),
            secondary_set_id: config.secondary_record_set_id.clone(),
        })
    }

    /// The PRIMARY and SECONDARY record sets in `sets`, checked against the configured
    /// SetIdentifiers. Pure.
    fn pair<'a>(
        &self,
        sets: &'a [RecordSet],
    ) -> Result<(&'a RecordSet, &'a RecordSet), LambdaError> {
        let role = |role: &str, id: &str| {
            let set = sets
                .iter()
                .find(|s| s.failover.as_deref() == Some(role))
                .ok_or_else(|| {
                    LambdaError::RecordSets(format!(
                        "{}: no {role} failover record set (create the pair with its health \
                         checks first)",
                        self.name
                    ))
                })?;
            if set.set_identifier.as_deref() != Some(id) {
                return Err(LambdaError::RecordSets(format!(
                    "{}: the {role} record set's SetIdentifier is {}, the configuration says {id}",
                    self.name,
                    set.set_identifier.as_deref().unwrap_or("(none)")
                )));
            }
            Ok(set)
        };
        Ok((
            role("PRIMARY", &self.primary_set_id)?,
            role("SECONDARY", &self.secondary_set_id)?,
        ))
    }

    fn seen(&self, primary: &RecordSet) -> RecordSeen {
        let values = primary.published();
        if values == [self.primary.clone()] {
            RecordSeen::NamesPrimary
        } else if values == [self.secondary.clone()] {
            RecordSeen::NamesSecondary
        } else {
            RecordSeen::NamesOther(primary.describe())
        }
    }

    fn list(&self, deadline: Instant) -> Result<Vec<RecordSet>, LambdaError> {
        self.route53
            .list(deadline)
            .map_err(|source| LambdaError::Aws {
                step: format!("ListResourceRecordSets {}", self.name),
                source,
            })
    }

    /// What the PRIMARY record names now. One `ListResourceRecordSets`; blocks until
    /// `deadline` at most.
    pub fn read(&self, deadline: Instant) -> Result<RecordSeen, LambdaError> {
        let sets = self.list(deadline)?;
        let (primary, _) = self.pair(&sets)?;
        Ok(self.seen(primary))
    }

    /// Swap the pair: PRIMARY → the secondary, SECONDARY → the primary, if the PRIMARY
    /// still names the primary. Returns once Route 53 accepted the batch (it is applied
    /// atomically; INSYNC is not awaited). Blocks until `deadline` at most.
    pub fn swap(&self, deadline: Instant) -> Result<SwapResult, LambdaError> {
        let sets = self.list(deadline)?;
        let (primary, _) = self.pair(&sets)?;
        let upserts = match plan(
            &sets,
            &self.name,
            true,
            None,
            Some(&self.primary),
            &self.secondary,
        ) {
            Ok(Plan::Change(changes)) => changes,
            Ok(Plan::AlreadyCurrent) => {
                return Ok(SwapResult::ChangedByOther(RecordSeen::NamesSecondary))
            }
            Err(e) if e.is_conflict() => return Ok(SwapResult::ChangedByOther(self.seen(primary))),
            Err(e) => return Err(LambdaError::RecordSets(e.to_string())),
        };
        let batch = compare_and_swap_batch(upserts, &sets).map_err(LambdaError::RecordSets)?;
        match self.route53.submit(&batch, deadline) {
            Ok((id, _, _)) => Ok(SwapResult::Swapped(id)),
            Err(AnnounceError::Call(AwsError::Rejected {
                reason,
                target,
                code,
            })) => {
                // Refused batch: the pair changed since it was read (a rival's swap), or the
                // batch is wrong. Read again to tell which.
                let now = self.read(deadline)?;
                if now == RecordSeen::NamesPrimary {
                    Err(LambdaError::Aws {
                        step: format!("ChangeResourceRecordSets {}", self.name),
                        source: AnnounceError::Call(AwsError::Rejected {
                            target,
                            code,
                            reason,
                        }),
                    })
                } else {
                    Ok(SwapResult::ChangedByOther(now))
                }
            }
            Err(source) => Err(LambdaError::Aws {
                step: format!("ChangeResourceRecordSets {}", self.name),
                source,
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(role: &str, value: &str) -> RecordSet {
        RecordSet {
            name: "db.example.com.".into(),
            rtype: "A".into(),
            set_identifier: Some(role.to_ascii_lowercase()),
            failover: Some(role.into()),
            ttl: Some(1),
            values: vec![value.into()],
            health_check_id: Some(format!("hc-{role}")),
            alias: false,
        }
    }

    #[test]
    fn swap_becomes_delete_and_create_of_each_set() {
        let sets = [set("PRIMARY", "10.0.0.1"), set("SECONDARY", "10.0.0.2")];
        let Plan::Change(upserts) = plan(
            &sets,
            "db.example.com",
            true,
            None,
            Some(&Published::parse("10.0.0.1").unwrap()),
            &Published::parse("10.0.0.2").unwrap(),
        )
        .unwrap() else {
            panic!()
        };
        let batch = compare_and_swap_batch(upserts, &sets).unwrap();
        let actions: Vec<_> = batch
            .iter()
            .map(|(a, s)| (*a, s.values[0].as_str(), s.failover.as_deref().unwrap()))
            .collect();
        assert_eq!(
            actions,
            [
                ("DELETE", "10.0.0.1", "PRIMARY"),
                ("CREATE", "10.0.0.2", "PRIMARY"),
                ("DELETE", "10.0.0.2", "SECONDARY"),
                ("CREATE", "10.0.0.1", "SECONDARY"),
            ]
        );
        // Identifiers, health checks and TTL kept.
        assert_eq!(batch[1].1.health_check_id.as_deref(), Some("hc-PRIMARY"));
        assert_eq!(batch[1].1.set_identifier.as_deref(), Some("primary"));
        assert_eq!(batch[1].1.ttl, Some(1));
        assert!(compare_and_swap_batch(vec![("DELETE", sets[0].clone())], &sets).is_err());
    }
}
