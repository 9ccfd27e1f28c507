//! Registries, their issuers and their trusted publishers.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use sqlx::AssertSqlSafe;

use super::events::NewEvent;
use super::rows::{Insert, TableRow, table_row};
use super::{Store, corrupt, from_json, now, random_bytes, to_json};
use crate::config::{Backend, validate_with_api_registries};
use crate::domain::{
    Audience, Ecosystem, Issuer, IssuerUrl, Provider, RegistryName, SecretDigest, TokenLifetime,
    TokenPrefix, UploadUrl, without_port,
};
use crate::problem::{Error, Result};
use crate::publishers::Publisher;
use crate::registry::Registry;

table_row! {
    /// A row of `registries`: the registry's own settings (its issuers and
    /// publishers have their tables), lists and tables as JSON, booleans as
    /// integers, with the keys it is found by (`upload_*`) and who manages
    /// it (`source`).
    #[derive(sqlx::FromRow)]
    struct RegistryRow in "registries" {
        name: String,
        upload_url: String,
        upload_authority: String,
        upload_path: String,
        upload_host: String,
        audience: String,
        ecosystem: String,
        pypi_paths: i64,
        token_lifetime: i64,
        token_prefix: String,
        features: String,
        default_features: String,
        introspect_secret_sha256: Option<String>,
        forward_auth: String,
        gateway: Option<String>,
        rate_limits: String,
        source: String,
        created_at: i64,
        updated_at: i64,
    }
}

impl RegistryRow {
    /// The row of a registry managed by `source`, written at `now`.
    fn new(registry: &Registry, source: Source, now: i64) -> Self {
        let url = &registry.upload_url;
        RegistryRow {
            name: registry.name.to_string(),
            upload_url: url.to_string(),
            upload_authority: url.authority().to_ascii_lowercase(),
            upload_path: url.discovery_path(),
            upload_host: url.host().to_ascii_lowercase(),
            audience: registry.audience.to_string(),
            ecosystem: registry.ecosystem.as_str().to_owned(),
            pypi_paths: i64::from(registry.pypi_paths),
            token_lifetime: i64::from(registry.token_lifetime),
            token_prefix: registry.token_prefix.to_string(),
            features: to_json(&registry.features),
            default_features: to_json(&registry.default_features),
            introspect_secret_sha256: registry.introspect_secret_sha256.clone().map(String::from),
            forward_auth: to_json(&registry.forward_auth),
            gateway: registry.gateway.as_ref().map(to_json),
            rate_limits: to_json(&registry.rate_limits),
            source: source.as_str().to_owned(),
            created_at: now,
            updated_at: now,
        }
    }

    /// The registry of the row, with its issuers and publishers.
    fn into_registry(self, issuers: Vec<Issuer>, publishers: Vec<Publisher>) -> Result<Registry> {
        Ok(Registry {
            name: RegistryName::parse(self.name).map_err(corrupt)?,
            upload_url: UploadUrl::parse(self.upload_url).map_err(corrupt)?,
            audience: Audience::parse(self.audience).map_err(corrupt)?,
            ecosystem: Ecosystem::parse(&self.ecosystem).map_err(corrupt)?,
            pypi_paths: self.pypi_paths != 0,
            token_lifetime: TokenLifetime::parse(self.token_lifetime).map_err(corrupt)?,
            token_prefix: TokenPrefix::parse(self.token_prefix).map_err(corrupt)?,
            features: from_json(&self.features)?,
            default_features: from_json(&self.default_features)?,
            issuers,
            publishers,
            introspect_secret_sha256: self
                .introspect_secret_sha256
                .map(SecretDigest::parse)
                .transpose()
                .map_err(corrupt)?,
            forward_auth: from_json(&self.forward_auth)?,
            gateway: self.gateway.map(|json| from_json(&json)).transpose()?,
            rate_limits: from_json(&self.rate_limits)?,
        })
    }
}

table_row! {
    /// A row of `registry_issuers`: an issuer a registry trusts.
    #[derive(sqlx::FromRow)]
    struct IssuerRow in "registry_issuers" {
        registry: String,
        url: String,
        provider: String,
        max_token_lifetime: i64,
    }
}

