//! The node's MCP side: hosted agents, the MCP front and tunnelled calls,
//! wired into the node task.
//!
//! ```text
//!  upstream AgentEvents ──┐
//!  front FrontRequests  ──┼──> McpPlane (forwarder, tool table) ──> engine events (signed originations)
//!  local run events     ──┤                                    └──> call messages ──> Net (/agent-bgp/call/1)
//!  Net call events      ──┘
//!  Loc-RIB changes (after every engine step) ──> plane rebuilds the front's tool table
//! ```
//!
//! Everything runs on the node task, like the engine: the plane needs the
//! engine's routing table for every call decision, and a single owner
//! needs no locks. The plane is sans-IO; this module owns what it asks for:
//! the front's answer channels, the tasks that run tools on local agents
//! (each with a cancellation token, reporting over a bounded channel), and
//! the published tool table. Slow work (a tool run, the HTTP front) runs in
//! tasks that talk to the node over bounded channels.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;

use tokio::sync::{mpsc, oneshot, watch};
use tokio_util::sync::CancellationToken;

use crate::admin::token::{AdminToken, TokenError};
use crate::config::LoadedConfig;
use crate::core::call::{
    CallError, CallErrorKind, CallKind, CallMessage, CallOutcome, CallReturn, ProgressInfo,
};
use crate::core::engine::Event;
use crate::core::forward::{CallAction, CallEvent, ForwardConfig, Forwarder, FrontId, LocalId};
use crate::core::ids::{AgentId, NodeId};
use crate::core::route::Route;
use crate::mcp::config::AgentConfig;
use crate::mcp::config::BearerToken;
use crate::mcp::front::FrontSide;
use crate::mcp::front::http::{self, HttpFront};
use crate::mcp::front::table::ToolTable;
use crate::mcp::front::view::View;
use crate::mcp::front::{FrontCallRequest, FrontInfo, FrontLink, FrontRequest, FrontServer};
use crate::mcp::plane::{
    CallMetrics, FrontCall, FrontReply, HostedAgent, LocalEvent, LocalRun, McpPlane, PlaneConfig,
    PlaneOut,
};
use crate::mcp::upstream::{
    AgentEvent, AgentState, PingOutcome, Progress, SideEvent, ToolCall, UpstreamError,
    UpstreamHandle, UpstreamOptions,
};
use crate::net::NetEvent;
use serde_json::Value as Json;

use super::calls::{NodeCallSigner, TrustVerifier};
use super::security::Security;
use super::{Node, NodeError};

/// Front requests waiting for the node task.
const FRONT_QUEUE: usize = 1024;

/// Events of local runs waiting for the node task.
pub const LOCAL_QUEUE: usize = 1024;

/// Where the answer of a front call goes.
struct FrontWaiter {
    reply: oneshot::Sender<CallReturn>,
    progress: Option<mpsc::Sender<ProgressInfo>>,
    side: Option<mpsc::Sender<FrontSide>>,
}

/// What a local run's task reports to the node task: a plane event, or a
/// request of the agent for the caller's client with where its answer goes
/// (the node numbers it and keeps the sender: the plane is sans-IO).
pub(super) enum RunReport {
    Event(LocalEvent),
    Ask {
        id: LocalId,
        method: String,
        params: Json,
        reply: oneshot::Sender<Result<Json, CallError>>,
    },
    /// A health-as-MED probe of a hosted agent ended.
    Probe {
        agent: AgentId,
        outcome: PingOutcome,
    },
}

/// Outstanding requests of one agent run for its caller's client.
pub(super) const MAX_ASKS_PER_RUN: usize = 16;

