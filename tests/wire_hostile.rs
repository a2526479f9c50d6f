//! Malformed, truncated, oversized and hostile frames: each is refused with
//! a typed error and the NOTIFICATION it deserves, and none panics.

use agent_bgp::core::Asn;
use agent_bgp::core::message::{ErrorCode, Message, Notification, subcode};
use agent_bgp::core::prefix::PrefixError;
use agent_bgp::core::role::Role;
use agent_bgp::wire::error::Area;
use agent_bgp::wire::{
    Bound, CborError, DecodeError, FieldErrorKind, Frame, Limits, MessageType, decode, encode,
};
use ciborium::Value;

fn int(n: u64) -> Value {
    Value::Integer(n.into())
}

fn map(entries: Vec<(u64, Value)>) -> Value {
    Value::Map(entries.into_iter().map(|(k, v)| (int(k), v)).collect())
}

fn bytes_of(v: &Value) -> Vec<u8> {
    let mut out = Vec::new();
    ciborium::into_writer(v, &mut out).unwrap();
    out
}

fn frame(ty: u64, body: Option<Value>) -> Vec<u8> {
    let mut e = vec![(0, int(1)), (1, int(ty))];
    if let Some(b) = body {
        e.push((2, b));
    }
    bytes_of(&map(e))
}

fn text(s: &str) -> Value {
    Value::Text(s.into())
}

fn route(prefix: &str, attrs: u64) -> Value {
    map(vec![(0, text(prefix)), (2, int(attrs))])
}

fn update(attrs: Vec<Value>, routes: Vec<Value>) -> Vec<u8> {
    frame(
        2,
        Some(map(vec![
            (0, Value::Array(attrs)),
            (2, Value::Array(routes)),
        ])),
    )
}

fn code(bytes: &[u8]) -> (ErrorCode, u8) {
    let e = decode(bytes, &Limits::default()).unwrap_err();
    let n = Notification::from(&e);
    assert!(!n.text.is_empty());
    (n.code, n.subcode)
}

fn err(bytes: &[u8]) -> DecodeError {
    decode(bytes, &Limits::default()).unwrap_err()
}

#[test]
fn valid_minimal_update_decodes() {
    let f = update(vec![map(vec![])], vec![route("a/b", 0)]);
    assert!(matches!(
        decode(&f, &Limits::default()),
        Ok(Frame::Routing(Message::Update(_)))
    ));
}

#[test]
fn oversized_frames_are_refused_before_parsing() {
    let l = Limits::default();
    let huge = vec![0u8; l.max_read_bytes() + 1];
    assert!(matches!(err(&huge), DecodeError::TooLarge { .. }));
    assert_eq!(
        code(&huge),
        (ErrorCode::MessageHeader, subcode::BAD_MESSAGE_LENGTH)
    );
    // A routing frame above the routing limit but below the call limit.
    let big_text = "x".repeat(l.max_frame_bytes() + 10);
    let f = frame(
        3,
        Some(map(vec![(0, int(6)), (1, int(0)), (2, text(&big_text))])),
    );
    assert!(f.len() < l.max_read_bytes());
    assert!(matches!(
        err(&f),
        DecodeError::TooLarge { max, .. } if max == l.max_frame_bytes()
    ));
}

#[test]
fn every_truncation_of_a_valid_frame_is_refused() {
    let f = update(
        vec![map(vec![(0, Value::Array(vec![int(65001)]))])],
        vec![route("a/b", 0), route("c/*", 0)],
    );
    assert!(decode(&f, &Limits::default()).is_ok());
    for cut in 0..f.len() {
        let e = err(&f[..cut]);
        assert!(matches!(e, DecodeError::Cbor(_)), "cut at {cut}: {e}");
        assert_eq!(
            code(&f[..cut]),
            (ErrorCode::MessageHeader, subcode::MALFORMED_CBOR)
        );
    }
}

#[test]
fn every_single_bit_flip_decodes_or_fails_cleanly() {
    let f = update(
        vec![map(vec![
            (0, Value::Array(vec![int(65001)])),
            (3, Value::Array(vec![int(7), text("gold")])),
        ])],
        vec![route("a/b", 0)],
    );
    for i in 0..f.len() {
        for bit in 0..8 {
            let mut g = f.clone();
            g[i] ^= 1 << bit;
            if let Err(e) = decode(&g, &Limits::default()) {
                let _ = Notification::from(&e);
            }
        }
    }
}

