fn main() -> std::process::ExitCode {
    trustpub_client::cli::main()
}
