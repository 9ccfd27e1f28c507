//! The command line: `trustpub serve | migrate | check-config [--config PATH]`,
//! and `trustpub admin …`, the admin API's client (`admin.rs`).

mod admin;

use std::path::{Path, PathBuf};

use clap::{Parser, Subcommand};

use crate::config::Settings;
use crate::problem::Result;
use crate::startup::Application;
use crate::store::Store;
use crate::telemetry;

#[derive(Debug, Parser)]
#[command(
    name = "trustpub",
    version,
    about = "Trusted Publishing for self-hosted package registries"
)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Apply migrations, sync the configured registries and serve HTTP.
    Serve(ConfigArg),
    /// Apply the database migrations and exit.
    Migrate(ConfigArg),
    /// Validate the configuration (TLS files included) and print it, secrets
    /// redacted.
    CheckConfig(ConfigArg),
    /// Manage registries, publishers and credentials, and read events,
    /// through a running trustpub's admin API.
    Admin(admin::AdminArgs),
}

#[derive(Debug, clap::Args)]
struct ConfigArg {
    /// The TOML configuration file; without it ./trustpub.toml is read when it exists.
    #[arg(long, env = "TRUSTPUB_CONFIG")]
    config: Option<PathBuf>,
}

impl Cli {
    pub async fn run(self) -> Result<()> {
        match self.command {
            Command::Admin(args) => args.run().await,
            Command::Serve(arg) => {
                let (settings, file) = load(&arg)?;
                telemetry::init(&settings.log);
                log_config_file(file.as_deref());
                Application::build(&settings)
                    .await?
                    .run_until_stopped()
                    .await
            }
            Command::Migrate(arg) => {
                let (settings, file) = load(&arg)?;
                telemetry::init(&settings.log);
                log_config_file(file.as_deref());
                let store =
                    Store::connect(&settings.database, crate::metrics::Metrics::new()).await?;
                store.migrate().await?;
                println!("migrations applied ({:?})", store.backend());
                Ok(())
            }
            Command::CheckConfig(arg) => {
                let (settings, file) = load(&arg)?;
                match &file {
                    Some(file) => eprintln!("configuration file: {}", file.display()),
                    None => eprintln!("warning: {NO_FILE}"),
                }
                if let Some(tls) = &settings.server.tls {
                    crate::startup::load_tls(tls)?;
                }
                for warning in crate::config::routing_warnings(&settings.registries) {
                    eprintln!("warning: {warning}");
                }
                print!("{}", settings.to_redacted_toml());
                let count = settings.registries.len();
                let noun = if count == 1 { "registry" } else { "registries" };
                eprintln!("configuration is valid: {count} {noun}");
                Ok(())
            }
        }
    }
}

/// Said when neither `--config`, `TRUSTPUB_CONFIG` nor `./trustpub.toml`
/// names a file.
const NO_FILE: &str = "no configuration file found (no --config, no TRUSTPUB_CONFIG, \
                       no ./trustpub.toml): using the built-in defaults and TRUSTPUB_* \
                       variables, with no registry";

/// The settings, and the file they were read from (made absolute, for the log).
fn load(arg: &ConfigArg) -> Result<(Settings, Option<PathBuf>)> {
    let file = Settings::file(arg.config.as_deref())?;
    let settings = Settings::load(file.as_deref())?;
    Ok((
        settings,
        file.map(|file| std::fs::canonicalize(&file).unwrap_or(file)),
    ))
}

fn log_config_file(file: Option<&Path>) {
    match file {
        Some(file) => tracing::info!(file = %file.display(), "configuration read"),
        None => tracing::warn!("{NO_FILE}"),
    }
}
