//! Which ASN certificates this node believes: trust anchors (authority
//! keys, like RPKI trust anchors), pins from peer entries, derived ASNs, and
//! how conflicts between them are settled.
//!
//! [`TrustStore::check_cert`] answers "may this key speak for this ASN
//! now?" with a typed [`CertError`] that maps onto an OPEN NOTIFICATION
//! subcode, and [`TrustStore::check_open`] adds the checks that tie a
//! peer's OPEN to the key its transport authenticated. The store does not
//! decide what to do with a refused peer or route: the session refuses the
//! OPEN, and route verification drops and counts the route.
//!
//! Conflicts ("a peer claims an ASN that a trusted authority gave to another
//! key") are detected two ways, both documented in docs/wire.md:
//! - an anchor may declare the ASN ranges it is authoritative for; inside
//!   such a range only that anchor's certificates count, so a derived,
//!   self-signed or other-issuer certificate there is refused;
//! - the store remembers every issued certificate it has verified (or was
//!   configured with); a derived certificate for an ASN some authority has
//!   issued to other keys is refused;
//! - the first key seen for a derived ASN, and this node's own key for its
//!   own derived ASN, hold it ([`KnownAsns`]): another key deriving the same
//!   ASN (an accidental collision or a ground key) is refused.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::ops::RangeInclusive;
use std::sync::Arc;

use super::cert::{self, CertKind};
use super::key::{self, SigError};
use super::known_asns::{DEFAULT_MAX_KNOWN_ASNS, KnownAsns};
use crate::core::message::{ErrorCode, Notification, Open, subcode};
use crate::core::proof::AsnCert;
use crate::core::{Asn, Millis, NodeId};

/// Default tolerance for clocks that disagree, in milliseconds (5 min).
pub const DEFAULT_CLOCK_SKEW_MS: u64 = 5 * 60 * 1000;

/// An authority whose certificates this node accepts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrustAnchor {
    /// For logs and error messages (`acme-corp`).
    pub name: String,
    pub key: NodeId,
    /// ASN ranges the authority speaks for. Empty: any ASN, but it cannot
    /// override another anchor's declared range.
    pub asns: Vec<RangeInclusive<u32>>,
}

impl TrustAnchor {
    pub fn new(name: impl Into<String>, key: NodeId) -> Self {
        TrustAnchor {
            name: name.into(),
            key,
            asns: Vec::new(),
        }
    }

    pub fn with_range(mut self, r: RangeInclusive<u32>) -> Self {
        self.asns.push(r);
        self
    }

    fn declares(&self, asn: Asn) -> bool {
        self.asns.iter().any(|r| r.contains(&asn.0))
    }
}

/// How a trusted binding was established.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Binding {
    /// The ASN is the one the key derives.
    Derived,
    /// A trust anchor issued the certificate.
    Issued { anchor: String },
    /// A peer entry pins this node to this ASN.
    Pinned,
}

