//! A TSIG key read from a file in BIND's syntax, as `tsig-keygen` writes it:
//!
//! ```text
//! key "drfailover" {
//!         algorithm hmac-sha256;
//!         secret "base64…";
//! };
//! ```
//!
//! The secret is kept inside hickory's [`TSigner`] only; [`TsigKey`]'s `Debug` shows the name
//! and algorithm, and no error message quotes the file's content.

use std::fmt;
use std::path::Path;

use hickory_proto::rr::rdata::tsig::TsigAlgorithm;
use hickory_proto::rr::{Name, TSigner};

use crate::AnnounceError;
use drfailover_aws::AwsError;

/// Fudge (allowed clock difference) put in our signatures, in seconds: RFC 8945's
/// recommended 300.
pub const FUDGE_S: u16 = 300;

/// A TSIG key: name, algorithm and secret (the secret never leaves the signer).
#[derive(Clone)]
pub struct TsigKey {
    name: String,
    algorithm: String,
    signer: TSigner,
}

impl fmt::Debug for TsigKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TsigKey")
            .field("name", &self.name)
            .field("algorithm", &self.algorithm)
            .field("secret", &"<redacted>")
            .finish()
    }
}

impl TsigKey {
    /// Read the key named `wanted` (or the only key, when `None`) from `path`: a regular file
    /// of at most 64 KiB, read bounded (a FIFO, device or directory is refused without reading
    /// from it). Blocks on local file I/O only.
    pub fn from_file(path: &Path, wanted: Option<&str>) -> Result<TsigKey, AnnounceError> {
        let text = drfailover_files::read_text(path, drfailover_files::OPTION_FILE_LIMIT).map_err(
            |e| {
                AnnounceError::Call(AwsError::Credentials(format!(
                    "TSIG key file {}: {e}",
                    path.display()
                )))
            },
        )?;
        TsigKey::parse(&text, wanted).map_err(|e| {
            AnnounceError::Call(AwsError::Credentials(format!(
                "TSIG key file {}: {e}",
                path.display()
            )))
        })
    }

    /// Parse key statements from `text` (BIND syntax). Errors never quote the secret.
    pub fn parse(text: &str, wanted: Option<&str>) -> Result<TsigKey, String> {
        let keys = parse_keys(text)?;
        let chosen = match wanted {
            Some(want) => {
                let want = want.trim_end_matches('.');
                keys.into_iter()
                    .find(|k| k.name.trim_end_matches('.').eq_ignore_ascii_case(want))
                    .ok_or_else(|| format!("no key named `{want}`"))?
            }
            None => {
                let mut keys = keys;
                match keys.len() {
                    0 => return Err("no `key` statement".into()),
                    1 => keys.remove(0),
                    n => {
                        return Err(format!(
                            "{n} keys in the file: name the one to use with `key_name`"
                        ))
                    }
                }
            }
        };
        let algorithm = match chosen.algorithm.to_ascii_lowercase().trim_end_matches('.') {
            "hmac-sha256" => TsigAlgorithm::HmacSha256,
            "hmac-sha384" => TsigAlgorithm::HmacSha384,
            "hmac-sha512" => TsigAlgorithm::HmacSha512,
            other => {
                return Err(format!(
                    "key `{}`: algorithm `{other}` is not supported (use hmac-sha256, \
                     hmac-sha384 or hmac-sha512)",
                    chosen.name
                ))
            }
        };
        let secret = data_encoding::BASE64
            .decode(chosen.secret.as_bytes())
            .map_err(|_| format!("key `{}`: the secret is not valid base64", chosen.name))?;
        if secret.is_empty() {
            return Err(format!("key `{}`: the secret is empty", chosen.name));
        }
        let name = Name::from_ascii(&chosen.name)
            .map_err(|e| format!("key name `{}`: {e}", chosen.name))?;
        let signer = TSigner::new(secret, algorithm, name, FUDGE_S)
            .map_err(|e| format!("key `{}`: {e}", chosen.name))?;
        Ok(TsigKey {
            name: chosen.name,
            algorithm: chosen.algorithm.to_ascii_lowercase(),
            signer,
        })
    }

