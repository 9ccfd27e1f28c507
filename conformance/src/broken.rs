//! Deliberately broken PEP 807 servers: trustpub behind a proxy that breaks
//! one rule at a time. The kit's tests run the kit against each, and fail
//! unless exactly the checks that rule is about fail; the client's tests run
//! `trustpub-token` against each, and fail unless it notices what a client
//! can. The control (no breakage) shows the proxy itself is faithful.
//!
//! Breakages of token verification work by laundering: the proxy rewrites
//! the token's offending claim (or its signature) and signs it again with the
//! kit's key, so trustpub accepts what a lax server would have accepted.
//!
//! Only with the feature `broken-servers`, for tests.

use std::collections::HashSet;
use std::net::TcpListener;
use std::sync::{Arc, Mutex};

use actix_web::http::StatusCode;
use actix_web::{App, HttpRequest, HttpResponse, HttpServer, web};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Value, json};
use trustpub::testing::{TestIssuer, TestServer};

use crate::checks::discovery_key;
use crate::http::PEP_MEDIA_TYPE;
use crate::issuer::{self, Identity};

/// The one rule a proxy breaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Breakage {
    None,
    DiscoveryNotAnObject,
    VendorTypeRefused,
    MintEndpointMissing,
    RelativeUrls,
    OtherHost,
    UntrustworthyScheme,
    EveryPathServed,
    PlusTakenLiterally,
    FeaturesNotAnArray,
    ConflictingDefaults,
    MissingAcceptRefused,
    AnyAcceptIs406,
    AcceptIgnored,
    ProblemStatusWrong,
    ProblemServedAsJson,
    AudienceMisnamed,
    AudienceByPrefix,
    AudienceIgnored,
    TokenNotAString,
    ShortExpiry,
    Es256Refused,
    ExpiredAccepted,
    FutureAccepted,
    SignatureIgnored,
    IssuerIgnored,
    ReplayAllowed,
    SingleUseRefused,
    MultiUseRefused,
    UnknownFeaturesDropped,
    PackagesIgnored,
    BurnFails,
    BurnAccepted,
    HtmlSuccess,
    HtmlMint,
    MintNeedsAccept,
    UnknownFeatureAdvertised,
    DefaultNotAdvertised,
    DefaultMisreported,
    FeaturesUnreported,
    FeaturesUnreportedDefaultWrong,
    OtherRepositoryAccepted,
    OtherOwnerAccepted,
    OtherWorkflowAccepted,
    SingleUseReusable,
    MultiUseSpent,
    EmptyKeyRefused,
    RootControl,
    RootEmptyKeyNotFound,
    ProblemMinimal,
    IssuerNotTrusted,
    TextSuccess,
    BareRootControl,
    BareRootEmptyKeyNotFound,
    DiscoveryNotFound,
    InternalNetwork,
    InternalNetworkTrusted,
}

use Breakage::*;

