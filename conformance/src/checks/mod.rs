//! Runs the catalogue against a server, from its upload URL alone.
//!
//! Checks run in the order a client meets the protocol: discovery, content
//! negotiation, audience, minting, trustpub's extensions; the problem-document
//! checks run last, over every 4xx/5xx answer the PEP's endpoints gave during
//! the run. A check whose prerequisite failed (no usable discovery document,
//! no audience) is skipped with that reason, so that one fault fails one
//! check, not twenty.

mod mint;
mod upload;

use std::collections::HashMap;
use std::hash::BuildHasher;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use percent_encoding::percent_decode_str;
use serde_json::{Map, Value};
use trustpub::testing::TestIssuer;
use trustpub_client::discovery::{is_trustworthy, path_component};
use url::{Origin, Url};

use crate::catalogue::CHECKS;
use crate::http::{Answer, Client, PEP_MEDIA_TYPE};
use crate::issuer::Identity;
use crate::report::{CheckResult, Report, Status};

/// What a run needs: the upload URL, who the kit's tokens say they are, and
/// where trustpub's burn-token is when it is not next to the mint endpoint.
#[derive(Debug, Clone)]
pub struct Options {
    pub upload_url: Url,
    /// The upload URL's path component as written (RFC 3986): empty for
    /// `https://host`, which `upload_url` writes as `https://host/`. A PEP
    /// 807 client makes its discovery key from this.
    pub upload_path: String,
    /// Origins whose plain-http URLs `discovery.urls-trustworthy` accepts,
    /// besides https and loopback http: those "a priori trustworthy" where
    /// the kit runs (an internal network, PEP 807's Constraints).
    pub trusted_origins: Vec<Origin>,
    pub identity: Identity,
    pub burn_endpoint: Option<Url>,
    /// How long one request may take.
    pub timeout: Duration,
    /// Whether to upload throw-away distributions to the upload URL (the
    /// `upload.*` checks, and `mint.default-features` when the mint answer
    /// does not name its features).
    pub probe_upload: bool,
}

/// The checks that want a token refused. Each is skipped unless the server
/// accepted a valid token in the same run: a server that refuses every
/// token refuses these too, and proves nothing by it.
pub const REFUSALS: [&str; 9] = [
    "mint.expired",
    "mint.not-yet-valid",
    "mint.wrong-audience",
    "mint.bad-signature",
    "mint.unknown-issuer",
    "audience.exact",
    "mint.other-publisher",
    "mint.replay",
    "mint.unknown-feature",
];

/// The features PEP 807 defines.
pub const PEP_FEATURES: [&str; 2] = ["single-use-token", "multi-use-token"];

/// A value as JSON text, for reasons.
pub(crate) fn json_text(value: &impl serde::Serialize) -> String {
    serde_json::to_string(value).unwrap_or_else(|e| format!("(unserialisable: {e})"))
}

/// The upload URL `text` as the kit uses it: parsed, and its path
/// component as written (see [`Options::upload_path`]).
pub fn upload_url(text: &str) -> Result<(Url, String), String> {
    let url = Url::parse(text).map_err(|e| format!("--upload-url {text:?}: {e}"))?;
    if !matches!(url.scheme(), "http" | "https") || !url.has_host() {
        return Err(format!(
            "--upload-url {text:?}: must be an http:// or https:// URL"
        ));
    }
    Ok((url, path_component(text)))
}

/// An origin given to `--trusted-origin`: `http(s)://host[:port]`, nothing
/// after it but an optional `/`.
pub fn trusted_origin(text: &str) -> Result<Origin, String> {
    let url = Url::parse(text).map_err(|e| format!("--trusted-origin {text:?}: {e}"))?;
    let bare = matches!(path_component(text).as_str(), "" | "/")
        && url.query().is_none()
        && url.fragment().is_none()
        && url.username().is_empty()
        && url.password().is_none();
    if !matches!(url.scheme(), "http" | "https") || !url.has_host() || !bare {
        return Err(format!(
            "--trusted-origin {text:?}: must be an origin, http(s)://host[:port]"
        ));
    }
    Ok(url.origin())
}

