//! The node's identity and what it trusts, applied to the messages that
//! cross the wire.
//!
//! - Our certificate comes from node.toml's `certificate` source.
//! - A peer's OPEN is checked against the [`TrustStore`] before the engine
//!   sees it: the certificate's key must be the key the connection
//!   authenticated and its ASN the one the OPEN claims.
//! - Received routes have their origin and path signatures verified
//!   (cached, batched); a route that fails is treated as withdrawn
//!   (RFC 7606's treat-as-withdraw) and counted by reason.
//! - Routes we originate get an origin signature; routes we send across an
//!   AS border get our path signature for the receiving AS.
//!
//! The rules (what a binding means, what is signed) are `crate::identity`'s
//! and `crate::identity::route_sign`'s; this module only applies them at the right
//! moments.

use std::sync::Arc;

use crate::admin::views::VerifyView;
use crate::config::{AsnSetting, CertSource, LoadedConfig, parse_asn_range};
use crate::core::community::Community;
use crate::core::engine::TOMBSTONE_TTL_MS;
use crate::core::ids::{Asn, Millis, NodeId};
use crate::core::message::{Open, Update};
use crate::core::prefix::Prefix;
use crate::core::proof::Tombstone;
use crate::core::proof::{AsnCert, RouteProof};
use crate::core::route::Route;
use crate::identity::cert::{CertKind, cert_kind};
use crate::identity::roa::{Authorizations, Validity};
use crate::identity::route_sign::{sign_path_hop_with_pcount, sign_tombstone, verify_tombstone};
use crate::identity::verify_cache::{Pending, Verdicts};
use crate::identity::{
    Binding, CertError, LocalIdentity, NodeKey, Observed, TrustAnchor, TrustStore, derived_cert,
    self_signed_cert,
};
use crate::identity::{VerifyCache, VerifyContext, VerifyStats, sign_origin, sign_path_hop};

/// Why the node's identity could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum IdentityError {
    #[error("certificate file {path}: {reason}")]
    CertFile { path: String, reason: String },
    #[error("cannot make a certificate: {0}")]
    Issue(String),
    #[error("{0}")]
    Mismatch(String),
    #[error("known derived ASNs: {0}")]
    KnownAsns(#[from] crate::identity::KnownAsnsError),
}

pub struct Security {
    identity: Arc<LocalIdentity>,
    trust: TrustStore,
    cache: VerifyCache,
    verify_routes: bool,
    origin_validity_ms: u64,
    opens_refused: u64,
    /// OPENs refused because another key already holds the derived ASN.
    asn_key_conflicts: u64,
    /// Origin authorisations routes are validated against.
    authorizations: Authorizations,
    origin_validation: OriginValidation,
    /// Routes by origin validity, and invalid ones rejected.
    pub origins: OriginCounts,
    aborted_updates: u64,
    /// Tombstones dropped before the engine (see [`Self::check_tombstones`]).
    tombstones_dropped: u64,
    /// Off-task work, counted by the node.
    pub off_task: OffTaskStats,
}

/// What the node's verifier did, for [`VerifyView`].
#[derive(Debug, Clone, Copy, Default)]
pub struct OffTaskStats {
    pub checks: u64,
    pub budget_waits: u64,
    pub budget_wait_ms: u64,
}

impl std::fmt::Debug for Security {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Security")
            .field("node", &self.identity.node_id())
            .field("asn", &self.identity.asn())
            .finish()
    }
}

const HOUR_MS: u64 = 3_600_000;

/// The first-seen keys of derived ASNs, in the node's data directory.
pub const KNOWN_ASNS_FILE: &str = "known-asns";

