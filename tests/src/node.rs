use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use drfailover_mysql::{ConnectOptions, Connection, QueryResult};
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

use crate::require::MariaDbBinaries;
use crate::spawner;

/// How long the harness waits for one server to start or one admin statement to finish.
const ADMIN_BUDGET: Duration = Duration::from_secs(20);

/// The role a node is started in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NodeRole {
    /// Writable (`read_only=0`).
    Primary,
    /// Started with `read_only=1` (and `--init-rpl-role=SLAVE` on restarts).
    Replica,
}

/// One `mariadbd` process with its own data directory and loopback address.
#[derive(Debug)]
pub struct Node {
    name: String,
    server_id: u32,
    ip: Ipv4Addr,
    port: u16,
    dir: PathBuf,
    bins: MariaDbBinaries,
    child: Option<Child>,
    stopped: bool,
    netns: Option<String>,
    /// (CA, certificate, key) when the node serves TLS.
    tls: Option<(PathBuf, PathBuf, PathBuf)>,
}

impl Node {
    /// Create the data directory (`mariadb-install-db`, ~0.5 s). Does not start the server.
    pub(crate) fn install(
        bins: &MariaDbBinaries,
        parent: &Path,
        name: &str,
        server_id: u32,
        ip: Ipv4Addr,
        port: u16,
    ) -> Result<Node, String> {
        let dir = parent.join(name);
        std::fs::create_dir_all(&dir).map_err(|e| format!("create {}: {e}", dir.display()))?;
        let mut cmd = Command::new(&bins.install_db);
        cmd.arg("--no-defaults");
        if nix::unistd::geteuid().is_root() {
            cmd.arg("--user=root");
        }
        let tmp = dir.join("tmp");
        std::fs::create_dir_all(&tmp).map_err(|e| format!("create {}: {e}", tmp.display()))?;
        cmd.arg(format!("--datadir={}", dir.join("data").display()))
            .arg(format!("--tmpdir={}", tmp.display()))
            .args([
                "--auth-root-authentication-method=normal",
                "--skip-test-db",
                "--innodb-log-file-size=16M",
                "--innodb-buffer-pool-size=32M",
            ])
            .stdin(Stdio::null());
        let out = cmd
            .output()
            .map_err(|e| format!("run {}: {e}", bins.install_db.display()))?;
        if !out.status.success() {
            return Err(format!(
                "mariadb-install-db failed for {name}: {}\n{}",
                String::from_utf8_lossy(&out.stderr),
                String::from_utf8_lossy(&out.stdout)
            ));
        }
        Ok(Node {
            name: name.to_string(),
            server_id,
            ip,
            port,
            dir,
            bins: bins.clone(),
            child: None,
            stopped: false,
            netns: None,
            tls: None,
        })
    }

    /// Run the server inside network namespace `name` (set before the first start).
    pub(crate) fn set_netns(&mut self, name: &str) {
        self.netns = Some(name.to_string());
    }

    /// Serve TLS with this CA, certificate and key (set before the first start).
    pub(crate) fn set_tls(&mut self, ca: PathBuf, cert: PathBuf, key: PathBuf) {
        self.tls = Some((ca, cert, key));
    }

    /// The node's name (`node1`, `node2`, …).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Loopback IP the node listens on.
    pub fn ip(&self) -> Ipv4Addr {
        self.ip
    }

    /// TCP port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// `ip:port`.
    pub fn addr(&self) -> SocketAddr {
        SocketAddr::from((self.ip, self.port))
    }

    /// The server's error log (useful in failure messages).
    pub fn error_log(&self) -> String {
        std::fs::read_to_string(self.dir.join("error.log")).unwrap_or_default()
    }

    /// The server's Unix socket (root connects there without a password).
    pub fn socket(&self) -> PathBuf {
        self.dir.join("mysqld.sock")
    }

    /// Whether the process is running (it may be SIGSTOPped).
    pub fn is_running(&self) -> bool {
        self.child.is_some()
    }