/// The MCP state the node task owns.
pub(super) struct NodeMcp {
    pub plane: McpPlane,
    pub upstream: UpstreamHandle,
    /// The front reads the tool table from here.
    tables: watch::Sender<Arc<ToolTable>>,
    waits: HashMap<FrontId, FrontWaiter>,
    /// Tool runs on local agents, by the forwarder's id.
    runs: HashMap<LocalId, CancellationToken>,
    /// The agent's requests for callers' clients, waiting for their REPLY:
    /// (run, ask) -> where the answer goes; the next ask number per run.
    asks: HashMap<(LocalId, u32), oneshot::Sender<Result<Json, CallError>>>,
    next_ask: HashMap<LocalId, u32>,
    local_tx: mpsc::Sender<RunReport>,
    pub local_rx: mpsc::Receiver<RunReport>,
    pub agent_rx: mpsc::Receiver<AgentEvent>,
    pub front_rx: mpsc::Receiver<FrontRequest>,
    pub link: FrontLink,
    pub http: Option<HttpFront>,
    pub stop: CancellationToken,
    /// The engine changed the Loc-RIB since the table was last rebuilt.
    pub routes_changed: bool,
    /// Agents added at run time (removable, persisted).
    pub run_time: std::collections::BTreeSet<AgentId>,
    pub bearer: bool,
    /// Peers whose session went down since the last loop turn: their
    /// calls are ended as if the connection closed (see
    /// [`Node::end_calls_of_lost_sessions`]).
    pub sessions_lost: Vec<NodeId>,
}

impl NodeMcp {
    /// Builds the plane and starts the agents of node.toml and the store.
    pub fn start(
        cfg: &LoadedConfig,
        security: &Security,
        node_id: NodeId,
        peer_id: String,
        stored_agents: Vec<(String, String)>,
    ) -> Result<NodeMcp, NodeError> {
        let c = &cfg.config;
        let asn = security.asn();
        let access = c.access_policy(asn)?;
        let fcfg = ForwardConfig::new(node_id, asn)
            .with_ack_hold(c.mcp.answer_hold)
            .with_quotas(c.mcp.call_quotas())
            .with_transit_balancing(c.mcp.balance_transit)
            .with_balance(crate::config::balance::rules(&c.balance))
            .with_max_call_duration(c.mcp.max_call_duration)
            .with_clock_skew(std::time::Duration::from_millis(
                security.trust().clock_skew_ms(),
            ))
            // Calls issued before now cannot have been seen by this run's
            // replay window.
            .with_started(super::clock::Clock::start().now())
            .with_seal(c.mcp.seal)
            .with_seed(rand::random());
        let fwd = Forwarder::new(fcfg, Box::new(TrustVerifier::new(security.trust().clone())))
            .with_answers(Box::new(super::calls::NodeAnswers::new(
                security.shared_identity(),
                security.trust().clone(),
            )))
            .with_payloads(Box::new(super::calls::NodePayloads::new(
                security.shared_identity(),
            )))
            .with_access(access);
        let (upstream, agent_rx) = UpstreamHandle::new(UpstreamOptions::default());
        let (link, end) = FrontLink::channel(FrontInfo { asn, node: peer_id }, FRONT_QUEUE);
        let pcfg = PlaneConfig::new(node_id, asn)
            .with_call_timeout(c.mcp.call_timeout)
            .with_hop_limit(c.mcp.hop_limit)
            .with_caller_communities(c.mcp.caller_communities.clone())
            .with_descriptor_fetch(c.mcp.listen.0.is_some())
            .with_health(c.health.core());
        let mut plane = McpPlane::new(
            pcfg,
            fwd,
            Box::new(NodeCallSigner::new(security.shared_identity())),
        );
        if c.audit.enabled {
            let path = cfg.resolve(&c.audit.file);
            let log = super::audit::AuditLog::start(super::audit::AuditOptions::new(
                &c.audit,
                path.clone(),
            ))
            .map_err(|source| NodeError::StoreDir { path, source })?;
            plane = plane.with_audit(Box::new(log), c.audit.log_arguments);
        }
        let (local_tx, local_rx) = mpsc::channel(LOCAL_QUEUE);
        let configured = c.agent_configs()?;
        let mut run_time = std::collections::BTreeSet::new();
        for a in configured {
            upstream.add_agent(resolve_agent(cfg, a))?;
        }
        for (id, json) in stored_agents {
            match serde_json::from_str::<AgentConfig>(&json) {
                Ok(a) => match upstream.add_agent(resolve_agent(cfg, a)) {
                    Ok(()) => {
                        run_time.insert(AgentId::new(&id));
                    }
                    // node.toml now has an agent of that id: the file wins.
                    Err(e) => tracing::warn!(agent = %id, error = %e, "stored agent not started"),
                },
                Err(e) => {
                    tracing::warn!(agent = %id, error = %e, "stored agent entry no longer valid; skipped")
                }
            }
        }
        Ok(NodeMcp {
            plane,
            upstream,
            tables: end.tables,
            waits: HashMap::new(),
            runs: HashMap::new(),
            asks: HashMap::new(),
            next_ask: HashMap::new(),
            local_tx,
            local_rx,
            agent_rx,
            front_rx: end.requests,
            link,
            http: None,
            stop: CancellationToken::new(),
            routes_changed: true,
            run_time,
            bearer: c.mcp.bearer_token.is_some(),
            sessions_lost: Vec::new(),
        })
    }

