//! Python's legacy upload API: a `multipart/form-data` POST whose fields
//! carry the metadata (`name`, `version`, …) and the file (`content`).
//! twine, uv, pdm, maturin and gh-action-pypi-publish all send the metadata
//! fields before the file, so the name is known after a few kilobytes.

use bytes::Bytes;
use futures_util::FutureExt;

use super::{Read, UploadedPackage};
use crate::problem::{Error, Result};

/// The file's field, after which no metadata is looked for.
const FILE_FIELD: &str = "content";

pub(super) fn package(content_type: &str, prefix: &[Bytes], complete: bool) -> Result<Read> {
    let boundary = multer::parse_boundary(content_type).map_err(|_| {
        Error::InvalidUpload("a Python upload is multipart/form-data with a boundary".into())
    })?;
    let chunks: Vec<Result<Bytes, std::io::Error>> = prefix.iter().cloned().map(Ok).collect();
    let mut multipart = multer::Multipart::new(futures_util::stream::iter(chunks), boundary);
    // Everything is in memory, so every future is ready when first polled.
    let fields = async {
        let (mut name, mut version) = (None, None);
        let mut file_reached = false;
        while let Some(field) = multipart.next_field().await? {
            match field.name() {
                Some("name") => name = Some(field.text().await?),
                Some("version") => version = Some(field.text().await?),
                Some(FILE_FIELD) => file_reached = true,
                _ => {}
            }
            if file_reached || (name.is_some() && version.is_some()) {
                break;
            }
        }
        Ok::<_, multer::Error>((name, version, file_reached))
    }
    .now_or_never();
    let (name, version, file_reached) = match fields {
        Some(Ok(found)) => found,
        Some(Err(error)) if !complete && is_incomplete(&error) => return Ok(Read::NeedMore),
        Some(Err(error)) => return Err(Error::InvalidUpload(error.to_string())),
        None => return Ok(Read::NeedMore),
    };
    match name {
        Some(name) if name.trim().is_empty() => {
            Err(Error::InvalidUpload("the `name` field is empty".into()))
        }
        Some(name) => Ok(Read::Found(UploadedPackage {
            name: name.trim().to_owned(),
            version,
        })),
        None if file_reached => Err(Error::InvalidUpload(
            "the `name` field must come before the file (`content`)".into(),
        )),
        None => Ok(Read::NeedMore),
    }
}

/// Whether parsing stopped only because the body is not all there yet.
fn is_incomplete(error: &multer::Error) -> bool {
    matches!(
        error,
        multer::Error::IncompleteStream
            | multer::Error::IncompleteFieldData { .. }
            | multer::Error::IncompleteHeaders
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    const TYPE: &str = "multipart/form-data; boundary=XyZ";

    fn field(name: &str, value: &str) -> String {
        format!("--XyZ\r\nContent-Disposition: form-data; name=\"{name}\"\r\n\r\n{value}\r\n")
    }

    fn file() -> String {
        "--XyZ\r\nContent-Disposition: form-data; name=\"content\"; filename=\"w.whl\"\r\n\
         Content-Type: application/octet-stream\r\n\r\nPK\x03\x04 the wheel\r\n--XyZ--\r\n"
            .to_owned()
    }

    fn read(body: &str, complete: bool) -> Result<Read> {
        // In small chunks, as a network would deliver it.
        let chunks: Vec<Bytes> = body
            .as_bytes()
            .chunks(7)
            .map(Bytes::copy_from_slice)
            .collect();
        package(TYPE, &chunks, complete)
    }

    #[test]
    fn the_name_and_version_come_from_the_metadata_before_the_file() {
        let body = format!(
            "{}{}{}{}{}",
            field(":action", "file_upload"),
            field("protocol_version", "1"),
            field("name", "Widget_Extras"),
            field("version", "1.0"),
            file()
        );
        match read(&body, true).unwrap() {
            Read::Found(found) => {
                assert_eq!(found.name, "Widget_Extras");
                assert_eq!(found.version.as_deref(), Some("1.0"));
            }
            other => panic!("{other:?}"),
        }
        // Only the metadata has arrived: enough.
        let cut = body.find("PK").unwrap();
        assert!(matches!(read(&body[..cut], false).unwrap(), Read::Found(_)));
        // Not even the name has arrived: wait.
        let cut = body.find("Widget").unwrap();
        assert!(matches!(read(&body[..cut], false).unwrap(), Read::NeedMore));
        // ... and at the end of the body, that is an error.
        assert!(read(&body[..cut], true).is_err());
    }

    #[test]
    fn a_name_after_the_file_or_no_name_is_refused() {
        let body = format!("{}{}", field("version", "1.0"), file());
        assert!(matches!(read(&body, true), Err(Error::InvalidUpload(_))));
        let body = format!(
            "{}{}{}",
            field("version", "1.0"),
            file(),
            field("name", "w")
        );
        assert!(matches!(read(&body, true), Err(Error::InvalidUpload(_))));
        let body = format!("{}{}", field("name", " "), file());
        assert!(matches!(read(&body, true), Err(Error::InvalidUpload(_))));
        assert!(package("application/json", &[Bytes::from_static(b"{}")], true).is_err());
        assert!(read("garbage", true).is_err());
    }
}
