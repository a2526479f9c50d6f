//! Signed routes: origin attestations and BGPsec-style path signatures
//! (RFC 8205 in spirit), and the checks that verify them.
//!
//! The originating node signs the route's origin facts once
//! ([`sign_origin`]). Each AS that sends the route to another AS adds a
//! signature over the origin signature, the path so far including itself,
//! the AS it sends to, and the previous path signature
//! ([`sign_path_hop`]). A receiver ([`verify_route`]) checks every
//! certificate against its [`TrustStore`], every signature, that each hop
//! targeted the next signer and the last one targeted us, that the last
//! signer is the peer we got the route from, and that the route's AS path
//! is exactly the signers' ASNs. So a node can neither forge nor shorten a
//! path, nor splice another route's signatures onto its own.
//!
//! Inside an AS nothing is signed: internal peers and route reflectors do
//! not change the AS path, so they forward the proof unchanged and verify
//! it against their (shared) ASN. An aggregate is a fresh origination by
//! the aggregating node; its AS set is informational and unsigned.
//!
//! Exact signed bytes (docs/wire.md):
//! - origin: `"agent-bgp/v1/origin\0"` ‖ CBOR `[prefix, agent,
//!   [capabilities…], origin ASN, origin node (32 bytes), origin time,
//!   expires, [[name, value]…]]`, the last the origin-bound extra
//!   attributes present ([`ORIGIN_BOUND_ATTRS`]: `mcp.desc`, `mcp.kind`,
//!   `mcp.tool`, in that order);
//! - path hop i: `"agent-bgp/v1/path\0"` ‖ CBOR `[origin signature (64
//!   bytes), [[asn₁, pcount₁], …, [asnᵢ, pcountᵢ]], target ASN, previous
//!   hop's signature (64 bytes) / null]`, oldest hop first.

use std::sync::Arc;

use super::LocalIdentity;
use super::cert;
use super::key::{self, SigError};
use super::trust::{CertError, TrustStore};
use crate::core::attrs::AttrValue;
use crate::core::call::{DESCRIPTOR_ATTR, KIND_ATTR, TOOL_ATTR};
use crate::core::proof::{
    AsnCert, OriginAttestation, PathSignature, RouteProof, Signature, Tombstone,
};
use crate::core::route::Route;
use crate::core::{Asn, Millis, NodeId};
use crate::wire::canon::CanonWriter;

/// Domain tag of origin attestations.
pub const ORIGIN_DOMAIN: &[u8] = b"agent-bgp/v1/origin\0";
/// Domain tag of path signatures.
pub const PATH_DOMAIN: &[u8] = b"agent-bgp/v1/path\0";

/// The extra attributes the origin signs, sorted by name: what the route
/// leads to (tool, prompt, URI or template name), its kind, and the hash of
/// its descriptor. A transit AS that rewrites, adds or drops one breaks the
/// origin signature, so a descriptor fetched through any path is checked
/// against a hash the origin signed.
pub const ORIGIN_BOUND_ATTRS: [&str; 3] = [DESCRIPTOR_ATTR, KIND_ATTR, TOOL_ATTR];

/// The bytes an origin attestation signs.
pub fn origin_signed_bytes(route: &Route, origin: &AsnCert, expires: Millis) -> Vec<u8> {
    let mut w = CanonWriter::with_domain(ORIGIN_DOMAIN);
    w.array(8)
        .text(route.prefix.as_str())
        .text(route.attrs.agent.as_str())
        .array(route.attrs.capabilities.len());
    for c in &route.attrs.capabilities {
        w.text(c);
    }
    w.uint(u64::from(origin.asn.0))
        .bytes(origin.node.as_bytes())
        .uint(route.attrs.origin_time.0)
        .uint(expires.0);
    let bound: Vec<(&str, &AttrValue)> = ORIGIN_BOUND_ATTRS
        .iter()
        .filter_map(|name| route.attrs.extra.get(*name).map(|a| (*name, &a.value)))
        .collect();
    w.array(bound.len());
    for (name, value) in bound {
        w.array(2).text(name);
        match value {
            AttrValue::Text(t) => w.text(t),
            AttrValue::Bytes(b) => w.bytes(b),
            // The origin sets only text and bytes here; any other value
            // is signed as null (consumers ignore such values).
            AttrValue::Bool(_) | AttrValue::Int(_) => w.null(),
        };
    }
    w.finish()
}

