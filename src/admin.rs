//! The admin API's use cases: who calls it (bearer tokens configured by
//! their SHA-256), what each token may do, and the changes it makes to
//! registries, publishers and credentials. A change is checked with the
//! rules `check-config` applies, against every registry in the store as
//! read inside the transaction that writes it (which no other change of
//! registries can interleave with), and written with the `admin` event
//! that records it.

use crate::config::{AdminSettings, AdminToken, validate_registries};
use crate::problem::{Error, Result};
use crate::publishers::Publisher;
use crate::registry::Registry;
use crate::store::{
    Caller, EventKind, EventPage, EventQuery, LiveCredential, ManagedPublisher, ManagedRegistry,
    NewEvent, Outcome, Revocation, Source, Store, now,
};

/// The configured admin tokens.
#[derive(Debug, Clone, Default)]
pub struct Admin {
    tokens: Vec<AdminToken>,
}

impl Admin {
    pub fn new(settings: &AdminSettings) -> Self {
        Admin {
            tokens: settings.tokens.clone(),
        }
    }

    /// The token a bearer secret is. Every configured token is compared, in
    /// constant time, whichever matches.
    pub fn authenticate(&self, bearer: Option<&str>) -> Result<Operator<'_>> {
        let secret = bearer.ok_or(Error::AdminUnauthorized(
            "send an admin token as `Authorization: Bearer <token>`",
        ))?;
        self.tokens
            .iter()
            .fold(None, |found, token| {
                let matches = token.sha256.matches(secret);
                found.or(matches.then_some(token))
            })
            .map(|token| Operator { token })
            .ok_or(Error::AdminUnauthorized("the admin token is not known"))
    }
}

/// An authenticated caller of the admin API.
#[derive(Debug, Clone, Copy)]
pub struct Operator<'a> {
    token: &'a AdminToken,
}

impl Operator<'_> {
    /// The token's name, as its events record it.
    pub fn name(&self) -> &str {
        &self.token.name
    }

    fn may_read(&self, registry: &str) -> Result<()> {
        if self.token.covers(registry) {
            Ok(())
        } else {
            Err(Error::AdminForbidden(format!(
                "see or change the registry {registry:?}"
            )))
        }
    }

    fn may_write(&self, registry: &str) -> Result<()> {
        self.may_read(registry)?;
        if self.token.read_only {
            return Err(Error::AdminForbidden(
                "change anything: it is read-only".to_owned(),
            ));
        }
        Ok(())
    }

    /// The registries this token is limited to; `None`: all.
    fn scope(&self) -> Option<Vec<String>> {
        (!self.token.registries.iter().any(|r| r == "*")).then(|| self.token.registries.clone())
    }

    /// The `admin` event of a change to `registry`.
    fn event<'r>(
        &self,
        registry: &'r str,
        outcome: Outcome,
        what: String,
        publisher: Option<&str>,
    ) -> NewEvent<'r> {
        NewEvent {
            at: now(),
            registry,
            caller: Caller::Identified,
            kind: EventKind::Admin,
            outcome,
            code: "ok",
            publishers: publisher.map(|id| vec![id.to_owned()]),
            detail: format!("{what}, by the admin token {:?}", self.name()),
            claims: None,
        }
    }
}

/// The registries the operator may see.
pub async fn registries(store: &Store, operator: Operator<'_>) -> Result<Vec<ManagedRegistry>> {
    let mut all = store.managed_registries().await?;
    all.retain(|r| operator.may_read(r.registry.name.as_str()).is_ok());
    Ok(all)
}

/// One registry, read from the store.
pub async fn registry(
    store: &Store,
    operator: Operator<'_>,
    name: &str,
) -> Result<ManagedRegistry> {
    operator.may_read(name)?;
    store
        .managed_registry(name)
        .await?
        .ok_or_else(|| Error::UnknownRegistry(name.to_owned()))
}

/// A registry the operator may change, that the admin API manages.
async fn api_registry(
    store: &Store,
    operator: Operator<'_>,
    name: &str,
) -> Result<ManagedRegistry> {
    operator.may_write(name)?;
    let found = registry(store, operator, name).await?;
    if found.source == Source::Config {
        return Err(Error::ManagedByConfig(format!("the registry {name:?}")));
    }
    Ok(found)
}

/// Creates a registry (with the publishers it lists) managed by the API.
pub async fn create_registry(
    store: &Store,
    operator: Operator<'_>,
    mut registry: Registry,
) -> Result<ManagedRegistry> {
    let name = registry.name.to_string();
    operator.may_write(&name)?;
    registry
        .resolve_defaults()
        .map_err(|(field, reason)| invalid(format!("registries.{name}.{field}"), reason))?;
    let event = operator.event(
        &name,
        Outcome::Created,
        format!("registry {name:?} created"),
        None,
    );
    store
        .write_api_registry(&registry, false, event, |mut all| {
            all.push(registry.clone());
            check(&all)
        })
        .await?;
    self::registry(store, operator, &name).await
}

