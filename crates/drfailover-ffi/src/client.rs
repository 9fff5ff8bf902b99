//! Client lifecycle, waits, state, stats and leases.

use std::cell::UnsafeCell;
use std::collections::HashMap;
use std::ffi::CString;
use std::os::raw::c_char;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use drfailover_conn::{Client, Config, Leased};

use crate::config::dr_config;
use crate::guard::{self, c_str, handle, out_ptr, Failure, MAX_SHORT};
use crate::status::dr_status;

/// A failover-aware client. Thread-safe: every call except `dr_close` may be made from any
/// number of threads at once. Owns two threads (monitor, notifier) and a connection pool.
pub struct dr_client {
    /// Set once by `dr_close`; never written otherwise, so the check costs one cached load.
    closed: AtomicBool,
    /// `None` after `dr_close`: only this small tombstone stays allocated.
    inner: UnsafeCell<Option<Open>>,
}

struct Open {
    client: Client,
    leases: Mutex<HashMap<usize, Leased>>,
}

// SAFETY: `inner` is written only by `dr_close`, which the contract forbids to run
// concurrently with any other call on the same client; all other access is shared reads of
// `Client` (Sync) and a Mutex.
unsafe impl Sync for dr_client {}

/// Closed clients' tombstones, kept reachable so calls on a closed handle stay defined
/// (`DR_E_CLOSED`) for the life of the process. A few bytes per closed client.
static TOMBSTONES: Mutex<Vec<usize>> = Mutex::new(Vec::new());

/// A MariaDB/MySQL connection handle (`MYSQL *` from `<mysql.h>`), as lent by `dr_lease`.
pub struct st_mysql {
    _opaque: [u8; 0],
}

impl dr_client {
    fn open(&self) -> Result<&Open, Failure> {
        if self.closed.load(Ordering::Acquire) {
            return Err(Failure::new(dr_status::DR_E_CLOSED, "the client is closed"));
        }
        // SAFETY: not closed, and `dr_close` may not run concurrently (see the Sync impl).
        unsafe { &*self.inner.get() }
            .as_ref()
            .ok_or_else(|| Failure::new(dr_status::DR_E_CLOSED, "the client is closed"))
    }

    pub(crate) fn client(&self) -> Result<&Client, Failure> {
        Ok(&self.open()?.client)
    }

    fn leases(&self) -> Result<MutexGuard<'_, HashMap<usize, Leased>>, Failure> {
        Ok(self
            .open()?
            .leases
            .lock()
            .unwrap_or_else(|e| e.into_inner()))
    }
}

/// What `dr_state` reports.
#[repr(C)]
pub struct dr_state_info {
    /// 1 if a writer is available, else 0.
    pub ready: i32,
    /// The writer generation (bumped on every writer change; 0 before the first writer).
    pub generation: u64,
    /// Number of endpoints configured.
    pub endpoints: u32,
    /// Number of endpoints currently considered up.
    pub endpoints_up: u32,
}

/// Counters since the client started (`dr_stats`).
#[repr(C)]
pub struct dr_stats_info {
    /// Writer changes after the first writer.
    pub failovers: u64,
    /// Connections opened (first ones and reconnects).
    pub reconnects: u64,
    /// Probes run by the monitor.
    pub probes: u64,
    /// Statements retried (never sent, rejected read-only, or idempotent).
    pub retries: u64,
    /// Statements that failed with `DR_E_OUTCOME_UNKNOWN`.
    pub outcome_unknown: u64,
    /// Leased connections aborted because their writer went down.
    pub aborted: u64,
    /// Events dropped because the event queue was full.
    pub dropped_events: u64,
}

fn connect(
    config: Config,
    subscribers: Vec<crate::events::Subscription>,
    out: *mut *mut dr_client,
) -> Result<(), Failure> {
    crate::logging::init_from_env();
    let mut builder = Client::builder(config);
    for sub in subscribers {
        builder = builder.on_event(move |e| sub.deliver(e));
    }
    let client = builder.connect()?;
    let boxed = Box::new(dr_client {
        closed: AtomicBool::new(false),
        inner: UnsafeCell::new(Some(Open {
            client,
            leases: Mutex::new(HashMap::new()),
        })),
    });
    // SAFETY: `out` was checked non-NULL by the caller of this helper.
    unsafe { *out = Box::into_raw(boxed) };
    Ok(())
}

