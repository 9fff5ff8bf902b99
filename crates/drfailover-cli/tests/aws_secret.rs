//! The CLI logs in with credentials from AWS Secrets Manager (`secret_arn` in the DSN), against
//! moto's server and real MariaDB; a missing secret is a clear error naming the key and ARN.

use std::process::Command;

use drfailover_testkit::moto::{with_test_keys, MotoServer};
use drfailover_testkit::{Topology, APP_DATABASE, APP_PASSWORD, APP_USER};

/// The CLI with fixed test keys (moto accepts any) and never the real instance metadata.
fn bin() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_drfailover"));
    with_test_keys(&mut cmd);
    cmd
}

#[test]
fn probe_logs_in_with_the_secret() {
    let moto = MotoServer::start().unwrap_or_else(|e| panic!("cannot start moto_server: {e}"));
    let topo = Topology::primary_replica().unwrap_or_else(|e| panic!("cannot start MariaDB: {e}"));
    let secret = serde_json::json!({"username": APP_USER, "password": APP_PASSWORD}).to_string();
    let arn = moto.create_secret("cli-db", &secret).unwrap();
    let dsn = |arn: &str| {
        format!(
            "mysql://{}/{APP_DATABASE}?secret_arn={arn}&secret_endpoint={}",
            topo.hosts(),
            moto.endpoint()
        )
    };
    let out = bin()
        .args(["probe", "--json", &dsn(&arn)])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stdout}\n{stderr}");
    let v: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(v["writer_found"], true, "{v}");
    assert_eq!(v["endpoints"][0]["role"], "writer", "{v}");
    assert!(!stdout.contains(APP_PASSWORD) && !stderr.contains(APP_PASSWORD));

    moto.delete_secret(&arn).unwrap();
    let out = bin().args(["probe", &dsn(&arn)]).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("`secret_arn`") && stderr.contains(&arn),
        "{stderr}"
    );
    assert!(!stderr.contains(APP_PASSWORD), "{stderr}");
}
