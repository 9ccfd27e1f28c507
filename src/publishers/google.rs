//! Google Cloud service-account publishers (issuer
//! `https://accounts.google.com`): a job on Cloud Build, Compute Engine,
//! GKE or Cloud Run asks the metadata server for an identity token with the
//! registry's audience.
//!
//! Google's identity tokens carry no `jti`: trustpub accepts each such
//! token once by the digest of its payload instead.

use serde::{Deserialize, Serialize};

use super::claims::literal;
use super::{Audit, FieldError, Policy};
use crate::domain::Provider;

/// A Google Cloud service-account publisher.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GooglePublisher {
    /// The service account's email, compared case-insensitively.
    pub email: String,
    /// The service account's unique numeric id (`sub`): a deleted and
    /// re-created account of the same email has another.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subject: Option<String>,
}

/// The claims of a Google identity token that publishers read.
#[derive(Debug, Deserialize)]
pub struct GoogleClaims {
    email: String,
    email_verified: bool,
    sub: String,
}

impl Policy for GooglePublisher {
    type Claims = GoogleClaims;

    fn validate(&self) -> std::result::Result<(), FieldError> {
        literal("email", &self.email)?;
        if !self.email.contains('@') {
            return Err(("email", format!("{:?} is not an email address", self.email)));
        }
        if let Some(subject) = &self.subject {
            super::claims::numeric("subject", subject, "the service account's unique id")?;
        }
        Ok(())
    }

    fn check(&self, claims: &GoogleClaims) -> std::result::Result<(), String> {
        if !claims.email_verified {
            return Err(format!("email {:?} is not verified", claims.email));
        }
        if !claims.email.eq_ignore_ascii_case(&self.email) {
            return Err(format!("email {:?} is not {:?}", claims.email, self.email));
        }
        if let Some(subject) = &self.subject
            && &claims.sub != subject
        {
            return Err(format!("sub {:?} is not {subject:?}", claims.sub));
        }
        Ok(())
    }

    fn audit(claims: &GoogleClaims) -> Audit {
        Audit {
            provider: Some(Provider::Google),
            identity: Some(format!("google:{}", claims.email)),
            subject: Some(claims.sub.clone()),
            ..Audit::default()
        }
    }
}
