//! The hand-written C design (bench/c/handwritten.c) as a benchmark subject: compiled against
//! libmariadb once, run in a private mount namespace whose `/etc/hosts` the benchmark rewrites
//! to flip the database name to the new primary (as a failover DNS record would, but at once
//! and with no resolver cache: the best case for this design).

use std::io::Write;
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

/// Ping interval of the monitor thread (users write 10 s; 1 s is tuned as far as is sane for
/// a thread that holds the global mutex while it pings).
pub const INTERVAL_MS: u64 = 1000;

/// The compiled program and the hosts file it resolves names from.
pub struct HandWritten {
    binary: PathBuf,
    hosts: PathBuf,
    dir: PathBuf,
}

impl HandWritten {
    /// Compile bench/c/handwritten.c (`cc`, `pkg-config libmariadb`) into a temporary
    /// directory. Needs root later, to bind-mount the hosts file.
    pub fn build() -> Result<HandWritten, String> {
        if !nix::unistd::geteuid().is_root() {
            return Err("needs root (a private mount namespace for /etc/hosts)".into());
        }
        let dir = std::env::temp_dir().join(format!(
            "drfailover-handwritten-{}-{}",
            std::process::id(),
            rand::random::<u32>()
        ));
        std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
        let source = Path::new(env!("CARGO_MANIFEST_DIR")).join("c/handwritten.c");
        let binary = dir.join("handwritten");
        let flags = Command::new("pkg-config")
            .args(["--cflags", "--libs", "libmariadb"])
            .output()
            .map_err(|e| format!("pkg-config: {e}"))?;
        if !flags.status.success() {
            return Err("pkg-config libmariadb failed (apt-get install libmariadb-dev)".into());
        }
        let flags = String::from_utf8_lossy(&flags.stdout).to_string();
        let out = Command::new("cc")
            .args(["-std=c11", "-O2", "-Wall", "-Wextra", "-Werror", "-pthread"])
            .arg(&source)
            .args(flags.split_whitespace())
            .arg("-o")
            .arg(&binary)
            .output()
            .map_err(|e| format!("cc: {e}"))?;
        if !out.status.success() {
            return Err(format!(
                "compiling {}: {}",
                source.display(),
                String::from_utf8_lossy(&out.stderr)
            ));
        }
        let hosts = dir.join("hosts");
        std::fs::write(&hosts, "").map_err(|e| e.to_string())?;
        Ok(HandWritten { binary, hosts, dir })
    }

    /// Make `name` resolve to `ip`. One fixed-length write in place (no truncation, same
    /// inode under the bind mount), so a lookup never sees a half-written file.
    pub fn point(&self, name: &str, ip: Ipv4Addr) -> Result<(), String> {
        let text = format!("127.0.0.1 localhost\n{:<15} {name}\n", ip.to_string());
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .open(&self.hosts)
            .map_err(|e| e.to_string())?;
        f.write_all(text.as_bytes()).map_err(|e| e.to_string())
    }

    /// Start the program (stdout piped) with `threads` writers against `name:port`, ids from
    /// `first_id`, in a mount namespace where `/etc/hosts` is [`HandWritten::point`]'s file.
    pub fn spawn(
        &self,
        name: &str,
        port: u16,
        threads: usize,
        first_id: u64,
    ) -> Result<Child, String> {
        use drfailover_testkit::{APP_DATABASE, APP_PASSWORD, APP_USER};
        // setpriv: killed with the benchmark, whatever happens to it (unshare and sh exec,
        // so the signal setting reaches the program).
        Command::new("setpriv")
            .args([
                "--pdeathsig",
                "KILL",
                "--",
                "unshare",
                "--mount",
                "--propagation",
            ])
            .args(["private", "--", "sh", "-c"])
            .arg("mount --bind \"$0\" /etc/hosts && exec \"$@\"")
            .arg(&self.hosts)
            .arg(&self.binary)
            .arg(name)
            .arg(port.to_string())
            .args([APP_USER, APP_PASSWORD, APP_DATABASE])
            .arg(threads.to_string())
            .arg(INTERVAL_MS.to_string())
            .arg(first_id.to_string())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .map_err(|e| format!("unshare (util-linux): {e}"))
    }
}

impl Drop for HandWritten {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
