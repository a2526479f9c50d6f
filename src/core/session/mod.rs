//! The per-peer session state machine: a sans-IO take on the BGP FSM of
//! RFC 4271 section 8.
//!
//! [`Session`] owns one peering's lifecycle: dialling and accepting, the
//! OPEN exchange and its checks, hold and keepalive timers, reconnect
//! back-off, max-prefix enforcement, connection collisions and per-session
//! counters. It is driven by [`Event`]s, each stamped with the current time
//! as [`Millis`], and answers with [`Action`]s; [`Session::next_deadline`]
//! says when the driver must next call [`Session::handle`] with
//! [`Event::Tick`]. It never reads a clock, touches a socket or spawns a
//! task, so tests and the simulator drive it exactly like the node does.
//!
//! What the caller still decides:
//! - *Transports.* The driver dials on [`Action::Connect`], reports the
//!   outcome, and keeps at most one current transport per session (see
//!   [`Action`] for the exact rule when a second one turns up).
//! - *Routes.* The session hands UPDATEs over ([`Action::DeliverUpdate`]) and
//!   says when the peer is gone ([`Action::Down`]); the engine keeps the
//!   RIBs, withdraws what it learned, and reports back how many routes it
//!   holds ([`Event::AcceptedRoutes`]) so max-prefix can be enforced here.
//! - *Identity.* The peer's certificate is verified by `crate::identity`
//!   before the OPEN is delivered; this module only compares identifiers.
//!
//! States, transitions, timers and notifications are tabulated in
//! `docs/session.md`.

mod collision;
mod config;
mod counters;
mod open;
mod timers;

#[cfg(test)]
mod pair;
#[cfg(test)]
mod proptests;
#[cfg(test)]
mod tests;

pub use collision::{CollisionVerdict, Direction, collision_winner, resolve_collision};
pub use config::{ConfigError, SessionConfig};
pub use counters::{Counters, ErrorSide, LastError, MessageCounts};
pub use open::Negotiated;

use config::ms;
use timers::{Backoff, Timer, Timers};

use super::ids::{Millis, NodeId};
use super::message::{ErrorCode, Message, Notification, Update, subcode};

/// The FSM's states. RFC 4271's Connect and Active are folded into
/// [`State::Connecting`]: a session that is dialling also accepts the peer's
/// connection, and a passive one only waits for it, so the distinction
/// buys nothing here.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum State {
    /// No transport. Either stopped, or waiting out the reconnect back-off.
    Idle,
    /// Dialling the peer and/or waiting for it to connect.
    Connecting,
    /// Transport up, our OPEN sent, waiting for the peer's.
    OpenSent,
    /// Both OPENs accepted, our KEEPALIVE sent, waiting for the peer's.
    OpenConfirm,
    /// Routes flow.
    Established,
}

/// Inputs to [`Session::handle`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// Administrative or automatic start (RFC 4271 Events 1/3). In Idle this
    /// connects right away, skipping any back-off; elsewhere it is a no-op.
    Start,
    /// Administrative stop (Event 2): a NOTIFICATION Cease/ADMIN_SHUTDOWN if
    /// a transport is up, then Idle with no reconnect until the next `Start`.
    Stop,
    /// A transport to the peer is up (Events 16/17). `remote` is the node id
    /// the transport layer authenticated.
    TransportUp {
        direction: Direction,
        remote: NodeId,
    },
    /// Our dial failed (Event 18 before a transport existed).
    TransportFailed,
    /// The current transport closed under us (Event 18).
    TransportClosed,
    /// A message arrived on the current transport.
    Received(Message),
    /// The codec could not decode a message on the current transport; the
    /// session sends this NOTIFICATION and resets (Events 21/22/28).
    DecodeError(Notification),
    /// How many routes the engine now holds from this peer after import
    /// policy; checked against max-prefix.
    AcceptedRoutes(usize),
    /// Send an UPDATE to the peer. Only honoured when Established; an UPDATE
    /// queued by the engine in the same breath as a teardown is dropped.
    SendUpdate(Update),
    /// Ask the peer to resend its routes; only honoured when Established and
    /// both sides negotiated route refresh.
    SendRouteRefresh,
    /// Time passed; due timers fire. Every event fires due timers first, so
    /// a tick is only needed when nothing else happens.
    Tick,
}

