//! The design seed's corporate scenario, run through seven engines wired
//! together in memory: Finance (AS 65001), a corporate core with a route
//! reflector (AS 65000), Engineering (AS 65002), and the rule "no finance to
//! engineering". Every node's Loc-RIB is asserted.

use agent_bgp::core::decision::{Learned, Status, Step};
use agent_bgp::core::engine::PeerState;
use agent_bgp::core::{Asn, ClusterId, Millis, Prefix};
use agent_bgp::sim::scenario::{Scenario, corporate};

const T0: Millis = Millis(1_700_000_000_000);

fn converged() -> Scenario {
    let mut s = corporate(T0).expect("the corporate policy files load");
    s.net.run_for(5_000);
    s
}

fn p(s: &str) -> Prefix {
    Prefix::new(s).unwrap()
}

fn path(s: &Scenario, node: &str, prefix: &str) -> Vec<u32> {
    let r = s
        .engine(node)
        .and_then(|e| e.best(&p(prefix)))
        .unwrap_or_else(|| panic!("{node} has no route for {prefix}"));
    r.attrs.as_path.iter().map(|a| a.0).collect()
}

const FINANCE_PUBLIC: [&str; 2] = ["finance/budget/forecast", "finance/report/quarterly"];
const ENGINEERING: [&str; 3] = ["eng/code/review", "eng/deploy/ship", "eng/test/run"];

fn sorted(v: &[&str]) -> Vec<String> {
    let mut v: Vec<String> = v.iter().map(|s| s.to_string()).collect();
    v.sort();
    v
}

#[test]
fn every_session_comes_up() {
    let s = converged();
    for (a, b) in &s.sessions {
        let e = s.engine(a).unwrap();
        let peer = s.node(b).unwrap().id;
        assert_eq!(
            e.peer_info(&peer).map(|i| i.state),
            Some(PeerState::Established),
            "{a} - {b}"
        );
    }
}

#[test]
fn finance_sees_all_of_finance_and_all_of_engineering() {
    let s = converged();
    let mut want: Vec<&str> = vec!["finance/audit/ledger"];
    want.extend(FINANCE_PUBLIC);
    want.extend(ENGINEERING);
    for node in ["fin-1", "fin-2"] {
        assert_eq!(s.loc_rib(node), sorted(&want), "{node}");
        for pre in ENGINEERING {
            assert_eq!(path(&s, node, pre), vec![65000, 65002], "{node} {pre}");
        }
    }
    // Finance's own routes stay inside the AS without a path.
    assert!(path(&s, "fin-2", "finance/audit/ledger").is_empty());
    assert!(path(&s, "fin-1", "finance/report/quarterly").is_empty());
}

#[test]
fn the_core_sees_public_finance_and_engineering_but_not_the_confidential_audit() {
    let s = converged();
    let mut want: Vec<&str> = FINANCE_PUBLIC.to_vec();
    want.extend(ENGINEERING);
    for node in ["core-rr", "core-1", "core-2"] {
        assert_eq!(s.loc_rib(node), sorted(&want), "{node}");
        for pre in FINANCE_PUBLIC {
            assert_eq!(path(&s, node, pre), vec![65001], "{node} {pre}");
        }
        for pre in ENGINEERING {
            assert_eq!(path(&s, node, pre), vec![65002], "{node} {pre}");
        }
    }
}

#[test]
fn the_reflector_passes_routes_between_its_clients_with_originator_and_cluster() {
    let s = converged();
    let core1 = s.node("core-1").unwrap().id;
    let r = s
        .engine("core-2")
        .unwrap()
        .best(&p("finance/budget/forecast"))
        .unwrap();
    assert_eq!(r.attrs.originator, Some(core1));
    assert_eq!(r.attrs.cluster_list, vec![ClusterId(1)]);
    // Reflection details do not leak to other ASes.
    let at_eng = s
        .engine("fin-1")
        .unwrap()
        .best(&p("eng/code/review"))
        .unwrap();
    assert_eq!(at_eng.attrs.originator, None);
    assert!(at_eng.attrs.cluster_list.is_empty());
}

#[test]
fn engineering_never_learns_finance_routes() {
    let s = converged();
    for node in ["eng-1", "eng-2"] {
        assert_eq!(s.loc_rib(node), sorted(&ENGINEERING), "{node}");
    }
    // Not even offered: core-2's Adj-RIB-Out towards eng-1 has no finance.
    let eng1 = s.node("eng-1").unwrap().id;
    let out = s.engine("core-2").unwrap().adj_rib_out(&eng1);
    assert!(
        out.iter()
            .all(|r| !r.prefix.as_str().starts_with("finance/"))
    );
    assert_eq!(out.len(), 0, "eng-1's own routes are not sent back to it");
}

#[test]
fn engineering_paths_inside_engineering_are_internal() {
    let s = converged();
    let e2 = s.engine("eng-2").unwrap();
    let paths = e2.paths(&p("eng/code/review"));
    assert_eq!(paths.len(), 1);
    assert_eq!(paths[0].learned, Learned::Internal);
    assert_eq!(paths[0].status, Status::Best);
    assert_eq!(paths[0].route.attrs.origin_asn(), None);
}

#[test]
fn a_second_finance_uplink_gives_the_core_a_backup_path_it_can_explain() {
    // fin-2 also peers with core-1: core-1 now hears finance routes twice.
    let mut s = corporate(T0).unwrap();
    let (f2, c1) = (s.node("fin-2").unwrap().id, s.node("core-1").unwrap().id);
    s.net.link(f2, c1);
    s.net.inject(
        f2,
        agent_bgp::core::engine::Event::AddPeer(
            agent_bgp::core::engine::PeerConfig::new(c1).with_asn(Asn(65000)),
        ),
    );
    s.net.inject(
        c1,
        agent_bgp::core::engine::Event::AddPeer(
            agent_bgp::core::engine::PeerConfig::new(f2).with_asn(Asn(65001)),
        ),
    );
    s.net.run_for(5_000);
    let paths = s
        .engine("core-1")
        .unwrap()
        .paths(&p("finance/budget/forecast"));
    assert_eq!(paths.len(), 2);
    assert_eq!(paths[0].status, Status::Best);
    // Same path length and origin time: the tie-break is the router id,
    // and fin-1 (node 11) is lower than fin-2 (node 12).
    assert_eq!(paths[0].peer, Some(s.node("fin-1").unwrap().id));
    assert_eq!(paths[1].status, Status::Lost(Step::OriginatorId));
}

#[test]
fn when_finance_loses_its_uplink_the_rest_of_the_company_forgets_it() {
    let mut s = converged();
    let (f1, c1) = (s.node("fin-1").unwrap().id, s.node("core-1").unwrap().id);
    s.net.unlink(f1, c1);
    // Graceful restart keeps stale routes for 120 s, then they go.
    s.net.run_for(125_000);
    for node in ["core-rr", "core-1", "core-2"] {
        assert_eq!(s.loc_rib(node), sorted(&ENGINEERING), "{node}");
    }
    let mut want: Vec<&str> = vec!["finance/audit/ledger"];
    want.extend(FINANCE_PUBLIC);
    assert_eq!(s.loc_rib("fin-2"), sorted(&want));
}
