//! The limits on a request's head (`[server]` `max_uri_bytes`,
//! `max_header_bytes`, `max_headers`), answered with problem documents.
//! They sit below the HTTP parser's own, fixed limits, which answer with an
//! empty body before any middleware runs (documented in `spec/openapi.yaml`
//! and `docs/src/errors.md`).

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::middleware::Next;

use crate::config::HeadLimits;
use crate::problem::Error;

/// Refuses a request whose target or headers exceed `limits`, before any
/// handler reads it.
pub async fn check_head(
    limits: HeadLimits,
    request: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    if let Some(error) = refusal(&request, limits) {
        return Err(error.into());
    }
    next.call(request).await
}

/// What is over a limit, if anything.
fn refusal(request: &ServiceRequest, limits: HeadLimits) -> Option<Error> {
    let target = request
        .uri()
        .path_and_query()
        .map_or(0, |p| p.as_str().len());
    if target > limits.uri_bytes {
        return Some(Error::UriTooLong {
            limit: limits.uri_bytes,
        });
    }
    let headers = request.headers();
    if headers.len() > limits.headers {
        return Some(Error::HeadersTooLarge(format!(
            "{} header lines",
            limits.headers
        )));
    }
    // Each line as sent: name, ": ", value, CRLF.
    let bytes: usize = headers
        .iter()
        .map(|(name, value)| name.as_str().len() + value.len() + 4)
        .sum();
    (bytes > limits.header_bytes)
        .then(|| Error::HeadersTooLarge(format!("{} bytes in all", limits.header_bytes)))
}
