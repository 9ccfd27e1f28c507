//! Boots the real server on a random port against a fresh database.
//!
//! The database is a temporary SQLite file, or, when `TEST_DATABASE_URL`
//! names a PostgreSQL server, a uniquely named database created on it and
//! dropped when the test ends.

use std::net::TcpListener;

use figment::Figment;
use figment::providers::{Format, Serialized, Toml};
use reqwest::StatusCode;
use serde_json::Value;
use sqlx::Connection;
use trustpub::config::Settings;
use trustpub::startup::Application;
use trustpub::store::Store;

/// Three registries: two share the path `/legacy/` on different hosts, the
/// third has a space in its upload path.
pub const REGISTRIES: &str = r#"
[[registries]]
name = "acme"
upload_url = "https://pypi.acme.test/legacy/"
audience = "acme-pypi"
ecosystem = "python"
token_lifetime = 900
token_prefix = "acme_"
features = ["multi-use-token", "single-use-token"]
default_features = ["multi-use-token"]

  [[registries.issuers]]
  url = "https://token.actions.githubusercontent.com"
  provider = "github"

  [[registries.publishers]]
  provider = "github"
  issuer = "https://token.actions.githubusercontent.com"
  repository = "octo-org/widget"
  repository_owner_id = "9919"
  workflow = "release.yml"
  environment = "pypi"
  packages = ["widget", "widget-*"]

[[registries]]
name = "acme-eu"
upload_url = "https://pypi.eu.acme.test/legacy/"
audience = "acme-eu-pypi"
token_prefix = "acmeeu_"

[[registries]]
name = "beta"
upload_url = "https://uploads.beta.test:8443/simple upload/"
audience = "beta"
ecosystem = "cargo"
token_lifetime = 3600
token_prefix = "beta_"
features = ["single-use-token"]
default_features = ["single-use-token"]
"#;

pub struct TestDatabase {
    pub url: String,
    postgres: Option<(String, String)>,
    _dir: Option<tempfile::TempDir>,
}

impl TestDatabase {
    pub async fn new() -> Self {
        match std::env::var("TEST_DATABASE_URL") {
            Ok(server) if !server.trim().is_empty() => Self::postgres(server).await,
            _ => {
                let dir = tempfile::tempdir().expect("a temporary directory");
                let url = format!("sqlite://{}/nested/dir/trustpub.db", dir.path().display());
                TestDatabase {
                    url,
                    postgres: None,
                    _dir: Some(dir),
                }
            }
        }
    }

    async fn postgres(server: String) -> Self {
        let name = format!(
            "trustpub_test_{}_{}",
            std::process::id(),
            uuid_like_suffix()
        );
        let mut admin = sqlx::PgConnection::connect(&server)
            .await
            .expect("TEST_DATABASE_URL names a reachable PostgreSQL server");
        sqlx::raw_sql(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
            .execute(&mut admin)
            .await
            .expect("creating the test database");
        let mut url = url::Url::parse(&server).expect("TEST_DATABASE_URL is a URL");
        url.set_path(&name);
        TestDatabase {
            url: url.to_string(),
            postgres: Some((server, name)),
            _dir: None,
        }
    }

    pub fn is_sqlite(&self) -> bool {
        self.postgres.is_none()
    }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        let Some((server, name)) = self.postgres.take() else {
            return;
        };
        // Drop runs inside the test's runtime: use a thread with its own.
        let _ = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("a runtime");
            runtime.block_on(async move {
                if let Ok(mut admin) = sqlx::PgConnection::connect(&server).await {
                    let _ = sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
                        "DROP DATABASE IF EXISTS {name} WITH (FORCE)"
                    )))
                    .execute(&mut admin)
                    .await;
                }
            });
        })
        .join();
    }
}

/// Says that a test passed without checking what it is about, because what
/// it needs is not here (`why`), and how to run it (`how`). Written to the
/// process's stderr itself: what `eprintln!` prints in a passing test,
/// libtest keeps to itself, and the note would go unseen.
pub fn not_checked(test: &str, why: &str, how: &str) {
    use std::io::Write;
    let _ = writeln!(
        std::io::stderr(),
        "NOTE: {test} checked nothing: {why}; {how}"
    );
}

