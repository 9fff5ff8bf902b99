//! Client configuration: one vocabulary of keys shared by the DSN query string, the C config
//! object (`dr_config_set`) and Rust callers ([`Config::set`]).

use std::path::Path;
use std::time::Duration;

use drfailover_mysql::Secret;

use crate::{Endpoint, Error};

/// Every key [`Config::set`] accepts, with a one-line meaning (for `--help` and errors).
pub const KEYS: &[(&str, &str)] = &[
    ("user", "user name"),
    ("password", "password, inline (never logged)"),
    (
        "password_env",
        "read the password from this environment variable",
    ),
    (
        "password_file",
        "read the password from this file (first line)",
    ),
    (
        "defaults_file",
        "read user/password from this MySQL option file",
    ),
    ("group", "option-file group to read (default: client)"),
    ("database", "default database"),
    (
        "connect_timeout_ms",
        "deadline for opening a connection (default 1000)",
    ),
    (
        "probe_interval_ms",
        "time between probes of each node (default 200)",
    ),
    ("probe_timeout_ms", "deadline of each probe (default 200)"),
    (
        "failover_probe_interval_ms",
        "probe interval while no writer is known (default 10)",
    ),
    (
        "fall",
        "consecutive probe failures that take a node down (default 3)",
    ),
    (
        "rise",
        "consecutive successes that bring a node back (default 2)",
    ),
    (
        "failover_timeout_ms",
        "how long a call waits for a writer (default 10000)",
    ),
    (
        "read_timeout_ms",
        "backstop read timeout of queries, whole seconds in the C client (default none)",
    ),
    ("pool_size", "maximum connections per client (default 16)"),
    ("init", "statement run on every new connection (repeatable)"),
    (
        "failback",
        "return to a higher-priority node when it is writable again (default false)",
    ),
    ("event_queue", "capacity of the event queue (default 1024)"),
    (
        "webhook_url",
        "POST every event as JSON to this URL (repeatable; never logged in full)",
    ),
    (
        "slack_webhook_url",
        "POST every event as Slack-compatible text to this URL (repeatable)",
    ),
    (
        "webhook_timeout_ms",
        "timeout of one webhook request (default 5000)",
    ),
    (
        "hook_command",
        "run this program for every event, JSON on stdin (repeatable)",
    ),
    (
        "hook_timeout_ms",
        "kill a hook program after this long (default 10000)",
    ),
];

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
    /// Probe interval while no writer is known (fast re-probing during failover).
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
    group: String,
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

fn parse_u64(key: &str, value: &str) -> Result<u64, Error> {
    value
        .trim()
        .parse()
        .map_err(|_| Error::Config(format!("option `{key}`: `{value}` is not a whole number")))
}

fn parse_ms(key: &str, value: &str, min: u64) -> Result<Duration, Error> {
    let n = parse_u64(key, value)?;
    if n < min {
        return Err(Error::Config(format!(
            "option `{key}`: {n} is below the minimum {min}"
        )));
    }
    Ok(Duration::from_millis(n))
}

