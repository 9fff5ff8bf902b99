//! What every credential source yields ([`AwsIdentity`]: keys and where they came from) and
//! the environment the sources read ([`Env`], injectable for tests). Shared by the static
//! sources ([`crate::credentials`]) and the metadata endpoints ([`crate::metadata`]).

use aws_credential_types::Credentials;

/// Keys found, and where they came from, for messages (`environment`, `profile prod in
/// /root/.aws/credentials`).
#[derive(Clone, Debug)]
pub struct AwsIdentity {
    /// The keys (secret redacted in `Debug`).
    pub credentials: Credentials,
    /// Where they came from.
    pub source: String,
}

/// An environment lookup, injectable for tests.
pub type Env<'a> = &'a dyn Fn(&str) -> Option<String>;

/// The process environment (empty values count as unset).
pub fn process_env(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.is_empty())
}
