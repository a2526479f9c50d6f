//! One behaviour per test. Fixtures: `local()`/`peer()` ids, `cfg()`,
//! `peer_open()`, and `up()` which drives a session to Established.

use std::time::Duration;

use super::*;
use crate::core::ids::Asn;
use crate::core::message::{Capabilities, Open, PROTOCOL_VERSION};

pub(super) const FED: &str = "test-fed";

pub(super) fn local() -> NodeId {
    NodeId::from_u64(10)
}
pub(super) fn peer() -> NodeId {
    NodeId::from_u64(20)
}
pub(super) fn cfg() -> SessionConfig {
    SessionConfig::new(Asn(65001), local(), FED)
}
pub(super) fn peer_open() -> Open {
    Open {
        version: PROTOCOL_VERSION,
        asn: Asn(65002),
        node: peer(),
        hold_time: 90,
        capabilities: Capabilities {
            route_refresh: true,
            ..Capabilities::default()
        },
        federation: FED.to_owned(),
        cert: None,
    }
}
fn t(ms: u64) -> Millis {
    Millis(ms)
}
fn new(cfg: SessionConfig) -> Session {
    match Session::new(cfg, 7) {
        Ok(s) => s,
        Err(e) => panic!("test config rejected: {e}"),
    }
}
fn out_up(remote: NodeId) -> Event {
    Event::TransportUp {
        direction: Direction::Outbound,
        remote,
    }
}
fn in_up(remote: NodeId) -> Event {
    Event::TransportUp {
        direction: Direction::Inbound,
        remote,
    }
}
fn open_msg(o: Open) -> Event {
    Event::Received(Message::Open(o))
}
fn sent_notification(actions: &[Action]) -> Option<&Notification> {
    actions.iter().find_map(|a| match a {
        Action::Send(Message::Notification(n)) => Some(n),
        _ => None,
    })
}
fn refused(actions: &[Action]) -> Option<&Notification> {
    actions.iter().find_map(|a| match a {
        Action::Refuse(n) => Some(n),
        _ => None,
    })
}
fn is_down(actions: &[Action]) -> bool {
    actions.iter().any(|a| matches!(a, Action::Down { .. }))
}

/// Start at 0, our dial lands at 10, the peer's OPEN at 20, its KEEPALIVE
/// at 30: Established at 30.
fn up_with(cfg: SessionConfig, open: Open) -> Session {
    let mut s = new(cfg);
    s.handle(t(0), Event::Start);
    s.handle(t(10), out_up(peer()));
    s.handle(t(20), open_msg(open));
    s.handle(t(30), Event::Received(Message::Keepalive));
    assert_eq!(s.state(), State::Established);
    s
}
fn up() -> Session {
    up_with(cfg(), peer_open())
}

/// Drives a session to OpenSent and feeds it `open`; returns the actions.
fn answer_open(cfg: SessionConfig, open: Open) -> (Session, Vec<Action>) {
    let mut s = new(cfg);
    s.handle(t(0), Event::Start);
    s.handle(t(10), out_up(peer()));
    let actions = s.handle(t(20), open_msg(open));
    (s, actions)
}

fn assert_open_rejected(cfg: SessionConfig, open: Open, sub: u8) -> Notification {
    let (s, actions) = answer_open(cfg, open);
    let Some(n) = sent_notification(&actions) else {
        panic!("no NOTIFICATION in {actions:?}")
    };
    assert_eq!((n.code, n.subcode), (ErrorCode::Open, sub), "{n}");
    assert!(actions.contains(&Action::Disconnect));
    assert!(!is_down(&actions), "never Established, so no Down");
    assert_eq!(s.state(), State::Idle);
    n.clone()
}

// ---- handshake ----

#[test]
fn outbound_handshake_reaches_established() {
    let mut s = new(cfg());
    assert_eq!(s.handle(t(0), Event::Start), vec![Action::Connect]);
    assert_eq!(s.state(), State::Connecting);

    let a = s.handle(t(10), out_up(peer()));
    assert!(
        matches!(a.as_slice(), [Action::Send(Message::Open(o))] if o.node == local() && o.hold_time == 90)
    );
    assert_eq!(s.state(), State::OpenSent);

    let a = s.handle(t(20), open_msg(peer_open()));
    assert_eq!(a, vec![Action::Send(Message::Keepalive)]);
    assert_eq!(s.state(), State::OpenConfirm);

    let a = s.handle(t(30), Event::Received(Message::Keepalive));
    let [Action::Established(n)] = a.as_slice() else {
        panic!("expected Established, got {a:?}")
    };
    assert_eq!(n.peer_node, peer());
    assert_eq!(n.peer_asn, Asn(65002));
    assert_eq!(n.direction, Direction::Outbound);
    assert_eq!(s.state(), State::Established);
}

