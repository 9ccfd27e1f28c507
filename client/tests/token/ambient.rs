//! Each CI's identity token, got the way the CI hands it out, simulated by
//! its real environment variables (and scripts named as its command-line
//! tools): the client mints with it against trustpub trusting that CI.

use std::path::Path;

use trustpub::store::now;
use trustpub::testing::{ACME_AUDIENCE, CIRCLECI_ORG, CIRCLECI_PROJECT, TestClaims, TestIssuer};

use crate::support::{GITHUB, Run, Trustpub, acme, crafted, github_actions, mint, script};

/// Mints for trustpub's acme with `env` (and `bin` on `PATH`) and `extra`
/// arguments, and asserts the credential is acme's.
async fn mints(
    trustpub: &Trustpub,
    env: &[(&str, String)],
    bin: Option<&Path>,
    extra: &[&str],
) -> Run {
    let run = mint(&trustpub.upload_url(), extra, env, bin).await;
    trustpub.assert_minted(&run).await;
    run
}

async fn trusting(issuer: &TestIssuer, provider: &str, keys: &str) -> Trustpub {
    Trustpub::start(|origin| acme(origin, "/legacy/", issuer.url(), provider, keys)).await
}

#[tokio::test]
async fn github_actions_token_endpoint() {
    let issuer = TestIssuer::start().await;
    let trustpub = Trustpub::github(&issuer).await;
    let run = mints(&trustpub, &github_actions(&issuer), None, &[]).await;
    assert!(
        run.stderr.starts_with("::add-mask::acme_"),
        "{}",
        run.stderr
    );

    // Without `permissions: id-token: write` there are no such variables.
    let upload_url = trustpub.upload_url();
    let run = mint(&upload_url, &[], &[("GITHUB_ACTIONS", "true".into())], None).await;
    run.fails_saying(&["permissions: id-token: write"]);
}

/// Forgejo (and Gitea) hand out tokens as GitHub does, and set
/// `GITHUB_ACTIONS` too; the client takes the job for Forgejo's and masks.
#[tokio::test]
async fn forgejo_actions_token_endpoint() {
    let issuer = TestIssuer::start_at("/api/actions").await;
    issuer.set_actions_claims(|claims| {
        claims
            .set("job_workflow_ref", serde_json::Value::Null)
            .set("environment", serde_json::Value::Null)
            .set(
                "workflow_ref",
                "octo-org/widget/.forgejo/workflows/release.yml@refs/heads/main",
            )
    });
    let trustpub = trusting(&issuer, "forgejo", GITHUB).await;
    let mut env = github_actions(&issuer);
    env.push(("FORGEJO_ACTIONS", "true".into()));
    let run = mints(&trustpub, &env, None, &[]).await;
    assert!(
        run.stderr.starts_with("::add-mask::acme_"),
        "{}",
        run.stderr
    );
}

const GITLAB: &str = r#"
project_path = "acme/tools/widget"
namespace_id = "72"
ci_config_path = ".gitlab-ci.yml"
"#;

