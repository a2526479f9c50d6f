//! The node's Prometheus text exposition (`GET /metrics`, text format
//! 0.0.4): a small writer that gets the format right (`# HELP` and
//! `# TYPE` once per family, escaped help text and label values, counters
//! named `_total`, histograms with cumulative buckets, `+Inf`, `_sum` and
//! `_count`), and the node's families written from a [`MetricsSnapshot`]
//! the node task takes (no locks; the engine and the plane are only read).
//!
//! The families, their types and labels are listed in docs/operations.md.
//! Label values are bounded: `peer` is one of the node's peers (configured
//! neighbours plus at most `discovery.max_auto_peers` discovered ones),
//! `next_hop` one of those or `local`, `state`, `rib`, `type`,
//! `direction`, `from` and `outcome` come from fixed lists, and `reason`
//! from the fixed list of route verification failures.

use std::fmt::Write as _;

use crate::admin::views::VerifyView;
use crate::core::engine::{EngineStats, MessageCounts, PeerState, RibCounts};
use crate::core::forward::ForwardStats;
use crate::mcp::plane::{BUCKETS_US, CallMetrics, Histogram};

/// The content type of the exposition.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// A metric family's type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Counter,
    Gauge,
    Histogram,
}

impl Kind {
    fn name(self) -> &'static str {
        match self {
            Kind::Counter => "counter",
            Kind::Gauge => "gauge",
            Kind::Histogram => "histogram",
        }
    }
}

/// Writes the text format. Families are written whole, one after another.
#[derive(Debug, Default)]
pub struct Exposition {
    out: String,
}

/// A label value as the text format wants it: backslash, double quote and
/// line feed escaped.
pub fn escape_label(v: &str) -> String {
    let mut s = String::with_capacity(v.len());
    for c in v.chars() {
        match c {
            '\\' => s.push_str("\\\\"),
            '"' => s.push_str("\\\""),
            '\n' => s.push_str("\\n"),
            c => s.push(c),
        }
    }
    s
}

/// Help text: backslash and line feed escaped.
fn escape_help(v: &str) -> String {
    v.replace('\\', "\\\\").replace('\n', "\\n")
}

/// A sample value: integers as integers, `+Inf`, `-Inf` and `NaN` as the
/// format spells them.
fn value(v: f64) -> String {
    if v.is_nan() {
        "NaN".into()
    } else if v.is_infinite() {
        if v > 0.0 { "+Inf" } else { "-Inf" }.into()
    } else if v.fract() == 0.0 && v.abs() < 9.0e15 {
        format!("{}", v as i64)
    } else {
        format!("{v}")
    }
}

impl Exposition {
    pub fn new() -> Self {
        Exposition::default()
    }

    /// Starts a family: its `# HELP` and `# TYPE` lines. A counter's name
    /// ends in `_total`.
    pub fn family(&mut self, name: &str, kind: Kind, help: &str) {
        debug_assert!(kind != Kind::Counter || name.ends_with("_total"), "{name}");
        let _ = writeln!(self.out, "# HELP {name} {}", escape_help(help));
        let _ = writeln!(self.out, "# TYPE {name} {}", kind.name());
    }

    /// One sample of the current family.
    pub fn sample(&mut self, name: &str, labels: &[(&str, &str)], v: f64) {
        self.out.push_str(name);
        self.labels(labels, None);
        self.out.push(' ');
        self.out.push_str(&value(v));
        self.out.push('\n');
    }

    fn labels(&mut self, labels: &[(&str, &str)], le: Option<&str>) {
        if labels.is_empty() && le.is_none() {
            return;
        }
        self.out.push('{');
        let mut first = true;
        for (k, v) in labels.iter().copied().chain(le.map(|le| ("le", le))) {
            if !first {
                self.out.push(',');
            }
            first = false;
            let _ = write!(self.out, "{k}=\"{}\"", escape_label(v));
        }
        self.out.push('}');
    }

