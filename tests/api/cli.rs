//! The `trustpub` binary as an operator runs it.

use std::process::{Command, Stdio};
use std::time::Duration;

use crate::helpers::terminate;

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
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let config = example().replace(
        "127.0.0.1:8080\"\n\n[database]",
        &format!("127.0.0.1:{port}\"\n\n[database]"),
    );
    std::fs::write(dir.path().join("trustpub.toml"), config).unwrap();
    let mut child = Command::new(BIN)
        .args(["serve"])
        .current_dir(dir.path())
        .env_remove("TRUSTPUB_DATABASE__URL")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let url = format!("http://127.0.0.1:{port}/.well-known/pytp?discover=%2Flegacy%2F");
    let mut body = None;
    for _ in 0..100 {
        if let Ok(response) = blocking_get(&url) {
            body = Some(response);
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let body = body.expect("the server came up");
    assert!(body.contains("/_/trustpub/acme/mint-token"), "{body}");
    terminate(&child);
    let exit = child.wait().unwrap();
    assert!(exit.success(), "graceful shutdown exits 0: {exit:?}");
    assert!(dir.path().join("data/trustpub.db").is_file());
}

/// A GET on a runtime of its own, returning the body.
fn blocking_get(url: &str) -> Result<String, reqwest::Error> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async { reqwest::get(url).await?.text().await })
}
