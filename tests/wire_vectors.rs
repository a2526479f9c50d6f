//! Golden test vectors: known messages and their exact CBOR bytes, in
//! tests/vectors/*.hex, so another implementation can be checked against
//! this one. The test encodes each message and compares bytes, and decodes
//! each file back to the message.
//!
//! Regenerate (after a deliberate format change) with
//! `UPDATE_VECTORS=1 cargo test --test wire_vectors`, and review the diff.

mod signing_fixtures;

use std::path::PathBuf;
use std::sync::Arc;

use agent_bgp::core::attrs::{AttrValue, ExtraAttr};
use agent_bgp::core::call::{Ask, Notify, Reply, TraceContext};
use agent_bgp::core::community::Community;
use agent_bgp::core::message::{
    Capabilities, ErrorCode, Message, Notification, Open, PROTOCOL_VERSION, Update, subcode,
};
use agent_bgp::core::proof::AsnCert;
use agent_bgp::core::role::Role;
use agent_bgp::core::route::RouteKey;
use agent_bgp::core::{Asn, Millis};
use agent_bgp::identity::cert::{cert_signed_bytes, derive_asn};
use agent_bgp::identity::route_sign::{origin_signed_bytes, path_signed_bytes};
use agent_bgp::identity::{VerifyContext, verify_route};
use agent_bgp::wire::call::{
    Answer, Call, CallAnswer, CallError, CallErrorKind, CallId, CallMessage, CallOp, CallOrigin,
    CallOutcome, CallResult, CallReturn, Cancel, HopTrace, LegId, Progress, ProgressInfo,
    call_signed_bytes,
};
use agent_bgp::wire::{Frame, Limits, decode, encode};
use serde_json::json;
use signing_fixtures::*;

fn dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/vectors")
}

fn to_hex_lines(b: &[u8]) -> String {
    let mut s = String::new();
    for chunk in b.chunks(32) {
        s.push_str(&hex::encode(chunk));
        s.push('\n');
    }
    s
}

fn read_hex(name: &str) -> Vec<u8> {
    let path = dir().join(format!("{name}.hex"));
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("{}: {e} (run with UPDATE_VECTORS=1)", path.display()));
    let clean: String = text.chars().filter(|c| !c.is_whitespace()).collect();
    hex::decode(clean).unwrap()
}

/// Compares `bytes` with the named vector, or writes it when regenerating.
fn check_bytes(name: &str, bytes: &[u8]) {
    if std::env::var_os("UPDATE_VECTORS").is_some() {
        std::fs::create_dir_all(dir()).unwrap();
        std::fs::write(dir().join(format!("{name}.hex")), to_hex_lines(bytes)).unwrap();
        return;
    }
    let want = read_hex(name);
    assert_eq!(
        hex::encode(bytes),
        hex::encode(&want),
        "vector {name} changed"
    );
}

fn check_frame(name: &str, frame: Frame) {
    let l = Limits::default();
    let bytes = encode(&frame, &l).unwrap();
    check_bytes(name, &bytes);
    let decoded = decode(&read_hex(name), &l).unwrap();
    assert_eq!(decoded, frame, "vector {name} decodes differently");
}

/// The signed 2-hop UPDATE used by several vectors: AS65001 (node 1)
/// originates two tools, sends to AS65002 (node 2), which sends to AS65003.
fn signed_update() -> Update {
    let o = issued(1, 65001);
    let a = issued(2, 65002);
    let mut lint = origin_route("coding/typescript/lint", "eslint");
    let mut attrs = (*lint.attrs).clone();
    attrs.med = 20;
    attrs.communities = vec![
        Community::standard(65001, 7),
        Community::named("gold").unwrap(),
    ];
    let attrs = Arc::new(attrs);
    lint.attrs = attrs.clone();
    // One agent serving two prefixes: one attribute set on the wire.
    let mut fmt = origin_route("coding/typescript/format", "eslint");
    fmt.attrs = attrs;
    fmt.path_id = 2;
    let hop = |r| send(&send(&originate(&r, &o), &o, 65002, 1), &a, 65003, 1);
    let announce = vec![hop(lint), hop(fmt)];
    // Both routes went through the same hops, so they share attributes.
    assert!(
        Arc::ptr_eq(&announce[0].attrs, &announce[1].attrs)
            || announce[0].attrs == announce[1].attrs
    );
    Update {
        unreachable: Default::default(),
        tombstones: Default::default(),
        announce,
        withdraw: vec![RouteKey::new(prefix("coding/python/*"))],
        end_of_rib: false,
    }
}

