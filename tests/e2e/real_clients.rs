//! The real upload clients, unmodified, against trustpub: uv, pdm and
//! maturin from PyPI, installed by `.ci/setup-python` into `.venv-e2e/`.
//! Each runs as in a GitHub Actions job: `GITHUB_ACTIONS`,
//! `ACTIONS_ID_TOKEN_REQUEST_URL` and `_TOKEN` point at the test issuer's
//! token endpoint. They fetch the audience from trustpub, a token for it
//! from the issuer, mint a credential, and upload with it. Where the
//! registry has no upload gateway the upload itself fails (trustpub answers
//! the upload path with 404) and everything up to the upload request is
//! asserted; `uv_publishes_through_the_gateway_to_pypiserver` goes all the
//! way to a real registry.
//!
//! twine is not among them: it tries Trusted Publishing only for PyPI's own
//! URLs (`token_exec.rs` runs it under `trustpub-token exec`). (gh-action-pypi-publish runs twine in a container and needs a
//! runner, so it is not run here either; it uses the same paths as maturin.)

use std::path::{Path, PathBuf};
use std::process::Output;

use trustpub::testing::{ACTIONS_REQUEST_TOKEN, TestIssuer, acme_registry_with};

use crate::helpers::{TestApp, TestCa, spawn_app_with_port};

/// A program of the project-local virtual environment; fails the test,
/// saying how to install it, when it is missing.
pub fn tool(name: &str) -> PathBuf {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join(".venv-e2e/bin")
        .join(name);
    assert!(
        path.is_file(),
        "{} is missing: run .ci/setup-python (which .ci/test runs) to install the clients",
        path.display()
    );
    path
}

/// trustpub serving acme's PyPI paths on its own address, over https with
/// `ca`'s certificate when given, plain http otherwise.
async fn serve(issuer: &TestIssuer, ca: Option<&TestCa>) -> TestApp {
    serve_with(issuer, ca, "").await
}

/// [`serve`], with `keys` (TOML) added to acme's table.
pub async fn serve_with(issuer: &TestIssuer, ca: Option<&TestCa>, keys: &str) -> TestApp {
    let tls = ca.map(TestCa::server_tls).unwrap_or_default();
    let scheme = if ca.is_some() { "https" } else { "http" };
    spawn_app_with_port(|port| {
        let acme = acme_registry_with(issuer.url(), &format!("pypi_paths = true\n{keys}")).replace(
            "https://pypi.acme.test/legacy/",
            &format!("{scheme}://127.0.0.1:{port}/legacy/"),
        );
        format!("{tls}\n{acme}")
    })
    .await
}

/// A scratch folder with a wheel of `widget` in `dist/`.
fn workspace() -> tempfile::TempDir {
    workspace_of("widget")
}

/// A scratch folder with a wheel of `package` 0.1.0 in `dist/`.
pub fn workspace_of(package: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    run_python(&[
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/e2e/make_dist.py")
            .as_os_str(),
        package.as_ref(),
        "0.1.0".as_ref(),
        dir.path().join("dist").as_os_str(),
    ]);
    dir
}

/// pip installs `requirement` from the simple index at `index_url` alone,
/// trusting `ca` when given (an index behind https), and the installed
/// package has the module `module`; fails the test with what pip said
/// otherwise.
pub fn pip_installs(index_url: &str, ca: Option<&TestCa>, requirement: &str, module: &str) {
    let target = tempfile::tempdir().unwrap();
    let mut pip = std::process::Command::new(tool("python"));
    pip.args(["-m", "pip", "install", "--no-deps", "--no-cache-dir"])
        .args(["--disable-pip-version-check", "--index-url", index_url])
        .arg("--target")
        .arg(target.path())
        .arg(requirement)
        .env("PIP_FIND_LINKS", "");
    if let Some(ca) = ca {
        // pip verifies with the system's store (truststore), which reads
        // this variable (`--cert` did not reach it).
        pip.env("SSL_CERT_FILE", ca.path("ca.pem"));
    }
    let installed = pip.output().unwrap();
    assert!(
        installed.status.success(),
        "{}",
        String::from_utf8_lossy(&installed.stderr)
    );
    assert!(target.path().join(module).join("__init__.py").is_file());
}

/// Runs the virtual environment's Python with `args`; fails the test, with
/// what Python said, unless it succeeds.
pub fn run_python(args: &[&std::ffi::OsStr]) {
    let ran = std::process::Command::new(tool("python"))
        .args(args)
        .output()
        .unwrap();
    assert!(
        ran.status.success(),
        "{}",
        String::from_utf8_lossy(&ran.stderr)
    );
}

