//! Scale: `bench/scale.sh` runs it (`cargo bench --bench scale`, with wrk).
//!
//! Two questions, each on SQLite and, when `TEST_DATABASE_URL` names a
//! PostgreSQL server, on a fresh database there; the trustpub binary (a
//! process of its own) serves, wrk (`bench/requests.lua`) loads it.
//!
//! 1. Many registries (`REGISTRIES`, default `1,100,1000`), each with ten
//!    publishers: how long trustpub takes to start (migrations, then the
//!    configuration sync, until `/healthz` answers), its resident memory,
//!    and discovery and mint throughput over requests spread across every
//!    registry.
//! 2. Many stored rows (`CREDENTIALS`, default `0,1000000,5000000`): that
//!    many live credentials and as many used `jti`s are written straight
//!    into the database, and as many events (half of them acme's, the rest
//!    spread over 999 other registries); then introspection and
//!    forward-auth of real credentials are measured, and the admin API's
//!    first page of the event log of acme (busy) and of `q7` (quiet).
//!    After the largest count, `PURGE_ROWS` (default 1,000,000) expired
//!    credentials and as many expired `jti`s are added, and mints are
//!    measured while the purge (`database.purge_interval` = 5 s here)
//!    deletes them.
//!
//! `SECONDS` (default 5) per wrk run, `CONNECTIONS` (default 32). Linux only.

use std::process::{Child, Command};
use std::time::{Duration, Instant};

use serde_json::json;
use sha2::{Digest, Sha256};
use sqlx::Connection;
use trustpub::store::now;
use trustpub::testing::{ACME_AUDIENCE, TestClaims, TestIssuer, acme_registry_with};

#[allow(dead_code)]
#[path = "support.rs"]
mod support;
use support::{FreshPostgres, free_port, memory, mint, start_trustpub};

const SECRET: &str = "scale-introspection-secret";
const ADMIN_TOKEN: &str = "scale-admin-token";
/// Publishers per registry; the last one is the one the tokens match.
const PUBLISHERS: usize = 10;
/// Identity tokens signed per second of a mint run: more than trustpub mints
/// in a second here, so that none is sent twice (a replay would be counted
/// as a failed request and make the rate look higher).
const MINTS_PER_SECOND: usize = 15_000;

fn env_list(name: &str, default: &str) -> Vec<usize> {
    std::env::var(name)
        .unwrap_or_else(|_| default.to_owned())
        .split(',')
        .map(|n| n.trim().parse().expect("a list of numbers"))
        .collect()
}

fn env_number(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// What one wrk run measured.
struct Load {
    per_second: f64,
    p50_ms: f64,
    p99_ms: f64,
    /// Answers that were not 2xx or 3xx, and socket errors.
    failed: u64,
}

impl std::fmt::Display for Load {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{:>8.0} req/s  p50 {:>6.2} ms  p99 {:>6.2} ms",
            self.per_second, self.p50_ms, self.p99_ms
        )?;
        if self.failed > 0 {
            write!(f, "  ({} failed)", self.failed)?;
        }
        Ok(())
    }
}

/// Runs wrk for `seconds` against `base`, each line of `requests` (see
/// `bench/requests.lua`) sent once.
fn wrk(base: &str, requests: &[String], seconds: usize, connections: usize) -> Load {
    let file = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(file.path(), requests.join("\n") + "\n").unwrap();
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/bench/requests.lua");
    let output = Command::new("wrk")
        .args(["-t1", &format!("-c{connections}"), &format!("-d{seconds}s")])
        .args(["--latency", "-s", script, base])
        .env("REQUESTS_FILE", file.path())
        .output()
        .expect("wrk (bench/scale.sh installs it)");
    let text = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "wrk failed: {text}");
    let field = |prefix: &str| {
        text.lines()
            .find_map(|l| l.trim().strip_prefix(prefix))
            .map(|rest| {
                rest.split_whitespace()
                    .next()
                    .unwrap_or_default()
                    .to_owned()
            })
    };
    let millis = |value: String| {
        let (number, factor) = if let Some(n) = value.strip_suffix("us") {
            (n, 0.001)
        } else if let Some(n) = value.strip_suffix("ms") {
            (n, 1.0)
        } else if let Some(n) = value.strip_suffix('s') {
            (n, 1000.0)
        } else {
            (value.as_str(), 1.0)
        };
        number.parse::<f64>().unwrap_or(f64::NAN) * factor
    };
    let count = |prefix: &str| {
        text.lines()
            .filter_map(|l| l.trim().strip_prefix(prefix))
            .flat_map(|rest| rest.split(|c: char| !c.is_ascii_digit()))
            .filter_map(|n| n.parse::<u64>().ok())
            .sum::<u64>()
    };
    Load {
        per_second: field("Requests/sec:")
            .and_then(|v| v.parse().ok())
            .unwrap_or(0.0),
        p50_ms: field("50%").map(millis).unwrap_or(f64::NAN),
        p99_ms: field("99%").map(millis).unwrap_or(f64::NAN),
        failed: count("Non-2xx or 3xx responses:") + count("Socket errors:"),
    }
}

