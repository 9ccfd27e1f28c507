//! Forward-auth end to end: Debian's nginx, started by the test, protects a
//! registry location with `auth_request` against trustpub. The "registry"
//! behind it is a small HTTP server that counts what reaches it.
//!
//! nginx must be installed (`.ci/setup` installs it); the test fails, not
//! skips, without it.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use actix_web::HttpResponse;
use base64::Engine;
use serde_json::json;
use trustpub::store::now;

use crate::fixtures::{burn, mint, prepare, stored_credential};
use crate::helpers::{TestApp, json_ok, raw_request, serve, terminate};

/// An upload path of `widget`, as acme's `forward_auth.package_path`
/// (`/legacy/packages/{package}/`) names it.
const WIDGET: &str = "/legacy/packages/widget/1.0/";

/// nginx in the foreground with its own prefix; stopped on drop.
pub struct Nginx {
    child: Child,
    pub port: u16,
    dir: tempfile::TempDir,
}

impl Drop for Nginx {
    /// SIGTERM, so that the master stops its workers too (SIGKILL would
    /// leave them running).
    fn drop(&mut self) {
        terminate(&self.child);
        let _ = self.child.wait();
    }
}

fn nginx_binary() -> PathBuf {
    let on_path = std::env::var_os("PATH")
        .into_iter()
        .flat_map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
        .chain([PathBuf::from("/usr/sbin")])
        .map(|dir| dir.join("nginx"))
        .find(|p| p.is_file());
    on_path.expect("nginx is not installed; run .ci/setup (it installs Debian's nginx-light)")
}

fn is_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("Uid:"))
                .map(|l| l.split_whitespace().nth(1) == Some("0"))
        })
        .unwrap_or(false)
}

/// The first `nginx` block of `docs/src/<page>` that starts with `start`,
/// as it is written there, each of `replacements` made (and required).
pub fn documented_nginx(page: &str, start: &str, replacements: &[(&str, String)]) -> String {
    let docs = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("docs/src")
            .join(page),
    )
    .unwrap();
    let fence = format!("```nginx\n{start}");
    let begin = docs
        .find(&fence)
        .unwrap_or_else(|| panic!("{page} has a block {start:?}"))
        + 9;
    let end = begin + docs[begin..].find("```").unwrap();
    let mut block = docs[begin..end].to_owned();
    for (documented, here) in replacements {
        assert!(
            block.contains(documented),
            "the documented block has {documented:?}"
        );
        block = block.replace(documented, here);
    }
    block
}

/// The forward-auth configuration of `docs/src/registry-side.md`, as it is
/// written there, with the test's ports and plain http.
fn forward_auth_server(port: u16, trustpub: &str, upstream: u16) -> String {
    documented_nginx(
        "registry-side.md",
        "server {",
        &[
            ("listen 443 ssl;", format!("listen 127.0.0.1:{port};")),
            (
                "    # ssl_certificate …; ssl_certificate_key …;\n",
                String::new(),
            ),
            ("http://127.0.0.1:8080", trustpub.to_owned()),
            (
                "http://127.0.0.1:3141",
                format!("http://127.0.0.1:{upstream}"),
            ),
        ],
    )
}

/// A whole configuration around `server`, with a private prefix in `dir`.
fn nginx_config(dir: &Path, server: &str) -> String {
    let dir = dir.display();
    let user = if is_root() { "user root;" } else { "" };
    format!(
        r#"{user}
worker_processes 1;
error_log {dir}/error.log warn;
pid {dir}/nginx.pid;
events {{ worker_connections 64; }}
http {{
  access_log off;
  client_body_temp_path {dir}/body;
  proxy_temp_path {dir}/proxy;
  fastcgi_temp_path {dir}/fastcgi;
  uwsgi_temp_path {dir}/uwsgi;
  scgi_temp_path {dir}/scgi;
{server}
}}
"#
    )
}

/// A free loopback port, for nginx to listen on.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

