use std::ffi::{CStr, CString};
use std::os::raw::{c_char, c_int, c_uint, c_ulong, c_void};
use std::ptr::{self, NonNull};
use std::sync::Once;
use std::time::Duration;

use mysqlclient_sys as ffi;

use crate::nonblocking::{wait_one, Ready, Wait};
use crate::result::NULL_CELL;
use crate::{AbortHandle, ConnectOptions, Deadline, Error, QueryResult};

/// `SERVER_STATUS_IN_TRANS` from `mysql_com.h`.
const SERVER_STATUS_IN_TRANS: c_uint = 1;

/// Set an option that reads an `unsigned int *` (the option enum type is not nameable in
/// `mysqlclient-sys`'s MariaDB bindings, hence a macro).
macro_rules! set_uint_option {
    ($raw:expr, $option:ident, $value:expr) => {{
        let value: c_uint = $value;
        // SAFETY: this option reads an `unsigned int *`; `value` lives across the call.
        unsafe {
            ffi::mysql_options(
                $raw,
                ffi::mysql_option::$option,
                &value as *const c_uint as *const c_void,
            );
        }
    }};
}

static LIBRARY_INIT: Once = Once::new();

/// Initialise the C client library once per process (`mysql_library_init`). Thread-safe.
fn library_init() {
    LIBRARY_INIT.call_once(|| {
        // SAFETY: called exactly once, before any other client call of this crate.
        unsafe {
            ffi::mysql_server_init(0, ptr::null_mut(), ptr::null_mut());
        }
    });
}

pub(crate) fn client_info() -> String {
    library_init();
    // SAFETY: returns a static NUL-terminated string owned by the library.
    unsafe { CStr::from_ptr(ffi::mysql_get_client_info()) }
        .to_string_lossy()
        .into_owned()
}

/// Why [`Connection::query_checked`] failed, and whether the statement reached the server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum QueryFailure {
    /// The statement was certainly not executed: the connection was found dead before sending,
    /// or sending failed. Safe to retry elsewhere.
    NotSent(Error),
    /// The statement was sent; the error came after. If the error is a connection loss, the
    /// outcome is unknown: it may or may not have been executed.
    Sent(Error),
}

impl QueryFailure {
    /// The underlying error.
    pub fn error(&self) -> &Error {
        match self {
            QueryFailure::NotSent(e) | QueryFailure::Sent(e) => e,
        }
    }
}

/// One open connection to a MySQL/MariaDB server. Closes on drop (sends `COM_QUIT`).
///
/// `Send` but not `Sync`: use it from one thread at a time. Never uses `MYSQL_OPT_RECONNECT`.
pub struct Connection {
    raw: NonNull<ffi::MYSQL>,
    /// True once a deadline expired mid-operation: the handle is unusable and only closed.
    broken: bool,
    /// The non-blocking operation in progress, with what it must keep alive until it ends.
    pending: Pending,
}

/// A non-blocking operation in progress on a [`Connection`].
enum Pending {
    Idle,
    Connect {
        /// The C strings the connect reads until it ends.
        _strings: CStrings,
        ssl_mode: crate::SslMode,
    },
    Query {
        /// The statement the query reads until it is sent.
        _sql: Vec<u8>,
    },
    Store,
    Ping,
}

/// The end of a non-blocking operation.
#[derive(Debug)]
pub enum Done {
    /// [`Connection::start_connect`] finished: connected and authenticated.
    Connected,
    /// [`Connection::start_query`] finished: the statement's whole result.
    Rows(QueryResult),
    /// [`Connection::start_ping`] finished.
    Pong,
}

/// Progress of a non-blocking operation.
#[derive(Debug)]
#[must_use]
pub enum NonBlockingStep {
    /// Suspended: call [`Connection::resume`] once the [`Wait`] is ready.
    Wait(Wait),
    /// Finished: the result of the whole operation.
    Done(Result<Done, Error>),
}

// SAFETY: a MYSQL handle may move between threads as long as only one uses it at a time, which
// `&mut self` on every call enforces (Connector/C is thread-safe per handle).
unsafe impl Send for Connection {}

