//! Content negotiation and problem documents for every error the HTTP layer
//! produces.

use reqwest::Method;

use crate::helpers::{REGISTRIES, json_ok, problem, raw_exchange, spawn_app};

const PYTP: &str = "application/vnd.pypi.pytp.v1+json";

#[tokio::test]
async fn served_media_types() {
    let app = spawn_app(REGISTRIES).await;
    for (accept, content_type) in [
        (PYTP, PYTP),
        ("application/json", "application/json"),
        ("*/*", "application/json"),
        ("application/*", "application/json"),
        ("text/html;q=0.9, */*;q=0.1", "application/json"),
        (&format!("application/json, {PYTP}"), PYTP),
    ] {
        let request = app
            .get("/_/trustpub/acme/audience")
            .header("Accept", accept);
        let response = request.send().await.unwrap();
        assert_eq!(
            response.headers()["content-type"],
            content_type,
            "Accept: {accept}"
        );
        json_ok(response).await;
    }
}

#[tokio::test]
async fn a_missing_accept_is_served_as_the_pep_807_type() {
    let app = spawn_app(REGISTRIES).await;
    // reqwest always sends an Accept header: speak HTTP/1.1 by hand.
    let (head, body) = raw_get(&app.address, "/_/trustpub/acme/audience").await;
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    assert!(
        head.to_ascii_lowercase()
            .contains(&format!("content-type: {PYTP}")),
        "{head}"
    );
    assert_eq!(body, r#"{"audience":"acme-pypi"}"#);
}

/// A GET without an `Accept` header; returns the head and the body.
async fn raw_get(address: &str, path: &str) -> (String, String) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let authority = address.trim_start_matches("http://");
    let mut stream = tokio::net::TcpStream::connect(authority).await.unwrap();
    let request = format!("GET {path} HTTP/1.1\r\nHost: {authority}\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).await.unwrap();
    let (head, body) = response.split_once("\r\n\r\n").unwrap();
    (head.to_owned(), body.to_owned())
}

#[tokio::test]
async fn other_media_types_are_406() {
    let app = spawn_app(REGISTRIES).await;
    for accept in [
        "text/html",
        "application/xml",
        "application/json;q=0",
        "image/*",
    ] {
        for path in [
            "/_/trustpub/acme/audience",
            "/.well-known/pytp?discover=%2Flegacy%2F",
        ] {
            let response = app.get(path).header("Accept", accept).send().await.unwrap();
            problem(response, 406, "not-acceptable").await;
        }
    }
}

#[tokio::test]
async fn unknown_routes_are_404() {
    let app = spawn_app(REGISTRIES).await;
    for path in [
        "/",
        "/nope",
        "/_/trustpub/acme",
        "/_/trustpub/acme/audience/extra",
        "/.well-known/other",
    ] {
        let response = app.get(path).send().await.unwrap();
        problem(response, 404, "not-found").await;
    }
}

#[tokio::test]
async fn wrong_methods_are_405_with_allow() {
    let app = spawn_app(REGISTRIES).await;
    for (method, path) in [
        (Method::POST, "/_/trustpub/acme/audience"),
        (Method::DELETE, "/.well-known/pytp?discover=%2Flegacy%2F"),
        (Method::PUT, "/healthz"),
        (Method::POST, "/readyz"),
    ] {
        let response = app.request(method.clone(), path).send().await.unwrap();
        assert_eq!(response.headers()["allow"], "GET", "{method} {path}");
        problem(response, 405, "method-not-allowed").await;
    }
}

#[tokio::test]
async fn a_path_segment_that_does_not_decode_is_400() {
    let app = spawn_app(REGISTRIES).await;
    let response = app
        .get("/_/trustpub/Not%20A%20Slug/audience")
        .send()
        .await
        .unwrap();
    problem(response, 400, "invalid-path").await;
}

#[tokio::test]
async fn refused_input_is_explained_in_the_request_terms() {
    let app = spawn_app(REGISTRIES).await;
    let mint = |body: &'static str| {
        app.request(Method::POST, "/_/trustpub/acme/mint-token")
            .header("Content-Type", "application/json")
            .body(body)
    };
    let invalid_body = "the request body is not valid for this endpoint: ";
    for (request, status, code, detail) in [
        (
            mint("{}"),
            400,
            "invalid-payload",
            format!("{invalid_body}the member \"token\" is missing"),
        ),
        (
            mint("token=x"),
            400,
            "invalid-payload",
            format!("{invalid_body}the body is not JSON (line 1, column 2)"),
        ),
        (
            mint("\"x\""),
            400,
            "invalid-payload",
            format!("{invalid_body}the body must be a JSON object"),
        ),
        (
            mint("{\"token\": \"x\", \"packages\": \"widget\"}"),
            400,
            "invalid-payload",
            format!(
                "{invalid_body}the value at line 1, column 35 has the wrong type: \
                 string \"widget\" where the endpoint expects an array"
            ),
        ),
        (
            app.get("/_/trustpub/Not%20A%20Slug/audience"),
            400,
            "invalid-path",
            "the path is invalid: the registry name \"Not A Slug\" is not a slug: use 1 to \
             64 of a-z, 0-9, '-' and '_', starting with a letter or digit"
                .to_owned(),
        ),
        (
            app.get("/.well-known/pytp?discover=%2Flegacy%2F&discover=%2Fother%2F"),
            400,
            "invalid-query",
            "the query string is invalid: the parameter \"discover\" is given more than once"
                .to_owned(),
        ),
    ] {
        let document = problem(request.send().await.unwrap(), status, code).await;
        assert_eq!(document["detail"], detail, "{document}");
        let text = document.to_string();
        assert!(!text.contains("deserialize error"), "{text}");
    }
}

