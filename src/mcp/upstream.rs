//! The upstream side of a node: one MCP client session per hosted agent.
//!
//! [`UpstreamHandle::new`] returns a handle and the receiving end of a
//! bounded channel of [`AgentEvent`]s. For every agent added with
//! [`UpstreamHandle::add_agent`] a supervisor task starts the agent (a child
//! process over stdio, or a streamable HTTP connection), runs the MCP
//! handshake (`initialize` or `server/discover`, see
//! [`ProtocolMode`](super::config::ProtocolMode)), lists its tools, resources
//! and prompts (following pagination), and reports:
//!
//! - [`AgentEvent::Up`] with the full catalog once the agent answers;
//! - [`AgentEvent::ToolsChanged`] when the agent says its lists changed
//!   (`notifications/*/list_changed`) and a re-list shows a difference;
//! - [`AgentEvent::Down`] with a [`DownReason`] when the agent exits, closes
//!   the connection, misses a health check (an MCP `ping` on an interval, with
//!   a timeout), fails to start, or is removed.
//!
//! After a `Down` the supervisor kills what is left of the process (its whole
//! process group), waits a back-off delay that doubles per failed attempt,
//! and starts again; an HTTP agent is reconnected the same way.
//!
//! [`UpstreamHandle::call_tool`] (and [`UpstreamHandle::request`] for the
//! other operations; `calls` has the sending, `input_required` rounds and
//! subscriptions) sends a `tools/call` to a connected agent
//! and keeps MCP's semantics: structured content and `isError` come back in
//! [`ToolCallResult`], progress notifications are relayed to the caller's
//! channel, cancelling the caller's token sends `notifications/cancelled`
//! upstream, and a deadline always ends the call with an error, never a
//! hang.
//!
//! This module does **not** decide what to do with the events (announce or
//! withdraw routes, mark health in MED): the node's engine consumes them.
//! The event channel is bounded; a consumer that stops reading eventually
//! stalls the supervisors, which is the intended back-pressure.

mod calls;
mod client;
mod connect;
mod supervisor;

use std::collections::HashMap;
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use rmcp::model::{
    CallToolRequestParams, CancelledNotificationParam, ClientRequest, CompleteRequestParams,
    ErrorCode, GetPromptRequestParams, ReadResourceRequestParams, Request, ServerResult,
    SubscribeRequestParams, UnsubscribeRequestParams,
};
use rmcp::service::{PeerRequestOptions, ServiceError};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use super::catalog::ToolDescriptor;
use super::config::AgentConfig;
use super::items::ItemDescriptor;
use crate::core::call::{CallOp, TraceContext};
use crate::core::ids::AgentId;
use calls::{call_on_session, server_result};
pub use client::SideEvent;
use supervisor::{Link, Session};

/// How long [`UpstreamHandle::remove_agent`] waits for an agent's
/// supervisor to shut it down before giving up on it.
const REMOVE_TIMEOUT: Duration = Duration::from_secs(10);
/// How long sending `notifications/cancelled` may take before it is dropped.
const CANCEL_SEND_TIMEOUT: Duration = Duration::from_secs(1);

/// Options of the whole manager. Defaults: 256 queued events.
#[derive(Debug, Clone)]
pub struct UpstreamOptions {
    event_capacity: usize,
}

impl Default for UpstreamOptions {
    fn default() -> Self {
        UpstreamOptions {
            event_capacity: 256,
        }
    }
}

impl UpstreamOptions {
    /// Events buffered before supervisors wait for the consumer (minimum 1).
    pub fn with_event_capacity(mut self, n: usize) -> Self {
        self.event_capacity = n.max(1);
        self
    }
}

/// Identifies one connected session of an agent; a restart starts a new
/// one. Lets a consumer tell a late event of an old session from a new one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct SessionId(pub u64);

impl fmt::Display for SessionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "session-{}", self.0)
    }
}

/// Who answered the handshake.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServerSummary {
    /// `serverInfo.name`, when the server sent one.
    pub name: Option<String>,
    pub version: Option<String>,
    /// The negotiated MCP protocol revision, e.g. `2025-11-25`.
    pub protocol_version: String,
    pub instructions: Option<String>,
}

