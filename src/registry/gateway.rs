//! `[registries.gateway]`: where a registry's uploads go when trustpub
//! fronts it, how trustpub authenticates there, and which request paths
//! are uploads. The use case is `crate::gateway`.

use std::path::PathBuf;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde::{Deserialize, Serialize};
use url::Url;

use crate::domain::{Ecosystem, PackagePath, UploadUrl, is_plain_path};
use crate::problem::{Error, Result};

/// cargo's publish endpoint, below the registry's API root.
pub const CARGO_PUBLISH_PATH: &str = "/api/v1/crates/new";

/// `[registries.gateway]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Gateway {
    /// The registry's own upload URL, where uploads are forwarded.
    pub upstream: UpstreamUrl,
    /// How trustpub authenticates to the registry; none: it takes uploads
    /// without credentials (keep it reachable only by trustpub then).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credential: Option<UpstreamCredential>,
    /// The request paths (on trustpub, for this registry's host) that are
    /// uploads; default: the upload URL's path, for cargo the publish
    /// endpoint under it.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub paths: Vec<String>,
    /// Uploads larger than this are refused with 413.
    #[serde(default = "Gateway::default_max_upload_bytes")]
    pub max_upload_bytes: u64,
    /// Refused by [`Gateway::validate`], with the reason: a header is not
    /// what the registry acts on. Kept so that a configuration holding it
    /// gets that reason rather than "unknown key".
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub package_header: Option<String>,
    /// `generic` registries: where the package sits in the upload's path.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub package_path: Option<PackagePath>,
    /// Uploads that present no credential of this registry (by its token
    /// prefix), e.g. a user's own registry token or devpi's own client,
    /// are forwarded to the registry untouched, with their own headers,
    /// for the registry to authenticate. Off: they are refused (401).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub pass_through_foreign_credentials: bool,
    /// Tell the registry who published: `X-Trustpub-Publisher` and
    /// `X-Trustpub-Credential-Id` on each forwarded upload.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub identity_headers: bool,
    /// The registry's own credential for reads, which forward-auth hands to
    /// the proxy (`X-Trustpub-Upstream-Authorization`) for a read with a
    /// live credential, so that no secret lives in the proxy's
    /// configuration.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub read_credential: Option<UpstreamCredential>,
}

impl Gateway {
    fn default_max_upload_bytes() -> u64 {
        100 * 1024 * 1024
    }

    /// The request paths that are uploads, compared as discovery compares
    /// paths (decoded, without trailing slashes). For `generic` registries,
    /// the paths below them are uploads too.
    pub fn upload_paths(&self, ecosystem: Ecosystem, upload_url: &UploadUrl) -> Vec<String> {
        if !self.paths.is_empty() {
            return self
                .paths
                .iter()
                .map(|p| crate::domain::discovery_path(p))
                .collect();
        }
        let base = upload_url.discovery_path();
        match ecosystem {
            Ecosystem::Cargo => vec![format!("{base}{CARGO_PUBLISH_PATH}")],
            Ecosystem::Python | Ecosystem::Generic => vec![base],
        }
    }

    /// Whether a request to `path` is an upload to this gateway.
    pub fn takes(&self, ecosystem: Ecosystem, upload_url: &UploadUrl, path: &str) -> bool {
        let path = crate::domain::discovery_path(path);
        self.upload_paths(ecosystem, upload_url).iter().any(|p| {
            *p == path
                || (ecosystem == Ecosystem::Generic
                    && path
                        .strip_prefix(p.as_str())
                        .is_some_and(|r| r.starts_with('/')))
        })
    }

    /// Where an upload to `path` (the request's raw path) goes: the upstream
    /// URL, with what follows the registry's upload path appended, and the
    /// query. The path must be plain ([`is_plain_path`]): its raw segments
    /// are then its decoded ones, and they are appended as they came,
    /// never decoded, so the registry receives the path that was checked.
    pub fn upstream_url(&self, upload_url: &UploadUrl, path: &str, query: &str) -> Result<Url> {
        let path = plain(path)?;
        let base = upload_url.discovery_path();
        let skip = base.split('/').filter(|s| !s.is_empty()).count();
        let rest: Vec<&str> = path.split('/').skip(1 + skip).collect();
        let mut url = self.upstream.0.clone();
        if !rest.is_empty() {
            let joined = format!("{}/{}", url.path().trim_end_matches('/'), rest.join("/"));
            url.set_path(&joined);
        }
        url.set_query((!query.is_empty()).then_some(query));
        Ok(url)
    }

