//! The CBOR schema of a tombstone (an origin-signed withdrawal, UPDATE and
//! WITHDRAW key 6; docs/wire.md): a map `{0: prefix, 1: certificate,
//! 2: ended, 3: issued, 4: expires, 5: signature}`, every key required.
//! The certificate is inline (a WITHDRAW has no certificate table, and
//! tombstones are rare). Decoding checks types, the prefix and the
//! signature's length; the signature itself is checked by the node
//! (`crate::identity::route_sign::verify_tombstone`).

use std::sync::Arc;

use ciborium::Value;

use super::cbor::{Fields, MapBuilder, bytes, fixed_bytes, list_of, text, text_of, u64_of, uint};
use super::error::{Area, Bound, FieldError, FieldErrorKind};
use super::limits::Limits;
use crate::core::Millis;
use crate::core::prefix::Prefix;
use crate::core::proof::{AsnCert, Signature, Tombstone};

/// The certificate codec, `crate::wire::schema`'s (passed in, so the two
/// modules do not depend on each other).
pub type EncodeCert = fn(&AsnCert) -> Value;
pub type DecodeCert = fn(&Value) -> Result<AsnCert, FieldError>;

fn millis_of(v: &Value) -> Result<Millis, FieldError> {
    u64_of(v).map(Millis)
}

fn sig_of(v: &Value) -> Result<Signature, FieldError> {
    fixed_bytes::<64>(v).map(Signature)
}

fn decode_prefix(v: &Value, limits: &Limits) -> Result<Prefix, FieldError> {
    let s = text_of(v, limits.max_text)?;
    Prefix::new(s).map_err(|e| FieldErrorKind::Prefix(e).into())
}

mod k {
    pub const PREFIX: u64 = 0;
    pub const CERT: u64 = 1;
    pub const ENDED: u64 = 2;
    pub const ISSUED: u64 = 3;
    pub const EXPIRES: u64 = 4;
    pub const SIGNATURE: u64 = 5;
}

pub fn encode_tombstone(t: &Tombstone, encode_cert: EncodeCert) -> Value {
    let mut m = MapBuilder::new();
    m.put(k::PREFIX, text(t.prefix.as_str()))
        .put(k::CERT, encode_cert(&t.cert))
        .put(k::ENDED, uint(t.ended.0))
        .put(k::ISSUED, uint(t.issued.0))
        .put(k::EXPIRES, uint(t.expires.0))
        .put(k::SIGNATURE, bytes(&t.signature.0));
    m.build()
}

/// The array under UPDATE key 6.
pub fn encode_tombstones(ts: &[Arc<Tombstone>], encode_cert: EncodeCert) -> Value {
    Value::Array(
        ts.iter()
            .map(|t| encode_tombstone(t, encode_cert))
            .collect(),
    )
}

pub fn decode_tombstone(
    v: &Value,
    limits: &Limits,
    decode_cert: DecodeCert,
) -> Result<Tombstone, FieldError> {
    use k::*;
    let f = Fields::parse(v)?;
    f.check_known(&[PREFIX, CERT, ENDED, ISSUED, EXPIRES, SIGNATURE])?;
    Ok(Tombstone {
        prefix: f
            .read(PREFIX, "prefix", |v| decode_prefix(v, limits))
            .map_err(|e| e.in_area(Area::Prefix))?,
        cert: f
            .read(CERT, "cert", |v| decode_cert(v).map(Arc::new))
            .map_err(|e| e.in_area(Area::Proof))?,
        ended: f.read(ENDED, "ended", millis_of)?,
        issued: f.read(ISSUED, "issued", millis_of)?,
        expires: f.read(EXPIRES, "expires", millis_of)?,
        signature: f
            .read(SIGNATURE, "signature", sig_of)
            .map_err(|e| e.in_area(Area::Proof))?,
    })
}

/// The array under UPDATE key 6, at most `max_withdraws` long.
pub fn decode_tombstones(
    v: &Value,
    limits: &Limits,
    decode_cert: DecodeCert,
) -> Result<Vec<Arc<Tombstone>>, FieldError> {
    list_of(v, Bound::Withdraws, limits.max_withdraws, |t| {
        decode_tombstone(t, limits, decode_cert).map(Arc::new)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::message::{Message, Update};
    use crate::core::route::RouteKey;
    use crate::core::{Asn, NodeId};
    use crate::wire::{self, Frame};

    fn tomb(prefix: &str) -> Arc<Tombstone> {
        Arc::new(Tombstone {
            prefix: Prefix::new(prefix).unwrap(),
            cert: Arc::new(AsnCert {
                asn: Asn(65001),
                node: NodeId([7; 32]),
                not_before: Millis(1),
                not_after: Millis(1_000_000),
                issuer: None,
                communities: Vec::new(),
                signature: Signature([3; 64]),
            }),
            ended: Millis(500),
            issued: Millis(600),
            expires: Millis(120_600),
            signature: Signature([9; 64]),
        })
    }

    fn roundtrip(u: Update) -> Update {
        let l = Limits::default();
        let bytes = wire::encode(&Frame::Routing(Message::Update(u)), &l).unwrap();
        match wire::decode(&bytes, &l).unwrap() {
            Frame::Routing(Message::Update(u)) => u,
            other => panic!("not an UPDATE: {other:?}"),
        }
    }

    #[test]
    fn a_tombstone_roundtrips_with_its_withdrawal_and_alone() {
        let with = Update {
            withdraw: vec![RouteKey::new(Prefix::new("a/b").unwrap())],
            tombstones: vec![tomb("a/b")],
            ..Update::default()
        };
        assert_eq!(roundtrip(with.clone()), with);
        let alone = Update {
            tombstones: vec![tomb("a/b"), tomb("c/d")],
            ..Update::default()
        };
        assert_eq!(roundtrip(alone.clone()), alone);
    }

    #[test]
    fn every_field_is_required_and_typed() {
        let l = Limits::default();
        let good = encode_tombstone(&tomb("a/b"), crate::wire::schema::encode_cert);
        assert_eq!(
            decode_tombstone(&good, &l, crate::wire::schema::decode_cert).unwrap(),
            *tomb("a/b")
        );
        let Value::Map(entries) = good else {
            panic!("a map")
        };
        for i in 0..entries.len() {
            let mut missing = entries.clone();
            missing.remove(i);
            assert!(
                decode_tombstone(&Value::Map(missing), &l, crate::wire::schema::decode_cert)
                    .is_err()
            );
            let mut wrong = entries.clone();
            wrong[i].1 = Value::Bool(true);
            assert!(
                decode_tombstone(&Value::Map(wrong), &l, crate::wire::schema::decode_cert).is_err()
            );
        }
        let mut short = entries.clone();
        short[5].1 = Value::Bytes(vec![0; 63]);
        assert!(
            decode_tombstone(&Value::Map(short), &l, crate::wire::schema::decode_cert).is_err()
        );
        let mut bad_prefix = entries.clone();
        bad_prefix[0].1 = Value::Text("a//b".into());
        assert!(
            decode_tombstone(
                &Value::Map(bad_prefix),
                &l,
                crate::wire::schema::decode_cert
            )
            .is_err()
        );
        let mut extra = entries;
        extra.push((uint(6u64), uint(1u64)));
        assert!(
            decode_tombstone(&Value::Map(extra), &l, crate::wire::schema::decode_cert).is_err()
        );
    }
}
