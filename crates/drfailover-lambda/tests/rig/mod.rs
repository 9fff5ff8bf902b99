//! The function's test rig: the real `bootstrap` binary under cargo-lambda's Lambda runtime
//! emulator (`cargo lambda watch --only-lambda-apis`, from PyPI's `cargo-lambda`), moto's
//! server for RDS, Route 53, SNS and Secrets Manager, and real `mariadbd` nodes behind the endpoints.
//!
//! Between the function and moto sits [`AwsProxy`], a small HTTP proxy that plays RDS's part
//! where moto does not: when it forwards an accepted `PromoteReadReplica`, it promotes the
//! real replica (after a delay, as RDS takes a while), and it refuses a second one with
//! `InvalidDBInstanceState` as RDS does. It records every request (service, action, body,
//! time) and can answer some with throttling or 5xx errors. When the harness kills the
//! primary it also stops the instance in moto, as RDS would report it.
//!
//! Everything runs on loopback in temporary directories and is torn down on drop, also when
//! a test panics; child processes also die with the test thread (`setpriv --pdeathsig`).

#![allow(dead_code)]

use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use drfailover_dns::aws::credentials::load_credentials;
use drfailover_dns::aws::AwsClient;
use drfailover_dns::retry::RetryPolicy;
use drfailover_testkit::moto::MotoServer;
use drfailover_testkit::wait::within;
use drfailover_testkit::{Topology, APP_DATABASE, APP_PASSWORD, APP_USER};
use serde_json::{json, Value};

/// The AWS secret key the function is given (must never appear in its logs).
pub const AWS_SECRET: &str = "lambdaTESTsecretKEY0123456789abcdefghijXY";
/// The session token the function is given (must never appear in its logs).
pub const AWS_TOKEN: &str = "lambdaTESTsessionTOKEN0123456789";
/// The probe account the secret holds (created on the nodes when the rig uses a secret).
pub const PROBE_USER: &str = "lambda_probe";
/// Its password as the rig creates it (must never appear in the function's logs).
pub const PROBE_PASSWORD: &str = "probeSECRETfirst-0123";
/// Its password after [`Rig::rotate_probe_secret`] (must never appear in the logs either).
pub const PROBE_PASSWORD_ROTATED: &str = "probeSECRETrotated-4567";
/// The region of every service in the rig.
pub const REGION: &str = "us-east-1";
/// The failover record's name.
pub const RECORD: &str = "db.example.test";
/// How long the harness's RDS takes to promote the replica after `PromoteReadReplica`.
pub const PROMOTION_DELAY: Duration = Duration::from_millis(1500);

/// One request seen by the proxy.
#[derive(Clone, Debug)]
pub struct Seen {
    /// Signing service: `rds`, `route53`, `sns`.
    pub service: String,
    /// API action (`PromoteReadReplica`, `ChangeResourceRecordSets`, `Publish`, …).
    pub action: String,
    /// The request body.
    pub body: String,
    /// When it arrived.
    pub at: Instant,
    /// The status answered.
    pub status: u16,
}

/// A canned answer instead of forwarding.
pub type Answer = (u16, String);

/// Decides, per request, whether to answer it itself (`Some`) or forward it to moto.
pub type Hook = Arc<dyn Fn(&Seen) -> Option<Answer> + Send + Sync>;

/// Runs after each request was answered (its status set).
pub type After = Arc<dyn Fn(&Seen) + Send + Sync>;

/// A callback the harness may set, run after Route 53 accepted a change.
pub type OnRecordChange = Arc<Mutex<Option<Box<dyn Fn() + Send>>>>;

/// An HTTP/1.1 proxy on loopback in front of moto (stops serving when dropped).
pub struct AwsProxy {
    server: drfailover_http::Background,
    /// Every request, in arrival order.
    pub seen: Arc<Mutex<Vec<Seen>>>,
}

fn action_of(method: &str, path: &str, service: &str, body: &str) -> String {
    if service == "route53" {
        return match (method, path) {
            ("POST", p) if p.contains("/rrset") => "ChangeResourceRecordSets",
            ("GET", p) if p.contains("/rrset") => "ListResourceRecordSets",
            ("GET", p) if p.contains("/change/") => "GetChange",
            _ => "other",
        }
        .to_string();
    }
    form_value(body, "Action").unwrap_or_default()
}

/// The decoded value of `key` in a form body.
pub fn form_value(body: &str, key: &str) -> Option<String> {
    body.split('&').find_map(|pair| {
        let (k, v) = pair.split_once('=')?;
        (k == key).then(|| {
            percent_encoding::percent_decode_str(&v.replace('+', " "))
                .decode_utf8_lossy()
                .into_owned()
        })
    })
}

