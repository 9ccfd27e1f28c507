//! `GET /metrics`: where it is served, who may read it, and what it counts.

use reqwest::Method;
use serde_json::json;
use trustpub::store::now;
use trustpub::testing::{ACME_AUDIENCE, TestClaims, TestIssuer, acme_registry};

use crate::admin::{OPS, spawn_with_admin};
use crate::helpers::{TestApp, json_ok, problem, spawn_app};

/// The value of the sample of `family` with these labels (among others),
/// if the scrape has one.
pub fn sample(scrape: &str, family: &str, labels: &[(&str, &str)]) -> Option<f64> {
    scrape
        .lines()
        .filter(|line| !line.starts_with('#'))
        .find(|line| {
            let name_end = line.find(['{', ' ']).unwrap_or(line.len());
            &line[..name_end] == family
                && labels
                    .iter()
                    .all(|(name, value)| line.contains(&format!("{name}=\"{value}\"")))
        })
        .and_then(|line| line.rsplit(' ').next())
        .and_then(|value| value.parse().ok())
}

/// `GET {base}/metrics`, asserting a 200 in the text format.
pub async fn scrape(app: &TestApp, base: &str) -> String {
    let response = app
        .client
        .get(format!("{base}/metrics"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(
        response.headers()["content-type"],
        "text/plain; version=0.0.4; charset=utf-8"
    );
    response.text().await.unwrap()
}

async fn mint(app: &TestApp, token: &str) -> reqwest::Response {
    app.request(Method::POST, "/_/trustpub/acme/mint-token")
        .json(&json!({ "token": token }))
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn metrics_count_requests_mints_refusals_key_fetches_and_live_credentials() {
    let issuer = TestIssuer::start().await;
    let app = spawn_with_admin("listen = \"127.0.0.1:0\"", &issuer).await;
    let token = issuer.sign(&TestClaims::github(issuer.url(), ACME_AUDIENCE, now()).build());
    let credential = json_ok(mint(&app, &token).await).await["token"]
        .as_str()
        .unwrap()
        .to_owned();
    problem(mint(&app, &token).await, 401, "token-reused").await;
    problem(mint(&app, "junk").await, 401, "invalid-token").await;
    let burnt = app
        .request(Method::POST, "/_/trustpub/acme/burn-token")
        .json(&json!({ "token": "acme_unknown" }))
        .send()
        .await
        .unwrap();
    assert_eq!(burnt.status(), 202);
    app.get("/no/such/path").send().await.unwrap();

    // On the admin listener only, and without a token there.
    problem(app.get("/metrics").send().await.unwrap(), 404, "not-found").await;
    let text = scrape(&app, app.admin_address.as_deref().unwrap()).await;
    let value = |family: &str, labels: &[(&str, &str)]| {
        sample(&text, family, labels).unwrap_or_else(|| panic!("no {family} {labels:?} in\n{text}"))
    };
    let mint_route = [("route", "/_/trustpub/{registry}/mint-token")];
    assert_eq!(
        value(
            "trustpub_http_requests_total",
            &[mint_route[0], ("status", "200")]
        ),
        1.0
    );
    assert_eq!(
        value(
            "trustpub_http_requests_total",
            &[mint_route[0], ("status", "401")]
        ),
        2.0
    );
    // Paths of no route (and /metrics on the public listener) share one
    // label: no raw path is ever a label.
    assert_eq!(
        value(
            "trustpub_http_requests_total",
            &[("route", "(none)"), ("status", "404")]
        ),
        2.0
    );
    assert!(!text.contains("/no/such/path"));
    assert_eq!(
        value("trustpub_http_request_duration_seconds_count", &mint_route),
        3.0
    );
    let acme = ("registry", "acme");
    assert_eq!(
        value(
            "trustpub_mints_total",
            &[acme, ("outcome", "minted"), ("code", "ok")]
        ),
        1.0
    );
    for code in ["token-reused", "invalid-token"] {
        assert_eq!(
            value(
                "trustpub_mints_total",
                &[acme, ("outcome", "refused"), ("code", code)]
            ),
            1.0
        );
    }
    assert_eq!(
        value(
            "trustpub_revocations_total",
            &[acme, ("outcome", "refused"), ("code", "unknown-credential")]
        ),
        1.0
    );
    assert_eq!(
        value(
            "trustpub_key_fetches_total",
            &[("issuer", issuer.url()), ("result", "ok")]
        ),
        issuer.jwks_fetches() as f64
    );
    // The replay reached the writer too: its jti was found there.
    assert_eq!(value("trustpub_mint_batch_size_count", &[]), 2.0);
    assert_eq!(value("trustpub_live_credentials", &[acme]), 1.0);

    // The gauge is read when scraped: a revoked credential is no longer live.
    let burnt = app
        .request(Method::POST, "/_/trustpub/acme/burn-token")
        .json(&json!({ "token": credential }))
        .send()
        .await
        .unwrap();
    assert_eq!(burnt.status(), 202);
    let text = scrape(&app, app.admin_address.as_deref().unwrap()).await;
    assert_eq!(sample(&text, "trustpub_live_credentials", &[acme]), None);
    assert_eq!(
        sample(
            &text,
            "trustpub_revocations_total",
            &[acme, ("outcome", "revoked"), ("code", "ok")]
        ),
        Some(1.0)
    );
}

#[tokio::test]
async fn on_the_main_listener_metrics_want_an_admin_token_when_the_admin_api_is_there() {
    let issuer = TestIssuer::start().await;
    let app = spawn_with_admin("enabled = true", &issuer).await;
    problem(
        app.get("/metrics").send().await.unwrap(),
        401,
        "admin-unauthorized",
    )
    .await;
    let response = app.get("/metrics").bearer_auth(OPS).send().await.unwrap();
    assert_eq!(response.status(), 200);
    assert!(
        response
            .text()
            .await
            .unwrap()
            .contains("trustpub_http_requests_total")
    );

    // Without an admin API, on the main listener, as /healthz is.
    let off = spawn_app(&acme_registry(issuer.url())).await;
    off.get("/healthz").send().await.unwrap();
    let text = scrape(&off, &off.address).await;
    assert!(text.contains("# TYPE trustpub_http_requests_total counter"));
}

#[tokio::test]
async fn rate_limited_requests_are_counted_by_limit() {
    let issuer = TestIssuer::start().await;
    let config = format!(
        "[rate_limits]\nmints = {{ per_minute = 1, burst = 1 }}\n{}",
        acme_registry(issuer.url())
    );
    let app = spawn_app(&config).await;
    problem(mint(&app, "junk").await, 401, "invalid-token").await;
    problem(mint(&app, "junk").await, 429, "rate-limited").await;
    problem(mint(&app, "junk").await, 429, "rate-limited").await;
    let text = scrape(&app, &app.address).await;
    assert_eq!(
        sample(&text, "trustpub_rate_limited_total", &[("limit", "mints")]),
        Some(2.0)
    );
    assert_eq!(
        sample(
            &text,
            "trustpub_http_requests_total",
            &[
                ("route", "/_/trustpub/{registry}/mint-token"),
                ("status", "429")
            ]
        ),
        Some(2.0)
    );
}
