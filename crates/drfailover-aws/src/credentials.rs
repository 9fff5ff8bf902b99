//! AWS credentials and region, found the way the AWS CLI and SDKs find them:
//!
//! 1. `AWS_ACCESS_KEY_ID` + `AWS_SECRET_ACCESS_KEY` (+ `AWS_SESSION_TOKEN`) in the environment;
//! 2. else the profile (`profile` in the configuration, else `AWS_PROFILE`, else `default`) of
//!    the shared credentials file (`AWS_SHARED_CREDENTIALS_FILE`, default `~/.aws/credentials`,
//!    section `[NAME]`), then of the config file (`AWS_CONFIG_FILE`, default `~/.aws/config`,
//!    section `[profile NAME]` or `[default]`);
//! 3. else the ECS/EKS container endpoint, when `AWS_CONTAINER_CREDENTIALS_RELATIVE_URI` or
//!    `AWS_CONTAINER_CREDENTIALS_FULL_URI` is set ([`crate::metadata`]);
//! 4. else the EC2 instance metadata service (IMDSv2), unless `AWS_EC2_METADATA_DISABLED=true`.
//!
//! Keys from 3 and 4 expire: [`crate::CredentialChain`] caches them and looks them up again
//! before they do.
//!
//! Region: the configuration's `region`, else `AWS_REGION`, else `AWS_DEFAULT_REGION`, else the
//! profile's `region` in the config file. SSO, `credential_process` and role profiles are not
//! supported: the error says so.
//!
//! The secret key is held in `aws-credential-types`' `Credentials` (its `Debug` redacts it);
//! no error message quotes a file's content.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Instant;

use aws_credential_types::Credentials;

pub use crate::identity::{process_env, AwsIdentity, Env};
use crate::AwsError;

/// An INI file: section name → key → value.
pub type Ini = BTreeMap<String, BTreeMap<String, String>>;

fn home_file(env: Env<'_>, var: &str, default: &str) -> Option<PathBuf> {
    env(var)
        .map(PathBuf::from)
        .or_else(|| env("HOME").map(|h| Path::new(&h).join(default)))
}

/// Sections of an INI file: section name → key → value. Errors name the file and line,
/// never the line's text (it may hold a secret).
pub fn parse_ini(
    text: &str,
    file: &Path,
) -> Result<BTreeMap<String, BTreeMap<String, String>>, String> {
    let mut sections: Ini = BTreeMap::new();
    let mut current: Option<String> = None;
    for (n, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') || line.starts_with(';') {
            continue;
        }
        if let Some(rest) = line.strip_prefix('[') {
            let name = rest.strip_suffix(']').ok_or_else(|| {
                format!("{} line {}: unterminated [section]", file.display(), n + 1)
            })?;
            let name = name.split_whitespace().collect::<Vec<_>>().join(" ");
            sections.entry(name.clone()).or_default();
            current = Some(name);
            continue;
        }
        let (key, value) = line.split_once('=').ok_or_else(|| {
            format!(
                "{} line {}: expected `key = value` or `[section]`",
                file.display(),
                n + 1
            )
        })?;
        let Some(section) = &current else {
            return Err(format!(
                "{} line {}: `key = value` before any [section]",
                file.display(),
                n + 1
            ));
        };
        let key = key.trim().to_ascii_lowercase();
        if key.is_empty() {
            return Err(format!("{} line {}: empty key", file.display(), n + 1));
        }
        sections
            .entry(section.clone())
            .or_default()
            .insert(key, value.trim().to_string());
    }
    Ok(sections)
}

fn read_ini(path: &Path) -> Result<Option<Ini>, AwsError> {
    // At most 1 MiB, regular files only: a FIFO or device is refused without reading it.
    match drfailover_files::read_text(path, drfailover_files::CONFIG_FILE_LIMIT) {
        Ok(text) => parse_ini(&text, path)
            .map(Some)
            .map_err(AwsError::Credentials),
        Err(e) if e.is_not_found() => Ok(None),
        Err(e) => Err(AwsError::Credentials(format!("{}: {e}", path.display()))),
    }
}

/// The profile to use: `configured`, else `AWS_PROFILE`, else `default`.
pub fn profile_name(configured: Option<&str>, env: Env<'_>) -> String {
    configured
        .map(str::to_string)
        .or_else(|| env("AWS_PROFILE"))
        .unwrap_or_else(|| "default".into())
}

fn config_section<'a>(config: &'a Ini, profile: &str) -> Option<&'a BTreeMap<String, String>> {
    config.get(&format!("profile {profile}")).or_else(|| {
        (profile == "default")
            .then(|| config.get("default"))
            .flatten()
    })
}

