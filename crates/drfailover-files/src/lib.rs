//! Bounded reads of the small files a configuration names (password files, MySQL option files,
//! TSIG key files, AWS credential files, TOML configurations).
//!
//! One rule for all of them, so that a careless or hostile path (`/dev/zero`, a FIFO, a
//! directory, a 1 GiB file) gives a clear error at once instead of a hang or unbounded memory:
//!
//! - regular files only: the path is checked with `stat` before it is opened (a device or FIFO
//!   is never opened: opening one can block or have side effects), opened with `O_NONBLOCK`
//!   and `O_NOCTTY`, and the opened file is checked again with `fstat` (a path replaced in
//!   between is caught, and the non-blocking open cannot hang on a FIFO swapped in);
//! - a size limit chosen by the caller: at most `limit + 1` bytes are ever read, so a file
//!   that grows while it is read costs at most that;
//! - errors ([`ReadError`]) say what the file is or why it was refused, never its content.
//!
//! Every function blocks on local file I/O only (one `stat`, one `open`, one `fstat`, reads
//! of at most `limit + 1` bytes).
//!
//! [`resolve_secret`] applies the one rule for passwords (inline, environment or file) on top.

use std::fmt;
use std::fs::{File, Metadata, OpenOptions};
use std::io::Read;
use std::os::unix::fs::{FileTypeExt, OpenOptionsExt};
use std::path::Path;

mod secret;
pub use secret::{resolve_secret, SecretError, SecretSource};

/// Limit for a password file (4 KiB: far above any real password, MySQL's included).
pub const SECRET_FILE_LIMIT: u64 = 4 << 10;

/// Limit for a MySQL option file (`defaults_file`) or a TSIG key file (64 KiB).
pub const OPTION_FILE_LIMIT: u64 = 64 << 10;

/// Limit for a TOML configuration or an AWS credentials/config file (1 MiB).
pub const CONFIG_FILE_LIMIT: u64 = 1 << 20;

/// Why a file was not read. `Display` never shows the file's content.
#[derive(Debug)]
pub enum ReadError {
    /// Opening, inspecting or reading failed (the operating system's reason).
    Io(std::io::Error),
    /// Not a regular file; says what it is ("a directory", "a FIFO", …).
    NotRegular(&'static str),
    /// Larger than the limit (in bytes).
    TooLarge(u64),
    /// The content is not UTF-8 (from [`read_text`]).
    NotUtf8,
}

impl ReadError {
    /// Whether the file (or a directory on its path) does not exist.
    pub fn is_not_found(&self) -> bool {
        matches!(self, ReadError::Io(e) if e.kind() == std::io::ErrorKind::NotFound)
    }
}

impl fmt::Display for ReadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ReadError::Io(e) => write!(f, "cannot read it: {e}"),
            ReadError::NotRegular(what) => write!(f, "it is {what}, not a regular file"),
            ReadError::TooLarge(limit) => write!(f, "it is larger than {limit} bytes"),
            ReadError::NotUtf8 => write!(f, "it is not UTF-8 text"),
        }
    }
}

impl std::error::Error for ReadError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            ReadError::Io(e) => Some(e),
            _ => None,
        }
    }
}

impl From<std::io::Error> for ReadError {
    fn from(e: std::io::Error) -> Self {
        ReadError::Io(e)
    }
}

/// What `meta` describes, unless it is a regular file no larger than `limit`.
fn check(meta: &Metadata, limit: u64) -> Result<(), ReadError> {
    let t = meta.file_type();
    if !t.is_file() {
        return Err(ReadError::NotRegular(if t.is_dir() {
            "a directory"
        } else if t.is_fifo() {
            "a FIFO"
        } else if t.is_socket() {
            "a socket"
        } else if t.is_char_device() {
            "a character device"
        } else if t.is_block_device() {
            "a block device"
        } else {
            "not a file"
        }));
    }
    if meta.len() > limit {
        return Err(ReadError::TooLarge(limit));
    }
    Ok(())
}

/// The bytes of the regular file at `path` (symbolic links followed), if it holds at most
/// `limit` bytes. Never reads more than `limit + 1` bytes and never blocks on a FIFO or
/// device. Blocks on local file I/O only.
pub fn read_bytes(path: &Path, limit: u64) -> Result<Vec<u8>, ReadError> {
    check(&std::fs::metadata(path)?, limit)?;
    let file: File = OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK | libc::O_NOCTTY)
        .open(path)?;
    let meta = file.metadata()?;
    check(&meta, limit)?;
    let mut bytes = Vec::with_capacity(meta.len().min(limit) as usize + 1);
    file.take(limit.saturating_add(1)).read_to_end(&mut bytes)?;
    if bytes.len() as u64 > limit {
        return Err(ReadError::TooLarge(limit));
    }
    Ok(bytes)
}

