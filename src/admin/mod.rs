//! The admin HTTP API (axum, loopback only): what tests and the CLI use to
//! see and change a running node.
//!
//! Every request passes the [`guard`] first: a loopback (or allowed) Host,
//! no foreign Origin, the node's [admin token](token) as a bearer token,
//! and JSON bodies of at most [`MAX_BODY`] bytes. Connections are capped
//! and closed when idle ([`crate::local_http`]).
//!
//! | route | answer |
//! |---|---|
//! | `GET /v1/status` | [`StatusView`]: identity, listen addresses, counters |
//! | `GET /v1/peers` | [`PeerView`]s: sessions, links, where each peer came from |
//! | `GET /v1/routes` | the Loc-RIB as [`RouteView`]s |
//! | `GET /v1/routes/in/{peer}` | [`AdjInView`]: a peer's Adj-RIB-In, pre- and post-policy |
//! | `GET /v1/routes/out/{peer}` | [`AdjOutView`]: what we advertised to a peer |
//! | `GET /v1/agents` | the MCP agents this node hosts: source, state, routes |
//! | `POST /v1/agents` | adds an agent: the body is an `[[agents]]` entry as JSON; persisted |
//! | `DELETE /v1/agents/{id}` | removes an agent (its routes are withdrawn) |
//! | `GET /v1/calls` | the tool calls in flight at this node: where from, where to, age |
//! | `GET /v1/mcp` | the MCP front's URL, calls in flight, forwarder counters, call metrics |
//! | `GET /v1/why?prefix=P` | [`WhyView`]: every path of P, why the best won, import and export decisions |
//! | `GET /v1/paths` | every path of every Loc-RIB prefix with its decision ([`PathView`]s) |
//! | `POST /v1/policy/check` | body `{"policy": TEXT, "file": NAME}`: the file's errors and warnings, and what it would change (a dry run; nothing changes) |
//! | `POST /v1/policy/reload` | re-reads the `[policy]` file: a file with errors changes nothing (`400`); else it is in force at once, and the answer is what changed (as `/v1/policy/check`) |
//! | `GET /v1/tools` | what the MCP front lists ([`ToolView`]s) |
//! | `GET /v1/calls/recent` | the last calls that finished here ([`RecentCallView`](views::RecentCallView)s, newest first; `?limit=N`) |
//! | `GET /v1/trust/asns` | the first-seen keys of derived ASNs ([`KnownAsnView`](views::KnownAsnView)s) |
//! | `POST /v1/trust/rekey` | body `{"asn": N, "node": HEX or null}`: accepts a re-key of a derived ASN (`null`: forget it; the next key seen holds it); durable before the answer |
//! | `GET /metrics` | the node's [`metrics`] in the Prometheus text format |
//! | `GET /glass` | the [looking glass](glass) page (no token for the page; its data requests carry it) |
//!
//! `{peer}` is a PeerId (base58) or a node id (64 hex digits). Handlers do
//! not touch the engine: each request goes to the node task over a bounded
//! channel with a oneshot for the answer, so the engine needs no locks and
//! a slow client cannot hold it up.