    /// A generic registry's upload package: what `package_path` reads in
    /// the request's raw `path`.
    pub fn package_in(&self, path: &str) -> Result<String> {
        self.package_path
            .as_ref()
            .map(|template| package_in_path(template, path))
            .transpose()?
            .flatten()
            .ok_or_else(|| {
                Error::InvalidUpload(
                    "this upload's path does not name its package where this registry's \
                     package_path does"
                        .into(),
                )
            })
    }

    /// Rules that need the registry around it; the error names the key
    /// below `gateway`.
    pub fn validate(&self, ecosystem: Ecosystem) -> std::result::Result<(), (String, String)> {
        if self.max_upload_bytes == 0 {
            return Err(("max_upload_bytes".into(), "must be at least 1".into()));
        }
        for path in &self.paths {
            if !path.starts_with('/') {
                return Err(("paths".into(), format!("{path:?} must start with '/'")));
            }
        }
        if self.package_header.is_some() {
            return Err((
                "package_header".into(),
                "is not accepted for the gateway: the registry would learn the package \
                 from the path or the body, which trustpub would not have compared; \
                 use package_path"
                    .into(),
            ));
        }
        match ecosystem {
            Ecosystem::Generic if self.package_path.is_none() => Err((
                "package_path".into(),
                "a generic registry's gateway needs package_path to know which package \
                 is uploaded"
                    .into(),
            )),
            Ecosystem::Python | Ecosystem::Cargo if self.package_path.is_some() => Err((
                "package_path".into(),
                "python and cargo uploads name their package themselves; package_path \
                 is for generic registries"
                    .into(),
            )),
            _ => Ok(()),
        }?;
        for (field, credential) in [
            ("credential", &self.credential),
            ("read_credential", &self.read_credential),
        ] {
            if let Some(credential) = credential {
                credential
                    .validate()
                    .map_err(|(key, reason)| (format!("{field}.{key}"), reason))?;
                // Read now, so that a missing secret stops the start, not uploads.
                credential
                    .authorization()
                    .map_err(|error| (field.to_owned(), error.to_string()))?;
            }
        }
        Ok(())
    }
}

/// `path` (raw) if it is [plain](is_plain_path); otherwise 403
/// `path-not-allowed`.
fn plain(path: &str) -> Result<&str> {
    if is_plain_path(path) {
        Ok(path)
    } else {
        Err(Error::PathNotAllowed(format!(
            "{path:?} is not a plain absolute path: it has an empty, `.` or `..` segment, \
             `;`, `\\`, a control character, or an encoded `/` or `%`, so the registry \
             could read another package in it"
        )))
    }
}

/// The package that `template` reads in the raw `path`, if the path fits;
/// a path that is not plain is refused, since the registry or a proxy could
/// read another package in it.
pub fn package_in_path(template: &PackagePath, path: &str) -> Result<Option<String>> {
    Ok(template.package_in(plain(path)?))
}

/// The registry's upload URL: `http` or `https`, any host.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct UpstreamUrl(Url);

impl UpstreamUrl {
    pub fn parse(value: String) -> std::result::Result<Self, String> {
        let url = Url::parse(&value).map_err(|e| format!("{value:?} is not a valid URL: {e}"))?;
        if !matches!(url.scheme(), "http" | "https") || url.host().is_none() {
            return Err(format!(
                "{value:?} must be an http or https URL with a host"
            ));
        }
        if !url.username().is_empty() || url.password().is_some() {
            return Err(
                "must not hold a user or password: give the registry's credential as \
                 `credential`, whose secret stays out of the configuration"
                    .into(),
            );
        }
        Ok(Self(url))
    }
}

impl TryFrom<String> for UpstreamUrl {
    type Error = String;
    fn try_from(value: String) -> std::result::Result<Self, String> {
        Self::parse(value)
    }
}

impl From<UpstreamUrl> for String {
    fn from(value: UpstreamUrl) -> String {
        value.0.into()
    }
}

/// How trustpub authenticates to the upstream registry. The secret itself is
/// never in the configuration or the store: it is read from an environment
/// variable or a file when an upload is forwarded.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UpstreamCredential {
    pub scheme: CredentialScheme,
    /// Basic only: the user name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
    /// The environment variable holding the password (Basic) or token (Bearer).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret_env: Option<String>,
    /// Or the file holding it (surrounding white space is dropped).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret_file: Option<PathBuf>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CredentialScheme {
    Basic,
    Bearer,
}