/// Runs a client in `dir` with a clean environment: a GitHub Actions job's
/// variables, a home of its own, and `extra`. Runs off the test's runtime
/// thread, which serves trustpub meanwhile.
pub async fn run(
    program: PathBuf,
    args: Vec<String>,
    dir: &Path,
    issuer: &TestIssuer,
    extra: Vec<(&'static str, String)>,
) -> Output {
    let mut command = std::process::Command::new(&program);
    command
        .args(&args)
        .current_dir(dir)
        .env_clear()
        .env("PATH", tool("python").parent().unwrap())
        .env("HOME", dir)
        .env("GITHUB_ACTIONS", "true")
        .env("CI", "true")
        .env("ACTIONS_ID_TOKEN_REQUEST_URL", issuer.actions_token_url())
        .env("ACTIONS_ID_TOKEN_REQUEST_TOKEN", ACTIONS_REQUEST_TOKEN)
        .env("NO_COLOR", "1")
        .envs(extra);
    let output = tokio::task::spawn_blocking(move || command.output())
        .await
        .unwrap()
        .unwrap_or_else(|e| panic!("running {}: {e}", program.display()));
    eprintln!(
        "== {} {}\n-- stdout\n{}\n-- stderr\n{}",
        program.display(),
        args.join(" "),
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    output
}

/// Whether `credential` is one of acme's, unexpired and not revoked.
async fn is_valid(app: &TestApp, credential: &str) -> bool {
    let hash = trustpub::tokens::hash(credential);
    let stored = app.store.upload_token("acme", &hash).await.unwrap();
    stored.is_some_and(|t| t.revoked_at.is_none() && t.expires_at > trustpub::store::now())
}

/// The credential a client told GitHub Actions to mask (`::add-mask::`).
pub fn masked_credential(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .find_map(|line| line.trim().strip_prefix("::add-mask::"))
        .map(str::to_owned)
        .expect("the client printed ::add-mask:: with the minted credential")
}

/// The mint the client made: one token for acme's audience from the
/// issuer, and one credential minted.
async fn assert_minted_once(app: &TestApp, issuer: &TestIssuer) {
    assert_eq!(issuer.actions_audiences(), ["acme-pypi"]);
    assert_eq!(app.store.count_upload_tokens("acme").await.unwrap(), 1);
    let events = app.store.events("acme").await.unwrap();
    assert!(
        events
            .iter()
            .any(|e| (e.kind.as_str(), e.outcome.as_str()) == ("mint", "minted")),
        "{events:?}"
    );
}

/// `uv publish` of the wheel to trustpub's `/legacy/`, with Trusted
/// Publishing forced: without it, uv in GitHub Actions tries it too, but
/// falls back to asking for credentials when it fails.
async fn uv_publish(app: &TestApp, issuer: &TestIssuer, ca: &TestCa) -> Output {
    uv_publish_package(app, issuer, ca, "widget").await
}

/// [`uv_publish`] of a wheel of `package`.
pub async fn uv_publish_package(
    app: &TestApp,
    issuer: &TestIssuer,
    ca: &TestCa,
    package: &str,
) -> Output {
    uv_publish_to(&format!("{}/legacy/", app.address), issuer, ca, package).await
}

/// [`uv_publish`] of a wheel of `package` to `url`, over https that trusts
/// `ca`.
pub async fn uv_publish_to(url: &str, issuer: &TestIssuer, ca: &TestCa, package: &str) -> Output {
    let dir = workspace_of(package);
    let cache = dir.path().join("cache").display().to_string();
    run(
        tool("uv"),
        vec![
            "publish".into(),
            "--trusted-publishing".into(),
            "always".into(),
            "--publish-url".into(),
            url.into(),
            format!("dist/{package}-0.1.0-py3-none-any.whl"),
        ],
        dir.path(),
        issuer,
        vec![
            ("SSL_CERT_FILE", ca.path("ca.pem")),
            ("UV_CACHE_DIR", cache),
        ],
    )
    .await
}

/// uv forces https for the implicit paths: trustpub serves TLS, and uv
/// trusts the test CA through `SSL_CERT_FILE`. After the upload, failed
/// or not, uv burns the credential.
#[tokio::test]
async fn uv_mints_over_https_and_burns() {
    let issuer = TestIssuer::start().await;
    let ca = TestCa::new();
    let app = serve(&issuer, Some(&ca)).await;
    let output = uv_publish(&app, &issuer, &ca).await;

    let credential = masked_credential(&output);
    assert!(
        trustpub::tokens::is_well_formed("acme_", &credential),
        "{credential}"
    );
    assert_minted_once(&app, &issuer).await;
    // It went on to upload, which fails without an upload gateway.
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success());
    assert!(stderr.contains("404"), "{stderr}");
    // Then it burnt the credential.
    assert!(!stderr.contains("Failed to invalidate"), "{stderr}");
    let hash = trustpub::tokens::hash(&credential);
    let stored = app.store.upload_token("acme", &hash).await.unwrap();
    assert!(
        stored.unwrap().revoked_at.is_some(),
        "uv's burn-token revoked it"
    );
    let events = app.store.events("acme").await.unwrap();
    let last = events.last().unwrap();
    assert_eq!(
        (last.kind.as_str(), last.outcome.as_str()),
        ("revoke", "revoked")
    );
}

/// A job that is not a trusted publisher gets trustpub's refusal, and uv
/// shows it.
#[tokio::test]
async fn uv_shows_a_refusal() {
    let issuer = TestIssuer::start().await;
    issuer.set_actions_claims(|claims| claims.set("repository_owner_id", "666"));
    let ca = TestCa::new();
    let app = serve(&issuer, Some(&ca)).await;
    let output = uv_publish(&app, &issuer, &ca).await;

    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("403"), "{stderr}");
    assert!(stderr.contains("invalid-publisher"), "{stderr}");
    assert_eq!(app.store.count_upload_tokens("acme").await.unwrap(), 0);
}