/// Why a certificate (or an OPEN's identity) is refused. Each maps to one
/// OPEN NOTIFICATION subcode ([`CertError::subcode`]).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CertError {
    #[error("certificate signature does not verify: {0}")]
    BadSignature(SigError),
    #[error("certificate names a key that is not a usable ed25519 key: {0}")]
    BadKey(SigError),
    #[error(
        "self-signed certificate claims {claimed}, but its key derives {derived} and no peer entry pins it"
    )]
    NotDerived { claimed: Asn, derived: Asn },
    #[error("certificate expired at {not_after} (now {now})")]
    Expired { not_after: Millis, now: Millis },
    #[error("certificate is not valid before {not_before} (now {now})")]
    NotYetValid { not_before: Millis, now: Millis },
    #[error("{asn} belongs to trust anchor {anchor}, which did not certify this key")]
    ClaimedByAnchor { asn: Asn, anchor: String },
    #[error("{asn} was issued by a trusted authority to other keys")]
    IssuedToOthers { asn: Asn },
    #[error(
        "{asn} is this node's own derived ASN, held by its own key: a stranger's key that derives it (a collision or a ground key) is not an internal peer"
    )]
    OwnAsnCollision { asn: Asn },
    #[error(
        "{asn} is held by key {known} (first seen {first_seen}); this key also derives it (a collision or a ground key). If the AS was re-keyed, accept it with `abgp trust rekey {asn_number} NODE-ID`",
        asn_number = asn.0
    )]
    KeyChanged {
        asn: Asn,
        known: NodeId,
        first_seen: Millis,
    },
    #[error("certificate issuer {issuer} is not a trust anchor")]
    UntrustedIssuer { issuer: NodeId },
    #[error("trust anchor {anchor} is not authoritative for {asn}")]
    IssuerNotAuthoritative { asn: Asn, anchor: String },
    #[error("derived ASNs are not accepted by this node")]
    DerivedNotAccepted,
    #[error("peer entry pins this node to {pinned}, but its certificate claims {claimed}")]
    PinMismatch { pinned: Asn, claimed: Asn },
    #[error("no certificate, and no peer entry pins this node")]
    MissingCertificate,
    #[error("certificate is for key {cert_node}, not the peer's key {peer}")]
    CertForOtherKey { cert_node: NodeId, peer: NodeId },
    #[error("OPEN claims {open_asn}, but the certificate is for {cert_asn}")]
    AsnMismatch { open_asn: Asn, cert_asn: Asn },
    #[error("OPEN names node {claimed}, but the connection authenticated {authenticated}")]
    WrongNode {
        claimed: NodeId,
        authenticated: NodeId,
    },
}

impl CertError {
    /// The OPEN error subcode that tells the peer why.
    pub fn subcode(&self) -> u8 {
        use CertError::*;
        match self {
            BadSignature(_)
            | BadKey(_)
            | NotDerived { .. }
            | MissingCertificate
            | CertForOtherKey { .. } => subcode::BAD_CERTIFICATE,
            Expired { .. } | NotYetValid { .. } => subcode::CERTIFICATE_EXPIRED,
            ClaimedByAnchor { .. }
            | IssuedToOthers { .. }
            | OwnAsnCollision { .. }
            | KeyChanged { .. } => subcode::ASN_CLAIMED_BY_OTHER_KEY,
            UntrustedIssuer { .. } | IssuerNotAuthoritative { .. } | DerivedNotAccepted => {
                subcode::UNTRUSTED_ISSUER
            }
            PinMismatch { .. } | AsnMismatch { .. } => subcode::BAD_PEER_AS,
            WrongNode { .. } => subcode::BAD_IDENTIFIER,
        }
    }

    /// A short label for metrics (`route_dropped{reason=...}`).
    pub fn reason(&self) -> &'static str {
        use CertError::*;
        match self {
            BadSignature(_) => "cert_bad_signature",
            BadKey(_) => "cert_bad_key",
            NotDerived { .. } => "cert_not_derived",
            Expired { .. } => "cert_expired",
            NotYetValid { .. } => "cert_not_yet_valid",
            ClaimedByAnchor { .. } | IssuedToOthers { .. } => "asn_claimed_by_other_key",
            OwnAsnCollision { .. } => "own_asn_collision",
            KeyChanged { .. } => "asn_key_changed",
            UntrustedIssuer { .. } => "untrusted_issuer",
            IssuerNotAuthoritative { .. } => "issuer_not_authoritative",
            DerivedNotAccepted => "derived_not_accepted",
            PinMismatch { .. } => "pin_mismatch",
            MissingCertificate => "missing_certificate",
            CertForOtherKey { .. } => "cert_for_other_key",
            AsnMismatch { .. } => "asn_mismatch",
            WrongNode { .. } => "wrong_node",
        }
    }
}

