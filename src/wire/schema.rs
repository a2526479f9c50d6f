//! The CBOR schema of the routing messages: OPEN, KEEPALIVE, UPDATE,
//! WITHDRAW, NOTIFICATION, ROUTE-REFRESH, and of what they carry (routes,
//! path attributes, certificates, route proofs).
//!
//! Every structure is a CBOR map with small unsigned integer keys, written
//! in ascending key order with default values left out. Keys below 32 must
//! be understood (an unknown one is an error); keys 32 and up are optional
//! extensions a decoder may ignore, except in path attributes, where an odd
//! key marks an optional *transitive* attribute that is carried through and
//! forwarded, and an even key an optional non-transitive one that is
//! dropped. The full tables are in docs/wire.md.
//!
//! Decoding validates once, on the way in: prefixes are re-parsed, counts
//! and lengths are bounded by [`Limits`], table indexes are checked, and
//! sorted sets are normalised. The engine receives core types that hold
//! their invariants.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use ciborium::Value;

use super::cbor::{
    self, Fields, MapBuilder, array_of, bool_of, bytes, bytes_of, fixed_bytes, free_text_of,
    i64_of, list_of, text, text_of, u8_of, u16_of, u32_of, u64_of, uint,
};
use super::error::{Area, Bound, EncodeError, FieldError, FieldErrorKind};
use super::limits::Limits;
use crate::core::attrs::{Aggregator, AttrValue, ExtraAttr, PathAttrs};
use crate::core::community::Community;
use crate::core::message::{Capabilities, ErrorCode, Notification, Open, Update};
use crate::core::prefix::Prefix;
use crate::core::proof::{AsnCert, OriginAttestation, PathSignature, RouteProof, Signature};
use crate::core::role::Role;
use crate::core::route::{Route, RouteKey};
use crate::core::{AgentId, Asn, ClusterId, Millis, NodeId};

/// Longest capability tag on a route, in bytes.
pub const MAX_TAG_LEN: usize = 128;
/// Longest extra attribute name, in bytes.
pub const MAX_EXTRA_NAME_LEN: usize = 64;
/// Extra attribute names starting with this hold path attributes with
/// unknown numeric keys, carried through as raw CBOR (`#33`).
pub const CARRIED_PREFIX: char = '#';

// ---- keys -------------------------------------------------------------

mod k {
    pub mod open {
        pub const VERSION: u64 = 0;
        pub const ASN: u64 = 1;
        pub const NODE: u64 = 2;
        pub const HOLD_TIME: u64 = 3;
        pub const CAPABILITIES: u64 = 4;
        pub const FEDERATION: u64 = 5;
        pub const CERT: u64 = 6;
    }
    pub mod caps {
        pub const ROUTE_REFRESH: u64 = 0;
        pub const GRACEFUL_RESTART: u64 = 1;
        pub const ADD_PATH: u64 = 2;
        pub const MULTIPATH: u64 = 3;
        /// RFC 9234 role, by its code there.
        pub const ROLE: u64 = 4;
        /// The unreachable signal (docs/protocol.md).
        pub const UNREACHABLE: u64 = 5;
        /// Origin-signed withdrawals (tombstones, docs/protocol.md).
        pub const TOMBSTONES: u64 = 6;
    }
    pub mod cert {
        pub const ASN: u64 = 0;
        pub const NODE: u64 = 1;
        pub const NOT_BEFORE: u64 = 2;
        pub const NOT_AFTER: u64 = 3;
        pub const ISSUER: u64 = 4;
        pub const SIGNATURE: u64 = 5;
        /// Certified communities (a required key: it changes what the
        /// signature covers).
        pub const COMMUNITIES: u64 = 6;
    }
    pub mod update {
        pub const ATTRS: u64 = 0;
        pub const CERTS: u64 = 1;
        pub const ANNOUNCE: u64 = 2;
        pub const WITHDRAW: u64 = 3;
        pub const END_OF_RIB: u64 = 4;
        /// Withdrawn prefixes the sender has no route to at all.
        pub const UNREACHABLE: u64 = 5;
        /// Origin-signed withdrawals (`crate::wire::tombstone`).
        pub const TOMBSTONES: u64 = 6;
    }
    pub mod route {
        pub const PREFIX: u64 = 0;
        pub const PATH_ID: u64 = 1;
        pub const ATTRS: u64 = 2;
        pub const PROOF: u64 = 3;
    }
    pub mod proof {
        pub const ORIGIN: u64 = 0;
        pub const PATH: u64 = 1;
    }
    pub mod origin {
        pub const CERT: u64 = 0;
        pub const EXPIRES: u64 = 1;
        pub const SIGNATURE: u64 = 2;
    }
    pub mod hop {
        pub const CERT: u64 = 0;
        pub const PCOUNT: u64 = 1;
        pub const TARGET: u64 = 2;
        pub const SIGNATURE: u64 = 3;
    }
    pub mod attrs {
        pub const AS_PATH: u64 = 0;
        pub const LOCAL_PREF: u64 = 1;
        pub const MED: u64 = 2;
        pub const COMMUNITIES: u64 = 3;
        pub const CAPABILITIES: u64 = 4;
        pub const ORIGIN_TIME: u64 = 5;
        pub const ORIGINATOR: u64 = 6;
        pub const CLUSTER_LIST: u64 = 7;
        pub const AGGREGATOR: u64 = 8;
        pub const EXTRA: u64 = 9;
        pub const AGENT: u64 = 10;
        pub const NEXT_HOP: u64 = 11;
        /// Only-to-customer: an optional transitive key (odd, above 32),
        /// so nodes that do not know it carry it on; RFC 9234's type code.
        pub const OTC: u64 = 35;
    }
    pub mod aggregator {
        pub const ASN: u64 = 0;
        pub const NODE: u64 = 1;
        pub const AS_SET: u64 = 2;
    }
    pub mod notification {
        pub const CODE: u64 = 0;
        pub const SUBCODE: u64 = 1;
        pub const TEXT: u64 = 2;
    }
}

