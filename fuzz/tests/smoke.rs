//! The fuzz smoke run of `scripts/test`: every target on its whole corpus, then a few
//! thousand seeded mutations each (seconds). The long runs use the binary (README).

use std::path::Path;
use std::time::Duration;

use drfailover_fuzz::{campaign, load_corpus, Options, TARGETS};

#[test]
fn every_target_survives_its_corpus_and_a_short_mutation_run() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("corpus");
    let findings =
        std::env::temp_dir().join(format!("drfailover-fuzz-smoke-{}", std::process::id()));
    for target in TARGETS.iter().filter(|t| t.smoke) {
        let corpus = load_corpus(&root.join(target.name));
        assert!(!corpus.is_empty(), "fuzz/corpus/{} is empty", target.name);
        let options = Options {
            iterations: 20_000,
            seed: 0x5eed,
            hang: Duration::from_secs(5),
            findings_dir: findings.clone(),
            ..Options::default()
        };
        let report = campaign(target, &corpus, &options);
        assert_eq!(report.executions, corpus.len() as u64 + 20_000);
        assert!(
            report.findings.is_empty(),
            "{}: findings {:?}",
            target.name,
            report.findings
        );
    }
}

fn panics_on_xyz(_: &mut drfailover_fuzz::targets::State, input: &[u8]) {
    assert!(!input.windows(3).any(|w| w == b"xyz"), "found it");
}

fn no_state() -> drfailover_fuzz::targets::State {
    (TARGETS[0].setup)()
}

#[test]
fn the_loop_finds_a_planted_bug_and_saves_the_input() {
    std::panic::set_hook(Box::new(|_| {}));
    let target = drfailover_fuzz::FuzzTarget {
        name: "planted",
        about: "panics on xyz",
        setup: no_state,
        run: panics_on_xyz,
        dictionary: &[b"z"],
        smoke: true,
    };
    let dir = std::env::temp_dir().join(format!("drfailover-fuzz-planted-{}", std::process::id()));
    let options = Options {
        iterations: 1_000_000,
        findings_dir: dir.clone(),
        ..Options::default()
    };
    let report = campaign(&target, &[b"xy".to_vec()], &options);
    let _ = std::panic::take_hook();
    assert_eq!(report.findings.len(), 1, "{report:?}");
    let saved = std::fs::read(&report.findings[0]).unwrap();
    assert!(saved.windows(3).any(|w| w == b"xyz"));
    assert!(report.executions < 1_000_000);
    let _ = std::fs::remove_dir_all(dir);
}
