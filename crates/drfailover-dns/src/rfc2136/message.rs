//! The DNS messages of an announcement, built with hickory-proto, and the reading of the
//! server's replies. Pure: no I/O, no clock.
//!
//! The update (RFC 2136) for a change to `new`:
//! - zone section: the zone's SOA;
//! - prerequisites (§2.4), the compare-and-swap:
//!   - [`Prerequisite::Holds`]: *RRset exists (value dependent)* (§2.4.2) for each RRset the
//!     record must hold (class IN, TTL 0, the exact RDATA): the update applies only if the
//!     name's RRsets of those types are exactly these. Used with the old writer's address.
//!   - [`Prerequisite::Absent`]: *RRset does not exist* (§2.4.3) for A, AAAA and CNAME
//!     (class NONE): the name holds no address yet.
//! - updates (§2.5): *delete an RRset* (§2.5.2, class ANY) for A, AAAA and CNAME, then *add*
//!   the new record. The server applies the section atomically after the prerequisites held,
//!   so the name ends with exactly one address record, the new writer's.

use hickory_proto::op::{Message, MessageType, OpCode, Query, ResponseCode, UpdateMessage};
use hickory_proto::rr::rdata::tsig::TsigError;
use hickory_proto::rr::rdata::{A, AAAA, CNAME};
use hickory_proto::rr::{DNSClass, Name, RData, Record, RecordType};

use crate::{Published, TsigFailure};

/// The record types an announcer manages at its name.
pub const MANAGED_TYPES: [RecordType; 3] = [RecordType::A, RecordType::AAAA, RecordType::CNAME];

/// What must hold for the update to apply.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Prerequisite {
    /// The name's address RRsets are exactly these records (one or more, A/AAAA/CNAME).
    Holds(Vec<Published>),
    /// The name has no A, AAAA or CNAME record.
    Absent,
}

impl Prerequisite {
    /// The records expected, as text (`A 10.0.0.1`), for error messages.
    pub fn describe(&self) -> Vec<String> {
        match self {
            Prerequisite::Holds(records) => records.iter().map(ToString::to_string).collect(),
            Prerequisite::Absent => vec!["no A/AAAA/CNAME record".into()],
        }
    }
}

fn rdata(value: &Published) -> Result<RData, String> {
    Ok(match value {
        Published::A(ip) => RData::A(A(*ip)),
        Published::Aaaa(ip) => RData::AAAA(AAAA(*ip)),
        Published::Cname(target) => RData::CNAME(CNAME(
            Name::from_ascii(target).map_err(|e| format!("CNAME target `{target}`: {e}"))?,
        )),
    })
}

/// A DNS name from configuration text, made fully qualified.
pub fn fqdn(text: &str) -> Result<Name, String> {
    let mut name = Name::from_ascii(text.trim()).map_err(|e| format!("`{text}`: {e}"))?;
    name.set_fqdn(true);
    Ok(name)
}

/// The unsigned update message (fresh random id) that replaces the address records of `name`
/// in `zone` by `new` with `ttl`, if `prerequisite` holds.
pub fn update(
    zone: &Name,
    name: &Name,
    prerequisite: &Prerequisite,
    new: &Published,
    ttl: u32,
) -> Result<Message, String> {
    let mut message = Message::new(rand::random(), MessageType::Query, OpCode::Update);
    message.metadata.recursion_desired = false;
    let mut zone_query = Query::new();
    zone_query
        .set_name(zone.clone())
        .set_query_class(DNSClass::IN)
        .set_query_type(RecordType::SOA);
    message.add_zone(zone_query);

    match prerequisite {
        Prerequisite::Holds(records) => {
            for value in records {
                // Value-dependent: class IN, TTL 0, the RDATA to compare.
                message.add_pre_requisite(Record::from_rdata(name.clone(), 0, rdata(value)?));
            }
        }
        Prerequisite::Absent => {
            for rtype in MANAGED_TYPES {
                let mut record = Record::update0(name.clone(), 0, rtype);
                record.dns_class = DNSClass::NONE;
                message.add_pre_requisite(record);
            }
        }
    }
    for rtype in MANAGED_TYPES {
        let mut delete = Record::update0(name.clone(), 0, rtype);
        delete.dns_class = DNSClass::ANY;
        message.add_update(delete);
    }
    message.add_update(Record::from_rdata(name.clone(), ttl, rdata(new)?));
    Ok(message)
}

