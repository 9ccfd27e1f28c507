//! The documentation against the code: the error codes, the configuration
//! keys (each provider's publisher keys in docs/src/providers.md), the links
//! of `README.md`, `spec/protocol.md` and the book in `docs/src/`, and the
//! curl examples of the README and the book against the quick start. Each
//! test names what to update when it fails.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Component, Path, PathBuf};

use serde::de::DeserializeOwned;
use trustpub::config::{
    DatabaseSettings, EventSettings, LogSettings, RateLimitSettings, ServerSettings, Settings,
    TlsSettings,
};
use trustpub::domain::{ForwardAuth, Issuer, Provider};
use trustpub::limits::Limit;
use trustpub::metrics::Metrics;
use trustpub::problem::Error;
use trustpub::publishers::{
    BuildkitePublisher, CircleciPublisher, ForgejoPublisher, GenericPublisher, GithubPublisher,
    GitlabPublisher, GooglePublisher,
};
use trustpub::registry::Registry;
use trustpub::registry::{Gateway, RegistryRateLimits, UpstreamCredential};

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn read(relative: &str) -> String {
    std::fs::read_to_string(root().join(relative))
        .unwrap_or_else(|e| panic!("cannot read {relative}: {e}"))
}

fn differences(left: &BTreeSet<String>, right: &BTreeSet<String>) -> Vec<String> {
    left.difference(right).cloned().collect()
}

/// The lines of a Markdown text outside fenced code blocks, with their
/// inline code spans kept.
fn prose_lines(text: &str) -> impl Iterator<Item = &str> {
    let mut fenced = false;
    text.lines().filter(move |line| {
        if line.trim_start().starts_with("```") {
            fenced = !fenced;
            return false;
        }
        !fenced
    })
}

/// The texts between backticks in `cell`.
fn code_spans(cell: &str) -> Vec<String> {
    cell.split('`')
        .skip(1)
        .step_by(2)
        .map(str::to_owned)
        .collect()
}

/// The first cell of a Markdown table row.
fn first_cell(row: &str) -> &str {
    row.trim()
        .trim_start_matches('|')
        .split('|')
        .next()
        .unwrap_or("")
}

// ---- error codes ---------------------------------------------------------

fn openapi_problem_codes() -> BTreeSet<String> {
    let spec: serde_norway::Value =
        serde_norway::from_str(&read("spec/openapi.yaml")).expect("spec/openapi.yaml is YAML");
    spec["components"]["schemas"]["ProblemCode"]["enum"]
        .as_sequence()
        .expect("spec/openapi.yaml has components.schemas.ProblemCode.enum")
        .iter()
        .map(|code| code.as_str().expect("problem codes are strings").to_owned())
        .collect()
}

/// The code spans of the first column of the tables under `heading` in
/// the file `relative`.
fn first_column_under(relative: &str, heading: &str) -> BTreeSet<String> {
    let text = read(relative);
    let mut in_section = false;
    let mut values = BTreeSet::new();
    for line in prose_lines(&text) {
        if line.starts_with('#') {
            in_section = line.trim() == heading;
        } else if in_section && line.starts_with("| `") {
            values.extend(code_spans(first_cell(line)));
        }
    }
    values
}

/// The first column of the table under `## Codes` in docs/src/errors.md.
fn documented_problem_codes() -> BTreeSet<String> {
    first_column_under("docs/src/errors.md", "## Codes")
}

#[test]
fn every_error_code_is_in_the_openapi_description_and_in_errors_md() {
    let returned: BTreeSet<String> = Error::CODES.iter().map(|c| (*c).to_owned()).collect();
    let openapi = openapi_problem_codes();
    let documented = documented_problem_codes();
    assert!(
        !documented.is_empty(),
        "docs/src/errors.md has no `## Codes` table"
    );
    for (name, listed) in [
        ("ProblemCode in spec/openapi.yaml", &openapi),
        ("the `## Codes` table of docs/src/errors.md", &documented),
    ] {
        assert_eq!(
            differences(&returned, listed),
            Vec::<String>::new(),
            "codes the server returns that {name} does not list"
        );
        assert_eq!(
            differences(listed, &returned),
            Vec::<String>::new(),
            "codes {name} lists that the server never returns (Error::CODES)"
        );
    }
}

// ---- configuration keys ---------------------------------------------------

