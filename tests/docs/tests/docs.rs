//! The documentation runs as written. Every ```c and ```rust block of README.md and docs/*.md
//! is a whole program: compiled and run against real servers (the Rust ones are extracted by
//! build.rs and compiled into this test). Every `scripts/…`, `cargo run …` and `drfailover …`
//! command in them (in ```sh blocks and in inline code) is resolved: it answers `--help`, and
//! the help names every option the docs use.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use drfailover_docs::blocks;
use drfailover_testkit::cprog::{built_library_dir, compile_c, profile_dir, workspace_root};
use drfailover_testkit::Topology;

#[allow(missing_docs, dead_code, unused_imports)]
mod snippets {
    include!(concat!(env!("OUT_DIR"), "/doc_snippets.rs"));
}

/// README.md and docs/*.md: (path relative to the workspace root, text).
fn doc_files() -> Vec<(String, String)> {
    drfailover_docs::doc_files(&workspace_root())
}

/// The text of `text` outside fenced blocks (for inline code spans).
fn prose(text: &str) -> String {
    let mut inside = false;
    let mut out = String::new();
    for line in text.lines() {
        if line.starts_with("```") {
            inside = !inside;
        } else if !inside {
            out.push_str(line);
            out.push('\n');
        }
    }
    out
}

/// Runs `cmd` to completion within `limit`, killing it after that.
fn run_bounded(cmd: &mut Command, limit: Duration) -> Result<Output, String> {
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("spawn {cmd:?}: {e}"))?;
    let started = Instant::now();
    while child.try_wait().map_err(|e| e.to_string())?.is_none() {
        if started.elapsed() > limit {
            let _ = child.kill();
            let _ = child.wait();
            return Err(format!("{cmd:?} still running after {limit:?}"));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    child.wait_with_output().map_err(|e| e.to_string())
}

fn output_text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

#[test]
fn c_blocks_compile_and_run_against_real_servers() {
    let topo = Topology::primary_replica().unwrap_or_else(|e| panic!("{e}"));
    let lib = built_library_dir().unwrap_or_else(|e| panic!("{e}"));
    let work = tempfile::tempdir().unwrap();
    let mut ran = 0;
    for (file, text) in doc_files() {
        for (line, code) in blocks(&text, "c") {
            let stem = format!("{}_{line}", file.replace(['/', '.'], "_"));
            let source = work.path().join(format!("{stem}.c"));
            std::fs::write(&source, &code).unwrap();
            let program = compile_c(source.to_str().unwrap(), &lib, work.path())
                .unwrap_or_else(|e| panic!("{file}:{line}: {e}"));
            // Against a real primary + replica, with the DSN the lab would print.
            let out = run_bounded(
                Command::new(&program).env("DRFAILOVER_DSN", topo.dsn("")),
                Duration::from_secs(60),
            )
            .unwrap_or_else(|e| panic!("{file}:{line}: {e}"));
            println!("{file}:{line}:\n{}", output_text(&out));
            assert!(
                out.status.success(),
                "{file}:{line} failed: {}",
                output_text(&out)
            );
            // No writer anywhere, and no DSN at all: a clear failure, never a crash.
            for dsn in [
                Some("mysql://app:pw@127.0.0.1:1/app?failover_timeout_ms=500"),
                None,
            ] {
                let mut cmd = Command::new(&program);
                match dsn {
                    Some(d) => cmd.env("DRFAILOVER_DSN", d),
                    None => cmd.env_remove("DRFAILOVER_DSN"),
                };
                let out = run_bounded(&mut cmd, Duration::from_secs(60))
                    .unwrap_or_else(|e| panic!("{file}:{line}: {e}"));
                assert_eq!(
                    out.status.code(),
                    Some(1),
                    "{file}:{line} with DSN {dsn:?}: want exit 1, got {:?}: {}",
                    out.status,
                    output_text(&out)
                );
            }
            ran += 1;
        }
    }
    assert!(ran > 0, "no ```c block found in README.md or docs/");
}

#[test]
fn rust_blocks_run_against_real_servers() {
    assert!(
        !snippets::SNIPPETS.is_empty(),
        "no ```rust block found in README.md or docs/"
    );
    let topo = Topology::primary_replica().unwrap_or_else(|e| panic!("{e}"));
    // Only this test reads the variable (the C test passes it to its children directly).
    std::env::set_var("DRFAILOVER_DSN", topo.dsn(""));
    for (place, main) in snippets::SNIPPETS {
        if let Err(e) = main() {
            panic!("{place}: {e}");
        }
        println!("{place}: ok");
    }
    std::env::set_var(
        "DRFAILOVER_DSN",
        "mysql://app:pw@127.0.0.1:1/app?failover_timeout_ms=500",
    );
    for (place, main) in snippets::SNIPPETS {
        assert!(main().is_err(), "{place}: succeeded without a server");
    }
}

/// A documented command, normalised: `sudo`, `nice -n N` and `VAR=value` prefixes dropped,
/// whitespace collapsed.
fn normalise(command: &str) -> String {
    let mut words: Vec<&str> = command.split_whitespace().collect();
    loop {
        match words.as_slice() {
            ["sudo", ..] => {
                words.remove(0);
            }
            ["nice", "-n", _, ..] => {
                words.drain(..3);
            }
            [w, ..] if w.contains('=') && !w.starts_with('-') => {
                words.remove(0);
            }
            _ => break,
        }
    }
    words.join(" ")
}

/// Every `scripts/…`, `cargo run …`, `drfailover …` and `target/debug/…` command in the docs:
/// (where, command).
fn documented_commands() -> BTreeSet<(String, String)> {
    let mut out = BTreeSet::new();
    for (file, text) in doc_files() {
        let mut candidates: Vec<String> = blocks(&text, "sh")
            .into_iter()
            .flat_map(|(_, code)| {
                code.lines()
                    .map(|l| l.split(" #").next().unwrap_or("").trim().to_string())
                    .collect::<Vec<_>>()
            })
            .collect();
        candidates.extend(
            prose(&text)
                .split('`')
                .skip(1)
                .step_by(2)
                .map(str::to_string),
        );
        for c in candidates {
            let c = normalise(&c);
            let known = ["scripts/", "cargo run ", "drfailover ", "target/debug/"]
                .iter()
                .any(|p| c.starts_with(p));
            // Placeholders ("scripts/…", "cargo run …") name no command.
            if known && !c.contains('…') && !c.ends_with('/') {
                out.insert((file.clone(), c));
            }
        }
    }
    out
}

/// The options (`--name`) a documented command uses.
fn options(command: &str) -> Vec<String> {
    let mut out = Vec::new();
    for word in command.split(|c: char| c.is_whitespace() || "[]()|".contains(c)) {
        if let Some(name) = word.strip_prefix("--") {
            let name: String = name
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '-')
                .collect();
            if !name.is_empty() && name != "help" {
                out.push(format!("--{name}"));
            }
        }
    }
    out
}

