use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};

/// Shuts a connection's socket down from any thread, so a call blocked in `read()` on it
/// returns at once with "lost connection" (in-flight abort). `Copy`; does not own the socket.
///
/// The holder must make sure the connection is still open when calling [`AbortHandle::abort`]:
/// after the connection is closed the descriptor number may belong to another file. The
/// failover pool guarantees this by removing the handle under a lock before closing.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AbortHandle {
    fd: RawFd,
}

impl AbortHandle {
    pub(crate) fn new(fd: RawFd) -> Self {
        AbortHandle { fd }
    }

    /// The raw socket descriptor.
    pub fn fd(self) -> RawFd {
        self.fd
    }

    /// `shutdown(fd, SHUT_RDWR)`. Never blocks; errors (already shut down) are ignored.
    pub fn abort(self) {
        if self.fd >= 0 {
            // SAFETY: shutdown(2) takes a plain integer and touches no memory of ours.
            unsafe {
                libc::shutdown(self.fd, libc::SHUT_RDWR);
            }
        }
    }

    /// Whether the peer closed or reset the connection, or sent something unasked, on an idle
    /// connection. One non-blocking `poll(2)`; cheap (well under a microsecond).
    pub fn looks_dead(self) -> bool {
        if self.fd < 0 {
            return true;
        }
        let mut pfd = libc::pollfd {
            fd: self.fd,
            events: libc::POLLIN | libc::POLLRDHUP,
            revents: 0,
        };
        // SAFETY: `pfd` is a valid pollfd on our stack, count 1, timeout 0 (no blocking).
        let n = unsafe { libc::poll(&mut pfd, 1, 0) };
        n != 0
    }
}

/// An abort handle that owns a duplicate of the socket's descriptor: it stays safe to use
/// after the connection itself closed the socket (a failed login closes it inside the C
/// client), because the duplicate keeps the descriptor number from being reused until this
/// handle is dropped. For sharing a connection that is still logging in.
#[derive(Debug)]
pub struct OwnedAbortHandle {
    fd: OwnedFd,
}

impl OwnedAbortHandle {
    /// Duplicate `handle`'s descriptor (one `fcntl(F_DUPFD_CLOEXEC)`); `None` when it has no socket or the
    /// duplicate fails (out of descriptors).
    pub fn duplicate(handle: AbortHandle) -> Option<OwnedAbortHandle> {
        if handle.fd < 0 {
            return None;
        }
        // SAFETY: fcntl(F_DUPFD_CLOEXEC) takes plain integers; a negative result is handled below.
        let fd = unsafe { libc::fcntl(handle.fd, libc::F_DUPFD_CLOEXEC, 0) };
        if fd < 0 {
            return None;
        }
        // SAFETY: `fd` was just returned by fcntl(F_DUPFD_CLOEXEC): open and owned by nobody else.
        let fd = unsafe { OwnedFd::from_raw_fd(fd) };
        Some(OwnedAbortHandle { fd })
    }

    /// `shutdown(SHUT_RDWR)` of the socket: a connect in progress fails at once, a read
    /// returns end of file. Never blocks; errors are ignored.
    pub fn abort(&self) {
        AbortHandle::new(self.fd.as_raw_fd()).abort();
    }
}
