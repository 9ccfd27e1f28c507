//! Upload credentials and the identity tokens (`jti`s) they were minted for.

use std::collections::HashSet;
use std::time::Duration;

use sqlx::{AnyPool, AssertSqlSafe};
use tokio::sync::{mpsc, oneshot};

use super::Store;
use super::events::{EventRow, NewEvent, Outcome};
use super::rows::{Insert, TableRow, table_row};
use crate::config::Backend;
use crate::metrics::{Metrics, Outcomes};
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

/// A credential as stored: what it may do and what became of it.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredUploadToken {
    /// Keys of the publishers that matched when it was minted.
    pub publishers: Vec<String>,
    /// Normalised names and trailing-`*` patterns.
    pub packages: Vec<String>,
    pub single_use: bool,
    pub expires_at: i64,
    pub used_at: Option<i64>,
    pub revoked_at: Option<i64>,
    pub claims: crate::publishers::Audit,
}

table_row! {
    /// A row of `upload_tokens`: JSON lists and objects as text, booleans
    /// as integers.
    #[derive(sqlx::FromRow)]
    struct UploadTokenRow in "upload_tokens" {
        hash: String,
        registry: String,
        publishers: String,
        packages: String,
        single_use: i64,
        created_at: i64,
        expires_at: i64,
        used_at: Option<i64>,
        revoked_at: Option<i64>,
        claims: String,
    }
}

impl TryFrom<UploadTokenRow> for StoredUploadToken {
    type Error = Error;

    fn try_from(row: UploadTokenRow) -> Result<Self> {
        Ok(StoredUploadToken {
            publishers: super::from_json(&row.publishers)?,
            packages: super::from_json(&row.packages)?,
            single_use: row.single_use != 0,
            expires_at: row.expires_at,
            used_at: row.used_at,
            revoked_at: row.revoked_at,
            claims: super::from_json(&row.claims)?,
        })
    }
}

/// The condition a live credential meets at `now` (a parameter such as
/// `$2`): not revoked, not expired, not used up.
pub(super) fn live_at(now: &str) -> String {
    format!("revoked_at IS NULL AND expires_at > {now} AND (single_use = 0 OR used_at IS NULL)")
}

/// A live credential as the admin API lists it: never the credential, its
/// id is the SHA-256 it is stored under.
#[derive(Debug, Clone, PartialEq)]
pub struct LiveCredential {
    pub id: String,
    pub token: StoredUploadToken,
    pub created_at: i64,
}

/// Which credentials of a registry an admin revokes.
#[derive(Debug, Clone, Copy)]
pub enum Revocation<'a> {
    /// The one with this id.
    One(&'a str),
    /// Every one minted for the publisher with this id.
    OfPublisher(&'a str),
}

/// The identity token a credential is minted for.
#[derive(Debug)]
pub struct UsedJti<'a> {
    pub issuer: &'a str,
    pub jti: &'a str,
    /// Kept at least until then: `exp` plus the leeway.
    pub keep_until: i64,
}

table_row! {
    /// A row of `used_jtis`: an identity token accepted once, kept until
    /// it expires (leeway included).
    struct UsedJtiRow in "used_jtis" {
        issuer: String,
        jti: String,
        expires_at: i64,
    }
}

/// The most mints written in one transaction.
const MAX_BATCH: usize = 128;

/// A mint waiting for the writer, with everything owned.
pub(super) struct PendingMint {
    jti: UsedJtiRow,
    token: UploadTokenRow,
    event: EventRow,
    reply: oneshot::Sender<Result<()>>,
}

