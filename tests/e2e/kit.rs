//! The conformance kit's upload probe the whole way: trustpub's upload
//! gateway in front of pypiserver, a real registry that knows nothing of
//! trustpub. With `--probe-upload` every check of the kit passes: the
//! single-use credential uploads once and is refused the second time, the
//! multi-use one uploads twice, and the throw-away distributions land in
//! pypiserver.

use std::net::TcpListener;
use std::time::Duration;

use conformance::checks::{self, Options};
use conformance::issuer::{self, Identity};
use conformance::report::Status;

use crate::helpers::spawn_app_with_port;
use crate::real_clients::Pypiserver;

#[tokio::test]
async fn the_kit_with_its_upload_probe_passes_against_the_gateway_to_pypiserver() {
    let registry = Pypiserver::start().await;
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let issuer_url = format!("http://{}", listener.local_addr().unwrap());
    let signer = issuer::start(listener, &issuer_url);
    let identity = Identity::new(issuer_url);
    let mut upload_url = String::new();
    let _app = spawn_app_with_port(|port| {
        // A space in the path, so that discovery.key-space runs too.
        upload_url = format!("http://127.0.0.1:{port}/pypi index/legacy/");
        format!(
            "{}{}",
            identity.trustpub_toml(&upload_url),
            registry.gateway()
        )
    })
    .await;

    let (upload_url, upload_path) = checks::upload_url(&upload_url).unwrap();
    let options = Options {
        upload_url,
        upload_path,
        trusted_origins: Vec::new(),
        identity,
        burn_endpoint: None,
        timeout: Duration::from_secs(30),
        probe_upload: true,
    };
    let report = checks::run(&options, &signer).await.expect("the kit runs");
    let table = report.table();
    for result in &report.results {
        assert_eq!(result.status, Status::Pass, "{}\n{table}", result.check.id);
    }
    // One single-use upload, two multi-use ones; the refused second
    // single-use upload never reached pypiserver.
    let files = registry.files();
    assert_eq!(files.len(), 3, "{files:?}");
    assert!(
        files
            .iter()
            .all(|f| f.starts_with("widget-0.0.") && f.ends_with(".tar.gz")),
        "{files:?}"
    );
}
