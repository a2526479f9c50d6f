//! The sections of node.toml as plain data, with their defaults (the same
//! defaults the template writes; a test keeps the two in step).
//!
//! Keys are snake_case and durations are strings with a unit
//! ([`super::values`]). The spellings of earlier releases (`_secs` and
//! `-ms` integers, the kebab-case keys of `[mcp]`) are accepted as serde
//! aliases, so an old node.toml still loads.

use std::path::PathBuf;
use std::time::Duration;

use libp2p::{Multiaddr, PeerId};
use serde::{Deserialize, Serialize};

use super::values::{self, AsnSetting, CertSource, KadMode, Listen};
use crate::core::access::{AccessAction, AccessRuleConfig};
use crate::core::community::Community;
use crate::core::prefix::Prefix;
use crate::mcp::config::BearerToken;

#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct NodeSection {
    pub asn: AsnSetting,
    pub certificate: CertSource,
    pub federation: String,
    pub key_file: PathBuf,
    pub data_dir: PathBuf,
    pub bootstrap: bool,
    /// Threads that run the node's tasks: 1 (the default) runs them all on
    /// one thread, which keeps a call's hand-offs between the front, the
    /// node and the connections off other cores (the lowest latency; see
    /// docs/benchmarks.md); 0 means one per core; N means N. Signature
    /// checks, the store and agents' blocking I/O have their own threads
    /// either way.
    pub worker_threads: usize,
}

impl Default for NodeSection {
    fn default() -> Self {
        NodeSection {
            asn: AsnSetting::Derived,
            certificate: CertSource::Derived,
            federation: "default".into(),
            key_file: PathBuf::from("node.key"),
            data_dir: PathBuf::from("."),
            bootstrap: false,
            worker_threads: 1,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct NetworkSection {
    pub listen: Vec<Multiaddr>,
    pub external_addresses: Vec<Multiaddr>,
    pub announce_listen_addresses: bool,
    /// A routing message not acknowledged in this time resets the session.
    #[serde(
        alias = "request_timeout_secs",
        deserialize_with = "values::secs",
        serialize_with = "values::ser"
    )]
    pub request_timeout: Duration,
    pub max_connections: u32,
    pub max_incoming_connections: u32,
    pub max_pending_incoming: u32,
    pub max_connections_per_peer: u32,
    pub max_queued_messages: usize,
    /// Inbound frames being read or waiting for the node, all peers.
    pub inbound_buffer_mb: usize,
    /// The same, per connection.
    pub inbound_buffer_per_connection_mb: usize,
}

impl Default for NetworkSection {
    fn default() -> Self {
        NetworkSection {
            listen: vec![
                "/ip4/0.0.0.0/tcp/4100"
                    .parse()
                    .unwrap_or_else(|_| Multiaddr::empty()),
                "/ip4/0.0.0.0/udp/4100/quic-v1"
                    .parse()
                    .unwrap_or_else(|_| Multiaddr::empty()),
            ],
            external_addresses: Vec::new(),
            announce_listen_addresses: true,
            request_timeout: Duration::from_secs(30),
            max_connections: 256,
            max_incoming_connections: 128,
            max_pending_incoming: 32,
            max_connections_per_peer: 3,
            max_queued_messages: 1024,
            inbound_buffer_mb: 256,
            inbound_buffer_per_connection_mb: 16,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct SessionSection {
    /// 0 (no keepalives) or at least 3 s, in whole seconds.
    #[serde(
        alias = "hold_time_secs",
        deserialize_with = "values::secs",
        serialize_with = "values::ser"
    )]
    pub hold_time: Duration,
    #[serde(
        alias = "graceful_restart_secs",
        deserialize_with = "values::secs",
        serialize_with = "values::ser"
    )]
    pub graceful_restart: Duration,
    pub max_routes_per_update: usize,
    /// Reconnect back-off after a session fails: the first delay, doubled
    /// (with jitter) per failure up to the cap.
    #[serde(
        alias = "connect_retry_min_secs",
        deserialize_with = "values::secs",
        serialize_with = "values::ser"
    )]
    pub connect_retry_min: Duration,
    #[serde(
        alias = "connect_retry_max_secs",
        deserialize_with = "values::secs",
        serialize_with = "values::ser"
    )]
    pub connect_retry_max: Duration,
    /// Minimum route advertisement interval per peer (RFC 4271), 0: none.
    #[serde(deserialize_with = "values::secs", serialize_with = "values::ser")]
    pub mrai: Duration,
    /// Hold withdrawals back with the interval too (classic BGP).
    pub mrai_withdrawals: bool,
}

