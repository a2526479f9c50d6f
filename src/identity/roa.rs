//! Who may originate what: origin authorisations signed by a trust anchor
//! (like RPKI ROAs, RFC 6482), and route origin validation against them
//! (like RFC 6811).
//!
//! An authorisation says "AS `asn` may originate `prefix`, and anything
//! under it down to `max_depth` segments, from `not_before` to
//! `not_after`", signed by an authority key the node trusts (a
//! `[[trust.anchors]]` key). It travels as a text token
//! (`abgp asn authorize` prints one; nodes list them in `[trust]
//! authorizations`):
//!
//! ```text
//! abgp-roa1:<base64url, no padding, of CBOR [prefix, max_depth, asn,
//!            not_before, not_after, issuer bytes(32), signature bytes(64)]>
//! ```
//!
//! The signature is over `"agent-bgp/v1/roa\0"` ‖ CBOR `[prefix, max_depth,
//! asn, not_before, not_after, issuer]`.
//!
//! A route's origin (the origin attestation's ASN, else the last AS of its
//! path) is then [`Validity::Valid`] when an authorisation in force covers
//! its prefix for that ASN within its depth, [`Validity::Invalid`] when
//! authorisations cover the prefix but none matches, and
//! [`Validity::NotFound`] when none covers it.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_bytes::ByteBuf;

use super::key::{self, NodeKey};
use crate::core::proof::Signature;
use crate::core::{Asn, Millis, NodeId, Prefix};
use crate::wire::canon::CanonWriter;

/// Domain tag of authorisation signatures.
pub const ROA_DOMAIN: &[u8] = b"agent-bgp/v1/roa\0";
/// What every token starts with.
pub const ROA_TOKEN_PREFIX: &str = "abgp-roa1:";
/// Longest token read (a prefix is at most 1 KiB).
pub const MAX_ROA_TOKEN_CHARS: usize = 2048;
/// Most authorisations one node loads.
pub const MAX_AUTHORIZATIONS: usize = 100_000;

/// One origin authorisation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Authorization {
    pub prefix: Prefix,
    /// Deepest prefix (in segments) the ASN may originate under `prefix`.
    pub max_depth: u8,
    pub asn: Asn,
    pub not_before: Millis,
    pub not_after: Millis,
    /// The authority that signed it.
    pub issuer: NodeId,
    pub signature: Signature,
}

/// Why a token is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RoaError {
    #[error("not an origin authorisation (it must start with {ROA_TOKEN_PREFIX})")]
    NotAToken,
    #[error("the token is {0} characters; at most {MAX_ROA_TOKEN_CHARS}")]
    TooLong(usize),
    #[error("the token is damaged: {0}")]
    Damaged(String),
    #[error("its signature does not verify")]
    BadSignature,
    #[error("its issuer {0} is not one of this node's trust anchors")]
    UntrustedIssuer(NodeId),
    #[error("max depth {max} is shallower than the prefix {prefix} itself")]
    TooShallow { prefix: Prefix, max: u8 },
}

/// What origin validation says of a route.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Validity {
    Valid,
    Invalid,
    NotFound,
}

impl Validity {
    pub fn label(self) -> &'static str {
        match self {
            Validity::Valid => "valid",
            Validity::Invalid => "invalid",
            Validity::NotFound => "not-found",
        }
    }
}

#[derive(serde::Serialize, serde::Deserialize)]
struct Wire(String, u8, u32, u64, u64, ByteBuf, ByteBuf);

fn signed_bytes(
    prefix: &Prefix,
    max_depth: u8,
    asn: Asn,
    nb: Millis,
    na: Millis,
    issuer: &NodeId,
) -> Vec<u8> {
    let mut w = CanonWriter::with_domain(ROA_DOMAIN);
    w.array(6)
        .text(prefix.as_str())
        .uint(u64::from(max_depth))
        .uint(u64::from(asn.0))
        .uint(nb.0)
        .uint(na.0)
        .bytes(issuer.as_bytes());
    w.finish()
}

