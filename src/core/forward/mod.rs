//! Call forwarding: what one hop does with a tunnelled tool call.
//!
//! Sans-IO, like the engine: [`Forwarder::handle`] takes a [`CallEvent`]
//! with the current time and a view of the routing table ([`CallRoutes`]),
//! and returns [`CallAction`]s for the driver to carry out (send a message
//! to a peer, run the tool on a local agent, answer the MCP front).
//!
//! ```text
//!  front / peer CALL ──> checks (deadline, hop limit, advertised to sender)
//!        ──> longest-prefix match in the Loc-RIB ──┬─> next hop: CALL on a new leg
//!                                                  └─> local route: verify caller,
//!                                                      access policy, Deliver
//!  answer / progress / result from downstream ──> back on the incoming leg
//!  cancel from upstream ──> CANCEL downstream (or cancel the local run)
//!  peer down / send failed ──> retry elsewhere if allowed, else a clear error
//!  Tick ──> answer CALLs held past the hold time; expire calls past their deadline
//! ```
//!
//! # The call table
//!
//! One entry per call in flight at this hop, keyed by where it came from
//! ([`InKey`]: the local front and its id, or the sending peer and its leg
//! id). The entry records where it went (a peer and the leg id this hop
//! chose, or a local delivery), the deadline, whether the CALL's answer is
//! still owed, and, for calls that may be retried, the CALL to resend.
//!
//! # Rules every hop applies
//!
//! - A CALL from a peer is refused unless this node advertised a prefix
//!   covering the target to that peer: a peer cannot use us as a relay for
//!   what we never offered it.
//! - A CALL past its deadline is refused; one that would leave with a hop
//!   limit of 0 is refused. Calls are never sent back to the peer they came
//!   from.
//! - At the origin (the best path is local), the caller named in the signed
//!   origin is verified ([`CallerVerifier`]), replays are refused (an
//!   idempotent call may arrive twice: that is a retry), and the
//!   access policy decides ([`crate::core::access`]).
//! - A CALL's answer is held up to the hold time: a call that finishes
//!   sooner is answered inline ([`CallAnswer::Done`](crate::core::call::CallAnswer::Done)), one round trip per
//!   hop; a longer one is answered `Accepted` and its result follows as a
//!   CALL-RESULT request.
//! - When the next hop goes away mid-call, the call fails with
//!   [`CallErrorKind::NextHopDown`](crate::core::call::CallErrorKind::NextHopDown), unless the CALL was certainly not
//!   received (then it is retried elsewhere) or the caller marked it
//!   idempotent (read-only or idempotent tools): then the next usable path
//!   is tried, within the deadline. Each path is tried once first; when all
//!   have been, a path other than the one that just failed may be tried
//!   again (it may have refused while restarting), while the call has been
//!   retried fewer than `MAX_RETRIES` (3) times.
//!
//! # Where things live
//!
//! `events` (the vocabulary: clock, keys, events, actions, counters),
//! `routes` (what it reads of the RIB, how it checks a caller), `config`,
//! `table` (the call table and its invariants), `replay` (the replay
//! window), `arrive` (admission, next hop, delivery), `answer` (what comes
//! back, how a call ends, the timers), `retry` (lost CALLs and the next
//! path), `quota` (who may hold how much of the table).
//!
//! What this module does **not** do: cryptography (the verifier is passed
//! in), encoding, or choosing a timeout for the front (callers set the
//! deadline in the signed origin).

pub mod balance;
pub mod quota;
#[cfg(test)]
mod tests;

mod answer;
mod arrive;
mod config;
mod events;
pub mod replay;
mod retry;
mod routes;
mod table;

use crate::core::access::AccessPolicy;
use crate::core::call::{CallReturn, Cancel};
use crate::core::ids::NodeId;
use answer::Back;
use quota::{Claim, Quotas};
use replay::{Arrival, ReplayWindow, Verdict};
use table::{CallTable, Down, Entry, MAX_SIDE_MESSAGES, RETURN_HOLD_US, Timer};

pub use config::ForwardConfig;
pub use events::{
    CallAction, CallEvent, CallRecord, CallView, Delivery, ForwardStats, FrontId, FrontOpts, InKey,
    LocalId, Micros,
};
pub use routes::{
    AnswerSealer, CallRoutes, CallerRefused, CallerVerifier, NextHop, PayloadSealer, Resolution,
    SealMode, route_tool,
};

/// The key under a tool result's `_meta` where the calling node says the
/// origin's seal on the answer verified (`{"verified", "origin_node",
/// "origin_asn"}`).
pub const ANSWER_META: &str = "agent-bgp/answer";
pub use table::{
    MAX_SIDE_MESSAGES as SIDE_MESSAGES_PER_CALL, PROGRESS_BURST, PROGRESS_INTERVAL_US,
};

