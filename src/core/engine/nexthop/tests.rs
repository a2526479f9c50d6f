//! Next-hop tracking: a path through a peer whose transport is gone (stale,
//! kept for graceful restart) is never offered to calls, never advertised
//! onward, and comes back when the peer re-sends it.

use std::sync::Arc;

use super::*;
use crate::core::decision::{Exclusion, Status};
use crate::core::ids::AgentId;
use crate::sim::SimNet;

const T0: Millis = Millis(1_700_000_000_000);
const TOOL: &str = "c/tool";

fn id(n: u64) -> NodeId {
    NodeId::from_u64(n)
}

fn p(s: &str) -> Prefix {
    Prefix::new(s).unwrap()
}

fn engine(n: u64) -> Engine {
    Engine::new(EngineConfig::new(Asn(65000 + n as u32), id(n))).with_policy(Arc::new(AcceptAll))
}

fn add_peer(net: &mut SimNet, a: u64, b: u64) {
    net.inject(
        id(a),
        Event::AddPeer(PeerConfig::new(id(b)).with_asn(Asn(65000 + b as u32))),
    );
}

/// Peers two nodes (both sides configured).
fn peer(net: &mut SimNet, a: u64, b: u64) {
    net.link(id(a), id(b));
    add_peer(net, a, b);
    add_peer(net, b, a);
}

fn originate(net: &mut SimNet, n: u64) {
    let attrs = PathAttrs {
        agent: AgentId::new("agent"),
        ..Default::default()
    };
    net.inject(
        id(n),
        Event::Originate(Route::new(p(TOOL), Arc::new(attrs))),
    );
}

/// The next hops a call for the tool would use at node `n`.
fn hops(net: &SimNet, n: u64) -> Option<Vec<Option<NodeId>>> {
    let f = net.engine(&id(n))?.forwarding(&p(TOOL))?;
    Some(f.paths.into_iter().map(|(hop, _)| hop).collect())
}

/// 1 - 2 - 3 with the tool originated on 3, converged.
fn chain() -> SimNet {
    let mut net = SimNet::new(T0, 7);
    for n in 1..=3 {
        net.add_node(engine(n));
    }
    peer(&mut net, 1, 2);
    peer(&mut net, 2, 3);
    originate(&mut net, 3);
    net.run_for(3_000);
    assert_eq!(hops(&net, 1), Some(vec![Some(id(2))]));
    net
}

#[test]
fn a_path_through_a_dead_transit_is_kept_stale_but_not_offered_to_calls() {
    let mut net = chain();
    net.kill(id(2));
    net.run_for(10);
    let e1 = net.engine(&id(1)).unwrap();
    // Kept for re-sync (the looking glass shows it, marked stale) ...
    assert!(e1.best(&p(TOOL)).is_some());
    let paths = e1.paths(&p(TOOL));
    assert_eq!(paths.len(), 1);
    assert!(paths[0].stale);
    // ... but a call has nowhere to go, and it is not exported anywhere.
    assert_eq!(hops(&net, 1), None);
    assert!(net.engine(&id(3)).unwrap().best(&p(TOOL)).is_some());
}

#[test]
fn the_best_path_turning_stale_is_reported_as_a_loc_rib_change() {
    let mut net = chain();
    let before = net.log.len();
    net.kill(id(2));
    net.run_for(10);
    // The MCP front rebuilds its table on Loc-RIB changes only.
    let changed = net.log[before..].iter().any(|(_, n, a)| {
        *n == id(1)
            && matches!(a, Action::RibChanges(c) if c.iter().any(|x| matches!(x, RibChange::Loc { prefix, .. } if *prefix == p(TOOL))))
    });
    assert!(
        changed,
        "no Loc-RIB change at node 1 when its path went stale"
    );
}

#[test]
fn a_transit_withdraws_onward_what_only_a_dead_peer_offered() {
    let mut net = chain();
    // The origin dies: 2 keeps its path stale, 1 hears a withdrawal.
    net.kill(id(3));
    net.run_for(100);
    let e2 = net.engine(&id(2)).unwrap();
    assert!(e2.paths(&p(TOOL))[0].stale);
    assert_eq!(hops(&net, 2), None);
    assert!(
        e2.adj_rib_out(&id(1)).is_empty(),
        "a stale path is not advertised"
    );
    let mut e2 = net
        .engine_mut(&id(2))
        .map(|e| e.export_decision(&p(TOOL), &id(1)));
    assert_eq!(e2.take().map(|r| r.err()), Some(Some(NotExported::NoRoute)));
    assert_eq!(net.engine(&id(1)).unwrap().best(&p(TOOL)), None);
    assert_eq!(hops(&net, 1), None);

    // 3 comes back and re-sends: fresh at 2, announced to 1 again.
    net.add_node(engine(3));
    add_peer(&mut net, 3, 2);
    originate(&mut net, 3);
    net.run_for(5_000);
    let e2 = net.engine(&id(2)).unwrap();
    assert!(!e2.paths(&p(TOOL))[0].stale);
    assert_eq!(hops(&net, 2), Some(vec![Some(id(3))]));
    assert_eq!(hops(&net, 1), Some(vec![Some(id(2))]));
}

#[test]
fn a_restarted_transit_is_offered_again_once_it_re_sends() {
    let mut net = chain();
    net.kill(id(2));
    net.run_for(10);
    assert_eq!(hops(&net, 1), None);
    net.add_node(engine(2));
    add_peer(&mut net, 2, 1);
    add_peer(&mut net, 2, 3);
    net.run_for(5_000);
    assert_eq!(hops(&net, 1), Some(vec![Some(id(2))]));
    let paths = net.engine(&id(1)).unwrap().paths(&p(TOOL));
    assert_eq!(paths.len(), 1);
    assert!(!paths[0].stale);
}

#[test]
fn the_next_best_path_takes_over_at_once_when_the_best_goes_stale() {
    // 1 peers with 2 and 4; both reach 3, which hosts the tool.
    let mut net = SimNet::new(T0, 7);
    for n in 1..=4 {
        net.add_node(engine(n));
    }
    peer(&mut net, 1, 2);
    peer(&mut net, 1, 4);
    peer(&mut net, 2, 3);
    peer(&mut net, 4, 3);
    originate(&mut net, 3);
    net.run_for(3_000);
    let both = hops(&net, 1).unwrap();
    assert_eq!(both.len(), 2, "{both:?}");
    let first = both[0].unwrap();
    let other = both[1].unwrap();
    net.kill(first);
    net.run_for(10);
    assert_eq!(hops(&net, 1), Some(vec![Some(other)]));
    let paths = net.engine(&id(1)).unwrap().paths(&p(TOOL));
    let stale: Vec<_> = paths.iter().filter(|r| r.stale).collect();
    assert_eq!(stale.len(), 1);
    assert_eq!(stale[0].peer, Some(first));
    assert_eq!(stale[0].status, Status::Excluded(Exclusion::Stale));
}
