//! The one table of configuration keys: name, default, meaning and parser. The DSN's query
//! string, [`crate::Config::set`], the C `dr_config_set`, the "unknown option (known: …)"
//! error, the CLI and the table of `docs/configuration.md` all come from [`KEYS`] (a test
//! checks that page and the C header against it).

use std::path::Path;

use drfailover_files::{resolve_secret, SecretSource};
use drfailover_mysql::Secret;

use crate::config::{no_nul, parse_bool, parse_ms, parse_u64, WebhookTarget};
use crate::{Config, Error};

impl Config {
    /// Set one key of the shared vocabulary ([`KEYS`]). `password_env`,
    /// `password_file` and `defaults_file` read their source at once (so errors surface here;
    /// files must be regular files of at most 4 KiB (password) or 64 KiB (option file), read
    /// bounded, so this blocks on local file I/O only). A user, password or database with a
    /// NUL byte is refused.
    /// Unknown keys are an error that lists every known key.
    pub fn set(&mut self, key: &str, value: &str) -> Result<(), Error> {
        match find(key) {
            Some(k) => (k.apply)(self, key, value),
            None => Err(Error::Config(format!(
                "unknown option `{key}` (known: {})",
                names().collect::<Vec<_>>().join(", ")
            ))),
        }
    }
}

/// Applies a value to a configuration; `key` is the key's name (for error messages).
pub type Apply = fn(&mut Config, &str, &str) -> Result<(), Error>;

/// One configuration key.
#[derive(Clone, Copy)]
pub struct Key {
    /// The key, as written in a DSN (`?key=value`), `dr_config_set` or `Config::set`.
    pub name: &'static str,
    /// The default, as shown to users (`–` when there is none).
    pub default: &'static str,
    /// What it does, one line.
    pub doc: &'static str,
    /// Its parser: checks the value and sets it on a [`Config`].
    pub apply: Apply,
}

impl std::fmt::Debug for Key {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Key")
            .field("name", &self.name)
            .field("default", &self.default)
            .finish()
    }
}

/// The key named `name`, if any. O(number of keys).
pub fn find(name: &str) -> Option<&'static Key> {
    KEYS.iter().find(|k| k.name == name)
}

/// Every key's name, in table order.
pub fn names() -> impl Iterator<Item = &'static str> {
    KEYS.iter().map(|k| k.name)
}

/// The configuration table of `docs/configuration.md` (Markdown), generated from [`KEYS`].
pub fn markdown_table() -> String {
    let mut out = String::from("| key | default | meaning |\n|---|---|---|\n");
    for k in KEYS {
        out.push_str(&format!("| `{}` | {} | {} |\n", k.name, k.default, k.doc));
    }
    out
}

fn feature_missing(key: &str, feature: &str) -> Error {
    Error::Config(format!(
        "option `{key}`: this build has no {feature} support (feature `{feature}`)"
    ))
}

fn webhook(c: &mut Config, key: &str, value: &str) -> Result<(), Error> {
    if !cfg!(feature = "webhook") {
        return Err(feature_missing(key, "webhook"));
    }
    if !(value.starts_with("http://") || value.starts_with("https://")) {
        return Err(Error::Config(format!(
            "option `{key}`: the URL must start with http:// or https://"
        )));
    }
    c.webhooks.push(WebhookTarget {
        url: value.to_string(),
        slack: key == "slack_webhook_url",
    });
    Ok(())
}

/// An AWS key (`secret_arn`, `auth`, …) in a build without the `aws` feature is refused.
fn needs_aws(key: &str) -> Result<(), Error> {
    if cfg!(feature = "aws") {
        Ok(())
    } else {
        Err(feature_missing(key, "aws"))
    }
}

/// `password_file`: by the workspace's one rule ([`resolve_secret`]): the first line of a
/// regular file of at most 4 KiB, read bounded (a FIFO, device or directory is refused
/// without reading from it); no NUL byte.
fn password_file(c: &mut Config, key: &str, path: &str) -> Result<(), Error> {
    let pw = resolve_secret(SecretSource::File(Path::new(path)))
        .map_err(|e| Error::Config(format!("option `{key}`: `{path}`: {e}")))?;
    c.password = Secret::new(pw);
    Ok(())
}

