//! cargo's publish request, `PUT /api/v1/crates/new`: a little-endian `u32`
//! length, that many bytes of JSON metadata (with `name` and `vers`), then
//! the length and bytes of the `.crate` file.

use bytes::Bytes;
use serde::Deserialize;

use super::{Found, METADATA_LIMIT, Read, UploadedPackage};
use crate::problem::{Error, Result};

#[derive(Deserialize)]
struct Metadata {
    name: String,
    #[serde(default)]
    vers: Option<String>,
}

pub(super) fn package(prefix: &[Bytes]) -> Result<Read> {
    let available: usize = prefix.iter().map(Bytes::len).sum();
    let mut bytes = Vec::with_capacity(available.min(METADATA_LIMIT + 4));
    for chunk in prefix {
        bytes.extend_from_slice(chunk);
        if bytes.len() >= METADATA_LIMIT + 4 {
            break;
        }
    }
    let Some(length) = bytes.get(..4) else {
        return Ok(Read::NeedMore);
    };
    let length = u32::from_le_bytes([length[0], length[1], length[2], length[3]]) as usize;
    if length > METADATA_LIMIT {
        return Err(Error::InvalidUpload(format!(
            "the publish metadata is {length} bytes; at most {METADATA_LIMIT} are read"
        )));
    }
    let Some(json) = bytes.get(4..4 + length) else {
        return Ok(Read::NeedMore);
    };
    // serde refuses a repeated `name`, which another JSON reader might take
    // the last of; a name cargo could not have sent is refused too. JSON is
    // UTF-8, which serde_json checks only in the members it reads: bytes
    // that are not UTF-8 in a member it skips would pass unseen, and the
    // registry's reader might refuse them, or read them otherwise.
    let json = std::str::from_utf8(json)
        .map_err(|e| Error::InvalidUpload(format!("the publish metadata is not UTF-8: {e}")))?;
    // An object, as cargo sends: serde would also read a struct from an
    // array of its fields in order, where other readers find no `name`.
    if !json.trim_start().starts_with('{') {
        return Err(Error::InvalidUpload(
            "the publish metadata must be a JSON object".into(),
        ));
    }
    let metadata: Metadata = serde_json::from_str(json)
        .map_err(|e| Error::InvalidUpload(format!("the publish metadata: {e}")))?;
    if !is_crate_name(&metadata.name) {
        return Err(Error::InvalidUpload(
            "the crate name must be 1 to 64 ASCII letters, digits, '-' and '_', \
             starting with a letter"
                .into(),
        ));
    }
    Ok(Read::Found(Found {
        package: UploadedPackage {
            name: metadata.name,
            version: metadata.vers,
        },
        content_type: None,
        counter: None,
    }))
}

/// A name cargo accepts for a crate.
fn is_crate_name(name: &str) -> bool {
    name.len() <= 64
        && name.starts_with(|c: char| c.is_ascii_alphabetic())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn publish(json: &str) -> Vec<u8> {
        let mut body = (json.len() as u32).to_le_bytes().to_vec();
        body.extend_from_slice(json.as_bytes());
        body.extend_from_slice(&3u32.to_le_bytes());
        body.extend_from_slice(b"tgz");
        body
    }

    #[test]
    fn the_crate_name_comes_from_the_metadata() {
        let body = publish(r#"{"name":"my_crate","vers":"0.1.0","deps":[]}"#);
        let chunks: Vec<Bytes> = body.chunks(5).map(Bytes::copy_from_slice).collect();
        match package(&chunks).unwrap() {
            Read::Found(found) => {
                assert_eq!(found.package.name, "my_crate");
                assert_eq!(found.package.version.as_deref(), Some("0.1.0"));
            }
            other => panic!("{other:?}"),
        }
        assert!(matches!(package(&chunks[..2]).unwrap(), Read::NeedMore));
        assert!(matches!(package(&[]).unwrap(), Read::NeedMore));
    }

    #[test]
    fn bad_metadata_is_refused() {
        assert!(package(&[Bytes::from(publish("{}"))]).is_err());
        assert!(package(&[Bytes::from(publish("not json"))]).is_err());
        // Read differently by readers that take the last of a repeated key,
        // or names cargo never sends.
        for json in [
            r#"{"name":"widget","name":"victim","vers":"1.0.0"}"#,
            r#"{"name":"widget\u0000","vers":"1.0.0"}"#,
            r#"{"name":"../victim","vers":"1.0.0"}"#,
            r#"{"name":"","vers":"1.0.0"}"#,
            r#"{"name":"widget","vers":"1.0.0"} {"name":"victim"}"#,
        ] {
            assert!(package(&[Bytes::from(publish(json))]).is_err(), "{json}");
        }
        // Found by the fuzz target cargo_upload: metadata that is an array
        // (serde reads a struct from its fields in order) ...
        for json in [r#"["widget","1.0.0"]"#, r#" ["widget"]"#] {
            assert!(package(&[Bytes::from(publish(json))]).is_err(), "{json}");
        }
        // ... and bytes that are not UTF-8
        // in a member trustpub does not read.
        let mut body = publish(r#"{"name":"widget","vers":"1.0.0","x":"--"}"#);
        let at = body.len() - 3 - 4 - 4;
        body[at..at + 2].copy_from_slice(&[0xd8, 0xd1]);
        let refused = package(&[Bytes::from(body)]);
        assert!(
            matches!(&refused, Err(Error::InvalidUpload(reason)) if reason.contains("UTF-8")),
            "{refused:?}"
        );
        let huge = (u32::MAX).to_le_bytes();
        assert!(package(&[Bytes::copy_from_slice(&huge)]).is_err());
    }
}
