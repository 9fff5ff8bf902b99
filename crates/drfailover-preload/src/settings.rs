//! The configuration from the environment: `DRFAILOVER_DSN` (the endpoints, the monitor's
//! credentials and its keys) and `DRFAILOVER_ALIAS` (other names the program may use for the
//! same database). Which connections are managed is decided here, purely.

use drfailover_conn::Config;

/// MySQL's default TCP port (what port 0 means to `mysql_real_connect`).
pub const DEFAULT_PORT: u16 = 3306;

/// One name a managed connection may be addressed by.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ManagedName {
    /// Host name or address, compared ASCII-case-insensitively.
    pub host: String,
    /// The port; `None` (an alias written without one) matches any port.
    pub port: Option<u16>,
}

/// What the environment asked for.
#[derive(Debug)]
pub struct Settings {
    /// The monitor's configuration (password hidden in `Debug`).
    pub config: Config,
    /// The endpoints as written in the DSN, then the aliases.
    pub managed: Vec<ManagedName>,
}

impl Settings {
    /// Read `DRFAILOVER_DSN` and `DRFAILOVER_ALIAS`. `Ok(None)`: no DSN, the library stays out
    /// of the way. An error is one line naming the problem, never a secret. Blocks on reading
    /// a password or option file named in the DSN (bounded by the conn crate).
    pub fn from_env() -> Result<Option<Settings>, String> {
        let Some(dsn) = std::env::var_os("DRFAILOVER_DSN") else {
            return Ok(None);
        };
        let dsn = dsn
            .into_string()
            .map_err(|_| "DRFAILOVER_DSN is not valid UTF-8".to_owned())?;
        let alias = match std::env::var_os("DRFAILOVER_ALIAS") {
            None => None,
            Some(a) => Some(
                a.into_string()
                    .map_err(|_| "DRFAILOVER_ALIAS is not valid UTF-8".to_owned())?,
            ),
        };
        Settings::parse(&dsn, alias.as_deref()).map(Some)
    }

    /// Parse a DSN and an optional comma-separated alias list (`name` or `name:port`). Pure
    /// apart from the password sources the DSN names.
    pub fn parse(dsn: &str, alias: Option<&str>) -> Result<Settings, String> {
        let config = Config::from_dsn(dsn).map_err(|e| format!("DRFAILOVER_DSN: {e}"))?;
        let mut managed: Vec<ManagedName> = config
            .endpoints
            .iter()
            .map(|e| ManagedName {
                host: e.host.clone(),
                port: Some(e.port),
            })
            .collect();
        for item in alias.unwrap_or("").split(',').map(str::trim) {
            if item.is_empty() {
                continue;
            }
            managed.push(parse_alias(item)?);
        }
        Ok(Settings { config, managed })
    }

    /// Whether a connect to `host`/`port` (as the program passed them; port 0 is the default
    /// port) is managed. `None` or `localhost` hosts are Unix sockets: never managed.
    pub fn manages(&self, host: Option<&str>, port: u16) -> bool {
        let Some(host) = host else { return false };
        if host.is_empty() || host.eq_ignore_ascii_case("localhost") {
            return false;
        }
        let port = if port == 0 { DEFAULT_PORT } else { port };
        self.managed
            .iter()
            .any(|m| m.host.eq_ignore_ascii_case(host) && m.port.is_none_or(|p| p == port))
    }
}

fn parse_alias(item: &str) -> Result<ManagedName, String> {
    let bad = || format!("DRFAILOVER_ALIAS: `{item}` is not `name` or `name:port`");
    let (host, port) = match item.rsplit_once(':') {
        // A bare IPv6 address has colons but no port.
        Some((h, p)) if !h.contains(':') => {
            let port: u16 = p.parse().map_err(|_| bad())?;
            if port == 0 {
                return Err(bad());
            }
            (h, Some(port))
        }
        _ => (item, None),
    };
    if host.is_empty()
        || host
            .chars()
            .any(|c| c.is_whitespace() || c == '/' || c == '@')
    {
        return Err(bad());
    }
    Ok(ManagedName {
        host: host.to_owned(),
        port,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const DSN: &str = "mysql://app:pw@10.0.0.1:3307,db2/shop";

    #[test]
    fn endpoints_as_written_are_managed_and_nothing_else() {
        let s = Settings::parse(DSN, None).unwrap();
        assert!(s.manages(Some("10.0.0.1"), 3307));
        assert!(s.manages(Some("DB2"), 0), "port 0 is the default port");
        assert!(s.manages(Some("db2"), 3306));
        assert!(!s.manages(Some("10.0.0.1"), 3306));
        assert!(!s.manages(Some("db3"), 3306));
        assert!(!s.manages(None, 3306));
        assert!(!s.manages(Some("localhost"), 3306));
    }

    #[test]
    fn aliases_with_or_without_a_port() {
        let s = Settings::parse(DSN, Some(" shop-db.example:3306 , primary.internal ")).unwrap();
        assert!(s.manages(Some("shop-db.example"), 3306));
        assert!(!s.manages(Some("shop-db.example"), 3307));
        assert!(s.manages(Some("primary.internal"), 4000));
    }

    #[test]
    fn bad_input_is_one_line_without_the_password() {
        for (dsn, alias) in [
            ("mysql://app:hunter2@", None),
            ("postgres://app:hunter2@db/x", None),
            ("mysql://app:hunter2@db/x?no_such_key=1", None),
            (
                "mysql://app:hunter2@db/x?password_file=/nonexistent/pw",
                None,
            ),
            ("mysql://app:hunter2@db/x", Some("a:b")),
            ("mysql://app:hunter2@db/x", Some("x:0")),
            ("mysql://app:hunter2@db/x", Some("a b")),
        ] {
            let e = Settings::parse(dsn, alias).unwrap_err();
            assert!(!e.contains("hunter2"), "{e}");
            assert!(!e.contains('\n'), "{e}");
            assert!(
                e.starts_with("DRFAILOVER_DSN") || e.starts_with("DRFAILOVER_ALIAS"),
                "{e}"
            );
        }
    }
}