/// Everything an agent lists. Lists the server does not advertise are empty.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct AgentCatalog {
    pub tools: Vec<ToolDescriptor>,
    /// Prompts, resources and resource templates, as listed.
    pub items: Vec<ItemDescriptor>,
}

/// What the upstream manager reports about agents.
#[derive(Debug, Clone, PartialEq)]
pub enum AgentEvent {
    /// The agent answered the handshake and its lists; calls may be sent.
    Up {
        agent: AgentId,
        session: SessionId,
        server: ServerSummary,
        tools: Vec<ToolDescriptor>,
        /// Prompts, resources and resource templates.
        items: Vec<ItemDescriptor>,
    },
    /// The agent's lists differ from those last reported for this session.
    ToolsChanged {
        agent: AgentId,
        session: SessionId,
        tools: Vec<ToolDescriptor>,
        /// Prompts, resources and resource templates.
        items: Vec<ItemDescriptor>,
    },
    /// The agent cannot take calls. Sent once per transition: an agent that
    /// keeps failing to start is not reported again until it was up.
    /// Always sent (again) as the last event of a removed agent.
    Down { agent: AgentId, reason: DownReason },
}

impl AgentEvent {
    pub fn agent(&self) -> &AgentId {
        match self {
            AgentEvent::Up { agent, .. }
            | AgentEvent::ToolsChanged { agent, .. }
            | AgentEvent::Down { agent, .. } => agent,
        }
    }
}

/// Why an agent is down.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DownReason {
    /// Starting, connecting, the handshake or the first listing failed.
    StartFailed(String),
    /// The child process exited; its last lines of stderr, if any.
    Exited { status: String, stderr: String },
    /// The connection closed (stdout EOF, HTTP session gone).
    ConnectionClosed,
    /// A health check got no answer in time. The process was killed.
    Unresponsive { timeout: Duration },
    /// A health check or re-list failed for another reason.
    Failed(String),
    /// Removed with [`UpstreamHandle::remove_agent`].
    Removed,
    /// The manager shut down.
    Shutdown,
}

impl fmt::Display for DownReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DownReason::StartFailed(e) => write!(f, "could not start: {e}"),
            DownReason::Exited { status, stderr } if stderr.is_empty() => {
                write!(f, "process exited ({status})")
            }
            DownReason::Exited { status, stderr } => {
                write!(f, "process exited ({status}); last stderr: {stderr}")
            }
            DownReason::ConnectionClosed => f.write_str("connection closed"),
            DownReason::Unresponsive { timeout } => {
                write!(f, "no answer to a health check within {timeout:?}; killed")
            }
            DownReason::Failed(e) => write!(f, "failed: {e}"),
            DownReason::Removed => f.write_str("removed"),
            DownReason::Shutdown => f.write_str("upstream manager shut down"),
        }
    }
}

/// One progress notification of a call.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Progress {
    /// Grows with every notification, even when the total is unknown.
    pub progress: f64,
    pub total: Option<f64>,
    pub message: Option<String>,
}

/// The result of a tool call, as owned data free of SDK types so it can be
/// tunnelled to another node unchanged.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ToolCallResult {
    /// MCP content blocks (text, image, resource, ...), as the agent sent
    /// them.
    pub content: Vec<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub structured_content: Option<Value>,
    /// The tool ran and failed (MCP `isError`); the content says why.
    #[serde(default)]
    pub is_error: bool,
    #[serde(rename = "_meta", default, skip_serializing_if = "Option::is_none")]
    pub meta: Option<Map<String, Value>>,
}

impl ToolCallResult {
    pub fn from_rmcp(r: &rmcp::model::CallToolResult) -> Self {
        ToolCallResult {
            content: r
                .content
                .iter()
                .filter_map(|c| serde_json::to_value(c).ok())
                .collect(),
            structured_content: r.structured_content.clone(),
            is_error: r.is_error.unwrap_or(false),
            meta: r
                .meta
                .as_ref()
                .and_then(|m| serde_json::to_value(m).ok())
                .and_then(|v| match v {
                    Value::Object(m) => Some(m),
                    _ => None,
                }),
        }
    }