/// A configuration that sets every key the settings accept, each at least
/// once (the two registries set the keys that exclude each other). It is
/// only deserialised, not validated: the files it names need not exist, and
/// keys that validation refuses with a reason (`package_header`) count too.
const EVERY_KEY: &str = r#"
[server]
listen = "127.0.0.1:8080"
max_body_bytes = 65536
shutdown_timeout = 30
trusted_proxies = ["10.0.0.0/8", "::1/128"]
max_uri_bytes = 8192
max_header_bytes = 32768
max_headers = 64

[server.tls]
cert = "tls/fullchain.pem"
key = "tls/privkey.pem"

[database]
url = "sqlite://data/trustpub.db"
max_connections = 10
registry_cache_ttl = 2
connect_timeout = 10
purge_interval = 300
query_timeout = 10

[log]
format = "human"
filter = "info"

[events]
retention_days = 90

[admin]
listen = "127.0.0.1:8081"
enabled = false

[rate_limits]
mints = { per_minute = 600, burst = 600 }
failed_checks = { per_minute = 300, burst = 300 }
refused_unauthenticated = { per_minute = 6000, burst = 3000 }

  [[admin.tokens]]
  name = "ops"
  sha256 = "e2186dbdb1bb4193608605e84f33208765b5693b55edd4f730a719a100eeea6f"
  registries = ["*"]
  read_only = false

[[registries]]
name = "acme"
upload_url = "https://pypi.acme.test/legacy/"
audience = "acme-pypi"
ecosystem = "python"
pypi_paths = true
token_lifetime = 900
token_prefix = "acme_"
features = ["multi-use-token", "single-use-token"]
default_features = ["multi-use-token"]
introspect_secret_sha256 = "e2186dbdb1bb4193608605e84f33208765b5693b55edd4f730a719a100eeea6f"
rate_limits = { mints = { per_minute = 60, burst = 20 }, failed_checks = { per_minute = 30, burst = 10 } }

  [registries.forward_auth]
  package_path = "/packages/{package}/"

  [registries.gateway]
  upstream = "http://127.0.0.1:3141/"
  paths = ["/legacy/"]
  max_upload_bytes = 104857600
  credential = { scheme = "basic", username = "uploader", secret_env = "ACME_UPLOAD_PASSWORD" }
  pass_through_foreign_credentials = true
  identity_headers = true
  read_credential = { scheme = "bearer", secret_env = "ACME_READ_TOKEN" }

  [[registries.issuers]]
  url = "https://token.actions.githubusercontent.com"
  provider = "github"
  max_token_lifetime = 900

  [[registries.publishers]]
  provider = "github"
  issuer = "https://token.actions.githubusercontent.com"
  packages = ["widget", "widget-*"]
  repository = "octo-org/widget"
  repository_owner_id = "9919"
  workflow = "release.yml"
  workflow_repository = "octo-org/release-tools"
  environment = "pypi"
  ref = "refs/tags/v*"

  [[registries.issuers]]
  url = "https://gitlab.acme.test"
  provider = "gitlab"

  [[registries.publishers]]
  provider = "gitlab"
  issuer = "https://gitlab.acme.test"
  packages = ["widget"]
  project_path = "acme/tools/widget"
  namespace_id = "72"
  ci_config_path = "ci/release.yml"
  ci_config_project = "acme/ci-templates"
  environment = "pypi"
  ref = "refs/tags/v*"
  ref_protected = true

  [[registries.issuers]]
  url = "https://forgejo.acme.test/api/actions"
  provider = "forgejo"

  [[registries.publishers]]
  provider = "forgejo"
  issuer = "https://forgejo.acme.test/api/actions"
  packages = ["widget"]
  repository = "octo-org/widget"
  repository_owner_id = "9919"
  workflow = "release.yml"
  environment = "pypi"
  ref = "refs/tags/v*"

  [[registries.issuers]]
  url = "https://agent.buildkite.com"
  provider = "buildkite"

  [[registries.publishers]]
  provider = "buildkite"
  issuer = "https://agent.buildkite.com"
  packages = ["widget"]
  organization_slug = "acme-inc"
  pipeline_slug = "widget"
  organization_id = "0190a0c4-1d2e-4f3a-8b5c-6d7e8f9a0b1c"
  step_key = "publish"
  build_branch = "main"
  build_tag = "v*"

  [[registries.issuers]]
  url = "https://oidc.circleci.com/org/9a3c1f2e-4b5d-4e6f-8a7b-0c1d2e3f4a5b"
  provider = "circleci"

  [[registries.publishers]]
  provider = "circleci"
  issuer = "https://oidc.circleci.com/org/9a3c1f2e-4b5d-4e6f-8a7b-0c1d2e3f4a5b"
  packages = ["widget"]
  organization_id = "9a3c1f2e-4b5d-4e6f-8a7b-0c1d2e3f4a5b"
  project_id = "e8f7d6c5-b4a3-4921-8f0e-d1c2b3a4f5e6"
  vcs_ref = "refs/tags/v*"
  context_ids = ["3b2a1c0d-9e8f-4a7b-b6c5-d4e3f2a1b0c9"]

  [[registries.issuers]]
  url = "https://accounts.google.com"
  provider = "google"

  [[registries.publishers]]
  provider = "google"
  issuer = "https://accounts.google.com"
  packages = ["widget"]
  email = "publisher@acme-build.iam.gserviceaccount.com"
  subject = "104857600000000000001"

  [[registries.issuers]]
  url = "https://kubernetes.acme.test"
  provider = "generic"

  [[registries.publishers]]
  provider = "generic"
  issuer = "https://kubernetes.acme.test"
  packages = ["widget"]
  subject = "system:serviceaccount:release:publisher"
  claims = { environment = "release" }

