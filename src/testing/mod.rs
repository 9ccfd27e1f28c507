//! Test helpers (feature `test-helpers`): an OIDC issuer that runs as a real
//! HTTP server with a real JWKS and real signatures, GitHub Actions' token
//! endpoint (`ACTIONS_ID_TOKEN_REQUEST_URL`) on it, builders of each
//! provider's claims, and trustpub itself started in-process
//! ([`TestServer`]). For trustpub's tests, the conformance kit and the
//! client's tests; never part of a release build.
//!
//! The RSA keys and the P-256 key under `keys/` are test keys, generated for
//! this purpose and public: they sign nothing but test tokens. They are fixed
//! so that two processes (the conformance kit's `issuer` and `run`, or a kit
//! restarted while a server still caches its JWKS) publish the same keys.

use std::net::TcpListener;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use actix_web::{App, HttpRequest, HttpResponse, HttpServer, web};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use openidconnect::JsonWebKeySet;
use openidconnect::core::CoreJwsSigningAlgorithm;
use ring::rand::SystemRandom;
use ring::signature::{self, EcdsaKeyPair, Ed25519KeyPair, KeyPair, RsaKeyPair};
use serde_json::{Value, json};

use crate::oidc::Jwk;

mod claims;
mod server;
pub use claims::{
    BUILDKITE_ORG, CIRCLECI_ORG, CIRCLECI_PROJECT, CIRCLECI_RELEASE_CONTEXT, TestClaims,
};
pub use server::TestServer;

const RSA_1: &[u8] = include_bytes!("keys/rsa1.der");
const RSA_2: &[u8] = include_bytes!("keys/rsa2.der");
const EC_1: &[u8] = include_bytes!("keys/ec1.p8");

/// The signing keys of the test issuer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TestKey {
    /// RS256, kid `rsa-1`; published from the start.
    Rsa1,
    /// RS256, kid `rsa-2`; published after [`TestIssuer::rotate`].
    Rsa2,
    /// ES256, kid `ec-1`; published from the start.
    Ec1,
    /// rsa-1's key published again as kid `rsa-any` with no `alg`, for
    /// RS384/512 and PS256/384/512; published until [`TestIssuer::rotate`].
    RsaAny,
    /// ES384, kid `ec-384`; published until rotation.
    Ec384,
    /// EdDSA (Ed25519), kid `ed-1`; published until rotation.
    Ed1,
}

impl TestKey {
    /// The algorithm the issuer signs with this key: RS256 for the RSA keys.
    pub fn alg(self) -> &'static str {
        match self {
            TestKey::Rsa1 | TestKey::Rsa2 | TestKey::RsaAny => "RS256",
            TestKey::Ec1 => "ES256",
            TestKey::Ec384 => "ES384",
            TestKey::Ed1 => "EdDSA",
        }
    }

    pub fn kid(self) -> &'static str {
        match self {
            TestKey::Rsa1 => "rsa-1",
            TestKey::Rsa2 => "rsa-2",
            TestKey::Ec1 => "ec-1",
            TestKey::RsaAny => "rsa-any",
            TestKey::Ec384 => "ec-384",
            TestKey::Ed1 => "ed-1",
        }
    }
}

struct Keys {
    rsa1: RsaKeyPair,
    rsa2: RsaKeyPair,
    ec1: EcdsaKeyPair,
    ec384: EcdsaKeyPair,
    ed1: Ed25519KeyPair,
}

struct Published {
    keys: Vec<TestKey>,
    outage: Option<Outage>,
}

/// How the test issuer fails, for outage tests ([`TestIssuer::set_outage`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outage {
    /// Its discovery document and JWKS answer 503.
    Down,
    /// They answer 200 with a body that is not JSON.
    Garbage,
}

impl Outage {
    /// The answer instead of a document, during an outage.
    fn answer(outage: Option<Self>) -> Option<HttpResponse> {
        match outage? {
            Outage::Down => Some(HttpResponse::ServiceUnavailable().finish()),
            Outage::Garbage => Some(
                HttpResponse::Ok()
                    .content_type("application/json")
                    .body("<html>not json"),
            ),
        }
    }
}

/// The bearer token the test issuer's GitHub Actions token endpoint wants:
/// what `ACTIONS_ID_TOKEN_REQUEST_TOKEN` holds in a job.
pub const ACTIONS_REQUEST_TOKEN: &str = "test-actions-request-token";

