//! The upload gateway's HTTP side: an upload to a registry's upload path on
//! trustpub is read until its package is known, checked against the
//! presented credential (consuming a single-use one), and streamed to the
//! registry with the registry's own credential. The registry's answer is
//! relayed. See `src/gateway/` for the configuration and the protocols.

use std::sync::{Arc, Mutex};

use actix_web::http::header::{CONTENT_LENGTH, CONTENT_TYPE};
use actix_web::http::{Method, StatusCode};
use actix_web::{HttpRequest, HttpResponse, web};
use bytes::Bytes;
use futures_util::StreamExt;

use super::{AppState, Relayed, header_str, package_from_path, presented_credential, without_port};
use crate::domain::Ecosystem;
use crate::gateway::{
    Found, Gateway, METADATA_LIMIT, PartCounter, Read, UploadedPackage, package_in_body,
};
use crate::problem::{Error, Result};
use crate::registry::Registry;
use crate::store::{NewEvent, bounded, now};
use crate::tokens::{self, Active, CheckRequest};

/// The registry whose gateway takes uploads at this request's host and
/// path, if any.
pub async fn registry_for(http: &HttpRequest, state: &AppState) -> Result<Option<Registry>> {
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
    match found.len() {
        0 => Ok(None),
        1 => Ok(found.pop()),
        _ => Err(Error::NoRegistryForRequest(format!(
            "several registries' gateways take uploads at {path:?} on {host:?}"
        ))),
    }
}

/// What became of an upload, for its event.
#[derive(Default)]
struct Outcome {
    /// Whether the upload presented a live credential of the registry.
    authenticated: bool,
    package: Option<UploadedPackage>,
    active: Option<Active>,
    upstream_status: Option<u16>,
}

/// Handles an upload to `registry`'s gateway and records it as an event.
pub async fn upload(
    http: HttpRequest,
    payload: web::Payload,
    state: &AppState,
    registry: Registry,
) -> Result<HttpResponse> {
    let mut outcome = Outcome::default();
    let result = forward(&http, payload, state, &registry, &mut outcome).await;
    let package = outcome.package.as_ref();
    let detail = format!(
        "package: {}; version: {}; upstream status: {}",
        package.map_or("-", |p| p.name.as_str()),
        package.and_then(|p| p.version.as_deref()).unwrap_or("-"),
        outcome
            .upstream_status
            .map_or_else(|| "-".to_owned(), |s| s.to_string()),
    );
    let (kind_outcome, code) = match &result {
        Ok(_) => ("forwarded", "ok"),
        Err(error) => ("refused", error.code()),
    };
    tracing::info!(registry = %registry.name, outcome = kind_outcome, code, detail = %bounded(&detail), "gateway upload");
    let recorded = if outcome.authenticated {
        state
            .store
            .record_event(NewEvent {
                at: now(),
                registry: registry.name.as_str(),
                kind: "upload",
                outcome: kind_outcome,
                code,
                publishers: None,
                detail,
                claims: outcome.active.map(|a| a.publisher),
            })
            .await
    } else {
        // Without a live credential: counted, not kept.
        state
            .store
            .count_refusal(registry.name.as_str(), "upload", code, now())
            .await
    };
    if let Err(failure) = recorded {
        tracing::error!(registry = %registry.name, %failure, "recording a gateway upload failed");
    }
    result
}

