//! The router engine: one type that ties prefixes, RIBs, the decision
//! process, policy and peer sessions together.
//!
//! It is sans-IO. A driver (the libp2p node, a test loop, the simulator)
//! feeds it [`Event`]s with the current time and carries out the [`Action`]s
//! it returns. Route output is coalesced: events only mark prefixes dirty, and
//! [`Engine::flush`] turns everything dirty into at most one UPDATE per peer
//! (split only when it exceeds [`EngineConfig::max_routes_per_update`]).
//! [`Engine::handle_all`] does both for a burst of events.
//!
//! ```text
//!  UPDATE from P ──> Adj-RIB-In(P) pre-policy ──> import policy ──> post-policy
//!        ──> decision for touched prefixes ──> Loc-RIB delta (dirty)
//!  flush: dirty ──> export rules + export policy per peer ──> Adj-RIB-Out delta
//!        ──> one UPDATE per peer + RibChanges for the store and the MCP front
//! ```

mod aggregate;
mod by_origin;
mod damping;
mod expiry;
mod export;
mod import;
#[cfg(test)]
#[path = "leaks/tests.rs"]
mod leak_tests;
#[cfg(test)]
#[path = "mrai/tests.rs"]
mod mrai_tests;
#[cfg(test)]
#[path = "nexthop/tests.rs"]
mod nexthop_tests;
mod peer;
#[cfg(test)]
#[path = "route_server/tests.rs"]
mod route_server_tests;
mod sessions;
#[cfg(test)]
mod tests;
mod tombstone;
#[cfg(test)]
#[path = "tombstone/tests.rs"]
mod tombstone_tests;
mod unreachable;
#[cfg(test)]
#[path = "unreachable/tests.rs"]
mod unreachable_tests;

use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};

pub use aggregate::AggregateConfig;
pub use damping::{DampingConfig, DampingReport};
pub use export::NotExported;
pub use peer::{MessageCounts, PeerConfig, PeerInfo, PeerState};
pub use tombstone::{MAX_TOMBSTONE_TTL_MS, MAX_TOMBSTONES, TOMBSTONE_TTL_MS};

use super::attrs::{AttrInterner, PathAttrs};
use super::decision::{
    DecisionConfig, Exclusion, Learned, MedMode, PathView, Status, multipath, select,
};
use super::ids::{Asn, ClusterId, Millis, NodeId};
use super::message::{Capabilities, Message, Notification};
use super::prefix::Prefix;
use super::proof::AsnCert;
use super::rib::{FastMap, PeerIdx, Rib, candidate_route};
use super::route::{Route, RouteKey};

/// What import and export policy decide. Implemented by the compiled policy
/// file (`core::policy`) and by [`DefaultPolicy`].
pub trait RoutePolicy: Send + Sync + std::fmt::Debug {
    /// May modify `attrs` (copy-on-write). Returns whether to accept.
    fn import(&self, peer: &PeerInfo, prefix: &Prefix, attrs: &mut Arc<PathAttrs>) -> bool;
    /// Runs before the engine's own export transformations (AS prepend,
    /// local-pref reset). Returns whether to advertise.
    fn export(&self, peer: &PeerInfo, prefix: &Prefix, attrs: &mut Arc<PathAttrs>) -> bool;
}

/// The policy in force when none is configured, after RFC 8212: accept from
/// and advertise to peers in our own AS; nothing across AS borders.
#[derive(Debug, Default, Clone, Copy)]
pub struct DefaultPolicy;

impl RoutePolicy for DefaultPolicy {
    fn import(&self, peer: &PeerInfo, _: &Prefix, _: &mut Arc<PathAttrs>) -> bool {
        peer.internal
    }
    fn export(&self, peer: &PeerInfo, _: &Prefix, _: &mut Arc<PathAttrs>) -> bool {
        peer.internal
    }
}

/// Accepts every route in both directions: the open policy tests and the
/// simulator use.
#[cfg(test)]
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct AcceptAll;

#[cfg(test)]
impl RoutePolicy for AcceptAll {
    fn import(&self, _: &PeerInfo, _: &Prefix, _: &mut Arc<PathAttrs>) -> bool {
        true
    }
    fn export(&self, _: &PeerInfo, _: &Prefix, _: &mut Arc<PathAttrs>) -> bool {
        true
    }
}

