use std::time::{Duration, Instant};

use drfailover_mysql::ReplicaStatus;
use tempfile::TempDir;

use crate::netns::Lab;
use crate::node::{Node, NodeRole};
use crate::tls::TestPki;
use crate::{addr, require};

/// The application user: table privileges on [`APP_DATABASE`] only, so `read_only` binds it.
pub const APP_USER: &str = "app";
/// The application user's password.
pub const APP_PASSWORD: &str = "app-secret-pw";
/// The application database.
pub const APP_DATABASE: &str = "app";
/// The replication user (`REPLICATION SLAVE`).
pub const REPL_USER: &str = "repl";
/// The replication user's password.
pub const REPL_PASSWORD: &str = "repl-secret-pw";
/// An administrative user over TCP (`ALL PRIVILEGES`), for the orchestrator.
pub const ADMIN_USER: &str = "orc";
/// The administrative user's password.
pub const ADMIN_PASSWORD: &str = "orc-secret-pw";

/// A primary and a replica (or more nodes) of MariaDB on loopback. Drop tears all down.
#[derive(Debug)]
pub struct Topology {
    nodes: Vec<Node>,
    // Declared after `nodes` so servers are killed before the lab and directories go.
    lab: Option<Lab>,
    pki: Option<TestPki>,
    _dir: TempDir,
}

impl Topology {
    /// Start `nodes[0]` as primary and `nodes[1]` as its GTID replica with semi-sync
    /// (`AFTER_SYNC`) connected. Takes about 1–2 s. Fails with a clear message when MariaDB is
    /// not installed.
    pub fn primary_replica() -> Result<Topology, String> {
        let (ips, port) = addr::allocate(2);
        Self::start_pair(ips, port, None, false)
    }

    /// Start `nodes[0]` as primary and `replicas` GTID replicas of it (semi-sync, all
    /// attached), each on its own loopback address. About 1–3 s.
    pub fn primary_replicas(replicas: usize) -> Result<Topology, String> {
        let (ips, port) = addr::allocate(replicas + 1);
        Self::start_pair(ips, port, None, false)
    }

    /// Like [`Topology::primary_replicas`], inside a network namespace of the test's own
    /// (see [`Topology::primary_replica_in_lab`]). Requires root.
    pub fn primary_replicas_in_lab(replicas: usize) -> Result<Topology, String> {
        let lab = Lab::create(replicas as u8 + 1)?;
        let ips = (0..=replicas as u8).map(|i| lab.ip(i)).collect();
        Self::start_pair(ips, 3306, Some(lab), false)
    }

    /// Like [`Topology::primary_replica`], with both nodes serving TLS from a CA made for the
    /// test ([`Topology::pki`]). Node 0's certificate is for its own address; node 1's is
    /// deliberately for another address (192.0.2.1), to exercise identity checks.
    pub fn primary_replica_tls() -> Result<Topology, String> {
        let (ips, port) = addr::allocate(2);
        Self::start_pair(ips, port, None, true)
    }

    /// The test PKI of a TLS topology.
    pub fn pki(&self) -> Option<&TestPki> {
        self.pki.as_ref()
    }

    /// Like [`Topology::primary_replica`], but both nodes run inside a network namespace of
    /// their own (a [`Lab`], on 169.254.N.2 and .3), so [`Topology::blackhole`] can drop their
    /// packets without touching the host's firewall. Requires root.
    pub fn primary_replica_in_lab() -> Result<Topology, String> {
        let lab = Lab::create(2)?;
        let port = 3306;
        Self::start_pair(vec![lab.ip(0), lab.ip(1)], port, Some(lab), false)
    }