/// What the GitHub Actions token endpoint has done.
#[derive(Default)]
struct Actions {
    /// The audience of each token handed out, in order.
    audiences: Vec<String>,
    /// Changes made to the default claims of every token handed out.
    claims: Option<fn(TestClaims) -> TestClaims>,
}

/// An OIDC issuer on `http://127.0.0.1:<port>`, serving
/// `/.well-known/openid-configuration` and `/jwks`.
pub struct TestIssuer {
    url: String,
    keys: Arc<Keys>,
    published: Arc<Mutex<Published>>,
    jwks_fetches: Arc<AtomicUsize>,
    actions: Arc<Mutex<Actions>>,
    /// `None` for the copy that signs inside the server.
    server: Option<actix_web::dev::ServerHandle>,
}

impl TestIssuer {
    /// Starts the issuer on a random loopback port, publishing every key but
    /// `rsa-2`. Must run inside a Tokio runtime.
    pub async fn start() -> Self {
        Self::start_at("").await
    }

    /// [`TestIssuer::start`] with an issuer URL that has a path, e.g.
    /// `/_services/token` as GitHub Enterprise Server's, `/api/actions` as
    /// Forgejo's: discovery and keys are served below it.
    pub async fn start_at(path: &str) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").expect("a free port");
        let port = listener.local_addr().unwrap().port();
        let url = format!("http://127.0.0.1:{port}{path}");
        let published = [
            TestKey::Rsa1,
            TestKey::Ec1,
            TestKey::RsaAny,
            TestKey::Ec384,
            TestKey::Ed1,
        ];
        Self::start_on(listener, url, &published)
    }

    /// Starts the issuer on `listener`, with `url` as its issuer URL (in
    /// `iss` and in its discovery document), publishing `published`. Must run
    /// inside a Tokio runtime.
    pub fn start_on(listener: TcpListener, url: String, published: &[TestKey]) -> Self {
        let rng = SystemRandom::new();
        let keys = Arc::new(Keys {
            rsa1: RsaKeyPair::from_der(RSA_1).expect("test key rsa1"),
            rsa2: RsaKeyPair::from_der(RSA_2).expect("test key rsa2"),
            ec1: EcdsaKeyPair::from_pkcs8(&signature::ECDSA_P256_SHA256_FIXED_SIGNING, EC_1, &rng)
                .expect("test key ec1"),
            ec384: {
                let alg = &signature::ECDSA_P384_SHA384_FIXED_SIGNING;
                let pkcs8 = EcdsaKeyPair::generate_pkcs8(alg, &rng).expect("a P-384 key");
                EcdsaKeyPair::from_pkcs8(alg, pkcs8.as_ref(), &rng).expect("the P-384 key")
            },
            ed1: {
                let pkcs8 = Ed25519KeyPair::generate_pkcs8(&rng).expect("an Ed25519 key");
                Ed25519KeyPair::from_pkcs8(pkcs8.as_ref()).expect("the Ed25519 key")
            },
        });
        let published = Arc::new(Mutex::new(Published {
            keys: published.to_vec(),
            outage: None,
        }));
        let jwks_fetches = Arc::new(AtomicUsize::new(0));
        let actions = Arc::new(Mutex::new(Actions::default()));

        let state = (
            url.clone(),
            keys.clone(),
            published.clone(),
            jwks_fetches.clone(),
        );
        // The issuer signs the tokens of the Actions endpoint itself; it
        // shares the keys, not the server.
        let signer = Arc::new(TestIssuer {
            url: url.clone(),
            keys: keys.clone(),
            published: published.clone(),
            jwks_fetches: jwks_fetches.clone(),
            actions: actions.clone(),
            server: None,
        });
        let path = url::Url::parse(&url)
            .expect("the issuer URL")
            .path()
            .trim_end_matches('/')
            .to_owned();
        let server = HttpServer::new(move || {
            let (url, keys, published, fetches) = state.clone();
            let signer = signer.clone();
            let jwks_url = format!("{url}/jwks");
            let published_for_discovery = published.clone();
            App::new().service(
                    web::scope(&path)
                        .route(
                            "/.well-known/openid-configuration",
                            web::get().to(move || {
                                let outage =
                                    Outage::answer(published_for_discovery.lock().unwrap().outage);
                                // The members GitHub Actions' document has, so that
                                // servers checking provider metadata accept it too.
                                let document = json!({
                                    "issuer": url,
                                    "jwks_uri": jwks_url,
                                    "subject_types_supported": ["public"],
                                    "response_types_supported": ["id_token"],
                                    "id_token_signing_alg_values_supported": [
                                        "RS256", "RS384", "RS512", "PS256", "PS384", "PS512",
                                        "ES256", "ES384", "EdDSA",
                                    ],
                                });
                                async move {
                                    outage.unwrap_or_else(|| HttpResponse::Ok().json(document))
                                }
                            }),
                        )
                        .route(
                            "/jwks",
                            web::get().to(move || {
                                fetches.fetch_add(1, Ordering::SeqCst);
                                let published = published.lock().unwrap();
                                let answer =
                                    Outage::answer(published.outage).unwrap_or_else(|| {
                                        HttpResponse::Ok().json(jwks(&keys, &published.keys))
                                    });
                                async move { answer }
                            }),
                        )
                        .route(
                            "/actions/id-token",
                            web::get().to(move |request: HttpRequest| {
                                let answer = signer.actions_token(&request);
                                async move { answer }
                            }),
                        ),
                )
        })
        .workers(1)
        .disable_signals()
        .listen(listener)
        .expect("the issuer listens")
        .run();
        let handle = server.handle();
        tokio::spawn(server);
        TestIssuer {
            url,
            keys,
            published,
            jwks_fetches,
            actions,
            server: Some(handle),
        }
    }

    /// `ACTIONS_ID_TOKEN_REQUEST_URL` for this issuer: GitHub Actions' token
    /// endpoint, which already has a query, as GitHub's has; clients append
    /// `&audience=…`. Wants `Authorization: bearer` [`ACTIONS_REQUEST_TOKEN`]
    /// and answers `{"value": "<JWT>"}`: [`TestClaims`]' defaults for the
    /// requested audience, signed with `rsa-1`.
    pub fn actions_token_url(&self) -> String {
        format!("{}/actions/id-token?api-version=2.0", self.url)
    }

    /// Changes every token the Actions endpoint hands out from now on.
    pub fn set_actions_claims(&self, change: fn(TestClaims) -> TestClaims) {
        self.actions.lock().unwrap().claims = Some(change);
    }

    /// The audiences the Actions endpoint handed out tokens for, in order.
    pub fn actions_audiences(&self) -> Vec<String> {
        self.actions.lock().unwrap().audiences.clone()
    }

    fn actions_token(&self, request: &HttpRequest) -> HttpResponse {
        let authorized = request
            .headers()
            .get(actix_web::http::header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split_once(' '))
            .is_some_and(|(scheme, token)| {
                scheme.eq_ignore_ascii_case("bearer") && token == ACTIONS_REQUEST_TOKEN
            });
        if !authorized {
            return HttpResponse::Unauthorized().json(json!({ "message": "bad bearer token" }));
        }
        let audience = url::form_urlencoded::parse(request.query_string().as_bytes())
            .find(|(name, _)| name == "audience")
            .map(|(_, value)| value.into_owned());
        let Some(audience) = audience else {
            return HttpResponse::BadRequest().json(json!({ "message": "no audience" }));
        };
        let change = {
            let mut actions = self.actions.lock().unwrap();
            actions.audiences.push(audience.clone());
            actions.claims
        };
        let mut claims = TestClaims::github(&self.url, &audience, crate::store::now());
        if let Some(change) = change {
            claims = change(claims);
        }
        HttpResponse::Ok().json(json!({ "value": self.sign(&claims.build()) }))
    }

    /// The issuer URL, as tokens carry it in `iss`.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// How many times the JWKS has been fetched.
    pub fn jwks_fetches(&self) -> usize {
        self.jwks_fetches.load(Ordering::SeqCst)
    }

    /// Starts (`Some`) or ends (`None`) an outage of the discovery document
    /// and the JWKS.
    pub fn set_outage(&self, outage: Option<Outage>) {
        self.published.lock().unwrap().outage = outage;
    }

    /// Key rotation: publishes `rsa-2` and withdraws `rsa-1`.
    pub fn rotate(&self) {
        self.published.lock().unwrap().keys = vec![TestKey::Rsa2, TestKey::Ec1];
    }

    /// Signs `claims` with RS256 and `rsa-1`.
    pub fn sign(&self, claims: &Value) -> String {
        self.sign_with(TestKey::Rsa1, claims)
    }

    /// Signs `claims` with one of the issuer's keys, with its usual
    /// algorithm (RS256 for the RSA keys).
    pub fn sign_with(&self, key: TestKey, claims: &Value) -> String {
        self.sign_as(key, key.alg(), claims)
    }

    /// Signs `claims` with an algorithm: RS* and PS* with `rsa-any`, ES256,
    /// ES384 and EdDSA with their keys.
    pub fn sign_with_alg(&self, alg: &str, claims: &Value) -> String {
        let key = match alg {
            "ES256" => TestKey::Ec1,
            "ES384" => TestKey::Ec384,
            "EdDSA" => TestKey::Ed1,
            _ => TestKey::RsaAny,
        };
        self.sign_as(key, alg, claims)
    }

    /// Signs a payload given as JSON text, verbatim (RS256, `rsa-1`): for
    /// payloads a `Value` cannot hold, such as a member named twice.
    pub fn sign_json_text(&self, payload: &str) -> String {
        self.sign_text(TestKey::Rsa1, "RS256", payload)
    }

    /// [`TestIssuer::sign_json_text`] with another key, in its usual
    /// algorithm: Ed25519 (`ed-1`) signs fastest, for the fuzz targets.
    pub fn sign_json_text_with(&self, key: TestKey, payload: &str) -> String {
        self.sign_text(key, key.alg(), payload)
    }

    fn sign_as(&self, key: TestKey, alg: &str, claims: &Value) -> String {
        self.sign_text(key, alg, &claims.to_string())
    }

    fn sign_text(&self, key: TestKey, alg: &str, payload: &str) -> String {
        let header = json!({ "alg": alg, "typ": "JWT", "kid": key.kid() });
        let input = format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(header.to_string()),
            URL_SAFE_NO_PAD.encode(payload)
        );
        let rng = SystemRandom::new();
        let ecdsa = |pair: &EcdsaKeyPair| {
            pair.sign(&rng, input.as_bytes())
                .expect("signing")
                .as_ref()
                .to_vec()
        };
        let signature = match key {
            TestKey::Ec1 => ecdsa(&self.keys.ec1),
            TestKey::Ec384 => ecdsa(&self.keys.ec384),
            TestKey::Ed1 => self.keys.ed1.sign(input.as_bytes()).as_ref().to_vec(),
            TestKey::Rsa1 | TestKey::Rsa2 | TestKey::RsaAny => {
                let pair = if key == TestKey::Rsa2 {
                    &self.keys.rsa2
                } else {
                    &self.keys.rsa1
                };
                let padding: &'static dyn signature::RsaEncoding = match alg {
                    "RS384" => &signature::RSA_PKCS1_SHA384,
                    "RS512" => &signature::RSA_PKCS1_SHA512,
                    "PS256" => &signature::RSA_PSS_SHA256,
                    "PS384" => &signature::RSA_PSS_SHA384,
                    "PS512" => &signature::RSA_PSS_SHA512,
                    _ => &signature::RSA_PKCS1_SHA256,
                };
                let mut signature = vec![0; pair.public().modulus_len()];
                pair.sign(padding, &rng, input.as_bytes(), &mut signature)
                    .expect("signing");
                signature
            }
        };
        format!("{input}.{}", URL_SAFE_NO_PAD.encode(signature))
    }

    /// A token with this header whose signature is `signature`, verbatim:
    /// for `alg: none`, HMAC and forged tokens.
    pub fn token_with(header: &Value, claims: &Value, signature: &[u8]) -> String {
        format!(
            "{}.{}",
            signing_input(header, claims),
            URL_SAFE_NO_PAD.encode(signature)
        )
    }

    /// An HS256 token whose secret is the RSA key's public modulus: the
    /// classic algorithm-confusion attack.
    pub fn sign_hmac_with_public_key(&self, claims: &Value) -> String {
        let header = json!({ "alg": "HS256", "typ": "JWT", "kid": TestKey::Rsa1.kid() });
        let input = signing_input(&header, claims);
        let secret = self.keys.rsa1.public().as_ref().to_vec();
        let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, &secret);
        let tag = ring::hmac::sign(&key, input.as_bytes());
        format!("{input}.{}", URL_SAFE_NO_PAD.encode(tag.as_ref()))
    }
}