struct CStrings {
    ssl_ca: Option<CString>,
    host: Option<CString>,
    user: CString,
    password: CString,
    database: Option<CString>,
    unix_socket: Option<CString>,
}

fn c_string(what: &str, value: &str) -> Result<CString, Error> {
    CString::new(value).map_err(|_| Error::invalid_argument(format!("{what} contains a NUL byte")))
}

fn opt_ptr(s: &Option<CString>) -> *const c_char {
    s.as_ref().map_or(ptr::null(), |s| s.as_ptr())
}

impl CStrings {
    fn new(opts: &ConnectOptions) -> Result<Self, Error> {
        let unix_socket = match &opts.unix_socket {
            Some(p) => Some(c_string("socket path", &p.to_string_lossy())?),
            None => None,
        };
        if opts.ssl_mode.verifies() && opts.ssl_ca.is_none() {
            return Err(Error::invalid_argument(
                "ssl_mode VERIFY_CA / VERIFY_IDENTITY needs a CA file (ssl_ca)",
            ));
        }
        Ok(CStrings {
            // Connector/C verifies the chain whenever a CA is set: pass it only when the mode
            // asks for verification (PREFERRED / REQUIRED encrypt without checking).
            ssl_ca: match (&opts.ssl_ca, opts.ssl_mode.verifies()) {
                (Some(p), true) => Some(c_string("ssl_ca", &p.to_string_lossy())?),
                _ => None,
            },
            host: if unix_socket.is_some() {
                Some(c_string("host", "localhost")?)
            } else {
                Some(c_string("host", &opts.host)?)
            },
            user: c_string("user", &opts.user)?,
            password: c_string("password", opts.password.expose())?,
            database: match &opts.database {
                Some(db) => Some(c_string("database", db)?),
                None => None,
            },
            unix_socket,
        })
    }
}

fn whole_seconds(d: Duration) -> c_uint {
    d.as_millis().div_ceil(1000).clamp(1, u32::MAX as u128) as c_uint
}

impl Connection {
    fn init_handle() -> Result<NonNull<ffi::MYSQL>, Error> {
        library_init();
        // SAFETY: mysql_init(NULL) allocates a fresh handle or returns NULL on OOM.
        let raw = unsafe { ffi::mysql_init(ptr::null_mut()) };
        NonNull::new(raw).ok_or_else(|| Error::invalid_argument("mysql_init: out of memory"))
    }

    /// Apply the TLS policy (Connector/C uses TLS only when asked).
    fn apply_tls(raw: *mut ffi::MYSQL, opts: &ConnectOptions, strings: &CStrings) {
        use crate::SslMode;
        if opts.ssl_mode == SslMode::Disabled {
            return;
        }
        // SAFETY: NULL or live NUL-terminated strings; the library copies them.
        unsafe {
            ffi::mysql_ssl_set(
                raw,
                ptr::null(),
                ptr::null(),
                opt_ptr(&strings.ssl_ca),
                ptr::null(),
                ptr::null(),
            );
        }
        let on: std::os::raw::c_char = 1;
        if opts.ssl_mode != SslMode::Preferred {
            // SAFETY: this option reads a `my_bool *`; `on` lives across the call.
            unsafe {
                ffi::mysql_options(
                    raw,
                    ffi::mysql_option::MYSQL_OPT_SSL_ENFORCE,
                    &on as *const _ as *const c_void,
                );
            }
        }
        if opts.ssl_mode == SslMode::VerifyIdentity {
            // SAFETY: as above.
            unsafe {
                ffi::mysql_options(
                    raw,
                    ffi::mysql_option::MYSQL_OPT_SSL_VERIFY_SERVER_CERT,
                    &on as *const _ as *const c_void,
                );
            }
        }
    }

    fn apply_auth(raw: *mut ffi::MYSQL, opts: &ConnectOptions) {
        if opts.cleartext_plugin {
            let on: std::os::raw::c_char = 1;
            // SAFETY: this option reads a `my_bool *`; `on` lives across the call.
            unsafe {
                ffi::mysql_options(
                    raw,
                    ffi::mysql_option::MYSQL_ENABLE_CLEARTEXT_PLUGIN,
                    &on as *const _ as *const c_void,
                );
            }
        }
    }