/// Node-wide engine settings.
#[derive(Debug, Clone)]
pub struct EngineConfig {
    pub asn: Asn,
    pub node: NodeId,
    pub federation: String,
    /// Set to act as a route reflector for peers marked `rr_client`.
    pub cluster_id: Option<ClusterId>,
    pub med: MedMode,
    pub aggregates: Vec<AggregateConfig>,
    /// Largest UPDATE the engine emits; bigger batches are split.
    pub max_routes_per_update: usize,
    /// Emit [`Action::RibChanges`] (for the store and the MCP front).
    pub emit_rib_changes: bool,
    /// With `emit_rib_changes`, also emit the Adj-RIB-In and Adj-RIB-Out
    /// changes, which only the store needs; the Loc-RIB changes come either
    /// way. On by default; off where nothing stores them (the simulator's
    /// experiments, which watch only the Loc-RIB).
    pub emit_adj_rib_changes: bool,
    /// Offered to every peer in OPEN.
    pub capabilities: Capabilities,
    /// Our ASN certificate, sent in OPEN.
    pub cert: Option<Arc<AsnCert>>,
    /// Hold time offered to peers without their own setting.
    pub hold_time: Duration,
    /// Reconnect back-off (first delay, cap) for peers without their own.
    pub connect_retry: (Duration, Duration),
    /// Seeds the reconnect jitter of the sessions (deterministic runs).
    pub seed: u64,
    /// Accepted routes any one peer may have: its max-prefix when it has
    /// none of its own, and a cap on the one it has (1,000,000).
    pub max_routes_per_peer: u32,
    /// Routes import policy rejected that are kept per peer (pre-policy,
    /// for re-evaluation and the looking glass), 10,000; the rest are
    /// counted and dropped, so RFC 8212's default deny cannot be used to
    /// fill memory or the store.
    pub max_rejected_per_peer: usize,
    /// The longest graceful-restart time a peer may ask for (600 s).
    pub max_peer_restart_time: u16,
    /// ROUTE-REFRESH requests from one peer are answered at most this often
    /// (10 s); one that comes sooner is answered when the interval is over.
    pub min_route_refresh_interval: Duration,
    /// Route flap damping for paths from external peers (off by default).
    pub damping: DampingConfig,
    /// A transparent route server for peers marked `route_server_client`.
    pub route_server: bool,
    /// Minimum route advertisement interval (RFC 4271 section 9.2.1.1),
    /// per peer: after an UPDATE, the next waits this long, times a jitter
    /// of 0.75 to 1 (changes in between are merged, the latest per route
    /// kept). Zero (the default): every burst goes out at once.
    pub mrai: Duration,
    /// Hold withdrawals back with the interval too (classic BGP). Off by
    /// default: withdrawals go at once, which shortens convergence after
    /// a route goes away.
    pub mrai_withdrawals: bool,
}

impl EngineConfig {
    pub fn new(asn: Asn, node: NodeId) -> Self {
        EngineConfig {
            asn,
            node,
            federation: "default".into(),
            cluster_id: None,
            med: MedMode::Always,
            aggregates: Vec::new(),
            max_routes_per_update: 1000,
            emit_rib_changes: true,
            emit_adj_rib_changes: true,
            capabilities: Capabilities {
                route_refresh: true,
                graceful_restart: Some(120),
                add_path: false,
                multipath: false,
                role: None,
                unreachable: true,
                // Off unless the driver verifies tombstones' signatures
                // (the node: when route signing is in force).
                tombstones: false,
            },
            cert: None,
            hold_time: Duration::from_secs(90),
            connect_retry: (Duration::from_secs(1), Duration::from_secs(60)),
            seed: 0,
            max_routes_per_peer: 1_000_000,
            max_rejected_per_peer: 10_000,
            max_peer_restart_time: 600,
            min_route_refresh_interval: Duration::from_secs(10),
            damping: DampingConfig::default(),
            route_server: false,
            mrai: Duration::ZERO,
            mrai_withdrawals: false,
        }
    }

    /// See [`EngineConfig::mrai`] and [`EngineConfig::mrai_withdrawals`].
    pub fn with_mrai(mut self, interval: Duration, withdrawals: bool) -> Self {
        self.mrai = interval;
        self.mrai_withdrawals = withdrawals;
        self
    }

    pub fn with_federation(mut self, name: impl Into<String>) -> Self {
        self.federation = name.into();
        self
    }

    pub fn with_hold_time(mut self, d: Duration) -> Self {
        self.hold_time = d;
        self
    }

    /// Reconnect back-off: first delay and cap.
    pub fn with_connect_retry(mut self, min: Duration, max: Duration) -> Self {
        self.connect_retry = (min, max);
        self
    }

    pub fn with_max_routes_per_update(mut self, n: usize) -> Self {
        self.max_routes_per_update = n;
        self
    }

