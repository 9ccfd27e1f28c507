//! Configuration: layering and the validation an operator relies on.

use figment::Jail;
use trustpub::Error;
use trustpub::config::{LogFormat, Settings};

use crate::helpers::{REGISTRIES, TestDatabase, settings};

/// A registry with one issuer and publisher; tests replace parts of it.
const VALID: &str = r#"
[[registries]]
name = "acme"
upload_url = "https://pypi.acme.test/legacy/"
audience = "acme-pypi"
token_lifetime = 900
token_prefix = "acme_"
features = ["multi-use-token", "single-use-token"]
default_features = ["multi-use-token"]

  [[registries.issuers]]
  url = "https://token.actions.githubusercontent.com"
  provider = "github"

  [[registries.publishers]]
  provider = "github"
  issuer = "https://token.actions.githubusercontent.com"
  repository = "octo-org/widget"
  repository_owner_id = "9919"
  workflow = "release.yml"
  packages = ["widget"]
"#;

const SECOND: &str = r#"
[[registries]]
name = "beta"
upload_url = "https://pypi.beta.test/legacy/"
audience = "beta"
token_prefix = "beta_"
"#;

async fn invalid(config: &str) -> (String, String) {
    let db = TestDatabase::new().await;
    match settings(config, &db) {
        Err(Error::Config { key, reason }) => (key, reason),
        other => panic!("expected a configuration error, got {other:?}"),
    }
}

#[tokio::test]
async fn the_examples_are_valid() {
    let db = TestDatabase::new().await;
    let example = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/examples/trustpub.toml"
    ))
    .unwrap();
    assert_eq!(settings(&example, &db).unwrap().registries.len(), 1);
    assert_eq!(settings(VALID, &db).unwrap().registries.len(), 1);
    assert_eq!(settings(REGISTRIES, &db).unwrap().registries.len(), 3);
}

