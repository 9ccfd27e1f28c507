//! Blocking HTTP: one agent, which follows no redirect (a redirect could
//! lead to another host than PEP 807 allows) and hands every status back
//! to the caller, with the body as text.

use std::time::Duration;

use serde_json::Value;
use ureq::tls::{RootCerts, TlsConfig};

use crate::error::{Answer, Error, Result};

/// PEP 807's media type, sent as `Accept` on every request to the index.
pub const PEP_MEDIA_TYPE: &str = "application/vnd.pypi.pytp.v1+json";

/// How long one request may take, connection included.
const TIMEOUT: Duration = Duration::from_secs(30);

pub struct Http {
    agent: ureq::Agent,
}

impl Default for Http {
    fn default() -> Self {
        let config = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .max_redirects(0)
            .timeout_global(Some(TIMEOUT))
            .user_agent(concat!("trustpub-token/", env!("CARGO_PKG_VERSION")))
            // The operating system's roots (on Linux its CA bundle, or
            // SSL_CERT_FILE): self-hosted registries often have a private CA.
            .tls_config(
                TlsConfig::builder()
                    .root_certs(RootCerts::PlatformVerifier)
                    .build(),
            )
            .build();
        Http {
            agent: config.into(),
        }
    }
}

impl Http {
    /// `GET url` with `headers`.
    pub fn get(&self, url: &str, headers: &[(&str, &str)]) -> Result<Answer> {
        let mut request = self.agent.get(url);
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        read(url, request.call())
    }

    /// `POST url` with a JSON body, as PEP 807 requests are sent.
    pub fn post_json(&self, url: &str, body: &Value) -> Result<Answer> {
        let request = self
            .agent
            .post(url)
            .header("Accept", PEP_MEDIA_TYPE)
            .header("Content-Type", "application/json");
        read(url, request.send(body.to_string()))
    }
}

fn read(
    url: &str,
    response: Result<ureq::http::Response<ureq::Body>, ureq::Error>,
) -> Result<Answer> {
    let network = |error: ureq::Error| Error::Network {
        url: url.to_owned(),
        error: error.to_string(),
    };
    let mut response = response.map_err(network)?;
    let status = response.status().as_u16();
    let content_type = response
        .headers()
        .get("content-type")
        .and_then(|value| value.to_str().ok())
        .map(str::to_owned);
    let body = response.body_mut().read_to_string().map_err(network)?;
    Ok(Answer {
        status,
        content_type,
        body,
    })
}