fn node_of(v: &Value) -> Result<NodeId, FieldError> {
    fixed_bytes::<32>(v).map(NodeId)
}

pub(super) fn sig_of(v: &Value) -> Result<Signature, FieldError> {
    fixed_bytes::<64>(v).map(Signature)
}

fn asn_of(v: &Value) -> Result<Asn, FieldError> {
    u32_of(v).map(Asn)
}

pub(super) fn millis_of(v: &Value) -> Result<Millis, FieldError> {
    u64_of(v).map(Millis)
}

pub(super) fn check_count(what: &'static str, count: usize, max: usize) -> Result<(), EncodeError> {
    if count > max {
        return Err(EncodeError::TooMany { what, count, max });
    }
    Ok(())
}

fn check_len(what: &'static str, len: usize, max: usize) -> Result<(), EncodeError> {
    if len > max {
        return Err(EncodeError::TooLong { what, len, max });
    }
    Ok(())
}

// ---- OPEN ---------------------------------------------------------------

pub fn encode_open(o: &Open, limits: &Limits) -> Result<Value, EncodeError> {
    check_len("federation", o.federation.len(), limits.max_text)?;
    let c = &o.capabilities;
    let mut caps = MapBuilder::new();
    caps.put_if(c.route_refresh, k::caps::ROUTE_REFRESH, || {
        Value::Bool(true)
    })
    .put_if(
        c.graceful_restart.is_some(),
        k::caps::GRACEFUL_RESTART,
        || uint(c.graceful_restart.unwrap_or(0)),
    )
    .put_if(c.add_path, k::caps::ADD_PATH, || Value::Bool(true))
    .put_if(c.multipath, k::caps::MULTIPATH, || Value::Bool(true))
    .put_if(c.role.is_some(), k::caps::ROLE, || {
        uint(c.role.map_or(0, |r| r.code()))
    })
    .put_if(c.unreachable, k::caps::UNREACHABLE, || Value::Bool(true))
    .put_if(c.tombstones, k::caps::TOMBSTONES, || Value::Bool(true));
    let mut m = MapBuilder::new();
    m.put(k::open::VERSION, uint(o.version))
        .put(k::open::ASN, uint(o.asn.0))
        .put(k::open::NODE, bytes(o.node.as_bytes()))
        .put(k::open::HOLD_TIME, uint(o.hold_time))
        .put(k::open::CAPABILITIES, caps.build())
        .put(k::open::FEDERATION, text(&o.federation));
    if let Some(cert) = &o.cert {
        m.put(k::open::CERT, encode_cert(cert));
    }
    Ok(m.build())
}

pub fn decode_open(v: &Value, limits: &Limits) -> Result<Open, FieldError> {
    use k::open::*;
    let f = Fields::parse(v)?;
    f.check_known(&[
        VERSION,
        ASN,
        NODE,
        HOLD_TIME,
        CAPABILITIES,
        FEDERATION,
        CERT,
    ])?;
    let capabilities = f.read_or(CAPABILITIES, "capabilities", Capabilities::default(), |v| {
        // Every capability is optional by nature: one this node does not
        // know is simply not used, whatever its key.
        let c = Fields::parse(v)?;
        Ok(Capabilities {
            route_refresh: c.read_or(k::caps::ROUTE_REFRESH, "route_refresh", false, bool_of)?,
            graceful_restart: c.read_or(
                k::caps::GRACEFUL_RESTART,
                "graceful_restart",
                None,
                |v| u16_of(v).map(Some),
            )?,
            add_path: c.read_or(k::caps::ADD_PATH, "add_path", false, bool_of)?,
            multipath: c.read_or(k::caps::MULTIPATH, "multipath", false, bool_of)?,
            role: c.read_or(k::caps::ROLE, "role", None, |v| {
                Role::from_code(u8_of(v)?).map(Some).ok_or_else(|| {
                    FieldErrorKind::OutOfRange {
                        expected: "an RFC 9234 role code (0-4)",
                    }
                    .into()
                })
            })?,
            unreachable: c.read_or(k::caps::UNREACHABLE, "unreachable", false, bool_of)?,
            tombstones: c.read_or(k::caps::TOMBSTONES, "tombstones", false, bool_of)?,
        })
    })?;
    Ok(Open {
        version: f.read(VERSION, "version", u16_of)?,
        asn: f.read(ASN, "asn", asn_of)?,
        node: f.read(NODE, "node", node_of)?,
        hold_time: f.read(HOLD_TIME, "hold_time", u16_of)?,
        capabilities,
        federation: f.read(FEDERATION, "federation", |v| {
            text_of(v, limits.max_text).map(str::to_string)
        })?,
        cert: f
            .read_or(CERT, "cert", None, |v| {
                decode_cert(v).map(|c| Some(Arc::new(c)))
            })
            .map_err(|e| e.in_area(Area::Proof))?,
    })
}

