//! The kit's integration tests: against trustpub, against deliberately
//! broken servers, and through its command line.

mod broken_servers;
mod cli;
mod support;
mod trustpub;
