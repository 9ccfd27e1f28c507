//! `trustpub-token exec` (the client in `client/`) in a simulated GitHub
//! Actions job, running the real uv and twine: it discovers acme from its
//! upload URL, mints, and the tool uploads with the credential through the
//! upload gateway into pypiserver; the credential is burnt afterwards,
//! which introspection confirms.
//!
//! The binary is the one `cargo test --workspace` (or `cargo build -p
//! trustpub-client`) leaves next to this test's own directory: a test of
//! the trustpub crate cannot ask cargo for another package's binary.

use std::path::PathBuf;
use std::process::Output;

use serde_json::{Value, json};
use trustpub::testing::TestIssuer;

use crate::helpers::TestApp;
use crate::real_clients::{Pypiserver, masked_credential, run, serve_with, workspace_of};

/// acme's introspection secret, `change-me`, as its SHA-256.
const INTROSPECTION: &str = "introspect_secret_sha256 = \"e2186dbdb1bb4193608605e84f33208765b5693b55edd4f730a719a100eeea6f\"\n";

/// twine, uploading every file of `dist/`.
const TWINE_UPLOAD: &[&str] = &[
    "twine",
    "upload",
    "--non-interactive",
    "--disable-progress-bar",
    "dist/*",
];

/// `target/<profile>/trustpub-token`, beside `target/<profile>/deps/`
/// where this test runs from.
fn trustpub_token() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let path = exe
        .parent()
        .and_then(|deps| deps.parent())
        .unwrap()
        .join("trustpub-token");
    assert!(
        path.is_file(),
        "{} is missing: `cargo test --workspace` builds it, or `cargo build -p trustpub-client`",
        path.display()
    );
    path
}

/// `trustpub-token exec --upload-url <acme> -- <tool…>` in the scratch
/// folder of a wheel of `package` (in `dist/`), as a GitHub Actions job; the tool comes from the
/// virtual environment, on the job's `PATH`.
async fn exec(app: &TestApp, issuer: &TestIssuer, package: &str, tool: &[&str]) -> Output {
    let dir = workspace_of(package);
    let mut args = vec![
        "exec".to_owned(),
        "--upload-url".to_owned(),
        format!("{}/legacy/", app.address),
        "--".to_owned(),
    ];
    args.extend(tool.iter().map(|a| a.to_string()));
    let cache = dir.path().join("cache").display().to_string();
    run(
        trustpub_token(),
        args,
        dir.path(),
        issuer,
        vec![("UV_CACHE_DIR", cache)],
    )
    .await
}

async fn introspect(app: &TestApp, credential: &str) -> Value {
    let response = app
        .request(reqwest::Method::POST, "/_/trustpub/acme/introspect")
        .bearer_auth("change-me")
        .json(&json!({ "token": credential, "package": "widget" }))
        .send()
        .await
        .unwrap();
    crate::helpers::json_ok(response).await
}

/// uv, then twine, each under `exec` with nothing but the upload URL on
/// the command line: the variables `exec` sets carry the URL and the
/// credential. Both uploads reach pypiserver, both credentials are burnt.
#[tokio::test]
async fn uv_and_twine_publish_under_exec_and_the_credential_is_burnt() {
    let registry = Pypiserver::start().await;
    let issuer = TestIssuer::start().await;
    let keys = format!("{INTROSPECTION}{}", registry.gateway());
    let app = serve_with(&issuer, None, &keys).await;

    let uv = exec(&app, &issuer, "widget", &["uv", "publish", "dist/*"]).await;
    assert!(uv.status.success(), "uv publish under exec failed");
    let twine = exec(&app, &issuer, "widget-extra", TWINE_UPLOAD).await;
    assert!(twine.status.success(), "twine upload under exec failed");
    assert_eq!(
        registry.files(),
        [
            "widget-0.1.0-py3-none-any.whl",
            "widget_extra-0.1.0-py3-none-any.whl"
        ]
    );

    for output in [&uv, &twine] {
        let credential = masked_credential(output);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(stderr.contains("burnt the credential at"), "{stderr}");
        assert_eq!(
            introspect(&app, &credential).await,
            json!({ "active": false })
        );
    }
    let events = app.store.events("acme").await.unwrap();
    let uploads: Vec<_> = events
        .iter()
        .filter(|e| e.kind == "upload")
        .map(|e| (e.outcome.as_str(), e.code.as_str()))
        .collect();
    assert_eq!(uploads, [("forwarded", "ok"), ("forwarded", "ok")]);
    let revoked = events
        .iter()
        .filter(|e| (e.kind.as_str(), e.outcome.as_str()) == ("revoke", "revoked"))
        .count();
    assert_eq!(revoked, 2);
}

/// An upload the registry refuses (a package outside the credential's
/// scope) fails the command: `exec` exits with twine's status, and burns
/// the credential all the same.
#[tokio::test]
async fn a_failed_upload_is_the_exit_status_and_the_credential_is_still_burnt() {
    let registry = Pypiserver::start().await;
    let issuer = TestIssuer::start().await;
    let keys = format!("{INTROSPECTION}{}", registry.gateway());
    let app = serve_with(&issuer, None, &keys).await;

    let twine = exec(&app, &issuer, "gadget", TWINE_UPLOAD).await;
    assert_eq!(twine.status.code(), Some(1), "twine's own status");
    let said = String::from_utf8_lossy(&twine.stdout);
    assert!(
        said.contains("403 Forbidden"),
        "twine shows the refusal: {said}"
    );
    assert!(registry.files().is_empty());
    let credential = masked_credential(&twine);
    assert_eq!(
        introspect(&app, &credential).await,
        json!({ "active": false })
    );
}
