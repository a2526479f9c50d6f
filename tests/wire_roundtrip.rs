//! Round-trip property tests: every message type, with arbitrary routes,
//! attributes, communities, proofs and call payloads, encodes and decodes
//! back to itself; and whatever decodes re-encodes to the same bytes.

use std::collections::BTreeMap;
use std::sync::Arc;

use agent_bgp::core::attrs::{Aggregator, AttrValue, ExtraAttr, PathAttrs};
use agent_bgp::core::community::Community;
use agent_bgp::core::message::{
    Capabilities, ErrorCode, Message, Notification, Open, PROTOCOL_VERSION, Update,
};
use agent_bgp::core::proof::{AsnCert, OriginAttestation, PathSignature, RouteProof, Signature};
use agent_bgp::core::role::Role;
use agent_bgp::core::route::{Route, RouteKey};
use agent_bgp::core::{AgentId, Asn, ClusterId, Millis, NodeId, Prefix};
use agent_bgp::wire::call::{
    Answer, Call, CallAnswer, CallError, CallErrorKind, CallId, CallMessage, CallOp, CallOrigin,
    CallOutcome, CallResult, CallReturn, Cancel, HopTrace, LegId, Progress, ProgressInfo,
};
use agent_bgp::wire::{Frame, Limits, decode, encode, encode_update_frames};
use proptest::prelude::*;
use serde_json::Value as Json;

fn arb_prefix() -> impl Strategy<Value = Prefix> {
    (
        prop::collection::vec("[a-z0-9][a-z0-9._-]{0,8}", 0..4),
        any::<bool>(),
    )
        .prop_map(|(segs, wild)| {
            let mut s = segs.join("/");
            if s.is_empty() {
                s = "*".into();
            } else if wild {
                s.push_str("/*");
            }
            Prefix::new(&s).unwrap()
        })
}

fn arb_community() -> impl Strategy<Value = Community> {
    prop_oneof![
        any::<u32>().prop_map(Community::Standard),
        (any::<u32>(), any::<u32>(), any::<u32>()).prop_map(|(a, b, c)| Community::Large(a, b, c)),
        "[a-z][a-z0-9._-]{0,15}".prop_map(|w| Community::Named(w.as_str().into())),
    ]
}

fn arb_node() -> impl Strategy<Value = NodeId> {
    any::<[u8; 32]>().prop_map(NodeId)
}

fn arb_sig() -> impl Strategy<Value = Signature> {
    (any::<[u8; 32]>(), any::<[u8; 32]>()).prop_map(|(a, b)| {
        let mut s = [0u8; 64];
        s[..32].copy_from_slice(&a);
        s[32..].copy_from_slice(&b);
        Signature(s)
    })
}

fn arb_extra_value() -> impl Strategy<Value = AttrValue> {
    prop_oneof![
        any::<bool>().prop_map(AttrValue::Bool),
        any::<i64>().prop_map(AttrValue::Int),
        "[ -~]{0,20}".prop_map(|t| AttrValue::Text(t.as_str().into())),
        prop::collection::vec(any::<u8>(), 0..20).prop_map(|b| AttrValue::Bytes(b.into())),
    ]
}

/// A raw CBOR item standing for an attribute from a future version.
fn arb_carried() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        any::<u64>().prop_map(|n| cbor(&ciborium::Value::Integer(n.into()))),
        "[a-z]{0,10}".prop_map(|t| cbor(&ciborium::Value::Text(t))),
        prop::collection::vec(any::<u32>(), 0..4).prop_map(|v| cbor(&ciborium::Value::Array(
            v.into_iter()
                .map(|n| ciborium::Value::Integer(n.into()))
                .collect()
        ))),
    ]
}

fn cbor(v: &ciborium::Value) -> Vec<u8> {
    let mut out = Vec::new();
    ciborium::into_writer(v, &mut out).unwrap();
    out
}

