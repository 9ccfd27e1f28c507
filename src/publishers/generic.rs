//! Generic publishers: any OIDC issuer (Jenkins' OIDC plugin, Kubernetes
//! service-account tokens, Azure DevOps, SPIFFE JWT-SVIDs, an in-house
//! identity provider), matched by rules on its claims.
//!
//! A rule is an exact value or, for a string, an anchored `*` pattern. A
//! claim that is not a string is compared as canonical JSON (keys sorted,
//! no spaces), so `"true"` and `true` both match `true`, `"42"` and `42`
//! both match `42`. A claim the token lacks fails its rule. At least one
//! rule must be exact: a publisher of patterns only would trust strangers.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::claims::glob_match;
use super::{Audit, FieldError, Policy};
use crate::domain::Provider;
use crate::oidc::Claims;

/// Claims whose rules would mean nothing here: the issuer, audience and
/// times are checked for every token before any publisher.
const RESERVED: [&str; 7] = ["iss", "aud", "exp", "nbf", "iat", "jti", "sub"];

/// A publisher of any issuer, by claim rules.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GenericPublisher {
    /// The `sub` claim: exact, or an anchored `*` pattern.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subject: Option<String>,
    /// Claim name → exact value, or an anchored `*` pattern for strings.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub claims: BTreeMap<String, Value>,
}

/// The claims of the token, all of them: rules may name any.
#[derive(Debug, Deserialize)]
pub struct GenericClaims {
    #[serde(default)]
    sub: Option<String>,
    #[serde(flatten)]
    all: Claims,
}

/// A rule's value as text: strings as they are, anything else as
/// canonical JSON.
fn canonical(value: &Value) -> String {
    match value {
        Value::String(text) => text.clone(),
        other => other.to_string(),
    }
}

fn is_pattern(value: &Value) -> bool {
    matches!(value, Value::String(text) if text.contains('*'))
}

fn rule_matches(rule: &Value, claim: &Value) -> bool {
    match (rule, claim) {
        (Value::String(pattern), Value::String(text)) if pattern.contains('*') => {
            glob_match(pattern, text)
        }
        (Value::String(_), Value::String(_)) => rule == claim,
        _ => canonical(rule) == canonical(claim),
    }
}

impl Policy for GenericPublisher {
    type Claims = GenericClaims;

    fn validate(&self) -> std::result::Result<(), FieldError> {
        if let Some(name) = self.claims.keys().find(|n| RESERVED.contains(&n.as_str())) {
            let hint = if name == "sub" {
                "use `subject` for `sub`"
            } else {
                "trustpub checks it for every token"
            };
            return Err((
                "claims",
                format!("a rule on {name:?} is not allowed: {hint}"),
            ));
        }
        if let Some((name, _)) = self
            .claims
            .iter()
            .find(|(_, rule)| matches!(rule, Value::String(text) if text.is_empty()))
        {
            return Err(("claims", format!("the rule on {name:?} is empty")));
        }
        if self.subject.as_deref().is_some_and(str::is_empty) {
            return Err(("subject", "must not be empty when given".to_owned()));
        }
        let subject_exact = self.subject.as_deref().is_some_and(|s| !s.contains('*'));
        let claim_exact = self.claims.values().any(|rule| !is_pattern(rule));
        if !subject_exact && !claim_exact {
            return Err((
                "claims",
                "at least one rule (`subject` or a claim) must be an exact value, not a pattern: \
                 a publisher of patterns only trusts identities anyone could obtain"
                    .to_owned(),
            ));
        }
        Ok(())
    }

    fn check(&self, claims: &GenericClaims) -> std::result::Result<(), String> {
        if let Some(subject) = &self.subject {
            let got = claims.sub.as_deref();
            if !got.is_some_and(|sub| glob_match(subject, sub)) {
                return Err(format!("sub {got:?} does not match {subject:?}"));
            }
        }
        for (name, rule) in &self.claims {
            match claims.all.get(name) {
                Some(claim) if rule_matches(rule, claim) => {}
                Some(claim) => {
                    return Err(format!(
                        "{name} {} does not match {}",
                        canonical(claim),
                        canonical(rule)
                    ));
                }
                None => return Err(format!("the token has no {name} claim")),
            }
        }
        Ok(())
    }

    fn audit(claims: &GenericClaims) -> Audit {
        Audit {
            provider: Some(Provider::Generic),
            identity: claims.sub.as_ref().map(|sub| format!("generic:{sub}")),
            subject: claims.sub.clone(),
            ..Audit::default()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn rules_compare_non_strings_as_canonical_json() {
        assert!(rule_matches(&json!("true"), &json!(true)));
        assert!(rule_matches(&json!(true), &json!(true)));
        assert!(rule_matches(&json!("42"), &json!(42)));
        assert!(rule_matches(&json!(42), &json!("42")));
        assert!(!rule_matches(&json!(true), &json!(false)));
        assert!(rule_matches(
            &json!({"b": 1, "a": [2]}),
            &json!({"a": [2], "b": 1})
        ));
        assert!(rule_matches(&json!("{\"a\":1}"), &json!({"a": 1})));
        assert!(rule_matches(&json!("ns-*"), &json!("ns-prod")));
        assert!(!rule_matches(&json!("ns-*"), &json!("prod-ns-x")));
        assert!(!rule_matches(&json!("ns"), &json!("NS")));
    }
}
