//! A managed `MYSQL *`: its state, where it is kept, and the operations on the client
//! library's handle (move to the writer in place, report an error the program will read).
//!
//! The state lives in a heap box whose pointer is kept in the handle itself, in the
//! `unused_0` field of Connector/C's `struct st_mysql` (declared, never read or written by the
//! library; `mysql_init` zeroes it). Finding the state of a handle is therefore one load from
//! memory the program's thread already has in cache; no table, no lock.

use std::collections::HashMap;
use std::ffi::{c_char, c_void, CStr};
use std::sync::Arc;
use std::time::Instant;

use drfailover_conn::{Activity, WriterStamp};
use mysqlclient_sys::{MYSQL, MYSQL_BIND, MYSQL_STMT};

use crate::monitor::{Monitor, Target};
use crate::policy::{self, HandleState};
use crate::real::Real;

/// `SERVER_STATUS_IN_TRANS` (mysql_com.h).
pub const SERVER_STATUS_IN_TRANS: u32 = 1;
/// `SERVER_STATUS_AUTOCOMMIT` (mysql_com.h).
pub const SERVER_STATUS_AUTOCOMMIT: u32 = 2;

/// What is kept of a prepared statement to prepare it again on a new connection.
#[derive(Default)]
pub struct StatementRecord {
    /// The statement text as prepared.
    pub sql: Vec<u8>,
    /// A copy of the parameter bindings last given (`mysql_stmt_bind_param`); the buffers
    /// they point to are the program's, as for the client library itself.
    pub params: Option<Vec<MYSQL_BIND>>,
    /// A copy of the result bindings last given (`mysql_stmt_bind_result`).
    pub results: Option<Vec<MYSQL_BIND>>,
}

/// The state of one managed handle.
pub struct Managed {
    /// The process's monitor (replaced after a `fork`).
    monitor: Arc<Monitor>,
    /// The monitor's statement gauge and writer stamp, kept here as well: a statement reaches
    /// both through this allocation with one load less than through the monitor.
    activity: Activity,
    /// The client library's functions (resolved before any handle could be managed).
    real: &'static Real,
    /// The policy state.
    state: HandleState,
    /// The endpoint index the connection goes to.
    endpoint: usize,
    /// The writer stamp under which a statement goes out as it is (the connection's writer
    /// and generation while the policy would send as is whatever the writer), or
    /// [`WriterStamp::NEVER`]: recomputed on every change of the two fields above.
    send_as_is_under: WriterStamp,
    /// Prepared statements of this handle, by `MYSQL_STMT *` address.
    pub statements: HashMap<usize, StatementRecord>,
}

impl Managed {
    /// A handle just connected to `endpoint`, the writer of `generation`.
    pub fn new(
        monitor: Arc<Monitor>,
        real: &'static Real,
        endpoint: usize,
        generation: u64,
    ) -> Managed {
        let mut managed = Managed {
            activity: monitor.activity().clone(),
            monitor,
            real,
            state: HandleState::default(),
            endpoint,
            send_as_is_under: WriterStamp::NEVER,
            statements: HashMap::new(),
        };
        managed.moved_to(endpoint, generation);
        managed
    }

    /// The monitor this handle follows.
    pub fn monitor(&self) -> &Arc<Monitor> {
        &self.monitor
    }

    /// Follow `monitor` instead (a forked child's own).
    pub fn adopt(&mut self, monitor: Arc<Monitor>) {
        self.activity = monitor.activity().clone();
        self.monitor = monitor;
    }

    /// The policy state.
    pub fn state(&self) -> &HandleState {
        &self.state
    }

    /// The endpoint index the connection goes to.
    pub fn endpoint(&self) -> usize {
        self.endpoint
    }

    /// Change the policy state with `change` (one of the policy's `mark_*` functions).
    pub fn update(&mut self, change: impl FnOnce(&mut HandleState)) {
        change(&mut self.state);
        self.restamp();
    }

