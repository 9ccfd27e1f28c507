//! The CI providers. For each: a token shaped as the provider documents its
//! claims mints; a token differing in any field the publisher pins is
//! refused (403 `invalid-publisher`, the field named in the event log, not
//! to the client), the resurrection case (same name, another id) included;
//! a token lacking a claim the provider always sends is 401
//! `invalid-token` naming it. Every issuer is a real HTTP issuer on
//! loopback, at the path the provider's issuer URL has.

use reqwest::Response;
use serde_json::{Value, json};
use trustpub::store::now;
use trustpub::testing::{
    BUILDKITE_ORG, CIRCLECI_ORG, CIRCLECI_PROJECT, CIRCLECI_RELEASE_CONTEXT, TestClaims, TestIssuer,
};

use crate::fixtures::{ACME_SECRET, digest};
use crate::helpers::{TestApp, TestDatabase, json_ok, problem, settings, spawn_app};

const AUDIENCE: &str = "acme-pypi";

/// A registry `acme` trusting `issuers` (URL, provider), with `publishers`
/// (TOML tables) appended; its introspection secret is [`ACME_SECRET`].
fn registry(issuers: &[(&str, &str)], publishers: &str) -> String {
    let mut config = format!(
        r#"
[[registries]]
name = "acme"
upload_url = "https://pypi.acme.test/legacy/"
audience = "{AUDIENCE}"
token_prefix = "acme_"
introspect_secret_sha256 = "{}"
"#,
        digest(ACME_SECRET)
    );
    for (issuer, provider) in issuers {
        config.push_str(&format!(
            "\n  [[registries.issuers]]\n  url = \"{issuer}\"\n  provider = \"{provider}\"\n"
        ));
    }
    config + publishers
}

/// A publisher table of `provider` trusting `issuer` (a URL), with `keys`
/// (TOML lines).
fn publisher(provider: &str, issuer: &str, keys: &str) -> String {
    format!(
        "\n  [[registries.publishers]]\n  provider = \"{provider}\"\n  issuer = \"{issuer}\"\n{}\n",
        keys.trim_matches('\n')
    )
}

/// acme trusting `issuer` as an issuer of `provider`, with a publisher of
/// it per entry of `publishers` (each its own keys).
async fn trusting(issuer: &TestIssuer, provider: &str, publishers: &[&str]) -> TestApp {
    let tables: String = publishers
        .iter()
        .map(|keys| publisher(provider, issuer.url(), keys))
        .collect();
    spawn_app(&registry(&[(issuer.url(), provider)], &tables)).await
}

async fn mint(app: &TestApp, token: &str) -> Response {
    app.request(reqwest::Method::POST, "/_/trustpub/acme/mint-token")
        .json(&json!({ "token": token }))
        .send()
        .await
        .unwrap()
}

/// Mints, and returns the credential.
async fn credential(app: &TestApp, token: &str) -> String {
    json_ok(mint(app, token).await).await["token"]
        .as_str()
        .unwrap()
        .to_owned()
}

/// Mints, and returns what introspection then says of the credential's
/// publisher, once checked that the mint's event kept the same provider and
/// identity.
async fn introspected(app: &TestApp, token: &str) -> Value {
    let credential = credential(app, token).await;
    let answer = app
        .request(reqwest::Method::POST, "/_/trustpub/acme/introspect")
        .bearer_auth(ACME_SECRET)
        .json(&json!({ "token": credential }))
        .send()
        .await
        .unwrap();
    let answer = json_ok(answer).await;
    assert_eq!(answer["active"], true);
    let events = app.store.events("acme").await.unwrap();
    let minted = events.iter().rev().find(|e| e.outcome == "minted").unwrap();
    let kept: Value = serde_json::from_str(minted.claims.as_deref().unwrap()).unwrap();
    for member in ["provider", "identity"] {
        assert_eq!(kept[member], answer["publisher"][member], "{member}");
    }
    answer["publisher"].clone()
}

/// Mints, and returns what forward-auth then says of the credential.
async fn minted(app: &TestApp, token: &str) -> reqwest::header::HeaderMap {
    let credential = credential(app, token).await;
    let check = app
        .get("/_/trustpub/auth")
        .header("X-Trustpub-Registry", "acme")
        .header("X-Forwarded-Method", "GET")
        .bearer_auth(credential)
        .send()
        .await
        .unwrap();
    assert_eq!(check.status(), 200);
    check.headers().clone()
}