/// Each breakage, the registry name it runs under, and the checks it must
/// fail (all others pass, skip or, for INFO checks, note). An empty list is
/// a conforming variant.
#[rustfmt::skip]
pub const CASES: &[(Breakage, &str, &[&str])] = &[
    (None, "control", &[]),
    (DiscoveryNotAnObject, "discovery-array", &["discovery.ok"]),
    (VendorTypeRefused, "vendor-refused", &["discovery.ok", "accept.vendor"]),
    (MintEndpointMissing, "no-mint-endpoint", &["discovery.fields"]),
    (RelativeUrls, "relative-urls", &["discovery.urls-absolute"]),
    (OtherHost, "other-host", &["discovery.urls-same-host"]),
    (UntrustworthyScheme, "ftp-urls", &["discovery.urls-trustworthy"]),
    (EveryPathServed, "serves-every-path", &["discovery.not-found"]),
    (PlusTakenLiterally, "literal-plus", &["discovery.key-space"]),
    (FeaturesNotAnArray, "features-string", &["discovery.features-shape"]),
    (ConflictingDefaults, "conflicting-defaults", &["discovery.features-consistent"]),
    (MissingAcceptRefused, "no-accept-refused", &["accept.missing"]),
    (AnyAcceptIs406, "any-406", &[]),
    (AcceptIgnored, "accept-ignored", &["accept.other-406"]),
    (ProblemStatusWrong, "problem-status", &["errors.problem-document"]),
    (ProblemServedAsJson, "problem-as-json", &["errors.content-type"]),
    (AudienceMisnamed, "audience-misnamed", &["audience.shape"]),
    (AudienceByPrefix, "audience-prefix", &["audience.exact"]),
    (AudienceIgnored, "audience-ignored", &["audience.exact", "mint.wrong-audience"]),
    (TokenNotAString, "token-number", &["mint.valid", "mint.es256", "mint.single-use", "mint.multi-use"]),
    (ShortExpiry, "short-expiry", &["mint.expires"]),
    (Es256Refused, "no-es256", &["mint.es256"]),
    (ExpiredAccepted, "expired-accepted", &["mint.expired"]),
    (FutureAccepted, "future-accepted", &["mint.not-yet-valid"]),
    (SignatureIgnored, "signature-ignored", &["mint.bad-signature"]),
    (IssuerIgnored, "issuer-ignored", &["mint.unknown-issuer"]),
    (ReplayAllowed, "replay-allowed", &["mint.replay"]),
    (SingleUseRefused, "no-single-use", &["mint.single-use"]),
    (MultiUseRefused, "no-multi-use", &["mint.multi-use"]),
    (UnknownFeaturesDropped, "unknown-features-dropped", &["mint.unknown-feature"]),
    (PackagesIgnored, "packages-ignored", &["trustpub.packages"]),
    (BurnFails, "burn-fails", &["trustpub.burn-token"]),
    (BurnAccepted, "burn-accepted", &[]),
    (HtmlSuccess, "html-success", &["accept.answer-type"]),
    (HtmlMint, "html-mint", &["accept.answer-type"]),
    (MintNeedsAccept, "mint-needs-accept", &["accept.missing"]),
    (UnknownFeatureAdvertised, "unknown-feature-advertised", &["discovery.features-known"]),
    (DefaultNotAdvertised, "default-not-advertised", &["discovery.features-known"]),
    (DefaultMisreported, "default-misreported", &["mint.default-features"]),
    (FeaturesUnreported, "features-unreported", &[]),
    (FeaturesUnreportedDefaultWrong, "features-unreported-default-wrong", &["mint.default-features"]),
    (OtherRepositoryAccepted, "other-repository", &["mint.other-publisher"]),
    (OtherOwnerAccepted, "other-owner", &["mint.other-publisher"]),
    (OtherWorkflowAccepted, "other-workflow", &["mint.other-publisher"]),
    (SingleUseReusable, "single-use-reusable", &["upload.single-use"]),
    (MultiUseSpent, "multi-use-spent", &["upload.multi-use"]),
    (EmptyKeyRefused, "empty-key-refused", &["discovery.empty-path"]),
    (RootControl, "root", &[]),
    (RootEmptyKeyNotFound, "root-empty-key-404", &["discovery.empty-path"]),
    (ProblemMinimal, "problem-minimal", &[]),
    (IssuerNotTrusted, "issuer-not-trusted", &["mint.valid", "mint.es256", "mint.single-use", "mint.multi-use"]),
    (TextSuccess, "text-success", &["accept.answer-type"]),
    (BareRootControl, "bare-root", &[]),
    // A client given `http://host` sends the empty key: a server that
    // answers only `%2F` fails it that client's discovery.
    (BareRootEmptyKeyNotFound, "bare-root-empty-key-404", &["discovery.ok"]),
    (DiscoveryNotFound, "discovery-404", &["discovery.ok"]),
    (InternalNetwork, "internal", &["discovery.urls-trustworthy"]),
    (InternalNetworkTrusted, "internal-trusted", &[]),
];