    fn apply_timeouts(raw: *mut ffi::MYSQL, opts: &ConnectOptions) {
        set_uint_option!(
            raw,
            MYSQL_OPT_CONNECT_TIMEOUT,
            whole_seconds(opts.connect_timeout)
        );
        if let Some(t) = opts.read_timeout {
            set_uint_option!(raw, MYSQL_OPT_READ_TIMEOUT, whole_seconds(t));
        }
        if let Some(t) = opts.write_timeout {
            set_uint_option!(raw, MYSQL_OPT_WRITE_TIMEOUT, whole_seconds(t));
        }
    }

    /// Connect, blocking up to the options' connect timeout (whole seconds).
    pub fn connect(opts: &ConnectOptions) -> Result<Connection, Error> {
        let strings = CStrings::new(opts)?;
        let raw = Self::init_handle()?;
        let conn = Connection {
            raw,
            broken: false,
            pending: Pending::Idle,
        };
        Self::apply_timeouts(raw.as_ptr(), opts);
        Self::apply_tls(raw.as_ptr(), opts, &strings);
        Self::apply_auth(raw.as_ptr(), opts);
        // SAFETY: every pointer is a live NUL-terminated string or NULL; `raw` is ours.
        let ok = unsafe {
            ffi::mysql_real_connect(
                raw.as_ptr(),
                opt_ptr(&strings.host),
                strings.user.as_ptr(),
                strings.password.as_ptr(),
                opt_ptr(&strings.database),
                opts.port as c_uint,
                opt_ptr(&strings.unix_socket),
                0,
            )
        };
        if ok.is_null() {
            return Err(conn.last_error());
        }
        conn.check_tls_required(opts)?;
        Ok(conn)
    }

    /// `REQUIRED` and stricter must not silently fall back to plain text (Connector/C 3.3's
    /// `MYSQL_OPT_SSL_ENFORCE` does not refuse a server without TLS).
    fn check_tls_required(&self, opts: &ConnectOptions) -> Result<(), Error> {
        self.check_tls_mode(opts.ssl_mode)
    }

    fn check_tls_mode(&self, ssl_mode: crate::SslMode) -> Result<(), Error> {
        use crate::SslMode;
        let required = !matches!(ssl_mode, SslMode::Disabled | SslMode::Preferred);
        if required && self.tls_cipher().is_none() {
            return Err(Error::from_server(
                2026,
                "HY000",
                "TLS is required (ssl_mode) but the server did not negotiate it",
            ));
        }
        Ok(())
    }

    /// Connect with a millisecond deadline covering TCP connect, handshake and authentication.
    /// Blocks at most until `deadline`. The connection is left in non-blocking-capable mode, so
    /// [`Connection::query_within`] works on it; the blocking calls work too.
    pub fn connect_within(opts: &ConnectOptions, deadline: Deadline) -> Result<Connection, Error> {
        let (mut conn, step) = Connection::start_connect(opts)?;
        conn.finish_connect(step, deadline)?;
        Ok(conn)
    }

    /// Drive a connect begun with [`Connection::start_connect`] to its end in this thread,
    /// bounded by `deadline` (blocks at most until then). Unlike [`Connection::connect_within`]
    /// the connection stays yours whatever happens, so its [`AbortHandle`] (taken after the
    /// start, while it logs in) can be withdrawn from wherever it was shared before the socket
    /// is closed. After an error the connection is unusable.
    pub fn finish_connect(
        &mut self,
        step: NonBlockingStep,
        deadline: Deadline,
    ) -> Result<(), Error> {
        self.finish(step, deadline, "connect").map(|_| ())
    }

