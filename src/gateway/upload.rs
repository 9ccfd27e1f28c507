//! The gateway's use case: an upload to a registry's gateway is read until
//! its package is known, checked against the presented credential
//! (consuming a single-use one), and streamed to the registry with the
//! registry's own credential; the registry's answer is given back for the
//! HTTP layer to relay. Every upload is recorded.

use std::sync::{Arc, Mutex};

use bytes::Bytes;
use futures_util::{Stream, StreamExt};

use super::{Found, METADATA_LIMIT, PartCounter, Read, UploadedPackage, package_in_body};
use crate::domain::Ecosystem;
use crate::problem::{Error, Result};
use crate::registry::{Gateway, Registry};
use crate::store::{Caller, EventKind, NewEvent, Outcome, Store, bounded, now};
use crate::tokens::{self, Active, CheckRequest};

/// How long a client may take to send the metadata that names its package.
const METADATA_DEADLINE: std::time::Duration = std::time::Duration::from_secs(30);

/// An upload as the client sent it, less its body.
#[derive(Debug)]
pub struct Upload<'a> {
    pub method: &'a str,
    /// The request's path, raw (not percent-decoded).
    pub path: &'a str,
    pub query: &'a str,
    pub content_type: Option<&'a str>,
    pub content_length: Option<u64>,
    /// The credential the client presented, or why it presented none.
    pub credential: Result<String>,
    /// The client's end-to-end headers but `Host` and `Content-Length`, as
    /// it sent them: forwarded only when the upload passes through.
    pub headers: Vec<(&'a str, &'a [u8])>,
}

impl Upload<'_> {
    fn method(&self) -> Result<reqwest::Method> {
        reqwest::Method::from_bytes(self.method.as_bytes())
            .map_err(|e| Error::InvalidUpload(e.to_string()))
    }
}

/// What became of an upload so far, for its record.
#[derive(Default)]
struct Progress {
    /// Whether the upload presented a live credential of the registry.
    authenticated: bool,
    package: Option<UploadedPackage>,
    active: Option<Active>,
    upstream_status: Option<u16>,
    /// Whether the upload presented no credential of the registry and was
    /// forwarded for the registry to authenticate.
    passed_through: bool,
}

/// Takes an upload to `registry`'s gateway and answers the registry's
/// response; records the upload either way. `body` is read on this thread
/// (it need not be `Send`).
pub async fn upload<B, E>(
    store: &Store,
    client: &reqwest::Client,
    registry: &Registry,
    upload: Upload<'_>,
    body: B,
) -> Result<reqwest::Response>
where
    B: Stream<Item = std::result::Result<Bytes, E>> + Unpin + 'static,
    E: std::fmt::Display,
{
    let mut progress = Progress::default();
    let result = forward(store, client, registry, upload, body, &mut progress).await;
    match record(store, registry, &result, progress).await {
        // Over the ceiling of refusals: the client is told to slow down.
        Err(limited @ Error::RateLimited { .. }) => Err(limited),
        _ => result,
    }
}

async fn record(
    store: &Store,
    registry: &Registry,
    result: &Result<reqwest::Response>,
    progress: Progress,
) -> Result<()> {
    let package = progress.package.as_ref();
    let detail = format!(
        "package: {}; version: {}; upstream status: {}",
        package.map_or("-", |p| p.name.as_str()),
        package.and_then(|p| p.version.as_deref()).unwrap_or("-"),
        progress
            .upstream_status
            .map_or_else(|| "-".to_owned(), |s| s.to_string()),
    );
    let (outcome, code) = match result {
        Ok(_) if progress.passed_through => (Outcome::Forwarded, "passed-through"),
        Ok(_) => (Outcome::Forwarded, "ok"),
        Err(error) => (Outcome::Refused, error.code()),
    };
    tracing::info!(registry = %registry.name, outcome = outcome.as_str(), code, detail = %bounded(&detail), "gateway upload");
    let recorded = store
        .record_event(NewEvent {
            at: now(),
            registry: registry.name.as_str(),
            // Without a live credential, only counted.
            caller: Caller::proven(progress.authenticated),
            kind: EventKind::Upload,
            outcome,
            code,
            publishers: None,
            detail,
            claims: progress.active.map(|a| a.publisher),
        })
        .await;
    if let Err(failure) = &recorded
        && !matches!(failure, Error::RateLimited { .. })
    {
        tracing::error!(registry = %registry.name, %failure, "recording a gateway upload failed");
    }
    recorded
}

