//! Federation invitations: the `abgp1-...` token that `abgp federation
//! invite` prints and `abgp init --join` reads, and the claim a joiner
//! trades it for (its ASN certificate).
//!
//! A token is `abgp1-` followed by base64url (no padding) of a CBOR array
//! `[1, body, secret, signature]`:
//! - `body`: the CBOR bytes of [`Invite`] (federation name, the authority's
//!   public key and ASN range, the ASN offered to the joiner, the expiry,
//!   the public half of the claim key, where to claim, bootstrap addresses);
//! - `signature`: the authority's ed25519 signature over
//!   `"agent-bgp/invite/1\0" || body`, so a token changed after it was
//!   made is refused;
//! - `secret`: the seed of a one-time claim key made for this invitation.
//!
//! The joiner makes its own node key; the token carries no node key. It
//! signs a [`Claim`] (its node id and the offered ASN) with the claim key
//! and sends it to the inviter, which checks it against the claim key it
//! recorded, issues the certificate for that node id once, and refuses any
//! other node afterwards. With the certificate come the federation's
//! origin authorisations (`abgp federation authorize`), which the joiner
//! writes into its `[trust] authorizations`. The secret never crosses the network: a claim
//! seen on the wire only yields a certificate for the node that made it.
//!
//! Bounds: a token is at most [`MAX_TOKEN_CHARS`] characters, a claim
//! frame [`MAX_CLAIM_BYTES`], an answer frame [`MAX_ANSWER_BYTES`]; lists
//! in a body at most [`MAX_ADDRESSES`] entries of [`MAX_ADDRESS_CHARS`].
//! Decoding never panics: every failure is an [`InviteError`] that says
//! what is wrong with the token.

use std::net::SocketAddr;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::{Deserialize, Serialize};
use serde_bytes::ByteBuf;
use zeroize::Zeroizing;

use super::cert::in_derived_range;
use super::key::{self, NodeKey};
use crate::core::ids::{Asn, Millis, NodeId};
use crate::core::proof::{AsnCert, Signature};

/// What every token starts with (`1`: the token format's version).
pub const TOKEN_PREFIX: &str = "abgp1-";
/// Longest token accepted (a real one is about 500 characters).
pub const MAX_TOKEN_CHARS: usize = 4096;
/// Most claim or bootstrap addresses in a token.
pub const MAX_ADDRESSES: usize = 8;
/// Longest claim or bootstrap address.
pub const MAX_ADDRESS_CHARS: usize = 256;
/// Largest claim frame an inviter reads (a claim is about 200 bytes).
pub const MAX_CLAIM_BYTES: usize = 1024;
/// Largest answer frame a joiner reads (a certificate is about 200 bytes,
/// an origin authorisation about 250).
pub const MAX_ANSWER_BYTES: usize = 160 * 1024;
/// Most origin authorisations an answer carries.
pub const MAX_ANSWER_AUTHORIZATIONS: usize = 64;
/// Longest refusal text carried in an answer.
pub const MAX_REFUSAL_CHARS: usize = 512;

const TOKEN_VERSION: u32 = 1;
const INVITE_DOMAIN: &[u8] = b"agent-bgp/invite/1\0";
const CLAIM_DOMAIN: &[u8] = b"agent-bgp/claim/1\0";

/// The signed part of a token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Invite {
    /// The federation's name (`node.federation`).
    pub federation: String,
    /// The federation's authority: its trust anchor.
    pub anchor: NodeId,
    /// The ASNs the authority speaks for, inclusive.
    pub asns: (u32, u32),
    /// The ASN offered to the joiner.
    pub asn: Asn,
    /// After this the invitation cannot be claimed.
    pub expires: Millis,
    /// The public key a claim must be signed with.
    pub claim_key: NodeId,
    /// Where the inviter takes claims (`ip:port`).
    pub claim: Vec<SocketAddr>,
    /// Federation members to dial first (multiaddrs ending in `/p2p/...`).
    pub bootstrap: Vec<String>,
}

/// A decoded, signature-checked token. `Debug` does not print the secret.
pub struct Token {
    pub invite: Invite,
    secret: Zeroizing<[u8; 32]>,
}