    /// Start connecting without blocking (the non-blocking API): returns the connection, not
    /// usable until the returned [`NonBlockingStep`] (and those [`Connection::resume`] returns) reaches
    /// [`NonBlockingStep::Done`]. Drive many at once with a [`crate::PollSet`]; bound each by your own
    /// deadline and drop the connection when it passes.
    pub fn start_connect(opts: &ConnectOptions) -> Result<(Connection, NonBlockingStep), Error> {
        let strings = CStrings::new(opts)?;
        let raw = Self::init_handle()?;
        let mut conn = Connection {
            raw,
            broken: false,
            pending: Pending::Idle,
        };
        Self::apply_tls(raw.as_ptr(), opts, &strings);
        Self::apply_auth(raw.as_ptr(), opts);
        if let Some(t) = opts.read_timeout {
            set_uint_option!(raw.as_ptr(), MYSQL_OPT_READ_TIMEOUT, whole_seconds(t));
        }
        // SAFETY: MYSQL_OPT_NONBLOCK takes a size_t stack size pointer or NULL (default).
        unsafe {
            ffi::mysql_options(
                raw.as_ptr(),
                ffi::mysql_option::MYSQL_OPT_NONBLOCK,
                ptr::null(),
            );
        }
        let mut ret: *mut ffi::MYSQL = ptr::null_mut();
        // SAFETY: as in `connect`; the strings are kept in `pending` until the operation ends
        // (their heap buffers do not move with the struct).
        let status = unsafe {
            ffi::mysql_real_connect_start(
                &mut ret,
                raw.as_ptr(),
                opt_ptr(&strings.host),
                strings.user.as_ptr(),
                strings.password.as_ptr(),
                opt_ptr(&strings.database),
                opts.port as c_uint,
                opt_ptr(&strings.unix_socket),
                0,
            )
        };
        conn.pending = Pending::Connect {
            _strings: strings,
            ssl_mode: opts.ssl_mode,
        };
        let step = if status != 0 {
            NonBlockingStep::Wait(conn.wait_for(status))
        } else {
            conn.connected(ret)
        };
        Ok((conn, step))
    }

    /// Start a statement without blocking; its result comes as [`Done::Rows`]. Only on
    /// connections made by [`Connection::start_connect`] / [`Connection::connect_within`].
    pub fn start_query(&mut self, sql: &str) -> NonBlockingStep {
        if let Err(e) = self.check_idle() {
            return NonBlockingStep::Done(Err(e));
        }
        let sql = sql.as_bytes().to_vec();
        let mut rc: c_int = 0;
        // SAFETY: `sql` is kept in `pending` until the operation ends (its buffer does not
        // move); NUL bytes are legal in a counted query.
        let status = unsafe {
            ffi::mysql_real_query_start(
                &mut rc,
                self.raw(),
                sql.as_ptr() as *const c_char,
                sql.len() as c_ulong,
            )
        };
        self.pending = Pending::Query { _sql: sql };
        if status != 0 {
            NonBlockingStep::Wait(self.wait_for(status))
        } else {
            self.queried(rc)
        }
    }

    /// Start a `mysql_ping` without blocking; it ends as [`Done::Pong`].
    pub fn start_ping(&mut self) -> NonBlockingStep {
        if let Err(e) = self.check_idle() {
            return NonBlockingStep::Done(Err(e));
        }
        let mut rc: c_int = 0;
        // SAFETY: starts a ping on our live handle.
        let status = unsafe { ffi::mysql_ping_start(&mut rc, self.raw()) };
        self.pending = Pending::Ping;
        if status != 0 {
            NonBlockingStep::Wait(self.wait_for(status))
        } else {
            self.pinged(rc)
        }
    }