impl PendingMint {
    /// The mint with its rows owned, and where its outcome will come.
    fn new(
        jti: UsedJti<'_>,
        token: NewUploadToken<'_>,
        event: NewEvent<'_>,
    ) -> (Self, oneshot::Receiver<Result<()>>) {
        let (reply, outcome) = oneshot::channel();
        let mint = PendingMint {
            jti: UsedJtiRow {
                issuer: jti.issuer.to_owned(),
                jti: jti.jti.to_owned(),
                expires_at: jti.keep_until,
            },
            token: UploadTokenRow {
                hash: token.hash,
                registry: token.registry.to_owned(),
                publishers: super::to_json(&token.publishers),
                packages: super::to_json(&token.packages),
                single_use: i64::from(token.single_use),
                created_at: token.created_at,
                expires_at: token.expires_at,
                used_at: None,
                revoked_at: None,
                claims: super::to_json(token.claims),
            },
            event: event.to_row(),
            reply,
        };
        (mint, outcome)
    }
}

/// Where mints are queued for the writer task.
pub(super) type MintQueue = mpsc::Sender<PendingMint>;

/// Starts the task that writes mints in batches (group commit): every mint
/// waiting when a transaction starts goes into it, so the round trips of a
/// transaction are paid per batch, not per mint.
pub(super) fn start_writer(
    writer: AnyPool,
    backend: Backend,
    metrics: Metrics,
    limit: Duration,
) -> MintQueue {
    let (queue, mut pending) = mpsc::channel::<PendingMint>(4 * MAX_BATCH);
    tokio::spawn(async move {
        while let Some(first) = pending.recv().await {
            let mut batch = vec![first];
            while batch.len() < MAX_BATCH {
                match pending.try_recv() {
                    Ok(mint) => batch.push(mint),
                    Err(_) => break,
                }
            }
            metrics.mint_batch(batch.len());
            match super::within(limit, write_batch(&writer, backend, &batch)).await {
                Ok(accepted) => {
                    for (mint, accepted) in batch.into_iter().zip(accepted) {
                        let _ = mint.reply.send(if accepted {
                            Ok(())
                        } else {
                            Err(Error::TokenReused)
                        });
                    }
                }
                // A store out of reach fails the whole batch at once:
                // retrying each alone would make the last wait for as many
                // connection timeouts as the batch has mints.
                Err(Error::StoreUnavailable(error)) => {
                    tracing::warn!(%error, mints = batch.len(), "the store is unavailable; a batch of mints fails");
                    let reason = error.to_string();
                    for mint in batch {
                        let lost = std::io::Error::other(reason.clone());
                        let _ = mint
                            .reply
                            .send(Err(Error::StoreUnavailable(sqlx::Error::Io(lost))));
                    }
                }
                // One failing mint must not fail the others: retry alone.
                Err(error) if batch.len() > 1 => {
                    tracing::warn!(%error, mints = batch.len(), "a batch of mints failed; retrying them one by one");
                    for mint in batch {
                        let outcome = super::within(
                            limit,
                            write_batch(&writer, backend, std::slice::from_ref(&mint)),
                        )
                        .await;
                        let _ = mint.reply.send(outcome.and_then(|accepted| {
                            if accepted[0] {
                                Ok(())
                            } else {
                                Err(Error::TokenReused)
                            }
                        }));
                    }
                }
                Err(error) => {
                    if let Some(mint) = batch.pop() {
                        let _ = mint.reply.send(Err(error));
                    }
                }
            }
        }
    });
    queue
}

