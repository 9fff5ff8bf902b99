//! Extracts the ```rust blocks of README.md and docs/*.md into `$OUT_DIR/doc_snippets.rs`, so
//! the docs test (tests/docs.rs) compiles and runs them as written: each block must be a whole
//! program whose entry point is `fn main() -> Result<(), Box<dyn std::error::Error>>`.

use std::fmt::Write as _;
use std::path::Path;

#[path = "src/lib.rs"]
mod pages;

/// The signature every documented Rust program has, so the test can call it.
const MAIN: &str = "fn main() -> Result<(), Box<dyn std::error::Error>>";

fn main() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"))
        .ancestors()
        .nth(2)
        .expect("tests/docs/ is two levels below the workspace root")
        .to_path_buf();
    println!("cargo:rerun-if-changed={}", root.join("docs").display());
    println!(
        "cargo:rerun-if-changed={}",
        root.join("README.md").display()
    );
    let (mut modules, mut table) = (String::new(), String::new());
    let mut n = 0;
    for (name, text) in pages::doc_files(&root) {
        println!("cargo:rerun-if-changed={}", root.join(&name).display());
        for (start, code) in pages::blocks(&text, "rust") {
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