impl std::fmt::Debug for Token {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Token")
            .field("invite", &self.invite)
            .field("secret", &"<redacted>")
            .finish()
    }
}

/// Why a token is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InviteError {
    #[error("not an invitation token: a token starts with {TOKEN_PREFIX}")]
    NotAToken,
    #[error("the token is {0} characters long; a token is at most {MAX_TOKEN_CHARS}")]
    TooLong(usize),
    #[error("the token is damaged (was it cut or wrapped when copied?): {0}")]
    Damaged(String),
    #[error("the token was made by a newer abgp (format {0}); update abgp")]
    Version(u32),
    #[error(
        "the token's signature does not verify: it was changed after the federation's authority made it"
    )]
    BadSignature,
    #[error("the token is not valid: {0}")]
    Invalid(String),
    #[error(
        "this invitation expired at {expires} ms since the epoch (now {now}); ask for a new one"
    )]
    Expired { expires: Millis, now: Millis },
}

#[derive(Serialize, Deserialize)]
struct BodyWire {
    federation: String,
    anchor: ByteBuf,
    asns: (u32, u32),
    asn: u32,
    expires: u64,
    claim_key: ByteBuf,
    claim: Vec<String>,
    bootstrap: Vec<String>,
}

#[derive(Serialize, Deserialize)]
struct TokenWire(u32, ByteBuf, ByteBuf, ByteBuf);

fn id_of(bytes: &[u8], what: &str) -> Result<NodeId, InviteError> {
    let arr: [u8; 32] = bytes
        .try_into()
        .map_err(|_| InviteError::Invalid(format!("{what} is {} bytes, not 32", bytes.len())))?;
    let id = NodeId(arr);
    key::verifying_key(&id)
        .map_err(|e| InviteError::Invalid(format!("{what} is not a usable key: {e}")))?;
    Ok(id)
}

/// Whether a federation name is one `node.federation` accepts.
pub fn valid_federation_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
}

impl Invite {
    /// The checks every body must pass, for a token made here or read.
    pub fn validate(&self) -> Result<(), InviteError> {
        let bad = |s: String| Err(InviteError::Invalid(s));
        if !valid_federation_name(&self.federation) {
            return bad(format!(
                "federation name {:?} is not 1 to 64 letters, digits, '-', '_', '.'",
                self.federation
            ));
        }
        let (lo, hi) = self.asns;
        if lo == 0 || lo > hi || hi == u32::MAX {
            return bad(format!("ASN range {lo}-{hi} is not a usable range"));
        }
        if in_derived_range(Asn(lo)) || in_derived_range(Asn(hi)) {
            return bad(format!(
                "ASN range {lo}-{hi} overlaps the derived range, which belongs to self-certifying keys"
            ));
        }
        if !(lo..=hi).contains(&self.asn.0) {
            return bad(format!(
                "the offered AS{} is outside the federation's range {lo}-{hi}",
                self.asn.0
            ));
        }
        if self.claim.is_empty() {
            return bad("it names no address to claim it at".into());
        }
        if self.claim.len() > MAX_ADDRESSES || self.bootstrap.len() > MAX_ADDRESSES {
            return bad(format!("more than {MAX_ADDRESSES} addresses"));
        }
        for b in &self.bootstrap {
            let ok = b.len() <= MAX_ADDRESS_CHARS
                && b.parse::<libp2p::Multiaddr>()
                    .ok()
                    .and_then(|m| key::peer_of_addr(&m))
                    .is_some();
            if !ok {
                return bad(format!(
                    "bootstrap address {:?} is not a multiaddr ending in /p2p/<peer id>",
                    b.chars().take(MAX_ADDRESS_CHARS).collect::<String>()
                ));
            }
        }
        Ok(())
    }

    fn encode(&self) -> Vec<u8> {
        let w = BodyWire {
            federation: self.federation.clone(),
            anchor: ByteBuf::from(self.anchor.0.to_vec()),
            asns: self.asns,
            asn: self.asn.0,
            expires: self.expires.0,
            claim_key: ByteBuf::from(self.claim_key.0.to_vec()),
            claim: self.claim.iter().map(|a| a.to_string()).collect(),
            bootstrap: self.bootstrap.clone(),
        };
        let mut out = Vec::new();
        // Writing plain data into a Vec cannot fail.
        let _ = ciborium::into_writer(&w, &mut out);
        out
    }

