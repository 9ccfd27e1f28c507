//! GitHub Actions publishers (github.com, or GitHub Enterprise Server with
//! another issuer URL).

use serde::{Deserialize, Serialize};

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
    /// The deployment environment, when one is required (case-insensitive).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub environment: Option<String>,
}

impl GithubPublisher {
    pub fn validate(&self) -> Result<(), (&'static str, String)> {
        let parts: Vec<&str> = self.repository.split('/').collect();
        if parts.len() != 2
            || parts
                .iter()
                .any(|p| p.is_empty() || p.contains(char::is_whitespace))
        {
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
        if self
            .environment
            .as_deref()
            .is_some_and(|e| e.trim().is_empty())
        {
            return Err(("environment", "must not be empty when given".to_owned()));
        }
        Ok(())
    }
}
