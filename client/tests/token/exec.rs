//! `exec`: the command runs with the credential in the tools' variables,
//! its exit status is the client's, and the credential is burnt afterwards
//! whatever the command did. (Real uploads with uv and twine are in the
//! end-to-end tests, `tests/e2e/token_exec.rs` of the trustpub crate.)

use std::sync::{Arc, Mutex};

use trustpub::testing::TestIssuer;

use crate::support::{Trustpub, crafted, github_actions, token};

/// The variables the command sees, written to a file by `sh`.
const DUMP: &str =
    "env | grep -E '^(TWINE|UV_PUBLISH|PDM_PUBLISH|MATURIN|CARGO_REGISTR)' | sort > \"$0\"";

#[tokio::test]
async fn runs_the_command_with_the_credential_then_burns_it() {
    let issuer = TestIssuer::start().await;
    let trustpub = Trustpub::github(&issuer).await;
    let upload_url = trustpub.upload_url();
    let dump = tempfile::NamedTempFile::new().unwrap();
    let dump_path = dump.path().display().to_string();
    let command = format!("{DUMP}; exit 3");
    let args = [
        "exec",
        "--upload-url",
        &upload_url,
        "--cargo-registry",
        "acme-crates",
        "--",
        "sh",
        "-c",
        &command,
        &dump_path,
    ];
    let run = token(&args, &github_actions(&issuer), None).await;

    assert_eq!(run.code, Some(3), "the command's status: {}", run.stderr);
    let credential = run
        .stdout
        .lines()
        .next()
        .and_then(|line| line.strip_prefix("::add-mask::"))
        .expect("the mask first, on stdout")
        .to_owned();
    let seen = std::fs::read_to_string(dump.path()).unwrap();
    let expected: Vec<String> = [
        ("CARGO_REGISTRIES_ACME_CRATES_TOKEN", credential.as_str()),
        ("CARGO_REGISTRY_TOKEN", &credential),
        ("MATURIN_PYPI_TOKEN", &credential),
        ("MATURIN_REPOSITORY_URL", &upload_url),
        ("PDM_PUBLISH_PASSWORD", &credential),
        ("PDM_PUBLISH_REPO", &upload_url),
        ("PDM_PUBLISH_USERNAME", "__token__"),
        ("TWINE_PASSWORD", &credential),
        ("TWINE_REPOSITORY_URL", &upload_url),
        ("TWINE_USERNAME", "__token__"),
        ("UV_PUBLISH_TOKEN", &credential),
        ("UV_PUBLISH_URL", &upload_url),
    ]
    .iter()
    .map(|(name, value)| format!("{name}={value}"))
    .collect();
    assert_eq!(seen.lines().collect::<Vec<_>>(), expected);
    assert!(
        run.stderr.contains("burnt the credential at"),
        "{}",
        run.stderr
    );
    let answer = trustpub.introspect(&credential, "widget").await;
    assert_eq!(answer["active"], false, "burnt: {answer}");
}

/// A command that cannot even start: 127, as a shell says, and the
/// credential is burnt all the same.
#[tokio::test]
async fn a_command_that_does_not_start_still_burns() {
    let issuer = TestIssuer::start().await;
    let trustpub = Trustpub::github(&issuer).await;
    let upload_url = trustpub.upload_url();
    let args = [
        "exec",
        "--upload-url",
        &upload_url,
        "--",
        "no-such-upload-tool",
    ];
    let run = token(&args, &github_actions(&issuer), None).await;
    assert_eq!(run.code, Some(127), "{}", run.stderr);
    assert!(
        run.stderr.contains("running no-such-upload-tool"),
        "{}",
        run.stderr
    );
    let credential = run.stdout.trim().strip_prefix("::add-mask::").unwrap();
    assert_eq!(
        trustpub.introspect(credential, "widget").await["active"],
        false
    );
}

/// A refused mint runs nothing.
#[tokio::test]
async fn a_refused_mint_runs_nothing() {
    let issuer = TestIssuer::start().await;
    issuer.set_actions_claims(|claims| claims.set("repository", "mallory/widget"));
    let trustpub = Trustpub::github(&issuer).await;
    let upload_url = trustpub.upload_url();
    let marker = tempfile::tempdir().unwrap();
    let touched = marker.path().join("ran");
    let touched_path = touched.display().to_string();
    let args = [
        "exec",
        "--upload-url",
        &upload_url,
        "--",
        "touch",
        &touched_path,
    ];
    let run = token(&args, &github_actions(&issuer), None).await;
    run.fails_saying(&["invalid-publisher", "repository: mallory/widget"]);
    assert!(!touched.exists());
}