/// The discovery key of a (decoded) path, as the client `trustpub-token`
/// computes it: letters, digits and `-._~` kept (like Python's
/// `quote_plus` and `quote(safe="")`), spaces as `%20`.
pub use trustpub_client::discovery::discovery_key;

/// Runs every check against the server behind `options.upload_url`,
/// signing tokens with `signer` (the kit's issuer, or one holding the same
/// keys).
pub async fn run(options: &Options, signer: &TestIssuer) -> Result<Report, String> {
    let mut run = Run {
        options,
        signer,
        client: Client::new(options.timeout)?,
        errors: Vec::new(),
        successes: Vec::new(),
        token_accepted: false,
        discovery_status: None,
        uploads: 0,
        results: HashMap::new(),
    };
    let started_at = now();
    let endpoints = run.discovery().await;
    let audience = run.audience(endpoints.as_ref()).await;
    match (&endpoints, &audience) {
        (Some(endpoints), Some(audience)) => run.mint(endpoints, audience).await,
        (None, _) => run.skip_mint("no usable discovery document (see the discovery checks)"),
        (Some(_), None) => run.skip_mint("no audience (see audience.shape)"),
    }
    run.accept(endpoints.as_ref(), audience.as_deref()).await;
    run.errors();
    run.answer_types();
    let results = CHECKS
        .iter()
        .map(|check| {
            let (status, reason) = run
                .results
                .remove(check.id)
                .unwrap_or((Status::Skip, "not reached".to_owned()));
            CheckResult {
                check,
                status,
                reason,
            }
        })
        .collect();
    Ok(Report {
        upload_url: options.upload_url.to_string(),
        issuer: options.identity.issuer.clone(),
        started_at,
        results,
    })
}

/// The endpoints a usable discovery document gave.
struct Endpoints {
    audience: Url,
    mint: Url,
    /// `features`, when present and well formed.
    features: Option<Vec<String>>,
    /// The features a mint without `features` must grant: `default-features`,
    /// else `["multi-use-token"]`; `None` when that cannot be known
    /// (malformed, or naming both single- and multi-use).
    defaults: Option<Vec<String>>,
}

struct Run<'a> {
    options: &'a Options,
    signer: &'a TestIssuer,
    client: Client,
    /// Every 4xx/5xx answer of the PEP's endpoints: what was asked, and the
    /// answer.
    errors: Vec<(String, Answer)>,
    /// Every 2xx answer of the PEP's endpoints, likewise.
    successes: Vec<(String, Answer)>,
    /// Whether the server accepted a valid token in this run: until it has,
    /// a refusal proves nothing.
    token_accepted: bool,
    /// The status `discovery.ok` was answered: until it is 200, the server
    /// has not shown it serves the upload URL, and a 404 for another path
    /// proves nothing.
    discovery_status: Option<u16>,
    /// How many distributions the upload probe uploaded (each has its own
    /// version).
    uploads: u32,
    results: HashMap<&'static str, (Status, String)>,
}

pub(crate) fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

fn random_suffix() -> String {
    format!(
        "{:016x}",
        std::collections::hash_map::RandomState::new().hash_one(now())
    )
}

