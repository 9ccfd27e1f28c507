//! The admin API: `/_/trustpub/admin/v1/…`, on its own listener or on the
//! main one, for bearers of an admin token.

use std::sync::Arc;

use reqwest::{Method, Response};
use serde_json::{Value, json};
use sha2::Digest;
use trustpub::store::now;
use trustpub::testing::{ACME_AUDIENCE, TestClaims, TestIssuer, acme_registry};

use crate::helpers::{TestApp, json_ok, problem, settings, spawn_app, spawn_app_on};

pub(crate) const OPS: &str = "ops-token-0123456789";
const VIEWER: &str = "viewer-token-0123456789";
const ACME_ONLY: &str = "acme-token-0123456789";

fn sha256(token: &str) -> String {
    hex::encode(sha2::Sha256::digest(token.as_bytes()))
}

/// Three tokens: `ops` (everything), `viewer` (reads everything), `acme`
/// (only the registry acme); `listen` places the API.
fn admin_section(placement: &str) -> String {
    format!(
        r#"
[admin]
{placement}

[[admin.tokens]]
name = "ops"
sha256 = "{}"
registries = ["*"]

[[admin.tokens]]
name = "viewer"
sha256 = "{}"
registries = ["*"]
read_only = true

[[admin.tokens]]
name = "acme"
sha256 = "{}"
registries = ["acme"]
"#,
        sha256(OPS),
        sha256(VIEWER),
        sha256(ACME_ONLY)
    )
}

/// acme (from the file, one publisher) and tools (from the file, trusting
/// the issuer, no publisher), the admin API on its own listener.
fn config(issuer: &str) -> String {
    format!(
        r#"
[database]
registry_cache_ttl = 1
{admin}
{acme}
[[registries]]
name = "tools"
upload_url = "https://pypi.tools.test/legacy/"
audience = "tools"
token_prefix = "tools_"

  [[registries.issuers]]
  url = "{issuer}"
  provider = "github"
"#,
        admin = admin_section("listen = \"127.0.0.1:0\""),
        acme = acme_registry(issuer),
    )
}

async fn prepare() -> (TestIssuer, TestApp) {
    let issuer = TestIssuer::start().await;
    let app = spawn_app(&config(issuer.url())).await;
    (issuer, app)
}

/// A request to the admin API with a token.
async fn call(
    app: &TestApp,
    token: &str,
    method: Method,
    path: &str,
    body: Option<Value>,
) -> Response {
    let base = app.admin_address.as_deref().unwrap_or(&app.address);
    let mut request = app
        .client
        .request(method, format!("{base}/_/trustpub/admin/v1{path}"))
        .bearer_auth(token);
    if let Some(body) = body {
        request = request.json(&body);
    }
    request.send().await.unwrap()
}

async fn expect(response: Response, status: u16) -> Value {
    let got = response.status().as_u16();
    let text = response.text().await.unwrap();
    assert_eq!(got, status, "body: {text}");
    serde_json::from_str(&text).unwrap_or(Value::Null)
}

fn widget_publisher(issuer: &str) -> Value {
    json!({
        "provider": "github",
        "issuer": issuer,
        "repository": "octo-org/widget",
        "repository_owner_id": "9919",
        "workflow": "release.yml",
        "packages": ["widget"],
    })
}

fn new_registry(issuer: &str) -> Value {
    json!({
        "name": "made",
        "upload_url": "https://pypi.made.test/legacy/",
        "audience": "made",
        "token_prefix": "made_",
        "issuers": [{ "url": issuer, "provider": "github" }],
        "publishers": [widget_publisher(issuer)],
    })
}

/// Creates [`new_registry`] through the API; what it answers.
async fn create_made(app: &TestApp, issuer: &TestIssuer) -> Value {
    let body = Some(new_registry(issuer.url()));
    expect(call(app, OPS, Method::POST, "/registries", body).await, 201).await
}