/// Sends `child` SIGTERM, as an operator's `kill` does (no `kill` program
/// needed).
pub fn terminate(child: &std::process::Child) {
    let pid = rustix::process::Pid::from_child(child);
    rustix::process::kill_process(pid, rustix::process::Signal::TERM)
        .expect("SIGTERM reaches the child");
}

fn uuid_like_suffix() -> String {
    use std::sync::atomic::{AtomicU32, Ordering};
    static COUNTER: AtomicU32 = AtomicU32::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    format!("{nanos:x}_{}", COUNTER.fetch_add(1, Ordering::Relaxed))
}

pub struct TestApp {
    pub address: String,
    /// The admin API's own listener, when the configuration gives it one.
    pub admin_address: Option<String>,
    pub client: reqwest::Client,
    pub store: Store,
    pub db: std::sync::Arc<TestDatabase>,
}

/// Settings from `config` (TOML) on top of the defaults, with the test
/// database and a random port.
pub fn settings(config: &str, db: &TestDatabase) -> trustpub::Result<Settings> {
    settings_at(config, &db.url)
}

/// [`settings`] with the database at `url`: the test database reached
/// another way (through a proxy), or opened read-only.
fn settings_at(config: &str, url: &str) -> trustpub::Result<Settings> {
    let figment = Figment::from(Serialized::defaults(Settings::default()))
        .merge(Toml::string(config))
        .merge(Serialized::default("database.url", url))
        .merge(Serialized::default("log.filter", "warn"));
    Settings::from_figment(&figment)
}

/// Boots trustpub with `config` on a fresh database.
pub async fn spawn_app(config: &str) -> TestApp {
    spawn_app_on(std::sync::Arc::new(TestDatabase::new().await), config).await
}

/// Boots trustpub with `config` on an existing database: a restart, or a
/// second instance.
pub async fn spawn_app_on(db: std::sync::Arc<TestDatabase>, config: &str) -> TestApp {
    let listener = TcpListener::bind("127.0.0.1:0").expect("a free port");
    spawn_app_listening(db, listener, config).await
}

/// Boots trustpub with `config` on an existing database reached at `url`.
pub async fn spawn_app_at(db: std::sync::Arc<TestDatabase>, url: &str, config: &str) -> TestApp {
    let listener = TcpListener::bind("127.0.0.1:0").expect("a free port");
    let settings = settings_at(config, url).expect("a valid test configuration");
    spawn_app_with(db, listener, &settings).await
}

/// Boots trustpub with a configuration that names its own port: `config`
/// is given the port before the server starts.
pub async fn spawn_app_with_port(config: impl FnOnce(u16) -> String) -> TestApp {
    let listener = TcpListener::bind("127.0.0.1:0").expect("a free port");
    let port = listener.local_addr().unwrap().port();
    let db = std::sync::Arc::new(TestDatabase::new().await);
    spawn_app_listening(db, listener, &config(port)).await
}

async fn spawn_app_listening(
    db: std::sync::Arc<TestDatabase>,
    listener: TcpListener,
    config: &str,
) -> TestApp {
    let settings = settings(config, &db).expect("a valid test configuration");
    spawn_app_with(db, listener, &settings).await
}

async fn spawn_app_with(
    db: std::sync::Arc<TestDatabase>,
    listener: TcpListener,
    settings: &Settings,
) -> TestApp {
    let scheme = if settings.server.tls.is_some() {
        "https"
    } else {
        "http"
    };
    let application = Application::build_with_listener(settings, listener)
        .await
        .expect("the application builds");
    let address = format!("{scheme}://127.0.0.1:{}", application.port());
    let admin_address = application
        .admin_port()
        .map(|port| format!("http://127.0.0.1:{port}"));
    let store = application.store().clone();
    tokio::spawn(application.run_until_stopped());
    TestApp {
        address,
        admin_address,
        client: reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap(),
        store,
        db,
    }
}

