//! PyPI's implicit Trusted Publishing paths at the host root, what uv,
//! twine, pdm, maturin and gh-action-pypi-publish call today:
//! `GET /_/oidc/audience`, `POST /_/oidc/mint-token` (and maturin's
//! `/_/oidc/github/mint-token`), and `POST /_/oidc/burn-token`, which uv
//! calls after its upload, whether or not the upload succeeded. The host
//! picks the registry: the one whose upload URL is on that host and that
//! has `pypi_paths = true`.

use actix_web::{HttpRequest, HttpResponse, web};
use serde::Serialize;
use serde_json::json;

use super::exchange::{BurnRequest, limited_mint};
use super::{AppState, endpoint, resolve};
use crate::exchange::{MintRequest, Minted};
use crate::problem::Result;
use crate::store::now;
use crate::tokens;

/// The routes, under `/_/oidc`. Mint bodies are read as JSON whatever their
/// `Content-Type`, as PyPI reads them: uv sends none.
pub fn scope(json: web::JsonConfig) -> actix_web::Scope {
    web::scope("/_/oidc")
        .app_data(json.content_type_required(false))
        .service(endpoint("/audience", "GET").route(web::get().to(audience)))
        .service(endpoint("/mint-token", "POST").route(web::post().to(mint)))
        .service(endpoint("/github/mint-token", "POST").route(web::post().to(mint)))
        .service(endpoint("/burn-token", "POST").route(web::post().to(burn)))
}

/// PyPI's success shape (`success`, `token`, `expires`), with PEP 807's
/// `features` and trustpub's `packages` as well.
#[derive(Serialize)]
struct PypiMinted {
    success: bool,
    #[serde(flatten)]
    minted: Minted,
}

#[tracing::instrument(skip_all)]
async fn audience(request: HttpRequest, state: web::Data<AppState>) -> Result<HttpResponse> {
    let registry = resolve::by_pypi_host(&request, &state).await?;
    Ok(HttpResponse::Ok().json(json!({ "audience": registry.audience.as_str() })))
}

#[tracing::instrument(skip_all, fields(registry))]
async fn mint(
    request: HttpRequest,
    body: web::Json<MintRequest>,
    state: web::Data<AppState>,
) -> Result<HttpResponse> {
    let registry = resolve::by_pypi_host(&request, &state).await?;
    tracing::Span::current().record("registry", registry.name.as_str());
    let minted = limited_mint(&request, &state, &registry, &body).await?;
    Ok(HttpResponse::Ok().json(PypiMinted {
        success: true,
        minted,
    }))
}

/// 202 whether or not the credential existed, as trustpub's own
/// burn-token: the answer is no oracle.
#[tracing::instrument(skip_all, fields(registry))]
async fn burn(
    request: HttpRequest,
    body: web::Json<BurnRequest>,
    state: web::Data<AppState>,
) -> Result<HttpResponse> {
    let registry = resolve::by_pypi_host(&request, &state).await?;
    tracing::Span::current().record("registry", registry.name.as_str());
    tokens::revoke(&state.store, &registry, body.token.expose(), now()).await?;
    Ok(HttpResponse::Accepted().finish())
}
