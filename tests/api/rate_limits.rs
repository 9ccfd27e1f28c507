//! Rate limits: mints and failed checks per client address and registry,
//! the client found through `server.trusted_proxies` only, and the ceiling
//! on refused unauthenticated requests for the whole server.

use reqwest::{Method, Response};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use trustpub::store::now;
use trustpub::testing::{ACME_AUDIENCE, TestClaims, TestIssuer, acme_registry_with};

use crate::helpers::{TestApp, TestDatabase, json_ok, problem, refusals, settings, spawn_app};

const SECRET: &str = "acme-introspection-secret";
const FLOODER: &str = "203.0.113.7";
const NEIGHBOUR: &str = "198.51.100.9";

/// acme with an introspection secret and `limits` (TOML for its
/// `rate_limits` key), after `top` (TOML before the registries).
fn config(issuer: &str, top: &str, limits: &str) -> String {
    let secret = hex::encode(Sha256::digest(SECRET.as_bytes()));
    format!(
        "{top}\n{}",
        acme_registry_with(
            issuer,
            &format!("introspect_secret_sha256 = \"{secret}\"\nrate_limits = {limits}")
        )
    )
}

const TRUST_LOOPBACK: &str = "[server]\ntrusted_proxies = [\"127.0.0.1/32\", \"::1/128\"]\n";

/// A mint on acme from `client` (as forwarded), with `token`.
async fn mint_from(app: &TestApp, client: &str, token: &str) -> Response {
    app.request(Method::POST, "/_/trustpub/acme/mint-token")
        .header("X-Forwarded-For", client)
        .json(&json!({ "token": token }))
        .send()
        .await
        .unwrap()
}

fn valid_token(issuer: &TestIssuer) -> String {
    issuer.sign(&TestClaims::github(issuer.url(), ACME_AUDIENCE, now()).build())
}

/// Asserts a 429 `rate-limited` with a `Retry-After` in whole seconds.
async fn limited(response: Response) -> Value {
    let retry_after: u64 = response
        .headers()
        .get("retry-after")
        .expect("Retry-After")
        .to_str()
        .unwrap()
        .parse()
        .expect("whole seconds");
    assert!((1..=60).contains(&retry_after), "{retry_after}");
    problem(response, 429, "rate-limited").await
}

#[tokio::test]
async fn a_flood_from_one_address_does_not_stop_another_addresss_mint() {
    let issuer = TestIssuer::start().await;
    let limits = "{ mints = { per_minute = 1, burst = 3 } }";
    let app = spawn_app(&config(issuer.url(), TRUST_LOOPBACK, limits)).await;
    for _ in 0..3 {
        problem(mint_from(&app, FLOODER, "junk").await, 401, "invalid-token").await;
    }
    for _ in 0..3 {
        let document = limited(mint_from(&app, FLOODER, "junk").await).await;
        assert!(
            document["detail"]
                .as_str()
                .unwrap()
                .contains("rate_limits.mints"),
            "{document}"
        );
    }
    // Even a valid token is refused from the flooding address...
    limited(mint_from(&app, FLOODER, &valid_token(&issuer)).await).await;
    // ...but not from another one, behind the same trusted proxy.
    let minted = json_ok(mint_from(&app, NEIGHBOUR, &valid_token(&issuer)).await).await;
    assert!(minted["token"].as_str().unwrap().starts_with("acme_"));
    // Refused floods are not counted as refusals once limited.
    assert_eq!(refusals(&app, "acme", "mint", "invalid-token").await, 3);
}

#[tokio::test]
async fn forwarded_addresses_count_only_from_trusted_proxies() {
    let issuer = TestIssuer::start().await;
    let limits = "{ mints = { per_minute = 1, burst = 2 } }";
    // The peer (loopback) is no trusted proxy: X-Forwarded-For is ignored,
    // and every request is the peer's.
    let app = spawn_app(&config(issuer.url(), "", limits)).await;
    problem(mint_from(&app, FLOODER, "junk").await, 401, "invalid-token").await;
    problem(mint_from(&app, FLOODER, "junk").await, 401, "invalid-token").await;
    limited(mint_from(&app, NEIGHBOUR, &valid_token(&issuer)).await).await;

    // A trusted proxy's own address in the list is skipped: the client is
    // the last address that is not a trusted proxy.
    let app = spawn_app(&config(issuer.url(), TRUST_LOOPBACK, limits)).await;
    let chain = format!("{NEIGHBOUR}, {FLOODER}, 127.0.0.1");
    for _ in 0..2 {
        problem(mint_from(&app, &chain, "junk").await, 401, "invalid-token").await;
    }
    limited(mint_from(&app, FLOODER, "junk").await).await;
    json_ok(mint_from(&app, NEIGHBOUR, &valid_token(&issuer)).await).await;
}

