//! The registry side: `POST /_/trustpub/{registry}/introspect`,
//! `/_/trustpub/auth` (forward-auth), `POST /_/trustpub/{registry}/burn-token`,
//! single-use consumption and purging.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use reqwest::{Method, Response};
use serde_json::{Value, json};
use trustpub::store::now;

use crate::fixtures::{ACME_SECRET, OTHER_SECRET, burn, mint, mint_on, prepare, stored_credential};
use crate::helpers::{TestApp, json_ok, problem, refusals};
use crate::metrics::{sample, scrape};

async fn introspect_on(app: &TestApp, registry: &str, secret: &str, body: Value) -> Response {
    app.request(Method::POST, &format!("/_/trustpub/{registry}/introspect"))
        .bearer_auth(secret)
        .json(&body)
        .send()
        .await
        .unwrap()
}

async fn introspect(app: &TestApp, body: Value) -> Value {
    json_ok(introspect_on(app, "acme", ACME_SECRET, body).await).await
}

/// A forward-auth check for acme (by its registry header) with `credential`
/// as Bearer.
fn forward(app: &TestApp, method: &str, credential: &str) -> reqwest::RequestBuilder {
    app.get("/_/trustpub/auth")
        .header("X-Trustpub-Registry", "acme")
        .header("X-Forwarded-Method", method)
        .bearer_auth(credential)
}

/// A forward-auth check of a write to acme's `widget` 1.0, as nginx sends
/// it: the path names the package through acme's `package_path`.
fn upload_check(app: &TestApp, method: &str, credential: &str) -> reqwest::RequestBuilder {
    forward(app, method, credential).header("X-Original-URI", "/legacy/packages/widget/1.0/")
}

/// The last event of a registry, as (kind, outcome, code).
async fn last_event(app: &TestApp, registry: &str) -> (String, String, String) {
    let events = app.store.events(registry).await.unwrap();
    let last = events.last().expect("an event");
    (last.kind.clone(), last.outcome.clone(), last.code.clone())
}

fn event(kind: &str, outcome: &str, code: &str) -> (String, String, String) {
    (kind.to_owned(), outcome.to_owned(), code.to_owned())
}

