//! MariaDB GTIDs (`domain-server-seq`): positions, binlog states, and the comparisons the
//! orchestrator decides with. Pure; parsing never panics.

use std::collections::BTreeMap;
use std::fmt;

/// One MariaDB GTID: replication domain, originating server id, sequence number.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Gtid {
    /// Replication domain (`gtid_domain_id`).
    pub domain: u32,
    /// The server that originated the transaction.
    pub server: u32,
    /// Sequence number within the domain.
    pub seq: u64,
}

impl Gtid {
    /// Parse `D-S-N`.
    pub fn parse(text: &str) -> Result<Gtid, String> {
        let mut parts = text.trim().split('-');
        let mut next = |what: &str| {
            parts
                .next()
                .ok_or_else(|| format!("GTID `{}`: missing {what}", text.trim()))
        };
        let domain = next("domain")?;
        let server = next("server id")?;
        let seq = next("sequence number")?;
        let bad = |what: &str| format!("GTID `{}`: bad {what}", text.trim());
        let gtid = Gtid {
            domain: domain.parse().map_err(|_| bad("domain"))?,
            server: server.parse().map_err(|_| bad("server id"))?,
            seq: seq.parse().map_err(|_| bad("sequence number"))?,
        };
        if parts.next().is_some() {
            return Err(bad("format"));
        }
        Ok(gtid)
    }
}

impl fmt::Display for Gtid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-{}-{}", self.domain, self.server, self.seq)
    }
}

fn parse_list(text: &str) -> Result<Vec<Gtid>, String> {
    text.split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(Gtid::parse)
        .collect()
}

/// A GTID position: the last GTID per domain (`@@gtid_binlog_pos`, `@@gtid_slave_pos`,
/// `Gtid_IO_Pos`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct GtidPos(BTreeMap<u32, Gtid>);

impl GtidPos {
    /// Parse a comma-separated position (empty text: the empty position).
    pub fn parse(text: &str) -> Result<GtidPos, String> {
        let mut map = BTreeMap::new();
        for g in parse_list(text)? {
            if map.insert(g.domain, g).is_some() {
                return Err(format!("position `{text}` names domain {} twice", g.domain));
            }
        }
        Ok(GtidPos(map))
    }

    /// Whether no domain has a transaction.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The sequence number reached in `domain` (0 when none).
    pub fn seq(&self, domain: u32) -> u64 {
        self.0.get(&domain).map_or(0, |g| g.seq)
    }

    /// The GTIDs, one per domain.
    pub fn gtids(&self) -> impl Iterator<Item = &Gtid> {
        self.0.values()
    }

    /// Whether this position is at or past `other` in every domain of `other`.
    pub fn covers(&self, other: &GtidPos) -> bool {
        other.0.values().all(|g| self.seq(g.domain) >= g.seq)
    }

    /// Total of sequence numbers (a tie-breaking measure of "how much", never a proof).
    pub fn total(&self) -> u64 {
        self.0.values().map(|g| g.seq).sum()
    }
}

impl fmt::Display for GtidPos {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let parts: Vec<String> = self.0.values().map(Gtid::to_string).collect();
        f.write_str(&parts.join(","))
    }
}

/// A binlog state (`@@gtid_binlog_state`): the last sequence number per (domain, server),
/// i.e. which servers' transactions a node's history contains and how far.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct GtidState(BTreeMap<(u32, u32), u64>);

/// Transactions one history has that another lacks: `domain-server-(first..=last)`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct GtidRange {
    /// The GTID domain.
    pub domain: u32,
    /// Originating server.
    pub server: u32,
    /// First sequence number missing from the other history.
    pub first: u64,
    /// Last sequence number missing (inclusive).
    pub last: u64,
}

impl fmt::Display for GtidRange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.first == self.last {
            write!(f, "{}-{}-{}", self.domain, self.server, self.first)
        } else {
            write!(
                f,
                "{}-{}-{}..{}",
                self.domain, self.server, self.first, self.last
            )
        }
    }
}

impl fmt::Display for GtidState {
    /// The binlog state as the server prints it: `domain-server-seq`, comma-separated.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let parts: Vec<String> = self
            .0
            .iter()
            .map(|(&(domain, server), &seq)| format!("{domain}-{server}-{seq}"))
            .collect();
        f.write_str(&parts.join(","))
    }
}

impl GtidState {
    /// Parse a comma-separated binlog state.
    pub fn parse(text: &str) -> Result<GtidState, String> {
        let mut map = BTreeMap::new();
        for g in parse_list(text)? {
            let seq = map.entry((g.domain, g.server)).or_insert(0);
            *seq = (*seq).max(g.seq);
        }
        Ok(GtidState(map))
    }

    /// Ranges of transactions in this history that `other` does not contain (by originating
    /// server), optionally ignoring one server id (the live primary's, whose newest
    /// transactions the other side may simply not have seen yet).
    ///
    /// Relies on `gtid_strict_mode`: within a domain, a server's sequence numbers only grow,
    /// so "`other` reached seq N from server S" means it has all of S's transactions up to N.
    pub fn missing_from(&self, other: &GtidState, ignore_server: Option<u32>) -> Vec<GtidRange> {
        self.0
            .iter()
            .filter(|((_, server), _)| Some(*server) != ignore_server)
            .filter_map(|(&(domain, server), &last)| {
                let have = other.0.get(&(domain, server)).copied().unwrap_or(0);
                (last > have).then_some(GtidRange {
                    domain,
                    server,
                    first: have + 1,
                    last,
                })
            })
            .collect()
    }
}

/// Join ranges for a message: `0-1-5..9, 0-3-2`.
pub fn describe_ranges(ranges: &[GtidRange]) -> String {
    ranges
        .iter()
        .map(GtidRange::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn positions_parse_and_compare() {
        let a = GtidPos::parse("0-1-100,1-2-5").unwrap();
        let b = GtidPos::parse("0-1-99").unwrap();
        assert!(a.covers(&b));
        assert!(!b.covers(&a));
        assert_eq!(a.seq(1), 5);
        assert_eq!(a.to_string(), "0-1-100,1-2-5");
        assert!(GtidPos::parse("").unwrap().is_empty());
        assert!(GtidPos::parse("0-1").is_err());
        assert!(GtidPos::parse("0-1-x").is_err());
        assert!(GtidPos::parse("0-1-2-3").is_err());
        assert!(GtidPos::parse("0-1-2,0-2-3").is_err());
    }

    #[test]
    fn missing_ranges_name_extra_transactions() {
        let old = GtidState::parse("0-1-101,0-3-7").unwrap();
        let new = GtidState::parse("0-1-100,0-2-150,0-3-7").unwrap();
        let extra = old.missing_from(&new, None);
        assert_eq!(describe_ranges(&extra), "0-1-101");
        assert!(new.missing_from(&new, None).is_empty());
        assert_eq!(GtidState::parse(&new.to_string()).unwrap(), new);
        // Ignoring the live primary's own server id.
        assert!(old.missing_from(&new, Some(1)).is_empty());
        let errant = GtidState::parse("0-2-150,0-9-3").unwrap();
        assert_eq!(
            describe_ranges(&errant.missing_from(&new, Some(2))),
            "0-9-1..3"
        );
    }
}
