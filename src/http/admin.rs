//! The admin API, `/_/trustpub/admin/v1/…`: registries, their publishers
//! and credentials, and the event log, for bearers of an admin token.

use actix_web::http::header::AUTHORIZATION;
use actix_web::{HttpRequest, HttpResponse, web};
use serde::Deserialize;
use serde_json::{Value, json};

use super::{AppState, endpoint, rejections, scheme_value};
use crate::admin::{self, Operator};
use crate::domain::RegistryName;
use crate::problem::{Error, Result};
use crate::store::{
    EventKind, EventQuery, LiveCredential, ManagedPublisher, ManagedRegistry, Revocation,
};

/// Where the admin API lives.
pub const PREFIX: &str = "/_/trustpub/admin";

/// The admin API's routes.
pub fn scope() -> actix_web::Scope {
    web::scope(&format!("{PREFIX}/v1"))
        .service(
            endpoint("/registries", "GET, POST")
                .route(web::get().to(list_registries))
                .route(web::post().to(create_registry)),
        )
        .service(
            endpoint("/registries/{registry}", "GET, PUT, DELETE")
                .route(web::get().to(get_registry))
                .route(web::put().to(update_registry))
                .route(web::delete().to(delete_registry)),
        )
        .service(
            endpoint("/registries/{registry}/publishers", "GET, POST")
                .route(web::get().to(list_publishers))
                .route(web::post().to(add_publisher)),
        )
        .service(
            endpoint("/registries/{registry}/publishers/{id}", "DELETE")
                .route(web::delete().to(remove_publisher)),
        )
        .service(
            endpoint(
                "/registries/{registry}/publishers/{id}/credentials",
                "DELETE",
            )
            .route(web::delete().to(revoke_publisher_credentials)),
        )
        .service(
            endpoint("/registries/{registry}/credentials", "GET")
                .route(web::get().to(list_credentials)),
        )
        .service(
            endpoint("/registries/{registry}/credentials/{id}", "DELETE")
                .route(web::delete().to(revoke_credential)),
        )
        .service(endpoint("/events", "GET").route(web::get().to(list_events)))
        .default_service(web::to(super::not_found))
}

/// Admin paths where the admin API is not served: 404, as for any path
/// without an endpoint (and never taken for a gateway's upload).
pub fn absent() -> actix_web::Scope {
    web::scope(PREFIX).default_service(web::to(super::not_found))
}

/// The caller, by its bearer token.
pub(super) fn operator<'s>(http: &HttpRequest, state: &'s AppState) -> Result<Operator<'s>> {
    state
        .admin
        .authenticate(scheme_value(http, AUTHORIZATION, "bearer"))
}

async fn list_registries(http: HttpRequest, state: web::Data<AppState>) -> Result<HttpResponse> {
    let operator = operator(&http, &state)?;
    let registries = admin::registries(&state.store, operator).await?;
    let views: Vec<Value> = registries.iter().map(registry_view).collect();
    Ok(HttpResponse::Ok().json(json!({ "registries": views })))
}

async fn get_registry(
    name: web::Path<RegistryName>,
    http: HttpRequest,
    state: web::Data<AppState>,
) -> Result<HttpResponse> {
    let operator = operator(&http, &state)?;
    let registry = admin::registry(&state.store, operator, name.as_str()).await?;
    Ok(HttpResponse::Ok().json(registry_view(&registry)))
}

async fn create_registry(
    http: HttpRequest,
    body: web::Json<Value>,
    state: web::Data<AppState>,
) -> Result<HttpResponse> {
    let operator = operator(&http, &state)?;
    let registry = rejections::every_unknown_member(body.into_inner())?;
    let created = admin::create_registry(&state.store, operator, registry).await?;
    Ok(HttpResponse::Created().json(registry_view(&created)))
}