impl IssuerRow {
    fn new(registry: &str, issuer: &Issuer) -> Self {
        IssuerRow {
            registry: registry.to_owned(),
            url: issuer.url.to_string(),
            provider: issuer.provider.as_str().to_owned(),
            max_token_lifetime: i64::from(issuer.max_token_lifetime),
        }
    }

    fn into_issuer(self) -> Result<Issuer> {
        Ok(Issuer {
            url: IssuerUrl::parse(self.url).map_err(corrupt)?,
            provider: Provider::parse(&self.provider).map_err(corrupt)?,
            max_token_lifetime: u32::try_from(self.max_token_lifetime)
                .map_err(|e| corrupt(e.to_string()))?,
        })
    }
}

table_row! {
    /// A row of `publishers`: a trusted publisher of a registry under its
    /// stable key, the whole publisher as JSON (`spec`), with its provider
    /// and issuer beside it for queries, and who manages it.
    #[derive(sqlx::FromRow)]
    struct PublisherRow in "publishers" {
        registry: String,
        key: String,
        provider: String,
        issuer: String,
        spec: String,
        source: String,
        created_at: i64,
    }
}

impl PublisherRow {
    fn new(registry: &str, publisher: &Publisher, source: Source, now: i64) -> Self {
        PublisherRow {
            registry: registry.to_owned(),
            key: publisher.key(),
            provider: publisher.identity.provider().as_str().to_owned(),
            issuer: publisher.issuer.as_str().to_owned(),
            spec: to_json(publisher),
            source: source.as_str().to_owned(),
            created_at: now,
        }
    }

    fn into_managed(self) -> Result<ManagedPublisher> {
        Ok(ManagedPublisher {
            source: Source::parse(&self.source)?,
            publisher: from_json(&self.spec)?,
            id: self.key,
        })
    }
}

/// `SELECT` of every column of `R`'s table, then `tail`.
fn select<R: TableRow>(tail: &str) -> AssertSqlSafe<String> {
    AssertSqlSafe(format!("{} {tail}", R::SELECT))
}

/// Every registry, as read at one moment, used for `ttl`: discovery, the
/// token exchange and the registry side find their registry in memory
/// instead of asking the store on every request. With a `ttl` of zero,
/// every lookup reads the store.
///
/// Every change (a configuration sync, an admin API change) gives the stored
/// version a fresh random value in its transaction, and clears this
/// instance's copy. Once the copy is `ttl` old, a task on the runtime the
/// store was opened on reads the version, and reads every registry again
/// only if it changed: another instance sharing the database sees a change
/// `ttl` later at most (plus that read). Meanwhile every request goes on
/// with the copy it has, so neither the read nor the building of the new
/// copy holds up an HTTP worker; a failed check leaves the copy in use for
/// another `ttl`. When there is no copy (at start, after a clear), the
/// requests wait for one read instead of making their own.
#[derive(Debug, Clone)]
pub(super) struct Cache {
    ttl: Duration,
    copy: Arc<RwLock<Option<Copy>>>,
    reading: Arc<tokio::sync::Mutex<()>>,
    /// Counts the clears: a read that began before one is not kept.
    clears: Arc<AtomicU64>,
    /// Where the copy is renewed.
    runtime: tokio::runtime::Handle,
}

/// The registries as read from the store.
#[derive(Debug)]
struct Copy {
    snapshot: Arc<Snapshot>,
    /// The stored version they were read at (or after).
    version: i64,
    /// When they were read, or last found unchanged.
    checked_at: Instant,
}

impl Cache {
    /// Must be called on a Tokio runtime: the copy is renewed on it.
    pub(super) fn new(ttl: Duration) -> Self {
        Cache {
            ttl,
            copy: Arc::default(),
            reading: Arc::default(),
            clears: Arc::default(),
            runtime: tokio::runtime::Handle::current(),
        }
    }

    /// The copy, if there is one, and whether it was checked within `ttl`.
    fn get(&self) -> Option<(Arc<Snapshot>, bool)> {
        let copy = self.copy.read().ok()?;
        let current = copy.as_ref()?;
        Some((
            current.snapshot.clone(),
            current.checked_at.elapsed() < self.ttl,
        ))
    }

