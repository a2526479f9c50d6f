//! The unreachable signal: stale paths through an AS that said it has no
//! route are dropped at once, come back when it announces again or when
//! the claim expires, and the signal is only sent and heeded where it was
//! negotiated.

use std::sync::Arc;

use super::tests::{T0, announcing, best_path_of, engine_with_peers, id, update_from};
use super::unreachable::CLAIM_TTL_MS;
use super::*;
use crate::core::ids::AgentId;
use crate::core::message::Update;

fn p() -> Prefix {
    Prefix::new("svc/tool").unwrap()
}

fn path(asns: &[u32]) -> Route {
    Route::new(
        p(),
        Arc::new(PathAttrs {
            agent: AgentId::new("agent"),
            as_path: asns.iter().map(|a| Asn(*a)).collect(),
            ..Default::default()
        }),
    )
}

/// An engine in AS 65000 with peers X (node 2, AS 65002) and Y (node 3,
/// AS 65003), both established, offering the signal when `signal`.
fn engine(signal: bool) -> Engine {
    let mut cfg = EngineConfig::new(Asn(65000), id(1));
    cfg.capabilities.unreachable = signal;
    engine_with_peers(cfg, &[(2, 65002), (3, 65003)], |c| c.unreachable = true)
}

fn best_path(e: &Engine) -> Option<Vec<u32>> {
    best_path_of(e, &p())
}

/// X has [65002, 65009]; Y has the longer [65003, 65002, 65009] through
/// X's AS. X withdraws, saying it has no route.
fn withdrawn_with_the_signal(e: &mut Engine) {
    update_from(e, T0, 2, announcing(path(&[65002, 65009])));
    update_from(e, T0, 3, announcing(path(&[65003, 65002, 65009])));
    assert_eq!(best_path(e), Some(vec![65002, 65009]));
    update_from(
        e,
        T0,
        2,
        Update {
            withdraw: vec![RouteKey::new(p())],
            unreachable: vec![p()],
            ..Default::default()
        },
    );
}

#[test]
fn a_path_through_an_as_that_has_no_route_is_not_explored() {
    let mut e = engine(true);
    withdrawn_with_the_signal(&mut e);
    assert_eq!(best_path(&e), None, "Y's path through X's AS is stale");
    assert_eq!(e.stats().unreachable_in, 1);
    // A path through X's AS that arrives later is stale too; one that
    // avoids it is used.
    let mut later = path(&[65003, 65007, 65002, 65009]);
    update_from(&mut e, T0, 3, announcing(later.clone()));
    assert_eq!(best_path(&e), None);
    later = path(&[65003, 65008, 65009]);
    update_from(&mut e, T0, 3, announcing(later));
    assert_eq!(best_path(&e), Some(vec![65003, 65008, 65009]));
}

#[test]
fn the_claim_ends_when_the_as_announces_again_or_expires() {
    let mut e = engine(true);
    withdrawn_with_the_signal(&mut e);
    assert_eq!(best_path(&e), None);
    // X announces the prefix again: Y's path competes again (and loses).
    update_from(&mut e, T0, 2, announcing(path(&[65002, 65010, 65009])));
    assert_eq!(best_path(&e), Some(vec![65002, 65010, 65009]));

    let mut e = engine(true);
    withdrawn_with_the_signal(&mut e);
    let deadline = e.next_deadline().expect("the claim's expiry is a deadline");
    assert!(deadline <= T0.saturating_add_ms(CLAIM_TTL_MS));
    e.handle(T0.saturating_add_ms(CLAIM_TTL_MS - 1), Event::Tick);
    assert_eq!(best_path(&e), None, "still claimed");
    e.handle(T0.saturating_add_ms(CLAIM_TTL_MS), Event::Tick);
    assert_eq!(
        best_path(&e),
        Some(vec![65003, 65002, 65009]),
        "expired: Y's path is used again (Y never withdrew it)"
    );
}

