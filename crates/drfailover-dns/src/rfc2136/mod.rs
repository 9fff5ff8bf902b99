//! RFC 2136 dynamic update signed with TSIG: the compare-and-swap announcer.
//!
//! [`Rfc2136Announcer::announce`] sends one update (see [`message`] for its sections):
//! - old writer known: prerequisite *the name's address RRset is exactly the old writer's
//!   address* (value-dependent RRset exists, RFC 2136 §2.4.2). Two orchestrators racing with
//!   the same old writer: the first update applies, the second finds the record changed and
//!   fails with [`AnnounceError::PrerequisiteFailed`] (YXRRSET/NXRRSET) — unless the winner
//!   announced the same new writer, which is reported as [`AnnounceOutcome::AlreadyCurrent`].
//! - old writer unknown: the announcer reads the record first and uses what it found as the
//!   prerequisite (or *no A/AAAA/CNAME exists* when it found none, §2.4.3). That still protects
//!   against a change between the read and the write, but cannot tell whether what it read was
//!   written by a rival: an orchestrator that knows the old writer should say so.
//!
//! Each attempt is signed afresh (new id, current time) and bounded by `timeout_ms` and the
//! deadline; timeouts, socket errors and SERVFAIL are retried with jittered backoff; TSIG
//! errors, NOTAUTH, NOTZONE, REFUSED, FORMERR and failed prerequisites are not. A success is
//! accepted only when the reply's TSIG verifies. After a failed prerequisite the record is read
//! again: if it already holds the new address (e.g. our earlier attempt applied and its reply
//! was lost) the outcome is `AlreadyCurrent`.

pub mod key;
pub mod message;
pub mod transport;

use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use hickory_proto::op::{Message, ResponseCode};
use hickory_proto::rr::{Name, RecordType};

use crate::retry::{self, AttemptOutcome, RetryPolicy};
use crate::{
    AddressMap, AnnounceError, AnnounceOutcome, Announcer, Published, Rfc2136Config, WriterChange,
};
use drfailover_aws::AwsError;
pub use key::TsigKey;
use message::{Prerequisite, ReplyVerdict};
use transport::ExchangeError;

/// Announces a new writer with RFC 2136 updates to one primary server. Cheap to share across
/// threads; each call opens its own sockets.
pub struct Rfc2136Announcer {
    server: SocketAddr,
    zone: Name,
    name: Name,
    ttl: u32,
    key: TsigKey,
    policy: RetryPolicy,
    tcp_only: bool,
    addresses: AddressMap,
}

impl std::fmt::Debug for Rfc2136Announcer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Rfc2136Announcer")
            .field("server", &self.server)
            .field("zone", &self.zone.to_ascii())
            .field("name", &self.name.to_ascii())
            .field("ttl", &self.ttl)
            .field("key", &self.key)
            .field("policy", &self.policy)
            .field("tcp_only", &self.tcp_only)
            .field("addresses", &self.addresses)
            .finish()
    }
}

