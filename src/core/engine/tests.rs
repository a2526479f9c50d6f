//! Engine behaviour, driven through the in-memory network simulator.

use std::sync::Arc;

use super::*;
use crate::core::community::Community;
use crate::core::decision::{Exclusion, Status, Step};
use crate::core::ids::AgentId;
use crate::core::message::{ErrorCode, Update, subcode};
use crate::sim::SimNet;

pub(super) const T0: Millis = Millis(1_700_000_000_000);

pub(super) fn id(n: u64) -> NodeId {
    NodeId::from_u64(n)
}

pub(super) fn p(s: &str) -> Prefix {
    Prefix::new(s).unwrap()
}

fn cfg(asn: u32, n: u64) -> EngineConfig {
    EngineConfig::new(Asn(asn), id(n))
}

pub(super) fn open_engine(asn: u32, n: u64) -> Engine {
    Engine::new(cfg(asn, n)).with_policy(Arc::new(AcceptAll))
}

fn route(prefix: &str, agent: &str) -> Route {
    Route::new(
        p(prefix),
        Arc::new(PathAttrs {
            agent: AgentId::new(agent),
            ..Default::default()
        }),
    )
}

fn route_with(prefix: &str, f: impl FnOnce(&mut PathAttrs)) -> Route {
    let mut a = PathAttrs {
        agent: AgentId::new("agent"),
        ..Default::default()
    };
    f(&mut a);
    a.normalize();
    Route::new(p(prefix), Arc::new(a))
}

/// Peers two nodes (both sides configured, both dial).
pub(super) fn peer(net: &mut SimNet, a: (u64, u32), b: (u64, u32)) {
    net.link(id(a.0), id(b.0));
    net.inject(
        id(a.0),
        Event::AddPeer(PeerConfig::new(id(b.0)).with_asn(Asn(b.1))),
    );
    net.inject(
        id(b.0),
        Event::AddPeer(PeerConfig::new(id(a.0)).with_asn(Asn(a.1))),
    );
}

pub(super) fn established(net: &SimNet, a: u64, b: u64) -> bool {
    net.engine(&id(a))
        .and_then(|e| e.peer_info(&id(b)))
        .is_some_and(|i| i.state == PeerState::Established)
}

pub(super) fn best(net: &SimNet, n: u64, prefix: &str) -> Option<Route> {
    net.engine(&id(n)).and_then(|e| e.best(&p(prefix)))
}

pub(super) fn path_of(r: &Route) -> Vec<u32> {
    r.attrs.as_path.iter().map(|a| a.0).collect()
}

fn updates_sent(net: &SimNet, from: u64, to: u64) -> usize {
    net.log
        .iter()
        .filter(|(_, n, a)| {
            *n == id(from) && matches!(a, Action::Send(p, Message::Update(_)) if *p == id(to))
        })
        .count()
}

#[test]
fn two_ases_with_accepting_policy_exchange_routes_with_as_path() {
    let mut net = SimNet::new(T0, 1);
    net.add_node(open_engine(65001, 1));
    net.add_node(open_engine(65002, 2));
    peer(&mut net, (1, 65001), (2, 65002));
    net.inject(id(1), Event::Originate(route("coding/ts/lint", "linter")));
    net.run_for(2_000);
    assert!(established(&net, 1, 2) && established(&net, 2, 1));
    let r = best(&net, 2, "coding/ts/lint").expect("route propagated");
    assert_eq!(path_of(&r), vec![65001]);
    assert_eq!(r.attrs.agent.as_str(), "linter");
    assert_eq!(r.attrs.local_pref, DEFAULT_LOCAL_PREF_FOR_TESTS);
}

const DEFAULT_LOCAL_PREF_FOR_TESTS: u32 = crate::core::attrs::DEFAULT_LOCAL_PREF;

#[test]
fn without_policy_nothing_crosses_an_as_border() {
    let mut net = SimNet::new(T0, 1);
    net.add_node(Engine::new(cfg(65001, 1)));
    net.add_node(Engine::new(cfg(65002, 2)));
    peer(&mut net, (1, 65001), (2, 65002));
    net.inject(id(1), Event::Originate(route("a/b", "x")));
    net.inject(id(2), Event::Originate(route("c/d", "y")));
    net.run_for(2_000);
    assert!(established(&net, 1, 2));
    assert_eq!(best(&net, 2, "a/b"), None);
    assert_eq!(best(&net, 1, "c/d"), None);
    // Nothing was even offered: export default-denies too.
    assert!(net.engine(&id(1)).unwrap().adj_rib_out(&id(2)).is_empty());
}

#[test]
fn same_as_peers_exchange_routes_by_default() {
    let mut net = SimNet::new(T0, 1);
    net.add_node(Engine::new(cfg(65001, 1)));
    net.add_node(Engine::new(cfg(65001, 2)));
    peer(&mut net, (1, 65001), (2, 65001));
    net.inject(id(1), Event::Originate(route("a/b", "x")));
    net.run_for(2_000);
    let r = best(&net, 2, "a/b").expect("internal route accepted");
    assert!(r.attrs.as_path.is_empty(), "no AS added inside the AS");
}

#[test]
fn chain_of_three_ases_builds_the_path_nearest_first() {
    let mut net = SimNet::new(T0, 1);
    for (n, asn) in [(1, 65001), (2, 65002), (3, 65003)] {
        net.add_node(open_engine(asn, n));
    }
    peer(&mut net, (1, 65001), (2, 65002));
    peer(&mut net, (2, 65002), (3, 65003));
    net.inject(id(1), Event::Originate(route("x/y", "a")));
    net.run_for(3_000);
    assert_eq!(path_of(&best(&net, 3, "x/y").unwrap()), vec![65002, 65001]);
}

