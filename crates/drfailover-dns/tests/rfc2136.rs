//! RFC 2136 updates against a real BIND 9 `named` on loopback, answers checked with a real
//! resolver (hickory-resolver) pointed at it.

use std::net::IpAddr;
use std::time::{Duration, Instant};

use drfailover_dns::aws::AwsError;
use drfailover_dns::{
    AnnounceError, AnnounceOutcome, Announcer, AnnouncerConfig, NodeAddress, Rfc2136Config,
    TsigFailure, WriterChange,
};
use drfailover_testkit::bind::BindServer;

fn ip(text: &str) -> IpAddr {
    text.parse().unwrap()
}

fn bind() -> BindServer {
    BindServer::start("example.test", &[("db", ip("127.0.0.10"))], 1)
        .unwrap_or_else(|e| panic!("{e}"))
}

fn config(server: &BindServer) -> Rfc2136Config {
    match toml::from_str(&server.rfc2136_announcer("db")) {
        Ok(AnnouncerConfig::Rfc2136(config)) => config,
        other => panic!("the testkit's announcer table: {other:?}"),
    }
}

fn build(config: Rfc2136Config) -> Box<dyn Announcer> {
    AnnouncerConfig::Rfc2136(config)
        .build()
        .unwrap_or_else(|e| panic!("{e}"))
}

fn change(old: Option<(&str, &str)>, new: (&str, &str)) -> WriterChange {
    WriterChange {
        old_writer: old.map(|(n, h)| NodeAddress::new(n, h)),
        new_writer: NodeAddress::new(new.0, new.1),
    }
}

fn soon() -> Instant {
    Instant::now() + Duration::from_secs(10)
}

#[test]
fn update_applies_and_resolves() {
    let server = bind();
    let announcer = build(config(&server));
    assert!(announcer.describe().contains("db.example.test."));
    assert_eq!(announcer.current(soon()).unwrap(), ["A 127.0.0.10"]);

    // The orchestrator knows the old writer: compare-and-swap.
    let outcome = announcer
        .announce(
            &change(Some(("db1", "127.0.0.10")), ("db2", "127.0.0.20")),
            soon(),
        )
        .unwrap();
    assert_eq!(
        outcome,
        AnnounceOutcome::Changed {
            published: "A 127.0.0.20".into(),
            attempts: 1
        }
    );
    assert_eq!(
        server.query("db.example.test", "A").unwrap(),
        ["127.0.0.20"]
    );

    // The same announcement again (a retry after a lost reply): nothing to do.
    let again = announcer
        .announce(
            &change(Some(("db1", "127.0.0.10")), ("db2", "127.0.0.20")),
            soon(),
        )
        .unwrap();
    assert!(
        matches!(again, AnnounceOutcome::AlreadyCurrent { .. }),
        "{again:?}"
    );

    // Old writer unknown: read, then swap against what was read.
    let outcome = announcer
        .announce(&change(None, ("db3", "127.0.0.30")), soon())
        .unwrap();
    assert!(
        matches!(outcome, AnnounceOutcome::Changed { .. }),
        "{outcome:?}"
    );
    assert_eq!(
        server.query("db.example.test", "A").unwrap(),
        ["127.0.0.30"]
    );

    // A name gives a CNAME (replacing the A), an IPv6 address an AAAA (replacing the CNAME).
    announcer
        .announce(
            &change(Some(("db3", "127.0.0.30")), ("db4", "db4.example.test")),
            soon(),
        )
        .unwrap();
    assert_eq!(
        server.query("db.example.test", "CNAME").unwrap(),
        ["db4.example.test."]
    );
    announcer
        .announce(
            &change(Some(("db4", "db4.example.test")), ("db5", "::1")),
            soon(),
        )
        .unwrap();
    assert_eq!(server.query("db.example.test", "AAAA").unwrap(), ["::1"]);
    assert_eq!(announcer.current(soon()).unwrap(), ["AAAA ::1"]);
}

#[test]
fn address_map_and_tcp() {
    let server = bind();
    let mut config = config(&server);
    config.tcp = true;
    config.addresses = [("db2".to_string(), "127.0.0.42".to_string())].into();
    let announcer = build(config);
    announcer
        .announce(
            &change(Some(("db1", "127.0.0.10")), ("db2", "10.9.9.9")),
            soon(),
        )
        .unwrap();
    assert_eq!(
        server.query("db.example.test", "A").unwrap(),
        ["127.0.0.42"]
    );
}

