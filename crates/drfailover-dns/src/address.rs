//! What a record should hold for a node: its host, or the address map's entry for it.

use std::collections::BTreeMap;
use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use crate::{AnnounceError, NodeAddress};
use drfailover_aws::AwsError;

/// The value a managed record holds: an IPv4 address (A), an IPv6 address (AAAA) or a name
/// (CNAME, always fully qualified with a trailing dot).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Published {
    /// An `A` record.
    A(Ipv4Addr),
    /// An `AAAA` record.
    Aaaa(Ipv6Addr),
    /// A `CNAME` record (fully qualified, trailing dot).
    Cname(String),
}

impl Published {
    /// Parse `text`: an IP literal gives A/AAAA, anything else must be a valid DNS name and
    /// gives a CNAME. Pure.
    pub fn parse(text: &str) -> Result<Published, String> {
        let text = text.trim();
        if let Ok(ip) = text.parse::<IpAddr>() {
            return Ok(match ip {
                IpAddr::V4(v4) => Published::A(v4),
                IpAddr::V6(v6) => Published::Aaaa(v6),
            });
        }
        let name = text.trim_end_matches('.');
        let valid = !name.is_empty()
            && name.len() <= 253
            && name.split('.').all(|label| {
                !label.is_empty()
                    && label.len() <= 63
                    && label
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
                    && !label.starts_with('-')
                    && !label.ends_with('-')
            });
        if !valid {
            return Err(format!(
                "`{text}` is neither an IP address nor a valid DNS name"
            ));
        }
        Ok(Published::Cname(format!("{}.", name.to_ascii_lowercase())))
    }

    /// The record type's name: `A`, `AAAA` or `CNAME`.
    pub fn type_name(&self) -> &'static str {
        match self {
            Published::A(_) => "A",
            Published::Aaaa(_) => "AAAA",
            Published::Cname(_) => "CNAME",
        }
    }

    /// The record's value alone (`10.0.0.2`, `db2.example.test.`).
    pub fn value(&self) -> String {
        match self {
            Published::A(ip) => ip.to_string(),
            Published::Aaaa(ip) => ip.to_string(),
            Published::Cname(name) => name.clone(),
        }
    }
}

impl fmt::Display for Published {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.type_name(), self.value())
    }
}

/// Node name → the address DNS should hold for it, when that differs from the node's `host`
/// (e.g. the orchestrator reaches nodes on a private network and clients on another).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AddressMap(pub BTreeMap<String, String>);

impl AddressMap {
    /// The value to publish for `node`: its map entry if any, else its host. Pure.
    pub fn resolve(&self, node: &NodeAddress) -> Result<Published, AnnounceError> {
        let text = self.0.get(&node.name).unwrap_or(&node.host);
        Published::parse(text).map_err(|reason| {
            AnnounceError::Call(AwsError::Config(format!(
                "address of node `{}`: {reason}",
                node.name
            )))
        })
    }

    /// Check every entry parses. Pure.
    pub fn validate(&self) -> Result<(), AnnounceError> {
        for (name, text) in &self.0 {
            Published::parse(text).map_err(|reason| {
                AnnounceError::Call(AwsError::Config(format!("addresses.{name}: {reason}")))
            })?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_of_address() {
        assert_eq!(
            Published::parse("10.0.0.2").unwrap(),
            Published::A(Ipv4Addr::new(10, 0, 0, 2))
        );
        assert_eq!(Published::parse("::1").unwrap().type_name(), "AAAA");
        assert_eq!(
            Published::parse("DB2.Example.test").unwrap(),
            Published::Cname("db2.example.test.".into())
        );
        assert!(Published::parse("not a name").is_err());
        assert!(Published::parse("").is_err());
        assert!(Published::parse("-bad.example").is_err());
        assert_eq!(
            Published::parse("10.0.0.2").unwrap().to_string(),
            "A 10.0.0.2"
        );
    }

    #[test]
    fn map_overrides_host() {
        let map = AddressMap([("db1".to_string(), "192.0.2.1".to_string())].into());
        let db1 = NodeAddress::new("db1", "10.0.0.1");
        let db2 = NodeAddress::new("db2", "10.0.0.2");
        assert_eq!(map.resolve(&db1).unwrap().value(), "192.0.2.1");
        assert_eq!(map.resolve(&db2).unwrap().value(), "10.0.0.2");
        let bad = NodeAddress::new("db3", "bad host!");
        assert!(map.resolve(&bad).unwrap_err().to_string().contains("db3"));
    }
}
