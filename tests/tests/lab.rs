//! `drfailover-lab`: servers that stay up after `up` returns, the printed commands work, and
//! `down` leaves nothing behind.

use std::process::{Command, Output};
use std::time::Duration;

use drfailover_mysql::{ConnectOptions, Connection};
use drfailover_testkit::{eventually, APP_DATABASE, APP_PASSWORD, APP_USER};

fn lab(args: &[&str], dir: &std::path::Path) -> Output {
    let out = Command::new(env!("CARGO_BIN_EXE_drfailover-lab"))
        .args(args)
        .arg("--dir")
        .arg(dir)
        .output()
        .expect("run drfailover-lab");
    println!(
        "$ drfailover-lab {}\n{}{}",
        args.join(" "),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The line of the guide that follows `marker`'s line and contains `needle`, trimmed.
fn guide_line(guide: &str, needle: &str) -> String {
    guide
        .lines()
        .find(|l| l.contains(needle))
        .unwrap_or_else(|| panic!("no line with {needle:?} in:\n{guide}"))
        .trim()
        .to_string()
}

fn sh(line: &str) {
    let command = line.split('#').next().unwrap_or(line);
    let status = Command::new("sh")
        .args(["-c", command])
        .status()
        .expect("sh");
    assert!(status.success(), "`{command}` failed");
}

fn process_alive(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .map(|s| !s.rsplit_once(") ").is_some_and(|(_, r)| r.starts_with('Z')))
        .unwrap_or(false)
}

/// Takes the lab in `.0` down when dropped, if it is still there: a failing assertion
/// leaves no server (frozen or not) and no network namespace behind.
struct DownOnDrop<'a>(&'a std::path::Path);

impl Drop for DownOnDrop<'_> {
    fn drop(&mut self) {
        if self.0.exists() {
            let _ = lab(&["down"], self.0);
        }
    }
}

#[test]
fn up_stays_up_answers_and_down_leaves_nothing() {
    let parent = tempfile::tempdir().unwrap();
    let dir = parent.path().join("lab");
    let out = lab(&["up", "--replicas", "1"], &dir);
    let _down_even_on_panic = DownOnDrop(&dir);
    assert!(out.status.success(), "up failed");
    let guide = stdout(&out);

    // The servers outlived the command that started them.
    let pids: Vec<u32> = guide
        .lines()
        .filter_map(|l| l.split_once(" pid ").map(|(_, r)| r))
        .filter_map(|r| r.split_whitespace().next()?.parse().ok())
        .collect();
    assert_eq!(pids.len(), 2, "{guide}");
    assert!(pids.iter().all(|p| process_alive(*p)), "{guide}");

    // The printed DSN's first host takes writes as the printed application account.
    let dsn = guide_line(&guide, "mysql://");
    let primary = dsn
        .split_once('@')
        .and_then(|(_, r)| r.split(',').next())
        .expect("host in the DSN")
        .to_string();
    let (ip, port) = primary.rsplit_once(':').unwrap();
    let opts = ConnectOptions::tcp(ip, port.parse().unwrap())
        .user(APP_USER)
        .password(APP_PASSWORD)
        .database(APP_DATABASE);
    let mut conn = Connection::connect(&opts).expect("connect with the printed DSN");
    conn.query("CREATE TABLE lab_check (id INT PRIMARY KEY)")
        .unwrap();
    conn.query("INSERT INTO lab_check VALUES (1), (2)").unwrap();
    let rows = conn.query("SELECT COUNT(*) FROM lab_check").unwrap();
    assert_eq!(rows.text(0, 0), Some("2"));
    drop(conn);

    // The printed freeze command freezes, status says so, thaw brings it back.
    let freeze = guide_line(&guide, "kill -STOP");
    let (stop, cont) = freeze.split_once(';').unwrap();
    sh(stop);
    let out = lab(&["status"], &dir);
    assert!(
        stdout(&out).contains("frozen (SIGSTOP)"),
        "status after freeze"
    );
    sh(cont);
    eventually(
        "the primary answers as writable after the thaw",
        Duration::from_secs(30),
        || {
            let out = stdout(&lab(&["status"], &dir));
            match out.contains("running, writable") {
                true => Ok(()),
                false => Err(out),
            }
        },
    );

    // kill -9 the primary, then the printed promote script makes the replica the writer,
    // with both rows.
    sh(&guide_line(&guide, "kill -9"));
    sh(&guide_line(&guide, "bin/promote-node2"));
    let replica = dsn
        .split_once('@')
        .and_then(|(_, r)| r.split(',').nth(1))
        .and_then(|h| h.split('/').next())
        .expect("replica in the DSN")
        .to_string();
    let (ip, port) = replica.rsplit_once(':').unwrap();
    let opts = ConnectOptions::tcp(ip, port.parse().unwrap())
        .user(APP_USER)
        .password(APP_PASSWORD)
        .database(APP_DATABASE);
    let mut conn = Connection::connect(&opts).expect("connect to the promoted replica");
    conn.query("INSERT INTO lab_check VALUES (3)")
        .expect("the promoted replica takes writes");
    let rows = conn.query("SELECT COUNT(*) FROM lab_check").unwrap();
    assert_eq!(rows.text(0, 0), Some("3"), "every acknowledged row present");
    drop(conn);

    let netns = guide
        .lines()
        .find_map(|l| l.split("ip netns exec ").nth(1))
        .and_then(|r| r.split_whitespace().next())
        .map(str::to_string);
    let out = lab(&["down"], &dir);
    assert!(out.status.success(), "down failed");
    assert!(!dir.exists(), "{} still exists", dir.display());
    assert!(
        pids.iter().all(|p| !process_alive(*p)),
        "a server survived down"
    );
    if let Some(ns) = netns {
        let list = Command::new("ip").args(["netns", "list"]).output().unwrap();
        assert!(
            !String::from_utf8_lossy(&list.stdout).contains(&ns),
            "namespace {ns} survived down"
        );
    }
    // A second down says there is no lab, and changes nothing.
    assert!(!lab(&["down"], &dir).status.success());
}

#[test]
fn help_changes_nothing() {
    let parent = tempfile::tempdir().unwrap();
    let dir = parent.path().join("lab");
    for args in [&["--help"][..], &["up", "--help"][..]] {
        let out = lab(args, &dir);
        assert!(out.status.success());
        assert!(stdout(&out).contains("usage: drfailover-lab up"));
    }
    assert!(!dir.exists(), "--help created {}", dir.display());
}
