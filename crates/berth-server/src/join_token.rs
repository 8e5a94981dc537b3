//! Join tokens: what an operator hands a new machine so its agent may join.
//!
//! A token reads `berth1.<id>.<secret>.<ca>`: `id` names it (not secret), `secret` is
//! 32 random characters, and `ca` is the hex SHA-256 of the cluster CA certificate, so
//! the agent checks the server it reaches is this cluster's before it sends the token.
//! The server keeps only the secret's SHA-256, with when the token was made and when it
//! expires, in `<data dir>/pki/join-tokens.json` (0600, written atomically) and reads
//! that file at every join, so `berth server token --rotate` takes effect at once, also
//! while the server runs. Rotating replaces every token: the old one stops working.
//! Secrets never appear in a message or a log: `JoinToken`'s `Debug` hides them.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::private_files::write_private;

/// The version tag every token starts with.
pub const TOKEN_PREFIX: &str = "berth1";
/// How long a token is valid unless told otherwise: one day, as kubeadm's.
pub const DEFAULT_TOKEN_TTL_SECS: u64 = 24 * 60 * 60;

const ID_LENGTH: usize = 6;
const SECRET_LENGTH: usize = 32;
const ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789";

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    #[error("the join token is malformed: expected berth1.<id>.<secret>.<CA hash>")]
    Malformed,
    #[error("the join token is for another cluster: its CA hash is not this server's")]
    OtherCluster,
    #[error("the join token is not valid here (unknown, wrong, or replaced by `berth server token --rotate`)")]
    Invalid,
    #[error("the join token expired; make a new one with `berth server token --rotate`")]
    Expired,
}

/// A token in hand (parsed from the operator's text, or just made).
#[derive(Clone, PartialEq, Eq)]
pub struct JoinToken {
    id: String,
    secret: String,
    ca_fingerprint: String,
}

impl std::fmt::Debug for JoinToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JoinToken")
            .field("id", &self.id)
            .field("secret", &"<secret>")
            .field("ca_fingerprint", &self.ca_fingerprint)
            .finish()
    }
}

fn in_alphabet(text: &str, length: usize) -> bool {
    text.len() == length && text.bytes().all(|b| ALPHABET.contains(&b))
}

impl JoinToken {
    pub fn parse(text: &str) -> Result<JoinToken, TokenError> {
        let mut parts = text.trim().split('.');
        let (Some(prefix), Some(id), Some(secret), Some(ca), None) = (
            parts.next(),
            parts.next(),
            parts.next(),
            parts.next(),
            parts.next(),
        ) else {
            return Err(TokenError::Malformed);
        };
        let hex_sha256 = ca.len() == 64 && ca.bytes().all(|b| b.is_ascii_hexdigit());
        if prefix != TOKEN_PREFIX
            || !in_alphabet(id, ID_LENGTH)
            || !in_alphabet(secret, SECRET_LENGTH)
            || !hex_sha256
        {
            return Err(TokenError::Malformed);
        }
        Ok(JoinToken {
            id: id.to_string(),
            secret: secret.to_string(),
            ca_fingerprint: ca.to_ascii_lowercase(),
        })
    }

    /// A new token for the CA with this fingerprint, from the system's random numbers.
    pub fn generate(ca_fingerprint: &str) -> Result<JoinToken, getrandom::Error> {
        let mut bytes = [0u8; ID_LENGTH + SECRET_LENGTH];
        getrandom::getrandom(&mut bytes)?;
        // 36 characters: 256 % 36 leaves a bias of under 3% per character, which costs
        // the 32-character secret about 5 of its 165 bits.
        let text: String = bytes
            .iter()
            .map(|b| ALPHABET[*b as usize % ALPHABET.len()] as char)
            .collect();
        Ok(JoinToken {
            id: text[..ID_LENGTH].to_string(),
            secret: text[ID_LENGTH..].to_string(),
            ca_fingerprint: ca_fingerprint.to_ascii_lowercase(),
        })
    }

    pub fn id(&self) -> &str {
        &self.id
    }

    /// The SHA-256 (hex) of the CA certificate this token pins.
    pub fn ca_fingerprint(&self) -> &str {
        &self.ca_fingerprint
    }

    /// The token as the operator passes it to `berth agent --token`.
    pub fn reveal(&self) -> String {
        format!(
            "{TOKEN_PREFIX}.{}.{}.{}",
            self.id, self.secret, self.ca_fingerprint
        )
    }

