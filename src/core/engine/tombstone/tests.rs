//! Tombstones: every path an origin's tombstone ends is dropped at once and
//! refused later, a newer origination is not, the tombstone is relayed once
//! to the peers that were sent the prefix, and it is neither sent nor
//! heeded where it was not negotiated, nor from our own AS, nor expired.

use std::sync::Arc;

use super::tests::{T0, announcing, best_path_of, engine_with_peers, id, update_from};
use super::*;
use crate::core::ids::AgentId;
use crate::core::message::Update;
use crate::core::proof::{AsnCert, Tombstone};

const ORIGIN: u32 = 65009;

fn p() -> Prefix {
    Prefix::new("svc/tool").unwrap()
}

fn path(asns: &[u32], origin_time: u64) -> Route {
    Route::new(
        p(),
        Arc::new(PathAttrs {
            agent: AgentId::new("agent"),
            as_path: asns.iter().map(|a| Asn(*a)).collect(),
            origin_time: Millis(origin_time),
            ..Default::default()
        }),
    )
}

fn tomb(asn: u32, ended: u64, expires: Millis) -> Arc<Tombstone> {
    Arc::new(Tombstone::unsigned(
        p(),
        Arc::new(AsnCert::unsigned(Asn(asn), id(9))),
        Millis(ended),
        T0,
        expires,
    ))
}

/// An engine in AS 65000 with peers X (2, AS 65002), Y (3, AS 65003) and
/// Z (4, AS 65004), established; tombstones offered when `on`.
fn engine(on: bool) -> Engine {
    let cfg = EngineConfig::new(Asn(65000), id(1)).with_tombstones(on);
    engine_with_peers(cfg, &[(2, 65002), (3, 65003), (4, 65004)], |c| {
        c.tombstones = true
    })
}

fn best_path(e: &Engine) -> Option<Vec<u32>> {
    best_path_of(e, &p())
}

/// The tombstones sent to each peer in `out`.
fn sent(out: &[Action]) -> Vec<(NodeId, usize, bool)> {
    out.iter()
        .filter_map(|a| match a {
            Action::Send(peer, Message::Update(u)) if !u.tombstones.is_empty() => Some((
                *peer,
                u.tombstones.len(),
                u.withdraw.iter().any(|k| k.prefix == p()),
            )),
            _ => None,
        })
        .collect()
}

/// X has [65002, ORIGIN] and Y [65003, ORIGIN], both of origin time 100;
/// X withdraws with the origin's tombstone.
fn tombstoned(e: &mut Engine, t: Arc<Tombstone>) -> Vec<Action> {
    update_from(e, T0, 2, announcing(path(&[65002, ORIGIN], 100)));
    update_from(e, T0, 3, announcing(path(&[65003, ORIGIN], 100)));
    assert!(best_path(e).is_some());
    update_from(
        e,
        T0,
        2,
        Update {
            withdraw: vec![RouteKey::new(p())],
            tombstones: vec![t],
            ..Default::default()
        },
    )
}

#[test]
fn every_path_of_the_ended_origination_is_dropped_and_refused_later() {
    let mut e = engine(true);
    let out = tombstoned(&mut e, tomb(ORIGIN, 100, T0.saturating_add_ms(60_000)));
    assert_eq!(
        best_path(&e),
        None,
        "Y's path to the same origination is dead"
    );
    assert_eq!(e.stats().tombstones_in, 1);
    let why = e.paths(&p());
    assert!(
        why.iter()
            .all(|r| r.status == crate::core::decision::Status::Excluded(Exclusion::Tombstoned))
    );
    // Relayed once, with the withdrawal, to the peers that were sent the
    // prefix (Y and Z had X's path), not back to X.
    let mut to = sent(&out);
    to.sort();
    assert_eq!(to, vec![(id(3), 1, true), (id(4), 1, true)]);
    // The same origination arriving later is refused; a newer one is used.
    update_from(&mut e, T0, 4, announcing(path(&[65004, ORIGIN], 100)));
    assert_eq!(best_path(&e), None);
    update_from(&mut e, T0, 4, announcing(path(&[65004, ORIGIN], 101)));
    assert_eq!(best_path(&e), Some(vec![65004, ORIGIN]));
}

#[test]
fn a_duplicate_or_an_old_replay_is_not_applied_or_relayed_again() {
    let mut e = engine(true);
    let t = tomb(ORIGIN, 100, T0.saturating_add_ms(60_000));
    tombstoned(&mut e, t.clone());
    // The origin comes back (origin time 200) through Z.
    update_from(&mut e, T0, 4, announcing(path(&[65004, ORIGIN], 200)));
    assert_eq!(best_path(&e), Some(vec![65004, ORIGIN]));
    // The old tombstone again (a duplicate from Y, a replay): nothing.
    let out = update_from(
        &mut e,
        T0,
        3,
        Update {
            tombstones: vec![t, tomb(ORIGIN, 50, T0.saturating_add_ms(60_000))],
            ..Default::default()
        },
    );
    assert!(sent(&out).is_empty());
    assert_eq!(e.stats().tombstones_duplicate, 2);
    assert_eq!(
        best_path(&e),
        Some(vec![65004, ORIGIN]),
        "the newer origination lives"
    );
    // One ending the newer origination is new.
    update_from(
        &mut e,
        T0,
        3,
        Update {
            tombstones: vec![tomb(ORIGIN, 200, T0.saturating_add_ms(60_000))],
            ..Default::default()
        },
    );
    assert_eq!(best_path(&e), None);
    assert_eq!(e.stats().tombstones_in, 2);
}

