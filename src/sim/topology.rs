//! Topologies for the simulator: who peers with whom, and how (a provider
//! and its customer, or two peers), generated from a seed or read from an
//! edge list, and wired onto a [`SimNet`] of real engines that apply
//! Gao-Rexford policies: neighbour roles (RFC 9234, so export is
//! valley-free) and local preference customer over peer over provider.
//!
//! Generators are deterministic: the same parameters and seed give the
//! same edges in the same order.

use std::collections::BTreeSet;
use std::sync::Arc;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use super::SimNet;
use crate::core::attrs::PathAttrs;
use crate::core::engine::{Engine, EngineConfig, Event, PeerConfig, PeerInfo, RoutePolicy};
use crate::core::ids::{Asn, Millis, NodeId};
use crate::core::prefix::Prefix;
use crate::core::role::Role;

/// How the two ends of an edge relate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Relation {
    /// `a` is `b`'s provider.
    ProviderOf,
    /// Settlement-free peers.
    Peer,
}

/// An undirected edge between nodes `a` and `b` (indices).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Edge {
    pub a: usize,
    pub b: usize,
    pub rel: Relation,
}

/// Nodes `0..n` and the edges between them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Topology {
    pub n: usize,
    pub edges: Vec<Edge>,
}

/// Why an edge list does not read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TopologyError {
    #[error("line {line}: {why}")]
    Line { line: usize, why: String },
    #[error("more than {max} nodes")]
    TooBig { max: usize },
}

/// The most nodes an edge list may name.
pub const MAX_NODES: usize = 1_000_000;

impl Topology {
    fn flat(n: usize, pairs: impl IntoIterator<Item = (usize, usize)>) -> Topology {
        let mut seen = BTreeSet::new();
        let edges = pairs
            .into_iter()
            .filter(|&(a, b)| a != b && seen.insert((a.min(b), a.max(b))))
            .map(|(a, b)| Edge {
                a,
                b,
                rel: Relation::Peer,
            })
            .collect();
        Topology { n, edges }
    }

    pub fn chain(n: usize) -> Topology {
        Self::flat(n, (1..n).map(|i| (i - 1, i)))
    }

    pub fn ring(n: usize) -> Topology {
        let mut t = Self::chain(n);
        if n > 2 {
            t.edges.push(Edge {
                a: n - 1,
                b: 0,
                rel: Relation::Peer,
            });
        }
        t
    }

    /// A `w` x `h` grid.
    pub fn grid(w: usize, h: usize) -> Topology {
        let at = |x: usize, y: usize| y * w + x;
        let mut pairs = Vec::new();
        for y in 0..h {
            for x in 0..w {
                if x + 1 < w {
                    pairs.push((at(x, y), at(x + 1, y)));
                }
                if y + 1 < h {
                    pairs.push((at(x, y), at(x, y + 1)));
                }
            }
        }
        Self::flat(w * h, pairs)
    }

    /// G(n, p): every pair linked with probability `p`.
    pub fn erdos_renyi(n: usize, p: f64, seed: u64) -> Topology {
        let mut rng = StdRng::seed_from_u64(seed);
        let mut pairs = Vec::new();
        for a in 0..n {
            for b in a + 1..n {
                if rng.gen_bool(p.clamp(0.0, 1.0)) {
                    pairs.push((a, b));
                }
            }
        }
        Self::flat(n, pairs)
    }

    /// Barabasi-Albert preferential attachment: each new node links to `m`
    /// distinct earlier nodes, chosen in proportion to their degree.
    pub fn barabasi_albert(n: usize, m: usize, seed: u64) -> Topology {
        let m = m.max(1);
        let mut rng = StdRng::seed_from_u64(seed);
        let mut pairs = Vec::new();
        // Every edge end once: picking from it is picking by degree.
        let mut ends: Vec<usize> = Vec::new();
        let start = (m + 1).min(n);
        for a in 0..start {
            for b in a + 1..start {
                pairs.push((a, b));
                ends.extend([a, b]);
            }
        }
        for v in start..n {
            let mut chosen = BTreeSet::new();
            while chosen.len() < m.min(v) {
                let u = if ends.is_empty() {
                    rng.gen_range(0..v)
                } else {
                    ends[rng.gen_range(0..ends.len())]
                };
                chosen.insert(u);
            }
            for u in chosen {
                pairs.push((u, v));
                ends.extend([u, v]);
            }
        }
        Self::flat(n, pairs)
    }

