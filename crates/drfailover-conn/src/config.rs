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

    /// Set one key of the shared vocabulary ([`crate::keys::KEYS`]). `password_env`,
    /// `password_file` and `defaults_file` read their source at once (so errors surface here).
    /// Unknown keys are an error that lists every known key.
    pub fn set(&mut self, key: &str, value: &str) -> Result<(), Error> {
        match crate::keys::find(key) {
            Some(k) => (k.apply)(self, key, value),
            None => Err(Error::Config(format!(
                "unknown option `{key}` (known: {})",
                crate::keys::names().collect::<Vec<_>>().join(", ")
            ))),
        }
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

    /// Read `user` and `password` from the `[group]` of a MySQL option file.
    pub(crate) fn read_option_file(&mut self, path: &Path) -> Result<(), Error> {
        let text = std::fs::read_to_string(path).map_err(|e| {
            Error::Config(format!(
                "option `defaults_file`: cannot read `{}`: {e}",
                path.display()
            ))
        })?;
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
                "password" => self.password = Secret::new(v),
                "user" => self.user = v.to_string(),
                _ => {}
            }
        }
        Ok(())
    }

    /// Check the configuration is usable (at least one endpoint).
    pub fn validate(&self) -> Result<(), Error> {
        if self.endpoints.is_empty() {
            return Err(Error::Config("no endpoints: give at least one host".into()));
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
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
        let dir = tempfile_dir();
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

    fn tempfile_dir() -> std::path::PathBuf {
        let dir = std::env::temp_dir().join(format!("drfailover-config-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }
}
