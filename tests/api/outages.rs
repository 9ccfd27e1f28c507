//! Faults outside trustpub: its database out of reach or read-only, an
//! issuer whose keys cannot be fetched. Requests then fail fast with 503
//! `store-unavailable` or 502 `issuer-unavailable`, nothing is answered 200
//! that was not stored, and everything recovers without a restart.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;
use trustpub::store::now;
use trustpub::testing::{ACME_AUDIENCE, Outage, TestClaims, TestIssuer, TestKey};

use crate::fixtures::{ACME_SECRET, config, mint};
use crate::helpers::{
    TestApp, TestDatabase, json_ok, not_checked, problem, spawn_app, spawn_app_at, spawn_app_on,
};

/// What "within a bounded time" means in these tests: far more than any
/// answer takes, far less than a hang.
const NO_HANG: Duration = Duration::from_secs(60);

/// A TCP forwarder on a loopback port that the test can cut (every
/// connection dropped, new ones closed at once) and restore: a database
/// server going away and coming back, without touching the shared server.
/// It can also fall silent: connections stay open and new ones are
/// accepted, but no byte goes through either way until it speaks again (a
/// hung server, a network black hole).
struct TcpProxy {
    port: u16,
    up: Arc<AtomicBool>,
    silent: Arc<AtomicBool>,
    connections: Arc<std::sync::Mutex<Vec<JoinHandle<()>>>>,
}

/// Copies `from` to `to`, holding what it reads while `silent` is set.
async fn forward(
    mut from: tokio::net::tcp::OwnedReadHalf,
    mut to: tokio::net::tcp::OwnedWriteHalf,
    silent: Arc<AtomicBool>,
) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut buffer = vec![0; 16 * 1024];
    loop {
        let read = match from.read(&mut buffer).await {
            Ok(0) | Err(_) => break,
            Ok(read) => read,
        };
        while silent.load(Ordering::SeqCst) {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        if to.write_all(&buffer[..read]).await.is_err() {
            break;
        }
    }
    let _ = to.shutdown().await;
}

impl TcpProxy {
    async fn start(target: String) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let up = Arc::new(AtomicBool::new(true));
        let silent = Arc::new(AtomicBool::new(false));
        let connections = Arc::new(std::sync::Mutex::new(Vec::new()));
        let (accepting, held, quiet) = (up.clone(), connections.clone(), silent.clone());
        tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                if !accepting.load(Ordering::SeqCst) {
                    continue; // dropped: closed at once
                }
                let (target, quiet) = (target.clone(), quiet.clone());
                held.lock().unwrap().push(tokio::spawn(async move {
                    if let Ok(server) = TcpStream::connect(&target).await {
                        let (client_in, client_out) = client.into_split();
                        let (server_in, server_out) = server.into_split();
                        tokio::join!(
                            forward(client_in, server_out, quiet.clone()),
                            forward(server_in, client_out, quiet),
                        );
                    }
                }));
            }
        });
        TcpProxy {
            port,
            up,
            silent,
            connections,
        }
    }

    /// Stops every byte, both ways, on every connection, old and new.
    fn fall_silent(&self) {
        self.silent.store(true, Ordering::SeqCst);
    }

    fn speak_again(&self) {
        self.silent.store(false, Ordering::SeqCst);
    }

    fn cut(&self) {
        self.up.store(false, Ordering::SeqCst);
        for connection in self.connections.lock().unwrap().drain(..) {
            connection.abort();
        }
    }

    fn restore(&self) {
        self.up.store(true, Ordering::SeqCst);
    }
}

fn mint_body(issuer: &TestIssuer) -> Value {
    json!({ "token": issuer.sign(&TestClaims::github(issuer.url(), ACME_AUDIENCE, now()).build()) })
}

async fn mint_once(app: &TestApp, issuer: &TestIssuer) -> reqwest::Response {
    app.request(Method::POST, "/_/trustpub/acme/mint-token")
        .json(&mint_body(issuer))
        .send()
        .await
        .unwrap()
}

async fn introspect(app: &TestApp, credential: &str) -> reqwest::Response {
    app.request(Method::POST, "/_/trustpub/acme/introspect")
        .bearer_auth(ACME_SECRET)
        .json(&json!({ "token": credential }))
        .send()
        .await
        .unwrap()
}

