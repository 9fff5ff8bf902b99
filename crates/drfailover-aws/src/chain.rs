//! The one credential chain of the workspace, cached: keys are looked up once
//! ([`crate::credentials::load_credentials_within`]) and kept until five minutes before they
//! expire (keys from the environment or files never expire and are kept for good). Every AWS
//! call of the workspace (Route 53, SNS, Secrets Manager, RDS IAM tokens) signs with one.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use crate::credentials::{load_credentials_within, process_env, AwsIdentity, Env};
use crate::AwsError;

/// Keys expiring within this margin are looked up again before use (the SDKs refresh 5 to 15
/// minutes ahead; metadata endpoints hand out new keys well before the old ones expire).
pub const REFRESH_MARGIN: Duration = Duration::from_secs(300);

/// The environment variables the chain reads.
const VARIABLES: &[&str] = &[
    "HOME",
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "AWS_PROFILE",
    "AWS_SHARED_CREDENTIALS_FILE",
    "AWS_CONFIG_FILE",
    "AWS_REGION",
    "AWS_DEFAULT_REGION",
    "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
    "AWS_CONTAINER_CREDENTIALS_FULL_URI",
    "AWS_CONTAINER_AUTHORIZATION_TOKEN",
    "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE",
    "AWS_EC2_METADATA_DISABLED",
    "AWS_EC2_METADATA_SERVICE_ENDPOINT",
    "AWS_METADATA_SERVICE_TIMEOUT",
    "AWS_METADATA_SERVICE_NUM_ATTEMPTS",
];

/// Where keys come from.
enum Origin {
    /// Fixed keys, given by the caller.
    Fixed,
    /// The chain, over a copy of the environment taken at construction.
    Lookup {
        profile: Option<String>,
        env: BTreeMap<String, String>,
    },
}

/// A cached credential chain. `Send + Sync`: share one `Arc` between clients. `Debug` shows
/// the source and access key id, never the secret or token.
pub struct CredentialChain {
    origin: Origin,
    cached: Mutex<Option<AwsIdentity>>,
}

impl std::fmt::Debug for CredentialChain {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.describe())
    }
}

impl From<AwsIdentity> for Arc<CredentialChain> {
    fn from(identity: AwsIdentity) -> Self {
        Arc::new(CredentialChain::fixed(identity))
    }
}

impl CredentialChain {
    /// Always these keys (never looked up again). No I/O.
    pub fn fixed(identity: AwsIdentity) -> CredentialChain {
        CredentialChain {
            origin: Origin::Fixed,
            cached: Mutex::new(Some(identity)),
        }
    }

    /// The chain for `profile` (else `AWS_PROFILE`, else `default`) over the variables `env`
    /// holds now (copied: later changes are not seen). No I/O until [`CredentialChain::get`].
    pub fn new(profile: Option<&str>, env: Env<'_>) -> CredentialChain {
        let env = VARIABLES
            .iter()
            .filter_map(|name| env(name).map(|v| (name.to_string(), v)))
            .collect();
        CredentialChain {
            origin: Origin::Lookup {
                profile: profile.map(str::to_string),
                env,
            },
            cached: Mutex::new(None),
        }
    }

    /// The chain over the process environment.
    pub fn from_process(profile: Option<&str>) -> CredentialChain {
        CredentialChain::new(profile, &process_env)
    }

    /// Current keys: the cached ones unless they expire within [`REFRESH_MARGIN`], else a new
    /// lookup (bounded by `deadline`; concurrent callers wait for the one lookup). When a
    /// lookup fails but the cached keys have not expired yet, those are returned. Blocks only
    /// when a lookup is needed.
    pub fn get(&self, deadline: Instant) -> Result<AwsIdentity, AwsError> {
        let mut cached = self.cached.lock().unwrap_or_else(|e| e.into_inner());
        let now = SystemTime::now();
        if let Some(identity) = cached.as_ref() {
            let fresh = identity
                .credentials
                .expiry()
                .is_none_or(|at| at > now + REFRESH_MARGIN);
            if fresh || matches!(self.origin, Origin::Fixed) {
                return Ok(identity.clone());
            }
        }
        let Origin::Lookup { profile, env } = &self.origin else {
            unreachable!("fixed keys are always cached")
        };
        let lookup = |name: &str| env.get(name).cloned();
        match load_credentials_within(profile.as_deref(), &lookup, deadline) {
            Ok(identity) => {
                *cached = Some(identity.clone());
                Ok(identity)
            }
            Err(e) => match cached.as_ref() {
                Some(old) if old.credentials.expiry().is_some_and(|at| at > now) => {
                    log::warn!(
                        target: "drfailover",
                        "AWS credentials: renewal failed, using the current keys until they expire: {e}"
                    );
                    Ok(old.clone())
                }
                _ => Err(e),
            },
        }
    }

    /// The cached keys if they have not expired, without waiting: `None` when there are none,
    /// they expired, or a lookup holds the cache right now. Never blocks.
    pub fn cached(&self) -> Option<AwsIdentity> {
        let cached = self.cached.try_lock().ok()?;
        let identity = cached.as_ref()?;
        let now = SystemTime::now();
        identity
            .credentials
            .expiry()
            .is_none_or(|at| at > now)
            .then(|| identity.clone())
    }

    /// Drop the cached keys (they were rejected): the next [`CredentialChain::get`] looks them
    /// up again. Fixed keys are kept. Never blocks on I/O.
    pub fn forget(&self) {
        if matches!(self.origin, Origin::Lookup { .. }) {
            *self.cached.lock().unwrap_or_else(|e| e.into_inner()) = None;
        }
    }

    /// Where the cached keys came from and their access key id (never the secret), or
    /// `not looked up yet`.
    pub fn describe(&self) -> String {
        match self
            .cached
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .as_ref()
        {
            Some(id) => format!("{} ({})", id.source, masked(id.credentials.access_key_id())),
            None => "AWS credential chain (not looked up yet)".into(),
        }
    }
}

/// An access key id with all but its last four characters hidden (`…WXYZ`, as
/// `aws configure list` shows it): enough to tell keys apart, never the whole id.
fn masked(id: &str) -> String {
    let tail: String = id
        .chars()
        .skip(id.chars().count().saturating_sub(4))
        .collect();
    format!("…{tail}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_credential_types::Credentials;

    #[test]
    fn fixed_keys_are_kept_and_never_shown() {
        let chain = CredentialChain::fixed(AwsIdentity {
            credentials: Credentials::new("AKIDX", "SECRETKEY", None, None, "t"),
            source: "test".into(),
        });
        chain.forget();
        let id = chain.get(Instant::now()).unwrap();
        assert_eq!(id.credentials.access_key_id(), "AKIDX");
        assert_eq!(chain.cached().unwrap().credentials.access_key_id(), "AKIDX");
        assert!(!format!("{chain:?}").contains("SECRETKEY"));
    }

    #[test]
    fn environment_is_copied_at_construction() {
        let env = |name: &str| match name {
            "AWS_ACCESS_KEY_ID" => Some("AKIDENV".to_string()),
            "AWS_SECRET_ACCESS_KEY" => Some("SECRETKEY".to_string()),
            _ => None,
        };
        let chain = CredentialChain::new(None, &env);
        assert!(chain.describe().contains("not looked up"));
        let id = chain.get(Instant::now() + Duration::from_secs(1)).unwrap();
        assert_eq!(id.credentials.access_key_id(), "AKIDENV");
        assert!(chain.describe().contains("…DENV") && !chain.describe().contains("AKIDENV"));
    }
}
