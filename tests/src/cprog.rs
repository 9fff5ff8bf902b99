//! Build and run C programs against the library (the C side of end-to-end tests).

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{channel, Receiver};

/// The workspace root (where `include/` and `tests/c/` live).
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ has a parent")
        .to_path_buf()
}

/// The cargo profile directory of the running test binary (`target/debug`), where
/// `libdrfailover.so` is built.
pub fn profile_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("current exe");
    // target/<profile>/deps/<test-binary>
    exe.parent()
        .and_then(Path::parent)
        .expect("test binary lives in target/<profile>/deps")
        .to_path_buf()
}

/// Builds `libdrfailover.so` through cargo, with the running test binary's profile and target
/// directory, and returns the directory holding it (`profile_dir()`). `cargo test` builds the
/// ffi crate only as an rlib, so a C test cannot rely on the .so being there, or being fresh:
/// this runs `cargo build -p drfailover-ffi --lib` once per test process (later calls return
/// the first result); cargo's own lock on the target directory serialises it with other test
/// processes and builds. Blocking: seconds when the library is fresh, a build otherwise.
pub fn built_library_dir() -> Result<PathBuf, String> {
    static BUILT: std::sync::OnceLock<Result<PathBuf, String>> = std::sync::OnceLock::new();
    BUILT
        .get_or_init(|| build_package("drfailover-ffi", &["--lib"], "libdrfailover.so"))
        .clone()
}

/// Builds `libdrfailover-preload.so` (`libdrfailover_preload.so` in cargo's naming) the same
/// way, once per test process, and returns its path: `cargo test` compiles a cdylib-only
/// crate for its integration tests but does not refresh `target/<profile>/` with it.
/// Blocking: seconds when fresh, a build otherwise.
pub fn built_preload_library() -> Result<PathBuf, String> {
    const NAME: &str = "libdrfailover_preload.so";
    static BUILT: std::sync::OnceLock<Result<PathBuf, String>> = std::sync::OnceLock::new();
    BUILT
        .get_or_init(|| built_artifact("drfailover-preload", &[], NAME))
        .clone()
}

/// `cargo build -p PACKAGE EXTRA…` with the running test binary's profile and target
/// directory, then the path of `artifact` (a file name) in the profile directory. Blocking:
/// seconds when fresh, a build otherwise.
pub fn built_artifact(package: &str, extra: &[&str], artifact: &str) -> Result<PathBuf, String> {
    build_package(package, extra, artifact).map(|dir| dir.join(artifact))
}

/// [`built_artifact`], returning the profile directory.
fn build_package(package: &str, extra: &[&str], artifact: &str) -> Result<PathBuf, String> {
    let profile_dir = profile_dir();
    let dir_name = |p: &Path| {
        p.file_name()
            .and_then(|n| n.to_str())
            .map(str::to_owned)
            .ok_or_else(|| format!("unexpected test binary location {}", p.display()))
    };
    let profile = match dir_name(&profile_dir)?.as_str() {
        "debug" => "dev".to_owned(),
        other => other.to_owned(),
    };
    let parent = profile_dir
        .parent()
        .ok_or("profile directory has no parent")?;
    // target/<profile> or, with --target, target/<triple>/<profile>.
    let is_target_dir = |p: &Path| p.join("CACHEDIR.TAG").exists();
    // A target directory normally carries cargo's CACHEDIR.TAG; one copied by hand may not,
    // so without a marker on either level, the plain layout (no --target) is assumed.
    let grand = parent.parent().filter(|p| is_target_dir(p));
    let (target_dir, triple) = match grand {
        Some(grand) if !is_target_dir(parent) => (grand.to_path_buf(), Some(dir_name(parent)?)),
        _ => (parent.to_path_buf(), None),
    };
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut cmd = Command::new(&cargo);
    cmd.current_dir(workspace_root())
        .args(["build", "--quiet", "-p", package])
        .args(extra)
        .arg("--profile")
        .arg(&profile)
        .arg("--target-dir")
        .arg(&target_dir);
    if let Some(triple) = &triple {
        cmd.arg("--target").arg(triple);
    }
    let output = cmd
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("run {}: {e}", cargo.to_string_lossy()))?;
    if !output.status.success() {
        return Err(format!(
            "`cargo build -p {package} {} --profile {profile}` failed ({}):\n{}",
            extra.join(" "),
            output.status,
            String::from_utf8_lossy(&output.stderr)
        ));
    }
    let built = profile_dir.join(artifact);
    if !built.exists() {
        return Err(format!(
            "cargo built {package} but {} is missing",
            built.display()
        ));
    }
    Ok(profile_dir)
}

