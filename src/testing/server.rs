//! trustpub itself, started from its library in the test's runtime, for
//! tests of programs that talk to it over HTTP (the conformance kit, the
//! client).

use std::net::TcpListener;

use crate::config::Settings;
use crate::startup::Application;

/// A trustpub serving on a listener; its SQLite database lives in a
/// temporary directory, removed on drop.
pub struct TestServer {
    _dir: tempfile::TempDir,
}

impl TestServer {
    /// Starts trustpub on `listener` with `config` (TOML: registries, and
    /// any other section but `[database]` and `[log]`) on a fresh SQLite
    /// database. Must run inside a Tokio runtime.
    pub async fn start(listener: TcpListener, config: &str) -> Self {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let path = dir.path().join("trustpub.toml");
        let config = format!(
            "[database]\nurl = \"sqlite://{}/trustpub.db\"\n\n[log]\nfilter = \"warn\"\n\n{config}",
            dir.path().display()
        );
        std::fs::write(&path, config).expect("writing the configuration");
        let settings = Settings::load(Some(&path)).expect("a valid configuration");
        let application = Application::build_with_listener(&settings, listener)
            .await
            .expect("trustpub starts");
        tokio::spawn(application.run_until_stopped());
        TestServer { _dir: dir }
    }
}
