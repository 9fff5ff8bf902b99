//! RDS IAM database authentication tokens: a SigV4 query-string presign of
//! `https://HOST:PORT/?Action=connect&DBUser=USER` for service `rds-db`, valid 15 minutes,
//! without the scheme — what botocore's `generate_db_auth_token` returns. Generated locally
//! (no request to AWS); the token is the password of a login with the clear-text plugin, over
//! TLS.

use std::time::{Duration, SystemTime};

use aws_sigv4::http_request::{
    sign, SignableBody, SignableRequest, SignatureLocation, SigningSettings,
};
use aws_sigv4::sign::v4;
use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};

use crate::credentials::AwsIdentity;
use crate::AwsError;

/// How long a token is valid (RDS's fixed 15 minutes).
pub const TOKEN_VALIDITY: Duration = Duration::from_secs(900);

/// SigV4's query encoding: everything but unreserved characters is escaped.
const QUERY: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~');

/// The token for `user` at `host:port` in `region`, signed with `identity` at `time`. Pure
/// (the clock is a parameter); a few microseconds of hashing.
pub fn auth_token(
    identity: &AwsIdentity,
    region: &str,
    host: &str,
    port: u16,
    user: &str,
    time: SystemTime,
) -> Result<String, AwsError> {
    let fail = |e: &dyn std::fmt::Display| AwsError::Config(format!("RDS IAM token: {e}"));
    if host.is_empty() || user.is_empty() || region.is_empty() {
        return Err(fail(&"host, user and region must not be empty"));
    }
    let aws_identity = identity.credentials.clone().into();
    let mut settings = SigningSettings::default();
    settings.signature_location = SignatureLocation::QueryParams;
    settings.expires_in = Some(TOKEN_VALIDITY);
    let params = v4::SigningParams::builder()
        .identity(&aws_identity)
        .region(region)
        .name("rds-db")
        .time(time)
        .settings(settings)
        .build()
        .map_err(|e| fail(&e))?
        .into();
    let base = format!(
        "{host}:{port}/?Action=connect&DBUser={}",
        utf8_percent_encode(user, QUERY)
    );
    let url = format!("https://{base}");
    let signable = SignableRequest::new("GET", &url, std::iter::empty(), SignableBody::Bytes(b""))
        .map_err(|e| fail(&e))?;
    let (instructions, _) = sign(signable, &params).map_err(|e| fail(&e))?.into_parts();
    let mut token = base;
    // botocore's order: the signature last (aws-sigv4 puts the session token after it).
    let mut params: Vec<(&str, &str)> = instructions
        .params()
        .iter()
        .map(|(n, v)| (*n, v.as_ref()))
        .collect();
    params.sort_by_key(|(name, _)| *name == "X-Amz-Signature");
    for (name, value) in params {
        token.push('&');
        token.push_str(&utf8_percent_encode(name, QUERY).to_string());
        token.push('=');
        token.push_str(&utf8_percent_encode(value, QUERY).to_string());
    }
    Ok(token)
}
