//! Identity-token claims shaped as each provider documents them, for a job
//! publishing `widget`; each builder method changes one claim.

use ring::rand::{SecureRandom, SystemRandom};
use serde_json::{Map, Value, json};

/// The claims of a test identity token.
#[derive(Debug, Clone)]
pub struct TestClaims {
    claims: Map<String, Value>,
}

fn random_jti() -> String {
    let mut bytes = [0u8; 16];
    SystemRandom::new().fill(&mut bytes).expect("randomness");
    hex::encode(bytes)
}

impl TestClaims {
    fn with(issuer: &str, audience: &str, now: i64, jti: bool, specific: Value) -> Self {
        let mut claims = json!({
            "iss": issuer,
            "aud": audience,
            "iat": now,
            "nbf": now,
            "exp": now + 300,
        });
        if jti {
            claims["jti"] = Value::String(random_jti());
        }
        let (Value::Object(mut claims), Value::Object(specific)) = (claims, specific) else {
            unreachable!("objects")
        };
        claims.extend(specific);
        TestClaims { claims }
    }

    /// GitHub Actions (github.com, GHE.com or GitHub Enterprise Server): a
    /// push to `main` of `octo-org/widget` (owner id 9919), running
    /// `release.yml` in the `pypi` environment.
    pub fn github(issuer: &str, audience: &str, now: i64) -> Self {
        Self::with(
            issuer,
            audience,
            now,
            true,
            json!({
                "sub": "repo:octo-org/widget:environment:pypi",
                "repository": "octo-org/widget",
                "repository_id": "1234567",
                "repository_owner": "octo-org",
                "repository_owner_id": "9919",
                "workflow": "Release",
                "workflow_ref": "octo-org/widget/.github/workflows/release.yml@refs/heads/main",
                "job_workflow_ref": "octo-org/widget/.github/workflows/release.yml@refs/heads/main",
                "ref": "refs/heads/main",
                "ref_type": "branch",
                "sha": "0123456789abcdef0123456789abcdef01234567",
                "run_id": "42",
                "run_attempt": "1",
                "event_name": "push",
                "environment": "pypi",
                "actor": "octocat",
                "runner_environment": "github-hosted",
            }),
        )
    }

    /// GitLab CI/CD: a pipeline on the protected tag `v1.0` of
    /// `acme/tools/widget` (its namespace `acme/tools` has id 72), from its own
    /// `.gitlab-ci.yml`, in the `pypi` environment.
    pub fn gitlab(issuer: &str, audience: &str, now: i64) -> Self {
        let host = issuer
            .split_once("://")
            .map_or(issuer, |(_, rest)| rest)
            .trim_end_matches('/');
        Self::with(
            issuer,
            audience,
            now,
            true,
            json!({
                "sub": "project_path:acme/tools/widget:ref_type:tag:ref:v1.0",
                "namespace_id": "72",
                "namespace_path": "acme/tools",
                "project_id": "20",
                "project_path": "acme/tools/widget",
                "user_id": "5",
                "user_login": "release-bot",
                "pipeline_id": "1212",
                "pipeline_source": "push",
                "job_id": "3434",
                "ref": "v1.0",
                "ref_type": "tag",
                "ref_path": "refs/tags/v1.0",
                "ref_protected": "true",
                "environment": "pypi",
                "environment_protected": "true",
                "runner_id": 7,
                "runner_environment": "self-hosted",
                "sha": "0123456789abcdef0123456789abcdef01234567",
                "project_visibility": "internal",
                "ci_config_ref_uri": format!("{host}/acme/tools/widget//.gitlab-ci.yml@refs/tags/v1.0"),
                "ci_config_sha": "0123456789abcdef0123456789abcdef01234567",
            }),
        )
    }

    /// Forgejo Actions: a push to `main` of `octo-org/widget` (owner id
    /// 9919), running `.forgejo/workflows/release.yml` in the `pypi`
    /// environment. Like Forgejo's,
    /// the token has a `jti`; ids are numbers.
    pub fn forgejo(issuer: &str, audience: &str, now: i64) -> Self {
        Self::with(
            issuer,
            audience,
            now,
            true,
            json!({
                "sub": "repo:octo-org/widget:ref:refs/heads/main",
                "repository": "octo-org/widget",
                "repository_id": 81,
                "repository_owner": "octo-org",
                "repository_owner_id": 9919,
                "workflow": "release.yml",
                "workflow_ref": "octo-org/widget/.forgejo/workflows/release.yml@refs/heads/main",
                "ref": "refs/heads/main",
                "ref_type": "branch",
                "sha": "0123456789abcdef0123456789abcdef01234567",
                "run_id": "17",
                "run_number": "3",
                "event_name": "push",
                "environment": "pypi",
                "actor": "release-bot",
            }),
        )
    }

