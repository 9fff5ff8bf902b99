//! `auth=rds_iam` against real MariaDB over verified TLS: what reaches the server is the
//! token, sent with the clear-text plugin.
//!
//! RDS's own IAM check cannot run here. Instead the server checks the token byte for byte:
//! MariaDB's `cleartext_plugin_server` (the `auth_test_plugin` module of the `mariadb-test`
//! package) asks the client for its password with `mysql_clear_password` and compares it with
//! the account's authentication string. The account accepts the tokens
//! `drfailover_aws::rds_iam::auth_token` makes for this endpoint, user, region and keys at each
//! second of a short window around the login (a token carries its signing second); that
//! function is checked byte for byte against botocore in drfailover-aws's tests.

use std::time::{Duration, SystemTime};

use drfailover_aws::rds_iam::auth_token;
use drfailover_conn::{Client, Error};
use drfailover_testkit::moto::{test_identity, use_test_keys};
use drfailover_testkit::{Topology, APP_DATABASE};

const REGION: &str = "eu-west-1";
const IAM_USER: &str = "iam_app";
const PLUGIN: &str = "/usr/lib/mysql/plugin/auth_test_plugin.so";
/// Seconds of tokens the account accepts, from just before the account is made.
const WINDOW: u64 = 60;

fn topology_with_iam_account(region: &str) -> Topology {
    assert!(
        std::path::Path::new(PLUGIN).exists(),
        "{PLUGIN} not found: the RDS IAM test needs MariaDB's test authentication plugins \
         (apt-get install mariadb-test; scripts/deps installs it)"
    );
    let topo = Topology::primary_replica_tls()
        .unwrap_or_else(|e| panic!("cannot start MariaDB TLS topology: {e}"));
    let node = topo.node(0);
    node.sql("INSTALL SONAME 'auth_test_plugin'").unwrap();
    let start = SystemTime::now() - Duration::from_secs(2);
    let via: Vec<String> = (0..WINDOW)
        .map(|s| {
            let token = auth_token(
                &test_identity(),
                region,
                &node.ip().to_string(),
                node.port(),
                IAM_USER,
                start + Duration::from_secs(s),
            )
            .unwrap();
            format!("cleartext_plugin_server USING '{token}'")
        })
        .collect();
    for statement in [
        "SET sql_log_bin=0".to_string(),
        format!(
            "CREATE USER '{IAM_USER}'@'127.%' IDENTIFIED VIA {}",
            via.join(" OR ")
        ),
        format!("GRANT SELECT, INSERT, CREATE ON {APP_DATABASE}.* TO '{IAM_USER}'@'127.%'"),
    ] {
        node.sql_batch(&[statement.as_str()]).unwrap();
    }
    topo
}

fn iam_dsn(topo: &Topology, extra: &str) -> String {
    let node = topo.node(0);
    format!(
        "mysql://{IAM_USER}@{}/{APP_DATABASE}?auth=rds_iam&region={REGION}&probe_interval_ms=100&{extra}",
        node.addr()
    )
}

#[test]
fn the_token_reaches_the_server_in_clear_text_over_verified_tls() {
    use_test_keys();
    let topo = topology_with_iam_account(REGION);
    let ca = topo.pki().unwrap().ca.display().to_string();
    let client = Client::connect_dsn(&iam_dsn(&topo, &format!("ssl_mode=VERIFY_CA&ssl_ca={ca}")))
        .expect("log in with an RDS IAM token");
    client.wait_ready(Duration::from_secs(10)).expect("writer");
    client
        .query("CREATE TABLE iam (id INT PRIMARY KEY)")
        .unwrap();
    client.query("INSERT INTO iam VALUES (1)").unwrap();
    let who = client.query("SELECT CURRENT_USER()").unwrap();
    assert_eq!(who.text(0, 0), Some(format!("{IAM_USER}@127.%").as_str()));
    // The session is encrypted.
    let cipher = client
        .query("SHOW SESSION STATUS LIKE 'Ssl_cipher'")
        .unwrap();
    assert!(!cipher.text(0, 1).unwrap_or("").is_empty(), "not TLS");
    client.close();
}

#[test]
fn a_token_for_another_region_is_refused_by_the_server() {
    use_test_keys();
    // The account accepts tokens signed for us-east-1 only; the client signs for eu-west-1.
    let topo = topology_with_iam_account("us-east-1");
    let ca = topo.pki().unwrap().ca.display().to_string();
    match Client::connect_dsn(&iam_dsn(&topo, &format!("ssl_mode=VERIFY_CA&ssl_ca={ca}"))) {
        Err(e @ Error::Auth(_)) => {
            let m = e.to_string();
            assert!(
                m.contains(IAM_USER) && !m.contains("X-Amz-Signature"),
                "{m}"
            );
        }
        other => panic!("expected the server to refuse the login, got {other:?}"),
    }
}

#[test]
fn rds_iam_needs_verified_tls_and_a_user() {
    use_test_keys();
    for mode in ["DISABLED", "PREFERRED", "REQUIRED"] {
        let err = Client::connect_dsn(&format!(
            "mysql://{IAM_USER}@127.0.0.1:9/app?auth=rds_iam&region={REGION}&ssl_mode={mode}"
        ))
        .unwrap_err();
        let m = err.to_string();
        assert!(matches!(err, Error::Config(_)), "{m}");
        assert!(m.contains("rds_iam") && m.contains("VERIFY_CA"), "{m}");
    }
    let err = Client::connect_dsn(
        "mysql://127.0.0.1:9/app?auth=rds_iam&ssl_mode=VERIFY_CA&ssl_ca=/etc/hostname",
    )
    .unwrap_err()
    .to_string();
    assert!(err.contains("needs a `user`"), "{err}");
    let err = drfailover_conn::Config::from_dsn("mysql://u@h/app?auth=kerberos")
        .unwrap_err()
        .to_string();
    assert!(err.contains("password, rds_iam"), "{err}");
}