fn header<'h>(headers: &'h reqwest::header::HeaderMap, name: &str) -> Option<&'h str> {
    headers.get(name).map(|v| v.to_str().unwrap())
}

/// Asserts that `token` is refused as another publisher's: 403 without the
/// configuration in the answer, the mismatching field in the event log.
async fn refused_as_other(app: &TestApp, token: &str, field: &str) {
    let document = problem(mint(app, token).await, 403, "invalid-publisher").await;
    let detail = document["detail"].as_str().unwrap();
    assert!(!detail.contains(field), "the client is not told: {detail}");
    let events = app.store.events("acme").await.unwrap();
    let last = events.last().unwrap();
    assert_eq!(
        (last.outcome.as_str(), last.code.as_str()),
        ("refused", "invalid-publisher")
    );
    assert!(
        last.detail.contains(field),
        "the log names {field}: {}",
        last.detail
    );
}

async fn refused_each<const N: usize>(
    app: &TestApp,
    issuer: &TestIssuer,
    cases: [(TestClaims, &str); N],
) {
    for (claims, field) in cases {
        refused_as_other(app, &issuer.sign(&claims.build()), field).await;
    }
}

/// Asserts that `token`, lacking `claim`, is not a token of its provider.
async fn lacks(app: &TestApp, token: &str, claim: &str) {
    let document = problem(mint(app, token).await, 401, "invalid-token").await;
    let detail = document["detail"].as_str().unwrap();
    assert!(detail.contains(&format!("`{claim}`")), "{detail}");
}

/// [`lacks`] for each of `names`, removed alone from `claims`.
async fn lacks_each(
    app: &TestApp,
    issuer: &TestIssuer,
    claims: impl Fn() -> TestClaims,
    names: &[&str],
) {
    for name in names {
        let token = issuer.sign(&claims().set(name, Value::Null).build());
        lacks(app, &token, name).await;
    }
}

/// The keys of a GitHub publisher matching [`TestClaims::github`].
const GITHUB: &str = r#"
  repository = "octo-org/widget"
  repository_owner_id = "9919"
  workflow = "release.yml"
  packages = ["widget"]
"#;

#[tokio::test]
async fn github_enterprise_server_is_github_with_its_own_issuer() {
    let ghes = TestIssuer::start_at("/_services/token").await;
    let app = trusting(&ghes, "github", &[GITHUB]).await;
    assert!(ghes.url().ends_with("/_services/token"));
    let claims = || TestClaims::github(ghes.url(), AUDIENCE, now());
    let headers = minted(&app, &ghes.sign(&claims().build())).await;
    assert_eq!(
        header(&headers, "x-trustpub-publisher"),
        Some("github:octo-org/widget")
    );
    assert_eq!(header(&headers, "x-trustpub-provider"), Some("github"));
    // The aliases of the GitHub-only days.
    assert_eq!(
        header(&headers, "x-trustpub-repository"),
        Some("octo-org/widget")
    );
    assert!(
        header(&headers, "x-trustpub-workflow")
            .unwrap()
            .contains("release.yml")
    );

    let cases = [
        (claims().set("repository", "octo-org/gadget"), "repository"),
        // Resurrection: the owner name re-created by someone else.
        (
            claims().set("repository_owner_id", "10001"),
            "repository_owner_id",
        ),
        (
            claims().set(
                "job_workflow_ref",
                "octo-org/widget/.github/workflows/ci.yml@refs/heads/main",
            ),
            "job_workflow_ref",
        ),
    ];
    refused_each(&app, &ghes, cases).await;
    lacks_each(
        &app,
        &ghes,
        claims,
        &["repository_owner_id", "job_workflow_ref", "jti"],
    )
    .await;
}

/// GitHub Enterprise Cloud's issuers: an enterprise on github.com that
/// opted into a unique issuer URL has
/// `https://token.actions.githubusercontent.com/<enterprise>`, one on GHE.com
/// `https://token.actions.SUBDOMAIN.ghe.com`. The test issuer serves loopback
/// hosts only, so what is tried is the shape of their paths: one segment
/// (the enterprise's slug), and none.
#[tokio::test]
async fn github_enterprise_cloud_is_github_with_its_own_issuer() {
    for path in ["/acme-corp", ""] {
        let issuer = TestIssuer::start_at(path).await;
        let app = trusting(&issuer, "github", &[GITHUB]).await;
        let token = issuer.sign(&TestClaims::github(issuer.url(), AUDIENCE, now()).build());
        let headers = minted(&app, &token).await;
        assert_eq!(
            header(&headers, "x-trustpub-publisher"),
            Some("github:octo-org/widget")
        );
    }
}