/// pdm keeps the upload URL's scheme; over https it trusts the test CA
/// through `--ca-certs`.
#[tokio::test]
async fn pdm_mints_over_https() {
    let issuer = TestIssuer::start().await;
    let ca = TestCa::new();
    let app = serve(&issuer, Some(&ca)).await;
    let dir = workspace();
    std::fs::write(
        dir.path().join("pyproject.toml"),
        "[project]\nname = \"widget\"\nversion = \"0.1.0\"\nrequires-python = \">=3.8\"\n",
    )
    .unwrap();
    let output = run(
        tool("pdm"),
        vec![
            "publish".into(),
            "--no-build".into(),
            "--repository".into(),
            format!("{}/legacy/", app.address),
            "--ca-certs".into(),
            ca.path("ca.pem"),
        ],
        dir.path(),
        &issuer,
        vec![
            ("PDM_CHECK_UPDATE", "false".into()),
            // No virtual environment for the project: publishing needs none.
            ("PDM_USE_VENV", "false".into()),
            ("PDM_PYTHON", tool("python").display().to_string()),
        ],
    )
    .await;

    let credential = masked_credential(&output);
    assert!(is_valid(&app, &credential).await, "pdm burns nothing");
    assert_minted_once(&app, &issuer).await;
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success());
    assert!(stderr.contains("404"), "{stderr}");
}

/// maturin posts to `/_/oidc/github/mint-token`, and prints no credential;
/// its Trusted Publishing requests ignore its CA bundle settings, so it
/// talks plain http here (it keeps the URL's scheme).
#[tokio::test]
async fn maturin_mints_over_http() {
    let issuer = TestIssuer::start().await;
    let app = serve(&issuer, None).await;
    let dir = workspace();
    let output = run(
        tool("maturin"),
        vec![
            "upload".into(),
            "--non-interactive".into(),
            "--repository-url".into(),
            format!("{}/legacy/", app.address),
            "dist/widget-0.1.0-py3-none-any.whl".into(),
        ],
        dir.path(),
        &issuer,
        vec![],
    )
    .await;

    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("Using trusted publisher for upload"),
        "{stderr}"
    );
    assert_minted_once(&app, &issuer).await;
    assert!(!output.status.success());
    assert!(stderr.contains("404"), "{stderr}");
}

/// A program of the virtual environment serving HTTP on a free port (given
/// to `args` as `{port}`), started and answering `probe`; killed on drop.
pub struct PythonServer {
    process: std::process::Child,
    pub port: u16,
    /// Where the program's stderr goes, read when it does not start.
    log: tempfile::NamedTempFile,
}

impl Drop for PythonServer {
    fn drop(&mut self) {
        let _ = self.process.kill();
        let _ = self.process.wait();
    }
}

