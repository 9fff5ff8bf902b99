//! A real DNS server on loopback (Debian's `dnsmasq`) whose A records the test can flip.

use std::net::Ipv4Addr;
use std::path::PathBuf;
use std::process::Child;
use std::time::Duration;

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

use crate::addr;
use crate::spawner::{self, Started};

/// `dnsmasq` answering only for the names the test sets, from a hosts file it re-reads on
/// SIGHUP, with a fixed TTL. Killed when dropped.
pub struct DnsServer {
    child: Option<Child>,
    hosts: PathBuf,
    port: u16,
    _dir: tempfile::TempDir,
}

fn find_dnsmasq() -> Result<PathBuf, String> {
    ["/usr/sbin/dnsmasq", "/usr/bin/dnsmasq", "/sbin/dnsmasq"]
        .into_iter()
        .map(PathBuf::from)
        .find(|p| p.exists())
        .ok_or_else(|| {
            "dnsmasq not found: DNS tests need Debian's `dnsmasq-base` (run `apt-get install \
             dnsmasq-base` as root, or scripts/test, which installs it)"
                .to_string()
        })
}

impl DnsServer {
    /// Serve `records` (name → IPv4) on 127.0.0.1 at a free UDP port with TTL `ttl_s`.
    pub fn start(records: &[(&str, Ipv4Addr)], ttl_s: u32) -> Result<DnsServer, String> {
        let binary = find_dnsmasq()?;
        let dir = tempfile::Builder::new()
            .prefix("drfailover-dns-")
            .tempdir()
            .map_err(|e| e.to_string())?;
        let hosts = dir.path().join("hosts");
        let mut server = DnsServer {
            child: None,
            hosts,
            port: 0,
            _dir: dir,
        };
        server.write(records)?;
        // dnsmasq listens on UDP *and* TCP: a port free for one may be taken for the other
        // by the time it binds (it then exits at once), so pick again a few times.
        let mut last_error = String::new();
        for _ in 0..5 {
            server.port = addr::free_udp_and_tcp_port()?;
            let mut cmd = spawner::command_dying_with_parent(&binary, None);
            cmd.args([
                "--keep-in-foreground",
                "--conf-file=/dev/null",
                "--no-resolv",
                "--no-hosts",
                "--listen-address=127.0.0.1",
                "--bind-interfaces",
                "--user=root",
                "--pid-file=",
            ])
            .arg(format!("--port={}", server.port))
            .arg(format!("--addn-hosts={}", server.hosts.display()))
            // Authoritative for the test domain: a name it does not hold is NXDOMAIN (as
            // from a real zone), not REFUSED.
            .arg("--local=/drfailover.test/")
            .arg(format!("--local-ttl={ttl_s}"));
            let mut child = spawner::spawn(cmd).map_err(|e| format!("spawn dnsmasq: {e}"))?;
            // Ready when it answers on its port (any reply will do).
            match spawner::await_ready(&mut child, Duration::from_secs(10), || server.answers()) {
                Started::Ready => {
                    server.child = Some(child);
                    return Ok(server);
                }
                Started::TimedOut => return Err("dnsmasq did not answer within 10 s".into()),
                Started::Exited(status) => {
                    last_error =
                        format!("dnsmasq exited at start ({status}) on port {}", server.port)
                }
            }
        }
        Err(last_error)
    }

    /// `127.0.0.1:<port>`, for a `nameserver=` option.
    pub fn address(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    fn write(&self, records: &[(&str, Ipv4Addr)]) -> Result<(), String> {
        let text: String = records
            .iter()
            .map(|(name, ip)| format!("{ip} {name}\n"))
            .collect();
        std::fs::write(&self.hosts, text).map_err(|e| e.to_string())
    }

    /// Replace the records; dnsmasq re-reads them on SIGHUP (and clears its cache).
    pub fn set(&self, records: &[(&str, Ipv4Addr)]) -> Result<(), String> {
        self.write(records)?;
        let pid = self
            .child
            .as_ref()
            .map(Child::id)
            .ok_or("dnsmasq is not running")?;
        kill(Pid::from_raw(pid as i32), Signal::SIGHUP).map_err(|e| e.to_string())?;
        std::thread::sleep(Duration::from_millis(50));
        Ok(())
    }

    fn answers(&self) -> bool {
        // A query for "." type A; any response means the server is up.
        addr::dns_rcode(self.port, ".", 1).is_some()
    }
}

impl Drop for DnsServer {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}
