//! Status codes. Released values never change meaning.

/// Result of every fallible `dr_*` call. `DR_OK` is 0; details of a failure are in
/// `dr_last_error()` on the same thread.
#[repr(i32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum dr_status {
    /// Success.
    DR_OK = 0,
    /// A NULL pointer, invalid UTF-8, an over-long string or an out-of-range value was passed.
    DR_E_INVALID_ARGUMENT = 1,
    /// The DSN or a configuration key/value is malformed; the message names the offending part.
    DR_E_CONFIG = 2,
    /// The server rejected the credentials (MySQL 1045/1698). Not retried in a loop.
    DR_E_AUTH = 3,
    /// No writable node became available within the time allowed.
    DR_E_NO_WRITER = 4,
    /// The connection died after the statement was sent: it may or may not have run. It was
    /// not replayed.
    DR_E_OUTCOME_UNKNOWN = 5,
    /// The server returned an error for the statement (see `mysql_errno`, `sqlstate`).
    DR_E_SQL = 6,
    /// The client is closed.
    DR_E_CLOSED = 7,
    /// The statement left an explicit transaction open on a pooled connection; it was rolled
    /// back. Use `dr_lease` for explicit transactions.
    DR_E_TRANSACTION = 8,
    /// An operating-system resource (a thread) could not be obtained.
    DR_E_SYSTEM = 9,
    /// A bug inside the library was caught at the boundary (a Rust panic). Please report it.
    DR_E_PANIC = 10,
    /// The `MYSQL *` passed to `dr_release` is not leased from this client.
    DR_E_NOT_LEASED = 11,
    /// TLS could not be established or the server certificate did not verify (`ssl_mode`,
    /// `ssl_ca`). A configuration problem; not retried in a loop.
    DR_E_TLS = 12,
    /// Every pooled connection stayed leased for the whole wait while a writer was available
    /// (raise `pool_size`, or give leases back sooner). Nothing was sent.
    DR_E_POOL_TIMEOUT = 13,
}

/// A short static name for a status, e.g. `"DR_E_NO_WRITER"`; `"DR_E_UNKNOWN"` for values
/// this version does not know. Never NULL; thread-safe; does not allocate.
#[no_mangle]
pub extern "C" fn dr_status_str(status: i32) -> *const std::os::raw::c_char {
    let s: &'static [u8] = match status {
        0 => b"DR_OK\0",
        1 => b"DR_E_INVALID_ARGUMENT\0",
        2 => b"DR_E_CONFIG\0",
        3 => b"DR_E_AUTH\0",
        4 => b"DR_E_NO_WRITER\0",
        5 => b"DR_E_OUTCOME_UNKNOWN\0",
        6 => b"DR_E_SQL\0",
        7 => b"DR_E_CLOSED\0",
        8 => b"DR_E_TRANSACTION\0",
        9 => b"DR_E_SYSTEM\0",
        10 => b"DR_E_PANIC\0",
        11 => b"DR_E_NOT_LEASED\0",
        12 => b"DR_E_TLS\0",
        13 => b"DR_E_POOL_TIMEOUT\0",
        _ => b"DR_E_UNKNOWN\0",
    };
    s.as_ptr().cast()
}

symbol_version!(dr_status_str);