impl Security {
    /// Our identity (key + certificate) and trust store from the config.
    pub fn new(cfg: &LoadedConfig, key: NodeKey, now: Millis) -> Result<Self, IdentityError> {
        let c = &cfg.config;
        let not_before = Millis(now.0.saturating_sub(HOUR_MS));
        let not_after = now.saturating_add_ms(c.trust.certificate_validity.as_millis() as u64);
        let cert = match (&c.node.certificate, c.node.asn) {
            (CertSource::Derived, _) => derived_cert(&key, not_before, not_after)
                .map_err(|e| IdentityError::Issue(e.to_string()))?,
            (CertSource::SelfSigned, AsnSetting::Number(asn)) => {
                self_signed_cert(&key, asn, not_before, not_after)
                    .map_err(|e| IdentityError::Issue(e.to_string()))?
            }
            (CertSource::SelfSigned, AsnSetting::Derived) => {
                derived_cert(&key, not_before, not_after)
                    .map_err(|e| IdentityError::Issue(e.to_string()))?
            }
            (CertSource::File(p), asn) => {
                let cert =
                    crate::identity::read_cert_file(&cfg.resolve(p)).map_err(|e| match e {
                        crate::identity::CertFileError::Read { path, reason } => {
                            IdentityError::CertFile { path, reason }
                        }
                        other => IdentityError::Issue(other.to_string()),
                    })?;
                if let AsnSetting::Number(want) = asn
                    && cert.asn != want
                {
                    return Err(IdentityError::Mismatch(format!(
                        "node.asn is {want} but the certificate is for {}",
                        cert.asn
                    )));
                }
                cert
            }
        };
        let identity =
            LocalIdentity::new(key, cert).map_err(|e| IdentityError::Mismatch(e.to_string()))?;
        let known = crate::identity::KnownAsns::load(
            &cfg.data_dir().join(KNOWN_ASNS_FILE),
            c.trust.max_known_asns,
        )?;
        if cert_kind(identity.cert()) == CertKind::Derived {
            // Our own derived ASN is ours alone.
            known.set_own(identity.asn(), identity.node_id());
        }
        let mut trust = TrustStore::new()
            .accept_derived(c.trust.accept_derived)
            .with_known_asns(Arc::new(known));
        for a in &c.trust.anchors {
            // Validated when the config was loaded.
            let Ok(key) = a.key.parse::<NodeId>() else {
                continue;
            };
            let mut anchor = TrustAnchor::new(a.name.clone(), key);
            for r in &a.asns {
                if let Some(r) = parse_asn_range(r) {
                    anchor = anchor.with_range(r);
                }
            }
            trust = trust.with_anchor(anchor);
        }
        for n in &c.neighbors {
            if let Ok(node) = crate::identity::node_id_of(&n.peer_id) {
                trust = trust.with_pin(node, Asn(n.asn));
            }
        }
        let anchor_keys: Vec<NodeId> = trust.anchors().iter().map(|a| a.key).collect();
        let authorizations = Authorizations::new(&c.trust.authorizations, &anchor_keys)
            .map_err(|(i, e)| IdentityError::Issue(format!("trust.authorizations[{i}]: {e}")))?;
        // Our transparent route servers, and those the operator names, may
        // sign path hops with pcount 0.
        for asn in c
            .route_servers()
            .map(|n| n.asn)
            .chain(c.trust.transparent_asns.iter().copied())
        {
            trust = trust.with_transparent(Asn(asn));
        }
        Ok(Security {
            identity: Arc::new(identity),
            trust,
            cache: VerifyCache::default(),
            verify_routes: c.trust.verify_routes,
            origin_validity_ms: c.trust.route_signature_validity.as_millis() as u64,
            opens_refused: 0,
            asn_key_conflicts: 0,
            authorizations,
            origin_validation: c.trust.origin_validation,
            origins: OriginCounts::default(),
            aborted_updates: 0,
            tombstones_dropped: 0,
            off_task: OffTaskStats::default(),
        })
    }

    /// Whether received routes' signatures are checked (`trust.verify_routes`).
    pub fn verifies_routes(&self) -> bool {
        self.verify_routes
    }

    pub fn identity(&self) -> &LocalIdentity {
        &self.identity
    }

    /// Our identity, shared (the MCP plane signs calls with it).
    pub fn shared_identity(&self) -> Arc<LocalIdentity> {
        self.identity.clone()
    }

    /// What we trust (the MCP plane verifies callers against a copy).
    pub fn trust(&self) -> &TrustStore {
        &self.trust
    }

    pub fn asn(&self) -> Asn {
        self.identity.asn()
    }

    pub fn cert(&self) -> Arc<AsnCert> {
        self.identity.cert().clone()
    }

    /// Checks a peer's OPEN; `authenticated` is the key its connection
    /// proved. Issued certificates that pass are remembered, so a derived
    /// claim to the same ASN by another key is refused later.
    pub fn check_open(
        &mut self,
        open: &Open,
        authenticated: NodeId,
        now: Millis,
    ) -> Result<Binding, CertError> {
        let r = self.trust.check_open(open, authenticated, now);
        match &r {
            Ok(Binding::Issued { .. }) => {
                if let Some(c) = &open.cert {
                    self.trust.learn(c, now);
                }
            }
            Ok(Binding::Derived) => {
                // The first key seen for a derived ASN holds it from now on
                // (durable before the session goes on).
                let known = self.trust.known_asns();
                match known.observe(open.asn, open.node, now) {
                    Ok(Observed::New) => {
                        tracing::info!(asn = %open.asn, node = %open.node.short(), "first key seen for this derived ASN; it holds the ASN from now on");
                    }
                    Ok(Observed::Known) => {}
                    Ok(Observed::Full) => {
                        tracing::warn!(asn = %open.asn, max = known.max(), "known derived ASNs are full; this key is checked but not recorded (raise trust.max_known_asns)");
                    }
                    Err(e) => {
                        tracing::error!(asn = %open.asn, error = %e, "could not record the key of a derived ASN; it holds for this run only");
                    }
                }
            }
            Ok(Binding::Pinned) => {}
            Err(e) => {
                self.opens_refused += 1;
                if matches!(
                    e,
                    CertError::KeyChanged { .. } | CertError::OwnAsnCollision { .. }
                ) {
                    self.asn_key_conflicts += 1;
                    tracing::warn!(alert = "asn_key_conflict", peer = %authenticated.short(), asn = %open.asn, error = %e, "ALERT: a second key claims a derived ASN");
                }
            }
        }
        r
    }

