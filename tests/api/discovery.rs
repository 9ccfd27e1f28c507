//! PEP 807 discovery: `GET /.well-known/pytp?discover=<key>`.

use serde_json::json;

use crate::helpers::{REGISTRIES, json_ok, problem, spawn_app};

const PYTP: &str = "application/vnd.pypi.pytp.v1+json";

#[tokio::test]
async fn serves_the_discovery_document_of_the_upload_path() {
    let app = spawn_app(REGISTRIES).await;
    let response = app
        .get("/.well-known/pytp?discover=%2Flegacy%2F")
        .header("Accept", PYTP)
        .header("Host", "pypi.acme.test")
        .send()
        .await
        .unwrap();
    assert_eq!(response.headers()["content-type"], PYTP);
    assert_eq!(
        json_ok(response).await,
        json!({
            "audience-endpoint": "https://pypi.acme.test/_/trustpub/acme/audience",
            "token-mint-endpoint": "https://pypi.acme.test/_/trustpub/acme/mint-token",
            "token-burn-endpoint": "https://pypi.acme.test/_/trustpub/acme/burn-token",
            "features": ["multi-use-token", "single-use-token"],
            "default-features": ["multi-use-token"],
        })
    );
}

#[tokio::test]
async fn urls_come_from_the_upload_url_never_from_the_host_header() {
    let app = spawn_app(REGISTRIES).await;
    let response = app
        .get("/.well-known/pytp?discover=%2Fsimple%20upload%2F")
        .header("Host", "attacker.test")
        .header("X-Forwarded-Host", "attacker.test")
        .send()
        .await
        .unwrap();
    let document = json_ok(response).await;
    assert_eq!(
        document["audience-endpoint"],
        "https://uploads.beta.test:8443/_/trustpub/beta/audience"
    );
    assert_eq!(
        document["token-mint-endpoint"],
        "https://uploads.beta.test:8443/_/trustpub/beta/mint-token"
    );
    assert_eq!(
        document["token-burn-endpoint"],
        "https://uploads.beta.test:8443/_/trustpub/beta/burn-token"
    );
    assert_eq!(document["features"], json!(["single-use-token"]));
    assert_eq!(document["default-features"], json!(["single-use-token"]));
}

#[tokio::test]
async fn the_key_is_decoded_form_style() {
    let app = spawn_app(REGISTRIES).await;
    for key in [
        "%2Fsimple+upload%2F",
        "%2Fsimple%20upload%2F",
        "/simple+upload/",
        "%2fsimple+upload",
    ] {
        let response = app
            .get(&format!("/.well-known/pytp?discover={key}"))
            .send()
            .await
            .unwrap();
        let document = json_ok(response).await;
        assert_eq!(
            document["audience-endpoint"],
            "https://uploads.beta.test:8443/_/trustpub/beta/audience",
            "key {key}"
        );
    }
}

#[tokio::test]
async fn the_request_host_picks_among_registries_sharing_a_path() {
    let app = spawn_app(REGISTRIES).await;
    for (host, registry) in [
        ("pypi.acme.test", "acme"),
        ("PYPI.ACME.TEST", "acme"),
        ("pypi.eu.acme.test", "acme-eu"),
    ] {
        let response = app
            .get("/.well-known/pytp?discover=%2Flegacy%2F")
            .header("Host", host)
            .send()
            .await
            .unwrap();
        let document = json_ok(response).await;
        assert_eq!(
            document["audience-endpoint"],
            format!(
                "https://{}/_/trustpub/{registry}/audience",
                host.to_lowercase()
            ),
        );
    }
    // The scheme's default port, written out, is the same host.
    let response = app
        .get("/.well-known/pytp?discover=%2Flegacy%2F")
        .header("Host", "pypi.acme.test:80")
        .send()
        .await
        .unwrap();
    assert_eq!(
        json_ok(response).await["audience-endpoint"],
        "https://pypi.acme.test/_/trustpub/acme/audience"
    );
    // Behind a proxy, the forwarded host is the request's host.
    let response = app
        .get("/.well-known/pytp?discover=%2Flegacy%2F")
        .header("Host", "127.0.0.1")
        .header("X-Forwarded-Host", "pypi.eu.acme.test")
        .send()
        .await
        .unwrap();
    assert_eq!(
        json_ok(response).await["token-mint-endpoint"],
        "https://pypi.eu.acme.test/_/trustpub/acme-eu/mint-token"
    );
    // Neither host: the path alone cannot decide.
    let response = app
        .get("/.well-known/pytp?discover=%2Flegacy%2F")
        .header("Host", "other.test")
        .send()
        .await
        .unwrap();
    problem(response, 404, "not-discoverable").await;
}

