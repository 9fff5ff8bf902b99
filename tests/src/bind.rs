//! A real authoritative DNS server on loopback (Debian's BIND 9 `named`) that accepts RFC 2136
//! updates signed with a TSIG key made by `tsig-keygen`.
//!
//! [`BindServer::start`] writes, in a temporary directory, a zone file (SOA, NS and the given
//! records), a key file (`tsig-keygen -a hmac-sha256`), and a `named.conf` whose
//! `update-policy` grants that key the A, AAAA and CNAME records of exactly the given names;
//! then runs `named -f` (foreground, `PR_SET_PDEATHSIG=SIGKILL`) on 127.0.0.1 at a free port
//! (UDP and TCP) and waits until it answers. [`BindServer::query`] asks it through a real
//! resolver (hickory-resolver, no cache). Dropping the server kills it and removes the
//! directory.

use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::time::Duration;

use crate::addr;
use crate::spawner::{self, Started};

/// A running `named` serving one zone. Killed and its directory removed when dropped.
pub struct BindServer {
    child: Option<Child>,
    port: u16,
    zone: String,
    key_name: String,
    key_secret: String,
    key_file: PathBuf,
    dir: tempfile::TempDir,
}

fn find(name: &str, package: &str) -> Result<PathBuf, String> {
    ["/usr/sbin", "/usr/bin", "/sbin", "/usr/local/sbin"]
        .into_iter()
        .map(|d| Path::new(d).join(name))
        .find(|p| p.exists())
        .ok_or_else(|| {
            format!(
                "`{name}` not found: the DNS update tests need BIND 9 from Debian's `{package}` \
                 (run `apt-get install bind9 bind9-utils` as root, or scripts/deps, which \
                 installs it)"
            )
        })
}