#[test]
fn deep_nesting_is_refused_without_recursing() {
    let mut f = frame(4, None);
    // Replace the frame with 100k nested arrays.
    f.clear();
    f.extend(std::iter::repeat_n(0x81u8, 100_000));
    f.push(0x00);
    assert!(matches!(
        err(&f),
        DecodeError::Cbor(CborError::TooDeep { .. })
    ));
    // Nesting inside a call's arguments, beyond the depth limit.
    let mut args = Value::Null;
    for _ in 0..80 {
        args = Value::Array(vec![args]);
    }
    let call = frame(16, Some(map(vec![(0, int(1)), (1, int(8)), (4, args)])));
    assert!(matches!(
        err(&call),
        DecodeError::Cbor(CborError::TooDeep { .. })
    ));
}

#[test]
fn huge_declared_lengths_are_refused_without_allocating() {
    // {0: 1, 1: 2, 2: {2: array(4294967295)}}
    let f = [
        0xa3, 0x00, 0x01, 0x01, 0x02, 0x02, 0xa1, 0x02, 0x9a, 0xff, 0xff, 0xff, 0xff,
    ];
    assert!(matches!(
        err(&f),
        DecodeError::Cbor(CborError::DeclaredLength { .. })
    ));
    // A text string claiming 2^64-1 bytes.
    let f = [
        0xa2, 0x00, 0x01, 0x01, 0x7b, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
    ];
    assert!(matches!(
        err(&f),
        DecodeError::Cbor(CborError::DeclaredLength { .. })
    ));
}

#[test]
fn item_bombs_are_bounded() {
    // A 1 MiB frame of one-byte items: the scan counts them against
    // max_items before ciborium builds anything.
    let mut f = vec![0xa3, 0x00, 0x01, 0x01, 0x02, 0x02, 0xa1, 0x02, 0x9a];
    let n: u32 = 1_000_000;
    f.extend_from_slice(&n.to_be_bytes());
    f.extend(std::iter::repeat_n(0xf6u8, n as usize));
    assert!(matches!(
        err(&f),
        DecodeError::Cbor(CborError::TooManyItems { .. })
    ));
}

/// A frame map with `n` distinct extension keys (32, 33, ...), each null.
fn wide_map_frame(n: u32) -> Vec<u8> {
    let mut f = vec![0xba];
    f.extend_from_slice(&(n + 2).to_be_bytes());
    f.extend_from_slice(&[0x00, 0x01, 0x01, 0x02]); // 0: version 1, 1: type UPDATE
    for k in 0..n {
        f.push(0x1a);
        f.extend_from_slice(&(k + 32).to_be_bytes());
        f.push(0xf6);
    }
    f
}

#[test]
fn a_map_with_a_quarter_million_keys_is_refused_by_the_scan() {
    // The frame from the issue: ~1 MiB, one map of ~175k distinct keys.
    // A per-key linear duplicate check made this O(n^2); now the scan
    // refuses the map's declared size before anything is built.
    let f = wide_map_frame(174_000);
    assert!(f.len() <= Limits::default().max_frame_bytes());
    assert!(matches!(
        err(&f),
        DecodeError::Cbor(CborError::MapTooLarge {
            count: 174_002,
            max: 65_536,
            ..
        })
    ));
    // Raise the map cap and the schema map's own cap (256 fields) refuses
    // it after one linear pass.
    let loose = Limits::default().with_max_map_entries(1 << 20);
    let e = decode(&f, &loose).unwrap_err();
    assert!(
        format!("{e:?}").contains("Fields"),
        "refused by the field cap: {e:?}"
    );
}

#[test]
fn duplicate_keys_are_found_in_maps_of_any_size() {
    // 200 distinct keys, then a repeat of the first: still refused.
    let mut e: Vec<(u64, Value)> = (0..200).map(|k| (k + 32, Value::Null)).collect();
    e.insert(0, (0, int(1)));
    e.insert(1, (1, int(4)));
    e.push((32, Value::Null));
    let f = bytes_of(&map(e));
    let got = err(&f);
    assert!(
        format!("{got:?}").contains("DuplicateKey { key: 32 }"),
        "{got:?}"
    );
}

