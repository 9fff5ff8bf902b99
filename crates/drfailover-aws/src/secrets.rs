//! Database credentials kept in AWS Secrets Manager: `GetSecretValue` of a secret whose
//! `SecretString` is the JSON that RDS-managed and rotation-Lambda secrets hold
//! (`username`, `password`, and optionally `host`, `port`, `dbname`, `engine`).
//!
//! Errors name the secret's ARN and the field at fault, never a value.

use std::time::Instant;

use serde::Deserialize;

use crate::client::AwsClient;
use crate::AwsError;

/// The largest `SecretString` accepted (Secrets Manager's own limit is 64 KiB).
pub const SECRET_LIMIT: usize = 64 * 1024;

/// The region in a secret ARN (`arn:PARTITION:secretsmanager:REGION:ACCOUNT:secret:NAME`), if
/// it has one. Pure.
pub fn arn_region(arn: &str) -> Option<&str> {
    let parts: Vec<&str> = arn.splitn(7, ':').collect();
    (parts.len() == 7
        && parts[0] == "arn"
        && parts[2] == "secretsmanager"
        && parts[5] == "secret"
        && !parts[3].is_empty())
    .then(|| parts[3])
}

/// The Secrets Manager endpoint for `region`: `AWS_ENDPOINT_URL_SECRETS_MANAGER`, else
/// `AWS_ENDPOINT_URL` (the SDKs' overrides), else `https://secretsmanager.REGION.amazonaws.com`.
pub fn default_endpoint(region: &str, env: crate::credentials::Env<'_>) -> String {
    env("AWS_ENDPOINT_URL_SECRETS_MANAGER")
        .or_else(|| env("AWS_ENDPOINT_URL"))
        .unwrap_or_else(|| format!("https://secretsmanager.{region}.amazonaws.com"))
}

/// A database secret. `Debug` never shows the password.
#[derive(Clone, PartialEq, Eq)]
pub struct DbSecret {
    /// `username`.
    pub username: String,
    /// `password`.
    pub password: String,
    /// `host`, when the secret names one (RDS-managed secrets do).
    pub host: Option<String>,
    /// `port`, when the secret names one.
    pub port: Option<u16>,
    /// The version fetched (`VersionId`), for messages.
    pub version: Option<String>,
}

impl std::fmt::Debug for DbSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DbSecret")
            .field("username", &self.username)
            .field("password", &"***")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("version", &self.version)
            .finish()
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct GetSecretValueReply {
    #[serde(default)]
    secret_string: Option<String>,
    #[serde(default)]
    version_id: Option<String>,
}

#[derive(Deserialize)]
struct SecretFields {
    #[serde(default)]
    username: Option<String>,
    #[serde(default)]
    password: Option<String>,
    #[serde(default)]
    host: Option<String>,
    #[serde(default)]
    port: Option<serde_json::Value>,
}

/// Read a `GetSecretValue` reply. Pure. Errors name `arn` and the field, never a value.
pub fn parse_secret(arn: &str, reply: &str) -> Result<DbSecret, AwsError> {
    let bad = |why: String| AwsError::Config(format!("secret {arn}: {why}"));
    let reply: GetSecretValueReply = serde_json::from_str(reply)
        .map_err(|_| bad("the GetSecretValue reply is not the expected JSON".into()))?;
    let text = reply.secret_string.ok_or_else(|| {
        bad("it has no SecretString (a binary secret cannot hold database credentials)".into())
    })?;
    if text.len() > SECRET_LIMIT {
        return Err(bad(format!(
            "its SecretString is larger than {SECRET_LIMIT} bytes"
        )));
    }
    // serde_json's messages quote no input, but name only the position to be sure.
    let fields: SecretFields = serde_json::from_str(&text).map_err(|e| {
        bad(format!(
            "its SecretString is not a JSON object with string fields (line {} column {})",
            e.line(),
            e.column()
        ))
    })?;
    let username = fields
        .username
        .filter(|u| !u.is_empty())
        .ok_or_else(|| bad("its SecretString has no `username`".into()))?;
    let password = fields
        .password
        .ok_or_else(|| bad("its SecretString has no `password`".into()))?;
    if username.contains('\0') || password.contains('\0') {
        return Err(bad("`username` or `password` contains a NUL byte".into()));
    }
    let port = match fields.port {
        None | Some(serde_json::Value::Null) => None,
        Some(serde_json::Value::Number(n)) => Some(n.as_u64()),
        Some(serde_json::Value::String(s)) => Some(s.trim().parse::<u64>().ok()),
        Some(_) => Some(None),
    }
    .map(|p| {
        p.and_then(|p| u16::try_from(p).ok())
            .filter(|p| *p != 0)
            .ok_or_else(|| bad("its `port` is not a port number".into()))
    })
    .transpose()?;
    Ok(DbSecret {
        username,
        password,
        host: fields.host.filter(|h| !h.is_empty()),
        port,
        version: reply.version_id,
    })
}