/// The keys of a GitLab publisher matching [`TestClaims::gitlab`].
const GITLAB: &str = r#"
  project_path = "acme/tools/widget"
  namespace_id = "72"
  ci_config_path = ".gitlab-ci.yml"
  environment = "pypi"
  ref = "refs/tags/v*"
  ref_protected = true
  packages = ["widget"]
"#;

#[tokio::test]
async fn gitlab_pins_project_namespace_id_config_environment_and_ref() {
    let gitlab = TestIssuer::start_at("/gitlab").await;
    let app = trusting(&gitlab, "gitlab", &[GITLAB]).await;
    let claims = || TestClaims::gitlab(gitlab.url(), AUDIENCE, now());
    let host = gitlab.url().trim_start_matches("http://").to_owned();

    let headers = minted(&app, &gitlab.sign(&claims().build())).await;
    assert_eq!(
        header(&headers, "x-trustpub-publisher"),
        Some("gitlab:acme/tools/widget")
    );
    assert_eq!(header(&headers, "x-trustpub-provider"), Some("gitlab"));
    let publisher = introspected(&app, &gitlab.sign(&claims().build())).await;
    assert_eq!(publisher["provider"], "gitlab");
    assert_eq!(publisher["identity"], "gitlab:acme/tools/widget");
    assert_eq!(publisher["repository"], "acme/tools/widget");
    assert_eq!(publisher["ref"], "refs/tags/v1.0");
    // The project path compares case-insensitively, as GitLab's do.
    minted(
        &app,
        &gitlab.sign(&claims().set("project_path", "Acme/Tools/Widget").build()),
    )
    .await;

    let cases = [
        (
            claims().set("project_path", "acme/tools/gadget"),
            "project_path",
        ),
        // Resurrection: the namespace deleted and re-created under its name.
        (claims().set("namespace_id", "73"), "namespace_id"),
        (
            claims().set(
                "ci_config_ref_uri",
                format!("{host}/acme/tools/widget//ci/other.yml@refs/tags/v1.0"),
            ),
            "ci_config_ref_uri",
        ),
        // A top-level configuration file of another project is not trusted
        // by default (an `include:` in the project's own file would not
        // change the claim; this names another project's file).
        (
            claims().set(
                "ci_config_ref_uri",
                format!("{host}/evil/templates//.gitlab-ci.yml@refs/heads/main"),
            ),
            "ci_config_ref_uri",
        ),
        (claims().set("environment", "staging"), "environment"),
        (claims().set("environment", Value::Null), "environment"),
        (
            claims()
                .set("ref_path", "refs/heads/main")
                .set("ref", "main"),
            "ref_path",
        ),
        (claims().set("ref_protected", "false"), "ref_protected"),
        (claims().set("ref_protected", Value::Null), "ref_protected"),
    ];
    refused_each(&app, &gitlab, cases).await;
    lacks_each(
        &app,
        &gitlab,
        claims,
        &["project_path", "namespace_id", "ci_config_ref_uri", "jti"],
    )
    .await;
}

#[tokio::test]
async fn gitlab_trusts_another_projects_configuration_only_when_named() {
    let gitlab = TestIssuer::start_at("").await;
    let keys = format!("{GITLAB}  ci_config_project = \"acme/ci-templates\"\n");
    let app = trusting(&gitlab, "gitlab", &[&keys]).await;
    let host = gitlab.url().trim_start_matches("http://").to_owned();
    let from = |project: &str| {
        TestClaims::gitlab(gitlab.url(), AUDIENCE, now()).set(
            "ci_config_ref_uri",
            format!("{host}/{project}//.gitlab-ci.yml@refs/heads/main"),
        )
    };
    minted(&app, &gitlab.sign(&from("acme/ci-templates").build())).await;
    refused_as_other(
        &app,
        &gitlab.sign(&from("acme/tools/widget").build()),
        "ci_config_ref_uri",
    )
    .await;
}

