//! GitHub Actions publishers (github.com, or GitHub Enterprise Server with
//! another issuer URL).
//!
//! The workflow is matched on `job_workflow_ref`: the workflow file that runs
//! the publishing job. When a job calls a reusable workflow, that claim names
//! the reusable one, so a reusable workflow from another repository is
//! trusted only when the publisher names its repository in
//! `workflow_repository`.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::{Audit, Policy};
use crate::oidc::Claims;
use crate::problem::{Error, Result};

/// Events that run with a fork's code or a fork's inputs and a privileged
/// token: their tokens are refused whatever the publisher.
const FORBIDDEN_EVENTS: [&str; 2] = ["pull_request_target", "workflow_run"];

/// The claims a GitHub Actions identity token must carry.
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

fn claim<'a>(claims: &'a Claims, name: &str) -> Option<&'a str> {
    claims.get(name).and_then(Value::as_str)
}

fn is_owner_slash_name(value: &str) -> bool {
    let parts: Vec<&str> = value.split('/').collect();
    parts.len() == 2
        && parts
            .iter()
            .all(|p| !p.is_empty() && !p.contains(char::is_whitespace))
}

impl GithubPublisher {
    pub fn validate(&self) -> std::result::Result<(), (&'static str, String)> {
        if !is_owner_slash_name(&self.repository) {
            return Err((
                "repository",
                format!("{:?} is not of the form owner/name", self.repository),
            ));
        }
        if self.repository_owner_id.is_empty()
            || !self.repository_owner_id.bytes().all(|b| b.is_ascii_digit())
        {
            return Err((
                "repository_owner_id",
                format!(
                    "{:?} is not a numeric GitHub id (find it at https://api.github.com/users/<owner>)",
                    self.repository_owner_id
                ),
            ));
        }
        let is_file = (self.workflow.ends_with(".yml") || self.workflow.ends_with(".yaml"))
            && !self.workflow.contains('/');
        if !is_file {
            return Err((
                "workflow",
                format!(
                    "{:?} is not a workflow file name such as release.yml",
                    self.workflow
                ),
            ));
        }
        if let Some(repository) = &self.workflow_repository
            && !is_owner_slash_name(repository)
        {
            return Err((
                "workflow_repository",
                format!("{repository:?} is not of the form owner/name"),
            ));
        }
        if self
            .environment
            .as_deref()
            .is_some_and(|e| e.trim().is_empty())
        {
            return Err(("environment", "must not be empty when given".to_owned()));
        }
        if self.git_ref.as_deref().is_some_and(|r| r.trim().is_empty()) {
            return Err(("ref", "must not be empty when given".to_owned()));
        }
        Ok(())
    }
}

impl Policy for GithubPublisher {
    fn screen(claims: &Claims) -> Result<()> {
        match claim(claims, "event_name") {
            Some(event) if FORBIDDEN_EVENTS.contains(&event) => {
                Err(Error::ForbiddenEvent(event.to_owned()))
            }
            _ => Ok(()),
        }
    }

    fn check(&self, claims: &Claims) -> std::result::Result<(), String> {
        let repository = claim(claims, "repository").unwrap_or_default();
        if !repository.eq_ignore_ascii_case(&self.repository) {
            return Err(format!(
                "repository {repository:?} is not {:?}",
                self.repository
            ));
        }
        let owner_id = claim(claims, "repository_owner_id").unwrap_or_default();
        if owner_id != self.repository_owner_id {
            return Err(format!(
                "repository_owner_id {owner_id:?} is not {:?}",
                self.repository_owner_id
            ));
        }
        // job_workflow_ref = <owner>/<repo>/.github/workflows/<file>@<ref>
        let job_workflow_ref = claim(claims, "job_workflow_ref").unwrap_or_default();
        let workflow_path = job_workflow_ref.split('@').next().unwrap_or_default();
        let expected_repository = self
            .workflow_repository
            .as_deref()
            .unwrap_or(&self.repository);
        let expected_prefix = format!("{expected_repository}/.github/workflows/");
        let workflow_ok = workflow_path
            .get(..expected_prefix.len())
            .is_some_and(|prefix| prefix.eq_ignore_ascii_case(&expected_prefix))
            && workflow_path.get(expected_prefix.len()..) == Some(self.workflow.as_str());
        if !workflow_ok {
            return Err(format!(
                "job_workflow_ref {job_workflow_ref:?} is not {expected_prefix}{}",
                self.workflow
            ));
        }
        if let Some(environment) = &self.environment {
            let got = claim(claims, "environment").unwrap_or_default();
            if !got.eq_ignore_ascii_case(environment) {
                return Err(format!("environment {got:?} is not {environment:?}"));
            }
        }
        if let Some(pattern) = &self.git_ref {
            let got = claim(claims, "ref").unwrap_or_default();
            if !glob_match(pattern, got) {
                return Err(format!("ref {got:?} does not match {pattern:?}"));
            }
        }
        Ok(())
    }

    fn audit(claims: &Claims) -> Audit {
        let text = |name| claim(claims, name).map(str::to_owned);
        Audit {
            repository: text("repository"),
            workflow: text("job_workflow_ref"),
            git_ref: text("ref"),
            sha: text("sha"),
            run_id: text("run_id"),
            subject: text("sub"),
        }
    }
}

/// `*` matches any run of characters; everything else matches itself.
fn glob_match(pattern: &str, text: &str) -> bool {
    let mut parts = pattern.split('*');
    let first = parts.next().unwrap_or_default();
    let Some(mut rest) = text.strip_prefix(first) else {
        return false;
    };
    let parts: Vec<&str> = parts.collect();
    let Some((last, middle)) = parts.split_last() else {
        return rest.is_empty();
    };
    for part in middle {
        match rest.find(part) {
            Some(at) => rest = &rest[at + part.len()..],
            None => return false,
        }
    }
    rest.len() >= last.len() && rest.ends_with(last)
}

#[cfg(test)]
mod tests {
    use super::glob_match;

    #[test]
    fn ref_patterns() {
        assert!(glob_match("refs/tags/v*", "refs/tags/v1.2.3"));
        assert!(!glob_match("refs/tags/v*", "refs/heads/main"));
        assert!(glob_match("refs/heads/main", "refs/heads/main"));
        assert!(!glob_match("refs/heads/main", "refs/heads/main2"));
        assert!(glob_match("refs/*/release-*", "refs/heads/release-2"));
        assert!(!glob_match("refs/*/release-*", "refs/heads/main"));
        assert!(glob_match("*", "anything"));
        assert!(!glob_match("a*a", "a"));
    }
}