/// A database for one trustpub: a SQLite file in `dir`, or a fresh
/// PostgreSQL database.
struct Database {
    url: String,
    postgres: Option<FreshPostgres>,
}

impl Database {
    async fn new(postgres: Option<&str>, dir: &std::path::Path, label: &str) -> Self {
        match postgres {
            Some(server) => {
                let fresh = FreshPostgres::create(server, label).await;
                Database {
                    url: fresh.url.clone(),
                    postgres: Some(fresh),
                }
            }
            None => Database {
                url: format!("sqlite://{}", dir.join(format!("{label}.db")).display()),
                postgres: None,
            },
        }
    }

    /// Adds `count` credentials of acme and as many used `jti`s, expiring
    /// at `expires_at`, their keys starting with `tag`, and with `events`
    /// as many events (every other one acme's): one statement each.
    async fn seed(&self, tag: &str, count: usize, expires_at: i64, events: bool) {
        if count == 0 {
            return;
        }
        sqlx::any::install_default_drivers();
        let mut connection = sqlx::AnyConnection::connect(&self.url).await.unwrap();
        let (numbers, key, event_id) = match self.postgres {
            Some(_) => (
                format!("generate_series(1, {count}) AS n(i)"),
                format!("'{tag}' || lpad(i::text, 58, '0')"),
                "lpad(i::text, 64, '0')".to_owned(),
            ),
            None => (
                format!(
                    "(WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n \
                     WHERE i < {count}) SELECT i FROM n)"
                ),
                format!("'{tag}' || printf('%058d', i)"),
                "printf('%064d', i)".to_owned(),
            ),
        };
        let mut statements = vec![
            format!(
                "INSERT INTO upload_tokens (hash, registry, publishers, packages, single_use, \
                 created_at, expires_at, claims) SELECT {key}, 'acme', '[]', '[\"widget\"]', 0, \
                 0, {expires_at}, '{{}}' FROM {numbers}"
            ),
            format!(
                "INSERT INTO used_jtis (issuer, jti, expires_at) \
                 SELECT 'https://seed.test', {key}, {expires_at} FROM {numbers}"
            ),
        ];
        if events {
            // One a second up to now: well within the retention, so that
            // the purge leaves them alone.
            let start = now() - count as i64;
            statements.push(format!(
                "INSERT INTO events (id, at, registry, kind, outcome, code, publishers, detail, \
                 claims) SELECT {event_id}, {start} + i, CASE WHEN i % 2 = 0 THEN 'acme' \
                 ELSE 'q' || (i % 999) END, 'mint', 'minted', 'ok', '[]', 'seeded', '{{}}' \
                 FROM {numbers}"
            ));
        }
        for statement in statements {
            sqlx::raw_sql(sqlx::AssertSqlSafe(statement))
                .execute(&mut connection)
                .await
                .unwrap();
        }
        if self.postgres.is_some() {
            sqlx::raw_sql("ANALYZE")
                .execute(&mut connection)
                .await
                .unwrap();
        }
    }

    async fn remove(self) {
        if let Some(postgres) = self.postgres {
            postgres.remove().await;
        }
    }
}

fn server_section(port: u16, database: &str, extra: &str) -> String {
    format!(
        "[server]\nlisten = \"127.0.0.1:{port}\"\n[database]\nurl = \"{database}\"\n{extra}\n\
         [log]\nfilter = \"warn,trustpub::startup=info\"\n\
         [rate_limits]\nmints = {{ per_minute = 0, burst = 0 }}\n"
    )
}

/// `count` registries `r0`, `r1`, … with ten publishers each, all
/// trusting `issuer`; tokens of `octo-org/widget` match the last one.
fn registries(port: u16, issuer: &str, count: usize) -> String {
    let mut toml = String::new();
    for i in 0..count {
        toml += &format!(
            "[[registries]]\nname = \"r{i}\"\nupload_url = \"http://127.0.0.1:{port}/r{i}/legacy/\"\n\
             audience = \"r{i}-pypi\"\ntoken_prefix = \"r{i}_\"\n\
             [[registries.issuers]]\nurl = \"{issuer}\"\nprovider = \"github\"\n"
        );
        for j in 0..PUBLISHERS {
            let repository = if j + 1 == PUBLISHERS {
                "octo-org/widget".to_owned()
            } else {
                format!("octo-org/widget-{j}")
            };
            toml += &format!(
                "[[registries.publishers]]\nprovider = \"github\"\nissuer = \"{issuer}\"\n\
                 repository = \"{repository}\"\nrepository_owner_id = \"9919\"\n\
                 workflow = \"release.yml\"\npackages = [\"widget\"]\n"
            );
        }
    }
    toml
}