impl Default for SessionSection {
    fn default() -> Self {
        SessionSection {
            hold_time: Duration::from_secs(90),
            graceful_restart: Duration::from_secs(120),
            max_routes_per_update: 1000,
            connect_retry_min: Duration::from_secs(1),
            connect_retry_max: Duration::from_secs(60),
            mrai: Duration::ZERO,
            mrai_withdrawals: false,
        }
    }
}

impl SessionSection {
    /// The hold time as OPEN carries it (whole seconds; validated).
    pub fn hold_time_secs(&self) -> u16 {
        u16::try_from(self.hold_time.as_secs()).unwrap_or(u16::MAX)
    }

    /// The graceful-restart time as OPEN carries it (whole seconds).
    pub fn graceful_restart_secs(&self) -> u16 {
        u16::try_from(self.graceful_restart.as_secs()).unwrap_or(u16::MAX)
    }
}

/// Route flap damping of paths from external peers (RFC 2439 with RFC
/// 7196's thresholds; see docs/protocol.md, "Flap damping").
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct DampingSection {
    pub enabled: bool,
    #[serde(deserialize_with = "values::secs", serialize_with = "values::ser")]
    pub half_life: Duration,
    /// Penalty over which a path is suppressed (1000 per withdrawal).
    pub suppress: u32,
    /// Penalty under which a suppressed path is used again.
    pub reuse: u32,
    #[serde(deserialize_with = "values::secs", serialize_with = "values::ser")]
    pub max_suppress: Duration,
}

impl Default for DampingSection {
    fn default() -> Self {
        let d = crate::core::engine::DampingConfig::default();
        DampingSection {
            enabled: d.enabled,
            half_life: d.half_life,
            suppress: d.suppress,
            reuse: d.reuse,
            max_suppress: d.max_suppress,
        }
    }
}

impl DampingSection {
    /// The engine's damping settings.
    pub fn engine(&self) -> crate::core::engine::DampingConfig {
        crate::core::engine::DampingConfig {
            enabled: self.enabled,
            half_life: self.half_life,
            suppress: self.suppress,
            reuse: self.reuse,
            max_suppress: self.max_suppress,
            ..Default::default()
        }
    }
}

#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct DiscoverySection {
    pub mdns: bool,
    #[serde(
        alias = "mdns_query_interval_secs",
        deserialize_with = "values::secs",
        serialize_with = "values::ser"
    )]
    pub mdns_query_interval: Duration,
    pub kademlia: bool,
    pub kademlia_mode: KadMode,
    pub bootstrap: Vec<Multiaddr>,
    #[serde(
        alias = "query_interval_secs",
        deserialize_with = "values::secs",
        serialize_with = "values::ser"
    )]
    pub query_interval: Duration,
    pub max_auto_peers: usize,
    /// Routes a discovered peer may have accepted before its session is
    /// reset (its max-prefix).
    pub auto_peer_max_prefix: u32,
    /// An auto peer up this long with no accepted route may lose its slot
    /// to a waiting member.
    #[serde(
        alias = "auto_peer_idle_secs",
        deserialize_with = "values::secs",
        serialize_with = "values::ser"
    )]
    pub auto_peer_idle: Duration,
    #[serde(
        alias = "auto_peer_down_secs",
        deserialize_with = "values::secs",
        serialize_with = "values::ser"
    )]
    pub auto_peer_down: Duration,
    #[serde(
        alias = "cert_failure_cooldown_secs",
        deserialize_with = "values::secs",
        serialize_with = "values::ser"
    )]
    pub cert_failure_cooldown: Duration,
}

