//! Registries, their issuers and their trusted publishers.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use sqlx::Row;
use sqlx::any::AnyRow;

use super::{Store, corrupt, from_json, now, to_json};
use crate::domain::{
    Audience, Ecosystem, Feature, Issuer, IssuerUrl, Provider, RegistryName, SecretDigest,
    TokenLifetime, TokenPrefix, UploadUrl,
};
use crate::problem::Result;
use crate::publishers::Publisher;
use crate::registry::Registry;

/// A `SELECT` of a registry's columns, followed by `$tail`.
macro_rules! select_registries {
    ($tail:literal) => {
        concat!(
            "SELECT name, upload_url, upload_authority, audience, ecosystem, token_lifetime, \
             token_prefix, features, default_features, introspect_secret_sha256, forward_auth, \
             gateway, pypi_paths FROM registries ",
            $tail
        )
    };
}
/// Registries by name, with the time they were read, each used for `ttl`.
/// Only a start with another configuration changes registries; another
/// instance sharing the database sees that change `ttl` later at most.
#[derive(Debug, Clone)]
pub(super) struct Cache {
    ttl: Duration,
    entries: Arc<RwLock<HashMap<String, Cached>>>,
}

/// A registry (or its absence) and when it was read.
type Cached = (Instant, Option<Registry>);

impl Cache {
    pub(super) fn new(ttl: Duration) -> Self {
        Cache {
            ttl,
            entries: Arc::default(),
        }
    }

    fn get(&self, name: &str) -> Option<Option<Registry>> {
        let entries = self.entries.read().ok()?;
        let (read_at, registry) = entries.get(name)?;
        (read_at.elapsed() < self.ttl).then(|| registry.clone())
    }

    fn put(&self, name: &str, registry: Option<Registry>) {
        if self.ttl.is_zero() {
            return;
        }
        if let Ok(mut entries) = self.entries.write() {
            // Names that are not registries must not grow it without end.
            entries.retain(|_, (read_at, _)| read_at.elapsed() < self.ttl);
            entries.insert(name.to_owned(), (Instant::now(), registry));
        }
    }

    fn clear(&self) {
        if let Ok(mut entries) = self.entries.write() {
            entries.clear();
        }
    }
}

