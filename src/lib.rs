pub mod cli;
pub mod config;
pub mod http;
pub mod problem;
pub mod publishers;
pub mod registry;
pub mod startup;
pub mod store;
pub mod telemetry;

pub use problem::{Error, Result};
