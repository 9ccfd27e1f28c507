//! Forgejo and Gitea Actions publishers (issuer `https://HOST/api/actions`).
//!
//! Their identity tokens are shaped like GitHub's: the same repository,
//! workflow, ref and event claims, requested through the same
//! `ACTIONS_ID_TOKEN_REQUEST_*` variables. Workflows live in
//! `.forgejo/workflows/`, `.gitea/workflows/` or `.github/workflows/`. The
//! owner's numeric id is sent by newer instances only: a publisher that
//! names it requires it.

use serde::{Deserialize, Serialize};

use super::claims::{numeric, optional_id};
use super::github::{RunClaims, names_workflow, validate_shared};
use super::{Audit, FieldError, Policy};
use crate::domain::Provider;
use crate::problem::Result;

/// The directories Forgejo and Gitea read workflows from.
const WORKFLOW_DIRS: [&str; 3] = [
    ".forgejo/workflows",
    ".gitea/workflows",
    ".github/workflows",
];

/// A Forgejo or Gitea Actions publisher.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ForgejoPublisher {
    /// `owner/name`, compared case-insensitively.
    pub repository: String,
    /// The owner's numeric id; when given, tokens must carry it and match.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub repository_owner_id: Option<String>,
    /// The workflow file name, e.g. `release.yml`.
    pub workflow: String,
    /// The deployment environment, when one is required (case-insensitive).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub environment: Option<String>,
    /// A pattern the git ref must match, e.g. `refs/tags/v*`.
    #[serde(rename = "ref", default, skip_serializing_if = "Option::is_none")]
    pub git_ref: Option<String>,
}

/// The claims of a Forgejo or Gitea Actions identity token that publishers
/// read.
#[derive(Debug, Deserialize)]
pub struct ForgejoClaims {
    #[serde(flatten)]
    run: RunClaims,
    #[serde(default, deserialize_with = "optional_id")]
    repository_owner_id: Option<String>,
    /// `<owner>/<repo>/<dir>/<file>@<ref>`: the running workflow file.
    workflow_ref: String,
}

impl Policy for ForgejoPublisher {
    type Claims = ForgejoClaims;

    fn validate(&self) -> std::result::Result<(), FieldError> {
        validate_shared(
            &self.repository,
            &self.workflow,
            self.environment.as_deref(),
            self.git_ref.as_deref(),
        )?;
        match &self.repository_owner_id {
            Some(owner_id) => numeric(
                "repository_owner_id",
                owner_id,
                "find it at https://HOST/api/v1/users/<owner>",
            ),
            None => Ok(()),
        }
    }

    fn screen(claims: &ForgejoClaims) -> Result<()> {
        claims.run.screen()
    }

    fn check(&self, claims: &ForgejoClaims) -> std::result::Result<(), String> {
        claims.run.check_repository(&self.repository)?;
        if let Some(expected) = &self.repository_owner_id
            && claims.repository_owner_id.as_ref() != Some(expected)
        {
            return Err(format!(
                "repository_owner_id {:?} is not {expected:?}",
                claims.repository_owner_id
            ));
        }
        if !names_workflow(
            &claims.workflow_ref,
            &self.repository,
            &WORKFLOW_DIRS,
            &self.workflow,
        ) {
            return Err(format!(
                "workflow_ref {:?} is not {}'s workflow {}",
                claims.workflow_ref, self.repository, self.workflow
            ));
        }
        claims
            .run
            .check_environment_and_ref(self.environment.as_deref(), self.git_ref.as_deref())
    }

    fn audit(claims: &ForgejoClaims) -> Audit {
        claims.run.audit(Provider::Forgejo, &claims.workflow_ref)
    }
}
