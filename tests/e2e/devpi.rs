//! devpi-server, a registry with users and per-index upload ACLs, behind
//! nginx and trustpub's upload gateway as the devpi recipe in
//! docs/src/recipes.md sets them up: its nginx block is read from the
//! recipe and run as written but for its ports and certificate. The index
//! `ci-uploader/release` takes uploads only from its owner, whose password
//! only trustpub's gateway holds, and from `alice`; `stranger` may not
//! upload there. Every client speaks to nginx only, at the index URL.
//!
//! Trusted publishes with uv and twine land there and install with pip; an
//! out-of-scope package never reaches devpi. With
//! `pass_through_foreign_credentials`, devpi's users upload with their own
//! passwords through the same URL, with uv and with devpi's own client
//! (releases, documentation, `devpi push`), and devpi judges them; without
//! it, trustpub refuses devpi's own client.

use std::path::Path;
use std::process::Output;

use serde_json::json;
use trustpub::testing::{ACME_AUDIENCE, TestIssuer, acme_registry_with};

use crate::fixtures::mint_through;
use crate::helpers::{TestApp, TestCa, refusals, spawn_app};
use crate::nginx::{Nginx, documented_nginx, free_port, start_nginx_server};
use crate::real_clients::{
    PythonServer, pip_installs, run, run_python, tool, uv_publish_to, workspace_of,
};

const ROOT_PASSWORD: &str = "devpi-root-password";
const UPLOADER_PASSWORD: &str = "devpi-uploader-password";
const ALICE_PASSWORD: &str = "devpi-alice-password";
const STRANGER_PASSWORD: &str = "devpi-stranger-password";

/// The index CI publishes to, as the recipe names it.
const RELEASE: &str = "/ci-uploader/release/";

struct Devpi {
    server: PythonServer,
    dir: tempfile::TempDir,
}

impl Devpi {
    /// A fresh devpi-server with no PyPI mirror (nothing leaves the
    /// machine): the gateway's user `ci-uploader`, its index `release`,
    /// whose uploads only it and `alice` may make, and its index
    /// `staging`, where `alice` may upload too; `stranger`, who may upload
    /// to neither.
    async fn start() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let serverdir = dir.path().join("server").display().to_string();
        let init = std::process::Command::new(tool("devpi-init"))
            .args([
                "--serverdir",
                &serverdir,
                "--root-passwd",
                ROOT_PASSWORD,
                "--no-root-pypi",
            ])
            .output()
            .unwrap();
        assert!(
            init.status.success(),
            "{}",
            String::from_utf8_lossy(&init.stderr)
        );
        std::fs::write(dir.path().join("password"), UPLOADER_PASSWORD).unwrap();
        let server = PythonServer::start(
            "devpi-server",
            &[
                "--serverdir",
                &serverdir,
                "--host",
                "127.0.0.1",
                "--port",
                "{port}",
            ],
            "/+api",
        )
        .await;
        let devpi = Devpi { server, dir };
        let url = devpi.server.url("");
        devpi.admin(&["use", &url]);
        devpi.admin(&["login", "root", "--password", ROOT_PASSWORD]);
        for (user, password) in [
            ("ci-uploader", UPLOADER_PASSWORD),
            ("alice", ALICE_PASSWORD),
            ("stranger", STRANGER_PASSWORD),
        ] {
            devpi.admin(&["user", "-c", user, &format!("password={password}")]);
        }
        devpi.admin(&["login", "ci-uploader", "--password", UPLOADER_PASSWORD]);
        for index in ["release", "staging"] {
            devpi.admin(&[
                "index",
                "-c",
                index,
                "bases=",
                "acl_upload=ci-uploader,alice",
            ]);
        }
        devpi
    }

    /// Runs devpi's own client straight at devpi, as its administrator;
    /// fails the test unless it succeeds.
    fn admin(&self, args: &[&str]) {
        let ran = std::process::Command::new(tool("devpi"))
            .args(args)
            .env("DEVPI_CLIENTDIR", self.dir.path().join("admin"))
            .output()
            .unwrap();
        assert!(
            ran.status.success(),
            "devpi {}: {}{}",
            args.join(" "),
            String::from_utf8_lossy(&ran.stdout),
            String::from_utf8_lossy(&ran.stderr)
        );
    }

    /// `project` 0.1.0 as devpi has it in `index` (asked directly), as JSON
    /// text, if devpi has it.
    async fn release(&self, index: &str, project: &str) -> Option<String> {
        let response = reqwest::Client::new()
            .get(
                self.server
                    .url(&format!("/ci-uploader/{index}/{project}/0.1.0")),
            )
            .header("Accept", "application/json")
            .send()
            .await
            .unwrap();
        response
            .status()
            .is_success()
            .then_some(response.text().await.unwrap())
    }
}

