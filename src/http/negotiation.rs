//! Content negotiation for the protocol endpoints (PEP 807 "Constraints"):
//! the vendor type, `application/json`, `*/*`, `application/*` and a missing
//! `Accept` are served; any other media type gets 406.

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::{ACCEPT, CONTENT_TYPE, HeaderValue};
use actix_web::middleware::Next;

use crate::problem::Error;

/// PEP 807's media type.
pub const PYTP_V1: &str = "application/vnd.pypi.pytp.v1+json";

const SERVED: [&str; 4] = [PYTP_V1, "application/json", "*/*", "application/*"];

/// Refuses requests whose `Accept` names nothing we serve, and labels
/// successful JSON answers with the vendor type when the client asked for it
/// (or sent no `Accept`, which PEP 807 says means the same).
pub async fn negotiate(
    request: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let accept = request
        .headers()
        .get_all(ACCEPT)
        .filter_map(|v| v.to_str().ok())
        .collect::<Vec<_>>()
        .join(",");
    let wants_vendor_type = match accepted(&accept) {
        None => true,
        Some(ranges) if ranges.is_empty() => return Err(Error::NotAcceptable.into()),
        Some(ranges) => ranges.contains(&PYTP_V1),
    };
    let mut response = next.call(request).await?;
    let is_json = response
        .headers()
        .get(CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes() == b"application/json");
    if wants_vendor_type && response.status().is_success() && is_json {
        response
            .headers_mut()
            .insert(CONTENT_TYPE, HeaderValue::from_static(PYTP_V1));
    }
    Ok(response)
}

// Not actix-web's `header::Accept`: its ranking serves `application/json, <vendor type>` as JSON.
/// The served media ranges an `Accept` value allows, or `None` when the
/// header is absent or blank. Ranges with `q=0` are refusals, not offers.
fn accepted(accept: &str) -> Option<Vec<&'static str>> {
    if accept.trim().is_empty() {
        return None;
    }
    let mut found = Vec::new();
    for range in accept.split(',') {
        let mut parts = range.split(';');
        let media = parts.next().unwrap_or_default().trim().to_ascii_lowercase();
        let refused = parts.any(|p| {
            p.trim()
                .strip_prefix("q=")
                .and_then(|q| q.trim().parse::<f32>().ok())
                .is_some_and(|q| q <= 0.0)
        });
        if let Some(served) = SERVED.iter().find(|s| **s == media)
            && !refused
        {
            found.push(*served);
        }
    }
    Some(found)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accept_values() {
        assert_eq!(accepted(""), None);
        assert_eq!(accepted("*/*"), Some(vec!["*/*"]));
        assert_eq!(
            accepted("Application/JSON; charset=utf-8"),
            Some(vec!["application/json"])
        );
        assert_eq!(
            accepted("text/html, application/*;q=0.1"),
            Some(vec!["application/*"])
        );
        assert_eq!(accepted("text/html"), Some(vec![]));
        assert_eq!(accepted("application/json;q=0"), Some(vec![]));
        assert_eq!(
            accepted(&format!("{PYTP_V1}, */*;q=0.5")),
            Some(vec![PYTP_V1, "*/*"])
        );
    }
}
