//! trustpub killed with SIGKILL in the middle of a mint flood, then started
//! again on the same database: a credential is answered only once its row
//! is committed, and so is the `jti` of its identity token.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use reqwest::Method;
use serde_json::json;
use trustpub::store::now;
use trustpub::testing::{ACME_AUDIENCE, TestClaims, TestIssuer};

use crate::fixtures::{ACME_SECRET, UNLIMITED_MINTS, config};
use crate::helpers::{ServedBinary, TestDatabase, json_ok, problem};

#[tokio::test]
async fn a_kill_during_a_mint_flood_loses_no_answered_credential_and_replays_no_jti() {
    let db = TestDatabase::new().await;
    let issuer = Arc::new(TestIssuer::start().await);
    let mut server = ServedBinary::start(
        &db.url,
        &format!("{UNLIMITED_MINTS}{}", config(issuer.url())),
    )
    .await;
    let address = server.address.clone();
    let client = reqwest::Client::new();

    // The flood: each task mints until a request fails (the kill), keeping
    // the identity token and credential of every 200.
    let killed = Arc::new(AtomicBool::new(false));
    let flood: Vec<_> = (0..16)
        .map(|_| {
            let (client, address, issuer) = (client.clone(), address.clone(), issuer.clone());
            let killed = killed.clone();
            tokio::spawn(async move {
                let mut answered = Vec::new();
                loop {
                    let claims = TestClaims::github(issuer.url(), ACME_AUDIENCE, now()).build();
                    let token = issuer.sign(&claims);
                    let sent = client
                        .post(format!("{address}/_/trustpub/acme/mint-token"))
                        .json(&json!({ "token": token }))
                        .send()
                        .await;
                    let body = match sent {
                        Ok(response) if response.status() == 200 => response.json().await,
                        Ok(response) => panic!("a mint answered {}", response.status()),
                        Err(_) => break,
                    };
                    match body {
                        Ok(body) => {
                            let body: serde_json::Value = body;
                            answered.push((token, body["token"].as_str().unwrap().to_owned()));
                        }
                        Err(_) if killed.load(Ordering::SeqCst) => break,
                        Err(error) => panic!("a 200 without its body: {error}"),
                    }
                }
                answered
            })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(1500)).await;
    killed.store(true, Ordering::SeqCst);
    server.kill();
    let mut answered = Vec::new();
    for task in flood {
        answered.extend(task.await.unwrap());
    }
    assert!(
        !answered.is_empty(),
        "some mints were answered before the kill"
    );

    server.restart().await;
    for (identity, credential) in &answered {
        let introspected = client
            .post(format!("{address}/_/trustpub/acme/introspect"))
            .bearer_auth(ACME_SECRET)
            .json(&json!({ "token": credential }))
            .send()
            .await
            .unwrap();
        assert_eq!(json_ok(introspected).await["active"], true, "{credential}");
        let replayed = client
            .request(
                Method::POST,
                format!("{address}/_/trustpub/acme/mint-token"),
            )
            .json(&json!({ "token": identity }))
            .send()
            .await
            .unwrap();
        problem(replayed, 401, "token-reused").await;
    }
}
