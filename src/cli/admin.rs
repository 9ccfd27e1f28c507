//! `trustpub admin …`: the admin API's client. Human tables by default,
//! the API's JSON with `--json`; the token comes from
//! `TRUSTPUB_ADMIN_TOKEN`, never from the command line.

use std::time::Duration;

use clap::{Args, Subcommand};
use reqwest::Method;
use serde_json::Value;

use crate::http::LARGEST_EVENT_PAGE;
use crate::problem::{Error, Result};

#[derive(Debug, Args)]
pub struct AdminArgs {
    /// The admin API's base URL (the `[admin] listen` address).
    #[arg(
        long,
        env = "TRUSTPUB_ADMIN_URL",
        default_value = "http://127.0.0.1:8081"
    )]
    url: String,
    /// Print the API's JSON instead of tables.
    #[arg(long, global = true)]
    json: bool,
    #[command(subcommand)]
    command: AdminCommand,
}

#[derive(Debug, Subcommand)]
enum AdminCommand {
    /// List, show, create or update (from a JSON file) or delete registries.
    #[command(subcommand)]
    Registries(RegistriesCommand),
    /// List, add (JSON) or remove a registry's trusted publishers.
    #[command(subcommand)]
    Publishers(PublishersCommand),
    /// List or revoke a registry's live credentials.
    #[command(subcommand)]
    Credentials(CredentialsCommand),
    /// The event log, newest first; `--follow` prints new events as they come.
    Events(EventsArgs),
}

#[derive(Debug, Subcommand)]
enum RegistriesCommand {
    List,
    Get {
        name: String,
    },
    /// Create a registry from a JSON file (a `[[registries]]` table as JSON).
    Create {
        file: std::path::PathBuf,
    },
    /// Replace an API registry's settings and issuers from a JSON file (its
    /// publishers stay).
    Update {
        name: String,
        file: std::path::PathBuf,
    },
    Delete {
        name: String,
        /// Also when it has live credentials, which are revoked with it.
        #[arg(long)]
        revoke: bool,
    },
}

#[derive(Debug, Subcommand)]
enum PublishersCommand {
    List {
        registry: String,
    },
    /// Add a publisher: JSON text, or @FILE.
    Add {
        registry: String,
        publisher: String,
    },
    Remove {
        registry: String,
        id: String,
    },
}

#[derive(Debug, Subcommand)]
enum CredentialsCommand {
    List {
        registry: String,
    },
    /// Revoke one credential by id, or every one of `--publisher`.
    Revoke {
        registry: String,
        #[arg(required_unless_present = "publisher", conflicts_with = "publisher")]
        id: Option<String>,
        #[arg(long)]
        publisher: Option<String>,
    },
}

#[derive(Debug, Args)]
struct EventsArgs {
    #[arg(long)]
    registry: Option<String>,
    /// mint, check, revoke, upload or admin.
    #[arg(long)]
    kind: Option<String>,
    #[arg(long)]
    outcome: Option<String>,
    #[arg(long)]
    code: Option<String>,
    /// A publisher's id.
    #[arg(long)]
    publisher: Option<String>,
    /// Only events at or after this time (Unix seconds).
    #[arg(long)]
    since: Option<i64>,
    /// Only events before this time (Unix seconds).
    #[arg(long)]
    until: Option<i64>,
    /// How many events to show (with `--follow`, at start).
    #[arg(long, default_value_t = 20)]
    limit: u32,
    /// Keep polling and print new events (oldest first) until interrupted.
    #[arg(long)]
    follow: bool,
}

/// How an answer is shown as rows of cells.
type Table = fn(&Value) -> Vec<Vec<String>>;

/// How often `events --follow` asks for new events.
const FOLLOW_INTERVAL: Duration = Duration::from_secs(2);

/// How long, in seconds, an event may be committed after a later one:
/// its id (time-ordered) is taken when it is made, and it is committed
/// with its transaction or group-commit batch, within
/// `database.query_timeout` (10 s by default); another instance's clock may
/// be a little off too. `events --follow` reads this window again on every
/// poll and skips what it has shown, so such an event is shown late rather
/// than never.
const LATE_COMMITS: i64 = 30;