/// Fetch secret `arn` (its current version) with `client` (a `secretsmanager` client) and
/// read the database credentials. Throttling and 5xx are retried within the client's policy;
/// blocks until `deadline` at most. A missing, deleted or malformed secret is
/// [`AwsError::Config`] naming the ARN.
pub fn get_db_secret(
    client: &AwsClient,
    arn: &str,
    deadline: Instant,
) -> Result<DbSecret, AwsError> {
    let body = serde_json::json!({ "SecretId": arn }).to_string();
    let reply = client.call_with_headers(
        "POST",
        "/",
        &[("x-amz-target", "secretsmanager.GetSecretValue")],
        Some(("application/x-amz-json-1.1", &body)),
        deadline,
    );
    match reply {
        Ok((text, _)) => parse_secret(arn, &text),
        Err(AwsError::Rejected { code, reason, .. })
            if code == "ResourceNotFoundException" || code == "InvalidRequestException" =>
        {
            Err(AwsError::Config(format!(
                "secret {arn}: not found, deleted or scheduled for deletion ({reason})"
            )))
        }
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ARN: &str = "arn:aws:secretsmanager:eu-west-1:123456789012:secret:db-AbCdEf";

    fn reply(secret: &str) -> String {
        serde_json::json!({"ARN": ARN, "SecretString": secret, "VersionId": "v1"}).to_string()
    }

    #[test]
    fn rds_managed_secret() {
        let s = parse_secret(
            ARN,
            &reply(r#"{"engine":"mariadb","username":"app","password":"SECRETPW","host":"db.example","port":3306,"dbname":"shop"}"#),
        )
        .unwrap();
        assert_eq!(
            (s.username.as_str(), s.password.as_str()),
            ("app", "SECRETPW")
        );
        assert_eq!(
            (s.host.as_deref(), s.port),
            (Some("db.example"), Some(3306))
        );
        assert!(!format!("{s:?}").contains("SECRETPW"));
        let s = parse_secret(
            ARN,
            &reply(r#"{"username":"app","password":"p","port":"3307"}"#),
        )
        .unwrap();
        assert_eq!(s.port, Some(3307));
        assert_eq!(arn_region(ARN), Some("eu-west-1"));
        assert_eq!(arn_region("db-secret"), None);
    }

    #[test]
    fn malformed_secrets_name_the_arn_never_the_value() {
        for (secret, why) in [
            (r#"{"password":"SECRETPW"}"#, "no `username`"),
            (r#"{"username":"app"}"#, "no `password`"),
            ("SECRETPW", "not a JSON object"),
            (
                r#"{"username":"app","password":"SECRETPW","port":99999}"#,
                "`port`",
            ),
            (
                r#"{"username":"app","password":["SECRETPW"]}"#,
                "not a JSON object",
            ),
        ] {
            let e = parse_secret(ARN, &reply(secret)).unwrap_err();
            let m = e.to_string();
            assert!(matches!(e, AwsError::Config(_)), "{m}");
            assert!(m.contains(ARN) && m.contains(why), "{m}");
            assert!(!m.contains("SECRETPW"), "{m}");
        }
        let m = parse_secret(ARN, r#"{"SecretBinary":"AAAA"}"#)
            .unwrap_err()
            .to_string();
        assert!(m.contains("SecretString"), "{m}");
    }
}
