//! The send side: for every dirty prefix, decide what each established peer
//! should now hear (export rules, well-known communities, export policy,
//! AS-path and reflection transforms), diff it against the Adj-RIB-Out, and
//! batch the differences into one UPDATE per peer.

use std::sync::Arc;

use super::super::attrs::{
    DEFAULT_LOCAL_PREF, MAX_AS_SET, MAX_CLUSTER_LIST, MAX_COMMUNITIES, MAX_EXTRA_ATTRS,
    MAX_PATH_LEN, PathAttrs,
};
use super::super::community::Community;
use super::super::decision::Learned;
use super::super::ids::{Millis, NodeId};
use super::super::message::Update;
use super::super::prefix::Prefix;
use super::super::proof::RouteProof;
use super::super::rib::{Candidate, OutEntry, PeerIdx};
use super::super::role;
use super::super::route::{Route, RouteKey};
use super::super::session::Event as SessionEvent;
use super::import::{attrs_same, proof_same};
use super::peer::{Peer, PeerInfo};
use super::{Action, Engine, RibChange};

/// Why a best path is not advertised to a peer (for tests and the CLI).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NotExported {
    SessionDown,
    LearnedFromPeer,
    NoAdvertise,
    NoExport,
    InternalToInternal,
    PeerAsInPath,
    SuppressedByAggregate,
    /// Marked only-to-customer, and the peer is our provider, a lateral
    /// peer or our route server (RFC 9234).
    OnlyToCustomer,
    /// Our AS would make the path longer than the wire carries
    /// ([`MAX_PATH_LEN`]), or an aggregate's AS set is larger than it
    /// carries ([`MAX_AS_SET`]).
    PathTooLong,
    /// Reflecting would make the cluster list longer than the wire carries
    /// ([`MAX_CLUSTER_LIST`]).
    ClusterListTooLong,
    /// Policy left more communities or extra attributes on the route than
    /// the wire carries ([`MAX_COMMUNITIES`], [`MAX_EXTRA_ATTRS`]).
    TooManyAttributes,
    Policy,
    NoRoute,
}

impl NotExported {
    /// The reason in words.
    pub fn describe(self) -> &'static str {
        match self {
            NotExported::SessionDown => "session not established",
            NotExported::LearnedFromPeer => "learned from this peer",
            NotExported::NoAdvertise => "NO_ADVERTISE community",
            NotExported::NoExport => "NO_EXPORT community (peer in another AS)",
            NotExported::InternalToInternal => {
                "learned from an internal peer; not reflected to another internal peer"
            }
            NotExported::PeerAsInPath => "the peer's AS is already in the AS path",
            NotExported::SuppressedByAggregate => "suppressed by an aggregate",
            NotExported::OnlyToCustomer => {
                "marked only-to-customer, and the peer is our provider, a lateral peer or our route server"
            }
            NotExported::PathTooLong => {
                "the AS path (or AS set) would grow past the longest the wire carries"
            }
            NotExported::ClusterListTooLong => {
                "the cluster list would grow past the longest the wire carries"
            }
            NotExported::TooManyAttributes => {
                "more communities or extra attributes than the wire carries"
            }
            NotExported::Policy => "rejected by export policy",
            NotExported::NoRoute => "no best path",
        }
    }

    /// A short stable name (JSON, scripts).
    pub fn name(self) -> &'static str {
        match self {
            NotExported::SessionDown => "session-down",
            NotExported::LearnedFromPeer => "learned-from-peer",
            NotExported::NoAdvertise => "no-advertise",
            NotExported::NoExport => "no-export",
            NotExported::InternalToInternal => "internal-to-internal",
            NotExported::PeerAsInPath => "peer-as-in-path",
            NotExported::SuppressedByAggregate => "suppressed-by-aggregate",
            NotExported::OnlyToCustomer => "only-to-customer",
            NotExported::PathTooLong => "path-too-long",
            NotExported::ClusterListTooLong => "cluster-list-too-long",
            NotExported::TooManyAttributes => "too-many-attributes",
            NotExported::Policy => "policy",
            NotExported::NoRoute => "no-route",
        }
    }
}

/// A live peer as the export pass sees it, computed once per flush.
struct Target {
    idx: PeerIdx,
    info: PeerInfo,
}

