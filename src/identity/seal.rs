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
//! `info` binds a box to what it is for, `aad` to the context it travels
//! in; a box opened with another of either fails.
//!
//! A request ([`seal_request`]) and its reply share one key exchange: both
//! ends export a reply key from the request's HPKE context (RFC 9180
//! section 5.3), and the reply ([`seal_reply`]) is ChaCha20-Poly1305 under
//! that key with a fresh random nonce, so the answer costs no public-key
//! operation at either end. Only the two ends know the key.

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

/// The exporter context the reply key is derived with.
const REPLY_EXPORT: &[u8] = b"agent-bgp/v1/seal/reply";
/// Bytes of a reply's nonce.
pub const NONCE_LEN: usize = 12;

/// The key a request's reply is sealed with, known to its two ends.
pub type ReplyKey = zeroize::Zeroizing<[u8; 32]>;

/// Seals a request to `to`: the encapsulated key, the ciphertext, and the
/// key its reply will be sealed with.
pub fn seal_request(
    to: &NodeId,
    info: &[u8],
    aad: &[u8],
    plain: &[u8],
) -> Result<([u8; ENC_LEN], Vec<u8>, ReplyKey), SealError> {
    let pk = public_of(to)?;
    let (enc, mut ctx) =
        hpke::setup_sender::<ChaCha20Poly1305, HkdfSha256, KemT>(&OpModeS::Base, &pk, info)
            .map_err(|_| SealError::Seal)?;
    let ct = ctx.seal(plain, aad).map_err(|_| SealError::Seal)?;
    let mut reply = ReplyKey::new([0u8; 32]);
    ctx.export(REPLY_EXPORT, reply.as_mut())
        .map_err(|_| SealError::Seal)?;
    let mut e = [0u8; ENC_LEN];
    e.copy_from_slice(&enc.to_bytes());
    Ok((e, ct, reply))
}

/// Opens a request sealed to `key`'s node: the plaintext and the key to
/// seal its reply with.
pub fn open_request(
    key: &NodeKey,
    enc: &[u8],
    info: &[u8],
    aad: &[u8],
    ct: &[u8],
) -> Result<(Vec<u8>, ReplyKey), SealError> {
    let enc = <KemT as Kem>::EncappedKey::from_bytes(enc).map_err(|_| SealError::BadEnc)?;
    let secret = key.x25519_secret();
    let sk = <KemT as Kem>::PrivateKey::from_bytes(secret.as_ref())
        .map_err(|_| SealError::DoesNotOpen)?;
    let mut ctx =
        hpke::setup_receiver::<ChaCha20Poly1305, HkdfSha256, KemT>(&OpModeR::Base, &sk, &enc, info)
            .map_err(|_| SealError::DoesNotOpen)?;
    let plain = ctx.open(ct, aad).map_err(|_| SealError::DoesNotOpen)?;
    let mut reply = ReplyKey::new([0u8; 32]);
    ctx.export(REPLY_EXPORT, reply.as_mut())
        .map_err(|_| SealError::DoesNotOpen)?;
    Ok((plain, reply))
}

fn reply_cipher(key: &ReplyKey) -> chacha20poly1305::ChaCha20Poly1305 {
    use chacha20poly1305::KeyInit;
    chacha20poly1305::ChaCha20Poly1305::new(&chacha20poly1305::Key::from(**key))
}

/// Seals a reply under `key`: a fresh random nonce, and the ciphertext.
pub fn seal_reply(
    key: &ReplyKey,
    aad: &[u8],
    plain: &[u8],
) -> Result<([u8; NONCE_LEN], Vec<u8>), SealError> {
    use chacha20poly1305::aead::{Aead, Payload};
    let mut nonce = [0u8; NONCE_LEN];
    rand::RngCore::fill_bytes(&mut rand::rngs::OsRng, &mut nonce);
    let ct = reply_cipher(key)
        .encrypt(
            &chacha20poly1305::Nonce::from(nonce),
            Payload { msg: plain, aad },
        )
        .map_err(|_| SealError::Seal)?;
    Ok((nonce, ct))
}

/// Opens a reply sealed under `key`.
pub fn open_reply(
    key: &ReplyKey,
    nonce: &[u8; NONCE_LEN],
    aad: &[u8],
    ct: &[u8],
) -> Result<Vec<u8>, SealError> {
    use chacha20poly1305::aead::{Aead, Payload};
    reply_cipher(key)
        .decrypt(
            &chacha20poly1305::Nonce::from(*nonce),
            Payload { msg: ct, aad },
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
        let (enc, ct, _) = seal_request(&to.node_id(), b"info", b"aad", b"the arguments").unwrap();
        let open = |k: &NodeKey, enc: &[u8], info: &[u8], aad: &[u8], ct: &[u8]| {
            open_request(k, enc, info, aad, ct).map(|(p, _)| p)
        };
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
    fn a_reply_opens_only_under_its_requests_key() {
        let origin = key(1);
        let (enc, ct, caller_key) =
            seal_request(&origin.node_id(), b"info", b"aad", b"args").unwrap();
        let (plain, origin_key) = open_request(&origin, &enc, b"info", b"aad", &ct).unwrap();
        assert_eq!(plain, b"args");
        assert_eq!(
            *caller_key, *origin_key,
            "both ends hold the same reply key"
        );
        let (nonce, reply) = seal_reply(&origin_key, b"aad", b"result").unwrap();
        assert_eq!(
            open_reply(&caller_key, &nonce, b"aad", &reply).unwrap(),
            b"result"
        );
        // Another request's key, another aad, a changed byte or nonce.
        let (_, _, other) = seal_request(&origin.node_id(), b"info", b"aad", b"args").unwrap();
        assert_ne!(*other, *caller_key);
        assert!(open_reply(&other, &nonce, b"aad", &reply).is_err());
        assert!(open_reply(&caller_key, &nonce, b"other", &reply).is_err());
        let mut bad = reply.clone();
        bad[0] ^= 1;
        assert!(open_reply(&caller_key, &nonce, b"aad", &bad).is_err());
        let mut n2 = nonce;
        n2[0] ^= 1;
        assert!(open_reply(&caller_key, &n2, b"aad", &reply).is_err());
        // Another node cannot open the request, so never learns the key.
        assert!(open_request(&key(2), &enc, b"info", b"aad", &ct).is_err());
        // Two replies under one key get different nonces.
        let (n3, _) = seal_reply(&origin_key, b"aad", b"result").unwrap();
        assert_ne!(n3, nonce);
    }

    #[test]
    fn every_box_is_fresh() {
        let to = key(1).node_id();
        let (e1, c1, k1) = seal_request(&to, b"i", b"a", b"same").unwrap();
        let (e2, c2, k2) = seal_request(&to, b"i", b"a", b"same").unwrap();
        assert_ne!(*k1, *k2);
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
                seal_request(&NodeId(bytes), b"", b"", b"x"),
                Err(SealError::BadRecipient(_))
            ));
        }
    }
}