    /// Continue the operation in progress with what became ready for its last [`Wait`].
    /// Never blocks.
    pub fn resume(&mut self, ready: Ready) -> NonBlockingStep {
        let raw = self.raw();
        match self.pending {
            Pending::Idle => NonBlockingStep::Done(Err(Error::invalid_argument(
                "resume: no operation in progress",
            ))),
            Pending::Connect { .. } => {
                let mut ret: *mut ffi::MYSQL = ptr::null_mut();
                // SAFETY: continues the connect started on this handle.
                let status = unsafe { ffi::mysql_real_connect_cont(&mut ret, raw, ready.0) };
                if status != 0 {
                    return NonBlockingStep::Wait(self.wait_for(status));
                }
                self.connected(ret)
            }
            Pending::Query { .. } => {
                let mut rc: c_int = 0;
                // SAFETY: continues the query started on this handle.
                let status = unsafe { ffi::mysql_real_query_cont(&mut rc, raw, ready.0) };
                if status != 0 {
                    return NonBlockingStep::Wait(self.wait_for(status));
                }
                self.queried(rc)
            }
            Pending::Store => {
                let mut res: *mut ffi::MYSQL_RES = ptr::null_mut();
                // SAFETY: continues the fetch started on this handle.
                let status = unsafe { ffi::mysql_store_result_cont(&mut res, raw, ready.0) };
                if status != 0 {
                    return NonBlockingStep::Wait(self.wait_for(status));
                }
                self.pending = Pending::Idle;
                NonBlockingStep::Done(self.collect(res).map(Done::Rows))
            }
            Pending::Ping => {
                let mut rc: c_int = 0;
                // SAFETY: continues the ping started on this handle.
                let status = unsafe { ffi::mysql_ping_cont(&mut rc, raw, ready.0) };
                if status != 0 {
                    return NonBlockingStep::Wait(self.wait_for(status));
                }
                self.pinged(rc)
            }
        }
    }

    /// Give up the operation in progress (its deadline passed): the connection becomes
    /// unusable and is only closed. Never blocks.
    pub fn abandon(&mut self) {
        if !matches!(self.pending, Pending::Idle) {
            self.broken = true;
        }
    }

    /// Whether a non-blocking operation is in progress.
    pub fn in_operation(&self) -> bool {
        !matches!(self.pending, Pending::Idle)
    }

    fn check_idle(&self) -> Result<(), Error> {
        self.check_usable()?;
        if self.in_operation() {
            return Err(Error::invalid_argument(
                "another operation is in progress on this connection",
            ));
        }
        Ok(())
    }

    fn wait_for(&self, status: c_int) -> Wait {
        // SAFETY: live handle; both calls return plain integers.
        let fd = unsafe { ffi::mysql_get_socket(self.raw()) };
        let timeout = (status & ffi::MYSQL_WAIT_TIMEOUT as c_int != 0).then(|| {
            // SAFETY: as above.
            Duration::from_millis(unsafe { ffi::mysql_get_timeout_value_ms(self.raw()) } as u64)
        });
        Wait {
            fd,
            status,
            timeout,
        }
    }

    fn connected(&mut self, ret: *mut ffi::MYSQL) -> NonBlockingStep {
        let Pending::Connect { ssl_mode, .. } = std::mem::replace(&mut self.pending, Pending::Idle)
        else {
            return NonBlockingStep::Done(Err(Error::invalid_argument("connect: not connecting")));
        };
        if ret.is_null() {
            self.broken = true;
            return NonBlockingStep::Done(Err(self.last_error()));
        }
        NonBlockingStep::Done(self.check_tls_mode(ssl_mode).map(|()| Done::Connected))
    }

    fn queried(&mut self, rc: c_int) -> NonBlockingStep {
        if rc != 0 {
            self.pending = Pending::Idle;
            return NonBlockingStep::Done(Err(self.last_error()));
        }
        let mut res: *mut ffi::MYSQL_RES = ptr::null_mut();
        // SAFETY: fetches the result of the completed query on the same handle.
        let status = unsafe { ffi::mysql_store_result_start(&mut res, self.raw()) };
        if status != 0 {
            self.pending = Pending::Store;
            return NonBlockingStep::Wait(self.wait_for(status));
        }
        self.pending = Pending::Idle;
        NonBlockingStep::Done(self.collect(res).map(Done::Rows))
    }

    fn pinged(&mut self, rc: c_int) -> NonBlockingStep {
        self.pending = Pending::Idle;
        if rc != 0 {
            return NonBlockingStep::Done(Err(self.last_error()));
        }
        NonBlockingStep::Done(Ok(Done::Pong))
    }

