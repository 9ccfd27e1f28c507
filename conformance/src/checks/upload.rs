//! The opt-in upload probe (`--probe-upload`): throw-away source
//! distributions of the kit's package, uploaded to the upload URL with
//! minted credentials through the legacy upload API (multipart/form-data,
//! Basic `__token__:<credential>`), to see whether a credential serves one
//! upload or several.

use std::io::Write;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use flate2::Compression;
use flate2::write::GzEncoder;
use http::header;
use serde_json::json;
use sha2::{Digest, Sha256};
use url::Url;

use super::mint::credential;
use super::{Endpoints, Extra, Run, json_text, now};
use crate::http::Answer;

/// The multipart boundary of the kit's uploads.
const BOUNDARY: &str = "trustpub-conformance-upload";

/// What two uploads with one fresh credential showed.
enum Probe {
    /// The first upload was accepted; the second answered this.
    Twice(Answer),
    /// No credential to upload with.
    NoCredential(String),
    /// The first upload was refused for its credential (401/403).
    CredentialRefused(Answer),
    /// The first upload failed for another reason.
    NotAccepted(String),
}

fn credential_refused(answer: &Answer) -> bool {
    matches!(answer.status, 401 | 403)
}

impl Run<'_> {
    /// Mints with `extra` and uploads two distributions with the credential.
    async fn upload_twice(&mut self, mint: &Url, audience: &str, extra: Extra) -> Probe {
        let asked = json!(extra.get("features"));
        let token = self.valid_token(audience);
        let answer = self
            .exchange("mint (upload probe)", mint, &token, extra)
            .await;
        let secret = match credential(&answer) {
            Ok((secret, _)) => secret,
            Err(problem) => return Probe::NoCredential(format!("features {asked}: {problem}")),
        };
        match self.upload(&secret).await {
            Ok(answer) if (200..300).contains(&answer.status) => {}
            Ok(answer) if credential_refused(&answer) => return Probe::CredentialRefused(answer),
            Ok(answer) => {
                return Probe::NotAccepted(format!(
                    "the first upload answered {}",
                    answer.summary()
                ));
            }
            Err(error) => return Probe::NotAccepted(error),
        }
        match self.upload(&secret).await {
            Ok(second) => Probe::Twice(second),
            Err(error) => Probe::NotAccepted(format!("the second upload: {error}")),
        }
    }

    /// Whether a credential minted with `extra` is single-use, by uploading
    /// twice; `None` when the probe could not tell (the reason is recorded
    /// by the upload checks).
    pub(super) async fn probe_single_use(
        &mut self,
        mint: &Url,
        audience: &str,
        extra: Extra,
    ) -> Option<bool> {
        match self.upload_twice(mint, audience, extra).await {
            Probe::Twice(second) => Some(credential_refused(&second)),
            Probe::NoCredential(why) | Probe::NotAccepted(why) => {
                self.skip("mint.default-features", format!("the upload probe: {why}"));
                None
            }
            Probe::CredentialRefused(answer) => {
                self.skip(
                    "mint.default-features",
                    format!(
                        "the upload probe: a fresh credential was refused on its first upload ({})",
                        answer.summary()
                    ),
                );
                None
            }
        }
    }

    /// `upload.single-use` and `upload.multi-use`.
    pub(super) async fn uploads(&mut self, endpoints: &Endpoints, audience: &str) {
        for (id, feature) in [
            ("upload.single-use", "single-use-token"),
            ("upload.multi-use", "multi-use-token"),
        ] {
            if !self.options.probe_upload {
                self.skip(
                    id,
                    "off: give --probe-upload to upload throw-away distributions to the upload URL",
                );
                continue;
            }
            let advertised = endpoints
                .features
                .as_ref()
                .is_some_and(|f| f.iter().any(|a| a == feature));
            if !advertised {
                self.skip(id, format!("{feature} is not advertised"));
                continue;
            }
            let extra = Extra::from_iter([("features".to_owned(), json!([feature]))]);
            let single = feature == "single-use-token";
            match self.upload_twice(&endpoints.mint.clone(), audience, extra).await {
                Probe::Twice(second) if credential_refused(&second) == single => self.pass(
                    id,
                    format!(
                        "the first upload was accepted, the second answered {}",
                        second.status
                    ),
                ),
                Probe::Twice(second) if single => self.fail(
                    id,
                    format!(
                        "a single-use credential uploaded once, and its second upload answered {}, not 401/403",
                        second.summary()
                    ),
                ),
                Probe::Twice(second) => self.fail(
                    id,
                    format!(
                        "a multi-use credential uploaded once, and its second upload was refused for it: {}",
                        second.summary()
                    ),
                ),
                Probe::CredentialRefused(answer) => self.fail(
                    id,
                    format!(
                        "a fresh {feature} credential was refused on its first upload: {}",
                        answer.summary()
                    ),
                ),
                Probe::NoCredential(why) => self.skip(id, format!("no credential: {why}")),
                Probe::NotAccepted(why) => self.skip(
                    id,
                    format!(
                        "{why}; the probe needs an upload URL that accepts the kit's throw-away distributions of {}",
                        json_text(&self.options.identity.package)
                    ),
                ),
            }
        }
    }

    /// Uploads a fresh throw-away distribution of the kit's package with
    /// `secret`. Not kept for the problem checks: the upload API is not
    /// PEP 807's.
    async fn upload(&mut self, secret: &str) -> Result<Answer, String> {
        self.uploads += 1;
        let name = self.options.identity.package.clone();
        let version = format!("0.0.{}.{}", now(), self.uploads);
        let (file_name, content) = sdist(&name, &version);
        let body = multipart(&name, &version, &file_name, &content);
        let authorization = format!("Basic {}", STANDARD.encode(format!("__token__:{secret}")));
        let headers = vec![
            (header::AUTHORIZATION, authorization),
            (
                header::CONTENT_TYPE,
                format!("multipart/form-data; boundary={BOUNDARY}"),
            ),
        ];
        self.client
            .post(&self.options.upload_url, headers, body)
            .await
    }
}

