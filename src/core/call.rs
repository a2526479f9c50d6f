//! Call-tunnelling messages as plain data: CALL, its answer, CALL-RESULT,
//! PROGRESS, CANCEL, and the agent's side channel during a call: NOTIFY
//! (a notification for the caller's client), ASK (a request to it) and
//! REPLY (its answer).
//!
//! A tool call travels hop by hop along the path the routing core chose, to
//! the node that originated the tool's route; its result and progress travel
//! back the same way. [`crate::core::forward`] decides what each hop does
//! with these messages; `crate::wire::call` maps them to CBOR frames; the
//! libp2p adapter only moves them.
//!
//! # Legs and ids
//!
//! Every link a call crosses is one *leg*. The sender of a CALL names the leg
//! with a [`LegId`] of its own choosing, and every later message about that
//! call on that link (the answer, progress, the result, a cancellation)
//! carries the same leg id. A receiver keys its table by (sending peer, leg),
//! so no peer can collide with, or address, another peer's calls. The
//! end-to-end [`CallId`], chosen by the caller's node, never changes and is
//! what logs and traces show.
//!
//! # The signed origin
//!
//! [`CallOrigin`] is what the caller's node signs: who calls (node, ASN
//! certificate, claimed communities), what (target prefix, operation, digest
//! of the arguments) and until when. Hops pass it on untouched; the node that
//! runs the tool verifies it and applies its access policy to the caller it
//! names, never to the previous hop.

use std::fmt;
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use serde_json::Value as Json;
use sha2::{Digest, Sha256};

use super::community::Community;
use super::ids::{Asn, Millis, NodeId};
use super::prefix::Prefix;
use super::proof::{AsnCert, Signature};

/// Names one call end to end: 16 random bytes chosen by the caller's node.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct CallId(pub [u8; 16]);

impl fmt::Debug for CallId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "CallId({})", hex::encode(&self.0[..6]))
    }
}

impl fmt::Display for CallId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&hex::encode(self.0))
    }
}

impl CallId {
    /// The first 12 hex digits: enough to tell calls apart in a log.
    pub fn short(&self) -> String {
        hex::encode(&self.0[..6])
    }
}

/// Names one call on one link; chosen by the node that sent the CALL.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct LegId(pub u64);

impl fmt::Display for LegId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "leg-{:x}", self.0)
    }
}

/// What the call asks of the origin.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum CallOp {
    /// `tools/call` of the tool the origin's route names.
    Tool,
    /// Return the tool's full descriptor (name, description, schemas,
    /// annotations): routes carry only the name and a content hash. Also
    /// the listed descriptor of a prompt, resource or template route.
    Describe,
    /// `prompts/get` of the prompt the route names; the arguments are the
    /// prompt's `arguments` object.
    Prompt,
    /// `resources/read`; the arguments are `{"uri": ...}`: the route's
    /// resource, or a URI its template matches.
    Resource,
    /// `completion/complete` for the prompt or resource template the route
    /// names; the arguments are the request's params as the agent will see
    /// them.
    Complete,
    /// `resources/subscribe` of the route's resource (or a URI its template
    /// matches; arguments `{"uri": ...}`). The call stays open while the
    /// subscription lasts: a PROGRESS says it is in place, each
    /// `notifications/resources/updated` comes back as a NOTIFY, and a
    /// CANCEL (the client unsubscribed or went away) ends it with
    /// `resources/unsubscribe`.
    Subscribe,
}

impl CallOp {
    /// Stable wire number.
    pub fn number(self) -> u64 {
        match self {
            CallOp::Tool => 0,
            CallOp::Describe => 1,
            CallOp::Prompt => 2,
            CallOp::Resource => 3,
            CallOp::Complete => 4,
            CallOp::Subscribe => 5,
        }
    }

    pub fn from_number(n: u64) -> Option<CallOp> {
        Some(match n {
            0 => CallOp::Tool,
            1 => CallOp::Describe,
            2 => CallOp::Prompt,
            3 => CallOp::Resource,
            4 => CallOp::Complete,
            5 => CallOp::Subscribe,
            _ => return None,
        })
    }

