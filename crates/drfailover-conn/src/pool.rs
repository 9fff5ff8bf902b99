//! Connections per client: idle stack, leased registry (for in-flight abort), generations.
//!
//! The pool lock is held only to pop or push a connection — never while a query runs.

use std::cell::Cell;
use std::sync::{Condvar, Mutex, MutexGuard};
use std::time::Instant;

use drfailover_mysql::{AbortHandle, Connection, OwnedAbortHandle};

/// A connection out of the pool, owned by one caller until released.
#[derive(Debug)]
pub struct Leased {
    conn: Connection,
    endpoint: usize,
    generation: u64,
    id: u64,
}

impl Leased {
    /// The leased connection, for statements (still owned by the lease: returned to the pool
    /// when the lease is dropped).
    pub fn conn(&mut self) -> &mut Connection {
        &mut self.conn
    }

    /// Index of the endpoint it is connected to.
    pub fn endpoint(&self) -> usize {
        self.endpoint
    }

    /// The writer generation it was opened in.
    pub fn generation(&self) -> u64 {
        self.generation
    }
}

thread_local! {
    /// The id of the connection this thread leased last: handed back to it when idle, so a
    /// thread keeps talking to the same server thread (measured: swapping connections between
    /// threads on every statement cut 2-thread throughput by more than half).
    static LAST_LEASED: Cell<u64> = const { Cell::new(0) };
}

/// Result of [`Pool::acquire`].
pub(crate) enum Acquired {
    /// An idle connection of the requested endpoint and generation.
    Idle(Leased),
    /// No idle connection; a slot is reserved: open a connection and [`Pool::register`] it,
    /// or [`Pool::cancel_slot`].
    Slot(u64),
    /// All `max` slots are in use until the deadline.
    Exhausted,
}

struct Idle {
    conn: Connection,
    endpoint: usize,
    generation: u64,
    id: u64,
}

struct Record {
    endpoint: usize,
    abort: AbortHandle,
}

#[derive(Default)]
struct Inner {
    idle: Vec<Idle>,
    /// `(id, record)` of every leased connection: at most `max` entries, so a vector scan
    /// beats hashing (measured: SipHash insert + remove were ~15% of the library's own
    /// per-statement instructions).
    leased: Vec<(u64, Record)>,
    /// `(slot, endpoint, handle)` of every connection still logging in (see [`Pool::opening`]).
    opening: Vec<(u64, usize, OwnedAbortHandle)>,
    /// Idle + leased + slots being opened.
    total: usize,
    next_id: u64,
    closed: bool,
    /// Threads blocked in `acquire` waiting for a slot: release notifies only when non-zero
    /// (a condition-variable notify is a syscall even with nobody waiting).
    waiters: usize,
}

pub(crate) struct Pool {
    inner: Mutex<Inner>,
    freed: Condvar,
    max: usize,
}