    fn secret_hash(&self) -> [u8; 32] {
        Sha256::digest(self.secret.as_bytes()).into()
    }
}

/// What the server keeps of a token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TokenRecord {
    pub id: String,
    /// Hex SHA-256 of the secret.
    pub secret_sha256: String,
    /// Epoch seconds.
    pub created_at: u64,
    pub expires_at: u64,
}

impl TokenRecord {
    pub fn of(token: &JoinToken, now_secs: u64, ttl_secs: u64) -> TokenRecord {
        TokenRecord {
            id: token.id.clone(),
            secret_sha256: hex::encode(token.secret_hash()),
            created_at: now_secs,
            expires_at: now_secs.saturating_add(ttl_secs),
        }
    }
}

/// Whether `token` may join a cluster whose CA has `ca_fingerprint`, by `records`.
pub fn check_token(
    records: &[TokenRecord],
    token: &JoinToken,
    ca_fingerprint: &str,
    now_secs: u64,
) -> Result<(), TokenError> {
    if !token.ca_fingerprint.eq_ignore_ascii_case(ca_fingerprint) {
        return Err(TokenError::OtherCluster);
    }
    let Some(record) = records.iter().find(|r| r.id == token.id) else {
        return Err(TokenError::Invalid);
    };
    let stored = hex::decode(&record.secret_sha256).unwrap_or_default();
    if !bool::from(stored.as_slice().ct_eq(&token.secret_hash())) {
        return Err(TokenError::Invalid);
    }
    if now_secs >= record.expires_at {
        return Err(TokenError::Expired);
    }
    Ok(())
}

/// The tokens' file.
#[derive(Debug, Clone)]
pub struct JoinTokens {
    path: PathBuf,
}

#[derive(Debug, thiserror::Error)]
pub enum TokenFileError {
    #[error("{action} {path}: {source}")]
    Io {
        action: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path} is not a join token file: {reason}")]
    Unreadable { path: PathBuf, reason: String },
    #[error("no random numbers from the system: {0}")]
    Random(getrandom::Error),
}