#[test]
fn indefinite_lengths_tags_and_trailing_bytes_are_refused() {
    let mut indef = vec![0xbf, 0x00, 0x01, 0x01, 0x04, 0xff];
    assert!(matches!(
        err(&indef),
        DecodeError::Cbor(CborError::Indefinite { .. })
    ));
    indef = vec![0xc0, 0x60];
    assert!(matches!(
        err(&indef),
        DecodeError::Cbor(CborError::Tag { .. })
    ));
    let mut trailing = frame(4, None);
    trailing.push(0x00);
    assert!(matches!(
        err(&trailing),
        DecodeError::Cbor(CborError::TrailingBytes { count: 1, .. })
    ));
}

#[test]
fn wrong_envelope_types_are_refused() {
    for v in [
        Value::Array(vec![int(1), int(4)]),
        map(vec![(0, text("1")), (1, int(4))]),
        map(vec![(0, int(1)), (1, text("KEEPALIVE"))]),
        map(vec![(1, int(4))]),
        map(vec![(0, int(1))]),
        map(vec![(0, int(1)), (1, int(4)), (5, int(0))]),
        Value::Map(vec![(text("version"), int(1))]),
        Value::Map(vec![(int(0), int(1)), (int(0), int(1)), (int(1), int(4))]),
        Value::Map(vec![(Value::Integer((-1i64).into()), int(1))]),
    ] {
        let b = bytes_of(&v);
        let e = err(&b);
        assert!(matches!(e, DecodeError::Header(_)), "{v:?}: {e}");
        assert_eq!(
            code(&b),
            (ErrorCode::MessageHeader, subcode::MALFORMED_CBOR)
        );
    }
}

#[test]
fn unknown_frame_extension_keys_are_ignored() {
    let b = bytes_of(&map(vec![(0, int(1)), (1, int(4)), (40, text("future"))]));
    assert_eq!(
        decode(&b, &Limits::default()),
        Ok(Frame::Routing(Message::Keepalive))
    );
}

#[test]
fn unknown_message_type_gets_a_notification() {
    for ty in [0, 7, 15, 24, 99, u64::MAX] {
        let f = frame(ty, Some(map(vec![])));
        assert_eq!(err(&f), DecodeError::UnknownType { ty });
        assert_eq!(
            code(&f),
            (ErrorCode::MessageHeader, subcode::BAD_MESSAGE_TYPE)
        );
    }
}

#[test]
fn unsupported_frame_version_gets_a_notification() {
    let f = bytes_of(&map(vec![(0, int(2)), (1, int(4))]));
    assert_eq!(err(&f), DecodeError::UnsupportedVersion { got: 2 });
    assert_eq!(
        code(&f),
        (ErrorCode::MessageHeader, subcode::UNSUPPORTED_FRAME_VERSION)
    );
}