#[tokio::test]
async fn the_server_keeps_serving_after_bad_input() {
    let app = spawn_app(REGISTRIES).await;
    for path in [
        "/_/trustpub/%FF/audience",
        "/.well-known/pytp?discover=",
        "/nope",
    ] {
        let response = app.get(path).send().await.unwrap();
        assert!(response.status().is_client_error(), "{path}");
    }
    let response = app.get("/_/trustpub/acme/audience").send().await.unwrap();
    assert_eq!(json_ok(response).await["audience"], "acme-pypi");
}

/// Writes `head` (request line and header lines, without the blank line
/// that ends them) to the app and answers its status and the whole answer.
async fn raw_head(app: &crate::helpers::TestApp, head: &str) -> (u16, String) {
    let authority = app.address.trim_start_matches("http://");
    raw_exchange(authority, &format!("{head}\r\nConnection: close\r\n\r\n")).await
}

fn body_of(answer: &str) -> &str {
    answer.split_once("\r\n\r\n").map_or("", |(_, body)| body)
}

/// Heads over `[server]` `max_uri_bytes`, `max_header_bytes` and
/// `max_headers` are refused with problem documents, on any path.
#[tokio::test]
async fn heads_over_the_configured_limits_are_problem_documents() {
    let app = spawn_app(&format!(
        "[server]\nmax_uri_bytes = 1024\nmax_header_bytes = 2048\nmax_headers = 16\n{REGISTRIES}"
    ))
    .await;
    let long_path = format!("/_/trustpub/acme/audience?{}", "x".repeat(1100));
    problem(
        app.get(&long_path).send().await.unwrap(),
        414,
        "uri-too-long",
    )
    .await;

    let big = "v".repeat(3000);
    let refused = app
        .get("/healthz")
        .header("X-Big", &big)
        .send()
        .await
        .unwrap();
    let document = problem(refused, 431, "headers-too-large").await;
    assert!(
        document["detail"].as_str().unwrap().contains("2048 bytes"),
        "{document}"
    );

    let mut many = app.get("/_/trustpub/acme/audience");
    for i in 0..20 {
        many = many.header(format!("X-Extra-{i}"), "1");
    }
    problem(many.send().await.unwrap(), 431, "headers-too-large").await;

    // Just under the limits: served.
    let fits = format!("/_/trustpub/acme/audience?{}", "x".repeat(900));
    json_ok(app.get(&fits).send().await.unwrap()).await;
}

/// The documented exception: heads the HTTP parser itself refuses (over its
/// fixed 128 KiB, over 96 header lines, or not HTTP at all) are answered
/// before trustpub sees the request, with an empty body. Kept here so that
/// the documentation stays true when actix-web changes.
#[tokio::test]
async fn heads_the_parser_refuses_are_the_documented_exception() {
    let app = spawn_app(REGISTRIES).await;
    let huge = format!(
        "GET /healthz HTTP/1.1\r\nHost: x\r\nX-Huge: {}",
        "h".repeat(140 * 1024)
    );
    let (status, answer) = raw_head(&app, &huge).await;
    assert_eq!(status, 431, "{answer:.200}");
    assert_eq!(body_of(&answer), "", "{answer:.200}");

    let many: String = (0..100).map(|i| format!("\r\nX-H{i}: 1")).collect();
    let (status, answer) = raw_head(&app, &format!("GET /healthz HTTP/1.1\r\nHost: x{many}")).await;
    assert_eq!(status, 431, "{answer:.200}");
    assert_eq!(body_of(&answer), "", "{answer:.200}");

    let (status, answer) = raw_head(&app, "GARBAGE\u{1}LINE").await;
    assert_eq!(status, 400, "{answer:.200}");
    assert_eq!(body_of(&answer), "", "{answer:.200}");

    // Below the parser's limits, trustpub's own limits answer.
    let (status, answer) = raw_head(
        &app,
        &format!(
            "GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: {}",
            "b".repeat(40 * 1024)
        ),
    )
    .await;
    assert_eq!(status, 431, "{answer:.200}");
    assert!(
        body_of(&answer).contains("\"headers-too-large\""),
        "{answer:.400}"
    );
}