[[registries]]
name = "files"
upload_url = "https://files.acme.test/upload/"
audience = "files"
ecosystem = "generic"
token_prefix = "files_"

  [registries.gateway]
  upstream = "https://files.internal.test/"
  package_header = "X-Package"
  package_path = "/packages/{package}/"
  credential = { scheme = "bearer", secret_file = "upstream-token" }
  read_credential = { scheme = "basic", username = "reader", secret_file = "read-token" }
"#;

/// Every key path in `value`, tables and leaves alike; the entries of a
/// list of tables share their keys (`registries.issuers.url`).
fn key_paths(value: &serde_json::Value, prefix: &str, into: &mut BTreeSet<String>) {
    let join = |key: &str| {
        if prefix.is_empty() {
            key.to_owned()
        } else {
            format!("{prefix}.{key}")
        }
    };
    match value {
        serde_json::Value::Object(map) => {
            for (key, child) in map {
                let path = join(key);
                into.insert(path.clone());
                key_paths(child, &path, into);
            }
        }
        serde_json::Value::Array(items) => {
            for item in items.iter().filter(|i| i.is_object()) {
                key_paths(item, prefix, into);
            }
        }
        _ => {}
    }
}

/// The keys that are not tables: no other key lies below them.
fn leaves(keys: &BTreeSet<String>) -> BTreeSet<String> {
    keys.iter()
        .filter(|k| !keys.iter().any(|o| o.starts_with(&format!("{k}."))))
        .cloned()
        .collect()
}

/// A deserializer that answers only the question "which fields does this
/// struct accept?", through its error: serde's derive hands the field names
/// (after renames) to `deserialize_struct`.
struct FieldNames;

impl<'de> serde::Deserializer<'de> for FieldNames {
    type Error = serde::de::value::Error;

    fn deserialize_any<V: serde::de::Visitor<'de>>(self, _: V) -> Result<V::Value, Self::Error> {
        Err(serde::de::Error::custom("not a plain struct"))
    }

    fn deserialize_struct<V: serde::de::Visitor<'de>>(
        self,
        _name: &'static str,
        fields: &'static [&'static str],
        _visitor: V,
    ) -> Result<V::Value, Self::Error> {
        Err(serde::de::Error::custom(fields.join(" ")))
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string
        bytes byte_buf option unit unit_struct newtype_struct seq tuple
        tuple_struct map enum identifier ignored_any
    }
}

fn fields_of<T: DeserializeOwned>() -> Vec<String> {
    let message = match T::deserialize(FieldNames) {
        Err(error) => error.to_string(),
        Ok(_) => panic!("FieldNames never yields a value"),
    };
    assert_ne!(
        message,
        "not a plain struct",
        "{}",
        std::any::type_name::<T>()
    );
    message.split(' ').map(str::to_owned).collect()
}