    /// The SDK's result type, for the MCP front to answer with.
    pub fn to_rmcp(&self) -> Result<rmcp::model::CallToolResult, serde_json::Error> {
        let mut v = serde_json::to_value(self)?;
        if let Value::Object(m) = &mut v {
            // Always explicit, so the SDK sees a result even with no content.
            m.insert("isError".into(), Value::Bool(self.is_error));
        }
        let mut r: rmcp::model::CallToolResult = serde_json::from_value(v)?;
        // As the SDK's constructors do: 2026-07-28 clients need it, and the
        // server handler strips it for older ones.
        r.result_type = Some(rmcp::model::ResultType::COMPLETE);
        Ok(r)
    }

    /// The text blocks joined by newlines: handy for logs and tests.
    pub fn text(&self) -> String {
        self.content
            .iter()
            .filter(|c| c.get("type").and_then(Value::as_str) == Some("text"))
            .filter_map(|c| c.get("text").and_then(Value::as_str))
            .collect::<Vec<_>>()
            .join("\n")
    }
}

/// A tool call to send: which agent and tool, the arguments, and how the
/// caller wants to follow and bound it.
#[derive(Debug, Clone)]
pub struct ToolCall {
    agent: AgentId,
    /// What to send: `tools/call` unless set otherwise.
    op: CallOp,
    tool: String,
    arguments: Map<String, Value>,
    progress: Option<mpsc::Sender<Progress>>,
    side: Option<mpsc::Sender<SideEvent>>,
    log_level: Option<u8>,
    /// The W3C trace context to hand the agent (its `traceparent`).
    trace: Option<TraceContext>,
    cancel: CancellationToken,
    timeout: Option<Duration>,
}

impl ToolCall {
    pub fn new(agent: AgentId, tool: impl Into<String>) -> Self {
        ToolCall {
            agent,
            op: CallOp::Tool,
            tool: tool.into(),
            arguments: Map::new(),
            progress: None,
            side: None,
            log_level: None,
            trace: None,
            cancel: CancellationToken::new(),
            timeout: None,
        }
    }

    pub fn with_arguments(mut self, arguments: Map<String, Value>) -> Self {
        self.arguments = arguments;
        self
    }

    /// Sends `prompts/get` (`tool` is the prompt, the arguments its
    /// arguments), `resources/read` (arguments `{uri}`) or
    /// `completion/complete` (arguments: the request's params) instead of
    /// `tools/call`. Use [`UpstreamHandle::request`] for these.
    pub fn with_op(mut self, op: CallOp) -> Self {
        self.op = op;
        self
    }

    /// The caller wants the agent's log messages from this severity up (0
    /// debug ... 7 emergency). On a 2026-07-28 session the level goes in
    /// the request's `_meta` (`io.modelcontextprotocol/logLevel`), the only
    /// way that revision asks for log messages; a 2025-11-25 agent sends
    /// what its session level allows.
    pub fn with_log_level(mut self, level: Option<u8>) -> Self {
        self.log_level = level;
        self
    }

    /// The call's trace context: it goes to the agent as
    /// `params._meta.traceparent` of the request (the MCP community's
    /// OpenTelemetry convention), and the call's log lines carry its trace
    /// id. (Not as an HTTP `traceparent` header: rmcp's streamable HTTP
    /// client sets headers per transport, not per request.)
    pub fn with_trace(mut self, trace: Option<TraceContext>) -> Self {
        self.trace = trace;
        self
    }

    /// The agent's requests to the caller's client (sampling, elicitation,
    /// roots) and its log messages during the call go to `tx`.
    pub fn with_side(mut self, tx: mpsc::Sender<SideEvent>) -> Self {
        self.side = Some(tx);
        self
    }

    /// Progress notifications go to `tx`. When `tx` is full a notification
    /// is dropped rather than stalling the agent's connection; the ones that
    /// arrive are in increasing order.
    pub fn with_progress(mut self, tx: mpsc::Sender<Progress>) -> Self {
        self.progress = Some(tx);
        self
    }

    /// Cancelling `token` abandons the call and sends
    /// `notifications/cancelled` upstream.
    pub fn with_cancel(mut self, token: CancellationToken) -> Self {
        self.cancel = token;
        self
    }

