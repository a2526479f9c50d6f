//! NAT traversal on the in-memory transport: a node that holds a
//! reservation on a relay is reached through it, the link says it is
//! relayed, routing messages cross it; the relay's limits cut off the
//! peer that goes over them and not the others; a routing request whose
//! connection closes under it is sent again on the one left. (Hole
//! punching needs real sockets and NATs: tests/nat.rs.)

use std::time::{Duration, Instant};

use futures::FutureExt;
use libp2p::identity::Keypair;
use libp2p::swarm::dial_opts::{DialOpts, PeerCondition};

use super::nat::{Path, RelayLimits, UseRelays};
use super::*;
use route_codec::RouteResponse;

use super::tests::{Side, side_with as side};

/// Runs every side (so the relay relays) for at most `max`; the first
/// event any of them reports, if one does.
async fn step(sides: &mut [&mut Side], max: Duration) -> Option<(usize, NetEvent)> {
    let futs: Vec<_> = sides.iter_mut().map(|s| s.net.next().boxed()).collect();
    let (ev, i, _) = tokio::time::timeout(max, futures::future::select_all(futs))
        .await
        .ok()?;
    Some((i, ev))
}

/// The next event of any side, within 10 s (a wait on what the nets
/// report, never a sleep).
async fn next(sides: &mut [&mut Side]) -> (usize, NetEvent) {
    step(sides, Duration::from_secs(10))
        .await
        .expect("an event within 10 s")
}

/// Runs every side until `done` holds, for at most 10 s. Events in
/// between are dropped.
async fn until(sides: &mut [&mut Side], what: &str, done: impl Fn(&[&mut Side]) -> bool) {
    let t0 = Instant::now();
    while !done(sides) {
        assert!(
            t0.elapsed() < Duration::from_secs(10),
            "not within 10 s: {what}"
        );
        let _ = step(sides, Duration::from_millis(20)).await;
    }
}

fn relay(limits: RelayLimits) -> Side {
    side(|c| c.nat.relay_server = Some(limits))
}

/// A node that takes a reservation on `r` (configured as its relay).
fn behind(r: &Side) -> Side {
    let ra = r.addr.clone().with(Protocol::P2p(r.peer));
    side(|c| {
        c.nat.use_relays = UseRelays::Always;
        c.nat.relays = vec![ra];
    })
}

fn relayed_addr(s: &Side) -> Option<Multiaddr> {
    let v = s.net.nat_view();
    let a = v.relays.iter().find_map(|r| r.relayed_addresses.first())?;
    a.parse().ok()
}

/// Runs all sides until `a` holds a reservation; returns its relayed address.
async fn reserved(sides: &mut [&mut Side], a: usize) -> Multiaddr {
    until(sides, "a reservation", |s| relayed_addr(s[a]).is_some()).await;
    relayed_addr(sides[a]).expect("reserved")
}

/// `from` dials `to` at `addr`; runs until both engines hear `Connected`.
async fn connect(sides: &mut [&mut Side], from: usize, to: usize, addr: Multiaddr) {
    let (fnode, tnode) = (sides[from].node, sides[to].node);
    let tpeer = sides[to].peer;
    sides[from].net.set_engine_peer(&tnode, true);
    sides[to].net.set_engine_peer(&fnode, true);
    sides[from].net.add_addresses(tpeer, [addr]);
    sides[from].net.dial(&tnode);
    let (mut up_from, mut up_to) = (false, false);
    while !(up_from && up_to) {
        match next(sides).await {
            (i, NetEvent::Connected { peer, .. }) if i == from && peer == tnode => up_from = true,
            (i, NetEvent::Connected { peer, .. }) if i == to && peer == fnode => up_to = true,
            (i, NetEvent::ConnectFailed { peer }) if i == from => {
                panic!("the dial to {peer:?} failed")
            }
            _ => {}
        }
    }
}

