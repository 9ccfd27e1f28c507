pub mod admin;
pub mod cli;
pub mod config;
pub mod domain;
pub mod exchange;
#[doc(hidden)]
pub mod fuzzing;
pub mod gateway;
pub mod http;
pub mod limits;
pub mod metrics;
pub mod oidc;
pub mod problem;
pub mod publishers;
pub mod registry;
pub mod startup;
pub mod store;
pub mod telemetry;
#[cfg(feature = "test-helpers")]
pub mod testing;
pub mod tokens;

pub use problem::{Error, Result};
