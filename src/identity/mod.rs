//! Node identity and ASN binding.
//!
//! - [`key`]: the node's ed25519 key file (0600, never overwritten), which
//!   is also its libp2p identity: [`NodeId`](crate::core::NodeId) and
//!   `PeerId` convert both ways.
//! - [`cert`]: ASN certificates, derived (self-certifying, private range),
//!   issued (signed by an authority) or self-signed for a pin.
//! - [`cert_file`]: certificate files (`abgp asn issue` writes them).
//! - [`invite`]: federation invitation tokens and the claims that redeem them.
//! - [`known_asns`]: the first key seen for each derived ASN (trust on
//!   first use), and this node's own, so a colliding or ground key is refused.
//! - [`roa`]: origin authorisations signed by an anchor (who may
//!   originate which prefix) and route origin validation.
//! - [`trust`]: which certificates this node believes and why it refuses
//!   the others, as typed errors that map onto OPEN NOTIFICATIONs.
//! - [`route_sign`]: origin attestations and BGPsec-style path signatures
//!   on routes (the signed bytes are `crate::wire::canon`'s);
//!   [`verify_cache`]: the verification cache and batch verification.
//!
//! The routing core only carries certificates as plain data
//! ([`crate::core::proof`]); all signing and checking happens here and in
//! [`route_sign`]. The session decides what a refusal does (refuse
//! the OPEN); this module only says whether and why.

pub mod cert;
pub mod cert_file;
pub mod invite;
pub mod key;
pub mod known_asns;
pub mod roa;
pub mod route_sign;
pub mod seal;
pub mod trust;
pub mod verify_cache;

use std::sync::Arc;

use crate::core::proof::AsnCert;

pub use cert::{derive_asn, derived_cert, issue_cert, self_signed_cert};
pub use cert_file::{CertFileError, read_cert_file, write_cert_file};
pub use key::{KEY_FILE_NAME, KeyFileError, NodeKey, node_id_of, peer_id_of, peer_of_addr};
pub use known_asns::{KnownAsns, KnownAsnsError, KnownKey, Observed};
pub use route_sign::{
    RouteVerifyError, SignError, VerifyContext, sign_origin, sign_path_hop, verify_route,
};
pub use trust::{Binding, CertError, TrustAnchor, TrustStore};
pub use verify_cache::{VerifyCache, VerifyStats};

/// What a node signs with: its key and the certificate binding it to its
/// ASN.
/// The key and certificate always name the same node.
#[derive(Debug)]
pub struct LocalIdentity {
    key: NodeKey,
    cert: Arc<AsnCert>,
}

/// Why a key and a certificate do not make an identity.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("certificate is for key {cert_node}, not this node's key {key_node}")]
pub struct IdentityMismatch {
    pub cert_node: crate::core::NodeId,
    pub key_node: crate::core::NodeId,
}

impl LocalIdentity {
    pub fn new(key: NodeKey, cert: AsnCert) -> Result<Self, IdentityMismatch> {
        if cert.node != key.node_id() {
            return Err(IdentityMismatch {
                cert_node: cert.node,
                key_node: key.node_id(),
            });
        }
        Ok(LocalIdentity {
            key,
            cert: Arc::new(cert),
        })
    }

    pub fn asn(&self) -> crate::core::Asn {
        self.cert.asn
    }

    pub fn key(&self) -> &NodeKey {
        &self.key
    }

    pub fn cert(&self) -> &Arc<AsnCert> {
        &self.cert
    }

    pub fn node_id(&self) -> crate::core::NodeId {
        self.key.node_id()
    }
}
