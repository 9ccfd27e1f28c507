//! trustpub's integration tests: the real server on a random port, a real
//! database (SQLite, or PostgreSQL when `TEST_DATABASE_URL` is set).
//! They need nothing beyond the Rust toolchain; the end-to-end tests with
//! nginx and the Python clients are the `e2e` target, in `tests/e2e/`.

mod admin;
mod audience;
mod cli;
mod clients;
mod compose;
mod config;
mod crash;
mod discovery;
mod docs;
mod errors;
mod exchange;
mod fixtures;
mod gateway;
mod helpers;
mod instances;
mod keys;
mod layering;
mod metrics;
mod ops;
mod outages;
mod providers;
mod rate_limits;
mod registry_side;
mod store;
