//! Upload credentials and the identity tokens (`jti`s) they were minted for.

use super::Store;
use super::events::NewEvent;
use crate::problem::{Error, Result};

/// A credential to store, by hash.
#[derive(Debug)]
pub struct NewUploadToken<'a> {
    pub registry: &'a str,
    pub hash: String,
    pub publishers: Vec<String>,
    pub packages: &'a [String],
    pub single_use: bool,
    pub created_at: i64,
    pub expires_at: i64,
    pub claims: &'a crate::publishers::Audit,
}

/// The identity token a credential is minted for.
#[derive(Debug)]
pub struct UsedJti<'a> {
    pub issuer: &'a str,
    pub jti: &'a str,
    /// Kept at least until then: `exp` plus the leeway.
    pub keep_until: i64,
}

impl Store {
    /// Records a mint in one transaction: the `jti` (a unique insert, so a
    /// replayed identity token fails here with `token-reused`, also across
    /// instances sharing the store), the credential and the event.
    pub async fn record_mint(
        &self,
        jti: UsedJti<'_>,
        token: NewUploadToken<'_>,
        event: NewEvent<'_>,
    ) -> Result<()> {
        let mut tx = self.writer().begin().await?;
        let inserted =
            sqlx::query("INSERT INTO used_jtis (issuer, jti, expires_at) VALUES ($1, $2, $3)")
                .bind(jti.issuer)
                .bind(jti.jti)
                .bind(jti.keep_until)
                .execute(&mut *tx)
                .await;
        match inserted {
            Err(sqlx::Error::Database(e)) if e.is_unique_violation() => {
                return Err(Error::TokenReused);
            }
            other => other?,
        };
        sqlx::query(
            "INSERT INTO upload_tokens (hash, registry, publishers, packages, single_use, created_at, \
             expires_at, claims) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        )
        .bind(&token.hash)
        .bind(token.registry)
        .bind(super::to_json(&token.publishers))
        .bind(super::to_json(&token.packages))
        .bind(i64::from(token.single_use))
        .bind(token.created_at)
        .bind(token.expires_at)
        .bind(super::to_json(token.claims))
        .execute(&mut *tx)
        .await?;
        event.insert(&mut tx).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Forgets the `jti`s whose tokens expired before `now` (leeway included).
    pub async fn purge_used_jtis(&self, now: i64) -> Result<u64> {
        let done = sqlx::query("DELETE FROM used_jtis WHERE expires_at < $1")
            .bind(now)
            .execute(self.writer())
            .await?;
        Ok(done.rows_affected())
    }

    /// Whether a credential with this hash is stored (for tests and audits).
    pub async fn upload_token_exists(&self, registry: &str, hash: &str) -> Result<bool> {
        let found: Option<String> =
            sqlx::query_scalar("SELECT hash FROM upload_tokens WHERE registry = $1 AND hash = $2")
                .bind(registry)
                .bind(hash)
                .fetch_optional(self.pool())
                .await?;
        Ok(found.is_some())
    }

    /// How many credentials a registry has (for tests and audits).
    pub async fn count_upload_tokens(&self, registry: &str) -> Result<i64> {
        Ok(
            sqlx::query_scalar("SELECT COUNT(*) FROM upload_tokens WHERE registry = $1")
                .bind(registry)
                .fetch_one(self.pool())
                .await?,
        )
    }
}
