use std::os::fd::RawFd;

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