/// Sends a KEEPALIVE `from` -> `to` and runs until it is acknowledged,
/// answering every copy that arrives; panics if either side loses the
/// transport.
async fn exchange(sides: &mut [&mut Side], from: usize, to: usize) {
    let tnode = sides[to].node;
    let acked = |s: &Side| s.net.link_info(&tnode).map_or(0, |l| l.stats.frames_acked);
    let before = acked(sides[from]);
    sides[from].net.send(&tnode, Message::Keepalive);
    let t0 = Instant::now();
    while acked(sides[from]) == before {
        assert!(t0.elapsed() < Duration::from_secs(10), "no acknowledgement");
        match step(sides, Duration::from_millis(20)).await {
            None => {}
            Some((i, NetEvent::Request { reply, .. })) if i == to => {
                sides[to].net.respond(reply, RouteResponse::Ack)
            }
            Some((i, NetEvent::Disconnected { reason, .. })) if i == from || i == to => {
                panic!("side {i} lost the transport: {reason}")
            }
            Some(_) => {}
        }
    }
}

#[tokio::test]
async fn a_node_behind_a_relay_is_reached_through_its_reservation() {
    let mut r = relay(RelayLimits::default());
    let mut a = behind(&r);
    let mut b = side(|_| {});
    let sides = &mut [&mut r, &mut a, &mut b];
    let relayed = reserved(sides, 1).await;
    assert!(nat::is_relayed(&relayed), "{relayed}");
    assert!(
        sides[1].net.external_addrs().contains(&relayed),
        "the relayed address is announced"
    );
    assert_eq!(sides[1].net.nat_view().stats.reservations_accepted, 1);
    // B knows A only by its relayed address.
    connect(sides, 2, 1, relayed).await;
    let (anode, bnode) = (sides[1].node, sides[2].node);
    // Hole punching is off (memory transport): both ends say relayed.
    assert_eq!(
        sides[2].net.link_info(&anode).and_then(|l| l.path),
        Some(Path::Relayed)
    );
    assert_eq!(
        sides[1].net.link_info(&bnode).and_then(|l| l.path),
        Some(Path::Relayed)
    );
    exchange(sides, 2, 1).await;
    exchange(sides, 1, 2).await;
    let s = &sides[0].net.nat_view().stats;
    assert_eq!(s.relay_reservations_accepted, 1);
    assert_eq!(s.relay_circuits_accepted, 1);
    assert_eq!(s.relay_circuits_active, 1);
}

/// A circuit that moves more than the relay's byte limit is closed; the
/// other peer's circuit through the same relay keeps working.
#[tokio::test]
async fn a_circuit_over_the_byte_limit_is_cut_and_the_others_keep_working() {
    let mut r = relay(RelayLimits {
        max_circuit_bytes: 64 << 10,
        ..RelayLimits::default()
    });
    let mut a = behind(&r);
    let mut b = side(|_| {});
    let mut c = side(|_| {});
    let sides = &mut [&mut r, &mut a, &mut b, &mut c];
    let relayed = reserved(sides, 1).await;
    connect(sides, 2, 1, relayed.clone()).await;
    connect(sides, 3, 1, relayed).await;
    let anode = sides[1].node;
    // B sends A UPDATEs of 500 routes (tens of KiB each) over its
    // circuit until the relay cuts it.
    let update = |round: usize| {
        let attrs = std::sync::Arc::new(crate::core::attrs::PathAttrs {
            agent: crate::core::ids::AgentId::new("agent-with-a-long-name"),
            ..Default::default()
        });
        Message::Update(crate::core::message::Update {
            announce: (0..500)
                .map(|i| {
                    crate::core::route::Route::new(
                        crate::core::prefix::Prefix::new(&format!("tools/r{round}/n{i}"))
                            .expect("a prefix"),
                        attrs.clone(),
                    )
                })
                .collect(),
            ..Default::default()
        })
    };
    let mut cut = false;
    for round in 0..20 {
        sides[2].net.send(&anode, update(round));
        let t0 = Instant::now();
        loop {
            assert!(
                t0.elapsed() < Duration::from_secs(10),
                "B's UPDATE neither acknowledged nor cut"
            );
            match step(sides, Duration::from_millis(20)).await {
                Some((1, NetEvent::Request { reply, .. })) => {
                    sides[1].net.respond(reply, RouteResponse::Ack)
                }
                Some((2, NetEvent::Disconnected { .. })) => {
                    cut = true;
                    break;
                }
                Some((3, NetEvent::Disconnected { reason, .. })) => {
                    panic!("C's circuit was cut too: {reason}")
                }
                _ => {}
            }
            if sides[2].net.all_quiet() {
                break;
            }
        }
        if cut {
            break;
        }
    }
    assert!(cut, "B's circuit outlived 200 frames over a 64 KiB limit");
    assert!(sides[0].net.nat_view().stats.relay_circuits_closed >= 1);
    // C still talks to A through the relay.
    exchange(sides, 3, 1).await;
    exchange(sides, 1, 3).await;
}