/// The bytes path signature `segments.len() - 1` signs: `segments` are the
/// (ASN, pcount) of every hop so far, oldest first, ending with the signer.
pub fn path_signed_bytes(
    origin_sig: &Signature,
    segments: &[(Asn, u8)],
    target: Asn,
    prev: Option<&Signature>,
) -> Vec<u8> {
    let mut w = CanonWriter::with_domain(PATH_DOMAIN);
    w.array(4).bytes(&origin_sig.0).array(segments.len());
    for (asn, pcount) in segments {
        w.array(2).uint(u64::from(asn.0)).uint(u64::from(*pcount));
    }
    w.uint(u64::from(target.0));
    match prev {
        Some(s) => w.bytes(&s.0),
        None => w.null(),
    };
    w.finish()
}

/// Why a route could not be signed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignError {
    #[error("route has no origin attestation to extend")]
    Unsigned,
    #[error("AS path does not start with our {asn}: prepend before signing the hop")]
    NotPrepended { asn: Asn },
    #[error("our ASN is prepended {count} times; a hop signs at most 255")]
    TooManyPrepends { count: usize },
}

/// Signs a route this node originates: the proof for its origin, with an
/// empty path. `expires` bounds how long the route is believed without a
/// fresh signature; re-originate before then.
pub fn sign_origin(id: &LocalIdentity, route: &Route, expires: Millis) -> Arc<RouteProof> {
    let msg = origin_signed_bytes(route, id.cert(), expires);
    Arc::new(RouteProof {
        origin: OriginAttestation {
            cert: id.cert().clone(),
            expires,
            signature: id.key().sign(&msg),
        },
        path: Vec::new(),
    })
}

/// Adds this AS's path signature for sending `route` to `target`. Call it
/// on the route as it will be sent, after the AS path was prepended; the
/// number of leading copies of our ASN becomes the signed `pcount`.
pub fn sign_path_hop(
    route: &Route,
    id: &LocalIdentity,
    target: Asn,
) -> Result<Arc<RouteProof>, SignError> {
    let asn = id.asn();
    let count = route
        .attrs
        .as_path
        .iter()
        .take_while(|a| **a == asn)
        .count();
    if count == 0 {
        return Err(SignError::NotPrepended { asn });
    }
    let pcount = u8::try_from(count).map_err(|_| SignError::TooManyPrepends { count })?;
    sign_path_hop_with_pcount(route, id, target, pcount)
}

/// [`sign_path_hop`] with an explicit `pcount`; 0 is for a transparent
/// route server, which does not appear in the AS path (receivers accept it
/// only from ASNs they configured as such).
pub fn sign_path_hop_with_pcount(
    route: &Route,
    id: &LocalIdentity,
    target: Asn,
    pcount: u8,
) -> Result<Arc<RouteProof>, SignError> {
    let proof = route.proof.as_ref().ok_or(SignError::Unsigned)?;
    let mut segments: Vec<(Asn, u8)> = proof.path.iter().map(|p| (p.cert.asn, p.pcount)).collect();
    segments.push((id.asn(), pcount));
    let msg = path_signed_bytes(
        &proof.origin.signature,
        &segments,
        target,
        proof.path.last().map(|p| &p.signature),
    );
    let mut next = RouteProof::clone(proof);
    next.path.push(PathSignature {
        cert: id.cert().clone(),
        pcount,
        target,
        signature: id.key().sign(&msg),
    });
    Ok(Arc::new(next))
}