/// A certificate authority made for one test, and a server certificate it
/// issued for `127.0.0.1` and `localhost`, as PEM files in a temporary
/// directory: `ca.pem` for clients (`SSL_CERT_FILE`), `cert.pem` and
/// `key.pem` for `[server.tls]`.
pub struct TestCa {
    pub dir: tempfile::TempDir,
    pub ca_pem: String,
}

impl TestCa {
    pub fn new() -> Self {
        use rcgen::{
            BasicConstraints, CertificateParams, CertifiedIssuer, DnType, ExtendedKeyUsagePurpose,
            IsCa, KeyPair, KeyUsagePurpose,
        };
        let mut ca = CertificateParams::new(Vec::<String>::new()).unwrap();
        ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca.distinguished_name
            .push(DnType::CommonName, "trustpub test CA");
        ca.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let ca = CertifiedIssuer::self_signed(ca, KeyPair::generate().unwrap()).unwrap();

        let mut server =
            CertificateParams::new(vec!["127.0.0.1".to_owned(), "localhost".to_owned()]).unwrap();
        server
            .distinguished_name
            .push(DnType::CommonName, "trustpub test server");
        server.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        let key = KeyPair::generate().unwrap();
        let cert = server.signed_by(&key, &ca).unwrap();

        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("ca.pem"), ca.pem()).unwrap();
        std::fs::write(dir.path().join("cert.pem"), cert.pem()).unwrap();
        std::fs::write(dir.path().join("key.pem"), key.serialize_pem()).unwrap();
        TestCa {
            dir,
            ca_pem: ca.pem(),
        }
    }

    pub fn path(&self, file: &str) -> String {
        self.dir.path().join(file).display().to_string()
    }

    /// The `[server.tls]` section serving this CA's server certificate.
    pub fn server_tls(&self) -> String {
        format!(
            "[server.tls]\ncert = {:?}\nkey = {:?}\n",
            self.path("cert.pem"),
            self.path("key.pem")
        )
    }

    /// A client that trusts this CA (and only it).
    pub fn client(&self) -> reqwest::Client {
        reqwest::Client::builder()
            .tls_built_in_root_certs(false)
            .add_root_certificate(reqwest::Certificate::from_pem(self.ca_pem.as_bytes()).unwrap())
            .build()
            .unwrap()
    }
}

impl TestApp {
    pub fn get(&self, path: &str) -> reqwest::RequestBuilder {
        self.client.get(format!("{}{path}", self.address))
    }

    pub fn request(&self, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
        self.client
            .request(method, format!("{}{path}", self.address))
    }
}

/// Asserts a 200 JSON answer and returns its body.
pub async fn json_ok(response: reqwest::Response) -> Value {
    let status = response.status();
    let body = response.text().await.unwrap();
    assert_eq!(status, StatusCode::OK, "body: {body}");
    serde_json::from_str(&body).unwrap_or_else(|e| panic!("not JSON ({e}): {body}"))
}

/// How many refusals of `kind` with `code` a registry has counted (the
/// refusals of requests that proved no identity, which are not events).
pub async fn refusals(app: &TestApp, registry: &str, kind: &str, code: &str) -> i64 {
    app.store
        .refusal_counts(registry)
        .await
        .unwrap()
        .iter()
        .filter(|c| c.kind == kind && c.code == code)
        .map(|c| c.count)
        .sum()
}

/// Asserts an RFC 9457 problem document with this status and code, and
/// returns it.
pub async fn problem(response: reqwest::Response, status: u16, code: &str) -> Value {
    assert_eq!(response.status().as_u16(), status, "status");
    let content_type = response
        .headers()
        .get("content-type")
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default();
    let body = response.text().await.unwrap();
    assert_eq!(content_type, "application/problem+json", "body: {body}");
    let document: Value = serde_json::from_str(&body).expect("a JSON problem document");
    assert_eq!(document["status"], status, "{document}");
    assert_eq!(document["code"], code, "{document}");
    assert_eq!(
        document["type"],
        format!("/_/trustpub/problems/{code}"),
        "{document}"
    );
    assert!(
        document["title"].as_str().is_some_and(|t| !t.is_empty()),
        "{document}"
    );
    assert!(
        document["detail"].as_str().is_some_and(|d| !d.is_empty()),
        "{document}"
    );
    document
}