impl From<&CertError> for Notification {
    fn from(e: &CertError) -> Self {
        Notification::new(ErrorCode::Open, e.subcode(), e.to_string())
    }
}

/// The certificates and bindings this node trusts.
///
/// Defaults: no anchors, no pins, derived ASNs accepted, no transparent
/// route servers, 5 minutes of clock skew tolerated, first-seen keys kept
/// in memory only (the node gives it a persisted [`KnownAsns`]).
#[derive(Debug, Clone)]
pub struct TrustStore {
    anchors: Vec<TrustAnchor>,
    pins: HashMap<NodeId, Asn>,
    accept_derived: bool,
    transparent: HashSet<Asn>,
    clock_skew_ms: u64,
    /// Issued bindings seen so far: ASN -> keys an anchor certified for it.
    issued: HashMap<Asn, BTreeSet<NodeId>>,
    /// First-seen keys of derived ASNs, shared by every copy of the store.
    known: Arc<KnownAsns>,
}

impl Default for TrustStore {
    fn default() -> Self {
        TrustStore {
            anchors: Vec::new(),
            pins: HashMap::new(),
            accept_derived: true,
            transparent: HashSet::new(),
            clock_skew_ms: DEFAULT_CLOCK_SKEW_MS,
            issued: HashMap::new(),
            known: Arc::new(KnownAsns::in_memory(DEFAULT_MAX_KNOWN_ASNS)),
        }
    }
}

impl TrustStore {
    pub fn new() -> Self {
        Self::default()
    }

    /// Trusts certificates signed by this authority.
    pub fn with_anchor(mut self, anchor: TrustAnchor) -> Self {
        self.anchors.push(anchor);
        self
    }

    /// A peer entry pinning `node` to `asn`: a self-signed certificate for
    /// `asn` (or none at all in OPEN) is accepted from that key, and any
    /// certificate it presents for another ASN is refused.
    pub fn with_pin(mut self, node: NodeId, asn: Asn) -> Self {
        self.pins.insert(node, asn);
        self
    }

    /// Whether self-certifying derived ASNs are accepted (default yes).
    pub fn accept_derived(mut self, yes: bool) -> Self {
        self.accept_derived = yes;
        self
    }

    /// Lets `asn` sign path hops with `pcount` 0: a transparent route
    /// server that does not appear in the AS path.
    pub fn with_transparent(mut self, asn: Asn) -> Self {
        self.transparent.insert(asn);
        self
    }

    /// Uses `known` for first-seen keys of derived ASNs (shared: every
    /// clone of this store sees what any of them records).
    pub fn with_known_asns(mut self, known: Arc<KnownAsns>) -> Self {
        self.known = known;
        self
    }

    /// The first-seen keys of derived ASNs.
    pub fn known_asns(&self) -> &Arc<KnownAsns> {
        &self.known
    }

    /// How far apart clocks may be before a validity window is enforced.
    pub fn with_clock_skew_ms(mut self, ms: u64) -> Self {
        self.clock_skew_ms = ms;
        self
    }

    pub fn anchors(&self) -> &[TrustAnchor] {
        &self.anchors
    }

    pub fn pinned(&self, node: &NodeId) -> Option<Asn> {
        self.pins.get(node).copied()
    }

    pub fn is_transparent(&self, asn: Asn) -> bool {
        self.transparent.contains(&asn)
    }

    pub fn clock_skew_ms(&self) -> u64 {
        self.clock_skew_ms
    }

    /// Records a verified issued certificate, so later derived certificates
    /// for the same ASN and another key are refused. Does nothing for a
    /// certificate that does not check out as issued by an anchor.
    pub fn learn(&mut self, c: &AsnCert, now: Millis) -> bool {
        if !matches!(self.check_cert(c, now), Ok(Binding::Issued { .. })) {
            return false;
        }
        self.issued.entry(c.asn).or_default().insert(c.node)
    }

