//! Python's legacy upload API: a `multipart/form-data` POST whose fields
//! carry the metadata (`:action`, `name`, `version`, …) and the file
//! (`content`). twine, uv, pdm, maturin and gh-action-pypi-publish all send
//! the metadata fields before the file, so the name is known after a few
//! kilobytes.
//!
//! The registry behind the gateway parses the same body with its own
//! parser, so trustpub reads it strictly, to leave no room for the two to
//! disagree on what is uploaded: exactly one `:action` (`file_upload`), one
//! `name`, at most one `version`, every part named, one file part
//! (`content`) whose file name is a distribution of `name`, and nothing
//! after it. The boundary is forwarded in a canonical `Content-Type`, and
//! [`PartCounter`] refuses, while the body streams, any part beyond those
//! read here.

use bytes::Bytes;
use futures_util::FutureExt;

use super::{Found, Read, UploadedPackage};
use crate::domain::Ecosystem;
use crate::problem::{Error, Result};

/// The file's field, the last part of an upload.
const FILE_FIELD: &str = "content";
/// The only action an upload credential allows.
const UPLOAD_ACTION: &str = "file_upload";

pub(super) fn package(content_type: &str, prefix: &[Bytes], complete: bool) -> Result<Read> {
    let invalid = |reason: &str| Error::InvalidUpload(reason.to_owned());
    let boundary = multer::parse_boundary(content_type)
        .map_err(|_| invalid("a Python upload is multipart/form-data with a boundary"))?;
    if boundary.is_empty() || boundary.len() > 70 || !boundary.bytes().all(is_boundary_byte) {
        return Err(invalid(
            "the multipart boundary must be 1 to 70 of A-Z, a-z, 0-9 and '()+_,-./:=?",
        ));
    }
    // Parsers differ on what comes before the first delimiter: nothing may.
    let opening = format!("--{boundary}\r\n");
    let start: Vec<u8> = prefix
        .iter()
        .flat_map(|chunk| chunk.iter().copied())
        .take(opening.len())
        .collect();
    if !opening.as_bytes().starts_with(&start) {
        return Err(invalid(
            "the upload must start with its first part's delimiter",
        ));
    }
    if start.len() < opening.len() {
        return if complete {
            Err(invalid("the upload has no file (`content`)"))
        } else {
            Ok(Read::NeedMore)
        };
    }
    let chunks: Vec<Result<Bytes, std::io::Error>> = prefix.iter().cloned().map(Ok).collect();
    let mut multipart =
        multer::Multipart::new(futures_util::stream::iter(chunks), boundary.clone());
    // Everything is in memory, so every future is ready when first polled.
    let fields = async {
        let mut seen = Fields::default();
        while let Some(field) = multipart.next_field().await? {
            seen.parts += 1;
            let part = match PartHeaders::read(field.headers()) {
                Ok(part) => part,
                Err(reason) => return Ok(Err(reason)),
            };
            // What multer read must be what the strict reading found.
            if field.name() != Some(part.name.as_str())
                || field.file_name() != part.file_name.as_deref()
            {
                return Ok(Err(
                    "the part's header is read differently by other parsers",
                ));
            }
            let name = part.name;
            if name == FILE_FIELD {
                seen.file_name = Some(part.file_name);
                return Ok(Ok(seen));
            }
            if part.file_name.is_some() {
                return Ok(Err("the only file an upload may carry is `content`"));
            }
            if !part.plain_text {
                return Ok(Err(
                    "a metadata part's Content-Type may only be text/plain in UTF-8",
                ));
            }
            let slot = match name.as_str() {
                ":action" => &mut seen.action,
                "name" => &mut seen.name,
                "version" => &mut seen.version,
                _ => continue,
            };
            if slot.is_some() {
                return Ok(Err(
                    "`:action`, `name` and `version` may each be given once",
                ));
            }
            *slot = Some(field.text().await?);
        }
        Ok::<_, multer::Error>(Ok(seen))
    }
    .now_or_never();
    let seen = match fields {
        Some(Ok(Ok(seen))) => seen,
        Some(Ok(Err(reason))) => return Err(invalid(reason)),
        Some(Err(error)) if !complete && is_incomplete(&error) => return Ok(Read::NeedMore),
        Some(Err(error)) => return Err(Error::InvalidUpload(error.to_string())),
        None => return Ok(Read::NeedMore),
    };
    let Some(file_name) = seen.file_name else {
        return if complete {
            Err(invalid("the upload has no file (`content`)"))
        } else {
            Ok(Read::NeedMore)
        };
    };
    if seen.action.as_deref() != Some(UPLOAD_ACTION) {
        return Err(invalid(
            "`:action` must be `file_upload`, given once, before the file",
        ));
    }
    let name = seen
        .name
        .ok_or_else(|| invalid("the `name` field must come, not empty, before the file"))?;
    if !is_project_name(&name) {
        return Err(invalid(
            "the `name` field must be a project name: letters, digits, '.', '_' and '-', \
             starting and ending with a letter or digit",
        ));
    }
    let file_name = file_name.ok_or_else(|| invalid("the file (`content`) has no file name"))?;
    let distribution = distribution(&file_name).ok_or_else(|| {
        invalid("the file name is not a wheel (.whl) or an sdist (.tar.gz, .zip)")
    })?;
    if Ecosystem::Python.normalize(distribution) != Ecosystem::Python.normalize(&name) {
        return Err(Error::InvalidUpload(format!(
            "the file {file_name:?} is not a distribution of {name:?}"
        )));
    }
    Ok(Read::Found(Found {
        package: UploadedPackage {
            name,
            version: seen.version,
        },
        content_type: Some(format!("multipart/form-data; boundary=\"{boundary}\"")),
        counter: Some(PartCounter::new(&boundary, seen.parts)),
    }))
}