// ---- certificates ---------------------------------------------------------

pub fn encode_cert(c: &AsnCert) -> Value {
    use k::cert::*;
    let mut m = MapBuilder::new();
    m.put(ASN, uint(c.asn.0))
        .put(NODE, bytes(c.node.as_bytes()))
        .put(NOT_BEFORE, uint(c.not_before.0))
        .put(NOT_AFTER, uint(c.not_after.0));
    if let Some(i) = &c.issuer {
        m.put(ISSUER, bytes(i.as_bytes()));
    }
    m.put(SIGNATURE, bytes(&c.signature.0));
    m.put_if(!c.communities.is_empty(), COMMUNITIES, || {
        Value::Array(c.communities.iter().map(encode_community).collect())
    });
    m.build()
}

pub fn decode_cert(v: &Value) -> Result<AsnCert, FieldError> {
    use k::cert::*;
    let f = Fields::parse(v)?;
    f.check_known(&[
        ASN,
        NODE,
        NOT_BEFORE,
        NOT_AFTER,
        ISSUER,
        SIGNATURE,
        COMMUNITIES,
    ])?;
    let mut communities = f.read_or(COMMUNITIES, "communities", Vec::new(), |v| {
        list_of(
            v,
            Bound::Communities,
            crate::core::proof::MAX_CERT_COMMUNITIES,
            decode_community,
        )
    })?;
    // The signature covers the sorted set: a sender that did not sort
    // loses nothing, one that repeated a community does not verify.
    communities.sort();
    Ok(AsnCert {
        asn: f.read(ASN, "asn", asn_of)?,
        node: f.read(NODE, "node", node_of)?,
        not_before: f.read(NOT_BEFORE, "not_before", millis_of)?,
        not_after: f.read(NOT_AFTER, "not_after", millis_of)?,
        issuer: f.read_or(ISSUER, "issuer", None, |v| node_of(v).map(Some))?,
        communities,
        signature: f.read(SIGNATURE, "signature", sig_of)?,
    })
}

// ---- NOTIFICATION -------------------------------------------------------

pub fn encode_notification(n: &Notification, limits: &Limits) -> Value {
    use k::notification::*;
    // Never fail to say why we are closing: cut long text at a character
    // boundary instead of refusing to encode.
    let mut end = n.text.len().min(limits.max_text);
    while !n.text.is_char_boundary(end) {
        end -= 1;
    }
    let mut m = MapBuilder::new();
    m.put(CODE, uint(n.code as u8))
        .put(SUBCODE, uint(n.subcode))
        .put_if(end > 0, TEXT, || text(&n.text[..end]));
    m.build()
}

pub fn decode_notification(v: &Value, limits: &Limits) -> Result<Notification, FieldError> {
    use k::notification::*;
    let f = Fields::parse(v)?;
    f.check_known(&[CODE, SUBCODE, TEXT])?;
    let code = f.read(CODE, "code", |v| {
        let c = u64_of(v)?;
        u8::try_from(c)
            .ok()
            .and_then(ErrorCode::from_u8)
            .ok_or_else(|| FieldErrorKind::UnknownErrorCode { code: c }.into())
    })?;
    Ok(Notification {
        code,
        subcode: f.read(SUBCODE, "subcode", u8_of)?,
        text: f.read_or(TEXT, "text", String::new(), |v| {
            free_text_of(v, limits.max_text).map(str::to_string)
        })?,
    })
}

// ---- path attributes ------------------------------------------------------

pub fn encode_community(c: &Community) -> Value {
    match c {
        Community::Standard(v) => uint(*v),
        Community::Large(a, b, c) => Value::Array(vec![uint(*a), uint(*b), uint(*c)]),
        Community::Named(n) => text(n),
    }
}

pub fn decode_community(v: &Value) -> Result<Community, FieldError> {
    match v {
        Value::Integer(_) => u32_of(v).map(Community::Standard),
        Value::Array(a) => match a.as_slice() {
            [x, y, z] => Ok(Community::Large(u32_of(x)?, u32_of(y)?, u32_of(z)?)),
            _ => Err(FieldErrorKind::WrongType {
                expected: "a large community [u32, u32, u32]",
            }
            .into()),
        },
        Value::Text(s) => match Community::named(s)? {
            // Named communities are words; a number-like text would be a
            // second spelling of a standard or large community.
            Community::Named(n) => Ok(Community::Named(n)),
            _ => Err(FieldErrorKind::WrongType {
                expected: "a named community (a word)",
            }
            .into()),
        },
        _ => Err(FieldErrorKind::WrongType {
            expected: "a community (u32, [u32, u32, u32] or a word)",
        }
        .into()),
    }
}

impl From<crate::core::community::CommunityError> for FieldError {
    fn from(e: crate::core::community::CommunityError) -> Self {
        FieldErrorKind::Community(e).into()
    }
}

/// Parses `#<key>` into a carried-through attribute key.
fn carried_key(name: &str) -> Option<u64> {
    name.strip_prefix(CARRIED_PREFIX)?.parse().ok()
}

fn valid_extra_name(name: &str) -> Result<(), &'static str> {
    if name.is_empty() || name.len() > MAX_EXTRA_NAME_LEN {
        return Err("name must be 1 to 64 bytes");
    }
    if name.chars().any(char::is_control) {
        return Err("name has control characters");
    }
    if name.starts_with(CARRIED_PREFIX) {
        return Err("names starting with '#' are reserved for carried-through attributes");
    }
    Ok(())
}

