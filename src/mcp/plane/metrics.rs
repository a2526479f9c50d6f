//! Counters and latency histograms of the calls this node handles: the
//! front's calls by outcome and latency, every hop's calls by where they
//! came from and how they ended, and each hop's own latency by where the
//! call went; and their Prometheus families (with [`super::exposition`]).

use std::collections::BTreeMap;

use serde::Serialize;

use super::McpPlane;
use super::exposition::{Exposition, Kind};
use crate::core::forward::{CallRecord, Micros};
use crate::core::ids::NodeId;

/// Latency histogram bucket bounds, microseconds.
pub const BUCKETS_US: [u64; 12] = [
    250, 500, 1_000, 2_000, 5_000, 10_000, 25_000, 50_000, 100_000, 500_000, 1_000_000, 10_000_000,
];

/// A latency histogram over [`BUCKETS_US`]: a count per bucket (not
/// cumulative; the last one is past the largest bound), the sum and the
/// count.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Histogram {
    pub buckets: [u64; BUCKETS_US.len() + 1],
    pub sum_us: u64,
    pub count: u64,
}

impl Default for Histogram {
    fn default() -> Self {
        Histogram {
            buckets: [0; BUCKETS_US.len() + 1],
            sum_us: 0,
            count: 0,
        }
    }
}

impl Histogram {
    pub fn observe(&mut self, us: u64) {
        let i = BUCKETS_US
            .iter()
            .position(|b| us <= *b)
            .unwrap_or(BUCKETS_US.len());
        self.buckets[i] += 1;
        self.sum_us = self.sum_us.saturating_add(us);
        self.count += 1;
    }
}

/// Call metrics for the admin API (`/v1/mcp` and `/metrics`).
#[derive(Debug, Clone, Default, Serialize)]
pub struct CallMetrics {
    /// Calls from the local front, by outcome.
    pub front_calls: BTreeMap<&'static str, u64>,
    /// Front call latency histogram: counts per bucket of `BUCKETS_US`
    /// (cumulative in the Prometheus rendering), then the total.
    pub front_latency_buckets: Vec<u64>,
    pub front_latency_sum_us: u64,
    pub front_latency_count: u64,
    /// Calls that ended at this hop (made here, passing through, run
    /// here), by where they came from, operation and outcome.
    pub hop_calls: Vec<HopCalls>,
    /// Their time at and beyond this hop, by next hop and operation (calls
    /// that went somewhere: refused ones have no latency).
    pub hop_latency: Vec<HopLatency>,
    pub descriptor_fetches: u64,
    pub descriptor_fetch_failures: u64,
    pub descriptors_cached: usize,
}

/// Calls that ended at this hop, for one (from, op, outcome).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct HopCalls {
    /// `front` or `peer`.
    pub from: &'static str,
    /// The MCP method (`tools/call`, ...; `describe` for descriptor fetches).
    pub op: &'static str,
    pub outcome: &'static str,
    pub count: u64,
}

/// The latency of calls at this hop, for one (next hop, op).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct HopLatency {
    /// The peer id the calls went to, or `local` for an agent here.
    pub next_hop: String,
    pub op: &'static str,
    pub latency: Histogram,
}

impl CallMetrics {
    pub(super) fn observe_front(&mut self, outcome: &'static str, us: u64) {
        *self.front_calls.entry(outcome).or_default() += 1;
        if self.front_latency_buckets.len() != BUCKETS_US.len() + 1 {
            self.front_latency_buckets = vec![0; BUCKETS_US.len() + 1];
        }
        let i = BUCKETS_US
            .iter()
            .position(|b| us <= *b)
            .unwrap_or(BUCKETS_US.len());
        self.front_latency_buckets[i] += 1;
        self.front_latency_sum_us += us;
        self.front_latency_count += 1;
    }

    /// The front's latency as a [`Histogram`].
    pub fn front_latency(&self) -> Histogram {
        let mut h = Histogram {
            sum_us: self.front_latency_sum_us,
            count: self.front_latency_count,
            ..Default::default()
        };
        for (b, n) in h.buckets.iter_mut().zip(&self.front_latency_buckets) {
            *b = *n;
        }
        h
    }

    /// The call families alone in the Prometheus text format (the node's
    /// `/metrics` has them with the rest).
    pub fn prometheus(&self) -> String {
        let mut e = Exposition::new();
        self.write_to(&mut e);
        e.finish()
    }

