//! Storage: configuration as code, migrations, SQLite specifics.

use std::sync::Arc;

use serde_json::json;

use crate::helpers::{REGISTRIES, TestDatabase, json_ok, problem, spawn_app, spawn_app_on};

/// Instances that read registries from the store for every request.
fn uncached(config: &str) -> String {
    format!("[database]\nregistry_cache_ttl = 0\n{config}")
}

#[tokio::test]
async fn registries_and_publishers_follow_the_file_across_restarts() {
    let db = Arc::new(TestDatabase::new().await);
    let first = spawn_app_on(db.clone(), &uncached(REGISTRIES)).await;
    let acme = first.store.registry("acme").await.unwrap().unwrap();
    assert_eq!(acme.publishers.len(), 1);
    assert_eq!(acme.issuers.len(), 1);
    assert!(first.store.registry("beta").await.unwrap().is_some());

    // The operator edits the file: acme changes its audience and replaces its
    // publisher, beta is removed, gamma is added.
    let edited = REGISTRIES
        .replace("audience = \"acme-pypi\"", "audience = \"acme-pypi-2\"")
        .replace(
            "repository = \"octo-org/widget\"",
            "repository = \"octo-org/gadget\"",
        )
        .replace(
            "packages = [\"widget\", \"widget-*\"]",
            "packages = [\"gadget\"]",
        )
        .replace("name = \"beta\"", "name = \"gamma\"");
    let restarted = spawn_app_on(db.clone(), &uncached(&edited)).await;

    let acme = restarted.store.registry("acme").await.unwrap().unwrap();
    assert_eq!(acme.audience.as_str(), "acme-pypi-2");
    let publishers = serde_json::to_value(&acme.publishers).unwrap();
    assert_eq!(
        publishers,
        json!([{
            "provider": "github",
            "issuer": "https://token.actions.githubusercontent.com",
            "repository": "octo-org/gadget",
            "repository_owner_id": "9919",
            "workflow": "release.yml",
            "environment": "pypi",
            "packages": ["gadget"],
        }])
    );
    assert!(restarted.store.registry("beta").await.unwrap().is_none());
    assert!(restarted.store.registry("gamma").await.unwrap().is_some());

    // Both instances read the same store: the first one sees the edit too.
    let response = first.get("/_/trustpub/acme/audience").send().await.unwrap();
    assert_eq!(json_ok(response).await, json!({"audience": "acme-pypi-2"}));
    let response = first.get("/_/trustpub/beta/audience").send().await.unwrap();
    problem(response, 404, "unknown-registry").await;
    let response = first
        .get("/.well-known/pytp?discover=%2Fsimple+upload%2F")
        .send()
        .await
        .unwrap();
    assert_eq!(
        json_ok(response).await["audience-endpoint"],
        "https://uploads.beta.test:8443/_/trustpub/gamma/audience"
    );

    // Removing every registry from the file empties the store.
    let emptied = spawn_app_on(db.clone(), "").await;
    assert!(emptied.store.registry("acme").await.unwrap().is_none());
    assert!(emptied.store.registry("gamma").await.unwrap().is_none());
}

#[tokio::test]
async fn another_instance_sees_registry_changes_after_its_cache_ttl() {
    let db = Arc::new(TestDatabase::new().await);
    let cached = format!("[database]\nregistry_cache_ttl = 3600\n{REGISTRIES}");
    let first = spawn_app_on(db.clone(), &cached).await;
    let audience = || async {
        let response = first.get("/_/trustpub/acme/audience").send().await.unwrap();
        json_ok(response).await["audience"].clone()
    };
    assert_eq!(audience().await, "acme-pypi");
    let edited = REGISTRIES.replace("audience = \"acme-pypi\"", "audience = \"acme-pypi-2\"");
    let restarted = spawn_app_on(db.clone(), &edited).await;
    // The instance that synced reads the change at once ...
    let response = restarted
        .get("/_/trustpub/acme/audience")
        .send()
        .await
        .unwrap();
    assert_eq!(json_ok(response).await["audience"], "acme-pypi-2");
    // ... the other one keeps what it read until its TTL is over.
    assert_eq!(audience().await, "acme-pypi");
}

#[tokio::test]
async fn an_unchanged_file_changes_nothing() {
    let db = Arc::new(TestDatabase::new().await);
    let first = spawn_app_on(db.clone(), REGISTRIES).await;
    let before = first.store.registry("acme").await.unwrap().unwrap();
    let report = first
        .store
        .sync_registries(std::slice::from_ref(&before))
        .await
        .unwrap();
    assert_eq!(report.publishers_added, 0);
    assert_eq!(report.publishers_removed, 0);
    let after = first.store.registry("acme").await.unwrap().unwrap();
    assert_eq!(before, after);
}

#[tokio::test]
async fn sqlite_databases_are_created_with_their_folder_in_wal_mode() {
    let app = spawn_app(REGISTRIES).await;
    if !app.db.is_sqlite() {
        return; // PostgreSQL run: the SQLite specifics are covered by the SQLite run.
    }
    let path = app.db.url.trim_start_matches("sqlite://");
    assert!(std::path::Path::new(path).is_file(), "{path}");
    use sqlx::Connection;
    let mut conn = sqlx::SqliteConnection::connect(&app.db.url).await.unwrap();
    let mode: String = sqlx::query_scalar("PRAGMA journal_mode")
        .fetch_one(&mut conn)
        .await
        .unwrap();
    assert_eq!(mode, "wal");
}