fn stop(mut server: Child) {
    let _ = server.kill();
    let _ = server.wait();
}

/// A number from 0 to `below`, spread evenly enough for a benchmark.
fn spread(i: usize, below: usize) -> usize {
    (i.wrapping_mul(2_654_435_761) >> 7) % below
}

async fn many_registries(
    label: &str,
    postgres: Option<&str>,
    issuer: &TestIssuer,
    count: usize,
    seconds: usize,
    connections: usize,
) {
    let dir = tempfile::tempdir().unwrap();
    let database = Database::new(postgres, dir.path(), &format!("registries{count}")).await;
    let port = free_port();
    let base = format!("http://127.0.0.1:{port}");
    let config = server_section(port, &database.url, "") + &registries(port, issuer.url(), count);
    let started = Instant::now();
    let server = start_trustpub(dir.path(), &config, &base).await;
    let startup = started.elapsed();
    let pid = server.id();
    let (rss_started, _) = memory(pid);

    let discoveries: Vec<String> = (0..seconds * 150_000)
        .map(|i| {
            let r = spread(i, count);
            format!("GET\t/.well-known/pytp?discover=%2Fr{r}%2Flegacy%2F\t-")
        })
        .collect();
    let discovery = wrk(&base, &discoveries, seconds, connections);
    let mints: Vec<String> = (0..seconds * MINTS_PER_SECOND)
        .map(|i| {
            let r = spread(i, count);
            let claims = TestClaims::github(issuer.url(), &format!("r{r}-pypi"), now()).build();
            format!(
                "POST\t/_/trustpub/r{r}/mint-token\t{}",
                json!({ "token": issuer.sign(&claims) })
            )
        })
        .collect();
    let minting = wrk(&base, &mints, seconds, connections);
    let (rss, peak) = memory(pid);
    stop(server);
    println!(
        "{label:<10} {count:>5} registries  start {:>6.2} s  RSS {:>5.1} MiB after start, \
         {:>5.1} after load (peak {:>5.1})\n           discovery {discovery}\n           mint      {minting}",
        startup.as_secs_f64(),
        rss_started as f64 / 1024.0,
        rss as f64 / 1024.0,
        peak as f64 / 1024.0,
    );
    database.remove().await;
}

/// Credentials of acme, minted at `base`, as introspection and forward-auth
/// requests for wrk.
async fn checks(base: &str, issuer: &TestIssuer, seconds: usize) -> (Vec<String>, Vec<String>) {
    let client = reqwest::Client::new();
    let mut credentials = Vec::new();
    for _ in 0..200 {
        credentials.push(mint(&client, base, issuer).await);
    }
    let repeat = seconds * 60_000;
    let introspections = (0..repeat)
        .map(|i| {
            let credential = &credentials[i % credentials.len()];
            format!(
                "POST\t/_/trustpub/acme/introspect\t{}\tAuthorization: Bearer {SECRET}",
                json!({ "token": credential })
            )
        })
        .collect();
    let forward_auth = (0..repeat)
        .map(|i| {
            let credential = &credentials[i % credentials.len()];
            format!(
                "GET\t/_/trustpub/auth\t-\tAuthorization: Bearer {credential}\t\
                 X-Trustpub-Registry: acme\tX-Forwarded-Method: GET"
            )
        })
        .collect();
    (introspections, forward_auth)
}

