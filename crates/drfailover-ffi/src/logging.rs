//! Library logging to a C callback, or to stderr with `DRFAILOVER_LOG=<level>`.

use std::ffi::CString;
use std::os::raw::{c_char, c_void};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{sync_channel, Receiver, SyncSender, TrySendError};
use std::sync::{Mutex, Once, RwLock};

use crate::error::escape_controls;
use crate::guard::{self, Failure};
use crate::status::dr_status;

/// Log levels, most severe first.
#[repr(i32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum dr_log_level {
    /// Nothing.
    DR_LOG_OFF = 0,
    /// Errors.
    DR_LOG_ERROR = 1,
    /// Warnings (endpoint down, failover, outcome unknown).
    DR_LOG_WARN = 2,
    /// Informational (writer adopted, endpoint up).
    DR_LOG_INFO = 3,
    /// Debugging detail.
    DR_LOG_DEBUG = 4,
    /// Everything.
    DR_LOG_TRACE = 5,
}

/// A log callback: `userdata` as registered, the level, a target (`"drfailover"`) and the
/// message (both valid during the call only). Never contains a password.
pub type dr_log_cb = Option<
    unsafe extern "C" fn(
        userdata: *mut c_void,
        level: dr_log_level,
        target: *const c_char,
        message: *const c_char,
    ),
>;

struct Sink {
    callback: unsafe extern "C" fn(*mut c_void, dr_log_level, *const c_char, *const c_char),
    userdata: *mut c_void,
}

// SAFETY: the header tells callers the callback runs on a library thread; registering it is
// their promise that userdata may be used there.
unsafe impl Send for Sink {}
// SAFETY: as above.
unsafe impl Sync for Sink {}

/// Log records waiting for the delivery thread. Bounded: a full queue drops (and counts) a
/// record instead of making the thread that logs (the monitor, a query) wait.
pub(crate) const LOG_QUEUE: usize = 1024;

/// One formatted record on its way to the C callback.
struct Record {
    level: dr_log_level,
    target: CString,
    message: CString,
}

struct Logger {
    sink: RwLock<Option<Sink>>,
    stderr: RwLock<log::LevelFilter>,
    queue: Mutex<Option<SyncSender<Record>>>,
    dropped: AtomicU64,
}

static LOGGER: Logger = Logger {
    sink: RwLock::new(None),
    stderr: RwLock::new(log::LevelFilter::Off),
    queue: Mutex::new(None),
    dropped: AtomicU64::new(0),
};
static INSTALL: Once = Once::new();

fn to_c(level: log::Level) -> dr_log_level {
    match level {
        log::Level::Error => dr_log_level::DR_LOG_ERROR,
        log::Level::Warn => dr_log_level::DR_LOG_WARN,
        log::Level::Info => dr_log_level::DR_LOG_INFO,
        log::Level::Debug => dr_log_level::DR_LOG_DEBUG,
        log::Level::Trace => dr_log_level::DR_LOG_TRACE,
    }
}

