//! The upload gateway: trustpub in front of a registry that knows nothing of
//! it. A client uploads to trustpub with a minted credential; trustpub reads
//! which package is uploaded, checks the credential and its scope, and
//! forwards the upload, streaming, with the registry's own credential.
//!
//! This module holds the reading of package names from uploads and the use
//! case (`upload`); the configuration (`[registries.gateway]`) is
//! `crate::registry::Gateway`, and `src/http/gateway.rs` routes requests to
//! the use case and relays the registry's answer.

mod cargo;
mod python;
mod upload;

use bytes::Bytes;

use crate::domain::Ecosystem;
use crate::problem::{Error, Result};

pub use python::PartCounter;
pub use upload::{Upload, upload};

/// The largest part of an upload read before the package is known: the
/// metadata that clients send before the file.
pub const METADATA_LIMIT: usize = 1024 * 1024;

/// The package an upload is for, and its version when the upload says.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct UploadedPackage {
    pub name: String,
    pub version: Option<String>,
}

/// What reading the start of an upload gave.
#[derive(Debug)]
pub enum Read {
    /// The package is known.
    Found(Found),
    /// More of the body is needed.
    NeedMore,
}

/// The package of an upload, and how to forward the upload.
#[derive(Debug)]
pub struct Found {
    pub package: UploadedPackage,
    /// The `Content-Type` to send upstream in place of the client's.
    pub content_type: Option<String>,
    /// Checks the whole body as it streams, from its first byte.
    pub counter: Option<PartCounter>,
}

impl Found {
    /// A package named outside the body: the body goes on as it is.
    fn named(package: UploadedPackage) -> Self {
        Found {
            package,
            content_type: None,
            counter: None,
        }
    }
}

/// Reads the package from the start of a body, as the ecosystem's upload
/// protocol puts it there. `prefix` is everything read so far; `complete`
/// says whether that is the whole body.
pub fn package_in_body(
    ecosystem: Ecosystem,
    content_type: &str,
    prefix: &[Bytes],
    complete: bool,
) -> Result<Read> {
    let read = match ecosystem {
        Ecosystem::Python => python::package(content_type, prefix, complete)?,
        Ecosystem::Cargo => cargo::package(prefix)?,
        Ecosystem::Generic => {
            return Err(Error::InvalidUpload(
                "a generic registry's package comes from a header or the path".into(),
            ));
        }
    };
    match read {
        Read::NeedMore if complete => Err(Error::InvalidUpload(
            "the upload ended before it named its package".into(),
        )),
        read => Ok(read),
    }
}
