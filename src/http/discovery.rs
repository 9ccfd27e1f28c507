//! PEP 807 discovery: `GET /.well-known/pytp?discover=<upload path>`.

use actix_web::{HttpRequest, HttpResponse, web};
use serde::{Deserialize, Serialize};

use super::{AppState, endpoint};
use crate::domain::{Feature, discovery_path};
use crate::problem::{Error, Result};
use crate::registry::Registry;

pub fn resource() -> actix_web::Resource {
    endpoint("/.well-known/pytp", "GET").route(web::get().to(discover))
}

#[derive(Deserialize)]
struct DiscoverQuery {
    /// The upload URL's path, percent-encoded; decoded form-style, so `+` is
    /// a space and `%2F` a slash. Empty for an upload URL without a path
    /// (PEP 807, step 2), which is the root of its host: see
    /// [`discovery_path`].
    discover: Option<String>,
}

#[derive(Serialize)]
#[serde(rename_all = "kebab-case")]
struct DiscoveryDocument {
    audience_endpoint: String,
    token_mint_endpoint: String,
    /// trustpub's extension (PEP 807 has no burn): where a client revokes
    /// the credential when its upload is done, as `trustpub-token exec` does.
    token_burn_endpoint: String,
    features: Vec<Feature>,
    default_features: Vec<Feature>,
}

impl DiscoveryDocument {
    /// URLs come from the registry's configured upload URL, never from the
    /// request, so they always share the upload URL's host (PEP 807).
    fn of(registry: &Registry) -> Self {
        let base = format!(
            "{}/_/trustpub/{}",
            registry.upload_url.origin(),
            registry.name
        );
        DiscoveryDocument {
            audience_endpoint: format!("{base}/audience"),
            token_mint_endpoint: format!("{base}/mint-token"),
            token_burn_endpoint: format!("{base}/burn-token"),
            features: registry.features.clone(),
            default_features: registry.default_features.clone(),
        }
    }
}

#[tracing::instrument(skip_all, fields(key = query.discover.as_deref()))]
async fn discover(
    request: HttpRequest,
    query: web::Query<DiscoverQuery>,
    state: web::Data<AppState>,
) -> Result<HttpResponse> {
    let key = query
        .into_inner()
        .discover
        .ok_or(Error::MissingDiscoverKey)?;
    let path = upload_path(&key)?;
    let mut candidates = state.store.registries_by_upload_path(&path).await?;
    // Registries may share a path on different hosts: the request's host
    // (as forwarded by a proxy, if any) picks one of them.
    if candidates.len() > 1 {
        let host = super::resolve::request_authority(&request);
        candidates.retain(|(authority, _)| *authority == host);
    }
    match candidates.as_slice() {
        [(_, registry)] => Ok(HttpResponse::Ok().json(DiscoveryDocument::of(registry))),
        _ => Err(Error::NotDiscoverable(key)),
    }
}

/// The upload path a discovery key names, compared with the registries'
/// ([`discovery_path`]).
fn upload_path(key: &str) -> Result<String> {
    let path = discovery_path(key);
    // No upload path holds a NUL (nor can PostgreSQL's text).
    if path.contains('\0') {
        return Err(Error::NotDiscoverable(key.to_owned()));
    }
    Ok(path)
}

/// The upload path that a discovery request's query string names, read as
/// the handler reads it (actix-web's `Query`, then [`upload_path`]). For the
/// fuzz targets (`crate::fuzzing`).
pub(crate) fn upload_path_in_query(query: &str) -> Result<String> {
    let query = web::Query::<DiscoverQuery>::from_query(query)
        .map_err(|e| Error::InvalidQuery(e.to_string()))?;
    upload_path(
        &query
            .into_inner()
            .discover
            .ok_or(Error::MissingDiscoverKey)?,
    )
}
