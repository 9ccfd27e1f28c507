//! The command line, as a user meets it: the binary, its exit statuses, its
//! messages and its report files.

use std::io::{BufRead, BufReader};
use std::process::{Command, Output, Stdio};

use serde_json::Value;

use crate::support::{bind, registry, start_trustpub};

const KIT: &str = env!("CARGO_BIN_EXE_trustpub-conformance");

async fn kit(args: &[&str]) -> Output {
    let args: Vec<String> = args.iter().map(|a| a.to_string()).collect();
    tokio::task::spawn_blocking(move || {
        Command::new(KIT).args(args).output().expect("the kit runs")
    })
    .await
    .unwrap()
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

#[tokio::test]
async fn bad_input_is_a_clear_error_with_status_2() {
    let (taken, taken_address) = bind();
    let taken_address = taken_address.trim_start_matches("http://").to_owned();
    let cases: &[(&[&str], &str)] = &[
        (&["run"], "--upload-url"),
        (
            &["run", "--upload-url", "not a url"],
            "--upload-url \"not a url\"",
        ),
        (
            &["run", "--upload-url", "ftp://x.test/"],
            "must be an http:// or https:// URL",
        ),
        (
            &[
                "run",
                "--upload-url",
                "http://127.0.0.1:9/",
                "--claims",
                "/nonexistent/claims.json",
            ],
            "--claims /nonexistent/claims.json",
        ),
        (
            &[
                "run",
                "--upload-url",
                "http://127.0.0.1:9/",
                "--issuer-listen",
                "nowhere",
            ],
            "--issuer-listen",
        ),
        (
            &[
                "run",
                "--upload-url",
                "http://127.0.0.1:9/",
                "--issuer-listen",
                &taken_address,
            ],
            "cannot listen",
        ),
        (
            &[
                "run",
                "--upload-url",
                "http://127.0.0.1:9/",
                "--issuer-url",
                "https://x.test/?q",
            ],
            "no query",
        ),
        (
            &[
                "run",
                "--upload-url",
                "http://127.0.0.1:9/",
                "--timeout",
                "0",
            ],
            "--timeout",
        ),
        (
            &[
                "run",
                "--upload-url",
                "http://127.0.0.1:9/",
                "--trusted-origin",
                "http://pypi.internal/legacy/",
            ],
            "must be an origin",
        ),
        (
            &["setup", "--issuer-listen", "0.0.0.0:9807"],
            "give --issuer-url",
        ),
        (&["setup", "--package", " "], "--package must not be empty"),
        (&["frobnicate"], "unrecognized subcommand"),
    ];
    for (args, message) in cases {
        let output = kit(args).await;
        assert_eq!(
            output.status.code(),
            Some(2),
            "{args:?}: {}",
            stderr(&output)
        );
        assert!(
            stderr(&output).contains(message),
            "{args:?}: {}",
            stderr(&output)
        );
        assert!(
            !stderr(&output).contains("panicked"),
            "{args:?}: {}",
            stderr(&output)
        );
    }
    drop(taken);
}

#[tokio::test]
async fn claims_files_must_hold_a_json_object() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("claims.json");
    std::fs::write(&path, "[1, 2]").unwrap();
    let path = path.to_str().unwrap();
    let output = kit(&["setup", "--claims", path]).await;
    assert_eq!(output.status.code(), Some(2));
    assert!(
        stderr(&output).contains("not a JSON object"),
        "{}",
        stderr(&output)
    );

    std::fs::write(
        dir.path().join("claims.json"),
        r#"{"repository": "acme/tool", "environment": null}"#,
    )
    .unwrap();
    let output = kit(&["setup", "--claims", path, "--toml"]).await;
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let snippet: toml::Value = toml::from_str(&String::from_utf8_lossy(&output.stdout)).unwrap();
    let publisher = &snippet["registries"][0]["publishers"][0];
    assert_eq!(publisher["repository"].as_str(), Some("acme/tool"));
    assert!(publisher.get("environment").is_none());
}

#[tokio::test]
async fn setup_names_the_issuer_the_claims_and_the_packages() {
    let output = kit(&[
        "setup",
        "--issuer-url",
        "https://kit.example.test/",
        "--upload-url",
        "https://pypi.example.test/legacy/",
        "--package",
        "gizmo",
    ])
    .await;
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let text = String::from_utf8_lossy(&output.stdout);
    for expected in [
        "     https://kit.example.test\n",
        "https://kit.example.test/jwks",
        "kid rsa-1 (RS256) and kid ec-1 (ES256)",
        "\"repository_owner_id\": \"9919\"",
        "\"gizmo\"",
        "\"conformance-forbidden\"",
        "upload_url = \"https://pypi.example.test/legacy/\"",
        "packages = [\"gizmo\"]",
    ] {
        assert!(text.contains(expected), "{expected:?} missing from\n{text}");
    }
}