#[test]
fn passive_session_never_dials_and_establishes_on_inbound() {
    let mut s = new(cfg().with_passive(true));
    assert_eq!(s.handle(t(0), Event::Start), vec![]);
    assert_eq!(s.state(), State::Connecting);
    assert_eq!(
        s.next_deadline(),
        None,
        "passive sessions wait indefinitely"
    );

    let a = s.handle(t(5), in_up(peer()));
    assert!(matches!(a.as_slice(), [Action::Send(Message::Open(_))]));
    s.handle(t(6), open_msg(peer_open()));
    let a = s.handle(t(7), Event::Received(Message::Keepalive));
    assert!(matches!(a.as_slice(), [Action::Established(n)] if n.direction == Direction::Inbound));
}

#[test]
fn active_session_accepts_inbound_while_dialling() {
    let mut s = new(cfg());
    s.handle(t(0), Event::Start);
    s.handle(t(1), in_up(peer()));
    assert_eq!(s.state(), State::OpenSent);
    assert_eq!(s.remote(), Some(peer()));
}

#[test]
fn our_open_carries_config_and_cert() {
    let cert = std::sync::Arc::new(crate::core::proof::AsnCert::unsigned(Asn(65001), local()));
    let mut s = new(cfg()
        .with_cert(cert.clone())
        .with_hold_time(Duration::from_secs(30)));
    s.handle(t(0), Event::Start);
    let a = s.handle(t(1), out_up(peer()));
    let [Action::Send(Message::Open(o))] = a.as_slice() else {
        panic!("{a:?}")
    };
    assert_eq!(o.version, PROTOCOL_VERSION);
    assert_eq!(o.asn, Asn(65001));
    assert_eq!(o.hold_time, 30);
    assert_eq!(o.federation, FED);
    assert_eq!(o.cert, Some(cert));
}

// ---- OPEN checks ----

#[test]
fn open_with_other_version_is_rejected_as_unsupported_version() {
    let mut o = peer_open();
    o.version = PROTOCOL_VERSION + 1;
    let n = assert_open_rejected(cfg(), o, subcode::UNSUPPORTED_VERSION);
    assert!(n.text.contains("version"), "{n}");
}

#[test]
fn open_from_unpinned_asn_is_rejected_as_bad_peer_as() {
    let n = assert_open_rejected(
        cfg().with_peer_asn(Asn(65099)),
        peer_open(),
        subcode::BAD_PEER_AS,
    );
    assert!(
        n.text.contains("AS65099") && n.text.contains("AS65002"),
        "{n}"
    );
}

#[test]
fn open_from_unpinned_node_is_rejected_as_bad_identifier() {
    let mut o = peer_open();
    o.node = NodeId::from_u64(21);
    let mut s = new(cfg().with_peer_node(peer()));
    s.handle(t(0), Event::Start);
    // The transport authenticated node 21, so only the pin can object.
    s.handle(t(1), out_up(NodeId::from_u64(21)));
    let a = s.handle(t(2), open_msg(o));
    let n = sent_notification(&a).cloned();
    assert_eq!(
        n.map(|n| (n.code, n.subcode)),
        Some((ErrorCode::Open, subcode::BAD_IDENTIFIER))
    );
}

#[test]
fn open_with_our_own_node_id_is_rejected_as_talking_to_ourselves() {
    let mut o = peer_open();
    o.node = local();
    let mut s = new(cfg());
    s.handle(t(0), Event::Start);
    s.handle(t(1), out_up(local()));
    let a = s.handle(t(2), open_msg(o));
    let Some(n) = sent_notification(&a) else {
        panic!("{a:?}")
    };
    assert_eq!(
        (n.code, n.subcode),
        (ErrorCode::Open, subcode::BAD_IDENTIFIER)
    );
    assert!(n.text.contains("ourselves"), "{n}");
}

#[test]
fn open_naming_another_node_than_the_transport_is_rejected() {
    let mut o = peer_open();
    o.node = NodeId::from_u64(99);
    let n = assert_open_rejected(cfg(), o, subcode::BAD_IDENTIFIER);
    assert!(n.text.contains("authenticated"), "{n}");
}

#[test]
fn open_from_other_federation_is_rejected_as_wrong_federation() {
    let mut o = peer_open();
    o.federation = "elsewhere".into();
    let n = assert_open_rejected(cfg(), o, subcode::WRONG_FEDERATION);
    assert!(n.text.contains("elsewhere"), "{n}");
}

#[test]
fn open_with_hold_time_one_or_two_is_rejected() {
    for h in [1, 2] {
        let mut o = peer_open();
        o.hold_time = h;
        assert_open_rejected(cfg(), o, subcode::UNACCEPTABLE_HOLD_TIME);
    }
}

#[test]
fn open_rejection_is_recorded_as_last_error() {
    let mut o = peer_open();
    o.version = 9;
    let (s, _) = answer_open(cfg(), o);
    let e = s.counters().last_error.clone();
    assert!(
        matches!(e, Some(LastError { at: Millis(20), side: ErrorSide::Sent, notification })
        if notification.subcode == subcode::UNSUPPORTED_VERSION)
    );
}

// ---- negotiation ----

