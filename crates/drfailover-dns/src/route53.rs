//! Route 53: point a record at the new writer with `ChangeResourceRecordSets`, then wait for
//! `GetChange` to report INSYNC.
//!
//! Two shapes of record:
//! - simple (`failover = false`): the name's one A/AAAA/CNAME record set (no SetIdentifier) is
//!   UPSERTed to the new writer's address. When its type changes (A → CNAME), the old set is
//!   DELETEd in the same change batch (Route 53 applies a batch atomically).
//! - failover (`failover = true`): the name's PRIMARY/SECONDARY pair of failover record sets,
//!   which must exist (created by the operator, with their health checks). The PRIMARY is
//!   UPSERTed to the new writer, keeping its SetIdentifier, HealthCheckId and TTL. When the
//!   SECONDARY held the new writer (the standby was promoted) and the old writer is known, the
//!   SECONDARY is UPSERTed to the old writer in the same batch: the pair swaps roles, and Route
//!   53's own health-checked failover keeps working in the other direction.
//!
//! Compare-and-swap: the record sets are read first (`ListResourceRecordSets`); when the old
//! writer is known and the record (the PRIMARY) no longer holds its address, nothing is sent
//! and the result is [`AnnounceError::PrerequisiteFailed`]. Route 53 has no conditional write,
//! so a rival's change between the read and the write (a few hundred ms) is not detected.
//!
//! Throttling (`Throttling`, `PriorRequestNotComplete`, …), 5xx and network errors are retried
//! with jittered backoff inside the deadline; `AccessDenied`, `InvalidChangeBatch` and other
//! validation errors are returned at once.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use serde::Deserialize;

use crate::aws::credentials::{process_env, Env};
use crate::aws::CredentialChain;
use crate::aws::{child_text, xml_escape, AwsClient};
use crate::retry::RetryPolicy;
use crate::{AddressMap, AnnounceError, AnnounceOutcome, Announcer, Published, WriterChange};
use drfailover_aws::AwsError;

/// The Route 53 API's default endpoint.
pub const DEFAULT_ENDPOINT: &str = "https://route53.amazonaws.com";

/// The region Route 53 requests are signed for unless configured: the aws partition's
/// Route 53 API is global and accepts signatures for `us-east-1` only.
pub const DEFAULT_SIGNING_REGION: &str = "us-east-1";

/// The region to sign Route 53 requests for: `configured` when set (another partition's
/// region), else [`DEFAULT_SIGNING_REGION`]. The process's region (`AWS_REGION`, the
/// profile's) is not used: it names where the caller runs, not where Route 53's API is. Pure.
pub fn signing_region(configured: Option<&str>) -> String {
    configured
        .map(str::trim)
        .filter(|r| !r.is_empty())
        .unwrap_or(DEFAULT_SIGNING_REGION)
        .to_string()
}
const API: &str = "/2013-04-01";
const XMLNS: &str = "https://route53.amazonaws.com/doc/2013-04-01/";

/// `kind = "route53"`: UPSERT the record `name` in hosted zone `hosted_zone_id`.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Route53Config {
    /// The hosted zone's id (`Z0123456789ABC`; a `/hostedzone/` prefix is accepted).
    pub hosted_zone_id: String,
    /// The record's name, e.g. `db.example.com`.
    pub name: String,
    /// Manage the PRIMARY/SECONDARY pair of a failover record instead of a simple record.
    #[serde(default)]
    pub failover: bool,
    /// TTL to write, in seconds. Default: keep the existing record's TTL (60 for a new one).
    #[serde(default)]
    pub ttl: Option<u32>,
    /// The profile of the shared credentials/config files (default: `AWS_PROFILE`, else
    /// `default`). Environment keys (`AWS_ACCESS_KEY_ID`, …) take precedence.
    #[serde(default)]
    pub profile: Option<String>,
    /// Region to sign for (default: `us-east-1`, where the aws partition's global Route 53 API
    /// lives, whatever `AWS_REGION` or the profile say; set it for another partition, e.g.
    /// `cn-northwest-1`). See [`signing_region`].
    #[serde(default)]
    pub region: Option<String>,
    /// API endpoint (default `https://route53.amazonaws.com`; e.g. a VPC endpoint or a local
    /// test server).
    #[serde(default)]
    pub endpoint: Option<String>,
    /// How long one HTTP request may take, in ms (default 5000).
    #[serde(default = "default_timeout_ms")]
    pub timeout_ms: u64,
    /// Attempts per request, for throttling, 5xx and network errors (default 5).
    #[serde(default = "default_attempts")]
    pub attempts: u32,
    /// How long to wait for the change to be INSYNC, in ms (default 60000; the deadline
    /// given to `announce` also bounds it).
    #[serde(default = "default_insync_ms")]
    pub insync_timeout_ms: u64,
    /// Node name → address to publish (see the rfc2136 kind).
    #[serde(default)]
    pub addresses: BTreeMap<String, String>,
}

