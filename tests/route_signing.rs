//! Signed routes end to end: origin attestations and path signatures made
//! by real keys, verified against a trust store, and every way a hostile
//! node could forge, shorten or splice a path failing with its own typed
//! error.

mod signing_fixtures;

use std::sync::Arc;

use agent_bgp::core::proof::{RouteProof, Signature};
use agent_bgp::core::route::Route;
use agent_bgp::core::{AgentId, Asn, Millis};
use agent_bgp::identity::route_sign::{SignError, sign_path_hop, sign_path_hop_with_pcount};
use agent_bgp::identity::trust::CertError;
use agent_bgp::identity::{LocalIdentity, TrustStore, issue_cert, self_signed_cert};
use agent_bgp::identity::{RouteVerifyError, VerifyCache, VerifyContext, verify_route};
use signing_fixtures::*;

const O: u32 = 65001; // origin
const A: u32 = 65002;
const B: u32 = 65003;
const C: u32 = 65004;

fn ctx(trust: &TrustStore, local: u32, peer: u32) -> VerifyContext<'_> {
    VerifyContext {
        trust,
        local_asn: Asn(local),
        peer_asn: Asn(peer),
        now: NOW,
    }
}

/// O originates, sends to A; A sends to B.
fn two_hops() -> (Route, LocalIdentity, LocalIdentity) {
    let o = issued(1, O);
    let a = issued(2, A);
    let r = originate(&origin_route("coding/typescript/lint", "eslint"), &o);
    let r = send(&r, &o, A, 1);
    let r = send(&r, &a, B, 1);
    (r, o, a)
}

fn with_proof(r: &Route, f: impl FnOnce(&mut RouteProof)) -> Route {
    let mut r = r.clone();
    let mut p = RouteProof::clone(r.proof.as_ref().unwrap());
    f(&mut p);
    r.proof = Some(Arc::new(p));
    r
}

fn with_attrs(r: &Route, f: impl FnOnce(&mut agent_bgp::core::PathAttrs)) -> Route {
    let mut r = r.clone();
    let mut a = (*r.attrs).clone();
    f(&mut a);
    r.attrs = Arc::new(a);
    r
}

#[test]
fn valid_two_hop_chain_verifies() {
    let (r, _, _) = two_hops();
    let t = trust();
    assert_eq!(r.attrs.as_path, vec![Asn(A), Asn(O)]);
    assert_eq!(verify_route(&r, &ctx(&t, B, A)), Ok(()));
}

#[test]
fn derived_identities_sign_and_verify_without_an_authority() {
    let o = derived(1);
    let a = derived(2);
    let r = originate(&origin_route("x/y", "agent"), &o);
    let r = send(&r, &o, a.asn().0, 1);
    let t = TrustStore::new();
    let c = VerifyContext {
        trust: &t,
        local_asn: a.asn(),
        peer_asn: o.asn(),
        now: NOW,
    };
    assert_eq!(verify_route(&r, &c), Ok(()));
}

#[test]
fn unsigned_route_is_refused() {
    let r = origin_route("a/b", "x");
    assert_eq!(
        verify_route(&r, &ctx(&trust(), B, A)),
        Err(RouteVerifyError::Unsigned)
    );
}

#[test]
fn path_without_the_middle_hop_is_refused() {
    // O -> X -> Y -> B; Y drops X from both the path and the proof.
    let o = issued(1, O);
    let x = issued(2, A);
    let y = issued(3, C);
    let r = originate(&origin_route("a/b", "x"), &o);
    let r = send(&r, &o, A, 1);
    let r = send(&r, &x, C, 1);
    let r = send(&r, &y, B, 1);
    let t = trust();
    assert_eq!(verify_route(&r, &ctx(&t, B, C)), Ok(()));
    let shortened = with_attrs(
        &with_proof(&r, |p| {
            p.path.remove(1);
        }),
        |a| a.as_path = vec![Asn(C), Asn(O)],
    );
    assert!(matches!(
        verify_route(&shortened, &ctx(&t, B, C)),
        Err(RouteVerifyError::WrongTarget { index: 0, .. })
    ));
}