    /// Process id, if running.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// Start `mariadbd` and wait until it answers `SELECT 1` (polling, ~0.2 s).
    pub fn start(&mut self, role: NodeRole) -> Result<(), String> {
        if self.child.is_some() {
            return Err(format!("{} is already running", self.name));
        }
        let mut cmd = spawner::command_dying_with_parent(&self.bins.server, self.netns.as_deref());
        cmd.arg("--no-defaults");
        if nix::unistd::geteuid().is_root() {
            cmd.arg("--user=root");
        }
        cmd.arg(format!("--datadir={}", self.dir.join("data").display()))
            .arg(format!("--socket={}", self.socket().display()))
            .arg(format!(
                "--pid-file={}",
                self.dir.join("mysqld.pid").display()
            ))
            .arg(format!(
                "--log-error={}",
                self.dir.join("error.log").display()
            ))
            .arg(format!("--bind-address={}", self.ip))
            .arg(format!("--port={}", self.port))
            .arg(format!("--server-id={}", self.server_id))
            .args([
                "--skip-name-resolve",
                "--innodb-log-file-size=16M",
                "--innodb-buffer-pool-size=32M",
                "--innodb-flush-log-at-trx-commit=2",
                "--sync-binlog=0",
                "--performance-schema=OFF",
                "--log-bin=mysql-bin",
                "--log-slave-updates",
                "--binlog-format=ROW",
                "--gtid-strict-mode=1",
                "--rpl-semi-sync-slave-enabled=1",
                "--rpl-semi-sync-master-wait-point=AFTER_SYNC",
                "--rpl-semi-sync-master-timeout=10000",
                "--slave-net-timeout=5",
                "--max-connections=2000", // room for the bench's 500-client reconnect storm
                "--max-connect-errors=1000000",
                "--back-log=500",
                // Lets a test INSTALL MariaDB's test plugins (auth_test_plugin, mariadb-test).
                "--plugin-maturity=unknown",
            ]);
        if let Some((ca, cert, key)) = &self.tls {
            cmd.arg(format!("--ssl-ca={}", ca.display()))
                .arg(format!("--ssl-cert={}", cert.display()))
                .arg(format!("--ssl-key={}", key.display()));
        }
        if role == NodeRole::Replica {
            cmd.arg("--read-only=1");
            cmd.arg("--init-rpl-role=SLAVE");
        }
        let child = spawner::spawn(cmd).map_err(|e| format!("spawn mariadbd: {e}"))?;
        self.child = Some(child);
        self.stopped = false;
        self.wait_ready()
    }

