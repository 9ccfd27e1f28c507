//! The upload gateway: uploads to a registry's upload path on trustpub are
//! checked and forwarded to the registry behind it, here a recording
//! stand-in (the end-to-end test with a real pypiserver and uv is
//! `uv_publishes_through_the_gateway_to_pypiserver` in
//! `tests/e2e/real_clients.rs`).

use std::net::TcpListener;
use std::sync::{Arc, Mutex};

use actix_web::{App, HttpRequest, HttpResponse, HttpServer, web};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde_json::{Value, json};
use sha2::Digest;
use trustpub::testing::{TestClaims, TestIssuer, acme_registry_with, trusts_widget};

use crate::fixtures::{mint, mint_on};
use crate::helpers::{TestApp, json_ok, problem, raw_request, refusals, spawn_app};
use crate::metrics::{sample, scrape};

const UPSTREAM_PASSWORD: &str = "upstream-s3cret";

/// What reached the registry stand-in.
#[derive(Debug, Clone)]
struct Received {
    method: String,
    path: String,
    authorization: Option<String>,
    content_type: Option<String>,
    /// `X-Trustpub-Publisher`, `X-Trustpub-Credential-Id` and devpi's own
    /// `X-Devpi-Auth`, when sent.
    publisher: Option<String>,
    credential_id: Option<String>,
    devpi_auth: Option<String>,
    body: Vec<u8>,
}

/// A registry stand-in that records every request and answers `status`.
struct Upstream {
    port: u16,
    received: Arc<Mutex<Vec<Received>>>,
}

impl Upstream {
    fn start(status: u16) -> Self {
        let received = Arc::new(Mutex::new(Vec::new()));
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let log = received.clone();
        let server = HttpServer::new(move || {
            let log = log.clone();
            App::new()
                .app_data(web::PayloadConfig::new(64 * 1024 * 1024))
                .default_service(web::to(move |request: HttpRequest, body: web::Bytes| {
                    let header = |name: &str| {
                        request
                            .headers()
                            .get(name)
                            .map(|v| v.to_str().unwrap().to_owned())
                    };
                    log.lock().unwrap().push(Received {
                        method: request.method().to_string(),
                        path: request.uri().to_string(),
                        authorization: header("authorization"),
                        content_type: header("content-type"),
                        publisher: header("x-trustpub-publisher"),
                        credential_id: header("x-trustpub-credential-id"),
                        devpi_auth: header("x-devpi-auth"),
                        body: body.to_vec(),
                    });
                    async move {
                        HttpResponse::build(actix_web::http::StatusCode::from_u16(status).unwrap())
                            .content_type("text/plain")
                            .body(format!("registry says {status}"))
                    }
                }))
        })
        .workers(1)
        .disable_signals()
        .listen(listener)
        .unwrap()
        .run();
        tokio::spawn(server);
        Upstream { port, received }
    }

    fn received(&self) -> Vec<Received> {
        self.received.lock().unwrap().clone()
    }
}

