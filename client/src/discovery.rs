//! PEP 807 discovery, as the PEP's client steps say: the upload URL's path
//! component becomes the discovery key, the key is asked at the upload
//! URL's origin under `/.well-known/pytp`, and every URL of the answer must
//! be trustworthy and on the upload URL's host.

use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
use serde_json::Value;
use url::{Host, Url};

use crate::error::{Error, Result};
use crate::http::{Http, PEP_MEDIA_TYPE};

/// What a discovery key leaves unencoded: RFC 3986's unreserved characters.
/// Everything else, `/` and space included, is percent-encoded (PEP 807,
/// discovery step 3).
const KEY_SAFE: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// The member of a discovery document that names the registry's burn
/// endpoint (trustpub's extension; PEP 807 defines no burn).
pub const BURN_ENDPOINT: &str = "token-burn-endpoint";

/// The upload URL the user gave, checked against PEP 807's constraints.
#[derive(Debug)]
pub struct UploadUrl {
    url: Url,
    /// The path component exactly as written (RFC 3986), which the parsed
    /// URL cannot tell: it writes an empty path as `/`.
    path: String,
}

impl UploadUrl {
    pub fn parse(text: &str) -> Result<Self> {
        let url = Url::parse(text)
            .map_err(|e| Error::Usage(format!("the upload URL {text:?} is not a URL: {e}")))?;
        if url.host().is_none() {
            return Err(Error::Usage(format!("the upload URL {text:?} has no host")));
        }
        trustworthy(&url)?;
        Ok(UploadUrl {
            path: path_component(text),
            url,
        })
    }

    pub fn as_str(&self) -> &str {
        self.url.as_str()
    }

    /// The scheme and authority, e.g. `https://upload.example.com`.
    pub fn origin(&self) -> String {
        self.url.origin().ascii_serialization()
    }

    /// The discovery key of this URL's path component.
    pub fn discovery_key(&self) -> String {
        discovery_key(&self.path)
    }

    /// `<origin>/.well-known/pytp?discover=<key>` (step 4).
    pub fn discovery_url(&self) -> String {
        format!(
            "{}/.well-known/pytp?discover={}",
            self.origin(),
            self.discovery_key()
        )
    }

    /// A URL the server supplied, accepted only if it is absolute,
    /// trustworthy and on this URL's host (PEP 807's constraints).
    pub fn check_supplied(&self, text: &str) -> Result<Url> {
        let url = Url::parse(text).map_err(|e| Error::Refused {
            url: text.to_owned(),
            why: format!("the discovery document's URL is not an absolute URL ({e})"),
        })?;
        trustworthy(&url)?;
        if url.host() != self.url.host() {
            return Err(Error::Refused {
                url: text.to_owned(),
                why: format!(
                    "its host is not the upload URL's ({}); PEP 807 allows only URLs on the \
                     upload URL's host",
                    self.url.host_str().unwrap_or_default()
                ),
            });
        }
        Ok(url)
    }
}

/// The discovery key of a path: percent-encoded with everything but RFC
/// 3986's unreserved characters escaped (step 3).
pub fn discovery_key(path: &str) -> String {
    utf8_percent_encode(path, KEY_SAFE).to_string()
}

/// RFC 3986's path component of an absolute URL with an authority: what
/// follows the authority, up to the query or fragment. Empty for
/// `https://host`, which a parsed [`Url`] writes as `/`.
pub fn path_component(text: &str) -> String {
    let after_scheme = text.split_once("://").map_or(text, |(_, rest)| rest);
    let from_path = after_scheme
        .find(['/', '?', '#'])
        .map_or("", |start| &after_scheme[start..]);
    let end = from_path.find(['?', '#']).unwrap_or(from_path.len());
    from_path[..end].to_owned()
}

/// PEP 807: every URL must have a potentially trustworthy origin, which
/// here means https, or http to a loopback host.
pub fn is_trustworthy(url: &Url) -> bool {
    let loopback = match url.host() {
        Some(Host::Domain(name)) => {
            let name = name.to_ascii_lowercase();
            name == "localhost" || name.ends_with(".localhost")
        }
        Some(Host::Ipv4(address)) => address.is_loopback(),
        Some(Host::Ipv6(address)) => address.is_loopback(),
        None => false,
    };
    url.scheme() == "https" || (url.scheme() == "http" && loopback)
}

fn trustworthy(url: &Url) -> Result<()> {
    if is_trustworthy(url) {
        return Ok(());
    }
    Err(Error::Refused {
        url: url.to_string(),
        why: format!(
            "PEP 807 allows only https URLs (plain http only to a loopback address), \
             and this one is {}",
            url.scheme()
        ),
    })
}