impl Drop for TestIssuer {
    fn drop(&mut self) {
        if let Some(server) = &self.server {
            drop(server.stop(false));
        }
    }
}

fn signing_input(header: &Value, claims: &Value) -> String {
    format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(header.to_string()),
        URL_SAFE_NO_PAD.encode(claims.to_string())
    )
}

fn jwks(keys: &Keys, published: &[TestKey]) -> JsonWebKeySet<Jwk> {
    let rsa = |kid: &str, pair: &RsaKeyPair, alg: Option<CoreJwsSigningAlgorithm>| {
        let components: ring::rsa::PublicKeyComponents<Vec<u8>> = pair.public().into();
        Jwk::rsa(kid, alg, components.n, components.e)
    };
    let rs256 = Some(CoreJwsSigningAlgorithm::RsaSsaPkcs1V15Sha256);
    JsonWebKeySet::new(
        published
            .iter()
            .map(|key| match key {
                TestKey::Rsa1 => rsa(key.kid(), &keys.rsa1, rs256.clone()),
                TestKey::Rsa2 => rsa(key.kid(), &keys.rsa2, rs256.clone()),
                TestKey::RsaAny => rsa(key.kid(), &keys.rsa1, None),
                TestKey::Ec384 => Jwk::ec(
                    key.kid(),
                    CoreJwsSigningAlgorithm::EcdsaP384Sha384,
                    "P-384",
                    keys.ec384.public_key().as_ref(),
                ),
                TestKey::Ed1 => Jwk::ed25519(key.kid(), keys.ed1.public_key().as_ref()),
                TestKey::Ec1 => Jwk::ec(
                    key.kid(),
                    CoreJwsSigningAlgorithm::EcdsaP256Sha256,
                    "P-256",
                    keys.ec1.public_key().as_ref(),
                ),
            })
            .collect(),
    )
}

