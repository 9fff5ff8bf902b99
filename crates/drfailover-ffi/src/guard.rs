//! The boundary: panics become `DR_E_PANIC`, pointers and strings are checked in one place.

use std::ffi::CStr;
use std::os::raw::c_char;
use std::panic::{catch_unwind, AssertUnwindSafe};

use crate::error;
use crate::status::dr_status;

/// A failure to report to C.
pub(crate) struct Failure {
    pub code: dr_status,
    pub mysql_errno: u32,
    pub sqlstate: String,
    pub message: String,
}

impl Failure {
    pub fn new(code: dr_status, message: impl Into<String>) -> Self {
        Failure {
            code,
            mysql_errno: 0,
            sqlstate: "HY000".into(),
            message: message.into(),
        }
    }

    pub fn invalid(message: impl Into<String>) -> Self {
        Failure::new(dr_status::DR_E_INVALID_ARGUMENT, message)
    }
}

impl From<drfailover_conn::Error> for Failure {
    fn from(e: drfailover_conn::Error) -> Self {
        use drfailover_conn::Error as E;
        let code = match &e {
            E::Config(_) => dr_status::DR_E_CONFIG,
            E::Auth(_) => dr_status::DR_E_AUTH,
            E::Tls(_) => dr_status::DR_E_TLS,
            E::NoWriter { .. } => dr_status::DR_E_NO_WRITER,
            E::PoolTimeout { .. } => dr_status::DR_E_POOL_TIMEOUT,
            E::OutcomeUnknown(_) => dr_status::DR_E_OUTCOME_UNKNOWN,
            E::Server(_) => dr_status::DR_E_SQL,
            E::TransactionNotAllowed => dr_status::DR_E_TRANSACTION,
            E::Closed => dr_status::DR_E_CLOSED,
            _ => dr_status::DR_E_SYSTEM,
        };
        Failure {
            code,
            mysql_errno: e.errno(),
            sqlstate: e.sqlstate().to_string(),
            message: e.to_string(),
        }
    }
}

/// Run `body`; map its error or a panic to a status and record it as the thread's last error.
pub(crate) fn status(body: impl FnOnce() -> Result<(), Failure>) -> dr_status {
    match catch_unwind(AssertUnwindSafe(body)) {
        Ok(Ok(())) => dr_status::DR_OK,
        Ok(Err(f)) => {
            error::set(f.code, f.mysql_errno, &f.sqlstate, &f.message);
            f.code
        }
        Err(_) => {
            error::set(
                dr_status::DR_E_PANIC,
                0,
                "HY000",
                "internal error (panic) caught at the C boundary",
            );
            dr_status::DR_E_PANIC
        }
    }
}

/// Run `body` for a function that returns a plain value; a panic yields `fallback`.
pub(crate) fn value<T>(fallback: T, body: impl FnOnce() -> T) -> T {
    catch_unwind(AssertUnwindSafe(body)).unwrap_or(fallback)
}

/// Longest string accepted for SQL text.
pub(crate) const MAX_SQL: usize = 256 << 20;
/// Longest string accepted for DSNs, keys and values.
pub(crate) const MAX_SHORT: usize = 1 << 20;

/// Borrow a C string as UTF-8, checking NULL, length (without reading past `max` bytes) and
/// encoding.
///
/// # Safety
/// `ptr` must be NULL or point to memory readable up to its NUL or `max + 1` bytes.
pub(crate) unsafe fn c_str<'a>(
    ptr: *const c_char,
    what: &str,
    max: usize,
) -> Result<&'a str, Failure> {
    if ptr.is_null() {
        return Err(Failure::invalid(format!("{what} is NULL")));
    }
    // SAFETY: the caller guarantees `ptr` is readable up to its NUL or max+1 bytes; strnlen
    // reads no further.
    let len = unsafe { libc::strnlen(ptr, max + 1) };
    if len > max {
        return Err(Failure::invalid(format!(
            "{what} is longer than {max} bytes"
        )));
    }
    // SAFETY: `len` bytes followed by a NUL were just found at `ptr`.
    let bytes = unsafe { CStr::from_ptr(ptr) }.to_bytes();
    std::str::from_utf8(bytes).map_err(|_| Failure::invalid(format!("{what} is not valid UTF-8")))
}

/// Check an out-pointer is non-NULL.
pub(crate) fn out_ptr<T>(ptr: *mut T, what: &str) -> Result<(), Failure> {
    if ptr.is_null() {
        Err(Failure::invalid(format!("{what} is NULL")))
    } else {
        Ok(())
    }
}
