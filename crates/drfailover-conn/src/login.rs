//! Credentials that can change while the client runs: a password kept in AWS Secrets Manager
//! (`secret_arn`) or RDS IAM tokens (`auth=rds_iam`), with feature `aws`. Without either, the
//! configured user and password are used as they are.
//!
//! Every login (pool connection or monitor probe) takes its credentials from here. A login the
//! server refuses (1045) is retried once after [`Login::renew`]: the secret is fetched again
//! (one fetch at a time; the others wait for it) or the endpoint's token is made again. A
//! refused monitor probe only marks the credentials stale ([`Login::mark_stale`], never
//! blocks); the next calling thread that logs in or waits for a writer fetches. So fetches
//! run on calling threads that are logging in anyway, never on the monitor and never on a
//! statement that already has a connection; each is bounded ([`FETCH_BUDGET`]).

#[cfg(feature = "aws")]
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Instant;
#[cfg(feature = "aws")]
use std::time::{Duration, SystemTime};

use drfailover_mysql::ConnectOptions;

use crate::{AuthMethod, Config, Endpoint, Error};

/// How long one secret fetch may take (with its retries).
#[cfg(feature = "aws")]
pub(crate) const FETCH_BUDGET: Duration = Duration::from_secs(5);

/// Which credentials a login used, to tell whether a refusal is news (see [`Login::renew`]).
pub(crate) type Ticket = u64;

/// The client's source of credentials. `Send + Sync`; shared by the callers and the monitor.
pub(crate) struct Login {
    #[cfg(feature = "aws")]
    aws: Option<aws::AwsLogin>,
}

impl Config {
    /// Fetch the credentials of `secret_arn` now (if set) into `user` and `password` (and,
    /// with no endpoint yet, the secret's `host`/`port`), for tools that probe without a
    /// [`crate::Client`] (a client fetches by itself, and again on a refused login). Blocks on
    /// Secrets Manager up to 5 s. Errors name the key and the ARN, never a value.
    pub fn resolve_secret(&mut self) -> Result<(), Error> {
        Login::new(self).map(drop)
    }

    /// [`Config::connect_options`] with the login as it is now: with `auth=rds_iam`, a token
    /// for `endpoint` made now (valid 15 minutes) and the clear-text plugin allowed. For
    /// one-off logins (the CLI's probes); a [`crate::Client`] renews tokens by itself. Blocks
    /// only when AWS keys must be looked up (metadata endpoints, up to 5 s).
    pub fn login_options(
        &self,
        endpoint: &Endpoint,
    ) -> Result<drfailover_mysql::ConnectOptions, Error> {
        let mut options = self.connect_options(endpoint);
        if self.auth == AuthMethod::RdsIam {
            let mut config = self.clone();
            let login = Login::new(&mut config)?;
            login
                .apply(endpoint, &mut options, true)
                .map_err(|e| Error::Config(format!("option `auth`: {}", e.message())))?;
        }
        Ok(options)
    }
}

impl Login {
    /// The login of `config`. With `secret_arn`, fetches the secret now (blocks up to
    /// [`FETCH_BUDGET`]) and, when the configuration has no endpoint, takes the secret's
    /// `host`/`port`. Errors are [`Error::Config`] naming the key and the ARN, never a value.
    pub fn new(config: &mut Config) -> Result<Login, Error> {
        #[cfg(feature = "aws")]
        {
            Ok(Login {
                aws: aws::AwsLogin::new(config)?,
            })
        }
        #[cfg(not(feature = "aws"))]
        {
            let _ = config;
            Ok(Login {})
        }
    }

    /// Whether credentials come from AWS (and so can change).
    pub fn is_dynamic(&self) -> bool {
        #[cfg(feature = "aws")]
        {
            self.aws.is_some()
        }
        #[cfg(not(feature = "aws"))]
        {
            false
        }
    }

