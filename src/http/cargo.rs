//! The crates.io Trusted Publishing protocol, for cargo registries, as
//! crates-io-auth-action speaks it: `POST {registry URL}/api/v1/trusted_publishing/tokens`
//! with `{"jwt"}` answers `{"token"}`; `DELETE` on the same path with
//! `Authorization: Bearer <credential>` revokes the credential (the action
//! does it when the job ends). The registry is the cargo registry whose URL
//! has the request's host and the path before `/api/v1/`.

use actix_web::http::header::AUTHORIZATION;
use actix_web::{HttpRequest, HttpResponse, web};
use serde::Deserialize;
use serde_json::json;

use super::exchange::limited_mint;
use super::{AppState, endpoint, resolve, scheme_value};
use crate::exchange::MintRequest;
use crate::problem::{Error, Result};
use crate::store::now;
use crate::tokens::{self, Secret};

/// The tokens resource, under any path prefix (a registry URL may have a
/// path). Bodies are read as JSON whatever their `Content-Type`.
pub fn resource(json: web::JsonConfig) -> actix_web::Resource {
    endpoint(
        "/{prefix:.*}api/v1/trusted_publishing/tokens",
        "POST, DELETE",
    )
    .app_data(json.content_type_required(false))
    .route(web::post().to(mint))
    .route(web::delete().to(revoke))
}

/// crates.io's request: the CI identity token as `jwt`.
#[derive(Debug, Deserialize)]
struct TokenRequest {
    jwt: Secret,
}

#[tracing::instrument(skip_all, fields(registry))]
async fn mint(
    request: HttpRequest,
    prefix: web::Path<String>,
    body: web::Json<TokenRequest>,
    state: web::Data<AppState>,
) -> Result<HttpResponse> {
    let registry = resolve::by_cargo_url(&request, &prefix, &state).await?;
    tracing::Span::current().record("registry", registry.name.as_str());
    let mint_request = MintRequest {
        token: body.into_inner().jwt,
        features: None,
        packages: None,
    };
    let minted = limited_mint(&request, &state, &registry, &mint_request).await?;
    Ok(HttpResponse::Ok().json(json!({ "token": minted.token, "expires": minted.expires })))
}

/// 204 whether or not the credential existed (crates.io answers 204 too):
/// the answer is no oracle. Without a bearer credential, 401.
#[tracing::instrument(skip_all, fields(registry))]
async fn revoke(
    request: HttpRequest,
    prefix: web::Path<String>,
    state: web::Data<AppState>,
) -> Result<HttpResponse> {
    let registry = resolve::by_cargo_url(&request, &prefix, &state).await?;
    tracing::Span::current().record("registry", registry.name.as_str());
    let credential =
        scheme_value(&request, AUTHORIZATION, "bearer").ok_or(Error::MissingCredential)?;
    tokens::revoke(&state.store, &registry, credential, now()).await?;
    Ok(HttpResponse::NoContent().finish())
}
