//! The fuzz targets: each takes arbitrary bytes and must return without panicking or hanging,
//! whatever they are.

use std::path::PathBuf;

use drfailover_conn::{keys, Config, Error};
use drfailover_probe::handshake::{parse_greeting, read_greeting};
use drfailover_probe::OutcomeClass;

/// Per-campaign scratch state (a private file for targets that read one).
pub struct State {
    scratch: Option<PathBuf>,
}

impl State {
    fn scratch(&mut self) -> &PathBuf {
        self.scratch.get_or_insert_with(|| {
            // tmpfs when there is one: a disk-backed /tmp makes each execution ~60x slower.
            let shm = std::path::Path::new("/dev/shm");
            let dir = if shm.is_dir() {
                shm.to_path_buf()
            } else {
                std::env::temp_dir()
            };
            dir.join(format!("drfailover-fuzz-{}.cnf", std::process::id()))
        })
    }
}

impl Drop for State {
    fn drop(&mut self) {
        if let Some(p) = &self.scratch {
            let _ = std::fs::remove_file(p);
        }
    }
}

/// A fuzz target.
pub struct FuzzTarget {
    /// Its name (also the corpus directory `fuzz/corpus/<name>`).
    pub name: &'static str,
    /// What it exercises.
    pub about: &'static str,
    /// Creates the campaign's state.
    pub setup: fn() -> State,
    /// Runs one input.
    pub run: fn(&mut State, &[u8]),
    /// Tokens the mutator inserts.
    pub dictionary: &'static [&'static [u8]],
    /// Part of the smoke run in `cargo test` (a target for a defect still open is not).
    pub smoke: bool,
}

fn no_state() -> State {
    State { scratch: None }
}

/// Keys that read a file named by the input are kept out of the DSN and `Config::set` targets
/// (random paths must not be read, e.g. a device); option files have their own target, on a
/// file the harness writes.
fn names_a_file(text: &str) -> bool {
    text.contains("_file")
}

fn dsn(_: &mut State, input: &[u8]) {
    let text = String::from_utf8_lossy(input);
    if names_a_file(&text) {
        return;
    }
    if let Ok(config) = Config::from_dsn(&text) {
        // A parsed DSN must render (Debug redacts the password) and validate without panicking.
        let _ = format!("{config:?}");
        let _ = config.validate();
    }
}

