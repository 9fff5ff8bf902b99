//! Announcer configuration as it appears in the orchestrator's TOML file: one `[[announce]]`
//! table per announcer, `kind = "rfc2136"` plus that kind's keys. Unknown keys are errors.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::Deserialize;

use crate::{AnnounceError, Announcer};

/// Configuration of one announcer (an `[[announce]]` table). Secrets are not in it: it names
/// the files (or environment) they come from.
#[derive(Clone, Debug, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum AnnouncerConfig {
    /// `kind = "rfc2136"`: a dynamic update signed with TSIG.
    Rfc2136(Rfc2136Config),
    /// `kind = "route53"`: a Route 53 record (simple, or a PRIMARY/SECONDARY failover pair).
    Route53(crate::route53::Route53Config),
}

impl AnnouncerConfig {
    /// Check the configuration, read the secrets it names, and build the announcer. Blocks on
    /// reading the key file; no network I/O.
    pub fn build(&self) -> Result<Box<dyn Announcer>, AnnounceError> {
        match self {
            AnnouncerConfig::Rfc2136(config) => {
                Ok(Box::new(crate::rfc2136::Rfc2136Announcer::new(config)?))
            }
            AnnouncerConfig::Route53(config) => {
                Ok(Box::new(crate::route53::Route53Announcer::new(config)?))
            }
        }
    }
}

/// `kind = "rfc2136"`: replace the A/AAAA/CNAME record of `name` in `zone` on `server` with
/// an RFC 2136 update signed with the TSIG key in `key_file`.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Rfc2136Config {
    /// The primary server that accepts updates: an IP address, with `:port` (default 53);
    /// `[v6]:port` for IPv6. A name is not accepted (resolving it could block unbounded and
    /// would itself depend on DNS).
    pub server: String,
    /// The zone (its apex, e.g. `example.com`) that holds `name`.
    pub zone: String,
    /// The managed name, e.g. `db.example.com`; must lie inside `zone`.
    pub name: String,
    /// TTL of the record written, in seconds (default 5: clients see a failover within it).
    #[serde(default = "default_ttl")]
    pub ttl: u32,
    /// A file with the TSIG key in BIND syntax, as `tsig-keygen -a hmac-sha256 NAME` prints it
    /// (algorithms hmac-sha256/384/512).
    pub key_file: PathBuf,
    /// Which key of `key_file` to use, when it holds more than one.
    #[serde(default)]
    pub key_name: Option<String>,
    /// How long one attempt may wait for the server's answer, in ms (default 1000).
    #[serde(default = "default_timeout_ms")]
    pub timeout_ms: u64,
    /// Attempts in all, for timeouts, socket errors and SERVFAIL (default 3). Other failures
    /// are not retried.
    #[serde(default = "default_attempts")]
    pub attempts: u32,
    /// Use TCP only (default: UDP, and TCP when the reply is truncated).
    #[serde(default)]
    pub tcp: bool,
    /// Node name → address to publish, when a node's configured host is not what DNS should
    /// hold. An IPv4 address gives an A record, IPv6 an AAAA, a name a CNAME.
    #[serde(default)]
    pub addresses: BTreeMap<String, String>,
}

fn default_ttl() -> u32 {
    5
}
fn default_timeout_ms() -> u64 {
    1000
}
fn default_attempts() -> u32 {
    3
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    struct File {
        announce: Vec<AnnouncerConfig>,
    }

    #[test]
    fn parses_rfc2136_table() {
        let file: File = toml::from_str(
            r#"
            [[announce]]
            kind = "rfc2136"
            server = "127.0.0.1:5300"
            zone = "example.test"
            name = "db.example.test"
            key_file = "/etc/drfailover/tsig.key"
            addresses = { db1 = "192.0.2.1" }
            "#,
        )
        .unwrap();
        let AnnouncerConfig::Rfc2136(c) = &file.announce[0] else {
            panic!("not rfc2136");
        };
        assert_eq!(c.ttl, 5);
        assert_eq!(c.attempts, 3);
        assert_eq!(c.addresses["db1"], "192.0.2.1");
    }

    #[test]
    fn unknown_keys_and_kinds_are_errors() {
        let err = toml::from_str::<File>(
            r#"
            [[announce]]
            kind = "rfc2136"
            server = "127.0.0.1"
            zone = "example.test"
            name = "db.example.test"
            key_file = "k"
            tll = 5
            "#,
        )
        .err()
        .unwrap()
        .to_string();
        assert!(err.contains("tll"), "{err}");
        let err = toml::from_str::<File>("[[announce]]\nkind = \"carrier-pigeon\"\n")
            .err()
            .unwrap()
            .to_string();
        assert!(err.contains("carrier-pigeon"), "{err}");
        let err = toml::from_str::<File>("[[announce]]\nkind = \"rfc2136\"\nserver = \"x\"\n")
            .err()
            .unwrap()
            .to_string();
        assert!(err.contains("missing field"), "{err}");
    }
}