impl Run<'_> {
    fn set(&mut self, id: &'static str, status: Status, reason: impl Into<String>) {
        debug_assert!(CHECKS.iter().any(|c| c.id == id), "unknown check {id}");
        self.results.insert(id, (status, reason.into()));
    }

    fn pass(&mut self, id: &'static str, reason: impl Into<String>) {
        self.set(id, Status::Pass, reason);
    }

    fn fail(&mut self, id: &'static str, reason: impl Into<String>) {
        self.set(id, Status::Fail, reason);
    }

    fn skip(&mut self, id: &'static str, reason: impl Into<String>) {
        self.set(id, Status::Skip, reason);
    }

    /// Passes `id` when `problems` is empty, else fails it with them.
    fn judge(&mut self, id: &'static str, problems: Vec<String>, passed: impl Into<String>) {
        if problems.is_empty() {
            self.pass(id, passed);
        } else {
            self.fail(id, problems.join("; "));
        }
    }

    /// Keeps an answer of a PEP endpoint: a 4xx/5xx for the problem checks,
    /// a 2xx for `accept.answer-type`.
    fn keep(&mut self, what: &str, answer: &Result<Answer, String>) {
        match answer {
            Ok(answer) if answer.status >= 400 => {
                self.errors.push((what.to_owned(), answer.clone()))
            }
            Ok(answer) if (200..300).contains(&answer.status) => {
                self.successes.push((what.to_owned(), answer.clone()))
            }
            _ => {}
        }
    }

    async fn get(&mut self, what: &str, url: &Url, accept: Option<&str>) -> Result<Answer, String> {
        let answer = self.client.get(url, accept).await;
        self.keep(&format!("{what}: GET {url}"), &answer);
        answer
    }

    async fn post(
        &mut self,
        what: &str,
        url: &Url,
        accept: Option<&str>,
        body: &Value,
    ) -> Result<Answer, String> {
        let answer = self.client.post_json(url, accept, body).await;
        self.keep(&format!("{what}: POST {url}"), &answer);
        answer
    }

    fn discovery_url(&self, key: &str) -> Url {
        let origin = self.options.upload_url.origin().ascii_serialization();
        Url::parse(&format!("{origin}/.well-known/pytp?discover={key}"))
            .expect("an origin and a percent-encoded key make a URL")
    }

    /// The upload URL's path component, decoded: empty for an upload URL
    /// without a path, whose discovery key is the empty string.
    fn upload_path(&self) -> String {
        percent_decode_str(&self.options.upload_path)
            .decode_utf8_lossy()
            .into_owned()
    }

    /// Whether `discovery.ok` got a 200: the server serves the upload URL's
    /// key, so its answers for other keys mean something.
    fn discovery_served(&self) -> bool {
        self.discovery_status == Some(200)
    }

    /// The discovery checks; the endpoints when a client could use them.
    async fn discovery(&mut self) -> Option<Endpoints> {
        let path = self.upload_path();
        let url = self.discovery_url(&discovery_key(&path));
        let document = self.discovery_document(&url).await;
        self.not_found().await;
        self.empty_path(&path, document.as_ref()).await;
        self.key_space(&path, document.as_ref()).await;
        let Some(document) = document else {
            for id in [
                "discovery.fields",
                "discovery.urls-absolute",
                "discovery.urls-same-host",
                "discovery.urls-trustworthy",
                "discovery.features-shape",
                "discovery.features-known",
                "discovery.features-consistent",
            ] {
                self.skip(id, "no discovery document (see discovery.ok)");
            }
            return None;
        };
        let (features, defaults) = self.features(&document);
        let endpoints = self.endpoint_urls(&document)?;
        let [audience, mint] = endpoints;
        Some(Endpoints {
            audience,
            mint,
            features,
            defaults,
        })
    }

    /// `discovery.empty-path`: PEP 807 gives an upload URL without a path the
    /// empty key. For http(s) an empty path and `/` are the same (RFC 3986,
    /// 6.2.3), so for an upload URL at the root of its host the other of the
    /// two keys (the empty one for `https://host/`, `%2F` for
    /// `https://host`) must answer the same document as the key a client
    /// sends; for any other upload URL the empty key is a path the server
    /// serves or not (200 or 404), never a missing key. Skipped until
    /// `discovery.ok` got its document, or for another path its 200.
    async fn empty_path(&mut self, path: &str, document: Option<&Value>) {
        let id = "discovery.empty-path";
        let other_key = match path {
            "" => Some("%2F"),
            "/" => Some(""),
            _ => None,
        };
        match (other_key, document) {
            (Some(_), None) => {
                return self.skip(
                    id,
                    "no discovery document for the upload URL at the root (see discovery.ok)",
                );
            }
            (None, _) if !self.discovery_served() => {
                return self.skip(
                    id,
                    "discovery.ok got no 200: the server has not shown it serves any path, so its answer for the empty one would prove nothing",
                );
            }
            _ => {}
        }
        let url = self.discovery_url(other_key.unwrap_or_default());
        let answer = match self
            .get("discovery of the empty path", &url, Some(PEP_MEDIA_TYPE))
            .await
        {
            Ok(answer) => answer,
            Err(error) => return self.fail(id, error),
        };
        let root = other_key.is_some();
        match (root, answer.status) {
            (true, 200) if answer.json().as_ref() == document => self.pass(
                id,
                format!("GET {url} answered the document of the upload URL at the root"),
            ),
            (true, _) => self.fail(
                id,
                format!(
                    "the upload URL is at the root of its host, where the empty path and / are the same, but GET {url} answered {} instead of its document",
                    answer.summary()
                ),
            ),
            (false, 200 | 404) => self.pass(
                id,
                format!("GET {url} answered {}: the empty path is a path", answer.status),
            ),
            (false, _) => self.fail(
                id,
                format!(
                    "GET {url} answered {}, not 200 or 404: the empty key is the empty path, not a missing key",
                    answer.summary()
                ),
            ),
        }
    }

    async fn discovery_document(&mut self, url: &Url) -> Option<Value> {
        let answer = match self.get("discovery", url, Some(PEP_MEDIA_TYPE)).await {
            Ok(answer) => answer,
            Err(error) => {
                self.fail("discovery.ok", error);
                return None;
            }
        };
        self.discovery_status = Some(answer.status);
        if answer.status != 200 {
            let note = if url.query() == Some("discover=") {
                " (the upload URL has no path, so a PEP 807 client sends the empty key; for http(s) it is the same URL as with /, RFC 3986, 6.2.3)"
            } else {
                ""
            };
            self.fail(
                "discovery.ok",
                format!("GET {url} answered {}{note}", answer.summary()),
            );
            return None;
        }
        match answer.json() {
            Some(document @ Value::Object(_)) => {
                self.pass("discovery.ok", format!("GET {url}"));
                Some(document)
            }
            _ => {
                self.fail(
                    "discovery.ok",
                    format!(
                        "200, but the body is not a JSON object: {}",
                        answer.summary()
                    ),
                );
                None
            }
        }
    }

    /// The two endpoint URLs, when both are strings, absolute, on the upload
    /// URL's host and trustworthy; the three URL checks either way.
    fn endpoint_urls(&mut self, document: &Value) -> Option<[Url; 2]> {
        let names = ["audience-endpoint", "token-mint-endpoint"];
        let mut problems = Vec::new();
        let mut strings = Vec::new();
        for name in names {
            match document.get(name) {
                Some(Value::String(s)) => strings.push((name, s.clone())),
                Some(other) => {
                    problems.push(format!("{name} is {}, not a string", json_type(other)))
                }
                None => problems.push(format!("{name} is missing")),
            }
        }
        let fields_ok = problems.is_empty();
        self.judge("discovery.fields", problems, "");

        if strings.is_empty() {
            for id in [
                "discovery.urls-absolute",
                "discovery.urls-same-host",
                "discovery.urls-trustworthy",
            ] {
                self.skip(id, "no endpoint URL to check (see discovery.fields)");
            }
            return None;
        }
        let mut absolute = Vec::new();
        let mut problems = Vec::new();
        for (name, text) in &strings {
            match Url::parse(text) {
                Ok(url) if url.has_host() => absolute.push((*name, url)),
                Ok(_) => problems.push(format!("{name} {} has no host", json_text(text))),
                Err(e) => problems.push(format!(
                    "{name} {} is not an absolute URL ({e})",
                    json_text(text)
                )),
            }
        }
        let absolute_ok = problems.is_empty();
        self.judge("discovery.urls-absolute", problems, "");
        if absolute.is_empty() {
            for id in ["discovery.urls-same-host", "discovery.urls-trustworthy"] {
                self.skip(
                    id,
                    "no absolute endpoint URL to check (see discovery.urls-absolute)",
                );
            }
            return None;
        }

        let upload_host = self
            .options
            .upload_url
            .host_str()
            .unwrap_or_default()
            .to_ascii_lowercase();
        let problems = absolute
            .iter()
            .filter(|(_, url)| {
                url.host_str().unwrap_or_default().to_ascii_lowercase() != upload_host
            })
            .map(|(name, url)| {
                format!(
                    "{name} {url} is on host {}, the upload URL on {}",
                    json_text(&url.host_str().unwrap_or_default()),
                    json_text(&upload_host)
                )
            })
            .collect::<Vec<_>>();
        let same_host_ok = problems.is_empty();
        self.judge("discovery.urls-same-host", problems, "");

        let problems = absolute
            .iter()
            .filter(|(_, url)| {
                !is_trustworthy(url) && !self.options.trusted_origins.contains(&url.origin())
            })
            .map(|(name, url)| {
                format!(
                    "{name} {url} is neither https nor http to a loopback host{}",
                    if self.options.trusted_origins.is_empty() {
                        " (an origin trusted where the kit runs, e.g. on an internal network, can be given with --trusted-origin)"
                    } else {
                        ", nor of a --trusted-origin"
                    }
                )
            })
            .collect::<Vec<_>>();
        let trustworthy_ok = problems.is_empty();
        self.judge("discovery.urls-trustworthy", problems, "");

        if !(fields_ok && absolute_ok && same_host_ok && trustworthy_ok) {
            return None;
        }
        let mut urls = absolute.into_iter().map(|(_, url)| url);
        Some([urls.next()?, urls.next()?])
    }

    /// The feature checks; the advertised features when well formed, and
    /// the defaults a mint without features must grant when they are known.
    fn features(&mut self, document: &Value) -> (Option<Vec<String>>, Option<Vec<String>>) {
        let mut problems = Vec::new();
        let mut lists: [Option<Vec<String>>; 2] = [None, None];
        for (i, name) in ["features", "default-features"].into_iter().enumerate() {
            match document.get(name) {
                None => {}
                Some(Value::Array(items)) if items.iter().all(Value::is_string) => {
                    lists[i] = Some(
                        items
                            .iter()
                            .filter_map(|v| v.as_str().map(str::to_owned))
                            .collect(),
                    );
                }
                Some(other) => problems.push(format!("{name} is {other}, not an array of strings")),
            }
        }
        if !problems.is_empty() {
            self.fail("discovery.features-shape", problems.join("; "));
            for id in ["discovery.features-known", "discovery.features-consistent"] {
                self.skip(id, "features are malformed (see discovery.features-shape)");
            }
            return (None, None);
        }
        self.pass("discovery.features-shape", "");
        let [features, defaults] = lists;

        let mut problems = Vec::new();
        for (name, list) in [("features", &features), ("default-features", &defaults)] {
            let unknown: Vec<_> = list
                .iter()
                .flatten()
                .filter(|f| !PEP_FEATURES.contains(&f.as_str()))
                .collect();
            if !unknown.is_empty() {
                problems.push(format!(
                    "{name} names {}, which PEP 807 does not define (it defines {})",
                    json_text(&unknown),
                    json_text(&PEP_FEATURES)
                ));
            }
        }
        if let (Some(features), Some(defaults)) = (&features, &defaults) {
            let missing: Vec<_> = defaults.iter().filter(|d| !features.contains(d)).collect();
            if !missing.is_empty() {
                problems.push(format!(
                    "default-features {} is not within features {}: {} missing",
                    json_text(defaults),
                    json_text(features),
                    json_text(&missing)
                ));
            }
        }
        self.judge("discovery.features-known", problems, "");

        let mut problems = Vec::new();
        let explicit = defaults.is_some();
        let defaults = defaults.unwrap_or_else(|| vec!["multi-use-token".to_owned()]);
        let both = PEP_FEATURES.iter().all(|f| defaults.iter().any(|d| d == f));
        if both {
            problems.push(
                "default-features holds both single-use-token and multi-use-token".to_owned(),
            );
        }
        if let Some(features) = features.as_ref().filter(|_| !explicit)
            && !features.iter().any(|f| f == "multi-use-token")
        {
            problems.push(format!(
                "default-features is absent, so clients assume [\"multi-use-token\"], which features {} does not offer",
                json_text(features)
            ));
        }
        self.judge("discovery.features-consistent", problems, "");
        (features, (!both).then_some(defaults))
    }

    async fn not_found(&mut self) {
        if !self.discovery_served() {
            return self.skip(
                "discovery.not-found",
                "discovery.ok got no 200: a 404 from a server that serves no path proves nothing",
            );
        }
        let path = format!("/trustpub-conformance-{}/not-served/", random_suffix());
        let url = self.discovery_url(&discovery_key(&path));
        match self
            .get("discovery of an unserved path", &url, Some(PEP_MEDIA_TYPE))
            .await
        {
            Ok(answer) if answer.status == 404 => {
                self.pass("discovery.not-found", format!("GET {url}"))
            }
            Ok(answer) => self.fail(
                "discovery.not-found",
                format!("GET {url} answered {}, not 404", answer.summary()),
            ),
            Err(error) => self.fail("discovery.not-found", error),
        }
    }

    async fn key_space(&mut self, path: &str, document: Option<&Value>) {
        if !path.contains(' ') {
            self.skip(
                "discovery.key-space",
                "the upload URL's path has no space; run the kit with an upload URL whose path has one (e.g. /my index/) to check it",
            );
            return;
        }
        let Some(document) = document else {
            self.skip(
                "discovery.key-space",
                "no discovery document (see discovery.ok)",
            );
            return;
        };
        let key = discovery_key(path);
        let mut problems = Vec::new();
        for (form, key) in [("+", key.replace("%20", "+")), ("%20", key)] {
            let url = self.discovery_url(&key);
            match self.get("discovery", &url, Some(PEP_MEDIA_TYPE)).await {
                Ok(answer) if answer.status == 200 && answer.json().as_ref() == Some(document) => {}
                Ok(answer) if answer.status == 200 => problems.push(format!(
                    "with {form}, GET {url} answered another document: {}",
                    answer.summary()
                )),
                Ok(answer) => problems.push(format!(
                    "with {form}, GET {url} answered {}",
                    answer.summary()
                )),
                Err(error) => problems.push(error),
            }
        }
        self.judge(
            "discovery.key-space",
            problems,
            "both forms answer the same document",
        );
    }

    /// `audience.shape`; the audience when there is one.
    async fn audience(&mut self, endpoints: Option<&Endpoints>) -> Option<String> {
        let Some(endpoints) = endpoints else {
            self.skip(
                "audience.shape",
                "no usable discovery document (see the discovery checks)",
            );
            return None;
        };
        let url = endpoints.audience.clone();
        let answer = match self.get("audience", &url, Some(PEP_MEDIA_TYPE)).await {
            Ok(answer) => answer,
            Err(error) => {
                self.fail("audience.shape", error);
                return None;
            }
        };
        let audience = (answer.status == 200)
            .then(|| answer.json())
            .flatten()
            .and_then(|v| v.get("audience").and_then(Value::as_str).map(str::to_owned))
            .filter(|a| !a.is_empty());
        match &audience {
            Some(audience) => self.pass(
                "audience.shape",
                format!("audience {}", json_text(audience)),
            ),
            None => self.fail(
                "audience.shape",
                format!(
                    "GET {url} answered {}; expected 200 and {{\"audience\": \"…\"}}",
                    answer.summary()
                ),
            ),
        }
        audience
    }

    /// The Accept checks, on the discovery and audience endpoints, and on
    /// the mint endpoint with a valid token: for 406, and for a missing
    /// `Accept` once a valid token was accepted in this run.
    async fn accept(&mut self, endpoints: Option<&Endpoints>, audience: Option<&str>) {
        // A discovery URL answered 404 is not served: nothing to negotiate.
        let mut targets = Vec::new();
        if self.discovery_status != Some(404) {
            targets.push(self.discovery_url(&discovery_key(&self.upload_path())));
        }
        if let Some(endpoints) = endpoints {
            targets.push(endpoints.audience.clone());
        }
        if targets.is_empty() {
            for id in [
                "accept.vendor",
                "accept.missing",
                "accept.any",
                "accept.other-406",
            ] {
                self.skip(
                    id,
                    "no endpoint is served: discovery.ok got 404 (see discovery.ok)",
                );
            }
            return;
        }
        let mint = endpoints.map(|e| e.mint.clone()).zip(audience);
        let cases: [(&'static str, Option<&str>, u16); 4] = [
            ("accept.vendor", Some(PEP_MEDIA_TYPE), 200),
            ("accept.missing", None, 200),
            ("accept.any", Some("*/*"), 200),
            ("accept.other-406", Some("text/html"), 406),
        ];
        for (id, accept, expected) in cases {
            let mut problems = Vec::new();
            let mut checked = targets.len();
            for url in &targets {
                match self.get("content negotiation", url, accept).await {
                    Ok(answer) if answer.status == expected => {}
                    Ok(answer) => problems.push(format!("GET {url} answered {}", answer.summary())),
                    Err(error) => problems.push(error),
                }
            }
            // Minting without Accept is judged only against a server that
            // mints with it; 406 comes before any look at the token.
            let mint_too = match id {
                "accept.missing" => self.token_accepted,
                "accept.other-406" => true,
                _ => false,
            };
            if let Some((url, audience)) = mint.as_ref().filter(|_| mint_too) {
                checked += 1;
                let body = serde_json::json!({ "token": self.valid_token(audience) });
                let answer = self.post("content negotiation", url, accept, &body).await;
                let problem = match (expected, &answer) {
                    (406, Ok(answer)) if answer.status == 406 => None,
                    (406, Ok(answer)) => Some(answer.summary()),
                    (_, _) => mint::credential(&answer).err(),
                };
                if let Some(problem) = problem {
                    problems.push(format!("POST {url} (a valid token) answered {problem}"));
                }
            }
            let header = accept.map_or("no Accept".to_owned(), |a| format!("Accept: {a}"));
            let mut passed = format!("{header} → {expected} on {checked} endpoint(s)");
            if id == "accept.missing" && !self.token_accepted {
                passed.push_str(
                    " (not on the mint endpoint: no valid token was accepted in this run)",
                );
            }
            if id == "accept.any" && !problems.is_empty() {
                // PEP 807 asks for 406 here; RFC 9110 lets */* match anything.
                self.set(
                    id,
                    Status::Info,
                    format!(
                        "{}: upload clients send Accept: */* today (twine, uv), so they cannot use this server; PEP 807 allows the 406",
                        problems.join("; ")
                    ),
                );
            } else {
                self.judge(id, problems, passed);
            }
        }
    }

    /// A valid RS256 token for `audience`, with a fresh `jti`.
    fn valid_token(&self, audience: &str) -> String {
        self.signer.sign(&self.claims(audience))
    }

    fn claims(&self, audience: &str) -> Value {
        self.options.identity.claims(audience, now()).build()
    }

    fn skip_mint(&mut self, reason: &str) {
        for check in CHECKS {
            let minting = ["mint.", "upload.", "trustpub."]
                .iter()
                .any(|area| check.id.starts_with(area))
                || check.id == "audience.exact";
            if minting {
                self.skip(check.id, reason);
            }
        }
    }

    /// `accept.answer-type`, over every 2xx answer kept during the run.
    fn answer_types(&mut self) {
        let id = "accept.answer-type";
        if self.successes.is_empty() {
            return self.skip(id, "no 2xx answer was seen");
        }
        let seen = self.successes.len();
        let faults: Vec<String> = self
            .successes
            .iter()
            .filter(|(_, answer)| {
                !matches!(
                    answer.media_type().as_deref(),
                    Some(PEP_MEDIA_TYPE | "application/json")
                )
            })
            .map(|(what, answer)| labelled(what, answer))
            .collect();
        self.judge(
            id,
            first_faults(faults, seen),
            format!("{seen} successful answers checked"),
        );
    }

    /// The problem checks, over every 4xx/5xx answer kept during the run.
    fn errors(&mut self) {
        if self.errors.is_empty() {
            for id in ["errors.problem-document", "errors.content-type"] {
                self.skip(id, "no 4xx/5xx answer was seen");
            }
            return;
        }
        let seen = self.errors.len();
        let mut documents = Vec::new();
        let mut types = Vec::new();
        for (what, answer) in &self.errors {
            if let Some(problem) = problem_document_fault(answer) {
                documents.push(format!("{what} answered {}: {problem}", answer.summary()));
            }
            if answer.media_type().as_deref() != Some("application/problem+json") {
                types.push(labelled(what, answer));
            }
        }
        self.judge(
            "errors.problem-document",
            first_faults(documents, seen),
            format!("{seen} error answers checked"),
        );
        self.judge(
            "errors.content-type",
            first_faults(types, seen),
            format!("{seen} error answers checked"),
        );
    }
}

