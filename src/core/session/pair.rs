//! Two sessions wired back to back in memory, with a driver that follows
//! the transport rule documented on [`Action`]: one current transport per
//! session, a newly reported one takes the slot once it is free, `Refuse`
//! closes the newcomer. Dials complete at once; messages arrive in order.

use std::collections::{BTreeSet, VecDeque};
use std::time::Duration;

use super::tests::{FED, cfg, local, peer};
use super::*;
use crate::core::ids::Asn;

type ConnId = u32;

#[derive(Debug)]
enum Delivery {
    Up {
        to: usize,
        conn: ConnId,
        direction: Direction,
    },
    Msg {
        to: usize,
        conn: ConnId,
        msg: Message,
    },
    Closed {
        to: usize,
        conn: ConnId,
    },
}

struct Side {
    session: Session,
    id: NodeId,
    current: Option<ConnId>,
    /// A silent side's messages are lost, as if its process hung with the
    /// transport still open.
    silent: bool,
}

struct Pair {
    sides: [Side; 2],
    open: BTreeSet<ConnId>,
    /// Who dialled each connection.
    dialler: Vec<usize>,
    queue: VecDeque<Delivery>,
    now: u64,
    /// Every action each side produced, with its time.
    log: Vec<(u64, usize, Action)>,
}

impl Pair {
    fn new(a: SessionConfig, b: SessionConfig) -> Pair {
        let side = |c: SessionConfig, seed| {
            let id = c.local_node();
            Side {
                session: Session::new(c, seed).unwrap_or_else(|e| panic!("{e}")),
                id,
                current: None,
                silent: false,
            }
        };
        Pair {
            sides: [side(a, 1), side(b, 2)],
            open: BTreeSet::new(),
            dialler: Vec::new(),
            queue: VecDeque::new(),
            now: 0,
            log: Vec::new(),
        }
    }

    fn feed(&mut self, i: usize, event: Event, reported: Option<ConnId>) {
        let other = 1 - i;
        let mut pending = None;
        if let Some(c) = reported {
            if self.sides[i].current.is_none() {
                self.sides[i].current = Some(c);
            } else {
                pending = Some(c);
            }
        }
        let actions = self.sides[i].session.handle(Millis(self.now), event);
        for a in actions {
            self.log.push((self.now, i, a.clone()));
            match a {
                Action::Connect => {
                    let c = ConnId::try_from(self.dialler.len()).unwrap_or(ConnId::MAX);
                    self.dialler.push(i);
                    self.open.insert(c);
                    self.queue.push_back(Delivery::Up {
                        to: i,
                        conn: c,
                        direction: Direction::Outbound,
                    });
                    self.queue.push_back(Delivery::Up {
                        to: other,
                        conn: c,
                        direction: Direction::Inbound,
                    });
                }
                Action::Send(msg) => {
                    if let Some(conn) = self.sides[i].current
                        && self.open.contains(&conn)
                        && !self.sides[i].silent
                    {
                        self.queue.push_back(Delivery::Msg {
                            to: other,
                            conn,
                            msg,
                        });
                    }
                }
                Action::Disconnect => {
                    if let Some(conn) = self.sides[i].current.take() {
                        self.close(other, conn);
                    }
                    self.sides[i].current = pending.take();
                }
                Action::Refuse(n) => {
                    let Some(conn) = reported else {
                        panic!("Refuse without a reported transport")
                    };
                    if self.sides[i].current == Some(conn) {
                        self.sides[i].current = None;
                    }
                    pending = None;
                    self.queue.push_back(Delivery::Msg {
                        to: other,
                        conn,
                        msg: Message::Notification(n),
                    });
                    self.close(other, conn);
                }
                _ => {}
            }
        }
        assert!(
            pending.is_none(),
            "side {i} neither adopted nor refused transport {pending:?}"
        );
    }

    fn close(&mut self, far_end: usize, conn: ConnId) {
        if self.open.remove(&conn) {
            self.queue.push_back(Delivery::Closed { to: far_end, conn });
        }
    }

    fn deliver(&mut self, d: Delivery) {
        match d {
            Delivery::Up {
                to,
                conn,
                direction,
            } => {
                if self.open.contains(&conn) {
                    let remote = self.sides[1 - to].id;
                    self.feed(to, Event::TransportUp { direction, remote }, Some(conn));
                }
            }
            Delivery::Msg { to, conn, msg } => {
                if self.sides[to].current == Some(conn) {
                    self.feed(to, Event::Received(msg), None);
                }
            }
            Delivery::Closed { to, conn } => {
                if self.sides[to].current == Some(conn) {
                    self.sides[to].current = None;
                    self.feed(to, Event::TransportClosed, None);
                }
            }
        }
    }

