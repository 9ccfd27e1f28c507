//! GitHub Actions publishers (github.com, or GitHub Enterprise Server with
//! another issuer URL).
//!
//! The workflow is matched on `job_workflow_ref`: the workflow file that runs
//! the publishing job. When a job calls a reusable workflow, that claim names
//! the reusable one, so a reusable workflow from another repository is
//! trusted only when the publisher names its repository in
//! `workflow_repository`.

use serde::{Deserialize, Serialize};

use super::claims::{self, id, literal, not_empty, numeric, path, pattern_matches, same_name};
use super::{Audit, FieldError, Policy};
use crate::domain::Provider;
use crate::problem::{Error, Result};

/// Events that run with a fork's code or a fork's inputs and a privileged
/// token: their tokens are refused whatever the publisher.
const FORBIDDEN_EVENTS: [&str; 2] = ["pull_request_target", "workflow_run"];

/// A GitHub Actions publisher.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GithubPublisher {
    /// `owner/name`, compared case-insensitively.
    pub repository: String,
    /// The owner's numeric id, compared exactly: it survives renames, so a
    /// deleted and re-created owner name does not inherit the trust.
    pub repository_owner_id: String,
    /// The workflow file name, e.g. `release.yml`.
    pub workflow: String,
    /// The repository holding the workflow when it is a reusable workflow of
    /// another repository (`owner/name`); by default `repository`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub workflow_repository: Option<String>,
    /// The deployment environment, when one is required (case-insensitive).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub environment: Option<String>,
    /// A pattern the git ref must match, `*` matching any run of characters,
    /// e.g. `refs/tags/v*`.
    #[serde(rename = "ref", default, skip_serializing_if = "Option::is_none")]
    pub git_ref: Option<String>,
}

/// The claims of a GitHub Actions identity token that publishers read.
#[derive(Debug, Deserialize)]
pub struct GithubClaims {
    #[serde(flatten)]
    run: RunClaims,
    #[serde(deserialize_with = "id")]
    repository_owner_id: String,
    /// `<owner>/<repo>/.github/workflows/<file>@<ref>`
    job_workflow_ref: String,
}

/// The claims GitHub's and Forgejo's tokens share: the repository and the
/// run.
#[derive(Debug, Deserialize)]
pub(super) struct RunClaims {
    repository: String,
    #[serde(default)]
    environment: Option<String>,
    #[serde(rename = "ref", default)]
    git_ref: Option<String>,
    #[serde(default)]
    event_name: Option<String>,
    #[serde(default)]
    sha: Option<String>,
    #[serde(default, deserialize_with = "claims::optional_id")]
    run_id: Option<String>,
    #[serde(default)]
    sub: Option<String>,
}

impl RunClaims {
    /// Refuses the events forks can trigger.
    pub(super) fn screen(&self) -> Result<()> {
        match self.event_name.as_deref() {
            // Compared ignoring case, so that no spelling slips through.
            Some(event)
                if FORBIDDEN_EVENTS
                    .iter()
                    .any(|f| f.eq_ignore_ascii_case(event)) =>
            {
                Err(Error::ForbiddenEvent(event.to_owned()))
            }
            _ => Ok(()),
        }
    }

    pub(super) fn check_repository(&self, repository: &str) -> std::result::Result<(), String> {
        same_name("repository", Some(repository), Some(&self.repository))
    }

    /// The environment (case-insensitive) and the ref pattern, when the
    /// publisher names them.
    pub(super) fn check_environment_and_ref(
        &self,
        environment: Option<&str>,
        git_ref: Option<&str>,
    ) -> std::result::Result<(), String> {
        same_name("environment", environment, self.environment.as_deref())?;
        pattern_matches("ref", git_ref, self.git_ref.as_deref())
    }

    /// The audit of a run of `workflow` (the claim naming the running file).
    pub(super) fn audit(&self, provider: Provider, workflow: &str) -> Audit {
        Audit {
            provider: Some(provider),
            identity: Some(format!("{}:{}", provider.as_str(), self.repository)),
            repository: Some(self.repository.clone()),
            workflow: Some(workflow.to_owned()),
            git_ref: self.git_ref.clone(),
            sha: self.sha.clone(),
            run_id: self.run_id.clone(),
            subject: self.sub.clone(),
        }
    }
}

