//! The kit's identity: its test OIDC issuer (trustpub's `TestIssuer`,
//! publishing one RS256 and one ES256 key), the claims its tokens carry, the
//! package names it uses, and what a server must be told to trust them.

use std::net::TcpListener;

use serde::Serialize;
use serde_json::{Map, Value};
use trustpub::testing::{TestClaims, TestIssuer, TestKey};
use url::Url;

/// The keys the kit's issuer publishes: `rsa-1` (RS256) and `ec-1` (ES256).
/// Both are fixed test keys, so every run of the kit publishes the same JWKS.
pub const KIT_KEYS: [TestKey; 2] = [TestKey::Rsa1, TestKey::Ec1];

/// Where the issuer listens unless told otherwise.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:9807";

/// The package the kit narrows a credential to (trustpub's `packages`).
pub const DEFAULT_PACKAGE: &str = "widget";

/// A package the trusted publisher must not be allowed.
pub const DEFAULT_FORBIDDEN_PACKAGE: &str = "conformance-forbidden";

/// The audience the trustpub snippet configures (any audience works: the
/// kit asks the server's audience endpoint).
pub const SNIPPET_AUDIENCE: &str = "trustpub-conformance";

/// Starts the kit's issuer on `listener`, as `url`.
pub fn start(listener: TcpListener, url: &str) -> TestIssuer {
    TestIssuer::start_on(listener, url.to_owned(), &KIT_KEYS)
}

/// Checks an issuer URL and writes it the way tokens carry it: http or https,
/// no query or fragment, no trailing slash.
pub fn issuer_url(text: &str) -> Result<String, String> {
    let url = Url::parse(text).map_err(|e| format!("issuer URL {text:?}: {e}"))?;
    if !matches!(url.scheme(), "http" | "https") || url.host().is_none() {
        return Err(format!(
            "issuer URL {text:?}: must be http:// or https:// with a host"
        ));
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err(format!(
            "issuer URL {text:?}: must have no query or fragment"
        ));
    }
    Ok(url.as_str().trim_end_matches('/').to_owned())
}

/// Who the kit's tokens say they are, and the packages it asks for.
#[derive(Debug, Clone)]
pub struct Identity {
    /// `iss` of every token.
    pub issuer: String,
    /// Claims set over (or, when null, removed from) the GitHub Actions
    /// defaults.
    pub overrides: Map<String, Value>,
    pub package: String,
    pub forbidden_package: String,
}

impl Identity {
    pub fn new(issuer: String) -> Self {
        Identity {
            issuer,
            overrides: Map::new(),
            package: DEFAULT_PACKAGE.to_owned(),
            forbidden_package: DEFAULT_FORBIDDEN_PACKAGE.to_owned(),
        }
    }

    /// The claims of a valid token for `audience` issued at `now`, with a
    /// fresh `jti`.
    pub fn claims(&self, audience: &str, now: i64) -> TestClaims {
        self.overrides.iter().fold(
            TestClaims::github(&self.issuer, audience, now),
            |claims, (name, value)| claims.set(name, value.clone()),
        )
    }

    fn claim(&self, name: &str) -> String {
        match self.claims("", 0).build().get(name) {
            Some(Value::String(s)) => s.clone(),
            Some(other) => other.to_string(),
            None => String::new(),
        }
    }

    /// The workflow file named by `job_workflow_ref`
    /// (`owner/repo/.github/workflows/<file>@<ref>`).
    fn workflow_file(&self) -> String {
        let reference = self.claim("job_workflow_ref");
        let path = reference.split('@').next().unwrap_or_default();
        path.rsplit('/').next().unwrap_or_default().to_owned()
    }

    /// A `[[registries]]` table for trustpub that trusts the kit's issuer and
    /// its publisher, for `upload_url`.
    pub fn trustpub_toml(&self, upload_url: &str) -> String {
        let environment = Some(self.claim("environment")).filter(|e| !e.is_empty());
        let file = SnippetFile {
            registries: [SnippetRegistry {
                name: "conformance",
                upload_url,
                audience: SNIPPET_AUDIENCE,
                token_lifetime: 900,
                token_prefix: "conformance_",
                features: ["multi-use-token", "single-use-token"],
                default_features: ["multi-use-token"],
                issuers: [SnippetIssuer {
                    url: &self.issuer,
                    provider: "github",
                }],
                publishers: [SnippetPublisher {
                    provider: "github",
                    issuer: &self.issuer,
                    repository: self.claim("repository"),
                    repository_owner_id: self.claim("repository_owner_id"),
                    workflow: self.workflow_file(),
                    environment,
                    packages: [&self.package],
                }],
            }],
        };
        toml::to_string(&file).expect("the snippet serialises")
    }