/// Writes a batch in one transaction; says for each mint whether its `jti`
/// was new (a repeated one, in the store or earlier in the batch, is not).
async fn write_batch(
    writer: &AnyPool,
    backend: Backend,
    batch: &[PendingMint],
) -> Result<Vec<bool>> {
    let mut seen = HashSet::new();
    let first_in_batch: Vec<bool> = batch
        .iter()
        .map(|m| seen.insert((m.jti.issuer.as_str(), m.jti.jti.as_str())))
        .collect();
    if backend == Backend::Sqlite
        && first_in_batch.iter().all(|first| *first)
        && write_all_new(writer, batch).await?
    {
        return Ok(first_in_batch);
    }
    let mut tx = writer.begin().await?;
    let jtis = batch
        .iter()
        .zip(&first_in_batch)
        .filter(|(_, first)| **first)
        .map(|(m, _)| &m.jti);
    let new: HashSet<(String, String)> = Insert::rows(jtis)?
        .then("ON CONFLICT DO NOTHING RETURNING issuer, jti")
        .fetch_all(&mut *tx)
        .await?
        .into_iter()
        .collect();
    let accepted: Vec<bool> = batch
        .iter()
        .zip(first_in_batch)
        .map(|(m, first)| first && new.contains(&(m.jti.issuer.clone(), m.jti.jti.clone())))
        .collect();
    let chosen = || {
        batch
            .iter()
            .zip(&accepted)
            .filter(|(_, a)| **a)
            .map(|(m, _)| m)
    };
    Insert::rows(chosen().map(|m| &m.token))?
        .execute(&mut *tx)
        .await?;
    Insert::rows(chosen().map(|m| &m.event))?
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(accepted)
}

/// On SQLite, writes a batch whose `jti`s are all new with its three
/// inserts sent as one script (one round trip between `BEGIN` and
/// `COMMIT`), the `jti`s without `ON CONFLICT`. False, with nothing
/// written, when a `jti` is already stored: its insert fails on the key, and
/// the caller writes the batch the checked way. The usual batch has no
/// replay, and saves two of the checked way's five round trips
/// (bench/README.md).
async fn write_all_new(writer: &AnyPool, batch: &[PendingMint]) -> Result<bool> {
    let mut tx = writer.begin().await?;
    let written = Insert::rows(batch.iter().map(|m| &m.jti))?
        .and(batch.iter().map(|m| &m.token))?
        .and(batch.iter().map(|m| &m.event))?
        .execute(&mut *tx)
        .await;
    match written {
        Ok(()) => {
            tx.commit().await?;
            Ok(true)
        }
        Err(Error::Store(sqlx::Error::Database(e))) if e.is_unique_violation() => {
            tx.rollback().await?;
            Ok(false)
        }
        Err(other) => Err(other),
    }
}

impl Store {
    /// Records a mint: the `jti` (inserted only if new, so a replayed
    /// identity token fails here with `token-reused`, also across instances
    /// sharing the store), the credential and the event, in one transaction
    /// shared with the other mints waiting at the time.
    pub async fn record_mint(
        &self,
        jti: UsedJti<'_>,
        token: NewUploadToken<'_>,
        event: NewEvent<'_>,
    ) -> Result<()> {
        self.within_timeout(async {
            let (mint, outcome) = PendingMint::new(jti, token, event);
            let registry = mint.token.registry.clone();
            let stopped = || {
                Error::io(
                    "recording a mint",
                    std::io::Error::other("the mint writer has stopped"),
                )
            };
            self.minter.send(mint).await.map_err(|_| stopped())?;
            outcome.await.map_err(|_| stopped())??;
            self.metrics
                .outcome(Outcomes::Mints, &registry, Outcome::Minted.as_str(), "ok");
            Ok(())
        })
        .await
    }

    /// The number of live credentials of each registry that has any, at `now`.
    pub async fn live_credential_counts(&self, now: i64) -> Result<Vec<(String, i64)>> {
        self.within_timeout(async {
            Ok(sqlx::query_as(AssertSqlSafe(format!(
                "SELECT registry, COUNT(*) FROM upload_tokens WHERE {} GROUP BY registry",
                live_at("$1")
            )))
            .bind(now)
            .fetch_all(self.pool())
            .await?)
        })
        .await
    }

    /// Forgets the `jti`s whose tokens expired before `now` (leeway included).
    pub async fn purge_used_jtis(&self, now: i64) -> Result<u64> {
        self.delete_in_batches("used_jtis", "expires_at < $1", now)
            .await
    }

