//! The value types that describe a registry and what it serves: names,
//! URLs, audiences, ecosystems, features, issuers and path templates. Each
//! checks itself when parsed, so a value that exists is valid. This is the
//! bottom layer: it depends on no other module of trustpub.

use serde::{Deserialize, Serialize};
use url::Url;

/// The hex SHA-256 of a secret, so that the configuration holds no secret.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct SecretDigest([u8; 32]);

impl SecretDigest {
    pub fn parse(value: String) -> Result<Self, String> {
        hex::decode(value.trim())
            .ok()
            .and_then(|bytes| <[u8; 32]>::try_from(bytes).ok())
            .map(Self)
            .ok_or_else(|| {
                "must be the SHA-256 of the secret as 64 hex digits \
                 (e.g. `printf %s \"$SECRET\" | sha256sum`)"
                    .to_owned()
            })
    }

    /// Whether `secret` hashes to this digest, compared in constant time.
    pub fn matches(&self, secret: &str) -> bool {
        use sha2::Digest;
        use subtle::ConstantTimeEq;
        let digest = sha2::Sha256::digest(secret.as_bytes());
        bool::from(digest.as_slice().ct_eq(&self.0))
    }
}

impl From<SecretDigest> for String {
    fn from(value: SecretDigest) -> String {
        hex::encode(value.0)
    }
}

/// How forward-auth reads a request to this registry (`[registries.forward_auth]`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ForwardAuth {
    /// Where the package name sits in an upload's path, e.g.
    /// `/packages/{package}/`; used when the proxy sends no package header.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub package_path: Option<PackagePath>,
}

/// A path template with one `{package}` segment. It matches a path that
/// starts with it; the segment in its place is the package.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct PackagePath {
    before: String,
    after: String,
}

impl PackagePath {
    const PLACEHOLDER: &str = "{package}";

    pub fn parse(value: String) -> Result<Self, String> {
        let fail = || {
            format!(
                "{value:?} must be a path starting with '/' holding {{package}} once, \
                 as a whole segment (e.g. \"/packages/{{package}}/\")"
            )
        };
        let (before, after) = value.split_once(Self::PLACEHOLDER).ok_or_else(fail)?;
        if !before.starts_with('/')
            || !before.ends_with('/')
            || after.contains(Self::PLACEHOLDER)
            || !(after.is_empty() || after.starts_with('/'))
        {
            return Err(fail());
        }
        // A template only a path that is not plain could fit (a query, `..`,
        // `//`, …) would refuse every upload: forward-auth reads packages in
        // plain paths alone, without their query.
        if value.contains(['?', '#']) || !is_plain_path(&format!("{before}p{after}")) {
            return Err(format!(
                "{value:?} must be a plain path: no query or fragment, no empty, '.' or '..' \
                 segment, no ';', '\\' or control character, none of them percent-encoded"
            ));
        }
        Ok(Self {
            before: before.to_owned(),
            after: after.to_owned(),
        })
    }

    /// The package named by `path` (percent-decoded), when the path fits.
    /// A path that is not [`is_plain_path`] names none: refuse it first.
    pub fn package_in(&self, path: &str) -> Option<String> {
        let rest = path.strip_prefix(&self.before)?;
        let (segment, tail) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
        let fits = !segment.is_empty()
            && (tail.starts_with(&self.after) || (self.after == "/" && tail.is_empty()));
        fits.then(|| {
            percent_encoding::percent_decode_str(segment)
                .decode_utf8_lossy()
                .into_owned()
        })
    }
}

/// Whether a request path means what it says to every server on the way,
/// read from its raw bytes: it starts with `/` (no absolute-form URI); no
/// empty segment (proxies merge `//`); no `.` or `..` segment, `;`
/// parameters, backslash or control character, also percent-encoded; no
/// encoded `/` or `%` (a second decoding would read another path). A
/// registry resolving `/packages/widget/../evil/` uploads `evil`, whatever
/// a template read in it.
pub fn is_plain_path(path: &str) -> bool {
    let decoded = percent_encoding::percent_decode_str(path).collect::<Vec<u8>>();
    path.starts_with('/')
        && !path.contains("//")
        && !decoded
            .iter()
            .any(|b| b"%;\\".contains(b) || b.is_ascii_control())
        && !path.to_ascii_lowercase().contains("%2f")
        && !decoded
            .split(|b| *b == b'/')
            .any(|segment| segment == b"." || segment == b"..")
}