impl AwsProxy {
    /// Listen on 127.0.0.1 and forward to `upstream` (moto), asking `hook` first.
    pub fn start(upstream: String, hook: Hook, after: After) -> AwsProxy {
        let seen: Arc<Mutex<Vec<Seen>>> = Arc::default();
        let log = seen.clone();
        let agent = drfailover_testkit::http_recorder::client(Duration::from_secs(30));
        // Held while a record change is answered (see `forward`).
        let changes: Arc<Mutex<()>> = Arc::default();
        let limits = drfailover_http::Limits {
            keep_alive: true,
            ..drfailover_http::Limits::default()
        };
        let server = drfailover_http::Background::on_loopback(limits, move |request| {
            let (upstream, hook, after, log, agent, changes) = (
                upstream.clone(),
                hook.clone(),
                after.clone(),
                log.clone(),
                agent.clone(),
                changes.clone(),
            );
            async move {
                let (parts, body) = match drfailover_http::read_body(request, MAX_BODY_BYTES).await
                {
                    Ok(read) => read,
                    Err(e) => {
                        return drfailover_http::bytes(
                            drfailover_http::StatusCode::PAYLOAD_TOO_LARGE,
                            e.to_string(),
                        )
                    }
                };
                let (status, reply) = drfailover_http::run_blocking(move || {
                    forward(
                        &parts,
                        String::from_utf8_lossy(&body).into_owned(),
                        &upstream,
                        (&hook, &after),
                        (&log, &changes),
                        &agent,
                    )
                })
                .await
                .unwrap_or((500, "proxy: the rig's hook panicked".into()));
                let status = drfailover_http::StatusCode::from_u16(status)
                    .unwrap_or(drfailover_http::StatusCode::INTERNAL_SERVER_ERROR);
                drfailover_http::with_type(status, "text/xml", reply)
            }
        })
        .expect("serve the AWS proxy on loopback");
        AwsProxy { server, seen }
    }

    /// `http://127.0.0.1:<port>`.
    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.server.port())
    }

    /// The requests of `action` seen so far.
    pub fn requests(&self, action: &str) -> Vec<Seen> {
        self.seen
            .lock()
            .unwrap()
            .iter()
            .filter(|s| s.action == action)
            .cloned()
            .collect()
    }

    /// The requests of `action` that got a 2xx answer.
    pub fn accepted(&self, action: &str) -> Vec<Seen> {
        self.requests(action)
            .into_iter()
            .filter(|s| (200..300).contains(&s.status))
            .collect()
    }
}

/// Largest request body the proxy takes (the function's requests are far smaller).
const MAX_BODY_BYTES: usize = 4 * 1024 * 1024;

/// Answer one request: the hook's answer, or moto's. Blocks while it forwards.
fn forward(
    request: &drfailover_http::RequestHead,
    body: String,
    upstream: &str,
    (hook, after): (&Hook, &After),
    (log, changes): (&Mutex<Vec<Seen>>, &Mutex<()>),
    agent: &ureq::Agent,
) -> (u16, String) {
    let (method, path) = (
        request.method.as_str(),
        request
            .uri
            .path_and_query()
            .map_or("/", |p| p.as_str())
            .to_string(),
    );
    let header = |name: &str| {
        request
            .headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
    };
    let target_action =
        header("x-amz-target").and_then(|v| v.rsplit('.').next().map(str::to_string));
    let service = header("authorization")
        .as_deref()
        .and_then(|v| v.split("Credential=").nth(1))
        .and_then(|c| c.split('/').nth(3))
        .unwrap_or("")
        .to_string();
    let mut seen = Seen {
        action: target_action.unwrap_or_else(|| action_of(method, &path, &service, &body)),
        service,
        body: body.clone(),
        at: Instant::now(),
        status: 0,
    };
    // Route 53 applies a zone's change batches one at a time; moto does not lock, so two
    // batches forwarded at once could both pass its checks. Forward them one at a time.
    let _one_change_at_a_time = (seen.action == "ChangeResourceRecordSets")
        .then(|| changes.lock().unwrap_or_else(|e| e.into_inner()));
    let (status, reply) = match hook(&seen) {
        Some(answer) => answer,
        None => {
            let mut forwarded = ureq::http::Request::builder()
                .method(method)
                .uri(format!("{upstream}{path}"));
            for (name, value) in &request.headers {
                if !["host", "content-length", "connection", "transfer-encoding"]
                    .contains(&name.as_str())
                {
                    forwarded = forwarded.header(name.as_str(), value.as_bytes());
                }
            }
            match forwarded
                .body(body.into_bytes())
                .map_err(|e| e.to_string())
                .and_then(|r| agent.run(r).map_err(|e| e.to_string()))
            {
                Ok(response) => {
                    let status = response.status().as_u16();
                    (
                        status,
                        response.into_body().read_to_string().unwrap_or_default(),
                    )
                }
                Err(e) => (502, format!("proxy: {e}")),
            }
        }
    };
    seen.status = status;
    after(&seen);
    log.lock().unwrap().push(seen);
    (status, reply)
}

