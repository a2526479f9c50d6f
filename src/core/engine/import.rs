//! The receive side: UPDATEs from peers and local originations enter the
//! table, pass import policy, and trigger the decision process for the
//! prefixes they touch.

use std::sync::Arc;

use smallvec::SmallVec;

use super::super::attrs::PathAttrs;
use super::super::decision::{
    DecisionConfig, Exclusion, Learned, PathView, best_index_of_eligible, eligibility,
};
use super::super::ids::{Asn, Millis, NodeId};
use super::super::message::Update;
use super::super::prefix::Prefix;
use super::super::prefix::PrefixSet;
use super::super::proof::RouteProof;
use super::super::rib::{Candidate, Dest, FastMap, PeerIdx, PrePolicy, Rib, candidate_route};
use super::super::role;
use super::super::route::{PathId, Route, RouteKey};
use super::aggregate::Aggregate;
use super::peer::{Peer, PeerInfo};
use super::{Engine, EngineStats, RibChange, RoutePolicy};

impl Engine {
    /// Processes an UPDATE from an established peer. Returns the number of
    /// paths the peer now has accepted (for max-prefix).
    pub(super) fn process_update(&mut self, idx: PeerIdx, update: Update) -> u32 {
        self.stats.updates_in += 1;
        // Whether the peer had a path for each prefix it says it has no
        // route to, read before its withdrawals: a claim is kept even when
        // nothing is left here, so stale paths arriving later are not
        // explored.
        let had: SmallVec<[bool; 4]> = update
            .unreachable
            .iter()
            .map(|p| {
                self.rib
                    .dests
                    .get(p)
                    .is_some_and(|d| d.candidates.iter().any(|c| c.peer == idx))
            })
            .collect();
        // The same for tombstones: the prefixes among them the peer had a
        // path for before withdrawing it here.
        let withdrawn: SmallVec<[Prefix; 1]> = update
            .tombstones
            .iter()
            .filter(|t| {
                self.rib
                    .dests
                    .get(&t.prefix)
                    .is_some_and(|d| d.candidates.iter().any(|c| c.peer == idx))
            })
            .map(|t| t.prefix.clone())
            .collect();
        for key in update.withdraw {
            self.stats.withdrawals_in += 1;
            self.damp_withdrawal(idx, &key);
            self.withdraw_path(idx, &key, true);
        }
        for (prefix, had) in update.unreachable.into_iter().zip(had) {
            self.on_unreachable(idx, prefix, had);
        }
        if !update.tombstones.is_empty() {
            self.on_tombstones(idx, update.tombstones, &withdrawn);
        }
        if let Some(info) = self.peer(idx).map(|p| p.info()) {
            for route in update.announce {
                self.stats.routes_in += 1;
                self.damp_announcement(idx, &route);
                if !info.internal {
                    self.end_claim(info.asn, &route.prefix);
                }
                self.receive_path_as(idx, &info, route, false);
            }
        }
        // Routes of one UPDATE share attribute allocations; the cache only
        // lives for one UPDATE so it never pins memory.
        self.recent_attrs.clear();
        if update.end_of_rib {
            self.purge_stale(idx);
        }
        self.peer(idx).map(|p| p.rib.accepted).unwrap_or(0)
    }

    /// One announced path from a peer (see [`Engine::receive_path_as`]).
    pub(super) fn receive_path(&mut self, idx: PeerIdx, route: Route, stale: bool) {
        if let Some(info) = self.peer(idx).map(|p| p.info()) {
            self.receive_path_as(idx, &info, route, stale);
        }
        self.recent_attrs.clear();
    }

    /// Interns received attributes, remembering the allocation it came in,
    /// so the next route of the same UPDATE with the same set costs one
    /// pointer lookup instead of hashing the whole set.
    fn intern_received(&mut self, attrs: Arc<PathAttrs>) -> Arc<PathAttrs> {
        let key = Arc::as_ptr(&attrs) as usize;
        if let Some((_, interned)) = self.recent_attrs.get(&key) {
            return interned.clone();
        }
        let interned = self.interner.intern(attrs.clone());
        // Keeping `attrs` alive keeps its address from being reused.
        self.recent_attrs.insert(key, (attrs, interned.clone()));
        interned
    }

