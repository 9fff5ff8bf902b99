//! TLS policies (MySQL's ssl-mode vocabulary) against real TLS servers with a test CA.
//! Node 0's certificate names its address; node 1's names another (192.0.2.1).

use std::path::Path;
use std::time::Duration;

use drfailover_mysql::{ConnectOptions, Connection, Deadline, ErrorClass, SslMode};
use drfailover_testkit::{Topology, APP_PASSWORD, APP_USER};

#[test]
fn ssl_modes_encrypt_and_verify_as_mysql_defines_them() {
    let topo = Topology::primary_replica_tls()
        .unwrap_or_else(|e| panic!("cannot start TLS topology: {e}"));
    let pki = topo.pki().unwrap().clone();
    let attempt = |node: usize, mode: SslMode, ca: &Path| {
        let n = topo.node(node);
        let mut opts = ConnectOptions::tcp(n.ip().to_string(), n.port())
            .user(APP_USER)
            .password(APP_PASSWORD);
        opts.ssl_mode = mode;
        opts.ssl_ca = Some(ca.to_path_buf());
        Connection::connect_within(&opts, Deadline::after(Duration::from_secs(5)))
            .map(|c| c.tls_cipher())
    };
    let (good, other) = (pki.ca.as_path(), pki.other_ca.as_path());
    let plain = |r: Result<Option<String>, drfailover_mysql::Error>| r.unwrap().is_none();
    let encrypted = |r: Result<Option<String>, drfailover_mysql::Error>| r.unwrap().is_some();
    let refused = |r: Result<Option<String>, drfailover_mysql::Error>| {
        r.unwrap_err().class() == ErrorClass::Tls
    };
    for node in [0, 1] {
        assert!(plain(attempt(node, SslMode::Disabled, good)));
        // PREFERRED / REQUIRED encrypt without checking certificates (even with a wrong CA).
        assert!(encrypted(attempt(node, SslMode::Preferred, other)));
        assert!(encrypted(attempt(node, SslMode::Required, other)));
        // VERIFY_CA checks the chain, not the name.
        assert!(encrypted(attempt(node, SslMode::VerifyCa, good)));
        assert!(refused(attempt(node, SslMode::VerifyCa, other)));
        assert!(refused(attempt(node, SslMode::VerifyIdentity, other)));
    }
    // VERIFY_IDENTITY also checks the name: node 1's certificate is for another address.
    assert!(encrypted(attempt(0, SslMode::VerifyIdentity, good)));
    assert!(refused(attempt(1, SslMode::VerifyIdentity, good)));
}

#[test]
fn required_tls_against_a_plain_server_is_a_tls_error() {
    let topo = Topology::primary_replica().unwrap_or_else(|e| panic!("cannot start MariaDB: {e}"));
    let n = topo.node(0);
    let mut opts = ConnectOptions::tcp(n.ip().to_string(), n.port())
        .user(APP_USER)
        .password(APP_PASSWORD);
    assert_eq!(
        Connection::connect(&opts).unwrap().tls_cipher(),
        None,
        "PREFERRED falls back to plain text"
    );
    opts.ssl_mode = SslMode::Required;
    let err = Connection::connect(&opts).unwrap_err();
    assert_eq!(err.class(), ErrorClass::Tls, "{err}");
}
