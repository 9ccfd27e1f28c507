//! Three trustpub processes on one database behind nginx, round robin, as
//! a deployment with several instances runs them: the store decides which
//! exchange of a token wins, which check consumes a single-use credential,
//! and whether a credential is burnt — whichever instance nginx picks.

use std::collections::HashSet;
use std::sync::Arc;

use futures_util::StreamExt;
use reqwest::Method;
use serde_json::{Value, json};
use trustpub::store::now;
use trustpub::testing::{ACME_AUDIENCE, TestClaims, TestIssuer};

use crate::fixtures::{ACME_SECRET, UNLIMITED_MINTS, config};
use crate::helpers::{ServedBinary, TestDatabase, json_ok, problem};
use crate::nginx::{free_port, start_nginx_server};

/// Exchanges of one identity token sent through nginx.
const EXCHANGES: usize = 1000;
/// How many are in flight at once: within the test nginx's 64 worker
/// connections, two per proxied request.
const IN_FLIGHT: usize = 24;

/// nginx's server block: round robin (its default) over `instances`, each
/// answer saying which one served it.
fn round_robin(port: u16, instances: &[ServedBinary]) -> String {
    let servers: String = instances
        .iter()
        .map(|i| format!("    server {};\n", i.address.trim_start_matches("http://")))
        .collect();
    format!(
        "upstream trustpub {{\n{servers}}}\nserver {{\n  listen 127.0.0.1:{port};\n  \
         location / {{\n    proxy_pass http://trustpub;\n    \
         add_header X-Upstream $upstream_addr always;\n  }}\n}}\n"
    )
}

/// Sends `requests` through nginx, [`IN_FLIGHT`] at a time; answers each
/// status, body and the instance that served it.
async fn through(requests: Vec<reqwest::RequestBuilder>) -> Vec<(u16, Value, String)> {
    futures_util::stream::iter(requests.into_iter().map(|request| async move {
        let response = request.send().await.unwrap();
        let upstream = response.headers()["x-upstream"]
            .to_str()
            .unwrap()
            .to_owned();
        let status = response.status().as_u16();
        (
            status,
            response.json().await.unwrap_or(Value::Null),
            upstream,
        )
    }))
    .buffer_unordered(IN_FLIGHT)
    .collect()
    .await
}

#[tokio::test]
async fn three_instances_behind_nginx_agree_through_the_store() {
    let db = Arc::new(TestDatabase::new().await);
    let issuer = TestIssuer::start().await;
    let mut instances = Vec::new();
    for _ in 0..3 {
        instances.push(
            ServedBinary::start(
                &db.url,
                &format!("{UNLIMITED_MINTS}{}", config(issuer.url())),
            )
            .await,
        );
    }
    let port = free_port();
    let _nginx = start_nginx_server(port, &round_robin(port, &instances)).await;
    let nginx = format!("http://127.0.0.1:{port}");
    let client = reqwest::Client::new();
    let post = |path: &str, body: Value| {
        client
            .request(Method::POST, format!("{nginx}{path}"))
            .json(&body)
    };

    // One identity token, a thousand exchanges: one credential.
    let token = issuer.sign(&TestClaims::github(issuer.url(), ACME_AUDIENCE, now()).build());
    let answers = through(
        (0..EXCHANGES)
            .map(|_| post("/_/trustpub/acme/mint-token", json!({ "token": token })))
            .collect(),
    )
    .await;
    let served_by: HashSet<&String> = answers.iter().map(|(_, _, upstream)| upstream).collect();
    assert_eq!(
        served_by.len(),
        3,
        "nginx spread the exchanges: {served_by:?}"
    );
    let minted: Vec<&Value> = answers
        .iter()
        .filter(|(status, _, _)| *status == 200)
        .map(|(_, body, _)| body)
        .collect();
    assert_eq!(minted.len(), 1, "exactly one exchange wins");
    for (status, body, _) in &answers {
        assert!(
            *status == 200 || (*status == 401 && body["code"] == "token-reused"),
            "{status} {body}"
        );
    }

    // A single-use credential, checked by many at once: one pass.
    let single = json_ok(
        post(
            "/_/trustpub/acme/mint-token",
            json!({ "token": issuer.sign(&TestClaims::github(issuer.url(), ACME_AUDIENCE, now()).build()),
                    "features": ["single-use-token"] }),
        )
        .send()
        .await
        .unwrap(),
    )
    .await["token"]
        .as_str()
        .unwrap()
        .to_owned();
    let checks = through(
        (0..60)
            .map(|_| {
                post(
                    "/_/trustpub/acme/introspect",
                    json!({ "token": single, "consume": true }),
                )
                .bearer_auth(ACME_SECRET)
            })
            .collect(),
    )
    .await;
    let passed = checks
        .iter()
        .filter(|(_, body, _)| body["active"] == true)
        .count();
    assert_eq!(passed, 1, "exactly one consuming check passes");

    // A burn through nginx: inactive on every instance at once.
    let credential = minted[0]["token"].as_str().unwrap();
    let burnt = post(
        "/_/trustpub/acme/burn-token",
        json!({ "token": credential }),
    )
    .send()
    .await
    .unwrap();
    assert_eq!(burnt.status(), 202);
    for instance in &instances {
        let answer = client
            .post(format!("{}/_/trustpub/acme/introspect", instance.address))
            .bearer_auth(ACME_SECRET)
            .json(&json!({ "token": credential }))
            .send()
            .await
            .unwrap();
        assert_eq!(json_ok(answer).await, json!({ "active": false }));
    }
    // A refused exchange is still a problem document through nginx.
    problem(
        post("/_/trustpub/acme/mint-token", json!({ "token": token }))
            .send()
            .await
            .unwrap(),
        401,
        "token-reused",
    )
    .await;
}