    /// The stored credential with this hash, if the registry has one.
    pub async fn upload_token(
        &self,
        registry: &str,
        hash: &str,
    ) -> Result<Option<StoredUploadToken>> {
        self.within_timeout(async {
            let row: Option<UploadTokenRow> = sqlx::query_as(AssertSqlSafe(format!(
                "{} WHERE registry = $1 AND hash = $2",
                UploadTokenRow::SELECT
            )))
            .bind(registry)
            .bind(hash)
            .fetch_optional(self.pool())
            .await?;
            row.map(StoredUploadToken::try_from).transpose()
        })
        .await
    }

    /// Marks a single-use credential used, if it still can be: not used,
    /// not revoked, not expired at `now`. One conditional update, so of
    /// concurrent consumers (on any instance sharing the store) exactly one
    /// gets `true`.
    pub async fn consume_upload_token(&self, registry: &str, hash: &str, now: i64) -> Result<bool> {
        self.within_timeout(async {
            self.update_upload_token(
                "UPDATE upload_tokens SET used_at = $3 WHERE registry = $1 AND hash = $2 \
                 AND single_use = 1 AND used_at IS NULL AND revoked_at IS NULL AND expires_at > $3",
                registry,
                hash,
                now,
            )
            .await
        })
        .await
    }

    /// Revokes a credential; `false` when the registry has no such
    /// credential or it was already revoked.
    pub async fn revoke_upload_token(&self, registry: &str, hash: &str, now: i64) -> Result<bool> {
        self.within_timeout(async {
            self.update_upload_token(
                "UPDATE upload_tokens SET revoked_at = $3 WHERE registry = $1 AND hash = $2 \
                 AND revoked_at IS NULL",
                registry,
                hash,
                now,
            )
            .await
        })
        .await
    }

    /// Runs a conditional update of one credential (`$1` registry, `$2`
    /// hash, `$3` now); `true` when it changed the row.
    async fn update_upload_token(
        &self,
        sql: &'static str,
        registry: &str,
        hash: &str,
        now: i64,
    ) -> Result<bool> {
        let done = sqlx::query(sql)
            .bind(registry)
            .bind(hash)
            .bind(now)
            .execute(self.writer())
            .await?;
        Ok(done.rows_affected() == 1)
    }

    /// A registry's live credentials at `now`, newest first.
    pub async fn live_credentials(&self, registry: &str, now: i64) -> Result<Vec<LiveCredential>> {
        self.within_timeout(async {
            let rows: Vec<UploadTokenRow> = sqlx::query_as(AssertSqlSafe(format!(
                "{} WHERE registry = $1 AND {} ORDER BY created_at DESC, hash",
                UploadTokenRow::SELECT,
                live_at("$2")
            )))
            .bind(registry)
            .bind(now)
            .fetch_all(self.pool())
            .await?;
            rows.into_iter()
                .map(|row| {
                    Ok(LiveCredential {
                        id: row.hash.clone(),
                        created_at: row.created_at,
                        token: StoredUploadToken::try_from(row)?,
                    })
                })
                .collect()
        })
        .await
    }

    /// Revokes credentials of a registry not yet revoked, and records
    /// `event` (its `at` is the time of revocation) when any was; how many
    /// were. One transaction.
    pub async fn revoke_credentials(
        &self,
        registry: &str,
        which: Revocation<'_>,
        event: NewEvent<'_>,
    ) -> Result<u64> {
        self.within_timeout(async {
            let (condition, value) = match which {
                Revocation::One(id) => ("hash = $3", id.to_owned()),
                // Publisher ids are hex: no character of LIKE's own.
                Revocation::OfPublisher(id) => ("publishers LIKE $3", format!("%\"{id}\"%")),
            };
            let mut tx = self.writer().begin().await?;
            let done = sqlx::query(AssertSqlSafe(format!(
                "UPDATE upload_tokens SET revoked_at = $2 WHERE registry = $1 \
                 AND revoked_at IS NULL AND {condition}"
            )))
            .bind(registry)
            .bind(event.at)
            .bind(value)
            .execute(&mut *tx)
            .await?;
            if done.rows_affected() > 0 {
                Insert::rows([&event.to_row()])?.execute(&mut *tx).await?;
            }
            tx.commit().await?;
            for _ in 0..done.rows_affected() {
                self.count(&event);
            }
            Ok(done.rows_affected())
        })
        .await
    }

