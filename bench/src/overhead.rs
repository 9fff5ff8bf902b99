//! Per-query overhead and scaling: the library vs raw per-thread connections vs the
//! single-global-mutex design, on the same server in the same run.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Barrier, Mutex};
use std::time::{Duration, Instant};

use drfailover_conn::Client;
use drfailover_mysql::{ConnectOptions, Connection};
use drfailover_testkit::{Topology, APP_DATABASE, APP_PASSWORD, APP_USER};

/// How a thread runs one statement.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Design {
    /// Its own raw connection (`drfailover-mysql`, i.e. the C client).
    Raw,
    /// `Client::query` through the failover-aware pool.
    Library,
    /// One connection shared by all threads behind one mutex (what users write by hand).
    GlobalMutex,
}

fn raw_options(topo: &Topology) -> ConnectOptions {
    let n = topo.node(0);
    ConnectOptions::tcp(n.ip().to_string(), n.port())
        .user(APP_USER)
        .password(APP_PASSWORD)
        .database(APP_DATABASE)
}

/// Statements per second with `threads` threads for `duration`.
pub fn throughput(
    topo: &Topology,
    client: &Arc<Client>,
    design: Design,
    threads: usize,
    sql: &str,
    duration: Duration,
) -> f64 {
    let stop = Arc::new(AtomicBool::new(false));
    let count = Arc::new(AtomicU64::new(0));
    let barrier = Arc::new(Barrier::new(threads + 1));
    let shared = Arc::new(Mutex::new(
        Connection::connect(&raw_options(topo)).expect("connect"),
    ));
    let handles: Vec<_> = (0..threads)
        .map(|_| {
            let (stop, count, barrier, client, shared) = (
                stop.clone(),
                count.clone(),
                barrier.clone(),
                client.clone(),
                shared.clone(),
            );
            let opts = raw_options(topo);
            let sql = sql.to_string();
            std::thread::spawn(move || {
                let mut own =
                    (design == Design::Raw).then(|| Connection::connect(&opts).expect("connect"));
                // Warm the pool / connection before timing.
                for _ in 0..50 {
                    run(design, &sql, &client, &shared, own.as_mut());
                }
                barrier.wait();
                let mut n = 0u64;
                while !stop.load(Ordering::Relaxed) {
                    run(design, &sql, &client, &shared, own.as_mut());
                    n += 1;
                }
                count.fetch_add(n, Ordering::Relaxed);
            })
        })
        .collect();
    barrier.wait();
    let started = Instant::now();
    std::thread::sleep(duration);
    stop.store(true, Ordering::Relaxed);
    let elapsed = started.elapsed();
    for h in handles {
        h.join().expect("bench thread");
    }
    count.load(Ordering::Relaxed) as f64 / elapsed.as_secs_f64()
}

fn run(
    design: Design,
    sql: &str,
    client: &Client,
    shared: &Mutex<Connection>,
    own: Option<&mut Connection>,
) {
    match design {
        Design::Raw => {
            own.expect("own connection").query(sql).expect("raw query");
        }
        Design::Library => {
            client.query(sql).expect("library query");
        }
        Design::GlobalMutex => {
            shared
                .lock()
                .expect("lock")
                .query(sql)
                .expect("shared query");
        }
    }
}

/// Median throughput of each design over `rounds` rounds, the designs alternating within each
/// round so they share the machine's noise.
pub fn interleaved(
    topo: &Topology,
    client: &Arc<Client>,
    designs: &[Design],
    threads: usize,
    sql: &str,
    duration: Duration,
    rounds: usize,
) -> Vec<f64> {
    let mut samples = vec![Vec::new(); designs.len()];
    for _ in 0..rounds {
        for (i, design) in designs.iter().enumerate() {
            samples[i].push(throughput(topo, client, *design, threads, sql, duration));
        }
    }
    samples
        .into_iter()
        .map(|mut s| {
            s.sort_by(f64::total_cmp);
            s[s.len() / 2]
        })
        .collect()
}

/// Nanoseconds per `lease` + `release` pair (no statement), single thread.
pub fn lease_release_ns(client: &Client, iterations: u32) -> f64 {
    for _ in 0..1000 {
        client.release(client.lease(Duration::from_secs(5)).expect("lease"));
    }
    let started = Instant::now();
    for _ in 0..iterations {
        client.release(client.lease(Duration::from_secs(5)).expect("lease"));
    }
    started.elapsed().as_nanos() as f64 / iterations as f64
}
