//! The `trustpub` binary as an operator runs it.

use std::process::{Command, Stdio};
use std::time::Duration;

use crate::helpers::{not_checked, terminate};

const BIN: &str = env!("CARGO_BIN_EXE_trustpub");

fn trustpub(args: &[&str], dir: &std::path::Path) -> std::process::Output {
    Command::new(BIN)
        .args(args)
        .current_dir(dir)
        .env_remove("TRUSTPUB_CONFIG")
        .env_remove("TRUSTPUB_DATABASE__URL")
        .env_remove("RUST_LOG")
        .output()
        .expect("the binary runs")
}

fn example() -> String {
    std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/examples/trustpub.toml"
    ))
    .unwrap()
}

#[test]
fn check_config_prints_the_effective_configuration() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("trustpub.toml"), example()).unwrap();
    let output = trustpub(&["check-config"], dir.path());
    assert!(output.status.success(), "{output:?}");
    let stdout = String::from_utf8(output.stdout).unwrap();
    assert!(stdout.contains("name = \"acme\""), "{stdout}");
    assert!(
        stdout.contains("max_body_bytes = 65536"),
        "defaults are shown: {stdout}"
    );
    let stderr = String::from_utf8(output.stderr).unwrap();
    let file = dir.path().canonicalize().unwrap().join("trustpub.toml");
    assert_eq!(
        stderr,
        format!(
            "configuration file: {}\nconfiguration is valid: 1 registry\n",
            file.display()
        )
    );
}

#[test]
fn check_config_warns_when_no_file_is_found() {
    let dir = tempfile::tempdir().unwrap();
    let output = trustpub(&["check-config"], dir.path());
    assert!(output.status.success(), "{output:?}");
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert!(
        stderr.starts_with("warning: no configuration file found (no --config, no TRUSTPUB_CONFIG, no ./trustpub.toml)"),
        "{stderr}"
    );
    assert!(
        stderr.ends_with("configuration is valid: 0 registries\n"),
        "{stderr}"
    );
}

#[test]
fn check_config_redacts_the_database_password() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("t.toml"), example()).unwrap();
    let output = Command::new(BIN)
        .args(["check-config", "--config", "t.toml"])
        .current_dir(dir.path())
        .env(
            "TRUSTPUB_DATABASE__URL",
            "postgres://trustpub:hunter2@db/trustpub",
        )
        .output()
        .unwrap();
    assert!(output.status.success(), "{output:?}");
    let stdout = String::from_utf8(output.stdout).unwrap();
    assert!(!stdout.contains("hunter2"), "{stdout}");
    assert!(stdout.contains("redacted"), "{stdout}");
}

#[test]
fn invalid_configuration_exits_non_zero_naming_the_key() {
    let dir = tempfile::tempdir().unwrap();
    let config = example().replace("token_lifetime = 900", "token_lifetime = 60");
    std::fs::write(dir.path().join("bad.toml"), config).unwrap();
    for command in ["check-config", "serve", "migrate"] {
        let output = trustpub(&[command, "--config", "bad.toml"], dir.path());
        assert_eq!(output.status.code(), Some(1), "{command}: {output:?}");
        let stderr = String::from_utf8(output.stderr).unwrap();
        assert!(
            stderr.contains("registries.0.token_lifetime") && stderr.contains("900..=21600"),
            "{command}: {stderr}"
        );
    }
    let output = trustpub(&["check-config", "--config", "missing.toml"], dir.path());
    assert_eq!(output.status.code(), Some(1));
}

#[test]
fn migrate_creates_the_sqlite_database_and_its_folder() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("trustpub.toml"), example()).unwrap();
    let output = trustpub(&["migrate"], dir.path());
    assert!(output.status.success(), "{output:?}");
    assert!(dir.path().join("data/trustpub.db").is_file());
    // Running it again is harmless.
    assert!(trustpub(&["migrate"], dir.path()).status.success());
}

#[test]
fn serve_answers_and_stops_gracefully_on_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    std::fs::write(dir.path().join("trustpub.toml"), example_on(port)).unwrap();
    let (body, _) = serve_until_up(dir.path(), &[], port);
    assert!(body.contains("/_/trustpub/acme/mint-token"), "{body}");
    assert!(dir.path().join("data/trustpub.db").is_file());
}

#[test]
fn serve_logs_what_it_serves_in_plain_lines() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    std::fs::write(dir.path().join("trustpub.toml"), example_on(port)).unwrap();
    let (_, log) = serve_until_up(dir.path(), &[], port);
    let file = dir.path().canonicalize().unwrap().join("trustpub.toml");
    for expected in [
        format!(
            "INFO trustpub::cli: configuration read file={}",
            file.display()
        ),
        "INFO trustpub::startup: connecting to the database url=sqlite://data/trustpub.db"
            .to_owned(),
        "INFO trustpub::startup: registries synced from the configuration registries=1 \
         removed=0 publishers_added=1 publishers_removed=0"
            .to_owned(),
        format!(
            "INFO trustpub::startup: serving registry registry=acme \
             upload_url=http://127.0.0.1:{port}/legacy/ \
             issuers=https://token.actions.githubusercontent.com"
        ),
        format!("INFO trustpub::startup: trustpub is listening address=http://127.0.0.1:{port}"),
    ] {
        assert!(log.contains(&expected), "{expected}\nnot in:\n{log}");
    }
    // Standard error is a pipe here, not a terminal: no colour codes.
    assert!(!log.contains('\x1b'), "{log}");
}

