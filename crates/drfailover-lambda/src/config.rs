//! The function's configuration, read from its environment variables (the names the
//! architecture's Lambda uses, plus the instance identifiers and the probe credentials).
//!
//! | variable | meaning |
//! |---|---|
//! | `PRIMARY_DB_ENDPOINT` | the primary's endpoint, `host` or `host:port` (default port 3306) |
//! | `SECONDARY_DB_ENDPOINT` | the read replica's endpoint, as above |
//! | `PRIMARY_DB_INSTANCE_ID` | the primary's RDS instance identifier |
//! | `SECONDARY_DB_INSTANCE_ID` | the replica's RDS instance identifier |
//! | `HOSTED_ZONE_ID` | the Route 53 hosted zone of the failover record |
//! | `RECORD_NAME` | the failover record's name, e.g. `db.example.com` |
//! | `PRIMARY_RECORD_SET_ID` | SetIdentifier of the record set with `Failover = PRIMARY` |
//! | `SECONDARY_RECORD_SET_ID` | SetIdentifier of the record set with `Failover = SECONDARY` |
//! | `SNS_TOPIC_ARN` | the topic that hears what the function saw and did |
//! | `PROMOTE_READ_REPLICA` | `true` or `false` (default `false`): promote the replica with `rds:PromoteReadReplica` |
//! | `DB_PROBE_USER`, `DB_PROBE_PASSWORD` | the database account of the probe (needs no privilege) |
//! | `DB_PROBE_SECRET_ARN` | instead of the two above: a Secrets Manager secret whose JSON holds the probe's `username` and `password` |
//! | `PROBE_TIMEOUT_MS` | one database probe's deadline (default 2000) |
//! | `AWS_REGION` | set by Lambda |
//! | `AWS_ENDPOINT_URL`, `AWS_ENDPOINT_URL_RDS`, `AWS_ENDPOINT_URL_ROUTE_53`, `AWS_ENDPOINT_URL_SNS`, `AWS_ENDPOINT_URL_SECRETS_MANAGER` | optional endpoint overrides (the AWS SDKs' names), e.g. a VPC endpoint |
//!
//! The AWS credentials are the ones Lambda puts in the environment (`AWS_ACCESS_KEY_ID`,
//! `AWS_SECRET_ACCESS_KEY`, `AWS_SESSION_TOKEN`); the same keys read the probe's secret. No
//! value read here is ever logged except
//! names, endpoints and identifiers; the probe password and AWS keys never appear in
//! `Debug` output or errors.

use std::time::Duration;

use drfailover_dns::aws::credentials::Env;
use drfailover_dns::aws::secrets;
use drfailover_mysql::Secret;

use crate::LambdaError;

/// A database endpoint: host (DNS name or IP literal) and port.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DbEndpoint {
    /// Host name or IP literal, as configured (no trailing dot).
    pub host: String,
    /// TCP port.
    pub port: u16,
}

impl DbEndpoint {
    /// Parse `host` or `host:port` (`[v6]:port` for IPv6). Pure.
    pub fn parse(text: &str) -> Result<DbEndpoint, String> {
        let text = text.trim();
        let (host, port) = if let Some(rest) = text.strip_prefix('[') {
            let (host, after) = rest
                .split_once(']')
                .ok_or_else(|| format!("`{text}`: unterminated [IPv6 address]"))?;
            (host, after.strip_prefix(':'))
        } else if text.matches(':').count() == 1 {
            let (h, p) = text.split_once(':').unwrap_or((text, ""));
            (h, Some(p))
        } else {
            (text, None)
        };
        let host = host.trim_end_matches('.');
        drfailover_dns::Published::parse(host).map_err(|e| format!("`{text}`: {e}"))?;
        let port = match port {
            None => 3306,
            Some(p) => p
                .parse::<u16>()
                .ok()
                .filter(|p| *p > 0)
                .ok_or_else(|| format!("`{text}`: port must be 1-65535"))?,
        };
        Ok(DbEndpoint {
            host: host.to_string(),
            port,
        })
    }
}

impl std::fmt::Display for DbEndpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.host.contains(':') {
            write!(f, "[{}]:{}", self.host, self.port)
        } else {
            write!(f, "{}:{}", self.host, self.port)
        }
    }
}