impl PythonServer {
    pub async fn start(program: &str, args: &[&str], probe: &str) -> Self {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let log = tempfile::NamedTempFile::new().unwrap();
        let process = std::process::Command::new(tool(program))
            .args(args.iter().map(|a| a.replace("{port}", &port.to_string())))
            .stdout(std::process::Stdio::null())
            .stderr(log.reopen().unwrap())
            .spawn()
            .unwrap_or_else(|e| panic!("{program} starts: {e}"));
        let mut server = PythonServer { process, port, log };
        // devpi-server takes its time on a busy machine (20 s seen while
        // the machine compiled), so the wait is long; a program that exits
        // ends it at once.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(240);
        while reqwest::get(server.url(probe)).await.is_err() {
            let exited = server.process.try_wait().unwrap();
            if exited.is_some() || std::time::Instant::now() > deadline {
                let log = std::fs::read_to_string(server.log.path()).unwrap_or_default();
                let tail: Vec<&str> = log.lines().rev().take(20).collect();
                panic!(
                    "{program} did not start ({}); the end of its stderr:\n{}",
                    exited.map_or("still not answering".to_owned(), |s| s.to_string()),
                    tail.into_iter().rev().collect::<Vec<_>>().join("\n")
                );
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        server
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }
}

/// pypiserver, the real registry, on a random port: uploads need Basic
/// authentication as `uploader` (an htpasswd file), downloads are open.
pub struct Pypiserver {
    server: PythonServer,
    packages: tempfile::TempDir,
    _auth: tempfile::TempDir,
}

const PYPISERVER_PASSWORD: &str = "pypiserver-upload-password";

impl Pypiserver {
    pub async fn start() -> Self {
        let auth = tempfile::tempdir().unwrap();
        let htpasswd = auth.path().join("htpasswd");
        run_python(&[
            "-c".as_ref(),
            "import sys\nfrom passlib.apache import HtpasswdFile\n\
             f = HtpasswdFile(sys.argv[1], new=True)\n\
             f.set_password('uploader', sys.argv[2])\nf.save()"
                .as_ref(),
            htpasswd.as_os_str(),
            PYPISERVER_PASSWORD.as_ref(),
        ]);
        std::fs::write(auth.path().join("password"), PYPISERVER_PASSWORD).unwrap();
        let packages = tempfile::tempdir().unwrap();
        let (htpasswd, packages_dir) = (
            htpasswd.display().to_string(),
            packages.path().display().to_string(),
        );
        let server = PythonServer::start(
            "pypi-server",
            &[
                "run",
                "--host",
                "127.0.0.1",
                "--port",
                "{port}",
                "--passwords",
                &htpasswd,
                "--authenticate",
                "update",
                &packages_dir,
            ],
            "/simple/",
        )
        .await;
        Pypiserver {
            server,
            packages,
            _auth: auth,
        }
    }

    pub fn url(&self, path: &str) -> String {
        self.server.url(path)
    }

    /// The gateway table that forwards acme's uploads here.
    pub fn gateway(&self) -> String {
        format!(
            "[registries.gateway]\nupstream = \"{}\"\n\
             credential = {{ scheme = \"basic\", username = \"uploader\", secret_file = {:?} }}\n",
            self.url("/"),
            self._auth.path().join("password").display().to_string()
        )
    }

    pub fn files(&self) -> Vec<String> {
        let mut files: Vec<String> = std::fs::read_dir(self.packages.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        files.sort();
        files
    }
}

/// The whole way: `uv publish --trusted-publishing always` in a simulated
/// GitHub Actions job mints from trustpub and uploads through its gateway
/// into a pypiserver that knows nothing of trustpub; the wheel then
/// installs from pypiserver. A package outside the credential's scope is
/// refused and never reaches pypiserver.
#[tokio::test]
async fn uv_publishes_through_the_gateway_to_pypiserver() {
    let registry = Pypiserver::start().await;
    let issuer = TestIssuer::start().await;
    let ca = TestCa::new();
    let app = serve_with(&issuer, Some(&ca), &registry.gateway()).await;

    let output = uv_publish(&app, &issuer, &ca).await;
    assert!(output.status.success(), "uv publish failed");
    assert_eq!(registry.files(), ["widget-0.1.0-py3-none-any.whl"]);
    let events = app.store.events("acme").await.unwrap();
    let upload = events
        .iter()
        .find(|e| e.kind == "upload")
        .expect("an upload event");
    assert_eq!(
        (upload.outcome.as_str(), upload.code.as_str()),
        ("forwarded", "ok")
    );
    assert!(
        upload.detail.contains("upstream status: 200"),
        "{}",
        upload.detail
    );
    // uv burnt the credential after the upload.
    let last = events.last().unwrap();
    assert_eq!(
        (last.kind.as_str(), last.outcome.as_str()),
        ("revoke", "revoked")
    );

    // The wheel installs from pypiserver.
    pip_installs(&registry.url("/simple/"), None, "widget==0.1.0", "widget");

    // gadget is not among acme's packages for this publisher.
    let output = uv_publish_package(&app, &issuer, &ca, "gadget").await;
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("403"), "{stderr}");
    assert_eq!(registry.files(), ["widget-0.1.0-py3-none-any.whl"]);
}