    pub fn with_cert(mut self, cert: Arc<AsnCert>) -> Self {
        self.cert = Some(cert);
        self
    }

    /// The graceful-restart time offered in OPEN, in seconds (0: none).
    pub fn with_graceful_restart(mut self, secs: u16) -> Self {
        self.capabilities.graceful_restart = (secs > 0).then_some(secs);
        self
    }

    pub fn with_damping(mut self, damping: DampingConfig) -> Self {
        self.damping = damping;
        self
    }

    /// A route reflector for peers marked `rr_client` (`None`: not one).
    pub fn with_cluster_id(mut self, id: Option<ClusterId>) -> Self {
        self.cluster_id = id;
        self
    }

    /// A transparent route server for peers marked `route_server_client`.
    pub fn with_route_server(mut self, on: bool) -> Self {
        self.route_server = on;
        self
    }

    /// Offer tombstones (origin-signed withdrawals) to peers. Only a driver
    /// that checks their signatures before the engine sees them may.
    pub fn with_tombstones(mut self, on: bool) -> Self {
        self.capabilities.tombstones = on;
        self
    }

    pub fn with_seed(mut self, seed: u64) -> Self {
        self.seed = seed;
        self
    }

    fn decision(&self) -> DecisionConfig {
        DecisionConfig {
            local_asn: self.asn,
            local_node: self.node,
            cluster_id: self.cluster_id,
            med: self.med,
        }
    }
}

/// An input to the engine.
#[derive(Debug, Clone)]
pub enum Event {
    /// Configure a peer, or change the configuration of a known one.
    AddPeer(PeerConfig),
    /// Forget a peer: tears its session down and withdraws its routes.
    RemovePeer(NodeId),
    /// A transport to the peer is up, dialled by us (`outbound`) or by it.
    Connected { peer: NodeId, outbound: bool },
    /// Dialling the peer failed.
    ConnectFailed { peer: NodeId },
    /// The transport to the peer closed.
    Disconnected { peer: NodeId },
    /// A decoded message from the peer.
    Message { peer: NodeId, msg: Message },
    /// The peer sent something the codec rejected; the notification says why.
    BadMessage { peer: NodeId, error: Notification },
    /// Originate (or replace) a local route. Its AS path must be empty.
    Originate(Route),
    /// Withdraw a locally originated route.
    WithdrawLocal(RouteKey),
    /// This node ended its origination of the tombstone's prefix (after
    /// `WithdrawLocal` in the same burst): send the signed tombstone to the
    /// peers that negotiated them ([`tombstone`]).
    Tombstone(Arc<super::proof::Tombstone>),
    /// Routes from the store after a restart: kept as stale until the peer
    /// re-sends them or its end-of-RIB arrives, or `until` passes.
    RestoreStale {
        peer: NodeId,
        asn: Asn,
        routes: Vec<Route>,
        until: Millis,
    },
    /// New import/export policy: all paths are re-evaluated.
    PolicyReloaded(Arc<dyn RoutePolicy>),
    /// Administratively stop (`false`) or start (`true`) a peer's session.
    AdminEnable { peer: NodeId, enabled: bool },
    /// Drop every peer path whose origin attestation expired before
    /// `now - skew_ms`, as withdrawn ([`expiry`]).
    ExpireAttested { skew_ms: u64 },
    /// Time passed; run due timers.
    Tick,
}

/// An output of the engine, for the driver to carry out.
#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    /// Open a transport to the peer; answer with `Connected` or
    /// `ConnectFailed`.
    Dial(NodeId),
    /// Abandon a dial in progress (a connection that completes anyway is
    /// reported as usual and refused or kept by collision resolution).
    CancelDial(NodeId),
    /// Send on the peer's current transport.
    Send(NodeId, Message),
    /// Close the peer's current transport (after any queued Send).
    Disconnect(NodeId),
    /// Send this NOTIFICATION on the transport just reported by `Connected`
    /// and close it; the peer's current transport, if any, is untouched.
    Refuse(NodeId, Notification),
    /// The peer configuration was not accepted.
    PeerConfigError {
        peer: NodeId,
        error: String,
    },
    /// The peer's accepted routes crossed the max-prefix warning share.
    MaxPrefixWarning {
        peer: NodeId,
        accepted: usize,
        limit: u32,
    },
    SessionUp {
        peer: NodeId,
        asn: Asn,
    },
    SessionDown {
        peer: NodeId,
        reason: String,
    },
    /// Everything that changed in the RIBs since the last flush.
    RibChanges(Vec<RibChange>),
}

