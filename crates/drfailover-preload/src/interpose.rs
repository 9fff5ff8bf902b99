//! The exported `mysql_*` functions: the thin edge between the program and the policy.
//!
//! Each export passes straight to the client library's own function (found by `real`) when
//! the handle is not managed, when the calling thread is already inside this library (the
//! client library calling its own exported functions, the monitor's threads) or when the
//! library is not configured. Managed handles go through [`drive`], which asks
//! [`crate::policy`] what to do; statements whose handle's writer stamp is current skip it
//! (see [`statement`]). No panic unwinds into the program: every managed path runs
//! under `catch_unwind`; a panic before anything was sent falls back to the real function,
//! one on a statement path reports 2013 (the statement may have been sent).
//!
//! Blocking: a managed call blocks like the real one, plus, during a failover, up to the
//! DSN's `failover_timeout_ms` waiting for a writer.

use std::ffi::{c_char, c_int, c_uint, c_ulong};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::time::Instant;

use mysqlclient_sys::{my_bool, MYSQL, MYSQL_BIND, MYSQL_STMT};

use crate::handle::{
    self, attach, c_str, copy_binds, detach, in_transaction, managed, move_to_writer, set_error,
    set_stmt_error, Managed, LOST_MESSAGE, LOST_TRANSACTION_MESSAGE,
};
use crate::policy::{
    self, classify, AfterFailure, BeforeSend, FailureClass, StatementKind, CR_CONN_HOST_ERROR,
    CR_SERVER_LOST,
};
use crate::real::{real, Real};
use crate::{inside, is_drfailover_thread, settings, statement, Inside};

/// One statement-like call on a managed handle, as [`drive`] needs it.
trait Call {
    /// Hand it to the client library. 0: success.
    fn send(&mut self, real: &Real) -> c_int;
    /// The error number of the last failure.
    fn errno(&self, real: &Real) -> u32;
    /// Report `errno` with `message` to the program (where it reads this call's errors).
    fn fail(&mut self, errno: u32, message: &str);
    /// What it is, for transactions.
    fn kind(&self) -> StatementKind;
    /// The handle it runs on.
    fn handle(&self) -> *mut MYSQL;
}

/// Run `call` on the managed handle `mysql` under the policy. 0: success.
///
/// # Safety
/// `mysql` is a managed handle owned by the calling thread, which is marked inside.
unsafe fn drive(real: &Real, mysql: *mut MYSQL, call: &mut impl Call) -> c_int {
    // SAFETY: per the contract (whole body); references to the managed state are taken
    // afresh after every call that may replace the handle's contents.
    unsafe {
        let Some(m) = managed(mysql) else {
            return call.send(real);
        };
        handle::keep_own_reconnect_off(mysql);
        let decision =
            policy::before_send(m.state(), in_transaction(mysql), m.monitor().now(), || {
                call.kind()
            });
        match decision {
            BeforeSend::Send => {}
            BeforeSend::MoveThenSend => {
                if !move_to_writer(real, mysql) {
                    call.fail(CR_SERVER_LOST, LOST_MESSAGE);
                    return 1;
                }
            }
            BeforeSend::FailLostTransaction => {
                call.fail(CR_SERVER_LOST, LOST_TRANSACTION_MESSAGE);
                return 1;
            }
            BeforeSend::EndLostTransaction { succeed } => {
                m.update(policy::end_lost_transaction);
                if !succeed {
                    call.fail(CR_SERVER_LOST, LOST_TRANSACTION_MESSAGE);
                    return 1;
                }
                // ROLLBACK: run it on a fresh connection (it has nothing to undo there), so
                // the program gets a genuine success with the library's usual result state.
                if !move_to_writer(real, mysql) {
                    call.fail(CR_SERVER_LOST, LOST_MESSAGE);
                    return 1;
                }
            }
        }
        let in_tx = in_transaction(mysql);
        let rc = send_counted(real, mysql, call);
        if rc == 0 {
            return 0;
        }
        settle(real, mysql, call, rc, in_tx)
    }
}

