//! Kellnr, a self-hosted cargo registry, behind nginx and trustpub as the
//! Kellnr recipe (docs/src/recipes.md) sets them up, with `auth_required`:
//! the nginx block is read from the recipe itself. cargo publishes through
//! trustpub's gateway with a minted credential, an out-of-scope crate never
//! reaches Kellnr, and `cargo add` and `cargo fetch` resolve and download
//! the published crate from Kellnr with the same credential, which
//! forward-auth swaps for Kellnr's read token.
//!
//! Kellnr is built by `.ci/setup-kellnr` into `.kellnr/` (about 20 minutes);
//! without it, the test says NOTE and checks nothing.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output};
use std::time::{Duration, Instant};

use serde_json::json;
use trustpub::testing::{TestClaims, TestIssuer, trusts_widget};

use crate::helpers::{TestApp, json_ok, not_checked, refusals, spawn_app, terminate};
use crate::nginx::{documented_nginx, free_port, start_nginx_server};

const ADMIN_TOKEN: &str = "kellnr-admin-token-for-the-gateway";

struct Kellnr {
    child: Child,
    port: u16,
    _data: tempfile::TempDir,
}

impl Drop for Kellnr {
    fn drop(&mut self) {
        terminate(&self.child);
        let _ = self.child.wait();
    }
}

fn kellnr_binary() -> Option<PathBuf> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(".kellnr/bin/kellnr");
    path.is_file().then_some(path)
}

