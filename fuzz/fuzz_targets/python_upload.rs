//! The Python upload reader (`gateway::package_in_body` for `python`): a
//! multipart/form-data body read strictly, as far as the package's name,
//! then the part counter that watches the rest of the body.
//!
//! Input: the first byte sets the size of the chunks the body arrives in;
//! then the `Content-Type` up to the first newline, then the body.
//!
//! Properties: no panic; what is read does not depend on how the body is
//! cut into chunks, for a whole body or for a prefix of it; and the part
//! counter's verdict does not either.
#![no_main]

use libfuzzer_sys::fuzz_target;
use trustpub::domain::Ecosystem;

#[path = "../support.rs"]
mod support;
use support::{chunked, read_in_pieces};

fuzz_target!(|data: &[u8]| {
    let [size, rest @ ..] = data else {
        return;
    };
    let size = usize::from(*size % 64) + 1;
    let (content_type, body) = match rest.iter().position(|b| *b == b'\n') {
        Some(at) => (&rest[..at], &rest[at + 1..]),
        None => (rest, &[][..]),
    };
    let content_type = String::from_utf8_lossy(content_type);
    let found = read_in_pieces(Ecosystem::Python, &content_type, body, size);

    // The part counter, over the whole body, in one chunk and in pieces.
    if found.is_some() {
        let verdict = |size: usize| {
            let mut counter = counter_of(&content_type, body);
            chunked(body, size)
                .iter()
                .all(|chunk| counter.scan(chunk).is_ok())
        };
        assert_eq!(
            verdict(body.len().max(1)),
            verdict(size),
            "the part counter depends on the chunks"
        );
    }
});

/// A fresh counter for the body (a counter keeps what it has scanned).
fn counter_of(content_type: &str, body: &[u8]) -> trustpub::gateway::PartCounter {
    match trustpub::gateway::package_in_body(
        Ecosystem::Python,
        content_type,
        &[bytes::Bytes::copy_from_slice(body)],
        true,
    ) {
        Ok(trustpub::gateway::Read::Found(found)) => found.counter.expect("a Python counter"),
        other => panic!("read differently the second time: {other:?}"),
    }
}