    /// The copy, if it is of `version`: the registries have not changed
    /// since it was read, and it is good for another `ttl`.
    fn unchanged(&self, version: i64) -> Option<Arc<Snapshot>> {
        let mut copy = self.copy.write().ok()?;
        let current = copy.as_mut().filter(|c| c.version == version)?;
        current.checked_at = Instant::now();
        Some(current.snapshot.clone())
    }

    /// After a failed check: the copy is used for another `ttl` before the
    /// next one, rather than every request starting a check that fails.
    fn check_later(&self) {
        if let Ok(mut copy) = self.copy.write()
            && let Some(current) = copy.as_mut()
        {
            current.checked_at = Instant::now();
        }
    }

    /// Keeps `snapshot`, read at `version` after `clears` clears, unless
    /// another clear came since (the read may have missed the change it was
    /// for).
    fn put(&self, snapshot: Arc<Snapshot>, version: i64, clears: u64) {
        if let Ok(mut copy) = self.copy.write()
            && self.clears.load(Ordering::SeqCst) == clears
        {
            *copy = Some(Copy {
                snapshot,
                version,
                checked_at: Instant::now(),
            });
        }
    }

    fn clear(&self) {
        if let Ok(mut copy) = self.copy.write() {
            self.clears.fetch_add(1, Ordering::SeqCst);
            *copy = None;
        }
    }
}

/// Every registry, when they were read, and indexes to find them by name,
/// by upload path and by host, so that a lookup costs the same with a
/// thousand registries as with one.
#[derive(Debug)]
struct Snapshot {
    registries: Vec<Registry>,
    by_name: HashMap<String, usize>,
    /// By [`crate::domain::discovery_path`] of the upload URL.
    by_path: HashMap<String, Vec<usize>>,
    /// By the upload URL's lower-case host, whatever its port.
    by_host: HashMap<String, Vec<usize>>,
}

impl Snapshot {
    fn new(registries: Vec<Registry>) -> Self {
        let mut snapshot = Snapshot {
            by_name: HashMap::with_capacity(registries.len()),
            by_path: HashMap::new(),
            by_host: HashMap::new(),
            registries: Vec::new(),
        };
        for (index, registry) in registries.iter().enumerate() {
            snapshot
                .by_name
                .insert(registry.name.as_str().to_owned(), index);
            let url = &registry.upload_url;
            snapshot
                .by_path
                .entry(url.discovery_path())
                .or_default()
                .push(index);
            snapshot
                .by_host
                .entry(url.host().to_ascii_lowercase())
                .or_default()
                .push(index);
        }
        snapshot.registries = registries;
        snapshot
    }

    fn named(&self, name: &str) -> Option<&Registry> {
        self.by_name.get(name).map(|&i| &self.registries[i])
    }

    fn listed<'a>(
        &'a self,
        index: &'a HashMap<String, Vec<usize>>,
        key: &str,
    ) -> impl Iterator<Item = &'a Registry> {
        index
            .get(key)
            .into_iter()
            .flatten()
            .map(|&i| &self.registries[i])
    }

    fn at_path(&self, path: &str) -> impl Iterator<Item = &Registry> {
        self.listed(&self.by_path, path)
    }

    /// `host`: lower-case, without a port.
    fn on_host(&self, host: &str) -> impl Iterator<Item = &Registry> {
        self.listed(&self.by_host, host)
    }
}

/// Who manages a registry or publisher (`source` in the tables): the
/// configuration file, or the admin API.
#[derive(Debug, Clone, Copy, PartialEq, Eq, strum::IntoStaticStr, strum::EnumString)]
#[strum(serialize_all = "lowercase")]
pub enum Source {
    Config,
    Api,
}

impl Source {
    pub fn as_str(self) -> &'static str {
        self.into()
    }

    fn parse(text: &str) -> Result<Self> {
        text.parse()
            .map_err(|_| corrupt(format!("unknown source {text:?}")))
    }
}