fn encode_extra_value(v: &AttrValue) -> Value {
    match v {
        AttrValue::Bool(b) => Value::Bool(*b),
        AttrValue::Int(i) => Value::Integer((*i).into()),
        AttrValue::Text(t) => text(t),
        AttrValue::Bytes(b) => bytes(b),
    }
}

pub fn encode_attrs(a: &PathAttrs, limits: &Limits) -> Result<Value, EncodeError> {
    use k::attrs::*;
    check_count("as_path", a.as_path.len(), limits.max_path_len)?;
    check_count("communities", a.communities.len(), limits.max_communities)?;
    check_count(
        "capabilities",
        a.capabilities.len(),
        limits.max_capabilities,
    )?;
    check_count(
        "cluster_list",
        a.cluster_list.len(),
        limits.max_cluster_list,
    )?;
    check_count("extra", a.extra.len(), limits.max_extra_attrs)?;
    check_len("agent id", a.agent.as_str().len(), limits.max_text)?;
    let mut m = MapBuilder::new();
    m.put_if(!a.as_path.is_empty(), AS_PATH, || {
        Value::Array(a.as_path.iter().map(|x| uint(x.0)).collect())
    })
    .put_if(
        a.local_pref != crate::core::attrs::DEFAULT_LOCAL_PREF,
        LOCAL_PREF,
        || uint(a.local_pref),
    )
    .put_if(a.med != 0, MED, || uint(a.med))
    .put_if(!a.communities.is_empty(), COMMUNITIES, || {
        Value::Array(a.communities.iter().map(encode_community).collect())
    });
    if !a.capabilities.is_empty() {
        for t in &a.capabilities {
            check_len("capability tag", t.len(), MAX_TAG_LEN)?;
        }
        m.put(
            CAPABILITIES,
            Value::Array(a.capabilities.iter().map(|t| text(t)).collect()),
        );
    }
    m.put_if(a.origin_time.0 != 0, ORIGIN_TIME, || uint(a.origin_time.0))
        .put_if(a.originator.is_some(), ORIGINATOR, || {
            bytes(
                a.originator
                    .as_ref()
                    .map(|n| n.as_bytes().as_slice())
                    .unwrap_or(&[]),
            )
        })
        .put_if(!a.cluster_list.is_empty(), CLUSTER_LIST, || {
            Value::Array(a.cluster_list.iter().map(|c| uint(c.0)).collect())
        });
    if let Some(ag) = &a.aggregator {
        check_count("aggregator.as_set", ag.as_set.len(), limits.max_as_set)?;
        let mut g = MapBuilder::new();
        g.put(k::aggregator::ASN, uint(ag.asn.0))
            .put(k::aggregator::NODE, bytes(ag.node.as_bytes()))
            .put_if(!ag.as_set.is_empty(), k::aggregator::AS_SET, || {
                Value::Array(ag.as_set.iter().map(|x| uint(x.0)).collect())
            });
        m.put(AGGREGATOR, g.build());
    }
    let mut named = Vec::new();
    let mut carried: Vec<(u64, Value)> = Vec::new();
    for (name, x) in &a.extra {
        let bad = |reason| EncodeError::BadExtra {
            name: name.to_string(),
            reason,
        };
        if let Some(key) = carried_key(name) {
            if key < cbor::FIRST_OPTIONAL_KEY || key % 2 == 0 || !x.transitive || key == OTC {
                return Err(bad(
                    "a carried-through attribute must have an odd key of 33 or more that this version does not know, and be transitive",
                ));
            }
            let AttrValue::Bytes(raw) = &x.value else {
                return Err(bad("a carried-through attribute must hold raw CBOR bytes"));
            };
            let v = cbor::parse(raw, limits).map_err(|_| bad("not a single valid CBOR item"))?;
            carried.push((key, v));
            continue;
        }
        valid_extra_name(name).map_err(bad)?;
        let len = match &x.value {
            AttrValue::Text(t) => t.len(),
            AttrValue::Bytes(b) => b.len(),
            _ => 0,
        };
        check_len("extra attribute value", len, limits.max_extra_bytes)?;
        named.push((
            text(name),
            Value::Array(vec![
                uint(u64::from(x.transitive)),
                encode_extra_value(&x.value),
            ]),
        ));
    }
    if !named.is_empty() {
        m.put(EXTRA, Value::Map(named));
    }
    m.put_if(!a.agent.as_str().is_empty(), AGENT, || {
        text(a.agent.as_str())
    });
    if let Some(n) = &a.next_hop {
        m.put(NEXT_HOP, bytes(n.as_bytes()));
    }
    if let Some(otc) = a.otc {
        carried.push((OTC, uint(otc.0)));
    }
    carried.sort_by_key(|(k, _)| *k);
    for (key, v) in carried {
        m.put(key, v);
    }
    Ok(m.build())
}

