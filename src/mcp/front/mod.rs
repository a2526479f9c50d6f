//! The MCP front: the MCP server local clients (IDEs, agents, the MCP
//! Inspector) talk to.
//!
//! ```text
//!  client ──streamable HTTP /mcp or stdio──> FrontServer (rmcp, one per session)
//!     tools/list  ──> the latest ToolTable snapshot (watch channel; no node round trip)
//!     tools/call  ──> FrontRequest::Call ──> node task (forwarder) ──> ... ──> CallReturn
//!     progress    <── mpsc from the node, relayed as notifications/progress
//!     cancelled   ──> FrontRequest::Cancel ──> CANCEL along the path
//!  table changes ──> notifications/tools/list_changed to every session
//! ```
//!
//! [`FrontLink`] is the seam to the node: a watch channel of [`ToolTable`]s
//! the node publishes, and a bounded channel of [`FrontRequest`]s the node
//! answers. The front does not route, sign or decide access; it names tools,
//! turns MCP requests into requests to the node and answers back in MCP
//! terms (results as the origin's agent returned them, failures as JSON-RPC
//! errors that say where and why, and whether the tool may have run).
//!
//! Besides the routed tools the front serves five of its own (see
//! [`table::META_TOOLS`]): `find_agents`, `call_capability`, `list_agents`,
//! `describe_agent` and `call_agent`.
//!
//! - [`http`]: the streamable HTTP endpoint, bearer-token auth.
//! - [`bridge`]: `abgp mcp`, a stdio server that relays to a node's HTTP
//!   front.
//! - [`table`]: the snapshot of routed tools and their front names.
//! - [`view`]: what one endpoint offers (`/mcp`, `/mcp/<name>`): its filter
//!   and its mode (full, or discovery: meta and pinned tools listed,
//!   `find_agents` finds the rest).

pub mod bridge;
pub mod http;
mod items;
mod side;
pub mod table;
pub mod view;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

#[allow(deprecated)]
use rmcp::model::LoggingLevel;
use rmcp::model::{
    CallToolRequestParams, CallToolResponse, CallToolResult, ContentBlock, ErrorCode,
    Implementation, JsonObject, ListToolsResult, PaginatedRequestParams, ProgressNotificationParam,
    ProgressToken, ServerCapabilities, ServerConfig, SubscriptionFilter, Tool, ToolAnnotations,
};
use rmcp::service::{
    NotificationContext, Peer, RequestContext, SubscriptionContext, SubscriptionSink,
};
use rmcp::{ErrorData, RoleServer, ServerHandler};
use serde_json::{Value as Json, json};
use tokio::sync::{mpsc, oneshot, watch};
use tokio_util::sync::CancellationToken;

use crate::core::call::{
    CallErrorKind, CallOp, CallOutcome, CallReturn, ProgressInfo, TraceContext,
};
use crate::core::forward::FrontId;
use crate::core::ids::Asn;
use crate::core::prefix::Prefix;
use crate::mcp::catalog::tool_segment;
use table::{FrontTool, ToolTable};
use view::{FrontMode, View, ViewFilter};

/// The `_meta` key of a result that lists the hops a call took.
pub const TRACE_META: &str = "agent-bgp/trace";

/// Progress notifications buffered per call before older ones are dropped.
const PROGRESS_BUFFER: usize = 64;

/// What the front asks to be called: the route and the arguments.
#[derive(Debug, Clone, PartialEq)]
pub struct CallSpec {
    /// The prefix to route on: a tool's route prefix, or a capability.
    pub target: Prefix,
    /// The tool name the front resolved, if any (for the signed origin).
    pub tool: Option<String>,
    /// What to run at the origin (`tools/call` for tools).
    pub op: CallOp,
    pub arguments: Json,
    /// Read-only or idempotent: may be retried on another path.
    pub idempotent: bool,
    /// Spread over equal paths.
    pub balance: bool,
    /// Capability tags the caller wants: the `capability` balancing method
    /// prefers the paths whose routes carry the most of them.
    pub capabilities: Vec<String>,
    /// The node's default call timeout when `None`.
    pub timeout: Option<Duration>,
    /// The client wants the agent's log messages from this severity up
    /// (0 debug ... 7 emergency; see `core::call::Call::log_level`).
    pub log_level: Option<u8>,
}

/// A tool call for the node to route, with where its answer goes.
#[derive(Debug)]
pub struct FrontCallRequest {
    pub id: FrontId,
    pub spec: CallSpec,
    /// Where progress goes, if the client asked for it.
    pub progress: Option<mpsc::Sender<ProgressInfo>>,
    /// Where the agent's notifications and requests for the client go.
    pub side: Option<mpsc::Sender<FrontSide>>,
    /// The client's W3C trace context (`None`: the call starts a trace).
    pub trace: Option<TraceContext>,
    pub reply: oneshot::Sender<CallReturn>,
}

/// What the origin's agent sends the client during a call.
#[derive(Debug)]
pub enum FrontSide {
    /// A notification (a log message), as MCP params.
    Notify { method: String, params: Json },
    /// A request (sampling, elicitation, roots); answer it with
    /// [`FrontLink::reply`] under the same `id` and `ask`.
    Ask {
        id: FrontId,
        ask: u32,
        method: String,
        params: Json,
    },
}