    /// The MCP method an operation runs at the agent.
    pub fn method(self) -> &'static str {
        match self {
            CallOp::Tool => "tools/call",
            CallOp::Describe => "describe",
            CallOp::Prompt => "prompts/get",
            CallOp::Resource => "resources/read",
            CallOp::Complete => "completion/complete",
            CallOp::Subscribe => "resources/subscribe",
        }
    }
}

/// The part of a CALL the caller's node signs. Hops never change it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CallOrigin {
    pub id: CallId,
    pub caller: NodeId,
    pub caller_asn: Asn,
    /// Communities the caller's node claims for its callers (from its
    /// configuration). Signed, so no hop can add any; only as trustworthy
    /// as the caller's AS, which the origin's access policy decides.
    pub communities: Vec<Community>,
    /// The prefix asked for: a tool's route prefix, or a capability the
    /// caller resolved by longest-prefix match.
    pub target: Prefix,
    pub op: CallOp,
    /// The tool is annotated read-only or idempotent: a hop whose next hop
    /// fails mid-call may retry it on another path, and the origin accepts
    /// the same call id twice. Signed, so no hop can claim it.
    pub idempotent: bool,
    /// The tool name the caller saw on the route, if any. Informational:
    /// the origin runs the tool its own route for `target` names.
    pub tool: Option<String>,
    /// SHA-256 of the canonical JSON of the arguments, so no hop can
    /// change them unnoticed.
    pub args_digest: [u8; 32],
    pub issued: Millis,
    /// The caller gives up at this time. Hops may shorten their own wait,
    /// never lengthen it.
    pub deadline: Millis,
    /// The caller's ASN certificate (`None` only on unsigned test links).
    pub cert: Option<Arc<AsnCert>>,
    /// The caller node's signature over the other fields (`crate::wire`
    /// defines the signed bytes).
    pub signature: Option<Signature>,
}

/// A CALL: run (or pass on) a call on this leg.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Call {
    pub leg: LegId,
    /// Hops left: a node that would forward with 0 refuses instead.
    pub hop_limit: u8,
    /// The caller wants progress notifications.
    pub progress: bool,
    /// The calling client wants the agent's log messages of this severity
    /// and above (RFC 5424 order as MCP uses it: 0 debug, 1 info, 2 notice,
    /// 3 warning, 4 error, 5 critical, 6 alert, 7 emergency); `None`: none.
    pub log_level: Option<u8>,
    pub origin: Arc<CallOrigin>,
    /// The tool's arguments (an MCP `arguments` object, or null). Null
    /// while they travel [`sealed`](Call::sealed).
    pub arguments: Json,
    /// The arguments sealed to the origin node, end to end: what a transit
    /// carries instead of them (docs/security.md, "Sealed payloads").
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sealed: Option<Arc<Sealed>>,
    /// The W3C trace context: the call's trace id and the span id of the
    /// hop that sent this CALL (`None`: the sender did not say; the hop
    /// then uses the call id as the trace id). Not signed: it only names
    /// the call in traces and logs.
    pub trace: Option<TraceContext>,
}

/// A W3C trace context (<https://www.w3.org/TR/trace-context/>) as a call
/// carries it: one call is one trace; each hop is one span whose parent is
/// the span of the hop (or client) before it.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct TraceContext {
    /// 16 bytes, never all zero.
    pub trace_id: [u8; 16],
    /// The span of the sender: the parent of the receiver's span. All zero
    /// only in a call from the local front whose client started no trace
    /// (the front's span then has no parent); never on the wire.
    pub span_id: [u8; 8],
    /// W3C trace flags (bit 0: sampled).
    pub flags: u8,
}

impl fmt::Debug for TraceContext {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.traceparent())
    }
}

/// Domain tag of the hash a hop derives its span id from.
const SPAN_DOMAIN: &[u8] = b"agent-bgp/v1/span\0";

impl TraceContext {
    /// Bit 0 of the trace flags: the caller records this trace.
    pub const SAMPLED: u8 = 0x01;

