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
//!   sooner is answered inline ([`CallAnswer::Done`]), one round trip per
//!   hop; a longer one is answered `Accepted` and its result follows as a
//!   CALL-RESULT request.
//! - When the next hop goes away mid-call, the call fails with
//!   [`CallErrorKind::NextHopDown`], unless the CALL was certainly not
//!   received (then it is retried elsewhere) or the caller marked it
//!   idempotent (read-only or idempotent tools): then the next usable path
//!   is tried, within the deadline. Each path is tried once first; when all
//!   have been, a path other than the one that just failed may be tried
//!   again (it may have refused while restarting), while the call has been
//!   retried fewer than [`MAX_RETRIES`] times.
//!
//! What this module does **not** do: cryptography (the verifier is passed
//! in), encoding, or choosing a timeout for the front (callers set the
//! deadline in the signed origin).

pub mod quota;
#[cfg(test)]
mod tests;

use std::collections::{BTreeSet, HashMap, VecDeque};
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use serde_json::Value as Json;

use super::access::{AccessPolicy, Caller};
use super::attrs::AttrValue;
use super::call::{
    Call, CallAnswer, CallError, CallErrorKind, CallId, CallOp, CallOrigin, CallOutcome,
    CallResult, CallReturn, Cancel, HopTrace, LegId, Progress, ProgressInfo, TOOL_ATTR,
};
use super::engine::Engine;
use super::ids::{AgentId, Asn, Millis, NodeId};
use super::prefix::Prefix;
use super::route::Route;
use quota::{Claim, QuotaConfig, QuotaStats, Quotas, Source};

/// Microseconds since the Unix epoch: the forwarder's clock input. Finer
/// than the engine's [`Millis`] because per-hop latency is measured in
/// tens of microseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Micros(pub u64);

impl Micros {
    pub fn millis(self) -> Millis {
        Millis(self.0 / 1000)
    }
    pub fn from_millis(m: Millis) -> Micros {
        Micros(m.0.saturating_mul(1000))
    }
    pub fn plus_us(self, us: u64) -> Micros {
        Micros(self.0.saturating_add(us))
    }
}

/// A call from the local MCP front, named by the front.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct FrontId(pub u64);

/// A run of a tool on a local agent, named by the forwarder.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct LocalId(pub u64);

/// Where a call came from: the key of the call table.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum InKey {
    Front(FrontId),
    Peer(NodeId, LegId),
}

/// One way a call can leave this node.
#[derive(Debug, Clone, PartialEq)]
pub enum NextHop {
    /// This node originates the route: run the tool on `agent`.
    Local {
        agent: AgentId,
        /// The tool the route names (its `mcp.tool` attribute).
        tool: Option<Arc<str>>,
    },
    Peer(NodeId),
}

/// What the routing table says about a target.
#[derive(Debug, Clone, PartialEq)]
pub struct Resolution {
    /// The Loc-RIB prefix that matched.
    pub matched: Prefix,
    /// Best first; the first `multipath` are equally good.
    pub hops: Vec<NextHop>,
    pub multipath: usize,
}

/// The routing table as the forwarder reads it. Implemented by [`Engine`].
pub trait CallRoutes {
    fn resolve(&self, wanted: &Prefix) -> Option<Resolution>;
    /// Did this node advertise a prefix covering `wanted` to `peer`?
    fn advertised_cover(&self, peer: &NodeId, wanted: &Prefix) -> bool;
}

/// The tool a route names, from its `mcp.tool` attribute.
pub fn route_tool(route: &Route) -> Option<Arc<str>> {
    match route.attrs.extra.get(TOOL_ATTR).map(|a| &a.value) {
        Some(AttrValue::Text(t)) => Some(t.clone()),
        _ => None,
    }
}

impl CallRoutes for Engine {
    fn resolve(&self, wanted: &Prefix) -> Option<Resolution> {
        let f = self.forwarding(wanted)?;
        let hops = f
            .paths
            .iter()
            .map(|(node, route)| match node {
                Some(n) => NextHop::Peer(*n),
                None => NextHop::Local {
                    agent: route.attrs.agent.clone(),
                    tool: route_tool(route),
                },
            })
            .collect();
        Some(Resolution {
            matched: f.prefix,
            hops,
            multipath: f.multipath,
        })
    }

    fn advertised_cover(&self, peer: &NodeId, wanted: &Prefix) -> bool {
        if self.advertised_to(peer, wanted) {
            return true;
        }
        let mut p = if wanted.is_wildcard() {
            wanted.parent()
        } else {
            Some(wanted.to_wildcard())
        };
        while let Some(q) = p {
            if self.advertised_to(peer, &q) {
                return true;
            }
            p = q.parent();
        }
        false
    }
}

/// Checks the signed origin of a CALL: signature, certificate, argument
/// digest. Implemented with the node's trust store by `crate::identity`;
/// the core only asks.
pub trait CallerVerifier: Send {
    fn verify(&self, now: Millis, origin: &CallOrigin, arguments: &Json) -> Result<(), String>;
}

/// Forwarder settings. Defaults: answers held up to 1 s, 10,000 calls in
/// flight, deadlines capped at one hour from arrival, 100,000 remembered
/// call ids against replays, multipath balancing only for front calls that
/// ask for it.
#[derive(Debug, Clone)]
pub struct ForwardConfig {
    node: NodeId,
    asn: Asn,
    ack_hold_us: u64,
    max_calls: usize,
    quotas: QuotaConfig,
    max_call_ms: u64,
    replay_window: usize,
    balance_transit: bool,
    seed: u64,
}

impl ForwardConfig {
    pub fn new(node: NodeId, asn: Asn) -> Self {
        ForwardConfig {
            node,
            asn,
            ack_hold_us: 1_000_000,
            max_calls: 10_000,
            quotas: QuotaConfig::for_max_calls(10_000),
            max_call_ms: 3_600_000,
            replay_window: 100_000,
            balance_transit: false,
            seed: 0,
        }
    }

