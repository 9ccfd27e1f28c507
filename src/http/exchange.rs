//! PEP 807 token minting, `POST /_/trustpub/{registry}/mint-token`, and its
//! counterpart, `POST /_/trustpub/{registry}/burn-token`.

use actix_web::{HttpRequest, HttpResponse, web};
use serde::Deserialize;

use super::{AppState, endpoint, resolve};
use crate::domain::RegistryName;
use crate::exchange::{self, MintRequest, Minted};
use crate::problem::Result;
use crate::registry::Registry;
use crate::store::now;
use crate::tokens::{self, Secret};

pub fn resource() -> actix_web::Resource {
    endpoint("/{registry}/mint-token", "POST").route(web::post().to(mint))
}

pub fn burn_resource() -> actix_web::Resource {
    endpoint("/{registry}/burn-token", "POST").route(web::post().to(burn))
}

#[tracing::instrument(skip_all, fields(registry = %name))]
async fn mint(
    http: HttpRequest,
    name: web::Path<RegistryName>,
    request: web::Json<MintRequest>,
    state: web::Data<AppState>,
) -> Result<HttpResponse> {
    let registry = resolve::by_name(&state, &name).await?;
    let minted = limited_mint(&http, &state, &registry, &request).await?;
    Ok(HttpResponse::Ok().json(minted))
}

/// Mints for the client of `http`, once its mint bucket for the registry
/// has a token; every mint path goes through here.
pub(super) async fn limited_mint(
    http: &HttpRequest,
    state: &AppState,
    registry: &Registry,
    request: &MintRequest,
) -> Result<Minted> {
    state.limits.mint(http, registry)?;
    exchange::mint(&state.store, &state.keys, registry, request, now()).await
}

/// A burn request: the upload credential to revoke. PyPI's
/// `/_/oidc/burn-token` takes the same body.
#[derive(Debug, Deserialize)]
pub(super) struct BurnRequest {
    pub(super) token: Secret,
}

/// 202 whether or not the credential existed: the answer is no oracle.
#[tracing::instrument(skip_all, fields(registry = %name))]
async fn burn(
    name: web::Path<RegistryName>,
    request: web::Json<BurnRequest>,
    state: web::Data<AppState>,
) -> Result<HttpResponse> {
    let registry = resolve::by_name(&state, &name).await?;
    tokens::revoke(&state.store, &registry, request.token.expose(), now()).await?;
    Ok(HttpResponse::Accepted().finish())
}