/// The checks a conforming variant may skip, because its setup gives them
/// nothing to check; every other check of a conforming run passes (or, for
/// INFO, notes). `None` for the cases that break something.
pub fn conforming_skips(breakage: Breakage) -> Option<&'static [&'static str]> {
    match breakage {
        // No space in the root's path.
        RootControl | BareRootControl => Some(&["discovery.key-space"]),
        None
        | AnyAcceptIs406
        | BurnAccepted
        | FeaturesUnreported
        | ProblemMinimal
        | InternalNetworkTrusted => Some(&[]),
        _ => Option::None,
    }
}

/// The origin a client of the case is given: the proxy's own
/// (`http://127.0.0.1:<port>`) but for a bare root on a host of its own
/// (one gateway per host and path: RootControl has 127.0.0.1's root), and
/// for the internal network, whose plain-http origin is not loopback to the
/// kit's rule, though 0.0.0.0 reaches this machine's listeners.
fn client_origin(breakage: Breakage, origin: &str) -> String {
    match breakage {
        BareRootControl => origin.replace("127.0.0.1", "localhost"),
        InternalNetwork | InternalNetworkTrusted => origin.replace("127.0.0.1", "0.0.0.0"),
        _ => origin.to_owned(),
    }
}

struct Proxy {
    breakage: Breakage,
    /// trustpub's address.
    backend: String,
    /// This proxy's origin (`http://127.0.0.1:<port>`).
    origin: String,
    /// The origin the kit is given ([`client_origin`]).
    client_origin: String,
    /// The registry's upload path and audience.
    upload_path: String,
    audience: String,
    client: reqwest::Client,
    signer: Arc<TestIssuer>,
    /// The identity tokens seen so far (for `ReplayAllowed`), and the
    /// upload credentials (for `SingleUseReusable` and `MultiUseSpent`).
    seen: Mutex<HashSet<String>>,
}

/// One broken server of [`BrokenServers`].
pub struct BrokenServer {
    pub breakage: Breakage,
    /// Its registry's name in trustpub.
    pub name: &'static str,
    /// The kit's checks it must fail.
    pub fails: &'static [&'static str],
    /// The upload URL to give a client: the proxy's origin as the client
    /// is given it, and the registry's path.
    pub upload_url: String,
    /// The origins the kit is told to trust (`--trusted-origin`).
    pub trusted_origins: Vec<String>,
}

/// One trustpub serving a registry per case of [`CASES`], each behind its
/// own proxy, and the kit's issuer that the registries trust. They run as
/// long as this value lives (on the Tokio runtime that started them).
pub struct BrokenServers {
    /// The kit's issuer, as `TestIssuer`: its GitHub Actions token endpoint
    /// hands out tokens of the publisher every registry trusts.
    pub issuer: Arc<TestIssuer>,
    pub servers: Vec<BrokenServer>,
    _trustpub: TestServer,
}