/// An AWS error reply in the query-API XML shape.
pub fn aws_error(status: u16, code: &str, message: &str) -> Answer {
    (
        status,
        format!(
            "<ErrorResponse><Error><Type>Sender</Type><Code>{code}</Code><Message>{message}</Message></Error><RequestId>rig</RequestId></ErrorResponse>"
        ),
    )
}

/// `cargo-lambda`: `$DRFAILOVER_CARGO_LAMBDA`, the project's virtualenv, else `PATH`; or
/// exactly how to install it.
pub fn cargo_lambda_binary() -> Result<PathBuf, String> {
    if let Some(path) = std::env::var_os("DRFAILOVER_CARGO_LAMBDA") {
        return Ok(PathBuf::from(path));
    }
    let venv = std::env::var_os("DRFAILOVER_VENV")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/opt/drfailover-venv"));
    let in_venv = venv.join("bin/cargo-lambda");
    if in_venv.exists() {
        return Ok(in_venv);
    }
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .map(|d| d.join("cargo-lambda"))
        .find(|p| p.exists())
        .ok_or_else(|| {
            format!(
                "cargo-lambda not found (looked in {} and on PATH): the Lambda tests run the \
                 function under its runtime emulator; install it with scripts/deps as root, or \
                 `{}/bin/pip install cargo-lambda==1.9.2`",
                in_venv.display(),
                venv.display()
            )
        })
}

/// A child process killed and reaped on drop; it also dies with the thread that started it.
pub struct Process(Child);

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn dying_with_parent(program: &std::path::Path) -> Command {
    let setpriv = ["/usr/bin/setpriv", "/bin/setpriv"]
        .into_iter()
        .map(PathBuf::from)
        .find(|p| p.exists());
    match setpriv {
        Some(setpriv) => {
            let mut cmd = Command::new(setpriv);
            cmd.args(["--pdeathsig", "KILL", "--"]).arg(program);
            cmd
        }
        None => Command::new(program),
    }
}

/// The Lambda runtime API emulator (`cargo lambda watch --only-lambda-apis`) on loopback.
pub struct Emulator {
    port: u16,
    _process: Process,
}

impl Emulator {
    /// Start it; blocks until it accepts connections (at most 60 s).
    pub fn start(log: &std::path::Path) -> Result<Emulator, String> {
        let binary = cargo_lambda_binary()?;
        let port = drfailover_testkit::free_loopback_port();
        let log = std::fs::File::create(log).map_err(|e| e.to_string())?;
        let mut cmd = dying_with_parent(&binary);
        cmd.args(["lambda", "watch", "--only-lambda-apis", "-A", "127.0.0.1"])
            .args(["-P", &port.to_string()])
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .stdin(Stdio::null())
            .stdout(log.try_clone().map_err(|e| e.to_string())?)
            .stderr(log);
        let child = cmd
            .spawn()
            .map_err(|e| format!("start {}: {e}", binary.display()))?;
        let mut process = Process(child);
        let mut exited = None;
        let listening = within(Duration::from_secs(60), || {
            if let Ok(Some(status)) = process.0.try_wait() {
                exited = Some(status);
                return Some(false);
            }
            TcpStream::connect(("127.0.0.1", port))
                .is_ok()
                .then_some(true)
        });
        match (listening, exited) {
            (Some(true), _) => {}
            (_, Some(status)) => {
                return Err(format!("cargo lambda watch exited at start: {status}"))
            }
            _ => return Err("cargo lambda watch did not listen within 60 s".into()),
        }
        Ok(Emulator {
            port,
            _process: process,
        })
    }

    /// `http://127.0.0.1:<port>/.rt`: the runtime API for the function.
    pub fn runtime_api(&self) -> String {
        format!("http://127.0.0.1:{}/.rt", self.port)
    }

