//! The `trustpub-token` binary, run as a CI job runs it, against a real
//! trustpub started in-process and the test OIDC issuer; each CI's ambient
//! identity simulated by its real environment variables (and, for the CIs
//! whose tokens come from a command-line tool, a script of that name on
//! `PATH`). The conformance kit's deliberately broken servers stand in for
//! indexes that break PEP 807.

mod ambient;
mod broken;
mod discovery;
mod examples;
mod exec;
mod refusals;
mod support;