fn from_section(
    section: &BTreeMap<String, String>,
    source: String,
) -> Result<Option<AwsIdentity>, AwsError> {
    let key = section.get("aws_access_key_id");
    let secret = section.get("aws_secret_access_key");
    match (key, secret) {
        (Some(key), Some(secret)) if !key.is_empty() && !secret.is_empty() => {
            Ok(Some(AwsIdentity {
                credentials: Credentials::new(
                    key,
                    secret,
                    section
                        .get("aws_session_token")
                        .filter(|t| !t.is_empty())
                        .cloned(),
                    None,
                    "drfailover",
                ),
                source,
            }))
        }
        (None, None) => Ok(None),
        _ => Err(AwsError::Credentials(format!(
            "{source}: needs both aws_access_key_id and aws_secret_access_key"
        ))),
    }
}

/// Find credentials (see the module doc). Blocks on reading at most two small files and, when
/// neither the environment nor the files have keys, on the metadata endpoints (each request
/// bounded by the SDKs' documented timeout: 1 s for instance metadata, 2 s for containers;
/// an unreachable endpoint costs at most that).
pub fn load_credentials(profile: Option<&str>, env: Env<'_>) -> Result<AwsIdentity, AwsError> {
    load_credentials_within(
        profile,
        env,
        Instant::now() + crate::metadata::LOOKUP_BUDGET,
    )
}

/// [`load_credentials`], with the metadata lookups also cut at `deadline`.
pub fn load_credentials_within(
    profile: Option<&str>,
    env: Env<'_>,
    deadline: Instant,
) -> Result<AwsIdentity, AwsError> {
    match load_static(profile, env)? {
        Found::Keys(identity) => Ok(identity),
        Found::Nothing(looked) => {
            let mut tried = vec![looked];
            match crate::metadata::container_credentials(env, deadline) {
                Ok(Some(identity)) => return Ok(identity),
                Ok(None) => {}
                Err(e) => return Err(e),
            }
            match crate::metadata::instance_credentials(env, deadline) {
                Ok(identity) => return Ok(identity),
                Err(why) => tried.push(why),
            }
            Err(AwsError::Credentials(format!(
                "no AWS credentials: {}",
                tried.join("; ")
            )))
        }
    }
}

/// What the environment and the shared files hold.
enum Found {
    Keys(AwsIdentity),
    /// No keys; what was looked at, for the error message.
    Nothing(String),
}

fn load_static(profile: Option<&str>, env: Env<'_>) -> Result<Found, AwsError> {
    match (env("AWS_ACCESS_KEY_ID"), env("AWS_SECRET_ACCESS_KEY")) {
        (Some(key), Some(secret)) => {
            return Ok(Found::Keys(AwsIdentity {
                credentials: Credentials::new(
                    key,
                    secret,
                    env("AWS_SESSION_TOKEN"),
                    None,
                    "drfailover",
                ),
                source: "environment (AWS_ACCESS_KEY_ID)".into(),
            }))
        }
        (Some(_), None) | (None, Some(_)) if profile.is_none() => {
            return Err(AwsError::Credentials(
                "environment: AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY must be set together"
                    .into(),
            ))
        }
        _ => {}
    }
    let profile = profile_name(profile, env);
    let mut looked = Vec::new();
    if let Some(path) = home_file(env, "AWS_SHARED_CREDENTIALS_FILE", ".aws/credentials") {
        looked.push(path.display().to_string());
        if let Some(ini) = read_ini(&path)? {
            if let Some(section) = ini.get(&profile) {
                let source = format!("profile {profile} in {}", path.display());
                if let Some(identity) = from_section(section, source)? {
                    return Ok(Found::Keys(identity));
                }
            }
        }
    }
    if let Some(path) = home_file(env, "AWS_CONFIG_FILE", ".aws/config") {
        looked.push(path.display().to_string());
        if let Some(ini) = read_ini(&path)? {
            if let Some(section) = config_section(&ini, &profile) {
                let source = format!("profile {profile} in {}", path.display());
                if let Some(identity) = from_section(section, source)? {
                    return Ok(Found::Keys(identity));
                }
                if section
                    .keys()
                    .any(|k| k.starts_with("sso_") || k == "credential_process" || k == "role_arn")
                {
                    return Err(AwsError::Credentials(format!(
                        "profile {profile} in {} uses SSO, a role or a credential process; \
                         drfailover needs static keys (aws_access_key_id/aws_secret_access_key) \
                         or AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY",
                        path.display()
                    )));
                }
            }
        }
    }
    Ok(Found::Nothing(format!(
        "AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY are not set and profile `{profile}` has no \
         keys in {}",
        if looked.is_empty() {
            "any file ($HOME is not set)".to_string()
        } else {
            looked.join(" or ")
        }
    )))
}