    /// Starts the HTTP front if configured.
    pub async fn serve_front(&mut self, cfg: &LoadedConfig) -> Result<(), NodeError> {
        let c = &cfg.config.mcp;
        let Some(addr) = c.listen.0 else {
            return Ok(());
        };
        let server = FrontServer::for_view(
            self.link.clone(),
            View::everything(c.front_mode, &c.front_pinned),
        );
        let access = http::FrontAccess {
            token: c.bearer_token.clone(),
            allowed_hosts: c.allowed_hosts.clone(),
            allowed_origins: c.allowed_origins.clone(),
        };
        let views = self.front_views(cfg)?;
        let front = http::serve_with_views(addr, access, server, views, self.stop.clone()).await?;
        tracing::info!(url = %front.url(), "MCP front listening");
        self.http = Some(front);
        Ok(())
    }

    /// The `[[mcp.views]]` endpoints: each view compiled, with its token
    /// (read from its file, or created there, 0600, at the first start).
    fn front_views(&self, cfg: &LoadedConfig) -> Result<Vec<http::ViewEndpoint>, NodeError> {
        let own = self.link.info().asn;
        let mut out = Vec::with_capacity(cfg.config.mcp.views.len());
        for v in &cfg.config.mcp.views {
            let bad = |message: String| http::FrontHttpError::View {
                view: v.name.clone(),
                message,
            };
            let view = View::compile(v, own).map_err(|p| {
                let all: Vec<String> = p.iter().map(|(k, m)| format!("{k}: {m}")).collect();
                bad(all.join("; "))
            })?;
            let path = cfg.resolve(&v.token_file());
            let (token, created) = AdminToken::load_or_create(&path).map_err(|e| {
                bad(match e {
                    TokenError::File(e) => format!("token file: {e}"),
                    TokenError::Malformed { path } => format!(
                        "token file {path}: must be 16 to 256 printable ASCII characters on one line"
                    ),
                })
            })?;
            if created {
                tracing::info!(view = %v.name, file = %path.display(), "created the token of an MCP front view");
            }
            out.push(http::ViewEndpoint {
                server: FrontServer::for_view(self.link.clone(), view),
                token: BearerToken::new(token.expose()),
            });
        }
        Ok(out)
    }

    pub fn front_addr(&self) -> Option<SocketAddr> {
        self.http.as_ref().map(|h| h.addr)
    }

    pub fn metrics(&self) -> CallMetrics {
        self.plane.metrics()
    }

    pub fn originated(&self) -> Vec<Route> {
        self.plane.originated().cloned().collect()
    }

    /// Stops the front and every agent.
    pub async fn shutdown(&mut self) {
        self.stop.cancel();
        for (_, t) in self.runs.drain() {
            t.cancel();
        }
        self.upstream.shutdown().await;
    }
}

/// An agent's state as operators read it.
pub(super) fn state_text(s: Option<&AgentState>) -> String {
    match s {
        Some(AgentState::Up {
            protocol_version, ..
        }) => format!("up ({protocol_version})"),
        Some(AgentState::Starting) => "starting".into(),
        Some(AgentState::Down { reason, .. }) => format!("down: {reason}"),
        None => "unknown".into(),
    }
}

