//! The nodes and the rules the decision core applies (plain data, no I/O).

use std::time::Duration;

/// One database node as configured.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NodeSpec {
    /// A short name for messages, events and commands (`db1`).
    pub name: String,
    /// Host name or IP address, as replicas name it in `Master_Host`.
    pub host: String,
    /// TCP port.
    pub port: u16,
    /// Higher wins among equally advanced candidates.
    pub priority: i32,
    /// Never promote this node (e.g. a delayed or backup replica).
    pub never_promote: bool,
}

impl NodeSpec {
    /// `name (host:port)`, for messages.
    pub fn label(&self) -> String {
        format!("{} ({}:{})", self.name, self.host, self.port)
    }

    /// `host:port`.
    pub fn address(&self) -> String {
        format!("{}:{}", self.host, self.port)
    }
}

/// The rules of detection, promotion and fencing.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Policy {
    /// Consecutive failed probes before the primary counts as unreachable. (While the
    /// primary is suspect the daemon probes every `suspect_interval`, so after a crash the
    /// `fall` probes take tens of milliseconds, not `fall` intervals.)
    pub fall: u32,
    /// Heartbeat period the replicas must use (`MASTER_HEARTBEAT_PERIOD`); a replica that
    /// received nothing for two periods has lost its primary.
    pub heartbeat_period: Duration,
    /// After a failover, no automatic failover for this long unless acknowledged.
    pub anti_flap: Duration,
    /// Promote even when the zero-loss gate cannot prove that nothing acknowledged is lost.
    pub allow_data_loss: bool,
    /// Do not promote a replica whose apply lag (`Seconds_Behind_Master`) exceeds this.
    pub max_promotion_lag: Option<Duration>,
    /// Let an old primary whose history is a prefix of the new primary's rejoin as a replica.
    pub rejoin_old_primary: bool,
    /// Switch a healthy primary to asynchronous replication after this long with no replica
    /// able to acknowledge (`None`: never; commits wait for a replica).
    pub sync_fallback: Option<Duration>,
}

impl Default for Policy {
    /// The defaults, in one place (the configuration file falls back to these): `fall` 3,
    /// heartbeat 50 ms, anti-flapping 600 s, no data loss allowed, promotion lag at most
    /// 300 s, old primaries rejoin, fall back to asynchronous replication after 5 s without
    /// a replica able to acknowledge.
    fn default() -> Self {
        Policy {
            fall: 3,
            heartbeat_period: Duration::from_millis(50),
            anti_flap: Duration::from_secs(600),
            allow_data_loss: false,
            max_promotion_lag: Some(Duration::from_secs(300)),
            rejoin_old_primary: true,
            sync_fallback: Some(Duration::from_secs(5)),
        }
    }
}
