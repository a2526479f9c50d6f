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
//! of calls this node makes. It never touches the engine mutably or the
//! network: it returns engine events and network actions, and the node, which
//! owns both, carries them out. Tool runs on local agents are tokio tasks that
//! report back through a bounded channel ([`LocalEvent`]).
//!
//! # Descriptors
//!
//! A tool route carries the tool's name and a 16-byte content hash of its
//! descriptor (`mcp.tool`, `mcp.desc`), so UPDATEs stay small whatever the
//! schemas weigh. A node that sees a remote tool whose hash it does not know
//! sends a DESCRIBE call (a CALL with [`CallOp::Describe`]) through the
//! tunnel to the origin, checks that the answer hashes to the route's hash,
//! and caches it by hash (bounded, least recently used out). Until then the
//! front lists the tool with an open object schema and says why.

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;
use serde_json::{Map, Value as Json, json};
use sha2::{Digest, Sha256};
use tokio::sync::{mpsc, oneshot, watch};
use tokio_util::sync::CancellationToken;

use crate::core::attrs::{AttrValue, ExtraAttr, PathAttrs};
use crate::core::call::{
    Call, CallErrorKind, CallId, CallOp, CallOrigin, CallOutcome, CallReturn, DESCRIPTOR_ATTR,
    LegId, ProgressInfo, TOOL_ATTR,
};
use crate::core::community::Community;
use crate::core::decision::Status;
use crate::core::engine::{Engine, Event};
use crate::core::forward::{
    CallAction, CallEvent, CallRecord, Delivery, Forwarder, FrontId, FrontOpts, LocalId, Micros,
    route_tool,
};
use crate::core::ids::{AgentId, Asn, Millis, NodeId};
use crate::core::prefix::Prefix;
use crate::core::proof::{AsnCert, Signature};
use crate::core::route::{Route, RouteKey};
use crate::mcp::catalog::{DescriptorHash, ToolDescriptor, tool_routes, write_canonical_json};
use crate::mcp::front::table::{RoutedTool, ToolTable};
use crate::mcp::front::{FrontCallRequest, FrontRequest};
use crate::mcp::upstream::{
    AgentEvent, AgentState, DownReason, Progress, ToolCall, UpstreamError, UpstreamHandle,
};

/// Front ids at or above this are the plane's own (descriptor fetches).
const INTERNAL_FRONT: u64 = 1 << 63;
/// Events from local runs waiting for the node.
pub const LOCAL_QUEUE: usize = 1024;

/// Signs the calls this node makes. Implemented with the node key by
/// `crate::identity`; the plane only asks.
pub trait CallSigner: Send {
    /// The certificate to attach (`None` on unsigned test setups).
    fn cert(&self) -> Option<Arc<AsnCert>>;
    /// The signature over `origin` (its `signature` field is ignored).
    fn sign(&self, origin: &CallOrigin) -> Option<Signature>;
}

/// The SHA-256 of the canonical JSON of a call's arguments: what the signed
/// origin commits to.
pub fn args_digest(arguments: &Json) -> [u8; 32] {
    let mut s = String::new();
    write_canonical_json(arguments, &mut s);
    let d = Sha256::digest(s.as_bytes());
    let mut out = [0u8; 32];
    out.copy_from_slice(&d);
    out
}

/// Plane settings. Defaults: 60 s call deadline, hop limit 16, 4096 cached
/// descriptors in at most 16 MiB (each at most [`MAX_DESCRIPTOR_BYTES`]),
/// 16 descriptor fetches at a time, failed fetches retried after 30 s.
#[derive(Debug, Clone)]
pub struct PlaneConfig {
    node: NodeId,
    asn: Asn,
    call_timeout: Duration,
    hop_limit: u8,
    communities: Vec<Community>,
    descriptor_cache: usize,
    descriptor_cache_bytes: usize,
    describe_parallel: usize,
    describe_retry: Duration,
    fetch_descriptors: bool,
}

impl PlaneConfig {
    pub fn new(node: NodeId, asn: Asn) -> Self {
        PlaneConfig {
            node,
            asn,
            call_timeout: Duration::from_secs(60),
            hop_limit: 16,
            communities: Vec::new(),
            descriptor_cache: 4096,
            descriptor_cache_bytes: 16 << 20,
            describe_parallel: 16,
            describe_retry: Duration::from_secs(30),
            fetch_descriptors: true,
        }
    }

    /// Deadline of calls whose client gives none.
    pub fn with_call_timeout(mut self, d: Duration) -> Self {
        self.call_timeout = d;
        self
    }

    pub fn with_hop_limit(mut self, n: u8) -> Self {
        self.hop_limit = n.max(1);
        self
    }

    /// Communities this node claims for its callers (signed into calls).
    pub fn with_caller_communities(mut self, c: Vec<Community>) -> Self {
        self.communities = c;
        self
    }

    /// Whether to fetch remote tools' descriptors (only a node with a
    /// front needs them).
    pub fn with_descriptor_fetch(mut self, on: bool) -> Self {
        self.fetch_descriptors = on;
        self
    }

    /// Bytes of descriptor JSON kept in the cache (default 16 MiB).
    pub fn with_descriptor_cache_bytes(mut self, n: usize) -> Self {
        self.descriptor_cache_bytes = n.max(MAX_DESCRIPTOR_BYTES);
        self
    }

    pub fn with_descriptor_cache(mut self, n: usize) -> Self {
        self.descriptor_cache = n.max(1);
        self
    }

    pub fn call_timeout(&self) -> Duration {
        self.call_timeout
    }
}

/// What a local run reports.
#[derive(Debug)]
pub enum LocalEvent {
    Progress { id: LocalId, info: ProgressInfo },
    Done { id: LocalId, outcome: CallOutcome },
}

/// Latency histogram bucket bounds, microseconds.
const BUCKETS_US: [u64; 12] = [
    250, 500, 1_000, 2_000, 5_000, 10_000, 25_000, 50_000, 100_000, 500_000, 1_000_000, 10_000_000,
];

