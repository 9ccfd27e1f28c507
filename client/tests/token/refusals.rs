//! What the client refuses, and how a refusal reads: the server's problem
//! document and the identity token's claims; URLs PEP 807 forbids; indexes
//! that break the protocol (the conformance kit's broken servers, where a
//! client can notice).

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

/// A discovery document for the upload URL's path on the crafted server,
/// with `endpoints` as its members (`{origin}` is the server's origin).
fn discovery(members: &'static str) -> u16 {
    crafted(move |port, head, _| {
        let origin = format!("http://127.0.0.1:{port}");
        if head.starts_with("GET /.well-known/pytp?discover=%2Flegacy%2F ") {
            (200, members.replace("{origin}", &origin))
        } else if head.starts_with("GET /audience ") {
            (200, r#"{"audience": "acme-pypi"}"#.into())
        } else {
            (404, "{}".into())
        }
    })
}

/// Indexes that break PEP 807, each as a case of the conformance kit's
/// broken servers (`conformance/tests/kit/broken.rs`) that a client can
/// notice, and what the client says.
#[tokio::test]
async fn discovery_answers_that_break_the_pep_are_refused() {
    let issuer = TestIssuer::start().await;
    let cases: &[(&str, &'static str, &str)] = &[
        (
            "OtherHost",
            r#"{"audience-endpoint": "http://localhost:1/audience", "token-mint-endpoint": "http://localhost:1/mint"}"#,
            "its host is not the upload URL's (127.0.0.1)",
        ),
        (
            "UntrustworthyScheme",
            r#"{"audience-endpoint": "ftp://127.0.0.1/audience", "token-mint-endpoint": "{origin}/mint"}"#,
            "only https URLs (plain http only to a loopback address), and this one is ftp",
        ),
        (
            "OtherHost over https",
            r#"{"audience-endpoint": "https://evil.example/audience", "token-mint-endpoint": "{origin}/mint"}"#,
            "refusing https://evil.example/audience",
        ),
        (
            "RelativeUrls",
            r#"{"audience-endpoint": "/audience", "token-mint-endpoint": "/mint"}"#,
            "not an absolute URL",
        ),
        (
            "DiscoveryNotAnObject",
            r#"["{origin}/audience", "{origin}/mint"]"#,
            "the discovery document is not a JSON object",
        ),
        (
            "MintEndpointMissing",
            r#"{"audience-endpoint": "{origin}/audience"}"#,
            "the discovery document has no token-mint-endpoint",
        ),
        (
            "FeaturesNotAnArray",
            r#"{"audience-endpoint": "{origin}/audience", "token-mint-endpoint": "{origin}/mint", "features": "single-use-token"}"#,
            "features is not an array",
        ),
        ("not JSON", "<html>", "the answer is not JSON"),
    ];
    for (case, members, says) in cases {
        eprintln!("== case {case}");
        let port = discovery(members);
        let upload_url = format!("http://127.0.0.1:{port}/legacy/");
        let run = github_mint(&issuer, &upload_url, &[]).await;
        run.fails_saying(&[says]);
    }
    assert!(
        issuer.actions_audiences().is_empty(),
        "no identity token was asked for"
    );
}

/// An audience answer without `audience` (the kit's `AudienceMisnamed`),
/// and a feature the index does not offer, stop before the CI is asked.
#[tokio::test]
async fn a_misnamed_audience_or_a_feature_not_offered_is_refused() {
    let issuer = TestIssuer::start().await;
    let port = crafted(|port, head, _| {
        let origin = format!("http://127.0.0.1:{port}");
        if head.starts_with("GET /.well-known/pytp") {
            let document = format!(
                r#"{{"audience-endpoint": "{origin}/audience", "token-mint-endpoint": "{origin}/mint", "features": ["multi-use-token"]}}"#
            );
            (200, document)
        } else {
            (200, r#"{"aud": "acme-pypi"}"#.into())
        }
    });
    let upload_url = format!("http://127.0.0.1:{port}/legacy/");
    let run = github_mint(&issuer, &upload_url, &[]).await;
    run.fails_saying(&["the answer has no audience string"]);
    let run = github_mint(&issuer, &upload_url, &["--features", "single-use-token"]).await;
    run.fails_saying(&["does not offer the feature single-use-token (it offers: multi-use-token)"]);
    assert!(issuer.actions_audiences().is_empty());
}