    /// RFC 9234 ingress for a peer we hold a role towards: a leak is
    /// reported; an unmarked route from a provider, peer or route server is
    /// marked only-to-customer as it arrives, so the mark is part of what
    /// was received (and re-importing changes nothing).
    fn role_ingress(
        &mut self,
        info: &PeerInfo,
        attrs: Arc<PathAttrs>,
    ) -> (Arc<PathAttrs>, Option<role::Leak>) {
        let Some(local) = info.local_role else {
            return (attrs, None);
        };
        match role::on_import(local, info.asn, &attrs) {
            Ok(None) => (attrs, None),
            Ok(Some(mark)) => {
                let mut marked = (*attrs).clone();
                marked.otc = Some(mark);
                (self.interner.intern_owned(marked), None)
            }
            Err(leak) => (attrs, Some(leak)),
        }
    }

    /// A third-party next hop is kept only on a path from a peer we
    /// configured as our route server, only when the path signatures name
    /// it (the route server's pcount-0 signature follows that of the node
    /// it names), and never when it names us; otherwise it is removed and
    /// calls for the path go to the peer it came from.
    fn checked_next_hop(
        &self,
        idx: PeerIdx,
        attrs: Arc<PathAttrs>,
        proof: Option<&RouteProof>,
    ) -> Arc<PathAttrs> {
        let Some(nh) = attrs.next_hop else {
            return attrs;
        };
        let from_route_server = self.peer(idx).is_some_and(|p| p.cfg.route_server);
        let signed_by_it = proof.is_none_or(|p| announcer_before_route_server(p) == Some(nh));
        if from_route_server && signed_by_it && nh != self.cfg.node {
            return attrs;
        }
        let mut attrs = attrs;
        Arc::make_mut(&mut attrs).next_hop = None;
        attrs
    }

    /// One announced path from a peer: implicit withdraw of the previous
    /// path with the same key, import policy, decision.
    fn receive_path_as(&mut self, idx: PeerIdx, info: &PeerInfo, route: Route, stale: bool) {
        let learned = if info.internal {
            Learned::Internal
        } else {
            Learned::External
        };
        // Recorded for the store once import policy has spoken: a rejected
        // route over the bound is recorded as gone.
        let recorded = self.records_adj().then(|| route.clone());
        let Route {
            prefix,
            path_id,
            attrs,
            proof,
        } = route;
        let attrs = self.checked_next_hop(idx, attrs, proof.as_deref());
        let pre_attrs = self.intern_received(attrs);
        let (pre_attrs, leak) = self.role_ingress(info, pre_attrs);
        let mut post = pre_attrs.clone();
        let accepted = self.policy.import(info, &prefix, &mut post);
        if accepted && !Arc::ptr_eq(&post, &pre_attrs) {
            post = self.interner.intern(post);
        }
        let modified = !Arc::ptr_eq(&post, &pre_attrs);

        let max_rejected = self.cfg.max_rejected_per_peer;
        let Some(peer) = self.peer_mut(idx) else {
            return;
        };
        let key = RouteKey {
            prefix: prefix.clone(),
            path_id,
        };
        let kept = accepted
            || peer.rib.pre_policy.len() < max_rejected
            || peer.rib.pre_policy.contains_key(&key);
        if let Some(r) = recorded {
            self.changes.push(RibChange::AdjIn {
                peer: info.node,
                key: key.clone(),
                route: kept.then_some(r),
            });
        }
        let Some(peer) = self.peer_mut(idx) else {
            return;
        };
        if !kept {
            // Not kept: counted, and gone from the table like a withdrawal.
            self.stats.routes_rejected += 1;
            self.stats.rejected_not_kept += 1;
            self.remove_candidate(idx, &key);
            return;
        }
        if !accepted || modified {
            peer.rib.pre_policy.insert(
                RouteKey {
                    prefix: prefix.clone(),
                    path_id,
                },
                PrePolicy {
                    attrs: pre_attrs,
                    proof: proof.clone(),
                    accepted,
                },
            );
        } else if !peer.rib.pre_policy.is_empty() {
            peer.rib.pre_policy.remove(&RouteKey {
                prefix: prefix.clone(),
                path_id,
            });
        }
        if !accepted {
            self.stats.routes_rejected += 1;
            self.remove_candidate(
                idx,
                &RouteKey {
                    prefix: prefix.clone(),
                    path_id,
                },
            );
            return;
        }
        if leak.is_some() {
            self.stats.route_leaks += 1;
        }
        let excluded = leak
            .map(|_| Exclusion::RouteLeak)
            .or_else(|| exclusion(&self.decision, &post, learned))
            .or_else(|| {
                self.damped(
                    idx,
                    &RouteKey {
                        prefix: prefix.clone(),
                        path_id,
                    },
                )
            })
            .or_else(|| self.claimed_unreachable(&prefix, &post.as_path))
            .or_else(|| self.tombstoned(&prefix, &post, proof.as_deref()));
        let cand = Candidate {
            peer: idx,
            path_id,
            learned,
            attrs: post,
            proof,
            stale,
            excluded,
        };
        self.put_candidate(prefix, cand);
    }

