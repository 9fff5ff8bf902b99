//! Session restore, bad configuration and a legacy program, under the preload library
//! against real servers.

mod common;

use std::time::Duration;

use common::*;
use drfailover_testkit::{Topology, APP_DATABASE, APP_PASSWORD, APP_USER};

/// What the program set through the API (database chosen after connecting, character set,
/// `MYSQL_INIT_COMMAND`, autocommit off) is what the new primary's session has too.
#[test]
fn the_session_set_through_the_api_is_restored_on_the_new_primary() {
    let dir = tempfile::tempdir().expect("temp dir");
    let probe = build_c_program("session_probe", dir.path(), None);
    let mut topo = Topology::primary_replica().expect("MariaDB topology (install mariadb-server)");
    let node = topo.node(0);
    let args = node_args(&topo, 0, &[APP_DATABASE, "5"]);
    let old_address = node.ip().to_string();
    let new_address = topo.node(1).ip().to_string();
    let mut program =
        Program::spawn(&probe, &args, &preload_env(&topo)).expect("start the program");
    program
        .wait_for("state ", 5, Duration::from_secs(60))
        .unwrap();
    PrimaryFault::Kill9
        .inflict(&mut topo)
        .expect("kill -9 and promotion");
    let status = program.wait(Duration::from_secs(90)).unwrap();
    assert!(
        status.success(),
        "the program died: {status}\n{}",
        program.stderr()
    );
    let states: Vec<Vec<String>> = program
        .lines()
        .iter()
        .filter_map(|(_, l)| l.strip_prefix("state "))
        .map(|l| l.split_whitespace().map(str::to_owned).collect())
        .collect();
    let session = |s: &Vec<String>| s[1..].to_vec();
    let expected = vec![
        APP_DATABASE.to_owned(),
        "latin1".to_owned(),
        "42".to_owned(),
        "0".to_owned(),
    ];
    assert!(states.iter().any(|s| s[0] == old_address), "{states:?}");
    let after: Vec<&Vec<String>> = states.iter().filter(|s| s[0] == new_address).collect();
    assert!(
        !after.is_empty(),
        "the program never reached the new primary: {states:?}"
    );
    for s in &states {
        assert_eq!(session(s), expected, "session differs on {}", s[0]);
    }
    assert!(
        program.count("fail ") <= 2,
        "more than the in-flight statement (and its COMMIT) failed"
    );
}

/// A bad configuration is one line on stderr naming the problem, never a secret; the
/// program then works exactly as without the library.
#[test]
fn bad_configuration_is_one_line_then_pass_through() {
    let dir = tempfile::tempdir().expect("temp dir");
    let writer = build_c_program("acked_writer", dir.path(), None);
    let topo = Topology::primary_replica().expect("MariaDB topology (install mariadb-server)");
    create_ack_table(&topo, 0).expect("create the table");
    let hosts = topo.hosts();
    let cases = [
        (
            "mysql://app:hunter2-secret@".to_owned(),
            None,
            "DRFAILOVER_DSN",
        ),
        (
            format!("mysql://app:hunter2-secret@{hosts}/app?no_such_key=1"),
            None,
            "no_such_key",
        ),
        (
            format!("mysql://app@{hosts}/app?password_file=/nonexistent/db-password-file"),
            None,
            "password_file",
        ),
        (
            format!("mysql://app:hunter2-secret@{hosts}/app"),
            Some("a b:x"),
            "DRFAILOVER_ALIAS",
        ),
    ];
    for (dsn, alias, names) in cases {
        let mut env = vec![
            (
                "LD_PRELOAD".to_owned(),
                preload_library().to_string_lossy().into_owned(),
            ),
            ("DRFAILOVER_DSN".to_owned(), dsn.clone()),
        ];
        if let Some(alias) = alias {
            env.push(("DRFAILOVER_ALIAS".to_owned(), alias.to_owned()));
        }
        let mut program =
            Program::spawn(&writer, &acked_writer_args(&topo, 0, 2, 0.5, "auto"), &env)
                .expect("start the program");
        let status = program.wait(Duration::from_secs(60)).unwrap();
        let stderr = program.stderr();
        assert!(
            status.success(),
            "{dsn}: the program died: {status}\n{stderr}"
        );
        let ours: Vec<&str> = stderr
            .lines()
            .filter(|l| l.starts_with("drfailover-preload:"))
            .collect();
        assert_eq!(
            ours.len(),
            1,
            "{dsn}: exactly one line expected, got:\n{stderr}"
        );
        assert!(
            ours[0].contains(names),
            "{dsn}: the line does not name `{names}`: {}",
            ours[0]
        );
        assert!(
            !stderr.contains("hunter2"),
            "{dsn}: a secret was printed: {stderr}"
        );
        let (acks, fails) = done_line(&program.lines()).expect("the program printed its done line");
        assert!(
            acks > 0 && fails == 0,
            "{dsn}: pass-through did not work: {acks} acks, {fails} fails"
        );
    }
}

/// `c-examples/legacy_monitor.c`, built unchanged, configured with the old primary's
/// address after it died: the library connects it to the new primary, none of its writes
/// fails, and every write it saw acknowledged is there, once.
#[test]
fn legacy_monitor_built_unchanged_reaches_the_new_primary() {
    let dir = tempfile::tempdir().expect("temp dir");
    let source = drfailover_testkit::cprog::workspace_root().join("c-examples/legacy_monitor.c");
    let program_path =
        build_c(&source, &dir.path().join("legacy_monitor"), None).expect("build legacy_monitor");
    let mut topo = Topology::primary_replica().expect("MariaDB topology (install mariadb-server)");
    let node = topo.node(0);
    let args: Vec<String> = vec![
        format!("{}:{}", node.ip(), node.port()),
        APP_USER.into(),
        APP_DATABASE.into(),
        "1".into(),
    ];
    PrimaryFault::Kill9
        .inflict(&mut topo)
        .expect("kill -9 and promotion");
    let mut env = preload_env(&topo);
    env.push(("MYSQL_PWD".into(), APP_PASSWORD.into()));
    let mut program = Program::spawn(&program_path, &args, &env).expect("start legacy_monitor");
    let status = program.wait(Duration::from_secs(120)).unwrap();
    let stderr = program.stderr();
    assert!(
        status.success(),
        "legacy_monitor failed: {status}\n{stderr}"
    );
    let lines = program.lines();
    let summary = lines
        .iter()
        .find_map(|(_, l)| l.strip_prefix("before (hand-written monitor): "))
        .unwrap_or_else(|| panic!("no summary line in {lines:?}\n{stderr}"));
    let number_before = |word: &str| -> u64 {
        let mut previous = None;
        for token in summary.split([' ', ',', ';']) {
            if token == word {
                return previous.expect("a number before the word");
            }
            previous = token.parse().ok();
        }
        panic!("no `{word}` in {summary:?}")
    };
    let (acked, failed) = (number_before("acknowledged"), number_before("failed"));
    assert!(acked > 0, "nothing acknowledged: {summary}\n{stderr}");
    assert_eq!(failed, 0, "writes failed: {summary}\n{stderr}");
    let on_new_primary = topo
        .node(1)
        .sql_value(&format!(
            "SELECT CONCAT(COUNT(*), '/', COUNT(DISTINCT id)) FROM {APP_DATABASE}.t"
        ))
        .expect("count")
        .unwrap_or_default();
    assert_eq!(
        on_new_primary,
        format!("{acked}/{acked}"),
        "every acknowledged write on the new primary, once (rows/distinct ids)"
    );
}