/// What the front asks of the node.
#[derive(Debug)]
pub enum FrontRequest {
    Call(FrontCallRequest),
    /// The client's answer to an agent's request of call `id`.
    Reply {
        id: FrontId,
        ask: u32,
        outcome: CallOutcome,
    },
    /// The client cancelled, or went away.
    Cancel {
        id: FrontId,
        reason: Option<String>,
    },
    /// Routes whose prefix is covered by the query (a capability prefix)
    /// or that carry it as a capability tag, with every path and why the
    /// best one won.
    FindAgents {
        query: String,
        /// Only routes the asking endpoint's view admits.
        view: Arc<ViewFilter>,
        reply: oneshot::Sender<Json>,
    },
    /// The agents hosted here and the agents routes lead to (within the
    /// view).
    ListAgents {
        view: Arc<ViewFilter>,
        reply: oneshot::Sender<Json>,
    },
}

/// Who the front belongs to, for server info and descriptions.
#[derive(Debug, Clone)]
pub struct FrontInfo {
    pub asn: Asn,
    /// The node's peer id, as operators know it.
    pub node: String,
}

/// Why the front could not get an answer from the node.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FrontError {
    #[error("the node is not running (its request channel closed)")]
    NodeGone,
    #[error("the node dropped the request without an answer")]
    NoAnswer,
}

/// The node's end of a [`FrontLink`].
#[derive(Debug)]
pub struct FrontEnd {
    pub requests: mpsc::Receiver<FrontRequest>,
    pub tables: watch::Sender<Arc<ToolTable>>,
}

/// The front's handle on the node. Cheap to clone.
#[derive(Debug, Clone)]
pub struct FrontLink {
    tools: watch::Receiver<Arc<ToolTable>>,
    requests: mpsc::Sender<FrontRequest>,
    next_id: Arc<AtomicU64>,
    info: Arc<FrontInfo>,
}

impl FrontLink {
    /// A link and the node's end of it; `capacity` bounds queued requests.
    pub fn channel(info: FrontInfo, capacity: usize) -> (FrontLink, FrontEnd) {
        let (tx, rx) = mpsc::channel(capacity.max(1));
        let (ttx, trx) = watch::channel(Arc::new(ToolTable::default()));
        (
            FrontLink {
                tools: trx,
                requests: tx,
                next_id: Arc::new(AtomicU64::new(1)),
                info: Arc::new(info),
            },
            FrontEnd {
                requests: rx,
                tables: ttx,
            },
        )
    }

    pub fn info(&self) -> &FrontInfo {
        &self.info
    }

    /// The latest table.
    pub fn table(&self) -> Arc<ToolTable> {
        self.tools.borrow().clone()
    }

    /// Resolves when the node publishes a new table (`Err`: node gone).
    pub async fn changed(&mut self) -> Result<(), FrontError> {
        self.tools.changed().await.map_err(|_| FrontError::NodeGone)
    }

    /// Routes a call and waits for its end. Progress goes to `progress`;
    /// cancelling `cancel` sends a cancellation along the path and returns
    /// a `Cancelled` error at once.
    pub async fn call(
        &self,
        spec: CallSpec,
        progress: Option<mpsc::Sender<ProgressInfo>>,
        cancel: &CancellationToken,
    ) -> Result<CallReturn, FrontError> {
        self.call_with_side(spec, progress, None, cancel).await
    }

    /// [`Self::call`], with the agent's notifications and requests for the
    /// client going to `side`.
    pub async fn call_with_side(
        &self,
        spec: CallSpec,
        progress: Option<mpsc::Sender<ProgressInfo>>,
        side: Option<mpsc::Sender<FrontSide>>,
        cancel: &CancellationToken,
    ) -> Result<CallReturn, FrontError> {
        self.call_traced(spec, None, progress, side, cancel).await
    }

    /// [`FrontLink::call_with_side`] in the client's trace.
    pub async fn call_traced(
        &self,
        spec: CallSpec,
        trace: Option<TraceContext>,
        progress: Option<mpsc::Sender<ProgressInfo>>,
        side: Option<mpsc::Sender<FrontSide>>,
        cancel: &CancellationToken,
    ) -> Result<CallReturn, FrontError> {
        let id = FrontId(self.next_id.fetch_add(1, Ordering::Relaxed));
        let (tx, rx) = oneshot::channel();
        let req = FrontCallRequest {
            id,
            spec,
            progress,
            side,
            trace,
            reply: tx,
        };
        tokio::select! {
            r = self.requests.send(FrontRequest::Call(req)) => r.map_err(|_| FrontError::NodeGone)?,
            _ = cancel.cancelled() => return Ok(cancelled_return("before it was sent")),
        }
        tokio::select! {
            r = rx => r.map_err(|_| FrontError::NoAnswer),
            _ = cancel.cancelled() => {
                // Best effort: the node may be busy, and then the call's
                // deadline ends it anyway.
                let _ = self.requests.try_send(FrontRequest::Cancel {
                    id,
                    reason: Some("cancelled by the MCP client".into()),
                });
                Ok(cancelled_return("by the MCP client"))
            }
        }
    }