    /// The deadline, counted from the call; the agent's `call-timeout`
    /// when not set. Waiting for a free call slot counts too.
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = Some(timeout);
        self
    }
}

/// Why a call or a management request failed. Each variant says whether the
/// tool may have run.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum UpstreamError {
    #[error("no agent {0} on this node")]
    UnknownAgent(AgentId),
    #[error("agent {0} is already configured")]
    AgentExists(AgentId),
    #[error("agent {agent} is down ({reason}); the call was not sent")]
    AgentDown { agent: AgentId, reason: String },
    #[error(
        "agent {agent}: all {slots} call slots stayed busy for {waited:?}; the call was not sent"
    )]
    Overloaded {
        agent: AgentId,
        slots: usize,
        waited: Duration,
    },
    /// `sent` says whether the request had left: if not, the tool did not
    /// run; if so, it may have, and a cancellation followed it.
    #[error("agent {agent}, tool {tool}: no reply within {after:?}; {}", unknown_outcome(*sent))]
    Timeout {
        agent: AgentId,
        tool: String,
        after: Duration,
        sent: bool,
    },
    /// Cancelled by the caller's token; `sent` as for `Timeout`.
    #[error("agent {agent}, tool {tool}: cancelled by the caller; {}", unknown_outcome(*sent))]
    Cancelled {
        agent: AgentId,
        tool: String,
        sent: bool,
    },
    #[error(
        "agent {agent}, tool {tool}: the connection closed before a reply; the upstream may or may not have run the tool"
    )]
    Disconnected { agent: AgentId, tool: String },
    #[error(
        "agent {agent}, tool {tool}: sending failed ({detail}); the upstream may or may not have received the call"
    )]
    Transport {
        agent: AgentId,
        tool: String,
        detail: String,
    },
    /// A JSON-RPC error: the agent refused the request (unknown tool, bad
    /// arguments, internal error) rather than reporting a tool failure.
    #[error("agent {agent}, tool {tool}: the upstream answered with error {code}: {message}")]
    Rejected {
        agent: AgentId,
        tool: String,
        code: i32,
        message: String,
        data: Option<Value>,
    },
    #[error(
        "agent {agent}, tool {tool}: the upstream cancelled the call ({reason}); it may or may not have run the tool"
    )]
    UpstreamCancelled {
        agent: AgentId,
        tool: String,
        reason: String,
    },
    /// The agent answered with something this node cannot relay yet
    /// (input-required rounds, a task handle). For a task, the tool has
    /// started running.
    #[error("agent {agent}, tool {tool}: {what}, which agent-bgp does not relay")]
    Unsupported {
        agent: AgentId,
        tool: String,
        what: &'static str,
    },
    #[error("agent {agent}, tool {tool}: unexpected reply: {detail}")]
    Protocol {
        agent: AgentId,
        tool: String,
        detail: String,
    },
    #[error("add_agent was called outside a tokio runtime")]
    NoRuntime,
    #[error("agent {0} did not shut down within {REMOVE_TIMEOUT:?}; its task was aborted")]
    RemoveTimedOut(AgentId),
}

fn unknown_outcome(sent: bool) -> &'static str {
    if sent {
        "the upstream may or may not have run the tool (a cancellation was sent)"
    } else {
        "the call was not sent"
    }
}

/// What [`UpstreamHandle::status`] reports about one agent.
#[derive(Debug, Clone, PartialEq)]
pub struct AgentStatus {
    pub agent: AgentId,
    pub state: AgentState,
    /// Sessions started so far (1 after the first successful start).
    pub sessions: u64,
}

#[derive(Debug, Clone, PartialEq)]
pub enum AgentState {
    Starting,
    Up {
        session: SessionId,
        since: Instant,
        protocol_version: String,
    },
    Down {
        reason: DownReason,
        since: Instant,
    },
}

/// One agent as the manager keeps it.
struct AgentSlot {
    config: AgentConfig,
    link: watch::Receiver<Link>,
    stop: CancellationToken,
    stop_reason: Arc<OnceLock<DownReason>>,
    sessions: Arc<AtomicU64>,
    task: JoinHandle<()>,
}

