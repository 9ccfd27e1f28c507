//! PEP 807's token exchange after discovery: the audience, the identity
//! token for it, the mint; and the burn that `exec` does afterwards.

use std::fmt;

use serde_json::{Value, json};
use url::Url;

use crate::claims;
use crate::discovery::{self, Endpoints, UploadUrl};
use crate::error::{Error, Result};
use crate::http::{Http, PEP_MEDIA_TYPE};
use crate::identity::Source;

/// PyPI's burn endpoint, tried at the upload URL's origin when discovery
/// names none.
const PYPI_BURN_PATH: &str = "/_/oidc/burn-token";

/// An upload credential. Its `Debug` never shows it.
pub struct Credential(String);

impl Credential {
    pub fn secret(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Credential {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Credential([redacted])")
    }
}

/// What to mint.
pub struct MintRequest {
    pub upload: UploadUrl,
    /// PEP 807 features to ask for; none: the index's defaults.
    pub features: Vec<String>,
    /// trustpub's extension: narrow the credential to these packages.
    pub packages: Vec<String>,
    pub source: Source,
}

/// A minted credential, and where to burn it.
#[derive(Debug)]
pub struct Minted {
    pub credential: Credential,
    /// Unix time, when the index says.
    pub expires: Option<i64>,
    pub burn: Url,
    /// Whether discovery named `burn`, or it is PyPI's path, guessed.
    pub burn_discovered: bool,
}

/// Discovery, audience, identity token, mint.
pub fn mint(http: &Http, request: &MintRequest) -> Result<Minted> {
    let upload = &request.upload;
    let endpoints = discovery::discover(http, upload)?;
    check_features(&endpoints, &request.features)?;
    let audience = audience(http, &endpoints)?;
    let identity = request.source.identity_token(http, &audience)?;
    check_audience(&identity, &audience)?;

    let mut body = json!({ "token": identity });
    if !request.features.is_empty() {
        body["features"] = json!(request.features);
    }
    if !request.packages.is_empty() {
        body["packages"] = json!(request.packages);
    }
    let url = endpoints.mint.as_str();
    let answer = http.post_json(url, &body)?;
    if answer.status != 200 {
        return Err(Error::Status {
            step: "the mint",
            url: url.to_owned(),
            answer,
            identity: Some(identity),
        });
    }
    let document = answer.index_json(url)?;
    let token = match document.get("token") {
        Some(Value::String(token)) if !token.is_empty() => token,
        other => {
            return Err(Error::Protocol {
                url: url.to_owned(),
                // Not its value: whatever it is, it may be the credential.
                what: format!(
                    "the mint's answer has no token string (its token is {})",
                    json_kind(other)
                ),
            });
        }
    };
    let (burn, burn_discovered) = match endpoints.burn {
        Some(burn) => (burn, true),
        None => (pypi_burn_url(upload)?, false),
    };
    Ok(Minted {
        credential: Credential(token.to_owned()),
        expires: document.get("expires").and_then(Value::as_i64),
        burn,
        burn_discovered,
    })
}

/// What a JSON value is, in words.
fn json_kind(value: Option<&Value>) -> &'static str {
    match value {
        None => "missing",
        Some(Value::Null) => "null",
        Some(Value::Bool(_)) => "a boolean",
        Some(Value::Number(_)) => "a number",
        Some(Value::String(_)) => "an empty string",
        Some(Value::Array(_)) => "an array",
        Some(Value::Object(_)) => "an object",
    }
}

fn pypi_burn_url(upload: &UploadUrl) -> Result<Url> {
    let text = format!("{}{PYPI_BURN_PATH}", upload.origin());
    Url::parse(&text).map_err(|e| Error::Usage(format!("{text}: {e}")))
}

/// Refuses a feature the index says it does not offer, before anything is
/// asked of the CI.
fn check_features(endpoints: &Endpoints, wanted: &[String]) -> Result<()> {
    let Some(offered) = &endpoints.features else {
        return Ok(());
    };
    match wanted.iter().find(|f| !offered.contains(f)) {
        Some(feature) => Err(Error::Usage(format!(
            "the index does not offer the feature {feature} (it offers: {})",
            offered.join(", ")
        ))),
        None => Ok(()),
    }
}

/// The audience endpoint's `{"audience": …}`.
fn audience(http: &Http, endpoints: &Endpoints) -> Result<String> {
    let url = endpoints.audience.as_str();
    let answer = http
        .get(url, &[("Accept", PEP_MEDIA_TYPE)])?
        .ok("the audience request", url)?;
    match answer
        .index_json(url)?
        .get("audience")
        .and_then(Value::as_str)
    {
        Some(audience) if !audience.is_empty() => Ok(audience.to_owned()),
        _ => Err(Error::Protocol {
            url: url.to_owned(),
            what: "the answer has no audience string".into(),
        }),
    }
}

/// A token that says it is for another audience would be refused: say why
/// now, in the CI's terms. A token that cannot be read goes to the index,
/// which decides.
fn check_audience(token: &str, audience: &str) -> Result<()> {
    match claims::audiences(token) {
        Some(audiences) if !audiences.iter().any(|a| a == audience) => {
            Err(Error::Identity(format!(
                "the identity token is for the audience {audiences:?}, and the index wants \
                 {audience:?}: ask the CI for a token with that audience"
            )))
        }
        _ => Ok(()),
    }
}

/// Revokes `minted`'s credential at its burn endpoint.
pub fn burn(http: &Http, minted: &Minted) -> Result<()> {
    let url = minted.burn.as_str();
    let answer = http.post_json(url, &json!({ "token": minted.credential.secret() }))?;
    match answer.status {
        200..=299 => Ok(()),
        _ => Err(Error::Status {
            step: "the burn",
            url: url.to_owned(),
            answer,
            identity: None,
        }),
    }
}
