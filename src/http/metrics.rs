//! `GET /metrics`, and the middleware that counts every request by its
//! route pattern (never its raw path) and status.

use std::time::Instant;

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::middleware::Next;
use actix_web::{HttpRequest, HttpResponse, web};

use super::{AppState, endpoint};
use crate::metrics::CONTENT_TYPE;
use crate::problem::{Error, Result};
use crate::store::now;

/// The scrape endpoint; on the main listener next to the admin API, it
/// wants an admin token as the admin API does.
pub fn resource(token_required: bool) -> actix_web::Resource {
    endpoint("/metrics", "GET").route(web::get().to(
        move |http: HttpRequest, state: web::Data<AppState>| scrape(http, state, token_required),
    ))
}

async fn scrape(
    http: HttpRequest,
    state: web::Data<AppState>,
    token_required: bool,
) -> Result<HttpResponse> {
    if token_required {
        super::admin::operator(&http, &state)?;
    }
    // Without the store, the rest still tells what happened: the gauges keep
    // their last values.
    match state.store.live_credential_counts(now()).await {
        Ok(counts) => state.metrics.set_live_credentials(&counts),
        Err(error) => {
            tracing::warn!(%error, "counting live credentials for /metrics failed");
            state.metrics.store_error("scrape");
        }
    }
    Ok(HttpResponse::Ok()
        .content_type(CONTENT_TYPE)
        .body(state.metrics.render()))
}

/// The label of requests that match no route: gateway uploads and paths of
/// no endpoint.
const NO_ROUTE: &str = "(none)";

/// Counts the request and its time to the response's head; a store failure
/// or a rate limit that answered it is counted too.
pub async fn observe(
    request: ServiceRequest,
    next: Next<impl MessageBody>,
) -> std::result::Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let started = Instant::now();
    let route = request
        .match_pattern()
        .unwrap_or_else(|| NO_ROUTE.to_owned());
    let metrics = request
        .app_data::<web::Data<AppState>>()
        .map(|state| state.metrics.clone());
    let answered = next.call(request).await;
    let Some(metrics) = metrics else {
        return answered;
    };
    let (status, error) = match &answered {
        Ok(response) => (response.status(), response.response().error()),
        Err(error) => (error.as_response_error().status_code(), Some(error)),
    };
    metrics.request(&route, status.as_u16(), started.elapsed().as_secs_f64());
    match error.and_then(|e| e.as_error::<Error>()) {
        Some(Error::Store(_) | Error::StoreUnavailable(_)) => metrics.store_error("request"),
        Some(Error::RateLimited { limit, .. }) => metrics.rate_limited(limit),
        _ => {}
    }
    answered
}