/// What a log line keeps of a request's untrusted text is bounded: a
/// refused mint whose token names a 44 kB issuer logs a line of a few
/// hundred bytes, not the issuer.
#[test]
fn untrusted_text_is_cut_in_the_log() {
    use trustpub::testing::{ACME_AUDIENCE, TestClaims, TestIssuer};
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    std::fs::write(dir.path().join("trustpub.toml"), example_on(port)).unwrap();
    let huge_iss = format!("https://{}.test", "x".repeat(44_000));
    let token = TestIssuer::token_with(
        &serde_json::json!({ "alg": "RS256", "typ": "JWT", "kid": "rsa-1" }),
        &TestClaims::github(&huge_iss, ACME_AUDIENCE, trustpub::store::now()).build(),
        &[0; 256],
    );
    let (_, log) = serve_while(dir.path(), &[], port, || {
        let status = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
            .block_on(async {
                reqwest::Client::new()
                    .post(format!(
                        "http://127.0.0.1:{port}/_/trustpub/acme/mint-token"
                    ))
                    .json(&serde_json::json!({ "token": token }))
                    .send()
                    .await
                    .unwrap()
                    .status()
            });
        assert_eq!(status, 401);
    });
    let refused = log
        .lines()
        .find(|line| line.contains("mint refused"))
        .unwrap_or_else(|| panic!("no refusal logged:\n{log}"));
    assert!(refused.contains("untrusted-issuer"), "{refused}");
    let longest = log.lines().map(str::len).max().unwrap_or_default();
    assert!(longest < 2 * 1024, "a log line of {longest} bytes");
}

/// On a terminal (util-linux `script` provides one) the human lines are
/// coloured, unless `NO_COLOR` is set to something.
#[test]
fn colour_only_on_a_terminal_and_never_with_no_color() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("trustpub.toml"), example()).unwrap();
    let run = |no_color: Option<&str>| {
        let mut command = Command::new("script");
        command
            .args(["-qec", &format!("'{BIN}' migrate"), "/dev/null"])
            .current_dir(dir.path())
            .env_remove("TRUSTPUB_CONFIG")
            .env_remove("TRUSTPUB_DATABASE__URL")
            .env_remove("RUST_LOG")
            .env_remove("NO_COLOR")
            .stdin(Stdio::null());
        if let Some(value) = no_color {
            command.env("NO_COLOR", value);
        }
        let output = command.output().expect("script runs");
        assert!(
            output.status.success(),
            "trustpub on a terminal: {output:?}"
        );
        String::from_utf8_lossy(&output.stdout).into_owned()
    };
    let has_script = Command::new("script")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if !has_script {
        not_checked(
            "cli::colour_only_on_a_terminal_and_never_with_no_color",
            "util-linux's `script`, which gives the binary a terminal, is not installed",
            "to check it, install util-linux (Debian: bsdutils)",
        );
        return;
    }
    let coloured = run(None);
    assert!(coloured.contains("configuration read"), "{coloured}");
    assert!(
        coloured.contains('\x1b'),
        "colour on a terminal: {coloured:?}"
    );
    let plain = run(Some("1"));
    assert!(plain.contains("configuration read"), "{plain}");
    assert!(!plain.contains('\x1b'), "NO_COLOR: {plain:?}");
    let empty = run(Some(""));
    assert!(
        empty.contains('\x1b'),
        "an empty NO_COLOR does not count: {empty:?}"
    );
}

#[test]
fn serve_warns_when_no_file_is_found_and_no_registry_is_served() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let listen = format!("127.0.0.1:{port}");
    let (_, log) = serve_until_up(dir.path(), &[("TRUSTPUB_SERVER__LISTEN", &listen)], port);
    assert!(
        log.contains("WARN trustpub::cli: no configuration file found"),
        "{log}"
    );
    assert!(
        log.contains("WARN trustpub::startup: no registry is configured"),
        "{log}"
    );
}

#[test]
fn serve_names_the_registries_a_new_file_removes() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let second = "\n[[registries]]\nname = \"beta\"\nupload_url = \"http://127.0.0.1:9/beta/\"\n\
                  audience = \"beta\"\ntoken_prefix = \"beta_\"\n";
    let config = dir.path().join("trustpub.toml");
    std::fs::write(&config, format!("{}{second}", example_on(port))).unwrap();
    let (_, log) = serve_until_up(dir.path(), &[], port);
    assert!(log.contains("serving registry registry=beta"), "{log}");
    std::fs::write(&config, example_on(port)).unwrap();
    let (_, log) = serve_until_up(dir.path(), &[], port);
    assert!(
        log.contains("registries synced from the configuration registries=1 removed=1"),
        "{log}"
    );
    assert!(
        log.contains(
            "WARN trustpub::startup: registry removed from the store, with its publishers \
             and credentials: it is no longer in the configuration file registry=beta"
        ),
        "{log}"
    );
}