/// Compile `source` (relative to the workspace root) with `cc -std=c11 -Wall -Wextra -Werror`,
/// linked against `libdrfailover.so` in `lib_dir`, into `out_dir`. Returns the binary path.
pub fn compile_c(source: &str, lib_dir: &Path, out_dir: &Path) -> Result<PathBuf, String> {
    let root = workspace_root();
    let so = lib_dir.join("libdrfailover.so");
    if !so.exists() {
        return Err(format!(
            "{} is missing: build it first with `cargo build -p drfailover-ffi`",
            so.display()
        ));
    }
    // Stage the library as an install lays it out: libdrfailover.so.<major> (the SONAME) and
    // a libdrfailover.so link for the linker.
    let staged = out_dir.join("lib");
    std::fs::create_dir_all(&staged).map_err(|e| e.to_string())?;
    let major = env!("CARGO_PKG_VERSION_MAJOR");
    let versioned = staged.join(format!("libdrfailover.so.{major}"));
    std::fs::copy(&so, &versioned).map_err(|e| format!("copy {}: {e}", so.display()))?;
    let link = staged.join("libdrfailover.so");
    let _ = std::fs::remove_file(&link);
    std::os::unix::fs::symlink(format!("libdrfailover.so.{major}"), &link)
        .map_err(|e| e.to_string())?;
    let lib_dir = staged.as_path();
    let name = Path::new(source)
        .file_stem()
        .ok_or("source has no file name")?;
    let out = out_dir.join(name);
    let cc = std::env::var("CC").unwrap_or_else(|_| "cc".into());
    let output = Command::new(&cc)
        .args([
            "-std=c11", "-Wall", "-Wextra", "-Werror", "-O1", "-g", "-pthread",
        ])
        .arg("-I")
        .arg(root.join("include"))
        .arg(root.join(source))
        .arg("-L")
        .arg(lib_dir)
        .arg(format!("-Wl,-rpath,{}", lib_dir.display()))
        .arg("-ldrfailover")
        .arg("-o")
        .arg(&out)
        .output()
        .map_err(|e| format!("run {cc}: {e} (install gcc)"))?;
    if !output.status.success() {
        return Err(format!(
            "compiling {source} failed:\n{}",
            String::from_utf8_lossy(&output.stderr)
        ));
    }
    Ok(out)
}

/// `CLOCK_MONOTONIC` in nanoseconds (the clock C programs stamp their lines with).
pub fn monotonic_ns() -> u64 {
    let ts = nix::time::clock_gettime(nix::time::ClockId::CLOCK_MONOTONIC).expect("clock_gettime");
    ts.tv_sec() as u64 * 1_000_000_000 + ts.tv_nsec() as u64
}

/// A running child whose stdout lines arrive on a channel; killed on drop.
pub struct RunningProgram {
    child: Option<Child>,
    /// Lines of stdout, in order.
    pub lines: Receiver<String>,
    stderr: std::sync::Arc<std::sync::Mutex<String>>,
    readers: Vec<std::thread::JoinHandle<()>>,
}

impl RunningProgram {
    /// Spawn `program` with `args`.
    pub fn spawn(program: &Path, args: &[&str]) -> Result<RunningProgram, String> {
        let mut child = Command::new(program)
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| format!("spawn {}: {e}", program.display()))?;
        let (tx, rx) = channel();
        let stdout = child.stdout.take().expect("piped");
        let out_reader = std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let stderr_buf = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
        let (sink, stderr) = (stderr_buf.clone(), child.stderr.take().expect("piped"));
        let err_reader = std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                let mut s = sink.lock().unwrap_or_else(|e| e.into_inner());
                s.push_str(&line);
                s.push('\n');
            }
        });
        Ok(RunningProgram {
            child: Some(child),
            lines: rx,
            stderr: stderr_buf,
            readers: vec![out_reader, err_reader],
        })
    }

    /// What the program wrote to stderr so far.
    pub fn stderr(&self) -> String {
        self.stderr
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Wait for exit (polling up to `timeout`); kills it on timeout. After an exit, every line
    /// the program wrote is on `lines` (waits up to 10 s more for the pipes to drain).
    pub fn wait(
        &mut self,
        timeout: std::time::Duration,
    ) -> Result<std::process::ExitStatus, String> {
        let started = std::time::Instant::now();
        let child = self.child.as_mut().ok_or("already waited")?;
        loop {
            if let Some(status) = child.try_wait().map_err(|e| e.to_string())? {
                self.child = None;
                // Every line is on the channel once the readers saw end-of-file (the program
                // exited, so its pipe ends are closed; bounded in case a child inherited them).
                let drained = std::time::Instant::now() + std::time::Duration::from_secs(10);
                while self.readers.iter().any(|r| !r.is_finished())
                    && std::time::Instant::now() < drained
                {
                    std::thread::sleep(std::time::Duration::from_millis(5));
                }
                return Ok(status);
            }
            if started.elapsed() > timeout {
                let _ = child.kill();
                let _ = child.wait();
                self.child = None;
                return Err(format!("program did not exit within {timeout:?}"));
            }
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
    }
}

impl Drop for RunningProgram {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}
