//! Trusted publishers: which CI identities may publish which packages of a
//! registry. Each provider's claim matching lives in its own module.

mod github;

use serde::{Deserialize, Serialize};

pub use github::GithubPublisher;

use crate::registry::{IssuerUrl, Provider};

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
    pub fn validate(&self) -> Result<(), (&'static str, String)> {
        match self {
            Identity::Github(github) => github.validate(),
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
    pub fn parse(value: String) -> Result<Self, String> {
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
    fn try_from(value: String) -> Result<Self, String> {
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