    /// Explicit withdraw of one path from a peer.
    pub(super) fn withdraw_path(&mut self, idx: PeerIdx, key: &RouteKey, record: bool) {
        if record
            && self.records_adj()
            && let Some(node) = self.node_of(idx)
        {
            self.changes.push(RibChange::AdjIn {
                peer: node,
                key: key.clone(),
                route: None,
            });
        }
        if let Some(p) = self.peer_mut(idx)
            && !p.rib.pre_policy.is_empty()
        {
            p.rib.pre_policy.remove(key);
        }
        self.remove_candidate(idx, key);
    }

    /// Splits the engine into the table and the decision bookkeeping, so an
    /// entry can be changed and settled with a single lookup.
    pub(super) fn table_and_settle(&mut self) -> (&mut FastMap<Prefix, Dest>, Settle<'_>) {
        let Engine {
            rib,
            peers,
            decision,
            stats,
            changes,
            cfg,
            aggregates,
            ..
        } = self;
        let Rib {
            dests,
            loc_index,
            dirty,
        } = rib;
        let settle = Settle {
            peers,
            decision,
            loc_index,
            dirty,
            stats,
            changes: cfg.emit_rib_changes.then_some(changes),
            aggregates,
        };
        (dests, settle)
    }

    /// Inserts or replaces a candidate and re-runs the decision.
    pub(super) fn put_candidate(&mut self, prefix: Prefix, cand: Candidate) {
        let idx = cand.peer;
        let (dests, mut settle) = self.table_and_settle();
        let dest = match dests.get_mut(&prefix) {
            Some(d) => d,
            None => dests.entry(prefix.clone()).or_default(),
        };
        let old = snapshot(dest);
        let added = match dest.find(cand.peer, cand.path_id) {
            Some(i) => {
                dest.candidates[i] = cand;
                false
            }
            None => {
                dest.push(cand);
                true
            }
        };
        settle.run(&prefix, dest, old);
        if added
            && idx != PeerIdx::LOCAL
            && let Some(p) = self.peer_mut(idx)
        {
            p.rib.accepted += 1;
        }
    }

    /// Removes a candidate if present and re-runs the decision.
    pub(super) fn remove_candidate(&mut self, idx: PeerIdx, key: &RouteKey) {
        let (dests, mut settle) = self.table_and_settle();
        let Some(dest) = dests.get_mut(&key.prefix) else {
            return;
        };
        let Some(i) = dest.find(idx, key.path_id) else {
            return;
        };
        let old = snapshot(dest);
        dest.candidates.swap_remove(i);
        settle.run(&key.prefix, dest, old);
        if dest.is_empty() {
            dests.remove(&key.prefix);
        }
        if idx != PeerIdx::LOCAL
            && let Some(p) = self.peer_mut(idx)
        {
            p.rib.accepted = p.rib.accepted.saturating_sub(1);
        }
    }

