//! The one error type of trustpub: what went wrong, its HTTP status, its
//! stable code and what the client is told. Free of the web framework: the
//! `http` layer renders it as an RFC 9457 problem document
//! (`application/problem+json`, `src/http/problem.rs`).
//!
//! Every document carries `type`, `title`, `status`, `detail` and a stable,
//! machine-readable `code`. The `type` is the relative reference
//! `/_/trustpub/problems/<code>`; the codes are listed in `docs/src/errors.md`
//! and in `spec/`.

use http::StatusCode;

/// Everything that can go wrong in trustpub, from configuration at start-up to
/// a malformed request.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Invalid configuration: names the key and the reason.
    #[error("invalid configuration: {key}: {reason}")]
    Config { key: String, reason: String },

    // Requests that do not fit the protocol.
    #[error("no such endpoint: {0}")]
    RouteNotFound(String),
    #[error("method {method} is not allowed here; allowed: {allowed}")]
    MethodNotAllowed { method: String, allowed: String },
    #[error("no registry named {0:?}")]
    UnknownRegistry(String),
    #[error("no registry offers Trusted Publishing for the upload path {0:?}")]
    NotDiscoverable(String),
    /// The implicit paths of PyPI and crates.io carry no registry name: the
    /// host (and, for cargo, the path prefix) must select one.
    #[error("{0}")]
    NoRegistryHere(String),
    #[error("the `discover` query parameter is missing")]
    MissingDiscoverKey,
    #[error("the query string is invalid: {0}")]
    InvalidQuery(String),
    #[error("the path is invalid: {0}")]
    InvalidPath(String),
    #[error("the request body is not valid for this endpoint: {0}")]
    InvalidPayload(String),
    #[error("the request body must be JSON (Content-Type: application/json)")]
    UnsupportedMediaType,
    #[error("the request body is larger than the limit of {limit} bytes")]
    PayloadTooLarge { limit: usize },
    #[error(
        "none of the media types in the Accept header can be served; \
         accepted: application/vnd.pypi.pytp.v1+json, application/json, application/*, */*"
    )]
    NotAcceptable,
    #[error("the request target is longer than the limit of {limit} bytes")]
    UriTooLong { limit: usize },
    #[error("the request's header lines exceed the limit of {0}")]
    HeadersTooLarge(String),
    /// An error response produced inside the web framework itself, re-rendered.
    #[error("the request could not be handled (HTTP {})", .0.as_u16())]
    Http(StatusCode),

    // Identity tokens that do not verify.
    #[error("the identity token is invalid: {0}")]
    InvalidToken(String),
    #[error("the token's issuer {0:?} is not trusted by this registry")]
    UntrustedIssuer(String),
    #[error(
        "the token is signed with {0:?}; only asymmetric algorithms (RS*, PS*, ES256, ES384, EdDSA) are accepted"
    )]
    UnsupportedAlgorithm(String),
    #[error("the identity token has expired")]
    TokenExpired,
    #[error("the identity token is not valid yet (`{0}` is in the future)")]
    TokenNotYetValid(&'static str),
    #[error("the token's audience must be exactly {0:?}")]
    InvalidAudience(String),
    #[error("this identity token has already been used")]
    TokenReused,
    #[error("the keys of the issuer {issuer} cannot be fetched: {reason}")]
    IssuerUnavailable { issuer: String, reason: String },

    // Verified identities that may not do what they ask.
    /// Holds which claims did not match, for the event log only: the client
    /// is not told how the publishers are configured.
    #[error("no trusted publisher of this registry matches the token's claims")]
    InvalidPublisher(String),
    /// A run that can execute code the publisher did not vet (an event
    /// forks can trigger, a CircleCI re-run with SSH): refused whatever the
    /// publisher.
    #[error("tokens from `{0}` runs are refused: they can run code the publisher did not vet")]
    ForbiddenEvent(String),
    #[error("the trusted publishers do not allow these packages: {}", .0.join(", "))]
    PackageNotAllowed(Vec<String>),

    // Upload credentials presented to the registry side.
    #[error(
        "no upload credential: send `Authorization: Bearer <credential>`, Basic \
         authentication with the user `__token__` and the credential as password, \
         or the credential alone"
    )]
    MissingCredential,
    #[error("the upload credential is not valid (unknown, expired, revoked or already used)")]
    InvalidCredential,
    #[error("introspection is not authorized: {0}")]
    IntrospectionUnauthorized(&'static str),
    #[error("no registry is configured for this request: {0}")]
    NoRegistryForRequest(String),
    #[error("the request's path cannot be checked: {0}")]
    PathNotAllowed(String),

    // The upload gateway.
    #[error("the upload cannot be read: {0}")]
    InvalidUpload(String),
    #[error("the upload is larger than the limit of {limit} bytes")]
    UploadTooLarge { limit: u64 },
    #[error("the registry behind trustpub cannot be reached: {0}")]
    UpstreamUnavailable(String),

    // Feature negotiation.
    #[error("unknown feature {0:?}; known: multi-use-token, single-use-token")]
    UnknownFeature(String),
    #[error("multi-use-token and single-use-token cannot both be requested")]
    ConflictingFeatures,
    #[error("this registry does not offer the feature {0:?}")]
    FeatureNotOffered(String),

    // The admin API.
    #[error("admin API: {0}")]
    AdminUnauthorized(&'static str),
    #[error("this admin token may not {0}")]
    AdminForbidden(String),
    #[error("{0} is defined in the configuration file; change it there")]
    ManagedByConfig(String),
    /// A change the admin API refuses because `check-config` would refuse
    /// it: the same message.
    #[error("invalid configuration: {key}: {reason}")]
    InvalidSettings { key: String, reason: String },
    #[error(
        "the registry {registry:?} has {count} live credential(s); \
         delete it with ?revoke=true to revoke them too"
    )]
    LiveCredentials { registry: String, count: i64 },
    #[error("the registry has no publisher with the id {0:?}")]
    UnknownPublisher(String),
    #[error("the registry has no credential with the id {0:?}")]
    UnknownCredential(String),

    // Rate limits.
    /// A token bucket is empty: which limit (its key in `[rate_limits]`),
    /// and whole seconds until it holds a token again (`Retry-After`).
    #[error("over the rate limit rate_limits.{limit}; retry in {retry_after} s")]
    RateLimited {
        limit: &'static str,
        retry_after: u64,
    },

    // The service itself.
    #[error("the store is not reachable")]
    StoreUnavailable(#[source] sqlx::Error),
    /// The database cannot be used at all (at start-up): where it is and why.
    #[error("cannot use the database at {location}: {reason}")]
    StoreConnect { location: String, reason: String },
    #[error("database error: {0}")]
    Store(#[source] sqlx::Error),
    #[error("database migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("{context}: {source}")]
    Io {
        context: String,
        #[source]
        source: std::io::Error,
    },
}

/// Database errors, mapped once: the store being out of reach (no
/// connection, a connection lost or cut mid-answer, a read-only or full
/// database, a server shutting down) is [`Error::StoreUnavailable`],
/// answered 503 and worth a retry; anything else is [`Error::Store`], a 500.
impl From<sqlx::Error> for Error {
    fn from(error: sqlx::Error) -> Self {
        if store_unavailable(&error) {
            Error::StoreUnavailable(error)
        } else {
            Error::Store(error)
        }
    }
}

fn store_unavailable(error: &sqlx::Error) -> bool {
    match error {
        sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::WorkerCrashed
        | sqlx::Error::Io(_)
        | sqlx::Error::Tls(_)
        // What answers at the database's address stopped speaking its
        // protocol mid-way: a connection cut by the server or a proxy.
        | sqlx::Error::Protocol(_) => true,
        sqlx::Error::Database(error) => {
            let code = error.code().unwrap_or_default();
            if error
                .try_downcast_ref::<sqlx::postgres::PgDatabaseError>()
                .is_some()
            {
                // Connection exceptions (class 08), too many connections, a
                // server shutting down or starting, a read-only transaction
                // (a standby), a full disk.
                code.starts_with("08")
                    || ["53300", "57P01", "57P02", "57P03", "25006", "53100"]
                        .contains(&code.as_ref())
            } else {
                // SQLite's extended result code; its low byte is the primary
                // one: BUSY, READONLY, IOERR, FULL, CANTOPEN.
                error.try_downcast_ref::<sqlx::sqlite::SqliteError>().is_some()
                    && code
                        .parse::<u32>()
                        .is_ok_and(|code| [5, 8, 10, 13, 14].contains(&(code & 0xff)))
            }
        }
        _ => false,
    }
}

/// Problem types are `/_/trustpub/problems/<code>`, under trustpub's own
/// path prefix so that they resolve to trustpub on any host routed to it.
pub const PROBLEM_TYPE_BASE: &str = "/_/trustpub/problems/";

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    pub fn config(key: impl Into<String>, reason: impl Into<String>) -> Self {
        Error::Config {
            key: key.into(),
            reason: reason.into(),
        }
    }

    pub fn io(context: impl Into<String>, source: std::io::Error) -> Self {
        Error::Io {
            context: context.into(),
            source,
        }
    }

    /// Whether the client, not the service, is at fault.
    pub fn status_code_is_client_error(&self) -> bool {
        self.kind().0.is_client_error()
    }

    /// The HTTP status the error is answered with.
    pub fn status(&self) -> StatusCode {
        self.kind().0
    }

    /// The problem document's `title`.
    pub fn title(&self) -> &'static str {
        self.kind().2
    }

    /// The stable machine-readable code; part of the public interface.
    pub fn code(&self) -> &'static str {
        self.kind().1
    }

    /// Every code [`Error::code`] can return, once each. The unit test below
    /// keeps it equal to the codes of the variants; `tests/api/docs.rs`
    /// compares it with `spec/openapi.yaml` and `docs/src/errors.md`.
    pub const CODES: &'static [&'static str] = &[
        "not-found",
        "method-not-allowed",
        "unknown-registry",
        "not-discoverable",
        "no-registry-here",
        "missing-discover-key",
        "invalid-query",
        "invalid-path",
        "invalid-payload",
        "unsupported-media-type",
        "payload-too-large",
        "not-acceptable",
        "uri-too-long",
        "headers-too-large",
        "invalid-token",
        "untrusted-issuer",
        "unsupported-algorithm",
        "token-expired",
        "token-not-yet-valid",
        "invalid-audience",
        "token-reused",
        "invalid-publisher",
        "forbidden-event",
        "package-not-allowed",
        "missing-credential",
        "invalid-credential",
        "introspection-unauthorized",
        "path-not-allowed",
        "no-registry-for-request",
        "invalid-upload",
        "upload-too-large",
        "upstream-unavailable",
        "unknown-feature",
        "conflicting-features",
        "feature-not-offered",
        "admin-unauthorized",
        "admin-forbidden",
        "managed-by-config",
        "invalid-configuration",
        "live-credentials",
        "unknown-publisher",
        "unknown-credential",
        "rate-limited",
        "issuer-unavailable",
        "store-unavailable",
        "http-error",
        "internal-error",
    ];

    /// Status, code and title of each kind of error.
    fn kind(&self) -> (StatusCode, &'static str, &'static str) {
        use StatusCode as S;
        match self {
            Error::RouteNotFound(_) => (S::NOT_FOUND, "not-found", "Not found"),
            Error::MethodNotAllowed { .. } => (
                S::METHOD_NOT_ALLOWED,
                "method-not-allowed",
                "Method not allowed",
            ),
            Error::UnknownRegistry(_) => (S::NOT_FOUND, "unknown-registry", "Unknown registry"),
            Error::NotDiscoverable(_) => (
                S::NOT_FOUND,
                "not-discoverable",
                "Trusted Publishing is not offered for this upload URL",
            ),
            Error::NoRegistryHere(_) => (S::NOT_FOUND, "no-registry-here", "No registry here"),
            Error::MissingDiscoverKey => (
                S::BAD_REQUEST,
                "missing-discover-key",
                "Missing discovery key",
            ),
            Error::InvalidQuery(_) => (S::BAD_REQUEST, "invalid-query", "Invalid query string"),
            Error::InvalidPath(_) => (S::BAD_REQUEST, "invalid-path", "Invalid path"),
            Error::InvalidPayload(_) => (S::BAD_REQUEST, "invalid-payload", "Invalid request body"),
            Error::UnsupportedMediaType => (
                S::UNSUPPORTED_MEDIA_TYPE,
                "unsupported-media-type",
                "Unsupported media type",
            ),
            Error::PayloadTooLarge { .. } => (
                S::PAYLOAD_TOO_LARGE,
                "payload-too-large",
                "Request body too large",
            ),
            Error::NotAcceptable => (S::NOT_ACCEPTABLE, "not-acceptable", "Not acceptable"),
            Error::UriTooLong { .. } => (S::URI_TOO_LONG, "uri-too-long", "URI too long"),
            Error::HeadersTooLarge(_) => (
                S::REQUEST_HEADER_FIELDS_TOO_LARGE,
                "headers-too-large",
                "Request header fields too large",
            ),
            Error::Http(status) => (
                *status,
                "http-error",
                status.canonical_reason().unwrap_or("HTTP error"),
            ),
            Error::InvalidToken(_) => (S::UNAUTHORIZED, "invalid-token", "Invalid identity token"),
            Error::UntrustedIssuer(_) => (S::UNAUTHORIZED, "untrusted-issuer", "Untrusted issuer"),
            Error::UnsupportedAlgorithm(_) => (
                S::UNAUTHORIZED,
                "unsupported-algorithm",
                "Unsupported signature algorithm",
            ),
            Error::TokenExpired => (S::UNAUTHORIZED, "token-expired", "Identity token expired"),
            Error::TokenNotYetValid(_) => (
                S::UNAUTHORIZED,
                "token-not-yet-valid",
                "Identity token not yet valid",
            ),
            Error::InvalidAudience(_) => (S::UNAUTHORIZED, "invalid-audience", "Wrong audience"),
            Error::TokenReused => (
                S::UNAUTHORIZED,
                "token-reused",
                "Identity token already used",
            ),
            Error::IssuerUnavailable { .. } => {
                (S::BAD_GATEWAY, "issuer-unavailable", "Issuer unavailable")
            }
            Error::InvalidPublisher(_) => (
                S::FORBIDDEN,
                "invalid-publisher",
                "No matching trusted publisher",
            ),
            Error::ForbiddenEvent(_) => (S::FORBIDDEN, "forbidden-event", "Event not allowed"),
            Error::PackageNotAllowed(_) => {
                (S::FORBIDDEN, "package-not-allowed", "Packages not allowed")
            }
            Error::MissingCredential => {
                (S::UNAUTHORIZED, "missing-credential", "Credential required")
            }
            Error::InvalidCredential => {
                (S::UNAUTHORIZED, "invalid-credential", "Invalid credential")
            }
            Error::IntrospectionUnauthorized(_) => (
                S::UNAUTHORIZED,
                "introspection-unauthorized",
                "Introspection not authorized",
            ),
            Error::PathNotAllowed(_) => (S::FORBIDDEN, "path-not-allowed", "Path not allowed"),
            Error::NoRegistryForRequest(_) => (
                S::FORBIDDEN,
                "no-registry-for-request",
                "No registry for this request",
            ),
            Error::InvalidUpload(_) => (S::BAD_REQUEST, "invalid-upload", "Invalid upload"),
            Error::UploadTooLarge { .. } => {
                (S::PAYLOAD_TOO_LARGE, "upload-too-large", "Upload too large")
            }
            Error::UpstreamUnavailable(_) => (
                S::BAD_GATEWAY,
                "upstream-unavailable",
                "Registry unavailable",
            ),
            Error::UnknownFeature(_) => (S::BAD_REQUEST, "unknown-feature", "Unknown feature"),
            Error::ConflictingFeatures => (
                S::BAD_REQUEST,
                "conflicting-features",
                "Conflicting features",
            ),
            Error::FeatureNotOffered(_) => {
                (S::BAD_REQUEST, "feature-not-offered", "Feature not offered")
            }
            Error::AdminUnauthorized(_) => (
                S::UNAUTHORIZED,
                "admin-unauthorized",
                "Admin token required",
            ),
            Error::AdminForbidden(_) => (S::FORBIDDEN, "admin-forbidden", "Not allowed"),
            Error::ManagedByConfig(_) => (
                S::CONFLICT,
                "managed-by-config",
                "Managed by the configuration file",
            ),
            Error::InvalidSettings { .. } => (
                S::UNPROCESSABLE_ENTITY,
                "invalid-configuration",
                "Invalid configuration",
            ),
            Error::LiveCredentials { .. } => (S::CONFLICT, "live-credentials", "Live credentials"),
            Error::UnknownPublisher(_) => (S::NOT_FOUND, "unknown-publisher", "Unknown publisher"),
            Error::UnknownCredential(_) => {
                (S::NOT_FOUND, "unknown-credential", "Unknown credential")
            }
            Error::RateLimited { .. } => {
                (S::TOO_MANY_REQUESTS, "rate-limited", "Too many requests")
            }
            Error::StoreUnavailable(_) => (
                S::SERVICE_UNAVAILABLE,
                "store-unavailable",
                "Service unavailable",
            ),
            Error::Config { .. }
            | Error::StoreConnect { .. }
            | Error::Store(_)
            | Error::Migrate(_)
            | Error::Io { .. } => (
                S::INTERNAL_SERVER_ERROR,
                "internal-error",
                "Internal server error",
            ),
        }
    }

    /// What the client is told. Internal causes stay in the log.
    pub fn detail(&self) -> String {
        match self.status() {
            StatusCode::INTERNAL_SERVER_ERROR => {
                "the server failed to handle this request; the cause has been logged".to_owned()
            }
            StatusCode::SERVICE_UNAVAILABLE => {
                "the server cannot reach its store; try again later".to_owned()
            }
            StatusCode::BAD_GATEWAY => match self {
                Error::UpstreamUnavailable(_) => {
                    "the registry behind trustpub cannot be reached right now; try again later"
                }
                _ => "the keys of the token's issuer cannot be fetched right now; try again later",
            }
            .to_owned(),
            _ => self.to_string(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// How many variants `Error` has. `variant` below has no wildcard, so a
    /// new variant does not compile until it has a number there: give it the
    /// number `VARIANTS` had, add one to `VARIANTS`, and the test fails until
    /// `one_of_each` has an example of it.
    const VARIANTS: usize = 51;

    fn one_of_each() -> Vec<Error> {
        let text = String::new;
        vec![
            Error::config("key", "reason"),
            Error::RouteNotFound(text()),
            Error::MethodNotAllowed {
                method: text(),
                allowed: text(),
            },
            Error::UnknownRegistry(text()),
            Error::NotDiscoverable(text()),
            Error::NoRegistryHere(text()),
            Error::MissingDiscoverKey,
            Error::InvalidQuery(text()),
            Error::InvalidPath(text()),
            Error::InvalidPayload(text()),
            Error::UnsupportedMediaType,
            Error::PayloadTooLarge { limit: 1 },
            Error::NotAcceptable,
            Error::Http(StatusCode::IM_A_TEAPOT),
            Error::InvalidToken(text()),
            Error::UntrustedIssuer(text()),
            Error::UnsupportedAlgorithm(text()),
            Error::TokenExpired,
            Error::TokenNotYetValid("iat"),
            Error::InvalidAudience(text()),
            Error::TokenReused,
            Error::IssuerUnavailable {
                issuer: text(),
                reason: text(),
            },
            Error::InvalidPublisher(text()),
            Error::ForbiddenEvent(text()),
            Error::PackageNotAllowed(vec![]),
            Error::MissingCredential,
            Error::InvalidCredential,
            Error::IntrospectionUnauthorized(""),
            Error::NoRegistryForRequest(text()),
            Error::PathNotAllowed(text()),
            Error::InvalidUpload(text()),
            Error::UploadTooLarge { limit: 1 },
            Error::UpstreamUnavailable(text()),
            Error::UnknownFeature(text()),
            Error::ConflictingFeatures,
            Error::FeatureNotOffered(text()),
            Error::StoreUnavailable(sqlx::Error::PoolTimedOut),
            Error::Store(sqlx::Error::PoolTimedOut),
            Error::Migrate(sqlx::migrate::MigrateError::VersionMissing(1)),
            Error::io("context", std::io::Error::other("cause")),
            Error::StoreConnect {
                location: text(),
                reason: text(),
            },
            Error::AdminUnauthorized(""),
            Error::AdminForbidden(text()),
            Error::ManagedByConfig(text()),
            Error::InvalidSettings {
                key: text(),
                reason: text(),
            },
            Error::LiveCredentials {
                registry: text(),
                count: 1,
            },
            Error::UnknownPublisher(text()),
            Error::UnknownCredential(text()),
            Error::RateLimited {
                limit: "mints",
                retry_after: 1,
            },
            Error::UriTooLong { limit: 1 },
            Error::HeadersTooLarge(text()),
        ]
    }

    fn variant(error: &Error) -> usize {
        match error {
            Error::Config { .. } => 0,
            Error::RouteNotFound(_) => 1,
            Error::MethodNotAllowed { .. } => 2,
            Error::UnknownRegistry(_) => 3,
            Error::NotDiscoverable(_) => 4,
            Error::NoRegistryHere(_) => 5,
            Error::MissingDiscoverKey => 6,
            Error::InvalidQuery(_) => 7,
            Error::InvalidPath(_) => 8,
            Error::InvalidPayload(_) => 9,
            Error::UnsupportedMediaType => 10,
            Error::PayloadTooLarge { .. } => 11,
            Error::NotAcceptable => 12,
            Error::Http(_) => 13,
            Error::InvalidToken(_) => 14,
            Error::UntrustedIssuer(_) => 15,
            Error::UnsupportedAlgorithm(_) => 16,
            Error::TokenExpired => 17,
            Error::TokenNotYetValid(_) => 18,
            Error::InvalidAudience(_) => 19,
            Error::TokenReused => 20,
            Error::IssuerUnavailable { .. } => 21,
            Error::InvalidPublisher(_) => 22,
            Error::ForbiddenEvent(_) => 23,
            Error::PackageNotAllowed(_) => 24,
            Error::MissingCredential => 25,
            Error::InvalidCredential => 26,
            Error::IntrospectionUnauthorized(_) => 27,
            Error::NoRegistryForRequest(_) => 28,
            Error::PathNotAllowed(_) => 29,
            Error::InvalidUpload(_) => 30,
            Error::UploadTooLarge { .. } => 31,
            Error::UpstreamUnavailable(_) => 32,
            Error::UnknownFeature(_) => 33,
            Error::ConflictingFeatures => 34,
            Error::FeatureNotOffered(_) => 35,
            Error::StoreUnavailable(_) => 36,
            Error::Store(_) => 37,
            Error::Migrate(_) => 38,
            Error::Io { .. } => 39,
            Error::StoreConnect { .. } => 40,
            Error::AdminUnauthorized(_) => 41,
            Error::AdminForbidden(_) => 42,
            Error::ManagedByConfig(_) => 43,
            Error::InvalidSettings { .. } => 44,
            Error::LiveCredentials { .. } => 45,
            Error::UnknownPublisher(_) => 46,
            Error::UnknownCredential(_) => 47,
            Error::RateLimited { .. } => 48,
            Error::UriTooLong { .. } => 49,
            Error::HeadersTooLarge(_) => 50,
        }
    }

    #[test]
    fn codes_lists_exactly_the_codes_of_the_variants() {
        let examples = one_of_each();
        let mut numbers: Vec<usize> = examples.iter().map(variant).collect();
        numbers.sort_unstable();
        numbers.dedup();
        assert_eq!(
            numbers,
            (0..VARIANTS).collect::<Vec<_>>(),
            "one_of_each() must hold one error of each variant"
        );

        let mut returned: Vec<&str> = examples.iter().map(Error::code).collect();
        returned.sort_unstable();
        returned.dedup();
        let mut listed = Error::CODES.to_vec();
        listed.sort_unstable();
        let listed_len = listed.len();
        listed.dedup();
        assert_eq!(listed.len(), listed_len, "Error::CODES lists a code twice");
        assert_eq!(
            listed, returned,
            "Error::CODES must list exactly the codes that Error::code() returns"
        );
    }
}