#[test]
fn keepalive_vector() {
    check_frame("keepalive", Frame::Routing(Message::Keepalive));
}

#[test]
fn route_refresh_vector() {
    check_frame("route-refresh", Frame::Routing(Message::RouteRefresh));
}

/// An OPEN from key 1 with its derived ASN, hold 90 s, federation
/// `laptops`.
fn key1_open(capabilities: Capabilities, cert: Option<Arc<AsnCert>>) -> Frame {
    let id = derived(1);
    Frame::Routing(Message::Open(Open {
        version: PROTOCOL_VERSION,
        asn: id.asn(),
        node: id.node_id(),
        hold_time: 90,
        capabilities,
        federation: "laptops".into(),
        cert,
    }))
}

#[test]
fn open_vector() {
    let id = derived(1);
    check_frame(
        "open",
        key1_open(
            Capabilities {
                unreachable: Default::default(),
                tombstones: Default::default(),
                route_refresh: true,
                graceful_restart: Some(120),
                add_path: true,
                multipath: false,
                role: None,
            },
            Some(id.cert().clone()),
        ),
    );
}

#[test]
fn update_vector_is_signed_and_verifies() {
    let u = signed_update();
    let t = trust();
    let ctx = VerifyContext {
        trust: &t,
        local_asn: Asn(65003),
        peer_asn: Asn(65002),
        now: NOW,
    };
    for r in &u.announce {
        assert_eq!(verify_route(r, &ctx), Ok(()));
    }
    check_frame("update", Frame::Routing(Message::Update(u)));
    // The routes decoded from the vector verify too.
    let Frame::Routing(Message::Update(back)) =
        decode(&read_hex("update"), &Limits::default()).unwrap()
    else {
        panic!("not an update")
    };
    for r in &back.announce {
        assert_eq!(verify_route(r, &ctx), Ok(()));
    }
}

/// A route as AS65003 receives it from a transparent route server
/// (node 4, AS65100): originated by node 1 in AS65001, signed by it towards
/// the route server (pcount 1), then by the route server towards AS65003
/// with pcount 0, AS path `[65001]`, and node 1 as the next hop (key 11).
#[test]
fn route_server_update_vector() {
    let o = issued(1, 65001);
    let rs = issued(4, 65100);
    let to_rs = send(
        &originate(&origin_route("coding/typescript/lint", "eslint"), &o),
        &o,
        65100,
        1,
    );
    let mut relayed = to_rs.clone();
    let mut attrs = (*relayed.attrs).clone();
    attrs.next_hop = Some(o.node_id());
    relayed.attrs = Arc::new(attrs);
    relayed.proof = Some(
        agent_bgp::identity::route_sign::sign_path_hop_with_pcount(&relayed, &rs, Asn(65003), 0)
            .unwrap(),
    );
    assert_eq!(relayed.attrs.as_path, vec![Asn(65001)]);
    let ctx = |t| VerifyContext {
        trust: t,
        local_asn: Asn(65003),
        peer_asn: Asn(65100),
        now: NOW,
    };
    let transparent = trust().with_transparent(Asn(65100));
    assert_eq!(verify_route(&relayed, &ctx(&transparent)), Ok(()));
    // Only a receiver that configured the route server as one accepts it.
    assert!(matches!(
        verify_route(&relayed, &ctx(&trust())),
        Err(agent_bgp::identity::RouteVerifyError::TransparentNotAllowed { index: 1, .. })
    ));
    let u = Update {
        announce: vec![relayed],
        ..Default::default()
    };
    check_frame("update-route-server", Frame::Routing(Message::Update(u)));
}

#[test]
fn withdraw_vector() {
    check_frame(
        "withdraw",
        Frame::Routing(Message::Update(Update {
            unreachable: Default::default(),
            tombstones: Default::default(),
            announce: vec![],
            withdraw: vec![
                RouteKey::new(prefix("coding/typescript/lint")),
                RouteKey {
                    prefix: prefix("coding/*"),
                    path_id: 2,
                },
            ],
            end_of_rib: false,
        })),
    );
}

#[test]
fn end_of_rib_vector() {
    check_frame(
        "end-of-rib",
        Frame::Routing(Message::Update(Update {
            end_of_rib: true,
            ..Default::default()
        })),
    );
}