#[test]
fn triangle_prefers_the_direct_path_and_explains_the_other() {
    let mut net = SimNet::new(T0, 1);
    for (n, asn) in [(1, 65001), (2, 65002), (3, 65003)] {
        net.add_node(open_engine(asn, n));
    }
    peer(&mut net, (1, 65001), (2, 65002));
    peer(&mut net, (2, 65002), (3, 65003));
    peer(&mut net, (1, 65001), (3, 65003));
    net.inject(id(1), Event::Originate(route("x/y", "a")));
    net.run_for(3_000);
    let e3 = net.engine(&id(3)).unwrap();
    let paths = e3.paths(&p("x/y"));
    assert_eq!(paths.len(), 2);
    assert_eq!(paths[0].status, Status::Best);
    assert_eq!(path_of(&paths[0].route), vec![65001]);
    assert_eq!(paths[1].status, Status::Lost(Step::AsPathLength));
    // The origin never hears its own route back (sender-side loop check),
    // and holds only its local path.
    let e1 = net.engine(&id(1)).unwrap();
    assert_eq!(e1.paths(&p("x/y")).len(), 1);
}

#[test]
fn a_received_path_containing_our_asn_is_excluded_as_a_loop() {
    let mut net = SimNet::new(T0, 1);
    net.add_node(open_engine(65001, 1));
    net.add_node(open_engine(65002, 2));
    peer(&mut net, (1, 65001), (2, 65002));
    net.run_for(2_000);
    let looped = route_with("l/p", |a| {
        a.as_path = vec![Asn(65001), Asn(65002), Asn(65001)]
    });
    net.inject(
        id(2),
        Event::Message {
            peer: id(1),
            msg: Message::Update(Update {
                announce: vec![looped],
                ..Default::default()
            }),
        },
    );
    net.run_for(10);
    let e2 = net.engine(&id(2)).unwrap();
    assert_eq!(e2.best(&p("l/p")), None);
    assert_eq!(
        e2.paths(&p("l/p"))[0].status,
        Status::Excluded(Exclusion::AsPathLoop)
    );
}

/// After a failed dial, the next one waits the peer's own back-off when it
/// has one, else the engine's.
#[test]
fn a_peer_with_its_own_backoff_redials_on_its_schedule() {
    let first_redial = |pc: PeerConfig, engine_retry: Option<(u64, u64)>| {
        let mut c = cfg(65000, 100);
        if let Some((a, b)) = engine_retry {
            c.connect_retry = (
                std::time::Duration::from_secs(a),
                std::time::Duration::from_secs(b),
            );
        }
        let mut e = Engine::new(c).with_policy(Arc::new(AcceptAll));
        let node = pc.node;
        let out = e.handle(T0, Event::AddPeer(pc));
        assert!(out.contains(&Action::Dial(node)), "{out:?}");
        e.handle(T0, Event::ConnectFailed { peer: node });
        // Tick at every deadline until the engine dials again.
        for _ in 0..100 {
            let Some(at) = e.next_deadline() else { break };
            if e.handle(at, Event::Tick).contains(&Action::Dial(node)) {
                return at.0 - T0.0;
            }
        }
        panic!("no redial");
    };
    let within = |ms: u64, nominal: u64| ms * 4 >= nominal * 3 && ms * 4 <= nominal * 5;
    let default = first_redial(PeerConfig::new(id(1)).with_asn(Asn(65001)), None);
    assert!(within(default, 1_000), "{default} ms");
    let engine_wide = first_redial(PeerConfig::new(id(1)).with_asn(Asn(65001)), Some((5, 60)));
    assert!(within(engine_wide, 5_000), "{engine_wide} ms");
    let own = first_redial(
        PeerConfig::new(id(1))
            .with_asn(Asn(65001))
            .with_connect_retry(
                std::time::Duration::from_secs(20),
                std::time::Duration::from_secs(60),
            ),
        Some((5, 60)),
    );
    assert!(within(own, 20_000), "{own} ms");
}

#[test]
fn a_new_announcement_implicitly_replaces_the_old_one() {
    let mut net = SimNet::new(T0, 1);
    net.add_node(open_engine(65001, 1));
    net.add_node(open_engine(65002, 2));
    peer(&mut net, (1, 65001), (2, 65002));
    net.inject(id(1), Event::Originate(route_with("a/b", |a| a.med = 10)));
    net.run_for(2_000);
    net.inject(id(1), Event::Originate(route_with("a/b", |a| a.med = 20)));
    net.run_for(100);
    let e2 = net.engine(&id(2)).unwrap();
    assert_eq!(e2.paths(&p("a/b")).len(), 1);
    assert_eq!(e2.best(&p("a/b")).unwrap().attrs.med, 20);
}

#[test]
fn explicit_withdrawal_removes_the_route_downstream() {
    let mut net = SimNet::new(T0, 1);
    for (n, asn) in [(1, 65001), (2, 65002), (3, 65003)] {
        net.add_node(open_engine(asn, n));
    }
    peer(&mut net, (1, 65001), (2, 65002));
    peer(&mut net, (2, 65002), (3, 65003));
    net.inject(id(1), Event::Originate(route("a/b", "x")));
    net.run_for(3_000);
    assert!(best(&net, 3, "a/b").is_some());
    net.inject(id(1), Event::WithdrawLocal(RouteKey::new(p("a/b"))));
    net.run_for(100);
    assert_eq!(best(&net, 2, "a/b"), None);
    assert_eq!(best(&net, 3, "a/b"), None);
    assert_eq!(net.engine(&id(3)).unwrap().loc_rib_len(), 0);
}

#[test]
fn a_burst_of_originations_becomes_one_update_per_peer() {
    let mut net = SimNet::new(T0, 1);
    net.add_node(open_engine(65001, 1));
    net.add_node(open_engine(65002, 2));
    peer(&mut net, (1, 65001), (2, 65002));
    net.run_for(2_000);
    let before = updates_sent(&net, 1, 2);
    let burst: Vec<Event> = (0..100)
        .map(|i| Event::Originate(route(&format!("tools/t{i}"), "x")))
        .collect();
    let now = net.now();
    let actions = net.engine_mut(&id(1)).unwrap().handle_all(now, burst);
    let updates: Vec<&Update> = actions
        .iter()
        .filter_map(|a| match a {
            Action::Send(_, Message::Update(u)) => Some(u),
            _ => None,
        })
        .collect();
    assert_eq!(updates.len(), 1);
    assert_eq!(updates[0].announce.len(), 100);
    assert_eq!(updates_sent(&net, 1, 2), before);
}

