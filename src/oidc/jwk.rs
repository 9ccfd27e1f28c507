//! JSON Web Keys, read with openidconnect's JWKS types and verified with
//! ring, which verifies RS256 about ten times faster than the RustCrypto
//! `rsa` crate behind openidconnect's own `CoreJsonWebKey`.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use openidconnect::core::{CoreJsonWebKeyType, CoreJsonWebKeyUse, CoreJwsSigningAlgorithm};
use openidconnect::{JsonWebKey, JsonWebKeyAlgorithm, JsonWebKeyId, SignatureVerificationError};
use ring::signature::{self, RsaPublicKeyComponents, UnparsedPublicKey};
use serde::{Deserialize, Serialize};

/// A public key from an issuer's JWKS. Only the members needed to verify
/// signatures are kept; private members, if an issuer ever published them,
/// are ignored.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Jwk {
    kty: CoreJsonWebKeyType,
    #[serde(rename = "use", default, skip_serializing_if = "Option::is_none")]
    use_: Option<CoreJsonWebKeyUse>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    kid: Option<JsonWebKeyId>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    alg: Option<CoreJwsSigningAlgorithm>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    crv: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none", with = "b64")]
    n: Option<Vec<u8>>,
    #[serde(default, skip_serializing_if = "Option::is_none", with = "b64")]
    e: Option<Vec<u8>>,
    #[serde(default, skip_serializing_if = "Option::is_none", with = "b64")]
    x: Option<Vec<u8>>,
    #[serde(default, skip_serializing_if = "Option::is_none", with = "b64")]
    y: Option<Vec<u8>>,
}

impl Jwk {
    /// An RSA public key from its modulus and exponent (big-endian bytes).
    /// Without `alg`, the key may verify any RSA algorithm.
    #[cfg(any(test, feature = "test-helpers"))]
    pub fn rsa(kid: &str, alg: Option<CoreJwsSigningAlgorithm>, n: Vec<u8>, e: Vec<u8>) -> Self {
        Jwk {
            kty: CoreJsonWebKeyType::RSA,
            use_: Some(CoreJsonWebKeyUse::Signature),
            kid: Some(JsonWebKeyId::new(kid.to_owned())),
            alg,
            crv: None,
            n: Some(n),
            e: Some(e),
            x: None,
            y: None,
        }
    }

    /// An EC public key from its uncompressed point (`0x04 || x || y`).
    #[cfg(any(test, feature = "test-helpers"))]
    pub fn ec(kid: &str, alg: CoreJwsSigningAlgorithm, crv: &str, point: &[u8]) -> Self {
        let coordinates = point.get(1..).unwrap_or_default();
        let (x, y) = coordinates.split_at(coordinates.len() / 2);
        Jwk {
            kty: CoreJsonWebKeyType::EllipticCurve,
            use_: Some(CoreJsonWebKeyUse::Signature),
            kid: Some(JsonWebKeyId::new(kid.to_owned())),
            alg: Some(alg),
            crv: Some(crv.to_owned()),
            n: None,
            e: None,
            x: Some(x.to_vec()),
            y: Some(y.to_vec()),
        }
    }

    /// An Ed25519 public key (EdDSA).
    #[cfg(any(test, feature = "test-helpers"))]
    pub fn ed25519(kid: &str, public_key: &[u8]) -> Self {
        Jwk {
            kty: CoreJsonWebKeyType::OctetKeyPair,
            use_: Some(CoreJsonWebKeyUse::Signature),
            kid: Some(JsonWebKeyId::new(kid.to_owned())),
            alg: Some(CoreJwsSigningAlgorithm::EdDsa),
            crv: Some("Ed25519".to_owned()),
            n: None,
            e: None,
            x: Some(public_key.to_vec()),
            y: None,
        }
    }

    fn member(
        &self,
        value: &Option<Vec<u8>>,
        name: &str,
    ) -> Result<Vec<u8>, SignatureVerificationError> {
        value.clone().ok_or_else(|| {
            SignatureVerificationError::InvalidKey(format!("the key has no `{name}`"))
        })
    }

    fn ec_point(&self, curve: &str) -> Result<Vec<u8>, SignatureVerificationError> {
        if self.crv.as_deref() != Some(curve) {
            return Err(SignatureVerificationError::InvalidKey(format!(
                "the key is not on {curve}"
            )));
        }
        let mut point = vec![0x04];
        point.extend(self.member(&self.x, "x")?);
        point.extend(self.member(&self.y, "y")?);
        Ok(point)
    }
}

/// Algorithms trustpub accepts: asymmetric ones only. `none` and HMAC are
/// refused whatever a token's header says.
pub fn is_accepted(alg: &CoreJwsSigningAlgorithm) -> bool {
    use CoreJwsSigningAlgorithm::*;
    matches!(
        alg,
        RsaSsaPkcs1V15Sha256
            | RsaSsaPkcs1V15Sha384
            | RsaSsaPkcs1V15Sha512
            | RsaSsaPssSha256
            | RsaSsaPssSha384
            | RsaSsaPssSha512
            | EcdsaP256Sha256
            | EcdsaP384Sha384
            | EdDsa
    )
}

impl JsonWebKey for Jwk {
    type KeyUse = CoreJsonWebKeyUse;
    type SigningAlgorithm = CoreJwsSigningAlgorithm;

    fn key_id(&self) -> Option<&JsonWebKeyId> {
        self.kid.as_ref()
    }

    fn key_type(&self) -> &CoreJsonWebKeyType {
        &self.kty
    }