fn arb_attrs() -> impl Strategy<Value = PathAttrs> {
    let extras = (
        prop::collection::btree_map(
            "[a-z][a-z0-9-]{0,10}",
            (any::<bool>(), arb_extra_value()),
            0..4,
        ),
        // Odd keys from 33, except 35 (only-to-customer, a known attribute).
        prop::collection::btree_map(
            (16u64..60)
                .prop_map(|k| 2 * k + 1)
                .prop_filter("known", |k| *k != 35),
            arb_carried(),
            0..3,
        ),
    )
        .prop_map(|(named, carried)| {
            let mut m: BTreeMap<Arc<str>, ExtraAttr> = named
                .into_iter()
                .map(|(k, (transitive, value))| {
                    (k.as_str().into(), ExtraAttr { transitive, value })
                })
                .collect();
            for (k, raw) in carried {
                m.insert(
                    format!("#{k}").as_str().into(),
                    ExtraAttr {
                        transitive: true,
                        value: AttrValue::Bytes(raw.into()),
                    },
                );
            }
            m
        });
    (
        (
            "[A-Za-z0-9_./-]{0,20}",
            prop::collection::vec(any::<u32>().prop_map(Asn), 0..8),
            any::<u32>(),
            any::<u32>(),
            prop::collection::vec(arb_community(), 0..6),
            prop::collection::vec("[a-z]{1,10}", 0..5),
            any::<u64>(),
        ),
        (
            prop::option::of(arb_node()),
            prop::collection::vec(any::<u32>().prop_map(ClusterId), 0..4),
            prop::option::of((
                any::<u32>(),
                arb_node(),
                prop::collection::vec(any::<u32>().prop_map(Asn), 0..5),
            )),
            extras,
            prop::option::of(arb_node()),
            prop::option::of(any::<u32>().prop_map(Asn)),
        ),
    )
        .prop_map(
            |(
                (agent, as_path, local_pref, med, communities, caps, t),
                (originator, cluster_list, aggregator, extra, next_hop, otc),
            )| {
                let mut a = PathAttrs {
                    agent: AgentId::new(&agent),
                    as_path,
                    local_pref,
                    med,
                    communities,
                    capabilities: caps.iter().map(|c| Arc::from(c.as_str())).collect(),
                    origin_time: Millis(t),
                    originator,
                    cluster_list,
                    aggregator: aggregator.map(|(asn, node, as_set)| Aggregator {
                        asn: Asn(asn),
                        node,
                        as_set,
                    }),
                    extra,
                    next_hop,
                    otc,
                };
                a.normalize();
                a
            },
        )
}

fn arb_cert() -> impl Strategy<Value = Arc<AsnCert>> {
    (
        any::<u32>(),
        arb_node(),
        any::<u64>(),
        any::<u64>(),
        prop::option::of(arb_node()),
        arb_sig(),
        prop::collection::btree_set(arb_community(), 0..4),
    )
        .prop_map(|(asn, node, a, b, issuer, signature, communities)| {
            Arc::new(AsnCert {
                asn: Asn(asn),
                node,
                not_before: Millis(a),
                not_after: Millis(b),
                issuer,
                communities: communities.into_iter().collect(),
                signature,
            })
        })
}

fn arb_proof() -> impl Strategy<Value = RouteProof> {
    (
        arb_cert(),
        any::<u64>(),
        arb_sig(),
        prop::collection::vec((arb_cert(), any::<u8>(), any::<u32>(), arb_sig()), 0..4),
    )
        .prop_map(|(cert, expires, signature, hops)| RouteProof {
            origin: OriginAttestation {
                cert,
                expires: Millis(expires),
                signature,
            },
            path: hops
                .into_iter()
                .map(|(cert, pcount, target, signature)| PathSignature {
                    cert,
                    pcount,
                    target: Asn(target),
                    signature,
                })
                .collect(),
        })
}

fn arb_route(attrs: Vec<Arc<PathAttrs>>) -> impl Strategy<Value = Route> {
    (
        arb_prefix(),
        any::<u32>(),
        0..attrs.len(),
        prop::option::of(arb_proof()),
    )
        .prop_map(move |(prefix, path_id, ai, proof)| Route {
            prefix,
            path_id,
            attrs: attrs[ai].clone(),
            proof: proof.map(Arc::new),
        })
}

fn arb_update() -> impl Strategy<Value = Update> {
    prop::collection::vec(arb_attrs().prop_map(Arc::new), 1..4).prop_flat_map(|attrs| {
        (
            prop::collection::vec(arb_route(attrs), 0..8),
            prop::collection::vec(
                (arb_prefix(), any::<u32>())
                    .prop_map(|(prefix, path_id)| RouteKey { prefix, path_id }),
                0..6,
            ),
            any::<bool>(),
            any::<u8>(),
        )
            .prop_map(|(announce, withdraw, end_of_rib, mask)| Update {
                // The unreachable signal names some of the withdrawn.
                unreachable: withdraw
                    .iter()
                    .enumerate()
                    .filter(|(i, _)| mask & (1 << i) != 0)
                    .map(|(_, k)| k.prefix.clone())
                    .collect(),
                announce,
                withdraw,
                end_of_rib,
                tombstones: Vec::new(),
            })
    })
}

