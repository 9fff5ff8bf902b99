//! The orchestrator's configuration file (TOML): parsed strictly (unknown keys are errors),
//! checked as a whole, secrets read from the environment or files and never shown.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use drfailover_dns::{Announcer, AnnouncerConfig};
use drfailover_mysql::{ConnectOptions, Secret};
use serde::Deserialize;

use crate::control::ControlToken;
use crate::execute::{FenceCommand, Settings};
use crate::policy::{NodeSpec, Policy};

use drfailover_files::{read_text, resolve_secret, SecretSource, CONFIG_FILE_LIMIT};

/// A configuration problem, with the file and key it concerns. Never contains a secret.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct ConfigError(pub String);

fn err(message: impl Into<String>) -> ConfigError {
    ConfigError(message.into())
}

#[derive(Deserialize, Debug, Default)]
#[serde(deny_unknown_fields)]
struct OrchestratorSection {
    lock_name: Option<String>,
    probe_interval_ms: Option<u64>,
    probe_timeout_ms: Option<u64>,
    suspect_interval_ms: Option<u64>,
    fall: Option<u32>,
    heartbeat_period_ms: Option<u64>,
    set_heartbeat_period: Option<bool>,
    anti_flap_s: Option<u64>,
    allow_data_loss: Option<bool>,
    max_promotion_lag_s: Option<u64>,
    rejoin_old_primary: Option<bool>,
    catchup_timeout_ms: Option<u64>,
    step_timeout_ms: Option<u64>,
    semi_sync_wait_ms: Option<u64>,
    sync_fallback: Option<String>,
    sync_fallback_ms: Option<u64>,
    announce_timeout_ms: Option<u64>,
    listen: Option<String>,
    control_token_file: Option<PathBuf>,
    state_dir: Option<PathBuf>,
    state_max_age_s: Option<u64>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CredentialSection {
    user: String,
    password: Option<String>,
    password_env: Option<String>,
    password_file: Option<PathBuf>,
}

impl std::fmt::Debug for CredentialSection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CredentialSection")
            .field("user", &self.user)
            .field("password", &self.password.as_ref().map(|_| "***"))
            .field("password_env", &self.password_env)
            .field("password_file", &self.password_file)
            .finish()
    }
}

#[derive(Deserialize, Debug)]
#[serde(deny_unknown_fields)]
struct FenceSection {
    command: Vec<String>,
    timeout_ms: Option<u64>,
}

#[derive(Deserialize, Clone, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
struct WebhookSection {
    url: String,
    #[serde(default)]
    format: Option<String>,
    #[serde(default)]
    timeout_ms: Option<u64>,
}

impl std::fmt::Debug for WebhookSection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WebhookSection")
            .field("url", &drfailover_notify::redact_url(&self.url))
            .field("format", &self.format)
            .finish()
    }
}

#[derive(Deserialize, Debug, Clone, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
struct HookSection {
    command: PathBuf,
    #[serde(default)]
    timeout_ms: Option<u64>,
}

#[derive(Deserialize, Debug)]
#[serde(deny_unknown_fields)]
struct NodeSection {
    name: String,
    host: String,
    port: Option<u16>,
    priority: Option<i32>,
    never_promote: Option<bool>,
}

#[derive(Deserialize, Debug)]
#[serde(deny_unknown_fields)]
struct File {
    #[serde(default)]
    orchestrator: OrchestratorSection,
    credentials: CredentialSection,
    replication: Option<CredentialSection>,
    fence: Option<FenceSection>,
    #[serde(rename = "node")]
    nodes: Vec<NodeSection>,
    /// Announcer tables, handed to the announcers as they are (see the DNS crate).
    #[serde(default)]
    announce: Vec<toml::Value>,
    #[serde(default, rename = "webhook")]
    webhooks: Vec<WebhookSection>,
    #[serde(default, rename = "hook")]
    hooks: Vec<HookSection>,
    sns: Option<drfailover_dns::SnsConfig>,
}

/// Where events go besides the caller's own subscribers (`[[webhook]]`, `[[hook]]`,
/// `[sns]`), each on a worker thread of its own ([`Config::attach_sinks`]).
#[derive(Clone, Debug)]
pub struct Sinks {
    webhooks: Vec<WebhookSection>,
    hooks: Vec<HookSection>,
    sns: Option<drfailover_dns::SnsConfig>,
}