    /// Everything [`Self::check_cert`] checks except the curve work (the
    /// signature, and that the node key is a usable point), which callers
    /// that batch or cache signature checks do themselves against
    /// [`cert::signing_key_of`] and [`cert::signed_bytes_of`].
    pub fn check_binding(&self, c: &AsnCert, now: Millis) -> Result<Binding, CertError> {
        if now.0.saturating_add(self.clock_skew_ms) < c.not_before.0 {
            return Err(CertError::NotYetValid {
                not_before: c.not_before,
                now,
            });
        }
        if now.0 > c.not_after.0.saturating_add(self.clock_skew_ms) {
            return Err(CertError::Expired {
                not_after: c.not_after,
                now,
            });
        }
        if let Some(pinned) = self.pins.get(&c.node)
            && *pinned != c.asn
        {
            return Err(CertError::PinMismatch {
                pinned: *pinned,
                claimed: c.asn,
            });
        }
        // An anchor that declares this ASN's range owns it exclusively.
        let owners: Vec<&TrustAnchor> = self.anchors.iter().filter(|a| a.declares(c.asn)).collect();
        match cert::cert_kind(c) {
            CertKind::Issued { issuer } => {
                let Some(anchor) = self.anchors.iter().find(|a| a.key == issuer) else {
                    return Err(CertError::UntrustedIssuer { issuer });
                };
                if !anchor.asns.is_empty() && !anchor.declares(c.asn) {
                    return Err(CertError::IssuerNotAuthoritative {
                        asn: c.asn,
                        anchor: anchor.name.clone(),
                    });
                }
                if let Some(owner) = owners.first().filter(|o| o.key != issuer) {
                    return Err(CertError::ClaimedByAnchor {
                        asn: c.asn,
                        anchor: owner.name.clone(),
                    });
                }
                Ok(Binding::Issued {
                    anchor: anchor.name.clone(),
                })
            }
            kind @ (CertKind::Derived | CertKind::SelfSigned) => {
                if let Some(owner) = owners.first() {
                    return Err(CertError::ClaimedByAnchor {
                        asn: c.asn,
                        anchor: owner.name.clone(),
                    });
                }
                if self.pins.contains_key(&c.node) {
                    // The pin matched above; it outranks derivation.
                    return Ok(Binding::Pinned);
                }
                if kind == CertKind::SelfSigned {
                    return Err(CertError::NotDerived {
                        claimed: c.asn,
                        derived: cert::derive_asn(&c.node),
                    });
                }
                if !self.accept_derived {
                    return Err(CertError::DerivedNotAccepted);
                }
                if self
                    .issued
                    .get(&c.asn)
                    .is_some_and(|keys| !keys.contains(&c.node))
                {
                    return Err(CertError::IssuedToOthers { asn: c.asn });
                }
                if let Some(k) = self.known.conflict(c.asn, &c.node) {
                    if self.known.is_own(c.asn) {
                        return Err(CertError::OwnAsnCollision { asn: c.asn });
                    }
                    return Err(CertError::KeyChanged {
                        asn: c.asn,
                        known: k.node,
                        first_seen: k.first_seen,
                    });
                }
                Ok(Binding::Derived)
            }
        }
    }

    /// May `c.node` speak for `c.asn` at `now`? Checks the validity window,
    /// the issuer, pins, conflicts and the signature.
    pub fn check_cert(&self, c: &AsnCert, now: Millis) -> Result<Binding, CertError> {
        let binding = self.check_binding(c, now)?;
        // An issued certificate's signature does not involve the node's own
        // key, so check that it is usable separately. (Route verification
        // checks it when it verifies that key's signatures.)
        key::verifying_key(&c.node).map_err(CertError::BadKey)?;
        cert::verify_cert_signature(c).map_err(|e| match e {
            SigError::Invalid => CertError::BadSignature(e),
            SigError::BadKey | SigError::WeakKey => CertError::BadKey(e),
        })?;
        Ok(binding)
    }

