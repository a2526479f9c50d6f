//! `abgp mcp`: the front for clients that launch a command and speak MCP on
//! its stdin/stdout.
//!
//! The bridge attaches to the running node's HTTP front as an ordinary MCP
//! client (the same upstream manager the node uses for its agents: with
//! reconnection, health checks, progress and cancellation) and serves what
//! it sees on stdio: the tool list (re-announced with `list_changed` when
//! the node's changes), tool calls with progress, and cancellation. It holds
//! no routes and no keys; the node does all the routing, so a bridge can
//! come and go without the node noticing more than a client session.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use rmcp::model::{
    CallToolRequestParams, CallToolResponse, ErrorCode, Implementation, ListToolsResult,
    PaginatedRequestParams, ProgressNotificationParam, ServerCapabilities, ServerConfig,
    SubscriptionFilter, Tool,
};
use rmcp::service::{
    NotificationContext, Peer, RequestContext, SubscriptionContext, SubscriptionSink,
};
use rmcp::{ErrorData, RoleServer, ServerHandler, ServiceExt};
use tokio::sync::{mpsc, watch};

use crate::core::ids::AgentId;
use crate::core::prefix::Prefix;
use crate::mcp::config::{AgentConfig, BearerToken};
use crate::mcp::upstream::{
    AgentEvent, Progress, ToolCall, UpstreamError, UpstreamHandle, UpstreamOptions,
};

/// Why the bridge stopped.
#[derive(Debug, thiserror::Error)]
pub enum BridgeError {
    #[error("front URL {url}: {detail}")]
    Config { url: String, detail: String },
    #[error("MCP over stdio: {0}")]
    Stdio(String),
}

/// How long `tools/list` waits for the connection to the node.
const CONNECT_WAIT: Duration = Duration::from_secs(10);

#[derive(Default)]
struct BridgeState {
    tools: Vec<Tool>,
    peer: Option<Peer<RoleServer>>,
    sinks: Vec<SubscriptionSink>,
}

/// The stdio-side handler: serves what the node's front lists.
#[derive(Clone)]
struct Bridge {
    upstream: UpstreamHandle,
    agent: AgentId,
    state: Arc<Mutex<BridgeState>>,
    up: watch::Receiver<bool>,
}

impl Bridge {
    fn lock(&self) -> std::sync::MutexGuard<'_, BridgeState> {
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

impl ServerHandler for Bridge {
    fn get_info(&self) -> ServerConfig {
        ServerConfig::new(
            ServerCapabilities::builder()
                .enable_tools()
                .enable_tool_list_changed()
                .build(),
        )
        .with_server_info(Implementation::new(
            "agent-bgp-bridge",
            env!("CARGO_PKG_VERSION"),
        ))
    }

    async fn on_initialized(&self, context: NotificationContext<RoleServer>) {
        self.lock().peer = Some(context.peer);
    }

    async fn list_tools(
        &self,
        _request: Option<PaginatedRequestParams>,
        _context: RequestContext<RoleServer>,
    ) -> Result<ListToolsResult, ErrorData> {
        let mut up = self.up.clone();
        if tokio::time::timeout(CONNECT_WAIT, up.wait_for(|u| *u))
            .await
            .is_err()
        {
            return Err(ErrorData::internal_error(
                "not connected to the node's MCP front (is `abgp run` up?); still trying",
                None,
            ));
        }
        Ok(ListToolsResult::with_all_items(self.lock().tools.clone()))
    }