/// Replaces the settings and issuers of a registry managed by the API;
/// its publishers stay.
pub async fn update_registry(
    store: &Store,
    operator: Operator<'_>,
    name: &str,
    mut registry: Registry,
) -> Result<ManagedRegistry> {
    if registry.name.as_str() != name {
        return Err(Error::InvalidPayload(format!(
            "the body names the registry {:?}, the path {name:?}; a registry is not renamed",
            registry.name.as_str()
        )));
    }
    if !registry.publishers.is_empty() {
        return Err(Error::InvalidPayload(
            "publishers are added and removed at …/publishers, not here".to_owned(),
        ));
    }
    api_registry(store, operator, name).await?;
    registry
        .resolve_defaults()
        .map_err(|(field, reason)| invalid(format!("registries.{name}.{field}"), reason))?;
    let event = operator.event(
        name,
        Outcome::Updated,
        format!("registry {name:?} updated"),
        None,
    );
    let mut checked = registry.clone();
    store
        .write_api_registry(&registry, true, event, |mut all| {
            // Checked with the publishers it has when the change is written.
            if let Some(stored) = all.iter_mut().find(|r| r.name.as_str() == name) {
                checked.publishers = std::mem::take(&mut stored.publishers);
                *stored = checked;
            }
            check(&all)
        })
        .await?;
    self::registry(store, operator, name).await
}

/// Deletes a registry managed by the API; its live credentials are revoked
/// with it only when `revoke`.
pub async fn delete_registry(
    store: &Store,
    operator: Operator<'_>,
    name: &str,
    revoke: bool,
) -> Result<()> {
    api_registry(store, operator, name).await?;
    let event = operator.event(
        name,
        Outcome::Deleted,
        format!("registry {name:?} deleted"),
        None,
    );
    store.delete_api_registry(name, revoke, event).await
}

/// Adds a publisher, managed by the API, to a registry of either source.
pub async fn add_publisher(
    store: &Store,
    operator: Operator<'_>,
    name: &str,
    publisher: Publisher,
) -> Result<ManagedPublisher> {
    operator.may_write(name)?;
    registry(store, operator, name).await?;
    let id = publisher.key();
    let event = operator.event(
        name,
        Outcome::Created,
        format!("publisher {id} added"),
        Some(&id),
    );
    store
        .add_api_publisher(name, &publisher, event, |mut all| {
            // Gone since it was read: the insert fails on the foreign key.
            if let Some(target) = all.iter_mut().find(|r| r.name.as_str() == name) {
                target.publishers.push(publisher.clone());
            }
            check(&all)
        })
        .await?;
    Ok(ManagedPublisher {
        id,
        source: Source::Api,
        publisher,
    })
}

/// Removes a publisher managed by the API.
pub async fn remove_publisher(
    store: &Store,
    operator: Operator<'_>,
    name: &str,
    id: &str,
) -> Result<()> {
    operator.may_write(name)?;
    registry(store, operator, name).await?;
    if !is_id(id) {
        return Err(Error::UnknownPublisher(id.to_owned()));
    }
    let event = operator.event(
        name,
        Outcome::Deleted,
        format!("publisher {id} removed"),
        Some(id),
    );
    store.remove_api_publisher(name, id, event).await
}

/// A registry's live credentials.
pub async fn credentials(
    store: &Store,
    operator: Operator<'_>,
    name: &str,
) -> Result<Vec<LiveCredential>> {
    registry(store, operator, name).await?;
    store.live_credentials(name, now()).await
}

/// Revokes one credential, or every credential of a publisher; how many.
pub async fn revoke(
    store: &Store,
    operator: Operator<'_>,
    name: &str,
    which: Revocation<'_>,
) -> Result<u64> {
    operator.may_write(name)?;
    let found = registry(store, operator, name).await?;
    let (what, publisher) = match which {
        Revocation::One(id) if !is_id(id) => return Err(Error::UnknownCredential(id.to_owned())),
        Revocation::One(id) => (format!("credential {id} revoked"), None),
        Revocation::OfPublisher(id) => {
            if !found.publishers.iter().any(|p| p.id == id) {
                return Err(Error::UnknownPublisher(id.to_owned()));
            }
            (format!("credentials of publisher {id} revoked"), Some(id))
        }
    };
    let event = operator.event(name, Outcome::Revoked, what, publisher);
    let revoked = store.revoke_credentials(name, which, event).await?;
    match which {
        Revocation::One(id) if revoked == 0 => Err(Error::UnknownCredential(id.to_owned())),
        _ => Ok(revoked),
    }
}

/// Events, limited to the registries the operator may see.
pub async fn events(
    store: &Store,
    operator: Operator<'_>,
    mut query: EventQuery,
) -> Result<EventPage> {
    if let Some(registry) = &query.registry {
        operator.may_read(registry)?;
    }
    query.within = operator.scope();
    store.find_events(&query).await
}

/// Whether `id` can be a publisher's or a credential's id: 64 lower-case hex
/// digits (a SHA-256). Anything else names nothing, and is not looked up (a
/// NUL in it would be an error of PostgreSQL's, not a miss).
fn is_id(id: &str) -> bool {
    id.len() == 64 && id.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

/// `check-config`'s rules, registries named by name rather than position;
/// run by the store on the registries it reads inside the transaction that
/// writes the change.
fn check(registries: &[Registry]) -> Result<()> {
    validate_registries(registries, |i| {
        format!("registries.{}", registries[i].name.as_str())
    })
    .map_err(|error| match error {
        Error::Config { key, reason } => invalid(key, reason),
        other => other,
    })
}

fn invalid(key: String, reason: String) -> Error {
    Error::InvalidSettings { key, reason }
}