struct Inner {
    agents: Mutex<HashMap<AgentId, AgentSlot>>,
    events: mpsc::Sender<AgentEvent>,
    /// Parent of every agent's stop token; cancelled when the last handle
    /// goes, so dropped handles do not leave supervisors (and children)
    /// running.
    root: CancellationToken,
    next_session: Arc<AtomicU64>,
}

impl Drop for Inner {
    fn drop(&mut self) {
        self.root.cancel();
    }
}

/// Starts, watches and calls agents. Cheap to clone; the manager stops its
/// agents when the last clone is dropped (or on [`Self::shutdown`]).
#[derive(Clone)]
pub struct UpstreamHandle {
    inner: Arc<Inner>,
}

impl fmt::Debug for UpstreamHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let n = self.lock_agents().len();
        f.debug_struct("UpstreamHandle")
            .field("agents", &n)
            .finish()
    }
}

impl UpstreamHandle {
    /// A manager with no agents yet, and the receiving end of its events.
    pub fn new(options: UpstreamOptions) -> (UpstreamHandle, mpsc::Receiver<AgentEvent>) {
        let (tx, rx) = mpsc::channel(options.event_capacity);
        let inner = Inner {
            agents: Mutex::new(HashMap::new()),
            events: tx,
            root: CancellationToken::new(),
            next_session: Arc::new(AtomicU64::new(1)),
        };
        (
            UpstreamHandle {
                inner: Arc::new(inner),
            },
            rx,
        )
    }

    fn lock_agents(&self) -> std::sync::MutexGuard<'_, HashMap<AgentId, AgentSlot>> {
        // A panic while holding this lock cannot leave the map half-edited
        // (every edit is one insert or remove), so poisoning is ignored.
        self.inner
            .agents
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Starts supervising an agent; it runs on the current tokio runtime.
    pub fn add_agent(&self, config: AgentConfig) -> Result<(), UpstreamError> {
        let runtime =
            tokio::runtime::Handle::try_current().map_err(|_| UpstreamError::NoRuntime)?;
        let mut agents = self.lock_agents();
        let id = config.id().clone();
        if agents.contains_key(&id) {
            return Err(UpstreamError::AgentExists(id));
        }
        let stop = self.inner.root.child_token();
        let stop_reason = Arc::new(OnceLock::new());
        let sessions = Arc::new(AtomicU64::new(0));
        let (link_tx, link_rx) = watch::channel(Link::Starting);
        let task = runtime.spawn(supervisor::run(supervisor::Supervisor {
            config: config.clone(),
            link: link_tx,
            events: self.inner.events.clone(),
            stop: stop.clone(),
            stop_reason: stop_reason.clone(),
            sessions: sessions.clone(),
            next_session: self.inner.next_session.clone(),
            final_sent: std::sync::atomic::AtomicBool::new(false),
        }));
        agents.insert(
            id,
            AgentSlot {
                config,
                link: link_rx,
                stop,
                stop_reason,
                sessions,
                task,
            },
        );
        Ok(())
    }

    /// Stops an agent (its process is asked to exit, then killed) and waits
    /// until it is gone. Its last event is `Down { reason: Removed }`.
    pub async fn remove_agent(&self, id: &AgentId) -> Result<(), UpstreamError> {
        let slot = self
            .lock_agents()
            .remove(id)
            .ok_or_else(|| UpstreamError::UnknownAgent(id.clone()))?;
        stop_slot(slot, DownReason::Removed).await
    }

    /// Stops every agent, as [`Self::remove_agent`] does, with reason
    /// `Shutdown`.
    pub async fn shutdown(&self) {
        let slots: Vec<AgentSlot> = self.lock_agents().drain().map(|(_, s)| s).collect();
        let stops = slots
            .into_iter()
            .map(|s| stop_slot(s, DownReason::Shutdown));
        for r in futures::future::join_all(stops).await {
            if let Err(e) = r {
                tracing::warn!(error = %e, "agent shutdown");
            }
        }
    }

    /// The configuration an agent was added with.
    pub fn config(&self, id: &AgentId) -> Option<AgentConfig> {
        self.lock_agents().get(id).map(|s| s.config.clone())
    }

    /// Ids of all configured agents, sorted.
    pub fn agent_ids(&self) -> Vec<AgentId> {
        let mut ids: Vec<AgentId> = self.lock_agents().keys().cloned().collect();
        ids.sort();
        ids
    }

