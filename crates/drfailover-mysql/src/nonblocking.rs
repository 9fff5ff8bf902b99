//! The MariaDB non-blocking API driven by `poll(2)` against a millisecond deadline.

use std::os::raw::c_int;

use mysqlclient_sys as ffi;

use crate::{Deadline, Error};

/// Drive a `*_start` / `*_cont` pair to completion or until `deadline`.
///
/// `status` is what the `_start` call returned; `cont` calls the matching `_cont` with the
/// ready bits and returns its new status. Returns `Err(timeout)` when the deadline passes first;
/// the connection is then mid-operation and must be closed by the caller.
pub(crate) fn drive(
    mysql: *mut ffi::MYSQL,
    mut status: c_int,
    deadline: Deadline,
    what: &str,
    mut cont: impl FnMut(c_int) -> c_int,
) -> Result<(), Error> {
    while status != 0 {
        // SAFETY: `mysql` is a live handle owned by the caller for the whole call.
        let fd = unsafe { ffi::mysql_get_socket(mysql) };
        if deadline.expired() {
            return Err(Error::timeout(what));
        }
        let mut timeout_ms = deadline.remaining_ms_ceil();
        let mut library_timeout = false;
        if status & ffi::MYSQL_WAIT_TIMEOUT as c_int != 0 {
            // SAFETY: as above.
            let lib_ms = unsafe { ffi::mysql_get_timeout_value_ms(mysql) };
            if (lib_ms as i64) < timeout_ms as i64 {
                timeout_ms = lib_ms as i32;
                library_timeout = true;
            }
        }
        let mut events: libc::c_short = 0;
        if status & ffi::MYSQL_WAIT_READ as c_int != 0 {
            events |= libc::POLLIN;
        }
        if status & ffi::MYSQL_WAIT_WRITE as c_int != 0 {
            events |= libc::POLLOUT;
        }
        if status & ffi::MYSQL_WAIT_EXCEPT as c_int != 0 {
            events |= libc::POLLPRI;
        }
        let mut pfd = libc::pollfd {
            fd,
            events,
            revents: 0,
        };
        // SAFETY: one valid pollfd on our stack; a negative fd is ignored by poll.
        let n = unsafe { libc::poll(&mut pfd, 1, timeout_ms) };
        if n < 0 {
            let err = std::io::Error::last_os_error();
            if err.kind() == std::io::ErrorKind::Interrupted {
                continue;
            }
            return Err(Error::connection_lost(format!(
                "{what}: poll failed: {err}"
            )));
        }
        let mut ready: c_int = 0;
        if n == 0 {
            if !library_timeout {
                return Err(Error::timeout(what));
            }
            ready |= ffi::MYSQL_WAIT_TIMEOUT as c_int;
        } else {
            let broken = pfd.revents & (libc::POLLERR | libc::POLLHUP | libc::POLLNVAL) != 0;
            if pfd.revents & libc::POLLIN != 0 || broken {
                ready |= ffi::MYSQL_WAIT_READ as c_int;
            }
            if pfd.revents & libc::POLLOUT != 0 || broken {
                ready |= ffi::MYSQL_WAIT_WRITE as c_int;
            }
            if pfd.revents & libc::POLLPRI != 0 {
                ready |= ffi::MYSQL_WAIT_EXCEPT as c_int;
            }
            ready &= status | ffi::MYSQL_WAIT_TIMEOUT as c_int;
        }
        status = cont(ready);
    }
    Ok(())
}
