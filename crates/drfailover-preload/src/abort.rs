//! In-flight abort: when the monitor declares a node down, the sockets of
//! managed connections to it are shut down (`shutdown(2)`), so a statement blocked on a
//! frozen or unreachable server returns at once (2013) instead of at the program's read
//! timeout, if it has one at all.
//!
//! Each managed connection's socket is registered as a duplicate descriptor owned here: the
//! duplicate keeps the socket alive while registered, so a descriptor number the client
//! library closed and the process reused can never be shut down by mistake. Registration
//! happens on connect and move (one `dup` and one short lock), removal on move and close;
//! never on the statement path.

use std::collections::HashMap;
use std::os::fd::{AsRawFd, BorrowedFd, OwnedFd, RawFd};
use std::sync::Mutex;

/// Handle address → (endpoint index, duplicate of its socket).
static SOCKETS: Mutex<Option<HashMap<usize, (usize, OwnedFd)>>> = Mutex::new(None);

/// Register the socket `fd` of the handle at `handle` (an address used as a key), connected
/// to endpoint `endpoint`. Replaces an earlier registration. A descriptor that cannot be
/// duplicated is not registered (its statements then end at the program's own timeouts).
pub fn register(handle: usize, endpoint: usize, fd: RawFd) {
    if fd < 0 {
        return;
    }
    // SAFETY: `fd` is the handle's open socket for the duration of this call (the caller owns
    // the handle on this thread); it is only duplicated.
    let borrowed = unsafe { BorrowedFd::borrow_raw(fd) };
    let Ok(owned) = borrowed.try_clone_to_owned() else {
        return;
    };
    let mut sockets = SOCKETS.lock().unwrap_or_else(|e| e.into_inner());
    sockets
        .get_or_insert_with(HashMap::new)
        .insert(handle, (endpoint, owned));
}

/// Forget the handle's socket (closing the duplicate).
pub fn unregister(handle: usize) {
    let removed = {
        let mut sockets = SOCKETS.lock().unwrap_or_else(|e| e.into_inner());
        sockets.as_mut().and_then(|s| s.remove(&handle))
    };
    drop(removed);
}

/// Shut down every registered socket to endpoint `endpoint`. Never blocks beyond the lock.
pub fn abort_endpoint(endpoint: usize) -> usize {
    let sockets = SOCKETS.lock().unwrap_or_else(|e| e.into_inner());
    let mut count = 0;
    for (e, fd) in sockets.iter().flat_map(|s| s.values()) {
        if *e == endpoint {
            // SAFETY: `fd` is a descriptor this module owns; shutdown does not close it.
            unsafe { libc::shutdown(fd.as_raw_fd(), libc::SHUT_RDWR) };
            count += 1;
        }
    }
    count
}