/// devpi behind nginx and trustpub, as the recipe has them, and the
/// clients' view: `https://localhost:<port>`, with the test CA's
/// certificate (nginx terminates TLS; trustpub serves plain http behind
/// it).
struct Front {
    devpi: Devpi,
    issuer: TestIssuer,
    ca: TestCa,
    app: TestApp,
    _nginx: Nginx,
    /// `https://localhost:<port>`: what the clients know.
    public: String,
}

impl Front {
    async fn start(pass_through: bool) -> Self {
        let devpi = Devpi::start().await;
        let issuer = TestIssuer::start().await;
        let ca = TestCa::new();
        let port = free_port();
        let public = format!("https://localhost:{port}");
        let keys = format!(
            "pypi_paths = true\n[registries.gateway]\nupstream = \"{}\"\n\
             credential = {{ scheme = \"basic\", username = \"ci-uploader\", secret_file = {:?} }}\n\
             pass_through_foreign_credentials = {pass_through}\n",
            devpi.server.url(RELEASE),
            devpi.dir.path().join("password").display().to_string()
        );
        let app = spawn_app(&acme_registry_with(issuer.url(), &keys).replace(
            "https://pypi.acme.test/legacy/",
            &format!("{public}{RELEASE}"),
        ))
        .await;
        let server = documented_nginx(
            "recipes.md",
            "server {                                    # devpi.acme.example",
            &[
                ("listen 443 ssl;", format!("listen 127.0.0.1:{port} ssl;")),
                (
                    "# ssl_certificate …; ssl_certificate_key …;",
                    format!(
                        "ssl_certificate {}; ssl_certificate_key {};",
                        ca.path("cert.pem"),
                        ca.path("key.pem")
                    ),
                ),
                ("http://127.0.0.1:8080", app.address.clone()),
                ("http://127.0.0.1:3141", devpi.server.url("")),
            ],
        );
        let nginx = start_nginx_server(port, &server).await;
        Front {
            devpi,
            issuer,
            ca,
            app,
            _nginx: nginx,
            public,
        }
    }

    /// The index URL, as the clients know it.
    fn index(&self) -> String {
        format!("{}{RELEASE}", self.public)
    }

    /// A credential of acme, minted through nginx.
    async fn mint(&self) -> String {
        let client = self.ca.client();
        let (issuer, base) = (&self.issuer, &self.public);
        mint_through(&client, base, issuer, "acme", ACME_AUDIENCE, json!({})).await
    }

    /// The wheel of `package` 0.1.0 is on the index (devpi asked
    /// directly), and pip installs it from there through nginx.
    async fn assert_published(&self, package: &str) {
        let release = self.devpi.release("release", package).await;
        assert!(
            release.is_some_and(|r| r.contains(&wheel(package))),
            "{package} is on the index"
        );
        pip_installs(
            &format!("{}+simple/", self.index()),
            Some(&self.ca),
            &format!("{package}==0.1.0"),
            &module(package),
        );
    }

    /// twine uploads the wheel of `package` to the index with `username`
    /// and `password`, at the index URL without its trailing slash, as
    /// devpi's client shows it.
    async fn twine(&self, package: &str, username: &str, password: &str) -> Output {
        let dir = workspace_of(package);
        let index = self.index();
        let args = [
            "upload",
            "--non-interactive",
            "--disable-progress-bar",
            "--repository-url",
            index.trim_end_matches('/'),
            "--cert",
            &self.ca.path("ca.pem"),
            "-u",
            username,
            "-p",
            password,
            "dist/*",
        ];
        let args = args.iter().map(|a| a.to_string()).collect();
        run(tool("twine"), args, dir.path(), &self.issuer, vec![]).await
    }