/// After `call` failed with `rc` (the server's last status before it said `in_tx`): report,
/// retry once, wait for a new writer or mark the handle lost, as the policy decides.
///
/// # Safety
/// As for [`drive`].
unsafe fn settle(
    real: &Real,
    mysql: *mut MYSQL,
    call: &mut impl Call,
    mut rc: c_int,
    mut in_tx: bool,
) -> c_int {
    // SAFETY: per the contract (whole body); references to the managed state are taken
    // afresh after every call that may replace the handle's contents.
    unsafe {
        let mut retried = policy::Retried::default();
        loop {
            let errno = call.errno(real);
            let Some(m) = managed(mysql) else { return rc };
            match policy::after_failure(errno, call.kind(), in_tx, retried) {
                AfterFailure::Return => return rc,
                AfterFailure::MoveAndRetry => {
                    retried.moved = true;
                    m.monitor().report(m.endpoint(), false);
                    m.update(|s| policy::mark_lost(s, false));
                    if !move_to_writer(real, mysql) {
                        call.fail(CR_SERVER_LOST, LOST_MESSAGE);
                        return rc;
                    }
                }
                AfterFailure::AwaitWriterAndRetry => {
                    retried.awaited = true;
                    let monitor = m.monitor().clone();
                    monitor.report(m.endpoint(), true);
                    let seen = m.state().generation;
                    monitor.await_change(seen, Instant::now() + monitor.failover_timeout);
                    if monitor.now().generation == seen {
                        return rc; // still the writer: its refusal stands.
                    }
                    if let Some(m) = managed(mysql) {
                        m.update(|s| policy::mark_lost(s, false));
                    }
                    if !move_to_writer(real, mysql) {
                        call.fail(CR_SERVER_LOST, LOST_MESSAGE);
                        return rc;
                    }
                }
                AfterFailure::Refused { transaction } => {
                    m.monitor().report(m.endpoint(), true);
                    m.update(|s| policy::mark_refused(s, transaction));
                    call.fail(CR_SERVER_LOST, LOST_TRANSACTION_MESSAGE);
                    return rc;
                }
                AfterFailure::Lost { transaction } => {
                    m.monitor().report(m.endpoint(), false);
                    m.update(|s| policy::mark_lost(s, transaction));
                    if errno != CR_SERVER_LOST {
                        call.fail(CR_SERVER_LOST, LOST_MESSAGE);
                    }
                    return rc;
                }
            }
            in_tx = in_transaction(mysql);
            rc = send_counted(real, mysql, call);
            if rc == 0 {
                return 0;
            }
        }
    }
}

/// A statement on the managed handle `mysql` (whose state is `m`): while its connection's
/// writer and generation are the current ones and the policy has nothing to do
/// ([`handle::as_is`]: one atomic load, two comparisons) it goes straight to the client library,
/// counted for the monitor, without entering this library (no thread-local access, no
/// `catch_unwind`). Anything else, and any failure, goes through [`drive`]/[`settle`] under
/// `catch_unwind`, out of line.
///
/// A nested call (the client library calling its own exported function while this library
/// runs on the thread, say the `SET NAMES` of the program's `mysql_set_character_set`) may
/// take the direct path too: only when the handle could send as it is (never during a move),
/// and a failure then returns to the caller in this library, which settles it.
///
/// # Safety
/// `mysql` is managed (its state is `m`) and owned by the calling thread.
#[inline]
unsafe fn statement(mysql: *mut MYSQL, m: *mut Managed, mut call: impl Call) -> c_int {
    // SAFETY: per the contract.
    unsafe {
        let Some(send) = handle::as_is(mysql, m) else {
            return unsettled_statement(mysql, m, call);
        };
        let in_tx = in_transaction(mysql);
        // SAFETY: nothing `send` calls closes the handle.
        let rc = send.counted(|| call.send(send.real()));
        if rc != 0 {
            return settle_failure(call, rc, in_tx);
        }
        rc
    }
}

/// A statement whose handle's state or writer changed: under the policy, out of line; a
/// nested call passes straight through.
///
/// # Safety
/// As for [`statement`].
#[cold]
#[inline(never)]
unsafe fn unsettled_statement(mysql: *mut MYSQL, m: *mut Managed, mut call: impl Call) -> c_int {
    // SAFETY: per the contract.
    unsafe {
        let real = handle::sender(m).real();
        if inside() {
            return call.send(real);
        }
        managed_call(real, mysql, &mut call)
    }
}

/// [`settle`] under `catch_unwind` with the thread marked inside: out of line and cold, so
/// that the statement path above stays a short function (fewer registers saved and
/// restored on every statement). A nested call's failure is its caller's to settle.
///
/// # Safety
/// As for [`drive`].
#[cold]
#[inline(never)]
unsafe fn settle_failure(mut call: impl Call, rc: c_int, in_tx: bool) -> c_int {
    let mysql = call.handle();
    // SAFETY: per the contract (a failed statement leaves its handle as it was).
    let m = unsafe { state_of(mysql) };
    if m.is_null() || inside() {
        return rc;
    }
    // SAFETY: a managed handle owned by this thread.
    let real = unsafe { handle::sender(m) }.real();
    // SAFETY: per the contract.
    managed_call_with(&mut call, |call| unsafe {
        settle(real, mysql, call, rc, in_tx)
    })
}

