//! A local AWS endpoint: moto's server (`moto[server]` from PyPI) on loopback, for the Route 53
//! and SNS tests. It checks the API contract (and, with [`MotoServer::start_with_auth`], SigV4
//! signatures and IAM permissions); it serves no DNS and evaluates no health check.
//!
//! `moto_server` is looked for at `$DRFAILOVER_MOTO_SERVER`, then in the virtualenv that
//! `scripts/deps` makes (`$DRFAILOVER_VENV`, default `/opt/drfailover-venv`), then on `PATH`.

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::Child;
use std::time::{Duration, Instant};

use crate::spawner;

/// A running `moto_server`. Killed when dropped.
pub struct MotoServer {
    child: Option<Child>,
    port: u16,
    _dir: tempfile::TempDir,
}

/// Locate `moto_server`, or say exactly how to install it.
pub fn moto_server_binary() -> Result<PathBuf, String> {
    if let Some(path) = std::env::var_os("DRFAILOVER_MOTO_SERVER") {
        let path = PathBuf::from(path);
        return if path.exists() {
            Ok(path)
        } else {
            Err(format!(
                "DRFAILOVER_MOTO_SERVER={} does not exist",
                path.display()
            ))
        };
    }
    let venv = std::env::var_os("DRFAILOVER_VENV")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/opt/drfailover-venv"));
    let in_venv = venv.join("bin/moto_server");
    if in_venv.exists() {
        return Ok(in_venv);
    }
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .map(|d| d.join("moto_server"))
        .find(|p| p.exists())
        .ok_or_else(|| {
            format!(
                "moto_server not found (looked in {} and on PATH): the Route 53/SNS tests need \
                 moto's server; install it with scripts/deps as root, or run \
                 `/usr/bin/python3 -m venv {v} && {v}/bin/pip install 'moto[server]'`",
                in_venv.display(),
                v = venv.display()
            )
        })
}

impl MotoServer {
    /// Start `moto_server` on 127.0.0.1 at a free port, accepting any signature. Blocks until
    /// it answers (at most 60 s: its first start imports a lot of Python).
    pub fn start() -> Result<MotoServer, String> {
        MotoServer::spawn(None)
    }

    /// Like [`MotoServer::start`], but after the first `free_actions` requests moto checks
    /// every request's SigV4 signature against the IAM access keys created in it, and its
    /// IAM policies (`INITIAL_NO_AUTH_ACTION_COUNT`).
    pub fn start_with_auth(free_actions: u32) -> Result<MotoServer, String> {
        MotoServer::spawn(Some(free_actions))
    }