/// One node of the pair: its endpoint and its RDS instance identifier.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DbNode {
    /// Where the probe connects, and what the Route 53 record names.
    pub endpoint: DbEndpoint,
    /// The RDS `DBInstanceIdentifier`.
    pub instance_id: String,
}

/// Where the probe's database account comes from. `Debug` shows no password.
#[derive(Clone, Debug)]
pub enum ProbeLogin {
    /// `DB_PROBE_USER` and `DB_PROBE_PASSWORD`.
    Password {
        /// The probe's database user name.
        user: String,
        /// Its password (never shown).
        password: Secret,
    },
    /// `DB_PROBE_SECRET_ARN`: the `username` and `password` of a Secrets Manager secret,
    /// read once per execution environment and again when a database refuses the login.
    Secret {
        /// The secret's ARN.
        arn: String,
        /// The secret's region (from its ARN).
        region: String,
        /// The Secrets Manager endpoint.
        endpoint: String,
    },
}

/// Everything the function needs, checked. `Debug` shows no secret.
#[derive(Clone, Debug)]
pub struct Config {
    /// The node the PRIMARY record names while all is well.
    pub primary: DbNode,
    /// The read replica that takes over.
    pub secondary: DbNode,
    /// The hosted zone id (no `/hostedzone/` prefix).
    pub hosted_zone_id: String,
    /// The failover record's name (no trailing dot).
    pub record_name: String,
    /// SetIdentifier of the PRIMARY record set.
    pub primary_record_set_id: String,
    /// SetIdentifier of the SECONDARY record set.
    pub secondary_record_set_id: String,
    /// The SNS topic.
    pub sns_topic_arn: String,
    /// Promote the replica with `rds:PromoteReadReplica` when it is still a replica.
    pub promote_read_replica: bool,
    /// Database account of the probe, or the secret that holds it.
    pub probe_login: ProbeLogin,
    /// Deadline of one database probe.
    pub probe_timeout: Duration,
    /// The region (`AWS_REGION`, else `AWS_DEFAULT_REGION`).
    pub region: String,
    /// RDS API endpoint.
    pub rds_endpoint: String,
    /// Route 53 API endpoint.
    pub route53_endpoint: String,
    /// SNS API endpoint.
    pub sns_endpoint: String,
}

fn required(env: Env<'_>, name: &str, missing: &mut Vec<String>) -> String {
    match env(name).map(|v| v.trim().to_string()) {
        Some(v) if !v.is_empty() => v,
        _ => {
            missing.push(name.to_string());
            String::new()
        }
    }
}

fn identifier(name: &str, value: &str) -> Result<(), String> {
    let ok = !value.is_empty()
        && value.len() <= 255
        && value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'.');
    if ok {
        Ok(())
    } else {
        Err(format!(
            "{name}: expected letters, digits, `-`, `_` or `.` (at most 255)"
        ))
    }
}

/// `DB_PROBE_USER` (with `DB_PROBE_PASSWORD`) or `DB_PROBE_SECRET_ARN`: exactly one of the
/// two ways. Problems name variables, never values other than the ARN.
fn probe_login(env: Env<'_>, missing: &mut Vec<String>, problems: &mut Vec<String>) -> ProbeLogin {
    let given = |name: &str| {
        env(name)
            .map(|v| v.trim().to_string())
            .filter(|v| !v.is_empty())
    };
    let user = given("DB_PROBE_USER");
    let password_given = given("DB_PROBE_PASSWORD").is_some();
    let Some(arn) = given("DB_PROBE_SECRET_ARN") else {
        if user.is_none() {
            missing.push("DB_PROBE_USER (or DB_PROBE_SECRET_ARN)".into());
        }
        return ProbeLogin::Password {
            user: user.unwrap_or_default(),
            password: Secret::new(env("DB_PROBE_PASSWORD").unwrap_or_default()),
        };
    };
    if user.is_some() || password_given {
        problems.push(
            "DB_PROBE_SECRET_ARN and DB_PROBE_USER/DB_PROBE_PASSWORD are both set: \
             give the probe's account one way"
                .into(),
        );
    }
    let Some(region) = secrets::arn_region(&arn).map(str::to_string) else {
        problems.push(format!(
            "DB_PROBE_SECRET_ARN=`{arn}`: expected arn:aws:secretsmanager:REGION:ACCOUNT:secret:NAME"
        ));
        return ProbeLogin::Secret {
            arn,
            region: String::new(),
            endpoint: String::new(),
        };
    };
    let endpoint = secrets::default_endpoint(&region, env)
        .trim()
        .trim_end_matches('/')
        .to_string();
    ProbeLogin::Secret {
        arn,
        region,
        endpoint,
    }
}