#[test]
fn notification_vector() {
    check_frame(
        "notification",
        Frame::Routing(Message::Notification(Notification::new(
            ErrorCode::Open,
            subcode::CERTIFICATE_EXPIRED,
            "certificate expired at 1767139200000ms",
        ))),
    );
}

#[test]
fn unknown_attributes_vector() {
    let mut u = Update::default();
    let mut r = origin_route("a/b", "agent");
    let mut attrs = (*r.attrs).clone();
    attrs.extra.insert(
        "region".into(),
        ExtraAttr {
            transitive: true,
            value: AttrValue::Text("eu-west".into()),
        },
    );
    attrs.extra.insert(
        "#41".into(),
        ExtraAttr {
            transitive: true,
            value: AttrValue::Bytes(vec![0x82, 0x01, 0x02].into()),
        },
    );
    r.attrs = Arc::new(attrs);
    u.announce.push(r);
    check_frame("update-extra-attrs", Frame::Routing(Message::Update(u)));
}

/// Neighbour roles (RFC 9234): an OPEN announcing role `customer` (code
/// 3, capability key 4), and an UPDATE whose route carries the
/// only-to-customer mark of AS65001 (attribute key 35).
#[test]
fn role_and_only_to_customer_vectors() {
    check_frame(
        "open-role",
        key1_open(
            Capabilities {
                unreachable: Default::default(),
                tombstones: Default::default(),
                route_refresh: true,
                graceful_restart: None,
                add_path: false,
                multipath: false,
                role: Some(Role::Customer),
            },
            None,
        ),
    );
    let mut u = Update::default();
    let mut r = origin_route("a/b", "agent");
    let mut attrs = (*r.attrs).clone();
    attrs.as_path = vec![Asn(65001)];
    attrs.otc = Some(Asn(65001));
    r.attrs = Arc::new(attrs);
    u.announce.push(r);
    check_frame("update-otc", Frame::Routing(Message::Update(u)));
}

/// The CALL every call vector refers to: key 3 (derived ASN) calls
/// `lint_file` under `coding/typescript/lint`, signed.
fn signed_call_origin() -> CallOrigin {
    let caller = derived(3);
    let mut o = CallOrigin {
        id: CallId([0x11; 16]),
        caller: caller.node_id(),
        caller_asn: caller.asn(),
        communities: vec![Community::named("gold").unwrap()],
        target: prefix("coding/typescript/lint"),
        op: CallOp::Tool,
        idempotent: true,
        tool: Some("lint_file".into()),
        args_digest: [0x22; 32],
        issued: NOW,
        deadline: Millis(NOW.0 + 30_000),
        cert: Some(caller.cert().clone()),
        signature: None,
    };
    o.signature = Some(caller.key().sign(&call_signed_bytes(&o)));
    o
}

