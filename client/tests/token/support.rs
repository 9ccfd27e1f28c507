//! trustpub and the issuer started for a test, the binary run against
//! them, and the registry's own view of a credential (introspection).

use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::path::Path;
use std::process::{Command, Output};

use serde_json::{Value, json};
use trustpub::testing::{ACME_AUDIENCE, ACTIONS_REQUEST_TOKEN, TestIssuer, TestServer};

/// The introspection secret of [`acme`]'s registry, and its SHA-256.
const INTROSPECT_SECRET: &str = "change-me";
const INTROSPECT_SECRET_SHA256: &str =
    "e2186dbdb1bb4193608605e84f33208765b5693b55edd4f730a719a100eeea6f";

/// A running trustpub and its origin (`http://127.0.0.1:<port>`).
pub struct Trustpub {
    pub origin: String,
    _server: TestServer,
}

impl Trustpub {
    /// trustpub with the configuration `config(origin)` makes.
    pub async fn start(config: impl FnOnce(&str) -> String) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").expect("a free port");
        let origin = format!("http://127.0.0.1:{}", listener.local_addr().unwrap().port());
        let server = TestServer::start(listener, &config(&origin)).await;
        Trustpub {
            origin,
            _server: server,
        }
    }

    /// trustpub with [`acme`] at `<origin>/legacy/`, trusting `issuer` as
    /// a GitHub issuer.
    pub async fn github(issuer: &TestIssuer) -> Self {
        Self::start(|origin| acme(origin, "/legacy/", issuer.url(), "github", GITHUB)).await
    }

    /// acme's upload URL.
    pub fn upload_url(&self) -> String {
        format!("{}/legacy/", self.origin)
    }

    /// Asserts that `run` minted a live credential of acme's for `widget`.
    pub async fn assert_minted(&self, run: &Run) {
        let answer = self.introspect(run.credential(), "widget").await;
        assert_eq!(answer["active"], true, "{answer}");
    }

    /// What introspection says of `credential` (acme's, for `package`).
    pub async fn introspect(&self, credential: &str, package: &str) -> Value {
        let url = format!("{}/_/trustpub/acme/introspect", self.origin);
        let body = json!({ "token": credential, "package": package });
        tokio::task::spawn_blocking(move || {
            ureq::post(&url)
                .header("Authorization", &format!("Bearer {INTROSPECT_SECRET}"))
                .header("Content-Type", "application/json")
                .send(body.to_string())
                .expect("introspection answers")
                .body_mut()
                .read_to_string()
                .expect("introspection answers")
        })
        .await
        .map(|text| serde_json::from_str(&text).expect("introspection answers JSON"))
        .unwrap()
    }
}

/// The keys of a GitHub publisher matching [`trustpub::testing::TestClaims::github`].
pub const GITHUB: &str = r#"
repository = "octo-org/widget"
repository_owner_id = "9919"
workflow = "release.yml"
"#;

/// Registry `acme` on `origin` at `path`, trusting `issuer` as an issuer of
/// `provider` with one publisher of `keys` that may publish `widget` and
/// `widget-*`; it offers both features, answers PyPI's paths and
/// introspection.
pub fn acme(origin: &str, path: &str, issuer: &str, provider: &str, keys: &str) -> String {
    format!(
        r#"
[[registries]]
name = "acme"
upload_url = "{origin}{path}"
audience = "{ACME_AUDIENCE}"
token_prefix = "acme_"
features = ["multi-use-token", "single-use-token"]
default_features = ["multi-use-token"]
pypi_paths = true
introspect_secret_sha256 = "{INTROSPECT_SECRET_SHA256}"

  [[registries.issuers]]
  url = "{issuer}"
  provider = "{provider}"

  [[registries.publishers]]
  provider = "{provider}"
  issuer = "{issuer}"
  packages = ["widget", "widget-*"]
{keys}
"#
    )
}

/// A GitHub Actions job's variables, pointing at `issuer`'s token endpoint.
pub fn github_actions(issuer: &TestIssuer) -> Vec<(&'static str, String)> {
    vec![
        ("GITHUB_ACTIONS", "true".into()),
        ("ACTIONS_ID_TOKEN_REQUEST_URL", issuer.actions_token_url()),
        (
            "ACTIONS_ID_TOKEN_REQUEST_TOKEN",
            ACTIONS_REQUEST_TOKEN.into(),
        ),
    ]
}