impl Default for DiscoverySection {
    fn default() -> Self {
        DiscoverySection {
            mdns: true,
            mdns_query_interval: Duration::from_secs(30),
            kademlia: true,
            kademlia_mode: KadMode::Auto,
            bootstrap: Vec::new(),
            query_interval: Duration::from_secs(60),
            max_auto_peers: 8,
            auto_peer_max_prefix: 10_000,
            auto_peer_idle: Duration::from_secs(600),
            auto_peer_down: Duration::from_secs(300),
            cert_failure_cooldown: Duration::from_secs(3600),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct AnchorConfig {
    pub name: String,
    /// The authority's public key (64 hex digits).
    pub key: String,
    /// ASN ranges it is authoritative for: `"65000-65100"` or `"65001"`.
    #[serde(default)]
    pub asns: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct TrustSection {
    pub accept_derived: bool,
    pub verify_routes: bool,
    #[serde(
        alias = "certificate_validity_days",
        deserialize_with = "values::days",
        serialize_with = "values::ser"
    )]
    pub certificate_validity: Duration,
    #[serde(
        alias = "route_signature_validity_secs",
        deserialize_with = "values::secs",
        serialize_with = "values::ser"
    )]
    pub route_signature_validity: Duration,
    /// Signature checks one peer may cause per second (bursts of 5x).
    pub verify_checks_per_peer_per_sec: u32,
    /// Bad signatures after which the rest of an UPDATE is dropped unchecked.
    pub max_bad_signatures_per_update: usize,
    /// Derived ASNs whose first-seen key is recorded (`<data dir>/known-asns`).
    #[serde(alias = "max-known-asns")]
    pub max_known_asns: usize,
    pub anchors: Vec<AnchorConfig>,
    /// Origin authorisations (`abgp asn authorize` tokens) signed by an
    /// anchor: who may originate which prefix.
    pub authorizations: Vec<String>,
    /// What route origin validation does where authorisations exist.
    #[serde(alias = "origin-validation")]
    pub origin_validation: OriginValidation,
    /// ASes whose transparent route-server path signatures (pcount 0) are
    /// accepted anywhere in a path, besides our own route servers'.
    #[serde(alias = "transparent-asns")]
    pub transparent_asns: Vec<u32>,
}

/// What route origin validation does with a route no authorisation allows
/// (docs/security.md, "Who may originate what").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum OriginValidation {
    /// Treat it as withdrawn; mark the others for policy.
    #[default]
    RejectInvalid,
    /// Keep it, marked `origin-invalid`, for policy to decide.
    Mark,
    /// No validation.
    Off,
}