    /// A family with one unlabelled sample.
    pub fn single(&mut self, name: &str, kind: Kind, help: &str, v: f64) {
        self.family(name, kind, help);
        self.sample(name, &[], v);
    }

    /// One histogram of the current family: cumulative `_bucket`s over
    /// [`BUCKETS_US`] (in seconds) and `+Inf`, `_sum` (seconds), `_count`.
    pub fn histogram(&mut self, name: &str, labels: &[(&str, &str)], h: &Histogram) {
        let mut cum = 0u64;
        let bucket = format!("{name}_bucket");
        for (i, b) in BUCKETS_US.iter().enumerate() {
            cum += h.buckets.get(i).copied().unwrap_or(0);
            let le = value(*b as f64 / 1e6);
            self.out.push_str(&bucket);
            self.labels(labels, Some(&le));
            let _ = writeln!(self.out, " {cum}");
        }
        self.out.push_str(&bucket);
        self.labels(labels, Some("+Inf"));
        let _ = writeln!(self.out, " {}", h.count);
        self.sample(&format!("{name}_sum"), labels, h.sum_us as f64 / 1e6);
        self.sample(&format!("{name}_count"), labels, h.count as f64);
    }

    pub fn finish(self) -> String {
        self.out
    }
}

/// One peer's share of the metrics.
#[derive(Debug, Clone)]
pub struct PeerMetrics {
    /// Its peer id (base58), the `peer` label.
    pub peer: String,
    pub state: PeerState,
    pub routes: RibCounts,
    pub messages: MessageCounts,
}

/// What `/metrics` shows, taken by the node task in one go.
#[derive(Debug, Clone)]
pub struct MetricsSnapshot {
    pub asn: u32,
    pub peer_id: String,
    pub uptime_ms: u64,
    pub loc_rib_routes: usize,
    pub peers: Vec<PeerMetrics>,
    pub engine: EngineStats,
    pub verify: VerifyView,
    pub calls: CallMetrics,
    pub forwarder: ForwardStats,
    pub calls_in_flight: usize,
    pub recent_calls: usize,
}

fn state_label(s: PeerState) -> &'static str {
    match s {
        PeerState::Idle => "idle",
        PeerState::Connecting => "connecting",
        PeerState::OpenSent => "open_sent",
        PeerState::OpenConfirm => "open_confirm",
        PeerState::Established => "established",
    }
}

const STATES: [PeerState; 5] = [
    PeerState::Idle,
    PeerState::Connecting,
    PeerState::OpenSent,
    PeerState::OpenConfirm,
    PeerState::Established,
];

/// The whole exposition.
pub fn render(m: &MetricsSnapshot) -> String {
    let mut e = Exposition::new();
    e.family(
        "abgp_node_info",
        Kind::Gauge,
        "This node: its peer id and ASN (value 1).",
    );
    let asn = m.asn.to_string();
    e.sample(
        "abgp_node_info",
        &[("peer_id", &m.peer_id), ("asn", &asn)],
        1.0,
    );
    e.single(
        "abgp_uptime_seconds",
        Kind::Gauge,
        "Seconds since the node started.",
        m.uptime_ms as f64 / 1000.0,
    );
    write_sessions(&mut e, m);
    write_routes(&mut e, m);
    write_updates(&mut e, &m.engine);
    write_verify(&mut e, &m.verify);
    write_calls(&mut e, &m.calls);
    write_forwarder(&mut e, m);
    write_messages(&mut e, m);
    e.finish()
}

fn write_sessions(e: &mut Exposition, m: &MetricsSnapshot) {
    e.family("abgp_sessions", Kind::Gauge, "Peers by session state.");
    for s in STATES {
        let n = m.peers.iter().filter(|p| p.state == s).count();
        e.sample("abgp_sessions", &[("state", state_label(s))], n as f64);
    }
}