    /// Invoke the function with `event` (the Lambda Invoke API); returns the HTTP status
    /// (200, or 500 for a function error) and the reply. Blocks up to 120 s.
    pub fn invoke(&self, event: &Value) -> (u16, Value) {
        let agent = drfailover_testkit::http_recorder::client(Duration::from_secs(120));
        let mut response = agent
            .post(format!(
                "http://127.0.0.1:{}/2015-03-31/functions/_/invocations",
                self.port
            ))
            .send(event.to_string())
            .unwrap_or_else(|e| panic!("invoke: {e}"));
        let status = response.status().as_u16();
        let text = response.body_mut().read_to_string().unwrap_or_default();
        let reply = serde_json::from_str(&text).unwrap_or(Value::String(text));
        (status, reply)
    }
}

/// How the rig is set up.
#[derive(Clone, Debug)]
pub struct Options {
    /// `PROMOTE_READ_REPLICA`.
    pub promote: bool,
    /// Function processes polling the emulator (two: two invocations can run at once).
    pub functions: usize,
    /// Variables to leave out of the function's environment.
    pub without: Vec<&'static str>,
    /// How long the harness's RDS takes to promote the replica.
    pub promotion_delay: Duration,
    /// Give the probe's account as a Secrets Manager secret (`DB_PROBE_SECRET_ARN`, the
    /// secret created in moto) instead of `DB_PROBE_USER`/`DB_PROBE_PASSWORD`.
    pub probe_secret: bool,
}

impl Default for Options {
    fn default() -> Options {
        Options {
            promote: true,
            functions: 1,
            without: Vec::new(),
            promotion_delay: PROMOTION_DELAY,
            probe_secret: false,
        }
    }
}

/// What the harness's RDS did.
#[derive(Default)]
pub struct RdsPart {
    /// Promotions of the real replica started (on an accepted `PromoteReadReplica`).
    pub promotions: u32,
    /// When the real replica answered writable.
    pub writable_at: Option<Instant>,
    /// Errors of the promotion thread.
    pub errors: Vec<String>,
    /// Node 1's `@@read_only` read by the proxy when each record change arrived, before
    /// forwarding it: proof of what the record was about to point at.
    pub read_only_at_change: Vec<String>,
}

/// Answers the proxy's hook gives, set by a test.
#[derive(Default)]
pub struct Faults {
    /// Answer this many requests of (service, action) with the answer, then forward.
    pub answer: Vec<(String, String, u32, Answer)>,
}

/// The whole rig.
pub struct Rig {
    /// The database nodes: 0 the primary, 1 the replica.
    pub topology: Arc<Mutex<Topology>>,
    /// moto's server.
    pub moto: MotoServer,
    /// The proxy the function talks to.
    pub proxy: AwsProxy,
    /// cargo-lambda's runtime emulator running the real `bootstrap`.
    pub emulator: Emulator,
    /// The hosted zone.
    pub zone: String,
    /// The health check attached to the PRIMARY record.
    pub health_check: String,
    /// The SNS topic.
    pub topic: String,
    /// The ARN of the secret in moto holding the probe's account, when the options asked.
    pub probe_secret_arn: Option<String>,
    /// What the harness's RDS did.
    pub rds: Arc<Mutex<RdsPart>>,
    /// Faults the proxy injects.
    pub faults: Arc<Mutex<Faults>>,
    /// Called after Route 53 accepted a change (e.g. to mirror it into a DNS server).
    pub on_record_change: OnRecordChange,
    functions: Vec<Process>,
    logs: Vec<PathBuf>,
    dir: tempfile::TempDir,
}

fn direct_client(endpoint: &str, service: &'static str) -> AwsClient {
    let env = |name: &str| match name {
        "AWS_ACCESS_KEY_ID" => Some("AKIDHARNESS".to_string()),
        "AWS_SECRET_ACCESS_KEY" => Some("harness-secret".to_string()),
        _ => None,
    };
    AwsClient::new(
        endpoint,
        service,
        REGION.into(),
        load_credentials(None, &env).unwrap(),
        // Generous: moto's first request to a service imports and loads that service's
        // models, seconds of Python on a loaded machine.
        RetryPolicy {
            attempts: 3,
            per_attempt: Duration::from_secs(60),
            base_delay: Duration::from_millis(50),
            max_delay: Duration::from_millis(200),
        },
    )
    .unwrap()
}

fn soon() -> Instant {
    Instant::now() + Duration::from_secs(120)
}

