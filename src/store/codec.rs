//! Keys and values of the store's trees (layout version
//! [`super::SCHEMA_VERSION`], documented in docs/store.md).
//!
//! Routes are stored as the wire protocol encodes them: a one-route UPDATE
//! frame from [`crate::wire`]. That format is already versioned, bounded and
//! tested, so the store has no second route schema to keep in step; a route
//! reads back exactly as it would arrive from a peer, signatures included.
//!
//! ```text
//! meta     "schema_version" -> u32 BE   "node" -> 32 bytes
//!          "created" -> u64 BE (ms)     "clean_shutdown" -> 0 | 1
//! adj_in   node(32) 0x00                           -> peer record (CBOR {0: asn})
//!          node(32) 0x01 path_id(u32 BE) prefix    -> route (UPDATE frame)
//! loc      prefix                                  -> route (UPDATE frame)
//! adj_out  node(32) prefix                         -> route (UPDATE frame)
//! ```

use crate::core::ids::{Asn, NodeId};
use crate::core::message::{Message, Update};
use crate::core::prefix::Prefix;
use crate::core::route::{Route, RouteKey};
use crate::wire::{self, Frame, Limits};

const TAG_PEER: u8 = 0;
const TAG_ROUTE: u8 = 1;

pub fn peer_key(node: &NodeId) -> Vec<u8> {
    let mut k = Vec::with_capacity(33);
    k.extend_from_slice(node.as_bytes());
    k.push(TAG_PEER);
    k
}

pub fn adj_in_key(node: &NodeId, key: &RouteKey) -> Vec<u8> {
    let p = key.prefix.as_str().as_bytes();
    let mut k = Vec::with_capacity(37 + p.len());
    k.extend_from_slice(node.as_bytes());
    k.push(TAG_ROUTE);
    k.extend_from_slice(&key.path_id.to_be_bytes());
    k.extend_from_slice(p);
    k
}

pub fn loc_key(prefix: &Prefix) -> Vec<u8> {
    prefix.as_str().as_bytes().to_vec()
}

pub fn adj_out_key(node: &NodeId, prefix: &Prefix) -> Vec<u8> {
    let p = prefix.as_str().as_bytes();
    let mut k = Vec::with_capacity(32 + p.len());
    k.extend_from_slice(node.as_bytes());
    k.extend_from_slice(p);
    k
}

/// What an `adj_in` key names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AdjInKey {
    Peer(NodeId),
    Route(NodeId, RouteKey),
}

/// Splits a key into the node id and the rest.
pub fn node_of(key: &[u8]) -> Result<(NodeId, &[u8]), String> {
    if key.len() < 32 {
        return Err(format!("key of {} bytes is too short", key.len()));
    }
    let mut n = [0u8; 32];
    n.copy_from_slice(&key[..32]);
    Ok((NodeId(n), &key[32..]))
}

pub fn parse_adj_in_key(key: &[u8]) -> Result<AdjInKey, String> {
    let (node, rest) = node_of(key)?;
    match rest.split_first() {
        Some((&TAG_PEER, [])) => Ok(AdjInKey::Peer(node)),
        Some((&TAG_ROUTE, r)) if r.len() > 4 => {
            let mut id = [0u8; 4];
            id.copy_from_slice(&r[..4]);
            let prefix = parse_prefix(&r[4..])?;
            Ok(AdjInKey::Route(
                node,
                RouteKey {
                    prefix,
                    path_id: u32::from_be_bytes(id),
                },
            ))
        }
        _ => Err("adj_in key has an unknown tag".into()),
    }
}

pub fn parse_prefix(b: &[u8]) -> Result<Prefix, String> {
    let s = std::str::from_utf8(b).map_err(|_| "prefix is not UTF-8".to_string())?;
    Prefix::new(s).map_err(|e| format!("prefix {s:?}: {e}"))
}

/// A route as a one-route UPDATE frame.
pub fn encode_route(route: &Route) -> Result<Vec<u8>, String> {
    // The wire decoder refuses an empty agent id; refuse it here too, so
    // nothing is written that cannot be read back.
    if route.attrs.agent.as_str().is_empty() {
        return Err(format!("route for {} has an empty agent id", route.prefix));
    }
    let m = Message::Update(Update {
        announce: vec![route.clone()],
        ..Default::default()
    });
    wire::encode_message(&m, &Limits::default()).map_err(|e| e.to_string())
}

pub fn decode_route(bytes: &[u8]) -> Result<Route, String> {
    match wire::decode(bytes, &Limits::default()) {
        Ok(Frame::Routing(Message::Update(mut u))) if u.announce.len() == 1 => u
            .announce
            .pop()
            .ok_or_else(|| "empty route frame".to_string()),
        Ok(other) => Err(format!(
            "expected a one-route UPDATE, found {}",
            other.message_type()
        )),
        Err(e) => Err(e.to_string()),
    }
}

#[derive(serde::Serialize, serde::Deserialize)]
struct PeerRecord {
    #[serde(rename = "0")]
    asn: u32,
}

pub fn encode_peer(asn: Asn) -> Vec<u8> {
    let mut out = Vec::new();
    // Writing a one-field struct into a Vec cannot fail.
    let _ = ciborium::into_writer(&PeerRecord { asn: asn.0 }, &mut out);
    out
}

pub fn decode_peer(bytes: &[u8]) -> Result<Asn, String> {
    ciborium::from_reader::<PeerRecord, _>(bytes)
        .map(|r| Asn(r.asn))
        .map_err(|e| format!("peer record: {e}"))
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::core::attrs::PathAttrs;
    use crate::core::ids::AgentId;

    fn route(p: &str, path_id: u32) -> Route {
        let attrs = PathAttrs {
            agent: AgentId::new("a"),
            as_path: vec![Asn(65001), Asn(65002)],
            ..Default::default()
        }
        .with_capabilities(["x"]);
        Route {
            prefix: Prefix::new(p).unwrap(),
            path_id,
            attrs: Arc::new(attrs),
            proof: None,
        }
    }

    #[test]
    fn route_values_round_trip_through_the_wire_format() {
        let r = route("tools/x/*", 3);
        assert_eq!(decode_route(&encode_route(&r).unwrap()).unwrap(), r);
        assert!(decode_route(b"\xff\x00").is_err());
    }

    #[test]
    fn adj_in_keys_round_trip_and_group_by_peer() {
        let n = NodeId::from_u64(7);
        let k = RouteKey {
            prefix: Prefix::new("a/b").unwrap(),
            path_id: 9,
        };
        let raw = adj_in_key(&n, &k);
        assert!(raw.starts_with(n.as_bytes()));
        assert_eq!(parse_adj_in_key(&raw).unwrap(), AdjInKey::Route(n, k));
        assert_eq!(parse_adj_in_key(&peer_key(&n)).unwrap(), AdjInKey::Peer(n));
        assert!(parse_adj_in_key(&[1, 2, 3]).is_err());
        assert_eq!(decode_peer(&encode_peer(Asn(65001))).unwrap(), Asn(65001));
    }
}
