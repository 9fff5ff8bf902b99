//! `drfailover-lab`: a local MariaDB primary + replicas that stay up, to try things on.
//!
//!     drfailover-lab up [--replicas N] [--orchestrator] [--dir DIR]
//!     drfailover-lab status [--dir DIR]
//!     drfailover-lab down [--dir DIR]
//!
//! `up` starts the servers (GTID, semi-sync `AFTER_SYNC`; as root inside a network namespace
//! of the lab's own, so a node can be blackholed without touching the host's firewall;
//! otherwise on loopback), detaches them and returns, printing the DSN, the accounts, and the
//! exact commands to kill, freeze, blackhole, promote and heal a node. With `--orchestrator`
//! it also writes an orchestrator configuration for them (`scripts/lab` starts the daemon).
//! Everything lives in the state directory (`--dir`, else `$DRFAILOVER_LAB_DIR`, else
//! `/tmp/drfailover-lab`); `down` kills what `up` started and removes it all.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use drfailover_mysql::{ConnectOptions, Connection};
use drfailover_testkit::{
    Topology, ADMIN_PASSWORD, ADMIN_USER, APP_DATABASE, APP_PASSWORD, APP_USER, REPL_PASSWORD,
    REPL_USER,
};

const USAGE: &str = "\
usage: drfailover-lab up [--replicas N] [--orchestrator] [--dir DIR]
       drfailover-lab status [--dir DIR]
       drfailover-lab down [--dir DIR]

  up               start a primary + N replicas (default 1) that stay up; about 3 s
  --orchestrator   also write an orchestrator configuration for them
  status           each node's process, role and replication
  down             kill the servers (and the orchestrator) and remove everything
  --dir DIR        the state directory (default $DRFAILOVER_LAB_DIR or /tmp/drfailover-lab)";

/// The state file's name inside the state directory.
const STATE_FILE: &str = "lab.state";

/// One node of a running lab, as recorded in the state file.
struct NodeState {
    name: String,
    pid: u32,
    addr: String,
    socket: PathBuf,
}

/// What `up` leaves behind for `status` and `down`.
struct LabState {
    data_dir: PathBuf,
    netns: Option<String>,
    nodes: Vec<NodeState>,
}

impl LabState {
    fn write(&self, path: &Path) -> Result<(), String> {
        // Tab-separated: paths may hold spaces.
        let mut s = format!("data_dir\t{}\n", self.data_dir.display());
        if let Some(ns) = &self.netns {
            s.push_str(&format!("netns\t{ns}\n"));
        }
        for n in &self.nodes {
            s.push_str(&format!(
                "node\t{}\t{}\t{}\t{}\n",
                n.name,
                n.pid,
                n.addr,
                n.socket.display()
            ));
        }
        std::fs::write(path, s).map_err(|e| format!("write {}: {e}", path.display()))
    }

    fn read(path: &Path) -> Result<LabState, String> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("no lab in {} ({e})", path.display()))?;
        let mut state = LabState {
            data_dir: PathBuf::new(),
            netns: None,
            nodes: Vec::new(),
        };
        for line in text.lines() {
            let fields: Vec<&str> = line.split('\t').collect();
            match fields.as_slice() {
                ["data_dir", dir] => state.data_dir = PathBuf::from(dir),
                ["netns", ns] => state.netns = Some(ns.to_string()),
                ["node", name, pid, addr, socket] => state.nodes.push(NodeState {
                    name: name.to_string(),
                    pid: pid
                        .parse()
                        .map_err(|e| format!("{}: {e}", path.display()))?,
                    addr: addr.to_string(),
                    socket: PathBuf::from(socket),
                }),
                _ => return Err(format!("{}: unexpected line {line:?}", path.display())),
            }
        }
        Ok(state)
    }
}

/// Whether `pid` is a live process whose command line contains `needle` (so a recycled pid
/// is never signalled).
fn process_with(pid: u32, needle: &str) -> bool {
    std::fs::read(format!("/proc/{pid}/cmdline"))
        .map(|c| String::from_utf8_lossy(&c).contains(needle))
        .unwrap_or(false)
}

/// The process state letter (`S`, `T` for stopped, …) of `pid`.
fn process_state(pid: u32) -> Option<char> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    stat.rsplit_once(") ")?.1.chars().next()
}

fn root_connection(socket: &Path) -> Result<Connection, String> {
    let mut opts = ConnectOptions::unix(socket).user("root");
    opts.connect_timeout = Duration::from_secs(2);
    opts.read_timeout = Some(Duration::from_secs(2));
    Connection::connect(&opts).map_err(|e| e.to_string())
}

