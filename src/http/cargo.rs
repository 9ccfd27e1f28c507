//! The crates.io Trusted Publishing protocol, for cargo registries, as
//! crates-io-auth-action speaks it: `POST {registry URL}/api/v1/trusted_publishing/tokens`
//! with `{"jwt"}` answers `{"token"}`. The registry is the cargo registry
//! whose URL has the request's host and the path before `/api/v1/`.

use actix_web::{HttpRequest, HttpResponse, web};
use serde::Deserialize;
use serde_json::json;

use super::{AppState, endpoint, request_authority};
use crate::exchange::{self, MintRequest};
use crate::problem::{Error, Result};
use crate::registry::{Registry, discovery_path};
use crate::store::now;

/// The tokens resource, under any path prefix (a registry URL may have a
/// path). Bodies are read as JSON whatever their `Content-Type`.
pub fn resource(json: web::JsonConfig) -> actix_web::Resource {
    endpoint(
        "/{prefix:.*}api/v1/trusted_publishing/tokens",
        "POST, DELETE",
    )
    .app_data(json.content_type_required(false))
    .route(web::post().to(mint))
}

/// crates.io's request: the CI identity token as `jwt`.
#[derive(Deserialize)]
struct TokenRequest {
    jwt: String,
}

#[tracing::instrument(skip_all, fields(registry))]
async fn mint(
    request: HttpRequest,
    prefix: web::Path<String>,
    body: web::Json<TokenRequest>,
    state: web::Data<AppState>,
) -> Result<HttpResponse> {
    let registry = cargo_registry(&request, &prefix, &state).await?;
    tracing::Span::current().record("registry", registry.name.as_str());
    let mint_request = MintRequest {
        token: body.into_inner().jwt,
        features: None,
        packages: None,
    };
    let minted = exchange::mint(&state.store, &state.keys, &registry, &mint_request, now()).await?;
    Ok(HttpResponse::Ok().json(json!({ "token": minted.token, "expires": minted.expires })))
}

/// The cargo registry at the request's host and `/{prefix}`.
async fn cargo_registry(request: &HttpRequest, prefix: &str, state: &AppState) -> Result<Registry> {
    let authority = request_authority(request);
    let path = discovery_path(&format!("/{prefix}"));
    state
        .store
        .cargo_registry_at(&authority, &path)
        .await?
        .ok_or_else(|| {
            Error::NoRegistryHere(format!("no cargo registry has the URL {authority}{path}"))
        })
}
