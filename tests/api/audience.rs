//! PEP 807 audience: `GET /_/trustpub/{registry}/audience`.

use serde_json::json;

use crate::helpers::{REGISTRIES, json_ok, problem, spawn_app};

#[tokio::test]
async fn answers_the_registry_audience() {
    let app = spawn_app(REGISTRIES).await;
    for (registry, audience) in [
        ("acme", "acme-pypi"),
        ("acme-eu", "acme-eu-pypi"),
        ("beta", "beta"),
    ] {
        let response = app
            .get(&format!("/_/trustpub/{registry}/audience"))
            .send()
            .await
            .unwrap();
        assert_eq!(json_ok(response).await, json!({ "audience": audience }));
    }
}

#[tokio::test]
async fn the_discovered_audience_endpoint_is_the_one_served() {
    let app = spawn_app(REGISTRIES).await;
    let document = json_ok(
        app.get("/.well-known/pytp?discover=%2Flegacy%2F")
            .header("Host", "pypi.acme.test")
            .send()
            .await
            .unwrap(),
    )
    .await;
    let endpoint = url::Url::parse(document["audience-endpoint"].as_str().unwrap()).unwrap();
    let response = app.get(endpoint.path()).send().await.unwrap();
    assert_eq!(json_ok(response).await["audience"], "acme-pypi");
}

#[tokio::test]
async fn an_unknown_registry_is_404() {
    let app = spawn_app(REGISTRIES).await;
    for name in ["nope", "acme2"] {
        let response = app
            .get(&format!("/_/trustpub/{name}/audience"))
            .send()
            .await
            .unwrap();
        problem(response, 404, "unknown-registry").await;
    }
    // A name no registry could have is a malformed path.
    for name in ["ACME", "acme%20", "a%2Fb", "%FF%FE"] {
        let response = app
            .get(&format!("/_/trustpub/{name}/audience"))
            .send()
            .await
            .unwrap();
        problem(response, 400, "invalid-path").await;
    }
}