/// Outputs of [`Session::handle`], to be carried out in order.
///
/// Transport rule for drivers: the session uses at most one transport.
/// `Send` and `Disconnect` act on the *current* one. A transport reported by
/// [`Event::TransportUp`] becomes current as soon as the slot is free
/// (immediately if there was none, or right after the `Disconnect` that
/// closes the old one in the same batch) unless that batch answers it with
/// [`Action::Refuse`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Dial the peer; report [`Event::TransportUp`] or [`Event::TransportFailed`].
    Connect,
    /// Abandon the dial in progress. If it completes anyway, report it as
    /// usual; the session will refuse it or resolve the collision.
    CancelConnect,
    /// Send a message on the current transport.
    Send(Message),
    /// Close the current transport once the `Send`s before this are flushed.
    Disconnect,
    /// Send this NOTIFICATION on the transport just reported by
    /// `TransportUp`, then close it. The current transport is untouched.
    Refuse(Notification),
    /// The session reached Established with these parameters.
    Established(Negotiated),
    /// The session left Established; withdraw everything learned from this
    /// peer. Emitted exactly once after every [`Action::Established`].
    Down { reason: DownReason },
    /// An UPDATE from the peer, for the engine's Adj-RIB-In.
    DeliverUpdate(Update),
    /// The peer asked us to resend our Adj-RIB-Out to it.
    DeliverRouteRefresh,
    /// Accepted routes crossed the warning share of the max-prefix limit.
    /// Emitted once per crossing; re-armed when the count falls back below.
    MaxPrefixWarning { accepted: usize, limit: u32 },
}

/// Why an Established session went down.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DownReason {
    /// We sent this NOTIFICATION and closed: hold timer expiry, an FSM or
    /// decode error, max-prefix, or an administrative stop.
    Sent(Notification),
    /// The peer sent this NOTIFICATION.
    Received(Notification),
    /// The transport closed without a NOTIFICATION. Whether the peer meant
    /// to leave, crashed, or the network failed is not known.
    TransportClosed,
}

/// How a session falls back after it loses its transport.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Restart {
    /// Idle, then reconnect after the exponential back-off.
    Backoff,
    /// Idle, dialling again after at least the damped idle hold: the peer
    /// told us to go away (Cease), so hammering it helps no one. If it
    /// dials us first, it has changed its mind and we accept.
    PeerCeased,
    /// Idle for at least the damped idle hold, refusing the peer's
    /// connections too: we cut it off for sending too many routes, and
    /// letting it straight back in would re-learn the flood.
    MaxPrefix,
    /// Idle until the next `Start`.
    Admin,
    /// The peer closed this transport to keep the one it dialled (Cease /
    /// COLLISION_RESOLUTION): wait in Connecting for that one.
    AwaitOther,
}

/// What the single `match` in `dispatch` decides.
#[derive(Debug)]
enum Next {
    /// (Re-)enter a state with a transport already in place.
    Enter(State),
    /// Drop the transport (and dial) and fall back as `restart` says.
    /// `reason` is `None` only when there was no transport to lose.
    Close {
        reason: Option<DownReason>,
        restart: Restart,
    },
}

/// An event from outside or a timer that fell due.
#[derive(Debug)]
enum Input {
    Ev(Event),
    Timer(Timer),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Transport {
    direction: Direction,
    remote: NodeId,
}

/// One peering session. See the module docs.
#[derive(Debug, Clone)]
pub struct Session {
    config: SessionConfig,
    state: State,
    /// False until `Start` and after `Stop`: no automatic reconnects.
    enabled: bool,
    transport: Option<Transport>,
    /// A `Connect` is outstanding.
    dialing: bool,
    negotiated: Option<Negotiated>,
    timers: Timers,
    backoff: Backoff,
    /// The max-prefix warning fired and has not been re-armed yet.
    prefix_warned: bool,
    /// How the session fell into Idle; decides whether Idle accepts the
    /// peer's connection.
    idle_cause: Restart,
    counters: Counters,
}

impl Session {
    /// A stopped session in Idle; send [`Event::Start`] to bring it up.
    /// `seed` drives the back-off jitter: give each session its own.
    pub fn new(config: SessionConfig, seed: u64) -> Result<Self, ConfigError> {
        config.validate()?;
        let backoff = Backoff::new(
            ms(config.connect_retry_base()),
            ms(config.connect_retry_max()),
            seed,
        );
        Ok(Session {
            config,
            state: State::Idle,
            enabled: false,
            transport: None,
            dialing: false,
            negotiated: None,
            timers: Timers::default(),
            backoff,
            prefix_warned: false,
            idle_cause: Restart::Admin,
            counters: Counters::default(),
        })
    }