    /// The handle was reconnected to `endpoint`, the writer of `generation`.
    pub fn moved_to(&mut self, endpoint: usize, generation: u64) {
        policy::moved(&mut self.state, generation);
        self.endpoint = endpoint;
        self.restamp();
    }

    fn restamp(&mut self) {
        self.send_as_is_under = if policy::sends_as_is_on_its_writer(&self.state) {
            WriterStamp::of(Some(self.endpoint), self.state.generation)
        } else {
            WriterStamp::NEVER
        };
    }
}

/// What a statement on a managed handle is sent with: the client library's functions and
/// the statement gauge, both read from the handle's state through a raw pointer (the
/// statement may update the state: re-preparing a statement records it).
pub struct Sender {
    m: *mut Managed,
}

impl Sender {
    /// The client library's functions. One load.
    #[inline]
    pub fn real(&self) -> &'static Real {
        // SAFETY: `m` is a live state (see [`sender`]).
        unsafe { (*self.m).real }
    }

    /// `send` counted as a statement in flight on the writer (one relaxed atomic add before,
    /// one after; blocks as long as `send` does).
    ///
    /// # Safety
    /// The handle this came from is not detached before `send` returns.
    #[inline]
    pub unsafe fn counted<T>(&self, send: impl FnOnce() -> T) -> T {
        // SAFETY: per the contract, the state (and the gauge in it) outlives `send`.
        unsafe { (*std::ptr::addr_of!((*self.m).activity)).started() };
        let result = send();
        // SAFETY: as above.
        unsafe { (*std::ptr::addr_of!((*self.m).activity)).finished() };
        result
    }
}

/// `Some` when a statement on the managed handle `mysql` (whose state is `m`) goes out as it
/// is: the handle's writer and generation are the current ones and the policy has nothing to
/// do before sending (see [`policy::before_send`]; anything else, a transaction kept open
/// through a change of writer included, takes the policy's full path), and the client
/// library's own reconnect is off (a program may turn it on again after connecting; the
/// policy's path turns it off, see [`keep_own_reconnect_off`]). One atomic load, two
/// comparisons; never blocks.
///
/// # Safety
/// `mysql` is a managed handle owned by the calling thread and `m` its state.
#[inline]
pub unsafe fn as_is(mysql: *mut MYSQL, m: *mut Managed) -> Option<Sender> {
    // SAFETY: per the contract; only raw places are read (no reference into the state
    // outlives this function).
    unsafe {
        ((*mysql).options.reconnect == 0 && (*m).send_as_is_under == (*m).activity.writer_stamp())
            .then(|| sender(m))
    }
}

/// Turn the client library's own reconnect off on a managed handle. With it on, a statement
/// whose connection broke would be reconnected (to the same node) and sent again inside the
/// client library, which closes the handle through `mysql_close` on the way, freeing this
/// library's state under the statement. `mysql_real_connect` turns it off; a program that
/// turns it on again later gets it turned off before its next statement (the direct path
/// refuses while it is on).
///
/// # Safety
/// `mysql` is a valid handle owned by the calling thread.
pub unsafe fn keep_own_reconnect_off(mysql: *mut MYSQL) {
    // SAFETY: per the contract.
    unsafe { (*mysql).options.reconnect = 0 };
}

/// What any statement on the managed handle `m` is sent with, whatever the policy decided.
///
/// # Safety
/// As for [`as_is`]; the state outlives the returned value.
#[inline]
pub unsafe fn sender(m: *mut Managed) -> Sender {
    Sender { m }
}

/// The managed state of `mysql`, if any. One load.
///
/// # Safety
/// `mysql` is a non-null handle initialised by `mysql_init`, used by the calling thread only
/// (the client library's own rule), and the returned reference is not held across a call that
/// may close the handle.
#[inline]
pub unsafe fn managed<'a>(mysql: *mut MYSQL) -> Option<&'a mut Managed> {
    // SAFETY: per the contract above; the pointer was stored by `attach` and is cleared by
    // `detach` before the box is freed.
    unsafe { managed_ptr(mysql).as_mut() }
}