/// What a verifier knows besides the route: whom to trust, who we are, whom
/// the route came from, and the time.
#[derive(Debug, Clone, Copy)]
pub struct VerifyContext<'a> {
    pub trust: &'a TrustStore,
    /// Our ASN: the last path signature must target it.
    pub local_asn: Asn,
    /// The ASN of the peer that sent the route. For an external peer the
    /// last path signature must be its; for an internal peer (same ASN as
    /// ours) any signer may precede us.
    pub peer_asn: Asn,
    pub now: Millis,
}

/// Why a route's proof does not verify. The route is dropped and counted
/// under [`RouteVerifyError::reason`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RouteVerifyError {
    #[error("route carries no signatures")]
    Unsigned,
    #[error("origin attestation expired at {expires} (now {now})")]
    OriginExpired { expires: Millis, now: Millis },
    #[error("origin certificate: {0}")]
    OriginCert(CertError),
    #[error("origin signature does not verify")]
    BadOriginSignature,
    #[error("route from {origin} has no path signature, but reached us outside that AS")]
    MissingPath { origin: Asn },
    #[error("first path signature is by {signer}, but the route originated in {origin}")]
    WrongOriginAs { origin: Asn, signer: Asn },
    #[error("path signature {index}: certificate: {source}")]
    PathCert { index: usize, source: CertError },
    #[error("path signature {index} (by {asn}) does not verify")]
    BadPathSignature { index: usize, asn: Asn },
    #[error("path signature {index} targets {target}, but the next signer is {next}")]
    WrongTarget {
        index: usize,
        target: Asn,
        next: Asn,
    },
    #[error("the route was signed for {target}, not for us ({local})")]
    NotForUs { target: Asn, local: Asn },
    #[error("the last signer is {signer}, but the route came from peer {peer}")]
    WrongSender { signer: Asn, peer: Asn },
    #[error("AS path {as_path:?} is not the signed path {signed:?}")]
    PathMismatch { as_path: Vec<Asn>, signed: Vec<Asn> },
    #[error("path signature {index} by {asn} claims a transparent hop, which is not allowed")]
    TransparentNotAllowed { index: usize, asn: Asn },
    #[error("not checked: the UPDATE carried too many bad signatures")]
    NotChecked,
}

impl RouteVerifyError {
    /// A short label for the drop counter.
    pub fn reason(&self) -> &'static str {
        use RouteVerifyError::*;
        match self {
            Unsigned => "unsigned",
            OriginExpired { .. } => "origin_expired",
            OriginCert(_) => "origin_cert",
            BadOriginSignature => "bad_origin_signature",
            MissingPath { .. } => "missing_path",
            WrongOriginAs { .. } => "wrong_origin_as",
            PathCert { .. } => "path_cert",
            BadPathSignature { .. } => "bad_path_signature",
            WrongTarget { .. } => "wrong_target",
            NotForUs { .. } => "not_for_us",
            WrongSender { .. } => "wrong_sender",
            PathMismatch { .. } => "path_mismatch",
            TransparentNotAllowed { .. } => "transparent_not_allowed",
            NotChecked => "not_checked",
        }
    }
}

/// Which signature a [`SigCheck`] is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    OriginCert,
    Origin,
    PathCert(usize),
    Path(usize),
}

/// One signature to check: who, what bytes, which signature.
#[derive(Debug, Clone)]
pub struct SigCheck {
    pub signer: NodeId,
    pub msg: Vec<u8>,
    pub sig: Signature,
    pub role: Role,
}

impl SigCheck {
    /// The error a failure of this check means for `route`.
    pub fn failure(&self, route: &Route, e: SigError) -> RouteVerifyError {
        self.role.failure(route, e)
    }
}

