//! Watching one prefix while the network reacts to an event: the UPDATEs
//! (and their bytes) that name it, every best-path change, the distinct
//! best paths each node went through (path exploration), and the
//! forwarding state those best paths make, checked at every change for
//! transient loops (following next hops comes back to where it started)
//! and black holes (a node forwards to a neighbour that has no route).
//!
//! Fed action by action, so a run of any size can be measured without
//! keeping a log; [`super::converge`] replays a log into one.

use std::collections::{BTreeSet, HashMap, HashSet};

use serde::Serialize;

use crate::core::engine::{Action, RibChange};
use crate::core::ids::{Asn, Millis, NodeId};
use crate::core::message::Message;
use crate::core::prefix::Prefix;

/// Where a node sends traffic for the watched prefix.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Hop {
    /// It is the origin.
    Local,
    /// The neighbour its best path was learned from.
    Via(NodeId),
    /// Its best path's first AS is not a node of this network.
    Unknown,
}

/// What an event cost, for one prefix.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Convergence {
    /// From the event to the last best-path change anywhere (0: none).
    pub time_ms: u64,
    /// UPDATE messages that announced or withdrew the prefix.
    pub updates: u64,
    /// Their encoded bytes (0 when the network does not encode frames).
    pub bytes: u64,
    /// Best-path changes, over all nodes.
    pub best_changes: u64,
    /// The most distinct best paths (`None` counts as one) one node went
    /// through, and the mean over the nodes whose best path changed.
    pub max_explored: usize,
    pub mean_explored: f64,
    /// Moments at which following next hops from a node whose best path
    /// just changed came back round.
    pub transient_loops: u64,
    /// Moments at which a node forwarded to a neighbour without a route
    /// although, once converged, it had a route itself.
    pub black_holes: u64,
}

/// The running measurement of one prefix.
#[derive(Debug, Clone)]
pub struct Watch {
    /// `None`: every prefix (counts only; no paths, loops or holes).
    prefix: Option<Prefix>,
    start: Millis,
    last: Millis,
    updates: u64,
    bytes: u64,
    best_changes: u64,
    seen: HashMap<NodeId, BTreeSet<Option<Vec<Asn>>>>,
    by_asn: HashMap<Asn, NodeId>,
    fwd: HashMap<NodeId, Hop>,
    /// Who forwards to a node (the reverse of `fwd`).
    towards: HashMap<NodeId, HashSet<NodeId>>,
    loops: u64,
    /// Nodes caught forwarding into a hole, one entry per moment.
    holes: Vec<NodeId>,
}

impl Watch {
    /// Starts watching `prefix` at `start`. `by_asn` names the node behind
    /// each AS (one AS per node); `now_best` gives each node's best path
    /// before the event (the first AS of its AS path, `Some(None)` when it
    /// originates the prefix itself).
    pub fn new(
        prefix: Prefix,
        start: Millis,
        by_asn: HashMap<Asn, NodeId>,
        now_best: impl IntoIterator<Item = (NodeId, Option<Asn>)>,
    ) -> Self {
        let mut w = Watch {
            prefix: Some(prefix),
            by_asn,
            ..Watch::all(start)
        };
        for (node, first) in now_best {
            let hop = w.hop_of(first);
            w.set_hop(node, Some(hop));
        }
        w
    }

    /// Watches every prefix, counting UPDATEs, bytes and best-path
    /// changes and the time of the last (the convergence of a whole table).
    pub fn all(start: Millis) -> Self {
        Watch {
            prefix: None,
            start,
            last: start,
            updates: 0,
            bytes: 0,
            best_changes: 0,
            seen: HashMap::new(),
            by_asn: HashMap::new(),
            fwd: HashMap::new(),
            towards: HashMap::new(),
            loops: 0,
            holes: Vec::new(),
        }
    }

    fn names(&self, p: &Prefix) -> bool {
        self.prefix.as_ref().is_none_or(|w| w == p)
    }

    fn hop_of(&self, first: Option<Asn>) -> Hop {
        match first {
            None => Hop::Local,
            Some(a) => self.by_asn.get(&a).map_or(Hop::Unknown, |n| Hop::Via(*n)),
        }
    }

    fn set_hop(&mut self, node: NodeId, hop: Option<Hop>) {
        if let Some(Hop::Via(old)) = self.fwd.get(&node).copied()
            && let Some(s) = self.towards.get_mut(&old)
        {
            s.remove(&node);
        }
        match hop {
            Some(h) => {
                self.fwd.insert(node, h);
                if let Hop::Via(to) = h {
                    self.towards.entry(to).or_default().insert(node);
                }
            }
            None => {
                self.fwd.remove(&node);
            }
        }
    }

    /// An UPDATE of `bytes` encoded bytes was sent.
    pub fn on_send(&mut self, msg: &Message, bytes: usize) {
        if let Message::Update(u) = msg {
            let named = u.announce.iter().any(|r| self.names(&r.prefix))
                || u.withdraw.iter().any(|k| self.names(&k.prefix));
            if named {
                self.updates += 1;
                self.bytes += bytes as u64;
            }
        }
    }