    /// Drive `step` to its end in this thread, bounded by `deadline`; an expired deadline
    /// leaves the connection unusable.
    fn finish(
        &mut self,
        mut step: NonBlockingStep,
        deadline: Deadline,
        what: &str,
    ) -> Result<Done, Error> {
        loop {
            let wait = match step {
                NonBlockingStep::Done(result) => return result,
                NonBlockingStep::Wait(wait) => wait,
            };
            match wait_one(wait, deadline) {
                Ok(Some(ready)) => step = self.resume(ready),
                Ok(None) => {
                    self.broken = true;
                    return Err(Error::timeout(what));
                }
                Err(e) => {
                    self.broken = true;
                    return Err(Error::connection_lost(format!("{what}: poll failed: {e}")));
                }
            }
        }
    }

    fn raw(&self) -> *mut ffi::MYSQL {
        self.raw.as_ptr()
    }

    fn check_usable(&self) -> Result<(), Error> {
        if self.broken {
            Err(Error::connection_lost(
                "connection is unusable after an expired deadline",
            ))
        } else {
            Ok(())
        }
    }

    /// The error the C client recorded last on this handle.
    fn last_error(&self) -> Error {
        // SAFETY: the handle is live; the returned strings are owned by it and copied at once.
        unsafe {
            let errno = ffi::mysql_errno(self.raw());
            let sqlstate = CStr::from_ptr(ffi::mysql_sqlstate(self.raw())).to_string_lossy();
            let message = CStr::from_ptr(ffi::mysql_error(self.raw())).to_string_lossy();
            Error::from_server(errno, &sqlstate, &message)
        }
    }

    /// Run a statement and fetch its whole result. Blocks until the server answers (or the
    /// read timeout, or an [`AbortHandle::abort`] from another thread).
    pub fn query(&mut self, sql: &str) -> Result<QueryResult, Error> {
        self.check_usable()?;
        // SAFETY: `sql` is valid for `len` bytes (NUL bytes are legal in a counted query).
        let rc = unsafe {
            ffi::mysql_real_query(
                self.raw(),
                sql.as_ptr() as *const c_char,
                sql.len() as c_ulong,
            )
        };
        if rc != 0 {
            return Err(self.last_error());
        }
        self.fetch_result()
    }

    /// Like [`Connection::query`], but says whether the statement reached the server.
    ///
    /// Before sending, one non-blocking `poll(2)` checks that the idle socket was not closed or
    /// reset by the server (a killed server's kernel sends FIN/RST); such a statement is
    /// reported [`QueryFailure::NotSent`].
    pub fn query_checked(&mut self, sql: &str) -> Result<QueryResult, QueryFailure> {
        self.check_usable().map_err(QueryFailure::NotSent)?;
        if self.abort_handle().looks_dead() {
            self.broken = true;
            return Err(QueryFailure::NotSent(Error::connection_lost(
                "server closed the idle connection",
            )));
        }
        // SAFETY: as in `query`.
        let rc = unsafe {
            ffi::mysql_send_query(
                self.raw(),
                sql.as_ptr() as *const c_char,
                sql.len() as c_ulong,
            )
        };
        if rc != 0 {
            return Err(QueryFailure::NotSent(self.last_error()));
        }
        // SAFETY: reads the answer to the query sent above on the same handle.
        if unsafe { ffi::mysql_read_query_result(self.raw()) } != 0 {
            return Err(QueryFailure::Sent(self.last_error()));
        }
        self.fetch_result().map_err(QueryFailure::Sent)
    }

    /// Run a statement with a millisecond deadline (non-blocking API + `poll`). Only on
    /// connections made by [`Connection::connect_within`]. When the deadline expires the
    /// connection becomes unusable (the statement may still run on the server); drop it.
    pub fn query_within(&mut self, sql: &str, deadline: Deadline) -> Result<QueryResult, Error> {
        let step = self.start_query(sql);
        match self.finish(step, deadline, "query")? {
            Done::Rows(rows) => Ok(rows),
            _ => Ok(QueryResult::default()),
        }
    }

    fn fetch_result(&mut self) -> Result<QueryResult, Error> {
        // SAFETY: a query completed on this handle; store_result reads its rows (or none).
        let res = unsafe { ffi::mysql_store_result(self.raw()) };
        self.collect(res)
    }

