//! cargo's publish body (`gateway::package_in_body` for `cargo`): a
//! little-endian length, then that much JSON metadata naming the crate.
//!
//! Input: the first byte sets the size of the chunks the body arrives in;
//! the rest is the body.
//!
//! Properties: no panic; what is read does not depend on how the body is
//! cut into chunks; a crate name read is one cargo accepts; and a body
//! built around the fuzzed metadata names the crate the metadata names.
#![no_main]

use libfuzzer_sys::fuzz_target;
use trustpub::domain::Ecosystem;

#[path = "../support.rs"]
mod support;
use support::read_in_pieces;

fuzz_target!(|data: &[u8]| {
    let [size, body @ ..] = data else {
        return;
    };
    let size = usize::from(*size % 64) + 1;
    for body in [body.to_vec(), framed(body)] {
        if let Some(found) =
            read_in_pieces(Ecosystem::Cargo, "application/octet-stream", &body, size)
        {
            let name = &found.name;
            assert!(
                (1..=64).contains(&name.len())
                    && name.starts_with(|c: char| c.is_ascii_alphabetic())
                    && name
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'),
                "a crate name cargo refuses: {name:?}"
            );
            let metadata = &body[4..4 + u32::from_le_bytes(body[..4].try_into().unwrap()) as usize];
            let json: serde_json::Value = serde_json::from_slice(metadata).expect("JSON metadata");
            assert_eq!(json["name"].as_str(), Some(name.as_str()));
            assert_eq!(
                json.get("vers").and_then(|v| v.as_str()),
                found.version.as_deref()
            );
        }
    }
});

/// The fuzzed bytes as a publish body's metadata, with a `.crate` after.
fn framed(metadata: &[u8]) -> Vec<u8> {
    let mut body = (metadata.len() as u32).to_le_bytes().to_vec();
    body.extend_from_slice(metadata);
    body.extend_from_slice(&3u32.to_le_bytes());
    body.extend_from_slice(b"tgz");
    body
}
