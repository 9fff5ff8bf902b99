//! Client configuration: one vocabulary of keys ([`crate::keys::KEYS`]) shared by the DSN
//! query string, the C config object (`dr_config_set`) and Rust callers ([`Config::set`]).

use std::path::Path;
use std::time::Duration;

use drfailover_mysql::Secret;

use crate::{Endpoint, Error};

/// A webhook destination. `Debug` shows only scheme and host: paths carry tokens.
#[derive(Clone, PartialEq, Eq)]
pub struct WebhookTarget {
    /// The full URL.
    pub url: String,
    /// Slack-compatible text instead of the generic JSON event.
    pub slack: bool,
}

impl std::fmt::Debug for WebhookTarget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let (scheme, rest) = self.url.split_once("://").unwrap_or(("", &self.url));
        let host = rest.split(['/', '?', '#']).next().unwrap_or("");
        let host = host.rsplit_once('@').map_or(host, |(_, h)| h);
        write!(
            f,
            "WebhookTarget({scheme}://{host}/…, slack: {})",
            self.slack
        )
    }
}

/// How the client logs in.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum AuthMethod {
    /// The configured password (or the one from `secret_arn`).
    #[default]
    Password,
    /// An RDS IAM authentication token, generated locally per endpoint and sent with the
    /// clear-text plugin (only over a verified TLS connection).
    RdsIam,
}

/// Configuration of a [`crate::Client`]. `Debug` never shows the password.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Config {
    /// Nodes in priority order.
    pub endpoints: Vec<Endpoint>,
    /// User name.
    pub user: String,
    /// Password.
    pub password: Secret,
    /// Default database.
    pub database: Option<String>,
    /// Deadline for opening a pool connection.
    pub connect_timeout: Duration,
    /// Probe interval of each node.
    pub probe_interval: Duration,
    /// Deadline of each probe.
    pub probe_timeout: Duration,
    /// Probe interval while no writer is known or the writer is suspect (fast re-probing
    /// during failover: a promotion is seen within this interval).
    pub failover_probe_interval: Duration,
    /// Consecutive probe failures that take a node down.
    pub fall: u32,
    /// Consecutive successes that bring a node back.
    pub rise: u32,
    /// How long a call waits for a writer before failing with `NoWriter`.
    pub failover_timeout: Duration,
    /// Backstop read timeout for queries (whole seconds in the C client).
    pub read_timeout: Option<Duration>,
    /// Maximum connections per client.
    pub pool_size: usize,
    /// Statements run on every new connection (`SET NAMES`, `time_zone`, `sql_mode`, …).
    pub init_statements: Vec<String>,
    /// Return to a higher-priority node when it is writable again.
    pub failback: bool,
    /// Capacity of the event queue.
    pub event_queue: usize,
    /// TLS policy.
    pub ssl_mode: drfailover_mysql::SslMode,
    /// CA certificate file for `VerifyCa` / `VerifyIdentity`.
    pub ssl_ca: Option<std::path::PathBuf>,
    /// DNS server for host names (`None`: the system's).
    pub nameserver: Option<std::net::SocketAddr>,
    /// Shortest time a DNS answer is kept.
    pub dns_min_ttl: Duration,
    /// Longest time a DNS answer is kept.
    pub dns_max_ttl: Duration,
    /// Timeout of one DNS query.
    pub dns_timeout: Duration,
    /// Webhooks that receive every event.
    pub webhooks: Vec<WebhookTarget>,
    /// Timeout of one webhook request.
    pub webhook_timeout: Duration,
    /// Programs run for every event.
    pub hook_commands: Vec<std::path::PathBuf>,
    /// How long a hook program may run.
    pub hook_timeout: Duration,
    /// AWS Secrets Manager secret holding `username` and `password` (`secret_arn`).
    pub secret_arn: Option<String>,
    /// Region of `secret_arn` (default: the ARN's own).
    pub secret_region: Option<String>,
    /// Secrets Manager endpoint URL (default: the region's, or `AWS_ENDPOINT_URL_SECRETS_MANAGER`).
    pub secret_endpoint: Option<String>,
    /// How to log in (`auth`).
    pub auth: AuthMethod,
    /// AWS region of RDS IAM tokens (`region`; default `AWS_REGION`, `AWS_DEFAULT_REGION`).
    pub region: Option<String>,
    pub(crate) group: String,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            endpoints: Vec::new(),
            user: String::new(),
            password: Secret::default(),
            database: None,
            connect_timeout: Duration::from_millis(1000),
            probe_interval: Duration::from_millis(200),
            probe_timeout: Duration::from_millis(200),
            failover_probe_interval: Duration::from_millis(10),
            fall: 3,
            rise: 2,
            failover_timeout: Duration::from_secs(10),
            read_timeout: None,
            pool_size: 16,
            init_statements: Vec::new(),
            failback: false,
            event_queue: 1024,
            ssl_mode: drfailover_mysql::SslMode::default(),
            ssl_ca: None,
            nameserver: None,
            dns_min_ttl: Duration::from_millis(1000),
            dns_max_ttl: Duration::from_secs(30),
            dns_timeout: Duration::from_millis(1000),
            webhooks: Vec::new(),
            webhook_timeout: Duration::from_secs(5),
            hook_commands: Vec::new(),
            hook_timeout: Duration::from_secs(10),
            secret_arn: None,
            secret_region: None,
            secret_endpoint: None,
            auth: AuthMethod::Password,
            region: None,
            group: "client".into(),
        }
    }
}

