//! The registry side of a credential's life: checks (introspection,
//! forward-auth and the upload gateway), consumption of single-use
//! credentials, and revocation.
//! Every check and revocation is recorded as an event, but for the reads
//! forward-auth lets through, which are counted per hour.

use serde::Serialize;

use crate::problem::{Error, Result};
use crate::publishers::{Audit, scope};
use crate::registry::Registry;
use crate::store::{Caller, EventKind, NewEvent, Outcome, Store, StoredUploadToken, bounded};

/// What a registry or its proxy asks about a presented credential.
#[derive(Debug, Clone, Copy)]
pub struct CheckRequest<'a> {
    /// The package about to be published, when known.
    pub package: Option<&'a str>,
    /// Whether this check is an upload that consumes a single-use credential.
    pub consume: bool,
    /// Who asks, for the event log: `introspect`, `forward-auth` or `gateway`.
    pub via: &'static str,
    /// Whether the check is kept as an event. Reads through forward-auth
    /// are not (cargo reads an index entry per dependency): they are
    /// counted per hour and in the metrics, as code `read` when let through.
    pub kept: bool,
}

/// A credential that is valid for the request.
#[derive(Debug, Clone, Serialize)]
pub struct Active {
    /// The credential's id: the SHA-256 (hex) under which it is stored.
    #[serde(skip)]
    pub id: String,
    pub registry: String,
    pub packages: Vec<String>,
    pub expires: i64,
    pub single_use: bool,
    /// The claims of the CI job it was minted for.
    pub publisher: Audit,
}

/// Why a presented credential is not valid for a request. Told to the event
/// log, never to the client (no oracle).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Inactive {
    /// Not a credential of this registry (unknown, or another registry's).
    Unknown,
    Expired,
    Revoked,
    /// A single-use credential already consumed (also: lost the race).
    Consumed,
    /// Valid, but not for the package asked about.
    OutOfScope,
}

impl Inactive {
    /// The answer to a client that presented the credential for `package`:
    /// 403 when only the package is wrong (the client holds a valid
    /// credential, so this tells it nothing new), 401 whatever else it is.
    pub fn refusal(self, package: Option<String>) -> Error {
        match self {
            Inactive::OutOfScope => Error::PackageNotAllowed(vec![package.unwrap_or_default()]),
            _ => Error::InvalidCredential,
        }
    }

    pub fn code(self) -> &'static str {
        match self {
            Inactive::Unknown => "unknown-credential",
            Inactive::Expired => "credential-expired",
            Inactive::Revoked => "credential-revoked",
            Inactive::Consumed => "credential-consumed",
            Inactive::OutOfScope => "package-not-allowed",
        }
    }
}

/// Checks `presented` against `registry` at `now`, consuming it when the
/// request asks and it is single-use, and records the check.
pub async fn check(
    store: &Store,
    registry: &Registry,
    presented: &str,
    request: CheckRequest<'_>,
    now: i64,
) -> Result<std::result::Result<Active, Inactive>> {
    let hash = super::hash(presented);
    let stored = store.upload_token(registry.name.as_str(), &hash).await?;
    let mut consumed = false;
    let usable = stored.as_ref().ok_or(Inactive::Unknown).and_then(|token| {
        live(token, now)?;
        match request.package {
            Some(p) if !scope::covers(registry.ecosystem, &token.packages, p) => {
                Err(Inactive::OutOfScope)
            }
            _ => Ok(token),
        }
    });
    let outcome = match usable {
        Ok(token) if request.consume && token.single_use => {
            consumed = store
                .consume_upload_token(registry.name.as_str(), &hash, now)
                .await?;
            if consumed {
                Ok(token)
            } else {
                Err(Inactive::Consumed)
            }
        }
        other => other,
    };
    let package = bounded(request.package.unwrap_or("-"));
    let (outcome_name, code) = match outcome {
        Ok(_) if consumed => (Outcome::Consumed, "ok"),
        Ok(_) if request.kept => (Outcome::Active, "ok"),
        Ok(_) => (Outcome::Active, "read"),
        Err(reason) => (Outcome::Inactive, reason.code()),
    };
    tracing::info!(registry = %registry.name, via = request.via, %package, outcome = outcome_name.as_str(), code, "credential checked");
    store
        .record_event(NewEvent {
            at: now,
            registry: registry.name.as_str(),
            // A value that is no credential of this registry proves nothing;
            // a check that is not kept is counted like an anonymous request.
            caller: Caller::proven(request.kept && stored.is_some()),
            kind: EventKind::Check,
            outcome: outcome_name,
            code,
            publishers: stored.as_ref().map(|t| t.publishers.clone()),
            detail: format!("{}; package: {package}", request.via),
            claims: stored.as_ref().map(|t| t.claims.clone()),
        })
        .await?;
    Ok(outcome.map(|token| Active {
        id: hash.clone(),
        registry: registry.name.as_str().to_owned(),
        packages: token.packages.clone(),
        expires: token.expires_at,
        single_use: token.single_use,
        publisher: token.claims.clone(),
    }))
}

/// Whether a stored credential can still be used at `now`, whatever for.
fn live(token: &StoredUploadToken, now: i64) -> std::result::Result<(), Inactive> {
    if token.revoked_at.is_some() {
        Err(Inactive::Revoked)
    } else if token.expires_at <= now {
        Err(Inactive::Expired)
    } else if token.single_use && token.used_at.is_some() {
        Err(Inactive::Consumed)
    } else {
        Ok(())
    }
}

/// Whether `presented` is a live credential of `registry`, without
/// recording anything: a cheap gate before reading an upload, which the
/// real check follows.
pub async fn is_live(
    store: &Store,
    registry: &Registry,
    presented: &str,
    now: i64,
) -> Result<bool> {
    let stored = store
        .upload_token(registry.name.as_str(), &super::hash(presented))
        .await?;
    Ok(stored.is_some_and(|token| live(&token, now).is_ok()))
}

/// Revokes `presented` if it is a credential of `registry`. Succeeds whether
/// or not it was one, so that the answer tells nothing; the event log says.
pub async fn revoke(store: &Store, registry: &Registry, presented: &str, now: i64) -> Result<()> {
    let hash = super::hash(presented);
    let revoked = store
        .revoke_upload_token(registry.name.as_str(), &hash, now)
        .await?;
    tracing::info!(registry = %registry.name, revoked, "credential revocation");
    // Unknown, or already revoked: nothing proves who asked.
    let (outcome, code, stored) = if revoked {
        let stored = store.upload_token(registry.name.as_str(), &hash).await?;
        (Outcome::Revoked, "ok", stored)
    } else {
        (Outcome::Refused, "unknown-credential", None)
    };
    let recorded = store
        .record_event(NewEvent {
            at: now,
            registry: registry.name.as_str(),
            caller: Caller::proven(revoked),
            kind: EventKind::Revoke,
            outcome,
            code,
            publishers: stored.as_ref().map(|t| t.publishers.clone()),
            detail: "revoked".to_owned(),
            claims: stored.map(|t| t.claims),
        })
        .await;
    match recorded {
        // Over the ceiling of refusals, a burn that revoked nothing is not
        // counted, and answered as any other: a 429 would tell a credential
        // from anything else.
        Err(Error::RateLimited { .. }) => Ok(()),
        other => other,
    }
}
