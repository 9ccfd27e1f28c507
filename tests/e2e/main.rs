//! trustpub's end-to-end tests: the real server, as in `tests/api/`, with
//! programs beyond the Rust toolchain around it. Debian's nginx in front of
//! forward-auth (`nginx.rs`); uv, pdm, maturin and pypiserver from the
//! project-local `.venv-e2e/` (`real_clients.rs`); uv and twine run by
//! the client `trustpub-token exec` (`token_exec.rs`); Python's multipart
//! parsers, in `multipart_sink.py` next to this file, and pypiserver behind
//! the upload gateway (`parsers.rs`); the conformance kit's upload probe
//! through the gateway to pypiserver (`kit.rs`); devpi-server, with users
//! and upload ACLs, behind the devpi recipe's nginx and the gateway, and
//! devpi's own client through them (`devpi.rs`); Kellnr behind nginx
//! and the gateway, when `.ci/setup-kellnr` has built it (`kellnr.rs`);
//! three trustpub processes on one database behind nginx round robin
//! (`round_robin.rs`).
//!
//! `.ci/setup` installs all of them, and `.ci/test` runs it first. This
//! target is built only with the `e2e` feature (`cargo test --features e2e`),
//! so that plain `cargo test` needs none of them. A test whose program is
//! missing fails, saying how to install it, except Kellnr's, a 20-minute
//! build that `.ci/test` does not make: without it, its test prints NOTE.

// Shared with tests/api; not every helper is used here.
#[allow(dead_code)]
#[path = "../api/fixtures.rs"]
mod fixtures;
#[allow(dead_code)]
#[path = "../api/helpers.rs"]
mod helpers;

mod devpi;
mod kellnr;
mod kit;
mod nginx;
mod parsers;
mod real_clients;
mod round_robin;
mod token_exec;