    /// An internet-like hierarchy: a clique of `tier1` providers; `regional`
    /// networks each buying from one or two tier-1s and peering with one
    /// other regional now and then; `stubs` each buying from one or two
    /// regionals (or tier-1s when there are none). Nodes are numbered
    /// tier-1 first, then regionals, then stubs.
    pub fn hierarchy(tier1: usize, regional: usize, stubs: usize, seed: u64) -> Topology {
        let mut rng = StdRng::seed_from_u64(seed);
        let tier1 = tier1.max(1);
        let mut edges: BTreeSet<Edge> = BTreeSet::new();
        // The node pairs linked so far, smaller index first: one edge per pair.
        let mut linked: BTreeSet<(usize, usize)> = BTreeSet::new();
        let mut add = |a: usize, b: usize, rel: Relation, edges: &mut BTreeSet<Edge>| {
            if a != b && linked.insert((a.min(b), a.max(b))) {
                edges.insert(Edge { a, b, rel });
            }
        };
        for a in 0..tier1 {
            for b in a + 1..tier1 {
                add(a, b, Relation::Peer, &mut edges);
            }
        }
        let pick = |rng: &mut StdRng, lo: usize, len: usize| lo + rng.gen_range(0..len);
        for r in tier1..tier1 + regional {
            let providers = 1 + usize::from(tier1 > 1 && rng.gen_bool(0.5));
            for _ in 0..providers {
                let p = pick(&mut rng, 0, tier1);
                add(p, r, Relation::ProviderOf, &mut edges);
            }
            if regional > 1 && rng.gen_bool(0.3) {
                let q = pick(&mut rng, tier1, regional);
                add(r, q, Relation::Peer, &mut edges);
            }
        }
        let (lo, len) = if regional > 0 {
            (tier1, regional)
        } else {
            (0, tier1)
        };
        for s in tier1 + regional..tier1 + regional + stubs {
            let providers = 1 + usize::from(len > 1 && rng.gen_bool(0.5));
            for _ in 0..providers {
                let p = pick(&mut rng, lo, len);
                add(p, s, Relation::ProviderOf, &mut edges);
            }
        }
        Topology {
            n: tier1 + regional + stubs,
            edges: edges.into_iter().collect(),
        }
    }

    /// Reads an edge list in the format of CAIDA's AS-relationship files:
    /// `a|b|-1` (a is b's provider) or `a|b|0` (peers), `#` comments. The
    /// AS numbers become node indices in order of first appearance; the
    /// second value is the ASN each index stands for.
    pub fn from_edge_list(text: &str) -> Result<(Topology, Vec<u32>), TopologyError> {
        let mut index: std::collections::HashMap<u32, usize> = Default::default();
        let mut asns = Vec::new();
        let mut edges = Vec::new();
        let mut seen = BTreeSet::new();
        for (i, raw) in text.lines().enumerate() {
            let line = raw.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let bad = |why: &str| TopologyError::Line {
                line: i + 1,
                why: why.to_string(),
            };
            let f: Vec<&str> = line.split('|').collect();
            if f.len() < 3 {
                return Err(bad("expected a|b|relation"));
            }
            let asn = |s: &str| {
                s.trim()
                    .parse::<u32>()
                    .map_err(|_| bad("an AS number is not a number"))
            };
            let (x, y) = (asn(f[0])?, asn(f[1])?);
            let rel = match f[2].trim() {
                "-1" => Relation::ProviderOf,
                "0" => Relation::Peer,
                _ => return Err(bad("the relation is neither -1 (provider of) nor 0 (peer)")),
            };
            if x == y {
                return Err(bad("an AS linked to itself"));
            }
            let mut idx = |asn: u32| -> Result<usize, TopologyError> {
                if let Some(&i) = index.get(&asn) {
                    return Ok(i);
                }
                if asns.len() >= MAX_NODES {
                    return Err(TopologyError::TooBig { max: MAX_NODES });
                }
                index.insert(asn, asns.len());
                asns.push(asn);
                Ok(asns.len() - 1)
            };
            let (a, b) = (idx(x)?, idx(y)?);
            if seen.insert((a.min(b), a.max(b))) {
                edges.push(Edge { a, b, rel });
            }
        }
        Ok((
            Topology {
                n: asns.len(),
                edges,
            },
            asns,
        ))
    }

    /// The role node `me` holds towards its neighbour on `e`.
    pub fn role_of(e: &Edge, me: usize) -> Role {
        match (e.rel, e.a == me) {
            (Relation::Peer, _) => Role::Peer,
            (Relation::ProviderOf, true) => Role::Provider,
            (Relation::ProviderOf, false) => Role::Customer,
        }
    }

    /// Whether every node is reachable from node 0.
    pub fn is_connected(&self) -> bool {
        if self.n == 0 {
            return true;
        }
        let mut adj = vec![Vec::new(); self.n];
        for e in &self.edges {
            adj[e.a].push(e.b);
            adj[e.b].push(e.a);
        }
        let mut seen = vec![false; self.n];
        let mut stack = vec![0];
        seen[0] = true;
        while let Some(v) = stack.pop() {
            for &u in &adj[v] {
                if !seen[u] {
                    seen[u] = true;
                    stack.push(u);
                }
            }
        }
        seen.into_iter().all(|s| s)
    }

