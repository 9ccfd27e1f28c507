//! The event log: every mint and refusal, with the claims worth auditing.

use ring::rand::{SecureRandom, SystemRandom};
use sqlx::Row as _;

use super::rows::{Bind, Row, insert_rows};

use super::Store;
use crate::problem::Result;
use crate::publishers::Audit;

/// An event to record.
#[derive(Debug)]
pub struct NewEvent<'a> {
    pub at: i64,
    pub registry: &'a str,
    /// What was attempted: `mint`.
    pub kind: &'static str,
    /// `minted` or `refused`.
    pub outcome: &'static str,
    /// The problem code of a refusal, `ok` otherwise.
    pub code: &'static str,
    pub publishers: Option<Vec<String>>,
    pub detail: String,
    pub claims: Option<Audit>,
}

/// A recorded event.
#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    pub at: i64,
    pub registry: String,
    pub kind: String,
    pub outcome: String,
    pub code: String,
    pub publishers: Option<String>,
    pub detail: String,
    pub claims: Option<String>,
}

pub(super) const INSERT_EVENTS: &str =
    "INSERT INTO events (id, at, registry, kind, outcome, code, publishers, detail, claims) VALUES";

impl NewEvent<'_> {
    /// The event as a row of `events`, with a fresh time-ordered id
    /// (nanoseconds since the epoch, then randomness).
    pub(super) fn to_row(&self) -> Row {
        let mut random = [0u8; 8];
        SystemRandom::new()
            .fill(&mut random)
            .expect("the operating system's random source works");
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or_default();
        vec![
            Bind::Text(format!("{nanos:032x}{}", hex::encode(random))),
            Bind::Int(self.at),
            Bind::Text(self.registry.to_owned()),
            Bind::Text(self.kind.to_owned()),
            Bind::Text(self.outcome.to_owned()),
            Bind::Text(self.code.to_owned()),
            Bind::MaybeText(self.publishers.as_ref().map(super::to_json)),
            Bind::Text(self.detail.clone()),
            Bind::MaybeText(self.claims.as_ref().map(super::to_json)),
        ]
    }
}

impl Store {
    pub async fn record_event(&self, event: NewEvent<'_>) -> Result<()> {
        let mut conn = self.writer().acquire().await?;
        insert_rows(&mut conn, INSERT_EVENTS, &[event.to_row()], "").await?;
        Ok(())
    }

    /// A registry's events, in the order they were recorded.
    pub async fn events(&self, registry: &str) -> Result<Vec<Event>> {
        let rows = sqlx::query(
            "SELECT at, registry, kind, outcome, code, publishers, detail, claims FROM events \
             WHERE registry = $1 ORDER BY id",
        )
        .bind(registry)
        .fetch_all(self.pool())
        .await?;
        rows.into_iter()
            .map(|row| {
                Ok(Event {
                    at: row.try_get("at")?,
                    registry: row.try_get("registry")?,
                    kind: row.try_get("kind")?,
                    outcome: row.try_get("outcome")?,
                    code: row.try_get("code")?,
                    publishers: row.try_get("publishers")?,
                    detail: row.try_get("detail")?,
                    claims: row.try_get("claims")?,
                })
            })
            .collect()
    }
}
