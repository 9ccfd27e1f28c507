//! The minting checks, and trustpub's extensions (which mint too).

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Value, json};
use trustpub::testing::{TestIssuer, TestKey};
use url::Url;

use super::{Endpoints, Extra, PEP_FEATURES, REFUSALS, Run, json_text, now};
use crate::http::{Answer, PEP_MEDIA_TYPE};

/// Clock difference between the kit and the server that `mint.expires`
/// tolerates, in seconds.
pub const CLOCK_SKEW_SECONDS: i64 = 5;

/// A feature no specification defines.
const UNKNOWN_FEATURE: &str = "trustpub-conformance-unknown-feature";

/// What a refusal check expects: a 4xx.
fn refused(answer: &Result<Answer, String>) -> Result<(), String> {
    match answer {
        Ok(answer) if answer.is_client_error() => Ok(()),
        Ok(answer) if answer.status < 300 => Err(format!("accepted: {}", answer.summary())),
        Ok(answer) => Err(format!("answered {}, not a 4xx", answer.summary())),
        Err(error) => Err(error.clone()),
    }
}

/// The credential of a successful mint, or why there is none.
pub(super) fn credential(answer: &Result<Answer, String>) -> Result<(String, Value), String> {
    let answer = answer.as_ref().map_err(Clone::clone)?;
    if answer.status != 200 {
        return Err(format!("answered {}, not 200", answer.summary()));
    }
    let Some(body @ Value::Object(_)) = answer.json() else {
        return Err(format!("200, but not a JSON object: {}", answer.summary()));
    };
    match body.get("token") {
        Some(Value::String(token)) if !token.is_empty() => Ok((token.clone(), body)),
        _ => Err(format!(
            "200, but token is not a non-empty string: {}",
            answer.summary()
        )),
    }
}