/// One change to a RIB, for persistence and for the MCP front.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum RibChange {
    /// The pre-policy Adj-RIB-In of `peer` now holds `route` for `key`
    /// (`None`: withdrawn).
    AdjIn {
        peer: NodeId,
        key: RouteKey,
        route: Option<Route>,
    },
    /// The Loc-RIB best path for `prefix` (`None`: no route any more).
    Loc { prefix: Prefix, best: Option<Route> },
    /// What was advertised to `peer` for `prefix` (`None`: withdrawn).
    AdjOut {
        peer: NodeId,
        prefix: Prefix,
        route: Option<Route>,
    },
}

/// Counters for operators and benchmarks.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct EngineStats {
    pub updates_in: u64,
    pub routes_in: u64,
    pub withdrawals_in: u64,
    pub routes_rejected: u64,
    pub best_changes: u64,
    pub updates_out: u64,
    pub routes_out: u64,
    pub withdrawals_out: u64,
    /// Prefixes peers said they have no route to (the unreachable signal),
    /// those over the claim bound, and those we said so of.
    pub unreachable_in: u64,
    pub unreachable_ignored: u64,
    pub unreachable_out: u64,
    /// Tombstones (origin-signed withdrawals, [`tombstone`]): new ones
    /// applied, duplicates and replays not applied again, those refused
    /// (not negotiated, own AS, expired, nothing held), those evicted over
    /// the bound, those this node issued, and copies queued to peers.
    #[serde(default)]
    pub tombstones_in: u64,
    #[serde(default)]
    pub tombstones_duplicate: u64,
    #[serde(default)]
    pub tombstones_ignored: u64,
    #[serde(default)]
    pub tombstones_evicted: u64,
    #[serde(default)]
    pub tombstones_issued: u64,
    #[serde(default)]
    pub tombstones_out: u64,
    /// Rejected routes over `max_rejected_per_peer`, not kept.
    pub rejected_not_kept: u64,
    /// ROUTE-REFRESH requests merged into a later answer.
    pub route_refresh_deferred: u64,
    /// Peer paths dropped because their origin attestation expired.
    #[serde(default)]
    pub expired_paths: u64,
    /// UPDATEs refused for carrying path ids without ADD-PATH.
    pub path_id_refused: u64,
    /// Runs of the decision process (one per prefix whose paths changed).
    #[serde(default)]
    pub decision_runs: u64,
    /// Received paths found to be route leaks by the only-to-customer
    /// rules (kept, never selected).
    #[serde(default)]
    pub route_leaks: u64,
}

/// Routes held for one peer (see [`Engine::rib_counts`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RibCounts {
    pub adj_in_pre: usize,
    pub adj_in_post: usize,
    pub adj_out: usize,
}

/// One path to a prefix as the looking glass shows it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PathReport {
    /// `None` for locally originated paths.
    pub peer: Option<NodeId>,
    pub learned: Learned,
    pub route: Route,
    pub stale: bool,
    pub status: Status,
    /// The flap record of the path, if it has one (see `damping`).
    #[serde(default)]
    pub damping: Option<DampingReport>,
}

/// Where calls for a prefix can go; see [`Engine::forwarding`].
#[derive(Debug, Clone, PartialEq)]
pub struct Forwarding {
    /// The Loc-RIB prefix that matched.
    pub prefix: Prefix,
    /// Next hop (`None`: this node originates it) and route, best first.
    pub paths: Vec<(Option<NodeId>, Route)>,
    /// The first `multipath` paths are equally good.
    pub multipath: usize,
}

/// The engine. See the module documentation.
#[derive(Debug)]
pub struct Engine {
    cfg: EngineConfig,
    decision: DecisionConfig,
    policy: Arc<dyn RoutePolicy>,
    peers: Vec<Option<peer::Peer>>,
    by_node: FastMap<NodeId, PeerIdx>,
    rib: Rib,
    interner: AttrInterner,
    aggregates: Vec<aggregate::Aggregate>,
    stats: EngineStats,
    /// RIB changes gathered since the last flush.
    changes: Vec<RibChange>,
    /// Set while a policy reload feeds the kept pre-policy paths back in:
    /// the Adj-RIB-In they come from did not change, so it is not recorded
    /// again (the Loc-RIB changes they cause are).
    reimporting: bool,
    /// Actions produced outside a flush (session messages), returned by the
    /// next `handle`/`flush`.
    pending: Vec<Action>,
    /// Attribute allocations seen in the UPDATE being processed, mapped to
    /// their interned copies (see `intern_received`).
    recent_attrs: FastMap<usize, (Arc<PathAttrs>, Arc<PathAttrs>)>,
    export_cache: export::ExportCache,
    /// Size of the interner and export cache after the last sweep.
    gc_watermark: usize,
    damping: damping::Damping,
    /// What peers said, with the unreachable signal, they have no route to.
    claims: unreachable::Claims,
    /// Origin-signed withdrawals kept.
    tombstones: tombstone::Tombstones,
    /// The time of the event being handled (for damping).
    now: Millis,
}

