//! A program of ours (plain libmariadb, no drfailover code) under the preload library through
//! a switchover made by the real orchestrator: `drfailover orchestrate` leading the topology,
//! `drfailover switchover --daemon … --token-file …` asking it. Only statements in flight may
//! fail, and every acknowledged write is on the new primary exactly once.

mod common;

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use common::*;
use drfailover_testkit::{eventually, Topology};

const THREADS: u32 = 4;

/// The `drfailover` command, built for this test run with the test binary's profile and
/// target directory (another crate's binary is not built for this crate's tests). Blocking:
/// seconds when fresh, a build otherwise.
fn drfailover_command() -> PathBuf {
    drfailover_testkit::cprog::built_artifact(
        "drfailover-cli",
        &["--bin", "drfailover"],
        "drfailover",
    )
    .expect("build the drfailover command")
}

/// A `drfailover orchestrate` process, killed on drop.
struct Orchestrator(Child);

impl Drop for Orchestrator {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The body of `GET path` from the orchestrator's control endpoint, if it answered.
fn get(listen: &str, path: &str) -> Option<String> {
    let agent = ureq::Agent::new_with_config(
        ureq::Agent::config_builder()
            .proxy(None)
            .timeout_global(Some(Duration::from_secs(5)))
            .build(),
    );
    let mut answer = agent.get(format!("http://{listen}{path}")).call().ok()?;
    answer.body_mut().read_to_string().ok()
}

#[test]
fn autocommit_writes_survive_a_switchover_by_the_orchestrator() {
    let drfailover = drfailover_command();
    let dir = tempfile::tempdir().expect("temp dir");
    let writer = build_c_program("acked_writer", dir.path(), None);
    let topo = Topology::primary_replica().expect("MariaDB topology (install mariadb-server)");
    create_ack_table(&topo, 0).expect("create the table");
    topo.wait_semi_sync_clients(0, 1).expect("replica attached");

    let token_file = dir.path().join("control.token");
    std::fs::write(&token_file, "tok-5d2e8a14c3b7f960-preload\n").expect("token file");
    let config = dir.path().join("orchestrator.toml");
    std::fs::write(
        &config,
        topo.orchestrator_config(
            &format!("control_token_file = \"{}\"", token_file.display()),
            "",
            &[],
        ),
    )
    .expect("orchestrator config");
    let listen = format!("127.0.0.1:{}", drfailover_testkit::free_loopback_port());
    let _orchestrator = Orchestrator(
        Command::new(&drfailover)
            .args(["orchestrate", "--json", "--listen", &listen])
            .arg(&config)
            .stdout(Stdio::null())
            .spawn()
            .expect("spawn drfailover orchestrate"),
    );
    eventually(
        "the orchestrator leads a healthy topology",
        Duration::from_secs(60),
        || match get(&listen, "/status") {
            Some(s) if s.contains("\"leader\":true") && s.contains("\"analysis\":\"healthy\"") => {
                Ok(())
            }
            other => Err(format!("{other:?}")),
        },
    );

    let env = preload_env(&topo);
    let mut program = Program::spawn(
        &writer,
        &acked_writer_args(&topo, 0, THREADS, 12.0, "auto"),
        &env,
    )
    .expect("start the program");
    program
        .wait_for("ack ", 200, Duration::from_secs(60))
        .unwrap();
    // A switchover is refused while the topology does not look healthy for a moment (a
    // loaded machine can make one probe late): ask again until it is done.
    eventually("the switchover is done", Duration::from_secs(60), || {
        let out = Command::new(&drfailover)
            .args([
                "switchover",
                "--daemon",
                &listen,
                "--to",
                topo.node(1).name(),
            ])
            .arg("--token-file")
            .arg(&token_file)
            .output()
            .expect("run drfailover switchover");
        if out.status.success() {
            return Ok(());
        }
        let stderr = String::from_utf8_lossy(&out.stderr).to_string();
        assert!(
            stderr.contains("not healthy") || stderr.contains("not replicating"),
            "the switchover failed: {out:?}"
        );
        Err(stderr)
    });
    assert_eq!(
        topo.node(0)
            .sql_value("SELECT @@read_only")
            .expect("ask the old primary")
            .as_deref(),
        Some("1"),
        "the orchestrator fenced the old primary"
    );
    let (at_switchover, lines) = keeps_acknowledging_then_exits(&mut program, 200);
    let (acks, fails) = done_line(&lines).expect("the program printed its done line");
    assert!(
        fails <= u64::from(THREADS),
        "{fails} writes failed: only those in flight at the switchover may (one per thread)"
    );
    let check = check_acks(&topo, 1, &lines).expect("read the rows");
    println!(
        "orchestrated switchover: {acks} acknowledged ({} after it), {fails} failed, {} rows on the new primary",
        acks as usize - at_switchover.min(acks as usize),
        check.rows
    );
    assert_exactly_once(&check, acks);
}
