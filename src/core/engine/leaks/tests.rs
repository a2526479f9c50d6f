//! Neighbour roles and the only-to-customer marker in the engine, on the
//! simulator (RFC 9234): roles agreed in OPEN, a route learned from one
//! provider or peer never passed to another, and a leak sent by a customer
//! that does not apply the rules caught by the next provider.

use std::sync::Arc;

use super::tests::{best, established, id, p, path_of as as_path};
use super::*;
use crate::core::decision::{Exclusion, Status};
use crate::core::ids::AgentId;
use crate::core::message::{ErrorCode, subcode};
use crate::core::role::Role;
use crate::sim::SimNet;

const T0: Millis = Millis(1_700_000_000_000);

fn engine(asn: u32, n: u64) -> Engine {
    Engine::new(EngineConfig::new(Asn(asn), id(n))).with_policy(Arc::new(AcceptAll))
}

/// Peers `a` and `b`, each holding the given role towards the other
/// (`None`: no role configured).
fn link(net: &mut SimNet, a: (u64, u32, Option<Role>), b: (u64, u32, Option<Role>)) {
    net.link(id(a.0), id(b.0));
    let cfg = |node: u64, asn: u32, role: Option<Role>| {
        let pc = PeerConfig::new(id(node)).with_asn(Asn(asn));
        match role {
            Some(r) => pc.with_role(r, false),
            None => pc,
        }
    };
    net.inject(id(a.0), Event::AddPeer(cfg(b.0, b.1, a.2)));
    net.inject(id(b.0), Event::AddPeer(cfg(a.0, a.1, b.2)));
}

fn originate(net: &mut SimNet, n: u64, prefix: &str) {
    let attrs = PathAttrs {
        agent: AgentId::new("agent"),
        ..Default::default()
    };
    net.inject(
        id(n),
        Event::Originate(Route::new(p(prefix), Arc::new(attrs))),
    );
}

// Two providers (AS 65101 on node 1, AS 65102 on node 2) and a customer of
// both (AS 65200 on node 3).
const P1: (u64, u32) = (1, 65101);
const P2: (u64, u32) = (2, 65102);
const C: (u64, u32) = (3, 65200);

fn two_providers(customer_roles: bool) -> SimNet {
    let mut net = SimNet::new(T0, 1);
    for (n, asn) in [P1, P2, C] {
        net.add_node(engine(asn, n));
    }
    let c_role = customer_roles.then_some(Role::Customer);
    link(
        &mut net,
        (P1.0, P1.1, Some(Role::Provider)),
        (C.0, C.1, c_role),
    );
    link(
        &mut net,
        (P2.0, P2.1, Some(Role::Provider)),
        (C.0, C.1, c_role),
    );
    originate(&mut net, P1.0, "p1/tool");
    originate(&mut net, C.0, "c/tool");
    net.run_for(3_000);
    assert!(established(&net, C.0, P1.0) && established(&net, C.0, P2.0));
    net
}

#[test]
fn a_customer_with_roles_keeps_one_providers_route_from_the_other() {
    let mut net = two_providers(true);
    // The customer has the route, marked by the provider it came from...
    let r = best(&net, C.0, "p1/tool").expect("the customer learns its provider's route");
    assert_eq!(r.attrs.otc, Some(Asn(P1.1)));
    // ...and does not pass it up to its other provider, although its
    // export policy accepts everything.
    let c = net.engine_mut(&id(C.0)).unwrap();
    assert_eq!(
        c.export_decision(&p("p1/tool"), &id(P2.0)).err(),
        Some(NotExported::OnlyToCustomer)
    );
    assert!(
        net.engine(&id(C.0))
            .unwrap()
            .adj_rib_out(&id(P2.0))
            .iter()
            .all(|r| r.prefix != p("p1/tool"))
    );
    assert_eq!(best(&net, P2.0, "p1/tool"), None);
    // Its own route still goes to both providers, unmarked (a customer
    // route may go anywhere).
    for prov in [P1, P2] {
        let r = best(&net, prov.0, "c/tool").expect("providers learn the customer's route");
        assert_eq!(as_path(&r), vec![C.1]);
        assert_eq!(r.attrs.otc, None);
    }
}

#[test]
fn a_leak_from_a_customer_without_roles_is_caught_by_the_next_provider() {
    let net = two_providers(false);
    // The customer applies no rules and its policy exports everything: the
    // leak goes out, carrying the mark its first provider put on it.
    let out = net.engine(&id(C.0)).unwrap().adj_rib_out(&id(P2.0));
    let leaked = out
        .iter()
        .find(|r| r.prefix == p("p1/tool"))
        .expect("the leaky customer sends the route on");
    assert_eq!(leaked.attrs.otc, Some(Asn(P1.1)));
    // The second provider keeps it, excluded as a leak, and has no best.
    let p2 = net.engine(&id(P2.0)).unwrap();
    assert_eq!(best(&net, P2.0, "p1/tool"), None);
    let paths = p2.paths(&p("p1/tool"));
    assert_eq!(paths.len(), 1);
    assert_eq!(paths[0].status, Status::Excluded(Exclusion::RouteLeak));
    assert_eq!(paths[0].peer, Some(id(C.0)));
    assert_eq!(p2.stats().route_leaks, 1);
    assert!(
        p2.forwarding(&p("p1/tool"))
            .is_none_or(|f| f.paths.is_empty())
    );
    // The customer's own route is accepted as usual.
    assert!(best(&net, P2.0, "c/tool").is_some());
}

