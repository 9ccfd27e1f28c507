//! Introspection for registries, in the shape of RFC 7662:
//! `POST /_/trustpub/{registry}/introspect`.

use actix_web::http::header::{AUTHORIZATION, CONTENT_TYPE};
use actix_web::{HttpRequest, HttpResponse, web};
use serde::Deserialize;
use serde_json::json;

use super::{AppState, endpoint, resolve, scheme_value};
use crate::domain::RegistryName;
use crate::problem::{Error, Result};
use crate::registry::Registry;
use crate::store::now;
use crate::tokens::{self, CheckRequest, Secret};

pub fn resource() -> actix_web::Resource {
    endpoint("/{registry}/introspect", "POST").route(web::post().to(introspect))
}

/// What a registry asks. Its `Debug` leaves the credential out.
#[derive(Debug, Deserialize)]
struct IntrospectRequest {
    token: Secret,
    #[serde(default)]
    package: Option<String>,
    #[serde(default)]
    consume: bool,
}

#[tracing::instrument(skip_all, fields(registry = %name))]
async fn introspect(
    name: web::Path<RegistryName>,
    http: HttpRequest,
    body: web::Payload,
    state: web::Data<AppState>,
) -> Result<HttpResponse> {
    let registry = resolve::by_name(&state, &name).await?;
    state
        .limits
        .check(&http, &registry, answer(&http, body, &state, &registry))
        .await
}

/// The answer, and whether the credential was active.
async fn answer(
    http: &HttpRequest,
    body: web::Payload,
    state: &AppState,
    registry: &Registry,
) -> Result<(HttpResponse, bool)> {
    let digest =
        registry
            .introspect_secret_sha256
            .as_ref()
            .ok_or(Error::IntrospectionUnauthorized(
                "introspection is not enabled for this registry",
            ))?;
    let secret = scheme_value(http, AUTHORIZATION, "bearer").ok_or(
        Error::IntrospectionUnauthorized("send the registry's secret as `Authorization: Bearer`"),
    )?;
    if !digest.matches(secret) {
        return Err(Error::IntrospectionUnauthorized(
            "the bearer secret is wrong",
        ));
    }

    let limit = state.max_body_bytes;
    let body = body
        .to_bytes_limited(limit)
        .await
        .map_err(|_| Error::PayloadTooLarge { limit })?
        .map_err(|e| super::rejections::unreadable(e.as_error(), limit))?;
    let request = parse(http, &body)?;
    let outcome = tokens::check(
        &state.store,
        registry,
        request.token.expose(),
        CheckRequest {
            package: request.package.as_deref(),
            consume: request.consume,
            via: "introspect",
            kept: true,
        },
        now(),
    )
    .await?;
    let active = outcome.is_ok();
    let response = HttpResponse::Ok().json(match outcome {
        Ok(active) => json!({
            "active": true,
            "registry": active.registry,
            "packages": active.packages,
            "expires": active.expires,
            "single_use": active.single_use,
            "publisher": active.publisher,
        }),
        Err(_) => json!({ "active": false }),
    });
    Ok((response, active))
}

/// The body as JSON, or form-encoded as RFC 7662 sends it.
fn parse(http: &HttpRequest, body: &[u8]) -> Result<IntrospectRequest> {
    let media = http
        .headers()
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .map(|v| v.trim().to_ascii_lowercase())
        .unwrap_or_default();
    if media == "application/x-www-form-urlencoded" {
        serde_urlencoded::from_bytes(body)
            .map_err(|e| Error::InvalidPayload(super::rejections::form_body(&e)))
    } else if media.ends_with("/json") || media.ends_with("+json") {
        serde_json::from_slice(body)
            .map_err(|e| Error::InvalidPayload(super::rejections::json_body(&e)))
    } else {
        Err(Error::UnsupportedMediaType)
    }
}