/// An index whose discovery names no burn endpoint: `exec` burns at PyPI's
/// `/_/oidc/burn-token`, and says so when that is not there either.
#[tokio::test]
async fn without_a_discovered_burn_endpoint_pypis_is_tried() {
    let issuer = TestIssuer::start().await;
    for (burn_status, says) in [
        (204, "burnt the credential at"),
        (
            404,
            "names no burn endpoint, and PyPI's did not take the credential",
        ),
    ] {
        let burns = Arc::new(Mutex::new(Vec::new()));
        let seen = burns.clone();
        let port = crafted(move |port, head, body| {
            let origin = format!("http://127.0.0.1:{port}");
            let request = head.lines().next().unwrap_or_default();
            match request.split(' ').nth(1).unwrap_or_default() {
                "/.well-known/pytp?discover=%2Flegacy%2F" => (
                    200,
                    format!(
                        r#"{{"audience-endpoint": "{origin}/a", "token-mint-endpoint": "{origin}/m"}}"#
                    ),
                ),
                "/a" => (200, r#"{"audience": "acme-pypi"}"#.into()),
                "/m" => (200, r#"{"token": "pypi-minted"}"#.into()),
                "/_/oidc/burn-token" => {
                    seen.lock().unwrap().push(body.to_owned());
                    (burn_status, "{}".into())
                }
                _ => (404, "{}".into()),
            }
        });
        let upload_url = format!("http://127.0.0.1:{port}/legacy/");
        let args = ["exec", "--upload-url", &upload_url, "--", "true"];
        let run = token(&args, &github_actions(&issuer), None).await;
        assert_eq!(run.code, Some(0), "{}", run.stderr);
        assert!(run.stderr.contains(says), "{}", run.stderr);
        assert_eq!(*burns.lock().unwrap(), [r#"{"token":"pypi-minted"}"#]);
    }
}

/// A CI cancelling the job sends SIGTERM to trustpub-token: the command
/// gets it, trustpub-token waits for it, burns the credential and exits
/// with 128 + 15.
#[cfg(unix)]
#[tokio::test]
async fn sigterm_is_passed_on_and_the_credential_burnt() {
    let issuer = TestIssuer::start().await;
    let trustpub = Trustpub::github(&issuer).await;
    let upload_url = trustpub.upload_url();
    let marker = tempfile::tempdir().unwrap();
    let started = marker.path().join("started");
    let started_path = started.display().to_string();
    let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_trustpub-token"));
    command
        .args(["exec", "--upload-url", &upload_url, "--", "sh", "-c"])
        .arg("touch \"$0\"; exec sleep 30")
        .arg(&started_path)
        .env_clear()
        .env("PATH", "/usr/bin:/bin")
        .envs(github_actions(&issuer))
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    let output = tokio::task::spawn_blocking(move || {
        let child = command.spawn().expect("trustpub-token runs");
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
        while !started.exists() {
            assert!(std::time::Instant::now() < deadline, "the command started");
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        let pid = libc::pid_t::try_from(child.id()).unwrap();
        // SAFETY: kill(2) on the process this test started.
        assert_eq!(unsafe { libc::kill(pid, libc::SIGTERM) }, 0);
        child.wait_with_output().unwrap()
    })
    .await
    .unwrap();
    let run = crate::support::Run::from(output);
    eprintln!("-- stdout\n{}\n-- stderr\n{}", run.stdout, run.stderr);

    assert_eq!(run.code, Some(128 + 15), "{}", run.stderr);
    for said in [
        "passing signal 15 on to the command",
        "burnt the credential at",
        "stopped by signal 15",
    ] {
        assert!(run.stderr.contains(said), "{said:?} in {}", run.stderr);
    }
    let credential = run.stdout.trim().strip_prefix("::add-mask::").unwrap();
    let answer = trustpub.introspect(credential, "widget").await;
    assert_eq!(answer["active"], false, "burnt: {answer}");
}

/// SIGTERM while the mint is under way (here, a discovery that does not
/// answer): there is no credential to burn yet, so trustpub-token stops at
/// once, with 128 + 15, and the command never runs.
#[cfg(unix)]
#[tokio::test]
async fn sigterm_before_the_mint_ended_stops_at_once() {
    let issuer = TestIssuer::start().await;
    let marker = tempfile::tempdir().unwrap();
    let asked = marker.path().join("asked");
    let ran = marker.path().join("ran");
    let asked_by_server = asked.clone();
    let port = crafted(move |_, _, _| {
        std::fs::write(&asked_by_server, "").unwrap();
        std::thread::sleep(std::time::Duration::from_secs(20));
        (404, "{}".into())
    });
    let upload_url = format!("http://127.0.0.1:{port}/legacy/");
    let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_trustpub-token"));
    command
        .args(["exec", "--upload-url", &upload_url, "--", "touch"])
        .arg(&ran)
        .env_clear()
        .env("PATH", "/usr/bin:/bin")
        .envs(github_actions(&issuer));
    let (status, waited) = tokio::task::spawn_blocking(move || {
        let mut child = command.spawn().expect("trustpub-token runs");
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
        while !asked.exists() {
            assert!(std::time::Instant::now() < deadline, "discovery was asked");
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        let pid = libc::pid_t::try_from(child.id()).unwrap();
        let sent = std::time::Instant::now();
        // SAFETY: kill(2) on the process this test started.
        assert_eq!(unsafe { libc::kill(pid, libc::SIGTERM) }, 0);
        (child.wait().unwrap(), sent.elapsed())
    })
    .await
    .unwrap();
    assert_eq!(status.code(), Some(128 + 15));
    assert!(waited < std::time::Duration::from_secs(10), "{waited:?}");
    assert!(!ran.exists(), "the command did not run");
}