#[test]
fn large_bursts_are_split_at_the_configured_size() {
    let mut c = cfg(65001, 1);
    c.max_routes_per_update = 30;
    let mut net = SimNet::new(T0, 1);
    net.add_node(Engine::new(c).with_policy(Arc::new(AcceptAll)));
    net.add_node(open_engine(65002, 2));
    peer(&mut net, (1, 65001), (2, 65002));
    net.run_for(2_000);
    let burst: Vec<Event> = (0..100)
        .map(|i| Event::Originate(route(&format!("tools/t{i}"), "x")))
        .collect();
    let now = net.now();
    let actions = net.engine_mut(&id(1)).unwrap().handle_all(now, burst);
    let sizes: Vec<usize> = actions
        .iter()
        .filter_map(|a| match a {
            Action::Send(_, Message::Update(u)) => Some(u.announce.len()),
            _ => None,
        })
        .collect();
    assert_eq!(sizes, vec![30, 30, 30, 10]);
}

#[test]
fn session_loss_without_graceful_restart_withdraws_everything_from_the_peer() {
    let mut c1 = cfg(65001, 1);
    c1.capabilities.graceful_restart = None;
    let mut net = SimNet::new(T0, 1);
    net.add_node(Engine::new(c1).with_policy(Arc::new(AcceptAll)));
    net.add_node(open_engine(65002, 2));
    peer(&mut net, (1, 65001), (2, 65002));
    net.inject(id(1), Event::Originate(route("a/b", "x")));
    net.inject(id(1), Event::Originate(route("a/c", "x")));
    net.run_for(2_000);
    assert_eq!(net.engine(&id(2)).unwrap().loc_rib_len(), 2);
    net.kill(id(1));
    net.run_for(10);
    let e2 = net.engine(&id(2)).unwrap();
    assert_eq!(e2.loc_rib_len(), 0);
    assert!(e2.adj_rib_in_pre(&id(1)).is_empty());
    assert!(
        net.log
            .iter()
            .any(|(_, n, a)| *n == id(2) && matches!(a, Action::SessionDown { .. }))
    );
}

#[test]
fn graceful_restart_keeps_routes_stale_then_purges_what_was_not_resent() {
    let mut net = SimNet::new(T0, 1);
    net.add_node(open_engine(65001, 1));
    net.add_node(open_engine(65002, 2));
    peer(&mut net, (1, 65001), (2, 65002));
    net.inject(id(1), Event::Originate(route("a/keep", "x")));
    net.inject(id(1), Event::Originate(route("a/gone", "x")));
    net.run_for(2_000);
    net.kill(id(1));
    net.run_for(10);
    // Still usable while the peer restarts.
    let e2 = net.engine(&id(2)).unwrap();
    assert_eq!(e2.loc_rib_len(), 2);
    assert!(e2.paths(&p("a/keep"))[0].stale);
    // The peer comes back with only one of its routes.
    net.add_node(open_engine(65001, 1));
    net.inject(
        id(1),
        Event::AddPeer(PeerConfig::new(id(2)).with_asn(Asn(65002))),
    );
    net.inject(id(1), Event::Originate(route("a/keep", "x")));
    net.run_for(5_000);
    assert!(established(&net, 2, 1));
    let e2 = net.engine(&id(2)).unwrap();
    assert!(e2.best(&p("a/keep")).is_some());
    assert!(!e2.paths(&p("a/keep"))[0].stale);
    assert_eq!(e2.best(&p("a/gone")), None, "purged at end-of-RIB");
}

#[test]
fn graceful_restart_purges_stale_routes_when_the_peer_never_returns() {
    let mut net = SimNet::new(T0, 1);
    net.add_node(open_engine(65001, 1));
    net.add_node(open_engine(65002, 2));
    peer(&mut net, (1, 65001), (2, 65002));
    net.inject(id(1), Event::Originate(route("a/b", "x")));
    net.run_for(2_000);
    net.kill(id(1));
    net.run_for(119_000);
    assert!(best(&net, 2, "a/b").is_some());
    net.run_for(2_000);
    assert_eq!(best(&net, 2, "a/b"), None);
}

#[test]
fn exceeding_max_prefix_tears_the_session_down_with_a_cease() {
    let mut net = SimNet::new(T0, 1);
    net.add_node(open_engine(65001, 1));
    net.add_node(open_engine(65002, 2));
    net.link(id(1), id(2));
    net.inject(
        id(1),
        Event::AddPeer(PeerConfig::new(id(2)).with_asn(Asn(65002))),
    );
    net.inject(
        id(2),
        Event::AddPeer(
            PeerConfig::new(id(1))
                .with_asn(Asn(65001))
                .with_max_prefix(5),
        ),
    );
    for i in 0..10 {
        net.inject(id(1), Event::Originate(route(&format!("t/{i}"), "x")));
    }
    net.run_for(3_000);
    let cease = net.log.iter().any(|(_, n, a)| {
        *n == id(2)
            && matches!(a, Action::Send(_, Message::Notification(nf))
                if nf.code == ErrorCode::Cease && nf.subcode == subcode::MAX_PREFIX)
    });
    assert!(cease, "max-prefix NOTIFICATION sent");
    assert_eq!(net.engine(&id(2)).unwrap().loc_rib_len(), 0);
}