impl Engine {
    pub fn new(cfg: EngineConfig) -> Self {
        let aggregates = cfg
            .aggregates
            .iter()
            .cloned()
            .map(aggregate::Aggregate::new)
            .collect();
        Engine {
            decision: cfg.decision(),
            cfg,
            policy: Arc::new(DefaultPolicy),
            // Slot 0 is this node (PeerIdx::LOCAL).
            peers: vec![None],
            by_node: FastMap::default(),
            rib: Rib::default(),
            interner: AttrInterner::new(),
            aggregates,
            stats: EngineStats::default(),
            changes: Vec::new(),
            reimporting: false,
            pending: Vec::new(),
            recent_attrs: FastMap::default(),
            export_cache: Default::default(),
            gc_watermark: 0,
            damping: Default::default(),
            claims: Default::default(),
            tombstones: Default::default(),
            now: Millis(0),
        }
    }

    pub fn with_policy(mut self, policy: Arc<dyn RoutePolicy>) -> Self {
        self.policy = policy;
        self
    }

    pub fn config(&self) -> &EngineConfig {
        &self.cfg
    }

    /// Whether Adj-RIB-In and Adj-RIB-Out changes are recorded now.
    fn records_adj(&self) -> bool {
        self.cfg.emit_rib_changes && self.cfg.emit_adj_rib_changes && !self.reimporting
    }

    pub fn stats(&self) -> &EngineStats {
        &self.stats
    }

    /// Handles one event and flushes.
    pub fn handle(&mut self, now: Millis, event: Event) -> Vec<Action> {
        self.handle_all(now, std::iter::once(event))
    }

    /// Handles a burst of events, then flushes once: the burst produces at
    /// most one UPDATE per peer.
    pub fn handle_all(
        &mut self,
        now: Millis,
        events: impl IntoIterator<Item = Event>,
    ) -> Vec<Action> {
        for ev in events {
            self.apply(now, ev);
        }
        self.flush(now)
    }

    /// Handles one event without flushing route output.
    pub fn apply(&mut self, now: Millis, event: Event) {
        self.now = now;
        match event {
            Event::AddPeer(cfg) => self.add_peer(now, cfg),
            Event::RemovePeer(node) => self.remove_peer(now, node),
            Event::Connected { peer, outbound } => self.on_connected(now, peer, outbound),
            Event::ConnectFailed { peer } => self.on_connect_failed(now, peer),
            Event::Disconnected { peer } => self.on_disconnected(now, peer),
            Event::Message { peer, msg } => self.on_message(now, peer, msg),
            Event::BadMessage { peer, error } => self.on_bad_message(now, peer, error),
            Event::Originate(route) => self.originate(now, route),
            Event::WithdrawLocal(key) => self.withdraw_local(key),
            Event::Tombstone(t) => self.issue_tombstone(t),
            Event::RestoreStale {
                peer,
                asn,
                routes,
                until,
            } => self.restore_stale(now, peer, asn, routes, until),
            Event::PolicyReloaded(p) => self.reload_policy(p),
            Event::AdminEnable { peer, enabled } => self.admin_enable(now, peer, enabled),
            Event::ExpireAttested { skew_ms } => {
                self.expire_attested(now, skew_ms);
            }
            Event::Tick => {
                self.reuse_damped(now);
                self.expire_claims(now);
                self.expire_tombstones(now);
                self.on_tick(now)
            }
        }
    }

    /// The earliest time the engine wants a [`Event::Tick`].
    pub fn next_deadline(&self) -> Option<Millis> {
        self.peers
            .iter()
            .flatten()
            .filter_map(|p| p.next_deadline())
            .chain(self.damping.next_deadline())
            .chain(self.claims.next_deadline())
            .chain(self.tombstones.next_deadline())
            .min()
    }

    fn idx(&self, node: &NodeId) -> Option<PeerIdx> {
        self.by_node.get(node).copied()
    }

    fn peer(&self, idx: PeerIdx) -> Option<&peer::Peer> {
        self.peers.get(idx.0 as usize).and_then(|p| p.as_ref())
    }

    fn peer_mut(&mut self, idx: PeerIdx) -> Option<&mut peer::Peer> {
        self.peers.get_mut(idx.0 as usize).and_then(|p| p.as_mut())
    }

