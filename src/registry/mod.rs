//! A registry (tenant): the aggregate of its values (`crate::domain`), its
//! trusted publishers and its upload gateway.

use serde::{Deserialize, Serialize};

use crate::domain::{
    Audience, Ecosystem, Feature, ForwardAuth, Issuer, RegistryName, SecretDigest, TokenLifetime,
    TokenPrefix, UploadUrl,
};
use crate::limits::Limit;
use crate::publishers::Publisher;

mod gateway;

pub use gateway::{
    CARGO_PUBLISH_PATH, CredentialScheme, Gateway, UpstreamCredential, UpstreamUrl, package_in_path,
};

/// One package registry that trustpub serves.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Registry {
    pub name: RegistryName,
    pub upload_url: UploadUrl,
    /// Required, except for cargo registries, whose audience defaults to
    /// the upload URL without its scheme (what crates-io-auth-action asks
    /// for): see [`Registry::resolve_defaults`].
    #[serde(default = "Audience::unset")]
    pub audience: Audience,
    #[serde(default)]
    pub ecosystem: Ecosystem,
    /// Serve PyPI's implicit paths (`/_/oidc/…` at the host root) for this
    /// registry on its upload URL's host; at most one registry per host.
    #[serde(default)]
    pub pypi_paths: bool,
    #[serde(default)]
    pub token_lifetime: TokenLifetime,
    pub token_prefix: TokenPrefix,
    #[serde(default = "Feature::default_set")]
    pub features: Vec<Feature>,
    #[serde(default = "Feature::default_set")]
    pub default_features: Vec<Feature>,
    #[serde(default)]
    pub issuers: Vec<Issuer>,
    #[serde(default)]
    pub publishers: Vec<Publisher>,
    /// The SHA-256 of the bearer secret that introspection requires; without
    /// it, introspection is off for this registry.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub introspect_secret_sha256: Option<SecretDigest>,
    #[serde(default)]
    pub forward_auth: ForwardAuth,
    /// Forward uploads to the registry itself (`[registries.gateway]`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gateway: Option<Gateway>,
    /// This registry's own rate limits, instead of `[rate_limits]`'s.
    #[serde(default, skip_serializing_if = "RegistryRateLimits::is_empty")]
    pub rate_limits: RegistryRateLimits,
}

/// `[registries.rate_limits]`: the limits per client address that a
/// registry sets for itself; those it leaves out are `[rate_limits]`'s.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RegistryRateLimits {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mints: Option<Limit>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failed_checks: Option<Limit>,
}

impl RegistryRateLimits {
    fn is_empty(&self) -> bool {
        *self == Self::default()
    }

    /// Each limit set is one that lets requests through.
    pub fn validate(&self) -> Result<(), (&'static str, String)> {
        for (field, limit) in [("mints", self.mints), ("failed_checks", self.failed_checks)] {
            if let Some(limit) = limit {
                limit.validate().map_err(|reason| (field, reason))?;
            }
        }
        Ok(())
    }
}

impl Registry {
    /// Fills in what the configuration may leave out: a cargo registry's
    /// audience. An unset audience on any other registry is an error naming
    /// the key.
    pub fn resolve_defaults(&mut self) -> Result<(), (&'static str, String)> {
        if !self.audience.is_unset() {
            return Ok(());
        }
        match self.ecosystem {
            Ecosystem::Cargo => {
                self.audience = Audience::parse(self.upload_url.without_scheme())
                    .map_err(|reason| ("audience", reason))?;
                Ok(())
            }
            _ => Err((
                "audience",
                "missing; only cargo registries have a default audience".to_owned(),
            )),
        }
    }
}
