//! Tombstones: origin-signed withdrawals, relayed, against transient loops.
//!
//! A withdrawal says only "not this path from me". The receiver then falls
//! back on the other paths it holds, and when the origin has gone those
//! are dead too (they lead through the origin's other providers, which
//! have not withdrawn yet): the network explores them, and while it does,
//! forwarding loops form. The unreachable signal (`unreachable`) lets an
//! AS speak for itself only, so it cannot mark those other paths stale.
//!
//! A tombstone ([`Tombstone`], negotiated as capability 6, carried in
//! UPDATE/WITHDRAW key 6) is the origin's own statement, signed by it:
//! "my origination of this prefix up to origin time `ended` is over". The
//! node checks the signature (`crate::node::security`) before the engine
//! sees it; the engine takes it as given. On a new tombstone the engine
//! excludes every path to the prefix, from any peer, whose origin AS is
//! the tombstone's and whose origin time is at most `ended`
//! ([`Exclusion::Tombstoned`]), refuses such paths arriving later, and
//! relays the tombstone unchanged, once, to every peer it had advertised
//! the prefix to (with its own withdrawal, in the same UPDATE). A node's
//! only change is then "best path → none" (or a path of another origin),
//! so the forwarding graph during convergence stays a subgraph of the old
//! one: no loops.
//!
//! Bounds (strangers are the normal case):
//! - kept only for a prefix the node has paths for or advertised, or one
//!   the peer withdrew in the same UPDATE; one per (prefix, origin AS);
//! - at most [`MAX_TOMBSTONES`]; when full, the one that expires soonest
//!   is evicted;
//! - each lasts until its own expiry, capped at [`MAX_TOMBSTONE_TTL_MS`]
//!   past its arrival; expired ones are dropped in order
//!   ([`super::by_origin`]);
//! - a tombstone that ends no more than the one kept (same or older
//!   `ended`) is a duplicate or a replay: neither applied again nor
//!   relayed, so tombstones cannot loop or flood, and an old one cannot
//!   kill a newer origination (origin time greater than `ended`);
//! - one naming our own AS is ignored (our AS speaks for itself), as are
//!   tombstones on sessions that did not negotiate them.

use std::sync::Arc;

use smallvec::SmallVec;

use super::super::attrs::PathAttrs;
use super::super::decision::Exclusion;
use super::super::ids::{Asn, Millis};
use super::super::prefix::Prefix;
use super::super::proof::{RouteProof, Tombstone};
use super::super::rib::PeerIdx;
use super::Engine;
use super::by_origin::{ByOrigin, Lapses};
use super::import::snapshot;

/// The most tombstones kept at once.
pub const MAX_TOMBSTONES: usize = 100_000;

/// How long past its arrival a tombstone is kept at most (5 minutes),
/// whatever expiry it names.
pub const MAX_TOMBSTONE_TTL_MS: u64 = 300_000;

/// The lifetime an origin gives the tombstones it issues (2 minutes): far
/// longer than a withdrawal takes to spread, short enough that a wrong one
/// cannot hide a path for long.
pub const TOMBSTONE_TTL_MS: u64 = 120_000;

/// One kept tombstone and when it stops counting here.
#[derive(Debug, Clone)]
struct Kept {
    t: Arc<Tombstone>,
    until: Millis,
}

impl Lapses for Kept {
    fn asn(&self) -> Asn {
        self.t.asn()
    }
    fn until(&self) -> Millis {
        self.until
    }
}

/// The live tombstones, by prefix and origin AS.
#[derive(Debug, Default)]
pub(super) struct Tombstones {
    kept: ByOrigin<Kept>,
    /// At most this many kept ([`MAX_TOMBSTONES`] unless a test lowers it).
    pub(super) cap: Option<usize>,
}

/// Whether `t` ends the origination a path with `attrs` (and `proof`)
/// belongs to: same origin AS, an origin time no later than `ended`, and,
/// when the path carries an origin attestation, the same originating node.
pub(super) fn kills(t: &Tombstone, attrs: &PathAttrs, proof: Option<&RouteProof>) -> bool {
    attrs.as_path.last() == Some(&t.asn())
        && attrs.origin_time <= t.ended
        && proof.is_none_or(|p| p.origin.cert.node == t.node())
}