impl Default for TrustSection {
    fn default() -> Self {
        TrustSection {
            accept_derived: true,
            verify_routes: true,
            certificate_validity: Duration::from_secs(365 * 86_400),
            route_signature_validity: Duration::from_secs(86_400),
            verify_checks_per_peer_per_sec: 20_000,
            max_bad_signatures_per_update: 16,
            max_known_asns: crate::identity::known_asns::DEFAULT_MAX_KNOWN_ASNS,
            anchors: Vec::new(),
            authorizations: Vec::new(),
            origin_validation: OriginValidation::RejectInvalid,
            transparent_asns: Vec::new(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct PolicySection {
    /// Empty: no policy file (RFC 8212 defaults: nothing crosses AS borders).
    pub file: PathBuf,
}

#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct AdminSection {
    pub listen: Listen,
    /// The token every request must carry (`Authorization: Bearer`), in a
    /// 0600 file created at `abgp init` or at first start.
    pub token_file: PathBuf,
    /// Host names accepted besides loopback ones (`localhost`,
    /// 127.0.0.0/8, `::1`).
    pub allowed_hosts: Vec<String>,
    /// Browser origins allowed to call the API (none by default).
    pub allowed_origins: Vec<String>,
}

impl Default for AdminSection {
    fn default() -> Self {
        AdminSection {
            listen: Listen::on(4180),
            token_file: PathBuf::from(crate::admin::token::TOKEN_FILE_NAME),
            allowed_hosts: Vec::new(),
            allowed_origins: Vec::new(),
        }
    }
}

/// `[mcp]`: the MCP front and call tunnelling.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct McpSection {
    /// The streamable HTTP front (`http://<listen>/mcp`).
    pub listen: Listen,
    /// Required by clients as `Authorization: Bearer ...` when set;
    /// required to be set when `listen` is not a loopback address.
    #[serde(alias = "bearer-token")]
    pub bearer_token: Option<BearerToken>,
    /// Host names accepted besides loopback ones while `listen` is a
    /// loopback address (elsewhere the token guards the front).
    #[serde(alias = "allowed-hosts")]
    pub allowed_hosts: Vec<String>,
    /// Browser origins allowed to use the front; any other `Origin` gets
    /// 403 (none by default: MCP clients that are not pages send none).
    #[serde(alias = "allowed-origins")]
    pub allowed_origins: Vec<String>,
    /// Deadline of a call whose client sets none.
    #[serde(
        alias = "call-timeout-secs",
        deserialize_with = "values::secs",
        serialize_with = "values::ser"
    )]
    pub call_timeout: Duration,
    /// Hops a call may take before it is refused.
    #[serde(alias = "hop-limit")]
    pub hop_limit: u8,
    /// Communities this node claims for its callers (signed into calls;
    /// origins' `[[access]]` rules may match them).
    #[serde(alias = "caller-communities")]
    pub caller_communities: Vec<Community>,
    /// What the origin does when no `[[access]]` rule applies.
    #[serde(alias = "access-default")]
    pub access_default: AccessAction,
    /// How long a CALL's answer waits for the result before it is answered
    /// "accepted" (short calls come back inline).
    #[serde(
        alias = "answer-hold-ms",
        deserialize_with = "values::millis",
        serialize_with = "values::ser"
    )]
    pub answer_hold: Duration,
    /// Calls in flight at this node before new ones are refused.
    #[serde(alias = "max-calls")]
    pub max_calls: usize,
    /// Slots of `max_calls` only the local front may use (default: a
    /// tenth).
    #[serde(alias = "front-reserved-calls")]
    pub front_reserved_calls: Option<usize>,
    /// Calls in flight from one peer, and sent to one peer (default: a
    /// quarter of what peers may use).
    #[serde(alias = "max-calls-per-peer")]
    pub max_calls_per_peer: Option<usize>,
    /// Calls in flight for one caller (default: a quarter of the per-peer
    /// share).
    #[serde(alias = "max-calls-per-caller")]
    pub max_calls_per_caller: Option<usize>,
    /// CALLs per second one peer may send (bursts of twice as many).
    #[serde(alias = "max-call-rate-per-peer")]
    pub max_call_rate_per_peer: u32,
    /// Call frames in flight from one peer, in MiB.
    #[serde(alias = "max-call-bytes-per-peer-mb")]
    pub max_call_bytes_per_peer_mb: usize,
    /// One call-protocol message not answered in this time fails the call
    /// on that hop.
    #[serde(
        alias = "call-request-timeout-secs",
        deserialize_with = "values::secs",
        serialize_with = "values::ser"
    )]
    pub call_request_timeout: Duration,
    /// The longest any call runs at this node, whatever deadline its
    /// caller set; a CALL issued longer ago (plus the clock skew) is
    /// refused at the origin, which bounds the replay window.
    #[serde(
        alias = "max-call-duration-secs",
        deserialize_with = "values::secs",
        serialize_with = "values::ser"
    )]
    pub max_call_duration: Duration,
    /// Call-protocol streams per connection.
    #[serde(alias = "max-concurrent-calls")]
    pub max_concurrent_calls: usize,
    /// Spread transit calls over equally good paths too.
    #[serde(alias = "balance-transit")]
    pub balance_transit: bool,
    /// What this node seals end to end when it calls: "external" (calls
    /// to origins in other ASes), "always" or "off".
    pub seal: crate::core::forward::SealMode,
    /// What `tools/list` at `/mcp` shows: every tool ("full"), or the
    /// meta tools and `front_pinned` ("discovery").
    #[serde(alias = "front-mode")]
    pub front_mode: crate::mcp::front::view::FrontMode,
    /// Tools `/mcp` lists in discovery mode besides the meta tools.
    #[serde(alias = "front-pinned")]
    pub front_pinned: Vec<String>,
    /// More endpoints, `/mcp/<name>` (`[[mcp.views]]`, at most 64).
    pub views: Vec<crate::mcp::front::view::ViewConfig>,
}