impl Kellnr {
    /// Kellnr on a free port, telling cargo that it is at the proxy's
    /// `public_port`, with reads that need a token.
    async fn start(binary: &Path, public_port: u16) -> Self {
        let data = tempfile::tempdir().unwrap();
        let port = free_port();
        let log = data.path().join("kellnr.log");
        let output = std::fs::File::create(&log).unwrap();
        let child = Command::new(binary)
            .arg("start")
            .env("KELLNR_LOCAL__IP", "127.0.0.1")
            .env("KELLNR_LOCAL__PORT", port.to_string())
            .env("KELLNR_ORIGIN__HOSTNAME", "127.0.0.1")
            .env("KELLNR_ORIGIN__PORT", public_port.to_string())
            .env("KELLNR_REGISTRY__DATA_DIR", data.path())
            .env("KELLNR_REGISTRY__AUTH_REQUIRED", "true")
            .env("KELLNR_SETUP__ADMIN_TOKEN", ADMIN_TOKEN)
            .stdout(output.try_clone().unwrap())
            .stderr(output)
            .spawn()
            .expect("kellnr starts");
        let kellnr = Kellnr {
            child,
            port,
            _data: data,
        };
        let deadline = Instant::now() + Duration::from_secs(60);
        let health = format!("http://127.0.0.1:{port}/api/v1/health");
        while !reqwest::get(&health)
            .await
            .is_ok_and(|r| r.status().is_success())
        {
            assert!(
                Instant::now() < deadline,
                "kellnr did not start: {}",
                std::fs::read_to_string(&log).unwrap_or_default()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        kellnr
    }

    /// Whether Kellnr's index has `name` (asked directly, as its admin).
    async fn has(&self, name: &str) -> bool {
        let path = match name.len() {
            1 => format!("1/{name}"),
            2 => format!("2/{name}"),
            3 => format!("3/{}/{name}", &name[..1]),
            _ => format!("{}/{}/{name}", &name[..2], &name[2..4]),
        };
        reqwest::Client::new()
            .get(format!(
                "http://127.0.0.1:{}/api/v1/crates/{path}",
                self.port
            ))
            .header("Authorization", ADMIN_TOKEN)
            .send()
            .await
            .unwrap()
            .status()
            .is_success()
    }
}

/// trustpub with a cargo registry `kellnr` at the proxy's address, whose
/// gateway publishes to Kellnr with its admin token, also used for reads.
async fn trustpub(
    issuer: &TestIssuer,
    public_port: u16,
    kellnr: u16,
    token_file: &Path,
) -> TestApp {
    spawn_app(&format!(
        r#"
[[registries]]
name = "kellnr"
upload_url = "http://127.0.0.1:{public_port}/"
audience = "kellnr"
ecosystem = "cargo"
token_prefix = "kellnr_"

  [registries.gateway]
  upstream = "http://127.0.0.1:{kellnr}/"
  credential = {{ scheme = "bearer", secret_file = {file:?} }}
  read_credential = {{ scheme = "bearer", secret_file = {file:?} }}
{trust}"#,
        file = token_file.display().to_string(),
        trust = trusts_widget(issuer.url(), r#"["widget-crate"]"#),
    ))
    .await
}

/// A crate `name` 0.1.0 in `dir`, publishable to `kellnr` only.
fn new_crate(dir: &Path, name: &str) {
    std::fs::create_dir_all(dir.join("src")).unwrap();
    std::fs::write(
        dir.join("Cargo.toml"),
        format!(
            "[package]\nname = \"{name}\"\nversion = \"0.1.0\"\nedition = \"2021\"\n\
             description = \"a test crate\"\nlicense = \"MIT\"\npublish = [\"kellnr\"]\n\n\
             [dependencies]\n"
        ),
    )
    .unwrap();
    std::fs::write(dir.join("src/lib.rs"), "pub fn answer() -> u32 { 42 }\n").unwrap();
}

/// cargo with its own home, which knows Kellnr (through nginx) as
/// `kellnr` and holds `credential` for it.
fn cargo(home: &Path, dir: &Path, args: &[&str], port: u16, credential: &str) -> Output {
    std::fs::write(
        home.join("config.toml"),
        format!(
            "[registries.kellnr]\nindex = \"sparse+http://127.0.0.1:{port}/api/v1/crates/\"\n\
             credential-provider = [\"cargo:token\"]\n"
        ),
    )
    .unwrap();
    let output = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
        .args(args)
        .current_dir(dir)
        .env("CARGO_HOME", home)
        .env("CARGO_REGISTRIES_KELLNR_TOKEN", credential)
        .env("CARGO_TARGET_DIR", home.join("target"))
        .env_remove("CARGO_REGISTRY_TOKEN")
        .output()
        .unwrap();
    eprintln!(
        "== cargo {}\n{}",
        args.join(" "),
        String::from_utf8_lossy(&output.stderr)
    );
    output
}

#[tokio::test]
async fn cargo_publishes_through_trustpub_and_reads_from_kellnr_with_auth_required() {
    let Some(binary) = kellnr_binary() else {
        not_checked(
            "kellnr::cargo_publishes_through_trustpub_and_reads_from_kellnr_with_auth_required",
            "Kellnr is not built",
            ".ci/setup-kellnr (about 20 minutes), then run the end-to-end tests again",
        );
        return;
    };
    let public = free_port();
    let kellnr = Kellnr::start(&binary, public).await;
    let secrets = tempfile::tempdir().unwrap();
    let token_file = secrets.path().join("kellnr-token");
    std::fs::write(&token_file, ADMIN_TOKEN).unwrap();
    let issuer = TestIssuer::start().await;
    let app = trustpub(&issuer, public, kellnr.port, &token_file).await;
    let server = documented_nginx(
        "recipes.md",
        "server {                                    # Kellnr with auth_required",
        &[
            ("listen 443 ssl;", format!("listen 127.0.0.1:{public};")),
            ("http://127.0.0.1:8080", app.address.clone()),
            (
                "http://127.0.0.1:8000",
                format!("http://127.0.0.1:{}", kellnr.port),
            ),
        ],
    );
    let _nginx = start_nginx_server(public, &server).await;

    let token =
        issuer.sign(&TestClaims::github(issuer.url(), "kellnr", trustpub::store::now()).build());
    let minted = json_ok(
        app.request(reqwest::Method::POST, "/_/trustpub/kellnr/mint-token")
            .json(&json!({ "token": token }))
            .send()
            .await
            .unwrap(),
    )
    .await;
    let credential = minted["token"].as_str().unwrap().to_owned();

    let work = tempfile::tempdir().unwrap();
    let home = work.path().join("cargo-home");
    std::fs::create_dir_all(&home).unwrap();
    let publish = [
        "publish",
        "--registry",
        "kellnr",
        "--no-verify",
        "--allow-dirty",
    ];

    // In scope: through trustpub's gateway into Kellnr.
    let widget = work.path().join("widget-crate");
    new_crate(&widget, "widget-crate");
    let published = cargo(&home, &widget, &publish, public, &credential);
    assert!(
        published.status.success(),
        "cargo publish of widget-crate failed"
    );
    assert!(kellnr.has("widget-crate").await);

    // Out of scope: refused by trustpub, never in Kellnr.
    let gadget = work.path().join("gadget-crate");
    new_crate(&gadget, "gadget-crate");
    let refused = cargo(&home, &gadget, &publish, public, &credential);
    assert!(!refused.status.success());
    assert!(String::from_utf8_lossy(&refused.stderr).contains("403"));
    assert!(!kellnr.has("gadget-crate").await);

    // Another crate adds it with cargo add, which reads Kellnr's index, and
    // fetches it from Kellnr; Kellnr's reads need a token: nginx asks
    // trustpub, which hands it Kellnr's read token.
    let consumer = work.path().join("consumer");
    new_crate(&consumer, "consumer");
    let added = cargo(
        &home,
        &consumer,
        &["add", "widget-crate", "--registry", "kellnr"],
        public,
        &credential,
    );
    assert!(added.status.success(), "cargo add from Kellnr failed");
    let manifest = std::fs::read_to_string(consumer.join("Cargo.toml")).unwrap();
    assert!(
        manifest.contains("widget-crate = { version = \"0.1.0\", registry = \"kellnr\" }"),
        "{manifest}"
    );
    let fetched = cargo(&home, &consumer, &["fetch"], public, &credential);
    assert!(fetched.status.success(), "cargo fetch from Kellnr failed");
    let lock = std::fs::read_to_string(consumer.join("Cargo.lock")).unwrap();
    assert!(lock.contains("name = \"widget-crate\""), "{lock}");
    // Kellnr does want a token for reads, which only trustpub's header gave:
    let direct = reqwest::get(format!(
        "http://127.0.0.1:{}/api/v1/crates/config.json",
        kellnr.port
    ))
    .await
    .unwrap();
    assert_eq!(direct.status(), 401);
    // and the reads were counted by trustpub, not kept one event each.
    assert!(refusals(&app, "kellnr", "check", "read").await > 0);
    let events = app.store.events("kellnr").await.unwrap();
    assert!(
        events.iter().all(|e| !e.detail.starts_with("forward-auth")),
        "{events:?}"
    );
    // Without a live credential, no read gets through (a fresh cargo home:
    // nothing cached).
    let stranger = work.path().join("stranger-home");
    std::fs::create_dir_all(&stranger).unwrap();
    let denied = cargo(
        &stranger,
        &consumer,
        &["update"],
        public,
        "kellnr_not-a-credential",
    );
    assert!(!denied.status.success());
}
