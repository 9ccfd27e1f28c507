//! Settings, read with figment: built-in defaults, then the TOML file, then
//! `TRUSTPUB_*` environment variables (`__` separates nested keys, so
//! `TRUSTPUB_DATABASE__URL` sets `database.url`).

use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use figment::Figment;
use figment::error::Kind;
use figment::providers::{Env, Format, Serialized, Toml};
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};

use crate::domain::{Issuer, SecretDigest};
use crate::limits::Limit;
use crate::problem::{Error, Result};
use crate::registry::Registry;

/// The `TRUSTPUB_*` variables read as configuration: `TRUSTPUB_<SECTION>__<KEY>`.
const ENV_SECTIONS: [&str; 6] = [
    "server__",
    "database__",
    "log__",
    "events__",
    "admin__",
    "rate_limits__",
];

/// The file read when `--config` is not given, if it exists.
pub const DEFAULT_CONFIG_FILE: &str = "trustpub.toml";

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    pub server: ServerSettings,
    pub database: DatabaseSettings,
    pub log: LogSettings,
    #[serde(default)]
    pub events: EventSettings,
    #[serde(default)]
    pub admin: AdminSettings,
    #[serde(default)]
    pub rate_limits: RateLimitSettings,
    #[serde(default)]
    pub registries: Vec<Registry>,
}

/// `[rate_limits]`: token buckets, in memory, per instance. A registry's
/// `[registries.rate_limits]` can set its own `mints` and `failed_checks`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RateLimitSettings {
    /// Mint requests per client address and registry, whatever their outcome.
    pub mints: Limit,
    /// Failed introspection and forward-auth checks per client address and
    /// registry.
    pub failed_checks: Limit,
    /// Refusals of requests that proved no identity, for the whole server.
    pub refused_unauthenticated: Limit,
}

impl Default for RateLimitSettings {
    /// Far above what a CI fleet does: see docs/src/configuration.md.
    fn default() -> Self {
        RateLimitSettings {
            mints: Limit {
                per_minute: 600,
                burst: 600,
            },
            failed_checks: Limit {
                per_minute: 300,
                burst: 300,
            },
            refused_unauthenticated: Limit {
                per_minute: 6000,
                burst: 3000,
            },
        }
    }
}

/// `[admin]`: the admin API. Off unless it has a listener of its own or is
/// enabled on the main one.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AdminSettings {
    /// Serve the admin API (and `/metrics`) on this address only; the
    /// public listener then answers 404 for admin paths.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub listen: Option<SocketAddr>,
    /// Serve the admin API on the main listener (when `listen` is unset).
    #[serde(default)]
    pub enabled: bool,
    /// Who may call it.
    #[serde(default)]
    pub tokens: Vec<AdminToken>,
}

impl AdminSettings {
    /// Where the admin API is served, if anywhere.
    pub fn placement(&self) -> AdminPlacement {
        match (self.listen, self.enabled) {
            (Some(address), _) => AdminPlacement::Own(address),
            (None, true) => AdminPlacement::Main,
            (None, false) => AdminPlacement::Off,
        }
    }
}

/// Where the admin API is served.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AdminPlacement {
    Off,
    /// On the main listener, next to the public endpoints.
    Main,
    /// On its own listener.
    Own(SocketAddr),
}

/// `[[admin.tokens]]`: a bearer token of the admin API, by its SHA-256.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AdminToken {
    /// Named in the events of its writes.
    pub name: String,
    /// The SHA-256 of the token, 64 hex digits; the token is never in the file.
    pub sha256: SecretDigest,
    /// The registries it may see and change; `["*"]`: all of them.
    pub registries: Vec<String>,
    /// Reads only.
    #[serde(default)]
    pub read_only: bool,
}

impl AdminToken {
    /// Whether this token may see and change the registry `name`.
    pub fn covers(&self, name: &str) -> bool {
        self.registries.iter().any(|r| r == "*" || r == name)
    }
}

/// `[events]`: how long the event log is kept.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EventSettings {
    /// Days after which events and refusal counts are deleted (at least 1).
    pub retention_days: u32,
}

impl Default for EventSettings {
    fn default() -> Self {
        EventSettings { retention_days: 90 }
    }
}

