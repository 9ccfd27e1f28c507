//! Upload credentials: `<token_prefix><43 characters of base64url randomness
//! (256 bits)><8 hex digits of CRC32>`. The fixed prefix lets secret scanners
//! find them, the checksum lets them reject look-alikes offline. Only the
//! SHA-256 of a credential is stored.

mod checks;

pub use checks::{Active, CheckRequest, Inactive, check, is_live, revoke};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ring::rand::{SecureRandom, SystemRandom};
use sha2::{Digest, Sha256};

use crate::domain::TokenPrefix;

const RANDOM_BYTES: usize = 32;
const RANDOM_CHARS: usize = 43;
const CHECKSUM_CHARS: usize = 8;

/// A token a client sent — an identity token, or an upload credential —
/// read from a request body. Its `Debug` never shows it, and its memory is
/// wiped when it is dropped.
#[derive(Clone, serde::Deserialize)]
#[serde(transparent)]
pub struct Secret(secrecy::SecretString);

impl Secret {
    pub fn expose(&self) -> &str {
        secrecy::ExposeSecret::expose_secret(&self.0)
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("[redacted]")
    }
}

/// A freshly minted upload credential. Shown once, to the client that minted
/// it; never logged.
pub struct Credential(String);

impl Credential {
    pub fn generate(prefix: &TokenPrefix) -> Self {
        let mut random = [0u8; RANDOM_BYTES];
        SystemRandom::new()
            .fill(&mut random)
            .expect("the operating system's random source works");
        let body = format!("{}{}", prefix.as_str(), URL_SAFE_NO_PAD.encode(random));
        let checksum = crc32fast::hash(body.as_bytes());
        Credential(format!("{body}{checksum:08x}"))
    }

    pub fn expose(&self) -> &str {
        &self.0
    }

    /// The hex SHA-256 under which the store keeps it.
    pub fn hash(&self) -> String {
        hash(&self.0)
    }
}

impl std::fmt::Debug for Credential {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Credential([redacted])")
    }
}

/// The hex SHA-256 of a presented credential.
pub fn hash(credential: &str) -> String {
    hex::encode(Sha256::digest(credential.as_bytes()))
}

/// Whether `candidate` has the shape and checksum of a credential with this
/// prefix: what a secret scanner checks offline.
pub fn is_well_formed(prefix: &str, candidate: &str) -> bool {
    let Some(rest) = candidate.strip_prefix(prefix) else {
        return false;
    };
    if rest.len() != RANDOM_CHARS + CHECKSUM_CHARS || !rest.is_ascii() {
        return false;
    }
    let (random, checksum) = rest.split_at(RANDOM_CHARS);
    let body = &candidate[..prefix.len() + RANDOM_CHARS];
    URL_SAFE_NO_PAD
        .decode(random)
        .is_ok_and(|b| b.len() == RANDOM_BYTES)
        && checksum == format!("{:08x}", crc32fast::hash(body.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_carry_prefix_randomness_and_checksum() {
        let prefix = TokenPrefix::parse("acme_".into()).unwrap();
        let a = Credential::generate(&prefix);
        let b = Credential::generate(&prefix);
        assert_ne!(a.expose(), b.expose());
        assert!(a.expose().starts_with("acme_"));
        assert_eq!(a.expose().len(), 5 + 43 + 8);
        assert!(is_well_formed("acme_", a.expose()));
        assert!(!is_well_formed("other_", a.expose()));
        assert_eq!(format!("{a:?}"), "Credential([redacted])");
        assert_eq!(a.hash().len(), 64);
        assert_ne!(a.hash(), b.hash());
    }

    #[test]
    fn secrets_from_requests_never_show_in_debug_output() {
        let request: crate::exchange::MintRequest =
            serde_json::from_str(r#"{"token": "eyJ.the.jwt", "packages": ["widget"]}"#).unwrap();
        assert_eq!(request.token.expose(), "eyJ.the.jwt");
        let shown = format!("{request:?}");
        assert!(!shown.contains("eyJ"), "{shown}");
        assert!(
            shown.contains("[redacted]") && shown.contains("widget"),
            "{shown}"
        );
    }

    #[test]
    fn a_changed_character_fails_the_checksum() {
        let prefix = TokenPrefix::parse("acme_".into()).unwrap();
        let token = Credential::generate(&prefix).expose().to_owned();
        let mut chars: Vec<char> = token.chars().collect();
        chars[10] = if chars[10] == 'A' { 'B' } else { 'A' };
        let forged: String = chars.into_iter().collect();
        assert!(!is_well_formed("acme_", &forged));
        assert!(!is_well_formed("acme_", &token[..token.len() - 1]));
    }
}
