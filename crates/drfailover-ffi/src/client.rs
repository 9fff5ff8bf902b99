//! Client lifecycle, waits, state, stats and leases.

use std::collections::HashMap;
use std::ffi::CString;
use std::os::raw::{c_char, c_void};
use std::sync::{Arc, Mutex, MutexGuard, RwLock};
use std::time::Duration;

use drfailover_conn::{Client, Config, Leased};

use crate::config::dr_config;
use crate::events::{dr_event_cb, dr_finalizer, Subscription};
use crate::guard::{self, c_str, out_ptr, Failure, MAX_SHORT};
use crate::status::dr_status;

/// A failover-aware client. Thread-safe: every call except `dr_close` may be made from any
/// number of threads at once. Owns two threads (monitor, notifier) and a connection pool.
/// The handle is opaque: it names a slot in the library's handle table and its generation,
/// so a closed handle is recognised (`DR_E_CLOSED`) without keeping memory for it.
pub struct dr_client {
    _opaque: [u8; 0],
}

/// What a live handle refers to.
pub(crate) struct Open {
    pub(crate) client: Client,
    leases: Mutex<HashMap<usize, Leased>>,
}

impl Open {
    pub(crate) fn leases(&self) -> MutexGuard<'_, HashMap<usize, Leased>> {
        self.leases.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// One slot of the handle table: the generation its current (or next) handle carries, and
/// the open client, `None` once closed.
struct Slot {
    generation: usize,
    open: Option<Arc<Open>>,
}

/// The handle table: as many slots as clients were ever open at the same time; a closed
/// client's slot is reused with the next generation, so closing and creating clients forever
/// uses constant memory, and an old handle never reaches a newer client.
struct Table {
    slots: Vec<Slot>,
    free: Vec<usize>,
}

static TABLE: RwLock<Table> = RwLock::new(Table {
    slots: Vec::new(),
    free: Vec::new(),
});

/// Bits of a handle that hold the slot index (+1, so a handle is never NULL); the rest hold
/// the generation. On 64-bit targets a slot is reused 2^32 times before a generation repeats.
const INDEX_BITS: u32 = usize::BITS / 2;
const INDEX_MASK: usize = (1 << INDEX_BITS) - 1;
const GENERATION_MASK: usize = usize::MAX >> INDEX_BITS;

fn encode(index: usize, generation: usize) -> *mut dr_client {
    // The value is an opaque token, never dereferenced (hence no provenance).
    std::ptr::without_provenance_mut(((generation & GENERATION_MASK) << INDEX_BITS) | (index + 1))
}

fn decode(handle: *const dr_client) -> Option<(usize, usize)> {
    let v = handle as usize;
    let index = (v & INDEX_MASK).checked_sub(1)?;
    Some((index, v >> INDEX_BITS))
}

fn closed() -> Failure {
    Failure::new(dr_status::DR_E_CLOSED, "the client is closed")
}

/// Put a new client in the table and return its handle.
fn register(open: Open) -> Result<*mut dr_client, Failure> {
    let mut table = TABLE.write().unwrap_or_else(|e| e.into_inner());
    let open = Some(Arc::new(open));
    let index = match table.free.pop() {
        Some(i) => {
            table.slots[i].open = open;
            i
        }
        None => {
            if table.slots.len() >= INDEX_MASK - 1 {
                return Err(Failure::new(
                    dr_status::DR_E_SYSTEM,
                    "too many open clients",
                ));
            }
            table.slots.push(Slot {
                generation: 1,
                open,
            });
            table.slots.len() - 1
        }
    };
    Ok(encode(index, table.slots[index].generation))
}

/// The open client behind `handle`: `DR_E_INVALID_ARGUMENT` for NULL, `DR_E_CLOSED` for a
/// closed handle (or any value that is not a live handle). One read lock and one reference
/// count increment; never blocks on I/O.
pub(crate) fn lookup(handle: *const dr_client) -> Result<Arc<Open>, Failure> {
    if handle.is_null() {
        return Err(Failure::invalid("client is NULL"));
    }
    let (index, generation) = decode(handle).ok_or_else(closed)?;
    let table = TABLE.read().unwrap_or_else(|e| e.into_inner());
    match table.slots.get(index) {
        Some(slot) if slot.generation & GENERATION_MASK == generation => {
            slot.open.clone().ok_or_else(closed)
        }
        _ => Err(closed()),
    }
}

/// Take the client out of the table (its slot gets the next generation); `None` if the
/// handle is not live.
fn unregister(handle: *const dr_client) -> Option<Arc<Open>> {
    let (index, generation) = decode(handle)?;
    let mut table = TABLE.write().unwrap_or_else(|e| e.into_inner());
    let slot = table.slots.get_mut(index)?;
    if slot.generation & GENERATION_MASK != generation {
        return None;
    }
    let open = slot.open.take()?;
    slot.generation = slot.generation.wrapping_add(1);
    table.free.push(index);
    Some(open)
}

/// A MariaDB/MySQL connection handle (`MYSQL *` from `<mysql.h>`), as lent by `dr_lease`.
pub struct st_mysql {
    _opaque: [u8; 0],
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
    /// Connections opened for the pool, the first ones included (the Rust API calls this
    /// counter `connects`; the C name is kept: it has this meaning since 0.1).
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
    subscribers: &[Arc<Subscription>],
    out: *mut *mut dr_client,
) -> Result<(), Failure> {
    crate::logging::init_from_env();
    let mut builder = Client::builder(config);
    for sub in subscribers {
        let sub = Arc::clone(sub);
        builder = builder.on_event(move |e| sub.deliver(e));
    }
    let client = builder.connect()?;
    let handle = register(Open {
        client,
        leases: Mutex::new(HashMap::new()),
    })?;
    // SAFETY: `out` was checked non-NULL by the caller of this helper.
    unsafe { *out = handle };
    Ok(())
}

/// Connect from a DSN `mysql://user[:password]@host1[:port],host2[:port]/db?key=value&…`
/// (hosts in priority order; keys as for `dr_config_set`). Starts the client's monitor and
/// notifier threads and probes every endpoint once, all at once — blocks up to about
/// `probe_timeout_ms`; when some host is a name, up to `probe_timeout_ms + 2 × dns_timeout_ms`
/// (the library resolves a name within that deadline before probing it; once a writer is
/// known it does not wait for names still unanswered); never more than 1 s beyond that — then
/// returns, with or without a writer (see `dr_wait_ready`). A name that does not resolve is an
/// endpoint that is down (`DR_EVENT_ENDPOINT_DOWN`, reason `unresolved: …`), not an error. On
/// success `*out` is a client the caller owns and must pass to `dr_close`.
/// With `secret_arn`, first fetches the secret from AWS Secrets Manager (up to 5 s); with
/// `auth=rds_iam`, looks up the AWS credentials (up to 5 s when they come from the metadata
/// endpoints). Fails with `DR_E_CONFIG` (malformed DSN, or a NUL byte (`%00`) in user,
/// password or database, or a missing, deleted or malformed secret, or `auth=rds_iam` without
/// verified TLS; the message names the part, never a secret) or `DR_E_AUTH`
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
        connect(Config::from_dsn(dsn)?, &[], out)
    })
}