fn state_dir(dir: Option<PathBuf>) -> PathBuf {
    dir.or_else(|| std::env::var_os("DRFAILOVER_LAB_DIR").map(PathBuf::from))
        .unwrap_or_else(|| PathBuf::from("/tmp/drfailover-lab"))
}

fn up(dir: &Path, replicas: usize, orchestrator: bool) -> Result<(), String> {
    if dir.to_string_lossy().contains(char::is_whitespace) {
        // mariadb-install-db (a shell script) cannot install into such a path.
        return Err(format!(
            "the state directory {dir:?} contains white space, which mariadb-install-db cannot handle"
        ));
    }
    if dir.join(STATE_FILE).exists() {
        return Err(format!(
            "a lab is already up in {} (scripts/lab status; scripts/lab down first)",
            dir.display()
        ));
    }
    std::fs::create_dir_all(dir).map_err(|e| format!("create {}: {e}", dir.display()))?;
    // The topology's directory goes under the state directory (tempfile follows TMPDIR).
    std::env::set_var("TMPDIR", dir);
    drfailover_testkit::detach_servers();
    let root = nix::unistd::geteuid().is_root();
    let topo = if root {
        Topology::primary_replicas_in_lab(replicas)?
    } else {
        Topology::primary_replicas(replicas)?
    };
    let state = LabState {
        data_dir: topo.dir().to_path_buf(),
        netns: topo.lab().map(|l| l.name().to_string()),
        nodes: topo
            .nodes()
            .iter()
            .map(|n| NodeState {
                name: n.name().to_string(),
                pid: n.pid().unwrap_or(0),
                addr: n.addr().to_string(),
                socket: n.socket(),
            })
            .collect(),
    };
    state.write(&dir.join(STATE_FILE))?;
    let orchestrator_file = dir.join("orchestrator.toml");
    if orchestrator {
        // The control token `drfailover ack` and `switchover` present to the daemon.
        let token: String =
            rand::Rng::sample_iter(rand::thread_rng(), &rand::distributions::Alphanumeric)
                .take(32)
                .map(char::from)
                .collect();
        let token_file = dir.join("control.token");
        std::fs::write(&token_file, format!("{token}\n"))
            .map_err(|e| format!("write {}: {e}", token_file.display()))?;
        let config = topo.orchestrator_config(
            &format!("control_token_file = \"{}\"", token_file.display()),
            "",
            &[],
        );
        std::fs::write(&orchestrator_file, config)
            .map_err(|e| format!("write {}: {e}", orchestrator_file.display()))?;
    }
    let bin = dir.join("bin");
    std::fs::create_dir_all(&bin).map_err(|e| format!("create {}: {e}", bin.display()))?;
    for n in &state.nodes[1..] {
        write_promote_script(&bin, n)?;
    }
    print_guide(
        dir,
        &topo,
        &state,
        orchestrator.then_some(&orchestrator_file),
    );
    // The servers, their directory and the namespace stay: `down` removes them.
    std::mem::forget(topo);
    Ok(())
}

/// `bin/promote-NODE`: stop receiving, apply what was received, detach, become writable.
fn write_promote_script(bin: &Path, n: &NodeState) -> Result<(), String> {
    let sql = format!("mariadb --no-defaults -S {} -u root", n.socket.display());
    let body = format!(
        "#!/bin/sh\n\
         # Promote {name}: stop receiving, apply everything received (no acknowledged write\n\
         # lost), forget replication, become writable.\n\
         set -eu\n\
         {sql} -e 'STOP SLAVE IO_THREAD'\n\
         pos=$({sql} -e 'SHOW SLAVE STATUS\\G' | sed -n 's/^ *Gtid_IO_Pos: //p')\n\
         {sql} -e \"SELECT MASTER_GTID_WAIT('$pos', 30); STOP SLAVE; RESET SLAVE ALL; \
         SET GLOBAL rpl_semi_sync_master_enabled=0; SET GLOBAL read_only=0\" >/dev/null\n\
         echo '{name} is the writer now'\n",
        name = n.name
    );
    drfailover_testkit::write_script(&bin.join(format!("promote-{}", n.name)), body)
        .map_err(|e| format!("write promote script: {e}"))
}

