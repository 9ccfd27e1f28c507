//! PEP 807 token minting: `POST /_/trustpub/{registry}/mint-token`.

use actix_web::{HttpResponse, web};

use super::{AppState, endpoint, load_registry};
use crate::exchange::{self, MintRequest};
use crate::problem::Result;
use crate::registry::RegistryName;
use crate::store::now;

pub fn resource() -> actix_web::Resource {
    endpoint("/{registry}/mint-token", "POST").route(web::post().to(mint))
}

#[tracing::instrument(skip_all, fields(registry = %name))]
async fn mint(
    name: web::Path<RegistryName>,
    request: web::Json<MintRequest>,
    state: web::Data<AppState>,
) -> Result<HttpResponse> {
    let registry = load_registry(&state, &name).await?;
    let minted = exchange::mint(&state.store, &state.keys, &registry, &request, now()).await?;
    Ok(HttpResponse::Ok().json(minted))
}
