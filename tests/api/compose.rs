//! No Docker engine runs where trustpub is developed, so docker-compose.yml
//! is checked here against what CI runs, so that it cannot silently rot.

use serde_norway::Value;

use crate::helpers::not_checked;

const ROOT: &str = env!("CARGO_MANIFEST_DIR");

/// The PostgreSQL major version CI tests against (Debian bookworm's).
const POSTGRES_MAJOR: &str = "15";

fn compose() -> Value {
    let text = std::fs::read_to_string(format!("{ROOT}/docker-compose.yml")).unwrap();
    serde_norway::from_str(&text).expect("docker-compose.yml is YAML")
}

fn str_at<'a>(value: &'a Value, path: &[&str]) -> &'a str {
    let mut here = value;
    for key in path {
        here = &here[*key];
    }
    here.as_str()
        .unwrap_or_else(|| panic!("{} is not a string", path.join(".")))
}

#[test]
fn postgres_is_the_version_ci_runs_and_has_a_health_check() {
    let compose = compose();
    let image = str_at(&compose, &["services", "postgres", "image"]);
    assert_eq!(image, format!("postgres:{POSTGRES_MAJOR}"));
    let test = &compose["services"]["postgres"]["healthcheck"]["test"];
    assert!(format!("{test:?}").contains("pg_isready"), "{test:?}");
}

#[test]
fn trustpub_reaches_the_compose_database_and_waits_for_it() {
    let compose = compose();
    let pg = &compose["services"]["postgres"]["environment"];
    let user = str_at(pg, &["POSTGRES_USER"]);
    let password = str_at(pg, &["POSTGRES_PASSWORD"]);
    let db = str_at(pg, &["POSTGRES_DB"]);
    let trustpub = &compose["services"]["trustpub"];
    let url = str_at(trustpub, &["environment", "TRUSTPUB_DATABASE__URL"]);
    assert_eq!(
        url,
        format!("postgres://{user}:{password}@postgres:5432/{db}")
    );
    assert_eq!(
        str_at(trustpub, &["depends_on", "postgres", "condition"]),
        "service_healthy"
    );
    let listen = str_at(trustpub, &["environment", "TRUSTPUB_SERVER__LISTEN"]);
    let port = listen.rsplit(':').next().unwrap();
    let health = format!("{:?}", trustpub["healthcheck"]["test"]);
    assert!(
        health.contains(&format!("127.0.0.1:{port}/readyz")),
        "{health}"
    );
    let ports = format!("{:?}", trustpub["ports"]);
    assert!(ports.contains(&format!(":{port}")), "{ports}");
    // Published on loopback only, unless the operator decides otherwise.
    let published = trustpub["ports"]
        .as_sequence()
        .expect("trustpub publishes a port");
    for port in published {
        let port = port
            .as_str()
            .expect("ports as \"host-ip:host-port:port\" text");
        assert!(port.starts_with("127.0.0.1:"), "{port}");
    }
}

#[test]
fn the_mounted_configuration_exists_and_is_valid() {
    let compose = compose();
    let volumes = compose["services"]["trustpub"]["volumes"]
        .as_sequence()
        .expect("trustpub mounts its configuration");
    let mount = volumes
        .iter()
        .filter_map(Value::as_str)
        .find(|v| v.contains("/etc/trustpub/trustpub.toml"))
        .expect("a mount of /etc/trustpub/trustpub.toml");
    let source = mount.split(':').next().unwrap();
    let text =
        std::fs::read_to_string(format!("{ROOT}/{source}")).expect("the mounted file exists");
    let figment = figment::Figment::from(figment::providers::Serialized::defaults(
        trustpub::config::Settings::default(),
    ))
    .merge(<figment::providers::Toml as figment::providers::Format>::string(&text))
    .merge(figment::providers::Serialized::default(
        "database.url",
        str_at(
            &compose,
            &[
                "services",
                "trustpub",
                "environment",
                "TRUSTPUB_DATABASE__URL",
            ],
        ),
    ));
    trustpub::config::Settings::from_figment(&figment).expect("a valid configuration");
}

/// With a PostgreSQL server configured for the tests, its major version is
/// the one the compose file pins. Without one, it says that it checked
/// nothing.
#[tokio::test]
async fn ci_postgres_has_the_pinned_major_version() {
    let server = std::env::var("TEST_DATABASE_URL").unwrap_or_default();
    if server.trim().is_empty() {
        not_checked(
            "compose::ci_postgres_has_the_pinned_major_version",
            &format!(
                "TEST_DATABASE_URL is not set, so no PostgreSQL server was compared \
                 with the compose file's postgres:{POSTGRES_MAJOR}"
            ),
            "to check it, run the suite with TEST_DATABASE_URL naming one, e.g. \
             TEST_DATABASE_URL=postgres://postgres@127.0.0.1:5432/test .ci/test",
        );
        return;
    }
    use sqlx::Connection;
    let mut conn = sqlx::PgConnection::connect(&server).await.unwrap();
    let version: String = sqlx::query_scalar("SHOW server_version")
        .fetch_one(&mut conn)
        .await
        .unwrap();
    assert_eq!(version.split('.').next(), Some(POSTGRES_MAJOR), "{version}");
}
