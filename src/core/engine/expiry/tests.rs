//! Expired origin attestations, driven through the in-memory simulator: a
//! peer's path whose attestation ran out leaves the Loc-RIB (and the
//! withdrawal goes on), a fresh one stays, and local routes are untouched.

use std::sync::Arc;

use super::super::*;
use crate::core::engine::tests::{id, open_engine as engine, p, peer};
use crate::core::ids::AgentId;
use crate::core::proof::{AsnCert, OriginAttestation, RouteProof, Signature};
use crate::sim::SimNet;

const T0: Millis = Millis(1_700_000_000_000);

/// A route of node `n` whose (unchecked, in the engine) attestation
/// expires at `expires`.
fn attested(prefix: &str, n: u64, asn: u32, expires: Millis) -> Route {
    let mut r = Route::new(
        p(prefix),
        Arc::new(PathAttrs {
            agent: AgentId::new("a"),
            ..Default::default()
        }),
    );
    r.proof = Some(Arc::new(RouteProof {
        origin: OriginAttestation {
            cert: Arc::new(AsnCert::unsigned(Asn(asn), id(n))),
            expires,
            signature: Signature([0; 64]),
        },
        path: Vec::new(),
    }));
    r
}

#[test]
fn an_expired_attestation_leaves_the_rib_and_the_withdrawal_goes_on() {
    // 1 originates; 2 hears it from 1 and passes it to 3.
    let mut net = SimNet::new(T0, 1);
    net.add_node(engine(65001, 1));
    net.add_node(engine(65002, 2));
    net.add_node(engine(65003, 3));
    peer(&mut net, (1, 65001), (2, 65002));
    peer(&mut net, (2, 65002), (3, 65003));
    let soon = Millis(T0.0 + 10_000);
    let later = Millis(T0.0 + 3_600_000);
    net.inject(
        id(1),
        Event::Originate(attested("tools/old", 1, 65001, soon)),
    );
    net.inject(
        id(1),
        Event::Originate(attested("tools/fresh", 1, 65001, later)),
    );
    net.run_for(3_000);
    for n in [2, 3] {
        let e = net.engine(&id(n)).unwrap();
        assert!(e.best(&p("tools/old")).is_some(), "node {n} learned it");
    }
    // Before it expires (allowing 5 s of skew) nothing goes.
    net.inject(id(2), Event::ExpireAttested { skew_ms: 5_000 });
    net.run_for(1_000);
    assert!(net.engine(&id(2)).unwrap().best(&p("tools/old")).is_some());
    assert!(
        net.engine(&id(2))
            .unwrap()
            .expired_paths(net.now(), 5_000)
            .is_empty()
    );

    net.run_for(15_000);
    let e2 = net.engine(&id(2)).unwrap();
    assert_eq!(
        e2.expired_paths(net.now(), 5_000),
        vec![(id(1), vec![RouteKey::new(p("tools/old"))])]
    );
    net.inject(id(2), Event::ExpireAttested { skew_ms: 5_000 });
    // The origin itself keeps its own route (it re-signs it).
    net.inject(id(1), Event::ExpireAttested { skew_ms: 5_000 });
    net.run_for(2_000);
    let e2 = net.engine(&id(2)).unwrap();
    assert!(e2.best(&p("tools/old")).is_none(), "gone at 2");
    assert!(e2.best(&p("tools/fresh")).is_some(), "the fresh one stays");
    assert_eq!(e2.stats().expired_paths, 1);
    assert!(
        net.engine(&id(3)).unwrap().best(&p("tools/old")).is_none(),
        "the withdrawal went on to 3"
    );
    assert!(net.engine(&id(1)).unwrap().best(&p("tools/old")).is_some());
}