#[test]
fn update_errors_map_to_update_subcodes() {
    let limits = Limits::default();
    // Too many routes.
    let many: Vec<Value> = (0..limits.max_routes() + 1)
        .map(|_| route("a", 0))
        .collect();
    let f = update(vec![map(vec![])], many);
    assert_eq!(code(&f), (ErrorCode::Update, subcode::TOO_MANY_ROUTES));
    // A bad prefix.
    let f = update(vec![map(vec![])], vec![route("a//b", 0)]);
    let e = err(&f);
    assert!(
        matches!(
            &e,
            DecodeError::Body { ty: MessageType::Update, err }
                if err.kind == FieldErrorKind::Prefix(PrefixError::EmptySegment { index: 1 })
                    && err.at == "announce[0].prefix"
        ),
        "{e}"
    );
    assert_eq!(
        code(&f),
        (ErrorCode::Update, subcode::INVALID_NETWORK_FIELD)
    );
    // An AS path longer than the limit, and one with a non-integer.
    let long: Vec<Value> = (0..65).map(|_| int(1)).collect();
    let f = update(
        vec![map(vec![(0, Value::Array(long))])],
        vec![route("a", 0)],
    );
    assert_eq!(code(&f), (ErrorCode::Update, subcode::MALFORMED_AS_PATH));
    let f = update(
        vec![map(vec![(0, Value::Array(vec![text("AS1")]))])],
        vec![route("a", 0)],
    );
    assert_eq!(code(&f), (ErrorCode::Update, subcode::MALFORMED_AS_PATH));
    let f = update(
        vec![map(vec![(0, Value::Array(vec![int(1 << 33)]))])],
        vec![route("a", 0)],
    );
    assert_eq!(code(&f), (ErrorCode::Update, subcode::MALFORMED_AS_PATH));
    // An attribute key this version must understand but does not.
    let f = update(vec![map(vec![(17, int(1))])], vec![route("a", 0)]);
    assert_eq!(
        code(&f),
        (
            ErrorCode::Update,
            subcode::UNRECOGNIZED_WELL_KNOWN_ATTRIBUTE
        )
    );
    // Attribute index out of range.
    let f = update(vec![map(vec![])], vec![route("a", 1)]);
    let e = err(&f);
    assert!(
        matches!(&e, DecodeError::Body { err, .. }
            if err.kind == FieldErrorKind::BadIndex { index: 1, len: 1 }),
        "{e}"
    );
    assert_eq!(
        code(&f),
        (ErrorCode::Update, subcode::MALFORMED_ATTRIBUTE_LIST)
    );
    // Too many communities.
    let comms: Vec<Value> = (0..257).map(int).collect();
    let f = update(
        vec![map(vec![(3, Value::Array(comms))])],
        vec![route("a", 0)],
    );
    assert!(matches!(
        err(&f),
        DecodeError::Body { err, .. } if matches!(err.kind, FieldErrorKind::TooMany { bound: Bound::Communities, .. })
    ));
    assert_eq!(
        code(&f),
        (ErrorCode::Update, subcode::MALFORMED_ATTRIBUTE_LIST)
    );
    // An agent id with a control character.
    let f = update(
        vec![map(vec![(10, text("ag\u{7}ent"))])],
        vec![route("a", 0)],
    );
    assert_eq!(
        code(&f),
        (ErrorCode::Update, subcode::MALFORMED_ATTRIBUTE_LIST)
    );
}

fn proof_route(proof: Value) -> Value {
    map(vec![(0, text("a")), (2, int(0)), (3, proof)])
}

fn cert_value() -> Value {
    map(vec![
        (0, int(65001)),
        (1, Value::Bytes(vec![1; 32])),
        (2, int(0)),
        (3, int(10)),
        (5, Value::Bytes(vec![2; 64])),
    ])
}

#[test]
fn malformed_proofs_map_to_malformed_proof() {
    let origin =
        |cert: u64, sig: Vec<u8>| map(vec![(0, int(cert)), (1, int(5)), (2, Value::Bytes(sig))]);
    let with_certs = |r: Value| {
        frame(
            2,
            Some(map(vec![
                (0, Value::Array(vec![map(vec![])])),
                (1, Value::Array(vec![cert_value()])),
                (2, Value::Array(vec![r])),
            ])),
        )
    };
    let ok = with_certs(proof_route(map(vec![(0, origin(0, vec![0; 64]))])));
    assert!(decode(&ok, &Limits::default()).is_ok());
    for bad in [
        proof_route(map(vec![(0, origin(1, vec![0; 64]))])),
        proof_route(map(vec![(0, origin(0, vec![0; 63]))])),
        proof_route(map(vec![(1, Value::Array(vec![]))])),
        proof_route(map(vec![
            (0, origin(0, vec![0; 64])),
            (
                1,
                Value::Array(vec![map(vec![
                    (0, int(0)),
                    (2, int(1)),
                    (3, Value::Bytes(vec![0; 64])),
                    (1, int(300)),
                ])]),
            ),
        ])),
    ] {
        let f = with_certs(bad);
        let e = err(&f);
        assert!(
            matches!(&e, DecodeError::Body { err, .. } if err.area == Area::Proof),
            "{e}"
        );
        assert_eq!(code(&f), (ErrorCode::Update, subcode::MALFORMED_PROOF));
    }
    // A malformed certificate in the table.
    let f = frame(
        2,
        Some(map(vec![(1, Value::Array(vec![map(vec![(0, int(1))])]))])),
    );
    assert_eq!(code(&f), (ErrorCode::Update, subcode::MALFORMED_PROOF));
}