    fn spawn(free_actions: Option<u32>) -> Result<MotoServer, String> {
        let binary = moto_server_binary()?;
        let dir = tempfile::Builder::new()
            .prefix("drfailover-moto-")
            .tempdir()
            .map_err(|e| e.to_string())?;
        let port = {
            let l = TcpListener::bind("127.0.0.1:0").map_err(|e| e.to_string())?;
            l.local_addr().map_err(|e| e.to_string())?.port()
        };
        let mut cmd = spawner::command_dying_with_parent(&binary, None);
        cmd.args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .current_dir(dir.path())
            .env("HOME", dir.path())
            .env_remove("AWS_ACCESS_KEY_ID")
            .env_remove("AWS_SECRET_ACCESS_KEY")
            .env_remove("AWS_SESSION_TOKEN")
            .env_remove("AWS_PROFILE")
            // moto delivers SNS messages to HTTP subscribers on loopback: never via a proxy.
            .env("NO_PROXY", "127.0.0.1,localhost")
            .env("no_proxy", "127.0.0.1,localhost")
            .env_remove("HTTP_PROXY")
            .env_remove("http_proxy");
        if let Some(n) = free_actions {
            cmd.env("INITIAL_NO_AUTH_ACTION_COUNT", n.to_string());
        }
        let mut child = spawner::spawn(cmd).map_err(|e| format!("spawn moto_server: {e}"))?;
        let mut server = MotoServer {
            child: None,
            port,
            _dir: dir,
        };
        let started = Instant::now();
        loop {
            if let Ok(Some(status)) = child.try_wait() {
                return Err(format!(
                    "moto_server exited at start ({status}) on port {port}"
                ));
            }
            if server.get("/moto-api/data.json").is_ok() {
                break;
            }
            if started.elapsed() > Duration::from_secs(60) {
                let _ = child.kill();
                let _ = child.wait();
                return Err("moto_server did not answer within 60 s".into());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        server.child = Some(child);
        Ok(server)
    }

    /// `http://127.0.0.1:<port>`: the endpoint for every service.
    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Kill the server now (to test an endpoint that is down).
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// GET `path` (unsigned, e.g. moto's `/moto-api/data.json` introspection); returns the
    /// body of a 2xx reply. Blocks up to 10 s.
    pub fn get(&self, path: &str) -> Result<String, String> {
        let agent = ureq::Agent::new_with_config(
            ureq::Agent::config_builder()
                .timeout_global(Some(Duration::from_secs(10)))
                .build(),
        );
        let mut reply = agent
            .get(&format!("{}{path}", self.endpoint()))
            .call()
            .map_err(|e| e.to_string())?;
        reply.body_mut().read_to_string().map_err(|e| e.to_string())
    }
}

/// The access key id of the fixed test keys (moto accepts any keys).
pub const TEST_ACCESS_KEY_ID: &str = "AKIDTESTING";
/// The secret key of the fixed test keys.
pub const TEST_SECRET_ACCESS_KEY: &str = "testing-secret-key";

/// Variables of the AWS environment a test never inherits from the host.
const FOREIGN_AWS_VARIABLES: [&str; 4] = [
    "AWS_SESSION_TOKEN",
    "AWS_PROFILE",
    "AWS_REGION",
    "AWS_DEFAULT_REGION",
];

/// The fixed test keys as an identity, for signing calls directly.
pub fn test_identity() -> drfailover_aws::credentials::AwsIdentity {
    drfailover_aws::credentials::AwsIdentity {
        credentials: aws_credential_types::Credentials::new(
            TEST_ACCESS_KEY_ID,
            TEST_SECRET_ACCESS_KEY,
            None,
            None,
            "testkit",
        ),
        source: "testkit".into(),
    }
}

/// Set this process's AWS environment to the fixed test keys, without the host's session
/// token, profile or region, and never the real instance metadata. Once per process (later
/// calls do nothing); call it before the first AWS client reads the environment.
pub fn use_test_keys() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        std::env::set_var("AWS_ACCESS_KEY_ID", TEST_ACCESS_KEY_ID);
        std::env::set_var("AWS_SECRET_ACCESS_KEY", TEST_SECRET_ACCESS_KEY);
        for name in FOREIGN_AWS_VARIABLES {
            std::env::remove_var(name);
        }
        std::env::set_var("AWS_EC2_METADATA_DISABLED", "true");
    });
}

/// Give `command` the same environment as [`use_test_keys`] gives this process.
pub fn with_test_keys(command: &mut std::process::Command) -> &mut std::process::Command {
    command
        .env("AWS_ACCESS_KEY_ID", TEST_ACCESS_KEY_ID)
        .env("AWS_SECRET_ACCESS_KEY", TEST_SECRET_ACCESS_KEY)
        .env("AWS_EC2_METADATA_DISABLED", "true");
    for name in FOREIGN_AWS_VARIABLES {
        command.env_remove(name);
    }
    command
}

/// Secrets Manager calls on a running moto, for tests of `secret_arn`: signed with the fixed
/// test keys, JSON protocol. Each call blocks up to 30 s.
impl MotoServer {
    fn secrets_manager(&self, action: &str, body: String) -> Result<String, String> {
        let identity = test_identity();
        let client = drfailover_aws::AwsClient::new(
            &self.endpoint(),
            "secretsmanager",
            "us-east-1".into(),
            identity,
            drfailover_aws::retry::RetryPolicy {
                attempts: 3,
                per_attempt: Duration::from_secs(10),
                base_delay: Duration::from_millis(100),
                max_delay: Duration::from_secs(1),
            },
        )
        .map_err(|e| e.to_string())?;
        client
            .call_with_headers(
                "POST",
                "/",
                &[("x-amz-target", &format!("secretsmanager.{action}"))],
                Some(("application/x-amz-json-1.1", &body)),
                Instant::now() + Duration::from_secs(30),
            )
            .map(|(reply, _)| reply)
            .map_err(|e| format!("{action}: {e}"))
    }

