//! ASN certificates: how one is made (derived, issued, self-signed for a
//! pin) and how its signature is checked.
//!
//! A certificate ([`AsnCert`]) binds an ASN to a node key for a validity
//! window. Whether the binding is *trusted* (which issuers, which ASNs, pins,
//! conflicts) is [`super::trust::TrustStore`]'s decision; this module only
//! builds certificates and checks that the right key signed them.
//!
//! Signed bytes (see docs/wire.md): `"agent-bgp/v1/asn-cert\0"` followed by
//! the deterministic CBOR array
//! `[asn, node (32 bytes), not_before, not_after, issuer (32 bytes) / null]`,
//! with a sixth element, the certified communities as text
//! (`[* text]`, sorted), when there are any.

use sha2::{Digest, Sha256};

use super::key::{NodeKey, SigError};
use crate::core::community::Community;
pub use crate::core::proof::MAX_CERT_COMMUNITIES;
use crate::core::proof::{AsnCert, Signature};
use crate::core::{Asn, Millis, NodeId};
use crate::wire::canon::CanonWriter;

/// Domain tag of certificate signatures.
pub const CERT_DOMAIN: &[u8] = b"agent-bgp/v1/asn-cert\0";
/// Domain tag hashed with a public key to derive its ASN.
pub const DERIVED_ASN_DOMAIN: &[u8] = b"agent-bgp/v1/derived-asn\0";
/// First ASN a key can derive (RFC 6996 private 32-bit range).
pub const DERIVED_ASN_FIRST: u32 = 4_200_000_000;
/// Last ASN a key can derive (RFC 6996 private 32-bit range).
pub const DERIVED_ASN_LAST: u32 = 4_294_967_294;

/// The ASN a public key derives, for self-certifying ad-hoc federations:
/// `4200000000 + (u64 from the first 8 bytes, big-endian, of
/// SHA-256(DERIVED_ASN_DOMAIN || key)) mod 94967295`.
///
/// The range holds about 95 million ASNs, so two keys collide with
/// probability about n²/190M for n nodes: negligible for a laptop
/// federation, not for ten thousand nodes, which should use issued ASNs.
pub fn derive_asn(node: &NodeId) -> Asn {
    let mut h = Sha256::new();
    h.update(DERIVED_ASN_DOMAIN);
    h.update(node.as_bytes());
    let digest = h.finalize();
    let mut first = [0u8; 8];
    first.copy_from_slice(&digest[..8]);
    let span = u64::from(DERIVED_ASN_LAST - DERIVED_ASN_FIRST) + 1;
    // The remainder is below `span`, which fits in u32 with the offset.
    Asn(DERIVED_ASN_FIRST + (u64::from_be_bytes(first) % span) as u32)
}

/// Whether `asn` lies in the range derived ASNs are drawn from.
pub fn in_derived_range(asn: Asn) -> bool {
    (DERIVED_ASN_FIRST..=DERIVED_ASN_LAST).contains(&asn.0)
}

/// How a certificate claims its binding, judged from its fields alone.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CertKind {
    /// Self-signed, and the ASN is the one the key derives.
    Derived,
    /// Self-signed for another ASN: valid only where a peer entry pins it.
    SelfSigned,
    /// Signed by an authority key.
    Issued { issuer: NodeId },
}

pub fn cert_kind(cert: &AsnCert) -> CertKind {
    match cert.issuer {
        Some(issuer) => CertKind::Issued { issuer },
        None if derive_asn(&cert.node) == cert.asn => CertKind::Derived,
        None => CertKind::SelfSigned,
    }
}

/// The bytes a certificate's signature covers (the communities only
/// when there are some, so certificates without any sign what they always
/// signed).
pub fn cert_signed_bytes(
    asn: Asn,
    node: &NodeId,
    not_before: Millis,
    not_after: Millis,
    issuer: Option<&NodeId>,
    communities: &[Community],
) -> Vec<u8> {
    let mut w = CanonWriter::with_domain(CERT_DOMAIN);
    w.array(if communities.is_empty() { 5 } else { 6 })
        .uint(u64::from(asn.0))
        .bytes(node.as_bytes())
        .uint(not_before.0)
        .uint(not_after.0);
    match issuer {
        Some(i) => w.bytes(i.as_bytes()),
        None => w.null(),
    };
    if !communities.is_empty() {
        w.array(communities.len());
        for c in communities {
            w.text(&c.to_string());
        }
    }
    w.finish()
}