    /// Copy a stored result into a [`QueryResult`] and free it.
    fn collect(&mut self, res: *mut ffi::MYSQL_RES) -> Result<QueryResult, Error> {
        let mut out = QueryResult::default();
        if res.is_null() {
            // SAFETY: live handle.
            if unsafe { ffi::mysql_field_count(self.raw()) } != 0 {
                return Err(self.last_error());
            }
            // SAFETY: live handle.
            out.affected_rows = unsafe { ffi::mysql_affected_rows(self.raw()) };
            // SAFETY: live handle.
            out.insert_id = unsafe { ffi::mysql_insert_id(self.raw()) };
            return Ok(out);
        }
        // SAFETY: `res` is a stored result owned by us until mysql_free_result below; field
        // and row pointers stay valid until then, and lengths give each cell's size.
        unsafe {
            let width = ffi::mysql_num_fields(res) as usize;
            let rows = ffi::mysql_num_rows(res) as usize;
            let name = |i: usize| -> &[u8] {
                let field = ffi::mysql_fetch_field_direct(res, i as c_uint);
                if field.is_null() || (*field).name.is_null() {
                    b""
                } else {
                    CStr::from_ptr((*field).name).to_bytes()
                }
            };
            // Size both buffers exactly (one pass over the lengths, then rewind), so each is
            // one allocation with no regrowth.
            let mut bytes: usize = (0..width).map(|i| name(i).len() + 1).sum();
            for_each_cell(res, width, |cell| {
                if let Some(value) = cell {
                    bytes += value.len() + 1;
                }
            });
            ffi::mysql_data_seek(res, 0);
            out.width = width;
            out.data = Vec::with_capacity(bytes);
            out.index = Vec::with_capacity(width + rows * width);
            for i in 0..width {
                let name = name(i);
                out.index.push((out.data.len(), name.len()));
                out.data.extend_from_slice(name);
                out.data.push(0);
            }
            for_each_cell(res, width, |cell| match cell {
                None => out.index.push((NULL_CELL, 0)),
                Some(value) => {
                    out.index.push((out.data.len(), value.len()));
                    out.data.extend_from_slice(value);
                    out.data.push(0); // C callers get NUL-terminated cells for free.
                }
            });
            out.affected_rows = ffi::mysql_affected_rows(self.raw());
            out.insert_id = ffi::mysql_insert_id(self.raw());
            ffi::mysql_free_result(res);
        }
        Ok(out)
    }

    /// `mysql_ping`: a round trip that checks the connection. Blocks; never reconnects.
    pub fn ping(&mut self) -> Result<(), Error> {
        self.check_usable()?;
        // SAFETY: live handle.
        if unsafe { ffi::mysql_ping(self.raw()) } != 0 {
            return Err(self.last_error());
        }
        Ok(())
    }

    /// `mysql_ping` with a millisecond deadline (non-blocking API + `poll`). Only on
    /// connections made by [`Connection::connect_within`]; an expired deadline leaves the
    /// connection unusable.
    pub fn ping_within(&mut self, deadline: Deadline) -> Result<(), Error> {
        let step = self.start_ping();
        self.finish(step, deadline, "ping").map(|_| ())
    }

    /// A handle that shuts this connection's socket down from another thread.
    pub fn abort_handle(&self) -> AbortHandle {
        // SAFETY: live handle; returns an int.
        AbortHandle::new(unsafe { ffi::mysql_get_socket(self.raw()) })
    }

    /// Whether the server reported an open transaction after the last statement
    /// (`SERVER_STATUS_IN_TRANS`). Cheap: reads a field.
    pub fn in_transaction(&self) -> bool {
        // SAFETY: live handle; `server_status` is a plain field updated by every reply.
        unsafe { (*self.raw()).server_status & SERVER_STATUS_IN_TRANS != 0 }
    }

    /// The server's version string, e.g. `10.11.19-MariaDB-0+deb12u1-log`.
    pub fn server_version(&self) -> String {
        // SAFETY: live handle; string owned by it, copied at once.
        unsafe {
            let p = ffi::mysql_get_server_info(self.raw());
            if p.is_null() {
                String::new()
            } else {
                CStr::from_ptr(p).to_string_lossy().into_owned()
            }
        }
    }

