//! Issuers' signing keys, fetched from their JWKS and cached.
//!
//! The JWKS is found through `<issuer>/.well-known/openid-configuration`
//! (`jwks_uri`). GitHub's document has no `authorization_endpoint`, so only
//! `{issuer, jwks_uri}` are read. Keys are cached per issuer; a token whose
//! `kid` is unknown triggers at most one refetch per cool-down; on a failed
//! fetch the cached keys are kept, and a `kid` they lack is answered as the
//! issuer being unavailable (502) until a fetch succeeds again. Keys older
//! than a maximum age are refreshed before use, so a withdrawn key stops
//! verifying. Fetches time out, are capped in size and never follow a
//! redirect to another origin.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use openidconnect::{JsonWebKey, JsonWebKeySet};
use serde::Deserialize;
use tokio::sync::{Mutex, RwLock};

use super::jwk::Jwk;
use crate::domain::IssuerUrl;
use crate::metrics::Metrics;
use crate::problem::{Error, Result};

/// The shortest time between two refetches of one issuer's keys.
pub const REFETCH_COOL_DOWN: Duration = Duration::from_secs(60);
/// Keys older than this are refetched before use, so that a key the issuer
/// withdrew stops being trusted; if the refetch fails they still serve.
pub const MAX_KEY_AGE: Duration = Duration::from_secs(3600);
/// How long one fetch may take.
pub const FETCH_TIMEOUT: Duration = Duration::from_secs(5);
/// The largest openid-configuration or JWKS document read.
pub const MAX_DOCUMENT_BYTES: usize = 256 * 1024;

#[derive(Default)]
struct Cached {
    keys: Vec<Jwk>,
    fetched_at: Option<Instant>,
    last_refetch: Option<Instant>,
    /// Why the last fetch failed, until one succeeds.
    failed: Option<String>,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Fresh {
    Only,
    OrStale,
}

pub struct KeyStore {
    client: reqwest::Client,
    cool_down: Duration,
    max_age: Duration,
    cache: RwLock<HashMap<String, Cached>>,
    /// One lock per issuer, so that fetching one issuer's keys (a slow one,
    /// even) never delays a request for another's.
    refetch: std::sync::Mutex<HashMap<String, Arc<Mutex<()>>>>,
    metrics: Metrics,
}

#[derive(Deserialize)]
struct ProviderDocument {
    issuer: String,
    jwks_uri: String,
}

impl KeyStore {
    /// A key store refetching at most once per `cool_down`, and refreshing
    /// keys older than `max_age` ([`REFETCH_COOL_DOWN`] and [`MAX_KEY_AGE`]
    /// in production).
    /// Every fetch is counted in `metrics`.
    pub fn new(cool_down: Duration, max_age: Duration, metrics: Metrics) -> Result<Self> {
        let client = reqwest::Client::builder()
            .timeout(FETCH_TIMEOUT)
            .redirect(reqwest::redirect::Policy::custom(|attempt| {
                let same_origin = attempt.previous().first().is_some_and(|first| {
                    first.host_str() == attempt.url().host_str()
                        && first.scheme() == attempt.url().scheme()
                        && first.port_or_known_default() == attempt.url().port_or_known_default()
                });
                if attempt.previous().len() > 3 || !same_origin {
                    attempt.stop()
                } else {
                    attempt.follow()
                }
            }))
            .user_agent(concat!("trustpub/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| Error::IssuerUnavailable {
                issuer: String::new(),
                reason: format!("cannot build an HTTP client: {e}"),
            })?;
        Ok(KeyStore {
            client,
            cool_down,
            max_age,
            cache: RwLock::new(HashMap::new()),
            refetch: std::sync::Mutex::new(HashMap::new()),
            metrics,
        })
    }