/// The key whose signature a certificate must carry: the issuer's, or the
/// node's own for a self-signed one.
pub fn signing_key_of(cert: &AsnCert) -> NodeId {
    cert.issuer.unwrap_or(cert.node)
}

/// The signed bytes of an existing certificate.
pub fn signed_bytes_of(cert: &AsnCert) -> Vec<u8> {
    cert_signed_bytes(
        cert.asn,
        &cert.node,
        cert.not_before,
        cert.not_after,
        cert.issuer.as_ref(),
        &cert.communities,
    )
}

/// Checks that the right key signed `cert` (and nothing about trust).
pub fn verify_cert_signature(cert: &AsnCert) -> Result<(), SigError> {
    super::key::verify(
        &signing_key_of(cert),
        &signed_bytes_of(cert),
        &cert.signature,
    )
}

/// Why a certificate could not be made.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IssueError {
    #[error("validity window ends ({not_after:?}) before it starts ({not_before:?})")]
    EmptyWindow {
        not_before: Millis,
        not_after: Millis,
    },
    #[error("{count} communities: a certificate vouches for at most {MAX_CERT_COMMUNITIES}")]
    TooManyCommunities { count: usize },
}

fn window(not_before: Millis, not_after: Millis) -> Result<(), IssueError> {
    if not_after < not_before {
        return Err(IssueError::EmptyWindow {
            not_before,
            not_after,
        });
    }
    Ok(())
}

/// A self-certifying certificate for the ASN `key` derives: no authority
/// needed, for ad-hoc federations.
pub fn derived_cert(
    key: &NodeKey,
    not_before: Millis,
    not_after: Millis,
) -> Result<AsnCert, IssueError> {
    self_signed_cert(key, derive_asn(&key.node_id()), not_before, not_after)
}

/// A certificate the node signs for itself, for an ASN of its choosing.
/// Peers accept it only if they pin this node to that ASN (or, for the
/// derived ASN, as a derived certificate).
pub fn self_signed_cert(
    key: &NodeKey,
    asn: Asn,
    not_before: Millis,
    not_after: Millis,
) -> Result<AsnCert, IssueError> {
    window(not_before, not_after)?;
    let node = key.node_id();
    let signature = key.sign(&cert_signed_bytes(
        asn,
        &node,
        not_before,
        not_after,
        None,
        &[],
    ));
    Ok(AsnCert {
        asn,
        node,
        not_before,
        not_after,
        issuer: None,
        communities: Vec::new(),
        signature,
    })
}

/// An authority's certificate for one of its nodes (`abgp asn issue`).
/// Several nodes may get certificates for the same ASN.
pub fn issue_cert(
    authority: &NodeKey,
    node: NodeId,
    asn: Asn,
    not_before: Millis,
    not_after: Millis,
) -> Result<AsnCert, IssueError> {
    issue_cert_with_communities(authority, node, asn, not_before, not_after, Vec::new())
}