async fn forward(
    http: &HttpRequest,
    mut payload: web::Payload,
    state: &AppState,
    registry: &Registry,
    outcome: &mut Outcome,
) -> Result<HttpResponse> {
    let gateway = registry
        .gateway
        .as_ref()
        .ok_or_else(|| Error::NoRegistryForRequest(registry.name.to_string()))?;
    let limit = gateway.max_upload_bytes;
    let declared = header_str(http, CONTENT_LENGTH.as_str()).and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|length| length > limit) {
        return Err(Error::UploadTooLarge { limit });
    }
    // Before a byte of the body is read: a live credential of this registry.
    let credential = presented_credential(http)?;
    if !tokens::is_live(&state.store, registry, &credential, now()).await? {
        return Err(Error::InvalidCredential);
    }
    outcome.authenticated = true;
    let url = gateway.upstream_url(&registry.upload_url, http.path(), http.query_string())?;
    let upstream_authorization = match &gateway.credential {
        Some(credential) => Some(credential.authorization().map_err(|error| {
            tracing::error!(registry = %registry.name, %error, "the registry's credential cannot be read");
            Error::UpstreamUnavailable("its credential cannot be read".into())
        })?),
        None => None,
    };

    let mut prefix = Vec::new();
    let (mut found, complete) = match generic_package(http, registry.ecosystem, gateway)? {
        Some(package) => {
            let found = Found {
                package,
                content_type: None,
                counter: None,
            };
            (found, false)
        }
        None => tokio::time::timeout(
            METADATA_DEADLINE,
            read_package(http, &mut payload, registry.ecosystem, limit, &mut prefix),
        )
        .await
        .map_err(|_| {
            Error::InvalidUpload(format!(
                "the package was not named within {} s",
                METADATA_DEADLINE.as_secs()
            ))
        })??,
    };
    let read = prefix.iter().map(|c| c.len() as u64).sum::<u64>();
    if let Some(counter) = &mut found.counter {
        prefix.iter().try_for_each(|chunk| counter.scan(chunk))?;
    }
    outcome.package = Some(found.package.clone());

    // The check consumes a single-use credential before anything reaches
    // the registry, so that of concurrent uploads only one is forwarded.
    let checked = tokens::check(
        &state.store,
        registry,
        &credential,
        CheckRequest {
            package: Some(&found.package.name),
            consume: true,
            via: "gateway",
        },
        now(),
    )
    .await?;
    outcome.active = Some(checked.map_err(|inactive| inactive.refusal(Some(found.package.name)))?);

    let cut = Arc::new(Mutex::new(None));
    let rest = (!complete).then(|| pump(payload, read, limit, found.counter, cut.clone()));
    let body = futures_util::stream::iter(prefix.into_iter().map(Ok::<_, std::io::Error>))
        .chain(futures_util::stream::iter(rest).flatten());
    let method = reqwest::Method::from_bytes(http.method().as_str().as_bytes())
        .map_err(|e| Error::InvalidUpload(e.to_string()))?;
    let mut request = state
        .upstream
        .request(method, url)
        .body(reqwest::Body::wrap_stream(body));
    let content_type = found
        .content_type
        .or_else(|| header_str(http, CONTENT_TYPE.as_str()).map(str::to_owned));
    if let Some(content_type) = content_type {
        request = request.header(CONTENT_TYPE.as_str(), content_type);
    }
    if let Some(length) = declared {
        request = request.header(CONTENT_LENGTH.as_str(), length);
    }
    if let Some(authorization) = upstream_authorization {
        request = request.header("authorization", authorization);
    }
    let response = request.send().await.map_err(|error| {
        match cut.lock().map(|mut cut| cut.take()).ok().flatten() {
            Some(reason) => reason,
            None => Error::UpstreamUnavailable(error.to_string()),
        }
    })?;
    let status = response.status().as_u16();
    outcome.upstream_status = Some(status);
    let mut relayed = HttpResponse::build(
        StatusCode::from_u16(status).map_err(|e| Error::UpstreamUnavailable(e.to_string()))?,
    );
    if let Some(content_type) = response.headers().get(CONTENT_TYPE.as_str())
        && let Ok(value) = content_type.to_str()
    {
        relayed.insert_header((CONTENT_TYPE, value.to_owned()));
    }
    let mut relayed = relayed.streaming(response.bytes_stream());
    relayed.extensions_mut().insert(Relayed);
    Ok(relayed)
}

/// How long a client may take to send the metadata that names its package.
const METADATA_DEADLINE: std::time::Duration = std::time::Duration::from_secs(30);