impl EventSettings {
    /// The retention in seconds.
    pub fn retention_seconds(&self) -> i64 {
        i64::from(self.retention_days) * 86_400
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServerSettings {
    /// Address and port to listen on.
    pub listen: SocketAddr,
    /// Largest request body accepted, in bytes.
    pub max_body_bytes: usize,
    /// Seconds to let in-flight requests finish after SIGTERM/SIGINT.
    pub shutdown_timeout: u64,
    /// Longest request target (path and query) answered, in bytes.
    #[serde(default = "ServerSettings::default_max_uri_bytes")]
    pub max_uri_bytes: usize,
    /// Largest total of the request's header lines, in bytes.
    #[serde(default = "ServerSettings::default_max_header_bytes")]
    pub max_header_bytes: usize,
    /// Most header lines in one request.
    #[serde(default = "ServerSettings::default_max_headers")]
    pub max_headers: usize,
    /// Serve https with these PEM files; plain http when absent (for
    /// deployments behind a proxy that terminates TLS).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls: Option<TlsSettings>,
    /// Peers whose `X-Forwarded-For` names the client (for rate limits);
    /// any other peer is the client itself.
    #[serde(default)]
    pub trusted_proxies: Vec<ipnet::IpNet>,
}

/// The HTTP parser's own limits, fixed in actix-http: a request head (request
/// line and headers) of 128 KiB, 96 header lines. A request beyond them is
/// answered by the parser with an empty 431 or 400 before trustpub sees it,
/// so trustpub's limits stay below them and its problem documents answer
/// everything up to there.
const PARSER_MAX_HEAD_BYTES: usize = 128 * 1024;
const PARSER_MAX_HEADERS: usize = 96;
/// The highest values `max_uri_bytes` and `max_header_bytes` may take:
/// together, with the request line's and the header lines' separators,
/// well under the parser's head buffer.
const HIGHEST_MAX_URI_BYTES: usize = 32 * 1024;
const HIGHEST_MAX_HEADER_BYTES: usize = 64 * 1024;
const _: () = assert!(
    HIGHEST_MAX_URI_BYTES + HIGHEST_MAX_HEADER_BYTES + 4 * PARSER_MAX_HEADERS + 64
        < PARSER_MAX_HEAD_BYTES
);

/// The limits on a request's head that trustpub answers with a problem
/// document (`[server]` `max_uri_bytes`, `max_header_bytes`, `max_headers`).
#[derive(Debug, Clone, Copy)]
pub struct HeadLimits {
    pub uri_bytes: usize,
    pub header_bytes: usize,
    pub headers: usize,
}

impl ServerSettings {
    fn default_max_uri_bytes() -> usize {
        8 * 1024
    }

    fn default_max_header_bytes() -> usize {
        32 * 1024
    }

    fn default_max_headers() -> usize {
        64
    }

    pub fn head_limits(&self) -> HeadLimits {
        HeadLimits {
            uri_bytes: self.max_uri_bytes,
            header_bytes: self.max_header_bytes,
            headers: self.max_headers,
        }
    }

    /// Each limit sensible, and together below the parser's.
    fn validate_head_limits(&self) -> Result<()> {
        let in_range = |key: &str, value: usize, range: std::ops::RangeInclusive<usize>| {
            if range.contains(&value) {
                Ok(())
            } else {
                Err(Error::config(
                    key,
                    format!("must be from {} to {}", range.start(), range.end()),
                ))
            }
        };
        in_range(
            "server.max_uri_bytes",
            self.max_uri_bytes,
            256..=HIGHEST_MAX_URI_BYTES,
        )?;
        in_range(
            "server.max_header_bytes",
            self.max_header_bytes,
            1024..=HIGHEST_MAX_HEADER_BYTES,
        )?;
        // Below the parser's count, which includes the one that overflows.
        in_range(
            "server.max_headers",
            self.max_headers,
            8..=PARSER_MAX_HEADERS - 1,
        )
    }
}

/// `[server.tls]`: the certificate chain and private key, PEM files.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsSettings {
    /// The server's certificate, followed by any intermediates.
    pub cert: std::path::PathBuf,
    /// Its private key (PKCS#8, PKCS#1 or SEC1).
    pub key: std::path::PathBuf,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DatabaseSettings {
    /// `sqlite://path/to/file.db` or `postgres://user:pass@host/db`.
    pub url: DatabaseUrl,
    /// Largest number of pooled connections.
    pub max_connections: u32,
    /// Seconds a registry read from the store is used before it is read
    /// again; 0 reads it for every request.
    #[serde(default = "DatabaseSettings::default_registry_cache_ttl")]
    pub registry_cache_ttl: u64,
    /// Seconds to wait for a database connection, at start-up and for each
    /// request, before giving up.
    #[serde(default = "DatabaseSettings::default_connect_timeout")]
    pub connect_timeout: u64,
    /// Seconds between purges of expired `jti`s and credentials and of
    /// events past their retention.
    #[serde(default = "DatabaseSettings::default_purge_interval")]
    pub purge_interval: u64,
    /// Seconds any one store operation may take, waiting for a connection
    /// included, before the request answers `store-unavailable`.
    #[serde(default = "DatabaseSettings::default_query_timeout")]
    pub query_timeout: u64,
}

impl DatabaseSettings {
    fn default_registry_cache_ttl() -> u64 {
        2
    }

    fn default_connect_timeout() -> u64 {
        10
    }

    fn default_purge_interval() -> u64 {
        300
    }

    fn default_query_timeout() -> u64 {
        10
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LogSettings {
    /// `human` or `json`.
    pub format: LogFormat,
    /// A tracing filter such as `info` or `trustpub=debug,actix_web=info`;
    /// `RUST_LOG` overrides it.
    pub filter: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    Human,
    Json,
}

/// Which database a [`DatabaseUrl`] names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// A database URL. It may hold a password, so it is never printed whole,
/// and its memory is wiped when it is dropped.
#[derive(Clone, Deserialize)]
#[serde(transparent)]
pub struct DatabaseUrl(SecretString);

impl DatabaseUrl {
    pub fn new(url: impl Into<String>) -> Self {
        Self(SecretString::from(url.into()))
    }

    /// The URL itself, for connecting.
    pub fn expose(&self) -> &str {
        self.0.expose_secret()
    }

    /// The backend the URL names.
    pub fn backend(&self) -> Result<Backend> {
        let url = self.expose();
        if url.starts_with("sqlite:") {
            Ok(Backend::Sqlite)
        } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Ok(Backend::Postgres)
        } else {
            Err(Error::config(
                "database.url",
                "must start with sqlite: (a file) or postgres:// (a server)",
            ))
        }
    }

    /// Where the database is, for messages: the server's `host:port`, or
    /// the file.
    pub fn location(&self) -> String {
        if let Some(path) = self.expose().strip_prefix("sqlite:") {
            let path = path.strip_prefix("//").unwrap_or(path);
            return path.split('?').next().unwrap_or(path).to_owned();
        }
        match url::Url::parse(self.expose()) {
            Ok(url) if url.host_str().is_some_and(|h| !h.is_empty()) => format!(
                "{}:{}",
                url.host_str().unwrap_or_default(),
                url.port().unwrap_or(5432)
            ),
            _ => self.redacted(),
        }
    }

    /// The URL with any password replaced by `[redacted]`. The credentials
    /// end at the last `@` before the query, so that a password holding an
    /// `@` (or a `/`) that was not percent-encoded is redacted whole.
    pub fn redacted(&self) -> String {
        let Some((scheme, rest)) = self.expose().split_once("://") else {
            return self.expose().to_owned();
        };
        let (before_query, query) = match rest.split_once('?') {
            Some((before, query)) => (before, Some(query)),
            None => (rest, None),
        };
        match before_query.rsplit_once('@') {
            Some((credentials, host)) if credentials.contains(':') => {
                let user = credentials.split(':').next().unwrap_or_default();
                let query = query.map(|q| format!("?{q}")).unwrap_or_default();
                format!("{scheme}://{user}:[redacted]@{host}{query}")
            }
            _ => self.expose().to_owned(),
        }
    }
}

impl std::fmt::Debug for DatabaseUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.redacted())
    }
}

