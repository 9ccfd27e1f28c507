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

use super::{AppState, header_str, presented_credential, resolve};
use crate::problem::{Error, Result};
use crate::registry::{Registry, UpstreamCredential, package_in_path};
use crate::store::{Caller, EventKind, NewEvent, Outcome, now};
use crate::tokens::{self, CheckRequest};

pub fn resource() -> actix_web::Resource {
    web::resource("/_/trustpub/auth").route(web::route().to(forward_auth))
}

#[tracing::instrument(skip_all)]
async fn forward_auth(http: HttpRequest, state: web::Data<AppState>) -> Result<HttpResponse> {
    let registry = resolve::by_forwarded_headers(&http, &state).await?;
    let checked = async { checked(&http, &state, &registry).await.map(|r| (r, true)) };
    state.limits.check(&http, &registry, checked).await
}

/// The answer for a registry; any refusal is an error.
async fn checked(
    http: &HttpRequest,
    state: &AppState,
    registry: &Registry,
) -> Result<HttpResponse> {
    let credential = presented_credential(http)?;
    let method = header_str(http, "x-forwarded-method")
        .or_else(|| header_str(http, "x-original-method"))
        .map(|m| m.to_ascii_uppercase())
        .unwrap_or_else(|| http.method().as_str().to_owned());
    // Everything but reads is a write: it consumes a single-use credential.
    let is_upload = ![Method::GET, Method::HEAD, Method::OPTIONS]
        .iter()
        .any(|m| m.as_str() == method);
    if !is_upload
        && let Some(read) = registry
            .gateway
            .as_ref()
            .and_then(|g| g.read_credential.as_ref())
    {
        return read_with_registry_credential(state, registry, &credential, read).await;
    }
    let package = match checked_package(http, registry, is_upload) {
        Ok(package) => package,
        Err(error) => {
            // The credential is not checked yet: counted, not kept.
            count_check(state, registry, Outcome::Refused, error.code()).await?;
            return Err(error);
        }
    };
    let outcome = tokens::check(
        &state.store,
        registry,
        &credential,
        CheckRequest {
            package: package.as_deref(),
            consume: is_upload,
            via: "forward-auth",
            // Reads are many: counted, not kept one event each.
            kept: is_upload,
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
        ("x-trustpub-publisher", active.publisher.identity),
        (
            "x-trustpub-provider",
            active.publisher.provider.map(|p| p.as_str().to_owned()),
        ),
        // Kept from before there were other providers than GitHub.
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

/// A read by a live credential of a registry that authenticates reads:
/// let through with the registry's own read credential for the proxy to
/// send on (`X-Trustpub-Upstream-Authorization`). Reads are many (every
/// index entry cargo fetches), so each is counted per hour, not kept as an
/// event. A read credential that cannot be read is 502, before anything
/// is let through.
async fn read_with_registry_credential(
    state: &AppState,
    registry: &Registry,
    credential: &str,
    read: &UpstreamCredential,
) -> Result<HttpResponse> {
    let authorization = read.authorization().map_err(|error| {
        tracing::error!(registry = %registry.name, %error, "the registry's read credential cannot be read");
        Error::UpstreamUnavailable("its read credential cannot be read".into())
    })?;
    let live = tokens::is_live(&state.store, registry, credential, now()).await?;
    let outcome = if live {
        Ok(HttpResponse::Ok()
            .insert_header(("x-trustpub-registry", registry.name.as_str()))
            .insert_header(("x-trustpub-upstream-authorization", authorization))
            .finish())
    } else {
        Err(Error::InvalidCredential)
    };
    let code = outcome.as_ref().map_or_else(|e| e.code(), |_| "read");
    let counted = if live {
        Outcome::Active
    } else {
        Outcome::Refused
    };
    count_check(state, registry, counted, code).await?;
    outcome
}

/// Counts a check per hour, without keeping it as an event.
async fn count_check(
    state: &AppState,
    registry: &Registry,
    outcome: Outcome,
    code: &'static str,
) -> Result<()> {
    state
        .store
        .record_event(NewEvent {
            at: now(),
            registry: registry.name.as_str(),
            caller: Caller::Anonymous,
            kind: EventKind::Check,
            outcome,
            code,
            publishers: None,
            detail: String::new(),
            claims: None,
        })
        .await
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
    let unfit = |what: String| {
        Error::PathNotAllowed(format!(
            "{what} does not fit the registry's package_path {:?}",
            String::from(template.clone())
        ))
    };
    let path = resolve::forwarded_path(http);
    let from_path = match path {
        Some(path) => match package_in_path(template, path)? {
            None if is_upload => return Err(unfit(format!("{path:?}"))),
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
        (None, None) if is_upload => Err(unfit("a write with no forwarded path".to_owned())),
        (named, header) => Ok(named.or(header)),
    }
}