impl From<PackagePath> for String {
    fn from(value: PackagePath) -> String {
        format!(
            "{}{}{}",
            value.before,
            PackagePath::PLACEHOLDER,
            value.after
        )
    }
}

/// A registry's name: a slug used in paths (`/_/trustpub/{name}/…`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct RegistryName(String);

impl RegistryName {
    pub fn parse(value: String) -> Result<Self, String> {
        let valid = !value.is_empty()
            && value.len() <= 64
            && value
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_')
            && value.as_bytes()[0].is_ascii_alphanumeric();
        if valid {
            Ok(Self(value))
        } else {
            Err(format!(
                "{value:?} is not a slug: use 1 to 64 of a-z, 0-9, '-' and '_', starting with a letter or digit"
            ))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// The URL upload clients are given. Its host and path select the registry
/// in discovery; its scheme and authority build the discovery document's URLs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct UploadUrl(Url);

impl UploadUrl {
    pub fn parse(value: String) -> Result<Self, String> {
        let url = parse_trustworthy_url(&value)?;
        if url.query().is_some() || url.fragment().is_some() {
            return Err(format!("{value:?} must not have a query or a fragment"));
        }
        Ok(Self(url))
    }

    /// `scheme://host[:port]`, without a trailing slash.
    pub fn origin(&self) -> String {
        self.0.origin().ascii_serialization()
    }

    /// The host and port that requests for this registry arrive at.
    pub fn authority(&self) -> String {
        match (self.0.host_str(), self.0.port()) {
            (Some(host), Some(port)) => format!("{host}:{port}"),
            (Some(host), None) => host.to_owned(),
            _ => String::new(),
        }
    }

    pub fn host(&self) -> &str {
        self.0.host_str().unwrap_or_default()
    }

    /// The URL without its scheme and without a trailing slash, as
    /// crates-io-auth-action turns a registry URL into an audience:
    /// `https://crates.acme.test/` gives `crates.acme.test`.
    pub fn without_scheme(&self) -> String {
        let url = self.0.as_str();
        url.split_once("://")
            .map_or(url, |(_, rest)| rest)
            .trim_end_matches('/')
            .to_owned()
    }

    /// The path as a discovery key is compared: see [`discovery_path`].
    pub fn discovery_path(&self) -> String {
        discovery_path(self.0.path())
    }

    pub fn as_str(&self) -> &str {
        self.0.as_str()
    }
}

/// Upload paths are compared decoded and without trailing slashes, so that `/legacy`,
/// `/legacy/` and `/legacy//` select the same registry, and an empty path is
/// the same as `/`: for `http` and `https` an empty path is equivalent to
/// `/` (RFC 3986, section 6.2.3), so the empty discovery key that PEP 807
/// gives an upload URL without a path finds a registry at the root of its
/// host, whether its `upload_url` is written with the `/` or without.
/// Percent-escapes are decoded first, so that a client that encodes the
/// upload URL's already-encoded path (`%2520`) and one that sends the path as
/// typed (`+`, a space) both match.
pub fn discovery_path(path: &str) -> String {
    percent_encoding::percent_decode_str(path)
        .decode_utf8_lossy()
        .trim_end_matches('/')
        .to_owned()
}

/// The host of a `host[:port]`: proxies forward the port they listen on,
/// which need not be the upload URL's.
pub fn without_port(authority: &str) -> &str {
    if authority.starts_with('[') {
        return authority.split_inclusive(']').next().unwrap_or(authority);
    }
    match authority.rsplit_once(':') {
        Some((host, port)) if port.bytes().all(|b| b.is_ascii_digit()) => host,
        _ => authority,
    }
}

/// The `aud` claim that identity tokens for a registry must carry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Audience(String);

impl Audience {
    /// An audience not given in the configuration, until
    /// [`Registry::resolve_defaults`] fills it in. Never stored.
    pub fn unset() -> Self {
        Self(String::new())
    }

    pub fn is_unset(&self) -> bool {
        self.0.is_empty()
    }

    pub fn parse(value: String) -> Result<Self, String> {
        if value.trim().is_empty() || value.trim() != value {
            Err(format!(
                "{value:?} must be non-empty and have no surrounding spaces"
            ))
        } else {
            Ok(Self(value))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// How a registry's package names are normalised before they are compared.
/// Its name is the same for serde (the configuration) and strum (the store).
#[derive(
    Debug,
    Clone,
    Copy,
    Default,
    PartialEq,
    Eq,
    Serialize,
    Deserialize,
    strum::IntoStaticStr,
    strum::EnumString,
    strum::EnumIter,
)]
#[serde(rename_all = "lowercase")]
#[strum(serialize_all = "lowercase")]
pub enum Ecosystem {
    #[default]
    Python,
    Cargo,
    Generic,
}

impl Ecosystem {
    pub fn as_str(self) -> &'static str {
        self.into()
    }

    /// A package name as the ecosystem compares it: PEP 503 for Python
    /// (runs of `-`, `_` and `.` are one `-`, lower case), lower case with
    /// `_` as `-` for cargo, unchanged for generic registries.
    pub fn normalize(self, name: &str) -> String {
        match self {
            Ecosystem::Python => {
                let mut out = String::with_capacity(name.len());
                let mut in_separator = false;
                for c in name.chars() {
                    if matches!(c, '-' | '_' | '.') {
                        if !in_separator {
                            out.push('-');
                        }
                        in_separator = true;
                    } else {
                        out.push(c.to_ascii_lowercase());
                        in_separator = false;
                    }
                }
                out
            }
            Ecosystem::Cargo => name.to_ascii_lowercase().replace('_', "-"),
            Ecosystem::Generic => name.to_owned(),
        }
    }

    pub fn parse(value: &str) -> Result<Self, String> {
        value
            .parse()
            .map_err(|_| format!("unknown ecosystem {value:?}; expected python, cargo or generic"))
    }
}

/// Lifetime of minted upload credentials, in seconds: PEP 807 allows
/// 900 (15 minutes) to 21 600 (6 hours).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "i64", into = "i64")]
pub struct TokenLifetime(u32);

impl TokenLifetime {
    pub const MIN: i64 = 900;
    pub const MAX: i64 = 21_600;

    pub fn parse(seconds: i64) -> Result<Self, String> {
        if (Self::MIN..=Self::MAX).contains(&seconds) {
            Ok(Self(seconds as u32))
        } else {
            Err(format!(
                "{seconds} s is outside {}..={} s (PEP 807: 15 minutes to 6 hours)",
                Self::MIN,
                Self::MAX
            ))
        }
    }

    pub fn seconds(self) -> u32 {
        self.0
    }
}

impl Default for TokenLifetime {
    fn default() -> Self {
        Self(Self::MIN as u32)
    }
}

/// The fixed start of every credential a registry mints, so that secret
/// scanners can recognise them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct TokenPrefix(String);

impl TokenPrefix {
    pub fn parse(value: String) -> Result<Self, String> {
        let valid = (2..=32).contains(&value.len())
            && value
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
        if valid {
            Ok(Self(value))
        } else {
            Err(format!(
                "{value:?} must be 2 to 32 characters of A-Z, a-z, 0-9, '_' and '-'"
            ))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// The PEP 807 features of an upload credential, named as PEP 807 names
/// them, the same for serde and strum.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Hash,
    Serialize,
    Deserialize,
    strum::IntoStaticStr,
    strum::EnumString,
    strum::EnumIter,
)]
#[serde(rename_all = "kebab-case")]
#[strum(serialize_all = "kebab-case")]
pub enum Feature {
    MultiUseToken,
    SingleUseToken,
}

impl Feature {
    /// What PEP 807 clients assume when a server says nothing.
    pub fn default_set() -> Vec<Feature> {
        vec![Feature::MultiUseToken]
    }

    /// The name PEP 807 gives it.
    pub fn as_str(self) -> &'static str {
        self.into()
    }

    /// The feature PEP 807 calls `name`, if any.
    pub fn parse(name: &str) -> Option<Self> {
        name.parse().ok()
    }
}

/// An OIDC identity provider a registry trusts.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Issuer {
    pub url: IssuerUrl,
    pub provider: Provider,
    /// The longest lifetime (`exp` − `iat`, seconds) of a token accepted
    /// from this issuer: CI providers issue tokens of minutes, and a used
    /// `jti` is kept until its token expires.
    #[serde(default = "Issuer::default_max_token_lifetime")]
    pub max_token_lifetime: u32,
}

impl Issuer {
    /// An hour: Google's identity tokens live that long, CI providers'
    /// less.
    pub const DEFAULT_MAX_TOKEN_LIFETIME: u32 = 3600;
    /// A day: the most `max_token_lifetime` may be.
    pub const LONGEST_MAX_TOKEN_LIFETIME: u32 = 86_400;

    fn default_max_token_lifetime() -> u32 {
        Self::DEFAULT_MAX_TOKEN_LIFETIME
    }
}

/// The kinds of CI identity trustpub understands; each has its module in
/// `publishers`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Provider {
    /// GitHub Actions: github.com, GHE.com and GitHub Enterprise Server.
    Github,
    /// GitLab CI/CD: gitlab.com and self-managed instances.
    Gitlab,
    /// Forgejo and Gitea Actions.
    Forgejo,
    Buildkite,
    Circleci,
    /// Google Cloud service accounts.
    Google,
    /// Any issuer, matched by claim rules.
    Generic,
}

impl Provider {
    pub const ALL: [Provider; 7] = [
        Provider::Github,
        Provider::Gitlab,
        Provider::Forgejo,
        Provider::Buildkite,
        Provider::Circleci,
        Provider::Google,
        Provider::Generic,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Provider::Github => "github",
            Provider::Gitlab => "gitlab",
            Provider::Forgejo => "forgejo",
            Provider::Buildkite => "buildkite",
            Provider::Circleci => "circleci",
            Provider::Google => "google",
            Provider::Generic => "generic",
        }
    }

