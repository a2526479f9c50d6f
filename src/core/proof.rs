//! Signatures carried with a route, as plain data.
//!
//! The core never creates or checks signatures: it stores what arrived and
//! passes it on. `crate::identity` (certificates) and `crate::identity::route_sign`
//! (origin attestations and path signatures) own the cryptography and the
//! exact bytes that are signed; see docs/wire.md.

use std::sync::Arc;

use serde::{Deserialize, Serialize};

use super::ids::{Asn, Millis, NodeId};

/// An ed25519 signature.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Signature(#[serde(with = "serde_bytes")] pub [u8; 64]);

impl std::fmt::Debug for Signature {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Signature({}..)", hex::encode(&self.0[..4]))
    }
}

/// Most communities one certificate may vouch for.
pub const MAX_CERT_COMMUNITIES: usize = 32;

/// Binds an ASN to a node key. See `crate::identity` for how one is issued
/// and verified.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct AsnCert {
    pub asn: Asn,
    pub node: NodeId,
    pub not_before: Millis,
    pub not_after: Millis,
    /// `None` for a self-signed certificate (a derived ASN, or one a peer
    /// entry pins), else the authority's public key.
    pub issuer: Option<NodeId>,
    /// Communities the issuer vouches the node belongs to (`finance`),
    /// sorted and deduplicated; what `[[access]]` rules match callers on.
    /// Meaningful only in an issued certificate: in a self-signed one they
    /// are the node's own claim.
    #[serde(default)]
    pub communities: Vec<crate::core::community::Community>,
    pub signature: Signature,
}

impl AsnCert {
    /// A self-signed certificate binding `asn` to `node` for all time,
    /// without a signature: for the simulator and tests, where signature
    /// checks are off. A node checking signatures refuses it.
    pub fn unsigned(asn: Asn, node: NodeId) -> Self {
        AsnCert {
            asn,
            node,
            not_before: Millis(0),
            not_after: Millis(u64::MAX),
            issuer: None,
            communities: Vec::new(),
            signature: Signature([0; 64]),
        }
    }
}

/// The originating node's signature over the route's origin facts (prefix,
/// agent, capabilities, origin ASN, origin time, expiry).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct OriginAttestation {
    pub cert: Arc<AsnCert>,
    pub expires: Millis,
    pub signature: Signature,
}

/// One AS's signature over the path so far plus the AS it sent the route to.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct PathSignature {
    pub cert: Arc<AsnCert>,
    /// How many times the signer's ASN appears in the AS path for this hop:
    /// 1 normally, more when the signer prepended, 0 for a transparent route
    /// server (accepted only from ASNs the verifier configured as such).
    pub pcount: u8,
    /// The AS the signer sent the route to.
    pub target: Asn,
    pub signature: Signature,
}

/// Everything needed to check a route's origin and path on its own.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct RouteProof {
    pub origin: OriginAttestation,
    /// Oldest (origin AS) first.
    pub path: Vec<PathSignature>,
}

/// The originating node's signed statement that it ended its origination
/// of a prefix (a "tombstone", docs/protocol.md): every path to `prefix`
/// whose origin AS is `cert.asn` and whose origin time is at most `ended`
/// is dead. Nodes relay it unchanged with their own withdrawals, so that
/// no one falls back on such a path while the withdrawals spread. The
/// core stores, matches and relays it; `crate::identity::route_sign` signs
/// and checks it (the exact bytes are in docs/wire.md).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Tombstone {
    pub prefix: super::prefix::Prefix,
    /// Binds the signing node to the origin ASN (as in an
    /// [`OriginAttestation`]).
    pub cert: Arc<AsnCert>,
    /// The origin time of the withdrawn origination; paths with an origin
    /// time up to this one are dead, later ones are a new origination.
    pub ended: Millis,
    /// When the origin issued it.
    pub issued: Millis,
    /// After this it means nothing (receivers cap it further).
    pub expires: Millis,
    pub signature: Signature,
}

impl Tombstone {
    /// A tombstone without a signature, under `cert` (see
    /// [`AsnCert::unsigned`]): for the simulator and tests.
    pub fn unsigned(
        prefix: super::prefix::Prefix,
        cert: Arc<AsnCert>,
        ended: Millis,
        issued: Millis,
        expires: Millis,
    ) -> Self {
        Tombstone {
            prefix,
            cert,
            ended,
            issued,
            expires,
            signature: Signature([0; 64]),
        }
    }

    /// The origin AS it speaks for.
    pub fn asn(&self) -> Asn {
        self.cert.asn
    }

    /// The originating node that issued it.
    pub fn node(&self) -> NodeId {
        self.cert.node
    }
}