async fn start_nginx(trustpub: &str, upstream: u16) -> Nginx {
    let port = free_port();
    start_nginx_server(port, &forward_auth_server(port, trustpub, upstream)).await
}

/// nginx listening on `port` with this `server` block.
pub async fn start_nginx_server(port: u16, server: &str) -> Nginx {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let config = dir.path().join("nginx.conf");
    std::fs::write(&config, nginx_config(dir.path(), server)).unwrap();
    let child = Command::new(nginx_binary())
        .arg("-p")
        .arg(dir.path())
        .arg("-c")
        .arg(&config)
        .arg("-e")
        .arg(dir.path().join("error.log"))
        .args(["-g", "daemon off;"])
        .stdin(Stdio::null())
        .spawn()
        .expect("nginx starts");
    let nginx = Nginx { child, port, dir };
    // nginx binds its own socket: wait until it accepts connections.
    let deadline = Instant::now() + Duration::from_secs(10);
    while tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .is_err()
    {
        let log = std::fs::read_to_string(nginx.dir.path().join("error.log")).unwrap_or_default();
        assert!(Instant::now() < deadline, "nginx did not start: {log}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    nginx
}

/// A registry stand-in that answers 201 to everything and counts requests.
fn start_upstream() -> (u16, Arc<AtomicUsize>) {
    let hits = Arc::new(AtomicUsize::new(0));
    let counter = hits.clone();
    let port = serve(move |_| {
        counter.fetch_add(1, Ordering::SeqCst);
        HttpResponse::Created().body("stored")
    });
    (port, hits)
}

struct Setup {
    app: TestApp,
    issuer: trustpub::testing::TestIssuer,
    nginx: Nginx,
    hits: Arc<AtomicUsize>,
}

impl Setup {
    async fn new() -> Self {
        let (issuer, app) = prepare().await;
        let (upstream, hits) = start_upstream();
        let nginx = start_nginx(&app.address, upstream).await;
        Setup {
            app,
            issuer,
            nginx,
            hits,
        }
    }

    /// An upload through nginx, as twine or uv send it: Basic auth with
    /// `__token__`, to the registry's host.
    async fn upload(&self, path: &str, credential: Option<&str>) -> u16 {
        self.upload_with(path, credential, &[]).await
    }

    /// [`Setup::upload`] with extra headers, as a client could add them.
    async fn upload_with(
        &self,
        path: &str,
        credential: Option<&str>,
        headers: &[(&str, &str)],
    ) -> u16 {
        let mut request = self
            .app
            .client
            .post(format!("http://127.0.0.1:{}{path}", self.nginx.port))
            .header("Host", "pypi.acme.test")
            .body("a wheel");
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        if let Some(credential) = credential {
            request = request.basic_auth("__token__", Some(credential));
        }
        request.send().await.unwrap().status().as_u16()
    }

    fn hits(&self) -> usize {
        self.hits.load(Ordering::SeqCst)
    }
}

#[tokio::test]
async fn nginx_lets_uploads_through_exactly_while_the_credential_is_valid() {
    let setup = Setup::new().await;

    // Minting works through nginx, on the registry's host.
    let minted = json_ok(
        setup
            .app
            .client
            .post(format!(
                "http://127.0.0.1:{}/_/trustpub/acme/mint-token",
                setup.nginx.port
            ))
            .header("Host", "pypi.acme.test")
            .json(&json!({ "token": setup.issuer.sign(
                &trustpub::testing::TestClaims::github(
                    setup.issuer.url(),
                    trustpub::testing::ACME_AUDIENCE,
                    now(),
                )
                .build()
            ) }))
            .send()
            .await
            .unwrap(),
    )
    .await;
    let multi = minted["token"].as_str().unwrap().to_owned();

    // No credential, or a wrong one: refused, the registry never sees it.
    assert_eq!(setup.upload(WIDGET, None).await, 401);
    assert_eq!(setup.upload(WIDGET, Some("acme_forged")).await, 401);
    assert_eq!(setup.hits(), 0);

    // A multi-use credential serves several uploads.
    assert_eq!(setup.upload(WIDGET, Some(&multi)).await, 201);
    assert_eq!(setup.upload(WIDGET, Some(&multi)).await, 201);
    assert_eq!(setup.hits(), 2);

    // Never for a package outside its scope, when the path names it.
    assert_eq!(
        setup
            .upload("/legacy/packages/gadget/1.0/", Some(&multi))
            .await,
        403
    );
    assert_eq!(
        setup
            .upload("/legacy/packages/widget-cli/1.0/", Some(&multi))
            .await,
        201
    );
    assert_eq!(setup.hits(), 3);

    // Headers a client adds to choose the registry, the package or the path
    // are not believed: the nginx configuration sets or clears them.
    let other =
        crate::fixtures::mint_on(&setup.app, &setup.issuer, "other", "other-aud", json!({})).await;
    for headers in [
        &[("X-Trustpub-Registry", "other")][..],
        &[("Forwarded", "host=other.acme.test")][..],
        &[("X-Forwarded-Host", "other.acme.test")][..],
    ] {
        assert_eq!(setup.upload_with(WIDGET, Some(&other), headers).await, 401);
    }
    for headers in [
        &[("X-Trustpub-Package", "widget")][..],
        &[("X-Forwarded-Uri", "/legacy/packages/widget/1.0/")][..],
    ] {
        let path = "/legacy/packages/gadget/1.0/";
        assert_eq!(setup.upload_with(path, Some(&multi), headers).await, 403);
    }
    assert_eq!(setup.hits(), 3);

    // Revoked: refused at once.
    assert_eq!(burn(&setup.app, "acme", &multi).await.status(), 202);
    assert_eq!(setup.upload(WIDGET, Some(&multi)).await, 401);

    // A single-use credential serves its first upload only.
    let single = mint(
        &setup.app,
        &setup.issuer,
        json!({ "features": ["single-use-token"] }),
    )
    .await;
    assert_eq!(setup.upload(WIDGET, Some(&single)).await, 201);
    assert_eq!(setup.upload(WIDGET, Some(&single)).await, 401);
    assert_eq!(setup.hits(), 4);

    // Expired: refused.
    let t = now();
    let expired = stored_credential(&setup.app, t - 1000, t - 1).await;
    assert_eq!(setup.upload(WIDGET, Some(&expired)).await, 401);
    assert_eq!(setup.hits(), 4);
}

/// An upload through nginx written byte for byte, so that the request
/// target reaches nginx exactly as given; answers nginx's status code.
async fn raw_upload(port: u16, target: &str, credential: &str) -> u16 {
    use base64::Engine;
    let basic = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("__token__:{credential}"))
    );
    let headers = [
        ("Host", "pypi.acme.test"),
        ("Authorization", basic.as_str()),
    ];
    let authority = format!("127.0.0.1:{port}");
    raw_request(&authority, "POST", target, &headers, "a wheel")
        .await
        .0
}