/// What a run of the binary did.
pub struct Run {
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

impl From<Output> for Run {
    fn from(output: Output) -> Self {
        Run {
            code: output.status.code(),
            stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        }
    }
}

impl Run {
    /// The credential of a successful `mint`: stdout, which holds nothing
    /// else.
    pub fn credential(&self) -> &str {
        assert_eq!(self.code, Some(0), "stderr: {}", self.stderr);
        let credential = self.stdout.strip_suffix('\n').expect("a line");
        assert!(
            credential.starts_with("acme_") && !credential.contains('\n'),
            "stdout: {}",
            self.stdout
        );
        credential
    }

    /// Asserts a failure (exit 1, nothing on stdout) whose message holds
    /// each of `parts`.
    pub fn fails_saying(&self, parts: &[&str]) {
        assert_eq!(self.code, Some(1), "stderr: {}", self.stderr);
        assert_eq!(self.stdout, "");
        for part in parts {
            assert!(self.stderr.contains(part), "{part:?} in: {}", self.stderr);
        }
    }
}

/// Runs `trustpub-token args` with only `env` in its environment (and a
/// `PATH` of the system's tools and `bin`, when given), off the runtime's
/// thread, which serves trustpub and the issuer meanwhile.
pub async fn token(args: &[&str], env: &[(&str, String)], bin: Option<&Path>) -> Run {
    let mut path = String::from("/usr/bin:/bin");
    if let Some(bin) = bin {
        path = format!("{}:{path}", bin.display());
    }
    let mut command = Command::new(env!("CARGO_BIN_EXE_trustpub-token"));
    command
        .args(args)
        .env_clear()
        .env("PATH", path)
        .envs(env.iter().map(|(name, value)| (name, value)));
    let run: Run = tokio::task::spawn_blocking(move || command.output())
        .await
        .unwrap()
        .expect("trustpub-token runs")
        .into();
    eprintln!(
        "== trustpub-token {args:?}\n-- stdout\n{}\n-- stderr\n{}",
        run.stdout, run.stderr
    );
    run
}

/// `trustpub-token mint --upload-url <upload_url> <extra…>`, as [`token`].
pub async fn mint(
    upload_url: &str,
    extra: &[&str],
    env: &[(&str, String)],
    bin: Option<&Path>,
) -> Run {
    let mut args = vec!["mint", "--upload-url", upload_url];
    args.extend(extra);
    token(&args, env, bin).await
}

/// [`mint`] in a GitHub Actions job of `issuer`'s.
pub async fn github_mint(issuer: &TestIssuer, upload_url: &str, extra: &[&str]) -> Run {
    mint(upload_url, extra, &github_actions(issuer), None).await
}

/// A folder holding an executable script `name` with `body` (sh), for
/// the CIs' command-line tools.
pub fn script(name: &str, body: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(name);
    std::fs::write(&path, format!("#!/bin/sh\n{body}\n")).unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    dir
}

/// A tiny HTTP server on a loopback port that answers every request with
/// `answer(its port, the request line and headers, the body)`: a status
/// and a body.
/// It records nothing and lives as long as the test process.
pub fn crafted(answer: impl Fn(u16, &str, &str) -> (u16, String) + Send + 'static) -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("a free port");
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let mut head = String::new();
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            let mut length = 0;
            loop {
                let mut line = String::new();
                if reader.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
                    break;
                }
                if let Some((name, value)) = line.split_once(':')
                    && name.eq_ignore_ascii_case("content-length")
                {
                    length = value.trim().parse().unwrap_or(0);
                }
                head.push_str(&line);
            }
            let mut body = vec![0; length];
            let _ = std::io::Read::read_exact(&mut reader, &mut body);
            let (status, body) = answer(port, &head, &String::from_utf8_lossy(&body));
            let _ = write!(
                stream,
                "HTTP/1.1 {status} X\r\nContent-Type: application/json\r\n\
                 Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
        }
    });
    port
}
