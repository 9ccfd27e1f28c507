//! trustpub's integration tests: the real server on a random port, a real
//! database (SQLite, or PostgreSQL when `TEST_DATABASE_URL` is set).

mod audience;
mod cli;
mod clients;
mod compose;
mod config;
mod discovery;
mod docs;
mod errors;
mod exchange;
mod gateway;
mod helpers;
mod keys;
mod layering;
mod nginx;
mod ops;
mod parsers;
mod real_clients;
mod registry_side;
mod store;
