//! The command line: `mint` and `exec`.

use std::ffi::OsString;
use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{SystemTime, UNIX_EPOCH};

use clap::{Args, Parser, Subcommand};

use crate::discovery::UploadUrl;
use crate::error::Result;
use crate::exchange::{self, MintRequest, Minted};
use crate::exec;
use crate::http::Http;
use crate::identity::{Ci, Source};
use crate::interrupts::Interrupts;

#[derive(Parser)]
#[command(name = "trustpub-token", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Mint an upload credential and print it on stdout (nothing else).
    Mint(MintArgs),
    /// Mint a credential, run COMMAND with it in the environment variables
    /// that twine, uv, pdm, maturin and cargo read, then burn it; exit with
    /// COMMAND's status.
    Exec {
        #[command(flatten)]
        mint: MintArgs,
        /// Also set CARGO_REGISTRIES_<NAME>_TOKEN, for `cargo publish
        /// --registry NAME`.
        #[arg(long, value_name = "NAME")]
        cargo_registry: Option<String>,
        /// The command to run, after `--`.
        #[arg(required = true, last = true, value_name = "COMMAND")]
        command: Vec<OsString>,
    },
}

/// PEP 807's features.
#[derive(Debug, Clone, Copy, clap::ValueEnum)]
enum Feature {
    SingleUseToken,
    MultiUseToken,
}

impl Feature {
    fn name(self) -> &'static str {
        match self {
            Feature::SingleUseToken => "single-use-token",
            Feature::MultiUseToken => "multi-use-token",
        }
    }
}

#[derive(Args)]
struct MintArgs {
    /// The registry's upload URL, as upload tools are given it.
    #[arg(long, env = "TRUSTPUB_UPLOAD_URL", value_name = "URL")]
    upload_url: String,
    /// PEP 807 features to ask for (default: the index's defaults).
    #[arg(long, value_enum, value_delimiter = ',', value_name = "FEATURE")]
    features: Vec<Feature>,
    /// Narrow the credential to these packages (trustpub's extension).
    #[arg(long = "package", value_name = "NAME", num_args = 1..)]
    packages: Vec<String>,
    /// The CI to get the identity token from (default: detected).
    #[arg(long, value_enum)]
    ci: Option<Ci>,
    /// GitLab CI: the variable of the job's `id_tokens:` that holds the token.
    #[arg(long, value_name = "NAME", default_value = "TRUSTPUB_ID_TOKEN")]
    id_token_env: String,
    /// Read the identity token from this file instead (a Kubernetes
    /// projected token, a token saved by an earlier step).
    #[arg(long, value_name = "FILE")]
    id_token_file: Option<PathBuf>,
}

impl MintArgs {
    /// Mints, and tells the CI to mask the credential before anything else
    /// can show it. `mask` writes the `::add-mask::` line.
    fn mint(self, http: &Http, mask: impl FnOnce(&str)) -> Result<(UploadUrl, Minted)> {
        let ci = self.ci.or_else(Ci::detect);
        let request = MintRequest {
            upload: UploadUrl::parse(&self.upload_url)?,
            features: self.features.iter().map(|f| f.name().to_owned()).collect(),
            packages: self.packages,
            source: Source {
                ci,
                env_name: self.id_token_env,
                file: self.id_token_file,
            },
        };
        let minted = exchange::mint(http, &request)?;
        if ci.is_some_and(Ci::masks_secrets) {
            mask(&format!("::add-mask::{}", minted.credential.secret()));
        }
        eprintln!(
            "trustpub-token: minted a credential for {}{}",
            request.upload.as_str(),
            validity(minted.expires)
        );
        Ok((request.upload, minted))
    }
}

/// PEP 807's bounds of a credential's lifetime, in seconds, and how far an
/// `expires` may stray from them before the client says so (the request's
/// own time, clocks that differ).
const LIFETIME: std::ops::RangeInclusive<i64> = 900..=21_600;
const LIFETIME_SLACK: i64 = 60;

/// ", valid N more minutes", when the index said until when, and a warning
/// when that is outside PEP 807's bounds.
fn validity(expires: Option<i64>) -> String {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX));
    expires.map_or_else(String::new, |expires| {
        let left = expires - now;
        let mut text = format!(", valid {} more minutes", left.max(0) / 60);
        if left < LIFETIME.start() - LIFETIME_SLACK || left > LIFETIME.end() + LIFETIME_SLACK {
            text.push_str(&format!(
                "\ntrustpub-token: warning: the index says the credential expires in {left} s; \
                 PEP 807 has credentials last {} to {} s",
                LIFETIME.start(),
                LIFETIME.end()
            ));
        }
        text
    })
}

pub fn main() -> ExitCode {
    let http = Http::default();
    let outcome = match Cli::parse().command {
        Command::Mint(args) => mint(&http, args),
        Command::Exec {
            mint,
            cargo_registry,
            command,
        } => exec(&http, mint, cargo_registry.as_deref(), &command),
    };
    outcome.unwrap_or_else(|error| {
        eprintln!("trustpub-token: {error}");
        ExitCode::FAILURE
    })
}

/// The mask goes to stderr: stdout holds the credential alone, and is
/// usually captured by `$(…)`, where the runner would never read it.
fn mint(http: &Http, args: MintArgs) -> Result<ExitCode> {
    let (_, minted) = args.mint(http, |line| eprintln!("{line}"))?;
    let mut stdout = std::io::stdout().lock();
    writeln!(stdout, "{}", minted.credential.secret())
        .and_then(|()| stdout.flush())
        .map_err(|e| crate::error::Error::Usage(format!("writing the credential: {e}")))?;
    Ok(ExitCode::SUCCESS)
}

fn exec(
    http: &Http,
    args: MintArgs,
    cargo_registry: Option<&str>,
    command: &[OsString],
) -> Result<ExitCode> {
    let interrupts = Interrupts::catch()
        .map_err(|e| crate::error::Error::Usage(format!("catching SIGINT and SIGTERM: {e}")))?;
    let (upload, minted) = args.mint(http, |line| {
        println!("{line}");
        let _ = std::io::stdout().flush();
    })?;
    interrupts.minted();
    let variables = exec::variables(minted.credential.secret(), upload.as_str(), cargo_registry);
    let status = exec::run(command, &variables, &interrupts);
    match exchange::burn(http, &minted) {
        Ok(()) => eprintln!("trustpub-token: burnt the credential at {}", minted.burn),
        Err(error) if !minted.burn_discovered => eprintln!(
            "trustpub-token: the index names no burn endpoint, and PyPI's did not take the \
             credential; it stays valid until it expires\n{error}"
        ),
        Err(error) => eprintln!("trustpub-token: the credential could not be burnt: {error}"),
    }
    if let Some(signal) = interrupts.received() {
        eprintln!("trustpub-token: stopped by signal {signal}");
        return Ok(ExitCode::from(u8::try_from(128 + signal).unwrap_or(1)));
    }
    // A command is skipped only after a signal.
    Ok(ExitCode::from(status.unwrap_or(1)))
}
