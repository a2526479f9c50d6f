//! The running node: one task owns the [`Engine`] and drives it.
//!
//! ```text
//!              +------------------- node task ----------------------+
//!  swarm ────> | Net::next ──> checks (cert, signatures) ──> Engine   |
//!  timers ───> | engine deadline ──> Tick                     │       |
//!  admin  ───> | AdminRequest ──> views (oneshot reply)       │       |
//!  maint. ───> | discovery, auto-peering, re-signing          v       |
//!              |     Actions ──> Net (dial/send/close), WriteBatch ──────> store thread
//!  acks   <─── | <── durable seq (watch) <── pending acks <──────────────── (flush)
//!              +-----------------------------------------------------+
//! ```
//!
//! A `tokio::select!` loop waits on the swarm, the engine's next deadline,
//! admin requests, a 1 s maintenance tick, store durability and shutdown.
//! Every engine call goes through `Node::step`: it hands the engine the
//! events with the current [`Millis`], carries out the actions, submits the
//! RIB changes as one batch, and queues the acknowledgement of the request
//! that caused them until that batch is durable. Nothing else touches the
//! engine, so it needs no locks.
//!
//! Files: `setup` (node.toml to the engine, net, store and admin; what is
//! restored), `run` (the loop, `step`, commits and durable acks, shutdown),
//! `peering` (network events, admission, signature checks, discovery and
//! maintenance), `admin` (the admin API's views and operations), `mcp` (the
//! plane's output carried out: front answers, local runs, the tool table),
//! `calls` (call signing and caller checks with the node's keys), `verify`
//! (route signature checks off the task), `audit` (the audit log's writer
//! thread), `security`, `clock`.
//!
//! On SIGTERM/SIGINT the store is closed first (everything durable, clean
//! shutdown recorded), then every session gets a Cease: peers drop our
//! routes at once, and our stored RIB still holds what they had sent, to be
//! restored as stale at the next start.

mod admin;
pub mod audit;
pub mod calls;
pub mod clock;
mod explain;
pub mod mcp;
mod peering;
mod policy;
mod run;
pub mod security;
mod setup;
#[cfg(test)]
mod tests;
pub mod verify;

use std::collections::{HashMap, HashSet, VecDeque};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use libp2p::{Multiaddr, PeerId};
use tokio::sync::{mpsc, watch};
use tokio::time::Instant;

use crate::admin::views::{
    AdjInView, AdjOutView, DiscoveryView, PeerCounts, PeerView, RouteView, StatusView, StoreView,
};
use crate::admin::{AdminListener, AdminRequest, AdminToken, Guard};

use crate::config::{AsnSetting, CertSource, KadMode, LoadedConfig};
use crate::core::attrs::PathAttrs;
use crate::core::engine::{
    Action, DefaultPolicy, Engine, EngineConfig, Event, PeerConfig, PeerState, RibChange,
    RoutePolicy,
};
use crate::core::ids::{AgentId, Asn, Millis, NodeId};
use crate::core::message::{ErrorCode, Message, Notification, subcode};
use crate::core::policy::{NodePolicy, PolicyLoadError};
use crate::core::route::Route;
use crate::identity::{Binding, KeyFileError, NodeKey, node_id_of, peer_id_of};
use crate::net::discovery::{Discovery, Eviction, Source};
use crate::net::gate::Charge;
use crate::net::route_codec::{Inbound, RouteResponse};
use crate::net::{BuildError, Net, NetConfig, NetEvent, Reply, Transport};
use crate::store::{Durability, RibStore, SledStore, StoreError, StoreWriter, WriteBatch};
use crate::wire::Limits;

use clock::Clock;
use security::{IdentityError, Security};

/// File in the data directory holding the admin API's actual address.
pub const ADMIN_ADDR_FILE: &str = "admin.addr";

/// Batches that may wait for the store thread before the node waits.
const STORE_QUEUE: usize = 256;
/// Admin requests waiting for the node task.
const ADMIN_QUEUE: usize = 64;
/// How long shutdown waits for the goodbye NOTIFICATIONs to go out.
const SHUTDOWN_FLUSH: Duration = Duration::from_secs(2);
/// How long start-up waits for every listener before printing the summary.
const STARTUP_WAIT: Duration = Duration::from_secs(3);
const MAX_SOURCES: usize = 4096;