/// `call` sent on `mysql`, counted as a statement in flight on the writer when the handle is
/// managed ([`handle::Sender::counted`]: one relaxed atomic add before, one after).
///
/// # Safety
/// `mysql` is a handle owned by the calling thread.
unsafe fn send_counted(real: &Real, mysql: *mut MYSQL, call: &mut impl Call) -> c_int {
    // SAFETY: per the contract.
    let m = unsafe { handle::managed_ptr(mysql) };
    if m.is_null() {
        return call.send(real);
    }
    // SAFETY: a managed handle owned by this thread; nothing `send` calls closes it.
    unsafe { handle::sender(m).counted(|| call.send(real)) }
}

/// A text statement (`mysql_real_query`, `mysql_query`).
struct TextQuery {
    mysql: *mut MYSQL,
    sql: *const c_char,
    length: c_ulong,
}

impl Call for TextQuery {
    fn send(&mut self, real: &Real) -> c_int {
        // SAFETY: the program's arguments, passed on unchanged.
        unsafe { (real.real_query)(self.mysql, self.sql, self.length) }
    }
    fn errno(&self, real: &Real) -> u32 {
        // SAFETY: a valid handle.
        unsafe { handle::errno(real, self.mysql) }
    }
    fn fail(&mut self, errno: u32, message: &str) {
        // SAFETY: a valid handle owned by this thread.
        unsafe { set_error(self.mysql, errno, message) }
    }
    fn handle(&self) -> *mut MYSQL {
        self.mysql
    }
    fn kind(&self) -> StatementKind {
        if self.sql.is_null() {
            return StatementKind::Plain;
        }
        // Only the first bytes matter; a bounded look.
        let len = usize::try_from(self.length).unwrap_or(usize::MAX).min(256);
        // SAFETY: the program promises `length` readable bytes at `sql`.
        statement::kind_of(unsafe { std::slice::from_raw_parts(self.sql.cast::<u8>(), len) })
    }
}

/// A call on the handle other than a text statement (`mysql_commit`, `mysql_select_db`, …).
struct HandleCall<F: FnMut(&Real, *mut MYSQL) -> c_int> {
    mysql: *mut MYSQL,
    kind: StatementKind,
    send: F,
}

impl<F: FnMut(&Real, *mut MYSQL) -> c_int> Call for HandleCall<F> {
    fn send(&mut self, real: &Real) -> c_int {
        (self.send)(real, self.mysql)
    }
    fn errno(&self, real: &Real) -> u32 {
        // SAFETY: a valid handle.
        unsafe { handle::errno(real, self.mysql) }
    }
    fn fail(&mut self, errno: u32, message: &str) {
        // SAFETY: a valid handle owned by this thread.
        unsafe { set_error(self.mysql, errno, message) }
    }
    fn kind(&self) -> StatementKind {
        self.kind
    }
    fn handle(&self) -> *mut MYSQL {
        self.mysql
    }
}

/// A prepared statement's execute: prepared again first when a move left it unprepared.
struct StmtExecute {
    /// A statement of a managed handle (moves keep the statement's handle pointer: the
    /// handle is reconnected in place).
    stmt: *mut MYSQL_STMT,
}

impl Call for StmtExecute {
    fn send(&mut self, real: &Real) -> c_int {
        // SAFETY: a valid statement of a managed handle owned by this thread.
        unsafe {
            if stmt_unprepared(self.stmt) {
                return prepare_again_and_execute(real, self.handle(), self.stmt);
            }
            (real.stmt_execute)(self.stmt)
        }
    }
    fn errno(&self, real: &Real) -> u32 {
        // SAFETY: a valid statement.
        unsafe { (real.stmt_errno)(self.stmt) }
    }
    fn fail(&mut self, errno: u32, message: &str) {
        // SAFETY: a valid statement owned by this thread.
        unsafe { set_stmt_error(self.stmt, errno, message) }
    }
    fn kind(&self) -> StatementKind {
        StatementKind::Plain
    }
    fn handle(&self) -> *mut MYSQL {
        // SAFETY: a valid statement.
        unsafe { (*self.stmt).mysql }
    }
}