    /// A `traceparent` header value, strictly as W3C trace context level
    /// 1 writes it: version `00`, lower-case hex, non-zero trace and parent
    /// ids, exactly 55 characters. Anything else is `None` (the caller then
    /// starts a new trace; a bad header never fails a call).
    pub fn parse_traceparent(s: &str) -> Option<TraceContext> {
        let b = s.as_bytes();
        if b.len() != 55 || b[2] != b'-' || b[35] != b'-' || b[52] != b'-' {
            return None;
        }
        let lower_hex = |r: &[u8]| r.iter().all(|c| matches!(c, b'0'..=b'9' | b'a'..=b'f'));
        if !lower_hex(&b[0..2]) || !lower_hex(&b[3..35]) || !lower_hex(&b[36..52]) {
            return None;
        }
        if !lower_hex(&b[53..55]) || &b[0..2] != b"00" {
            return None;
        }
        let mut t = TraceContext {
            trace_id: [0; 16],
            span_id: [0; 8],
            flags: 0,
        };
        hex::decode_to_slice(&b[3..35], &mut t.trace_id).ok()?;
        hex::decode_to_slice(&b[36..52], &mut t.span_id).ok()?;
        let mut fl = [0u8; 1];
        hex::decode_to_slice(&b[53..55], &mut fl).ok()?;
        t.flags = fl[0];
        t.is_valid().then_some(t)
    }

    /// Non-zero trace id and span id: what W3C requires of a traceparent.
    pub fn is_valid(&self) -> bool {
        self.trace_id != [0; 16] && self.span_id != [0; 8]
    }

    /// `00-{trace id}-{span id}-{flags}`.
    pub fn traceparent(&self) -> String {
        format!(
            "00-{}-{}-{:02x}",
            hex::encode(self.trace_id),
            hex::encode(self.span_id),
            self.flags
        )
    }

    /// The trace id as 32 lower-case hex digits.
    pub fn trace_id_hex(&self) -> String {
        hex::encode(self.trace_id)
    }

    /// The context a hop receiving `call` works in: the call's trace (or,
    /// when the sender carried none, a trace named by the call id), with
    /// this hop's own span id (derived from the trace, the call and the
    /// node, so every hop of a call has its own and no randomness is
    /// needed here). Returns it with the parent span, if any.
    pub fn for_hop(call: &Call, node: &NodeId) -> (TraceContext, Option<[u8; 8]>) {
        let (trace_id, parent, flags) = match call.trace {
            Some(t) => (
                t.trace_id,
                (t.span_id != [0; 8]).then_some(t.span_id),
                t.flags,
            ),
            None => (call.origin.id.0, None, Self::SAMPLED),
        };
        let trace_id = if trace_id == [0; 16] {
            call.origin.id.0
        } else {
            trace_id
        };
        let mut h = Sha256::new();
        h.update(SPAN_DOMAIN);
        h.update(trace_id);
        h.update(call.origin.id.0);
        h.update(node.as_bytes());
        let d = h.finalize();
        let mut span_id = [0u8; 8];
        span_id.copy_from_slice(&d[..8]);
        if span_id == [0; 8] {
            span_id[7] = 1;
        }
        (
            TraceContext {
                trace_id,
                span_id,
                flags,
            },
            parent,
        )
    }
}

/// Why a call failed outside the tool. Each kind says whether the tool may
/// have run ([`CallErrorKind::may_have_run`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum CallErrorKind {
    /// No route covers the target at this hop.
    NoRoute,
    /// The hop limit ran out before the origin.
    HopLimit,
    /// The sender asked this hop to forward for a prefix it never
    /// advertised to the sender.
    NotAdvertised,
    /// The origin's access policy refused the caller.
    AccessDenied,
    /// The caller's signature or certificate did not verify, or the call
    /// was a replay.
    BadCaller,
    /// The deadline passed. The tool may have run.
    Timeout,
    /// The next hop went away mid-call. The tool may have run.
    NextHopDown,
    /// The agent is down or not configured; the call was not sent to it.
    AgentDown,
    /// Too many calls in flight at a hop, or at the agent.
    Overloaded,
    /// The caller cancelled.
    Cancelled,
    /// The agent answered with a JSON-RPC error (bad arguments, unknown
    /// tool): `CallError::code` is its code.
    Upstream,
    /// The call reached the agent but the outcome is unknown (the
    /// connection to it broke).
    UpstreamLost,
    /// A bug or an unexpected answer.
    Internal,
    /// An answer that does not carry a valid seal of the route's origin
    /// (made up or changed on the way); the tool may have run.
    BadAnswer,
}