/// With `forward_auth.package_path`, a write whose path does not fit the
/// template exactly is refused: nginx merges slashes and resolves dot
/// segments before it forwards, so such a path can name another package to
/// the registry than trustpub could read in it.
#[tokio::test]
async fn nginx_never_forwards_a_write_whose_path_trustpub_could_not_read() {
    let setup = Setup::new().await;
    let credential = mint(&setup.app, &setup.issuer, json!({})).await;
    assert_eq!(raw_upload(setup.nginx.port, WIDGET, &credential).await, 201);
    assert_eq!(setup.hits(), 1);
    for target in [
        "//legacy/packages/gadget/1.0/",
        "/legacy//packages/gadget/1.0/",
        "/legacy/packages//gadget/1.0/",
        "/legacy/Packages/gadget/1.0/",
        "/legacy/packages/widget/../gadget/1.0/",
        "/legacy/packages/widget/%2e%2e/gadget/1.0/",
        "/legacy/packages/widget/%252e%252e/gadget/1.0/",
        "/legacy/./packages/gadget/1.0/",
        "/legacy/packages/widget%2f..%2fgadget/1.0/",
        "/legacy/packages/",
        "/legacy/",
        // Outside the protected location: the documented configuration lets
        // only reads through there.
        "/legacy",
        "/",
        "/Legacy/packages/gadget/1.0/",
        "/simple/gadget/",
        "http://pypi.acme.test/legacy/packages/gadget/1.0/",
        "http://pypi.acme.test//legacy/packages/gadget/1.0/",
    ] {
        let status = raw_upload(setup.nginx.port, target, &credential).await;
        // Refused, or (`/legacy`) redirected by nginx itself; never passed on.
        assert!(
            [301, 400, 403].contains(&status),
            "{target} was answered {status}"
        );
    }
    assert_eq!(setup.hits(), 1, "nothing else reached the registry");
    // trustpub counted its refusals.
    let counts = setup.app.store.refusal_counts("acme").await.unwrap();
    assert!(
        counts
            .iter()
            .any(|c| c.kind == "check" && c.code == "path-not-allowed" && c.count >= 10),
        "{counts:?}"
    );
}

