//! One invocation: read the event, then drive [`crate::policy::next`] — perform each step it
//! names (probe, describe, promote, wait, swap), record what was seen, ask again — and
//! finally publish one SNS message with what was seen and done. Blocking; every step bounded
//! by the invocation's deadline, a slice of which is kept for the SNS message.

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use drfailover_dns::aws::credentials::{load_credentials, Env};
use drfailover_dns::aws::retry::RetryPolicy;
use drfailover_dns::aws::secrets::get_db_secret;
use drfailover_dns::aws::AwsClient;
use drfailover_dns::sns::SnsPublisher;
use drfailover_dns::SnsConfig;
use drfailover_mysql::Secret;
use serde_json::{json, Value};

use crate::config::{Config, ProbeLogin};
use crate::event::{self, AlarmState, Incoming, Trigger};
use crate::policy::{self, DbSeen, Facts, InvocationOutcome, NextAction, SwapResult};
use crate::probe::DbProbe;
use crate::rds::RdsClient;
use crate::record_pair::RecordPair;
use crate::report;
use crate::LambdaError;

/// Attempts per AWS request (throttling, 5xx and network errors), inside the deadline.
const AWS_ATTEMPTS: u32 = 8;
/// The longest one AWS request may take.
const AWS_REQUEST_TIMEOUT: Duration = Duration::from_secs(5);
/// Time kept at the end of the invocation for the SNS message.
const SNS_RESERVE: Duration = Duration::from_millis(1500);

/// The AWS clients and database probes, made once per execution environment and reused
/// across invocations (connections stay open).
#[derive(Debug)]
pub struct Services {
    rds: RdsClient,
    records: RecordPair,
    sns: SnsPublisher,
    primary: DbProbe,
    secondary: DbProbe,
    /// The probe's account (`Debug` shows no password).
    account: (String, Secret),
    /// Where the account comes from, when it is a secret: read again when a login is refused.
    secret: Option<ProbeSecret>,
}

/// The Secrets Manager secret holding the probe's account.
#[derive(Debug)]
struct ProbeSecret {
    client: AwsClient,
    arn: String,
}

impl Services {
    /// Clients for `config`, with the AWS credentials of `env`. With
    /// [`ProbeLogin::Secret`], fetches the probe's account from Secrets Manager (blocks until
    /// `deadline` at most); otherwise no network I/O.
    pub fn new(config: &Config, env: Env<'_>, deadline: Instant) -> Result<Services, LambdaError> {
        let credentials = |service: &str| {
            load_credentials(None, env).map_err(|e| LambdaError::Config(format!("{service}: {e}")))
        };
        let rds = RdsClient::new(
            &config.rds_endpoint,
            config.region.clone(),
            credentials("rds")?,
            AWS_ATTEMPTS,
            AWS_REQUEST_TIMEOUT,
        )
        .map_err(|e| LambdaError::Config(format!("rds: {e}")))?;
        let records = RecordPair::new(config, env, AWS_ATTEMPTS, AWS_REQUEST_TIMEOUT)?;
        let sns = SnsPublisher::with_env(
            &SnsConfig {
                topic_arn: config.sns_topic_arn.clone(),
                region: Some(config.region.clone()),
                profile: None,
                endpoint: Some(config.sns_endpoint.clone()),
                timeout_ms: AWS_REQUEST_TIMEOUT.as_millis() as u64,
                attempts: AWS_ATTEMPTS,
                queue: 1,
            },
            env,
        )
        .map_err(|e| LambdaError::Config(format!("sns: {e}")))?;
        let mut secret_source = None;
        let (user, password) = match &config.probe_login {
            ProbeLogin::Password { user, password } => (user.clone(), password.clone()),
            ProbeLogin::Secret {
                arn,
                region,
                endpoint,
            } => {
                let client = AwsClient::new(
                    endpoint,
                    "secretsmanager",
                    region.clone(),
                    credentials("secretsmanager")?,
                    RetryPolicy {
                        attempts: AWS_ATTEMPTS,
                        per_attempt: AWS_REQUEST_TIMEOUT,
                        base_delay: Duration::from_millis(100),
                        max_delay: Duration::from_secs(1),
                    },
                )
                .map_err(|e| LambdaError::Config(format!("DB_PROBE_SECRET_ARN: {e}")))?;
                let secret =
                    get_db_secret(&client, arn, deadline).map_err(|e| LambdaError::Aws {
                        step: format!("GetSecretValue {arn} (DB_PROBE_SECRET_ARN)"),
                        source: e.into(),
                    })?;
                log::info!(
                    "probe account {} from secret {arn}{}",
                    secret.username,
                    secret
                        .version
                        .as_deref()
                        .map(|v| format!(" (version {v})"))
                        .unwrap_or_default()
                );
                secret_source = Some(ProbeSecret {
                    client,
                    arn: arn.clone(),
                });
                (
                    secret.username.clone(),
                    Secret::new(secret.password.clone()),
                )
            }
        };
        let probe = |node: &crate::config::DbNode| {
            DbProbe::new(&node.endpoint, &user, &password, config.probe_timeout)
        };
        Ok(Services {
            rds,
            primary: probe(&config.primary),
            secondary: probe(&config.secondary),
            records,
            sns,
            account: (user, password),
            secret: secret_source,
        })
    }