/// Parse `IP`, `IP:port` or `[v6]:port` (default port 53).
pub fn parse_server(text: &str) -> Result<SocketAddr, String> {
    let text = text.trim();
    if let Ok(addr) = text.parse::<SocketAddr>() {
        return Ok(addr);
    }
    if let Ok(ip) = text.trim_matches(['[', ']']).parse::<IpAddr>() {
        return Ok(SocketAddr::new(ip, 53));
    }
    Err(format!(
        "server `{text}`: expected an IP address with an optional port (`192.0.2.53:53`, \
         `[2001:db8::53]:53`); names are not accepted"
    ))
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

impl Rfc2136Announcer {
    /// Check `config` and read its key file. Blocks on one file read.
    pub fn new(config: &Rfc2136Config) -> Result<Rfc2136Announcer, AnnounceError> {
        let server =
            parse_server(&config.server).map_err(|e| AnnounceError::Call(AwsError::Config(e)))?;
        let zone = message::fqdn(&config.zone)
            .map_err(|e| AnnounceError::Call(AwsError::Config(format!("zone {e}"))))?;
        let name = message::fqdn(&config.name)
            .map_err(|e| AnnounceError::Call(AwsError::Config(format!("name {e}"))))?;
        if !zone.zone_of(&name) {
            return Err(AnnounceError::Call(AwsError::Config(format!(
                "name {name} is not inside zone {zone}"
            ))));
        }
        if config.attempts == 0 || config.timeout_ms == 0 {
            return Err(AnnounceError::Call(AwsError::Config(
                "attempts and timeout_ms must be at least 1".into(),
            )));
        }
        if config.ttl > i32::MAX as u32 {
            return Err(AnnounceError::Call(AwsError::Config(format!(
                "ttl {} is too large",
                config.ttl
            ))));
        }
        let addresses = AddressMap(config.addresses.clone());
        addresses.validate()?;
        let key = TsigKey::from_file(&config.key_file, config.key_name.as_deref())?;
        Ok(Rfc2136Announcer {
            server,
            zone,
            name,
            ttl: config.ttl,
            key,
            policy: RetryPolicy {
                attempts: config.attempts,
                per_attempt: Duration::from_millis(config.timeout_ms),
                base_delay: Duration::from_millis(50),
                max_delay: Duration::from_millis(1000),
            },
            tcp_only: config.tcp,
            addresses,
        })
    }

    fn target(&self) -> String {
        format!("rfc2136 server {}", self.server)
    }

    /// Run `attempt` (given its time budget) with this announcer's retry policy, until
    /// `deadline` (see [`retry::run`]).
    fn with_retries<T>(
        &self,
        deadline: Instant,
        attempt: impl FnMut(Duration) -> AttemptOutcome<T>,
    ) -> Result<(T, u32), AnnounceError> {
        retry::run(&self.policy, &self.target(), deadline, attempt)
    }

    fn exchange(&self, request: &Message, budget: Duration) -> Result<Vec<u8>, ExchangeError> {
        let bytes = request
            .to_vec()
            .map_err(|e| ExchangeError::Io(format!("encode request: {e}")))?;
        transport::exchange(
            self.server,
            &bytes,
            request.metadata.id,
            budget,
            self.tcp_only,
        )
    }

    /// Read the name's A, AAAA and CNAME records from the server (authoritative, unsigned
    /// queries). Blocks until `deadline` at most.
    pub fn read(&self, deadline: Instant) -> Result<Vec<Published>, AnnounceError> {
        let mut found: Vec<Published> = Vec::new();
        for rtype in [RecordType::CNAME, RecordType::A, RecordType::AAAA] {
            let query = message::query(&self.name, rtype);
            let (records, _) = self.with_retries(deadline, |budget| {
                let reply = match self.exchange(&query, budget) {
                    Ok(bytes) => bytes,
                    Err(e) => return AttemptOutcome::Retry(e.to_string(), true),
                };
                let reply = match Message::from_vec(&reply) {
                    Ok(m) => m,
                    Err(e) => {
                        return AttemptOutcome::Retry(format!("unreadable reply: {e}"), false)
                    }
                };
                match reply.metadata.response_code {
                    ResponseCode::NoError | ResponseCode::NXDomain => {}
                    ResponseCode::ServFail => {
                        return AttemptOutcome::Retry("SERVFAIL".into(), false)
                    }
                    ResponseCode::Refused | ResponseCode::NotAuth => {
                        return AttemptOutcome::Fail(AnnounceError::NotAuthoritative {
                            target: self.target(),
                            zone: self.zone.to_ascii(),
                        })
                    }
                    other => {
                        return AttemptOutcome::Fail(AnnounceError::Call(AwsError::Rejected {
                            target: self.target(),
                            code: other.to_string(),
                            reason: format!("query {} {rtype}: {other}", self.name),
                        }))
                    }
                }
                if !reply.metadata.authoritative {
                    return AttemptOutcome::Fail(AnnounceError::NotAuthoritative {
                        target: self.target(),
                        zone: self.zone.to_ascii(),
                    });
                }
                AttemptOutcome::Done(message::records_of(&reply, &self.name))
            })?;
            for record in records {
                if !found.contains(&record) {
                    found.push(record);
                }
            }
            if found.iter().any(|r| matches!(r, Published::Cname(_))) {
                break; // a CNAME excludes other data at the name
            }
        }
        Ok(found)
    }

    /// Replace the name's address records by `new` if `prerequisite` holds. Blocks until done
    /// or `deadline`.
    pub fn update(
        &self,
        prerequisite: &Prerequisite,
        new: &Published,
        deadline: Instant,
    ) -> Result<AnnounceOutcome, AnnounceError> {
        let result = self.with_retries(deadline, |budget| {
            let mut request =
                match message::update(&self.zone, &self.name, prerequisite, new, self.ttl) {
                    Ok(m) => m,
                    Err(e) => {
                        return AttemptOutcome::Fail(AnnounceError::Call(AwsError::Config(e)))
                    }
                };
            let mut verifier = match request.finalize(self.key.signer(), unix_now()) {
                Ok(Some(v)) => v,
                Ok(None) | Err(_) => {
                    return AttemptOutcome::Fail(AnnounceError::Call(AwsError::Config(format!(
                        "could not sign the update with key {}",
                        self.key.name()
                    ))))
                }
            };
            let bytes = match self.exchange(&request, budget) {
                Ok(bytes) => bytes,
                Err(e) => return AttemptOutcome::Retry(e.to_string(), true),
            };
            let reply = match Message::from_vec(&bytes) {
                Ok(m) => m,
                Err(e) => return AttemptOutcome::Retry(format!("unreadable reply: {e}"), false),
            };
            let target = format!("{} key {}", self.target(), self.key.name());
            match message::classify(&reply) {
                ReplyVerdict::Applied => match verifier.verify(&bytes) {
                    Ok(_) => AttemptOutcome::Done(Ok(())),
                    Err(e) => AttemptOutcome::Fail(AnnounceError::Call(AwsError::Server {
                        target,
                        reason: format!(
                            "the reply claims success but its TSIG signature does not verify \
                             ({e}); the record may or may not have changed"
                        ),
                    })),
                },
                ReplyVerdict::Tsig(failure) => {
                    AttemptOutcome::Fail(AnnounceError::Tsig { target, failure })
                }
                ReplyVerdict::NotAuth => AttemptOutcome::Fail(AnnounceError::NotAuthoritative {
                    target,
                    zone: self.zone.to_ascii(),
                }),
                ReplyVerdict::NotZone => AttemptOutcome::Fail(AnnounceError::NotZone {
                    target,
                    name: self.name.to_ascii(),
                    zone: self.zone.to_ascii(),
                }),
                ReplyVerdict::Refused => {
                    AttemptOutcome::Fail(AnnounceError::Call(AwsError::Refused {
                        target,
                        code: "REFUSED".into(),
                        reason: format!(
                            "REFUSED: the server's update policy does not let key {} change {}",
                            self.key.name(),
                            self.name
                        ),
                    }))
                }
                ReplyVerdict::PrerequisiteFailed(rcode) => AttemptOutcome::Done(Err(rcode)),
                ReplyVerdict::Retry(rcode) => AttemptOutcome::Retry(rcode, false),
                ReplyVerdict::Rejected(rcode) => {
                    AttemptOutcome::Fail(AnnounceError::Call(AwsError::Rejected {
                        target,
                        code: rcode.clone(),
                        reason: rcode,
                    }))
                }
            }
        });
        match result {
            Ok((Ok(()), attempts)) => Ok(AnnounceOutcome::Changed {
                published: new.to_string(),
                attempts,
            }),
            Ok((Err(rcode), _)) => {
                let found = self.read(deadline).unwrap_or_default();
                if found == [new.clone()] {
                    return Ok(AnnounceOutcome::AlreadyCurrent {
                        published: new.to_string(),
                    });
                }
                Err(AnnounceError::PrerequisiteFailed {
                    name: self.name.to_ascii(),
                    expected: prerequisite.describe(),
                    found: found.iter().map(ToString::to_string).collect(),
                    rcode,
                })
            }
            Err(e) => Err(e),
        }
    }
}

impl Announcer for Rfc2136Announcer {
    fn describe(&self) -> String {
        format!(
            "rfc2136 {} via {} zone {} key {} ({}), ttl {} s",
            self.name,
            self.server,
            self.zone,
            self.key.name(),
            self.key.algorithm(),
            self.ttl
        )
    }

    fn announce(
        &self,
        change: &WriterChange,
        deadline: Instant,
    ) -> Result<AnnounceOutcome, AnnounceError> {
        let new = self.addresses.resolve(&change.new_writer)?;
        let prerequisite = match &change.old_writer {
            Some(old) => Prerequisite::Holds(vec![self.addresses.resolve(old)?]),
            None => {
                let found = self.read(deadline)?;
                if found == [new.clone()] {
                    return Ok(AnnounceOutcome::AlreadyCurrent {
                        published: new.to_string(),
                    });
                }
                if found.is_empty() {
                    Prerequisite::Absent
                } else {
                    Prerequisite::Holds(found)
                }
            }
        };
        self.update(&prerequisite, &new, deadline)
    }

    fn current(&self, deadline: Instant) -> Result<Vec<String>, AnnounceError> {
        Ok(self
            .read(deadline)?
            .iter()
            .map(ToString::to_string)
            .collect())
    }
}