#[test]
fn not_negotiated_own_as_and_expired_tombstones_are_ignored() {
    // Not negotiated: neither heeded nor sent.
    let mut e = engine(false);
    let out = tombstoned(&mut e, tomb(ORIGIN, 100, T0.saturating_add_ms(60_000)));
    assert_eq!(best_path(&e), Some(vec![65003, ORIGIN]));
    assert!(sent(&out).is_empty());
    assert_eq!(e.stats().tombstones_ignored, 1);
    // Our own AS speaks for itself.
    let mut e = engine(true);
    tombstoned(&mut e, tomb(65000, 100, T0.saturating_add_ms(60_000)));
    assert_eq!(best_path(&e), Some(vec![65003, ORIGIN]));
    // Expired on arrival.
    let mut e = engine(true);
    tombstoned(&mut e, tomb(ORIGIN, 100, T0));
    assert_eq!(best_path(&e), Some(vec![65003, ORIGIN]));
    assert_eq!(e.stats().tombstones_in, 0);
    assert_eq!(e.tombstones_kept(), 0);
}

#[test]
fn a_tombstone_expires_capped_and_its_paths_compete_again() {
    // It names a far expiry; it is kept at most MAX_TOMBSTONE_TTL_MS.
    let mut e = engine(true);
    tombstoned(&mut e, tomb(ORIGIN, 100, Millis(u64::MAX)));
    assert_eq!(
        e.tombstones.next_deadline(),
        Some(T0.saturating_add_ms(MAX_TOMBSTONE_TTL_MS))
    );
    // One that expires in a second: then the path it excluded is back.
    let mut e = engine(true);
    tombstoned(&mut e, tomb(ORIGIN, 100, T0.saturating_add_ms(1_000)));
    assert_eq!(best_path(&e), None);
    e.handle(T0.saturating_add_ms(999), Event::Tick);
    assert_eq!(best_path(&e), None);
    e.handle(T0.saturating_add_ms(1_000), Event::Tick);
    assert_eq!(e.tombstones_kept(), 0);
    assert_eq!(best_path(&e), Some(vec![65003, ORIGIN]));
}

#[test]
fn a_tombstone_for_a_prefix_not_held_is_not_kept() {
    let mut e = engine(true);
    for i in 0..1_000 {
        update_from(
            &mut e,
            T0,
            2,
            Update {
                tombstones: vec![Arc::new(Tombstone {
                    prefix: Prefix::new(&format!("junk/p{i}")).unwrap(),
                    ..(*tomb(ORIGIN, 100, T0.saturating_add_ms(60_000))).clone()
                })],
                ..Default::default()
            },
        );
    }
    assert_eq!(e.tombstones_kept(), 0);
    assert_eq!(e.stats().tombstones_ignored, 1_000);
}

#[test]
fn the_origin_sends_its_tombstone_with_its_withdrawal() {
    let mut e = engine(true);
    let r = Route::new(
        p(),
        Arc::new(PathAttrs {
            agent: AgentId::new("agent"),
            ..Default::default()
        }),
    );
    e.handle(T0, Event::Originate(r));
    let ended = e.local_origin_time(&RouteKey::new(p())).unwrap();
    let mut t = (*tomb(65000, ended.0, T0.saturating_add_ms(60_000))).clone();
    t.cert = Arc::new(AsnCert {
        node: id(1),
        ..(*t.cert).clone()
    });
    let out = e.handle_all(
        T0,
        [
            Event::WithdrawLocal(RouteKey::new(p())),
            Event::Tombstone(Arc::new(t)),
        ],
    );
    let mut to = sent(&out);
    to.sort();
    assert_eq!(
        to,
        vec![(id(2), 1, true), (id(3), 1, true), (id(4), 1, true)]
    );
    assert_eq!(e.stats().tombstones_issued, 1);
}

/// At the cap, the kept tombstone that expires soonest gives way to a new
/// one, and the paths it held down compete again.
#[test]
fn at_the_cap_the_soonest_to_expire_is_evicted_and_its_paths_released() {
    let mut e = engine(true);
    e.tombstones.cap = Some(2);
    let px = |i: u32| Prefix::new(&format!("svc/t{i}")).unwrap();
    let on = |i: u32, asn: u32| {
        Route::new(
            px(i),
            Arc::new(PathAttrs {
                agent: AgentId::new("agent"),
                as_path: vec![Asn(asn), Asn(ORIGIN)],
                origin_time: Millis(100),
                ..Default::default()
            }),
        )
    };
    for i in 0..3u32 {
        update_from(&mut e, T0, 2, announcing(on(i, 65002)));
        update_from(&mut e, T0, 3, announcing(on(i, 65003)));
        let mut t = (*tomb(
            ORIGIN,
            100,
            T0.saturating_add_ms(10_000 * (u64::from(i) + 1)),
        ))
        .clone();
        t.prefix = px(i);
        update_from(
            &mut e,
            T0,
            2,
            Update {
                withdraw: vec![RouteKey::new(px(i))],
                tombstones: vec![Arc::new(t)],
                ..Default::default()
            },
        );
    }
    // t0 (the soonest to expire) went for t2: Y's path to t0 is back; t1
    // and t2 stay dark.
    assert_eq!(e.stats().tombstones_evicted, 1);
    assert_eq!(e.tombstones.len(), 2);
    let best = |e: &Engine, i: u32| {
        e.best(&px(i))
            .map(|r| r.attrs.as_path.iter().map(|a| a.0).collect::<Vec<_>>())
    };
    assert_eq!(best(&e, 0), Some(vec![65003, ORIGIN]));
    assert_eq!(best(&e, 1), None);
    assert_eq!(best(&e, 2), None);
}