    fn node(&mut self, primary: bool) -> &mut DbProbe {
        if primary {
            &mut self.primary
        } else {
            &mut self.secondary
        }
    }

    /// Probe the primary (`primary`) or the secondary. When the server refuses the login and
    /// the account comes from a secret not read again yet in this invocation (`reread`), read
    /// the secret again (a rotation) and, when it changed, probe once more with the new
    /// account. Blocks until `deadline` at most.
    fn probe(
        &mut self,
        config: &Config,
        primary: bool,
        deadline: Instant,
        journal: &mut Journal,
        reread: &mut bool,
    ) -> DbSeen {
        let seen = self.node(primary).check(deadline);
        if !self.node(primary).login_refused() || *reread {
            return seen;
        }
        let Some(secret) = &self.secret else {
            return seen;
        };
        *reread = true;
        let fetched = get_db_secret(&secret.client, &secret.arn, deadline);
        let arn = secret.arn.clone();
        match fetched {
            Ok(new)
                if new.username != self.account.0 || new.password != self.account.1.expose() =>
            {
                journal.note(
                    "read the probe secret again",
                    format!(
                        "login refused; secret {arn} holds a new account for {}{}",
                        new.username,
                        new.version
                            .as_deref()
                            .map(|v| format!(" (version {v})"))
                            .unwrap_or_default()
                    ),
                );
                self.account = (new.username.clone(), Secret::new(new.password.clone()));
                let make = |node: &crate::config::DbNode| {
                    DbProbe::new(
                        &node.endpoint,
                        &new.username,
                        &self.account.1,
                        config.probe_timeout,
                    )
                };
                let (p, s) = (make(&config.primary), make(&config.secondary));
                self.primary = p;
                self.secondary = s;
                self.node(primary).check(deadline)
            }
            Ok(_) => {
                journal.note(
                    "read the probe secret again",
                    format!("login refused; secret {arn} is unchanged"),
                );
                seen
            }
            Err(e) => {
                journal.note(
                    "read the probe secret again",
                    format!("login refused; reading secret {arn} failed: {e}"),
                );
                seen
            }
        }
    }
}

