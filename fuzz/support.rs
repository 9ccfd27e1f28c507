//! What the upload targets share: a body cut into chunks, and read whole
//! and in pieces.

use bytes::Bytes;
use trustpub::domain::Ecosystem;
use trustpub::gateway::{Read, UploadedPackage, package_in_body};

pub fn chunked(body: &[u8], size: usize) -> Vec<Bytes> {
    body.chunks(size).map(Bytes::copy_from_slice).collect()
}

/// What a read gave, without the reasons of refusals.
#[derive(Debug, PartialEq)]
pub enum Outcome {
    Found(UploadedPackage, Option<String>),
    NeedMore,
    Refused,
}

fn outcome(read: trustpub::Result<Read>) -> Outcome {
    match read {
        Ok(Read::Found(found)) => Outcome::Found(found.package, found.content_type),
        Ok(Read::NeedMore) => Outcome::NeedMore,
        Err(_) => Outcome::Refused,
    }
}

/// Reads `body` in one chunk and in chunks of `size`, whole and as a
/// prefix (half of it, still incomplete), and asserts that the chunks
/// change nothing. The package, if the whole body names one.
pub fn read_in_pieces(
    ecosystem: Ecosystem,
    content_type: &str,
    body: &[u8],
    size: usize,
) -> Option<UploadedPackage> {
    let read = |bytes: &[u8], size: usize, complete: bool| {
        outcome(package_in_body(
            ecosystem,
            content_type,
            &chunked(bytes, size),
            complete,
        ))
    };
    let half = &body[..body.len() / 2];
    assert_eq!(
        read(half, half.len().max(1), false),
        read(half, size, false),
        "a prefix read differently in chunks of {size}"
    );
    let whole = read(body, body.len().max(1), true);
    assert_eq!(
        whole,
        read(body, size, true),
        "read differently in chunks of {size}"
    );
    match whole {
        Outcome::Found(package, _) => Some(package),
        Outcome::NeedMore => panic!("a whole body needs more"),
        Outcome::Refused => None,
    }
}
