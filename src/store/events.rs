//! The event log: what became of every mint, credential check, revocation
//! and gateway upload whose caller proved who it is, with the claims worth
//! auditing; of the others, only a count per hour.

use sqlx::any::AnyArguments;
use sqlx::{Arguments, AssertSqlSafe};

use super::rows::{Insert, table_row};
use super::{Store, random_bytes};
use crate::metrics::Outcomes;
use crate::problem::Result;
use crate::publishers::Audit;

/// The most of a text from a request (a detail, a claim) that an event or
/// a log line keeps: an unauthenticated client must not be able to grow
/// the store or the logs by sending more.
pub const UNTRUSTED_TEXT_LIMIT: usize = 512;

/// `text`, NULs replaced by U+FFFD and cut to [`UNTRUSTED_TEXT_LIMIT`] bytes
/// (at a character boundary, marked with `…`).
pub fn bounded(text: &str) -> std::borrow::Cow<'_, str> {
    // NUL is the one character PostgreSQL's text cannot hold.
    let text: std::borrow::Cow<'_, str> = if text.contains('\0') {
        text.replace('\0', "\u{FFFD}").into()
    } else {
        text.into()
    };
    if text.len() <= UNTRUSTED_TEXT_LIMIT {
        return text;
    }
    let mut end = UNTRUSTED_TEXT_LIMIT;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &text[..end]).into()
}

/// What a request attempted; stored (`events.kind`, `refusal_counts.kind`)
/// in lower case.
#[derive(Debug, Clone, Copy, PartialEq, Eq, strum::IntoStaticStr, strum::EnumString)]
#[strum(serialize_all = "lowercase")]
pub enum EventKind {
    Mint,
    Check,
    Revoke,
    Upload,
    /// A change made through the admin API.
    Admin,
}

/// What became of it; stored (`events.outcome`) in lower case.
#[derive(Debug, Clone, Copy, PartialEq, Eq, strum::IntoStaticStr)]
#[strum(serialize_all = "lowercase")]
pub enum Outcome {
    Minted,
    Refused,
    /// A check found the credential valid.
    Active,
    /// A check found it valid and used it up (single-use).
    Consumed,
    /// A check found it not valid for the request.
    Inactive,
    Revoked,
    /// An upload went on to the registry, whatever it answered.
    Forwarded,
    /// Admin changes: something was created, updated or deleted.
    Created,
    Updated,
    Deleted,
}

impl EventKind {
    pub fn as_str(self) -> &'static str {
        self.into()
    }
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        self.into()
    }
}

/// Whether a request proved who made it: a verified identity token, or a
/// credential the registry knows. What becomes of an anonymous request is
/// only counted (per registry, kind, code and hour), so that nobody can
/// grow the store by sending junk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Caller {
    Identified,
    Anonymous,
}

impl Caller {
    /// `Identified` when the request proved who made it.
    pub fn proven(proof: bool) -> Self {
        if proof {
            Caller::Identified
        } else {
            Caller::Anonymous
        }
    }
}

/// An event to record ([`Store::record_event`]): a row of `events` when
/// its caller is identified, one more in an hour's count otherwise.
#[derive(Debug)]
pub struct NewEvent<'a> {
    pub at: i64,
    pub registry: &'a str,
    pub caller: Caller,
    pub kind: EventKind,
    pub outcome: Outcome,
    /// The problem code of a refusal, `ok` otherwise.
    pub code: &'static str,
    pub publishers: Option<Vec<String>>,
    pub detail: String,
    pub claims: Option<Audit>,
}

/// A recorded event, as read from `events`.
#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct Event {
    /// Time-ordered: a later event has a greater id.
    pub id: String,
    pub at: i64,
    pub registry: String,
    pub kind: String,
    pub outcome: String,
    pub code: String,
    pub publishers: Option<String>,
    pub detail: String,
    pub claims: Option<String>,
}

table_row! {
    /// A row of `events`, as written.
    #[derive(Debug)]
    pub(super) struct EventRow in "events" {
        id: String,
        at: i64,
        registry: String,
        kind: &'static str,
        outcome: &'static str,
        code: &'static str,
        publishers: Option<String>,
        detail: String,
        claims: Option<String>,
    }
}

impl NewEvent<'_> {
    /// The event as a row of `events`, with a fresh time-ordered id
    /// (nanoseconds since the epoch, then randomness), its texts bounded.
    pub(super) fn to_row(&self) -> EventRow {
        let random: [u8; 8] = random_bytes();
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or_default();
        EventRow {
            id: format!("{nanos:032x}{}", hex::encode(random)),
            at: self.at,
            registry: self.registry.to_owned(),
            kind: self.kind.as_str(),
            outcome: self.outcome.as_str(),
            code: self.code,
            publishers: self.publishers.as_ref().map(super::to_json),
            detail: bounded(&self.detail).into_owned(),
            claims: self
                .claims
                .as_ref()
                .map(|claims| super::to_json(&claims.map_texts(|t| bounded(t).into_owned()))),
        }
    }
}