    /// The client's answer to request `ask` of call `id`.
    pub async fn reply(
        &self,
        id: FrontId,
        ask: u32,
        outcome: CallOutcome,
    ) -> Result<(), FrontError> {
        self.requests
            .send(FrontRequest::Reply { id, ask, outcome })
            .await
            .map_err(|_| FrontError::NodeGone)
    }

    pub async fn find_agents(
        &self,
        query: String,
        view: Arc<ViewFilter>,
    ) -> Result<Json, FrontError> {
        let (tx, rx) = oneshot::channel();
        self.requests
            .send(FrontRequest::FindAgents {
                query,
                view,
                reply: tx,
            })
            .await
            .map_err(|_| FrontError::NodeGone)?;
        rx.await.map_err(|_| FrontError::NoAnswer)
    }

    pub async fn list_agents(&self, view: Arc<ViewFilter>) -> Result<Json, FrontError> {
        let (tx, rx) = oneshot::channel();
        self.requests
            .send(FrontRequest::ListAgents { view, reply: tx })
            .await
            .map_err(|_| FrontError::NodeGone)?;
        rx.await.map_err(|_| FrontError::NoAnswer)
    }
}

fn cancelled_return(when: &str) -> CallReturn {
    CallReturn {
        sealed: None,
        seal: None,
        sent_back: 0,
        outcome: CallOutcome::err(CallErrorKind::Cancelled, format!("cancelled {when}")),
        trace: Vec::new(),
    }
}

/// Sessions that want `notifications/tools/list_changed`: peers that
/// initialised (2025-11-25) get them unsolicited, 2026-07-28 clients on
/// their `subscriptions/listen` streams.
#[derive(Default)]
struct Listeners {
    peers: Mutex<Vec<Peer<RoleServer>>>,
    sinks: Mutex<Vec<SubscriptionSink>>,
}

/// The rmcp server handler of the front. One per session (HTTP) or
/// process (stdio); all share one link and one set of listeners.
#[derive(Clone)]
pub struct FrontServer {
    link: FrontLink,
    listeners: Arc<Listeners>,
    default_timeout: Option<Duration>,
    /// The session's `logging/setLevel` (one per session: see
    /// [`FrontServer::for_session`]).
    #[allow(deprecated)]
    log_level: Arc<Mutex<Option<LoggingLevel>>>,
    /// The session's resource subscriptions (one set per session).
    subs: Arc<items::SessionSubs>,
    /// What this endpoint offers.
    view: Arc<View>,
    /// The view's filter, as sent with `find_agents` and `list_agents`.
    filter: Arc<ViewFilter>,
}

impl FrontServer {
    /// A handler, and the task that tells sessions about table changes
    /// (it ends when the node's end of the link goes away).
    pub fn new(link: FrontLink) -> FrontServer {
        Self::for_view(link, View::everything(FrontMode::Full, &[]))
    }

    /// A handler for one endpoint's view (see [`FrontServer::new`]); its
    /// sessions hear `list_changed` only when what the view lists changed.
    pub fn for_view(link: FrontLink, view: View) -> FrontServer {
        let listeners = Arc::new(Listeners::default());
        let view = Arc::new(view);
        let server = FrontServer {
            link: link.clone(),
            listeners: listeners.clone(),
            default_timeout: None,
            log_level: Arc::new(Mutex::new(None)),
            subs: Arc::default(),
            filter: Arc::new(view.filter.clone()),
            view: view.clone(),
        };
        tokio::spawn(notify_changes(link, listeners, view));
        server
    }

    /// The endpoint's view.
    pub fn view(&self) -> &View {
        &self.view
    }

    /// The `tools` of a `find_agents` answer: the view's tools matching
    /// `query` (see [`View::search`]) as the client would list them (front
    /// name, description, input schema) with their route prefix, and
    /// whether more matched than [`view::FIND_TOOLS_LIMIT`].
    pub fn found_tools(&self, query: &str) -> (Vec<Json>, bool) {
        let table = self.link.table();
        let (found, more) = self.view.search(&table, query);
        let tools = found
            .into_iter()
            .map(|t| {
                let listed = self.routed_tool(t);
                json!({
                    "name": t.name,
                    "description": listed.description,
                    "inputSchema": listed.input_schema,
                    "prefix": t.routed.prefix.as_str(),
                })
            })
            .collect();
        (tools, more)
    }

    /// What `tools/list` answers: the meta tools, then the view's routed
    /// tools (full mode) or its pinned ones (discovery mode).
    pub fn listed_tools(&self) -> Vec<Tool> {
        let table = self.link.table();
        let mut tools = self.meta_tools();
        tools.extend(self.view.listed(&table).map(|t| self.routed_tool(t)));
        tools
    }

    /// The handler for a new session: shares the link and listeners, has
    /// its own log level.
    pub fn for_session(&self) -> FrontServer {
        FrontServer {
            log_level: Arc::new(Mutex::new(None)),
            subs: Arc::default(),
            ..self.clone()
        }
    }