/// The level filter for a C level, or `None` when it is out of range.
fn from_c(level: i32) -> Option<log::LevelFilter> {
    Some(match level {
        0 => log::LevelFilter::Off,
        1 => log::LevelFilter::Error,
        2 => log::LevelFilter::Warn,
        3 => log::LevelFilter::Info,
        4 => log::LevelFilter::Debug,
        5 => log::LevelFilter::Trace,
        _ => return None,
    })
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// Deliver queued records to the registered callback, one at a time, until the process ends.
/// The callback runs under the sink's read lock, so `dr_set_log_callback` (write lock) waits
/// for a running callback and no record reaches a callback after it was replaced.
fn deliver(rx: Receiver<Record>) {
    while let Ok(record) = rx.recv() {
        let sink = LOGGER.sink.read().unwrap_or_else(|e| e.into_inner());
        let Some(sink) = sink.as_ref() else {
            continue;
        };
        let dropped = LOGGER.dropped.swap(0, Ordering::Relaxed);
        if dropped > 0 {
            let note = CString::new(format!(
                "{dropped} log records dropped: the log callback is slower than the library logs"
            ))
            .unwrap_or_default();
            // SAFETY: a callback the caller registered; strings live until it returns.
            unsafe {
                (sink.callback)(
                    sink.userdata,
                    dr_log_level::DR_LOG_WARN,
                    c"drfailover".as_ptr(),
                    note.as_ptr(),
                )
            };
        }
        // SAFETY: as above.
        unsafe {
            (sink.callback)(
                sink.userdata,
                record.level,
                record.target.as_ptr(),
                record.message.as_ptr(),
            )
        };
    }
}

/// Start the delivery thread once (at the first registration of a callback).
fn start_queue() -> Result<(), Failure> {
    let mut queue = lock(&LOGGER.queue);
    if queue.is_none() {
        let (tx, rx) = sync_channel(LOG_QUEUE);
        std::thread::Builder::new()
            .name("drfailover-log".into())
            .spawn(move || deliver(rx))
            .map_err(|e| {
                Failure::new(
                    dr_status::DR_E_SYSTEM,
                    format!("cannot start the log thread: {e}"),
                )
            })?;
        *queue = Some(tx);
    }
    Ok(())
}

impl log::Log for Logger {
    fn enabled(&self, _: &log::Metadata<'_>) -> bool {
        true
    }

    fn log(&self, record: &log::Record<'_>) {
        if !record.target().starts_with("drfailover") {
            return;
        }
        if record.level() <= *self.stderr.read().unwrap_or_else(|e| e.into_inner()) {
            eprintln!("drfailover {:<5} {}", record.level(), record.args());
        }
        if self
            .sink
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .is_none()
        {
            return;
        }
        let queued = Record {
            level: to_c(record.level()),
            target: CString::new(escape_controls(record.target())).unwrap_or_default(),
            message: CString::new(escape_controls(&record.args().to_string())).unwrap_or_default(),
        };
        if let Some(tx) = lock(&self.queue).as_ref() {
            match tx.try_send(queued) {
                Ok(()) => {}
                Err(TrySendError::Full(_)) | Err(TrySendError::Disconnected(_)) => {
                    self.dropped.fetch_add(1, Ordering::Relaxed);
                }
            }
        }
    }

    fn flush(&self) {}
}

fn install() {
    INSTALL.call_once(|| {
        // Fails harmlessly if the host program installed its own `log` logger.
        let _ = log::set_logger(&LOGGER);
    });
}

fn max_level() -> log::LevelFilter {
    let stderr = *LOGGER.stderr.read().unwrap_or_else(|e| e.into_inner());
    stderr.max(log::max_level())
}

/// Honour `DRFAILOVER_LOG=error|warn|info|debug|trace` (stderr). Called by `dr_connect*`.
pub(crate) fn init_from_env() {
    install();
    if let Ok(v) = std::env::var("DRFAILOVER_LOG") {
        let level = v.parse().unwrap_or(log::LevelFilter::Info);
        *LOGGER.stderr.write().unwrap_or_else(|e| e.into_inner()) = level;
        log::set_max_level(level.max(max_level()));
    }
}

/// Send library log records at `level` or more severe to `callback` (NULL removes it).
/// `level` must be one of `DR_LOG_OFF`..`DR_LOG_TRACE`, else `DR_E_INVALID_ARGUMENT` and
/// nothing changes. Records are queued (at most 1024) and delivered one at a time, in order,
/// on the library's `drfailover-log` thread, started by the first registration of a callback
/// and kept for the life of the process; so a slow callback never delays failover or a query.
/// When the queue is full a record is dropped, and the next record delivered is preceded by a
/// `DR_LOG_WARN` record saying how many were dropped. The callback must not call back into
/// the library. When this call returns, the previous callback is not running and is never
/// called again (this call waits for a running one to return). Process-wide; thread-safe.
/// `DRFAILOVER_LOG=debug` additionally logs to stderr (written by the thread that logs).
///
/// # Safety
/// `userdata` must be usable from another thread while registered.
#[no_mangle]
pub unsafe extern "C" fn dr_set_log_callback(
    callback: dr_log_cb,
    userdata: *mut c_void,
    level: i32,
) -> dr_status {
    guard::status(|| {
        let level = from_c(level).ok_or_else(|| {
            Failure::invalid(format!(
                "level {level} is out of range (DR_LOG_OFF = 0 .. DR_LOG_TRACE = 5)"
            ))
        })?;
        install();
        let sink = callback.map(|callback| Sink { callback, userdata });
        if sink.is_some() {
            start_queue()?;
        }
        let level = if sink.is_some() {
            level
        } else {
            log::LevelFilter::Off
        };
        *LOGGER.sink.write().unwrap_or_else(|e| e.into_inner()) = sink;
        let stderr = *LOGGER.stderr.read().unwrap_or_else(|e| e.into_inner());
        log::set_max_level(level.max(stderr));
        Ok(())
    })
}

symbol_version!(dr_set_log_callback);

#[cfg(test)]
mod tests {
    use super::*;
    use std::ffi::CStr;
    use std::sync::atomic::{AtomicBool, AtomicUsize};
    use std::time::{Duration, Instant};

    static RELEASE: AtomicBool = AtomicBool::new(false);
    static RECORDS: AtomicUsize = AtomicUsize::new(0);
    static DROP_NOTE: Mutex<Option<String>> = Mutex::new(None);

    unsafe extern "C" fn blocking(
        _: *mut c_void,
        level: dr_log_level,
        _: *const c_char,
        message: *const c_char,
    ) {
        // SAFETY: the library passes a NUL-terminated string valid during the call.
        let text = unsafe { CStr::from_ptr(message) }
            .to_string_lossy()
            .into_owned();
        if level == dr_log_level::DR_LOG_WARN && text.contains("log records dropped") {
            *lock(&DROP_NOTE) = Some(text);
        }
        RECORDS.fetch_add(1, Ordering::SeqCst);
        let until = Instant::now() + Duration::from_secs(10);
        while !RELEASE.load(Ordering::SeqCst) && Instant::now() < until {
            std::thread::sleep(Duration::from_millis(1));
        }
    }

    #[test]
    fn a_blocked_callback_never_blocks_the_thread_that_logs_and_overflow_is_counted() {
        // SAFETY: a callback with no userdata.
        let st = unsafe { dr_set_log_callback(Some(blocking), std::ptr::null_mut(), 5) };
        assert_eq!(st, dr_status::DR_OK);
        let n = 3 * LOG_QUEUE;
        let started = Instant::now();
        for i in 0..n {
            log::info!(target: "drfailover::test", "record {i}\nwith a newline");
        }
        let took = started.elapsed();
        assert!(took < Duration::from_secs(2), "logging blocked: {took:?}");
        RELEASE.store(true, Ordering::SeqCst);
        let until = Instant::now() + Duration::from_secs(20);
        while RECORDS.load(Ordering::SeqCst) < LOG_QUEUE && Instant::now() < until {
            std::thread::sleep(Duration::from_millis(5));
        }
        // Deliver one more record after the queue drained: it carries the drop note.
        std::thread::sleep(Duration::from_millis(200));
        log::info!(target: "drfailover::test", "after");
        while lock(&DROP_NOTE).is_none() && Instant::now() < until {
            std::thread::sleep(Duration::from_millis(5));
        }
        // SAFETY: removing the callback.
        let st = unsafe { dr_set_log_callback(None, std::ptr::null_mut(), 0) };
        assert_eq!(st, dr_status::DR_OK);
        let delivered = RECORDS.load(Ordering::SeqCst);
        assert!(delivered <= LOG_QUEUE + 3, "{delivered} delivered");
        let note = lock(&DROP_NOTE).clone().expect("a drop note");
        let dropped: usize = note.split(' ').next().unwrap().parse().unwrap();
        // At least one overflow was counted and reported. (How many the first note reports
        // depends on when the delivering thread looks: under load it may report only part of
        // the overflow first.)
        assert!(dropped >= 1, "{note}");
    }
}
