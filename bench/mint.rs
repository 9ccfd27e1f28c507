//! Load benchmark of the token exchange: `cargo bench --bench mint`.
//!
//! Boots trustpub on a temporary SQLite database (and, when
//! `TEST_DATABASE_URL` names a PostgreSQL server, again on a fresh database
//! there), with the test OIDC issuer; pre-signs distinct RS256 identity
//! tokens; then mints them all through HTTP with a fixed number of
//! concurrent clients and reports mints/s and latency percentiles.
//! Environment: `MINTS` (default 4000), `CONCURRENCY` (default 32).
//!
//! With `TOKENS_FILE=<path>` it instead starts trustpub on SQLite, writes
//! `MINTS` signed tokens to that file, prints `READY <mint URL>` and serves
//! until killed, for an outside load generator (`bench/load.sh` runs wrk).

use std::net::TcpListener;
use std::time::{Duration, Instant};

use figment::Figment;
use figment::providers::{Format, Serialized, Toml};
use serde_json::json;
use trustpub::config::Settings;
use trustpub::startup::Application;
use trustpub::store::now;
use trustpub::testing::{ACME_AUDIENCE, TestClaims, TestIssuer, acme_registry};

// Shared with the other benchmarks; not all of it is used here.
#[allow(dead_code)]
#[path = "support.rs"]
mod support;
use support::FreshPostgres;

fn env_number(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

async fn run(
    label: &str,
    database_url: &str,
    issuer: &TestIssuer,
    mints: usize,
    concurrency: usize,
) {
    // Every mint comes from one address, far past the limit per address.
    let unlimited = "[rate_limits]\nmints = { per_minute = 0, burst = 0 }\n";
    let figment = Figment::from(Serialized::defaults(Settings::default()))
        .merge(Toml::string(unlimited))
        .merge(Toml::string(&acme_registry(issuer.url())))
        .merge(Serialized::default("database.url", database_url))
        .merge(Serialized::default("log.filter", "error"));
    let settings = Settings::from_figment(&figment).expect("valid settings");
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let app = Application::build_with_listener(&settings, listener)
        .await
        .expect("app");
    let url = format!("http://127.0.0.1:{}/_/trustpub/acme/mint-token", app.port());
    tokio::spawn(app.run_until_stopped());

    let tokens: Vec<String> = (0..mints + 50)
        .map(|_| issuer.sign(&TestClaims::github(issuer.url(), ACME_AUDIENCE, now()).build()))
        .collect();
    if let Ok(path) = std::env::var("TOKENS_FILE") {
        std::fs::write(&path, tokens[..mints].join("\n") + "\n").expect("writing the tokens");
        println!("READY {url}");
        std::future::pending::<()>().await;
    }
    let client = reqwest::Client::new();
    // Warm-up: JWKS fetch, connections, prepared statements.
    for token in &tokens[mints..] {
        let status = client
            .post(&url)
            .json(&json!({ "token": token }))
            .send()
            .await
            .unwrap()
            .status();
        assert!(status.is_success(), "warm-up mint failed: {status}");
    }

    let queue = std::sync::Arc::new(std::sync::Mutex::new(tokens[..mints].to_vec()));
    let started = Instant::now();
    let workers: Vec<_> = (0..concurrency)
        .map(|_| {
            let (queue, client, url) = (queue.clone(), client.clone(), url.clone());
            tokio::spawn(async move {
                let mut latencies = Vec::new();
                loop {
                    let Some(token) = queue.lock().unwrap().pop() else {
                        break;
                    };
                    let sent = Instant::now();
                    let response = client
                        .post(&url)
                        .json(&json!({ "token": token }))
                        .send()
                        .await
                        .unwrap();
                    assert!(
                        response.status().is_success(),
                        "mint failed: {}",
                        response.status()
                    );
                    response.bytes().await.unwrap();
                    latencies.push(sent.elapsed());
                }
                latencies
            })
        })
        .collect();
    let mut latencies: Vec<Duration> = Vec::with_capacity(mints);
    for worker in workers {
        latencies.extend(worker.await.unwrap());
    }
    let elapsed = started.elapsed();
    latencies.sort();
    let at = |q: f64| latencies[((latencies.len() as f64 * q) as usize).min(latencies.len() - 1)];
    println!(
        "{label:<10} {mints} mints, {concurrency} concurrent: {:>7.0} mints/s  p50 {:>6.2} ms  p99 {:>6.2} ms",
        mints as f64 / elapsed.as_secs_f64(),
        at(0.50).as_secs_f64() * 1000.0,
        at(0.99).as_secs_f64() * 1000.0,
    );
}

#[tokio::main]
async fn main() {
    let mints = env_number("MINTS", 4000);
    let concurrency = env_number("CONCURRENCY", 32);
    let issuer = TestIssuer::start().await;

    let dir = tempfile::tempdir().unwrap();
    let sqlite = format!("sqlite://{}/bench.db", dir.path().display());
    run("sqlite", &sqlite, &issuer, mints, concurrency).await;

    if let Ok(server) = std::env::var("TEST_DATABASE_URL")
        && !server.trim().is_empty()
    {
        let database = FreshPostgres::create(&server, "bench").await;
        run("postgresql", &database.url, &issuer, mints, concurrency).await;
        database.remove().await;
    }
}
