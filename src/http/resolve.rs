//! Which registry a request is for: one resolver per shape of request.
//! By name in the path (`/_/trustpub/{registry}/…`); by the host alone
//! (PyPI's implicit paths); by host and path prefix (the crates.io
//! protocol); by the headers a proxy forwards (forward-auth); by the paths
//! a registry's gateway takes (uploads). Discovery selects by upload path,
//! the host breaking ties (`request_authority`).

use actix_web::HttpRequest;
use actix_web::http::Method;

use super::{AppState, header_str};
use crate::domain::{RegistryName, discovery_path, without_port};
use crate::problem::{Error, Result};
use crate::registry::Registry;

/// The registry named in the path; 404 when there is none.
pub(super) async fn by_name(state: &AppState, name: &RegistryName) -> Result<Registry, Error> {
    state
        .store
        .registry(name.as_str())
        .await?
        .ok_or_else(|| Error::UnknownRegistry(name.to_string()))
}

/// The host the request was sent to, as registries' upload URLs name it:
/// lower-case `host[:port]`, without the scheme's default port. Forwarded
/// headers of a reverse proxy are honoured, as in discovery.
pub(super) fn request_authority(request: &HttpRequest) -> String {
    let info = request.connection_info();
    let host = info.host().to_ascii_lowercase();
    let default_port = match info.scheme() {
        "https" => ":443",
        _ => ":80",
    };
    match host.strip_suffix(default_port) {
        Some(bare) => bare.to_owned(),
        None => host,
    }
}

/// The registry bound to the request's host.
pub(super) async fn by_pypi_host(request: &HttpRequest, state: &AppState) -> Result<Registry> {
    let authority = request_authority(request);
    state
        .store
        .registry_for_pypi_host(&authority)
        .await?
        .ok_or_else(|| {
            Error::NoRegistryHere(format!(
                "no registry serves PyPI's Trusted Publishing paths on the host {authority:?}"
            ))
        })
}

/// The cargo registry at the request's host and `/{prefix}`.
pub(super) async fn by_cargo_url(
    request: &HttpRequest,
    prefix: &str,
    state: &AppState,
) -> Result<Registry> {
    let authority = request_authority(request);
    let path = discovery_path(&format!("/{prefix}"));
    state
        .store
        .cargo_registry_at(&authority, &path)
        .await?
        .ok_or_else(|| {
            Error::NoRegistryHere(format!("no cargo registry has the URL {authority}{path}"))
        })
}

/// The host and port the request was sent to, for telling apart
/// registries on one host: [`request_authority`], with the proxy's
/// `X-Forwarded-Port` when the host it forwards has none (nginx's `$host`
/// drops the port; Traefik sends the port in its own header).
fn routing_authority(request: &HttpRequest) -> String {
    let authority = request_authority(request);
    let port = header_str(request, "x-forwarded-port").filter(|p| {
        !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()) && *p != default_port(request)
    });
    match port {
        Some(port) if without_port(&authority) == authority => format!("{authority}:{port}"),
        _ => authority,
    }
}

/// The default port of the request's scheme, as forwarded.
fn default_port(request: &HttpRequest) -> &'static str {
    match request.connection_info().scheme() {
        "https" => "443",
        _ => "80",
    }
}

/// The registry the checked request is for: the proxy's `X-Trustpub-Registry`,
/// or else, of the registries whose upload URL has the forwarded host (and
/// its port, when that tells them apart, as for the gateway), the one with
/// the longest path prefix of the forwarded path. The credential's prefix
/// never decides here: forward-auth does not send the request anywhere
/// itself, so a credential must not pick the registry it is checked for.
pub(super) async fn by_forwarded_headers(http: &HttpRequest, state: &AppState) -> Result<Registry> {
    if let Some(name) = header_str(http, "x-trustpub-registry") {
        let name = RegistryName::parse(name.to_owned()).map_err(Error::NoRegistryForRequest)?;
        return by_name(state, &name).await.map_err(|error| match error {
            Error::UnknownRegistry(name) => Error::NoRegistryForRequest(format!(
                "X-Trustpub-Registry names no registry: {name:?}"
            )),
            other => other,
        });
    }
    // As discovery reads it: `Forwarded`, else `X-Forwarded-Host`, else `Host`.
    let host = without_port(http.connection_info().host()).to_ascii_lowercase();
    let mut candidates = state.store.registries_by_host(&host).await?;
    let authority = routing_authority(http);
    narrow(&mut candidates, |r| {
        r.upload_url.authority().eq_ignore_ascii_case(&authority)
    });
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
             (X-Forwarded-Uri or X-Original-URI) and port (in the host, or \
             X-Forwarded-Port), or set X-Trustpub-Registry"
        )));
    }
    Ok(fitting.swap_remove(0).1)
}

/// The path of the checked request, without its query: nginx's
/// `X-Original-URI` (set in its configuration), else the `X-Forwarded-Uri`
/// Traefik and Caddy set.
pub(super) fn forwarded_path(http: &HttpRequest) -> Option<&str> {
    header_str(http, "x-original-uri")
        .or_else(|| header_str(http, "x-forwarded-uri"))
        .map(path_of_uri)
}

/// A forwarded URI without its query and fragment.
pub(crate) fn path_of_uri(uri: &str) -> &str {
    uri.split(['?', '#']).next().unwrap_or_default()
}

/// The registry whose gateway takes uploads at this request's host and
/// path, if any. Ports are ignored at first (a proxy forwards the port it
/// listens on, which need not be the upload URL's); when several
/// registries' gateways take the path, the one whose upload URL has the
/// request's host and port ([`routing_authority`]), else the one whose
/// token prefix the presented credential has (`check-config` makes sure
/// one of them decides).
pub(super) async fn by_gateway_path(
    http: &HttpRequest,
    state: &AppState,
) -> Result<Option<Registry>> {
    if ![Method::POST, Method::PUT].contains(http.method()) {
        return Ok(None);
    }
    let host = without_port(http.connection_info().host()).to_ascii_lowercase();
    let path = http.path();
    let mut found: Vec<Registry> = state
        .store
        .registries_by_host(&host)
        .await?
        .into_iter()
        .filter(|r| {
            r.gateway
                .as_ref()
                .is_some_and(|g| g.takes(r.ecosystem, &r.upload_url, path))
        })
        .collect();
    let authority = routing_authority(http);
    narrow(&mut found, |r| {
        r.upload_url.authority().eq_ignore_ascii_case(&authority)
    });
    if let Ok(credential) = super::presented_credential(http) {
        narrow(&mut found, |r| {
            credential.starts_with(r.token_prefix.as_str())
        });
    }
    match found.len() {
        0 => Ok(None),
        1 => Ok(found.pop()),
        _ => Err(Error::NoRegistryForRequest(format!(
            "several registries' gateways take uploads at {path:?} on {host:?}, and neither \
             the request's port nor its credential's prefix tells them apart"
        ))),
    }
}

/// Keeps the registries that `decides`, when several are left and it
/// keeps at least one.
fn narrow(registries: &mut Vec<Registry>, decides: impl Fn(&Registry) -> bool) {
    if registries.len() > 1 && registries.iter().any(&decides) {
        registries.retain(decides);
    }
}
