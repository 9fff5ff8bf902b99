//! Secret resolution: the one rule every configuration surface (DSN keys, the C config
//! object, the orchestrator's TOML file) uses to turn `password`, `password_env` or
//! `password_file` into a password.
//!
//! The rule:
//! - inline and environment values are used as given;
//! - a file gives its **first line**: the text up to the first `\n`, without a `\r` right
//!   before it (`str::lines`; so `echo secret > pw` and a CRLF file both work; a password
//!   cannot contain a line break). The file is read with [`crate::read_text`] under
//!   [`crate::SECRET_FILE_LIMIT`]: a regular file of at most 4 KiB, UTF-8;
//! - whatever the source, a NUL byte is refused (the C client would cut the password there).
//!
//! Errors name the source (variable or reason), never the secret.

use std::fmt;
use std::path::Path;

use crate::{read_text, ReadError, SECRET_FILE_LIMIT};

/// Where a secret comes from. `Debug` shows the variable or path, never an inline value.
#[derive(Clone, Copy)]
pub enum SecretSource<'a> {
    /// Given inline.
    Inline(&'a str),
    /// The environment variable with this name.
    Env(&'a str),
    /// The file at this path.
    File(&'a Path),
}

impl fmt::Debug for SecretSource<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SecretSource::Inline(_) => f.write_str("Inline(***)"),
            SecretSource::Env(var) => f.debug_tuple("Env").field(var).finish(),
            SecretSource::File(path) => f.debug_tuple("File").field(path).finish(),
        }
    }
}

/// Why a secret could not be resolved. `Display` never shows the secret.
#[derive(Debug)]
pub enum SecretError {
    /// The environment variable is not set or not UTF-8 (its name).
    EnvUnset(String),
    /// The file could not be read (see [`ReadError`]).
    File(ReadError),
    /// The secret contains a NUL byte.
    Nul,
}

impl fmt::Display for SecretError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SecretError::EnvUnset(var) => {
                write!(f, "environment variable `{var}` is not set (or not UTF-8)")
            }
            SecretError::File(e) => write!(f, "{e}"),
            SecretError::Nul => f.write_str("the password contains a NUL byte"),
        }
    }
}

impl std::error::Error for SecretError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            SecretError::File(e) => Some(e),
            _ => None,
        }
    }
}

/// The secret `source` gives, by the rule in the module docs. A file source blocks on local
/// file I/O only (at most 4 KiB + 1 byte read); the others do not block.
pub fn resolve_secret(source: SecretSource<'_>) -> Result<String, SecretError> {
    let secret = match source {
        SecretSource::Inline(value) => value.to_string(),
        SecretSource::Env(var) => {
            std::env::var(var).map_err(|_| SecretError::EnvUnset(var.to_string()))?
        }
        SecretSource::File(path) => {
            let text = read_text(path, SECRET_FILE_LIMIT).map_err(SecretError::File)?;
            text.lines().next().unwrap_or("").to_string()
        }
    };
    if secret.contains('\0') {
        return Err(SecretError::Nul);
    }
    Ok(secret)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(content: &[u8]) -> (tempfile::TempDir, std::path::PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("pw");
        std::fs::write(&path, content).unwrap();
        (dir, path)
    }

    #[test]
    fn a_file_gives_its_first_line_without_the_line_ending() {
        for (content, want) in [
            (&b"s3cret\n"[..], "s3cret"),
            (b"s3cret", "s3cret"),
            (b"s3cret\r\n", "s3cret"),
            (b"s3cret\nsecond line\n", "s3cret"),
            (b" spaced \n", " spaced "),
            (b"", ""),
        ] {
            let (_dir, path) = file(content);
            assert_eq!(resolve_secret(SecretSource::File(&path)).unwrap(), want);
        }
    }

    #[test]
    fn nul_is_refused_from_every_source_without_showing_the_secret() {
        let (_dir, path) = file(b"SECRET\0X\n");
        let e = resolve_secret(SecretSource::File(&path)).unwrap_err();
        assert!(matches!(e, SecretError::Nul));
        assert!(!e.to_string().contains("SECRET"), "{e}");
        assert!(matches!(
            resolve_secret(SecretSource::Inline("a\0b")),
            Err(SecretError::Nul)
        ));
        assert_eq!(
            format!("{:?}", SecretSource::Inline("SECRET")),
            "Inline(***)"
        );
    }

    #[test]
    fn environment_and_inline_values_are_used_as_given() {
        assert_eq!(
            resolve_secret(SecretSource::Inline(" as is \n")).unwrap(),
            " as is \n"
        );
        let var = "DRFAILOVER_FILES_TEST_SURELY_UNSET";
        let e = resolve_secret(SecretSource::Env(var)).unwrap_err();
        assert!(matches!(&e, SecretError::EnvUnset(v) if v == var));
        let path = std::env::var("PATH").unwrap();
        assert_eq!(resolve_secret(SecretSource::Env("PATH")).unwrap(), path);
    }
}