mod error;
pub mod explain;
pub mod glass;
pub mod guard;
pub mod metrics;
pub mod token;
pub mod views;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{DefaultBodyLimit, Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde::Serialize;
use tokio::sync::{mpsc, oneshot};

pub use error::AdminError;
pub use explain::{PathView, PolicyCheckView, ToolView, WhyView};
pub use guard::Guard;
pub use token::AdminToken;
pub use views::{
    AdjInView, AdjOutView, AgentSource, AgentView, CallInFlight, McpView, PeerView, RouteView,
    StatusView,
};

/// Largest request body (an `[[agents]]` entry as JSON).
pub const MAX_BODY: usize = 64 * 1024;

/// Largest policy file `POST /v1/policy/check` takes (as JSON).
pub const MAX_POLICY_BODY: usize = 1024 * 1024;

/// How long a handler waits for the node task.
const ASK_TIMEOUT: Duration = Duration::from_secs(5);

/// Requests from admin handlers to the node task.
#[derive(Debug)]
pub enum AdminRequest {
    Status(oneshot::Sender<StatusView>),
    Peers(oneshot::Sender<Vec<PeerView>>),
    Routes(oneshot::Sender<Vec<RouteView>>),
    RoutesIn {
        peer: String,
        reply: oneshot::Sender<Result<AdjInView, AdminError>>,
    },
    RoutesOut {
        peer: String,
        reply: oneshot::Sender<Result<AdjOutView, AdminError>>,
    },
    Agents(oneshot::Sender<Vec<AgentView>>),
    AddAgent {
        /// The `[[agents]]` entry as JSON.
        entry: String,
        reply: oneshot::Sender<Result<AgentView, AdminError>>,
    },
    RemoveAgent {
        id: String,
        reply: oneshot::Sender<Result<(), AdminError>>,
    },
    Mcp(oneshot::Sender<McpView>),
    Why {
        prefix: String,
        reply: oneshot::Sender<Result<WhyView, AdminError>>,
    },
    Paths(oneshot::Sender<Vec<PathView>>),
    Tools(oneshot::Sender<Vec<ToolView>>),
    /// Re-reads the `[policy]` file and puts it in force.
    PolicyReload(oneshot::Sender<Result<PolicyCheckView, AdminError>>),
    PolicyCheck {
        /// The policy file's text and its name (for error positions).
        text: String,
        file: String,
        reply: oneshot::Sender<Result<PolicyCheckView, AdminError>>,
    },
    Calls(oneshot::Sender<Vec<CallInFlight>>),
    /// The last `limit` calls that finished here, newest first.
    RecentCalls {
        limit: usize,
        reply: oneshot::Sender<Vec<views::RecentCallView>>,
    },
    /// What `/metrics` renders.
    Metrics(oneshot::Sender<metrics::MetricsSnapshot>),
    /// The first-seen keys of derived ASNs.
    KnownAsns(oneshot::Sender<Vec<views::KnownAsnView>>),
    /// Accepts a re-key of a derived ASN (`node: None` forgets it).
    Rekey {
        asn: u32,
        node: Option<String>,
        reply: oneshot::Sender<Result<views::RekeyView, AdminError>>,
    },
}

/// Sends a request to the node task and waits `wait` for its answer.
async fn ask_for<T>(
    tx: &mpsc::Sender<AdminRequest>,
    wait: Duration,
    make: impl FnOnce(oneshot::Sender<T>) -> AdminRequest,
) -> Result<T, AdminError> {
    let (otx, orx) = oneshot::channel();
    match tokio::time::timeout(ASK_TIMEOUT, tx.send(make(otx))).await {
        Ok(Ok(())) => {}
        _ => return Err(AdminError::Busy),
    }
    match tokio::time::timeout(wait, orx).await {
        Ok(Ok(v)) => Ok(v),
        _ => Err(AdminError::NoAnswer),
    }
}

/// A view from the node task.
async fn ask<T: Serialize>(
    tx: &mpsc::Sender<AdminRequest>,
    make: impl FnOnce(oneshot::Sender<T>) -> AdminRequest,
) -> Response {
    match ask_for(tx, ASK_TIMEOUT, make).await {
        Ok(v) => Json(v).into_response(),
        Err(e) => e.into_response(),
    }
}

/// A request that can fail; answered with `ok` or the error's status.
async fn ask_result<T: Serialize>(
    tx: &mpsc::Sender<AdminRequest>,
    wait: Duration,
    ok: StatusCode,
    make: impl FnOnce(oneshot::Sender<Result<T, AdminError>>) -> AdminRequest,
) -> Response {
    match ask_for(tx, wait, make).await.and_then(|r| r) {
        Ok(v) => (ok, Json(v)).into_response(),
        Err(e) => e.into_response(),
    }
}

type Tx = mpsc::Sender<AdminRequest>;

async fn status(State(tx): State<Tx>) -> Response {
    ask(&tx, AdminRequest::Status).await
}

async fn peers(State(tx): State<Tx>) -> Response {
    ask(&tx, AdminRequest::Peers).await
}

async fn routes(State(tx): State<Tx>) -> Response {
    ask(&tx, AdminRequest::Routes).await
}

async fn routes_in(State(tx): State<Tx>, Path(peer): Path<String>) -> Response {
    ask_result(&tx, ASK_TIMEOUT, StatusCode::OK, |reply| {
        AdminRequest::RoutesIn { peer, reply }
    })
    .await
}

async fn routes_out(State(tx): State<Tx>, Path(peer): Path<String>) -> Response {
    ask_result(&tx, ASK_TIMEOUT, StatusCode::OK, |reply| {
        AdminRequest::RoutesOut { peer, reply }
    })
    .await
}

async fn agents(State(tx): State<Tx>) -> Response {
    ask(&tx, AdminRequest::Agents).await
}

/// Adding an agent may start a process and wait for the store.
const CHANGE_TIMEOUT: Duration = Duration::from_secs(15);

async fn add_agent(State(tx): State<Tx>, body: String) -> Response {
    ask_result(&tx, CHANGE_TIMEOUT, StatusCode::CREATED, |reply| {
        AdminRequest::AddAgent { entry: body, reply }
    })
    .await
}

async fn remove_agent(State(tx): State<Tx>, Path(id): Path<String>) -> Response {
    ask_result(&tx, CHANGE_TIMEOUT, StatusCode::OK, |reply| {
        AdminRequest::RemoveAgent { id, reply }
    })
    .await
}

async fn calls(State(tx): State<Tx>) -> Response {
    ask(&tx, AdminRequest::Calls).await
}

async fn mcp(State(tx): State<Tx>) -> Response {
    ask(&tx, AdminRequest::Mcp).await
}

#[derive(serde::Deserialize)]
struct RecentQuery {
    limit: Option<usize>,
}

/// `GET /v1/calls/recent[?limit=N]`: at most `N` (default and most
/// [`RECENT_CALLS`](crate::mcp::plane::RECENT_CALLS)).
async fn recent_calls(
    State(tx): State<Tx>,
    query: Result<axum::extract::Query<RecentQuery>, axum::extract::rejection::QueryRejection>,
) -> Response {
    let Ok(axum::extract::Query(q)) = query else {
        return AdminError::BadRequest("limit must be a non-negative integer".into())
            .into_response();
    };
    let limit = q
        .limit
        .unwrap_or(crate::mcp::plane::RECENT_CALLS)
        .min(crate::mcp::plane::RECENT_CALLS);
    ask(&tx, |reply| AdminRequest::RecentCalls { limit, reply }).await
}

async fn metrics(State(tx): State<Tx>) -> Response {
    match ask_for(&tx, ASK_TIMEOUT, AdminRequest::Metrics).await {
        Ok(m) => (
            [(axum::http::header::CONTENT_TYPE, metrics::CONTENT_TYPE)],
            metrics::render(&m),
        )
            .into_response(),
        Err(e) => e.into_response(),
    }
}

#[derive(serde::Deserialize)]
struct WhyQuery {
    prefix: String,
}

async fn why(
    State(tx): State<Tx>,
    query: Result<axum::extract::Query<WhyQuery>, axum::extract::rejection::QueryRejection>,
) -> Response {
    let Ok(axum::extract::Query(q)) = query else {
        return AdminError::BadRequest("give the prefix: /v1/why?prefix=P".into()).into_response();
    };
    ask_result(&tx, ASK_TIMEOUT, StatusCode::OK, |reply| {
        AdminRequest::Why {
            prefix: q.prefix,
            reply,
        }
    })
    .await
}

async fn paths(State(tx): State<Tx>) -> Response {
    ask(&tx, AdminRequest::Paths).await
}

async fn tools(State(tx): State<Tx>) -> Response {
    ask(&tx, AdminRequest::Tools).await
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct PolicyCheckBody {
    policy: String,
    #[serde(default)]
    file: Option<String>,
}

/// A dry run over a big Adj-RIB-In takes a while.
const DRY_RUN_TIMEOUT: Duration = Duration::from_secs(30);

async fn policy_check(State(tx): State<Tx>, body: String) -> Response {
    let b: PolicyCheckBody = match serde_json::from_str(&body) {
        Ok(b) => b,
        Err(e) => {
            return AdminError::BadRequest(format!(
                "the body is {{\"policy\": TEXT, \"file\": NAME}}: {e}"
            ))
            .into_response();
        }
    };
    ask_result(&tx, DRY_RUN_TIMEOUT, StatusCode::OK, |reply| {
        AdminRequest::PolicyCheck {
            text: b.policy,
            file: b.file.unwrap_or_else(|| "policy.toml".into()),
            reply,
        }
    })
    .await
}

async fn policy_reload(State(tx): State<Tx>) -> Response {
    ask_result(
        &tx,
        DRY_RUN_TIMEOUT,
        StatusCode::OK,
        AdminRequest::PolicyReload,
    )
    .await
}

async fn known_asns(State(tx): State<Tx>) -> Response {
    ask(&tx, AdminRequest::KnownAsns).await
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct RekeyBody {
    asn: u32,
    node: Option<String>,
}

async fn rekey(State(tx): State<Tx>, body: String) -> Response {
    let b: RekeyBody = match serde_json::from_str(&body) {
        Ok(b) => b,
        Err(e) => {
            return AdminError::BadRequest(format!(
                "want {{\"asn\": N, \"node\": \"64 hex digits\" or null}}: {e}"
            ))
            .into_response();
        }
    };
    ask_result(&tx, CHANGE_TIMEOUT, StatusCode::OK, |reply| {
        AdminRequest::Rekey {
            asn: b.asn,
            node: b.node,
            reply,
        }
    })
    .await
}

async fn not_found() -> Response {
    AdminError::NotFound("no such endpoint; see docs/operations.md".into()).into_response()
}

pub fn router(tx: Tx, guard: Arc<Guard>) -> Router {
    Router::new()
        .route("/v1/status", get(status))
        .route("/v1/peers", get(peers))
        .route("/v1/routes", get(routes))
        .route("/v1/routes/in/{peer}", get(routes_in))
        .route("/v1/routes/out/{peer}", get(routes_out))
        .route("/v1/agents", get(agents).post(add_agent))
        .route("/v1/agents/{id}", axum::routing::delete(remove_agent))
        .route("/v1/mcp", get(mcp))
        .route("/v1/calls", get(calls))
        .route("/v1/calls/recent", get(recent_calls))
        .route("/v1/why", get(why))
        .route("/v1/paths", get(paths))
        .route("/v1/tools", get(tools))
        .route("/v1/policy/reload", axum::routing::post(policy_reload))
        .route(
            "/v1/policy/check",
            axum::routing::post(policy_check).layer(DefaultBodyLimit::max(MAX_POLICY_BODY)),
        )
        .route("/v1/trust/asns", get(known_asns))
        .route("/v1/trust/rekey", axum::routing::post(rekey))
        .route("/metrics", get(metrics))
        .fallback(not_found)
        .with_state(tx)
        .layer(DefaultBodyLimit::max(MAX_BODY))
        .layer(axum::middleware::from_fn_with_state(
            guard.clone(),
            guard::enforce,
        ))
        .merge(glass::router(guard))
}

/// A bound admin listener, not yet serving.
#[derive(Debug)]
pub struct AdminListener {
    listener: tokio::net::TcpListener,
    pub addr: SocketAddr,
}

impl AdminListener {
    pub async fn bind(addr: SocketAddr) -> std::io::Result<Self> {
        let listener = tokio::net::TcpListener::bind(addr).await?;
        let addr = listener.local_addr()?;
        Ok(AdminListener { listener, addr })
    }

    /// Serves until `shutdown` resolves.
    pub fn spawn(
        self,
        tx: Tx,
        guard: Arc<Guard>,
        shutdown: impl std::future::Future<Output = ()> + Send + 'static,
    ) -> tokio::task::JoinHandle<()> {
        tokio::spawn(crate::local_http::serve(
            self.listener,
            router(tx, guard),
            crate::local_http::Limits::ADMIN,
            "admin",
            shutdown,
        ))
    }
}