    /// Plans the checks of an UPDATE from a peer in `peer_asn` (cache
    /// lookups only; no curve operations). `None` when there is nothing to
    /// check. The curve work is [`Pending::verify`], which may run off the
    /// node task; [`Self::apply_verdicts`] finishes.
    pub fn plan_update(&mut self, u: &Update, peer_asn: Asn, now: Millis) -> Option<Pending> {
        if !self.verify_routes || u.announce.is_empty() {
            return None;
        }
        let ctx = VerifyContext {
            trust: &self.trust,
            local_asn: self.identity.asn(),
            peer_asn,
            now,
        };
        Some(self.cache.plan(&u.announce, &ctx))
    }

    /// Applies the verdicts of a planned UPDATE: routes that fail become
    /// withdrawals. Returns how many failed.
    pub fn apply_verdicts(&mut self, u: &mut Update, pending: Pending, v: Verdicts) -> usize {
        if v.aborted {
            self.aborted_updates += 1;
        }
        let results = self.cache.finish(&u.announce, pending, v);
        let mut failed = 0;
        let mut kept = Vec::with_capacity(u.announce.len());
        for (r, res) in std::mem::take(&mut u.announce).into_iter().zip(results) {
            match res {
                Ok(()) => kept.push(r),
                Err(e) => {
                    failed += 1;
                    tracing::debug!(prefix = %r.prefix, error = %e, "dropping a route whose signatures fail");
                    u.withdraw.push(r.key());
                }
            }
        }
        u.announce = kept;
        failed
    }

    /// Route origin validation of an UPDATE's routes against the origin
    /// authorisations ([`crate::identity::roa`]). Marks a peer put on a
    /// route are removed first; then, where authorisations exist, each
    /// route is marked `origin-valid`, `origin-not-found` or (in `mark`
    /// mode) `origin-invalid`, for policy to match; in `reject-invalid`
    /// mode (the default) an invalid route becomes a withdrawal. Returns
    /// how many were rejected.
    pub fn validate_origins(&mut self, u: &mut Update, now: Millis) -> usize {
        if u.announce.is_empty() {
            return 0;
        }
        let marks = origin_marks();
        let validate =
            !self.authorizations.is_empty() && self.origin_validation != OriginValidation::Off;
        let skew = self.trust.clock_skew_ms();
        let mut rejected = 0;
        let mut kept = Vec::with_capacity(u.announce.len());
        for mut r in std::mem::take(&mut u.announce) {
            let marked = r.attrs.communities.iter().any(|c| marks.contains(c));
            if !validate && !marked {
                kept.push(r);
                continue;
            }
            let v = validate.then(|| {
                let origin = r
                    .proof
                    .as_ref()
                    .map(|p| p.origin.cert.asn)
                    .or_else(|| r.attrs.as_path.last().copied())
                    .unwrap_or(self.identity.asn());
                self.authorizations.validate(&r.prefix, origin, now, skew)
            });
            match v {
                Some(Validity::Valid) => self.origins.valid += 1,
                Some(Validity::NotFound) => self.origins.not_found += 1,
                Some(Validity::Invalid) => self.origins.invalid += 1,
                None => {}
            }
            if v == Some(Validity::Invalid)
                && self.origin_validation == OriginValidation::RejectInvalid
            {
                rejected += 1;
                self.origins.rejected += 1;
                tracing::debug!(prefix = %r.prefix, "route origin invalid: no authorisation for its origin ASN; treated as withdrawn");
                u.withdraw.push(r.key());
                continue;
            }
            let mut a = (*r.attrs).clone();
            for m in &marks {
                a.remove_community(m);
            }
            if let Some(v) = v {
                a.add_community(origin_mark(v));
            }
            r.attrs = Arc::new(a);
            kept.push(r);
        }
        u.announce = kept;
        rejected
    }

