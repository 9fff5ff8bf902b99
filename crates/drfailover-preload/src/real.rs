//! The client library's own functions, found with `dlsym(RTLD_NEXT, …)`: the definitions this
//! library's exports hide. Resolved once per process (on the first interposed call); later
//! lookups are one atomic load. Never calls `mysqlclient-sys` functions directly: inside this
//! library those names bind to its own exports.

use std::ffi::{c_char, c_int, c_uint, c_ulong, c_void, CStr};
use std::sync::OnceLock;

use mysqlclient_sys::{my_bool, MYSQL, MYSQL_BIND, MYSQL_STMT};

/// `mysql_real_connect`.
pub type RealConnect = unsafe extern "C" fn(
    *mut MYSQL,
    *const c_char,
    *const c_char,
    *const c_char,
    *const c_char,
    c_uint,
    *const c_char,
    c_ulong,
) -> *mut MYSQL;

/// The functions this library wraps or calls. Every field is the next object's definition.
pub struct Real {
    /// `mysql_real_connect`.
    pub real_connect: RealConnect,
    /// `mysql_real_query`.
    pub real_query: unsafe extern "C" fn(*mut MYSQL, *const c_char, c_ulong) -> c_int,
    /// `mysql_query`.
    pub query: unsafe extern "C" fn(*mut MYSQL, *const c_char) -> c_int,
    /// `mysql_ping`.
    pub ping: unsafe extern "C" fn(*mut MYSQL) -> c_int,
    /// `mysql_select_db`.
    pub select_db: unsafe extern "C" fn(*mut MYSQL, *const c_char) -> c_int,
    /// `mysql_set_character_set`.
    pub set_character_set: unsafe extern "C" fn(*mut MYSQL, *const c_char) -> c_int,
    /// `mysql_commit`.
    pub commit: unsafe extern "C" fn(*mut MYSQL) -> my_bool,
    /// `mysql_rollback`.
    pub rollback: unsafe extern "C" fn(*mut MYSQL) -> my_bool,
    /// `mysql_autocommit`.
    pub autocommit: unsafe extern "C" fn(*mut MYSQL, my_bool) -> my_bool,
    /// `mysql_init`.
    pub init: unsafe extern "C" fn(*mut MYSQL) -> *mut MYSQL,
    /// `mysql_close`.
    pub close: unsafe extern "C" fn(*mut MYSQL),
    /// `mysql_get_socket`.
    pub get_socket: unsafe extern "C" fn(*mut MYSQL) -> c_int,
    /// `mysql_errno`.
    pub errno: unsafe extern "C" fn(*mut MYSQL) -> c_uint,
    /// `mariadb_reconnect`: re-establishes a handle in place (options, database, character
    /// set and statement list carried over), to `mysql->host`/`mysql->port`.
    pub mariadb_reconnect: unsafe extern "C" fn(*mut MYSQL) -> my_bool,
    /// `mysql_stmt_prepare`.
    pub stmt_prepare: unsafe extern "C" fn(*mut MYSQL_STMT, *const c_char, c_ulong) -> c_int,
    /// `mysql_stmt_execute`.
    pub stmt_execute: unsafe extern "C" fn(*mut MYSQL_STMT) -> c_int,
    /// `mysql_stmt_bind_param`.
    pub stmt_bind_param: unsafe extern "C" fn(*mut MYSQL_STMT, *mut MYSQL_BIND) -> my_bool,
    /// `mysql_stmt_bind_result`.
    pub stmt_bind_result: unsafe extern "C" fn(*mut MYSQL_STMT, *mut MYSQL_BIND) -> my_bool,
    /// `mysql_stmt_close`.
    pub stmt_close: unsafe extern "C" fn(*mut MYSQL_STMT) -> my_bool,
    /// `mysql_stmt_errno`.
    pub stmt_errno: unsafe extern "C" fn(*mut MYSQL_STMT) -> c_uint,
    /// `mysql_stmt_param_count`.
    pub stmt_param_count: unsafe extern "C" fn(*mut MYSQL_STMT) -> c_ulong,
    /// `mysql_stmt_field_count`.
    pub stmt_field_count: unsafe extern "C" fn(*mut MYSQL_STMT) -> c_uint,
}

static REAL: OnceLock<Option<Real>> = OnceLock::new();

/// The next object's functions, or `None` when the process has no MySQL client library with
/// all of them (then nothing here is ever called: the exports cannot have been reached by a
/// program that does not link one). One atomic load after the first call.
#[inline]
pub fn real() -> Option<&'static Real> {
    REAL.get_or_init(resolve).as_ref()
}

fn next(name: &CStr) -> Option<*mut c_void> {
    // SAFETY: `name` is NUL-terminated; RTLD_NEXT asks the objects loaded after this one.
    let f = unsafe { libc::dlsym(libc::RTLD_NEXT, name.as_ptr()) };
    (!f.is_null()).then_some(f)
}

/// A function pointer of type `F` from a `dlsym` address.
///
/// # Safety
/// `f` is the address of a function whose C signature is `F`.
unsafe fn function_from<F: Copy>(f: *mut c_void) -> F {
    const {
        assert!(std::mem::size_of::<F>() == std::mem::size_of::<*mut c_void>());
    }
    // SAFETY: per the contract; the sizes are equal (checked at compile time).
    unsafe { std::mem::transmute_copy::<*mut c_void, F>(&f) }
}

fn resolve() -> Option<Real> {
    macro_rules! load {
        ($name:literal) => {{
            let f = next($name)?;
            // SAFETY: the symbol of this name in libmariadb/libmysqlclient has the C signature
            // of the field it is stored in (mysql.h).
            unsafe { function_from(f) }
        }};
    }
    Some(Real {
        real_connect: load!(c"mysql_real_connect"),
        real_query: load!(c"mysql_real_query"),
        query: load!(c"mysql_query"),
        ping: load!(c"mysql_ping"),
        select_db: load!(c"mysql_select_db"),
        set_character_set: load!(c"mysql_set_character_set"),
        commit: load!(c"mysql_commit"),
        rollback: load!(c"mysql_rollback"),
        autocommit: load!(c"mysql_autocommit"),
        init: load!(c"mysql_init"),
        close: load!(c"mysql_close"),
        get_socket: load!(c"mysql_get_socket"),
        errno: load!(c"mysql_errno"),
        mariadb_reconnect: load!(c"mariadb_reconnect"),
        stmt_prepare: load!(c"mysql_stmt_prepare"),
        stmt_execute: load!(c"mysql_stmt_execute"),
        stmt_bind_param: load!(c"mysql_stmt_bind_param"),
        stmt_bind_result: load!(c"mysql_stmt_bind_result"),
        stmt_close: load!(c"mysql_stmt_close"),
        stmt_errno: load!(c"mysql_stmt_errno"),
        stmt_param_count: load!(c"mysql_stmt_param_count"),
        stmt_field_count: load!(c"mysql_stmt_field_count"),
    })
}
