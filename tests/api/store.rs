//! Storage: configuration as code, migrations, SQLite specifics.

use std::sync::Arc;

use serde_json::json;

use crate::helpers::{
    REGISTRIES, TestApp, TestDatabase, json_ok, not_checked, problem, spawn_app, spawn_app_on,
};

/// Instances that read registries from the store for every request.
fn uncached(config: &str) -> String {
    format!("[database]\nregistry_cache_ttl = 0\n{config}")
}

/// Instances that keep the registries in memory for `ttl` seconds.
fn cached(ttl: u64, config: &str) -> String {
    format!("[database]\nregistry_cache_ttl = {ttl}\n{config}")
}

/// The audience `app` answers for acme.
async fn acme_audience(app: &TestApp) -> serde_json::Value {
    let response = app.get("/_/trustpub/acme/audience").send().await.unwrap();
    json_ok(response).await["audience"].clone()
}

/// Runs `sql` on the test database on a connection of its own, as an
/// operator editing the tables by hand would.
async fn by_hand(db: &TestDatabase, sql: &str) {
    use sqlx::Connection;
    sqlx::any::install_default_drivers();
    let mut connection = sqlx::AnyConnection::connect(&db.url).await.unwrap();
    sqlx::raw_sql(sqlx::AssertSqlSafe(sql.to_owned()))
        .execute(&mut connection)
        .await
        .unwrap();
}

/// Asks `app` for acme's audience every 200 ms for three seconds: it is
/// `expected` each time.
async fn acme_audience_stays(app: &TestApp, expected: &str) {
    for _ in 0..15 {
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
        assert_eq!(acme_audience(app).await, expected);
    }
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
    let first = spawn_app_on(db.clone(), &cached(3600, REGISTRIES)).await;
    assert_eq!(acme_audience(&first).await, "acme-pypi");
    let edited = REGISTRIES.replace("audience = \"acme-pypi\"", "audience = \"acme-pypi-2\"");
    let restarted = spawn_app_on(db.clone(), &edited).await;
    // The instance that synced reads the change at once ...
    assert_eq!(acme_audience(&restarted).await, "acme-pypi-2");
    // ... the other one keeps what it read until its TTL is over.
    assert_eq!(acme_audience(&first).await, "acme-pypi");
}