/// Starts a run on a local agent in a task: its progress, the agent's
/// notifications and requests for the caller, and its end come back over
/// `tx` (progress first, then Done, also when `cancel` fires).
fn start_run(
    upstream: &UpstreamHandle,
    tx: &mpsc::Sender<RunReport>,
    run: LocalRun,
    cancel: CancellationToken,
) {
    let LocalRun {
        id,
        agent,
        op,
        tool,
        arguments,
        timeout,
        progress,
        log_level,
        trace,
    } = run;
    let (stx, mut srx) = mpsc::channel::<SideEvent>(64);
    let mut call = ToolCall::new(agent.clone(), tool)
        .with_op(op)
        .with_log_level(log_level)
        .with_trace(Some(trace))
        .with_arguments(arguments)
        .with_cancel(cancel)
        .with_timeout(timeout)
        .with_side(stx);
    let tx = tx.clone();
    let (ptx, mut prx) = mpsc::channel::<Progress>(64);
    if progress {
        call = call.with_progress(ptx);
    } else {
        drop(ptx);
    }
    // One relay for progress and the side channel, so what the agent sent
    // before its result reaches the caller first, in order.
    let relay = {
        let tx = tx.clone();
        async move {
            let mut progress_open = true;
            let mut side_open = true;
            while progress_open || side_open {
                let report = tokio::select! {
                    p = prx.recv(), if progress_open => match p {
                        Some(p) => RunReport::Event(LocalEvent::Progress {
                            id,
                            info: ProgressInfo {
                                progress: p.progress,
                                total: p.total,
                                message: p.message,
                            },
                        }),
                        None => {
                            progress_open = false;
                            continue;
                        }
                    },
                    s = srx.recv(), if side_open => match s {
                        Some(SideEvent::Notify { method, params }) => {
                            RunReport::Event(LocalEvent::Notify { id, method, params })
                        }
                        Some(SideEvent::Ask { method, params, reply }) => RunReport::Ask {
                            id,
                            method,
                            params,
                            reply,
                        },
                        None => {
                            side_open = false;
                            continue;
                        }
                    },
                };
                if tx.send(report).await.is_err() {
                    break;
                }
            }
        }
    };
    let upstream = upstream.clone();
    tokio::spawn(async move {
        // The relay runs in the call's task (no second spawn per run); the
        // call's end drops its senders, so the relay drains and ends, and
        // what it held goes before the result.
        let (r, ()) = tokio::join!(upstream.request(call), relay);
        let outcome = match r {
            Ok(v) => CallOutcome::Ok(v),
            Err(e) => upstream_outcome(&agent, e),
        };
        let _ = tx
            .send(RunReport::Event(LocalEvent::Done { id, outcome }))
            .await;
    });
}

/// Pings a hosted agent in a task for health as MED (one at a time per
/// agent: the plane asks again only after this one reported), within the
/// agent's `health_timeout`.
fn start_probe(upstream: &UpstreamHandle, tx: &mpsc::Sender<RunReport>, agent: AgentId) {
    let upstream = upstream.clone();
    let tx = tx.clone();
    tokio::spawn(async move {
        let timeout = upstream
            .config(&agent)
            .map_or(std::time::Duration::from_secs(5), |c| c.health_timeout());
        let outcome = upstream.ping(&agent, timeout).await;
        let _ = tx.send(RunReport::Probe { agent, outcome }).await;
    });
}

/// How an upstream failure ends a call.
fn upstream_outcome(agent: &AgentId, e: UpstreamError) -> CallOutcome {
    use crate::core::call::CallError;
    let k = |kind| CallOutcome::Err(CallError::new(kind, format!("agent {agent}: {e}")));
    match &e {
        UpstreamError::Rejected {
            code,
            message,
            data,
            ..
        } => CallOutcome::Err(CallError::upstream(
            i64::from(*code),
            message.clone(),
            data.clone(),
        )),
        UpstreamError::UnknownAgent(_) | UpstreamError::AgentDown { .. } => {
            k(CallErrorKind::AgentDown)
        }
        UpstreamError::Overloaded { .. } => k(CallErrorKind::Overloaded),
        UpstreamError::Timeout { .. } => k(CallErrorKind::Timeout),
        UpstreamError::Cancelled { .. } => k(CallErrorKind::Cancelled),
        UpstreamError::Disconnected { .. }
        | UpstreamError::Transport { .. }
        | UpstreamError::UpstreamCancelled { .. } => k(CallErrorKind::UpstreamLost),
        _ => k(CallErrorKind::Internal),
    }
}

/// A relative `command` or `cwd` is relative to node.toml's directory, like
/// every other path in the file.
pub(super) fn resolve_agent(cfg: &LoadedConfig, a: AgentConfig) -> AgentConfig {
    a.with_base_dir(&cfg.dir)
}

