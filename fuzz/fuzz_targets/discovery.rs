//! The `discover` key of `GET /.well-known/pytp?discover=…`: the query
//! string read as the handler reads it (actix-web's `Query`), the key
//! percent-decoded and stripped of trailing slashes (`discovery_path`).
//!
//! Properties: no panic; a key decodes to a path without trailing `/` or
//! NUL, or is refused as an error; and a registry is found by its own
//! upload URL's path as a client sends it (form-encoded), with or without
//! a trailing slash.
#![no_main]

use libfuzzer_sys::fuzz_target;
use trustpub::domain::UploadUrl;
use trustpub::fuzzing::discovery_key;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    if let Ok(path) = discovery_key(&text) {
        assert!(!path.ends_with('/'), "{path:?}");
        assert!(!path.contains('\0'), "{path:?}");
    }

    // The same text as the path of an upload URL.
    let Ok(url) = UploadUrl::parse(format!("https://registry.test/{text}")) else {
        return;
    };
    let wanted = url.discovery_path();
    let path = url.as_str()["https://registry.test".len()..]
        .split(['?', '#'])
        .next()
        .unwrap()
        .to_owned();
    for sent in [path.clone(), format!("{path}/")] {
        let query = serde_urlencoded::to_string([("discover", sent.as_str())]).unwrap();
        match discovery_key(&query) {
            Ok(found) => assert_eq!(found, wanted, "{query}"),
            Err(_) => assert!(wanted.contains('\0'), "{query} refused"),
        }
    }
});