impl Engine {
    /// Turns everything dirty into UPDATEs (at most one per peer unless it
    /// exceeds the size limit) and returns all pending actions.
    pub fn flush(&mut self, now: Millis) -> Vec<Action> {
        self.recompute_aggregates();
        let dirty = std::mem::take(&mut self.rib.dirty);
        let targets: Vec<Target> = self
            .peers
            .iter()
            .enumerate()
            .filter_map(|(i, p)| {
                let p = p.as_ref()?;
                p.is_established().then(|| Target {
                    idx: PeerIdx(i as u32),
                    info: p.info(),
                })
            })
            .collect();
        for prefix in &dirty {
            self.export_dest(prefix, &targets);
        }
        self.maybe_collect_garbage();
        let max = self.cfg.max_routes_per_update.max(1);
        let mrai = Mrai {
            interval_ms: u64::try_from(self.cfg.mrai.as_millis()).unwrap_or(u64::MAX),
            withdrawals: self.cfg.mrai_withdrawals,
            seed: self.cfg.seed,
        };
        let mut sends: Vec<(PeerIdx, Update)> = Vec::new();
        for (i, slot) in self.peers.iter_mut().enumerate() {
            let Some(peer) = slot else { continue };
            let mut q = std::mem::take(&mut peer.outq);
            let eor = std::mem::take(&mut peer.send_eor);
            if !peer.is_established() {
                continue;
            }
            // Tombstones are never held by the advertisement interval:
            // they go at once, with whatever withdrawal goes now.
            let tombstones = std::mem::take(&mut q.tombstones);
            let chunks = match mrai.gate(now, peer, q, eor) {
                Some((q, eor)) => chunk(q, eor, max),
                None => Vec::new(),
            };
            for m in with_tombstones(chunks, tombstones) {
                sends.push((PeerIdx(i as u32), m));
            }
        }
        for (idx, mut m) in sends {
            self.mark_unreachable(idx, &mut m);
            self.stats.updates_out += 1;
            self.stats.routes_out += m.announce.len() as u64;
            self.stats.withdrawals_out += m.withdraw.len() as u64;
            // Through the session, which counts it and drops it if the
            // session went down in the same burst.
            self.session_event(now, idx, SessionEvent::SendUpdate(m));
        }
        let mut actions = std::mem::take(&mut self.pending);
        if self.cfg.emit_rib_changes && !self.changes.is_empty() {
            actions.push(Action::RibChanges(std::mem::take(&mut self.changes)));
        }
        actions
    }

    /// On a session that negotiated the unreachable signal with another AS,
    /// lists the withdrawn prefixes this node has no route to at all
    /// (`unreachable`): the peer then drops every path through our AS at
    /// once instead of exploring them.
    fn mark_unreachable(&mut self, idx: PeerIdx, m: &mut Update) {
        let signals = self.peer(idx).is_some_and(|p| p.unreachable && !p.internal);
        if !signals || m.withdraw.is_empty() {
            return;
        }
        let mut named = std::collections::HashSet::new();
        m.unreachable = m
            .withdraw
            .iter()
            .filter(|k| self.rib.dests.get(&k.prefix).is_none_or(|d| !d.has_best()))
            .filter(|k| named.insert(&k.prefix))
            .map(|k| k.prefix.clone())
            .collect();
        self.stats.unreachable_out += m.unreachable.len() as u64;
    }

