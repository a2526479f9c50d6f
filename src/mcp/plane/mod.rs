//! The MCP plane: everything MCP that the node task does, in one place the
//! node drives.
//!
//! ```text
//!  AgentEvent (upstream) ──> on_agent ──> Originate / WithdrawLocal (engine events; the node signs)
//!  FrontRequest (front)  ──> on_front ──┐
//!  call messages (net)   ──> on_call  ──┼─> Forwarder ──> net actions (SendCall, Answer, ...) for the node
//!  LocalEvent (runs)     ──> on_local ──┘        └──> Deliver: a task calls the upstream agent
//!  Loc-RIB changed       ──> on_routes ──> ToolTable published to the front; missing descriptors fetched
//! ```
//!
//! The plane owns the [`Forwarder`] (per-hop call table), the hosted agents'
//! routes, the descriptor cache, the table the front reads, and the signing
//! of calls this node makes. It is sans-IO, like the engine and the
//! forwarder: events in, [`PlaneOut`] out, time passed in. It never touches
//! the engine mutably, the network, a channel or a task: it returns engine
//! events, network actions, local runs to start or cancel ([`LocalRun`]),
//! answers for the front ([`FrontReply`]) and the front's new table, and the
//! node, which owns all of those, carries them out (`node::mcp`). A local
//! run reports back as a [`LocalEvent`].
//!
//! Files: `config` (settings), `hosted` (hosted agents to routes), `calls`
//! (front calls, signing, the forwarder, local runs), `descriptors` (the
//! cache and the front's table), `meta` (the meta tools' queries),
//! `metrics` (call counters and latency histograms), `exposition` (the
//! Prometheus text writer), `recent` (the last calls that finished here),
//! `health` (health as MED: runs and probes measured, routes re-originated
//! with a new MED).
//!
//! # Descriptors
//!
//! A tool route carries the tool's name and a 16-byte content hash of its
//! descriptor (`mcp.tool`, `mcp.desc`), so UPDATEs stay small whatever the
//! schemas weigh. A node that sees a remote tool whose hash it does not know
//! sends a DESCRIBE call (a CALL with [`CallOp::Describe`](crate::core::call::CallOp::Describe)) through the
//! tunnel to the origin, checks that the answer hashes to the route's hash,
//! and caches it by hash (bounded, least recently used out). Until then the
//! front lists the tool with an open object schema and says why.

mod calls;
mod config;
mod descriptors;
mod exposition;
mod health;
mod hosted;
mod meta;
mod metrics;
mod recent;
#[cfg(test)]
mod tests;

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::sync::Arc;

use crate::core::engine::{Engine, Event};
use crate::core::forward::{CallAction, Forwarder, FrontId, LocalId, Micros};
use crate::core::ids::AgentId;
use crate::core::prefix::Prefix;
use crate::mcp::catalog::{DescriptorHash, ToolDescriptor};
use crate::mcp::front::table::ToolTable;
use crate::mcp::items::{ItemDescriptor, ItemKind};

pub use calls::{CallSigner, FrontCall, FrontReply, LocalEvent, LocalRun, args_digest};
pub use config::PlaneConfig;
pub use descriptors::MAX_DESCRIPTOR_BYTES;
pub use exposition::{Exposition, Kind, escape_label};
pub use meta::HostedAgent;
pub use metrics::{BUCKETS_US, CallMetrics, Histogram, HopCalls, HopLatency, hop_label};
pub use recent::{AUDIT_ARGUMENTS_HELD, AuditSink, RECENT_CALLS, RecentCall, RecentCalls};

use calls::FrontWait;
use descriptors::DescriptorCache;
use hosted::Hosted;

/// Front ids from this one up are the plane's own calls (DESCRIBE).
const INTERNAL_FRONT: u64 = 1 << 63;

/// What the node must do after a plane call.
#[derive(Debug, Default)]
pub struct PlaneOut {
    /// Engine events (originations unsigned: the node signs them).
    pub engine: Vec<Event>,
    /// Network actions: SendCall, Answer, SendResult, SendProgress,
    /// SendCancel.
    pub net: Vec<CallAction>,
    /// Tool runs to start on local agents; each reports back with
    /// [`LocalEvent`]s.
    pub runs: Vec<LocalRun>,
    /// Local runs to cancel (their Done still comes back).
    pub cancel: Vec<LocalId>,
    /// Progress, side-channel messages and ends of front calls.
    pub front: Vec<FrontReply>,
    /// Answers to ASKs of local runs: (run, ask, outcome).
    pub replies: Vec<(LocalId, u32, crate::core::call::CallOutcome)>,
    /// The front's table, when it changed.
    pub table: Option<Arc<ToolTable>>,
    /// Hosted agents to probe (an MCP `ping`); each result comes back with
    /// [`McpPlane::on_probe`].
    pub probes: Vec<AgentId>,
}