    fn start_pair(
        ips: Vec<std::net::Ipv4Addr>,
        port: u16,
        lab: Option<Lab>,
        tls: bool,
    ) -> Result<Topology, String> {
        let bins = require::mariadb_binaries()?;
        let dir = tempfile::Builder::new()
            .prefix("drfailover-topo-")
            .tempdir()
            .map_err(|e| format!("temp dir: {e}"))?;
        let installs: Vec<Result<Node, String>> = std::thread::scope(|s| {
            let handles: Vec<_> = ips
                .iter()
                .enumerate()
                .map(|(i, ip)| {
                    let (bins, parent) = (&bins, dir.path());
                    s.spawn(move || {
                        Node::install(
                            bins,
                            parent,
                            &format!("node{}", i + 1),
                            i as u32 + 1,
                            *ip,
                            port,
                        )
                    })
                })
                .collect();
            handles
                .into_iter()
                .map(|h| h.join().expect("install thread"))
                .collect()
        });
        let mut nodes = installs.into_iter().collect::<Result<Vec<_>, _>>()?;
        if let Some(lab) = &lab {
            for node in &mut nodes {
                node.set_netns(lab.name());
            }
        }
        let pki = if tls {
            let pki = TestPki::create(&dir.path().join("tls"))?;
            let wrong = std::net::Ipv4Addr::new(192, 0, 2, 1);
            for (i, node) in nodes.iter_mut().enumerate() {
                let san = if i == 0 { node.ip() } else { wrong };
                let (cert, key) = pki.server_cert(node.name(), san)?;
                node.set_tls(pki.ca.clone(), cert, key);
            }
            Some(pki)
        } else {
            None
        };
        let mut topo = Topology {
            nodes,
            lab,
            pki,
            _dir: dir,
        };
        topo.nodes[0].start(NodeRole::Primary)?;
        for node in &mut topo.nodes[1..] {
            node.start(NodeRole::Replica)?;
        }
        for node in &topo.nodes {
            let statements = setup_statements();
            node.sql_batch(&statements.iter().map(String::as_str).collect::<Vec<_>>())?;
        }
        for replica in 1..topo.nodes.len() {
            topo.attach_replica(replica, 0)?;
        }
        topo.nodes[0].sql("SET GLOBAL rpl_semi_sync_master_enabled=1")?;
        topo.wait_semi_sync_clients(0, topo.nodes.len() as u32 - 1)?;
        Ok(topo)
    }

    /// The directory holding every node's data directory, socket and logs.
    pub fn dir(&self) -> &std::path::Path {
        self._dir.path()
    }

    /// The network namespace the nodes run in, if any.
    pub fn lab(&self) -> Option<&Lab> {
        self.lab.as_ref()
    }

    /// Node `i`.
    pub fn node(&self, i: usize) -> &Node {
        &self.nodes[i]
    }

    /// Node `i`, mutably (for signals).
    pub fn node_mut(&mut self, i: usize) -> &mut Node {
        &mut self.nodes[i]
    }

    /// All nodes, in priority order.
    pub fn nodes(&self) -> &[Node] {
        &self.nodes
    }

    /// `host:port,host:port` of all nodes, in priority order.
    pub fn hosts(&self) -> String {
        self.nodes
            .iter()
            .map(|n| n.addr().to_string())
            .collect::<Vec<_>>()
            .join(",")
    }

    /// A DSN for the app user over all nodes, password inline, plus `extra` query parameters.
    pub fn dsn(&self, extra: &str) -> String {
        let mut dsn = format!(
            "mysql://{APP_USER}:{APP_PASSWORD}@{}/{APP_DATABASE}",
            self.hosts()
        );
        if !extra.is_empty() {
            dsn.push('?');
            dsn.push_str(extra);
        }
        dsn
    }

    /// An orchestrator configuration (TOML) for this topology: fast test settings (probe
    /// every 100 ms, 300 ms deadlines, heartbeats every 200 ms), the admin and replication
    /// accounts, one `[[node]]` table per node. `orchestrator_extra` lines go into
    /// `[orchestrator]`; `tables` (e.g. `[fence]`) are placed before the node tables;
    /// `node_extra` adds lines to node `i`'s table.
    pub fn orchestrator_config(
        &self,
        orchestrator_extra: &str,
        tables: &str,
        node_extra: &[(usize, &str)],
    ) -> String {
        let mut s = format!(
            "[orchestrator]\nprobe_interval_ms = 100\nprobe_timeout_ms = 300\nfall = 3\n\
             heartbeat_period_ms = 200\ncatchup_timeout_ms = 20000\nanti_flap_s = 600\n\
             {orchestrator_extra}\n\n\
             [credentials]\nuser = \"{ADMIN_USER}\"\npassword = \"{ADMIN_PASSWORD}\"\n\n\
             [replication]\nuser = \"{REPL_USER}\"\npassword = \"{REPL_PASSWORD}\"\n\n{tables}\n"
        );
        for (i, n) in self.nodes.iter().enumerate() {
            s.push_str(&format!(
                "\n[[node]]\nname = \"{}\"\nhost = \"{}\"\nport = {}\n",
                n.name(),
                n.ip(),
                n.port()
            ));
            for (j, line) in node_extra {
                if *j == i {
                    s.push_str(line);
                    s.push('\n');
                }
            }
        }
        s
    }