pub fn decode_attrs(v: &Value, limits: &Limits) -> Result<PathAttrs, FieldError> {
    use k::attrs::*;
    let f = Fields::parse(v)?;
    f.check_known(&[
        AS_PATH,
        LOCAL_PREF,
        MED,
        COMMUNITIES,
        CAPABILITIES,
        ORIGIN_TIME,
        ORIGINATOR,
        CLUSTER_LIST,
        AGGREGATOR,
        EXTRA,
        AGENT,
        NEXT_HOP,
    ])?;
    let asns = |v| list_of(v, Bound::PathLen, limits.max_path_len, asn_of);
    let as_path = f
        .read_or(AS_PATH, "as_path", Vec::new(), asns)
        .map_err(|e| e.in_area(Area::AsPath))?;
    let mut extra = BTreeMap::new();
    f.read_or(EXTRA, "extra", (), |v| {
        let Value::Map(m) = v else {
            return Err(FieldErrorKind::WrongType { expected: "a map" }.into());
        };
        if m.len() > limits.max_extra_attrs {
            return Err(FieldErrorKind::TooMany {
                bound: Bound::ExtraAttrs,
                count: m.len(),
                max: limits.max_extra_attrs,
            }
            .into());
        }
        for (name, entry) in m {
            let name = text_of(name, MAX_EXTRA_NAME_LEN)?;
            valid_extra_name(name).map_err(|reason| {
                FieldError::from(FieldErrorKind::BadText { reason }).within(name)
            })?;
            let x = decode_extra(entry, limits).map_err(|e| e.within(name))?;
            if extra.insert(Arc::<str>::from(name), x).is_some() {
                return Err(FieldError::from(FieldErrorKind::BadText {
                    reason: "extra attribute name appears twice",
                })
                .within(name));
            }
        }
        Ok(())
    })?;
    // Unknown optional attributes: odd keys are transitive and travel on
    // as raw CBOR; even keys are non-transitive and dropped here.
    for (key, raw) in f.extensions() {
        if key % 2 == 0 || key == OTC {
            continue;
        }
        let raw = cbor::to_bytes(raw).map_err(|_| {
            FieldError::from(FieldErrorKind::WrongType {
                expected: "a re-encodable CBOR item",
            })
        })?;
        if raw.len() > limits.max_extra_bytes {
            return Err(FieldError::from(FieldErrorKind::TooLong {
                bound: Bound::ExtraBytes,
                len: raw.len(),
                max: limits.max_extra_bytes,
            })
            .within(&key.to_string()));
        }
        extra.insert(
            Arc::<str>::from(format!("{CARRIED_PREFIX}{key}")),
            ExtraAttr {
                transitive: true,
                value: AttrValue::Bytes(raw.into()),
            },
        );
    }
    if extra.len() > limits.max_extra_attrs {
        return Err(FieldErrorKind::TooMany {
            bound: Bound::ExtraAttrs,
            count: extra.len(),
            max: limits.max_extra_attrs,
        }
        .into());
    }
    let mut a = PathAttrs {
        agent: f.read_or(AGENT, "agent", AgentId::new(""), |v| {
            text_of(v, limits.max_text).map(AgentId::new)
        })?,
        as_path,
        local_pref: f.read_or(
            LOCAL_PREF,
            "local_pref",
            crate::core::attrs::DEFAULT_LOCAL_PREF,
            u32_of,
        )?,
        med: f.read_or(MED, "med", 0, u32_of)?,
        communities: f.read_or(COMMUNITIES, "communities", Vec::new(), |v| {
            list_of(
                v,
                Bound::Communities,
                limits.max_communities,
                decode_community,
            )
        })?,
        capabilities: f.read_or(CAPABILITIES, "capabilities", Vec::new(), |v| {
            list_of(v, Bound::Capabilities, limits.max_capabilities, |t| {
                let s = text_of(t, MAX_TAG_LEN)?;
                if s.is_empty() {
                    return Err(FieldErrorKind::BadText {
                        reason: "capability tag is empty",
                    }
                    .into());
                }
                Ok(Arc::<str>::from(s))
            })
        })?,
        origin_time: f.read_or(ORIGIN_TIME, "origin_time", Millis(0), millis_of)?,
        originator: f.read_or(ORIGINATOR, "originator", None, |v| node_of(v).map(Some))?,
        cluster_list: f.read_or(CLUSTER_LIST, "cluster_list", Vec::new(), |v| {
            list_of(v, Bound::ClusterList, limits.max_cluster_list, |c| {
                u32_of(c).map(ClusterId)
            })
        })?,
        aggregator: f.read_or(AGGREGATOR, "aggregator", None, |v| {
            use k::aggregator::*;
            let g = Fields::parse(v)?;
            g.check_known(&[ASN, NODE, AS_SET])?;
            Ok(Some(Aggregator {
                asn: g.read(ASN, "asn", asn_of)?,
                node: g.read(NODE, "node", node_of)?,
                as_set: g.read_or(AS_SET, "as_set", Vec::new(), |v| {
                    list_of(v, Bound::AsSet, limits.max_as_set, asn_of)
                })?,
            }))
        })?,
        extra,
        next_hop: f.read_or(NEXT_HOP, "next_hop", None, |v| node_of(v).map(Some))?,
        otc: f.read_or(OTC, "otc", None, |v| asn_of(v).map(Some))?,
    };
    // Sets are sorted and deduplicated in the core; a sender that did not
    // sort loses nothing by our sorting (signatures cover the sorted form).
    a.normalize();
    Ok(a)
}