impl Node {
    /// Carries out the plane's output: the front's answers and table, local
    /// runs started or cancelled, call messages to the network, engine
    /// events (originations signed here) through the engine.
    pub(super) async fn carry(&mut self, mut out: PlaneOut) -> Result<(), NodeError> {
        self.carry_mcp(&mut out);
        self.send_calls(std::mem::take(&mut out.net));
        if out.engine.is_empty() {
            // A fetched descriptor changes the front's table too.
            self.after_step();
            return Ok(());
        }
        let now = self.clock.now();
        let mut events: Vec<Event> = Vec::with_capacity(out.engine.len());
        for e in out.engine {
            match e {
                Event::Originate(mut r) => {
                    r.proof = Some(self.security.sign_origin(&r, now));
                    events.push(Event::Originate(r));
                }
                // The end of our origination: its tombstone goes in the
                // same burst (docs/protocol.md, "Tombstones").
                Event::WithdrawLocal(key) => {
                    let tomb = self
                        .engine
                        .local_origin_time(&key)
                        .and_then(|ended| self.security.sign_tombstone(&key.prefix, ended, now));
                    events.push(Event::WithdrawLocal(key));
                    if let Some(t) = tomb {
                        events.push(Event::Tombstone(t));
                    }
                }
                other => events.push(other),
            }
        }
        self.step(events, None).await
    }

    /// The parts of the plane's output that are not the network's or the
    /// engine's: the front's answers and table, local runs.
    fn carry_mcp(&mut self, out: &mut PlaneOut) {
        if let Some(t) = out.table.take() {
            self.mcp.tables.send_replace(t);
        }
        let fronts: Vec<FrontReply> = out.front.drain(..).collect();
        for r in fronts {
            match r {
                FrontReply::Progress { id, info } => {
                    if let Some(w) = self.mcp.waits.get(&id)
                        && let Some(tx) = &w.progress
                    {
                        // Full means the client reads slowly: dropping a
                        // progress step is better than stalling calls.
                        let _ = tx.try_send(info);
                    }
                }
                FrontReply::Notify { id, method, params } => {
                    if let Some(w) = self.mcp.waits.get(&id)
                        && let Some(tx) = &w.side
                    {
                        // Full: the client reads slowly; a log line goes.
                        let _ = tx.try_send(FrontSide::Notify { method, params });
                    }
                }
                FrontReply::Ask {
                    id,
                    ask,
                    method,
                    params,
                } => {
                    let sent = self
                        .mcp
                        .waits
                        .get(&id)
                        .and_then(|w| w.side.as_ref())
                        .map(|tx| {
                            tx.try_send(FrontSide::Ask {
                                id,
                                ask,
                                method,
                                params,
                            })
                        });
                    if !matches!(sent, Some(Ok(()))) {
                        // Nobody to ask: say so at once rather than let the
                        // agent wait for the deadline.
                        let why = CallOutcome::err(
                            CallErrorKind::Upstream,
                            "the calling MCP client cannot be asked (it is not listening for requests)",
                        );
                        let now = self.clock.now_micros();
                        let more = self
                            .mcp
                            .plane
                            .on_front_reply(now, &self.engine, id, ask, why);
                        self.send_calls(more.net);
                        out.replies.extend(more.replies);
                    }
                }
                FrontReply::Done { id, ret } => {
                    if let Some(w) = self.mcp.waits.remove(&id) {
                        let _ = w.reply.send(ret);
                    }
                }
            }
        }
        for (id, ask, outcome) in out.replies.drain(..) {
            if let Some(reply) = self.mcp.asks.remove(&(id, ask)) {
                let _ = reply.send(match outcome {
                    CallOutcome::Ok(v) => Ok(v),
                    CallOutcome::Err(e) => Err(e),
                });
            }
        }
        for id in out.cancel.drain(..) {
            if let Some(t) = self.mcp.runs.remove(&id) {
                t.cancel();
            }
        }
        for run in out.runs.drain(..) {
            let token = CancellationToken::new();
            self.mcp.runs.insert(run.id, token.clone());
            start_run(&self.mcp.upstream, &self.mcp.local_tx, run, token);
        }
        for agent in out.probes.drain(..) {
            start_probe(&self.mcp.upstream, &self.mcp.local_tx, agent);
        }
    }

