//! Operations: liveness and readiness.

use actix_web::{HttpResponse, web};
use serde_json::json;

use super::{AppState, endpoint};
use crate::problem::Result;

/// `GET /healthz`: the process is up.
pub fn healthz() -> actix_web::Resource {
    endpoint("/healthz", "GET")
        .route(web::get().to(|| async { HttpResponse::Ok().json(json!({"status": "ok"})) }))
}

/// `GET /readyz`: the store answers; 503 problem otherwise.
pub fn readyz() -> actix_web::Resource {
    endpoint("/readyz", "GET").route(web::get().to(ready))
}

async fn ready(state: web::Data<AppState>) -> Result<HttpResponse> {
    state.store.ping().await?;
    Ok(HttpResponse::Ok().json(json!({"status": "ready"})))
}