async fn forward<B, E>(
    store: &Store,
    client: &reqwest::Client,
    registry: &Registry,
    upload: Upload<'_>,
    mut body: B,
    progress: &mut Progress,
) -> Result<reqwest::Response>
where
    B: Stream<Item = std::result::Result<Bytes, E>> + Unpin + 'static,
    E: std::fmt::Display,
{
    let gateway = registry
        .gateway
        .as_ref()
        .ok_or_else(|| Error::NoRegistryForRequest(registry.name.to_string()))?;
    let limit = gateway.max_upload_bytes;
    if upload.content_length.is_some_and(|length| length > limit) {
        return Err(Error::UploadTooLarge { limit });
    }
    let ours = matches!(&upload.credential, Ok(c) if c.starts_with(registry.token_prefix.as_str()));
    if !ours && gateway.pass_through_foreign_credentials {
        progress.passed_through = true;
        return pass_through(client, gateway, registry, upload, body, progress).await;
    }
    let method = upload.method()?;
    // Before a byte of the body is read: a live credential of this registry.
    let credential = upload.credential?;
    if !tokens::is_live(store, registry, &credential, now()).await? {
        return Err(Error::InvalidCredential);
    }
    progress.authenticated = true;
    let url = gateway.upstream_url(&registry.upload_url, upload.path, upload.query)?;
    let upstream_authorization = match &gateway.credential {
        Some(credential) => Some(credential.authorization().map_err(|error| {
            tracing::error!(registry = %registry.name, %error, "the registry's credential cannot be read");
            Error::UpstreamUnavailable("its credential cannot be read".into())
        })?),
        None => None,
    };

    let mut prefix = Vec::new();
    let (mut found, complete) = if registry.ecosystem == Ecosystem::Generic {
        let name = gateway.package_in(upload.path)?;
        let package = UploadedPackage {
            name,
            version: None,
        };
        (Found::named(package), false)
    } else {
        let content_type = upload.content_type.unwrap_or_default();
        tokio::time::timeout(
            METADATA_DEADLINE,
            read_package(
                &mut body,
                registry.ecosystem,
                content_type,
                limit,
                &mut prefix,
            ),
        )
        .await
        .map_err(|_| {
            Error::InvalidUpload(format!(
                "the package was not named within {} s",
                METADATA_DEADLINE.as_secs()
            ))
        })??
    };
    let read = prefix.iter().map(|c| c.len() as u64).sum::<u64>();
    if let Some(counter) = &mut found.counter {
        prefix.iter().try_for_each(|chunk| counter.scan(chunk))?;
    }
    progress.package = Some(found.package.clone());

    // The check consumes a single-use credential before anything reaches
    // the registry, so that of concurrent uploads only one is forwarded.
    let checked = tokens::check(
        store,
        registry,
        &credential,
        CheckRequest {
            package: Some(&found.package.name),
            consume: true,
            via: "gateway",
            kept: true,
        },
        now(),
    )
    .await?;
    progress.active = Some(checked.map_err(|inactive| inactive.refusal(Some(found.package.name)))?);

    let cut = Arc::new(Mutex::new(None));
    let rest = (!complete).then(|| pump(body, read, limit, found.counter, cut.clone()));
    let stream = futures_util::stream::iter(prefix.into_iter().map(Ok::<_, std::io::Error>))
        .chain(futures_util::stream::iter(rest).flatten());
    let mut request = client
        .request(method, url)
        .body(reqwest::Body::wrap_stream(stream));
    if let Some(content_type) = found
        .content_type
        .or_else(|| upload.content_type.map(str::to_owned))
    {
        request = request.header(reqwest::header::CONTENT_TYPE, content_type);
    }
    if let Some(length) = upload.content_length {
        request = request.header(reqwest::header::CONTENT_LENGTH, length);
    }
    if let Some(authorization) = upstream_authorization {
        request = request.header(reqwest::header::AUTHORIZATION, authorization);
    }
    if gateway.identity_headers
        && let Some(active) = &progress.active
    {
        if let Some(identity) = &active.publisher.identity {
            request = request.header("x-trustpub-publisher", identity);
        }
        request = request.header("x-trustpub-credential-id", &active.id);
    }
    send(request, &cut, progress).await
}