#[test]
fn withdraw_frames_carry_only_withdrawals() {
    let f = frame(
        6,
        Some(map(vec![(
            3,
            Value::Array(vec![map(vec![(0, text("a/b")), (1, int(3))])]),
        )])),
    );
    match decode(&f, &Limits::default()).unwrap() {
        Frame::Routing(Message::Update(u)) => {
            assert!(u.announce.is_empty());
            assert_eq!(u.withdraw[0].path_id, 3);
        }
        other => panic!("{other:?}"),
    }
    let f = frame(6, Some(map(vec![(2, Value::Array(vec![route("a", 0)]))])));
    assert!(matches!(
        err(&f),
        DecodeError::Body { ty: MessageType::Withdraw, err }
            if err.kind == FieldErrorKind::UnknownRequiredKey { key: 2 }
    ));
    // Too many withdrawals.
    let l = Limits::default();
    let w: Vec<Value> = (0..l.max_withdraws() + 1)
        .map(|_| map(vec![(0, text("a"))]))
        .collect();
    let f = frame(6, Some(map(vec![(3, Value::Array(w))])));
    assert_eq!(code(&f), (ErrorCode::Update, subcode::TOO_MANY_ROUTES));
}

#[test]
fn roles_and_only_to_customer_are_read_and_bad_values_refused() {
    let open = |role: Value| {
        frame(
            1,
            Some(map(vec![
                (0, int(1)),
                (1, int(65001)),
                (2, Value::Bytes(vec![1; 32])),
                (3, int(90)),
                (4, map(vec![(4, role)])),
                (5, text("fed")),
            ])),
        )
    };
    let Ok(Frame::Routing(Message::Open(o))) = decode(&open(int(3)), &Limits::default()) else {
        panic!("an OPEN with role 3 decodes");
    };
    assert_eq!(o.capabilities.role, Some(Role::Customer));
    // A role code RFC 9234 does not define, and a role that is not a number.
    for bad in [int(5), int(1 << 20), text("customer")] {
        let f = open(bad);
        assert_eq!(code(&f), (ErrorCode::Open, subcode::UNSPECIFIC));
        assert!(err(&f).to_string().contains("role"), "{}", err(&f));
    }
    // Only-to-customer is attribute key 35: read as an ASN...
    let f = update(vec![map(vec![(35, int(65009))])], vec![route("a", 0)]);
    let Ok(Frame::Routing(Message::Update(u))) = decode(&f, &Limits::default()) else {
        panic!("an UPDATE with only-to-customer decodes");
    };
    assert_eq!(u.announce[0].attrs.otc, Some(Asn(65009)));
    assert!(u.announce[0].attrs.extra.is_empty());
    // ...and a value that is not one is a malformed attribute list.
    for bad in [text("65009"), int(1 << 33)] {
        let f = update(vec![map(vec![(35, bad)])], vec![route("a", 0)]);
        assert_eq!(
            code(&f),
            (ErrorCode::Update, subcode::MALFORMED_ATTRIBUTE_LIST)
        );
    }
}

#[test]
fn open_errors_map_to_open_subcodes() {
    let open = |cert: Option<Value>| {
        let mut e = vec![
            (0, int(1)),
            (1, int(65001)),
            (2, Value::Bytes(vec![1; 32])),
            (3, int(90)),
            (4, map(vec![(0, Value::Bool(true)), (9, Value::Bool(true))])),
            (5, text("fed")),
        ];
        if let Some(c) = cert {
            e.push((6, c));
        }
        frame(1, Some(map(e)))
    };
    // Unknown capability keys (9 here) are ignored, whatever their number.
    assert!(decode(&open(Some(cert_value())), &Limits::default()).is_ok());
    let f = open(Some(map(vec![(0, int(1))])));
    assert_eq!(code(&f), (ErrorCode::Open, subcode::BAD_CERTIFICATE));
    let f = frame(1, Some(map(vec![(0, int(1))])));
    assert_eq!(code(&f), (ErrorCode::Open, subcode::UNSPECIFIC));
    let f = frame(1, None);
    assert_eq!(code(&f), (ErrorCode::Open, subcode::UNSPECIFIC));
    let mut too_long = vec![
        (0, int(1)),
        (1, int(65001)),
        (2, Value::Bytes(vec![1; 32])),
        (3, int(90)),
        (5, text(&"f".repeat(2000))),
    ];
    let f = frame(1, Some(map(too_long.clone())));
    assert!(matches!(
        err(&f),
        DecodeError::Body { err, .. } if matches!(err.kind, FieldErrorKind::TooLong { .. })
    ));
    too_long[1] = (1, int(1 << 40));
    assert_eq!(
        code(&frame(1, Some(map(too_long)))),
        (ErrorCode::Open, subcode::UNSPECIFIC)
    );
}