    /// The severity from which this client wants log messages: on a
    /// 2026-07-28 request what its `_meta` asks (none if it asks none); on
    /// a 2025-11-25 session the session's `logging/setLevel`, every level
    /// until it sets one.
    #[allow(deprecated)]
    fn wanted_log_level(&self, ctx: &RequestContext<RoleServer>) -> Option<u8> {
        if ctx.protocol_version().is_some_and(|v| !v.has_initialize()) {
            return ctx.meta.log_level().map(crate::mcp::log_level::severity);
        }
        let set = *self
            .log_level
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        Some(set.map_or(0, crate::mcp::log_level::severity))
    }

    /// Deadline of calls that give none (the node's default otherwise).
    pub fn with_default_timeout(mut self, d: Option<Duration>) -> Self {
        self.default_timeout = d;
        self
    }

    fn meta_tools(&self) -> Vec<Tool> {
        let obj = |v: Json| Arc::new(v.as_object().cloned().unwrap_or_default());
        let ro = ToolAnnotations::new()
            .read_only(true)
            .idempotent(true)
            .destructive(false)
            .open_world(false);
        vec![
            Tool::new(
                "find_agents",
                "Finds routes by capability prefix (`utility/time`, `coding/*`) or capability tag, and tools by words of their name or description. Returns each matching route with every path this node knows (AS path, MED (the origin's health metric), local preference, communities, and why the best path won over the others) and the matching tools (at most 50: front name, description, input schema), which tools/call takes by name.",
                obj(json!({
                    "type": "object",
                    "properties": {"query": {"type": "string", "description": "A capability prefix, a capability tag, or words to look for in tool names and descriptions", "maxLength": 256}},
                    "required": ["query"]
                })),
            )
            .with_annotations(ro.clone()),
            Tool::new(
                "call_capability",
                "Calls a tool by capability name rather than by tool: the node picks the route by longest-prefix match and the decision process (or balances across equal paths with `balance`).",
                obj(json!({
                    "type": "object",
                    "properties": {
                        "capability": {"type": "string", "description": "A capability prefix, e.g. utility/time/get_current_time"},
                        "tool": {"type": "string", "description": "Optional tool name appended to the capability"},
                        "arguments": {"type": "object"},
                        "balance": {"type": "boolean", "description": "Spread calls over equally good paths"},
                        "capabilities": {"type": "array", "items": {"type": "string", "maxLength": 256}, "maxItems": 64, "description": "Capability tags wanted: where this node balances the prefix by capability, the paths whose routes carry the most of them are used first"}
                    },
                    "required": ["capability"]
                })),
            ),
            Tool::new(
                "list_agents",
                "Lists the agents this node hosts (with their state) and the agents its routes lead to (origin AS, tools, capabilities).",
                obj(json!({"type": "object", "properties": {}})),
            )
            .with_annotations(ro.clone()),
            Tool::new(
                "describe_agent",
                "Describes one agent: its tools with their full descriptors and routes.",
                obj(json!({
                    "type": "object",
                    "properties": {
                        "agent": {"type": "string"},
                        "asn": {"type": "integer", "description": "Origin AS, when several ASes host an agent of that name"}
                    },
                    "required": ["agent"]
                })),
            )
            .with_annotations(ro),
            Tool::new(
                "call_agent",
                "Calls a tool of an agent by agent id and tool name.",
                obj(json!({
                    "type": "object",
                    "properties": {
                        "agent": {"type": "string"},
                        "tool": {"type": "string"},
                        "arguments": {"type": "object"},
                        "asn": {"type": "integer"}
                    },
                    "required": ["agent", "tool"]
                })),
            ),
        ]
    }

    fn routed_tool(&self, t: &FrontTool) -> Tool {
        let r = &t.routed;
        let mut tool = match r.descriptor.as_ref().map(|d| d.to_rmcp()) {
            Some(Ok(tool)) => tool,
            Some(Err(e)) => {
                tracing::warn!(tool = %r.tool, error = %e, "descriptor does not fit the MCP tool shape");
                placeholder_tool(&r.tool)
            }
            None => placeholder_tool(&r.tool),
        };
        tool.name = t.name.clone().into();
        let mut desc = tool
            .description
            .as_deref()
            .map(str::to_string)
            .unwrap_or_default();
        if let Some(note) = &r.descriptor_note {
            if !desc.is_empty() {
                desc.push_str("\n\n");
            }
            desc.push_str(note);
        }
        if !desc.is_empty() {
            desc.push_str("\n\n");
        }
        desc.push_str(&r.provenance());
        tool.description = Some(desc.into());
        tool
    }