    /// Recomputes what each target should hear for one prefix and queues
    /// the differences.
    fn export_dest(&mut self, prefix: &Prefix, targets: &[Target]) {
        let suppressed = self.suppressed_by_aggregate(prefix);
        let Engine {
            rib,
            peers,
            policy,
            interner,
            export_cache,
            cfg,
            changes,
            ..
        } = self;
        let Some(dest) = rib.dests.get_mut(prefix) else {
            return;
        };
        dest.dirty = false;
        let best = dest.best().cloned();
        let source = best
            .as_ref()
            .and_then(|b| peers.get(b.peer.0 as usize))
            .and_then(|p| p.as_ref())
            .map(|p| (p.cfg.node, p.cfg.rr_client));
        let record = cfg.emit_rib_changes && cfg.emit_adj_rib_changes;
        for t in targets {
            let wanted = match &best {
                // A stale best path (its peer's transport is gone) is not
                // advertised onward: it is withdrawn, and announced again
                // when the peer re-sends it (docs/protocol.md).
                Some(b) if !suppressed && !b.stale => {
                    let ctx = ExportCtx {
                        cfg,
                        policy: policy.as_ref(),
                        peers,
                        source,
                    };
                    ctx.route_for(prefix, b, t, interner, export_cache).ok()
                }
                _ => None,
            };
            let Some(peer) = peers.get_mut(t.idx.0 as usize).and_then(|p| p.as_mut()) else {
                continue;
            };
            let pos = dest.out.iter().position(|o| o.peer == t.idx);
            match (wanted, pos) {
                (Some((attrs, proof)), Some(i)) => {
                    let o = &mut dest.out[i];
                    if attrs_same(&o.attrs, &attrs) && proof_same(&o.proof, &proof) {
                        continue;
                    }
                    o.attrs = attrs.clone();
                    o.proof = proof.clone();
                    queue_announce(peer, prefix, attrs, proof, record, changes);
                }
                (Some((attrs, proof)), None) => {
                    dest.push_out(OutEntry {
                        peer: t.idx,
                        attrs: attrs.clone(),
                        proof: proof.clone(),
                    });
                    queue_announce(peer, prefix, attrs, proof, record, changes);
                }
                (None, Some(i)) => {
                    dest.out.swap_remove(i);
                    peer.outq.withdraw.push(RouteKey::new(prefix.clone()));
                    if record {
                        changes.push(RibChange::AdjOut {
                            peer: peer.cfg.node,
                            prefix: prefix.clone(),
                            route: None,
                        });
                    }
                }
                (None, None) => {}
            }
        }
        if dest.is_empty() {
            rib.dests.remove(prefix);
        }
    }

    /// Why the best path for `prefix` is or is not advertised to `peer`
    /// (for the CLI's "why").
    pub fn export_decision(
        &mut self,
        prefix: &Prefix,
        peer: &NodeId,
    ) -> Result<Route, NotExported> {
        let idx = self.idx(peer).ok_or(NotExported::SessionDown)?;
        let p = self.peer(idx).ok_or(NotExported::SessionDown)?;
        if !p.is_established() {
            return Err(NotExported::SessionDown);
        }
        let t = Target {
            idx,
            info: p.info(),
        };
        if self.suppressed_by_aggregate(prefix) {
            return Err(NotExported::SuppressedByAggregate);
        }
        let best = self
            .rib
            .dests
            .get(prefix)
            .and_then(|d| d.best())
            .filter(|b| !b.stale)
            .cloned()
            .ok_or(NotExported::NoRoute)?;
        let source = self.peer(best.peer).map(|p| (p.cfg.node, p.cfg.rr_client));
        let Engine {
            peers,
            policy,
            interner,
            export_cache,
            cfg,
            ..
        } = self;
        let ctx = ExportCtx {
            cfg,
            policy: policy.as_ref(),
            peers,
            source,
        };
        let (attrs, proof) = ctx.route_for(prefix, &best, &t, interner, export_cache)?;
        Ok(Route {
            prefix: prefix.clone(),
            path_id: 0,
            attrs,
            proof,
        })
    }

    /// Queues the whole table for a peer whose session just came up,
    /// followed by an end-of-RIB marker.
    pub(super) fn dump_to(&mut self, target: PeerIdx) {
        let Some(info) = self.peer(target).map(|p| p.info()) else {
            return;
        };
        let targets = [Target { idx: target, info }];
        let prefixes: Vec<Prefix> = self
            .rib
            .dests
            .iter()
            .filter(|(_, d)| d.has_best())
            .map(|(p, _)| p.clone())
            .collect();
        for p in prefixes {
            // Export to this peer only; other peers' entries are untouched
            // because the prefix is not re-marked dirty.
            let was_dirty = self.rib.dests.get(&p).is_some_and(|d| d.dirty);
            self.export_dest(&p, &targets);
            if was_dirty && let Some(d) = self.rib.dests.get_mut(&p) {
                d.dirty = true;
            }
        }
        if let Some(peer) = self.peer_mut(target) {
            peer.send_eor = true;
        }
    }

    /// Forgets what was advertised to a peer, so the next dump re-sends all.
    pub(super) fn clear_adj_out(&mut self, target: PeerIdx) {
        for d in self.rib.dests.values_mut() {
            d.out.retain(|o| o.peer != target);
        }
    }

    /// Drops cached export transforms and interned attribute sets nobody
    /// uses any more, once they have grown enough to be worth a sweep.
    fn maybe_collect_garbage(&mut self) {
        let size = self.interner.len() + self.export_cache.len();
        if size > 2 * self.gc_watermark + 4096 {
            self.collect_garbage();
        }
    }