/// The keys in the tables of docs/src/configuration.md: under a heading that
/// names a section (`` ## `[[registries.issuers]]` ``), a key is relative to
/// it unless it is written in full.
fn documented_keys() -> BTreeSet<String> {
    let text = read("docs/src/configuration.md");
    let mut section: Option<String> = None;
    let mut in_key_table = false;
    let mut keys = BTreeSet::new();
    for line in prose_lines(&text) {
        if line.starts_with('#') {
            section = code_spans(line)
                .into_iter()
                .find(|s| s.starts_with('['))
                .map(|s| s.trim_matches(['[', ']']).to_owned());
            in_key_table = false;
        } else if line.starts_with("| key |") {
            in_key_table = true;
        } else if !line.starts_with('|') {
            in_key_table = false;
        } else if in_key_table && line.starts_with("| `") {
            for key in code_spans(first_cell(line)) {
                keys.insert(match &section {
                    Some(s) if !key.starts_with(&format!("{s}.")) => format!("{s}.{key}"),
                    _ => key,
                });
            }
        }
    }
    keys
}

/// The fields of each provider's publisher type: the keys a publisher of
/// that provider takes besides `provider`, `issuer` and `packages`. A new
/// provider does not compile here until its keys are checked too.
fn publisher_fields(provider: Provider) -> Vec<String> {
    match provider {
        Provider::Github => fields_of::<GithubPublisher>(),
        Provider::Gitlab => fields_of::<GitlabPublisher>(),
        Provider::Forgejo => fields_of::<ForgejoPublisher>(),
        Provider::Buildkite => fields_of::<BuildkitePublisher>(),
        Provider::Circleci => fields_of::<CircleciPublisher>(),
        Provider::Google => fields_of::<GooglePublisher>(),
        Provider::Generic => fields_of::<GenericPublisher>(),
    }
}

/// Below a generic publisher's `claims` are claim names of the operator's
/// choosing, not keys of the settings.
const FREE_FORM_KEYS: &str = "registries.publishers.claims.";

/// The keys in the key tables of the section of docs/src/providers.md whose
/// heading names `provider = "<name>"` in code, down to the next heading of
/// the same or a higher level; `None` when no heading names it, and a panic
/// when several do.
fn documented_provider_keys(text: &str, provider: Provider) -> Option<BTreeSet<String>> {
    let wanted = format!("provider = \"{}\"", provider.as_str());
    let mut section_level: Option<usize> = None;
    let mut found = false;
    let mut in_key_table = false;
    let mut keys = BTreeSet::new();
    for line in prose_lines(text) {
        if line.starts_with('#') {
            let level = line.chars().take_while(|c| *c == '#').count();
            if section_level.is_some_and(|section| level <= section) {
                section_level = None;
            }
            if code_spans(line).contains(&wanted) {
                assert!(
                    !found,
                    "docs/src/providers.md has two headings naming `{wanted}`"
                );
                found = true;
                section_level = Some(level);
            }
            in_key_table = false;
        } else if section_level.is_none() {
            continue;
        } else if line.starts_with("| key |") {
            in_key_table = true;
        } else if !line.starts_with('|') {
            in_key_table = false;
        } else if in_key_table && line.starts_with("| `") {
            keys.extend(code_spans(first_cell(line)));
        }
    }
    found.then_some(keys)
}