    /// Re-runs the decision for a prefix whose paths changed in place.
    pub(super) fn decide(&mut self, prefix: &Prefix, old: Option<BestSnapshot>) {
        let (dests, mut settle) = self.table_and_settle();
        let Some(dest) = dests.get_mut(prefix) else {
            return;
        };
        settle.run(prefix, dest, old);
        if dest.is_empty() {
            dests.remove(prefix);
        }
    }

    /// Originates a local route (an agent, a static route).
    pub(super) fn originate(&mut self, now: Millis, route: Route) {
        let mut attrs = route.attrs;
        if !attrs.as_path.is_empty() || attrs.originator.is_some() || !attrs.cluster_list.is_empty()
        {
            // A local route starts with no path; a driver passing one would
            // otherwise make us look like a transit for our own agents.
            let a = Arc::make_mut(&mut attrs);
            a.as_path.clear();
            a.originator = None;
            a.cluster_list.clear();
        }
        if attrs.origin_time == Millis(0) {
            Arc::make_mut(&mut attrs).origin_time = now;
        }
        let attrs = self.interner.intern(attrs);
        let excluded = exclusion(&self.decision, &attrs, Learned::Local);
        let cand = Candidate {
            peer: PeerIdx::LOCAL,
            path_id: route.path_id,
            learned: Learned::Local,
            attrs,
            proof: route.proof,
            stale: false,
            excluded,
        };
        self.put_candidate(route.prefix, cand);
    }

    pub(super) fn withdraw_local(&mut self, key: RouteKey) {
        self.remove_candidate(PeerIdx::LOCAL, &key);
    }

    /// Drops every path from a peer (session down without graceful restart,
    /// peer removed). Scans the table once.
    pub(super) fn drop_peer_paths(&mut self, idx: PeerIdx, only_stale: bool) {
        let touched: Vec<(Prefix, PathId)> = self
            .rib
            .dests
            .iter()
            .flat_map(|(p, d)| {
                d.candidates
                    .iter()
                    .filter(|c| c.peer == idx && (!only_stale || c.stale))
                    .map(move |c| (p.clone(), c.path_id))
            })
            .collect();
        let node = self.node_of(idx);
        for (prefix, path_id) in touched {
            let key = RouteKey { prefix, path_id };
            if let (Some(node), true) = (node, self.records_adj()) {
                self.changes.push(RibChange::AdjIn {
                    peer: node,
                    key: key.clone(),
                    route: None,
                });
            }
            if let Some(p) = self.peer_mut(idx) {
                p.rib.pre_policy.remove(&key);
            }
            self.remove_candidate(idx, &key);
        }
        if !only_stale && let Some(p) = self.peer_mut(idx) {
            let rejected: Vec<RouteKey> = p.rib.pre_policy.keys().cloned().collect();
            p.rib.pre_policy.clear();
            p.rib.accepted = 0;
            if let (Some(node), true) = (node, self.records_adj()) {
                for key in rejected {
                    self.changes.push(RibChange::AdjIn {
                        peer: node,
                        key,
                        route: None,
                    });
                }
            }
        }
        // Adj-RIB-Out entries towards the peer are meaningless once its
        // session is gone; they are rebuilt by the initial dump on reconnect.
        for d in self.rib.dests.values_mut() {
            d.out.retain(|o| o.peer != idx);
        }
        self.rib.dests.retain(|_, d| !d.is_empty());
    }

    /// Marks every path from a peer stale (graceful restart).
    pub(super) fn mark_peer_stale(&mut self, idx: PeerIdx) {
        let touched: Vec<(Prefix, Option<BestSnapshot>)> = self
            .rib
            .dests
            .iter_mut()
            .filter_map(|(p, d)| {
                let old = snapshot(d);
                let mut any = false;
                for c in d.candidates.iter_mut().filter(|c| c.peer == idx) {
                    c.stale = true;
                    any = true;
                }
                d.out.retain(|o| o.peer != idx);
                any.then(|| (p.clone(), old))
            })
            .collect();
        for (p, old) in touched {
            self.decide(&p, old);
        }
    }

