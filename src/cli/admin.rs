//! `trustpub admin …`: the admin API's client. Human tables by default,
//! the API's JSON with `--json`; the token comes from
//! `TRUSTPUB_ADMIN_TOKEN`, never from the command line.

use std::time::Duration;

use clap::{Args, Subcommand};
use reqwest::Method;
use serde_json::Value;

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
    /// An admin token (its SHA-256 is in `[[admin.tokens]]`).
    #[arg(long, env = "TRUSTPUB_ADMIN_TOKEN", hide_env_values = true)]
    token: String,
    /// Print the API's JSON instead of tables.
    #[arg(long, global = true)]
    json: bool,
    #[command(subcommand)]
    command: AdminCommand,
}

#[derive(Debug, Subcommand)]
enum AdminCommand {
    /// List, show, create (from a JSON file) or delete registries.
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

impl AdminArgs {
    pub async fn run(self) -> Result<()> {
        let api = Api {
            client: reqwest::Client::new(),
            base: format!("{}/_/trustpub/admin/v1", self.url.trim_end_matches('/')),
            token: self.token,
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
    for (name, value) in [
        ("registry", args.registry),
        ("kind", args.kind),
        ("outcome", args.outcome),
        ("code", args.code),
        ("publisher", args.publisher),
    ] {
        if let Some(value) = value {
            query.push((name, value));
        }
    }
    let path = |query: &[(&str, String)]| {
        format!(
            "/events?{}",
            serde_urlencoded::to_string(query).unwrap_or_default()
        )
    };
    let page = api.call(Method::GET, &path(&query), None).await?;
    let mut shown: Vec<Value> = page["events"].as_array().cloned().unwrap_or_default();
    shown.reverse();
    print_events(&shown, json, true);
    if !args.follow {
        return Ok(());
    }
    let mut newest = shown
        .last()
        .and_then(|e| e["id"].as_str())
        .map(str::to_owned);
    loop {
        tokio::time::sleep(FOLLOW_INTERVAL).await;
        let page = api.call(Method::GET, &path(&query), None).await?;
        let mut fresh: Vec<Value> = page["events"]
            .as_array()
            .cloned()
            .unwrap_or_default()
            .into_iter()
            .filter(|e| {
                newest
                    .as_deref()
                    .is_none_or(|n| e["id"].as_str().is_some_and(|id| id > n))
            })
            .collect();
        fresh.reverse();
        print_events(&fresh, json, false);
        if let Some(last) = fresh.last().and_then(|e| e["id"].as_str()) {
            newest = Some(last.to_owned());
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
    ])];
    for c in answer["credentials"].as_array().into_iter().flatten() {
        rows.push(vec![
            text(&c["id"]),
            text(&c["publisher"]["identity"]),
            text(&c["packages"]),
            text(&c["single_use"]),
            text(&c["created"]),
            text(&c["expires"]),
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