/// Whether a move to a new connection left `stmt` unprepared.
///
/// # Safety
/// `stmt` is a valid statement.
unsafe fn stmt_unprepared(stmt: *mut MYSQL_STMT) -> bool {
    // SAFETY: reads the state as the integer it is (0 = MYSQL_STMT_INITTED).
    unsafe { std::ptr::addr_of!((*stmt).state).cast::<u32>().read() == 0 }
}

/// Prepare `stmt` again ([`prepare_again`]), then execute it.
///
/// # Safety
/// As for [`prepare_again`].
#[cold]
#[inline(never)]
unsafe fn prepare_again_and_execute(
    real: &Real,
    mysql: *mut MYSQL,
    stmt: *mut MYSQL_STMT,
) -> c_int {
    // SAFETY: per the contract.
    unsafe {
        if let Some(rc) = prepare_again(real, mysql, stmt) {
            return rc;
        }
        (real.stmt_execute)(stmt)
    }
}

/// Prepare `stmt` again from its record and re-apply its bindings. `Some(rc)`: it failed.
/// Without a record (nothing to prepare from) the execute goes to the client library as it
/// is, which reports the statement unprepared.
///
/// # Safety
/// `stmt` belongs to the managed handle `mysql`, both owned by this thread.
unsafe fn prepare_again(real: &Real, mysql: *mut MYSQL, stmt: *mut MYSQL_STMT) -> Option<c_int> {
    // SAFETY: per the contract.
    unsafe {
        if mysql.is_null() {
            return None;
        }
        let m = managed(mysql)?;
        let record = m.statements.get_mut(&(stmt as usize))?;
        let len = c_ulong::try_from(record.sql.len()).ok()?;
        let rc = (real.stmt_prepare)(stmt, record.sql.as_ptr().cast::<c_char>(), len);
        if rc != 0 {
            return Some(rc);
        }
        if let Some(params) = record.params.as_mut() {
            if (real.stmt_bind_param)(stmt, params.as_mut_ptr()) != 0 {
                return Some(1);
            }
        }
        if let Some(results) = record.results.as_mut() {
            if (real.stmt_bind_result)(stmt, results.as_mut_ptr()) != 0 {
                return Some(1);
            }
        }
        None
    }
}

/// Run `body` with the thread marked inside; a panic gives `on_panic()`.
fn guarded<T>(body: impl FnOnce() -> T, on_panic: impl FnOnce() -> T) -> T {
    let _inside = Inside::enter();
    catch_unwind(AssertUnwindSafe(body)).unwrap_or_else(|_| on_panic())
}

/// Whether calls on `mysql` go through the policy: a managed handle, and not a nested call.
///
/// # Safety
/// `mysql` is NULL or a handle initialised by `mysql_init`.
#[inline]
unsafe fn is_managed(mysql: *mut MYSQL) -> bool {
    // SAFETY: per the contract; the tag is one load.
    !mysql.is_null() && unsafe { !(*mysql).unused_0.is_null() } && !inside()
}

/// A statement-path call on a managed handle, with the panic fallback of statements.
///
/// # Safety
/// `mysql` is managed and owned by the calling thread.
#[cold]
#[inline(never)]
unsafe fn managed_call(real: &Real, mysql: *mut MYSQL, call: &mut impl Call) -> c_int {
    // SAFETY: per the contract.
    managed_call_with(call, |call| unsafe { drive(real, mysql, call) })
}

/// Run `body` inside this library under `catch_unwind`; a panic reports 2013 on the call
/// (the statement may have been sent, so it is never sent again).
fn managed_call_with<C: Call>(call: &mut C, body: impl FnOnce(&mut C) -> c_int) -> c_int {
    let _inside = Inside::enter();
    match catch_unwind(AssertUnwindSafe(|| body(&mut *call))) {
        Ok(rc) => rc,
        Err(_) => {
            call.fail(CR_SERVER_LOST, LOST_MESSAGE);
            1
        }
    }
}

// ---------------------------------------------------------------------------------------
// Connection lifecycle

