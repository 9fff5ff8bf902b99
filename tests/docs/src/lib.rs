//! The documentation as the docs test reads it: README.md and docs/*.md, and their fenced
//! blocks. Used by the test (`tests/docs.rs`) and by the build script that extracts the
//! documented Rust programs for it (included there by path), apart from the harness so that
//! editing a page rebuilds only this package.

use std::path::{Path, PathBuf};

/// README.md and docs/*.md under the workspace root `root`, in a stable order: (path relative
/// to the root, text). Blocks on reading them; panics when one cannot be read.
pub fn doc_files(root: &Path) -> Vec<(String, String)> {
    let mut paths = vec![root.join("README.md")];
    let mut docs: Vec<PathBuf> = std::fs::read_dir(root.join("docs"))
        .expect("read docs/")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "md"))
        .collect();
    docs.sort();
    paths.extend(docs);
    paths
        .into_iter()
        .map(|p| {
            let text = std::fs::read_to_string(&p).expect("read a doc file");
            let name = p.strip_prefix(root).unwrap_or(&p).display().to_string();
            (name, text)
        })
        .collect()
}

/// The fenced blocks of `text` opened by exactly "```lang": (first line number, code).
pub fn blocks(text: &str, lang: &str) -> Vec<(usize, String)> {
    let mut out = Vec::new();
    let mut current: Option<(usize, String)> = None;
    let mut other = false;
    for (i, line) in text.lines().enumerate() {
        if line.starts_with("```") {
            match current.take() {
                Some(block) => out.push(block),
                None if other => other = false,
                None if line.trim_end() == format!("```{lang}") => {
                    current = Some((i + 2, String::new()))
                }
                None => other = true,
            }
        } else if let Some((_, code)) = &mut current {
            code.push_str(line);
            code.push('\n');
        }
    }
    out
}
