//! Prometheus metrics: one registry per application (so that servers in
//! one process, as in the tests, count apart), rendered in the text format
//! for `GET /metrics`. Every label takes values from a bounded set: route
//! patterns, never raw paths; registry and issuer names from the
//! configuration; problem codes.

use std::sync::Arc;

use prometheus::core::Collector;
use prometheus::{
    Encoder, Histogram, HistogramOpts, HistogramVec, IntCounterVec, IntGaugeVec, Opts, Registry,
    TextEncoder,
};

/// The families of what became of a request, as recorded in the event log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcomes {
    Mints,
    Checks,
    Uploads,
    Revocations,
}

/// The metrics of one application; clones share them.
#[derive(Clone)]
pub struct Metrics(Arc<Inner>);

struct Inner {
    registry: Registry,
    /// The name of every family registered, whether or not it has a value yet.
    names: Vec<String>,
    requests: IntCounterVec,
    latency: HistogramVec,
    mints: IntCounterVec,
    checks: IntCounterVec,
    uploads: IntCounterVec,
    revocations: IntCounterVec,
    key_fetches: IntCounterVec,
    batch_size: Histogram,
    live_credentials: IntGaugeVec,
    store_errors: IntCounterVec,
    rate_limited: IntCounterVec,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics").finish_non_exhaustive()
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

/// The labels of an event's outcome.
const OUTCOME_LABELS: &[&str] = &["registry", "outcome", "code"];

impl Metrics {
    pub fn new() -> Self {
        let registry = Registry::new();
        let mut names = Vec::new();
        let mut add = |collector: Box<dyn Collector>| {
            names.extend(collector.desc().iter().map(|d| d.fq_name.clone()));
            registry
                .register(collector)
                .expect("metric names are registered once");
        };
        let counter = |name: &str, help: &str, labels: &[&str]| {
            IntCounterVec::new(Opts::new(name, help), labels).expect("valid metric")
        };
        let requests = counter(
            "trustpub_http_requests_total",
            "HTTP requests answered, by route pattern and status.",
            &["route", "status"],
        );
        let latency = HistogramVec::new(
            HistogramOpts::new(
                "trustpub_http_request_duration_seconds",
                "Time to answer an HTTP request, by route pattern.",
            ),
            &["route"],
        )
        .expect("valid metric");
        let mints = counter(
            "trustpub_mints_total",
            "Mints: minted, or refused with a problem code.",
            OUTCOME_LABELS,
        );
        let checks = counter(
            "trustpub_checks_total",
            "Credential checks (introspection, forward-auth, gateway) and forward-auth reads.",
            OUTCOME_LABELS,
        );
        let uploads = counter(
            "trustpub_uploads_total",
            "Uploads through the gateway: forwarded (ok, passed-through) or refused.",
            OUTCOME_LABELS,
        );
        let revocations = counter(
            "trustpub_revocations_total",
            "Credential revocations: burn-token and the admin API.",
            OUTCOME_LABELS,
        );
        let key_fetches = counter(
            "trustpub_key_fetches_total",
            "Fetches of an issuer's signing keys, by issuer and result.",
            &["issuer", "result"],
        );
        let batch_size = Histogram::with_opts(
            HistogramOpts::new(
                "trustpub_mint_batch_size",
                "Mints written per transaction by the group commit.",
            )
            .buckets(vec![1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0]),
        )
        .expect("valid metric");
        let live_credentials = IntGaugeVec::new(
            Opts::new(
                "trustpub_live_credentials",
                "Live credentials per registry, read from the store when scraped.",
            ),
            &["registry"],
        )
        .expect("valid metric");
        let store_errors = counter(
            "trustpub_store_errors_total",
            "Database failures: requests answered with one, failed purges, scrapes without live-credential counts.",
            &["source"],
        );
        let rate_limited = counter(
            "trustpub_rate_limited_total",
            "Requests refused with 429 rate-limited, by limit.",
            &["limit"],
        );
        add(Box::new(requests.clone()));
        add(Box::new(latency.clone()));
        add(Box::new(mints.clone()));
        add(Box::new(checks.clone()));
        add(Box::new(uploads.clone()));
        add(Box::new(revocations.clone()));
        add(Box::new(key_fetches.clone()));
        add(Box::new(batch_size.clone()));
        add(Box::new(live_credentials.clone()));
        add(Box::new(store_errors.clone()));
        add(Box::new(rate_limited.clone()));
        Metrics(Arc::new(Inner {
            registry,
            names,
            requests,
            latency,
            mints,
            checks,
            uploads,
            revocations,
            key_fetches,
            batch_size,
            live_credentials,
            store_errors,
            rate_limited,
        }))
    }

    /// The names of every metric family, for the documentation test.
    pub fn names(&self) -> &[String] {
        &self.0.names
    }

    /// An answered request: its route pattern, status and duration.
    pub fn request(&self, route: &str, status: u16, seconds: f64) {
        self.0
            .requests
            .with_label_values(&[route, &status.to_string()])
            .inc();
        self.0.latency.with_label_values(&[route]).observe(seconds);
    }

    /// What became of a mint, check, upload or revocation.
    pub fn outcome(&self, family: Outcomes, registry: &str, outcome: &str, code: &str) {
        let counter = match family {
            Outcomes::Mints => &self.0.mints,
            Outcomes::Checks => &self.0.checks,
            Outcomes::Uploads => &self.0.uploads,
            Outcomes::Revocations => &self.0.revocations,
        };
        counter.with_label_values(&[registry, outcome, code]).inc();
    }

    /// A fetch of an issuer's keys.
    pub fn key_fetch(&self, issuer: &str, ok: bool) {
        let result = if ok { "ok" } else { "error" };
        self.0
            .key_fetches
            .with_label_values(&[issuer, result])
            .inc();
    }

    /// A transaction of the group commit, with `mints` mints.
    pub fn mint_batch(&self, mints: usize) {
        self.0.batch_size.observe(mints as f64);
    }

    /// A database failure; `source` is `request`, `purge` or `scrape`.
    pub fn store_error(&self, source: &str) {
        self.0.store_errors.with_label_values(&[source]).inc();
    }

    /// A request refused by the limit named `limit`.
    pub fn rate_limited(&self, limit: &str) {
        self.0.rate_limited.with_label_values(&[limit]).inc();
    }

    /// Replaces the live-credential gauges with these counts per registry.
    pub fn set_live_credentials(&self, counts: &[(String, i64)]) {
        self.0.live_credentials.reset();
        for (registry, count) in counts {
            self.0
                .live_credentials
                .with_label_values(&[registry])
                .set(*count);
        }
    }

    /// Everything, in Prometheus' text format.
    pub fn render(&self) -> String {
        let mut text = Vec::new();
        TextEncoder::new()
            .encode(&self.0.registry.gather(), &mut text)
            .expect("the text encoder writes to memory");
        String::from_utf8(text).expect("the text format is UTF-8")
    }
}

/// The `Content-Type` of [`Metrics::render`].
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";
