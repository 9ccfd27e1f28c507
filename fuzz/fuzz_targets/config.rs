//! The configuration file: TOML over the defaults, extracted with figment
//! and validated (`Settings::from_figment`, as `trustpub check-config`
//! reads a file).
//!
//! Properties: no panic; settings that load can be shown redacted
//! (`check-config --show`), and what is shown loads again to the same
//! redacted text.
#![no_main]

use libfuzzer_sys::fuzz_target;
use trustpub::fuzzing::settings;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(loaded) = settings(text) else {
        return;
    };
    let shown = loaded.to_redacted_toml();
    let again = settings(&shown).unwrap_or_else(|e| panic!("{shown}\n: {e}"));
    assert_eq!(again.to_redacted_toml(), shown);
});
