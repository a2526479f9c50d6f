//! The minimum route advertisement interval on the simulator: after an
//! UPDATE to a peer the next waits the interval (times 0.75 to 1), changes
//! in between are merged (the latest per route), and withdrawals go at once
//! unless the classic setting holds them too.

use std::sync::Arc;
use std::time::Duration;

use super::tests::{id, p, peer};
use super::*;
use crate::core::ids::AgentId;
use crate::sim::SimNet;

const T0: Millis = Millis(1_700_000_000_000);
const MRAI: Duration = Duration::from_secs(30);

fn route(prefix: &str) -> Route {
    Route::new(
        p(prefix),
        Arc::new(PathAttrs {
            agent: AgentId::new("agent"),
            ..Default::default()
        }),
    )
}

/// A (AS 65001, the interval on its side) and B (AS 65002), established,
/// nothing originated yet.
fn pair(withdrawals: bool) -> SimNet {
    let mut net = SimNet::new(T0, 1);
    net.add_node(
        Engine::new(EngineConfig::new(Asn(65001), id(1)).with_mrai(MRAI, withdrawals))
            .with_policy(Arc::new(AcceptAll)),
    );
    net.add_node(
        Engine::new(EngineConfig::new(Asn(65002), id(2))).with_policy(Arc::new(AcceptAll)),
    );
    peer(&mut net, (1, 65001), (2, 65002));
    net.run_for(2_000);
    assert!(
        net.engine(&id(2))
            .and_then(|e| e.peer_info(&id(1)))
            .is_some_and(|i| i.state == PeerState::Established)
    );
    net
}

fn at_b(net: &SimNet, prefix: &str) -> bool {
    net.engine(&id(2))
        .and_then(|e| e.best(&p(prefix)))
        .is_some()
}

/// Virtual milliseconds until `f` holds, in 100 ms steps, at most `max`.
fn until(net: &mut SimNet, max: u64, f: impl Fn(&SimNet) -> bool) -> Option<u64> {
    let mut t = 0;
    while t <= max {
        if f(net) {
            return Some(t);
        }
        net.run_for(100);
        t += 100;
    }
    None
}

#[test]
fn announcements_are_spaced_by_the_interval_with_jitter() {
    let mut net = pair(false);
    // The first announcement goes at once and starts the interval.
    net.inject(id(1), Event::Originate(route("a/one")));
    assert!(until(&mut net, 500, |n| at_b(n, "a/one")).is_some());
    net.run_for(1_000);
    net.inject(id(1), Event::Originate(route("a/two")));
    // Held: not there 5 s later; there once the interval (22.5 to 30 s
    // after the first) is over.
    net.run_for(5_000);
    assert!(!at_b(&net, "a/two"), "held by the interval");
    let waited = until(&mut net, 30_000, |n| at_b(n, "a/two")).expect("sent after the interval");
    let since_first = 6_000 + waited;
    assert!(
        (22_400..=30_600).contains(&since_first),
        "the next UPDATE {since_first} ms after the first"
    );
}

#[test]
fn withdrawals_go_at_once_and_held_changes_are_merged() {
    let mut net = pair(false);
    net.inject(id(1), Event::Originate(route("a/one")));
    assert!(until(&mut net, 500, |n| at_b(n, "a/one")).is_some());
    // During the interval: a route announced and withdrawn again, another
    // announced, and the first withdrawn.
    net.inject(id(1), Event::Originate(route("a/flap")));
    net.run_for(200);
    net.inject(id(1), Event::WithdrawLocal(RouteKey::new(p("a/flap"))));
    net.inject(id(1), Event::Originate(route("a/two")));
    net.run_for(200);
    net.inject(id(1), Event::WithdrawLocal(RouteKey::new(p("a/one"))));
    // The withdrawal goes at once; the announcement waits.
    assert!(
        until(&mut net, 500, |n| !at_b(n, "a/one")).is_some(),
        "withdrawn at once"
    );
    assert!(!at_b(&net, "a/two"));
    assert!(until(&mut net, 31_000, |n| at_b(n, "a/two")).is_some());
    // B never heard of the route that came and went while held.
    assert!(!at_b(&net, "a/flap"));
    let announced_flap = net.log.iter().any(|(_, n, a)| {
        *n == id(1)
            && matches!(a, Action::Send(to, Message::Update(u))
                if *to == id(2) && u.announce.iter().any(|r| r.prefix == p("a/flap")))
    });
    assert!(!announced_flap, "the flap was merged away");
}

#[test]
fn the_classic_setting_holds_withdrawals_too() {
    let mut net = pair(true);
    net.inject(id(1), Event::Originate(route("a/one")));
    assert!(until(&mut net, 500, |n| at_b(n, "a/one")).is_some());
    net.run_for(1_000);
    net.inject(id(1), Event::WithdrawLocal(RouteKey::new(p("a/one"))));
    net.run_for(5_000);
    assert!(at_b(&net, "a/one"), "the withdrawal waits for the interval");
    assert!(until(&mut net, 30_000, |n| !at_b(n, "a/one")).is_some());
}

#[test]
fn a_new_session_gets_the_whole_table_at_once() {
    let mut net = pair(false);
    net.inject(id(1), Event::Originate(route("a/one")));
    assert!(until(&mut net, 500, |n| at_b(n, "a/one")).is_some());
    net.inject(id(1), Event::Originate(route("a/two")));
    // The session resets while a/two is held: the new session's table dump
    // is not held back by the old interval.
    net.inject(
        id(2),
        Event::AdminEnable {
            peer: id(1),
            enabled: false,
        },
    );
    net.run_for(500);
    net.inject(
        id(2),
        Event::AdminEnable {
            peer: id(1),
            enabled: true,
        },
    );
    let up = until(&mut net, 20_000, |n| at_b(n, "a/one") && at_b(n, "a/two"));
    assert!(up.is_some_and(|t| t < 20_000), "{up:?}");
}