/// GitLab: the `id_tokens:` variable, `TRUSTPUB_ID_TOKEN` unless
/// `--id-token-env` names another; no mask (GitLab masks variables itself).
#[tokio::test]
async fn gitlab_id_tokens_variable() {
    let issuer = TestIssuer::start().await;
    let trustpub = trusting(&issuer, "gitlab", GITLAB).await;
    let gitlab_token =
        || issuer.sign(&TestClaims::gitlab(issuer.url(), ACME_AUDIENCE, now()).build());
    let env = [
        ("GITLAB_CI", "true".into()),
        ("TRUSTPUB_ID_TOKEN", gitlab_token()),
    ];
    let run = mints(&trustpub, &env, None, &[]).await;
    assert!(!run.stderr.contains("::add-mask::"), "{}", run.stderr);

    let env = [
        ("GITLAB_CI", "true".into()),
        ("PYPI_ID_TOKEN", gitlab_token()),
    ];
    mints(&trustpub, &env, None, &["--id-token-env", "PYPI_ID_TOKEN"]).await;

    // Without the variable, the job is told what to add.
    let upload_url = trustpub.upload_url();
    let run = mint(&upload_url, &[], &[("GITLAB_CI", "true".into())], None).await;
    run.fails_saying(&["id_tokens:\n    TRUSTPUB_ID_TOKEN:\n      aud: acme-pypi"]);

    // A token for another audience is caught before the mint.
    let other = issuer.sign(&TestClaims::gitlab(issuer.url(), "elsewhere", now()).build());
    let run = mint(
        &upload_url,
        &[],
        &[("GITLAB_CI", "true".into()), ("TRUSTPUB_ID_TOKEN", other)],
        None,
    )
    .await;
    run.fails_saying(&[r#"for the audience ["elsewhere"], and the index wants "acme-pypi""#]);
}

/// Buildkite: `buildkite-agent oidc request-token --audience <audience>`,
/// here a script that insists on exactly those arguments.
#[tokio::test]
async fn buildkite_agent_request_token() {
    let issuer = TestIssuer::start().await;
    let keys = "organization_slug = \"acme-inc\"\npipeline_slug = \"widget\"\n";
    let trustpub = trusting(&issuer, "buildkite", keys).await;
    let jwt = issuer.sign(&TestClaims::buildkite(issuer.url(), ACME_AUDIENCE, now()).build());
    let bin = script(
        "buildkite-agent",
        &format!(
            "[ \"$*\" = 'oidc request-token --audience acme-pypi --claim organization_id' ] \
             || {{ echo \"unexpected: $*\" >&2; exit 3; }}\necho '{jwt}'"
        ),
    );
    mints(
        &trustpub,
        &[("BUILDKITE", "true".into())],
        Some(bin.path()),
        &[],
    )
    .await;

    // The agent's failure is the client's.
    let bin = script("buildkite-agent", "echo 'no OIDC for this job' >&2; exit 1");
    let upload_url = trustpub.upload_url();
    let run = mint(
        &upload_url,
        &[],
        &[("BUILDKITE", "true".into())],
        Some(bin.path()),
    )
    .await;
    run.fails_saying(&[
        "no OIDC for this job",
        "`buildkite-agent oidc request-token",
    ]);
}

/// CircleCI: `CIRCLE_OIDC_TOKEN_V2` when its audience is the index's (no
/// CLI needed), else `circleci run oidc get --claims '{"aud": …}'`.
#[tokio::test]
async fn circleci_token_variable_or_cli() {
    let issuer = TestIssuer::start_at(&format!("/org/{CIRCLECI_ORG}")).await;
    let keys =
        format!("organization_id = \"{CIRCLECI_ORG}\"\nproject_id = \"{CIRCLECI_PROJECT}\"\n");
    let trustpub = trusting(&issuer, "circleci", &keys).await;
    // CircleCI's tokens have no jti: each job here is another, so that its
    // token is not the first one's again.
    let for_audience = |audience: &str, job: &str| {
        let claims = TestClaims::circleci(issuer.url(), audience, now())
            .set("oidc.circleci.com/job-id", job);
        issuer.sign(&claims.build())
    };

    let env = [
        ("CIRCLECI", "true".into()),
        ("CIRCLE_OIDC_TOKEN_V2", for_audience(ACME_AUDIENCE, "job-1")),
    ];
    mints(&trustpub, &env, None, &[]).await;

    // The job's own token is for the organization: the CLI makes one.
    let bin = script(
        "circleci",
        &format!(
            "[ \"$*\" = 'run oidc get --claims {{\"aud\":\"acme-pypi\"}}' ] \
             || {{ echo \"unexpected: $*\" >&2; exit 3; }}\necho '{}'",
            for_audience(ACME_AUDIENCE, "job-2")
        ),
    );
    let env = [
        ("CIRCLECI", "true".into()),
        ("CIRCLE_OIDC_TOKEN_V2", for_audience(CIRCLECI_ORG, "job-2")),
    ];
    mints(&trustpub, &env, Some(bin.path()), &[]).await;
}

/// Google Cloud: the metadata server (here on loopback, named by
/// `GCE_METADATA_HOST` as Google's libraries allow) answers the token for
/// `audience` in the full format, to a request with `Metadata-Flavor`.
#[tokio::test]
async fn google_metadata_server() {
    let issuer = TestIssuer::start().await;
    let keys = "email = \"publisher@acme-build.iam.gserviceaccount.com\"\n";
    let trustpub = trusting(&issuer, "google", keys).await;
    let jwt = issuer.sign(&TestClaims::google(issuer.url(), ACME_AUDIENCE, now()).build());
    let port = crafted(move |_, head, _| {
        let expected = "GET /computeMetadata/v1/instance/service-accounts/default/identity\
                        ?audience=acme-pypi&format=full ";
        if head.starts_with(expected)
            && head
                .to_ascii_lowercase()
                .contains("metadata-flavor: google")
        {
            (200, jwt.clone())
        } else {
            (403, format!("unexpected request: {head}"))
        }
    });
    let env = [("GCE_METADATA_HOST", format!("127.0.0.1:{port}"))];
    mints(&trustpub, &env, None, &[]).await;
}

/// `--id-token-file` (a Kubernetes projected token, say) needs no CI, and
/// `--ci` overrides what is detected.
#[tokio::test]
async fn a_token_file_and_an_explicit_ci() {
    let issuer = TestIssuer::start().await;
    let trustpub = Trustpub::github(&issuer).await;
    let file = tempfile::NamedTempFile::new().unwrap();
    let jwt = issuer.sign(&TestClaims::github(issuer.url(), ACME_AUDIENCE, now()).build());
    std::fs::write(file.path(), format!("{jwt}\n")).unwrap();
    let path = file.path().display().to_string();
    let run = mints(&trustpub, &[], None, &["--id-token-file", &path]).await;
    assert!(!run.stderr.contains("::add-mask::"));

    let mut env = github_actions(&issuer);
    env.push(("GITLAB_CI", "true".into()));
    env.retain(|(name, _)| *name != "GITHUB_ACTIONS");
    mints(&trustpub, &env, None, &["--ci", "github"]).await;

    // Nothing detected, nothing given.
    let upload_url = trustpub.upload_url();
    let run = mint(&upload_url, &[], &[], None).await;
    run.fails_saying(&["no CI detected", "--ci", "--id-token-file"]);
}