    /// The node id behind a peer index (`None` for this node).
    fn node_of(&self, idx: PeerIdx) -> Option<NodeId> {
        self.peer(idx).map(|p| p.cfg.node)
    }

    // ----- queries (looking glass, MCP front, tests) -----

    /// The best route for exactly this prefix.
    pub fn best(&self, prefix: &Prefix) -> Option<Route> {
        self.rib.best_route(prefix).map(|(r, _)| r)
    }

    /// The best route of the most specific Loc-RIB prefix covering `wanted`.
    pub fn lookup(&self, wanted: &Prefix) -> Option<Route> {
        let p = self.rib.loc_index.longest_match(wanted)?;
        self.best(&p)
    }

    /// The node a call for `prefix` should be forwarded to (`None` inside
    /// the option: deliver locally), from the longest-prefix match.
    pub fn next_hop(&self, wanted: &Prefix) -> Option<(Prefix, Option<NodeId>)> {
        let p = self.rib.loc_index.longest_match(wanted)?;
        let d = self.rib.dests.get(&p)?;
        let c = d.best()?;
        let hop = self.node_of(c.peer);
        Some((p, hop))
    }

    /// Where calls for `wanted` can go: the longest-prefix match and every
    /// usable path to it, best first, with how many of the first paths are
    /// equal up to the tie-breakers (the multipath set). Paths that lost
    /// follow in decision order: the alternatives a retry may use. Excluded
    /// paths (loops, stale ones) are left out: a stale path's peer has no
    /// transport, so when the best path is stale there is nowhere to go
    /// (`None`) although the Loc-RIB keeps it for the peer's re-sync
    /// (next-hop tracking, docs/protocol.md). A path from our route server
    /// that names a third-party next hop goes to that node, not to the
    /// route server, and stays usable while the route server restarts (its
    /// transport is not the one calls use).
    pub fn forwarding(&self, wanted: &Prefix) -> Option<Forwarding> {
        let p = self.rib.loc_index.longest_match(wanted)?;
        let d = self.rib.dests.get(&p)?;
        let best = d
            .best()
            .filter(|c| !c.stale || c.attrs.next_hop.is_some())?;
        let hop = |c: &super::rib::Candidate| {
            self.node_of(c.peer)
                .map(|peer| c.attrs.next_hop.unwrap_or(peer))
        };
        // After the direct paths, the route servers themselves (while
        // their sessions are up): a call the named node cannot be reached
        // for is retried through the route server, as through a transit.
        let via_route_servers = |cs: &mut dyn Iterator<Item = &super::rib::Candidate>| {
            cs.filter(|c| c.attrs.next_hop.is_some() && !c.stale)
                .filter_map(|c| Some((Some(self.node_of(c.peer)?), candidate_route(&p, c))))
                .collect::<Vec<_>>()
        };
        if d.candidates.len() == 1 {
            let mut paths = vec![(hop(best), candidate_route(&p, best))];
            paths.extend(via_route_servers(&mut std::iter::once(best)));
            return Some(Forwarding {
                paths,
                prefix: p,
                multipath: 1,
            });
        }
        // Damped and leaked paths are excluded by the engine, not by their
        // attributes.
        let cands: Vec<&super::rib::Candidate> = d
            .candidates
            .iter()
            .filter(|c| !c.excluded.is_some_and(Exclusion::by_engine))
            .collect();
        let nodes: Vec<Option<NodeId>> = cands.iter().map(|c| self.node_of(c.peer)).collect();
        let views: Vec<PathView<'_>> = cands
            .iter()
            .zip(&nodes)
            .map(|(c, n)| PathView {
                attrs: &c.attrs,
                learned: c.learned,
                peer: n.as_ref(),
                path_id: c.path_id,
                stale: c.stale,
            })
            .collect();
        let mut status = Vec::new();
        let b = select(&self.decision, &views, &mut status)?;
        let equal = multipath(&self.decision, &views, &status, b);
        let mut order: Vec<usize> = equal.clone();
        let mut losers: Vec<usize> = (0..views.len())
            .filter(|i| matches!(status[*i], Status::Lost(_)) && !equal.contains(i))
            .collect();
        losers.sort_by(|&i, &j| {
            super::decision::compare(&self.decision, &views[i], &views[j], true).0
        });
        order.extend(losers);
        let mut paths: Vec<_> = order
            .iter()
            .map(|&i| (hop(cands[i]), candidate_route(&p, cands[i])))
            .collect();
        paths.extend(via_route_servers(&mut order.iter().map(|&i| cands[i])));
        Some(Forwarding {
            paths,
            prefix: p,
            multipath: equal.len(),
        })
    }