/// Find the region (see the module doc). Blocks on reading the config file.
pub fn load_region(
    configured: Option<&str>,
    profile: Option<&str>,
    env: Env<'_>,
) -> Result<Option<String>, AwsError> {
    if let Some(region) = configured
        .map(str::to_string)
        .or_else(|| env("AWS_REGION"))
        .or_else(|| env("AWS_DEFAULT_REGION"))
    {
        return Ok(Some(region));
    }
    let profile = profile_name(profile, env);
    if let Some(path) = home_file(env, "AWS_CONFIG_FILE", ".aws/config") {
        if let Some(ini) = read_ini(&path)? {
            if let Some(region) = config_section(&ini, &profile).and_then(|s| s.get("region")) {
                return Ok(Some(region.clone()));
            }
        }
    }
    Ok(None)
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &str = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY";

    fn env_of<'a>(pairs: &'a [(&'a str, String)]) -> impl Fn(&str) -> Option<String> + 'a {
        move |name| {
            pairs
                .iter()
                .find(|(k, _)| *k == name)
                .map(|(_, v)| v.clone())
        }
    }

    #[test]
    fn environment_first() {
        let pairs = [
            ("AWS_ACCESS_KEY_ID", "AKIDEXAMPLE".to_string()),
            ("AWS_SECRET_ACCESS_KEY", SECRET.to_string()),
        ];
        let env = env_of(&pairs);
        let id = load_credentials(None, &env).unwrap();
        assert_eq!(id.credentials.access_key_id(), "AKIDEXAMPLE");
        assert!(!format!("{id:?}").contains(SECRET));
    }

    #[test]
    fn profiles_from_files() {
        let dir = tempfile::tempdir().unwrap();
        let creds = dir.path().join("credentials");
        let config = dir.path().join("config");
        std::fs::write(
            &creds,
            format!("[default]\naws_access_key_id = AKIDDEFAULT\naws_secret_access_key = {SECRET}\n\n[prod]\naws_access_key_id=AKIDPROD\naws_secret_access_key={SECRET}\n"),
        )
        .unwrap();
        std::fs::write(&config, "[default]\nregion = eu-west-1\n[profile prod]\nregion = us-west-2\n[profile sso]\nsso_start_url = https://x\n").unwrap();
        let pairs = [
            ("AWS_SHARED_CREDENTIALS_FILE", creds.display().to_string()),
            ("AWS_CONFIG_FILE", config.display().to_string()),
            ("AWS_PROFILE", "prod".to_string()),
            ("AWS_EC2_METADATA_DISABLED", "true".to_string()),
        ];
        let env = env_of(&pairs);
        assert_eq!(
            load_credentials(None, &env)
                .unwrap()
                .credentials
                .access_key_id(),
            "AKIDPROD"
        );
        assert_eq!(
            load_credentials(Some("default"), &env)
                .unwrap()
                .credentials
                .access_key_id(),
            "AKIDDEFAULT"
        );
        assert_eq!(
            load_region(None, None, &env).unwrap().as_deref(),
            Some("us-west-2")
        );
        assert_eq!(
            load_region(None, Some("default"), &env).unwrap().as_deref(),
            Some("eu-west-1")
        );
        assert_eq!(
            load_region(Some("ap-south-1"), None, &env)
                .unwrap()
                .as_deref(),
            Some("ap-south-1")
        );
        let err = load_credentials(Some("sso"), &env).unwrap_err().to_string();
        assert!(err.contains("static keys"), "{err}");
        let err = load_credentials(Some("nobody"), &env)
            .unwrap_err()
            .to_string();
        assert!(err.contains("no AWS credentials"), "{err}");
    }

    #[test]
    fn malformed_file_is_clear_and_secret_free() {
        let dir = tempfile::tempdir().unwrap();
        let creds = dir.path().join("credentials");
        std::fs::write(
            &creds,
            format!("[default]\naws_access_key_id = AKID\n{SECRET}\n"),
        )
        .unwrap();
        let pairs = [("AWS_SHARED_CREDENTIALS_FILE", creds.display().to_string())];
        let env = env_of(&pairs);
        let err = load_credentials(None, &env).unwrap_err().to_string();
        assert!(err.contains("line 3"), "{err}");
        assert!(!err.contains(SECRET), "{err}");
        std::fs::write(&creds, "[default]\naws_access_key_id = AKID\n").unwrap();
        let err = load_credentials(None, &env).unwrap_err().to_string();
        assert!(err.contains("needs both"), "{err}");
    }

    #[test]
    fn credential_files_are_regular_files() {
        let pairs = [("AWS_SHARED_CREDENTIALS_FILE", "/dev/zero".to_string())];
        let err = load_credentials(None, &env_of(&pairs))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("/dev/zero") && err.contains("character device, not a regular file"),
            "{err}"
        );
    }
}
