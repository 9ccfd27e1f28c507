//! PEP 807 audience: `GET /_/trustpub/{registry}/audience`.

use actix_web::{HttpResponse, web};
use serde_json::json;

use super::{AppState, endpoint};
use crate::problem::{Error, Result};

pub fn resource() -> actix_web::Resource {
    endpoint("/{registry}/audience", "GET").route(web::get().to(audience))
}

#[tracing::instrument(skip_all, fields(registry = %name))]
async fn audience(name: web::Path<String>, state: web::Data<AppState>) -> Result<HttpResponse> {
    let registry = state
        .store
        .registry(&name)
        .await?
        .ok_or_else(|| Error::UnknownRegistry(name.into_inner()))?;
    Ok(HttpResponse::Ok().json(json!({ "audience": registry.audience.as_str() })))
}
