//! The kit's HTTP client: every header is the kit's choice (none is added
//! behind its back, so a request can go without `Accept`), redirects are not
//! followed, and answers are read whole, up to a limit.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::{Method, Request, header};
use http_body_util::{BodyExt, Full, Limited};
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::Client as HyperClient;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use serde_json::Value;
use url::Url;

/// The media type PEP 807 defines.
pub const PEP_MEDIA_TYPE: &str = "application/vnd.pypi.pytp.v1+json";

/// The largest answer body the kit reads.
const MAX_BODY_BYTES: usize = 1 << 20;

/// An HTTP answer, read whole.
#[derive(Debug, Clone)]
pub struct Answer {
    pub status: u16,
    /// The `Content-Type` header as sent.
    pub content_type: Option<String>,
    pub body: String,
}

impl Answer {
    /// The body as JSON, if it is JSON.
    pub fn json(&self) -> Option<Value> {
        serde_json::from_str(&self.body).ok()
    }

    /// The media type of `Content-Type`, lower case, without parameters.
    pub fn media_type(&self) -> Option<String> {
        let content_type = self.content_type.as_deref()?;
        let media_type = content_type.split(';').next().unwrap_or_default();
        Some(media_type.trim().to_ascii_lowercase())
    }

    pub fn is_client_error(&self) -> bool {
        (400..500).contains(&self.status)
    }

    /// The status and the start of the body, for reasons in reports.
    pub fn summary(&self) -> String {
        const SHOWN: usize = 160;
        let body: String = self.body.chars().take(SHOWN).collect();
        let more = if self.body.chars().count() > SHOWN {
            "…"
        } else {
            ""
        };
        if body.is_empty() {
            format!("{} (empty body)", self.status)
        } else {
            format!("{} {body}{more}", self.status)
        }
    }
}

/// A client for one run of the kit.
pub struct Client {
    inner: HyperClient<HttpsConnector<HttpConnector>, Full<Bytes>>,
    timeout: Duration,
}

impl Client {
    /// A client trusting the system's root certificates, giving up on a
    /// request after `timeout`.
    pub fn new(timeout: Duration) -> Result<Self, String> {
        let mut roots = rustls::RootCertStore::empty();
        for certificate in rustls_native_certs::load_native_certs().certs {
            // A system certificate rustls cannot use is no reason to stop.
            let _ = roots.add(certificate);
        }
        let tls = rustls::ClientConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("TLS configuration: {e}"))?
        .with_root_certificates(roots)
        .with_no_client_auth();
        let connector = hyper_rustls::HttpsConnectorBuilder::new()
            .with_tls_config(tls)
            .https_or_http()
            .enable_http1()
            .build();
        Ok(Client {
            inner: HyperClient::builder(TokioExecutor::new()).build(connector),
            timeout,
        })
    }

    /// `GET url` with this `Accept` header, or none.
    pub async fn get(&self, url: &Url, accept: Option<&str>) -> Result<Answer, String> {
        let headers = accept.map(|a| (header::ACCEPT, a.to_owned()));
        self.send(
            Method::GET,
            url,
            headers.into_iter().collect(),
            Bytes::new(),
        )
        .await
    }

    /// `POST url` with a JSON body.
    pub async fn post_json(
        &self,
        url: &Url,
        accept: Option<&str>,
        body: &Value,
    ) -> Result<Answer, String> {
        let mut headers = vec![(header::CONTENT_TYPE, "application/json".to_owned())];
        headers.extend(accept.map(|a| (header::ACCEPT, a.to_owned())));
        self.send(Method::POST, url, headers, Bytes::from(body.to_string()))
            .await
    }

    /// `POST url` with `body` and these headers, and no others but
    /// `User-Agent`.
    pub async fn post(
        &self,
        url: &Url,
        headers: Vec<(header::HeaderName, String)>,
        body: Vec<u8>,
    ) -> Result<Answer, String> {
        self.send(Method::POST, url, headers, Bytes::from(body))
            .await
    }

    async fn send(
        &self,
        method: Method,
        url: &Url,
        headers: Vec<(header::HeaderName, String)>,
        body: Bytes,
    ) -> Result<Answer, String> {
        let mut request = Request::builder()
            .method(method.clone())
            .uri(url.as_str())
            .header(
                header::USER_AGENT,
                concat!("trustpub-conformance/", env!("CARGO_PKG_VERSION")),
            );
        for (name, value) in headers {
            request = request.header(name, value);
        }
        let request = request
            .body(Full::new(body))
            .map_err(|e| format!("{method} {url}: {e}"))?;
        let exchange = async {
            let response = self.inner.request(request).await.map_err(|e| {
                let mut text = e.to_string();
                let mut source = std::error::Error::source(&e);
                while let Some(cause) = source {
                    text = format!("{text}: {cause}");
                    source = cause.source();
                }
                text
            })?;
            let status = response.status().as_u16();
            let content_type = response
                .headers()
                .get(header::CONTENT_TYPE)
                .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned());
            let body = Limited::new(response.into_body(), MAX_BODY_BYTES)
                .collect()
                .await
                .map_err(|e| format!("reading the answer: {e}"))?
                .to_bytes();
            Ok::<_, String>(Answer {
                status,
                content_type,
                body: String::from_utf8_lossy(&body).into_owned(),
            })
        };
        match tokio::time::timeout(self.timeout, exchange).await {
            Ok(answer) => answer.map_err(|e| format!("{method} {url}: {e}")),
            Err(_) => Err(format!(
                "{method} {url}: no answer within {} s",
                self.timeout.as_secs()
            )),
        }
    }
}
