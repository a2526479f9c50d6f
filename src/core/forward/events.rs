//! The forwarder's vocabulary: its clock, the keys of its calls, the
//! events it takes and the actions it returns, and its counters.

use std::sync::Arc;

use serde::{Deserialize, Serialize};

use super::quota::QuotaStats;
use crate::core::call::{
    Ask, Call, CallAnswer, CallId, CallOp, CallOutcome, CallResult, CallReturn, Cancel, HopTrace,
    LegId, Notify, Progress, ProgressInfo, Reply, TraceContext,
};
use crate::core::ids::{AgentId, Asn, Millis, NodeId};
use crate::core::prefix::Prefix;
use serde_json::Value as Json;

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

impl InKey {
    /// The peer the call came from (`None`: the local front).
    pub fn peer(&self) -> Option<NodeId> {
        match self {
            InKey::Peer(p, _) => Some(*p),
            InKey::Front(_) => None,
        }
    }
}

/// How the front wants a call handled.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FrontOpts {
    /// Spread over equal paths (by call id) instead of always the best.
    pub balance: bool,
    /// Capability tags the caller wants (sorted, deduplicated): the
    /// `capability` balancing method prefers the paths whose routes have
    /// the most of them ([`balance`](super::balance)).
    pub wants: Vec<Arc<str>>,
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
    /// NOTIFY from the peer a call was sent to.
    Notify { peer: NodeId, notify: Notify },
    /// ASK from the peer a call was sent to.
    Ask { peer: NodeId, ask: Ask },
    /// REPLY from the peer a call came from.
    Reply { peer: NodeId, reply: Reply },
    /// The front's client answered an ASK of its call.
    FrontReply {
        id: FrontId,
        ask: u32,
        outcome: CallOutcome,
    },
    /// A local run's agent sent a notification for the caller.
    LocalNotify {
        id: LocalId,
        method: String,
        params: Json,
    },
    /// A local run's agent asked the caller's client something; answered
    /// with [`CallAction::LocalReply`] (or never, when the call ends).
    LocalAsk {
        id: LocalId,
        ask: u32,
        method: String,
        params: Json,
    },
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
    /// The calling client's log level ([`Call::log_level`]).
    pub log_level: Option<u8>,
    /// The origin hop's trace context: what the agent gets as its
    /// `traceparent` (its parent span is this hop's).
    pub trace: TraceContext,
    pub caller: NodeId,
    pub caller_asn: Asn,
    /// The route prefix the tool is served under.
    pub prefix: Prefix,
    /// Access was granted only on this community, which the caller claims
    /// without a certificate vouching for it (a rule opted in): logged.
    pub claimed_community: Option<crate::core::community::Community>,
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
    /// The caller's node and AS, from the call's signed origin.
    pub caller: NodeId,
    pub caller_asn: Asn,
    pub target: Prefix,
    /// `None`: from the local front.
    pub from: Option<NodeId>,
    /// `None`: run on a local agent (or never sent anywhere).
    pub to: Option<NodeId>,
    pub agent: Option<AgentId>,
    pub outcome: &'static str,
    pub elapsed_us: u64,
    pub retries: u32,
    pub op: CallOp,
    /// The tool the caller named in its signed origin, if any.
    pub tool: Option<String>,
    /// This hop's trace context (its own span) and its parent's span.
    pub trace: TraceContext,
    pub parent_span: Option<[u8; 8]>,
    /// The hops the return crossed up to and including this one, origin
    /// first (only this hop when the call ended here).
    pub hops: Vec<HopTrace>,
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
    SendNotify {
        peer: NodeId,
        notify: Notify,
    },
    SendAsk {
        peer: NodeId,
        ask: Ask,
    },
    SendReply {
        peer: NodeId,
        reply: Reply,
    },
    /// A notification for the front's client of call `id`.
    FrontNotify {
        id: FrontId,
        method: String,
        params: Json,
    },
    /// A request for the front's client of call `id`; answer with
    /// [`CallEvent::FrontReply`].
    FrontAsk {
        id: FrontId,
        ask: u32,
        method: String,
        params: Json,
    },
    /// The answer to ASK `ask` of local run `id`.
    LocalReply {
        id: LocalId,
        ask: u32,
        outcome: CallOutcome,
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
    /// Refusals by quota (see [`quota`](super::quota)).
    pub quota: QuotaStats,
    /// PROGRESS messages merged into a later one instead of relayed.
    pub progress_coalesced: u64,
    /// NOTIFY, ASK and REPLY messages relayed.
    #[serde(default)]
    pub side_relayed: u64,
    /// Side-channel messages dropped: for a call no longer here, or past
    /// a call's share ([`MAX_SIDE_MESSAGES`](super::table::MAX_SIDE_MESSAGES)).
    #[serde(default)]
    pub side_dropped: u64,
    /// CALLs the replay guard refused at this origin: replays, issued in
    /// the future, too long ago, or before this node started
    /// ([`replay`](super::replay)).
    #[serde(default)]
    pub replays_refused: u64,
    /// Answers to calls made here whose origin seal was missing or did not
    /// verify (returned as `bad_answer` errors).
    #[serde(default)]
    pub answers_refused: u64,
    /// Answers whose origin seal verified.
    #[serde(default)]
    pub answers_verified: u64,
    /// Calls made here whose arguments left sealed to their origin node.
    #[serde(default)]
    pub sealed_out: u64,
    /// Sealed payloads opened here: arguments at this origin, results of
    /// calls made here.
    #[serde(default)]
    pub sealed_opened: u64,
    /// Sealed payloads refused: for another node, or not opening.
    #[serde(default)]
    pub sealed_refused: u64,
}
