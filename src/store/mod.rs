//! Persistence with sqlx. SQLite is the embedded default; PostgreSQL serves
//! deployments with several trustpub instances. Both are driven through
//! sqlx's `Any` driver with the same portable SQL, so no query is written
//! twice. Queries live in one file per aggregate and take the registry first.

mod events;
mod registries;
mod rows;
mod tokens;

use std::path::Path;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use ring::rand::SecureRandom;
use sqlx::any::{AnyConnectOptions, AnyPoolOptions};
use sqlx::{AnyPool, AssertSqlSafe, Executor};

use crate::config::{Backend, DatabaseSettings};
use crate::limits::{Buckets, Limit};
use crate::metrics::Metrics;
use crate::problem::{Error, Result};

pub use events::{
    Caller, Event, EventKind, EventPage, EventQuery, NewEvent, Outcome, RefusalCount,
    UNTRUSTED_TEXT_LIMIT, bounded,
};
pub use registries::{ManagedPublisher, ManagedRegistry, Source, SyncReport};
pub use tokens::{LiveCredential, NewUploadToken, Revocation, StoredUploadToken, UsedJti};

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

/// SQLite: how many pages (4 KiB each) the write-ahead log may hold before
/// the connection that commits copies them into the database file itself
/// (`wal_autocheckpoint`, 1,000 by default). The checkpointer task does that
/// work off the writer's thread; this is the bound when it falls behind.
/// A page that many batches change is copied once per checkpoint, however
/// often it was written to the log (bench/README.md).
const WAL_PAGES_BEFORE_THE_WRITER_CHECKPOINTS: u32 = 20_000;

/// SQLite: how often the checkpointer copies what the log holds into the
/// database file.
const CHECKPOINT_INTERVAL: Duration = Duration::from_millis(50);

#[derive(Debug, Clone)]
pub struct Store {
    pool: AnyPool,
    /// Where writes go. SQLite allows one writer at a time: its writes queue
    /// for a single connection here instead of sleeping in SQLite's busy
    /// handler. For PostgreSQL it is the same pool as reads (mints have a
    /// connection of their own: [`Store::connect`]).
    writer: AnyPool,
    /// The connection the mint batches are written on: the writer's for
    /// SQLite, one of their own for PostgreSQL.
    minting: AnyPool,
    /// Mints queued for the task that writes them in batches.
    minter: tokens::MintQueue,
    /// Every registry, as recently read (`database.registry_cache_ttl`).
    registries: registries::Cache,
    backend: Backend,
    metrics: Metrics,
    /// `rate_limits.refused_unauthenticated`, and its one bucket.
    refusal_ceiling: Limit,
    refusals: Arc<Buckets<()>>,
    /// `database.query_timeout`: the longest any one operation may take.
    query_timeout: Duration,
}

impl Store {
    /// Connects to the configured database. For SQLite the file and its
    /// folder are created when missing, and the journal is put in WAL mode.
    ///
    /// Mints, checks, uploads, revocations and the group commit are counted
    /// in `metrics`. Anonymous refusals are not limited until
    /// [`Store::limit_refusals`].
    pub async fn connect(settings: &DatabaseSettings, metrics: Metrics) -> Result<Self> {
        sqlx::any::install_default_drivers();
        let url = settings.url.expose();
        let backend = settings.url.backend()?;
        let url = match backend {
            Backend::Sqlite => prepare_sqlite(
                url.strip_prefix("sqlite://")
                    .or_else(|| url.strip_prefix("sqlite:"))
                    .unwrap_or(url),
            )?,
            Backend::Postgres => url.to_owned(),
        };
        let options = AnyConnectOptions::from_str(&url)
            .map_err(|e| Error::config("database.url", e.to_string()))?;
        let timeout = std::time::Duration::from_secs(settings.connect_timeout);
        let pool_options = || {
            AnyPoolOptions::new()
                .acquire_timeout(timeout)
                .after_connect(move |conn, _| {
                    Box::pin(async move {
                        if backend == Backend::Sqlite {
                            conn.execute("PRAGMA journal_mode = WAL").await?;
                            conn.execute("PRAGMA foreign_keys = ON").await?;
                            // Safe with WAL: a power cut may lose the last
                            // commits, never corrupt the file.
                            conn.execute("PRAGMA synchronous = NORMAL").await?;
                            // Statement journals (each multi-row insert of a
                            // mint batch keeps one) stay in memory instead of
                            // spilling to a temporary file: bench/README.md.
                            conn.execute("PRAGMA temp_store = MEMORY").await?;
                            conn.execute(AssertSqlSafe(format!(
                                "PRAGMA wal_autocheckpoint = {WAL_PAGES_BEFORE_THE_WRITER_CHECKPOINTS}"
                            )))
                            .await?;
                        }
                        Ok(())
                    })
                })
        };
        let pool = match pool_options()
            .max_connections(settings.max_connections)
            .connect_with(options.clone())
            .await
        {
            Ok(pool) => pool,
            Err(error) => return Err(connect_error(settings, &options, error).await),
        };
        let one_connection = pool_options().max_connections(1).connect_with(options);
        // SQLite: every write on the one connection. PostgreSQL: mints on a
        // connection of their own, which keeps the statements of each batch
        // size prepared (a connection of the shared pool would prepare them
        // again on each connection the batches come to) and leaves mints
        // unaffected by a busy pool.
        let (writer, minting) = match backend {
            Backend::Sqlite => {
                let writer = one_connection.await?;
                (writer.clone(), writer)
            }
            Backend::Postgres => (pool.clone(), one_connection.await?),
        };
        if backend == Backend::Sqlite {
            start_checkpointer(pool.clone());
        }
        let query_timeout = Duration::from_secs(settings.query_timeout);
        Ok(Store {
            pool,
            minter: tokens::start_writer(minting.clone(), backend, metrics.clone(), query_timeout),
            minting,
            registries: registries::Cache::new(std::time::Duration::from_secs(
                settings.registry_cache_ttl,
            )),
            writer,
            backend,
            metrics,
            refusal_ceiling: Limit::OFF,
            refusals: Arc::new(Buckets::new("refused_unauthenticated")),
            query_timeout,
        })
    }