/// The managed state of `mysql` as a raw pointer (null: not managed). One load.
///
/// # Safety
/// `mysql` is a non-null handle initialised by `mysql_init`.
#[inline]
pub unsafe fn managed_ptr(mysql: *mut MYSQL) -> *mut Managed {
    // SAFETY: per the contract.
    unsafe { (*mysql).unused_0.cast::<Managed>() }
}

/// Make `mysql` managed.
///
/// # Safety
/// As for [`managed`]; `mysql` is not managed yet.
pub unsafe fn attach(real: &Real, mysql: *mut MYSQL, managed: Managed) {
    // SAFETY: a connected handle owned by this thread.
    crate::abort::register(mysql as usize, managed.endpoint, unsafe {
        (real.get_socket)(mysql)
    });
    let boxed = Box::into_raw(Box::new(managed));
    // SAFETY: the caller owns the handle on this thread.
    unsafe {
        (*mysql).unused_0 = boxed.cast::<c_void>();
        // The client library's own reconnect would replay statements and lose the tag; this
        // library reconnects instead.
        keep_own_reconnect_off(mysql);
    }
}

/// Stop managing `mysql` and free its state (before the handle is closed).
///
/// # Safety
/// As for [`managed`].
pub unsafe fn detach(mysql: *mut MYSQL) {
    crate::abort::unregister(mysql as usize);
    // SAFETY: the caller owns the handle on this thread; the pointer came from `attach`.
    unsafe {
        let tag = std::mem::replace(&mut (*mysql).unused_0, std::ptr::null_mut());
        if !tag.is_null() {
            drop(Box::from_raw(tag.cast::<Managed>()));
        }
    }
}

/// Whether the server's last status said a transaction is open on `mysql`.
///
/// # Safety
/// `mysql` is a valid handle owned by the calling thread.
#[inline]
pub unsafe fn in_transaction(mysql: *mut MYSQL) -> bool {
    // SAFETY: per the contract.
    unsafe { (*mysql).server_status & SERVER_STATUS_IN_TRANS != 0 }
}

/// Set the error the program reads with `mysql_errno`/`mysql_error`/`mysql_sqlstate`.
///
/// # Safety
/// `mysql` is a valid handle owned by the calling thread.
pub unsafe fn set_error(mysql: *mut MYSQL, errno: u32, message: &str) {
    // SAFETY: per the contract; the buffers are fixed-size arrays in the handle.
    unsafe {
        let net = &mut (*mysql).net;
        net.last_errno = errno;
        copy_c(&mut net.last_error, message.as_bytes());
        copy_c(&mut net.sqlstate, b"HY000");
    }
}

/// Set a statement's error (`mysql_stmt_errno`/`mysql_stmt_error`).
///
/// # Safety
/// `stmt` is a valid statement owned by the calling thread.
pub unsafe fn set_stmt_error(stmt: *mut MYSQL_STMT, errno: u32, message: &str) {
    // SAFETY: per the contract.
    unsafe {
        (*stmt).last_errno = errno;
        copy_c(&mut (*stmt).last_error, message.as_bytes());
        copy_c(&mut (*stmt).sqlstate, b"HY000");
    }
}

fn copy_c(dst: &mut [c_char], src: &[u8]) {
    let n = src.len().min(dst.len().saturating_sub(1));
    for (d, s) in dst.iter_mut().zip(&src[..n]) {
        *d = *s as c_char;
    }
    if let Some(end) = dst.get_mut(n) {
        *end = 0;
    }
}

/// The message of `CR_SERVER_LOST` as the client library words it.
pub const LOST_MESSAGE: &str = "Lost connection to server during query";
/// The message used when the statement was refused because its transaction was lost.
pub const LOST_TRANSACTION_MESSAGE: &str =
    "Lost connection to server during query (the transaction was lost; end it with ROLLBACK)";