    /// Checks a peer's OPEN against the key its connection authenticated
    /// (the libp2p PeerId, as a [`NodeId`]). A pinned peer may omit the
    /// certificate; everyone else must present one for the OPEN's ASN.
    pub fn check_open(
        &self,
        open: &Open,
        authenticated: NodeId,
        now: Millis,
    ) -> Result<Binding, CertError> {
        if open.node != authenticated {
            return Err(CertError::WrongNode {
                claimed: open.node,
                authenticated,
            });
        }
        let Some(c) = &open.cert else {
            return match self.pins.get(&open.node) {
                Some(pinned) if *pinned == open.asn => Ok(Binding::Pinned),
                Some(pinned) => Err(CertError::PinMismatch {
                    pinned: *pinned,
                    claimed: open.asn,
                }),
                None => Err(CertError::MissingCertificate),
            };
        };
        if c.node != open.node {
            return Err(CertError::CertForOtherKey {
                cert_node: c.node,
                peer: open.node,
            });
        }
        if c.asn != open.asn {
            return Err(CertError::AsnMismatch {
                open_asn: open.asn,
                cert_asn: c.asn,
            });
        }
        self.check_cert(c, now)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::core::message::{Capabilities, PROTOCOL_VERSION};
    use crate::identity::cert::{derive_asn, derived_cert, issue_cert, self_signed_cert};
    use crate::identity::key::NodeKey;

    const NOW: Millis = Millis(1_000_000_000);
    const DAY: u64 = 86_400_000;

    fn key(n: u8) -> NodeKey {
        NodeKey::from_seed(&[n; 32])
    }

    fn window() -> (Millis, Millis) {
        (Millis(NOW.0 - DAY), Millis(NOW.0 + DAY))
    }

    fn open_with(node: &NodeKey, asn: Asn, cert: Option<AsnCert>) -> Open {
        Open {
            version: PROTOCOL_VERSION,
            asn,
            node: node.node_id(),
            hold_time: 90,
            capabilities: Capabilities::default(),
            federation: "test".into(),
            cert: cert.map(Arc::new),
        }
    }

    #[test]
    fn derived_cert_is_trusted_by_default() {
        let (a, b) = window();
        let c = derived_cert(&key(1), a, b).unwrap();
        assert_eq!(TrustStore::new().check_cert(&c, NOW), Ok(Binding::Derived));
    }

    #[test]
    fn derived_cert_refused_when_derived_asns_are_off() {
        let (a, b) = window();
        let c = derived_cert(&key(1), a, b).unwrap();
        let err = TrustStore::new()
            .accept_derived(false)
            .check_cert(&c, NOW)
            .unwrap_err();
        assert_eq!(err, CertError::DerivedNotAccepted);
        assert_eq!(err.subcode(), subcode::UNTRUSTED_ISSUER);
    }

    #[test]
    fn expired_and_not_yet_valid_certs_are_refused_beyond_the_skew() {
        let c = derived_cert(&key(1), Millis(NOW.0 - 2 * DAY), Millis(NOW.0 - DAY)).unwrap();
        let err = TrustStore::new().check_cert(&c, NOW).unwrap_err();
        assert!(matches!(err, CertError::Expired { .. }));
        assert_eq!(err.subcode(), subcode::CERTIFICATE_EXPIRED);
        let future = derived_cert(&key(1), Millis(NOW.0 + DAY), Millis(NOW.0 + 2 * DAY)).unwrap();
        assert!(matches!(
            TrustStore::new().check_cert(&future, NOW),
            Err(CertError::NotYetValid { .. })
        ));
        // One minute past expiry is inside the default skew.
        let just = derived_cert(&key(1), Millis(0), Millis(NOW.0 - 60_000)).unwrap();
        assert!(TrustStore::new().check_cert(&just, NOW).is_ok());
        assert!(matches!(
            TrustStore::new()
                .with_clock_skew_ms(0)
                .check_cert(&just, NOW),
            Err(CertError::Expired { .. })
        ));
    }

    #[test]
    fn self_signed_cert_for_a_chosen_asn_needs_a_pin() {
        let (a, b) = window();
        let k = key(1);
        let c = self_signed_cert(&k, Asn(65001), a, b).unwrap();
        let err = TrustStore::new().check_cert(&c, NOW).unwrap_err();
        assert!(matches!(
            err,
            CertError::NotDerived {
                claimed: Asn(65001),
                ..
            }
        ));
        assert_eq!(err.subcode(), subcode::BAD_CERTIFICATE);
        let pinned = TrustStore::new().with_pin(k.node_id(), Asn(65001));
        assert_eq!(pinned.check_cert(&c, NOW), Ok(Binding::Pinned));
        let wrong_pin = TrustStore::new().with_pin(k.node_id(), Asn(65002));
        let err = wrong_pin.check_cert(&c, NOW).unwrap_err();
        assert!(matches!(err, CertError::PinMismatch { .. }));
        assert_eq!(err.subcode(), subcode::BAD_PEER_AS);
    }

    #[test]
    fn issued_cert_needs_a_trusted_issuer() {
        let (a, b) = window();
        let auth = key(9);
        let c = issue_cert(&auth, key(1).node_id(), Asn(65001), a, b).unwrap();
        let err = TrustStore::new().check_cert(&c, NOW).unwrap_err();
        assert!(matches!(err, CertError::UntrustedIssuer { .. }));
        assert_eq!(err.subcode(), subcode::UNTRUSTED_ISSUER);
        let trust = TrustStore::new().with_anchor(TrustAnchor::new("acme", auth.node_id()));
        assert_eq!(
            trust.check_cert(&c, NOW),
            Ok(Binding::Issued {
                anchor: "acme".into()
            })
        );
    }

    #[test]
    fn issued_cert_for_a_weak_key_is_refused() {
        let (a, b) = window();
        let auth = key(9);
        let mut weak = [0u8; 32];
        weak[0] = 1; // the identity point: small order
        let c = issue_cert(&auth, NodeId(weak), Asn(65001), a, b).unwrap();
        let trust = TrustStore::new().with_anchor(TrustAnchor::new("acme", auth.node_id()));
        let err = trust.check_cert(&c, NOW).unwrap_err();
        assert_eq!(err, CertError::BadKey(SigError::WeakKey));
        assert_eq!(err.subcode(), subcode::BAD_CERTIFICATE);
    }

    #[test]
    fn several_nodes_share_an_issued_asn() {
        let (a, b) = window();
        let auth = key(9);
        let trust = TrustStore::new().with_anchor(TrustAnchor::new("acme", auth.node_id()));
        for n in 1..5 {
            let c = issue_cert(&auth, key(n).node_id(), Asn(65001), a, b).unwrap();
            assert!(trust.check_cert(&c, NOW).is_ok());
        }
    }

    #[test]
    fn tampered_issued_cert_fails_its_signature() {
        let (a, b) = window();
        let auth = key(9);
        let trust = TrustStore::new().with_anchor(TrustAnchor::new("acme", auth.node_id()));
        let mut c = issue_cert(&auth, key(1).node_id(), Asn(65001), a, b).unwrap();
        c.asn = Asn(65002);
        let err = trust.check_cert(&c, NOW).unwrap_err();
        assert!(matches!(err, CertError::BadSignature(SigError::Invalid)));
        assert_eq!(err.subcode(), subcode::BAD_CERTIFICATE);
    }

    #[test]
    fn anchor_range_excludes_other_issuers_and_derived_claims() {
        let (a, b) = window();
        let acme = key(9);
        let rogue = key(8);
        let laptop = key(1);
        let derived = derive_asn(&laptop.node_id());
        let trust = TrustStore::new()
            .with_anchor(TrustAnchor::new("acme", acme.node_id()).with_range(derived.0..=derived.0))
            .with_anchor(TrustAnchor::new("rogue", rogue.node_id()));
        // The laptop's key happens to derive an ASN acme owns.
        let c = derived_cert(&laptop, a, b).unwrap();
        let err = trust.check_cert(&c, NOW).unwrap_err();
        assert!(matches!(err, CertError::ClaimedByAnchor { .. }), "{err}");
        assert_eq!(err.subcode(), subcode::ASN_CLAIMED_BY_OTHER_KEY);
        // Another trusted but range-less authority cannot issue it either.
        let c = issue_cert(&rogue, key(2).node_id(), derived, a, b).unwrap();
        assert!(matches!(
            trust.check_cert(&c, NOW),
            Err(CertError::ClaimedByAnchor { .. })
        ));
        // acme cannot issue outside its declared range.
        let c = issue_cert(&acme, key(2).node_id(), Asn(65001), a, b).unwrap();
        let err = trust.check_cert(&c, NOW).unwrap_err();
        assert!(matches!(err, CertError::IssuerNotAuthoritative { .. }));
        assert_eq!(err.subcode(), subcode::UNTRUSTED_ISSUER);
    }

    #[test]
    fn learned_issued_asn_refuses_a_derived_claim_by_another_key() {
        let (a, b) = window();
        let auth = key(9);
        let laptop = key(1);
        let asn = derive_asn(&laptop.node_id());
        let mut trust = TrustStore::new().with_anchor(TrustAnchor::new("acme", auth.node_id()));
        let issued = issue_cert(&auth, key(2).node_id(), asn, a, b).unwrap();
        assert!(trust.learn(&issued, NOW));
        let d = derived_cert(&laptop, a, b).unwrap();
        let err = trust.check_cert(&d, NOW).unwrap_err();
        assert_eq!(err, CertError::IssuedToOthers { asn });
        assert_eq!(err.subcode(), subcode::ASN_CLAIMED_BY_OTHER_KEY);
        // Learning refuses certificates that do not verify as issued.
        assert!(!trust.learn(&d, NOW));
    }

    #[test]
    fn open_must_match_the_authenticated_key_and_the_cert() {
        let (a, b) = window();
        let k = key(1);
        let trust = TrustStore::new();
        let c = derived_cert(&k, a, b).unwrap();
        let asn = c.asn;
        let ok = open_with(&k, asn, Some(c.clone()));
        assert_eq!(
            trust.check_open(&ok, k.node_id(), NOW),
            Ok(Binding::Derived)
        );

        let err = trust.check_open(&ok, key(2).node_id(), NOW).unwrap_err();
        assert!(matches!(err, CertError::WrongNode { .. }));
        assert_eq!(err.subcode(), subcode::BAD_IDENTIFIER);

        let other = derived_cert(&key(2), a, b).unwrap();
        let err = trust
            .check_open(&open_with(&k, other.asn, Some(other)), k.node_id(), NOW)
            .unwrap_err();
        assert!(matches!(err, CertError::CertForOtherKey { .. }));
        let n: Notification = (&err).into();
        assert_eq!(
            (n.code, n.subcode),
            (ErrorCode::Open, subcode::BAD_CERTIFICATE)
        );

        let err = trust
            .check_open(&open_with(&k, Asn(65001), Some(c)), k.node_id(), NOW)
            .unwrap_err();
        assert!(matches!(err, CertError::AsnMismatch { .. }));

        let err = trust
            .check_open(&open_with(&k, asn, None), k.node_id(), NOW)
            .unwrap_err();
        assert_eq!(err, CertError::MissingCertificate);
    }

    #[test]
    fn pinned_peer_may_open_without_a_certificate() {
        let k = key(1);
        let trust = TrustStore::new().with_pin(k.node_id(), Asn(65010));
        assert_eq!(
            trust.check_open(&open_with(&k, Asn(65010), None), k.node_id(), NOW),
            Ok(Binding::Pinned)
        );
        assert!(matches!(
            trust.check_open(&open_with(&k, Asn(65011), None), k.node_id(), NOW),
            Err(CertError::PinMismatch { .. })
        ));
    }

    /// Two keys that derive the same ASN (4274475037), found by a birthday
    /// search over seeds SHA-256("collision" || i) for i < 12,286: a real
    /// collision, no test-only derivation hook. About 12,000 keys make one
    /// likely, which is the federation size docs/security.md warns about.
    const COLLIDING: [&str; 2] = [
        "dd6e999e9a9231916da3d883bef48e1e7ad9d0f661fcc158454ef27b1685098c",
        "8fbb1b3c68f13635bc54e02f39307cf284ced7a07df68fdc034deb2d242ce4b1",
    ];

    fn colliding(i: usize) -> NodeKey {
        let mut seed = [0u8; 32];
        hex::decode_to_slice(COLLIDING[i], &mut seed).unwrap();
        NodeKey::from_seed(&seed)
    }

    fn derived_open(k: &NodeKey) -> Open {
        let (nb, na) = window();
        let c = derived_cert(k, nb, na).unwrap();
        open_with(k, c.asn, Some(c))
    }

    #[test]
    fn the_two_fixture_keys_really_derive_the_same_asn() {
        let (a, b) = (colliding(0), colliding(1));
        assert_ne!(a.node_id(), b.node_id());
        assert_eq!(derive_asn(&a.node_id()), Asn(4_274_475_037));
        assert_eq!(derive_asn(&b.node_id()), Asn(4_274_475_037));
    }

    #[test]
    fn a_stranger_whose_key_derives_our_own_asn_is_refused_not_internal() {
        let (ours, stranger) = (colliding(0), colliding(1));
        let trust = TrustStore::new();
        trust
            .known_asns()
            .set_own(derive_asn(&ours.node_id()), ours.node_id());
        let open = derived_open(&stranger);
        let e = trust
            .check_open(&open, stranger.node_id(), NOW)
            .unwrap_err();
        assert!(matches!(e, CertError::OwnAsnCollision { .. }), "{e}");
        assert_eq!(e.subcode(), subcode::ASN_CLAIMED_BY_OTHER_KEY);
        // The same check covers route path certificates and callers, which
        // go through check_binding.
        let c = open.cert.clone().unwrap();
        assert!(trust.check_binding(&c, NOW).is_err());
    }

    #[test]
    fn the_first_key_seen_for_a_derived_asn_holds_it_until_a_rekey() {
        let (first, second) = (colliding(0), colliding(1));
        let trust = TrustStore::new();
        let copy = trust.clone();
        let asn = derive_asn(&first.node_id());
        assert!(
            trust
                .check_open(&derived_open(&second), second.node_id(), NOW)
                .is_ok(),
            "nothing known yet"
        );
        trust
            .known_asns()
            .observe(asn, first.node_id(), NOW)
            .unwrap();
        // Every copy shares what is known (the call verifier holds one).
        let e = copy
            .check_open(&derived_open(&second), second.node_id(), NOW)
            .unwrap_err();
        match &e {
            CertError::KeyChanged { known, .. } => assert_eq!(*known, first.node_id()),
            other => panic!("{other}"),
        }
        assert!(e.to_string().contains("abgp trust rekey 4274475037"), "{e}");
        assert!(
            copy.check_open(&derived_open(&first), first.node_id(), NOW)
                .is_ok()
        );
        trust
            .known_asns()
            .rekey(asn, Some(second.node_id()), NOW)
            .unwrap();
        assert!(
            copy.check_open(&derived_open(&second), second.node_id(), NOW)
                .is_ok()
        );
        assert!(matches!(
            copy.check_open(&derived_open(&first), first.node_id(), NOW),
            Err(CertError::KeyChanged { .. })
        ));
    }
}