/// The audience of [`acme_registry`].
pub const ACME_AUDIENCE: &str = "acme-pypi";

/// Configuration (TOML) of a registry `acme` that trusts `issuer` and has one
/// publisher matching [`TestClaims`]' defaults, allowed `widget` and
/// `widget-*`. More `[[registries.publishers]]` appended to it belong to acme.
pub fn acme_registry(issuer: &str) -> String {
    acme_registry_with(issuer, "")
}

/// [`acme_registry`] with `keys` (TOML lines) added to acme's own table.
pub fn acme_registry_with(issuer: &str, keys: &str) -> String {
    format!(
        r#"
[[registries]]
name = "acme"
upload_url = "https://pypi.acme.test/legacy/"
audience = "{ACME_AUDIENCE}"
token_lifetime = 900
token_prefix = "acme_"
features = ["multi-use-token", "single-use-token"]
default_features = ["multi-use-token"]
{keys}
{trust}  environment = "pypi"
"#,
        trust = trusts_widget(issuer, r#"["widget", "widget-*"]"#)
    )
}

/// TOML for a registry (appended to its `[[registries]]` table): it trusts
/// `issuer` as a GitHub issuer, and `octo-org/widget`'s `release.yml`, in any
/// environment, may publish `packages` (a TOML array).
pub fn trusts_widget(issuer: &str, packages: &str) -> String {
    format!(
        r#"
  [[registries.issuers]]
  url = "{issuer}"
  provider = "github"

  [[registries.publishers]]
  provider = "github"
  issuer = "{issuer}"
  repository = "octo-org/widget"
  repository_owner_id = "9919"
  workflow = "release.yml"
  packages = {packages}
"#
    )
}

/// The `minted` event of a mint written straight to the store (tests that
/// store credentials without the exchange).
pub fn minted_event(registry: &str, at: i64) -> crate::store::NewEvent<'_> {
    use crate::store::{Caller, EventKind, NewEvent, Outcome};
    NewEvent {
        at,
        registry,
        caller: Caller::Identified,
        kind: EventKind::Mint,
        outcome: Outcome::Minted,
        code: "ok",
        publishers: None,
        detail: String::new(),
        claims: None,
    }
}
