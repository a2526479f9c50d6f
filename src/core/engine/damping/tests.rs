//! Flap damping in the engine, driven through the in-memory simulator: a
//! peer whose agent comes and goes is suppressed, the best path moves to the
//! alternative, and the path is reused exactly at its computed reuse time.

use std::sync::Arc;
use std::time::Duration;

use super::super::*;
use crate::core::decision::{Exclusion, Status};
use crate::core::engine::tests::{id, p, peer};
use crate::core::ids::AgentId;
use crate::sim::SimNet;

const T0: Millis = Millis(1_700_000_000_000);
const PREFIX: &str = "tools/flappy";

/// Small parameters: a minute's half-life, suppressed over 2500.
fn small() -> DampingConfig {
    DampingConfig {
        enabled: true,
        half_life: Duration::from_secs(60),
        suppress: 2500,
        reuse: 750,
        max_suppress: Duration::from_secs(600),
        ..DampingConfig::default()
    }
}

fn engine(asn: u32, n: u64, damping: DampingConfig) -> Engine {
    Engine::new(EngineConfig::new(Asn(asn), id(n)).with_damping(damping))
        .with_policy(Arc::new(AcceptAll))
}

/// A route whose origin time makes it win (1) or lose (2) at equal length.
fn route(agent: &str, origin: u64) -> Route {
    Route::new(
        p(PREFIX),
        Arc::new(PathAttrs {
            agent: AgentId::new(agent),
            origin_time: Millis(origin),
            ..Default::default()
        }),
    )
}

/// Node 1 (damping as given) hears PREFIX from 2 (preferred, flapping) and
/// from 3 (the alternative); `asn2` lets 2 be internal.
fn net(damping: DampingConfig, asn2: u32) -> SimNet {
    let mut net = SimNet::new(T0, 1);
    net.add_node(engine(65001, 1, damping));
    net.add_node(engine(asn2, 2, DampingConfig::default()));
    net.add_node(engine(65003, 3, DampingConfig::default()));
    peer(&mut net, (1, 65001), (2, asn2));
    peer(&mut net, (1, 65001), (3, 65003));
    net.inject(id(2), Event::Originate(route("flappy", 1)));
    net.inject(id(3), Event::Originate(route("steady", 2)));
    net.run_for(2_000);
    assert_eq!(agent_of_best(&net).as_deref(), Some("flappy"));
    net
}

fn agent_of_best(net: &SimNet) -> Option<String> {
    let r = net.engine(&id(1))?.best(&p(PREFIX))?;
    Some(r.attrs.agent.as_str().to_string())
}

/// Withdraws and re-announces 2's route `n` times, a second apart.
fn flap(net: &mut SimNet, n: usize) {
    for _ in 0..n {
        net.inject(id(2), Event::WithdrawLocal(route("flappy", 1).key()));
        net.run_for(1_000);
        net.inject(id(2), Event::Originate(route("flappy", 1)));
        net.run_for(1_000);
    }
}

fn report_of(net: &SimNet, peer: u64) -> PathReport {
    net.engine(&id(1))
        .unwrap()
        .paths(&p(PREFIX))
        .into_iter()
        .find(|r| r.peer == Some(id(peer)))
        .expect("path from the peer")
}

#[test]
fn a_flapping_path_is_suppressed_and_reused_exactly_at_its_reuse_time() {
    let mut net = net(small(), 65002);
    flap(&mut net, 2);
    // Two flaps (~1960): not suppressed, still best, penalty shown.
    let r = report_of(&net, 2);
    assert_eq!(r.status, Status::Best);
    let d = r.damping.expect("a flap record");
    assert!(
        !d.suppressed && d.penalty > 1900 && d.penalty < 2000,
        "{d:?}"
    );

    flap(&mut net, 1);
    let r = report_of(&net, 2);
    assert_eq!(r.status, Status::Excluded(Exclusion::Damped));
    let d = r.damping.expect("a flap record");
    assert!(d.suppressed && d.penalty > 2500, "{d:?}");
    let reuse_at = d.reuse_at.expect("a reuse time");
    assert_eq!(agent_of_best(&net).as_deref(), Some("steady"));
    // Forwarding leaves the damped path out.
    let f = net.engine(&id(1)).unwrap().forwarding(&p(PREFIX)).unwrap();
    assert_eq!(f.paths.len(), 1);
    assert_eq!(f.paths[0].0, Some(id(3)));
    // The engine asks to be woken for the reuse.
    assert!(
        net.engine(&id(1))
            .unwrap()
            .next_deadline()
            .is_some_and(|t| t <= reuse_at)
    );

    // About log2(2900/750) ≈ 1.95 half-lives after the last flap.
    let last_flap = net.now().0 - 1_000;
    let wait = reuse_at.0 - last_flap;
    assert!((110_000..125_000).contains(&wait), "{wait} ms");
    net.run_until(Millis(reuse_at.0 - 1));
    assert_eq!(agent_of_best(&net).as_deref(), Some("steady"));
    assert!(report_of(&net, 2).damping.unwrap().suppressed);
    net.run_until(reuse_at);
    assert_eq!(agent_of_best(&net).as_deref(), Some("flappy"));
    let r = report_of(&net, 2);
    assert_eq!(r.status, Status::Best);
    let d = r.damping.unwrap();
    assert!(
        !d.suppressed && d.reuse_at.is_none() && d.penalty <= 750,
        "{d:?}"
    );
}

#[test]
fn a_path_withdrawn_while_suppressed_comes_back_suppressed() {
    let mut net = net(small(), 65002);
    flap(&mut net, 3);
    net.inject(id(2), Event::WithdrawLocal(route("flappy", 1).key()));
    net.run_for(1_000);
    // Four withdrawals: the record outlives the path.
    net.inject(id(2), Event::Originate(route("flappy", 1)));
    net.run_for(1_000);
    assert_eq!(
        report_of(&net, 2).status,
        Status::Excluded(Exclusion::Damped)
    );
    assert_eq!(agent_of_best(&net).as_deref(), Some("steady"));
}

#[test]
fn attribute_changes_count_as_half_a_flap() {
    let mut net = net(small(), 65002);
    for i in 0..3u32 {
        let mut r = route("flappy", 1);
        Arc::make_mut(&mut r.attrs).med = i + 1;
        net.inject(id(2), Event::Originate(r));
        net.run_for(1_000);
    }
    let d = report_of(&net, 2).damping.expect("a flap record");
    assert!(
        d.penalty > 1400 && d.penalty <= 1500 && !d.suppressed,
        "{d:?}"
    );
}

#[test]
fn internal_peers_and_the_default_are_not_damped() {
    let mut net = net(small(), 65001);
    flap(&mut net, 5);
    let r = report_of(&net, 2);
    assert_eq!(r.status, Status::Best);
    assert_eq!(r.damping, None);

    let mut net = net_default();
    flap(&mut net, 5);
    let r = report_of(&net, 2);
    assert_eq!(r.status, Status::Best);
    assert_eq!(r.damping, None);
}

fn net_default() -> SimNet {
    net(DampingConfig::default(), 65002)
}