    /// How long a CALL's answer waits for the result before it is
    /// answered `Accepted` (0: at once). Must stay well below the
    /// transport's request timeout.
    pub fn with_ack_hold(mut self, d: std::time::Duration) -> Self {
        self.ack_hold_us = u64::try_from(d.as_micros()).unwrap_or(u64::MAX);
        self
    }

    /// Calls in flight at this hop before new ones are refused
    /// `Overloaded`; resets the quotas to their defaults for that size
    /// ([`quota`]).
    pub fn with_max_calls(mut self, n: usize) -> Self {
        self.max_calls = n.max(1);
        self.quotas = QuotaConfig::for_max_calls(self.max_calls);
        self
    }

    /// The front's reserve, per-peer and per-caller shares and the
    /// per-peer rate ([`quota`]); `max_calls` is taken from `q`.
    pub fn with_quotas(mut self, q: QuotaConfig) -> Self {
        self.max_calls = q.max_calls.max(1);
        self.quotas = q;
        self
    }

    /// The longest this hop waits for any call, whatever its deadline says.
    pub fn with_max_call_duration(mut self, d: std::time::Duration) -> Self {
        self.max_call_ms = u64::try_from(d.as_millis()).unwrap_or(u64::MAX).max(1);
        self
    }

    /// Spread transit calls over equal paths (by call id), not only front
    /// calls that ask for it.
    pub fn with_transit_balancing(mut self, on: bool) -> Self {
        self.balance_transit = on;
        self
    }

    /// Seeds leg ids, so a restarted node does not reuse its last run's.
    pub fn with_seed(mut self, seed: u64) -> Self {
        self.seed = seed;
        self
    }

    pub fn node(&self) -> NodeId {
        self.node
    }

    pub fn asn(&self) -> Asn {
        self.asn
    }
}

/// How the front wants a call handled.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FrontOpts {
    /// Spread over equal paths (by call id) instead of always the best.
    pub balance: bool,
}

/// An input to the forwarder.
#[derive(Debug, Clone)]
pub enum CallEvent {
    /// A call from the local MCP front. `call.leg` is ignored.
    Front {
        id: FrontId,
        call: Call,
        opts: FrontOpts,
    },
    /// The front's client cancelled (or went away).
    FrontCancel { id: FrontId, reason: Option<String> },
    /// A CALL request from a peer; answer it with [`CallAction::Answer`].
    /// `bytes`: the size of its frame (counted against the peer's share
    /// while the call is in flight).
    Inbound {
        peer: NodeId,
        call: Call,
        bytes: usize,
    },
    /// The response to a CALL this node sent.
    Answered {
        peer: NodeId,
        leg: LegId,
        answer: CallAnswer,
    },
    /// A CALL this node sent got no response. `maybe_received`: false when
    /// it certainly did not arrive (dial failure, protocol not supported).
    SendFailed {
        peer: NodeId,
        leg: LegId,
        maybe_received: bool,
        reason: String,
    },
    /// CALL-RESULT from the peer a call was sent to.
    Result { peer: NodeId, result: CallResult },
    /// PROGRESS from the peer a call was sent to.
    Progress { peer: NodeId, progress: Progress },
    /// CANCEL from the peer a call came from.
    Cancel { peer: NodeId, cancel: Cancel },
    /// Progress of a local run.
    LocalProgress { id: LocalId, info: ProgressInfo },
    /// A local run ended.
    LocalDone { id: LocalId, outcome: CallOutcome },
    /// Every connection to the peer closed.
    PeerDown { peer: NodeId },
    /// Time passed: answer held CALLs, expire calls past their deadline.
    Tick,
}

/// A tool run on a local agent that the driver starts.
#[derive(Debug, Clone, PartialEq)]
pub struct Delivery {
    pub id: LocalId,
    pub call_id: CallId,
    pub agent: AgentId,
    pub tool: Arc<str>,
    pub op: CallOp,
    pub arguments: Json,
    pub deadline: Millis,
    pub progress: bool,
    pub caller: NodeId,
    pub caller_asn: Asn,
    /// The route prefix the tool is served under.
    pub prefix: Prefix,
}

/// A call in flight at this hop.
#[derive(Debug, Clone, PartialEq)]
pub struct CallView {
    pub call_id: CallId,
    pub target: Prefix,
    /// `None`: from the local front.
    pub from: Option<NodeId>,
    /// `None`: running on a local agent.
    pub to: Option<NodeId>,
    pub agent: Option<AgentId>,
    pub age_ms: u64,
    pub deadline_in_ms: u64,
    pub retries: u32,
}

/// One finished call at this hop, for logs and metrics.
#[derive(Debug, Clone, PartialEq)]
pub struct CallRecord {
    pub call_id: CallId,
    pub target: Prefix,
    /// `None`: from the local front.
    pub from: Option<NodeId>,
    /// `None`: run on a local agent (or never sent anywhere).
    pub to: Option<NodeId>,
    pub agent: Option<AgentId>,
    pub outcome: &'static str,
    pub elapsed_us: u64,
    pub retries: u32,
}

/// An output of the forwarder, for the driver to carry out.
#[derive(Debug, Clone, PartialEq)]
pub enum CallAction {
    /// Send a CALL request; report its response as [`CallEvent::Answered`]
    /// or its failure as [`CallEvent::SendFailed`].
    SendCall {
        peer: NodeId,
        call: Call,
    },
    /// Respond to the CALL request `leg` from `peer`.
    Answer {
        peer: NodeId,
        leg: LegId,
        answer: CallAnswer,
    },
    SendResult {
        peer: NodeId,
        result: CallResult,
    },
    SendProgress {
        peer: NodeId,
        progress: Progress,
    },
    SendCancel {
        peer: NodeId,
        cancel: Cancel,
    },
    /// Run a tool on a local agent; report [`CallEvent::LocalDone`].
    Deliver(Delivery),
    /// Stop a local run (its outcome is no longer wanted).
    CancelLocal {
        id: LocalId,
    },
    FrontProgress {
        id: FrontId,
        info: ProgressInfo,
    },
    FrontDone {
        id: FrontId,
        ret: CallReturn,
    },
    /// A call ended at this hop.
    Finished(CallRecord),
}