#[test]
fn the_configuration_reference_lists_exactly_the_keys_the_settings_accept() {
    // Every key of the fixture is accepted (the settings deny unknown keys).
    let settings: Settings = toml::from_str(EVERY_KEY).expect("EVERY_KEY is accepted");
    let mut given = BTreeSet::new();
    let fixture: toml::Value = toml::from_str(EVERY_KEY).expect("EVERY_KEY is TOML");
    let fixture = serde_json::to_value(fixture).expect("TOML as JSON");
    key_paths(&fixture, "", &mut given);
    given.retain(|key| !key.starts_with(FREE_FORM_KEYS));

    // The fixture sets every field of every settings type...
    let types: [(&str, Vec<String>); 19] = [
        ("", fields_of::<Settings>()),
        ("server", fields_of::<ServerSettings>()),
        ("server.tls", fields_of::<TlsSettings>()),
        ("database", fields_of::<DatabaseSettings>()),
        ("log", fields_of::<LogSettings>()),
        ("events", fields_of::<EventSettings>()),
        ("rate_limits", fields_of::<RateLimitSettings>()),
        ("rate_limits.mints", fields_of::<Limit>()),
        ("rate_limits.failed_checks", fields_of::<Limit>()),
        ("rate_limits.refused_unauthenticated", fields_of::<Limit>()),
        ("registries.rate_limits", fields_of::<RegistryRateLimits>()),
        ("registries.rate_limits.mints", fields_of::<Limit>()),
        ("registries.rate_limits.failed_checks", fields_of::<Limit>()),
        ("registries", fields_of::<Registry>()),
        ("registries.issuers", fields_of::<Issuer>()),
        ("registries.forward_auth", fields_of::<ForwardAuth>()),
        ("registries.gateway", fields_of::<Gateway>()),
        (
            "registries.gateway.credential",
            fields_of::<UpstreamCredential>(),
        ),
        (
            "registries.gateway.read_credential",
            fields_of::<UpstreamCredential>(),
        ),
    ];
    for (prefix, fields) in &types {
        for field in fields {
            let key = if prefix.is_empty() {
                field.clone()
            } else {
                format!("{prefix}.{field}")
            };
            assert!(
                given.contains(&key),
                "the settings accept `{key}`, which EVERY_KEY in tests/api/docs.rs does not set"
            );
        }
    }
    // ...and, in a publisher of each provider, every field of that
    // provider's publishers...
    let mut set_by_provider: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    let publishers = fixture["registries"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|registry| registry["publishers"].as_array().into_iter().flatten());
    for publisher in publishers {
        let provider = publisher["provider"]
            .as_str()
            .expect("EVERY_KEY's publishers name their provider");
        set_by_provider
            .entry(provider.to_owned())
            .or_default()
            .extend(
                publisher
                    .as_object()
                    .into_iter()
                    .flatten()
                    .map(|(k, _)| k.clone()),
            );
    }
    for provider in Provider::ALL {
        let set = set_by_provider.get(provider.as_str()).unwrap_or_else(|| {
            panic!(
                "EVERY_KEY in tests/api/docs.rs has no publisher with provider = {:?}",
                provider.as_str()
            )
        });
        for field in publisher_fields(provider) {
            assert!(
                set.contains(&field),
                "{} publishers accept `{field}`, which no {0} publisher of EVERY_KEY in \
                 tests/api/docs.rs sets",
                provider.as_str()
            );
        }
    }
    // ...and everything the settings hold after reading it (this covers the
    // publishers' own keys, which a flattened struct does not list).
    let mut held = BTreeSet::new();
    key_paths(
        &serde_json::to_value(&settings).expect("settings serialise"),
        "",
        &mut held,
    );
    held.retain(|key| !key.starts_with(FREE_FORM_KEYS));
    assert_eq!(
        differences(&held, &given),
        Vec::<String>::new(),
        "keys the settings hold that EVERY_KEY in tests/api/docs.rs does not set"
    );

    // docs/src/configuration.md lists every key but the providers' own
    // publisher keys (`provider`, `issuer` and `packages` stay there)...
    let provider_keys: BTreeSet<String> = Provider::ALL
        .into_iter()
        .flat_map(publisher_fields)
        .map(|field| format!("registries.publishers.{field}"))
        .collect();
    let common: BTreeSet<String> = given
        .iter()
        .filter(|key| !provider_keys.contains(*key))
        .cloned()
        .collect();
    assert!(
        common.contains("registries.publishers.provider")
            && common.contains("registries.publishers.issuer")
            && common.contains("registries.publishers.packages"),
        "the keys common to all publishers are not where they were expected"
    );
    let documented = documented_keys();
    assert_eq!(
        differences(&leaves(&common), &documented),
        Vec::<String>::new(),
        "keys the settings accept that docs/src/configuration.md does not list"
    );
    assert_eq!(
        differences(&documented, &common),
        Vec::<String>::new(),
        "keys docs/src/configuration.md lists that the settings do not accept \
         (a provider's own publisher keys belong in docs/src/providers.md)"
    );

    // ...and docs/src/providers.md, under each provider's heading, exactly
    // the fields of that provider's publishers.
    let providers_md = read("docs/src/providers.md");
    for provider in Provider::ALL {
        let name = provider.as_str();
        let documented = documented_provider_keys(&providers_md, provider).unwrap_or_else(|| {
            panic!("docs/src/providers.md has no heading naming `provider = \"{name}\"`")
        });
        let accepted: BTreeSet<String> = publisher_fields(provider).into_iter().collect();
        assert_eq!(
            differences(&accepted, &documented),
            Vec::<String>::new(),
            "keys of {name} publishers that the table under its heading in \
             docs/src/providers.md does not list"
        );
        assert_eq!(
            differences(&documented, &accepted),
            Vec::<String>::new(),
            "keys the table under the {name} heading in docs/src/providers.md lists \
             that {name} publishers do not accept"
        );
    }
}