    /// Drops interned attribute sets and cached transforms nobody uses.
    pub fn collect_garbage(&mut self) -> usize {
        // An input held only by the cache and the interner is unused.
        self.export_cache
            .retain(|_, (input, _)| Arc::strong_count(input) > 2);
        let n = self.interner.collect();
        self.gc_watermark = self.interner.len() + self.export_cache.len();
        n
    }
}

/// Cached transforms towards other ASes, keyed by the address of the input
/// attribute set (kept alive in the value so the address stays unique).
pub(super) type ExportCache = super::super::rib::FastMap<usize, (Arc<PathAttrs>, Arc<PathAttrs>)>;

struct ExportCtx<'a> {
    cfg: &'a super::EngineConfig,
    policy: &'a dyn super::RoutePolicy,
    peers: &'a [Option<Peer>],
    /// Node id and reflector-client flag of the peer the best path came from.
    source: Option<(NodeId, bool)>,
}

impl ExportCtx<'_> {
    /// The route as it would go to `t`, or why it does not. What leaves
    /// must fit the wire's bounds: an UPDATE that does not encode is lost
    /// whole, with the other routes in it, and the peer keeps what it had.
    fn route_for(
        &self,
        prefix: &Prefix,
        best: &Candidate,
        t: &Target,
        interner: &mut super::super::attrs::AttrInterner,
        cache: &mut ExportCache,
    ) -> Result<(Arc<PathAttrs>, Option<Arc<RouteProof>>), NotExported> {
        let info = &t.info;
        if best.peer == t.idx {
            return Err(NotExported::LearnedFromPeer);
        }
        let a = &best.attrs;
        if a.has_community(&Community::NO_ADVERTISE) {
            return Err(NotExported::NoAdvertise);
        }
        if !info.internal && a.has_community(&Community::NO_EXPORT) {
            return Err(NotExported::NoExport);
        }
        let reflected = info.internal && best.learned == Learned::Internal;
        if reflected {
            // iBGP split horizon, relaxed by route reflection.
            let reflector = self.cfg.cluster_id.is_some();
            let from_client = self.source.is_some_and(|(_, c)| c);
            let to_client = self
                .peers
                .get(t.idx.0 as usize)
                .and_then(|p| p.as_ref())
                .is_some_and(|p| p.cfg.rr_client);
            if !reflector || !(from_client || to_client) {
                return Err(NotExported::InternalToInternal);
            }
        }
        if !info.internal && a.path_contains(info.asn) {
            return Err(NotExported::PeerAsInPath);
        }
        if info.local_role.is_some_and(|r| role::blocks_export(r, a)) {
            return Err(NotExported::OnlyToCustomer);
        }
        let mut attrs = best.attrs.clone();
        if !self.policy.export(info, prefix, &mut attrs) {
            return Err(NotExported::Policy);
        }
        let modified = !Arc::ptr_eq(&attrs, &best.attrs);
        if modified {
            // Shared, so the transform cache below hits for it next time.
            attrs = interner.intern(attrs);
        }
        if self.route_server_relay(best, t) {
            // A transparent route server (RFC 7947): the route goes on as
            // an AS border would send it, but without our ASN, and names
            // the client that announced it as the next hop for calls.
            let m = Arc::make_mut(&mut attrs);
            m.local_pref = DEFAULT_LOCAL_PREF;
            m.originator = None;
            m.cluster_list.clear();
            m.extra.retain(|_, x| x.transitive);
            m.next_hop = self.source.map(|(n, _)| n);
            let out = self.otc_mark(info, interner.intern(attrs), interner);
            return leaving(out, best);
        }
        if attrs.next_hop.is_some() {
            // A route server's next hop is for us alone: calls from our
            // peers come to us, and we send them on to it.
            Arc::make_mut(&mut attrs).next_hop = None;
            attrs = interner.intern(attrs);
        }
        let out = if !info.internal {
            let key = Arc::as_ptr(&attrs) as usize;
            let out = match cache.get(&key) {
                Some((_, out)) => out.clone(),
                None => {
                    let input = attrs.clone();
                    let m = Arc::make_mut(&mut attrs);
                    m.as_path.insert(0, self.cfg.asn);
                    m.local_pref = DEFAULT_LOCAL_PREF;
                    m.originator = None;
                    m.cluster_list.clear();
                    m.extra.retain(|_, x| x.transitive);
                    let out = interner.intern(attrs);
                    cache.insert(key, (input, out.clone()));
                    out
                }
            };
            self.otc_mark(info, out, interner)
        } else if reflected {
            let m = Arc::make_mut(&mut attrs);
            if m.originator.is_none() {
                m.originator = self.source.map(|(n, _)| n);
            }
            if let Some(c) = self.cfg.cluster_id {
                m.cluster_list.insert(0, c);
            }
            interner.intern(attrs)
        } else {
            attrs
        };
        leaving(out, best)
    }
}

