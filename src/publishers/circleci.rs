//! CircleCI publishers (issuer `https://oidc.circleci.com/org/<org-id>`: one
//! issuer per organization). A job asks for a token with the registry's
//! audience with `circleci run oidc get --claims '{"aud": "…"}'`.
//!
//! The organization is read from `sub` (`org/<org-id>/project/<project-id>/
//! user/<user-id>`), the project from `oidc.circleci.com/project-id`: both
//! are UUIDs that survive renames. Tokens of jobs re-run with SSH are
//! refused whatever the publisher.

use serde::{Deserialize, Serialize};

use super::claims::{literal, pattern_matches};
use super::{Audit, FieldError, Policy};
use crate::domain::{IssuerUrl, Provider};
use crate::problem::{Error, Result};

/// A CircleCI project publisher.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CircleciPublisher {
    /// The organization's id (a UUID, in the organization's settings).
    pub organization_id: String,
    /// The project's id (a UUID, in the project's settings).
    pub project_id: String,
    /// A pattern `oidc.circleci.com/vcs-ref` must match, e.g. `refs/heads/main`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vcs_ref: Option<String>,
    /// Contexts (their ids) the job must run with, e.g. one that only
    /// release managers may use.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub context_ids: Vec<String>,
}

/// The claims of a CircleCI identity token that publishers read.
#[derive(Debug, Deserialize)]
pub struct CircleciClaims {
    sub: String,
    #[serde(rename = "oidc.circleci.com/project-id")]
    project_id: String,
    #[serde(rename = "oidc.circleci.com/vcs-ref", default)]
    vcs_ref: Option<String>,
    #[serde(rename = "oidc.circleci.com/vcs-origin", default)]
    vcs_origin: Option<String>,
    #[serde(rename = "oidc.circleci.com/context-ids", default)]
    context_ids: Vec<String>,
    #[serde(rename = "oidc.circleci.com/pipeline-id", default)]
    pipeline_id: Option<String>,
    #[serde(rename = "oidc.circleci.com/ssh-rerun", default)]
    ssh_rerun: bool,
}

impl CircleciClaims {
    /// The organization id of `sub`.
    fn organization_id(&self) -> Option<&str> {
        let mut segments = self.sub.split('/');
        match (segments.next(), segments.next()) {
            (Some("org"), Some(id)) if !id.is_empty() => Some(id),
            _ => None,
        }
    }
}

fn uuid(field: &'static str, value: &str) -> std::result::Result<(), FieldError> {
    let hyphens = [8, 13, 18, 23];
    let valid = value.len() == 36
        && value.char_indices().all(|(i, c)| {
            if hyphens.contains(&i) {
                c == '-'
            } else {
                c.is_ascii_hexdigit()
            }
        });
    if valid {
        Ok(())
    } else {
        Err((field, format!("{value:?} is not a UUID")))
    }
}

impl Policy for CircleciPublisher {
    type Claims = CircleciClaims;

    fn validate(&self) -> std::result::Result<(), FieldError> {
        uuid("organization_id", &self.organization_id)?;
        uuid("project_id", &self.project_id)?;
        super::claims::not_empty("vcs_ref", self.vcs_ref.as_deref())?;
        for context in &self.context_ids {
            literal("context_ids", context)?;
        }
        Ok(())
    }

    /// CircleCI has an issuer per organization: the publisher's
    /// organization must be its issuer's.
    fn validate_issuer(&self, issuer: &IssuerUrl) -> std::result::Result<(), FieldError> {
        let url = url::Url::parse(issuer.as_str()).ok();
        let path = url.as_ref().map_or("", |url| url.path());
        let organization = path
            .strip_suffix('/')
            .unwrap_or(path)
            .rsplit_once("/org/")
            .map(|(_, id)| id)
            .filter(|id| !id.contains('/'));
        match organization {
            Some(id) if id.eq_ignore_ascii_case(&self.organization_id) => Ok(()),
            _ => Err((
                "organization_id",
                format!(
                    "{:?} is not the organization of the issuer {issuer} (CircleCI's issuer is https://oidc.circleci.com/org/<organization id>)",
                    self.organization_id,
                    issuer = issuer.as_str()
                ),
            )),
        }
    }

    /// A job re-run with SSH lets whoever holds the SSH session run
    /// anything with the job's identity: never a publisher.
    fn screen(claims: &CircleciClaims) -> Result<()> {
        if claims.ssh_rerun {
            return Err(Error::ForbiddenEvent("ssh-rerun".to_owned()));
        }
        Ok(())
    }

    fn check(&self, claims: &CircleciClaims) -> std::result::Result<(), String> {
        let organization = claims.organization_id();
        if !organization.is_some_and(|id| id.eq_ignore_ascii_case(&self.organization_id)) {
            return Err(format!(
                "the organization of sub {:?} is not {:?}",
                claims.sub, self.organization_id
            ));
        }
        if !claims.project_id.eq_ignore_ascii_case(&self.project_id) {
            return Err(format!(
                "oidc.circleci.com/project-id {:?} is not {:?}",
                claims.project_id, self.project_id
            ));
        }
        pattern_matches(
            "oidc.circleci.com/vcs-ref",
            self.vcs_ref.as_deref(),
            claims.vcs_ref.as_deref(),
        )?;
        if let Some(missing) = self
            .context_ids
            .iter()
            .find(|wanted| !claims.context_ids.contains(wanted))
        {
            return Err(format!(
                "oidc.circleci.com/context-ids {:?} lacks {missing:?}",
                claims.context_ids
            ));
        }
        Ok(())
    }

    fn audit(claims: &CircleciClaims) -> Audit {
        let project = format!(
            "{}/{}",
            claims.organization_id().unwrap_or_default(),
            claims.project_id
        );
        Audit {
            provider: Some(Provider::Circleci),
            identity: Some(format!("circleci:{project}")),
            repository: claims.vcs_origin.clone().or(Some(project)),
            workflow: None,
            git_ref: claims.vcs_ref.clone(),
            sha: None,
            run_id: claims.pipeline_id.clone(),
            subject: Some(claims.sub.clone()),
        }
    }
}