impl BrokenServers {
    /// Starts every case of [`CASES`]. Must run inside a Tokio runtime.
    pub async fn start() -> Self {
        let issuer = kit_issuer();
        let index = accepting_index();
        let (trustpub_listener, backend) = bind();
        let mut registries = String::new();
        let mut proxies = Vec::new();
        let mut servers = Vec::new();
        for &(breakage, name, fails) in CASES {
            let (listener, origin) = bind();
            let upload_path = match breakage {
                RootControl | RootEmptyKeyNotFound => "/".to_owned(),
                BareRootControl | BareRootEmptyKeyNotFound => String::new(),
                _ => format!("/v/{name} index/legacy/"),
            };
            let client_origin = client_origin(breakage, &origin);
            // trustpub's configuration wants a loopback host for plain http.
            let registry_url = match breakage {
                InternalNetwork | InternalNetworkTrusted => format!("{origin}{upload_path}"),
                _ => format!("{client_origin}{upload_path}"),
            };
            // Gateways are told apart by host without port and path: only one
            // of the registries at the root of a host can have one.
            registries.push_str(&match breakage {
                RootEmptyKeyNotFound | BareRootEmptyKeyNotFound => {
                    registry(issuer.url(), name, &registry_url)
                }
                _ => registry_with_gateway(issuer.url(), name, &registry_url, &index),
            });
            let upload_url = format!("{client_origin}{upload_path}");
            let trusted_origins = if breakage == InternalNetworkTrusted {
                vec![client_origin.clone()]
            } else {
                Vec::new()
            };
            let proxy = Proxy {
                breakage,
                backend: backend.clone(),
                origin,
                client_origin,
                upload_path,
                audience: audience_of(name),
                client: reqwest::Client::builder()
                    .redirect(reqwest::redirect::Policy::none())
                    .build()
                    .unwrap(),
                signer: issuer.clone(),
                seen: Mutex::default(),
            };
            proxies.push((listener, proxy));
            servers.push(BrokenServer {
                breakage,
                name,
                fails,
                upload_url,
                trusted_origins,
            });
        }
        let trustpub = TestServer::start(trustpub_listener, &registries).await;
        for (listener, proxy) in proxies {
            start_proxy(listener, proxy);
        }
        BrokenServers {
            issuer,
            servers,
            _trustpub: trustpub,
        }
    }
}

/// The kit's issuer on a random loopback port.
pub fn kit_issuer() -> Arc<TestIssuer> {
    let (listener, url) = bind();
    Arc::new(issuer::start(listener, &url))
}

/// A registry table trusting `issuer`, from the kit's own trustpub snippet,
/// renamed so that several can live in one configuration.
pub fn registry(issuer: &str, name: &str, upload_url: &str) -> String {
    Identity::new(issuer.to_owned())
        .trustpub_toml(upload_url)
        .replace("name = \"conformance\"", &format!("name = \"{name}\""))
        .replace(
            &format!("audience = \"{}\"", issuer::SNIPPET_AUDIENCE),
            &format!("audience = \"{}\"", audience_of(name)),
        )
}

/// [`registry`] with an upload gateway forwarding its uploads to
/// `upstream`, so that the upload probe can run.
pub fn registry_with_gateway(issuer: &str, name: &str, upload_url: &str, upstream: &str) -> String {
    format!(
        "{}\n[registries.gateway]\nupstream = \"{upstream}\"\n",
        registry(issuer, name, upload_url)
    )
}

/// A package index that stores nothing and accepts every upload (200): the
/// upstream of trustpub's gateway in the kit's tests. Its URL.
pub fn accepting_index() -> String {
    let (listener, url) = bind();
    let server = HttpServer::new(|| App::new().default_service(web::to(HttpResponse::Ok)))
        .workers(1)
        .disable_signals()
        .listen(listener)
        .expect("the index listens")
        .run();
    tokio::spawn(server);
    format!("{url}/")
}

/// The audience [`registry`] gives a registry.
pub fn audience_of(name: &str) -> String {
    format!("aud-{name}")
}

/// A loopback listener on a random port, and its `http://` address.
pub fn bind() -> (TcpListener, String) {
    let listener = TcpListener::bind("127.0.0.1:0").expect("a free port");
    let address = format!("http://127.0.0.1:{}", listener.local_addr().unwrap().port());
    (listener, address)
}

fn start_proxy(listener: TcpListener, proxy: Proxy) {
    let proxy = web::Data::new(proxy);
    let server = HttpServer::new(move || {
        App::new()
            .app_data(proxy.clone())
            .default_service(web::to(forward))
    })
    .workers(1)
    .disable_signals()
    .listen(listener)
    .expect("the proxy listens")
    .run();
    tokio::spawn(server);
}