#[tokio::test]
async fn forgejo_pins_repository_owner_id_workflow_and_environment_and_refuses_fork_events() {
    let forgejo = TestIssuer::start_at("/api/actions").await;
    let app = trusting(
        &forgejo,
        "forgejo",
        &[r#"
  repository = "octo-org/widget"
  repository_owner_id = "9919"
  workflow = "release.yml"
  environment = "pypi"
  ref = "refs/heads/main"
  packages = ["widget"]
"#],
    )
    .await;
    let claims = || TestClaims::forgejo(forgejo.url(), AUDIENCE, now());
    let headers = minted(&app, &forgejo.sign(&claims().build())).await;
    assert_eq!(
        header(&headers, "x-trustpub-publisher"),
        Some("forgejo:octo-org/widget")
    );
    // Gitea's and GitHub's workflow directories are Forgejo's too.
    for dir in [".gitea", ".github"] {
        let workflow_ref = format!("octo-org/widget/{dir}/workflows/release.yml@refs/heads/main");
        minted(
            &app,
            &forgejo.sign(&claims().set("workflow_ref", workflow_ref).build()),
        )
        .await;
    }

    let cases = [
        (claims().set("repository", "octo-org/gadget"), "repository"),
        (
            claims().set("repository_owner_id", 10001),
            "repository_owner_id",
        ),
        // An older instance that does not send the id: not enough for a
        // publisher that names it.
        (
            claims().set("repository_owner_id", Value::Null),
            "repository_owner_id",
        ),
        (
            claims().set(
                "workflow_ref",
                "octo-org/widget/.forgejo/workflows/ci.yml@refs/heads/main",
            ),
            "workflow_ref",
        ),
        (claims().set("environment", "staging"), "environment"),
        (claims().set("environment", Value::Null), "environment"),
        (claims().set("ref", "refs/heads/dev"), "ref"),
    ];
    refused_each(&app, &forgejo, cases).await;
    for event in ["pull_request_target", "workflow_run"] {
        let token = forgejo.sign(&claims().set("event_name", event).build());
        problem(mint(&app, &token).await, 403, "forbidden-event").await;
    }
    lacks_each(&app, &forgejo, claims, &["workflow_ref"]).await;
}

#[tokio::test]
async fn buildkite_pins_organization_pipeline_step_branch_and_tag() {
    let buildkite = TestIssuer::start().await;
    let app = trusting(
        &buildkite,
        "buildkite",
        &[
            &format!(
                r#"
  organization_slug = "acme-inc"
  organization_id = "{BUILDKITE_ORG}"
  pipeline_slug = "widget"
  step_key = "publish"
  build_branch = "main"
  packages = ["widget"]
"#
            ),
            r#"
  organization_slug = "acme-inc"
  pipeline_slug = "widget"
  build_tag = "v*"
  packages = ["widget-docs"]
"#,
        ],
    )
    .await;
    let claims = || TestClaims::buildkite(buildkite.url(), AUDIENCE, now());
    // Older Buildkite agents send no jti: each token is accepted once all
    // the same.
    let token = buildkite.sign(&claims().build());
    let headers = minted(&app, &token).await;
    assert_eq!(
        header(&headers, "x-trustpub-publisher"),
        Some("buildkite:acme-inc/widget")
    );
    assert_eq!(header(&headers, "x-trustpub-packages"), Some("widget"));
    problem(mint(&app, &token).await, 401, "token-reused").await;
    let next_build = claims().set("build_number", 43);
    let publisher = introspected(&app, &buildkite.sign(&next_build.build())).await;
    assert_eq!(publisher["provider"], "buildkite");
    assert_eq!(publisher["identity"], "buildkite:acme-inc/widget");
    assert_eq!(publisher["run_id"], "43");
    // A tagged build matches the second publisher only.
    let tagged = claims()
        .set("build_tag", "v2.0")
        .set("build_branch", "v2.0");
    let headers = minted(&app, &buildkite.sign(&tagged.build())).await;
    assert_eq!(header(&headers, "x-trustpub-packages"), Some("widget-docs"));

    let cases = [
        (
            claims().set("organization_slug", "acme-evil"),
            "organization_slug",
        ),
        // Resurrection: the slug taken by an organization created after
        // the first was deleted.
        (
            claims().set("organization_id", "0190a0c4-0000-4000-8000-000000000000"),
            "organization_id",
        ),
        // A step that did not ask for the claim, for a publisher that names it.
        (
            claims().set("organization_id", Value::Null),
            "organization_id",
        ),
        (claims().set("pipeline_slug", "gadget"), "pipeline_slug"),
        (claims().set("step_key", "test"), "step_key"),
        (claims().set("step_key", Value::Null), "step_key"),
        (claims().set("build_branch", "feature"), "build_branch"),
        // A tag the tag publisher's pattern does not match (its branch,
        // named after the tag as Buildkite does, not the branch publisher's).
        (
            claims()
                .set("build_tag", "nightly-2")
                .set("build_branch", "nightly-2"),
            "build_tag",
        ),
    ];
    refused_each(&app, &buildkite, cases).await;
    lacks_each(
        &app,
        &buildkite,
        claims,
        &["organization_slug", "pipeline_slug"],
    )
    .await;
}

#[tokio::test]
async fn circleci_pins_organization_project_ref_and_context() {
    let circleci = TestIssuer::start_at(&format!("/org/{CIRCLECI_ORG}")).await;
    let app = trusting(
        &circleci,
        "circleci",
        &[format!(
            r#"
  organization_id = "{CIRCLECI_ORG}"
  project_id = "{CIRCLECI_PROJECT}"
  vcs_ref = "refs/heads/main"
  context_ids = ["{CIRCLECI_RELEASE_CONTEXT}"]
  packages = ["widget"]
"#
        )
        .as_str()],
    )
    .await;
    let claims = || TestClaims::circleci(circleci.url(), AUDIENCE, now());
    let headers = minted(&app, &circleci.sign(&claims().build())).await;
    assert_eq!(
        header(&headers, "x-trustpub-publisher"),
        Some(format!("circleci:{CIRCLECI_ORG}/{CIRCLECI_PROJECT}").as_str())
    );

    let other = "00000000-0000-4000-8000-000000000000";
    let cases = [
        (
            claims().set(
                "sub",
                format!("org/{other}/project/{CIRCLECI_PROJECT}/user/u"),
            ),
            "sub",
        ),
        (
            claims().set("oidc.circleci.com/project-id", other),
            "project-id",
        ),
        (
            claims().set("oidc.circleci.com/vcs-ref", "refs/heads/dev"),
            "vcs-ref",
        ),
        (
            claims().set("oidc.circleci.com/context-ids", json!([other])),
            "context-ids",
        ),
        (
            claims().set("oidc.circleci.com/context-ids", Value::Null),
            "context-ids",
        ),
    ];
    refused_each(&app, &circleci, cases).await;
    // A job re-run with SSH: whoever holds the session could publish.
    let token = circleci.sign(&claims().set("oidc.circleci.com/ssh-rerun", true).build());
    problem(mint(&app, &token).await, 403, "forbidden-event").await;
    lacks_each(
        &app,
        &circleci,
        claims,
        &["sub", "oidc.circleci.com/project-id"],
    )
    .await;
}

#[tokio::test]
async fn google_pins_a_verified_service_account_email_and_its_id() {
    let google = TestIssuer::start().await;
    let app = trusting(
        &google,
        "google",
        &[r#"
  email = "publisher@acme-build.iam.gserviceaccount.com"
  subject = "104857600000000000001"
  packages = ["widget"]
"#],
    )
    .await;
    let claims = || TestClaims::google(google.url(), AUDIENCE, now());
    let token = google.sign(&claims().build());
    let headers = minted(&app, &token).await;
    assert_eq!(
        header(&headers, "x-trustpub-publisher"),
        Some("google:publisher@acme-build.iam.gserviceaccount.com")
    );
    // No jti in Google's tokens; the same token twice is still a replay.
    problem(mint(&app, &token).await, 401, "token-reused").await;

    let cases = [
        (
            claims().set("email", "other@acme-build.iam.gserviceaccount.com"),
            "email",
        ),
        (claims().set("email_verified", false), "verified"),
        // Resurrection: the account deleted and re-created under its email.
        (claims().set("sub", "104857600000000000002"), "sub"),
    ];
    refused_each(&app, &google, cases).await;
    lacks_each(&app, &google, claims, &["email", "email_verified"]).await;
}

#[tokio::test]
async fn generic_publishers_match_claim_rules() {
    let cluster = TestIssuer::start().await;
    let app = trusting(
        &cluster,
        "generic",
        &[
            r#"
  subject = "system:serviceaccount:release:*"
  claims = { "kubernetes.io" = { namespace = "release", serviceaccount = { name = "publisher", uid = "6f1b4c7a-8a3c-4e1f-9b2d-4c557b0d1a6e" } }, build_number = 42, branch = "release-*" }
  packages = ["widget"]
"#,
        ],
    )
    .await;
    // Non-string claims compare as canonical JSON, strings as given.
    let claims = || {
        TestClaims::kubernetes(cluster.url(), AUDIENCE, now())
            .set("build_number", "42")
            .set("branch", "release-2")
    };
    let headers = minted(&app, &cluster.sign(&claims().build())).await;
    assert_eq!(
        header(&headers, "x-trustpub-publisher"),
        Some("generic:system:serviceaccount:release:publisher")
    );
    minted(
        &app,
        &cluster.sign(&claims().set("build_number", 42).build()),
    )
    .await;

    let cases = [
        (claims().set("sub", "system:serviceaccount:default:publisher"), "sub"),
        (
            claims().set("kubernetes.io", json!({"namespace": "release", "serviceaccount": {"name": "publisher", "uid": "another"}})),
            "kubernetes.io",
        ),
        (claims().set("build_number", 43), "build_number"),
        (claims().set("branch", "main"), "branch"),
        // A claim the token lacks fails its rule.
        (claims().set("branch", Value::Null), "branch"),
    ];
    refused_each(&app, &cluster, cases).await;
}

#[tokio::test]
async fn in_a_mixed_registry_each_publisher_matches_only_its_own_issuer() {
    let github = TestIssuer::start().await;
    let gitlab = TestIssuer::start().await;
    // A second self-managed GitLab the registry trusts, with no publisher.
    let other_gitlab = TestIssuer::start().await;
    let cluster = TestIssuer::start().await;
    let publishers = [
        publisher("github", github.url(), GITHUB),
        publisher("gitlab", gitlab.url(), GITLAB),
        publisher(
            "generic",
            cluster.url(),
            "  subject = \"system:serviceaccount:release:publisher\"\n  packages = [\"widget\"]",
        ),
    ];
    let issuers = [
        (github.url(), "github"),
        (gitlab.url(), "gitlab"),
        (other_gitlab.url(), "gitlab"),
        (cluster.url(), "generic"),
    ];
    let app = spawn_app(&registry(&issuers, &publishers.concat())).await;

    let tokens = [
        (
            github.sign(&TestClaims::github(github.url(), AUDIENCE, now()).build()),
            "github",
        ),
        (
            gitlab.sign(&TestClaims::gitlab(gitlab.url(), AUDIENCE, now()).build()),
            "gitlab",
        ),
        (
            cluster.sign(&TestClaims::kubernetes(cluster.url(), AUDIENCE, now()).build()),
            "generic",
        ),
    ];
    for (token, provider) in &tokens {
        let headers = minted(&app, token).await;
        assert_eq!(header(&headers, "x-trustpub-provider"), Some(*provider));
    }

    // The same GitLab claims from the other instance match no publisher.
    let copy = TestClaims::gitlab(other_gitlab.url(), AUDIENCE, now());
    let token = other_gitlab.sign(&copy.build());
    let document = problem(mint(&app, &token).await, 403, "invalid-publisher").await;
    assert!(!document["detail"].as_str().unwrap().contains("gitlab"));
    let events = app.store.events("acme").await.unwrap();
    assert!(
        events
            .last()
            .unwrap()
            .detail
            .contains("no publisher is configured for this issuer")
    );

    // GitHub-shaped claims from a GitLab issuer are not a GitLab token.
    let token = gitlab.sign(&TestClaims::github(gitlab.url(), AUDIENCE, now()).build());
    lacks(&app, &token, "project_path").await;

    // The generic publisher pins an exact subject: another account of the
    // cluster is refused.
    let token = cluster.sign(
        &TestClaims::kubernetes(cluster.url(), AUDIENCE, now())
            .set("sub", "system:serviceaccount:release:intruder")
            .build(),
    );
    refused_as_other(&app, &token, "sub").await;
}

/// A registry trusting one issuer of `provider`, with one publisher of
/// `provider` with `keys` (TOML lines).
fn one_publisher(provider: &str, keys: &str) -> String {
    let issuer = "https://ci.acme.test";
    let keys = format!("  packages = [\"widget\"]\n{keys}");
    registry(&[(issuer, provider)], &publisher(provider, issuer, &keys))
}

/// A registry trusting the CircleCI issuer of the organization `issuer_org`,
/// with a publisher of [`CIRCLECI_ORG`]'s project [`CIRCLECI_PROJECT`].
fn circleci_publisher(issuer_org: &str) -> String {
    let keys =
        format!("  organization_id = \"{CIRCLECI_ORG}\"\n  project_id = \"{CIRCLECI_PROJECT}\"\n");
    one_publisher("circleci", &keys).replace(
        "https://ci.acme.test",
        &format!("https://oidc.circleci.com/org/{issuer_org}"),
    )
}

#[tokio::test]
async fn check_config_refuses_publishers_that_would_trust_strangers_or_nothing() {
    let gitlab = "  project_path = \"acme/widget\"\n  namespace_id = \"72\"\n  ci_config_path = \".gitlab-ci.yml\"\n";
    let cases = [
        // A key the provider does not know.
        (
            one_publisher("gitlab", &format!("{gitlab}  workflow = \"release.yml\"\n")),
            "registries.0.publishers.0",
            "workflow",
        ),
        // GitLab's resurrection protection and project are required.
        (
            one_publisher("gitlab", &gitlab.replace("  namespace_id = \"72\"\n", "")),
            "registries.0.publishers.0",
            "namespace_id",
        ),
        (
            one_publisher(
                "gitlab",
                &gitlab.replace("  project_path = \"acme/widget\"\n", ""),
            ),
            "registries.0.publishers.0",
            "project_path",
        ),
        (
            one_publisher("gitlab", &gitlab.replace("acme/widget", "acme/*")),
            "registries.0.publishers.0.project_path",
            "namespace/project",
        ),
        (
            one_publisher(
                "buildkite",
                "  organization_slug = \"*\"\n  pipeline_slug = \"widget\"\n",
            ),
            "registries.0.publishers.0.organization_slug",
            "exact value",
        ),
        (
            one_publisher(
                "circleci",
                "  organization_id = \"acme\"\n  project_id = \"widget\"\n",
            ),
            "registries.0.publishers.0.organization_id",
            "UUID",
        ),
        // CircleCI has an issuer per organization, its id the last segment.
        (
            circleci_publisher(CIRCLECI_PROJECT),
            "registries.0.publishers.0.organization_id",
            "not the organization of the issuer",
        ),
        (
            circleci_publisher(CIRCLECI_ORG).replace("/org/", "/orgs/"),
            "registries.0.publishers.0.organization_id",
            "not the organization of the issuer",
        ),
        (
            one_publisher(
                "google",
                "  email = \"*@acme-build.iam.gserviceaccount.com\"\n",
            ),
            "registries.0.publishers.0.email",
            "exact value",
        ),
        // Generic: patterns only would trust anyone the issuer vouches for.
        (
            one_publisher(
                "generic",
                "  subject = \"repo:*\"\n  claims = { ref = \"refs/*\" }\n",
            ),
            "registries.0.publishers.0.claims",
            "exact value",
        ),
        (
            one_publisher("generic", ""),
            "registries.0.publishers.0.claims",
            "exact value",
        ),
        (
            one_publisher("generic", "  claims = { aud = \"acme-pypi\" }\n"),
            "registries.0.publishers.0.claims",
            "\"aud\"",
        ),
        // A publisher of one provider on an issuer of another.
        (
            one_publisher("google", "  email = \"a@b.test\"\n").replacen(
                "provider = \"google\"",
                "provider = \"generic\"",
                1,
            ),
            "registries.0.publishers.0.provider",
            "is a generic issuer",
        ),
    ];
    let db = TestDatabase::new().await;
    for (config, key, reason) in cases {
        match settings(&config, &db) {
            Err(trustpub::Error::Config {
                key: got_key,
                reason: got_reason,
            }) => assert!(
                got_key.starts_with(key) && got_reason.contains(reason),
                "expected {key}: …{reason}…, got {got_key}: {got_reason}"
            ),
            other => panic!("expected {key}: …{reason}…, got {other:?}\n{config}"),
        }
    }
    // Each provider's example publisher is valid.
    settings(&circleci_publisher(CIRCLECI_ORG), &db).unwrap();
    for (provider, keys) in [
        ("gitlab", gitlab),
        (
            "buildkite",
            "  organization_slug = \"acme-inc\"\n  pipeline_slug = \"widget\"\n",
        ),
        (
            "google",
            "  email = \"publisher@acme-build.iam.gserviceaccount.com\"\n",
        ),
        (
            "generic",
            "  subject = \"system:serviceaccount:release:publisher\"\n",
        ),
    ] {
        settings(&one_publisher(provider, keys), &db).unwrap();
    }
}
