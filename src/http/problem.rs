//! The one error type rendered for HTTP: an RFC 9457 problem document with
//! trustpub's `code` and the legacy members today's clients read, and the
//! headers some statuses call for (`Allow`, `WWW-Authenticate`,
//! `Retry-After`).

use actix_web::http::StatusCode;
use actix_web::http::header::{ALLOW, HeaderValue, RETRY_AFTER, WWW_AUTHENTICATE};
use actix_web::{HttpResponse, ResponseError};
use problem_details::ProblemDetails;
use serde::Serialize;

use crate::problem::{Error, PROBLEM_TYPE_BASE};

/// The members a trustpub problem document carries beyond RFC 9457's:
/// our `code`, and PyPI's legacy `message` and `errors`, which twine and
/// gh-action-pypi-publish read (and crash without). Each of `errors` also
/// has crates.io's `detail`, which crates-io-auth-action shows.
#[derive(Debug, Serialize)]
struct Extensions {
    code: &'static str,
    message: String,
    errors: [LegacyError; 1],
}

#[derive(Debug, Serialize)]
struct LegacyError {
    code: &'static str,
    description: String,
    detail: String,
}

impl ResponseError for Error {
    fn status_code(&self) -> StatusCode {
        StatusCode::from_u16(self.status().as_u16()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
    }

    fn error_response(&self) -> HttpResponse {
        let (status, code) = (self.status(), self.code());
        if status.is_server_error() {
            tracing::error!(code, error = %self, cause = ?std::error::Error::source(self), "request failed");
        } else {
            tracing::debug!(code, error = %self, "request refused");
        }
        let detail = self.detail();
        let document = ProblemDetails::from_status_code(status)
            .with_type(
                http::Uri::try_from(format!("{PROBLEM_TYPE_BASE}{code}")).unwrap_or_default(),
            )
            .with_title(self.title())
            .with_detail(detail.clone())
            .with_extensions(Extensions {
                code,
                message: detail.clone(),
                errors: [LegacyError {
                    code,
                    description: detail.clone(),
                    detail,
                }],
            });
        let mut response = document.error_response();
        match self {
            Error::MethodNotAllowed { allowed, .. } => {
                if let Ok(value) = HeaderValue::from_str(allowed) {
                    response.headers_mut().insert(ALLOW, value);
                }
            }
            Error::MissingCredential
            | Error::InvalidCredential
            | Error::IntrospectionUnauthorized(_)
            | Error::AdminUnauthorized(_) => {
                response.headers_mut().insert(
                    WWW_AUTHENTICATE,
                    HeaderValue::from_static("Bearer realm=\"trustpub\""),
                );
            }
            Error::RateLimited { retry_after, .. } => {
                response
                    .headers_mut()
                    .insert(RETRY_AFTER, HeaderValue::from(*retry_after));
            }
            _ => {}
        }
        response
    }
}
