//! The one error type of the client, and how it reads on stderr: what went
//! wrong, at which URL, and, for a refusal, the server's problem document
//! and the identity token's claims that a publisher is configured from.

use std::fmt;

use serde_json::Value;

use crate::claims;
use crate::http::PEP_MEDIA_TYPE;

#[derive(Debug)]
pub enum Error {
    /// The command line or an input is unusable.
    Usage(String),
    /// A URL that PEP 807 forbids the client to use.
    Refused { url: String, why: String },
    /// The request did not get an answer.
    Network { url: String, error: String },
    /// The server does not do PEP 807 discovery for this upload URL (404).
    NotDiscoverable { url: String, answer: Answer },
    /// The server answered with an error status.
    Status {
        step: &'static str,
        url: String,
        answer: Answer,
        /// The identity token, when the refusal concerns it (the mint).
        identity: Option<String>,
    },
    /// The server answered 2xx with a body the protocol does not allow.
    Protocol { url: String, what: String },
    /// The CI's identity token could not be had.
    Identity(String),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// An HTTP answer: its status, its `Content-Type` and its body, as text.
#[derive(Debug)]
pub struct Answer {
    pub status: u16,
    pub content_type: Option<String>,
    pub body: String,
}

impl Answer {
    /// This answer when it is `200 OK`, else the refusal of `step` at `url`.
    pub fn ok(self, step: &'static str, url: &str) -> Result<Self> {
        if self.status == 200 {
            return Ok(self);
        }
        Err(Error::Status {
            step,
            url: url.to_owned(),
            answer: self,
            identity: None,
        })
    }

    /// The body of a successful answer of the index (discovery, audience,
    /// mint) as JSON. It must be labelled JSON when it is labelled at all:
    /// a 200 labelled `text/html` is a login page or a proxy's, whatever its
    /// body looks like (the answer types the conformance kit requires).
    pub fn index_json(&self, url: &str) -> Result<Value> {
        if let Some(label) = &self.content_type {
            let media_type = label.split(';').next().unwrap_or_default().trim();
            let media_type = media_type.to_ascii_lowercase();
            if media_type != PEP_MEDIA_TYPE
                && media_type != "application/json"
                && !media_type.ends_with("+json")
            {
                return Err(Error::Protocol {
                    url: url.to_owned(),
                    what: format!(
                        "the answer is labelled {label}, not {PEP_MEDIA_TYPE} or \
                         application/json: {}",
                        excerpt(&self.body)
                    ),
                });
            }
        }
        self.json(url)
    }

    /// The body as JSON, or a protocol error naming `url`.
    pub fn json(&self, url: &str) -> Result<Value> {
        serde_json::from_str(&self.body).map_err(|e| Error::Protocol {
            url: url.to_owned(),
            what: format!("the answer is not JSON ({e}): {}", excerpt(&self.body)),
        })
    }
}

/// At most the first 300 characters of a body, on one line.
fn excerpt(body: &str) -> String {
    let line: String = body.split_whitespace().collect::<Vec<_>>().join(" ");
    match line.char_indices().nth(300) {
        Some((end, _)) => format!("{}…", &line[..end]),
        None => line,
    }
}

impl fmt::Display for Answer {
    /// An RFC 9457 problem document as its status, title, code and detail
    /// (and trustpub's `errors`), anything else as an excerpt.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let document = serde_json::from_str::<Value>(&self.body)
            .ok()
            .filter(|d| d.get("title").is_some() || d.get("detail").is_some());
        let Some(document) = document else {
            return write!(f, "HTTP {}: {}", self.status, excerpt(&self.body));
        };
        let text = |name: &str| document.get(name).and_then(Value::as_str);
        write!(f, "HTTP {}", self.status)?;
        if let Some(title) = text("title") {
            write!(f, ": {title}")?;
        }
        if let Some(code) = text("code") {
            write!(f, " (code {code})")?;
        }
        if let Some(detail) = text("detail") {
            write!(f, "\n  {detail}")?;
        }
        Ok(())
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Usage(message) | Error::Identity(message) => f.write_str(message),
            Error::Refused { url, why } => write!(f, "refusing {url}: {why}"),
            Error::Network { url, error } => write!(f, "no answer from {url}: {error}"),
            Error::NotDiscoverable { url, answer } => write!(
                f,
                "the server does not offer Trusted Publishing (PEP 807) for this upload URL: \
                 {url} answered 404\n{answer}"
            ),
            Error::Status {
                step,
                url,
                answer,
                identity,
            } => {
                write!(f, "{step} was refused by {url}\n{answer}")?;
                if let Some(token) = identity {
                    write_claims(f, token)?;
                }
                Ok(())
            }
            Error::Protocol { url, what } => write!(f, "unusable answer from {url}: {what}"),
        }
    }
}

/// The claims a trusted publisher is configured from, read from the token
/// without verifying it: for diagnosis only.
fn write_claims(f: &mut fmt::Formatter<'_>, token: &str) -> fmt::Result {
    let Some(claims) = claims::decode(token) else {
        return write!(f, "\nThe identity token could not be decoded.");
    };
    write!(
        f,
        "\nThe identity token's claims that a trusted publisher matches (not verified here):"
    )?;
    for (name, value) in claims::relevant(&claims) {
        write!(f, "\n  {name}: {value}")?;
    }
    Ok(())
}

impl std::error::Error for Error {}