    /// Put the current credentials for `endpoint` into `opts`; returns the ticket to hand to
    /// [`Login::renew`] if the server refuses them. `may_block`: a token may need AWS keys
    /// looked up first (the metadata endpoints, bounded); the monitor passes `false` and then
    /// keeps the options as they are when that would block. Cheap otherwise (a lock and
    /// string copies; a token costs a few microseconds of hashing every 10 minutes).
    pub fn apply(
        &self,
        endpoint: &Endpoint,
        opts: &mut ConnectOptions,
        may_block: bool,
    ) -> Result<Ticket, drfailover_mysql::Error> {
        #[cfg(feature = "aws")]
        if let Some(aws) = &self.aws {
            return aws.apply(endpoint, opts, may_block);
        }
        let _ = (endpoint, opts, may_block);
        Ok(0)
    }

    /// After the server refused a login made with `ticket`: true when newer credentials are
    /// now available (someone else already fetched, or this call fetched different ones, or
    /// made a new token), so the login is worth one more try. Blocks for one fetch at most
    /// (until `deadline`, at most [`FETCH_BUDGET`]); a failed fetch is logged (never a value)
    /// and the current credentials stay.
    pub fn renew(&self, ticket: Ticket, endpoint: &Endpoint, deadline: Instant) -> bool {
        #[cfg(feature = "aws")]
        if let Some(aws) = &self.aws {
            return aws.renew(ticket, endpoint, deadline);
        }
        let _ = (ticket, endpoint, deadline);
        false
    }

    /// A monitor probe was refused with `ticket`'s credentials: the next caller renews them.
    /// Never blocks.
    pub fn mark_stale(&self, ticket: Ticket) {
        #[cfg(feature = "aws")]
        if let Some(aws) = &self.aws {
            aws.mark_stale(ticket);
        }
        let _ = ticket;
    }

    /// When credentials were marked stale: renew them now (blocks up to `deadline`, at most
    /// one fetch). Called by threads waiting for a writer.
    pub fn renew_if_stale(&self, deadline: Instant) {
        #[cfg(feature = "aws")]
        if let Some(aws) = &self.aws {
            aws.renew_if_stale(deadline);
        }
        let _ = deadline;
    }
}

#[cfg(feature = "aws")]
mod aws {
    use std::collections::HashMap;
    use std::sync::{Arc, Mutex};

    use drfailover_aws::credentials::process_env;
    use drfailover_aws::rds_iam::{auth_token, TOKEN_VALIDITY};
    use drfailover_aws::retry::RetryPolicy;
    use drfailover_aws::secrets::{arn_region, default_endpoint, get_db_secret};
    use drfailover_aws::{AwsClient, AwsError, CredentialChain};
    use drfailover_mysql::Secret;

    use super::*;
    use crate::config::AuthMethod;

    /// A token is made again once it is this old (valid for 15 minutes).
    const TOKEN_RENEW_AFTER: Duration = Duration::from_secs(600);

    /// After a fetch that brought nothing new (or failed), the next one waits this long: a
    /// refusal that stands, or an unreachable Secrets Manager, costs one request a second at
    /// most, however many threads log in or wait.
    const FETCH_INTERVAL: Duration = Duration::from_secs(1);

    /// The process-wide credential chain (read from the process environment once).
    fn chain() -> Arc<CredentialChain> {
        static CHAIN: std::sync::OnceLock<Arc<CredentialChain>> = std::sync::OnceLock::new();
        CHAIN
            .get_or_init(|| Arc::new(CredentialChain::from_process(None)))
            .clone()
    }

    fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
        m.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A login refused for want of a usable secret or token: the server's 1045 in shape, with
    /// our reason.
    fn login_error(message: String) -> drfailover_mysql::Error {
        drfailover_mysql::Error::from_server(1045, "28000", &message)
    }

    pub(super) enum AwsLogin {
        Secret(SecretLogin),
        RdsIam(IamLogin),
    }

    impl AwsLogin {
        pub fn new(config: &mut Config) -> Result<Option<AwsLogin>, Error> {
            if let Some(arn) = config.secret_arn.clone() {
                return SecretLogin::new(config, arn).map(|s| Some(AwsLogin::Secret(s)));
            }
            if config.auth == AuthMethod::RdsIam {
                return IamLogin::new(config).map(|i| Some(AwsLogin::RdsIam(i)));
            }
            Ok(None)
        }

        pub fn apply(
            &self,
            endpoint: &Endpoint,
            opts: &mut ConnectOptions,
            may_block: bool,
        ) -> Result<Ticket, drfailover_mysql::Error> {
            match self {
                AwsLogin::Secret(s) => Ok(s.apply(opts)),
                AwsLogin::RdsIam(i) => i.apply(endpoint, opts, may_block),
            }
        }

