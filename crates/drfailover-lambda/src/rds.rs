//! A small client of the RDS query API (`DescribeDBInstances`, `PromoteReadReplica`), over the
//! workspace's signed-request helper ([`drfailover_dns::aws::AwsClient`]: SigV4, bounded
//! retries of throttling and 5xx inside a deadline). XML replies read with `roxmltree`.
//! Blocking; one request at a time.

use std::time::{Duration, Instant};

use drfailover_dns::aws::credentials::AwsIdentity;
use drfailover_dns::aws::AwsError;
use drfailover_dns::aws::{child_text, AwsClient};
use drfailover_dns::retry::RetryPolicy;
use drfailover_dns::AnnounceError;
use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};

const VERSION: &str = "2014-10-31";

/// Form encoding: everything but unreserved characters is escaped.
const FORM: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~');

/// What `DescribeDBInstances` says of one instance.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DbInstance {
    /// `DBInstanceIdentifier`.
    pub id: String,
    /// `DBInstanceStatus` (`available`, `modifying`, `failed`, `stopped`, …).
    pub status: String,
    /// `ReadReplicaSourceDBInstanceIdentifier`: set while the instance is a read replica.
    pub replica_source: Option<String>,
    /// `Endpoint/Address`, when it has one.
    pub address: Option<String>,
}

/// Statuses in which RDS says the instance is broken (not merely busy).
const FAILED_STATUSES: &[&str] = &[
    "failed",
    "inaccessible-encryption-credentials",
    "inaccessible-encryption-credentials-recoverable",
    "incompatible-network",
    "incompatible-option-group",
    "incompatible-parameters",
    "incompatible-restore",
    "insufficient-capacity",
    "restore-error",
    "storage-full",
    "stopped",
];

impl DbInstance {
    /// `DBInstanceStatus = available`.
    pub fn is_available(&self) -> bool {
        self.status == "available"
    }

    /// RDS reports the instance broken or stopped (`failed`, `storage-full`,
    /// `incompatible-*`, `stopped`, …).
    pub fn is_failed(&self) -> bool {
        FAILED_STATUSES.contains(&self.status.as_str())
    }
}

/// What became of a `PromoteReadReplica` request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PromoteReply {
    /// RDS accepted it: the promotion is under way.
    Accepted,
    /// RDS refused it because the instance is not in a state to promote
    /// (`InvalidDBInstanceState`): it is no longer a replica, or a promotion is already under
    /// way (another invocation's). The message says which.
    AlreadyUnderWay(String),
}

/// Read a `DescribeDBInstancesResponse`. Pure.
pub fn parse_instances(xml: &str) -> Result<Vec<DbInstance>, String> {
    let doc = roxmltree::Document::parse(xml).map_err(|e| format!("unreadable XML: {e}"))?;
    doc.descendants()
        .filter(|n| n.has_tag_name("DBInstance"))
        .map(|n| {
            Ok(DbInstance {
                id: child_text(n, "DBInstanceIdentifier")
                    .ok_or("a DBInstance without DBInstanceIdentifier")?
                    .to_string(),
                status: child_text(n, "DBInstanceStatus")
                    .ok_or("a DBInstance without DBInstanceStatus")?
                    .to_string(),
                replica_source: child_text(n, "ReadReplicaSourceDBInstanceIdentifier")
                    .filter(|s| !s.is_empty())
                    .map(str::to_string),
                address: n
                    .children()
                    .find(|c| c.has_tag_name("Endpoint"))
                    .and_then(|e| child_text(e, "Address"))
                    .map(str::to_string),
            })
        })
        .collect()
}