#[test]
fn other_bodies_map_to_malformed_body() {
    let cases = [
        frame(3, Some(map(vec![(0, int(99)), (1, int(0))]))),
        frame(3, Some(map(vec![(1, int(0))]))),
        frame(4, Some(map(vec![(3, int(0))]))),
        frame(4, Some(Value::Array(vec![]))),
        frame(16, Some(map(vec![(0, Value::Bytes(vec![0; 15]))]))),
        frame(
            17,
            Some(map(vec![
                (0, Value::Bytes(vec![0; 16])),
                (1, Value::Bytes(vec![1])),
            ])),
        ),
        frame(18, Some(map(vec![(1, text("no id"))]))),
        frame(
            19,
            Some(map(vec![(0, Value::Bytes(vec![0; 16])), (1, text("half"))])),
        ),
        frame(19, None),
    ];
    for f in cases {
        assert_eq!(
            code(&f),
            (ErrorCode::MessageHeader, subcode::MALFORMED_BODY),
            "{:?}",
            decode(&f, &Limits::default())
        );
    }
    let f = frame(5, Some(map(vec![(2, int(0))])));
    assert_eq!(
        code(&f),
        (ErrorCode::RouteRefresh, subcode::INVALID_ROUTE_REFRESH)
    );
}

#[test]
fn unknown_attributes_follow_the_transitive_bit_through_a_hop() {
    // Attribute 41 (odd: transitive) and 42 (even: not) from a newer peer.
    let attrs = map(vec![
        (2, int(10)),
        (41, Value::Array(vec![text("future"), int(1)])),
        (42, text("local only")),
    ]);
    let f = update(vec![attrs], vec![route("a/b", 0)]);
    let l = Limits::default();
    let got = decode(&f, &l).unwrap();
    let Frame::Routing(Message::Update(u)) = &got else {
        panic!("{got:?}")
    };
    let a = &u.announce[0].attrs;
    assert!(a.extra.contains_key("#41"));
    assert!(!a.extra.keys().any(|k| k.as_ref() == "#42"));
    // Forwarded: 41 is back under its own key, byte for byte; 42 is gone.
    let again = encode(&got, &l).unwrap();
    let v: Value = ciborium::from_reader(again.as_slice()).unwrap();
    let body = &v.as_map().unwrap()[2].1;
    let table = &body.as_map().unwrap()[0].1.as_array().unwrap()[0];
    assert_eq!(
        table,
        &map(vec![
            (2, int(10)),
            (41, Value::Array(vec![text("future"), int(1)])),
        ])
    );
}

#[test]
fn limits_can_be_tightened() {
    let f = update(
        vec![map(vec![(0, Value::Array(vec![int(1), int(2), int(3)]))])],
        vec![route("a", 0)],
    );
    let tight = Limits::default().with_max_path_len(2);
    assert!(matches!(
        decode(&f, &tight),
        Err(DecodeError::Body { err, .. }) if matches!(err.kind, FieldErrorKind::TooMany { bound: Bound::PathLen, .. })
    ));
    assert!(decode(&f, &Limits::default()).is_ok());
}

/// A minimal unsigned call origin (id, caller, ASN, target, op, digest,
/// issued, deadline).
fn call_origin() -> Value {
    map(vec![
        (0, Value::Bytes(vec![0x11; 16])),
        (1, Value::Bytes(vec![0x01; 32])),
        (2, int(65001)),
        (4, text("a/b")),
        (5, int(0)),
        (8, Value::Bytes(vec![0x22; 32])),
        (9, int(1)),
        (10, int(2)),
    ])
}