    async fn call_routed(
        &self,
        target: Prefix,
        tool: Option<String>,
        arguments: Json,
        idempotent: bool,
        (balance, capabilities): (bool, Vec<String>),
        ctx: &RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, ErrorData> {
        let token = ctx.meta.get_progress_token();
        let (ptx, relay) = match token {
            Some(token) => {
                let (tx, rx) = mpsc::channel(PROGRESS_BUFFER);
                let peer = ctx.peer.clone();
                (
                    Some(tx),
                    Some(tokio::spawn(relay_progress(rx, peer, token))),
                )
            }
            None => (None, None),
        };
        let spec = CallSpec {
            target,
            tool,
            op: CallOp::Tool,
            arguments,
            idempotent,
            balance,
            capabilities,
            timeout: self.default_timeout,
            log_level: None,
        };
        let r = self.routed(spec, ptx, ctx).await;
        if let Some(relay) = relay {
            // The sender is gone with the call; the relay drains and ends.
            let _ = relay.await;
        }
        match r {
            Ok(ret) => to_mcp(ret),
            Err(e) => Err(ErrorData::internal_error(e.to_string(), None)),
        }
    }

    /// Routes a call with the side channel relayed to this session's client.
    pub(crate) async fn routed(
        &self,
        mut spec: CallSpec,
        progress: Option<mpsc::Sender<ProgressInfo>>,
        ctx: &RequestContext<RoleServer>,
    ) -> Result<CallReturn, FrontError> {
        spec.log_level = self.wanted_log_level(ctx);
        let (stx, srx) = mpsc::channel(side::SIDE_BUFFER);
        let relay = side::relay(
            srx,
            ctx.peer.clone(),
            self.link.clone(),
            self.log_level.clone(),
        );
        let trace = client_trace(ctx);
        let call = self
            .link
            .call_traced(spec, trace, progress, Some(stx), &ctx.ct);
        // In this task, no spawn per call. The node drops its sender with
        // the call, so the relay ends after it, and what was queued goes to
        // the client before the result.
        let (r, ()) = tokio::join!(call, relay);
        r
    }

    fn find_routed<'a>(
        &self,
        table: &'a ToolTable,
        agent: &str,
        tool: Option<&str>,
        asn: Option<u32>,
    ) -> Result<Vec<&'a FrontTool>, ErrorData> {
        let hits: Vec<&FrontTool> = self
            .view
            .tools(table)
            .filter(|t| t.routed.agent.as_str() == agent)
            .filter(|t| asn.is_none_or(|a| t.routed.origin_asn.0 == a))
            .filter(|t| tool.is_none_or(|n| t.routed.tool == n))
            .collect();
        if hits.is_empty() {
            return Err(ErrorData::invalid_params(
                format!(
                    "no route leads to agent {agent:?}{}{}",
                    tool.map(|t| format!(" with tool {t:?}"))
                        .unwrap_or_default(),
                    asn.map(|a| format!(" in AS{a}")).unwrap_or_default()
                ),
                None,
            ));
        }
        let mut ases: Vec<u32> = hits.iter().map(|t| t.routed.origin_asn.0).collect();
        ases.sort_unstable();
        ases.dedup();
        if ases.len() > 1 {
            return Err(ErrorData::invalid_params(
                format!("agent {agent:?} exists in several ASes ({ases:?}); pass `asn`"),
                None,
            ));
        }
        Ok(hits)
    }
}

/// The client's W3C trace context: `params._meta.traceparent` (the MCP
/// community's OpenTelemetry convention), else the HTTP request's
/// `traceparent` header. One that is not strictly valid is ignored (the
/// call starts a new trace; it never fails for it).
fn client_trace(ctx: &RequestContext<RoleServer>) -> Option<TraceContext> {
    let from_meta = ctx
        .meta
        .get("traceparent")
        .and_then(Json::as_str)
        .and_then(TraceContext::parse_traceparent);
    from_meta.or_else(|| {
        ctx.extensions
            .get::<::http::request::Parts>()?
            .headers
            .get("traceparent")?
            .to_str()
            .ok()
            .and_then(TraceContext::parse_traceparent)
    })
}

fn placeholder_tool(name: &str) -> Tool {
    Tool::new(
        name.to_string(),
        String::new(),
        Arc::new(
            json!({"type": "object"})
                .as_object()
                .cloned()
                .unwrap_or_default(),
        ),
    )
}

async fn relay_progress(
    mut rx: mpsc::Receiver<ProgressInfo>,
    peer: Peer<RoleServer>,
    token: ProgressToken,
) {
    while let Some(p) = rx.recv().await {
        let mut n = ProgressNotificationParam::new(token.clone(), p.progress);
        if let Some(t) = p.total {
            n = n.with_total(t);
        }
        if let Some(m) = p.message {
            n = n.with_message(m);
        }
        if peer.notify_progress(n).await.is_err() {
            // The client went away; its cancellation ends the call.
            break;
        }
    }
}