fn arb_open() -> impl Strategy<Value = Open> {
    (
        any::<u16>(),
        any::<u32>(),
        arb_node(),
        any::<u16>(),
        (
            any::<bool>(),
            prop::option::of(any::<u16>()),
            any::<bool>(),
            any::<bool>(),
            prop::option::of(prop::sample::select(Role::ALL.to_vec())),
        ),
        "[a-z0-9-]{0,20}",
        prop::option::of(arb_cert()),
    )
        .prop_map(
            |(version, asn, node, hold, (rr, gr, ap, mp, role), fed, cert)| Open {
                version,
                asn: Asn(asn),
                node,
                hold_time: hold,
                capabilities: Capabilities {
                    unreachable: rr && mp,
                    tombstones: Default::default(),
                    route_refresh: rr,
                    graceful_restart: gr,
                    add_path: ap,
                    multipath: mp,
                    role,
                },
                federation: fed,
                cert,
            },
        )
}

fn arb_notification() -> impl Strategy<Value = Notification> {
    (
        prop::sample::select(vec![
            ErrorCode::MessageHeader,
            ErrorCode::Open,
            ErrorCode::Update,
            ErrorCode::HoldTimerExpired,
            ErrorCode::Fsm,
            ErrorCode::Cease,
            ErrorCode::RouteRefresh,
        ]),
        any::<u8>(),
        ".{0,60}",
    )
        .prop_map(|(code, subcode, text)| Notification {
            code,
            subcode,
            text,
        })
}

fn arb_json() -> impl Strategy<Value = Json> {
    let leaf = prop_oneof![
        Just(Json::Null),
        any::<bool>().prop_map(Json::Bool),
        any::<i64>().prop_map(Json::from),
        any::<u64>().prop_map(Json::from),
        (-1e12f64..1e12).prop_map(Json::from),
        ".{0,12}".prop_map(Json::String),
    ];
    leaf.prop_recursive(4, 32, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Json::Array),
            prop::collection::btree_map(".{0,8}", inner, 0..6)
                .prop_map(|m| Json::Object(m.into_iter().collect())),
        ]
    })
}

fn arb_origin() -> impl Strategy<Value = CallOrigin> {
    (
        (
            any::<[u8; 16]>().prop_map(CallId),
            arb_node(),
            any::<u32>(),
            prop::collection::vec(arb_community(), 0..3),
            arb_prefix(),
            any::<bool>(),
        ),
        (
            any::<bool>(),
            prop::option::of("[a-z_]{1,20}"),
            any::<[u8; 32]>(),
            any::<u64>(),
            any::<u64>(),
            prop::option::of(any::<[u8; 64]>().prop_map(Signature)),
            prop::option::of(arb_cert()),
        ),
    )
        .prop_map(
            |(
                (id, caller, asn, mut communities, target, describe),
                (idem, tool, digest, issued, deadline, signature, cert),
            )| {
                communities.sort();
                communities.dedup();
                CallOrigin {
                    id,
                    caller,
                    caller_asn: Asn(asn),
                    communities,
                    target,
                    op: if describe {
                        CallOp::Describe
                    } else {
                        CallOp::Tool
                    },
                    idempotent: idem,
                    tool,
                    args_digest: digest,
                    issued: Millis(issued),
                    deadline: Millis(deadline),
                    cert,
                    signature,
                }
            },
        )
}

fn arb_error() -> impl Strategy<Value = CallError> {
    (
        1u16..=13,
        any::<i64>(),
        ".{0,30}",
        prop::option::of(arb_json()),
    )
        .prop_map(|(kind, code, message, data)| CallError {
            kind: CallErrorKind::from_number(kind).unwrap_or(CallErrorKind::Internal),
            code,
            message,
            data,
        })
}

