//! Prometheus metrics, registered once in the gateway's own registry and served on the admin listener.

use std::sync::OnceLock;

use prometheus::{
    Encoder, Gauge, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge, IntGaugeVec,
    Opts, Registry, TextEncoder,
};

use crate::policy::{CompiledPolicy, Decision, Reason};

/// Microsecond-scale buckets (seconds): decisions take microseconds, upstream calls milliseconds.
pub const DURATION_BUCKETS: [f64; 20] = [
    1e-6, 2.5e-6, 5e-6, 1e-5, 2.5e-5, 5e-5, 1e-4, 2.5e-4, 5e-4, 1e-3, 2.5e-3, 5e-3, 1e-2, 2.5e-2,
    5e-2, 0.1, 0.25, 0.5, 1.0, 5.0,
];

/// Every metric the gateway exports.
pub struct Metrics {
    registry: Registry,
    requests: IntCounterVec,
    /// Time spent deciding (canonicalize, route, token, decide), per request.
    pub decision_seconds: prometheus::Histogram,
    /// Time from choosing an upstream to its response header.
    pub upstream_seconds: prometheus::Histogram,
    /// Whole request time seen by the gateway.
    pub total_seconds: prometheus::Histogram,
    jwt: IntCounterVec,
    /// Verified-token cache hits.
    pub token_cache_hits: IntCounter,
    /// Verified-token cache misses.
    pub token_cache_misses: IntCounter,
    upstream_responses: IntCounterVec,
    policy_info: IntGaugeVec,
    reloads: IntCounterVec,
    bundle_polls: IntCounterVec,
    /// Unix time of the last successful (re)load.
    pub last_reload_success: Gauge,
    /// Verified tokens currently cached.
    pub token_cache_entries: IntGauge,
}

/// Counter handles for one policy: (action or none) x reason, created on first use.
pub struct RequestCounters {
    cells: Box<[OnceLock<IntCounter>]>,
    actions: Box<[Box<str>]>,
}

impl RequestCounters {
    /// Prepares handles for `policy`'s catalog.
    pub fn new(policy: &CompiledPolicy) -> Self {
        let actions: Box<[Box<str>]> = std::iter::once("none")
            .chain(policy.catalog().ids())
            .map(Into::into)
            .collect();
        let cells = (0..actions.len() * Reason::ALL.len())
            .map(|_| OnceLock::new())
            .collect();
        RequestCounters { cells, actions }
    }

    /// Counts one decision (hot path: an index and an atomic add after the first use).
    #[inline]
    pub fn count(&self, metrics: &Metrics, d: &Decision) {
        let a = d.action.map_or(0, |a| a as usize + 1);
        let i = a * Reason::ALL.len() + d.reason.index();
        if let Some(cell) = self.cells.get(i) {
            cell.get_or_init(|| {
                metrics.requests.with_label_values(&[
                    if d.allowed { "allow" } else { "deny" },
                    d.reason.as_str(),
                    &self.actions[a],
                ])
            })
            .inc();
        }
    }
}

impl Metrics {
    /// Registers every metric in a fresh registry.
    pub fn new() -> Self {
        // INVARIANT: the definitions below are static (valid names, unique, label counts match);
        // `try_new` can only fail if one of them is edited into an invalid one, which every test catches.
        Self::try_new().expect("static metric definitions are valid")
    }