impl Run<'_> {
    pub(super) async fn exchange(
        &mut self,
        what: &str,
        mint: &Url,
        token: &str,
        extra: Extra,
    ) -> Result<Answer, String> {
        let mut body = extra;
        body.insert("token".to_owned(), Value::String(token.to_owned()));
        self.post(what, mint, Some(PEP_MEDIA_TYPE), &Value::Object(body))
            .await
    }

    /// Each of `tokens` must be refused with a 4xx.
    async fn expect_refusals(
        &mut self,
        id: &'static str,
        mint: &Url,
        tokens: Vec<(String, String)>,
    ) {
        let mut problems = Vec::new();
        let count = tokens.len();
        for (label, token) in tokens {
            let answer = self.exchange(id, mint, &token, Extra::new()).await;
            if let Err(problem) = refused(&answer) {
                problems.push(format!("{label}: {problem}"));
            }
        }
        self.judge(id, problems, format!("{count} token(s) refused"));
    }

    pub(super) async fn mint(&mut self, endpoints: &Endpoints, audience: &str) {
        let mint = endpoints.mint.clone();

        // mint.valid and mint.expires: one RS256 exchange, timed.
        let before = now();
        let answer = self
            .exchange("mint", &mint, &self.valid_token(audience), Extra::new())
            .await;
        let after = now();
        let default_mint = match credential(&answer) {
            Ok((_, body)) => {
                self.pass("mint.valid", "RS256 token exchanged");
                self.token_accepted = true;
                self.expires(&body, before, after);
                Some(body)
            }
            Err(problem) => {
                let issuer = &self.options.identity.issuer;
                self.fail(
                    "mint.valid",
                    format!(
                        "{problem} (is the server configured as `trustpub-conformance setup` says, \
                         and can it reach {issuer}/jwks?)"
                    ),
                );
                self.skip("mint.expires", "no successful mint (see mint.valid)");
                None
            }
        };

        let es256 = self.signer.sign_with(TestKey::Ec1, &self.claims(audience));
        let answer = self
            .exchange("mint (ES256)", &mint, &es256, Extra::new())
            .await;
        match credential(&answer) {
            Ok(_) => self.pass("mint.es256", "ES256 token exchanged"),
            Err(problem) => self.fail("mint.es256", problem),
        }

        if self.token_accepted {
            self.refusals(&mint, audience).await;
            self.other_publishers(&mint, audience).await;
            self.replay(&mint, audience).await;
        } else {
            for id in REFUSALS {
                self.skip(
                    id,
                    "not run: the server accepted no valid token in this run (see mint.valid), so a refusal would prove nothing",
                );
            }
        }
        self.feature_requests(&mint, audience, endpoints.features.as_deref())
            .await;
        self.default_features(endpoints, audience, default_mint.as_ref())
            .await;
        self.uploads(endpoints, audience).await;
        self.packages(&mint, audience).await;
        self.burn(&mint, audience).await;
    }

    fn expires(&mut self, body: &Value, before: i64, after: i64) {
        let Some(expires) = body.get("expires") else {
            self.skip(
                "mint.expires",
                "expires is optional and absent, so the lifetime cannot be checked",
            );
            return;
        };
        let Some(expires) = expires.as_i64().filter(|_| !expires.is_f64()) else {
            self.fail(
                "mint.expires",
                format!("expires is {expires}, not an integer"),
            );
            return;
        };
        let shortest = expires - after;
        let longest = expires - before;
        if longest < 900 - CLOCK_SKEW_SECONDS {
            self.fail(
                "mint.expires",
                format!("expires {expires} is {longest} s after the request, under 900 s"),
            );
        } else if shortest > 21_600 + CLOCK_SKEW_SECONDS {
            self.fail(
                "mint.expires",
                format!("expires {expires} is {shortest} s after the request, over 21600 s"),
            );
        } else {
            self.pass("mint.expires", format!("{longest} s after the request"));
        }
    }

    /// Tokens that must be refused: times, audiences, signatures, issuers.
    async fn refusals(&mut self, mint: &Url, audience: &str) {
        let t = now();
        let with = |run: &Self, changes: &[(&str, Value)]| {
            let mut claims = run.claims(audience);
            for (name, value) in changes {
                claims[*name] = value.clone();
            }
            run.signer.sign(&claims)
        };

        let stranger = format!("{}/not-trusted", self.options.identity.issuer);
        let one_token_each = [
            (
                "mint.expired",
                "expired an hour ago".to_owned(),
                vec![
                    ("iat", json!(t - 7200)),
                    ("nbf", json!(t - 7200)),
                    ("exp", json!(t - 3600)),
                ],
            ),
            (
                "mint.not-yet-valid",
                "valid in an hour".to_owned(),
                vec![
                    ("iat", json!(t + 3600)),
                    ("nbf", json!(t + 3600)),
                    ("exp", json!(t + 3900)),
                ],
            ),
            (
                "mint.wrong-audience",
                "another audience".to_owned(),
                vec![("aud", json!("https://conformance.invalid/another-index"))],
            ),
            (
                "mint.unknown-issuer",
                format!("iss {}", json_text(&stranger)),
                vec![("iss", json!(stranger))],
            ),
        ];
        for (id, label, changes) in one_token_each {
            let token = with(self, &changes);
            self.expect_refusals(id, mint, vec![(label, token)]).await;
        }

        let mut near_misses = vec![
            format!("{audience}x"),
            format!("x{audience}"),
            format!("{audience}/"),
        ];
        for variant in [audience.to_uppercase(), audience.to_lowercase()] {
            if variant != audience && !near_misses.contains(&variant) {
                near_misses.push(variant);
            }
        }
        let tokens = near_misses
            .into_iter()
            .map(|aud| {
                (
                    format!("aud {}", json_text(&aud)),
                    with(self, &[("aud", json!(aud))]),
                )
            })
            .collect();
        self.expect_refusals("audience.exact", mint, tokens).await;

        let tokens = vec![
            (
                "a tampered RS256 signature".to_owned(),
                tampered(&self.valid_token(audience)),
            ),
            (
                "alg none".to_owned(),
                TestIssuer::token_with(
                    &json!({"alg": "none", "typ": "JWT"}),
                    &self.claims(audience),
                    b"",
                ),
            ),
            (
                "HS256 keyed with the RSA public key".to_owned(),
                self.signer
                    .sign_hmac_with_public_key(&self.claims(audience)),
            ),
            (
                "a key the issuer does not publish (kid rsa-2)".to_owned(),
                self.signer.sign_with(TestKey::Rsa2, &self.claims(audience)),
            ),
        ];
        self.expect_refusals("mint.bad-signature", mint, tokens)
            .await;
    }

    async fn replay(&mut self, mint: &Url, audience: &str) {
        let token = self.valid_token(audience);
        let first = self
            .exchange("mint (replay, first)", mint, &token, Extra::new())
            .await;
        if let Err(problem) = credential(&first) {
            self.skip(
                "mint.replay",
                format!("the first exchange did not succeed: {problem}"),
            );
            return;
        }
        let second = self
            .exchange("mint (replay, second)", mint, &token, Extra::new())
            .await;
        match refused(&second) {
            Ok(()) => self.pass(
                "mint.replay",
                "the second exchange of one token was refused",
            ),
            Err(problem) => self.fail(
                "mint.replay",
                format!("the second exchange of one token: {problem}"),
            ),
        }
    }

    async fn feature_requests(
        &mut self,
        mint: &Url,
        audience: &str,
        advertised: Option<&[String]>,
    ) {
        for (id, feature) in [
            ("mint.single-use", "single-use-token"),
            ("mint.multi-use", "multi-use-token"),
        ] {
            if !advertised.is_some_and(|a| a.iter().any(|f| f == feature)) {
                self.skip(
                    id,
                    format!(
                        "{feature} is not advertised (features is absent, malformed or without it)"
                    ),
                );
                continue;
            }
            let extra = Extra::from_iter([("features".to_owned(), json!([feature]))]);
            let answer = self
                .exchange(id, mint, &self.valid_token(audience), extra)
                .await;
            match credential(&answer) {
                // `features` in the answer is not the PEP's, but when a
                // server names the credential's features they must fit.
                Ok((_, body)) => match body.get("features").and_then(Value::as_array) {
                    Some(granted) if !granted.iter().any(|f| f == feature) => self.fail(
                        id,
                        format!(
                            "asked for {feature}, the answer says features {}",
                            json_text(granted)
                        ),
                    ),
                    _ => self.pass(id, format!("{feature} granted")),
                },
                Err(problem) => self.fail(id, format!("asked for {feature}: {problem}")),
            }
        }

        if !self.token_accepted {
            return;
        }
        let extra = Extra::from_iter([("features".to_owned(), json!([UNKNOWN_FEATURE]))]);
        let answer = self
            .exchange(
                "mint.unknown-feature",
                mint,
                &self.valid_token(audience),
                extra,
            )
            .await;
        match refused(&answer) {
            Ok(()) => self.pass(
                "mint.unknown-feature",
                format!("features {} refused", json_text(&[UNKNOWN_FEATURE])),
            ),
            Err(problem) => self.fail(
                "mint.unknown-feature",
                format!("features {}: {problem}", json_text(&[UNKNOWN_FEATURE])),
            ),
        }
    }

    /// `mint.other-publisher`: tokens of the kit's own issuer, valid in
    /// every other way, whose repository, owner id or workflow is not the
    /// trusted publisher's.
    async fn other_publishers(&mut self, mint: &Url, audience: &str) {
        let id = "mint.other-publisher";
        let claims = self.claims(audience);
        let mut tokens = Vec::new();
        for (claim, label) in [
            ("repository", "another repository"),
            ("repository_owner_id", "another owner id"),
            ("job_workflow_ref", "another workflow"),
        ] {
            let Some(other) = claims.get(claim).and_then(Value::as_str).map(another) else {
                continue;
            };
            let mut changed = self.claims(audience);
            changed[claim] = json!(other);
            // GitHub repeats the repository and workflow in other claims; a
            // token that only half changed would be refused as inconsistent.
            if claim == "job_workflow_ref" {
                changed["workflow_ref"] = json!(other);
            }
            tokens.push((
                format!("{label}: {claim} {}", json_text(&other)),
                self.signer.sign(&changed),
            ));
        }
        if tokens.is_empty() {
            return self.skip(
                id,
                "the kit's claims (see --claims) have none of repository, repository_owner_id and job_workflow_ref",
            );
        }
        self.expect_refusals(id, mint, tokens).await;
    }

    /// `mint.default-features`: what a mint without `features` granted, read
    /// from the answer's `features` where the server names them, else found
    /// by uploading twice (`--probe-upload`).
    async fn default_features(
        &mut self,
        endpoints: &Endpoints,
        audience: &str,
        minted: Option<&Value>,
    ) {
        let id = "mint.default-features";
        let Some(defaults) = endpoints.defaults.clone() else {
            return self.skip(
                id,
                "the default features are unknown (see discovery.features-shape and discovery.features-consistent)",
            );
        };
        let Some(minted) = minted else {
            return self.skip(id, "no successful mint (see mint.valid)");
        };
        let expected: Vec<&str> = PEP_FEATURES
            .into_iter()
            .filter(|f| defaults.iter().any(|d| d == f))
            .collect();
        let (granted, how): (Vec<&str>, String) = match minted
            .get("features")
            .and_then(Value::as_array)
        {
            Some(named) => (
                PEP_FEATURES
                    .into_iter()
                    .filter(|f| named.iter().any(|n| n == f))
                    .collect(),
                format!("the answer names features {}", json_text(named)),
            ),
            None if self.options.probe_upload => {
                let Some(single) = self
                    .probe_single_use(&endpoints.mint, audience, Extra::new())
                    .await
                else {
                    return;
                };
                let granted = if single {
                    "single-use-token"
                } else {
                    "multi-use-token"
                };
                (vec![granted], format!("uploading twice showed a {granted}"))
            }
            None => {
                return self.skip(
                    id,
                    "the mint answer does not name the features granted; give --probe-upload to find them by uploading",
                );
            }
        };
        if granted == expected {
            self.pass(id, format!("{how}, the default {}", json_text(&expected)));
        } else {
            self.fail(
                id,
                format!(
                    "a mint without features: {how}, but the default features are {}",
                    json_text(&expected)
                ),
            );
        }
    }

    /// trustpub's `packages`: narrows to the allowed package, refuses the
    /// forbidden one. Not recorded for the problem checks: extensions are
    /// judged apart.
    async fn packages(&mut self, mint: &Url, audience: &str) {
        let id = "trustpub.packages";
        if !self.token_accepted {
            return self.skip(
                id,
                "no valid token was accepted in this run (see mint.valid)",
            );
        }
        let package = self.options.identity.package.clone();
        let forbidden = self.options.identity.forbidden_package.clone();
        let body = json!({ "token": self.valid_token(audience), "packages": [package] });
        let answer = self
            .client
            .post_json(mint, Some(PEP_MEDIA_TYPE), &body)
            .await;
        let granted = match (&answer, credential(&answer)) {
            (_, Ok((_, body))) => body.get("packages").cloned(),
            (Ok(answer), Err(_)) if answer.status == 400 => {
                self.skip(
                    id,
                    format!(
                        "a request with packages was refused ({}): not implemented",
                        answer.summary()
                    ),
                );
                return;
            }
            (_, Err(problem)) => {
                self.fail(
                    id,
                    format!("packages {}: {problem}", json_text(&[&package])),
                );
                return;
            }
        };
        let Some(granted) = granted else {
            self.skip(
                id,
                "the answer has no packages member: the extension is not implemented",
            );
            return;
        };
        let expected = json!([pep503(&package)]);
        let normalised = granted.as_array().map(|names| {
            names
                .iter()
                .map(|n| json!(pep503(n.as_str().unwrap_or_default())))
                .collect::<Vec<_>>()
        });
        if normalised.map(Value::Array).as_ref() != Some(&expected) {
            self.fail(
                id,
                format!("asked for {}, granted {granted}", json_text(&[&package])),
            );
            return;
        }
        let body = json!({ "token": self.valid_token(audience), "packages": [forbidden] });
        let answer = self
            .client
            .post_json(mint, Some(PEP_MEDIA_TYPE), &body)
            .await;
        match refused(&answer) {
            Ok(()) => self.pass(
                id,
                format!(
                    "narrowed to {}; {} refused",
                    json_text(&[&package]),
                    json_text(&[&forbidden])
                ),
            ),
            Err(problem) => self.fail(
                id,
                format!("packages {}: {problem}", json_text(&[&forbidden])),
            ),
        }
    }

    /// trustpub's burn-token: skipped where the server has none (404/405).
    async fn burn(&mut self, mint: &Url, audience: &str) {
        let id = "trustpub.burn-token";
        let endpoint = match &self.options.burn_endpoint {
            Some(url) => url.clone(),
            None => match burn_endpoint_next_to(mint) {
                Some(url) => url,
                None => {
                    self.skip(
                        id,
                        "the mint endpoint does not end in mint-token; give --burn-endpoint",
                    );
                    return;
                }
            },
        };
        let body = json!({ "token": self.valid_token(audience) });
        let minted = self
            .client
            .post_json(mint, Some(PEP_MEDIA_TYPE), &body)
            .await;
        let credential = match credential(&minted) {
            Ok((credential, _)) => credential,
            Err(problem) => {
                self.skip(id, format!("no credential to burn: {problem}"));
                return;
            }
        };
        let answer = self
            .client
            .post_json(
                &endpoint,
                Some(PEP_MEDIA_TYPE),
                &json!({ "token": credential }),
            )
            .await;
        match answer {
            Ok(answer) if (200..300).contains(&answer.status) => {
                self.pass(id, format!("POST {endpoint} answered {}", answer.status))
            }
            Ok(answer) if matches!(answer.status, 404 | 405) => self.skip(
                id,
                format!(
                    "POST {endpoint} answered {}: no burn-token endpoint",
                    answer.status
                ),
            ),
            Ok(answer) => self.fail(id, format!("POST {endpoint} answered {}", answer.summary())),
            Err(error) => self.fail(id, error),
        }
    }
}