    /// The hosted agents as their supervisor reports them.
    pub(super) fn hosted_agents(&self) -> Vec<HostedAgent> {
        let up = &self.mcp.upstream;
        up.agent_ids()
            .into_iter()
            .map(|id| HostedAgent {
                prefix: up.config(&id).map(|c| c.prefix().clone()),
                state: state_text(up.status(&id).as_ref().map(|s| &s.state)),
                id,
            })
            .collect()
    }

    pub(super) fn send_calls(&mut self, actions: Vec<CallAction>) {
        for a in actions {
            match a {
                CallAction::SendCall { peer, call } => {
                    self.net.send_call(&peer, CallMessage::Call(call))
                }
                CallAction::Answer { peer, leg, answer } => {
                    self.net.answer_call(&peer, leg, answer)
                }
                CallAction::SendResult { peer, result } => {
                    self.net.send_call(&peer, CallMessage::Result(result))
                }
                CallAction::SendProgress { peer, progress } => {
                    self.net.send_call(&peer, CallMessage::Progress(progress))
                }
                CallAction::SendCancel { peer, cancel } => {
                    self.net.send_call(&peer, CallMessage::Cancel(cancel))
                }
                CallAction::SendNotify { peer, notify } => {
                    self.net.send_call(&peer, CallMessage::Notify(notify))
                }
                CallAction::SendAsk { peer, ask } => {
                    self.net.send_call(&peer, CallMessage::Ask(ask))
                }
                CallAction::SendReply { peer, reply } => {
                    self.net.send_call(&peer, CallMessage::Reply(reply))
                }
                other => {
                    debug_assert!(false, "the plane handles {other:?} itself");
                }
            }
        }
    }

    /// After an engine step: rebuild the front's table if routes changed.
    pub(super) fn after_step(&mut self) {
        if self.mcp.routes_changed || self.mcp.plane.routes_dirty() {
            self.mcp.routes_changed = false;
            let now = self.clock.now_micros();
            let mut out = self.mcp.plane.on_routes(now, &self.engine);
            self.carry_mcp(&mut out);
            self.send_calls(out.net);
        }
    }

    pub(super) async fn on_front(&mut self, req: FrontRequest) -> Result<(), NodeError> {
        let now = self.clock.now_micros();
        let out = match req {
            FrontRequest::Call(c) => {
                let FrontCallRequest {
                    id,
                    spec,
                    progress,
                    side,
                    trace,
                    reply,
                } = c;
                let call = FrontCall {
                    id,
                    spec,
                    progress: progress.is_some(),
                };
                self.mcp.waits.insert(
                    id,
                    FrontWaiter {
                        reply,
                        progress,
                        side,
                    },
                );
                self.mcp
                    .plane
                    .on_front_call_traced(now, &self.engine, call, trace)
            }
            FrontRequest::Reply { id, ask, outcome } => {
                self.mcp
                    .plane
                    .on_front_reply(now, &self.engine, id, ask, outcome)
            }
            FrontRequest::Cancel { id, reason } => {
                self.mcp.waits.remove(&id);
                self.mcp
                    .plane
                    .on_front_cancel(now, &self.engine, id, reason)
            }
            FrontRequest::FindAgents { query, view, reply } => {
                let _ = reply.send(self.mcp.plane.find_agents(&self.engine, &query, &view));
                return Ok(());
            }
            FrontRequest::ListAgents { view, reply } => {
                let agents = self.hosted_agents();
                let _ = reply.send(self.mcp.plane.list_agents(&agents, &view));
                return Ok(());
            }
        };
        self.carry(out).await
    }

