//! Topology generators and Gao-Rexford routing on real engines.

use std::collections::BTreeMap;

use super::*;
use crate::core::ids::AgentId;
use crate::core::route::Route;

#[test]
fn generators_have_their_shapes_and_are_deterministic() {
    assert_eq!(Topology::chain(5).edges.len(), 4);
    assert_eq!(Topology::ring(5).edges.len(), 5);
    assert_eq!(Topology::grid(4, 3).edges.len(), 2 * 4 * 3 - 4 - 3);
    let ba = Topology::barabasi_albert(200, 2, 7);
    assert_eq!(ba.edges.len(), 3 + (200 - 3) * 2);
    assert!(ba.is_connected());
    assert_eq!(
        ba,
        Topology::barabasi_albert(200, 2, 7),
        "same seed, same graph"
    );
    assert_ne!(ba, Topology::barabasi_albert(200, 2, 8));
    let er = Topology::erdos_renyi(60, 0.1, 3);
    assert_eq!(er, Topology::erdos_renyi(60, 0.1, 3));
    assert!(
        er.edges
            .iter()
            .all(|e| e.a < e.b && e.rel == Relation::Peer)
    );
    let h = Topology::hierarchy(3, 8, 30, 11);
    assert_eq!(h, Topology::hierarchy(3, 8, 30, 11));
    assert!(h.is_connected());
    // Tier-1s form a clique of peers; every other node buys transit.
    for a in 0..3 {
        for b in a + 1..3 {
            assert!(h.edges.contains(&Edge {
                a,
                b,
                rel: Relation::Peer
            }));
        }
    }
    for v in 3..h.n {
        assert!(
            h.edges
                .iter()
                .any(|e| e.rel == Relation::ProviderOf && e.b == v),
            "node {v} has a provider"
        );
    }
}

#[test]
fn edge_lists_in_caida_format_read_and_bad_lines_are_named() {
    let (t, asns) = Topology::from_edge_list(
        "# a comment\n174|3356|0\n174|64500|-1\n3356|64501|-1\n\n64500|64501|0\n174|3356|0\n",
    )
    .unwrap();
    assert_eq!(asns, vec![174, 3356, 64500, 64501]);
    assert_eq!(t.n, 4);
    assert_eq!(t.edges.len(), 4, "the repeated edge counts once");
    assert_eq!(
        t.edges[1],
        Edge {
            a: 0,
            b: 2,
            rel: Relation::ProviderOf
        }
    );
    for (text, line) in [
        ("1|2\n", 1),
        ("1|2|0\nx|2|0\n", 2),
        ("1|2|7\n", 1),
        ("5|5|0\n", 1),
    ] {
        match Topology::from_edge_list(text) {
            Err(TopologyError::Line { line: l, .. }) => assert_eq!(l, line, "{text:?}"),
            other => panic!("{text:?}: {other:?}"),
        }
    }
}

#[test]
fn valley_freeness_is_judged_on_the_edges() {
    // 0 and 1 peer; 0 provides 2, 1 provides 3.
    let t = Topology {
        n: 4,
        edges: vec![
            Edge {
                a: 0,
                b: 1,
                rel: Relation::Peer,
            },
            Edge {
                a: 0,
                b: 2,
                rel: Relation::ProviderOf,
            },
            Edge {
                a: 1,
                b: 3,
                rel: Relation::ProviderOf,
            },
        ],
    };
    // Receiver first, origin last.
    assert!(t.valley_free(&[3, 1, 0, 2]), "up, across, down");
    assert!(t.valley_free(&[0, 2]));
    assert!(
        !t.valley_free(&[0, 2, 0]),
        "no such path shape: down then up"
    );
    assert!(!t.valley_free(&[1, 0, 2, 0]));
    assert!(!t.valley_free(&[2, 3]), "no such edge");
}

/// Every stub of a hierarchy originates a prefix; with Gao-Rexford
/// policies on the real engines, every node reaches every prefix, every
/// best path is valley-free, and two runs end in the same routing.
#[test]
fn gao_rexford_routing_on_a_hierarchy_is_valley_free_complete_and_deterministic() {
    let t = Topology::hierarchy(3, 6, 12, 5);
    let run = || {
        let mut net = SimNet::new(T0, 5).without_log();
        t.build(&mut net);
        for s in 9..t.n {
            let (node, _) = Topology::node(s);
            let attrs = PathAttrs {
                agent: AgentId::new("agent"),
                ..Default::default()
            };
            net.inject(
                node,
                Event::Originate(Route::new(
                    Prefix::new(&format!("stub{s}/tool")).unwrap(),
                    Arc::new(attrs),
                )),
            );
        }
        net.run_for(20_000);
        let mut best: BTreeMap<(usize, usize), Vec<usize>> = BTreeMap::new();
        for v in 0..t.n {
            let (node, _) = Topology::node(v);
            let e = net.engine(&node).unwrap();
            for s in 9..t.n {
                if let Some(r) = e.best(&Prefix::new(&format!("stub{s}/tool")).unwrap()) {
                    let path = std::iter::once(v)
                        .chain(r.attrs.as_path.iter().map(|a| (a.0 - 64_512) as usize))
                        .collect();
                    best.insert((v, s), path);
                }
            }
        }
        best
    };
    let first = run();
    assert_eq!(
        first.len(),
        t.n * 12,
        "every node reaches every stub's prefix"
    );
    for ((v, s), path) in &first {
        assert_eq!(path.last(), Some(s), "originated by the stub");
        if v != s {
            assert!(t.valley_free(path), "node {v} to stub {s}: {path:?}");
        }
    }
    assert_eq!(first, run(), "the same run, the same routing");
}