fn arb_return() -> impl Strategy<Value = CallReturn> {
    (
        prop_oneof![
            arb_json().prop_map(CallOutcome::Ok),
            arb_error().prop_map(CallOutcome::Err),
        ],
        prop::collection::vec(
            (arb_node(), any::<u32>(), any::<u64>()).prop_map(|(node, asn, us)| HopTrace {
                node,
                asn: Asn(asn),
                elapsed_us: us,
            }),
            0..4,
        ),
    )
        .prop_map(|(outcome, trace)| CallReturn {
            sealed: None,
            seal: None,
            outcome,
            trace,
            sent_back: 0,
        })
        // A sealed return: the outcome reads Ok(null), the box holds it.
        .prop_flat_map(|r| {
            (Just(r), proptest::option::of(arb_sealed())).prop_map(|(mut r, s)| {
                if let Some(s) = s {
                    r.outcome = CallOutcome::Ok(serde_json::Value::Null);
                    r.sealed = Some(Arc::new(s));
                }
                r
            })
        })
}

fn arb_sealed() -> impl Strategy<Value = agent_bgp::core::call::Sealed> {
    (
        arb_node(),
        any::<[u8; 32]>(),
        prop::collection::vec(any::<u8>(), 0..64),
    )
        .prop_map(|(to, enc, ct)| agent_bgp::core::call::Sealed { to, enc, ct })
}

fn arb_call_message() -> impl Strategy<Value = CallMessage> {
    let leg = any::<u64>().prop_map(LegId);
    prop_oneof![
        (
            leg.clone(),
            any::<u8>(),
            any::<bool>(),
            arb_origin(),
            arb_json(),
            proptest::option::of(0u8..8),
            proptest::option::of(any::<([u8; 16], [u8; 8], u8)>()),
            proptest::option::of(arb_sealed()),
        )
            .prop_map(
                |(leg, hop_limit, progress, origin, arguments, log_level, trace, sealed)| {
                    CallMessage::Call(Call {
                        // Sealed arguments travel instead of the clear ones.
                        arguments: if sealed.is_some() {
                            serde_json::Value::Null
                        } else {
                            arguments
                        },
                        sealed: sealed.map(Arc::new),
                        leg,
                        hop_limit,
                        progress,
                        log_level,
                        origin: Arc::new(origin),
                        // Only valid trace contexts are sent (ids not all zero).
                        trace: trace.map(|(mut trace_id, mut span_id, flags)| {
                            trace_id[0] |= 1;
                            span_id[0] |= 1;
                            agent_bgp::core::call::TraceContext {
                                trace_id,
                                span_id,
                                flags,
                            }
                        }),
                    })
                },
            ),
        (
            leg.clone(),
            prop_oneof![
                Just(CallAnswer::Accepted),
                arb_error().prop_map(CallAnswer::Refused),
                arb_return().prop_map(CallAnswer::Done),
            ]
        )
            .prop_map(|(leg, answer)| CallMessage::Answer(Answer { leg, answer })),
        (leg.clone(), arb_return())
            .prop_map(|(leg, ret)| CallMessage::Result(CallResult { leg, ret })),
        (leg.clone(), prop::option::of(".{0,30}"))
            .prop_map(|(leg, reason)| CallMessage::Cancel(Cancel { leg, reason })),
        (
            leg,
            -1e9f64..1e9,
            prop::option::of(0f64..1e9),
            prop::option::of(".{0,30}")
        )
            .prop_map(
                |(leg, progress, total, message)| CallMessage::Progress(Progress {
                    leg,
                    info: ProgressInfo {
                        progress,
                        total,
                        message
                    }
                })
            ),
    ]
}

fn arb_frame() -> impl Strategy<Value = Frame> {
    prop_oneof![
        arb_open().prop_map(|o| Frame::Routing(Message::Open(o))),
        Just(Frame::Routing(Message::Keepalive)),
        Just(Frame::Routing(Message::RouteRefresh)),
        arb_update().prop_map(|u| Frame::Routing(Message::Update(u))),
        arb_notification().prop_map(|n| Frame::Routing(Message::Notification(n))),
        arb_call_message().prop_map(Frame::Call),
    ]
}