#[test]
fn negotiated_hold_is_the_smaller_and_keepalive_a_third_of_it() {
    let mut o = peer_open();
    o.hold_time = 30;
    let s = up_with(cfg(), o);
    let n = s.negotiated().cloned();
    assert_eq!(
        n.as_ref().map(|n| n.hold_time),
        Some(Duration::from_secs(30))
    );
    assert_eq!(
        n.and_then(|n| n.keepalive_interval),
        Some(Duration::from_secs(10))
    );
}

#[test]
fn keepalive_floor_applies_but_never_beyond_half_the_hold() {
    let mut o = peer_open();
    o.hold_time = 30;
    let s = up_with(cfg().with_min_keepalive(Duration::from_secs(12)), o.clone());
    assert_eq!(
        s.negotiated().and_then(|n| n.keepalive_interval),
        Some(Duration::from_secs(12))
    );
    let s = up_with(cfg().with_min_keepalive(Duration::from_secs(60)), o);
    assert_eq!(
        s.negotiated().and_then(|n| n.keepalive_interval),
        Some(Duration::from_secs(15))
    );
}

#[test]
fn capabilities_are_intersected_and_keep_the_peers_restart_time() {
    let ours = Capabilities {
        unreachable: Default::default(),
        tombstones: Default::default(),
        route_refresh: true,
        graceful_restart: Some(120),
        add_path: true,
        multipath: false,
        role: None,
    };
    let mut o = peer_open();
    o.capabilities = Capabilities {
        unreachable: Default::default(),
        tombstones: Default::default(),
        route_refresh: false,
        graceful_restart: Some(45),
        add_path: true,
        multipath: true,
        role: None,
    };
    let s = up_with(cfg().with_capabilities(ours), o);
    assert_eq!(
        s.negotiated().map(|n| n.capabilities.clone()),
        Some(Capabilities {
            unreachable: Default::default(),
            tombstones: Default::default(),
            route_refresh: false,
            graceful_restart: Some(45),
            add_path: true,
            multipath: false,
            role: None,
        })
    );
}

#[test]
fn graceful_restart_is_off_unless_both_offer_it() {
    let mut o = peer_open();
    o.capabilities.graceful_restart = Some(45);
    let s = up_with(cfg(), o);
    assert_eq!(
        s.negotiated().and_then(|n| n.capabilities.graceful_restart),
        None
    );
}

// ---- timers ----

/// Ticks `s` at each of its deadlines up to and including `end`, as a
/// punctual driver would; returns what it did and when.
fn run_until(s: &mut Session, end: u64) -> Vec<(u64, Action)> {
    let mut log = Vec::new();
    while let Some(at) = s.next_deadline().filter(|at| at.0 <= end) {
        for a in s.handle(at, Event::Tick) {
            log.push((at.0, a));
        }
    }
    log
}

#[test]
fn hold_timer_expiry_sends_notification_and_reports_down() {
    let mut s = up();
    // The peer's last message came at 30 and the hold time is 90 s.
    let log = run_until(&mut s, 90_030);
    let (at, _) = log
        .iter()
        .find(|(_, a)| matches!(a, Action::Send(Message::Notification(_))))
        .unwrap_or_else(|| panic!("no NOTIFICATION in {log:?}"));
    assert_eq!(*at, 90_030);
    let actions: Vec<Action> = log
        .into_iter()
        .filter(|(t, _)| *t == 90_030)
        .map(|(_, a)| a)
        .collect();
    let Some(n) = sent_notification(&actions) else {
        panic!("{actions:?}")
    };
    assert_eq!(n.code, ErrorCode::HoldTimerExpired);
    assert!(actions.contains(&Action::Disconnect));
    assert!(actions.contains(&Action::Down {
        reason: DownReason::Sent(n.clone())
    }));
    assert_eq!(s.state(), State::Idle);
}

#[test]
fn open_hold_timer_gives_up_on_a_silent_peer_after_240_s() {
    let mut s = new(cfg());
    s.handle(t(0), Event::Start);
    s.handle(t(10), out_up(peer()));
    assert_eq!(s.next_deadline(), Some(t(240_010)));
    let a = s.handle(t(240_010), Event::Tick);
    assert_eq!(
        sent_notification(&a).map(|n| n.code),
        Some(ErrorCode::HoldTimerExpired)
    );
    assert!(!is_down(&a));
    assert_eq!(s.state(), State::Idle);
}

#[test]
fn keepalives_are_sent_every_third_of_the_hold_time() {
    let mut s = up();
    let mut sent_at = Vec::new();
    for _ in 0..4 {
        let next = s.next_deadline().map_or(0, |d| d.0);
        let log = run_until(&mut s, next);
        sent_at.extend(
            log.iter()
                .filter(|(_, a)| *a == Action::Send(Message::Keepalive))
                .map(|(t, _)| *t),
        );
        // The peer stays alive.
        let now = sent_at.last().copied().unwrap_or(30);
        s.handle(t(now), Event::Received(Message::Keepalive));
    }
    // The first KEEPALIVE went out at 20 on entering OpenConfirm.
    assert_eq!(sent_at, [30_020, 60_020, 90_020, 120_020]);
}