impl CallErrorKind {
    /// Stable wire number.
    pub fn number(self) -> u16 {
        use CallErrorKind::*;
        match self {
            NoRoute => 1,
            HopLimit => 2,
            NotAdvertised => 3,
            AccessDenied => 4,
            BadCaller => 5,
            Timeout => 6,
            NextHopDown => 7,
            AgentDown => 8,
            Overloaded => 9,
            Cancelled => 10,
            Upstream => 11,
            UpstreamLost => 12,
            Internal => 13,
            BadAnswer => 14,
        }
    }

    pub fn from_number(n: u16) -> Option<Self> {
        use CallErrorKind::*;
        Some(match n {
            1 => NoRoute,
            2 => HopLimit,
            3 => NotAdvertised,
            4 => AccessDenied,
            5 => BadCaller,
            6 => Timeout,
            7 => NextHopDown,
            8 => AgentDown,
            9 => Overloaded,
            10 => Cancelled,
            11 => Upstream,
            12 => UpstreamLost,
            13 => Internal,
            14 => BadAnswer,
            _ => return None,
        })
    }

    /// A short snake-case name for logs, metrics and MCP error data.
    pub fn name(self) -> &'static str {
        use CallErrorKind::*;
        match self {
            NoRoute => "no_route",
            HopLimit => "hop_limit",
            NotAdvertised => "not_advertised",
            AccessDenied => "access_denied",
            BadCaller => "bad_caller",
            Timeout => "timeout",
            NextHopDown => "next_hop_down",
            AgentDown => "agent_down",
            Overloaded => "overloaded",
            Cancelled => "cancelled",
            Upstream => "upstream_error",
            UpstreamLost => "upstream_lost",
            Internal => "internal",
            BadAnswer => "bad_answer",
        }
    }

    /// The JSON-RPC error code the MCP front answers with. Agent-bgp's own
    /// failures use the implementation-defined server range.
    pub fn json_rpc_code(self) -> i64 {
        use CallErrorKind::*;
        match self {
            NoRoute => -32001,
            HopLimit => -32002,
            NotAdvertised => -32003,
            AccessDenied => -32004,
            BadCaller => -32005,
            Timeout => -32006,
            NextHopDown => -32007,
            AgentDown => -32008,
            Overloaded => -32009,
            Cancelled => -32010,
            UpstreamLost => -32011,
            BadAnswer => -32012,
            Upstream | Internal => -32603,
        }
    }

    /// Whether the tool may have run when a call ends with this error.
    pub fn may_have_run(self) -> bool {
        use CallErrorKind::*;
        matches!(
            self,
            Timeout | NextHopDown | Cancelled | UpstreamLost | BadAnswer
        )
    }
}

/// A failure outside the tool, with where it happened.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CallError {
    pub kind: CallErrorKind,
    /// The JSON-RPC code for the client: the agent's own code for
    /// [`CallErrorKind::Upstream`], else [`CallErrorKind::json_rpc_code`].
    pub code: i64,
    /// Human-readable, names the hop: `AS65002: no route to a/b`.
    pub message: String,
    /// The agent's error data, for [`CallErrorKind::Upstream`].
    pub data: Option<Json>,
}

impl CallError {
    pub fn new(kind: CallErrorKind, message: impl Into<String>) -> Self {
        CallError {
            kind,
            code: kind.json_rpc_code(),
            message: message.into(),
            data: None,
        }
    }

    /// The agent's JSON-RPC error, passed through.
    pub fn upstream(code: i64, message: impl Into<String>, data: Option<Json>) -> Self {
        CallError {
            kind: CallErrorKind::Upstream,
            code,
            message: message.into(),
            data,
        }
    }
}

impl fmt::Display for CallError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({})", self.message, self.kind.name())
    }
}

/// How a call ended.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum CallOutcome {
    /// The origin's answer: an MCP `CallToolResult` (which may itself say
    /// `isError`), or a descriptor for [`CallOp::Describe`].
    Ok(Json),
    Err(CallError),
}

impl CallOutcome {
    pub fn err(kind: CallErrorKind, message: impl Into<String>) -> Self {
        CallOutcome::Err(CallError::new(kind, message))
    }