fn write_routes(e: &mut Exposition, m: &MetricsSnapshot) {
    let total = |f: fn(&RibCounts) -> usize| m.peers.iter().map(|p| f(&p.routes)).sum::<usize>();
    e.family(
        "abgp_routes",
        Kind::Gauge,
        "Routes per RIB: the Loc-RIB, and the Adj-RIBs-In (before and after import policy) and Adj-RIBs-Out summed over peers.",
    );
    for (rib, n) in [
        ("loc_rib", m.loc_rib_routes),
        ("adj_rib_in_pre", total(|r| r.adj_in_pre)),
        ("adj_rib_in_post", total(|r| r.adj_in_post)),
        ("adj_rib_out", total(|r| r.adj_out)),
    ] {
        e.sample("abgp_routes", &[("rib", rib)], n as f64);
    }
    e.family(
        "abgp_peer_routes",
        Kind::Gauge,
        "Routes per peer and RIB (Adj-RIB-In before and after import policy, Adj-RIB-Out).",
    );
    for p in &m.peers {
        for (rib, n) in [
            ("adj_rib_in_pre", p.routes.adj_in_pre),
            ("adj_rib_in_post", p.routes.adj_in_post),
            ("adj_rib_out", p.routes.adj_out),
        ] {
            e.sample(
                "abgp_peer_routes",
                &[("peer", &p.peer), ("rib", rib)],
                n as f64,
            );
        }
    }
}

fn write_updates(e: &mut Exposition, s: &EngineStats) {
    let counters: [(&str, &str, u64); 10] = [
        (
            "abgp_updates_received_total",
            "UPDATE messages received.",
            s.updates_in,
        ),
        (
            "abgp_updates_sent_total",
            "UPDATE messages sent.",
            s.updates_out,
        ),
        (
            "abgp_route_announcements_received_total",
            "Routes announced to this node.",
            s.routes_in,
        ),
        (
            "abgp_route_announcements_sent_total",
            "Routes this node announced.",
            s.routes_out,
        ),
        (
            "abgp_route_withdrawals_received_total",
            "Routes withdrawn by peers.",
            s.withdrawals_in,
        ),
        (
            "abgp_route_withdrawals_sent_total",
            "Routes this node withdrew.",
            s.withdrawals_out,
        ),
        (
            "abgp_routes_rejected_total",
            "Received routes refused by import checks or policy.",
            s.routes_rejected,
        ),
        (
            "abgp_decision_runs_total",
            "Runs of the decision process (one per prefix whose paths changed).",
            s.decision_runs,
        ),
        (
            "abgp_best_path_changes_total",
            "Decision runs that changed a prefix's best path.",
            s.best_changes,
        ),
        (
            "abgp_route_refresh_deferred_total",
            "ROUTE-REFRESH requests merged into a later answer.",
            s.route_refresh_deferred,
        ),
    ];
    for (name, help, v) in counters {
        e.single(name, Kind::Counter, help, v as f64);
    }
}

fn write_verify(e: &mut Exposition, v: &VerifyView) {
    e.family(
        "abgp_route_verifications_total",
        Kind::Counter,
        "Received routes whose signatures (origin attestation, path signatures, certificates) were checked, by result.",
    );
    e.sample(
        "abgp_route_verifications_total",
        &[("result", "ok")],
        v.routes_ok as f64,
    );
    e.sample(
        "abgp_route_verifications_total",
        &[("result", "failed")],
        v.routes_dropped as f64,
    );
    e.family(
        "abgp_route_verification_failures_total",
        Kind::Counter,
        "Received routes dropped because a signature check failed, by reason.",
    );
    for (reason, n) in &v.dropped_by_reason {
        e.sample(
            "abgp_route_verification_failures_total",
            &[("reason", reason)],
            *n as f64,
        );
    }
    e.single(
        "abgp_opens_refused_total",
        Kind::Counter,
        "OPEN messages refused for their certificate or ASN binding.",
        v.opens_refused as f64,
    );
    e.single(
        "abgp_signature_checks_off_task_total",
        Kind::Counter,
        "Signature checks the cache could not answer, run off the node task.",
        v.checks_off_task as f64,
    );
}

