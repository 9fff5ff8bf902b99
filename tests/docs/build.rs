//! Extracts the ```rust blocks of README.md and docs/*.md into `$OUT_DIR/doc_snippets.rs`, so
//! the docs test (tests/docs.rs) compiles and runs them as written: each block must be a whole
//! program whose entry point is `fn main() -> Result<(), Box<dyn std::error::Error>>`.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

/// The signature every documented Rust program has, so the test can call it.
const MAIN: &str = "fn main() -> Result<(), Box<dyn std::error::Error>>";

fn main() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"))
        .ancestors()
        .nth(2)
        .expect("tests/docs/ is two levels below the workspace root")
        .to_path_buf();
    let mut files = vec![root.join("README.md")];
    let mut docs: Vec<PathBuf> = std::fs::read_dir(root.join("docs"))
        .expect("read docs/")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "md"))
        .collect();
    docs.sort();
    files.extend(docs);
    println!("cargo:rerun-if-changed={}", root.join("docs").display());
    let (mut modules, mut table) = (String::new(), String::new());
    let mut n = 0;
    for file in &files {
        println!("cargo:rerun-if-changed={}", file.display());
        let text = std::fs::read_to_string(file).expect("read a doc file");
        let name = file
            .strip_prefix(&root)
            .unwrap_or(file)
            .display()
            .to_string();
        let mut block: Option<(usize, String)> = None;
        for (i, line) in text.lines().enumerate() {
            match &mut block {
                None if line.trim_end() == "```rust" => block = Some((i + 2, String::new())),
                Some((start, code)) if line.starts_with("```") => {
                    assert!(
                        code.contains(MAIN),
                        "{name}:{start}: a ```rust block must be a whole program with `{MAIN}` \
                         (the docs test runs it)"
                    );
                    let code = code.replace(MAIN, &format!("pub {MAIN}"));
                    writeln!(
                        modules,
                        "/// {name}:{start}\npub mod snippet_{n} {{\n{code}}}"
                    )
                    .unwrap();
                    writeln!(table, "    (\"{name}:{start}\", snippet_{n}::main),").unwrap();
                    n += 1;
                    block = None;
                }
                Some((_, code)) => {
                    code.push_str(line);
                    code.push('\n');
                }
                None => {}
            }
        }
    }
    let out = format!(
        "{modules}\n/// A documented program's `main`.\n\
         pub type Main = fn() -> Result<(), Box<dyn std::error::Error>>;\n\
         /// Every documented Rust program: where it is, and its `main`.\n\
         pub const SNIPPETS: &[(&str, Main)] = &[\n{table}];\n"
    );
    let path = Path::new(&std::env::var("OUT_DIR").expect("OUT_DIR")).join("doc_snippets.rs");
    std::fs::write(path, out).expect("write doc_snippets.rs");
}
