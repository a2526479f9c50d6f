//! Forwarder settings, built with documented defaults and `with_*`.

use super::balance::BalanceRules;
use super::quota::QuotaConfig;
use crate::core::ids::{Asn, Millis, NodeId};

/// Forwarder settings. Defaults: answers held up to 1 s, 10,000 calls in
/// flight, deadlines capped at one hour from arrival, 100,000 remembered
/// call ids against replays, 5 minutes of clock skew, multipath balancing
/// only for front calls that ask for it, calls to other ASes sealed.
#[derive(Debug, Clone)]
pub struct ForwardConfig {
    pub(super) node: NodeId,
    pub(super) asn: Asn,
    pub(super) ack_hold_us: u64,
    pub(super) max_calls: usize,
    pub(super) quotas: QuotaConfig,
    pub(super) max_call_ms: u64,
    pub(super) replay_window: usize,
    pub(super) balance_transit: bool,
    pub(super) seed: u64,
    pub(super) balance: BalanceRules,
    pub(super) started: Millis,
    pub(super) clock_skew_ms: u64,
    pub(super) seal: super::routes::SealMode,
}

impl ForwardConfig {
    pub fn new(node: NodeId, asn: Asn) -> Self {
        ForwardConfig {
            node,
            asn,
            ack_hold_us: 1_000_000,
            max_calls: 10_000,
            quotas: QuotaConfig::for_max_calls(10_000),
            max_call_ms: 3_600_000,
            replay_window: 100_000,
            balance_transit: false,
            seed: 0,
            balance: BalanceRules::default(),
            started: Millis(0),
            clock_skew_ms: 300_000,
            seal: super::routes::SealMode::External,
        }
    }

    /// How long a CALL's answer waits for the result before it is
    /// answered `Accepted` (0: at once). Must stay well below the
    /// transport's request timeout.
    pub fn with_ack_hold(mut self, d: std::time::Duration) -> Self {
        self.ack_hold_us = u64::try_from(d.as_micros()).unwrap_or(u64::MAX);
        self
    }

    /// Calls in flight at this hop before new ones are refused
    /// `Overloaded`; resets the quotas to their defaults for that size
    /// ([`quota`](super::quota)).
    pub fn with_max_calls(mut self, n: usize) -> Self {
        self.max_calls = n.max(1);
        self.quotas = QuotaConfig::for_max_calls(self.max_calls);
        self
    }

    /// The front's reserve, per-peer and per-caller shares and the
    /// per-peer rate ([`quota`](super::quota)); `max_calls` is taken from `q`.
    pub fn with_quotas(mut self, q: QuotaConfig) -> Self {
        self.max_calls = q.max_calls.max(1);
        self.quotas = q;
        self
    }

    /// The longest this hop waits for any call, whatever its deadline says.
    pub fn with_max_call_duration(mut self, d: std::time::Duration) -> Self {
        self.max_call_ms = u64::try_from(d.as_millis()).unwrap_or(u64::MAX).max(1);
        self
    }

    /// Spread transit calls over equal paths (by call id), not only front
    /// calls that ask for it.
    pub fn with_transit_balancing(mut self, on: bool) -> Self {
        self.balance_transit = on;
        self
    }

    /// When this node started: a non-idempotent CALL issued before is
    /// refused at the origin ([`replay`](super::replay)). Default 0 (the
    /// node sets it; tests that restart nothing need not).
    pub fn with_started(mut self, t: Millis) -> Self {
        self.started = t;
        self
    }

    /// How far a caller's clock may be ahead of ours, and how much older
    /// than the longest call a CALL may be (5 min; the trust store's).
    pub fn with_clock_skew(mut self, d: std::time::Duration) -> Self {
        self.clock_skew_ms = u64::try_from(d.as_millis()).unwrap_or(u64::MAX);
        self
    }

    /// Seeds leg ids, so a restarted node does not reuse its last run's,
    /// and the balancer's RNG ([`balance`](super::balance)).
    pub fn with_seed(mut self, seed: u64) -> Self {
        self.seed = seed;
        self
    }

    /// What this node seals when it calls (default: calls to other ASes;
    /// nothing happens without a [`PayloadSealer`](super::PayloadSealer)).
    pub fn with_seal(mut self, mode: super::routes::SealMode) -> Self {
        self.seal = mode;
        self
    }

    /// The load-balancing rules (`[[balance]]`; none: calls are balanced
    /// only when they ask, by call id).
    pub fn with_balance(mut self, rules: BalanceRules) -> Self {
        self.balance = rules;
        self
    }

    pub fn balance(&self) -> &BalanceRules {
        &self.balance
    }

    pub fn node(&self) -> NodeId {
        self.node
    }

    pub fn asn(&self) -> Asn {
        self.asn
    }
}