fn parse_bool(key: &str, value: &str) -> Result<bool, Error> {
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

    /// Set one key of the shared vocabulary ([`KEYS`]). `password_env`, `password_file` and
    /// `defaults_file` read their source at once (so errors surface here).
    pub fn set(&mut self, key: &str, value: &str) -> Result<(), Error> {
        match key {
            "user" => self.user = value.to_string(),
            "password" => self.password = Secret::new(value),
            "password_env" => {
                let v = std::env::var(value).map_err(|_| {
                    Error::Config(format!("option `password_env`: environment variable `{value}` is not set (or not UTF-8)"))
                })?;
                self.password = Secret::new(v);
            }
            "password_file" => {
                let text = std::fs::read_to_string(value).map_err(|e| {
                    Error::Config(format!(
                        "option `password_file`: cannot read `{value}`: {e}"
                    ))
                })?;
                self.password = Secret::new(text.lines().next().unwrap_or("").to_string());
            }
            "group" => self.group = value.to_string(),
            "defaults_file" => self.read_option_file(Path::new(value))?,
            "database" => self.database = (!value.is_empty()).then(|| value.to_string()),
            "connect_timeout_ms" => self.connect_timeout = parse_ms(key, value, 1)?,
            "probe_interval_ms" => self.probe_interval = parse_ms(key, value, 1)?,
            "probe_timeout_ms" => self.probe_timeout = parse_ms(key, value, 1)?,
            "failover_probe_interval_ms" => self.failover_probe_interval = parse_ms(key, value, 1)?,
            "fall" => self.fall = parse_u64(key, value)?.clamp(1, 1000) as u32,
            "rise" => self.rise = parse_u64(key, value)?.clamp(1, 1000) as u32,
            "failover_timeout_ms" => self.failover_timeout = parse_ms(key, value, 0)?,
            "read_timeout_ms" => self.read_timeout = Some(parse_ms(key, value, 1)?),
            "pool_size" => {
                let n = parse_u64(key, value)?;
                if n == 0 || n > 10_000 {
                    return Err(Error::Config(format!(
                        "option `pool_size`: {n} is outside 1..=10000"
                    )));
                }
                self.pool_size = n as usize;
            }
            "init" => self.init_statements.push(value.to_string()),
            "failback" => self.failback = parse_bool(key, value)?,
            "event_queue" => self.event_queue = parse_u64(key, value)?.clamp(1, 1 << 20) as usize,
            "ssl_mode" => {
                self.ssl_mode = drfailover_mysql::SslMode::parse(value).ok_or_else(|| {
                    Error::Config(format!(
                        "option `ssl_mode`: `{value}` is not one of DISABLED, PREFERRED, REQUIRED, VERIFY_CA, VERIFY_IDENTITY"
                    ))
                })?;
            }
            "ssl_ca" => {
                if !std::path::Path::new(value).is_file() {
                    return Err(Error::Config(format!(
                        "option `ssl_ca`: `{value}` is not a readable file"
                    )));
                }
                self.ssl_ca = Some(value.into());
            }
            "nameserver" => {
                if !cfg!(feature = "dns") {
                    return Err(Error::Config(
                        "option `nameserver`: this build has no DNS support (feature `dns`)".into(),
                    ));
                }
                let addr = value
                    .parse::<std::net::SocketAddr>()
                    .ok()
                    .or_else(|| {
                        value
                            .parse::<std::net::IpAddr>()
                            .ok()
                            .map(|ip| (ip, 53).into())
                    })
                    .ok_or_else(|| {
                        Error::Config(format!("option `nameserver`: `{value}` is not ip[:port]"))
                    })?;
                self.nameserver = Some(addr);
            }
            "dns_min_ttl_ms" => self.dns_min_ttl = parse_ms(key, value, 1)?,
            "dns_max_ttl_ms" => self.dns_max_ttl = parse_ms(key, value, 1)?,
            "dns_timeout_ms" => self.dns_timeout = parse_ms(key, value, 1)?,
            "webhook_url" | "slack_webhook_url" => {
                if !cfg!(feature = "webhook") {
                    return Err(Error::Config(format!(
                        "option `{key}`: this build has no webhook support (feature `webhook`)"
                    )));
                }
                if !(value.starts_with("http://") || value.starts_with("https://")) {
                    return Err(Error::Config(format!(
                        "option `{key}`: the URL must start with http:// or https://"
                    )));
                }
                self.webhooks.push(WebhookTarget {
                    url: value.to_string(),
                    slack: key == "slack_webhook_url",
                });
            }
            "webhook_timeout_ms" => self.webhook_timeout = parse_ms(key, value, 1)?,
            "hook_command" => {
                if value.is_empty() {
                    return Err(Error::Config(
                        "option `hook_command`: empty program path".into(),
                    ));
                }
                self.hook_commands.push(value.into());
            }
            "hook_timeout_ms" => self.hook_timeout = parse_ms(key, value, 1)?,
            _ => {
                let known: Vec<&str> = KEYS.iter().map(|(k, _)| *k).collect();
                return Err(Error::Config(format!(
                    "unknown option `{key}` (known: {})",
                    known.join(", ")
                )));
            }
        }
        Ok(())
    }

    /// Read `user` and `password` from the `[group]` of a MySQL option file.
    fn read_option_file(&mut self, path: &Path) -> Result<(), Error> {
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