    fn wait_ready(&mut self) -> Result<(), String> {
        let start = Instant::now();
        loop {
            if let Some(child) = self.child.as_mut() {
                if let Ok(Some(status)) = child.try_wait() {
                    self.child = None;
                    return Err(format!(
                        "{} exited during start-up ({status}); error log:\n{}",
                        self.name,
                        self.error_log()
                    ));
                }
            }
            if self
                .connect_admin()
                .and_then(|mut c| c.query("SELECT 1"))
                .is_ok()
            {
                return Ok(());
            }
            if start.elapsed() > ADMIN_BUDGET {
                return Err(format!(
                    "{} did not answer within {ADMIN_BUDGET:?}; error log:\n{}",
                    self.name,
                    self.error_log()
                ));
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// An administrative connection as root over the node's Unix socket. Blocking, with 20 s
    /// connect and read timeouts (the harness never sends admin statements to a frozen node).
    ///
    /// A login the server drops half-way (2013 during the handshake; seen rarely on a replica
    /// right after its primary was killed, with the server still running) is retried a few
    /// times; a server that died is reported with its crash log.
    pub fn admin(&self) -> Result<Connection, String> {
        let mut attempt = 0;
        loop {
            match self.connect_admin() {
                Ok(c) => return Ok(c),
                Err(e) if e.errno() == 2013 && attempt < 3 && self.alive_now() => {
                    attempt += 1;
                    std::thread::sleep(Duration::from_millis(50));
                }
                Err(e) => {
                    return Err(format!(
                        "{}: admin connect: {e}{}",
                        self.name,
                        self.death_report()
                    ))
                }
            }
        }
    }

    /// The process exists and is not a zombie (no waiting).
    fn alive_now(&self) -> bool {
        let Some(pid) = self.pid() else {
            return false;
        };
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
        let state = stat.rsplit_once(") ").map_or("", |(_, rest)| rest);
        !state.is_empty() && !state.starts_with('Z') && !self.error_log().contains("got signal")
    }

    fn connect_admin(&self) -> Result<Connection, drfailover_mysql::Error> {
        let mut opts = ConnectOptions::unix(self.socket()).user("root");
        opts.connect_timeout = ADMIN_BUDGET;
        opts.read_timeout = Some(ADMIN_BUDGET);
        opts.write_timeout = Some(ADMIN_BUDGET);
        Connection::connect(&opts)
    }

    /// Whether the server process has died or is crashing (a zombie not yet reaped, or a fatal
    /// signal in its error log; waits up to 1 s to tell), with the end of its error log. For
    /// failure messages.
    fn death_report(&self) -> String {
        let Some(pid) = self.pid() else {
            return String::new();
        };
        let since = Instant::now();
        while self.alive_now() {
            if since.elapsed() > Duration::from_secs(1) {
                let log = self.error_log();
                let lines: Vec<&str> = log.lines().collect();
                let tail = &lines[lines.len().saturating_sub(10)..];
                return format!(
                    "\n{} (pid {pid}) is running; last lines of its error log:\n{}",
                    self.name,
                    tail.join("\n")
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let log = self.error_log();
        let lines: Vec<&str> = log.lines().collect();
        // From the crash report's first line when there is one, else the last 40 lines.
        let from = lines
            .iter()
            .rposition(|l| l.contains("got signal"))
            .unwrap_or(lines.len().saturating_sub(40));
        let tail = &lines[from..(from + 80).min(lines.len())];
        format!(
            "\n{} (pid {pid}) has died; end of its error log:\n{}",
            self.name,
            tail.join("\n")
        )
    }

    /// Run one statement as root and return its result (bounded by 20 s). A lost
    /// connection (2013) is reported with the server's state and the end of its error log.
    pub fn sql(&self, statement: &str) -> Result<QueryResult, String> {
        let mut conn = self.admin()?;
        conn.query(statement).map_err(|e| {
            let report = if e.errno() == 2013 {
                self.death_report()
            } else {
                String::new()
            };
            format!("{}: `{statement}`: {e}{report}", self.name)
        })
    }

    /// [`Node::sql`] for a statement that may safely run twice (`STOP SLAVE`, `SET GLOBAL`):
    /// retried once on a new connection when the connection was lost (2013) while the
    /// server still runs. Seen once in CI: `STOP SLAVE IO_THREAD` on a replica whose primary
    /// had just been killed lost its admin connection.
    pub fn sql_idempotent(&self, statement: &str) -> Result<QueryResult, String> {
        match self.admin()?.query(statement) {
            Err(e) if e.errno() == 2013 && self.alive_now() => self.sql(statement),
            other => other.map_err(|e| format!("{}: `{statement}`: {e}", self.name)),
        }
    }

    /// Run statements in order on one admin connection.
    pub fn sql_batch(&self, statements: &[&str]) -> Result<(), String> {
        let mut conn = self.admin()?;
        for statement in statements {
            conn.query(statement)
                .map_err(|e| format!("{}: `{statement}`: {e}", self.name))?;
        }
        Ok(())
    }

    /// First column of the first row of `statement`, as text.
    pub fn sql_value(&self, statement: &str) -> Result<Option<String>, String> {
        let r = self.sql(statement)?;
        Ok(r.text(0, 0).map(str::to_string))
    }

    fn signal(&self, signal: Signal) -> Result<(), String> {
        let pid = self
            .pid()
            .ok_or_else(|| format!("{} is not running", self.name))?;
        kill(Pid::from_raw(pid as i32), signal).map_err(|e| format!("kill {signal}: {e}"))
    }

    /// `kill -9` the server and reap it. Returns at once.
    pub fn kill9(&mut self) -> Result<(), String> {
        self.signal(Signal::SIGKILL)?;
        if let Some(mut child) = self.child.take() {
            let _ = child.wait();
        }
        self.stopped = false;
        Ok(())
    }

    /// SIGSTOP: the kernel keeps completing TCP handshakes, the server never answers.
    /// Returns once the process is really stopped (signal delivery is asynchronous).
    pub fn freeze(&mut self) -> Result<(), String> {
        self.signal(Signal::SIGSTOP)?;
        self.wait_state(true)?;
        self.stopped = true;
        Ok(())
    }

    /// SIGCONT after [`Node::freeze`]; returns once the process runs again.
    pub fn thaw(&mut self) -> Result<(), String> {
        self.signal(Signal::SIGCONT)?;
        self.wait_state(false)?;
        self.stopped = false;
        Ok(())
    }

    /// Wait (up to 5 s) until every thread of the process is stopped, or none is.
    fn wait_state(&self, stopped: bool) -> Result<(), String> {
        let pid = self
            .pid()
            .ok_or_else(|| format!("{} is not running", self.name))?;
        let started = Instant::now();
        loop {
            let tasks = std::fs::read_dir(format!("/proc/{pid}/task"))
                .map_err(|e| format!("read /proc/{pid}/task: {e}"))?;
            let states: Vec<bool> = tasks
                .filter_map(|t| t.ok())
                .filter_map(|t| std::fs::read_to_string(t.path().join("stat")).ok())
                .map(|stat| {
                    // The state follows the parenthesised command name.
                    let after = stat.rsplit_once(") ").map_or("", |(_, rest)| rest);
                    after.starts_with('T') || after.starts_with('t')
                })
                .collect();
            if !states.is_empty() && states.iter().all(|s| *s == stopped) {
                return Ok(());
            }
            if started.elapsed() > Duration::from_secs(5) {
                return Err(format!(
                    "{}: process did not become {}",
                    self.name,
                    if stopped { "stopped" } else { "running" }
                ));
            }
            std::thread::sleep(Duration::from_millis(1));
        }
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = kill(Pid::from_raw(child.id() as i32), Signal::SIGKILL);
            let _ = child.wait();
        }
    }
}
