//! `drfailover dns --config FILE show|set` against a real BIND on loopback.

use std::process::{Command, Output};

use drfailover_testkit::bind::BindServer;

fn run(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_drfailover"))
        .args(args)
        .output()
        .expect("run drfailover")
}

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

#[test]
fn show_and_set_from_the_orchestrator_file() {
    let server = BindServer::start("example.test", &[("db", "127.0.0.10".parse().unwrap())], 1)
        .unwrap_or_else(|e| panic!("{e}"));
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("orchestrator.toml");
    // Other sections (the orchestrator's own) do not matter to `dns`.
    std::fs::write(
        &file,
        format!(
            r#"
[orchestrator]
something = "the dns command does not read"

[[nodes]]
name = "db1"

[[announce]]
kind = "rfc2136"
server = "{}"
zone = "example.test"
name = "db.example.test"
ttl = 1
key_file = "{}"
addresses = {{ db3 = "127.0.0.33" }}
"#,
            server.address(),
            server.key_file().display()
        ),
    )
    .unwrap();
    let config = file.to_str().unwrap();
    let mut printed = String::new();

    let out = run(&["dns", "--config", config, "show"]);
    printed += &text(&out);
    assert!(out.status.success(), "{}", text(&out));
    assert!(text(&out).contains("A 127.0.0.10"), "{}", text(&out));

    let out = run(&[
        "dns",
        "--config",
        config,
        "set",
        "--node",
        "db2",
        "--host",
        "127.0.0.20",
        "--old",
        "127.0.0.10",
    ]);
    printed += &text(&out);
    assert!(out.status.success(), "{}", text(&out));
    assert!(
        text(&out).contains("changed to A 127.0.0.20"),
        "{}",
        text(&out)
    );
    assert_eq!(
        server.query("db.example.test", "A").unwrap(),
        ["127.0.0.20"]
    );

    // A stale --old: someone else changed it; exit 1, record untouched.
    let out = run(&[
        "dns",
        "--config",
        config,
        "set",
        "--node",
        "db4",
        "--host",
        "127.0.0.40",
        "--old",
        "127.0.0.10",
    ]);
    printed += &text(&out);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(
        text(&out).contains("someone else changed it"),
        "{}",
        text(&out)
    );
    assert_eq!(
        server.query("db.example.test", "A").unwrap(),
        ["127.0.0.20"]
    );

    // No --old: read then swap; the address map overrides the host of db3.
    let out = run(&[
        "dns", "--config", config, "set", "--node", "db3", "--host", "10.1.1.1",
    ]);
    printed += &text(&out);
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(
        server.query("db.example.test", "A").unwrap(),
        ["127.0.0.33"]
    );

    assert!(
        !printed.contains(server.key_secret()),
        "secret printed:\n{printed}"
    );
}

#[test]
fn configuration_errors_exit_2_with_a_clear_message() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("bad.toml");
    let config = file.to_str().unwrap();
    for (body, expect) in [
        ("[orchestrator]\n", "no [[announce]] table"),
        ("[[announce]]\nkind = \"carrier-pigeon\"\n", "carrier-pigeon"),
        (
            "[[announce]]\nkind = \"rfc2136\"\nserver = \"127.0.0.1\"\nzone = \"example.test\"\nname = \"db.example.test\"\nkey_file = \"/nonexistent/key\"\n",
            "/nonexistent/key",
        ),
        (
            "[[announce]]\nkind = \"rfc2136\"\nserver = \"127.0.0.1\"\nzone = \"example.test\"\nname = \"db.example.test\"\nkey_file = \"k\"\nttl_s = 3\n",
            "ttl_s",
        ),
        ("not toml [", "not valid TOML"),
    ] {
        std::fs::write(&file, body).unwrap();
        let out = run(&["dns", "--config", config, "show"]);
        assert_eq!(out.status.code(), Some(2), "{body}: {}", text(&out));
        assert!(text(&out).contains(expect), "{body}: {}", text(&out));
    }
}