/// The per-hop call table and its rules. See the module documentation.
pub struct Forwarder {
    cfg: ForwardConfig,
    access: AccessPolicy,
    verifier: Box<dyn CallerVerifier>,
    /// Seals this origin's answers and checks those that come back (none:
    /// nothing is sealed or checked; tests, tools).
    answers: Option<Box<dyn AnswerSealer>>,
    /// Seals payloads end to end and opens those sealed to this node
    /// (none: nothing is sealed, and a sealed call arriving is refused).
    payloads: Option<Box<dyn PayloadSealer>>,
    table: CallTable,
    replay: ReplayWindow,
    stats: ForwardStats,
    quotas: Quotas,
    /// The claim of the call being admitted, until its entry takes it.
    admitting: Option<Claim>,
    balancer: balance::Balancer,
}

impl std::fmt::Debug for Forwarder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Forwarder")
            .field("node", &self.cfg.node.short())
            .field("calls", &self.table.len())
            .finish()
    }
}

impl Forwarder {
    pub fn new(cfg: ForwardConfig, verifier: Box<dyn CallerVerifier>) -> Self {
        let cfg_quotas = cfg.quotas.clone();
        Forwarder {
            table: CallTable::new(cfg.seed),
            balancer: balance::Balancer::new(cfg.balance.clone(), cfg.seed),
            replay: ReplayWindow::new(
                cfg.replay_window,
                cfg.started,
                cfg.clock_skew_ms,
                cfg.max_call_ms,
            ),
            cfg,
            access: AccessPolicy::default(),
            verifier,
            answers: None,
            payloads: None,
            stats: ForwardStats::default(),
            quotas: Quotas::new(cfg_quotas),
            admitting: None,
        }
    }

    /// Seal this origin's answers and check the seals of answers to calls
    /// made here ([`AnswerSealer`]).
    pub fn with_answers(mut self, a: Box<dyn AnswerSealer>) -> Self {
        self.answers = Some(a);
        self
    }

    /// Seal arguments and results end to end ([`PayloadSealer`], under
    /// the configured [`SealMode`]).
    pub fn with_payloads(mut self, p: Box<dyn PayloadSealer>) -> Self {
        self.payloads = Some(p);
        self
    }

    pub fn with_access(mut self, access: AccessPolicy) -> Self {
        self.access = access;
        self
    }

    /// Replaces the access policy (a configuration reload). Calls already
    /// delivered are not affected.
    pub fn set_access(&mut self, access: AccessPolicy) {
        self.access = access;
    }

    pub fn config(&self) -> &ForwardConfig {
        &self.cfg
    }

    /// Counters, with the quota refusals.
    pub fn stats(&self) -> ForwardStats {
        let mut s = self.stats.clone();
        s.quota = self.quotas.stats().clone();
        s
    }

    /// Calls in flight that came from `peer`, and that went to it.
    pub fn peer_load(&self, peer: &NodeId) -> (usize, usize) {
        (self.quotas.from_peer(peer), self.quotas.to_peer(peer))
    }

    /// The load balancer: its rules, and the latency it measured per
    /// next hop.
    pub fn balancer(&self) -> &balance::Balancer {
        &self.balancer
    }

    /// How calls for `target` are balanced over the paths of `routes`: the
    /// method, the set and each member's weight and latency (for
    /// operators: `abgp why`). `None` when there is no route, or the
    /// route is local.
    pub fn balance_view(
        &self,
        routes: &impl CallRoutes,
        target: &crate::core::prefix::Prefix,
    ) -> Option<balance::BalanceView> {
        let res = routes.resolve(target)?;
        let (paths, nearest) = res.balance_paths(|n| self.quotas.to_peer(n));
        if paths.is_empty() {
            return None;
        }
        let (_, multipath) = res.peer_hops();
        let ps = balance::Paths {
            matched: &res.matched,
            paths: &paths,
            multipath,
            nearest,
        };
        Some(self.balancer.view(target, ps))
    }

    /// Calls in flight at this hop.
    pub fn in_flight(&self) -> usize {
        self.table.len()
    }

    /// The calls in flight at this hop, oldest first (for operators: the
    /// admin API lists them).
    pub fn calls(&self, now: Micros) -> Vec<CallView> {
        let mut v: Vec<CallView> = self
            .table
            .iter()
            .map(|(k, e)| CallView {
                call_id: e.call_id,
                target: e.target.clone(),
                from: k.peer(),
                to: e.down.peer(),
                agent: e.agent.clone(),
                age_ms: now.0.saturating_sub(e.started.0) / 1000,
                deadline_in_ms: e.deadline.0.saturating_sub(now.0) / 1000,
                retries: e.retries,
            })
            .collect();
        v.sort_by_key(|c| std::cmp::Reverse(c.age_ms));
        v
    }

    /// When the driver should send the next [`CallEvent::Tick`].
    pub fn next_deadline(&self) -> Option<Micros> {
        self.table.next_due()
    }

