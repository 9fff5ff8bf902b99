//! Shared by the subcommands: parse a DSN, probe its endpoints, describe the results.

use std::time::Duration;

use drfailover_conn::{Config, Endpoint};
use drfailover_probe::{Deadline, MonitorProbe, Observation, OutcomeClass};
use serde_json::json;

/// Parse a DSN and fetch its `secret_arn` (if any), printing the library's precise error on
/// failure.
pub fn config(command: &str, dsn: &str) -> Result<Config, String> {
    let mut config = Config::from_dsn(dsn).map_err(|e| format!("drfailover {command}: {e}"))?;
    config
        .resolve_secret()
        .map_err(|e| format!("drfailover {command}: {e}"))?;
    Ok(config)
}

/// A monitor probe for `endpoint` with the DSN's connection options (credentials, database,
/// TLS, timeouts, an RDS IAM token with `auth=rds_iam`): the library's own mapping, so
/// `ssl_mode`/`ssl_ca` apply here too.
pub fn monitor(config: &Config, endpoint: &Endpoint) -> MonitorProbe {
    let options = config.login_options(endpoint).unwrap_or_else(|e| {
        eprintln!("drfailover: {endpoint}: {e}");
        config.connect_options(endpoint)
    });
    MonitorProbe::new(options)
}

/// Probe once with a role probe bounded by `timeout`.
pub fn probe(config: &Config, endpoint: &Endpoint, timeout: Duration) -> Observation {
    monitor(config, endpoint).role(Deadline::after(timeout))
}

/// `writer`, `replica`, `read-only` or the failure class.
pub fn role_name(obs: &Observation) -> &'static str {
    match (&obs.class, &obs.role) {
        (OutcomeClass::Up, _) => "writer",
        (OutcomeClass::ReadOnly | OutcomeClass::Lagging, Some(r)) if r.replication.is_some() => {
            "replica"
        }
        (OutcomeClass::ReadOnly, _) => "read-only",
        (class, _) => class.as_str(),
    }
}

/// Replica lag in seconds, if the node replicates and reports one.
pub fn lag(obs: &Observation) -> Option<u64> {
    obs.role.as_ref()?.replication.as_ref()?.seconds_behind
}

/// The JSON form of one probe result (stable keys).
pub fn to_json(endpoint: &Endpoint, obs: &Observation) -> serde_json::Value {
    let replication = obs.role.as_ref().and_then(|r| r.replication.as_ref());
    json!({
        "endpoint": endpoint.to_string(),
        "outcome": obs.class.as_str(),
        "role": role_name(obs),
        "writable": obs.writable(),
        "latency_ms": (obs.latency.as_secs_f64() * 1e6).round() / 1e3,
        "lag_seconds": lag(obs),
        "replica_io_running": replication.map(|r| r.io_running),
        "replica_sql_running": replication.map(|r| r.sql_running),
        "gtid_position": obs.role.as_ref().and_then(|r| r.gtid_position.clone()),
        "semi_sync_master": obs.role.as_ref().and_then(|r| r.semi_sync_master),
        "detail": obs.detail,
    })
}