#[tokio::test]
async fn a_path_no_registry_serves_is_404() {
    let app = spawn_app(REGISTRIES).await;
    // NUL bytes included: PostgreSQL refuses them in text, so they must
    // never reach it.
    for key in [
        "%2Fnope%2F",
        "%2Flegacy%2Fextra%2F",
        "legacy",
        "%2Flegacy%00",
        "%00",
    ] {
        let response = app
            .get(&format!("/.well-known/pytp?discover={key}"))
            .header("Host", "pypi.acme.test")
            .send()
            .await
            .unwrap();
        problem(response, 404, "not-discoverable").await;
    }
}

#[tokio::test]
async fn no_registries_means_nothing_is_discoverable() {
    let app = spawn_app("").await;
    let response = app
        .get("/.well-known/pytp?discover=%2Flegacy%2F")
        .send()
        .await
        .unwrap();
    problem(response, 404, "not-discoverable").await;
}

#[tokio::test]
async fn a_missing_key_is_400() {
    let app = spawn_app(REGISTRIES).await;
    for query in ["", "?", "?other=1", "?Discover=%2Flegacy%2F"] {
        let response = app
            .get(&format!("/.well-known/pytp{query}"))
            .send()
            .await
            .unwrap();
        problem(response, 400, "missing-discover-key").await;
    }
}

/// PEP 807, step 2: an upload URL without a path has the empty key. For
/// http(s) an empty path is `/` (RFC 3986, 6.2.3), so the empty key, `/`
/// and a present but valueless `discover` all find the registry at the
/// root of its host, whether its `upload_url` ends in `/` or not.
#[tokio::test]
async fn the_empty_key_is_the_root_of_the_host() {
    let root = |name: &str, upload_url: &str| {
        format!(
            "[[registries]]\nname = \"{name}\"\nupload_url = \"{upload_url}\"\n\
             audience = \"{name}\"\ntoken_prefix = \"{name}_\"\n"
        )
    };
    let app = spawn_app(&format!(
        "{REGISTRIES}{}{}",
        root("bare", "https://bare.acme.test"),
        root("slash", "https://slash.acme.test/")
    ))
    .await;
    for (host, name) in [("bare.acme.test", "bare"), ("slash.acme.test", "slash")] {
        for query in ["?discover=", "?discover", "?discover=%2F", "?discover=/"] {
            let response = app
                .get(&format!("/.well-known/pytp{query}"))
                .header("Host", host)
                .send()
                .await
                .unwrap();
            assert_eq!(
                json_ok(response).await["audience-endpoint"],
                format!("https://{host}/_/trustpub/{name}/audience"),
                "{host}{query}"
            );
        }
    }

    // Without a registry at a root, the empty key is a path nobody serves.
    let app = spawn_app(REGISTRIES).await;
    let response = app
        .get("/.well-known/pytp?discover=")
        .header("Host", "pypi.acme.test")
        .send()
        .await
        .unwrap();
    problem(response, 404, "not-discoverable").await;
}

#[tokio::test]
async fn a_malformed_query_is_400() {
    let app = spawn_app(REGISTRIES).await;
    let response = app
        .get("/.well-known/pytp?discover=%2Flegacy%2F&discover=%2Fother%2F")
        .send()
        .await
        .unwrap();
    problem(response, 400, "invalid-query").await;
}
