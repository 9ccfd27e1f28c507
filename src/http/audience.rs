//! PEP 807 audience: `GET /_/trustpub/{registry}/audience`.

use actix_web::{HttpResponse, web};
use serde_json::json;

use super::{AppState, endpoint};
use crate::problem::{Error, Result};
use crate::registry::RegistryName;

pub fn resource() -> actix_web::Resource {
    endpoint("/{registry}/audience", "GET").route(web::get().to(audience))
}

#[tracing::instrument(skip_all, fields(registry = %name))]
/// A name that cannot be a registry's is a malformed path (400); a valid
/// name no registry has is 404.
async fn audience(
    name: web::Path<RegistryName>,
    state: web::Data<AppState>,
) -> Result<HttpResponse> {
    let registry = state
        .store
        .registry(name.as_str())
        .await?
        .ok_or_else(|| Error::UnknownRegistry(name.into_inner().into()))?;
    Ok(HttpResponse::Ok().json(json!({ "audience": registry.audience.as_str() })))
}