/// A claim value that differs from `value` but looks like it, as another
/// repository, owner or workflow of the same CI would send it: a number one
/// higher; otherwise the last `/` segment before any `@` prefixed with
/// `other-` (`octo-org/widget` → `octo-org/other-widget`,
/// `…/workflows/release.yml@ref` → `…/workflows/other-release.yml@ref`).
fn another(value: &str) -> String {
    if let Ok(number) = value.parse::<u64>() {
        return (number + 1).to_string();
    }
    let (path, reference) = match value.split_once('@') {
        Some((path, reference)) => (path, Some(reference)),
        None => (value, None),
    };
    let other = match path.rsplit_once('/') {
        Some((parent, last)) => format!("{parent}/other-{last}"),
        None => format!("other-{path}"),
    };
    match reference {
        Some(reference) => format!("{other}@{reference}"),
        None => other,
    }
}

/// `…/mint-token` → `…/burn-token`.
fn burn_endpoint_next_to(mint: &Url) -> Option<Url> {
    let path = mint.path().strip_suffix("mint-token")?;
    let mut url = mint.clone();
    url.set_path(&format!("{path}burn-token"));
    Some(url)
}

/// A JWT whose signature has one byte changed.
fn tampered(token: &str) -> String {
    let (input, signature) = token.rsplit_once('.').expect("a signed JWT");
    let mut bytes = URL_SAFE_NO_PAD.decode(signature).expect("base64url");
    bytes[0] ^= 0x01;
    format!("{input}.{}", URL_SAFE_NO_PAD.encode(bytes))
}