#[tokio::test]
async fn each_invalid_value_names_its_key_and_reason() {
    let cases: Vec<(String, &str, &str)> = vec![
        (
            VALID.replace("token_lifetime = 900", "token_lifetime = 899"),
            "registries.0.token_lifetime",
            "900..=21600",
        ),
        (
            VALID.replace("token_lifetime = 900", "token_lifetime = 21601"),
            "registries.0.token_lifetime",
            "900..=21600",
        ),
        (
            VALID.replace("\"single-use-token\"]", "\"teleport-token\"]"),
            "registries.0.features.1",
            "unknown value \"teleport-token\" (known: multi-use-token, single-use-token)",
        ),
        (
            VALID.replace("\"single-use-token\"]", "\"single-use-tokens\"]"),
            "registries.0.features.1",
            "unknown value \"single-use-tokens\"; did you mean \"single-use-token\"?",
        ),
        (
            VALID.replace(
                "features = [\"multi-use-token\", \"single-use-token\"]",
                "features = [\"single-use-token\"]",
            ),
            "registries.0.default_features",
            "not among the registry's features",
        ),
        (
            format!(
                "{VALID}{}",
                SECOND.replace("\"beta\"\nupload", "\"acme\"\nupload")
            ),
            "registries.1.name",
            "the registry name \"acme\" is used twice",
        ),
        (
            format!(
                "{VALID}{}",
                SECOND.replace("pypi.beta.test/legacy/", "PYPI.acme.test/legacy")
            ),
            "registries.1.upload_url",
            "same host and upload path as the registry \"acme\"",
        ),
        (
            VALID.replace("https://pypi.acme.test/legacy/", "https//pypi.acme.test"),
            "registries.0.upload_url",
            "not a valid URL",
        ),
        (
            VALID.replace(
                "https://pypi.acme.test/legacy/",
                "http://pypi.acme.test/legacy/",
            ),
            "registries.0.upload_url",
            "https",
        ),
        (
            VALID.replace(
                "url = \"https://token.actions.githubusercontent.com\"",
                "url = \"http://token.actions.githubusercontent.com\"",
            ),
            "registries.0.issuers.0.url",
            "must use https",
        ),
        (
            VALID.replace(
                "url = \"https://token.actions.githubusercontent.com\"\n  provider = \"github\"",
                "url = \"https://token.actions.githubusercontent.com\"\n  provider = \"githb\"",
            ),
            "registries.0.issuers.0.provider",
            "unknown value \"githb\"; did you mean \"github\"? (known: github, gitlab, forgejo, buildkite, circleci, google, generic)",
        ),
        (
            VALID.replace(
                "  provider = \"github\"\n  issuer",
                "  provider = \"githb\"\n  issuer",
            ),
            "registries.0.publishers.0.provider",
            "unknown value \"githb\"; did you mean \"github\"?",
        ),
        (
            VALID.replace(
                "issuer = \"https://token.actions.githubusercontent.com\"",
                "issuer = \"https://token.actions.githubusercontent.com/\"",
            ),
            "registries.0.publishers.0.issuer",
            "not among the registry's issuers",
        ),
        (
            VALID.replace("\"9919\"", "\"octo-org\""),
            "registries.0.publishers.0.repository_owner_id",
            "numeric",
        ),
        (
            VALID.replace("\"octo-org/widget\"", "\"widget\""),
            "registries.0.publishers.0.repository",
            "owner/name",
        ),
        (
            VALID.replace("\"release.yml\"", "\".github/workflows/release.yml\""),
            "registries.0.publishers.0.workflow",
            "file name",
        ),
        (
            VALID.replace("packages = [\"widget\"]", "packages = []"),
            "registries.0.publishers.0.packages",
            "at least one",
        ),
        (
            VALID.replace("packages = [\"widget\"]", "packages = [\"wid*get\"]"),
            "registries.0.publishers.0.packages.0",
            "trailing-*",
        ),
        (
            VALID.replace("name = \"acme\"", "name = \"Acme Corp\""),
            "registries.0.name",
            "slug",
        ),
        (
            VALID.replace("token_prefix = \"acme_\"", "token_prefix = \"a\""),
            "registries.0.token_prefix",
            "2 to 32",
        ),
        (
            format!("[server]\nlisten = \"localhost-8080\"\n{VALID}"),
            "server.listen",
            "\"localhost-8080\" is not an IP address and port",
        ),
        (
            format!("[server]\nlisten = \"localhost:9000\"\n{VALID}"),
            "server.listen",
            "host names are not looked up here: write 127.0.0.1:9000 (this machine only), \
             [::1]:9000, or 0.0.0.0:9000 (every interface)",
        ),
        (
            format!("[server]\nlisten = \"127.0.0.1\"\n{VALID}"),
            "server.listen",
            "\"127.0.0.1\" has no port: write \"127.0.0.1:8080\"",
        ),
        (
            format!("[server]\nlisten = 8080\n{VALID}"),
            "server.listen",
            "must be text \"IP:port\"",
        ),
        (
            format!("[server]\nlistn = \"127.0.0.1:8080\"\n{VALID}"),
            "server.listn",
            "unknown key \"listn\"; did you mean \"listen\"? \
             (known: listen, max_body_bytes, shutdown_timeout, max_uri_bytes, max_header_bytes, max_headers, tls, trusted_proxies)",
        ),
        (
            format!("[databse]\nurl = \"sqlite://x.db\"\n{VALID}"),
            "databse",
            "unknown key \"databse\"; did you mean \"database\"?",
        ),
        (
            VALID.replace(
                "token_prefix = \"acme_\"",
                "token_prefix = \"acme_\"\nzebra = 1",
            ),
            "registries.0.zebra",
            "unknown key \"zebra\" (known: name, upload_url,",
        ),
        (
            VALID.replace(
                "token_prefix = \"acme_\"",
                "token_prefix = \"acme_\"\necosystem = \"pyhton\"",
            ),
            "registries.0.ecosystem",
            "unknown value \"pyhton\"; did you mean \"python\"? (known: python, cargo, generic)",
        ),
        (
            format!(
                "{VALID}{}",
                SECOND
                    .replace("pypi.beta.test", "pypi.acme.test")
                    .replace("/legacy/", "/other/")
            )
            .replace(
                "token_prefix = \"acme_\"",
                "token_prefix = \"acme_\"\npypi_paths = true",
            )
            .replace(
                "token_prefix = \"beta_\"",
                "token_prefix = \"beta_\"\npypi_paths = true",
            ),
            "registries.1.pypi_paths",
            "the registry \"acme\" already serves PyPI's paths on pypi.acme.test",
        ),
        (
            format!(
                "{VALID}{}",
                SECOND.replace("audience = \"beta\"", "audience = \"acme-pypi\"")
            ),
            "registries.1.audience",
            "the audience \"acme-pypi\" is already used by the registry \"acme\"",
        ),
        (
            format!("{VALID}\nsurprise = 1\n"),
            "registries.0",
            "unknown key \"surprise\"",
        ),
        (
            format!("[database]\nconnect_timeout = 0\n{VALID}"),
            "database.connect_timeout",
            "at least 1 second",
        ),
        (
            format!("[database]\npurge_interval = 0\n{VALID}"),
            "database.purge_interval",
            "at least 1 second",
        ),
        (
            format!("[database]\nquery_timeout = 0\n{VALID}"),
            "database.query_timeout",
            "at least 1 second",
        ),
        (
            format!("[database]\nquery_timout = 5\n{VALID}"),
            "database.query_timout",
            "unknown key \"query_timout\"; did you mean \"query_timeout\"? \
             (known: url, max_connections, registry_cache_ttl, connect_timeout, purge_interval, query_timeout)",
        ),
        (
            format!("[events]\nretention_days = 0\n{VALID}"),
            "events.retention_days",
            "at least 1",
        ),
        // The package trustpub checks must be what the registry acts on: a
        // header never reaches it, so a gateway cannot read one.
        (
            VALID.replace(
                "default_features = [\"multi-use-token\"]",
                "default_features = [\"multi-use-token\"]\necosystem = \"generic\"\n\
                 gateway = { upstream = \"http://127.0.0.1:9/\", package_header = \"X-Package\" }",
            ),
            "registries.0.gateway.package_header",
            "use package_path",
        ),
        (
            VALID.replace(
                "default_features = [\"multi-use-token\"]",
                "default_features = [\"multi-use-token\"]\necosystem = \"generic\"\n\
                 gateway = { upstream = \"http://127.0.0.1:9/\" }",
            ),
            "registries.0.gateway.package_path",
            "needs package_path",
        ),
    ];
    for (config, key, reason) in cases {
        let (got_key, got_reason) = invalid(&config).await;
        assert!(
            got_key.starts_with(key) && got_reason.contains(reason),
            "expected {key}: …{reason}…, got {got_key}: {got_reason}"
        );
    }
}