/// The text of the first `<tag>` in `xml`.
pub fn tag(xml: &str, tag: &str) -> String {
    drfailover_testkit::moto::xml_text(xml, tag).unwrap_or_else(|| panic!("no <{tag}> in {xml}"))
}

/// One record set of the failover pair, as the Route 53 XML of a change.
fn record_xml(action: &str, role: &str, ip: &str, health_check: Option<&str>) -> String {
    format!(
        "<Change><Action>{action}</Action><ResourceRecordSet><Name>{RECORD}.</Name><Type>A</Type>\
         <SetIdentifier>{}</SetIdentifier><Failover>{role}</Failover><TTL>1</TTL>\
         <ResourceRecords><ResourceRecord><Value>{ip}</Value></ResourceRecord></ResourceRecords>{}\
         </ResourceRecordSet></Change>",
        set_id(role),
        health_check
            .map(|h| format!("<HealthCheckId>{h}</HealthCheckId>"))
            .unwrap_or_default()
    )
}

/// The SetIdentifier the rig gives each role.
pub fn set_id(role: &str) -> String {
    format!("db-{}", role.to_ascii_lowercase())
}

impl Rig {
    /// Start the nodes, moto, the proxy, the emulator and the function(s), and create in
    /// moto the two RDS instances (db2 a read replica of db1), the hosted zone with the
    /// failover pair (PRIMARY → node 0 with a health check, SECONDARY → node 1, TTL 1) and
    /// the SNS topic. Fails with a clear message when a part is missing.
    pub fn start(options: Options) -> Rig {
        let topology = Topology::primary_replica().unwrap_or_else(|e| panic!("{e}"));
        let moto = MotoServer::start().unwrap_or_else(|e| panic!("{e}"));
        let dir = tempfile::Builder::new()
            .prefix("drfailover-lambda-")
            .tempdir()
            .unwrap();
        let topology = Arc::new(Mutex::new(topology));
        let rds: Arc<Mutex<RdsPart>> = Arc::default();
        let faults: Arc<Mutex<Faults>> = Arc::default();
        let delay = options.promotion_delay;
        let hook: Hook = {
            // The proxy's threads outlive the rig: they hold the topology weakly, so the
            // servers and their directory go when the rig does.
            let topology = Arc::downgrade(&topology);
            let (rds, faults) = (rds.clone(), faults.clone());
            Arc::new(move |seen: &Seen| {
                let mut f = faults.lock().unwrap();
                for (service, action, left, answer) in f.answer.iter_mut() {
                    if *service == seen.service
                        && (action == "*" || *action == seen.action)
                        && *left > 0
                    {
                        *left -= 1;
                        return Some(answer.clone());
                    }
                }
                drop(f);
                let topology = topology.upgrade()?;
                if seen.action == "ChangeResourceRecordSets" {
                    let read_only = topology
                        .lock()
                        .unwrap()
                        .node(1)
                        .sql_value("SELECT @@read_only")
                        .unwrap_or_else(Some)
                        .unwrap_or_default();
                    rds.lock().unwrap().read_only_at_change.push(read_only);
                }
                if seen.action == "PromoteReadReplica" {
                    let mut part = rds.lock().unwrap();
                    if part.promotions > 0 {
                        return Some(aws_error(
                            400,
                            "InvalidDBInstanceState",
                            "DB Instance is not a read replica.",
                        ));
                    }
                    part.promotions += 1;
                    let (topology, rds) = (topology.clone(), rds.clone());
                    std::thread::spawn(move || {
                        std::thread::sleep(delay);
                        let result = topology.lock().unwrap().promote(1);
                        let mut part = rds.lock().unwrap();
                        match result {
                            Ok(()) => part.writable_at = Some(Instant::now()),
                            Err(e) => part.errors.push(e),
                        }
                    });
                }
                None
            })
        };
        let on_record_change: OnRecordChange = Arc::default();
        let after: After = {
            let on_record_change = on_record_change.clone();
            Arc::new(move |seen: &Seen| {
                if seen.action == "ChangeResourceRecordSets" && (200..300).contains(&seen.status) {
                    if let Some(callback) = &*on_record_change.lock().unwrap() {
                        callback();
                    }
                }
            })
        };
        let proxy = AwsProxy::start(moto.endpoint(), hook, after);
        let emulator =
            Emulator::start(&dir.path().join("emulator.log")).unwrap_or_else(|e| panic!("{e}"));

        // moto: the RDS pair, the zone with its failover pair, the topic.
        let rds_api = direct_client(&moto.endpoint(), "rds");
        let form = "application/x-www-form-urlencoded";
        for body in [
            "Action=CreateDBInstance&Version=2014-10-31&DBInstanceIdentifier=db1&DBInstanceClass=db.t3.micro&Engine=mysql&MasterUsername=admin&MasterUserPassword=harness-pw-123&AllocatedStorage=20",
            "Action=CreateDBInstanceReadReplica&Version=2014-10-31&DBInstanceIdentifier=db2&SourceDBInstanceIdentifier=db1",
        ] {
            rds_api.call("POST", "/", Some((form, body)), soon()).unwrap();
        }
        let route53 = direct_client(&moto.endpoint(), "route53");
        let zone = drfailover_testkit::moto::create_hosted_zone(&route53, "example.test.")
            .unwrap_or_else(|e| panic!("{e}"));
        let (ip0, ip1) = {
            let t = topology.lock().unwrap();
            (t.node(0).ip().to_string(), t.node(1).ip().to_string())
        };
        let hc = format!(
            r#"<?xml version="1.0" encoding="UTF-8"?><CreateHealthCheckRequest xmlns="https://route53.amazonaws.com/doc/2013-04-01/"><CallerReference>hc-primary</CallerReference><HealthCheckConfig><IPAddress>{ip0}</IPAddress><Port>8080</Port><Type>HTTP</Type><ResourcePath>/writer</ResourcePath><RequestInterval>10</RequestInterval><FailureThreshold>3</FailureThreshold></HealthCheckConfig></CreateHealthCheckRequest>"#
        );
        let (reply, _) = route53
            .call(
                "POST",
                "/2013-04-01/healthcheck",
                Some(("text/xml", &hc)),
                soon(),
            )
            .unwrap();
        let health_check = tag(&reply, "Id");
        let batch = format!(
            r#"<?xml version="1.0" encoding="UTF-8"?><ChangeResourceRecordSetsRequest xmlns="https://route53.amazonaws.com/doc/2013-04-01/"><ChangeBatch><Changes>{}{}</Changes></ChangeBatch></ChangeResourceRecordSetsRequest>"#,
            record_xml("CREATE", "PRIMARY", &ip0, Some(&health_check)),
            record_xml("CREATE", "SECONDARY", &ip1, None)
        );
        route53
            .call(
                "POST",
                &format!("/2013-04-01/hostedzone/{zone}/rrset/"),
                Some(("text/xml", &batch)),
                soon(),
            )
            .unwrap();
        let sns = direct_client(&moto.endpoint(), "sns");
        let topic = drfailover_testkit::moto::create_topic(&sns, "db-failover")
            .unwrap_or_else(|e| panic!("{e}"));
        let probe_secret_arn = options.probe_secret.then(|| {
            {
                let t = topology.lock().unwrap();
                t.node(0)
                    .sql(&format!(
                        "CREATE USER '{PROBE_USER}'@'%' IDENTIFIED BY '{PROBE_PASSWORD}'"
                    ))
                    .unwrap();
                t.wait_replicated(0, 1).unwrap();
            }
            let secret = json!({"username": PROBE_USER, "password": PROBE_PASSWORD}).to_string();
            let (reply, _) = direct_client(&moto.endpoint(), "secretsmanager")
                .call_with_headers(
                    "POST",
                    "/",
                    &[("x-amz-target", "secretsmanager.CreateSecret")],
                    Some((
                        "application/x-amz-json-1.1",
                        &json!({"Name": "db-probe", "SecretString": secret}).to_string(),
                    )),
                    soon(),
                )
                .unwrap();
            let reply: Value = serde_json::from_str(&reply).unwrap();
            reply["ARN"]
                .as_str()
                .expect("CreateSecret's ARN")
                .to_string()
        });

        let mut rig = Rig {
            topology,
            moto,
            proxy,
            emulator,
            zone,
            health_check,
            topic,
            probe_secret_arn,
            rds,
            faults,
            on_record_change,
            functions: Vec::new(),
            logs: Vec::new(),
            dir,
        };
        for i in 0..options.functions {
            rig.start_function(i, &options);
        }
        rig
    }