/// Why the node could not start or had to stop.
#[derive(Debug, thiserror::Error)]
pub enum NodeError {
    #[error("{0} (create one with `abgp init --dir DIR`)")]
    Key(#[source] KeyFileError),
    #[error("identity: {0}")]
    Identity(#[from] IdentityError),
    #[error("{0}")]
    Store(#[from] StoreError),
    #[error(
        "store failed while running: {0}; stopping rather than acknowledging routes it cannot keep"
    )]
    StoreFailed(String),
    #[error("policy: {0}")]
    Policy(#[from] PolicyLoadError),
    #[error("network: {0}")]
    Net(#[from] BuildError),
    #[error("admin API on {addr}: {source}")]
    Admin {
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot create {path}: {source}")]
    StoreDir {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot start the store thread: {0}")]
    StoreThread(#[source] std::io::Error),
    #[error("node key as a libp2p identity: {0}")]
    Libp2pKey(#[source] crate::identity::key::PeerIdError),
    #[error("admin API token: {0}")]
    AdminToken(#[from] crate::admin::token::TokenError),
    #[error("access rules: {0}")]
    Access(#[from] crate::core::access::AccessConfigError),
    #[error("{0}")]
    Agents(#[from] crate::config::AgentsError),
    #[error("agent: {0}")]
    Agent(#[from] crate::mcp::upstream::UpstreamError),
    #[error("MCP front: {0}")]
    Front(#[from] crate::mcp::front::http::FrontHttpError),
}

/// What the node reports once it is up (the CLI prints it).
#[derive(Debug, Clone)]
pub struct Started {
    pub peer_id: PeerId,
    pub node_id: NodeId,
    pub asn: Asn,
    pub asn_source: String,
    pub federation: String,
    pub bootstrap: bool,
    pub listen: Vec<Multiaddr>,
    pub admin: Option<SocketAddr>,
    pub store_dir: PathBuf,
    pub restored_peers: usize,
    pub restored_routes: usize,
    pub previous_shutdown_clean: bool,
    pub policy: Option<PathBuf>,
    pub neighbors: usize,
    pub originated: usize,
    /// The MCP front (`http://<addr>/mcp`), when it listens.
    pub mcp: Option<SocketAddr>,
    /// Agents configured (node.toml and run-time).
    pub agents: usize,
}

type StartedHook = Box<dyn FnOnce(&Started) + Send>;

/// Per-peer facts the engine does not keep.
#[derive(Debug, Clone, Default)]
struct PeerMeta {
    established_since: Option<Millis>,
    last_error: Option<String>,
    /// Bumped when a session ends, so an UPDATE of an earlier session that
    /// finishes its checks late is not applied to a later one.
    epoch: u64,
}

/// Starts a node and runs it until `shutdown` resolves.
pub async fn run(
    cfg: LoadedConfig,
    shutdown: impl std::future::Future<Output = ()> + Send,
    on_started: impl FnOnce(&Started) + Send + 'static,
) -> Result<(), NodeError> {
    let mut node = Node::start(cfg).await?;
    node.on_started = Some(Box::new(on_started));
    node.run_loop(shutdown).await
}

struct Node {
    cfg: LoadedConfig,
    clock: Clock,
    engine: Engine,
    net: Net,
    discovery: Discovery,
    security: Security,
    writer: Option<StoreWriter>,
    durable: watch::Receiver<Durability>,
    pending_acks: VecDeque<(u64, Reply)>,
    /// Batches submitted and not durable yet, with when: a batch older than
    /// `[store] stall` stops the node (a stalled disk).
    undurable: VecDeque<(u64, Instant)>,
    admin_tx: mpsc::Sender<AdminRequest>,
    admin_rx: mpsc::Receiver<AdminRequest>,
    admin_listener: Option<AdminListener>,
    admin_addr: Option<SocketAddr>,
    /// The admin API's checks (and their refusal counts), while it listens.
    admin_guard: Option<Arc<Guard>>,
    meta: HashMap<NodeId, PeerMeta>,
    sources: HashMap<PeerId, Source>,
    /// Peers the engine runs a session for (configured or auto-added);
    /// restored-only peers are not here until they are peered again.
    started: HashSet<NodeId>,
    /// Auto peers to remove after the current step.
    removals: VecDeque<NodeId>,
    /// Static routes without their signature; re-signed periodically.
    originated: Vec<Route>,
    last_signed: Millis,
    /// When routes with expired origin attestations were last dropped.
    last_expiry_sweep: Millis,
    started_at: Millis,
    started_info: Option<Started>,
    on_started: Option<StartedHook>,
    startup_deadline: Instant,
    next_discovery: Instant,
    shutting_down: bool,
    store_dir: PathBuf,
    restored: (usize, usize),
    previous_clean: bool,
    policy_path: Option<PathBuf>,
    /// The policy in force, for `why` and policy dry runs.
    explain_policy: NodePolicy,
    mcp: mcp::NodeMcp,
    /// Route signature checks off the node task.
    verifier: verify::Verifier<HeldUpdate>,
    /// Warnings caused by peers, at most one a second.
    log_throttle: crate::logging::Throttle,
}

/// An UPDATE waiting for its signature checks, with what answers it.
#[derive(Debug)]
struct HeldUpdate {
    update: crate::core::message::Update,
    reply: Reply,
    epoch: u64,
    /// The frame's bytes stay charged to the peer meanwhile.
    _charge: Charge,
}

/// How logs name a peer.
fn peer_label(n: &NodeId) -> String {
    peer_id_of(n).to_string()
}

fn binding_label(b: &Binding) -> String {
    match b {
        Binding::Derived => "derived".into(),
        Binding::Issued { anchor } => format!("issued by {anchor}"),
        Binding::Pinned => "pinned".into(),
    }
}