    /// Removes the paths a restarting peer did not re-send.
    pub(super) fn purge_stale(&mut self, idx: PeerIdx) {
        self.drop_peer_paths_stale(idx);
        if let Some(p) = self.peer_mut(idx) {
            p.stale_until = None;
        }
    }

    fn drop_peer_paths_stale(&mut self, idx: PeerIdx) {
        let any = self
            .rib
            .dests
            .values()
            .any(|d| d.candidates.iter().any(|c| c.peer == idx && c.stale));
        if any {
            self.drop_peer_paths(idx, true);
        }
    }

    /// Stale routes from the store after a restart.
    pub(super) fn restore_stale(
        &mut self,
        now: Millis,
        node: NodeId,
        asn: Asn,
        routes: Vec<Route>,
        until: Millis,
    ) {
        let idx = self.ensure_peer_for_restore(now, node, asn);
        for r in routes {
            self.receive_path(idx, r, true);
        }
        if let Some(p) = self.peer_mut(idx) {
            p.stale_until = Some(until);
        }
    }

    /// Re-runs import policy over every pre-policy path (policy reload).
    pub(super) fn reload_policy(&mut self, policy: Arc<dyn RoutePolicy>) {
        self.policy = policy;
        // Gather the pre-policy view of every peer, then feed it back in.
        let mut all: Vec<(PeerIdx, Route, bool)> = Vec::new();
        for (i, slot) in self.peers.iter().enumerate() {
            let Some(p) = slot else { continue };
            let idx = PeerIdx(i as u32);
            for (k, pre) in &p.rib.pre_policy {
                all.push((
                    idx,
                    Route {
                        prefix: k.prefix.clone(),
                        path_id: k.path_id,
                        attrs: pre.attrs.clone(),
                        proof: pre.proof.clone(),
                    },
                    false,
                ));
            }
        }
        for (prefix, d) in &self.rib.dests {
            for c in &d.candidates {
                if c.peer == PeerIdx::LOCAL {
                    continue;
                }
                let key = RouteKey {
                    prefix: prefix.clone(),
                    path_id: c.path_id,
                };
                let has_pre = self
                    .peer(c.peer)
                    .is_some_and(|p| p.rib.pre_policy.contains_key(&key));
                if !has_pre {
                    all.push((c.peer, candidate_route(prefix, c), c.stale));
                }
            }
        }
        // Re-imported without re-recording the unchanged pre-policy view;
        // the best paths that change are recorded.
        self.reimporting = true;
        for (idx, route, stale) in all {
            self.receive_path(idx, route, stale);
        }
        self.reimporting = false;
        // Export policy may have changed too: every prefix gets re-exported.
        let prefixes: Vec<Prefix> = self.rib.dests.keys().cloned().collect();
        for p in prefixes {
            self.rib.mark_dirty(&p);
        }
    }
}

/// The identity of a best path, for change detection: where it came from
/// and the addresses of its attribute set and proof. Addresses suffice: all
/// candidate attribute sets are held by the interner until the next garbage
/// collection (which never runs between a snapshot and its comparison), and
/// a replacing route's proof is allocated while the old one is still alive.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct BestSnapshot {
    peer: PeerIdx,
    path_id: PathId,
    attrs: usize,
    proof: usize,
    /// A best path turning stale (or fresh again) is a change: it stops
    /// (or starts) being offered to calls, the front and other peers.
    stale: bool,
}

impl BestSnapshot {
    fn of(c: &Candidate) -> Self {
        BestSnapshot {
            peer: c.peer,
            path_id: c.path_id,
            attrs: Arc::as_ptr(&c.attrs) as usize,
            proof: c.proof.as_ref().map_or(0, |p| Arc::as_ptr(p) as usize),
            stale: c.stale,
        }
    }
}