impl Role {
    /// The error a failed check in this role means for `route`.
    pub fn failure(self, route: &Route, e: SigError) -> RouteVerifyError {
        let proof = route.proof.as_deref();
        let hop_asn = |i: usize| {
            proof
                .and_then(|p| p.path.get(i))
                .map(|h| h.cert.asn)
                .unwrap_or(Asn(0))
        };
        let cert_err = match e {
            SigError::Invalid => CertError::BadSignature(e),
            SigError::BadKey | SigError::WeakKey => CertError::BadKey(e),
        };
        match self {
            Role::OriginCert => RouteVerifyError::OriginCert(cert_err),
            Role::Origin => RouteVerifyError::BadOriginSignature,
            Role::PathCert(index) => RouteVerifyError::PathCert {
                index,
                source: cert_err,
            },
            Role::Path(index) => RouteVerifyError::BadPathSignature {
                index,
                asn: hop_asn(index),
            },
        }
    }
}

/// Every check of a route except the signatures themselves, which it
/// returns for the caller to verify (one by one, cached, or in a batch).
pub fn plan(route: &Route, ctx: &VerifyContext<'_>) -> Result<Vec<SigCheck>, RouteVerifyError> {
    let proof = route.proof.as_deref().ok_or(RouteVerifyError::Unsigned)?;
    let o = &proof.origin;
    let skew = ctx.trust.clock_skew_ms();
    if ctx.now.0 > o.expires.0.saturating_add(skew) {
        return Err(RouteVerifyError::OriginExpired {
            expires: o.expires,
            now: ctx.now,
        });
    }
    ctx.trust
        .check_binding(&o.cert, ctx.now)
        .map_err(RouteVerifyError::OriginCert)?;
    let origin_asn = o.cert.asn;
    let mut checks = Vec::with_capacity(2 + 2 * proof.path.len());
    checks.push(cert_check(&o.cert, Role::OriginCert));
    checks.push(SigCheck {
        signer: o.cert.node,
        msg: origin_signed_bytes(route, &o.cert, o.expires),
        sig: o.signature,
        role: Role::Origin,
    });

    let hops = &proof.path;
    let Some(last) = hops.last() else {
        // Never left its AS: only our own AS's routes, from internal peers.
        if origin_asn != ctx.local_asn || ctx.peer_asn != ctx.local_asn {
            return Err(RouteVerifyError::MissingPath { origin: origin_asn });
        }
        if !route.attrs.as_path.is_empty() {
            return Err(RouteVerifyError::PathMismatch {
                as_path: route.attrs.as_path.clone(),
                signed: Vec::new(),
            });
        }
        return Ok(checks);
    };
    if hops[0].cert.asn != origin_asn {
        return Err(RouteVerifyError::WrongOriginAs {
            origin: origin_asn,
            signer: hops[0].cert.asn,
        });
    }
    let mut segments: Vec<(Asn, u8)> = Vec::with_capacity(hops.len());
    for (i, h) in hops.iter().enumerate() {
        let asn = h.cert.asn;
        ctx.trust
            .check_binding(&h.cert, ctx.now)
            .map_err(|source| RouteVerifyError::PathCert { index: i, source })?;
        // The origin AS must appear in the path; a route server elsewhere
        // may be transparent if we said so.
        if h.pcount == 0 && (i == 0 || !ctx.trust.is_transparent(asn)) {
            return Err(RouteVerifyError::TransparentNotAllowed { index: i, asn });
        }
        if let Some(next) = hops.get(i + 1)
            && h.target != next.cert.asn
        {
            return Err(RouteVerifyError::WrongTarget {
                index: i,
                target: h.target,
                next: next.cert.asn,
            });
        }
        segments.push((asn, h.pcount));
        checks.push(cert_check(&h.cert, Role::PathCert(i)));
        checks.push(SigCheck {
            signer: h.cert.node,
            msg: path_signed_bytes(
                &o.signature,
                &segments,
                h.target,
                i.checked_sub(1).map(|p| &hops[p].signature),
            ),
            sig: h.signature,
            role: Role::Path(i),
        });
    }
    if last.target != ctx.local_asn {
        return Err(RouteVerifyError::NotForUs {
            target: last.target,
            local: ctx.local_asn,
        });
    }
    if ctx.peer_asn != ctx.local_asn && last.cert.asn != ctx.peer_asn {
        return Err(RouteVerifyError::WrongSender {
            signer: last.cert.asn,
            peer: ctx.peer_asn,
        });
    }
    // The AS path, nearest first, must be the signers' ASNs, newest first,
    // each repeated pcount times.
    let signed = hops
        .iter()
        .rev()
        .flat_map(|h| std::iter::repeat_n(h.cert.asn, usize::from(h.pcount)));
    if !signed.clone().eq(route.attrs.as_path.iter().copied()) {
        return Err(RouteVerifyError::PathMismatch {
            as_path: route.attrs.as_path.clone(),
            signed: signed.collect(),
        });
    }
    Ok(checks)
}