/// Turns a call's end into the MCP answer.
pub fn to_mcp(ret: CallReturn) -> Result<CallToolResponse, ErrorData> {
    match ret.outcome {
        CallOutcome::Ok(mut v) => {
            // The origin's result is an MCP tool result as JSON: read into
            // the SDK's type once (no detour through our own result type).
            let Json::Object(m) = &mut v else {
                return Err(ErrorData::internal_error(
                    "the origin's result is not a tool result (not an object)",
                    None,
                ));
            };
            // Always explicit, so the SDK sees a result even with no content.
            m.entry("isError").or_insert(Json::Bool(false));
            if !ret.trace.is_empty() {
                // Where the call went and what each hop cost, caller first:
                // clients may show it; the agent's own `_meta` stays.
                let hops: Vec<Json> = crate::core::call::hop_costs(&ret.trace)
                    .iter()
                    .map(|(h, us)| {
                        json!({"asn": h.asn.0, "node": h.node.short(), "hopUs": us, "elapsedUs": h.elapsed_us})
                    })
                    .collect();
                let meta = m
                    .entry("_meta")
                    .or_insert_with(|| Json::Object(Default::default()));
                if !meta.is_object() {
                    *meta = Json::Object(Default::default());
                }
                if let Json::Object(meta) = meta {
                    meta.insert(TRACE_META.into(), Json::Array(hops));
                }
            }
            let mut r: CallToolResult = serde_json::from_value(v).map_err(|e| {
                ErrorData::internal_error(
                    format!("the origin's result is not a tool result: {e}"),
                    None,
                )
            })?;
            // As the SDK's constructors do: 2026-07-28 clients need it, and
            // the server handler strips it for older ones.
            r.result_type = Some(rmcp::model::ResultType::COMPLETE);
            Ok(r.into())
        }
        CallOutcome::Err(e) => Err(error_of(e, &ret.trace)),
    }
}

/// A call's failure as the JSON-RPC error the client gets: the agent's own
/// error as it sent it, or agent-bgp's with where and why.
pub(crate) fn error_of(
    e: crate::core::call::CallError,
    trace: &[crate::core::call::HopTrace],
) -> ErrorData {
    let data = if e.kind == CallErrorKind::Upstream {
        e.data
    } else {
        let path: Vec<String> = trace.iter().rev().map(|h| h.asn.to_string()).collect();
        Some(json!({
            "kind": e.kind.name(),
            "mayHaveRun": e.kind.may_have_run(),
            "path": path,
        }))
    };
    let code = i32::try_from(e.code).unwrap_or(ErrorCode::INTERNAL_ERROR.0);
    ErrorData::new(ErrorCode(code), e.message, data)
}

fn text_json(v: Json) -> CallToolResponse {
    let text = serde_json::to_string_pretty(&v).unwrap_or_default();
    let mut r = CallToolResult::success(vec![ContentBlock::text(text)]);
    r.structured_content = Some(v);
    r.into()
}

fn arg_str<'a>(args: &'a JsonObject, key: &str) -> Result<&'a str, ErrorData> {
    args.get(key)
        .and_then(Json::as_str)
        .ok_or_else(|| ErrorData::invalid_params(format!("`{key}` must be a string"), None))
}

fn arg_asn(args: &JsonObject) -> Result<Option<u32>, ErrorData> {
    match args.get("asn") {
        None | Some(Json::Null) => Ok(None),
        Some(v) => v
            .as_u64()
            .and_then(|n| u32::try_from(n).ok())
            .map(Some)
            .ok_or_else(|| ErrorData::invalid_params("`asn` must be an AS number", None)),
    }
}

/// An optional list of capability tags: at most 64, each 1 to 256 bytes.
fn arg_tags(args: &JsonObject, key: &str) -> Result<Vec<String>, ErrorData> {
    let bad = || {
        ErrorData::invalid_params(
            format!("`{key}` must be a list of at most 64 tags of 1 to 256 bytes"),
            None,
        )
    };
    match args.get(key) {
        None | Some(Json::Null) => Ok(Vec::new()),
        Some(Json::Array(v)) if v.len() <= 64 => v
            .iter()
            .map(|t| match t.as_str() {
                Some(s) if !s.is_empty() && s.len() <= 256 => Ok(s.to_string()),
                _ => Err(bad()),
            })
            .collect(),
        Some(_) => Err(bad()),
    }
}

fn arg_object(args: &JsonObject, key: &str) -> Result<Json, ErrorData> {
    match args.get(key) {
        None | Some(Json::Null) => Ok(Json::Object(Default::default())),
        Some(v @ Json::Object(_)) => Ok(v.clone()),
        Some(_) => Err(ErrorData::invalid_params(
            format!("`{key}` must be an object"),
            None,
        )),
    }
}

/// Which lists changed between two tables.
#[derive(Clone, Copy)]
struct Changed {
    tools: bool,
    prompts: bool,
    resources: bool,
}

async fn notify_changes(mut link: FrontLink, listeners: Arc<Listeners>, view: Arc<View>) {
    let mut prev = link.table();
    while link.changed().await.is_ok() {
        let next = link.table();
        let (tools, prompts, resources) = view.changed(&prev, &next);
        let c = Changed {
            tools,
            prompts,
            resources,
        };
        prev = next;
        if !(c.tools || c.prompts || c.resources) {
            continue;
        }
        let peers: Vec<Peer<RoleServer>> = {
            let mut p = listeners
                .peers
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            p.retain(|p| !p.is_transport_closed());
            p.clone()
        };
        for p in peers {
            let r = async {
                if c.tools {
                    p.notify_tool_list_changed().await?;
                }
                if c.prompts {
                    p.notify_prompt_list_changed().await?;
                }
                if c.resources {
                    p.notify_resource_list_changed().await?;
                }
                Ok::<(), rmcp::service::ServiceError>(())
            };
            if let Err(e) = r.await {
                tracing::debug!(error = %e, "list_changed not delivered");
            }
        }
        let sinks: Vec<SubscriptionSink> = listeners
            .sinks
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone();
        let mut gone = Vec::new();
        for (i, s) in sinks.iter().enumerate() {
            let ok = (!c.tools || s.notify_tool_list_changed().await.is_ok())
                && (!c.prompts || s.notify_prompt_list_changed().await.is_ok())
                && (!c.resources || s.notify_resource_list_changed().await.is_ok());
            if !ok {
                gone.push(i);
            }
        }
        if !gone.is_empty() {
            let mut s = listeners
                .sinks
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            // Only this task removes sinks, and `listen` only appends, so
            // the indices of the snapshot are still valid.
            for i in gone.into_iter().rev() {
                if i < s.len() {
                    s.remove(i);
                }
            }
        }
    }
}