        pub fn renew(&self, ticket: Ticket, endpoint: &Endpoint, deadline: Instant) -> bool {
            match self {
                AwsLogin::Secret(s) => s.renew(ticket, deadline),
                AwsLogin::RdsIam(i) => i.renew(endpoint),
            }
        }

        pub fn mark_stale(&self, ticket: Ticket) {
            if let AwsLogin::Secret(s) = self {
                if s.generation.load(Ordering::Acquire) == ticket {
                    s.stale.store(true, Ordering::Release);
                }
            }
        }

        pub fn renew_if_stale(&self, deadline: Instant) {
            if let AwsLogin::Secret(s) = self {
                if s.stale.load(Ordering::Acquire) {
                    let ticket = s.generation.load(Ordering::Acquire);
                    s.renew(ticket, deadline);
                }
            }
        }
    }

    /// The user and password of the current secret version.
    struct Current {
        user: String,
        password: Secret,
    }

    pub(super) struct SecretLogin {
        arn: String,
        client: AwsClient,
        current: Mutex<Current>,
        /// Bumped on every change of `current`.
        generation: AtomicU64,
        /// Held while a fetch runs (one fetch at a time); when the last fetch that brought
        /// nothing new ended.
        fetching: Mutex<Option<Instant>>,
        /// A monitor probe was refused with the current credentials.
        stale: AtomicBool,
    }

    impl SecretLogin {
        fn new(config: &mut Config, arn: String) -> Result<SecretLogin, Error> {
            let fail = |why: String| Error::Config(format!("option `secret_arn`: {why}"));
            let env = process_env;
            let region = config
                .secret_region
                .clone()
                .or_else(|| arn_region(&arn).map(str::to_string))
                .or_else(|| env("AWS_REGION"))
                .or_else(|| env("AWS_DEFAULT_REGION"))
                .ok_or_else(|| {
                    fail(format!(
                        "secret {arn}: no region (not an ARN with one, and no secret_region or \
                         AWS_REGION)"
                    ))
                })?;
            let endpoint = config
                .secret_endpoint
                .clone()
                .unwrap_or_else(|| default_endpoint(&region, &env));
            let client = AwsClient::new(
                &endpoint,
                "secretsmanager",
                region,
                chain(),
                RetryPolicy {
                    attempts: 5,
                    per_attempt: Duration::from_secs(2),
                    base_delay: Duration::from_millis(100),
                    max_delay: Duration::from_secs(1),
                },
            )
            .map_err(|e| fail(format!("secret {arn}: {e}")))?;
            let secret = get_db_secret(&client, &arn, Instant::now() + FETCH_BUDGET)
                .map_err(|e| fail(describe(&arn, &e)))?;
            if config.endpoints.is_empty() {
                if let Some(host) = &secret.host {
                    config.add_endpoint(host.clone(), secret.port.unwrap_or(3306));
                }
            }
            config.user = secret.username.clone();
            config.password = Secret::new(secret.password.clone());
            Ok(SecretLogin {
                arn,
                client,
                current: Mutex::new(Current {
                    user: secret.username,
                    password: Secret::new(secret.password),
                }),
                generation: AtomicU64::new(1),
                fetching: Mutex::new(None),
                stale: AtomicBool::new(false),
            })
        }

        fn apply(&self, opts: &mut ConnectOptions) -> Ticket {
            let current = lock(&self.current);
            opts.user = current.user.clone();
            opts.password = current.password.clone();
            self.generation.load(Ordering::Acquire)
        }

