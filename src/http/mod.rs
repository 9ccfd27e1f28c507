//! The HTTP surface: one thin handler per endpoint, grouped by family. Every
//! error, including actix-web's own extractor errors, leaves as a problem
//! document.

mod admin;
mod audience;
mod cargo;
mod discovery;
mod exchange;
mod forward_auth;
mod gateway;
mod head_limits;
mod introspect;
mod limits;
mod metrics;
mod negotiation;
mod ops;
mod problem;
mod pypi;
mod rejections;
mod request_span;
mod resolve;

use actix_web::body::EitherBody;
use actix_web::dev::ServiceResponse;
use actix_web::http::header::CONTENT_TYPE;
use actix_web::middleware::{ErrorHandlerResponse, ErrorHandlers, from_fn};
use actix_web::{HttpRequest, ResponseError, web};

use crate::admin::Admin;
use crate::oidc::KeyStore;
use crate::problem::Error;
use crate::store::Store;

pub use admin::LARGEST_PAGE as LARGEST_EVENT_PAGE;
pub use head_limits::check_head;
pub use limits::RateLimits;
pub use metrics::observe;
pub use request_span::RequestSpan;
// For the fuzz targets (`crate::fuzzing`).
pub(crate) use discovery::upload_path_in_query;
pub(crate) use resolve::path_of_uri;

/// What every handler can reach.
pub struct AppState {
    pub store: Store,
    pub keys: KeyStore,
    /// `server.max_body_bytes`, for handlers that read their body themselves.
    pub max_body_bytes: usize,
    /// The client for the registries behind the upload gateway.
    pub upstream: reqwest::Client,
    /// The admin API's tokens.
    pub admin: Admin,
    /// What `/metrics` shows; the store and the key store count in it too.
    pub metrics: crate::metrics::Metrics,
    /// The buckets of the rate limits per client address.
    pub limits: RateLimits,
}

/// What a listener serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Listener {
    /// The public endpoints, with the admin API when `admin`, and
    /// `/metrics` when `metrics` (behind an admin token when `admin`).
    Public { admin: bool, metrics: bool },
    /// The admin API's own listener, with `/metrics`.
    Admin,
}

/// Registers the routes of a listener and the extractor error handlers.
pub fn configure(cfg: &mut web::ServiceConfig, max_body_bytes: usize, listener: Listener) {
    cfg.app_data(extractor_configs(max_body_bytes))
        .app_data(web::QueryConfig::default().error_handler(|e, _| rejections::query(e).into()))
        .app_data(
            web::PathConfig::default().error_handler(|e, req| rejections::path(e, req).into()),
        )
        .service(ops::healthz())
        .service(ops::readyz());
    match listener {
        Listener::Admin => {
            cfg.service(metrics::resource(false))
                .service(admin::scope().wrap(from_fn(negotiation::negotiate)))
                .default_service(web::to(not_found));
        }
        Listener::Public { admin, metrics } => {
            if metrics {
                cfg.service(metrics::resource(admin));
            }
            if admin {
                cfg.service(admin::scope().wrap(from_fn(negotiation::negotiate)));
            } else {
                cfg.service(admin::absent());
            }
            public(cfg, max_body_bytes);
        }
    }
}

/// The public endpoints.
fn public(cfg: &mut web::ServiceConfig, max_body_bytes: usize) {
    cfg.service(discovery::resource().wrap(from_fn(negotiation::negotiate)))
        // Before the negotiated scope: a proxy forwards the checked request's
        // own `Accept`, which says nothing about this answer.
        .service(forward_auth::resource())
        .service(
            web::scope("/_/trustpub")
                .wrap(from_fn(negotiation::negotiate))
                .service(audience::resource())
                .service(exchange::resource())
                .service(exchange::burn_resource())
                .service(introspect::resource()),
        )
        .service(
            pypi::scope(extractor_configs(max_body_bytes)).wrap(from_fn(negotiation::negotiate)),
        )
        .service(
            cargo::resource(extractor_configs(max_body_bytes))
                .wrap(from_fn(negotiation::negotiate)),
        )
        .default_service(web::to(fallback));
}

fn extractor_configs(max_body_bytes: usize) -> web::JsonConfig {
    web::JsonConfig::default()
        .limit(max_body_bytes)
        .error_handler(move |error, _| rejections::json(error, max_body_bytes).into())
}