    /// Delivers everything queued, then ticks both sides at their deadlines,
    /// until time `until`.
    fn run(&mut self, until: u64) {
        loop {
            while let Some(d) = self.queue.pop_front() {
                self.deliver(d);
            }
            let next = self
                .sides
                .iter()
                .filter_map(|s| s.session.next_deadline())
                .min();
            match next {
                Some(at) if at.0 <= until => {
                    self.now = at.0;
                    self.feed(0, Event::Tick, None);
                    self.feed(1, Event::Tick, None);
                }
                _ => break,
            }
        }
        self.now = until;
    }

    fn state(&self, i: usize) -> State {
        self.sides[i].session.state()
    }
}

fn a_cfg() -> SessionConfig {
    cfg().with_hold_time(Duration::from_secs(9))
}
fn b_cfg() -> SessionConfig {
    SessionConfig::new(Asn(65002), peer(), FED)
        .with_peer_node(local())
        .with_hold_time(Duration::from_secs(9))
}

fn started(a: SessionConfig, b: SessionConfig) -> Pair {
    let mut p = Pair::new(a, b);
    p.feed(0, Event::Start, None);
    p.feed(1, Event::Start, None);
    p.run(100);
    p
}

#[test]
fn active_and_passive_sessions_reach_established_back_to_back() {
    let p = started(a_cfg(), b_cfg().with_passive(true));
    assert_eq!(
        (p.state(0), p.state(1)),
        (State::Established, State::Established)
    );
    let n = p.sides[0].session.negotiated().cloned();
    assert_eq!(
        n.map(|n| (n.peer_asn, n.hold_time)),
        Some((Asn(65002), Duration::from_secs(9)))
    );
}

#[test]
fn simultaneous_dials_settle_on_the_higher_ids_connection() {
    let p = started(a_cfg(), b_cfg());
    assert_eq!(
        (p.state(0), p.state(1)),
        (State::Established, State::Established)
    );
    let (a, b) = (p.sides[0].current, p.sides[1].current);
    assert_eq!(a, b, "both ends run on the same transport");
    // peer() (20) > local() (10): side 1 dialled the survivor.
    assert_eq!(a.map(|c| p.dialler[c as usize]), Some(1));
    let ceases = p
        .log
        .iter()
        .filter(|(_, _, a)| {
            matches!(a, Action::Send(Message::Notification(n)) | Action::Refuse(n)
                if n.subcode == subcode::COLLISION_RESOLUTION)
        })
        .count();
    assert!(
        ceases >= 1,
        "a collision happened and was resolved: {:?}",
        p.log
    );
    assert!(
        p.log
            .iter()
            .all(|(_, _, a)| !matches!(a, Action::Down { .. }))
    );
}

#[test]
fn a_silent_peer_is_dropped_when_the_hold_timer_expires() {
    let mut p = started(a_cfg(), b_cfg().with_passive(true));
    let silent_from = p.now;
    p.sides[1].silent = true;
    p.run(silent_from + 20_000);
    let downs: Vec<_> = p
        .log
        .iter()
        .filter_map(|(t, i, a)| match a {
            Action::Down { reason } => Some((*t, *i, reason.clone())),
            _ => None,
        })
        .collect();
    let Some((at, 0, DownReason::Sent(n))) = downs.first().cloned() else {
        panic!("side 0 should time out first: {downs:?}")
    };
    assert_eq!(n.code, ErrorCode::HoldTimerExpired);
    // B's last KEEPALIVE reached A before `silent_from`; hold is 9 s.
    assert!(at > silent_from && at <= silent_from + 9_000, "{at}");
    // A's NOTIFICATION still reaches B, which goes down too.
    assert!(downs.iter().any(|(_, i, r)| *i == 1
        && matches!(r, DownReason::Received(n) if n.code == ErrorCode::HoldTimerExpired)));
}

#[test]
fn a_pair_recovers_after_a_transport_failure() {
    let mut p = started(a_cfg(), b_cfg());
    let Some(conn) = p.sides[0].current else {
        panic!("no transport")
    };
    // The network drops the connection under both ends.
    p.open.remove(&conn);
    p.queue.push_back(Delivery::Closed { to: 0, conn });
    p.queue.push_back(Delivery::Closed { to: 1, conn });
    let t = p.now;
    p.run(t + 10_000);
    assert_eq!(
        (p.state(0), p.state(1)),
        (State::Established, State::Established)
    );
    assert_eq!(p.sides[0].session.counters().flaps, 1);
}
