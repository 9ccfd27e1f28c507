//! The upload gateway's HTTP side: an upload to a registry's upload path on
//! trustpub is read until its package is known, checked against the
//! presented credential (consuming a single-use one), and streamed to the
//! registry with the registry's own credential. The registry's answer is
//! relayed. See `src/gateway/` for the configuration and the protocols.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use actix_web::http::header::{CONTENT_LENGTH, CONTENT_TYPE};
use actix_web::http::{Method, StatusCode};
use actix_web::{HttpRequest, HttpResponse, web};
use bytes::Bytes;
use futures_util::StreamExt;

use super::{AppState, Relayed, header_str, presented_credential, without_port};
use crate::gateway::{Gateway, METADATA_LIMIT, Read, UploadedPackage, package_in_body};
use crate::problem::{Error, Result};
use crate::registry::{Ecosystem, Registry, discovery_path};
use crate::store::{NewEvent, now};
use crate::tokens::{self, Active, CheckRequest, Inactive};

/// The registry whose gateway takes uploads at this request's host and
/// path, if any.
pub async fn registry_for(http: &HttpRequest, state: &AppState) -> Result<Option<Registry>> {
    if ![Method::POST, Method::PUT].contains(http.method()) {
        return Ok(None);
    }
    let host = without_port(http.connection_info().host()).to_ascii_lowercase();
    let path = discovery_path(http.path());
    let mut found: Vec<Registry> = state
        .store
        .registries_by_host(&host)
        .await?
        .into_iter()
        .filter(|r| {
            r.gateway
                .as_ref()
                .is_some_and(|g| g.upload_paths(r.ecosystem, &r.upload_url).contains(&path))
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
    tracing::info!(registry = %registry.name, outcome = kind_outcome, code, %detail, "gateway upload");
    let recorded = state
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
        .await;
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
    let credential = presented_credential(http)?;
    let content_type = header_str(http, CONTENT_TYPE.as_str());

    // Read until the package is known; everything read is kept to forward.
    let mut prefix: Vec<Bytes> = Vec::new();
    let mut read: u64 = 0;
    let mut complete = false;
    let package = loop {
        if let Some(name) = named_outside_body(http, registry.ecosystem, gateway) {
            break UploadedPackage {
                name,
                version: None,
            };
        }
        if registry.ecosystem != Ecosystem::Generic {
            let content_type = content_type.unwrap_or_default();
            match package_in_body(registry.ecosystem, content_type, &prefix, complete)? {
                Read::Found(package) => break package,
                Read::NeedMore if read > METADATA_LIMIT as u64 => {
                    return Err(Error::InvalidUpload(format!(
                        "no package name within the first {METADATA_LIMIT} bytes"
                    )));
                }
                Read::NeedMore => {}
            }
        } else {
            return Err(Error::InvalidUpload(
                "this registry's uploads name their package in a header or the path, \
                 and this one does not"
                    .into(),
            ));
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
    };
    outcome.package = Some(package.clone());

    // The check consumes a single-use credential before anything reaches
    // the registry, so that of concurrent uploads only one is forwarded.
    let checked = tokens::check(
        &state.store,
        registry,
        &credential,
        CheckRequest {
            package: Some(&package.name),
            consume: true,
            via: "gateway",
        },
        now(),
    )
    .await?;
    let active = match checked {
        Ok(active) => active,
        Err(Inactive::OutOfScope) => return Err(Error::PackageNotAllowed(vec![package.name])),
        Err(_) => return Err(Error::InvalidCredential),
    };
    outcome.active = Some(active);

    let too_large = Arc::new(AtomicBool::new(false));
    let rest = if complete {
        None
    } else {
        Some(pump(payload, read, limit, too_large.clone()))
    };
    let body = futures_util::stream::iter(prefix.into_iter().map(Ok::<_, std::io::Error>))
        .chain(futures_util::stream::iter(rest).flatten());
    let url = gateway.upstream_url(&registry.upload_url, http.path(), http.query_string());
    let method = reqwest::Method::from_bytes(http.method().as_str().as_bytes())
        .map_err(|e| Error::InvalidUpload(e.to_string()))?;
    let mut request = state
        .upstream
        .request(method, url)
        .body(reqwest::Body::wrap_stream(body));
    if let Some(content_type) = content_type {
        request = request.header(CONTENT_TYPE.as_str(), content_type);
    }
    if let Some(length) = declared {
        request = request.header(CONTENT_LENGTH.as_str(), length);
    }
    if let Some(credential) = &gateway.credential {
        request = request.header("authorization", credential.authorization()?);
    }
    let response = request.send().await.map_err(|error| {
        if too_large.load(Ordering::SeqCst) {
            Error::UploadTooLarge { limit }
        } else {
            Error::UpstreamUnavailable(error.to_string())
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

/// A generic registry's package, from the configured header or path.
fn named_outside_body(
    http: &HttpRequest,
    ecosystem: Ecosystem,
    gateway: &Gateway,
) -> Option<String> {
    if ecosystem != Ecosystem::Generic {
        return None;
    }
    gateway
        .package_header
        .as_deref()
        .and_then(|name| header_str(http, name))
        .map(str::to_owned)
        .or_else(|| gateway.package_path.as_ref()?.package_in(http.path()))
}

/// Moves the rest of the client's body to a channel that the upstream
/// request reads (the payload cannot leave this worker's thread), counting
/// bytes against the limit; the channel's bound keeps memory bounded.
fn pump(
    mut payload: web::Payload,
    already: u64,
    limit: u64,
    too_large: Arc<AtomicBool>,
) -> impl futures_util::Stream<Item = std::io::Result<Bytes>> + Send + 'static {
    let (sender, receiver) = tokio::sync::mpsc::channel::<std::io::Result<Bytes>>(4);
    actix_web::rt::spawn(async move {
        let mut sent = already;
        while let Some(chunk) = payload.next().await {
            let item = match chunk {
                Ok(chunk) => {
                    sent += chunk.len() as u64;
                    if sent > limit {
                        too_large.store(true, Ordering::SeqCst);
                        Err(std::io::Error::other("the upload is larger than the limit"))
                    } else {
                        Ok(chunk)
                    }
                }
                Err(error) => Err(std::io::Error::other(error.to_string())),
            };
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