/// Which events [`Store::find_events`] returns: those meeting every
/// condition given, newest first, after the cursor; or, with `after`,
/// oldest first from there.
#[derive(Debug, Clone, Default)]
pub struct EventQuery {
    /// Only these registries (an admin token's scope); `None`: all.
    pub within: Option<Vec<String>>,
    pub registry: Option<String>,
    pub kind: Option<String>,
    pub outcome: Option<String>,
    pub code: Option<String>,
    /// A publisher's id.
    pub publisher: Option<String>,
    /// `at` from (inclusive), Unix seconds.
    pub since: Option<i64>,
    /// `at` until (exclusive), Unix seconds.
    pub until: Option<i64>,
    /// The id of the last event of the previous page: only older ones.
    pub before: Option<String>,
    /// Only events with a greater id, oldest first (a follower's position).
    pub after: Option<String>,
    pub limit: u32,
}

impl EventQuery {
    /// The `SELECT` of the events this query asks for (one more than the
    /// limit, to tell whether another page follows), and its values.
    fn select(&self) -> Result<(String, AnyArguments)> {
        let mut values = Vec::new();
        // The placeholder of a new value.
        let mut bind = |value: Bound| {
            values.push(value);
            format!("${}", values.len())
        };
        let mut conditions = Vec::new();
        let texts = [
            ("registry", &self.registry),
            ("kind", &self.kind),
            ("outcome", &self.outcome),
            ("code", &self.code),
        ];
        for (column, value) in texts {
            if let Some(value) = value {
                conditions.push(format!("{column} = {}", bind(Bound::Text(value.clone()))));
            }
        }
        if let Some(before) = &self.before {
            conditions.push(format!("id < {}", bind(Bound::Text(before.clone()))));
        }
        if let Some(after) = &self.after {
            conditions.push(format!("id > {}", bind(Bound::Text(after.clone()))));
        }
        if let Some(publisher) = &self.publisher {
            // Publisher ids are hex: no character of LIKE's own.
            let pattern = Bound::Text(format!("%\"{publisher}\"%"));
            conditions.push(format!("publishers LIKE {}", bind(pattern)));
        }
        if let Some(since) = self.since {
            conditions.push(format!("at >= {}", bind(Bound::Number(since))));
        }
        if let Some(until) = self.until {
            conditions.push(format!("at < {}", bind(Bound::Number(until))));
        }
        if let Some(within) = &self.within {
            let any: Vec<String> = within
                .iter()
                .map(|name| format!("registry = {}", bind(Bound::Text(name.clone()))))
                .collect();
            conditions.push(if any.is_empty() {
                "1 = 0".to_owned()
            } else {
                format!("({})", any.join(" OR "))
            });
        }
        let filter = if conditions.is_empty() {
            String::new()
        } else {
            format!("WHERE {}", conditions.join(" AND "))
        };
        let sql = format!(
            "SELECT id, at, registry, kind, outcome, code, publishers, detail, claims FROM events \
             {filter} ORDER BY id {} LIMIT {}",
            if self.after.is_some() { "ASC" } else { "DESC" },
            u64::from(self.limit) + 1
        );
        let mut arguments = AnyArguments::default();
        for value in values {
            match value {
                Bound::Text(text) => arguments.add(text),
                Bound::Number(number) => arguments.add(number),
            }
            .map_err(sqlx::Error::Encode)?;
        }
        Ok((sql, arguments))
    }
}

/// A page of events and the cursor of the next one, if there are more.
#[derive(Debug, Clone)]
pub struct EventPage {
    pub events: Vec<Event>,
    pub next: Option<String>,
}

/// A value bound to a query built at run time.
enum Bound {
    Text(String),
    Number(i64),
}

/// How many refusals of one kind and code a registry had in an hour, as
/// read from `refusal_counts`.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct RefusalCount {
    pub kind: String,
    pub code: String,
    /// The hour's start, Unix seconds.
    pub hour: i64,
    pub count: i64,
}

impl Store {
    /// Records what became of a request: an event when its caller is
    /// identified, a count otherwise.
    ///
    /// Refusals of anonymous callers beyond `rate_limits.refused_unauthenticated`
    /// are neither counted nor recorded: the error says when to retry, and
    /// the caller answers with it instead.
    pub async fn record_event(&self, event: NewEvent<'_>) -> Result<()> {
        self.within_timeout(async {
            if event.caller == Caller::Anonymous
                && matches!(event.outcome, Outcome::Refused | Outcome::Inactive)
            {
                self.refusals.take((), self.refusal_ceiling)?;
            }
            self.count(&event);
            if event.caller == Caller::Anonymous {
                return self
                    .count_refusal(event.registry, event.kind, event.code, event.at)
                    .await;
            }
            Insert::rows([&event.to_row()])?
                .execute(self.writer())
                .await
        })
        .await
    }

