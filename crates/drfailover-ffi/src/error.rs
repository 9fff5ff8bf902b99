//! The last error of the calling thread.

use std::cell::RefCell;
use std::ffi::CString;
use std::os::raw::c_char;

use crate::status::dr_status;

/// Details of the last failed `dr_*` call on the calling thread.
#[repr(C)]
pub struct dr_error {
    /// The status that call returned.
    pub code: dr_status,
    /// The MySQL/MariaDB error number behind it, exactly as the server or the client library
    /// reported it (e.g. 1044 for an unknown database, 1045 for a wrong password), or 0. For
    /// `DR_E_NO_WRITER`: the last error seen while waiting, if any (e.g. 1290 from a writer that
    /// turned read-only).
    pub mysql_errno: u32,
    /// The five-character SQLSTATE that came with `mysql_errno`, unchanged, NUL-terminated
    /// (`"HY000"` when there is no MySQL error behind it).
    pub sqlstate: [c_char; 6],
    /// A human-readable message, NUL-terminated. Never contains a password.
    pub message: *const c_char,
}

struct Stored {
    code: dr_status,
    mysql_errno: u32,
    sqlstate: [c_char; 6],
    message: CString,
    view: dr_error,
}

thread_local! {
    static LAST: RefCell<Option<Box<Stored>>> = const { RefCell::new(None) };
}

fn sqlstate_bytes(s: &str) -> [c_char; 6] {
    let mut out = [0 as c_char; 6];
    for (o, b) in out.iter_mut().zip(s.bytes().take(5)) {
        *o = b as c_char;
    }
    out
}

/// `s` with control characters escaped (`\n`, `\r`, `\t`, others as `\u{1b}`), so text
/// echoed from input (a DSN, a key, a server message) cannot forge lines or terminal escapes in
/// a log or a message, and never holds a NUL.
pub(crate) fn escape_controls(s: &str) -> String {
    if !s.chars().any(char::is_control) {
        return s.to_owned();
    }
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        match c {
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if c.is_control() => out.push_str(&format!("\\u{{{:x}}}", c as u32)),
            c => out.push(c),
        }
    }
    out
}

/// Record a failure for this thread.
pub(crate) fn set(code: dr_status, mysql_errno: u32, sqlstate: &str, message: &str) {
    let message = CString::new(escape_controls(message)).unwrap_or_default();
    let mut stored = Box::new(Stored {
        code,
        mysql_errno,
        sqlstate: sqlstate_bytes(if sqlstate.is_empty() {
            "HY000"
        } else {
            sqlstate
        }),
        message,
        view: dr_error {
            code,
            mysql_errno,
            sqlstate: [0; 6],
            message: std::ptr::null(),
        },
    });
    stored.view.sqlstate = stored.sqlstate;
    stored.view.message = stored.message.as_ptr();
    let _ = (stored.code, stored.mysql_errno);
    LAST.with(|l| *l.borrow_mut() = Some(stored));
}

/// The last error recorded on the calling thread by a failed `dr_*` call, or NULL if none
/// has failed on this thread yet. Successful calls do not clear it. The pointer and its
/// strings stay valid until the next failing `dr_*` call on the same thread. Thread-safe
/// (per-thread storage); never blocks.
#[no_mangle]
pub extern "C" fn dr_last_error() -> *const dr_error {
    LAST.with(|l| {
        l.borrow()
            .as_ref()
            .map_or(std::ptr::null(), |s| &s.view as *const dr_error)
    })
}

#[cfg(test)]
mod tests {
    use super::escape_controls;

    #[test]
    fn control_characters_are_escaped() {
        assert_eq!(escape_controls("plain"), "plain");
        assert_eq!(
            escape_controls("a\nb\x1b[31mc\0d\te\u{7f}"),
            "a\\nb\\u{1b}[31mc\\u{0}d\\te\\u{7f}"
        );
    }
}

symbol_version!(dr_last_error);
