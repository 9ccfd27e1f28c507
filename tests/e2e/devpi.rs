//! devpi-server, a registry with users and per-index upload ACLs, behind
//! trustpub's upload gateway, as the devpi recipe in docs/src/recipes.md
//! sets it up: the index `uploader/dev` takes uploads only from its owner,
//! whose password only trustpub's gateway holds. A trusted publish with uv
//! lands there and installs with pip; an out-of-scope package never reaches
//! devpi; with `pass_through_foreign_credentials`, devpi's own users upload
//! with their own passwords through the same URL.

use trustpub::testing::TestIssuer;

use crate::helpers::{TestApp, TestCa};
use crate::real_clients::{
    PythonServer, pip_installs, run, serve_with, tool, uv_publish_package, workspace_of,
};

const ROOT_PASSWORD: &str = "devpi-root-password";
const UPLOADER_PASSWORD: &str = "devpi-uploader-password";

struct Devpi {
    server: PythonServer,
    dir: tempfile::TempDir,
}

impl Devpi {
    /// A fresh devpi-server with no PyPI mirror (nothing leaves the
    /// machine), the user `uploader` and its index `dev`, whose uploads
    /// only `uploader` may make.
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
        devpi.client(&["use", &url]);
        devpi.client(&["login", "root", "--password", ROOT_PASSWORD]);
        devpi.client(&[
            "user",
            "-c",
            "uploader",
            &format!("password={UPLOADER_PASSWORD}"),
        ]);
        devpi.client(&["login", "uploader", "--password", UPLOADER_PASSWORD]);
        devpi.client(&["index", "-c", "dev", "bases=", "acl_upload=uploader"]);
        devpi
    }

    /// Runs devpi's own client; fails the test unless it succeeds.
    fn client(&self, args: &[&str]) {
        let ran = std::process::Command::new(tool("devpi"))
            .args(args)
            .env("DEVPI_CLIENTDIR", self.dir.path().join("client"))
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

    /// acme's gateway to the index, as its owner, with `extra` keys.
    fn gateway(&self, extra: &str) -> String {
        format!(
            "[registries.gateway]\nupstream = \"{}\"\n\
             credential = {{ scheme = \"basic\", username = \"uploader\", secret_file = {:?} }}\n{extra}\n",
            self.server.url("/uploader/dev/"),
            self.dir.path().join("password").display().to_string()
        )
    }

    /// The index's simple page of `project`, if devpi has one.
    async fn simple(&self, project: &str) -> Option<String> {
        let response = reqwest::get(
            self.server
                .url(&format!("/uploader/dev/+simple/{project}/")),
        )
        .await
        .unwrap();
        response
            .status()
            .is_success()
            .then_some(response.text().await.unwrap())
    }
}

#[tokio::test]
async fn uv_publishes_through_the_gateway_into_a_devpi_index_with_upload_acls() {
    let devpi = Devpi::start().await;
    let issuer = TestIssuer::start().await;
    let ca = TestCa::new();
    let app = serve_with(&issuer, Some(&ca), &devpi.gateway("")).await;

    let output = uv_publish_package(&app, &issuer, &ca, "widget").await;
    assert!(output.status.success(), "uv publish failed");
    let page = devpi
        .simple("widget")
        .await
        .expect("widget is on the index");
    assert!(page.contains("widget-0.1.0-py3-none-any.whl"), "{page}");
    pip_installs(
        &devpi.server.url("/uploader/dev/+simple/"),
        "widget==0.1.0",
        "widget",
    );

    // gadget is not among acme's packages: refused, and devpi never sees it.
    let output = uv_publish_package(&app, &issuer, &ca, "gadget").await;
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("403"));
    assert_eq!(devpi.simple("gadget").await, None);
}

/// uv with devpi's own user and password, through trustpub's URL.
async fn uv_as_devpi_user(app: &TestApp, issuer: &TestIssuer, ca: &TestCa, password: &str) -> bool {
    let dir = workspace_of("gadget");
    let output = run(
        tool("uv"),
        vec![
            "publish".into(),
            "--trusted-publishing".into(),
            "never".into(),
            "--username".into(),
            "uploader".into(),
            "--password".into(),
            password.into(),
            "--publish-url".into(),
            format!("{}/legacy/", app.address),
            "dist/gadget-0.1.0-py3-none-any.whl".into(),
        ],
        dir.path(),
        issuer,
        vec![
            ("SSL_CERT_FILE", ca.path("ca.pem")),
            (
                "UV_CACHE_DIR",
                dir.path().join("cache").display().to_string(),
            ),
        ],
    )
    .await;
    output.status.success()
}

#[tokio::test]
async fn devpi_users_upload_with_their_own_passwords_when_pass_through_is_on() {
    let devpi = Devpi::start().await;
    let issuer = TestIssuer::start().await;
    let ca = TestCa::new();
    let app = serve_with(
        &issuer,
        Some(&ca),
        &devpi.gateway("pass_through_foreign_credentials = true"),
    )
    .await;
    // A wrong password passes through too, and devpi refuses it.
    assert!(!uv_as_devpi_user(&app, &issuer, &ca, "wrong-password").await);
    assert_eq!(devpi.simple("gadget").await, None);
    // devpi's own user: devpi judges, and takes it.
    assert!(uv_as_devpi_user(&app, &issuer, &ca, UPLOADER_PASSWORD).await);
    let page = devpi
        .simple("gadget")
        .await
        .expect("gadget is on the index");
    assert!(page.contains("gadget-0.1.0-py3-none-any.whl"), "{page}");
    // Counted, as uploads that proved nothing to trustpub.
    let counts = app.store.refusal_counts("acme").await.unwrap();
    let passed: i64 = counts
        .iter()
        .filter(|c| c.kind == "upload" && c.code == "passed-through")
        .map(|c| c.count)
        .sum();
    assert_eq!(passed, 2);
}