#[test]
fn forwarding_someone_elses_signature_unchanged_is_refused() {
    // A got the route signed for A and passes it to B as if from O.
    let o = issued(1, O);
    let r = send(&originate(&origin_route("a/b", "x"), &o), &o, A, 1);
    assert_eq!(
        verify_route(&r, &ctx(&trust(), B, O)),
        Err(RouteVerifyError::NotForUs {
            target: Asn(A),
            local: Asn(B)
        })
    );
}

#[test]
fn hiding_a_hop_from_the_as_path_is_refused() {
    let (r, _, _) = two_hops();
    let hidden = with_attrs(&r, |a| a.as_path = vec![Asn(O)]);
    assert!(matches!(
        verify_route(&hidden, &ctx(&trust(), B, A)),
        Err(RouteVerifyError::PathMismatch { .. })
    ));
    let padded = with_attrs(&r, |a| a.as_path = vec![Asn(A), Asn(A), Asn(O)]);
    assert!(matches!(
        verify_route(&padded, &ctx(&trust(), B, A)),
        Err(RouteVerifyError::PathMismatch { .. })
    ));
}

#[test]
fn spliced_path_signatures_are_refused() {
    let o = issued(1, O);
    let a = issued(2, A);
    let one = send(
        &send(&originate(&origin_route("a/one", "x"), &o), &o, A, 1),
        &a,
        B,
        1,
    );
    let two = send(
        &send(&originate(&origin_route("a/two", "x"), &o), &o, A, 1),
        &a,
        B,
        1,
    );
    let t = trust();
    // Route two's origin with route one's path signatures.
    let spliced = with_proof(&two, |p| p.path = one.proof.as_ref().unwrap().path.clone());
    assert!(matches!(
        verify_route(&spliced, &ctx(&t, B, A)),
        Err(RouteVerifyError::BadPathSignature { index: 0, .. })
    ));
    // Route one's whole proof on route two's prefix.
    let mut moved = two.clone();
    moved.proof = one.proof.clone();
    assert_eq!(
        verify_route(&moved, &ctx(&t, B, A)),
        Err(RouteVerifyError::BadOriginSignature)
    );
}

#[test]
fn origin_facts_cannot_be_modified() {
    let (r, _, _) = two_hops();
    let t = trust();
    let c = ctx(&t, B, A);
    let mut prefix = r.clone();
    prefix.prefix = prefix_of("coding/typescript/format");
    assert_eq!(
        verify_route(&prefix, &c),
        Err(RouteVerifyError::BadOriginSignature)
    );
    let agent = with_attrs(&r, |a| a.agent = AgentId::new("evil"));
    assert_eq!(
        verify_route(&agent, &c),
        Err(RouteVerifyError::BadOriginSignature)
    );
    let caps = with_attrs(&r, |a| a.capabilities.push("admin".into()));
    assert_eq!(
        verify_route(&caps, &c),
        Err(RouteVerifyError::BadOriginSignature)
    );
    let time = with_attrs(&r, |a| a.origin_time = Millis(1));
    assert_eq!(
        verify_route(&time, &c),
        Err(RouteVerifyError::BadOriginSignature)
    );
    let expires = with_proof(&r, |p| p.origin.expires = Millis(NOW.0 + 9 * DAY));
    assert_eq!(
        verify_route(&expires, &c),
        Err(RouteVerifyError::BadOriginSignature)
    );
}

#[test]
fn unsigned_attributes_may_change_in_transit() {
    let (r, _, _) = two_hops();
    let r = with_attrs(&r, |a| {
        a.med = 50;
        a.local_pref = 300;
        a.add_community(agent_bgp::core::Community::NO_EXPORT);
    });
    assert_eq!(verify_route(&r, &ctx(&trust(), B, A)), Ok(()));
}

