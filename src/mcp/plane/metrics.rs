//! Counters and latency histograms of the calls this node handles, and
//! their Prometheus text.

use std::collections::BTreeMap;

use serde::Serialize;

use super::McpPlane;
use crate::core::forward::CallRecord;

/// Latency histogram bucket bounds, microseconds.
const BUCKETS_US: [u64; 12] = [
    250, 500, 1_000, 2_000, 5_000, 10_000, 25_000, 50_000, 100_000, 500_000, 1_000_000, 10_000_000,
];

/// Call metrics for the admin API (`/metrics`).
#[derive(Debug, Clone, Default, Serialize)]
pub struct CallMetrics {
    /// Calls from the local front, by outcome.
    pub front_calls: BTreeMap<&'static str, u64>,
    /// Front call latency histogram: counts per bucket of `BUCKETS_US`
    /// (cumulative in the Prometheus rendering), then the total.
    pub front_latency_buckets: Vec<u64>,
    pub front_latency_sum_us: u64,
    pub front_latency_count: u64,
    /// Calls passing through or ending here, by (from, outcome): `front`,
    /// `peer`.
    pub hop_calls: BTreeMap<String, u64>,
    /// Sum and count of this node's own share of each call, by peer the
    /// call went to (`local` for agents here), microseconds.
    pub hop_latency_sum_us: BTreeMap<String, u64>,
    pub hop_latency_count: BTreeMap<String, u64>,
    pub descriptor_fetches: u64,
    pub descriptor_fetch_failures: u64,
    pub descriptors_cached: usize,
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

    /// The metrics in the Prometheus text format.
    pub fn prometheus(&self) -> String {
        let mut s = String::new();
        s.push_str("# TYPE abgp_front_calls_total counter\n");
        for (o, n) in &self.front_calls {
            s.push_str(&format!("abgp_front_calls_total{{outcome=\"{o}\"}} {n}\n"));
        }
        s.push_str("# TYPE abgp_front_call_seconds histogram\n");
        let mut cum = 0;
        for (i, b) in BUCKETS_US.iter().enumerate() {
            cum += self.front_latency_buckets.get(i).copied().unwrap_or(0);
            s.push_str(&format!(
                "abgp_front_call_seconds_bucket{{le=\"{}\"}} {cum}\n",
                *b as f64 / 1e6
            ));
        }
        s.push_str(&format!(
            "abgp_front_call_seconds_bucket{{le=\"+Inf\"}} {}\n",
            self.front_latency_count
        ));
        s.push_str(&format!(
            "abgp_front_call_seconds_sum {}\nabgp_front_call_seconds_count {}\n",
            self.front_latency_sum_us as f64 / 1e6,
            self.front_latency_count
        ));
        s.push_str("# TYPE abgp_hop_calls_total counter\n");
        for (k, n) in &self.hop_calls {
            let (from, outcome) = k.split_once('/').unwrap_or((k, ""));
            s.push_str(&format!(
                "abgp_hop_calls_total{{from=\"{from}\",outcome=\"{outcome}\"}} {n}\n"
            ));
        }
        s.push_str("# TYPE abgp_hop_seconds summary\n");
        for (to, sum) in &self.hop_latency_sum_us {
            let n = self.hop_latency_count.get(to).copied().unwrap_or(0);
            s.push_str(&format!(
                "abgp_hop_seconds_sum{{to=\"{to}\"}} {}\nabgp_hop_seconds_count{{to=\"{to}\"}} {n}\n",
                *sum as f64 / 1e6
            ));
        }
        s.push_str(&format!(
            "# TYPE abgp_descriptor_fetches_total counter\nabgp_descriptor_fetches_total {}\nabgp_descriptor_fetch_failures_total {}\n# TYPE abgp_descriptors_cached gauge\nabgp_descriptors_cached {}\n",
            self.descriptor_fetches, self.descriptor_fetch_failures, self.descriptors_cached
        ));
        s
    }
}

impl McpPlane {
    pub fn metrics(&self) -> CallMetrics {
        let mut m = self.metrics.clone();
        m.descriptors_cached = self.cache.len() + self.item_cache.len();
        for ((peer, outcome), n) in &self.hop_calls {
            let from = if *peer { "peer" } else { "front" };
            m.hop_calls.insert(format!("{from}/{outcome}"), *n);
        }
        for (to, (sum, count)) in &self.hop_latency {
            let to = to.map_or_else(|| "local".to_string(), |n| n.short());
            m.hop_latency_sum_us.insert(to.clone(), *sum);
            m.hop_latency_count.insert(to, *count);
        }
        m
    }

    pub(super) fn finished(&mut self, r: &CallRecord) {
        *self
            .hop_calls
            .entry((r.from.is_some(), r.outcome))
            .or_default() += 1;
        if r.elapsed_us > 0 {
            let e = self.hop_latency.entry(r.to).or_default();
            e.0 += r.elapsed_us;
            e.1 += 1;
        }
        if r.from.is_some() {
            tracing::debug!(
                call = %r.call_id.short(),
                target = %r.target,
                from = %r.from.map(|n| n.short()).unwrap_or_default(),
                to = %r.to.map_or_else(|| "local".into(), |n| n.short()),
                outcome = r.outcome,
                elapsed_us = r.elapsed_us,
                retries = r.retries,
                "call passed through"
            );
        }
    }
}
