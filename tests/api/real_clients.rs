//! The real upload clients, unmodified, against trustpub: uv, pdm and
//! maturin from PyPI, installed by `.ci/setup-python` into `.venv-e2e/`.
//! Each runs as in a GitHub Actions job: `GITHUB_ACTIONS`,
//! `ACTIONS_ID_TOKEN_REQUEST_URL` and `_TOKEN` point at the test issuer's
//! token endpoint. They fetch the audience from trustpub, a token for it
//! from the issuer, mint a credential, and try to upload with it. No
//! upload gateway exists yet, so the upload itself fails (trustpub answers
//! the upload path with 404); everything up to the upload request is
//! asserted.
//!
//! twine is not among them: it tries Trusted Publishing only for PyPI's own
//! URLs. (gh-action-pypi-publish runs twine in a container and needs a
//! runner, so it is not run here either; it uses the same paths as maturin.)

use std::path::{Path, PathBuf};
use std::process::Output;

use trustpub::testing::{ACTIONS_REQUEST_TOKEN, TestIssuer, acme_registry_with};

use crate::helpers::{TestApp, TestCa, spawn_app_with_port};

/// A program of the project-local virtual environment; fails the test,
/// saying how to install it, when it is missing.
fn tool(name: &str) -> PathBuf {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join(".venv-e2e/bin")
        .join(name);
    assert!(
        path.is_file(),
        "{} is missing: run .ci/setup-python (which .ci/test runs) to install the clients",
        path.display()
    );
    path
}

/// trustpub serving acme's PyPI paths on its own address, over https with
/// `ca`'s certificate when given, plain http otherwise.
async fn serve(issuer: &TestIssuer, ca: Option<&TestCa>) -> TestApp {
    let tls = ca.map(TestCa::server_tls).unwrap_or_default();
    let scheme = if ca.is_some() { "https" } else { "http" };
    spawn_app_with_port(|port| {
        let acme = acme_registry_with(issuer.url(), "pypi_paths = true").replace(
            "https://pypi.acme.test/legacy/",
            &format!("{scheme}://127.0.0.1:{port}/legacy/"),
        );
        format!("{tls}\n{acme}")
    })
    .await
}

/// A scratch folder with a wheel of `widget` in `dist/`.
fn workspace() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let made = std::process::Command::new(tool("python"))
        .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/e2e/make_dist.py"))
        .args(["widget", "0.1.0"])
        .arg(dir.path().join("dist"))
        .output()
        .unwrap();
    assert!(
        made.status.success(),
        "{}",
        String::from_utf8_lossy(&made.stderr)
    );
    dir
}