impl Authorization {
    /// Signs an authorisation with an authority key.
    pub fn issue(
        authority: &NodeKey,
        prefix: Prefix,
        max_depth: u8,
        asn: Asn,
        not_before: Millis,
        not_after: Millis,
    ) -> Result<Authorization, RoaError> {
        if usize::from(max_depth) < prefix.depth() {
            return Err(RoaError::TooShallow {
                prefix,
                max: max_depth,
            });
        }
        let issuer = authority.node_id();
        let signature = authority.sign(&signed_bytes(
            &prefix, max_depth, asn, not_before, not_after, &issuer,
        ));
        Ok(Authorization {
            prefix,
            max_depth,
            asn,
            not_before,
            not_after,
            issuer,
            signature,
        })
    }

    /// The token text.
    pub fn to_token(&self) -> String {
        let w = Wire(
            self.prefix.as_str().to_string(),
            self.max_depth,
            self.asn.0,
            self.not_before.0,
            self.not_after.0,
            ByteBuf::from(self.issuer.as_bytes().to_vec()),
            ByteBuf::from(self.signature.0.to_vec()),
        );
        let mut cbor = Vec::new();
        let _ = ciborium::into_writer(&w, &mut cbor);
        format!("{ROA_TOKEN_PREFIX}{}", URL_SAFE_NO_PAD.encode(cbor))
    }

    /// Decodes a token and checks its signature (not its issuer or
    /// validity window: [`Authorizations::new`] does).
    pub fn from_token(text: &str) -> Result<Authorization, RoaError> {
        let text = text.trim();
        if text.len() > MAX_ROA_TOKEN_CHARS {
            return Err(RoaError::TooLong(text.len()));
        }
        let rest = text
            .strip_prefix(ROA_TOKEN_PREFIX)
            .ok_or(RoaError::NotAToken)?;
        let cbor = URL_SAFE_NO_PAD
            .decode(rest)
            .map_err(|e| RoaError::Damaged(format!("not base64url: {e}")))?;
        let mut r = cbor.as_slice();
        let Wire(prefix, max_depth, asn, nb, na, issuer, sig) = ciborium::from_reader(&mut r)
            .map_err(|e| RoaError::Damaged(format!("its contents do not decode: {e}")))?;
        if !r.is_empty() {
            return Err(RoaError::Damaged(format!(
                "{} bytes follow its contents",
                r.len()
            )));
        }
        let prefix = Prefix::new(&prefix).map_err(|e| RoaError::Damaged(e.to_string()))?;
        let issuer: [u8; 32] = issuer
            .as_slice()
            .try_into()
            .map_err(|_| RoaError::Damaged("the issuer is not 32 bytes".into()))?;
        let sig: [u8; 64] = sig
            .as_slice()
            .try_into()
            .map_err(|_| RoaError::Damaged("the signature is not 64 bytes".into()))?;
        let a = Authorization {
            prefix,
            max_depth,
            asn: Asn(asn),
            not_before: Millis(nb),
            not_after: Millis(na),
            issuer: NodeId(issuer),
            signature: Signature(sig),
        };
        if usize::from(a.max_depth) < a.prefix.depth() {
            return Err(RoaError::TooShallow {
                prefix: a.prefix,
                max: a.max_depth,
            });
        }
        let msg = signed_bytes(
            &a.prefix,
            a.max_depth,
            a.asn,
            a.not_before,
            a.not_after,
            &a.issuer,
        );
        key::verify(&a.issuer, &msg, &a.signature).map_err(|_| RoaError::BadSignature)?;
        Ok(a)
    }

    fn in_force(&self, now: Millis, skew_ms: u64) -> bool {
        now.0.saturating_add(skew_ms) >= self.not_before.0
            && now.0 <= self.not_after.0.saturating_add(skew_ms)
    }
}

/// The authorisations a node validates routes against.
#[derive(Debug, Clone, Default)]
pub struct Authorizations {
    list: Vec<Authorization>,
}

impl Authorizations {
    /// Decodes `tokens`, keeping those issued by one of `anchors`.
    pub fn new(tokens: &[String], anchors: &[NodeId]) -> Result<Self, (usize, RoaError)> {
        let mut list = Vec::with_capacity(tokens.len().min(MAX_AUTHORIZATIONS));
        for (i, t) in tokens.iter().enumerate().take(MAX_AUTHORIZATIONS) {
            let a = Authorization::from_token(t).map_err(|e| (i, e))?;
            if !anchors.contains(&a.issuer) {
                return Err((i, RoaError::UntrustedIssuer(a.issuer)));
            }
            list.push(a);
        }
        Ok(Authorizations { list })
    }

    pub fn is_empty(&self) -> bool {
        self.list.is_empty()
    }