/// A problem document of the proxy's own.
fn problem(status: u16) -> HttpResponse {
    HttpResponse::build(StatusCode::from_u16(status).unwrap())
        .content_type("application/problem+json")
        .body(
            json!({ "type": "/broken", "title": "Refused by the broken proxy", "status": status })
                .to_string(),
        )
}

async fn forward(request: HttpRequest, body: web::Bytes, proxy: web::Data<Proxy>) -> HttpResponse {
    let path = request.uri().path().to_owned();
    let mut query = request.uri().query().map(str::to_owned);
    let accept = request
        .headers()
        .get("accept")
        .and_then(|v| v.to_str().ok());
    let discovery = path == "/.well-known/pytp";
    let empty_key = discovery && query.as_deref() == Some("discover=");
    let mint = path.ends_with("/mint-token");
    let upload = request.method() == actix_web::http::Method::POST
        && !mint
        && !discovery
        && !path.contains("/_/");
    if upload && matches!(proxy.breakage, SingleUseReusable | MultiUseSpent) {
        let credential = request
            .headers()
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned();
        if !proxy.seen.lock().unwrap().insert(credential) {
            return match proxy.breakage {
                SingleUseReusable => HttpResponse::Ok().finish(),
                _ => problem(403),
            };
        }
    }
    match proxy.breakage {
        VendorTypeRefused if accept == Some(PEP_MEDIA_TYPE) => return problem(406),
        MissingAcceptRefused if accept.is_none() && !mint => return problem(406),
        MintNeedsAccept if accept.is_none() && mint => return problem(406),
        AnyAcceptIs406 if accept == Some("*/*") => return problem(406),
        EmptyKeyRefused if empty_key => return problem(400),
        RootEmptyKeyNotFound | BareRootEmptyKeyNotFound if empty_key => return problem(404),
        DiscoveryNotFound if discovery => return problem(404),
        // Its upload path is the root's, whose gateway is RootControl's.
        RootEmptyKeyNotFound if upload => return problem(404),
        BurnFails if path.ends_with("/burn-token") => return problem(500),
        BurnAccepted if path.ends_with("/burn-token") => return HttpResponse::Accepted().finish(),
        EveryPathServed if discovery => {
            query = Some(format!("discover={}", discovery_key(&proxy.upload_path)));
        }
        PlusTakenLiterally if discovery => query = query.map(|q| q.replace('+', "%2B")),
        _ => {}
    }
    let mut body = body.to_vec();
    if mint {
        match launder(&proxy, &body) {
            Ok(Some(changed)) => body = changed,
            Ok(Option::None) => {}
            Err(status) => return problem(status),
        }
    }

    let url = format!(
        "{}{path}{}",
        proxy.backend,
        query.map(|q| format!("?{q}")).unwrap_or_default()
    );
    let method = reqwest::Method::from_bytes(request.method().as_str().as_bytes()).unwrap();
    let mut upstream = proxy.client.request(method, url).body(body);
    for (name, value) in request.headers() {
        let internal = matches!(proxy.breakage, InternalNetwork | InternalNetworkTrusted);
        let skip = name.as_str() == "content-length"
            || (proxy.breakage == AcceptIgnored && name.as_str() == "accept")
            || (internal && name.as_str() == "host");
        if !skip {
            upstream = upstream.header(name.as_str(), value.as_bytes());
        }
    }
    if matches!(proxy.breakage, InternalNetwork | InternalNetworkTrusted) {
        // trustpub knows the registry by its configured, loopback, host.
        let authority = proxy.origin.trim_start_matches("http://");
        upstream = upstream.header("host", authority);
    }
    let answer = upstream.send().await.expect("trustpub answers");
    let status = answer.status().as_u16();
    let mut content_type = answer
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("application/octet-stream")
        .to_owned();
    let mut text = answer.text().await.unwrap();
    rewrite_answer(&proxy, &path, status, &mut content_type, &mut text);
    HttpResponse::build(StatusCode::from_u16(status).unwrap())
        .content_type(content_type)
        .body(text)
}