/// A small HTTP server on a random loopback port that answers every request
/// with `answer(its port)`: a misbehaving issuer, a registry stand-in.
pub fn serve(answer: impl Fn(u16) -> actix_web::HttpResponse + Clone + Send + 'static) -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("a free port");
    let port = listener.local_addr().unwrap().port();
    let server = actix_web::HttpServer::new(move || {
        let answer = answer.clone();
        actix_web::App::new().default_service(actix_web::web::to(move || {
            let response = answer(port);
            async move { response }
        }))
    })
    .workers(1)
    .disable_signals()
    .listen(listener)
    .expect("the server listens")
    .run();
    tokio::spawn(server);
    port
}

/// A request written byte for byte to `authority` (`host:port`), its target
/// exactly as given (an HTTP client would resolve dot segments, or refuse
/// an absolute-form target): answers the status and the whole response.
pub async fn raw_request(
    authority: &str,
    method: &str,
    target: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> (u16, String) {
    let mut request = format!("{method} {target} HTTP/1.1\r\n");
    for (name, value) in headers {
        request.push_str(&format!("{name}: {value}\r\n"));
    }
    request.push_str(&format!(
        "Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    ));
    raw_exchange(authority, &request).await
}

/// Writes `request` to `authority` as it is and reads the answer to its
/// end: the status and the whole answer. The server may answer and close
/// before it has read all of a request it refuses.
pub async fn raw_exchange(authority: &str, request: &str) -> (u16, String) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(authority).await.unwrap();
    let _ = stream.write_all(request.as_bytes()).await;
    let mut answer = Vec::new();
    let _ = stream.read_to_end(&mut answer).await;
    let answer = String::from_utf8_lossy(&answer).into_owned();
    let status = answer
        .split(' ')
        .nth(1)
        .and_then(|code| code.parse().ok())
        .unwrap_or_else(|| panic!("not an HTTP answer: {answer:?}"));
    (status, answer)
}

/// The real `trustpub serve` in a process of its own, configured by a file
/// in a temporary directory: `config` (TOML with registries) with a free
/// port and `database_url` in front. Stopped with SIGTERM on drop.
pub struct ServedBinary {
    pub address: String,
    dir: tempfile::TempDir,
    child: Option<std::process::Child>,
}

impl ServedBinary {
    pub async fn start(database_url: &str, config: &str) -> Self {
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("trustpub.toml"),
            format!(
                "[server]\nlisten = \"127.0.0.1:{port}\"\n[database]\nurl = \"{database_url}\"\n{config}"
            ),
        )
        .unwrap();
        let mut served = ServedBinary {
            address: format!("http://127.0.0.1:{port}"),
            dir,
            child: None,
        };
        served.restart().await;
        served
    }

    /// Starts the process (again, after [`ServedBinary::kill`]) and waits
    /// until `/readyz` answers 200.
    pub async fn restart(&mut self) {
        let child = std::process::Command::new(env!("CARGO_BIN_EXE_trustpub"))
            .args(["serve", "--config"])
            .arg(self.dir.path().join("trustpub.toml"))
            .env_remove("TRUSTPUB_DATABASE__URL")
            .env("RUST_LOG", "error")
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        self.child = Some(child);
        let client = reqwest::Client::new();
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
        loop {
            if let Ok(response) = client.get(format!("{}/readyz", self.address)).send().await
                && response.status() == StatusCode::OK
            {
                return;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "trustpub did not come up"
            );
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
    }

    /// SIGKILL: no shutdown, no flush, as a crash or the OOM killer.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let pid = rustix::process::Pid::from_child(&child);
            rustix::process::kill_process(pid, rustix::process::Signal::KILL).unwrap();
            child.wait().unwrap();
        }
    }
}

impl Drop for ServedBinary {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            terminate(&child);
            let _ = child.wait();
        }
    }
}