#[test]
fn no_export_stays_inside_the_receiving_as_and_no_advertise_stays_on_the_node() {
    let mut net = SimNet::new(T0, 1);
    for (n, asn) in [(1, 65001), (2, 65002), (3, 65003), (4, 65002)] {
        net.add_node(open_engine(asn, n));
    }
    peer(&mut net, (1, 65001), (2, 65002));
    peer(&mut net, (2, 65002), (3, 65003));
    peer(&mut net, (2, 65002), (4, 65002));
    net.inject(
        id(1),
        Event::Originate(route_with("ne/x", |a| {
            a.communities = vec![Community::NO_EXPORT]
        })),
    );
    net.inject(
        id(1),
        Event::Originate(route_with("na/x", |a| {
            a.communities = vec![Community::NO_ADVERTISE]
        })),
    );
    net.run_for(3_000);
    // NO_EXPORT: node 1 itself must not export it to AS 65002 either.
    assert_eq!(best(&net, 2, "ne/x"), None);
    assert_eq!(best(&net, 2, "na/x"), None);

    // A NO_EXPORT route that enters AS 65002 (set by 2's origination) reaches
    // its internal peer 4 but not AS 65003.
    net.inject(
        id(2),
        Event::Originate(route_with("ne/y", |a| {
            a.communities = vec![Community::NO_EXPORT]
        })),
    );
    net.run_for(100);
    assert!(best(&net, 4, "ne/y").is_some());
    assert_eq!(best(&net, 3, "ne/y"), None);
}

#[test]
fn route_reflector_reflects_client_routes_with_originator_and_cluster_list() {
    let mut rr = cfg(65000, 10);
    rr.cluster_id = Some(ClusterId(1));
    let mut net = SimNet::new(T0, 1);
    net.add_node(Engine::new(rr));
    net.add_node(Engine::new(cfg(65000, 11)));
    net.add_node(Engine::new(cfg(65000, 12)));
    for c in [11, 12] {
        net.link(id(10), id(c));
        net.inject(
            id(10),
            Event::AddPeer(
                PeerConfig::new(id(c))
                    .with_asn(Asn(65000))
                    .with_rr_client(true),
            ),
        );
        net.inject(
            id(c),
            Event::AddPeer(PeerConfig::new(id(10)).with_asn(Asn(65000))),
        );
    }
    net.inject(id(11), Event::Originate(route("fin/audit", "auditor")));
    net.run_for(3_000);
    let r = best(&net, 12, "fin/audit").expect("reflected to the other client");
    assert_eq!(r.attrs.originator, Some(id(11)));
    assert_eq!(r.attrs.cluster_list, vec![ClusterId(1)]);
    assert!(r.attrs.as_path.is_empty());
    // The originating client would see its own id as originator: excluded.
    let e11 = net.engine(&id(11)).unwrap();
    assert_eq!(e11.paths(&p("fin/audit")).len(), 1);
}

#[test]
fn a_reflector_does_not_grow_a_cluster_list_past_what_the_wire_carries() {
    use crate::core::attrs::MAX_CLUSTER_LIST;
    let mut c = cfg(65000, 10);
    c.cluster_id = Some(ClusterId(1));
    let mut rr = Engine::new(c);
    for n in [11, 12] {
        let client = passive(n, 65000).with_rr_client(true);
        bring_up(&mut rr, T0, client, Asn(65000), caps(), 90);
    }
    let list = |n: usize| -> Vec<ClusterId> { (100..100 + n as u32).map(ClusterId).collect() };
    let routes = vec![
        route_with("fin/fits", |a| a.cluster_list = list(MAX_CLUSTER_LIST - 1)),
        route_with("fin/full", |a| a.cluster_list = list(MAX_CLUSTER_LIST)),
    ];
    announce(&mut rr, T0, 11, routes);
    let out: Vec<Prefix> = rr
        .adj_rib_out(&id(12))
        .into_iter()
        .map(|r| r.prefix)
        .collect();
    assert_eq!(out, vec![p("fin/fits")], "one more id would not encode");
    assert_eq!(
        rr.export_decision(&p("fin/full"), &id(12)).err(),
        Some(NotExported::ClusterListTooLong)
    );
}

/// Accepts everything and tags what it exports with one community.
#[derive(Debug)]
struct TagOnExport;

impl RoutePolicy for TagOnExport {
    fn import(&self, _: &PeerInfo, _: &Prefix, _: &mut Arc<PathAttrs>) -> bool {
        true
    }
    fn export(&self, _: &PeerInfo, _: &Prefix, attrs: &mut Arc<PathAttrs>) -> bool {
        Arc::make_mut(attrs).add_community(Community::standard(65001, 7));
        true
    }
}

#[test]
fn a_peer_filling_the_communities_cannot_make_our_update_unencodable() {
    // A stranger sends routes with as many communities as the wire
    // carries; our export policy adds one. Such a route is not exported
    // (and the rest of the UPDATE still goes) instead of failing to encode.
    use crate::core::attrs::MAX_COMMUNITIES;
    let mut e = Engine::new(cfg(65001, 1)).with_policy(Arc::new(TagOnExport));
    bring_up(&mut e, T0, passive(2, 65002), Asn(65002), caps(), 90);
    bring_up(&mut e, T0, passive(3, 65003), Asn(65003), caps(), 90);
    let full = (0..MAX_COMMUNITIES as u16).map(|i| Community::standard(65002, i));
    let routes = vec![
        route_with("a/full", |a| {
            a.as_path = vec![Asn(65002)];
            a.communities = full.collect();
        }),
        route_with("a/plain", |a| a.as_path = vec![Asn(65002)]),
    ];
    announce(&mut e, T0, 2, routes);
    assert!(e.best(&p("a/full")).is_some(), "accepted here");
    let out: Vec<Prefix> = e
        .adj_rib_out(&id(3))
        .into_iter()
        .map(|r| r.prefix)
        .collect();
    assert_eq!(out, vec![p("a/plain")]);
    assert_eq!(
        e.export_decision(&p("a/full"), &id(3)).err(),
        Some(NotExported::TooManyAttributes)
    );
}