    /// Where an agent stands right now.
    pub fn status(&self, id: &AgentId) -> Option<AgentStatus> {
        let agents = self.lock_agents();
        let slot = agents.get(id)?;
        let state = match &*slot.link.borrow() {
            Link::Starting => AgentState::Starting,
            Link::Up(s) => AgentState::Up {
                session: s.id,
                since: s.up_since,
                protocol_version: s.protocol_version.clone(),
            },
            Link::Down { reason, since } => AgentState::Down {
                reason: reason.clone(),
                since: *since,
            },
        };
        Some(AgentStatus {
            agent: id.clone(),
            state,
            sessions: slot.sessions.load(Ordering::Relaxed),
        })
    }

    /// Sends `tools/call` to a connected agent and waits for the result,
    /// relaying progress and honouring the call's cancel token and deadline.
    pub async fn call_tool(&self, call: ToolCall) -> Result<ToolCallResult, UpstreamError> {
        let (agent, tool) = (call.agent.clone(), call.tool.clone());
        let r = self.send(call.with_op(CallOp::Tool)).await?;
        server_result(&agent, &tool, r)
    }

    /// Sends the call's operation and returns the agent's result as JSON:
    /// a tool result as [`ToolCallResult`] serialises it, anything else as
    /// the agent sent it.
    pub async fn request(&self, call: ToolCall) -> Result<Value, UpstreamError> {
        // The call's log lines carry its trace id, so the logs of every
        // hop of one call can be joined.
        let span = match &call.trace {
            Some(t) => {
                tracing::info_span!("call", trace_id = %t.trace_id_hex(), agent = %call.agent)
            }
            None => tracing::Span::none(),
        };
        tracing::Instrument::instrument(self.request_in_span(call), span).await
    }

    async fn request_in_span(&self, call: ToolCall) -> Result<Value, UpstreamError> {
        if call.op == CallOp::Subscribe {
            return self.subscribe(call).await;
        }
        let (agent, tool, op) = (call.agent.clone(), call.tool.clone(), call.op);
        let r = self.send(call).await?;
        let protocol = |detail: String| UpstreamError::Protocol {
            agent: agent.clone(),
            tool: tool.clone(),
            detail,
        };
        match op {
            CallOp::Tool => serde_json::to_value(server_result(&agent, &tool, r)?)
                .map_err(|e| protocol(e.to_string())),
            _ => {
                let fits = matches!(
                    (op, &r),
                    (CallOp::Prompt, ServerResult::GetPromptResult(_))
                        | (CallOp::Resource, ServerResult::ReadResourceResult(_))
                        | (CallOp::Complete, ServerResult::CompleteResult(_))
                );
                if !fits {
                    return Err(protocol(format!("{:?}", r).chars().take(200).collect()));
                }
                serde_json::to_value(&r).map_err(|e| protocol(e.to_string()))
            }
        }
    }

    async fn send(&self, call: ToolCall) -> Result<ServerResult, UpstreamError> {
        let (session, default_timeout) = self.up_session(&call.agent)?;
        let timeout = call.timeout.unwrap_or(default_timeout);
        let deadline = tokio::time::Instant::now() + timeout;
        call_on_session(&session, call, timeout, deadline).await
    }

    /// The agent's session, if it is up, and its default call timeout.
    fn up_session(&self, agent: &AgentId) -> Result<(Arc<Session>, Duration), UpstreamError> {
        let call_agent = agent;
        Ok({
            let agents = self.lock_agents();
            let slot = agents
                .get(call_agent)
                .ok_or_else(|| UpstreamError::UnknownAgent(call_agent.clone()))?;
            let link = slot.link.borrow();
            let session = match &*link {
                Link::Up(s) => s.clone(),
                Link::Starting => {
                    return Err(UpstreamError::AgentDown {
                        agent: call_agent.clone(),
                        reason: "still starting".into(),
                    });
                }
                Link::Down { reason, .. } => {
                    return Err(UpstreamError::AgentDown {
                        agent: call_agent.clone(),
                        reason: reason.to_string(),
                    });
                }
            };
            (session, slot.config.call_timeout())
        })
    }