    /// The key's name (as the server knows it).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The key's algorithm, e.g. `hmac-sha256`.
    pub fn algorithm(&self) -> &str {
        &self.algorithm
    }

    /// hickory's signer for this key.
    pub(crate) fn signer(&self) -> &TSigner {
        &self.signer
    }
}

struct RawKey {
    name: String,
    algorithm: String,
    secret: String,
}

#[derive(Debug, PartialEq)]
enum Token {
    Word(String),
    Quoted(String),
    Open,
    Close,
    Semi,
}

fn tokenize(text: &str) -> Result<Vec<Token>, String> {
    let mut tokens = Vec::new();
    let mut chars = text.chars().peekable();
    while let Some(&c) = chars.peek() {
        match c {
            c if c.is_whitespace() => {
                chars.next();
            }
            '#' => while chars.next().is_some_and(|c| c != '\n') {},
            '/' => {
                chars.next();
                match chars.next() {
                    Some('/') => while chars.next().is_some_and(|c| c != '\n') {},
                    Some('*') => {
                        let mut last = ' ';
                        loop {
                            match chars.next() {
                                Some('/') if last == '*' => break,
                                Some(c) => last = c,
                                None => return Err("unterminated /* comment".into()),
                            }
                        }
                    }
                    _ => return Err("unexpected `/`".into()),
                }
            }
            '{' => {
                chars.next();
                tokens.push(Token::Open);
            }
            '}' => {
                chars.next();
                tokens.push(Token::Close);
            }
            ';' => {
                chars.next();
                tokens.push(Token::Semi);
            }
            '"' => {
                chars.next();
                let mut s = String::new();
                loop {
                    match chars.next() {
                        Some('"') => break,
                        Some(c) => s.push(c),
                        None => return Err("unterminated quoted string".into()),
                    }
                }
                tokens.push(Token::Quoted(s));
            }
            _ => {
                let mut s = String::new();
                while let Some(&c) = chars.peek() {
                    if c.is_whitespace() || "{};\"".contains(c) {
                        break;
                    }
                    s.push(c);
                    chars.next();
                }
                tokens.push(Token::Word(s));
            }
        }
    }
    Ok(tokens)
}

