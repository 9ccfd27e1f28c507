//! The token exchange: a verified CI identity for a scoped, short-lived
//! upload credential.

use serde::{Deserialize, Serialize};

use crate::domain::Feature;
use crate::oidc::{KeyStore, LEEWAY_SECONDS, VerifiedToken, verify};
use crate::problem::{Error, Result};
use crate::publishers::{Audit, matching, scope};
use crate::registry::Registry;
use crate::store::{NewEvent, NewUploadToken, Store, UsedJti, bounded};
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
/// the mint or the refusal as an event.
pub async fn mint(
    store: &Store,
    keys: &KeyStore,
    registry: &Registry,
    request: &MintRequest,
    now: i64,
) -> Result<Minted> {
    let mut verified = None;
    let outcome = mint_checked(store, keys, registry, request, now, &mut verified).await;
    if let Err(error) = &outcome
        && error.status_code_is_client_error()
    {
        let detail = match error {
            Error::InvalidPublisher(mismatches) => format!("{error}: {mismatches}"),
            other => other.to_string(),
        };
        tracing::info!(registry = %registry.name, code = error.code(), detail = %bounded(&detail), "mint refused");
        // A token that did not verify proves no identity: counted, not kept.
        let recorded = match &verified {
            None => {
                store
                    .count_refusal(registry.name.as_str(), "mint", error.code(), now)
                    .await
            }
            Some(token) => {
                store
                    .record_event(NewEvent {
                        at: now,
                        registry: registry.name.as_str(),
                        kind: "mint",
                        outcome: "refused",
                        code: error.code(),
                        publishers: None,
                        detail,
                        claims: Some(token.issuer.provider.audit(&token.claims)),
                    })
                    .await
            }
        };
        if let Err(failure) = recorded {
            tracing::error!(registry = %registry.name, %failure, "recording a refused mint failed");
        }
    }
    outcome
}

async fn mint_checked(
    store: &Store,
    keys: &KeyStore,
    registry: &Registry,
    request: &MintRequest,
    now: i64,
    verified: &mut Option<VerifiedToken>,
) -> Result<Minted> {
    // Cheap checks of the request first: nothing is consumed for them.
    let single_use = single_use(registry, request.features.as_deref())?;

    let token = verified.insert(
        verify(
            keys,
            &registry.issuers,
            &registry.audience,
            request.token.expose(),
            now,
        )
        .await?,
    );
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
    tracing::info!(registry = %registry.name, ?packages, single_use, repository = ?matched.audit.repository, "credential minted");
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
        kind: "mint",
        outcome: "minted",
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
            .map(|name| {
                serde_json::from_value::<Feature>(serde_json::Value::String(name.clone()))
                    .map_err(|_| Error::UnknownFeature(name.clone()))
            })
            .collect::<Result<Vec<_>>>()?,
        _ => registry.default_features.clone(),
    };
    if let Some(feature) = requested.iter().find(|f| !registry.features.contains(f)) {
        return Err(Error::FeatureNotOffered(
            serde_json::to_value(feature)
                .ok()
                .and_then(|v| v.as_str().map(str::to_owned))
                .unwrap_or_default(),
        ));
    }
    let single = requested.contains(&Feature::SingleUseToken);
    if single && requested.contains(&Feature::MultiUseToken) {
        return Err(Error::ConflictingFeatures);
    }
    Ok(single)
}