fn prefix_of(s: &str) -> agent_bgp::core::Prefix {
    prefix(s)
}

#[test]
fn expired_attestation_is_refused() {
    let (r, _, _) = two_hops();
    let t = trust().with_clock_skew_ms(0);
    let late = VerifyContext {
        now: Millis(NOW.0 + DAY + 1),
        ..ctx(&t, B, A)
    };
    assert!(matches!(
        verify_route(&r, &late),
        Err(RouteVerifyError::OriginExpired { .. })
    ));
}

#[test]
fn route_signed_for_another_as_is_refused() {
    let (r, _, _) = two_hops();
    assert_eq!(
        verify_route(&r, &ctx(&trust(), C, A)),
        Err(RouteVerifyError::NotForUs {
            target: Asn(B),
            local: Asn(C)
        })
    );
}

#[test]
fn route_relayed_by_a_peer_that_did_not_sign_it_is_refused() {
    // C replays A's route (signed for B) to B over its own session.
    let (r, _, _) = two_hops();
    assert_eq!(
        verify_route(&r, &ctx(&trust(), B, C)),
        Err(RouteVerifyError::WrongSender {
            signer: Asn(A),
            peer: Asn(C)
        })
    );
}

#[test]
fn origin_cert_for_another_key_is_refused() {
    // Node 3 holds a valid cert for O too (shared ASN); swapping it in does
    // not make node 1's signature its own.
    let (r, _, _) = two_hops();
    let other = issued(3, O);
    let swapped = with_proof(&r, |p| p.origin.cert = other.cert().clone());
    assert_eq!(
        verify_route(&swapped, &ctx(&trust(), B, A)),
        Err(RouteVerifyError::BadOriginSignature)
    );
}

#[test]
fn expired_certificates_are_refused() {
    let k = key(1);
    let old = issue_cert(
        &authority(),
        k.node_id(),
        Asn(O),
        Millis(NOW.0 - 3 * DAY),
        Millis(NOW.0 - 2 * DAY),
    )
    .unwrap();
    let o = LocalIdentity::new(k, old).unwrap();
    let a = issued(2, A);
    let r = send(
        &send(&originate(&origin_route("a/b", "x"), &o), &o, A, 1),
        &a,
        B,
        1,
    );
    let err = verify_route(&r, &ctx(&trust(), B, A)).unwrap_err();
    assert!(
        matches!(err, RouteVerifyError::OriginCert(CertError::Expired { .. })),
        "{err}"
    );
    assert_eq!(err.reason(), "origin_cert");
}

#[test]
fn untrusted_issuer_is_refused() {
    let (r, _, _) = two_hops();
    let err = verify_route(&r, &ctx(&TrustStore::new(), B, A)).unwrap_err();
    assert!(matches!(
        err,
        RouteVerifyError::OriginCert(CertError::UntrustedIssuer { .. })
    ));
}

#[test]
fn path_hop_with_an_untrusted_cert_is_refused() {
    let o = issued(1, O);
    let rogue_key = key(9);
    let rogue_cert =
        self_signed_cert(&rogue_key, Asn(A), Millis(NOW.0 - DAY), Millis(NOW.0 + DAY)).unwrap();
    let rogue = LocalIdentity::new(rogue_key, rogue_cert).unwrap();
    let r = send(
        &send(&originate(&origin_route("a/b", "x"), &o), &o, A, 1),
        &rogue,
        B,
        1,
    );
    assert!(matches!(
        verify_route(&r, &ctx(&trust(), B, A)),
        Err(RouteVerifyError::PathCert {
            index: 1,
            source: CertError::NotDerived { .. }
        })
    ));
}

#[test]
fn tampered_certificate_fails_its_signature() {
    let (r, _, _) = two_hops();
    let bad = with_proof(&r, |p| {
        let mut c = (*p.path[1].cert).clone();
        c.not_after = Millis(c.not_after.0 + 1);
        p.path[1].cert = Arc::new(c);
    });
    assert!(matches!(
        verify_route(&bad, &ctx(&trust(), B, A)),
        Err(RouteVerifyError::PathCert {
            index: 1,
            source: CertError::BadSignature(_)
        })
    ));
}