impl ServerHandler for FrontServer {
    fn get_info(&self) -> ServerConfig {
        let info = self.link.info();
        // Tools, prompts and resources are routed; completions go to the
        // prompt's or template's agent; log messages come from agents
        // during calls, filtered by the session's level.
        let caps: ServerCapabilities = serde_json::from_value(json!({
            "tools": {"listChanged": true},
            "prompts": {"listChanged": true},
            "resources": {"listChanged": true, "subscribe": true},
            "completions": {},
            "logging": {},
        }))
        .unwrap_or_else(|_| {
            ServerCapabilities::builder()
                .enable_tools()
                .enable_tool_list_changed()
                .build()
        });
        let mut text = format!(
            "agent-bgp node {} ({}). Tools here are routed from agents across the federation; each description says where the tool lives. find_agents searches routes by capability; call_capability calls by capability name.",
            info.node, info.asn
        );
        if let Some(v) = &self.view.name {
            text.push_str(&format!(
                " This endpoint is view {v:?}: it offers only the routes its filter admits."
            ));
        }
        if self.view.mode == FrontMode::Discovery {
            text.push_str(&format!(
                " Discovery mode: tools/list shows the meta tools and pinned tools only; {} more tools are here. find_agents finds them by capability or by words of their name or description, and tools/call takes any of them by name.",
                self.view.tools(&self.link.table()).count()
            ));
        }
        ServerConfig::new(caps)
            .with_server_info(Implementation::new("agent-bgp", env!("CARGO_PKG_VERSION")))
            .with_instructions(text)
    }

    async fn on_initialized(&self, context: NotificationContext<RoleServer>) {
        let mut p = self
            .listeners
            .peers
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        p.retain(|p| !p.is_transport_closed());
        p.push(context.peer);
    }

    async fn list_tools(
        &self,
        _request: Option<PaginatedRequestParams>,
        _context: RequestContext<RoleServer>,
    ) -> Result<ListToolsResult, ErrorData> {
        Ok(ListToolsResult::with_all_items(self.listed_tools()))
    }

