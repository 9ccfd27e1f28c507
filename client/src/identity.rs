//! The CI job's identity token for an audience, the way each CI hands it
//! out ("ambient" identity), or from a file.

use std::path::PathBuf;
use std::process::{Command, Stdio};

use serde_json::Value;

use crate::claims;
use crate::error::{Error, Result};
use crate::http::Http;

/// The CI systems whose identity tokens the client can get by itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Ci {
    /// GitHub Actions: `ACTIONS_ID_TOKEN_REQUEST_URL` and `_TOKEN`.
    Github,
    /// Forgejo and Gitea Actions: the same variables as GitHub's.
    Forgejo,
    /// GitLab CI/CD: a variable of the job's `id_tokens:`.
    Gitlab,
    /// Buildkite: `buildkite-agent oidc request-token`.
    Buildkite,
    /// CircleCI: `CIRCLE_OIDC_TOKEN_V2`, or `circleci run oidc get`.
    Circleci,
    /// Google Cloud: the metadata server's identity endpoint.
    Google,
}

/// Google's metadata server, unless `GCE_METADATA_HOST` names another
/// (as Google's own client libraries allow).
const GOOGLE_METADATA_HOST: &str = "metadata.google.internal";

fn env(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|value| !value.is_empty())
}

fn env_is_true(name: &str) -> bool {
    env(name).is_some_and(|value| value.eq_ignore_ascii_case("true"))
}

impl Ci {
    /// The CI this process runs in, from the variables each sets in every
    /// job. Forgejo and Gitea also set `GITHUB_ACTIONS`, so they come first.
    pub fn detect() -> Option<Ci> {
        if env_is_true("FORGEJO_ACTIONS") || env_is_true("GITEA_ACTIONS") {
            Some(Ci::Forgejo)
        } else if env_is_true("GITHUB_ACTIONS") {
            Some(Ci::Github)
        } else if env_is_true("GITLAB_CI") {
            Some(Ci::Gitlab)
        } else if env_is_true("BUILDKITE") {
            Some(Ci::Buildkite)
        } else if env_is_true("CIRCLECI") {
            Some(Ci::Circleci)
        } else if on_google_cloud() {
            Some(Ci::Google)
        } else {
            None
        }
    }

    /// Whether the CI reads `::add-mask::` from a step's output.
    pub fn masks_secrets(self) -> bool {
        matches!(self, Ci::Github | Ci::Forgejo)
    }
}

/// A metadata server named in the environment, a Compute Engine machine
/// (Cloud Build and GKE run on them), or Cloud Run.
fn on_google_cloud() -> bool {
    env("GCE_METADATA_HOST").is_some()
        || env("CLOUD_RUN_JOB").is_some()
        || env("K_SERVICE").is_some()
        || std::fs::read_to_string("/sys/class/dmi/id/product_name")
            .is_ok_and(|name| name.trim_start().starts_with("Google"))
}

/// Where the identity token comes from.
#[derive(Debug)]
pub struct Source {
    /// The CI, as given with `--ci` or detected.
    pub ci: Option<Ci>,
    /// GitLab's `id_tokens:` variable.
    pub env_name: String,
    /// A file holding the token, which overrides the CI's own way.
    pub file: Option<PathBuf>,
}

impl Source {
    /// An identity token for `audience`.
    pub fn identity_token(&self, http: &Http, audience: &str) -> Result<String> {
        if let Some(file) = &self.file {
            let token = std::fs::read_to_string(file).map_err(|e| {
                Error::Identity(format!(
                    "reading the identity token {}: {e}",
                    file.display()
                ))
            })?;
            return non_empty(token, &format!("the file {}", file.display()));
        }
        match self.ci {
            Some(Ci::Github | Ci::Forgejo) => actions(http, audience),
            Some(Ci::Gitlab) => gitlab(&self.env_name, audience),
            Some(Ci::Buildkite) => run_cli(
                "buildkite-agent",
                &[
                    "oidc",
                    "request-token",
                    "--audience",
                    audience,
                    "--claim",
                    "organization_id",
                ],
            ),
            Some(Ci::Circleci) => circleci(audience),
            Some(Ci::Google) => google(http, audience),
            None => Err(Error::Identity(
                "no CI detected: name it with --ci (github, forgejo, gitlab, buildkite, \
                 circleci, google), or give the identity token with --id-token-file"
                    .into(),
            )),
        }
    }
}