    /// Handles one event.
    pub fn handle(
        &mut self,
        now: Micros,
        routes: &impl CallRoutes,
        ev: CallEvent,
    ) -> Vec<CallAction> {
        let mut out = Vec::new();
        match ev {
            CallEvent::Front { id, call, opts } => {
                self.on_front(now, routes, id, call, opts, &mut out)
            }
            CallEvent::FrontCancel { id, reason } => {
                self.cancel_entry(now, InKey::Front(id), reason, &mut out)
            }
            CallEvent::Inbound { peer, call, bytes } => {
                self.on_inbound(now, routes, peer, call, bytes, &mut out)
            }
            CallEvent::Answered { peer, leg, answer } => {
                self.on_answered(now, routes, peer, leg, answer, &mut out)
            }
            CallEvent::SendFailed {
                peer,
                leg,
                maybe_received,
                reason,
            } => {
                let lost = retry::Lost {
                    peer,
                    maybe_received,
                    reason: &reason,
                };
                self.on_send_failed(now, routes, leg, lost, &mut out)
            }
            CallEvent::Result { peer, result } => {
                if let Some(key) = self.table.by_leg(&peer, result.leg) {
                    self.finish_from_down(now, key, result.ret, &mut out);
                } else {
                    // Known race: the call timed out or was cancelled here
                    // while its result was on the way.
                    tracing::debug!(peer = %peer.short(), leg = %result.leg, "result for a call no longer here");
                }
            }
            CallEvent::Progress { peer, progress } => {
                match self.table.by_leg(&peer, progress.leg) {
                    Some(key) => self.progress_from_down(now, key, progress.info, &mut out),
                    // A leg we gave up on: say so, once.
                    None if self.table.take_gone(peer, progress.leg) => {
                        out.push(CallAction::SendCancel {
                            peer,
                            cancel: Cancel {
                                leg: progress.leg,
                                reason: Some("this call is no longer wanted".into()),
                            },
                        })
                    }
                    // Never ours, or told already: ignored.
                    None => {}
                }
            }
            CallEvent::Cancel { peer, cancel } => {
                self.cancel_entry(now, InKey::Peer(peer, cancel.leg), cancel.reason, &mut out)
            }
            CallEvent::Notify { peer, notify } => {
                let key = self.table.by_leg(&peer, notify.leg);
                let m = Back::Notify(notify.method, notify.params);
                self.back_from_down(now, key, m, &mut out);
            }
            CallEvent::Ask { peer, ask } => {
                let key = self.table.by_leg(&peer, ask.leg);
                let m = Back::Ask(ask.ask, ask.method, ask.params);
                self.back_from_down(now, key, m, &mut out);
            }
            CallEvent::LocalNotify { id, method, params } => {
                let key = self.table.by_local(id);
                self.relay_back(key, Back::Notify(method, params), &mut out);
            }
            CallEvent::LocalAsk {
                id,
                ask,
                method,
                params,
            } => {
                let key = self.table.by_local(id);
                self.relay_back(key, Back::Ask(ask, method, params), &mut out);
            }
            CallEvent::Reply { peer, reply } => self.relay_reply(
                InKey::Peer(peer, reply.leg),
                reply.ask,
                reply.outcome,
                &mut out,
            ),
            CallEvent::FrontReply { id, ask, outcome } => {
                self.relay_reply(InKey::Front(id), ask, outcome, &mut out)
            }
            CallEvent::LocalProgress { id, info } => {
                if let Some(key) = self.table.by_local(id) {
                    self.relay_progress(now, key, info, &mut out);
                }
            }
            CallEvent::LocalDone { id, outcome } => {
                if let Some(key) = self.table.by_local(id) {
                    self.finish(
                        now,
                        key,
                        CallReturn {
                            sealed: None,
                            seal: None,
                            sent_back: 0,
                            outcome,
                            trace: Vec::new(),
                        },
                        &mut out,
                    );
                }
            }
            CallEvent::PeerDown { peer } => {
                self.quotas.peer_gone(&peer);
                self.on_peer_down(now, routes, peer, &mut out)
            }
            CallEvent::Tick => self.on_tick(now, &mut out),
        }
        // Every forwarding test checks the table's invariants after each
        // event.
        #[cfg(test)]
        if let Err(e) = self.table.check() {
            panic!("call table invariant broken: {e}");
        }
        out
    }

    // ----- bookkeeping -----

    /// Adds an entry; it takes the claim of the call being admitted.
    fn insert(&mut self, key: InKey, mut e: Entry) {
        e.claim = self.admitting.take();
        self.table.insert(key, e);
    }

    /// Takes an entry out and gives back what it held of the quotas.
    fn remove(&mut self, key: InKey) -> Option<Entry> {
        let e = self.table.remove(key)?;
        if let Some(c) = e.claim {
            self.quotas.release(c);
        }
        if let Some(peer) = e.down.peer() {
            self.quotas.sent_to(peer, false);
        }
        Some(e)
    }

    fn here(&self) -> String {
        format!("{} ({})", self.cfg.asn, self.cfg.node.short())
    }
}
