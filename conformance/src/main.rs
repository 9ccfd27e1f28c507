//! `trustpub-conformance`: a black-box kit that checks any PEP 807 server from
//! its upload URL.
//!
//! It is not built yet. Its own issue will give it a test OIDC issuer (real
//! HTTP, real JWKS, RS256 and ES256 keys), checks with stable ids citing the
//! PEP's MUST/SHOULD requirements, and text, JSON and JUnit XML reports.

fn main() {
    eprintln!(
        "trustpub-conformance {}: not implemented yet; it will check a PEP 807 server \
         (discovery, audience, token minting, problem documents) from its upload URL",
        env!("CARGO_PKG_VERSION")
    );
    std::process::exit(2);
}