    /// A short label for logs and metrics: `ok` or the error kind.
    pub fn label(&self) -> &'static str {
        match self {
            CallOutcome::Ok(_) => "ok",
            CallOutcome::Err(e) => e.kind.name(),
        }
    }
}

/// One hop's share of a call, appended as the result travels back.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct HopTrace {
    pub node: NodeId,
    pub asn: Asn,
    /// Microseconds from this hop receiving the CALL to it passing the
    /// result back. A hop's own cost is its time minus the next hop's.
    pub elapsed_us: u64,
}

/// The origin's signature over its answer (`crate::wire::call::
/// answer_signed_bytes`): bound to the caller's signed origin, the
/// outcome and the origin's own hop of the trace. The calling node checks
/// it before its front returns anything.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AnswerSeal {
    pub cert: Arc<AsnCert>,
    pub signature: Signature,
}

/// What comes back: the outcome and the hops it crossed, origin first.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CallReturn {
    pub outcome: CallOutcome,
    pub trace: Vec<HopTrace>,
    /// The origin's seal (none: an answer made by a hop, an error; or a
    /// node that does not sign).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seal: Option<Arc<AnswerSeal>>,
    /// PROGRESS, NOTIFY and ASK messages the sender sent back for the call
    /// on this leg before this return. Each travels on a stream of its own
    /// and can be overtaken by the return; a hop that has seen fewer holds
    /// the return briefly for them, so the client sees the last progress
    /// step and log line before the result.
    #[serde(default)]
    pub sent_back: u32,
    /// The `Ok` outcome sealed to the calling node (the outcome then reads
    /// `Ok(null)` until the caller opens it): the answer to a sealed call.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sealed: Option<Arc<Sealed>>,
}

/// A payload sealed to one node (`crate::identity::seal`): only `to` can
/// open it; hops in between see its size. `enc` is HPKE's encapsulated key
/// for a call's arguments, the nonce (12 bytes, then zeros) for a reply.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Sealed {
    pub to: NodeId,
    pub enc: [u8; 32],
    pub ct: Vec<u8>,
}

/// The key the reply to a sealed call is sealed with: both ends derive it
/// from the call's key exchange, no one else can. Bytes only; the crypto
/// is the node's.
#[derive(Clone, PartialEq, Eq)]
pub struct ReplyKey(pub zeroize::Zeroizing<[u8; 32]>);

impl fmt::Debug for ReplyKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ReplyKey(<redacted>)")
    }
}

/// The immediate answer to a CALL request.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum CallAnswer {
    /// Taken: progress and the result follow as requests of their own.
    Accepted,
    /// Not taken; nothing ran.
    Refused(CallError),
    /// Finished before the answer was due: the result comes inline, saving
    /// a round trip per hop for short calls.
    Done(CallReturn),
}

/// CALL-RESULT: the end of a call whose CALL was answered `Accepted`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CallResult {
    pub leg: LegId,
    pub ret: CallReturn,
}

/// Progress of a running call, as MCP reports it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProgressInfo {
    pub progress: f64,
    pub total: Option<f64>,
    pub message: Option<String>,
}

/// PROGRESS, travelling back towards the caller.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Progress {
    pub leg: LegId,
    pub info: ProgressInfo,
}

/// CANCEL, travelling towards the origin: the caller no longer wants the
/// result.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Cancel {
    pub leg: LegId,
    pub reason: Option<String>,
}

/// Notifications an agent may send to the caller's client during a call
/// (NOTIFY). Anything else an agent sends is not relayed.
pub const NOTIFY_METHODS: [&str; 2] = ["notifications/message", "notifications/resources/updated"];

/// Requests an agent may make of the caller's client during a call (ASK).
pub const ASK_METHODS: [&str; 3] = ["sampling/createMessage", "elicitation/create", "roots/list"];

/// NOTIFY, travelling back towards the caller: a notification of the agent
/// for the calling client (a log message), as MCP params.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Notify {
    pub leg: LegId,
    /// One of [`NOTIFY_METHODS`].
    pub method: String,
    pub params: Json,
}

