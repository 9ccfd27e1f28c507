use std::process::ExitCode;

use clap::Parser;
use trustpub::cli::Cli;

#[tokio::main]
async fn main() -> ExitCode {
    match Cli::parse().run().await {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("trustpub: {error}");
            ExitCode::FAILURE
        }
    }
}
