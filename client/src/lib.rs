//! trustpub-token: a PEP 807 Trusted Publishing client. Given an upload
//! URL, it discovers where the index mints credentials, gets the CI job's
//! identity token for the index's audience, and mints an upload credential
//! (`mint`), or runs an upload tool with it and burns it afterwards
//! (`exec`).

pub mod claims;
pub mod cli;
pub mod discovery;
pub mod error;
pub mod exchange;
pub mod exec;
pub mod http;
pub mod identity;
pub mod interrupts;