/// A registry as the admin API shows it: who manages it, and its
/// publishers each with its id and source.
#[derive(Debug, Clone)]
pub struct ManagedRegistry {
    pub registry: Registry,
    pub source: Source,
    pub publishers: Vec<ManagedPublisher>,
}

/// A publisher with its stable id ([`Publisher::key`]) and source.
#[derive(Debug, Clone)]
pub struct ManagedPublisher {
    pub id: String,
    pub source: Source,
    pub publisher: Publisher,
}

/// A transaction on the writer.
type Tx = sqlx::Transaction<'static, sqlx::Any>;

/// What a sync changed, for the log.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct SyncReport {
    pub registries_upserted: usize,
    /// The names of the registries removed: no longer in the file.
    pub registries_removed: Vec<String>,
    pub publishers_added: usize,
    pub publishers_removed: usize,
}

impl Store {
    /// Makes the store's configuration-managed registries and publishers those
    /// of the file: adds and updates what it lists, removes what it no longer
    /// lists. One transaction; nothing is written when a registry of the
    /// file clashes with one the admin API created
    /// ([`crate::config::validate_with_api_registries`]).
    pub async fn sync_registries(&self, registries: &[Registry]) -> Result<SyncReport> {
        self.within_timeout(async {
            let mut report = SyncReport::default();
            let now = now();
            let (mut tx, stored) = self.begin_change().await?;
            let api = api_registries(&mut tx, stored).await?;
            validate_with_api_registries(registries, &api)?;

            let existing: Vec<String> =
                sqlx::query_scalar("SELECT name FROM registries WHERE source = $1")
                    .bind(Source::Config.as_str())
                    .fetch_all(&mut *tx)
                    .await?;
            let wanted: HashSet<&str> = registries.iter().map(|r| r.name.as_str()).collect();
            for name in existing.iter().filter(|n| !wanted.contains(n.as_str())) {
                delete_registry(&mut tx, name).await?;
                report.registries_removed.push(name.clone());
            }

            for registry in registries {
                let name = registry.name.as_str();
                write_registry(&mut tx, registry, Source::Config, now).await?;
                report.registries_upserted += 1;

                let stored: Vec<String> = sqlx::query_scalar(
                    "SELECT key FROM publishers WHERE registry = $1 AND source = $2",
                )
                .bind(name)
                .bind(Source::Config.as_str())
                .fetch_all(&mut *tx)
                .await?;
                let stored: HashSet<String> = stored.into_iter().collect();
                let keyed: Vec<(String, &Publisher)> =
                    registry.publishers.iter().map(|p| (p.key(), p)).collect();
                let wanted: HashSet<&str> = keyed.iter().map(|(k, _)| k.as_str()).collect();
                for key in stored.iter().filter(|k| !wanted.contains(k.as_str())) {
                    delete_publisher(&mut tx, name, key).await?;
                    report.publishers_removed += 1;
                }
                let added: Vec<&Publisher> = keyed
                    .iter()
                    .filter(|(k, _)| !stored.contains(k))
                    .map(|(_, publisher)| *publisher)
                    .collect();
                insert_publishers(&mut tx, name, &added, Source::Config, now).await?;
                report.publishers_added += added.len();
            }
            self.commit_change(tx).await?;
            Ok(report)
        })
        .await
    }

    /// Every registry, with its issuers and publishers, ordered by name:
    /// read from the store when they changed, checked at most once per
    /// `database.registry_cache_ttl`.
    async fn registries(&self) -> Result<Arc<Snapshot>> {
        let cache = &self.registries;
        if cache.ttl.is_zero() {
            return self
                .within_timeout(async {
                    let registries = registries_in(&mut *self.pool().acquire().await?).await?;
                    Ok(Arc::new(Snapshot::new(registries)))
                })
                .await;
        }
        match cache.get() {
            Some((current, true)) => Ok(current),
            Some((stale, false)) => {
                // Out of date: one task checks the store, unless one
                // already does.
                if let Ok(reading) = cache.reading.clone().try_lock_owned() {
                    let store = self.clone();
                    cache.runtime.spawn(async move {
                        if let Err(error) = store.renew_registries().await {
                            store.registries.check_later();
                            tracing::warn!(
                                %error,
                                "the registries could not be checked; the copy \
                                 read before goes on being used until the next check"
                            );
                        }
                        drop(reading);
                    });
                }
                Ok(stale)
            }
            // None at all (at start, or cleared by a change): every request
            // waits for the one read.
            None => {
                let _reading = cache.reading.lock().await;
                self.renew_registries().await
            }
        }
    }

