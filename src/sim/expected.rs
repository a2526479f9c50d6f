//! The routing a converged network must reach, computed independently of
//! the engines: from the topology alone, by graph search.
//!
//! With Gao-Rexford policies a node prefers a route from a customer over
//! one from a peer over one from a provider, then the shortest; routes go
//! up from customers to providers, across at most one peer link, then
//! down. The stable state (Gao and Rexford, 2001) is found in three
//! passes: customer routes by a breadth-first search up the providers from
//! the origin, peer routes one peer link from those, and provider routes
//! by a shortest-path search down from every node that has a route. With
//! open policies (no roles) every node takes a shortest path.
//!
//! Only the class and the length are fixed by the policies; among equal
//! routes the engines break ties as they like, so those are what a run is
//! checked against.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap, VecDeque};

use serde::Serialize;

use super::topology::{Relation, Topology};

/// Where a node's best route comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Class {
    /// The node originates the prefix.
    Origin,
    Customer,
    Peer,
    Provider,
    /// Open policies: no class.
    Any,
}

/// A node's expected best route: its class and AS-path length.
pub type Expected = Option<(Class, usize)>;

/// Neighbours of each node by the relation they hold to it.
struct Adj {
    customers: Vec<Vec<usize>>,
    providers: Vec<Vec<usize>>,
    peers: Vec<Vec<usize>>,
}

fn adjacency(t: &Topology) -> Adj {
    let mut a = Adj {
        customers: vec![Vec::new(); t.n],
        providers: vec![Vec::new(); t.n],
        peers: vec![Vec::new(); t.n],
    };
    for e in &t.edges {
        match e.rel {
            Relation::ProviderOf => {
                a.customers[e.a].push(e.b);
                a.providers[e.b].push(e.a);
            }
            Relation::Peer => {
                a.peers[e.a].push(e.b);
                a.peers[e.b].push(e.a);
            }
        }
    }
    a
}

/// Gao-Rexford routing towards `origin` on `t` (the topology as it stands:
/// links that are down and nodes that are dead left out).
pub fn gao_rexford(t: &Topology, origin: usize) -> Vec<Expected> {
    let adj = adjacency(t);
    let mut out: Vec<Expected> = vec![None; t.n];
    if origin >= t.n {
        return out;
    }
    out[origin] = Some((Class::Origin, 0));
    // Up: customer routes.
    let mut up: Vec<Option<usize>> = vec![None; t.n];
    up[origin] = Some(0);
    let mut q = VecDeque::from([origin]);
    while let Some(u) = q.pop_front() {
        let d = up[u].unwrap_or(0);
        for &p in &adj.providers[u] {
            if up[p].is_none() {
                up[p] = Some(d + 1);
                out[p] = Some((Class::Customer, d + 1));
                q.push_back(p);
            }
        }
    }
    // Across: one peer link from a node with a customer route (or the
    // origin), which exports it to its peers.
    for (v, slot) in out.iter_mut().enumerate() {
        if slot.is_some() {
            continue;
        }
        let best = adj.peers[v].iter().filter_map(|&u| up[u]).min();
        if let Some(d) = best {
            *slot = Some((Class::Peer, d + 1));
        }
    }
    // Down: every node exports its best route to its customers.
    let mut heap: BinaryHeap<Reverse<(usize, usize)>> = BinaryHeap::new();
    for (v, e) in out.iter().enumerate() {
        if let Some((_, d)) = e {
            heap.push(Reverse((*d, v)));
        }
    }
    let mut done = vec![false; t.n];
    while let Some(Reverse((d, u))) = heap.pop() {
        if done[u] {
            continue;
        }
        done[u] = true;
        for &c in &adj.customers[u] {
            let better = match out[c] {
                None => true,
                Some((Class::Provider, old)) => d + 1 < old,
                Some(_) => false,
            };
            if better {
                out[c] = Some((Class::Provider, d + 1));
                heap.push(Reverse((d + 1, c)));
            }
        }
    }
    out
}

/// Shortest paths towards `origin`, every link open both ways.
pub fn shortest(t: &Topology, origin: usize) -> Vec<Expected> {
    let mut adj = vec![Vec::new(); t.n];
    for e in &t.edges {
        adj[e.a].push(e.b);
        adj[e.b].push(e.a);
    }
    let mut out: Vec<Expected> = vec![None; t.n];
    if origin >= t.n {
        return out;
    }
    out[origin] = Some((Class::Origin, 0));
    let mut q = VecDeque::from([origin]);
    while let Some(u) = q.pop_front() {
        let d = out[u].map_or(0, |(_, d)| d);
        for &v in &adj[u] {
            if out[v].is_none() {
                out[v] = Some((Class::Any, d + 1));
                q.push_back(v);
            }
        }
    }
    out
}

/// The class of a route each node learns from each neighbour:
/// `(me, from)` to class.
pub fn classes(t: &Topology) -> HashMap<(usize, usize), Class> {
    let mut m = HashMap::with_capacity(2 * t.edges.len());
    for e in &t.edges {
        let (ab, ba) = match e.rel {
            Relation::Peer => (Class::Peer, Class::Peer),
            // a hears b, its customer; b hears a, its provider.
            Relation::ProviderOf => (Class::Customer, Class::Provider),
        };
        m.insert((e.a, e.b), ab);
        m.insert((e.b, e.a), ba);
    }
    m
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sim::topology::Edge;

    fn t(n: usize, edges: &[(usize, usize, Relation)]) -> Topology {
        Topology {
            n,
            edges: edges
                .iter()
                .map(|&(a, b, rel)| Edge { a, b, rel })
                .collect(),
        }
    }

    #[test]
    fn customer_beats_a_shorter_provider_route_and_valleys_are_closed() {
        use Relation::*;
        // 0 and 1 are peers at the top; 2 is 0's customer, 3 is 1's; 4 is
        // a customer of both 2 and 3; 5 is 3's customer. 4 originates.
        let topo = t(
            6,
            &[
                (0, 1, Peer),
                (0, 2, ProviderOf),
                (1, 3, ProviderOf),
                (2, 4, ProviderOf),
                (3, 4, ProviderOf),
                (3, 5, ProviderOf),
            ],
        );
        let e = gao_rexford(&topo, 4);
        assert_eq!(e[4], Some((Class::Origin, 0)));
        assert_eq!(e[2], Some((Class::Customer, 1)));
        assert_eq!(e[0], Some((Class::Customer, 2)));
        assert_eq!(e[1], Some((Class::Customer, 2)));
        assert_eq!(e[5], Some((Class::Provider, 2)));
        // 2 originates instead: 3 hears it from 1 (its provider), never
        // from 4 (a customer does not give transit between providers).
        let e = gao_rexford(&topo, 2);
        assert_eq!(e[1], Some((Class::Peer, 2)));
        assert_eq!(e[3], Some((Class::Provider, 3)));
        assert_eq!(e[4], Some((Class::Provider, 1)));
        assert_eq!(e[5], Some((Class::Provider, 4)));
    }

    #[test]
    fn peer_routes_do_not_cross_two_peer_links() {
        use Relation::*;
        let topo = t(3, &[(0, 1, Peer), (1, 2, Peer)]);
        let e = gao_rexford(&topo, 0);
        assert_eq!(e[1], Some((Class::Peer, 1)));
        assert_eq!(e[2], None);
        assert_eq!(shortest(&topo, 0)[2], Some((Class::Any, 2)));
        assert_eq!(classes(&topo).get(&(1, 0)), Some(&Class::Peer));
    }
}