/// `%XX` sequences decoded, invalid ones kept as written, then lossy UTF-8 (as the parser's
/// `percent-encoding` does).
fn percent_decoded(text: &str) -> String {
    let b = text.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let hex = |c: u8| (c as char).to_digit(16);
        if b[i] == b'%' && i + 2 < b.len() {
            if let (Some(h), Some(l)) = (hex(b[i + 1]), hex(b[i + 2])) {
                out.push((h * 16 + l) as u8);
                i += 3;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Pieces (at least 3 bytes) of what could be the password in a DSN: the text after the first
/// `:` of the part between `://` and the last `@` (or, without `@`, the first `/` or `?`), as
/// written and percent-decoded, split at URL delimiters, `*` and control characters; only
/// pieces that occur nowhere else in the DSN.
fn secret_pieces(text: &str) -> Vec<String> {
    let Some(start) = text.find("://").map(|i| i + 3) else {
        return Vec::new();
    };
    let rest = &text[start..];
    let end = match rest.rfind('@') {
        Some(at) => at,
        None => rest.find(['/', '?']).unwrap_or(rest.len()),
    };
    let userinfo = &rest[..end];
    let Some(colon) = userinfo.find(':') else {
        return Vec::new();
    };
    let (from, to) = (start + colon + 1, start + end);
    let outside = format!("{}\u{0}{}", &text[..from], &text[to..]);
    let written = &text[from..to];
    let decoded = percent_decoded(written);
    [written, decoded.as_str()]
        .into_iter()
        .flat_map(|t| t.split(|c: char| "/?#@:,&=%[]* ".contains(c) || c.is_control()))
        .filter(|p| p.len() >= 3 && !outside.contains(p))
        .map(str::to_string)
        .collect()
}

/// No error message contains any piece of what could be the password.
/// Panics (a finding) when one does.
///
/// The message judged is the one the parser wrote (`Error::Config`'s text); `Display` and
/// `Debug` must be exactly that text with the fixed `configuration error: ` prefix and the
/// derived `Config("…")` quoting. Judging `Display` and `Debug` themselves (as this target did
/// first) reported pieces the library never wrote: a piece `conf` in the fixed prefix
/// `configuration error`, `napp` in Debug's escape `\napp` of a newline before `app`, `65535"`
/// across the message's end and Debug's closing quote. (A successful parse shows the password
/// only as `Secret`'s `***`; the other fields are what the parser took as host, port or
/// database, which the text's own `@` and `/` decide — not a leak to judge here.)
fn dsn_secrets(_: &mut State, input: &[u8]) {
    let text = String::from_utf8_lossy(input);
    if names_a_file(&text) {
        return;
    }
    let pieces = secret_pieces(&text);
    if pieces.is_empty() {
        return;
    }
    let e = match Config::from_dsn(&text) {
        Ok(_) => return,
        Err(e) => e,
    };
    let message = match &e {
        Error::Config(m) => {
            assert_eq!(e.to_string(), format!("configuration error: {m}"));
            assert_eq!(format!("{e:?}"), format!("Config({m:?})"));
            m.clone()
        }
        other => panic!("DSN parsing failed with a non-configuration error: {other}"),
    };
    for p in &pieces {
        assert!(
            !message.contains(p.as_str()),
            "`{p}` of the password shown: {message}"
        );
    }
}

/// One `key=value` per line, applied in order to one config; an unknown key is mapped to a
/// known one (by a hash of its bytes) so mutations keep reaching real keys.
fn config_set(_: &mut State, input: &[u8]) {
    let text = String::from_utf8_lossy(input);
    let mut config = Config::new();
    let known: Vec<&'static str> = keys::names().filter(|k| !names_a_file(k)).collect();
    for line in text.split('\n') {
        let (key, value) = line.split_once('=').unwrap_or((line, ""));
        if names_a_file(key) || names_a_file(value) {
            continue;
        }
        let key = if keys::find(key).is_some() {
            key
        } else {
            let h = key
                .bytes()
                .fold(0usize, |h, b| h.wrapping_mul(31) ^ b as usize);
            known[h % known.len()]
        };
        let _ = config.set(key, value);
    }
    let _ = format!("{config:?}");
    let _ = config.validate();
}

/// The input is the option file; the first line `group=NAME` (if any) selects the group.
fn option_file(state: &mut State, input: &[u8]) {
    let path = state.scratch().clone();
    if std::fs::write(&path, input).is_err() {
        return;
    }
    let mut config = Config::new();
    if let Some(rest) = input.strip_prefix(b"group=") {
        let end = rest.iter().position(|&b| b == b'\n').unwrap_or(rest.len());
        let _ = config.set("group", &String::from_utf8_lossy(&rest[..end]));
    }
    let _ = config.set("defaults_file", &path.to_string_lossy());
    let _ = format!("{config:?}");
}

/// The input is a password file (on a file the harness writes) read by `password_file`:
/// accepted, the password is exactly its first line; refused, the message is exactly one of
/// the fixed forms naming the key and the file (so it cannot carry any of the content).
fn password_file(state: &mut State, input: &[u8]) {
    let path = state.scratch().clone();
    if std::fs::write(&path, input).is_err() {
        return;
    }
    let shown = path.to_string_lossy();
    let mut config = Config::new();
    match config.set("password_file", &shown) {
        Ok(()) => {
            let text = std::str::from_utf8(input).expect("a file that is not UTF-8 accepted");
            let first = text.lines().next().unwrap_or("");
            assert_eq!(
                config.password.expose(),
                first,
                "password is not the first line"
            );
            assert!(!first.contains('\0'), "a password with a NUL byte accepted");
        }
        Err(e) => {
            let message = e.to_string();
            let ok = [
                "it is not UTF-8 text",
                "the password contains a NUL byte",
                "it is larger than 4096 bytes",
            ]
            .iter()
            .any(|why| {
                message == format!("configuration error: option `password_file`: `{shown}`: {why}")
            });
            assert!(ok, "unexpected message: {message}");
        }
    }
}

/// Bytes from a hostile server, in place of the greeting: framed (header + payload, through
/// the probe's packet reader) and as a bare payload.
fn greeting(_: &mut State, input: &[u8]) {
    let mut rest = input;
    let _ = read_greeting(|buf| {
        if rest.len() < buf.len() {
            return Err((OutcomeClass::ConnectionLost, "eof".into()));
        }
        let (head, tail) = rest.split_at(buf.len());
        buf.copy_from_slice(head);
        rest = tail;
        Ok(())
    });
    let _ = parse_greeting(input);
}

/// Every target.
pub const TARGETS: &[FuzzTarget] = &[
    FuzzTarget {
        name: "dsn_secrets",
        about: "Config::from_dsn: no piece of the password in an error",
        setup: no_state,
        run: dsn_secrets,
        smoke: true,
        dictionary: &[
            b"mysql://",
            b"@",
            b":",
            b"/",
            b"?",
            b"#",
            b"&",
            b"=",
            b",",
            b"%2F",
            b"%40",
            b"%3A",
            b"%00",
            b"S3cr3tPw",
            b"127.0.0.1:3306",
            b"[::1]",
            b"?probe_timeout_ms=50",
        ],
    },
    FuzzTarget {
        name: "dsn",
        about: "Config::from_dsn on arbitrary text",
        setup: no_state,
        run: dsn,
        smoke: true,
        dictionary: &[
            b"mysql://",
            b"mariadb://",
            b"@",
            b":",
            b"/",
            b"?",
            b"&",
            b"=",
            b",",
            b"[::1]",
            b"127.0.0.1",
            b"%00",
            b"%2F",
            b"%40",
            b"%3A",
            b"%",
            b"probe_timeout_ms=",
            b"connect_timeout_ms=",
            b"pool_size=",
            b"host=",
            b"user=",
            b"password=",
            b"ssl_mode=",
            b"failback=",
            b"nameserver=",
            b"65535",
            b"65536",
            b"0",
            b"18446744073709551616",
            b"-1",
        ],
    },
    FuzzTarget {
        name: "config_set",
        about: "Config::set with key=value lines (file-reading keys excluded)",
        setup: no_state,
        run: config_set,
        smoke: true,
        dictionary: &[
            b"\n",
            b"=",
            b"dsn=mysql://u:p@h/db",
            b"host=",
            b"user=",
            b"password=",
            b"group=",
            b"nameserver=",
            b"webhook_url=http://",
            b"hook_command=",
            b"ssl_mode=VERIFY_CA",
            b"ssl_ca=",
            b"dns_min_ttl_ms=",
            b"dns_max_ttl_ms=",
            b"pool_size=",
            b"init=",
            b"0",
            b"4294967296",
            b"18446744073709551615",
            b"-",
            b"%00",
            b"[::1]:",
            b":0",
        ],
    },
    FuzzTarget {
        name: "option_file",
        about: "the [group] user/password reader of defaults_file",
        setup: no_state,
        run: option_file,
        smoke: true,
        dictionary: &[
            b"[client]\n",
            b"[drfailover]\n",
            b"group=",
            b"password=",
            b"user=",
            b"\"",
            b"'",
            b"#",
            b";",
            b"\n",
            b"\r\n",
            b" = ",
            b"[",
            b"]",
            b"!include ",
            b"\xef\xbb\xbf",
        ],
    },
    FuzzTarget {
        name: "password_file",
        about: "the password_file reader (first line, UTF-8, no NUL, 4 KiB bound)",
        setup: no_state,
        run: password_file,
        smoke: true,
        dictionary: &[
            b"\n",
            b"\r\n",
            b"\r",
            b"\0",
            b"\xff",
            b"\xef\xbb\xbf",
            b"\xc3\xa9",
            b" ",
            b"S3cr3tPw",
        ],
    },
    FuzzTarget {
        name: "greeting",
        about: "the probe's MySQL greeting packet reader and parser (a hostile server)",
        setup: no_state,
        run: greeting,
        smoke: true,
        dictionary: &[
            b"\x0a",
            b"\xff",
            b"\x00",
            b"5.5.5-",
            b"#",
            b"#HY000",
            b"\x10\x04",
            b"\xff\xff\xff",
            b"\x00\x00\x01",
            b"\x01\x00\x00\x00",
        ],
    },
];