impl Serialize for DatabaseUrl {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.redacted())
    }
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            server: ServerSettings {
                listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
                max_body_bytes: 64 * 1024,
                shutdown_timeout: 30,
                max_uri_bytes: ServerSettings::default_max_uri_bytes(),
                max_header_bytes: ServerSettings::default_max_header_bytes(),
                max_headers: ServerSettings::default_max_headers(),
                tls: None,
                trusted_proxies: Vec::new(),
            },
            database: DatabaseSettings {
                url: DatabaseUrl::new("sqlite://data/trustpub.db"),
                max_connections: 10,
                registry_cache_ttl: DatabaseSettings::default_registry_cache_ttl(),
                connect_timeout: DatabaseSettings::default_connect_timeout(),
                purge_interval: DatabaseSettings::default_purge_interval(),
                query_timeout: DatabaseSettings::default_query_timeout(),
            },
            log: LogSettings {
                format: LogFormat::Human,
                filter: "info".to_owned(),
            },
            events: EventSettings::default(),
            admin: AdminSettings::default(),
            rate_limits: RateLimitSettings::default(),
            registries: Vec::new(),
        }
    }
}

impl Settings {
    /// The figment for a config file: defaults, then the file (when given, it
    /// must exist; otherwise `./trustpub.toml` is read if present), then the
    /// environment. Tests merge their overrides into it.
    pub fn figment(path: Option<&Path>) -> Result<Figment> {
        let file = Self::file(path)?;
        let mut figment = Self::defaults();
        if let Some(file) = file {
            figment = figment.merge(Toml::file_exact(file));
        }
        // Only variables for the sections below are read, so that others
        // that happen to start with TRUSTPUB_ (TRUSTPUB_CONFIG, or
        // TRUSTPUB_SERVICE_HOST injected by Kubernetes) are not taken for keys.
        Ok(figment.merge(
            Env::prefixed("TRUSTPUB_")
                .filter(|key| {
                    let key = key.as_str().to_ascii_lowercase();
                    ENV_SECTIONS.iter().any(|s| key.starts_with(s))
                })
                .split("__"),
        ))
    }