impl McpSection {
    /// The call-table quotas these settings make (see
    /// [`crate::core::forward::quota`]).
    pub fn call_quotas(&self) -> crate::core::forward::quota::QuotaConfig {
        let mut q = crate::core::forward::quota::QuotaConfig::for_max_calls(self.max_calls);
        if let Some(r) = self.front_reserved_calls {
            q.front_reserve = r;
        }
        if let Some(p) = self.max_calls_per_peer {
            q.per_peer = p;
            q.per_caller = (p / 4).max(1);
        }
        if let Some(c) = self.max_calls_per_caller {
            q.per_caller = c;
        }
        q.peer_rate = f64::from(self.max_call_rate_per_peer);
        q.peer_burst = q.peer_rate * 2.0;
        q.peer_bytes = self.max_call_bytes_per_peer_mb.saturating_mul(1 << 20);
        q
    }
}

impl Default for McpSection {
    fn default() -> Self {
        McpSection {
            listen: Listen::on(4181),
            bearer_token: None,
            allowed_hosts: Vec::new(),
            allowed_origins: Vec::new(),
            call_timeout: Duration::from_secs(60),
            hop_limit: 16,
            caller_communities: Vec::new(),
            access_default: AccessAction::Allow,
            answer_hold: Duration::from_secs(1),
            max_calls: 10_000,
            front_reserved_calls: None,
            max_calls_per_peer: None,
            max_calls_per_caller: None,
            max_call_rate_per_peer: 5000,
            max_call_bytes_per_peer_mb: 64,
            call_request_timeout: Duration::from_secs(30),
            max_call_duration: Duration::from_secs(3600),
            max_concurrent_calls: 1024,
            balance_transit: false,
            seal: crate::core::forward::SealMode::External,
            front_mode: crate::mcp::front::view::FrontMode::Full,
            front_pinned: Vec::new(),
            views: Vec::new(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct StoreSection {
    pub cache_capacity_mb: u64,
    /// Space kept free on the store's filesystem: a batch that would use
    /// it stops the node (with nothing unacknowledged lost) instead.
    pub min_free_mb: u64,
    /// A batch not durable after this long stops the node (a stalled disk).
    #[serde(
        alias = "stall_secs",
        deserialize_with = "values::secs",
        serialize_with = "values::ser"
    )]
    pub stall: Duration,
}

impl Default for StoreSection {
    fn default() -> Self {
        StoreSection {
            cache_capacity_mb: 64,
            min_free_mb: 64,
            stall: Duration::from_secs(60),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct LogSection {
    /// A tracing filter (`info`, `agent_bgp=debug,libp2p=warn`); `RUST_LOG`
    /// overrides it.
    pub level: String,
}

impl Default for LogSection {
    fn default() -> Self {
        LogSection {
            level: "info".into(),
        }
    }
}

/// The audit log: one JSON line per call that finished at this node
/// (docs/operations.md, "Audit log").
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct AuditSection {
    pub enabled: bool,
    /// Relative to the node's directory.
    pub file: PathBuf,
    /// The file is rotated when a line would take it past this size.
    pub max_file_kb: u64,
    /// Rotated files kept (`file.1` newest ... `file.N`); older ones go.
    pub keep_files: u32,
    /// Log each call's arguments too (they may hold secrets).
    pub log_arguments: bool,
}

impl Default for AuditSection {
    fn default() -> Self {
        AuditSection {
            enabled: false,
            file: PathBuf::from("audit.jsonl"),
            max_file_kb: 65_536,
            keep_files: 5,
            log_arguments: false,
        }
    }
}

/// A configured neighbour: a peer we always try to keep a session with.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct NeighborConfig {
    pub peer_id: PeerId,
    #[serde(default)]
    pub address: Option<Multiaddr>,
    /// The ASN the peer must open with; its key is pinned to it.
    pub asn: u32,
    #[serde(default)]
    pub passive: bool,
    #[serde(
        default,
        alias = "hold_time_secs",
        deserialize_with = "values::opt_secs",
        serialize_with = "values::ser_opt"
    )]
    pub hold_time: Option<Duration>,
    #[serde(default)]
    pub max_prefix: Option<u32>,
    #[serde(default, alias = "rr-client")]
    pub rr_client: bool,
    /// We are this neighbour's route server (needs `[routing]
    /// route_server`): its routes go to our other clients unchanged.
    #[serde(default, alias = "route-server-client")]
    pub route_server_client: bool,
    /// This neighbour is our transparent route server: its routes are
    /// accepted without its ASN in the path, its pcount-0 signatures trusted.
    #[serde(default, alias = "route-server")]
    pub route_server: bool,
    /// Our role towards this neighbour (RFC 9234): `provider` (it is our
    /// customer), `customer` (it is our provider), `peer`, `rs` (we are
    /// its route server) or `rs-client` (it is ours). Announced in OPEN,
    /// checked against the neighbour's, and applied to routes with the
    /// only-to-customer rules. Unset: no role.
    #[serde(default, alias = "local-role")]
    pub local_role: Option<crate::core::role::Role>,
    /// Refuse the session when the neighbour announces no role.
    #[serde(default, alias = "strict-role")]
    pub strict_role: bool,
    #[serde(default)]
    pub description: String,
    /// Reconnect back-off for this neighbour; default: `[session]`'s.
    #[serde(
        default,
        alias = "connect_retry_min_secs",
        deserialize_with = "values::opt_secs",
        serialize_with = "values::ser_opt"
    )]
    pub connect_retry_min: Option<Duration>,
    #[serde(
        default,
        alias = "connect_retry_max_secs",
        deserialize_with = "values::opt_secs",
        serialize_with = "values::ser_opt"
    )]
    pub connect_retry_max: Option<Duration>,
}