/// `mysql_real_connect`: a managed endpoint is connected to the current writer.
///
/// # Safety
/// The client library's contract for `mysql_real_connect`.
#[no_mangle]
pub unsafe extern "C" fn mysql_real_connect(
    mysql: *mut MYSQL,
    host: *const c_char,
    user: *const c_char,
    passwd: *const c_char,
    db: *const c_char,
    port: c_uint,
    unix_socket: *const c_char,
    client_flag: c_ulong,
) -> *mut MYSQL {
    let Some(real) = real() else {
        return std::ptr::null_mut();
    };
    let pass = || {
        // SAFETY: the program's arguments, passed on unchanged.
        unsafe {
            (real.real_connect)(
                mysql,
                host,
                user,
                passwd,
                db,
                port,
                unix_socket,
                client_flag,
            )
        }
    };
    // SAFETY: a handle from mysql_init (the library's contract); the tag is one load.
    if mysql.is_null() || inside() || unsafe { !(*mysql).unused_0.is_null() } {
        return pass();
    }
    let Some(settings) = settings() else {
        return pass();
    };
    // SAFETY: NULL or NUL-terminated, per the library's contract.
    let host_name = unsafe { c_str(host) };
    let managed_endpoint = u16::try_from(port)
        .ok()
        .is_some_and(|p| settings.manages(host_name, p));
    if !managed_endpoint || is_drfailover_thread() {
        return pass();
    }
    let shown = host_name.unwrap_or("").to_owned();
    guarded(
        || {
            let Some(monitor) = crate::current_monitor() else {
                return pass();
            };
            // SAFETY: the program's handle, owned by this thread, not managed.
            unsafe { handle::revive_if_closed(real, mysql) };
            let deadline = Instant::now() + monitor.failover_timeout;
            loop {
                let Some(target) = monitor.writer_by(deadline) else {
                    let message = format!(
                        "Can't connect to server on '{shown}' (no writer among the drfailover endpoints within {} ms)",
                        monitor.failover_timeout.as_millis()
                    );
                    // SAFETY: the program's handle, owned by this thread.
                    unsafe { set_error(mysql, CR_CONN_HOST_ERROR, &message) };
                    return std::ptr::null_mut();
                };
                // SAFETY: the program's handle and credentials; the writer's address.
                let connected = unsafe {
                    handle::with_handshake_bound(mysql, target.handshake_secs, || {
                        (real.real_connect)(
                            mysql,
                            target.host.as_ptr(),
                            user,
                            passwd,
                            db,
                            c_uint::from(target.port),
                            std::ptr::null(),
                            client_flag,
                        )
                    })
                };
                if !connected.is_null() {
                    let managed =
                        Managed::new(monitor.clone(), real, target.index, target.generation);
                    // SAFETY: the handle just connected, owned by this thread, not managed.
                    unsafe { attach(real, mysql, managed) };
                    return connected;
                }
                // SAFETY: the program's handle.
                let errno = unsafe { handle::errno(real, mysql) };
                if !matches!(classify_connect(errno), ConnectFailure::TryAgain) {
                    return connected; // the program's own problem (credentials, database).
                }
                monitor.report(target.index, false);
                monitor.await_change(
                    target.generation,
                    deadline.min(Instant::now() + std::time::Duration::from_millis(20)),
                );
                if Instant::now() >= deadline {
                    return connected;
                }
            }
        },
        pass,
    )
}

enum ConnectFailure {
    /// The server refused the program itself (credentials, unknown database, TLS): final.
    Final,
    /// The node went away or refused for now: try the writer again.
    TryAgain,
}

fn classify_connect(errno: u32) -> ConnectFailure {
    match errno {
        // Access denied, unknown database, account locked, TLS required/failed.
        1044 | 1045 | 1049 | 1698 | 3118 | 2026 => ConnectFailure::Final,
        _ => ConnectFailure::TryAgain,
    }
}

/// `mysql_close`: forgets the handle's managed state, then closes. Never blocks longer than
/// the client library's own close.
///
/// # Safety
/// The client library's contract for `mysql_close`.
#[no_mangle]
pub unsafe extern "C" fn mysql_close(mysql: *mut MYSQL) {
    let Some(real) = real() else { return };
    // SAFETY: per the library's contract (NULL accepted).
    if unsafe { is_managed(mysql) } {
        // SAFETY: the handle is being closed by its owner.
        guarded(|| unsafe { detach(mysql) }, || ());
    }
    // SAFETY: the program's argument.
    unsafe { (real.close)(mysql) }
}

