//! DSN grammar: `mysql://[user[:password]@]host[:port][,host[:port]…][/database][?key=value&…]`.
//!
//! Hosts may be names, IPv4 addresses or bracketed IPv6 (`[::1]:3306`); the port defaults to
//! 3306. User, password, database and values are percent-decoded. Keys are those of
//! [`crate::keys::KEYS`].

use percent_encoding::percent_decode_str;

use crate::{Config, Error};

const DEFAULT_PORT: u16 = 3306;

fn decode(what: &str, s: &str) -> Result<String, Error> {
    percent_decode_str(s)
        .decode_utf8()
        .map(|c| c.into_owned())
        .map_err(|_| {
            Error::Config(format!(
                "DSN: {what} is not valid UTF-8 after percent-decoding"
            ))
        })
}

/// Parse a DSN into a [`Config`]. Pure; errors name the offending part (never echo a password).
pub fn parse(dsn: &str) -> Result<Config, Error> {
    let rest = dsn
        .strip_prefix("mysql://")
        .or_else(|| dsn.strip_prefix("mariadb://"))
        .ok_or_else(|| Error::Config("DSN: must start with `mysql://`".into()))?;
    let (main, query) = match rest.split_once('?') {
        Some((m, q)) => (m, Some(q)),
        None => (rest, None),
    };
    let (authority, database) = match main.split_once('/') {
        Some((a, d)) => (a, Some(d)),
        None => (main, None),
    };
    let mut config = Config::new();
    let hosts = match authority.rsplit_once('@') {
        Some((userinfo, hosts)) => {
            let (user, password) = match userinfo.split_once(':') {
                Some((u, p)) => (u, Some(p)),
                None => (userinfo, None),
            };
            config.user = decode("user", user)?;
            if let Some(p) = password {
                config.set("password", &decode("password", p)?)?;
            }
            hosts
        }
        None => authority,
    };
    if hosts.is_empty() {
        return Err(Error::Config("DSN: no host after `mysql://`".into()));
    }
    for (i, spec) in hosts.split(',').enumerate() {
        let (host, port) = parse_host(spec)
            .map_err(|why| Error::Config(format!("DSN: host {} (`{spec}`): {why}", i + 1)))?;
        config.add_endpoint(host, port);
    }
    if let Some(db) = database {
        if db.contains('/') {
            return Err(Error::Config(format!("DSN: database `{db}` contains `/`")));
        }
        config.set("database", &decode("database", db)?)?;
    }
    if let Some(query) = query {
        for pair in query.split('&').filter(|p| !p.is_empty()) {
            let (key, value) = pair
                .split_once('=')
                .ok_or_else(|| Error::Config(format!("DSN: option `{pair}` has no `=value`")))?;
            let value = decode(&format!("option `{key}`"), value)?;
            config.set(key, &value).map_err(|e| match e {
                Error::Config(m) => Error::Config(format!("DSN: {m}")),
                other => other,
            })?;
        }
    }
    Ok(config)
}

fn parse_host(spec: &str) -> Result<(String, u16), String> {
    if spec.is_empty() {
        return Err("empty host".into());
    }
    let (host, port) = if let Some(rest) = spec.strip_prefix('[') {
        let (h, after) = rest.split_once(']').ok_or("unclosed `[` in IPv6 address")?;
        match after {
            "" => (h, None),
            p if p.starts_with(':') => (h, Some(&p[1..])),
            _ => return Err(format!("unexpected `{after}` after `]`")),
        }
    } else {
        match spec.split_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (spec, None),
        }
    };
    if host.is_empty() {
        return Err("empty host name".into());
    }
    if host
        .chars()
        .any(|c| c.is_whitespace() || c == '@' || c == '/')
    {
        return Err(format!("invalid character in host `{host}`"));
    }
    let port = match port {
        None => DEFAULT_PORT,
        Some(p) => match p.parse::<u16>() {
            Ok(n) if n > 0 => n,
            _ => return Err(format!("port `{p}` is not a number from 1 to 65535")),
        },
    };
    Ok((host.to_string(), port))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Endpoint;
    use std::time::Duration;

    #[test]
    fn full_dsn() {
        let c = parse("mysql://app:p%40ss@db1:3307,10.0.0.2,[::1]:3308/shop?probe_interval_ms=50&init=SET%20NAMES%20utf8mb4&init=SET%20time_zone%3D%27%2B00%3A00%27&failback=true").unwrap();
        assert_eq!(c.user, "app");
        assert_eq!(c.password.expose(), "p@ss");
        assert_eq!(
            c.endpoints,
            vec![
                Endpoint::new("db1", 3307),
                Endpoint::new("10.0.0.2", 3306),
                Endpoint::new("::1", 3308)
            ]
        );
        assert_eq!(c.database.as_deref(), Some("shop"));
        assert_eq!(c.probe_interval, Duration::from_millis(50));
        assert_eq!(
            c.init_statements,
            vec!["SET NAMES utf8mb4", "SET time_zone='+00:00'"]
        );
        assert!(c.failback);
    }

    #[test]
    fn errors_name_the_offending_part() {
        let cases = [
            ("postgres://x", "mysql://"),
            ("mysql://", "no host"),
            ("mysql://u@h1:3306,h2:abc/db", "host 2 (`h2:abc`)"),
            ("mysql://u@h1:0", "port `0`"),
            ("mysql://u@[::1/db", "unclosed"),
            ("mysql://u@h1,,h2", "host 2"),
            ("mysql://u@h1/db?bogus=1", "unknown option `bogus`"),
            ("mysql://u@h1/db?pool_size", "`pool_size` has no `=value`"),
            ("mysql://u@h1/db?fall=x", "`x` is not a whole number"),
            ("mysql://u@h1/d%FFb", "not valid UTF-8"),
        ];
        for (dsn, expected) in cases {
            let err = parse(dsn).unwrap_err().to_string();
            assert!(err.contains(expected), "{dsn}: {err}");
        }
    }

    #[test]
    fn password_never_in_debug_or_errors() {
        let c = parse("mysql://app:topsecret@h1/db").unwrap();
        assert!(!format!("{c:?}").contains("topsecret"));
        let err = parse("mysql://app:topsecret@h1/db?nope=1").unwrap_err();
        assert!(!err.to_string().contains("topsecret"));
    }
}