impl AdminArgs {
    pub async fn run(self) -> Result<()> {
        let token = std::env::var("TRUSTPUB_ADMIN_TOKEN").map_err(|_| {
            Error::config(
                "TRUSTPUB_ADMIN_TOKEN",
                "set it to an admin token (never given on the command line, where \
                 other users could read it)",
            )
        })?;
        let api = Api {
            client: reqwest::Client::new(),
            base: format!("{}/_/trustpub/admin/v1", self.url.trim_end_matches('/')),
            token,
        };
        let json = self.json;
        let (answer, table): (Value, Table) = match self.command {
            AdminCommand::Registries(command) => match command {
                RegistriesCommand::List => (
                    api.call(Method::GET, "/registries", None).await?,
                    registry_rows,
                ),
                RegistriesCommand::Get { name } => {
                    let registry = api
                        .call(Method::GET, &format!("/registries/{name}"), None)
                        .await?;
                    (registry, registry_and_publisher_rows)
                }
                RegistriesCommand::Create { file } => {
                    let body = read_json(&format!("@{}", file.display()))?;
                    let created = api.call(Method::POST, "/registries", Some(body)).await?;
                    (created, registry_and_publisher_rows)
                }
                RegistriesCommand::Update { name, file } => {
                    let body = read_json(&format!("@{}", file.display()))?;
                    let path = format!("/registries/{name}");
                    let updated = api.call(Method::PUT, &path, Some(body)).await?;
                    (updated, registry_and_publisher_rows)
                }
                RegistriesCommand::Delete { name, revoke } => {
                    let path = format!("/registries/{name}?revoke={revoke}");
                    (api.call(Method::DELETE, &path, None).await?, done_rows)
                }
            },
            AdminCommand::Publishers(command) => match command {
                PublishersCommand::List { registry } => {
                    let path = format!("/registries/{registry}/publishers");
                    (api.call(Method::GET, &path, None).await?, publisher_rows)
                }
                PublishersCommand::Add {
                    registry,
                    publisher,
                } => {
                    let path = format!("/registries/{registry}/publishers");
                    let added = api
                        .call(Method::POST, &path, Some(read_json(&publisher)?))
                        .await?;
                    (added, publisher_rows)
                }
                PublishersCommand::Remove { registry, id } => {
                    let path = format!("/registries/{registry}/publishers/{id}");
                    (api.call(Method::DELETE, &path, None).await?, done_rows)
                }
            },
            AdminCommand::Credentials(command) => match command {
                CredentialsCommand::List { registry } => {
                    let path = format!("/registries/{registry}/credentials");
                    (api.call(Method::GET, &path, None).await?, credential_rows)
                }
                CredentialsCommand::Revoke {
                    registry,
                    id,
                    publisher,
                } => {
                    let path = match (id, publisher) {
                        (_, Some(publisher)) => {
                            format!("/registries/{registry}/publishers/{publisher}/credentials")
                        }
                        (id, None) => format!(
                            "/registries/{registry}/credentials/{}",
                            id.unwrap_or_default()
                        ),
                    };
                    (api.call(Method::DELETE, &path, None).await?, done_rows)
                }
            },
            AdminCommand::Events(args) => return events(&api, args, json).await,
        };
        if json {
            println!("{answer}");
        } else {
            print_table(&table(&answer));
        }
        Ok(())
    }
}

/// The admin API at `base`, called with `token`.
struct Api {
    client: reqwest::Client,
    base: String,
    token: String,
}

impl Api {
    /// The answer's JSON (`null` when it has none); a problem document's
    /// detail as the error.
    async fn call(&self, method: Method, path: &str, body: Option<Value>) -> Result<Value> {
        let mut request = self
            .client
            .request(method, format!("{}{path}", self.base))
            .bearer_auth(&self.token);
        if let Some(body) = body {
            request = request.json(&body);
        }
        let failed = |e: &dyn std::fmt::Display| {
            Error::io(
                format!("calling the admin API at {}", self.base),
                std::io::Error::other(e.to_string()),
            )
        };
        let response = request.send().await.map_err(|e| failed(&e))?;
        let status = response.status();
        let text = response.text().await.map_err(|e| failed(&e))?;
        let answer: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
        if status.is_success() {
            return Ok(answer);
        }
        let reason = match (answer["code"].as_str(), answer["detail"].as_str()) {
            (Some(code), Some(detail)) => format!("{status} {code}: {detail}"),
            _ => format!("{status}: {text}"),
        };
        Err(failed(&reason))
    }
}

