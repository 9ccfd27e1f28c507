use std::process::ExitCode;

use clap::Parser;
use trustpub::cli::Cli;

// Every request allocates and frees many small buffers on two or more
// threads; mimalloc does that with less contention and less work than the
// system allocator (bench/README.md, "The mint side by side").
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

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