    /// Counts an event in its metric, if its kind has one.
    pub(super) fn count(&self, event: &NewEvent<'_>) {
        let family = match event.kind {
            EventKind::Mint => Outcomes::Mints,
            EventKind::Check => Outcomes::Checks,
            EventKind::Upload => Outcomes::Uploads,
            EventKind::Revoke => Outcomes::Revocations,
            EventKind::Admin => return,
        };
        self.metrics
            .outcome(family, event.registry, event.outcome.as_str(), event.code);
    }

    /// Counts an anonymous request's outcome: one row per registry, kind,
    /// code and hour, however many such requests come.
    async fn count_refusal(
        &self,
        registry: &str,
        kind: EventKind,
        code: &'static str,
        at: i64,
    ) -> Result<()> {
        sqlx::query(
            "INSERT INTO refusal_counts (registry, kind, code, hour, count) \
             VALUES ($1, $2, $3, $4, 1) ON CONFLICT (registry, kind, code, hour) \
             DO UPDATE SET count = refusal_counts.count + 1",
        )
        .bind(registry)
        .bind(kind.as_str())
        .bind(code)
        .bind(at - at.rem_euclid(3600))
        .execute(self.writer())
        .await?;
        Ok(())
    }

    /// A registry's refusal counts, oldest hour first.
    pub async fn refusal_counts(&self, registry: &str) -> Result<Vec<RefusalCount>> {
        self.within_timeout(async {
            Ok(sqlx::query_as(
                "SELECT kind, code, hour, count FROM refusal_counts WHERE registry = $1 \
                 ORDER BY hour, kind, code",
            )
            .bind(registry)
            .fetch_all(self.pool())
            .await?)
        })
        .await
    }

    /// Deletes the events and refusal counts from before `before`.
    pub async fn purge_events(&self, before: i64) -> Result<u64> {
        let events = self.delete_in_batches("events", "at < $1", before).await?;
        // An hour's count goes with the hour's last second.
        let counts = self
            .delete_in_batches("refusal_counts", "hour < $1", before - 3600 + 1)
            .await?;
        Ok(events + counts)
    }

    /// The events a query selects, newest first (oldest first with
    /// `after`). Paging by id: events recorded while an operator pages are
    /// newer than the cursor, so they never shift the pages that follow;
    /// `next` is the page's last id, to pass as `before` (or `after`).
    pub async fn find_events(&self, query: &EventQuery) -> Result<EventPage> {
        self.within_timeout(async {
            let (sql, arguments) = query.select()?;
            let mut events = sqlx::query_as_with::<_, Event, _>(AssertSqlSafe(sql), arguments)
                .fetch_all(self.pool())
                .await?;
            let more = events.len() > query.limit as usize;
            events.truncate(query.limit as usize);
            Ok(EventPage {
                next: more.then(|| events.last().map(|e| e.id.clone())).flatten(),
                events,
            })
        })
        .await
    }

    /// A registry's events, in the order they were recorded.
    pub async fn events(&self, registry: &str) -> Result<Vec<Event>> {
        self.within_timeout(async {
            Ok(sqlx::query_as(
                "SELECT id, at, registry, kind, outcome, code, publishers, detail, claims FROM events \
                 WHERE registry = $1 ORDER BY id",
            )
            .bind(registry)
            .fetch_all(self.pool())
            .await?)
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// How SQLite runs a query: the details of its plan, a line each.
    async fn plan_of(store: &Store, query: &EventQuery) -> String {
        let (sql, arguments) = query.select().unwrap();
        let explain = format!("EXPLAIN QUERY PLAN {sql}");
        let steps: Vec<(i64, i64, i64, String)> =
            sqlx::query_as_with(AssertSqlSafe(explain), arguments)
                .fetch_all(store.pool())
                .await
                .unwrap();
        steps
            .into_iter()
            .map(|(_, _, _, detail)| detail)
            .collect::<Vec<_>>()
            .join("\n")
    }

    /// A page of one registry's events is read through the index by
    /// registry and id, in the page's order: never every event of the
    /// registry gathered and sorted first, which took a busy registry's
    /// page over a second with a million events (bench/README.md).
    #[tokio::test]
    async fn a_page_of_a_registry_s_events_reads_that_page_in_order() {
        let (_dir, store) = super::super::tests::migrated_sqlite().await;
        let id = "0".repeat(64);
        let pages = [
            EventQuery::default(),
            EventQuery {
                before: Some(id.clone()),
                ..EventQuery::default()
            },
            EventQuery {
                after: Some(id),
                ..EventQuery::default()
            },
        ];
        for page in pages {
            let query = EventQuery {
                registry: Some("acme".to_owned()),
                limit: 50,
                ..page
            };
            let plan = plan_of(&store, &query).await;
            assert!(
                plan.contains("USING INDEX events_by_registry (registry=?"),
                "{query:?}: {plan}"
            );
            assert!(!plan.contains("TEMP B-TREE"), "{query:?}: {plan}");
        }
    }
}
