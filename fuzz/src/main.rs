//! `drfailover-fuzz <target|all> [--iterations N] [--seed S] [--corpus DIR] [--max-len N] [--keep-going]`
//! `drfailover-fuzz replay <target> FILE…` (runs saved inputs, showing each panic's message)
//!
//! Runs fuzz targets with the seeded mutation loop (`all`: every target of the smoke run); prints executions, rate and the slowest
//! execution per target; exits 1 on a finding (written to `fuzz/findings/`), 2 on bad usage.

use std::path::PathBuf;
use std::process::ExitCode;

use drfailover_fuzz::{campaign, load_corpus, Options, TARGETS};

fn usage() -> ExitCode {
    eprintln!(
        "usage: drfailover-fuzz <target|all|list> [--iterations N] [--seed S] [--corpus DIR] [--max-len N] [--keep-going]\n       drfailover-fuzz replay <target> FILE..."
    );
    for t in TARGETS {
        eprintln!("  {:<12} {}", t.name, t.about);
    }
    ExitCode::from(2)
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let Some(which) = args.first() else {
        return usage();
    };
    if args.iter().any(|a| a == "-h" || a == "--help") {
        println!(
            "drfailover-fuzz: the parsers' fuzz targets under a seeded mutation loop (docs/fuzzing.md).\n\n\
             usage: drfailover-fuzz <target|all|list> [--iterations N] [--seed S] [--corpus DIR] [--max-len N] [--keep-going]\n       \
             drfailover-fuzz replay <target> FILE...\n\n  \
             --iterations N  mutated inputs per target (default 100000)\n  \
             --seed S        the mutation seed (a run is reproducible)\n  \
             --corpus DIR    seed inputs (default fuzz/corpus/<target>)\n  \
             --max-len N     longest input (default 4096)\n  \
             --keep-going    count findings instead of stopping at the first (saves the first 100)\n\n\
             Release build: 10 M inputs take 20 s to 4 min per target (docs/fuzzing.md). Targets:"
        );
        for t in TARGETS {
            println!("  {:<12} {}", t.name, t.about);
        }
        return ExitCode::SUCCESS;
    }
    if which == "list" {
        for t in TARGETS {
            println!("{}", t.name);
        }
        return ExitCode::SUCCESS;
    }
    if which == "replay" {
        return replay(&args[1..]);
    }
    let mut options = Options::default();
    let mut corpus_root = PathBuf::from("fuzz/corpus");
    let mut i = 1;
    while i < args.len() {
        let value = args.get(i + 1);
        let parsed = value.and_then(|v| v.replace('_', "").parse::<u64>().ok());
        if args[i] == "--keep-going" {
            options.stop_on_finding = false;
            i += 1;
            continue;
        }
        match (args[i].as_str(), parsed) {
            ("--iterations", Some(n)) => options.iterations = n,
            ("--seed", Some(n)) => options.seed = n,
            ("--max-len", Some(n)) => options.max_len = n as usize,
            ("--corpus", _) if value.is_some() => corpus_root = PathBuf::from(value.unwrap()),
            _ => return usage(),
        }
        i += 2;
    }
    let selected: Vec<_> = TARGETS
        .iter()
        .filter(|t| (which == "all" && t.smoke) || t.name == which)
        .collect();
    if selected.is_empty() {
        return usage();
    }
    // Panics are findings, recorded by the campaign; keep stderr quiet.
    std::panic::set_hook(Box::new(|_| {}));
    let mut found = false;
    for target in selected {
        let corpus = load_corpus(&corpus_root.join(target.name));
        let report = campaign(target, &corpus, &options);
        let secs = report.elapsed.as_secs_f64();
        println!(
            "{}: {} executions ({} corpus entries, seed {}) in {:.1} s, {:.0}/s, slowest {:?}, {} findings",
            report.target,
            report.executions,
            corpus.len(),
            options.seed,
            secs,
            report.executions as f64 / secs.max(1e-9),
            report.slowest,
            report.finding_count
        );
        for f in report.findings.iter().take(10) {
            println!("  finding: {}", f.display());
        }
        found |= report.finding_count > 0;
    }
    if found {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    }
}

/// Run each saved input once with the default panic hook (its message and location on
/// stderr); exit 1 when any panicked.
fn replay(args: &[String]) -> ExitCode {
    let Some(target) = args
        .first()
        .and_then(|n| TARGETS.iter().find(|t| t.name == n.as_str()))
    else {
        return usage();
    };
    if args.len() < 2 {
        return usage();
    }
    let mut state = (target.setup)();
    let mut failed = false;
    for file in &args[1..] {
        let input = match std::fs::read(file) {
            Ok(b) => b,
            Err(e) => {
                eprintln!("{file}: {e}");
                return ExitCode::from(2);
            }
        };
        let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            (target.run)(&mut state, &input)
        }));
        println!(
            "{file}: {}",
            if outcome.is_ok() { "ok" } else { "PANICKED" }
        );
        failed |= outcome.is_err();
    }
    if failed {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    }
}
