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
}

impl Level {
    pub fn as_str(self) -> &'static str {
        match self {
            Level::Must => "MUST",
            Level::Should => "SHOULD",
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
}

const fn pep(id: &'static str, level: Level, section: &'static str, title: &'static str) -> Check {
    Check {
        id,
        group: Group::Pep807,
        level,
        section,
        title,
    }
}

use Level::{Must, Should};

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
    ),
    pep(
        "discovery.fields",
        Must,
        DISCOVERY,
        "audience-endpoint and token-mint-endpoint are strings",
    ),
    pep(
        "discovery.urls-absolute",
        Must,
        DISCOVERY,
        "the endpoint URLs are absolute URLs",
    ),
    pep(
        "discovery.urls-same-host",
        Must,
        CONSTRAINTS,
        "the endpoint URLs have the upload URL's host",
    ),
    pep(
        "discovery.urls-trustworthy",
        Must,
        CONSTRAINTS,
        "the endpoint URLs are https, or http to a loopback host",
    ),
    pep(
        "discovery.not-found",
        Must,
        DISCOVERY,
        "a path the server does not serve answers 404",
    ),
    pep(
        "discovery.key-space",
        Must,
        "PEP 807, Trusted Publishing Discovery (steps 2-3 and footnote)",
        "a space in the path may be encoded as + (quote_plus) or %20",
    ),
    pep(
        "discovery.features-shape",
        Must,
        DISCOVERY,
        "features and default-features, when present, are arrays of strings",
    ),
    pep(
        "discovery.features-consistent",
        Should,
        FEATURES,
        "the default features are advertised and not both single- and multi-use",
    ),
    pep(
        "accept.vendor",
        Must,
        CONSTRAINTS,
        "Accept: application/vnd.pypi.pytp.v1+json is served",
    ),
    pep(
        "accept.missing",
        Must,
        CONSTRAINTS,
        "a request without Accept is served as if it asked for the PEP's type",
    ),
    pep(
        "accept.any",
        Should,
        "PEP 807, Specification: Constraints; RFC 9110, 12.5.1",
        "Accept: */* (what upload clients send) is served",
    ),
    pep(
        "accept.other-406",
        Should,
        CONSTRAINTS,
        "Accept naming only another media type answers 406",
    ),
    pep(
        "audience.shape",
        Must,
        AUDIENCE,
        "the audience endpoint answers 200 with a string audience",
    ),
    pep(
        "audience.exact",
        Must,
        "PEP 807, Audience Retrieval; RFC 7519, 4.1.3",
        "tokens whose aud only resembles the audience are refused with 4xx",
    ),
    pep(
        "mint.valid",
        Must,
        MINTING,
        "a valid RS256 token answers 200 with a string token",
    ),
    pep(
        "mint.expires",
        Must,
        MINTING,
        "expires is an integer 900 to 21600 s after the request",
    ),
    pep(
        "mint.es256",
        Should,
        "PEP 807, Token Exchange (step 2); OpenID Connect Core, 3.1.3.7",
        "a valid ES256 token answers 200",
    ),
    pep(
        "mint.expired",
        Must,
        "PEP 807, Token Minting; RFC 7519, 4.1.4",
        "an expired token is refused with 4xx",
    ),
    pep(
        "mint.not-yet-valid",
        Must,
        "PEP 807, Token Minting; RFC 7519, 4.1.5 and 4.1.6",
        "a token valid only in an hour (nbf, iat) is refused with 4xx",
    ),
    pep(
        "mint.wrong-audience",
        Must,
        "PEP 807, Token Minting; RFC 7519, 4.1.3",
        "a token for another audience is refused with 4xx",
    ),
    pep(
        "mint.bad-signature",
        Must,
        "PEP 807, Token Minting; OpenID Connect Core, 3.1.3.7",
        "tampered, alg none, HMAC and unknown-key signatures are refused with 4xx",
    ),
    pep(
        "mint.unknown-issuer",
        Must,
        "PEP 807, Token Minting; OpenID Connect Core, 3.1.3.7",
        "a token from an issuer the server does not trust is refused with 4xx",
    ),
    pep(
        "mint.replay",
        Should,
        "PEP 807, Security Implications; RFC 7519, 4.1.7",
        "a token already exchanged is refused with 4xx",
    ),
    pep(
        "mint.single-use",
        Must,
        FEATURES,
        "where advertised, single-use-token is granted on request",
    ),
    pep(
        "mint.multi-use",
        Must,
        FEATURES,
        "where advertised, multi-use-token is granted on request",
    ),
    pep(
        "mint.unknown-feature",
        Should,
        FEATURES,
        "a request for a feature nobody defined is refused with 4xx",
    ),
    pep(
        "errors.problem-document",
        Must,
        "PEP 807, Specification: Constraints; RFC 9457, 3",
        "every 4xx/5xx is a problem document: status equals the HTTP status, title and type are strings",
    ),
    pep(
        "errors.content-type",
        Should,
        CONSTRAINTS,
        "every 4xx/5xx is served as application/problem+json",
    ),
    Check {
        id: "trustpub.packages",
        group: Group::Trustpub,
        level: Must,
        section: "trustpub README, Token exchange: Scope",
        title: "packages narrows the credential to the named package and refuses others",
    },
    Check {
        id: "trustpub.burn-token",
        group: Group::Trustpub,
        level: Must,
        section: "trustpub DESIGN, protocol surface: burn-token",
        title: "burn-token next to the mint endpoint accepts a credential (2xx)",
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
}
