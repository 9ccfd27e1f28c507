//! The protocols today's clients speak, with the request shapes they send:
//! PyPI's implicit `/_/oidc/…` paths (uv, twine, pdm, maturin,
//! gh-action-pypi-publish) and the crates.io protocol
//! (crates-io-auth-action). The real programs run in
//! `tests/e2e/real_clients.rs`.

use reqwest::Method;
use serde_json::json;
use trustpub::store::now;
use trustpub::testing::{TestClaims, TestIssuer, acme_registry_with, trusts_widget};

use crate::helpers::{TestApp, TestCa, json_ok, problem, spawn_app, spawn_app_with_port};

/// acme (pypi.acme.test, serving PyPI's paths), and two cargo registries
/// trusting the same issuer: one at a host's root with the default
/// audience, one under a path with its own.
fn config(issuer: &str) -> String {
    format!(
        r#"{acme}
[[registries]]
name = "crates"
upload_url = "https://crates.acme.test/"
ecosystem = "cargo"
token_prefix = "crates_"
{crates_trust}
[[registries]]
name = "crates-sub"
upload_url = "https://acme.test/cargo/"
ecosystem = "cargo"
audience = "cargo-at-acme"
token_prefix = "sub_"
{sub_trust}"#,
        acme = acme_registry_with(issuer, "pypi_paths = true"),
        crates_trust = trusts_widget(issuer, r#"["widget"]"#),
        sub_trust = trusts_widget(issuer, r#"["widget_sys"]"#),
    )
}

async fn prepare() -> (TestIssuer, TestApp) {
    let issuer = TestIssuer::start().await;
    let app = spawn_app(&config(issuer.url())).await;
    (issuer, app)
}

fn token(issuer: &TestIssuer, audience: &str) -> String {
    issuer.sign(&TestClaims::github(issuer.url(), audience, now()).build())
}

/// A request to the app as if sent to `host`.
fn to_host(app: &TestApp, method: Method, host: &str, path: &str) -> reqwest::RequestBuilder {
    app.request(method, path)
        .header("host", host)
        .header("accept", "*/*")
}

/// A JSON POST to the app as if sent to `host`.
async fn post_json(
    app: &TestApp,
    host: &str,
    path: &str,
    body: serde_json::Value,
) -> reqwest::Response {
    to_host(app, Method::POST, host, path)
        .json(&body)
        .send()
        .await
        .unwrap()
}

/// Whether the stored credential with this hash is revoked.
async fn is_revoked(app: &TestApp, registry: &str, hash: &str) -> bool {
    let stored = app.store.upload_token(registry, hash).await.unwrap();
    stored
        .expect("the credential is stored")
        .revoked_at
        .is_some()
}

/// crates-io-auth-action's revocation: `DELETE` with a bearer credential.
async fn delete_with_bearer(
    app: &TestApp,
    host: &str,
    path: &str,
    credential: &str,
) -> reqwest::Response {
    to_host(app, Method::DELETE, host, path)
        .bearer_auth(credential)
        .send()
        .await
        .unwrap()
}

/// crates-io-auth-action's mint: `{"jwt"}` with a token for `audience`.
async fn crates_mint(
    app: &TestApp,
    issuer: &TestIssuer,
    host: &str,
    path: &str,
    audience: &str,
) -> reqwest::Response {
    post_json(app, host, path, json!({"jwt": token(issuer, audience)})).await
}

/// PyPI's mint: `{"token"}` with a token for `audience`.
async fn pypi_mint(
    app: &TestApp,
    issuer: &TestIssuer,
    host: &str,
    path: &str,
    audience: &str,
) -> reqwest::Response {
    post_json(app, host, path, json!({"token": token(issuer, audience)})).await
}

#[tokio::test]
async fn pypi_audience_is_served_on_the_bound_host() {
    let (_issuer, app) = prepare().await;
    // Over plain http, `:80` is the default port.
    for host in ["pypi.acme.test", "PyPI.Acme.Test", "pypi.acme.test:80"] {
        let response = to_host(&app, Method::GET, host, "/_/oidc/audience")
            .send()
            .await
            .unwrap();
        assert_eq!(
            json_ok(response).await,
            json!({"audience": "acme-pypi"}),
            "{host}"
        );
    }
}

#[tokio::test]
async fn pypi_paths_on_another_host_are_not_found() {
    let (issuer, app) = prepare().await;
    // crates.acme.test has a registry, but not one serving PyPI's paths.
    for host in ["crates.acme.test", "elsewhere.test", "pypi.acme.test:8443"] {
        let response = to_host(&app, Method::GET, host, "/_/oidc/audience")
            .send()
            .await
            .unwrap();
        let document = problem(response, 404, "no-registry-here").await;
        assert!(
            document["detail"]
                .as_str()
                .unwrap()
                .contains(&host.to_ascii_lowercase())
        );
        let response = pypi_mint(&app, &issuer, host, "/_/oidc/mint-token", "acme-pypi").await;
        problem(response, 404, "no-registry-here").await;
    }
}

/// uv posts the body with no `Content-Type`; pdm, twine and maturin send
/// `application/json`; maturin uses the `github` path.
#[tokio::test]
async fn pypi_mint_answers_pypis_shape_on_both_paths() {
    let (issuer, app) = prepare().await;
    for (path, content_type) in [
        ("/_/oidc/mint-token", None),
        ("/_/oidc/mint-token", Some("application/json")),
        ("/_/oidc/github/mint-token", Some("application/json")),
    ] {
        let before = now();
        let body = json!({"token": token(&issuer, "acme-pypi")}).to_string();
        let mut request = to_host(&app, Method::POST, "pypi.acme.test", path).body(body);
        if let Some(content_type) = content_type {
            request = request.header("content-type", content_type);
        }
        let answer = json_ok(request.send().await.unwrap()).await;
        assert_eq!(answer["success"], true, "{answer}");
        let credential = answer["token"].as_str().unwrap();
        assert!(trustpub::tokens::is_well_formed("acme_", credential));
        let expires = answer["expires"].as_i64().unwrap();
        assert!((before + 900..=now() + 900).contains(&expires));
        // PEP 807's and trustpub's members are kept.
        assert_eq!(answer["features"], json!(["multi-use-token"]));
        assert_eq!(answer["packages"], json!(["widget", "widget-*"]));
        let hash = trustpub::tokens::hash(credential);
        assert!(app.store.upload_token_exists("acme", &hash).await.unwrap());
    }
}

/// twine and gh-action-pypi-publish read `errors[].code` and
/// `errors[].description` and crash without them.
#[tokio::test]
async fn pypi_mint_refusals_carry_pypis_error_members() {
    let (issuer, app) = prepare().await;
    let response = pypi_mint(
        &app,
        &issuer,
        "pypi.acme.test",
        "/_/oidc/mint-token",
        "someone-else",
    )
    .await;
    let document = problem(response, 401, "invalid-audience").await;
    assert_eq!(document["message"], document["detail"]);
    assert_eq!(document["errors"][0]["code"], "invalid-audience");
    assert_eq!(document["errors"][0]["description"], document["detail"]);

    for (body, content_type, status, code) in [
        ("{}", "application/json", 400, "invalid-payload"),
        ("not json", "application/json", 400, "invalid-payload"),
        // Read as JSON whatever the Content-Type, as PyPI does.
        (r#"{"token": "x"}"#, "text/plain", 401, "invalid-token"),
    ] {
        let response = to_host(&app, Method::POST, "pypi.acme.test", "/_/oidc/mint-token")
            .header("content-type", content_type)
            .body(body)
            .send()
            .await
            .unwrap();
        problem(response, status, code).await;
    }
    let response = to_host(&app, Method::GET, "pypi.acme.test", "/_/oidc/mint-token")
        .send()
        .await
        .unwrap();
    problem(response, 405, "method-not-allowed").await;
}

#[tokio::test]
async fn crates_io_mint_at_the_registry_root_with_the_default_audience() {
    let (issuer, app) = prepare().await;
    // crates-io-auth-action: audience = the registry URL without its scheme.
    let response = crates_mint(
        &app,
        &issuer,
        "crates.acme.test",
        "/api/v1/trusted_publishing/tokens",
        "crates.acme.test",
    )
    .await;
    let answer = json_ok(response).await;
    let credential = answer["token"].as_str().unwrap();
    assert!(trustpub::tokens::is_well_formed("crates_", credential));
    assert!(answer["expires"].as_i64().unwrap() > now());
    let hash = trustpub::tokens::hash(credential);
    assert!(
        app.store
            .upload_token_exists("crates", &hash)
            .await
            .unwrap()
    );

    // A token for another audience is refused, in crates.io's error shape too.
    let response = crates_mint(
        &app,
        &issuer,
        "crates.acme.test",
        "/api/v1/trusted_publishing/tokens",
        "https://crates.acme.test",
    )
    .await;
    let document = problem(response, 401, "invalid-audience").await;
    assert_eq!(document["errors"][0]["detail"], document["detail"]);
}

#[tokio::test]
async fn crates_io_mint_under_a_path_prefix() {
    let (issuer, app) = prepare().await;
    let response = crates_mint(
        &app,
        &issuer,
        "acme.test",
        "/cargo/api/v1/trusted_publishing/tokens",
        "cargo-at-acme",
    )
    .await;
    let credential = json_ok(response).await["token"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(credential.starts_with("sub_"));

    // The same host without the prefix, another prefix, or a python
    // registry's host: no cargo registry there.
    for (host, path) in [
        ("acme.test", "/api/v1/trusted_publishing/tokens"),
        ("acme.test", "/other/api/v1/trusted_publishing/tokens"),
        ("pypi.acme.test", "/api/v1/trusted_publishing/tokens"),
        ("pypi.acme.test", "/legacy/api/v1/trusted_publishing/tokens"),
    ] {
        let response = crates_mint(&app, &issuer, host, path, "cargo-at-acme").await;
        problem(response, 404, "no-registry-here").await;
    }
}

#[tokio::test]
async fn crates_io_mint_refuses_malformed_requests() {
    let (issuer, app) = prepare().await;
    let path = "/api/v1/trusted_publishing/tokens";
    // PEP 807's member name is not crates.io's.
    let response = pypi_mint(&app, &issuer, "crates.acme.test", path, "crates.acme.test").await;
    problem(response, 400, "invalid-payload").await;
    let response = post_json(&app, "crates.acme.test", path, json!({"jwt": "not.a.jwt"})).await;
    problem(response, 401, "invalid-token").await;
    let response = to_host(&app, Method::PUT, "crates.acme.test", path)
        .send()
        .await
        .unwrap();
    let allow = response.headers()["allow"].to_str().unwrap().to_owned();
    problem(response, 405, "method-not-allowed").await;
    assert_eq!(allow, "POST, DELETE");
}

#[tokio::test]
async fn tls_serves_https_with_the_configured_certificate() {
    let ca = TestCa::new();
    let app = spawn_app_with_port(|_| ca.server_tls()).await;
    assert!(app.address.starts_with("https://127.0.0.1:"));
    let response = ca
        .client()
        .get(format!("{}/healthz", app.address))
        .send()
        .await
        .unwrap();
    assert_eq!(json_ok(response).await, json!({"status": "ok"}));
    // A client that does not trust the test CA refuses the server.
    let untrusting = reqwest::Client::builder()
        .tls_built_in_root_certs(false)
        .build()
        .unwrap();
    assert!(
        untrusting
            .get(format!("{}/healthz", app.address))
            .send()
            .await
            .is_err()
    );
    // Plain http to the https port gets no answer.
    let plain = app.address.replacen("https://", "http://", 1);
    let result = reqwest::get(format!("{plain}/healthz")).await;
    assert!(result.map(|r| r.status().is_success()).ok() != Some(true));
}

#[tokio::test]
async fn tls_files_that_do_not_load_are_configuration_errors() {
    let ca = TestCa::new();
    let db = crate::helpers::TestDatabase::new().await;
    let missing =
        "[server.tls]\ncert = \"/nonexistent/cert.pem\"\nkey = \"/nonexistent/key.pem\"\n";
    let swapped = format!(
        "[server.tls]\ncert = {:?}\nkey = {:?}\n",
        ca.path("key.pem"),
        ca.path("cert.pem")
    );
    let other = TestCa::new();
    let mismatched = format!(
        "[server.tls]\ncert = {:?}\nkey = {:?}\n",
        ca.path("cert.pem"),
        other.path("key.pem")
    );
    for (config, key) in [
        (missing.to_owned(), "server.tls.cert"),
        (swapped, "server.tls.cert"),
        (mismatched, "server.tls"),
    ] {
        let settings = crate::helpers::settings(&config, &db).unwrap();
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        match trustpub::startup::Application::build_with_listener(&settings, listener).await {
            Err(trustpub::Error::Config { key: found, reason }) => {
                assert_eq!(found, key, "{reason}")
            }
            Err(other) => panic!("expected a configuration error, got {other}"),
            Ok(_) => panic!("expected a configuration error for {config}"),
        }
    }
}

/// `check-config` loads the TLS files too, and shows where they are.
#[test]
fn check_config_checks_the_tls_files() {
    let ca = TestCa::new();
    let run = |config: String| {
        std::fs::write(ca.dir.path().join("t.toml"), config).unwrap();
        std::process::Command::new(env!("CARGO_BIN_EXE_trustpub"))
            .args(["check-config", "--config", "t.toml"])
            .current_dir(ca.dir.path())
            .env_remove("TRUSTPUB_CONFIG")
            .env_remove("TRUSTPUB_DATABASE__URL")
            .output()
            .unwrap()
    };
    let output = run(ca.server_tls());
    assert!(output.status.success(), "{output:?}");
    let stdout = String::from_utf8(output.stdout).unwrap();
    assert!(stdout.contains("[server.tls]"), "{stdout}");
    assert!(stdout.contains("cert.pem"), "{stdout}");

    let output = run(ca.server_tls().replace("key.pem", "ca.pem"));
    assert!(!output.status.success());
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert!(stderr.contains("server.tls.key"), "{stderr}");
}

/// The audience and host rules of the configuration.
#[tokio::test]
async fn client_configuration_is_validated() {
    let db = crate::helpers::TestDatabase::new().await;
    let registry = |name: &str, url: &str, extra: &str| {
        format!(
            "[[registries]]\nname = \"{name}\"\nupload_url = \"{url}\"\ntoken_prefix = \"{name}_\"\n{extra}\n"
        )
    };
    // Two registries cannot both own a host's PyPI paths.
    let config = registry(
        "a",
        "https://p.test/a/",
        "audience = \"a\"\npypi_paths = true",
    ) + &registry(
        "b",
        "https://p.test/b/",
        "audience = \"b\"\npypi_paths = true",
    );
    match crate::helpers::settings(&config, &db) {
        Err(trustpub::Error::Config { key, .. }) => assert_eq!(key, "registries.1.pypi_paths"),
        other => panic!("{other:?}"),
    }
    // Only cargo registries have a default audience.
    match crate::helpers::settings(&registry("a", "https://p.test/", ""), &db) {
        Err(trustpub::Error::Config { key, reason }) => {
            assert_eq!(key, "registries.0.audience", "{reason}")
        }
        other => panic!("{other:?}"),
    }
    let cargo = registry(
        "c",
        "https://crates.test:8443/index/",
        "ecosystem = \"cargo\"",
    );
    let settings = crate::helpers::settings(&cargo, &db).unwrap();
    assert_eq!(
        settings.registries[0].audience.as_str(),
        "crates.test:8443/index"
    );
    // A derived audience is checked for clashes like a configured one.
    let clash = cargo
        + &registry(
            "d",
            "https://d.test/",
            "audience = \"crates.test:8443/index\"",
        );
    match crate::helpers::settings(&clash, &db) {
        Err(trustpub::Error::Config { key, .. }) => assert_eq!(key, "registries.1.audience"),
        other => panic!("{other:?}"),
    }
}

/// uv's burn: `{"token"}`, no `Content-Type`; 202 whether or not the
/// credential existed.
#[tokio::test]
async fn pypi_burn_token_revokes() {
    let (issuer, app) = prepare().await;
    let minted = to_host(&app, Method::POST, "pypi.acme.test", "/_/oidc/mint-token")
        .body(json!({"token": token(&issuer, "acme-pypi")}).to_string())
        .send()
        .await
        .unwrap();
    let credential = json_ok(minted).await["token"].as_str().unwrap().to_owned();
    let hash = trustpub::tokens::hash(&credential);
    for presented in [credential.as_str(), credential.as_str(), "acme_unknown"] {
        let response = to_host(&app, Method::POST, "pypi.acme.test", "/_/oidc/burn-token")
            .body(json!({"token": presented}).to_string())
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 202);
    }
    assert!(is_revoked(&app, "acme", &hash).await);
    // Another host's registry is not touched, and is not told either.
    let response = post_json(
        &app,
        "elsewhere.test",
        "/_/oidc/burn-token",
        json!({"token": credential}),
    )
    .await;
    problem(response, 404, "no-registry-here").await;
    let response = post_json(&app, "pypi.acme.test", "/_/oidc/burn-token", json!({})).await;
    problem(response, 400, "invalid-payload").await;
}

/// crates-io-auth-action's post step: `DELETE` with the credential as a
/// bearer token; 204 whether or not it existed.
#[tokio::test]
async fn crates_io_delete_revokes() {
    let (issuer, app) = prepare().await;
    let path = "/api/v1/trusted_publishing/tokens";
    let minted = crates_mint(&app, &issuer, "crates.acme.test", path, "crates.acme.test").await;
    let credential = json_ok(minted).await["token"].as_str().unwrap().to_owned();
    let hash = trustpub::tokens::hash(&credential);

    // The credential of one cargo registry is not revoked through another.
    let response =
        delete_with_bearer(&app, "acme.test", &format!("/cargo{path}"), &credential).await;
    assert_eq!(response.status(), 204);
    assert!(!is_revoked(&app, "crates", &hash).await);

    let response = delete_with_bearer(&app, "crates.acme.test", path, &credential).await;
    assert_eq!(response.status(), 204);
    assert!(is_revoked(&app, "crates", &hash).await);

    for authorization in [None, Some("Basic X190b2tlbl9fOng="), Some("Bearer ")] {
        let mut request = to_host(&app, Method::DELETE, "crates.acme.test", path);
        if let Some(value) = authorization {
            request = request.header("authorization", value);
        }
        problem(request.send().await.unwrap(), 401, "missing-credential").await;
    }
}