fn decode_extra(v: &Value, limits: &Limits) -> Result<ExtraAttr, FieldError> {
    let pair = array_of(v, Bound::Items, 2)?;
    let [flags, value] = pair else {
        return Err(FieldErrorKind::WrongType {
            expected: "[flags, value]",
        }
        .into());
    };
    // Bit 0 is the transitive flag; other bits are reserved and ignored.
    let transitive = u64_of(flags).map_err(|e| e.within("flags"))? & 1 == 1;
    let value = match value {
        Value::Bool(b) => AttrValue::Bool(*b),
        Value::Integer(_) => AttrValue::Int(i64_of(value)?),
        Value::Text(_) => AttrValue::Text(text_of(value, limits.max_extra_bytes)?.into()),
        Value::Bytes(_) => {
            AttrValue::Bytes(bytes_of(value, Bound::ExtraBytes, limits.max_extra_bytes)?.into())
        }
        _ => {
            return Err(FieldErrorKind::WrongType {
                expected: "a boolean, integer, text or byte string",
            }
            .into());
        }
    };
    Ok(ExtraAttr { transitive, value })
}

/// The attributes to send to another AS: unknown non-transitive extras are
/// dropped, as BGP drops optional non-transitive attributes it does not
/// recognise. Returns `None` when nothing needs dropping, so the caller
/// keeps sharing the original `Arc`.
pub fn strip_non_transitive(a: &PathAttrs) -> Option<PathAttrs> {
    if a.extra.values().all(|x| x.transitive) {
        return None;
    }
    let mut out = a.clone();
    out.extra.retain(|_, x| x.transitive);
    Some(out)
}

// ---- UPDATE ---------------------------------------------------------------

/// Shares equal values in a table: by pointer first (cheap, and the usual
/// case since the core interns attributes), then by equality.
struct Table<'a, T: std::hash::Hash + Eq> {
    by_ptr: HashMap<*const T, u64>,
    by_eq: HashMap<&'a T, u64>,
    items: Vec<&'a T>,
}

impl<'a, T: std::hash::Hash + Eq> Table<'a, T> {
    fn new() -> Self {
        Table {
            by_ptr: HashMap::new(),
            by_eq: HashMap::new(),
            items: Vec::new(),
        }
    }

    fn index(&mut self, item: &'a T) -> u64 {
        let ptr = item as *const T;
        if let Some(i) = self.by_ptr.get(&ptr) {
            return *i;
        }
        let next = self.items.len() as u64;
        let i = *self.by_eq.entry(item).or_insert_with(|| {
            self.items.push(item);
            next
        });
        self.by_ptr.insert(ptr, i);
        i
    }
}

fn encode_route_key(prefix: &Prefix, path_id: u32) -> Value {
    let mut m = MapBuilder::new();
    m.put(k::route::PREFIX, text(prefix.as_str()))
        .put_if(path_id != 0, k::route::PATH_ID, || uint(path_id));
    m.build()
}

fn encode_proof<'a>(p: &'a RouteProof, certs: &mut Table<'a, AsnCert>) -> Value {
    let mut o = MapBuilder::new();
    o.put(k::origin::CERT, uint(certs.index(&p.origin.cert)))
        .put(k::origin::EXPIRES, uint(p.origin.expires.0))
        .put(k::origin::SIGNATURE, bytes(&p.origin.signature.0));
    let mut m = MapBuilder::new();
    m.put(k::proof::ORIGIN, o.build());
    m.put_if(!p.path.is_empty(), k::proof::PATH, || {
        Value::Array(
            p.path
                .iter()
                .map(|h| {
                    let mut s = MapBuilder::new();
                    s.put(k::hop::CERT, uint(certs.index(&h.cert)))
                        .put_if(h.pcount != 1, k::hop::PCOUNT, || uint(h.pcount))
                        .put(k::hop::TARGET, uint(h.target.0))
                        .put(k::hop::SIGNATURE, bytes(&h.signature.0));
                    s.build()
                })
                .collect(),
        )
    });
    m.build()
}

/// Encodes an UPDATE body (announcements, withdrawals, end-of-RIB) with
/// attribute sets and certificates in shared tables.
pub fn encode_update(u: &Update, limits: &Limits) -> Result<Value, EncodeError> {
    use k::update::*;
    check_count("announce", u.announce.len(), limits.max_routes)?;
    check_count("withdraw", u.withdraw.len(), limits.max_withdraws)?;
    check_count("unreachable", u.unreachable.len(), limits.max_withdraws)?;
    check_count("tombstones", u.tombstones.len(), limits.max_withdraws)?;
    let mut attrs: Table<'_, PathAttrs> = Table::new();
    let mut certs: Table<'_, AsnCert> = Table::new();
    let mut routes = Vec::with_capacity(u.announce.len());
    for r in &u.announce {
        let mut m = MapBuilder::new();
        m.put(k::route::PREFIX, text(r.prefix.as_str()))
            .put_if(r.path_id != 0, k::route::PATH_ID, || uint(r.path_id))
            .put(k::route::ATTRS, uint(attrs.index(&r.attrs)));
        if let Some(p) = &r.proof {
            check_count("path signatures", p.path.len(), limits.max_path_len)?;
            m.put(k::route::PROOF, encode_proof(p, &mut certs));
        }
        routes.push(m.build());
    }
    check_count("attribute sets", attrs.items.len(), limits.max_attr_sets)?;
    check_count("certificates", certs.items.len(), limits.max_certs)?;
    let attr_values = attrs
        .items
        .iter()
        .map(|a| encode_attrs(a, limits))
        .collect::<Result<Vec<_>, _>>()?;
    let mut m = MapBuilder::new();
    m.put_if(!attr_values.is_empty(), ATTRS, || Value::Array(attr_values))
        .put_if(!certs.items.is_empty(), CERTS, || {
            Value::Array(certs.items.iter().map(|c| encode_cert(c)).collect())
        })
        .put_if(!routes.is_empty(), ANNOUNCE, || Value::Array(routes))
        .put_if(!u.withdraw.is_empty(), WITHDRAW, || {
            Value::Array(
                u.withdraw
                    .iter()
                    .map(|w| encode_route_key(&w.prefix, w.path_id))
                    .collect(),
            )
        })
        .put_if(u.end_of_rib, END_OF_RIB, || Value::Bool(true))
        .put_if(!u.unreachable.is_empty(), UNREACHABLE, || {
            Value::Array(u.unreachable.iter().map(|p| text(p.as_str())).collect())
        })
        .put_if(!u.tombstones.is_empty(), TOMBSTONES, || {
            super::tombstone::encode_tombstones(&u.tombstones, encode_cert)
        });
    Ok(m.build())
}