#[test]
fn forged_path_signature_is_refused() {
    let (r, _, _) = two_hops();
    let bad = with_proof(&r, |p| p.path[1].signature = Signature([7; 64]));
    assert_eq!(
        verify_route(&bad, &ctx(&trust(), B, A)),
        Err(RouteVerifyError::BadPathSignature {
            index: 1,
            asn: Asn(A)
        })
    );
}

#[test]
fn first_hop_must_be_the_origin_as() {
    let o = issued(1, O);
    let a = issued(2, A);
    let r = originate(&origin_route("a/b", "x"), &o);
    // A signs as the first hop of O's route without O having signed.
    let r = send(&r, &a, B, 1);
    assert_eq!(
        verify_route(&r, &ctx(&trust(), B, A)),
        Err(RouteVerifyError::WrongOriginAs {
            origin: Asn(O),
            signer: Asn(A)
        })
    );
}

#[test]
fn prepends_are_signed_and_must_match() {
    let o = issued(1, O);
    let a = issued(2, A);
    let r = send(
        &send(&originate(&origin_route("a/b", "x"), &o), &o, A, 3),
        &a,
        B,
        2,
    );
    let t = trust();
    assert_eq!(
        r.attrs.as_path,
        vec![Asn(A), Asn(A), Asn(O), Asn(O), Asn(O)]
    );
    assert_eq!(verify_route(&r, &ctx(&t, B, A)), Ok(()));
    let fewer = with_attrs(&r, |a| {
        a.as_path.remove(2);
    });
    assert!(matches!(
        verify_route(&fewer, &ctx(&t, B, A)),
        Err(RouteVerifyError::PathMismatch { .. })
    ));
    let wrong_pcount = with_proof(&r, |p| p.path[0].pcount = 1);
    assert!(matches!(
        verify_route(&wrong_pcount, &ctx(&t, B, A)),
        Err(RouteVerifyError::BadPathSignature { .. }) | Err(RouteVerifyError::PathMismatch { .. })
    ));
}

#[test]
fn signing_a_hop_needs_a_prepended_path_and_a_proof() {
    let o = issued(1, O);
    let r = originate(&origin_route("a/b", "x"), &o);
    assert_eq!(
        sign_path_hop(&r, &o, Asn(A)),
        Err(SignError::NotPrepended { asn: Asn(O) })
    );
    let unsigned = origin_route("a/b", "x");
    assert_eq!(
        sign_path_hop_with_pcount(&unsigned, &o, Asn(A), 1),
        Err(SignError::Unsigned)
    );
}

#[test]
fn internal_peers_forward_without_signing() {
    // B1 learns the route from A, reflects it to B2 inside AS B unchanged.
    let (r, _, _) = two_hops();
    let t = trust();
    let b2 = ctx(&t, B, B);
    assert_eq!(verify_route(&r, &b2), Ok(()));
    // A route originated inside AS B carries no path signatures.
    let b1 = issued(5, B);
    let local = originate(&origin_route("ours/tool", "x"), &b1);
    assert_eq!(verify_route(&local, &b2), Ok(()));
    // The same route arriving from an external peer is missing its path.
    assert_eq!(
        verify_route(&local, &ctx(&t, B, A)),
        Err(RouteVerifyError::MissingPath { origin: Asn(B) })
    );
    let with_path = with_attrs(&local, |a| a.as_path = vec![Asn(A)]);
    assert!(matches!(
        verify_route(&with_path, &b2),
        Err(RouteVerifyError::PathMismatch { .. })
    ));
}