#[test]
fn an_unreachable_database_is_named_with_its_address_and_the_reason() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let closed = free_port();
    std::fs::write(dir.path().join("trustpub.toml"), example_on(port)).unwrap();
    let output = Command::new(BIN)
        .args(["serve"])
        .current_dir(dir.path())
        .env(
            "TRUSTPUB_DATABASE__URL",
            format!("postgres://trustpub:hunter2@127.0.0.1:{closed}/trustpub"),
        )
        .env("TRUSTPUB_DATABASE__CONNECT_TIMEOUT", "1")
        .env_remove("RUST_LOG")
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1), "{output:?}");
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert!(
        stderr.contains(&format!(
            "connecting to the database url=postgres://trustpub:[redacted]@127.0.0.1:{closed}/trustpub"
        )),
        "{stderr}"
    );
    assert!(
        stderr.ends_with(&format!(
            "trustpub: cannot use the database at 127.0.0.1:{closed}: connection refused, \
             retried for 1 s: is the database server running, and listening on that address?\n"
        )),
        "{stderr}"
    );
    assert!(!stderr.contains("hunter2"), "{stderr}");
}

#[test]
fn a_missing_postgres_database_is_a_sentence() {
    let server = std::env::var("TEST_DATABASE_URL").unwrap_or_default();
    if server.trim().is_empty() {
        not_checked(
            "cli::a_missing_postgres_database_is_a_sentence",
            "TEST_DATABASE_URL is not set, so no PostgreSQL server was asked for a \
             database it does not have",
            "to check it, run the suite with TEST_DATABASE_URL naming one, e.g. \
             TEST_DATABASE_URL=postgres://postgres@127.0.0.1:5432/test cargo test",
        );
        return;
    }
    let (base, _) = server.rsplit_once('/').expect("a URL with a database name");
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("trustpub.toml"), example()).unwrap();
    let output = Command::new(BIN)
        .args(["migrate"])
        .current_dir(dir.path())
        .env(
            "TRUSTPUB_DATABASE__URL",
            format!("{base}/trustpub_no_such_database"),
        )
        .env_remove("RUST_LOG")
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1), "{output:?}");
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert!(
        stderr.contains(
            ": database \"trustpub_no_such_database\" does not exist: create it \
             (for example with createdb) or name another in database.url\n"
        ),
        "{stderr}"
    );
    assert!(!stderr.contains(" at line "), "{stderr}");
}

/// A loopback port nothing listens on (as far as can be known).
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// The example configuration, listening on `port`.
fn example_on(port: u16) -> String {
    example().replace("127.0.0.1:8080", &format!("127.0.0.1:{port}"))
}

/// Starts `trustpub serve` in `dir`, waits until it answers discovery on
/// `port`, stops it with SIGTERM (it must exit 0), and returns the
/// discovery answer and what it logged.
fn serve_until_up(dir: &std::path::Path, env: &[(&str, &str)], port: u16) -> (String, String) {
    serve_while(dir, env, port, || {})
}

/// [`serve_until_up`], running `meanwhile` once the server answers.
fn serve_while(
    dir: &std::path::Path,
    env: &[(&str, &str)],
    port: u16,
    meanwhile: impl FnOnce(),
) -> (String, String) {
    let mut command = Command::new(BIN);
    command
        .args(["serve"])
        .current_dir(dir)
        .env_remove("TRUSTPUB_CONFIG")
        .env_remove("TRUSTPUB_DATABASE__URL")
        .env_remove("RUST_LOG")
        .env_remove("NO_COLOR")
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    for (name, value) in env {
        command.env(name, value);
    }
    let child = command.spawn().unwrap();
    let url = format!("http://127.0.0.1:{port}/.well-known/pytp?discover=%2Flegacy%2F");
    let mut body = None;
    for _ in 0..100 {
        if let Ok(response) = blocking_get(&url) {
            body = Some(response);
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    if body.is_some() {
        meanwhile();
    }
    terminate(&child);
    let output = child.wait_with_output().unwrap();
    let log = String::from_utf8(output.stderr).unwrap();
    let body = body.unwrap_or_else(|| panic!("the server came up:\n{log}"));
    assert!(
        output.status.success(),
        "graceful shutdown exits 0: {:?}\n{log}",
        output.status
    );
    (body, log)
}

/// A GET on a runtime of its own, returning the body.
fn blocking_get(url: &str) -> Result<String, reqwest::Error> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async { reqwest::get(url).await?.text().await })
}