#[test]
fn any_message_from_the_peer_restarts_the_hold_timer() {
    let mut s = up();
    s.handle(
        t(80_000),
        Event::Received(Message::Update(Update::default())),
    );
    let log = run_until(&mut s, 169_999);
    assert!(
        log.iter().all(|(_, a)| !matches!(a, Action::Down { .. })),
        "{log:?}"
    );
    let a = s.handle(t(170_000), Event::Tick);
    assert!(is_down(&a));
}

#[test]
fn sending_an_update_restarts_the_keepalive_timer() {
    let mut s = up();
    s.handle(t(25_000), Event::SendUpdate(Update::default()));
    assert_eq!(s.next_deadline(), Some(t(55_000)));
}

#[test]
fn hold_time_zero_disables_keepalives_and_the_hold_timer() {
    let mut o = peer_open();
    o.hold_time = 0;
    let mut s = new(cfg());
    s.handle(t(0), Event::Start);
    s.handle(t(10), out_up(peer()));
    let a = s.handle(t(20), open_msg(o));
    // The one KEEPALIVE that confirms the OPEN is still sent.
    assert_eq!(a, vec![Action::Send(Message::Keepalive)]);
    s.handle(t(30), Event::Received(Message::Keepalive));
    assert_eq!(s.state(), State::Established);
    assert_eq!(s.next_deadline(), None);
    let n = s.negotiated().cloned();
    assert_eq!(n.as_ref().map(|n| n.hold_time), Some(Duration::ZERO));
    assert_eq!(n.and_then(|n| n.keepalive_interval), None);
    assert_eq!(s.handle(t(10_000_000), Event::Tick), vec![]);
    assert_eq!(s.state(), State::Established);
}

#[test]
fn our_hold_time_zero_also_disables_timers() {
    let s = up_with(cfg().with_hold_time(Duration::ZERO), peer_open());
    assert_eq!(s.next_deadline(), None);
}

#[test]
fn a_late_tick_lets_the_hold_timer_fire_before_the_message() {
    let mut s = up();
    // The driver slept past the hold deadline; a KEEPALIVE arriving now does
    // not revive a session that already timed out.
    let a = s.handle(t(200_000), Event::Received(Message::Keepalive));
    assert_eq!(
        sent_notification(&a).map(|n| n.code),
        Some(ErrorCode::HoldTimerExpired)
    );
    assert_eq!(s.state(), State::Idle);
}

// ---- FSM errors and teardown ----

fn fsm_error_in(s: &mut Session, msg: Message, sub: u8) -> Vec<Action> {
    let a = s.handle(t(1_000), Event::Received(msg));
    let Some(n) = sent_notification(&a) else {
        panic!("{a:?}")
    };
    assert_eq!((n.code, n.subcode), (ErrorCode::Fsm, sub), "{n}");
    assert!(a.contains(&Action::Disconnect));
    assert_eq!(s.state(), State::Idle);
    a
}

#[test]
fn keepalive_in_open_sent_is_an_fsm_error() {
    let mut s = new(cfg());
    s.handle(t(0), Event::Start);
    s.handle(t(10), out_up(peer()));
    let a = fsm_error_in(&mut s, Message::Keepalive, subcode::UNEXPECTED_IN_OPENSENT);
    assert!(!is_down(&a));
}

#[test]
fn update_in_open_sent_is_an_fsm_error() {
    let mut s = new(cfg());
    s.handle(t(0), Event::Start);
    s.handle(t(10), out_up(peer()));
    fsm_error_in(
        &mut s,
        Message::Update(Update::default()),
        subcode::UNEXPECTED_IN_OPENSENT,
    );
}

#[test]
fn update_in_open_confirm_is_an_fsm_error() {
    let (mut s, _) = answer_open(cfg(), peer_open());
    assert_eq!(s.state(), State::OpenConfirm);
    fsm_error_in(
        &mut s,
        Message::Update(Update::default()),
        subcode::UNEXPECTED_IN_OPENCONFIRM,
    );
}

#[test]
fn second_open_in_established_is_an_fsm_error_and_reports_down() {
    let mut s = up();
    let a = fsm_error_in(
        &mut s,
        Message::Open(peer_open()),
        subcode::UNEXPECTED_IN_ESTABLISHED,
    );
    assert!(is_down(&a));
}

#[test]
fn notification_from_peer_goes_idle_and_reports_down() {
    let mut s = up();
    let n = Notification::new(ErrorCode::Update, subcode::MALFORMED_AS_PATH, "bad path");
    let a = s.handle(t(100), Event::Received(Message::Notification(n.clone())));
    assert_eq!(
        a,
        vec![
            Action::Disconnect,
            Action::Down {
                reason: DownReason::Received(n.clone())
            }
        ]
    );
    assert_eq!(s.state(), State::Idle);
    assert_eq!(
        s.counters().last_error,
        Some(LastError {
            at: t(100),
            side: ErrorSide::Received,
            notification: n
        })
    );
}