    /// The call families: front calls by outcome and latency, every hop's
    /// calls by origin and outcome, each hop's latency by next hop, and the
    /// descriptor cache.
    pub fn write_to(&self, e: &mut Exposition) {
        let m = self;
        e.family(
            "abgp_front_calls_total",
            Kind::Counter,
            "Calls made through this node's MCP front, by outcome (ok or the error kind).",
        );
        for (o, n) in &m.front_calls {
            e.sample("abgp_front_calls_total", &[("outcome", o)], *n as f64);
        }
        e.family(
            "abgp_front_call_seconds",
            Kind::Histogram,
            "Latency of calls made through the MCP front, end to end.",
        );
        e.histogram("abgp_front_call_seconds", &[], &m.front_latency());
        e.family(
            "abgp_hop_calls_total",
            Kind::Counter,
            "Calls that ended at this hop (made here, passing through, or run here), by where they came from (front or peer), MCP operation (describe: a node's descriptor fetch) and outcome.",
        );
        for h in &m.hop_calls {
            e.sample(
                "abgp_hop_calls_total",
                &[("from", h.from), ("op", h.op), ("outcome", h.outcome)],
                h.count as f64,
            );
        }
        e.family(
            "abgp_hop_call_seconds",
            Kind::Histogram,
            "Time a call spent at and beyond this hop, by next hop (a peer id, or local for an agent here) and MCP operation.",
        );
        for h in &m.hop_latency {
            e.histogram(
                "abgp_hop_call_seconds",
                &[("next_hop", &h.next_hop), ("op", h.op)],
                &h.latency,
            );
        }
        e.single(
            "abgp_descriptor_fetches_total",
            Kind::Counter,
            "DESCRIBE calls made for descriptors of remote tools and items.",
            m.descriptor_fetches as f64,
        );
        e.single(
            "abgp_descriptor_fetch_failures_total",
            Kind::Counter,
            "DESCRIBE calls that failed or answered a descriptor of the wrong hash.",
            m.descriptor_fetch_failures as f64,
        );
        e.single(
            "abgp_descriptors_cached",
            Kind::Gauge,
            "Descriptors in the cache.",
            m.descriptors_cached as f64,
        );
    }
}

/// The label of a next hop in call metrics: its peer id, `local` for an
/// agent on this node.
pub fn hop_label(to: Option<&NodeId>) -> String {
    to.map_or_else(
        || "local".to_string(),
        |n| crate::identity::peer_id_of(n).to_string(),
    )
}

impl McpPlane {
    pub fn metrics(&self) -> CallMetrics {
        let mut m = self.metrics.clone();
        m.descriptors_cached = self.cache.len() + self.item_cache.len();
        m.hop_calls = self
            .hop_calls
            .iter()
            .map(|((peer, op, outcome), n)| HopCalls {
                from: if *peer { "peer" } else { "front" },
                op: op.method(),
                outcome,
                count: *n,
            })
            .collect();
        m.hop_calls.sort_by_key(|h| (h.from, h.op, h.outcome));
        m.hop_latency = self
            .hop_latency
            .iter()
            .map(|((to, op), h)| HopLatency {
                next_hop: hop_label(to.as_ref()),
                op: op.method(),
                latency: h.clone(),
            })
            .collect();
        m.hop_latency
            .sort_by(|a, b| (&a.next_hop, a.op).cmp(&(&b.next_hop, b.op)));
        m
    }

    /// A call ended at this hop: counted, logged with its trace id, and
    /// kept among the recent calls.
    pub(super) fn finished(&mut self, now: Micros, r: crate::core::forward::CallRecord) {
        *self
            .hop_calls
            .entry((r.from.is_some(), r.op, r.outcome))
            .or_default() += 1;
        // A call that went somewhere (a next hop or an agent here); one
        // refused on arrival has no latency of its own.
        if r.to.is_some() || r.agent.is_some() {
            self.hop_latency
                .entry((r.to, r.op))
                .or_default()
                .observe(r.elapsed_us);
        }
        log_finished(&r);
        self.recent.push(now, r);
    }
}

fn log_finished(r: &CallRecord) {
    if !tracing::enabled!(tracing::Level::DEBUG) {
        return;
    }
    tracing::debug!(
        call = %r.call_id.short(),
        trace_id = %r.trace.trace_id_hex(),
        span_id = %hex::encode(r.trace.span_id),
        target = %r.target,
        from = %r.from.map_or_else(|| "front".into(), |n| n.short()),
        to = %r.to.map_or_else(|| "local".into(), |n| n.short()),
        outcome = r.outcome,
        elapsed_us = r.elapsed_us,
        retries = r.retries,
        "call finished at this hop"
    );
}
