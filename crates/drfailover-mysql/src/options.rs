use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

/// A string that never shows itself in `Debug` or `Display` output (passwords).
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Wrap a secret value.
    pub fn new(value: impl Into<String>) -> Self {
        Secret(value.into())
    }

    /// The secret itself. Call only where it is handed to the server.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// Whether the secret is empty (no password).
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(if self.0.is_empty() { "\"\"" } else { "\"***\"" })
    }
}

impl From<&str> for Secret {
    fn from(s: &str) -> Self {
        Secret::new(s)
    }
}

impl From<String> for Secret {
    fn from(s: String) -> Self {
        Secret(s)
    }
}

/// TLS policy, in MySQL's `--ssl-mode` vocabulary.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum SslMode {
    /// Never use TLS.
    Disabled,
    /// Use TLS when the server offers it; otherwise plain text. No certificate checks.
    #[default]
    Preferred,
    /// Require TLS; no certificate checks (encryption only).
    Required,
    /// Require TLS and a server certificate signed by `ssl_ca`; the name is not checked.
    VerifyCa,
    /// Require TLS, a certificate signed by `ssl_ca`, and that it names the host connected to.
    VerifyIdentity,
}

impl SslMode {
    /// Parse `DISABLED`, `PREFERRED`, `REQUIRED`, `VERIFY_CA` or `VERIFY_IDENTITY`
    /// (case-insensitive).
    pub fn parse(value: &str) -> Option<SslMode> {
        Some(match value.to_ascii_uppercase().as_str() {
            "DISABLED" => SslMode::Disabled,
            "PREFERRED" => SslMode::Preferred,
            "REQUIRED" => SslMode::Required,
            "VERIFY_CA" => SslMode::VerifyCa,
            "VERIFY_IDENTITY" => SslMode::VerifyIdentity,
            _ => return None,
        })
    }

    /// Whether the mode checks certificates (and so needs a CA).
    pub fn verifies(self) -> bool {
        matches!(self, SslMode::VerifyCa | SslMode::VerifyIdentity)
    }
}

/// Where and how to connect. Plain data: cheap to clone, `Debug` hides the password.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConnectOptions {
    /// Host name or IP address for TCP (ignored when `unix_socket` is set).
    pub host: String,
    /// TCP port.
    pub port: u16,
    /// Path of a Unix socket to use instead of TCP.
    pub unix_socket: Option<PathBuf>,
    /// User name.
    pub user: String,
    /// Password.
    pub password: Secret,
    /// Default database, if any.
    pub database: Option<String>,
    /// Connect timeout for the blocking [`crate::Connection::connect`] (rounded up to whole
    /// seconds by the C client; the `_within` variants honour milliseconds).
    pub connect_timeout: Duration,
    /// Read timeout of blocking calls (whole seconds in the C client; a backstop, not a
    /// detector). `None` leaves the C client's default (wait forever).
    pub read_timeout: Option<Duration>,
    /// Write timeout of blocking calls (whole seconds in the C client).
    pub write_timeout: Option<Duration>,
    /// TLS policy (default `Preferred`, like the `mysql` command-line client).
    pub ssl_mode: SslMode,
    /// CA certificate file (PEM) for `VerifyCa` / `VerifyIdentity`.
    pub ssl_ca: Option<PathBuf>,
    /// Allow the `mysql_clear_password` authentication plugin (the password is sent as is:
    /// RDS IAM tokens, PAM). Only together with a verifying `ssl_mode`.
    pub cleartext_plugin: bool,
}

impl ConnectOptions {
    /// Options for a TCP connection with empty user and password and a 10 s connect timeout.
    pub fn tcp(host: impl Into<String>, port: u16) -> Self {
        ConnectOptions {
            host: host.into(),
            port,
            unix_socket: None,
            user: String::new(),
            password: Secret::default(),
            database: None,
            connect_timeout: Duration::from_secs(10),
            read_timeout: None,
            write_timeout: None,
            ssl_mode: SslMode::default(),
            ssl_ca: None,
            cleartext_plugin: false,
        }
    }

    /// Options for a Unix-socket connection.
    pub fn unix(path: impl Into<PathBuf>) -> Self {
        let mut opts = ConnectOptions::tcp("localhost", 0);
        opts.unix_socket = Some(path.into());
        opts
    }

    /// Set the user (builder style).
    pub fn user(mut self, user: impl Into<String>) -> Self {
        self.user = user.into();
        self
    }

    /// Set the password (builder style).
    pub fn password(mut self, password: impl Into<Secret>) -> Self {
        self.password = password.into();
        self
    }

    /// Set the default database (builder style).
    pub fn database(mut self, database: impl Into<String>) -> Self {
        self.database = Some(database.into());
        self
    }

    /// `host:port` or the socket path, for messages. Never contains credentials.
    pub fn address(&self) -> String {
        match &self.unix_socket {
            Some(path) => path.display().to_string(),
            None if self.host.contains(':') => format!("[{}]:{}", self.host, self.port),
            None => format!("{}:{}", self.host, self.port),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_never_shows_the_password() {
        let opts = ConnectOptions::tcp("127.0.0.1", 3306)
            .user("app")
            .password("hunter2");
        let shown = format!("{opts:?}");
        assert!(!shown.contains("hunter2"), "{shown}");
        assert!(shown.contains("***"));
    }
}