/// Make a TSIG key with `tsig-keygen -a hmac-sha256 NAME`; returns (file text, secret).
pub fn tsig_keygen(name: &str) -> Result<(String, String), String> {
    let keygen = find("tsig-keygen", "bind9-utils")?;
    let out = Command::new(keygen)
        .args(["-a", "hmac-sha256", name])
        .output()
        .map_err(|e| format!("run tsig-keygen: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "tsig-keygen failed: {}",
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let secret = text
        .split("secret \"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .ok_or("tsig-keygen printed no secret")?
        .to_string();
    Ok((text, secret))
}

fn record_type(ip: &IpAddr) -> &'static str {
    if ip.is_ipv4() {
        "A"
    } else {
        "AAAA"
    }
}

impl BindServer {
    /// Serve `zone` (e.g. `example.test`) with `records` (relative or absolute names → address)
    /// at TTL `ttl_s`, on 127.0.0.1 at a free port. The key `drfailover-test` may update the
    /// A/AAAA/CNAME records of those names. Blocks until `named` answers (at most 20 s).
    pub fn start(zone: &str, records: &[(&str, IpAddr)], ttl_s: u32) -> Result<BindServer, String> {
        let named = find("named", "bind9")?;
        let zone = zone.trim_end_matches('.').to_ascii_lowercase();
        let dir = tempfile::Builder::new()
            .prefix("drfailover-bind-")
            .tempdir()
            .map_err(|e| e.to_string())?;
        let key_name = "drfailover-test".to_string();
        let (key_text, key_secret) = tsig_keygen(&key_name)?;
        let key_file = dir.path().join("tsig.key");
        std::fs::write(&key_file, &key_text).map_err(|e| e.to_string())?;

        let fqdn = |name: &str| {
            if name.ends_with('.') {
                name.to_string()
            } else if name == "@" {
                format!("{zone}.")
            } else {
                format!("{name}.{zone}.")
            }
        };
        let mut zone_text = format!(
            "$TTL {ttl_s}\n@ IN SOA ns.{zone}. hostmaster.{zone}. 1 3600 600 86400 {ttl_s}\n\
             @ IN NS ns.{zone}.\nns IN A 127.0.0.1\n"
        );
        let mut grants = String::new();
        for (name, ip) in records {
            zone_text.push_str(&format!("{} IN {} {ip}\n", fqdn(name), record_type(ip)));
            grants.push_str(&format!(
                "    grant {key_name} name {} A AAAA CNAME;\n",
                fqdn(name)
            ));
        }
        if grants.is_empty() {
            grants = format!("    grant {key_name} zonesub A AAAA CNAME;\n");
        }
        std::fs::write(dir.path().join("zone.db"), zone_text).map_err(|e| e.to_string())?;

        let mut server = BindServer {
            child: None,
            port: 0,
            zone: zone.clone(),
            key_name,
            key_secret,
            key_file,
            dir,
        };
        let d = server.dir.path().display().to_string();
        let mut last_error = String::new();
        // named binds UDP and TCP: a port free for both now may be taken by the time it binds
        // (then it exits), so pick again a few times.
        for _ in 0..5 {
            server.port = addr::free_udp_and_tcp_port()?;
            let conf = format!(
                "include \"{d}/tsig.key\";\n\
                 options {{\n  directory \"{d}\";\n  listen-on port {port} {{ 127.0.0.1; }};\n  \
                 listen-on-v6 {{ none; }};\n  pid-file none;\n  session-keyfile none;\n  \
                 recursion no;\n  dnssec-validation no;\n  notify no;\n  allow-query {{ any; }};\n}};\n\
                 controls {{ }};\n\
                 logging {{ channel file {{ file \"{d}/named.log\"; severity info; print-time yes; }};\n  \
                 category default {{ file; }};\n  category update {{ file; }};\n}};\n\
                 zone \"{zone}\" {{\n  type primary;\n  file \"{d}/zone.db\";\n  update-policy {{\n{grants}  }};\n}};\n",
                port = server.port,
            );
            std::fs::write(server.dir.path().join("named.conf"), conf)
                .map_err(|e| e.to_string())?;
            let mut cmd = spawner::command_dying_with_parent(&named, None);
            cmd.args(["-f", "-4", "-n", "1", "-c"])
                .arg(server.dir.path().join("named.conf"));
            let mut child = spawner::spawn(cmd).map_err(|e| format!("spawn named: {e}"))?;
            match spawner::await_ready(&mut child, Duration::from_secs(20), || server.answers()) {
                Started::Ready => {
                    server.child = Some(child);
                    return Ok(server);
                }
                Started::TimedOut => {
                    return Err(format!(
                        "named did not answer within 20 s; its log:\n{}",
                        server.log()
                    ))
                }
                Started::Exited(status) => {
                    last_error = format!(
                        "named exited at start ({status}) on port {}; its log:\n{}",
                        server.port,
                        server.log()
                    )
                }
            }
        }
        Err(last_error)
    }

    /// The keys of an `[[announce]]` table (TOML, without the header) for an RFC 2136
    /// announcer that updates `host` in this zone on this server, signed with this server's
    /// key, TTL 1 s, the other keys at their defaults: for an orchestrator configuration, or
    /// parsed as a `drfailover_dns::AnnouncerConfig`.
    pub fn rfc2136_announcer(&self, host: &str) -> String {
        format!(
            "kind = \"rfc2136\"\nserver = \"{}\"\nzone = \"{}\"\nname = \"{host}.{}\"\nttl = 1\n\
             key_file = \"{}\"\n",
            self.address(),
            self.zone,
            self.zone,
            self.key_file.display()
        )
    }

    /// `127.0.0.1:<port>`: where the server listens (UDP and TCP).
    pub fn address(&self) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], self.port))
    }

    /// The zone served, without a trailing dot (`example.test`).
    pub fn zone(&self) -> &str {
        &self.zone
    }

    /// The key file (BIND syntax, as `tsig-keygen` wrote it).
    pub fn key_file(&self) -> &Path {
        &self.key_file
    }

    /// The key's name (`drfailover-test`).
    pub fn key_name(&self) -> &str {
        &self.key_name
    }

    /// The key's secret (base64), e.g. to check that it is never printed.
    pub fn key_secret(&self) -> &str {
        &self.key_secret
    }

    /// The server's temporary directory (zone file, journal, log).
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// `named`'s log so far (startup, updates, refusals).
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("named.log")).unwrap_or_default()
    }

    /// Kill the server now (to test a server that is down); the directory stays until drop.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Ask the server for `name`'s `rtype` records (`"A"`, `"AAAA"`, `"CNAME"`) through
    /// hickory-resolver (no cache, 2 s timeout); returns their values as text, sorted (an
    /// empty list when there are none).
    pub fn query(&self, name: &str, rtype: &str) -> Result<Vec<String>, String> {
        use hickory_resolver::config::{NameServerConfig, ResolverConfig};
        use hickory_resolver::net::runtime::TokioRuntimeProvider;
        use hickory_resolver::proto::rr::RecordType;
        use hickory_resolver::Resolver;

        let rtype: RecordType = rtype.parse().map_err(|e| format!("record type: {e}"))?;
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| e.to_string())?;
        let _entered = runtime.enter();
        let mut server = NameServerConfig::udp_and_tcp(IpAddr::from([127, 0, 0, 1]));
        for connection in &mut server.connections {
            connection.port = self.port;
        }
        let mut builder = Resolver::builder_with_config(
            ResolverConfig::from_name_servers(vec![server]),
            TokioRuntimeProvider::default(),
        );
        let options = builder.options_mut();
        options.cache_size = 0;
        options.timeout = Duration::from_secs(2);
        options.attempts = 1;
        options.recursion_desired = false;
        let resolver = builder.build().map_err(|e| e.to_string())?;
        let name = if name.ends_with('.') {
            name.to_string()
        } else {
            format!("{name}.")
        };
        let lookup = runtime.block_on(async {
            tokio::time::timeout(
                Duration::from_secs(5),
                resolver.lookup(name.as_str(), rtype),
            )
            .await
        });
        let lookup = match lookup {
            Err(_) => return Err(format!("query {name} {rtype}: timed out")),
            Ok(Err(e)) if e.is_no_records_found() => return Ok(Vec::new()),
            Ok(Err(e)) => return Err(format!("query {name} {rtype}: {e}")),
            Ok(Ok(lookup)) => lookup,
        };
        let mut values: Vec<String> = lookup
            .answers()
            .iter()
            .filter(|r| r.record_type() == rtype)
            .map(|r| r.data.to_string())
            .collect();
        values.sort();
        Ok(values)
    }

    fn answers(&self) -> bool {
        // Up only once it answers for the zone's SOA with NOERROR, not merely listens.
        addr::dns_rcode(self.port, &self.zone, 6) == Some(0)
    }
}

impl Drop for BindServer {
    fn drop(&mut self) {
        self.stop();
    }
}
