//! What the client refuses, and how a refusal reads: the server's problem
//! document and the identity token's claims; URLs PEP 807 forbids. Indexes
//! that break the protocol are the conformance kit's broken servers, in
//! `broken.rs`.

use trustpub::testing::TestIssuer;

use crate::support::{Trustpub, crafted, github_mint, mint};

/// A job that is not a trusted publisher: the problem document's status,
/// title, code and detail, and the claims a publisher is configured from.
#[tokio::test]
async fn a_refused_mint_shows_the_problem_and_the_claims() {
    let issuer = TestIssuer::start().await;
    issuer.set_actions_claims(|claims| claims.set("repository_owner_id", "666"));
    let trustpub = Trustpub::github(&issuer).await;
    let upload_url = trustpub.upload_url();
    let run = github_mint(&issuer, &upload_url, &[]).await;
    run.fails_saying(&[
        "the mint was refused by",
        "/_/trustpub/acme/mint-token",
        "HTTP 403",
        "(code invalid-publisher)",
        "claims that a trusted publisher matches (not verified here)",
        "repository: octo-org/widget",
        "repository_owner_id: 666",
        "job_workflow_ref: octo-org/widget/.github/workflows/release.yml@refs/heads/main",
        "aud: acme-pypi",
    ]);
    assert!(!run.stderr.contains("::add-mask::"), "{}", run.stderr);
}

/// An upload URL the index does not serve: discovery's 404, said plainly.
#[tokio::test]
async fn an_index_without_discovery_for_the_url_says_so() {
    let issuer = TestIssuer::start().await;
    let trustpub = Trustpub::github(&issuer).await;
    let upload_url = format!("{}/elsewhere/", trustpub.origin);
    let run = github_mint(&issuer, &upload_url, &[]).await;
    run.fails_saying(&[
        "does not offer Trusted Publishing (PEP 807) for this upload URL",
        "/.well-known/pytp?discover=%2Felsewhere%2F answered 404",
        "not-discoverable",
    ]);
    assert!(issuer.actions_audiences().is_empty(), "no identity asked");
}

/// Plain http to anything but loopback is refused before any request.
#[tokio::test]
async fn a_non_https_upload_url_is_refused() {
    let run = mint("http://pypi.acme.example/legacy/", &[], &[], None).await;
    run.fails_saying(&[
        "refusing http://pypi.acme.example/legacy/",
        "only https URLs",
    ]);
}

/// Nothing listening: the error names the URL.
#[tokio::test]
async fn a_network_error_names_the_url() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let upload_url = format!("http://127.0.0.1:{port}/legacy/");
    let run = mint(&upload_url, &[], &[], None).await;
    run.fails_saying(&[&format!(
        "no answer from http://127.0.0.1:{port}/.well-known/pytp?discover=%2Flegacy%2F"
    )]);
}

/// What no broken server of the kit does (those are in `broken.rs`): a
/// feature the index does not offer is refused before the CI is asked, and
/// an answer that is not JSON is named.
#[tokio::test]
async fn a_feature_not_offered_or_an_answer_not_json_is_refused() {
    let issuer = TestIssuer::start().await;
    let port = crafted(|port, head, _| {
        let origin = format!("http://127.0.0.1:{port}");
        if head.starts_with("GET /.well-known/pytp?discover=%2Flegacy%2F ") {
            let document = format!(
                r#"{{"audience-endpoint": "{origin}/audience", "token-mint-endpoint": "{origin}/mint", "features": ["multi-use-token"]}}"#
            );
            (200, document)
        } else {
            (200, "<html>".into())
        }
    });
    let upload_url = format!("http://127.0.0.1:{port}/legacy/");
    let run = github_mint(&issuer, &upload_url, &["--features", "single-use-token"]).await;
    run.fails_saying(&["does not offer the feature single-use-token (it offers: multi-use-token)"]);
    let run = github_mint(&issuer, &upload_url, &[]).await;
    run.fails_saying(&["/audience: the answer is not JSON", "<html>"]);
    assert!(issuer.actions_audiences().is_empty());
}
