//! Discovery as PEP 807's client steps say, against a real trustpub: the
//! upload URL's path component is the key, an empty path the empty key;
//! then the audience, the identity token and the mint.

use trustpub::testing::TestIssuer;

use crate::support::{GITHUB, Trustpub, acme, crafted, github_mint};

/// A path upload URL: the credential alone on stdout, masked first for
/// GitHub Actions (on stderr, since stdout is usually captured), and the
/// registry takes it for acme's packages.
#[tokio::test]
async fn mints_for_a_path_upload_url() {
    let issuer = TestIssuer::start().await;
    let trustpub = Trustpub::github(&issuer).await;
    let upload_url = trustpub.upload_url();
    let run = github_mint(&issuer, &upload_url, &[]).await;

    let credential = run.credential();
    assert!(
        run.stderr
            .starts_with(&format!("::add-mask::{credential}\n")),
        "{}",
        run.stderr
    );
    assert_eq!(
        run.stderr.matches(credential).count(),
        1,
        "shown once, masked"
    );
    assert_eq!(issuer.actions_audiences(), ["acme-pypi"]);
    let answer = trustpub.introspect(credential, "widget").await;
    assert_eq!(answer["active"], true, "{answer}");
    assert_eq!(answer["single_use"], false, "{answer}");
}

/// A path with a space: the client encodes it (`%2Fsimple%20upload%2F`)
/// and trustpub finds the registry.
#[tokio::test]
async fn mints_for_a_path_with_a_space() {
    let issuer = TestIssuer::start().await;
    let trustpub =
        Trustpub::start(|origin| acme(origin, "/simple upload/", issuer.url(), "github", GITHUB))
            .await;
    let upload_url = format!("{}/simple upload/", trustpub.origin);
    let run = github_mint(&issuer, &upload_url, &[]).await;
    trustpub.assert_minted(&run).await;
}

/// The root: `https://host/` has the path `/` (key `%2F`); `https://host`
/// has an empty path, and PEP 807 makes the key the empty string, so the
/// client asks `discover=` with nothing after it. trustpub serves both.
#[tokio::test]
async fn a_root_upload_url_sends_its_path_or_the_empty_key() {
    let issuer = TestIssuer::start().await;
    let trustpub =
        Trustpub::start(|origin| acme(origin, "/", issuer.url(), "github", GITHUB)).await;
    let slash = format!("{}/", trustpub.origin);
    let run = github_mint(&issuer, &slash, &[]).await;
    trustpub.assert_minted(&run).await;

    // What the client sends for the empty path, seen by a server of our own.
    let seen = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
    let record = seen.clone();
    let port = crafted(move |_, head, _| {
        *record.lock().unwrap() = head.lines().next().unwrap_or_default().to_owned();
        (404, "{}".into())
    });
    let empty = format!("http://127.0.0.1:{port}");
    let run = github_mint(&issuer, &empty, &[]).await;
    run.fails_saying(&["does not offer Trusted Publishing"]);
    assert_eq!(
        *seen.lock().unwrap(),
        "GET /.well-known/pytp?discover= HTTP/1.1"
    );

    // trustpub serves the empty key as the empty path, which for http(s) is
    // `/`: the URL without the slash finds the same registry.
    let empty = trustpub.origin.clone();
    let run = github_mint(&issuer, &empty, &[]).await;
    trustpub.assert_minted(&run).await;
}

/// `--features single-use-token` gets a single-use credential.
#[tokio::test]
async fn asks_for_the_single_use_feature() {
    let issuer = TestIssuer::start().await;
    let trustpub = Trustpub::github(&issuer).await;
    let upload_url = trustpub.upload_url();
    let run = github_mint(&issuer, &upload_url, &["--features", "single-use-token"]).await;
    let answer = trustpub.introspect(run.credential(), "widget").await;
    assert_eq!(answer["single_use"], true, "{answer}");
}

/// `--package` narrows the credential to the packages named; a package the
/// publisher may not publish is refused.
#[tokio::test]
async fn narrows_the_credential_to_packages() {
    let issuer = TestIssuer::start().await;
    let trustpub = Trustpub::github(&issuer).await;
    let upload_url = trustpub.upload_url();
    let run = github_mint(&issuer, &upload_url, &["--package", "widget-cli"]).await;
    let credential = run.credential();
    let answer = trustpub.introspect(credential, "widget-cli").await;
    assert_eq!(
        answer["packages"],
        serde_json::json!(["widget-cli"]),
        "{answer}"
    );
    assert_eq!(
        trustpub.introspect(credential, "widget").await["active"],
        false
    );

    let run = github_mint(&issuer, &upload_url, &["--package", "gadget"]).await;
    run.fails_saying(&["HTTP 403", "package-not-allowed", "gadget"]);
}