impl Config {
    /// Read and check the configuration from `env` (the process environment in the
    /// function: [`drfailover_dns::aws::credentials::process_env`]). Every missing variable
    /// and every malformed value is named in one error. Pure apart from `env`.
    pub fn from_env(env: Env<'_>) -> Result<Config, LambdaError> {
        let mut missing = Vec::new();
        let mut problems = Vec::new();
        let primary_endpoint = required(env, "PRIMARY_DB_ENDPOINT", &mut missing);
        let secondary_endpoint = required(env, "SECONDARY_DB_ENDPOINT", &mut missing);
        let primary_id = required(env, "PRIMARY_DB_INSTANCE_ID", &mut missing);
        let secondary_id = required(env, "SECONDARY_DB_INSTANCE_ID", &mut missing);
        let zone = required(env, "HOSTED_ZONE_ID", &mut missing);
        let record_name = required(env, "RECORD_NAME", &mut missing);
        let primary_set = required(env, "PRIMARY_RECORD_SET_ID", &mut missing);
        let secondary_set = required(env, "SECONDARY_RECORD_SET_ID", &mut missing);
        let topic = required(env, "SNS_TOPIC_ARN", &mut missing);
        let probe_login = probe_login(env, &mut missing, &mut problems);
        let region = env("AWS_REGION")
            .or_else(|| env("AWS_DEFAULT_REGION"))
            .unwrap_or_else(|| {
                missing.push("AWS_REGION".into());
                String::new()
            });
        let promote_read_replica = match env("PROMOTE_READ_REPLICA")
            .map(|v| v.trim().to_ascii_lowercase())
            .as_deref()
        {
            None | Some("false") => false,
            Some("true") => true,
            Some(other) => {
                problems.push(format!(
                    "PROMOTE_READ_REPLICA=`{other}`: expected true or false"
                ));
                false
            }
        };
        let probe_timeout = match env("PROBE_TIMEOUT_MS") {
            None => Duration::from_millis(2000),
            Some(v) => match v.trim().parse::<u64>() {
                Ok(ms) if (50..=60_000).contains(&ms) => Duration::from_millis(ms),
                _ => {
                    problems.push(format!(
                        "PROBE_TIMEOUT_MS=`{v}`: expected milliseconds, 50-60000"
                    ));
                    Duration::from_millis(2000)
                }
            },
        };
        if !missing.is_empty() {
            return Err(LambdaError::Config(format!(
                "missing environment variable(s): {}",
                missing.join(", ")
            )));
        }
        let mut endpoint = |name: &str, text: &str| match DbEndpoint::parse(text) {
            Ok(e) => Some(e),
            Err(e) => {
                problems.push(format!("{name}: {e}"));
                None
            }
        };
        let primary_endpoint = endpoint("PRIMARY_DB_ENDPOINT", &primary_endpoint);
        let secondary_endpoint = endpoint("SECONDARY_DB_ENDPOINT", &secondary_endpoint);
        for (name, value) in [
            ("PRIMARY_DB_INSTANCE_ID", &primary_id),
            ("SECONDARY_DB_INSTANCE_ID", &secondary_id),
            ("PRIMARY_RECORD_SET_ID", &primary_set),
            ("SECONDARY_RECORD_SET_ID", &secondary_set),
        ] {
            if let Err(e) = identifier(name, value) {
                problems.push(e);
            }
        }
        if primary_id == secondary_id {
            problems
                .push("PRIMARY_DB_INSTANCE_ID and SECONDARY_DB_INSTANCE_ID are the same".into());
        }
        if primary_set == secondary_set {
            problems.push("PRIMARY_RECORD_SET_ID and SECONDARY_RECORD_SET_ID are the same".into());
        }
        let zone = zone.trim_start_matches("/hostedzone/").to_string();
        if !zone.bytes().all(|b| b.is_ascii_alphanumeric()) {
            problems.push(format!(
                "HOSTED_ZONE_ID=`{zone}`: expected an id like Z0123456789ABC"
            ));
        }
        if !matches!(
            drfailover_dns::Published::parse(&record_name),
            Ok(drfailover_dns::Published::Cname(_))
        ) {
            problems.push(format!("RECORD_NAME=`{record_name}`: not a DNS name"));
        }
        if drfailover_dns::sns::arn_region(&topic).is_none() {
            problems.push(format!(
                "SNS_TOPIC_ARN=`{topic}`: expected arn:aws:sns:REGION:ACCOUNT:NAME"
            ));
        }
        let (Some(primary_endpoint), Some(secondary_endpoint)) =
            (primary_endpoint, secondary_endpoint)
        else {
            return Err(LambdaError::Config(problems.join("; ")));
        };
        if primary_endpoint == secondary_endpoint {
            problems.push("PRIMARY_DB_ENDPOINT and SECONDARY_DB_ENDPOINT are the same".into());
        }
        let service_endpoint = |var: &str, default: String| {
            env(var)
                .or_else(|| env("AWS_ENDPOINT_URL"))
                .map(|e| e.trim().trim_end_matches('/').to_string())
                .unwrap_or(default)
        };
        let config = Config {
            rds_endpoint: service_endpoint(
                "AWS_ENDPOINT_URL_RDS",
                format!("https://rds.{region}.amazonaws.com"),
            ),
            route53_endpoint: service_endpoint(
                "AWS_ENDPOINT_URL_ROUTE_53",
                drfailover_dns::route53::DEFAULT_ENDPOINT.to_string(),
            ),
            sns_endpoint: service_endpoint(
                "AWS_ENDPOINT_URL_SNS",
                format!("https://sns.{region}.amazonaws.com"),
            ),
            primary: DbNode {
                endpoint: primary_endpoint,
                instance_id: primary_id,
            },
            secondary: DbNode {
                endpoint: secondary_endpoint,
                instance_id: secondary_id,
            },
            hosted_zone_id: zone,
            record_name: record_name.trim_end_matches('.').to_ascii_lowercase(),
            primary_record_set_id: primary_set,
            secondary_record_set_id: secondary_set,
            sns_topic_arn: topic,
            promote_read_replica,
            probe_login,
            probe_timeout,
            region,
        };
        for (name, url) in [
            ("RDS", &config.rds_endpoint),
            ("Route 53", &config.route53_endpoint),
            ("SNS", &config.sns_endpoint),
        ] {
            if !(url.starts_with("https://") || url.starts_with("http://")) {
                problems.push(format!(
                    "{name} endpoint `{url}`: expected an http(s):// URL"
                ));
            }
        }
        if problems.is_empty() {
            Ok(config)
        } else {
            Err(LambdaError::Config(problems.join("; ")))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    pub(crate) fn full() -> BTreeMap<&'static str, &'static str> {
        BTreeMap::from([
            ("PRIMARY_DB_ENDPOINT", "db1.abc.eu-west-1.rds.amazonaws.com"),
            (
                "SECONDARY_DB_ENDPOINT",
                "db2.abc.eu-west-1.rds.amazonaws.com:3307",
            ),
            ("PRIMARY_DB_INSTANCE_ID", "db1"),
            ("SECONDARY_DB_INSTANCE_ID", "db2"),
            ("HOSTED_ZONE_ID", "/hostedzone/Z123"),
            ("RECORD_NAME", "db.example.com."),
            ("PRIMARY_RECORD_SET_ID", "primary"),
            ("SECONDARY_RECORD_SET_ID", "secondary"),
            (
                "SNS_TOPIC_ARN",
                "arn:aws:sns:eu-west-1:123456789012:failover",
            ),
            ("DB_PROBE_USER", "probe"),
            ("DB_PROBE_PASSWORD", "hunter2-probe-secret"),
            ("AWS_REGION", "eu-west-1"),
        ])
    }

    fn read(vars: &BTreeMap<&'static str, &'static str>) -> Result<Config, LambdaError> {
        Config::from_env(&|name: &str| vars.get(name).map(|v| v.to_string()))
    }

    #[test]
    fn reads_a_full_configuration() {
        let config = read(&full()).unwrap();
        assert_eq!(config.secondary.endpoint.port, 3307);
        assert_eq!(config.primary.endpoint.port, 3306);
        assert_eq!(config.hosted_zone_id, "Z123");
        assert_eq!(config.record_name, "db.example.com");
        assert!(!config.promote_read_replica);
        assert_eq!(config.rds_endpoint, "https://rds.eu-west-1.amazonaws.com");
        let shown = format!("{config:?}");
        assert!(!shown.contains("hunter2"), "{shown}");
    }

    #[test]
    fn missing_and_malformed_values_are_all_named() {
        let mut vars = full();
        vars.remove("HOSTED_ZONE_ID");
        vars.remove("SNS_TOPIC_ARN");
        let err = read(&vars).unwrap_err().to_string();
        assert!(
            err.contains("HOSTED_ZONE_ID") && err.contains("SNS_TOPIC_ARN"),
            "{err}"
        );
        let mut vars = full();
        vars.insert("PROMOTE_READ_REPLICA", "yes");
        vars.insert("SECONDARY_DB_ENDPOINT", "db2:99999");
        vars.insert("SECONDARY_DB_INSTANCE_ID", "db1");
        let err = read(&vars).unwrap_err().to_string();
        assert!(err.contains("PROMOTE_READ_REPLICA"), "{err}");
        assert!(err.contains("port"), "{err}");
        assert!(err.contains("the same"), "{err}");
        assert!(!err.contains("hunter2"), "{err}");
    }

    #[test]
    fn the_probe_account_comes_from_a_secret_or_from_user_and_password_not_both() {
        const ARN: &str = "arn:aws:secretsmanager:eu-west-1:123456789012:secret:probe-AbCdEf";
        let mut vars = full();
        vars.remove("DB_PROBE_USER");
        vars.remove("DB_PROBE_PASSWORD");
        vars.insert("DB_PROBE_SECRET_ARN", ARN);
        match read(&vars).unwrap().probe_login {
            ProbeLogin::Secret {
                arn,
                region,
                endpoint,
            } => {
                assert_eq!(arn, ARN);
                assert_eq!(region, "eu-west-1");
                assert_eq!(endpoint, "https://secretsmanager.eu-west-1.amazonaws.com");
            }
            other => panic!("{other:?}"),
        }
        vars.insert("AWS_ENDPOINT_URL", "http://127.0.0.1:4566/");
        assert!(matches!(
            read(&vars).unwrap().probe_login,
            ProbeLogin::Secret { endpoint, .. } if endpoint == "http://127.0.0.1:4566"
        ));

        // Both ways: an error naming the variables, never the password.
        let mut both = full();
        both.insert("DB_PROBE_SECRET_ARN", ARN);
        let err = read(&both).unwrap_err().to_string();
        assert!(
            err.contains("DB_PROBE_SECRET_ARN") && err.contains("DB_PROBE_USER"),
            "{err}"
        );
        assert!(!err.contains("hunter2"), "{err}");
        let mut password_and_arn = vars.clone();
        password_and_arn.insert("DB_PROBE_PASSWORD", "hunter2-probe-secret");
        let err = read(&password_and_arn).unwrap_err().to_string();
        assert!(err.contains("DB_PROBE_PASSWORD"), "{err}");
        assert!(!err.contains("hunter2"), "{err}");

        // Neither: both names in the error.
        let mut neither = full();
        neither.remove("DB_PROBE_USER");
        neither.remove("DB_PROBE_PASSWORD");
        let err = read(&neither).unwrap_err().to_string();
        assert!(
            err.contains("DB_PROBE_USER") && err.contains("DB_PROBE_SECRET_ARN"),
            "{err}"
        );

        // Not a secret ARN.
        vars.insert("DB_PROBE_SECRET_ARN", "probe-secret");
        let err = read(&vars).unwrap_err().to_string();
        assert!(err.contains("DB_PROBE_SECRET_ARN"), "{err}");
    }

    #[test]
    fn endpoints() {
        assert_eq!(
            DbEndpoint::parse("127.0.0.5:3310").unwrap(),
            DbEndpoint {
                host: "127.0.0.5".into(),
                port: 3310
            }
        );
        assert_eq!(DbEndpoint::parse("[::1]:3307").unwrap().port, 3307);
        assert!(DbEndpoint::parse("bad host!").is_err());
        assert_eq!(
            DbEndpoint::parse("db.example.com").unwrap().to_string(),
            "db.example.com:3306"
        );
    }
}
