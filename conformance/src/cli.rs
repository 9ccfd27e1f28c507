//! The command line: `setup`, `issuer` and `run`.

use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};
use serde_json::{Map, Value};
use url::Url;

use crate::checks::{self, Options};
use crate::issuer::{
    self, DEFAULT_FORBIDDEN_PACKAGE, DEFAULT_LISTEN, DEFAULT_PACKAGE, Identity, KIT_KEYS,
};

/// Exit status: no PEP 807 MUST check failed (with --strict: no check
/// failed, and no PEP 807 MUST check was skipped).
pub const EXIT_CONFORMS: u8 = 0;
/// Exit status: a PEP 807 MUST check failed (with --strict: any check
/// failed, or a PEP 807 MUST check was skipped).
pub const EXIT_FAILED: u8 = 1;
/// Exit status: the kit could not run (bad arguments, address in use, …).
pub const EXIT_ERROR: u8 = 2;

/// Black-box PEP 807 (Trusted Publishing) conformance checks for a package
/// index, from its upload URL, with a built-in test OIDC issuer.
#[derive(Debug, Parser)]
#[command(name = "trustpub-conformance", version)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Print what the server under test must trust: the issuer URL, the
    /// claims, the package names, and a trustpub.toml snippet.
    Setup {
        #[command(flatten)]
        identity: IdentityArgs,
        /// The upload URL to put in the trustpub snippet. The default sits
        /// next to the quick start's registry (`/legacy/`), so that the
        /// snippet can be appended to examples/trustpub.toml as it is.
        #[arg(
            long,
            value_name = "URL",
            default_value = "http://127.0.0.1:8080/conformance/legacy/"
        )]
        upload_url: String,
        /// Print only the trustpub.toml snippet.
        #[arg(long)]
        toml: bool,
    },
    /// Serve the kit's OIDC issuer until interrupted (for servers that must
    /// reach it outside a run; `run --no-issuer` then uses it).
    Issuer {
        #[command(flatten)]
        identity: IdentityArgs,
    },
    /// Run the checks against the server behind an upload URL.
    Run {
        /// The upload URL clients are given, e.g. https://pypi.example.com/legacy/
        #[arg(long, value_name = "URL")]
        upload_url: String,
        #[command(flatten)]
        identity: IdentityArgs,
        /// Do not start the issuer: one is already serving at --issuer-url
        /// (`trustpub-conformance issuer`).
        #[arg(long)]
        no_issuer: bool,
        /// trustpub's burn-token endpoint, when it is not next to the mint
        /// endpoint.
        #[arg(long, value_name = "URL")]
        burn_endpoint: Option<String>,
        /// Write the JSON report here (`-`: standard output).
        #[arg(long, value_name = "PATH")]
        json: Option<PathBuf>,
        /// Write the JUnit XML report here (`-`: standard output).
        #[arg(long, value_name = "PATH")]
        junit: Option<PathBuf>,
        /// Fail (exit 1) on any failed check, SHOULD and extensions included,
        /// and on any skipped PEP 807 MUST check.
        #[arg(long)]
        strict: bool,
        /// Upload throw-away source distributions of --package (version
        /// 0.0.<time>.<n>) to the upload URL with minted credentials, to
        /// check that single-use credentials serve one upload and multi-use
        /// ones several. Off by default: they stay on the index.
        #[arg(long)]
        probe_upload: bool,
        /// An origin (`http://host[:port]`) whose plain-http endpoint URLs
        /// count as potentially trustworthy, as PEP 807 allows for origins
        /// trusted where the client runs (an internal network). Repeatable.
        #[arg(long, value_name = "ORIGIN")]
        trusted_origin: Vec<String>,
        /// Seconds one request may take.
        #[arg(long, value_name = "SECONDS", default_value_t = 10, value_parser = clap::value_parser!(u64).range(1..=300))]
        timeout: u64,
    },
}

#[derive(Debug, Args)]
struct IdentityArgs {
    /// Where the kit's issuer listens (`IP:port`).
    #[arg(long, value_name = "ADDR", default_value = DEFAULT_LISTEN)]
    issuer_listen: SocketAddr,
    /// The issuer URL tokens carry in `iss`, as the server reaches the issuer
    /// (default: http://<issuer-listen>).
    #[arg(long, value_name = "URL")]
    issuer_url: Option<String>,
    /// A JSON object of claims to set over the defaults (null removes one).
    #[arg(long, value_name = "FILE")]
    claims: Option<PathBuf>,
    /// A package the publisher may publish (trustpub's `packages` check).
    #[arg(long, value_name = "NAME", default_value = DEFAULT_PACKAGE)]
    package: String,
    /// A package the publisher may not publish.
    #[arg(long, value_name = "NAME", default_value = DEFAULT_FORBIDDEN_PACKAGE)]
    forbidden_package: String,
}

impl IdentityArgs {
    /// The identity, with `listening` the address actually bound (it may
    /// have had port 0).
    fn identity(&self, listening: SocketAddr) -> Result<Identity, String> {
        let url = match &self.issuer_url {
            Some(url) => issuer::issuer_url(url)?,
            None if listening.ip().is_unspecified() => {
                return Err(format!(
                    "the issuer listens on {listening}: give --issuer-url, the URL the server reaches it at"
                ));
            }
            None if listening.port() == 0 => {
                return Err(
                    "--issuer-listen has port 0: give a fixed port, or --issuer-url".to_owned(),
                );
            }
            None => issuer::issuer_url(&format!("http://{listening}"))?,
        };
        let mut identity = Identity::new(url);
        if let Some(path) = &self.claims {
            identity.overrides = read_claims(path)?;
        }
        for (flag, name) in [
            ("--package", &self.package),
            ("--forbidden-package", &self.forbidden_package),
        ] {
            if name.trim().is_empty() {
                return Err(format!("{flag} must not be empty"));
            }
        }
        identity.package = self.package.clone();
        identity.forbidden_package = self.forbidden_package.clone();
        Ok(identity)
    }