    /// Whether every token of this provider has a `jti` (so one without is
    /// refused). Tokens of the others are accepted once by their payload.
    pub fn always_sends_jti(self) -> bool {
        matches!(self, Provider::Github | Provider::Gitlab)
    }

    pub fn parse(value: &str) -> Result<Self, String> {
        Self::ALL
            .into_iter()
            .find(|provider| provider.as_str() == value)
            .ok_or_else(|| {
                let known: Vec<&str> = Self::ALL.iter().map(|p| p.as_str()).collect();
                format!(
                    "unknown provider {value:?}; expected one of {}",
                    known.join(", ")
                )
            })
    }
}

/// An issuer URL, kept exactly as configured: issuers are compared as strings,
/// so `https://a.test` and `https://a.test/` are different issuers.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct IssuerUrl(String);

impl IssuerUrl {
    pub fn parse(value: String) -> Result<Self, String> {
        let url = parse_trustworthy_url(&value)?;
        if url.query().is_some() || url.fragment().is_some() {
            return Err(format!("{value:?} must not have a query or a fragment"));
        }
        Ok(Self(value))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Parses an absolute URL that PEP 807 calls potentially trustworthy: https,
/// or http to a loopback host.
fn parse_trustworthy_url(value: &str) -> Result<Url, String> {
    let url = Url::parse(value).map_err(|e| format!("{value:?} is not a valid URL: {e}"))?;
    let host = url.host().ok_or_else(|| format!("{value:?} has no host"))?;
    match url.scheme() {
        "https" => Ok(url),
        "http" if is_loopback(&host) => Ok(url),
        "http" => Err(format!(
            "{value:?} must use https (plain http is allowed only for loopback hosts)"
        )),
        other => Err(format!(
            "{value:?} has the scheme {other:?}; expected https"
        )),
    }
}

fn is_loopback(host: &url::Host<&str>) -> bool {
    match host {
        url::Host::Domain(name) => {
            name.eq_ignore_ascii_case("localhost")
                || name.to_ascii_lowercase().ends_with(".localhost")
        }
        url::Host::Ipv4(ip) => ip.is_loopback(),
        url::Host::Ipv6(ip) => ip.is_loopback(),
    }
}

/// `TryFrom<String>` through each type's `parse`, for serde's `try_from`.
macro_rules! parsed_from_string {
    ($($ty:ident),*) => {$(
        impl TryFrom<String> for $ty {
            type Error = String;
            fn try_from(value: String) -> Result<Self, String> {
                Self::parse(value)
            }
        }
    )*};
}
parsed_from_string!(SecretDigest, PackagePath);

macro_rules! string_conversions {
    ($($ty:ident),*) => {$(
        parsed_from_string!($ty);
        impl From<$ty> for String {
            fn from(value: $ty) -> String {
                value.as_str().to_owned()
            }
        }
        impl std::fmt::Display for $ty {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }
    )*};
}
string_conversions!(RegistryName, UploadUrl, Audience, TokenPrefix, IssuerUrl);

impl TryFrom<i64> for TokenLifetime {
    type Error = String;
    fn try_from(seconds: i64) -> Result<Self, String> {
        Self::parse(seconds)
    }
}

impl From<TokenLifetime> for i64 {
    fn from(value: TokenLifetime) -> i64 {
        value.0.into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ports_are_dropped_from_forwarded_hosts() {
        assert_eq!(without_port("pypi.acme.test:8443"), "pypi.acme.test");
        assert_eq!(without_port("pypi.acme.test"), "pypi.acme.test");
        assert_eq!(without_port("[::1]:8080"), "[::1]");
        assert_eq!(without_port("[::1]"), "[::1]");
        assert_eq!(without_port("127.0.0.1:80"), "127.0.0.1");
    }

    #[test]
    fn serde_and_strum_name_the_enums_alike() {
        use strum::IntoEnumIterator;
        fn same<T: Serialize + Copy + Into<&'static str>>(values: impl Iterator<Item = T>) {
            for value in values {
                assert_eq!(serde_json::to_value(value).unwrap(), value.into());
            }
        }
        same(Ecosystem::iter());
        same(Feature::iter());
        assert_eq!(
            Feature::parse("single-use-token"),
            Some(Feature::SingleUseToken)
        );
        assert_eq!(Feature::parse("single_use_token"), None);
        assert_eq!(
            Ecosystem::parse("Cargo"),
            Err("unknown ecosystem \"Cargo\"; expected python, cargo or generic".to_owned())
        );
    }

    #[test]
    fn issuers_must_be_https_unless_loopback() {
        assert!(IssuerUrl::parse("https://token.actions.githubusercontent.com".into()).is_ok());
        assert!(IssuerUrl::parse("http://127.0.0.1:9000".into()).is_ok());
        assert!(IssuerUrl::parse("http://[::1]:9000".into()).is_ok());
        assert!(IssuerUrl::parse("http://localhost:9000".into()).is_ok());
        assert!(IssuerUrl::parse("http://issuer.example".into()).is_err());
        assert!(IssuerUrl::parse("ftp://issuer.example".into()).is_err());
        assert!(IssuerUrl::parse("not a url".into()).is_err());
    }

    #[test]
    fn issuer_urls_are_kept_exactly() {
        let with_slash = IssuerUrl::parse("https://a.test/".into()).unwrap();
        let without = IssuerUrl::parse("https://a.test".into()).unwrap();
        assert_ne!(with_slash, without);
        assert_eq!(without.as_str(), "https://a.test");
    }

    #[test]
    fn token_lifetime_bounds_follow_pep_807() {
        assert!(TokenLifetime::parse(899).is_err());
        assert_eq!(TokenLifetime::parse(900).unwrap().seconds(), 900);
        assert_eq!(TokenLifetime::parse(21_600).unwrap().seconds(), 21_600);
        assert!(TokenLifetime::parse(21_601).is_err());
        assert!(TokenLifetime::parse(-1).is_err());
    }

    #[test]
    fn secret_digests_are_64_hex_digits_compared_to_hashed_secrets() {
        // SHA-256 of "s3cret".
        let digest = SecretDigest::parse(
            "1ec1c26b50d5d3c58d9583181af8076655fe00756bf7285940ba3670f99fcba0".into(),
        )
        .unwrap();
        assert!(digest.matches("s3cret"));
        assert!(!digest.matches("s3cret "));
        assert!(!digest.matches(""));
        assert!(SecretDigest::parse("abc".into()).is_err());
        assert!(SecretDigest::parse("zz".repeat(32)).is_err());
    }

    #[test]
    fn package_paths_take_one_whole_segment() {
        let template = PackagePath::parse("/packages/{package}/".into()).unwrap();
        assert_eq!(
            template
                .package_in("/packages/widget/1.0/widget.tar.gz")
                .as_deref(),
            Some("widget")
        );
        assert_eq!(
            template.package_in("/packages/wid%67et").as_deref(),
            Some("widget")
        );
        assert_eq!(template.package_in("/packages/").as_deref(), None);
        assert_eq!(template.package_in("/other/widget/").as_deref(), None);
        let middle = PackagePath::parse("/api/{package}/upload".into()).unwrap();
        assert_eq!(
            middle.package_in("/api/widget/upload").as_deref(),
            Some("widget")
        );
        assert_eq!(middle.package_in("/api/widget/download").as_deref(), None);
        assert_eq!(String::from(middle), "/api/{package}/upload");
        for plain in ["/packages/widget/1.0/w.tar.gz", "/a.b/c..d/", "/"] {
            assert!(is_plain_path(plain), "{plain}");
        }
        for tricky in [
            "/packages/widget/../evil/",
            "/packages/widget/%2e%2e/evil",
            "/packages/widget/%252e%252e/evil",
            "/packages/widget%2f..%2fevil/",
            "/a/./b",
            "/a;b=c",
            "/a%5cb",
            "//packages/evil/",
            "/packages//evil/",
            "http://host/packages/evil/",
            "/packages/evil%00/",
        ] {
            assert!(!is_plain_path(tricky), "{tricky}");
        }
        for bad in [
            "packages/{package}",
            "/p{package}/",
            "/{package}x",
            "/a/",
            "/{package}/{package}",
            // Found by the fuzz target forward_auth: templates that no plain
            // path fits, so that every upload would be refused.
            "/p?x/{package}/",
            "/p/{package}/#x",
            "/a/../{package}/",
            "/a//{package}/",
            "/a/%2e%2e/{package}/",
        ] {
            assert!(PackagePath::parse(bad.into()).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn registry_names_are_slugs() {
        assert!(RegistryName::parse("acme-pypi_2".into()).is_ok());
        for bad in ["", "Acme", "-acme", "a/b", "a b", &"x".repeat(65)] {
            assert!(RegistryName::parse(bad.to_owned()).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn upload_urls_give_origin_authority_and_discovery_path() {
        let url = UploadUrl::parse("https://pypi.acme.test:8443/legacy/".into()).unwrap();
        assert_eq!(url.origin(), "https://pypi.acme.test:8443");
        assert_eq!(url.authority(), "pypi.acme.test:8443");
        assert_eq!(url.discovery_path(), "/legacy");
        let root = UploadUrl::parse("https://pypi.acme.test".into()).unwrap();
        assert_eq!(root.discovery_path(), "");
        assert_eq!(root.authority(), "pypi.acme.test");
        assert!(UploadUrl::parse("https://pypi.acme.test/legacy/?x=1".into()).is_err());
        assert!(UploadUrl::parse("http://pypi.acme.test/legacy/".into()).is_err());
    }

    #[test]
    fn cargo_audience_is_the_url_without_scheme() {
        let url = UploadUrl::parse("https://crates.acme.test/".into()).unwrap();
        assert_eq!(url.without_scheme(), "crates.acme.test");
        let url = UploadUrl::parse("http://127.0.0.1:8443/cargo/".into()).unwrap();
        assert_eq!(url.without_scheme(), "127.0.0.1:8443/cargo");
    }
}