#[test]
fn without_a_reflector_internal_routes_are_not_passed_between_internal_peers() {
    let mut net = SimNet::new(T0, 1);
    for n in [10, 11, 12] {
        net.add_node(Engine::new(cfg(65000, n)));
    }
    peer(&mut net, (10, 65000), (11, 65000));
    peer(&mut net, (10, 65000), (12, 65000));
    net.inject(id(11), Event::Originate(route("fin/audit", "auditor")));
    net.run_for(3_000);
    assert!(best(&net, 10, "fin/audit").is_some());
    assert_eq!(best(&net, 12, "fin/audit"), None);
}

#[test]
fn summary_only_aggregate_replaces_more_specifics_and_follows_them() {
    let mut c1 = cfg(65001, 1);
    c1.aggregates = vec![AggregateConfig {
        prefix: p("coding/*"),
        summary_only: true,
        communities: vec![],
    }];
    let mut net = SimNet::new(T0, 1);
    net.add_node(Engine::new(c1).with_policy(Arc::new(AcceptAll)));
    net.add_node(open_engine(65002, 2));
    net.add_node(open_engine(65003, 3));
    peer(&mut net, (1, 65001), (2, 65002));
    peer(&mut net, (3, 65003), (1, 65001));
    net.inject(
        id(1),
        Event::Originate(route_with("coding/ts/lint", |a| {
            a.capabilities = vec!["typescript".into()]
        })),
    );
    // A contributor learned from AS 65003.
    net.inject(
        id(3),
        Event::Originate(route_with("coding/rust/fmt", |a| {
            a.capabilities = vec!["rust".into()]
        })),
    );
    net.run_for(3_000);
    let e2 = net.engine(&id(2)).unwrap();
    let agg = e2.best(&p("coding/*")).expect("aggregate advertised");
    assert_eq!(e2.loc_rib_len(), 1, "more specifics suppressed");
    let aggr = agg.attrs.aggregator.as_ref().unwrap();
    assert_eq!(aggr.asn, Asn(65001));
    assert_eq!(aggr.as_set, vec![Asn(65003)]);
    assert!(agg.attrs.has_capability("rust") && agg.attrs.has_capability("typescript"));
    // AS 65003 sees its own ASN in the AS set: a loop, not a route.
    assert_eq!(best(&net, 3, "coding/*"), None);
    // Both contributors gone: the aggregate goes too.
    net.inject(
        id(1),
        Event::WithdrawLocal(RouteKey::new(p("coding/ts/lint"))),
    );
    net.inject(
        id(3),
        Event::WithdrawLocal(RouteKey::new(p("coding/rust/fmt"))),
    );
    net.run_for(100);
    assert_eq!(net.engine(&id(2)).unwrap().loc_rib_len(), 0);
}

#[test]
fn aggregate_without_summary_only_keeps_advertising_the_more_specifics() {
    let mut c1 = cfg(65001, 1);
    c1.aggregates = vec![AggregateConfig {
        prefix: p("coding/*"),
        summary_only: false,
        communities: vec![],
    }];
    let mut net = SimNet::new(T0, 1);
    net.add_node(Engine::new(c1).with_policy(Arc::new(AcceptAll)));
    net.add_node(open_engine(65002, 2));
    peer(&mut net, (1, 65001), (2, 65002));
    net.inject(id(1), Event::Originate(route("coding/ts/lint", "x")));
    net.run_for(3_000);
    let e2 = net.engine(&id(2)).unwrap();
    assert!(e2.best(&p("coding/*")).is_some());
    assert!(e2.best(&p("coding/ts/lint")).is_some());
    // Lookups pick the most specific.
    assert_eq!(
        e2.lookup(&p("coding/ts/lint")).unwrap().prefix,
        p("coding/ts/lint")
    );
    assert_eq!(
        e2.lookup(&p("coding/go/vet")).unwrap().prefix,
        p("coding/*")
    );
    assert_eq!(e2.next_hop(&p("coding/go/vet")).unwrap().1, Some(id(1)));
}

#[test]
fn reloading_policy_re_evaluates_kept_pre_policy_routes() {
    let mut net = SimNet::new(T0, 1);
    net.add_node(open_engine(65001, 1));
    net.add_node(Engine::new(cfg(65002, 2)));
    peer(&mut net, (1, 65001), (2, 65002));
    net.inject(id(1), Event::Originate(route("a/b", "x")));
    net.run_for(2_000);
    let e2 = net.engine(&id(2)).unwrap();
    assert_eq!(e2.best(&p("a/b")), None);
    assert_eq!(e2.adj_rib_in_pre(&id(1)).len(), 1, "kept before policy");
    assert!(e2.adj_rib_in_post(&id(1)).is_empty());
    net.inject(id(2), Event::PolicyReloaded(Arc::new(AcceptAll)));
    net.run_for(10);
    assert!(best(&net, 2, "a/b").is_some());
}

#[test]
fn locally_originated_routes_are_dumped_to_a_peer_that_comes_up_later() {
    let mut net = SimNet::new(T0, 1);
    net.add_node(open_engine(65001, 1));
    net.add_node(open_engine(65002, 2));
    net.inject(id(1), Event::Originate(route("early/bird", "x")));
    net.run_for(10);
    peer(&mut net, (1, 65001), (2, 65002));
    net.run_for(2_000);
    assert!(best(&net, 2, "early/bird").is_some());
    assert_eq!(
        net.engine(&id(1))
            .unwrap()
            .adj_rib_out(&id(2))
            .iter()
            .map(|r| r.prefix.clone())
            .collect::<Vec<_>>(),
        vec![p("early/bird")]
    );
    assert!(
        net.engine(&id(1))
            .unwrap()
            .advertised_to(&id(2), &p("early/bird"))
    );
}

#[test]
fn a_connection_from_an_unknown_node_is_refused() {
    let mut e = open_engine(65001, 1);
    let actions = e.handle(
        T0,
        Event::Connected {
            peer: id(99),
            outbound: false,
        },
    );
    assert!(matches!(&actions[..], [Action::Refuse(n, nf)]
        if *n == id(99) && nf.code == ErrorCode::Cease));
}