/// A plain (unsigned, non-recursive) query for `name`'s `rtype` records.
pub fn query(name: &Name, rtype: RecordType) -> Message {
    let mut message = Message::new(rand::random(), MessageType::Query, OpCode::Query);
    message.metadata.recursion_desired = false;
    message.add_query(Query::query(name.clone(), rtype));
    message
}

/// The address records for `name` in a reply's answer section.
pub fn records_of(reply: &Message, name: &Name) -> Vec<Published> {
    reply
        .answers
        .iter()
        .filter(|r| r.name.eq_case(name) || r.name == *name)
        .filter_map(|r| match &r.data {
            RData::A(a) => Some(Published::A(a.0)),
            RData::AAAA(a) => Some(Published::Aaaa(a.0)),
            RData::CNAME(c) => Some(Published::Cname(c.0.to_ascii().to_ascii_lowercase())),
            _ => None,
        })
        .collect()
}

/// What an update's reply means.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ReplyVerdict {
    /// NOERROR: applied.
    Applied,
    /// A TSIG error (BADSIG, BADKEY, BADTIME): not retried.
    Tsig(TsigFailure),
    /// NOTAUTH without a TSIG error: not authoritative for the zone. Not retried.
    NotAuth,
    /// NOTZONE: the name is outside the zone. Not retried.
    NotZone,
    /// REFUSED: the policy does not allow it. Not retried.
    Refused,
    /// YXDOMAIN, YXRRSET, NXDOMAIN, NXRRSET: a prerequisite failed. Not retried.
    PrerequisiteFailed(String),
    /// SERVFAIL: may pass; retried.
    Retry(String),
    /// Anything else (FORMERR, NOTIMP, …): not retried.
    Rejected(String),
}