    fn decode(bytes: &[u8]) -> Result<Invite, InviteError> {
        let w: BodyWire = ciborium::from_reader(bytes)
            .map_err(|e| InviteError::Damaged(format!("its contents do not decode: {e}")))?;
        if w.claim.len() > MAX_ADDRESSES || w.bootstrap.len() > MAX_ADDRESSES {
            return Err(InviteError::Invalid(format!(
                "more than {MAX_ADDRESSES} addresses"
            )));
        }
        let claim = w
            .claim
            .iter()
            .map(|a| {
                a.parse::<SocketAddr>().map_err(|_| {
                    InviteError::Invalid(format!(
                        "claim address {:?} is not ip:port",
                        a.chars().take(MAX_ADDRESS_CHARS).collect::<String>()
                    ))
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        let invite = Invite {
            federation: w.federation,
            anchor: id_of(&w.anchor, "the authority key")?,
            asns: w.asns,
            asn: Asn(w.asn),
            expires: Millis(w.expires),
            claim_key: id_of(&w.claim_key, "the claim key")?,
            claim,
            bootstrap: w.bootstrap,
        };
        invite.validate()?;
        Ok(invite)
    }
}

fn signed_bytes(body: &[u8]) -> Vec<u8> {
    let mut m = Vec::with_capacity(INVITE_DOMAIN.len() + body.len());
    m.extend_from_slice(INVITE_DOMAIN);
    m.extend_from_slice(body);
    m
}

impl Token {
    /// Makes a token: a fresh claim key, the body signed by `authority`
    /// (whose public key must be `invite.anchor`; `invite.claim_key` is
    /// replaced by the new claim key's). Returns the token and the claim
    /// key's public half, which the inviter records.
    pub fn create(
        authority: &NodeKey,
        mut invite: Invite,
    ) -> Result<(String, NodeId), InviteError> {
        if authority.node_id() != invite.anchor {
            return Err(InviteError::Invalid(
                "the token must be signed by the federation's own authority key".into(),
            ));
        }
        let mut seed = Zeroizing::new([0u8; 32]);
        rand::RngCore::fill_bytes(&mut rand::rngs::OsRng, seed.as_mut());
        invite.claim_key = NodeKey::from_seed(&seed).node_id();
        invite.validate()?;
        let body = invite.encode();
        let sig = authority.sign(&signed_bytes(&body));
        let wire = TokenWire(
            TOKEN_VERSION,
            ByteBuf::from(body),
            ByteBuf::from(seed.to_vec()),
            ByteBuf::from(sig.0.to_vec()),
        );
        let mut cbor = Zeroizing::new(Vec::new());
        let _ = ciborium::into_writer(&wire, &mut *cbor);
        let text = format!("{TOKEN_PREFIX}{}", URL_SAFE_NO_PAD.encode(&*cbor));
        Ok((text, invite.claim_key))
    }

    /// Decodes a token and checks its signature and contents (not its
    /// expiry: see [`Token::check_expiry`]). Surrounding whitespace is
    /// ignored.
    pub fn decode(text: &str) -> Result<Token, InviteError> {
        let text = text.trim();
        if text.len() > MAX_TOKEN_CHARS {
            return Err(InviteError::TooLong(text.len()));
        }
        let rest = text
            .strip_prefix(TOKEN_PREFIX)
            .ok_or(InviteError::NotAToken)?;
        let cbor = Zeroizing::new(
            URL_SAFE_NO_PAD
                .decode(rest)
                .map_err(|e| InviteError::Damaged(format!("not base64url: {e}")))?,
        );
        let mut rest = cbor.as_slice();
        let TokenWire(version, body, secret, sig) = ciborium::from_reader(&mut rest)
            .map_err(|e| InviteError::Damaged(format!("its contents do not decode: {e}")))?;
        if !rest.is_empty() {
            return Err(InviteError::Damaged(format!(
                "{} bytes follow its contents",
                rest.len()
            )));
        }
        let secret = Zeroizing::new(secret.into_vec());
        if version != TOKEN_VERSION {
            return Err(InviteError::Version(version));
        }
        let sig: [u8; 64] = sig
            .as_slice()
            .try_into()
            .map_err(|_| InviteError::Damaged("the signature is not 64 bytes".into()))?;
        let seed: [u8; 32] = secret
            .as_slice()
            .try_into()
            .map_err(|_| InviteError::Damaged("the claim secret is not 32 bytes".into()))?;
        let seed = Zeroizing::new(seed);
        let invite = Invite::decode(&body)?;
        key::verify(&invite.anchor, &signed_bytes(&body), &Signature(sig))
            .map_err(|_| InviteError::BadSignature)?;
        if NodeKey::from_seed(&seed).node_id() != invite.claim_key {
            return Err(InviteError::Damaged(
                "its claim secret does not match its claim key".into(),
            ));
        }
        Ok(Token {
            invite,
            secret: seed,
        })
    }

    /// Refuses a token whose invitation has expired at `now`.
    pub fn check_expiry(&self, now: Millis) -> Result<(), InviteError> {
        if now > self.invite.expires {
            return Err(InviteError::Expired {
                expires: self.invite.expires,
                now,
            });
        }
        Ok(())
    }

    /// The claim for `node`: the offered ASN for that node id, signed
    /// with the token's claim key.
    pub fn claim(&self, node: NodeId) -> Claim {
        let key = NodeKey::from_seed(&self.secret);
        let signature = key.sign(&claim_bytes(self.invite.anchor, self.invite.asn, node));
        Claim {
            anchor: self.invite.anchor,
            asn: self.invite.asn,
            node,
            signature,
        }
    }
}

/// What a joiner sends the inviter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Claim {
    /// The federation's authority (which federation this claim is for).
    pub anchor: NodeId,
    /// The ASN offered by the invitation.
    pub asn: Asn,
    /// The joiner's node id: the certificate is issued to it.
    pub node: NodeId,
    /// By the invitation's claim key.
    pub signature: Signature,
}

fn claim_bytes(anchor: NodeId, asn: Asn, node: NodeId) -> Vec<u8> {
    let mut m = Vec::with_capacity(CLAIM_DOMAIN.len() + 68);
    m.extend_from_slice(CLAIM_DOMAIN);
    m.extend_from_slice(&anchor.0);
    m.extend_from_slice(&asn.0.to_be_bytes());
    m.extend_from_slice(&node.0);
    m
}

#[derive(Serialize, Deserialize)]
struct ClaimWire(ByteBuf, u32, ByteBuf, ByteBuf);

impl Claim {
    /// Whether the claim was signed with the invitation's claim key.
    pub fn verify(&self, claim_key: &NodeId) -> bool {
        key::verify(
            claim_key,
            &claim_bytes(self.anchor, self.asn, self.node),
            &self.signature,
        )
        .is_ok()
    }

    /// The claim as a frame: a 4-byte big-endian length, then CBOR.
    pub fn to_frame(&self) -> Vec<u8> {
        let w = ClaimWire(
            ByteBuf::from(self.anchor.0.to_vec()),
            self.asn.0,
            ByteBuf::from(self.node.0.to_vec()),
            ByteBuf::from(self.signature.0.to_vec()),
        );
        let mut body = Vec::new();
        let _ = ciborium::into_writer(&w, &mut body);
        frame(body)
    }

    /// Decodes a claim frame's body (without the length prefix).
    pub fn decode(body: &[u8]) -> Result<Claim, String> {
        if body.len() > MAX_CLAIM_BYTES {
            return Err(format!("a claim is at most {MAX_CLAIM_BYTES} bytes"));
        }
        let ClaimWire(anchor, asn, node, sig) =
            ciborium::from_reader(body).map_err(|e| format!("not a claim: {e}"))?;
        let arr = |b: &[u8], what: &str| -> Result<[u8; 32], String> {
            b.try_into().map_err(|_| format!("{what} is not 32 bytes"))
        };
        let sig: [u8; 64] = sig
            .as_slice()
            .try_into()
            .map_err(|_| "the signature is not 64 bytes".to_string())?;
        Ok(Claim {
            anchor: NodeId(arr(&anchor, "the authority key")?),
            asn: Asn(asn),
            node: NodeId(arr(&node, "the node id")?),
            signature: Signature(sig),
        })
    }
}

/// The inviter's answer to a claim.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Answer {
    /// The certificate issued to the claiming node, and the federation's
    /// origin authorisations (`abgp-roa1:` tokens, checked by the joiner).
    Cert {
        cert: AsnCert,
        authorizations: Vec<String>,
    },
    /// Why the claim was refused (shown to the joiner as is, escaped).
    Refused(String),
}

impl Answer {
    /// The answer as a frame: a 4-byte big-endian length, then CBOR.
    pub fn to_frame(&self) -> Vec<u8> {
        use ciborium::Value;
        let v = match self {
            Answer::Cert {
                cert,
                authorizations,
            } => {
                let mut m = vec![(
                    Value::Text("cert".into()),
                    crate::wire::schema::encode_cert(cert),
                )];
                if !authorizations.is_empty() {
                    m.push((
                        Value::Text("authorizations".into()),
                        Value::Array(
                            authorizations
                                .iter()
                                .map(|t| Value::Text(t.clone()))
                                .collect(),
                        ),
                    ));
                }
                Value::Map(m)
            }
            Answer::Refused(why) => Value::Map(vec![(
                Value::Text("refused".into()),
                Value::Text(why.chars().take(MAX_REFUSAL_CHARS).collect()),
            )]),
        };
        let mut body = Vec::new();
        let _ = ciborium::into_writer(&v, &mut body);
        frame(body)
    }

    /// Decodes an answer frame's body (without the length prefix).
    pub fn decode(body: &[u8]) -> Result<Answer, String> {
        use ciborium::Value;
        if body.len() > MAX_ANSWER_BYTES {
            return Err(format!("an answer is at most {MAX_ANSWER_BYTES} bytes"));
        }
        let v: Value = ciborium::from_reader(body).map_err(|e| format!("not an answer: {e}"))?;
        let Value::Map(entries) = v else {
            return Err("not an answer: not a map".into());
        };
        let cert_of = |v: &Value| {
            crate::wire::schema::decode_cert(v)
                .map_err(|e| format!("the certificate does not decode: {e}"))
        };
        match entries.as_slice() {
            [(Value::Text(k), cert)] if k == "cert" => Ok(Answer::Cert {
                cert: cert_of(cert)?,
                authorizations: Vec::new(),
            }),
            [(Value::Text(k), cert), (Value::Text(a), Value::Array(list))]
                if k == "cert" && a == "authorizations" =>
            {
                if list.len() > MAX_ANSWER_AUTHORIZATIONS {
                    return Err(format!(
                        "{} origin authorisations: an answer carries at most {MAX_ANSWER_AUTHORIZATIONS}",
                        list.len()
                    ));
                }
                let authorizations = list
                    .iter()
                    .map(|t| match t {
                        Value::Text(t) if t.len() <= super::roa::MAX_ROA_TOKEN_CHARS => {
                            Ok(t.clone())
                        }
                        _ => Err("an origin authorisation is not a token".to_string()),
                    })
                    .collect::<Result<Vec<_>, _>>()?;
                Ok(Answer::Cert {
                    cert: cert_of(cert)?,
                    authorizations,
                })
            }
            [(Value::Text(k), Value::Text(why))] if k == "refused" => {
                // The inviter's text is shown to the joiner: control
                // characters (newlines, escape codes) are escaped.
                let mut text = String::new();
                for c in why.chars().take(MAX_REFUSAL_CHARS) {
                    if c.is_control() {
                        text.extend(c.escape_default());
                    } else {
                        text.push(c);
                    }
                }
                Ok(Answer::Refused(text))
            }
            _ => Err("not an answer: unexpected fields".into()),
        }
    }
}

fn frame(body: Vec<u8>) -> Vec<u8> {
    let mut out = Vec::with_capacity(4 + body.len());
    out.extend_from_slice(&(body.len() as u32).to_be_bytes());
    out.extend_from_slice(&body);
    out
}

/// The body length a frame header announces, if within `max`.
pub fn frame_len(header: [u8; 4], max: usize) -> Result<usize, String> {
    let n = u32::from_be_bytes(header) as usize;
    if n > max {
        return Err(format!(
            "a frame of {n} bytes announced; at most {max} are read (not an abgp claim?)"
        ));
    }
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::identity::cert::verify_cert_signature;
    use crate::identity::issue_cert;

    fn authority() -> NodeKey {
        NodeKey::from_seed(&[7; 32])
    }

    fn invite(anchor: NodeId) -> Invite {
        Invite {
            federation: "home".into(),
            anchor,
            asns: (64512, 65534),
            asn: Asn(64513),
            expires: Millis(2_000_000),
            claim_key: anchor,
            claim: vec!["192.168.1.20:4190".parse().unwrap()],
            bootstrap: vec![format!(
                "/ip4/192.168.1.20/tcp/4100/p2p/{}",
                NodeKey::from_seed(&[8; 32]).peer_id()
            )],
        }
    }

    fn token() -> (String, NodeId) {
        let a = authority();
        Token::create(&a, invite(a.node_id())).unwrap()
    }

    #[test]
    fn a_token_round_trips_and_its_claim_verifies_with_the_recorded_key() {
        let (text, claim_key) = token();
        assert!(text.starts_with(TOKEN_PREFIX));
        assert!(text.len() < 1000, "{}", text.len());
        let t = Token::decode(&format!("  {text}\n")).unwrap();
        let mut want = invite(authority().node_id());
        want.claim_key = claim_key;
        assert_eq!(t.invite, want);
        let node = NodeKey::from_seed(&[9; 32]).node_id();
        let c = t.claim(node);
        assert!(c.verify(&claim_key));
        assert!(!c.verify(&node), "another key must not verify the claim");
        let frame = c.to_frame();
        assert_eq!(
            frame_len(frame[..4].try_into().unwrap(), MAX_CLAIM_BYTES),
            Ok(frame.len() - 4)
        );
        assert_eq!(Claim::decode(&frame[4..]).unwrap(), c);
        assert!(!format!("{t:?}").contains(&hex::encode(*t.secret)));
    }

    #[test]
    fn two_tokens_have_different_claim_keys() {
        assert_ne!(token().1, token().1);
    }

    #[test]
    fn expiry_is_checked_against_the_given_clock() {
        let t = Token::decode(&token().0).unwrap();
        assert!(t.check_expiry(Millis(2_000_000)).is_ok());
        assert!(matches!(
            t.check_expiry(Millis(2_000_001)),
            Err(InviteError::Expired { .. })
        ));
    }

    /// Re-encodes a token's wire form after `f` changed it.
    fn tamper(text: &str, f: impl FnOnce(&mut TokenWire)) -> String {
        let cbor = URL_SAFE_NO_PAD
            .decode(text.strip_prefix(TOKEN_PREFIX).unwrap())
            .unwrap();
        let mut w: TokenWire = ciborium::from_reader(cbor.as_slice()).unwrap();
        f(&mut w);
        let mut out = Vec::new();
        ciborium::into_writer(&w, &mut out).unwrap();
        format!("{TOKEN_PREFIX}{}", URL_SAFE_NO_PAD.encode(out))
    }

    #[test]
    fn a_changed_body_fails_the_signature() {
        let (text, _) = token();
        let bad = tamper(&text, |w| {
            let mut b: BodyWire = ciborium::from_reader(w.1.as_slice()).unwrap();
            b.asn = 64600;
            let mut out = Vec::new();
            ciborium::into_writer(&b, &mut out).unwrap();
            w.1 = ByteBuf::from(out);
        });
        assert_eq!(Token::decode(&bad).unwrap_err(), InviteError::BadSignature);
        // Re-signed by another key that claims to be the anchor: the
        // signature names the anchor in the body, so it fails too.
        let other = NodeKey::from_seed(&[3; 32]);
        let bad = tamper(&text, |w| {
            w.3 = ByteBuf::from(other.sign(&signed_bytes(&w.1)).0.to_vec());
        });
        assert_eq!(Token::decode(&bad).unwrap_err(), InviteError::BadSignature);
        let bad = tamper(&text, |w| w.2 = ByteBuf::from(vec![1u8; 32]));
        assert!(matches!(Token::decode(&bad), Err(InviteError::Damaged(_))));
        let bad = tamper(&text, |w| w.0 = 2);
        assert_eq!(Token::decode(&bad).unwrap_err(), InviteError::Version(2));
    }

    #[test]
    fn garbled_strings_get_clear_errors() {
        let (text, _) = token();
        let cases: Vec<(String, &str)> = vec![
            (String::new(), "starts with abgp1-"),
            ("hello".into(), "starts with abgp1-"),
            ("abgp1-".into(), "damaged"),
            ("abgp1-!!!!".into(), "not base64url"),
            (text[..text.len() / 2].to_string(), "damaged"),
            (format!("{text}AAAA"), "damaged"),
            (
                "abgp1-".to_string() + &"A".repeat(MAX_TOKEN_CHARS),
                "at most",
            ),
            (
                format!("{TOKEN_PREFIX}{}", URL_SAFE_NO_PAD.encode([0xff; 40])),
                "damaged",
            ),
        ];
        for (s, want) in cases {
            let e = Token::decode(&s).unwrap_err().to_string();
            assert!(e.contains(want), "{s:?}: {e}");
        }
    }

    #[test]
    fn a_token_outside_its_own_rules_is_refused_even_if_signed() {
        let a = authority();
        let mut i = invite(a.node_id());
        i.asn = Asn(70000);
        assert!(matches!(Token::create(&a, i), Err(InviteError::Invalid(_))));
        let mut i = invite(a.node_id());
        i.asns = (4_200_000_000, 4_200_000_010);
        i.asn = Asn(4_200_000_001);
        assert!(matches!(Token::create(&a, i), Err(InviteError::Invalid(_))));
        let mut i = invite(a.node_id());
        i.federation = "has space".into();
        assert!(matches!(Token::create(&a, i), Err(InviteError::Invalid(_))));
        let mut i = invite(a.node_id());
        i.bootstrap = vec!["/ip4/1.2.3.4/tcp/1".into()];
        assert!(matches!(Token::create(&a, i), Err(InviteError::Invalid(_))));
        let i = invite(NodeKey::from_seed(&[4; 32]).node_id());
        assert!(
            Token::create(&a, i).is_err(),
            "signed by a key not the anchor"
        );
    }

    #[test]
    fn answers_round_trip_and_hostile_frames_are_refused() {
        let a = authority();
        let node = NodeKey::from_seed(&[9; 32]).node_id();
        let cert = issue_cert(&a, node, Asn(64513), Millis(1), Millis(2)).unwrap();
        for authorizations in [Vec::new(), vec!["abgp-roa1:AAAA".to_string()]] {
            let sent = Answer::Cert {
                cert: cert.clone(),
                authorizations,
            };
            let back = Answer::decode(&sent.to_frame()[4..]).unwrap();
            assert_eq!(back, sent);
            let Answer::Cert { cert: back, .. } = back else {
                panic!("not a cert")
            };
            assert!(verify_cert_signature(&back).is_ok());
        }
        // Too many authorisations, or one that is not text, is refused.
        let many = Answer::Cert {
            cert: cert.clone(),
            authorizations: vec!["abgp-roa1:AAAA".into(); MAX_ANSWER_AUTHORIZATIONS + 1],
        };
        assert!(Answer::decode(&many.to_frame()[4..]).is_err());
        let huge = Answer::Cert {
            cert: cert.clone(),
            authorizations: vec!["x".repeat(super::super::roa::MAX_ROA_TOKEN_CHARS + 1)],
        };
        assert!(Answer::decode(&huge.to_frame()[4..]).is_err());
        let f = Answer::Refused("no\nway\u{1b}[31m".into()).to_frame();
        assert_eq!(
            Answer::decode(&f[4..]).unwrap(),
            Answer::Refused("no\\nway\\u{1b}[31m".into())
        );
        let long = Answer::Refused("x".repeat(10_000)).to_frame();
        let Answer::Refused(t) = Answer::decode(&long[4..]).unwrap() else {
            panic!()
        };
        assert_eq!(t.len(), MAX_REFUSAL_CHARS);
        assert!(Answer::decode(b"\xff\xff").is_err());
        assert!(Claim::decode(b"POST / HTTP/1.1").is_err());
        assert!(Claim::decode(&vec![0u8; MAX_CLAIM_BYTES + 1]).is_err());
        assert!(frame_len(*b"POST", MAX_CLAIM_BYTES).is_err());
    }
}
