//! HAProxy from Debian's packages in front of the two nodes, as users deploy it for MySQL.

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// `haproxy -db` with `mode tcp`, `option mysql-check`, the primary as server and the standby
/// as `backup`, health checks tuned like drfailover's defaults (`inter 200`, `fall 3`,
/// `rise 2`), and `on-marked-down shutdown-sessions` so clients of a dead server are cut.
pub struct Haproxy {
    child: Child,
    port: u16,
    _dir: tempfile::TempDir,
}

fn binary() -> Result<PathBuf, String> {
    ["/usr/sbin/haproxy", "/usr/bin/haproxy"]
        .into_iter()
        .map(PathBuf::from)
        .find(|p| p.exists())
        .ok_or_else(|| "haproxy not found (apt-get install haproxy)".to_string())
}

impl Haproxy {
    /// Start HAProxy routing to `primary`, falling back to `backup`.
    pub fn start(primary: SocketAddr, backup: SocketAddr) -> Result<Haproxy, String> {
        Haproxy::start_with(|check| {
            (
                String::new(),
                format!("  server primary {primary} {check}\n  server standby {backup} {check} backup\n"),
            )
        })
    }

    /// Start HAProxy routing to `name:port`, re-resolved through the DNS server at
    /// `nameserver` every second (the record's TTL; HAProxy does not read TTLs).
    pub fn start_named(name: &str, port: u16, nameserver: &str) -> Result<Haproxy, String> {
        Haproxy::start_with(|check| {
            (
                format!(
                    "resolvers dns\n  nameserver ns1 {nameserver}\n  timeout resolve 1s\n  \
                     timeout retry 100ms\n  hold valid 1s\n  hold obsolete 0s\n\n"
                ),
                format!("  server db {name}:{port} {check} resolvers dns init-addr none\n"),
            )
        })
    }

    /// `servers(check)` gives (sections before the proxy, its server lines).
    fn start_with(servers: impl FnOnce(&str) -> (String, String)) -> Result<Haproxy, String> {
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map_err(|e| e.to_string())?
            .port();
        let dir = tempfile::Builder::new()
            .prefix("drfailover-haproxy-")
            .tempdir()
            .map_err(|e| e.to_string())?;
        let cfg = dir.path().join("haproxy.cfg");
        let check = "check inter 200 fastinter 100 downinter 200 fall 3 rise 2 on-marked-down shutdown-sessions";
        let (sections, server_lines) = servers(check);
        std::fs::write(
            &cfg,
            format!(
                "global\n  maxconn 2000\n\n{sections}defaults\n  mode tcp\n  retries 2\n  option redispatch\n  \
                 timeout connect 500ms\n  timeout check 200ms\n  timeout client 60s\n  timeout server 60s\n\n\
                 listen mysql\n  bind 127.0.0.1:{port}\n  option mysql-check user haproxy_check\n{server_lines}"
            ),
        )
        .map_err(|e| e.to_string())?;
        let child = Command::new(binary()?)
            .arg("-db")
            .arg("-f")
            .arg(&cfg)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| format!("spawn haproxy: {e}"))?;
        let started = Instant::now();
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            if started.elapsed() > Duration::from_secs(10) {
                return Err("haproxy did not listen within 10 s".into());
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        // Let the first health checks mark the servers up.
        std::thread::sleep(Duration::from_millis(700));
        Ok(Haproxy {
            child,
            port,
            _dir: dir,
        })
    }

    /// The port clients connect to.
    pub fn port(&self) -> u16 {
        self.port
    }
}

impl Drop for Haproxy {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