fn print_guide(dir: &Path, topo: &Topology, state: &LabState, orchestrator: Option<&PathBuf>) {
    let dsn = topo.dsn("");
    println!(
        "lab up: {} node(s), state in {}",
        state.nodes.len(),
        dir.display()
    );
    println!();
    for (i, n) in state.nodes.iter().enumerate() {
        let role = if i == 0 {
            "primary".to_string()
        } else {
            format!("replica of {}", state.nodes[0].name)
        };
        println!("  {}  {}  pid {}  {role}", n.name, n.addr, n.pid);
    }
    println!();
    println!("DSN (C, Rust, the CLI):");
    println!("  {dsn}");
    println!("  export DRFAILOVER_DSN='{dsn}'");
    println!();
    println!("accounts (every node):");
    println!("  {APP_USER} / {APP_PASSWORD}   the application: tables of database `{APP_DATABASE}` only (read_only binds it)");
    println!("  {ADMIN_USER} / {ADMIN_PASSWORD}   administrator (ALL PRIVILEGES), as the orchestrator uses it");
    println!("  {REPL_USER} / {REPL_PASSWORD}   replication");
    println!("  root, no password, over each node's socket:");
    for n in &state.nodes {
        println!(
            "    mariadb --no-defaults -S {} -u root      # {}",
            n.socket.display(),
            n.name
        );
    }
    let p = &state.nodes[0];
    let (ip, port) = p.addr.rsplit_once(':').unwrap_or((&p.addr, "3306"));
    println!();
    println!("try it:");
    println!(
        "  mariadb --no-defaults -h {ip} -P {port} -u {APP_USER} -p{APP_PASSWORD} {APP_DATABASE}"
    );
    println!("  cargo run -q -p drfailover-cli -- watch \"$DRFAILOVER_DSN\"     # live view, in another terminal");
    println!();
    println!(
        "faults on the primary {} (any node works the same way):",
        p.name
    );
    println!("  kill -9 {}                      # crash", p.pid);
    println!(
        "  kill -STOP {} ; kill -CONT {}    # freeze, thaw",
        p.pid, p.pid
    );
    match &state.netns {
        Some(ns) => {
            println!("  ip netns exec {ns} iptables -I INPUT -d {ip} -p tcp --dport {port} -j DROP   # blackhole");
            println!("  ip netns exec {ns} iptables -D INPUT -d {ip} -p tcp --dport {port} -j DROP   # heal");
        }
        None => {
            println!("  (blackholes need the lab's network namespace: run scripts/lab up as root)")
        }
    }
    if state.nodes.len() > 1 {
        println!("promote a replica after the primary is gone (what an operator or the orchestrator does;");
        println!("pick the one with the highest gtid in `scripts/lab status`, or a write it alone received is lost):");
        for n in &state.nodes[1..] {
            println!(
                "  {}",
                dir.join("bin")
                    .join(format!("promote-{}", n.name))
                    .display()
            );
        }
    }
    if let Some(file) = orchestrator {
        println!();
        println!("orchestrator configuration written to {}:", file.display());
        for line in std::fs::read_to_string(file).unwrap_or_default().lines() {
            println!("  | {line}");
        }
        println!("(scripts/lab runs `drfailover orchestrate` on it, listening on 127.0.0.1:9090; log: {}):",
            dir.join("orchestrator.log").display());
        println!("  curl -s 127.0.0.1:9090/status");
        println!("  drfailover topology {}", file.display());
        let token = dir.join("control.token");
        println!(
            "  drfailover ack --daemon 127.0.0.1:9090 --token-file {}     # after a failover: allow the next one at once",
            token.display()
        );
        println!(
            "  drfailover switchover --to {} --daemon 127.0.0.1:9090 --token-file {}",
            state.nodes.get(1).map_or("node2", |n| n.name.as_str()),
            token.display()
        );
    }
    println!();
    println!("see it:  scripts/lab status        start over:  scripts/lab down && scripts/lab up");
}

fn status(dir: &Path) -> Result<(), String> {
    let state = LabState::read(&dir.join(STATE_FILE))?;
    println!("lab in {}", dir.display());
    for n in &state.nodes {
        let data = state.data_dir.join(&n.name);
        let process = if !process_with(n.pid, &data.to_string_lossy()) {
            "not running".to_string()
        } else if process_state(n.pid) == Some('T') {
            "frozen (SIGSTOP)".to_string()
        } else {
            let role = root_connection(&n.socket).and_then(|mut c| {
                let r = c
                    .query("SELECT @@read_only, @@gtid_binlog_pos")
                    .map_err(|e| e.to_string())?;
                let writable = r.text(0, 0) == Some("0");
                let pos = r.text(0, 1).unwrap_or("").to_string();
                let replicating = c.query("SHOW SLAVE STATUS").map_err(|e| e.to_string())?;
                let source = replicating
                    .column("Master_Host")
                    .and_then(|col| replicating.text(0, col))
                    .map(|h| format!(", replicating from {h}"))
                    .unwrap_or_default();
                Ok(format!(
                    "{}{source}, gtid {}",
                    if writable { "writable" } else { "read-only" },
                    if pos.is_empty() { "-" } else { &pos }
                ))
            });
            match role {
                Ok(role) => format!("running, {role}"),
                // A SIGSTOP sent just before may take effect only while the query waits.
                Err(_) if process_state(n.pid) == Some('T') => "frozen (SIGSTOP)".to_string(),
                Err(e) => format!("running, no answer ({e})"),
            }
        };
        println!("  {}  {}  pid {}  {process}", n.name, n.addr, n.pid);
    }
    if let Some(ns) = &state.netns {
        println!("  network namespace {ns}");
    }
    Ok(())
}