/// `mysql_ping`: 0 while a writer exists, moving the handle there when needed.
///
/// # Safety
/// The client library's contract for `mysql_ping`.
#[no_mangle]
pub unsafe extern "C" fn mysql_ping(mysql: *mut MYSQL) -> c_int {
    let Some(real) = real() else { return 1 };
    // SAFETY: per the library's contract.
    if !unsafe { is_managed(mysql) } {
        // SAFETY: the program's argument.
        return unsafe { (real.ping)(mysql) };
    }
    // SAFETY: a managed handle owned by this thread.
    let moved_or_lost = |rc: c_int| unsafe {
        if move_to_writer(real, mysql) {
            0
        } else {
            set_error(mysql, CR_SERVER_LOST, LOST_MESSAGE);
            if rc == 0 {
                1
            } else {
                rc
            }
        }
    };
    guarded(
        // SAFETY: a managed handle owned by this thread.
        || unsafe {
            let Some(m) = managed(mysql) else {
                return (real.ping)(mysql);
            };
            handle::keep_own_reconnect_off(mysql);
            let in_tx = in_transaction(mysql);
            if policy::ping_moves(m.state(), in_tx, m.monitor().now()) {
                return moved_or_lost(0);
            }
            let rc = (real.ping)(mysql);
            if rc == 0 {
                return 0;
            }
            let errno = handle::errno(real, mysql);
            match classify(errno) {
                FailureClass::NeverSent | FailureClass::LostAfterSend => {
                    let Some(m) = managed(mysql) else { return rc };
                    m.monitor().report(m.endpoint(), false);
                    m.update(|s| policy::mark_lost(s, in_tx));
                    moved_or_lost(rc)
                }
                _ => rc,
            }
        },
        // SAFETY: the program's argument.
        || unsafe { (real.ping)(mysql) },
    )
}

// ---------------------------------------------------------------------------------------
// Statements

/// `mysql_real_query`, under the policy on a managed handle.
///
/// # Safety
/// The client library's contract for `mysql_real_query`.
#[no_mangle]
pub unsafe extern "C" fn mysql_real_query(
    mysql: *mut MYSQL,
    sql: *const c_char,
    length: c_ulong,
) -> c_int {
    // SAFETY: per the library's contract.
    let m = unsafe { state_of(mysql) };
    if !m.is_null() {
        let call = TextQuery { mysql, sql, length };
        // SAFETY: a managed handle owned by this thread.
        return unsafe { statement(mysql, m, call) };
    }
    let Some(real) = real() else { return 1 };
    // SAFETY: the program's arguments.
    unsafe { (real.real_query)(mysql, sql, length) }
}

/// `mysql_query`, under the policy on a managed handle.
///
/// # Safety
/// The client library's contract for `mysql_query`.
#[no_mangle]
pub unsafe extern "C" fn mysql_query(mysql: *mut MYSQL, sql: *const c_char) -> c_int {
    // SAFETY: per the library's contract.
    let m = unsafe { state_of(mysql) };
    if !m.is_null() && !sql.is_null() {
        // SAFETY: a NUL-terminated statement, per the library's contract.
        let length = unsafe { libc::strlen(sql) } as c_ulong;
        let call = TextQuery { mysql, sql, length };
        // SAFETY: a managed handle owned by this thread.
        return unsafe { statement(mysql, m, call) };
    }
    let Some(real) = real() else { return 1 };
    // SAFETY: the program's arguments.
    unsafe { (real.query)(mysql, sql) }
}

/// The managed state of `mysql` (null: NULL or not managed). One load.
///
/// # Safety
/// `mysql` is NULL or a handle initialised by `mysql_init`.
#[inline]
unsafe fn state_of(mysql: *mut MYSQL) -> *mut Managed {
    if mysql.is_null() {
        return std::ptr::null_mut();
    }
    // SAFETY: per the contract.
    unsafe { handle::managed_ptr(mysql) }
}

/// Run a handle-level call (`mysql_commit`, …) under the policy when managed.
///
/// # Safety
/// `mysql` is NULL or a handle owned by the calling thread.
unsafe fn handle_call(
    mysql: *mut MYSQL,
    kind: StatementKind,
    send: impl FnMut(&Real, *mut MYSQL) -> c_int,
) -> c_int {
    let Some(real) = real() else { return 1 };
    let mut call = HandleCall { mysql, kind, send };
    // SAFETY: per the contract.
    if !unsafe { is_managed(mysql) } {
        return call.send(real);
    }
    // SAFETY: a managed handle owned by this thread.
    unsafe { managed_call(real, mysql, &mut call) }
}

