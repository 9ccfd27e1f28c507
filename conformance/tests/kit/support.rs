//! A trustpub started in-process on a fresh SQLite database, the kit's
//! issuer, and a run of the kit.

use std::net::TcpListener;
use std::time::Duration;

use conformance::checks::{self, Options};
use conformance::issuer::Identity;
use conformance::report::Report;
use trustpub::testing::{TestIssuer, TestServer};

pub use conformance::broken::{accepting_index, bind, kit_issuer, registry, registry_with_gateway};

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