/// A peer may hold `max_circuits_per_peer` circuits through the relay,
/// and not one more.
#[tokio::test]
async fn circuits_per_peer_are_capped_exactly() {
    let mut r = relay(RelayLimits {
        max_circuits_per_peer: 1,
        ..RelayLimits::default()
    });
    let mut a = behind(&r);
    let mut d = behind(&r);
    let mut b = side(|_| {});
    let sides = &mut [&mut r, &mut a, &mut d, &mut b];
    let to_a = reserved(sides, 1).await;
    let to_d = reserved(sides, 2).await;
    connect(sides, 3, 1, to_a).await;
    // B's second circuit (to D) is refused by the relay: B already has one.
    let dnode = sides[2].node;
    let bpeer = sides[3].peer;
    sides[3].net.set_engine_peer(&dnode, true);
    sides[2]
        .net
        .set_engine_peer(&node_id_of(&bpeer).expect("ed25519"), true);
    let dpeer = sides[2].peer;
    sides[3].net.add_addresses(dpeer, [to_d]);
    sides[3].net.dial(&dnode);
    loop {
        match next(sides).await {
            (3, NetEvent::ConnectFailed { peer }) if peer == dnode => break,
            (_, NetEvent::Connected { peer, .. }) if peer == dnode => {
                panic!("a second circuit was allowed")
            }
            _ => {}
        }
    }
    assert_eq!(sides[0].net.nat_view().stats.relay_circuits_denied, 1);
    // The first circuit still works.
    let anode = sides[1].node;
    assert!(sides[3].net.link_info(&anode).is_some_and(|l| l.reported));
    exchange(sides, 3, 1).await;
}

/// A routing request whose connection closes while another connection to
/// the peer stays up (a relayed one retired after a hole punch) is sent
/// again there: the session does not notice.
#[tokio::test]
async fn a_request_on_a_closing_connection_is_sent_again_on_the_other() {
    let mut a = side(|_| {});
    let mut b = side(|_| {});
    let sides = &mut [&mut a, &mut b];
    let baddr = sides[1].addr.clone();
    connect(sides, 0, 1, baddr.clone()).await;
    // A second connection, as a hole punch makes next to a relayed one.
    let bpeer = sides[1].peer;
    let opts = DialOpts::peer_id(bpeer)
        .addresses(vec![baddr])
        .condition(PeerCondition::Always)
        .build();
    sides[0].net.swarm.dial(opts).expect("a second dial");
    let bnode = sides[1].node;
    until(sides, "a second connection", |s| {
        s[0].net.link_info(&bnode).map_or(0, |l| l.connections) == 2
    })
    .await;
    sides[0].net.send(&bnode, Message::Keepalive);
    // B closes the connection the request came on, without answering.
    loop {
        match next(sides).await {
            (1, NetEvent::Request { reply, .. }) => {
                assert!(sides[1].net.swarm.close_connection(reply.connection()));
                break;
            }
            (_, NetEvent::Disconnected { reason, .. }) => panic!("transport lost: {reason}"),
            _ => {}
        }
    }
    let t0 = Instant::now();
    while sides[0]
        .net
        .link_info(&bnode)
        .map_or(0, |l| l.stats.frames_acked)
        == 0
    {
        assert!(t0.elapsed() < Duration::from_secs(10), "never acknowledged");
        match step(sides, Duration::from_millis(20)).await {
            Some((1, NetEvent::Request { reply, .. })) => {
                sides[1].net.respond(reply, RouteResponse::Ack)
            }
            Some((_, NetEvent::Disconnected { reason, .. })) => panic!("transport lost: {reason}"),
            _ => {}
        }
    }
    assert_eq!(sides[0].net.nat_view().stats.requests_resent, 1);
    assert_eq!(
        sides[0].net.link_info(&bnode).map(|l| l.connections),
        Some(1)
    );
}