    pub fn state(&self) -> State {
        self.state
    }
    pub fn config(&self) -> &SessionConfig {
        &self.config
    }
    /// The parameters agreed in OpenConfirm and Established; `None` otherwise.
    pub fn negotiated(&self) -> Option<&Negotiated> {
        self.negotiated.as_ref()
    }
    pub fn counters(&self) -> &Counters {
        &self.counters
    }
    /// True between `Start` and `Stop`: the session reconnects by itself.
    pub fn is_enabled(&self) -> bool {
        self.enabled
    }
    /// The node at the far end of the current transport, if any.
    pub fn remote(&self) -> Option<NodeId> {
        self.transport.map(|t| t.remote)
    }
    /// Reconnect attempts since the back-off was last reset.
    pub fn retry_attempts(&self) -> u32 {
        self.backoff.attempts()
    }
    /// When the driver must call `handle(.., Event::Tick)` next; always later
    /// than the `now` of the last `handle` call, or `None` when no timer runs.
    pub fn next_deadline(&self) -> Option<Millis> {
        self.timers.earliest()
    }

    /// Feeds one event at time `now` (non-decreasing across calls). Timers
    /// that fell due by `now` fire first, so a late tick never lets a dead
    /// peer's message revive a session whose hold time already ran out.
    pub fn handle(&mut self, now: Millis, event: Event) -> Vec<Action> {
        let mut out = Vec::new();
        for t in Timer::FIRING_ORDER {
            if self.timers.take_due(t, now) {
                self.dispatch(now, Input::Timer(t), &mut out);
            }
        }
        if event != Event::Tick {
            self.dispatch(now, Input::Ev(event), &mut out);
        }
        out
    }