impl NeighborConfig {
    /// The reconnect back-off (first delay, cap) for this neighbour.
    pub fn connect_retry(&self, session: &SessionSection) -> (Duration, Duration) {
        (
            self.connect_retry_min.unwrap_or(session.connect_retry_min),
            self.connect_retry_max.unwrap_or(session.connect_retry_max),
        )
    }
}

/// A static route: like a BGP `network` statement.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct OriginateConfig {
    pub prefix: Prefix,
    #[serde(default = "default_agent")]
    pub agent: String,
    #[serde(default)]
    pub capabilities: Vec<String>,
    #[serde(default)]
    pub communities: Vec<Community>,
    #[serde(default)]
    pub med: u32,
}

fn default_agent() -> String {
    "static".into()
}

/// The whole file.
#[derive(Debug, Clone, PartialEq, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct NodeConfig {
    pub node: NodeSection,
    pub network: NetworkSection,
    pub session: SessionSection,
    pub damping: DampingSection,
    pub routing: super::routing::RoutingSection,
    pub discovery: DiscoverySection,
    pub nat: super::nat::NatSection,
    pub trust: TrustSection,
    pub policy: PolicySection,
    pub admin: AdminSection,
    pub store: StoreSection,
    pub log: LogSection,
    pub audit: AuditSection,
    pub health: super::health::HealthSection,
    #[serde(rename = "neighbor")]
    pub neighbors: Vec<NeighborConfig>,
    pub originate: Vec<OriginateConfig>,
    pub mcp: McpSection,
    /// MCP agents this node hosts, checked by
    /// [`crate::mcp::config::AgentConfig`] (see docs/mcp.md); kept as
    /// written here, read with [`NodeConfig::agent_configs`].
    pub agents: Vec<toml::Value>,
    /// Who may call the tools this node originates (see
    /// [`crate::core::access`]).
    pub access: Vec<AccessRuleConfig>,
    /// How calls are spread over the paths to a prefix (`[[balance]]`).
    pub balance: Vec<super::balance::BalanceEntry>,
}