#[test]
fn shared_asn_nodes_each_sign_with_their_own_key() {
    // Origin node 1 in O; border node 6 (also O) sends it to A.
    let o1 = issued(1, O);
    let o2 = issued(6, O);
    let r = send(&originate(&origin_route("a/b", "x"), &o1), &o2, A, 1);
    assert_eq!(verify_route(&r, &ctx(&trust(), A, O)), Ok(()));
}

#[test]
fn transparent_route_server_needs_configuration() {
    let o = issued(1, O);
    let rs = issued(7, 65100);
    let r = send(&originate(&origin_route("a/b", "x"), &o), &o, 65100, 1);
    let mut r2 = r.clone();
    r2.proof = Some(sign_path_hop_with_pcount(&r, &rs, Asn(B), 0).unwrap());
    let t = trust();
    assert_eq!(
        verify_route(&r2, &ctx(&t, B, 65100)),
        Err(RouteVerifyError::TransparentNotAllowed {
            index: 1,
            asn: Asn(65100)
        })
    );
    let t = trust().with_transparent(Asn(65100));
    assert_eq!(verify_route(&r2, &ctx(&t, B, 65100)), Ok(()));
    // The AS path stays [O]: the route server is not in it.
    assert_eq!(r2.attrs.as_path, vec![Asn(O)]);
}

#[test]
fn cache_answers_repeat_verifications_and_never_caches_failures() {
    let (r, _, _) = two_hops();
    let t = trust();
    let c = ctx(&t, B, A);
    let mut cache = VerifyCache::new(1000);
    assert_eq!(cache.verify_route(&r, &c), Ok(()));
    // Six checks (origin cert, origin, O's cert again, hop 0, A's cert,
    // hop 1); O's cert is checked once and then found in the cache.
    assert_eq!((cache.stats().misses, cache.stats().hits), (5, 1));
    assert_eq!(cache.verify_route(&r, &c), Ok(()));
    assert_eq!((cache.stats().misses, cache.stats().hits), (5, 7));
    let bad = with_proof(&r, |p| p.path[1].signature = Signature([7; 64]));
    for _ in 0..2 {
        assert!(cache.verify_route(&bad, &c).is_err());
    }
    assert_eq!(cache.stats().routes_dropped, 2);
    assert_eq!(cache.stats().dropped_by_reason["bad_path_signature"], 2);
    // Time checks are not cached: the same proof expires.
    let late = VerifyContext {
        now: Millis(NOW.0 + 3 * DAY),
        ..c
    };
    assert!(cache.verify_route(&r, &late).is_err());
}

#[test]
fn batch_verification_finds_exactly_the_bad_routes() {
    let o = issued(1, O);
    let a = issued(2, A);
    let mut routes: Vec<Route> = (0..40)
        .map(|i| {
            let r = originate(&origin_route(&format!("tools/t{i}"), "x"), &o);
            send(&send(&r, &o, A, 1), &a, B, 1)
        })
        .collect();
    routes[7] = with_proof(&routes[7], |p| p.origin.signature = Signature([1; 64]));
    routes[23] = with_proof(&routes[23], |p| {
        p.path[1].signature = routes[22].proof.as_ref().unwrap().path[1].signature
    });
    routes[31] = with_attrs(&routes[31], |a| a.agent = AgentId::new("changed"));
    let t = trust();
    let c = ctx(&t, B, A);
    let mut cache = VerifyCache::new(10_000);
    let got = cache.verify_routes(&routes, &c);
    for (i, g) in got.iter().enumerate() {
        match i {
            7 | 31 => assert_eq!(g, &Err(RouteVerifyError::BadOriginSignature), "{i}"),
            23 => assert!(
                matches!(g, Err(RouteVerifyError::BadPathSignature { index: 1, .. })),
                "{i}: {g:?}"
            ),
            _ => assert_eq!(g, &Ok(()), "{i}"),
        }
        assert_eq!(
            g,
            &verify_route(&routes[i], &c),
            "batch and single disagree at {i}"
        );
    }
    assert!(cache.stats().batches >= 1);
    assert!(cache.stats().batch_failures >= 1);
    // Second pass: the good routes come from the cache, no new batches on
    // good signatures.
    let misses = cache.stats().misses;
    let again = cache.verify_routes(&routes, &c);
    assert_eq!(again, got);
    // Only the failing checks are looked at again: route 7's origin and
    // both hops (they sign over the origin signature), route 23's hop 1,
    // route 31's origin.
    assert_eq!(cache.stats().misses - misses, 5);
}