/// Counters for the admin API and metrics.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ForwardStats {
    pub from_front: u64,
    pub from_peers: u64,
    pub forwarded: u64,
    pub delivered: u64,
    pub refused: u64,
    pub denied: u64,
    pub completed: u64,
    pub failed: u64,
    pub timeouts: u64,
    pub retries: u64,
    pub cancelled: u64,
    pub answered_inline: u64,
    /// Refusals by quota (see [`quota`]).
    pub quota: QuotaStats,
    /// PROGRESS messages merged into a later one instead of relayed.
    pub progress_coalesced: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Down {
    Peer { peer: NodeId, leg: LegId },
    Local(LocalId),
}

#[derive(Debug)]
struct Entry {
    call_id: CallId,
    target: Prefix,
    started: Micros,
    /// Effective deadline at this hop (capped by `max_call_ms`).
    deadline: Micros,
    /// An inbound CALL whose answer is still owed, until this time.
    ack_until: Option<Micros>,
    progress: bool,
    down: Down,
    agent: Option<AgentId>,
    /// The CALL to resend on another path; kept only for calls that may be
    /// retried (idempotent), or until the CALL is accepted.
    resend: Option<Call>,
    idempotent: bool,
    tried: Vec<NodeId>,
    retries: u32,
    balance: bool,
    /// What the call holds of the quotas.
    claim: Option<Claim>,
    /// When the last PROGRESS went back, and the newest one held since
    /// (relayed at most every [`PROGRESS_INTERVAL_US`]).
    progress_sent: Option<Micros>,
    progress_held: Option<ProgressInfo>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Timer {
    Ack,
    Deadline,
    Progress,
}

/// PROGRESS for one call is relayed back at most this often; what comes
/// in between is merged into the newest (MCP progress is advisory).
pub const PROGRESS_INTERVAL_US: u64 = 50_000;

/// Legs this hop gave up on, remembered so a late PROGRESS on one gets a
/// single CANCEL back (a PROGRESS on a leg never used is ignored: no
/// amplification).
const GONE_LEGS: usize = 4096;

/// The per-hop call table and its rules. See the module documentation.
pub struct Forwarder {
    cfg: ForwardConfig,
    access: AccessPolicy,
    verifier: Box<dyn CallerVerifier>,
    calls: HashMap<InKey, Entry>,
    /// Our outgoing legs: leg -> the entry that sent it.
    out_legs: HashMap<LegId, InKey>,
    locals: HashMap<LocalId, InKey>,
    timers: BTreeSet<(Micros, Timer, InKey)>,
    next_leg: u64,
    next_local: u64,
    /// (caller, call id) seen at this origin, until their deadline.
    seen: HashMap<(NodeId, CallId), Millis>,
    seen_order: VecDeque<((NodeId, CallId), Millis)>,
    stats: ForwardStats,
    quotas: Quotas,
    /// The claim of the call being admitted, until its entry takes it.
    admitting: Option<Claim>,
    gone_legs: std::collections::HashSet<(NodeId, LegId)>,
    gone_order: VecDeque<(NodeId, LegId)>,
}

impl std::fmt::Debug for Forwarder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Forwarder")
            .field("node", &self.cfg.node.short())
            .field("calls", &self.calls.len())
            .finish()
    }
}