impl UpstreamCredential {
    fn validate(&self) -> std::result::Result<(), (&'static str, String)> {
        match (self.scheme, &self.username) {
            (CredentialScheme::Basic, None) => {
                return Err(("username", "Basic needs a username".into()));
            }
            (CredentialScheme::Bearer, Some(_)) => {
                return Err(("username", "Bearer takes no username".into()));
            }
            _ => {}
        }
        if self.secret_env.is_some() == self.secret_file.is_some() {
            return Err((
                "secret_env",
                "give exactly one of secret_env and secret_file".into(),
            ));
        }
        Ok(())
    }

    /// The `Authorization` value to send upstream, reading the secret now.
    pub fn authorization(&self) -> Result<String> {
        let secret = match (&self.secret_env, &self.secret_file) {
            (Some(name), _) => std::env::var(name).map_err(|_| {
                Error::config(
                    "secret_env",
                    format!("the environment variable {name} is not set"),
                )
            })?,
            (None, Some(path)) => std::fs::read_to_string(path)
                .map_err(|e| Error::io(format!("reading {}", path.display()), e))?
                .trim()
                .to_owned(),
            (None, None) => String::new(),
        };
        Ok(match self.scheme {
            CredentialScheme::Basic => format!(
                "Basic {}",
                STANDARD.encode(format!(
                    "{}:{secret}",
                    self.username.as_deref().unwrap_or_default()
                ))
            ),
            CredentialScheme::Bearer => format!("Bearer {secret}"),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn credential(toml: &str) -> UpstreamCredential {
        toml::from_str(toml).unwrap()
    }

    #[test]
    fn upstream_credentials_are_read_when_used() {
        // PATH is set wherever tests run; nothing here sets a variable.
        let path = std::env::var("PATH").unwrap();
        let basic = credential("scheme = \"basic\"\nusername = \"u\"\nsecret_env = \"PATH\"");
        assert!(basic.validate().is_ok());
        assert_eq!(
            basic.authorization().unwrap(),
            format!("Basic {}", STANDARD.encode(format!("u:{path}")))
        );
        let missing =
            credential("scheme = \"bearer\"\nsecret_env = \"TRUSTPUB_TEST_SURELY_UNSET_VARIABLE\"");
        assert!(matches!(missing.authorization(), Err(Error::Config { .. })));
        for bad in [
            "scheme = \"basic\"\nsecret_env = \"X\"",
            "scheme = \"bearer\"\nusername = \"u\"\nsecret_env = \"X\"",
            "scheme = \"bearer\"",
            "scheme = \"bearer\"\nsecret_env = \"X\"\nsecret_file = \"/x\"",
        ] {
            assert!(credential(bad).validate().is_err(), "{bad}");
        }
    }

    #[test]
    fn upload_paths_and_upstream_urls() {
        let gateway: Gateway =
            toml::from_str("upstream = \"http://registry.internal:3141/api/\"").unwrap();
        let upload = UploadUrl::parse("https://pypi.acme.test/legacy/".into()).unwrap();
        assert_eq!(
            gateway.upload_paths(Ecosystem::Python, &upload),
            vec!["/legacy"]
        );
        assert_eq!(
            gateway.upload_paths(Ecosystem::Cargo, &upload),
            vec!["/legacy/api/v1/crates/new"]
        );
        let upstream = |path: &str, query: &str| {
            gateway
                .upstream_url(&upload, path, query)
                .map(|url| url.to_string())
        };
        assert_eq!(
            upstream("/legacy/", "").unwrap(),
            "http://registry.internal:3141/api/"
        );
        assert_eq!(
            upstream("/legacy/api/v1/crates/new", "a=1").unwrap(),
            "http://registry.internal:3141/api/api/v1/crates/new?a=1"
        );
        // Appended as it came, never decoded a second time.
        assert_eq!(
            upstream("/legacy/files/wid%67et/1.0/", "").unwrap(),
            "http://registry.internal:3141/api/files/wid%67et/1.0/"
        );
        for tricky in [
            "/legacy/files/widget/%252e%252e/gadget/1.0/x",
            "/legacy/files/widget/%2e%2e/gadget/1.0/x",
            "/legacy/files/widget%2f..%2fgadget/1.0/x",
            "/legacy//files/gadget/",
        ] {
            assert!(
                matches!(upstream(tricky, ""), Err(Error::PathNotAllowed(_))),
                "{tricky}"
            );
        }
        assert!(gateway.validate(Ecosystem::Python).is_ok());
        assert!(gateway.validate(Ecosystem::Generic).is_err());
        assert!(UpstreamUrl::parse("ftp://x/".into()).is_err());
        assert!(UpstreamUrl::parse("http://user:pass@x/".into()).is_err());
    }
}
