//! A C program configures `secret_arn` with `dr_config_set` and logs in with the credentials
//! of a secret in moto (Secrets Manager); a deleted secret is `DR_E_CONFIG` naming the key and
//! the ARN, never the password.

use std::process::Command;

use drfailover_testkit::cprog::{built_library_dir, compile_c};
use drfailover_testkit::moto::{with_test_keys, MotoServer};
use drfailover_testkit::{Topology, APP_DATABASE, APP_PASSWORD, APP_USER};

#[test]
fn c_program_logs_in_with_a_secret_set_by_dr_config_set() {
    let build = tempfile::tempdir().unwrap();
    let lib_dir = built_library_dir().unwrap_or_else(|e| panic!("{e}"));
    let program =
        compile_c("tests/c/aws_secret.c", &lib_dir, build.path()).unwrap_or_else(|e| panic!("{e}"));
    let moto = MotoServer::start().unwrap_or_else(|e| panic!("cannot start moto_server: {e}"));
    let topo = Topology::primary_replica().unwrap_or_else(|e| panic!("cannot start MariaDB: {e}"));
    let secret = serde_json::json!({"username": APP_USER, "password": APP_PASSWORD}).to_string();
    let arn = moto.create_secret("c-db", &secret).unwrap();
    let run = |arn: &str| {
        let out = with_test_keys(&mut Command::new(&program))
            .arg(format!("host={}", topo.hosts()))
            .arg(format!("database={APP_DATABASE}"))
            .arg(format!("secret_arn={arn}"))
            .arg(format!("secret_endpoint={}", moto.endpoint()))
            .output()
            .expect("run aws_secret");
        let stdout = String::from_utf8_lossy(&out.stdout).trim().to_string();
        let stderr = String::from_utf8_lossy(&out.stderr).to_string();
        assert!(!stdout.contains(APP_PASSWORD) && !stderr.contains(APP_PASSWORD));
        (out.status.code(), stdout, stderr)
    };
    let (code, stdout, stderr) = run(&arn);
    assert_eq!((code, stdout.as_str()), (Some(0), "ok"), "{stderr}");

    moto.delete_secret(&arn).unwrap();
    let (code, stdout, stderr) = run(&arn);
    assert_eq!(code, Some(3), "{stdout}\n{stderr}");
    assert!(stdout.starts_with("error DR_E_CONFIG "), "{stdout}");
    assert!(
        stdout.contains("`secret_arn`") && stdout.contains(&arn),
        "{stdout}"
    );
}