#[tokio::test]
async fn introspection_describes_a_live_credential() {
    let (issuer, app) = prepare().await;
    let credential = mint(&app, &issuer, json!({})).await;
    let answer = introspect(&app, json!({ "token": credential })).await;
    assert_eq!(answer["active"], true);
    assert_eq!(answer["registry"], "acme");
    assert_eq!(answer["packages"], json!(["widget", "widget-*"]));
    assert_eq!(answer["single_use"], false);
    assert!(answer["expires"].as_i64().unwrap() > now() + 800);
    assert_eq!(answer["publisher"]["repository"], "octo-org/widget");
    assert_eq!(answer["publisher"]["ref"], "refs/heads/main");
    assert_eq!(answer["publisher"]["provider"], "github");
    assert_eq!(answer["publisher"]["identity"], "github:octo-org/widget");
    assert_eq!(
        last_event(&app, "acme").await,
        event("check", "active", "ok")
    );

    // In scope: a name, a pattern's match, another spelling of a name.
    for package in ["widget", "Widget_Extras", "WIDGET"] {
        let answer = introspect(&app, json!({ "token": credential, "package": package })).await;
        assert_eq!(answer["active"], true, "{package}");
    }
    // Out of scope: only `active: false`, the reason goes to the events.
    // A NUL too, which the event keeps replaced (PostgreSQL's text cannot
    // hold one).
    for package in ["gadget", "widgetx", "widget-*", "", "wid\0get"] {
        let answer = introspect(&app, json!({ "token": credential, "package": package })).await;
        assert_eq!(answer, json!({ "active": false }), "{package}");
        assert_eq!(
            last_event(&app, "acme").await,
            event("check", "inactive", "package-not-allowed")
        );
    }

    // RFC 7662's form encoding.
    let answer = json_ok(
        app.request(Method::POST, "/_/trustpub/acme/introspect")
            .bearer_auth(ACME_SECRET)
            .form(&[("token", credential.as_str()), ("package", "widget")])
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(answer["active"], true);
}

#[tokio::test]
async fn unknown_and_other_registries_credentials_are_inactive() {
    let (issuer, app) = prepare().await;
    let acme = mint(&app, &issuer, json!({})).await;
    let other = mint_on(&app, &issuer, "other", "other-aud", json!({})).await;
    let mut tampered = acme.clone().into_bytes();
    tampered[10] ^= 1;
    let tampered = String::from_utf8(tampered).unwrap();
    let events = app.store.events("acme").await.unwrap().len();
    for (n, credential) in [other.as_str(), tampered.as_str(), "", "acme_nonsense"]
        .into_iter()
        .enumerate()
    {
        let answer = introspect(&app, json!({ "token": credential })).await;
        assert_eq!(answer, json!({ "active": false }), "{credential}");
        // No credential, no identity: counted, not kept as an event.
        assert_eq!(
            refusals(&app, "acme", "check", "unknown-credential").await,
            n as i64 + 1
        );
    }
    assert_eq!(app.store.events("acme").await.unwrap().len(), events);
    // Each registry answers for its own credentials, with its own secret.
    let answer =
        json_ok(introspect_on(&app, "other", OTHER_SECRET, json!({ "token": other })).await).await;
    assert_eq!(answer["active"], true);
    let answer =
        json_ok(introspect_on(&app, "other", OTHER_SECRET, json!({ "token": acme })).await).await;
    assert_eq!(answer["active"], false);
}

#[tokio::test]
async fn introspection_needs_the_registrys_secret() {
    let (issuer, app) = prepare().await;
    let credential = mint(&app, &issuer, json!({})).await;
    let events_before = app.store.events("acme").await.unwrap().len();
    let body = json!({ "token": credential, "consume": true });
    for secret in [
        "",
        "wrong",
        OTHER_SECRET,
        &ACME_SECRET[1..],
        &format!("{ACME_SECRET}x"),
    ] {
        let response = introspect_on(&app, "acme", secret, body.clone()).await;
        assert!(
            response.headers().contains_key("www-authenticate"),
            "{secret:?}: {response:?}"
        );
        problem(response, 401, "introspection-unauthorized").await;
    }
    // No Authorization at all, or another scheme.
    let response = app
        .request(Method::POST, "/_/trustpub/acme/introspect")
        .json(&body)
        .send()
        .await
        .unwrap();
    problem(response, 401, "introspection-unauthorized").await;
    let response = app
        .request(Method::POST, "/_/trustpub/acme/introspect")
        .basic_auth("__token__", Some(ACME_SECRET))
        .json(&body)
        .send()
        .await
        .unwrap();
    problem(response, 401, "introspection-unauthorized").await;
    // A registry without a secret has no introspection.
    let response = introspect_on(&app, "closed", "anything", body.clone()).await;
    problem(response, 401, "introspection-unauthorized").await;
    // Nothing was checked or recorded.
    assert_eq!(app.store.events("acme").await.unwrap().len(), events_before);
    problem(
        introspect_on(&app, "nope", ACME_SECRET, body).await,
        404,
        "unknown-registry",
    )
    .await;
}

#[tokio::test]
async fn malformed_introspection_requests_are_client_errors() {
    let (_issuer, app) = prepare().await;
    let send = |content_type: &'static str, body: &'static str| {
        app.request(Method::POST, "/_/trustpub/acme/introspect")
            .bearer_auth(ACME_SECRET)
            .header("content-type", content_type)
            .body(body)
            .send()
    };
    problem(
        send("application/json", "{").await.unwrap(),
        400,
        "invalid-payload",
    )
    .await;
    problem(
        send("application/json", r#"{"package":"x"}"#)
            .await
            .unwrap(),
        400,
        "invalid-payload",
    )
    .await;
    problem(
        send("application/json", r#"{"token":"x","consume":"yes"}"#)
            .await
            .unwrap(),
        400,
        "invalid-payload",
    )
    .await;
    problem(
        send("application/x-www-form-urlencoded", "package=x")
            .await
            .unwrap(),
        400,
        "invalid-payload",
    )
    .await;
    problem(
        send("text/plain", "token=x").await.unwrap(),
        415,
        "unsupported-media-type",
    )
    .await;
    let large = "x".repeat(100 * 1024);
    let response = app
        .request(Method::POST, "/_/trustpub/acme/introspect")
        .bearer_auth(ACME_SECRET)
        .json(&json!({ "token": large }))
        .send()
        .await
        .unwrap();
    problem(response, 413, "payload-too-large").await;
}

#[tokio::test]
async fn expired_credentials_are_inactive_and_purged_live_ones_never() {
    let (_issuer, app) = prepare().await;
    let t = now();
    let expired = stored_credential(&app, t - 1000, t - 1).await;
    let expiring_now = stored_credential(&app, t - 900, t).await;
    let live = stored_credential(&app, t, t + 900).await;
    for credential in [&expired, &expiring_now] {
        let answer = introspect(&app, json!({ "token": credential })).await;
        assert_eq!(answer, json!({ "active": false }));
        assert_eq!(
            last_event(&app, "acme").await,
            event("check", "inactive", "credential-expired")
        );
    }
    assert_eq!(
        introspect(&app, json!({ "token": live })).await["active"],
        true
    );

    // Purging at t deletes what expired before t, nothing live.
    assert_eq!(app.store.purge_expired_upload_tokens(t).await.unwrap(), 1);
    let exists = |c: &str| {
        let hash = trustpub::tokens::hash(c);
        let store = app.store.clone();
        async move { store.upload_token_exists("acme", &hash).await }
    };
    assert!(!exists(&expired).await.unwrap());
    assert!(exists(&expiring_now).await.unwrap());
    assert!(exists(&live).await.unwrap());
    // Even a purge at a later time leaves what is live then.
    assert_eq!(
        app.store.purge_expired_upload_tokens(t + 1).await.unwrap(),
        1
    );
    assert!(exists(&live).await.unwrap());
    assert_eq!(
        introspect(&app, json!({ "token": live })).await["active"],
        true
    );
}

#[tokio::test]
async fn burning_revokes_at_once_and_answers_alike_for_anything() {
    let (issuer, app) = prepare().await;
    let credential = mint(&app, &issuer, json!({})).await;
    assert_eq!(
        introspect(&app, json!({ "token": credential })).await["active"],
        true
    );

    let response = burn(&app, "acme", &credential).await;
    assert_eq!(response.status(), 202);
    assert_eq!(
        last_event(&app, "acme").await,
        event("revoke", "revoked", "ok")
    );
    assert_eq!(
        introspect(&app, json!({ "token": credential })).await,
        json!({ "active": false })
    );
    assert_eq!(
        last_event(&app, "acme").await,
        event("check", "inactive", "credential-revoked")
    );
    let response = upload_check(&app, "POST", &credential)
        .send()
        .await
        .unwrap();
    problem(response, 401, "invalid-credential").await;

    // Burning again, an unknown credential, or another registry's: the same 202.
    let other = mint_on(&app, &issuer, "other", "other-aud", json!({})).await;
    for (n, credential) in [credential.as_str(), "unknown", other.as_str()]
        .into_iter()
        .enumerate()
    {
        let response = burn(&app, "acme", credential).await;
        assert_eq!(response.status(), 202);
        assert_eq!(
            refusals(&app, "acme", "revoke", "unknown-credential").await,
            n as i64 + 1
        );
    }
    // The other registry's credential was not touched.
    let answer =
        json_ok(introspect_on(&app, "other", OTHER_SECRET, json!({ "token": other })).await).await;
    assert_eq!(answer["active"], true);

    // Bad requests change nothing.
    let response = app
        .request(Method::POST, "/_/trustpub/acme/burn-token")
        .json(&json!({ "credential": other }))
        .send()
        .await
        .unwrap();
    problem(response, 400, "invalid-payload").await;
    let response = app.get("/_/trustpub/acme/burn-token").send().await.unwrap();
    problem(response, 405, "method-not-allowed").await;
}

#[tokio::test]
async fn single_use_credentials_serve_one_consuming_check() {
    let (issuer, app) = prepare().await;
    let single = mint(&app, &issuer, json!({ "features": ["single-use-token"] })).await;
    // Checks that do not consume leave it alone.
    for _ in 0..2 {
        let answer = introspect(&app, json!({ "token": single })).await;
        assert_eq!(answer["active"], true);
        assert_eq!(answer["single_use"], true);
    }
    let answer = introspect(&app, json!({ "token": single, "consume": true })).await;
    assert_eq!(answer["active"], true);
    assert_eq!(
        last_event(&app, "acme").await,
        event("check", "consumed", "ok")
    );
    for consume in [true, false] {
        let answer = introspect(&app, json!({ "token": single, "consume": consume })).await;
        assert_eq!(answer, json!({ "active": false }));
        assert_eq!(
            last_event(&app, "acme").await,
            event("check", "inactive", "credential-consumed")
        );
    }
    // An out-of-scope consuming check does not consume.
    let single = mint(&app, &issuer, json!({ "features": ["single-use-token"] })).await;
    let body = json!({ "token": single, "consume": true, "package": "gadget" });
    assert_eq!(introspect(&app, body).await["active"], false);
    let body = json!({ "token": single, "consume": true, "package": "widget" });
    assert_eq!(introspect(&app, body).await["active"], true);

    // Multi-use credentials stay valid however often they are consumed.
    let multi = mint(&app, &issuer, json!({ "features": ["multi-use-token"] })).await;
    for _ in 0..3 {
        let answer = introspect(&app, json!({ "token": multi, "consume": true })).await;
        assert_eq!(answer["active"], true);
    }
}

#[tokio::test]
async fn of_concurrent_consuming_checks_exactly_one_succeeds() {
    let (issuer, app) = prepare().await;
    let single = mint(&app, &issuer, json!({ "features": ["single-use-token"] })).await;
    let mut checks = tokio::task::JoinSet::new();
    for i in 0..25 {
        let (client, address, single) = (app.client.clone(), app.address.clone(), single.clone());
        checks.spawn(async move {
            let response = if i % 2 == 0 {
                client
                    .post(format!("{address}/_/trustpub/acme/introspect"))
                    .bearer_auth(ACME_SECRET)
                    .json(&json!({ "token": single, "consume": true }))
                    .send()
                    .await
                    .unwrap()
                    .json::<Value>()
                    .await
                    .unwrap()
            } else {
                let response = client
                    .put(format!("{address}/_/trustpub/auth"))
                    .header("X-Trustpub-Registry", "acme")
                    .header("X-Original-URI", "/legacy/packages/widget/1.0/")
                    .bearer_auth(&single)
                    .send()
                    .await
                    .unwrap();
                json!({ "active": response.status() == 200 })
            };
            response["active"] == true
        });
    }
    let outcomes = checks.join_all().await;
    assert_eq!(outcomes.iter().filter(|ok| **ok).count(), 1, "{outcomes:?}");
    let consumed = app
        .store
        .events("acme")
        .await
        .unwrap()
        .iter()
        .filter(|e| e.outcome == "consumed")
        .count();
    assert_eq!(consumed, 1);
}

#[tokio::test]
async fn forward_auth_lets_valid_credentials_through_with_their_scope() {
    let (issuer, app) = prepare().await;
    let credential = mint(&app, &issuer, json!({})).await;

    // Bearer, and Basic with `__token__` as Python clients send it.
    let response = upload_check(&app, "POST", &credential)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let header = |name: &str| {
        response
            .headers()
            .get(name)
            .map(|v| v.to_str().unwrap().to_owned())
    };
    assert_eq!(header("x-trustpub-registry").as_deref(), Some("acme"));
    assert_eq!(
        header("x-trustpub-packages").as_deref(),
        Some("widget,widget-*")
    );
    assert_eq!(
        header("x-trustpub-repository").as_deref(),
        Some("octo-org/widget")
    );
    assert_eq!(header("x-trustpub-single-use").as_deref(), Some("false"));
    assert_eq!(
        last_event(&app, "acme").await,
        event("check", "active", "ok")
    );
    let basic = STANDARD.encode(format!("__token__:{credential}"));
    let response = app
        .get("/_/trustpub/auth")
        .header("X-Trustpub-Registry", "acme")
        .header("Authorization", format!("Basic {basic}"))
        // A proxy forwards the client's own Accept; it does not matter here.
        .header("Accept", "text/html")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);

    // The package from the proxy's header, or from the path template.
    let response = forward(&app, "POST", &credential)
        .header("X-Trustpub-Package", "Widget.Extras")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let response = forward(&app, "POST", &credential)
        .header("X-Trustpub-Package", "gadget")
        .send()
        .await
        .unwrap();
    problem(response, 403, "package-not-allowed").await;
    assert_eq!(
        last_event(&app, "acme").await,
        event("check", "inactive", "package-not-allowed")
    );
    let response = forward(&app, "PUT", &credential)
        .header(
            "X-Original-URI",
            "/legacy/packages/gadget/1.0/gadget.tar.gz?x=1",
        )
        .send()
        .await
        .unwrap();
    problem(response, 403, "package-not-allowed").await;
    for tricky in [
        "/legacy/packages/widget/../gadget/1.0/",
        "/legacy/packages/widget/%2E%2e/gadget/",
        "/legacy/packages/widget;x=/1.0/",
    ] {
        let response = forward(&app, "PUT", &credential)
            .header("X-Original-URI", tricky)
            .send()
            .await
            .unwrap();
        problem(response, 403, "path-not-allowed").await;
    }
    // nginx's X-Original-URI is believed before X-Forwarded-Uri.
    let response = forward(&app, "PUT", &credential)
        .header("X-Original-URI", "/legacy/packages/gadget/1.0/")
        .header("X-Forwarded-Uri", "/legacy/packages/widget/1.0/")
        .send()
        .await
        .unwrap();
    problem(response, 403, "package-not-allowed").await;
    // A proxy's header must name what the path names.
    let response = upload_check(&app, "PUT", &credential)
        .header("X-Trustpub-Package", "gadget")
        .send()
        .await
        .unwrap();
    problem(response, 403, "path-not-allowed").await;
    let response = upload_check(&app, "PUT", &credential)
        .header("X-Trustpub-Package", "Widget")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let response = forward(&app, "PUT", &credential)
        .header("X-Original-URI", "/legacy/packages/widget-cli/1.0/w.tar.gz")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(
        response.headers()["x-trustpub-package"].to_str().unwrap(),
        "widget-cli"
    );
}

/// With acme's `package_path`, a write is let through only when its path
/// names the package exactly as the template does; a read whose path
/// names none is checked on the credential alone.
#[tokio::test]
async fn forward_auth_fails_closed_for_writes_the_template_cannot_read() {
    let (issuer, app) = prepare().await;
    let credential = mint(&app, &issuer, json!({})).await;
    let check = |method: &'static str, uri: Option<&'static str>| {
        let mut request = forward(&app, method, &credential);
        if let Some(uri) = uri {
            request = request.header("X-Original-URI", uri);
        }
        request.send()
    };
    // No path at all: nothing names the package.
    problem(check("PUT", None).await.unwrap(), 403, "path-not-allowed").await;
    assert_eq!(check("GET", None).await.unwrap().status(), 200);
    // Plain paths the template does not fit.
    for uri in [
        "/legacy/Packages/gadget/1.0/",
        "/legacy/other/",
        "/legacy/packages/",
    ] {
        let response = check("PUT", Some(uri)).await.unwrap();
        problem(response, 403, "path-not-allowed").await;
        assert_eq!(
            check("GET", Some(uri)).await.unwrap().status(),
            200,
            "{uri}"
        );
    }
    // Paths a proxy or the registry could read as another package.
    for uri in [
        "//legacy/packages/gadget/1.0/",
        "/legacy//packages/gadget/1.0/",
        "/legacy/packages//gadget/1.0/",
        "http://pypi.acme.test/legacy/packages/gadget/1.0/",
        "/legacy/packages/widget/%252e%252e/gadget/1.0/",
    ] {
        for method in ["PUT", "GET"] {
            let response = check(method, Some(uri)).await.unwrap();
            problem(response, 403, "path-not-allowed").await;
        }
    }
    // The path that fits: the package it names decides.
    let fits = check("PUT", Some("/legacy/packages/widget/1.0/"))
        .await
        .unwrap();
    assert_eq!(fits.status(), 200);
}

#[tokio::test]
async fn forward_auth_refuses_what_it_cannot_let_through() {
    let (issuer, app) = prepare().await;
    let credential = mint(&app, &issuer, json!({})).await;
    let auth = || {
        app.get("/_/trustpub/auth")
            .header("X-Trustpub-Registry", "acme")
    };

    let response = auth().send().await.unwrap();
    assert!(response.headers().contains_key("www-authenticate"));
    problem(response, 401, "missing-credential").await;
    let wrong_user = STANDARD.encode(format!("alice:{credential}"));
    for authorization in [
        format!("Basic {wrong_user}"),
        "Basic !!!".to_owned(),
        format!("Token {credential}"),
        "Bearer".to_owned(),
    ] {
        let response = auth()
            .header("Authorization", authorization.clone())
            .send()
            .await
            .unwrap();
        problem(response, 401, "missing-credential").await;
    }
    for credential in ["unknown", &credential[..credential.len() - 1]] {
        let response = auth().bearer_auth(credential).send().await.unwrap();
        problem(response, 401, "invalid-credential").await;
    }
    // Another registry's credential.
    let other = mint_on(&app, &issuer, "other", "other-aud", json!({})).await;
    let response = auth().bearer_auth(&other).send().await.unwrap();
    problem(response, 401, "invalid-credential").await;

    // No way to tell the registry.
    let response = app
        .get("/_/trustpub/auth")
        .header("X-Trustpub-Registry", "nope")
        .bearer_auth(&credential)
        .send()
        .await
        .unwrap();
    problem(response, 403, "no-registry-for-request").await;
    let response = app
        .get("/_/trustpub/auth")
        .header("X-Forwarded-Host", "elsewhere.test")
        .bearer_auth(&credential)
        .send()
        .await
        .unwrap();
    problem(response, 403, "no-registry-for-request").await;
}

#[tokio::test]
async fn forward_auth_finds_the_registry_by_forwarded_host_and_path() {
    let (issuer, app) = prepare().await;
    let acme = mint(&app, &issuer, json!({})).await;
    let other = mint_on(&app, &issuer, "other", "other-aud", json!({})).await;
    let check = |host: &'static str, uri: Option<&'static str>, credential: &str| {
        let mut request = app
            .get("/_/trustpub/auth")
            .header("X-Forwarded-Host", host)
            .bearer_auth(credential);
        if let Some(uri) = uri {
            request = request.header("X-Forwarded-Uri", uri);
        }
        request.send()
    };
    // `other` is alone on its host, with or without a port and a path.
    for host in ["other.acme.test", "OTHER.acme.test:443"] {
        assert_eq!(
            check(host, None, &other).await.unwrap().status(),
            200,
            "{host}"
        );
    }
    // acme and closed share a host: the longest upload path wins.
    let response = check("pypi.acme.test", Some("/legacy/"), &acme)
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["x-trustpub-registry"], "acme");
    let response = check("pypi.acme.test", Some("/legacy/closed/upload"), &acme)
        .await
        .unwrap();
    problem(response, 401, "invalid-credential").await;
    let response = check("pypi.acme.test", Some("/legacyx/"), &acme)
        .await
        .unwrap();
    problem(response, 403, "no-registry-for-request").await;
    let response = check("pypi.acme.test", None, &acme).await.unwrap();
    problem(response, 403, "no-registry-for-request").await;
}

#[tokio::test]
async fn forward_auth_of_an_upload_consumes_a_single_use_credential() {
    let (issuer, app) = prepare().await;
    let single = mint(&app, &issuer, json!({ "features": ["single-use-token"] })).await;
    // Reads do not consume.
    for method in ["GET", "HEAD", "OPTIONS"] {
        let response = forward(&app, method, &single).send().await.unwrap();
        assert_eq!(response.status(), 200, "{method}");
    }
    let response = upload_check(&app, "POST", &single).send().await.unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(
        last_event(&app, "acme").await,
        event("check", "consumed", "ok")
    );
    // Every other method writes, and consumes too.
    let written = mint(&app, &issuer, json!({ "features": ["single-use-token"] })).await;
    let response = upload_check(&app, "DELETE", &written).send().await.unwrap();
    assert_eq!(response.status(), 200);
    let response = upload_check(&app, "DELETE", &written).send().await.unwrap();
    problem(response, 401, "invalid-credential").await;
    for method in ["POST", "GET"] {
        let response = upload_check(&app, method, &single).send().await.unwrap();
        problem(response, 401, "invalid-credential").await;
    }
    // Without a forwarded method, the subrequest's own method tells.
    let single = mint(&app, &issuer, json!({ "features": ["single-use-token"] })).await;
    let put = || {
        app.request(Method::PUT, "/_/trustpub/auth")
            .header("X-Trustpub-Registry", "acme")
            .header("X-Original-URI", "/legacy/packages/widget/1.0/")
            .bearer_auth(&single)
            .send()
    };
    assert_eq!(put().await.unwrap().status(), 200);
    problem(put().await.unwrap(), 401, "invalid-credential").await;
}

/// Reads let through by forward-auth are many (cargo reads an index entry
/// per dependency): counted per hour and in the metrics, not kept one event
/// each, whether or not the registry has a read credential. Writes keep
/// theirs.
#[tokio::test]
async fn forward_auth_counts_reads_and_keeps_writes_as_events() {
    let (issuer, app) = prepare().await;
    let credential = mint(&app, &issuer, json!({})).await;
    let events_before = app.store.events("acme").await.unwrap().len();
    for method in ["GET", "HEAD", "OPTIONS"] {
        let response = forward(&app, method, &credential).send().await.unwrap();
        assert_eq!(response.status(), 200, "{method}");
    }
    problem(
        forward(&app, "GET", "acme_not-live").send().await.unwrap(),
        401,
        "invalid-credential",
    )
    .await;
    assert_eq!(app.store.events("acme").await.unwrap().len(), events_before);
    assert_eq!(refusals(&app, "acme", "check", "read").await, 3);
    assert_eq!(
        refusals(&app, "acme", "check", "unknown-credential").await,
        1
    );
    let text = scrape(&app, &app.address).await;
    let checks = |outcome: &str, code: &str| {
        sample(
            &text,
            "trustpub_checks_total",
            &[("registry", "acme"), ("outcome", outcome), ("code", code)],
        )
    };
    assert_eq!(checks("active", "read"), Some(3.0));
    assert_eq!(checks("inactive", "unknown-credential"), Some(1.0));

    // A write is kept, with the job's claims.
    let response = upload_check(&app, "PUT", &credential).send().await.unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(
        app.store.events("acme").await.unwrap().len(),
        events_before + 1
    );
    assert_eq!(
        last_event(&app, "acme").await,
        event("check", "active", "ok")
    );
}
