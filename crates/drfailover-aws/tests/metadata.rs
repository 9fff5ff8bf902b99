//! The credential chain against a local metadata server started by the harness
//! (`drfailover_testkit::metadata_server`): the IMDSv2 token flow, expiry-aware caching, the container
//! endpoint with its authorization token, and bounded costs when the endpoint is down or
//! silent. Never the real 169.254.169.254: every test points the endpoint at loopback.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use drfailover_aws::CredentialChain;
use drfailover_testkit::metadata_server::{MetadataServer, CONTAINER_TOKEN, ROLE, SECRET_KEY};

/// An environment with only `pairs` (no keys, no home: the files hold nothing).
fn env(pairs: &[(&str, String)]) -> impl Fn(&str) -> Option<String> {
    let map: BTreeMap<String, String> = pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.clone()))
        .collect();
    move |name| map.get(name).cloned()
}

fn soon() -> Instant {
    Instant::now() + Duration::from_secs(10)
}

#[test]
fn instance_metadata_imdsv2_flow_and_expiry_aware_cache() {
    let imds = MetadataServer::start(Duration::from_secs(3600));
    let chain = CredentialChain::new(
        None,
        &env(&[("AWS_EC2_METADATA_SERVICE_ENDPOINT", imds.endpoint())]),
    );
    let id = chain
        .get(soon())
        .expect("credentials from instance metadata");
    assert_eq!(id.credentials.access_key_id(), "ASIATEST1");
    assert_eq!(id.credentials.session_token(), Some("session-token-1"));
    assert!(
        id.source.contains("instance metadata") && id.source.contains(ROLE),
        "{}",
        id.source
    );
    // The IMDSv2 flow: a session token first (with its TTL), then every GET carries it.
    let seen = imds.seen();
    assert_eq!(seen.len(), 3, "{seen:?}");
    assert_eq!(
        (seen[0].method.as_str(), seen[0].path.as_str()),
        ("PUT", "/latest/api/token")
    );
    assert!(seen[0].ttl.is_some());
    assert!(
        seen[1..]
            .iter()
            .all(|s| s.method == "GET" && s.status == 200),
        "{seen:?}"
    );
    assert!(seen[1..]
        .iter()
        .all(|s| s.token.as_deref() == seen[1].token.as_deref() && s.token.is_some()));

    // Valid for an hour: cached, no request.
    assert_eq!(
        chain.get(soon()).unwrap().credentials.access_key_id(),
        "ASIATEST1"
    );
    assert_eq!(imds.seen().len(), 3);

    // Keys that expire within the refresh margin are looked up again before use.
    imds.set_lifetime(Duration::from_secs(120));
    chain.forget();
    assert_eq!(
        chain.get(soon()).unwrap().credentials.access_key_id(),
        "ASIATEST2"
    );
    assert_eq!(
        chain.get(soon()).unwrap().credentials.access_key_id(),
        "ASIATEST3"
    );
    assert_eq!(imds.seen().len(), 9);
    // Never the secret key in what the chain shows.
    assert!(!format!("{chain:?} {}", chain.describe()).contains(SECRET_KEY));
}

#[test]
fn container_endpoint_with_authorization_token() {
    let server = MetadataServer::start(Duration::from_secs(3600));
    let dir = tempfile::tempdir().unwrap();
    let token_file = dir.path().join("token");
    std::fs::write(&token_file, format!("{CONTAINER_TOKEN}\n")).unwrap();
    for pairs in [
        vec![
            ("AWS_CONTAINER_CREDENTIALS_FULL_URI", server.container_uri()),
            (
                "AWS_CONTAINER_AUTHORIZATION_TOKEN",
                CONTAINER_TOKEN.to_string(),
            ),
        ],
        vec![
            ("AWS_CONTAINER_CREDENTIALS_FULL_URI", server.container_uri()),
            (
                "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE",
                token_file.display().to_string(),
            ),
        ],
    ] {
        let chain = CredentialChain::new(None, &env(&pairs));
        let id = chain.get(soon()).expect("container credentials");
        assert!(id.credentials.access_key_id().starts_with("ASIATEST"));
        assert!(id.source.contains("container endpoint"), "{}", id.source);
    }
    // A wrong token: a clear credentials error naming the endpoint, not the token.
    let chain = CredentialChain::new(
        None,
        &env(&[
            ("AWS_CONTAINER_CREDENTIALS_FULL_URI", server.container_uri()),
            ("AWS_CONTAINER_AUTHORIZATION_TOKEN", "wrong-token".into()),
        ]),
    );
    let err = chain.get(soon()).unwrap_err().to_string();
    assert!(err.contains("HTTP 401") && err.contains("/creds"), "{err}");
    assert!(!err.contains("wrong-token"), "{err}");
    // Clear-text credentials off the host are refused before any request.
    let chain = CredentialChain::new(
        None,
        &env(&[(
            "AWS_CONTAINER_CREDENTIALS_FULL_URI",
            "http://192.0.2.1/creds".into(),
        )]),
    );
    let err = chain.get(soon()).unwrap_err().to_string();
    assert!(err.contains("must be https"), "{err}");
}

#[test]
fn unreachable_or_silent_metadata_costs_a_bounded_short_time() {
    // Nothing listens: refused at once.
    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        format!("http://127.0.0.1:{}", l.local_addr().unwrap().port())
    };
    let started = Instant::now();
    let err = CredentialChain::new(None, &env(&[("AWS_EC2_METADATA_SERVICE_ENDPOINT", closed)]))
        .get(soon())
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("no AWS credentials") && err.contains("instance metadata"),
        "{err}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );

    // Accepts and never answers: the SDKs' 1 s timeout, one attempt.
    let imds = MetadataServer::start(Duration::from_secs(3600));
    imds.go_silent();
    let started = Instant::now();
    let err = CredentialChain::new(
        None,
        &env(&[("AWS_EC2_METADATA_SERVICE_ENDPOINT", imds.endpoint())]),
    )
    .get(soon())
    .unwrap_err()
    .to_string();
    let took = started.elapsed();
    eprintln!("silent instance metadata gave up after {took:?}: {err}");
    assert!(err.contains("session token"), "{err}");
    assert!(
        took >= Duration::from_millis(900) && took < Duration::from_secs(3),
        "{took:?}"
    );

    // Disabled: not contacted at all.
    let started = Instant::now();
    let err = CredentialChain::new(None, &env(&[("AWS_EC2_METADATA_DISABLED", "true".into())]))
        .get(soon())
        .unwrap_err()
        .to_string();
    assert!(err.contains("AWS_EC2_METADATA_DISABLED"), "{err}");
    assert!(started.elapsed() < Duration::from_millis(500));
}