/// acme (python) with a gateway to `python_upstream`, Basic credentials
/// with the password in `secrets/password` and a 64 KiB limit; `crates`
/// (cargo) with a gateway to `cargo_upstream` and a Bearer token in
/// `secrets/token`; `gateway` (TOML lines) added to acme's gateway.
fn config(
    issuer: &str,
    python_upstream: u16,
    cargo_upstream: u16,
    secrets: &str,
    gateway: &str,
) -> String {
    format!(
        r#"{acme}
[[registries]]
name = "crates"
upload_url = "http://127.0.0.1/cargo/"
audience = "crates-aud"
ecosystem = "cargo"
token_prefix = "crates_"
gateway = {{ upstream = "http://127.0.0.1:{cargo_upstream}/", credential = {{ scheme = "bearer", secret_file = "{secrets}/token" }} }}
{crates_trust}"#,
        acme = acme_registry_with(
            issuer,
            &format!(
                "[registries.gateway]\n\
                 upstream = \"http://127.0.0.1:{python_upstream}/simple-upload/\"\n\
                 max_upload_bytes = 65536\n\
                 credential = {{ scheme = \"basic\", username = \"uploader\", secret_file = \"{secrets}/password\" }}\n\
                 {gateway}\n"
            )
        )
        .replace(
            "https://pypi.acme.test/legacy/",
            "http://127.0.0.1/legacy/"
        ),
        crates_trust = trusts_widget(issuer, r#"["my-crate"]"#),
    )
}

struct Setup {
    issuer: TestIssuer,
    app: TestApp,
    python: Upstream,
    cargo: Upstream,
    secrets: tempfile::TempDir,
}

async fn prepare_with(python_status: u16) -> Setup {
    prepare_configured(python_status, "").await
}

/// [`prepare_with`], with `gateway` (TOML lines) added to acme's gateway;
/// `{secrets}` in them is the secrets' folder.
async fn prepare_configured(python_status: u16, gateway: &str) -> Setup {
    let issuer = TestIssuer::start().await;
    let python = Upstream::start(python_status);
    let cargo = Upstream::start(200);
    let secrets = tempfile::tempdir().unwrap();
    std::fs::write(secrets.path().join("token"), "cargo-upstream-token\n").unwrap();
    std::fs::write(secrets.path().join("password"), UPSTREAM_PASSWORD).unwrap();
    std::fs::write(secrets.path().join("read"), "registry-read-token\n").unwrap();
    let folder = secrets.path().display().to_string();
    let gateway = gateway.replace("{secrets}", &folder);
    let app = spawn_app(&config(
        issuer.url(),
        python.port,
        cargo.port,
        &folder,
        &gateway,
    ))
    .await;
    Setup {
        issuer,
        app,
        python,
        cargo,
        secrets,
    }
}

async fn prepare() -> Setup {
    prepare_with(200).await
}

/// A legacy-API upload body as twine and uv build it: metadata, then the file.
fn python_upload(name: &str, file: &[u8]) -> (String, Vec<u8>) {
    // Wheel file names spell a project's `-` as `_`.
    let wheel_name = name.replace('-', "_");
    let boundary = "trustpubTestBoundary";
    let mut body = Vec::new();
    for (field, value) in [
        (":action", "file_upload"),
        ("protocol_version", "1"),
        ("metadata_version", "2.1"),
        ("name", name),
        ("version", "1.0.0"),
        ("filetype", "bdist_wheel"),
    ] {
        body.extend_from_slice(
            format!(
                "--{boundary}\r\nContent-Disposition: form-data; name=\"{field}\"\r\n\r\n{value}\r\n"
            )
            .as_bytes(),
        );
    }
    body.extend_from_slice(
        format!(
            "--{boundary}\r\nContent-Disposition: form-data; name=\"content\"; \
             filename=\"{wheel_name}-1.0.0-py3-none-any.whl\"\r\n\
             Content-Type: application/octet-stream\r\n\r\n"
        )
        .as_bytes(),
    );
    body.extend_from_slice(file);
    body.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
    (format!("multipart/form-data; boundary={boundary}"), body)
}

impl Setup {
    async fn upload(&self, credential: Option<&str>, name: &str, file: &[u8]) -> reqwest::Response {
        let (content_type, body) = python_upload(name, file);
        let mut request = self
            .app
            .request(reqwest::Method::POST, "/legacy/")
            .header("content-type", content_type)
            .body(body);
        if let Some(credential) = credential {
            request = request.basic_auth("__token__", Some(credential));
        }
        request.send().await.unwrap()
    }

    async fn last_upload_event(&self, registry: &str) -> (String, String, String) {
        let events = self.app.store.events(registry).await.unwrap();
        let last = events
            .iter()
            .rev()
            .find(|e| e.kind == "upload")
            .expect("an upload event");
        (last.outcome.clone(), last.code.clone(), last.detail.clone())
    }
}

#[tokio::test]
async fn an_upload_in_scope_reaches_the_registry_with_the_registrys_credential() {
    let setup = prepare().await;
    let credential = mint(&setup.app, &setup.issuer, json!({})).await;
    let file: Vec<u8> = (0..40_000u32).map(|i| (i % 251) as u8).collect();
    let response = setup
        .upload(Some(&credential), "Widget_Extras", &file)
        .await;
    assert_eq!(response.status(), 200);
    assert_eq!(response.text().await.unwrap(), "registry says 200");

    let received = setup.python.received();
    assert_eq!(received.len(), 1);
    let upload = &received[0];
    assert_eq!(upload.method, "POST");
    assert_eq!(upload.path, "/simple-upload/");
    // The registry's own credential, never the client's.
    let expected = format!(
        "Basic {}",
        STANDARD.encode(format!("uploader:{UPSTREAM_PASSWORD}"))
    );
    assert_eq!(upload.authorization.as_deref(), Some(expected.as_str()));
    // The body arrives byte for byte.
    let (content_type, body) = python_upload("Widget_Extras", &file);
    // With the boundary trustpub read, in a canonical Content-Type.
    assert_eq!(
        content_type,
        "multipart/form-data; boundary=trustpubTestBoundary"
    );
    assert_eq!(
        upload.content_type.as_deref(),
        Some("multipart/form-data; boundary=\"trustpubTestBoundary\"")
    );
    assert_eq!(upload.body, body);

    let (outcome, code, detail) = setup.last_upload_event("acme").await;
    assert_eq!((outcome.as_str(), code.as_str()), ("forwarded", "ok"));
    assert!(detail.contains("package: Widget_Extras"), "{detail}");
    assert!(detail.contains("version: 1.0.0"), "{detail}");
    assert!(detail.contains("upstream status: 200"), "{detail}");

    // A multi-use credential serves another upload.
    let response = setup.upload(Some(&credential), "widget", b"x").await;
    assert_eq!(response.status(), 200);
    assert_eq!(setup.python.received().len(), 2);

    // Each counted as a forwarded upload after a passing check, under no
    // route: the gateway's paths are no routes of trustpub's.
    let text = scrape(&setup.app, &setup.app.address).await;
    let acme = ("registry", "acme");
    for (family, outcome) in [
        ("trustpub_uploads_total", "forwarded"),
        ("trustpub_checks_total", "active"),
    ] {
        assert_eq!(
            sample(&text, family, &[acme, ("outcome", outcome), ("code", "ok")]),
            Some(2.0),
            "{text}"
        );
    }
    assert_eq!(
        sample(
            &text,
            "trustpub_http_requests_total",
            &[("route", "(none)"), ("status", "200")]
        ),
        Some(2.0)
    );
}

#[tokio::test]
async fn what_the_credential_does_not_allow_never_reaches_the_registry() {
    let setup = prepare().await;
    let credential = mint(&setup.app, &setup.issuer, json!({})).await;

    let response = setup.upload(Some(&credential), "gadget", b"wheel").await;
    let document = problem(response, 403, "package-not-allowed").await;
    assert!(document["detail"].as_str().unwrap().contains("gadget"));
    let (outcome, code, _) = setup.last_upload_event("acme").await;
    assert_eq!(
        (outcome.as_str(), code.as_str()),
        ("refused", "package-not-allowed")
    );

    let events = setup.app.store.events("acme").await.unwrap().len();
    problem(
        setup.upload(None, "widget", b"w").await,
        401,
        "missing-credential",
    )
    .await;
    problem(
        setup.upload(Some("acme_unknown"), "widget", b"w").await,
        401,
        "invalid-credential",
    )
    .await;
    // Without a live credential: counted, not kept as events.
    assert_eq!(setup.app.store.events("acme").await.unwrap().len(), events);
    for code in ["missing-credential", "invalid-credential"] {
        assert_eq!(
            refusals(&setup.app, "acme", "upload", code).await,
            1,
            "{code}"
        );
    }
    // A narrowed credential allows only its names.
    let narrow = mint(&setup.app, &setup.issuer, json!({ "packages": ["widget"] })).await;
    problem(
        setup.upload(Some(&narrow), "widget-extras", b"w").await,
        403,
        "package-not-allowed",
    )
    .await;
    // Burned: refused.
    let response = setup
        .app
        .request(reqwest::Method::POST, "/_/trustpub/acme/burn-token")
        .json(&json!({ "token": credential }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 202);
    problem(
        setup.upload(Some(&credential), "widget", b"w").await,
        401,
        "invalid-credential",
    )
    .await;

    assert!(
        setup.python.received().is_empty(),
        "nothing reached the registry"
    );
}

#[tokio::test]
async fn a_single_use_credential_is_consumed_by_its_upload_even_when_the_registry_refuses() {
    let setup = prepare_with(409).await;
    let single = mint(
        &setup.app,
        &setup.issuer,
        json!({ "features": ["single-use-token"] }),
    )
    .await;
    let response = setup.upload(Some(&single), "widget", b"wheel").await;
    // The registry's answer is relayed as it is.
    assert_eq!(response.status(), 409);
    assert_eq!(response.text().await.unwrap(), "registry says 409");
    let (outcome, _, detail) = setup.last_upload_event("acme").await;
    assert_eq!(outcome, "forwarded");
    assert!(detail.contains("upstream status: 409"), "{detail}");

    problem(
        setup.upload(Some(&single), "widget", b"wheel").await,
        401,
        "invalid-credential",
    )
    .await;
    assert_eq!(setup.python.received().len(), 1);
}

#[tokio::test]
async fn malformed_and_oversized_uploads_are_refused_before_the_registry() {
    let setup = prepare().await;
    let credential = mint(&setup.app, &setup.issuer, json!({})).await;

    // Declared larger than the limit.
    let big = vec![b'x'; 70_000];
    problem(
        setup.upload(Some(&credential), "widget", &big).await,
        413,
        "upload-too-large",
    )
    .await;
    // The name after the file.
    let body = "--b\r\nContent-Disposition: form-data; name=\"content\"; filename=\"w.whl\"\r\n\r\n\
                data\r\n--b\r\nContent-Disposition: form-data; name=\"name\"\r\n\r\nwidget\r\n--b--\r\n";
    let response = setup
        .app
        .request(reqwest::Method::POST, "/legacy/")
        .basic_auth("__token__", Some(&credential))
        .header("content-type", "multipart/form-data; boundary=b")
        .body(body)
        .send()
        .await
        .unwrap();
    problem(response, 400, "invalid-upload").await;
    // Not multipart at all.
    let response = setup
        .app
        .request(reqwest::Method::POST, "/legacy/")
        .basic_auth("__token__", Some(&credential))
        .json(&json!({ "name": "widget" }))
        .send()
        .await
        .unwrap();
    problem(response, 400, "invalid-upload").await;
    assert!(setup.python.received().is_empty());

    // Streamed without a length, past the limit: cut off with 413.
    let (content_type, body) = python_upload("widget", &vec![b'y'; 200_000]);
    let chunks: Vec<Result<Vec<u8>, std::io::Error>> =
        body.chunks(8192).map(|c| Ok(c.to_vec())).collect();
    let response = setup
        .app
        .request(reqwest::Method::POST, "/legacy/")
        .basic_auth("__token__", Some(&credential))
        .header("content-type", content_type)
        .body(reqwest::Body::wrap_stream(futures_util::stream::iter(
            chunks,
        )))
        .send()
        .await
        .unwrap();
    problem(response, 413, "upload-too-large").await;

    // Other methods and paths are not uploads.
    let response = setup.app.get("/legacy/").send().await.unwrap();
    problem(response, 404, "not-found").await;
}

#[tokio::test]
async fn an_unreachable_registry_is_502() {
    let setup = prepare().await;
    let credential = mint(&setup.app, &setup.issuer, json!({})).await;
    // A registry whose upstream port has nothing listening.
    let closed = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let app = crate::helpers::spawn_app_on(
        setup.app.db.clone(),
        &config(
            setup.issuer.url(),
            closed,
            closed,
            &setup.secrets.path().display().to_string(),
            "",
        ),
    )
    .await;
    let (content_type, body) = python_upload("widget", b"wheel");
    let response = app
        .request(reqwest::Method::POST, "/legacy/")
        .basic_auth("__token__", Some(&credential))
        .header("content-type", content_type)
        .body(body)
        .send()
        .await
        .unwrap();
    let document = problem(response, 502, "upstream-unavailable").await;
    assert!(!document["detail"].as_str().unwrap().contains("127.0.0.1"));
}

#[tokio::test]
async fn cargo_publishes_are_read_and_forwarded_with_a_bearer_token() {
    let setup = prepare().await;
    let claims = TestClaims::github(setup.issuer.url(), "crates-aud", trustpub::store::now());
    let minted = json_ok(
        setup
            .app
            .request(reqwest::Method::POST, "/_/trustpub/crates/mint-token")
            .json(&json!({ "token": setup.issuer.sign(&claims.build()) }))
            .send()
            .await
            .unwrap(),
    )
    .await;
    let credential = minted["token"].as_str().unwrap();
    let publish = |name: &str| {
        let metadata = json!({ "name": name, "vers": "0.1.0", "deps": [] }).to_string();
        let mut body = (metadata.len() as u32).to_le_bytes().to_vec();
        body.extend_from_slice(metadata.as_bytes());
        body.extend_from_slice(&4u32.to_le_bytes());
        body.extend_from_slice(b"tgz!");
        body
    };
    // cargo sends the token bare in Authorization.
    let send = |name: &str| {
        setup
            .app
            .request(reqwest::Method::PUT, "/cargo/api/v1/crates/new")
            .header("authorization", credential)
            .body(publish(name))
            .send()
    };
    let response = send("My_Crate").await.unwrap();
    assert_eq!(response.status(), 200);
    let received = setup.cargo.received();
    assert_eq!(received.len(), 1);
    assert_eq!(received[0].method, "PUT");
    assert_eq!(received[0].path, "/api/v1/crates/new");
    assert_eq!(
        received[0].authorization.as_deref(),
        Some("Bearer cargo-upstream-token")
    );
    assert_eq!(received[0].body, publish("My_Crate"));

    problem(
        send("other-crate").await.unwrap(),
        403,
        "package-not-allowed",
    )
    .await;
    assert_eq!(setup.cargo.received().len(), 1);
    let event: Value = json!(setup.last_upload_event("crates").await.1);
    assert_eq!(event, "package-not-allowed");
}

#[tokio::test]
async fn uploads_a_registry_could_read_otherwise_never_reach_it() {
    let setup = prepare().await;
    let credential = mint(&setup.app, &setup.issuer, json!({})).await;
    let send = |body: Vec<u8>| {
        setup
            .app
            .request(reqwest::Method::POST, "/legacy/")
            .basic_auth("__token__", Some(&credential))
            .header(
                "content-type",
                "multipart/form-data; boundary=trustpubTestBoundary",
            )
            .body(body)
            .send()
    };
    // A second `name` after the file, in a body small enough to arrive at
    // once, and after a file large enough to stream.
    for size in [10, 40_000] {
        let (_, honest) = python_upload("widget", &vec![b'w'; size]);
        let mut smuggled = honest[..honest.len() - "--trustpubTestBoundary--\r\n".len()].to_vec();
        smuggled.extend_from_slice(
            b"--trustpubTestBoundary\r\nContent-Disposition: form-data; name=\"name\"\r\n\r\n\
              victim\r\n--trustpubTestBoundary--\r\n",
        );
        let response = send(smuggled).await.unwrap();
        problem(response, 400, "invalid-upload").await;
    }
    // Another action than an upload.
    let (_, upload) = python_upload("widget", b"w");
    let removal = String::from_utf8(upload)
        .unwrap()
        .replace("file_upload", "remove_pkg");
    problem(
        send(removal.into_bytes()).await.unwrap(),
        400,
        "invalid-upload",
    )
    .await;
    // The file of another project under an allowed name.
    let (_, upload) = python_upload("widget", b"w");
    let other = String::from_utf8(upload)
        .unwrap()
        .replace("widget-1.0.0-py3", "victim-1.0.0-py3");
    problem(
        send(other.into_bytes()).await.unwrap(),
        400,
        "invalid-upload",
    )
    .await;

    assert!(
        setup.python.received().is_empty(),
        "nothing reached the registry"
    );
    let (outcome, code, _) = setup.last_upload_event("acme").await;
    assert_eq!(
        (outcome.as_str(), code.as_str()),
        ("refused", "invalid-upload")
    );
}

#[tokio::test]
async fn a_generic_registry_names_its_package_in_its_path() {
    let issuer = TestIssuer::start().await;
    let upstream = Upstream::start(201);
    let app = spawn_app(&format!(
        r#"
[[registries]]
name = "files"
upload_url = "http://127.0.0.1/files/"
audience = "files-aud"
ecosystem = "generic"
token_prefix = "files_"
gateway = {{ upstream = "http://127.0.0.1:{port}/store/", package_path = "/files/{{package}}/" }}
{trust}"#,
        port = upstream.port,
        trust = trusts_widget(issuer.url(), r#"["widget"]"#),
    ))
    .await;
    let claims = TestClaims::github(issuer.url(), "files-aud", trustpub::store::now());
    let minted = json_ok(
        app.request(reqwest::Method::POST, "/_/trustpub/files/mint-token")
            .json(&json!({ "token": issuer.sign(&claims.build()) }))
            .send()
            .await
            .unwrap(),
    )
    .await;
    let credential = minted["token"].as_str().unwrap();
    let put = |path: &str| {
        app.request(reqwest::Method::PUT, path)
            .bearer_auth(credential)
            .body("the file")
            .send()
    };
    let response = put("/files/widget/1.0/widget.tar.gz").await.unwrap();
    assert_eq!(response.status(), 201);
    let received = upstream.received();
    assert_eq!(received.len(), 1);
    assert_eq!(received[0].path, "/store/widget/1.0/widget.tar.gz");
    assert_eq!(received[0].body, b"the file");
    assert_eq!(received[0].authorization, None);

    problem(
        put("/files/gadget/1.0/g.tar.gz").await.unwrap(),
        403,
        "package-not-allowed",
    )
    .await;
    // What reaches the registry is the path as it came, never decoded a
    // second time: the registry decodes it once, as trustpub did.
    let response = put("/files/wid%67et/1.1/widget.tar.gz").await.unwrap();
    assert_eq!(response.status(), 201);
    assert_eq!(
        upstream.received()[1].path,
        "/store/wid%67et/1.1/widget.tar.gz"
    );
    // Paths a registry or a proxy could read as another package. (Sent
    // byte for byte: an HTTP client would resolve dot segments first.)
    for tricky in [
        "/files/widget/..%2F..%2Fgadget/g.tar.gz",
        "/files/widget/%252e%252e/gadget/1.0/g.tar.gz",
        "/files/widget/%2e%2e/gadget/1.0/g.tar.gz",
        "/files/widget/../gadget/1.0/g.tar.gz",
        "/files//gadget/1.0/g.tar.gz",
        "/files/widget%2fgadget/1.0/g.tar.gz",
        "/files/widget%00/1.0/g.tar.gz",
    ] {
        let authority = app.address.trim_start_matches("http://");
        let bearer = format!("Bearer {credential}");
        let headers = [("Host", authority), ("Authorization", bearer.as_str())];
        let (status, answer) = raw_request(authority, "PUT", tricky, &headers, "the file").await;
        assert!(
            status == 403 && answer.contains("path-not-allowed"),
            "{tricky}: {answer}"
        );
    }
    problem(put("/files/").await.unwrap(), 400, "invalid-upload").await;
    assert_eq!(upstream.received().len(), 2);
}

/// Two cargo registries on one host that differ only by port: each takes
/// uploads at `/api/v1/crates/new`.
fn two_ports(issuer: &str, a: u16, b: u16, prefix_b: &str) -> String {
    let registry = |name: &str, port: u16, upstream: u16, prefix: &str| {
        format!(
            r#"
[[registries]]
name = "{name}"
upload_url = "http://127.0.0.1:{port}/"
audience = "{name}-aud"
ecosystem = "cargo"
token_prefix = "{prefix}"
gateway = {{ upstream = "http://127.0.0.1:{upstream}/" }}
{trust}"#,
            trust = trusts_widget(issuer, r#"["my-crate"]"#)
        )
    };
    registry("kellnr-a", 8001, a, "ka_") + &registry("kellnr-b", 8002, b, prefix_b)
}

#[tokio::test]
async fn registries_differing_only_by_port_each_take_their_uploads() {
    let issuer = TestIssuer::start().await;
    let (a, b) = (Upstream::start(200), Upstream::start(200));
    let app = spawn_app(&two_ports(issuer.url(), a.port, b.port, "kb_")).await;
    let (for_a, for_b) = (
        mint_on(&app, &issuer, "kellnr-a", "kellnr-a-aud", json!({})).await,
        mint_on(&app, &issuer, "kellnr-b", "kellnr-b-aud", json!({})).await,
    );
    let metadata = json!({ "name": "my-crate", "vers": "0.1.0", "deps": [] }).to_string();
    let mut body = (metadata.len() as u32).to_le_bytes().to_vec();
    body.extend_from_slice(metadata.as_bytes());
    body.extend_from_slice(&4u32.to_le_bytes());
    body.extend_from_slice(b"tgz!");
    let publish = |credential: &str, forwarded_host: &str| {
        app.request(reqwest::Method::PUT, "/api/v1/crates/new")
            .header("authorization", credential.to_owned())
            .header("x-forwarded-host", forwarded_host.to_owned())
            .body(body.clone())
            .send()
    };
    // The proxy forwards the port: it decides.
    assert_eq!(
        publish(&for_a, "127.0.0.1:8001").await.unwrap().status(),
        200
    );
    assert_eq!(
        publish(&for_b, "127.0.0.1:8002").await.unwrap().status(),
        200
    );
    assert_eq!((a.received().len(), b.received().len()), (1, 1));
    // nginx's `$host` drops it: the credential's prefix decides.
    assert_eq!(publish(&for_b, "127.0.0.1").await.unwrap().status(), 200);
    assert_eq!((a.received().len(), b.received().len()), (1, 2));
    // A's credential on B's port is B's refusal, and never reaches A.
    problem(
        publish(&for_a, "127.0.0.1:8002").await.unwrap(),
        401,
        "invalid-credential",
    )
    .await;
    // Neither port nor prefix tells: refused, and nothing forwarded.
    problem(
        publish("someone-elses-token", "127.0.0.1").await.unwrap(),
        403,
        "no-registry-for-request",
    )
    .await;
    assert_eq!((a.received().len(), b.received().len()), (1, 2));
}

/// Forward-auth tells the same two registries apart as the gateway does:
/// by the port in the forwarded host, or in `X-Forwarded-Port`; never by
/// the credential's prefix, which would let a credential choose the
/// registry it is checked for.
#[tokio::test]
async fn forward_auth_tells_registries_on_one_host_apart_by_port() {
    let issuer = TestIssuer::start().await;
    let app = spawn_app(&two_ports(issuer.url(), 9, 9, "kb_")).await;
    let (for_a, for_b) = (
        mint_on(&app, &issuer, "kellnr-a", "kellnr-a-aud", json!({})).await,
        mint_on(&app, &issuer, "kellnr-b", "kellnr-b-aud", json!({})).await,
    );
    let check = |credential: &str, host: &str, port: Option<&str>| {
        let mut request = app
            .get("/_/trustpub/auth")
            .header("x-forwarded-host", host.to_owned())
            .header("x-forwarded-uri", "/api/v1/crates/my/-c/my-crate")
            .header("authorization", credential.to_owned());
        if let Some(port) = port {
            request = request.header("x-forwarded-port", port.to_owned());
        }
        request.send()
    };
    for (credential, host, port, registry) in [
        (&for_a, "127.0.0.1:8001", None, "kellnr-a"),
        (&for_b, "127.0.0.1:8002", None, "kellnr-b"),
        (&for_a, "127.0.0.1", Some("8001"), "kellnr-a"),
        (&for_b, "127.0.0.1", Some("8002"), "kellnr-b"),
        // The port in the host is what the client asked for.
        (&for_b, "127.0.0.1:8002", Some("8001"), "kellnr-b"),
    ] {
        let response = check(credential, host, port).await.unwrap();
        assert_eq!(response.status(), 200, "{host} {port:?}");
        assert_eq!(response.headers()["x-trustpub-registry"], registry);
    }
    // A's credential at B's port is checked as B's, and refused.
    problem(
        check(&for_a, "127.0.0.1:8002", None).await.unwrap(),
        401,
        "invalid-credential",
    )
    .await;
    // Without a port, nothing tells them apart: the credential does not.
    let response = check(&for_a, "127.0.0.1", None).await.unwrap();
    let refusal = problem(response, 403, "no-registry-for-request").await;
    assert!(
        refusal["detail"]
            .as_str()
            .unwrap()
            .contains("X-Forwarded-Port"),
        "{refusal}"
    );
}

#[tokio::test]
async fn check_config_refuses_gateways_on_one_host_it_could_not_tell_apart() {
    let db = crate::helpers::TestDatabase::new().await;
    let config = two_ports("https://token.actions.githubusercontent.com", 9, 9, "ka_b_");
    match crate::helpers::settings(&config, &db) {
        Err(trustpub::Error::Config { key, reason }) => {
            assert_eq!(key, "registries.1.token_prefix");
            assert!(
                reason.starts_with(
                    "the registry \"kellnr-b\"'s \"ka_b_\" and the registry \"kellnr-a\"'s \"ka_\""
                ),
                "{reason}"
            );
        }
        other => panic!("expected a configuration error, got {other:?}"),
    }
}

/// Gateways on one host told apart by port, one passing foreign
/// credentials through: valid, but only the port can route a foreign
/// credential, which check-config says.
#[tokio::test]
async fn check_config_warns_when_only_the_port_routes_a_passed_through_upload() {
    let db = crate::helpers::TestDatabase::new().await;
    let issuer = "https://token.actions.githubusercontent.com";
    let warnings = |config: &str| {
        trustpub::config::routing_warnings(
            &crate::helpers::settings(config, &db).unwrap().registries,
        )
    };
    assert_eq!(
        warnings(&two_ports(issuer, 9, 9, "kb_")),
        Vec::<String>::new()
    );
    let passing = two_ports(issuer, 9, 9, "kb_").replacen(
        "gateway = { upstream",
        "gateway = { pass_through_foreign_credentials = true, upstream",
        1,
    );
    let warned = warnings(&passing);
    assert_eq!(warned.len(), 1, "{warned:?}");
    assert!(
        warned[0]
            .starts_with("the registries \"kellnr-a\" and \"kellnr-b\" have gateways on 127.0.0.1")
            && warned[0].contains("\"kellnr-a\" passes foreign credentials through")
            && warned[0].contains("X-Forwarded-Port"),
        "{warned:?}"
    );
}

#[tokio::test]
async fn uploads_without_a_credential_of_the_registry_pass_through_when_enabled() {
    let setup = prepare_configured(200, "pass_through_foreign_credentials = true").await;
    // A user's own registry token, and devpi's own client (X-Devpi-Auth,
    // no Authorization): forwarded as they came, for the registry to judge.
    let response = setup
        .upload(Some("pypi-own-user-token"), "gadget", b"x")
        .await;
    assert_eq!(response.status(), 200);
    let (content_type, body) = python_upload("anything", b"y");
    let response = setup
        .app
        .request(reqwest::Method::POST, "/legacy/")
        .header("content-type", content_type.clone())
        .header("x-devpi-auth", "dXNlcjpzZXNzaW9u")
        .body(body.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let received = setup.python.received();
    assert_eq!(received.len(), 2);
    let own = format!("Basic {}", STANDARD.encode("__token__:pypi-own-user-token"));
    assert_eq!(received[0].authorization.as_deref(), Some(own.as_str()));
    assert_eq!(received[1].authorization, None);
    assert_eq!(received[1].devpi_auth.as_deref(), Some("dXNlcjpzZXNzaW9u"));
    assert_eq!(
        received[1].content_type.as_deref(),
        Some(content_type.as_str())
    );
    assert_eq!(received[1].body, body);
    // Counted, not kept one event each: nothing proved who sent them.
    assert_eq!(
        refusals(&setup.app, "acme", "upload", "passed-through").await,
        2
    );
    let text = scrape(&setup.app, &setup.app.address).await;
    assert_eq!(
        sample(
            &text,
            "trustpub_uploads_total",
            &[
                ("registry", "acme"),
                ("outcome", "forwarded"),
                ("code", "passed-through")
            ]
        ),
        Some(2.0)
    );

    // A credential with this registry's prefix is never passed through:
    // it is checked, and refused when it is not live.
    let response = setup
        .upload(Some("acme_not-a-live-credential"), "widget", b"x")
        .await;
    problem(response, 401, "invalid-credential").await;
    assert_eq!(setup.python.received().len(), 2);
}

#[tokio::test]
async fn foreign_credentials_are_refused_without_pass_through() {
    let setup = prepare().await;
    let response = setup
        .upload(Some("pypi-own-user-token"), "widget", b"x")
        .await;
    problem(response, 401, "invalid-credential").await;
    assert!(setup.python.received().is_empty());
}

#[tokio::test]
async fn identity_headers_tell_the_registry_who_published_when_enabled() {
    let setup = prepare_configured(200, "identity_headers = true").await;
    let credential = mint(&setup.app, &setup.issuer, json!({})).await;
    let response = setup.upload(Some(&credential), "widget", b"x").await;
    assert_eq!(response.status(), 200);
    let received = setup.python.received();
    assert_eq!(
        received[0].publisher.as_deref(),
        Some("github:octo-org/widget")
    );
    let id = hex::encode(sha2::Sha256::digest(credential.as_bytes()));
    assert_eq!(received[0].credential_id.as_deref(), Some(id.as_str()));

    // Off by default.
    let setup = prepare().await;
    let credential = mint(&setup.app, &setup.issuer, json!({})).await;
    setup.upload(Some(&credential), "widget", b"x").await;
    let received = setup.python.received();
    assert_eq!(
        (
            received[0].publisher.as_ref(),
            received[0].credential_id.as_ref()
        ),
        (None, None)
    );
}

#[tokio::test]
async fn forward_auth_hands_the_registrys_read_credential_to_the_proxy() {
    let setup = prepare_configured(
        200,
        "read_credential = { scheme = \"bearer\", secret_file = \"{secrets}/read\" }",
    )
    .await;
    let credential = mint(&setup.app, &setup.issuer, json!({})).await;
    let read = |credential: &str| {
        setup
            .app
            .get("/_/trustpub/auth")
            .header("X-Trustpub-Registry", "acme")
            .header("X-Forwarded-Method", "GET")
            .header("X-Original-URI", "/simple/anything/")
            .bearer_auth(credential.to_owned())
            .send()
    };
    let events_before = setup.app.store.events("acme").await.unwrap().len();
    for _ in 0..3 {
        let response = read(&credential).await.unwrap();
        assert_eq!(response.status(), 200);
        assert_eq!(
            response.headers()["x-trustpub-upstream-authorization"],
            "Bearer registry-read-token"
        );
    }
    // Reads are counted, not kept one event each.
    assert_eq!(
        setup.app.store.events("acme").await.unwrap().len(),
        events_before
    );
    assert_eq!(refusals(&setup.app, "acme", "check", "read").await, 3);
    // Each is in the metrics as it happens.
    let text = scrape(&setup.app, &setup.app.address).await;
    assert_eq!(
        sample(
            &text,
            "trustpub_checks_total",
            &[
                ("registry", "acme"),
                ("outcome", "active"),
                ("code", "read")
            ]
        ),
        Some(3.0)
    );
    // Not a live credential: refused, and the read credential not told.
    let response = read("acme_not-live").await.unwrap();
    assert!(
        response
            .headers()
            .get("x-trustpub-upstream-authorization")
            .is_none()
    );
    problem(response, 401, "invalid-credential").await;
    // The read credential cannot be read: 502 before anything is let through.
    std::fs::remove_file(setup.secrets.path().join("read")).unwrap();
    problem(
        read(&credential).await.unwrap(),
        502,
        "upstream-unavailable",
    )
    .await;
}