    /// What the server under test must be configured with, for people.
    pub fn describe(&self, upload_url: &str) -> String {
        let mut sample = self
            .claims("<the audience your audience endpoint answers>", 0)
            .build();
        for name in ["jti", "iat", "nbf", "exp"] {
            if let Some(value) = sample.get_mut(name) {
                *value = Value::String(format!("<fresh for every token: {name}>"));
            }
        }
        let sample = serde_json::to_string_pretty(&sample).expect("claims serialise");
        let issuer = &self.issuer;
        let environment = self.claim("environment");
        format!(
            "\
What the server under test must be configured with
===================================================

1. Trust this OIDC issuer (compare it exactly; no trailing slash):

     {issuer}

   It serves {issuer}/.well-known/openid-configuration and the JWKS at
   {issuer}/jwks, with two keys: kid rsa-1 (RS256) and kid ec-1 (ES256).
   The keys are public test keys: trust this issuer on test deployments only.

2. Trust a GitHub Actions publisher matching these claims:

     repository           {repository}
     repository_owner_id  {owner_id}
     workflow file        {workflow}   (from job_workflow_ref)
     environment          {environment}

   Every valid token the kit presents carries these claims (aud is the
   answer of your audience endpoint; jti, iat, nbf and exp are fresh for
   every token):

{sample}
3. Package names: allow the publisher {package:?}; do not allow it
   {forbidden:?}. (Only trustpub's optional `packages` extension check uses
   them.)

4. The upload URL the kit is given: {upload_url}
   Discovery for it must lead to the audience and mint endpoints.

For trustpub, append this to trustpub.toml (or print it alone with --toml):

{toml}",
            repository = self.claim("repository"),
            owner_id = self.claim("repository_owner_id"),
            workflow = self.workflow_file(),
            sample = indent(&sample, "     "),
            package = self.package,
            forbidden = self.forbidden_package,
            toml = self.trustpub_toml(upload_url),
        )
    }
}

fn indent(text: &str, prefix: &str) -> String {
    text.lines()
        .map(|line| format!("{prefix}{line}\n"))
        .collect()
}

#[derive(Serialize)]
struct SnippetFile<'a> {
    registries: [SnippetRegistry<'a>; 1],
}

#[derive(Serialize)]
struct SnippetRegistry<'a> {
    name: &'a str,
    upload_url: &'a str,
    audience: &'a str,
    token_lifetime: u32,
    token_prefix: &'a str,
    features: [&'a str; 2],
    default_features: [&'a str; 1],
    issuers: [SnippetIssuer<'a>; 1],
    publishers: [SnippetPublisher<'a>; 1],
}

#[derive(Serialize)]
struct SnippetIssuer<'a> {
    url: &'a str,
    provider: &'a str,
}

#[derive(Serialize)]
struct SnippetPublisher<'a> {
    provider: &'a str,
    issuer: &'a str,
    repository: String,
    repository_owner_id: String,
    workflow: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    environment: Option<String>,
    packages: [&'a str; 1],
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn issuer_urls_lose_their_trailing_slash_and_must_be_http() {
        assert_eq!(
            issuer_url("http://127.0.0.1:9807/").unwrap(),
            "http://127.0.0.1:9807"
        );
        assert_eq!(
            issuer_url("https://kit.test/oidc/").unwrap(),
            "https://kit.test/oidc"
        );
        for bad in [
            "ftp://x.test",
            "not a url",
            "https://x.test/?q=1",
            "https://x.test/#f",
        ] {
            assert!(issuer_url(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn overrides_change_the_claims_and_the_snippet() {
        let mut identity = Identity::new("http://127.0.0.1:1".into());
        identity
            .overrides
            .insert("repository".into(), "acme/tool".into());
        identity.overrides.insert("environment".into(), Value::Null);
        identity.overrides.insert(
            "job_workflow_ref".into(),
            "acme/tool/.github/workflows/ship.yaml@refs/tags/v1".into(),
        );
        let claims = identity.claims("aud", 100).build();
        assert_eq!(claims["repository"], "acme/tool");
        assert!(claims.get("environment").is_none());
        assert_eq!(claims["aud"], "aud");
        let snippet: toml::Value =
            toml::from_str(&identity.trustpub_toml("http://x.test/up/")).unwrap();
        let publisher = &snippet["registries"][0]["publishers"][0];
        assert_eq!(publisher["repository"].as_str(), Some("acme/tool"));
        assert_eq!(publisher["workflow"].as_str(), Some("ship.yaml"));
        assert!(publisher.get("environment").is_none());
        assert_eq!(publisher["packages"][0].as_str(), Some("widget"));
    }

    #[test]
    fn every_token_has_its_own_jti() {
        let identity = Identity::new("http://127.0.0.1:1".into());
        let a = identity.claims("aud", 1).build();
        let b = identity.claims("aud", 1).build();
        assert_ne!(a["jti"], b["jti"]);
    }
}