#[test]
fn transport_closed_in_established_reports_down_without_notification() {
    let mut s = up();
    let a = s.handle(t(100), Event::TransportClosed);
    assert_eq!(
        a,
        vec![
            Action::Disconnect,
            Action::Down {
                reason: DownReason::TransportClosed
            }
        ]
    );
}

#[test]
fn decode_error_is_sent_to_the_peer_and_resets() {
    let mut s = up();
    let n = Notification::new(
        ErrorCode::MessageHeader,
        subcode::MALFORMED_CBOR,
        "bad cbor",
    );
    let a = s.handle(t(100), Event::DecodeError(n.clone()));
    assert_eq!(
        a,
        vec![
            Action::Send(Message::Notification(n.clone())),
            Action::Disconnect,
            Action::Down {
                reason: DownReason::Sent(n)
            }
        ]
    );
}

#[test]
fn updates_are_delivered_when_established() {
    let mut s = up();
    let u = Update {
        end_of_rib: true,
        ..Update::default()
    };
    let a = s.handle(t(100), Event::Received(Message::Update(u.clone())));
    assert_eq!(a, vec![Action::DeliverUpdate(u)]);
}

#[test]
fn route_refresh_is_delivered_only_when_negotiated() {
    let mut s = up();
    assert_eq!(
        s.handle(t(100), Event::Received(Message::RouteRefresh)),
        vec![Action::DeliverRouteRefresh]
    );
    let mut o = peer_open();
    o.capabilities.route_refresh = false;
    let mut s = up_with(cfg(), o);
    assert_eq!(
        s.handle(t(100), Event::Received(Message::RouteRefresh)),
        vec![]
    );
    assert_eq!(s.handle(t(101), Event::SendRouteRefresh), vec![]);
    assert_eq!(s.state(), State::Established);
}

#[test]
fn send_update_outside_established_is_dropped() {
    let (mut s, _) = answer_open(cfg(), peer_open());
    assert_eq!(
        s.handle(t(25), Event::SendUpdate(Update::default())),
        vec![]
    );
    assert_eq!(s.state(), State::OpenConfirm);
}

#[test]
fn stale_messages_without_a_transport_are_ignored() {
    let mut s = new(cfg());
    s.handle(t(0), Event::Start);
    assert_eq!(s.handle(t(1), Event::Received(Message::Keepalive)), vec![]);
    assert_eq!(s.handle(t(2), Event::TransportClosed), vec![]);
    assert_eq!(s.state(), State::Connecting);
}

// ---- back-off ----

/// Fails the dial `n` times in a row; returns each idle-hold delay. The
/// session ends up dialling again at the time of the last delay's end.
fn failed_dial_delays(s: &mut Session, n: usize) -> Vec<u64> {
    let mut delays = Vec::new();
    let mut now = 0;
    if s.state() == State::Idle {
        s.handle(t(now), Event::Start);
    }
    for _ in 0..n {
        now += 1;
        s.handle(t(now), Event::TransportFailed);
        assert_eq!(s.state(), State::Idle);
        let Some(at) = s.next_deadline() else {
            panic!("no reconnect scheduled")
        };
        delays.push(at.0 - now);
        now = at.0;
        assert_eq!(s.handle(at, Event::Tick), vec![Action::Connect]);
    }
    delays
}

/// When `failed_dial_delays` left the session dialling: each failure came
/// 1 ms after the previous dial.
fn dial_time(delays: &[u64]) -> u64 {
    delays.iter().map(|d| d + 1).sum()
}

#[test]
fn reconnect_delay_doubles_with_jitter_up_to_the_max() {
    let mut s = new(cfg());
    let delays = failed_dial_delays(&mut s, 9);
    let nominal = [
        1_000, 2_000, 4_000, 8_000, 16_000, 32_000, 60_000, 60_000, 60_000,
    ];
    for (d, n) in delays.iter().zip(nominal) {
        assert!(
            (n * 3 / 4..=n * 5 / 4).contains(d),
            "delay {d} outside ±25 % of {n}: {delays:?}"
        );
    }
}

#[test]
fn jitter_stays_within_a_quarter_and_differs_between_seeds() {
    let mut firsts = std::collections::BTreeSet::new();
    for seed in 0..200 {
        let mut s = Session::new(cfg(), seed).unwrap_or_else(|e| panic!("{e}"));
        let d = failed_dial_delays(&mut s, 1)[0];
        assert!((750..=1_250).contains(&d), "seed {seed}: {d}");
        firsts.insert(d);
    }
    assert!(firsts.len() > 50, "jitter barely varies: {firsts:?}");
}

#[test]
fn same_seed_replays_the_same_delays() {
    let a = failed_dial_delays(&mut new(cfg()), 6);
    let b = failed_dial_delays(&mut new(cfg()), 6);
    assert_eq!(a, b);
}