/// Once its copy of the registries is `registry_cache_ttl` old, an instance
/// checks the stored version, and reads the registries again only when it
/// changed: another instance's sync is seen; a row edited by hand (no new
/// version) is not.
#[tokio::test]
async fn the_cached_registries_are_read_again_when_their_version_changes() {
    let db = Arc::new(TestDatabase::new().await);
    let first = spawn_app_on(db.clone(), &cached(1, REGISTRIES)).await;
    assert_eq!(acme_audience(&first).await, "acme-pypi");

    by_hand(
        &db,
        "UPDATE registries SET audience = 'by-hand' WHERE name = 'acme'",
    )
    .await;
    // The copy is checked at least twice meanwhile; the version is the same.
    acme_audience_stays(&first, "acme-pypi").await;

    let edited = REGISTRIES.replace("audience = \"acme-pypi\"", "audience = \"acme-pypi-2\"");
    spawn_app_on(db.clone(), &cached(1, &edited)).await;
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    while acme_audience(&first).await != "acme-pypi-2" {
        assert!(std::time::Instant::now() < deadline, "the sync is not seen");
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
}

/// A check of the registries that fails (here the version's table is
/// gone) leaves the copy in use: requests are answered from it, not 5xx.
#[tokio::test]
async fn a_failed_check_leaves_the_registries_in_memory() {
    let db = Arc::new(TestDatabase::new().await);
    let app = spawn_app_on(db.clone(), &cached(1, REGISTRIES)).await;
    by_hand(&db, "DROP TABLE registry_version").await;
    // Checks are started meanwhile, and fail.
    acme_audience_stays(&app, "acme-pypi").await;
}

/// The registries are read into memory before the server listens, so the
/// first requests do not wait for that read: a row edited by hand after the
/// start is not what the first request sees.
#[tokio::test]
async fn the_registries_are_in_memory_before_the_first_request() {
    let db = Arc::new(TestDatabase::new().await);
    let app = spawn_app_on(db.clone(), &cached(3600, REGISTRIES)).await;
    by_hand(
        &db,
        "UPDATE registries SET audience = 'by-hand' WHERE name = 'acme'",
    )
    .await;
    assert_eq!(acme_audience(&app).await, "acme-pypi");
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
        not_checked(
            "store::sqlite_databases_are_created_with_their_folder_in_wal_mode",
            "the suite runs on PostgreSQL (TEST_DATABASE_URL is set)",
            "the run on SQLite (without TEST_DATABASE_URL, as .ci/test runs first) checks it",
        );
        return;
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

/// Requests that prove no identity cannot grow the store: refused mints of
/// unverifiable tokens (with a 44 kB `iss`), checks and burns of values
/// that are no credential are counted per hour, not stored one row each;
/// what an event keeps of a verified identity's refusal is bounded; and
/// events past the retention are purged.
#[tokio::test]
async fn unauthenticated_requests_leave_counts_not_rows_and_events_expire() {
    use trustpub::store::{Caller, EventKind, NewEvent, Outcome, UNTRUSTED_TEXT_LIMIT, now};
    use trustpub::testing::{ACME_AUDIENCE, TestClaims, TestIssuer, acme_registry};

    let issuer = TestIssuer::start().await;
    let app = spawn_app(&acme_registry(issuer.url())).await;
    let huge_iss = format!("https://{}.test", "x".repeat(44_000));
    let junk = TestIssuer::token_with(
        &json!({ "alg": "RS256", "typ": "JWT", "kid": "rsa-1" }),
        &TestClaims::github(&huge_iss, ACME_AUDIENCE, now()).build(),
        &[0; 256],
    );
    let rounds = 200;
    for i in 0..rounds {
        let mint = app
            .request(reqwest::Method::POST, "/_/trustpub/acme/mint-token")
            .json(&json!({ "token": junk }))
            .send()
            .await
            .unwrap();
        problem(mint, 401, "untrusted-issuer").await;
        let check = app
            .get("/_/trustpub/auth")
            .header("X-Trustpub-Registry", "acme")
            .bearer_auth(format!("acme_junk{i}"))
            .send()
            .await
            .unwrap();
        problem(check, 401, "invalid-credential").await;
        let burn = app
            .request(reqwest::Method::POST, "/_/trustpub/acme/burn-token")
            .json(&json!({ "token": format!("acme_junk{i}") }))
            .send()
            .await
            .unwrap();
        assert_eq!(burn.status(), 202);
    }
    assert!(app.store.events("acme").await.unwrap().is_empty());
    let counts = app.store.refusal_counts("acme").await.unwrap();
    let counted: Vec<(&str, &str, i64)> = counts
        .iter()
        .map(|c| (c.kind.as_str(), c.code.as_str(), c.count))
        .collect();
    // One row per kind and code (two, should the hour turn meanwhile).
    assert!(counts.len() <= 6, "{counted:?}");
    for (kind, code) in [
        ("mint", "untrusted-issuer"),
        ("check", "unknown-credential"),
        ("revoke", "unknown-credential"),
    ] {
        let total: i64 = counted
            .iter()
            .filter(|(k, c, _)| (*k, *c) == (kind, code))
            .map(|(_, _, n)| n)
            .sum();
        assert_eq!(total, rounds, "{kind} {code}");
    }

    // A verified identity's refusal is an event, its untrusted text cut.
    let long_ref = format!("refs/heads/{}", "b".repeat(10_000));
    let claims = TestClaims::github(issuer.url(), ACME_AUDIENCE, now())
        .set(
            "job_workflow_ref",
            format!("octo-org/widget/.github/workflows/other.yml@{long_ref}"),
        )
        .set("ref", long_ref.clone())
        .build();
    let refused = app
        .request(reqwest::Method::POST, "/_/trustpub/acme/mint-token")
        .json(&json!({ "token": issuer.sign(&claims) }))
        .send()
        .await
        .unwrap();
    assert!(refused.status().is_client_error());
    let events = app.store.events("acme").await.unwrap();
    let event = events.last().expect("the refusal of a verified identity");
    assert!(event.detail.len() <= UNTRUSTED_TEXT_LIMIT + '…'.len_utf8());
    let kept: serde_json::Value = serde_json::from_str(event.claims.as_deref().unwrap()).unwrap();
    let kept_ref = kept["ref"].as_str().unwrap();
    assert!(kept_ref.len() <= UNTRUSTED_TEXT_LIMIT + '…'.len_utf8() && kept_ref.ends_with('…'));

    // Retention: what is older than it goes, with its hour's counts.
    let t = now();
    let old = t - 100 * 86_400;
    for (caller, code) in [
        (Caller::Identified, "invalid-publisher"),
        (Caller::Anonymous, "untrusted-issuer"),
    ] {
        app.store
            .record_event(NewEvent {
                at: old,
                registry: "acme",
                caller,
                kind: EventKind::Mint,
                outcome: Outcome::Refused,
                code,
                publishers: None,
                detail: "long ago".into(),
                claims: None,
            })
            .await
            .unwrap();
    }
    let before = app.store.events("acme").await.unwrap().len();
    let purged = app.store.purge_events(t - 90 * 86_400).await.unwrap();
    assert_eq!(purged, 2);
    assert_eq!(app.store.events("acme").await.unwrap().len(), before - 1);
    let counts = app.store.refusal_counts("acme").await.unwrap();
    assert!(counts.iter().all(|c| c.hour > old), "{counts:?}");
    assert!(!counts.is_empty(), "this hour's counts are kept");
}

/// A purge of more rows than one statement deletes deletes them all, batch
/// after batch, and leaves every `jti`, credential and event still valid.
#[tokio::test]
async fn purges_go_on_batch_after_batch_and_keep_what_is_valid() {
    use sqlx::Connection;
    use trustpub::store::PURGE_BATCH;

    let db = Arc::new(TestDatabase::new().await);
    let app = spawn_app_on(db.clone(), REGISTRIES).await;
    let expired = 2 * PURGE_BATCH + 7;
    let (old, now, later) = (100, 1_000, 4_000_000_000_i64);
    sqlx::any::install_default_drivers();
    let mut db_connection = sqlx::AnyConnection::connect(&db.url).await.unwrap();
    // `expired` rows of each table past their time, 3 more still valid.
    let rows = |table: &str, columns: &str, values: &str| {
        format!(
            "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < {}) \
             INSERT INTO {table} ({columns}) SELECT {values} FROM n",
            expired + 3
        )
    };
    let when = format!("CASE WHEN i <= {expired} THEN {old} ELSE {later} END");
    for statement in [
        rows(
            "used_jtis",
            "issuer, jti, expires_at",
            &format!("'https://old.test', 'jti-' || i, {when}"),
        ),
        rows(
            "upload_tokens",
            "hash, registry, publishers, packages, single_use, created_at, expires_at, claims",
            &format!("'hash-' || i, 'acme', '[]', '[]', 0, 0, {when}, '{{}}'"),
        ),
        rows(
            "events",
            "id, at, registry, kind, outcome, code, detail",
            &format!("'event-' || i, {when}, 'acme', 'mint', 'refused', 'token-reused', ''"),
        ),
    ] {
        sqlx::raw_sql(sqlx::AssertSqlSafe(statement))
            .execute(&mut db_connection)
            .await
            .unwrap();
    }

    assert_eq!(app.store.purge_used_jtis(now).await.unwrap(), expired);
    assert_eq!(
        app.store.purge_expired_upload_tokens(now).await.unwrap(),
        expired
    );
    assert_eq!(app.store.purge_events(now).await.unwrap(), expired);
    for table in ["used_jtis", "upload_tokens", "events"] {
        let left: i64 =
            sqlx::query_scalar(sqlx::AssertSqlSafe(format!("SELECT COUNT(*) FROM {table}")))
                .fetch_one(&mut db_connection)
                .await
                .unwrap();
        assert_eq!(left, 3, "{table}: the valid rows stay");
    }
}

/// On PostgreSQL, mints are written on a connection of their own: with the
/// pool's every connection taken (its one, here, by a check of the
/// registries' version that waits for a lock), a mint still goes through
/// instead of waiting for the pool until `query_timeout` (503). The request
/// that finds the copy of the registries out of date is answered from it:
/// the check runs beside the request, not in it.
#[tokio::test]
async fn mints_are_written_while_every_pooled_connection_is_busy() {
    use sqlx::Connection;
    use trustpub::testing::TestIssuer;

    use crate::fixtures::{config, mint};

    let db = Arc::new(TestDatabase::new().await);
    if db.is_sqlite() {
        not_checked(
            "store::mints_are_written_while_every_pooled_connection_is_busy",
            "TEST_DATABASE_URL is not set, and on SQLite the writer has always been outside the pool",
            "TEST_DATABASE_URL=postgres://postgres@127.0.0.1:5432/test cargo test --test api store::",
        );
        return;
    }
    let issuer = TestIssuer::start().await;
    let settings = "[database]\nmax_connections = 1\nquery_timeout = 3\nregistry_cache_ttl = 1\n";
    let app = spawn_app_on(db.clone(), &format!("{settings}{}", config(issuer.url()))).await;
    // The issuer's keys and the registries are in memory from here on.
    mint(&app, &issuer, json!({})).await;

    // Another session locks the registries' version (which a mint does not
    // touch): once the copy of the registries is out of date, the check of
    // the version waits for the lock, holding the pool's one connection.
    let mut locker = sqlx::PgConnection::connect(&db.url).await.unwrap();
    sqlx::raw_sql("BEGIN; LOCK TABLE registry_version IN ACCESS EXCLUSIVE MODE")
        .execute(&mut locker)
        .await
        .unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(1_100)).await;
    // Read in the request, the check would wait for the lock until
    // `query_timeout` (3 s).
    let stale = tokio::time::timeout(
        std::time::Duration::from_secs(2),
        app.get("/_/trustpub/acme/audience").send(),
    )
    .await
    .expect("answered while the check it started waits for the lock");
    assert_eq!(stale.unwrap().status(), 200);
    // Until the check waits for the lock (a few milliseconds; at most its
    // `query_timeout`).
    let mut waiting = 0_i64;
    for _ in 0..100 {
        waiting = sqlx::query_scalar(
            "SELECT COUNT(*) FROM pg_stat_activity WHERE datname = current_database() \
             AND wait_event_type = 'Lock'",
        )
        .fetch_one(&mut locker)
        .await
        .unwrap();
        if waiting > 0 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert_eq!(waiting, 1, "the check waits for the lock");

    // Other requests go on with the registries they have; the mint is
    // written beside the pool.
    mint(&app, &issuer, json!({})).await;

    sqlx::raw_sql("COMMIT").execute(&mut locker).await.unwrap();
}