fn parse_keys(text: &str) -> Result<Vec<RawKey>, String> {
    let tokens = tokenize(text)?;
    let mut keys = Vec::new();
    let mut i = 0;
    let text_of = |t: Option<&Token>| match t {
        Some(Token::Word(s)) | Some(Token::Quoted(s)) => Some(s.clone()),
        _ => None,
    };
    while i < tokens.len() {
        match &tokens[i] {
            Token::Word(w) if w.eq_ignore_ascii_case("key") => {
                let name = text_of(tokens.get(i + 1)).ok_or("`key` without a name")?;
                if tokens.get(i + 2) != Some(&Token::Open) {
                    return Err(format!("key `{name}`: expected `{{`"));
                }
                i += 3;
                let (mut algorithm, mut secret) = (None, None);
                loop {
                    match tokens.get(i) {
                        Some(Token::Close) => {
                            i += 1;
                            break;
                        }
                        Some(Token::Word(field)) => {
                            // Only a known keyword is ever quoted back: anything else may be
                            // key material written without its `secret` keyword.
                            let field = match field.to_ascii_lowercase().as_str() {
                                "algorithm" => "algorithm",
                                "secret" => "secret",
                                _ => {
                                    return Err(format!(
                                        "key `{name}`: expected `algorithm` or `secret` \
                                         (the unexpected word is not shown: it may be key \
                                         material)"
                                    ))
                                }
                            };
                            let value = text_of(tokens.get(i + 1)).ok_or_else(|| {
                                format!("key `{name}`: `{field}` without a value")
                            })?;
                            if field == "algorithm" {
                                algorithm = Some(value);
                            } else {
                                secret = Some(value);
                            }
                            if tokens.get(i + 2) != Some(&Token::Semi) {
                                return Err(format!("key `{name}`: expected `;` after `{field}`"));
                            }
                            i += 3;
                        }
                        _ => return Err(format!("key `{name}`: unterminated or malformed")),
                    }
                }
                if tokens.get(i) == Some(&Token::Semi) {
                    i += 1;
                }
                keys.push(RawKey {
                    algorithm: algorithm.ok_or_else(|| format!("key `{name}`: no algorithm"))?,
                    secret: secret.ok_or_else(|| format!("key `{name}`: no secret"))?,
                    name,
                });
            }
            _ => return Err("expected a `key \"name\" { … };` statement".into()),
        }
    }
    Ok(keys)
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &str = "c2VjcmV0LXNlY3JldC1zZWNyZXQtc2VjcmV0LXNlY3I=";

    fn file() -> String {
        format!(
            "# made by tsig-keygen\nkey \"drfailover\" {{\n\talgorithm hmac-sha256;\n\tsecret \"{SECRET}\";\n}};\n\
             key other {{ algorithm hmac-sha512; secret \"{SECRET}\"; }};\n"
        )
    }

    #[test]
    fn parses_tsig_keygen_output() {
        let key = TsigKey::parse(&file(), Some("drfailover")).unwrap();
        assert_eq!(key.name(), "drfailover");
        assert_eq!(key.algorithm(), "hmac-sha256");
        let other = TsigKey::parse(&file(), Some("other.")).unwrap();
        assert_eq!(other.algorithm(), "hmac-sha512");
        let err = TsigKey::parse(&file(), None).unwrap_err();
        assert!(err.contains("2 keys"), "{err}");
    }

    #[test]
    fn secret_never_shown() {
        let key = TsigKey::parse(&file(), Some("drfailover")).unwrap();
        let debug = format!("{key:?}");
        assert!(!debug.contains(SECRET), "{debug}");
        assert!(debug.contains("redacted"));
        let bad = "key k { algorithm hmac-sha256; secret \"not*base64\"; };";
        let err = TsigKey::parse(bad, None).unwrap_err();
        assert!(!err.contains("not*base64"), "{err}");
        let md5 = format!("key k {{ algorithm hmac-md5; secret \"{SECRET}\"; }};");
        let err = TsigKey::parse(&md5, None).unwrap_err();
        assert!(
            err.contains("not supported") && !err.contains(SECRET),
            "{err}"
        );
    }

    #[test]
    fn malformed_files() {
        for bad in [
            "",
            "key",
            "key k { algorithm hmac-sha256; }",
            "key k { secret \"abc=\"; };",
            "zone x { };",
            "key k { algorithm hmac-sha256 secret \"abc=\"; };",
        ] {
            assert!(TsigKey::parse(bad, None).is_err(), "accepted {bad:?}");
        }
    }

    #[test]
    fn key_files_are_regular_and_bounded() {
        for path in ["/dev/zero", "/"] {
            let err = TsigKey::from_file(Path::new(path), None)
                .unwrap_err()
                .to_string();
            assert!(
                err.contains(&format!("TSIG key file {path}: it is a"))
                    && err.contains("not a regular file"),
                "{err}"
            );
        }
    }

    #[test]
    fn key_material_without_its_keyword_is_never_shown() {
        for text in [
            format!("key k {{ algorithm hmac-sha256; {SECRET}; }};"),
            format!("key k {{ algorithm hmac-sha256; {SECRET} }};"),
            format!("key k {{ algorithm hmac-sha256; \"{SECRET}\"; }};"),
            format!("key k {{ algorithm hmac-sha256; secret {SECRET} }};"),
        ] {
            let err = TsigKey::parse(&text, None).unwrap_err();
            assert!(!err.contains(&SECRET[..8]), "{err}");
        }
    }
}