    /// Sends an MCP `ping` to a connected agent (a health-as-MED probe) and
    /// says how long the answer took. Any correlated answer counts, an
    /// error included, as in the supervisor's health check. Whether the
    /// agent is alive is the supervisor's to decide: this only measures.
    pub async fn ping(&self, agent: &AgentId, timeout: Duration) -> PingOutcome {
        let Ok((session, _)) = self.up_session(agent) else {
            return PingOutcome::NotUp;
        };
        let started = tokio::time::Instant::now();
        let request = ClientRequest::PingRequest(rmcp::model::PingRequest::default());
        let ask = async {
            let handle = session
                .peer
                .send_request_with_option(request, PeerRequestOptions::with_timeout(timeout))
                .await?;
            handle.await_response().await
        };
        match tokio::time::timeout(timeout + Duration::from_secs(1), ask).await {
            Ok(Ok(_)) | Ok(Err(ServiceError::McpError(_))) => {
                PingOutcome::Answered(started.elapsed())
            }
            Err(_) | Ok(Err(ServiceError::Timeout { .. })) => PingOutcome::Unanswered,
            Ok(Err(_)) => PingOutcome::NotUp,
        }
    }
}

/// What [`UpstreamHandle::ping`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PingOutcome {
    /// Answered after this long.
    Answered(Duration),
    /// No answer within the timeout.
    Unanswered,
    /// Not connected (starting, down, the connection closed meanwhile):
    /// says nothing about its health.
    NotUp,
}

async fn stop_slot(slot: AgentSlot, reason: DownReason) -> Result<(), UpstreamError> {
    let id = slot.config.id().clone();
    // First reason wins: a shutdown racing a removal reports one of them.
    let _ = slot.stop_reason.set(reason);
    slot.stop.cancel();
    let mut task = slot.task;
    match tokio::time::timeout(REMOVE_TIMEOUT, &mut task).await {
        Ok(_) => Ok(()),
        Err(_) => {
            task.abort();
            Err(UpstreamError::RemoveTimedOut(id))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn call_result_keeps_structured_content_and_is_error() {
        let r: rmcp::model::CallToolResult = serde_json::from_value(json!({
            "content": [{"type": "text", "text": "hi"}, {"type": "text", "text": "there"}],
            "structuredContent": {"text": "hi"},
            "isError": true,
            "_meta": {"k": 1}
        }))
        .unwrap();
        let ours = ToolCallResult::from_rmcp(&r);
        assert!(ours.is_error);
        assert_eq!(ours.structured_content, Some(json!({"text": "hi"})));
        assert_eq!(ours.text(), "hi\nthere");
        assert_eq!(ours.meta, json!({"k": 1}).as_object().cloned());
        let back = ours.to_rmcp().unwrap();
        assert_eq!(ToolCallResult::from_rmcp(&back), ours);
    }

    #[test]
    fn empty_result_converts_back_to_an_sdk_result() {
        let r = ToolCallResult {
            content: vec![],
            structured_content: None,
            is_error: false,
            meta: None,
        };
        assert_eq!(r.to_rmcp().unwrap().is_error, Some(false));
    }

    #[test]
    fn errors_say_whether_the_tool_may_have_run() {
        let a = AgentId::new("a");
        let t = UpstreamError::Timeout {
            agent: a.clone(),
            tool: "x".into(),
            after: Duration::from_secs(1),
            sent: true,
        };
        assert!(t.to_string().contains("may or may not have run"));
        let c = UpstreamError::Cancelled {
            agent: a.clone(),
            tool: "x".into(),
            sent: false,
        };
        assert!(c.to_string().ends_with("the call was not sent"), "{c}");
        let d = UpstreamError::AgentDown {
            agent: a,
            reason: "starting".into(),
        };
        assert!(d.to_string().contains("was not sent"));
    }

    #[test]
    fn down_reasons_read_well() {
        let r = DownReason::Exited {
            status: "exit status: 3".into(),
            stderr: "boom".into(),
        };
        assert_eq!(
            r.to_string(),
            "process exited (exit status: 3); last stderr: boom"
        );
        assert!(
            DownReason::Unresponsive {
                timeout: Duration::from_millis(300)
            }
            .to_string()
            .contains("300ms")
        );
    }
}
