//! The PEP 807 conformance kit: a test OIDC issuer, black-box checks of a
//! server reached through its upload URL, and reports.

#[cfg(feature = "broken-servers")]
pub mod broken;
pub mod catalogue;
pub mod checks;
pub mod cli;
pub mod http;
pub mod issuer;
pub mod report;