#[test]
fn compare_and_swap_loses_when_someone_else_changed_it() {
    let server = bind();
    let ours = build(config(&server));
    let rival = build(config(&server));
    rival
        .announce(
            &change(Some(("db1", "127.0.0.10")), ("db3", "127.0.0.30")),
            soon(),
        )
        .unwrap();
    let err = ours
        .announce(
            &change(Some(("db1", "127.0.0.10")), ("db2", "127.0.0.20")),
            soon(),
        )
        .unwrap_err();
    assert!(err.is_conflict(), "{err}");
    match &err {
        AnnounceError::PrerequisiteFailed {
            expected, found, ..
        } => {
            assert_eq!(expected, &["A 127.0.0.10"]);
            assert_eq!(found, &["A 127.0.0.30"]);
        }
        other => panic!("{other}"),
    }
    assert!(err.to_string().contains("someone else changed it"), "{err}");
    // Not applied: the rival's value stands.
    assert_eq!(
        server.query("db.example.test", "A").unwrap(),
        ["127.0.0.30"]
    );
}

#[test]
fn racing_orchestrators_only_one_wins() {
    let server = bind();
    for round in 0..5 {
        let old = if round == 0 {
            "127.0.0.10".to_string()
        } else {
            server.query("db.example.test", "A").unwrap()[0].clone()
        };
        let results: Vec<Result<AnnounceOutcome, AnnounceError>> = std::thread::scope(|s| {
            let handles: Vec<_> = [format!("127.0.1.{round}"), format!("127.0.2.{round}")]
                .into_iter()
                .map(|new| {
                    let announcer = build(config(&server));
                    let old = old.clone();
                    s.spawn(move || {
                        announcer.announce(&change(Some(("old", &old)), ("new", &new)), soon())
                    })
                })
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).collect()
        });
        let won: Vec<_> = results.iter().filter(|r| r.is_ok()).collect();
        let lost: Vec<_> = results
            .iter()
            .filter(|r| matches!(r, Err(e) if e.is_conflict()))
            .collect();
        assert_eq!((won.len(), lost.len()), (1, 1), "{results:?}");
        let Ok(AnnounceOutcome::Changed { published, .. }) = won[0] else {
            panic!("{results:?}");
        };
        let now = server.query("db.example.test", "A").unwrap();
        assert_eq!(format!("A {}", now[0]), *published);
    }
}

#[test]
fn wrong_key_is_a_clear_error() {
    let server = bind();
    let dir = tempfile::tempdir().unwrap();
    // Right name, wrong secret: BADSIG.
    let wrong_secret = "d3Jvbmctc2VjcmV0LXdyb25nLXNlY3JldC13cm9uZyE=";
    let bad_sig = dir.path().join("badsig.key");
    std::fs::write(
        &bad_sig,
        format!(
            "key \"{}\" {{ algorithm hmac-sha256; secret \"{wrong_secret}\"; }};",
            server.key_name()
        ),
    )
    .unwrap();
    // A key the server does not know: BADKEY.
    let bad_key = dir.path().join("badkey.key");
    std::fs::write(
        &bad_key,
        format!("key \"stranger\" {{ algorithm hmac-sha256; secret \"{wrong_secret}\"; }};"),
    )
    .unwrap();
    let mut printed = String::new();
    for (file, want) in [
        (bad_sig, TsigFailure::BadSig),
        (bad_key, TsigFailure::BadKey),
    ] {
        let mut config = config(&server);
        config.key_file = file;
        let announcer = build(config);
        printed += &format!("{announcer:?}\n{}\n", announcer.describe());
        let started = Instant::now();
        let err = announcer
            .announce(
                &change(Some(("db1", "127.0.0.10")), ("db2", "127.0.0.20")),
                soon(),
            )
            .unwrap_err();
        assert!(started.elapsed() < Duration::from_secs(2), "retried?");
        match &err {
            AnnounceError::Tsig { failure, .. } => assert_eq!(*failure, want, "{err}"),
            other => panic!("expected a TSIG error, got {other}"),
        }
        printed += &format!("{err}\n{err:?}\n");
    }
    assert!(
        printed.contains("BADSIG") && printed.contains("BADKEY"),
        "{printed}"
    );
    for secret in [wrong_secret, server.key_secret()] {
        assert!(!printed.contains(secret), "secret printed:\n{printed}");
    }
    assert_eq!(
        server.query("db.example.test", "A").unwrap(),
        ["127.0.0.10"]
    );
}

#[test]
fn unknown_zone_is_notauth() {
    let server = bind();
    let mut config = config(&server);
    config.zone = "other.test".into();
    config.name = "db.other.test".into();
    let err = build(config)
        .announce(
            &change(Some(("db1", "127.0.0.10")), ("db2", "127.0.0.20")),
            soon(),
        )
        .unwrap_err();
    assert!(
        matches!(err, AnnounceError::NotAuthoritative { .. }),
        "{err}"
    );
    assert!(err.to_string().contains("other.test"), "{err}");

    // A name outside the zone is refused before anything is sent.
    let mut config = self::config(&server);
    config.name = "db.elsewhere.test".into();
    let err = AnnouncerConfig::Rfc2136(config).build().unwrap_err();
    assert!(err.to_string().contains("not inside zone"), "{err}");
}