/// Classify an update's reply: the TSIG error in its TSIG record first (RFC 8945 §5.3: the
/// RCODE is then NOTAUTH), then the RCODE.
pub fn classify(reply: &Message) -> ReplyVerdict {
    if let Some(error) = reply.signature().and_then(|sig| sig.data.error) {
        return ReplyVerdict::Tsig(match error {
            TsigError::BadSig => TsigFailure::BadSig,
            TsigError::BadKey => TsigFailure::BadKey,
            TsigError::BadTime => TsigFailure::BadTime,
            TsigError::BadTrunc => TsigFailure::Other(22),
            TsigError::Unknown(code) => TsigFailure::Other(code),
        });
    }
    let rcode = reply.metadata.response_code;
    match rcode {
        ResponseCode::NoError => ReplyVerdict::Applied,
        ResponseCode::NotAuth => ReplyVerdict::NotAuth,
        ResponseCode::NotZone => ReplyVerdict::NotZone,
        ResponseCode::Refused => ReplyVerdict::Refused,
        ResponseCode::BADSIG => ReplyVerdict::Tsig(TsigFailure::BadSig),
        ResponseCode::BADKEY => ReplyVerdict::Tsig(TsigFailure::BadKey),
        ResponseCode::BADTIME => ReplyVerdict::Tsig(TsigFailure::BadTime),
        ResponseCode::YXDomain
        | ResponseCode::YXRRSet
        | ResponseCode::NXDomain
        | ResponseCode::NXRRSet => ReplyVerdict::PrerequisiteFailed(rcode.to_str().to_string()),
        ResponseCode::ServFail => ReplyVerdict::Retry(rcode.to_str().to_string()),
        other => ReplyVerdict::Rejected(other.to_str().to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::Ipv4Addr;

    fn names() -> (Name, Name) {
        (
            fqdn("example.test").unwrap(),
            fqdn("db.example.test").unwrap(),
        )
    }

    #[test]
    fn compare_and_swap_update() {
        let (zone, name) = names();
        let old = Published::A(Ipv4Addr::new(10, 0, 0, 1));
        let new = Published::A(Ipv4Addr::new(10, 0, 0, 2));
        let m = update(&zone, &name, &Prerequisite::Holds(vec![old]), &new, 5).unwrap();
        assert_eq!(m.metadata.op_code, OpCode::Update);
        assert_eq!(m.queries[0].query_type(), RecordType::SOA);
        // Prerequisite: value-dependent RRset exists, class IN, TTL 0.
        assert_eq!(m.answers.len(), 1);
        assert_eq!(m.answers[0].dns_class, DNSClass::IN);
        assert_eq!(m.answers[0].ttl, 0);
        assert_eq!(m.answers[0].data, RData::A(A(Ipv4Addr::new(10, 0, 0, 1))));
        // Updates: three RRset deletions then the addition.
        assert_eq!(m.authorities.len(), 4);
        assert!(m.authorities[..3]
            .iter()
            .all(|r| r.dns_class == DNSClass::ANY));
        assert_eq!(m.authorities[3].ttl, 5);
        assert_eq!(
            m.authorities[3].data,
            RData::A(A(Ipv4Addr::new(10, 0, 0, 2)))
        );
        // It encodes.
        m.to_vec().unwrap();
    }

    #[test]
    fn absent_prerequisite() {
        let (zone, name) = names();
        let new = Published::Cname("db2.example.test.".into());
        let m = update(&zone, &name, &Prerequisite::Absent, &new, 5).unwrap();
        assert_eq!(m.answers.len(), 3);
        assert!(m.answers.iter().all(|r| r.dns_class == DNSClass::NONE));
        assert_eq!(m.authorities[3].record_type(), RecordType::CNAME);
    }

    #[test]
    fn tsig_errors_come_first() {
        use hickory_proto::rr::rdata::tsig::{make_tsig_record, TsigAlgorithm, TSIG};
        for (error, failure) in [
            (TsigError::BadTime, TsigFailure::BadTime),
            (TsigError::BadSig, TsigFailure::BadSig),
            (TsigError::BadKey, TsigFailure::BadKey),
        ] {
            let mut reply = Message::new(1, MessageType::Response, OpCode::Update);
            reply.metadata.response_code = ResponseCode::NotAuth;
            let tsig = TSIG::new(
                TsigAlgorithm::HmacSha256,
                0,
                300,
                Vec::new(),
                1,
                Some(error),
                Vec::new(),
            );
            reply.set_signature(Box::new(make_tsig_record(fqdn("k").unwrap(), tsig)));
            // Survives encoding, as it comes off the wire.
            let reply = Message::from_vec(&reply.to_vec().unwrap()).unwrap();
            assert_eq!(classify(&reply), ReplyVerdict::Tsig(failure));
        }
    }

    #[test]
    fn verdicts() {
        let mut reply = Message::new(1, MessageType::Response, OpCode::Update);
        assert_eq!(classify(&reply), ReplyVerdict::Applied);
        for (rcode, verdict) in [
            (ResponseCode::NotAuth, ReplyVerdict::NotAuth),
            (ResponseCode::NotZone, ReplyVerdict::NotZone),
            (ResponseCode::Refused, ReplyVerdict::Refused),
            (
                ResponseCode::YXRRSet,
                ReplyVerdict::PrerequisiteFailed("YXRRSet".into()),
            ),
            (
                ResponseCode::NXRRSet,
                ReplyVerdict::PrerequisiteFailed("NXRRSet".into()),
            ),
            (
                ResponseCode::ServFail,
                ReplyVerdict::Retry("Server Failure".into()),
            ),
        ] {
            reply.metadata.response_code = rcode;
            let got = classify(&reply);
            match (&got, &verdict) {
                (ReplyVerdict::PrerequisiteFailed(_), ReplyVerdict::PrerequisiteFailed(_))
                | (ReplyVerdict::Retry(_), ReplyVerdict::Retry(_)) => {}
                _ => assert_eq!(got, verdict),
            }
        }
    }
}
