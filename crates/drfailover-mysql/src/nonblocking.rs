//! The MariaDB non-blocking API (`*_start` / `*_cont`) as steps: what an operation waits for
//! ([`Wait`]), what became ready ([`Ready`]), and one `poll(2)` over many of them ([`PollSet`]),
//! so a single thread can drive many connections, each by its own deadline.

use std::os::fd::RawFd;
use std::os::raw::c_int;
use std::time::Duration;

use mysqlclient_sys as ffi;

use crate::Deadline;

const WAIT_READ: c_int = ffi::MYSQL_WAIT_READ as c_int;
const WAIT_WRITE: c_int = ffi::MYSQL_WAIT_WRITE as c_int;
const WAIT_EXCEPT: c_int = ffi::MYSQL_WAIT_EXCEPT as c_int;
const WAIT_TIMEOUT: c_int = ffi::MYSQL_WAIT_TIMEOUT as c_int;

/// What a suspended non-blocking operation waits for before
/// [`crate::Connection::resume`] can continue it: readiness of one socket and, optionally, a
/// timeout of the C library's own (connect/read timeouts). `Copy`, cheap.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Wait {
    pub(crate) fd: RawFd,
    pub(crate) status: c_int,
    pub(crate) timeout: Option<Duration>,
}

impl Wait {
    /// The socket the operation waits on.
    pub fn fd(self) -> RawFd {
        self.fd
    }

    /// The C library's own timeout for this wait, counted from when the step returned
    /// (`None` when it set none). When it passes first, resume with [`Ready::timeout`].
    pub fn library_timeout(self) -> Option<Duration> {
        self.timeout
    }

    fn poll_events(self) -> libc::c_short {
        let mut events: libc::c_short = 0;
        if self.status & WAIT_READ != 0 {
            events |= libc::POLLIN;
        }
        if self.status & WAIT_WRITE != 0 {
            events |= libc::POLLOUT;
        }
        if self.status & WAIT_EXCEPT != 0 {
            events |= libc::POLLPRI;
        }
        events
    }

    /// What `revents` from `poll(2)` means for this wait (`None` when nothing it waits for).
    fn ready_from(self, revents: libc::c_short) -> Option<Ready> {
        if revents == 0 {
            return None;
        }
        let broken = revents & (libc::POLLERR | libc::POLLHUP | libc::POLLNVAL) != 0;
        let mut ready: c_int = 0;
        if revents & libc::POLLIN != 0 || broken {
            ready |= WAIT_READ;
        }
        if revents & libc::POLLOUT != 0 || broken {
            ready |= WAIT_WRITE;
        }
        if revents & libc::POLLPRI != 0 {
            ready |= WAIT_EXCEPT;
        }
        ready &= self.status;
        (ready != 0).then_some(Ready(ready))
    }
}

/// What became ready for a [`Wait`]; passed to [`crate::Connection::resume`]. `Copy`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Ready(pub(crate) c_int);

impl Ready {
    /// The wait's library timeout ([`Wait::library_timeout`]) passed.
    pub fn timeout() -> Ready {
        Ready(WAIT_TIMEOUT)
    }
}

/// One `poll(2)` over many waits and plain descriptors (e.g. a doorbell socket). Reusable:
/// [`PollSet::clear`] keeps the allocation. Cost: one system call per [`PollSet::poll`].
#[derive(Debug, Default)]
pub struct PollSet {
    fds: Vec<libc::pollfd>,
    waits: Vec<Option<Wait>>,
}

impl PollSet {
    /// An empty set.
    pub fn new() -> PollSet {
        PollSet::default()
    }

    /// Remove every entry.
    pub fn clear(&mut self) {
        self.fds.clear();
        self.waits.clear();
    }

    /// Add a wait; returns its index for [`PollSet::ready`].
    pub fn add_wait(&mut self, wait: Wait) -> usize {
        self.fds.push(libc::pollfd {
            fd: wait.fd,
            events: wait.poll_events(),
            revents: 0,
        });
        self.waits.push(Some(wait));
        self.fds.len() - 1
    }

    /// Add a descriptor watched for readability; returns its index for [`PollSet::readable`].
    pub fn add_readable(&mut self, fd: RawFd) -> usize {
        self.fds.push(libc::pollfd {
            fd,
            events: libc::POLLIN,
            revents: 0,
        });
        self.waits.push(None);
        self.fds.len() - 1
    }

    /// Block until an entry is ready or `timeout` passes (`None`: no limit). Returns how many
    /// entries are ready (0 on timeout or when a signal interrupted the wait).
    pub fn poll(&mut self, timeout: Option<Duration>) -> std::io::Result<usize> {
        let ms = match timeout {
            None => -1,
            Some(t) => t.as_micros().div_ceil(1000).min(i32::MAX as u128) as c_int,
        };
        for p in &mut self.fds {
            p.revents = 0;
        }
        // SAFETY: `fds` is a valid array of `len` pollfds we own; poll ignores negative fds
        // and reports closed ones as POLLNVAL without touching other memory.
        let n = unsafe { libc::poll(self.fds.as_mut_ptr(), self.fds.len() as libc::nfds_t, ms) };
        if n < 0 {
            let err = std::io::Error::last_os_error();
            if err.kind() == std::io::ErrorKind::Interrupted {
                return Ok(0);
            }
            return Err(err);
        }
        Ok(n as usize)
    }

    /// What became ready for the wait at `index` after the last [`PollSet::poll`].
    pub fn ready(&self, index: usize) -> Option<Ready> {
        let wait = self.waits.get(index).copied().flatten()?;
        wait.ready_from(self.fds[index].revents)
    }

    /// Whether the descriptor at `index` became readable (or closed) in the last poll.
    pub fn readable(&self, index: usize) -> bool {
        self.fds.get(index).is_some_and(|p| p.revents != 0)
    }
}

/// Wait for one [`Wait`] until `deadline`: `Some(ready)`, or `None` when the deadline passed
/// first. Blocks at most until the deadline.
pub(crate) fn wait_one(wait: Wait, deadline: Deadline) -> Result<Option<Ready>, std::io::Error> {
    let mut set = PollSet::new();
    set.add_wait(wait);
    loop {
        let left = deadline.remaining();
        if left.is_zero() {
            return Ok(None);
        }
        let library = wait.timeout.filter(|t| *t < left);
        let n = set.poll(Some(library.unwrap_or(left)))?;
        if n == 0 {
            if library.is_some() {
                return Ok(Some(Ready::timeout()));
            }
            continue; // interrupted, or woke a hair early: re-check the deadline
        }
        match set.ready(0) {
            Some(ready) => return Ok(Some(ready)),
            None => continue,
        }
    }
}