#[test]
fn server_down_is_a_bounded_timeout() {
    let mut server = bind();
    let mut config = config(&server);
    config.timeout_ms = 200;
    let announcer = build(config);
    server.stop();
    let started = Instant::now();
    let err = announcer
        .announce(
            &change(Some(("db1", "127.0.0.10")), ("db2", "127.0.0.20")),
            started + Duration::from_secs(5),
        )
        .unwrap_err();
    let took = started.elapsed();
    assert!(
        matches!(
            err,
            AnnounceError::Call(AwsError::Timeout { attempts: 3, .. })
        ),
        "{err}"
    );
    assert!(took < Duration::from_secs(3), "took {took:?}");
    assert!(
        err.to_string().contains(&server.address().to_string()),
        "{err}"
    );

    // A deadline shorter than the attempts: kept.
    let started = Instant::now();
    let err = announcer
        .current(started + Duration::from_millis(300))
        .unwrap_err();
    assert!(
        matches!(err, AnnounceError::Call(AwsError::Timeout { .. })),
        "{err}"
    );
    assert!(
        started.elapsed() < Duration::from_millis(600),
        "{:?}",
        started.elapsed()
    );
    let printed = format!("{err}\n{err:?}\n{announcer:?}");
    assert!(!printed.contains(server.key_secret()), "{printed}");
}

#[test]
fn secret_never_in_debug_or_errors() {
    let server = bind();
    let announcer = build(config(&server));
    let mut printed = format!("{announcer:?}\n{}\n", announcer.describe());
    // A failed compare-and-swap, a bad address, an unknown zone.
    for change in [
        change(Some(("db1", "127.0.0.99")), ("db2", "127.0.0.20")),
        change(Some(("db1", "127.0.0.10")), ("db2", "not an address!")),
    ] {
        let err = announcer.announce(&change, soon()).unwrap_err();
        printed += &format!("{err}\n{err:?}\n");
    }
    let mut config = config(&server);
    config.zone = "other.test".into();
    config.name = "db.other.test".into();
    let other = build(config);
    let err = other
        .announce(&change(None, ("db2", "127.0.0.20")), soon())
        .unwrap_err();
    printed += &format!("{other:?}\n{err}\n{err:?}\n");
    assert!(printed.contains("redacted"), "{printed}");
    let secret = server.key_secret();
    assert!(!printed.contains(secret), "secret printed:\n{printed}");
    // Nor its bytes in Debug form.
    let bytes = data_encoding_decode(secret);
    assert!(!printed.contains(&format!("{bytes:?}")), "{printed}");
}

fn data_encoding_decode(b64: &str) -> Vec<u8> {
    // Small base64 decoder for the check above (the test does not depend on data-encoding).
    let alphabet = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut bits = 0u32;
    let mut n = 0;
    let mut out = Vec::new();
    for c in b64.bytes().filter(|c| *c != b'=') {
        let v = alphabet.iter().position(|a| *a == c).unwrap() as u32;
        bits = (bits << 6) | v;
        n += 6;
        if n >= 8 {
            n -= 8;
            out.push((bits >> n) as u8);
            bits &= (1 << n) - 1;
        }
    }
    out
}

#[test]
fn truncated_udp_reply_is_asked_again_over_tcp() {
    // 60 A records: the reply to a query without EDNS exceeds 512 bytes, so BIND sets TC
    // over UDP and the announcer must ask again over TCP to see them all.
    let records: Vec<(String, IpAddr)> = (1..=60)
        .map(|i| ("big".to_string(), ip(&format!("127.0.3.{i}"))))
        .collect();
    let records: Vec<(&str, IpAddr)> = records.iter().map(|(n, a)| (n.as_str(), *a)).collect();
    let server = BindServer::start("example.test", &records, 1).unwrap_or_else(|e| panic!("{e}"));
    let mut config = config(&server);
    config.name = "big.example.test".into();
    let announcer = build(config);
    let current = announcer.current(soon()).unwrap();
    assert_eq!(current.len(), 60, "{current:?}");
    // And a compare-and-swap against a 60-record set is refused with all of them listed.
    let err = announcer
        .announce(
            &change(Some(("db1", "127.0.3.1")), ("db2", "127.0.0.20")),
            soon(),
        )
        .unwrap_err();
    match err {
        AnnounceError::PrerequisiteFailed { found, .. } => assert_eq!(found.len(), 60),
        other => panic!("{other}"),
    }
}
