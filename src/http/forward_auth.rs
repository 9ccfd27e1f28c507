//! Forward-auth for reverse proxies in front of a registry that knows
//! nothing of trustpub: `/_/trustpub/auth`, for nginx `auth_request`,
//! Traefik ForwardAuth, Caddy `forward_auth` and Envoy ext_authz.
//!
//! The proxy passes the client's `Authorization`, and says which request it
//! is checking with forwarded headers. 200 lets the request through; 401 and
//! 403 refuse it. Every method is served: nginx sends its subrequest with
//! the method of the request it checks.

use actix_web::http::Method;
use actix_web::http::header::{HeaderName, HeaderValue};
use actix_web::{HttpRequest, HttpResponse, web};

use super::{AppState, header_str, load_registry, presented_credential, without_port};
use crate::domain::{RegistryName, discovery_path};
use crate::problem::{Error, Result};
use crate::registry::{Registry, package_in_path};
use crate::store::{Caller, EventKind, NewEvent, Outcome, now};
use crate::tokens::{self, CheckRequest};

pub fn resource() -> actix_web::Resource {
    web::resource("/_/trustpub/auth").route(web::route().to(forward_auth))
}

#[tracing::instrument(skip_all)]
async fn forward_auth(http: HttpRequest, state: web::Data<AppState>) -> Result<HttpResponse> {
    let registry = forwarded_registry(&http, &state).await?;
    let credential = presented_credential(&http)?;
    let method = header_str(&http, "x-forwarded-method")
        .or_else(|| header_str(&http, "x-original-method"))
        .map(|m| m.to_ascii_uppercase())
        .unwrap_or_else(|| http.method().as_str().to_owned());
    // Everything but reads is a write: it consumes a single-use credential.
    let is_upload = ![Method::GET, Method::HEAD, Method::OPTIONS]
        .iter()
        .any(|m| m.as_str() == method);
    let package = match checked_package(&http, &registry, is_upload) {
        Ok(package) => package,
        Err(error) => {
            // The credential is not checked yet: counted, not kept.
            state
                .store
                .record_event(NewEvent {
                    at: now(),
                    registry: registry.name.as_str(),
                    caller: Caller::Anonymous,
                    kind: EventKind::Check,
                    outcome: Outcome::Refused,
                    code: error.code(),
                    publishers: None,
                    detail: String::new(),
                    claims: None,
                })
                .await?;
            return Err(error);
        }
    };
    let outcome = tokens::check(
        &state.store,
        &registry,
        &credential,
        CheckRequest {
            package: package.as_deref(),
            consume: is_upload,
            via: "forward-auth",
        },
        now(),
    )
    .await?;
    let active = outcome.map_err(|inactive| inactive.refusal(package.clone()))?;
    let mut response = HttpResponse::Ok();
    let headers = [
        ("x-trustpub-registry", Some(active.registry)),
        ("x-trustpub-packages", Some(active.packages.join(","))),
        ("x-trustpub-expires", Some(active.expires.to_string())),
        ("x-trustpub-single-use", Some(active.single_use.to_string())),
        ("x-trustpub-repository", active.publisher.repository),
        ("x-trustpub-workflow", active.publisher.workflow),
        ("x-trustpub-package", package),
    ];
    for (name, value) in headers {
        if let Some(value) = value.and_then(|v| HeaderValue::from_str(&v).ok()) {
            response.insert_header((HeaderName::from_static(name), value));
        }
    }
    Ok(response.finish())
}

/// The registry the checked request is for: the proxy's `X-Trustpub-Registry`,
/// or else the registry whose upload URL has the forwarded host (ports
/// ignored) and the longest path prefix of the forwarded path.
async fn forwarded_registry(http: &HttpRequest, state: &AppState) -> Result<Registry> {
    if let Some(name) = header_str(http, "x-trustpub-registry") {
        let name = RegistryName::parse(name.to_owned()).map_err(Error::NoRegistryForRequest)?;
        return load_registry(state, &name)
            .await
            .map_err(|error| match error {
                Error::UnknownRegistry(name) => Error::NoRegistryForRequest(format!(
                    "X-Trustpub-Registry names no registry: {name:?}"
                )),
                other => other,
            });
    }
    // As discovery reads it: `Forwarded`, else `X-Forwarded-Host`, else `Host`.
    let host = without_port(http.connection_info().host()).to_ascii_lowercase();
    let candidates = state.store.registries_by_host(&host).await?;
    let path = forwarded_path(http).map(discovery_path);
    let mut fitting: Vec<(usize, Registry)> = candidates
        .into_iter()
        .filter_map(|registry| {
            let prefix = registry.upload_url.discovery_path();
            match &path {
                Some(path) => {
                    let fits = path == &prefix
                        || path
                            .strip_prefix(&prefix)
                            .is_some_and(|r| r.starts_with('/'));
                    fits.then_some((prefix.len(), registry))
                }
                None => Some((prefix.len(), registry)),
            }
        })
        .collect();
    fitting.sort_by_key(|(len, _)| std::cmp::Reverse(*len));
    let unique = match fitting.as_slice() {
        [_] => true,
        [(longest, _), (next, _), ..] => path.is_some() && longest > next,
        [] => {
            return Err(Error::NoRegistryForRequest(format!(
                "no registry's upload URL is on the host {host:?} with this path"
            )));
        }
    };
    if !unique {
        return Err(Error::NoRegistryForRequest(format!(
            "several registries are on the host {host:?}; forward the request's path \
             (X-Forwarded-Uri or X-Original-URI) or set X-Trustpub-Registry"
        )));
    }
    Ok(fitting.swap_remove(0).1)
}

/// The package the checked request is for. With a `package_path`, the
/// forwarded path decides: a write whose path does not fit the template
/// exactly names no package trustpub could check, so it is refused rather
/// than let through on the credential alone (the registry would act on
/// whatever the path, after the proxy's own normalisation, names). A
/// proxy's `X-Trustpub-Package` must then name the same package. Without a
/// template, the proxy's header, or none.
fn checked_package(
    http: &HttpRequest,
    registry: &Registry,
    is_upload: bool,
) -> Result<Option<String>> {
    let from_header = header_str(http, "x-trustpub-package").map(str::to_owned);
    let Some(template) = registry.forward_auth.package_path.as_ref() else {
        return Ok(from_header);
    };
    let unfit = |path: &str| {
        Error::PathNotAllowed(format!(
            "{path:?} does not fit the registry's package_path {:?}",
            String::from(template.clone())
        ))
    };
    let path = forwarded_path(http);
    let from_path = match path {
        Some(path) => match package_in_path(template, path)? {
            None if is_upload => return Err(unfit(path)),
            named => named,
        },
        None => None,
    };
    match (from_path, from_header) {
        (Some(named), Some(header))
            if registry.ecosystem.normalize(&named) != registry.ecosystem.normalize(&header) =>
        {
            Err(Error::PathNotAllowed(format!(
                "the path names {named:?}, X-Trustpub-Package {header:?}"
            )))
        }
        (None, None) if is_upload => Err(unfit("(no forwarded path)")),
        (named, header) => Ok(named.or(header)),
    }
}

/// The path of the checked request, without its query: nginx's
/// `X-Original-URI` (set in its configuration), else the `X-Forwarded-Uri`
/// Traefik and Caddy set.
fn forwarded_path(http: &HttpRequest) -> Option<&str> {
    header_str(http, "x-original-uri")
        .or_else(|| header_str(http, "x-forwarded-uri"))
        .map(|uri| uri.split(['?', '#']).next().unwrap_or_default())
}