#[test]
fn cache_is_bounded() {
    let o = issued(1, O);
    let t = trust();
    let c = VerifyContext {
        trust: &t,
        local_asn: Asn(O),
        peer_asn: Asn(O),
        now: NOW,
    };
    let mut cache = VerifyCache::new(8);
    for i in 0..50 {
        let r = originate(&origin_route(&format!("t/{i}"), "x"), &o);
        assert_eq!(cache.verify_route(&r, &c), Ok(()));
        assert!(cache.len() <= 8);
    }
    assert_eq!(cache.len(), 8);
}

#[test]
fn an_update_full_of_bad_signatures_stops_after_the_failure_limit() {
    let o = issued(1, O);
    let a = issued(2, A);
    // 600 routes, every origin signature forged.
    let routes: Vec<Route> = (0..600)
        .map(|i| {
            let r = originate(&origin_route(&format!("tools/b{i}"), "x"), &o);
            let r = send(&send(&r, &o, A, 1), &a, B, 1);
            with_proof(&r, |p| p.origin.signature = Signature([i as u8; 64]))
        })
        .collect();
    let t = trust();
    let c = ctx(&t, B, A);
    let mut cache = VerifyCache::new(10_000);
    let pending = cache.plan(&routes, &c);
    let work = pending.work();
    assert!(work >= 600, "{work} checks to do");
    let v = pending.verify(16);
    assert!(v.aborted);
    assert_eq!(v.failed, 16, "stopped at the limit");
    let got = cache.finish(&routes, pending, v);
    // Nothing bad gets through; most were never checked.
    assert!(got.iter().all(|r| r.is_err()));
    let skipped = got
        .iter()
        .filter(|r| **r == Err(RouteVerifyError::NotChecked))
        .count();
    assert!(skipped >= 500, "{skipped} routes dropped unchecked");
    assert_eq!(
        cache.stats().dropped_by_reason["not_checked"],
        skipped as u64
    );
    // Verification off the node task gives what the one-call path gives
    // when there is no limit.
    let mut fresh = VerifyCache::new(10_000);
    let all = fresh.verify_routes(&routes, &c);
    assert!(
        all.iter()
            .all(|r| *r == Err(RouteVerifyError::BadOriginSignature))
    );
}

/// A tool route as an origin announces it: the tool's name, the kind (for
/// prompts, resources and templates) and the descriptor hash.
fn tool_route_two_hops(kind: Option<&str>) -> Route {
    use agent_bgp::core::attrs::{AttrValue, ExtraAttr};
    let o = issued(1, O);
    let a = issued(2, A);
    let mut r = origin_route("remote/echo/echo", "echo");
    let mut attrs = (*r.attrs).clone();
    let mut put = |name: &str, value: AttrValue| {
        attrs.extra.insert(
            name.into(),
            ExtraAttr {
                transitive: true,
                value,
            },
        );
    };
    put("mcp.tool", AttrValue::Text("echo".into()));
    put("mcp.desc", AttrValue::Bytes(Arc::from(&[7u8; 32][..])));
    if let Some(k) = kind {
        put("mcp.kind", AttrValue::Text(k.into()));
    }
    r.attrs = Arc::new(attrs);
    let r = originate(&r, &o);
    let r = send(&r, &o, A, 1);
    send(&r, &a, B, 1)
}