/// Every key, in the order `docs/configuration.md` lists them.
pub const KEYS: &[Key] = &[
    Key {
        name: "user",
        default: "–",
        doc: "user name (also in the DSN before `@`)",
        apply: |c, k, v| {
            no_nul(k, v)?;
            c.user = v.to_string();
            Ok(())
        },
    },
    Key {
        name: "password",
        default: "–",
        doc: "password, inline (never logged)",
        apply: |c, k, v| {
            no_nul(k, v)?;
            c.password = Secret::new(v);
            Ok(())
        },
    },
    Key {
        name: "password_env",
        default: "–",
        doc: "read the password from this environment variable",
        apply: |c, k, v| {
            let pw = resolve_secret(SecretSource::Env(v))
                .map_err(|e| Error::Config(format!("option `{k}`: {e}")))?;
            c.password = Secret::new(pw);
            Ok(())
        },
    },
    Key {
        name: "password_file",
        default: "–",
        doc: "read the password from this file (first line; a regular file of at most 4 KiB)",
        apply: password_file,
    },
    Key {
        name: "group",
        default: "client",
        doc: "option-file group `defaults_file` reads (set it first)",
        apply: |c, _, v| {
            c.group = v.to_string();
            Ok(())
        },
    },
    Key {
        name: "defaults_file",
        default: "–",
        doc: "read user/password from this MySQL option file (a regular file of at most 64 KiB)",
        apply: |c, _, v| c.read_option_file(Path::new(v)),
    },
    Key {
        name: "database",
        default: "–",
        doc: "default database (also the DSN's path)",
        apply: |c, k, v| {
            no_nul(k, v)?;
            c.database = (!v.is_empty()).then(|| v.to_string());
            Ok(())
        },
    },
    Key {
        name: "host",
        default: "–",
        doc: "`host[:port]` (or several, comma-separated) appended to the endpoints, in priority order",
        apply: |c, _, v| {
            let parsed = crate::dsn::parse(&format!("mysql://{v}"))?;
            c.endpoints.extend(parsed.endpoints);
            Ok(())
        },
    },
    Key {
        name: "dsn",
        default: "–",
        doc: "a whole DSN that replaces everything set so far (set it first, then override keys)",
        apply: |c, _, v| {
            *c = crate::dsn::parse(v)?;
            Ok(())
        },
    },
    Key {
        name: "connect_timeout_ms",
        default: "1000",
        doc: "deadline for opening a connection; also the login deadline of a probe of a node not in use",
        apply: |c, k, v| {
            c.connect_timeout = parse_ms(k, v, 1)?;
            Ok(())
        },
    },
    Key {
        name: "probe_interval_ms",
        default: "200",
        doc: "time between probes of each node",
        apply: |c, k, v| {
            c.probe_interval = parse_ms(k, v, 1)?;
            Ok(())
        },
    },
    Key {
        name: "probe_timeout_ms",
        default: "200",
        doc: "deadline of each probe (all nodes are probed at once, each by its own deadline)",
        apply: |c, k, v| {
            c.probe_timeout = parse_ms(k, v, 1)?;
            Ok(())
        },
    },
    Key {
        name: "failover_probe_interval_ms",
        default: "10",
        doc: "first probe interval while no writer is known or the writer is suspect (then a sixtieth of the time since, up to probe_interval_ms)",
        apply: |c, k, v| {
            c.failover_probe_interval = parse_ms(k, v, 1)?;
            Ok(())
        },
    },
    Key {
        name: "fall",
        default: "3",
        doc: "consecutive probe failures that take a node down",
        apply: |c, k, v| {
            c.fall = parse_u64(k, v)?.clamp(1, 1000) as u32;
            Ok(())
        },
    },
    Key {
        name: "rise",
        default: "2",
        doc: "consecutive successes that bring a node back",
        apply: |c, k, v| {
            c.rise = parse_u64(k, v)?.clamp(1, 1000) as u32;
            Ok(())
        },
    },
    Key {
        name: "failover_timeout_ms",
        default: "10000",
        doc: "how long a call waits for a writer",
        apply: |c, k, v| {
            c.failover_timeout = parse_ms(k, v, 0)?;
            Ok(())
        },
    },
    Key {
        name: "read_timeout_ms",
        default: "–",
        doc: "backstop read timeout of queries (whole seconds in the C client)",
        apply: |c, k, v| {
            c.read_timeout = Some(parse_ms(k, v, 1)?);
            Ok(())
        },
    },
    Key {
        name: "pool_size",
        default: "16",
        doc: "maximum connections per client (1..=10000)",
        apply: |c, k, v| {
            let n = parse_u64(k, v)?;
            if n == 0 || n > 10_000 {
                return Err(Error::Config(format!(
                    "option `pool_size`: {n} is outside 1..=10000"
                )));
            }
            c.pool_size = n as usize;
            Ok(())
        },
    },
    Key {
        name: "init",
        default: "–",
        doc: "statement run on every new connection (repeatable)",
        apply: |c, _, v| {
            c.init_statements.push(v.to_string());
            Ok(())
        },
    },
    Key {
        name: "failback",
        default: "false",
        doc: "return to a higher-priority node when it is writable again",
        apply: |c, k, v| {
            c.failback = parse_bool(k, v)?;
            Ok(())
        },
    },
    Key {
        name: "event_queue",
        default: "1024",
        doc: "capacity of the event queue",
        apply: |c, k, v| {
            c.event_queue = parse_u64(k, v)?.clamp(1, 1 << 20) as usize;
            Ok(())
        },
    },
    Key {
        name: "ssl_mode",
        default: "PREFERRED",
        doc: "DISABLED, PREFERRED, REQUIRED (encrypt, no checks), VERIFY_CA (chain), VERIFY_IDENTITY (chain + name); a node that fails verification is never adopted",
        apply: |c, _, v| {
            c.ssl_mode = drfailover_mysql::SslMode::parse(v).ok_or_else(|| {
                Error::Config(format!(
                    "option `ssl_mode`: `{v}` is not one of DISABLED, PREFERRED, REQUIRED, VERIFY_CA, VERIFY_IDENTITY"
                ))
            })?;
            Ok(())
        },
    },
    Key {
        name: "ssl_ca",
        default: "–",
        doc: "CA certificate file for VERIFY_CA / VERIFY_IDENTITY",
        apply: |c, _, v| {
            if !Path::new(v).is_file() {
                return Err(Error::Config(format!(
                    "option `ssl_ca`: `{v}` is not a readable file"
                )));
            }
            c.ssl_ca = Some(v.into());
            Ok(())
        },
    },
    Key {
        name: "nameserver",
        default: "system",
        doc: "DNS server `ip[:port]` for host names (re-resolved per TTL and after failures; a changed address is probed before it is trusted as writer)",
        apply: |c, k, v| {
            if !cfg!(feature = "dns") {
                return Err(feature_missing(k, "dns"));
            }
            let addr = v
                .parse::<std::net::SocketAddr>()
                .ok()
                .or_else(|| v.parse::<std::net::IpAddr>().ok().map(|ip| (ip, 53).into()))
                .ok_or_else(|| {
                    Error::Config(format!("option `nameserver`: `{v}` is not ip[:port]"))
                })?;
            c.nameserver = Some(addr);
            Ok(())
        },
    },
    Key {
        name: "dns_min_ttl_ms",
        default: "1000",
        doc: "shortest time an answer is kept while a writer is known (with no writer, the record's own TTL rules)",
        apply: |c, k, v| {
            c.dns_min_ttl = parse_ms(k, v, 1)?;
            Ok(())
        },
    },
    Key {
        name: "dns_max_ttl_ms",
        default: "30000",
        doc: "longest time an answer is kept",
        apply: |c, k, v| {
            c.dns_max_ttl = parse_ms(k, v, 1)?;
            Ok(())
        },
    },
    Key {
        name: "dns_timeout_ms",
        default: "1000",
        doc: "timeout of one DNS query; a lookup (two attempts) ends within twice this, else the name counts as down until it resolves",
        apply: |c, k, v| {
            c.dns_timeout = parse_ms(k, v, 1)?;
            Ok(())
        },
    },
    Key {
        name: "webhook_url",
        default: "–",
        doc: "POST every event as JSON to this URL (repeatable; retried, on its own thread, URL redacted in logs)",
        apply: webhook,
    },
    Key {
        name: "slack_webhook_url",
        default: "–",
        doc: "POST every event as Slack-compatible text to this URL (repeatable)",
        apply: webhook,
    },
    Key {
        name: "webhook_timeout_ms",
        default: "5000",
        doc: "timeout of one webhook request",
        apply: |c, k, v| {
            c.webhook_timeout = parse_ms(k, v, 1)?;
            Ok(())
        },
    },
    Key {
        name: "hook_command",
        default: "–",
        doc: "run this program for every event: JSON on stdin, `DRFAILOVER_*` variables (repeatable)",
        apply: |c, _, v| {
            if v.is_empty() {
                return Err(Error::Config(
                    "option `hook_command`: empty program path".into(),
                ));
            }
            c.hook_commands.push(v.into());
            Ok(())
        },
    },
    Key {
        name: "hook_timeout_ms",
        default: "10000",
        doc: "kill a hook program after this long",
        apply: |c, k, v| {
            c.hook_timeout = parse_ms(k, v, 1)?;
            Ok(())
        },
    },
    Key {
        name: "secret_arn",
        default: "–",
        doc: "log in with `username`/`password` (and `host`/`port` when no host is given) of this AWS Secrets Manager secret; fetched at connect and again once when a login is refused (1045), so rotation is invisible (see docs/aws-credentials.md)",
        apply: |c, k, v| {
            needs_aws(k)?;
            no_nul(k, v)?;
            if v.trim().is_empty() || v.len() > 2048 {
                return Err(Error::Config(format!(
                    "option `{k}`: expected a secret ARN or name of 1 to 2048 bytes"
                )));
            }
            c.secret_arn = Some(v.trim().to_string());
            Ok(())
        },
    },
    Key {
        name: "secret_region",
        default: "the ARN's",
        doc: "AWS region of `secret_arn` (else `AWS_REGION`, `AWS_DEFAULT_REGION`, the profile's)",
        apply: |c, k, v| {
            needs_aws(k)?;
            c.secret_region = Some(aws_region(k, v)?);
            Ok(())
        },
    },
    Key {
        name: "secret_endpoint",
        default: "–",
        doc: "Secrets Manager endpoint URL (default `https://secretsmanager.REGION.amazonaws.com`, or `AWS_ENDPOINT_URL_SECRETS_MANAGER`)",
        apply: |c, k, v| {
            needs_aws(k)?;
            if !(v.starts_with("http://") || v.starts_with("https://")) {
                return Err(Error::Config(format!(
                    "option `{k}`: the URL must start with http:// or https://"
                )));
            }
            c.secret_endpoint = Some(v.to_string());
            Ok(())
        },
    },
    Key {
        name: "auth",
        default: "password",
        doc: "`password`, or `rds_iam`: log in with an RDS IAM token per endpoint (clear-text plugin, so ssl_mode must be VERIFY_CA or VERIFY_IDENTITY)",
        apply: |c, k, v| {
            c.auth = match v.trim().to_ascii_lowercase().as_str() {
                "password" => crate::AuthMethod::Password,
                "rds_iam" => {
                    needs_aws(k)?;
                    crate::AuthMethod::RdsIam
                }
                _ => {
                    return Err(Error::Config(format!(
                        "option `{k}`: `{v}` is not one of password, rds_iam"
                    )))
                }
            };
            Ok(())
        },
    },
    Key {
        name: "region",
        default: "`AWS_REGION`",
        doc: "AWS region of the RDS IAM tokens (else `AWS_DEFAULT_REGION`, the profile's)",
        apply: |c, k, v| {
            needs_aws(k)?;
            c.region = Some(aws_region(k, v)?);
            Ok(())
        },
    },
];