#[test]
fn a_wrong_asn_in_open_is_refused_and_no_session_forms() {
    let mut net = SimNet::new(T0, 1);
    net.add_node(open_engine(65001, 1));
    net.add_node(open_engine(65002, 2));
    net.link(id(1), id(2));
    net.inject(
        id(1),
        Event::AddPeer(PeerConfig::new(id(2)).with_asn(Asn(65099))),
    );
    net.inject(
        id(2),
        Event::AddPeer(PeerConfig::new(id(1)).with_asn(Asn(65001))),
    );
    net.run_for(3_000);
    assert!(!established(&net, 1, 2));
    let bad_as = net.log.iter().any(|(_, n, a)| {
        *n == id(1)
            && matches!(a, Action::Send(_, Message::Notification(nf))
                if nf.code == ErrorCode::Open && nf.subcode == subcode::BAD_PEER_AS)
    });
    assert!(bad_as);
}

/// Engines driven directly (no simulator): sessions are brought up by
/// feeding the peer's OPEN and KEEPALIVE.
mod history {
    use super::*;
    use proptest::prelude::*;

    const PEERS: [(u64, u32); 3] = [(1, 65001), (2, 65002), (3, 65003)];

    fn establish(e: &mut Engine, node: NodeId, asn: Asn) {
        crate::sim::bring_up_passive(e, T0, node, asn, 0);
    }

    fn engine() -> Engine {
        let mut c = cfg(65000, 100);
        c.capabilities.graceful_restart = None;
        c.aggregates = vec![AggregateConfig {
            prefix: p("a/*"),
            summary_only: true,
            communities: vec![],
        }];
        let mut e = Engine::new(c).with_policy(Arc::new(AcceptAll));
        for (n, asn) in PEERS {
            establish(&mut e, id(n), Asn(asn));
        }
        e
    }

    #[derive(Debug, Clone)]
    enum Op {
        Announce {
            peer: usize,
            prefix: usize,
            attrs: usize,
        },
        Withdraw {
            peer: usize,
            prefix: usize,
        },
        Bounce {
            peer: usize,
        },
        Local {
            prefix: usize,
            on: bool,
        },
    }

    const PREFIXES: [&str; 5] = ["a/x", "a/y", "b/z", "a/*", "b/*"];

    fn attrs(k: usize, peer_asn: u32) -> Arc<PathAttrs> {
        let mut path = vec![Asn(peer_asn)];
        path.extend((0..k % 3).map(|i| Asn(64600 + i as u32)));
        Arc::new(PathAttrs {
            agent: AgentId::new(&format!("ag{k}")),
            as_path: path,
            med: (k as u32 % 2) * 10,
            origin_time: Millis(1000 + (k as u64 % 2)),
            ..Default::default()
        })
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            4 => (0..3usize, 0..PREFIXES.len(), 0..6usize)
                .prop_map(|(peer, prefix, attrs)| Op::Announce { peer, prefix, attrs }),
            2 => (0..3usize, 0..PREFIXES.len()).prop_map(|(peer, prefix)| Op::Withdraw { peer, prefix }),
            1 => (0..3usize).prop_map(|peer| Op::Bounce { peer }),
            1 => (0..PREFIXES.len(), any::<bool>()).prop_map(|(prefix, on)| Op::Local { prefix, on }),
        ]
    }

    fn update(e: &mut Engine, peer: usize, u: Update) {
        let (n, _) = PEERS[peer];
        e.handle(
            T0,
            Event::Message {
                peer: id(n),
                msg: Message::Update(u),
            },
        );
    }

    type LocView = Vec<(String, String, Vec<u32>)>;
    type OutView = Vec<Vec<(String, Vec<u32>)>>;

    /// Comparable view of an engine's tables.
    fn tables(e: &Engine) -> (LocView, OutView) {
        let loc = e
            .loc_rib()
            .into_iter()
            .map(|r| {
                (
                    r.prefix.to_string(),
                    r.attrs.agent.to_string(),
                    r.attrs.as_path.iter().map(|a| a.0).collect(),
                )
            })
            .collect();
        let out = PEERS
            .iter()
            .map(|(n, _)| {
                e.adj_rib_out(&id(*n))
                    .into_iter()
                    .map(|r| {
                        (
                            r.prefix.to_string(),
                            r.attrs.as_path.iter().map(|a| a.0).collect(),
                        )
                    })
                    .collect()
            })
            .collect();
        (loc, out)
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(128))]

        /// Whatever happened before, the tables equal those of a fresh engine
        /// that is only told the routes that survived.
        #[test]
        fn tables_depend_only_on_the_surviving_routes(ops in prop::collection::vec(op(), 1..40)) {
            let mut e = engine();
            // What each peer and the node itself currently announce.
            let mut live: std::collections::BTreeMap<(usize, usize), usize> = Default::default();
            let mut local: std::collections::BTreeSet<usize> = Default::default();
            for o in &ops {
                match *o {
                    Op::Announce { peer, prefix, attrs: k } => {
                        let r = Route::new(p(PREFIXES[prefix]), attrs(k, PEERS[peer].1));
                        update(&mut e, peer, Update { announce: vec![r], ..Default::default() });
                        live.insert((peer, prefix), k);
                    }
                    Op::Withdraw { peer, prefix } => {
                        let w = RouteKey::new(p(PREFIXES[prefix]));
                        update(&mut e, peer, Update { withdraw: vec![w], ..Default::default() });
                        live.remove(&(peer, prefix));
                    }
                    Op::Bounce { peer } => {
                        let (n, asn) = PEERS[peer];
                        e.handle(T0, Event::Disconnected { peer: id(n) });
                        e.handle(T0, Event::RemovePeer(id(n)));
                        establish(&mut e, id(n), Asn(asn));
                        live.retain(|(pp, _), _| *pp != peer);
                    }
                    Op::Local { prefix, on } => {
                        let key = RouteKey::new(p(PREFIXES[prefix]));
                        if on {
                            e.handle(T0, Event::Originate(route(PREFIXES[prefix], "local")));
                            local.insert(prefix);
                        } else {
                            e.handle(T0, Event::WithdrawLocal(key));
                            local.remove(&prefix);
                        }
                    }
                }
            }
            let mut fresh = engine();
            for ((peer, prefix), k) in &live {
                let r = Route::new(p(PREFIXES[*prefix]), attrs(*k, PEERS[*peer].1));
                update(&mut fresh, *peer, Update { announce: vec![r], ..Default::default() });
            }
            for prefix in &local {
                fresh.handle(T0, Event::Originate(route(PREFIXES[*prefix], "local")));
            }
            prop_assert_eq!(tables(&e), tables(&fresh));
        }
    }
}