/// An introspection on acme from `client`.
async fn introspect_from(app: &TestApp, client: &str, credential: &str) -> Response {
    app.request(Method::POST, "/_/trustpub/acme/introspect")
        .header("X-Forwarded-For", client)
        .bearer_auth(SECRET)
        .json(&json!({ "token": credential }))
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn failed_checks_are_limited_per_address_and_valid_ones_are_not_counted() {
    let issuer = TestIssuer::start().await;
    let limits = "{ failed_checks = { per_minute = 1, burst = 2 } }";
    let app = spawn_app(&config(issuer.url(), TRUST_LOOPBACK, limits)).await;
    let credential =
        json_ok(mint_from(&app, NEIGHBOUR, &valid_token(&issuer)).await).await["token"]
            .as_str()
            .unwrap()
            .to_owned();
    // Checks of a live credential are no failures, however many.
    for _ in 0..5 {
        let answer = json_ok(introspect_from(&app, FLOODER, &credential).await).await;
        assert_eq!(answer["active"], true);
    }
    for _ in 0..2 {
        let answer = json_ok(introspect_from(&app, FLOODER, "acme_junk").await).await;
        assert_eq!(answer["active"], false);
    }
    // Over the limit, the address is refused before anything is checked.
    limited(introspect_from(&app, FLOODER, "acme_junk").await).await;
    limited(introspect_from(&app, FLOODER, &credential).await).await;
    assert_eq!(
        refusals(&app, "acme", "check", "unknown-credential").await,
        2
    );
    let answer = json_ok(introspect_from(&app, NEIGHBOUR, &credential).await).await;
    assert_eq!(answer["active"], true);

    // Forward-auth shares the bucket: the flooding address is still limited.
    limited(forward_from(&app, FLOODER, &credential).await).await;
    assert_eq!(
        forward_from(&app, NEIGHBOUR, &credential).await.status(),
        200
    );
}

/// A forward-auth check of a read from acme by `client`.
async fn forward_from(app: &TestApp, client: &str, credential: &str) -> Response {
    app.get("/_/trustpub/auth")
        .header("X-Forwarded-For", client)
        .header("X-Trustpub-Registry", "acme")
        .header("X-Forwarded-Method", "GET")
        .bearer_auth(credential)
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn refused_unauthenticated_requests_have_a_ceiling_for_the_whole_server() {
    let issuer = TestIssuer::start().await;
    let top = format!(
        "{TRUST_LOOPBACK}\n[rate_limits]\nrefused_unauthenticated = {{ per_minute = 1, burst = 2 }}\n"
    );
    let app = spawn_app(&config(issuer.url(), &top, "{}")).await;
    // Each from its own address: no per-address bucket is empty.
    for client in ["192.0.2.1", "192.0.2.2"] {
        problem(mint_from(&app, client, "junk").await, 401, "invalid-token").await;
    }
    limited(mint_from(&app, "192.0.2.3", "junk").await).await;
    limited(introspect_from(&app, "192.0.2.4", "acme_junk").await).await;
    assert_eq!(refusals(&app, "acme", "mint", "invalid-token").await, 2);
    assert_eq!(
        refusals(&app, "acme", "check", "unknown-credential").await,
        0
    );
    // A burn answers alike whatever it was given (no oracle), and is then
    // not counted.
    let burnt = app
        .request(Method::POST, "/_/trustpub/acme/burn-token")
        .json(&json!({ "token": "acme_junk" }))
        .send()
        .await
        .unwrap();
    assert_eq!(burnt.status(), 202);
    assert_eq!(
        refusals(&app, "acme", "revoke", "unknown-credential").await,
        0
    );
    // A request that proves who it is is no refusal: it goes on.
    json_ok(mint_from(&app, "192.0.2.5", &valid_token(&issuer)).await).await;
}

#[tokio::test]
async fn a_limit_that_lets_nothing_through_is_refused() {
    let db = TestDatabase::new().await;
    let error = settings(
        "[rate_limits]\nmints = { per_minute = 10, burst = 0 }\n",
        &db,
    )
    .unwrap_err();
    assert_eq!(
        error.to_string(),
        "invalid configuration: rate_limits.mints: burst must be at least 1 \
         (per_minute = 0 turns the limit off)"
    );
    let issuer = TestIssuer::start().await;
    let error = settings(
        &config(
            issuer.url(),
            "",
            "{ failed_checks = { per_minute = 5, burst = 0 } }",
        ),
        &db,
    )
    .unwrap_err();
    assert!(
        error
            .to_string()
            .starts_with("invalid configuration: registries.0.rate_limits.failed_checks: "),
        "{error}"
    );
    // Off is off: no limit at all.
    let off = "{ mints = { per_minute = 0, burst = 0 } }";
    let app = spawn_app(&config(issuer.url(), TRUST_LOOPBACK, off)).await;
    for _ in 0..20 {
        problem(mint_from(&app, FLOODER, "junk").await, 401, "invalid-token").await;
    }
}
