//! Entry points for the fuzz targets in `fuzz/` (cargo-fuzz), for the
//! parsers that are not public on their own: each one calls the code the
//! server runs, and nothing else. Hidden from the documentation; not an API
//! to build on.
//!
//! The other parsers the targets reach are public already:
//! `oidc::verify` (identity tokens), `gateway::package_in_body` (Python
//! and cargo uploads), `domain::PackagePath`, `domain::is_plain_path` and
//! `registry::Gateway` (paths and templates).

use crate::config::Settings;
use crate::domain::PackagePath;
use crate::problem::Result;

/// The upload path named by the query string of a discovery request
/// (`GET /.well-known/pytp?<query>`), read as the handler reads it.
pub fn discovery_key(query: &str) -> Result<String> {
    crate::http::upload_path_in_query(query)
}

/// The package that forward-auth reads in a proxy's forwarded URI
/// (`X-Original-URI`, `X-Forwarded-Uri`) through a registry's
/// `forward_auth.package_path`; `None` when the path does not fit it.
pub fn forwarded_package(template: &PackagePath, forwarded_uri: &str) -> Result<Option<String>> {
    crate::registry::package_in_path(template, crate::http::path_of_uri(forwarded_uri))
}

/// The settings of a configuration file's text, over the defaults, as
/// `trustpub check-config` reads them (without `TRUSTPUB_*` variables).
pub fn settings(toml: &str) -> Result<Settings> {
    Settings::from_toml(toml)
}