    fn bind(&self) -> Result<TcpListener, String> {
        TcpListener::bind(self.issuer_listen).map_err(|e| {
            let hint = if e.kind() == std::io::ErrorKind::AddrInUse {
                " (if `trustpub-conformance issuer` serves there, add --no-issuer)"
            } else {
                ""
            };
            format!(
                "the issuer cannot listen on {}: {e}{hint}",
                self.issuer_listen
            )
        })
    }
}

fn read_claims(path: &Path) -> Result<Map<String, Value>, String> {
    let text =
        std::fs::read_to_string(path).map_err(|e| format!("--claims {}: {e}", path.display()))?;
    match serde_json::from_str(&text) {
        Ok(Value::Object(claims)) => Ok(claims),
        Ok(_) => Err(format!("--claims {}: not a JSON object", path.display())),
        Err(e) => Err(format!("--claims {}: {e}", path.display())),
    }
}

/// Runs the command line; the process's exit status.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime,
        Err(e) => return error(format!("starting the runtime: {e}")),
    };
    match runtime.block_on(execute(cli)) {
        Ok(code) => ExitCode::from(code),
        Err(message) => error(message),
    }
}

fn error(message: String) -> ExitCode {
    eprintln!("trustpub-conformance: {message}");
    ExitCode::from(EXIT_ERROR)
}

async fn execute(cli: Cli) -> Result<u8, String> {
    match cli.command {
        Command::Setup {
            identity,
            upload_url: upload,
            toml,
        } => {
            let (upload, _) = checks::upload_url(&upload)?;
            let identity = identity.identity(identity.issuer_listen)?;
            if toml {
                print!("{}", identity.trustpub_toml(upload.as_str()));
            } else {
                print!("{}", identity.describe(upload.as_str()));
            }
            Ok(EXIT_CONFORMS)
        }
        Command::Issuer { identity: args } => {
            let listener = args.bind()?;
            let identity = args.identity(local_addr(&listener)?)?;
            let _issuer = issuer::start(listener, &identity.issuer);
            println!("{}", identity.issuer);
            eprintln!(
                "trustpub-conformance: issuer {} serving keys {} until interrupted",
                identity.issuer,
                KIT_KEYS.map(|k| k.kid()).join(", ")
            );
            wait_for_signal().await;
            Ok(EXIT_CONFORMS)
        }
        Command::Run {
            upload_url: upload,
            identity: args,
            no_issuer,
            burn_endpoint,
            json,
            junit,
            strict,
            probe_upload,
            trusted_origin,
            timeout,
        } => {
            let (upload, upload_path) = checks::upload_url(&upload)?;
            let trusted_origins = trusted_origin
                .iter()
                .map(|text| checks::trusted_origin(text))
                .collect::<Result<_, _>>()?;
            let burn_endpoint = burn_endpoint
                .map(|text| Url::parse(&text).map_err(|e| format!("--burn-endpoint {text:?}: {e}")))
                .transpose()?;
            // With --no-issuer, the signing keys still come from an issuer
            // object: one on a private port that nobody is told about.
            let listener = if no_issuer {
                TcpListener::bind("127.0.0.1:0").map_err(|e| format!("a loopback port: {e}"))?
            } else {
                args.bind()?
            };
            let listening = if no_issuer {
                args.issuer_listen
            } else {
                local_addr(&listener)?
            };
            if no_issuer && args.issuer_url.is_none() && listening.port() == 0 {
                return Err(
                    "--no-issuer needs --issuer-url or a fixed --issuer-listen port".to_owned(),
                );
            }
            let identity = args.identity(listening)?;
            let signer = issuer::start(listener, &identity.issuer);
            let options = Options {
                upload_url: upload,
                upload_path,
                trusted_origins,
                identity,
                burn_endpoint,
                timeout: Duration::from_secs(timeout),
                probe_upload,
            };
            let report = checks::run(&options, &signer).await?;
            let to_stdout = [&json, &junit]
                .iter()
                .any(|p| p.as_deref() == Some(Path::new("-")));
            if to_stdout {
                eprint!("{}", report.table());
            } else {
                print!("{}", report.table());
            }
            if let Some(path) = &json {
                let text =
                    serde_json::to_string_pretty(&report.json()).expect("JSON serialises") + "\n";
                write_report(path, &text)?;
            }
            if let Some(path) = &junit {
                write_report(path, &report.junit())?;
            }
            Ok(if report.conforms(strict) {
                EXIT_CONFORMS
            } else {
                EXIT_FAILED
            })
        }
    }
}

fn local_addr(listener: &TcpListener) -> Result<SocketAddr, String> {
    listener
        .local_addr()
        .map_err(|e| format!("the issuer's address: {e}"))
}

fn write_report(path: &Path, text: &str) -> Result<(), String> {
    if path == Path::new("-") {
        print!("{text}");
        Ok(())
    } else {
        std::fs::write(path, text).map_err(|e| format!("writing {}: {e}", path.display()))
    }
}

async fn wait_for_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        if let Ok(mut terminate) = signal(SignalKind::terminate()) {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = terminate.recv() => {}
            }
            return;
        }
    }
    let _ = tokio::signal::ctrl_c().await;
}