fn default_timeout_ms() -> u64 {
    5000
}
fn default_attempts() -> u32 {
    5
}
fn default_insync_ms() -> u64 {
    60_000
}

/// One record set as listed by `ListResourceRecordSets`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RecordSet {
    /// Name, as Route 53 returns it (trailing dot).
    pub name: String,
    /// Type (`A`, `AAAA`, `CNAME`, …).
    pub rtype: String,
    /// SetIdentifier of a routing-policy record.
    pub set_identifier: Option<String>,
    /// `PRIMARY` or `SECONDARY` for a failover record.
    pub failover: Option<String>,
    /// TTL (absent for alias records).
    pub ttl: Option<u32>,
    /// The record's values as Route 53 lists them (addresses for `A`/`AAAA`).
    pub values: Vec<String>,
    /// The health check attached, if any.
    pub health_check_id: Option<String>,
    /// True for an alias record (not managed by drfailover).
    pub alias: bool,
}

impl RecordSet {
    /// The record's values as [`Published`] (values that do not parse are skipped).
    pub fn published(&self) -> Vec<Published> {
        self.values
            .iter()
            .filter_map(|v| Published::parse(v).ok())
            .collect()
    }

    /// `A 10.0.0.1` per value, with the failover role when there is one.
    pub fn describe(&self) -> Vec<String> {
        let role = self
            .failover
            .as_ref()
            .map(|f| format!(" ({f}, {})", self.set_identifier.as_deref().unwrap_or("?")))
            .unwrap_or_default();
        if self.alias {
            return vec![format!("{} alias{role}", self.rtype)];
        }
        self.values
            .iter()
            .map(|v| format!("{} {v}{role}", self.rtype))
            .collect()
    }

    fn to_xml(&self) -> String {
        let mut x = format!(
            "<ResourceRecordSet><Name>{}</Name><Type>{}</Type>",
            xml_escape(&self.name),
            xml_escape(&self.rtype)
        );
        if let Some(id) = &self.set_identifier {
            x += &format!("<SetIdentifier>{}</SetIdentifier>", xml_escape(id));
        }
        if let Some(role) = &self.failover {
            x += &format!("<Failover>{}</Failover>", xml_escape(role));
        }
        x += &format!("<TTL>{}</TTL><ResourceRecords>", self.ttl.unwrap_or(60));
        for v in &self.values {
            x += &format!(
                "<ResourceRecord><Value>{}</Value></ResourceRecord>",
                xml_escape(v)
            );
        }
        x += "</ResourceRecords>";
        if let Some(hc) = &self.health_check_id {
            x += &format!("<HealthCheckId>{}</HealthCheckId>", xml_escape(hc));
        }
        x + "</ResourceRecordSet>"
    }
}

/// Parse a `ListResourceRecordSetsResponse`. Pure.
pub fn parse_record_sets(xml: &str) -> Result<Vec<RecordSet>, String> {
    let doc = roxmltree::Document::parse(xml).map_err(|e| format!("unreadable XML: {e}"))?;
    Ok(doc
        .descendants()
        .filter(|n| n.has_tag_name("ResourceRecordSet"))
        .map(|set| RecordSet {
            name: child_text(set, "Name").unwrap_or("").to_string(),
            rtype: child_text(set, "Type").unwrap_or("").to_string(),
            set_identifier: child_text(set, "SetIdentifier").map(str::to_string),
            failover: child_text(set, "Failover").map(str::to_string),
            ttl: child_text(set, "TTL").and_then(|t| t.parse().ok()),
            values: set
                .descendants()
                .filter(|n| n.has_tag_name("ResourceRecord"))
                .filter_map(|r| child_text(r, "Value"))
                .map(str::to_string)
                .collect(),
            health_check_id: child_text(set, "HealthCheckId").map(str::to_string),
            alias: set.children().any(|n| n.has_tag_name("AliasTarget")),
        })
        .collect())
}