    /// Every Loc-RIB route covered by `cover`, sorted by prefix.
    pub fn routes_covered_by(&self, cover: &Prefix) -> Vec<Route> {
        self.rib
            .loc_index
            .covered_by(cover)
            .into_iter()
            .filter_map(|p| self.best(&p))
            .collect()
    }

    /// The whole Loc-RIB, sorted by prefix.
    pub fn loc_rib(&self) -> Vec<Route> {
        self.routes_covered_by(&Prefix::any())
    }

    pub fn loc_rib_len(&self) -> usize {
        self.rib.loc_len()
    }

    /// Every path to `prefix` with its status: the answer to "why is this
    /// route (not) best?". Best first, then in the decision order.
    pub fn paths(&self, prefix: &Prefix) -> Vec<PathReport> {
        let Some(d) = self.rib.dests.get(prefix) else {
            return Vec::new();
        };
        // Damped and leaked paths do not compete; they are reported as
        // excluded.
        let (damped, cands): (Vec<&super::rib::Candidate>, Vec<&super::rib::Candidate>) = d
            .candidates
            .iter()
            .partition(|c| c.excluded.is_some_and(Exclusion::by_engine));
        let nodes: Vec<Option<NodeId>> = cands.iter().map(|c| self.node_of(c.peer)).collect();
        let views: Vec<PathView<'_>> = cands
            .iter()
            .zip(&nodes)
            .map(|(c, n)| PathView {
                attrs: &c.attrs,
                learned: c.learned,
                peer: n.as_ref(),
                path_id: c.path_id,
                stale: c.stale,
            })
            .collect();
        let mut status = Vec::new();
        select(&self.decision, &views, &mut status);
        let report = |c: &super::rib::Candidate, peer: Option<NodeId>, status| {
            let route = candidate_route(prefix, c);
            PathReport {
                damping: self.damping_report(peer, &route.key()),
                peer,
                learned: c.learned,
                route,
                stale: c.stale,
                status,
            }
        };
        let mut out: Vec<PathReport> = cands
            .iter()
            .zip(nodes)
            .zip(status)
            .map(|((c, peer), status)| report(c, peer, status))
            .chain(damped.iter().map(|c| {
                let why = c.excluded.unwrap_or(Exclusion::Damped);
                report(c, self.node_of(c.peer), Status::Excluded(why))
            }))
            .collect();
        out.sort_by_key(|r| !matches!(r.status, Status::Best));
        out
    }

    /// Paths from `peer` after import policy (its post-policy Adj-RIB-In).
    pub fn adj_rib_in_post(&self, peer: &NodeId) -> Vec<Route> {
        let Some(idx) = self.idx(peer) else {
            return Vec::new();
        };
        let mut v: Vec<Route> = self
            .rib
            .dests
            .iter()
            .flat_map(|(p, d)| {
                d.candidates
                    .iter()
                    .filter(|c| c.peer == idx)
                    .map(move |c| candidate_route(p, c))
            })
            .collect();
        v.sort_by_key(|a| a.key());
        v
    }

    /// Paths from `peer` as received, before import policy, including the
    /// ones policy rejected.
    pub fn adj_rib_in_pre(&self, peer: &NodeId) -> Vec<Route> {
        let Some(idx) = self.idx(peer) else {
            return Vec::new();
        };
        let Some(p) = self.peer(idx) else {
            return Vec::new();
        };
        let mut v: Vec<Route> = p
            .rib
            .pre_policy
            .iter()
            .map(|(k, pre)| Route {
                prefix: k.prefix.clone(),
                path_id: k.path_id,
                attrs: pre.attrs.clone(),
                proof: pre.proof.clone(),
            })
            .collect();
        for (prefix, d) in &self.rib.dests {
            for c in d.candidates.iter().filter(|c| c.peer == idx) {
                let key = RouteKey {
                    prefix: prefix.clone(),
                    path_id: c.path_id,
                };
                if !p.rib.pre_policy.contains_key(&key) {
                    v.push(candidate_route(prefix, c));
                }
            }
        }
        v.sort_by_key(|a| a.key());
        v
    }

    /// The attributes of a path from `peer` as received, when import
    /// policy changed or rejected it (the engine keeps those pre-policy);
    /// `None` when what was received is what the candidate holds.
    pub fn pre_policy_attrs(&self, peer: &NodeId, key: &RouteKey) -> Option<Arc<PathAttrs>> {
        let p = self.idx(peer).and_then(|i| self.peer(i))?;
        p.rib.pre_policy.get(key).map(|pre| pre.attrs.clone())
    }