impl Tombstones {
    pub(super) fn next_deadline(&self) -> Option<Millis> {
        self.kept.next_deadline()
    }

    pub(super) fn is_empty(&self) -> bool {
        self.kept.is_empty()
    }

    /// How many are kept.
    pub(super) fn len(&self) -> usize {
        self.kept.len()
    }

    /// Whether a kept tombstone ends the path.
    fn matches(&self, prefix: &Prefix, attrs: &PathAttrs, proof: Option<&RouteProof>) -> bool {
        self.kept
            .at(prefix)
            .iter()
            .any(|k| kills(&k.t, attrs, proof))
    }
}

/// What became of a received tombstone.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Taken {
    /// New (or ends a later origination than the one kept): applied.
    New,
    /// Ends no more than the one kept: nothing to do, not relayed.
    Duplicate,
    /// Refused (own AS, expired, nothing held for the prefix).
    Ignored,
}

impl Engine {
    /// Tombstones that arrived from peer `idx`; `withdrawn` lists the
    /// prefixes the peer had a path for before the same UPDATE withdrew
    /// them.
    pub(super) fn on_tombstones(
        &mut self,
        idx: PeerIdx,
        tombstones: Vec<Arc<Tombstone>>,
        withdrawn: &[Prefix],
    ) {
        let negotiated = self.peer(idx).is_some_and(|p| p.tombstones);
        for t in tombstones {
            if !negotiated {
                self.stats.tombstones_ignored += 1;
                continue;
            }
            let held =
                self.rib.dests.contains_key(&t.prefix) || withdrawn.iter().any(|p| *p == t.prefix);
            match self.take_tombstone(&t, held) {
                Taken::New => {
                    self.stats.tombstones_in += 1;
                    self.exclude_killed(&t);
                    self.relay(&t, Some(idx));
                }
                Taken::Duplicate => self.stats.tombstones_duplicate += 1,
                Taken::Ignored => self.stats.tombstones_ignored += 1,
            }
        }
    }

    /// This node ended its own origination of a prefix (its route was just
    /// withdrawn with [`super::Event::WithdrawLocal`] in the same burst) and
    /// the driver signed `t`: it goes to every peer that negotiated
    /// tombstones and was sent the prefix, or to every such peer when none
    /// is left on record. Ignored unless it is ours and no local route to
    /// the prefix is left.
    pub(super) fn issue_tombstone(&mut self, t: Arc<Tombstone>) {
        let ours = t.asn() == self.cfg.asn && t.node() == self.cfg.node;
        let still_local = self
            .rib
            .dests
            .get(&t.prefix)
            .is_some_and(|d| d.candidates.iter().any(|c| c.peer == PeerIdx::LOCAL));
        if !ours || still_local {
            self.stats.tombstones_ignored += 1;
            return;
        }
        self.stats.tombstones_issued += 1;
        let advertised = self
            .rib
            .dests
            .get(&t.prefix)
            .is_some_and(|d| !d.out.is_empty());
        if advertised {
            self.relay(&t, None);
            return;
        }
        for p in self.peers.iter_mut().flatten() {
            if p.tombstones && p.is_established() {
                p.outq.tombstones.push(t.clone());
                self.stats.tombstones_out += 1;
            }
        }
    }

    /// Keeps `t` if it is new; `held` when we have paths for (or advertised,
    /// or just had withdrawn) its prefix.
    fn take_tombstone(&mut self, t: &Arc<Tombstone>, held: bool) -> Taken {
        let now = self.now;
        if t.asn() == self.cfg.asn || t.expires <= now || t.issued > t.expires {
            return Taken::Ignored;
        }
        let until = t.expires.min(now.saturating_add_ms(MAX_TOMBSTONE_TTL_MS));
        let kept = Kept {
            t: t.clone(),
            until,
        };
        let store = &mut self.tombstones;
        if let Some(k) = store.kept.get_mut(&t.prefix, t.asn()) {
            if t.ended <= k.t.ended {
                return Taken::Duplicate;
            }
            // Ends a later origination: replaces the one kept.
            store.kept.insert(t.prefix.clone(), kept);
            return Taken::New;
        }
        if !held {
            return Taken::Ignored;
        }
        if store.len() >= store.cap.unwrap_or(MAX_TOMBSTONES)
            && let Some((prefix, _)) = store.kept.pop_soonest()
        {
            self.stats.tombstones_evicted += 1;
            self.release_tombstoned(&prefix);
        }
        self.tombstones.kept.insert(t.prefix.clone(), kept);
        Taken::New
    }

