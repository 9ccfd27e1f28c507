//! An identity token's claims, read without verifying the signature: only
//! to explain a refusal and to catch a token minted for another audience
//! before the server does. The server verifies; the client never trusts
//! what it reads here.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Map, Value};

/// The claims that trusted publishers of the providers trustpub supports are
/// configured from, in the order they are shown.
const RELEVANT: &[&str] = &[
    "iss",
    "aud",
    "sub",
    // GitHub Actions, Forgejo and Gitea
    "repository",
    "repository_owner_id",
    "job_workflow_ref",
    "workflow_ref",
    "environment",
    "ref",
    "event_name",
    // GitLab CI/CD
    "project_path",
    "namespace_id",
    "ci_config_ref_uri",
    "ref_path",
    "ref_protected",
    // Buildkite
    "organization_slug",
    "organization_id",
    "pipeline_slug",
    "step_key",
    "build_branch",
    "build_tag",
    // CircleCI
    "oidc.circleci.com/project-id",
    "oidc.circleci.com/vcs-ref",
    "oidc.circleci.com/context-ids",
    "oidc.circleci.com/ssh-rerun",
    // Google Cloud
    "email",
    "email_verified",
];

/// The payload of a JWT, if it is one.
pub fn decode(token: &str) -> Option<Map<String, Value>> {
    let payload = token.trim().split('.').nth(1)?;
    let bytes = URL_SAFE_NO_PAD.decode(payload.trim_end_matches('=')).ok()?;
    match serde_json::from_slice(&bytes).ok()? {
        Value::Object(claims) => Some(claims),
        _ => None,
    }
}

/// The relevant claims the token has, each value as JSON text (strings
/// without their quotes).
pub fn relevant(claims: &Map<String, Value>) -> Vec<(&'static str, String)> {
    RELEVANT
        .iter()
        .filter_map(|&name| {
            let value = claims.get(name)?;
            let text = match value {
                Value::String(s) => s.clone(),
                other => other.to_string(),
            };
            Some((name, text))
        })
        .collect()
}

/// The token's audiences (`aud` is a string or an array of strings), or
/// `None` when it cannot be read.
pub fn audiences(token: &str) -> Option<Vec<String>> {
    match decode(token)?.remove("aud")? {
        Value::String(audience) => Some(vec![audience]),
        Value::Array(items) => Some(
            items
                .into_iter()
                .filter_map(|item| item.as_str().map(str::to_owned))
                .collect(),
        ),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn token(payload: &str) -> String {
        format!("e30.{}.c2ln", URL_SAFE_NO_PAD.encode(payload))
    }

    #[test]
    fn audiences_are_a_string_or_an_array() {
        assert_eq!(audiences(&token(r#"{"aud":"a"}"#)), Some(vec!["a".into()]));
        assert_eq!(
            audiences(&token(r#"{"aud":["a","b"]}"#)),
            Some(vec!["a".into(), "b".into()])
        );
        assert_eq!(audiences(&token(r#"{"sub":"x"}"#)), None);
        assert_eq!(audiences("not a token"), None);
    }

    #[test]
    fn relevant_claims_keep_their_order_and_show_non_strings_as_json() {
        let claims = decode(&token(
            r#"{"sub":"s","iss":"i","ref_protected":"true","email_verified":true,"other":1}"#,
        ))
        .unwrap();
        assert_eq!(
            relevant(&claims),
            [
                ("iss", "i".to_owned()),
                ("sub", "s".to_owned()),
                ("ref_protected", "true".to_owned()),
                ("email_verified", "true".to_owned()),
            ]
        );
    }
}