    /// Renews the cached copy of the registries, within
    /// `database.query_timeout`: keeps it if the stored version is the
    /// copy's, else reads them all (three queries, whatever their number).
    /// The caller holds `reading`.
    async fn renew_registries(&self) -> Result<Arc<Snapshot>> {
        let cache = &self.registries;
        // Another request may have read them while this one waited.
        if let Some((current, true)) = cache.get() {
            return Ok(current);
        }
        let clears = cache.clears.load(Ordering::SeqCst);
        self.within_timeout(async {
            let mut connection = self.pool().acquire().await?;
            // Read first: the registries read after it are at least as new.
            let version: i64 = sqlx::query_scalar("SELECT version FROM registry_version")
                .fetch_one(&mut *connection)
                .await?;
            if let Some(current) = cache.unchanged(version) {
                return Ok(current);
            }
            let snapshot = Arc::new(Snapshot::new(registries_in(&mut connection).await?));
            cache.put(snapshot.clone(), version, clears);
            Ok(snapshot)
        })
        .await
    }

    /// Reads the registries into the cache now, so that the first requests
    /// find them there instead of waiting for that read. With a
    /// `registry_cache_ttl` of zero nothing is kept: the one read only shows
    /// that the stored registries can be read.
    pub async fn load_registries(&self) -> Result<()> {
        self.registries().await.map(drop)
    }

    /// The registry with this name, with its issuers and publishers.
    pub async fn registry(&self, name: &str) -> Result<Option<Registry>> {
        Ok(self.registries().await?.named(name).cloned())
    }

    /// The registries whose upload URL has this path (compared as
    /// [`crate::domain::discovery_path`] does), each with the authority
    /// (lower-case `host[:port]`) of its upload URL.
    pub async fn registries_by_upload_path(&self, path: &str) -> Result<Vec<(String, Registry)>> {
        Ok(self
            .registries()
            .await?
            .at_path(path)
            .map(|r| (r.upload_url.authority().to_ascii_lowercase(), r.clone()))
            .collect())
    }

    /// The registry that serves PyPI's implicit paths on this host
    /// (lower-case `host[:port]`), if any.
    pub async fn registry_for_pypi_host(&self, authority: &str) -> Result<Option<Registry>> {
        Ok(self
            .registries()
            .await?
            .on_host(without_port(authority))
            .find(|r| r.pypi_paths && r.upload_url.authority().eq_ignore_ascii_case(authority))
            .cloned())
    }

    /// The cargo registry whose URL has this host (lower-case `host[:port]`)
    /// and path (compared as [`crate::domain::discovery_path`] does).
    pub async fn cargo_registry_at(&self, authority: &str, path: &str) -> Result<Option<Registry>> {
        Ok(self
            .registries()
            .await?
            .at_path(path)
            .find(|r| {
                r.ecosystem == Ecosystem::Cargo
                    && r.upload_url.authority().eq_ignore_ascii_case(authority)
            })
            .cloned())
    }

    /// The registries whose upload URL is on this (lower-case) host, whatever
    /// its port.
    pub async fn registries_by_host(&self, host: &str) -> Result<Vec<Registry>> {
        Ok(self.registries().await?.on_host(host).cloned().collect())
    }

    /// The rows of the registries `tail` (`WHERE …`) selects, given its
    /// parameters.
    async fn rows_where(&self, tail: &str, parameters: &[&str]) -> Result<Vec<RegistryRow>> {
        let mut query = sqlx::query_as(select::<RegistryRow>(tail));
        for parameter in parameters {
            query = query.bind(*parameter);
        }
        Ok(query.fetch_all(self.pool()).await?)
    }