// ---- metrics ---------------------------------------------------------------

/// The families a scrape shows (its `# TYPE` lines).
fn scraped_families(scrape: &str) -> BTreeSet<String> {
    scrape
        .lines()
        .filter_map(|line| line.strip_prefix("# TYPE "))
        .filter_map(|rest| rest.split(' ').next())
        .map(str::to_owned)
        .collect()
}

#[tokio::test]
async fn every_metric_is_documented_and_every_documented_metric_exists() {
    let registered: BTreeSet<String> = Metrics::new().names().iter().cloned().collect();
    let documented = first_column_under("docs/src/operations.md", "## Metrics");
    assert!(
        !documented.is_empty(),
        "docs/src/operations.md has no `## Metrics` table"
    );
    assert_eq!(
        differences(&registered, &documented),
        Vec::<String>::new(),
        "metrics the server registers that the `## Metrics` table of \
         docs/src/operations.md does not list"
    );
    assert_eq!(
        differences(&documented, &registered),
        Vec::<String>::new(),
        "metrics the `## Metrics` table of docs/src/operations.md lists that \
         the server does not register (src/metrics.rs)"
    );
    // What a running server exposes is among what it registers.
    let issuer = trustpub::testing::TestIssuer::start().await;
    let app = crate::helpers::spawn_app(&trustpub::testing::acme_registry(issuer.url())).await;
    let mint = app
        .request(reqwest::Method::POST, "/_/trustpub/acme/mint-token")
        .json(&serde_json::json!({ "token": "junk" }))
        .send()
        .await
        .unwrap();
    assert_eq!(mint.status(), 401);
    let scrape = app.get("/metrics").send().await.unwrap();
    let exposed = scraped_families(&scrape.text().await.unwrap());
    assert!(exposed.contains("trustpub_mints_total"), "{exposed:?}");
    assert_eq!(
        differences(&exposed, &registered),
        Vec::<String>::new(),
        "metrics a scrape shows that Metrics::names does not list"
    );
}

// ---- links -----------------------------------------------------------------

/// The anchor a heading gets, as mdBook (and GitHub) make it: lower case,
/// white space to `-`, other punctuation dropped; repeats get `-1`, `-2`.
fn anchors(text: &str) -> BTreeSet<String> {
    let mut seen: BTreeMap<String, usize> = BTreeMap::new();
    let mut anchors = BTreeSet::new();
    for line in prose_lines(text) {
        let Some(title) = line.strip_prefix('#') else {
            continue;
        };
        let title = title.trim_start_matches('#').trim();
        let id: String = title
            .to_lowercase()
            .chars()
            .filter_map(|c| match c {
                c if c.is_alphanumeric() || c == '-' || c == '_' => Some(c),
                c if c.is_whitespace() => Some('-'),
                _ => None,
            })
            .collect();
        let count = seen.entry(id.clone()).or_default();
        anchors.insert(if *count == 0 {
            id.clone()
        } else {
            format!("{id}-{count}")
        });
        *count += 1;
    }
    anchors
}

/// The targets of the inline links `[text](target)` of a Markdown text,
/// outside code blocks and code spans, with their line numbers.
fn links(text: &str) -> Vec<(usize, String)> {
    let mut found = Vec::new();
    let mut fenced = false;
    for (number, line) in text.lines().enumerate() {
        if line.trim_start().starts_with("```") {
            fenced = !fenced;
            continue;
        }
        if fenced {
            continue;
        }
        let prose: String = line
            .split('`')
            .enumerate()
            .map(|(i, part)| if i % 2 == 0 { part } else { "" })
            .collect();
        let mut rest = prose.as_str();
        while let Some(start) = rest.find("](") {
            rest = &rest[start + 2..];
            let end = rest.find(')').unwrap_or(rest.len());
            found.push((number + 1, rest[..end].trim().to_owned()));
            rest = &rest[end..];
        }
    }
    found
}

