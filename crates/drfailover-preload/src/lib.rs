//! `libdrfailover-preload.so`: drfailover's failover for programs that will not be rewritten.
//!
//! Loaded with `LD_PRELOAD` into an unmodified program linked against libmariadb (or the
//! `libmysqlclient` names of `libmariadb-dev-compat`), it interposes the connection lifecycle
//! of the program's own client library (`mysql_real_connect`, `mysql_real_query`,
//! `mysql_ping`, `mysql_stmt_execute`, …) and calls the real functions through
//! `dlsym(RTLD_NEXT, …)`. Connections to an endpoint of `DRFAILOVER_DSN` (or a name of
//! `DRFAILOVER_ALIAS`) are *managed*: they go to the writer a per-process drfailover client
//! (the monitor) knows, follow it through failovers between transactions, and get the retry
//! contract (never sent → sent once to the writer; outcome unknown → 2013, never re-sent;
//! a transaction is never split). Everything else passes through. See `docs/preload.md`.
//!
//! Layout: `policy` (pure decisions), `abort` (in-flight abort), `statement` (transaction keywords), `settings` (the
//! environment), `monitor` (the per-process client), `handle` (a managed handle's state and
//! in-place moves), `real` (the next object's functions), `interpose` (the exports: the
//! thin FFI edge).
//!
//! Costs: on a managed handle, per statement, one load of the handle's state, one atomic load
//! of the writer stamp compared with the handle's, a look at the client library's reconnect
//! flag and the transaction bit, and two relaxed atomic adds counting the statement for the
//! monitor; nothing else while nothing changes (about 40 instructions, docs/benchmarks.md).
//! Threads: the monitor's two (started at the first managed connect).
// This crate is an FFI interposer: it must read and write the client library's handles and
// export C functions, so it allows `unsafe`; every block carries a `// SAFETY:` line.
#![allow(unsafe_code)]

pub mod abort;
pub mod handle;
#[cfg(not(test))]
mod interpose;
pub mod monitor;
pub mod policy;
pub mod real;
pub mod settings;
pub mod statement;

use std::cell::Cell;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};

use settings::Settings;

/// Print one line on stderr, prefixed with the library's name. Callers make sure each
/// problem is reported once.
pub fn report(message: &str) {
    eprintln!("drfailover-preload: {message}");
}

/// The environment's settings, read once per process; `None` (pass everything through)
/// without `DRFAILOVER_DSN` or when it is wrong (reported once).
pub fn settings() -> Option<&'static Settings> {
    static SETTINGS: OnceLock<Option<Settings>> = OnceLock::new();
    SETTINGS
        .get_or_init(|| match Settings::from_env() {
            Ok(s) => s,
            Err(e) => {
                report(&format!("{e}; connections pass through unchanged"));
                None
            }
        })
        .as_ref()
}

/// The calling process's monitor, started if needed (see [`monitor::for_process`]).
pub fn current_monitor() -> Option<Arc<monitor::Monitor>> {
    monitor::for_process(settings()?)
}

thread_local! {
    static INSIDE: Cell<bool> = const { Cell::new(false) };
}

/// How many [`Inside`] marks exist in the process, on any thread. While it is 0 no thread is
/// inside, so [`inside`] answers without touching the thread-local (a thread-local of a
/// shared library costs a call to `__tls_get_addr`, on every statement otherwise).
static INSIDE_MARKS: AtomicUsize = AtomicUsize::new(0);

/// Whether the calling thread is already inside this library (then the client library's
/// nested calls, and the monitor's own, pass straight through). One relaxed load while no
/// thread is inside; a thread-local read otherwise.
#[inline]
pub fn inside() -> bool {
    // A thread inside sees its own increment (program order), so 0 means "not this one".
    INSIDE_MARKS.load(Ordering::Relaxed) != 0 && inside_this_thread()
}

/// The thread-local itself: out of line, so that the compiler does not compute its address
/// (`__tls_get_addr`) before the cheap test above.
#[cold]
#[inline(never)]
fn inside_this_thread() -> bool {
    INSIDE.with(Cell::get)
}

/// Marks the calling thread inside this library until dropped (on the same thread).
pub struct Inside {
    was: bool,
}

impl Inside {
    /// Enter. One atomic add and a thread-local write.
    #[inline]
    pub fn enter() -> Inside {
        INSIDE_MARKS.fetch_add(1, Ordering::Relaxed);
        Inside {
            was: INSIDE.with(|i| i.replace(true)),
        }
    }
}

impl Drop for Inside {
    #[inline]
    fn drop(&mut self) {
        let was = self.was;
        INSIDE.with(|i| i.set(was));
        INSIDE_MARKS.fetch_sub(1, Ordering::Relaxed);
    }
}

/// Whether the calling thread is one of drfailover's own (the monitor's, the notifier's):
/// their connects go where they ask, never redirected. Costs a look at the thread's name.
pub fn is_drfailover_thread() -> bool {
    std::thread::current()
        .name()
        .is_some_and(|n| n.starts_with("drfailover-"))
}