impl JoinTokens {
    /// The tokens of the cluster whose PKI lives in `pki_dir`.
    pub fn in_dir(pki_dir: &Path) -> JoinTokens {
        JoinTokens {
            path: pki_dir.join("join-tokens.json"),
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The records on disk; none when there is no file yet.
    pub fn records(&self) -> Result<Vec<TokenRecord>, TokenFileError> {
        let text = match std::fs::read_to_string(&self.path) {
            Ok(text) => text,
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(source) => {
                return Err(TokenFileError::Io {
                    action: "reading",
                    path: self.path.clone(),
                    source,
                })
            }
        };
        serde_json::from_str(&text).map_err(|error| TokenFileError::Unreadable {
            path: self.path.clone(),
            reason: error.to_string(),
        })
    }

    /// Makes a new token valid for `ttl_secs` and invalidates every other.
    pub fn rotate(
        &self,
        ca_fingerprint: &str,
        now_secs: u64,
        ttl_secs: u64,
    ) -> Result<(JoinToken, TokenRecord), TokenFileError> {
        let token = JoinToken::generate(ca_fingerprint).map_err(TokenFileError::Random)?;
        let record = TokenRecord::of(&token, now_secs, ttl_secs);
        let text = serde_json::to_vec_pretty(&[&record]).expect("token records serialize");
        write_private(&self.path, &text).map_err(|source| TokenFileError::Io {
            action: "writing",
            path: self.path.clone(),
            source,
        })?;
        Ok((token, record))
    }

    /// Whether `token` may join now, by the file as it is now.
    pub fn verify(
        &self,
        token: &JoinToken,
        ca_fingerprint: &str,
        now_secs: u64,
    ) -> Result<(), TokenError> {
        let records = match self.records() {
            Ok(records) => records,
            Err(error) => {
                tracing::error!(%error, "cannot read the join tokens; refusing every join");
                return Err(TokenError::Invalid);
            }
        };
        check_token(&records, token, ca_fingerprint, now_secs)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const CA: &str = "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff";

    #[test]
    fn a_token_reads_back_as_made_and_malformed_ones_are_refused() {
        let token = JoinToken::generate(CA).unwrap();
        let text = token.reveal();
        assert!(text.starts_with("berth1."));
        assert_eq!(JoinToken::parse(&text).unwrap(), token);
        assert_eq!(JoinToken::parse(&format!("  {text}\n")).unwrap(), token);
        assert_eq!(token.ca_fingerprint(), CA);
        let bad = [
            String::new(),
            "berth1".to_string(),
            text.replacen("berth1", "berth2", 1),
            format!("{text}.extra"),
            text[..text.len() - 1].to_string(),
            text.replace(token.id(), "ABCDEF"),
            text.replace(token.ca_fingerprint(), &"g".repeat(64)),
        ];
        for bad in &bad {
            assert_eq!(JoinToken::parse(bad), Err(TokenError::Malformed), "{bad:?}");
        }
        assert_ne!(JoinToken::generate(CA).unwrap(), token, "two tokens alike");
    }

    #[test]
    fn a_token_shows_no_secret_in_debug_or_errors() {
        let token = JoinToken::generate(CA).unwrap();
        let secret = token.reveal().split('.').nth(2).unwrap().to_string();
        assert!(!format!("{token:?}").contains(&secret));
        for error in [
            TokenError::Malformed,
            TokenError::OtherCluster,
            TokenError::Invalid,
            TokenError::Expired,
        ] {
            assert!(!error.to_string().contains(&secret));
        }
    }

    #[test]
    fn only_the_right_secret_of_a_current_token_for_this_ca_joins() {
        let token = JoinToken::generate(CA).unwrap();
        let records = vec![TokenRecord::of(&token, 1000, 60)];
        assert!(!records[0]
            .secret_sha256
            .contains(token.reveal().split('.').nth(2).unwrap()));
        assert_eq!(check_token(&records, &token, CA, 1000), Ok(()));
        assert_eq!(check_token(&records, &token, CA, 1059), Ok(()));
        assert_eq!(
            check_token(&records, &token, CA, 1060),
            Err(TokenError::Expired)
        );
        let other_ca = CA.replace('0', "f");
        assert_eq!(
            check_token(&records, &token, &other_ca, 1000),
            Err(TokenError::OtherCluster)
        );
        // The same id with another secret.
        let text = token.reveal();
        let secret = text.split('.').nth(2).unwrap();
        let flipped: String = secret
            .chars()
            .map(|c| if c == 'a' { 'b' } else { 'a' })
            .collect();
        let wrong = JoinToken::parse(&text.replace(secret, &flipped)).unwrap();
        assert_eq!(
            check_token(&records, &wrong, CA, 1000),
            Err(TokenError::Invalid)
        );
        let unknown = JoinToken::generate(CA).unwrap();
        assert_eq!(
            check_token(&records, &unknown, CA, 1000),
            Err(TokenError::Invalid)
        );
        assert_eq!(check_token(&[], &token, CA, 1000), Err(TokenError::Invalid));
    }

    #[test]
    fn rotating_makes_a_new_token_and_the_old_one_stops_working() {
        use std::os::unix::fs::PermissionsExt;
        let dir = std::env::temp_dir().join(format!("berth-tokens-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        crate::private_files::create_private_dir(&dir).unwrap();
        let tokens = JoinTokens::in_dir(&dir);
        assert!(tokens.records().unwrap().is_empty());
        let (first, record) = tokens.rotate(CA, 1000, DEFAULT_TOKEN_TTL_SECS).unwrap();
        assert_eq!(record.expires_at, 1000 + 86_400);
        assert_eq!(tokens.verify(&first, CA, 2000), Ok(()));
        let mode = std::fs::metadata(tokens.path())
            .unwrap()
            .permissions()
            .mode()
            & 0o777;
        assert_eq!(mode, 0o600);
        let stored = std::fs::read_to_string(tokens.path()).unwrap();
        let secret = first.reveal().split('.').nth(2).unwrap().to_string();
        assert!(!stored.contains(&secret), "the secret itself is on disk");

        let (second, _) = tokens.rotate(CA, 3000, 60).unwrap();
        assert_eq!(tokens.verify(&first, CA, 3001), Err(TokenError::Invalid));
        assert_eq!(tokens.verify(&second, CA, 3001), Ok(()));
        assert_eq!(tokens.verify(&second, CA, 3060), Err(TokenError::Expired));
        assert_eq!(tokens.records().unwrap().len(), 1);

        // A file that cannot be read refuses every join.
        std::fs::write(tokens.path(), b"{not json").unwrap();
        assert_eq!(tokens.verify(&second, CA, 3001), Err(TokenError::Invalid));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