/// A `ChangeResourceRecordSetsRequest` body for `changes` (action, record set). Pure.
pub fn change_batch_xml(changes: &[(&str, RecordSet)]) -> String {
    let mut x = format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<ChangeResourceRecordSetsRequest xmlns=\"{XMLNS}\"><ChangeBatch><Comment>drfailover: writer change</Comment><Changes>"
    );
    for (action, set) in changes {
        x += &format!("<Change><Action>{action}</Action>{}</Change>", set.to_xml());
    }
    x + "</Changes></ChangeBatch></ChangeResourceRecordSetsRequest>"
}

fn same_name(a: &str, b: &str) -> bool {
    a.trim_end_matches('.')
        .eq_ignore_ascii_case(b.trim_end_matches('.'))
}

/// What to send for `change`, decided from the listed record sets. Pure.
pub fn plan(
    sets: &[RecordSet],
    name: &str,
    failover: bool,
    ttl: Option<u32>,
    old: Option<&Published>,
    new: &Published,
) -> Result<Plan, AnnounceError> {
    let ours: Vec<&RecordSet> = sets
        .iter()
        .filter(|s| same_name(&s.name, name) && ["A", "AAAA", "CNAME"].contains(&s.rtype.as_str()))
        .collect();
    let fqdn = format!("{}.", name.trim_end_matches('.'));
    let record = |template: Option<&RecordSet>, value: &Published| RecordSet {
        name: fqdn.clone(),
        rtype: value.type_name().to_string(),
        set_identifier: template.and_then(|t| t.set_identifier.clone()),
        failover: template.and_then(|t| t.failover.clone()),
        ttl: ttl.or(template.and_then(|t| t.ttl)).or(Some(60)),
        values: vec![value.value()],
        health_check_id: template.and_then(|t| t.health_check_id.clone()),
        alias: false,
    };
    let conflict = |expected: &Published, found: &[&RecordSet]| AnnounceError::PrerequisiteFailed {
        name: fqdn.clone(),
        expected: vec![expected.to_string()],
        found: found.iter().flat_map(|s| s.describe()).collect(),
        rcode: "record read from ListResourceRecordSets".into(),
    };
    if !failover {
        let simple: Vec<&RecordSet> = ours
            .iter()
            .copied()
            .filter(|s| s.set_identifier.is_none())
            .collect();
        if simple.iter().any(|s| s.alias) {
            return Err(AnnounceError::Call(AwsError::Config(format!(
                "{fqdn} is an alias record: drfailover manages plain A/AAAA/CNAME records"
            ))));
        }
        let current: Vec<Published> = simple.iter().flat_map(|s| s.published()).collect();
        if current == [new.clone()] {
            return Ok(Plan::AlreadyCurrent);
        }
        if let Some(old) = old {
            if current != [old.clone()] {
                return Err(conflict(old, &simple));
            }
        }
        let mut changes = Vec::new();
        for stale in simple.iter().filter(|s| s.rtype != new.type_name()) {
            changes.push(("DELETE", (*stale).clone()));
        }
        let template = simple.iter().find(|s| s.rtype == new.type_name()).copied();
        changes.push(("UPSERT", record(template, new)));
        return Ok(Plan::Change(changes));
    }
    let role = |r: &str| {
        ours.iter()
            .copied()
            .find(|s| s.failover.as_deref() == Some(r))
    };
    let Some(primary) = role("PRIMARY") else {
        return Err(AnnounceError::Call(AwsError::Config(format!(
            "no PRIMARY failover record set for {fqdn}: create the PRIMARY/SECONDARY pair (with \
             its health check) first, or set failover = false"
        ))));
    };
    if primary.alias {
        return Err(AnnounceError::Call(AwsError::Config(format!(
            "the PRIMARY record of {fqdn} is an alias: drfailover manages plain records"
        ))));
    }
    if primary.rtype != new.type_name() {
        return Err(AnnounceError::Call(AwsError::Config(format!(
            "the PRIMARY record of {fqdn} is {} but the new writer's address is {} ({}): a \
             failover pair keeps its type",
            primary.rtype,
            new.type_name(),
            new.value()
        ))));
    }
    let current = primary.published();
    if current == [new.clone()] {
        return Ok(Plan::AlreadyCurrent);
    }
    if let Some(old) = old {
        if current != [old.clone()] {
            return Err(conflict(old, &[primary]));
        }
    }
    let mut changes = vec![("UPSERT", record(Some(primary), new))];
    if let (Some(secondary), Some(old)) = (role("SECONDARY"), old) {
        if secondary.published() == [new.clone()] && secondary.rtype == old.type_name() {
            changes.push(("UPSERT", record(Some(secondary), old)));
        }
    }
    Ok(Plan::Change(changes))
}

