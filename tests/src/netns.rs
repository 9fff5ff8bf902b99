//! A network namespace of the test's own ("lab"), reached from the host through one veth
//! pair on a link-local /24 (169.254.N.0/24). Servers run inside it; blackholes are
//! `iptables DROP` rules inside it. The host's own firewall and routes are never touched
//! beyond the veth this lab creates; everything is deleted when the lab drops.

use std::net::Ipv4Addr;
use std::process::Command;

use rand::Rng;

/// A network namespace with a veth to the host. Requires root.
#[derive(Debug)]
pub struct Lab {
    name: String,
    veth_host: String,
    veth_ns: String,
    subnet: u8,
}

fn run(args: &[&str]) -> Result<String, String> {
    let out = Command::new(args[0])
        .args(&args[1..])
        .output()
        .map_err(|e| {
            format!(
                "run {}: {e} (install iproute2 and iptables)",
                args.join(" ")
            )
        })?;
    if !out.status.success() {
        return Err(format!(
            "`{}` failed: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

impl Lab {
    /// Create the namespace, the veth pair and addresses: the host side is 169.254.N.1, the
    /// namespace side carries 169.254.N.2 … 169.254.N.(1+hosts).
    pub fn create(hosts: u8) -> Result<Lab, String> {
        if !nix::unistd::geteuid().is_root() {
            return Err(
                "network-namespace tests need root (ip netns, iptables); run them as root".into(),
            );
        }
        let used = run(&["ip", "-o", "-4", "addr", "show"])?;
        let mut rng = rand::thread_rng();
        let subnet = loop {
            let n: u8 = rng.gen_range(1..=254);
            if !used.contains(&format!("169.254.{n}.")) {
                break n;
            }
        };
        let tag: u32 = rng.gen_range(0..0xffff);
        let name = format!("drfailover-{}-{tag:04x}", std::process::id());
        let veth_host = format!("drfh{tag:04x}{subnet:02x}");
        let veth_ns = format!("drfn{tag:04x}{subnet:02x}");
        let lab = Lab {
            name: name.clone(),
            veth_host: veth_host.clone(),
            veth_ns: veth_ns.clone(),
            subnet,
        };
        // From here on, Drop cleans up whatever was created.
        run(&["ip", "netns", "add", &name])?;
        run(&[
            "ip", "link", "add", &veth_host, "type", "veth", "peer", "name", &veth_ns,
        ])?;
        run(&["ip", "link", "set", &veth_ns, "netns", &name])?;
        run(&[
            "ip",
            "addr",
            "add",
            &format!("169.254.{subnet}.1/24"),
            "dev",
            &veth_host,
        ])?;
        run(&["ip", "link", "set", &veth_host, "up"])?;
        for h in 0..hosts {
            let addr = format!("169.254.{subnet}.{}/24", 2 + h);
            run(&["ip", "-n", &name, "addr", "add", &addr, "dev", &veth_ns])?;
        }
        run(&["ip", "-n", &name, "link", "set", &veth_ns, "up"])?;
        run(&["ip", "-n", &name, "link", "set", "lo", "up"])?;
        Ok(lab)
    }

    /// The namespace's name (for `ip netns exec`).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Address of host `i` inside the lab (169.254.N.(2+i)).
    pub fn ip(&self, i: u8) -> Ipv4Addr {
        Ipv4Addr::new(169, 254, self.subnet, 2 + i)
    }

    fn rule(&self, op: &str, ip: Ipv4Addr, port: u16) -> Result<(), String> {
        let ip = ip.to_string();
        let port = port.to_string();
        run(&[
            "ip", "netns", "exec", &self.name, "iptables", op, "INPUT", "-d", &ip, "-p", "tcp",
            "--dport", &port, "-j", "DROP",
        ])
        .map(|_| ())
    }

    /// Silently drop every TCP packet to `ip:port` inside the lab (no RST, no ICMP): the
    /// server looks alive to nobody and dead to nobody — only deadlines notice.
    pub fn blackhole(&self, ip: Ipv4Addr, port: u16) -> Result<(), String> {
        self.rule("-I", ip, port)
    }

    /// Remove a blackhole.
    pub fn heal(&self, ip: Ipv4Addr, port: u16) -> Result<(), String> {
        self.rule("-D", ip, port)
    }

    fn host_rule(&self, op: &str, ip: Ipv4Addr, port: u16) -> Result<(), String> {
        let ip = ip.to_string();
        let port = port.to_string();
        run(&[
            "ip",
            "netns",
            "exec",
            &self.name,
            "iptables",
            op,
            "INPUT",
            "-i",
            &self.veth_ns,
            "-d",
            &ip,
            "-p",
            "tcp",
            "--dport",
            &port,
            "-j",
            "DROP",
        ])
        .map(|_| ())
    }

    /// Drop TCP packets to `ip:port` that come from the host only (through the lab's veth):
    /// processes on the host lose the server, servers inside the lab still reach it.
    pub fn partition_from_host(&self, ip: Ipv4Addr, port: u16) -> Result<(), String> {
        self.host_rule("-I", ip, port)
    }

    /// Undo [`Lab::partition_from_host`].
    pub fn heal_from_host(&self, ip: Ipv4Addr, port: u16) -> Result<(), String> {
        self.host_rule("-D", ip, port)
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        let _ = run(&["ip", "netns", "del", &self.name]);
        let _ = run(&["ip", "link", "del", &self.veth_host]);
    }
}
