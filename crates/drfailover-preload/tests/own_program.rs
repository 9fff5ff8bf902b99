//! A program of ours that logs every acknowledged write (plain libmariadb, no drfailover
//! code), run under the preload library through `kill -9` of the primary and a promotion:
//! it never dies, only statements in flight fail, and every acknowledged write is on the new
//! primary exactly once — for autocommit statements, explicit transactions and prepared
//! statements.

mod common;

use std::time::Duration;

use common::*;
use drfailover_testkit::Topology;

const THREADS: u32 = 4;

fn kill9_and_promotion(mode: &str) {
    let dir = tempfile::tempdir().expect("temp dir");
    let writer = build_c_program("acked_writer", dir.path());
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
    topo.kill9(0).expect("kill -9 the primary");
    topo.promote(1).expect("promote the replica");
    let at_promotion = program.count("ack ");
    program.wait_for("ack ", at_promotion + 200, Duration::from_secs(60));
    let status = program.wait(Duration::from_secs(90));
    let lines = program.lines();
    assert!(
        status.success(),
        "the program died: {status}; stderr:\n{}",
        program.stderr()
    );
    let (acks, fails) = done_line(&lines);
    assert!(
        fails <= u64::from(THREADS),
        "{fails} writes failed: only those in flight at the crash may (one per thread)"
    );
    assert_eq!(
        program.count("ping "),
        0,
        "mysql_ping failed while a writer existed"
    );
    let check = check_acks(&topo, 1, &lines);
    println!(
        "{mode}: {acks} acknowledged ({} after the promotion began), {fails} failed, {} rows on the new primary",
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
