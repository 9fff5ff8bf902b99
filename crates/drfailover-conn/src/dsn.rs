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

/// Characters at which the possible password is split into pieces: URL delimiters, `*` (so
/// no piece can contain the `***` that replaces one) and, in [`is_delimiter`], control
/// characters.
const DELIMITERS: &str = "/?#@:,&=%[]* ";

fn is_delimiter(c: char) -> bool {
    DELIMITERS.contains(c) || c.is_control()
}

/// Pieces of `dsn` that could be (part of) a password: the text between the first `:` after
/// `scheme://` and the last `@` (with no `@`: the next `/` or `?`), as written and
/// percent-decoded, split at [`is_delimiter`]; the pieces of 3 or more bytes that appear
/// nowhere else in the DSN. A password with an unencoded `/`, `?` or `@` misleads any
/// parser; its pieces must still never be echoed, not even decoded as an option value.
fn password_pieces(dsn: &str) -> Vec<String> {
    let Some(start) = dsn.find("://").map(|i| i + 3) else {
        return Vec::new();
    };
    let rest = &dsn[start..];
    let end = match rest.rfind('@') {
        Some(at) => at,
        None => rest.find(['/', '?']).unwrap_or(rest.len()),
    };
    let Some(colon) = rest[..end].find(':') else {
        return Vec::new();
    };
    let (from, to) = (start + colon + 1, start + end);
    let outside = format!("{}\u{0}{}", &dsn[..from], &dsn[to..]);
    let written = &dsn[from..to];
    let decoded = percent_decode_str(written).decode_utf8_lossy();
    let mut pieces: Vec<String> = [written, &decoded]
        .into_iter()
        .flat_map(|text| text.split(is_delimiter))
        .filter(|p| p.len() >= 3 && !outside.contains(p))
        .map(str::to_string)
        .collect();
    pieces.sort();
    pieces.dedup();
    pieces
}

/// `message` with every byte covered by an occurrence of a possible password piece of `dsn`
/// replaced, each run of such bytes by one `***`. Decided on the original message in one
/// pass, so a replacement can never join text into a new occurrence (and no piece contains
/// `*`): the result contains no piece. O(pieces × message length).
fn redact(dsn: &str, message: &str) -> String {
    let pieces = password_pieces(dsn);
    let mut covered = vec![false; message.len()];
    for p in &pieces {
        for (i, _) in message.match_indices(p.as_str()) {
            covered[i..i + p.len()].fill(true);
        }
    }
    let mut out = String::with_capacity(message.len());
    let mut i = 0;
    while i < message.len() {
        let run_start = i;
        let hidden = covered[i];
        while i < message.len() && covered[i] == hidden {
            i += 1;
        }
        // Runs start and end at piece boundaries or the ends: always char boundaries.
        out.push_str(if hidden {
            "***"
        } else {
            &message[run_start..i]
        });
    }
    out
}

/// Parse a DSN into a [`Config`]. Pure; errors name the offending part and never echo a
/// password, even one with unencoded delimiters that misleads the parser.
pub fn parse(dsn: &str) -> Result<Config, Error> {
    parse_unredacted(dsn).map_err(|e| match e {
        Error::Config(m) => Error::Config(redact(dsn, &m)),
        other => other,
    })
}

fn parse_unredacted(dsn: &str) -> Result<Config, Error> {
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
            set(&mut config, "user", &decode("user", user)?)?;
            if let Some(p) = password {
                set(&mut config, "password", &decode("password", p)?)?;
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
        set(&mut config, "database", &decode("database", db)?)?;
    }
    if let Some(query) = query {
        for pair in query.split('&').filter(|p| !p.is_empty()) {
            let (key, value) = pair
                .split_once('=')
                .ok_or_else(|| Error::Config(format!("DSN: option `{pair}` has no `=value`")))?;
            let value = decode(&format!("option `{key}`"), value)?;
            set(&mut config, key, &value)?;
        }
    }
    Ok(config)
}

/// [`Config::set`], its errors prefixed with `DSN: `.
fn set(config: &mut Config, key: &str, value: &str) -> Result<(), Error> {
    config.set(key, value).map_err(|e| match e {
        Error::Config(m) => Error::Config(format!("DSN: {m}")),
        other => other,
    })
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
        .any(|c| c.is_whitespace() || c.is_control() || c == '@' || c == '/')
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

    #[test]
    fn no_message_echoes_a_password_with_unencoded_delimiters() {
        for (dsn, secret) in [
            ("mysql://app:S3cr/tPw@127.0.0.1:3306/app", ["S3cr", "tPw"]),
            ("mysql://app:S3cr?tPw@127.0.0.1:3306/app", ["S3cr", "tPw"]),
            ("mysql://app:S3cr3tPw/app", ["S3cr3tPw", "S3cr3tPw"]),
            ("mysql://app:Pa55:w0rd@h1:notaport/app", ["Pa55", "w0rd"]),
        ] {
            let e = parse(dsn).expect_err(dsn).to_string();
            for s in secret {
                assert!(!e.contains(s), "{dsn}: {e}");
            }
            assert!(e.starts_with("configuration error: DSN"), "{dsn}: {e}");
        }
    }
    #[test]
    fn redaction_leaves_no_piece_even_decoded_or_overlapping() {
        // A half-encoded password with an unencoded `?`: the parser takes the rest as an
        // option whose decoded value would show `ABCD`.
        let dsn = "mysql://u:x?pool_size=%41%42%43%44@h/db";
        let e = parse(dsn).unwrap_err().to_string();
        assert!(!e.contains("ABCD") && !e.contains("%41%42"), "{e}");
        // Overlapping occurrences, and replacements that would join text into a new one.
        let dsn = "mysql://u:aaab:abXab@h";
        for (message, expected) in [
            ("aaaab", "a***"),
            ("abXaaab-aaab", "abX***-***"),
            ("ab*abXab*ab", "ab*****ab"),
        ] {
            assert_eq!(redact(dsn, message), expected, "{message}");
        }
        let m = redact("mysql://u:p**q*rst@h", "p**q*rst p*rst");
        assert_eq!(m, "p**q**** p****");
    }

    /// `%00` (or a raw NUL) in user, password or database is a configuration
    /// error at parse time, and the message does not show the password.
    #[test]
    fn nul_in_credentials_is_refused_at_parse_time() {
        for (dsn, key) in [
            ("mysql://ap%00p:S3cr3tPw@h1/db", "user"),
            ("mysql://app:S3cr%00etPw@h1/db", "password"),
            ("mysql://app:S3cr\0etPw@h1/db", "password"),
            ("mysql://app:S3cr3tPw@h1/d%00b", "database"),
            ("mysql://app:S3cr3tPw@h1/db?user=a%00b", "user"),
            ("mysql://app:S3cr3tPw@h1/db?password=a%00b", "password"),
        ] {
            let e = parse(dsn).expect_err(dsn);
            let m = e.to_string();
            assert!(matches!(e, Error::Config(_)), "{dsn}: {m}");
            assert!(
                m.contains(&format!("`{key}`")) && m.contains("NUL"),
                "{dsn}: {m}"
            );
            assert!(!m.contains("S3cr"), "{dsn}: {m}");
        }
        let e = parse("mysql://app@h\0x/db").unwrap_err().to_string();
        assert!(e.contains("invalid character in host"), "{e}");
    }

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
