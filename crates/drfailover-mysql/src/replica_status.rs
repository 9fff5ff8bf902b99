//! The one typed reading of `SHOW SLAVE STATUS` / `SHOW ALL SLAVES STATUS` rows. Every
//! crate that looks at a replica's threads, positions or errors reads them through
//! [`ReplicaStatus`], so a column is interpreted the same way everywhere.

use std::time::Duration;

use crate::QueryResult;

/// State of a replica's IO (receiver) thread, from `Slave_IO_Running`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum IoState {
    /// `Yes`: connected to its primary.
    Running,
    /// `Connecting` (or `Preparing`): trying to (re)connect — it receives nothing.
    Connecting,
    /// `No` (or anything else): stopped.
    #[default]
    Stopped,
}

impl IoState {
    /// From the `Slave_IO_Running` text.
    pub fn parse(text: &str) -> IoState {
        match text {
            "Yes" => IoState::Running,
            "Connecting" | "Preparing" => IoState::Connecting,
            _ => IoState::Stopped,
        }
    }
}

/// One row of `SHOW [ALL] SLAVES STATUS`: one replication connection. Missing columns read
/// as empty, zero or `None`; nothing here fails. Positions stay text (`Gtid_IO_Pos`): GTID
/// arithmetic belongs to the caller.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ReplicaStatus {
    /// `Connection_name` (empty for the default connection; absent in `SHOW SLAVE STATUS`).
    pub connection_name: String,
    /// `Master_Host`.
    pub master_host: String,
    /// `Master_Port` (0 when unreadable).
    pub master_port: u16,
    /// `Slave_IO_Running`.
    pub io: IoState,
    /// `Slave_SQL_Running = Yes`.
    pub sql_running: bool,
    /// `Using_Gtid` is `Slave_Pos` or `Current_Pos`.
    pub using_gtid: bool,
    /// `Gtid_IO_Pos`: what it has received (text, possibly empty).
    pub gtid_io_pos: String,
    /// `Slave_received_heartbeats`.
    pub heartbeats: u64,
    /// `Slave_heartbeat_period`.
    pub heartbeat_period: Duration,
    /// `Master_Log_File`.
    pub master_log_file: String,
    /// `Read_Master_Log_Pos`: moves with every event received.
    pub read_master_log_pos: u64,
    /// `Seconds_Behind_Master` (`None` when NULL, e.g. the SQL thread is stopped).
    pub seconds_behind: Option<u64>,
    /// `Last_IO_Error`.
    pub last_io_error: String,
    /// `Last_SQL_Errno` (0 when none).
    pub last_sql_errno: u32,
    /// `Last_SQL_Error`.
    pub last_sql_error: String,
}

impl ReplicaStatus {
    /// Row `row` of `status`. O(columns); allocates the text fields.
    pub fn from_row(status: &QueryResult, row: usize) -> ReplicaStatus {
        let text = |name: &str| {
            status
                .column(name)
                .and_then(|c| status.text(row, c))
                .unwrap_or("")
        };
        let number = |name: &str| text(name).parse::<u64>().ok();
        let using = text("Using_Gtid");
        ReplicaStatus {
            connection_name: text("Connection_name").to_string(),
            master_host: text("Master_Host").to_string(),
            master_port: number("Master_Port").unwrap_or(0) as u16,
            io: IoState::parse(text("Slave_IO_Running")),
            sql_running: text("Slave_SQL_Running") == "Yes",
            using_gtid: using.eq_ignore_ascii_case("Slave_Pos")
                || using.eq_ignore_ascii_case("Current_Pos"),
            gtid_io_pos: text("Gtid_IO_Pos").to_string(),
            heartbeats: number("Slave_received_heartbeats").unwrap_or(0),
            heartbeat_period: Duration::from_secs_f64(
                text("Slave_heartbeat_period")
                    .parse::<f64>()
                    .ok()
                    .filter(|s| s.is_finite() && *s >= 0.0)
                    .unwrap_or(0.0),
            ),
            master_log_file: text("Master_Log_File").to_string(),
            read_master_log_pos: number("Read_Master_Log_Pos").unwrap_or(0),
            seconds_behind: number("Seconds_Behind_Master"),
            last_io_error: text("Last_IO_Error").to_string(),
            last_sql_errno: number("Last_SQL_Errno").unwrap_or(0) as u32,
            last_sql_error: text("Last_SQL_Error").to_string(),
        }
    }

    /// Every row of `status` (empty when the node does not replicate).
    pub fn all(status: &QueryResult) -> Vec<ReplicaStatus> {
        (0..status.num_rows())
            .map(|row| ReplicaStatus::from_row(status, row))
            .collect()
    }

    /// The first row (the default connection of `SHOW SLAVE STATUS`), if any.
    pub fn first(status: &QueryResult) -> Option<ReplicaStatus> {
        (status.num_rows() > 0).then(|| ReplicaStatus::from_row(status, 0))
    }

    /// Both threads run (`Slave_IO_Running = Yes` and `Slave_SQL_Running = Yes`).
    pub fn replicating(&self) -> bool {
        self.io == IoState::Running && self.sql_running
    }

    /// `Last_IO_Error` and `Last_SQL_Error`, joined with `; ` (empty when neither is set).
    pub fn last_errors(&self) -> String {
        [self.last_io_error.as_str(), self.last_sql_error.as_str()]
            .into_iter()
            .filter(|s| !s.is_empty())
            .collect::<Vec<_>>()
            .join("; ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn io_thread_states_read_as_mariadb_writes_them() {
        assert_eq!(IoState::parse("Yes"), IoState::Running);
        assert_eq!(IoState::parse("Connecting"), IoState::Connecting);
        assert_eq!(IoState::parse("Preparing"), IoState::Connecting);
        assert_eq!(IoState::parse("No"), IoState::Stopped);
        assert_eq!(IoState::parse(""), IoState::Stopped);
    }
}