/// ASK, travelling back towards the caller: a request of the agent to the
/// calling client (sampling, elicitation, roots). `ask` is chosen by the
/// origin, unique within the call, and comes back on the REPLY.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Ask {
    pub leg: LegId,
    pub ask: u32,
    /// One of [`ASK_METHODS`].
    pub method: String,
    pub params: Json,
}

/// REPLY, travelling towards the origin: the calling client's answer to
/// the ASK `ask` (its result, or why there is none).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Reply {
    pub leg: LegId,
    pub ask: u32,
    pub outcome: CallOutcome,
}

/// CALL-ANSWER: the response to the CALL request of `leg`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Answer {
    pub leg: LegId,
    pub answer: CallAnswer,
}

/// The call-tunnelling messages. CALL, CALL-RESULT, PROGRESS, CANCEL,
/// NOTIFY, ASK and REPLY travel as requests; CALL-ANSWER is the response
/// to a CALL (the others are acknowledged with an empty response).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum CallMessage {
    Call(Call),
    Answer(Answer),
    Result(CallResult),
    Progress(Progress),
    Cancel(Cancel),
    Notify(Notify),
    Ask(Ask),
    Reply(Reply),
}

/// Which call-protocol message: what a failed send says it lost.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CallKind {
    Call,
    Answer,
    Result,
    Progress,
    Cancel,
    Notify,
    Ask,
    Reply,
}

impl CallKind {
    pub fn name(self) -> &'static str {
        match self {
            CallKind::Call => "CALL",
            CallKind::Answer => "CALL-ANSWER",
            CallKind::Result => "CALL-RESULT",
            CallKind::Progress => "PROGRESS",
            CallKind::Cancel => "CANCEL",
            CallKind::Notify => "NOTIFY",
            CallKind::Ask => "ASK",
            CallKind::Reply => "REPLY",
        }
    }
}

impl fmt::Display for CallKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl CallMessage {
    pub fn kind(&self) -> CallKind {
        match self {
            CallMessage::Call(_) => CallKind::Call,
            CallMessage::Answer(_) => CallKind::Answer,
            CallMessage::Result(_) => CallKind::Result,
            CallMessage::Progress(_) => CallKind::Progress,
            CallMessage::Cancel(_) => CallKind::Cancel,
            CallMessage::Notify(_) => CallKind::Notify,
            CallMessage::Ask(_) => CallKind::Ask,
            CallMessage::Reply(_) => CallKind::Reply,
        }
    }

    pub fn leg(&self) -> LegId {
        match self {
            CallMessage::Call(c) => c.leg,
            CallMessage::Answer(a) => a.leg,
            CallMessage::Result(r) => r.leg,
            CallMessage::Progress(p) => p.leg,
            CallMessage::Cancel(c) => c.leg,
            CallMessage::Notify(n) => n.leg,
            CallMessage::Ask(a) => a.leg,
            CallMessage::Reply(r) => r.leg,
        }
    }
}

/// Extra attribute naming the tool a route leads to (text, transitive); on
/// a prompt route the prompt's name, on a resource route its URI, on a
/// template route its URI template.
pub const TOOL_ATTR: &str = "mcp.tool";
/// Extra attribute saying what a route leads to when it is not a tool
/// (text, transitive): `prompt`, `resource` or `template`.
pub const KIND_ATTR: &str = "mcp.kind";
/// Extra attribute carrying the 16-byte descriptor hash (bytes, transitive).
pub const DESCRIPTOR_ATTR: &str = "mcp.desc";

