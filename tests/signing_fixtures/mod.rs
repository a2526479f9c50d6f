//! Fixtures shared by the wire and identity integration tests: fixed keys,
//! certificates and signed routes, so failures reproduce exactly.
#![allow(dead_code)]

use std::sync::Arc;

use agent_bgp::core::attrs::PathAttrs;
use agent_bgp::core::route::Route;
use agent_bgp::core::{AgentId, Asn, Millis, Prefix};
use agent_bgp::identity::route_sign::{sign_origin, sign_path_hop};
use agent_bgp::identity::{
    LocalIdentity, NodeKey, TrustAnchor, TrustStore, derived_cert, issue_cert,
};

/// "Now" in every test: 2026-01-01T00:00:00Z.
pub const NOW: Millis = Millis(1_767_225_600_000);
pub const DAY: u64 = 86_400_000;

pub fn key(n: u8) -> NodeKey {
    NodeKey::from_seed(&[n; 32])
}

/// The authority key used for issued certificates.
pub fn authority() -> NodeKey {
    key(200)
}

pub fn trust() -> TrustStore {
    TrustStore::new().with_anchor(TrustAnchor::new("test-authority", authority().node_id()))
}

/// A node with an issued certificate for `asn`, valid a day either side
/// of [`NOW`].
pub fn issued(n: u8, asn: u32) -> LocalIdentity {
    let k = key(n);
    let c = issue_cert(
        &authority(),
        k.node_id(),
        Asn(asn),
        Millis(NOW.0 - DAY),
        Millis(NOW.0 + DAY),
    )
    .unwrap();
    LocalIdentity::new(k, c).unwrap()
}

/// A node with a derived (self-certifying) certificate.
pub fn derived(n: u8) -> LocalIdentity {
    let k = key(n);
    let c = derived_cert(&k, Millis(NOW.0 - DAY), Millis(NOW.0 + DAY)).unwrap();
    LocalIdentity::new(k, c).unwrap()
}

pub fn prefix(s: &str) -> Prefix {
    Prefix::new(s).unwrap()
}

/// A route as its origin builds it, before signing.
pub fn origin_route(p: &str, agent: &str) -> Route {
    let attrs = PathAttrs {
        agent: AgentId::new(agent),
        origin_time: Millis(NOW.0 - 1000),
        ..Default::default()
    }
    .with_capabilities(["lint", "typescript"]);
    Route::new(prefix(p), Arc::new(attrs))
}

/// Originates `route` at `origin` (expiring a day after [`NOW`]).
pub fn originate(route: &Route, origin: &LocalIdentity) -> Route {
    let mut r = route.clone();
    r.proof = Some(sign_origin(origin, &r, Millis(NOW.0 + DAY)));
    r
}

/// What `from` sends to AS `target`: its ASN prepended `times` times, then
/// its path signature added.
pub fn send(route: &Route, from: &LocalIdentity, target: u32, times: usize) -> Route {
    let mut r = route.clone();
    let mut attrs = (*r.attrs).clone();
    for _ in 0..times {
        attrs.as_path.insert(0, from.asn());
    }
    r.attrs = Arc::new(attrs);
    r.proof = Some(sign_path_hop(&r, from, Asn(target)).unwrap());
    r
}