pub(crate) fn parse_u64(key: &str, value: &str) -> Result<u64, Error> {
    value
        .trim()
        .parse()
        .map_err(|_| Error::Config(format!("option `{key}`: `{value}` is not a whole number")))
}

pub(crate) fn parse_ms(key: &str, value: &str, min: u64) -> Result<Duration, Error> {
    let n = parse_u64(key, value)?;
    if n < min {
        return Err(Error::Config(format!(
            "option `{key}`: {n} is below the minimum {min}"
        )));
    }
    Ok(Duration::from_millis(n))
}

pub(crate) fn parse_bool(key: &str, value: &str) -> Result<bool, Error> {
    match value.trim().to_ascii_lowercase().as_str() {
        "1" | "true" | "yes" | "on" => Ok(true),
        "0" | "false" | "no" | "off" => Ok(false),
        _ => Err(Error::Config(format!(
            "option `{key}`: `{value}` is not a boolean (true/false)"
        ))),
    }
}

/// Refuse a NUL byte in `value` of `key` (user, password, database): it is sent to the server
/// as a C string, so every connection attempt would fail while the client never becomes
/// ready. The message never shows the value.
pub(crate) fn no_nul(key: &str, value: &str) -> Result<(), Error> {
    if value.contains('\0') {
        return Err(Error::Config(format!(
            "option `{key}`: the value contains a NUL byte"
        )));
    }
    Ok(())
}

impl Config {
    /// Defaults, no endpoints.
    pub fn new() -> Self {
        Self::default()
    }

    /// Parse a DSN `mysql://user[:password]@host1[:port],host2[:port]/db?key=value&…`.
    /// See [`crate::dsn`] for the grammar. Errors name the offending part.
    pub fn from_dsn(dsn: &str) -> Result<Config, Error> {
        crate::dsn::parse(dsn)
    }

    /// Append an endpoint (lower priority than those already present).
    pub fn add_endpoint(&mut self, host: impl Into<String>, port: u16) -> &mut Self {
        self.endpoints.push(Endpoint::new(host, port));
        self
    }

    /// Connection options for `endpoint` under this configuration: credentials, database,
    /// timeouts and TLS (`ssl_mode`, `ssl_ca`). The one mapping from configuration to
    /// connection options (the pool, the monitor and the CLI all use it). Cheap.
    pub fn connect_options(&self, endpoint: &Endpoint) -> drfailover_mysql::ConnectOptions {
        let mut opts = drfailover_mysql::ConnectOptions::tcp(endpoint.host.clone(), endpoint.port)
            .user(self.user.clone())
            .password(self.password.clone());
        opts.database = self.database.clone();
        opts.connect_timeout = self.connect_timeout;
        opts.read_timeout = self.read_timeout;
        opts.write_timeout = self.read_timeout;
        opts.ssl_mode = self.ssl_mode;
        opts.ssl_ca = self.ssl_ca.clone();
        opts
    }