    /// Create secret `name` holding `secret_string` (region us-east-1); returns its ARN.
    pub fn create_secret(&self, name: &str, secret_string: &str) -> Result<String, String> {
        let body = serde_json::json!({"Name": name, "SecretString": secret_string});
        let reply = self.secrets_manager("CreateSecret", body.to_string())?;
        let reply: serde_json::Value =
            serde_json::from_str(&reply).map_err(|e| format!("CreateSecret: {e}"))?;
        reply["ARN"]
            .as_str()
            .map(str::to_string)
            .ok_or_else(|| format!("CreateSecret: no ARN in {reply}"))
    }

    /// Store a new current version of secret `arn` (what a rotation does first).
    pub fn put_secret_value(&self, arn: &str, secret_string: &str) -> Result<(), String> {
        let body = serde_json::json!({"SecretId": arn, "SecretString": secret_string});
        self.secrets_manager("PutSecretValue", body.to_string())
            .map(drop)
    }

    /// The `GetSecretValue` reply for `arn`, as moto sends it.
    pub fn get_secret_value(&self, arn: &str) -> Result<String, String> {
        let body = serde_json::json!({ "SecretId": arn });
        self.secrets_manager("GetSecretValue", body.to_string())
    }

    /// Delete secret `arn` at once (no recovery window).
    pub fn delete_secret(&self, arn: &str) -> Result<(), String> {
        let body = serde_json::json!({"SecretId": arn, "ForceDeleteWithoutRecovery": true});
        self.secrets_manager("DeleteSecret", body.to_string())
            .map(drop)
    }
}

impl Drop for MotoServer {
    fn drop(&mut self) {
        self.stop();
    }
}

/// The text of the first `<tag>…</tag>` in `xml` (moto's XML replies), if there is one.
pub fn xml_text(xml: &str, tag: &str) -> Option<String> {
    let start = xml.find(&format!("<{tag}>"))? + tag.len() + 2;
    let end = start + xml[start..].find(&format!("</{tag}>"))?;
    Some(xml[start..end].to_string())
}

/// Create the Route 53 hosted zone `zone` (`example.test.`) through `route53`, a client of
/// moto's endpoint with the caller's keys; its id, without `/hostedzone/`. Blocks up to 30 s.
pub fn create_hosted_zone(
    route53: &drfailover_aws::AwsClient,
    zone: &str,
) -> Result<String, String> {
    static REFERENCES: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let reference = format!(
        "testkit-{}-{}",
        std::process::id(),
        REFERENCES.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
    );
    let body = format!(
        r#"<?xml version="1.0" encoding="UTF-8"?><CreateHostedZoneRequest xmlns="https://route53.amazonaws.com/doc/2013-04-01/"><Name>{zone}</Name><CallerReference>{reference}</CallerReference></CreateHostedZoneRequest>"#
    );
    let (reply, _) = route53
        .call(
            "POST",
            "/2013-04-01/hostedzone",
            Some(("text/xml", &body)),
            Instant::now() + Duration::from_secs(30),
        )
        .map_err(|e| format!("CreateHostedZone {zone}: {e}"))?;
    let id = xml_text(&reply, "Id").ok_or_else(|| format!("CreateHostedZone: no Id in {reply}"))?;
    Ok(id.trim_start_matches("/hostedzone/").to_string())
}

/// Create the SNS topic `name` through `sns`, a client of moto's endpoint; its ARN. Blocks up
/// to 30 s.
pub fn create_topic(sns: &drfailover_aws::AwsClient, name: &str) -> Result<String, String> {
    let (reply, _) = sns
        .call(
            "POST",
            "/",
            Some((
                "application/x-www-form-urlencoded",
                &format!("Action=CreateTopic&Name={name}&Version=2010-03-31"),
            )),
            Instant::now() + Duration::from_secs(30),
        )
        .map_err(|e| format!("CreateTopic {name}: {e}"))?;
    xml_text(&reply, "TopicArn").ok_or_else(|| format!("CreateTopic: no TopicArn in {reply}"))
}