/// What discovery found.
#[derive(Debug)]
pub struct Endpoints {
    pub audience: Url,
    pub mint: Url,
    pub burn: Option<Url>,
    /// The features the index offers, when it says.
    pub features: Option<Vec<String>>,
}

/// Discovery for `upload` (steps 4 to 6).
pub fn discover(http: &Http, upload: &UploadUrl) -> Result<Endpoints> {
    let url = upload.discovery_url();
    let answer = http.get(&url, &[("Accept", PEP_MEDIA_TYPE)])?;
    match answer.status {
        200 => {}
        404 => return Err(Error::NotDiscoverable { url, answer }),
        _ => {
            return Err(Error::Status {
                step: "discovery",
                url,
                answer,
                identity: None,
            });
        }
    }
    let document = answer.index_json(&url)?;
    if !document.is_object() {
        return Err(Error::Protocol {
            url,
            what: format!("the discovery document is not a JSON object: {document}"),
        });
    }
    let protocol = |what: String| Error::Protocol {
        url: url.clone(),
        what,
    };
    let endpoint = |name: &str| -> Result<Option<Url>> {
        match document.get(name) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(text)) => upload.check_supplied(text).map(Some),
            Some(other) => Err(protocol(format!("{name} is not a string: {other}"))),
        }
    };
    let required = |name: &str| {
        endpoint(name)?.ok_or_else(|| protocol(format!("the discovery document has no {name}")))
    };
    let features = match document.get("features") {
        None | Some(Value::Null) => None,
        Some(Value::Array(items)) => Some(
            items
                .iter()
                .map(|item| item.as_str().map(str::to_owned))
                .collect::<Option<_>>()
                .ok_or_else(|| protocol("features holds something other than strings".into()))?,
        ),
        Some(other) => return Err(protocol(format!("features is not an array: {other}"))),
    };
    Ok(Endpoints {
        audience: required("audience-endpoint")?,
        mint: required("token-mint-endpoint")?,
        burn: endpoint(BURN_ENDPOINT)?,
        features,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(url: &str) -> String {
        UploadUrl::parse(url).unwrap().discovery_key()
    }

    #[test]
    fn the_key_is_the_path_component_query_safely_encoded() {
        assert_eq!(key("https://upload.example.com/legacy/"), "%2Flegacy%2F");
        assert_eq!(key("https://upload.example.com"), "");
        assert_eq!(key("https://upload.example.com/"), "%2F");
        assert_eq!(key("https://upload.example.com?x=1"), "");
        assert_eq!(
            key("https://upload.example.com:8443/simple upload/?x#y"),
            "%2Fsimple%20upload%2F"
        );
        assert_eq!(key("https://u.example/a%20b/"), "%2Fa%2520b%2F");
        assert_eq!(key("https://u.example/a+b~c_d.e-f/"), "%2Fa%2Bb~c_d.e-f%2F");
    }

    #[test]
    fn the_discovery_url_is_at_the_origin() {
        let upload = UploadUrl::parse("https://Upload.Example.com:8443/legacy/").unwrap();
        assert_eq!(
            upload.discovery_url(),
            "https://upload.example.com:8443/.well-known/pytp?discover=%2Flegacy%2F"
        );
        assert_eq!(
            UploadUrl::parse("https://upload.example.com")
                .unwrap()
                .discovery_url(),
            "https://upload.example.com/.well-known/pytp?discover="
        );
    }

    #[test]
    fn only_https_or_loopback_http_is_trustworthy() {
        for url in [
            "https://u.example/",
            "http://127.0.0.1:8080/legacy/",
            "http://127.1.2.3/",
            "http://localhost/",
            "http://registry.localhost/",
            "http://[::1]:80/",
        ] {
            assert!(UploadUrl::parse(url).is_ok(), "{url}");
        }
        for url in [
            "http://u.example/",
            "http://10.0.0.1/",
            "ftp://u.example/",
            "http://localhost.example/",
        ] {
            assert!(
                matches!(UploadUrl::parse(url), Err(Error::Refused { .. })),
                "{url}"
            );
        }
    }

    #[test]
    fn supplied_urls_must_share_the_upload_urls_host() {
        let upload = UploadUrl::parse("https://u.example/legacy/").unwrap();
        assert!(upload.check_supplied("https://u.example:444/mint").is_ok());
        for url in [
            "https://evil.example/mint",
            "https://u.example.evil/mint",
            "/mint",
            "http://u.example/mint",
        ] {
            assert!(upload.check_supplied(url).is_err(), "{url}");
        }
    }
}