async fn mint(app: &TestApp, issuer: &TestIssuer, registry: &str, audience: &str) -> Response {
    let token = issuer.sign(&TestClaims::github(issuer.url(), audience, now()).build());
    app.request(Method::POST, &format!("/_/trustpub/{registry}/mint-token"))
        .json(&json!({ "token": token }))
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn the_admin_api_answers_only_on_its_own_listener() {
    let (_issuer, app) = prepare().await;
    let public = app
        .get("/_/trustpub/admin/v1/registries")
        .bearer_auth(OPS)
        .send()
        .await
        .unwrap();
    problem(public, 404, "not-found").await;
    let admin = call(&app, OPS, Method::GET, "/registries", None).await;
    let listed = json_ok(admin).await;
    let names: Vec<&str> = listed["registries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["acme", "tools"]);
    // The public endpoints are not on the admin listener.
    let base = app.admin_address.clone().unwrap();
    let audience = app
        .client
        .get(format!("{base}/_/trustpub/acme/audience"))
        .send()
        .await
        .unwrap();
    problem(audience, 404, "not-found").await;
}

/// trustpub serving acme (trusting `issuer`) with the admin API placed by
/// `placement` (a line of `[admin]`).
pub(crate) async fn spawn_with_admin(placement: &str, issuer: &TestIssuer) -> TestApp {
    spawn_app(&format!(
        "{}{}",
        admin_section(placement),
        acme_registry(issuer.url())
    ))
    .await
}

#[tokio::test]
async fn on_the_main_listener_when_enabled_and_nowhere_when_off() {
    let issuer = TestIssuer::start().await;
    let app = spawn_with_admin("enabled = true", &issuer).await;
    assert!(app.admin_address.is_none());
    json_ok(call(&app, OPS, Method::GET, "/registries/acme", None).await).await;

    let off = spawn_app(&acme_registry(issuer.url())).await;
    problem(
        call(&off, OPS, Method::GET, "/registries", None).await,
        404,
        "not-found",
    )
    .await;
}

#[tokio::test]
async fn tokens_are_checked_and_scoped() {
    let (issuer, app) = prepare().await;
    let base = app.admin_address.clone().unwrap();
    let anonymous = app
        .client
        .get(format!("{base}/_/trustpub/admin/v1/registries"))
        .send()
        .await
        .unwrap();
    assert_eq!(
        anonymous.headers()["www-authenticate"],
        "Bearer realm=\"trustpub\""
    );
    problem(anonymous, 401, "admin-unauthorized").await;
    problem(
        call(&app, "wrong", Method::GET, "/registries", None).await,
        401,
        "admin-unauthorized",
    )
    .await;

    // Read-only: reads, never writes.
    json_ok(call(&app, VIEWER, Method::GET, "/registries/tools", None).await).await;
    let write = call(
        &app,
        VIEWER,
        Method::POST,
        "/registries/tools/publishers",
        Some(widget_publisher(issuer.url())),
    )
    .await;
    problem(write, 403, "admin-forbidden").await;

    // Scoped to acme: the others are neither listed nor readable.
    let listed = json_ok(call(&app, ACME_ONLY, Method::GET, "/registries", None).await).await;
    assert_eq!(listed["registries"].as_array().unwrap().len(), 1);
    problem(
        call(&app, ACME_ONLY, Method::GET, "/registries/tools", None).await,
        403,
        "admin-forbidden",
    )
    .await;
    let events = call(&app, ACME_ONLY, Method::GET, "/events?registry=tools", None).await;
    problem(events, 403, "admin-forbidden").await;
}

#[tokio::test]
async fn registries_of_the_file_are_read_only() {
    let (issuer, app) = prepare().await;
    let acme = json_ok(call(&app, OPS, Method::GET, "/registries/acme", None).await).await;
    assert_eq!(acme["source"], "config");
    assert_eq!(acme["introspection"], false);
    assert_eq!(acme["publishers"][0]["source"], "config");
    let id = acme["publishers"][0]["id"].as_str().unwrap().to_owned();
    assert_eq!(id.len(), 64);

    let mut replacement = new_registry(issuer.url());
    replacement["name"] = json!("acme");
    replacement.as_object_mut().unwrap().remove("publishers");
    let put = call(
        &app,
        OPS,
        Method::PUT,
        "/registries/acme",
        Some(replacement),
    )
    .await;
    problem(put, 409, "managed-by-config").await;
    problem(
        call(&app, OPS, Method::DELETE, "/registries/acme", None).await,
        409,
        "managed-by-config",
    )
    .await;
    let remove = call(
        &app,
        OPS,
        Method::DELETE,
        &format!("/registries/acme/publishers/{id}"),
        None,
    )
    .await;
    problem(remove, 409, "managed-by-config").await;
    problem(
        call(&app, OPS, Method::GET, "/registries/nope", None).await,
        404,
        "unknown-registry",
    )
    .await;
}

#[tokio::test]
async fn an_api_registry_is_created_updated_kept_across_restarts_and_deleted() {
    let (issuer, app) = prepare().await;
    let created = create_made(&app, &issuer).await;
    assert_eq!(created["source"], "api");
    assert_eq!(created["publishers"][0]["source"], "api");
    assert_eq!(mint(&app, &issuer, "made", "made").await.status(), 200);

    // A restart with the same file (a config sync) keeps it.
    let again = spawn_app_on(app.db.clone(), &config(issuer.url())).await;
    let kept = json_ok(call(&again, OPS, Method::GET, "/registries/made", None).await).await;
    assert_eq!(kept["publishers"].as_array().unwrap().len(), 1);

    let mut update = new_registry(issuer.url());
    update.as_object_mut().unwrap().remove("publishers");
    update["token_lifetime"] = json!(1800);
    let updated =
        json_ok(call(&again, OPS, Method::PUT, "/registries/made", Some(update)).await).await;
    assert_eq!(updated["token_lifetime"], 1800);
    assert_eq!(
        updated["publishers"].as_array().unwrap().len(),
        1,
        "publishers stay"
    );

    // The credential minted above is live: deleting needs ?revoke=true.
    let busy = call(&again, OPS, Method::DELETE, "/registries/made", None).await;
    problem(busy, 409, "live-credentials").await;
    let deleted = call(
        &again,
        OPS,
        Method::DELETE,
        "/registries/made?revoke=true",
        None,
    )
    .await;
    assert_eq!(deleted.status(), 204);
    problem(
        call(&again, OPS, Method::GET, "/registries/made", None).await,
        404,
        "unknown-registry",
    )
    .await;

    let kinds: Vec<String> = again
        .store
        .events("made")
        .await
        .unwrap()
        .into_iter()
        .filter(|e| e.kind == "admin")
        .map(|e| e.outcome)
        .collect();
    assert_eq!(kinds, ["created", "updated", "deleted"]);
}

#[tokio::test]
async fn bad_input_is_refused_and_nothing_is_written() {
    let (issuer, app) = prepare().await;
    let mut unknown = new_registry(issuer.url());
    unknown["colour"] = json!("blue");
    unknown["issuers"][0]["shade"] = json!(1);
    let document = problem(
        call(&app, OPS, Method::POST, "/registries", Some(unknown)).await,
        400,
        "invalid-payload",
    )
    .await;
    let detail = document["detail"].as_str().unwrap();
    assert!(
        detail.contains("\"colour\"") && detail.contains("\"shade\""),
        "{detail}"
    );

    // What check-config says of the same registry in the file.
    let mut clash = new_registry(issuer.url());
    clash["audience"] = json!(ACME_AUDIENCE);
    let document = problem(
        call(&app, OPS, Method::POST, "/registries", Some(clash)).await,
        422,
        "invalid-configuration",
    )
    .await;
    assert_eq!(
        document["detail"],
        "invalid configuration: registries.made.audience: the audience \"acme-pypi\" is already used by the registry \"acme\""
    );

    let mut no_packages = widget_publisher(issuer.url());
    no_packages["packages"] = json!([]);
    let refused = call(
        &app,
        OPS,
        Method::POST,
        "/registries/tools/publishers",
        Some(no_packages.clone()),
    )
    .await;
    let document = problem(refused, 422, "invalid-configuration").await;
    let in_file = format!(
        "{}\n  [[registries.publishers]]\n  provider = \"github\"\n  issuer = \"{}\"\n  repository = \"octo-org/widget\"\n  repository_owner_id = \"9919\"\n  workflow = \"release.yml\"\n  packages = []\n",
        config(issuer.url()),
        issuer.url()
    );
    let check_config = settings(&in_file, &app.db).unwrap_err().to_string();
    let reason = check_config
        .split_once(": ")
        .unwrap()
        .1
        .split_once(": ")
        .unwrap()
        .1;
    assert_eq!(
        document["detail"],
        format!("invalid configuration: registries.tools.publishers.0.packages: {reason}")
    );

    let registries = json_ok(call(&app, OPS, Method::GET, "/registries", None).await).await;
    assert_eq!(registries["registries"].as_array().unwrap().len(), 2);
    assert!(app.store.events("tools").await.unwrap().is_empty());
}

#[tokio::test]
async fn publishers_added_through_the_api_mint_and_survive_config_syncs() {
    let (issuer, app) = prepare().await;
    problem(
        mint(&app, &issuer, "tools", "tools").await,
        403,
        "invalid-publisher",
    )
    .await;
    let added = expect(
        call(
            &app,
            OPS,
            Method::POST,
            "/registries/tools/publishers",
            Some(widget_publisher(issuer.url())),
        )
        .await,
        201,
    )
    .await;
    let id = added["id"].as_str().unwrap().to_owned();
    assert_eq!(added["source"], "api");
    assert_eq!(mint(&app, &issuer, "tools", "tools").await.status(), 200);

    let again = spawn_app_on(app.db.clone(), &config(issuer.url())).await;
    let listed = json_ok(
        call(
            &again,
            OPS,
            Method::GET,
            "/registries/tools/publishers",
            None,
        )
        .await,
    )
    .await;
    assert_eq!(listed["publishers"][0]["id"], id.as_str());

    let credentials = json_ok(
        call(
            &again,
            OPS,
            Method::GET,
            "/registries/tools/credentials",
            None,
        )
        .await,
    )
    .await;
    let credential = &credentials["credentials"][0];
    assert_eq!(credential["publishers"], json!([id]));
    assert_eq!(credential["packages"], json!(["widget"]));
    assert!(credential.get("token").is_none());

    let revoked = json_ok(
        call(
            &again,
            OPS,
            Method::DELETE,
            &format!("/registries/tools/publishers/{id}/credentials"),
            None,
        )
        .await,
    )
    .await;
    assert_eq!(revoked["revoked"], 1);
    let none = json_ok(
        call(
            &again,
            OPS,
            Method::GET,
            "/registries/tools/credentials",
            None,
        )
        .await,
    )
    .await;
    assert_eq!(none["credentials"], json!([]));

    let removed = call(
        &again,
        OPS,
        Method::DELETE,
        &format!("/registries/tools/publishers/{id}"),
        None,
    )
    .await;
    assert_eq!(removed.status(), 204);
    let gone = call(
        &again,
        OPS,
        Method::DELETE,
        &format!("/registries/tools/publishers/{id}"),
        None,
    )
    .await;
    problem(gone, 404, "unknown-publisher").await;

    let events = json_ok(
        call(
            &again,
            OPS,
            Method::GET,
            "/events?registry=tools&kind=admin",
            None,
        )
        .await,
    )
    .await;
    let details: Vec<&str> = events["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["detail"].as_str().unwrap())
        .collect();
    assert_eq!(details.len(), 3, "{details:?}");
    assert!(
        details
            .iter()
            .all(|d| d.ends_with("by the admin token \"ops\"")),
        "{details:?}"
    );
}

#[tokio::test]
async fn a_credential_is_revoked_by_its_id() {
    let (issuer, app) = prepare().await;
    assert_eq!(
        mint(&app, &issuer, "acme", ACME_AUDIENCE).await.status(),
        200
    );
    let listed = json_ok(
        call(
            &app,
            ACME_ONLY,
            Method::GET,
            "/registries/acme/credentials",
            None,
        )
        .await,
    )
    .await;
    let id = listed["credentials"][0]["id"].as_str().unwrap().to_owned();
    let revoked = json_ok(
        call(
            &app,
            ACME_ONLY,
            Method::DELETE,
            &format!("/registries/acme/credentials/{id}"),
            None,
        )
        .await,
    )
    .await;
    assert_eq!(revoked["revoked"], 1);
    let again = call(
        &app,
        ACME_ONLY,
        Method::DELETE,
        &format!("/registries/acme/credentials/{id}"),
        None,
    )
    .await;
    problem(again, 404, "unknown-credential").await;
}

/// NUL, which PostgreSQL's text cannot hold, in a filter or an id is
/// refused or names nothing, without a query (schemathesis found the
/// filter answered 500 on PostgreSQL).
#[tokio::test]
async fn nul_bytes_in_filters_and_ids_never_reach_the_store() {
    let (_issuer, app) = prepare().await;
    for filter in ["code", "outcome", "registry", "publisher", "cursor"] {
        let events = call(
            &app,
            OPS,
            Method::GET,
            &format!("/events?{filter}=a%00b"),
            None,
        )
        .await;
        problem(events, 400, "invalid-query").await;
    }
    let credential = call(
        &app,
        OPS,
        Method::DELETE,
        "/registries/acme/credentials/ab%00cd",
        None,
    )
    .await;
    problem(credential, 404, "unknown-credential").await;
    for path in [
        "/registries/acme/publishers/ab%00cd",
        "/registries/acme/publishers/ab%00cd/credentials",
    ] {
        let publisher = call(&app, OPS, Method::DELETE, path, None).await;
        problem(publisher, 404, "unknown-publisher").await;
    }
}

#[tokio::test]
async fn events_are_filtered_and_paged_newest_first() {
    let (issuer, app) = prepare().await;
    for _ in 0..3 {
        assert_eq!(
            mint(&app, &issuer, "acme", ACME_AUDIENCE).await.status(),
            200
        );
    }
    let first = json_ok(
        call(
            &app,
            OPS,
            Method::GET,
            "/events?registry=acme&kind=mint&limit=2",
            None,
        )
        .await,
    )
    .await;
    assert_eq!(first["events"].as_array().unwrap().len(), 2);
    let cursor = first["next_cursor"].as_str().unwrap().to_owned();
    // An event recorded meanwhile is newer: it does not shift the next page.
    assert_eq!(
        mint(&app, &issuer, "acme", ACME_AUDIENCE).await.status(),
        200
    );
    let second = json_ok(
        call(
            &app,
            OPS,
            Method::GET,
            &format!("/events?registry=acme&kind=mint&limit=2&cursor={cursor}"),
            None,
        )
        .await,
    )
    .await;
    assert_eq!(second["events"].as_array().unwrap().len(), 1);
    assert_eq!(second["next_cursor"], Value::Null);
    let ids: Vec<&str> = first["events"]
        .as_array()
        .unwrap()
        .iter()
        .chain(second["events"].as_array().unwrap())
        .map(|e| e["id"].as_str().unwrap())
        .collect();
    let mut sorted = ids.clone();
    sorted.sort_unstable_by(|a, b| b.cmp(a));
    sorted.dedup();
    assert_eq!(ids, sorted, "newest first, each once");

    let all = json_ok(
        call(
            &app,
            OPS,
            Method::GET,
            "/events?outcome=minted&code=ok&since=0",
            None,
        )
        .await,
    )
    .await;
    assert_eq!(all["events"].as_array().unwrap().len(), 4);
    let future = json_ok(
        call(
            &app,
            OPS,
            Method::GET,
            &format!("/events?since={}", now() + 60),
            None,
        )
        .await,
    )
    .await;
    assert_eq!(future["events"], json!([]));
    let bad = call(&app, OPS, Method::GET, "/events?colour=blue", None).await;
    problem(bad, 400, "invalid-query").await;
    // The kinds are an enumeration: another one is refused, not an empty
    // page (schemathesis's negative check of the spec's enum).
    let unknown_kind = call(&app, OPS, Method::GET, "/events?kind=minted", None).await;
    problem(unknown_kind, 400, "invalid-query").await;
}

#[tokio::test]
async fn a_second_instance_sees_a_publisher_added_on_the_first() {
    let issuer = TestIssuer::start().await;
    let first = spawn_app(&config(issuer.url())).await;
    let second = spawn_app_on(Arc::clone(&first.db), &config(issuer.url())).await;
    problem(
        mint(&second, &issuer, "tools", "tools").await,
        403,
        "invalid-publisher",
    )
    .await;
    expect(
        call(
            &first,
            OPS,
            Method::POST,
            "/registries/tools/publishers",
            Some(widget_publisher(issuer.url())),
        )
        .await,
        201,
    )
    .await;
    // Within database.registry_cache_ttl (1 s here).
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    loop {
        let status = mint(&second, &issuer, "tools", "tools").await.status();
        if status == 200 {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "still {status}");
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
}

/// `trustpub admin …` as an operator runs it, against the admin listener.
async fn cli(app: &TestApp, args: &[&str]) -> std::process::Output {
    run(cli_command(app, Some(OPS), args)).await
}

/// `trustpub admin …` with `token` in `TRUSTPUB_ADMIN_TOKEN`, if any.
fn cli_command(app: &TestApp, token: Option<&str>, args: &[&str]) -> std::process::Command {
    let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_trustpub"));
    command
        .arg("admin")
        .arg("--url")
        .arg(app.admin_address.as_deref().unwrap())
        .args(args)
        .env_remove("TRUSTPUB_ADMIN_TOKEN");
    if let Some(token) = token {
        command.env("TRUSTPUB_ADMIN_TOKEN", token);
    }
    command
}

/// Runs `command` to its end, off the runtime that serves it.
async fn run(mut command: std::process::Command) -> std::process::Output {
    tokio::task::spawn_blocking(move || command.output().unwrap())
        .await
        .unwrap()
}

#[tokio::test]
async fn the_cli_adds_a_publisher_and_shows_the_mint() {
    let (issuer, app) = prepare().await;
    let publisher = widget_publisher(issuer.url()).to_string();
    let added = cli(&app, &["publishers", "add", "tools", &publisher]).await;
    assert!(added.status.success(), "{added:?}");
    let table = String::from_utf8(added.stdout).unwrap();
    assert!(table.starts_with("ID "), "{table}");
    assert!(
        table.contains(" api ") && table.contains("widget"),
        "{table}"
    );

    assert_eq!(mint(&app, &issuer, "tools", "tools").await.status(), 200);
    let events = cli(&app, &["events", "--registry", "tools"]).await;
    let table = String::from_utf8(events.stdout).unwrap();
    let lines: Vec<&str> = table.lines().collect();
    assert_eq!(lines.len(), 3, "{table}");
    assert!(
        lines[1].contains("admin") && lines[1].contains("created"),
        "{table}"
    );
    assert!(
        lines[2].contains("mint") && lines[2].contains("minted"),
        "{table}"
    );

    let json = cli(&app, &["--json", "credentials", "list", "tools"]).await;
    let answer: Value = serde_json::from_slice(&json.stdout).unwrap();
    assert_eq!(answer["credentials"].as_array().unwrap().len(), 1);

    let refused = cli(&app, &["registries", "delete", "acme"]).await;
    assert!(!refused.status.success());
    let stderr = String::from_utf8(refused.stderr).unwrap();
    assert!(
        stderr.contains("409 Conflict managed-by-config"),
        "{stderr}"
    );
}

/// Starts trustpub with `config` on `db`, as a restart with a changed file
/// does; the error it stops with, if it does.
async fn start_error(db: &crate::helpers::TestDatabase, config: &str) -> Option<String> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let settings = settings(config, db).expect("the file alone is valid");
    trustpub::startup::Application::build_with_listener(&settings, listener)
        .await
        .err()
        .map(|error| error.to_string())
}

#[tokio::test]
async fn a_file_registry_that_clashes_with_an_api_registry_stops_the_start() {
    let (issuer, app) = prepare().await;
    create_made(&app, &issuer).await;
    let file_registry = |name: &str, audience: &str, upload_url: &str| {
        format!(
            "{}\n[[registries]]\nname = \"{name}\"\nupload_url = \"{upload_url}\"\n\
             audience = \"{audience}\"\ntoken_prefix = \"{name}_\"\n",
            config(issuer.url())
        )
    };

    let clashes = [
        // The file's "made" would have turned the API's into a file registry.
        (
            ("made", "other", "https://pypi.other.test/legacy/"),
            [
                "registries.2.name",
                "admin API created a registry named \"made\"",
            ],
        ),
        // Its audience, or its upload URL, would be shared with the API's.
        (
            ("copy", "made", "https://pypi.other.test/legacy/"),
            [
                "registries.2.audience",
                "already used by the registry \"made\"",
            ],
        ),
        (
            ("copy", "copy", "https://pypi.made.test/legacy/"),
            ["registries.2.upload_url", "the registry \"made\""],
        ),
    ];
    for ((name, audience, url), said) in clashes {
        let file = file_registry(name, audience, url);
        let error = start_error(&app.db, &file).await.expect("refused");
        assert!(said.iter().all(|s| error.contains(s)), "{error}");
    }

    // Nothing was written: the API's registry is still the API's, with its
    // publisher, and the file's registries were not added.
    let made = app.store.managed_registry("made").await.unwrap().unwrap();
    assert_eq!(made.source, trustpub::store::Source::Api);
    assert_eq!(made.publishers.len(), 1);
    assert_eq!(made.registry.audience.as_str(), "made");
    assert!(app.store.managed_registry("copy").await.unwrap().is_none());
    // A file without the clash starts.
    let fine = file_registry("copy", "copy", "https://pypi.copy.test/legacy/");
    assert_eq!(start_error(&app.db, &fine).await, None);
}

#[tokio::test]
async fn of_two_creates_at_once_that_clash_exactly_one_passes() {
    let issuer = TestIssuer::start().await;
    let first = spawn_app(&config(issuer.url())).await;
    // On PostgreSQL a second instance, as in a deployment; SQLite has one
    // writer per process, and its deployments one process.
    let second = if first.db.is_sqlite() {
        None
    } else {
        Some(spawn_app_on(Arc::clone(&first.db), &config(issuer.url())).await)
    };
    let other = second.as_ref().unwrap_or(&first);
    for round in 0..8 {
        let body = |side: &str| {
            let mut registry = new_registry(issuer.url());
            registry["name"] = json!(format!("race{round}{side}"));
            registry["upload_url"] = json!(format!("https://pypi.{side}{round}.test/legacy/"));
            registry["token_prefix"] = json!(format!("r{round}{side}_"));
            // The same audience: only one of the two may have it.
            registry["audience"] = json!(format!("race{round}"));
            registry
        };
        let (a, b) = tokio::join!(
            call(&first, OPS, Method::POST, "/registries", Some(body("a"))),
            call(other, OPS, Method::POST, "/registries", Some(body("b"))),
        );
        let mut statuses = [a.status().as_u16(), b.status().as_u16()];
        statuses.sort_unstable();
        assert_eq!(statuses, [201, 422], "round {round}");
    }
}

#[tokio::test]
async fn a_registry_is_shown_without_its_secrets() {
    let (issuer, app) = prepare().await;
    let digest = sha256("introspection-secret-of-made");
    let secrets = tempfile::tempdir().unwrap();
    let password = secrets.path().join("password-of-made");
    std::fs::write(&password, "upload-password-of-made").unwrap();
    let read_token = secrets.path().join("read-token-of-made");
    std::fs::write(&read_token, "read-token-of-made").unwrap();
    let mut registry = new_registry(issuer.url());
    registry["introspect_secret_sha256"] = json!(digest);
    registry["gateway"] = json!({
        "upstream": "http://127.0.0.1:9/upload/",
        "credential": {
            "scheme": "basic",
            "username": "uploader-of-made",
            "secret_file": password,
        },
        "read_credential": { "scheme": "bearer", "secret_file": read_token },
    });
    let created = call(&app, OPS, Method::POST, "/registries", Some(registry)).await;
    let created = expect(created, 201).await;
    let got = json_ok(call(&app, OPS, Method::GET, "/registries/made", None).await).await;
    for shown in [&created, &got] {
        assert_eq!(shown["introspection"], true);
        assert_eq!(shown["gateway"]["credential"], json!({ "scheme": "basic" }));
        assert_eq!(
            shown["gateway"]["read_credential"],
            json!({ "scheme": "bearer" })
        );
        let text = shown.to_string();
        for secret in [
            digest.as_str(),
            "uploader-of-made",
            "password-of-made",
            "read-token-of-made",
        ] {
            assert!(!text.contains(secret), "{secret} in {text}");
        }
    }
}

#[tokio::test]
async fn the_cli_creates_shows_updates_and_removes() {
    let (issuer, app) = prepare().await;
    let dir = tempfile::tempdir().unwrap();
    let file = |name: &str, body: &Value| {
        let path = dir.path().join(name);
        std::fs::write(&path, body.to_string()).unwrap();
        path.display().to_string()
    };
    let text = |output: std::process::Output| {
        assert!(output.status.success(), "{output:?}");
        String::from_utf8(output.stdout).unwrap()
    };

    let created = file("made.json", &new_registry(issuer.url()));
    // A row of a table: its cells.
    let row = |table: &str, first: &str| -> Vec<String> {
        let line = table.lines().find(|l| l.starts_with(first));
        let line = line.unwrap_or_else(|| panic!("no row {first}: {table}"));
        line.split_whitespace().map(str::to_owned).collect()
    };
    let table = text(cli(&app, &["registries", "create", &created]).await);
    assert_eq!(row(&table, "NAME")[..2], ["NAME", "SOURCE"]);
    assert_eq!(row(&table, "made")[..3], ["made", "api", "python"]);
    let shown = text(cli(&app, &["registries", "get", "made"]).await);
    assert_eq!(row(&shown, "made")[..2], ["made", "api"]);
    assert!(shown.contains("widget"), "{shown}");

    let mut update = new_registry(issuer.url());
    update.as_object_mut().unwrap().remove("publishers");
    update["token_lifetime"] = json!(1800);
    let updated = file("update.json", &update);
    let answer = text(cli(&app, &["--json", "registries", "update", "made", &updated]).await);
    let answer: Value = serde_json::from_str(&answer).unwrap();
    assert_eq!(answer["token_lifetime"], 1800);
    let id = answer["publishers"][0]["id"].as_str().unwrap().to_owned();

    assert_eq!(mint(&app, &issuer, "made", "made").await.status(), 200);
    let credentials = text(cli(&app, &["credentials", "list", "made"]).await);
    assert!(row(&credentials, "ID").ends_with(&["EXPIRES".into(), "USED".into()]));

    let removed = text(cli(&app, &["publishers", "remove", "made", &id]).await);
    assert_eq!(removed.trim(), "done");
    let left = text(cli(&app, &["publishers", "list", "made"]).await);
    assert_eq!(left.lines().count(), 1, "only the header: {left}");
}

#[tokio::test]
async fn the_cli_takes_its_token_only_from_the_environment() {
    let (_issuer, app) = prepare().await;
    let admin = async |token, args| run(cli_command(&app, token, args)).await;
    // A token in argv is visible to every user of the machine (ps).
    let flag = admin(None, &["--token", OPS, "registries", "list"]).await;
    assert!(!flag.status.success());
    let stderr = String::from_utf8(flag.stderr).unwrap();
    assert!(stderr.contains("--token"), "{stderr}");
    let missing = admin(None, &["registries", "list"]).await;
    assert!(!missing.status.success());
    let stderr = String::from_utf8(missing.stderr).unwrap();
    assert!(stderr.contains("TRUSTPUB_ADMIN_TOKEN"), "{stderr}");
    let given = admin(Some(OPS), &["registries", "list"]).await;
    assert!(given.status.success(), "{given:?}");
}

/// An event of registry `tools` with `detail`, recorded as trustpub does.
async fn record(app: &TestApp, detail: String) {
    use trustpub::store::{Caller, EventKind, NewEvent, Outcome};
    let event = NewEvent {
        at: now(),
        registry: "tools",
        caller: Caller::Identified,
        kind: EventKind::Revoke,
        outcome: Outcome::Revoked,
        code: "ok",
        publishers: None,
        detail,
        claims: None,
    };
    app.store.record_event(event).await.unwrap();
}

#[tokio::test]
async fn the_cli_follows_every_event_once_even_a_burst_or_a_late_commit() {
    use sqlx::Connection;
    use std::io::BufRead;
    let (_issuer, app) = prepare().await;
    let follow = ["events", "--registry", "tools", "--limit", "2", "--follow"];
    let mut child = cli_command(&app, Some(OPS), &follow)
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let (lines, mut printed) = tokio::sync::mpsc::unbounded_channel();
    let stdout = child.stdout.take().unwrap();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if lines.send(line).is_err() {
                break;
            }
        }
    });
    let mut seen = Vec::new();
    // Reads what it prints until a line contains `wanted`.
    let mut until = async |wanted: &str, seen: &mut Vec<String>| {
        let deadline = std::time::Duration::from_secs(15);
        while !seen.last().is_some_and(|l: &String| l.contains(wanted)) {
            let line = tokio::time::timeout(deadline, printed.recv()).await;
            seen.push(line.expect("printed in time").expect("still running"));
        }
    };
    until("DETAIL", &mut seen).await;

    // More events than `--limit`, and than a page of the API, between two
    // polls.
    let burst = 520;
    for n in 0..burst {
        record(&app, format!("burst {n}")).await;
    }
    until(&format!("burst {}", burst - 1), &mut seen).await;

    // An event committed after the burst with an id among the burst's, as
    // a group commit or another instance may: printed late, not never.
    let fifth = &app.store.events("tools").await.unwrap()[4];
    let mut connection = sqlx::AnyConnection::connect(&app.db.url).await.unwrap();
    sqlx::query(
        "INSERT INTO events (id, at, registry, kind, outcome, code, detail) \
         VALUES ($1, $2, 'tools', 'revoke', 'revoked', 'ok', 'late one')",
    )
    .bind(format!("{}0000000000000000", &fifth.id[..32]))
    .bind(fifth.at)
    .execute(&mut connection)
    .await
    .unwrap();
    until("late one", &mut seen).await;
    // Another poll or two print nothing again.
    record(&app, "after".to_owned()).await;
    until("after", &mut seen).await;
    tokio::time::sleep(std::time::Duration::from_secs(3)).await;
    while let Ok(line) = printed.try_recv() {
        seen.push(line);
    }
    crate::helpers::terminate(&child);
    child.wait().unwrap();

    let details = (0..burst).map(|n| format!("burst {n}"));
    for detail in details.chain(["late one".into(), "after".into()]) {
        let times = seen.iter().filter(|l| l.ends_with(&detail)).count();
        assert_eq!(times, 1, "{detail:?} printed {times} times: {seen:#?}");
    }
}
