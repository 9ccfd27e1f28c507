//! What the registry behind the upload gateway reads is what trustpub
//! checked, tried with Python's real parsers: pypiserver's own reading (its
//! bottle, on the standard library's `cgi`) and the standard library's
//! `email` parser, in `tests/e2e/multipart_sink.py`, and pypiserver itself.
//! Uploads whose part headers parsers could read differently (repeated,
//! case-varied or extended parameters, quotes, folded lines, extra headers)
//! are sent through the gateway with a credential for `widget` and
//! `widget-*`: each is refused, or every parser reads `widget` exactly.

use serde_json::{Value, json};
use trustpub::testing::TestIssuer;

use crate::fixtures::mint;
use crate::real_clients::{Pypiserver, PythonServer, serve_with};

/// The honest file part's disposition, and parameters to combine with it.
const HONEST: &str = "form-data; name=\"content\"; filename=\"widget-1.1.tar.gz\"";
const PARAMETERS: [&str; 15] = [
    "name=\"content\"",
    "filename=\"widget-1.1.tar.gz\"",
    "filename=\"victim-1.1.tar.gz\"",
    "FILENAME=\"victim-1.1.tar.gz\"",
    "Filename=\"victim-1.1.tar.gz\"",
    "filename*=UTF-8''victim-1.1.tar.gz",
    "filename=victim-1.1.tar.gz",
    "name=\"content; filename=victim-1.1.tar.gz\"",
    "filename=\"widget-1.1.tar.gz; filename=victim-1.1.tar.gz\"",
    "filename=\"wid\\\"get; filename=victim-1.1.tar.gz\"",
    "filename=\"victim%2d1.1.tar.gz\"",
    "filename=\"x\\\\victim-1.1.tar.gz\"",
    "NAME=\"content\"",
    "name=content",
    "name=\"name\"",
];

/// Every pair of parameters with three separators, and every parameter
/// after the honest disposition: the file part's header lines.
fn file_part_headers() -> Vec<String> {
    let mut headers = Vec::new();
    for first in PARAMETERS {
        for second in PARAMETERS {
            for separator in ["; ", ";", " ; "] {
                headers.push(format!(
                    "Content-Disposition: form-data{separator}{first}{separator}{second}"
                ));
            }
        }
    }
    for extra in PARAMETERS {
        headers.push(format!("Content-Disposition: {HONEST}; {extra}"));
    }
    for other_lines in [
        "\r\nContent-Disposition: form-data; name=\"content\"; filename=\"victim-1.1.tar.gz\"",
        "\r\nContent-Type: application/octet-stream",
        "\r\nContent-Transfer-Encoding: base64",
        "\r\ncontent-disposition: form-data; name=\"content\"; filename=\"victim-1.1.tar.gz\"",
        ";\r\n filename=\"victim-1.1.tar.gz\"",
        "\r\n\tfilename=\"victim-1.1.tar.gz\"",
    ] {
        headers.push(format!("Content-Disposition: {HONEST}{other_lines}"));
    }
    headers
}

/// The header lines of the `name` part, honest and otherwise.
const NAME_PART_HEADERS: [&str; 5] = [
    "Content-Disposition: form-data; name=\"name\"",
    "Content-Disposition: form-data; name=\"name\"\r\nContent-Type: text/plain; charset=utf-8",
    "Content-Disposition: form-data; name=\"name\"\r\nContent-Type: text/plain; charset=utf-16",
    "Content-Disposition: form-data; name=\"name\"; name=\"victim\"",
    "Content-Disposition: form-data; name=\"name\"; filename=\"victim-1.1.tar.gz\"",
];

const BOUNDARY: &str = "trustpubParsers";

fn upload(name_part: &str, file_part: &str) -> Vec<u8> {
    format!(
        "--{BOUNDARY}\r\nContent-Disposition: form-data; name=\":action\"\r\n\r\nfile_upload\r\n\
         --{BOUNDARY}\r\n{name_part}\r\n\r\nwidget\r\n\
         --{BOUNDARY}\r\n{file_part}\r\n\r\nthe sdist\r\n--{BOUNDARY}--\r\n"
    )
    .into_bytes()
}

