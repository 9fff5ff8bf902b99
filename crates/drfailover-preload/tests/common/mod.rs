//! Helpers for running unmodified programs under `libdrfailover-preload.so` against real
//! servers. The mechanics (building C programs, running them with stamped output, the data
//! check of acknowledged writes, the faults) are the testkit's (`drfailover_testkit::program`,
//! `PrimaryFault`), shared with the benchmark; what is specific to these tests is here.

#![allow(dead_code, unused_imports)] // each test binary uses a subset.

use std::path::{Path, PathBuf};

pub use drfailover_testkit::program::*;
pub use drfailover_testkit::PrimaryFault;
use drfailover_testkit::Topology;

/// The preload library, built fresh for this test run with the test binary's profile.
/// Blocking: seconds when fresh, a build otherwise.
pub fn preload_library() -> PathBuf {
    drfailover_testkit::cprog::built_preload_library().expect("build the preload library")
}

/// Build `crates/drfailover-preload/tests/c/<name>.c` against the system's libmariadb (no
/// drfailover code) into `dir`, linked with `link` (`None`: libmariadb).
pub fn build_c_program(name: &str, dir: &Path, link: Option<&str>) -> PathBuf {
    let source = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/c")
        .join(format!("{name}.c"));
    build_c(&source, &dir.join(name), link).expect("build the C program")
}

/// The environment that enables the preload library for `topo`'s nodes.
pub fn preload_env(topo: &Topology) -> Vec<(String, String)> {
    vec![
        (
            "LD_PRELOAD".into(),
            preload_library().to_string_lossy().into_owned(),
        ),
        (
            "DRFAILOVER_DSN".into(),
            topo.dsn("probe_interval_ms=100&failover_timeout_ms=20000"),
        ),
    ]
}

/// The first arguments of the C test programs: node `i`'s address and port, the app user
/// and its password, followed by `rest`.
pub fn node_args(topo: &Topology, i: usize, rest: &[&str]) -> Vec<String> {
    let node = topo.node(i);
    let mut args = vec![
        node.ip().to_string(),
        node.port().to_string(),
        drfailover_testkit::APP_USER.into(),
        drfailover_testkit::APP_PASSWORD.into(),
    ];
    args.extend(rest.iter().map(|s| s.to_string()));
    args
}

/// Wait until the program acknowledged `more` writes beyond those it had acknowledged so
/// far (it keeps working after a fault), then for its exit, which must be a success.
/// Returns how many it had acknowledged at the call, and its output lines. Blocks up to
/// 60 s + 90 s; panics with its stderr otherwise.
pub fn keeps_acknowledging_then_exits(
    program: &mut Program,
    more: usize,
) -> (usize, Vec<(std::time::Instant, String)>) {
    let before = program.count("ack ");
    program
        .wait_for("ack ", before + more, std::time::Duration::from_secs(60))
        .unwrap();
    let status = program.wait(std::time::Duration::from_secs(90)).unwrap();
    assert!(
        status.success(),
        "the program died: {status}; stderr:\n{}",
        program.stderr()
    );
    (before, program.lines())
}

/// Every acknowledged write (`acks` of them, from the program's done line) is on the node
/// checked, exactly once.
pub fn assert_exactly_once(check: &DataCheck, acks: u64) {
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
}
