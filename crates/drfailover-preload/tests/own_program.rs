//! A program of ours that logs every acknowledged write (plain libmariadb, no drfailover
//! code), run under the preload library through a fault of the primary and a promotion: it
//! never dies, only statements in flight fail, and every acknowledged write is on the new
//! primary exactly once — for autocommit statements, explicit transactions, prepared
//! statements, forked processes, a program that turns the client library's own reconnect on
//! and the `libmysqlclient` compatibility name; through
//! `kill -9`, `SIGSTOP` and a switchover (old primary fenced read-only, replica promoted).

mod common;

use std::time::Duration;

use common::*;
use drfailover_testkit::Topology;

const THREADS: u32 = 4;

fn kill9_and_promotion(mode: &str) {
    through_fault(mode, PrimaryFault::Kill9, None);
}

fn through_fault(mode: &str, fault: PrimaryFault, link: Option<&str>) {
    let dir = tempfile::tempdir().expect("temp dir");
    let writer = build_c_program("acked_writer", dir.path(), link);
    let mut topo = Topology::primary_replica().expect("MariaDB topology (install mariadb-server)");
    create_ack_table(&topo, 0).expect("create the table");
    let env = preload_env(&topo);
    let mut program = Program::spawn(
        &writer,
        &acked_writer_args(&topo, 0, THREADS, 6.0, mode),
        &env,
    )
    .expect("start the program");
    program
        .wait_for("ack ", 200, Duration::from_secs(60))
        .unwrap();
    topo.wait_semi_sync_clients(0, 1).expect("replica attached");
    fault
        .inflict(&mut topo)
        .expect("the fault and the promotion");
    let (at_promotion, lines) = keeps_acknowledging_then_exits(&mut program, 200);
    let (acks, fails) = if mode == "fork" {
        // Each child prints its own done line: count the lines instead.
        assert_eq!(
            program.count("done "),
            THREADS as usize,
            "every child finished"
        );
        (program.count("ack ") as u64, program.count("fail ") as u64)
    } else {
        done_line(&lines).expect("the program printed its done line")
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
    assert_eq!(
        program.count("reconnect_on "),
        0,
        "the client library's own reconnect stayed on after a statement"
    );
    let check = check_acks(&topo, 1, &lines).expect("read the rows");
    println!(
        "{mode} {}: {acks} acknowledged ({} after the promotion began), {fails} failed, {} rows on the new primary",
        fault.name(),
        acks as usize - at_promotion.min(acks as usize),
        check.rows
    );
    assert_exactly_once(&check, acks);
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
    through_fault("fork", PrimaryFault::Kill9, None);
}

#[test]
fn a_program_that_turns_the_client_librarys_reconnect_on_after_connecting_survives_kill9() {
    // libmariadb's own reconnect would close the handle inside a statement (freeing the
    // library's state under it) and send the statement again to the same node: the library
    // turns it off again before the next statement (the program reports it if not).
    kill9_and_promotion("reconnect");
}

#[test]
fn the_libmysqlclient_compatibility_name_works_too() {
    through_fault("auto", PrimaryFault::Kill9, Some("-lmysqlclient"));
}

#[test]
fn autocommit_writes_survive_sigstop_and_promotion() {
    through_fault("auto", PrimaryFault::Freeze, None);
}

#[test]
fn transactions_survive_a_switchover_unsplit() {
    through_fault("txn", PrimaryFault::Switchover, None);
}

#[test]
fn prepared_statements_survive_a_switchover() {
    through_fault("ps", PrimaryFault::Switchover, None);
}