    /// The figment of the defaults alone.
    fn defaults() -> Figment {
        Figment::from(Serialized::defaults(Settings::default()))
    }

    /// The settings of a configuration file's text over the defaults, without
    /// the environment: for the fuzz targets (`crate::fuzzing`).
    pub(crate) fn from_toml(text: &str) -> Result<Self> {
        Self::from_figment(&Self::defaults().merge(Toml::string(text)))
    }

    /// The configuration file that is read: `path` when given (it must
    /// exist), otherwise `./trustpub.toml` if it exists, otherwise none.
    pub fn file(path: Option<&Path>) -> Result<Option<PathBuf>> {
        match path {
            Some(path) if !path.is_file() => Err(Error::config(
                "--config",
                format!("{} does not exist or is not a file", path.display()),
            )),
            Some(path) => Ok(Some(path.to_path_buf())),
            None => Ok(Some(PathBuf::from(DEFAULT_CONFIG_FILE)).filter(|p| p.is_file())),
        }
    }

    /// Extracts and validates the settings.
    pub fn from_figment(figment: &Figment) -> Result<Self> {
        let mut settings: Settings = figment.extract().map_err(|error| {
            let error = error
                .into_iter()
                .next()
                .expect("figment errors are never empty");
            extraction_error(figment, error)
        })?;
        for (i, registry) in settings.registries.iter_mut().enumerate() {
            registry.resolve_defaults().map_err(|(field, reason)| {
                Error::config(format!("registries.{i}.{field}"), reason)
            })?;
        }
        settings.validate()?;
        Ok(settings)
    }

    pub fn load(path: Option<&Path>) -> Result<Self> {
        Self::from_figment(&Self::figment(path)?)
    }

    /// The effective configuration as TOML, secrets redacted.
    pub fn to_redacted_toml(&self) -> String {
        toml::to_string_pretty(self).unwrap_or_else(|e| format!("# cannot render: {e}"))
    }