#[test]
fn a_route_from_one_lateral_peer_goes_to_customers_only() {
    // A (65001) and B (65002) peer; B also peers with D (65004) and is the
    // provider of E (65005).
    let mut net = SimNet::new(T0, 1);
    for (n, asn) in [(1, 65001), (2, 65002), (4, 65004), (5, 65005)] {
        net.add_node(engine(asn, n));
    }
    link(
        &mut net,
        (1, 65001, Some(Role::Peer)),
        (2, 65002, Some(Role::Peer)),
    );
    link(
        &mut net,
        (2, 65002, Some(Role::Peer)),
        (4, 65004, Some(Role::Peer)),
    );
    link(
        &mut net,
        (2, 65002, Some(Role::Provider)),
        (5, 65005, Some(Role::Customer)),
    );
    originate(&mut net, 1, "a/tool");
    net.run_for(3_000);
    let at_b = best(&net, 2, "a/tool").expect("B learns its peer's route");
    assert_eq!(
        at_b.attrs.otc,
        Some(Asn(65001)),
        "marked by the peer itself"
    );
    assert_eq!(best(&net, 4, "a/tool"), None, "not passed to another peer");
    let at_e = best(&net, 5, "a/tool").expect("passed down to B's customer");
    assert_eq!(as_path(&at_e), vec![65002, 65001]);
}

#[test]
fn a_lateral_peer_passing_on_another_ases_marked_route_is_a_leak() {
    // A (65001) peers with B (65002), which peers with D (65004) but
    // applies no roles: it leaks A's route, marked by A, to D.
    let mut net = SimNet::new(T0, 1);
    for (n, asn) in [(1, 65001), (2, 65002), (4, 65004)] {
        net.add_node(engine(asn, n));
    }
    link(&mut net, (1, 65001, Some(Role::Peer)), (2, 65002, None));
    link(&mut net, (2, 65002, None), (4, 65004, Some(Role::Peer)));
    originate(&mut net, 1, "a/tool");
    net.run_for(3_000);
    assert!(best(&net, 2, "a/tool").is_some());
    assert_eq!(best(&net, 4, "a/tool"), None);
    let d = net.engine(&id(4)).unwrap();
    assert_eq!(
        d.paths(&p("a/tool"))[0].status,
        Status::Excluded(Exclusion::RouteLeak)
    );
}

fn refused_for_role(net: &SimNet) -> bool {
    net.log.iter().any(|(_, _, a)| {
        matches!(a, Action::Send(_, Message::Notification(n))
            if n.code == ErrorCode::Open && n.subcode == subcode::ROLE_MISMATCH)
    })
}

#[test]
fn roles_that_do_not_agree_are_refused_in_open() {
    // Both claim to be the other's provider.
    let mut net = SimNet::new(T0, 1);
    net.add_node(engine(65001, 1));
    net.add_node(engine(65002, 2));
    link(
        &mut net,
        (1, 65001, Some(Role::Provider)),
        (2, 65002, Some(Role::Provider)),
    );
    net.run_for(3_000);
    assert!(!established(&net, 1, 2));
    assert!(refused_for_role(&net));
}

#[test]
fn a_peer_without_a_role_is_accepted_unless_strict() {
    for strict in [false, true] {
        let mut net = SimNet::new(T0, 1);
        net.add_node(engine(65001, 1));
        net.add_node(engine(65002, 2));
        net.link(id(1), id(2));
        net.inject(
            id(1),
            Event::AddPeer(
                PeerConfig::new(id(2))
                    .with_asn(Asn(65002))
                    .with_role(Role::Provider, strict),
            ),
        );
        net.inject(
            id(2),
            Event::AddPeer(PeerConfig::new(id(1)).with_asn(Asn(65001))),
        );
        net.run_for(3_000);
        assert_eq!(established(&net, 1, 2), !strict, "strict = {strict}");
        assert_eq!(refused_for_role(&net), strict);
    }
}

#[test]
fn roles_are_not_applied_to_internal_peers() {
    // A role configured on an internal peer is neither announced nor
    // applied: routes move inside the AS as usual.
    let mut net = SimNet::new(T0, 1);
    net.add_node(engine(65001, 1));
    net.add_node(engine(65001, 2));
    link(
        &mut net,
        (1, 65001, Some(Role::Customer)),
        (2, 65001, Some(Role::Customer)),
    );
    originate(&mut net, 1, "a/tool");
    net.run_for(3_000);
    let r = best(&net, 2, "a/tool").expect("internal route");
    assert_eq!(r.attrs.otc, None);
}