    /// uv uploads the wheel of `package` to the index with devpi's user
    /// `username` and `password`, no Trusted Publishing.
    async fn uv_as_devpi_user(&self, package: &str, username: &str, password: &str) -> Output {
        let dir = workspace_of(package);
        let args = [
            "publish",
            "--trusted-publishing",
            "never",
            "--username",
            username,
            "--password",
            password,
            "--publish-url",
            &self.index(),
            &format!("dist/{}", wheel(package)),
        ];
        let args = args.iter().map(|a| a.to_string()).collect();
        let env = vec![
            ("SSL_CERT_FILE", self.ca.path("ca.pem")),
            (
                "UV_CACHE_DIR",
                dir.path().join("cache").display().to_string(),
            ),
        ];
        run(tool("uv"), args, dir.path(), &self.issuer, env).await
    }

    /// devpi's own client in `dir`, with its state there, speaking to
    /// nginx only.
    async fn devpi(&self, dir: &Path, args: &[&str]) -> Output {
        let env = vec![
            (
                "DEVPI_CLIENTDIR",
                dir.join("devpi-client").display().to_string(),
            ),
            ("REQUESTS_CA_BUNDLE", self.ca.path("ca.pem")),
        ];
        let args = args.iter().map(|a| a.to_string()).collect();
        run(tool("devpi"), args, dir, &self.issuer, env).await
    }

    /// A folder with a wheel of `package` and its documentation in `dist/`,
    /// where devpi's client is logged in to the index through nginx as
    /// `user`.
    async fn devpi_session(&self, package: &str, user: &str, password: &str) -> tempfile::TempDir {
        let dir = workspace_of(package);
        let docs = dir
            .path()
            .join(format!("dist/{}-0.1.0.doc.zip", module(package)));
        run_python(&[
            "-c".as_ref(),
            "import sys, zipfile\n\
             with zipfile.ZipFile(sys.argv[1], 'w') as z:\n    \
             z.writestr('index.html', '<h1>documentation</h1>')"
                .as_ref(),
            docs.as_os_str(),
        ]);
        let index = self.index();
        for args in [
            &["use", &index][..],
            &["login", user, "--password", password],
        ] {
            let output = self.devpi(dir.path(), args).await;
            assert!(output.status.success(), "devpi {}", args.join(" "));
        }
        dir
    }

    /// `devpi upload` of the wheel of `package` and its documentation, in
    /// a session of `dir`.
    async fn devpi_upload(&self, dir: &Path, package: &str) -> Output {
        let wheel = format!("dist/{}", wheel(package));
        let docs = format!("dist/{}-0.1.0.doc.zip", module(package));
        self.devpi(dir, &["upload", &wheel, &docs]).await
    }

    /// `devpi upload` of `package` as `user` (name, password) fails with
    /// `status`, and devpi has nothing of it; answers the session.
    async fn devpi_upload_refused(
        &self,
        package: &str,
        (user, password): (&str, &str),
        status: &str,
    ) -> tempfile::TempDir {
        let session = self.devpi_session(package, user, password).await;
        let output = self.devpi_upload(session.path(), package).await;
        assert!(!output.status.success());
        assert!(said(&output).contains(status), "{}", said(&output));
        assert_eq!(self.devpi.release("release", package).await, None);
        session
    }
}

/// `package`'s name as its files and module spell it.
fn module(package: &str) -> String {
    package.replace('-', "_")
}

/// The name of the wheel of `package` 0.1.0 that `workspace_of` builds.
fn wheel(package: &str) -> String {
    format!("{}-0.1.0-py3-none-any.whl", module(package))
}