    /// Read `user` and `password` from the `[group]` of a MySQL option file: a regular file
    /// of at most [`drfailover_files::OPTION_FILE_LIMIT`] bytes (64 KiB), read bounded (a
    /// FIFO, device or directory is refused without reading from it). Either both are taken
    /// or, on an error, neither. Errors name the file, never its content.
    pub(crate) fn read_option_file(&mut self, path: &Path) -> Result<(), Error> {
        let fail = |why: String| {
            Error::Config(format!(
                "option `defaults_file`: `{}`: {why}",
                path.display()
            ))
        };
        let text = drfailover_files::read_text(path, drfailover_files::OPTION_FILE_LIMIT)
            .map_err(|e| fail(e.to_string()))?;
        let (mut user, mut password) = (None, None);
        let mut in_group = false;
        for line in text.lines() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') || line.starts_with(';') {
                continue;
            }
            if let Some(name) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
                in_group = name.trim() == self.group;
                continue;
            }
            if !in_group {
                continue;
            }
            let (k, v) = match line.split_once('=') {
                Some((k, v)) => (k.trim(), v.trim()),
                None => continue,
            };
            let v = v
                .strip_prefix('"')
                .and_then(|v| v.strip_suffix('"'))
                .or_else(|| v.strip_prefix('\'').and_then(|v| v.strip_suffix('\'')))
                .unwrap_or(v);
            match k {
                "password" => password = Some(v),
                "user" => user = Some(v),
                _ => {}
            }
        }
        for (what, value) in [("user", user), ("password", password)] {
            if value.is_some_and(|v| v.contains('\0')) {
                return Err(fail(format!("`{what}` contains a NUL byte")));
            }
        }
        if let Some(u) = user {
            self.user = u.to_string();
        }
        if let Some(p) = password {
            self.password = Secret::new(p);
        }
        Ok(())
    }

    /// Check the configuration is usable (at least one endpoint, unless `secret_arn` may
    /// name one; TLS that verifies for `auth=rds_iam`). Pure.
    pub fn validate(&self) -> Result<(), Error> {
        if self.endpoints.is_empty() && self.secret_arn.is_none() {
            return Err(Error::Config("no endpoints: give at least one host".into()));
        }
        if self.auth == AuthMethod::RdsIam {
            if !self.ssl_mode.verifies() {
                return Err(Error::Config(format!(
                    "option `auth`: rds_iam sends its token with the clear-text plugin, so it needs \
                     ssl_mode VERIFY_CA or VERIFY_IDENTITY (with ssl_ca), not {:?}",
                    self.ssl_mode
                )));
            }
            if self.secret_arn.is_some() {
                return Err(Error::Config(
                    "option `auth`: rds_iam and secret_arn exclude each other (a token or a \
                     stored password, not both)"
                        .into(),
                ));
            }
            if self.user.is_empty() {
                return Err(Error::Config(
                    "option `auth`: rds_iam needs a `user` (the database user the token is for)"
                        .into(),
                ));
            }
        }
        if self.ssl_mode.verifies() && self.ssl_ca.is_none() {
            return Err(Error::Config(
                "ssl_mode VERIFY_CA / VERIFY_IDENTITY needs ssl_ca".into(),
            ));
        }
        if self.dns_min_ttl > self.dns_max_ttl {
            return Err(Error::Config(
                "dns_min_ttl_ms is larger than dns_max_ttl_ms".into(),
            ));
        }
        // Without our resolver a name would go to the C client's getaddrinfo, which has no
        // deadline: refuse it rather than give up the bound on every call.
        #[cfg(not(feature = "dns"))]
        if let Some(e) = self.endpoints.iter().find(|e| e.is_name()) {
            return Err(Error::Config(format!(
                "host `{}` is a name: this build has no `dns` feature (names are resolved with \
                 deadlines by the library); give IP addresses",
                e.host
            )));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_names_need_the_dns_feature() {
        let ip = Config::from_dsn("mysql://app@127.0.0.1:3306,[::1]:3306/app").unwrap();
        assert!(ip.validate().is_ok());
        let named = Config::from_dsn("mysql://app@127.0.0.1:3306,db.example:3306/app").unwrap();
        if cfg!(feature = "dns") {
            assert!(named.validate().is_ok());
        } else {
            let err = named.validate().unwrap_err().to_string();
            assert!(err.contains("`db.example`") && err.contains("dns"), "{err}");
        }
    }

    #[test]
    fn unknown_key_is_named() {
        let err = Config::new().set("probe_intervall_ms", "5").unwrap_err();
        assert!(err.to_string().contains("`probe_intervall_ms`"), "{err}");
    }

    #[test]
    fn webhook_urls_are_redacted_in_debug() {
        let mut c = Config::new();
        c.set(
            "slack_webhook_url",
            "https://hooks.example/services/T/B/SECRETTOKEN",
        )
        .unwrap();
        let shown = format!("{c:?}");
        assert!(
            !shown.contains("SECRETTOKEN") && shown.contains("hooks.example"),
            "{shown}"
        );
        assert!(c.set("webhook_url", "ftp://x").is_err());
    }

    #[test]
    fn bad_number_is_named() {
        let err = Config::new().set("probe_interval_ms", "fast").unwrap_err();
        assert!(err.to_string().contains("`fast`"), "{err}");
    }

    #[test]
    fn password_sources() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path();
        let file = dir.join("pw");
        std::fs::write(&file, "from-file\n").unwrap();
        let mut c = Config::new();
        c.set("password_file", file.to_str().unwrap()).unwrap();
        assert_eq!(c.password.expose(), "from-file");

        let cnf = dir.join("my.cnf");
        std::fs::write(
            &cnf,
            "[mysql]\npassword=wrong\n[client]\nuser = app\npassword = \"from cnf\"\n",
        )
        .unwrap();
        c.set("defaults_file", cnf.to_str().unwrap()).unwrap();
        assert_eq!((c.user.as_str(), c.password.expose()), ("app", "from cnf"));

        std::env::set_var("DRFAILOVER_TEST_PW", "from-env");
        c.set("password_env", "DRFAILOVER_TEST_PW").unwrap();
        assert_eq!(c.password.expose(), "from-env");
        assert!(c.set("password_env", "DRFAILOVER_TEST_PW_UNSET").is_err());
        assert!(!format!("{c:?}").contains("from-env"));
    }

    /// A file key never hangs or reads without bound; it names the key and the
    /// file, never the content.
    #[test]
    fn secrets_files_are_regular_and_bounded() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path();
        let fifo = dir.join("fifo");
        let _ = std::fs::remove_file(&fifo);
        assert!(std::process::Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .expect("mkfifo")
            .success());
        let big_pw = dir.join("big-pw");
        std::fs::write(&big_pw, "SECRETX".repeat(600)).unwrap(); // 4200 bytes > 4 KiB
        let big_cnf = dir.join("big.cnf");
        let f = std::fs::File::create(&big_cnf).unwrap();
        f.set_len(1 << 30).unwrap(); // sparse 1 GiB
        let nul_pw = dir.join("nul-pw");
        std::fs::write(&nul_pw, b"SECRET\0X\n").unwrap();
        let nul_cnf = dir.join("nul.cnf");
        std::fs::write(&nul_cnf, b"[client]\nuser=app\npassword=SECRET\0X\n").unwrap();
        let started = std::time::Instant::now();
        for (key, path, why) in [
            (
                "password_file",
                "/dev/zero",
                "is a character device, not a regular file",
            ),
            (
                "defaults_file",
                "/dev/zero",
                "is a character device, not a regular file",
            ),
            (
                "password_file",
                fifo.to_str().unwrap(),
                "is a FIFO, not a regular file",
            ),
            (
                "defaults_file",
                fifo.to_str().unwrap(),
                "is a FIFO, not a regular file",
            ),
            (
                "password_file",
                dir.to_str().unwrap(),
                "is a directory, not a regular file",
            ),
            (
                "defaults_file",
                dir.to_str().unwrap(),
                "is a directory, not a regular file",
            ),
            (
                "password_file",
                big_pw.to_str().unwrap(),
                "larger than 4096 bytes",
            ),
            (
                "defaults_file",
                big_cnf.to_str().unwrap(),
                "larger than 65536 bytes",
            ),
            (
                "password_file",
                nul_pw.to_str().unwrap(),
                "password contains a NUL byte",
            ),
            (
                "defaults_file",
                nul_cnf.to_str().unwrap(),
                "`password` contains a NUL byte",
            ),
        ] {
            let mut c = Config::new();
            c.set("user", "before").unwrap();
            let e = c.set(key, path).unwrap_err();
            assert!(matches!(e, Error::Config(_)), "{key}={path}: {e:?}");
            let m = e.to_string();
            assert!(m.contains(&format!("`{key}`")), "{m}");
            assert!(m.contains(&format!("`{path}`")), "{m}");
            assert!(m.contains(why), "{key}={path}: {m}");
            assert!(!m.contains("SECRET"), "{m}");
            assert_eq!(c.user, "before", "a failed {key} changed the config");
        }
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "{:?}",
            started.elapsed()
        );
        for f in [big_cnf, big_pw, nul_pw, nul_cnf, fifo] {
            let _ = std::fs::remove_file(f);
        }
    }

    /// A NUL byte in user, password or database is refused by `Config::set`.
    #[test]
    fn nul_bytes_in_credentials_are_refused() {
        for key in ["user", "password", "database"] {
            let mut c = Config::new();
            let e = c.set(key, "SECRET\0X").unwrap_err();
            let m = e.to_string();
            assert!(matches!(e, Error::Config(_)), "{key}: {m}");
            assert!(m.contains(&format!("`{key}`")) && m.contains("NUL"), "{m}");
            assert!(!m.contains("SECRET"), "{m}");
        }
    }
}