    /// Records refusals of anonymous callers (counted per hour, never kept
    /// as events) at most as fast as `ceiling` allows, for the whole server;
    /// beyond it they are answered `rate-limited` and not written.
    pub fn limit_refusals(mut self, ceiling: Limit) -> Self {
        self.refusal_ceiling = ceiling;
        self
    }

    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// Applies the migrations not yet applied.
    pub async fn migrate(&self) -> Result<()> {
        MIGRATOR.run(&self.writer).await?;
        Ok(())
    }

    /// Whether the store answers and takes writes: a database that can
    /// only be read (a SQLite file opened read-only, a PostgreSQL standby)
    /// cannot mint. The write changes nothing, but is refused there.
    pub async fn ping(&self) -> Result<()> {
        self.within_timeout(async {
            self.pool
                .execute("SELECT 1")
                .await
                .map_err(Error::StoreUnavailable)?;
            self.writer
                .execute("UPDATE refusal_counts SET count = count WHERE 1 = 0")
                .await
                .map(drop)
                .map_err(Error::StoreUnavailable)
        })
        .await
    }

    pub async fn close(&self) {
        self.minting.close().await;
        self.writer.close().await;
        self.pool.close().await;
    }

    /// `operation` given at most `database.query_timeout`, waiting for a
    /// connection included.
    async fn within_timeout<T>(&self, operation: impl Future<Output = Result<T>>) -> Result<T> {
        within(self.query_timeout, operation).await
    }

    pub(crate) fn pool(&self) -> &AnyPool {
        &self.pool
    }

    pub(crate) fn writer(&self) -> &AnyPool {
        &self.writer
    }

    /// Deletes the rows of `table` that `condition` selects (its `$1` bound
    /// to `bound`), at most [`PURGE_BATCH`] rows a statement: a purge of
    /// millions of rows is many short writes, between which mints get the
    /// writer; each statement, not the whole purge, is given
    /// `database.query_timeout`. Rows are named by their physical id
    /// (SQLite's `rowid`, PostgreSQL's `ctid`), which each backend looks up
    /// directly.
    pub(super) async fn delete_in_batches(
        &self,
        table: &str,
        condition: &str,
        bound: i64,
    ) -> Result<u64> {
        let id = match self.backend {
            Backend::Sqlite => "rowid",
            Backend::Postgres => "ctid",
        };
        let batch = format!("SELECT {id} FROM {table} WHERE {condition} LIMIT {PURGE_BATCH}");
        let statement = match self.backend {
            Backend::Sqlite => format!("DELETE FROM {table} WHERE rowid IN ({batch})"),
            Backend::Postgres => format!("DELETE FROM {table} WHERE ctid = ANY(ARRAY({batch}))"),
        };
        let mut deleted = 0;
        loop {
            let done = self
                .within_timeout(async {
                    Ok(sqlx::query(AssertSqlSafe(statement.clone()))
                        .bind(bound)
                        .execute(self.writer())
                        .await?
                        .rows_affected())
                })
                .await?;
            deleted += done;
            if done < PURGE_BATCH {
                return Ok(deleted);
            }
            tokio::task::yield_now().await;
        }
    }
}