    async fn call_tool(
        &self,
        request: CallToolRequestParams,
        ctx: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, ErrorData> {
        let args = request.arguments.clone().unwrap_or_default();
        let table = self.link.table();
        match request.name.as_ref() {
            "find_agents" => {
                let q = arg_str(&args, "query")?.to_string();
                if q.len() > view::MAX_QUERY_LEN {
                    return Err(ErrorData::invalid_params(
                        format!("`query` is longer than {} bytes", view::MAX_QUERY_LEN),
                        None,
                    ));
                }
                let mut v = self
                    .link
                    .find_agents(q.clone(), self.filter.clone())
                    .await
                    .map_err(|e| ErrorData::internal_error(e.to_string(), None))?;
                let (tools, more) = self.found_tools(&q);
                if let Json::Object(m) = &mut v {
                    m.insert("tools".into(), Json::Array(tools));
                    m.insert("toolsTruncated".into(), Json::Bool(more));
                }
                Ok(text_json(v))
            }
            "list_agents" => {
                let v = self
                    .link
                    .list_agents(self.filter.clone())
                    .await
                    .map_err(|e| ErrorData::internal_error(e.to_string(), None))?;
                Ok(text_json(v))
            }
            "describe_agent" => {
                let agent = arg_str(&args, "agent")?;
                let asn = arg_asn(&args)?;
                let hits = self.find_routed(&table, agent, None, asn)?;
                let tools: Vec<Json> = hits
                    .iter()
                    .map(|t| {
                        json!({
                            "frontName": t.name,
                            "route": t.routed,
                            "descriptor": t.routed.descriptor.as_deref(),
                        })
                    })
                    .collect();
                Ok(text_json(json!({
                    "agent": agent,
                    "asn": hits.first().map(|t| t.routed.origin_asn.0),
                    "tools": tools,
                })))
            }
            "call_agent" => {
                let agent = arg_str(&args, "agent")?;
                let tool = arg_str(&args, "tool")?;
                let asn = arg_asn(&args)?;
                let arguments = arg_object(&args, "arguments")?;
                let hits = self.find_routed(&table, agent, Some(tool), asn)?;
                let t = hits[0];
                self.call_routed(
                    t.routed.prefix.clone(),
                    Some(t.routed.tool.clone()),
                    arguments,
                    t.routed.idempotent(),
                    (false, Vec::new()),
                    &ctx,
                )
                .await
            }
            "call_capability" => {
                let cap = arg_str(&args, "capability")?;
                let mut target = Prefix::new(cap).map_err(|e| {
                    ErrorData::invalid_params(format!("`capability` {cap:?}: {e}"), None)
                })?;
                let tool = match args.get("tool").and_then(Json::as_str) {
                    Some(t) => {
                        let seg = tool_segment(t).map_err(|e| {
                            ErrorData::invalid_params(format!("`tool` {t:?}: {e}"), None)
                        })?;
                        let base = target.base();
                        let text = if base.is_empty() {
                            seg.to_string()
                        } else {
                            format!("{base}/{seg}")
                        };
                        target = Prefix::new(&text).map_err(|e| {
                            ErrorData::invalid_params(format!("capability and tool: {e}"), None)
                        })?;
                        Some(t.to_string())
                    }
                    None => None,
                };
                let balance = args.get("balance").and_then(Json::as_bool).unwrap_or(false);
                let wants = arg_tags(&args, "capabilities")?;
                let arguments = arg_object(&args, "arguments")?;
                let known = self.view.tool_by_prefix(&table, &target);
                if known.is_none() && !self.view.filter.is_all() {
                    // The node would route it by longest-prefix match, maybe
                    // out of the view: a filtering view only calls its own.
                    return Err(ErrorData::invalid_params(
                        format!(
                            "no tool of this endpoint ({}) is routed under {target} (find_agents lists them)",
                            self.view.label()
                        ),
                        None,
                    ));
                }
                let tool = tool.or_else(|| known.map(|t| t.routed.tool.clone()));
                let idempotent = known.is_some_and(|t| t.routed.idempotent());
                let how = (balance, wants);
                self.call_routed(target, tool, arguments, idempotent, how, &ctx)
                    .await
            }
            name => {
                let Some(t) = self.view.tool(&table, name) else {
                    let here = match &self.view.name {
                        Some(v) => format!(" in view {v:?}"),
                        None => String::new(),
                    };
                    return Err(ErrorData::invalid_params(
                        format!(
                            "no tool {name:?} is routed to this node{here} (list the tools again: routes change)"
                        ),
                        None,
                    ));
                };
                let arguments = Json::Object(args);
                self.call_routed(
                    t.routed.prefix.clone(),
                    Some(t.routed.tool.clone()),
                    arguments,
                    t.routed.idempotent(),
                    (false, Vec::new()),
                    &ctx,
                )
                .await
            }
        }
    }

    async fn list_prompts(
        &self,
        _request: Option<PaginatedRequestParams>,
        _context: RequestContext<RoleServer>,
    ) -> Result<rmcp::model::ListPromptsResult, ErrorData> {
        Ok(self.prompts())
    }

    async fn get_prompt(
        &self,
        request: rmcp::model::GetPromptRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<rmcp::model::GetPromptResponse, ErrorData> {
        self.get_routed_prompt(request, &context)
            .await
            .map(Into::into)
    }

    async fn list_resources(
        &self,
        _request: Option<PaginatedRequestParams>,
        _context: RequestContext<RoleServer>,
    ) -> Result<rmcp::model::ListResourcesResult, ErrorData> {
        Ok(self.resources())
    }

    async fn list_resource_templates(
        &self,
        _request: Option<PaginatedRequestParams>,
        _context: RequestContext<RoleServer>,
    ) -> Result<rmcp::model::ListResourceTemplatesResult, ErrorData> {
        Ok(self.templates())
    }

    async fn read_resource(
        &self,
        request: rmcp::model::ReadResourceRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<rmcp::model::ReadResourceResponse, ErrorData> {
        self.read_routed(request, &context).await.map(Into::into)
    }

    async fn subscribe(
        &self,
        request: rmcp::model::SubscribeRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<(), ErrorData> {
        self.subscribe_routed(request, &context).await
    }

    async fn unsubscribe(
        &self,
        request: rmcp::model::UnsubscribeRequestParams,
        _context: RequestContext<RoleServer>,
    ) -> Result<(), ErrorData> {
        self.unsubscribe_routed(request)
    }

    async fn complete(
        &self,
        request: rmcp::model::CompleteRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<rmcp::model::CompleteResult, ErrorData> {
        self.complete_routed(request, &context).await
    }

    #[allow(deprecated)]
    async fn set_level(
        &self,
        request: rmcp::model::SetLevelRequestParams,
        _context: RequestContext<RoleServer>,
    ) -> Result<(), ErrorData> {
        *self
            .log_level
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(request.level);
        Ok(())
    }

    fn accepted_subscription_filter(
        &self,
        _requested: &SubscriptionFilter,
    ) -> Option<SubscriptionFilter> {
        Some(
            SubscriptionFilter::builder()
                .tools_list_changed()
                .prompts_list_changed()
                .resources_list_changed()
                .build(),
        )
    }

    async fn listen(&self, context: SubscriptionContext) -> Result<(), ErrorData> {
        self.listeners
            .sinks
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .push(context.sink().clone());
        context.cancelled().await;
        Ok(())
    }
}
