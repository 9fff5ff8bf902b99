use std::fmt;

/// What kind of failure an error is, as far as a failover layer cares.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorClass {
    /// The connection is gone or never came up (2002, 2003, 2006, 2013, 2055, …).
    ConnectionLost,
    /// The server refused a write because it is read-only (1290, 1792, 1836).
    ReadOnly,
    /// Credentials were rejected (1045, 1698, 1044, 1227 at connect) — not a dead node.
    Auth,
    /// TLS could not be established or the server certificate failed verification (2026):
    /// a configuration problem, not a dead node.
    Tls,
    /// The server is out of connection slots (1040, 1203).
    TooManyConnections,
    /// Lock wait timeout or deadlock (1205, 1213): the statement was rolled back.
    Lock,
    /// A millisecond deadline set by this crate expired.
    Timeout,
    /// The caller passed something the C API cannot take (e.g. a NUL byte in a string).
    InvalidArgument,
    /// Any other server-side error: bad SQL, constraint violations, …
    Sql,
}

/// An error from the C client or from this wrapper. `Display` never contains a password.
#[derive(Clone, PartialEq, Eq, thiserror::Error)]
pub struct Error {
    errno: u32,
    sqlstate: String,
    message: String,
    class: ErrorClass,
    os_errno: Option<i32>,
}

impl Error {
    /// Build an error from a MySQL errno, SQLSTATE and message.
    ///
    /// With TLS requested, Connector/C reports a server error sent before the TLS handshake
    /// (e.g. 1040) as 2002 "…cannot be verified: 1040 - Too many connections"; such errors are
    /// classified by the wrapped server errno.
    pub fn from_server(errno: u32, sqlstate: &str, message: &str) -> Self {
        let class = match wrapped_errno(errno, message) {
            Some(inner) => classify(inner),
            None => classify(errno),
        };
        Error {
            errno,
            sqlstate: sqlstate.to_string(),
            message: message.to_string(),
            class,
            os_errno: os_errno(errno, message),
        }
    }

    /// A deadline set by this crate expired during `what`.
    pub fn timeout(what: &str) -> Self {
        Error {
            errno: 0,
            sqlstate: "HY000".into(),
            message: format!("{what}: deadline expired"),
            class: ErrorClass::Timeout,
            os_errno: None,
        }
    }

    /// An argument the C API cannot take.
    pub fn invalid_argument(message: impl Into<String>) -> Self {
        Error {
            errno: 0,
            sqlstate: "HY000".into(),
            message: message.into(),
            class: ErrorClass::InvalidArgument,
            os_errno: None,
        }
    }

    /// A connection-level failure detected by this crate rather than the C client (errno 2013).
    pub fn connection_lost(message: impl Into<String>) -> Self {
        Error {
            errno: 2013,
            sqlstate: "HY000".into(),
            message: message.into(),
            class: ErrorClass::ConnectionLost,
            os_errno: None,
        }
    }

    /// The MySQL/MariaDB error number (0 when the error did not come from the client library).
    pub fn errno(&self) -> u32 {
        self.errno
    }

    /// The five-character SQLSTATE.
    pub fn sqlstate(&self) -> &str {
        &self.sqlstate
    }

    /// The human-readable message.
    pub fn message(&self) -> &str {
        &self.message
    }

    /// The failure class.
    pub fn class(&self) -> ErrorClass {
        self.class
    }

    /// The operating system's errno behind a failed connect (2002/2003), when the C client
    /// reported one (e.g. 111 `ECONNREFUSED`, 110 `ETIMEDOUT`, 113 `EHOSTUNREACH`).
    pub fn os_errno(&self) -> Option<i32> {
        self.os_errno
    }

    /// Nothing listens at the address: the connect was refused (RST), so the process is gone.
    pub fn refused(&self) -> bool {
        self.os_errno.is_some_and(|n| {
            std::io::Error::from_raw_os_error(n).kind() == std::io::ErrorKind::ConnectionRefused
        })
    }
}