/// Connect from a DSN `mysql://user[:password]@host1[:port],host2[:port]/db?key=value&…`
/// (hosts in priority order; keys as for `dr_config_set`). Starts the client's monitor and
/// notifier threads and probes every endpoint once, all at once — blocks up to about
/// `probe_timeout_ms` — then returns, with or without a writer (see `dr_wait_ready`). On success
/// `*out` is a client the caller owns and must pass to `dr_close`.
/// Fails with `DR_E_CONFIG` (malformed DSN; the message names the part) or `DR_E_AUTH`
/// (every endpoint rejected the credentials). Thread-safe.
///
/// # Safety
/// `dsn` must be NULL or NUL-terminated; `out` NULL or valid for writing one pointer.
#[no_mangle]
pub unsafe extern "C" fn dr_connect(dsn: *const c_char, out: *mut *mut dr_client) -> dr_status {
    guard::status(|| {
        // SAFETY: per the contract.
        let dsn = unsafe { c_str(dsn, "dsn", MAX_SHORT) }?;
        out_ptr(out, "out")?;
        connect(Config::from_dsn(dsn)?, Vec::new(), out)
    })
}

/// Connect with a configuration built by `dr_config_set`. Event callbacks registered on the
/// config with `dr_config_on_event` move to the client (the config can be reused or freed
/// afterwards). Otherwise as `dr_connect`.
///
/// # Safety
/// `config` must be NULL or a live `dr_config` not used concurrently; `out` NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn dr_connect_config(
    config: *mut dr_config,
    out: *mut *mut dr_client,
) -> dr_status {
    guard::status(|| {
        // SAFETY: per the contract.
        let cfg = unsafe { config.as_mut() }.ok_or_else(|| Failure::invalid("config is NULL"))?;
        out_ptr(out, "out")?;
        let subscribers = std::mem::take(&mut cfg.subscribers);
        connect(cfg.config.clone(), subscribers, out)
    })
}

/// Stop the client: stop its threads, deliver queued events (at most 1 s), close its
/// connections, run event finalizers, free its resources. Blocks until done; after it returns
/// no callback of this client runs. NULL is ignored. All leases must be released first (a
/// `MYSQL *` still leased is closed here). Must not be called from an event callback or while
/// other threads are inside calls on this client. Afterwards the handle stays a valid
/// "closed" tombstone (a few bytes, kept for the life of the process): every call on it,
/// including another `dr_close`, returns `DR_E_CLOSED` or does nothing.
///
/// # Safety
/// `client` must be NULL or a client from `dr_connect*`.
#[no_mangle]
pub unsafe extern "C" fn dr_close(client: *mut dr_client) {
    guard::value((), || {
        // SAFETY: per the contract a non-NULL pointer is a client (open or a tombstone).
        let Some(c) = (unsafe { client.as_ref() }) else {
            return;
        };
        if c.closed.swap(true, Ordering::AcqRel) {
            return;
        }
        // SAFETY: the flag is set and no other call runs concurrently (contract), so we are
        // the only one touching `inner`.
        let open = unsafe { (*c.inner.get()).take() };
        if let Some(open) = open {
            open.client.close();
            drop(open);
        }
        TOMBSTONES
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(client as usize);
    })
}

fn millis(ms: u32) -> Duration {
    Duration::from_millis(ms as u64)
}

/// Block until a writer is available or `timeout_ms` passes (`DR_E_NO_WRITER`). On success
/// writes the current generation to `*generation` if it is not NULL. A condition-variable
/// wait: no polling, no CPU while waiting. Thread-safe.
///
/// # Safety
/// `client` must be NULL or live; `generation` NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn dr_wait_ready(
    client: *const dr_client,
    timeout_ms: u32,
    generation: *mut u64,
) -> dr_status {
    guard::status(|| {
        // SAFETY: per the contract.
        let client = unsafe { handle(client, "client") }?;
        let g = client.client()?.wait_ready(millis(timeout_ms))?;
        if !generation.is_null() {
            // SAFETY: non-NULL and writable per the contract.
            unsafe { *generation = g };
        }
        Ok(())
    })
}

/// Block until the writer generation differs from `seen` or `timeout_ms` passes
/// (`DR_E_NO_WRITER`); on success writes the new generation to `*now` (required). Use it to
/// react to failovers: `dr_wait_generation(c, g, 60000, &g)` in a loop. Thread-safe.
///
/// # Safety
/// `client` must be NULL or live; `now` NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn dr_wait_generation(
    client: *const dr_client,
    seen: u64,
    timeout_ms: u32,
    now: *mut u64,
) -> dr_status {
    guard::status(|| {
        // SAFETY: per the contract.
        let client = unsafe { handle(client, "client") }?;
        out_ptr(now, "now")?;
        let g = client.client()?.wait_generation(seen, millis(timeout_ms))?;
        // SAFETY: checked non-NULL; writable per the contract.
        unsafe { *now = g };
        Ok(())
    })
}

