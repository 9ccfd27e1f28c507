//! A trustpub started in-process on a fresh SQLite database, the kit's
//! issuer, and a run of the kit.

use std::net::TcpListener;
use std::sync::Arc;
use std::time::Duration;

use conformance::checks::{self, Options};
use conformance::issuer::{self, Identity};
use conformance::report::Report;
use trustpub::testing::{TestIssuer, TestServer};

/// The kit's issuer on a random loopback port.
pub fn kit_issuer() -> Arc<TestIssuer> {
    let (listener, url) = bind();
    Arc::new(issuer::start(listener, &url))
}

/// A registry table trusting `issuer`, from the kit's own trustpub snippet,
/// renamed so that several can live in one configuration.
pub fn registry(issuer: &str, name: &str, upload_url: &str) -> String {
    Identity::new(issuer.to_owned())
        .trustpub_toml(upload_url)
        .replace("name = \"conformance\"", &format!("name = \"{name}\""))
        .replace(
            &format!("audience = \"{}\"", issuer::SNIPPET_AUDIENCE),
            &format!("audience = \"{}\"", audience_of(name)),
        )
}

/// [`registry`] with an upload gateway forwarding its uploads to
/// `upstream`, so that the upload probe can run.
pub fn registry_with_gateway(issuer: &str, name: &str, upload_url: &str, upstream: &str) -> String {
    format!(
        "{}\n[registries.gateway]\nupstream = \"{upstream}\"\n",
        registry(issuer, name, upload_url)
    )
}

/// A package index that stores nothing and accepts every upload (200): the
/// upstream of trustpub's gateway in the kit's tests. Its URL.
pub fn accepting_index() -> String {
    let (listener, url) = bind();
    let server = actix_web::HttpServer::new(|| {
        actix_web::App::new().default_service(actix_web::web::to(actix_web::HttpResponse::Ok))
    })
    .workers(1)
    .disable_signals()
    .listen(listener)
    .expect("the index listens")
    .run();
    tokio::spawn(server);
    format!("{url}/")
}

/// The audience [`registry`] gives a registry.
pub fn audience_of(name: &str) -> String {
    format!("aud-{name}")
}

/// A loopback listener on a random port, and its `http://` address.
pub fn bind() -> (TcpListener, String) {
    let listener = TcpListener::bind("127.0.0.1:0").expect("a free port");
    let address = format!("http://127.0.0.1:{}", listener.local_addr().unwrap().port());
    (listener, address)
}

/// Starts trustpub (the real server, from its library) on `listener` with
/// `registries`, on a fresh SQLite database.
pub async fn start_trustpub(listener: TcpListener, registries: &str) -> TestServer {
    TestServer::start(listener, registries).await
}

/// Runs the kit against `upload_url`, as `issuer`.
pub async fn run_kit(upload_url: &str, issuer: &TestIssuer) -> Report {
    run_kit_trusting(upload_url, issuer, &[]).await
}

/// [`run_kit`], with `--trusted-origin` for each of `trusted_origins`.
pub async fn run_kit_trusting(
    upload_url: &str,
    issuer: &TestIssuer,
    trusted_origins: &[&str],
) -> Report {
    let (upload_url, upload_path) = checks::upload_url(upload_url).unwrap();
    let options = Options {
        upload_url,
        upload_path,
        trusted_origins: trusted_origins
            .iter()
            .map(|origin| checks::trusted_origin(origin).unwrap())
            .collect(),
        identity: Identity::new(issuer.url().to_owned()),
        burn_endpoint: None,
        timeout: Duration::from_secs(10),
        probe_upload: true,
    };
    checks::run(&options, issuer).await.expect("the kit runs")
}
