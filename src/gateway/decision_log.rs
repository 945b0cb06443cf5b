//! The decision log: one JSON line per decision through `tracing`, sampled, never with the token.

use std::time::Duration;

use crate::config::DecisionLogSettings;
use crate::policy::{CompiledPolicy, Decision, Principal};

/// The levels `gateway.decision_log.level` may name.
pub const LEVELS: [&str; 5] = ["error", "warn", "info", "debug", "trace"];

/// The fields of one decision line.
pub struct Line<'a> {
    /// Log settings of the runtime that decided.
    pub settings: &'a DecisionLogSettings,
    /// Request id.
    pub request_id: &'a str,
    /// Method.
    pub method: &'a str,
    /// Canonical path (empty when the path had none).
    pub path: &'a str,
    /// The policy that decided.
    pub policy: &'a CompiledPolicy,
    /// The decision.
    pub decision: &'a Decision,
    /// The caller, when a token was verified.
    pub principal: Option<&'a Principal>,
    /// Time to decide.
    pub decided_in: Duration,
    /// Whole request time.
    pub total: Duration,
    /// Upstream status, if forwarded.
    pub upstream_status: Option<u16>,
    /// The status the client received (the gateway's own 502 or 504 when the upstream failed).
    pub response_status: Option<u16>,
}

/// Emits the line if enabled and sampled in.
pub fn emit(l: &Line) {
    let s = l.settings;
    if !s.enabled {
        return;
    }
    let rate = if l.decision.allowed {
        s.allow_sample
    } else {
        s.deny_sample
    };
    if rate <= 0.0 || (rate < 1.0 && rand::random::<f64>() >= rate) {
        return;
    }
    let d = l.decision;
    let route = d
        .route
        .map(|r| &*l.policy.routes().entry(r).template)
        .unwrap_or("");
    let action = d.action.map(|a| l.policy.catalog().id(a)).unwrap_or("");
    let role = d.role.map(|r| l.policy.roles().name(r)).unwrap_or("");
    let tenant = l.principal.and_then(|p| p.tenant.as_deref()).unwrap_or("");
    let sub = l.principal.map(|p| p.subject.as_str()).unwrap_or("");
    let roles = l.principal.map(|p| p.roles.join(",")).unwrap_or_default();
    let decision = if d.allowed { "allow" } else { "deny" };
    macro_rules! line {
        ($lvl:ident) => {
            tracing::$lvl!(
                target: "rolegate::decision",
                request_id = l.request_id,
                method = l.method,
                path = l.path,
                route,
                action,
                tenant,
                sub,
                roles = roles.as_str(),
                role,
                decision,
                status = d.status,
                reason = d.reason.as_str(),
                revision = l.policy.short_revision(),
                decision_us = l.decided_in.as_micros() as u64,
                total_us = l.total.as_micros() as u64,
                upstream_status = l.upstream_status,
                response_status = l.response_status,
                "decision"
            )
        };
    }
    match s.level.as_str() {
        "error" => line!(error),
        "warn" => line!(warn),
        "debug" => line!(debug),
        "trace" => line!(trace),
        _ => line!(info),
    }
}