/// `mysql_commit`: fails with 2013 after its transaction was lost.
///
/// # Safety
/// The client library's contract for `mysql_commit`.
#[no_mangle]
pub unsafe extern "C" fn mysql_commit(mysql: *mut MYSQL) -> my_bool {
    // SAFETY: the program's argument; the callback calls the real function.
    let rc = unsafe {
        handle_call(mysql, StatementKind::Commit, |r, m| {
            c_int::from((r.commit)(m))
        })
    };
    my_bool::from(rc != 0)
}

/// `mysql_rollback`: ends a lost transaction with success.
///
/// # Safety
/// The client library's contract for `mysql_rollback`.
#[no_mangle]
pub unsafe extern "C" fn mysql_rollback(mysql: *mut MYSQL) -> my_bool {
    // SAFETY: the program's argument; the callback calls the real function.
    let rc = unsafe {
        handle_call(mysql, StatementKind::Rollback, |r, m| {
            c_int::from((r.rollback)(m))
        })
    };
    my_bool::from(rc != 0)
}

/// `mysql_autocommit`: turning it on commits an open transaction.
///
/// # Safety
/// The client library's contract for `mysql_autocommit`.
#[no_mangle]
pub unsafe extern "C" fn mysql_autocommit(mysql: *mut MYSQL, mode: my_bool) -> my_bool {
    let kind = if mode != 0 {
        StatementKind::Commit
    } else {
        StatementKind::Plain
    };
    // SAFETY: the program's arguments; the callback calls the real function.
    let rc = unsafe { handle_call(mysql, kind, |r, m| c_int::from((r.autocommit)(m, mode))) };
    my_bool::from(rc != 0)
}

/// `mysql_select_db`: the database is carried over to every new connection.
///
/// # Safety
/// The client library's contract for `mysql_select_db`.
#[no_mangle]
pub unsafe extern "C" fn mysql_select_db(mysql: *mut MYSQL, db: *const c_char) -> c_int {
    // SAFETY: the program's arguments; the callback calls the real function.
    unsafe { handle_call(mysql, StatementKind::Session, |r, m| (r.select_db)(m, db)) }
}

/// `mysql_set_character_set`: the character set is carried over to every new connection.
///
/// # Safety
/// The client library's contract for `mysql_set_character_set`.
#[no_mangle]
pub unsafe extern "C" fn mysql_set_character_set(
    mysql: *mut MYSQL,
    charset: *const c_char,
) -> c_int {
    // SAFETY: the program's arguments; the callback calls the real function.
    unsafe {
        handle_call(mysql, StatementKind::Session, |r, m| {
            (r.set_character_set)(m, charset)
        })
    }
}

// ---------------------------------------------------------------------------------------
// Prepared statements

/// The managed handle of `stmt`, if any (and not a nested call).
///
/// # Safety
/// `stmt` is NULL or a statement from `mysql_stmt_init`, owned by the calling thread.
unsafe fn stmt_handle(stmt: *mut MYSQL_STMT) -> Option<*mut MYSQL> {
    if stmt.is_null() {
        return None;
    }
    // SAFETY: per the contract; `mysql` is NULL once its handle was closed.
    let mysql = unsafe { (*stmt).mysql };
    // SAFETY: a handle the statement belongs to.
    unsafe { is_managed(mysql) }.then_some(mysql)
}

/// `mysql_stmt_prepare`: the text is kept to prepare it again on a new connection.
///
/// # Safety
/// The client library's contract for `mysql_stmt_prepare`.
#[no_mangle]
pub unsafe extern "C" fn mysql_stmt_prepare(
    stmt: *mut MYSQL_STMT,
    sql: *const c_char,
    length: c_ulong,
) -> c_int {
    let Some(real) = real() else { return 1 };
    // SAFETY: per the library's contract.
    let Some(mysql) = (unsafe { stmt_handle(stmt) }) else {
        // SAFETY: the program's arguments.
        return unsafe { (real.stmt_prepare)(stmt, sql, length) };
    };
    let mut call = HandleCall {
        mysql,
        kind: StatementKind::Session,
        // SAFETY: the program's arguments.
        send: |r: &Real, _| unsafe { (r.stmt_prepare)(stmt, sql, length) },
    };
    // SAFETY: a managed handle owned by this thread.
    let rc = unsafe { managed_call(real, mysql, &mut call) };
    if rc == 0 && !sql.is_null() {
        let _inside = Inside::enter();
        // SAFETY: `length` readable bytes at `sql`, per the library's contract.
        let text = unsafe { std::slice::from_raw_parts(sql.cast::<u8>(), length as usize) };
        // SAFETY: the managed handle, owned by this thread.
        if let Some(m) = unsafe { managed(mysql) } {
            let record = m.statements.entry(stmt as usize).or_default();
            record.sql = text.to_vec();
            record.params = None;
            record.results = None;
        }
    }
    rc
}