/// Re-establish `mysql` in place on `target`: the client library's own `mariadb_reconnect`,
/// pointed at the writer. It carries over everything set through the API (options with init
/// commands, TLS and timeouts, the current database, the character set, the statement list,
/// the credentials); autocommit is restored here. Prepared statements come back unprepared:
/// they are prepared again at their next execute. Blocks for one connect.
///
/// # Safety
/// `mysql` is a valid, connected (possibly dead) managed handle owned by the calling thread,
/// not inside a lost transaction's statement, and the calling thread is marked inside this
/// library (so the client library's nested calls pass through).
pub unsafe fn reconnect_in_place(real: &Real, mysql: *mut MYSQL, target: &Target) -> bool {
    // SAFETY: per the contract. `host` is a malloc'd string owned by the handle, freed by the
    // library with free(); it is replaced by one from strdup.
    unsafe {
        crate::abort::unregister(mysql as usize);
        let m = &mut *mysql;
        let autocommit_off = m.server_status & SERVER_STATUS_AUTOCOMMIT == 0;
        let tag = m.unused_0;
        let host = libc::strdup(target.host.as_ptr());
        if host.is_null() {
            return false;
        }
        libc::free(m.host.cast::<c_void>());
        m.host = host;
        m.port = u32::from(target.port);
        m.options.reconnect = 1;
        m.server_status &= !SERVER_STATUS_IN_TRANS;
        let failed = with_handshake_bound(mysql, target.handshake_secs, || {
            (real.mariadb_reconnect)(mysql) != 0
        });
        // On success the struct was replaced by the new connection's: put the tag back.
        let m = &mut *mysql;
        m.unused_0 = tag;
        m.options.reconnect = 0;
        if failed {
            return false;
        }
        if autocommit_off && (real.autocommit)(mysql, 0) != 0 {
            return false;
        }
        true
    }
}

/// Run `connect` on `mysql` with its handshake bounded by `secs` when the program set no
/// connect timeout, then put the program's setting back. The client library applies the
/// connect timeout to the TCP connect and to the wait for the server's greeting; without one,
/// a connect to a node that froze after it was chosen would wait for that greeting forever.
///
/// # Safety
/// `mysql` is a valid handle owned by the calling thread; `connect` may replace its contents
/// (as `mariadb_reconnect` does) but leaves it a valid handle.
pub unsafe fn with_handshake_bound<T>(
    mysql: *mut MYSQL,
    secs: u32,
    connect: impl FnOnce() -> T,
) -> T {
    // SAFETY: per the contract.
    let programs = unsafe { (*mysql).options.connect_timeout };
    if programs == 0 {
        // SAFETY: per the contract.
        unsafe { (*mysql).options.connect_timeout = secs };
    }
    let result = connect();
    // SAFETY: per the contract (the handle is valid again after `connect`).
    unsafe { (*mysql).options.connect_timeout = programs };
    result
}

/// Make a handle that was closed and not initialised again usable for a connect, keeping the
/// options the program set since. Programs that reconnect with `mysql_close(m)` followed by
/// `mysql_real_connect(m, …)` on their own `MYSQL` struct (sysbench does) use memory the
/// close released; the client library then crashes inside the connect. A closed handle is
/// recognised by its missing extension (`mysql_init` always allocates one, `mysql_close`
/// frees it and clears the pointer). Costs one `mysql_init` of a scratch handle.
///
/// # Safety
/// `mysql` points to a `MYSQL` struct owned by the calling thread, not managed.
pub unsafe fn revive_if_closed(real: &Real, mysql: *mut MYSQL) {
    // SAFETY: per the contract; the scratch handle is moved into the program's struct, its
    // options replaced by the program's (what it set after the close, on cleared options).
    unsafe {
        if !(*mysql).extension.is_null() {
            return;
        }
        let mut scratch = std::mem::MaybeUninit::<MYSQL>::zeroed();
        if (real.init)(scratch.as_mut_ptr()).is_null() {
            return;
        }
        let mut fresh = scratch.assume_init();
        let set = (*mysql).options;
        if !set.extension.is_null() {
            // The program set extended options: keep them (the scratch's few defaults there,
            // the TLS verification callback, are left to the library's own defaults).
            fresh.options = set;
        } else {
            let defaults = fresh.options;
            fresh.options = set;
            fresh.options.extension = defaults.extension;
            if fresh.options.connect_timeout == 0 {
                fresh.options.connect_timeout = defaults.connect_timeout;
            }
            fresh.options.report_data_truncation = defaults.report_data_truncation;
            fresh.options.client_flag |= defaults.client_flag;
        }
        fresh.free_me = 0;
        std::ptr::write(mysql, fresh);
    }
}

