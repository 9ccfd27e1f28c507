//! What the providers share: reading a token's claims into a provider's
//! typed claims, ids that arrive as strings or numbers, and the anchored
//! `*` patterns some publisher fields may be.

use serde::de::DeserializeOwned;
use serde::{Deserialize, Deserializer};

use super::FieldError;
use crate::oidc::VerifiedToken;
use crate::problem::{Error, Result};

/// The token's claims as the provider's typed claims. A required claim that
/// is missing or of another type makes the token invalid, naming the claim.
pub(super) fn read<T: DeserializeOwned>(token: &VerifiedToken) -> Result<T> {
    let provider = token.issuer.provider.as_str();
    T::deserialize(&token.claims).map_err(|error| {
        let error = error.to_string();
        Error::InvalidToken(match error.strip_prefix("missing field ") {
            Some(name) => format!("the {name} claim is missing; {provider} tokens carry it"),
            None => format!("a claim is not what {provider} tokens carry: {error}"),
        })
    })
}

/// An id claim: providers send ids as JSON strings or numbers; both are
/// compared as their decimal text.
pub(super) fn id<'de, D: Deserializer<'de>>(
    deserializer: D,
) -> std::result::Result<String, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Id {
        Text(String),
        Number(serde_json::Number),
    }
    Ok(match Id::deserialize(deserializer)? {
        Id::Text(text) => text,
        Id::Number(number) => number.to_string(),
    })
}

/// [`id`] for a claim that may be absent.
pub(super) fn optional_id<'de, D: Deserializer<'de>>(
    deserializer: D,
) -> std::result::Result<Option<String>, D::Error> {
    #[derive(Deserialize)]
    struct Wrapped(#[serde(deserialize_with = "id")] String);
    Ok(Option::<Wrapped>::deserialize(deserializer)?.map(|Wrapped(id)| id))
}

/// `*` matches any run of characters; everything else matches itself, and
/// the whole text must match (anchored at both ends).
pub(super) fn glob_match(pattern: &str, text: &str) -> bool {
    let mut parts = pattern.split('*');
    let first = parts.next().unwrap_or_default();
    let Some(mut rest) = text.strip_prefix(first) else {
        return false;
    };
    let parts: Vec<&str> = parts.collect();
    let Some((last, middle)) = parts.split_last() else {
        return rest.is_empty();
    };
    for part in middle {
        match rest.find(part) {
            Some(at) => rest = &rest[at + part.len()..],
            None => return false,
        }
    }
    rest.len() >= last.len() && rest.ends_with(last)
}

/// Checks an optional pattern against an optional claim: no pattern always
/// matches; a pattern needs the claim.
pub(super) fn pattern_matches(
    name: &str,
    pattern: Option<&str>,
    claim: Option<&str>,
) -> std::result::Result<(), String> {
    let Some(pattern) = pattern else {
        return Ok(());
    };
    match claim {
        Some(got) if glob_match(pattern, got) => Ok(()),
        got => Err(format!("{name} {got:?} does not match {pattern:?}")),
    }
}

/// Checks an optional name against an optional claim, ignoring ASCII case.
pub(super) fn same_name(
    name: &str,
    expected: Option<&str>,
    claim: Option<&str>,
) -> std::result::Result<(), String> {
    match (expected, claim) {
        (None, _) => Ok(()),
        (Some(expected), Some(got)) if got.eq_ignore_ascii_case(expected) => Ok(()),
        (Some(expected), got) => Err(format!("{name} {got:?} is not {expected:?}")),
    }
}

/// A field that must be a literal: not empty, no `*`, no whitespace at its
/// ends.
pub(super) fn literal(field: &'static str, value: &str) -> std::result::Result<(), FieldError> {
    if value.is_empty() || value.contains('*') || value.trim() != value {
        return Err((
            field,
            format!("{value:?} must be an exact value: not empty, no `*`, no surrounding spaces"),
        ));
    }
    Ok(())
}

/// An optional field that, when given, must not be empty.
pub(super) fn not_empty(
    field: &'static str,
    value: Option<&str>,
) -> std::result::Result<(), FieldError> {
    if value.is_some_and(|v| v.trim().is_empty()) {
        return Err((field, "must not be empty when given".to_owned()));
    }
    Ok(())
}

/// A numeric id, as the provider shows it.
pub(super) fn numeric(
    field: &'static str,
    value: &str,
    hint: &str,
) -> std::result::Result<(), FieldError> {
    if value.is_empty() || !value.bytes().all(|b| b.is_ascii_digit()) {
        return Err((field, format!("{value:?} is not a numeric id ({hint})")));
    }
    Ok(())
}

/// Path segments separated by `/`, at least `min` of them, none empty and
/// none with `*` or whitespace.
pub(super) fn path(
    field: &'static str,
    value: &str,
    min: usize,
    shape: &str,
) -> std::result::Result<(), FieldError> {
    let segments: Vec<&str> = value.split('/').collect();
    let valid = segments.len() >= min
        && segments
            .iter()
            .all(|s| !s.is_empty() && !s.contains('*') && !s.contains(char::is_whitespace));
    if valid {
        Ok(())
    } else {
        Err((field, format!("{value:?} is not of the form {shape}")))
    }
}

#[cfg(test)]
mod tests {
    use super::glob_match;

    #[test]
    fn patterns_are_anchored() {
        assert!(glob_match("refs/tags/v*", "refs/tags/v1.2.3"));
        assert!(!glob_match("refs/tags/v*", "refs/heads/main"));
        assert!(glob_match("refs/heads/main", "refs/heads/main"));
        assert!(!glob_match("refs/heads/main", "refs/heads/main2"));
        assert!(!glob_match("refs/heads/main", "xrefs/heads/main"));
        assert!(glob_match("refs/*/release-*", "refs/heads/release-2"));
        assert!(!glob_match("refs/*/release-*", "refs/heads/main"));
        assert!(glob_match("*", "anything"));
        assert!(!glob_match("a*a", "a"));
    }
}
