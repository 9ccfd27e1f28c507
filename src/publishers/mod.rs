//! Trusted publishers: which CI identities may publish which packages of a
//! registry. Each provider has its own module: the claims its tokens carry
//! (typed), the fields its publishers pin, how they match, and what is kept
//! of a token for the audit trail. Adding a provider is a module, its line
//! in [`providers!`] and its variant of [`Provider`].

mod buildkite;
mod circleci;
mod claims;
mod forgejo;
mod generic;
mod github;
mod gitlab;
mod google;
#[cfg(test)]
mod properties;
pub mod scope;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

pub use buildkite::BuildkitePublisher;
pub use circleci::CircleciPublisher;
pub use forgejo::ForgejoPublisher;
pub use generic::GenericPublisher;
pub use github::GithubPublisher;
pub use gitlab::GitlabPublisher;
pub use google::GooglePublisher;

use crate::domain::{IssuerUrl, Provider};
use crate::oidc::VerifiedToken;
use crate::problem::{Error, Result};

/// A field of a publisher that is wrong, and why (for `check-config`).
pub type FieldError = (&'static str, String);

/// What a provider's publishers decide about verified tokens.
pub trait Policy: Sized {
    /// The claims of this provider's tokens that its publishers read. A
    /// required claim the token lacks makes the token invalid.
    type Claims: DeserializeOwned;
    /// Checks the publisher's own fields; the error names the field.
    fn validate(&self) -> std::result::Result<(), FieldError>;
    /// Checks the publisher's fields against its issuer's URL, for providers
    /// whose issuer URL says who the tokens are of; the error names the field.
    fn validate_issuer(&self, _issuer: &IssuerUrl) -> std::result::Result<(), FieldError> {
        Ok(())
    }
    /// Refusals that hold whatever the publisher, e.g. events forks can trigger.
    fn screen(_claims: &Self::Claims) -> Result<()> {
        Ok(())
    }
    /// Whether these claims are this publisher's; the error says which claim
    /// did not match (for the event log, not for the client).
    fn check(&self, claims: &Self::Claims) -> std::result::Result<(), String>;
    /// What is kept of a token with its credential and events.
    fn audit(claims: &Self::Claims) -> Audit;
}

/// What is kept of a verified token with its credential and events, and
/// told to the registry by introspection and forward-auth. The same members
/// for every provider; each only when the provider has it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Audit {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub provider: Option<Provider>,
    /// Who published, as `<provider>:<what the publisher pins>`, e.g.
    /// `gitlab:group/project`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub identity: Option<String>,
    /// The repository or project (GitHub, Forgejo, GitLab), pipeline
    /// (Buildkite) or project id (CircleCI).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub repository: Option<String>,
    /// The workflow, CI configuration file or step that ran.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub workflow: Option<String>,
    #[serde(rename = "ref", skip_serializing_if = "Option::is_none")]
    pub git_ref: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sha: Option<String>,
    /// The run, pipeline or build.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub run_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub subject: Option<String>,
}

impl Audit {
    /// The same audit with `f` applied to each text.
    pub fn map_texts(&self, f: impl Fn(&str) -> String) -> Audit {
        let map = |text: &Option<String>| text.as_deref().map(&f);
        Audit {
            provider: self.provider,
            identity: map(&self.identity),
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

/// Declares the providers: the publisher type of each, tagged by `provider`
/// in the configuration, and the dispatch from a token's provider to it.
macro_rules! providers {
    ($($variant:ident($publisher:ty)),* $(,)?) => {
        /// The provider-specific part of a publisher, tagged by `provider`.
        #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
        #[serde(tag = "provider", rename_all = "lowercase")]
        pub enum Identity {
            $($variant($publisher)),*
        }

        impl Identity {
            pub fn provider(&self) -> Provider {
                match self {
                    $(Identity::$variant(_) => Provider::$variant),*
                }
            }

            /// Checks the provider's own fields, alone and against the
            /// publisher's `issuer`; the error names the field.
            pub fn validate(&self, issuer: &IssuerUrl) -> std::result::Result<(), FieldError> {
                match self {
                    $(Identity::$variant(publisher) => {
                        publisher.validate()?;
                        publisher.validate_issuer(issuer)
                    }),*
                }
            }
        }

        /// The registry's publishers that trust this token's issuer and
        /// match its claims; refused when there is none.
        pub fn matching<'p>(trusted: &'p [Publisher], token: &VerifiedToken) -> Result<Matched<'p>> {
            match token.issuer.provider {
                $(Provider::$variant => matching_with::<$publisher>(trusted, token, |identity| {
                    #[allow(irrefutable_let_patterns)]
                    if let Identity::$variant(publisher) = identity { Some(publisher) } else { None }
                }),)*
            }
        }

        /// What is kept of a verified token that was refused: only its
        /// provider and subject when its claims are not its provider's.
        pub fn audit(token: &VerifiedToken) -> Audit {
            let read = match token.issuer.provider {
                $(Provider::$variant => claims::read::<<$publisher as Policy>::Claims>(token)
                    .map(|claims| <$publisher>::audit(&claims)),)*
            };
            read.unwrap_or_else(|_| Audit {
                provider: Some(token.issuer.provider),
                subject: token.claims.get("sub").and_then(|s| s.as_str()).map(str::to_owned),
                ..Audit::default()
            })
        }
    };
}

providers! {
    Github(GithubPublisher),
    Gitlab(GitlabPublisher),
    Forgejo(ForgejoPublisher),
    Buildkite(BuildkitePublisher),
    Circleci(CircleciPublisher),
    Google(GooglePublisher),
    Generic(GenericPublisher),
}

fn matching_with<'p, P: Policy>(
    trusted: &'p [Publisher],
    token: &VerifiedToken,
    pick: impl Fn(&Identity) -> Option<&P>,
) -> Result<Matched<'p>> {
    let claims = claims::read::<P::Claims>(token)?;
    P::screen(&claims)?;
    let mut mismatches = Vec::new();
    let mut publishers = Vec::new();
    for publisher in trusted.iter().filter(|p| p.issuer == token.issuer.url) {
        let Some(identity) = pick(&publisher.identity) else {
            continue;
        };
        match identity.check(&claims) {
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
        audit: P::audit(&claims),
    })
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