#[test]
fn backoff_resets_after_a_stable_session() {
    let mut s = new(cfg());
    let delays = failed_dial_delays(&mut s, 5);
    assert_eq!(s.retry_attempts(), 5);
    let now = dial_time(&delays);
    // Bring it up and keep it up for over a minute (stable_after = 60 s).
    s.handle(t(now), out_up(peer()));
    s.handle(t(now + 1), open_msg(peer_open()));
    s.handle(t(now + 2), Event::Received(Message::Keepalive));
    s.handle(t(now + 61_000), Event::Received(Message::Keepalive));
    s.handle(t(now + 61_001), Event::TransportClosed);
    let delay = s.next_deadline().map(|d| d.0 - (now + 61_001));
    assert!(matches!(delay, Some(750..=1_250)), "{delay:?}");
}

#[test]
fn backoff_keeps_growing_after_a_short_session() {
    let mut s = new(cfg());
    let delays = failed_dial_delays(&mut s, 3);
    let now = dial_time(&delays);
    s.handle(t(now), out_up(peer()));
    s.handle(t(now + 1), open_msg(peer_open()));
    s.handle(t(now + 2), Event::Received(Message::Keepalive));
    s.handle(t(now + 5_000), Event::TransportClosed);
    let delay = s.next_deadline().map(|d| d.0 - (now + 5_000));
    // Fourth attempt: nominal 8 s.
    assert!(matches!(delay, Some(6_000..=10_000)), "{delay:?}");
}

#[test]
fn connect_timeout_cancels_the_dial_and_backs_off() {
    let mut s = new(cfg());
    s.handle(t(0), Event::Start);
    assert_eq!(s.next_deadline(), Some(t(30_000)));
    let a = s.handle(t(30_000), Event::Tick);
    assert_eq!(a, vec![Action::CancelConnect]);
    assert_eq!(s.state(), State::Idle);
    assert!(s.next_deadline().is_some());
}

#[test]
fn a_dial_failing_after_the_peer_connected_is_ignored() {
    let mut s = new(cfg());
    s.handle(t(0), Event::Start);
    s.handle(t(1), in_up(peer()));
    assert_eq!(s.handle(t(2), Event::TransportFailed), vec![]);
    assert_eq!(s.state(), State::OpenSent);
}

// ---- administrative control ----

#[test]
fn stop_in_established_sends_admin_cease_and_reports_down() {
    let mut s = up();
    let a = s.handle(t(100), Event::Stop);
    let Some(n) = sent_notification(&a) else {
        panic!("{a:?}")
    };
    assert_eq!(
        (n.code, n.subcode),
        (ErrorCode::Cease, subcode::ADMIN_SHUTDOWN)
    );
    assert!(is_down(&a));
    assert_eq!(s.state(), State::Idle);
}

#[test]
fn stop_prevents_reconnect_and_start_resumes_at_once() {
    let mut s = up();
    s.handle(t(100), Event::Stop);
    assert_eq!(s.next_deadline(), None);
    assert!(!s.is_enabled());
    assert_eq!(s.handle(t(1_000_000), Event::Tick), vec![]);
    assert_eq!(s.state(), State::Idle);
    assert_eq!(s.handle(t(1_000_001), Event::Start), vec![Action::Connect]);
    assert_eq!(s.state(), State::Connecting);
}

#[test]
fn stop_while_backing_off_cancels_the_reconnect() {
    let mut s = new(cfg());
    s.handle(t(0), Event::Start);
    s.handle(t(1), Event::TransportFailed);
    assert!(s.next_deadline().is_some());
    s.handle(t(2), Event::Stop);
    assert_eq!(s.next_deadline(), None);
}

#[test]
fn stop_while_dialling_cancels_the_dial() {
    let mut s = new(cfg());
    s.handle(t(0), Event::Start);
    assert_eq!(s.handle(t(1), Event::Stop), vec![Action::CancelConnect]);
    assert_eq!(s.state(), State::Idle);
}

#[test]
fn stopped_session_refuses_an_inbound_transport() {
    let mut s = new(cfg());
    let a = s.handle(t(0), in_up(peer()));
    let Some(n) = refused(&a) else {
        panic!("{a:?}")
    };
    assert_eq!(
        (n.code, n.subcode),
        (ErrorCode::Cease, subcode::CONNECTION_REJECTED)
    );
    assert_eq!(s.state(), State::Idle);
}

#[test]
fn session_backing_off_accepts_the_peers_connection() {
    let mut s = new(cfg());
    s.handle(t(0), Event::Start);
    s.handle(t(1), Event::TransportFailed);
    assert_eq!(s.state(), State::Idle);
    let a = s.handle(t(2), in_up(peer()));
    assert!(
        matches!(a.as_slice(), [Action::Send(Message::Open(_))]),
        "{a:?}"
    );
    assert_eq!(s.state(), State::OpenSent);
    assert_eq!(
        s.next_deadline(),
        Some(t(240_002)),
        "idle hold replaced by open hold"
    );
}

// ---- max-prefix ----