    /// The TLS cipher in use, or `None` for a plain-text connection.
    pub fn tls_cipher(&self) -> Option<String> {
        // SAFETY: live handle; returns NULL or a string owned by the handle, copied at once.
        unsafe {
            let p = ffi::mysql_get_ssl_cipher(self.raw());
            (!p.is_null()).then(|| CStr::from_ptr(p).to_string_lossy().into_owned())
        }
    }

    /// The server-side connection id.
    pub fn thread_id(&self) -> u64 {
        // SAFETY: live handle.
        unsafe { ffi::mysql_thread_id(self.raw()) as u64 }
    }

    /// The errno of the last call on this handle (0 after a success). Cheap.
    pub fn last_errno(&self) -> u32 {
        // SAFETY: live handle.
        unsafe { ffi::mysql_errno(self.raw()) }
    }

    /// `value` escaped by the client library (`mysql_real_escape_string`) for use between
    /// single quotes in a statement on this connection: it follows the connection's
    /// character set and the server's `NO_BACKSLASH_ESCAPES` mode (then quotes are doubled
    /// and backslashes kept). Never escape by hand. Does not block; allocates `2 × len + 1`.
    /// Identifiers cannot be escaped this way: validate them instead.
    pub fn escape_literal(&mut self, value: &str) -> Result<String, Error> {
        if value.contains('\0') {
            return Err(Error::invalid_argument(
                "a string literal contains a NUL byte",
            ));
        }
        let mut out = vec![0u8; value.len() * 2 + 1];
        // SAFETY: live, connected handle; `out` holds 2 × len + 1 bytes as the C API
        // requires; `value` is read for exactly `len` bytes.
        let written = unsafe {
            ffi::mysql_real_escape_string(
                self.raw(),
                out.as_mut_ptr() as *mut c_char,
                value.as_ptr() as *const c_char,
                value.len() as c_ulong,
            )
        };
        if written == c_ulong::MAX {
            return Err(Error::invalid_argument(
                "the client library could not escape a string literal",
            ));
        }
        out.truncate(written as usize);
        String::from_utf8(out)
            .map_err(|_| Error::invalid_argument("an escaped string literal is not UTF-8"))
    }

    /// Whether an expired deadline left this connection unusable.
    pub fn is_broken(&self) -> bool {
        self.broken
    }

    /// The raw `MYSQL *` for callers that need the C API (the C ABI's lease). The pointer stays
    /// owned by this `Connection`; do not close it.
    pub fn as_raw(&mut self) -> *mut c_void {
        self.raw() as *mut c_void
    }
}

impl Drop for Connection {
    fn drop(&mut self) {
        if self.broken || self.in_operation() {
            // A half-finished operation: make sure COM_QUIT cannot block on a dead peer.
            self.abort_handle().abort();
        }
        // SAFETY: we own the handle; it is closed exactly once here.
        unsafe { ffi::mysql_close(self.raw()) }
    }
}

impl std::fmt::Debug for Connection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Connection")
            .field("fd", &self.abort_handle().fd())
            .field("broken", &self.broken)
            .finish()
    }
}

/// Call `f` with every cell of the stored result `res` from its current row on, row-major:
/// `None` for SQL NULL, else the value's bytes (valid until `res` is freed).
///
/// # Safety
/// `res` must be a live stored result with `width` columns.
unsafe fn for_each_cell(res: *mut ffi::MYSQL_RES, width: usize, mut f: impl FnMut(Option<&[u8]>)) {
    loop {
        // SAFETY: live stored result (caller's contract).
        let row = unsafe { ffi::mysql_fetch_row(res) };
        if row.is_null() {
            return;
        }
        // SAFETY: a row was just fetched, so its lengths exist, one per column.
        let lengths = unsafe { ffi::mysql_fetch_lengths(res) };
        for col in 0..width {
            // SAFETY: `row` and `lengths` hold `width` entries; a non-NULL cell points at
            // `length` readable bytes that live as long as `res`.
            let cell = unsafe {
                let cell = *row.add(col);
                (!cell.is_null()).then(|| {
                    std::slice::from_raw_parts(cell as *const u8, *lengths.add(col) as usize)
                })
            };
            f(cell);
        }
    }
}