    /// The FSM proper: one match on (state, input) deciding the next state;
    /// state-entry and -exit effects live in `transition` only.
    fn dispatch(&mut self, now: Millis, input: Input, out: &mut Vec<Action>) {
        use Event as E;
        use State::*;

        // Every message on the live transport counts, and in OpenConfirm and
        // Established any message proves the peer alive (RFC 4271 restarts
        // the HoldTimer on KEEPALIVE and UPDATE; we extend it to all).
        if let Input::Ev(E::Received(msg)) = &input
            && self.transport.is_some()
        {
            self.counters.received.count(msg);
            if matches!(self.state, OpenConfirm | Established) {
                self.restart_hold(now);
            }
        }

        let next = match (self.state, input) {
            // ---- administrative ----
            // ManualStart / AutomaticStart (Events 1, 3).
            (Idle, Input::Ev(E::Start)) => {
                self.enabled = true;
                self.backoff.reset();
                Some(Next::Enter(Connecting))
            }
            // RFC 4271: Start outside Idle is ignored.
            (_, Input::Ev(E::Start)) => {
                self.enabled = true;
                None
            }
            // ManualStop (Event 2).
            (Idle, Input::Ev(E::Stop)) => {
                self.enabled = false;
                self.timers.disarm(Timer::IdleHold);
                None
            }
            (Connecting, Input::Ev(E::Stop)) => {
                self.enabled = false;
                Some(Next::Close {
                    reason: None,
                    restart: Restart::Admin,
                })
            }
            (OpenSent | OpenConfirm | Established, Input::Ev(E::Stop)) => {
                self.enabled = false;
                let n = Notification::new(
                    ErrorCode::Cease,
                    subcode::ADMIN_SHUTDOWN,
                    "administratively shut down",
                );
                Some(self.send_and_close(now, n, Restart::Admin, out))
            }
            // IdleHoldTimer_Expires (Event 13): automatic restart.
            (Idle, Input::Timer(Timer::IdleHold)) => Some(Next::Enter(Connecting)),

            // ---- transport ----
            // RFC 4271's Idle refuses every connection. An enabled session
            // that is only backing off accepts the peer's instead: the
            // back-off paces *our* dials, and refusing would make two peers
            // that failed together keep refusing each other.
            (Idle, Input::Ev(E::TransportUp { direction, remote }))
                if self.enabled && self.idle_cause != Restart::MaxPrefix =>
            {
                self.attach(direction, remote);
                Some(Next::Enter(OpenSent))
            }
            (Idle, Input::Ev(E::TransportUp { direction, .. })) => {
                let n = Notification::new(
                    ErrorCode::Cease,
                    subcode::CONNECTION_REJECTED,
                    if self.enabled {
                        "holding off after exceeding the max-prefix limit"
                    } else {
                        "session is administratively down"
                    },
                );
                self.refuse(direction, n, out);
                None
            }
            // Tcp_CR_Acked / TcpConnectionConfirmed (Events 16, 17).
            (Connecting, Input::Ev(E::TransportUp { direction, remote })) => {
                self.attach(direction, remote);
                Some(Next::Enter(OpenSent))
            }
            (OpenSent | OpenConfirm, Input::Ev(E::TransportUp { direction, remote })) => {
                self.on_collision(direction, remote, out)
            }
            // RFC 4271 section 6.8: a collision with an Established session
            // always closes the newcomer.
            (Established, Input::Ev(E::TransportUp { direction, remote })) => {
                let n = match self.stranger_rejection(&remote) {
                    Some(n) => n,
                    None => Notification::new(
                        ErrorCode::Cease,
                        subcode::COLLISION_RESOLUTION,
                        "keeping the established connection",
                    ),
                };
                self.refuse(direction, n, out);
                None
            }
            // TcpConnectionFails (Event 18) while only dialling.
            (Connecting, Input::Ev(E::TransportFailed)) if self.dialing => {
                self.dialing = false;
                Some(Next::Close {
                    reason: None,
                    restart: Restart::Backoff,
                })
            }
            // A dial that lost the race to the peer's connection (or was
            // cancelled) failed: nothing rides on it.
            (_, Input::Ev(E::TransportFailed)) => {
                self.dialing = false;
                None
            }
            // TcpConnectionFails (Event 18) with a transport up.
            (OpenSent | OpenConfirm | Established, Input::Ev(E::TransportClosed)) => {
                Some(Next::Close {
                    reason: Some(DownReason::TransportClosed),
                    restart: Restart::Backoff,
                })
            }
            // ConnectRetryTimer_Expires (Event 9). RFC 4271 redials at once
            // from Connect; we go through Idle so retries back off.
            (Connecting, Input::Timer(Timer::ConnectRetry)) => Some(Next::Close {
                reason: None,
                restart: Restart::Backoff,
            }),

            // ---- the handshake ----
            // BGPOpen (Event 19) or BGPOpenMsgErr (Event 22).
            (OpenSent, Input::Ev(E::Received(Message::Open(o)))) => {
                let remote = self.transport.map_or(o.node, |t| t.remote);
                match open::check_open(&self.config, &remote, &o) {
                    Ok(()) => {
                        let direction = self.transport.map_or(Direction::Inbound, |t| t.direction);
                        self.negotiated = Some(open::negotiate(&self.config, o, direction));
                        Some(Next::Enter(OpenConfirm))
                    }
                    Err(n) => Some(self.send_and_close(now, n, Restart::Backoff, out)),
                }
            }
            // KeepAliveMsg (Event 26) completes the handshake.
            (OpenConfirm, Input::Ev(E::Received(Message::Keepalive))) => {
                Some(Next::Enter(Established))
            }

            // ---- Established ----
            (Established, Input::Ev(E::Received(Message::Keepalive))) => None,
            // UpdateMsg (Event 27).
            (Established, Input::Ev(E::Received(Message::Update(u)))) => {
                out.push(Action::DeliverUpdate(u));
                None
            }
            // RFC 2918 section 4 ignores a ROUTE-REFRESH for an address
            // family the speaker never advertised; an un-negotiated one is
            // treated the same way rather than reset.
            (Established, Input::Ev(E::Received(Message::RouteRefresh))) => {
                if self.route_refresh_negotiated() {
                    out.push(Action::DeliverRouteRefresh);
                }
                None
            }
            (Established, Input::Ev(E::AcceptedRoutes(n))) => self.check_max_prefix(now, n, out),
            (Established, Input::Ev(E::SendUpdate(u))) => {
                self.send(Message::Update(u), out);
                // RFC 4271 4.4: the KeepaliveTimer restarts on UPDATE too.
                self.restart_keepalive(now);
                None
            }
            (Established, Input::Ev(E::SendRouteRefresh)) => {
                if self.route_refresh_negotiated() {
                    self.send(Message::RouteRefresh, out);
                }
                None
            }

            // ---- any state with a transport ----
            // NotifMsg (Event 25).
            (
                OpenSent | OpenConfirm | Established,
                Input::Ev(E::Received(Message::Notification(n))),
            ) => Some(self.peer_closed(now, n)),
            // BGPHeaderErr / BGPOpenMsgErr / UpdateMsgErr (Events 21, 22, 28).
            (OpenSent | OpenConfirm | Established, Input::Ev(E::DecodeError(n))) => {
                Some(self.send_and_close(now, n, Restart::Backoff, out))
            }
            // KeepaliveTimer_Expires (Event 11).
            (OpenConfirm | Established, Input::Timer(Timer::Keepalive)) => {
                self.send(Message::Keepalive, out);
                self.restart_keepalive(now);
                None
            }
            // HoldTimer_Expires (Event 10).
            (OpenSent | OpenConfirm | Established, Input::Timer(Timer::Hold)) => {
                let n = Notification::new(
                    ErrorCode::HoldTimerExpired,
                    0,
                    format!("no message from the peer for {} ms", self.hold_ms()),
                );
                Some(self.send_and_close(now, n, Restart::Backoff, out))
            }
            // Any other message: an FSM error (RFC 6608 subcodes).
            (s @ (OpenSent | OpenConfirm | Established), Input::Ev(E::Received(msg))) => {
                let sub = match s {
                    OpenSent => subcode::UNEXPECTED_IN_OPENSENT,
                    OpenConfirm => subcode::UNEXPECTED_IN_OPENCONFIRM,
                    _ => subcode::UNEXPECTED_IN_ESTABLISHED,
                };
                let n = Notification::new(
                    ErrorCode::Fsm,
                    sub,
                    format!("unexpected {} in {s:?}", msg.kind()),
                );
                Some(self.send_and_close(now, n, Restart::Backoff, out))
            }

            // ---- stale inputs ----
            // Without a transport, a message, close or decode error can only
            // be a leftover of one already dropped. Engine inputs outside
            // Established race with a teardown in the same batch. Neither is
            // the peer's fault, so neither resets anything.
            (
                _,
                Input::Ev(
                    E::Received(_)
                    | E::TransportClosed
                    | E::DecodeError(_)
                    | E::AcceptedRoutes(_)
                    | E::SendUpdate(_)
                    | E::SendRouteRefresh,
                ),
            ) => {
                tracing::debug!(state = ?self.state, "session ignored a stale input");
                None
            }
            // Every state entry disarms the timers it does not use, so a
            // timer firing in the wrong state would be a bug here; ignoring
            // it is still the safe answer.
            (s, Input::Timer(t)) => {
                debug_assert!(false, "timer {t:?} fired in {s:?}");
                None
            }
            (_, Input::Ev(E::Tick)) => None,
        };

        if let Some(next) = next {
            self.transition(now, next, out);
        }
    }

