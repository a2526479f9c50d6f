//! The admin API's token: every request must carry it as
//! `Authorization: Bearer <token>`.
//!
//! It is 32 random bytes written as 64 hex digits in a 0600
//! [secret file](crate::secret_file) (`[admin] token_file`, default
//! `admin.token` beside node.toml). `abgp init` creates it, and so does the
//! first start of a node that has none; the CLI and the demo read it from
//! there. An operator may write a token of their own (16 to 256 printable
//! ASCII characters); to rotate it, replace the file and restart the node.

use std::fmt;
use std::path::Path;

use subtle::ConstantTimeEq;
use zeroize::Zeroizing;

use crate::secret_file::{self, SecretFileError};

/// Default file name of the token, beside node.toml.
pub const TOKEN_FILE_NAME: &str = "admin.token";

const MIN_LEN: usize = 16;
const MAX_LEN: usize = 256;

/// Why a token file was not usable.
#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    #[error("admin token {0}")]
    File(#[from] SecretFileError),
    #[error(
        "admin token {path}: must be {MIN_LEN} to {MAX_LEN} printable ASCII characters on one line"
    )]
    Malformed { path: String },
}

/// The secret itself. `Debug` never shows it.
#[derive(Clone, PartialEq, Eq)]
pub struct AdminToken(Zeroizing<String>);

impl fmt::Debug for AdminToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("AdminToken(<redacted>)")
    }
}

impl AdminToken {
    /// A fresh random token.
    pub fn generate() -> Self {
        let bytes: [u8; 32] = rand::random();
        AdminToken(Zeroizing::new(hex::encode(bytes)))
    }

    /// Reads the token file (refused when group or others can read it).
    pub fn load(path: &Path) -> Result<Self, TokenError> {
        let bytes = secret_file::read(path, MAX_LEN as u64 + 2)?;
        let malformed = || TokenError::Malformed {
            path: path.display().to_string(),
        };
        let text = std::str::from_utf8(&bytes).map_err(|_| malformed())?;
        let t = text.strip_suffix('\n').unwrap_or(text);
        let t = t.strip_suffix('\r').unwrap_or(t);
        if !(MIN_LEN..=MAX_LEN).contains(&t.len()) || !t.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(malformed());
        }
        Ok(AdminToken(Zeroizing::new(t.to_string())))
    }

    /// Loads the token at `path`, or creates one there if there is none.
    /// Returns the token and whether it was just created.
    pub fn load_or_create(path: &Path) -> Result<(Self, bool), TokenError> {
        match Self::load(path) {
            Ok(t) => Ok((t, false)),
            Err(TokenError::File(e)) if e.is_not_found() => {
                let t = Self::generate();
                let line = Zeroizing::new(format!("{}\n", t.expose()));
                match secret_file::create(path, line.as_bytes()) {
                    Ok(()) => Ok((t, true)),
                    // Another process won the race: use its token.
                    Err(SecretFileError::Exists { .. }) => Self::load(path).map(|t| (t, false)),
                    Err(e) => Err(e.into()),
                }
            }
            Err(e) => Err(e),
        }
    }

    /// Whether `given` is this token, compared in constant time (only the
    /// length may show).
    pub fn matches(&self, given: &[u8]) -> bool {
        self.0.as_bytes().ct_eq(given).into()
    }

    /// The secret, for the client that sends it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::{MetadataExt, PermissionsExt};

    #[test]
    fn created_once_0600_then_loaded() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(TOKEN_FILE_NAME);
        let (a, created) = AdminToken::load_or_create(&path).unwrap();
        assert!(created);
        assert_eq!(a.expose().len(), 64);
        assert_eq!(std::fs::metadata(&path).unwrap().mode() & 0o777, 0o600);
        let (b, created) = AdminToken::load_or_create(&path).unwrap();
        assert!(!created);
        assert_eq!(a, b);
    }

    #[test]
    fn matches_only_the_exact_token() {
        let t = AdminToken::generate();
        assert!(t.matches(t.expose().as_bytes()));
        let mut wrong = t.expose().to_string();
        wrong.replace_range(0..1, if wrong.starts_with('a') { "b" } else { "a" });
        assert!(!t.matches(wrong.as_bytes()));
        assert!(!t.matches(&t.expose().as_bytes()[..63]));
        assert!(!t.matches(b""));
    }

    #[test]
    fn operator_tokens_are_checked_and_open_files_refused() {
        let dir = tempfile::tempdir().unwrap();
        let short = dir.path().join("short");
        secret_file::create(&short, b"abc\n").unwrap();
        assert!(matches!(
            AdminToken::load(&short),
            Err(TokenError::Malformed { .. })
        ));
        let spaced = dir.path().join("spaced");
        secret_file::create(&spaced, b"a token with spaces in it\n").unwrap();
        assert!(AdminToken::load(&spaced).is_err());
        let own = dir.path().join("own");
        secret_file::create(&own, b"my-own-token-0123456789\r\n").unwrap();
        assert_eq!(
            AdminToken::load(&own).unwrap().expose(),
            "my-own-token-0123456789"
        );
        std::fs::set_permissions(&own, std::fs::Permissions::from_mode(0o644)).unwrap();
        let e = AdminToken::load(&own).unwrap_err();
        assert!(e.to_string().contains("chmod 600"), "{e}");
    }

    #[test]
    fn debug_hides_the_secret() {
        let t = AdminToken::generate();
        assert!(!format!("{t:?}").contains(t.expose()));
    }
}
