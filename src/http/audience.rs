//! PEP 807 audience: `GET /_/trustpub/{registry}/audience`.

use actix_web::{HttpResponse, web};
use serde_json::json;

use super::{AppState, endpoint, resolve};
use crate::domain::RegistryName;
use crate::problem::Result;

pub fn resource() -> actix_web::Resource {
    endpoint("/{registry}/audience", "GET").route(web::get().to(audience))
}

/// A name that cannot be a registry's is a malformed path (400); a valid
/// name no registry has is 404.
#[tracing::instrument(skip_all, fields(registry = %name))]
async fn audience(
    name: web::Path<RegistryName>,
    state: web::Data<AppState>,
) -> Result<HttpResponse> {
    let registry = resolve::by_name(&state, &name).await?;
    Ok(HttpResponse::Ok().json(json!({ "audience": registry.audience.as_str() })))
}