    /// Rules that span several keys.
    fn validate(&self) -> Result<()> {
        if self.server.max_body_bytes < 1024 {
            return Err(Error::config(
                "server.max_body_bytes",
                "must be at least 1024 bytes",
            ));
        }
        self.server.validate_head_limits()?;
        self.database.url.backend()?;
        if self.database.max_connections == 0 {
            return Err(Error::config(
                "database.max_connections",
                "must be at least 1",
            ));
        }
        let database = &self.database;
        for (key, seconds) in [
            ("database.connect_timeout", database.connect_timeout),
            ("database.purge_interval", database.purge_interval),
            ("database.query_timeout", database.query_timeout),
        ] {
            if seconds == 0 {
                return Err(Error::config(key, "must be at least 1 second"));
            }
        }
        if self.events.retention_days == 0 {
            return Err(Error::config("events.retention_days", "must be at least 1"));
        }
        self.validate_admin()?;
        let limits = &self.rate_limits;
        for (key, limit) in [
            ("mints", limits.mints),
            ("failed_checks", limits.failed_checks),
            ("refused_unauthenticated", limits.refused_unauthenticated),
        ] {
            limit
                .validate()
                .map_err(|reason| Error::config(format!("rate_limits.{key}"), reason))?;
        }
        validate_registries(&self.registries, |i| format!("registries.{i}"))
    }

    /// `[admin]`: tokens with distinct names and digests, each naming
    /// registries.
    fn validate_admin(&self) -> Result<()> {
        let mut names = HashSet::new();
        let mut digests = HashSet::new();
        for (i, token) in self.admin.tokens.iter().enumerate() {
            let key = |field: &str| format!("admin.tokens.{i}.{field}");
            if token.name.trim().is_empty() {
                return Err(Error::config(key("name"), "must not be empty"));
            }
            if !names.insert(token.name.as_str()) {
                return Err(Error::config(
                    key("name"),
                    format!("the token name {:?} is used twice", token.name),
                ));
            }
            if !digests.insert(String::from(token.sha256.clone())) {
                return Err(Error::config(
                    key("sha256"),
                    "the same token is listed twice",
                ));
            }
            if token.registries.is_empty() {
                return Err(Error::config(
                    key("registries"),
                    "must name at least one registry, or \"*\" for all",
                ));
            }
        }
        if self.admin.placement() != AdminPlacement::Off && self.admin.tokens.is_empty() {
            return Err(Error::config(
                "admin.tokens",
                "the admin API is on but no token may call it",
            ));
        }
        Ok(())
    }
}

