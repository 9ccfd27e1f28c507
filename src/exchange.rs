//! The token exchange: a verified CI identity for a scoped, short-lived
//! upload credential.

use serde::{Deserialize, Serialize};

use crate::domain::Feature;
use crate::oidc::{KeyStore, LEEWAY_SECONDS, VerifiedToken, verify};
use crate::problem::{Error, Result};
use crate::publishers::{Audit, matching, scope};
use crate::registry::Registry;
use crate::store::{Caller, EventKind, NewEvent, NewUploadToken, Outcome, Store, UsedJti, bounded};
use crate::tokens::{Credential, Secret};

/// A mint request: PEP 807's `token` and `features`, and trustpub's
/// `packages` to narrow the scope.
#[derive(Debug, Deserialize)]
pub struct MintRequest {
    pub token: Secret,
    #[serde(default)]
    pub features: Option<Vec<String>>,
    #[serde(default)]
    pub packages: Option<Vec<String>>,
}

/// A minted credential, as answered. Deliberately not `Debug`: it holds the
/// credential.
#[derive(Serialize)]
pub struct Minted {
    pub token: String,
    pub expires: i64,
    pub features: Vec<Feature>,
    pub packages: Vec<String>,
}

/// Mints a credential for `request` on `registry` at time `now`, recording
/// the mint or the refusal.
pub async fn mint(
    store: &Store,
    keys: &KeyStore,
    registry: &Registry,
    request: &MintRequest,
    now: i64,
) -> Result<Minted> {
    let checked = async {
        // Cheap checks of the request first: nothing is consumed for them.
        let single_use = single_use(registry, request.features.as_deref())?;
        let token = verify(
            keys,
            &registry.issuers,
            &registry.audience,
            request.token.expose(),
            now,
        )
        .await?;
        Ok::<_, Error>((single_use, token))
    };
    let (single_use, token) = match checked.await {
        Ok(checked) => checked,
        Err(error) => return Err(refused(store, registry, now, error, None).await),
    };
    match grant(store, registry, request, now, single_use, &token).await {
        Ok(minted) => Ok(minted),
        Err(error) => {
            let claims = crate::publishers::audit(&token);
            Err(refused(store, registry, now, error, Some(claims)).await)
        }
    }
}

/// Records a refused mint (a client's mistake; the server's own failures
/// are logged where they happen) and gives the error back. `claims`: the
/// verified identity, if the token got that far; without one, the refusal
/// is only counted.
async fn refused(
    store: &Store,
    registry: &Registry,
    now: i64,
    error: Error,
    claims: Option<Audit>,
) -> Error {
    if !error.status_code_is_client_error() {
        return error;
    }
    let detail = match &error {
        Error::InvalidPublisher(mismatches) => format!("{error}: {mismatches}"),
        other => other.to_string(),
    };
    tracing::info!(registry = %registry.name, code = error.code(), detail = %bounded(&detail), "mint refused");
    let recorded = store
        .record_event(NewEvent {
            at: now,
            registry: registry.name.as_str(),
            caller: Caller::proven(claims.is_some()),
            kind: EventKind::Mint,
            outcome: Outcome::Refused,
            code: error.code(),
            publishers: None,
            detail,
            claims,
        })
        .await;
    match recorded {
        Ok(()) => error,
        // Over the ceiling of refusals: the client is told to slow down.
        Err(limited @ Error::RateLimited { .. }) => limited,
        Err(failure) => {
            tracing::error!(registry = %registry.name, %failure, "recording a refused mint failed");
            error
        }
    }
}

/// Mints for a verified token: the publishers it matches, the scope they
/// allow, then the credential, its `jti` and its event in one write.
async fn grant(
    store: &Store,
    registry: &Registry,
    request: &MintRequest,
    now: i64,
    single_use: bool,
    token: &VerifiedToken,
) -> Result<Minted> {
    let matched = matching(&registry.publishers, token)?;
    let allowed: Vec<_> = matched
        .publishers
        .iter()
        .flat_map(|p| p.packages.iter())
        .collect();
    let packages = scope::grant(registry.ecosystem, &allowed, request.packages.as_deref())?;

    let credential = Credential::generate(&registry.token_prefix);
    let expires = now + i64::from(registry.token_lifetime.seconds());
    let publishers: Vec<String> = matched.publishers.iter().map(|p| p.key()).collect();
    let features = vec![if single_use {
        Feature::SingleUseToken
    } else {
        Feature::MultiUseToken
    }];
    store
        .record_mint(
            UsedJti {
                issuer: token.issuer.url.as_str(),
                jti: &token.jti,
                keep_until: token.expires_at.saturating_add(LEEWAY_SECONDS),
            },
            NewUploadToken {
                registry: registry.name.as_str(),
                hash: credential.hash(),
                publishers: publishers.clone(),
                packages: &packages,
                single_use,
                created_at: now,
                expires_at: expires,
                claims: &matched.audit,
            },
            minted_event(registry, now, publishers, &packages, &matched.audit),
        )
        .await?;
    tracing::info!(registry = %registry.name, ?packages, single_use, identity = ?matched.audit.identity, "credential minted");
    Ok(Minted {
        token: credential.expose().to_owned(),
        expires,
        features,
        packages,
    })
}

fn minted_event<'a>(
    registry: &'a Registry,
    now: i64,
    publishers: Vec<String>,
    packages: &[String],
    audit: &Audit,
) -> NewEvent<'a> {
    NewEvent {
        at: now,
        registry: registry.name.as_str(),
        caller: Caller::Identified,
        kind: EventKind::Mint,
        outcome: Outcome::Minted,
        code: "ok",
        publishers: Some(publishers),
        detail: format!("scope: {}", packages.join(", ")),
        claims: Some(audit.clone()),
    }
}

/// Whether the credential is single-use: the requested features, or the
/// registry's defaults when none are requested.
fn single_use(registry: &Registry, requested: Option<&[String]>) -> Result<bool> {
    let requested = match requested {
        Some(list) if !list.is_empty() => list
            .iter()
            .map(|name| Feature::parse(name).ok_or_else(|| Error::UnknownFeature(name.clone())))
            .collect::<Result<Vec<_>>>()?,
        _ => registry.default_features.clone(),
    };
    if let Some(feature) = requested.iter().find(|f| !registry.features.contains(f)) {
        return Err(Error::FeatureNotOffered(feature.as_str().to_owned()));
    }
    let single = requested.contains(&Feature::SingleUseToken);
    if single && requested.contains(&Feature::MultiUseToken) {
        return Err(Error::ConflictingFeatures);
    }
    Ok(single)
}