/// What [`plan`] decided.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Plan {
    /// The record already holds the new writer.
    AlreadyCurrent,
    /// Send these changes (action, record set) in one batch.
    Change(Vec<(&'static str, RecordSet)>),
}

/// Announces with Route 53. Cheap to share across threads.
#[derive(Debug)]
pub struct Route53Announcer {
    client: AwsClient,
    zone_id: String,
    name: String,
    failover: bool,
    ttl: Option<u32>,
    insync_timeout: Duration,
    addresses: AddressMap,
}

impl Route53Announcer {
    /// Check `config` and find the credentials. Reads the AWS files; no network I/O.
    pub fn new(config: &Route53Config) -> Result<Route53Announcer, AnnounceError> {
        Route53Announcer::with_env(config, &process_env)
    }

    /// As [`Route53Announcer::new`] with an injected environment (for tests).
    pub fn with_env(
        config: &Route53Config,
        env: Env<'_>,
    ) -> Result<Route53Announcer, AnnounceError> {
        let zone_id = config
            .hosted_zone_id
            .trim()
            .trim_start_matches("/hostedzone/")
            .to_string();
        if zone_id.is_empty() || !zone_id.bytes().all(|b| b.is_ascii_alphanumeric()) {
            return Err(AnnounceError::Call(AwsError::Config(format!(
                "hosted_zone_id `{}`: expected an id like Z0123456789ABC",
                config.hosted_zone_id
            ))));
        }
        Published::parse(&config.name)
            .ok()
            .filter(|p| matches!(p, Published::Cname(_)))
            .ok_or_else(|| {
                AnnounceError::Call(AwsError::Config(format!(
                    "name `{}` is not a DNS name",
                    config.name
                )))
            })?;
        if config.attempts == 0 || config.timeout_ms == 0 {
            return Err(AnnounceError::Call(AwsError::Config(
                "attempts and timeout_ms must be at least 1".into(),
            )));
        }
        let addresses = AddressMap(config.addresses.clone());
        addresses.validate()?;
        // The chain (renewed before metadata keys expire), looked up once now so a missing
        // credential is a configuration error at start, not at the first announcement.
        let identity = std::sync::Arc::new(CredentialChain::new(config.profile.as_deref(), env));
        identity.get(Instant::now() + crate::aws::metadata::LOOKUP_BUDGET)?;
        let region = signing_region(config.region.as_deref());
        let client = AwsClient::new(
            config.endpoint.as_deref().unwrap_or(DEFAULT_ENDPOINT),
            "route53",
            region,
            identity,
            RetryPolicy {
                attempts: config.attempts,
                per_attempt: Duration::from_millis(config.timeout_ms),
                base_delay: Duration::from_millis(200),
                max_delay: Duration::from_secs(5),
            },
        )?;
        Ok(Route53Announcer {
            client,
            zone_id,
            name: format!(
                "{}.",
                config
                    .name
                    .trim()
                    .trim_end_matches('.')
                    .to_ascii_lowercase()
            ),
            failover: config.failover,
            ttl: config.ttl,
            insync_timeout: Duration::from_millis(config.insync_timeout_ms),
            addresses,
        })
    }

    /// The name's record sets (all types, all routing policies). Blocks until `deadline`.
    pub fn list(&self, deadline: Instant) -> Result<Vec<RecordSet>, AnnounceError> {
        let path = format!(
            "{API}/hostedzone/{}/rrset?name={}&maxitems=20",
            self.zone_id, self.name
        );
        let (body, _) = self.client.call("GET", &path, None, deadline)?;
        let sets = parse_record_sets(&body).map_err(|e| {
            AnnounceError::Call(AwsError::Server {
                target: self.client.target(),
                reason: format!("ListResourceRecordSets: {e}"),
            })
        })?;
        Ok(sets
            .into_iter()
            .filter(|s| same_name(&s.name, &self.name))
            .collect())
    }

    /// Send `changes` in one batch and wait until INSYNC (bounded by `insync_timeout_ms` and
    /// `deadline`). Returns the change id and the attempts of the change request.
    pub fn apply(
        &self,
        changes: &[(&str, RecordSet)],
        deadline: Instant,
    ) -> Result<(String, u32), AnnounceError> {
        let (id, status, attempts) = self.submit(changes, deadline)?;
        self.wait_insync(&id, status, attempts, deadline)?;
        Ok((id, attempts))
    }

    /// Send `changes` in one batch (`ChangeResourceRecordSets`) without waiting for INSYNC.
    /// Returns the change id, its status (`PENDING` or `INSYNC`) and the attempts made.
    /// Blocks until `deadline` at most.
    pub fn submit(
        &self,
        changes: &[(&str, RecordSet)],
        deadline: Instant,
    ) -> Result<(String, String, u32), AnnounceError> {
        let body = change_batch_xml(changes);
        let (reply, attempts) = self.client.call(
            "POST",
            &format!("{API}/hostedzone/{}/rrset/", self.zone_id),
            Some(("text/xml", &body)),
            deadline,
        )?;
        let (id, status) = change_info(&reply).map_err(|e| {
            AnnounceError::Call(AwsError::Server {
                target: self.client.target(),
                reason: format!("ChangeResourceRecordSets: {e}"),
            })
        })?;
        Ok((id, status, attempts))
    }

    /// Poll `GetChange` of change `id` (last seen `status`) every 250 ms until INSYNC,
    /// bounded by `insync_timeout_ms` and `deadline` ([`AwsError::Timeout`] then;
    /// `attempts` is reported in it). Blocks until then.
    pub fn wait_insync(
        &self,
        id: &str,
        mut status: String,
        attempts: u32,
        deadline: Instant,
    ) -> Result<(), AnnounceError> {
        let until = deadline.min(Instant::now() + self.insync_timeout);
        let started = Instant::now();
        while status != "INSYNC" {
            if Instant::now() + Duration::from_millis(250) >= until {
                return Err(AnnounceError::Call(AwsError::Timeout {
                    target: self.client.target(),
                    attempts,
                    elapsed: started.elapsed(),
                    last: format!(
                        "change {id} was accepted but is still {status}: Route 53 will apply it; \
                         it is not yet visible on all its name servers"
                    ),
                }));
            }
            std::thread::sleep(Duration::from_millis(250));
            let (reply, _) = self.client.call(
                "GET",
                &format!("{API}/change/{}", id.trim_start_matches("/change/")),
                None,
                until,
            )?;
            status = change_info(&reply)
                .map_err(|e| {
                    AnnounceError::Call(AwsError::Server {
                        target: self.client.target(),
                        reason: format!("GetChange: {e}"),
                    })
                })?
                .1;
        }
        Ok(())
    }
}

/// The `ChangeInfo`'s Id and Status in a reply. Pure.
pub fn change_info(xml: &str) -> Result<(String, String), String> {
    let doc = roxmltree::Document::parse(xml).map_err(|e| format!("unreadable XML: {e}"))?;
    let info = doc
        .descendants()
        .find(|n| n.has_tag_name("ChangeInfo"))
        .ok_or("no ChangeInfo in the reply")?;
    Ok((
        child_text(info, "Id")
            .ok_or("no ChangeInfo/Id")?
            .to_string(),
        child_text(info, "Status")
            .ok_or("no ChangeInfo/Status")?
            .to_string(),
    ))
}

impl Announcer for Route53Announcer {
    fn describe(&self) -> String {
        format!(
            "route53 {}{} in hosted zone {} via {} (credentials: {})",
            self.name,
            if self.failover {
                " (failover pair)"
            } else {
                ""
            },
            self.zone_id,
            self.client.endpoint(),
            self.client.credential_source()
        )
    }

    fn announce(
        &self,
        change: &WriterChange,
        deadline: Instant,
    ) -> Result<AnnounceOutcome, AnnounceError> {
        let new = self.addresses.resolve(&change.new_writer)?;
        let old = change
            .old_writer
            .as_ref()
            .map(|o| self.addresses.resolve(o))
            .transpose()?;
        let sets = self.list(deadline)?;
        match plan(
            &sets,
            &self.name,
            self.failover,
            self.ttl,
            old.as_ref(),
            &new,
        )? {
            Plan::AlreadyCurrent => Ok(AnnounceOutcome::AlreadyCurrent {
                published: new.to_string(),
            }),
            Plan::Change(changes) => {
                let (_, attempts) = self.apply(&changes, deadline)?;
                Ok(AnnounceOutcome::Changed {
                    published: new.to_string(),
                    attempts,
                })
            }
        }
    }

    fn current(&self, deadline: Instant) -> Result<Vec<String>, AnnounceError> {
        Ok(self
            .list(deadline)?
            .iter()
            .filter(|s| ["A", "AAAA", "CNAME"].contains(&s.rtype.as_str()))
            .flat_map(RecordSet::describe)
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(rtype: &str, value: &str, failover: Option<&str>) -> RecordSet {
        RecordSet {
            name: "db.example.com.".into(),
            rtype: rtype.into(),
            set_identifier: failover.map(|f| f.to_ascii_lowercase()),
            failover: failover.map(str::to_string),
            ttl: Some(30),
            values: vec![value.into()],
            health_check_id: failover.map(|f| format!("hc-{f}")),
            alias: false,
        }
    }

    fn p(text: &str) -> Published {
        Published::parse(text).unwrap()
    }

    #[test]
    fn requests_are_signed_for_us_east_1_unless_a_region_is_configured() {
        assert_eq!(signing_region(None), "us-east-1");
        assert_eq!(signing_region(Some(" ")), "us-east-1");
        assert_eq!(signing_region(Some("cn-northwest-1")), "cn-northwest-1");
        let env = |name: &str| {
            match name {
                "AWS_ACCESS_KEY_ID" => Some("AKIDEXAMPLE"),
                "AWS_SECRET_ACCESS_KEY" => Some("example-secret"),
                "AWS_REGION" | "AWS_DEFAULT_REGION" => Some("eu-west-1"),
                _ => None,
            }
            .map(str::to_string)
        };
        let mut config = Route53Config {
            hosted_zone_id: "Z123".into(),
            name: "db.example.com".into(),
            failover: false,
            ttl: None,
            profile: None,
            region: None,
            endpoint: None,
            timeout_ms: 1000,
            attempts: 1,
            insync_timeout_ms: 1000,
            addresses: Default::default(),
        };
        let announcer = Route53Announcer::with_env(&config, &env).unwrap();
        assert_eq!(announcer.client.region(), "us-east-1");
        config.region = Some("cn-northwest-1".into());
        let announcer = Route53Announcer::with_env(&config, &env).unwrap();
        assert_eq!(announcer.client.region(), "cn-northwest-1");
    }

    #[test]
    fn simple_record() {
        let sets = [set("A", "10.0.0.1", None)];
        let Plan::Change(changes) = plan(
            &sets,
            "db.example.com",
            false,
            None,
            Some(&p("10.0.0.1")),
            &p("10.0.0.2"),
        )
        .unwrap() else {
            panic!()
        };
        assert_eq!(changes.len(), 1);
        assert_eq!(changes[0].0, "UPSERT");
        assert_eq!(changes[0].1.values, ["10.0.0.2"]);
        assert_eq!(changes[0].1.ttl, Some(30));
        // Someone else changed it.
        let err = plan(
            &sets,
            "db.example.com",
            false,
            None,
            Some(&p("10.0.0.9")),
            &p("10.0.0.2"),
        )
        .unwrap_err();
        assert!(err.is_conflict(), "{err}");
        // Already there.
        assert_eq!(
            plan(&sets, "db.example.com.", false, None, None, &p("10.0.0.1")).unwrap(),
            Plan::AlreadyCurrent
        );
        // Type change: delete the A, upsert the CNAME.
        let Plan::Change(changes) = plan(
            &sets,
            "db.example.com",
            false,
            Some(5),
            None,
            &p("db2.example.com"),
        )
        .unwrap() else {
            panic!()
        };
        assert_eq!((changes[0].0, changes[1].0), ("DELETE", "UPSERT"));
        assert_eq!(changes[1].1.ttl, Some(5));
        let xml = change_batch_xml(&changes);
        assert!(xml.contains("<Action>DELETE</Action><ResourceRecordSet><Name>db.example.com.</Name><Type>A</Type>"), "{xml}");
    }

    #[test]
    fn failover_pair_swaps() {
        let sets = [
            set("A", "10.0.0.1", Some("PRIMARY")),
            set("A", "10.0.0.2", Some("SECONDARY")),
        ];
        let Plan::Change(changes) = plan(
            &sets,
            "db.example.com",
            true,
            None,
            Some(&p("10.0.0.1")),
            &p("10.0.0.2"),
        )
        .unwrap() else {
            panic!()
        };
        assert_eq!(changes.len(), 2);
        let (primary, secondary) = (&changes[0].1, &changes[1].1);
        assert_eq!(
            (primary.failover.as_deref(), primary.values[0].as_str()),
            (Some("PRIMARY"), "10.0.0.2")
        );
        assert_eq!(primary.health_check_id.as_deref(), Some("hc-PRIMARY"));
        assert_eq!(primary.set_identifier.as_deref(), Some("primary"));
        assert_eq!(
            (secondary.failover.as_deref(), secondary.values[0].as_str()),
            (Some("SECONDARY"), "10.0.0.1")
        );
        let xml = change_batch_xml(&changes);
        assert!(
            xml.contains(
                "<SetIdentifier>primary</SetIdentifier><Failover>PRIMARY</Failover><TTL>30</TTL>"
            ),
            "{xml}"
        );
        assert!(
            xml.contains("<HealthCheckId>hc-PRIMARY</HealthCheckId>"),
            "{xml}"
        );
        // No pair: a clear error.
        let err = plan(
            &[set("A", "10.0.0.1", None)],
            "db.example.com",
            true,
            None,
            None,
            &p("10.0.0.2"),
        )
        .unwrap_err();
        assert!(err.to_string().contains("no PRIMARY"), "{err}");
    }

    #[test]
    fn parses_list_and_change_info() {
        let xml = r#"<?xml version="1.0"?><ListResourceRecordSetsResponse xmlns="https://route53.amazonaws.com/doc/2013-04-01/"><ResourceRecordSets>
          <ResourceRecordSet><Name>db.example.com.</Name><Type>A</Type><SetIdentifier>one</SetIdentifier><Failover>PRIMARY</Failover><TTL>60</TTL><ResourceRecords><ResourceRecord><Value>10.0.0.1</Value></ResourceRecord></ResourceRecords><HealthCheckId>abc</HealthCheckId></ResourceRecordSet>
        </ResourceRecordSets><IsTruncated>false</IsTruncated><MaxItems>100</MaxItems></ListResourceRecordSetsResponse>"#;
        let sets = parse_record_sets(xml).unwrap();
        assert_eq!(sets[0].values, ["10.0.0.1"]);
        assert_eq!(sets[0].health_check_id.as_deref(), Some("abc"));
        assert_eq!(sets[0].failover.as_deref(), Some("PRIMARY"));
        let (id, status) = change_info(r#"<ChangeResourceRecordSetsResponse><ChangeInfo><Id>/change/C1</Id><Status>PENDING</Status></ChangeInfo></ChangeResourceRecordSetsResponse>"#).unwrap();
        assert_eq!((id.as_str(), status.as_str()), ("/change/C1", "PENDING"));
    }
}