/// `path` with `.` and `..` resolved, without touching the file system.
fn normalise(path: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for component in path.components() {
        match component {
            Component::ParentDir => {
                out.pop();
            }
            Component::CurDir => {}
            other => out.push(other),
        }
    }
    out
}

/// A file of the repository, as a message names it.
fn shown(file: &Path) -> String {
    file.strip_prefix(root())
        .unwrap_or(file)
        .display()
        .to_string()
}

fn markdown_files() -> Vec<PathBuf> {
    let mut files = vec![root().join("README.md"), root().join("spec/protocol.md")];
    let mut book: Vec<PathBuf> = std::fs::read_dir(root().join("docs/src"))
        .expect("docs/src exists")
        .map(|entry| entry.expect("a directory entry").path())
        .filter(|path| path.extension().is_some_and(|e| e == "md"))
        .collect();
    book.sort();
    files.extend(book);
    files
}

#[test]
fn links_in_the_readme_and_the_book_lead_somewhere() {
    let book = root().join("docs/src");
    let mut broken = Vec::new();
    for file in markdown_files() {
        let text = std::fs::read_to_string(&file).expect("a Markdown file");
        let shown = shown(&file);
        for (line, target) in links(&text) {
            if target.contains("://") || target.starts_with("mailto:") {
                continue;
            }
            let (path, anchor) = match target.split_once('#') {
                Some((path, anchor)) => (path, Some(anchor)),
                None => (target.as_str(), None),
            };
            let resolved = if path.is_empty() {
                file.clone()
            } else {
                normalise(&file.parent().expect("a folder").join(path))
            };
            let mut complain =
                |why: String| broken.push(format!("{shown}:{line}: {target}: {why}"));
            if file.starts_with(&book) && !resolved.starts_with(&book) {
                complain("leaves docs/src/, so it breaks in the rendered book".into());
                continue;
            }
            if !resolved.exists() {
                complain("no such file".into());
                continue;
            }
            if let Some(anchor) = anchor {
                let is_markdown = resolved.extension().is_some_and(|e| e == "md");
                let target_text = std::fs::read_to_string(&resolved).unwrap_or_default();
                if !is_markdown || !anchors(&target_text).contains(anchor) {
                    complain("no such heading".into());
                }
            }
        }
    }
    assert!(broken.is_empty(), "broken links:\n{}", broken.join("\n"));
}

#[test]
fn every_page_of_the_book_is_in_its_summary() {
    let summary = read("docs/src/SUMMARY.md");
    let listed: BTreeSet<String> = links(&summary).into_iter().map(|(_, t)| t).collect();
    let book = root().join("docs/src");
    for file in markdown_files().iter().filter(|f| f.starts_with(&book)) {
        let name = file
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or_default();
        assert!(
            name == "SUMMARY.md" || listed.contains(name),
            "docs/src/{name} is not listed in docs/src/SUMMARY.md"
        );
    }
}

// ---- the quick start's shell examples ------------------------------------

/// The fenced code blocks of a Markdown text: the line its fence is on, its
/// language, its lines.
fn code_blocks(text: &str) -> Vec<(usize, &str, Vec<&str>)> {
    let mut blocks = Vec::new();
    let mut open: Option<(usize, &str, Vec<&str>)> = None;
    for (number, line) in text.lines().enumerate() {
        let fence = line.trim_start().strip_prefix("```");
        match (open.take(), fence) {
            (None, Some(language)) => open = Some((number + 1, language.trim(), Vec::new())),
            (Some(block), Some(_)) => blocks.push(block),
            (Some(mut block), None) => {
                block.2.push(line);
                open = Some(block);
            }
            (None, None) => {}
        }
    }
    blocks
}

/// A command of an example and the lines it is documented to print; a
/// line ending in `…` stands for any line that starts with what is before it.
struct Run {
    command: String,
    prints: Vec<String>,
}