async fn update_registry(
    name: web::Path<RegistryName>,
    http: HttpRequest,
    body: web::Json<Value>,
    state: web::Data<AppState>,
) -> Result<HttpResponse> {
    let operator = operator(&http, &state)?;
    let registry = rejections::every_unknown_member(body.into_inner())?;
    let updated = admin::update_registry(&state.store, operator, name.as_str(), registry).await?;
    Ok(HttpResponse::Ok().json(registry_view(&updated)))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct DeleteQuery {
    #[serde(default)]
    revoke: bool,
}

async fn delete_registry(
    name: web::Path<RegistryName>,
    query: web::Query<DeleteQuery>,
    http: HttpRequest,
    state: web::Data<AppState>,
) -> Result<HttpResponse> {
    let operator = operator(&http, &state)?;
    admin::delete_registry(&state.store, operator, name.as_str(), query.revoke).await?;
    Ok(HttpResponse::NoContent().finish())
}

async fn list_publishers(
    name: web::Path<RegistryName>,
    http: HttpRequest,
    state: web::Data<AppState>,
) -> Result<HttpResponse> {
    let operator = operator(&http, &state)?;
    let registry = admin::registry(&state.store, operator, name.as_str()).await?;
    let views: Vec<Value> = registry.publishers.iter().map(publisher_view).collect();
    Ok(HttpResponse::Ok().json(json!({ "publishers": views })))
}

async fn add_publisher(
    name: web::Path<RegistryName>,
    http: HttpRequest,
    body: web::Json<Value>,
    state: web::Data<AppState>,
) -> Result<HttpResponse> {
    let operator = operator(&http, &state)?;
    let publisher = rejections::every_unknown_member(body.into_inner())?;
    let added = admin::add_publisher(&state.store, operator, name.as_str(), publisher).await?;
    Ok(HttpResponse::Created().json(publisher_view(&added)))
}

async fn remove_publisher(
    path: web::Path<(RegistryName, String)>,
    http: HttpRequest,
    state: web::Data<AppState>,
) -> Result<HttpResponse> {
    let operator = operator(&http, &state)?;
    let (name, id) = path.into_inner();
    admin::remove_publisher(&state.store, operator, name.as_str(), &id).await?;
    Ok(HttpResponse::NoContent().finish())
}

async fn revoke_publisher_credentials(
    path: web::Path<(RegistryName, String)>,
    http: HttpRequest,
    state: web::Data<AppState>,
) -> Result<HttpResponse> {
    let operator = operator(&http, &state)?;
    let (name, id) = path.into_inner();
    let revoked = admin::revoke(
        &state.store,
        operator,
        name.as_str(),
        Revocation::OfPublisher(&id),
    )
    .await?;
    Ok(HttpResponse::Ok().json(json!({ "revoked": revoked })))
}

async fn list_credentials(
    name: web::Path<RegistryName>,
    http: HttpRequest,
    state: web::Data<AppState>,
) -> Result<HttpResponse> {
    let operator = operator(&http, &state)?;
    let credentials = admin::credentials(&state.store, operator, name.as_str()).await?;
    let views: Vec<Value> = credentials.iter().map(credential_view).collect();
    Ok(HttpResponse::Ok().json(json!({ "credentials": views })))
}

async fn revoke_credential(
    path: web::Path<(RegistryName, String)>,
    http: HttpRequest,
    state: web::Data<AppState>,
) -> Result<HttpResponse> {
    let operator = operator(&http, &state)?;
    let (name, id) = path.into_inner();
    let revoked =
        admin::revoke(&state.store, operator, name.as_str(), Revocation::One(&id)).await?;
    Ok(HttpResponse::Ok().json(json!({ "revoked": revoked })))
}

/// The event filters of `GET /events`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct EventsQuery {
    registry: Option<String>,
    kind: Option<String>,
    outcome: Option<String>,
    code: Option<String>,
    publisher: Option<String>,
    since: Option<i64>,
    until: Option<i64>,
    cursor: Option<String>,
    after: Option<String>,
    limit: Option<u32>,
}

/// Events per page unless `limit` says otherwise, and the most it may say.
const DEFAULT_PAGE: u32 = 50;
pub const LARGEST_PAGE: u32 = 500;