/// Failures of the event sinks, by kind (`webhook`, `hook`, `sns`), for `/metrics`.
/// Cloning shares the counters.
#[derive(Clone, Debug, Default)]
pub struct SinkStats {
    failed: Arc<Mutex<Vec<Counted<AtomicU64>>>>,
    queues: Arc<Mutex<Vec<Counted<drfailover_notify::AsyncSink>>>>,
}

/// A sink kind and what counts for it.
type Counted<T> = (&'static str, Arc<T>);

impl SinkStats {
    fn failures(&self, kind: &'static str) -> Arc<AtomicU64> {
        let counter = Arc::new(AtomicU64::new(0));
        self.failed
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push((kind, counter.clone()));
        counter
    }

    /// Per sink kind: (events that failed, events dropped because the queue was full),
    /// summed over the sinks of that kind. Cheap.
    pub fn totals(&self) -> Vec<(&'static str, u64, u64)> {
        let mut out: Vec<(&'static str, u64, u64)> = Vec::new();
        let mut add = |kind: &'static str, failed: u64, dropped: u64| match out
            .iter_mut()
            .find(|(k, _, _)| *k == kind)
        {
            Some(entry) => {
                entry.1 += failed;
                entry.2 += dropped;
            }
            None => out.push((kind, failed, dropped)),
        };
        for (kind, c) in self.failed.lock().unwrap_or_else(|p| p.into_inner()).iter() {
            add(kind, c.load(Ordering::Relaxed), 0);
        }
        for (kind, q) in self.queues.lock().unwrap_or_else(|p| p.into_inner()).iter() {
            add(kind, 0, q.dropped());
        }
        out
    }
}

/// A checked configuration, ready to run.
#[derive(Clone, Debug)]
pub struct Config {
    /// The nodes, in configuration order.
    pub nodes: Vec<NodeSpec>,
    /// Detection and promotion rules.
    pub policy: Policy,
    /// How actions are carried out.
    pub settings: Settings,
    /// Name of the `GET_LOCK` lock orchestrators hold on a majority of nodes to act.
    pub lock_name: String,
    /// Time between observation rounds.
    pub probe_interval: Duration,
    /// Deadline of each node's probe.
    pub probe_timeout: Duration,
    /// Time between rounds while the primary is suspect (failed a probe, not yet `fall`).
    pub suspect_interval: Duration,
    /// Set `MASTER_HEARTBEAT_PERIOD` on replicas whose period is longer than the policy's.
    pub set_heartbeat_period: bool,
    /// Admin user and password.
    pub user: String,
    /// The admin password (never shown).
    pub password: Secret,
    /// Where to serve `/status` and `/metrics`, if anywhere.
    pub listen: Option<String>,
    /// The bearer token of `POST /switchover` and `POST /ack` (from `control_token_file`);
    /// without it they are refused.
    pub control_token: Option<ControlToken>,
    /// Event sinks from the file.
    pub sinks: Sinks,
    /// Where the state a successor needs is kept (`state_dir`), if anywhere.
    pub state_dir: Option<PathBuf>,
    /// Saved facts about the primary older than this are no proof at start-up.
    pub state_max_age: Duration,
}

impl Config {
    /// Read and check the file at `path`: a regular file of at most 1 MiB, read bounded (a
    /// FIFO, device or directory is refused without reading from it). Blocks on local file I/O.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = read_text(path, CONFIG_FILE_LIMIT)
            .map_err(|e| err(format!("config {}: {e}", path.display())))?;
        Config::parse(&text).map_err(|e| err(format!("config {}: {}", path.display(), e.0)))
    }

    /// Parse and check configuration text.
    pub fn parse(text: &str) -> Result<Config, ConfigError> {
        // The parser's own message quotes the offending line, which may hold a password:
        // only its place and a message without values are told.
        let file: File = toml::from_str(text).map_err(|e: toml::de::Error| {
            err(drfailover_files::describe_parse_error(
                text,
                e.span(),
                e.message(),
            ))
        })?;
        let o = &file.orchestrator;
        let ms = |v: Option<u64>, default: u64, key: &str| -> Result<Duration, ConfigError> {
            let v = v.unwrap_or(default);
            if v == 0 || v > 24 * 3600 * 1000 {
                return Err(err(format!(
                    "[orchestrator] {key} = {v}: must be between 1 and 86400000"
                )));
            }
            Ok(Duration::from_millis(v))
        };
        if file.nodes.len() < 2 {
            return Err(err(format!(
                "{} [[node]] table(s): at least a primary and one replica are needed",
                file.nodes.len()
            )));
        }
        let mut names = BTreeSet::new();
        let mut addresses = BTreeSet::new();
        let mut nodes = Vec::new();
        for (i, n) in file.nodes.iter().enumerate() {
            if n.name.is_empty()
                || n.name.chars().count() > MAX_NODE_NAME
                || n.name.chars().any(|c| c.is_control() || c == ' ')
            {
                return Err(err(format!(
                    "[[node]] #{}: name must be 1 to {MAX_NODE_NAME} characters, without spaces \
                     or control characters",
                    i + 1
                )));
            }
            if !names.insert(n.name.clone()) {
                return Err(err(format!("[[node]] name `{}` appears twice", n.name)));
            }
            if n.host.is_empty() || n.host.len() > MAX_HOST {
                return Err(err(format!(
                    "[[node]] `{}`: host must be 1 to {MAX_HOST} bytes",
                    n.name
                )));
            }
            if n.host.chars().any(|c| c.is_control()) {
                return Err(err(format!(
                    "[[node]] `{}`: host contains control characters",
                    n.name
                )));
            }
            let port = n.port.unwrap_or(3306);
            if port == 0 {
                return Err(err(format!(
                    "[[node]] `{}`: port 0 is not a port (1 to 65535)",
                    n.name
                )));
            }
            if !addresses.insert((n.host.clone(), port)) {
                return Err(err(format!(
                    "[[node]] `{}`: {}:{port} appears twice",
                    n.name, n.host
                )));
            }
            nodes.push(NodeSpec {
                name: n.name.clone(),
                host: n.host.clone(),
                port,
                priority: n.priority.unwrap_or(0),
                never_promote: n.never_promote.unwrap_or(false),
            });
        }
        let defaults = Policy::default();
        let fall = o.fall.unwrap_or(defaults.fall);
        if fall == 0 || fall > 100 {
            return Err(err(format!(
                "[orchestrator] fall = {fall}: must be between 1 and 100"
            )));
        }
        let fence_command = match &file.fence {
            None => None,
            Some(f) => {
                let (program, args) = f
                    .command
                    .split_first()
                    .ok_or_else(|| err("[fence] command is empty"))?;
                Some(FenceCommand {
                    program: PathBuf::from(program),
                    args: args.to_vec(),
                    timeout: ms(f.timeout_ms, 10_000, "fence timeout_ms")?,
                })
            }
        };
        let heartbeat_period = ms(
            o.heartbeat_period_ms,
            defaults.heartbeat_period.as_millis() as u64,
            "heartbeat_period_ms",
        )?;
        let policy =
            Policy {
                fall,
                heartbeat_period,
                anti_flap: o
                    .anti_flap_s
                    .map_or(defaults.anti_flap, Duration::from_secs),
                allow_data_loss: o.allow_data_loss.unwrap_or(defaults.allow_data_loss),
                max_promotion_lag: o
                    .max_promotion_lag_s
                    .map(Duration::from_secs)
                    .or(defaults.max_promotion_lag),
                rejoin_old_primary: o.rejoin_old_primary.unwrap_or(defaults.rejoin_old_primary),
                sync_fallback: match (o.sync_fallback.as_deref(), o.sync_fallback_ms) {
                    (Some("never"), None) => None,
                    (Some("never"), Some(_)) => return Err(err(
                        "[orchestrator] sync_fallback = \"never\" and sync_fallback_ms: choose one",
                    )),
                    (Some("after"), v) | (None, v) => Some(ms(
                        v,
                        defaults
                            .sync_fallback
                            .map_or(5_000, |d| d.as_millis() as u64),
                        "sync_fallback_ms",
                    )?),
                    (Some(other), _) => {
                        return Err(err(format!(
                            "[orchestrator] sync_fallback = {other:?}: `never` or `after` (then \
                         sync_fallback_ms)"
                        )))
                    }
                },
            };
        let password = secret(&file.credentials, "credentials")?;
        let replication = match &file.replication {
            Some(r) => Some((r.user.clone(), secret(r, "replication")?)),
            None => None,
        };
        let mut announcers = Vec::new();
        for (i, table) in file.announce.into_iter().enumerate() {
            let parsed: AnnouncerConfig = table.try_into().map_err(|e: toml::de::Error| {
                err(format!(
                    "[[announce]] #{}: {}",
                    i + 1,
                    drfailover_files::describe_parse_error("", None, e.message())
                ))
            })?;
            let built = parsed
                .build()
                .map_err(|e| err(format!("[[announce]] #{}: {e}", i + 1)))?;
            let built: Arc<dyn Announcer> = Arc::from(built);
            announcers.push(built);
        }
        for w in &file.webhooks {
            if !(w.url.starts_with("http://") || w.url.starts_with("https://")) {
                return Err(err(format!(
                    "[[webhook]] url {}: must start with http:// or https://",
                    drfailover_notify::redact_url(&w.url)
                )));
            }
            if !matches!(w.format.as_deref(), None | Some("json") | Some("slack")) {
                return Err(err("[[webhook]] format: `json` or `slack`"));
            }
        }
        if let Some(sns) = &file.sns {
            drfailover_dns::SnsPublisher::new(sns).map_err(|e| err(format!("[sns]: {e}")))?;
        }
        let settings = Settings {
            announcers,
            announce_timeout: ms(o.announce_timeout_ms, 5_000, "announce_timeout_ms")?,
            step_timeout: ms(o.step_timeout_ms, 10_000, "step_timeout_ms")?,
            catchup_timeout: ms(o.catchup_timeout_ms, 30_000, "catchup_timeout_ms")?,
            fence_command,
            replication,
            heartbeat_period,
            admin_user: file.credentials.user.clone(),
            semi_sync_wait: ms(o.semi_sync_wait_ms, 5_000, "semi_sync_wait_ms")?,
        };
        let lock_name = o
            .lock_name
            .clone()
            .unwrap_or_else(|| "drfailover_orchestrator".into());
        check_lock_name(&lock_name)?;
        let control_token = match &o.control_token_file {
            None => None,
            Some(path) => Some(
                ControlToken::from_file(path)
                    .map_err(|e| err(format!("[orchestrator] control_token_file {e}")))?,
            ),
        };
        if let Some(dir) = &o.state_dir {
            if !dir.is_dir() {
                return Err(err(format!(
                    "[orchestrator] state_dir {}: not a directory",
                    dir.display()
                )));
            }
        }
        let state_max_age_s = o.state_max_age_s.unwrap_or(60);
        if state_max_age_s == 0 || state_max_age_s > 24 * 3600 {
            return Err(err(format!(
                "[orchestrator] state_max_age_s = {state_max_age_s}: must be between 1 and 86400"
            )));
        }
        Ok(Config {
            state_dir: o.state_dir.clone(),
            state_max_age: Duration::from_secs(state_max_age_s),
            nodes,
            policy,
            settings,
            lock_name,
            control_token,
            probe_interval: ms(o.probe_interval_ms, 200, "probe_interval_ms")?,
            probe_timeout: ms(o.probe_timeout_ms, 200, "probe_timeout_ms")?,
            suspect_interval: ms(o.suspect_interval_ms, 20, "suspect_interval_ms")?,
            set_heartbeat_period: o.set_heartbeat_period.unwrap_or(true),
            user: file.credentials.user.clone(),
            password,
            listen: o.listen.clone(),
            sinks: Sinks {
                webhooks: file.webhooks,
                hooks: file.hooks,
                sns: file.sns,
            },
        })
    }

    /// Subscribe the file's sinks (`[[webhook]]`, `[[hook]]`, `[sns]`) to `notifier`, each
    /// on a worker thread of its own with a bounded queue (a slow sink never holds up the
    /// orchestrator). Every failure (a hook's non-zero exit, a webhook or SNS error, a full
    /// queue) is logged (`log::warn!`) and counted in the returned [`SinkStats`]. Reads AWS
    /// credential files; no network I/O.
    pub fn attach_sinks(
        &self,
        notifier: &drfailover_notify::Notifier,
    ) -> Result<SinkStats, ConfigError> {
        use drfailover_notify::{AsyncSink, CommandHook, Webhook, WebhookFormat};
        let drain = Duration::from_secs(2);
        let stats = SinkStats::default();
        let mut sinks: Vec<(&'static str, AsyncSink)> = Vec::new();
        for w in &self.sinks.webhooks {
            let format = if w.format.as_deref() == Some("slack") {
                WebhookFormat::Slack
            } else {
                WebhookFormat::Generic
            };
            let mut hook = Webhook::new(w.url.clone(), format);
            if let Some(ms) = w.timeout_ms {
                hook.timeout = Duration::from_millis(ms);
            }
            let failures = stats.failures("webhook");
            sinks.push((
                "webhook",
                AsyncSink::spawn("webhook", 256, drain, move |e| {
                    if let Err(error) = hook.send(e) {
                        failures.fetch_add(1, Ordering::Relaxed);
                        log::warn!(target: "drfailover", "webhook: {error}");
                    }
                })
                .map_err(|e| err(format!("webhook worker: {e}")))?,
            ));
        }
        for h in &self.sinks.hooks {
            let mut hook = CommandHook::new(h.command.clone());
            if let Some(ms) = h.timeout_ms {
                hook.timeout = Duration::from_millis(ms);
            }
            let failures = stats.failures("hook");
            sinks.push((
                "hook",
                AsyncSink::spawn("hook", 256, drain, move |e| match hook.run(e) {
                    Ok(0) => {}
                    Ok(code) => {
                        failures.fetch_add(1, Ordering::Relaxed);
                        log::warn!(target: "drfailover", "hook {} exited with {code}", hook.program.display());
                    }
                    Err(error) => {
                        failures.fetch_add(1, Ordering::Relaxed);
                        log::warn!(target: "drfailover", "hook: {error}");
                    }
                })
                .map_err(|e| err(format!("hook worker: {e}")))?,
            ));
        }
        if let Some(sns) = &self.sinks.sns {
            let publisher =
                drfailover_dns::SnsPublisher::new(sns).map_err(|e| err(format!("[sns]: {e}")))?;
            sinks.push((
                "sns",
                publisher
                    .into_counted_sink(stats.failures("sns"))
                    .map_err(|e| err(format!("sns worker: {e}")))?,
            ));
        }
        for (kind, sink) in sinks {
            let sink = Arc::new(sink);
            stats
                .queues
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .push((kind, sink.clone()));
            notifier.subscribe(move |e| sink.offer(e));
        }
        Ok(stats)
    }

    /// Connection options for node `i` (admin user; short connect timeout).
    pub fn connect_options(&self, i: usize) -> ConnectOptions {
        let n = &self.nodes[i];
        let mut o = ConnectOptions::tcp(n.host.clone(), n.port)
            .user(self.user.clone())
            .password(self.password.clone());
        o.connect_timeout = self.probe_timeout.max(Duration::from_secs(1));
        o.read_timeout = Some(self.settings.step_timeout + self.settings.catchup_timeout);
        o.write_timeout = Some(self.settings.step_timeout);
        o
    }
}

/// Longest node name (it appears in every event and metric label).
pub const MAX_NODE_NAME: usize = 64;

/// Longest host name (DNS's limit).
const MAX_HOST: usize = 255;

/// `GET_LOCK` names: 1 to 64 printable ASCII characters (the server's limit), passed as a
/// literal escaped by the client library.
fn check_lock_name(name: &str) -> Result<(), ConfigError> {
    if name.is_empty() || name.len() > 64 || !name.bytes().all(|b| (0x20..0x7f).contains(&b)) {
        return Err(err(
            "[orchestrator] lock_name: 1 to 64 printable ASCII characters",
        ));
    }
    Ok(())
}

fn secret(c: &CredentialSection, section: &str) -> Result<Secret, ConfigError> {
    if c.user.contains('\0') {
        return Err(err(format!("[{section}] user: contains a NUL byte")));
    }
    let sources = [
        c.password.is_some(),
        c.password_env.is_some(),
        c.password_file.is_some(),
    ];
    if sources.iter().filter(|s| **s).count() > 1 {
        return Err(err(format!(
            "[{section}]: give only one of password, password_env, password_file"
        )));
    }
    // The workspace's one rule (drfailover_files::resolve_secret): a file gives its first
    // line, bounded and regular files only; NUL refused from every source.
    let (key, source) = match (&c.password, &c.password_env, &c.password_file) {
        (Some(p), _, _) => ("password".to_string(), SecretSource::Inline(p)),
        (_, Some(var), _) => ("password_env".to_string(), SecretSource::Env(var)),
        (_, _, Some(path)) => (
            format!("password_file {}", path.display()),
            SecretSource::File(path),
        ),
        _ => return Ok(Secret::default()),
    };
    resolve_secret(source)
        .map(Secret::new)
        .map_err(|e| err(format!("[{section}] {key}: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = r#"
[orchestrator]
fall = 2

[credentials]
user = "orc"
password = "s3cr3t-pw"

[[node]]
name = "db1"
host = "127.0.0.1"

[[node]]
name = "db2"
host = "127.0.0.2"
priority = 5
"#;

    #[test]
    fn a_good_file_parses_with_defaults() {
        let c = Config::parse(GOOD).unwrap();
        assert_eq!(c.nodes.len(), 2);
        assert_eq!(c.nodes[1].priority, 5);
        assert_eq!(c.nodes[0].port, 3306);
        assert_eq!(c.policy.fall, 2);
        assert_eq!(c.probe_interval, Duration::from_millis(200));
        assert!(!format!("{c:?}").contains("s3cr3t-pw"));
    }

    #[test]
    fn the_semi_sync_fallback_is_after_5_s_by_default_configurable_or_never() {
        let c = Config::parse(GOOD).unwrap();
        assert_eq!(c.policy.sync_fallback, Some(Duration::from_secs(5)));
        let set = GOOD.replace("fall = 2", "fall = 2\nsync_fallback_ms = 1500");
        assert_eq!(
            Config::parse(&set).unwrap().policy.sync_fallback,
            Some(Duration::from_millis(1500))
        );
        let never = GOOD.replace("fall = 2", "fall = 2\nsync_fallback = \"never\"");
        assert_eq!(Config::parse(&never).unwrap().policy.sync_fallback, None);
        let both = GOOD.replace(
            "fall = 2",
            "fall = 2\nsync_fallback = \"never\"\nsync_fallback_ms = 10",
        );
        assert!(Config::parse(&both).unwrap_err().0.contains("choose one"));
        let bad = GOOD.replace("fall = 2", "fall = 2\nsync_fallback = \"sometimes\"");
        assert!(Config::parse(&bad).unwrap_err().0.contains("`never`"));
        let zero = GOOD.replace("fall = 2", "fall = 2\nsync_fallback_ms = 0");
        assert!(Config::parse(&zero)
            .unwrap_err()
            .0
            .contains("sync_fallback_ms"));
    }

    #[test]
    fn the_state_dir_must_exist_and_saved_facts_have_a_bounded_age() {
        let c = Config::parse(GOOD).unwrap();
        assert_eq!(
            (c.state_dir, c.state_max_age),
            (None, Duration::from_secs(60))
        );
        let dir = tempfile::tempdir().unwrap();
        let with = |extra: &str| GOOD.replace("fall = 2", &format!("fall = 2\n{extra}"));
        let c = Config::parse(&with(&format!(
            "state_dir = \"{}\"\nstate_max_age_s = 5",
            dir.path().display()
        )))
        .unwrap();
        assert_eq!(c.state_dir.as_deref(), Some(dir.path()));
        assert_eq!(c.state_max_age, Duration::from_secs(5));
        let missing = dir.path().join("nope");
        let e =
            Config::parse(&with(&format!("state_dir = \"{}\"", missing.display()))).unwrap_err();
        assert!(
            e.0.contains("state_dir") && e.0.contains("not a directory"),
            "{e}"
        );
        let e = Config::parse(&with("state_max_age_s = 0")).unwrap_err();
        assert!(e.0.contains("state_max_age_s"), "{e}");
    }

    #[test]
    fn bad_files_name_the_problem() {
        let unknown = GOOD.replace("fall = 2", "fal = 2");
        assert!(Config::parse(&unknown).unwrap_err().0.contains("fal"));
        let dup = GOOD.replace("db2", "db1");
        assert!(Config::parse(&dup).unwrap_err().0.contains("twice"));
        let zero = GOOD.replace("fall = 2", "fall = 0");
        assert!(Config::parse(&zero).unwrap_err().0.contains("fall"));
        let two = GOOD.replace(
            "password = \"s3cr3t-pw\"",
            "password = \"s3cr3t-pw\"\npassword_env = \"X\"",
        );
        let e = Config::parse(&two).unwrap_err().0;
        assert!(e.contains("only one") && !e.contains("s3cr3t-pw"));
        assert!(Config::parse("not toml [").is_err());
        assert!(Config::parse("[credentials]\nuser='x'\n").is_err());
        let env = GOOD.replace(
            "password = \"s3cr3t-pw\"",
            "password_env = \"DRF_ORCH_UNSET_VAR\"",
        );
        assert!(Config::parse(&env)
            .unwrap_err()
            .0
            .contains("DRF_ORCH_UNSET_VAR"));
    }

    #[test]
    fn secret_files_are_bounded() {
        let dir = std::env::temp_dir().join(format!("drf-orch-cfg-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let big = dir.join("big");
        std::fs::write(&big, "SECRETX".repeat(600)).unwrap();
        let nul = dir.join("nul");
        std::fs::write(&nul, "SECRET\0X\n").unwrap();
        for (file, why) in [
            ("/dev/zero", "is a character device, not a regular file"),
            (dir.to_str().unwrap(), "is a directory, not a regular file"),
            (big.to_str().unwrap(), "larger than 4096 bytes"),
            (nul.to_str().unwrap(), "contains a NUL byte"),
        ] {
            let text = GOOD.replace(
                "password = \"s3cr3t-pw\"",
                &format!("password_file = \"{file}\""),
            );
            let e = Config::parse(&text).unwrap_err().0;
            assert!(
                e.contains("password_file") && e.contains(why),
                "{file}: {e}"
            );
            assert!(!e.contains("SECRET"), "{e}");
        }
        let e = Config::parse(&GOOD.replace("user = \"orc\"", "user = \"o\\u0000rc\""))
            .unwrap_err()
            .0;
        assert!(e.contains("[credentials] user: contains a NUL byte"), "{e}");
        let e = Config::load(Path::new("/dev/zero")).unwrap_err().0;
        assert!(
            e.contains("/dev/zero") && e.contains("not a regular file"),
            "{e}"
        );
        let _ = std::fs::remove_dir_all(dir);
    }

    #[test]
    fn parse_errors_never_print_the_line_that_holds_a_secret() {
        // An unterminated inline password: the parser's own message quotes the line.
        let broken = GOOD.replace("password = \"s3cr3t-pw\"", "password = \"s3cr3t-pw");
        let e = Config::parse(&broken).unwrap_err().0;
        assert!(e.contains("line 7"), "{e}");
        assert!(!e.contains("s3cr3t"), "{e}");
        // A password of the wrong type: the value is withheld too.
        let typed = GOOD.replace("password = \"s3cr3t-pw\"", "password = 31415926535");
        let e = Config::parse(&typed).unwrap_err().0;
        assert!(
            e.contains("invalid type") && !e.contains("31415926535"),
            "{e}"
        );
        // A webhook URL with credentials in an announcer-independent error.
        let hook = format!("{GOOD}\n[[webhook]]\nurl = \"ftp://user:hunter2pw@example.test/x\"\n");
        let e = Config::parse(&hook).unwrap_err().0;
        assert!(!e.contains("hunter2pw"), "{e}");
    }

    #[test]
    fn ports_names_hosts_and_lock_names_are_bounded() {
        let e =
            Config::parse(&GOOD.replace("host = \"127.0.0.2\"", "host = \"127.0.0.2\"\nport = 0"))
                .unwrap_err()
                .0;
        assert!(e.contains("port 0"), "{e}");
        let long = "n".repeat(200_000);
        let e = Config::parse(&GOOD.replace("name = \"db1\"", &format!("name = \"{long}\"")))
            .unwrap_err()
            .0;
        assert!(
            e.contains("1 to 64 characters") && e.len() < 200,
            "{}",
            &e[..e.len().min(200)]
        );
        let e = Config::parse(&GOOD.replace(
            "host = \"127.0.0.1\"",
            &format!("host = \"{}\"", "h".repeat(300)),
        ))
        .unwrap_err()
        .0;
        assert!(e.contains("host must be") && e.len() < 200, "{e}");
        for bad in ["", "lock\\u0001", "дб"] {
            let text = GOOD.replace("fall = 2", &format!("fall = 2\nlock_name = \"{bad}\""));
            let e = Config::parse(&text).unwrap_err().0;
            assert!(e.contains("lock_name"), "{bad:?}: {e}");
        }
        let e = Config::parse(&GOOD.replace(
            "fall = 2",
            &format!("fall = 2\nlock_name = \"{}\"", "l".repeat(65)),
        ))
        .unwrap_err()
        .0;
        assert!(e.contains("lock_name"), "{e}");
        // Quotes and backslashes are fine in a lock name: it is passed as an escaped literal.
        let ok = GOOD.replace("fall = 2", "fall = 2\nlock_name = \"a'b\\\\c\"");
        assert_eq!(Config::parse(&ok).unwrap().lock_name, "a'b\\c");
    }

    #[test]
    fn the_control_token_is_read_bounded_and_never_shown() {
        let dir = tempfile::tempdir().unwrap();
        let good = dir.path().join("token");
        std::fs::write(&good, "tok-0123456789-abcdef\n").unwrap();
        let text = GOOD.replace(
            "fall = 2",
            &format!("fall = 2\ncontrol_token_file = \"{}\"", good.display()),
        );
        let c = Config::parse(&text).unwrap();
        assert!(c
            .control_token
            .as_ref()
            .unwrap()
            .matches(b"tok-0123456789-abcdef"));
        assert!(!format!("{c:?}").contains("tok-0123456789"));
        let short = dir.path().join("short");
        std::fs::write(&short, "tok-123\n").unwrap();
        for (file, why) in [
            (short.to_str().unwrap(), "shorter than 16"),
            ("/dev/zero", "not a regular file"),
        ] {
            let text = GOOD.replace(
                "fall = 2",
                &format!("fall = 2\ncontrol_token_file = \"{file}\""),
            );
            let e = Config::parse(&text).unwrap_err().0;
            assert!(e.contains("control_token_file") && e.contains(why), "{e}");
            assert!(!e.contains("tok-123"), "{e}");
        }
    }

    #[test]
    fn sink_failures_are_counted() {
        // Nothing listens on port 9 of loopback: every delivery fails at once.
        let text = format!(
            "{GOOD}\n[[webhook]]\nurl = \"http://127.0.0.1:9/events\"\ntimeout_ms = 2000\n"
        );
        let config = Config::parse(&text).unwrap();
        let notifier = drfailover_notify::Notifier::new(16, 1, std::time::Instant::now()).unwrap();
        let stats = config.attach_sinks(&notifier).unwrap();
        notifier.publish(drfailover_notify::Event::new(
            drfailover_notify::EventKind::FailoverStarted,
            1,
            0,
            notifier.epoch(),
        ));
        let t = std::time::Instant::now();
        while stats.totals() != vec![("webhook", 1, 0)] {
            assert!(
                t.elapsed() < Duration::from_secs(20),
                "{:?}",
                stats.totals()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        notifier.close(Duration::from_secs(1));
    }

    #[test]
    fn a_full_sink_queue_drops_and_counts_instead_of_blocking() {
        // A hook that takes seconds per event: its worker is busy with the first event while
        // the next 399 arrive; the queue holds 256, the rest are dropped and counted, and
        // publishing never waits for the hook.
        let dir = tempfile::tempdir().unwrap();
        let hook = dir.path().join("slow-hook.sh");
        std::fs::write(&hook, "#!/bin/sh\ncat >/dev/null\nsleep 3\n").unwrap();
        std::fs::set_permissions(&hook, std::os::unix::fs::PermissionsExt::from_mode(0o755))
            .unwrap();
        let text = format!(
            "{GOOD}\n[[hook]]\ncommand = \"{}\"\ntimeout_ms = 10000\n",
            hook.display()
        );
        let config = Config::parse(&text).unwrap();
        let notifier =
            drfailover_notify::Notifier::new(1024, 1, std::time::Instant::now()).unwrap();
        let stats = config.attach_sinks(&notifier).unwrap();
        let published = std::time::Instant::now();
        for generation in 0..400 {
            notifier.publish(drfailover_notify::Event::new(
                drfailover_notify::EventKind::EndpointDown,
                1,
                generation,
                notifier.epoch(),
            ));
        }
        assert!(
            published.elapsed() < Duration::from_secs(2),
            "publishing waited for the hook: {:?}",
            published.elapsed()
        );
        let t = std::time::Instant::now();
        loop {
            let totals = stats.totals();
            let dropped = totals
                .iter()
                .find(|(kind, _, _)| *kind == "hook")
                .map_or(0, |t| t.2);
            if dropped >= 400 - 256 - 1 {
                assert!(dropped <= 400, "{totals:?}");
                break;
            }
            assert!(t.elapsed() < Duration::from_secs(20), "{totals:?}");
            std::thread::sleep(Duration::from_millis(20));
        }
        notifier.close(Duration::from_secs(1));
    }
}