/// The call families: front calls by outcome and latency, every hop's
/// calls by origin and outcome, each hop's latency by next hop, and the
/// descriptor cache.
pub fn write_calls(e: &mut Exposition, m: &CallMetrics) {
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

fn write_forwarder(e: &mut Exposition, m: &MetricsSnapshot) {
    let f = &m.forwarder;
    e.single(
        "abgp_calls_in_flight",
        Kind::Gauge,
        "Calls in this hop's call table.",
        m.calls_in_flight as f64,
    );
    e.single(
        "abgp_recent_calls",
        Kind::Gauge,
        "Finished calls kept for GET /v1/calls/recent.",
        m.recent_calls as f64,
    );
    e.family(
        "abgp_forwarder_calls_total",
        Kind::Counter,
        "What this hop did with calls: taken from the front or peers, forwarded, delivered to an agent here, refused, denied by access policy, retried on another path, timed out, cancelled.",
    );
    for (event, n) in [
        ("from_front", f.from_front),
        ("from_peer", f.from_peers),
        ("forwarded", f.forwarded),
        ("delivered", f.delivered),
        ("refused", f.refused),
        ("denied", f.denied),
        ("retried", f.retries),
        ("timed_out", f.timeouts),
        ("cancelled", f.cancelled),
    ] {
        e.sample("abgp_forwarder_calls_total", &[("event", event)], n as f64);
    }
}

fn write_messages(e: &mut Exposition, m: &MetricsSnapshot) {
    e.family(
        "abgp_peer_messages_total",
        Kind::Counter,
        "Routing messages exchanged with each peer, by direction and type.",
    );
    for p in &m.peers {
        for (direction, counts) in [("in", &p.messages.received), ("out", &p.messages.sent)] {
            for (ty, n) in MessageCounts::KINDS.iter().zip(counts) {
                e.sample(
                    "abgp_peer_messages_total",
                    &[("peer", &p.peer), ("direction", direction), ("type", ty)],
                    *n as f64,
                );
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn label_values_and_help_are_escaped() {
        assert_eq!(escape_label(r#"a"b\c"#), r#"a\"b\\c"#);
        assert_eq!(escape_label("x\ny"), "x\\ny");
        let mut e = Exposition::new();
        e.family("t_total", Kind::Counter, "two\nlines \\ here");
        e.sample("t_total", &[("k", "v\"")], 3.0);
        let t = e.finish();
        assert_eq!(
            t,
            "# HELP t_total two\\nlines \\\\ here\n# TYPE t_total counter\nt_total{k=\"v\\\"\"} 3\n"
        );
    }

    #[test]
    fn histograms_are_cumulative_and_end_with_inf_sum_and_count() {
        let mut h = Histogram::default();
        h.observe(100);
        h.observe(300);
        h.observe(20_000_000);
        let mut e = Exposition::new();
        e.family("h_seconds", Kind::Histogram, "h");
        e.histogram("h_seconds", &[("next_hop", "local")], &h);
        let t = e.finish();
        assert!(
            t.contains("h_seconds_bucket{next_hop=\"local\",le=\"0.00025\"} 1\n"),
            "{t}"
        );
        assert!(t.contains("h_seconds_bucket{next_hop=\"local\",le=\"0.0005\"} 2\n"));
        assert!(t.contains("h_seconds_bucket{next_hop=\"local\",le=\"10\"} 2\n"));
        assert!(t.contains("h_seconds_bucket{next_hop=\"local\",le=\"+Inf\"} 3\n"));
        assert!(t.contains("h_seconds_sum{next_hop=\"local\"} 20.0004\n"));
        assert!(t.contains("h_seconds_count{next_hop=\"local\"} 3\n"));
    }

    #[test]
    fn values_are_written_as_the_format_spells_them() {
        assert_eq!(value(3.0), "3");
        assert_eq!(value(0.5), "0.5");
        assert_eq!(value(f64::INFINITY), "+Inf");
        assert_eq!(value(f64::NAN), "NaN");
    }
}
