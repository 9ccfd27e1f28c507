//! Verifies an identity token for a registry: peek at `iss` only, check it is
//! an issuer the registry trusts, then verify the signature with the issuer's
//! keys and the standard claims strictly.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use openidconnect::JsonWebKey;
use openidconnect::core::CoreJwsSigningAlgorithm;
use serde::Deserialize;
use serde_json::Value;
use sha2::{Digest, Sha256};

use super::{Claims, KeyStore, is_accepted};
use crate::domain::{Audience, Issuer};
use crate::problem::{Error, Result};

/// The one leeway, in seconds, applied to `exp`, `nbf` and `iat` for clock
/// skew between the CI provider and trustpub.
pub const LEEWAY_SECONDS: i64 = 60;

/// A token whose signature and standard claims have been verified for a
/// registry.
#[derive(Debug, Clone)]
pub struct VerifiedToken {
    pub issuer: Issuer,
    /// The `jti` claim; for a provider whose tokens may have none, when
    /// absent, `payload-sha256:<hex>` of the signed payload.
    pub jti: String,
    /// `exp`, Unix seconds.
    pub expires_at: i64,
    pub claims: Claims,
}

#[derive(Deserialize)]
struct Header {
    alg: String,
    #[serde(default)]
    kid: Option<String>,
    #[serde(default)]
    crit: Option<Value>,
}

fn invalid(reason: impl Into<String>) -> Error {
    Error::InvalidToken(reason.into())
}

/// Reads the header or the payload, a JSON object. An object with a member
/// named twice, at any depth, is refused: readers differ on which of the two
/// counts.
fn decode_json(bytes: &[u8], what: &str) -> Result<serde_json::Map<String, Value>> {
    let not_json = |e: serde_json::Error| invalid(format!("the {what} is not valid JSON: {e}"));
    match serde_json::from_slice(bytes).map_err(not_json)? {
        Unique(Value::Object(members)) => Ok(members),
        Unique(_) => Err(invalid(format!("the {what} is not a JSON object"))),
    }
}

/// A JSON value whose objects have no member named twice.
struct Unique(Value);

impl<'de> serde::Deserialize<'de> for Unique {
    fn deserialize<D: serde::Deserializer<'de>>(
        deserializer: D,
    ) -> std::result::Result<Self, D::Error> {
        deserializer.deserialize_any(UniqueVisitor)
    }
}

struct UniqueVisitor;

impl<'de> serde::de::Visitor<'de> for UniqueVisitor {
    type Value = Unique;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_bool<E>(self, v: bool) -> std::result::Result<Unique, E> {
        Ok(Unique(Value::Bool(v)))
    }

    fn visit_i64<E>(self, v: i64) -> std::result::Result<Unique, E> {
        Ok(Unique(Value::from(v)))
    }

    fn visit_u64<E>(self, v: u64) -> std::result::Result<Unique, E> {
        Ok(Unique(Value::from(v)))
    }

    fn visit_f64<E>(self, v: f64) -> std::result::Result<Unique, E> {
        Ok(Unique(Value::from(v)))
    }

    fn visit_str<E>(self, v: &str) -> std::result::Result<Unique, E> {
        Ok(Unique(Value::String(v.to_owned())))
    }

    fn visit_string<E>(self, v: String) -> std::result::Result<Unique, E> {
        Ok(Unique(Value::String(v)))
    }

    fn visit_unit<E>(self) -> std::result::Result<Unique, E> {
        Ok(Unique(Value::Null))
    }

    fn visit_seq<A: serde::de::SeqAccess<'de>>(
        self,
        mut seq: A,
    ) -> std::result::Result<Unique, A::Error> {
        let mut items = Vec::new();
        while let Some(Unique(item)) = seq.next_element()? {
            items.push(item);
        }
        Ok(Unique(Value::Array(items)))
    }

    fn visit_map<A: serde::de::MapAccess<'de>>(
        self,
        mut map: A,
    ) -> std::result::Result<Unique, A::Error> {
        let mut members = serde_json::Map::new();
        while let Some(name) = map.next_key::<String>()? {
            let Unique(value) = map.next_value()?;
            if members.contains_key(&name) {
                return Err(serde::de::Error::custom(format!(
                    "the member {name:?} appears twice"
                )));
            }
            members.insert(name, value);
        }
        Ok(Unique(Value::Object(members)))
    }
}

fn decode_base64(part: &str, what: &str) -> Result<Vec<u8>> {
    URL_SAFE_NO_PAD
        .decode(part)
        .map_err(|_| invalid(format!("the {what} is not base64url")))
}