#[test]
fn a_transit_cannot_rewrite_add_or_drop_what_a_tool_route_leads_to() {
    use agent_bgp::core::attrs::{AttrValue, ExtraAttr};
    let t = trust();
    let c = ctx(&t, B, A);
    for kind in [None, Some("prompt")] {
        let r = tool_route_two_hops(kind);
        assert_eq!(verify_route(&r, &c), Ok(()), "as the origin sent it");
        let set = |name: &str, value: AttrValue| {
            with_attrs(&r, |a| {
                a.extra.insert(
                    name.into(),
                    ExtraAttr {
                        transitive: true,
                        value,
                    },
                );
            })
        };
        // A poisoned descriptor needs another hash: refused.
        let desc = set("mcp.desc", AttrValue::Bytes(Arc::from(&[8u8; 32][..])));
        assert_eq!(
            verify_route(&desc, &c),
            Err(RouteVerifyError::BadOriginSignature)
        );
        // Another tool name (calls for it would reach this route).
        let tool = set("mcp.tool", AttrValue::Text("rm_rf".into()));
        assert_eq!(
            verify_route(&tool, &c),
            Err(RouteVerifyError::BadOriginSignature)
        );
        // Another kind, or a value of another type.
        let k = set("mcp.kind", AttrValue::Text("resource".into()));
        assert_eq!(
            verify_route(&k, &c),
            Err(RouteVerifyError::BadOriginSignature)
        );
        let typed = set("mcp.tool", AttrValue::Int(1));
        assert_eq!(
            verify_route(&typed, &c),
            Err(RouteVerifyError::BadOriginSignature)
        );
        // Dropping the hash (so nothing is checked) is caught too.
        let dropped = with_attrs(&r, |a| {
            a.extra.remove("mcp.desc");
        });
        assert_eq!(
            verify_route(&dropped, &c),
            Err(RouteVerifyError::BadOriginSignature)
        );
        // Other extra attributes stay the transit's to add.
        let other = set("x.note", AttrValue::Text("hello".into()));
        assert_eq!(verify_route(&other, &c), Ok(()));
    }
}

#[test]
fn a_tombstone_verifies_only_as_its_origin_signed_it() {
    use agent_bgp::core::prefix::Prefix;
    use agent_bgp::core::proof::Tombstone;
    use agent_bgp::identity::route_sign::{TombstoneError, sign_tombstone, verify_tombstone};
    let o = issued(1, O);
    let a = issued(2, A);
    let p = Prefix::new("coding/typescript/lint").unwrap();
    let t = sign_tombstone(
        &o,
        p.clone(),
        Millis(NOW.0 - 10),
        NOW,
        Millis(NOW.0 + 120_000),
    );
    let trust = trust();
    assert_eq!(verify_tombstone(&t, &trust, NOW), Ok(()));
    assert_eq!(t.asn(), Asn(O));
    // A forged signature, a changed field, or A signing with O's
    // certificate: refused.
    let forged = Tombstone {
        signature: Signature([7; 64]),
        ..(*t).clone()
    };
    assert!(matches!(
        verify_tombstone(&forged, &trust, NOW),
        Err(TombstoneError::Signature(_))
    ));
    let later = Tombstone {
        ended: Millis(NOW.0 + 1),
        ..(*t).clone()
    };
    assert!(verify_tombstone(&later, &trust, NOW).is_err());
    let by_a = sign_tombstone(&a, p.clone(), NOW, NOW, Millis(NOW.0 + 1));
    let spliced = Tombstone {
        cert: o.cert().clone(),
        ..(*by_a).clone()
    };
    assert!(verify_tombstone(&spliced, &trust, NOW).is_err());
    // A self-signed certificate for O is not trusted.
    let k = key(9);
    let cert = self_signed_cert(&k, Asn(O), Millis(NOW.0 - DAY), Millis(NOW.0 + DAY)).unwrap();
    let rogue = LocalIdentity::new(k, cert).unwrap();
    let t = sign_tombstone(&rogue, p, NOW, NOW, Millis(NOW.0 + 1));
    assert!(matches!(
        verify_tombstone(&t, &trust, NOW),
        Err(TombstoneError::Cert(_))
    ));
}
