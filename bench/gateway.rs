//! Memory of the upload gateway: `cargo bench --bench gateway`.
//!
//! Starts the trustpub binary (a process of its own, so that its memory is
//! measured alone) with a registry whose gateway forwards to a sink that
//! counts and discards what it receives, mints a credential with the test
//! OIDC issuer, uploads one Python upload of `UPLOAD_MB` MiB (default 200)
//! streamed from a generator, and reports trustpub's resident memory before
//! and at its peak (`VmRSS`, `VmHWM` of `/proc/<pid>/status`). Linux only.

use std::net::TcpListener;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use actix_web::{App, HttpResponse, HttpServer, web};
use bytes::Bytes;
use futures_util::StreamExt;
use trustpub::testing::{TestIssuer, acme_registry_with};

// Shared with the other benchmarks; not all of it is used here.
#[allow(dead_code)]
#[path = "support.rs"]
mod support;
use support::{free_port, memory, mint, start_trustpub};

const CHUNK: usize = 64 * 1024;
const BOUNDARY: &str = "trustpubBenchBoundary";

/// A registry stand-in that reads every upload to the end and keeps nothing.
fn start_sink() -> (u16, Arc<AtomicU64>) {
    let received = Arc::new(AtomicU64::new(0));
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let counter = received.clone();
    let server = HttpServer::new(move || {
        let counter = counter.clone();
        App::new().default_service(web::to(move |mut body: web::Payload| {
            let counter = counter.clone();
            async move {
                while let Some(Ok(chunk)) = body.next().await {
                    counter.fetch_add(chunk.len() as u64, Ordering::Relaxed);
                }
                HttpResponse::Ok().body("stored")
            }
        }))
    })
    .workers(1)
    .disable_signals()
    .listen(listener)
    .unwrap()
    .run();
    tokio::spawn(server);
    (port, received)
}

#[tokio::main]
async fn main() {
    let megabytes: u64 = std::env::var("UPLOAD_MB")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(200);
    let file_bytes = megabytes * 1024 * 1024;

    let issuer = TestIssuer::start().await;
    let (sink, received) = start_sink();
    let port = free_port();
    let dir = tempfile::tempdir().unwrap();
    let config = format!(
        "[server]\nlisten = \"127.0.0.1:{port}\"\n[database]\nurl = \"sqlite://{db}\"\n\
         [log]\nfilter = \"warn\"\n{registry}",
        db = dir.path().join("trustpub.db").display(),
        registry = acme_registry_with(
            issuer.url(),
            &format!(
                "[registries.gateway]\nupstream = \"http://127.0.0.1:{sink}/\"\n\
                 max_upload_bytes = {}\n",
                file_bytes * 2
            ),
        )
        .replace("https://pypi.acme.test/legacy/", "http://127.0.0.1/legacy/"),
    );
    let base = format!("http://127.0.0.1:{port}");
    let mut server = start_trustpub(dir.path(), &config, &base).await;
    let client = reqwest::Client::new();

    let credential = mint(&client, &base, &issuer).await;

    let mut head = String::new();
    for (name, value) in [
        (":action", "file_upload"),
        ("protocol_version", "1"),
        ("name", "widget"),
        ("version", "1.0.0"),
    ] {
        head.push_str(&format!(
            "--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"{name}\"\r\n\r\n{value}\r\n"
        ));
    }
    head.push_str(&format!(
        "--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"content\"; \
         filename=\"widget-1.0.0-py3-none-any.whl\"\r\n\r\n"
    ));
    let tail = format!("\r\n--{BOUNDARY}--\r\n");
    let length = head.len() as u64 + file_bytes + tail.len() as u64;
    let chunks = file_bytes.div_ceil(CHUNK as u64);
    let file = futures_util::stream::iter(0..chunks).map(move |i| {
        let size = (file_bytes - i * CHUNK as u64).min(CHUNK as u64) as usize;
        Ok::<_, std::io::Error>(Bytes::from(vec![(i % 251) as u8; size]))
    });
    let body = futures_util::stream::once(async move { Ok(Bytes::from(head)) })
        .chain(file)
        .chain(futures_util::stream::once(
            async move { Ok(Bytes::from(tail)) },
        ));

    let pid = server.id();
    let (rss_before, _) = memory(pid);
    let started = Instant::now();
    let response = client
        .post(format!("{base}/legacy/"))
        .basic_auth("__token__", Some(&credential))
        .header(
            "content-type",
            format!("multipart/form-data; boundary={BOUNDARY}"),
        )
        .header("content-length", length)
        .body(reqwest::Body::wrap_stream(body))
        .send()
        .await
        .unwrap();
    let status = response.status();
    let elapsed = started.elapsed().as_secs_f64();
    let (rss_after, peak) = memory(pid);
    let _ = server.kill();
    let _ = server.wait();

    assert_eq!(status, 200, "{}", response.text().await.unwrap_or_default());
    assert_eq!(
        received.load(Ordering::Relaxed),
        length,
        "the sink got it all"
    );
    println!(
        "upload through the gateway: {megabytes} MiB in {elapsed:.2} s ({:.0} MiB/s)",
        megabytes as f64 / elapsed
    );
    println!(
        "trustpub RSS: {:.1} MiB before, {:.1} MiB after, peak {:.1} MiB",
        rss_before as f64 / 1024.0,
        rss_after as f64 / 1024.0,
        peak as f64 / 1024.0
    );
}