/// Breaks trustpub's answers.
fn rewrite_answer(
    proxy: &Proxy,
    path: &str,
    status: u16,
    content_type: &mut String,
    text: &mut String,
) {
    let Ok(mut document) = serde_json::from_str::<Value>(text) else {
        return;
    };
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let own = format!("{}/", proxy.origin);
    match (proxy.breakage, status) {
        (DiscoveryNotAnObject, 200) if path == "/.well-known/pytp" => document = json!([document]),
        (MintEndpointMissing, 200) if path == "/.well-known/pytp" => {
            document
                .as_object_mut()
                .unwrap()
                .remove("token-mint-endpoint");
        }
        (RelativeUrls, 200) if path == "/.well-known/pytp" => {
            *text = text.replace(&own, "/");
            return;
        }
        (OtherHost, 200) if path == "/.well-known/pytp" => {
            *text = text.replace("http://127.0.0.1:", "http://localhost:");
            return;
        }
        (UntrustworthyScheme, 200) if path == "/.well-known/pytp" => {
            *text = text.replace("http://127.0.0.1:", "ftp://127.0.0.1:");
            return;
        }
        (FeaturesNotAnArray, 200) if path == "/.well-known/pytp" => {
            document["features"] = json!("multi-use-token single-use-token");
        }
        (ConflictingDefaults, 200) if path == "/.well-known/pytp" => {
            document["default-features"] = json!(["multi-use-token", "single-use-token"]);
        }
        (AudienceMisnamed, 200) if path.ends_with("/audience") => {
            document = json!({ "aud": document["audience"] });
        }
        (TokenNotAString, 200) if path.ends_with("/mint-token") => document["token"] = json!(12345),
        (ShortExpiry, 200) if path.ends_with("/mint-token") => {
            document["expires"] = json!(now + 300)
        }
        (HtmlMint, 200) if path.ends_with("/mint-token") => {
            *content_type = "text/html; charset=utf-8".to_owned();
            return;
        }
        (HtmlSuccess, 200) => {
            *content_type = "text/html; charset=utf-8".to_owned();
            return;
        }
        (TextSuccess, 200) => {
            *content_type = "text/plain; charset=utf-8".to_owned();
            return;
        }
        (InternalNetwork | InternalNetworkTrusted, 200) if path == "/.well-known/pytp" => {
            *text = text.replace(&own, &format!("{}/", proxy.client_origin));
            return;
        }
        (UnknownFeatureAdvertised, 200) if path == "/.well-known/pytp" => {
            document["features"]
                .as_array_mut()
                .unwrap()
                .push(json!("fast-lane"));
        }
        (DefaultNotAdvertised, 200) if path == "/.well-known/pytp" => {
            document["features"] = json!(["single-use-token"]);
            document["default-features"] = json!(["multi-use-token"]);
        }
        (DefaultMisreported | FeaturesUnreportedDefaultWrong, 200)
            if path == "/.well-known/pytp" =>
        {
            document["default-features"] = json!(["single-use-token"]);
        }
        (FeaturesUnreported | FeaturesUnreportedDefaultWrong, 200)
            if path.ends_with("/mint-token") =>
        {
            document.as_object_mut().unwrap().remove("features");
        }
        (ProblemMinimal, 400..) => {
            let members = document.as_object_mut().unwrap();
            members.remove("type");
            members.remove("status");
        }
        (ProblemStatusWrong, 400..) => document["status"] = json!(418),
        (ProblemServedAsJson, 400..) => {
            *content_type = "application/json".to_owned();
            return;
        }
        _ => return,
    }
    *text = document.to_string();
}