/// Verifies `token` at time `now` (Unix seconds) for a registry that
/// trusts `issuers` and whose tokens carry `audience`.
pub async fn verify(
    keys: &KeyStore,
    issuers: &[Issuer],
    audience: &Audience,
    token: &str,
    now: i64,
) -> Result<VerifiedToken> {
    let parts: Vec<&str> = token.trim().split('.').collect();
    let [header_part, payload_part, signature_part] = parts.as_slice() else {
        return Err(invalid("not a JWT: expected three dot-separated parts"));
    };
    let header = decode_json(&decode_base64(header_part, "header")?, "header")?;
    let header = Header::deserialize(Value::Object(header))
        .map_err(|e| invalid(format!("the header is not valid JSON: {e}")))?;
    let payload = decode_base64(payload_part, "payload")?;
    let claims: Claims = decode_json(&payload, "payload")?;

    // 1. The issuer, compared exactly with those the registry trusts.
    let iss = claims
        .get("iss")
        .and_then(Value::as_str)
        .ok_or_else(|| invalid("the `iss` claim is missing"))?;
    let issuer = issuers
        .iter()
        .find(|i| i.url.as_str() == iss)
        .ok_or_else(|| Error::UntrustedIssuer(iss.to_owned()))?
        .clone();

    // 2. Asymmetric algorithms only: `none` and HMAC are refused whatever
    //    the header says.
    let alg: CoreJwsSigningAlgorithm = serde_json::from_value(Value::String(header.alg.clone()))
        .ok()
        .filter(is_accepted)
        .ok_or_else(|| Error::UnsupportedAlgorithm(header.alg.clone()))?;
    if header.crit.is_some() {
        return Err(invalid(
            "the header has `crit` extensions, which trustpub does not understand",
        ));
    }

    // 3. The signature, with the issuer's key named by `kid`.
    let signature = URL_SAFE_NO_PAD
        .decode(signature_part)
        .map_err(|_| invalid("the signature is not base64url"))?;
    let signing_input = &token.trim()[..header_part.len() + 1 + payload_part.len()];
    let candidates = keys.keys_for(&issuer.url, header.kid.as_deref()).await?;
    if candidates.is_empty() {
        return Err(invalid(format!(
            "the issuer has no key {:?}",
            header.kid.as_deref().unwrap_or_default()
        )));
    }
    let verified = candidates.iter().any(|key| {
        key.verify_signature(&alg, signing_input.as_bytes(), &signature)
            .is_ok()
    });
    if !verified {
        return Err(invalid(
            "the signature does not verify with the issuer's keys",
        ));
    }

    // 4. The standard claims.
    check_audience(&claims, audience.as_str())?;
    let expires_at =
        time_claim(&claims, "exp")?.ok_or_else(|| invalid("the `exp` claim is missing"))?;
    if now >= expires_at.saturating_add(LEEWAY_SECONDS) {
        return Err(Error::TokenExpired);
    }
    if let Some(nbf) = time_claim(&claims, "nbf")?
        && nbf > now.saturating_add(LEEWAY_SECONDS)
    {
        return Err(Error::TokenNotYetValid("nbf"));
    }
    let iat = time_claim(&claims, "iat")?.ok_or_else(|| invalid("the `iat` claim is missing"))?;
    if iat > now.saturating_add(LEEWAY_SECONDS) {
        return Err(Error::TokenNotYetValid("iat"));
    }
    // With the one leeway too: an issuer's hour may come out a few seconds
    // long (Kubernetes' default is 3607 s).
    let lifetime = expires_at.saturating_sub(iat);
    if lifetime > i64::from(issuer.max_token_lifetime).saturating_add(LEEWAY_SECONDS) {
        return Err(invalid(format!(
            "the token lives {lifetime} s (exp - iat), longer than the {} s this registry \
             accepts from its issuer",
            issuer.max_token_lifetime
        )));
    }
    let jti = match claims.get("jti").and_then(Value::as_str) {
        Some(jti) if jti.contains(char::is_control) => {
            return Err(invalid("the `jti` claim holds control characters"));
        }
        Some(jti) if !jti.is_empty() => jti.to_owned(),
        _ if issuer.provider.always_sends_jti() => {
            return Err(invalid("the `jti` claim is missing"));
        }
        // Accepted once all the same: by what was signed, which a changed
        // signature (ECDSA's are malleable) does not change.
        _ => format!("payload-sha256:{}", hex::encode(Sha256::digest(&payload))),
    };

    Ok(VerifiedToken {
        issuer,
        jti,
        expires_at,
        claims,
    })
}

/// `aud` must be exactly the registry's audience: a string, or a list holding
/// only it.
fn check_audience(claims: &Claims, audience: &str) -> Result<()> {
    let exact = match claims.get("aud") {
        Some(Value::String(aud)) => aud == audience,
        Some(Value::Array(list)) => list.len() == 1 && list[0].as_str() == Some(audience),
        _ => false,
    };
    if exact {
        Ok(())
    } else {
        Err(Error::InvalidAudience(audience.to_owned()))
    }
}

fn time_claim(claims: &Claims, name: &'static str) -> Result<Option<i64>> {
    match claims.get(name) {
        None => Ok(None),
        Some(value) => value
            .as_i64()
            .map(Some)
            .ok_or_else(|| invalid(format!("the `{name}` claim is not an integer"))),
    }
}