    /// Builds a registry from its row and loads its issuers and publishers,
    /// keeping who manages the registry and each publisher.
    async fn complete_managed(&self, row: RegistryRow) -> Result<ManagedRegistry> {
        let issuers: Vec<IssuerRow> =
            sqlx::query_as(select::<IssuerRow>("WHERE registry = $1 ORDER BY url"))
                .bind(&row.name)
                .fetch_all(self.pool())
                .await?;
        let issuers = issuers
            .into_iter()
            .map(IssuerRow::into_issuer)
            .collect::<Result<Vec<_>>>()?;
        let publishers: Vec<PublisherRow> = sqlx::query_as(select::<PublisherRow>(
            "WHERE registry = $1 ORDER BY created_at, key",
        ))
        .bind(&row.name)
        .fetch_all(self.pool())
        .await?;
        let publishers = publishers
            .into_iter()
            .map(PublisherRow::into_managed)
            .collect::<Result<Vec<_>>>()?;
        let source = Source::parse(&row.source)?;
        let registry = row.into_registry(
            issuers,
            publishers.iter().map(|p| p.publisher.clone()).collect(),
        )?;
        Ok(ManagedRegistry {
            registry,
            source,
            publishers,
        })
    }

    /// Every registry, by name, with who manages it and its publishers.
    pub async fn managed_registries(&self) -> Result<Vec<ManagedRegistry>> {
        self.within_timeout(async {
            let mut found = Vec::new();
            for row in self.rows_where("ORDER BY name", &[]).await? {
                found.push(self.complete_managed(row).await?);
            }
            Ok(found)
        })
        .await
    }

    /// One registry as [`Store::managed_registries`] has it; read from the
    /// store, never from the cache.
    pub async fn managed_registry(&self, name: &str) -> Result<Option<ManagedRegistry>> {
        self.within_timeout(async {
            match self
                .rows_where("WHERE name = $1", &[name])
                .await?
                .into_iter()
                .next()
            {
                Some(row) => Ok(Some(self.complete_managed(row).await?)),
                None => Ok(None),
            }
        })
        .await
    }

    /// Stores a registry of the admin API with its publishers (`source`
    /// api), or, when `replace`, replaces such a registry's settings and
    /// issuers (its publishers stay), with the event that records it, once
    /// `check` passed the registries as they are. One transaction.
    pub async fn write_api_registry(
        &self,
        registry: &Registry,
        replace: bool,
        event: NewEvent<'_>,
        check: impl FnOnce(Vec<Registry>) -> Result<()>,
    ) -> Result<()> {
        self.within_timeout(async {
            let now = event.at;
            let (mut tx, stored) = self.begin_change().await?;
            if replace {
                let source: Option<String> =
                    sqlx::query_scalar("SELECT source FROM registries WHERE name = $1")
                        .bind(registry.name.as_str())
                        .fetch_optional(&mut *tx)
                        .await?;
                if source.as_deref() != Some(Source::Api.as_str()) {
                    return Err(Error::ManagedByConfig(format!(
                        "the registry {:?}",
                        registry.name.as_str()
                    )));
                }
            }
            check(stored)?;
            write_registry(&mut tx, registry, Source::Api, now).await?;
            if !replace {
                let publishers: Vec<&Publisher> = registry.publishers.iter().collect();
                insert_publishers(
                    &mut tx,
                    registry.name.as_str(),
                    &publishers,
                    Source::Api,
                    now,
                )
                .await?;
            }
            self.commit_with_event(tx, event).await
        })
        .await
    }

