//! What one observation round saw on each node: plain data, produced by
//! [`crate::observe`] and consumed by the pure [`crate::core`].

use std::time::{Duration, Instant};

use drfailover_probe::OutcomeClass;

use crate::gtid::{GtidPos, GtidState};

pub use drfailover_mysql::IoState;

/// Index of a node in the configuration.
pub type NodeId = usize;

/// One replication connection of a node (`SHOW ALL SLAVES STATUS`, one row, read by
/// [`drfailover_mysql::ReplicaStatus`]), with its GTID position parsed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReplicaFacts {
    /// `Connection_name` (empty for the default connection).
    pub connection_name: String,
    /// `Master_Host`.
    pub master_host: String,
    /// `Master_Port`.
    pub master_port: u16,
    /// `Slave_IO_Running`.
    pub io: IoState,
    /// `Slave_SQL_Running = Yes`.
    pub sql_running: bool,
    /// `Using_Gtid` is `Slave_Pos` or `Current_Pos`.
    pub using_gtid: bool,
    /// `Gtid_IO_Pos`: what it has received.
    pub received: GtidPos,
    /// `Slave_received_heartbeats`.
    pub heartbeats: u64,
    /// `Slave_heartbeat_period`.
    pub heartbeat_period: Duration,
    /// (`Master_Log_File`, `Read_Master_Log_Pos`): moves with every event received.
    pub read_position: (String, u64),
    /// `Seconds_Behind_Master` (`None` when NULL).
    pub seconds_behind: Option<u64>,
    /// `Last_SQL_Errno` (0 when none).
    pub last_sql_errno: u32,
    /// `Last_IO_Error` / `Last_SQL_Error`, for messages.
    pub last_error: String,
}

/// A replica's progress marker: heartbeats received, read position and received GTIDs. Any
/// change means it heard from its primary.
pub type Progress = (u64, (String, u64), String);

/// Everything the orchestrator reads from a node it reached.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct NodeFacts {
    /// `@@server_id`.
    pub server_id: u32,
    /// `@@read_only` (or `@@innodb_read_only`).
    pub read_only: bool,
    /// `@@log_bin`: it can serve replicas after a promotion.
    pub log_bin: bool,
    /// `@@gtid_strict_mode`.
    pub gtid_strict_mode: bool,
    /// `@@gtid_binlog_pos`.
    pub binlog_pos: GtidPos,
    /// `@@gtid_binlog_state`.
    pub binlog_state: GtidState,
    /// `@@gtid_slave_pos`: what its SQL thread applied.
    pub slave_pos: GtidPos,
    /// `@@gtid_current_pos`.
    pub current_pos: GtidPos,
    /// `@@rpl_semi_sync_master_enabled`.
    pub semi_sync_master_enabled: bool,
    /// `Rpl_semi_sync_master_status = ON` (read on writable nodes only).
    pub semi_sync_master_active: bool,
    /// `Rpl_semi_sync_master_clients` (read on writable nodes only).
    pub semi_sync_master_clients: u32,
    /// `@@rpl_semi_sync_master_wait_point = AFTER_SYNC`.
    pub semi_sync_after_sync: bool,
    /// `@@rpl_semi_sync_slave_enabled`: it acknowledges transactions when it is a replica.
    pub semi_sync_slave_enabled: bool,
    /// `@@rpl_semi_sync_master_timeout` in milliseconds: how long a commit waits for an
    /// acknowledgement before the server itself falls back to asynchronous replication.
    pub semi_sync_master_timeout_ms: u64,
    /// Replication connections (empty on a primary or a detached node).
    pub replication: Vec<ReplicaFacts>,
    /// When `replication` was last read (a replica's status is read again while other
    /// probes of the round are still running); `None`: at the round's end.
    pub replication_read_at: Option<Instant>,
    /// When the progress `replication` shows was first read in this round; `None`: at
    /// `replication_read_at`.
    pub progress_seen_at: Option<Instant>,
}

impl NodeFacts {
    /// The default replication connection, if the node replicates.
    pub fn replica(&self) -> Option<&ReplicaFacts> {
        self.replication.first()
    }

    /// The default replication connection's progress marker (`None` when not a replica).
    pub fn progress(&self) -> Option<Progress> {
        self.replica().map(|r| {
            (
                r.heartbeats,
                r.read_position.clone(),
                r.received.to_string(),
            )
        })
    }

    /// What this node holds or has received: `Gtid_IO_Pos` for a replica, else its
    /// `gtid_current_pos` (a detached or promoted node).
    pub fn received(&self) -> &GtidPos {
        match self.replica() {
            Some(r) if !r.received.is_empty() => &r.received,
            _ => &self.current_pos,
        }
    }
}

/// The result of probing one node.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum NodeProbe {
    /// The node answered every query of the round.
    Reached(Box<NodeFacts>),
    /// It did not: the outcome class and a message (never a secret).
    Failed {
        /// Why (refused, timed out, auth failed, …).
        class: OutcomeClass,
        /// The error message.
        detail: String,
    },
}

/// One observation round: every configured node, probed concurrently.
#[derive(Clone, Debug)]
pub struct Round {
    /// When the round finished.
    pub at: Instant,
    /// One probe per configured node, in configuration order.
    pub nodes: Vec<NodeProbe>,
    /// Whether this orchestrator holds the lock on a majority of the nodes.
    pub leader: bool,
    /// How many nodes' locks this orchestrator holds.
    pub locks_held: usize,
}