    /// The issuer's keys that may have signed a token with this `kid`
    /// (all of them when the token names none). The first fetch of an issuer
    /// happens at once; a refetch (unknown `kid`, or after a failure) at most
    /// once per cool-down.
    pub async fn keys_for(&self, issuer: &IssuerUrl, kid: Option<&str>) -> Result<Vec<Jwk>> {
        if let Some(keys) = self.cached(issuer, kid, Fresh::Only).await {
            return Ok(keys);
        }
        let issuer_lock = self
            .refetch
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .entry(issuer.as_str().to_owned())
            .or_default()
            .clone();
        let _one_at_a_time = issuer_lock.lock().await;
        // Another request may have refetched while this one waited.
        if let Some(keys) = self.cached(issuer, kid, Fresh::Only).await {
            return Ok(keys);
        }
        let (has_keys, cooling) = match self.cache.read().await.get(issuer.as_str()) {
            None => (false, false),
            Some(cached) => (
                !cached.keys.is_empty(),
                cached
                    .last_refetch
                    .is_some_and(|at| at.elapsed() < self.cool_down),
            ),
        };
        if cooling && !has_keys {
            return Err(Error::IssuerUnavailable {
                issuer: issuer.to_string(),
                reason: "its keys could not be fetched recently; the next attempt waits for the cool-down".into(),
            });
        }
        if !cooling {
            let known = self.cache.read().await.contains_key(issuer.as_str());
            let fetched = self.fetch(issuer).await;
            self.metrics.key_fetch(issuer.as_str(), fetched.is_ok());
            let mut cache = self.cache.write().await;
            let entry = cache.entry(issuer.as_str().to_owned()).or_default();
            // The first successful fetch starts no cool-down; refetches and
            // failures do.
            if known || fetched.is_err() {
                entry.last_refetch = Some(Instant::now());
            }
            match fetched {
                Ok(keys) => {
                    entry.keys = keys;
                    entry.fetched_at = Some(Instant::now());
                    entry.failed = None;
                }
                Err(error) => {
                    if let Error::IssuerUnavailable { reason, .. } = &error {
                        entry.failed = Some(reason.clone());
                    }
                    if entry.keys.is_empty() {
                        return Err(error);
                    }
                    tracing::warn!(%issuer, %error, "refetching the issuer's keys failed; keeping the cached keys");
                }
            }
        }
        // Stale keys still serve when a refetch failed or is cooling down.
        if let Some(keys) = self.cached(issuer, kid, Fresh::OrStale).await {
            return Ok(keys);
        }
        // A key id the cache lacks while the issuer is out of reach may be a
        // new key: the issuer's fault, not the token's.
        match self
            .cache
            .read()
            .await
            .get(issuer.as_str())
            .and_then(|c| c.failed.clone())
        {
            Some(reason) => Err(Error::IssuerUnavailable {
                issuer: issuer.to_string(),
                reason,
            }),
            None => Ok(Vec::new()),
        }
    }

    async fn cached(
        &self,
        issuer: &IssuerUrl,
        kid: Option<&str>,
        fresh: Fresh,
    ) -> Option<Vec<Jwk>> {
        let cache = self.cache.read().await;
        let cached = cache.get(issuer.as_str())?;
        let stale = cached
            .fetched_at
            .is_none_or(|at| at.elapsed() >= self.max_age);
        if stale && fresh == Fresh::Only {
            return None;
        }
        let keys = &cached.keys;
        let matching: Vec<Jwk> = keys
            .iter()
            .filter(|k| kid.is_none() || k.key_id().map(|id| id.as_str()) == kid)
            .cloned()
            .collect();
        (!matching.is_empty()).then_some(matching)
    }

    async fn fetch(&self, issuer: &IssuerUrl) -> Result<Vec<Jwk>> {
        let unavailable = |reason: String| Error::IssuerUnavailable {
            issuer: issuer.to_string(),
            reason,
        };
        let config_url = format!(
            "{}/.well-known/openid-configuration",
            issuer.as_str().trim_end_matches('/')
        );
        let document: ProviderDocument = serde_json::from_slice(
            &self.get(&config_url).await.map_err(unavailable)?,
        )
        .map_err(|e| {
            unavailable(format!(
                "{config_url}: not an OpenID provider document: {e}"
            ))
        })?;
        if document.issuer != issuer.as_str() {
            return Err(unavailable(format!(
                "{config_url} names the issuer {:?}",
                document.issuer
            )));
        }
        IssuerUrl::parse(document.jwks_uri.clone())
            .map_err(|e| unavailable(format!("jwks_uri: {e}")))?;
        let body = self.get(&document.jwks_uri).await.map_err(unavailable)?;
        let set: JsonWebKeySet<Jwk> = serde_json::from_slice(&body)
            .map_err(|e| unavailable(format!("{}: not a JWKS: {e}", document.jwks_uri)))?;
        tracing::info!(%issuer, keys = set.keys().len(), "fetched the issuer's signing keys");
        Ok(set.keys().clone())
    }

    /// GETs a document, refusing it beyond [`MAX_DOCUMENT_BYTES`].
    async fn get(&self, url: &str) -> std::result::Result<Vec<u8>, String> {
        let mut response = self
            .client
            .get(url)
            .header("Accept", "application/json")
            .send()
            .await
            .map_err(|e| format!("{url}: {e}"))?;
        if !response.status().is_success() {
            return Err(format!("{url}: HTTP {}", response.status()));
        }
        let mut body = Vec::new();
        while let Some(chunk) = response.chunk().await.map_err(|e| format!("{url}: {e}"))? {
            if body.len() + chunk.len() > MAX_DOCUMENT_BYTES {
                return Err(format!("{url}: larger than {MAX_DOCUMENT_BYTES} bytes"));
            }
            body.extend_from_slice(&chunk);
        }
        Ok(body)
    }
}
