//! Token exchange: `POST /_/trustpub/{registry}/mint-token`.

use reqwest::Response;
use serde_json::{Value, json};
use trustpub::store::now;
use trustpub::testing::{
    ACME_AUDIENCE as AUDIENCE, TestClaims, TestIssuer, TestKey, acme_registry, trusts_widget,
};

use crate::helpers::{TestApp, json_ok, problem, refusals, spawn_app};

/// Two registries trusting the test issuer: acme, with a second publisher
/// that allows `gadget` from tags only and a third that trusts a reusable
/// workflow of another repository, and one that offers multi-use only.
fn config(issuer: &str) -> String {
    format!(
        r#"{acme}
  [[registries.publishers]]
  provider = "github"
  issuer = "{issuer}"
  repository = "octo-org/widget"
  repository_owner_id = "9919"
  workflow = "release.yml"
  ref = "refs/tags/v*"
  packages = ["gadget"]

  [[registries.publishers]]
  provider = "github"
  issuer = "{issuer}"
  repository = "octo-org/widget"
  repository_owner_id = "9919"
  workflow = "pypi.yml"
  workflow_repository = "octo-org/shared-workflows"
  packages = ["shared-pkg"]

[[registries]]
name = "multi-only"
upload_url = "https://pypi.acme.test/multi/"
audience = "multi-only"
token_prefix = "multi_"
{multi_trust}"#,
        acme = acme_registry(issuer),
        multi_trust = trusts_widget(issuer, r#"["widget"]"#),
    )
}

async fn prepare() -> (TestIssuer, TestApp) {
    let issuer = TestIssuer::start().await;
    let app = spawn_app(&config(issuer.url())).await;
    (issuer, app)
}

fn claims(issuer: &TestIssuer) -> TestClaims {
    TestClaims::github(issuer.url(), AUDIENCE, now())
}

async fn mint(app: &TestApp, body: Value) -> Response {
    mint_on(app, "acme", body).await
}

async fn mint_on(app: &TestApp, registry: &str, body: Value) -> Response {
    app.request(
        reqwest::Method::POST,
        &format!("/_/trustpub/{registry}/mint-token"),
    )
    .json(&body)
    .send()
    .await
    .unwrap()
}

/// Sends a mint request to acme and asserts its refusal with this code,
/// that nothing was minted, and that the refusal was recorded.
async fn refused(app: &TestApp, body: Value, status: u16, code: &str) -> Value {
    let minted_before = app.store.count_upload_tokens("acme").await.unwrap();
    let events_before = app.store.events("acme").await.unwrap().len();
    let counted_before = refusals(app, "acme", "mint", code).await;
    let document = problem(mint(app, body).await, status, code).await;
    // PyPI's legacy members, which twine and gh-action-pypi-publish read.
    assert_eq!(document["errors"][0]["code"], code);
    assert_eq!(document["message"], document["detail"]);
    let minted_after = app.store.count_upload_tokens("acme").await.unwrap();
    assert_eq!(minted_before, minted_after, "nothing minted");
    // A refusal of a verified identity is an event with its claims; one of
    // a token that did not verify is only a count.
    let verified = matches!(
        code,
        "invalid-publisher" | "forbidden-event" | "package-not-allowed" | "token-reused"
    );
    let events = app.store.events("acme").await.unwrap();
    let counted = refusals(app, "acme", "mint", code).await - counted_before;
    if verified {
        assert_eq!((events.len() - events_before, counted), (1, 0), "one event");
        let last = events.last().unwrap();
        assert_eq!(
            (
                last.kind.as_str(),
                last.outcome.as_str(),
                last.code.as_str()
            ),
            ("mint", "refused", code)
        );
        assert!(last.claims.is_some(), "the verified identity is kept");
    } else {
        assert_eq!((events.len() - events_before, counted), (0, 1), "one count");
    }
    document
}

#[tokio::test]
async fn a_matching_token_mints_a_credential() {
    let (issuer, app) = prepare().await;
    let before = now();
    let response = mint(
        &app,
        json!({ "token": issuer.sign(&claims(&issuer).build()) }),
    )
    .await;
    let body = json_ok(response).await;

    let token = body["token"].as_str().unwrap();
    assert!(token.starts_with("acme_"), "{token}");
    assert!(trustpub::tokens::is_well_formed("acme_", token));
    let expires = body["expires"].as_i64().unwrap();
    assert!((before + 900..=now() + 900).contains(&expires), "{expires}");
    assert_eq!(body["features"], json!(["multi-use-token"]));
    assert_eq!(body["packages"], json!(["widget", "widget-*"]));

    // Only the hash is stored, with the claims worth auditing.
    let hash = trustpub::tokens::hash(token);
    assert!(app.store.upload_token_exists("acme", &hash).await.unwrap());
    let events = app.store.events("acme").await.unwrap();
    assert_eq!(events.len(), 1);
    assert_eq!(
        (events[0].outcome.as_str(), events[0].code.as_str()),
        ("minted", "ok")
    );
    let audit: Value = serde_json::from_str(events[0].claims.as_deref().unwrap()).unwrap();
    assert_eq!(audit["repository"], "octo-org/widget");
    assert_eq!(audit["ref"], "refs/heads/main");
    assert_eq!(audit["run_id"], "42");
    assert!(
        !events[0].detail.contains(token),
        "the credential is never recorded"
    );
}

#[tokio::test]
async fn every_asymmetric_algorithm_is_accepted() {
    let (issuer, app) = prepare().await;
    for alg in [
        "RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "EdDSA",
    ] {
        let token = issuer.sign_with_alg(alg, &claims(&issuer).build());
        let response = mint(&app, json!({ "token": token })).await;
        assert_eq!(
            response.status(),
            200,
            "{alg}: {}",
            response.text().await.unwrap()
        );
    }
    // A key bound to one algorithm does not verify another: rsa-1 is RS256 only.
    let header = json!({ "alg": "PS256", "typ": "JWT", "kid": "rsa-1" });
    let genuine = issuer.sign_with_alg("PS256", &claims(&issuer).build());
    let parts: Vec<&str> = genuine.split('.').collect();
    let token = format!(
        "{}.{}.{}",
        base64_url(header.to_string().as_bytes()),
        parts[1],
        parts[2]
    );
    refused(&app, json!({ "token": token }), 401, "invalid-token").await;
}

#[tokio::test]
async fn forged_tokens_are_refused() {
    let (issuer, app) = prepare().await;
    // A valid signature over other claims.
    let genuine = issuer.sign(&claims(&issuer).set("repository", "octo-org/other").build());
    let forged_claims = claims(&issuer).build();
    let parts: Vec<&str> = genuine.split('.').collect();
    let forged = format!(
        "{}.{}.{}",
        parts[0],
        base64_url(forged_claims.to_string().as_bytes()),
        parts[2]
    );
    refused(&app, json!({ "token": forged }), 401, "invalid-token").await;
    // Signed by a key the issuer does not publish.
    let token = issuer.sign_with(TestKey::Rsa2, &claims(&issuer).build());
    refused(&app, json!({ "token": token }), 401, "invalid-token").await;
    // A member named twice, at the top or deeper: readers differ on which
    // one counts.
    let claims_text = claims(&issuer).build().to_string();
    for duplicated in [
        claims_text.replacen('{', "{\"repository\":\"evil-org/widget\",", 1),
        claims_text.replacen('{', "{\"extra\":{\"a\":1,\"a\":2},", 1),
    ] {
        let token = issuer.sign_json_text(&duplicated);
        let document = refused(&app, json!({ "token": token }), 401, "invalid-token").await;
        assert!(
            document["detail"].as_str().unwrap().contains("twice"),
            "{document}"
        );
    }
    // Signed JSON that is not an object.
    for payload in ["[1, 2]", "\"octo-org/widget\"", "null"] {
        let token = issuer.sign_json_text(payload);
        let document = refused(&app, json!({ "token": token }), 401, "invalid-token").await;
        assert_eq!(
            document["detail"], "the identity token is invalid: the payload is not a JSON object",
            "{document}"
        );
    }
    // Not a JWT at all.
    for token in ["", "abc", "a.b", "a.b.c.d", "!!.!!.!!"] {
        refused(&app, json!({ "token": token }), 401, "invalid-token").await;
    }
}

fn base64_url(bytes: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

#[tokio::test]
async fn none_and_hmac_algorithms_are_refused() {
    let (issuer, app) = prepare().await;
    let claims = claims(&issuer).build();
    for alg in ["none", "None", "NONE"] {
        let token = TestIssuer::token_with(&json!({"alg": alg, "typ": "JWT"}), &claims, b"");
        refused(
            &app,
            json!({ "token": token }),
            401,
            "unsupported-algorithm",
        )
        .await;
    }
    let token = issuer.sign_hmac_with_public_key(&claims);
    refused(
        &app,
        json!({ "token": token }),
        401,
        "unsupported-algorithm",
    )
    .await;
}

#[tokio::test]
async fn time_claims_are_checked_with_one_leeway() {
    let (issuer, app) = prepare().await;
    let now = now();
    let cases = [
        (
            claims(&issuer).set("exp", now - 120).set("iat", now - 600),
            "token-expired",
        ),
        (claims(&issuer).set("nbf", now + 300), "token-not-yet-valid"),
        (
            claims(&issuer)
                .set("iat", now + 300)
                .set("nbf", Value::Null),
            "token-not-yet-valid",
        ),
        (claims(&issuer).set("exp", Value::Null), "invalid-token"),
        (claims(&issuer).set("iat", Value::Null), "invalid-token"),
        (claims(&issuer).set("exp", "soon"), "invalid-token"),
    ];
    for (claims, code) in cases {
        let token = issuer.sign(&claims.build());
        refused(&app, json!({ "token": token }), 401, code).await;
    }
    // A lifetime (exp - iat) beyond the issuer's maximum (an hour by
    // default) and the leeway: its jti could never be purged.
    for exp in [now + 3_661, i64::MAX] {
        let token = issuer.sign(&claims(&issuer).set("iat", now).set("exp", exp).build());
        let document = refused(&app, json!({ "token": token }), 401, "invalid-token").await;
        assert!(
            document["detail"].as_str().unwrap().contains("longer than"),
            "{document}"
        );
    }
    let token = issuer.sign(
        &claims(&issuer)
            .set("iat", now)
            .set("exp", now + 3_600)
            .build(),
    );
    json_ok(mint(&app, json!({ "token": token })).await).await;
    // Within the leeway (60 s) both ways.
    let token = issuer.sign(
        &claims(&issuer)
            .set("exp", now - 30)
            .set("nbf", now + 30)
            .build(),
    );
    json_ok(mint(&app, json!({ "token": token })).await).await;
}

#[tokio::test]
async fn the_audience_must_be_exactly_the_registry_s() {
    let (issuer, app) = prepare().await;
    for aud in [
        json!("other"),
        json!([AUDIENCE, "other"]),
        json!([]),
        json!("multi-only"),
        Value::Null,
    ] {
        let token = issuer.sign(&claims(&issuer).set("aud", aud).build());
        refused(&app, json!({ "token": token }), 401, "invalid-audience").await;
    }
    let token = issuer.sign(&claims(&issuer).set("aud", json!([AUDIENCE])).build());
    json_ok(mint(&app, json!({ "token": token })).await).await;
}

#[tokio::test]
async fn issuers_are_compared_exactly() {
    let (issuer, app) = prepare().await;
    for iss in [
        format!("{}/", issuer.url()),
        "https://token.actions.githubusercontent.com".to_owned(),
        issuer.url().replace("127.0.0.1", "localhost"),
    ] {
        let token = issuer.sign(&claims(&issuer).set("iss", iss).build());
        refused(&app, json!({ "token": token }), 401, "untrusted-issuer").await;
    }
}

#[tokio::test]
async fn a_jti_is_required_and_accepted_once() {
    let (issuer, app) = prepare().await;
    let token = issuer.sign(&claims(&issuer).set("jti", Value::Null).build());
    refused(&app, json!({ "token": token }), 401, "invalid-token").await;

    let token = issuer.sign(&claims(&issuer).build());
    json_ok(mint(&app, json!({ "token": token })).await).await;
    let document = problem(
        mint(&app, json!({ "token": token })).await,
        401,
        "token-reused",
    )
    .await;
    assert_eq!(document["errors"][0]["code"], "token-reused");
    assert_eq!(app.store.count_upload_tokens("acme").await.unwrap(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fifty_concurrent_mints_of_one_token_succeed_once() {
    let (issuer, app) = prepare().await;
    let token = issuer.sign(&claims(&issuer).build());
    let url = format!("{}/_/trustpub/acme/mint-token", app.address);
    let attempts: Vec<_> = (0..50)
        .map(|_| {
            let request = app.client.post(&url).json(&json!({ "token": token }));
            tokio::spawn(async move { request.send().await.unwrap().status().as_u16() })
        })
        .collect();
    let mut statuses = Vec::new();
    for attempt in attempts {
        statuses.push(attempt.await.unwrap());
    }
    assert_eq!(
        statuses.iter().filter(|s| **s == 200).count(),
        1,
        "{statuses:?}"
    );
    assert_eq!(
        statuses.iter().filter(|s| **s == 401).count(),
        49,
        "{statuses:?}"
    );
    assert_eq!(app.store.count_upload_tokens("acme").await.unwrap(), 1);
}

#[tokio::test]
async fn claims_must_match_a_publisher() {
    let (issuer, app) = prepare().await;
    let cases = [
        claims(&issuer).set("repository", "octo-org/widget2"),
        claims(&issuer).set("repository_owner_id", "9920"),
        claims(&issuer).set(
            "job_workflow_ref",
            "octo-org/widget/.github/workflows/ci.yml@refs/heads/main",
        ),
        // A reusable workflow of another repository is not trusted by default.
        claims(&issuer).set(
            "job_workflow_ref",
            "evil-org/tools/.github/workflows/release.yml@refs/heads/main",
        ),
        claims(&issuer).set("environment", "staging"),
        claims(&issuer).set("environment", Value::Null),
    ];
    for claims in cases {
        let token = issuer.sign(&claims.build());
        let document = refused(&app, json!({ "token": token }), 403, "invalid-publisher").await;
        // The client is not told how the publishers are configured; the log is.
        let detail = document["detail"].as_str().unwrap();
        assert!(
            !detail.contains("release.yml") && !detail.contains("9919"),
            "{detail}"
        );
        let events = app.store.events("acme").await.unwrap();
        assert!(
            events.last().unwrap().detail.contains(" is not "),
            "{:?}",
            events.last()
        );
    }
    // A claim GitHub's tokens always carry is missing: the token is not
    // GitHub's, and the answer names the claim.
    // The signature verified, so the refusal is an event with the subject.
    for missing in ["repository", "repository_owner_id", "job_workflow_ref"] {
        let token = issuer.sign(&claims(&issuer).set(missing, Value::Null).build());
        let document = problem(
            mint(&app, json!({ "token": token })).await,
            401,
            "invalid-token",
        )
        .await;
        let detail = document["detail"].as_str().unwrap();
        assert!(detail.contains(&format!("`{missing}`")), "{detail}");
        let events = app.store.events("acme").await.unwrap();
        let last = events.last().unwrap();
        assert_eq!(
            (last.code.as_str(), last.outcome.as_str()),
            ("invalid-token", "refused")
        );
        let kept: Value = serde_json::from_str(last.claims.as_ref().unwrap()).unwrap();
        assert_eq!(kept["subject"], "repo:octo-org/widget:environment:pypi");
        assert_eq!(kept["provider"], "github");
    }
    // Repository and environment compare case-insensitively.
    let token = issuer.sign(
        &claims(&issuer)
            .set("repository", "Octo-Org/Widget")
            .set("environment", "PyPI")
            .build(),
    );
    json_ok(mint(&app, json!({ "token": token })).await).await;
}

#[tokio::test]
async fn nul_bytes_are_refused_before_the_store() {
    let (issuer, app) = prepare().await;
    let token = issuer.sign(&claims(&issuer).set("jti", "abc\0def").build());
    let document = refused(&app, json!({ "token": token }), 401, "invalid-token").await;
    assert!(document["detail"].as_str().unwrap().contains("jti"));
    // A claim the event keeps, with a NUL: kept, and the mint succeeds.
    let token = issuer.sign(
        &claims(&issuer)
            .set("sub", "repo:octo-org/widget\0x")
            .build(),
    );
    json_ok(mint(&app, json!({ "token": token })).await).await;
}

#[tokio::test]
async fn events_forks_can_trigger_are_refused() {
    let (issuer, app) = prepare().await;
    // In any case: no spelling slips through.
    for event in ["pull_request_target", "workflow_run", "Pull_Request_Target"] {
        let token = issuer.sign(&claims(&issuer).set("event_name", event).build());
        refused(&app, json!({ "token": token }), 403, "forbidden-event").await;
    }
}

#[tokio::test]
async fn features_decide_single_or_multi_use() {
    let (issuer, app) = prepare().await;
    let token = issuer.sign(&claims(&issuer).build());
    let body = json_ok(
        mint(
            &app,
            json!({ "token": token, "features": ["single-use-token"] }),
        )
        .await,
    )
    .await;
    assert_eq!(body["features"], json!(["single-use-token"]));

    let token = issuer.sign(&claims(&issuer).build());
    for (features, code) in [
        (json!(["teleport-token"]), "unknown-feature"),
        (
            json!(["single-use-token", "multi-use-token"]),
            "conflicting-features",
        ),
    ] {
        let response = mint(&app, json!({ "token": token, "features": features })).await;
        problem(response, 400, code).await;
    }
    // A refused request does not consume the identity token.
    let body = json_ok(mint(&app, json!({ "token": token, "features": [] })).await).await;
    assert_eq!(body["features"], json!(["multi-use-token"]));

    let token = issuer.sign(&claims(&issuer).set("aud", "multi-only").build());
    let response = mint_on(
        &app,
        "multi-only",
        json!({ "token": token, "features": ["single-use-token"] }),
    )
    .await;
    problem(response, 400, "feature-not-offered").await;
}

#[tokio::test]
async fn packages_narrow_the_scope() {
    let (issuer, app) = prepare().await;
    let token = issuer.sign(&claims(&issuer).build());
    let body = json_ok(
        mint(
            &app,
            json!({ "token": token, "packages": ["Widget_Extra", "widget"] }),
        )
        .await,
    )
    .await;
    assert_eq!(body["packages"], json!(["widget", "widget-extra"]));

    // gadget's publisher allows tags only; this run is on a branch.
    let token = issuer.sign(&claims(&issuer).build());
    let document = refused(
        &app,
        json!({ "token": token, "packages": ["widget", "gadget", "other"] }),
        403,
        "package-not-allowed",
    )
    .await;
    assert!(
        document["detail"]
            .as_str()
            .unwrap()
            .contains("gadget, other"),
        "{document}"
    );

    // On a tag both publishers match: the allowed set is their union.
    let token = issuer.sign(&claims(&issuer).set("ref", "refs/tags/v1.0").build());
    let body = json_ok(mint(&app, json!({ "token": token })).await).await;
    assert_eq!(body["packages"], json!(["gadget", "widget", "widget-*"]));

    // Patterns are never granted as patterns when names were asked for.
    let token = issuer.sign(&claims(&issuer).build());
    for packages in [json!(["widget-*"]), json!([]), json!(["a b"])] {
        let response = mint(&app, json!({ "token": token, "packages": packages })).await;
        problem(response, 400, "invalid-payload").await;
    }
}

#[tokio::test]
async fn malformed_requests_are_problems_and_change_nothing() {
    let (issuer, app) = prepare().await;
    let url = "/_/trustpub/acme/mint-token";
    let post = |body: &'static str, content_type: &'static str| {
        app.request(reqwest::Method::POST, url)
            .header("Content-Type", content_type)
            .body(body)
            .send()
    };
    problem(
        post("{not json", "application/json").await.unwrap(),
        400,
        "invalid-payload",
    )
    .await;
    problem(
        post("{}", "application/json").await.unwrap(),
        400,
        "invalid-payload",
    )
    .await;
    problem(
        post(r#"{"token": 5}"#, "application/json").await.unwrap(),
        400,
        "invalid-payload",
    )
    .await;
    problem(
        post(
            r#"{"token": "x", "features": "single-use-token"}"#,
            "application/json",
        )
        .await
        .unwrap(),
        400,
        "invalid-payload",
    )
    .await;
    problem(
        post(r#"{"token": "x"}"#, "text/plain").await.unwrap(),
        415,
        "unsupported-media-type",
    )
    .await;
    let huge = json!({ "token": "x".repeat(70 * 1024) });
    problem(mint(&app, huge).await, 413, "payload-too-large").await;
    let token = issuer.sign(&claims(&issuer).build());
    problem(
        mint_on(&app, "nope", json!({ "token": token })).await,
        404,
        "unknown-registry",
    )
    .await;
    problem(
        app.get(url).send().await.unwrap(),
        405,
        "method-not-allowed",
    )
    .await;
    assert_eq!(app.store.count_upload_tokens("acme").await.unwrap(), 0);
    // The identity token was never consumed by any of the above.
    json_ok(mint(&app, json!({ "token": token })).await).await;
}

#[tokio::test]
async fn used_jtis_are_purged_only_after_expiry_and_leeway() {
    let (issuer, app) = prepare().await;
    let now = now();
    let token = issuer.sign(&claims(&issuer).set("exp", now + 100).build());
    json_ok(mint(&app, json!({ "token": token })).await).await;
    assert_eq!(
        app.store.purge_used_jtis(now + 100).await.unwrap(),
        0,
        "still within the leeway"
    );
    problem(
        mint(&app, json!({ "token": token })).await,
        401,
        "token-reused",
    )
    .await;
    assert_eq!(app.store.purge_used_jtis(now + 100 + 61).await.unwrap(), 1);
}

#[tokio::test]
async fn a_reusable_workflow_of_another_repository_is_trusted_only_when_named() {
    let (issuer, app) = prepare().await;
    let shared = "octo-org/shared-workflows/.github/workflows/pypi.yml@refs/heads/main";
    let token = issuer.sign(&claims(&issuer).set("job_workflow_ref", shared).build());
    let body = json_ok(mint(&app, json!({ "token": token })).await).await;
    assert_eq!(body["packages"], json!(["shared-pkg"]));

    // The same file name in a repository nobody named is not trusted.
    let other = "evil-org/shared-workflows/.github/workflows/pypi.yml@refs/heads/main";
    let token = issuer.sign(&claims(&issuer).set("job_workflow_ref", other).build());
    refused(&app, json!({ "token": token }), 403, "invalid-publisher").await;
}

#[tokio::test]
async fn the_leeway_is_sixty_seconds_at_its_edges() {
    let (issuer, app) = prepare().await;
    let now = now();
    // A few seconds of margin either side for the test's own clock.
    for (claims, accepted) in [
        (
            claims(&issuer)
                .set("exp", now - 55)
                .set("iat", now - 600)
                .set("nbf", now - 600),
            true,
        ),
        (
            claims(&issuer)
                .set("exp", now - 65)
                .set("iat", now - 600)
                .set("nbf", now - 600),
            false,
        ),
        (
            claims(&issuer).set("nbf", now + 55).set("iat", now + 55),
            true,
        ),
        (claims(&issuer).set("nbf", now + 65).set("iat", now), false),
        (
            claims(&issuer).set("iat", now + 65).set("nbf", Value::Null),
            false,
        ),
        // No overflow at the far end, and no token that lives forever.
        (claims(&issuer).set("exp", i64::MAX), false),
        (
            claims(&issuer).set("exp", json!((now + 300) as f64 + 0.5)),
            false,
        ),
    ] {
        let token = issuer.sign(&claims.build());
        let status = mint(&app, json!({ "token": token })).await.status();
        assert_eq!(status.is_success(), accepted, "{status}");
    }
}

#[tokio::test]
async fn a_refusal_after_verification_does_not_consume_the_token() {
    let (issuer, app) = prepare().await;
    let token = issuer.sign(&claims(&issuer).build());
    refused(
        &app,
        json!({ "token": token, "packages": ["gadget"] }),
        403,
        "package-not-allowed",
    )
    .await;
    let body = json_ok(mint(&app, json!({ "token": token, "packages": ["widget"] })).await).await;
    assert_eq!(body["packages"], json!(["widget"]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_instances_sharing_a_store_accept_a_token_once() {
    let issuer = TestIssuer::start().await;
    let first = spawn_app(&config(issuer.url())).await;
    let second = crate::helpers::spawn_app_on(first.db.clone(), &config(issuer.url())).await;
    let token = issuer.sign(&claims(&issuer).build());
    let attempts: Vec<_> = (0..20)
        .map(|i| {
            let app = if i % 2 == 0 { &first } else { &second };
            let request = app
                .client
                .post(format!("{}/_/trustpub/acme/mint-token", app.address))
                .json(&json!({ "token": token }));
            tokio::spawn(async move { request.send().await.unwrap().status().as_u16() })
        })
        .collect();
    let mut statuses = Vec::new();
    for attempt in attempts {
        statuses.push(attempt.await.unwrap());
    }
    assert_eq!(
        statuses.iter().filter(|s| **s == 200).count(),
        1,
        "{statuses:?}"
    );
    assert_eq!(
        statuses.iter().filter(|s| **s == 401).count(),
        19,
        "{statuses:?}"
    );
    assert_eq!(first.store.count_upload_tokens("acme").await.unwrap(), 1);
}