/// Rows written from the configuration file carry this source.
const FROM_CONFIG: &str = "config";

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
    /// lists. One transaction.
    pub async fn sync_registries(&self, registries: &[Registry]) -> Result<SyncReport> {
        let mut report = SyncReport::default();
        let now = now();
        let mut tx = self.writer().begin().await?;

        let existing: Vec<String> =
            sqlx::query_scalar("SELECT name FROM registries WHERE source = $1")
                .bind(FROM_CONFIG)
                .fetch_all(&mut *tx)
                .await?;
        let wanted: HashSet<&str> = registries.iter().map(|r| r.name.as_str()).collect();
        for name in existing.iter().filter(|n| !wanted.contains(n.as_str())) {
            sqlx::query("DELETE FROM registries WHERE name = $1")
                .bind(name)
                .execute(&mut *tx)
                .await?;
            report.registries_removed.push(name.clone());
        }

        for registry in registries {
            let name = registry.name.as_str();
            sqlx::query(
                "INSERT INTO registries (name, upload_url, upload_authority, upload_path, audience, \
                 ecosystem, token_lifetime, token_prefix, features, default_features, source, \
                 created_at, updated_at, introspect_secret_sha256, forward_auth, gateway, \
                 pypi_paths, upload_host) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $12, $13, $14, $15, $16, \
                 $17) \
                 ON CONFLICT (name) DO UPDATE SET upload_url = excluded.upload_url, \
                 upload_authority = excluded.upload_authority, upload_path = excluded.upload_path, \
                 audience = excluded.audience, ecosystem = excluded.ecosystem, \
                 token_lifetime = excluded.token_lifetime, token_prefix = excluded.token_prefix, \
                 features = excluded.features, default_features = excluded.default_features, \
                 source = excluded.source, updated_at = excluded.updated_at, \
                 introspect_secret_sha256 = excluded.introspect_secret_sha256, \
                 forward_auth = excluded.forward_auth, gateway = excluded.gateway, \
                 pypi_paths = excluded.pypi_paths, upload_host = excluded.upload_host",
            )
            .bind(name)
            .bind(registry.upload_url.as_str())
            .bind(registry.upload_url.authority().to_ascii_lowercase())
            .bind(registry.upload_url.discovery_path())
            .bind(registry.audience.as_str())
            .bind(registry.ecosystem.as_str())
            .bind(i64::from(registry.token_lifetime))
            .bind(registry.token_prefix.as_str())
            .bind(to_json(&registry.features))
            .bind(to_json(&registry.default_features))
            .bind(FROM_CONFIG)
            .bind(now)
            .bind(
                registry
                    .introspect_secret_sha256
                    .clone()
                    .map(String::from),
            )
            .bind(to_json(&registry.forward_auth))
            .bind(registry.gateway.as_ref().map(to_json))
            .bind(i64::from(registry.pypi_paths))
            .bind(registry.upload_url.host().to_ascii_lowercase())
            .execute(&mut *tx)
            .await?;
            report.registries_upserted += 1;

            sqlx::query("DELETE FROM registry_issuers WHERE registry = $1")
                .bind(name)
                .execute(&mut *tx)
                .await?;
            for issuer in &registry.issuers {
                sqlx::query(
                    "INSERT INTO registry_issuers (registry, url, provider) VALUES ($1, $2, $3) \
                     ON CONFLICT DO NOTHING",
                )
                .bind(name)
                .bind(issuer.url.as_str())
                .bind(issuer.provider.as_str())
                .execute(&mut *tx)
                .await?;
            }

            let stored: Vec<String> = sqlx::query_scalar(
                "SELECT key FROM publishers WHERE registry = $1 AND source = $2",
            )
            .bind(name)
            .bind(FROM_CONFIG)
            .fetch_all(&mut *tx)
            .await?;
            let stored: HashSet<String> = stored.into_iter().collect();
            let keyed: Vec<(String, &Publisher)> =
                registry.publishers.iter().map(|p| (p.key(), p)).collect();
            let wanted: HashSet<&str> = keyed.iter().map(|(k, _)| k.as_str()).collect();
            for key in stored.iter().filter(|k| !wanted.contains(k.as_str())) {
                sqlx::query("DELETE FROM publishers WHERE registry = $1 AND key = $2")
                    .bind(name)
                    .bind(key)
                    .execute(&mut *tx)
                    .await?;
                report.publishers_removed += 1;
            }
            for (key, publisher) in keyed.iter().filter(|(k, _)| !stored.contains(k)) {
                sqlx::query(
                    "INSERT INTO publishers (registry, key, provider, issuer, spec, source, created_at) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT DO NOTHING",
                )
                .bind(name)
                .bind(key)
                .bind(publisher.identity.provider().as_str())
                .bind(publisher.issuer.as_str())
                .bind(to_json(publisher))
                .bind(FROM_CONFIG)
                .bind(now)
                .execute(&mut *tx)
                .await?;
                report.publishers_added += 1;
            }
        }
        tx.commit().await?;
        self.registries.clear();
        Ok(report)
    }

    /// The registry with this name, with its issuers and publishers. Read
    /// from the store at most once per `database.registry_cache_ttl` and
    /// name: a token exchange needs the registry for every request, and
    /// three queries each time cost more than the signature check.
    pub async fn registry(&self, name: &str) -> Result<Option<Registry>> {
        if let Some(cached) = self.registries.get(name) {
            return Ok(cached);
        }
        let row = sqlx::query(select_registries!("WHERE name = $1"))
            .bind(name)
            .fetch_optional(self.pool())
            .await?;
        let registry = match row {
            Some(row) => Some(self.complete(row).await?),
            None => None,
        };
        self.registries.put(name, registry.clone());
        Ok(registry)
    }

    /// The registries whose upload URL has this path (compared as
    /// [`crate::domain::discovery_path`] does), each with the authority
    /// (lower-case `host[:port]`) of its upload URL.
    pub async fn registries_by_upload_path(&self, path: &str) -> Result<Vec<(String, Registry)>> {
        let rows = sqlx::query(select_registries!("WHERE upload_path = $1 ORDER BY name"))
            .bind(path)
            .fetch_all(self.pool())
            .await?;
        let mut found = Vec::with_capacity(rows.len());
        for row in rows {
            let authority: String = row.try_get("upload_authority")?;
            found.push((authority, self.complete(row).await?));
        }
        Ok(found)
    }

    /// The registry that serves PyPI's implicit paths on this host
    /// (lower-case `host[:port]`), if any.
    pub async fn registry_for_pypi_host(&self, authority: &str) -> Result<Option<Registry>> {
        self.registry_where(
            select_registries!("WHERE upload_authority = $1 AND pypi_paths = 1 ORDER BY name"),
            authority,
            None,
        )
        .await
    }

    /// The cargo registry whose URL has this host (lower-case `host[:port]`)
    /// and path (compared as [`crate::domain::discovery_path`] does).
    pub async fn cargo_registry_at(&self, authority: &str, path: &str) -> Result<Option<Registry>> {
        self.registry_where(
            select_registries!(
                "WHERE upload_authority = $1 AND upload_path = $2 AND ecosystem = 'cargo' \
                 ORDER BY name"
            ),
            authority,
            Some(path),
        )
        .await
    }

    /// The first registry a query selects by authority (and path).
    async fn registry_where(
        &self,
        query: &'static str,
        authority: &str,
        path: Option<&str>,
    ) -> Result<Option<Registry>> {
        let mut query = sqlx::query(query).bind(authority);
        if let Some(path) = path {
            query = query.bind(path);
        }
        match query.fetch_optional(self.pool()).await? {
            Some(row) => Ok(Some(self.complete(row).await?)),
            None => Ok(None),
        }
    }

    /// The registries whose upload URL is on this (lower-case) host, whatever
    /// its port.
    pub async fn registries_by_host(&self, host: &str) -> Result<Vec<Registry>> {
        let rows = sqlx::query(select_registries!("WHERE upload_host = $1 ORDER BY name"))
            .bind(host)
            .fetch_all(self.pool())
            .await?;
        let mut found = Vec::with_capacity(rows.len());
        for row in rows {
            found.push(self.complete(row).await?);
        }
        Ok(found)
    }

    /// Builds a registry from its row and loads its issuers and publishers.
    async fn complete(&self, row: AnyRow) -> Result<Registry> {
        let name: String = row.try_get("name")?;
        let issuers = sqlx::query(
            "SELECT url, provider FROM registry_issuers WHERE registry = $1 ORDER BY url",
        )
        .bind(&name)
        .fetch_all(self.pool())
        .await?
        .into_iter()
        .map(|row| {
            Ok(Issuer {
                url: IssuerUrl::parse(row.try_get("url")?).map_err(corrupt)?,
                provider: Provider::parse(&row.try_get::<String, _>("provider")?)
                    .map_err(corrupt)?,
            })
        })
        .collect::<Result<Vec<_>>>()?;
        let publishers = sqlx::query_scalar::<_, String>(
            "SELECT spec FROM publishers WHERE registry = $1 ORDER BY created_at, key",
        )
        .bind(&name)
        .fetch_all(self.pool())
        .await?
        .iter()
        .map(|spec| from_json(spec))
        .collect::<Result<Vec<Publisher>>>()?;
        Ok(Registry {
            name: RegistryName::parse(name).map_err(corrupt)?,
            upload_url: UploadUrl::parse(row.try_get("upload_url")?).map_err(corrupt)?,
            audience: Audience::parse(row.try_get("audience")?).map_err(corrupt)?,
            ecosystem: Ecosystem::parse(&row.try_get::<String, _>("ecosystem")?)
                .map_err(corrupt)?,
            pypi_paths: row.try_get::<i64, _>("pypi_paths")? != 0,
            token_lifetime: TokenLifetime::parse(row.try_get("token_lifetime")?)
                .map_err(corrupt)?,
            token_prefix: TokenPrefix::parse(row.try_get("token_prefix")?).map_err(corrupt)?,
            features: from_json::<Vec<Feature>>(&row.try_get::<String, _>("features")?)?,
            default_features: from_json::<Vec<Feature>>(
                &row.try_get::<String, _>("default_features")?,
            )?,
            issuers,
            publishers,
            introspect_secret_sha256: row
                .try_get::<Option<String>, _>("introspect_secret_sha256")?
                .map(SecretDigest::parse)
                .transpose()
                .map_err(corrupt)?,
            forward_auth: from_json(&row.try_get::<String, _>("forward_auth")?)?,
            gateway: row
                .try_get::<Option<String>, _>("gateway")?
                .map(|json| from_json(&json))
                .transpose()?,
        })
    }
}