/// What is wrong with a problem document, if anything. RFC 9457 makes every
/// member optional; those present must have its types, and `status` must be
/// the HTTP status.
fn problem_document_fault(answer: &Answer) -> Option<String> {
    let Some(Value::Object(document)) = answer.json() else {
        return Some("the body is not a JSON object".to_owned());
    };
    let mut faults = Vec::new();
    match document.get("status") {
        None => {}
        Some(status) if status.as_u64() == Some(u64::from(answer.status)) => {}
        Some(status) if status.is_u64() => faults.push(format!(
            "status is {status}, the HTTP status {}",
            answer.status
        )),
        Some(status) => faults.push(format!("status is {status}, not an integer")),
    }
    for member in ["type", "title", "detail", "instance"] {
        if let Some(value) = document.get(member).filter(|v| !v.is_string()) {
            faults.push(format!("{member} is {value}, not a string"));
        }
    }
    (!faults.is_empty()).then(|| faults.join(", "))
}

/// What `what` was answered, and as which `Content-Type`.
fn labelled(what: &str, answer: &Answer) -> String {
    format!(
        "{what} answered {} as {}",
        answer.status,
        answer
            .content_type
            .as_deref()
            .unwrap_or("(no Content-Type)")
    )
}

/// The first three of `faults` found among `seen` answers, and how many
/// more there are.
fn first_faults(mut faults: Vec<String>, seen: usize) -> Vec<String> {
    let more = faults.len().saturating_sub(3);
    faults.truncate(3);
    if more > 0 {
        faults.push(format!("and {more} more of {seen}"));
    }
    faults
}