/// The route that leaves with `attrs`, if they fit the wire.
fn leaving(
    attrs: Arc<PathAttrs>,
    best: &Candidate,
) -> Result<(Arc<PathAttrs>, Option<Arc<RouteProof>>), NotExported> {
    fits_wire(&attrs)?;
    Ok((attrs, best.proof.clone()))
}

/// The wire's bounds on what our own steps can grow: the AS path (our
/// prepends and the policy's), an aggregate's AS set, the cluster list (a
/// reflector's id), and the communities and extra attributes policy adds.
fn fits_wire(a: &PathAttrs) -> Result<(), NotExported> {
    let as_set = a.aggregator.as_ref().map_or(0, |g| g.as_set.len());
    if a.as_path.len() > MAX_PATH_LEN || as_set > MAX_AS_SET {
        return Err(NotExported::PathTooLong);
    }
    if a.cluster_list.len() > MAX_CLUSTER_LIST {
        return Err(NotExported::ClusterListTooLong);
    }
    if a.communities.len() > MAX_COMMUNITIES || a.extra.len() > MAX_EXTRA_ATTRS {
        return Err(NotExported::TooManyAttributes);
    }
    Ok(())
}

impl ExportCtx<'_> {
    /// RFC 9234 egress: an unmarked route sent to a customer, a lateral
    /// peer or a route-server client is marked only-to-customer with our
    /// ASN (after the per-attribute-set cache: the mark depends on the
    /// peer's role).
    fn otc_mark(
        &self,
        info: &PeerInfo,
        out: Arc<PathAttrs>,
        interner: &mut super::super::attrs::AttrInterner,
    ) -> Arc<PathAttrs> {
        match info
            .local_role
            .and_then(|r| role::export_mark(r, self.cfg.asn, &out))
        {
            Some(mark) => {
                let mut marked = (*out).clone();
                marked.otc = Some(mark);
                interner.intern_owned(marked)
            }
            None => out,
        }
    }

    /// Does this node, a route server, relay `best` to `t` transparently:
    /// both are its route-server clients (in other ASes)?
    fn route_server_relay(&self, best: &Candidate, t: &Target) -> bool {
        let client = |idx: PeerIdx| {
            self.peers
                .get(idx.0 as usize)
                .and_then(|p| p.as_ref())
                .is_some_and(|p| p.cfg.route_server_client)
        };
        self.cfg.route_server
            && !t.info.internal
            && best.learned == Learned::External
            && client(best.peer)
            && client(t.idx)
    }
}

/// The minimum route advertisement interval, as the flush applies it.
struct Mrai {
    interval_ms: u64,
    withdrawals: bool,
    seed: u64,
}

impl Mrai {
    /// What goes to `peer` now of the changes `q` (and the end-of-RIB
    /// marker): everything when no interval runs; while one runs, nothing
    /// (the changes are held, the latest per route) but the withdrawals,
    /// unless those wait too. Sending an announcement starts the interval.
    fn gate(&self, now: Millis, peer: &mut Peer, q: Update, eor: bool) -> Option<(Update, bool)> {
        if self.interval_ms == 0 {
            return Some((q, eor));
        }
        let running = peer.mrai_until.is_some_and(|t| now < t);
        let mut q = q;
        if running || !peer.held.is_empty() {
            // One flush has at most one change per route: withdrawals and
            // announcements of the same burst never name the same key.
            for k in q.withdraw.drain(..) {
                peer.held.insert(k, None);
            }
            for r in q.announce.drain(..) {
                peer.held.insert(r.key(), Some(r));
            }
        }
        if running {
            if eor {
                peer.send_eor = true;
            }
            if self.withdrawals {
                return None;
            }
            let gone: Vec<RouteKey> = peer
                .held
                .iter()
                .filter(|(_, r)| r.is_none())
                .map(|(k, _)| k.clone())
                .collect();
            if gone.is_empty() {
                return None;
            }
            for k in &gone {
                peer.held.remove(k);
            }
            let w = Update {
                withdraw: gone,
                ..Update::default()
            };
            return Some((w, false));
        }
        for (k, r) in std::mem::take(&mut peer.held) {
            match r {
                Some(r) => q.announce.push(r),
                None => q.withdraw.push(k),
            }
        }
        let starts = !q.announce.is_empty() || (self.withdrawals && !q.withdraw.is_empty());
        if starts {
            peer.mrai_sent += 1;
            peer.mrai_until = Some(now.saturating_add_ms(self.jittered(peer)));
        }
        Some((q, eor))
    }