/// Connect with a configuration built by `dr_config_set`. On success, event callbacks
/// registered on the config with `dr_config_on_event` move to the client (the config can be
/// reused or freed afterwards; their finalizers run at `dr_close`). On failure they stay on
/// the config, not finalized, so a retry with the same config sees its events. Otherwise as
/// `dr_connect`.
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
        // The client's closures hold clones; a failed connect drops them, and the config's own
        // references keep the finalizers from running, so the config stays reusable.
        let result = connect(cfg.config.clone(), &cfg.subscribers, out);
        if result.is_ok() {
            cfg.subscribers.clear();
        }
        result
    })
}

/// Stop the client: stop its threads, close its connections, run event finalizers, free its
/// resources. NULL and closed handles are ignored. Blocks until done: until the monitor's
/// probe round in progress ends (at most about `probe_timeout_ms`), and until the event
/// callback running at that moment (if any) returns. Queued events are delivered for at most
/// 1 s after `dr_close` starts; events not started by then are discarded. A running callback is
/// never interrupted: `dr_close` waits for it however long it takes, so that no callback of
/// this client runs after `dr_close` returns (a callback that never returns makes `dr_close`
/// never return). All leases must be released first (a `MYSQL *` still leased is closed
/// here). Must not be called from an event callback. Afterwards the handle is closed for good:
/// every call on it, including another `dr_close`, returns `DR_E_CLOSED` or does nothing,
/// while the library keeps no memory for it (handles name a slot of a handle table and its
/// generation; a later client never answers to an old handle).
///
/// # Safety
/// `client` must be NULL or a value from `dr_connect*`.
#[no_mangle]
pub unsafe extern "C" fn dr_close(client: *mut dr_client) {
    guard::value((), || {
        if client.is_null() {
            return;
        }
        if let Some(open) = unregister(client) {
            open.client.close();
            drop(open);
        }
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
        let client = lookup(client)?;
        let g = client.client.wait_ready(millis(timeout_ms))?;
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
        let client = lookup(client)?;
        out_ptr(now, "now")?;
        let g = client.client.wait_generation(seen, millis(timeout_ms))?;
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
        let client = lookup(client)?;
        out_ptr(out, "out")?;
        let s = client.client.state();
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
        let client = lookup(client)?;
        out_ptr(out, "out")?;
        let writer =
            client.client.state().writer.ok_or_else(|| {
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
        let client = lookup(client)?;
        out_ptr(out, "out")?;
        let s = client.client.stats();
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
        let client = lookup(client)?;
        out_ptr(out, "out")?;
        let mut lease = client.client.lease(millis(timeout_ms))?;
        let raw = lease.conn().as_raw() as *mut st_mysql;
        client.leases().insert(raw as usize, lease);
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
        let client = lookup(client)?;
        if mysql.is_null() {
            return Err(Failure::invalid("mysql is NULL"));
        }
        let lease = client.leases().remove(&(mysql as usize)).ok_or_else(|| {
            Failure::new(
                dr_status::DR_E_NOT_LEASED,
                "this MYSQL * is not leased from this client",
            )
        })?;
        client.client.release(lease);
        Ok(())
    })
}

symbol_version!(
    dr_connect,
    dr_connect_config,
    dr_close,
    dr_wait_ready,
    dr_wait_generation,
    dr_state,
    dr_current_writer,
    dr_string_free,
    dr_stats,
    dr_lease,
    dr_release,
    dr_on_event
);

/// Register `callback` for every later event of `client`. Callbacks run on the client's
/// notifier thread, one at a time, in event order, never while the library holds a lock. A
/// callback may call `dr_query`, `dr_state` and the other client calls; it must not call
/// `dr_close`. To see the first `DR_EVENT_CONNECTED`, register on the config with
/// `dr_config_on_event` instead. `finalizer` (may be NULL) is called with `userdata` once,
/// during `dr_close`, after the last callback. Does not block.
///
/// # Safety
/// `client` must be NULL or a live client; `userdata` must be usable from another thread.
#[no_mangle]
pub unsafe extern "C" fn dr_on_event(
    client: *const dr_client,
    callback: dr_event_cb,
    userdata: *mut c_void,
    finalizer: dr_finalizer,
) -> dr_status {
    guard::status(|| {
        let client = crate::client::lookup(client)?;
        let sub = Subscription::new(callback, userdata, finalizer)?;
        client.client.subscribe(move |e| sub.deliver(e));
        Ok(())
    })
}