fn non_empty(token: String, from: &str) -> Result<String> {
    let token = token.trim();
    if token.is_empty() {
        return Err(Error::Identity(format!(
            "{from} gave an empty identity token"
        )));
    }
    Ok(token.to_owned())
}

/// GitHub Actions, Forgejo and Gitea: `GET $ACTIONS_ID_TOKEN_REQUEST_URL`
/// with the audience added, authorized by `$ACTIONS_ID_TOKEN_REQUEST_TOKEN`,
/// answers `{"value": "<token>"}`.
fn actions(http: &Http, audience: &str) -> Result<String> {
    let (Some(url), Some(bearer)) = (
        env("ACTIONS_ID_TOKEN_REQUEST_URL"),
        env("ACTIONS_ID_TOKEN_REQUEST_TOKEN"),
    ) else {
        return Err(Error::Identity(
            "ACTIONS_ID_TOKEN_REQUEST_URL and ACTIONS_ID_TOKEN_REQUEST_TOKEN are not set: \
             give the job `permissions: id-token: write`"
                .into(),
        ));
    };
    let mut request = url::Url::parse(&url).map_err(|e| {
        Error::Identity(format!(
            "ACTIONS_ID_TOKEN_REQUEST_URL is not a URL ({e}): {url}"
        ))
    })?;
    request.query_pairs_mut().append_pair("audience", audience);
    let shown = request.to_string();
    let answer = http
        .get(
            request.as_str(),
            &[("Authorization", &format!("bearer {bearer}"))],
        )?
        .ok("the identity token request", &shown)?;
    match answer.json(&shown)?.get("value").and_then(Value::as_str) {
        Some(token) => non_empty(token.to_owned(), &shown),
        None => Err(Error::Protocol {
            url: shown,
            what: "the answer has no value".into(),
        }),
    }
}

/// GitLab puts the token of an `id_tokens:` entry in the variable it names.
fn gitlab(name: &str, audience: &str) -> Result<String> {
    let Some(token) = env(name) else {
        return Err(Error::Identity(format!(
            "GitLab CI: ${name} is empty; give the job\n  id_tokens:\n    {name}:\n      \
             aud: {audience}\nor name the variable with --id-token-env"
        )));
    };
    non_empty(token, &format!("${name}"))
}

/// CircleCI gives every job `CIRCLE_OIDC_TOKEN_V2` for its default audience;
/// for another, `circleci run oidc get` makes one.
fn circleci(audience: &str) -> Result<String> {
    if let Some(token) = env("CIRCLE_OIDC_TOKEN_V2")
        && claims::audiences(&token).is_some_and(|a| a.iter().any(|a| a == audience))
    {
        return Ok(token);
    }
    let claims = serde_json::json!({ "aud": audience }).to_string();
    run_cli("circleci", &["run", "oidc", "get", "--claims", &claims])
}

/// `GET http://<metadata host>/…/identity?audience=…&format=full` with
/// `Metadata-Flavor: Google`; the answer is the token itself. `format=full`
/// puts the service account's email in the token, which trustpub's Google
/// publishers need.
fn google(http: &Http, audience: &str) -> Result<String> {
    let host = env("GCE_METADATA_HOST").unwrap_or_else(|| GOOGLE_METADATA_HOST.to_owned());
    let mut url = url::Url::parse(&format!(
        "http://{host}/computeMetadata/v1/instance/service-accounts/default/identity"
    ))
    .map_err(|e| Error::Identity(format!("GCE_METADATA_HOST {host:?}: {e}")))?;
    url.query_pairs_mut()
        .append_pair("audience", audience)
        .append_pair("format", "full");
    let answer = http
        .get(url.as_str(), &[("Metadata-Flavor", "Google")])?
        .ok("the identity token request", url.as_str())?;
    non_empty(answer.body, url.as_str())
}

/// Runs a CI's command-line tool, whose standard output is the token; what
/// it says on stderr goes to ours.
fn run_cli(program: &str, args: &[&str]) -> Result<String> {
    let shown = format!("{program} {}", args.join(" "));
    let output = Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .stderr(Stdio::inherit())
        .output()
        .map_err(|e| Error::Identity(format!("running `{shown}`: {e}")))?;
    if !output.status.success() {
        return Err(Error::Identity(format!(
            "`{shown}` failed ({})",
            output.status
        )));
    }
    let token = String::from_utf8(output.stdout)
        .map_err(|_| Error::Identity(format!("`{shown}` printed something not UTF-8")))?;
    non_empty(token, &format!("`{shown}`"))
}