    /// An action `node` produced at `at`.
    pub fn on_action(&mut self, at: Millis, node: NodeId, action: &Action) {
        let Action::RibChanges(changes) = action else {
            return;
        };
        for c in changes {
            if let RibChange::Loc { prefix, best } = c
                && self.names(prefix)
            {
                self.best_changes += 1;
                self.last = self.last.max(at);
                if self.prefix.is_none() {
                    continue;
                }
                let path = best.as_ref().map(|r| r.attrs.as_path.clone());
                let hop = path.as_ref().map(|p| self.hop_of(p.first().copied()));
                self.seen.entry(node).or_default().insert(path);
                self.set_hop(node, hop);
                self.check(node);
            }
        }
    }

    /// Checks the forwarding state around `node`, whose best path changed.
    fn check(&mut self, node: NodeId) {
        match self.fwd.get(&node).copied() {
            None => {
                // Whoever still forwards here now forwards into a hole.
                let upstream: Vec<NodeId> = self
                    .towards
                    .get(&node)
                    .map(|s| s.iter().copied().collect())
                    .unwrap_or_default();
                self.holes.extend(upstream);
            }
            Some(_) => {
                let mut cur = node;
                let mut visited = HashSet::new();
                loop {
                    if !visited.insert(cur) {
                        self.loops += 1;
                        return;
                    }
                    match self.fwd.get(&cur).copied() {
                        Some(Hop::Via(next)) => cur = next,
                        Some(Hop::Local | Hop::Unknown) => return,
                        None => {
                            self.holes.push(node);
                            return;
                        }
                    }
                }
            }
        }
    }

    /// The measurement so far. A black hole counts only at a node that,
    /// in the state reached now, has a route.
    pub fn result(&self) -> Convergence {
        let counts: Vec<usize> = self.seen.values().map(BTreeSet::len).collect();
        Convergence {
            time_ms: self.last.saturating_sub(self.start),
            updates: self.updates,
            bytes: self.bytes,
            best_changes: self.best_changes,
            max_explored: counts.iter().copied().max().unwrap_or(0),
            mean_explored: if counts.is_empty() {
                0.0
            } else {
                counts.iter().sum::<usize>() as f64 / counts.len() as f64
            },
            transient_loops: self.loops,
            black_holes: self
                .holes
                .iter()
                .filter(|n| self.fwd.contains_key(n))
                .count() as u64,
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::core::attrs::PathAttrs;
    use crate::core::ids::AgentId;
    use crate::core::route::Route;

    fn n(i: u64) -> NodeId {
        NodeId::from_u64(i)
    }

    fn best(path: &[u32]) -> Option<Route> {
        Some(Route::new(
            Prefix::new("p/x").unwrap(),
            Arc::new(PathAttrs {
                agent: AgentId::new("a"),
                as_path: path.iter().map(|a| Asn(*a)).collect(),
                ..Default::default()
            }),
        ))
    }

    fn change(w: &mut Watch, at: u64, node: u64, b: Option<Route>) {
        w.on_action(
            Millis(at),
            n(node),
            &Action::RibChanges(vec![RibChange::Loc {
                prefix: Prefix::new("p/x").unwrap(),
                best: b,
            }]),
        );
    }

    /// Nodes 1, 2, 3 in ASes 1, 2, 3; 3 originates; 1 goes via 2.
    fn line() -> Watch {
        let by_asn = (1..=3).map(|i| (Asn(i as u32), n(i))).collect();
        Watch::new(
            Prefix::new("p/x").unwrap(),
            Millis(0),
            by_asn,
            [(n(3), None), (n(2), Some(Asn(3))), (n(1), Some(Asn(2)))],
        )
    }

    #[test]
    fn a_loop_between_two_nodes_is_seen() {
        let mut w = line();
        // 2 loses its path through 3 and takes 1's (which still goes via 2).
        change(&mut w, 10, 2, best(&[1, 2, 3]));
        let r = w.result();
        assert_eq!(r.transient_loops, 1);
        assert_eq!(r.best_changes, 1);
        assert_eq!(r.time_ms, 10);
    }

    #[test]
    fn a_hole_counts_only_where_a_route_comes_back() {
        let mut w = line();
        // 2 loses its route while 1 still points at it: a hole at 1.
        change(&mut w, 5, 2, None);
        // 1 loses it too: a withdrawal, not a black hole.
        change(&mut w, 9, 1, None);
        assert_eq!(w.result().black_holes, 0);
        // Had 1 got a route again, the moment it pointed into 2 counts.
        change(&mut w, 12, 1, best(&[3]));
        let r = w.result();
        assert_eq!(r.black_holes, 1);
        assert_eq!(r.transient_loops, 0);
        assert_eq!(r.max_explored, 2, "1 saw none and [3]");
    }
}
