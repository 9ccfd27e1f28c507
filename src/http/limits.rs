//! Rate limits per client address: mints, and failed introspection and
//! forward-auth checks, each per registry (`[rate_limits]`, or the
//! registry's own `[registries.rate_limits]`). The client is the peer, or,
//! when the peer is one of `server.trusted_proxies`, the address it
//! forwards in `X-Forwarded-For`.

use std::future::Future;
use std::net::{IpAddr, Ipv4Addr};

use actix_web::{HttpRequest, HttpResponse};
use ipnet::IpNet;

use crate::config::{RateLimitSettings, Settings};
use crate::limits::{Buckets, client_key};
use crate::problem::Result;
use crate::registry::Registry;

/// The buckets of every client address, per registry.
pub struct RateLimits {
    settings: RateLimitSettings,
    trusted_proxies: Vec<IpNet>,
    mints: Buckets<(String, IpAddr)>,
    failed_checks: Buckets<(String, IpAddr)>,
}

impl RateLimits {
    pub fn new(settings: &Settings) -> Self {
        RateLimits {
            settings: settings.rate_limits,
            trusted_proxies: settings.server.trusted_proxies.clone(),
            mints: Buckets::new("mints"),
            failed_checks: Buckets::new("failed_checks"),
        }
    }

    /// Takes a token of the client's mint bucket for `registry`.
    pub(super) fn mint(&self, http: &HttpRequest, registry: &Registry) -> Result<()> {
        let limit = registry.rate_limits.mints.unwrap_or(self.settings.mints);
        self.mints.take(self.key(http, registry), limit)
    }

    /// Runs a credential check for the client: refused at once while the
    /// client's failed checks are over the limit, and charged when it fails
    /// (`check` answers whether the credential was active; a client error
    /// is a failure too).
    pub(super) async fn check<F>(
        &self,
        http: &HttpRequest,
        registry: &Registry,
        check: F,
    ) -> Result<HttpResponse>
    where
        F: Future<Output = Result<(HttpResponse, bool)>>,
    {
        let limit = registry
            .rate_limits
            .failed_checks
            .unwrap_or(self.settings.failed_checks);
        let key = self.key(http, registry);
        self.failed_checks.peek(key.clone(), limit)?;
        let answer = check.await;
        let failed = match &answer {
            Ok((_, active)) => !active,
            Err(error) => error.status_code_is_client_error(),
        };
        if failed {
            // Past the limit with this failure: the next one is refused.
            let _ = self.failed_checks.take(key, limit);
        }
        answer.map(|(response, _)| response)
    }

    /// The bucket key of the request's client on `registry`.
    fn key(&self, http: &HttpRequest, registry: &Registry) -> (String, IpAddr) {
        (
            registry.name.as_str().to_owned(),
            client_key(self.client(http)),
        )
    }

    /// The client's address: the peer's, unless the peer is a trusted proxy;
    /// then the last address in `X-Forwarded-For` that is not one (each
    /// proxy appends the address it got the request from).
    fn client(&self, http: &HttpRequest) -> IpAddr {
        let peer = http
            .peer_addr()
            .map_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED), |a| a.ip());
        if !self.trusted(peer) {
            return peer;
        }
        let hops: Vec<&str> = http
            .headers()
            .get_all("x-forwarded-for")
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .map(str::trim)
            .collect();
        let mut client = peer;
        for hop in hops.iter().rev() {
            match hop.parse::<IpAddr>() {
                Ok(address) => {
                    client = address;
                    if !self.trusted(address) {
                        break;
                    }
                }
                // What comes before an unreadable hop cannot be trusted.
                Err(_) => break,
            }
        }
        client
    }

    fn trusted(&self, address: IpAddr) -> bool {
        let address = address.to_canonical();
        self.trusted_proxies
            .iter()
            .any(|net| net.contains(&address))
    }
}
