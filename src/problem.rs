//! The one error type of trustpub, and its rendering as an RFC 9457 problem
//! document (`application/problem+json`).
//!
//! Every document carries `type`, `title`, `status`, `detail` and a stable,
//! machine-readable `code`. The `type` is the relative reference
//! `/_/trustpub/problems/<code>`; the codes are listed in the README and in
//! `spec/`.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, ResponseError};
use problem_details::ProblemDetails;
use serde::Serialize;

/// Everything that can go wrong in trustpub, from configuration at start-up to
/// a malformed request.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Invalid configuration: names the key and the reason.
    #[error("invalid configuration: {key}: {reason}")]
    Config { key: String, reason: String },

    #[error("no such endpoint: {0}")]
    RouteNotFound(String),
    #[error("method {method} is not allowed here; allowed: {allowed}")]
    MethodNotAllowed { method: String, allowed: String },
    #[error("no registry named {0:?}")]
    UnknownRegistry(String),
    #[error("no registry offers Trusted Publishing for the upload path {0:?}")]
    NotDiscoverable(String),
    #[error("the `discover` query parameter is missing or empty")]
    MissingDiscoverKey,
    #[error("the query string is invalid: {0}")]
    InvalidQuery(String),
    #[error("the path is invalid: {0}")]
    InvalidPath(String),
    #[error("the request body is not valid JSON for this endpoint: {0}")]
    InvalidJson(String),
    #[error("the request body must be JSON (Content-Type: application/json)")]
    UnsupportedMediaType,
    #[error("the request body is larger than the limit of {limit} bytes")]
    PayloadTooLarge { limit: usize },
    #[error(
        "none of the media types in the Accept header can be served; \
         accepted: application/vnd.pypi.pytp.v1+json, application/json, */*"
    )]
    NotAcceptable,
    /// An error response produced inside actix-web itself, re-rendered.
    #[error("the request could not be handled (HTTP {})", .0.as_u16())]
    Http(StatusCode),
    #[error("the store is not reachable")]
    StoreUnavailable(#[source] sqlx::Error),

    #[error("database error: {0}")]
    Store(#[from] sqlx::Error),
    #[error("database migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("{context}: {source}")]
    Io {
        context: String,
        #[source]
        source: std::io::Error,
    },
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

    /// The stable machine-readable code; part of the public interface.
    pub fn code(&self) -> &'static str {
        match self {
            Error::RouteNotFound(_) => "not-found",
            Error::MethodNotAllowed { .. } => "method-not-allowed",
            Error::UnknownRegistry(_) => "unknown-registry",
            Error::NotDiscoverable(_) => "not-discoverable",
            Error::MissingDiscoverKey => "missing-discover-key",
            Error::InvalidQuery(_) => "invalid-query",
            Error::InvalidPath(_) => "invalid-path",
            Error::InvalidJson(_) => "invalid-json",
            Error::UnsupportedMediaType => "unsupported-media-type",
            Error::PayloadTooLarge { .. } => "payload-too-large",
            Error::NotAcceptable => "not-acceptable",
            Error::StoreUnavailable(_) => "store-unavailable",
            Error::Http(_) => "http-error",
            Error::Config { .. } | Error::Store(_) | Error::Migrate(_) | Error::Io { .. } => {
                "internal-error"
            }
        }
    }

    fn title(&self) -> &'static str {
        match self {
            Error::RouteNotFound(_) => "Not found",
            Error::MethodNotAllowed { .. } => "Method not allowed",
            Error::UnknownRegistry(_) => "Unknown registry",
            Error::NotDiscoverable(_) => "Trusted Publishing is not offered for this upload URL",
            Error::MissingDiscoverKey => "Missing discovery key",
            Error::InvalidQuery(_) => "Invalid query string",
            Error::InvalidPath(_) => "Invalid path",
            Error::InvalidJson(_) => "Invalid JSON body",
            Error::UnsupportedMediaType => "Unsupported media type",
            Error::PayloadTooLarge { .. } => "Request body too large",
            Error::NotAcceptable => "Not acceptable",
            Error::StoreUnavailable(_) => "Service unavailable",
            Error::Http(status) => status.canonical_reason().unwrap_or("HTTP error"),
            Error::Config { .. } | Error::Store(_) | Error::Migrate(_) | Error::Io { .. } => {
                "Internal server error"
            }
        }
    }

    /// What the client is told. Internal causes stay in the log.
    fn detail(&self) -> String {
        match self.status_code() {
            StatusCode::INTERNAL_SERVER_ERROR => {
                "the server failed to handle this request; the cause has been logged".to_owned()
            }
            StatusCode::SERVICE_UNAVAILABLE => {
                "the server cannot reach its store; try again later".to_owned()
            }
            _ => self.to_string(),
        }
    }
}

/// The members a trustpub problem document carries beyond RFC 9457's.
#[derive(Debug, Serialize)]
struct Extensions {
    code: &'static str,
}

impl ResponseError for Error {
    fn status_code(&self) -> StatusCode {
        match self {
            Error::RouteNotFound(_) | Error::UnknownRegistry(_) | Error::NotDiscoverable(_) => {
                StatusCode::NOT_FOUND
            }
            Error::MethodNotAllowed { .. } => StatusCode::METHOD_NOT_ALLOWED,
            Error::MissingDiscoverKey
            | Error::InvalidQuery(_)
            | Error::InvalidPath(_)
            | Error::InvalidJson(_) => StatusCode::BAD_REQUEST,
            Error::UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Error::PayloadTooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            Error::NotAcceptable => StatusCode::NOT_ACCEPTABLE,
            Error::StoreUnavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            Error::Http(status) => *status,
            Error::Config { .. } | Error::Store(_) | Error::Migrate(_) | Error::Io { .. } => {
                StatusCode::INTERNAL_SERVER_ERROR
            }
        }
    }

    fn error_response(&self) -> HttpResponse {
        let status = self.status_code();
        if status.is_server_error() {
            tracing::error!(code = self.code(), error = %self, cause = ?std::error::Error::source(self), "request failed");
        } else {
            tracing::debug!(code = self.code(), error = %self, "request refused");
        }
        let code = self.code();
        let document = ProblemDetails::from_status_code(
            http::StatusCode::from_u16(status.as_u16()).unwrap_or(http::StatusCode::BAD_REQUEST),
        )
        .with_type(http::Uri::try_from(format!("{PROBLEM_TYPE_BASE}{code}")).unwrap_or_default())
        .with_title(self.title())
        .with_detail(self.detail())
        .with_extensions(Extensions { code });
        let mut response = document.error_response();
        if let Error::MethodNotAllowed { allowed, .. } = self
            && let Ok(value) = actix_web::http::header::HeaderValue::from_str(allowed)
        {
            response
                .headers_mut()
                .insert(actix_web::http::header::ALLOW, value);
        }
        response
    }
}