/// The legacy upload API's form: the metadata, then the file, last.
fn multipart(name: &str, version: &str, file_name: &str, content: &[u8]) -> Vec<u8> {
    let digest: String = Sha256::digest(content)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    let mut body = Vec::new();
    for (field, value) in [
        (":action", "file_upload"),
        ("protocol_version", "1"),
        ("metadata_version", "2.1"),
        ("name", name),
        ("version", version),
        ("filetype", "sdist"),
        ("pyversion", "source"),
        (
            "summary",
            "A throw-away distribution of trustpub-conformance's upload probe",
        ),
        ("sha256_digest", &digest),
    ] {
        body.extend_from_slice(
            format!("--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"{field}\"\r\n\r\n{value}\r\n")
                .as_bytes(),
        );
    }
    body.extend_from_slice(
        format!(
            "--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"content\"; filename=\"{file_name}\"\r\n\
             Content-Type: application/octet-stream\r\n\r\n"
        )
        .as_bytes(),
    );
    body.extend_from_slice(content);
    body.extend_from_slice(format!("\r\n--{BOUNDARY}--\r\n").as_bytes());
    body
}

/// A source distribution holding only `PKG-INFO`: its file name and bytes
/// (a gzipped tar).
fn sdist(name: &str, version: &str) -> (String, Vec<u8>) {
    let stem = format!("{}-{version}", name.replace(['-', '.'], "_"));
    let metadata = format!(
        "Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n\
         Summary: A throw-away distribution of trustpub-conformance's upload probe\n"
    );
    let mut archive = tar_entry(&format!("{stem}/PKG-INFO"), metadata.as_bytes());
    // The end of the archive: two empty blocks.
    archive.extend_from_slice(&[0; 1024]);
    let mut gzip = GzEncoder::new(Vec::new(), Compression::default());
    gzip.write_all(&archive).expect("writing to memory");
    (
        format!("{stem}.tar.gz"),
        gzip.finish().expect("writing to memory"),
    )
}

/// One regular file of a ustar archive: its 512-byte header, then its data
/// padded to a whole block. `path` must be under 100 bytes.
fn tar_entry(path: &str, data: &[u8]) -> Vec<u8> {
    let mut header = [0u8; 512];
    let mut put = |offset: usize, field: &[u8]| {
        header[offset..offset + field.len()].copy_from_slice(field);
    };
    put(0, path.as_bytes());
    put(100, b"0000644\0");
    put(108, b"0000000\0");
    put(116, b"0000000\0");
    put(124, format!("{:011o}\0", data.len()).as_bytes());
    put(136, format!("{:011o}\0", now()).as_bytes());
    put(148, b"        ");
    put(156, b"0");
    put(257, b"ustar\0");
    put(263, b"00");
    let checksum: u32 = header.iter().map(|&b| u32::from(b)).sum();
    header[148..156].copy_from_slice(format!("{checksum:06o}\0 ").as_bytes());
    let mut entry = header.to_vec();
    entry.extend_from_slice(data);
    entry.resize(entry.len().div_ceil(512) * 512, 0);
    entry
}

#[cfg(test)]
mod tests {
    use std::io::Read;

    use super::*;

    #[test]
    fn the_sdist_is_a_gzipped_tar_holding_pkg_info() {
        let (name, bytes) = sdist("my-widget", "0.0.1");
        assert_eq!(name, "my_widget-0.0.1.tar.gz");
        let mut tar = Vec::new();
        flate2::read::GzDecoder::new(bytes.as_slice())
            .read_to_end(&mut tar)
            .unwrap();
        assert_eq!(tar.len(), 512 * 4);
        assert!(tar.starts_with(b"my_widget-0.0.1/PKG-INFO\0"));
        let stored: u32 =
            u32::from_str_radix(std::str::from_utf8(&tar[148..154]).unwrap(), 8).unwrap();
        let mut header = tar[..512].to_vec();
        header[148..156].copy_from_slice(b"        ");
        assert_eq!(stored, header.iter().map(|&b| u32::from(b)).sum::<u32>());
        assert!(
            String::from_utf8_lossy(&tar[512..1024])
                .starts_with("Metadata-Version: 2.1\nName: my-widget\n")
        );
    }
}
