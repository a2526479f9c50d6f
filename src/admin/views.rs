//! The JSON shapes of the admin API. Ids are printed the way operators
//! type them: node ids as hex, peer ids in base58, ASNs as numbers,
//! communities as text.

use serde::Serialize;

use crate::core::engine::{EngineStats, PathReport, PeerInfo, PeerState};
use crate::core::ids::NodeId;
use crate::core::route::Route;
use crate::identity::peer_id_of;
use crate::mcp::plane::CallMetrics;
use crate::net::LinkInfo;
use crate::net::discovery::Source;

fn peer_str(n: &NodeId) -> String {
    peer_id_of(n).to_string()
}

/// One route.
#[derive(Debug, Clone, Serialize)]
pub struct RouteView {
    pub prefix: String,
    pub path_id: u32,
    pub agent: String,
    /// Nearest AS first; empty for routes originated in our AS.
    pub as_path: Vec<u32>,
    pub local_pref: u32,
    pub med: u32,
    pub communities: Vec<String>,
    pub capabilities: Vec<String>,
    pub origin_time: u64,
    pub originator: Option<String>,
    pub cluster_list: Vec<u32>,
    /// A route server's third-party next hop: the node calls go to.
    pub next_hop: Option<String>,
    /// Only-to-customer (RFC 9234): the AS that marked the route.
    pub otc: Option<u32>,
    /// Origin attestation present.
    pub signed: bool,
    /// Path signatures carried (one per AS hop that signed).
    pub path_signatures: usize,
    /// The peer it was learned from (`null`: originated here), when known.
    pub peer: Option<String>,
    pub peer_node: Option<String>,
    pub stale: Option<bool>,
}

impl RouteView {
    pub fn new(r: &Route) -> Self {
        let a = &r.attrs;
        RouteView {
            prefix: r.prefix.to_string(),
            path_id: r.path_id,
            agent: a.agent.to_string(),
            as_path: a.as_path.iter().map(|x| x.0).collect(),
            local_pref: a.local_pref,
            med: a.med,
            communities: a.communities.iter().map(|c| c.to_string()).collect(),
            capabilities: a.capabilities.iter().map(|c| c.to_string()).collect(),
            origin_time: a.origin_time.0,
            originator: a.originator.map(|n| n.to_string()),
            cluster_list: a.cluster_list.iter().map(|c| c.0).collect(),
            next_hop: a.next_hop.map(|n| n.to_string()),
            otc: a.otc.map(|x| x.0),
            signed: r.proof.is_some(),
            path_signatures: r.proof.as_ref().map_or(0, |p| p.path.len()),
            peer: None,
            peer_node: None,
            stale: None,
        }
    }

    /// A Loc-RIB entry with where it came from.
    pub fn best(r: &Route, best: Option<&PathReport>) -> Self {
        let mut v = Self::new(r);
        if let Some(b) = best {
            v.peer = b.peer.as_ref().map(peer_str);
            v.peer_node = b.peer.map(|n| n.to_string());
            v.stale = Some(b.stale);
        }
        v
    }
}

/// `GET /v1/routes/in/{peer}`.
#[derive(Debug, Clone, Serialize)]
pub struct AdjInView {
    pub peer: String,
    /// As received, before import policy (including rejected routes).
    pub pre_policy: Vec<RouteView>,
    /// After import policy: the candidates for the Loc-RIB.
    pub post_policy: Vec<RouteView>,
}

/// `GET /v1/routes/out/{peer}`.
#[derive(Debug, Clone, Serialize)]
pub struct AdjOutView {
    pub peer: String,
    pub routes: Vec<RouteView>,
}

/// One peer.
#[derive(Debug, Clone, Serialize)]
pub struct PeerView {
    pub peer_id: String,
    pub node_id: String,
    /// 0 while unknown (before its first OPEN).
    pub asn: u32,
    pub state: PeerState,
    pub internal: bool,
    /// Our role towards the peer (RFC 9234), when configured.
    pub local_role: Option<crate::core::role::Role>,
    pub source: Option<Source>,
    pub accepted_routes: u32,
    /// Routes in our Adj-RIB-Out towards it.
    pub advertised_routes: usize,
    pub stale_until: Option<u64>,
    pub established_since: Option<u64>,
    pub last_error: Option<String>,
    pub blocked: Option<String>,
    pub addresses: Vec<String>,
    pub link: Option<LinkInfo>,
}