/// The rules `check-config` applies to registries, each alone and all
/// together (names, audiences, upload URLs, gateways), for the registries
/// of the file and for those the admin API writes alike. `prefix` names the
/// registry at an index in error keys.
pub fn validate_registries(
    registries: &[Registry],
    prefix: impl Fn(usize) -> String,
) -> Result<()> {
    // Each value taken, with the name of the registry that took it.
    let mut names = HashSet::new();
    let mut audiences = HashMap::new();
    let mut upload_keys = HashMap::new();
    let mut pypi_hosts = HashMap::new();
    for (i, registry) in registries.iter().enumerate() {
        let key = |field: &str| format!("{}.{field}", prefix(i));
        if !names.insert(registry.name.as_str()) {
            return Err(Error::config(
                key("name"),
                format!(
                    "the registry name {:?} is used twice",
                    registry.name.as_str()
                ),
            ));
        }
        let name = registry.name.as_str();
        // Registries sharing an audience would accept each other's tokens.
        if let Some(other) = audiences.insert(registry.audience.as_str(), name) {
            return Err(Error::config(
                key("audience"),
                format!(
                    "the audience {:?} is already used by the registry {other:?}",
                    registry.audience.as_str()
                ),
            ));
        }
        let upload_key = (
            registry.upload_url.authority().to_ascii_lowercase(),
            registry.upload_url.discovery_path(),
        );
        if let Some(other) = upload_keys.insert(upload_key, name) {
            return Err(Error::config(
                key("upload_url"),
                format!(
                    "{} has the same host and upload path as the registry {other:?}; \
                         give each registry its own upload URL",
                    registry.upload_url
                ),
            ));
        }
        // The implicit paths carry no registry name: the host picks it.
        if registry.pypi_paths
            && let Some(other) =
                pypi_hosts.insert(registry.upload_url.authority().to_ascii_lowercase(), name)
        {
            return Err(Error::config(
                key("pypi_paths"),
                format!(
                    "the registry {other:?} already serves PyPI's paths on {}",
                    registry.upload_url.authority()
                ),
            ));
        }
        if registry.features.is_empty() {
            return Err(Error::config(
                key("features"),
                "must offer at least one feature",
            ));
        }
        if let Some(feature) = registry
            .default_features
            .iter()
            .find(|f| !registry.features.contains(f))
        {
            return Err(Error::config(
                key("default_features"),
                format!("{feature:?} is not among the registry's features"),
            ));
        }
        if registry.default_features.len() != 1 {
            return Err(Error::config(
                key("default_features"),
                "must name exactly one of multi-use-token and single-use-token",
            ));
        }
        let mut issuers = HashSet::new();
        for (j, issuer) in registry.issuers.iter().enumerate() {
            if !issuers.insert(issuer.url.as_str()) {
                return Err(Error::config(
                    key(&format!("issuers.{j}.url")),
                    format!("the issuer {} is listed twice", issuer.url),
                ));
            }
            if !(60..=Issuer::LONGEST_MAX_TOKEN_LIFETIME).contains(&issuer.max_token_lifetime) {
                return Err(Error::config(
                    key(&format!("issuers.{j}.max_token_lifetime")),
                    format!(
                        "must be between 60 and {} seconds",
                        Issuer::LONGEST_MAX_TOKEN_LIFETIME
                    ),
                ));
            }
        }
        registry.rate_limits.validate().map_err(|(field, reason)| {
            Error::config(key(&format!("rate_limits.{field}")), reason)
        })?;
        if let Some(gateway) = &registry.gateway {
            gateway
                .validate(registry.ecosystem)
                .map_err(|(field, reason)| {
                    Error::config(key(&format!("gateway.{field}")), reason)
                })?;
        }
        let mut publisher_keys = HashSet::new();
        for (j, publisher) in registry.publishers.iter().enumerate() {
            let key = |field: &str| key(&format!("publishers.{j}.{field}"));
            match registry.issuers.iter().find(|i| i.url == publisher.issuer) {
                None => {
                    return Err(Error::config(
                        key("issuer"),
                        format!(
                            "{} is not among the registry's issuers (compared exactly)",
                            publisher.issuer
                        ),
                    ));
                }
                Some(issuer) if issuer.provider != publisher.identity.provider() => {
                    return Err(Error::config(
                        key("provider"),
                        format!(
                            "the issuer {} is a {} issuer",
                            publisher.issuer,
                            issuer.provider.as_str()
                        ),
                    ));
                }
                Some(_) => {}
            }
            if publisher.packages.is_empty() {
                return Err(Error::config(
                    key("packages"),
                    "must name at least one package",
                ));
            }
            publisher
                .identity
                .validate(&publisher.issuer)
                .map_err(|(field, reason)| Error::config(key(field), reason))?;
            if !publisher_keys.insert(publisher.key()) {
                return Err(Error::config(
                    key("provider"),
                    "this publisher is listed twice",
                ));
            }
        }
    }
    validate_gateway_routing(registries, &prefix)
}

/// The file's registries checked, at every configuration sync, together
/// with those the admin API created (kept in the store, `api`): a registry
/// of the file may not take an API registry's name (the sync would turn it
/// into a file registry), nor its audience, upload URL or anything else
/// [`validate_registries`] keeps apart. The error names the file's registry
/// by its key and the API's by its name.
pub fn validate_with_api_registries(file: &[Registry], api: &[Registry]) -> Result<()> {
    let api_name = |name: &str| api.iter().any(|r| r.name.as_str() == name);
    if let Some(i) = file.iter().position(|r| api_name(r.name.as_str())) {
        let name = file[i].name.as_str();
        return Err(Error::config(
            format!("registries.{i}.name"),
            format!(
                "the admin API created a registry named {name:?}; rename the file's, \
                 or delete the API's (`trustpub admin registries delete {name}`)"
            ),
        ));
    }
    let all: Vec<Registry> = api.iter().chain(file).cloned().collect();
    // The API's come first: a clash is reported at the file's registry.
    validate_registries(&all, |i| match i.checked_sub(api.len()) {
        Some(i) => format!("registries.{i}"),
        None => format!("the admin API's registry {:?}", all[i].name.as_str()),
    })
    .map_err(|error| match error {
        Error::Config { key, reason } => Error::config(
            key,
            format!("{reason} (registries created through the admin API are checked too)"),
        ),
        other => other,
    })
}