fn round_trip(f: &Frame) -> Result<(), TestCaseError> {
    let l = Limits::default();
    let bytes = encode(f, &l).map_err(|e| TestCaseError::fail(e.to_string()))?;
    let back = decode(&bytes, &l).map_err(|e| TestCaseError::fail(e.to_string()))?;
    prop_assert_eq!(&back, f);
    // Canonical: decoding then encoding gives the same bytes.
    prop_assert_eq!(encode(&back, &l).unwrap(), bytes);
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    #[test]
    fn open_round_trips(o in arb_open()) {
        round_trip(&Frame::Routing(Message::Open(o)))?;
    }

    #[test]
    fn update_round_trips(u in arb_update()) {
        round_trip(&Frame::Routing(Message::Update(u)))?;
    }

    #[test]
    fn notification_round_trips(n in arb_notification()) {
        round_trip(&Frame::Routing(Message::Notification(n)))?;
    }

    #[test]
    fn call_messages_round_trip(m in arb_call_message()) {
        round_trip(&Frame::Call(m))?;
    }

    #[test]
    fn any_frame_round_trips(f in arb_frame()) {
        round_trip(&f)?;
    }

    #[test]
    fn attribute_tables_share_decoded_attributes(u in arb_update()) {
        let l = Limits::default();
        let back = match decode(&encode(&Frame::Routing(Message::Update(u.clone())), &l).unwrap(), &l).unwrap() {
            Frame::Routing(Message::Update(b)) => b,
            other => return Err(TestCaseError::fail(format!("{other:?}"))),
        };
        // Routes with equal attributes share one allocation after decoding.
        for (i, a) in back.announce.iter().enumerate() {
            for b in &back.announce[i + 1..] {
                prop_assert_eq!(a.attrs == b.attrs, Arc::ptr_eq(&a.attrs, &b.attrs));
            }
        }
    }

    #[test]
    fn split_updates_reassemble(u in arb_update(), max_routes in 1usize..4, max_withdraws in 1usize..4) {
        let l = Limits::default().with_max_routes(max_routes).with_max_withdraws(max_withdraws);
        let frames = encode_update_frames(&u, &l).unwrap();
        let mut announce = Vec::new();
        let mut withdraw = Vec::new();
        let mut eor = Vec::new();
        let mut unreachable = std::collections::BTreeSet::new();
        for f in &frames {
            match decode(f, &l).unwrap() {
                Frame::Routing(Message::Update(p)) => {
                    prop_assert!(p.announce.len() <= max_routes && p.withdraw.len() <= max_withdraws);
                    unreachable.extend(p.unreachable);
                    announce.extend(p.announce);
                    withdraw.extend(p.withdraw);
                    eor.push(p.end_of_rib);
                }
                other => return Err(TestCaseError::fail(format!("{other:?}"))),
            }
        }
        prop_assert_eq!(announce, u.announce);
        prop_assert_eq!(withdraw, u.withdraw);
        prop_assert_eq!(unreachable, u.unreachable.iter().cloned().collect());
        // Only the last frame may carry end-of-RIB.
        prop_assert_eq!(eor.last().copied(), Some(u.end_of_rib));
        prop_assert!(eor[..eor.len() - 1].iter().all(|e| !e));
    }
}

#[test]
fn keepalive_and_route_refresh_round_trip() {
    for m in [Message::Keepalive, Message::RouteRefresh] {
        let f = Frame::Routing(m);
        round_trip(&f).unwrap();
    }
}

#[test]
fn withdraw_only_update_goes_out_as_withdraw() {
    let u = Update {
        unreachable: Default::default(),
        tombstones: Default::default(),
        announce: vec![],
        withdraw: vec![RouteKey::new(Prefix::new("a/b").unwrap())],
        end_of_rib: false,
    };
    let f = Frame::Routing(Message::Update(u));
    assert_eq!(f.message_type(), agent_bgp::wire::MessageType::Withdraw);
    round_trip(&f).unwrap();
    let open = Open {
        version: PROTOCOL_VERSION,
        asn: Asn(1),
        node: NodeId::from_u64(1),
        hold_time: 90,
        capabilities: Capabilities::default(),
        federation: "f".into(),
        cert: None,
    };
    round_trip(&Frame::Routing(Message::Open(open))).unwrap();
}

