//! Rate limits as token buckets: each key (a client address and registry,
//! or the whole server) has a bucket of at most `burst` tokens, refilled at
//! `per_minute`; a request that finds its bucket empty is refused with how
//! long until the next token. Buckets live in memory, per instance.

use std::collections::HashMap;
use std::hash::Hash;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::Instant;

use serde::{Deserialize, Serialize};

use crate::problem::{Error, Result};

/// A limit: up to `burst` requests at once, then `per_minute`.
/// `per_minute = 0` turns it off.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Limit {
    pub per_minute: u32,
    pub burst: u32,
}

impl Limit {
    pub const OFF: Limit = Limit {
        per_minute: 0,
        burst: 0,
    };

    pub fn is_off(self) -> bool {
        self.per_minute == 0
    }

    /// A limit that is on must let at least one request through.
    pub fn validate(self) -> std::result::Result<(), String> {
        if !self.is_off() && self.burst == 0 {
            return Err("burst must be at least 1 (per_minute = 0 turns the limit off)".into());
        }
        Ok(())
    }

    fn per_second(self) -> f64 {
        f64::from(self.per_minute) / 60.0
    }
}

/// Above this many buckets, the full ones are forgotten: a full bucket is
/// the same as none. The next pruning waits until the buckets left have
/// doubled, so that pruning costs O(1) a request however many are kept.
const PRUNE_ABOVE: usize = 10_000;

#[derive(Debug)]
struct Bucket {
    tokens: f64,
    at: Instant,
}

impl Bucket {
    /// The bucket refilled up to `now`.
    fn refill(&mut self, limit: Limit, now: Instant) {
        let elapsed = now.saturating_duration_since(self.at).as_secs_f64();
        self.tokens = (self.tokens + elapsed * limit.per_second()).min(f64::from(limit.burst));
        self.at = now;
    }

    /// Whole seconds until the bucket holds a token again (at least 1).
    fn retry_after(&self, limit: Limit) -> u64 {
        ((1.0 - self.tokens) / limit.per_second()).ceil().max(1.0) as u64
    }
}

/// Token buckets by key, each created full when first used. `what` names
/// the limit in the refusal.
#[derive(Debug)]
pub struct Buckets<K> {
    what: &'static str,
    entries: Mutex<Entries<K>>,
}

#[derive(Debug)]
struct Entries<K> {
    buckets: HashMap<K, Bucket>,
    /// How many buckets trigger the next pruning.
    prune_above: usize,
}

impl<K: Hash + Eq> Buckets<K> {
    pub fn new(what: &'static str) -> Self {
        Buckets {
            what,
            entries: Mutex::new(Entries {
                buckets: HashMap::new(),
                prune_above: PRUNE_ABOVE,
            }),
        }
    }

    /// Takes a token from the bucket of `key`, or refuses with
    /// `rate-limited`.
    pub fn take(&self, key: K, limit: Limit) -> Result<()> {
        self.with_bucket(key, limit, |bucket| {
            bucket.tokens -= 1.0;
        })
    }

    /// Whether the bucket of `key` holds a token, leaving it there.
    pub fn peek(&self, key: K, limit: Limit) -> Result<()> {
        self.with_bucket(key, limit, |_| {})
    }

    /// Runs `use_token` on the refilled bucket of `key` when it holds a
    /// token; refuses otherwise.
    fn with_bucket(&self, key: K, limit: Limit, use_token: impl FnOnce(&mut Bucket)) -> Result<()> {
        if limit.is_off() {
            return Ok(());
        }
        let now = Instant::now();
        let mut entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        if entries.buckets.len() > entries.prune_above {
            entries.buckets.retain(|_, bucket| {
                bucket.refill(limit, now);
                bucket.tokens < f64::from(limit.burst)
            });
            entries.prune_above = PRUNE_ABOVE.max(2 * entries.buckets.len());
        }
        let bucket = entries.buckets.entry(key).or_insert(Bucket {
            tokens: f64::from(limit.burst),
            at: now,
        });
        bucket.refill(limit, now);
        if bucket.tokens >= 1.0 {
            use_token(bucket);
            Ok(())
        } else {
            Err(Error::RateLimited {
                limit: self.what,
                retry_after: bucket.retry_after(limit),
            })
        }
    }
}

/// The address a client's buckets are kept under: IPv4 addresses as they
/// are (IPv4-mapped IPv6 ones too), IPv6 addresses by their /64, the
/// smallest network a host is usually given.
pub fn client_key(address: IpAddr) -> IpAddr {
    match address.to_canonical() {
        IpAddr::V6(v6) => {
            let prefix = u128::from(v6) & !((1u128 << 64) - 1);
            IpAddr::V6(prefix.into())
        }
        v4 => v4,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TWO: Limit = Limit {
        per_minute: 1,
        burst: 2,
    };

    #[test]
    fn a_bucket_lets_its_burst_through_then_says_when_to_retry() {
        let buckets = Buckets::new("tests");
        assert!(buckets.take("a", TWO).is_ok());
        assert!(buckets.peek("a", TWO).is_ok());
        assert!(buckets.take("a", TWO).is_ok());
        match buckets.take("a", TWO) {
            Err(Error::RateLimited { retry_after, .. }) => {
                assert!((59..=60).contains(&retry_after))
            }
            other => panic!("expected rate-limited, got {other:?}"),
        }
        assert!(buckets.peek("a", TWO).is_err());
        // Another key has its own bucket.
        assert!(buckets.take("b", TWO).is_ok());
    }

    #[test]
    fn a_limit_that_is_off_never_refuses() {
        let off = Limit::OFF;
        let buckets = Buckets::new("tests");
        for _ in 0..1000 {
            assert!(buckets.take((), off).is_ok());
        }
        assert!(off.validate().is_ok());
        assert!(
            Limit {
                per_minute: 1,
                burst: 0
            }
            .validate()
            .is_err()
        );
    }

    #[test]
    fn pruning_waits_until_the_buckets_it_kept_have_doubled() {
        let buckets = Buckets::new("tests");
        let one = Limit {
            per_minute: 60,
            burst: 1,
        };
        // Emptied buckets are kept; the first pruning keeps them all.
        for key in 0..=PRUNE_ABOVE {
            buckets.take(key, one).unwrap();
        }
        buckets.take(PRUNE_ABOVE + 1, one).unwrap();
        let entries = buckets.entries.lock().unwrap();
        assert_eq!(entries.buckets.len(), PRUNE_ABOVE + 2);
        assert_eq!(entries.prune_above, 2 * (PRUNE_ABOVE + 1));
    }

    #[test]
    fn ipv6_clients_share_their_64() {
        let a: IpAddr = "2001:db8:1:2:aaaa::1".parse().unwrap();
        let b: IpAddr = "2001:db8:1:2:bbbb::2".parse().unwrap();
        let c: IpAddr = "2001:db8:1:3::1".parse().unwrap();
        assert_eq!(client_key(a), client_key(b));
        assert_ne!(client_key(a), client_key(c));
        let mapped: IpAddr = "::ffff:192.0.2.7".parse().unwrap();
        assert_eq!(client_key(mapped), "192.0.2.7".parse::<IpAddr>().unwrap());
    }
}
