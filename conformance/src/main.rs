//! `trustpub-conformance`: checks any PEP 807 server from its upload URL.
//! See conformance/README.md.

fn main() -> std::process::ExitCode {
    conformance::cli::main()
}
