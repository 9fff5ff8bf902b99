//! Library logging to a C callback, or to stderr with `DRFAILOVER_LOG=<level>`.

use std::ffi::CString;
use std::os::raw::{c_char, c_void};
use std::sync::{Once, RwLock};

use crate::guard;
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

// SAFETY: the header tells callers the callback runs on any library thread; registering it is
// their promise that userdata may be used there.
unsafe impl Send for Sink {}
// SAFETY: as above.
unsafe impl Sync for Sink {}

struct Logger {
    sink: RwLock<Option<Sink>>,
    stderr: RwLock<log::LevelFilter>,
}

static LOGGER: Logger = Logger {
    sink: RwLock::new(None),
    stderr: RwLock::new(log::LevelFilter::Off),
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

fn from_c(level: i32) -> log::LevelFilter {
    match level {
        i32::MIN..=0 => log::LevelFilter::Off,
        1 => log::LevelFilter::Error,
        2 => log::LevelFilter::Warn,
        3 => log::LevelFilter::Info,
        4 => log::LevelFilter::Debug,
        _ => log::LevelFilter::Trace,
    }
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
        if let Some(sink) = self.sink.read().unwrap_or_else(|e| e.into_inner()).as_ref() {
            let message =
                CString::new(record.args().to_string().replace('\0', " ")).unwrap_or_default();
            let target = CString::new(record.target().replace('\0', " ")).unwrap_or_default();
            // SAFETY: a callback the caller registered; strings live until it returns.
            unsafe {
                (sink.callback)(
                    sink.userdata,
                    to_c(record.level()),
                    target.as_ptr(),
                    message.as_ptr(),
                )
            };
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

/// Send library log records at `level` or more severe to `callback` (NULL removes it). The
/// callback may run on any library thread, possibly several at once; it must not call back
/// into the library. Process-wide; thread-safe. `DRFAILOVER_LOG=debug` additionally logs to
/// stderr.
///
/// # Safety
/// `userdata` must be usable from any thread while registered.
#[no_mangle]
pub unsafe extern "C" fn dr_set_log_callback(
    callback: dr_log_cb,
    userdata: *mut c_void,
    level: i32,
) -> dr_status {
    guard::status(|| {
        install();
        let sink = callback.map(|callback| Sink { callback, userdata });
        let level = if sink.is_some() {
            from_c(level)
        } else {
            log::LevelFilter::Off
        };
        *LOGGER.sink.write().unwrap_or_else(|e| e.into_inner()) = sink;
        let stderr = *LOGGER.stderr.read().unwrap_or_else(|e| e.into_inner());
        log::set_max_level(level.max(stderr));
        Ok(())
    })
}