    /// Checks the tombstones of an UPDATE (origin-signed withdrawals,
    /// docs/security.md): each needs a certificate the trust store accepts
    /// and a valid signature by its key, exactly as an origin attestation
    /// does. Those that fail are dropped, counted and logged before the
    /// engine sees them; when route signatures are not verified every
    /// tombstone is dropped (the capability is not offered then either).
    /// Returns how many were dropped.
    pub fn check_tombstones(&mut self, u: &mut Update, now: Millis) -> usize {
        if u.tombstones.is_empty() {
            return 0;
        }
        let before = u.tombstones.len();
        if !self.verify_routes {
            u.tombstones.clear();
        } else {
            let trust = &self.trust;
            u.tombstones.retain(|t| match verify_tombstone(t, trust, now) {
                Ok(()) => true,
                Err(e) => {
                    tracing::debug!(prefix = %t.prefix, asn = %t.asn(), error = %e, "dropping a tombstone that does not verify");
                    false
                }
            });
        }
        let dropped = before - u.tombstones.len();
        self.tombstones_dropped += dropped as u64;
        dropped
    }

    /// Tombstones dropped because they did not verify (or nothing is
    /// verified).
    pub fn tombstones_dropped(&self) -> u64 {
        self.tombstones_dropped
    }

    /// The tombstone for our origination of `prefix` (origin time `ended`),
    /// valid for [`TOMBSTONE_TTL_MS`]; `None` when route signatures are not
    /// in force (no peer would act on it).
    pub fn sign_tombstone(
        &self,
        prefix: &Prefix,
        ended: Millis,
        now: Millis,
    ) -> Option<Arc<Tombstone>> {
        self.verify_routes.then(|| {
            sign_tombstone(
                &self.identity,
                prefix.clone(),
                ended,
                now,
                now.saturating_add_ms(TOMBSTONE_TTL_MS),
            )
        })
    }

    /// The origin signature for a route we originate.
    pub fn sign_origin(&self, route: &Route, now: Millis) -> Arc<RouteProof> {
        sign_origin(
            &self.identity,
            route,
            now.saturating_add_ms(self.origin_validity_ms),
        )
    }

    /// Half the origin signature lifetime: re-sign this often.
    pub fn resign_every_ms(&self) -> u64 {
        self.origin_validity_ms / 2
    }

    /// Adds our path signature to each route of an UPDATE going to a peer
    /// in another AS (`peer_asn`). Routes within our AS are not re-signed.
    pub fn sign_update(&self, u: &mut Update, peer_asn: Asn) {
        if peer_asn == self.identity.asn() {
            return;
        }
        for r in u.announce.iter_mut() {
            // A route server relays without prepending (the engine then
            // names the announcing client as next hop): a pcount-0 hop.
            let relayed =
                r.attrs.next_hop.is_some() && r.attrs.as_path.first() != Some(&self.identity.asn());
            let signed = if relayed {
                sign_path_hop_with_pcount(r, &self.identity, peer_asn, 0)
            } else {
                sign_path_hop(r, &self.identity, peer_asn)
            };
            match signed {
                Ok(p) => r.proof = Some(p),
                Err(e) => {
                    tracing::debug!(prefix = %r.prefix, error = %e, "route leaves without our path signature")
                }
            }
        }
    }

    pub fn verify_view(&self) -> VerifyView {
        let s: &VerifyStats = self.cache.stats();
        VerifyView {
            enabled: self.verify_routes,
            routes_ok: s.routes_ok,
            routes_dropped: s.routes_dropped,
            dropped_by_reason: s
                .dropped_by_reason
                .iter()
                .map(|(k, v)| (k.to_string(), *v))
                .collect(),
            opens_refused: self.opens_refused,
            asn_key_conflicts: self.asn_key_conflicts,
            known_asns: self.trust.known_asns().list().len(),
            known_asns_not_recorded: self.trust.known_asns().not_recorded(),
            authorizations: self.authorizations.len(),
            origins_valid: self.origins.valid,
            origins_invalid: self.origins.invalid,
            origins_not_found: self.origins.not_found,
            origins_rejected: self.origins.rejected,
            aborted_updates: self.aborted_updates,
            checks_off_task: self.off_task.checks,
            budget_waits: self.off_task.budget_waits,
            budget_wait_ms: self.off_task.budget_wait_ms,
        }
    }
}

/// What route origin validation does (`[trust] origin_validation`).
pub use crate::config::OriginValidation;

/// Routes by origin validity (where authorisations exist).
#[derive(Debug, Clone, Copy, Default)]
pub struct OriginCounts {
    pub valid: u64,
    pub invalid: u64,
    pub not_found: u64,
    /// Invalid routes treated as withdrawn.
    pub rejected: u64,
}

/// The community that marks a route's origin validity.
pub fn origin_mark(v: Validity) -> Community {
    Community::Named(
        match v {
            Validity::Valid => "origin-valid",
            Validity::Invalid => "origin-invalid",
            Validity::NotFound => "origin-not-found",
        }
        .into(),
    )
}

fn origin_marks() -> [Community; 3] {
    [
        origin_mark(Validity::Valid),
        origin_mark(Validity::Invalid),
        origin_mark(Validity::NotFound),
    ]
}
