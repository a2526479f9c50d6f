//! The node's Prometheus text exposition (`GET /metrics`, text format
//! 0.0.4): the node's families written from a [`MetricsSnapshot`] the node
//! task takes (no locks; the engine and the plane are only read), with
//! the writer of [`crate::mcp::plane::Exposition`] (the call families are
//! the plane's own, [`CallMetrics::write_to`]).
//!
//! The families, their types and labels are listed in docs/operations.md.
//! Label values are bounded: `peer` is one of the node's peers (configured
//! neighbours plus at most `discovery.max_auto_peers` discovered ones),
//! `next_hop` one of those or `local`, `state`, `rib`, `type`,
//! `direction`, `from` and `outcome` come from fixed lists, and `reason`
//! from the fixed list of route verification failures.

use crate::admin::views::VerifyView;
use crate::core::engine::{EngineStats, MessageCounts, PeerState, RibCounts};
use crate::core::forward::ForwardStats;
use crate::mcp::plane::CallMetrics;
pub use crate::mcp::plane::{Exposition, Kind, escape_label};

/// The content type of the exposition.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

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
    /// Health as MED of the hosted agents (empty when off).
    pub health: Vec<crate::core::health::HealthReport>,
    /// Reachability, relay reservations, hole punches, the relay served.
    pub nat: crate::net::nat::NatView,
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
    m.calls.write_to(&mut e);
    write_forwarder(&mut e, m);
    write_messages(&mut e, m);
    write_health(&mut e, &m.health);
    write_nat(&mut e, &m.nat);
    e.finish()
}

fn write_nat(e: &mut Exposition, n: &crate::net::nat::NatView) {
    use crate::net::nat::Reachability;
    e.family(
        "abgp_nat_reachability",
        Kind::Gauge,
        "What AutoNAT found: 1 for the current state, 0 for the others.",
    );
    for (label, r) in [
        ("public", Reachability::Public),
        ("private", Reachability::Private),
        ("unknown", Reachability::Unknown),
    ] {
        let v = if n.reachability == r { 1.0 } else { 0.0 };
        e.sample("abgp_nat_reachability", &[("state", label)], v);
    }
    let held = n
        .relays
        .iter()
        .filter(|r| r.state == crate::net::nat::RelayState::Reserved)
        .count();
    e.single(
        "abgp_relay_reservations_held",
        Kind::Gauge,
        "Relays this node holds a reservation on.",
        held as f64,
    );
    let s = &n.stats;
    e.family(
        "abgp_hole_punches_total",
        Kind::Counter,
        "Hole punches (DCUtR) from a relayed connection, by result.",
    );
    e.sample(
        "abgp_hole_punches_total",
        &[("result", "ok")],
        s.punches_ok as f64,
    );
    e.sample(
        "abgp_hole_punches_total",
        &[("result", "failed")],
        s.punches_failed as f64,
    );
    e.family(
        "abgp_relay_circuits_total",
        Kind::Counter,
        "Circuits this node relayed for others, by outcome.",
    );
    for (label, v) in [
        ("accepted", s.relay_circuits_accepted),
        ("denied", s.relay_circuits_denied),
        ("closed", s.relay_circuits_closed),
    ] {
        e.sample("abgp_relay_circuits_total", &[("outcome", label)], v as f64);
    }
    e.single(
        "abgp_relay_circuits_active",
        Kind::Gauge,
        "Circuits this node relays now.",
        s.relay_circuits_active as f64,
    );
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
    let counters: [(&str, &str, u64); 11] = [
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
            "abgp_route_leaks_total",
            "Received routes found to be route leaks by the only-to-customer rules (RFC 9234).",
            s.route_leaks,
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
        "abgp_asn_key_conflicts_total",
        Kind::Counter,
        "OPENs refused because another key already holds the derived ASN they claim (a collision or a ground key).",
        v.asn_key_conflicts as f64,
    );
    e.family(
        "abgp_route_origin_validation_total",
        Kind::Counter,
        "Received routes by origin validity against the origin authorisations (only where some exist).",
    );
    for (state, n) in [
        ("valid", v.origins_valid),
        ("invalid", v.origins_invalid),
        ("not_found", v.origins_not_found),
    ] {
        e.sample(
            "abgp_route_origin_validation_total",
            &[("state", state)],
            n as f64,
        );
    }
    e.single(
        "abgp_route_origin_invalid_rejected_total",
        Kind::Counter,
        "Routes treated as withdrawn because no authorisation allows their origin ASN.",
        v.origins_rejected as f64,
    );
    e.single(
        "abgp_known_asns",
        Kind::Gauge,
        "Derived ASNs whose first-seen key this node has recorded.",
        v.known_asns as f64,
    );
    e.single(
        "abgp_signature_checks_off_task_total",
        Kind::Counter,
        "Signature checks the cache could not answer, run off the node task.",
        v.checks_off_task as f64,
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

/// Health as MED: one series per hosted agent (the `agent` label is one of
/// the node's configured or added agents).
fn write_health(e: &mut Exposition, agents: &[crate::core::health::HealthReport]) {
    type Get = fn(&crate::core::health::HealthReport) -> Option<f64>;
    let gauges: [(&str, &str, Get); 5] = [
        (
            "abgp_agent_latency_seconds",
            "Smoothed latency of the agent's calls (EWMA), seconds; absent when none recently.",
            |r| r.call_latency_ms.map(|ms| ms / 1000.0),
        ),
        (
            "abgp_agent_probe_seconds",
            "Smoothed round trip of the agent's probes (EWMA), seconds.",
            |r| r.probe_latency_ms.map(|ms| ms / 1000.0),
        ),
        (
            "abgp_agent_success_ratio",
            "Smoothed success rate of the agent's calls and probes (EWMA), 0 to 1.",
            |r| Some(r.success_rate),
        ),
        (
            "abgp_agent_calls_in_flight",
            "Calls running or queued on the agent.",
            |r| Some(r.in_flight as f64),
        ),
        (
            "abgp_agent_med_computed",
            "The MED the agent's health gives now.",
            |r| Some(f64::from(r.computed_med)),
        ),
    ];
    for (name, help, get) in gauges {
        e.family(name, Kind::Gauge, help);
        for r in agents {
            if let Some(v) = get(r) {
                e.sample(name, &[("agent", r.agent.as_str())], v);
            }
        }
    }
    e.family(
        "abgp_agent_med_advertised",
        Kind::Gauge,
        "The MED the agent's routes carry.",
    );
    for r in agents {
        let v = f64::from(r.advertised_med);
        e.sample(
            "abgp_agent_med_advertised",
            &[("agent", r.agent.as_str())],
            v,
        );
    }
    e.family(
        "abgp_agent_med_changes_total",
        Kind::Counter,
        "Times the agent's advertised MED changed (each a re-advertisement of its routes).",
    );
    for r in agents {
        let v = r.med_changes as f64;
        e.sample(
            "abgp_agent_med_changes_total",
            &[("agent", r.agent.as_str())],
            v,
        );
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