/// [`read_bytes`] as UTF-8 text.
pub fn read_text(path: &Path, limit: u64) -> Result<String, ReadError> {
    String::from_utf8(read_bytes(path, limit)?).map_err(|_| ReadError::NotUtf8)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;
    use std::time::{Duration, Instant};

    /// A fresh directory for one test, removed when dropped.
    struct Dir(std::path::PathBuf);

    impl Dir {
        fn new(test: &str) -> Dir {
            let d = std::env::temp_dir()
                .join(format!("drfailover-files-{}-{test}", std::process::id()));
            let _ = std::fs::remove_dir_all(&d);
            std::fs::create_dir_all(&d).unwrap();
            Dir(d)
        }

        fn join(&self, name: &str) -> std::path::PathBuf {
            self.0.join(name)
        }
    }

    impl Drop for Dir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    #[test]
    fn a_small_regular_file_is_read_whole() {
        let dir = Dir::new("small");
        let p = dir.join("small");
        std::fs::write(&p, "s3cret\n").unwrap();
        assert_eq!(read_text(&p, 7).unwrap(), "s3cret\n");
        assert_eq!(read_bytes(&p, SECRET_FILE_LIMIT).unwrap(), b"s3cret\n");
        assert!(matches!(read_text(&p, 6), Err(ReadError::TooLarge(6))));
    }

    #[test]
    fn devices_fifos_directories_and_large_files_are_refused_at_once() {
        let t = Instant::now();
        let e = read_bytes(Path::new("/dev/zero"), SECRET_FILE_LIMIT).unwrap_err();
        assert_eq!(
            e.to_string(),
            "it is a character device, not a regular file"
        );
        let e = read_bytes(Path::new("/dev/null"), SECRET_FILE_LIMIT).unwrap_err();
        assert!(
            matches!(e, ReadError::NotRegular("a character device")),
            "{e}"
        );
        let d = Dir::new("refused");
        let e = read_bytes(&d.0, SECRET_FILE_LIMIT).unwrap_err();
        assert_eq!(e.to_string(), "it is a directory, not a regular file");

        // A FIFO nobody writes to: a blocking open would never return.
        let fifo = d.join("fifo");
        let _ = std::fs::remove_file(&fifo);
        let status = std::process::Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .expect("mkfifo");
        assert!(status.success());
        let e = read_bytes(&fifo, SECRET_FILE_LIMIT).unwrap_err();
        assert_eq!(e.to_string(), "it is a FIFO, not a regular file");

        // One byte over the limit, and a sparse 1 GiB file (refused by its size, unread).
        let big = d.join("big");
        let mut f = File::create(&big).unwrap();
        f.write_all(&[b'x'; 4097]).unwrap();
        let e = read_bytes(&big, SECRET_FILE_LIMIT).unwrap_err();
        assert_eq!(e.to_string(), "it is larger than 4096 bytes");
        f.set_len(1 << 30).unwrap();
        assert!(matches!(
            read_bytes(&big, CONFIG_FILE_LIMIT),
            Err(ReadError::TooLarge(CONFIG_FILE_LIMIT))
        ));
        assert!(t.elapsed() < Duration::from_secs(5), "{:?}", t.elapsed());
    }

    #[test]
    fn a_file_that_reports_no_size_is_still_bounded() {
        // procfs files report size 0 whatever they hold: only the bounded read catches them.
        let e = read_bytes(Path::new("/proc/self/maps"), 16).unwrap_err();
        assert!(matches!(e, ReadError::TooLarge(16)), "{e}");
    }

    #[test]
    fn errors_name_the_problem_never_the_content() {
        let dir = Dir::new("errors");
        let p = dir.join("not-utf8");
        std::fs::write(&p, b"pw\xff\xfeSECRET").unwrap();
        let e = read_text(&p, SECRET_FILE_LIMIT).unwrap_err();
        assert_eq!(e.to_string(), "it is not UTF-8 text");
        assert!(!format!("{e:?}").contains("SECRET"));
        let missing = read_text(&dir.join("missing"), 10).unwrap_err();
        assert!(missing.is_not_found(), "{missing}");
        assert!(
            missing.to_string().starts_with("cannot read it: "),
            "{missing}"
        );
    }
}