/// Sends the request to the registry; an upload the pump cut off is
/// refused for the pump's reason.
async fn send(
    request: reqwest::RequestBuilder,
    cut: &Cut,
    progress: &mut Progress,
) -> Result<reqwest::Response> {
    let response = request.send().await.map_err(|error| {
        match cut.lock().map(|mut cut| cut.take()).ok().flatten() {
            Some(reason) => reason,
            None => Error::UpstreamUnavailable(error.to_string()),
        }
    })?;
    progress.upstream_status = Some(response.status().as_u16());
    Ok(response)
}

/// Forwards an upload that presents no credential of the registry as it
/// came, its own headers (its `Authorization` among them) included, for
/// the registry to authenticate; only the path rule and the size limit
/// still apply.
async fn pass_through<B, E>(
    client: &reqwest::Client,
    gateway: &Gateway,
    registry: &Registry,
    upload: Upload<'_>,
    body: B,
    progress: &mut Progress,
) -> Result<reqwest::Response>
where
    B: Stream<Item = std::result::Result<Bytes, E>> + Unpin + 'static,
    E: std::fmt::Display,
{
    let url = gateway.upstream_url(&registry.upload_url, upload.path, upload.query)?;
    let method = upload.method()?;
    let cut = Arc::new(Mutex::new(None));
    let body = pump(body, 0, gateway.max_upload_bytes, None, cut.clone());
    let mut request = client
        .request(method, url)
        .body(reqwest::Body::wrap_stream(body));
    for (name, value) in &upload.headers {
        request = request.header(*name, *value);
    }
    if let Some(length) = upload.content_length {
        request = request.header(reqwest::header::CONTENT_LENGTH, length);
    }
    send(request, &cut, progress).await
}

/// Reads the body into `prefix` until the ecosystem's protocol names the
/// package; says too whether that was the whole body. Parsing starts again
/// from the first byte when the prefix has doubled (or the body ended), so
/// a slow trickle costs little.
async fn read_package<B, E>(
    body: &mut B,
    ecosystem: Ecosystem,
    content_type: &str,
    limit: u64,
    prefix: &mut Vec<Bytes>,
) -> Result<(Found, bool)>
where
    B: Stream<Item = std::result::Result<Bytes, E>> + Unpin,
    E: std::fmt::Display,
{
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
        match body.next().await {
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

/// Why the pump cut an upload off.
type Cut = Arc<Mutex<Option<Error>>>;

/// Moves the rest of the client's body to a channel that the upstream
/// request reads (the body need not leave this thread), counting bytes
/// against the limit and parts with `counter`; the channel's bound keeps
/// memory bounded. A violation ends the stream with an error, which aborts
/// the request to the registry, and is left in `cut`.
fn pump<B, E>(
    mut body: B,
    already: u64,
    limit: u64,
    mut counter: Option<PartCounter>,
    cut: Cut,
) -> impl Stream<Item = std::io::Result<Bytes>> + Send + 'static
where
    B: Stream<Item = std::result::Result<Bytes, E>> + Unpin + 'static,
    E: std::fmt::Display,
{
    let (sender, receiver) = tokio::sync::mpsc::channel::<std::io::Result<Bytes>>(4);
    tokio::task::spawn_local(async move {
        let mut sent = already;
        while let Some(chunk) = body.next().await {
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