/// A package name normalised as PEP 503 does.
fn pep503(name: &str) -> String {
    let mut out = String::new();
    for c in name.chars() {
        if matches!(c, '-' | '_' | '.') {
            if !out.ends_with('-') {
                out.push('-');
            }
        } else {
            out.extend(c.to_lowercase());
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn burn_token_sits_next_to_mint_token() {
        let mint = Url::parse("https://x.test/_/trustpub/acme/mint-token").unwrap();
        assert_eq!(
            burn_endpoint_next_to(&mint).unwrap().as_str(),
            "https://x.test/_/trustpub/acme/burn-token"
        );
        assert!(burn_endpoint_next_to(&Url::parse("https://x.test/mint").unwrap()).is_none());
    }

    #[test]
    fn tampering_changes_only_the_signature() {
        let token = format!("a.b.{}", URL_SAFE_NO_PAD.encode([7u8; 4]));
        let changed = tampered(&token);
        assert!(changed.starts_with("a.b."));
        assert_ne!(changed, token);
    }

    #[test]
    fn other_publishers_differ_in_one_place() {
        assert_eq!(another("9919"), "9920");
        assert_eq!(another("octo-org/widget"), "octo-org/other-widget");
        assert_eq!(
            another("o/r/.github/workflows/release.yml@refs/heads/main"),
            "o/r/.github/workflows/other-release.yml@refs/heads/main"
        );
        assert_eq!(another("widget"), "other-widget");
    }

    #[test]
    fn pep503_folds_case_and_separator_runs() {
        assert_eq!(pep503("Zope._-Interface"), "zope-interface");
        assert_eq!(pep503("widget"), "widget");
    }
}
