//! `Net` against another `Net` in one process, over libp2p's in-memory
//! transport (noise and yamux as on TCP): the transport lifecycle the
//! engine hears, routing requests and their answers, the call protocol
//! with its session gate. Milliseconds per test, no ports, no processes.

use std::sync::Arc;
use std::time::Duration;

use libp2p::identity::Keypair;
use serde_json::json;

use super::*;
use crate::core::call::{Call, CallAnswer, CallId, CallKind, CallOp, CallOrigin};
use crate::core::ids::{Asn, Millis};
use crate::core::prefix::Prefix;
use route_codec::RouteResponse;

pub(super) struct Side {
    pub(super) net: Net,
    pub(super) node: NodeId,
    pub(super) peer: PeerId,
    pub(super) addr: Multiaddr,
}

fn side() -> Side {
    side_with(|_| {})
}

/// A `Net` on its own memory address, its config changed by `tune` first.
pub(super) fn side_with(tune: impl FnOnce(&mut NetConfig)) -> Side {
    let key = Keypair::generate_ed25519();
    let peer = key.public().to_peer_id();
    let node = node_id_of(&peer).expect("an ed25519 key");
    let addr: Multiaddr = format!("/memory/{}", rand::random::<u64>() | 1)
        .parse()
        .expect("a memory address");
    let mut cfg = NetConfig::new(vec![addr.clone()], "test").with_memory_transport();
    tune(&mut cfg);
    let net = Net::new(key, cfg).expect("a memory swarm");
    Side {
        net,
        node,
        peer,
        addr,
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Who {
    A,
    B,
}

/// The next event of either side (within 10 s: a wait on what the nets
/// report, never a sleep).
async fn next(a: &mut Side, b: &mut Side) -> (Who, NetEvent) {
    let ev = tokio::time::timeout(Duration::from_secs(10), async {
        tokio::select! {
            e = a.net.next() => (Who::A, e),
            e = b.net.next() => (Who::B, e),
        }
    })
    .await;
    ev.expect("an event within 10 s")
}

/// Two nets whose engines know each other, connected (A dialled B).
async fn connected() -> (Side, Side) {
    let mut a = side();
    let mut b = side();
    a.net.set_engine_peer(&b.node, true);
    b.net.set_engine_peer(&a.node, true);
    a.net.add_addresses(b.peer, [b.addr.clone()]);
    a.net.dial(&b.node);
    let (mut up_a, mut up_b) = (false, false);
    while !(up_a && up_b) {
        match next(&mut a, &mut b).await {
            (Who::A, NetEvent::Connected { peer, outbound }) => {
                assert_eq!((peer, outbound), (b.node, true));
                up_a = true;
            }
            (Who::B, NetEvent::Connected { peer, outbound }) => {
                assert_eq!((peer, outbound), (a.node, false));
                up_b = true;
            }
            (_, NetEvent::ConnectFailed { peer }) => panic!("dial to {peer:?} failed"),
            _ => {}
        }
    }
    (a, b)
}

fn call(from: &Side, leg: u64) -> Call {
    Call {
        sealed: None,
        leg: LegId(leg),
        hop_limit: 4,
        log_level: None,
        progress: false,
        origin: Arc::new(CallOrigin {
            id: CallId([leg as u8; 16]),
            caller: from.node,
            caller_asn: Asn(65001),
            communities: Vec::new(),
            target: Prefix::new("utility/echo").expect("a prefix"),
            op: CallOp::Tool,
            idempotent: false,
            tool: Some("echo".into()),
            args_digest: [0; 32],
            issued: Millis(1),
            deadline: Millis(u64::MAX / 2),
            cert: None,
            signature: None,
        }),
        arguments: json!({"text": "hi"}),
        trace: None,
    }
}

/// The side that asked to disconnect is not told its transport went down
/// (its engine asked), only that calls through the peer are gone; the
/// other side's engine hears `Disconnected`.
#[tokio::test]
async fn a_dial_is_one_transport_each_side_and_a_disconnect_ends_it() {
    let (mut a, mut b) = connected().await;
    assert!(a.net.is_connected(&b.peer) && b.net.is_connected(&a.peer));
    a.net.disconnect(&b.node);
    let (mut down_a, mut down_b) = (false, false);
    while !(down_a && down_b) {
        match next(&mut a, &mut b).await {
            (Who::A, NetEvent::PeerGone { peer }) if peer == b.node => down_a = true,
            (Who::A, NetEvent::Disconnected { .. }) => panic!("A's engine asked for it"),
            (Who::B, NetEvent::Disconnected { peer, .. }) if peer == a.node => down_b = true,
            (who, NetEvent::Connected { .. }) => panic!("{who:?} reconnected by itself"),
            _ => {}
        }
    }
    assert!(!a.net.is_connected(&b.peer));
}

#[tokio::test]
async fn a_routing_message_arrives_as_a_request_and_is_acknowledged_once_answered() {
    let (mut a, mut b) = connected().await;
    a.net.send(&b.node, Message::Keepalive);
    loop {
        match next(&mut a, &mut b).await {
            (
                Who::B,
                NetEvent::Request {
                    node,
                    reported,
                    inbound,
                    reply,
                    ..
                },
            ) => {
                assert_eq!(node, Some(a.node));
                assert!(reported, "the engine has this transport");
                assert!(matches!(
                    inbound,
                    route_codec::Inbound::Message(Message::Keepalive)
                ));
                b.net.respond(reply, RouteResponse::Ack);
                break;
            }
            (who, NetEvent::Disconnected { .. }) => panic!("{who:?} lost the transport"),
            _ => {}
        }
    }
    // The answer drains A's link: nothing is left in flight.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while a
        .net
        .link_info(&b.node)
        .is_some_and(|l| l.stats.frames_acked < 1)
    {
        assert!(tokio::time::Instant::now() < deadline, "no acknowledgement");
        let _ = tokio::time::timeout(Duration::from_millis(50), next(&mut a, &mut b)).await;
    }
}

#[tokio::test]
async fn calls_need_a_session_and_then_travel_and_are_answered() {
    let (mut a, mut b) = connected().await;
    // No session at B yet: its gate refuses the call stream, and A hears
    // the CALL failed, certainly not received.
    a.net.set_session(&b.node, true);
    a.net.send_call(&b.node, CallMessage::Call(call(&a, 7)));
    loop {
        match next(&mut a, &mut b).await {
            (
                Who::A,
                NetEvent::CallFailed {
                    peer, leg, kind, ..
                },
            ) => {
                assert_eq!((peer, leg, kind), (b.node, LegId(7), CallKind::Call));
                break;
            }
            (Who::B, NetEvent::Call { .. }) => panic!("a call got past the gate without a session"),
            _ => {}
        }
    }
    assert!(
        b.net.gate_stats().call_streams_without_session >= 1,
        "{:?}",
        b.net.gate_stats()
    );

    // With the session up both ways, the CALL arrives and its answer
    // comes back on the same leg.
    b.net.set_session(&a.node, true);
    a.net.send_call(&b.node, CallMessage::Call(call(&a, 8)));
    loop {
        match next(&mut a, &mut b).await {
            (Who::B, NetEvent::Call { peer, msg, .. }) => {
                assert_eq!(peer, a.node);
                let CallMessage::Call(c) = msg else {
                    panic!("not a CALL: {msg:?}")
                };
                assert_eq!(c.arguments, json!({"text": "hi"}));
                b.net.answer_call(&a.node, c.leg, CallAnswer::Accepted);
            }
            (Who::A, NetEvent::CallAnswered { peer, answer }) => {
                assert_eq!(peer, b.node);
                assert_eq!(answer.leg, LegId(8));
                assert!(matches!(answer.answer, CallAnswer::Accepted));
                break;
            }
            (Who::A, NetEvent::CallFailed { reason, .. }) => panic!("the call failed: {reason}"),
            _ => {}
        }
    }
    assert_eq!(b.net.open_calls(), 0, "the answered CALL is no longer open");
}