/// The most rows one statement of a purge deletes.
pub const PURGE_BATCH: u64 = 2_000;

/// `operation`, or `store-unavailable` once `limit` has passed: a database
/// that accepts connections and then never answers (a hung server, a
/// network that drops every packet) fails the request instead of holding
/// it until the operating system's TCP timeouts, which take minutes to
/// hours. Dropping the operation drops its connection, whose query may
/// still be running: that is safe, because every write commits in one
/// transaction, and an answer of 503 only ever hides a commit that
/// happened, never invents one.
async fn within<T>(limit: Duration, operation: impl Future<Output = Result<T>>) -> Result<T> {
    tokio::time::timeout(limit, operation)
        .await
        .unwrap_or_else(|_| {
            let silent = std::io::Error::new(
                std::io::ErrorKind::TimedOut,
                format!(
                    "the database did not answer within {} s (database.query_timeout)",
                    limit.as_secs()
                ),
            );
            Err(Error::StoreUnavailable(sqlx::Error::Io(silent)))
        })
}

/// Why the database cannot be used, in a sentence that says where it is.
async fn connect_error(
    settings: &DatabaseSettings,
    options: &AnyConnectOptions,
    error: sqlx::Error,
) -> Error {
    use sqlx::ConnectOptions;
    use std::io::ErrorKind;

    let location = settings.url.location();
    let error = match error {
        // The pool retried until `connect_timeout`: one more try says why.
        sqlx::Error::PoolTimedOut => {
            let once = std::time::Duration::from_secs(3);
            match tokio::time::timeout(once, options.connect()).await {
                Ok(Err(error)) => error,
                _ => {
                    return Error::StoreConnect {
                        location,
                        reason: format!(
                            "no connection within {} s (database.connect_timeout)",
                            settings.connect_timeout
                        ),
                    };
                }
            }
        }
        other => other,
    };
    let reason = match &error {
        sqlx::Error::Io(e) if e.kind() == ErrorKind::ConnectionRefused => format!(
            "connection refused, retried for {} s: is the database server running, \
             and listening on that address?",
            settings.connect_timeout
        ),
        sqlx::Error::Io(e) => e.to_string(),
        sqlx::Error::Tls(e) => format!("TLS failed: {e}"),
        sqlx::Error::Protocol(_) => {
            "what answers there does not speak the database's protocol".to_owned()
        }
        // The server's own message, without sqlx's prefix and source line.
        sqlx::Error::Database(e) if e.code().as_deref() == Some("3D000") => format!(
            "{}: create it (for example with createdb) or name another in database.url",
            e.message()
        ),
        sqlx::Error::Database(e) => e.message().to_owned(),
        other => other.to_string(),
    };
    Error::StoreConnect { location, reason }
}

/// Starts the task that checkpoints a SQLite database every
/// [`CHECKPOINT_INTERVAL`] on a connection of `pool`, until the pool is
/// closed. A passive checkpoint waits for no one: it copies the pages that
/// no reader still needs, while the writer goes on appending to the log, so
/// that the mints' writer seldom stops to checkpoint.
fn start_checkpointer(pool: AnyPool) {
    tokio::spawn(async move {
        let mut ticks = tokio::time::interval(CHECKPOINT_INTERVAL);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            ticks.tick().await;
            if pool.is_closed() {
                break;
            }
            if let Err(error) = pool.execute("PRAGMA wal_checkpoint(PASSIVE)").await {
                tracing::debug!(%error, "a checkpoint of the SQLite log failed");
            }
        }
    });
}

/// Creates the folder of a SQLite database file and asks for the file to be
/// created when missing (unless the URL sets `mode` itself).
fn prepare_sqlite(rest: &str) -> Result<String> {
    let (path, query) = rest.split_once('?').unwrap_or((rest, ""));
    if path != ":memory:"
        && let Some(parent) = Path::new(path).parent()
        && !parent.as_os_str().is_empty()
    {
        std::fs::create_dir_all(parent)
            .map_err(|e| Error::io(format!("creating {}", parent.display()), e))?;
    }
    let mode = if query.split('&').any(|p| p.starts_with("mode=")) {
        ""
    } else if query.is_empty() {
        "?mode=rwc"
    } else {
        "&mode=rwc"
    };
    Ok(format!("sqlite://{rest}{mode}"))
}

