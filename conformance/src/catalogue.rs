//! The checks the kit runs: stable ids, the requirement each one tests and
//! how strongly the text that states it words it.
//!
//! Ids never change meaning; a new requirement gets a new id. The order here
//! is the order of every report.

use serde::Serialize;

/// How strongly the cited text states the requirement.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum Level {
    #[serde(rename = "MUST")]
    Must,
    #[serde(rename = "SHOULD")]
    Should,
    /// Not a requirement: a note on interoperability. Its check passes or
    /// reports INFO; it never fails.
    #[serde(rename = "INFO")]
    Info,
}

impl Level {
    pub fn as_str(self) -> &'static str {
        match self {
            Level::Must => "MUST",
            Level::Should => "SHOULD",
            Level::Info => "INFO",
        }
    }
}

/// Whose requirement a check tests. Extension checks are reported apart and
/// never decide the exit code on their own.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Group {
    /// PEP 807 itself (and the standards it builds on).
    Pep807,
    /// trustpub's optional extensions of the protocol.
    Trustpub,
}

impl Group {
    pub fn as_str(self) -> &'static str {
        match self {
            Group::Pep807 => "pep807",
            Group::Trustpub => "trustpub",
        }
    }

    pub fn title(self) -> &'static str {
        match self {
            Group::Pep807 => "PEP 807",
            Group::Trustpub => "trustpub extensions (optional)",
        }
    }
}

/// One check of the catalogue.
#[derive(Debug, Serialize)]
pub struct Check {
    pub id: &'static str,
    pub group: Group,
    pub level: Level,
    /// Where the requirement is written: a section of PEP 807, and for
    /// checks on the identity token the OIDC/JWT text the PEP defers to.
    pub section: &'static str,
    /// What is checked, in one line.
    pub title: &'static str,
    /// The requirements of trustpub's protocol notes (`spec/protocol.md`)
    /// that the check covers.
    pub requirements: &'static [&'static str],
}

const fn pep(
    id: &'static str,
    level: Level,
    section: &'static str,
    title: &'static str,
    requirements: &'static [&'static str],
) -> Check {
    Check {
        id,
        group: Group::Pep807,
        level,
        section,
        title,
        requirements,
    }
}

use Level::{Info, Must, Should};

const DISCOVERY: &str = "PEP 807, Trusted Publishing Discovery";
const CONSTRAINTS: &str = "PEP 807, Specification: Constraints";
const AUDIENCE: &str = "PEP 807, Audience Retrieval";
const MINTING: &str = "PEP 807, Token Minting";
const FEATURES: &str = "PEP 807, Feature Negotiation";