/// The query-API form body of `action` with `params`. Pure.
pub fn form(action: &str, params: &[(&str, &str)]) -> String {
    let mut fields = vec![("Action", action), ("Version", VERSION)];
    fields.extend_from_slice(params);
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

/// The RDS API of one region.
#[derive(Debug)]
pub struct RdsClient {
    client: AwsClient,
}

impl RdsClient {
    /// A client of the RDS API at `endpoint` (`https://rds.REGION.amazonaws.com`). Each
    /// request may take `per_attempt`; throttling, 5xx and network errors are retried up to
    /// `attempts` times inside the caller's deadline. No I/O.
    pub fn new(
        endpoint: &str,
        region: String,
        identity: AwsIdentity,
        attempts: u32,
        per_attempt: Duration,
    ) -> Result<RdsClient, AnnounceError> {
        let client = AwsClient::new(
            endpoint,
            "rds",
            region,
            identity,
            RetryPolicy {
                attempts,
                per_attempt,
                base_delay: Duration::from_millis(100),
                max_delay: Duration::from_secs(2),
            },
        )?;
        Ok(RdsClient { client })
    }

    fn post(&self, body: &str, deadline: Instant) -> Result<String, AnnounceError> {
        let (reply, _) = self.client.call(
            "POST",
            "/",
            Some(("application/x-www-form-urlencoded; charset=utf-8", body)),
            deadline,
        )?;
        Ok(reply)
    }

    /// `DescribeDBInstances` of `id`: `None` when RDS does not know it (deleted). Blocks until
    /// `deadline` at most.
    pub fn describe(
        &self,
        id: &str,
        deadline: Instant,
    ) -> Result<Option<DbInstance>, AnnounceError> {
        let body = form("DescribeDBInstances", &[("DBInstanceIdentifier", id)]);
        let reply = match self.post(&body, deadline) {
            Ok(reply) => reply,
            Err(e) if e.code() == Some("DBInstanceNotFound") => return Ok(None),
            Err(e) => return Err(e),
        };
        let instances = parse_instances(&reply).map_err(|e| {
            AnnounceError::Call(AwsError::Server {
                target: self.client.target(),
                reason: format!("DescribeDBInstances: {e}"),
            })
        })?;
        Ok(instances.into_iter().find(|i| i.id == id))
    }

    /// `PromoteReadReplica` of `id`. Blocks until `deadline` at most. A lost reply retried
    /// after RDS acted comes back as [`PromoteReply::AlreadyUnderWay`].
    pub fn promote(&self, id: &str, deadline: Instant) -> Result<PromoteReply, AnnounceError> {
        let body = form("PromoteReadReplica", &[("DBInstanceIdentifier", id)]);
        match self.post(&body, deadline) {
            Ok(_) => Ok(PromoteReply::Accepted),
            Err(e) if e.code() == Some("InvalidDBInstanceState") => {
                Ok(PromoteReply::AlreadyUnderWay(e.to_string()))
            }
            Err(e) => Err(e),
        }
    }

    /// `rds at endpoint`, for messages.
    pub fn target(&self) -> String {
        self.client.target()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_instances() {
        let xml = r#"<DescribeDBInstancesResponse xmlns="http://rds.amazonaws.com/doc/2014-10-31/"><DescribeDBInstancesResult><DBInstances>
          <DBInstance><DBInstanceIdentifier>db2</DBInstanceIdentifier><DBInstanceStatus>available</DBInstanceStatus>
          <Endpoint><Address>db2.abc.rds.amazonaws.com</Address><Port>3306</Port></Endpoint>
          <ReadReplicaSourceDBInstanceIdentifier>db1</ReadReplicaSourceDBInstanceIdentifier></DBInstance>
        </DBInstances></DescribeDBInstancesResult></DescribeDBInstancesResponse>"#;
        let found = parse_instances(xml).unwrap();
        assert_eq!(
            found,
            [DbInstance {
                id: "db2".into(),
                status: "available".into(),
                replica_source: Some("db1".into()),
                address: Some("db2.abc.rds.amazonaws.com".into()),
            }]
        );
        assert!(found[0].is_available() && !found[0].is_failed());
        assert!(
            parse_instances("<DBInstance><DBInstanceStatus>x</DBInstanceStatus></DBInstance>")
                .is_err()
        );
        assert!(parse_instances("not xml").is_err());
    }

    #[test]
    fn form_is_encoded() {
        assert_eq!(
            form("PromoteReadReplica", &[("DBInstanceIdentifier", "db 2&x")]),
            "Action=PromoteReadReplica&Version=2014-10-31&DBInstanceIdentifier=db%202%26x"
        );
    }
}