/// Reads the body into `prefix` until the ecosystem's protocol names the
/// package; says too whether that was the whole body. Parsing starts again
/// from the first byte when the prefix has doubled (or the body ended), so
/// a slow trickle costs little.
async fn read_package(
    http: &HttpRequest,
    payload: &mut web::Payload,
    ecosystem: Ecosystem,
    limit: u64,
    prefix: &mut Vec<Bytes>,
) -> Result<(Found, bool)> {
    let content_type = header_str(http, CONTENT_TYPE.as_str()).unwrap_or_default();
    let (mut read, mut parsed_at, mut complete) = (0u64, 0u64, false);
    loop {
        if complete || read >= 2 * parsed_at.max(1024) || read > METADATA_LIMIT as u64 {
            parsed_at = read;
            match package_in_body(ecosystem, content_type, prefix, complete)? {
                Read::Found(found) => return Ok((found, complete)),
                Read::NeedMore if read > METADATA_LIMIT as u64 => {
                    return Err(Error::InvalidUpload(format!(
                        "no package name within the first {METADATA_LIMIT} bytes"
                    )));
                }
                Read::NeedMore => {}
            }
        }
        match payload.next().await {
            Some(Ok(chunk)) => {
                read += chunk.len() as u64;
                if read > limit {
                    return Err(Error::UploadTooLarge { limit });
                }
                prefix.push(chunk);
            }
            Some(Err(error)) => return Err(Error::InvalidUpload(error.to_string())),
            None => complete = true,
        }
    }
}

/// A generic registry's package, from its path template; `None` for the
/// ecosystems whose uploads name it in the body.
fn generic_package(
    http: &HttpRequest,
    ecosystem: Ecosystem,
    gateway: &Gateway,
) -> Result<Option<UploadedPackage>> {
    if ecosystem != Ecosystem::Generic {
        return Ok(None);
    }
    package_from_path(gateway.package_path.as_ref(), http.path())?
        .map(|name| {
            Some(UploadedPackage {
                name,
                version: None,
            })
        })
        .ok_or_else(|| {
            Error::InvalidUpload(
                "this upload's path does not name its package where this registry's \
                 package_path does"
                    .into(),
            )
        })
}

/// Why the pump cut an upload off.
type Cut = Arc<Mutex<Option<Error>>>;

/// Moves the rest of the client's body to a channel that the upstream
/// request reads (the payload cannot leave this worker's thread), counting
/// bytes against the limit and parts with `counter`; the channel's bound
/// keeps memory bounded. A violation ends the stream with an error, which
/// aborts the request to the registry, and is left in `cut`.
fn pump(
    mut payload: web::Payload,
    already: u64,
    limit: u64,
    mut counter: Option<PartCounter>,
    cut: Cut,
) -> impl futures_util::Stream<Item = std::io::Result<Bytes>> + Send + 'static {
    let (sender, receiver) = tokio::sync::mpsc::channel::<std::io::Result<Bytes>>(4);
    actix_web::rt::spawn(async move {
        let mut sent = already;
        while let Some(chunk) = payload.next().await {
            let checked = chunk
                .map_err(|error| Error::InvalidUpload(error.to_string()))
                .and_then(|chunk| {
                    sent += chunk.len() as u64;
                    if sent > limit {
                        return Err(Error::UploadTooLarge { limit });
                    }
                    if let Some(counter) = &mut counter {
                        counter.scan(&chunk)?;
                    }
                    Ok(chunk)
                });
            let item = checked.map_err(|error| {
                let message = error.to_string();
                if let Ok(mut cut) = cut.lock() {
                    *cut = Some(error);
                }
                std::io::Error::other(message)
            });
            let stop = item.is_err();
            if sender.send(item).await.is_err() || stop {
                return;
            }
        }
    });
    futures_util::stream::unfold(receiver, |mut receiver| async move {
        receiver.recv().await.map(|item| (item, receiver))
    })
}
