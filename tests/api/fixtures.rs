//! The registries of the registry-side tests (acme with an introspection
//! secret and forward-auth's `package_path`, `other`, `closed`) and the
//! calls that mint, burn and store their credentials. Shared by the
//! registry-side and gateway tests here and, through `#[path]`, by the
//! end-to-end tests in `tests/e2e/`.

use reqwest::{Method, Response};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use trustpub::domain::TokenPrefix;
use trustpub::publishers::Audit;
use trustpub::store::{NewUploadToken, UsedJti, now};
use trustpub::testing::{
    ACME_AUDIENCE, TestClaims, TestIssuer, acme_registry_with, minted_event, trusts_widget,
};
use trustpub::tokens::Credential;

use crate::helpers::{TestApp, json_ok, spawn_app};

pub const ACME_SECRET: &str = "acme-introspection-secret";

/// Rate limits off for mints: floods of mints from one test client, which
/// the per-address limit would answer with 429.
pub const UNLIMITED_MINTS: &str = "[rate_limits]\nmints = { per_minute = 0, burst = 0 }\n";
pub const OTHER_SECRET: &str = "other-introspection-secret";

/// The hex SHA-256 of `secret`, as `introspect_secret_sha256` takes it.
pub fn digest(secret: &str) -> String {
    hex::encode(Sha256::digest(secret.as_bytes()))
}

/// acme, with an introspection secret and a package path for forward-auth;
/// `other`, on another host, trusting the same publisher; `closed`, on
/// acme's host under another path, without introspection.
pub fn config(issuer: &str) -> String {
    format!(
        r#"{acme}
[[registries]]
name = "other"
upload_url = "https://other.acme.test/"
audience = "other-aud"
token_prefix = "other_"
introspect_secret_sha256 = "{other}"
{other_trust}
[[registries]]
name = "closed"
upload_url = "https://pypi.acme.test/legacy/closed/"
audience = "closed-aud"
token_prefix = "closed_"
"#,
        acme = acme_registry_with(
            issuer,
            &format!(
                "introspect_secret_sha256 = \"{}\"\n\
                 forward_auth = {{ package_path = \"/legacy/packages/{{package}}/\" }}",
                digest(ACME_SECRET)
            )
        ),
        other = digest(OTHER_SECRET),
        other_trust = trusts_widget(issuer, r#"["widget"]"#),
    )
}

pub async fn prepare() -> (TestIssuer, TestApp) {
    let issuer = TestIssuer::start().await;
    let app = spawn_app(&config(issuer.url())).await;
    (issuer, app)
}

/// Mints a credential of `registry` (audience `audience`) with `body`'s
/// extra members.
pub async fn mint_on(
    app: &TestApp,
    issuer: &TestIssuer,
    registry: &str,
    audience: &str,
    extra: Value,
) -> String {
    mint_through(&app.client, &app.address, issuer, registry, audience, extra).await
}

/// [`mint_on`] with `client`, at trustpub's `base` URL (a proxy in front).
pub async fn mint_through(
    client: &reqwest::Client,
    base: &str,
    issuer: &TestIssuer,
    registry: &str,
    audience: &str,
    extra: Value,
) -> String {
    let mut body = json!({
        "token": issuer.sign(&TestClaims::github(issuer.url(), audience, now()).build())
    });
    if let (Value::Object(body), Value::Object(extra)) = (&mut body, extra) {
        body.extend(extra);
    }
    let minted = json_ok(
        client
            .post(format!("{base}/_/trustpub/{registry}/mint-token"))
            .json(&body)
            .send()
            .await
            .unwrap(),
    )
    .await;
    minted["token"].as_str().unwrap().to_owned()
}

pub async fn mint(app: &TestApp, issuer: &TestIssuer, extra: Value) -> String {
    mint_on(app, issuer, "acme", ACME_AUDIENCE, extra).await
}

pub async fn burn(app: &TestApp, registry: &str, credential: &str) -> Response {
    app.request(Method::POST, &format!("/_/trustpub/{registry}/burn-token"))
        .json(&json!({ "token": credential }))
        .send()
        .await
        .unwrap()
}

/// Stores a credential of acme directly, to test times the server's clock
/// has not reached.
pub async fn stored_credential(app: &TestApp, created_at: i64, expires_at: i64) -> String {
    let credential = Credential::generate(&TokenPrefix::parse("acme_".into()).unwrap());
    let packages = vec!["widget".to_owned()];
    let jti = format!("stored-{}", credential.hash());
    app.store
        .record_mint(
            UsedJti {
                issuer: "https://issuer.test",
                jti: &jti,
                keep_until: expires_at,
            },
            NewUploadToken {
                registry: "acme",
                hash: credential.hash(),
                publishers: vec!["p".into()],
                packages: &packages,
                single_use: false,
                created_at,
                expires_at,
                claims: &Audit::default(),
            },
            minted_event("acme", created_at),
        )
        .await
        .unwrap();
    credential.expose().to_owned()
}