    pub fn len(&self) -> usize {
        self.list.len()
    }

    /// Validates `origin` originating `prefix` at `now`.
    pub fn validate(&self, prefix: &Prefix, origin: Asn, now: Millis, skew_ms: u64) -> Validity {
        let mut covered = false;
        for a in self
            .list
            .iter()
            .filter(|a| a.in_force(now, skew_ms) && a.prefix.covers(prefix))
        {
            covered = true;
            if a.asn == origin && prefix.depth() <= usize::from(a.max_depth) {
                return Validity::Valid;
            }
        }
        if covered {
            Validity::Invalid
        } else {
            Validity::NotFound
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: Millis = Millis(1_767_225_600_000);
    const DAY: u64 = 86_400_000;

    fn p(s: &str) -> Prefix {
        Prefix::new(s).unwrap()
    }

    fn authority(n: u8) -> NodeKey {
        NodeKey::from_seed(&[n; 32])
    }

    fn roa(prefix: &str, depth: u8, asn: u32) -> Authorization {
        Authorization::issue(
            &authority(200),
            p(prefix),
            depth,
            Asn(asn),
            Millis(NOW.0 - DAY),
            Millis(NOW.0 + DAY),
        )
        .unwrap()
    }

    fn set(list: &[Authorization]) -> Authorizations {
        let tokens: Vec<String> = list.iter().map(Authorization::to_token).collect();
        Authorizations::new(&tokens, &[authority(200).node_id()]).unwrap()
    }

    #[test]
    fn a_token_round_trips_and_a_changed_one_is_refused() {
        let a = roa("finance/*", 4, 65001);
        let t = a.to_token();
        assert!(t.starts_with(ROA_TOKEN_PREFIX));
        assert_eq!(Authorization::from_token(&t).unwrap(), a);
        // Another ASN under the same signature.
        let mut forged = a.clone();
        forged.asn = Asn(65002);
        assert_eq!(
            Authorization::from_token(&forged.to_token()),
            Err(RoaError::BadSignature)
        );
        for bad in ["", "abgp-roa1:", "abgp-roa1:!!", "hello", &"x".repeat(5000)] {
            assert!(Authorization::from_token(bad).is_err(), "{bad:.20}");
        }
        let mut trailing = t.clone();
        trailing.push_str("AAAA");
        assert!(Authorization::from_token(&trailing).is_err());
    }

    #[test]
    fn only_the_nodes_anchors_may_issue() {
        let other = Authorization::issue(
            &authority(7),
            p("finance/*"),
            4,
            Asn(65001),
            Millis(0),
            Millis(u64::MAX),
        )
        .unwrap();
        let e = Authorizations::new(&[other.to_token()], &[authority(200).node_id()]);
        assert!(matches!(e, Err((0, RoaError::UntrustedIssuer(_)))));
    }

    #[test]
    fn routes_are_valid_invalid_or_not_found() {
        let s = set(&[
            roa("finance/*", 3, 65001),
            roa("finance/public/*", 3, 65009),
        ]);
        let v = |prefix: &str, asn: u32| s.validate(&p(prefix), Asn(asn), NOW, 0);
        assert_eq!(v("finance/budget/forecast", 65001), Validity::Valid);
        assert_eq!(v("finance/*", 65001), Validity::Valid);
        assert_eq!(v("finance/budget/forecast", 65666), Validity::Invalid);
        assert_eq!(
            v("finance/public/report", 65009),
            Validity::Valid,
            "a second authorisation"
        );
        assert_eq!(
            v("finance/a/b/c", 65001),
            Validity::Invalid,
            "deeper than max_depth"
        );
        assert_eq!(v("eng/code/review", 65666), Validity::NotFound);
        assert_eq!(
            v("*", 65666),
            Validity::NotFound,
            "a broader prefix is not covered"
        );
        // Out of its window it counts for nothing.
        assert_eq!(
            s.validate(&p("finance/x"), Asn(65666), Millis(NOW.0 + 2 * DAY), 0),
            Validity::NotFound
        );
    }

    #[test]
    fn max_depth_must_reach_the_prefix_itself() {
        assert!(matches!(
            Authorization::issue(&authority(200), p("a/b/c"), 2, Asn(1), Millis(0), Millis(1)),
            Err(RoaError::TooShallow { .. })
        ));
    }
}