    /// The interval times a factor from 0.75 to 1 (RFC 4271 section
    /// 9.2.1.1), deterministic in the seed, the peer and the count.
    fn jittered(&self, peer: &Peer) -> u64 {
        let mut x = self.seed ^ peer.mrai_sent.wrapping_mul(0x9E37_79B9_7F4A_7C15);
        for b in &peer.cfg.node.0[..8] {
            x = (x ^ u64::from(*b)).wrapping_mul(0x0100_0000_01B3);
        }
        let quarter = self.interval_ms / 4;
        self.interval_ms - quarter + x % (quarter + 1)
    }
}

fn queue_announce(
    peer: &mut Peer,
    prefix: &Prefix,
    attrs: Arc<PathAttrs>,
    proof: Option<Arc<RouteProof>>,
    record: bool,
    changes: &mut Vec<RibChange>,
) {
    let route = Route {
        prefix: prefix.clone(),
        path_id: 0,
        attrs,
        proof,
    };
    if record {
        changes.push(RibChange::AdjOut {
            peer: peer.cfg.node,
            prefix: prefix.clone(),
            route: Some(route.clone()),
        });
    }
    peer.outq.announce.push(route);
}

/// Splits a peer's queued changes into UPDATEs of at most `max` routes
/// (announcements plus withdrawals); the end-of-RIB flag rides on the last.
fn chunk(mut q: Update, eor: bool, max: usize) -> Vec<Update> {
    let mut out = Vec::new();
    if q.announce.len() + q.withdraw.len() <= max {
        if !q.announce.is_empty() || !q.withdraw.is_empty() || eor {
            q.end_of_rib = eor;
            out.push(q);
        }
        return out;
    }
    let mut w = q.withdraw.into_iter().peekable();
    let mut a = q.announce.into_iter().peekable();
    while w.peek().is_some() || a.peek().is_some() {
        let mut u = Update::default();
        while u.withdraw.len() < max {
            match w.next() {
                Some(k) => u.withdraw.push(k),
                None => break,
            }
        }
        while u.withdraw.len() + u.announce.len() < max {
            match a.next() {
                Some(r) => u.announce.push(r),
                None => break,
            }
        }
        out.push(u);
    }
    if let Some(last) = out.last_mut() {
        last.end_of_rib = eor;
    }
    out
}

/// Puts each tombstone in the UPDATE that withdraws its prefix, or else
/// the first; with no UPDATE going, they go in one of their own.
fn with_tombstones(
    mut chunks: Vec<Update>,
    tombstones: Vec<Arc<super::super::proof::Tombstone>>,
) -> Vec<Update> {
    for t in tombstones {
        let i = chunks
            .iter()
            .position(|u| u.withdraw.iter().any(|k| k.prefix == t.prefix))
            .unwrap_or(0);
        match chunks.get_mut(i) {
            Some(u) => u.tombstones.push(t),
            None => chunks.push(Update {
                tombstones: vec![t],
                ..Update::default()
            }),
        }
    }
    chunks
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(i: usize) -> RouteKey {
        RouteKey::new(Prefix::new(&format!("p/{i}")).unwrap())
    }

    #[test]
    fn chunking_respects_the_limit_and_keeps_eor_on_the_last() {
        let q = Update {
            unreachable: Default::default(),
            tombstones: Default::default(),
            withdraw: (0..5).map(key).collect(),
            announce: Vec::new(),
            end_of_rib: false,
        };
        let out = chunk(q, true, 2);
        assert_eq!(out.len(), 3);
        assert!(out.iter().all(|u| u.withdraw.len() + u.announce.len() <= 2));
        assert!(out[2].end_of_rib && !out[0].end_of_rib);
    }

    #[test]
    fn empty_queue_with_eor_sends_a_bare_marker() {
        let out = chunk(Update::default(), true, 10);
        assert_eq!(out.len(), 1);
        assert!(out[0].end_of_rib && out[0].announce.is_empty());
        assert!(chunk(Update::default(), false, 10).is_empty());
    }
}
