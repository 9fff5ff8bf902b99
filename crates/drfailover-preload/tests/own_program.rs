//! A program of ours that logs every acknowledged write (plain libmariadb, no drfailover
//! code), run under the preload library through a fault of the primary and a promotion: it
//! never dies, only statements in flight fail, and every acknowledged write is on the new
//! primary exactly once — for autocommit statements, explicit transactions, prepared
//! statements, forked processes and the `libmysqlclient` compatibility name; through
//! `kill -9`, `SIGSTOP` and a switchover (old primary fenced read-only, replica promoted).

mod common;

use std::time::Duration;

use common::*;
use drfailover_testkit::Topology;

const THREADS: u32 = 4;

#[derive(Clone, Copy, PartialEq)]
enum Fault {
    Kill9,
    Freeze,
    Switchover,
}

fn kill9_and_promotion(mode: &str) {
    through_fault(mode, Fault::Kill9, None);
}

fn through_fault(mode: &str, fault: Fault, link: Option<&str>) {
    let dir = tempfile::tempdir().expect("temp dir");
    let source = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/c/acked_writer.c");
    let writer = build_c(&source, &dir.path().join("acked_writer"), link);
    let mut topo = Topology::primary_replica().expect("MariaDB topology (install mariadb-server)");
    create_ack_table(&topo, 0);
    let env = preload_env(&topo);
    let mut program = Program::spawn(
        &writer,
        &acked_writer_args(&topo, 0, THREADS, 6.0, mode),
        &env,
    );
    program.wait_for("ack ", 200, Duration::from_secs(60));
    topo.wait_semi_sync_clients(0, 1).expect("replica attached");
    match fault {
        Fault::Kill9 => {
            topo.kill9(0).expect("kill -9 the primary");
            topo.promote(1).expect("promote the replica");
        }
        Fault::Freeze => {
            topo.freeze(0).expect("SIGSTOP the primary");
            topo.promote_fast(1).expect("make the replica writable");
        }
        Fault::Switchover => {
            topo.fence(0).expect("fence the primary (read_only=1)");
            topo.wait_replicated(0, 1).expect("the replica caught up");
            topo.promote(1).expect("promote the replica");
        }
    }
    let at_promotion = program.count("ack ");
    program.wait_for("ack ", at_promotion + 200, Duration::from_secs(60));
    let status = program.wait(Duration::from_secs(90));
    let lines = program.lines();
    assert!(
        status.success(),
        "the program died: {status}; stderr:\n{}",
        program.stderr()
    );
    let (acks, fails) = if mode == "fork" {
        // Each child prints its own done line: count the lines instead.
        assert_eq!(
            program.count("done "),
            THREADS as usize,
            "every child finished"
        );
        (program.count("ack ") as u64, program.count("fail ") as u64)
    } else {
        done_line(&lines)
    };
    assert!(
        fails <= u64::from(THREADS),
        "{fails} writes failed: only those in flight at the fault may (one per thread); failures: {:?}",
        lines
            .iter()
            .filter(|(_, l)| l.starts_with("fail ") || l.starts_with("ping "))
            .map(|(_, l)| l.as_str())
            .collect::<Vec<_>>()
    );
    assert_eq!(
        program.count("ping "),
        0,
        "mysql_ping failed while a writer existed"
    );
    let check = check_acks(&topo, 1, &lines);
    println!(
        "{mode} {}: {acks} acknowledged ({} after the promotion began), {fails} failed, {} rows on the new primary",
        fault_name(fault),
        acks as usize - at_promotion.min(acks as usize),
        check.rows
    );
    assert_eq!(check.acknowledged as u64, acks);
    assert!(
        check.lost.is_empty(),
        "acknowledged writes lost: {:?}",
        check.lost
    );
    assert!(
        check.repeated.is_empty(),
        "writes executed twice: {:?}",
        check.repeated
    );
    assert!(
        !program.stderr().contains(drfailover_testkit::APP_PASSWORD),
        "a password was printed"
    );
}

#[test]
fn autocommit_writes_survive_kill9_and_promotion() {
    kill9_and_promotion("auto");
}

#[test]
fn transactions_survive_kill9_and_promotion_unsplit() {
    kill9_and_promotion("txn");
}

#[test]
fn prepared_statements_survive_kill9_and_promotion() {
    kill9_and_promotion("ps");
}

#[test]
fn forked_children_start_their_own_monitor_and_survive_kill9() {
    through_fault("fork", Fault::Kill9, None);
}

#[test]
fn the_libmysqlclient_compatibility_name_works_too() {
    through_fault("auto", Fault::Kill9, Some("-lmysqlclient"));
}

#[test]
fn autocommit_writes_survive_sigstop_and_promotion() {
    through_fault("auto", Fault::Freeze, None);
}

#[test]
fn transactions_survive_a_switchover_unsplit() {
    through_fault("txn", Fault::Switchover, None);
}

#[test]
fn prepared_statements_survive_a_switchover() {
    through_fault("ps", Fault::Switchover, None);
}

fn fault_name(fault: Fault) -> &'static str {
    match fault {
        Fault::Kill9 => "kill -9",
        Fault::Freeze => "SIGSTOP",
        Fault::Switchover => "switchover",
    }
}
