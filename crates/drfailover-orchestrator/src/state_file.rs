//! The state a successor needs, on disk (`state_dir`/`drfailover-orchestrator.state`): the
//! primary last seen healthy and the promotion in progress ([`SavedState`]). A small
//! versioned JSON document, at most [`STATE_FILE_LIMIT`] bytes, replaced atomically (written
//! to a temporary file, `fsync`ed, renamed over the old one, the directory `fsync`ed). It
//! holds names, addresses, GTIDs and times: never a secret.

use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::core::{Loaded, PromotionStep, SavedPrimary, SavedPromotion, SavedState};
use crate::gtid::{GtidPos, GtidState};

/// Largest state file read or written (64 KiB: a binlog state of hundreds of domains).
pub const STATE_FILE_LIMIT: u64 = 64 << 10;

/// The format version this orchestrator writes and reads.
pub const STATE_VERSION: u32 = 1;

/// The file's name inside `state_dir`.
pub const STATE_FILE_NAME: &str = "drfailover-orchestrator.state";

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Record {
    version: u32,
    primary: Option<PrimaryRecord>,
    promotion: Option<PromotionRecord>,
    #[serde(default)]
    former_primaries: Vec<String>,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct PrimaryRecord {
    name: String,
    address: String,
    server_id: u32,
    semi_sync_enabled: bool,
    semi_sync_active: bool,
    after_sync: bool,
    binlog_state: String,
    replicated: String,
    seen_at_unix_ms: u64,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct PromotionRecord {
    old_primary: String,
    candidate: String,
    candidate_received: String,
    step: String,
    started_at_unix_ms: u64,
}

/// The state file of one orchestrator configuration. Holds only its path.
#[derive(Clone, Debug)]
pub struct StateFile {
    path: PathBuf,
}

impl StateFile {
    /// The state file in directory `dir` (nothing is read or created yet).
    pub fn in_dir(dir: &Path) -> StateFile {
        StateFile {
            path: dir.join(STATE_FILE_NAME),
        }
    }

    /// Its path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Read the state: [`Loaded::Missing`] when there is no file, [`Loaded::Unreadable`]
    /// (with why, never the content) when it is not a regular file of at most
    /// [`STATE_FILE_LIMIT`] bytes in this format and version. Blocks on one small local read.
    pub fn load(&self) -> Loaded {
        if !self.path.exists() {
            return Loaded::Missing;
        }
        let text = match drfailover_files::read_text(&self.path, STATE_FILE_LIMIT) {
            Ok(t) => t,
            Err(e) => return Loaded::Unreadable(format!("{}: {e}", self.path.display())),
        };
        match parse(&text) {
            Ok(state) => Loaded::Found(state),
            Err(why) => Loaded::Unreadable(format!("{}: {why}", self.path.display())),
        }
    }

    /// Replace the state with `state`, atomically: a temporary file beside it, written and
    /// `fsync`ed, renamed over the file, then the directory `fsync`ed. Blocks on local disk
    /// I/O (two `fsync`s: about a millisecond on an idle SSD, more on a busy disk).
    pub fn save(&self, state: &SavedState) -> Result<(), String> {
        let text = render(state);
        if text.len() as u64 > STATE_FILE_LIMIT {
            return Err(format!(
                "state of {} bytes exceeds the {STATE_FILE_LIMIT}-byte limit: not written",
                text.len()
            ));
        }
        let dir = self.path.parent().unwrap_or(Path::new("."));
        let temp = self.path.with_extension("state.tmp");
        let shown = |e: std::io::Error| format!("{}: {e}", temp.display());
        let mut file = std::fs::File::create(&temp).map_err(shown)?;
        file.write_all(text.as_bytes()).map_err(shown)?;
        file.sync_all().map_err(shown)?;
        drop(file);
        std::fs::rename(&temp, &self.path).map_err(|e| format!("{}: {e}", self.path.display()))?;
        std::fs::File::open(dir)
            .and_then(|d| d.sync_all())
            .map_err(|e| format!("{}: {e}", dir.display()))
    }
}

/// The document for `state` (JSON, one line).
fn render(state: &SavedState) -> String {
    let record = Record {
        version: STATE_VERSION,
        primary: state.primary.as_ref().map(|p| PrimaryRecord {
            name: p.name.clone(),
            address: p.address.clone(),
            server_id: p.server_id,
            semi_sync_enabled: p.semi_sync_enabled,
            semi_sync_active: p.semi_sync_active,
            after_sync: p.after_sync,
            binlog_state: p.binlog_state.to_string(),
            replicated: p.replicated.to_string(),
            seen_at_unix_ms: p.seen_at_unix_ms,
        }),
        promotion: state.promotion.as_ref().map(|p| PromotionRecord {
            old_primary: p.old_primary.clone(),
            candidate: p.candidate.clone(),
            candidate_received: p.candidate_received.to_string(),
            step: p.step.as_str().to_string(),
            started_at_unix_ms: p.started_at_unix_ms,
        }),
        former_primaries: state.former_primaries.clone(),
    };
    serde_json::to_string(&record).expect("plain data serializes")
}

/// Parse a state document; the error says what is wrong without quoting values.
fn parse(text: &str) -> Result<SavedState, String> {
    let version: serde_json::Value = serde_json::from_str(text).map_err(|e| {
        format!(
            "not a state document (line {}, column {})",
            e.line(),
            e.column()
        )
    })?;
    match version.get("version").and_then(serde_json::Value::as_u64) {
        Some(v) if v == u64::from(STATE_VERSION) => {}
        Some(v) => {
            return Err(format!(
                "format version {v}; this orchestrator reads version {STATE_VERSION}"
            ))
        }
        None => return Err("no format version".into()),
    }
    let record: Record = serde_json::from_value(version)
        .map_err(|e| format!("malformed state: {}", e.classify_text()))?;
    let primary = match record.primary {
        None => None,
        Some(p) => Some(SavedPrimary {
            binlog_state: GtidState::parse(&p.binlog_state)
                .map_err(|_| "primary binlog_state: not a GTID list")?,
            replicated: GtidPos::parse(&p.replicated)
                .map_err(|_| "primary replicated: not a GTID position")?,
            name: p.name,
            address: p.address,
            server_id: p.server_id,
            semi_sync_enabled: p.semi_sync_enabled,
            semi_sync_active: p.semi_sync_active,
            after_sync: p.after_sync,
            seen_at_unix_ms: p.seen_at_unix_ms,
        }),
    };
    let promotion = match record.promotion {
        None => None,
        Some(p) => Some(SavedPromotion {
            candidate_received: GtidPos::parse(&p.candidate_received)
                .map_err(|_| "promotion candidate_received: not a GTID position")?,
            step: PromotionStep::parse(&p.step).ok_or("promotion step: unknown step")?,
            old_primary: p.old_primary,
            candidate: p.candidate,
            started_at_unix_ms: p.started_at_unix_ms,
        }),
    };
    Ok(SavedState {
        primary,
        promotion,
        former_primaries: record.former_primaries,
    })
}

/// A serde error's kind, without the values it may quote.
trait ClassifyText {
    fn classify_text(&self) -> String;
}

impl ClassifyText for serde_json::Error {
    fn classify_text(&self) -> String {
        let kind = match self.classify() {
            serde_json::error::Category::Io => "read error",
            serde_json::error::Category::Syntax => "syntax error",
            serde_json::error::Category::Data => "a field is missing, unknown or of the wrong type",
            serde_json::error::Category::Eof => "truncated",
        };
        kind.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> SavedState {
        SavedState {
            primary: Some(SavedPrimary {
                name: "db1".into(),
                address: "127.0.0.1:3306".into(),
                server_id: 1,
                semi_sync_enabled: true,
                semi_sync_active: true,
                after_sync: true,
                binlog_state: GtidState::parse("0-1-100,0-2-7").unwrap(),
                replicated: GtidPos::parse("0-1-99").unwrap(),
                seen_at_unix_ms: 1_700_000_000_000,
            }),
            promotion: Some(SavedPromotion {
                old_primary: "db1".into(),
                candidate: "db2".into(),
                candidate_received: GtidPos::parse("0-1-100").unwrap(),
                step: PromotionStep::Detached,
                started_at_unix_ms: 1_700_000_000_500,
            }),
            former_primaries: vec!["db0".into()],
        }
    }

    #[test]
    fn saved_state_reads_back_the_same() {
        let dir = tempfile::tempdir().unwrap();
        let file = StateFile::in_dir(dir.path());
        assert_eq!(file.load(), Loaded::Missing);
        file.save(&sample()).unwrap();
        assert_eq!(file.load(), Loaded::Found(sample()));
        file.save(&SavedState::default()).unwrap();
        assert_eq!(file.load(), Loaded::Found(SavedState::default()));
        assert!(!dir
            .path()
            .join("drfailover-orchestrator.state.tmp")
            .exists());
    }

    #[test]
    fn bad_files_are_unreadable_with_a_reason_and_never_their_content() {
        let dir = tempfile::tempdir().unwrap();
        let file = StateFile::in_dir(dir.path());
        let cases = [
            ("password=hunter2", "not a state document"),
            (
                r#"{"version":2,"primary":null,"promotion":null}"#,
                "format version 2",
            ),
            (r#"{"primary":null}"#, "no format version"),
            (
                r#"{"version":1,"primary":null,"promotion":null,"secret":"hunter2"}"#,
                "unknown",
            ),
            (
                r#"{"version":1,"primary":{"name":"a","address":"b","server_id":1,"semi_sync_enabled":true,"semi_sync_active":true,"after_sync":true,"binlog_state":"hunter2","replicated":"","seen_at_unix_ms":1},"promotion":null}"#,
                "binlog_state",
            ),
        ];
        for (text, expected) in cases {
            std::fs::write(file.path(), text).unwrap();
            match file.load() {
                Loaded::Unreadable(why) => {
                    assert!(why.contains(expected), "{text}: {why}");
                    assert!(!why.contains("hunter2"), "{text}: {why}");
                }
                other => panic!("{text}: {other:?}"),
            }
        }
        std::fs::write(file.path(), vec![b' '; STATE_FILE_LIMIT as usize + 1]).unwrap();
        assert!(matches!(file.load(), Loaded::Unreadable(_)));
    }
}