/// The program `cargo run …` (`words`) would run, as cargo picks it from the manifest: the
/// `--bin` or `--example` named, else the package's `default-run`, else its only binary.
/// Relative to the profile directory (`drfailover-bench`, `examples/check`).
fn cargo_run_target(words: &[&str]) -> Result<String, String> {
    let split = words.iter().position(|w| *w == "--").unwrap_or(words.len());
    let flag = |name: &str| {
        words[..split]
            .iter()
            .position(|w| *w == name)
            .and_then(|i| words.get(i + 1).copied())
    };
    let package = flag("-p").ok_or("no -p PACKAGE")?;
    let manifest = workspace_root().join(match package {
        "drfailover-testkit" => "tests".to_string(),
        "drfailover-bench" => "bench".to_string(),
        "drfailover-fuzz" => "fuzz".to_string(),
        p => format!("crates/{p}"),
    });
    let text = std::fs::read_to_string(manifest.join("Cargo.toml"))
        .map_err(|e| format!("package {package}: {e}"))?;
    let toml: toml::Value = toml::from_str(&text).map_err(|e| format!("{package}: {e}"))?;
    // [[bin]] names; none declared means one binary named after the package (src/main.rs).
    let mut bins: Vec<String> = toml
        .get("bin")
        .and_then(|b| b.as_array())
        .map(|bins| {
            bins.iter()
                .filter_map(|b| b.get("name")?.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default();
    if bins.is_empty() && manifest.join("src/main.rs").exists() {
        bins.push(package.to_string());
    }
    let default_run = toml
        .get("package")
        .and_then(|p| p.get("default-run"))
        .and_then(|d| d.as_str());
    if let Some(example) = flag("--example") {
        let file = manifest.join("examples").join(format!("{example}.rs"));
        return if file.exists() {
            Ok(format!("examples/{example}"))
        } else {
            Err(format!("package {package} has no example {example}"))
        };
    }
    match (flag("--bin"), default_run, bins.as_slice()) {
        (Some(bin), _, _) if bins.iter().any(|b| b == bin) => Ok(bin.to_string()),
        (Some(bin), _, _) => Err(format!("package {package} has no binary {bin}")),
        (None, Some(default), _) => Ok(default.to_string()),
        (None, None, [only]) => Ok(only.clone()),
        (None, None, _) => Err(format!(
            "cargo run could not determine which binary to run in {package} ({bins:?}): \
             give the package a default-run or the command a --bin"
        )),
    }
}

/// `cargo build [-p PACKAGE] --bin PROGRAM` in the test's own profile (cargo's lock on the
/// target directory serialises it with other builds). Blocking: a build when it is missing.
/// Without a package, cargo looks for the program in every workspace member.
fn build_program(package: Option<&str>, program: &str) -> Result<(), String> {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut cmd = Command::new(cargo);
    cmd.current_dir(workspace_root()).args(["build", "--quiet"]);
    if let Some(package) = package {
        cmd.args(["-p", package]);
    }
    let out = cmd
        .args(["--bin", program])
        .output()
        .map_err(|e| format!("run cargo: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "cargo build --bin {program}: {}",
            output_text(&out)
        ))
    }
}

/// The CLI binary, built if this test run did not build it.
fn cli_binary() -> PathBuf {
    let bin = profile_dir().join("drfailover");
    if !bin.exists() {
        build_program(Some("drfailover-cli"), "drfailover").unwrap_or_else(|e| panic!("{e}"));
    }
    bin
}

/// `--help` of one documented command (and of its subcommands, for the CLI), or why not.
fn help_of(command: &str, root: &Path) -> Result<String, String> {
    let words: Vec<&str> = command.split_whitespace().collect();
    let limit = Duration::from_secs(300);
    let help = |mut cmd: Command| -> Result<String, String> {
        let out = run_bounded(cmd.current_dir(root), limit)?;
        if out.status.success() {
            Ok(output_text(&out))
        } else {
            Err(format!(
                "{cmd:?} exited with {}: {}",
                out.status,
                output_text(&out)
            ))
        }
    };
    if let Some(script) = words[0].strip_prefix("scripts/") {
        let mut cmd = Command::new(root.join("scripts").join(script));
        cmd.arg("--help");
        return help(cmd);
    }
    if words[0] == "cargo" {
        // cargo run [--release] -p PACKAGE [--bin B | --example E] [-- ARGS], dry: cargo's
        // own rule picks the target from the package's manifest, and the program this build
        // made (debug) answers --help; examples take their own arguments, so an example only
        // has to exist.
        let program = cargo_run_target(&words)?;
        if program.starts_with("examples/") {
            return Ok(String::new());
        }
        let path = profile_dir().join(&program);
        if !path.exists() {
            // `cargo test` alone does not build every package's programs: build this one.
            let package = words
                .iter()
                .position(|w| *w == "-p")
                .and_then(|i| words.get(i + 1))
                .ok_or("no -p PACKAGE")?;
            build_program(Some(package), &program)?;
        }
        let mut cmd = Command::new(path);
        cmd.arg("--help");
        return help(cmd);
    }
    // Other programs of the build (`target/debug/drfailover-topo …`).
    if let Some(program) = words[0].strip_prefix("target/debug/") {
        if program != "drfailover" {
            if !profile_dir().join(program).exists() {
                build_program(None, program)?;
            }
            let mut cmd = Command::new(profile_dir().join(program));
            cmd.arg("--help");
            return help(cmd);
        }
    }
    let cli = cli_binary();
    let verb = words.get(1).copied().unwrap_or("--help");
    let mut cmd = Command::new(&cli);
    if verb.chars().all(|c| c.is_ascii_uppercase()) {
        // A placeholder (`drfailover COMMAND --help`): the commands' list.
        cmd.arg("--help");
        return help(cmd);
    }
    if verb.starts_with('-') {
        // A top-level flag (`--version`): running it is the check.
        cmd.arg(verb);
        return help(cmd).map(|out| format!("{out}\n{verb}"));
    }
    cmd.args([verb, "--help"]);
    let mut all = help(cmd)?;
    // Subcommands (`dns … show | set …`): their options are in their own help.
    for word in &words[2..] {
        if word.chars().all(|c| c.is_ascii_lowercase() || c == '-') && !word.starts_with('-') {
            let mut sub = Command::new(&cli);
            sub.args([verb, word, "--help"]);
            if let Ok(text) = help(sub) {
                all.push_str(&text);
            }
        }
    }
    Ok(all)
}

#[test]
fn documented_commands_answer_help_with_their_options() {
    let root = workspace_root();
    let commands = documented_commands();
    assert!(
        commands.iter().any(|(_, c)| c.starts_with("scripts/demo"))
            && commands.iter().any(|(_, c)| c.starts_with("cargo run")),
        "the docs' commands were not found: {commands:?}"
    );
    let mut failures = Vec::new();
    let mut helps: std::collections::HashMap<String, Result<String, String>> = Default::default();
    for (file, command) in &commands {
        // One help per program (cargo target, script, CLI verb).
        let words: Vec<&str> = command.split_whitespace().collect();
        let key = if words[0] == "cargo" {
            let split = words.iter().position(|w| *w == "--").unwrap_or(words.len());
            words[..split].join(" ").replace(" --release", "")
        } else {
            command.clone()
        };
        let help = helps
            .entry(key)
            .or_insert_with(|| help_of(command, &root))
            .clone();
        match help {
            Err(e) => failures.push(format!("{file}: `{command}`: {e}")),
            Ok(help) if command.contains("--example") => drop(help),
            Ok(help) => {
                // For `cargo run`, the program's own options: those after `--`.
                let used = if words[0] == "cargo" {
                    command.split_once(" -- ").map_or("", |(_, args)| args)
                } else {
                    command.as_str()
                };
                for option in options(used) {
                    if !help.contains(&option) {
                        failures.push(format!(
                            "{file}: `{command}`: {option} is not in its --help"
                        ));
                    }
                }
            }
        }
        println!("{file}: {command}: ok");
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn orchestrator_configurations_in_the_docs_parse() {
    let mut parsed = 0;
    for (file, text) in doc_files() {
        for (line, block) in blocks(&text, "toml") {
            // Whole configurations (the [[announce]]-only fragments are checked with the
            // announcers' own parser by the CLI's dns tests).
            if !block.contains("[[node]]") {
                continue;
            }
            // The secrets it names: its password variables set, its files (under
            // /etc/drfailover/) stood in for by files of the test's own.
            let files = tempfile::tempdir().unwrap();
            let mut block = block.clone();
            for word in block.clone().split('"') {
                if let Some(name) = word.strip_prefix("/etc/drfailover/") {
                    let stand_in = files.path().join(name);
                    std::fs::write(&stand_in, "doc-example-secret-0123456789\n").unwrap();
                    block = block.replace(word, stand_in.to_str().unwrap());
                }
            }
            for line in block.lines() {
                if let Some(var) = line.trim().strip_prefix("password_env = \"") {
                    let var = var.split('"').next().unwrap_or("");
                    // Only this test reads these variables.
                    std::env::set_var(var, "doc-example-pw");
                }
            }
            if let Err(e) = drfailover_orchestrator::Config::parse(&block) {
                panic!("{file}:{line}: {e}");
            }
            parsed += 1;
        }
    }
    assert!(
        parsed > 0,
        "no orchestrator configuration found in the docs"
    );
}
