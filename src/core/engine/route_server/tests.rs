//! Transparent route servers in the engine, on the simulator: a route
//! server relays routes between its clients without its ASN and names the
//! announcing client as next hop; calls go there directly (the route
//! server second, as a fallback); the next hop is kept only from a peer
//! configured as our route server and never passed on.

use std::sync::Arc;

use super::*;
use crate::core::forward::CallRoutes;
use crate::core::ids::AgentId;
use crate::core::message::Update;
use crate::core::proof::RouteProof;
use crate::sim::SimNet;

const T0: Millis = Millis(1_700_000_000_000);
const TOOL: &str = "a/tool";
/// The route server's node number (AS 65010).
const RS: u64 = 10;

fn id(n: u64) -> NodeId {
    NodeId::from_u64(n)
}

fn asn(n: u64) -> Asn {
    Asn(65000 + n as u32)
}

fn p(s: &str) -> Prefix {
    Prefix::new(s).unwrap()
}

fn engine(n: u64, route_server: bool) -> Engine {
    Engine::new(EngineConfig::new(asn(n), id(n)).with_route_server(route_server))
        .with_policy(Arc::new(AcceptAll))
}

/// Peers `a` and `b`; `a` sees `b` through `cfg`.
fn peer_with(net: &mut SimNet, a: u64, b: u64, a_of_b: PeerConfig, b_of_a: PeerConfig) {
    net.link(id(a), id(b));
    net.inject(id(a), Event::AddPeer(a_of_b.with_asn(asn(b))));
    net.inject(id(b), Event::AddPeer(b_of_a.with_asn(asn(a))));
}