/// Mints in a loop on `tasks` tasks until `stop`; answers each mint's status,
/// body and how long it took.
fn mint_load(
    app: &TestApp,
    issuer: &Arc<TestIssuer>,
    tasks: usize,
    stop: &Arc<AtomicBool>,
) -> Vec<JoinHandle<Vec<(StatusCode, Value, Duration)>>> {
    (0..tasks)
        .map(|_| {
            let (client, address) = (app.client.clone(), app.address.clone());
            let (issuer, stop) = (issuer.clone(), stop.clone());
            tokio::spawn(async move {
                let mut answers = Vec::new();
                while !stop.load(Ordering::SeqCst) {
                    let started = Instant::now();
                    let response = client
                        .post(format!("{address}/_/trustpub/acme/mint-token"))
                        .json(&mint_body(&issuer))
                        .send()
                        .await
                        .unwrap();
                    let status = response.status();
                    let body = response.json().await.unwrap_or(Value::Null);
                    answers.push((status, body, started.elapsed()));
                }
                answers
            })
        })
        .collect()
}

/// Until `/readyz` answers 200 (or [`NO_HANG`] passes).
async fn wait_until_ready(app: &TestApp) {
    let deadline = Instant::now() + NO_HANG;
    while app.get("/readyz").send().await.unwrap().status() != StatusCode::OK {
        assert!(Instant::now() < deadline, "the store did not come back");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Once the database answers again: ready, the credential minted before
/// the outage still active, and a new mint answered.
async fn works_again(app: &TestApp, issuer: &TestIssuer, before: &str) {
    wait_until_ready(app).await;
    let answer = json_ok(introspect(app, before).await).await;
    assert_eq!(answer["active"], true, "{answer}");
    mint(app, issuer, json!({})).await;
}

/// A trustpub on a fresh PostgreSQL database reached through a TCP proxy
/// the test controls, with `database` (lines of `[database]`) and a
/// trusted test issuer; `None`, after the note that `test` checked
/// nothing, on SQLite.
async fn behind_a_proxy(
    test: &str,
    database: &str,
) -> Option<(TcpProxy, Arc<TestIssuer>, TestApp)> {
    let db = Arc::new(TestDatabase::new().await);
    if db.is_sqlite() {
        not_checked(
            test,
            "TEST_DATABASE_URL is not set",
            "run with TEST_DATABASE_URL=postgres://…",
        );
        return None;
    }
    let mut url = url::Url::parse(&db.url).unwrap();
    let target = format!("{}:{}", url.host_str().unwrap(), url.port().unwrap_or(5432));
    let proxy = TcpProxy::start(target).await;
    url.set_port(Some(proxy.port)).unwrap();
    let issuer = Arc::new(TestIssuer::start().await);
    let app = spawn_app_at(
        db,
        url.as_str(),
        &format!("[database]\n{database}\n{}", config(issuer.url())),
    )
    .await;
    Some((proxy, issuer, app))
}

/// PostgreSQL going away under a mint flood: every answer is 200 or 503
/// `store-unavailable`, none hangs, `/readyz` says 503, and once the
/// connection is back minting and checking work again without a restart.
/// Every credential answered 200 is stored.
#[tokio::test]
async fn postgresql_out_of_reach_under_load_is_503_and_recovers() {
    let Some((proxy, issuer, app)) = behind_a_proxy(
        "outages::postgresql_out_of_reach_under_load_is_503_and_recovers",
        "connect_timeout = 2",
    )
    .await
    else {
        return;
    };
    let before = mint(&app, &issuer, json!({})).await;

    let stop = Arc::new(AtomicBool::new(false));
    let load = mint_load(&app, &issuer, 8, &stop);
    tokio::time::sleep(Duration::from_millis(500)).await;
    proxy.cut();

    let started = Instant::now();
    problem(
        app.get("/readyz").send().await.unwrap(),
        503,
        "store-unavailable",
    )
    .await;
    problem(introspect(&app, &before).await, 503, "store-unavailable").await;
    problem(mint_once(&app, &issuer).await, 503, "store-unavailable").await;
    assert!(started.elapsed() < NO_HANG, "answers came in bounded time");

    proxy.restore();
    wait_until_ready(&app).await;
    stop.store(true, Ordering::SeqCst);
    let mut minted = Vec::new();
    let mut unavailable = 0;
    for task in load {
        for (status, body, took) in task.await.unwrap() {
            assert!(took < NO_HANG, "a mint took {took:?}");
            match status.as_u16() {
                200 => minted.push(body["token"].as_str().unwrap().to_owned()),
                503 => {
                    assert_eq!(body["code"], "store-unavailable", "{body}");
                    unavailable += 1;
                }
                other => panic!("a mint during the outage answered {other}: {body}"),
            }
        }
    }
    assert!(unavailable > 0, "the outage was seen by the load");
    for credential in minted.iter().chain([&before]) {
        let answer = json_ok(introspect(&app, credential).await).await;
        assert_eq!(
            answer["active"], true,
            "{credential} was answered 200: {answer}"
        );
    }
    mint(&app, &issuer, json!({})).await;
}

/// Asserts that `answer` is 503 `store-unavailable` within `bound`.
async fn unavailable_within(
    bound: Duration,
    what: &str,
    answer: impl Future<Output = reqwest::Response>,
) {
    let started = Instant::now();
    let response = tokio::time::timeout(NO_HANG, answer)
        .await
        .unwrap_or_else(|_| panic!("{what} hung"));
    let took = started.elapsed();
    problem(response, 503, "store-unavailable").await;
    assert!(took < bound, "{what} took {took:?}");
}

/// PostgreSQL that accepts connections and then never answers (a hung
/// server, a network black hole): every request that needs it answers 503
/// `store-unavailable` within `database.query_timeout` instead of hanging,
/// and everything works again once it answers, without a restart.
#[tokio::test]
async fn a_postgresql_that_never_answers_is_503_within_the_query_timeout() {
    const QUERY_TIMEOUT: Duration = Duration::from_secs(2);
    // sqlx pings a pooled connection before handing it out, within the
    // connect timeout: a long one here shows that the query timeout, not
    // that ping, is what bounds the answer.
    const CONNECT_TIMEOUT: Duration = Duration::from_secs(30);
    let Some((proxy, issuer, app)) = behind_a_proxy(
        "outages::a_postgresql_that_never_answers_is_503_within_the_query_timeout",
        &format!(
            "connect_timeout = {}\nquery_timeout = {}\nregistry_cache_ttl = 0",
            CONNECT_TIMEOUT.as_secs(),
            QUERY_TIMEOUT.as_secs(),
        ),
    )
    .await
    else {
        return;
    };
    let before = mint(&app, &issuer, json!({})).await;

    proxy.fall_silent();
    // Each answer comes within the timeout and a margin, far from a hang
    // and from the connect timeout.
    let bound = Duration::from_secs(6);
    let readyz = async { app.get("/readyz").send().await.unwrap() };
    unavailable_within(bound, "/readyz", readyz).await;
    unavailable_within(bound, "introspection", introspect(&app, &before)).await;
    unavailable_within(bound, "a mint", mint_once(&app, &issuer)).await;
    let discovery = async {
        let path = "/.well-known/pytp?discover=/legacy";
        app.get(path).send().await.unwrap()
    };
    unavailable_within(bound, "discovery", discovery).await;

    proxy.speak_again();
    works_again(&app, &issuer, &before).await;
}

/// A PostgreSQL that answers the connection's pings but not its queries:
/// another session holds every table trustpub writes locked (a stuck
/// migration, an operator's `LOCK TABLE`), and PostgreSQL waits for a lock
/// as long as it takes. A query already under way when a database stops
/// answering is the same: only the query timeout ends it. The requests
/// answer 503 within it, and work again once the locks are gone.
#[tokio::test]
async fn a_postgresql_whose_tables_stay_locked_is_503_within_the_query_timeout() {
    use sqlx::Connection;

    let db = Arc::new(TestDatabase::new().await);
    if db.is_sqlite() {
        not_checked(
            "outages::a_postgresql_whose_tables_stay_locked_is_503_within_the_query_timeout",
            "TEST_DATABASE_URL is not set",
            "run with TEST_DATABASE_URL=postgres://…",
        );
        return;
    }
    let issuer = TestIssuer::start().await;
    let app = spawn_app_at(
        db.clone(),
        &db.url,
        &format!("[database]\nquery_timeout = 2\n{}", config(issuer.url())),
    )
    .await;
    let before = mint(&app, &issuer, json!({})).await;

    let mut holder = sqlx::PgConnection::connect(&db.url).await.unwrap();
    sqlx::raw_sql(
        "BEGIN; LOCK TABLE upload_tokens, used_jtis, events, refusal_counts \
         IN ACCESS EXCLUSIVE MODE",
    )
    .execute(&mut holder)
    .await
    .unwrap();
    let bound = Duration::from_secs(6);
    let readyz = async { app.get("/readyz").send().await.unwrap() };
    unavailable_within(bound, "/readyz", readyz).await;
    unavailable_within(bound, "introspection", introspect(&app, &before)).await;
    unavailable_within(bound, "a mint", mint_once(&app, &issuer)).await;

    sqlx::raw_sql("ROLLBACK")
        .execute(&mut holder)
        .await
        .unwrap();
    works_again(&app, &issuer, &before).await;
}

/// SQLite's file locked by another writer (a backup, an operator's
/// `sqlite3` shell holding a transaction): writes wait SQLite's busy
/// timeout, then answer 503; they work again once the lock is released.
#[tokio::test]
async fn a_locked_sqlite_file_is_503_and_recovers() {
    use sqlx::Connection;

    let db = Arc::new(TestDatabase::new().await);
    if !db.is_sqlite() {
        not_checked(
            "outages::a_locked_sqlite_file_is_503_and_recovers",
            "the tests run on PostgreSQL",
            "run without TEST_DATABASE_URL",
        );
        return;
    }
    let issuer = TestIssuer::start().await;
    let app = spawn_app_on(db.clone(), &config(issuer.url())).await;
    let before = mint(&app, &issuer, json!({})).await;

    let mut holder = sqlx::SqliteConnection::connect(&db.url).await.unwrap();
    sqlx::raw_sql("BEGIN EXCLUSIVE")
        .execute(&mut holder)
        .await
        .unwrap();
    let started = Instant::now();
    problem(mint_once(&app, &issuer).await, 503, "store-unavailable").await;
    problem(
        app.get("/readyz").send().await.unwrap(),
        503,
        "store-unavailable",
    )
    .await;
    assert!(started.elapsed() < NO_HANG, "answers came in bounded time");

    sqlx::raw_sql("ROLLBACK")
        .execute(&mut holder)
        .await
        .unwrap();
    wait_until_ready(&app).await;
    mint(&app, &issuer, json!({})).await;
    let answer = json_ok(introspect(&app, &before).await).await;
    assert_eq!(answer["active"], true, "{answer}");
}

/// The issuer's JWKS endpoint down, then answering garbage: tokens signed
/// with a key already cached keep minting; a token with a key id the cache
/// lacks is 502 `issuer-unavailable` (not the client's fault); both recover
/// when the issuer does.
#[tokio::test]
async fn an_issuer_outage_keeps_cached_keys_minting() {
    let issuer = TestIssuer::start().await;
    let app = spawn_app(&config(issuer.url())).await;
    mint(&app, &issuer, json!({})).await;

    for outage in [Outage::Down, Outage::Garbage] {
        issuer.set_outage(Some(outage));
        mint(&app, &issuer, json!({})).await;
        let new_key = issuer.sign_with(
            TestKey::Rsa2,
            &TestClaims::github(issuer.url(), ACME_AUDIENCE, now()).build(),
        );
        let refused = app
            .request(Method::POST, "/_/trustpub/acme/mint-token")
            .json(&json!({ "token": new_key }))
            .send()
            .await
            .unwrap();
        problem(refused, 502, "issuer-unavailable").await;
        mint(&app, &issuer, json!({})).await;
    }
    issuer.set_outage(None);
    mint(&app, &issuer, json!({})).await;
}

/// Recovery from an issuer outage, at the key store (whose cool-down the
/// server fixes at a minute): the new key is found as soon as a fetch
/// succeeds again.
#[tokio::test]
async fn the_key_store_recovers_when_the_issuer_returns() {
    use trustpub::domain::IssuerUrl;
    use trustpub::oidc::KeyStore;

    let issuer = TestIssuer::start().await;
    let url = IssuerUrl::parse(issuer.url().to_owned()).unwrap();
    let keys = KeyStore::new(
        Duration::ZERO,
        Duration::from_secs(3600),
        trustpub::metrics::Metrics::new(),
    )
    .unwrap();
    assert_eq!(keys.keys_for(&url, Some("rsa-1")).await.unwrap().len(), 1);

    issuer.set_outage(Some(Outage::Garbage));
    issuer.rotate();
    assert_eq!(
        keys.keys_for(&url, Some("rsa-1")).await.unwrap().len(),
        1,
        "cached"
    );
    let error = keys.keys_for(&url, Some("rsa-2")).await.unwrap_err();
    assert_eq!(error.code(), "issuer-unavailable", "{error}");

    issuer.set_outage(None);
    assert_eq!(keys.keys_for(&url, Some("rsa-2")).await.unwrap().len(), 1);
    assert!(
        keys.keys_for(&url, Some("nope")).await.unwrap().is_empty(),
        "an unknown key id of an issuer that answers is the token's fault"
    );
}
