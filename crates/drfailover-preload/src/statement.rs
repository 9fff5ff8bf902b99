//! Which transaction keyword a statement's text starts with. Pure; reads at most the leading
//! comments and two words, so its cost does not grow with the statement. Only called off the
//! fast path (after a failure, or while a lost transaction waits for its end).

use crate::policy::StatementKind;

/// Classify `sql` (the bytes the program passed, not necessarily UTF-8 or NUL-terminated).
pub fn kind_of(sql: &[u8]) -> StatementKind {
    let mut words = Words { rest: sql };
    let first = words.next();
    let second = words.next();
    let is = |w: Option<&[u8]>, k: &str| w.is_some_and(|w| w.eq_ignore_ascii_case(k.as_bytes()));
    if is(first, "begin") || (is(first, "start") && is(second, "transaction")) {
        return StatementKind::Begin;
    }
    if is(first, "xa") && (is(second, "start") || is(second, "begin")) {
        return StatementKind::Begin;
    }
    if is(first, "commit") {
        return StatementKind::Commit;
    }
    // `ROLLBACK TO [SAVEPOINT] x` keeps the transaction open; `ROLLBACK`, `ROLLBACK WORK`,
    // `ROLLBACK AND CHAIN` end it.
    if is(first, "rollback") && !is(second, "to") {
        return StatementKind::Rollback;
    }
    StatementKind::Plain
}

/// Words of SQL, skipping whitespace and comments (`/* */`, `-- `, `#`); a word is a run of
/// ASCII letters, digits and `_`; anything else ends the scan.
struct Words<'a> {
    rest: &'a [u8],
}

impl<'a> Words<'a> {
    fn skip_blanks(&mut self) {
        loop {
            let r = self.rest;
            if let Some((c, tail)) = r.split_first() {
                if c.is_ascii_whitespace() || *c == b';' {
                    self.rest = tail;
                    continue;
                }
            }
            if r.starts_with(b"/*") {
                // `/*! … */` and `/*M! … */` are executable comments: their content is SQL,
                // which this reader does not look into; treat it as a plain statement.
                if r.get(2) == Some(&b'!') || r.starts_with(b"/*M!") {
                    self.rest = b"";
                    return;
                }
                self.rest = match r.windows(2).position(|w| w == b"*/") {
                    Some(end) => &r[end + 2..],
                    None => b"",
                };
                continue;
            }
            if r.starts_with(b"#") || r.starts_with(b"-- ") || r == b"--" {
                self.rest = match r.iter().position(|&c| c == b'\n') {
                    Some(end) => &r[end + 1..],
                    None => b"",
                };
                continue;
            }
            return;
        }
    }

    fn next(&mut self) -> Option<&'a [u8]> {
        self.skip_blanks();
        let len = self
            .rest
            .iter()
            .position(|c| !(c.is_ascii_alphanumeric() || *c == b'_'))
            .unwrap_or(self.rest.len());
        if len == 0 {
            return None;
        }
        let (word, tail) = self.rest.split_at(len);
        self.rest = tail;
        Some(word)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use StatementKind::*;

    #[test]
    fn transaction_keywords_are_recognised_in_any_case_and_spacing() {
        let cases: &[(&str, StatementKind)] = &[
            ("BEGIN", Begin),
            ("  begin work", Begin),
            ("START TRANSACTION", Begin),
            ("start\n\ttransaction read write", Begin),
            ("XA START 'x'", Begin),
            ("COMMIT", Commit),
            ("commit;", Commit),
            ("/* app */ COMMIT", Commit),
            ("-- note\nROLLBACK", Rollback),
            ("# note\nrollback work", Rollback),
            ("ROLLBACK TO SAVEPOINT a", Plain),
            ("rollback to a", Plain),
            ("INSERT INTO t VALUES (1)", Plain),
            ("SELECT 'BEGIN'", Plain),
            ("START SLAVE", Plain),
            ("BEGINNING", Plain),
            ("/*!40101 COMMIT */", Plain),
            ("", Plain),
            ("/* unterminated", Plain),
            ("--", Plain),
        ];
        for (sql, kind) in cases {
            assert_eq!(kind_of(sql.as_bytes()), *kind, "{sql:?}");
        }
    }

    #[test]
    fn bytes_that_are_not_text_are_plain_statements() {
        assert_eq!(kind_of(&[0xff, 0xfe, 0, 1]), Plain);
        assert_eq!(kind_of(b"\0BEGIN"), Plain);
    }
}