/// Call metrics for the admin API (`/metrics`).
#[derive(Debug, Clone, Default, Serialize)]
pub struct CallMetrics {
    /// Calls from the local front, by outcome.
    pub front_calls: BTreeMap<&'static str, u64>,
    /// Front call latency histogram: counts per bucket of [`BUCKETS_US`]
    /// (cumulative in the Prometheus rendering), then the total.
    pub front_latency_buckets: Vec<u64>,
    pub front_latency_sum_us: u64,
    pub front_latency_count: u64,
    /// Calls passing through or ending here, by (from, outcome): `front`,
    /// `peer`.
    pub hop_calls: BTreeMap<String, u64>,
    /// Sum and count of this node's own share of each call, by peer the
    /// call went to (`local` for agents here), microseconds.
    pub hop_latency_sum_us: BTreeMap<String, u64>,
    pub hop_latency_count: BTreeMap<String, u64>,
    pub descriptor_fetches: u64,
    pub descriptor_fetch_failures: u64,
    pub descriptors_cached: usize,
}

impl CallMetrics {
    fn observe_front(&mut self, outcome: &'static str, us: u64) {
        *self.front_calls.entry(outcome).or_default() += 1;
        if self.front_latency_buckets.len() != BUCKETS_US.len() + 1 {
            self.front_latency_buckets = vec![0; BUCKETS_US.len() + 1];
        }
        let i = BUCKETS_US
            .iter()
            .position(|b| us <= *b)
            .unwrap_or(BUCKETS_US.len());
        self.front_latency_buckets[i] += 1;
        self.front_latency_sum_us += us;
        self.front_latency_count += 1;
    }

    /// The metrics in the Prometheus text format.
    pub fn prometheus(&self) -> String {
        let mut s = String::new();
        s.push_str("# TYPE abgp_front_calls_total counter\n");
        for (o, n) in &self.front_calls {
            s.push_str(&format!("abgp_front_calls_total{{outcome=\"{o}\"}} {n}\n"));
        }
        s.push_str("# TYPE abgp_front_call_seconds histogram\n");
        let mut cum = 0;
        for (i, b) in BUCKETS_US.iter().enumerate() {
            cum += self.front_latency_buckets.get(i).copied().unwrap_or(0);
            s.push_str(&format!(
                "abgp_front_call_seconds_bucket{{le=\"{}\"}} {cum}\n",
                *b as f64 / 1e6
            ));
        }
        s.push_str(&format!(
            "abgp_front_call_seconds_bucket{{le=\"+Inf\"}} {}\n",
            self.front_latency_count
        ));
        s.push_str(&format!(
            "abgp_front_call_seconds_sum {}\nabgp_front_call_seconds_count {}\n",
            self.front_latency_sum_us as f64 / 1e6,
            self.front_latency_count
        ));
        s.push_str("# TYPE abgp_hop_calls_total counter\n");
        for (k, n) in &self.hop_calls {
            let (from, outcome) = k.split_once('/').unwrap_or((k, ""));
            s.push_str(&format!(
                "abgp_hop_calls_total{{from=\"{from}\",outcome=\"{outcome}\"}} {n}\n"
            ));
        }
        s.push_str("# TYPE abgp_hop_seconds summary\n");
        for (to, sum) in &self.hop_latency_sum_us {
            let n = self.hop_latency_count.get(to).copied().unwrap_or(0);
            s.push_str(&format!(
                "abgp_hop_seconds_sum{{to=\"{to}\"}} {}\nabgp_hop_seconds_count{{to=\"{to}\"}} {n}\n",
                *sum as f64 / 1e6
            ));
        }
        s.push_str(&format!(
            "# TYPE abgp_descriptor_fetches_total counter\nabgp_descriptor_fetches_total {}\nabgp_descriptor_fetch_failures_total {}\n# TYPE abgp_descriptors_cached gauge\nabgp_descriptors_cached {}\n",
            self.descriptor_fetches, self.descriptor_fetch_failures, self.descriptors_cached
        ));
        s
    }
}

/// A call from the front waiting for its end.
struct FrontWait {
    reply: oneshot::Sender<CallReturn>,
    progress: Option<mpsc::Sender<ProgressInfo>>,
    target: Prefix,
    call_id: CallId,
    started: Micros,
}

/// An agent this node hosts, as its routes see it.
#[derive(Debug, Default)]
struct Hosted {
    tools: BTreeMap<String, Arc<ToolDescriptor>>,
    routes: BTreeMap<Prefix, Route>,
    up: bool,
}

/// Largest descriptor fetched from another node (its JSON): far more than
/// any real tool's name, description and schemas.
pub const MAX_DESCRIPTOR_BYTES: usize = 64 * 1024;

/// Descriptors by hash, least recently used out, bounded in count and in
/// bytes (of their JSON).
#[derive(Debug, Default)]
struct DescriptorCache {
    map: HashMap<DescriptorHash, (Arc<ToolDescriptor>, u64, usize)>,
    clock: u64,
    cap: usize,
    cap_bytes: usize,
    bytes: usize,
}

impl DescriptorCache {
    fn get(&mut self, h: &DescriptorHash) -> Option<Arc<ToolDescriptor>> {
        self.clock += 1;
        let c = self.clock;
        self.map.get_mut(h).map(|(d, used, _)| {
            *used = c;
            d.clone()
        })
    }

    /// Caches `d` (`size` bytes of JSON), evicting the least recently used
    /// until both bounds hold.
    fn insert(&mut self, h: DescriptorHash, d: Arc<ToolDescriptor>, size: usize) {
        self.clock += 1;
        if let Some((_, _, old)) = self.map.remove(&h) {
            self.bytes -= old;
        }
        while !self.map.is_empty()
            && (self.map.len() >= self.cap || self.bytes + size > self.cap_bytes)
        {
            let Some(old) = self
                .map
                .iter()
                .min_by_key(|(_, (_, u, _))| *u)
                .map(|(k, _)| *k)
            else {
                break;
            };
            if let Some((_, _, b)) = self.map.remove(&old) {
                self.bytes -= b;
            }
        }
        self.bytes += size;
        self.map.insert(h, (d, self.clock, size));
    }
}

/// What the node must do after a plane call.
#[derive(Debug, Default)]
pub struct PlaneOut {
    /// Engine events (originations unsigned: the node signs them).
    pub engine: Vec<Event>,
    /// Network actions: SendCall, Answer, SendResult, SendProgress,
    /// SendCancel.
    pub net: Vec<CallAction>,
}