impl Pool {
    pub(crate) fn new(max: usize) -> Self {
        Pool {
            inner: Mutex::new(Inner::default()),
            freed: Condvar::new(),
            max: max.max(1),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// An idle connection to `endpoint` of `generation`, or a reserved slot, waiting for a
    /// free slot until `deadline`. Idle connections of other generations found on the way are
    /// closed (after the lock is released).
    pub(crate) fn acquire(&self, endpoint: usize, generation: u64, deadline: Instant) -> Acquired {
        let mut stale = Vec::new();
        let mut inner = self.lock();
        let result = loop {
            if inner.closed {
                break Acquired::Exhausted;
            }
            let mut found = None;
            let last = LAST_LEASED.with(Cell::get);
            if let Some(pos) = inner.idle.iter().rposition(|i| i.id == last) {
                if inner.idle[pos].generation == generation && inner.idle[pos].endpoint == endpoint
                {
                    found = Some(inner.idle.swap_remove(pos));
                }
            }
            while found.is_none() {
                let Some(idle) = inner.idle.pop() else { break };
                if idle.endpoint == endpoint && idle.generation == generation {
                    found = Some(idle);
                    break;
                }
                // Idle connections of another endpoint are of an older generation: close.
                inner.total -= 1;
                stale.push(idle.conn);
            }
            if let Some(idle) = found {
                let record = Record {
                    endpoint,
                    abort: idle.conn.abort_handle(),
                };
                inner.leased.push((idle.id, record));
                LAST_LEASED.with(|l| l.set(idle.id));
                break Acquired::Idle(Leased {
                    conn: idle.conn,
                    endpoint,
                    generation,
                    id: idle.id,
                });
            }
            if inner.total < self.max {
                inner.total += 1;
                inner.next_id += 1;
                break Acquired::Slot(inner.next_id);
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                break Acquired::Exhausted;
            }
            inner.waiters += 1;
            inner = self
                .freed
                .wait_timeout(inner, left)
                .unwrap_or_else(|e| e.into_inner())
                .0;
            inner.waiters -= 1;
        };
        drop(inner);
        drop(stale);
        result
    }

    /// Register a connection opened in a reserved slot as leased.
    pub(crate) fn register(
        &self,
        id: u64,
        conn: Connection,
        endpoint: usize,
        generation: u64,
    ) -> Leased {
        let mut inner = self.lock();
        let login = take_opening(&mut inner, id);
        inner.leased.push((
            id,
            Record {
                endpoint,
                abort: conn.abort_handle(),
            },
        ));
        drop(inner);
        drop(login);
        Leased {
            conn,
            endpoint,
            generation,
            id,
        }
    }

    /// A connection is logging in to `endpoint` in reserved slot `id`: until it is withdrawn,
    /// an abort of that endpoint also shuts its socket down, so a login to a node that just
    /// died fails at once instead of waiting out its connect deadline (a SYN lost while the
    /// old writer's listener is torn down would otherwise hold the caller for that deadline).
    /// The handle owns a duplicate of the socket's descriptor, so it stays safe after a failed
    /// login closed the socket.
    /// The returned guard withdraws the handle when dropped (a failed login, or a panic);
    /// [`Opening::keep`] leaves it for [`Pool::register`], which swaps it for the leased record
    /// under one lock, so an abort never falls between the login and the lease.
    pub(crate) fn opening(
        &self,
        id: u64,
        endpoint: usize,
        abort: Option<OwnedAbortHandle>,
    ) -> Opening<'_> {
        if let Some(abort) = abort {
            self.lock().opening.push((id, endpoint, abort));
        }
        Opening {
            pool: self,
            id,
            armed: true,
        }
    }

    /// Withdraw (and close) the login abort handle of slot `id`, if it is registered.
    fn withdraw_opening(&self, id: u64) {
        let mut inner = self.lock();
        let handle = take_opening(&mut inner, id);
        drop(inner);
        drop(handle);
    }

    /// Give back a reserved slot whose connection could not be opened.
    pub(crate) fn cancel_slot(&self) {
        let mut inner = self.lock();
        inner.total -= 1;
        if inner.waiters > 0 {
            self.freed.notify_one();
        }
    }

    /// Return a leased connection. It goes back to the idle stack only if `reusable`, of the
    /// `current` generation and not broken; otherwise it is closed (outside the lock).
    pub(crate) fn release(&self, leased: Leased, reusable: bool, current: u64) {
        let keep = reusable && !leased.conn.is_broken() && leased.generation == current;
        let mut inner = self.lock();
        if let Some(pos) = inner.leased.iter().position(|(id, _)| *id == leased.id) {
            inner.leased.swap_remove(pos);
        }
        let closed = inner.closed;
        let dropped = if keep && !closed {
            inner.idle.push(Idle {
                conn: leased.conn,
                endpoint: leased.endpoint,
                generation: leased.generation,
                id: leased.id,
            });
            None
        } else {
            inner.total -= 1;
            Some(leased.conn)
        };
        if inner.waiters > 0 {
            self.freed.notify_one();
        }
        drop(inner);
        drop(dropped);
    }

    /// In-flight abort: shut down the sockets of connections leased to `endpoint` (calls
    /// blocked on them return at once) and close its idle connections. Returns how many
    /// leased connections were aborted.
    pub(crate) fn abort_endpoint(&self, endpoint: usize) -> usize {
        let mut inner = self.lock();
        let mut aborted = 0;
        for (_, record) in inner.leased.iter().filter(|(_, r)| r.endpoint == endpoint) {
            // The record is removed under this lock before its connection is closed, so the
            // descriptor still belongs to that connection here.
            record.abort.abort();
            aborted += 1;
        }
        for (_, _, login) in inner.opening.iter().filter(|(_, e, _)| *e == endpoint) {
            login.abort();
            aborted += 1;
        }
        let closing = take_idle_where(&mut inner, |i| i.endpoint == endpoint);
        drop(inner);
        drop(closing);
        aborted
    }

    /// Close idle connections not of `generation`.
    pub(crate) fn close_stale(&self, generation: u64) {
        let mut inner = self.lock();
        let closing = take_idle_where(&mut inner, |i| i.generation != generation);
        drop(inner);
        drop(closing);
    }

    /// Close every idle connection and refuse new leases; leased ones close on release.
    pub(crate) fn close(&self) {
        let mut inner = self.lock();
        inner.closed = true;
        let closing = take_idle_where(&mut inner, |_| true);
        self.freed.notify_all();
        drop(inner);
        drop(closing);
    }
}

fn take_idle_where(inner: &mut Inner, pred: impl Fn(&Idle) -> bool) -> Vec<Connection> {
    let (take, keep): (Vec<Idle>, Vec<Idle>) = inner.idle.drain(..).partition(|i| pred(i));
    inner.idle = keep;
    inner.total -= take.len();
    take.into_iter().map(|i| i.conn).collect()
}

/// The login abort handle of slot `id`, taken out of the registry.
fn take_opening(inner: &mut Inner, id: u64) -> Option<(u64, usize, OwnedAbortHandle)> {
    let pos = inner.opening.iter().position(|(slot, ..)| *slot == id)?;
    Some(inner.opening.swap_remove(pos))
}

/// A login registered with [`Pool::opening`]: withdrawn on drop unless [`Opening::keep`] hands
/// it to [`Pool::register`].
pub(crate) struct Opening<'a> {
    pool: &'a Pool,
    id: u64,
    armed: bool,
}

impl Opening<'_> {
    /// The login succeeded: leave the handle for [`Pool::register`] to replace.
    pub(crate) fn keep(mut self) {
        self.armed = false;
    }
}

impl Drop for Opening<'_> {
    fn drop(&mut self) {
        if self.armed {
            self.pool.withdraw_opening(self.id);
        }
    }
}
