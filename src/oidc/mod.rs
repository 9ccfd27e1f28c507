//! Verification of CI identity tokens: issuers, their keys, signatures and
//! the standard claims.

mod jwk;
mod keystore;
mod verify;

pub use jwk::{Jwk, is_accepted};
pub use keystore::{FETCH_TIMEOUT, KeyStore, MAX_KEY_AGE, REFETCH_COOL_DOWN};
pub use verify::{LEEWAY_SECONDS, VerifiedToken, verify};

/// The claims of a verified token, as issued.
pub type Claims = serde_json::Map<String, serde_json::Value>;