impl PlaneOut {
    fn extend(&mut self, o: PlaneOut) {
        self.engine.extend(o.engine);
        self.net.extend(o.net);
        self.runs.extend(o.runs);
        self.cancel.extend(o.cancel);
        self.front.extend(o.front);
        self.replies.extend(o.replies);
        if o.table.is_some() {
            self.table = o.table;
        }
        self.probes.extend(o.probes);
    }
}

/// The MCP plane. See the module documentation.
pub struct McpPlane {
    cfg: PlaneConfig,
    fwd: Forwarder,
    signer: Box<dyn CallSigner>,
    /// The table the front reads (the last one published).
    table: Arc<ToolTable>,
    fronts: HashMap<FrontId, FrontWait>,
    describes: HashMap<FrontId, (DescriptorHash, Prefix, Option<ItemKind>)>,
    next_internal: u64,
    hosted: BTreeMap<AgentId, Hosted>,
    cache: DescriptorCache<ToolDescriptor>,
    /// Prompt, resource and template descriptors, by hash.
    item_cache: DescriptorCache<ItemDescriptor>,
    /// Hashes being fetched, and failed fetches with when to retry. A
    /// failure is kept per route: two origins can carry the same
    /// descriptor (the same agent in two places), and one refusing to
    /// describe it (access policy) says nothing about the other.
    fetching: HashSet<DescriptorHash>,
    failed: HashMap<(DescriptorHash, Prefix), (Micros, String)>,
    queue: VecDeque<(DescriptorHash, Prefix, Option<ItemKind>)>,
    metrics: CallMetrics,
    /// Per-hop counters, kept without allocating per call and turned into
    /// [`CallMetrics`] when asked: (from a peer?, outcome) and, per next
    /// hop (`None`: a local agent), (sum of this hop's share, count).
    hop_calls: HashMap<(bool, crate::core::call::CallOp, &'static str), u64>,
    hop_latency: HashMap<(Option<crate::core::ids::NodeId>, crate::core::call::CallOp), Histogram>,
    /// The calls that finished here last, newest last.
    recent: RecentCalls,
    routes_dirty: bool,
    /// Health as MED of the hosted agents, and the runs on them in flight
    /// (agent, start), bounded by the forwarder's local runs.
    health: crate::core::health::Health,
    runs_started: HashMap<LocalId, (AgentId, Micros)>,
}

impl std::fmt::Debug for McpPlane {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("McpPlane")
            .field("fronts", &self.fronts.len())
            .field("hosted", &self.hosted.len())
            .finish()
    }
}

impl McpPlane {
    pub fn new(cfg: PlaneConfig, fwd: Forwarder, signer: Box<dyn CallSigner>) -> McpPlane {
        let cache = DescriptorCache::new(cfg.descriptor_cache, cfg.descriptor_cache_bytes);
        let item_cache = DescriptorCache::new(cfg.descriptor_cache, cfg.descriptor_cache_bytes);
        let health = crate::core::health::Health::new(cfg.health.clone());
        McpPlane {
            health,
            runs_started: HashMap::new(),
            cfg,
            fwd,
            signer,
            table: Arc::new(ToolTable::default()),
            fronts: HashMap::new(),
            describes: HashMap::new(),
            next_internal: INTERNAL_FRONT,
            hosted: BTreeMap::new(),
            cache,
            item_cache,
            fetching: HashSet::new(),
            failed: HashMap::new(),
            queue: VecDeque::new(),
            metrics: CallMetrics::default(),
            hop_calls: HashMap::new(),
            hop_latency: HashMap::new(),
            recent: RecentCalls::default(),
            routes_dirty: true,
        }
    }

    pub fn forwarder(&self) -> &Forwarder {
        &self.fwd
    }

    /// The calls that finished at this hop most recently.
    pub fn recent_calls(&self) -> &RecentCalls {
        &self.recent
    }

    /// The table the front reads.
    pub fn table(&self) -> &Arc<ToolTable> {
        &self.table
    }

    /// When the forwarder needs a tick.
    pub fn next_deadline(&self) -> Option<Micros> {
        match (self.fwd.next_deadline(), self.health_deadline()) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Time passed: the forwarder's timers, failed fetches due again.
    pub fn tick(&mut self, now: Micros, engine: &Engine) -> PlaneOut {
        let mut out = self.forward(now, engine, crate::core::forward::CallEvent::Tick);
        out.extend(self.health_tick(now));
        if !self.failed.is_empty() {
            let before = self.failed.len();
            self.failed.retain(|_, (at, _)| *at > now);
            if self.failed.len() != before {
                self.routes_dirty = true;
            }
        }
        if self.routes_dirty {
            out.extend(self.on_routes(now, engine));
        }
        out
    }
}