impl PeerView {
    pub fn new(p: &PeerInfo) -> Self {
        PeerView {
            peer_id: peer_str(&p.node),
            node_id: p.node.to_string(),
            asn: p.asn.0,
            state: p.state,
            internal: p.internal,
            local_role: p.local_role,
            source: None,
            accepted_routes: p.accepted,
            advertised_routes: 0,
            stale_until: p.stale_until.map(|m| m.0),
            established_since: None,
            last_error: None,
            blocked: None,
            addresses: Vec::new(),
            link: None,
        }
    }
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct PeerCounts {
    pub configured: usize,
    pub auto: usize,
    pub established: usize,
    pub total: usize,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct StoreView {
    pub dir: String,
    pub schema_version: u32,
    pub submitted_batches: u64,
    pub durable_batches: u64,
    pub flushes: u64,
    pub pending_acks: usize,
    pub error: Option<String>,
    pub restored_peers: usize,
    pub restored_routes: usize,
    pub previous_shutdown_clean: bool,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct DiscoveryView {
    pub mdns: bool,
    pub kademlia: bool,
    pub kademlia_server: bool,
    pub auto_peers: usize,
    pub max_auto_peers: usize,
}

/// `GET /v1/status`.
#[derive(Debug, Clone, Serialize)]
pub struct StatusView {
    pub version: String,
    pub peer_id: String,
    pub node_id: String,
    pub asn: u32,
    pub asn_binding: String,
    pub federation: String,
    pub bootstrap: bool,
    pub listen: Vec<String>,
    pub external: Vec<String>,
    pub admin: Option<String>,
    pub now_ms: u64,
    pub uptime_ms: u64,
    pub loc_rib_routes: usize,
    pub peers: PeerCounts,
    pub engine: EngineStats,
    pub verify: VerifyView,
    pub store: StoreView,
    pub discovery: DiscoveryView,
    /// Reachability (AutoNAT), relay reservations, the relay we serve.
    pub nat: crate::net::nat::NatView,
    /// Admin requests refused by the guard, by check.
    pub admin_refused: AdminRefusedView,
    /// What peers made this node read and hold, and what it refused.
    pub inbound: InboundView,
}

/// The network gate and discovery dials (see `crate::net::gate`).
#[derive(Debug, Clone, Default, Serialize)]
pub struct InboundView {
    #[serde(flatten)]
    pub gate: crate::net::gate::GateStats,
    pub budget_bytes: u64,
    pub budget_bytes_per_connection: u64,
    pub probes_deferred: u64,
    pub addresses_refused: u64,
}

/// Admin requests refused, by the check that refused them.
#[derive(Debug, Clone, Default, Serialize)]
pub struct AdminRefusedView {
    pub host: u64,
    pub origin: u64,
    pub token: u64,
    pub content_type: u64,
}

/// Where an agent's configuration came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum AgentSource {
    /// `[[agents]]` in node.toml.
    Config,
    /// Added through the admin API (persisted in the store).
    RunTime,
}

/// An agent as the admin API shows it.
#[derive(Debug, Clone, Serialize)]
pub struct AgentView {
    pub id: String,
    pub prefix: String,
    pub source: AgentSource,
    pub state: String,
    pub sessions: u64,
    pub routes: usize,
    /// Health as MED (`null`: `[health]` off, or the agent is not up):
    /// latency and success EWMAs, calls in flight, computed and advertised
    /// MED, when it may change next.
    pub health: Option<crate::core::health::HealthReport>,
}

/// A call in flight, as the admin API shows it.
#[derive(Debug, Clone, Serialize)]
pub struct CallInFlight {
    pub call_id: String,
    pub target: String,
    /// The peer it came from (`null`: the local MCP front).
    pub from: Option<String>,
    /// The peer it went to (`null`: an agent on this node).
    pub to: Option<String>,
    pub agent: Option<String>,
    pub age_ms: u64,
    pub deadline_in_ms: u64,
    pub retries: u32,
}

/// The front's address and whether it wants a token, for the admin API.
#[derive(Debug, Clone, Serialize)]
pub struct McpView {
    pub url: Option<String>,
    pub bearer_token_required: bool,
    pub asn: crate::core::ids::Asn,
    pub calls_in_flight: usize,
    pub open_calls_from_peers: usize,
    pub forwarder: crate::core::forward::ForwardStats,
    pub metrics: CallMetrics,
    /// HTTP requests the front refused (bad Host, foreign Origin, token).
    pub front_refused: FrontRefusedView,
    /// What the front lists: routed tools, prompts, resources, templates.
    pub front_lists: FrontListsView,
    /// `/mcp`'s mode (`full` or `discovery`).
    pub mode: crate::mcp::front::view::FrontMode,
    /// The front views (`[[mcp.views]]`), each at `<url>/<name>` with its
    /// own token file.
    pub views: Vec<FrontViewView>,
}

/// A front view as the admin API shows it (never its token).
#[derive(Debug, Clone, Serialize)]
pub struct FrontViewView {
    pub name: String,
    pub url: Option<String>,
    pub mode: crate::mcp::front::view::FrontMode,
    pub prefixes: Vec<String>,
    pub communities: Vec<String>,
    pub origin_asns: Vec<String>,
    pub pinned: Vec<String>,
    pub token_file: String,
}

/// How many routed items the front lists, and how many of them still wait
/// for their descriptor (a remote item listed before its DESCRIBE answered).
#[derive(Debug, Clone, Default, Serialize)]
pub struct FrontListsView {
    pub tools: usize,
    pub prompts: usize,
    pub resources: usize,
    pub templates: usize,
    pub descriptors_missing: usize,
}

/// HTTP requests the MCP front refused, by check.
#[derive(Debug, Clone, Default, Serialize)]
pub struct FrontRefusedView {
    pub host: u64,
    pub origin: u64,
    pub token: u64,
}

/// Verification counters, as the admin API shows them.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct VerifyView {
    pub enabled: bool,
    pub routes_ok: u64,
    pub routes_dropped: u64,
    pub dropped_by_reason: std::collections::BTreeMap<String, u64>,
    pub opens_refused: u64,
    /// OPENs refused because another key holds the derived ASN they claim.
    pub asn_key_conflicts: u64,
    /// Derived ASNs whose first-seen key is recorded, and keys not recorded
    /// because the registry was full.
    pub known_asns: usize,
    pub known_asns_not_recorded: u64,
    /// Route origin validation: origin authorisations loaded, and routes
    /// found valid, invalid (of which rejected) and not found.
    pub authorizations: usize,
    pub origins_valid: u64,
    pub origins_invalid: u64,
    pub origins_not_found: u64,
    pub origins_rejected: u64,
    /// UPDATEs whose checks stopped at the limit on bad signatures.
    pub aborted_updates: u64,
    /// Signature checks the cache could not answer, run off the node task.
    pub checks_off_task: u64,
    /// Jobs that waited for their peer's budget, and for how long in all.
    pub budget_waits: u64,
    pub budget_wait_ms: u64,
}

/// A derived ASN and the key that holds it (`GET /v1/trust/asns`).
#[derive(Debug, Clone, Serialize)]
pub struct KnownAsnView {
    pub asn: u32,
    /// 64 hex digits.
    pub node: String,
    pub peer_id: String,
    /// When the key was first seen (or accepted by a re-key), Unix ms.
    pub first_seen_ms: u64,
}

/// What `POST /v1/trust/rekey` changed.
#[derive(Debug, Clone, Serialize)]
pub struct RekeyView {
    pub asn: u32,
    /// The key recorded before (none: the ASN was not known).
    pub before: Option<String>,
    /// The key recorded now (none: forgotten; the next key seen holds it).
    pub now: Option<String>,
}

/// A call that finished at this node (`GET /v1/calls/recent`). The field
/// names are what `abgp calls` and the looking glass read.
#[derive(Debug, Clone, Serialize)]
pub struct RecentCallView {
    pub call_id: String,
    /// The prefix the call was routed on.
    pub target: String,
    /// The MCP operation: `tools/call`, `prompts/get`, `resources/read`,
    /// `completion/complete`, `resources/subscribe`, or `describe` (a
    /// node's own descriptor fetch).
    pub op: &'static str,
    /// The tool (or prompt, or resource URI) the caller named, if any.
    pub tool: Option<String>,
    /// The peer it came from (`null`: the local MCP front).
    pub from: Option<String>,
    /// The peer it went to (`null`: an agent on this node, or nowhere).
    pub to: Option<String>,
    /// The agent here that ran it (at the origin).
    pub agent: Option<String>,
    /// `ok` or the error kind.
    pub outcome: &'static str,
    /// From this hop taking the call to it passing the result back.
    pub elapsed_us: u64,
    pub retries: u32,
    /// When it finished here, ms since the Unix epoch (node clock).
    pub finished_ms: u64,
    /// The W3C trace id (32 hex digits): the same at every hop of the call.
    pub trace_id: String,
    /// This hop's span id and its parent's (16 hex digits; `null`: the
    /// call started here without a client trace).
    pub span_id: String,
    pub parent_span_id: Option<String>,
    /// The hops the result crossed up to here, origin first (empty when
    /// the call ended without one, e.g. cancelled).
    pub trace: Vec<HopView>,
}

/// One hop of a call's trace.
#[derive(Debug, Clone, Serialize)]
pub struct HopView {
    pub asn: u32,
    /// Node id (64 hex digits).
    pub node: String,
    /// From the hop taking the call to it passing the result back.
    pub elapsed_us: u64,
}

impl RecentCallView {
    pub fn new(c: &crate::mcp::plane::RecentCall) -> Self {
        let r = &c.record;
        RecentCallView {
            call_id: r.call_id.to_string(),
            target: r.target.to_string(),
            op: r.op.method(),
            tool: r.tool.clone(),
            from: r.from.as_ref().map(peer_str),
            to: r.to.as_ref().map(peer_str),
            agent: r.agent.as_ref().map(|a| a.to_string()),
            outcome: r.outcome,
            elapsed_us: r.elapsed_us,
            retries: r.retries,
            finished_ms: c.finished_ms,
            trace_id: r.trace.trace_id_hex(),
            span_id: hex::encode(r.trace.span_id),
            parent_span_id: r.parent_span.map(hex::encode),
            trace: r
                .hops
                .iter()
                .map(|h| HopView {
                    asn: h.asn.0,
                    node: h.node.to_string(),
                    elapsed_us: h.elapsed_us,
                })
                .collect(),
        }
    }
}