    /// Start replication on `replica` from `primary` (GTID, `slave_pos`, demote-safe).
    pub fn attach_replica(&self, replica: usize, primary: usize) -> Result<(), String> {
        let p = &self.nodes[primary];
        let change = format!(
            "CHANGE MASTER TO master_host='{}', master_port={}, master_user='{REPL_USER}', \
             master_password='{REPL_PASSWORD}', master_use_gtid=slave_pos, \
             master_connect_retry=1",
            p.ip(),
            p.port()
        );
        self.nodes[replica].sql_batch(&["STOP SLAVE", &change, "START SLAVE"])
    }

    /// Wait until `primary` sees at least `count` semi-sync replicas (bounded by 20 s).
    pub fn wait_semi_sync_clients(&self, primary: usize, count: u32) -> Result<(), String> {
        let start = Instant::now();
        loop {
            let r = self.nodes[primary].sql(
                "SELECT VARIABLE_NAME, VARIABLE_VALUE FROM information_schema.GLOBAL_STATUS \
                 WHERE VARIABLE_NAME IN ('RPL_SEMI_SYNC_MASTER_CLIENTS', 'RPL_SEMI_SYNC_MASTER_STATUS')",
            )?;
            let value = |name: &str| {
                (0..r.num_rows())
                    .find(|&row| r.text(row, 0) == Some(name))
                    .and_then(|row| r.text(row, 1))
                    .unwrap_or("")
                    .to_string()
            };
            let n: u32 = value("RPL_SEMI_SYNC_MASTER_CLIENTS").parse().unwrap_or(0);
            // ON means commits really wait for a replica's acknowledgement again.
            if n >= count && value("RPL_SEMI_SYNC_MASTER_STATUS") == "ON" {
                return Ok(());
            }
            if start.elapsed() > Duration::from_secs(20) {
                return Err(format!(
                    "replica did not attach with semi-sync within 20 s; replica log:\n{}",
                    self.nodes[1 - primary.min(1)].error_log()
                ));
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// Wait until `replica` has applied everything `primary` has binlogged (bounded by 20 s).
    pub fn wait_replicated(&self, primary: usize, replica: usize) -> Result<(), String> {
        let pos = self.nodes[primary]
            .sql_value("SELECT @@gtid_binlog_pos")?
            .unwrap_or_default();
        let waited =
            self.nodes[replica].sql_value(&format!("SELECT MASTER_GTID_WAIT('{pos}', 20)"))?;
        if waited.as_deref() == Some("0") {
            Ok(())
        } else {
            Err(format!("replica did not reach {pos} within 20 s"))
        }
    }

    /// Wait until node `replica` replicates from node `primary` (its one connection points at
    /// `primary`'s address, both threads running), up to `within`. Polls every 10 ms.
    pub fn wait_follows(
        &self,
        replica: usize,
        primary: usize,
        within: Duration,
    ) -> Result<(), String> {
        let want = self.nodes[primary].ip().to_string();
        let mut last = String::new();
        let follows = crate::wait::within(within, || {
            let status = match self.nodes[replica].sql("SHOW SLAVE STATUS") {
                Ok(status) => ReplicaStatus::all(&status),
                Err(e) => {
                    last = e;
                    return None;
                }
            };
            match status.as_slice() {
                [one] if one.master_host == want && one.replicating() => Some(()),
                other => {
                    last = format!("{other:?}");
                    None
                }
            }
        });
        follows.ok_or_else(|| {
            format!(
                "{} does not replicate from {} within {within:?}: {last}",
                self.nodes[replica].name(),
                self.nodes[primary].name()
            )
        })
    }

    /// Wait until `replica` has received (not necessarily applied) everything `primary` has
    /// binlogged: its `Gtid_IO_Pos` equals the primary's `@@gtid_binlog_pos` (bounded by 20 s).
    pub fn wait_received(&self, primary: usize, replica: usize) -> Result<(), String> {
        let pos = self.nodes[primary]
            .sql_value("SELECT @@gtid_binlog_pos")?
            .unwrap_or_default();
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let status = self.nodes[replica].sql("SHOW SLAVE STATUS")?;
            let received = ReplicaStatus::first(&status)
                .map(|s| s.gtid_io_pos)
                .unwrap_or_default();
            if received == pos {
                return Ok(());
            }
            if Instant::now() > deadline {
                return Err(format!(
                    "replica received {received:?}, not {pos:?}, within 20 s"
                ));
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// Drop every packet to node `i` (only for [`Topology::primary_replica_in_lab`]).
    pub fn blackhole(&self, i: usize) -> Result<(), String> {
        let lab = self
            .lab
            .as_ref()
            .ok_or("blackhole needs a topology started in a lab")?;
        lab.blackhole(self.nodes[i].ip(), self.nodes[i].port())
    }

    /// Undo [`Topology::blackhole`].
    pub fn heal(&self, i: usize) -> Result<(), String> {
        let lab = self
            .lab
            .as_ref()
            .ok_or("heal needs a topology started in a lab")?;
        lab.heal(self.nodes[i].ip(), self.nodes[i].port())
    }

    /// Cut node `i` off from processes on the host only (the orchestrator, clients); the
    /// other nodes still reach it (only for topologies in a lab).
    pub fn partition_from_host(&self, i: usize) -> Result<(), String> {
        let lab = self
            .lab
            .as_ref()
            .ok_or("partition needs a topology in a lab")?;
        lab.partition_from_host(self.nodes[i].ip(), self.nodes[i].port())
    }

    /// Undo [`Topology::partition_from_host`].
    pub fn heal_from_host(&self, i: usize) -> Result<(), String> {
        let lab = self.lab.as_ref().ok_or("heal needs a topology in a lab")?;
        lab.heal_from_host(self.nodes[i].ip(), self.nodes[i].port())
    }

    /// `kill -9` node `i`.
    pub fn kill9(&mut self, i: usize) -> Result<(), String> {
        self.nodes[i].kill9()
    }

    /// SIGSTOP node `i`.
    pub fn freeze(&mut self, i: usize) -> Result<(), String> {
        self.nodes[i].freeze()
    }

    /// SIGCONT node `i`.
    pub fn thaw(&mut self, i: usize) -> Result<(), String> {
        self.nodes[i].thaw()
    }

    /// Promote node `i`: stop receiving, apply everything already received, forget the old
    /// primary, become writable. Semi-sync master is switched off until a replica attaches
    /// again. ~10–50 ms.
    ///
    /// Applying the relay log first matters: a semi-sync replica acknowledges a transaction
    /// once it is *received*, so `STOP SLAVE; RESET SLAVE ALL` alone would throw away
    /// transactions the old primary already acknowledged to its clients.
    pub fn promote(&self, i: usize) -> Result<(), String> {
        self.apply_and_detach(i)?;
        self.nodes[i].sql_batch(&[
            "SET GLOBAL rpl_semi_sync_master_enabled=0",
            "SET GLOBAL read_only=0",
        ])
    }

    /// Stop receiving, apply everything already received, then forget replication. (A
    /// semi-sync replica acknowledges on receipt: resetting before applying loses writes the
    /// old primary acknowledged.)
    fn apply_and_detach(&self, i: usize) -> Result<(), String> {
        let node = &self.nodes[i];
        node.sql_idempotent("STOP SLAVE IO_THREAD")?;
        self.apply_received(i)?;
        node.sql_idempotent("STOP SLAVE")?;
        node.sql("RESET SLAVE ALL").map(|_| ())
    }

    /// Wait (up to 30 s) until node `i` has applied every transaction its replication has
    /// received so far (its `Gtid_IO_Pos`). Does not touch the replication threads, so it
    /// never waits on the primary.
    fn apply_received(&self, i: usize) -> Result<(), String> {
        let node = &self.nodes[i];
        let status = node.sql("SHOW SLAVE STATUS")?;
        let received = ReplicaStatus::first(&status)
            .map(|s| s.gtid_io_pos)
            .unwrap_or_default();
        if !received.is_empty() {
            let applied = node.sql_value(&format!("SELECT MASTER_GTID_WAIT('{received}', 30)"))?;
            if applied.as_deref() != Some("0") {
                return Err(format!(
                    "{}: relay log not applied up to {received} within 30 s",
                    node.name()
                ));
            }
        }
        Ok(())
    }

    /// Make node `i` writable once it has applied what it received (the acknowledged writes
    /// of a semi-synchronous primary; otherwise its own new writes could take their
    /// auto-increment keys and stop the replica's applier before them), leaving its
    /// replication threads attached (stopping them while the old primary is frozen or
    /// unreachable blocks for seconds). For measuring a client's reaction to a silent
    /// failure; finish with [`Topology::detach_replication`] once the old primary is thawed
    /// or healed.
    pub fn promote_fast(&self, i: usize) -> Result<(), String> {
        self.apply_received(i)?;
        self.nodes[i].sql_batch(&[
            "SET GLOBAL rpl_semi_sync_master_enabled=0",
            "SET GLOBAL read_only=0",
        ])
    }

    /// Stop replication on node `i` after applying everything it received, and forget it
    /// (after [`Topology::promote_fast`]).
    pub fn detach_replication(&self, i: usize) -> Result<(), String> {
        self.apply_and_detach(i)
    }

    /// Fence node `i`: `SET GLOBAL read_only=1` (connections stay open; writes fail with 1290).
    pub fn fence(&self, i: usize) -> Result<(), String> {
        self.nodes[i].sql("SET GLOBAL read_only=1").map(|_| ())
    }

    /// Let the app user log in to node `i` over its Unix socket (`'app'@'localhost'`, the
    /// same grants as over TCP, not binlogged): a client that still reaches the server when
    /// the network between the host and the node is cut. One round trip per statement.
    pub fn allow_app_over_socket(&self, i: usize) -> Result<(), String> {
        let host = "localhost";
        self.nodes[i].sql_batch(&[
            "SET sql_log_bin=0",
            &format!(
                "CREATE USER IF NOT EXISTS '{APP_USER}'@'{host}' IDENTIFIED BY '{APP_PASSWORD}'"
            ),
            &format!(
                "GRANT SELECT, INSERT, UPDATE, DELETE ON {APP_DATABASE}.* TO '{APP_USER}'@'{host}'"
            ),
            "SET sql_log_bin=1",
        ])
    }

    /// Restart a stopped node `i`, as primary (writable) or as a read-only replica of
    /// `primary` (with `master_demote_to_slave=1`).
    pub fn restart(
        &mut self,
        i: usize,
        role: NodeRole,
        primary: Option<usize>,
    ) -> Result<(), String> {
        self.nodes[i].start(role)?;
        if let (NodeRole::Replica, Some(p)) = (role, primary) {
            let node = &self.nodes[p];
            let change = format!(
                "CHANGE MASTER TO master_host='{}', master_port={}, master_user='{REPL_USER}', \
                 master_password='{REPL_PASSWORD}', master_use_gtid=slave_pos, \
                 master_demote_to_slave=1, master_connect_retry=1",
                node.ip(),
                node.port()
            );
            self.nodes[i].sql_batch(&["STOP SLAVE", &change, "START SLAVE"])?;
        }
        Ok(())
    }
}

/// Users and schema, created identically on every node without binlogging, so replication
/// starts from empty GTID positions.
fn setup_statements() -> Vec<String> {
    let mut s = vec![
        "SET sql_log_bin=0".to_string(),
        "CREATE DATABASE IF NOT EXISTS app".to_string(),
    ];
    // 127.% for loopback nodes, 169.254.% for nodes in a lab namespace.
    for host in ["127.%", "169.254.%"] {
        s.push(format!(
            "CREATE USER IF NOT EXISTS '{REPL_USER}'@'{host}' IDENTIFIED BY '{REPL_PASSWORD}'"
        ));
        s.push(format!(
            "GRANT REPLICATION SLAVE ON *.* TO '{REPL_USER}'@'{host}'"
        ));
        s.push(format!(
            "CREATE USER IF NOT EXISTS '{APP_USER}'@'{host}' IDENTIFIED BY '{APP_PASSWORD}'"
        ));
        s.push(format!(
            "GRANT SELECT, INSERT, UPDATE, DELETE, CREATE, DROP, INDEX, ALTER ON {APP_DATABASE}.* TO '{APP_USER}'@'{host}'"
        ));
        // Lets probes read replication status; unlike READ ONLY ADMIN it does not bypass read_only.
        s.push(format!(
            "GRANT SLAVE MONITOR ON *.* TO '{APP_USER}'@'{host}'"
        ));
        s.push(format!(
            "CREATE USER IF NOT EXISTS '{ADMIN_USER}'@'{host}' IDENTIFIED BY '{ADMIN_PASSWORD}'"
        ));
        s.push(format!(
            "GRANT ALL PRIVILEGES ON *.* TO '{ADMIN_USER}'@'{host}'"
        ));
        // HAProxy's `option mysql-check user haproxy_check`: no password, no privileges.
        s.push(format!(
            "CREATE USER IF NOT EXISTS 'haproxy_check'@'{host}'"
        ));
    }
    s.push("SET sql_log_bin=1".to_string());
    s
}