fn cert_check(c: &AsnCert, role: Role) -> SigCheck {
    SigCheck {
        signer: cert::signing_key_of(c),
        msg: cert::signed_bytes_of(c),
        sig: c.signature,
        role,
    }
}

/// Verifies a route's proof on its own, with no cache and no batching
/// (see [`super::VerifyCache`] for the fast path).
pub fn verify_route(route: &Route, ctx: &VerifyContext<'_>) -> Result<(), RouteVerifyError> {
    for c in plan(route, ctx)? {
        key::verify(&c.signer, &c.msg, &c.sig).map_err(|e| c.failure(route, e))?;
    }
    Ok(())
}

/// Domain tag of tombstones (origin-signed withdrawals).
pub const WITHDRAW_DOMAIN: &[u8] = b"agent-bgp/v1/withdraw\0";

/// The bytes a tombstone signs: `"agent-bgp/v1/withdraw\0"` ‖ CBOR
/// `[prefix, origin ASN, origin node (32 bytes), ended, issued, expires]`,
/// the ASN and node those of its certificate (docs/wire.md).
pub fn tombstone_signed_bytes(t: &Tombstone) -> Vec<u8> {
    let mut w = CanonWriter::with_domain(WITHDRAW_DOMAIN);
    w.array(6)
        .text(t.prefix.as_str())
        .uint(u64::from(t.cert.asn.0))
        .bytes(t.cert.node.as_bytes())
        .uint(t.ended.0)
        .uint(t.issued.0)
        .uint(t.expires.0);
    w.finish()
}

/// The tombstone this node issues when it withdraws its origination of
/// `prefix` (origin time `ended`).
pub fn sign_tombstone(
    id: &LocalIdentity,
    prefix: crate::core::prefix::Prefix,
    ended: Millis,
    issued: Millis,
    expires: Millis,
) -> Arc<Tombstone> {
    let mut t = Tombstone {
        prefix,
        cert: id.cert().clone(),
        ended,
        issued,
        expires,
        signature: Signature([0; 64]),
    };
    t.signature = id.key().sign(&tombstone_signed_bytes(&t));
    Arc::new(t)
}

/// Why a tombstone was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TombstoneError {
    #[error("certificate: {0}")]
    Cert(#[from] CertError),
    #[error("signature: {0}")]
    Signature(SigError),
}

/// Checks a tombstone as an origin attestation is checked: its certificate
/// against the trust store (may its node speak for its ASN now?) and its
/// signature by that node's key.
pub fn verify_tombstone(
    t: &Tombstone,
    trust: &TrustStore,
    now: Millis,
) -> Result<(), TombstoneError> {
    trust.check_cert(&t.cert, now)?;
    key::verify(&t.cert.node, &tombstone_signed_bytes(t), &t.signature)
        .map_err(TombstoneError::Signature)
}
