//! What the benchmarks that run the trustpub binary share: a free port, the
//! binary started on a configuration and waited for, a first credential,
//! its memory and open files. Linux only (`/proc`).

use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::json;
use trustpub::store::now;
use trustpub::testing::{ACME_AUDIENCE, TestClaims, TestIssuer};

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Writes `config` to `dir`/trustpub.toml, starts `trustpub serve` on it
/// and waits until `base` answers `/healthz`. The binary is this build's,
/// or the one `TRUSTPUB_BIN` names (to compare two builds in one run).
pub async fn start_trustpub(dir: &std::path::Path, config: &str, base: &str) -> Child {
    let config_path = dir.join("trustpub.toml");
    std::fs::write(&config_path, config).unwrap();
    let binary =
        std::env::var("TRUSTPUB_BIN").unwrap_or_else(|_| env!("CARGO_BIN_EXE_trustpub").to_owned());
    let server = Command::new(binary)
        .arg("serve")
        .arg("--config")
        .arg(&config_path)
        .stdin(Stdio::null())
        .spawn()
        .expect("trustpub starts");
    let client = reqwest::Client::new();
    let started = Instant::now();
    while client.get(format!("{base}/healthz")).send().await.is_err() {
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "trustpub did not start"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    server
}

/// A credential of acme, minted at `base` with a fresh identity token.
pub async fn mint(client: &reqwest::Client, base: &str, issuer: &TestIssuer) -> String {
    let claims = TestClaims::github(issuer.url(), ACME_AUDIENCE, now()).build();
    let minted: serde_json::Value = client
        .post(format!("{base}/_/trustpub/acme/mint-token"))
        .json(&json!({ "token": issuer.sign(&claims) }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    minted["token"].as_str().expect("a credential").to_owned()
}

/// A database of its own for one run, on the PostgreSQL server that
/// `server` (`TEST_DATABASE_URL`) names; dropped by [`FreshPostgres::remove`].
pub struct FreshPostgres {
    pub url: String,
    name: String,
    admin: sqlx::PgConnection,
}

impl FreshPostgres {
    pub async fn create(server: &str, label: &str) -> Self {
        use sqlx::Connection;
        let name = format!("trustpub_{label}_{}", std::process::id());
        let mut admin = sqlx::PgConnection::connect(server)
            .await
            .expect("PostgreSQL");
        sqlx::raw_sql(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
            .execute(&mut admin)
            .await
            .unwrap();
        let mut url = url::Url::parse(server).unwrap();
        url.set_path(&name);
        FreshPostgres {
            url: url.to_string(),
            name,
            admin,
        }
    }

    pub async fn remove(mut self) {
        sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
            "DROP DATABASE {} WITH (FORCE)",
            self.name
        )))
        .execute(&mut self.admin)
        .await
        .unwrap();
    }
}

/// `VmRSS` and `VmHWM` of a process, in KiB.
pub fn memory(pid: u32) -> (u64, u64) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("Linux /proc");
    let field = |name: &str| {
        status
            .lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    };
    (field("VmRSS:"), field("VmHWM:"))
}

/// How many file descriptors a process has open.
pub fn open_files(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .expect("Linux /proc")
        .count()
}