async fn list_events(
    query: web::Query<EventsQuery>,
    http: HttpRequest,
    state: web::Data<AppState>,
) -> Result<HttpResponse> {
    let operator = operator(&http, &state)?;
    let query = query.into_inner();
    // NUL is in no stored text, and PostgreSQL's text cannot even hold one.
    let texts = [
        ("registry", &query.registry),
        ("kind", &query.kind),
        ("outcome", &query.outcome),
        ("code", &query.code),
        ("publisher", &query.publisher),
        ("cursor", &query.cursor),
        ("after", &query.after),
    ];
    if let Some((name, _)) = texts
        .iter()
        .find(|(_, value)| value.as_deref().is_some_and(|v| v.contains('\0')))
    {
        return Err(Error::InvalidQuery(format!("{name} holds a NUL character")));
    }
    // A kind no event has is a mistake, not a filter that matches nothing.
    if let Some(kind) = &query.kind
        && kind.parse::<EventKind>().is_err()
    {
        return Err(Error::InvalidQuery(format!(
            "kind must be one of mint, check, revoke, upload, admin, not {kind:?}"
        )));
    }
    if query.cursor.is_some() && query.after.is_some() {
        return Err(Error::InvalidQuery(
            "cursor pages back (newest first), after forward (oldest first): give one".to_owned(),
        ));
    }
    let limit = query.limit.unwrap_or(DEFAULT_PAGE);
    if !(1..=LARGEST_PAGE).contains(&limit) {
        return Err(Error::InvalidQuery(format!(
            "limit must be between 1 and {LARGEST_PAGE}"
        )));
    }
    let page = admin::events(
        &state.store,
        operator,
        EventQuery {
            within: None,
            registry: query.registry,
            kind: query.kind,
            outcome: query.outcome,
            code: query.code,
            publisher: query.publisher,
            since: query.since,
            until: query.until,
            before: query.cursor,
            after: query.after,
            limit,
        },
    )
    .await?;
    let events: Vec<Value> = page
        .events
        .iter()
        .map(|event| {
            let parsed = |text: &Option<String>| {
                text.as_deref()
                    .and_then(|t| serde_json::from_str::<Value>(t).ok())
            };
            json!({
                "id": event.id,
                "at": event.at,
                "registry": event.registry,
                "kind": event.kind,
                "outcome": event.outcome,
                "code": event.code,
                "publishers": parsed(&event.publishers),
                "detail": event.detail,
                "claims": parsed(&event.claims),
            })
        })
        .collect();
    Ok(HttpResponse::Ok().json(json!({ "events": events, "next_cursor": page.next })))
}

/// A registry as the admin API shows it: its settings as the
/// configuration writes them, but whether introspection is on rather than
/// its secret's digest, the gateway's credentials only by their scheme,
/// who manages it, and its publishers with their ids.
fn registry_view(managed: &ManagedRegistry) -> Value {
    let mut view = serde_json::to_value(&managed.registry).unwrap_or_default();
    if let Some(members) = view.as_object_mut() {
        members.remove("introspect_secret_sha256");
        members.insert(
            "introspection".to_owned(),
            json!(managed.registry.introspect_secret_sha256.is_some()),
        );
        if let Some(gateway) = members.get_mut("gateway").and_then(Value::as_object_mut) {
            for credential in ["credential", "read_credential"] {
                if let Some(given) = gateway.get_mut(credential) {
                    *given = json!({ "scheme": given.get("scheme") });
                }
            }
        }
        members.insert("source".to_owned(), json!(managed.source.as_str()));
        members.insert(
            "publishers".to_owned(),
            managed.publishers.iter().map(publisher_view).collect(),
        );
    }
    view
}

/// A publisher with its id and source.
fn publisher_view(managed: &ManagedPublisher) -> Value {
    let mut view = serde_json::to_value(&managed.publisher).unwrap_or_default();
    if let Some(members) = view.as_object_mut() {
        members.insert("id".to_owned(), json!(managed.id));
        members.insert("source".to_owned(), json!(managed.source.as_str()));
    }
    view
}

/// A live credential, never the credential itself.
fn credential_view(credential: &LiveCredential) -> Value {
    let token = &credential.token;
    json!({
        "id": credential.id,
        "publishers": token.publishers,
        "publisher": token.claims,
        "packages": token.packages,
        "single_use": token.single_use,
        "created": credential.created_at,
        "expires": token.expires_at,
        "used": token.used_at,
    })
}