    /// The function's environment.
    pub fn function_env(&self, options: &Options) -> Vec<(String, String)> {
        let t = self.topology.lock().unwrap();
        let vars = [
            ("AWS_LAMBDA_RUNTIME_API", self.emulator.runtime_api()),
            ("AWS_LAMBDA_FUNCTION_NAME", "_".into()),
            ("AWS_LAMBDA_FUNCTION_VERSION", "1".into()),
            ("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "128".into()),
            ("AWS_REGION", REGION.into()),
            ("AWS_ACCESS_KEY_ID", "ASIALAMBDATEST".into()),
            ("AWS_SECRET_ACCESS_KEY", AWS_SECRET.into()),
            ("AWS_SESSION_TOKEN", AWS_TOKEN.into()),
            ("AWS_ENDPOINT_URL", self.proxy.endpoint()),
            ("PRIMARY_DB_ENDPOINT", t.node(0).addr().to_string()),
            ("SECONDARY_DB_ENDPOINT", t.node(1).addr().to_string()),
            ("PRIMARY_DB_INSTANCE_ID", "db1".into()),
            ("SECONDARY_DB_INSTANCE_ID", "db2".into()),
            ("HOSTED_ZONE_ID", self.zone.clone()),
            ("RECORD_NAME", RECORD.into()),
            ("PRIMARY_RECORD_SET_ID", set_id("PRIMARY")),
            ("SECONDARY_RECORD_SET_ID", set_id("SECONDARY")),
            ("SNS_TOPIC_ARN", self.topic.clone()),
            (
                "PROMOTE_READ_REPLICA",
                if options.promote { "true" } else { "false" }.into(),
            ),
            ("DB_PROBE_USER", APP_USER.into()),
            ("DB_PROBE_PASSWORD", APP_PASSWORD.into()),
            ("PROBE_TIMEOUT_MS", "1000".into()),
            ("DRFAILOVER_LOG", "debug".into()),
        ];
        let _ = APP_DATABASE;
        let secret = options.probe_secret.then(|| {
            let arn = self.probe_secret_arn.clone();
            (
                "DB_PROBE_SECRET_ARN",
                arn.expect("the rig started with probe_secret"),
            )
        });
        vars.into_iter()
            .filter(|(name, _)| !(options.probe_secret && name.starts_with("DB_PROBE_")))
            .chain(secret)
            .filter(|(name, _)| !options.without.contains(name))
            .map(|(n, v)| (n.to_string(), v))
            .collect()
    }

    /// Rotate the probe's password, as a rotation Lambda would: the new one stored in the
    /// secret, then set on the primary (replicated to the replica, waited for).
    pub fn rotate_probe_secret(&self) {
        let arn = self
            .probe_secret_arn
            .as_deref()
            .expect("the rig uses a secret");
        let secret = json!({"username": PROBE_USER, "password": PROBE_PASSWORD_ROTATED});
        direct_client(&self.moto.endpoint(), "secretsmanager")
            .call_with_headers(
                "POST",
                "/",
                &[("x-amz-target", "secretsmanager.PutSecretValue")],
                Some((
                    "application/x-amz-json-1.1",
                    &json!({"SecretId": arn, "SecretString": secret.to_string()}).to_string(),
                )),
                soon(),
            )
            .unwrap();
        let t = self.topology.lock().unwrap();
        t.node(0)
            .sql(&format!(
                "ALTER USER '{PROBE_USER}'@'%' IDENTIFIED BY '{PROBE_PASSWORD_ROTATED}'"
            ))
            .unwrap();
        t.wait_replicated(0, 1).unwrap();
    }

    /// Start one more function process with `options`' environment.
    pub fn start_function_with(&mut self, options: Options) {
        let i = self.logs.len();
        self.start_function(i, &options);
    }

    /// Stop the function processes (kill -9).
    pub fn stop_functions(&mut self) {
        self.functions.clear();
    }

    fn start_function(&mut self, i: usize, options: &Options) {
        let log = self.dir.path().join(format!("function-{i}.log"));
        let file = std::fs::File::create(&log).unwrap();
        let mut cmd = dying_with_parent(std::path::Path::new(env!("CARGO_BIN_EXE_bootstrap")));
        cmd.env_clear()
            .env("PATH", "/usr/bin:/bin")
            .envs(self.function_env(options))
            .stdin(Stdio::null())
            .stdout(file.try_clone().unwrap())
            .stderr(file);
        self.functions
            .push(Process(cmd.spawn().expect("start the bootstrap binary")));
        self.logs.push(log);
    }

    /// Everything the function processes logged so far.
    pub fn function_logs(&self) -> String {
        self.logs
            .iter()
            .map(|p| std::fs::read_to_string(p).unwrap_or_default())
            .collect::<Vec<_>>()
            .join("\n")
    }

    /// Kill the primary (-9) and, as RDS would, report its instance stopped.
    pub fn kill_primary(&self) {
        self.topology.lock().unwrap().kill9(0).unwrap();
        direct_client(&self.moto.endpoint(), "rds")
            .call(
                "POST",
                "/",
                Some((
                    "application/x-www-form-urlencoded",
                    "Action=StopDBInstance&Version=2014-10-31&DBInstanceIdentifier=db1",
                )),
                soon(),
            )
            .unwrap();
    }

    /// The failover pair as moto holds it: (role, value, SetIdentifier, HealthCheckId, TTL).
    pub fn records(&self) -> Vec<(String, String, String, Option<String>, String)> {
        let (xml, _) = direct_client(&self.moto.endpoint(), "route53")
            .call(
                "GET",
                &format!("/2013-04-01/hostedzone/{}/rrset", self.zone),
                None,
                soon(),
            )
            .unwrap();
        let doc = roxmltree::Document::parse(&xml).unwrap();
        let text = |n: roxmltree::Node<'_, '_>, t: &str| {
            n.descendants()
                .find(|c| c.has_tag_name(t))
                .and_then(|c| c.text())
                .map(str::to_string)
        };
        let mut pair: Vec<_> = doc
            .descendants()
            .filter(|n| n.has_tag_name("ResourceRecordSet"))
            .filter_map(|n| {
                Some((
                    text(n, "Failover")?,
                    text(n, "Value").unwrap_or_default(),
                    text(n, "SetIdentifier").unwrap_or_default(),
                    text(n, "HealthCheckId"),
                    text(n, "TTL").unwrap_or_default(),
                ))
            })
            .collect();
        pair.sort();
        pair
    }

    /// The IP of node `i`.
    pub fn ip(&self, i: usize) -> String {
        self.topology.lock().unwrap().node(i).ip().to_string()
    }

    /// The SNS messages the function published: (subject, parsed JSON body).
    pub fn sns_messages(&self) -> Vec<(String, Value)> {
        self.proxy
            .accepted("Publish")
            .iter()
            .map(|s| {
                let message = form_value(&s.body, "Message").unwrap_or_default();
                (
                    form_value(&s.body, "Subject").unwrap_or_default(),
                    serde_json::from_str(&message).unwrap_or(Value::String(message)),
                )
            })
            .collect()
    }

    /// Requests that change something: promotions and record changes accepted.
    pub fn changes(&self) -> (usize, usize) {
        (
            self.proxy.accepted("PromoteReadReplica").len(),
            self.proxy.accepted("ChangeResourceRecordSets").len(),
        )
    }
}

/// A CloudWatch Alarm State Change event as EventBridge delivers it.
pub fn alarm_event(state: &str) -> Value {
    json!({
        "version": "0",
        "id": "6a7e8feb-b491-4cf7-a9f1-bf3703467718",
        "detail-type": "CloudWatch Alarm State Change",
        "source": "aws.cloudwatch",
        "account": "123456789012",
        "time": "2026-12-06T09:00:00Z",
        "region": REGION,
        "resources": ["arn:aws:cloudwatch:us-east-1:123456789012:alarm:db-writer-unhealthy"],
        "detail": {
            "alarmName": "db-writer-unhealthy",
            "state": {"value": state, "reason": "Threshold Crossed: 1 datapoint [0.0] was less than the threshold (1.0).", "timestamp": "2026-12-06T09:00:00.000+0000"},
            "previousState": {"value": "OK", "reason": "", "timestamp": "2026-12-06T08:00:00.000+0000"},
            "configuration": {"metrics": []}
        }
    })
}

/// An RDS DB instance event as EventBridge delivers it.
pub fn rds_event(instance: &str, category: &str, event_id: &str) -> Value {
    json!({
        "version": "0",
        "id": "68f6e973-1a0c-d37b-f2f2-94a7f62ffd4e",
        "detail-type": "RDS DB Instance Event",
        "source": "aws.rds",
        "account": "123456789012",
        "time": "2026-12-06T09:00:00Z",
        "region": REGION,
        "resources": [format!("arn:aws:rds:us-east-1:123456789012:db:{instance}")],
        "detail": {
            "EventCategories": [category],
            "SourceType": "DB_INSTANCE",
            "SourceArn": format!("arn:aws:rds:us-east-1:123456789012:db:{instance}"),
            "Date": "2026-12-06T09:00:00.000Z",
            "Message": "DB instance has failed",
            "SourceIdentifier": instance,
            "EventID": event_id
        }
    })
}

impl Drop for Rig {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("--- function log(s) ---\n{}", self.function_logs());
        }
    }
}