/// Whether `workflow_ref` (`<owner>/<repo>/<dir>/<file>@<ref>`) names the
/// file `workflow` in one of `dirs` of `repository` (case-insensitive
/// repository, exact file).
pub(super) fn names_workflow(
    workflow_ref: &str,
    repository: &str,
    dirs: &[&str],
    workflow: &str,
) -> bool {
    let path = workflow_ref.split('@').next().unwrap_or_default();
    dirs.iter().any(|dir| {
        let prefix = format!("{repository}/{dir}/");
        path.get(..prefix.len())
            .is_some_and(|head| head.eq_ignore_ascii_case(&prefix))
            && path.get(prefix.len()..) == Some(workflow)
    })
}

/// Checks the fields GitHub and Forgejo publishers share: an `owner/name`
/// repository, a workflow file name, and an environment and ref pattern
/// that are not empty when given.
pub(super) fn validate_shared(
    repository: &str,
    workflow: &str,
    environment: Option<&str>,
    git_ref: Option<&str>,
) -> std::result::Result<(), FieldError> {
    owner_slash_name("repository", repository)?;
    let is_file =
        (workflow.ends_with(".yml") || workflow.ends_with(".yaml")) && !workflow.contains('/');
    if !is_file || literal("workflow", workflow).is_err() {
        return Err((
            "workflow",
            format!("{workflow:?} is not a workflow file name such as release.yml"),
        ));
    }
    not_empty("environment", environment)?;
    not_empty("ref", git_ref)
}

fn owner_slash_name(field: &'static str, value: &str) -> std::result::Result<(), FieldError> {
    path(field, value, 2, "owner/name")?;
    if value.split('/').count() != 2 {
        return Err((field, format!("{value:?} is not of the form owner/name")));
    }
    Ok(())
}

impl Policy for GithubPublisher {
    type Claims = GithubClaims;

    fn validate(&self) -> std::result::Result<(), FieldError> {
        validate_shared(
            &self.repository,
            &self.workflow,
            self.environment.as_deref(),
            self.git_ref.as_deref(),
        )?;
        numeric(
            "repository_owner_id",
            &self.repository_owner_id,
            "find it at https://api.github.com/users/<owner>",
        )?;
        match &self.workflow_repository {
            Some(repository) => owner_slash_name("workflow_repository", repository),
            None => Ok(()),
        }
    }

    fn screen(claims: &GithubClaims) -> Result<()> {
        claims.run.screen()
    }

    fn check(&self, claims: &GithubClaims) -> std::result::Result<(), String> {
        claims.run.check_repository(&self.repository)?;
        if claims.repository_owner_id != self.repository_owner_id {
            return Err(format!(
                "repository_owner_id {:?} is not {:?}",
                claims.repository_owner_id, self.repository_owner_id
            ));
        }
        let workflow_repository = self
            .workflow_repository
            .as_deref()
            .unwrap_or(&self.repository);
        if !names_workflow(
            &claims.job_workflow_ref,
            workflow_repository,
            &[".github/workflows"],
            &self.workflow,
        ) {
            return Err(format!(
                "job_workflow_ref {:?} is not {workflow_repository}/.github/workflows/{}",
                claims.job_workflow_ref, self.workflow
            ));
        }
        claims
            .run
            .check_environment_and_ref(self.environment.as_deref(), self.git_ref.as_deref())
    }

    fn audit(claims: &GithubClaims) -> Audit {
        claims.run.audit(Provider::Github, &claims.job_workflow_ref)
    }
}

#[cfg(test)]
mod tests {
    use super::names_workflow;

    #[test]
    fn workflow_refs_name_a_file_of_the_repository() {
        let dirs = [".github/workflows"];
        let named = |r| names_workflow(r, "octo-org/widget", &dirs, "release.yml");
        assert!(named(
            "octo-org/widget/.github/workflows/release.yml@refs/heads/main"
        ));
        assert!(named(
            "Octo-Org/Widget/.github/workflows/release.yml@refs/tags/v1"
        ));
        assert!(!named(
            "octo-org/widget/.github/workflows/Release.yml@refs/heads/main"
        ));
        assert!(!named(
            "octo-org/widget2/.github/workflows/release.yml@refs/heads/main"
        ));
        assert!(!named(
            "octo-org/widget/.github/workflows/sub/release.yml@refs/heads/main"
        ));
        assert!(!named(
            "evil/octo-org/widget/.github/workflows/release.yml@x"
        ));
    }
}
