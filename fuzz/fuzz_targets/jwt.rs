//! Identity tokens: `oidc::verify`, from the split into three parts through
//! base64url, the JSON of header and payload, the algorithm, the key lookup
//! in a real key store (filled from the test issuer), the signature, to the
//! checks of the standard claims.
//!
//! The first byte picks how the rest is read:
//! - 0: the token as text, verbatim;
//! - 1: header JSON, 0xFF, payload JSON, 0xFF, signature bytes, each
//!   base64url-encoded here (so the fuzzer works on JSON, not base64);
//! - 2: payload JSON, signed here with the test issuer's Ed25519 key, so
//!   that the claims checks after the signature are reached.
//!
//! The second byte picks the issuer's provider (whether a `jti` is
//! required). In modes 1 and 2 `https://issuer.fuzz` in the payload stands
//! for the test issuer's URL, whose port changes from run to run.
//!
//! Properties: no panic; a token whose signature was not made by the
//! issuer (modes 0 and 1) is refused; a verified token satisfies every
//! rule of verification (issuer, audience, times, lifetime, `jti`), and the
//! same token with its signature changed is refused.
#![no_main]

use std::sync::LazyLock;
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use libfuzzer_sys::fuzz_target;
use serde_json::Value;
use trustpub::domain::{Audience, Issuer, IssuerUrl, Provider};
use trustpub::metrics::Metrics;
use trustpub::oidc::{KeyStore, LEEWAY_SECONDS, verify};
use trustpub::testing::{TestIssuer, TestKey};

/// The time of verification, Unix seconds (the seeds' tokens are valid then).
const NOW: i64 = 1_750_000_000;
const PLACEHOLDER: &[u8] = b"https://issuer.fuzz";
const AUDIENCE: &str = "fuzz-registry";
/// Long enough that nothing is fetched again during a run.
const FOREVER: Duration = Duration::from_secs(10 * 365 * 86_400);

struct World {
    runtime: tokio::runtime::Runtime,
    issuer: TestIssuer,
    keys: KeyStore,
    audience: Audience,
}

static WORLD: LazyLock<World> = LazyLock::new(|| {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("a Tokio runtime");
    let issuer = runtime.block_on(TestIssuer::start());
    let keys = KeyStore::new(FOREVER, FOREVER, Metrics::new()).expect("a key store");
    let url = IssuerUrl::parse(issuer.url().to_owned()).expect("the issuer URL");
    runtime
        .block_on(keys.keys_for(&url, None))
        .expect("the test issuer's keys");
    World {
        runtime,
        issuer,
        keys,
        audience: Audience::parse(AUDIENCE.to_owned()).unwrap(),
    }
});

fn with_issuer(bytes: &[u8], url: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(bytes.len());
    let mut rest = bytes;
    while !rest.is_empty() {
        if rest.starts_with(PLACEHOLDER) {
            out.extend_from_slice(url.as_bytes());
            rest = &rest[PLACEHOLDER.len()..];
        } else {
            out.push(rest[0]);
            rest = &rest[1..];
        }
    }
    out
}

fuzz_target!(|data: &[u8]| {
    let [mode, provider, rest @ ..] = data else {
        return;
    };
    let world = &*WORLD;
    let provider = Provider::ALL[usize::from(*provider) % Provider::ALL.len()];
    let issuer = Issuer {
        url: IssuerUrl::parse(world.issuer.url().to_owned()).unwrap(),
        provider,
        max_token_lifetime: Issuer::DEFAULT_MAX_TOKEN_LIFETIME,
    };
    let issuers = [issuer.clone()];
    let verify_at = |token: &str| {
        world
            .runtime
            .block_on(verify(&world.keys, &issuers, &world.audience, token, NOW))
    };

    let (token, signed_here) = match mode % 3 {
        0 => (String::from_utf8_lossy(rest).into_owned(), false),
        1 => {
            let mut parts = rest.splitn(3, |b| *b == 0xFF);
            let header = parts.next().unwrap_or_default();
            let payload = with_issuer(parts.next().unwrap_or_default(), world.issuer.url());
            let signature = parts.next().unwrap_or_default();
            let token = format!(
                "{}.{}.{}",
                URL_SAFE_NO_PAD.encode(header),
                URL_SAFE_NO_PAD.encode(payload),
                URL_SAFE_NO_PAD.encode(signature)
            );
            (token, false)
        }
        _ => {
            let payload = with_issuer(rest, world.issuer.url());
            let payload = String::from_utf8_lossy(&payload);
            (
                world.issuer.sign_json_text_with(TestKey::Ed1, &payload),
                true,
            )
        }
    };

    let Ok(verified) = verify_at(&token) else {
        return;
    };
    assert!(
        signed_here,
        "a token the issuer never signed verified: {token}"
    );
    // Every rule of verification holds for what verified.
    assert_eq!(verified.issuer, issuer);
    let claims = &verified.claims;
    assert_eq!(claims["iss"], Value::from(issuer.url.as_str()));
    match &claims["aud"] {
        Value::String(aud) => assert_eq!(aud, AUDIENCE),
        Value::Array(list) => assert_eq!(list, &[Value::from(AUDIENCE)]),
        other => panic!("verified with aud {other}"),
    }
    assert_eq!(claims["exp"].as_i64(), Some(verified.expires_at));
    assert!(NOW < verified.expires_at.saturating_add(LEEWAY_SECONDS));
    let iat = claims["iat"].as_i64().expect("an integer iat");
    assert!(iat <= NOW + LEEWAY_SECONDS);
    assert!(
        i128::from(verified.expires_at) - i128::from(iat)
            <= i128::from(issuer.max_token_lifetime) + i128::from(LEEWAY_SECONDS)
    );
    if let Some(nbf) = claims.get("nbf") {
        assert!(nbf.as_i64().expect("an integer nbf") <= NOW + LEEWAY_SECONDS);
    }
    assert!(!verified.jti.is_empty() && !verified.jti.contains(char::is_control));
    if provider.always_sends_jti() {
        assert_eq!(claims["jti"].as_str(), Some(verified.jti.as_str()));
    }
    // The same token with another signature is refused.
    let (signed, signature) = token.rsplit_once('.').unwrap();
    let mut signature = URL_SAFE_NO_PAD.decode(signature).unwrap();
    signature[0] ^= 1;
    let forged = format!("{signed}.{}", URL_SAFE_NO_PAD.encode(signature));
    assert!(verify_at(&forged).is_err(), "a changed signature verified");
});