    async fn call_tool(
        &self,
        request: CallToolRequestParams,
        ctx: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, ErrorData> {
        let mut call = ToolCall::new(self.agent.clone(), request.name.to_string())
            .with_arguments(request.arguments.clone().unwrap_or_default())
            .with_cancel(ctx.ct.clone());
        let relay = match ctx.meta.get_progress_token() {
            Some(token) => {
                let (tx, mut rx) = mpsc::channel::<Progress>(64);
                call = call.with_progress(tx);
                let peer = ctx.peer.clone();
                Some(tokio::spawn(async move {
                    while let Some(p) = rx.recv().await {
                        let mut n = ProgressNotificationParam::new(token.clone(), p.progress);
                        if let Some(t) = p.total {
                            n = n.with_total(t);
                        }
                        if let Some(m) = p.message {
                            n = n.with_message(m);
                        }
                        if peer.notify_progress(n).await.is_err() {
                            break;
                        }
                    }
                }))
            }
            None => None,
        };
        let r = self.upstream.call_tool(call).await;
        if let Some(relay) = relay {
            let _ = relay.await;
        }
        match r {
            Ok(result) => result
                .to_rmcp()
                .map(Into::into)
                .map_err(|e| ErrorData::internal_error(e.to_string(), None)),
            // The node's own error (routing, access, timeout), unchanged.
            Err(UpstreamError::Rejected {
                code,
                message,
                data,
                ..
            }) => Err(ErrorData::new(ErrorCode(code), message, data)),
            Err(e) => Err(ErrorData::internal_error(e.to_string(), None)),
        }
    }

    fn accepted_subscription_filter(
        &self,
        _requested: &SubscriptionFilter,
    ) -> Option<SubscriptionFilter> {
        Some(SubscriptionFilter::builder().tools_list_changed().build())
    }

    async fn listen(&self, context: SubscriptionContext) -> Result<(), ErrorData> {
        self.lock().sinks.push(context.sink().clone());
        context.cancelled().await;
        Ok(())
    }
}

/// Serves the node front at `url` on stdin/stdout until stdin closes.
pub async fn run_stdio(url: &str, token: Option<BearerToken>) -> Result<(), BridgeError> {
    let cfg_err = |detail: String| BridgeError::Config {
        url: url.to_string(),
        detail,
    };
    let agent =
        AgentConfig::http("node", Prefix::any(), url).map_err(|e| cfg_err(e.to_string()))?;
    let mut agent = agent
        // The node's deadline governs calls; the bridge only must not hang.
        .with_call_timeout(Duration::from_secs(24 * 3600))
        .and_then(|a| a.with_restart_backoff(Duration::from_millis(200), Duration::from_secs(5)))
        .map_err(|e| cfg_err(e.to_string()))?;
    if let Some(t) = token {
        agent = agent.with_bearer_token(t);
    }
    let id = agent.id().clone();
    let (upstream, mut events) = UpstreamHandle::new(UpstreamOptions::default());
    upstream
        .add_agent(agent)
        .map_err(|e| cfg_err(e.to_string()))?;
    let state = Arc::new(Mutex::new(BridgeState::default()));
    let (up_tx, up_rx) = watch::channel(false);
    let bridge = Bridge {
        upstream: upstream.clone(),
        agent: id,
        state: state.clone(),
        up: up_rx,
    };
    // Keep the tool list in step with the node and tell the client.
    let watcher = tokio::spawn(async move {
        while let Some(ev) = events.recv().await {
            let (tools, up) = match ev {
                AgentEvent::Up { tools, .. } | AgentEvent::ToolsChanged { tools, .. } => {
                    (tools, true)
                }
                AgentEvent::Down { reason, .. } => {
                    tracing::warn!(%reason, "lost the node's MCP front; reconnecting");
                    (Vec::new(), false)
                }
            };
            let rmcp_tools: Vec<Tool> = tools.iter().filter_map(|t| t.to_rmcp().ok()).collect();
            let (changed, peer, sinks) = {
                let mut s = state
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner);
                let changed = s.tools != rmcp_tools;
                s.tools = rmcp_tools;
                (changed, s.peer.clone(), s.sinks.clone())
            };
            up_tx.send_replace(up);
            if changed {
                if let Some(p) = peer {
                    let _ = p.notify_tool_list_changed().await;
                }
                for s in sinks {
                    let _ = s.notify_tool_list_changed().await;
                }
            }
        }
    });
    let service = bridge
        .serve(crate::mcp::stdio::streams())
        .await
        .map_err(|e| BridgeError::Stdio(e.to_string()))?;
    let r = service.waiting().await;
    upstream.shutdown().await;
    watcher.abort();
    r.map(|_| ()).map_err(|e| BridgeError::Stdio(e.to_string()))
}
