//! The command line: `trustpub serve | migrate | check-config [--config PATH]`.

use std::path::PathBuf;

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
            Command::Serve(arg) => {
                let settings = Settings::load(arg.config.as_deref())?;
                telemetry::init(&settings.log);
                Application::build(&settings)
                    .await?
                    .run_until_stopped()
                    .await
            }
            Command::Migrate(arg) => {
                let settings = Settings::load(arg.config.as_deref())?;
                telemetry::init(&settings.log);
                let store = Store::connect(&settings.database).await?;
                store.migrate().await?;
                println!("migrations applied ({:?})", store.backend());
                Ok(())
            }
            Command::CheckConfig(arg) => {
                let settings = Settings::load(arg.config.as_deref())?;
                if let Some(tls) = &settings.server.tls {
                    crate::startup::load_tls(tls)?;
                }
                print!("{}", settings.to_redacted_toml());
                eprintln!(
                    "configuration is valid: {} registries",
                    settings.registries.len()
                );
                Ok(())
            }
        }
    }
}