    /// Entry and exit effects, in one place: leaving Established reports
    /// `Down`; losing the transport sends `Disconnect`; each state arms its
    /// own timers and nothing else.
    fn transition(&mut self, now: Millis, next: Next, out: &mut Vec<Action>) {
        let from = self.state;
        let (to, restart) = match next {
            Next::Enter(s) => (s, None),
            Next::Close { reason, restart } => {
                let to = if restart == Restart::AwaitOther {
                    State::Connecting
                } else {
                    State::Idle
                };
                if self.transport.take().is_some() {
                    out.push(Action::Disconnect);
                }
                if to == State::Idle && self.dialing {
                    self.dialing = false;
                    out.push(Action::CancelConnect);
                }
                if from == State::Established {
                    self.leave_established(now, reason, out);
                }
                (to, Some(restart))
            }
        };
        debug_assert!(
            from != State::Established || to == State::Idle || to == State::Connecting,
            "left Established for {to:?} without closing"
        );
        self.state = to;
        match to {
            State::Idle => {
                self.timers.clear();
                self.negotiated = None;
                self.idle_cause = restart.unwrap_or(Restart::Backoff);
                let delay = match restart {
                    _ if !self.enabled => None,
                    Some(Restart::Admin) => None,
                    Some(Restart::PeerCeased | Restart::MaxPrefix) => Some(
                        self.backoff
                            .next_delay_ms()
                            .max(ms(self.config.damped_idle_hold())),
                    ),
                    _ => Some(self.backoff.next_delay_ms()),
                };
                if let Some(d) = delay {
                    self.timers.arm(Timer::IdleHold, now, d);
                }
            }
            State::Connecting => {
                self.timers.clear();
                self.negotiated = None;
                let passive = self.config.passive();
                if !passive && restart != Some(Restart::AwaitOther) {
                    self.dialing = true;
                    self.counters.connect_attempts =
                        self.counters.connect_attempts.saturating_add(1);
                    out.push(Action::Connect);
                }
                // Passive sessions wait for the peer indefinitely.
                if !passive {
                    self.timers
                        .arm(Timer::ConnectRetry, now, ms(self.config.connect_timeout()));
                }
            }
            State::OpenSent => {
                self.timers.clear();
                self.negotiated = None;
                self.send(Message::Open(open::our_open(&self.config)), out);
                self.timers
                    .arm(Timer::Hold, now, ms(self.config.open_hold_time()));
            }
            State::OpenConfirm => {
                self.timers.clear();
                self.send(Message::Keepalive, out);
                self.restart_keepalive(now);
                self.restart_hold(now);
            }
            State::Established => {
                // The keepalive cadence carries on from OpenConfirm; the hold
                // timer was restarted by the KEEPALIVE that brought us here.
                self.timers.disarm(Timer::ConnectRetry);
                self.timers.disarm(Timer::IdleHold);
                self.prefix_warned = false;
                self.counters.established_since = Some(now);
                match &self.negotiated {
                    Some(n) => out.push(Action::Established(n.clone())),
                    None => debug_assert!(false, "Established without negotiated parameters"),
                }
            }
        }
    }

