//! Trusted publishers: which CI identities may publish which packages of a
//! registry. Each provider's claim matching lives in its own module.

mod github;
pub mod scope;

use serde::{Deserialize, Serialize};

pub use github::GithubPublisher;

use crate::domain::{IssuerUrl, Provider};
use crate::oidc::{Claims, VerifiedToken};
use crate::problem::{Error, Result};

/// What a provider's publishers decide about verified claims. A new provider
/// is a new module implementing this, plus its variant in [`Identity`] and
/// [`Provider`].
pub trait Policy {
    /// Refusals that hold whatever the publisher, e.g. events forks can trigger.
    fn screen(claims: &Claims) -> Result<()>;
    /// Whether these claims are this publisher's; the error says which claim
    /// did not match (for the event log, not for the client).
    fn check(&self, claims: &Claims) -> std::result::Result<(), String>;
    /// The claims worth keeping with a credential and its events.
    fn audit(claims: &Claims) -> Audit;
}

/// The claims kept with a credential and its events.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Audit {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub repository: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub workflow: Option<String>,
    #[serde(rename = "ref", skip_serializing_if = "Option::is_none")]
    pub git_ref: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sha: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub run_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub subject: Option<String>,
}

impl Audit {
    /// The same claims with `f` applied to each.
    pub fn map_texts(&self, f: impl Fn(&str) -> String) -> Audit {
        let map = |text: &Option<String>| text.as_deref().map(&f);
        Audit {
            repository: map(&self.repository),
            workflow: map(&self.workflow),
            git_ref: map(&self.git_ref),
            sha: map(&self.sha),
            run_id: map(&self.run_id),
            subject: map(&self.subject),
        }
    }
}

/// The publishers of a registry that a verified token matches.
#[derive(Debug)]
pub struct Matched<'r> {
    pub publishers: Vec<&'r Publisher>,
    pub audit: Audit,
}

impl Provider {
    fn screen(self, claims: &Claims) -> Result<()> {
        match self {
            Provider::Github => GithubPublisher::screen(claims),
        }
    }

    pub fn audit(self, claims: &Claims) -> Audit {
        match self {
            Provider::Github => GithubPublisher::audit(claims),
        }
    }
}

/// The registry's publishers that trust this token's issuer and match its
/// claims; refused when there is none.
pub fn matching<'p>(trusted: &'p [Publisher], token: &VerifiedToken) -> Result<Matched<'p>> {
    let provider = token.issuer.provider;
    provider.screen(&token.claims)?;
    let mut mismatches = Vec::new();
    let mut publishers = Vec::new();
    for publisher in trusted.iter().filter(|p| p.issuer == token.issuer.url) {
        match publisher.identity.check(&token.claims) {
            Ok(()) => publishers.push(publisher),
            Err(mismatch) => mismatches.push(mismatch),
        }
    }
    if publishers.is_empty() {
        let reason = if mismatches.is_empty() {
            "no publisher is configured for this issuer".to_owned()
        } else {
            mismatches.join("; ")
        };
        return Err(Error::InvalidPublisher(reason));
    }
    Ok(Matched {
        publishers,
        audit: provider.audit(&token.claims),
    })
}

/// One trusted publisher of a registry.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Publisher {
    /// The issuer whose tokens this publisher accepts; one of the registry's issuers.
    pub issuer: IssuerUrl,
    /// The packages it may publish: exact names or trailing-`*` patterns.
    pub packages: Vec<PackagePattern>,
    /// What the identity token's claims must say, per provider.
    #[serde(flatten)]
    pub identity: Identity,
}

/// The provider-specific part of a publisher, tagged by `provider`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "provider", rename_all = "lowercase")]
pub enum Identity {
    Github(GithubPublisher),
}

impl Identity {
    pub fn provider(&self) -> Provider {
        match self {
            Identity::Github(_) => Provider::Github,
        }
    }

    /// Checks the provider's own fields; the error names the field.
    pub fn validate(&self) -> std::result::Result<(), (&'static str, String)> {
        match self {
            Identity::Github(github) => github.validate(),
        }
    }

    fn check(&self, claims: &Claims) -> std::result::Result<(), String> {
        match self {
            Identity::Github(github) => github.check(claims),
        }
    }
}

impl Publisher {
    /// A stable key for this publisher: the hex SHA-256 of its canonical JSON.
    /// The store uses it to tell which publishers of the file already exist.
    pub fn key(&self) -> String {
        use sha2::Digest;
        let json = serde_json::to_vec(self).unwrap_or_default();
        hex::encode(sha2::Sha256::digest(json))
    }
}

/// A package name, or a name prefix followed by `*`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct PackagePattern(String);

impl PackagePattern {
    pub fn parse(value: String) -> std::result::Result<Self, String> {
        let name = value.strip_suffix('*').unwrap_or(&value);
        let valid = !name.is_empty()
            && name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'));
        if valid {
            Ok(Self(value))
        } else {
            Err(format!(
                "{value:?} is not a package name or a trailing-* pattern (A-Z, a-z, 0-9, '-', '_', '.')"
            ))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for PackagePattern {
    type Error = String;
    fn try_from(value: String) -> std::result::Result<Self, String> {
        Self::parse(value)
    }
}

impl From<PackagePattern> for String {
    fn from(value: PackagePattern) -> String {
        value.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn package_patterns_allow_only_a_trailing_star() {
        assert!(PackagePattern::parse("widget".into()).is_ok());
        assert!(PackagePattern::parse("widget-*".into()).is_ok());
        assert!(PackagePattern::parse("zope.interface".into()).is_ok());
        for bad in ["", "*", "wid*get", "**", "a b", "widget/x"] {
            assert!(PackagePattern::parse(bad.into()).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn publisher_keys_change_with_any_field() {
        let toml = r#"
            provider = "github"
            issuer = "https://token.actions.githubusercontent.com"
            repository = "octo-org/widget"
            repository_owner_id = "9919"
            workflow = "release.yml"
            packages = ["widget"]
        "#;
        let a: Publisher = toml::from_str(toml).unwrap();
        let b: Publisher = toml::from_str(&toml.replace("9919", "9920")).unwrap();
        assert_eq!(a.key(), a.clone().key());
        assert_ne!(a.key(), b.key());
    }
}