/// The `sh` and `console` examples of the README and the book that ask the
/// quick-start server (`http://127.0.0.1:8080/`) something with curl, each
/// with where it is. In a `console` block, `$ ` starts a command (a line
/// ending in `\` goes on on the next) and the lines up to the next command
/// are what it prints; in an `sh` block, the block is the command and its
/// whole-line comments are what it prints. Blocks with other commands (the
/// conformance walk-through, checked by the kit's own tests; Docker) are
/// not the quick start's.
fn quick_start_examples() -> Vec<(String, Vec<Run>)> {
    let book = root().join("docs/src");
    let mut examples = Vec::new();
    for file in markdown_files()
        .into_iter()
        .filter(|f| f.ends_with("README.md") || f.starts_with(&book))
    {
        let text = std::fs::read_to_string(&file).expect("a Markdown file");
        let shown = shown(&file);
        for (line, language, lines) in code_blocks(&text) {
            let runs = match language {
                "sh" => vec![Run {
                    command: lines.join("\n"),
                    prints: lines
                        .iter()
                        .filter_map(|l| l.strip_prefix("# "))
                        .map(str::to_owned)
                        .collect(),
                }],
                "console" => {
                    let mut runs: Vec<Run> = Vec::new();
                    let mut continued = false;
                    for l in &lines {
                        match (l.strip_prefix("$ "), runs.last_mut()) {
                            (Some(command), _) => runs.push(Run {
                                command: command.to_owned(),
                                prints: Vec::new(),
                            }),
                            (None, Some(run)) if continued => {
                                run.command = format!("{}\n{l}", run.command);
                            }
                            (None, Some(run)) => run.prints.push((*l).to_owned()),
                            (None, None) => {}
                        }
                        continued = l.ends_with('\\');
                    }
                    runs
                }
                _ => continue,
            };
            let asks_the_quick_start = |run: &Run| {
                run.command.contains("http://127.0.0.1:8080/")
                    && run
                        .command
                        .lines()
                        .filter(|l| !l.starts_with('#'))
                        .all(|l| l.starts_with("curl ") || l.starts_with("  "))
            };
            if !runs.is_empty() && runs.iter().all(asks_the_quick_start) {
                examples.push((format!("{shown}:{line}"), runs));
            }
        }
    }
    examples
}

/// Whether `printed` is what `documented` says, `…` standing for the rest
/// of a line.
fn prints_as_documented(printed: &str, documented: &[String]) -> bool {
    let printed: Vec<&str> = printed.lines().collect();
    printed.len() == documented.len()
        && printed
            .iter()
            .zip(documented)
            .all(|(line, doc)| match doc.strip_suffix('…') {
                Some(start) => line.starts_with(start),
                None => line == doc,
            })
}

#[tokio::test]
async fn the_quick_start_examples_print_what_they_say() {
    let has = |program: &str| {
        std::process::Command::new(program)
            .arg("--version")
            .output()
            .is_ok_and(|o| o.status.success())
    };
    if !(has("bash") && has("curl")) {
        crate::helpers::not_checked(
            "docs::the_quick_start_examples_print_what_they_say",
            "bash or curl is missing",
            "to check it, install both (Debian: apt-get install bash curl)",
        );
        return;
    }
    let examples = quick_start_examples();
    assert!(
        examples.iter().any(|(at, _)| at.starts_with("README.md:")),
        "no example of the README asks the quick-start server anything: {:?}",
        examples.iter().map(|(at, _)| at).collect::<Vec<_>>()
    );
    // The quick start serves examples/trustpub.toml; here on a free port and
    // a fresh database, and curl is sent there for 127.0.0.1:8080.
    let app = crate::helpers::spawn_app(&read("examples/trustpub.toml")).await;
    let port = app.address.rsplit(':').next().expect("a port").to_owned();
    let curl =
        format!("curl() {{ command curl --connect-to 127.0.0.1:8080:127.0.0.1:{port} \"$@\"; }}\n");
    for (at, runs) in examples {
        for run in runs {
            let script = format!("{curl}{}", run.command);
            let output = tokio::task::spawn_blocking(move || {
                std::process::Command::new("bash")
                    .args(["-e", "-c", &script])
                    .output()
                    .expect("bash runs")
            })
            .await
            .expect("the example ran");
            let printed = String::from_utf8_lossy(&output.stdout);
            assert!(
                output.status.success(),
                "{at}: the example failed ({}):\n{}\n{}",
                output.status,
                run.command,
                String::from_utf8_lossy(&output.stderr)
            );
            assert!(
                prints_as_documented(&printed, &run.prints),
                "{at}: the example printed\n{printed}\nwhere its documentation says\n{}",
                run.prints.join("\n")
            );
        }
    }
}
