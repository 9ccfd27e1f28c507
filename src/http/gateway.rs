//! The upload gateway's HTTP side: which registry's gateway takes a
//! request, and the relay of the registry's answer. The use case (reading,
//! checking, streaming) is `crate::gateway::upload`.

use actix_web::http::StatusCode;
use actix_web::http::header::{CONTENT_LENGTH, CONTENT_TYPE};
use actix_web::{HttpRequest, HttpResponse, web};

use super::{AppState, Relayed, header_str, presented_credential};
use crate::gateway::{self, Upload};
use crate::problem::{Error, Result};
use crate::registry::Registry;

/// Hands an upload to `registry`'s gateway and relays the registry's
/// answer as it is: its status, `Content-Type` and body.
pub async fn upload(
    http: HttpRequest,
    payload: web::Payload,
    state: &AppState,
    registry: Registry,
) -> Result<HttpResponse> {
    let upload = Upload {
        method: http.method().as_str(),
        path: http.path(),
        query: http.query_string(),
        content_type: header_str(&http, CONTENT_TYPE.as_str()),
        content_length: header_str(&http, CONTENT_LENGTH.as_str()).and_then(|v| v.parse().ok()),
        credential: presented_credential(&http),
        headers: end_to_end_headers(&http),
    };
    let response =
        gateway::upload(&state.store, &state.upstream, &registry, upload, payload).await?;
    let mut relayed = HttpResponse::build(
        StatusCode::from_u16(response.status().as_u16())
            .map_err(|e| Error::UpstreamUnavailable(e.to_string()))?,
    );
    if let Some(content_type) = response.headers().get(CONTENT_TYPE.as_str())
        && let Ok(value) = content_type.to_str()
    {
        relayed.insert_header((CONTENT_TYPE, value.to_owned()));
    }
    let mut relayed = relayed.streaming(response.bytes_stream());
    relayed.extensions_mut().insert(Relayed);
    Ok(relayed)
}

/// Headers that belong to the connection, or that the forwarded request
/// sets itself.
const NOT_FORWARDED: [&str; 10] = [
    "host",
    "content-length",
    "connection",
    "keep-alive",
    "proxy-authenticate",
    "proxy-authorization",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
];

/// The request's end-to-end headers, for an upload that passes through.
fn end_to_end_headers(http: &HttpRequest) -> Vec<(&str, &[u8])> {
    http.headers()
        .iter()
        .filter(|(name, _)| !NOT_FORWARDED.contains(&name.as_str()))
        .map(|(name, value)| (name.as_str(), value.as_bytes()))
        .collect()
}