/// `mysql_stmt_bind_param`: the bindings are kept to re-apply after preparing again.
///
/// # Safety
/// The client library's contract for `mysql_stmt_bind_param`.
#[no_mangle]
pub unsafe extern "C" fn mysql_stmt_bind_param(
    stmt: *mut MYSQL_STMT,
    bind: *mut MYSQL_BIND,
) -> my_bool {
    let Some(real) = real() else { return 1 };
    // SAFETY: the program's arguments.
    let rc = unsafe { (real.stmt_bind_param)(stmt, bind) };
    if rc == 0 {
        // SAFETY: per the library's contract; `bind` holds one binding per parameter.
        unsafe { remember_binds(real, stmt, bind, true) };
    }
    rc
}

/// `mysql_stmt_bind_result`: the bindings are kept to re-apply after preparing again.
///
/// # Safety
/// The client library's contract for `mysql_stmt_bind_result`.
#[no_mangle]
pub unsafe extern "C" fn mysql_stmt_bind_result(
    stmt: *mut MYSQL_STMT,
    bind: *mut MYSQL_BIND,
) -> my_bool {
    let Some(real) = real() else { return 1 };
    // SAFETY: the program's arguments.
    let rc = unsafe { (real.stmt_bind_result)(stmt, bind) };
    if rc == 0 {
        // SAFETY: per the library's contract; `bind` holds one binding per result column.
        unsafe { remember_binds(real, stmt, bind, false) };
    }
    rc
}

/// Keep a copy of bindings just accepted by the library.
///
/// # Safety
/// `bind` holds as many bindings as the statement has parameters (`params`) or columns.
unsafe fn remember_binds(real: &Real, stmt: *mut MYSQL_STMT, bind: *mut MYSQL_BIND, params: bool) {
    // SAFETY: per the contract.
    let Some(mysql) = (unsafe { stmt_handle(stmt) }) else {
        return;
    };
    guarded(
        // SAFETY: per the contract; the managed handle is owned by this thread.
        || unsafe {
            let count = if params {
                (real.stmt_param_count)(stmt) as usize
            } else {
                (real.stmt_field_count)(stmt) as usize
            };
            let copy = copy_binds(bind, count);
            if let Some(record) =
                managed(mysql).and_then(|m| m.statements.get_mut(&(stmt as usize)))
            {
                if params {
                    record.params = copy;
                } else {
                    record.results = copy;
                }
            }
        },
        || (),
    );
}

/// `mysql_stmt_execute`: a never-sent execute is prepared again on the writer and sent once;
/// one whose outcome is unknown fails with 2013 and is not re-run.
///
/// # Safety
/// The client library's contract for `mysql_stmt_execute`.
#[no_mangle]
pub unsafe extern "C" fn mysql_stmt_execute(stmt: *mut MYSQL_STMT) -> c_int {
    if !stmt.is_null() {
        // SAFETY: per the library's contract; `mysql` is NULL once its handle was closed.
        let mysql = unsafe { (*stmt).mysql };
        // SAFETY: the statement's handle.
        let m = unsafe { state_of(mysql) };
        if !m.is_null() {
            let call = StmtExecute { stmt };
            // SAFETY: a managed handle owned by this thread.
            return unsafe { statement(mysql, m, call) };
        }
    }
    let Some(real) = real() else { return 1 };
    // SAFETY: the program's argument.
    unsafe { (real.stmt_execute)(stmt) }
}

/// `mysql_stmt_close`: forgets the statement's record.
///
/// # Safety
/// The client library's contract for `mysql_stmt_close`.
#[no_mangle]
pub unsafe extern "C" fn mysql_stmt_close(stmt: *mut MYSQL_STMT) -> my_bool {
    let Some(real) = real() else { return 1 };
    // SAFETY: per the library's contract.
    if let Some(mysql) = unsafe { stmt_handle(stmt) } {
        guarded(
            // SAFETY: the managed handle, owned by this thread.
            || unsafe {
                if let Some(m) = managed(mysql) {
                    m.statements.remove(&(stmt as usize));
                }
            },
            || (),
        );
    }
    // SAFETY: the program's argument.
    unsafe { (real.stmt_close)(stmt) }
}
