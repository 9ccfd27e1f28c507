//! GitLab CI/CD publishers: gitlab.com or a self-managed instance, whose
//! issuer is the instance's URL. A job asks for its token with `id_tokens:`
//! and the registry's audience.
//!
//! The CI configuration that ran is read from `ci_config_ref_uri`
//! (`HOST/group/project//path/to/.gitlab-ci.yml@refs/heads/main`), which
//! names the pipeline's top-level configuration file; files that file pulls
//! in with `include:` do not change it. A claim naming a file of another
//! project (before its `//`) is trusted only when the publisher names that
//! project (`ci_config_project`).

use serde::{Deserialize, Serialize};

use super::claims::{self, id, literal, not_empty, numeric, path, pattern_matches, same_name};
use super::{Audit, FieldError, Policy};
use crate::domain::Provider;

/// A GitLab CI/CD publisher.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GitlabPublisher {
    /// `namespace/project` (namespaces may nest), compared case-insensitively.
    pub project_path: String,
    /// The numeric id of the namespace that holds the project (its group or
    /// subgroup, or a user), as GitLab sends it in `namespace_id`; compared
    /// exactly: a namespace deleted and re-created under the same path has
    /// another id.
    pub namespace_id: String,
    /// The CI configuration file within its project, e.g. `.gitlab-ci.yml`.
    pub ci_config_path: String,
    /// The project holding the CI configuration when it is not
    /// `project_path` (`namespace/project`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ci_config_project: Option<String>,
    /// The deployment environment, when one is required (case-insensitive).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub environment: Option<String>,
    /// A pattern `ref_path` must match, e.g. `refs/tags/v*`.
    #[serde(rename = "ref", default, skip_serializing_if = "Option::is_none")]
    pub git_ref: Option<String>,
    /// When true, only jobs on protected branches and tags.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub ref_protected: bool,
}

/// The claims of a GitLab CI/CD identity token that publishers read.
#[derive(Debug, Deserialize)]
pub struct GitlabClaims {
    iss: String,
    project_path: String,
    #[serde(deserialize_with = "id")]
    namespace_id: String,
    ci_config_ref_uri: String,
    #[serde(default)]
    ref_path: Option<String>,
    /// `"true"` or `"false"`.
    #[serde(default)]
    ref_protected: Option<String>,
    #[serde(default)]
    environment: Option<String>,
    #[serde(default)]
    sha: Option<String>,
    #[serde(default, deserialize_with = "claims::optional_id")]
    pipeline_id: Option<String>,
    #[serde(default)]
    sub: Option<String>,
}

/// `HOST/group/project//path/file.yml@ref` as (`group/project`,
/// `path/file.yml`). `HOST` must be the issuing instance: `issuer` without
/// its scheme (which keeps a relative URL root, e.g. `host/gitlab`).
fn config_location<'u>(uri: &'u str, issuer: &str) -> Option<(&'u str, &'u str)> {
    let (location, _ref) = uri.rsplit_once('@')?;
    let (instance_and_project, file) = location.split_once("//")?;
    let instance = issuer.split_once("://").map_or(issuer, |(_, rest)| rest);
    let project = instance_and_project
        .strip_prefix(instance.trim_end_matches('/'))?
        .strip_prefix('/')?;
    Some((project, file))
}

impl Policy for GitlabPublisher {
    type Claims = GitlabClaims;

    fn validate(&self) -> std::result::Result<(), FieldError> {
        path("project_path", &self.project_path, 2, "namespace/project")?;
        numeric(
            "namespace_id",
            &self.namespace_id,
            "the id of the group, subgroup or user holding the project, shown on its page or at /api/v4/namespaces/<path>",
        )?;
        literal("ci_config_path", &self.ci_config_path)?;
        if self.ci_config_path.starts_with('/') || self.ci_config_path.contains("//") {
            return Err((
                "ci_config_path",
                format!(
                    "{:?} is a path within the project, e.g. .gitlab-ci.yml",
                    self.ci_config_path
                ),
            ));
        }
        if let Some(project) = &self.ci_config_project {
            path("ci_config_project", project, 2, "namespace/project")?;
        }
        not_empty("environment", self.environment.as_deref())?;
        not_empty("ref", self.git_ref.as_deref())
    }

    fn check(&self, claims: &GitlabClaims) -> std::result::Result<(), String> {
        same_name(
            "project_path",
            Some(&self.project_path),
            Some(&claims.project_path),
        )?;
        if claims.namespace_id != self.namespace_id {
            return Err(format!(
                "namespace_id {:?} is not {:?}",
                claims.namespace_id, self.namespace_id
            ));
        }
        let config_project = self
            .ci_config_project
            .as_deref()
            .unwrap_or(&self.project_path);
        let config_ok = config_location(&claims.ci_config_ref_uri, &claims.iss).is_some_and(
            |(project, file)| {
                project.eq_ignore_ascii_case(config_project) && file == self.ci_config_path
            },
        );
        if !config_ok {
            return Err(format!(
                "ci_config_ref_uri {:?} is not {config_project}'s {}",
                claims.ci_config_ref_uri, self.ci_config_path
            ));
        }
        same_name(
            "environment",
            self.environment.as_deref(),
            claims.environment.as_deref(),
        )?;
        pattern_matches(
            "ref_path",
            self.git_ref.as_deref(),
            claims.ref_path.as_deref(),
        )?;
        if self.ref_protected && claims.ref_protected.as_deref() != Some("true") {
            return Err(format!(
                "ref_protected is {:?}, and the publisher requires a protected ref",
                claims.ref_protected
            ));
        }
        Ok(())
    }

    fn audit(claims: &GitlabClaims) -> Audit {
        Audit {
            provider: Some(Provider::Gitlab),
            identity: Some(format!("gitlab:{}", claims.project_path)),
            repository: Some(claims.project_path.clone()),
            workflow: Some(claims.ci_config_ref_uri.clone()),
            git_ref: claims.ref_path.clone(),
            sha: claims.sha.clone(),
            run_id: claims.pipeline_id.clone(),
            subject: claims.sub.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::config_location;

    #[test]
    fn the_config_location_is_read_from_its_uri() {
        let at = |uri| config_location(uri, "https://gitlab.example.com");
        assert_eq!(
            at("gitlab.example.com/group/sub/project//ci/release.yml@refs/heads/main"),
            Some(("group/sub/project", "ci/release.yml"))
        );
        // A custom configuration path naming another project's file keeps
        // the job's own project before `//` and the setting after it.
        assert_eq!(
            at("gitlab.example.com/g/p//.gitlab-ci.yml@g/shared@refs/heads/main"),
            Some(("g/p", ".gitlab-ci.yml@g/shared"))
        );
        // Another instance's project is not this one's.
        assert_eq!(at("gitlab.com/g/p//.gitlab-ci.yml@refs/tags/v1"), None);
        assert_eq!(at("gitlab.example.com.evil/g/p//.gitlab-ci.yml@x"), None);
        assert_eq!(at("gitlab.example.com/g/p/.gitlab-ci.yml@x"), None);
        assert_eq!(at("gitlab.example.com/g/p//.gitlab-ci.yml"), None);
        // An instance under a relative URL root.
        let rooted = |uri| config_location(uri, "https://example.com/gitlab/");
        assert_eq!(
            rooted("example.com/gitlab/g/p//.gitlab-ci.yml@x"),
            Some(("g/p", ".gitlab-ci.yml"))
        );
    }
}