/// Move a managed handle to the current writer, waiting for one up to the monitor's
/// `failover_timeout` (the new writer may refuse a first attempt: tried again until then).
/// On success the policy state is updated; on failure the handle stays lost. Blocks.
///
/// # Safety
/// As for [`reconnect_in_place`].
pub unsafe fn move_to_writer(real: &Real, mysql: *mut MYSQL) -> bool {
    // SAFETY: per the contract (the reference is dropped before the handle is touched).
    let Some(m) = (unsafe { managed(mysql) }) else {
        return false;
    };
    if !m.monitor.is_current_process() {
        // A forked child: its own monitor, whose generations are its own.
        match crate::current_monitor() {
            Some(mine) => m.adopt(mine),
            None => return false,
        }
    }
    let monitor = m.monitor.clone();
    let deadline = Instant::now() + monitor.failover_timeout;
    if m.state.refused_read_only && monitor.now().generation == m.state.generation {
        // The node said it is read-only: wait for the monitor to name another writer.
        monitor.await_change(m.state.generation, deadline);
    }
    while let Some(target) = monitor.writer_by(deadline) {
        // SAFETY: per the contract.
        if unsafe { reconnect_in_place(real, mysql, &target) } {
            // SAFETY: the handle is still ours and still managed (the tag was restored).
            if let Some(m) = unsafe { managed(mysql) } {
                m.moved_to(target.index, target.generation);
            }
            // SAFETY: the handle just reconnected, owned by this thread.
            crate::abort::register(mysql as usize, target.index, unsafe {
                (real.get_socket)(mysql)
            });
            return true;
        }
        monitor.report(target.index, false);
        monitor.await_change(
            target.generation,
            deadline.min(Instant::now() + RETRY_PAUSE),
        );
        if Instant::now() >= deadline {
            break;
        }
    }
    false
}

/// How long a failed move waits for news before trying the writer again.
const RETRY_PAUSE: std::time::Duration = std::time::Duration::from_millis(20);

/// The error number of the last call on `mysql` (`mysql_errno`). Never blocks.
///
/// # Safety
/// `mysql` is a valid handle owned by the calling thread.
pub unsafe fn errno(real: &Real, mysql: *mut MYSQL) -> u32 {
    // SAFETY: per the contract.
    unsafe { (real.errno)(mysql) }
}

/// A copy of `count` bindings starting at `binds` (NULL or 0: none).
///
/// # Safety
/// `binds` points to at least `count` bindings, or is NULL.
pub unsafe fn copy_binds(binds: *const MYSQL_BIND, count: usize) -> Option<Vec<MYSQL_BIND>> {
    if binds.is_null() || count == 0 {
        return None;
    }
    // SAFETY: per the contract; MYSQL_BIND is plain data (Copy).
    Some(unsafe { std::slice::from_raw_parts(binds, count) }.to_vec())
}

/// Read the NUL-terminated C string `s` (NULL: `None`).
///
/// # Safety
/// `s` is NULL or NUL-terminated.
pub unsafe fn c_str<'a>(s: *const c_char) -> Option<&'a str> {
    if s.is_null() {
        return None;
    }
    // SAFETY: per the contract.
    unsafe { CStr::from_ptr(s) }.to_str().ok()
}
