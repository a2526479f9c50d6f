//! Sealed payloads: bytes encrypted to one node, end to end, with HPKE
//! (RFC 9180, base mode: DHKEM(X25519, HKDF-SHA256), HKDF-SHA256,
//! ChaCha20-Poly1305).
//!
//! The recipient's key is its node key: the X25519 public key is the
//! Montgomery form of its ed25519 public key (the node id), the secret the
//! clamped scalar of its ed25519 secret, as libsodium's
//! `crypto_sign_ed25519_*_to_curve25519` and age's ssh-ed25519 recipients
//! do. So anyone who knows a node id (from a route's origin attestation or
//! a call's signed origin) can seal to that node, and nothing needs to be
//! published or distributed; the key is as authentic as the certificate
//! that names the node.
//!
//! `info` binds a box to what it is for (the call and the part), `aad` to
//! the context it travels in; a box opened with another of either fails.

use hpke::aead::ChaCha20Poly1305;
use hpke::kdf::HkdfSha256;
use hpke::kem::X25519HkdfSha256;
use hpke::{Deserializable, Kem, OpModeR, OpModeS, Serializable};

use super::key::NodeKey;
use crate::core::ids::NodeId;

type KemT = X25519HkdfSha256;

/// Bytes of the encapsulated key HPKE sends with each box.
pub const ENC_LEN: usize = 32;
/// What the AEAD adds to the plaintext (its tag).
pub const TAG_LEN: usize = 16;

/// Why a payload could not be sealed or opened.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SealError {
    #[error("node id {0} is not a usable ed25519 key to seal to")]
    BadRecipient(String),
    #[error("the encapsulated key is not {ENC_LEN} bytes of a usable X25519 key")]
    BadEnc,
    #[error(
        "the sealed payload does not open with this node's key (another recipient, or changed on the way)"
    )]
    DoesNotOpen,
    #[error("sealing failed")]
    Seal,
}

/// The X25519 public key of a node id.
fn public_of(node: &NodeId) -> Result<<KemT as Kem>::PublicKey, SealError> {
    let bad = || SealError::BadRecipient(node.to_string());
    let vk = ed25519_dalek::VerifyingKey::from_bytes(&node.0).map_err(|_| bad())?;
    if vk.is_weak() {
        return Err(bad());
    }
    <KemT as Kem>::PublicKey::from_bytes(vk.to_montgomery().as_bytes()).map_err(|_| bad())
}

/// Seals `plain` to `to`: the encapsulated key and the ciphertext.
pub fn seal(
    to: &NodeId,
    info: &[u8],
    aad: &[u8],
    plain: &[u8],
) -> Result<([u8; ENC_LEN], Vec<u8>), SealError> {
    let pk = public_of(to)?;
    let (enc, ct) = hpke::single_shot_seal::<ChaCha20Poly1305, HkdfSha256, KemT>(
        &OpModeS::Base,
        &pk,
        info,
        plain,
        aad,
    )
    .map_err(|_| SealError::Seal)?;
    let mut e = [0u8; ENC_LEN];
    e.copy_from_slice(&enc.to_bytes());
    Ok((e, ct))
}

/// Opens a box sealed to `key`'s node.
pub fn open(
    key: &NodeKey,
    enc: &[u8],
    info: &[u8],
    aad: &[u8],
    ct: &[u8],
) -> Result<Vec<u8>, SealError> {
    let enc = <KemT as Kem>::EncappedKey::from_bytes(enc).map_err(|_| SealError::BadEnc)?;
    let secret = key.x25519_secret();
    let sk = <KemT as Kem>::PrivateKey::from_bytes(secret.as_ref())
        .map_err(|_| SealError::DoesNotOpen)?;
    hpke::single_shot_open::<ChaCha20Poly1305, HkdfSha256, KemT>(
        &OpModeR::Base,
        &sk,
        &enc,
        info,
        ct,
        aad,
    )
    .map_err(|_| SealError::DoesNotOpen)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(n: u8) -> NodeKey {
        NodeKey::from_seed(&[n; 32])
    }

    #[test]
    fn a_box_opens_for_its_recipient_only() {
        let to = key(1);
        let (enc, ct) = seal(&to.node_id(), b"info", b"aad", b"the arguments").unwrap();
        assert_eq!(ct.len(), b"the arguments".len() + TAG_LEN);
        assert_eq!(
            open(&to, &enc, b"info", b"aad", &ct).unwrap(),
            b"the arguments"
        );
        // Another node, another info or aad, a changed byte: nothing.
        assert_eq!(
            open(&key(2), &enc, b"info", b"aad", &ct),
            Err(SealError::DoesNotOpen)
        );
        assert!(open(&to, &enc, b"other", b"aad", &ct).is_err());
        assert!(open(&to, &enc, b"info", b"other", &ct).is_err());
        for i in 0..ct.len() {
            let mut bad = ct.clone();
            bad[i] ^= 1;
            assert!(open(&to, &enc, b"info", b"aad", &bad).is_err(), "byte {i}");
        }
        let mut bad_enc = enc;
        bad_enc[0] ^= 1;
        assert!(open(&to, &bad_enc, b"info", b"aad", &ct).is_err());
        assert_eq!(
            open(&to, &enc[..31], b"info", b"aad", &ct),
            Err(SealError::BadEnc)
        );
        assert!(open(&to, &enc, b"info", b"aad", &ct[..TAG_LEN - 1]).is_err());
    }

    #[test]
    fn every_box_is_fresh() {
        let to = key(1).node_id();
        let (e1, c1) = seal(&to, b"i", b"a", b"same").unwrap();
        let (e2, c2) = seal(&to, b"i", b"a", b"same").unwrap();
        assert_ne!(e1, e2);
        assert_ne!(c1, c2);
    }

    #[test]
    fn unusable_recipients_are_refused() {
        // Not a point on the curve (the first such y), and a small-order
        // (weak) point.
        let not_a_point = (2u8..)
            .map(|y| {
                let mut b = [0u8; 32];
                b[0] = y;
                b
            })
            .find(|b| ed25519_dalek::VerifyingKey::from_bytes(b).is_err())
            .unwrap();
        let mut identity = [0u8; 32];
        identity[0] = 1;
        for bytes in [not_a_point, identity] {
            assert!(matches!(
                seal(&NodeId(bytes), b"", b"", b"x"),
                Err(SealError::BadRecipient(_))
            ));
        }
    }
}