#[test]
fn oversized_update_is_split_to_fit_the_frame_limit() {
    let attrs = Arc::new(PathAttrs::default());
    let announce: Vec<Route> = (0..300)
        .map(|i| {
            Route::new(
                Prefix::new(&format!("tools/t{i}/{}", "a".repeat(60))).unwrap(),
                attrs.clone(),
            )
        })
        .collect();
    let u = Update {
        unreachable: Default::default(),
        tombstones: Default::default(),
        announce,
        withdraw: vec![],
        end_of_rib: true,
    };
    let l = Limits::default().with_max_frame_bytes(8 * 1024);
    assert!(matches!(
        encode(&Frame::Routing(Message::Update(u.clone())), &l),
        Err(agent_bgp::wire::EncodeError::FrameTooLarge { .. })
    ));
    let whole = encode(
        &Frame::Routing(Message::Update(u.clone())),
        &Limits::default(),
    )
    .unwrap()
    .len();
    let frames = encode_update_frames(&u, &l).unwrap();
    assert!(
        frames.len() > whole / (8 * 1024),
        "{} frames for {whole} bytes",
        frames.len()
    );
    let mut n = 0;
    for f in &frames {
        assert!(f.len() <= 8 * 1024);
        if let Frame::Routing(Message::Update(p)) = decode(f, &l).unwrap() {
            n += p.announce.len();
        }
    }
    assert_eq!(n, 300);
}

#[test]
fn the_unreachable_signal_rides_with_its_withdrawals_when_split() {
    let withdraw: Vec<RouteKey> = (0..400)
        .map(|i| RouteKey::new(Prefix::new(&format!("tools/w{i}/{}", "b".repeat(60))).unwrap()))
        .collect();
    let unreachable: Vec<Prefix> = withdraw
        .iter()
        .step_by(3)
        .map(|k| k.prefix.clone())
        .collect();
    let u = Update {
        withdraw,
        unreachable: unreachable.clone(),
        tombstones: Default::default(),
        ..Default::default()
    };
    let l = Limits::default().with_max_frame_bytes(8 * 1024);
    let frames = encode_update_frames(&u, &l).unwrap();
    assert!(frames.len() > 2);
    let mut seen = Vec::new();
    for f in &frames {
        let Frame::Routing(Message::Update(p)) = decode(f, &l).unwrap() else {
            panic!("an UPDATE")
        };
        for q in &p.unreachable {
            assert!(
                p.withdraw.iter().any(|k| &k.prefix == q),
                "{q} travels with its withdrawal"
            );
        }
        seen.extend(p.unreachable);
    }
    assert_eq!(seen, unreachable);
}

#[test]
fn a_route_that_does_not_encode_goes_as_a_withdrawal_and_the_rest_still_goes() {
    use agent_bgp::wire::encode_update_frames_or_withdraw;
    let route = |name: &str, path_len: usize| {
        Route::new(
            Prefix::new(name).unwrap(),
            Arc::new(PathAttrs {
                agent: AgentId::new("a"),
                as_path: (0..path_len as u32).map(|i| Asn(64_512 + i)).collect(),
                ..Default::default()
            }),
        )
    };
    let gone = RouteKey::new(Prefix::new("tools/gone").unwrap());
    let u = Update {
        announce: vec![
            route("tools/fine", 3),
            route("tools/too-long", 65),
            route("tools/also-fine", 64),
        ],
        withdraw: vec![gone.clone()],
        ..Default::default()
    };
    let l = Limits::default();
    assert!(
        encode_update_frames(&u, &l).is_err(),
        "whole, it does not encode"
    );
    let sent = encode_update_frames_or_withdraw(u, &l).unwrap();
    let (frames, withdrawn) = (&sent.frames, &sent.withdrawn);
    let too_long = RouteKey::new(Prefix::new("tools/too-long").unwrap());
    assert_eq!(*withdrawn, vec![too_long.clone()]);
    let mut announced = Vec::new();
    let mut withdrew = Vec::new();
    for f in frames {
        let Frame::Routing(Message::Update(p)) = decode(f, &l).unwrap() else {
            panic!("an UPDATE")
        };
        announced.extend(p.announce.into_iter().map(|r| r.prefix.to_string()));
        withdrew.extend(p.withdraw);
    }
    assert_eq!(announced, ["tools/fine", "tools/also-fine"]);
    assert_eq!(withdrew, [gone, too_long]);
    assert_eq!(
        sent.update.announce.len(),
        2,
        "what the frames carry, for acknowledgements"
    );
    // Nothing to rescue: an error, not an empty UPDATE.
    let bad = Update {
        end_of_rib: true,
        ..Default::default()
    };
    assert!(encode_update_frames_or_withdraw(bad, &l.with_max_frame_bytes(1)).is_err());
}