    /// Excludes every path `t` ends, from every peer.
    fn exclude_killed(&mut self, t: &Tombstone) {
        let (dests, mut settle) = self.table_and_settle();
        let Some(dest) = dests.get_mut(&t.prefix) else {
            return;
        };
        let old = snapshot(dest);
        let mut changed = false;
        for c in &mut dest.candidates {
            if c.peer != PeerIdx::LOCAL
                && c.excluded.is_none()
                && kills(t, &c.attrs, c.proof.as_deref())
            {
                c.excluded = Some(Exclusion::Tombstoned);
                changed = true;
            }
        }
        if changed {
            settle.run(&t.prefix, dest, old);
        }
    }

    /// Queues `t`, unchanged, for every peer that negotiated tombstones
    /// and was sent its prefix (the withdrawals the exclusion causes go in
    /// the same UPDATE), except the one it came from.
    fn relay(&mut self, t: &Arc<Tombstone>, from: Option<PeerIdx>) {
        let Some(dest) = self.rib.dests.get(&t.prefix) else {
            return;
        };
        let targets: SmallVec<[PeerIdx; 8]> = dest
            .out
            .iter()
            .map(|o| o.peer)
            .filter(|p| Some(*p) != from)
            .collect();
        for idx in targets {
            if let Some(p) = self.peer_mut(idx)
                && p.tombstones
                && p.is_established()
            {
                p.outq.tombstones.push(t.clone());
                self.stats.tombstones_out += 1;
            }
        }
    }

    /// `Some(Tombstoned)` for a path a kept tombstone ends.
    pub(super) fn tombstoned(
        &self,
        prefix: &Prefix,
        attrs: &PathAttrs,
        proof: Option<&RouteProof>,
    ) -> Option<Exclusion> {
        if self.tombstones.is_empty() {
            return None;
        }
        self.tombstones
            .matches(prefix, attrs, proof)
            .then_some(Exclusion::Tombstoned)
    }

    /// The origin time of a route this node originates (what a tombstone
    /// for it names as `ended`).
    pub fn local_origin_time(&self, key: &super::super::route::RouteKey) -> Option<Millis> {
        let d = self.rib.dests.get(&key.prefix)?;
        d.candidates
            .iter()
            .find(|c| c.peer == PeerIdx::LOCAL && c.path_id == key.path_id)
            .map(|c| c.attrs.origin_time)
    }

    /// How many tombstones are kept.
    pub fn tombstones_kept(&self) -> usize {
        self.tombstones.len()
    }

    /// Drops the tombstones whose time is over.
    pub(super) fn expire_tombstones(&mut self, now: Millis) {
        while let Some((prefix, _)) = self.tombstones.kept.pop_lapsed(now) {
            self.release_tombstoned(&prefix);
        }
    }

    /// Paths of `prefix` excluded by tombstones that no longer stand
    /// compete again (unless another rule still excludes them).
    fn release_tombstoned(&mut self, prefix: &Prefix) {
        let Some(dest) = self.rib.dests.get(prefix) else {
            return;
        };
        let freed: SmallVec<[(usize, Option<Exclusion>); 4]> = dest
            .candidates
            .iter()
            .enumerate()
            .filter(|(_, c)| c.excluded == Some(Exclusion::Tombstoned))
            .filter(|(_, c)| {
                !self
                    .tombstones
                    .matches(prefix, &c.attrs, c.proof.as_deref())
            })
            .map(|(i, c)| (i, self.claimed_unreachable(prefix, &c.attrs.as_path)))
            .collect();
        if freed.is_empty() {
            return;
        }
        let (dests, mut settle) = self.table_and_settle();
        let Some(dest) = dests.get_mut(prefix) else {
            return;
        };
        let old = snapshot(dest);
        for (i, excluded) in freed {
            if let Some(c) = dest.candidates.get_mut(i) {
                c.excluded = excluded;
            }
        }
        settle.run(prefix, dest, old);
    }
}