/// The MCP plane. See the module documentation.
pub struct McpPlane {
    cfg: PlaneConfig,
    fwd: Forwarder,
    upstream: UpstreamHandle,
    signer: Box<dyn CallSigner>,
    tables: watch::Sender<Arc<ToolTable>>,
    fronts: HashMap<FrontId, FrontWait>,
    describes: HashMap<FrontId, (DescriptorHash, Prefix)>,
    next_internal: u64,
    locals: HashMap<LocalId, CancellationToken>,
    local_tx: mpsc::Sender<LocalEvent>,
    hosted: BTreeMap<AgentId, Hosted>,
    cache: DescriptorCache,
    /// Hashes being fetched, and failed fetches with when to retry. A
    /// failure is kept per route: two origins can carry the same
    /// descriptor (the same agent in two places), and one refusing to
    /// describe it (access policy) says nothing about the other.
    fetching: HashSet<DescriptorHash>,
    failed: HashMap<(DescriptorHash, Prefix), (Micros, String)>,
    queue: VecDeque<(DescriptorHash, Prefix)>,
    metrics: CallMetrics,
    /// Per-hop counters, kept without allocating per call and turned into
    /// [`CallMetrics`] when asked: (from a peer?, outcome) and, per next
    /// hop (`None`: a local agent), (sum of this hop's share, count).
    hop_calls: HashMap<(bool, &'static str), u64>,
    hop_latency: HashMap<Option<NodeId>, (u64, u64)>,
    routes_dirty: bool,
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
    /// A plane, and the receiving end of its local runs' events (the node
    /// feeds them back with [`McpPlane::on_local`]).
    pub fn new(
        cfg: PlaneConfig,
        fwd: Forwarder,
        upstream: UpstreamHandle,
        signer: Box<dyn CallSigner>,
        tables: watch::Sender<Arc<ToolTable>>,
    ) -> (McpPlane, mpsc::Receiver<LocalEvent>) {
        let (tx, rx) = mpsc::channel(LOCAL_QUEUE);
        let cache = DescriptorCache {
            cap: cfg.descriptor_cache,
            cap_bytes: cfg.descriptor_cache_bytes,
            ..Default::default()
        };
        (
            McpPlane {
                cfg,
                fwd,
                upstream,
                signer,
                tables,
                fronts: HashMap::new(),
                describes: HashMap::new(),
                next_internal: INTERNAL_FRONT,
                locals: HashMap::new(),
                local_tx: tx,
                hosted: BTreeMap::new(),
                cache,
                fetching: HashSet::new(),
                failed: HashMap::new(),
                queue: VecDeque::new(),
                metrics: CallMetrics::default(),
                hop_calls: HashMap::new(),
                hop_latency: HashMap::new(),
                routes_dirty: true,
            },
            rx,
        )
    }

    pub fn upstream(&self) -> &UpstreamHandle {
        &self.upstream
    }

    pub fn forwarder(&self) -> &Forwarder {
        &self.fwd
    }

    pub fn metrics(&self) -> CallMetrics {
        let mut m = self.metrics.clone();
        m.descriptors_cached = self.cache.map.len();
        for ((peer, outcome), n) in &self.hop_calls {
            let from = if *peer { "peer" } else { "front" };
            m.hop_calls.insert(format!("{from}/{outcome}"), *n);
        }
        for (to, (sum, count)) in &self.hop_latency {
            let to = to.map_or_else(|| "local".to_string(), |n| n.short());
            m.hop_latency_sum_us.insert(to.clone(), *sum);
            m.hop_latency_count.insert(to, *count);
        }
        m
    }

    /// When the forwarder needs a tick.
    pub fn next_deadline(&self) -> Option<Micros> {
        self.fwd.next_deadline()
    }

    /// Routes this node originates for its agents (the node re-signs them
    /// periodically).
    pub fn originated(&self) -> impl Iterator<Item = &Route> {
        self.hosted.values().flat_map(|h| h.routes.values())
    }

    // ----- hosted agents -----

    /// An upstream agent came up, changed its tools, or went down: the
    /// routes to originate or withdraw.
    pub fn on_agent(&mut self, now: Millis, ev: AgentEvent) -> PlaneOut {
        let mut out = PlaneOut::default();
        match ev {
            AgentEvent::Up { agent, tools, .. } | AgentEvent::ToolsChanged { agent, tools, .. } => {
                let Some(cfg) = self.upstream.config(&agent) else {
                    // Removed while its event was queued.
                    return out;
                };
                let routes = tool_routes(cfg.prefix(), tools.iter().map(|t| t.name.as_str()));
                for (tool, why) in &routes.rejected {
                    tracing::warn!(%agent, %tool, error = %why, "tool not routed");
                }
                let h = self.hosted.entry(agent.clone()).or_default();
                h.up = true;
                h.tools = tools
                    .into_iter()
                    .map(|t| (t.name.clone(), Arc::new(t)))
                    .collect();
                let mut next: BTreeMap<Prefix, Route> = BTreeMap::new();
                for (tool, prefix) in routes.routes {
                    let Some(d) = h.tools.get(&tool) else {
                        continue;
                    };
                    let mut attrs = PathAttrs {
                        agent: agent.clone(),
                        origin_time: now,
                        ..Default::default()
                    }
                    .with_capabilities(cfg.capabilities())
                    .with_communities(cfg.communities().iter().cloned());
                    attrs.extra.insert(
                        TOOL_ATTR.into(),
                        ExtraAttr {
                            transitive: true,
                            value: AttrValue::Text(tool.as_str().into()),
                        },
                    );
                    attrs.extra.insert(
                        DESCRIPTOR_ATTR.into(),
                        ExtraAttr {
                            transitive: true,
                            value: AttrValue::Bytes(Arc::from(&d.hash().0[..])),
                        },
                    );
                    // Keep the origin time of an unchanged route, so a
                    // re-list does not make it look newer (and lose ties).
                    let route = match h.routes.get(&prefix) {
                        Some(old) if same_but_time(&old.attrs, &attrs) => old.clone(),
                        _ => Route::new(prefix.clone(), Arc::new(attrs)),
                    };
                    next.insert(prefix, route);
                }
                for (p, r) in &next {
                    if h.routes.get(p) != Some(r) {
                        out.engine.push(Event::Originate(r.clone()));
                    }
                }
                for p in h.routes.keys() {
                    if !next.contains_key(p) {
                        out.engine
                            .push(Event::WithdrawLocal(RouteKey::new(p.clone())));
                    }
                }
                tracing::info!(%agent, routes = next.len(), "agent up; originating its tool routes");
                h.routes = next;
            }
            AgentEvent::Down { agent, reason } => {
                // Removed (or shut down) is an agent's last event: forget it.
                let gone = matches!(reason, DownReason::Removed | DownReason::Shutdown);
                if let Some(h) = self.hosted.get_mut(&agent) {
                    h.up = false;
                    for p in std::mem::take(&mut h.routes).into_keys() {
                        out.engine.push(Event::WithdrawLocal(RouteKey::new(p)));
                    }
                    tracing::info!(%agent, %reason, "agent down; its routes withdrawn");
                }
                if gone {
                    self.hosted.remove(&agent);
                }
            }
        }
        self.routes_dirty = true;
        out
    }

    // ----- calls -----

    /// A request from the MCP front.
    pub fn on_front(&mut self, now: Micros, engine: &Engine, req: FrontRequest) -> PlaneOut {
        match req {
            FrontRequest::Call(c) => self.front_call(now, engine, c),
            FrontRequest::Cancel { id, reason } => {
                self.fronts.remove(&id);
                self.forward(now, engine, CallEvent::FrontCancel { id, reason })
            }
            FrontRequest::FindAgents { query, reply } => {
                let _ = reply.send(self.find_agents(engine, &query));
                PlaneOut::default()
            }
            FrontRequest::ListAgents { reply } => {
                let _ = reply.send(self.list_agents());
                PlaneOut::default()
            }
        }
    }

    /// A call message or transport event from the network (not `Front*`).
    pub fn on_call(&mut self, now: Micros, engine: &Engine, ev: CallEvent) -> PlaneOut {
        self.forward(now, engine, ev)
    }

    /// A local run reported.
    pub fn on_local(&mut self, now: Micros, engine: &Engine, ev: LocalEvent) -> PlaneOut {
        match ev {
            LocalEvent::Progress { id, info } => {
                self.forward(now, engine, CallEvent::LocalProgress { id, info })
            }
            LocalEvent::Done { id, outcome } => {
                self.locals.remove(&id);
                self.forward(now, engine, CallEvent::LocalDone { id, outcome })
            }
        }
    }

    /// Time passed.
    pub fn tick(&mut self, now: Micros, engine: &Engine) -> PlaneOut {
        let mut out = self.forward(now, engine, CallEvent::Tick);
        if !self.failed.is_empty() {
            let before = self.failed.len();
            self.failed.retain(|_, (at, _)| *at > now);
            if self.failed.len() != before {
                self.routes_dirty = true;
            }
        }
        if self.routes_dirty {
            let more = self.on_routes(now, engine);
            out.net.extend(more.net);
        }
        out
    }

    fn front_call(&mut self, now: Micros, engine: &Engine, c: FrontCallRequest) -> PlaneOut {
        let FrontCallRequest {
            id,
            target,
            tool,
            arguments,
            idempotent,
            balance,
            timeout,
            progress,
            reply,
        } = c;
        let timeout = timeout.unwrap_or(self.cfg.call_timeout);
        // A call this node runs itself never leaves it: no hop needs the
        // signature, and signing (an ed25519 signature and a digest of the
        // arguments) is the largest cost of a local call.
        let local = engine
            .forwarding(&target)
            .and_then(|f| f.paths.first().map(|(n, _)| n.is_none()))
            .unwrap_or(false);
        let (call, call_id) = self.make_call(
            now,
            target.clone(),
            tool,
            CallOp::Tool,
            arguments,
            idempotent,
            timeout,
            progress.is_some(),
            !local,
        );
        self.fronts.insert(
            id,
            FrontWait {
                reply,
                progress,
                target,
                call_id,
                started: now,
            },
        );
        self.forward(
            now,
            engine,
            CallEvent::Front {
                id,
                call,
                opts: FrontOpts { balance },
            },
        )
    }

    #[allow(clippy::too_many_arguments)]
    fn make_call(
        &self,
        now: Micros,
        target: Prefix,
        tool: Option<String>,
        op: CallOp,
        arguments: Json,
        idempotent: bool,
        timeout: Duration,
        progress: bool,
        sign: bool,
    ) -> (Call, CallId) {
        let mut id = [0u8; 16];
        rand::RngCore::fill_bytes(&mut rand::thread_rng(), &mut id);
        let call_id = CallId(id);
        let timeout_ms = u64::try_from(timeout.as_millis()).unwrap_or(u64::MAX);
        let mut origin = CallOrigin {
            id: call_id,
            caller: self.cfg.node,
            caller_asn: self.cfg.asn,
            communities: self.cfg.communities.clone(),
            target,
            op,
            idempotent,
            tool,
            args_digest: if sign {
                args_digest(&arguments)
            } else {
                [0; 32]
            },
            issued: now.millis(),
            deadline: now.millis().saturating_add_ms(timeout_ms),
            cert: if sign { self.signer.cert() } else { None },
            signature: None,
        };
        if sign {
            origin.signature = self.signer.sign(&origin);
        }
        (
            Call {
                leg: LegId(0),
                hop_limit: self.cfg.hop_limit,
                progress,
                origin: Arc::new(origin),
                arguments,
            },
            call_id,
        )
    }

    /// Runs the forwarder and carries out what concerns the plane; the
    /// network actions go back to the node.
    fn forward(&mut self, now: Micros, engine: &Engine, ev: CallEvent) -> PlaneOut {
        let mut out = PlaneOut::default();
        let mut pending = VecDeque::from([ev]);
        while let Some(ev) = pending.pop_front() {
            for a in self.fwd.handle(now, engine, ev) {
                match a {
                    CallAction::SendCall { .. }
                    | CallAction::Answer { .. }
                    | CallAction::SendResult { .. }
                    | CallAction::SendProgress { .. }
                    | CallAction::SendCancel { .. } => out.net.push(a),
                    CallAction::Deliver(d) => {
                        if let Some(done) = self.deliver(now, d) {
                            pending.push_back(done);
                        }
                    }
                    CallAction::CancelLocal { id } => {
                        if let Some(t) = self.locals.remove(&id) {
                            t.cancel();
                        }
                    }
                    CallAction::FrontProgress { id, info } => {
                        if let Some(w) = self.fronts.get(&id)
                            && let Some(tx) = &w.progress
                        {
                            // Full means the client reads slowly: dropping a
                            // progress step is better than stalling calls.
                            let _ = tx.try_send(info);
                        }
                    }
                    CallAction::FrontDone { id, ret } => {
                        self.front_done(now, id, ret);
                    }
                    CallAction::Finished(r) => self.finished(&r),
                }
            }
        }
        out
    }

    fn front_done(&mut self, now: Micros, id: FrontId, ret: CallReturn) {
        if id.0 >= INTERNAL_FRONT {
            self.describe_done(now, id, ret);
            return;
        }
        let Some(w) = self.fronts.remove(&id) else {
            return;
        };
        let us = now.0.saturating_sub(w.started.0);
        self.metrics.observe_front(ret.outcome.label(), us);
        log_trace(&w.target, &w.call_id, &ret, us);
        let _ = w.reply.send(ret);
    }

    fn finished(&mut self, r: &CallRecord) {
        *self
            .hop_calls
            .entry((r.from.is_some(), r.outcome))
            .or_default() += 1;
        if r.elapsed_us > 0 {
            let e = self.hop_latency.entry(r.to).or_default();
            e.0 += r.elapsed_us;
            e.1 += 1;
        }
        if r.from.is_some() {
            tracing::debug!(
                call = %r.call_id.short(),
                target = %r.target,
                from = %r.from.map(|n| n.short()).unwrap_or_default(),
                to = %r.to.map_or_else(|| "local".into(), |n| n.short()),
                outcome = r.outcome,
                elapsed_us = r.elapsed_us,
                retries = r.retries,
                "call passed through"
            );
        }
    }

    /// Starts a run on a local agent. A DESCRIBE is answered at once.
    fn deliver(&mut self, now: Micros, d: Delivery) -> Option<CallEvent> {
        if d.op == CallOp::Describe {
            let outcome = match self
                .hosted
                .get(&d.agent)
                .and_then(|h| h.tools.get(d.tool.as_ref()))
            {
                Some(desc) => serde_json::to_value(desc.as_ref())
                    .map(CallOutcome::Ok)
                    .unwrap_or_else(|e| CallOutcome::err(CallErrorKind::Internal, e.to_string())),
                None => CallOutcome::err(
                    CallErrorKind::AgentDown,
                    format!("agent {} has no tool {} right now", d.agent, d.tool),
                ),
            };
            return Some(CallEvent::LocalDone { id: d.id, outcome });
        }
        let arguments = match d.arguments {
            Json::Object(m) => m,
            Json::Null => Map::new(),
            other => {
                return Some(CallEvent::LocalDone {
                    id: d.id,
                    outcome: CallOutcome::Err(crate::core::call::CallError::upstream(
                        -32602,
                        format!("tool arguments must be an object, not {other}"),
                        None,
                    )),
                });
            }
        };
        let left_ms = d.deadline.saturating_sub(now.millis()).max(1);
        let token = CancellationToken::new();
        self.locals.insert(d.id, token.clone());
        let mut call = ToolCall::new(d.agent.clone(), d.tool.to_string())
            .with_arguments(arguments)
            .with_cancel(token)
            .with_timeout(Duration::from_millis(left_ms));
        let tx = self.local_tx.clone();
        let id = d.id;
        let relay = if d.progress {
            let (ptx, mut prx) = mpsc::channel::<Progress>(64);
            call = call.with_progress(ptx);
            let tx = tx.clone();
            Some(tokio::spawn(async move {
                while let Some(p) = prx.recv().await {
                    let info = ProgressInfo {
                        progress: p.progress,
                        total: p.total,
                        message: p.message,
                    };
                    if tx.send(LocalEvent::Progress { id, info }).await.is_err() {
                        break;
                    }
                }
            }))
        } else {
            None
        };
        let upstream = self.upstream.clone();
        let agent = d.agent.clone();
        tokio::spawn(async move {
            let r = upstream.call_tool(call).await;
            if let Some(relay) = relay {
                // Progress sent before the result goes first.
                let _ = relay.await;
            }
            let outcome = match r {
                Ok(res) => serde_json::to_value(&res)
                    .map(CallOutcome::Ok)
                    .unwrap_or_else(|e| CallOutcome::err(CallErrorKind::Internal, e.to_string())),
                Err(e) => upstream_outcome(&agent, e),
            };
            let _ = tx.send(LocalEvent::Done { id, outcome }).await;
        });
        None
    }

    // ----- the front's table and descriptors -----

    /// The Loc-RIB changed: rebuild the front's table, publish it if it
    /// differs, fetch descriptors it lacks.
    pub fn on_routes(&mut self, now: Micros, engine: &Engine) -> PlaneOut {
        self.routes_dirty = false;
        let mut routed = Vec::new();
        for r in engine.loc_rib() {
            let Some(tool) = route_tool(&r) else { continue };
            let hash = match r.attrs.extra.get(DESCRIPTOR_ATTR).map(|a| &a.value) {
                Some(AttrValue::Bytes(b)) if b.len() == 16 => {
                    let mut h = [0u8; 16];
                    h.copy_from_slice(b);
                    Some(DescriptorHash(h))
                }
                _ => None,
            };
            let local = engine
                .forwarding(&r.prefix)
                .and_then(|f| f.paths.first().map(|(n, _)| n.is_none()))
                .unwrap_or(false);
            let (descriptor, note) = if local {
                let d = self
                    .hosted
                    .get(&r.attrs.agent)
                    .and_then(|h| h.tools.get(tool.as_ref()).cloned());
                (d, None)
            } else if let Some(h) = hash {
                match self.cache.get(&h) {
                    Some(d) => (Some(d), None),
                    None => {
                        let note = match self.failed.get(&(h, r.prefix.clone())) {
                            Some((_, why)) => format!("(Descriptor unavailable: {why}.)"),
                            None if !self.cfg.fetch_descriptors => {
                                "(Descriptors are not fetched: this node has no MCP front.)"
                                    .to_string()
                            }
                            None => {
                                if !self.fetching.contains(&h)
                                    && !self.queue.iter().any(|(q, _)| *q == h)
                                {
                                    self.queue.push_back((h, r.prefix.clone()));
                                }
                                "(Descriptor not fetched yet.)".to_string()
                            }
                        };
                        (None, Some(note))
                    }
                }
            } else {
                (
                    None,
                    Some("(The route carries no descriptor hash.)".to_string()),
                )
            };
            routed.push(RoutedTool {
                prefix: r.prefix.clone(),
                tool: tool.to_string(),
                agent: r.attrs.agent.clone(),
                origin_asn: r.attrs.origin_asn().unwrap_or(self.cfg.asn),
                as_path: r.attrs.as_path.clone(),
                local,
                med: r.attrs.med,
                capabilities: r.attrs.capabilities.clone(),
                hash,
                descriptor,
                descriptor_note: note,
            });
        }
        let table = ToolTable::build_from(&self.tables.borrow(), routed, now);
        self.tables.send_if_modified(|cur| {
            if **cur == table {
                false
            } else {
                *cur = Arc::new(table);
                true
            }
        });
        self.start_fetches(now, engine)
    }

    fn start_fetches(&mut self, now: Micros, engine: &Engine) -> PlaneOut {
        let mut out = PlaneOut::default();
        while self.fetching.len() < self.cfg.describe_parallel {
            let Some((h, prefix)) = self.queue.pop_front() else {
                break;
            };
            if self.fetching.contains(&h) || self.cache.map.contains_key(&h) {
                continue;
            }
            self.fetching.insert(h);
            self.metrics.descriptor_fetches += 1;
            let id = FrontId(self.next_internal);
            self.next_internal = self.next_internal.wrapping_add(1).max(INTERNAL_FRONT);
            self.describes.insert(id, (h, prefix.clone()));
            let (call, _) = self.make_call(
                now,
                prefix,
                None,
                CallOp::Describe,
                Json::Null,
                true,
                Duration::from_secs(10),
                false,
                true,
            );
            let more = self.forward(
                now,
                engine,
                CallEvent::Front {
                    id,
                    call,
                    opts: FrontOpts::default(),
                },
            );
            out.net.extend(more.net);
        }
        out
    }

    fn describe_done(&mut self, now: Micros, id: FrontId, ret: CallReturn) {
        let Some((h, prefix)) = self.describes.remove(&id) else {
            return;
        };
        self.fetching.remove(&h);
        let fail = |why: String, this: &mut Self| {
            this.metrics.descriptor_fetch_failures += 1;
            tracing::info!(%prefix, error = %why, "descriptor fetch failed");
            let retry =
                now.plus_us(u64::try_from(this.cfg.describe_retry.as_micros()).unwrap_or(u64::MAX));
            this.failed.insert((h, prefix.clone()), (retry, why));
        };
        let size = match &ret.outcome {
            CallOutcome::Ok(v) => serde_json::to_vec(v).map_or(usize::MAX, |b| b.len()),
            CallOutcome::Err(_) => 0,
        };
        if size > MAX_DESCRIPTOR_BYTES {
            fail(
                format!("the descriptor is {size} bytes; the limit is {MAX_DESCRIPTOR_BYTES}"),
                self,
            );
            self.routes_dirty = true;
            return;
        }
        match ret.outcome {
            CallOutcome::Ok(v) => match serde_json::from_value::<ToolDescriptor>(v) {
                Ok(d) if d.hash() == h => {
                    self.cache.insert(h, Arc::new(d), size);
                }
                Ok(_) => fail(
                    "the origin's descriptor does not match the route's hash".into(),
                    self,
                ),
                Err(e) => fail(format!("not a tool descriptor: {e}"), self),
            },
            CallOutcome::Err(e) => fail(e.message, self),
        }
        self.routes_dirty = true;
    }

    /// Whether the table should be rebuilt (a descriptor arrived, a fetch
    /// failed or its retry time came): the node calls [`Self::on_routes`].
    pub fn routes_dirty(&self) -> bool {
        self.routes_dirty
    }

    // ----- queries for the meta tools -----

    fn find_agents(&self, engine: &Engine, query: &str) -> Json {
        let q = query.trim();
        let mut prefixes: Vec<Prefix> = Vec::new();
        if let Ok(p) = Prefix::new(q) {
            let cover = if p.is_wildcard() {
                p.clone()
            } else {
                p.to_wildcard()
            };
            prefixes.extend(
                engine
                    .routes_covered_by(&cover)
                    .into_iter()
                    .map(|r| r.prefix),
            );
            if !p.is_wildcard() && engine.best(&p).is_some() && !prefixes.contains(&p) {
                prefixes.push(p);
            }
        }
        for r in engine.loc_rib() {
            if r.attrs.has_capability(q) && !prefixes.contains(&r.prefix) {
                prefixes.push(r.prefix.clone());
            }
        }
        prefixes.sort();
        prefixes.truncate(200);
        let table = self.tables.borrow().clone();
        let routes: Vec<Json> = prefixes
            .iter()
            .map(|p| {
                let paths = engine.paths(p);
                let multipath = engine.forwarding(p).map(|f| f.multipath).unwrap_or(0);
                let best = paths.first().filter(|r| r.status == Status::Best);
                let mut why = Vec::new();
                let views: Vec<Json> = paths
                    .iter()
                    .enumerate()
                    .map(|(i, r)| {
                        let a = &r.route.attrs;
                        let status = match r.status {
                            Status::Best => "best".to_string(),
                            Status::Lost(step) => {
                                let via = r.peer.map_or_else(|| "local".into(), |n| n.short());
                                why.push(format!("path via {via} lost: {}", step.describe_loss()));
                                format!("lost: {}", step.describe_loss())
                            }
                            Status::Excluded(e) => format!("excluded: {}", e.describe()),
                        };
                        json!({
                            "status": status,
                            "multipath": i < multipath,
                            "nextHop": r.peer.map_or_else(|| "local".to_string(), |n| n.to_string()),
                            "agent": a.agent.as_str(),
                            "originAsn": a.origin_asn().unwrap_or(self.cfg.asn).0,
                            "asPath": a.as_path.iter().map(|x| x.0).collect::<Vec<_>>(),
                            "med": a.med,
                            "localPref": a.local_pref,
                            "communities": a.communities.iter().map(|c| c.to_string()).collect::<Vec<_>>(),
                            "capabilities": a.capabilities.iter().map(|c| c.to_string()).collect::<Vec<_>>(),
                            "stale": r.stale,
                        })
                    })
                    .collect();
                let tool = best.and_then(|b| route_tool(&b.route));
                let front = table.by_prefix(p).map(|t| t.name.clone());
                json!({
                    "prefix": p.as_str(),
                    "tool": tool.as_deref(),
                    "frontName": front,
                    "paths": views,
                    "why": if why.is_empty() { vec!["only path".to_string()] } else { why },
                })
            })
            .collect();
        json!({ "query": q, "node": self.cfg.node.short(), "asn": self.cfg.asn.0, "routes": routes })
    }

    fn list_agents(&self) -> Json {
        let hosted: Vec<Json> = self
            .upstream
            .agent_ids()
            .into_iter()
            .map(|id| {
                let cfg = self.upstream.config(&id);
                let state = match self.upstream.status(&id).map(|s| s.state) {
                    Some(AgentState::Up {
                        protocol_version, ..
                    }) => format!("up ({protocol_version})"),
                    Some(AgentState::Starting) => "starting".into(),
                    Some(AgentState::Down { reason, .. }) => format!("down: {reason}"),
                    None => "unknown".into(),
                };
                json!({
                    "agent": id.as_str(),
                    "prefix": cfg.as_ref().map(|c| c.prefix().to_string()),
                    "state": state,
                    "tools": self.hosted.get(&id).map(|h| h.routes.len()).unwrap_or(0),
                })
            })
            .collect();
        let table = self.tables.borrow().clone();
        #[derive(Serialize)]
        #[serde(rename_all = "camelCase")]
        struct RoutedAgent {
            agent: String,
            origin_asn: u32,
            local: bool,
            as_path_length: usize,
            med: u32,
            tools: Vec<String>,
            capabilities: Vec<String>,
        }
        let mut routed: BTreeMap<(u32, String), RoutedAgent> = BTreeMap::new();
        for t in table.tools() {
            let r = &t.routed;
            let e = routed
                .entry((r.origin_asn.0, r.agent.to_string()))
                .or_insert_with(|| RoutedAgent {
                    agent: r.agent.to_string(),
                    origin_asn: r.origin_asn.0,
                    local: r.local,
                    as_path_length: r.as_path.len(),
                    med: r.med,
                    tools: Vec::new(),
                    capabilities: Vec::new(),
                });
            e.tools.push(t.name.clone());
            for c in &r.capabilities {
                if !e.capabilities.iter().any(|x| x == c.as_ref()) {
                    e.capabilities.push(c.to_string());
                }
            }
        }
        let routed: Vec<RoutedAgent> = routed.into_values().collect();
        json!({ "node": self.cfg.node.short(), "asn": self.cfg.asn.0, "hosted": hosted, "routed": routed })
    }
}

fn same_but_time(a: &PathAttrs, b: &PathAttrs) -> bool {
    let mut x = a.clone();
    x.origin_time = b.origin_time;
    x == *b
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

/// Logs a finished front call with its path and each hop's share.
fn log_trace(target: &Prefix, id: &CallId, ret: &CallReturn, total_us: u64) {
    if !tracing::enabled!(tracing::Level::INFO) {
        return;
    }
    let path: Vec<String> = ret.trace.iter().rev().map(|h| h.asn.to_string()).collect();
    let hops = crate::core::call::hop_costs(&ret.trace)
        .iter()
        .map(|(h, us)| format!("{} {:.3}ms", h.asn, *us as f64 / 1000.0))
        .collect::<Vec<_>>()
        .join(", ");
    tracing::info!(
        call = %id.short(),
        %target,
        outcome = ret.outcome.label(),
        path = %path.join(" -> "),
        per_hop = %hops,
        total_ms = total_us as f64 / 1000.0,
        "call"
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn args_digest_ignores_key_order() {
        let a: Json = serde_json::from_str(r#"{"b":1,"a":[1,2]}"#).unwrap();
        let b: Json = serde_json::from_str(r#"{"a":[1,2],"b":1}"#).unwrap();
        assert_eq!(args_digest(&a), args_digest(&b));
        assert_ne!(args_digest(&a), args_digest(&Json::Null));
    }

    #[test]
    fn metrics_render_as_prometheus_text() {
        let mut m = CallMetrics::default();
        m.observe_front("ok", 300);
        m.observe_front("timeout", 2_000_000);
        let t = m.prometheus();
        assert!(t.contains("abgp_front_calls_total{outcome=\"ok\"} 1"));
        assert!(t.contains("abgp_front_call_seconds_bucket{le=\"0.0005\"} 1"));
        assert!(t.contains("abgp_front_call_seconds_bucket{le=\"+Inf\"} 2"));
    }

    struct NoSigner;
    impl CallSigner for NoSigner {
        fn cert(&self) -> Option<Arc<AsnCert>> {
            None
        }
        fn sign(&self, _: &CallOrigin) -> Option<Signature> {
            None
        }
    }

    struct Nobody;
    impl crate::core::forward::CallerVerifier for Nobody {
        fn verify(&self, _: Millis, _: &CallOrigin, _: &Json) -> Result<(), String> {
            Err("test plane verifies nobody".into())
        }
    }

    fn plane() -> McpPlane {
        let node = NodeId::from_u64(1);
        let fwd = Forwarder::new(
            crate::core::forward::ForwardConfig::new(node, Asn(65001)),
            Box::new(Nobody),
        );
        let (up, _events) = UpstreamHandle::new(crate::mcp::upstream::UpstreamOptions::default());
        let (tx, _rx) = watch::channel(Arc::new(ToolTable::default()));
        McpPlane::new(
            PlaneConfig::new(node, Asn(65001)),
            fwd,
            up,
            Box::new(NoSigner),
            tx,
        )
        .0
    }

    fn descriptor(name: &str) -> ToolDescriptor {
        ToolDescriptor {
            name: name.into(),
            title: None,
            description: Some("does things".into()),
            input_schema: Map::new(),
            output_schema: None,
            annotations: None,
            icons: None,
            meta: None,
        }
    }

    #[test]
    fn a_fetched_descriptor_is_cached_only_if_it_hashes_to_the_routes_hash() {
        let mut p = plane();
        let good = descriptor("lint");
        let prefix = Prefix::new("coding/lint").unwrap();
        let answer = |d: &ToolDescriptor| CallReturn {
            outcome: CallOutcome::Ok(serde_json::to_value(d).unwrap()),
            trace: Vec::new(),
        };
        // The origin (or a hop on the way) answers with another schema.
        let id = FrontId(INTERNAL_FRONT + 1);
        p.describes.insert(id, (good.hash(), prefix.clone()));
        p.fetching.insert(good.hash());
        p.describe_done(Micros(1), id, answer(&descriptor("rm-rf")));
        assert!(p.cache.get(&good.hash()).is_none());
        let (_, why) = p
            .failed
            .get(&(good.hash(), prefix.clone()))
            .expect("the failure is remembered");
        assert!(why.contains("does not match"), "{why}");
        assert_eq!(p.metrics().descriptor_fetch_failures, 1);
        // The right one is cached.
        let id = FrontId(INTERNAL_FRONT + 2);
        p.failed.clear();
        p.describes.insert(id, (good.hash(), prefix));
        p.describe_done(Micros(2), id, answer(&good));
        assert_eq!(p.cache.get(&good.hash()).as_deref(), Some(&good));
    }

    #[test]
    fn an_oversized_descriptor_is_refused_and_the_cache_is_bounded_in_bytes() {
        let mut p = plane();
        let prefix = Prefix::new("coding/huge").unwrap();
        let mut huge = descriptor("huge");
        huge.description = Some("x".repeat(MAX_DESCRIPTOR_BYTES));
        let id = FrontId(INTERNAL_FRONT + 1);
        p.describes.insert(id, (huge.hash(), prefix.clone()));
        p.describe_done(
            Micros(1),
            id,
            CallReturn {
                outcome: CallOutcome::Ok(serde_json::to_value(&huge).unwrap()),
                trace: Vec::new(),
            },
        );
        assert!(p.cache.get(&huge.hash()).is_none());
        let (_, why) = &p.failed[&(huge.hash(), prefix)];
        assert!(why.contains("limit"), "{why}");

        // 40 descriptors of ~20 KiB in a cache of 256 KiB: the newest stay.
        let mut c = DescriptorCache {
            cap: 1000,
            cap_bytes: 256 << 10,
            ..Default::default()
        };
        let mut hashes = Vec::new();
        for i in 0..40 {
            let mut d = descriptor(&format!("t{i}"));
            d.description = Some("y".repeat(20_000));
            let size = serde_json::to_vec(&d).unwrap().len();
            hashes.push(d.hash());
            c.insert(d.hash(), Arc::new(d), size);
            assert!(c.bytes <= 256 << 10, "{} bytes cached", c.bytes);
        }
        assert!(c.get(&hashes[39]).is_some());
        assert!(c.get(&hashes[0]).is_none());
        assert_eq!(c.bytes, c.map.values().map(|(_, _, b)| b).sum::<usize>());
    }

    /// The CI failure of 2026-11-25: the same agent runs under two
    /// prefixes, so their routes carry one descriptor hash. The origin
    /// refuses to describe one of them (access policy); the other must
    /// still be fetched, not marked unavailable.
    #[test]
    fn a_refused_fetch_does_not_mark_a_namesake_route_unavailable() {
        use crate::core::engine::{EngineConfig, PeerInfo, RoutePolicy};
        use crate::core::message::{Message, Update};

        #[derive(Debug)]
        struct AcceptAll;
        impl RoutePolicy for AcceptAll {
            fn import(&self, _: &PeerInfo, _: &Prefix, _: &mut Arc<PathAttrs>) -> bool {
                true
            }
            fn export(&self, _: &PeerInfo, _: &Prefix, _: &mut Arc<PathAttrs>) -> bool {
                true
            }
        }
        let now = Millis(1_700_000_000_000);
        let mut e = Engine::new(EngineConfig::new(Asn(65001), NodeId::from_u64(1)))
            .with_policy(Arc::new(AcceptAll));
        let peer = NodeId::from_u64(2);
        crate::sim::bring_up_passive(&mut e, now, peer, Asn(65002), 0);
        let d = descriptor("echo");
        let route = |prefix: &str| {
            let mut a = PathAttrs {
                agent: AgentId::new(prefix.split('/').next().unwrap()),
                as_path: vec![Asn(65002)],
                ..Default::default()
            };
            a.extra.insert(
                TOOL_ATTR.into(),
                ExtraAttr {
                    transitive: true,
                    value: AttrValue::Text("echo".into()),
                },
            );
            a.extra.insert(
                DESCRIPTOR_ATTR.into(),
                ExtraAttr {
                    transitive: true,
                    value: AttrValue::Bytes(Arc::from(&d.hash().0[..])),
                },
            );
            Route::new(Prefix::new(prefix).unwrap(), Arc::new(a))
        };
        e.handle(
            now,
            Event::Message {
                peer,
                msg: Message::Update(Update {
                    announce: vec![route("remote/echo"), route("vault/echo")],
                    ..Default::default()
                }),
            },
        );
        let mut p = plane();
        let t = Micros::from_millis(now);
        let _ = p.on_routes(t, &e);
        // One fetch for the shared hash; answer it with a refusal.
        let (id, (h, first)) = p
            .describes
            .iter()
            .map(|(id, v)| (*id, v.clone()))
            .next()
            .expect("a fetch started");
        assert_eq!(h, d.hash());
        let refused = CallReturn {
            outcome: CallOutcome::err(CallErrorKind::AccessDenied, "access denied".to_string()),
            trace: Vec::new(),
        };
        p.describe_done(t, id, refused);
        let _ = p.on_routes(t, &e);
        let other = if first.as_str() == "vault/echo" {
            "remote/echo"
        } else {
            "vault/echo"
        };
        let table = p.tables.borrow().clone();
        let note = |prefix: &str| {
            table
                .by_prefix(&Prefix::new(prefix).unwrap())
                .and_then(|t| t.routed.descriptor_note.clone())
                .unwrap_or_default()
        };
        assert!(
            note(first.as_str()).contains("unavailable"),
            "{}",
            note(first.as_str())
        );
        assert!(note(other).contains("not fetched yet"), "{}", note(other));
        assert!(
            p.describes.values().any(|(_, q)| q.as_str() == other),
            "the other route's descriptor is fetched through it"
        );
    }

    #[test]
    fn the_descriptor_cache_drops_the_least_recently_used() {
        let mut c = DescriptorCache {
            cap: 2,
            cap_bytes: usize::MAX,
            ..Default::default()
        };
        let d = |n: &str| {
            Arc::new(ToolDescriptor {
                name: n.into(),
                title: None,
                description: None,
                input_schema: Map::new(),
                output_schema: None,
                annotations: None,
                icons: None,
                meta: None,
            })
        };
        let (a, b, x) = (d("a"), d("b"), d("x"));
        c.insert(a.hash(), a.clone(), 100);
        c.insert(b.hash(), b.clone(), 100);
        assert!(c.get(&a.hash()).is_some()); // a is now more recent than b
        c.insert(x.hash(), x.clone(), 100);
        assert!(c.get(&b.hash()).is_none());
        assert!(c.get(&a.hash()).is_some());
        assert!(c.get(&x.hash()).is_some());
    }
}