// ----- hostile peers: what one peer can make the engine keep or do -----

/// Brings up a session with `node` (passive, in `asn`) whose OPEN offers
/// `caps` and `hold` seconds, on an engine driven directly.
pub(super) fn bring_up(
    e: &mut Engine,
    now: Millis,
    pc: PeerConfig,
    asn: Asn,
    caps: Capabilities,
    hold: u16,
) -> Vec<Action> {
    let node = pc.node;
    let mut out = e.handle(now, Event::AddPeer(pc));
    out.extend(e.handle(
        now,
        Event::Connected {
            peer: node,
            outbound: false,
        },
    ));
    let open = crate::core::message::Open {
        version: crate::core::message::PROTOCOL_VERSION,
        asn,
        node,
        hold_time: hold,
        capabilities: caps,
        federation: e.config().federation.clone(),
        cert: None,
    };
    for msg in [Message::Open(open), Message::Keepalive] {
        out.extend(e.handle(now, Event::Message { peer: node, msg }));
    }
    out
}

/// An engine with `cfg` and an accept-all policy, every peer in `peers`
/// (node, ASN) established; each peer's OPEN offers our capabilities as
/// `offer` changes them.
pub(super) fn engine_with_peers(
    cfg: EngineConfig,
    peers: &[(u64, u32)],
    offer: impl Fn(&mut Capabilities),
) -> Engine {
    let mut e = Engine::new(cfg).with_policy(Arc::new(AcceptAll));
    for &(node, asn) in peers {
        let mut caps = e.config().capabilities.clone();
        offer(&mut caps);
        bring_up(&mut e, T0, passive(node, asn), Asn(asn), caps, 90);
    }
    e
}

/// `u` from peer `from`, handled at `at`.
pub(super) fn update_from(e: &mut Engine, at: Millis, from: u64, u: Update) -> Vec<Action> {
    e.handle(
        at,
        Event::Message {
            peer: id(from),
            msg: Message::Update(u),
        },
    )
}

/// An UPDATE announcing `r` alone.
pub(super) fn announcing(r: Route) -> Update {
    Update {
        announce: vec![r],
        ..Default::default()
    }
}

/// The AS path of the best route for `prefix`, as numbers.
pub(super) fn best_path_of(e: &Engine, prefix: &Prefix) -> Option<Vec<u32>> {
    e.best(prefix)
        .map(|r| r.attrs.as_path.iter().map(|a| a.0).collect())
}

fn caps() -> Capabilities {
    Capabilities {
        unreachable: Default::default(),
        tombstones: Default::default(),
        route_refresh: true,
        graceful_restart: Some(u16::MAX),
        add_path: false,
        multipath: false,
        role: None,
    }
}

pub(super) fn passive(n: u64, asn: u32) -> PeerConfig {
    PeerConfig::new(id(n)).with_asn(Asn(asn)).with_passive(true)
}

fn announce(e: &mut Engine, now: Millis, from: u64, routes: Vec<Route>) -> Vec<Action> {
    e.handle(
        now,
        Event::Message {
            peer: id(from),
            msg: Message::Update(Update {
                announce: routes,
                ..Default::default()
            }),
        },
    )
}

fn sent_notification(out: &[Action], code: ErrorCode, sub: u8) -> bool {
    out.iter().any(|a| {
        matches!(a, Action::Send(_, Message::Notification(n)) if n.code == code && n.subcode == sub)
    })
}

fn rib_changes(out: &[Action]) -> Vec<&RibChange> {
    out.iter()
        .filter_map(|a| match a {
            Action::RibChanges(c) => Some(c),
            _ => None,
        })
        .flatten()
        .collect()
}

#[test]
fn a_policy_reload_records_the_best_paths_it_changes_but_not_the_adj_rib_in() {
    // Regression: a reload once turned every RIB record off while it
    // re-imported, so the store and the MCP front never heard that a path
    // policy now accepts became best.
    let mut e = Engine::new(cfg(65001, 1));
    bring_up(&mut e, T0, passive(2, 65002), Asn(65002), caps(), 90);
    announce(&mut e, T0, 2, vec![route("a/b", "x")]);
    assert_eq!(e.best(&p("a/b")), None, "RFC 8212: rejected at first");
    let out = e.handle(T0, Event::PolicyReloaded(Arc::new(AcceptAll)));
    assert!(e.best(&p("a/b")).is_some());
    let changes = rib_changes(&out);
    assert!(
        changes
            .iter()
            .any(|c| matches!(c, RibChange::Loc { prefix, best: Some(_) } if *prefix == p("a/b"))),
        "the new best path is recorded: {changes:?}"
    );
    assert!(
        !changes.iter().any(|c| matches!(c, RibChange::AdjIn { .. })),
        "the pre-policy view did not change: {changes:?}"
    );
}

#[test]
fn without_adj_rib_records_only_the_loc_rib_changes_are_emitted() {
    let mut c = cfg(65001, 1);
    c.emit_adj_rib_changes = false;
    let mut e = Engine::new(c);
    e.handle(T0, Event::PolicyReloaded(Arc::new(AcceptAll)));
    bring_up(&mut e, T0, passive(2, 65002), Asn(65002), caps(), 90);
    bring_up(&mut e, T0, passive(3, 65003), Asn(65003), caps(), 90);
    let out = announce(&mut e, T0, 2, vec![route("a/b", "x")]);
    let changes = rib_changes(&out);
    assert!(
        e.adj_rib_out(&id(3)).iter().any(|r| r.prefix == p("a/b")),
        "sent on to 3"
    );
    assert_eq!(changes.len(), 1, "{changes:?}");
    assert!(matches!(changes[0], RibChange::Loc { best: Some(_), .. }));
}