pub(super) fn decode_prefix(v: &Value, limits: &Limits) -> Result<Prefix, FieldError> {
    let s = text_of(v, limits.max_text)?;
    Prefix::new(s).map_err(|e| FieldErrorKind::Prefix(e).into())
}

fn decode_route_key(v: &Value, limits: &Limits) -> Result<RouteKey, FieldError> {
    let f = Fields::parse(v)?;
    f.check_known(&[k::route::PREFIX, k::route::PATH_ID])?;
    Ok(RouteKey {
        prefix: f
            .read(k::route::PREFIX, "prefix", |v| decode_prefix(v, limits))
            .map_err(|e| e.in_area(Area::Prefix))?,
        path_id: f.read_or(k::route::PATH_ID, "path_id", 0, u32_of)?,
    })
}

fn table_ref<T: Clone>(v: &Value, table: &[T]) -> Result<T, FieldError> {
    let i = u64_of(v)?;
    usize::try_from(i)
        .ok()
        .and_then(|i| table.get(i))
        .cloned()
        .ok_or_else(|| {
            FieldErrorKind::BadIndex {
                index: i,
                len: table.len(),
            }
            .into()
        })
}

fn decode_proof(
    v: &Value,
    certs: &[Arc<AsnCert>],
    limits: &Limits,
) -> Result<RouteProof, FieldError> {
    let f = Fields::parse(v)?;
    f.check_known(&[k::proof::ORIGIN, k::proof::PATH])?;
    let origin = f.read(k::proof::ORIGIN, "origin", |v| {
        use k::origin::*;
        let o = Fields::parse(v)?;
        o.check_known(&[CERT, EXPIRES, SIGNATURE])?;
        Ok(OriginAttestation {
            cert: o.read(CERT, "cert", |v| table_ref(v, certs))?,
            expires: o.read(EXPIRES, "expires", millis_of)?,
            signature: o.read(SIGNATURE, "signature", sig_of)?,
        })
    })?;
    let path = f.read_or(k::proof::PATH, "path", Vec::new(), |v| {
        list_of(v, Bound::PathLen, limits.max_path_len, |v| {
            use k::hop::*;
            let h = Fields::parse(v)?;
            h.check_known(&[CERT, PCOUNT, TARGET, SIGNATURE])?;
            Ok(PathSignature {
                cert: h.read(CERT, "cert", |v| table_ref(v, certs))?,
                pcount: h.read_or(PCOUNT, "pcount", 1, u8_of)?,
                target: h.read(TARGET, "target", asn_of)?,
                signature: h.read(SIGNATURE, "signature", sig_of)?,
            })
        })
    })?;
    Ok(RouteProof { origin, path })
}