#[test]
fn exceeding_max_prefix_tears_down_with_cease_and_damped_idle_hold() {
    let mut s = up_with(cfg().with_max_prefix(100), peer_open());
    assert_eq!(
        s.handle(t(100), Event::AcceptedRoutes(100))
            .iter()
            .filter(|a| !matches!(a, Action::MaxPrefixWarning { .. }))
            .count(),
        0
    );
    let a = s.handle(t(200), Event::AcceptedRoutes(101));
    let Some(n) = sent_notification(&a) else {
        panic!("{a:?}")
    };
    assert_eq!((n.code, n.subcode), (ErrorCode::Cease, subcode::MAX_PREFIX));
    assert!(n.text.contains("101") && n.text.contains("100"), "{n}");
    assert!(a.contains(&Action::Disconnect));
    assert!(is_down(&a));
    assert_eq!(s.state(), State::Idle);
    // Damped: at least 60 s before the next attempt, not the ~1 s back-off.
    assert_eq!(s.next_deadline(), Some(t(60_200)));
}

#[test]
fn max_prefix_idle_hold_refuses_the_peers_connection() {
    let mut s = up_with(cfg().with_max_prefix(1), peer_open());
    s.handle(t(100), Event::AcceptedRoutes(2));
    let a = s.handle(t(200), in_up(peer()));
    assert_eq!(
        refused(&a).map(|n| n.subcode),
        Some(subcode::CONNECTION_REJECTED)
    );
    assert_eq!(s.state(), State::Idle);
    // Once the hold is over the session dials again by itself.
    assert_eq!(s.handle(t(60_100), Event::Tick), vec![Action::Connect]);
}

#[test]
fn max_prefix_warning_fires_once_per_crossing() {
    let mut s = up_with(
        cfg().with_max_prefix(100).with_max_prefix_warning(80),
        peer_open(),
    );
    let warn = |n| Action::MaxPrefixWarning {
        accepted: n,
        limit: 100,
    };
    assert_eq!(s.handle(t(100), Event::AcceptedRoutes(79)), vec![]);
    assert_eq!(s.handle(t(101), Event::AcceptedRoutes(80)), vec![warn(80)]);
    assert_eq!(s.handle(t(102), Event::AcceptedRoutes(90)), vec![]);
    assert_eq!(s.handle(t(103), Event::AcceptedRoutes(10)), vec![]);
    assert_eq!(s.handle(t(104), Event::AcceptedRoutes(85)), vec![warn(85)]);
}

#[test]
fn received_cease_damps_the_reconnect() {
    let mut s = up();
    let n = Notification::new(ErrorCode::Cease, subcode::PEER_DECONFIGURED, "bye");
    s.handle(t(100), Event::Received(Message::Notification(n)));
    assert_eq!(s.next_deadline(), Some(t(60_100)));
}

#[test]
fn rejected_connection_cease_uses_plain_backoff() {
    let mut s = new(cfg());
    s.handle(t(0), Event::Start);
    s.handle(t(10), out_up(peer()));
    let n = Notification::new(ErrorCode::Cease, subcode::CONNECTION_REJECTED, "not now");
    s.handle(t(20), Event::Received(Message::Notification(n)));
    let delay = s.next_deadline().map(|d| d.0 - 20);
    assert!(matches!(delay, Some(750..=1_250)), "{delay:?}");
}

#[test]
fn received_non_cease_notification_uses_plain_backoff() {
    let mut s = up();
    let n = Notification::new(ErrorCode::Update, subcode::MALFORMED_ATTRIBUTE_LIST, "x");
    s.handle(t(100), Event::Received(Message::Notification(n)));
    let delay = s.next_deadline().map(|d| d.0 - 100);
    assert!(matches!(delay, Some(750..=1_250)), "{delay:?}");
}

// ---- collisions ----

#[test]
fn lower_id_replaces_its_own_dial_with_the_peers_connection() {
    // local 10 < peer 20: the peer's dial (Inbound for us) survives.
    let mut s = new(cfg());
    s.handle(t(0), Event::Start);
    s.handle(t(1), out_up(peer()));
    let a = s.handle(t(2), in_up(peer()));
    let [
        Action::Send(Message::Notification(n)),
        Action::Disconnect,
        Action::Send(Message::Open(_)),
    ] = a.as_slice()
    else {
        panic!("{a:?}")
    };
    assert_eq!(
        (n.code, n.subcode),
        (ErrorCode::Cease, subcode::COLLISION_RESOLUTION)
    );
    assert_eq!(s.state(), State::OpenSent);
    s.handle(t(3), open_msg(peer_open()));
    let a = s.handle(t(4), Event::Received(Message::Keepalive));
    assert!(matches!(a.as_slice(), [Action::Established(n)] if n.direction == Direction::Inbound));
}

#[test]
fn higher_id_refuses_the_peers_connection_and_keeps_its_dial() {
    let mut s = new(SessionConfig::new(Asn(65001), NodeId::from_u64(30), FED));
    s.handle(t(0), Event::Start);
    s.handle(t(1), out_up(peer()));
    let a = s.handle(t(2), in_up(peer()));
    let Some(n) = refused(&a) else {
        panic!("{a:?}")
    };
    assert_eq!(
        (n.code, n.subcode),
        (ErrorCode::Cease, subcode::COLLISION_RESOLUTION)
    );
    assert_eq!(a.len(), 1);
    assert_eq!(s.state(), State::OpenSent);
}