/// A part's headers, read strictly: exactly one `Content-Disposition` of
/// the form `form-data; name="…"` with an optional `; filename="…"`, at most
/// one `Content-Type`, and no other header. Parsers disagree on repeated or
/// case-varied parameters, `filename*`, escapes inside quotes, unquoted
/// values and folded lines (Python's `cgi` and `email` take the last
/// `filename`, multer the first), so none of these is accepted: what is
/// left reads the same to all of them.
#[derive(Debug, PartialEq)]
struct PartHeaders {
    name: String,
    file_name: Option<String>,
    /// No `Content-Type`, or `text/plain` in UTF-8: the metadata's text is
    /// decoded alike everywhere.
    plain_text: bool,
}

impl PartHeaders {
    fn read(headers: &http::HeaderMap) -> std::result::Result<Self, &'static str> {
        if headers.keys().any(|name| {
            name != http::header::CONTENT_DISPOSITION && name != http::header::CONTENT_TYPE
        }) {
            return Err("a part may only have a Content-Disposition and a Content-Type header");
        }
        let mut dispositions = headers.get_all(http::header::CONTENT_DISPOSITION).iter();
        let (Some(disposition), None) = (dispositions.next(), dispositions.next()) else {
            return Err("every part needs exactly one Content-Disposition header");
        };
        let mut types = headers.get_all(http::header::CONTENT_TYPE).iter();
        let content_type = types.next();
        if types.next().is_some() {
            return Err("a part may have one Content-Type header");
        }
        let plain_text = content_type.is_none_or(|value| {
            let value = value.as_bytes().to_ascii_lowercase();
            value == b"text/plain" || value == b"text/plain; charset=utf-8"
        });
        let (name, file_name) = form_data(disposition.as_bytes())?;
        Ok(PartHeaders {
            name,
            file_name,
            plain_text,
        })
    }
}

/// The `name` and `filename` of a strict `form-data` disposition.
fn form_data(value: &[u8]) -> std::result::Result<(String, Option<String>), &'static str> {
    const REFUSED: &str = "a part's Content-Disposition must be exactly \
        `form-data; name=\"…\"` or `form-data; name=\"…\"; filename=\"…\"`, \
        with plain characters in the quotes";
    let value = std::str::from_utf8(value).map_err(|_| REFUSED)?;
    let mut params = value.split(';');
    if !params
        .next()
        .is_some_and(|kind| kind.eq_ignore_ascii_case("form-data"))
    {
        return Err(REFUSED);
    }
    let (mut name, mut file_name) = (None, None);
    for param in params {
        // One space after the `;` (what every client writes), then
        // `key="value"` with nothing around it.
        let (key, quoted) = param
            .strip_prefix(' ')
            .and_then(|p| p.split_once('='))
            .ok_or(REFUSED)?;
        let text = quoted
            .strip_prefix('"')
            .and_then(|q| q.strip_suffix('"'))
            .filter(|t| !t.is_empty() && t.bytes().all(is_plain_value_byte))
            .ok_or(REFUSED)?;
        let slot = match key {
            "name" => &mut name,
            "filename" => &mut file_name,
            _ => return Err(REFUSED),
        };
        if slot.replace(text.to_owned()).is_some() {
            return Err(REFUSED);
        }
    }
    Ok((name.ok_or(REFUSED)?, file_name))
}