    /// Deletes a registry of the admin API, with its publishers and
    /// credentials, and records `event`; refused while it has live
    /// credentials, unless `revoke`. One transaction.
    pub async fn delete_api_registry(
        &self,
        name: &str,
        revoke: bool,
        event: NewEvent<'_>,
    ) -> Result<()> {
        self.within_timeout(async {
            let mut tx = self.writer().begin().await?;
            let live: i64 = sqlx::query_scalar(AssertSqlSafe(format!(
                "SELECT COUNT(*) FROM upload_tokens WHERE registry = $1 AND {}",
                super::tokens::live_at("$2")
            )))
            .bind(name)
            .bind(event.at)
            .fetch_one(&mut *tx)
            .await?;
            if live > 0 && !revoke {
                return Err(Error::LiveCredentials {
                    registry: name.to_owned(),
                    count: live,
                });
            }
            let deleted = sqlx::query("DELETE FROM registries WHERE name = $1 AND source = $2")
                .bind(name)
                .bind(Source::Api.as_str())
                .execute(&mut *tx)
                .await?;
            if deleted.rows_affected() == 0 {
                return Err(Error::ManagedByConfig(format!("the registry {name:?}")));
            }
            self.commit_with_event(tx, event).await
        })
        .await
    }

    /// Adds a publisher of the admin API to a registry (of either source),
    /// with `event`, once `check` passed the registries as they are. One
    /// transaction.
    pub async fn add_api_publisher(
        &self,
        registry: &str,
        publisher: &Publisher,
        event: NewEvent<'_>,
        check: impl FnOnce(Vec<Registry>) -> Result<()>,
    ) -> Result<()> {
        self.within_timeout(async {
            let (mut tx, stored) = self.begin_change().await?;
            check(stored)?;
            insert_publishers(&mut tx, registry, &[publisher], Source::Api, event.at).await?;
            self.commit_with_event(tx, event).await
        })
        .await
    }

    /// Removes a publisher of the admin API, with `event`. One transaction.
    pub async fn remove_api_publisher(
        &self,
        registry: &str,
        id: &str,
        event: NewEvent<'_>,
    ) -> Result<()> {
        self.within_timeout(async {
            let mut tx = self.writer().begin().await?;
            let source: Option<String> = sqlx::query_scalar(
                "SELECT source FROM publishers WHERE registry = $1 AND key = $2",
            )
            .bind(registry)
            .bind(id)
            .fetch_optional(&mut *tx)
            .await?;
            match source.as_deref().map(Source::parse).transpose()? {
                None => return Err(Error::UnknownPublisher(id.to_owned())),
                Some(Source::Config) => {
                    return Err(Error::ManagedByConfig(format!("the publisher {id}")));
                }
                Some(Source::Api) => delete_publisher(&mut tx, registry, id).await?,
            }
            self.commit_with_event(tx, event).await
        })
        .await
    }

    /// Records `event` in `tx`, then [`Store::commit_change`].
    async fn commit_with_event(&self, mut tx: Tx, event: NewEvent<'_>) -> Result<()> {
        Insert::rows([&event.to_row()])?.execute(&mut *tx).await?;
        self.commit_change(tx).await
    }

    /// Commits a change of registries or publishers with a new stored
    /// version, so that other instances read the registries again, and
    /// forgets the cached registries so that this instance sees the change
    /// at once.
    async fn commit_change(&self, mut tx: Tx) -> Result<()> {
        sqlx::query("UPDATE registry_version SET version = $1")
            .bind(i64::from_le_bytes(random_bytes()))
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        self.registries.clear();
        Ok(())
    }
}

/// Writes a registry's row (inserted, or updated but for `created_at`)
/// and replaces its issuers.
async fn write_registry(tx: &mut Tx, registry: &Registry, source: Source, now: i64) -> Result<()> {
    let name = registry.name.as_str();
    Insert::rows([&RegistryRow::new(registry, source, now)])?
        .or_update("name", &["created_at"])
        .execute(&mut **tx)
        .await?;
    sqlx::query("DELETE FROM registry_issuers WHERE registry = $1")
        .bind(name)
        .execute(&mut **tx)
        .await?;
    let issuers: Vec<IssuerRow> = registry
        .issuers
        .iter()
        .map(|issuer| IssuerRow::new(name, issuer))
        .collect();
    Insert::rows(&issuers)?
        .then("ON CONFLICT DO NOTHING")
        .execute(&mut **tx)
        .await
}

async fn delete_registry(tx: &mut Tx, name: &str) -> Result<()> {
    sqlx::query("DELETE FROM registries WHERE name = $1")
        .bind(name)
        .execute(&mut **tx)
        .await?;
    Ok(())
}