#[test]
fn call_vectors() {
    let leg = LegId(7);
    check_frame(
        "call",
        Frame::Call(CallMessage::Call(Call {
            sealed: None,
            leg,
            hop_limit: 16,
            log_level: None,
            progress: true,
            origin: Arc::new(signed_call_origin()),
            arguments: json!({"path": "src/main.ts", "fix": true, "max": 3}),
            trace: None,
        })),
    );
    // The same CALL in a W3C trace (optional key 32; old nodes ignore it).
    check_frame(
        "call-traced",
        Frame::Call(CallMessage::Call(Call {
            sealed: None,
            leg,
            hop_limit: 16,
            log_level: None,
            progress: true,
            origin: Arc::new(signed_call_origin()),
            arguments: json!({"path": "src/main.ts", "fix": true, "max": 3}),
            trace: Some(TraceContext {
                trace_id: [
                    0x4b, 0xf9, 0x2f, 0x35, 0x77, 0xb3, 0x4d, 0xa6, 0xa3, 0xce, 0x92, 0x9d, 0x0e,
                    0x0e, 0x47, 0x36,
                ],
                span_id: [0x00, 0xf0, 0x67, 0xaa, 0x0b, 0xa9, 0x02, 0xb7],
                flags: 1,
            }),
        })),
    );
    let trace = vec![
        HopTrace {
            node: key(1).node_id(),
            asn: Asn(65001),
            elapsed_us: 950,
        },
        HopTrace {
            node: key(2).node_id(),
            asn: Asn(65002),
            elapsed_us: 1200,
        },
    ];
    check_frame(
        "call-answer-accepted",
        Frame::Call(CallMessage::Answer(Answer {
            leg,
            answer: CallAnswer::Accepted,
        })),
    );
    check_frame(
        "call-answer-done",
        Frame::Call(CallMessage::Answer(Answer {
            leg,
            answer: CallAnswer::Done(CallReturn {
                sealed: None,
                seal: None,
                sent_back: 0,
                outcome: CallOutcome::Ok(
                    json!({"content": [{"type": "text", "text": "0 problems"}], "isError": false}),
                ),
                trace: trace.clone(),
            }),
        })),
    );
    check_frame(
        "call-answer-refused",
        Frame::Call(CallMessage::Answer(Answer {
            leg,
            answer: CallAnswer::Refused(CallError::new(
                CallErrorKind::AccessDenied,
                "AS65001: access to coding/typescript/lint denied to AS65003 by rule 1",
            )),
        })),
    );
    check_frame(
        "call-result-ok",
        Frame::Call(CallMessage::Result(CallResult {
            leg,
            ret: CallReturn {
                sealed: None,
                seal: None,
                sent_back: 0,
                outcome: CallOutcome::Ok(
                    json!({"content": [{"type": "text", "text": "0 problems"}], "isError": false}),
                ),
                trace,
            },
        })),
    );
    check_frame(
        "call-result-err",
        Frame::Call(CallMessage::Result(CallResult {
            leg,
            ret: CallReturn {
                sealed: None,
                seal: None,
                sent_back: 0,
                outcome: CallOutcome::Err(CallError::upstream(
                    -32602,
                    "unknown argument `fx`",
                    Some(json!({"argument": "fx"})),
                )),
                trace: Vec::new(),
            },
        })),
    );
    check_frame(
        "cancel",
        Frame::Call(CallMessage::Cancel(Cancel {
            leg,
            reason: Some("client went away".into()),
        })),
    );
    check_frame(
        "progress",
        Frame::Call(CallMessage::Progress(Progress {
            leg,
            info: ProgressInfo {
                progress: 0.5,
                total: Some(1.0),
                message: Some("halfway".into()),
            },
        })),
    );
    check_frame(
        "notify",
        Frame::Call(CallMessage::Notify(Notify {
            leg,
            method: "notifications/message".into(),
            params: json!({"level": "info", "logger": "lint", "data": "checked 3 files"}),
        })),
    );
    check_frame(
        "ask",
        Frame::Call(CallMessage::Ask(Ask {
            leg,
            ask: 1,
            method: "elicitation/create".into(),
            params: json!({"message": "Which branch?", "requestedSchema": {"type": "object", "properties": {"branch": {"type": "string"}}}}),
        })),
    );
    check_frame(
        "reply",
        Frame::Call(CallMessage::Reply(Reply {
            leg,
            ask: 1,
            outcome: CallOutcome::Ok(json!({"action": "accept", "content": {"branch": "main"}})),
        })),
    );
    check_bytes(
        "signed-bytes-call",
        &call_signed_bytes(&signed_call_origin()),
    );
}

#[test]
fn signed_bytes_vectors() {
    let o = issued(1, 65001);
    let c = o.cert();
    check_bytes(
        "signed-bytes-cert",
        &cert_signed_bytes(
            c.asn,
            &c.node,
            c.not_before,
            c.not_after,
            c.issuer.as_ref(),
            &c.communities,
        ),
    );
    // The same certificate vouching for two communities (the sixth
    // element, as text).
    check_bytes(
        "signed-bytes-cert-communities",
        &cert_signed_bytes(
            c.asn,
            &c.node,
            c.not_before,
            c.not_after,
            c.issuer.as_ref(),
            &[
                Community::standard(65001, 7),
                Community::named("finance").unwrap(),
            ],
        ),
    );
    let u = signed_update();
    let r = &u.announce[0];
    let p = r.proof.as_ref().unwrap();
    check_bytes(
        "signed-bytes-origin",
        &origin_signed_bytes(r, &p.origin.cert, p.origin.expires),
    );
    check_bytes(
        "signed-bytes-path-hop1",
        &path_signed_bytes(
            &p.origin.signature,
            &[(Asn(65001), 1), (Asn(65002), 1)],
            Asn(65003),
            Some(&p.path[0].signature),
        ),
    );
    // The derived ASN of node key 1, for implementations of derive_asn.
    let derived_asn = derive_asn(&key(1).node_id());
    check_bytes("derived-asn-key1", &derived_asn.0.to_be_bytes());
}