/// JSON given as text, or as `@FILE`.
fn read_json(given: &str) -> Result<Value> {
    let text = match given.strip_prefix('@') {
        Some(file) => {
            std::fs::read_to_string(file).map_err(|e| Error::io(format!("reading {file}"), e))?
        }
        None => given.to_owned(),
    };
    serde_json::from_str(&text)
        .map_err(|e| Error::io("reading the JSON given", std::io::Error::other(e)))
}

/// `events`, once or (`--follow`) until interrupted.
async fn events(api: &Api, args: EventsArgs, json: bool) -> Result<()> {
    let mut query = vec![("limit", args.limit.to_string())];
    let texts = [
        ("registry", args.registry),
        ("kind", args.kind),
        ("outcome", args.outcome),
        ("code", args.code),
        ("publisher", args.publisher),
    ];
    let times = [("since", args.since), ("until", args.until)];
    let given = texts
        .into_iter()
        .chain(times.map(|(name, time)| (name, time.map(|t| t.to_string()))));
    query.extend(given.filter_map(|(name, value)| Some((name, value?))));
    let page = api.call(Method::GET, &events_path(&query), None).await?;
    let mut shown: Vec<Value> = page["events"].as_array().cloned().unwrap_or_default();
    shown.reverse();
    print_events(&shown, json, true);
    if !args.follow {
        return Ok(());
    }
    let mut follower = Follower::new(&shown);
    loop {
        tokio::time::sleep(FOLLOW_INTERVAL).await;
        let fresh = follower.poll(api, &query).await?;
        print_events(&fresh, json, false);
    }
}

fn events_path(query: &[(&str, String)]) -> String {
    format!(
        "/events?{}",
        serde_urlencoded::to_string(query).unwrap_or_default()
    )
}

/// Where `events --follow` is: every event with an id above `floor` is
/// read again on each poll (oldest first, page after page), and those of
/// `shown` are skipped. The floor rises to the events older than
/// [`LATE_COMMITS`] before the newest one shown, so an event committed
/// after a newer one is still found, and `shown` stays small.
struct Follower {
    floor: String,
    /// The ids shown above the floor, with their times.
    shown: std::collections::BTreeMap<String, i64>,
}

impl Follower {
    /// After `shown` (oldest first), the events printed at start.
    fn new(shown: &[Value]) -> Self {
        let mut follower = Follower {
            floor: String::new(),
            shown: Default::default(),
        };
        follower.remember(shown);
        // Those older than the first shown were left out on purpose.
        if let Some(oldest) = follower.shown.keys().next() {
            follower.floor = oldest.clone();
        }
        follower
    }

    /// The events not shown yet, in the order of their ids.
    async fn poll(&mut self, api: &Api, query: &[(&str, String)]) -> Result<Vec<Value>> {
        let mut fresh = Vec::new();
        let mut after = self.floor.clone();
        loop {
            let mut paged: Vec<(&str, String)> = query
                .iter()
                .filter(|(name, _)| *name != "limit")
                .cloned()
                .collect();
            paged.push(("limit", LARGEST_EVENT_PAGE.to_string()));
            paged.push(("after", after));
            let page = api.call(Method::GET, &events_path(&paged), None).await?;
            let events = page["events"].as_array().cloned().unwrap_or_default();
            fresh.extend(events.into_iter().filter(|e| {
                e["id"]
                    .as_str()
                    .is_some_and(|id| !self.shown.contains_key(id))
            }));
            match page["next_cursor"].as_str() {
                Some(next) => after = next.to_owned(),
                None => break,
            }
        }
        self.remember(&fresh);
        if let Some(newest) = self.shown.values().max().copied() {
            let settled = self
                .shown
                .iter()
                .filter(|(_, at)| **at < newest - LATE_COMMITS)
                .map(|(id, _)| id)
                .max();
            if let Some(settled) = settled {
                self.floor = settled.clone();
            }
            let floor = &self.floor;
            self.shown.retain(|id, _| id > floor);
        }
        Ok(fresh)
    }