/// Every check, in report order.
pub const CHECKS: &[Check] = &[
    pep(
        "discovery.ok",
        Must,
        DISCOVERY,
        "the upload URL's discovery key answers 200 with a JSON object",
        &["TP-DISC-5"],
    ),
    pep(
        "discovery.fields",
        Must,
        DISCOVERY,
        "audience-endpoint and token-mint-endpoint are strings",
        &["TP-DISC-5"],
    ),
    pep(
        "discovery.urls-absolute",
        Must,
        DISCOVERY,
        "the endpoint URLs are absolute URLs",
        &["TP-DISC-5"],
    ),
    pep(
        "discovery.urls-same-host",
        Must,
        CONSTRAINTS,
        "the endpoint URLs have the upload URL's host",
        &["TP-URL-2"],
    ),
    pep(
        "discovery.urls-trustworthy",
        Must,
        CONSTRAINTS,
        "the endpoint URLs are https, or http to a loopback host or a --trusted-origin",
        &["TP-URL-1"],
    ),
    pep(
        "discovery.not-found",
        Must,
        DISCOVERY,
        "a path the server does not serve answers 404",
        &["TP-DISC-8"],
    ),
    pep(
        "discovery.empty-path",
        Must,
        "PEP 807, Trusted Publishing Discovery (step 2); RFC 3986, 6.2.3",
        "the empty key is the empty path, /: the root's document at the root, else 200 or 404",
        &["TP-DISC-3"],
    ),
    pep(
        "discovery.key-space",
        Must,
        "PEP 807, Trusted Publishing Discovery (steps 2-3 and footnote)",
        "a space in the path may be encoded as + (quote_plus) or %20",
        &["TP-DISC-2"],
    ),
    pep(
        "discovery.features-shape",
        Must,
        DISCOVERY,
        "features and default-features, when present, are arrays of strings",
        &["TP-DISC-6"],
    ),
    pep(
        "discovery.features-known",
        Must,
        FEATURES,
        "features and default-features name only the PEP's features; default-features is within features",
        &["TP-DISC-6", "TP-FEAT-1"],
    ),
    pep(
        "discovery.features-consistent",
        Should,
        FEATURES,
        "without default-features, multi-use-token is advertised; defaults are not both single- and multi-use",
        &["TP-DISC-7"],
    ),
    pep(
        "accept.vendor",
        Must,
        CONSTRAINTS,
        "Accept: application/vnd.pypi.pytp.v1+json is served",
        &["TP-ACCEPT-1"],
    ),
    pep(
        "accept.missing",
        Must,
        CONSTRAINTS,
        "a request without Accept is served as if it asked for the PEP's type, minting included",
        &["TP-ACCEPT-2"],
    ),
    pep(
        "accept.any",
        Info,
        "PEP 807, Specification: Constraints; RFC 9110, 12.5.1",
        "Accept: */* (what upload clients send) is served",
        &["TP-ACCEPT-3"],
    ),
    pep(
        "accept.other-406",
        Should,
        CONSTRAINTS,
        "Accept naming only another media type answers 406",
        &["TP-ACCEPT-3"],
    ),
    pep(
        "accept.answer-type",
        Must,
        CONSTRAINTS,
        "every 200 of discovery, audience and mint is labelled with the PEP's type or application/json",
        &["TP-ACCEPT-5"],
    ),
    pep(
        "audience.shape",
        Must,
        AUDIENCE,
        "the audience endpoint answers 200 with a string audience",
        &["TP-AUD-2"],
    ),
    pep(
        "audience.exact",
        Must,
        "PEP 807, Audience Retrieval; RFC 7519, 4.1.3",
        "tokens whose aud only resembles the audience are refused with 4xx",
        &["TP-AUD-4", "TP-SEC-5"],
    ),
    pep(
        "mint.valid",
        Must,
        MINTING,
        "a valid RS256 token answers 200 with a string token",
        &["TP-MINT-4"],
    ),
    pep(
        "mint.expires",
        Must,
        MINTING,
        "expires is an integer 900 to 21600 s after the request",
        &["TP-MINT-5", "TP-MINT-6"],
    ),
    pep(
        "mint.default-features",
        Must,
        MINTING,
        "a mint without features grants the default features (default-features, else multi-use-token)",
        &["TP-MINT-3", "TP-DISC-7"],
    ),
    pep(
        "mint.es256",
        Should,
        "PEP 807, Token Exchange (step 2); OpenID Connect Core, 3.1.3.7",
        "a valid ES256 token answers 200",
        &["TP-SEC-2"],
    ),
    pep(
        "mint.expired",
        Must,
        "PEP 807, Token Minting; RFC 7519, 4.1.4",
        "an expired token is refused with 4xx",
        &["TP-SEC-6"],
    ),
    pep(
        "mint.not-yet-valid",
        Must,
        "PEP 807, Token Minting; RFC 7519, 4.1.5 and 4.1.6",
        "a token valid only in an hour (nbf, iat) is refused with 4xx",
        &["TP-SEC-6"],
    ),
    pep(
        "mint.wrong-audience",
        Must,
        "PEP 807, Token Minting; RFC 7519, 4.1.3",
        "a token for another audience is refused with 4xx",
        &["TP-SEC-5"],
    ),
    pep(
        "mint.bad-signature",
        Must,
        "PEP 807, Token Minting; OpenID Connect Core, 3.1.3.7",
        "tampered, alg none, HMAC and unknown-key signatures are refused with 4xx",
        &["TP-SEC-2", "TP-SEC-3"],
    ),
    pep(
        "mint.unknown-issuer",
        Must,
        "PEP 807, Token Minting; OpenID Connect Core, 3.1.3.7",
        "a token from an issuer the server does not trust is refused with 4xx",
        &["TP-SEC-1"],
    ),
    pep(
        "mint.other-publisher",
        Must,
        "PEP 807, Token Exchange (step 3) and Security Implications; PyPI's security model",
        "a token of another repository, owner id or workflow than the trusted publisher is refused with 4xx",
        &["TP-SEC-8"],
    ),
    pep(
        "mint.replay",
        Should,
        "PEP 807, Security Implications; RFC 7519, 4.1.7",
        "a token already exchanged is refused with 4xx",
        &["TP-SEC-7"],
    ),
    pep(
        "mint.single-use",
        Must,
        FEATURES,
        "where advertised, single-use-token is granted on request",
        &["TP-FEAT-2", "TP-FEAT-6"],
    ),
    pep(
        "mint.multi-use",
        Must,
        FEATURES,
        "where advertised, multi-use-token is granted on request",
        &["TP-FEAT-4", "TP-FEAT-6"],
    ),
    pep(
        "mint.unknown-feature",
        Should,
        FEATURES,
        "a request for a feature nobody defined is refused with 4xx",
        &["TP-FEAT-5"],
    ),
    pep(
        "upload.single-use",
        Must,
        FEATURES,
        "with --probe-upload: a single-use credential uploads once; the second upload is refused (401/403)",
        &["TP-FEAT-2"],
    ),
    pep(
        "upload.multi-use",
        Must,
        FEATURES,
        "with --probe-upload: a multi-use credential is not refused for its second upload",
        &["TP-FEAT-4"],
    ),
    pep(
        "errors.problem-document",
        Must,
        "PEP 807, Specification: Constraints; RFC 9457, 3",
        "every 4xx/5xx is a problem document: a JSON object whose members, when present, have RFC 9457's types; status equals the HTTP status",
        &["TP-ERR-1", "TP-ERR-3"],
    ),
    pep(
        "errors.content-type",
        Should,
        CONSTRAINTS,
        "every 4xx/5xx is served as application/problem+json",
        &["TP-ERR-2"],
    ),
    Check {
        id: "trustpub.packages",
        group: Group::Trustpub,
        level: Must,
        section: "trustpub docs, Endpoints and the token exchange: Scope",
        title: "packages narrows the credential to the named package and refuses others",
        requirements: &["TP-MINT-8"],
    },
    Check {
        id: "trustpub.burn-token",
        group: Group::Trustpub,
        level: Must,
        section: "trustpub DESIGN, protocol surface: burn-token",
        title: "burn-token next to the mint endpoint accepts a credential (2xx)",
        requirements: &[],
    },
];