/// Each hop's own share of a call, caller first: its elapsed time minus the
/// next hop's.
pub fn hop_costs(trace: &[HopTrace]) -> Vec<(HopTrace, u64)> {
    // Origin first in the trace; each later hop's time includes the earlier.
    let mut out: Vec<(HopTrace, u64)> = Vec::with_capacity(trace.len());
    let mut inner = 0u64;
    for h in trace {
        out.push((*h, h.elapsed_us.saturating_sub(inner)));
        inner = h.elapsed_us;
    }
    out.reverse();
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn hop_costs_subtract_the_inner_hops() {
        let h = |asn: u32, us: u64| HopTrace {
            node: NodeId::from_u64(u64::from(asn)),
            asn: Asn(asn),
            elapsed_us: us,
        };
        let costs = hop_costs(&[h(3, 1000), h(2, 1300), h(1, 1450)]);
        let v: Vec<(u32, u64)> = costs.iter().map(|(h, c)| (h.asn.0, *c)).collect();
        assert_eq!(v, vec![(1, 150), (2, 300), (3, 1000)]);
    }

    use super::*;

    #[test]
    fn error_kind_numbers_round_trip_and_are_unique() {
        let mut seen = std::collections::HashSet::new();
        for n in 0..=20u16 {
            if let Some(k) = CallErrorKind::from_number(n) {
                assert_eq!(k.number(), n);
                assert!(seen.insert(k.name()));
            }
        }
        assert_eq!(seen.len(), 14);
    }

    #[test]
    fn only_failures_after_sending_may_have_run() {
        assert!(CallErrorKind::NextHopDown.may_have_run());
        assert!(CallErrorKind::Timeout.may_have_run());
        assert!(!CallErrorKind::AccessDenied.may_have_run());
        assert!(!CallErrorKind::NoRoute.may_have_run());
    }

    #[test]
    fn traceparent_is_parsed_strictly() {
        let ok = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
        let t = TraceContext::parse_traceparent(ok).expect("valid");
        assert_eq!(t.trace_id_hex(), "4bf92f3577b34da6a3ce929d0e0e4736");
        assert_eq!(t.span_id, [0x00, 0xf0, 0x67, 0xaa, 0x0b, 0xa9, 0x02, 0xb7]);
        assert_eq!(t.flags, 1);
        assert_eq!(t.traceparent(), ok);
        for bad in [
            "",
            "01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",
            "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-0",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-",
            "00_4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e473g-00f067aa0ba902b7-01",
            "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-0\u{e9}",
        ] {
            assert_eq!(TraceContext::parse_traceparent(bad), None, "{bad:?}");
        }
    }

    fn call_with(trace: Option<TraceContext>) -> Call {
        Call {
            sealed: None,
            leg: LegId(1),
            hop_limit: 4,
            progress: false,
            log_level: None,
            origin: Arc::new(CallOrigin {
                id: CallId([5; 16]),
                caller: NodeId::from_u64(1),
                caller_asn: Asn(65001),
                communities: Vec::new(),
                target: Prefix::new("a/b").unwrap(),
                op: CallOp::Tool,
                idempotent: false,
                tool: None,
                args_digest: [0; 32],
                issued: Millis(0),
                deadline: Millis(1),
                cert: None,
                signature: None,
            }),
            arguments: Json::Null,
            trace,
        }
    }

    #[test]
    fn each_hop_has_its_own_span_in_the_callers_trace() {
        let client = TraceContext {
            trace_id: [9; 16],
            span_id: [3; 8],
            flags: 0,
        };
        let (a, parent) = TraceContext::for_hop(&call_with(Some(client)), &NodeId::from_u64(1));
        assert_eq!(a.trace_id, client.trace_id);
        assert_eq!(a.flags, 0);
        assert_eq!(parent, Some([3; 8]));
        // The next hop gets a's span as its parent.
        let (b, parent) = TraceContext::for_hop(&call_with(Some(a)), &NodeId::from_u64(2));
        assert_eq!((b.trace_id, parent), (client.trace_id, Some(a.span_id)));
        assert_ne!(b.span_id, a.span_id);
        assert!(a.is_valid() && b.is_valid());
        // No parent from a front whose client started no trace.
        let fresh = TraceContext {
            span_id: [0; 8],
            ..client
        };
        assert_eq!(
            TraceContext::for_hop(&call_with(Some(fresh)), &NodeId::from_u64(1)).1,
            None
        );
        // A sender that carried none: the call id names the trace.
        let (c, parent) = TraceContext::for_hop(&call_with(None), &NodeId::from_u64(3));
        assert_eq!((c.trace_id, parent), ([5; 16], None));
    }

    #[test]
    fn upstream_errors_keep_the_agents_code() {
        let e = CallError::upstream(-32602, "bad arguments", None);
        assert_eq!(e.code, -32602);
        assert_eq!(e.kind, CallErrorKind::Upstream);
        assert_eq!(
            CallError::new(CallErrorKind::AccessDenied, "no").code,
            -32004
        );
    }
}