/// The nginx alternative to `pass_through_foreign_credentials` in
/// `docs/src/registry-side.md`, as written there: an upload goes to
/// trustpub exactly when its `Authorization` carries the prefix `acme_` in
/// one of the shapes clients send (cargo's bare token, Bearer, Python's
/// Basic `__token__`), and to the registry otherwise.
#[tokio::test]
async fn the_documented_map_routes_uploads_by_the_credentials_prefix() {
    let trustpub = serve(|_| HttpResponse::Ok().body("trustpub"));
    let registry = serve(|_| HttpResponse::Ok().body("registry"));
    let port = free_port();
    let block = documented_nginx(
        "registry-side.md",
        "map $http_authorization $upload_to {",
        &[
            ("listen 443 ssl;", format!("listen 127.0.0.1:{port};")),
            (
                "http://127.0.0.1:8080",
                format!("http://127.0.0.1:{trustpub}"),
            ),
            (
                "http://127.0.0.1:3141",
                format!("http://127.0.0.1:{registry}"),
            ),
        ],
    );
    let _nginx = start_nginx_server(port, &block).await;
    let basic = |user: &str, password: &str| {
        format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"))
        )
    };
    let credential = "acme_Z3JhbmRvbS1ieXRlcy1vZi1hLWNyZWRlbnRpYWw";
    for (authorization, to) in [
        (Some(credential.to_owned()), "trustpub"),
        (Some(format!("Bearer {credential}")), "trustpub"),
        (Some(format!("bearer {credential}")), "trustpub"),
        (Some(basic("__token__", credential)), "trustpub"),
        // Every length of what follows the prefix: base64 has no padding
        // or group boundary that moves the prefix's characters.
        (Some(basic("__token__", "acme_x")), "trustpub"),
        (Some(basic("__token__", "acme_xy")), "trustpub"),
        (Some(basic("__token__", "acme_xyz")), "trustpub"),
        (Some("cio_a-users-own-cargo-token".to_owned()), "registry"),
        (Some(basic("__token__", "pypi-AgEIcHlwaS5vcmc")), "registry"),
        (Some(basic("__token__", "acme")), "registry"),
        (Some(basic("alice", credential)), "registry"),
        (Some(format!("Bearer cio_{credential}")), "registry"),
        (None, "registry"),
    ] {
        let mut request = reqwest::Client::new()
            .post(format!("http://127.0.0.1:{port}/legacy/"))
            .body("an upload");
        if let Some(authorization) = &authorization {
            request = request.header("Authorization", authorization);
        }
        let response = request.send().await.unwrap();
        assert_eq!(response.status(), 200, "{authorization:?}");
        assert_eq!(response.text().await.unwrap(), to, "{authorization:?}");
    }
}