    fn try_new() -> prometheus::Result<Self> {
        let registry = Registry::new();
        let durations = HistogramVec::new(
            HistogramOpts::new(
                "rolegate_request_duration_seconds",
                "Request time by stage: decision (canonicalize, route, token, decide), upstream, total",
            )
            .buckets(DURATION_BUCKETS.to_vec()),
            &["stage"],
        )
        ?;
        let m = Metrics {
            requests: IntCounterVec::new(
                Opts::new(
                    "rolegate_requests_total",
                    "Requests by decision, reason and action",
                ),
                &["decision", "reason", "action"],
            )?,
            decision_seconds: durations.with_label_values(&["decision"]),
            upstream_seconds: durations.with_label_values(&["upstream"]),
            total_seconds: durations.with_label_values(&["total"]),
            jwt: IntCounterVec::new(
                Opts::new(
                    "rolegate_jwt_verifications_total",
                    "Token signature verifications by result",
                ),
                &["result"],
            )?,
            token_cache_hits: IntCounter::new(
                "rolegate_token_cache_hits_total",
                "Verified-token cache hits",
            )?,
            token_cache_misses: IntCounter::new(
                "rolegate_token_cache_misses_total",
                "Verified-token cache misses",
            )?,
            upstream_responses: IntCounterVec::new(
                Opts::new(
                    "rolegate_upstream_responses_total",
                    "Upstream responses by status class (1xx-5xx), or error when none came",
                ),
                &["class"],
            )?,
            policy_info: IntGaugeVec::new(
                Opts::new(
                    "rolegate_policy_info",
                    "The policy revision being served (value 1)",
                ),
                &["revision"],
            )?,
            reloads: IntCounterVec::new(
                Opts::new(
                    "rolegate_policy_reloads_total",
                    "Policy (re)loads by result",
                ),
                &["result"],
            )?,
            bundle_polls: IntCounterVec::new(
                Opts::new(
                    "rolegate_policy_bundle_polls_total",
                    "Polls of policy bundle URLs by result: unchanged, changed or error",
                ),
                &["result"],
            )?,
            last_reload_success: Gauge::new(
                "rolegate_policy_last_reload_success_timestamp_seconds",
                "Unix time of the last successful policy load",
            )?,
            token_cache_entries: IntGauge::new(
                "rolegate_token_cache_entries",
                "Verified tokens in the cache",
            )?,
            registry,
        };
        let collectors: Vec<Box<dyn prometheus::core::Collector>> = vec![
            Box::new(m.requests.clone()),
            Box::new(durations),
            Box::new(m.jwt.clone()),
            Box::new(m.token_cache_hits.clone()),
            Box::new(m.token_cache_misses.clone()),
            Box::new(m.upstream_responses.clone()),
            Box::new(m.policy_info.clone()),
            Box::new(m.reloads.clone()),
            Box::new(m.bundle_polls.clone()),
            Box::new(m.last_reload_success.clone()),
            Box::new(m.token_cache_entries.clone()),
        ];
        for c in collectors {
            m.registry.register(c)?;
        }
        for result in ["success", "failure"] {
            m.reloads.with_label_values(&[result]);
        }
        Ok(m)
    }

    /// Counts a token verification by result (`valid` or a token error reason).
    pub fn jwt(&self, result: &str) {
        self.jwt.with_label_values(&[result]).inc();
    }

    /// Counts an upstream response by status class, or `error`.
    pub fn upstream_response(&self, status: Option<u16>) {
        let class = match status {
            Some(100..=199) => "1xx",
            Some(200..=299) => "2xx",
            Some(300..=399) => "3xx",
            Some(400..=499) => "4xx",
            Some(500..=599) => "5xx",
            _ => "error",
        };
        self.upstream_responses.with_label_values(&[class]).inc();
    }

    /// Marks `revision` as the one served (and no other).
    pub fn set_policy(&self, revision: &str) {
        self.policy_info.reset();
        self.policy_info.with_label_values(&[revision]).set(1);
    }

    /// Counts a reload attempt.
    pub fn reload(&self, ok: bool) {
        self.reloads
            .with_label_values(&[if ok { "success" } else { "failure" }])
            .inc();
        if ok {
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_secs_f64())
                .unwrap_or(0.0);
            self.last_reload_success.set(now);
        }
    }

    /// Counts a poll of a policy bundle URL (`unchanged`, `changed` or `error`).
    pub fn bundle_poll(&self, result: &str) {
        self.bundle_polls.with_label_values(&[result]).inc();
    }

    /// Reload attempts so far with `result` (`success` or `failure`).
    pub fn reloads(&self, ok: bool) -> u64 {
        self.reloads
            .with_label_values(&[if ok { "success" } else { "failure" }])
            .get()
    }

    /// The text exposition of every metric.
    pub fn render(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(16 * 1024);
        let _ = TextEncoder::new().encode(&self.registry.gather(), &mut out);
        out
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}
