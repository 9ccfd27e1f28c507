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
    // Read whole first: serde_json checks UTF-8 and the range of numbers
    // only in the members it reads into a struct, so bytes that are not
    // UTF-8 or a number no reader holds (`3e333`) in a member trustpub
    // skips would pass unseen, where the registry's reader refuses them or
    // reads them otherwise. And an object, as cargo sends: serde would also
    // read the struct from an array of its fields in order, where other
    // readers find no `name`.
    let whole: serde_json::Value = serde_json::from_slice(json)
        .map_err(|e| Error::InvalidUpload(format!("the publish metadata: {e}")))?;
    if !whole.is_object() {
        return Err(Error::InvalidUpload(
            "the publish metadata must be a JSON object".into(),
        ));
    }
    // serde refuses a repeated `name` in a struct, which the whole value
    // above takes the last of; a name cargo could not have sent is refused
    // too.
    let metadata: Metadata = serde_json::from_slice(json)
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
        assert!(package(&[Bytes::from(body)]).is_err());
        // ... or a number out of any reader's range there.
        let json = r#"{"name":"widget","vers":"1.0.0","x":{"s":3e333}}"#;
        assert!(package(&[Bytes::from(publish(json))]).is_err(), "{json}");
        let huge = (u32::MAX).to_le_bytes();
        assert!(package(&[Bytes::copy_from_slice(&huge)]).is_err());
    }
}