fn json_type(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// The members of a mint request besides `token`.
pub(crate) type Extra = Map<String, Value>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_encode_like_quote_plus_but_with_percent_20() {
        assert_eq!(discovery_key("/legacy/"), "%2Flegacy%2F");
        assert_eq!(
            discovery_key("/my index/a+b~c_d.e-f/"),
            "%2Fmy%20index%2Fa%2Bb~c_d.e-f%2F"
        );
        assert_eq!(discovery_key("/é"), "%2F%C3%A9");
    }

    #[test]
    fn the_upload_path_is_the_path_component_as_written() {
        for (text, path) in [
            ("https://u.example", ""),
            ("https://u.example?x=1", ""),
            ("https://u.example/", "/"),
            (
                "http://127.0.0.1:8080/my index/legacy/",
                "/my index/legacy/",
            ),
        ] {
            let (url, found) = upload_url(text).unwrap();
            assert_eq!(found, path, "{text}");
            assert!(url.path().starts_with('/'), "{text}");
        }
        assert!(upload_url("ftp://u.example/").is_err());
    }

    #[test]
    fn trusted_origins_are_bare_origins() {
        let origin = trusted_origin("http://pypi.internal:8080").unwrap();
        assert_eq!(
            origin,
            trusted_origin("http://PYPI.internal:8080/").unwrap()
        );
        let endpoint = Url::parse("http://pypi.internal:8080/_/mint").unwrap();
        assert_eq!(endpoint.origin(), origin);
        let elsewhere = Url::parse("http://pypi.internal:8081/_/mint").unwrap();
        assert_ne!(elsewhere.origin(), origin);
        for bad in [
            "http://pypi.internal/legacy/",
            "http://pypi.internal/?q",
            "http://user@pypi.internal",
            "ftp://pypi.internal",
            "pypi.internal",
        ] {
            assert!(trusted_origin(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn problem_members_are_optional_but_typed_and_status_matches() {
        let answer = |status, body: &str| Answer {
            status,
            content_type: Some("application/problem+json".into()),
            body: body.into(),
        };
        for fine in [
            r#"{"status":404,"title":"t","type":"/p"}"#,
            r#"{"title":"no type, no status"}"#,
            r#"{}"#,
        ] {
            assert_eq!(problem_document_fault(&answer(404, fine)), None, "{fine}");
        }
        for (bad, fault) in [
            (r#"{"status":400,"title":"t"}"#, "status is 400"),
            (r#"{"status":"404"}"#, "not an integer"),
            (r#"{"type":7}"#, "type is 7"),
            (r#"{"title":["t"]}"#, "title is [\"t\"]"),
            (r#"{"detail":null}"#, "detail is null"),
            ("Not Found", "not a JSON object"),
        ] {
            let found = problem_document_fault(&answer(404, bad)).unwrap_or_default();
            assert!(found.contains(fault), "{bad}: {found}");
        }
    }
}