#[test]
fn without_the_capability_the_signal_is_ignored_and_not_sent() {
    let mut e = engine(false);
    withdrawn_with_the_signal(&mut e);
    assert_eq!(
        best_path(&e),
        Some(vec![65003, 65002, 65009]),
        "not negotiated: the withdrawal is an ordinary one"
    );
    assert_eq!(e.stats().unreachable_in, 0);
    // Y withdraws too; we have nothing left, but do not say so.
    let out = update_from(
        &mut e,
        T0,
        3,
        Update {
            withdraw: vec![RouteKey::new(p())],
            ..Default::default()
        },
    );
    for a in out {
        if let Action::Send(_, Message::Update(u)) = a {
            assert!(u.unreachable.is_empty());
        }
    }
}

#[test]
fn a_node_left_without_a_route_says_so_to_the_peers_it_had_told() {
    let mut e = engine(true);
    // Only X's path: we advertise it to Y.
    let out = update_from(&mut e, T0, 2, announcing(path(&[65002, 65009])));
    assert!(out.iter().any(|a| matches!(a, Action::Send(peer, Message::Update(u)) if *peer == id(3) && !u.announce.is_empty())));
    let out = update_from(
        &mut e,
        T0,
        2,
        Update {
            withdraw: vec![RouteKey::new(p())],
            ..Default::default()
        },
    );
    let to_y: Vec<&Update> = out
        .iter()
        .filter_map(|a| match a {
            Action::Send(peer, Message::Update(u)) if *peer == id(3) => Some(u),
            _ => None,
        })
        .collect();
    assert_eq!(to_y.len(), 1);
    assert_eq!(to_y[0].withdraw, vec![RouteKey::new(p())]);
    assert_eq!(to_y[0].unreachable, vec![p()], "no route left at all");
    assert_eq!(e.stats().unreachable_out, 1);
}

#[test]
fn claims_about_prefixes_we_do_not_hold_are_not_kept() {
    let mut e = engine(true);
    for i in 0..1_000 {
        update_from(
            &mut e,
            T0,
            2,
            Update {
                unreachable: vec![Prefix::new(&format!("junk/p{i}")).unwrap()],
                ..Default::default()
            },
        );
    }
    assert_eq!(e.stats().unreachable_in, 0, "nothing held, nothing kept");
    // Nor do they touch what comes later.
    update_from(&mut e, T0, 3, announcing(path(&[65003, 65002, 65009])));
    assert_eq!(best_path(&e), Some(vec![65003, 65002, 65009]));
}

#[test]
fn renewed_and_repeated_claims_do_not_grow_the_expiry_queue() {
    let mut e = engine(true);
    withdrawn_with_the_signal(&mut e);
    assert_eq!(e.claims.queued(), 1);
    // X says it again and again: the one claim is renewed in place.
    for i in 0..1_000 {
        update_from(
            &mut e,
            T0.saturating_add_ms(i),
            2,
            Update {
                unreachable: vec![p()],
                ..Default::default()
            },
        );
    }
    assert_eq!(e.claims.queued(), 1, "renewals add no entries");
    // Renewed at T0 + 999 ms: still standing when the first expiry comes.
    e.handle(T0.saturating_add_ms(CLAIM_TTL_MS), Event::Tick);
    assert_eq!(best_path(&e), None, "renewed, so not expired yet");
    e.handle(T0.saturating_add_ms(CLAIM_TTL_MS + 999), Event::Tick);
    assert_eq!(best_path(&e), Some(vec![65003, 65002, 65009]));

    // Claimed and ended by an announcement, over and over.
    let mut e = engine(true);
    withdrawn_with_the_signal(&mut e);
    for _ in 0..1_000 {
        update_from(&mut e, T0, 2, announcing(path(&[65002, 65009])));
        update_from(
            &mut e,
            T0,
            2,
            Update {
                withdraw: vec![RouteKey::new(p())],
                unreachable: vec![p()],
                ..Default::default()
            },
        );
    }
    assert!(e.claims.queued() <= 2 + 64, "{}", e.claims.queued());
    assert_eq!(best_path(&e), None);
}