/// 404 for a path without an endpoint.
async fn not_found(http: HttpRequest) -> Result<actix_web::HttpResponse, Error> {
    Err(Error::RouteNotFound(http.path().to_owned()))
}

/// Paths of no endpoint: uploads, when a registry's gateway takes them
/// there; otherwise 404.
async fn fallback(
    http: HttpRequest,
    payload: web::Payload,
    state: web::Data<AppState>,
) -> Result<actix_web::HttpResponse, Error> {
    match resolve::by_gateway_path(&http, &state).await? {
        Some(registry) => gateway::upload(http, payload, &state, registry).await,
        None => not_found(http).await,
    }
}

/// The user name Python upload clients send with a token as password.
const TOKEN_USER: &str = "__token__";

/// The upload credential a client presents in `Authorization`: Bearer, Basic
/// with the user `__token__` (Python upload clients), or the bare credential
/// (cargo).
fn presented_credential(http: &HttpRequest) -> Result<String, Error> {
    use base64::Engine;
    let authorization = actix_web::http::header::AUTHORIZATION;
    if let Some(token) = scheme_value(http, authorization.clone(), "bearer") {
        return Ok(token.to_owned());
    }
    if let Some(basic) = scheme_value(http, authorization.clone(), "basic") {
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(basic)
            .ok()
            .and_then(|bytes| String::from_utf8(bytes).ok());
        return match decoded.as_deref().and_then(|d| d.split_once(':')) {
            Some((TOKEN_USER, password)) if !password.is_empty() => Ok(password.to_owned()),
            _ => Err(Error::MissingCredential),
        };
    }
    match header_str(http, authorization.as_str()).map(str::trim) {
        Some(bare)
            if !bare.is_empty()
                && !bare.contains(' ')
                && !["bearer", "basic"]
                    .iter()
                    .any(|s| bare.eq_ignore_ascii_case(s)) =>
        {
            Ok(bare.to_owned())
        }
        _ => Err(Error::MissingCredential),
    }
}

/// A request header as text, when present and readable.
fn header_str<'r>(http: &'r HttpRequest, name: &str) -> Option<&'r str> {
    http.headers().get(name).and_then(|v| v.to_str().ok())
}

/// The value after `scheme` in an `Authorization`-style header, the scheme
/// compared ignoring case.
fn scheme_value<'r>(
    http: &'r HttpRequest,
    header: actix_web::http::header::HeaderName,
    scheme: &str,
) -> Option<&'r str> {
    let value = header_str(http, header.as_str())?.trim();
    let (given, rest) = value.split_once(' ')?;
    let rest = rest.trim();
    (given.eq_ignore_ascii_case(scheme) && !rest.is_empty()).then_some(rest)
}

/// A resource whose unmatched methods are answered with 405 and `Allow`.
fn endpoint(path: &str, allowed: &'static str) -> actix_web::Resource {
    web::resource(path).default_service(web::to(move |req: HttpRequest| async move {
        Err::<actix_web::HttpResponse, _>(Error::MethodNotAllowed {
            method: req.method().to_string(),
            allowed: allowed.to_owned(),
        })
    }))
}

/// Marks a response relayed from a registry behind the gateway: its errors
/// are the registry's own and reach the client as they are.
pub(crate) struct Relayed;

/// The safety net: an error response that is not yet a problem document
/// (one produced inside actix-web itself) is replaced by one with its status.
pub fn problem_safety_net<B: 'static>() -> ErrorHandlers<B> {
    ErrorHandlers::new().default_handler(|response: ServiceResponse<B>| {
        let is_problem = response
            .headers()
            .get(CONTENT_TYPE)
            .is_some_and(|v| v.as_bytes().starts_with(b"application/problem+json"));
        let is_relayed = response.response().extensions().contains::<Relayed>();
        if is_problem || is_relayed {
            return Ok(ErrorHandlerResponse::Response(
                response.map_into_left_body(),
            ));
        }
        let status = response.status();
        let (request, _) = response.into_parts();
        let replacement = Error::Http(
            http::StatusCode::from_u16(status.as_u16())
                .unwrap_or(http::StatusCode::INTERNAL_SERVER_ERROR),
        )
        .error_response();
        Ok(ErrorHandlerResponse::Response(ServiceResponse::<
            EitherBody<B>,
        >::new(
            request,
            replacement.map_into_right_body(),
        )))
    })
}