    /// The paths `peer` sent for `prefix` that import policy rejected (as
    /// far as they are kept: `max_rejected_per_peer`).
    pub fn rejected_paths(&self, peer: &NodeId, prefix: &Prefix) -> Vec<Route> {
        let Some(p) = self.idx(peer).and_then(|i| self.peer(i)) else {
            return Vec::new();
        };
        let mut v: Vec<Route> = p
            .rib
            .pre_policy
            .iter()
            .filter(|(k, pre)| k.prefix == *prefix && !pre.accepted)
            .map(|(k, pre)| Route {
                prefix: k.prefix.clone(),
                path_id: k.path_id,
                attrs: pre.attrs.clone(),
                proof: pre.proof.clone(),
            })
            .collect();
        v.sort_by_key(|r| r.path_id);
        v
    }

    /// What was advertised to `peer` (its Adj-RIB-Out).
    pub fn adj_rib_out(&self, peer: &NodeId) -> Vec<Route> {
        let Some(idx) = self.idx(peer) else {
            return Vec::new();
        };
        let mut v: Vec<Route> = self
            .rib
            .dests
            .iter()
            .filter_map(|(p, d)| {
                d.out_for(idx).map(|o| Route {
                    prefix: p.clone(),
                    path_id: 0,
                    attrs: o.attrs.clone(),
                    proof: o.proof.clone(),
                })
            })
            .collect();
        v.sort_by(|a, b| a.prefix.cmp(&b.prefix));
        v
    }

    /// Did we advertise `prefix` (exactly) to `peer`? Used to refuse calls a
    /// peer sends for routes it was never offered.
    /// The peers configured as our transparent route servers.
    pub fn route_server_peers(&self) -> impl Iterator<Item = NodeId> + '_ {
        self.peers
            .iter()
            .flatten()
            .filter(|p| p.cfg.route_server)
            .map(|p| p.cfg.node)
    }

    /// Is one of our route servers configured but not established?
    pub fn route_server_down(&self) -> bool {
        self.peers
            .iter()
            .flatten()
            .any(|p| p.cfg.route_server && !p.is_established())
    }

    pub fn advertised_to(&self, peer: &NodeId, prefix: &Prefix) -> bool {
        let Some(idx) = self.idx(peer) else {
            return false;
        };
        self.rib
            .dests
            .get(prefix)
            .is_some_and(|d| d.out_for(idx).is_some())
    }

    pub fn peers(&self) -> Vec<PeerInfo> {
        self.peers.iter().flatten().map(|p| p.info()).collect()
    }

    /// Routing messages exchanged with each peer, by type.
    pub fn peer_messages(&self) -> Vec<(NodeId, MessageCounts)> {
        self.peers
            .iter()
            .flatten()
            .map(|p| (p.cfg.node, p.msgs))
            .collect()
    }

    /// Route counts per peer in one pass over the RIB: (peer, Adj-RIB-In
    /// before import policy, after it, Adj-RIB-Out).
    pub fn rib_counts(&self) -> Vec<(NodeId, RibCounts)> {
        let mut counts: Vec<RibCounts> = vec![RibCounts::default(); self.peers.len()];
        for (prefix, d) in &self.rib.dests {
            for c in &d.candidates {
                let Some(n) = counts.get_mut(c.peer.0 as usize) else {
                    continue;
                };
                n.adj_in_post += 1;
                let in_pre = self.peer(c.peer).is_some_and(|p| {
                    p.rib.pre_policy.contains_key(&RouteKey {
                        prefix: prefix.clone(),
                        path_id: c.path_id,
                    })
                });
                if !in_pre {
                    // Kept as accepted only: also part of what came in.
                    n.adj_in_pre += 1;
                }
            }
            for o in &d.out {
                if let Some(n) = counts.get_mut(o.peer.0 as usize) {
                    n.adj_out += 1;
                }
            }
        }
        self.peers
            .iter()
            .zip(counts)
            .filter_map(|(p, mut n)| {
                let p = p.as_ref()?;
                n.adj_in_pre += p.rib.pre_policy.len();
                Some((p.cfg.node, n))
            })
            .collect()
    }

    pub fn peer_info(&self, node: &NodeId) -> Option<PeerInfo> {
        self.idx(node).and_then(|i| self.peer(i)).map(|p| p.info())
    }

    /// Attribute sets currently shared through the interner.
    pub fn interned_attr_sets(&self) -> usize {
        self.interner.len()
    }
}