/// Runs a client in `dir` with a clean environment: a GitHub Actions job's
/// variables, a home of its own, and `extra`. Runs off the test's runtime
/// thread, which serves trustpub meanwhile.
async fn run(
    program: PathBuf,
    args: Vec<String>,
    dir: &Path,
    issuer: &TestIssuer,
    extra: Vec<(&'static str, String)>,
) -> Output {
    let mut command = std::process::Command::new(&program);
    command
        .args(&args)
        .current_dir(dir)
        .env_clear()
        .env("PATH", tool("python").parent().unwrap())
        .env("HOME", dir)
        .env("GITHUB_ACTIONS", "true")
        .env("CI", "true")
        .env("ACTIONS_ID_TOKEN_REQUEST_URL", issuer.actions_token_url())
        .env("ACTIONS_ID_TOKEN_REQUEST_TOKEN", ACTIONS_REQUEST_TOKEN)
        .env("NO_COLOR", "1")
        .envs(extra);
    let output = tokio::task::spawn_blocking(move || command.output())
        .await
        .unwrap()
        .unwrap_or_else(|e| panic!("running {}: {e}", program.display()));
    eprintln!(
        "== {} {}\n-- stdout\n{}\n-- stderr\n{}",
        program.display(),
        args.join(" "),
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    output
}

/// Whether `credential` is one of acme's, unexpired and not revoked.
async fn is_valid(app: &TestApp, credential: &str) -> bool {
    let hash = trustpub::tokens::hash(credential);
    let stored = app.store.upload_token("acme", &hash).await.unwrap();
    stored.is_some_and(|t| t.revoked_at.is_none() && t.expires_at > trustpub::store::now())
}

/// The credential a client told GitHub Actions to mask (`::add-mask::`).
fn masked_credential(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .find_map(|line| line.trim().strip_prefix("::add-mask::"))
        .map(str::to_owned)
        .expect("the client printed ::add-mask:: with the minted credential")
}

/// The mint the client made: one token for acme's audience from the
/// issuer, and one credential minted.
async fn assert_minted_once(app: &TestApp, issuer: &TestIssuer) {
    assert_eq!(issuer.actions_audiences(), ["acme-pypi"]);
    assert_eq!(app.store.count_upload_tokens("acme").await.unwrap(), 1);
    let events = app.store.events("acme").await.unwrap();
    assert!(
        events
            .iter()
            .any(|e| (e.kind.as_str(), e.outcome.as_str()) == ("mint", "minted")),
        "{events:?}"
    );
}

/// `uv publish` of the wheel to trustpub's `/legacy/`, with Trusted
/// Publishing forced: without it, uv in GitHub Actions tries it too, but
/// falls back to asking for credentials when it fails.
async fn uv_publish(app: &TestApp, issuer: &TestIssuer, ca: &TestCa) -> Output {
    let dir = workspace();
    let cache = dir.path().join("cache").display().to_string();
    run(
        tool("uv"),
        vec![
            "publish".into(),
            "--trusted-publishing".into(),
            "always".into(),
            "--publish-url".into(),
            format!("{}/legacy/", app.address),
            "dist/widget-0.1.0-py3-none-any.whl".into(),
        ],
        dir.path(),
        issuer,
        vec![
            ("SSL_CERT_FILE", ca.path("ca.pem")),
            ("UV_CACHE_DIR", cache),
        ],
    )
    .await
}

/// uv forces https for the implicit paths: trustpub serves TLS, and uv
/// trusts the test CA through `SSL_CERT_FILE`. After the upload, failed
/// or not, uv burns the credential.
#[tokio::test]
async fn uv_mints_over_https_and_burns() {
    let issuer = TestIssuer::start().await;
    let ca = TestCa::new();
    let app = serve(&issuer, Some(&ca)).await;
    let output = uv_publish(&app, &issuer, &ca).await;

    let credential = masked_credential(&output);
    assert!(
        trustpub::tokens::is_well_formed("acme_", &credential),
        "{credential}"
    );
    assert_minted_once(&app, &issuer).await;
    // It went on to upload, which fails without an upload gateway.
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success());
    assert!(stderr.contains("404"), "{stderr}");
    // Then it burnt the credential.
    assert!(!stderr.contains("Failed to invalidate"), "{stderr}");
    let hash = trustpub::tokens::hash(&credential);
    let stored = app.store.upload_token("acme", &hash).await.unwrap();
    assert!(
        stored.unwrap().revoked_at.is_some(),
        "uv's burn-token revoked it"
    );
    let events = app.store.events("acme").await.unwrap();
    let last = events.last().unwrap();
    assert_eq!(
        (last.kind.as_str(), last.outcome.as_str()),
        ("revoke", "revoked")
    );
}

/// A job that is not a trusted publisher gets trustpub's refusal, and uv
/// shows it.
#[tokio::test]
async fn uv_shows_a_refusal() {
    let issuer = TestIssuer::start().await;
    issuer.set_actions_claims(|claims| claims.set("repository_owner_id", "666"));
    let ca = TestCa::new();
    let app = serve(&issuer, Some(&ca)).await;
    let output = uv_publish(&app, &issuer, &ca).await;

    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("403"), "{stderr}");
    assert!(stderr.contains("invalid-publisher"), "{stderr}");
    assert_eq!(app.store.count_upload_tokens("acme").await.unwrap(), 0);
}

/// pdm keeps the upload URL's scheme; over https it trusts the test CA
/// through `--ca-certs`.
#[tokio::test]
async fn pdm_mints_over_https() {
    let issuer = TestIssuer::start().await;
    let ca = TestCa::new();
    let app = serve(&issuer, Some(&ca)).await;
    let dir = workspace();
    std::fs::write(
        dir.path().join("pyproject.toml"),
        "[project]\nname = \"widget\"\nversion = \"0.1.0\"\nrequires-python = \">=3.8\"\n",
    )
    .unwrap();
    let output = run(
        tool("pdm"),
        vec![
            "publish".into(),
            "--no-build".into(),
            "--repository".into(),
            format!("{}/legacy/", app.address),
            "--ca-certs".into(),
            ca.path("ca.pem"),
        ],
        dir.path(),
        &issuer,
        vec![
            ("PDM_CHECK_UPDATE", "false".into()),
            // No virtual environment for the project: publishing needs none.
            ("PDM_USE_VENV", "false".into()),
            ("PDM_PYTHON", tool("python").display().to_string()),
        ],
    )
    .await;

    let credential = masked_credential(&output);
    assert!(is_valid(&app, &credential).await, "pdm burns nothing");
    assert_minted_once(&app, &issuer).await;
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success());
    assert!(stderr.contains("404"), "{stderr}");
}

/// maturin posts to `/_/oidc/github/mint-token`, and prints no credential;
/// its Trusted Publishing requests ignore its CA bundle settings, so it
/// talks plain http here (it keeps the URL's scheme).
#[tokio::test]
async fn maturin_mints_over_http() {
    let issuer = TestIssuer::start().await;
    let app = serve(&issuer, None).await;
    let dir = workspace();
    let output = run(
        tool("maturin"),
        vec![
            "upload".into(),
            "--non-interactive".into(),
            "--repository-url".into(),
            format!("{}/legacy/", app.address),
            "dist/widget-0.1.0-py3-none-any.whl".into(),
        ],
        dir.path(),
        &issuer,
        vec![],
    )
    .await;

    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("Using trusted publisher for upload"),
        "{stderr}"
    );
    assert_minted_once(&app, &issuer).await;
    assert!(!output.status.success());
    assert!(stderr.contains("404"), "{stderr}");
}