    fn remember(&mut self, events: &[Value]) {
        for event in events {
            if let Some(id) = event["id"].as_str() {
                self.shown
                    .insert(id.to_owned(), event["at"].as_i64().unwrap_or_default());
            }
        }
    }
}

fn print_events(events: &[Value], json: bool, header: bool) {
    if json {
        for event in events {
            println!("{event}");
        }
        return;
    }
    let mut rows = if header {
        vec![cells(&[
            "AT", "REGISTRY", "KIND", "OUTCOME", "CODE", "DETAIL",
        ])]
    } else {
        Vec::new()
    };
    rows.extend(events.iter().map(|e| {
        vec![
            e["at"].to_string(),
            text(&e["registry"]),
            text(&e["kind"]),
            text(&e["outcome"]),
            text(&e["code"]),
            text(&e["detail"]),
        ]
    }));
    print_table(&rows);
}

fn cells(texts: &[&str]) -> Vec<String> {
    texts.iter().map(|t| (*t).to_owned()).collect()
}

/// A JSON value as a cell: strings bare, lists joined, null empty.
fn text(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        Value::Array(items) => items.iter().map(text).collect::<Vec<_>>().join(","),
        other => other.to_string(),
    }
}

fn registry_rows(answer: &Value) -> Vec<Vec<String>> {
    let mut rows = vec![cells(&[
        "NAME",
        "SOURCE",
        "ECOSYSTEM",
        "UPLOAD URL",
        "PUBLISHERS",
    ])];
    for r in answer["registries"].as_array().into_iter().flatten() {
        rows.push(vec![
            text(&r["name"]),
            text(&r["source"]),
            text(&r["ecosystem"]),
            text(&r["upload_url"]),
            r["publishers"].as_array().map_or(0, Vec::len).to_string(),
        ]);
    }
    rows
}

fn registry_and_publisher_rows(registry: &Value) -> Vec<Vec<String>> {
    let mut rows = registry_rows(&serde_json::json!({ "registries": [registry] }));
    rows.push(Vec::new());
    rows.extend(publisher_rows(registry));
    rows
}

fn publisher_rows(answer: &Value) -> Vec<Vec<String>> {
    let mut rows = vec![cells(&["ID", "SOURCE", "PROVIDER", "ISSUER", "PACKAGES"])];
    let list = match answer.get("publishers") {
        Some(list) => list.as_array().cloned().unwrap_or_default(),
        None => vec![answer.clone()],
    };
    for p in &list {
        rows.push(vec![
            text(&p["id"]),
            text(&p["source"]),
            text(&p["provider"]),
            text(&p["issuer"]),
            text(&p["packages"]),
        ]);
    }
    rows
}

fn credential_rows(answer: &Value) -> Vec<Vec<String>> {
    let mut rows = vec![cells(&[
        "ID",
        "PUBLISHER",
        "PACKAGES",
        "SINGLE USE",
        "CREATED",
        "EXPIRES",
        "USED",
    ])];
    for c in answer["credentials"].as_array().into_iter().flatten() {
        rows.push(vec![
            text(&c["id"]),
            text(&c["publisher"]["identity"]),
            text(&c["packages"]),
            text(&c["single_use"]),
            text(&c["created"]),
            text(&c["expires"]),
            text(&c["used"]),
        ]);
    }
    rows
}

fn done_rows(answer: &Value) -> Vec<Vec<String>> {
    vec![vec![match answer.get("revoked") {
        Some(count) => format!("revoked: {count}"),
        None => "done".to_owned(),
    }]]
}

/// Rows as columns padded to their widest cell.
fn print_table(rows: &[Vec<String>]) {
    let columns = rows.iter().map(Vec::len).max().unwrap_or(0);
    let widths: Vec<usize> = (0..columns)
        .map(|i| {
            rows.iter()
                .filter_map(|r| r.get(i))
                .map(|c| c.chars().count())
                .max()
                .unwrap_or(0)
        })
        .collect();
    for row in rows {
        let line: Vec<String> = row
            .iter()
            .zip(&widths)
            .map(|(cell, width)| format!("{cell:<width$}"))
            .collect();
        println!("{}", line.join("  ").trim_end());
    }
}