    pub(super) async fn on_local(&mut self, report: RunReport) -> Result<(), NodeError> {
        let ev = match report {
            RunReport::Event(ev) => ev,
            RunReport::Probe { agent, outcome } => {
                let now = self.clock.now_micros();
                let rtt = match outcome {
                    PingOutcome::Answered(d) => Some(d),
                    PingOutcome::Unanswered => None,
                    // Nothing measured; the supervisor reports it Down if
                    // it is.
                    PingOutcome::NotUp => {
                        self.mcp.plane.probe_skipped(now, &agent);
                        return Ok(());
                    }
                };
                let out = self.mcp.plane.on_probe(now, &agent, rtt);
                return self.carry(out).await;
            }
            RunReport::Ask {
                id,
                method,
                params,
                reply,
            } => {
                let open = self.mcp.asks.keys().filter(|(r, _)| *r == id).count();
                if !self.mcp.runs.contains_key(&id) || open >= MAX_ASKS_PER_RUN {
                    let _ = reply.send(Err(CallError::new(
                        CallErrorKind::Overloaded,
                        format!("at most {MAX_ASKS_PER_RUN} requests to the caller at a time"),
                    )));
                    return Ok(());
                }
                let n = self.mcp.next_ask.entry(id).or_insert(0);
                *n = n.wrapping_add(1);
                let ask = *n;
                self.mcp.asks.insert((id, ask), reply);
                LocalEvent::Ask {
                    id,
                    ask,
                    method,
                    params,
                }
            }
        };
        if let LocalEvent::Done { id, .. } = &ev {
            let id = *id;
            self.mcp.runs.remove(&id);
            // Requests still open end with the run (their senders drop:
            // the agent hears "the call ended").
            self.mcp.asks.retain(|(r, _), _| *r != id);
            self.mcp.next_ask.remove(&id);
        }
        let now = self.clock.now_micros();
        let out = self.mcp.plane.on_local(now, &self.engine, ev);
        self.carry(out).await
    }

    pub(super) async fn on_agent(&mut self, ev: AgentEvent) -> Result<(), NodeError> {
        let now = self.clock.now();
        let cfg = self.mcp.upstream.config(ev.agent());
        let out = self.mcp.plane.on_agent(now, ev, cfg.as_ref());
        self.carry(out).await
    }

    pub(super) async fn on_call_tick(&mut self) -> Result<(), NodeError> {
        let now = self.clock.now_micros();
        let out = self.mcp.plane.tick(now, &self.engine);
        self.carry(out).await
    }

    /// Calls sent to (or received from) a peer whose session went down end
    /// as when its connection closes: retried elsewhere if they may be,
    /// else failed. A frozen peer (SIGSTOP, a hung host) keeps its
    /// connection open until the transport's request timeout; its hold
    /// timer is what notices, and calls must not wait longer than that.
    pub(super) async fn end_calls_of_lost_sessions(&mut self) -> Result<(), NodeError> {
        for peer in std::mem::take(&mut self.mcp.sessions_lost) {
            self.on_call_net(NetEvent::PeerGone { peer }).await?;
        }
        Ok(())
    }

    /// The call-protocol events of the network.
    pub(super) async fn on_call_net(&mut self, ev: NetEvent) -> Result<(), NodeError> {
        let ev = match ev {
            NetEvent::Call { peer, msg, charge } => match msg {
                CallMessage::Call(call) => CallEvent::Inbound {
                    peer,
                    call,
                    bytes: charge.bytes(),
                },
                CallMessage::Result(result) => CallEvent::Result { peer, result },
                CallMessage::Progress(progress) => CallEvent::Progress { peer, progress },
                CallMessage::Cancel(cancel) => CallEvent::Cancel { peer, cancel },
                CallMessage::Notify(notify) => CallEvent::Notify { peer, notify },
                CallMessage::Ask(ask) => CallEvent::Ask { peer, ask },
                CallMessage::Reply(reply) => CallEvent::Reply { peer, reply },
                CallMessage::Answer(_) => return Ok(()),
            },
            NetEvent::CallAnswered { peer, answer } => CallEvent::Answered {
                peer,
                leg: answer.leg,
                answer: answer.answer,
            },
            NetEvent::CallFailed {
                peer,
                leg,
                kind,
                maybe_received,
                reason,
            } => {
                if kind != CallKind::Call {
                    // A lost result or progress: the caller's side times
                    // out or sees the peer go; nothing to redo here.
                    tracing::debug!(peer = %peer.short(), %leg, %kind, %reason, "call message lost");
                    return Ok(());
                }
                CallEvent::SendFailed {
                    peer,
                    leg,
                    maybe_received,
                    reason,
                }
            }
            NetEvent::PeerGone { peer } => CallEvent::PeerDown { peer },
            _ => return Ok(()),
        };
        let now = self.clock.now_micros();
        let out = self.mcp.plane.on_call(now, &self.engine, ev);
        self.carry(out).await
    }
}
