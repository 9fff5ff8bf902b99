//! `drfailover-bench-aws`: what credentials from AWS cost a client.
//!
//!     cargo run --release -p drfailover-bench --bin drfailover-bench-aws -- [--n N]
//!
//! - an RDS IAM token (SigV4 presign, made locally): mean time per token over 20 000;
//! - `GetSecretValue` from moto on loopback (our client plus a local Python server, not AWS);
//! - `Client::connect` + first writer, with a password in the DSN vs with `secret_arn`;
//! - a new login right after a rotation (new password stored in moto, `ALTER USER` on the
//!   server): refused with 1045, secret fetched again, login retried — against a new login
//!   with nothing rotated. Measured as the time to lease one more pool connection.
//!
//! Prints a Markdown table. Timings on a shared 2-core machine are noisy.

#[path = "stats.rs"]
#[allow(dead_code)]
mod stats;

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use drfailover_aws::credentials::AwsIdentity;
use drfailover_aws::rds_iam::auth_token;
use drfailover_aws::retry::RetryPolicy;
use drfailover_aws::secrets::get_db_secret;
use drfailover_aws::{AwsClient, CredentialChain};
use drfailover_conn::Client;
use drfailover_testkit::moto::MotoServer;
use drfailover_testkit::{Topology, APP_DATABASE, APP_PASSWORD, APP_USER};

fn db_secret(password: &str) -> String {
    serde_json::json!({"username": APP_USER, "password": password}).to_string()
}

fn main() {
    let mut n = 30usize;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--n" => n = args.next().and_then(|v| v.parse().ok()).expect("--n N"),
            "-h" | "--help" => {
                println!(
                    "drfailover-bench-aws: what credentials from AWS cost a client (RDS IAM tokens, \
                     GetSecretValue from moto on loopback, connect with secret_arn, a login after a \
                     rotation). Prints a Markdown table.\n\n\
                     usage: cargo run --release -p drfailover-bench --bin drfailover-bench-aws -- [--n N]\n\n  \
                     --n N   samples per row (default 30)"
                );
                return;
            }
            "--bench" => {}
            other => {
                eprintln!("unknown argument {other}; see bench/src/aws.rs");
                std::process::exit(2);
            }
        }
    }
    std::env::set_var("AWS_ACCESS_KEY_ID", "AKIDBENCH");
    std::env::set_var("AWS_SECRET_ACCESS_KEY", "bench-secret-key");
    std::env::set_var("AWS_EC2_METADATA_DISABLED", "true");

    // RDS IAM tokens.
    let identity = AwsIdentity {
        credentials: aws_credential_types::Credentials::new(
            "AKIDBENCH",
            "bench-secret-key",
            Some("session".into()),
            None,
            "bench",
        ),
        source: "bench".into(),
    };
    let tokens = 20_000u32;
    let started = Instant::now();
    for i in 0..tokens {
        let token = auth_token(
            &identity,
            "eu-west-1",
            "db.cluster-x.eu-west-1.rds.amazonaws.com",
            3306,
            "app",
            SystemTime::now() + Duration::from_secs(u64::from(i % 7)),
        )
        .expect("token");
        std::hint::black_box(token);
    }
    let per_token_us = started.elapsed().as_secs_f64() * 1e6 / f64::from(tokens);

    let moto = MotoServer::start().expect("moto_server");
    let arn = moto
        .create_secret("bench-db", &db_secret(APP_PASSWORD))
        .expect("secret");
    let client = AwsClient::new(
        &moto.endpoint(),
        "secretsmanager",
        "us-east-1".into(),
        Arc::new(CredentialChain::from_process(None)),
        RetryPolicy {
            attempts: 1,
            per_attempt: Duration::from_secs(5),
            base_delay: Duration::from_millis(100),
            max_delay: Duration::from_secs(1),
        },
    )
    .expect("client");
    let deadline = || Instant::now() + Duration::from_secs(10);
    get_db_secret(&client, &arn, deadline()).expect("warm-up fetch");
    let fetches: Vec<Duration> = (0..n * 4)
        .map(|_| {
            let t = Instant::now();
            get_db_secret(&client, &arn, deadline()).expect("fetch");
            t.elapsed()
        })
        .collect();

    let topo = Topology::primary_replica().expect("MariaDB");
    let password_dsn = topo.dsn("probe_interval_ms=100");
    let secret_dsn = format!(
        "mysql://{}/{APP_DATABASE}?probe_interval_ms=100&pool_size=1000&secret_arn={arn}&secret_endpoint={}",
        topo.hosts(),
        moto.endpoint()
    );
    let connect = |dsn: &str| {
        let t = Instant::now();
        let c = Client::connect_dsn(dsn).expect("connect");
        c.wait_ready(Duration::from_secs(10)).expect("writer");
        let took = t.elapsed();
        c.close();
        took
    };
    let (mut with_password, mut with_secret) = (Vec::new(), Vec::new());
    for _ in 0..n {
        with_password.push(connect(&password_dsn));
        with_secret.push(connect(&secret_dsn));
    }

    // One more pool connection (a new login), after a rotation or not, alternating.
    let c = Client::connect_dsn(&secret_dsn).expect("connect");
    c.wait_ready(Duration::from_secs(10)).expect("writer");
    let (mut plain, mut rotated) = (Vec::new(), Vec::new());
    let mut held = Vec::new();
    for round in 0..2 * n {
        // Hold every pooled connection, so the timed lease must log in anew.
        for _ in 0..c.stats().connects {
            held.push(c.lease(Duration::from_secs(10)).expect("lease"));
        }
        if round % 2 == 1 {
            let password = format!("rotated-{round}");
            moto.put_secret_value(&arn, &db_secret(&password))
                .expect("put");
            for host in ["127.%", "169.254.%"] {
                topo.node(0)
                    .sql(&format!(
                        "ALTER USER '{APP_USER}'@'{host}' IDENTIFIED BY '{password}'"
                    ))
                    .expect("alter user");
            }
        }
        let before = c.stats().connects;
        let t = Instant::now();
        held.push(
            c.lease(Duration::from_secs(10))
                .expect("lease after rotation"),
        );
        let took = t.elapsed();
        assert_eq!(
            c.stats().connects,
            before + 1,
            "the timed lease reused a pooled connection"
        );
        if round % 2 == 1 {
            &mut rotated
        } else {
            &mut plain
        }
        .push(took);
        for lease in held.drain(..) {
            c.release(lease);
        }
    }
    c.close();

    println!("| what | n | p50 ms | p99 ms | max ms |\n|---|---:|---:|---:|---:|");
    println!(
        "| RDS IAM token (SigV4 presign, local) | {tokens} | {:.4} (mean) | | |",
        per_token_us / 1e3
    );
    for (what, samples) in [
        ("GetSecretValue from moto (loopback)", &fetches),
        (
            "connect + writer known, password in the DSN",
            &with_password,
        ),
        (
            "connect + writer known, secret_arn (one fetch)",
            &with_secret,
        ),
        ("new pool login, nothing rotated", &plain),
        (
            "new pool login right after a rotation (1045, fetch, login)",
            &rotated,
        ),
    ] {
        let (p50, p99, max) = stats::summary(samples);
        println!(
            "| {what} | {} | {p50:.2} | {p99:.2} | {max:.2} |",
            samples.len()
        );
    }
}