/// The check with this id.
pub fn check(id: &str) -> &'static Check {
    CHECKS
        .iter()
        .find(|c| c.id == id)
        .unwrap_or_else(|| panic!("no check has the id {id}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_unique_and_dotted_lower_case() {
        let mut seen = std::collections::HashSet::new();
        for c in CHECKS {
            assert!(seen.insert(c.id), "{} twice", c.id);
            let (area, name) = c.id.split_once('.').expect("area.name");
            assert!(!area.is_empty() && !name.is_empty(), "{}", c.id);
            assert!(
                c.id.chars().all(|ch| ch.is_ascii_lowercase()
                    || ch == '.'
                    || ch == '-'
                    || ch.is_ascii_digit()),
                "{}",
                c.id
            );
            assert_eq!(area == "trustpub", c.group == Group::Trustpub, "{}", c.id);
        }
    }

    /// The requirement ids a check cites exist in trustpub's protocol notes.
    #[test]
    fn cited_requirements_exist() {
        let notes =
            std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../spec/protocol.md"))
                .expect("spec/protocol.md");
        for c in CHECKS {
            for id in c.requirements {
                assert!(
                    notes.contains(&format!("| {id} |")),
                    "{}: {id} is not in spec/protocol.md",
                    c.id
                );
            }
        }
    }
}