/// What a quoted parameter value may hold: enough for field names
/// (`:action`, `sha256_digest`) and distribution file names, nothing a
/// parser could read as a quote, an escape, a separator or an encoding.
fn is_plain_value_byte(byte: u8) -> bool {
    byte.is_ascii_alphanumeric() || b"._-:+!".contains(&byte)
}

/// RFC 2046's boundary characters, less the space.
fn is_boundary_byte(byte: u8) -> bool {
    byte.is_ascii_alphanumeric() || b"'()+_,-./:=?".contains(&byte)
}

/// A project name as PEP 508 allows it.
fn is_project_name(name: &str) -> bool {
    let bytes = name.as_bytes();
    !bytes.is_empty()
        && bytes.first().is_some_and(u8::is_ascii_alphanumeric)
        && bytes.last().is_some_and(u8::is_ascii_alphanumeric)
        && bytes
            .iter()
            .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(b))
}

#[derive(Default)]
struct Fields {
    parts: usize,
    action: Option<String>,
    name: Option<String>,
    version: Option<String>,
    /// Set when the file's part is reached: its file name, if it has one.
    file_name: Option<Option<String>>,
}

/// The distribution name of a wheel (`name-version(-build)-py-abi-plat.whl`)
/// or sdist (`name-version.tar.gz`, `.zip`) file name.
fn distribution(file_name: &str) -> Option<&str> {
    if file_name.contains(['/', '\\']) {
        return None;
    }
    if let Some(stem) = file_name.strip_suffix(".whl") {
        return stem.split('-').next().filter(|n| !n.is_empty());
    }
    let stem = file_name
        .strip_suffix(".tar.gz")
        .or_else(|| file_name.strip_suffix(".zip"))?;
    stem.rsplit_once('-')
        .map(|(name, _)| name)
        .filter(|n| !n.is_empty())
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

/// Counts, as the body streams by, the parts it starts: every `--boundary`
/// at the start of the body or of a line and not followed by `--`. More
/// parts than the metadata showed means something follows the file, which
/// the registry's parser might read as metadata: the upload is cut off.
#[derive(Debug)]
pub struct PartCounter {
    delimiter: Vec<u8>,
    allowed: usize,
    counted: usize,
    /// Bytes not yet scanned, and the one before them.
    pending: Vec<u8>,
    /// The offset in the body of `pending[0]`.
    base: usize,
    /// The offset of the next place a delimiter could start.
    next: usize,
}

impl PartCounter {
    /// A counter for a body with this boundary and `parts` parts.
    pub(super) fn new(boundary: &str, parts: usize) -> Self {
        PartCounter {
            delimiter: format!("--{boundary}").into_bytes(),
            allowed: parts,
            counted: 0,
            pending: Vec::new(),
            base: 0,
            next: 0,
        }
    }

    /// Scans the next chunk of the body; an error once it starts a part too
    /// many.
    pub fn scan(&mut self, chunk: &[u8]) -> Result<()> {
        // A delimiter and the two bytes that tell a closing one.
        let window = self.delimiter.len() + 2;
        self.pending.extend_from_slice(chunk);
        while self.next - self.base + window <= self.pending.len() {
            let at = self.next - self.base;
            let starts_line = self.next == 0 || self.pending[at - 1] == b'\n';
            if starts_line
                && self.pending[at..].starts_with(&self.delimiter)
                && &self.pending[at + self.delimiter.len()..at + window] != b"--"
            {
                self.counted += 1;
                if self.counted > self.allowed {
                    return Err(Error::InvalidUpload(
                        "nothing may follow the file (`content`) in an upload".into(),
                    ));
                }
            }
            self.next += 1;
        }
        // Keep the byte before the next place, to tell a line start.
        let done = (self.next - self.base).saturating_sub(1);
        self.pending.drain(..done);
        self.base += done;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TYPE: &str = "multipart/form-data; boundary=XyZ";

    fn field(name: &str, value: &str) -> String {
        format!("--XyZ\r\nContent-Disposition: form-data; name=\"{name}\"\r\n\r\n{value}\r\n")
    }

    fn file(file_name: &str) -> String {
        format!(
            "--XyZ\r\nContent-Disposition: form-data; name=\"content\"; filename=\"{file_name}\"\r\n\
             Content-Type: application/octet-stream\r\n\r\nPK\x03\x04 the wheel\r\n--XyZ--\r\n"
        )
    }

    fn upload(fields: &[(&str, &str)], file_name: &str) -> String {
        let mut body: String = fields.iter().map(|(n, v)| field(n, v)).collect();
        body.push_str(&file(file_name));
        body
    }

    fn honest() -> String {
        upload(
            &[
                (":action", "file_upload"),
                ("protocol_version", "1"),
                ("name", "Widget_Extras"),
                ("version", "1.0"),
                ("classifiers", "A"),
                ("classifiers", "B"),
            ],
            "widget_extras-1.0-py3-none-any.whl",
        )
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

    fn refused(body: &str) -> bool {
        matches!(read(body, true), Err(Error::InvalidUpload(_)))
    }

    #[test]
    fn the_name_and_version_come_from_the_metadata_before_the_file() {
        let body = honest();
        match read(&body, true).unwrap() {
            Read::Found(found) => {
                assert_eq!(found.package.name, "Widget_Extras");
                assert_eq!(found.package.version.as_deref(), Some("1.0"));
                assert_eq!(
                    found.content_type.as_deref(),
                    Some("multipart/form-data; boundary=\"XyZ\"")
                );
                assert_eq!(found.counter.unwrap().allowed, 7);
            }
            other => panic!("{other:?}"),
        }
        // The file's headers have arrived: enough.
        let cut = body.find("PK").unwrap();
        assert!(matches!(read(&body[..cut], false).unwrap(), Read::Found(_)));
        // Not yet the file: wait.
        let cut = body.find("content").unwrap();
        assert!(matches!(read(&body[..cut], false).unwrap(), Read::NeedMore));
        // ... and at the end of the body, that is an error.
        assert!(read(&body[..cut], true).is_err());
        // sdists too.
        let sdist = upload(
            &[(":action", "file_upload"), ("name", "zope.interface")],
            "zope_interface-6.0.tar.gz",
        );
        assert!(matches!(read(&sdist, true).unwrap(), Read::Found(_)));
    }

    #[test]
    fn anything_a_registry_could_read_otherwise_is_refused() {
        let action = (":action", "file_upload");
        let wheel = "widget-1.0-py3-none-any.whl";
        // No action, another action, two actions.
        assert!(refused(&upload(&[("name", "widget")], wheel)));
        assert!(refused(&upload(
            &[(":action", "remove_pkg"), ("name", "widget")],
            wheel
        )));
        assert!(refused(&upload(
            &[action, action, ("name", "widget")],
            wheel
        )));
        // Two names, an empty one, none before the file.
        assert!(refused(&upload(
            &[action, ("name", "widget"), ("name", "victim")],
            wheel
        )));
        assert!(refused(&upload(&[action, ("name", " ")], wheel)));
        assert!(refused(&upload(&[action, ("version", "1.0")], wheel)));
        // A file of another project, a path, a file type that is not a distribution.
        assert!(refused(&upload(
            &[action, ("name", "widget")],
            "evil-9.9-py3-none-any.whl"
        )));
        assert!(refused(&upload(
            &[action, ("name", "widget")],
            "../widget-1.0-py3-none-any.whl"
        )));
        assert!(refused(&upload(
            &[action, ("name", "widget")],
            "widget-1.0.exe"
        )));
        // Parts without a plain name, a second file.
        let unnamed = format!(
            "--XyZ\r\nContent-Disposition: form-data; NAME=\"name\"\r\n\r\nvictim\r\n{}",
            upload(&[action, ("name", "widget")], wheel)
        );
        assert!(refused(&unnamed));
        let signature = format!(
            "{}--XyZ\r\nContent-Disposition: form-data; name=\"gpg_signature\"; filename=\"evil.asc\"\r\n\r\nsig\r\n{}",
            field(":action", "file_upload"),
            upload(&[("name", "widget")], wheel)
        );
        assert!(refused(&signature));
        assert!(package("application/json", &[Bytes::from_static(b"{}")], true).is_err());
        assert!(refused("garbage"));
    }

    /// An upload of `widget` whose file part has this `Content-Disposition`.
    fn with_file_disposition(disposition: &str) -> String {
        format!(
            "{}{}--XyZ\r\nContent-Disposition: {disposition}\r\n\r\nPK\r\n--XyZ--\r\n",
            field(":action", "file_upload"),
            field("name", "widget"),
        )
    }

    #[test]
    fn part_headers_that_parsers_read_differently_are_refused() {
        let disposition = "form-data; name=\"content\"; filename=\"widget-1.1.tar.gz\"";
        assert!(matches!(
            read(&with_file_disposition(disposition), true),
            Ok(Read::Found(_))
        ));
        for disposition in [
            // Two file names: Python's parsers take the last, multer the first.
            "form-data; name=\"content\"; filename=\"widget-1.1.tar.gz\"; filename=\"victim-1.1.tar.gz\"",
            // A quoted value holding parameter text.
            "form-data; name=\"content; filename=victim-1.1.tar.gz\"; filename=\"widget-1.1.tar.gz\"",
            "form-data; name=\"content\"; filename=\"widget-1.1.tar.gz; filename=victim-1.1.tar.gz\"",
            // Case variants and the extended form.
            "form-data; name=\"content\"; FILENAME=\"widget-1.1.tar.gz\"",
            "form-data; name=\"content\"; filename=\"widget-1.1.tar.gz\"; Filename=\"victim-1.1.tar.gz\"",
            "form-data; name=\"content\"; filename*=UTF-8''victim-1.1.tar.gz; filename=\"widget-1.1.tar.gz\"",
            // Escapes, unbalanced and missing quotes.
            "form-data; name=\"content\"; filename=\"wid\\\"get-1.1.tar.gz\"",
            "form-data; name=\"content\"; filename=\"widget-1.1.tar.gz",
            "form-data; name=\"content\"; filename=widget-1.1.tar.gz",
            // Spaces, stray separators, other parameters and types.
            "form-data; name=\"content\"; filename = \"widget-1.1.tar.gz\"",
            "form-data;name=\"content\"; filename=\"widget-1.1.tar.gz\"",
            "form-data; name=\"content\"; filename=\"widget-1.1.tar.gz\";",
            "form-data; name=\"content\"; size=\"3\"; filename=\"widget-1.1.tar.gz\"",
            "attachment; name=\"content\"; filename=\"widget-1.1.tar.gz\"",
            // Percent-encoding, paths, non-ASCII.
            "form-data; name=\"content\"; filename=\"victim%2d1.1.tar.gz\"",
            "form-data; name=\"content\"; filename=\"x/widget-1.1.tar.gz\"",
            "form-data; name=\"content\"; filename=\"widget-1.1.tar.gz\u{e9}\"",
        ] {
            assert!(
                refused(&with_file_disposition(disposition)),
                "accepted: {disposition}"
            );
        }
        // Two Content-Disposition headers, another header, a folded line.
        for headers in [
            "Content-Disposition: form-data; name=\"content\"; filename=\"widget-1.1.tar.gz\"\r\n\
             Content-Disposition: form-data; name=\"content\"; filename=\"victim-1.1.tar.gz\"",
            "Content-Disposition: form-data; name=\"content\"; filename=\"widget-1.1.tar.gz\"\r\n\
             Content-Transfer-Encoding: base64",
            "Content-Disposition: form-data; name=\"content\";\r\n filename=\"victim-1.1.tar.gz\"",
        ] {
            let body = with_file_disposition("X").replace("Content-Disposition: X", headers);
            assert!(refused(&body), "accepted: {headers}");
        }
        // A metadata part in another charset, a preamble, a name with spaces.
        let utf16 = honest().replace(
            "name=\"name\"\r\n",
            "name=\"name\"\r\nContent-Type: text/plain; charset=utf-16\r\n",
        );
        assert!(refused(&utf16));
        assert!(refused(&format!("preamble\r\n{}", honest())));
        assert!(refused(
            &honest().replace("Widget_Extras", " widget_extras")
        ));
        let plain = honest().replace(
            "name=\"name\"\r\n",
            "name=\"name\"\r\nContent-Type: text/plain; charset=UTF-8\r\n",
        );
        assert!(matches!(read(&plain, true), Ok(Read::Found(_))));
    }

    #[test]
    fn the_part_counter_cuts_off_parts_after_the_file() {
        let body = honest();
        let scan = |body: &str, parts: usize, chunk: usize| {
            let mut counter = PartCounter::new("XyZ", parts);
            body.as_bytes()
                .chunks(chunk)
                .try_for_each(|c| counter.scan(c))
        };
        for chunk in [1, 2, 5, 7, 64, 4096] {
            assert!(scan(&body, 7, chunk).is_ok(), "chunk {chunk}");
            assert!(scan(&body, 6, chunk).is_err(), "chunk {chunk}");
            // A metadata part after the file.
            let smuggled =
                body.replace("--XyZ--\r\n", "") + &field("name", "victim") + "--XyZ--\r\n";
            assert!(scan(&smuggled, 7, chunk).is_err(), "chunk {chunk}");
        }
        // The boundary inside a line is data, not a delimiter.
        let inline = body.replace("the wheel", "the --XyZ wheel");
        assert!(scan(&inline, 7, 3).is_ok());
    }
}