pub(crate) fn to_json<T: serde::Serialize + ?Sized>(value: &T) -> String {
    serde_json::to_string(value).expect("plain data serialises to JSON")
}

/// A JSON column read back; one that no longer parses was edited by hand or
/// written by a newer version.
pub(crate) fn from_json<T: serde::de::DeserializeOwned>(json: &str) -> Result<T> {
    serde_json::from_str(json).map_err(|e| corrupt(e.to_string()))
}

/// `N` bytes from the operating system's random source.
pub(super) fn random_bytes<const N: usize>() -> [u8; N] {
    let mut bytes = [0u8; N];
    ring::rand::SystemRandom::new()
        .fill(&mut bytes)
        .expect("the operating system's random source works");
    bytes
}

pub(crate) fn corrupt(reason: String) -> Error {
    Error::Store(sqlx::Error::Decode(reason.into()))
}

/// The current time as Unix seconds.
pub fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{DatabaseUrl, Settings};

    pub(super) async fn store_at(url: String) -> Result<Store> {
        let settings = DatabaseSettings {
            url: DatabaseUrl::new(url),
            ..Settings::default().database
        };
        Store::connect(&settings, crate::metrics::Metrics::new()).await
    }

    /// A migrated store on a new SQLite file (`trustpub.db`) in the folder
    /// returned with it, which must outlive the store.
    pub(super) async fn migrated_sqlite() -> (tempfile::TempDir, Store) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("trustpub.db").display().to_string();
        let store = store_at(format!("sqlite://{path}")).await.unwrap();
        store.migrate().await.unwrap();
        (dir, store)
    }

    /// Every SQLite connection, the pool's and the writer's, keeps its
    /// temporary data in memory: the statement journal that each multi-row
    /// insert of a mint batch keeps would otherwise spill to a temporary
    /// file (bench/README.md, "The mint profiled").
    #[tokio::test]
    async fn sqlite_connections_keep_temporary_data_in_memory() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("trustpub.db").display().to_string();
        let store = store_at(format!("sqlite://{path}")).await.unwrap();
        for connections in [store.pool(), store.writer()] {
            let temp_store: i64 = sqlx::query_scalar("PRAGMA temp_store")
                .fetch_one(connections)
                .await
                .unwrap();
            assert_eq!(temp_store, 2, "2 is MEMORY");
        }
    }

    /// SQLite: the writer checkpoints only when the log has grown large;
    /// the checkpointer task copies the log into the database file soon
    /// after each write. Read from the wal-index (the `-shm` file, in the
    /// host's byte order): the log's last frame (`mxFrame`, offset 16) and
    /// how many frames a checkpoint has copied (`nBackfill`, offset 96).
    #[tokio::test]
    async fn sqlite_s_log_is_checkpointed_off_the_writer() {
        let (dir, store) = migrated_sqlite().await;
        let pages: i64 = sqlx::query_scalar("PRAGMA wal_autocheckpoint")
            .fetch_one(store.writer())
            .await
            .unwrap();
        assert_eq!(pages, i64::from(WAL_PAGES_BEFORE_THE_WRITER_CHECKPOINTS));

        store
            .writer()
            .execute("INSERT INTO used_jtis (issuer, jti, expires_at) VALUES ('i', 'j', 0)")
            .await
            .unwrap();
        let shm = dir.path().join("trustpub.db-shm");
        let frames = |offset: usize| {
            let header = std::fs::read(&shm).unwrap();
            u32::from_ne_bytes(header[offset..offset + 4].try_into().unwrap())
        };
        let last = frames(16);
        assert!(last > 0, "the insert is in the log");
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while frames(96) < last {
            assert!(
                std::time::Instant::now() < deadline,
                "no checkpoint copied the log's {last} frames"
            );
            tokio::time::sleep(CHECKPOINT_INTERVAL).await;
        }
    }

    /// A SQLite file that can only be read: not ready, and its refused
    /// writes are the store being unavailable (503), not a server error.
    #[tokio::test]
    async fn a_read_only_sqlite_file_is_unavailable() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("trustpub.db").display().to_string();
        let writable = store_at(format!("sqlite://{path}")).await.unwrap();
        writable.migrate().await.unwrap();
        writable.ping().await.unwrap();
        writable.close().await;

        let read_only = store_at(format!("sqlite://{path}?mode=ro")).await.unwrap();
        assert_eq!(
            read_only.ping().await.unwrap_err().code(),
            "store-unavailable"
        );
        let refused = read_only
            .writer()
            .execute("DELETE FROM used_jtis")
            .await
            .unwrap_err();
        assert_eq!(Error::from(refused).code(), "store-unavailable");
    }
}
