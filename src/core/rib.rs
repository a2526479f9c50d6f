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
//! A [`PrefixTrie`] over the prefixes that have a best path answers
//! longest-prefix-match and covered-by queries.

use std::collections::HashMap;
use std::sync::Arc;

use super::attrs::PathAttrs;
use super::decision::{Learned, Status};
use super::prefix::{Prefix, PrefixTrie};
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
    /// Result of the last decision run for this prefix.
    pub status: Status,
}

/// What was last advertised to one peer for a prefix.
#[derive(Debug, Clone)]
pub struct OutEntry {
    pub peer: PeerIdx,
    pub attrs: Arc<PathAttrs>,
    pub proof: Option<Arc<RouteProof>>,
}

/// Everything known about one prefix.
#[derive(Debug, Clone, Default)]
pub struct Dest {
    pub candidates: Vec<Candidate>,
    /// Index into `candidates` of the best path.
    pub best: Option<u32>,
    pub out: Vec<OutEntry>,
    /// Queued for export at the next flush.
    pub dirty: bool,
}

impl Dest {
    pub fn best(&self) -> Option<&Candidate> {
        self.best.and_then(|i| self.candidates.get(i as usize))
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
    pub loc_index: PrefixTrie<()>,
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