#[test]
fn rejected_routes_over_the_bound_are_counted_and_not_kept() {
    // RFC 8212 defaults: everything from another AS is rejected.
    let mut c = cfg(65001, 1);
    c.max_rejected_per_peer = 5;
    let mut e = Engine::new(c);
    bring_up(&mut e, T0, passive(2, 65002), Asn(65002), caps(), 90);
    let routes = (0..20).map(|i| route(&format!("junk/{i}"), "x")).collect();
    let out = announce(&mut e, T0, 2, routes);
    assert_eq!(e.adj_rib_in_pre(&id(2)).len(), 5);
    assert_eq!(e.stats().rejected_not_kept, 15);
    assert_eq!(e.stats().routes_rejected, 20);
    // The store is told to keep 5 and that the other 15 are gone.
    let (kept, gone) = out
        .iter()
        .filter_map(|a| match a {
            Action::RibChanges(c) => Some(c),
            _ => None,
        })
        .flatten()
        .fold((0, 0), |(k, g), c| match c {
            RibChange::AdjIn { route: Some(_), .. } => (k + 1, g),
            RibChange::AdjIn { route: None, .. } => (k, g + 1),
            _ => (k, g),
        });
    assert_eq!((kept, gone), (5, 15));
    // A kept one may still be replaced.
    announce(&mut e, T0, 2, vec![route("junk/0", "y")]);
    assert_eq!(e.adj_rib_in_pre(&id(2)).len(), 5);
}

#[test]
fn path_ids_without_add_path_reset_the_session() {
    let mut e = open_engine(65001, 1);
    bring_up(&mut e, T0, passive(2, 65002), Asn(65002), caps(), 90);
    let mut r = route("a/b", "x");
    r.path_id = 7;
    let out = announce(&mut e, T0, 2, vec![r]);
    assert!(
        sent_notification(&out, ErrorCode::Update, subcode::MALFORMED_ATTRIBUTE_LIST),
        "{out:?}"
    );
    assert_eq!(e.stats().path_id_refused, 1);
    assert_eq!(e.loc_rib_len(), 0);
    assert_ne!(e.peer_info(&id(2)).unwrap().state, PeerState::Established);
}

#[test]
fn route_refresh_is_answered_at_most_once_per_interval() {
    let mut e = open_engine(65001, 1);
    e.handle(T0, Event::Originate(route("a/b", "x")));
    bring_up(&mut e, T0, passive(2, 65002), Asn(65002), caps(), 90);
    let dumps = |out: &[Action]| {
        out.iter()
            .filter(|a| matches!(a, Action::Send(_, Message::Update(u)) if !u.announce.is_empty()))
            .count()
    };
    let t1 = T0.saturating_add_ms(20_000);
    let mut n = 0;
    for i in 0..50 {
        n += dumps(&e.handle(
            t1.saturating_add_ms(i),
            Event::Message {
                peer: id(2),
                msg: Message::RouteRefresh,
            },
        ));
    }
    assert_eq!(n, 1, "the first is answered at once, the rest wait");
    assert_eq!(e.stats().route_refresh_deferred, 49);
    // Merged into one answer when the interval is over.
    let due = e.next_deadline().unwrap();
    assert!(due <= t1.saturating_add_ms(10_000));
    let out = e.handle(t1.saturating_add_ms(10_000), Event::Tick);
    assert_eq!(dumps(&out), 1);
    let out = e.handle(t1.saturating_add_ms(30_000), Event::Tick);
    assert_eq!(dumps(&out), 0, "nothing more was asked");
}

#[test]
fn a_peers_graceful_restart_time_is_capped() {
    let mut e = open_engine(65001, 1);
    bring_up(&mut e, T0, passive(2, 65002), Asn(65002), caps(), 90);
    announce(&mut e, T0, 2, vec![route("a/b", "x")]);
    e.handle(T0, Event::Disconnected { peer: id(2) });
    let until = e.peer_info(&id(2)).unwrap().stale_until.unwrap();
    assert_eq!(
        until,
        T0.saturating_add_ms(600_000),
        "65535 s asked, 600 s kept"
    );
}

#[test]
fn a_discovered_peer_must_keep_a_hold_time() {
    let mut e = open_engine(65001, 1);
    let mut pc = PeerConfig::discovered(id(2), 100);
    pc.passive = true;
    let out = bring_up(&mut e, T0, pc, Asn(65002), caps(), 0);
    assert!(
        sent_notification(&out, ErrorCode::Open, subcode::UNACCEPTABLE_HOLD_TIME),
        "{out:?}"
    );
    // A configured neighbour may still agree on no keepalives.
    let mut e = open_engine(65001, 1);
    bring_up(&mut e, T0, passive(2, 65002), Asn(65002), caps(), 0);
    assert_eq!(e.peer_info(&id(2)).unwrap().state, PeerState::Established);
}

#[test]
fn every_peer_has_a_max_prefix_even_when_none_is_configured() {
    let mut c = cfg(65001, 1);
    c.max_routes_per_peer = 5;
    let mut e = Engine::new(c).with_policy(Arc::new(AcceptAll));
    bring_up(&mut e, T0, passive(2, 65002), Asn(65002), caps(), 90);
    let routes = (0..10).map(|i| route(&format!("t/{i}"), "x")).collect();
    let out = announce(&mut e, T0, 2, routes);
    assert!(
        sent_notification(&out, ErrorCode::Cease, subcode::MAX_PREFIX),
        "{out:?}"
    );
    assert_eq!(e.loc_rib_len(), 0);
}