    /// Node index `i`'s id and ASN on a net built by [`Topology::build`].
    pub fn node(i: usize) -> (NodeId, Asn) {
        (NodeId::from_u64(i as u64 + 1), Asn(64_512 + i as u32))
    }

    /// Adds one engine per node (one AS each, Gao-Rexford policies) and a
    /// session per edge with the roles the edge implies.
    pub fn build(&self, net: &mut SimNet) {
        self.build_with(net, |c| c)
    }

    /// [`Topology::build`] with each engine's settings passed through
    /// `settings` (an advertisement interval, say).
    pub fn build_with(&self, net: &mut SimNet, settings: impl Fn(EngineConfig) -> EngineConfig) {
        self.build_policy(net, true, settings)
    }

    /// With `gao` false, open policies instead of Gao-Rexford: no roles,
    /// every route accepted and advertised at one preference (for the flat
    /// generators, whose edges carry no business relation). Each engine's
    /// seed (the jitter of its timers) is its node index plus one.
    pub fn build_policy(
        &self,
        net: &mut SimNet,
        gao: bool,
        settings: impl Fn(EngineConfig) -> EngineConfig,
    ) {
        for i in 0..self.n {
            net.add_node(Self::engine_for(i, gao, &settings));
        }
        for e in &self.edges {
            let (na, _) = Self::node(e.a);
            let (nb, _) = Self::node(e.b);
            net.link(na, nb);
            net.inject(na, Event::AddPeer(Self::peer_config(e, e.a, gao)));
            net.inject(nb, Event::AddPeer(Self::peer_config(e, e.b, gao)));
        }
    }

    /// Node `i`'s engine, as [`Topology::build_policy`] makes it.
    pub fn engine_for(
        i: usize,
        gao: bool,
        settings: impl Fn(EngineConfig) -> EngineConfig,
    ) -> Engine {
        let (node, asn) = Self::node(i);
        let mut cfg = EngineConfig::new(asn, node);
        cfg.seed = i as u64 + 1;
        let engine = Engine::new(settings(cfg));
        if gao {
            engine.with_policy(Arc::new(GaoRexford))
        } else {
            engine.with_policy(Arc::new(Open))
        }
    }

    /// The session node `me` holds over `e` (to the other end).
    pub fn peer_config(e: &Edge, me: usize, gao: bool) -> PeerConfig {
        let other = if e.a == me { e.b } else { e.a };
        let (node, asn) = Self::node(other);
        let pc = PeerConfig::new(node).with_asn(asn);
        if gao {
            pc.with_role(Self::role_of(e, me), false)
        } else {
            pc
        }
    }

    /// Whether an AS path (nearest first, as node indices of this
    /// topology) is valley-free: from the origin it goes up (customer to
    /// provider) any number of times, then across one peer link at most,
    /// then only down.
    pub fn valley_free(&self, path: &[usize]) -> bool {
        // Walk from the origin towards the receiver.
        let mut descended = false;
        for w in path.iter().rev().collect::<Vec<_>>().windows(2) {
            let (from, to) = (*w[0], *w[1]);
            let Some(e) = self
                .edges
                .iter()
                .find(|e| (e.a == from && e.b == to) || (e.a == to && e.b == from))
            else {
                return false;
            };
            let up = e.rel == Relation::ProviderOf && e.b == from;
            if up && descended {
                return false;
            }
            if !up {
                if descended && e.rel == Relation::Peer {
                    return false;
                }
                descended = true;
            }
        }
        true
    }
}

/// Gao-Rexford: prefer routes from customers (local-pref 200) over those
/// from peers (100) over those from providers (50); accept and advertise
/// everything else, leaving valley-free export to the roles' only-to-
/// customer rules.
#[derive(Debug, Clone, Copy)]
pub struct GaoRexford;

impl RoutePolicy for GaoRexford {
    fn import(&self, peer: &PeerInfo, _: &Prefix, attrs: &mut Arc<PathAttrs>) -> bool {
        let pref = match peer.local_role {
            Some(Role::Provider) => 200,
            Some(Role::Customer) => 50,
            _ => 100,
        };
        if attrs.local_pref != pref {
            Arc::make_mut(attrs).local_pref = pref;
        }
        true
    }
    fn export(&self, _: &PeerInfo, _: &Prefix, _: &mut Arc<PathAttrs>) -> bool {
        true
    }
}

/// Open policies: everything accepted and advertised, at one preference.
#[derive(Debug, Clone, Copy)]
pub struct Open;

impl RoutePolicy for Open {
    fn import(&self, _: &PeerInfo, _: &Prefix, _: &mut Arc<PathAttrs>) -> bool {
        true
    }
    fn export(&self, _: &PeerInfo, _: &Prefix, _: &mut Arc<PathAttrs>) -> bool {
        true
    }
}

/// A virtual-time start for topology runs.
pub const T0: Millis = Millis(1_700_000_000_000);

#[cfg(test)]
mod tests;