#[test]
#[allow(clippy::result_large_err)] // figment::Jail's closure type
fn layering_defaults_file_then_environment() {
    Jail::expect_with(|jail| {
        jail.create_file(
            "trustpub.toml",
            &format!("[server]\nlisten = \"127.0.0.1:9000\"\n[log]\nformat = \"json\"\n{VALID}"),
        )?;
        // The file in the working directory is read without --config.
        let settings = Settings::load(None).expect("valid");
        assert_eq!(settings.server.listen.port(), 9000);
        assert_eq!(settings.log.format, LogFormat::Json);
        assert_eq!(settings.server.max_body_bytes, 64 * 1024, "a default");
        assert_eq!(settings.database.url.expose(), "sqlite://data/trustpub.db");

        jail.set_env("TRUSTPUB_SERVER__LISTEN", "127.0.0.1:9100");
        jail.set_env(
            "TRUSTPUB_DATABASE__URL",
            "postgres://trustpub:s3cret@db.internal/trustpub",
        );
        // An unrelated TRUSTPUB_CONFIG (the --config flag's variable) is not a key.
        jail.set_env("TRUSTPUB_CONFIG", "trustpub.toml");
        // Nor are variables Kubernetes injects for a Service named trustpub.
        jail.set_env("TRUSTPUB_SERVICE_HOST", "10.0.0.1");
        jail.set_env("TRUSTPUB_PORT", "tcp://10.0.0.1:8080");
        let settings = Settings::load(None).expect("valid");
        assert_eq!(settings.server.listen.port(), 9100);
        assert_eq!(
            settings.database.url.expose(),
            "postgres://trustpub:s3cret@db.internal/trustpub"
        );
        let shown = settings.to_redacted_toml();
        assert!(!shown.contains("s3cret"), "{shown}");
        assert!(
            shown.contains("postgres://trustpub:[redacted]@db.internal/trustpub"),
            "{shown}"
        );
        assert!(!format!("{settings:?}").contains("s3cret"));

        jail.set_env("TRUSTPUB_DATABASE__URL", "mysql://db/trustpub");
        match Settings::load(None) {
            Err(Error::Config { key, reason }) => {
                assert_eq!(key, "database.url");
                assert!(reason.contains("postgres://"), "{reason}");
            }
            other => panic!("{other:?}"),
        }
        jail.set_env("TRUSTPUB_DATABASE__URL", "sqlite://data/x.db");

        jail.set_env("TRUSTPUB_SERVER__MAX_BODY_BYTES", "12");
        match Settings::load(None) {
            Err(Error::Config { key, .. }) => assert_eq!(key, "server.max_body_bytes"),
            other => panic!("{other:?}"),
        }
        Ok(())
    });
}

#[test]
#[allow(clippy::result_large_err)] // figment::Jail's closure type
fn an_unknown_key_from_the_environment_names_its_variable() {
    Jail::expect_with(|jail| {
        jail.set_env("TRUSTPUB_SERVER__LSITEN", "127.0.0.1:9000");
        match Settings::load(None) {
            Err(Error::Config { key, reason }) => {
                assert_eq!(key, "server.lsiten");
                assert_eq!(
                    reason,
                    "unknown key \"lsiten\"; did you mean \"listen\"? \
                     (known: listen, max_body_bytes, shutdown_timeout, max_uri_bytes, max_header_bytes, max_headers, tls, trusted_proxies); \
                     set by the environment variable TRUSTPUB_SERVER__LSITEN"
                );
            }
            other => panic!("{other:?}"),
        }
        Ok(())
    });
}

#[test]
fn an_explicit_config_file_must_exist() {
    match Settings::load(Some(std::path::Path::new("does/not/exist.toml"))) {
        Err(Error::Config { key, reason }) => {
            assert_eq!(key, "--config");
            assert!(reason.contains("does not exist"));
        }
        other => panic!("{other:?}"),
    }
}