    /// Buildkite: build 42 of `acme-inc/widget` (organization
    /// [`BUILDKITE_ORG`]) on `main`, step `publish`, the step having asked
    /// for the `organization_id` claim. Without a `jti`, as older Buildkite
    /// agents sent them.
    pub fn buildkite(issuer: &str, audience: &str, now: i64) -> Self {
        Self::with(
            issuer,
            audience,
            now,
            false,
            json!({
                "sub": "organization:acme-inc:pipeline:widget:ref:refs/heads/main:commit:0123456789abcdef0123456789abcdef01234567:step:publish",
                "organization_slug": "acme-inc",
                "organization_id": BUILDKITE_ORG,
                "pipeline_slug": "widget",
                "build_number": 42,
                "build_branch": "main",
                "build_tag": null,
                "build_commit": "0123456789abcdef0123456789abcdef01234567",
                "step_key": "publish",
                "job_id": "0190a0c4-7c2f-4bd4-9b3d-5f2e8f9d1c11",
                "agent_id": "0190a0c4-8f3a-4f8e-a7b1-2c4d6e8f0a22",
            }),
        )
    }

    /// CircleCI: a job of project [`CIRCLECI_PROJECT`] of organization
    /// [`CIRCLECI_ORG`] on `main`, with the release context. No `jti`.
    pub fn circleci(issuer: &str, audience: &str, now: i64) -> Self {
        Self::with(
            issuer,
            audience,
            now,
            false,
            json!({
                "sub": format!("org/{CIRCLECI_ORG}/project/{CIRCLECI_PROJECT}/user/1d5a6a5e-44c4-4b4e-9a1d-2b7e0f3c9d88"),
                "oidc.circleci.com/project-id": CIRCLECI_PROJECT,
                "oidc.circleci.com/pipeline-id": "7b0d1a6e-6f1b-4c7a-8a3c-3e1f9b2d4c55",
                "oidc.circleci.com/workflow-id": "2c9e4f71-0d8b-4e6a-b5f2-9a7c3d1e6b44",
                "oidc.circleci.com/job-id": "5e3a9c20-7b1d-4f8e-a6c4-1d2b3e4f5a66",
                "oidc.circleci.com/vcs-origin": "github.com/acme-inc/widget",
                "oidc.circleci.com/vcs-ref": "refs/heads/main",
                "oidc.circleci.com/context-ids": [CIRCLECI_RELEASE_CONTEXT],
                "oidc.circleci.com/ssh-rerun": false,
            }),
        )
    }

    /// Google Cloud: the service account
    /// `publisher@acme-build.iam.gserviceaccount.com` (unique id
    /// 104857600000000000001). No `jti`, as Google's tokens have none.
    pub fn google(issuer: &str, audience: &str, now: i64) -> Self {
        Self::with(
            issuer,
            audience,
            now,
            false,
            json!({
                "sub": "104857600000000000001",
                "azp": "104857600000000000001",
                "email": "publisher@acme-build.iam.gserviceaccount.com",
                "email_verified": true,
            }),
        )
    }

    /// A Kubernetes service-account token (a generic issuer): the
    /// `publisher` account of namespace `release`.
    pub fn kubernetes(issuer: &str, audience: &str, now: i64) -> Self {
        Self::with(
            issuer,
            audience,
            now,
            true,
            json!({
                "sub": "system:serviceaccount:release:publisher",
                "kubernetes.io": {
                    "namespace": "release",
                    "serviceaccount": { "name": "publisher", "uid": "6f1b4c7a-8a3c-4e1f-9b2d-4c557b0d1a6e" },
                },
            }),
        )
    }

    /// Sets (or, with `Value::Null`, removes) a claim.
    pub fn set(mut self, name: &str, value: impl Into<Value>) -> Self {
        match value.into() {
            Value::Null => {
                self.claims.remove(name);
            }
            value => {
                self.claims.insert(name.to_owned(), value);
            }
        }
        self
    }

    pub fn build(self) -> Value {
        Value::Object(self.claims)
    }
}

/// The organization id of [`TestClaims::buildkite`].
pub const BUILDKITE_ORG: &str = "0190a0c4-5d2e-4c1b-8f3a-6b7c8d9e0f11";
/// The organization of [`TestClaims::circleci`].
pub const CIRCLECI_ORG: &str = "9a3c1f2e-4b5d-4e6f-8a7b-0c1d2e3f4a5b";
/// The project of [`TestClaims::circleci`].
pub const CIRCLECI_PROJECT: &str = "e8f7d6c5-b4a3-4921-8f0e-d1c2b3a4f5e6";
/// The context [`TestClaims::circleci`]'s job runs with.
pub const CIRCLECI_RELEASE_CONTEXT: &str = "3b2a1c0d-9e8f-4a7b-b6c5-d4e3f2a1b0c9";