/// Why a path can never be selected here, if it cannot.
fn exclusion(cfg: &DecisionConfig, attrs: &PathAttrs, learned: Learned) -> Option<Exclusion> {
    let view = PathView {
        attrs,
        learned,
        peer: None,
        path_id: 0,
        stale: false,
    };
    eligibility(cfg, &view).err()
}

/// The decision process and its bookkeeping for one prefix, over borrowed
/// parts of the engine (the table entry itself is borrowed separately).
pub(super) struct Settle<'a> {
    peers: &'a [Option<Peer>],
    decision: &'a DecisionConfig,
    loc_index: &'a mut PrefixSet,
    dirty: &'a mut Vec<Prefix>,
    stats: &'a mut EngineStats,
    changes: Option<&'a mut Vec<RibChange>>,
    aggregates: &'a mut [Aggregate],
}

impl Settle<'_> {
    /// Selects the best path; when it differs from `old`, updates the
    /// Loc-RIB index, records the change, marks the prefix for export and
    /// flags covering aggregates.
    pub(super) fn run(&mut self, prefix: &Prefix, dest: &mut Dest, old: Option<BestSnapshot>) {
        self.stats.decision_runs += 1;
        let peers = self.peers;
        let best = {
            // Only eligible paths compete; `index` maps back to candidates.
            let mut index: SmallVec<[u32; 8]> = SmallVec::new();
            let views: SmallVec<[PathView<'_>; 8]> = dest
                .candidates
                .iter()
                .enumerate()
                .filter(|(_, c)| c.excluded.is_none())
                .map(|(i, c)| {
                    index.push(i as u32);
                    PathView {
                        attrs: &c.attrs,
                        learned: c.learned,
                        peer: peers
                            .get(c.peer.0 as usize)
                            .and_then(|p| p.as_ref())
                            .map(|p| &p.cfg.node),
                        path_id: c.path_id,
                        stale: c.stale,
                    }
                })
                .collect();
            best_index_of_eligible(self.decision, &views).map(|i| index[i])
        };
        dest.best = best.unwrap_or(Dest::NO_BEST);
        let changed = old != dest.best().map(BestSnapshot::of);
        if !changed {
            return;
        }
        self.stats.best_changes += 1;
        match (old.is_some(), dest.has_best()) {
            (false, true) => {
                self.loc_index.insert(prefix);
            }
            (true, false) => {
                self.loc_index.remove(prefix);
            }
            _ => {}
        }
        if let Some(changes) = self.changes.as_mut() {
            changes.push(RibChange::Loc {
                prefix: prefix.clone(),
                best: dest.best().map(|c| candidate_route(prefix, c)),
            });
        }
        if !dest.dirty {
            dest.dirty = true;
            self.dirty.push(prefix.clone());
        }
        for agg in self.aggregates.iter_mut() {
            if agg.cfg.prefix != *prefix && agg.cfg.prefix.covers(prefix) {
                agg.needs_recompute = true;
            }
        }
    }
}

pub(super) fn snapshot(d: &Dest) -> Option<BestSnapshot> {
    d.best().map(BestSnapshot::of)
}

fn opt_ptr_eq(a: &Option<Arc<RouteProof>>, b: &Option<Arc<RouteProof>>) -> bool {
    match (a, b) {
        (None, None) => true,
        (Some(x), Some(y)) => Arc::ptr_eq(x, y),
        _ => false,
    }
}

/// Attribute identity for change detection: same allocation or same content.
pub(super) fn attrs_same(a: &Arc<PathAttrs>, b: &Arc<PathAttrs>) -> bool {
    Arc::ptr_eq(a, b) || **a == **b
}

pub(super) fn proof_same(a: &Option<Arc<RouteProof>>, b: &Option<Arc<RouteProof>>) -> bool {
    opt_ptr_eq(a, b) || a == b
}

/// The node whose path signature precedes a transparent route server's
/// (the last signature, pcount 0): the client that announced the route to
/// the route server.
fn announcer_before_route_server(proof: &RouteProof) -> Option<NodeId> {
    let (last, before) = proof.path.split_last()?;
    if last.pcount != 0 {
        return None;
    }
    Some(before.last()?.cert.node)
}