/// The walk-through of the README and of trustpub's docs/src/clients.md,
/// against trustpub's quick start: the kit's registry is appended to a copy
/// of the example configuration, on an upload URL of its own, so that the
/// file is valid and keeps the example's registry (a file without it would
/// remove it from the database at the next start).
#[tokio::test]
async fn the_walk_through_adds_the_kits_registry_next_to_the_example() {
    const UPLOAD_URL: &str = "http://127.0.0.1:8080/conformance/legacy/";
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    for doc in ["conformance/README.md", "docs/src/clients.md"] {
        let text = std::fs::read_to_string(root.join(doc)).unwrap();
        for step in [
            "cp examples/trustpub.toml conformance.toml\n".to_owned(),
            format!("setup --upload-url {UPLOAD_URL} --toml >> conformance.toml\n"),
            "cargo run -- serve --config conformance.toml\n".to_owned(),
            format!("run --upload-url {UPLOAD_URL} "),
        ] {
            assert!(text.contains(&step), "{doc} no longer says {step:?}");
        }
    }

    // With the upload URL given, and with setup's default one: both sit
    // next to the example's /legacy/.
    for args in [
        &["setup", "--upload-url", UPLOAD_URL, "--toml"][..],
        &["setup", "--toml"][..],
    ] {
        let output = kit(args).await;
        assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
        let dir = tempfile::tempdir().unwrap();
        let config = dir.path().join("conformance.toml");
        let example = std::fs::read_to_string(root.join("examples/trustpub.toml")).unwrap();
        std::fs::write(
            &config,
            format!("{example}{}", String::from_utf8_lossy(&output.stdout)),
        )
        .unwrap();
        let settings =
            trustpub::config::Settings::load(Some(&config)).expect("a valid configuration");
        let names: Vec<&str> = settings
            .registries
            .iter()
            .map(|r| r.name.as_str())
            .collect();
        assert_eq!(names, ["acme", "conformance"], "{args:?}");
    }
}

/// The flow of the README: start the issuer, configure the server to trust
/// it, run the checks with reports; then a server that fails a MUST.
#[tokio::test(flavor = "multi_thread")]
async fn a_run_against_trustpub_with_a_separate_issuer_writes_reports_and_exits_0() {
    let mut issuer = Command::new(KIT)
        .args(["issuer", "--issuer-listen", "127.0.0.1:0"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(issuer.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let issuer_url = line.trim().to_owned();
    assert!(issuer_url.starts_with("http://127.0.0.1:"), "{issuer_url}");

    let (listener, address) = bind();
    let upload_url = format!("{address}/legacy/");
    let _trustpub = start_trustpub(listener, &registry(&issuer_url, "acme", &upload_url)).await;
    let dir = tempfile::tempdir().unwrap();
    let json = dir.path().join("report.json");
    let junit = dir.path().join("report.xml");
    let output = kit(&[
        "run",
        "--upload-url",
        &upload_url,
        "--no-issuer",
        "--issuer-url",
        &issuer_url,
        "--json",
        json.to_str().unwrap(),
        "--junit",
        junit.to_str().unwrap(),
    ])
    .await;
    let table = String::from_utf8_lossy(&output.stdout).into_owned();
    assert_eq!(output.status.code(), Some(0), "{table}{}", stderr(&output));
    assert!(
        table.contains("mint.valid                     MUST    PASS"),
        "{table}"
    );
    assert!(table.contains("no PEP 807 MUST check failed"), "{table}");

    let report: Value = serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    assert_eq!(report["conforms"], true);
    assert_eq!(report["upload_url"], upload_url);
    assert_eq!(report["summary"]["pep807"]["fail"], 0);
    let xml = std::fs::read_to_string(&junit).unwrap();
    assert!(xml.contains("<testsuite name=\"pep807\""), "{xml}");
    assert_eq!(
        xml.matches("<testcase ").count(),
        report["checks"].as_array().unwrap().len()
    );

    // A path trustpub does not serve: discovery.ok, a MUST, fails.
    let output = kit(&[
        "run",
        "--upload-url",
        &format!("{address}/elsewhere/"),
        "--no-issuer",
        "--issuer-url",
        &issuer_url,
        "--json",
        "-",
    ])
    .await;
    assert_eq!(output.status.code(), Some(1), "{}", stderr(&output));
    let report: Value = serde_json::from_slice(&output.stdout).expect("only JSON on stdout");
    assert_eq!(report["conforms"], false);
    assert!(
        stderr(&output).contains("discovery.ok"),
        "the table goes to stderr"
    );

    issuer.kill().unwrap();
    issuer.wait().unwrap();
}

/// `--strict` through the binary: against trustpub without `--probe-upload`
/// every check that runs passes, but the upload MUSTs are skipped. The run
/// exits 0, and 1 with `--strict`; both name what was not verified.
#[tokio::test(flavor = "multi_thread")]
async fn strict_exits_1_on_skipped_musts() {
    // A port for the kit's issuer, freed for the kit to bind in each run.
    let (issuer_listener, issuer_url) = bind();
    let issuer_listen = issuer_url.trim_start_matches("http://").to_owned();
    drop(issuer_listener);
    let (listener, address) = bind();
    // A space in the path, so that discovery.key-space runs too.
    let upload_url = format!("{address}/strict index/legacy/");
    let _trustpub = start_trustpub(listener, &registry(&issuer_url, "acme", &upload_url)).await;

    for (strict, status) in [(false, 0), (true, 1)] {
        let mut args = vec![
            "run",
            "--upload-url",
            &upload_url,
            "--issuer-listen",
            &issuer_listen,
        ];
        if strict {
            args.push("--strict");
        }
        let output = kit(&args).await;
        let table = String::from_utf8_lossy(&output.stdout).into_owned();
        assert_eq!(
            output.status.code(),
            Some(status),
            "strict {strict}: {table}{}",
            stderr(&output)
        );
        for expected in [
            " 0 failed (0 of them PEP 807 MUST), 2 skipped (2 of them PEP 807 MUST)",
            "NOT VERIFIED: 2 PEP 807 MUST check(s) were SKIPPED and prove nothing: upload.single-use, upload.multi-use",
            "verdict: no PEP 807 MUST check failed, but not every one could run",
        ] {
            assert!(
                table.contains(expected),
                "strict {strict}: {expected:?} missing from\n{table}"
            );
        }
    }
}