async fn many_rows(
    label: &str,
    postgres: Option<&str>,
    issuer: &TestIssuer,
    counts: &[usize],
    purge_rows: usize,
    seconds: usize,
    connections: usize,
) {
    let secret = format!(
        "introspect_secret_sha256 = \"{}\"",
        hex::encode(Sha256::digest(SECRET.as_bytes()))
    );
    let registry = acme_registry_with(issuer.url(), &secret);
    let largest = counts.iter().copied().max().unwrap_or_default();
    for &count in counts {
        let dir = tempfile::tempdir().unwrap();
        let database = Database::new(postgres, dir.path(), &format!("rows{count}")).await;
        let port = free_port();
        let base = format!("http://127.0.0.1:{port}");
        let admin = format!(
            "[admin]\nenabled = true\n[[admin.tokens]]\nname = \"scale\"\nsha256 = \"{}\"\n\
             registries = [\"*\"]\n",
            hex::encode(Sha256::digest(ADMIN_TOKEN.as_bytes()))
        );
        let config = server_section(port, &database.url, "purge_interval = 5") + &admin + &registry;
        // Started once to create the tables, then stopped for the seeding.
        stop(start_trustpub(dir.path(), &config, &base).await);
        let seeding = Instant::now();
        database.seed("live", count, 4_000_000_000, true).await;
        let seeded = seeding.elapsed();
        let server = start_trustpub(dir.path(), &config, &base).await;
        let (introspections, forward_auth) = checks(&base, issuer, seconds).await;
        let introspection = wrk(&base, &introspections, seconds, connections);
        let check = wrk(&base, &forward_auth, seconds, connections);
        let listing = |registry: &str| {
            vec![format!(
                "GET\t/_/trustpub/admin/v1/events?registry={registry}\t-\t\
                 Authorization: Bearer {ADMIN_TOKEN}"
            )]
        };
        let busy = wrk(&base, &listing("acme"), seconds, connections);
        let quiet = wrk(&base, &listing("q7"), seconds, connections);
        println!(
            "{label:<10} {count:>8} credentials, jtis and events (seeded in {:.0} s)\n           \
             introspection {introspection}\n           forward-auth  {check}\n           \
             events, busy  {busy}\n           events, quiet {quiet}",
            seeded.as_secs_f64()
        );
        if count == largest && purge_rows > 0 {
            purging(
                label,
                &database,
                &base,
                issuer,
                purge_rows,
                seconds,
                connections,
            )
            .await;
        }
        stop(server);
        database.remove().await;
    }
}

/// Mint latency before and while the purge deletes `rows` expired
/// credentials and as many expired `jti`s (the server purges every 5 s).
async fn purging(
    label: &str,
    database: &Database,
    base: &str,
    issuer: &TestIssuer,
    rows: usize,
    seconds: usize,
    connections: usize,
) {
    let tokens = |n: usize| -> Vec<String> {
        (0..n)
            .map(|_| {
                let claims = TestClaims::github(issuer.url(), ACME_AUDIENCE, now()).build();
                format!(
                    "POST\t/_/trustpub/acme/mint-token\t{}",
                    json!({ "token": issuer.sign(&claims) })
                )
            })
            .collect()
    };
    let quiet = wrk(
        base,
        &tokens(seconds * MINTS_PER_SECOND),
        seconds,
        connections,
    );
    database.seed("expired", rows, 100, false).await;
    // Mint in runs of `seconds` until the expired rows are gone.
    sqlx::any::install_default_drivers();
    let mut connection = sqlx::AnyConnection::connect(&database.url).await.unwrap();
    let started = Instant::now();
    let mut during = Vec::new();
    loop {
        during.push(wrk(
            base,
            &tokens(seconds * MINTS_PER_SECOND),
            seconds,
            connections,
        ));
        let left: Option<i64> = sqlx::query_scalar(
            "SELECT expires_at FROM upload_tokens WHERE expires_at < 1000 LIMIT 1",
        )
        .fetch_optional(&mut connection)
        .await
        .unwrap();
        let jtis: Option<i64> =
            sqlx::query_scalar("SELECT expires_at FROM used_jtis WHERE expires_at < 1000 LIMIT 1")
                .fetch_optional(&mut connection)
                .await
                .unwrap();
        if (left.is_none() && jtis.is_none()) || started.elapsed() > Duration::from_secs(600) {
            break;
        }
    }
    println!("{label:<10} mint with no purge running        {quiet}");
    for (i, load) in during.iter().enumerate() {
        println!(
            "{label:<10} mint while purging {rows} (run {}) {load}",
            i + 1
        );
    }
}

#[tokio::main]
async fn main() {
    let seconds = env_number("SECONDS", 5);
    let connections = env_number("CONNECTIONS", 32);
    let registry_counts = env_list("REGISTRIES", "1,100,1000");
    let row_counts = env_list("CREDENTIALS", "0,1000000,5000000");
    let purge_rows = env_number("PURGE_ROWS", 1_000_000);
    let issuer = TestIssuer::start().await;
    let server = std::env::var("TEST_DATABASE_URL")
        .ok()
        .filter(|s| !s.trim().is_empty());
    let mut backends = vec![("sqlite", None)];
    if let Some(server) = &server {
        backends.push(("postgresql", Some(server.as_str())));
    }
    for (label, postgres) in &backends {
        for &count in &registry_counts {
            many_registries(label, *postgres, &issuer, count, seconds, connections).await;
        }
        many_rows(
            label,
            *postgres,
            &issuer,
            &row_counts,
            purge_rows,
            seconds,
            connections,
        )
        .await;
    }
}
