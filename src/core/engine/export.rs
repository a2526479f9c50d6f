//! The send side: for every dirty prefix, decide what each established peer
//! should now hear (export rules, well-known communities, export policy,
//! AS-path and reflection transforms), diff it against the Adj-RIB-Out, and
//! batch the differences into one UPDATE per peer.

use std::sync::Arc;

use super::super::attrs::{DEFAULT_LOCAL_PREF, PathAttrs};
use super::super::community::Community;
use super::super::decision::Learned;
use super::super::ids::Millis;
use super::super::message::Update;
use super::super::prefix::Prefix;
use super::super::rib::{Candidate, OutEntry, PeerIdx};
use super::super::route::{Route, RouteKey};
use super::super::session::Event as SessionEvent;
use super::import::{attrs_same, proof_same};
use super::peer::Peer;
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
    Policy,
}

impl Engine {
    /// Turns everything dirty into UPDATEs (at most one per peer unless it
    /// exceeds the size limit) and returns all pending actions.
    pub fn flush(&mut self, now: Millis) -> Vec<Action> {
        self.recompute_aggregates();
        let dirty = std::mem::take(&mut self.rib.dirty);
        let live: Vec<PeerIdx> = self
            .peers
            .iter()
            .enumerate()
            .filter(|(_, p)| p.as_ref().is_some_and(|p| p.is_established()))
            .map(|(i, _)| PeerIdx(i as u32))
            .collect();
        for prefix in dirty {
            let Some(dest) = self.rib.dests.get_mut(&prefix) else {
                continue;
            };
            dest.dirty = false;
            for &target in &live {
                self.export_prefix(&prefix, target);
            }
            if self.rib.dests.get(&prefix).is_some_and(|d| d.is_empty()) {
                self.rib.dests.remove(&prefix);
            }
        }
        let max = self.cfg.max_routes_per_update.max(1);
        let mut sends: Vec<(PeerIdx, Update)> = Vec::new();
        for (i, slot) in self.peers.iter_mut().enumerate() {
            let Some(peer) = slot else { continue };
            let q = std::mem::take(&mut peer.outq);
            let eor = std::mem::take(&mut peer.send_eor);
            if !peer.is_established() {
                continue;
            }
            for m in chunk(q, eor, max) {
                sends.push((PeerIdx(i as u32), m));
            }
        }
        for (idx, m) in sends {
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

    /// Recomputes what `target` should hear for `prefix` and queues the
    /// difference.
    pub(super) fn export_prefix(&mut self, prefix: &Prefix, target: PeerIdx) {
        let wanted = self.export_for(prefix, target).ok();
        let Engine {
            rib,
            peers,
            changes,
            cfg,
            ..
        } = self;
        let Some(dest) = rib.dests.get_mut(prefix) else {
            return;
        };
        let Some(peer) = peers.get_mut(target.0 as usize).and_then(|p| p.as_mut()) else {
            return;
        };
        let pos = dest.out.iter().position(|o| o.peer == target);
        match (wanted, pos) {
            (Some((attrs, proof)), Some(i)) => {
                let o = &mut dest.out[i];
                if attrs_same(&o.attrs, &attrs) && proof_same(&o.proof, &proof) {
                    return;
                }
                o.attrs = attrs.clone();
                o.proof = proof.clone();
                queue_announce(peer, prefix, attrs, proof, cfg.emit_rib_changes, changes);
            }
            (Some((attrs, proof)), None) => {
                dest.out.push(OutEntry {
                    peer: target,
                    attrs: attrs.clone(),
                    proof: proof.clone(),
                });
                queue_announce(peer, prefix, attrs, proof, cfg.emit_rib_changes, changes);
            }
            (None, Some(i)) => {
                dest.out.swap_remove(i);
                peer.outq.withdraw.push(RouteKey::new(prefix.clone()));
                if cfg.emit_rib_changes {
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

    /// The route `target` should hear for `prefix`, or why none.
    pub(super) fn export_for(
        &mut self,
        prefix: &Prefix,
        target: PeerIdx,
    ) -> Result<(Arc<PathAttrs>, Option<Arc<super::super::proof::RouteProof>>), NotExported> {
        let Some(peer) = self.peer(target) else {
            return Err(NotExported::SessionDown);
        };
        if !peer.is_established() {
            return Err(NotExported::SessionDown);
        }
        let info = peer.info();
        let Some(dest) = self.rib.dests.get(prefix) else {
            return Err(NotExported::Policy);
        };
        let Some(best) = dest.best() else {
            return Err(NotExported::Policy);
        };
        let best: Candidate = best.clone();
        self.export_checks(prefix, &best, target, peer)?;
        let mut attrs = best.attrs.clone();
        if !self.policy.export(&info, prefix, &mut attrs) {
            return Err(NotExported::Policy);
        }
        let reflect_from = (best.learned == Learned::Internal && info.internal)
            .then(|| self.node_of(best.peer))
            .flatten();
        let needs_change = !info.internal || reflect_from.is_some();
        if needs_change {
            let a = Arc::make_mut(&mut attrs);
            if info.internal {
                // Route reflection (RFC 4456).
                if a.originator.is_none() {
                    a.originator = reflect_from;
                }
                if let Some(c) = self.cfg.cluster_id {
                    a.cluster_list.insert(0, c);
                }
            } else {
                a.as_path.insert(0, self.cfg.asn);
                a.local_pref = DEFAULT_LOCAL_PREF;
                a.originator = None;
                a.cluster_list.clear();
                a.extra.retain(|_, x| x.transitive);
            }
        }
        let attrs = self.interner.intern(attrs);
        Ok((attrs, best.proof))
    }

    fn export_checks(
        &self,
        prefix: &Prefix,
        best: &Candidate,
        target: PeerIdx,
        peer: &Peer,
    ) -> Result<(), NotExported> {
        if best.peer == target {
            return Err(NotExported::LearnedFromPeer);
        }
        let a = &best.attrs;
        if a.has_community(&Community::NO_ADVERTISE) {
            return Err(NotExported::NoAdvertise);
        }
        let info = peer.info();
        if !info.internal && a.has_community(&Community::NO_EXPORT) {
            return Err(NotExported::NoExport);
        }
        if info.internal && best.learned == Learned::Internal {
            // iBGP split horizon, relaxed by route reflection.
            let reflector = self.cfg.cluster_id.is_some();
            let from_client = self.peer(best.peer).is_some_and(|p| p.cfg.rr_client);
            if !reflector || !(from_client || peer.cfg.rr_client) {
                return Err(NotExported::InternalToInternal);
            }
        }
        if !info.internal && a.path_contains(info.asn) {
            return Err(NotExported::PeerAsInPath);
        }
        if self.suppressed_by_aggregate(prefix) {
            return Err(NotExported::SuppressedByAggregate);
        }
        Ok(())
    }

    /// Queues the whole table for a peer whose session just came up,
    /// followed by an end-of-RIB marker.
    pub(super) fn dump_to(&mut self, target: PeerIdx) {
        let prefixes: Vec<Prefix> = self
            .rib
            .dests
            .iter()
            .filter(|(_, d)| d.best.is_some())
            .map(|(p, _)| p.clone())
            .collect();
        for p in prefixes {
            self.export_prefix(&p, target);
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
}

fn queue_announce(
    peer: &mut Peer,
    prefix: &Prefix,
    attrs: Arc<PathAttrs>,
    proof: Option<Arc<super::super::proof::RouteProof>>,
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

#[cfg(test)]
mod tests {
    use super::*;

    fn key(i: usize) -> RouteKey {
        RouteKey::new(Prefix::new(&format!("p/{i}")).unwrap())
    }

    #[test]
    fn chunking_respects_the_limit_and_keeps_eor_on_the_last() {
        let q = Update {
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
