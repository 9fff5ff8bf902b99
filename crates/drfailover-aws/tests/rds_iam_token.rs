//! The RDS IAM token matches botocore's `generate_db_auth_token` byte for byte, for fixed
//! credentials (with and without a session token), region, endpoint, user and time. botocore
//! comes from the virtualenv `scripts/deps` makes (`$DRFAILOVER_VENV`, default
//! `/opt/drfailover-venv`), the one moto runs from.

use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, SystemTime};

use aws_credential_types::Credentials;
use drfailover_aws::credentials::AwsIdentity;
use drfailover_aws::rds_iam::auth_token;

fn python() -> PathBuf {
    let venv = std::env::var_os("DRFAILOVER_VENV")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/opt/drfailover-venv"));
    let python = venv.join("bin/python");
    assert!(
        python.exists(),
        "{} not found: the RDS IAM token test compares with botocore from the virtualenv that \
         scripts/deps creates (run scripts/deps as root, or set DRFAILOVER_VENV)",
        python.display()
    );
    python
}

fn botocore(args: &[&str]) -> String {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/botocore_token.py");
    let out = Command::new(python())
        .arg(script)
        .args(args)
        .output()
        .expect("run python");
    assert!(
        out.status.success(),
        "botocore_token.py failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

/// Access key, secret key, session token (empty: none), region, host, port, user, Unix time.
type Case = (
    &'static str,
    &'static str,
    &'static str,
    &'static str,
    &'static str,
    u16,
    &'static str,
    u64,
);

#[test]
fn token_is_byte_for_byte_botocores() {
    let cases: &[Case] = &[
        (
            "AKIDEXAMPLE",
            "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
            "",
            "us-east-1",
            "db.example.com",
            3306,
            "app",
            1_700_000_000,
        ),
        (
            "ASIAEXAMPLE",
            "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
            "IQoJb3JpZ2luX2VjE+/=session/token",
            "eu-west-1",
            "prod.cluster-abc.eu-west-1.rds.amazonaws.com",
            3307,
            "app user+1@x",
            1_796_569_199,
        ),
        (
            "AKIDEXAMPLE",
            "secret",
            "tok",
            "ap-southeast-2",
            "10.0.0.5",
            13306,
            "iam_app",
            946_684_800,
        ),
    ];
    for &(akid, secret, token, region, host, port, user, epoch) in cases {
        let identity = AwsIdentity {
            credentials: Credentials::new(
                akid,
                secret,
                (!token.is_empty()).then(|| token.to_string()),
                None,
                "test",
            ),
            source: "test".into(),
        };
        let time = SystemTime::UNIX_EPOCH + Duration::from_secs(epoch);
        let ours = auth_token(&identity, region, host, port, user, time).unwrap();
        let theirs = botocore(&[
            akid,
            secret,
            token,
            region,
            host,
            &port.to_string(),
            user,
            &epoch.to_string(),
        ]);
        assert_eq!(ours, theirs, "token for {user}@{host}:{port} in {region}");
        assert!(!ours.contains(secret));
    }
}
