//! Forward-auth's path matching: a registry's `package_path` template
//! (`PackagePath::parse`) and the package it reads in a proxy's forwarded
//! URI (`X-Original-URI`, `X-Forwarded-Uri`), which must be a plain path
//! (`is_plain_path`).
//!
//! Input: the template up to the first newline, then the forwarded URI.
//!
//! Properties: no panic; a template reads back as written; a package is
//! read only from a plain path that starts with the template's text before
//! `{package}`, and is one non-empty segment; and a plain package name put
//! in the template's place is read back (the template is anchored at both
//! ends of the segment).
#![no_main]

use libfuzzer_sys::fuzz_target;
use trustpub::domain::{PackagePath, is_plain_path};
use trustpub::fuzzing::forwarded_package;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let (template, uri) = text.split_once('\n').unwrap_or((&text, ""));
    let Ok(parsed) = PackagePath::parse(template.to_owned()) else {
        return;
    };
    assert_eq!(String::from(parsed.clone()), template);
    let (before, after) = template.split_once("{package}").unwrap();

    let path = uri.split(['?', '#']).next().unwrap_or_default();
    match forwarded_package(&parsed, uri) {
        Ok(Some(package)) => {
            assert!(is_plain_path(path), "read {package:?} in {path:?}");
            assert!(path.starts_with(before), "read {package:?} in {path:?}");
            assert!(
                !package.is_empty() && !package.contains('/'),
                "{package:?} in {path:?}"
            );
        }
        Ok(None) => {}
        Err(_) => assert!(!is_plain_path(path), "{path:?} refused"),
    }

    // A plain name in the template's place, from the URI's letters.
    let name: String = uri
        .chars()
        .filter(char::is_ascii_alphanumeric)
        .take(40)
        .collect();
    if name.is_empty() {
        return;
    }
    let path = format!("{before}{name}{after}");
    if is_plain_path(&path) {
        assert_eq!(
            forwarded_package(&parsed, &path).ok().flatten().as_deref(),
            Some(name.as_str()),
            "{path:?} through {template:?}"
        );
        // Anchored: the name with more after it in the same segment is
        // the longer name, never the shorter.
        let longer = format!("{before}{name}x{after}");
        if let Ok(Some(read)) = forwarded_package(&parsed, &longer) {
            assert_eq!(read, format!("{name}x"));
        }
    }
});