/// Read readiness, generation and endpoint counts into `*out`. Cheap; never blocks on I/O.
///
/// # Safety
/// `client` must be NULL or live; `out` NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn dr_state(client: *const dr_client, out: *mut dr_state_info) -> dr_status {
    guard::status(|| {
        // SAFETY: per the contract.
        let client = unsafe { handle(client, "client") }?;
        out_ptr(out, "out")?;
        let s = client.client()?.state();
        let up = s
            .endpoints
            .iter()
            .filter(|e| {
                matches!(
                    e.health,
                    drfailover_conn::Health::Up | drfailover_conn::Health::Suspect
                )
            })
            .count();
        // SAFETY: checked non-NULL; writable per the contract.
        unsafe {
            *out = dr_state_info {
                ready: s.ready as i32,
                generation: s.generation,
                endpoints: s.endpoints.len() as u32,
                endpoints_up: up as u32,
            }
        };
        Ok(())
    })
}

/// Write the current writer as a new `"host:port"` string to `*out`; the caller frees it with
/// `dr_string_free`. `DR_E_NO_WRITER` when there is none. Cheap.
///
/// # Safety
/// `client` must be NULL or live; `out` NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn dr_current_writer(
    client: *const dr_client,
    out: *mut *mut c_char,
) -> dr_status {
    guard::status(|| {
        // SAFETY: per the contract.
        let client = unsafe { handle(client, "client") }?;
        out_ptr(out, "out")?;
        let writer =
            client.client()?.state().writer.ok_or_else(|| {
                Failure::new(dr_status::DR_E_NO_WRITER, "no writer at the moment")
            })?;
        let s = CString::new(writer.to_string())
            .map_err(|_| Failure::invalid("endpoint name contains NUL"))?;
        // SAFETY: checked non-NULL; writable per the contract.
        unsafe { *out = s.into_raw() };
        Ok(())
    })
}

/// Free a string returned by this library (`dr_current_writer`). NULL is ignored.
///
/// # Safety
/// `s` must be NULL or a string from this library not yet freed.
#[no_mangle]
pub unsafe extern "C" fn dr_string_free(s: *mut c_char) {
    guard::value((), || {
        if !s.is_null() {
            // SAFETY: created by CString::into_raw in this library.
            drop(unsafe { CString::from_raw(s) });
        }
    })
}

/// Read the counters into `*out`. Cheap (atomic loads). Thread-safe.
///
/// # Safety
/// `client` must be NULL or live; `out` NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn dr_stats(client: *const dr_client, out: *mut dr_stats_info) -> dr_status {
    guard::status(|| {
        // SAFETY: per the contract.
        let client = unsafe { handle(client, "client") }?;
        out_ptr(out, "out")?;
        let s = client.client()?.stats();
        // SAFETY: checked non-NULL; writable per the contract.
        unsafe {
            *out = dr_stats_info {
                failovers: s.failovers,
                reconnects: s.connects,
                probes: s.probes,
                retries: s.retries,
                outcome_unknown: s.outcome_unknown,
                aborted: s.aborted,
                dropped_events: s.events_dropped,
            }
        };
        Ok(())
    })
}

/// Lend a raw `MYSQL *` connected to the current writer, for existing code (prepared
/// statements, explicit transactions, any `mysql_*` call). Waits up to `timeout_ms` for a
/// writer and a free pool slot. The connection still gets failover handling: if its writer
/// is declared down its socket is shut down, so a blocked `mysql_*` call returns at once with
/// 2013. Use it from one thread at a time; do not `mysql_close` it; give it back with
/// `dr_release`. Never uses `MYSQL_OPT_RECONNECT`.
///
/// # Safety
/// `client` must be NULL or live; `out` NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn dr_lease(
    client: *const dr_client,
    timeout_ms: u32,
    out: *mut *mut st_mysql,
) -> dr_status {
    guard::status(|| {
        // SAFETY: per the contract.
        let client = unsafe { handle(client, "client") }?;
        out_ptr(out, "out")?;
        let mut lease = client.client()?.lease(millis(timeout_ms))?;
        let raw = lease.conn().as_raw() as *mut st_mysql;
        client.leases()?.insert(raw as usize, lease);
        // SAFETY: checked non-NULL; writable per the contract.
        unsafe { *out = raw };
        Ok(())
    })
}

/// Give back a `MYSQL *` from `dr_lease`. It is reused only if healthy (no lost connection,
/// no open transaction — commit or roll back first, socket alive, current generation);
/// otherwise it is closed. `DR_E_NOT_LEASED` if it is not leased from this client. The
/// pointer must not be used afterwards. Thread-safe.
///
/// # Safety
/// `client` must be NULL or live.
#[no_mangle]
pub unsafe extern "C" fn dr_release(client: *const dr_client, mysql: *mut st_mysql) -> dr_status {
    guard::status(|| {
        // SAFETY: per the contract.
        let client = unsafe { handle(client, "client") }?;
        if mysql.is_null() {
            return Err(Failure::invalid("mysql is NULL"));
        }
        let lease = client.leases()?.remove(&(mysql as usize)).ok_or_else(|| {
            Failure::new(
                dr_status::DR_E_NOT_LEASED,
                "this MYSQL * is not leased from this client",
            )
        })?;
        client.client()?.release(lease);
        Ok(())
    })
}
