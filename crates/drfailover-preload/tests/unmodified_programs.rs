//! Programs nobody here wrote, unmodified, under the preload library through `kill -9` of
//! the primary and a promotion: Debian's `sysbench` (8 threads, `--mysql-ignore-errors=2013`).
//! (`mariadb-slap` links its client library statically: out of reach, checked below). They
//! never die, and only statements in flight at the crash fail.
//! (The data check is the job of `own_program.rs`, whose program logs every acknowledged
//! write; these programs do not say which writes were acknowledged.)

mod common;

use std::path::PathBuf;
use std::time::Duration;

use common::*;
use drfailover_testkit::{Topology, ADMIN_PASSWORD, ADMIN_USER, APP_PASSWORD, APP_USER};

const THREADS: u32 = 8;
const TABLE_SIZE: u32 = 1000;

fn tool(name: &str) -> PathBuf {
    let path = PathBuf::from("/usr/bin").join(name);
    assert!(
        path.exists(),
        "{} is missing: install it (apt-get install {})",
        path.display(),
        if name == "sysbench" {
            "sysbench"
        } else {
            "mariadb-client"
        }
    );
    path
}

/// The number after `label` in sysbench's summary.
fn summary_number(lines: &[(std::time::Instant, String)], label: &str) -> u64 {
    sysbench_number(lines, label).unwrap_or_else(|| panic!("sysbench printed no `{label}` line"))
        as u64
}

fn sysbench_through_kill9(test: &str, ps_mode: &str) {
    sysbench_through(test, ps_mode, PrimaryFault::Kill9);
}

fn sysbench_through(test: &str, ps_mode: &str, fault: PrimaryFault) {
    let sysbench = tool("sysbench");
    let mut topo = Topology::primary_replica().expect("MariaDB topology (install mariadb-server)");
    let prepare = std::process::Command::new(&sysbench)
        .args(sysbench_args(
            &topo,
            ADMIN_USER,
            ADMIN_PASSWORD,
            test,
            TABLE_SIZE,
            &["prepare"],
        ))
        .output()
        .expect("run sysbench prepare");
    assert!(
        prepare.status.success(),
        "sysbench prepare failed: {}",
        String::from_utf8_lossy(&prepare.stderr)
    );
    topo.wait_replicated(0, 1).expect("the table replicated");
    topo.wait_semi_sync_clients(0, 1).expect("replica attached");
    if fault == PrimaryFault::Switchover {
        // The harness's fence is a bare `SET GLOBAL read_only=1`: under oltp_write_only its
        // pending global lock and a transaction's row-lock wait block each other until the
        // row lock times out (50 s by default; the orchestrator's own fence ends such
        // sessions). 1 s: the waiting statement fails with 1205, which sysbench ignores.
        topo.node(0)
            .sql("SET GLOBAL innodb_lock_wait_timeout=1")
            .expect("set the lock wait timeout");
    }
    let run_args = sysbench_args(
        &topo,
        APP_USER,
        APP_PASSWORD,
        test,
        TABLE_SIZE,
        &[
            &format!("--threads={THREADS}"),
            "--time=8",
            "--report-interval=1",
            &format!("--db-ps-mode={ps_mode}"),
            // 2013 as the task runs it, plus sysbench's own default list (deadlocks and lock
            // waits, which oltp_write_only meets without any failover).
            "--mysql-ignore-errors=2013,1213,1020,1205",
            "run",
        ],
    );
    let mut program =
        Program::spawn(&sysbench, &run_args, &preload_env(&topo)).expect("start sysbench");
    program
        .wait_for("[ 2s ]", 1, Duration::from_secs(60))
        .unwrap();
    fault
        .inflict(&mut topo)
        .expect("the fault and the promotion");
    let status = program.wait(Duration::from_secs(120)).unwrap();
    if fault == PrimaryFault::Freeze {
        topo.thaw(0).expect("SIGCONT the old primary");
    }
    let lines = program.lines();
    assert!(
        status.success(),
        "sysbench died: {status}; stderr:\n{}\nstdout:\n{}",
        program.stderr(),
        lines
            .iter()
            .map(|(_, l)| l.as_str())
            .collect::<Vec<_>>()
            .join("\n")
    );
    let ignored = summary_number(&lines, "ignored errors:");
    let reconnects = summary_number(&lines, "reconnects:");
    let after: Vec<&String> = lines
        .iter()
        .map(|(_, l)| l)
        .filter(|l| l.starts_with("[ 7s ]") || l.starts_with("[ 8s ]"))
        .collect();
    // sysbench counts a statement that failed with an ignored lost-connection error as a
    // reconnect (it then closes and reconnects the handle itself), any other ignored one as
    // an ignored error.
    let failed = reconnects;
    println!("sysbench {test} ps-mode={ps_mode} {fault:?}: {failed} statements failed with a lost connection (each followed by sysbench's own reconnect), {ignored} other ignored errors (deadlocks); {after:?}");
    assert!(
        failed <= u64::from(THREADS),
        "{failed} statements failed: only those in flight at the crash may (one per thread)"
    );
    assert!(
        after.iter().any(|l| !l.contains("tps: 0.00")),
        "no progress after the failover: {after:?}"
    );
}

#[test]
fn sysbench_oltp_insert_prepared_survives_kill9() {
    sysbench_through_kill9("oltp_insert", "auto");
}

#[test]
fn sysbench_oltp_write_only_unprepared_survives_kill9() {
    sysbench_through_kill9("oltp_write_only", "disable");
}

#[test]
fn sysbench_oltp_insert_unprepared_survives_sigstop() {
    sysbench_through("oltp_insert", "disable", PrimaryFault::Freeze);
}

#[test]
fn sysbench_oltp_insert_prepared_survives_a_switchover() {
    sysbench_through("oltp_insert", "auto", PrimaryFault::Switchover);
}

/// Transactions refused by the fence fail (one per thread) and sysbench reconnects at once:
/// that reconnect must not land on the fenced node again (more failures than threads).
#[test]
fn sysbench_oltp_write_only_unprepared_survives_a_switchover_with_one_failure_per_thread() {
    sysbench_through("oltp_write_only", "disable", PrimaryFault::Switchover);
}

/// Debian's `mariadb-slap` carries its own copy of the client library, linked statically: no
/// `mysql_*` function of it is resolved through the dynamic linker, so `LD_PRELOAD` cannot
/// interpose it (docs/preload.md, "Not covered"). This checks that fact, so the documentation
/// notices if the packaging changes.
#[test]
fn mariadb_slap_links_its_client_library_statically_so_it_is_out_of_reach() {
    let slap = tool("mariadb-slap");
    let out = std::process::Command::new("nm")
        .arg("-D")
        .arg(&slap)
        .output()
        .expect("nm (apt-get install binutils)");
    let symbols = String::from_utf8_lossy(&out.stdout);
    let imported: Vec<&str> = symbols
        .lines()
        .filter(|l| l.trim_start().starts_with("U ") && l.contains("mysql_"))
        .collect();
    assert!(
        imported.is_empty(),
        "mariadb-slap now imports {imported:?}: it can be interposed; add it to the failover tests"
    );
}
