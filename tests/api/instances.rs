//! Several trustpub instances on one database (in-process here, as behind
//! a round-robin balancer): the store, not any instance's memory, decides
//! which exchange of a token wins, which check consumes a single-use
//! credential, and whether a credential is burnt.

use std::sync::Arc;

use futures_util::future::join_all;
use reqwest::Method;
use serde_json::{Value, json};
use trustpub::store::now;
use trustpub::testing::{ACME_AUDIENCE, TestClaims, TestIssuer};

use crate::fixtures::{ACME_SECRET, burn, config, mint};
use crate::helpers::{TestApp, TestDatabase, json_ok, problem, spawn_app_on};

/// How many requests race in each test, spread over the instances.
const RACERS: usize = 60;

async fn three_instances(issuer: &TestIssuer) -> Vec<TestApp> {
    let db = Arc::new(TestDatabase::new().await);
    let mut apps = Vec::new();
    for _ in 0..3 {
        apps.push(spawn_app_on(db.clone(), &config(issuer.url())).await);
    }
    apps
}

async fn introspect(app: &TestApp, body: Value) -> reqwest::Response {
    app.request(Method::POST, "/_/trustpub/acme/introspect")
        .bearer_auth(ACME_SECRET)
        .json(&body)
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn one_identity_token_exchanged_concurrently_through_every_instance_mints_once() {
    let issuer = TestIssuer::start().await;
    let apps = three_instances(&issuer).await;
    let token = issuer.sign(&TestClaims::github(issuer.url(), ACME_AUDIENCE, now()).build());
    let answers = join_all((0..RACERS).map(|i| {
        apps[i % apps.len()]
            .request(Method::POST, "/_/trustpub/acme/mint-token")
            .json(&json!({ "token": token }))
            .send()
    }))
    .await;
    let mut minted = 0;
    for answer in answers {
        let answer = answer.unwrap();
        if answer.status() == 200 {
            minted += 1;
        } else {
            problem(answer, 401, "token-reused").await;
        }
    }
    assert_eq!(minted, 1, "exactly one exchange wins");
}

#[tokio::test]
async fn a_single_use_credential_checked_concurrently_through_every_instance_passes_once() {
    let issuer = TestIssuer::start().await;
    let apps = three_instances(&issuer).await;
    let single = mint(
        &apps[0],
        &issuer,
        json!({ "features": ["single-use-token"] }),
    )
    .await;
    let answers = join_all((0..RACERS).map(|i| {
        introspect(
            &apps[i % apps.len()],
            json!({ "token": single, "consume": true }),
        )
    }))
    .await;
    let mut passed = 0;
    for answer in answers {
        if json_ok(answer).await["active"] == true {
            passed += 1;
        }
    }
    assert_eq!(passed, 1, "exactly one consuming check passes");
}

#[tokio::test]
async fn a_burn_on_one_instance_is_seen_by_the_others_at_once() {
    let issuer = TestIssuer::start().await;
    let apps = three_instances(&issuer).await;
    let credential = mint(&apps[0], &issuer, json!({})).await;
    for app in &apps {
        let answer = json_ok(introspect(app, json!({ "token": credential })).await).await;
        assert_eq!(answer["active"], true);
    }
    assert_eq!(burn(&apps[1], "acme", &credential).await.status(), 202);
    for app in &apps {
        let answer = json_ok(introspect(app, json!({ "token": credential })).await).await;
        assert_eq!(answer, json!({ "active": false }));
    }
}