/// Addresses learned from others are kept only when they can reach the
/// peer: another machine's loopback address reaches the dialler's own
/// machine (often its own node on the same port, whose wrong peer id then
/// fails the whole dial, good addresses included), and one of our own
/// addresses reaches us. Configured addresses are the operator's word.
#[tokio::test]
async fn learned_addresses_that_reach_someone_else_are_not_kept() {
    let peer = PeerId::random();
    let lan: Multiaddr = "/ip4/192.168.1.5/tcp/4100".parse().expect("addr");
    let lo: Multiaddr = "/ip4/127.0.0.1/tcp/4100".parse().expect("addr");
    // A node on the wide area: it listens on every interface.
    let any: Multiaddr = "/ip4/0.0.0.0/tcp/0".parse().expect("addr");
    let mut wide =
        Net::new(Keypair::generate_ed25519(), NetConfig::new(vec![any], "t")).expect("a swarm");
    wide.remember(peer, lo.clone());
    wide.remember(peer, lan.clone());
    assert_eq!(wide.addresses_of(&peer), vec![lan.clone()]);
    assert_eq!(wide.addresses_refused, 1);
    // Its own listen address, told by someone else, is refused too.
    let own = loop {
        if let NetEvent::Listening(a) = tokio::time::timeout(Duration::from_secs(10), wide.next())
            .await
            .expect("a listener within 10 s")
        {
            break a;
        }
    };
    wide.remember(peer, own);
    assert_eq!(wide.addresses_of(&peer), vec![lan.clone()]);
    // Its own loopback address is not announced; the others are.
    let ext = wide.external_addrs();
    assert!(!ext.iter().any(book::is_loopback), "{ext:?}");
    // A configured neighbour on loopback is kept.
    wide.add_addresses(peer, [lo.clone()]);
    assert!(wide.addresses_of(&peer).contains(&lo));

    // A node of a federation on one machine listens on loopback alone: the
    // others' loopback addresses are real, and its own are announced.
    let here: Multiaddr = "/ip4/127.0.0.1/tcp/0".parse().expect("addr");
    let mut local =
        Net::new(Keypair::generate_ed25519(), NetConfig::new(vec![here], "t")).expect("a swarm");
    local.remember(peer, lo.clone());
    assert_eq!(local.addresses_of(&peer), vec![lo]);
    loop {
        if let NetEvent::Listening(_) = tokio::time::timeout(Duration::from_secs(10), local.next())
            .await
            .expect("a listener within 10 s")
        {
            break;
        }
    }
    assert!(local.external_addrs().iter().any(book::is_loopback));
}

#[test]
fn public_addresses_are_told_from_private_ones() {
    for public in [
        "/ip4/8.8.8.8/tcp/4100",
        "/ip4/100.128.0.1/tcp/4100",
        "/ip6/2001:db8::1/tcp/4100",
        "/dns4/boot.example.org/tcp/4100",
    ] {
        assert!(nat::is_public(&public.parse().expect("addr")), "{public}");
    }
    for private in [
        "/ip4/192.168.1.2/tcp/4100",
        "/ip4/10.99.0.1/tcp/4100",
        "/ip4/172.16.5.5/tcp/4100",
        "/ip4/100.64.0.1/tcp/4100",
        "/ip4/127.0.0.1/tcp/4100",
        "/ip4/169.254.1.1/tcp/4100",
        "/ip6/fd00::1/tcp/4100",
        "/ip6/fe80::1/tcp/4100",
        "/ip6/::1/tcp/4100",
    ] {
        assert!(
            !nat::is_public(&private.parse().expect("addr")),
            "{private}"
        );
    }
}

/// What AutoNAT judged is kept bounded, whatever observed addresses peers
/// report: once each, the oldest dropped past the bound.
#[test]
fn judged_addresses_are_kept_once_and_bounded() {
    let mut list = Vec::new();
    for port in 1..=20u16 {
        let a: Multiaddr = format!("/ip4/203.0.113.7/tcp/{port}")
            .parse()
            .expect("addr");
        nat::keep_judged(&mut list, a.clone());
        nat::keep_judged(&mut list, a);
    }
    assert_eq!(list.len(), 16);
    assert_eq!(
        list[0],
        "/ip4/203.0.113.7/tcp/5".parse::<Multiaddr>().expect("addr")
    );
}