/// An AWS region name (`eu-west-1`): lower-case letters, digits and dashes.
fn aws_region(key: &str, value: &str) -> Result<String, Error> {
    let v = value.trim();
    if v.is_empty()
        || v.len() > 64
        || !v
            .chars()
            .all(|ch| ch.is_ascii_lowercase() || ch.is_ascii_digit() || ch == '-')
    {
        return Err(Error::Config(format!(
            "option `{key}`: `{value}` is not an AWS region name (like eu-west-1)"
        )));
    }
    Ok(v.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The table of docs/configuration.md between its markers is exactly [`markdown_table`].
    #[test]
    fn documented_table_matches_the_key_table() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/configuration.md");
        let readme = std::fs::read_to_string(path).expect("docs/configuration.md");
        let begin = "<!-- keys:begin (generated from crates/drfailover-conn/src/keys.rs) -->\n";
        let end = "<!-- keys:end -->";
        let start = readme.find(begin).expect("keys:begin marker") + begin.len();
        let stop = readme[start..].find(end).expect("keys:end marker") + start;
        let expected = markdown_table();
        assert!(
            readme[start..stop] == expected,
            "docs/configuration.md's table differs from the key table; replace it with:\n{expected}"
        );
    }

    #[test]
    fn keys_are_unique_and_documented() {
        let mut seen = std::collections::HashSet::new();
        for k in KEYS {
            assert!(seen.insert(k.name), "{} twice", k.name);
            assert!(!k.doc.is_empty() && !k.default.is_empty(), "{k:?}");
        }
    }

    #[test]
    fn every_key_is_accepted_by_set_and_listed_in_the_unknown_key_error() {
        let err = Config::new()
            .set("no_such_key", "1")
            .unwrap_err()
            .to_string();
        for k in KEYS {
            assert!(
                err.contains(&format!(" {},", k.name)) || err.contains(&format!(" {})", k.name)),
                "{} missing from {err}",
                k.name
            );
        }
    }

    #[test]
    fn aws_keys_are_checked_where_they_are_set() {
        let mut c = Config::new();
        let aws = cfg!(feature = "aws");
        for (key, good, bad, why) in [
            (
                "secret_arn",
                "arn:aws:secretsmanager:eu-west-1:1:secret:db-x",
                "",
                "ARN",
            ),
            ("secret_region", "eu-west-1", "EU West", "region"),
            (
                "secret_endpoint",
                "https://vpce.example",
                "vpce.example",
                "http",
            ),
            ("auth", "rds_iam", "kerberos", "password, rds_iam"),
            ("region", "us-east-1", "us east", "region"),
        ] {
            assert_eq!(c.set(key, good).is_ok(), aws, "{key}={good}");
            let m = c.set(key, bad).unwrap_err().to_string();
            assert!(m.contains(&format!("`{key}`")), "{m}");
            if aws {
                assert!(m.contains(why), "{m}");
            }
        }
        assert!(c.set("secret_arn", "a\0b").is_err());
        assert!(c.set("auth", "password").is_ok());
        assert_eq!(c.auth, crate::AuthMethod::Password);
    }

    #[test]
    fn host_and_dsn_work_in_config_set() {
        let mut c = Config::new();
        c.set("dsn", "mysql://app@a:3307/db?probe_interval_ms=50")
            .unwrap();
        c.set("host", "b,c:3308").unwrap();
        let hosts: Vec<String> = c.endpoints.iter().map(|e| e.to_string()).collect();
        assert_eq!(hosts, ["a:3307", "b:3306", "c:3308"]);
        assert_eq!(c.probe_interval, std::time::Duration::from_millis(50));
        assert_eq!(c.user, "app");
    }

    #[test]
    fn connect_options_carry_tls_and_timeouts() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path();
        let ca = dir.join("ca.pem");
        std::fs::write(&ca, "x").unwrap();
        let dsn = format!(
            "mysql://app@h/db?ssl_mode=VERIFY_CA&ssl_ca={}&connect_timeout_ms=1234",
            ca.display()
        );
        let c = Config::from_dsn(&dsn).unwrap();
        let o = c.connect_options(&c.endpoints[0]);
        assert_eq!(o.ssl_mode, drfailover_mysql::SslMode::VerifyCa);
        assert_eq!(o.ssl_ca.as_deref(), Some(ca.as_path()));
        assert_eq!(o.connect_timeout, std::time::Duration::from_millis(1234));
    }
}