/// [`issue_cert`] that also vouches for the node's `communities` (callers
/// in `finance`, say), which `[[access]]` rules then trust.
pub fn issue_cert_with_communities(
    authority: &NodeKey,
    node: NodeId,
    asn: Asn,
    not_before: Millis,
    not_after: Millis,
    mut communities: Vec<Community>,
) -> Result<AsnCert, IssueError> {
    window(not_before, not_after)?;
    communities.sort();
    communities.dedup();
    if communities.len() > MAX_CERT_COMMUNITIES {
        return Err(IssueError::TooManyCommunities {
            count: communities.len(),
        });
    }
    let issuer = authority.node_id();
    let signature: Signature = authority.sign(&cert_signed_bytes(
        asn,
        &node,
        not_before,
        not_after,
        Some(&issuer),
        &communities,
    ));
    Ok(AsnCert {
        asn,
        node,
        not_before,
        not_after,
        issuer: Some(issuer),
        communities,
        signature,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(n: u8) -> NodeKey {
        NodeKey::from_seed(&[n; 32])
    }

    #[test]
    fn derived_asns_fall_in_the_private_range_and_are_stable() {
        for n in 0..200u8 {
            let a = derive_asn(&key(n).node_id());
            assert!(in_derived_range(a), "{a}");
            assert!(a.is_private());
        }
        // Pinned so that a change to the derivation is noticed: other
        // implementations must derive the same ASN.
        assert_eq!(
            derive_asn(&NodeId([0u8; 32])),
            derive_asn(&NodeId([0u8; 32]))
        );
        let fixed = derive_asn(&key(1).node_id());
        let mut h = Sha256::new();
        h.update(b"agent-bgp/v1/derived-asn\0");
        h.update(key(1).node_id().as_bytes());
        let d = h.finalize();
        let n = u64::from_be_bytes(d[..8].try_into().unwrap());
        assert_eq!(fixed.0 as u64, 4_200_000_000 + n % 94_967_295);
    }

    #[test]
    fn derived_cert_verifies_and_is_classified() {
        let k = key(1);
        let c = derived_cert(&k, Millis(0), Millis(10)).unwrap();
        assert_eq!(cert_kind(&c), CertKind::Derived);
        assert_eq!(verify_cert_signature(&c), Ok(()));
        let mut forged = c.clone();
        forged.asn = Asn(65001);
        assert_eq!(cert_kind(&forged), CertKind::SelfSigned);
        assert_eq!(verify_cert_signature(&forged), Err(SigError::Invalid));
    }

    #[test]
    fn issued_cert_is_signed_by_the_authority_not_the_node() {
        let auth = key(9);
        let node = key(2);
        let c = issue_cert(&auth, node.node_id(), Asn(65001), Millis(0), Millis(5)).unwrap();
        assert_eq!(
            cert_kind(&c),
            CertKind::Issued {
                issuer: auth.node_id()
            }
        );
        assert_eq!(verify_cert_signature(&c), Ok(()));
        let mut other = c.clone();
        other.node = key(3).node_id();
        assert_eq!(verify_cert_signature(&other), Err(SigError::Invalid));
        let mut later = c.clone();
        later.not_after = Millis(6);
        assert_eq!(verify_cert_signature(&later), Err(SigError::Invalid));
    }

    #[test]
    fn certified_communities_are_signed_by_the_authority() {
        let auth = key(9);
        let node = key(2).node_id();
        let gold = Community::named("gold").unwrap();
        let fin = Community::named("finance").unwrap();
        let c = issue_cert_with_communities(
            &auth,
            node,
            Asn(65001),
            Millis(0),
            Millis(5),
            vec![gold.clone(), fin.clone(), gold.clone()],
        )
        .unwrap();
        assert_eq!(c.communities, vec![fin.clone(), gold.clone()]);
        assert_eq!(verify_cert_signature(&c), Ok(()));
        // Adding, removing or changing one breaks the signature.
        for tampered in [
            vec![fin.clone()],
            vec![
                fin.clone(),
                gold.clone(),
                Community::named("admin").unwrap(),
            ],
            Vec::new(),
        ] {
            let mut t = c.clone();
            t.communities = tampered;
            assert_eq!(verify_cert_signature(&t), Err(SigError::Invalid));
        }
        // Without communities the signed bytes are those of before.
        let plain = issue_cert(&auth, node, Asn(65001), Millis(0), Millis(5)).unwrap();
        assert_eq!(
            signed_bytes_of(&plain)[CERT_DOMAIN.len()],
            0x85,
            "a 5-element array"
        );
        let many: Vec<Community> = (0..33)
            .map(|i| Community::named(&format!("c{i}")).unwrap())
            .collect();
        assert!(matches!(
            issue_cert_with_communities(&auth, node, Asn(65001), Millis(0), Millis(5), many),
            Err(IssueError::TooManyCommunities { count: 33 })
        ));
    }

    #[test]
    fn empty_validity_window_is_refused() {
        assert!(matches!(
            derived_cert(&key(1), Millis(10), Millis(9)),
            Err(IssueError::EmptyWindow { .. })
        ));
    }

    #[test]
    fn signed_bytes_are_domain_tag_then_cbor_array() {
        let b = cert_signed_bytes(Asn(1), &NodeId([0xaa; 32]), Millis(2), Millis(3), None, &[]);
        let mut want = b"agent-bgp/v1/asn-cert\0".to_vec();
        want.extend_from_slice(&[0x85, 0x01, 0x58, 0x20]);
        want.extend_from_slice(&[0xaa; 32]);
        want.extend_from_slice(&[0x02, 0x03, 0xf6]);
        assert_eq!(b, want);
    }
}