fn down(dir: &Path) -> Result<(), String> {
    let state_file = dir.join(STATE_FILE);
    let state = match LabState::read(&state_file) {
        Ok(s) => s,
        Err(e) if !dir.exists() || state_file.exists() => return Err(e),
        Err(e) => {
            // A half-made lab (interrupted `up`): its directory is all there is to remove.
            eprintln!("{e}; removing {}", dir.display());
            return std::fs::remove_dir_all(dir)
                .map_err(|e| format!("remove {}: {e}", dir.display()));
        }
    };
    let mut pids = Vec::new();
    for n in &state.nodes {
        if process_with(n.pid, &state.data_dir.join(&n.name).to_string_lossy()) {
            pids.push(n.pid);
        }
    }
    let orchestrator_pid = dir.join("orchestrator.pid");
    if let Some(pid) = std::fs::read_to_string(&orchestrator_pid)
        .ok()
        .and_then(|s| s.trim().parse::<u32>().ok())
    {
        if process_with(pid, "orchestrate") {
            pids.push(pid);
        }
    }
    for &pid in &pids {
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(pid as i32),
            nix::sys::signal::Signal::SIGKILL,
        );
    }
    let started = Instant::now();
    while pids
        .iter()
        .any(|&p| process_state(p).is_some_and(|s| s != 'Z'))
    {
        if started.elapsed() > Duration::from_secs(20) {
            return Err(format!("processes {pids:?} did not exit within 20 s"));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    if let Some(ns) = &state.netns {
        // Deleting the namespace deletes the veth pair with it.
        let out = std::process::Command::new("ip")
            .args(["netns", "del", ns])
            .output()
            .map_err(|e| format!("ip netns del {ns}: {e}"))?;
        if !out.status.success() {
            return Err(format!(
                "ip netns del {ns}: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            ));
        }
    }
    std::fs::remove_dir_all(dir).map_err(|e| format!("remove {}: {e}", dir.display()))?;
    println!(
        "lab down: {} process(es) killed{}, {} removed",
        pids.len(),
        state
            .netns
            .as_ref()
            .map(|ns| format!(", namespace {ns} deleted"))
            .unwrap_or_default(),
        dir.display()
    );
    Ok(())
}

fn main() -> ExitCode {
    let mut args = std::env::args().skip(1);
    let verb = args.next().unwrap_or_default();
    let (mut replicas, mut orchestrator, mut dir) = (1usize, false, None);
    let mut rest = args;
    while let Some(a) = rest.next() {
        match a.as_str() {
            "--replicas" => match rest.next().and_then(|v| v.parse().ok()) {
                Some(n) if (1..=8).contains(&n) => replicas = n,
                _ => {
                    eprintln!("--replicas needs a number from 1 to 8");
                    return ExitCode::from(2);
                }
            },
            "--orchestrator" => orchestrator = true,
            "--dir" => match rest.next() {
                Some(d) => dir = Some(PathBuf::from(d)),
                None => {
                    eprintln!("--dir needs a directory");
                    return ExitCode::from(2);
                }
            },
            "-h" | "--help" => {
                println!("{USAGE}");
                return ExitCode::SUCCESS;
            }
            other => {
                eprintln!("unknown option {other}\n{USAGE}");
                return ExitCode::from(2);
            }
        }
    }
    let dir = state_dir(dir);
    let result = match verb.as_str() {
        "up" => up(&dir, replicas, orchestrator),
        "status" => status(&dir),
        "down" => down(&dir),
        "-h" | "--help" => {
            println!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        _ => {
            eprintln!("{USAGE}");
            return ExitCode::from(2);
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("drfailover-lab: {e}");
            ExitCode::from(1)
        }
    }
}