/// The OS errno Connector/C appends to "can't connect" messages (`… on 'host' (111)`): the
/// only place the C API reports it. Parsed once, here, so no caller searches messages.
fn os_errno(errno: u32, message: &str) -> Option<i32> {
    if errno != 2002 && errno != 2003 {
        return None;
    }
    let inner = message.trim_end().strip_suffix(')')?;
    let open = inner.rfind('(')?;
    inner[open + 1..].trim().parse().ok().filter(|n| *n > 0)
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.errno != 0 {
            write!(f, "{} ({}): {}", self.errno, self.sqlstate, self.message)
        } else {
            f.write_str(&self.message)
        }
    }
}

impl fmt::Debug for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Error({:?}, {self})", self.class)
    }
}

/// The server errno inside Connector/C's "error packet before completion of TLS handshake".
fn wrapped_errno(errno: u32, message: &str) -> Option<u32> {
    if errno != 2002 {
        return None;
    }
    let rest = message.split("cannot be verified: ").nth(1)?;
    rest.split(|c: char| !c.is_ascii_digit())
        .next()?
        .parse()
        .ok()
}

/// Sort a MySQL/MariaDB errno into a class. Pure; used by probes and the retry rules.
pub fn classify(errno: u32) -> ErrorClass {
    match errno {
        // The TLS handshake or certificate verification failed: configuration, not death.
        2026 => ErrorClass::Tls,
        // Client-side connection errors: can't connect, server gone, lost, bad handshake,
        // connection aborted, command out of sync after a loss.
        2002
        | 2003
        | 2005
        | 2006
        | 2012
        | 2013
        | 2027
        | 2047
        | 2048
        | 2055
        | 5014
        | 1053
        | 1077
        | 1152
        | 1153
        | 1158..=1161
        | 1184
        | 1927
        | 4031 => ErrorClass::ConnectionLost,
        1290 | 1792 | 1836 => ErrorClass::ReadOnly,
        1044 | 1045 | 1698 | 1251 | 1862 => ErrorClass::Auth,
        1040 | 1203 => ErrorClass::TooManyConnections,
        1205 | 1213 => ErrorClass::Lock,
        _ => ErrorClass::Sql,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_errno_gets_its_documented_class() {
        for e in [2006, 2013, 2055, 2003, 2002] {
            assert_eq!(classify(e), ErrorClass::ConnectionLost, "{e}");
        }
        assert_eq!(classify(1290), ErrorClass::ReadOnly);
        assert_eq!(classify(2026), ErrorClass::Tls);
        assert_eq!(classify(1792), ErrorClass::ReadOnly);
        assert_eq!(classify(1045), ErrorClass::Auth);
        assert_eq!(classify(1698), ErrorClass::Auth);
        assert_eq!(classify(1040), ErrorClass::TooManyConnections);
        assert_eq!(classify(1205), ErrorClass::Lock);
        assert_eq!(classify(1213), ErrorClass::Lock);
        assert_eq!(classify(1064), ErrorClass::Sql);
    }

    #[test]
    fn server_errors_wrapped_by_the_tls_handshake_keep_their_class() {
        let e = Error::from_server(
            2002,
            "HY000",
            "Received error packet before completion of TLS handshake. The authenticity of the following error cannot be verified: 1040 - Too many connections",
        );
        assert_eq!(e.class(), ErrorClass::TooManyConnections);
        assert_eq!(
            Error::from_server(2002, "HY000", "Can't connect").class(),
            ErrorClass::ConnectionLost
        );
    }

    #[test]
    fn the_os_errno_of_a_failed_connect_is_typed() {
        let e = Error::from_server(
            2002,
            "HY000",
            "Can't connect to server on '127.0.0.1' (111)",
        );
        assert_eq!(e.os_errno(), Some(111));
        assert!(e.refused());
        let e = Error::from_server(2003, "HY000", "Can't connect to MySQL server on 'h' (110)");
        assert_eq!(e.os_errno(), Some(110));
        assert!(!e.refused());
        assert_eq!(
            Error::from_server(2013, "HY000", "Lost (111)").os_errno(),
            None
        );
        assert_eq!(
            Error::from_server(2003, "HY000", "Can't connect").os_errno(),
            None
        );
    }

    #[test]
    fn display_has_errno_sqlstate_and_message() {
        let e = Error::from_server(1045, "28000", "Access denied for user 'app'");
        assert_eq!(e.to_string(), "1045 (28000): Access denied for user 'app'");
        assert_eq!(e.class(), ErrorClass::Auth);
    }
}
