//! The routing information bases.
//!
//! One table, keyed by prefix, holds for each prefix a [`Dest`]: every path
//! received for it (the post-policy Adj-RIB-In of all peers at once), the
//! selected best path (the Loc-RIB entry) and what was advertised to each peer
//! (the Adj-RIB-Out entries). Keeping the three side by side means an UPDATE
//! touches one hash entry, and per-peer views are derived by filtering.
//!
//! The pre-policy Adj-RIB-In shares storage with the post-policy one: a path
//! that import policy accepted unchanged is stored once. Only paths that
//! policy rejected or modified keep a separate pre-policy copy, in
//! [`PeerRib`].
//!
//! A [`PrefixSet`] over the prefixes that have a best path answers
//! longest-prefix-match and covered-by queries.
//!
//! Only the best path is kept up to date on every update; why each other
//! path lost is recomputed when asked (`Engine::paths`), from the same
//! deterministic decision process, so the hot path does half the comparisons.

use std::collections::HashMap;
use std::sync::Arc;

use super::attrs::PathAttrs;
use super::decision::{Exclusion, Learned};
use super::prefix::{Prefix, PrefixSet};
use super::proof::RouteProof;
use super::route::{PathId, Route, RouteKey};

pub type FastMap<K, V> = HashMap<K, V, foldhash::fast::RandomState>;

/// Index of a peer in the engine's peer table. [`PeerIdx::LOCAL`] stands for
/// this node itself (locally originated paths).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PeerIdx(pub u32);

impl PeerIdx {
    pub const LOCAL: PeerIdx = PeerIdx(0);
}

/// One path to a prefix, after import policy.
#[derive(Debug, Clone)]
pub struct Candidate {
    pub peer: PeerIdx,
    pub path_id: PathId,
    pub learned: Learned,
    pub attrs: Arc<PathAttrs>,
    pub proof: Option<Arc<RouteProof>>,
    /// Kept from a peer whose session went down during graceful restart.
    pub stale: bool,
    /// Why the path can never be selected (a loop), checked once on arrival:
    /// it depends only on the path and this node's identity.
    pub excluded: Option<Exclusion>,
}

/// What was last advertised to one peer for a prefix.
#[derive(Debug, Clone)]
pub struct OutEntry {
    pub peer: PeerIdx,
    pub attrs: Arc<PathAttrs>,
    pub proof: Option<Arc<RouteProof>>,
}

/// Everything known about one prefix.
#[derive(Debug, Clone)]
pub struct Dest {
    pub candidates: Vec<Candidate>,
    /// Index into `candidates` of the best path, [`Dest::NO_BEST`] if none.
    pub best: u32,
    /// Queued for export at the next flush.
    pub dirty: bool,
    pub out: Vec<OutEntry>,
}

impl Default for Dest {
    fn default() -> Self {
        Dest {
            candidates: Vec::new(),
            best: Self::NO_BEST,
            dirty: false,
            out: Vec::new(),
        }
    }
}

impl Dest {
    pub const NO_BEST: u32 = u32::MAX;

    pub fn best(&self) -> Option<&Candidate> {
        self.candidates.get(self.best as usize)
    }

    pub fn has_best(&self) -> bool {
        self.best != Self::NO_BEST
    }

    /// Adds a path. Grows by half rather than doubling: most prefixes have
    /// a handful of paths, and doubling leaves a quarter of the slots unused
    /// on average.
    pub fn push(&mut self, c: Candidate) {
        grow_by_half(&mut self.candidates);
        self.candidates.push(c);
    }

    pub fn push_out(&mut self, o: OutEntry) {
        grow_by_half(&mut self.out);
        self.out.push(o);
    }

    pub fn find(&self, peer: PeerIdx, path_id: PathId) -> Option<usize> {
        self.candidates
            .iter()
            .position(|c| c.peer == peer && c.path_id == path_id)
    }

    pub fn out_for(&self, peer: PeerIdx) -> Option<&OutEntry> {
        self.out.iter().find(|o| o.peer == peer)
    }

    pub fn is_empty(&self) -> bool {
        self.candidates.is_empty() && self.out.is_empty()
    }
}

fn grow_by_half<T>(v: &mut Vec<T>) {
    if v.len() == v.capacity() {
        v.reserve_exact((v.len() / 2).max(1));
    }
}

/// A path as the pre-policy Adj-RIB-In holds it when import policy rejected
/// or modified it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PrePolicy {
    pub attrs: Arc<PathAttrs>,
    pub proof: Option<Arc<RouteProof>>,
    pub accepted: bool,
}

/// Per-peer state the shared table does not hold.
#[derive(Debug, Clone, Default)]
pub struct PeerRib {
    /// Pre-policy copies of paths that import policy rejected or modified.
    pub pre_policy: FastMap<RouteKey, PrePolicy>,
    /// Paths from this peer that passed import policy (for max-prefix).
    pub accepted: u32,
}

/// The shared table.
#[derive(Debug, Default)]
pub struct Rib {
    pub dests: FastMap<Prefix, Dest>,
    /// Prefixes that currently have a best path.
    pub loc_index: PrefixSet,
    /// Prefixes whose Dest is dirty, in the order they became dirty.
    pub dirty: Vec<Prefix>,
}

impl Rib {
    pub fn mark_dirty(&mut self, prefix: &Prefix) {
        if let Some(d) = self.dests.get_mut(prefix)
            && !d.dirty
        {
            d.dirty = true;
            self.dirty.push(prefix.clone());
        }
    }

    /// Number of Loc-RIB routes (prefixes with a best path).
    pub fn loc_len(&self) -> usize {
        self.loc_index.len()
    }

    /// The best route for exactly this prefix.
    pub fn best_route(&self, prefix: &Prefix) -> Option<(Route, &Candidate)> {
        let d = self.dests.get(prefix)?;
        let c = d.best()?;
        Some((candidate_route(prefix, c), c))
    }
}

/// Rebuilds a route from a prefix and a candidate path.
pub fn candidate_route(prefix: &Prefix, c: &Candidate) -> Route {
    Route {
        prefix: prefix.clone(),
        path_id: c.path_id,
        attrs: c.attrs.clone(),
        proof: c.proof.clone(),
    }
}
