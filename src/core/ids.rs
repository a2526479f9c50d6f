//! Identifiers the routing core works with: AS numbers, node ids, cluster
//! ids, agent ids and time. All are small plain values.
//!
//! A [`NodeId`] is the 32-byte ed25519 public key of a node. The libp2p
//! adapter maps it one-to-one onto a libp2p `PeerId`; the core never needs
//! libp2p to compare, hash or order nodes.

use std::fmt;
use std::str::FromStr;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

/// An autonomous system number (32-bit, as in RFC 6793).
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Asn(pub u32);

impl Asn {
    /// First ASN of the private 32-bit range (RFC 6996).
    pub const PRIVATE_START: u32 = 4_200_000_000;
    /// Last ASN of the private 32-bit range (RFC 6996).
    pub const PRIVATE_END: u32 = 4_294_967_294;

    pub fn is_private(self) -> bool {
        (64_512..=65_534).contains(&self.0)
            || (Self::PRIVATE_START..=Self::PRIVATE_END).contains(&self.0)
    }
}

impl fmt::Display for Asn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "AS{}", self.0)
    }
}

impl fmt::Debug for Asn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "AS{}", self.0)
    }
}

impl FromStr for Asn {
    type Err = String;
    /// Accepts `65001`, `AS65001` and `as65001`.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let digits = s
            .strip_prefix("AS")
            .or_else(|| s.strip_prefix("as"))
            .unwrap_or(s);
        digits
            .parse::<u32>()
            .map(Asn)
            .map_err(|_| format!("{s:?} is not an AS number (expected e.g. 65001 or AS65001)"))
    }
}

/// A node's identity: its ed25519 public key.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct NodeId(#[serde(with = "serde_bytes")] pub [u8; 32]);

impl NodeId {
    /// A deterministic id for tests and the simulator: `n` in the last 8 bytes,
    /// so ids order like their numbers.
    pub fn from_u64(n: u64) -> Self {
        let mut b = [0u8; 32];
        b[24..].copy_from_slice(&n.to_be_bytes());
        NodeId(b)
    }

    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// First 8 hex digits, for logs.
    pub fn short(&self) -> String {
        hex::encode(&self.0[..4])
    }
}

impl fmt::Display for NodeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&hex::encode(self.0))
    }
}

impl fmt::Debug for NodeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0[..24].iter().all(|b| *b == 0) {
            // Ids made by `from_u64` (tests, the simulator).
            let mut n = [0u8; 8];
            n.copy_from_slice(&self.0[24..]);
            return write!(f, "NodeId(#{})", u64::from_be_bytes(n));
        }
        write!(f, "NodeId({})", self.short())
    }
}

impl FromStr for NodeId {
    type Err = String;
    /// 64 hex digits.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let mut b = [0u8; 32];
        hex::decode_to_slice(s, &mut b)
            .map_err(|e| format!("{s:?} is not a node id (64 hex digits): {e}"))?;
        Ok(NodeId(b))
    }
}

/// A route-reflection cluster id (RFC 4456).
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Debug, Serialize, Deserialize)]
#[serde(transparent)]
pub struct ClusterId(pub u32);

impl fmt::Display for ClusterId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "cluster-{}", self.0)
    }
}

/// Names the agent (an MCP server) that originates a route.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct AgentId(pub Arc<str>);

impl AgentId {
    pub fn new(s: &str) -> Self {
        AgentId(s.into())
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for AgentId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for AgentId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "AgentId({})", self.0)
    }
}

/// Milliseconds since the Unix epoch. The core never reads a clock: drivers
/// pass the current time in, and must pass non-decreasing values.
#[derive(
    Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Debug, Default, Serialize, Deserialize,
)]
#[serde(transparent)]
pub struct Millis(pub u64);

impl Millis {
    pub fn saturating_add_ms(self, ms: u64) -> Millis {
        Millis(self.0.saturating_add(ms))
    }
    pub fn saturating_sub(self, other: Millis) -> u64 {
        self.0.saturating_sub(other.0)
    }
}

impl fmt::Display for Millis {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}ms", self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn asn_parses_with_or_without_prefix() {
        assert_eq!("65001".parse::<Asn>(), Ok(Asn(65001)));
        assert_eq!("AS65001".parse::<Asn>(), Ok(Asn(65001)));
        assert!("AS-1".parse::<Asn>().is_err());
        assert!(Asn(4_200_000_001).is_private());
        assert!(!Asn(3320).is_private());
    }

    #[test]
    fn node_ids_order_like_their_numbers_and_round_trip_hex() {
        assert!(NodeId::from_u64(1) < NodeId::from_u64(2));
        let n = NodeId::from_u64(0xdead_beef);
        assert_eq!(n.to_string().parse::<NodeId>(), Ok(n));
        assert!("zz".parse::<NodeId>().is_err());
    }
}