/// A CALL's trace context (optional key 32) that is not exactly
/// `[bytes(16), bytes(8), uint8]` with non-zero ids is dropped: the call
/// decodes and runs, in a trace of its own. Tracing never fails a call.
#[test]
fn a_calls_malformed_trace_context_is_dropped_not_refused() {
    use agent_bgp::wire::call::{CallMessage, decode_call};
    let origin = call_origin();
    let body = |trace: Option<Value>| {
        let mut e = vec![(0, int(7)), (1, int(8)), (3, origin.clone())];
        if let Some(t) = trace {
            e.push((32, t));
        }
        map(e)
    };
    let plain = decode_call(&body(None), &Limits::default()).expect("a plain CALL");
    assert_eq!(plain.trace, None);
    let huge = Value::Bytes(vec![0xab; 60_000]);
    for bad in [
        huge.clone(),
        Value::Array(vec![huge, Value::Bytes(vec![2; 8]), int(1)]),
        Value::Array(vec![Value::Bytes(vec![1; 16]); 3]),
        Value::Array(vec![
            Value::Bytes(vec![0; 16]),
            Value::Bytes(vec![2; 8]),
            int(1),
        ]),
        Value::Array(vec![
            Value::Bytes(vec![1; 16]),
            Value::Bytes(vec![2; 8]),
            int(u64::MAX),
        ]),
        map(vec![(0, Value::Bytes(vec![1; 16]))]),
        Value::Null,
    ] {
        let f = frame(16, Some(body(Some(bad.clone()))));
        match decode(&f, &Limits::default()) {
            Ok(Frame::Call(CallMessage::Call(c))) => {
                assert_eq!(c.trace, None, "{bad:?}");
                assert_eq!(c.origin, plain.origin);
            }
            other => panic!("{bad:?}: {other:?}"),
        }
    }
}

/// Sealed arguments (CALL key 6) and a sealed result (return key 5):
/// exactly `[to bytes(32), enc bytes(32), ciphertext bytes]`, never next to
/// clear arguments or a clear outcome; anything else is a malformed body.
#[test]
fn sealed_payloads_have_one_shape_and_never_travel_beside_the_clear_ones() {
    use agent_bgp::wire::call::decode_call;
    let origin = call_origin();
    let good = Value::Array(vec![
        Value::Bytes(vec![3; 32]),
        Value::Bytes(vec![4; 32]),
        Value::Bytes(vec![5; 40]),
    ]);
    let body = |args: Option<Value>, sealed: Option<Value>| {
        let mut e = vec![(0, int(7)), (1, int(8)), (3, origin.clone())];
        if let Some(a) = args {
            e.push((4, a));
        }
        if let Some(s) = sealed {
            e.push((6, s));
        }
        map(e)
    };
    let c = decode_call(&body(None, Some(good.clone())), &Limits::default()).expect("sealed");
    let s = c.sealed.expect("the box");
    assert_eq!((s.to.0, s.enc, s.ct.len()), ([3; 32], [4; 32], 40));
    assert!(c.arguments.is_null());
    assert!(
        decode_call(
            &body(Some(map(vec![])), Some(good.clone())),
            &Limits::default()
        )
        .is_err(),
        "clear arguments beside sealed ones"
    );
    for bad in [
        Value::Array(vec![
            Value::Bytes(vec![3; 31]),
            Value::Bytes(vec![4; 32]),
            Value::Bytes(vec![]),
        ]),
        Value::Array(vec![
            Value::Bytes(vec![3; 32]),
            Value::Bytes(vec![4; 33]),
            Value::Bytes(vec![]),
        ]),
        Value::Array(vec![
            Value::Bytes(vec![3; 32]),
            Value::Bytes(vec![4; 32]),
            text("ct"),
        ]),
        Value::Array(vec![Value::Bytes(vec![3; 32]), Value::Bytes(vec![4; 32])]),
        Value::Bytes(vec![0; 96]),
    ] {
        let f = frame(16, Some(body(None, Some(bad.clone()))));
        assert_eq!(
            code(&f),
            (ErrorCode::MessageHeader, subcode::MALFORMED_BODY),
            "{bad:?}"
        );
    }
    // A return: sealed instead of ok, never with it or with err.
    let ret = |entries: Vec<(u64, Value)>| {
        let mut e = entries;
        e.push((2, Value::Array(vec![])));
        e.sort_by_key(|(k, _)| *k);
        frame(17, Some(map(vec![(0, int(7)), (1, map(e))])))
    };
    assert!(decode(&ret(vec![(5, good.clone())]), &Limits::default()).is_ok());
    for both in [
        vec![(0, int(1)), (5, good.clone())],
        vec![
            (1, map(vec![(0, int(1)), (1, int(5)), (2, text("x"))])),
            (5, good.clone()),
        ],
    ] {
        assert_eq!(
            code(&ret(both)),
            (ErrorCode::MessageHeader, subcode::MALFORMED_BODY)
        );
    }
}

