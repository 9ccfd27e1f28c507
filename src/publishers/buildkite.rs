//! Buildkite publishers (issuer `https://agent.buildkite.com`). A step asks
//! for its token with `buildkite-agent oidc request-token --audience …`.
//!
//! The organization and pipeline slugs are unique on Buildkite; the
//! organization's id is in the token only when the step asks for it
//! (`--claim organization_id`), and a publisher that names it requires it.

use serde::{Deserialize, Serialize};

use super::claims::{self, literal, pattern_matches};
use super::{Audit, FieldError, Policy};
use crate::domain::Provider;

/// A Buildkite pipeline publisher.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BuildkitePublisher {
    pub organization_slug: String,
    pub pipeline_slug: String,
    /// The organization's UUID; when given, tokens must carry it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub organization_id: Option<String>,
    /// The step's `key`, when only that step may publish.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub step_key: Option<String>,
    /// A pattern the build's branch must match, e.g. `main` or `release-*`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub build_branch: Option<String>,
    /// A pattern the build's tag must match, e.g. `v*`; builds without a tag
    /// then never match.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub build_tag: Option<String>,
}

/// The claims of a Buildkite identity token that publishers read.
#[derive(Debug, Deserialize)]
pub struct BuildkiteClaims {
    organization_slug: String,
    pipeline_slug: String,
    #[serde(default)]
    organization_id: Option<String>,
    #[serde(default)]
    step_key: Option<String>,
    #[serde(default)]
    build_branch: Option<String>,
    #[serde(default)]
    build_tag: Option<String>,
    #[serde(default)]
    build_commit: Option<String>,
    #[serde(default, deserialize_with = "claims::optional_id")]
    build_number: Option<String>,
    #[serde(default)]
    sub: Option<String>,
}

impl Policy for BuildkitePublisher {
    type Claims = BuildkiteClaims;

    fn validate(&self) -> std::result::Result<(), FieldError> {
        literal("organization_slug", &self.organization_slug)?;
        literal("pipeline_slug", &self.pipeline_slug)?;
        if let Some(id) = &self.organization_id {
            literal("organization_id", id)?;
        }
        if let Some(key) = &self.step_key {
            literal("step_key", key)?;
        }
        claims::not_empty("build_branch", self.build_branch.as_deref())?;
        claims::not_empty("build_tag", self.build_tag.as_deref())
    }

    fn check(&self, claims: &BuildkiteClaims) -> std::result::Result<(), String> {
        let exact = [
            (
                "organization_slug",
                Some(&self.organization_slug),
                Some(&claims.organization_slug),
            ),
            (
                "pipeline_slug",
                Some(&self.pipeline_slug),
                Some(&claims.pipeline_slug),
            ),
            (
                "organization_id",
                self.organization_id.as_ref(),
                claims.organization_id.as_ref(),
            ),
            ("step_key", self.step_key.as_ref(), claims.step_key.as_ref()),
        ];
        for (name, expected, got) in exact {
            if let Some(expected) = expected
                && got != Some(expected)
            {
                return Err(format!("{name} {got:?} is not {expected:?}"));
            }
        }
        pattern_matches(
            "build_branch",
            self.build_branch.as_deref(),
            claims.build_branch.as_deref(),
        )?;
        pattern_matches(
            "build_tag",
            self.build_tag.as_deref(),
            claims.build_tag.as_deref(),
        )
    }

    fn audit(claims: &BuildkiteClaims) -> Audit {
        let pipeline = format!("{}/{}", claims.organization_slug, claims.pipeline_slug);
        Audit {
            provider: Some(Provider::Buildkite),
            identity: Some(format!("buildkite:{pipeline}")),
            repository: Some(pipeline),
            workflow: claims.step_key.clone(),
            git_ref: claims
                .build_tag
                .clone()
                .or_else(|| claims.build_branch.clone()),
            sha: claims.build_commit.clone(),
            run_id: claims.build_number.clone(),
            subject: claims.sub.clone(),
        }
    }
}