        fn renew(&self, ticket: Ticket, deadline: Instant) -> bool {
            let mut last_futile = lock(&self.fetching);
            if self.generation.load(Ordering::Acquire) != ticket {
                return true; // fetched by someone else while this login ran or waited
            }
            if last_futile.is_some_and(|at| at.elapsed() < FETCH_INTERVAL) {
                return false;
            }
            let deadline = deadline.min(Instant::now() + FETCH_BUDGET);
            match get_db_secret(&self.client, &self.arn, deadline) {
                Ok(secret) => {
                    self.stale.store(false, Ordering::Release);
                    let mut current = lock(&self.current);
                    if current.user == secret.username
                        && current.password.expose() == secret.password
                    {
                        // The secret did not change: the refusal stands.
                        *last_futile = Some(Instant::now());
                        return false;
                    }
                    *last_futile = None;
                    *current = Current {
                        user: secret.username,
                        password: Secret::new(secret.password),
                    };
                    self.generation.fetch_add(1, Ordering::AcqRel);
                    log::info!(target: "drfailover", "secret {}: new credentials fetched{}", self.arn,
                        secret.version.map(|v| format!(" (version {v})")).unwrap_or_default());
                    true
                }
                Err(e) => {
                    *last_futile = Some(Instant::now());
                    log::warn!(
                        target: "drfailover",
                        "option `secret_arn`: {}; the current credentials stay",
                        describe(&self.arn, &e)
                    );
                    false
                }
            }
        }
    }

    /// A fetch failure, naming the secret (errors never carry a value).
    fn describe(arn: &str, e: &AwsError) -> String {
        match e {
            AwsError::Config(m) if m.contains(arn) => m.clone(),
            _ => format!("secret {arn}: {e}"),
        }
    }

    pub(super) struct IamLogin {
        region: String,
        user: String,
        chain: Arc<CredentialChain>,
        /// Per `host:port`: the token and when it was made.
        tokens: Mutex<HashMap<(String, u16), (Secret, Instant)>>,
        generation: AtomicU64,
    }

    impl IamLogin {
        fn new(config: &Config) -> Result<IamLogin, Error> {
            let region = match &config.region {
                Some(r) => r.clone(),
                None => drfailover_aws::credentials::load_region(None, None, &process_env)
                    .map_err(|e| Error::Config(format!("option `region`: {e}")))?
                    .ok_or_else(|| {
                        Error::Config(
                            "option `region`: auth=rds_iam needs the database's AWS region \
                             (region=…, or AWS_REGION)"
                                .into(),
                        )
                    })?,
            };
            let chain = chain();
            chain
                .get(Instant::now() + FETCH_BUDGET)
                .map_err(|e| Error::Config(format!("option `auth`: rds_iam: {e}")))?;
            Ok(IamLogin {
                region,
                user: config.user.clone(),
                chain,
                tokens: Mutex::new(HashMap::new()),
                generation: AtomicU64::new(1),
            })
        }

        fn apply(
            &self,
            endpoint: &Endpoint,
            opts: &mut ConnectOptions,
            may_block: bool,
        ) -> Result<Ticket, drfailover_mysql::Error> {
            opts.cleartext_plugin = true;
            opts.user = self.user.clone();
            let key = (endpoint.host.clone(), endpoint.port);
            let ticket = self.generation.load(Ordering::Acquire);
            if let Some((token, made)) = lock(&self.tokens).get(&key) {
                if made.elapsed() < TOKEN_RENEW_AFTER {
                    opts.password = token.clone();
                    return Ok(ticket);
                }
            }
            let identity = if may_block {
                self.chain
                    .get(Instant::now() + FETCH_BUDGET)
                    .map_err(|e| login_error(format!("RDS IAM token for {endpoint}: {e}")))?
            } else {
                // The monitor: only keys at hand (never waits for a lookup another thread runs).
                match self.chain.cached() {
                    Some(id) => id,
                    None => return Ok(ticket),
                }
            };
            let token = auth_token(
                &identity,
                &self.region,
                &endpoint.host,
                endpoint.port,
                &self.user,
                SystemTime::now(),
            )
            .map_err(|e| login_error(format!("RDS IAM token for {endpoint}: {e}")))?;
            let token = Secret::new(token);
            debug_assert!(TOKEN_RENEW_AFTER < TOKEN_VALIDITY);
            lock(&self.tokens).insert(key, (token.clone(), Instant::now()));
            opts.password = token;
            Ok(ticket)
        }

        /// A refused token: make a new one for the endpoint at its next login (and look the
        /// AWS keys up again: they may have been rotated).
        fn renew(&self, endpoint: &Endpoint) -> bool {
            lock(&self.tokens).remove(&(endpoint.host.clone(), endpoint.port));
            self.chain.forget();
            self.generation.fetch_add(1, Ordering::AcqRel);
            true
        }
    }
}