/// A client `c` of the route server; `marks` is whether it configured
/// the route server as one (`route_server = true`).
fn client(net: &mut SimNet, c: u64, marks: bool) {
    net.add_node(engine(c, false));
    peer_with(
        net,
        c,
        RS,
        PeerConfig::new(id(RS)).with_route_server(marks),
        PeerConfig::new(id(c)).with_route_server_client(true),
    );
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

fn best(net: &SimNet, n: u64) -> Route {
    net.engine(&id(n))
        .and_then(|e| e.best(&p(TOOL)))
        .unwrap_or_else(|| panic!("node {n} has no route"))
}

/// The nodes a call for the tool would go to from node `n`, in order.
fn hops(net: &SimNet, n: u64) -> Vec<Option<NodeId>> {
    net.engine(&id(n))
        .and_then(|e| e.forwarding(&p(TOOL)))
        .map(|f| f.paths.into_iter().map(|(hop, _)| hop).collect())
        .unwrap_or_default()
}

/// Route server 10, clients 1 (originating the tool) and 2 (marking the
/// route server as one), converged.
fn ix(route_server: bool) -> SimNet {
    let mut net = SimNet::new(T0, 3);
    net.add_node(engine(RS, route_server));
    client(&mut net, 1, true);
    client(&mut net, 2, true);
    originate(&mut net, 1);
    net.run_for(3_000);
    net
}

#[test]
fn a_route_server_relays_without_its_asn_and_names_the_announcer() {
    let net = ix(true);
    let r = best(&net, 2);
    assert_eq!(r.attrs.as_path, vec![asn(1)], "no AS{} in the path", RS);
    assert_eq!(r.attrs.next_hop, Some(id(1)));
    // Calls go to the announcing client, the route server second.
    assert_eq!(hops(&net, 2), vec![Some(id(1)), Some(id(RS))]);
    // The route server's own table is an ordinary eBGP one.
    let at_rs = best(&net, RS);
    assert_eq!(at_rs.attrs.as_path, vec![asn(1)]);
    assert_eq!(at_rs.attrs.next_hop, None);
    assert_eq!(hops(&net, RS), vec![Some(id(1))]);
}

#[test]
fn without_route_server_mode_it_is_a_transit() {
    let net = ix(false);
    let r = best(&net, 2);
    assert_eq!(r.attrs.as_path, vec![asn(RS), asn(1)]);
    assert_eq!(r.attrs.next_hop, None);
    assert_eq!(hops(&net, 2), vec![Some(id(RS))]);
}

#[test]
fn the_next_hop_is_kept_only_from_a_peer_configured_as_our_route_server() {
    let mut net = ix(true);
    // Client 3 did not mark the route server as one: it keeps the route
    // (relayed, without AS 65010) but sends calls to the route server.
    client(&mut net, 3, false);
    net.run_for(3_000);
    let r = best(&net, 3);
    assert_eq!(r.attrs.as_path, vec![asn(1)]);
    assert_eq!(r.attrs.next_hop, None);
    assert_eq!(hops(&net, 3), vec![Some(id(RS))]);
}

#[test]
fn a_client_passes_the_route_on_as_its_own_without_the_next_hop() {
    let mut net = ix(true);
    // Client 2 has another, ordinary, peer: 4.
    net.add_node(engine(4, false));
    peer_with(
        &mut net,
        4,
        2,
        PeerConfig::new(id(2)),
        PeerConfig::new(id(4)),
    );
    net.run_for(3_000);
    let r = best(&net, 4);
    assert_eq!(r.attrs.as_path, vec![asn(2), asn(1)]);
    assert_eq!(r.attrs.next_hop, None);
    assert_eq!(hops(&net, 4), vec![Some(id(2))]);
}

#[test]
fn calls_keep_their_direct_next_hop_while_the_route_server_restarts() {
    let mut net = ix(true);
    net.kill(id(RS));
    net.run_for(10);
    let e2 = net.engine(&id(2)).unwrap();
    let paths = e2.paths(&p(TOOL));
    assert!(paths.iter().all(|x| x.stale), "kept for re-sync, stale");
    // The call path never went through the route server: still usable,
    // with no fallback through it.
    assert_eq!(hops(&net, 2), vec![Some(id(1))]);
}

#[test]
fn the_origin_takes_calls_for_what_it_gave_its_route_server_from_anyone() {
    let mut net = ix(true);
    // Node 1 marked the route server as one (client(1, true)).
    let e1 = net.engine(&id(1)).unwrap();
    let stranger = id(2);
    assert!(e1.advertised_cover(&stranger, &p(TOOL)));
    assert!(!e1.advertised_cover(&stranger, &p("b/other")));
    // The route server restarting: our own routes stay callable.
    net.kill(id(RS));
    net.run_for(10);
    let e1 = net.engine(&id(1)).unwrap();
    assert!(e1.route_server_down());
    assert!(e1.advertised_cover(&stranger, &p(TOOL)));
    // A node with no route server of its own refuses a stranger: client
    // 3 did not mark the route server as one.
    let mut net = ix(true);
    client(&mut net, 3, false);
    net.run_for(3_000);
    let e3 = net.engine(&id(3)).unwrap();
    assert!(!e3.advertised_cover(&id(1), &p(TOOL)));
    assert!(e3.advertised_cover(&id(RS), &p(TOOL)) == e3.advertised_to(&id(RS), &p(TOOL)));
}

/// A proof as a route server's client receives it: signed by `announcer`
/// (AS of node 1, pcount 1) and then by the route server (pcount 0). The
/// engine does not check signatures (the node does, before); it reads who
/// signed which hop.
fn relayed_proof(announcer: u64) -> Arc<RouteProof> {
    use crate::core::proof::{AsnCert, OriginAttestation, PathSignature, Signature};
    let cert = |n: u64, a: Asn| Arc::new(AsnCert::unsigned(a, id(n)));
    let hop = |n: u64, a: Asn, pcount: u8, target: Asn| PathSignature {
        cert: cert(n, a),
        pcount,
        target,
        signature: Signature([0; 64]),
    };
    Arc::new(RouteProof {
        origin: OriginAttestation {
            cert: cert(announcer, asn(1)),
            expires: Millis(u64::MAX),
            signature: Signature([0; 64]),
        },
        path: vec![
            hop(announcer, asn(1), 1, asn(RS)),
            hop(RS, asn(RS), 0, asn(2)),
        ],
    })
}

#[test]
fn a_next_hop_the_path_signatures_do_not_name_is_dropped() {
    let mut net = ix(true);
    let send = |net: &mut SimNet, prefix: &str, next_hop: u64| {
        let attrs = PathAttrs {
            agent: AgentId::new("agent"),
            as_path: vec![asn(1)],
            next_hop: Some(id(next_hop)),
            ..Default::default()
        };
        let mut route = Route::new(p(prefix), Arc::new(attrs));
        route.proof = Some(relayed_proof(1));
        net.inject(
            id(2),
            Event::Message {
                peer: id(RS),
                msg: Message::Update(Update {
                    announce: vec![route],
                    ..Default::default()
                }),
            },
        );
        net.run_for(10);
    };
    // Signed by node 1, naming node 1: kept.
    send(&mut net, "a/signed", 1);
    let e2 = net.engine(&id(2)).unwrap();
    assert_eq!(e2.best(&p("a/signed")).unwrap().attrs.next_hop, Some(id(1)));
    // Signed by node 1, naming node 7 (a route server redirecting calls):
    // the next hop is dropped, calls go to the route server.
    send(&mut net, "a/redirected", 7);
    let e2 = net.engine(&id(2)).unwrap();
    assert_eq!(e2.best(&p("a/redirected")).unwrap().attrs.next_hop, None);
    let f = e2.forwarding(&p("a/redirected")).unwrap();
    assert_eq!(f.paths[0].0, Some(id(RS)));
    // Naming the receiver itself: dropped too.
    send(&mut net, "a/self", 2);
    let e2 = net.engine(&id(2)).unwrap();
    assert_eq!(e2.best(&p("a/self")).unwrap().attrs.next_hop, None);
}
