//! Spawns servers from one long-lived thread.
//!
//! `PR_SET_PDEATHSIG` fires when the *thread* that forked a child exits, so children are forked
//! by a thread that lives as long as the process: servers die with the test process and never
//! with a short-lived helper thread.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{channel, Sender};
use std::sync::{Mutex, OnceLock};

type Request = (Command, Sender<std::io::Result<Child>>);

static SPAWNER: OnceLock<Mutex<Sender<Request>>> = OnceLock::new();

/// Servers started from now on outlive this process (see [`crate::detach_servers`]).
static DETACHED: AtomicBool = AtomicBool::new(false);

/// From now on, start servers without `PR_SET_PDEATHSIG` and in a session of their own
/// (`setsid`), so they keep running after this process exits. For the lab, which leaves its
/// servers up on purpose; tests never call it.
pub fn detach_servers() {
    DETACHED.store(true, Ordering::SeqCst);
}

fn setpriv() -> Option<PathBuf> {
    ["/usr/bin/setpriv", "/bin/setpriv"]
        .into_iter()
        .map(PathBuf::from)
        .find(|p| p.exists())
}

/// Build a command that runs `program` with `PR_SET_PDEATHSIG=SIGKILL` when `setpriv` exists,
/// inside network namespace `netns` if given (`ip netns exec` and `setpriv` both exec, so the
/// server keeps the spawner thread as parent).
pub fn command_dying_with_parent(program: &std::path::Path, netns: Option<&str>) -> Command {
    let mut argv: Vec<std::ffi::OsString> = Vec::new();
    if let Some(ns) = netns {
        argv.extend(["ip", "netns", "exec", ns].map(Into::into));
    }
    if DETACHED.load(Ordering::SeqCst) {
        argv.push("setsid".into());
    } else if let Some(setpriv) = setpriv() {
        argv.push(setpriv.into());
        argv.extend(["--pdeathsig", "KILL", "--"].map(Into::into));
    }
    argv.push(program.into());
    let mut cmd = Command::new(&argv[0]);
    cmd.args(&argv[1..]);
    cmd
}

/// Spawn `cmd` (stdin/stdout/stderr to /dev/null) from the spawner thread.
pub fn spawn(mut cmd: Command) -> std::io::Result<Child> {
    cmd.stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    let sender = SPAWNER.get_or_init(|| {
        let (tx, rx) = channel::<Request>();
        std::thread::Builder::new()
            .name("testkit-spawner".into())
            .spawn(move || {
                for (mut cmd, reply) in rx {
                    let _ = reply.send(cmd.spawn());
                }
            })
            .expect("spawn the testkit spawner thread");
        Mutex::new(tx)
    });
    let (reply_tx, reply_rx) = channel();
    sender
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .send((cmd, reply_tx))
        .map_err(|_| std::io::Error::other("spawner thread is gone"))?;
    reply_rx
        .recv()
        .map_err(|_| std::io::Error::other("spawner thread is gone"))?
}

/// How a just-spawned daemon came up.
pub(crate) enum Started {
    /// Its readiness check passed.
    Ready,
    /// It exited first (a port taken meanwhile, a bad configuration).
    Exited(std::process::ExitStatus),
    /// Neither within the bound: it was killed.
    TimedOut,
}

/// Wait until `ready` says yes or `child` exits, for up to `within` (polling every 10 ms);
/// a child neither ready nor exited by then is killed and reaped. Blocks.
pub(crate) fn await_ready(
    child: &mut Child,
    within: std::time::Duration,
    mut ready: impl FnMut() -> bool,
) -> Started {
    let came_up = crate::wait::within(within, || {
        if let Ok(Some(status)) = child.try_wait() {
            return Some(Started::Exited(status));
        }
        ready().then_some(Started::Ready)
    });
    came_up.unwrap_or_else(|| {
        let _ = child.kill();
        let _ = child.wait();
        Started::TimedOut
    })
}