/// Every variant, sent through the gateway into the Python sink: trustpub
/// refuses it (400 `invalid-upload`), or both Python readings found the
/// action, `widget` and its file, once each.
#[tokio::test]
async fn python_parsers_read_every_forwarded_upload_as_trustpub_did() {
    let sink = PythonServer::start(
        "python",
        &[
            concat!(env!("CARGO_MANIFEST_DIR"), "/tests/e2e/multipart_sink.py"),
            "{port}",
        ],
        "/",
    )
    .await;
    let issuer = TestIssuer::start().await;
    let gateway = format!("[registries.gateway]\nupstream = \"{}\"\n", sink.url("/"));
    let app = serve_with(&issuer, None, &gateway).await;
    let credential = mint(&app, &issuer, json!({})).await;

    let expected = json!({
        "action": ["file_upload"],
        "name": ["widget"],
        "content": ["widget-1.1.tar.gz"],
    });
    let (mut forwarded, mut refused) = (0, 0);
    let file_parts = file_part_headers();
    let variants = NAME_PART_HEADERS
        .iter()
        .map(|name_part| (*name_part, format!("Content-Disposition: {HONEST}")))
        .chain(
            file_parts
                .iter()
                .map(|file_part| (NAME_PART_HEADERS[0], file_part.clone())),
        );
    let honest_file = format!("Content-Disposition: {HONEST}");
    // The upload's own Content-Type: trustpub forwards a canonical one, so
    // a registry never reads another boundary than trustpub did.
    let content_types = [
        format!("multipart/form-data; boundary={BOUNDARY}"),
        format!("multipart/form-data; boundary=\"{BOUNDARY}\""),
        format!("multipart/form-data; BOUNDARY={BOUNDARY}"),
        format!("multipart/form-data; boundary={BOUNDARY}; boundary=evil"),
        format!("multipart/form-data; boundary=evil; boundary={BOUNDARY}"),
    ];
    let variants = variants
        .map(|(name_part, file_part)| (name_part, file_part, content_types[0].clone()))
        .chain(
            content_types
                .iter()
                .skip(1)
                .map(|t| (NAME_PART_HEADERS[0], honest_file.clone(), t.clone())),
        );
    for (name_part, file_part, content_type) in variants {
        let response = app
            .request(reqwest::Method::POST, "/legacy/")
            .basic_auth("__token__", Some(&credential))
            .header("content-type", &content_type)
            .body(upload(name_part, &file_part))
            .send()
            .await
            .unwrap();
        let status = response.status().as_u16();
        let body: Value = response.json().await.unwrap();
        // What twine, uv and the rest send must go through.
        let honest = file_part == honest_file
            && NAME_PART_HEADERS[..2].contains(&name_part)
            && content_type == content_types[0];
        if status == 400 && !honest {
            assert_eq!(body["code"], "invalid-upload", "{file_part}");
            refused += 1;
            continue;
        }
        assert_eq!(status, 200, "{name_part} / {file_part}: {body}");
        for parser in ["bottle", "email"] {
            assert_eq!(
                body[parser], expected,
                "{parser} read another upload than trustpub checked: {name_part} / {file_part}"
            );
        }
        forwarded += 1;
    }
    // The honest forms went through (asserted above); the rest was refused.
    assert!(forwarded >= 2, "forwarded {forwarded}");
    assert!(refused > 600, "refused {refused}");
}

/// The two examples of the attack, against pypiserver itself: a file part
/// with two `filename` parameters (pypiserver stored the last), and a
/// `name` whose quoted value holds `filename=` text. Neither is stored;
/// the honest upload is.
#[tokio::test]
async fn pypiserver_never_stores_a_file_trustpub_did_not_check() {
    let registry = Pypiserver::start().await;
    let issuer = TestIssuer::start().await;
    let app = serve_with(&issuer, None, &registry.gateway()).await;
    let credential = mint(&app, &issuer, json!({})).await;
    let send = |file_part: String| {
        app.request(reqwest::Method::POST, "/legacy/")
            .basic_auth("__token__", Some(&credential))
            .header(
                "content-type",
                format!("multipart/form-data; boundary={BOUNDARY}"),
            )
            .body(upload(NAME_PART_HEADERS[0], &file_part))
            .send()
    };
    for attack in [
        "form-data; name=\"content\"; filename=\"widget-1.1.tar.gz\"; filename=\"victim-1.1.tar.gz\"",
        "form-data; name=\"content; filename=victim-1.1.tar.gz\"; filename=\"widget-1.1.tar.gz\"",
    ] {
        let response = send(format!("Content-Disposition: {attack}"))
            .await
            .unwrap();
        assert_eq!(response.status(), 400, "{attack}");
    }
    assert!(registry.files().is_empty(), "{:?}", registry.files());
    let response = send(format!("Content-Disposition: {HONEST}"))
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(registry.files(), ["widget-1.1.tar.gz"]);
}