    /// Deletes the credentials that expired before `now`; a credential
    /// still live at `now` is never touched.
    pub async fn purge_expired_upload_tokens(&self, now: i64) -> Result<u64> {
        self.delete_in_batches("upload_tokens", "expires_at < $1", now)
            .await
    }

    /// Whether a credential with this hash is stored.
    #[cfg(feature = "test-helpers")]
    pub async fn upload_token_exists(&self, registry: &str, hash: &str) -> Result<bool> {
        self.within_timeout(async {
            let found: Option<String> = sqlx::query_scalar(
                "SELECT hash FROM upload_tokens WHERE registry = $1 AND hash = $2",
            )
            .bind(registry)
            .bind(hash)
            .fetch_optional(self.pool())
            .await?;
            Ok(found.is_some())
        })
        .await
    }

    /// How many credentials a registry has.
    #[cfg(feature = "test-helpers")]
    pub async fn count_upload_tokens(&self, registry: &str) -> Result<i64> {
        self.within_timeout(async {
            Ok(
                sqlx::query_scalar("SELECT COUNT(*) FROM upload_tokens WHERE registry = $1")
                    .bind(registry)
                    .fetch_one(self.pool())
                    .await?,
            )
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::tests::migrated_sqlite;

    fn mint(jti: &str) -> PendingMint {
        let packages = vec!["widget".to_owned()];
        let (mint, _outcome) = PendingMint::new(
            UsedJti {
                issuer: "https://issuer.test",
                jti,
                keep_until: 2_000_000_000,
            },
            NewUploadToken {
                registry: "acme",
                hash: format!("hash-of-{jti}"),
                publishers: vec!["p".into()],
                packages: &packages,
                single_use: false,
                created_at: 1_000_000_000,
                expires_at: 2_000_000_000,
                claims: &crate::publishers::Audit::default(),
            },
            crate::testing::minted_event("acme", 1_000_000_000),
        );
        mint
    }

    /// A batch in which a `jti` was stored before: on SQLite the script
    /// fails on it and leaves nothing behind, then the checked write stores
    /// the new ones and refuses that one. A `jti` repeated within a batch is
    /// refused too.
    #[tokio::test]
    async fn a_replay_in_a_batch_refuses_that_mint_and_writes_the_others() {
        let (_dir, store) = migrated_sqlite().await;
        let settings = crate::config::Settings::from_toml(&crate::testing::acme_registry(
            "https://issuer.test",
        ))
        .unwrap();
        store.sync_registries(&settings.registries).await.unwrap();
        let write = |batch: Vec<PendingMint>| {
            let writer = store.minting.clone();
            async move { write_batch(&writer, Backend::Sqlite, &batch).await.unwrap() }
        };

        assert_eq!(write(vec![mint("a"), mint("b")]).await, [true, true]);
        // "a" is stored: the script fails on it, and the checked write
        // stores the others.
        assert_eq!(
            write(vec![mint("c"), mint("a"), mint("d")]).await,
            [true, false, true]
        );
        // Repeated within the batch: written the checked way at once.
        assert_eq!(write(vec![mint("e"), mint("e")]).await, [true, false]);
        for table in ["used_jtis", "upload_tokens", "events"] {
            let rows: i64 =
                sqlx::query_scalar(AssertSqlSafe(format!("SELECT COUNT(*) FROM {table}")))
                    .fetch_one(store.pool())
                    .await
                    .unwrap();
            assert_eq!(rows, 5, "{table}: a, b, c, d and e");
        }
    }
}