    fn leave_established(
        &mut self,
        now: Millis,
        reason: Option<DownReason>,
        out: &mut Vec<Action>,
    ) {
        debug_assert!(
            reason.is_some(),
            "an Established session always closes for a reason"
        );
        self.counters.flaps = self.counters.flaps.saturating_add(1);
        if let Some(since) = self.counters.established_since.take()
            && now.saturating_sub(since) >= ms(self.config.stable_after())
        {
            // A session that held this long was healthy; its failure is not
            // part of a flapping streak.
            self.backoff.reset();
        }
        out.push(Action::Down {
            reason: reason.unwrap_or(DownReason::TransportClosed),
        });
    }

    /// A second transport to the peer while the handshake runs.
    fn on_collision(
        &mut self,
        direction: Direction,
        remote: NodeId,
        out: &mut Vec<Action>,
    ) -> Option<Next> {
        let Some(current) = self.transport else {
            // Unreachable: OpenSent and OpenConfirm always have a transport.
            // Treat the newcomer as the first one.
            self.attach(direction, remote);
            return Some(Next::Enter(State::OpenSent));
        };
        if let Some(n) = self.stranger_rejection(&remote) {
            self.refuse(direction, n, out);
            return None;
        }
        let local = self.config.local_node();
        match resolve_collision(&local, &remote, current.direction, direction) {
            CollisionVerdict::KeepExisting => {
                let n = Notification::new(
                    ErrorCode::Cease,
                    subcode::COLLISION_RESOLUTION,
                    format!("keeping the {:?} connection", current.direction),
                );
                self.refuse(direction, n, out);
                if direction == Direction::Outbound {
                    self.dialing = false;
                }
                None
            }
            CollisionVerdict::KeepIncoming => {
                let n = Notification::new(
                    ErrorCode::Cease,
                    subcode::COLLISION_RESOLUTION,
                    format!("keeping the {direction:?} connection"),
                );
                self.send(Message::Notification(n), out);
                out.push(Action::Disconnect);
                self.attach(direction, remote);
                // Re-entering OpenSent sends our OPEN on the new transport.
                Some(Next::Enter(State::OpenSent))
            }
        }
    }

    /// A transport from some node other than the one this session already
    /// talks to is not a collision: the engine routed it here by mistake or
    /// the node is impersonating our peer's address. `None` if it is our peer.
    fn stranger_rejection(&self, remote: &NodeId) -> Option<Notification> {
        let current = self.transport?.remote;
        (current != *remote).then(|| {
            Notification::new(
                ErrorCode::Cease,
                subcode::CONNECTION_REJECTED,
                format!(
                    "this session runs with node {}, not {}",
                    current.short(),
                    remote.short()
                ),
            )
        })
    }

