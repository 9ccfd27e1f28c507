//! Soak: `cargo bench --bench soak`. Ten minutes (`SOAK_SECONDS`) of mixed
//! load on the trustpub binary (a process of its own, on a temporary SQLite
//! database, or on a fresh database of the PostgreSQL server that
//! `TEST_DATABASE_URL` names): mints,
//! introspections, forward-auth checks, discovery, and refusals (a forged
//! identity token, a wrong introspection secret), from `CONCURRENCY`
//! clients (default 8). Every answer must be the intended one; trustpub's
//! resident memory, sampled every 10 s after a warm-up of a tenth of the
//! run, must stay within 10 % of its value at the end of the warm-up, and
//! its open file descriptors must not grow (beyond the connections the
//! clients and the pool open and close). Fails (panics) otherwise, and
//! prints the samples. Linux only.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use serde_json::json;
use sha2::{Digest, Sha256};
use trustpub::store::now;
use trustpub::testing::{ACME_AUDIENCE, TestClaims, TestIssuer, acme_registry_with};

#[path = "support.rs"]
mod support;
use support::{FreshPostgres, free_port, memory, mint, open_files, start_trustpub};

const SECRET: &str = "soak-introspection-secret";

fn env_or(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// One round of the mix: each request and the status it must answer.
async fn round(
    client: &reqwest::Client,
    base: &str,
    issuer: &TestIssuer,
    credential: &str,
) -> Vec<(&'static str, u16, u16)> {
    let claims = TestClaims::github(issuer.url(), ACME_AUDIENCE, now()).build();
    let mint = client
        .post(format!("{base}/_/trustpub/acme/mint-token"))
        .json(&json!({ "token": issuer.sign(&claims) }));
    let forged = client
        .post(format!("{base}/_/trustpub/acme/mint-token"))
        .json(&json!({ "token": "e30.e30.forged" }));
    let introspect = |secret: &str| {
        client
            .post(format!("{base}/_/trustpub/acme/introspect"))
            .bearer_auth(secret)
            .json(&json!({ "token": credential }))
    };
    let check = client
        .get(format!("{base}/_/trustpub/auth"))
        .header("X-Trustpub-Registry", "acme")
        .header("X-Forwarded-Method", "GET")
        .bearer_auth(credential);
    let discovery = client.get(format!("{base}/.well-known/pytp?discover=%2Flegacy%2F"));
    let mut answers = Vec::new();
    for (what, request, expected) in [
        ("mint", mint, 200),
        ("introspect", introspect(SECRET), 200),
        ("forward-auth", check, 200),
        ("discovery", discovery, 200),
        ("forged token", forged, 401),
        ("wrong secret", introspect("not-the-secret"), 401),
    ] {
        let status = match request.send().await {
            Ok(response) => response.status().as_u16(),
            Err(_) => 0,
        };
        answers.push((what, status, expected));
    }
    answers
}

#[tokio::main]
async fn main() {
    let seconds = env_or("SOAK_SECONDS", 600);
    let concurrency = env_or("CONCURRENCY", 8);
    let issuer = Arc::new(TestIssuer::start().await);
    let port = free_port();
    let dir = tempfile::tempdir().unwrap();
    let postgres = match std::env::var("TEST_DATABASE_URL") {
        Ok(server) if !server.trim().is_empty() => {
            Some(FreshPostgres::create(&server, "soak").await)
        }
        _ => None,
    };
    let database = match &postgres {
        Some(postgres) => postgres.url.clone(),
        None => format!("sqlite://{}", dir.path().join("trustpub.db").display()),
    };
    let config = format!(
        "[server]\nlisten = \"127.0.0.1:{port}\"\n[database]\nurl = \"{database}\"\n\
         [log]\nfilter = \"warn\"\n\
         [rate_limits]\nmints = {{ per_minute = 0, burst = 0 }}\n\
         failed_checks = {{ per_minute = 0, burst = 0 }}\n\
         refused_unauthenticated = {{ per_minute = 0, burst = 0 }}\n{registry}",
        registry = acme_registry_with(
            issuer.url(),
            &format!(
                "introspect_secret_sha256 = \"{}\"",
                hex::encode(Sha256::digest(SECRET.as_bytes()))
            ),
        ),
    );
    let base = format!("http://127.0.0.1:{port}");
    let mut server = start_trustpub(dir.path(), &config, &base).await;
    let pid = server.id();
    let client = reqwest::Client::new();
    let credential = mint(&client, &base, &issuer).await;

    let stop = Arc::new(AtomicBool::new(false));
    let requests = Arc::new(AtomicU64::new(0));
    let workers: Vec<_> = (0..concurrency)
        .map(|_| {
            let (client, base, issuer) = (client.clone(), base.clone(), issuer.clone());
            let (stop, requests, credential) = (stop.clone(), requests.clone(), credential.clone());
            tokio::spawn(async move {
                let mut wrong = Vec::new();
                while !stop.load(Ordering::Relaxed) {
                    for (what, status, expected) in
                        round(&client, &base, &issuer, &credential).await
                    {
                        requests.fetch_add(1, Ordering::Relaxed);
                        if status != expected && wrong.len() < 20 {
                            wrong.push(format!("{what}: {status}, expected {expected}"));
                        }
                    }
                }
                wrong
            })
        })
        .collect();

    let started = Instant::now();
    let warm_up = Duration::from_secs(seconds / 10);
    let mut samples = Vec::new();
    while started.elapsed() < Duration::from_secs(seconds) {
        tokio::time::sleep(Duration::from_secs(10).min(Duration::from_secs(seconds))).await;
        let (rss, _) = memory(pid);
        let files = open_files(pid);
        let at = started.elapsed().as_secs();
        println!(
            "{at:>5} s  {:>9} requests  RSS {:>7.1} MiB  {files} open files",
            requests.load(Ordering::Relaxed),
            rss as f64 / 1024.0
        );
        samples.push((started.elapsed(), rss, files));
    }
    stop.store(true, Ordering::Relaxed);
    let mut wrong = Vec::new();
    for worker in workers {
        wrong.extend(worker.await.unwrap());
    }
    let _ = server.kill();
    let _ = server.wait();
    if let Some(postgres) = postgres {
        postgres.remove().await;
    }

    let total = requests.load(Ordering::Relaxed);
    println!(
        "{total} requests in {seconds} s ({:.0}/s) from {concurrency} clients",
        total as f64 / seconds as f64
    );
    assert!(wrong.is_empty(), "unintended answers: {wrong:#?}");
    let after_warm_up: Vec<_> = samples.iter().filter(|(at, _, _)| *at >= warm_up).collect();
    let (_, baseline_rss, baseline_files) =
        after_warm_up.first().expect("samples after the warm-up");
    let highest_rss = after_warm_up.iter().map(|(_, rss, _)| *rss).max().unwrap();
    let last_files = after_warm_up.last().unwrap().2;
    assert!(
        highest_rss as f64 <= *baseline_rss as f64 * 1.10,
        "RSS grew from {baseline_rss} KiB to {highest_rss} KiB"
    );
    // Connections come and go with the clients (each may hold two) and
    // the database pool: a leak grows with the requests, far past that.
    let slack = 2 * concurrency as usize + 4;
    assert!(
        last_files <= baseline_files + slack,
        "open files grew from {baseline_files} to {last_files}"
    );
    println!(
        "RSS flat within 10 % ({baseline_rss} → at most {highest_rss} KiB), open files {baseline_files} → {last_files}"
    );
}
