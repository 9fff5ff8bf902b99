//! Fuzz targets for drfailover's parsers of untrusted input, and a seeded mutation loop that
//! runs them on stable Rust (cargo-fuzz needs nightly).
//!
//! The loop is deliberately simple: it starts from a corpus kept in the repository
//! (`fuzz/corpus/<target>/`), and each execution feeds one input derived from a corpus entry
//! by 1..8 random mutations (bit flips, byte changes, inserted/removed/duplicated ranges,
//! interesting bytes, dictionary tokens, splices with another entry). It is not coverage
//! guided. A finding is a panic, or an execution that takes longer than the hang limit; the
//! input is written to `fuzz/findings/`. Runs are reproducible: same seed, same inputs.
//!
//! `cargo run --release -p drfailover-fuzz -- <target|all> --iterations N --seed S`; commands,
//! figures and coverage: `docs/fuzzing.md`.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

pub mod mutate;
pub mod targets;

pub use mutate::{Mutator, Rng};
pub use targets::{FuzzTarget, TARGETS};

/// What a campaign did.
#[derive(Debug)]
pub struct CampaignReport {
    /// The target's name.
    pub target: &'static str,
    /// Inputs executed (corpus entries included).
    pub executions: u64,
    /// Wall-clock time.
    pub elapsed: Duration,
    /// Slowest single execution.
    pub slowest: Duration,
    /// Inputs that panicked or exceeded the hang limit, as written to the findings directory
    /// (the first [`MAX_SAVED`]).
    pub findings: Vec<PathBuf>,
    /// How many inputs were findings (saved or not).
    pub finding_count: u64,
}

/// Findings saved per campaign at most (`--keep-going` on an open defect finds many).
pub const MAX_SAVED: usize = 100;

/// Options of a campaign.
#[derive(Clone, Debug)]
pub struct Options {
    /// Mutated inputs to execute (after the corpus entries themselves).
    pub iterations: u64,
    /// RNG seed: the same seed gives the same inputs.
    pub seed: u64,
    /// Longest input generated.
    pub max_len: usize,
    /// An execution slower than this is a finding (a hang).
    pub hang: Duration,
    /// Where findings are written.
    pub findings_dir: PathBuf,
    /// Stop at the first finding.
    pub stop_on_finding: bool,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            iterations: 100_000,
            seed: 1,
            max_len: 4096,
            hang: Duration::from_secs(1),
            findings_dir: PathBuf::from("fuzz/findings"),
            stop_on_finding: true,
        }
    }
}

/// Load every file of `dir` as a corpus entry (none if it does not exist); sorted by name so
/// a run is reproducible.
pub fn load_corpus(dir: &Path) -> Vec<Vec<u8>> {
    let mut paths: Vec<PathBuf> = match std::fs::read_dir(dir) {
        Ok(entries) => entries.filter_map(|e| e.ok().map(|e| e.path())).collect(),
        Err(_) => Vec::new(),
    };
    paths.sort();
    paths.iter().filter_map(|p| std::fs::read(p).ok()).collect()
}

/// Run `target` on each corpus entry, then on `options.iterations` mutated inputs. Panics in
/// the target are caught (the default panic hook should be silenced by the caller) and
/// recorded as findings. Blocks for the whole campaign.
pub fn campaign(target: &FuzzTarget, corpus: &[Vec<u8>], options: &Options) -> CampaignReport {
    let mut state = (target.setup)();
    let seeds: Vec<Vec<u8>> = if corpus.is_empty() {
        vec![Vec::new()]
    } else {
        corpus.to_vec()
    };
    let mut mutator = Mutator::new(options.seed, target.dictionary, options.max_len);
    let mut report = CampaignReport {
        target: target.name,
        executions: 0,
        elapsed: Duration::ZERO,
        slowest: Duration::ZERO,
        findings: Vec::new(),
        finding_count: 0,
    };
    let started = Instant::now();
    let mut input = Vec::with_capacity(options.max_len);
    let total = seeds.len() as u64 + options.iterations;
    for i in 0..total {
        input.clear();
        if (i as usize) < seeds.len() {
            input.extend_from_slice(&seeds[i as usize]);
        } else {
            mutator.mutate_from(&seeds, &mut input);
        }
        let t = Instant::now();
        let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            (target.run)(&mut state, &input)
        }));
        let took = t.elapsed();
        report.executions += 1;
        report.slowest = report.slowest.max(took);
        let kind = match outcome {
            Err(_) => Some("panic"),
            Ok(()) if took > options.hang => Some("hang"),
            Ok(()) => None,
        };
        if let Some(kind) = kind {
            report.finding_count += 1;
            if report.findings.len() < MAX_SAVED {
                let path = save_finding(&options.findings_dir, target.name, kind, &input);
                report.findings.push(path);
            }
            if options.stop_on_finding {
                break;
            }
        }
    }
    report.elapsed = started.elapsed();
    report
}

fn save_finding(dir: &Path, target: &str, kind: &str, input: &[u8]) -> PathBuf {
    // FNV-1a: a stable name for the same input.
    let hash = input.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, &b| {
        (h ^ b as u64).wrapping_mul(0x100_0000_01b3)
    });
    let path = dir.join(format!("{target}-{kind}-{hash:016x}"));
    let _ = std::fs::create_dir_all(dir);
    let _ = std::fs::write(&path, input);
    path
}