/// What a client printed, both streams.
fn said(output: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

#[tokio::test]
async fn uv_and_twine_publish_through_the_recipes_nginx_into_a_devpi_index() {
    let front = Front::start(false).await;

    // uv: Trusted Publishing on the index's host, through nginx.
    let output = uv_publish_to(&front.index(), &front.issuer, &front.ca, "widget").await;
    assert!(output.status.success(), "uv publish failed");
    front.assert_published("widget").await;

    // twine with a credential minted through nginx.
    let credential = front.mint().await;
    let output = front.twine("widget-extra", "__token__", &credential).await;
    assert!(output.status.success(), "twine upload failed");
    front.assert_published("widget-extra").await;

    // gadget is not among acme's packages: refused, and devpi never sees it.
    let output = uv_publish_to(&front.index(), &front.issuer, &front.ca, "gadget").await;
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("403"));
    let output = front.twine("gadget", "__token__", &credential).await;
    assert!(!output.status.success());
    assert!(said(&output).contains("403"), "{}", said(&output));
    assert_eq!(front.devpi.release("release", "gadget").await, None);

    // Without pass-through, devpi's own client gets in (its login goes to
    // devpi), but its upload, even as the gateway's own account, is
    // refused by trustpub and never reaches devpi.
    let user = ("ci-uploader", UPLOADER_PASSWORD);
    front.devpi_upload_refused("widget-docs", user, "401").await;
    let uploads = front.app.store.events("acme").await.unwrap();
    let forwarded = uploads
        .iter()
        .filter(|e| e.kind == "upload" && e.outcome == "forwarded")
        .count();
    assert_eq!(forwarded, 2, "{uploads:?}");
    assert_eq!(
        refusals(&front.app, "acme", "upload", "passed-through").await,
        0
    );
}

#[tokio::test]
async fn devpi_users_and_devpi_client_pass_through_when_it_is_on() {
    let front = Front::start(true).await;

    // uv with devpi's user and password: a wrong password passes through
    // too, and devpi refuses it; the right one, devpi takes.
    let output = front
        .uv_as_devpi_user("gadget", "alice", "wrong-password")
        .await;
    assert!(!output.status.success());
    assert_eq!(front.devpi.release("release", "gadget").await, None);
    let output = front
        .uv_as_devpi_user("gadget", "alice", ALICE_PASSWORD)
        .await;
    assert!(output.status.success(), "uv as alice failed");
    front.assert_published("gadget").await;

    // devpi's own client: a release and its documentation, then a push of
    // both to another index.
    let session = front.devpi_session("gizmo", "alice", ALICE_PASSWORD).await;
    let output = front.devpi_upload(session.path(), "gizmo").await;
    assert!(output.status.success(), "devpi upload: {}", said(&output));
    let release = front.devpi.release("release", "gizmo").await.unwrap();
    assert!(
        release.contains("gizmo-0.1.0-py3-none-any.whl"),
        "{release}"
    );
    assert!(release.contains("gizmo-0.1.0.doc.zip"), "{release}");
    let output = front
        .devpi(
            session.path(),
            &["push", "gizmo==0.1.0", "ci-uploader/staging"],
        )
        .await;
    assert!(output.status.success(), "devpi push: {}", said(&output));
    let pushed = front.devpi.release("staging", "gizmo").await.unwrap();
    assert!(pushed.contains("gizmo-0.1.0-py3-none-any.whl"), "{pushed}");
    assert!(pushed.contains("gizmo-0.1.0.doc.zip"), "{pushed}");

    // A devpi user whom the index's acl_upload leaves out: passed through,
    // and devpi's refusal passed back.
    let user = ("stranger", STRANGER_PASSWORD);
    let session = front.devpi_upload_refused("gimlet", user, "403").await;
    // Nor may that user push into the index from another: devpi's
    // acl_upload decides (a push does not go through trustpub).
    let push = ["push", "gizmo==0.1.0", "ci-uploader/release"];
    let output = front
        .devpi(
            session.path(),
            &[&push[..], &["--index", "ci-uploader/staging"]].concat(),
        )
        .await;
    assert!(!output.status.success());
    assert!(said(&output).contains("cannot upload"), "{}", said(&output));

    // A credential of acme's own prefix is never passed through: a forged
    // one is refused by trustpub, whatever devpi would say.
    let output = front
        .twine("widget", "__token__", "acme_not-a-credential")
        .await;
    assert!(said(&output).contains("401"), "{}", said(&output));
    assert_eq!(front.devpi.release("release", "widget").await, None);

    // Counted, as uploads that proved nothing to trustpub: uv twice, the
    // release and its documentation, the stranger's release.
    let passed = refusals(&front.app, "acme", "upload", "passed-through").await;
    assert_eq!(passed, 5);
}
