//! The issuers' keys: JWKS discovery, caching, rotation and failures.

use std::net::TcpListener;

use actix_web::HttpResponse;
use serde_json::{Value, json};
use trustpub::store::now;
use trustpub::testing::{ACME_AUDIENCE, TestClaims, TestIssuer, TestKey, acme_registry as config};

use crate::helpers::{TestApp, json_ok, problem, serve, spawn_app};

fn claims(issuer: &str) -> Value {
    TestClaims::github(issuer, ACME_AUDIENCE, now()).build()
}

async fn mint(app: &TestApp, token: &str) -> reqwest::Response {
    app.request(reqwest::Method::POST, "/_/trustpub/acme/mint-token")
        .json(&json!({ "token": token }))
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn keys_are_cached_and_refetched_on_rotation_at_most_once_per_cool_down() {
    let issuer = TestIssuer::start().await;
    let app = spawn_app(&config(issuer.url())).await;
    json_ok(mint(&app, &issuer.sign(&claims(issuer.url()))).await).await;
    json_ok(mint(&app, &issuer.sign(&claims(issuer.url()))).await).await;
    assert_eq!(issuer.jwks_fetches(), 1, "the second mint uses the cache");

    // The issuer rotates: a token with the new kid triggers one refetch.
    issuer.rotate();
    json_ok(
        mint(
            &app,
            &issuer.sign_with(TestKey::Rsa2, &claims(issuer.url())),
        )
        .await,
    )
    .await;
    assert_eq!(issuer.jwks_fetches(), 2);

    // Within the cool-down an unknown kid does not refetch again.
    let header = json!({ "alg": "RS256", "typ": "JWT", "kid": "rsa-9" });
    let token = TestIssuer::token_with(&header, &claims(issuer.url()), &[0; 256]);
    problem(mint(&app, &token).await, 401, "invalid-token").await;
    problem(mint(&app, &token).await, 401, "invalid-token").await;
    assert_eq!(issuer.jwks_fetches(), 2);
}

#[tokio::test]
async fn cached_keys_outlive_an_unreachable_issuer() {
    let issuer = TestIssuer::start().await;
    let url = issuer.url().to_owned();
    let app = spawn_app(&config(&url)).await;
    json_ok(mint(&app, &issuer.sign(&claims(&url))).await).await;
    let later = issuer.sign(&claims(&url));
    let even_later = issuer.sign(&claims(&url));
    let unknown_kid = issuer.sign_with(TestKey::Rsa2, &claims(&url));
    drop(issuer);
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;

    json_ok(mint(&app, &later).await).await;
    // A refetch for an unknown kid fails; the cached keys stay, and the
    // token, perhaps signed with a key the issuer just added, waits for the
    // issuer: 502, not the token's fault.
    problem(mint(&app, &unknown_kid).await, 502, "issuer-unavailable").await;
    json_ok(mint(&app, &even_later).await).await;
}

#[tokio::test]
async fn an_issuer_that_cannot_be_reached_is_502() {
    let closed = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://127.0.0.1:{}", closed.local_addr().unwrap().port());
    drop(closed);
    let signer = TestIssuer::start().await;
    let app = spawn_app(&config(&url)).await;
    problem(
        mint(&app, &signer.sign(&claims(&url))).await,
        502,
        "issuer-unavailable",
    )
    .await;
    assert_eq!(app.store.count_upload_tokens("acme").await.unwrap(), 0);
}

/// A misbehaving issuer on a random port; `route` answers its discovery
/// document.
async fn bad_issuer(route: fn(u16) -> HttpResponse) -> String {
    format!("http://127.0.0.1:{}", serve(route))
}

#[tokio::test]
async fn fetches_refuse_redirects_to_other_hosts_big_documents_and_other_issuers() {
    let signer = TestIssuer::start().await;
    let cases: [fn(u16) -> HttpResponse; 3] = [
        // A redirect to another host (localhost is not 127.0.0.1).
        |port| {
            HttpResponse::Found()
                .insert_header(("Location", format!("http://localhost:{port}/elsewhere")))
                .finish()
        },
        // A document larger than 256 KiB.
        |_| HttpResponse::Ok().body(format!("{{\"pad\": \"{}\"}}", "x".repeat(300 * 1024))),
        // A document naming another issuer.
        |_| {
            HttpResponse::Ok().json(
                json!({ "issuer": "https://other.test", "jwks_uri": "https://other.test/jwks" }),
            )
        },
    ];
    for route in cases {
        let url = bad_issuer(route).await;
        let app = spawn_app(&config(&url)).await;
        problem(
            mint(&app, &signer.sign(&claims(&url))).await,
            502,
            "issuer-unavailable",
        )
        .await;
    }
}

#[tokio::test]
async fn keys_past_their_maximum_age_are_refreshed_so_withdrawn_keys_stop_verifying() {
    use std::time::Duration;
    use trustpub::domain::IssuerUrl;
    use trustpub::oidc::KeyStore;

    let issuer = TestIssuer::start().await;
    let url = IssuerUrl::parse(issuer.url().to_owned()).unwrap();
    let keys = KeyStore::new(
        Duration::ZERO,
        Duration::from_millis(100),
        trustpub::metrics::Metrics::new(),
    )
    .unwrap();
    assert_eq!(keys.keys_for(&url, Some("rsa-1")).await.unwrap().len(), 1);
    assert_eq!(keys.keys_for(&url, Some("rsa-1")).await.unwrap().len(), 1);
    assert_eq!(issuer.jwks_fetches(), 1);

    issuer.rotate();
    tokio::time::sleep(Duration::from_millis(150)).await;
    assert!(
        keys.keys_for(&url, Some("rsa-1")).await.unwrap().is_empty(),
        "rsa-1 was withdrawn"
    );
    assert_eq!(issuer.jwks_fetches(), 2);
}

/// Keys are fetched under one lock per issuer: an issuer that does not
/// answer holds up only its own tokens, never another issuer's first mint.
#[tokio::test]
async fn a_hanging_issuer_does_not_delay_another_issuers_mints() {
    // An "issuer" that accepts connections and never answers; it says when
    // the first fetch has arrived, and keeps the socket open.
    let hanging = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let hanging_url = format!("http://{}", hanging.local_addr().unwrap());
    let (arrived, mut fetch_started) = tokio::sync::mpsc::channel(1);
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((socket, _)) = hanging.accept().await {
            held.push(socket);
            let _ = arrived.try_send(());
        }
    });
    let issuer = TestIssuer::start().await;
    let app = spawn_app(&format!(
        "{}\n[[registries]]\nname = \"slow\"\nupload_url = \"https://slow.acme.test/\"\n\
         audience = \"slow-aud\"\ntoken_prefix = \"slow_\"\n{}",
        config(issuer.url()),
        trustpub::testing::trusts_widget(&hanging_url, r#"["gizmo"]"#)
    ))
    .await;

    let slow_token = issuer.sign(&TestClaims::github(&hanging_url, "slow-aud", now()).build());
    let (client, address) = (app.client.clone(), app.address.clone());
    let slow = tokio::spawn(async move {
        client
            .post(format!("{address}/_/trustpub/slow/mint-token"))
            .json(&json!({ "token": slow_token }))
            .send()
            .await
            .unwrap()
    });
    fetch_started
        .recv()
        .await
        .expect("the hanging issuer is asked");

    // The fetch of the hanging issuer's keys is under way (it ends only
    // with the fetch timeout); acme's issuer is fetched meanwhile.
    let quick = tokio::time::timeout(
        trustpub::oidc::FETCH_TIMEOUT - std::time::Duration::from_secs(1),
        mint(&app, &issuer.sign(&claims(issuer.url()))),
    )
    .await
    .expect("the mint did not wait for the other issuer's fetch");
    json_ok(quick).await;
    assert!(!slow.is_finished(), "the hanging issuer's mint still waits");
    problem(slow.await.unwrap(), 502, "issuer-unavailable").await;
}