/// Inserts publishers under their keys (one statement), but those the
/// registry has already.
async fn insert_publishers(
    tx: &mut Tx,
    registry: &str,
    publishers: &[&Publisher],
    source: Source,
    now: i64,
) -> Result<()> {
    let rows: Vec<PublisherRow> = publishers
        .iter()
        .map(|publisher| PublisherRow::new(registry, publisher, source, now))
        .collect();
    // A statement binds at most 32,766 values on SQLite.
    for chunk in rows.chunks(1_000) {
        Insert::rows(chunk)?
            .then("ON CONFLICT DO NOTHING")
            .execute(&mut **tx)
            .await?;
    }
    Ok(())
}

async fn delete_publisher(tx: &mut Tx, registry: &str, key: &str) -> Result<()> {
    sqlx::query("DELETE FROM publishers WHERE registry = $1 AND key = $2")
        .bind(registry)
        .bind(key)
        .execute(&mut **tx)
        .await?;
    Ok(())
}

/// Every registry, with its issuers and publishers, ordered by name, as
/// `connection` (a transaction's, or one of the pool's) reads them.
async fn registries_in(connection: &mut sqlx::AnyConnection) -> Result<Vec<Registry>> {
    let mut issuers: HashMap<String, Vec<Issuer>> = HashMap::new();
    let rows: Vec<IssuerRow> = sqlx::query_as(select::<IssuerRow>("ORDER BY registry, url"))
        .fetch_all(&mut *connection)
        .await?;
    for row in rows {
        let registry = row.registry.clone();
        issuers
            .entry(registry)
            .or_default()
            .push(row.into_issuer()?);
    }
    let mut publishers: HashMap<String, Vec<Publisher>> = HashMap::new();
    let rows: Vec<PublisherRow> =
        sqlx::query_as(select::<PublisherRow>("ORDER BY registry, created_at, key"))
            .fetch_all(&mut *connection)
            .await?;
    for row in rows {
        publishers
            .entry(row.registry)
            .or_default()
            .push(from_json(&row.spec)?);
    }
    let mut registries = Vec::new();
    let rows: Vec<RegistryRow> = sqlx::query_as(select::<RegistryRow>("ORDER BY name"))
        .fetch_all(&mut *connection)
        .await?;
    for row in rows {
        let issuers = issuers.remove(&row.name).unwrap_or_default();
        let publishers = publishers.remove(&row.name).unwrap_or_default();
        registries.push(row.into_registry(issuers, publishers)?);
    }
    Ok(registries)
}

/// The key of PostgreSQL's advisory lock (`pg_advisory_xact_lock`) that
/// every change of registries or publishers (an admin API write, a
/// configuration sync) holds until it commits. Each checks the registries
/// it reads inside its own transaction, so two changes (on two instances)
/// that break a rule only together cannot both pass: the second waits, then
/// reads the first. SQLite needs no lock: its writes queue for the one
/// writer connection.
const REGISTRY_CHANGES: i64 = 0x7472_7573_7470_7562;

impl Store {
    /// A transaction on the writer for a change of registries or
    /// publishers, holding [`REGISTRY_CHANGES`] on PostgreSQL, and every
    /// registry as read inside it.
    async fn begin_change(&self) -> Result<(Tx, Vec<Registry>)> {
        let mut tx = self.writer().begin().await?;
        if self.backend() == Backend::Postgres {
            sqlx::query("SELECT pg_advisory_xact_lock($1)")
                .bind(REGISTRY_CHANGES)
                .execute(&mut *tx)
                .await?;
        }
        let registries = registries_in(&mut tx).await?;
        Ok((tx, registries))
    }
}

/// Of `stored`, the registries the admin API created.
async fn api_registries(tx: &mut Tx, stored: Vec<Registry>) -> Result<Vec<Registry>> {
    let names: HashSet<String> =
        sqlx::query_scalar("SELECT name FROM registries WHERE source = $1")
            .bind(Source::Api.as_str())
            .fetch_all(&mut **tx)
            .await?
            .into_iter()
            .collect();
    Ok(stored
        .into_iter()
        .filter(|r| names.contains(r.name.as_str()))
        .collect())
}