    fn key_use(&self) -> Option<&CoreJsonWebKeyUse> {
        self.use_.as_ref()
    }

    fn signing_alg(&self) -> JsonWebKeyAlgorithm<&CoreJwsSigningAlgorithm> {
        match &self.alg {
            None => JsonWebKeyAlgorithm::Unspecified,
            Some(alg) if is_accepted(alg) => JsonWebKeyAlgorithm::Algorithm(alg),
            Some(_) => JsonWebKeyAlgorithm::Unsupported,
        }
    }

    fn new_symmetric(key: Vec<u8>) -> Self {
        // Never used to verify anything: `verify_signature` refuses HMAC.
        Jwk {
            kty: CoreJsonWebKeyType::Symmetric,
            use_: None,
            kid: None,
            alg: None,
            crv: None,
            n: None,
            e: None,
            x: Some(key),
            y: None,
        }
    }

    fn verify_signature(
        &self,
        alg: &CoreJwsSigningAlgorithm,
        message: &[u8],
        signature: &[u8],
    ) -> Result<(), SignatureVerificationError> {
        use CoreJwsSigningAlgorithm::*;
        if !is_accepted(alg) {
            return Err(SignatureVerificationError::DisallowedAlg(format!(
                "{alg:?}"
            )));
        }
        if let Some(use_) = &self.use_
            && *use_ != CoreJsonWebKeyUse::Signature
        {
            return Err(SignatureVerificationError::InvalidKey(
                "the key is not for signatures".into(),
            ));
        }
        if let Some(key_alg) = &self.alg
            && key_alg != alg
        {
            return Err(SignatureVerificationError::InvalidKey(format!(
                "the key is for {key_alg:?}, the token says {alg:?}"
            )));
        }
        let bad =
            |_| SignatureVerificationError::CryptoError("the signature does not verify".into());
        let rsa = |params: &'static signature::RsaParameters| {
            if self.kty != CoreJsonWebKeyType::RSA {
                return Err(SignatureVerificationError::InvalidKey(
                    "not an RSA key".into(),
                ));
            }
            RsaPublicKeyComponents {
                n: self.member(&self.n, "n")?,
                e: self.member(&self.e, "e")?,
            }
            .verify(params, message, signature)
            .map_err(bad)
        };
        let ec = |params: &'static signature::EcdsaVerificationAlgorithm, curve: &str| {
            if self.kty != CoreJsonWebKeyType::EllipticCurve {
                return Err(SignatureVerificationError::InvalidKey(
                    "not an EC key".into(),
                ));
            }
            UnparsedPublicKey::new(params, self.ec_point(curve)?)
                .verify(message, signature)
                .map_err(bad)
        };
        match alg {
            RsaSsaPkcs1V15Sha256 => rsa(&signature::RSA_PKCS1_2048_8192_SHA256),
            RsaSsaPkcs1V15Sha384 => rsa(&signature::RSA_PKCS1_2048_8192_SHA384),
            RsaSsaPkcs1V15Sha512 => rsa(&signature::RSA_PKCS1_2048_8192_SHA512),
            RsaSsaPssSha256 => rsa(&signature::RSA_PSS_2048_8192_SHA256),
            RsaSsaPssSha384 => rsa(&signature::RSA_PSS_2048_8192_SHA384),
            RsaSsaPssSha512 => rsa(&signature::RSA_PSS_2048_8192_SHA512),
            EcdsaP256Sha256 => ec(&signature::ECDSA_P256_SHA256_FIXED, "P-256"),
            EcdsaP384Sha384 => ec(&signature::ECDSA_P384_SHA384_FIXED, "P-384"),
            EdDsa => {
                if self.kty != CoreJsonWebKeyType::OctetKeyPair
                    || self.crv.as_deref() != Some("Ed25519")
                {
                    return Err(SignatureVerificationError::InvalidKey(
                        "not an Ed25519 key".into(),
                    ));
                }
                UnparsedPublicKey::new(&signature::ED25519, self.member(&self.x, "x")?)
                    .verify(message, signature)
                    .map_err(bad)
            }
            other => Err(SignatureVerificationError::DisallowedAlg(format!(
                "{other:?}"
            ))),
        }
    }

    fn hash_bytes(&self, bytes: &[u8], alg: &CoreJwsSigningAlgorithm) -> Result<Vec<u8>, String> {
        use CoreJwsSigningAlgorithm::*;
        let digest = match alg {
            RsaSsaPkcs1V15Sha256 | RsaSsaPssSha256 | EcdsaP256Sha256 => &ring::digest::SHA256,
            RsaSsaPkcs1V15Sha384 | RsaSsaPssSha384 | EcdsaP384Sha384 => &ring::digest::SHA384,
            RsaSsaPkcs1V15Sha512 | RsaSsaPssSha512 | EdDsa => &ring::digest::SHA512,
            other => return Err(format!("no hash for {other:?}")),
        };
        Ok(ring::digest::digest(digest, bytes).as_ref().to_vec())
    }
}

/// Base64url (no padding) for optional byte members.
mod b64 {
    use super::{Engine, URL_SAFE_NO_PAD};
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(value: &Option<Vec<u8>>, s: S) -> Result<S::Ok, S::Error> {
        match value {
            Some(bytes) => s.serialize_str(&URL_SAFE_NO_PAD.encode(bytes)),
            None => s.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Vec<u8>>, D::Error> {
        let text = Option::<String>::deserialize(d)?;
        text.map(|t| {
            URL_SAFE_NO_PAD
                .decode(t.trim_end_matches('='))
                .map_err(serde::de::Error::custom)
        })
        .transpose()
    }
}