/// Milliseconds since the Unix epoch, for reports.
fn epoch_ms(at: SystemTime) -> u64 {
    at.duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// A running account of one invocation: what was done when, for the SNS message and the
/// function's reply.
struct Journal {
    started: Instant,
    received_epoch_ms: u64,
    steps: Vec<Value>,
    change_accepted_ms: Option<u64>,
}

impl Journal {
    fn note(&mut self, step: &str, seen: String) {
        let at_ms = self.started.elapsed().as_millis() as u64;
        log::info!("{step}: {seen} (+{at_ms} ms)");
        self.steps
            .push(json!({"at_ms": at_ms, "step": step, "seen": seen}));
    }
}

/// Handle one event. `deadline` is the invocation's (Lambda's `context.deadline`). Returns
/// the report the function replies with; on error, the error after publishing it to SNS
/// (best effort). Blocks until done, at most until `deadline`.
pub fn handle(
    payload: &Value,
    config: &Config,
    services: &mut Services,
    deadline: Instant,
) -> Result<Value, LambdaError> {
    let mut journal = Journal {
        started: Instant::now(),
        received_epoch_ms: epoch_ms(SystemTime::now()),
        steps: Vec::new(),
        change_accepted_ms: None,
    };
    let instances = [
        config.primary.instance_id.as_str(),
        config.secondary.instance_id.as_str(),
    ];
    let trigger = match event::parse(payload, instances)? {
        Incoming::Ignored(why) => {
            log::info!("ignored: {why}");
            return Ok(json!({"outcome": "ignored", "reason": why}));
        }
        Incoming::Trigger(Trigger::Alarm {
            state: state @ (AlarmState::Ok | AlarmState::InsufficientData),
            name,
            ..
        }) => {
            let why = format!("alarm {name} is {state:?}: nothing to verify");
            log::info!("ignored: {why}");
            return Ok(json!({"outcome": "ignored", "reason": why}));
        }
        Incoming::Trigger(trigger) => trigger,
    };
    log::info!("{}", trigger.describe());
    let work_deadline = deadline
        .checked_sub(SNS_RESERVE)
        .filter(|d| *d > Instant::now())
        .unwrap_or(deadline);
    let result = run(config, services, &mut journal, work_deadline);
    let report = |outcome: &str, summary: String| {
        json!({
            "outcome": outcome,
            "summary": summary,
            "trigger": trigger.describe(),
            "record": config.record_name,
            "primary": {"instance": config.primary.instance_id, "endpoint": config.primary.endpoint.to_string()},
            "secondary": {"instance": config.secondary.instance_id, "endpoint": config.secondary.endpoint.to_string()},
            "received_epoch_ms": journal.received_epoch_ms,
            "process": std::process::id(),
            "change_accepted_ms": journal.change_accepted_ms,
            "elapsed_ms": journal.started.elapsed().as_millis() as u64,
            "steps": journal.steps,
        })
    };
    let (outcome, summary) = report::summarize(config, &result);
    let error = result.err();
    let body = report(outcome, summary.clone());
    let subject = report::sns_subject(config, outcome);
    let attributes = report::sns_attributes(config, outcome, error.as_ref());
    match services
        .sns
        .publish_message(&subject, &body.to_string(), &attributes, deadline)
    {
        Ok(id) => log::info!("{outcome}: {summary} (SNS message {id})"),
        Err(e) => {
            log::error!("{outcome}: {summary}; SNS publish failed: {e}");
            if error.is_none() {
                return Err(LambdaError::Aws {
                    step: "SNS Publish".into(),
                    source: e,
                });
            }
        }
    }
    match error {
        Some(e) => Err(e),
        None => Ok(body),
    }
}

fn run(
    config: &Config,
    services: &mut Services,
    journal: &mut Journal,
    deadline: Instant,
) -> Result<InvocationOutcome, LambdaError> {
    let mut facts = Facts::default();
    let mut waits = 0u32;
    let mut secret_reread = false;
    let aws = |step: String| move |source| LambdaError::Aws { step, source };
    loop {
        let step = policy::next(
            &facts,
            config.promote_read_replica,
            Instant::now(),
            deadline,
        );
        match step {
            NextAction::ProbePrimary => {
                let seen = services.probe(config, true, deadline, journal, &mut secret_reread);
                journal.note("probe primary", describe(&seen));
                facts.primary_db = Some(seen);
            }
            NextAction::DescribePrimary => {
                let id = &config.primary.instance_id;
                let seen = services
                    .rds
                    .describe(id, deadline)
                    .map_err(aws(format!("DescribeDBInstances {id}")))?;
                journal.note("describe primary", format!("{seen:?}"));
                facts.primary_rds = Some(seen);
            }
            NextAction::ReadRecord => {
                let seen = services.records.read(deadline)?;
                journal.note("read record", format!("{seen:?}"));
                facts.record = Some(seen);
            }
            NextAction::DescribeSecondary => {
                let id = &config.secondary.instance_id;
                let seen = services
                    .rds
                    .describe(id, deadline)
                    .map_err(aws(format!("DescribeDBInstances {id}")))?;
                journal.note("describe secondary", format!("{seen:?}"));
                facts.secondary_rds = Some(seen);
            }
            NextAction::ProbeSecondary => {
                let seen = services.probe(config, false, deadline, journal, &mut secret_reread);
                journal.note("probe secondary", describe(&seen));
                facts.secondary_db = Some(seen);
            }
            NextAction::Promote => {
                let id = &config.secondary.instance_id;
                let reply = services
                    .rds
                    .promote(id, deadline)
                    .map_err(aws(format!("PromoteReadReplica {id}")))?;
                journal.note("promote secondary", format!("{reply:?}"));
                facts.promotion = Some(reply);
                facts.secondary_db = None;
            }
            NextAction::WaitForWritable(pause) => {
                std::thread::sleep(pause.min(deadline.saturating_duration_since(Instant::now())));
                facts.secondary_db = None;
                waits += 1;
                // RDS's view changes slowly and its API is rate limited: ask every 2 s.
                if waits.is_multiple_of(40) {
                    facts.secondary_rds = None;
                }
            }
            NextAction::Swap => {
                let swap = services.records.swap(deadline)?;
                if matches!(swap, SwapResult::Swapped(_)) {
                    journal.change_accepted_ms = Some(journal.started.elapsed().as_millis() as u64);
                }
                journal.note("swap record pair", format!("{swap:?}"));
                facts.swap = Some(swap);
            }
            NextAction::Finish(outcome) => return Ok(outcome),
            NextAction::Refuse(refusal) => return Err(LambdaError::Refused(refusal)),
        }
    }
}

fn describe(seen: &DbSeen) -> String {
    match seen {
        DbSeen::Unreachable(why) => format!("unreachable: {why}"),
        other => other.as_str().to_string(),
    }
}