/// Decodes an UPDATE body; `withdraw_only` for the WITHDRAW message type,
/// whose body may hold only withdrawals and the end-of-RIB flag.
pub fn decode_update(
    v: &Value,
    limits: &Limits,
    withdraw_only: bool,
) -> Result<Update, FieldError> {
    use k::update::*;
    let f = Fields::parse(v)?;
    if withdraw_only {
        f.check_known(&[WITHDRAW, END_OF_RIB, UNREACHABLE, TOMBSTONES])?;
    } else {
        f.check_known(&[
            ATTRS,
            CERTS,
            ANNOUNCE,
            WITHDRAW,
            END_OF_RIB,
            UNREACHABLE,
            TOMBSTONES,
        ])?;
    }
    // Bound the route count before decoding any table.
    if let Some(a) = f.opt(ANNOUNCE) {
        array_of(a, Bound::Routes, limits.max_routes).map_err(|e| e.within("announce"))?;
    }
    let attrs: Vec<Arc<PathAttrs>> = f
        .read_or(ATTRS, "attrs", Vec::new(), |v| {
            list_of(v, Bound::AttrSets, limits.max_attr_sets, |a| {
                decode_attrs(a, limits).map(Arc::new)
            })
        })
        .map_err(|e| e.in_area(Area::Attrs))?;
    let certs: Vec<Arc<AsnCert>> = f
        .read_or(CERTS, "certs", Vec::new(), |v| {
            list_of(v, Bound::Certs, limits.max_certs, |c| {
                decode_cert(c).map(Arc::new)
            })
        })
        .map_err(|e| e.in_area(Area::Proof))?;
    let announce = f.read_or(ANNOUNCE, "announce", Vec::new(), |v| {
        list_of(v, Bound::Routes, limits.max_routes, |v| {
            use k::route::*;
            let r = Fields::parse(v)?;
            r.check_known(&[PREFIX, PATH_ID, ATTRS, PROOF])?;
            Ok(Route {
                prefix: r
                    .read(PREFIX, "prefix", |v| decode_prefix(v, limits))
                    .map_err(|e| e.in_area(Area::Prefix))?,
                path_id: r.read_or(PATH_ID, "path_id", 0, u32_of)?,
                attrs: r.read(ATTRS, "attrs", |v| table_ref(v, &attrs))?,
                proof: r
                    .read_or(PROOF, "proof", None, |v| {
                        decode_proof(v, &certs, limits).map(|p| Some(Arc::new(p)))
                    })
                    .map_err(|e| e.in_area(Area::Proof))?,
            })
        })
    })?;
    Ok(Update {
        announce,
        withdraw: f.read_or(WITHDRAW, "withdraw", Vec::new(), |v| {
            list_of(v, Bound::Withdraws, limits.max_withdraws, |w| {
                decode_route_key(w, limits)
            })
        })?,
        end_of_rib: f.read_or(END_OF_RIB, "end_of_rib", false, bool_of)?,
        unreachable: f
            .read_or(UNREACHABLE, "unreachable", Vec::new(), |v| {
                list_of(v, Bound::Withdraws, limits.max_withdraws, |p| {
                    decode_prefix(p, limits)
                })
            })
            .map_err(|e| e.in_area(Area::Prefix))?,
        tombstones: f.read_or(TOMBSTONES, "tombstones", Vec::new(), |v| {
            super::tombstone::decode_tombstones(v, limits, decode_cert)
        })?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn l() -> Limits {
        Limits::default()
    }

    #[test]
    fn defaults_are_left_out_of_attributes() {
        let v = encode_attrs(&PathAttrs::default(), &l()).unwrap();
        assert_eq!(v, Value::Map(vec![]));
        assert_eq!(decode_attrs(&v, &l()).unwrap(), PathAttrs::default());
    }

    #[test]
    fn unknown_optional_attributes_follow_the_transitive_bit() {
        let v = Value::Map(vec![
            (uint(1u64), uint(150u64)),
            (uint(33u64), Value::Array(vec![text("keep"), uint(1u64)])),
            (uint(34u64), text("drop")),
        ]);
        let a = decode_attrs(&v, &l()).unwrap();
        assert_eq!(a.local_pref, 150);
        assert_eq!(a.extra.len(), 1);
        let kept = &a.extra["#33"];
        assert!(kept.transitive);
        // Re-encoding puts the carried attribute back under its key,
        // byte-identical, and the dropped one stays dropped.
        let again = encode_attrs(&a, &l()).unwrap();
        assert_eq!(
            again,
            Value::Map(vec![
                (uint(1u64), uint(150u64)),
                (uint(33u64), Value::Array(vec![text("keep"), uint(1u64)])),
            ])
        );
    }

    #[test]
    fn unknown_required_attribute_is_refused() {
        let v = Value::Map(vec![(uint(20u64), uint(1u64))]);
        let e = decode_attrs(&v, &l()).unwrap_err();
        assert_eq!(e.kind, FieldErrorKind::UnknownRequiredKey { key: 20 });
    }

    #[test]
    fn named_extras_keep_their_flag_and_strip_drops_non_transitive() {
        let mut a = PathAttrs::default();
        a.extra.insert(
            "region".into(),
            ExtraAttr {
                transitive: true,
                value: AttrValue::Text("eu".into()),
            },
        );
        a.extra.insert(
            "cost-hint".into(),
            ExtraAttr {
                transitive: false,
                value: AttrValue::Int(-3),
            },
        );
        let back = decode_attrs(&encode_attrs(&a, &l()).unwrap(), &l()).unwrap();
        assert_eq!(back, a);
        let stripped = strip_non_transitive(&back).unwrap();
        assert!(stripped.extra.contains_key("region"));
        assert!(!stripped.extra.contains_key("cost-hint"));
        assert_eq!(strip_non_transitive(&stripped), None);
    }

    #[test]
    fn reserved_or_inconsistent_extra_names_are_refused() {
        let mut a = PathAttrs::default();
        a.extra.insert(
            "#34".into(),
            ExtraAttr {
                transitive: true,
                value: AttrValue::Bytes(vec![0x01].into()),
            },
        );
        assert!(matches!(
            encode_attrs(&a, &l()),
            Err(EncodeError::BadExtra { .. })
        ));
        a.extra.clear();
        a.extra.insert(
            "#35".into(),
            ExtraAttr {
                transitive: true,
                value: AttrValue::Bytes(vec![0x01, 0x02].into()),
            },
        );
        assert!(matches!(
            encode_attrs(&a, &l()),
            Err(EncodeError::BadExtra { .. })
        ));
        let v = Value::Map(vec![(
            uint(9u64),
            Value::Map(vec![(
                text("#x"),
                Value::Array(vec![uint(1u64), uint(1u64)]),
            )]),
        )]);
        assert!(decode_attrs(&v, &l()).is_err());
    }

    #[test]
    fn community_spellings_are_strict() {
        assert_eq!(
            decode_community(&uint(5u64)).unwrap(),
            Community::Standard(5)
        );
        assert_eq!(
            decode_community(&text("gold")).unwrap(),
            Community::Named("gold".into())
        );
        assert!(decode_community(&text("1:2")).is_err());
        assert!(decode_community(&text("Bad Word")).is_err());
        assert!(decode_community(&Value::Array(vec![uint(1u64)])).is_err());
        assert!(decode_community(&uint(1u64 << 40)).is_err());
    }
}