    fn attach(&mut self, direction: Direction, remote: NodeId) {
        if direction == Direction::Outbound {
            self.dialing = false;
        }
        self.transport = Some(Transport { direction, remote });
    }

    fn check_max_prefix(
        &mut self,
        now: Millis,
        accepted: usize,
        out: &mut Vec<Action>,
    ) -> Option<Next> {
        let limit = self.config.max_prefix()?;
        let count = u64::try_from(accepted).unwrap_or(u64::MAX);
        if count > u64::from(limit) {
            let n = Notification::new(
                ErrorCode::Cease,
                subcode::MAX_PREFIX,
                format!("accepted {accepted} routes, limit is {limit}"),
            );
            return Some(self.send_and_close(now, n, Restart::MaxPrefix, out));
        }
        let pct = u64::from(self.config.max_prefix_warning_pct());
        let over = count > 0 && count.saturating_mul(100) >= u64::from(limit) * pct;
        if over && !self.prefix_warned {
            self.prefix_warned = true;
            out.push(Action::MaxPrefixWarning { accepted, limit });
        } else if !over {
            self.prefix_warned = false;
        }
        None
    }

    /// Sends a NOTIFICATION on the current transport and closes it.
    fn send_and_close(
        &mut self,
        now: Millis,
        n: Notification,
        restart: Restart,
        out: &mut Vec<Action>,
    ) -> Next {
        self.counters.last_error = Some(LastError {
            at: now,
            side: ErrorSide::Sent,
            notification: n.clone(),
        });
        self.send(Message::Notification(n.clone()), out);
        Next::Close {
            reason: Some(DownReason::Sent(n)),
            restart,
        }
    }

    /// The peer closed with a NOTIFICATION. A Cease means it wants us gone
    /// for now, so the reconnect is damped, except two: a collision Cease
    /// (the peer keeps the other transport, so we wait for that one) and a
    /// rejected connection (the peer was itself backing off: "not now").
    fn peer_closed(&mut self, now: Millis, n: Notification) -> Next {
        self.counters.last_error = Some(LastError {
            at: now,
            side: ErrorSide::Received,
            notification: n.clone(),
        });
        let restart = match (n.code, n.subcode) {
            (ErrorCode::Cease, subcode::COLLISION_RESOLUTION) => Restart::AwaitOther,
            (ErrorCode::Cease, subcode::CONNECTION_REJECTED) => Restart::Backoff,
            (ErrorCode::Cease, _) => Restart::PeerCeased,
            _ => Restart::Backoff,
        };
        Next::Close {
            reason: Some(DownReason::Received(n)),
            restart,
        }
    }

    fn refuse(&mut self, direction: Direction, n: Notification, out: &mut Vec<Action>) {
        tracing::debug!(?direction, %n, "session refused a transport");
        self.counters.sent.count(&Message::Notification(n.clone()));
        out.push(Action::Refuse(n));
    }

    fn send(&mut self, msg: Message, out: &mut Vec<Action>) {
        self.counters.sent.count(&msg);
        out.push(Action::Send(msg));
    }

    fn route_refresh_negotiated(&self) -> bool {
        self.negotiated
            .as_ref()
            .is_some_and(|n| n.capabilities.route_refresh)
    }

    /// The hold time in force: negotiated once known, else the open hold.
    fn hold_ms(&self) -> u64 {
        match &self.negotiated {
            Some(n) => ms(n.hold_time),
            None => ms(self.config.open_hold_time()),
        }
    }

    fn restart_hold(&mut self, now: Millis) {
        match self.negotiated.as_ref().map(|n| n.hold_time) {
            Some(h) if !h.is_zero() => self.timers.arm(Timer::Hold, now, ms(h)),
            // Hold time 0: RFC 4271 runs no hold timer at all.
            _ => self.timers.disarm(Timer::Hold),
        }
    }

    fn restart_keepalive(&mut self, now: Millis) {
        match self.negotiated.as_ref().and_then(|n| n.keepalive_interval) {
            Some(every) => self.timers.arm(Timer::Keepalive, now, ms(every)),
            None => self.timers.disarm(Timer::Keepalive),
        }
    }
}