/// Breaks trustpub's checks of a mint request: refuses what it should
/// grant, or rewrites what it should refuse into something trustpub grants.
/// `Err` is the status of a refusal of the proxy's own.
fn launder(proxy: &Proxy, body: &[u8]) -> Result<Option<Vec<u8>>, u16> {
    let Ok(mut request) = serde_json::from_slice::<Value>(body) else {
        return Ok(Option::None);
    };
    let wants = |feature: &str| {
        request["features"]
            .as_array()
            .is_some_and(|f| f.iter().any(|v| v == feature))
    };
    match proxy.breakage {
        SingleUseRefused if wants("single-use-token") => return Err(400),
        MultiUseRefused if wants("multi-use-token") => return Err(400),
        UnknownFeaturesDropped => {
            if let Some(features) = request["features"].as_array_mut() {
                features.retain(|f| f == "single-use-token" || f == "multi-use-token");
            }
            return Ok(Some(request.to_string().into_bytes()));
        }
        PackagesIgnored => {
            request.as_object_mut().unwrap().remove("packages");
            return Ok(Some(request.to_string().into_bytes()));
        }
        _ => {}
    }
    let token = request["token"].as_str().unwrap_or_default().to_owned();
    let Some((header, mut claims)) = decode(&token) else {
        return Ok(Option::None);
    };
    let replayed = !proxy.seen.lock().unwrap().insert(token);
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    let fresh_times = |claims: &mut Value| {
        claims["iat"] = json!(now);
        claims["nbf"] = json!(now);
        claims["exp"] = json!(now + 300);
    };
    let audience = proxy.audience.as_str();
    let aud = claims["aud"].as_str().unwrap_or_default().to_owned();
    let issuer = proxy.signer.url().to_owned();
    // The claims of the kit's publisher, as `setup` prints them.
    let expected = Identity::new(issuer.clone()).claims(audience, now).build();
    match proxy.breakage {
        Es256Refused if header["alg"] == "ES256" => return Err(401),
        ExpiredAccepted if claims["exp"].as_i64().is_some_and(|exp| exp < now) => {
            fresh_times(&mut claims)
        }
        FutureAccepted if claims["nbf"].as_i64().is_some_and(|nbf| nbf > now + 60) => {
            fresh_times(&mut claims)
        }
        AudienceIgnored if aud != audience => claims["aud"] = json!(audience),
        AudienceByPrefix if aud != audience && aud.contains(audience) => {
            claims["aud"] = json!(audience)
        }
        IssuerIgnored if claims["iss"] != issuer.as_str() => claims["iss"] = json!(issuer),
        IssuerNotTrusted => claims["iss"] = json!("https://untrusted.invalid"),
        OtherRepositoryAccepted if claims["repository"] != expected["repository"] => {
            claims["repository"] = expected["repository"].clone()
        }
        OtherOwnerAccepted if claims["repository_owner_id"] != expected["repository_owner_id"] => {
            claims["repository_owner_id"] = expected["repository_owner_id"].clone()
        }
        OtherWorkflowAccepted if claims["job_workflow_ref"] != expected["job_workflow_ref"] => {
            claims["job_workflow_ref"] = expected["job_workflow_ref"].clone();
            claims["workflow_ref"] = expected["workflow_ref"].clone();
        }
        ReplayAllowed if replayed => {
            claims["jti"] = json!(format!(
                "{}-{}",
                claims["jti"].as_str().unwrap_or_default(),
                fresh()
            ))
        }
        SignatureIgnored => {}
        _ => return Ok(Option::None),
    }
    request["token"] = json!(proxy.signer.sign(&claims));
    Ok(Some(request.to_string().into_bytes()))
}

/// The header and claims of a JWT, unverified.
fn decode(token: &str) -> Option<(Value, Value)> {
    let mut parts = token.split('.');
    let mut part = || -> Option<Value> {
        let bytes = URL_SAFE_NO_PAD.decode(parts.next()?).ok()?;
        serde_json::from_slice(&bytes).ok()
    };
    Some((part()?, part()?))
}

fn fresh() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    COUNTER.fetch_add(1, Ordering::Relaxed)
}
