//! Operations endpoints.

use serde_json::json;

use crate::helpers::{json_ok, problem, spawn_app};

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
}