#[test]
fn established_session_refuses_a_colliding_connection() {
    let mut s = up();
    let a = s.handle(t(100), in_up(peer()));
    let Some(n) = refused(&a) else {
        panic!("{a:?}")
    };
    assert_eq!(n.subcode, subcode::COLLISION_RESOLUTION);
    assert_eq!(s.state(), State::Established);
}

#[test]
fn established_session_rejects_a_connection_from_another_node() {
    let mut s = up();
    let a = s.handle(t(100), in_up(NodeId::from_u64(77)));
    assert_eq!(
        refused(&a).map(|n| n.subcode),
        Some(subcode::CONNECTION_REJECTED)
    );
    assert_eq!(s.state(), State::Established);
}

#[test]
fn connection_from_another_node_is_rejected_mid_handshake() {
    let mut s = new(cfg());
    s.handle(t(0), Event::Start);
    s.handle(t(1), out_up(peer()));
    let a = s.handle(t(2), in_up(NodeId::from_u64(77)));
    assert_eq!(
        refused(&a).map(|n| n.subcode),
        Some(subcode::CONNECTION_REJECTED)
    );
    assert_eq!(s.remote(), Some(peer()));
}

#[test]
fn collision_cease_from_peer_waits_for_its_connection_instead_of_backing_off() {
    let mut s = new(SessionConfig::new(Asn(65001), NodeId::from_u64(30), FED));
    s.handle(t(0), Event::Start);
    s.handle(t(1), in_up(peer()));
    let n = Notification::new(
        ErrorCode::Cease,
        subcode::COLLISION_RESOLUTION,
        "keeping the other",
    );
    let a = s.handle(t(2), Event::Received(Message::Notification(n)));
    assert_eq!(a, vec![Action::Disconnect]);
    assert_eq!(s.state(), State::Connecting);
    // Our own dial is still in flight and now carries the session.
    let a = s.handle(t(3), out_up(peer()));
    assert!(matches!(a.as_slice(), [Action::Send(Message::Open(_))]));
}

// ---- counters ----

#[test]
fn counters_track_messages_flaps_and_uptime() {
    let mut s = up();
    s.handle(
        t(1_000),
        Event::Received(Message::Update(Update::default())),
    );
    s.handle(t(2_000), Event::SendUpdate(Update::default()));
    assert_eq!(s.counters().uptime(t(5_030)), Some(Duration::from_secs(5)));
    s.handle(t(6_000), Event::TransportClosed);
    let c = s.counters();
    assert_eq!(
        c.received,
        MessageCounts {
            open: 1,
            keepalive: 1,
            update: 1,
            ..MessageCounts::default()
        }
    );
    assert_eq!(
        c.sent,
        MessageCounts {
            open: 1,
            keepalive: 1,
            update: 1,
            ..MessageCounts::default()
        }
    );
    assert_eq!(c.sent.total(), 3);
    assert_eq!(c.flaps, 1);
    assert_eq!(c.connect_attempts, 1);
    assert_eq!(c.uptime(t(7_000)), None);
}

// ---- config ----

#[test]
fn config_rejects_hold_times_the_wire_cannot_carry() {
    for bad in [
        Duration::from_secs(1),
        Duration::from_secs(2),
        Duration::from_millis(3_500),
        Duration::from_secs(70_000),
    ] {
        assert_eq!(
            Session::new(cfg().with_hold_time(bad), 0).err(),
            Some(ConfigError::HoldTime(bad))
        );
    }
    assert!(Session::new(cfg().with_hold_time(Duration::ZERO), 0).is_ok());
    assert!(Session::new(cfg().with_hold_time(Duration::from_secs(3)), 0).is_ok());
}

#[test]
fn config_rejects_back_off_base_above_max() {
    let c = cfg().with_connect_retry(Duration::from_secs(10), Duration::from_secs(5));
    assert!(matches!(
        Session::new(c, 0),
        Err(ConfigError::Backoff { .. })
    ));
}

#[test]
fn config_rejects_a_warning_share_outside_one_to_a_hundred() {
    for pct in [0, 101] {
        assert_eq!(
            Session::new(cfg().with_max_prefix_warning(pct), 0).err(),
            Some(ConfigError::MaxPrefixWarning(pct))
        );
    }
}

#[test]
fn config_defaults_match_the_documentation() {
    let c = cfg();
    assert_eq!(c.hold_time(), Duration::from_secs(90));
    assert_eq!(c.open_hold_time(), Duration::from_secs(240));
    assert_eq!(c.connect_retry_base(), Duration::from_secs(1));
    assert_eq!(c.connect_retry_max(), Duration::from_secs(60));
    assert_eq!(c.connect_timeout(), Duration::from_secs(30));
    assert_eq!(c.stable_after(), Duration::from_secs(60));
    assert_eq!(c.damped_idle_hold(), Duration::from_secs(60));
    assert_eq!(c.max_prefix(), None);
    assert_eq!(c.max_prefix_warning_pct(), 75);
    assert!(!c.passive());
    assert!(c.capabilities().route_refresh);
}