#[test]
fn readme_configuration_parses() {
    let readme = include_str!("../../../docs/orchestrator.md");
    let section = readme
        .split("## Announcing a failover in DNS")
        .nth(1)
        .expect("docs/orchestrator.md section");
    let block = section
        .split("```toml\n")
        .nth(1)
        .and_then(|b| b.split("```").next())
        .expect("toml block");
    let value: toml::Value = toml::from_str(block).unwrap_or_else(|e| panic!("{e}\n{block}"));
    let tables = value["announce"].as_array().unwrap();
    assert_eq!(tables.len(), 2);
    for table in tables {
        let _: drfailover_dns::AnnouncerConfig = table
            .clone()
            .try_into()
            .unwrap_or_else(|e| panic!("{e}\n{table}"));
    }
    let _: drfailover_dns::SnsConfig = value["sns"].clone().try_into().unwrap();
}

#[test]
fn show_never_prints_the_aws_access_key() {
    let moto = drfailover_testkit::moto::MotoServer::start().unwrap_or_else(|e| panic!("{e}"));
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("orchestrator.toml");
    std::fs::write(
        &file,
        format!(
            "[[announce]]\nkind = \"route53\"\nhosted_zone_id = \"Z0123456789ABCDEFGHIJ\"\nname = \"db.example.test\"\nendpoint = \"{}\"\ntimeout_ms = 2000\nattempts = 1\n",
            moto.endpoint()
        ),
    )
    .unwrap();
    let (key_id, secret) = (
        "AKIAEXAMPLEKEY7WXYZ",
        "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
    );
    let out = Command::new(env!("CARGO_BIN_EXE_drfailover"))
        .args(["dns", "--config", file.to_str().unwrap(), "show"])
        .env("AWS_ACCESS_KEY_ID", key_id)
        .env("AWS_SECRET_ACCESS_KEY", secret)
        .env_remove("AWS_SESSION_TOKEN")
        .output()
        .expect("run drfailover");
    let printed = text(&out);
    assert!(printed.contains("route53 db.example.test"), "{printed}");
    assert!(printed.contains("…WXYZ"), "{printed}");
    assert!(
        !printed.contains(key_id),
        "access key id printed:\n{printed}"
    );
    assert!(!printed.contains(secret), "secret printed:\n{printed}");
}

#[test]
fn secrets_in_broken_files_are_never_printed() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("bad.toml");
    let config = file.to_str().unwrap();
    // An inline password with a syntax error (unterminated string).
    std::fs::write(
        &file,
        "[credentials]\nuser = \"orc\"\npassword = \"hunter2-s3cr3t\n\n[[announce]]\nkind = \"rfc2136\"\n",
    )
    .unwrap();
    let out = run(&["dns", "--config", config, "show"]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(text(&out).contains("line 3"), "{}", text(&out));
    assert!(!text(&out).contains("hunter2"), "{}", text(&out));
    // A TSIG key file whose key material lost its `secret` keyword.
    let key = dir.path().join("tsig.key");
    let material = "c2VjcmV0LXNlY3JldC1zZWNyZXQtc2VjcmV0LXNlY3I=";
    std::fs::write(
        &key,
        format!("key \"k\" {{\n\talgorithm hmac-sha256;\n\t\"{material}\";\n}};\n"),
    )
    .unwrap();
    std::fs::write(
        &file,
        format!(
            "[[announce]]\nkind = \"rfc2136\"\nserver = \"127.0.0.1:53\"\nzone = \"example.test\"\nname = \"db.example.test\"\nkey_file = \"{}\"\n",
            key.display()
        ),
    )
    .unwrap();
    let out = run(&["dns", "--config", config, "show"]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(text(&out).contains("tsig.key"), "{}", text(&out));
    assert!(!text(&out).contains(&material[..12]), "{}", text(&out));
}