/// Gateways on one host that take the same paths are told apart by the
/// request's port, or else by the credential's prefix (proxies need not
/// forward the port): two of them must not have prefixes one of which
/// starts the other, or an upload could not be routed.
fn validate_gateway_routing(
    registries: &[Registry],
    prefix: impl Fn(usize) -> String,
) -> Result<()> {
    for (i, registry, other) in sharing_gateways(registries) {
        let (mine, theirs) = (registry.token_prefix.as_str(), other.token_prefix.as_str());
        if mine.starts_with(theirs) || theirs.starts_with(mine) {
            return Err(Error::config(
                format!("{}.token_prefix", prefix(i)),
                format!(
                    "the registry {:?}'s {mine:?} and the registry {:?}'s {theirs:?}: both \
                     registries' gateways are on {}, and uploads to them are told apart by \
                     the credential's prefix; give each a prefix that does not start the other",
                    registry.name.as_str(),
                    other.name.as_str(),
                    registry.upload_url.host()
                ),
            ));
        }
    }
    Ok(())
}

/// What `check-config` and `serve` warn about in a valid configuration:
/// gateways on one host that take the same paths, at different ports, one
/// of which passes foreign credentials through. A foreign credential has
/// no prefix of either, so only the port can route it: behind a proxy that
/// drops the port, such an upload goes to neither (403).
pub fn routing_warnings(registries: &[Registry]) -> Vec<String> {
    sharing_gateways(registries)
        .into_iter()
        .filter(|(_, a, b)| a.upload_url.authority() != b.upload_url.authority())
        .filter_map(|(_, a, b)| {
            let passing = [a, b].into_iter().find(|r| {
                r.gateway
                    .as_ref()
                    .is_some_and(|g| g.pass_through_foreign_credentials)
            })?;
            Some(format!(
                "the registries {:?} and {:?} have gateways on {} that take the same paths \
                 at different ports, and {:?} passes foreign credentials through: only the \
                 port can route such an upload, so the proxy in front must forward it (in \
                 Host or X-Forwarded-Port), or it is refused (403 no-registry-for-request)",
                b.name.as_str(),
                a.name.as_str(),
                a.upload_url.host(),
                passing.name.as_str()
            ))
        })
        .collect()
}

/// The pairs of registries whose gateways take some of the same paths on
/// one host: the index of the later one, it, and the earlier one.
fn sharing_gateways(registries: &[Registry]) -> Vec<(usize, &Registry, &Registry)> {
    let gateways: Vec<(usize, &Registry)> = registries
        .iter()
        .enumerate()
        .filter(|(_, r)| r.gateway.is_some())
        .collect();
    let mut pairs = Vec::new();
    for (n, (i, registry)) in gateways.iter().enumerate() {
        for (_, other) in &gateways[..n] {
            let same_host = registry
                .upload_url
                .host()
                .eq_ignore_ascii_case(other.upload_url.host());
            if same_host && gateways_overlap(registry, other) {
                pairs.push((*i, *registry, *other));
            }
        }
    }
    pairs
}

/// Whether the gateways of two registries take some of the same paths.
fn gateways_overlap(a: &Registry, b: &Registry) -> bool {
    let takes = |from: &Registry, by: &Registry| match (&from.gateway, &by.gateway) {
        (Some(from_gateway), Some(by_gateway)) => from_gateway
            .upload_paths(from.ecosystem, &from.upload_url)
            .iter()
            .any(|path| by_gateway.takes(by.ecosystem, &by.upload_url, path)),
        _ => false,
    };
    takes(a, b) || takes(b, a)
}

