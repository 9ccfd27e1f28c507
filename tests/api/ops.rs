//! Operations endpoints.

use serde_json::json;

use crate::helpers::{json_ok, problem, spawn_app};
use crate::metrics::{sample, scrape};

#[tokio::test]
async fn healthz_says_the_process_is_up() {
    let app = spawn_app("").await;
    let response = app.get("/healthz").send().await.unwrap();
    assert_eq!(json_ok(response).await, json!({"status": "ok"}));
}

#[tokio::test]
async fn readyz_follows_the_store() {
    let app = spawn_app("").await;
    let response = app.get("/readyz").send().await.unwrap();
    assert_eq!(json_ok(response).await, json!({"status": "ready"}));

    app.store.close().await;
    let response = app.get("/readyz").send().await.unwrap();
    problem(response, 503, "store-unavailable").await;
    // The process itself is still up.
    let response = app.get("/healthz").send().await.unwrap();
    json_ok(response).await;
    // And its metrics are still served, counting what the store failed.
    let text = scrape(&app, &app.address).await;
    for source in ["request", "scrape"] {
        assert_eq!(
            sample(&text, "trustpub_store_errors_total", &[("source", source)]),
            Some(1.0),
            "{text}"
        );
    }
}