impl Forwarder {
    pub fn new(cfg: ForwardConfig, verifier: Box<dyn CallerVerifier>) -> Self {
        let cfg_quotas = cfg.quotas.clone();
        Forwarder {
            next_leg: cfg.seed | 1,
            next_local: 1,
            cfg,
            access: AccessPolicy::default(),
            verifier,
            calls: HashMap::new(),
            out_legs: HashMap::new(),
            locals: HashMap::new(),
            timers: BTreeSet::new(),
            seen: HashMap::new(),
            seen_order: VecDeque::new(),
            stats: ForwardStats::default(),
            quotas: Quotas::new(cfg_quotas),
            admitting: None,
            gone_legs: Default::default(),
            gone_order: VecDeque::new(),
        }
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

    /// Calls in flight at this hop.
    pub fn in_flight(&self) -> usize {
        self.calls.len()
    }

    /// The calls in flight at this hop, oldest first (for operators: the
    /// admin API lists them).
    pub fn calls(&self, now: Micros) -> Vec<CallView> {
        let mut v: Vec<CallView> = self
            .calls
            .iter()
            .map(|(k, e)| CallView {
                call_id: e.call_id,
                target: e.target.clone(),
                from: match k {
                    InKey::Peer(p, _) => Some(*p),
                    InKey::Front(_) => None,
                },
                to: match e.down {
                    Down::Peer { peer, .. } => Some(peer),
                    Down::Local(_) => None,
                },
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
        self.timers.first().map(|(t, _, _)| *t)
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
            } => self.on_send_failed(now, routes, peer, leg, maybe_received, &reason, &mut out),
            CallEvent::Result { peer, result } => {
                if let Some(key) = self.downstream_key(&peer, result.leg) {
                    self.finish(now, key, result.ret, &mut out);
                } else {
                    // Known race: the call timed out or was cancelled here
                    // while its result was on the way.
                    tracing::debug!(peer = %peer.short(), leg = %result.leg, "result for a call no longer here");
                }
            }
            CallEvent::Progress { peer, progress } => {
                match self.downstream_key(&peer, progress.leg) {
                    Some(key) => self.relay_progress(now, key, progress.info, &mut out),
                    // A leg we gave up on: say so, once.
                    None if self.gone_legs.remove(&(peer, progress.leg)) => {
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
            CallEvent::LocalProgress { id, info } => {
                if let Some(key) = self.locals.get(&id).copied() {
                    self.relay_progress(now, key, info, &mut out);
                }
            }
            CallEvent::LocalDone { id, outcome } => {
                if let Some(key) = self.locals.get(&id).copied() {
                    self.finish(
                        now,
                        key,
                        CallReturn {
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
        out
    }

    // ----- arrivals -----

    fn on_front(
        &mut self,
        now: Micros,
        routes: &impl CallRoutes,
        id: FrontId,
        call: Call,
        opts: FrontOpts,
        out: &mut Vec<CallAction>,
    ) {
        self.stats.from_front += 1;
        let key = InKey::Front(id);
        let refuse = |kind, msg: String, out: &mut Vec<CallAction>| {
            out.push(CallAction::FrontDone {
                id,
                ret: CallReturn {
                    outcome: CallOutcome::err(kind, msg),
                    trace: Vec::new(),
                },
            })
        };
        if self.calls.contains_key(&key) {
            debug_assert!(false, "front id {id:?} reused while in flight");
            return refuse(
                CallErrorKind::Internal,
                format!("{}: front call id reused", self.here()),
                out,
            );
        }
        if let Err(e) = self.admit(now, &call, Source::Front, 0) {
            self.stats.refused += 1;
            self.record(&call, None, None, e.kind.name(), out);
            return out.push(CallAction::FrontDone {
                id,
                ret: CallReturn {
                    outcome: CallOutcome::Err(e),
                    trace: Vec::new(),
                },
            });
        }
        self.route(now, routes, key, call, opts.balance, out);
        self.end_admission();
    }

    /// Gives back the claim of a call that was admitted but refused before
    /// it took a table entry.
    fn end_admission(&mut self) {
        if let Some(c) = self.admitting.take() {
            self.quotas.release(c);
        }
    }

    fn on_inbound(
        &mut self,
        now: Micros,
        routes: &impl CallRoutes,
        peer: NodeId,
        call: Call,
        bytes: usize,
        out: &mut Vec<CallAction>,
    ) {
        self.stats.from_peers += 1;
        let key = InKey::Peer(peer, call.leg);
        let leg = call.leg;
        if self.calls.contains_key(&key) {
            // The peer reused a leg id of a call still running: refuse the
            // newcomer, keep the original.
            return out.push(CallAction::Answer {
                peer,
                leg,
                answer: CallAnswer::Refused(CallError::new(
                    CallErrorKind::Internal,
                    format!("{}: leg {leg} is already in use", self.here()),
                )),
            });
        }
        let refused = if routes.advertised_cover(&peer, &call.origin.target) {
            self.admit(now, &call, Source::Peer(peer), bytes)
        } else {
            Err(CallError::new(
                CallErrorKind::NotAdvertised,
                format!(
                    "{}: no route covering {} was advertised to the sender",
                    self.here(),
                    call.origin.target
                ),
            ))
        };
        if let Err(e) = refused {
            self.stats.refused += 1;
            self.record(&call, Some(peer), None, e.kind.name(), out);
            return out.push(CallAction::Answer {
                peer,
                leg,
                answer: CallAnswer::Refused(e),
            });
        }
        self.route(now, routes, key, call, self.cfg.balance_transit, out);
        self.end_admission();
    }

    /// Checks that apply to every call entering this hop: its deadline,
    /// then the quotas. On success the claim waits in `admitting` for the
    /// call's table entry ([`Self::end_admission`] gives it back if none is
    /// made).
    fn admit(
        &mut self,
        now: Micros,
        call: &Call,
        source: Source,
        bytes: usize,
    ) -> Result<(), CallError> {
        if now.millis() >= call.origin.deadline {
            return Err(CallError::new(
                CallErrorKind::Timeout,
                format!(
                    "{}: the call arrived after its deadline (clock skew or a slow path); not run",
                    self.here()
                ),
            ));
        }
        debug_assert!(self.admitting.is_none(), "a claim left from another call");
        let claim = self
            .quotas
            .admit(now, source, call.origin.caller, bytes)
            .map_err(|why| {
                CallError::new(CallErrorKind::Overloaded, format!("{}: {why}", self.here()))
            })?;
        self.admitting = Some(claim);
        Ok(())
    }

    /// Picks where a call goes and sends it there (or refuses it).
    fn route(
        &mut self,
        now: Micros,
        routes: &impl CallRoutes,
        key: InKey,
        call: Call,
        balance: bool,
        out: &mut Vec<CallAction>,
    ) {
        let from = match key {
            InKey::Peer(p, _) => Some(p),
            InKey::Front(_) => None,
        };
        let Some(res) = routes.resolve(&call.origin.target) else {
            let e = CallError::new(
                CallErrorKind::NoRoute,
                format!("{}: no route to {}", self.here(), call.origin.target),
            );
            return self.refuse(key, &call, e, out);
        };
        if let Some(NextHop::Local { agent, tool }) = res.hops.first() {
            let (agent, tool) = (agent.clone(), tool.clone());
            return self.deliver(now, key, call, res.matched, agent, tool, out);
        }
        let peers: Vec<NodeId> = res
            .hops
            .iter()
            .filter_map(|h| match h {
                NextHop::Peer(n) => Some(*n),
                NextHop::Local { .. } => None,
            })
            .collect();
        let equal = res.multipath.clamp(1, peers.len().max(1));
        let Some(peer) = pick(&peers, equal, &call.origin.id, balance, from.as_ref(), &[]) else {
            let e = CallError::new(
                CallErrorKind::NoRoute,
                format!(
                    "{}: the only path to {} leads back to the sender",
                    self.here(),
                    res.matched
                ),
            );
            return self.refuse(key, &call, e, out);
        };
        if call.hop_limit == 0 {
            let e = CallError::new(
                CallErrorKind::HopLimit,
                format!(
                    "{}: hop limit reached before the origin of {}",
                    self.here(),
                    res.matched
                ),
            );
            return self.refuse(key, &call, e, out);
        }
        if !self.quotas.next_hop_has_room(&peer) {
            let e = CallError::new(
                CallErrorKind::Overloaded,
                format!(
                    "{}: next hop {} already has {} of this node's calls, its share",
                    self.here(),
                    peer.short(),
                    self.quotas.to_peer(&peer)
                ),
            );
            return self.refuse(key, &call, e, out);
        }
        let cap = now.millis().saturating_add_ms(self.cfg.max_call_ms);
        let deadline = Micros::from_millis(call.origin.deadline.min(cap));
        let entry = Entry {
            call_id: call.origin.id,
            target: call.origin.target.clone(),
            started: now,
            deadline,
            ack_until: from.map(|_| now.plus_us(self.cfg.ack_hold_us)),
            progress: call.progress,
            down: Down::Local(LocalId(0)),
            agent: None,
            resend: None,
            idempotent: call.origin.idempotent,
            tried: Vec::new(),
            retries: 0,
            balance,
            claim: None,
            progress_sent: None,
            progress_held: None,
        };
        self.insert(key, entry);
        self.stats.forwarded += 1;
        let mut call = call;
        call.hop_limit -= 1;
        self.send_to(key, peer, call, out);
    }

    /// Sends `call` (its hop limit already decremented) to `peer` on a
    /// fresh leg for `key`. Retries resend the same copy.
    fn send_to(&mut self, key: InKey, peer: NodeId, mut call: Call, out: &mut Vec<CallAction>) {
        let leg = self.alloc_leg();
        call.leg = leg;
        self.out_legs.insert(leg, key);
        if let Some(e) = self.calls.get_mut(&key) {
            if let Down::Peer { peer: old, .. } = e.down {
                self.quotas.sent_to(old, false);
            }
            self.quotas.sent_to(peer, true);
            e.down = Down::Peer { peer, leg };
            e.tried.push(peer);
            // Keep a copy until the peer has it for sure; keep it for good
            // if the call may be retried after that.
            e.resend = Some(call.clone());
        }
        out.push(CallAction::SendCall { peer, call });
    }

    #[allow(clippy::too_many_arguments)]
    fn deliver(
        &mut self,
        now: Micros,
        key: InKey,
        call: Call,
        prefix: Prefix,
        agent: AgentId,
        tool: Option<Arc<str>>,
        out: &mut Vec<CallAction>,
    ) {
        let o = &call.origin;
        if let InKey::Peer(..) = key {
            if let Err(why) = self.verifier.verify(now.millis(), o, &call.arguments) {
                let e = CallError::new(
                    CallErrorKind::BadCaller,
                    format!("{}: caller not verified: {why}", self.here()),
                );
                return self.refuse(key, &call, e, out);
            }
            if !self.remember(now, o.caller, o.id, o.deadline) && !o.idempotent {
                let e = CallError::new(
                    CallErrorKind::BadCaller,
                    format!(
                        "{}: call {} was already received (replay)",
                        self.here(),
                        o.id
                    ),
                );
                return self.refuse(key, &call, e, out);
            }
        }
        let decision = self.access.decide(
            &Caller {
                asn: o.caller_asn,
                communities: &o.communities,
            },
            &prefix,
        );
        if !decision.allowed() {
            self.stats.denied += 1;
            let e = CallError::new(
                CallErrorKind::AccessDenied,
                format!(
                    "{}: access to {prefix} denied to {} by {}",
                    self.here(),
                    o.caller_asn,
                    decision.by
                ),
            );
            return self.refuse(key, &call, e, out);
        }
        let Some(tool) = tool else {
            let e = CallError::new(
                CallErrorKind::NoRoute,
                format!("{}: {prefix} is not a tool route", self.here()),
            );
            return self.refuse(key, &call, e, out);
        };
        let id = LocalId(self.next_local);
        self.next_local += 1;
        let from = match key {
            InKey::Peer(p, _) => Some(p),
            InKey::Front(_) => None,
        };
        let cap = now.millis().saturating_add_ms(self.cfg.max_call_ms);
        let deadline = o.deadline.min(cap);
        let entry = Entry {
            call_id: o.id,
            target: o.target.clone(),
            started: now,
            deadline: Micros::from_millis(deadline),
            ack_until: from.map(|_| now.plus_us(self.cfg.ack_hold_us)),
            progress: call.progress,
            down: Down::Local(id),
            agent: Some(agent.clone()),
            resend: None,
            idempotent: false,
            tried: Vec::new(),
            retries: 0,
            balance: false,
            claim: None,
            progress_sent: None,
            progress_held: None,
        };
        self.insert(key, entry);
        self.locals.insert(id, key);
        self.stats.delivered += 1;
        out.push(CallAction::Deliver(Delivery {
            id,
            call_id: o.id,
            agent,
            tool,
            op: o.op,
            deadline,
            progress: call.progress,
            caller: o.caller,
            caller_asn: o.caller_asn,
            prefix,
            arguments: call.arguments,
        }));
    }

    // ----- from downstream -----

    fn downstream_key(&self, peer: &NodeId, leg: LegId) -> Option<InKey> {
        let key = *self.out_legs.get(&leg)?;
        match self.calls.get(&key)?.down {
            Down::Peer { peer: p, leg: l } if p == *peer && l == leg => Some(key),
            // Another peer naming our leg: ignore it.
            _ => None,
        }
    }

    fn on_answered(
        &mut self,
        now: Micros,
        routes: &impl CallRoutes,
        peer: NodeId,
        leg: LegId,
        answer: CallAnswer,
        out: &mut Vec<CallAction>,
    ) {
        let Some(key) = self.downstream_key(&peer, leg) else {
            if let CallAnswer::Accepted = answer {
                // We gave up on this call (deadline, cancel) before the
                // answer came: tell the peer to stop.
                out.push(CallAction::SendCancel {
                    peer,
                    cancel: Cancel {
                        leg,
                        reason: Some("this call is no longer wanted".into()),
                    },
                });
            }
            return;
        };
        match answer {
            CallAnswer::Accepted => {
                if let Some(e) = self.calls.get_mut(&key)
                    && !e.idempotent
                {
                    e.resend = None;
                }
            }
            CallAnswer::Refused(err) => {
                // Nothing ran. A routing refusal (the next hop has no
                // route, or has not advertised one to us yet: it is
                // restarting, or its UPDATE is on the way) may not hold on
                // another path, so that is tried, whatever the tool. Other
                // refusals (denied, bad caller, expired) would be the same
                // on every path.
                let routing = matches!(
                    err.kind,
                    CallErrorKind::NoRoute | CallErrorKind::NotAdvertised
                );
                if routing && self.retry_elsewhere(now, routes, key, peer, &err.message, out) {
                    return;
                }
                self.finish(
                    now,
                    key,
                    CallReturn {
                        outcome: CallOutcome::Err(err),
                        trace: Vec::new(),
                    },
                    out,
                );
            }
            CallAnswer::Done(ret) => {
                self.stats.answered_inline += 1;
                self.finish(now, key, ret, out);
            }
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn on_send_failed(
        &mut self,
        now: Micros,
        routes: &impl CallRoutes,
        peer: NodeId,
        leg: LegId,
        maybe_received: bool,
        reason: &str,
        out: &mut Vec<CallAction>,
    ) {
        let Some(key) = self.downstream_key(&peer, leg) else {
            return;
        };
        self.fail_downstream(now, routes, key, peer, maybe_received, reason, out);
    }

    fn on_peer_down(
        &mut self,
        now: Micros,
        routes: &impl CallRoutes,
        peer: NodeId,
        out: &mut Vec<CallAction>,
    ) {
        let mut affected: Vec<(InKey, bool)> = self
            .calls
            .iter()
            .filter_map(|(k, e)| {
                let sent_there = matches!(e.down, Down::Peer { peer: p, .. } if p == peer);
                let came_from = matches!(k, InKey::Peer(p, _) if *p == peer);
                (sent_there || came_from).then_some((*k, came_from))
            })
            .collect();
        affected.sort();
        for (key, came_from) in affected {
            if came_from {
                // Nobody is left to answer: stop whatever runs for it.
                self.abandon(now, key, "the caller's hop went away", out);
            } else {
                self.fail_downstream(now, routes, key, peer, true, "connection closed", out);
            }
        }
    }

    /// The CALL sent for `key` to `peer` is lost. Retry or fail.
    #[allow(clippy::too_many_arguments)]
    fn fail_downstream(
        &mut self,
        now: Micros,
        routes: &impl CallRoutes,
        key: InKey,
        peer: NodeId,
        maybe_received: bool,
        reason: &str,
        out: &mut Vec<CallAction>,
    ) {
        let Some(e) = self.calls.get(&key) else {
            return;
        };
        let idempotent = e.idempotent;
        if (!maybe_received || idempotent)
            && self.retry_elsewhere(now, routes, key, peer, reason, out)
        {
            return;
        }
        let what = if maybe_received {
            "the tool may or may not have run"
        } else {
            "the call was not delivered"
        };
        let why_no_retry = if !maybe_received || idempotent {
            "no other path"
        } else {
            "not retried: the tool is not marked read-only or idempotent"
        };
        let msg = format!(
            "{}: next hop {} failed mid-call ({reason}); {what}; {why_no_retry}",
            self.here(),
            peer.short()
        );
        self.finish(
            now,
            key,
            CallReturn {
                outcome: CallOutcome::err(CallErrorKind::NextHopDown, msg),
                trace: Vec::new(),
            },
            out,
        );
    }

    /// Sends the call for `key` on another usable path than the ones
    /// tried, within its deadline. False when there is none (or no copy of
    /// the CALL is left).
    fn retry_elsewhere(
        &mut self,
        now: Micros,
        routes: &impl CallRoutes,
        key: InKey,
        failed: NodeId,
        reason: &str,
        out: &mut Vec<CallAction>,
    ) -> bool {
        let Some(e) = self.calls.get_mut(&key) else {
            return false;
        };
        let old = match e.down {
            Down::Peer { peer, leg } => Some((peer, leg)),
            Down::Local(_) => None,
        };
        let Some(call) = e.resend.clone().filter(|_| now < e.deadline) else {
            if let Some((_, leg)) = old {
                self.out_legs.remove(&leg);
            }
            return false;
        };
        let tried = e.tried.clone();
        let retries = e.retries;
        let balance = e.balance;
        if let Some((peer, leg)) = old {
            self.out_legs.remove(&leg);
            // A late PROGRESS on the old leg gets one CANCEL back.
            self.forget_leg(peer, leg);
        }
        let from = match key {
            InKey::Peer(p, _) => Some(p),
            InKey::Front(_) => None,
        };
        let next = routes.resolve(&call.origin.target).and_then(|res| {
            let peers: Vec<NodeId> = res
                .hops
                .iter()
                .filter_map(|h| match h {
                    NextHop::Peer(n) => Some(*n),
                    NextHop::Local { .. } => None,
                })
                .collect();
            let equal = res.multipath.clamp(1, peers.len().max(1));
            pick(
                &peers,
                equal,
                &call.origin.id,
                balance,
                from.as_ref(),
                &tried,
            )
            .or_else(|| {
                // Every path was tried once. One that failed earlier (a
                // neighbour restarting refuses until its routes are back)
                // may work now; only the hop that just failed is skipped,
                // and the retries are capped.
                if retries >= MAX_RETRIES {
                    return None;
                }
                peers
                    .iter()
                    .copied()
                    .find(|n| *n != failed && Some(n) != from.as_ref())
            })
        });
        let Some(next) = next.filter(|n| self.quotas.next_hop_has_room(n)) else {
            return false;
        };
        if let Some(e) = self.calls.get_mut(&key) {
            e.retries += 1;
        }
        self.stats.retries += 1;
        tracing::info!(call = %call.origin.id.short(), failed = %failed.short(), next = %next.short(), %reason, "retrying the call on another path");
        self.send_to(key, next, call, out);
        true
    }

    /// Relays progress back, at most every [`PROGRESS_INTERVAL_US`] per
    /// call; what comes between is held, newest only, and sent when the
    /// interval is over (never more than one message held per call).
    fn relay_progress(
        &mut self,
        now: Micros,
        key: InKey,
        info: ProgressInfo,
        out: &mut Vec<CallAction>,
    ) {
        let Some(e) = self.calls.get_mut(&key) else {
            return;
        };
        if !e.progress {
            return;
        }
        if let Some(sent) = e.progress_sent
            && now.0 < sent.0 + PROGRESS_INTERVAL_US
        {
            if e.progress_held.replace(info).is_some() {
                self.stats.progress_coalesced += 1;
            } else {
                self.timers
                    .insert((Micros(sent.0 + PROGRESS_INTERVAL_US), Timer::Progress, key));
            }
            return;
        }
        // A held one whose timer has not fired yet is older than this one:
        // this supersedes it (and keeps the order).
        if e.progress_held.take().is_some() {
            self.stats.progress_coalesced += 1;
            if let Some(sent) = e.progress_sent {
                self.timers
                    .remove(&(Micros(sent.0 + PROGRESS_INTERVAL_US), Timer::Progress, key));
            }
        }
        e.progress_sent = Some(now);
        Self::send_progress(key, info, out);
    }

    fn send_progress(key: InKey, info: ProgressInfo, out: &mut Vec<CallAction>) {
        match key {
            InKey::Front(id) => out.push(CallAction::FrontProgress { id, info }),
            InKey::Peer(peer, leg) => out.push(CallAction::SendProgress {
                peer,
                progress: Progress { leg, info },
            }),
        }
    }

    // ----- endings -----

    /// A call ends with `ret`: pass it back the way it came.
    fn finish(&mut self, now: Micros, key: InKey, mut ret: CallReturn, out: &mut Vec<CallAction>) {
        let Some(e) = self.remove(key) else {
            return;
        };
        let elapsed = now.0.saturating_sub(e.started.0);
        ret.trace.push(HopTrace {
            node: self.cfg.node,
            asn: self.cfg.asn,
            elapsed_us: elapsed,
        });
        match &ret.outcome {
            CallOutcome::Ok(_) => self.stats.completed += 1,
            CallOutcome::Err(err) => {
                self.stats.failed += 1;
                if err.kind == CallErrorKind::Timeout {
                    self.stats.timeouts += 1;
                }
            }
        }
        let to = match e.down {
            Down::Peer { peer, .. } => Some(peer),
            Down::Local(_) => None,
        };
        out.push(CallAction::Finished(CallRecord {
            call_id: e.call_id,
            target: e.target.clone(),
            from: match key {
                InKey::Peer(p, _) => Some(p),
                InKey::Front(_) => None,
            },
            to,
            agent: e.agent.clone(),
            outcome: ret.outcome.label(),
            elapsed_us: elapsed,
            retries: e.retries,
        }));
        match key {
            InKey::Front(id) => out.push(CallAction::FrontDone { id, ret }),
            InKey::Peer(peer, leg) => {
                if e.ack_until.is_some() {
                    out.push(CallAction::Answer {
                        peer,
                        leg,
                        answer: CallAnswer::Done(ret),
                    })
                } else {
                    out.push(CallAction::SendResult {
                        peer,
                        result: CallResult { leg, ret },
                    })
                }
            }
        }
    }

    /// Refuses a call before it went anywhere.
    fn refuse(&mut self, key: InKey, call: &Call, e: CallError, out: &mut Vec<CallAction>) {
        self.stats.refused += 1;
        let from = match key {
            InKey::Peer(p, _) => Some(p),
            InKey::Front(_) => None,
        };
        self.record(call, from, None, e.kind.name(), out);
        let ret = CallReturn {
            outcome: CallOutcome::Err(e),
            trace: vec![HopTrace {
                node: self.cfg.node,
                asn: self.cfg.asn,
                elapsed_us: 0,
            }],
        };
        match key {
            InKey::Front(id) => out.push(CallAction::FrontDone { id, ret }),
            InKey::Peer(peer, leg) => out.push(CallAction::Answer {
                peer,
                leg,
                answer: match ret.outcome {
                    CallOutcome::Err(e) => CallAnswer::Refused(e),
                    CallOutcome::Ok(_) => CallAnswer::Done(ret),
                },
            }),
        }
    }

    fn record(
        &self,
        call: &Call,
        from: Option<NodeId>,
        to: Option<NodeId>,
        outcome: &'static str,
        out: &mut Vec<CallAction>,
    ) {
        out.push(CallAction::Finished(CallRecord {
            call_id: call.origin.id,
            target: call.origin.target.clone(),
            from,
            to,
            agent: None,
            outcome,
            elapsed_us: 0,
            retries: 0,
        }));
    }

    /// The caller no longer wants the call: stop it downstream, answer a
    /// held CALL, forget it. No result goes back.
    fn cancel_entry(
        &mut self,
        now: Micros,
        key: InKey,
        reason: Option<String>,
        out: &mut Vec<CallAction>,
    ) {
        if !self.calls.contains_key(&key) {
            return;
        }
        self.stats.cancelled += 1;
        let reason = reason.unwrap_or_else(|| "cancelled by the caller".into());
        self.abandon(now, key, &reason, out);
    }

    fn abandon(&mut self, now: Micros, key: InKey, reason: &str, out: &mut Vec<CallAction>) {
        let Some(e) = self.remove(key) else {
            return;
        };
        match e.down {
            Down::Peer { peer, leg } => out.push(CallAction::SendCancel {
                peer,
                cancel: Cancel {
                    leg,
                    reason: Some(reason.to_string()),
                },
            }),
            Down::Local(id) => out.push(CallAction::CancelLocal { id }),
        }
        if let (InKey::Peer(peer, leg), Some(_)) = (key, e.ack_until) {
            out.push(CallAction::Answer {
                peer,
                leg,
                answer: CallAnswer::Refused(CallError::new(
                    CallErrorKind::Cancelled,
                    format!("{}: cancelled ({reason})", self.here()),
                )),
            });
        }
        out.push(CallAction::Finished(CallRecord {
            call_id: e.call_id,
            target: e.target,
            from: match key {
                InKey::Peer(p, _) => Some(p),
                InKey::Front(_) => None,
            },
            to: match e.down {
                Down::Peer { peer, .. } => Some(peer),
                Down::Local(_) => None,
            },
            agent: e.agent,
            outcome: CallErrorKind::Cancelled.name(),
            elapsed_us: now.0.saturating_sub(e.started.0),
            retries: e.retries,
        }));
    }

    fn on_tick(&mut self, now: Micros, out: &mut Vec<CallAction>) {
        while let Some(&(t, timer, key)) = self.timers.first() {
            if t > now {
                break;
            }
            self.timers.remove(&(t, timer, key));
            match timer {
                Timer::Progress => {
                    if let Some(e) = self.calls.get_mut(&key)
                        && let Some(info) = e.progress_held.take()
                    {
                        e.progress_sent = Some(now);
                        Self::send_progress(key, info, out);
                    }
                }
                Timer::Ack => {
                    if let (Some(e), InKey::Peer(peer, leg)) = (self.calls.get_mut(&key), key)
                        && e.ack_until.take().is_some()
                    {
                        out.push(CallAction::Answer {
                            peer,
                            leg,
                            answer: CallAnswer::Accepted,
                        });
                    }
                }
                Timer::Deadline => {
                    let Some(e) = self.calls.get(&key) else {
                        continue;
                    };
                    let waited_ms = now.0.saturating_sub(e.started.0) / 1000;
                    let (down, sent) = match e.down {
                        Down::Peer { peer, leg } => (
                            Some(CallAction::SendCancel {
                                peer,
                                cancel: Cancel {
                                    leg,
                                    reason: Some("deadline passed".into()),
                                },
                            }),
                            format!("next hop {}", peer.short()),
                        ),
                        Down::Local(id) => (
                            Some(CallAction::CancelLocal { id }),
                            format!(
                                "agent {}",
                                e.agent.as_ref().map(AgentId::as_str).unwrap_or("?")
                            ),
                        ),
                    };
                    out.extend(down);
                    let msg = format!(
                        "{}: no result from {sent} within the deadline ({waited_ms} ms); the tool may or may not have run (a cancellation was sent)",
                        self.here()
                    );
                    self.finish(
                        now,
                        key,
                        CallReturn {
                            outcome: CallOutcome::err(CallErrorKind::Timeout, msg),
                            trace: Vec::new(),
                        },
                        out,
                    );
                }
            }
        }
        self.forget_seen(now.millis());
    }

    // ----- bookkeeping -----

    fn insert(&mut self, key: InKey, mut e: Entry) {
        e.claim = self.admitting.take();
        self.timers.insert((e.deadline, Timer::Deadline, key));
        if let Some(t) = e.ack_until {
            self.timers.insert((t, Timer::Ack, key));
        }
        self.calls.insert(key, e);
    }

    fn remove(&mut self, key: InKey) -> Option<Entry> {
        let e = self.calls.remove(&key)?;
        self.timers.remove(&(e.deadline, Timer::Deadline, key));
        if let Some(t) = e.ack_until {
            self.timers.remove(&(t, Timer::Ack, key));
        }
        if let (Some(sent), Some(_)) = (e.progress_sent, &e.progress_held) {
            self.timers
                .remove(&(Micros(sent.0 + PROGRESS_INTERVAL_US), Timer::Progress, key));
        }
        if let Some(c) = e.claim {
            self.quotas.release(c);
        }
        match e.down {
            Down::Peer { peer, leg } => {
                self.out_legs.remove(&leg);
                self.quotas.sent_to(peer, false);
                self.forget_leg(peer, leg);
            }
            Down::Local(id) => {
                self.locals.remove(&id);
            }
        }
        Some(e)
    }

    /// Remembers a leg this hop is done with (bounded).
    fn forget_leg(&mut self, peer: NodeId, leg: LegId) {
        if self.gone_order.len() >= GONE_LEGS
            && let Some(old) = self.gone_order.pop_front()
        {
            self.gone_legs.remove(&old);
        }
        if self.gone_legs.insert((peer, leg)) {
            self.gone_order.push_back((peer, leg));
        }
    }

    fn alloc_leg(&mut self) -> LegId {
        loop {
            let leg = LegId(self.next_leg);
            self.next_leg = self.next_leg.wrapping_add(1);
            if !self.out_legs.contains_key(&leg) {
                return leg;
            }
        }
    }

    /// Records a call id at the origin; false if it was seen before.
    fn remember(&mut self, now: Micros, caller: NodeId, id: CallId, deadline: Millis) -> bool {
        self.forget_seen(now.millis());
        let k = (caller, id);
        if self.seen.contains_key(&k) {
            return false;
        }
        while self.seen.len() >= self.cfg.replay_window {
            match self.seen_order.pop_front() {
                Some((old, _)) => {
                    self.seen.remove(&old);
                }
                None => break,
            }
        }
        self.seen.insert(k, deadline);
        self.seen_order.push_back((k, deadline));
        true
    }

    fn forget_seen(&mut self, now: Millis) {
        // Ids are kept until their deadline: a replay after it is refused
        // as expired anyway. Deadlines differ, so this only trims the
        // front; the window bound does the rest.
        while let Some((k, d)) = self.seen_order.front().cloned() {
            if d > now {
                break;
            }
            self.seen_order.pop_front();
            self.seen.remove(&k);
        }
    }

    fn here(&self) -> String {
        format!("{} ({})", self.cfg.asn, self.cfg.node.short())
    }
}

/// A call retried this many times at one hop is not sent again on a path
/// it already tried: enough to get past a neighbour that refused while
/// restarting, bounded so two refusing neighbours cannot bounce a call
/// until its deadline. (The first round over untried paths is not capped.)
const MAX_RETRIES: u32 = 3;

/// Chooses a next hop: among the first `equal` candidates (by call id when
/// balancing, else the first), skipping the sender and peers already tried;
/// if those are all excluded, the next usable one in order.
fn pick(
    peers: &[NodeId],
    equal: usize,
    id: &CallId,
    balance: bool,
    sender: Option<&NodeId>,
    tried: &[NodeId],
) -> Option<NodeId> {
    let usable = |n: &NodeId| Some(n) != sender && !tried.contains(n);
    let head: Vec<NodeId> = peers
        .iter()
        .take(equal)
        .copied()
        .filter(|n| usable(n))
        .collect();
    if !head.is_empty() {
        let i = if balance && head.len() > 1 {
            let mut h = [0u8; 8];
            h.copy_from_slice(&id.0[..8]);
            (u64::from_le_bytes(h) % head.len() as u64) as usize
        } else {
            0
        };
        return Some(head[i]);
    }
    peers.iter().skip(equal).copied().find(|n| usable(n))
}