/// A figment error as a configuration error: the key, and the reason in
/// words an operator can act on.
fn extraction_error(figment: &Figment, error: figment::Error) -> Error {
    let mut key = if error.path.is_empty() {
        "(top level)".to_owned()
    } else {
        error.path.join(".")
    };
    // A publisher's provider-specific keys are flattened into its table, so
    // serde places an unknown `provider` at the table itself: name the key.
    if matches!(error.kind, Kind::UnknownVariant(..))
        && error.path.iter().rev().nth(1).map(String::as_str) == Some("publishers")
    {
        key.push_str(".provider");
    }
    let mut reason = match &error.kind {
        Kind::UnknownField(found, known) => unknown("key", found, known),
        Kind::UnknownVariant(found, known) => unknown("value", found, known),
        _ if key == "server.listen" => {
            not_a_socket_address(figment).unwrap_or_else(|| error.kind.to_string())
        }
        kind => kind.to_string(),
    };
    // A key from the environment is named as the variable that set it.
    if error
        .metadata
        .as_ref()
        .is_some_and(|m| m.name.contains("environment variable"))
    {
        let variable = format!("TRUSTPUB_{}", error.path.join("__")).to_ascii_uppercase();
        reason.push_str(&format!("; set by the environment variable {variable}"));
    }
    Error::config(key, reason)
}

/// "unknown key" (or value), with the closest known one when there is one
/// close enough, and the list of the known ones.
fn unknown(what: &str, found: &str, known: &[&str]) -> String {
    let closest = known
        .iter()
        .map(|candidate| (strsim::jaro(found, candidate), candidate))
        // The threshold clap uses for its suggestions.
        .filter(|(similarity, _)| *similarity > 0.7)
        .max_by(|a, b| a.0.total_cmp(&b.0));
    let mut reason = format!("unknown {what} {found:?}");
    if let Some((_, candidate)) = closest {
        reason.push_str(&format!("; did you mean {candidate:?}?"));
    }
    if !known.is_empty() {
        reason.push_str(&format!(" (known: {})", known.join(", ")));
    }
    reason
}

/// Why `server.listen` is refused: trustpub binds exactly the address it
/// is given, so a host name is not looked up.
fn not_a_socket_address(figment: &Figment) -> Option<String> {
    let value = figment.find_value("server.listen").ok()?;
    if let Some(port) = value.to_i128() {
        return Some(format!(
            "must be text \"IP:port\", such as \"127.0.0.1:{port}\", not a number"
        ));
    }
    let given = value.into_string()?;
    if let Ok(ip) = given.parse::<std::net::IpAddr>() {
        return Some(format!(
            "{given:?} has no port: write {:?}",
            SocketAddr::new(ip, 8080).to_string()
        ));
    }
    let port = given
        .rsplit_once(':')
        .and_then(|(_, port)| port.parse::<u16>().ok())
        .unwrap_or(8080);
    Some(format!(
        "{given:?} is not an IP address and port; host names are not looked up here: \
         write 127.0.0.1:{port} (this machine only), [::1]:{port}, \
         or 0.0.0.0:{port} (every interface)"
    ))
}

#[cfg(test)]
mod tests {
    use super::DatabaseUrl;

    #[test]
    fn passwords_are_redacted_whole() {
        let cases = [
            ("postgres://u:s3cret@db/x", "postgres://u:[redacted]@db/x"),
            // Not percent-encoded, as people write them.
            (
                "postgres://u:p@ss@w0rd@db:5433/x",
                "postgres://u:[redacted]@db:5433/x",
            ),
            (
                "postgres://u:a/b@c@db/x?sslmode=require",
                "postgres://u:[redacted]@db/x?sslmode=require",
            ),
            (
                "postgres://u:s3cret@db/x?options=a@b",
                "postgres://u:[redacted]@db/x?options=a@b",
            ),
            ("postgres://u:pa:ss@db/x", "postgres://u:[redacted]@db/x"),
            ("postgres://u:p%40ss@db/x", "postgres://u:[redacted]@db/x"),
            ("postgres://u@db/x", "postgres://u@db/x"),
            ("sqlite:data/trustpub.db", "sqlite:data/trustpub.db"),
        ];
        for (url, shown) in cases {
            assert_eq!(DatabaseUrl::new(url).redacted(), shown, "{url}");
        }
    }
}