#[test]
fn a_hostile_unreachable_signal_is_refused_or_bounded() {
    let limits = Limits::default();
    let withdraw = |prefixes: Vec<Value>, unreachable: Value| {
        frame(
            6,
            Some(map(vec![(3, Value::Array(prefixes)), (5, unreachable)])),
        )
    };
    let key = |p: &str| map(vec![(0, text(p))]);
    // A well-formed one decodes.
    let ok = withdraw(vec![key("a/b")], Value::Array(vec![text("a/b")]));
    if let Err(e) = decode(&ok, &limits) {
        panic!("{e}");
    }
    // More prefixes than a WITHDRAW may carry.
    let many: Vec<Value> = (0..limits.max_withdraws() + 1)
        .map(|i| text(&format!("p/{i}")))
        .collect();
    let f = withdraw(vec![key("a/b")], Value::Array(many));
    assert!(matches!(err(&f), DecodeError::Body { .. }), "bounded");
    // Not a list, not text, not a prefix.
    for bad in [
        int(7),
        Value::Array(vec![int(1)]),
        Value::Array(vec![text("a//b")]),
        Value::Array(vec![text(&"x".repeat(5_000))]),
    ] {
        let f = withdraw(vec![key("a/b")], bad);
        let (code, _) = code(&f);
        assert_eq!(code, ErrorCode::Update);
    }
}

/// A tombstone map (UPDATE key 6) with its fields replaced by `f`.
fn tombstone(f: impl FnOnce(&mut Vec<(u64, Value)>)) -> Value {
    let cert = map(vec![
        (0, int(65001)),
        (1, Value::Bytes(vec![7; 32])),
        (2, int(1)),
        (3, int(2)),
        (5, Value::Bytes(vec![3; 64])),
    ]);
    let mut e = vec![
        (0, text("a/b")),
        (1, cert),
        (2, int(10)),
        (3, int(11)),
        (4, int(12)),
        (5, Value::Bytes(vec![9; 64])),
    ];
    f(&mut e);
    map(e)
}

fn withdraw_with(tombstones: Value) -> Vec<u8> {
    frame(
        6,
        Some(map(vec![
            (3, Value::Array(vec![map(vec![(0, text("a/b"))])])),
            (6, tombstones),
        ])),
    )
}

#[test]
fn hostile_tombstones_are_refused_cleanly() {
    // The valid one decodes, in a WITHDRAW.
    match decode(
        &withdraw_with(Value::Array(vec![tombstone(|_| {})])),
        &Limits::default(),
    ) {
        Ok(Frame::Routing(Message::Update(u))) => assert_eq!(u.tombstones.len(), 1),
        other => panic!("{other:?}"),
    }
    let bad: Vec<Value> = vec![
        // Not an array, wrong field types, a bad prefix, a truncated
        // signature, a truncated node key, a missing field, an unknown one.
        text("x"),
        Value::Array(vec![tombstone(|e| e[2].1 = text("10"))]),
        Value::Array(vec![tombstone(|e| e[0].1 = text("a//b"))]),
        Value::Array(vec![tombstone(|e| e[5].1 = Value::Bytes(vec![9; 63]))]),
        Value::Array(vec![tombstone(|e| {
            e[1].1 = map(vec![(0, int(1)), (1, Value::Bytes(vec![7; 31]))])
        })]),
        Value::Array(vec![tombstone(|e| {
            e.remove(4);
        })]),
        Value::Array(vec![tombstone(|e| e.push((7, int(1))))]),
    ];
    for (i, t) in bad.into_iter().enumerate() {
        let (c, _) = code(&withdraw_with(t));
        assert_eq!(c, ErrorCode::Update, "case {i}");
    }
    // Oversized: more than max_withdraws tombstones.
    let many = Value::Array((0..8193).map(|_| tombstone(|_| {})).collect());
    assert!(decode(&withdraw_with(many), &Limits::default()).is_err());
}
