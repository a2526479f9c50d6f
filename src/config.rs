//! `node.toml`: everything an operator configures about one node.
//!
//! [`NodeConfig::load`] parses the file with unknown keys refused and then
//! checks values that serde alone cannot (hold times, federation names,
//! neighbour addresses naming the right peer, ...). Every error names the
//! key path (`neighbor[1].address`) and, for syntax and type errors, the line
//! and column. [`template`] is the fully commented file `abgp init` writes:
//! every option with its default, so the file documents itself; a test keeps
//! the two in step.
//!
//! Relative paths in the file are relative to the file's directory
//! ([`LoadedConfig::resolve`]).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use libp2p::{Multiaddr, PeerId};
use serde::{Deserialize, Deserializer, Serialize};

use crate::core::access::{AccessAction, AccessPolicy, AccessRuleConfig};
use crate::core::community::Community;
use crate::core::ids::Asn;
use crate::core::prefix::Prefix;
use crate::mcp::config::{AgentConfig, BearerToken};

/// File name `abgp init` writes and `abgp run` looks for in a directory.
pub const CONFIG_FILE_NAME: &str = "node.toml";

/// Why a config file was not accepted.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// Syntax, unknown key or wrong type.
    #[error("{path}:{line}:{column}: {key}: {message}")]
    Parse {
        path: PathBuf,
        key: String,
        line: usize,
        column: usize,
        message: String,
    },
    /// A value of the right type that makes no sense.
    #[error("{path}: {key}: {message}")]
    Invalid {
        path: PathBuf,
        key: String,
        message: String,
    },
}

/// The ASN setting: derived from the node key, or a number.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum AsnSetting {
    /// The private-range ASN the node key derives (self-certifying).
    #[default]
    Derived,
    Number(Asn),
}

impl<'de> Deserialize<'de> for AsnSetting {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Int(i64),
            Text(String),
        }
        match Raw::deserialize(d)? {
            Raw::Int(n) => u32::try_from(n)
                .map(|n| AsnSetting::Number(Asn(n)))
                .map_err(|_| serde::de::Error::custom(format!("{n} is not a 32-bit AS number"))),
            Raw::Text(s) if s == "derived" => Ok(AsnSetting::Derived),
            Raw::Text(s) => s
                .parse::<Asn>()
                .map(AsnSetting::Number)
                .map_err(|e| serde::de::Error::custom(format!("{e}, or \"derived\""))),
        }
    }
}

impl Serialize for AsnSetting {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            AsnSetting::Derived => s.serialize_str("derived"),
            AsnSetting::Number(a) => s.serialize_u32(a.0),
        }
    }
}

/// Where the node's ASN certificate comes from.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum CertSource {
    /// Self-certifying: the ASN is the one the key derives.
    #[default]
    Derived,
    /// Signed by the node itself for a chosen ASN; peers accept it only
    /// where a neighbour entry pins this node to that ASN.
    SelfSigned,
    /// A certificate file issued by an authority (`abgp asn issue`).
    File(PathBuf),
}

impl<'de> Deserialize<'de> for CertSource {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Ok(match s.as_str() {
            "derived" => CertSource::Derived,
            "self-signed" => CertSource::SelfSigned,
            "" => {
                return Err(serde::de::Error::custom(
                    "expected \"derived\", \"self-signed\" or a certificate file path",
                ));
            }
            _ => CertSource::File(PathBuf::from(s)),
        })
    }
}

impl Serialize for CertSource {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            CertSource::Derived => s.serialize_str("derived"),
            CertSource::SelfSigned => s.serialize_str("self-signed"),
            CertSource::File(p) => s.serialize_str(&p.to_string_lossy()),
        }
    }
}

/// Whether this node serves the Kademlia DHT to others.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum KadMode {
    /// Server on bootstrap nodes, client elsewhere.
    #[default]
    Auto,
    Server,
    Client,
}

/// The admin API address; `"off"` disables it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AdminListen(pub Option<SocketAddr>);

impl Default for AdminListen {
    fn default() -> Self {
        AdminListen(Some(SocketAddr::from(([127, 0, 0, 1], 4180))))
    }
}

impl<'de> Deserialize<'de> for AdminListen {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        if s == "off" {
            return Ok(AdminListen(None));
        }
        s.parse::<SocketAddr>()
            .map(|a| AdminListen(Some(a)))
            .map_err(|_| {
                serde::de::Error::custom(format!(
                    "{s:?} is not an address like \"127.0.0.1:4180\" (or \"off\")"
                ))
            })
    }
}

impl Serialize for AdminListen {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self.0 {
            Some(a) => s.collect_str(&a),
            None => s.serialize_str("off"),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct NodeSection {
    pub asn: AsnSetting,
    pub certificate: CertSource,
    pub federation: String,
    pub key_file: PathBuf,
    pub data_dir: PathBuf,
    pub bootstrap: bool,
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
        }
    }
}

#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct NetworkSection {
    pub listen: Vec<Multiaddr>,
    pub external_addresses: Vec<Multiaddr>,
    pub announce_listen_addresses: bool,
    pub request_timeout_secs: u64,
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
            request_timeout_secs: 30,
            max_connections: 256,
            max_incoming_connections: 128,
            max_pending_incoming: 32,
            max_connections_per_peer: 2,
            max_queued_messages: 1024,
            inbound_buffer_mb: 256,
            inbound_buffer_per_connection_mb: 16,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct SessionSection {
    pub hold_time_secs: u16,
    pub graceful_restart_secs: u16,
    pub max_routes_per_update: usize,
    /// Reconnect back-off after a session fails: the first delay, doubled
    /// (with jitter) per failure up to the cap.
    pub connect_retry_min_secs: u64,
    pub connect_retry_max_secs: u64,
}

impl Default for SessionSection {
    fn default() -> Self {
        SessionSection {
            hold_time_secs: 90,
            graceful_restart_secs: 120,
            max_routes_per_update: 1000,
            connect_retry_min_secs: 1,
            connect_retry_max_secs: 60,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct DiscoverySection {
    pub mdns: bool,
    pub mdns_query_interval_secs: u64,
    pub kademlia: bool,
    pub kademlia_mode: KadMode,
    pub bootstrap: Vec<Multiaddr>,
    pub query_interval_secs: u64,
    pub max_auto_peers: usize,
    /// Routes a discovered peer may have accepted before its session is
    /// reset (its max-prefix).
    pub auto_peer_max_prefix: u32,
    /// An auto peer up this long with no accepted route may lose its slot
    /// to a waiting member.
    pub auto_peer_idle_secs: u64,
    pub auto_peer_down_secs: u64,
    pub cert_failure_cooldown_secs: u64,
}

impl Default for DiscoverySection {
    fn default() -> Self {
        DiscoverySection {
            mdns: true,
            mdns_query_interval_secs: 30,
            kademlia: true,
            kademlia_mode: KadMode::Auto,
            bootstrap: Vec::new(),
            query_interval_secs: 60,
            max_auto_peers: 8,
            auto_peer_max_prefix: 10_000,
            auto_peer_idle_secs: 600,
            auto_peer_down_secs: 300,
            cert_failure_cooldown_secs: 3600,
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
    pub certificate_validity_days: u32,
    pub route_signature_validity_secs: u64,
    /// Signature checks one peer may cause per second (bursts of 5x).
    pub verify_checks_per_peer_per_sec: u32,
    /// Bad signatures after which the rest of an UPDATE is dropped unchecked.
    pub max_bad_signatures_per_update: usize,
    pub anchors: Vec<AnchorConfig>,
}

impl Default for TrustSection {
    fn default() -> Self {
        TrustSection {
            accept_derived: true,
            verify_routes: true,
            certificate_validity_days: 365,
            route_signature_validity_secs: 86_400,
            verify_checks_per_peer_per_sec: 20_000,
            max_bad_signatures_per_update: 16,
            anchors: Vec::new(),
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
    pub listen: AdminListen,
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
            listen: AdminListen::default(),
            token_file: PathBuf::from(crate::admin::token::TOKEN_FILE_NAME),
            allowed_hosts: Vec::new(),
            allowed_origins: Vec::new(),
        }
    }
}

/// The MCP front's address; `"off"` disables it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct McpListen(pub Option<SocketAddr>);

impl Default for McpListen {
    fn default() -> Self {
        McpListen(Some(SocketAddr::from(([127, 0, 0, 1], 4181))))
    }
}

impl<'de> Deserialize<'de> for McpListen {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        if s == "off" {
            return Ok(McpListen(None));
        }
        s.parse::<SocketAddr>()
            .map(|a| McpListen(Some(a)))
            .map_err(|_| {
                serde::de::Error::custom(format!(
                    "{s:?} is not an address like \"127.0.0.1:4181\" (or \"off\")"
                ))
            })
    }
}

impl Serialize for McpListen {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self.0 {
            Some(a) => s.collect_str(&a),
            None => s.serialize_str("off"),
        }
    }
}

/// `[mcp]`: the MCP front and call tunnelling. Keys are kebab-case like the
/// `[[agents]]` and `[[access]]` entries of the same release.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default, rename_all = "kebab-case")]
pub struct McpSection {
    /// The streamable HTTP front (`http://<listen>/mcp`).
    pub listen: McpListen,
    /// Required by clients as `Authorization: Bearer ...` when set;
    /// required to be set when `listen` is not a loopback address.
    pub bearer_token: Option<BearerToken>,
    /// Host names accepted besides loopback ones while `listen` is a
    /// loopback address (elsewhere the token guards the front).
    pub allowed_hosts: Vec<String>,
    /// Browser origins allowed to use the front; any other `Origin` gets
    /// 403 (none by default: MCP clients that are not pages send none).
    pub allowed_origins: Vec<String>,
    /// Deadline of a call whose client sets none.
    pub call_timeout_secs: u64,
    /// Hops a call may take before it is refused.
    pub hop_limit: u8,
    /// Communities this node claims for its callers (signed into calls;
    /// origins' `[[access]]` rules may match them).
    pub caller_communities: Vec<Community>,
    /// What the origin does when no `[[access]]` rule applies.
    pub access_default: AccessAction,
    /// How long a CALL's answer waits for the result before it is answered
    /// "accepted" (short calls come back inline).
    pub answer_hold_ms: u64,
    /// Calls in flight at this node before new ones are refused.
    pub max_calls: usize,
    /// Slots of `max-calls` only the local front may use (default: a
    /// tenth).
    pub front_reserved_calls: Option<usize>,
    /// Calls in flight from one peer, and sent to one peer (default: a
    /// quarter of what peers may use).
    pub max_calls_per_peer: Option<usize>,
    /// Calls in flight for one caller (default: a quarter of the per-peer
    /// share).
    pub max_calls_per_caller: Option<usize>,
    /// CALLs per second one peer may send (bursts of twice as many).
    pub max_call_rate_per_peer: u32,
    /// Call frames in flight from one peer, in MiB.
    pub max_call_bytes_per_peer_mb: usize,
    /// One call-protocol message not answered in this time fails the call
    /// on that hop.
    pub call_request_timeout_secs: u64,
    /// Call-protocol streams per connection.
    pub max_concurrent_calls: usize,
    /// Spread transit calls over equally good paths too.
    pub balance_transit: bool,
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
            listen: McpListen::default(),
            bearer_token: None,
            allowed_hosts: Vec::new(),
            allowed_origins: Vec::new(),
            call_timeout_secs: 60,
            hop_limit: 16,
            caller_communities: Vec::new(),
            access_default: AccessAction::Allow,
            answer_hold_ms: 1000,
            max_calls: 10_000,
            front_reserved_calls: None,
            max_calls_per_peer: None,
            max_calls_per_caller: None,
            max_call_rate_per_peer: 5000,
            max_call_bytes_per_peer_mb: 64,
            call_request_timeout_secs: 30,
            max_concurrent_calls: 1024,
            balance_transit: false,
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
    pub stall_secs: u64,
}

impl Default for StoreSection {
    fn default() -> Self {
        StoreSection {
            cache_capacity_mb: 64,
            min_free_mb: 64,
            stall_secs: 60,
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
    #[serde(default)]
    pub hold_time_secs: Option<u16>,
    #[serde(default)]
    pub max_prefix: Option<u32>,
    #[serde(default)]
    pub rr_client: bool,
    #[serde(default)]
    pub description: String,
    /// Reconnect back-off for this neighbour; default: `[session]`'s.
    #[serde(default)]
    pub connect_retry_min_secs: Option<u64>,
    #[serde(default)]
    pub connect_retry_max_secs: Option<u64>,
}

impl NeighborConfig {
    /// The reconnect back-off (first delay, cap) for this neighbour.
    pub fn connect_retry(&self, session: &SessionSection) -> (u64, u64) {
        (
            self.connect_retry_min_secs
                .unwrap_or(session.connect_retry_min_secs),
            self.connect_retry_max_secs
                .unwrap_or(session.connect_retry_max_secs),
        )
    }
}

/// Checks a reconnect back-off; the error names the offending key.
fn check_backoff(min: u64, max: u64, prefix: &str) -> Result<(), (String, String)> {
    if min == 0 {
        return Err((
            format!("{prefix}connect_retry_min_secs"),
            "must be at least 1".into(),
        ));
    }
    if max < min {
        return Err((
            format!("{prefix}connect_retry_max_secs"),
            format!("{max} is below connect_retry_min_secs ({min})"),
        ));
    }
    if max > 86_400 {
        return Err((
            format!("{prefix}connect_retry_max_secs"),
            format!("{max} is over a day (86400)"),
        ));
    }
    Ok(())
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
    pub discovery: DiscoverySection,
    pub trust: TrustSection,
    pub policy: PolicySection,
    pub admin: AdminSection,
    pub store: StoreSection,
    pub log: LogSection,
    #[serde(rename = "neighbor")]
    pub neighbors: Vec<NeighborConfig>,
    pub originate: Vec<OriginateConfig>,
    pub mcp: McpSection,
    /// MCP agents this node hosts, checked by [`AgentConfig`] (see
    /// docs/mcp.md); kept as written here, read with
    /// [`NodeConfig::agent_configs`].
    pub agents: Vec<toml::Value>,
    /// Who may call the tools this node originates (see
    /// [`crate::core::access`]).
    pub access: Vec<AccessRuleConfig>,
}

/// A parsed and checked config plus the directory its paths are relative to.
#[derive(Debug, Clone)]
pub struct LoadedConfig {
    pub config: NodeConfig,
    pub path: PathBuf,
    pub dir: PathBuf,
}

impl LoadedConfig {
    /// A path from the file, made absolute against the file's directory.
    pub fn resolve(&self, p: &Path) -> PathBuf {
        let full = if p.is_absolute() {
            p.to_path_buf()
        } else {
            self.dir.join(p)
        };
        // `components` drops the `.` segments (`data_dir = "."`).
        full.components().collect()
    }

    pub fn key_path(&self) -> PathBuf {
        self.resolve(&self.config.node.key_file)
    }

    pub fn data_dir(&self) -> PathBuf {
        self.resolve(&self.config.node.data_dir)
    }

    pub fn store_dir(&self) -> PathBuf {
        self.data_dir().join("store")
    }

    pub fn admin_token_path(&self) -> PathBuf {
        self.resolve(&self.config.admin.token_file)
    }

    pub fn policy_path(&self) -> Option<PathBuf> {
        let f = &self.config.policy.file;
        (!f.as_os_str().is_empty()).then(|| self.resolve(f))
    }
}

impl NodeConfig {
    /// The `[[agents]]` entries, validated.
    pub fn agent_configs(&self) -> Result<Vec<AgentConfig>, (String, String)> {
        let mut out = Vec::with_capacity(self.agents.len());
        for (i, v) in self.agents.iter().enumerate() {
            let a = AgentConfig::deserialize(v.clone())
                .map_err(|e| (format!("agents[{i}]"), e.to_string()))?;
            out.push(a);
        }
        crate::mcp::config::validate_agents(&out).map_err(|e| ("agents".into(), e.to_string()))?;
        Ok(out)
    }

    /// Key paths of the settings in this file that hold secrets (the
    /// front's bearer token; agents' tokens, headers and environment), for
    /// the warning about a config file others can read.
    pub fn secret_keys(&self) -> Vec<String> {
        let mut out = Vec::new();
        if self.mcp.bearer_token.is_some() {
            out.push("mcp.bearer-token".to_string());
        }
        for (i, a) in self.agents.iter().enumerate() {
            for k in ["bearer-token", "headers", "env"] {
                let set = match a.get(k) {
                    Some(toml::Value::Table(t)) => !t.is_empty(),
                    Some(toml::Value::String(s)) => !s.is_empty(),
                    Some(_) => true,
                    None => false,
                };
                if set {
                    out.push(format!("agents[{i}].{k}"));
                }
            }
        }
        out
    }

    /// The `[[access]]` rules compiled for a node of AS `own`.
    pub fn access_policy(&self, own: Asn) -> Result<AccessPolicy, (String, String)> {
        AccessPolicy::compile(own, &self.access, self.mcp.access_default)
            .map_err(|e| ("access".into(), e.to_string()))
    }

    /// Reads, parses and checks a config file.
    pub fn load(path: &Path) -> Result<LoadedConfig, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        let config = Self::parse(&text, path)?;
        let dir = path
            .parent()
            .map(Path::to_path_buf)
            .filter(|d| !d.as_os_str().is_empty())
            .unwrap_or_else(|| PathBuf::from("."));
        // Absolute, so logs and the store path do not depend on the cwd.
        let dir = std::path::absolute(&dir).unwrap_or(dir);
        Ok(LoadedConfig {
            config,
            path: path.to_path_buf(),
            dir,
        })
    }

    /// Parses and checks config text; `path` is only used in errors.
    pub fn parse(text: &str, path: &Path) -> Result<NodeConfig, ConfigError> {
        let de = toml::Deserializer::new(text);
        let config: NodeConfig = serde_path_to_error::deserialize(de).map_err(|e| {
            let key = e.path().to_string();
            let inner = e.into_inner();
            let (line, column) = inner
                .span()
                .map(|s| line_col(text, s.start))
                .unwrap_or((0, 0));
            ConfigError::Parse {
                path: path.to_path_buf(),
                key: if key == "." {
                    "(top level)".into()
                } else {
                    key
                },
                line,
                column,
                message: inner.message().to_string(),
            }
        })?;
        config
            .validate()
            .map_err(|(key, message)| ConfigError::Invalid {
                path: path.to_path_buf(),
                key,
                message,
            })?;
        Ok(config)
    }

    /// Checks what the types alone do not. The error is (key path, message).
    pub fn validate(&self) -> Result<(), (String, String)> {
        let err = |k: &str, m: String| Err((k.to_string(), m));
        let fed = &self.node.federation;
        if fed.is_empty()
            || fed.len() > 64
            || !fed
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
        {
            return err(
                "node.federation",
                format!("{fed:?} must be 1 to 64 characters of letters, digits, '-', '_', '.'"),
            );
        }
        if self.node.certificate == CertSource::Derived
            && matches!(self.node.asn, AsnSetting::Number(_))
        {
            return err(
                "node.certificate",
                "a derived certificate is only for asn = \"derived\"; use \"self-signed\" \
                 (peers pin you) or an issued certificate file for a chosen ASN"
                    .into(),
            );
        }
        if let AsnSetting::Number(a) = self.node.asn
            && a.0 == 0
        {
            return err("node.asn", "AS 0 is reserved (RFC 7607)".into());
        }
        let hold = self.session.hold_time_secs;
        if hold == 1 || hold == 2 {
            return err(
                "session.hold_time_secs",
                format!("{hold} is not allowed: 0 (no keepalives) or at least 3"),
            );
        }
        check_backoff(
            self.session.connect_retry_min_secs,
            self.session.connect_retry_max_secs,
            "session.",
        )?;
        if self.session.max_routes_per_update == 0 {
            return err("session.max_routes_per_update", "must be at least 1".into());
        }
        if self.network.request_timeout_secs == 0 {
            return err("network.request_timeout_secs", "must be at least 1".into());
        }
        if self.network.max_connections_per_peer == 0 {
            return err(
                "network.max_connections_per_peer",
                "must be at least 1".into(),
            );
        }
        if self.network.max_queued_messages < 4 {
            return err("network.max_queued_messages", "must be at least 4".into());
        }
        // A connection must hold at least one frame of the largest kind.
        let frame_mb = crate::wire::Limits::default()
            .max_read_bytes()
            .div_ceil(1 << 20);
        if self.network.inbound_buffer_per_connection_mb < frame_mb {
            return err(
                "network.inbound_buffer_per_connection_mb",
                format!("must be at least {frame_mb} (one call frame)"),
            );
        }
        if self.network.inbound_buffer_mb < self.network.inbound_buffer_per_connection_mb {
            return err(
                "network.inbound_buffer_mb",
                "must be at least inbound_buffer_per_connection_mb".into(),
            );
        }
        if self.discovery.auto_peer_max_prefix == 0 {
            return err(
                "discovery.auto_peer_max_prefix",
                "must be at least 1".into(),
            );
        }
        if self.discovery.query_interval_secs == 0 {
            return err("discovery.query_interval_secs", "must be at least 1".into());
        }
        if self.discovery.mdns_query_interval_secs == 0 {
            return err(
                "discovery.mdns_query_interval_secs",
                "must be at least 1".into(),
            );
        }
        for (i, a) in self.discovery.bootstrap.iter().enumerate() {
            if crate::identity::peer_of_addr(a).is_none() {
                return err(
                    &format!("discovery.bootstrap[{i}]"),
                    format!(
                        "{a} must end with /p2p/<peer id> so the bootstrap node is authenticated"
                    ),
                );
            }
        }
        if self.trust.certificate_validity_days == 0 {
            return err(
                "trust.certificate_validity_days",
                "must be at least 1".into(),
            );
        }
        if self.store.stall_secs < 5 {
            return err("store.stall_secs", "must be at least 5".into());
        }
        if self.trust.verify_checks_per_peer_per_sec == 0 {
            return err(
                "trust.verify_checks_per_peer_per_sec",
                "must be at least 1".into(),
            );
        }
        if self.trust.route_signature_validity_secs < 60 {
            return err(
                "trust.route_signature_validity_secs",
                "must be at least 60".into(),
            );
        }
        for (i, a) in self.trust.anchors.iter().enumerate() {
            if a.key.parse::<crate::core::NodeId>().is_err() {
                return err(
                    &format!("trust.anchors[{i}].key"),
                    "must be the authority's public key as 64 hex digits".into(),
                );
            }
            for (j, r) in a.asns.iter().enumerate() {
                if parse_asn_range(r).is_none() {
                    return err(
                        &format!("trust.anchors[{i}].asns[{j}]"),
                        format!("{r:?} is not an ASN or a range like \"65000-65100\""),
                    );
                }
            }
        }
        if let Some(a) = self.admin.listen.0
            && !a.ip().is_loopback()
        {
            return err(
                "admin.listen",
                format!(
                    "{a} is not a loopback address; the admin API is plain HTTP and can start programs, so it listens on loopback only"
                ),
            );
        }
        if self.admin.token_file.as_os_str().is_empty() {
            return err("admin.token_file", "must name a file".into());
        }
        for (i, o) in self.admin.allowed_origins.iter().enumerate() {
            check_origin(o).map_err(|m| (format!("admin.allowed_origins[{i}]"), m))?;
        }
        for (i, o) in self.mcp.allowed_origins.iter().enumerate() {
            check_origin(o).map_err(|m| (format!("mcp.allowed-origins[{i}]"), m))?;
        }
        let mut seen = std::collections::HashSet::new();
        for (i, n) in self.neighbors.iter().enumerate() {
            let key = |f: &str| format!("neighbor[{i}].{f}");
            if !seen.insert(n.peer_id) {
                return err(&key("peer_id"), format!("{} is listed twice", n.peer_id));
            }
            if crate::identity::node_id_of(&n.peer_id).is_err() {
                return err(
                    &key("peer_id"),
                    format!(
                        "{} is not an ed25519 peer id (agent-bgp nodes use ed25519 keys)",
                        n.peer_id
                    ),
                );
            }
            if n.asn == 0 {
                return err(&key("asn"), "AS 0 is reserved (RFC 7607)".into());
            }
            match &n.address {
                None if !n.passive => {
                    return err(&key("address"), "required unless passive = true".into());
                }
                Some(a) => {
                    if let Some(p) = crate::identity::peer_of_addr(a)
                        && p != n.peer_id
                    {
                        return err(
                            &key("address"),
                            format!("names peer {p}, but peer_id is {}", n.peer_id),
                        );
                    }
                }
                None => {}
            }
            if let Some(h) = n.hold_time_secs
                && (h == 1 || h == 2)
            {
                return err(
                    &key("hold_time_secs"),
                    format!("{h} is not allowed: 0 or at least 3"),
                );
            }
            if n.connect_retry_min_secs.is_some() || n.connect_retry_max_secs.is_some() {
                let (min, max) = n.connect_retry(&self.session);
                check_backoff(min, max, &key(""))?;
            }
        }
        if let Some(a) = self.mcp.listen.0
            && !a.ip().is_loopback()
            && self.mcp.bearer_token.is_none()
        {
            return err(
                "mcp.listen",
                format!(
                    "{a} is not a loopback address: set mcp.bearer-token so clients must authenticate"
                ),
            );
        }
        if self.mcp.call_timeout_secs == 0 {
            return err("mcp.call-timeout-secs", "must be at least 1".into());
        }
        if self.mcp.hop_limit == 0 {
            return err("mcp.hop-limit", "must be at least 1".into());
        }
        if self.mcp.call_request_timeout_secs == 0 {
            return err("mcp.call-request-timeout-secs", "must be at least 1".into());
        }
        if self.mcp.answer_hold_ms >= self.mcp.call_request_timeout_secs.saturating_mul(1000) / 2 {
            return err(
                "mcp.answer-hold-ms",
                "must be less than half of call-request-timeout-secs".into(),
            );
        }
        if self.mcp.max_calls == 0 || self.mcp.max_concurrent_calls == 0 {
            return err("mcp.max-calls", "limits must be at least 1".into());
        }
        let q = self.mcp.call_quotas();
        if q.front_reserve >= q.max_calls {
            return err(
                "mcp.front-reserved-calls",
                "must leave some of max-calls to peers".into(),
            );
        }
        if q.per_peer == 0 || q.per_caller == 0 || q.peer_rate < 1.0 || q.peer_bytes == 0 {
            return err(
                "mcp.max-calls-per-peer",
                "per-peer and per-caller limits must be at least 1".into(),
            );
        }
        self.agent_configs()?;
        // The ASN is only known once the key is loaded; "own" compiles to
        // any ASN here, so this checks everything but that.
        self.access_policy(Asn(1))?;
        let mut prefixes = std::collections::HashSet::new();
        for (i, o) in self.originate.iter().enumerate() {
            if !prefixes.insert(o.prefix.clone()) {
                return err(
                    &format!("originate[{i}].prefix"),
                    format!("{} is originated twice", o.prefix),
                );
            }
            if o.agent.is_empty() || o.agent.len() > 128 {
                return err(
                    &format!("originate[{i}].agent"),
                    "must be 1 to 128 bytes".into(),
                );
            }
            for (j, c) in o.capabilities.iter().enumerate() {
                if c.is_empty() || c.len() > 128 {
                    return err(
                        &format!("originate[{i}].capabilities[{j}]"),
                        "must be 1 to 128 bytes".into(),
                    );
                }
            }
        }
        Ok(())
    }
}

/// Reads and compiles the policy file at `path` (the core compiles text;
/// reading files is the config's). Errors name the path as given.
pub fn load_policy_file(
    path: &Path,
) -> Result<crate::core::policy::PolicySet, crate::core::policy::PolicyLoadError> {
    let text = std::fs::read_to_string(path).map_err(|source| {
        crate::core::policy::PolicyLoadError::Io {
            path: path.to_path_buf(),
            source,
        }
    })?;
    crate::core::policy::PolicySet::from_toml_str(&text, &path.display().to_string())
}

/// An allowed browser origin: `scheme://host[:port]` (no path), or
/// `"null"`.
fn check_origin(o: &str) -> Result<(), String> {
    if o == "null" {
        return Ok(());
    }
    let ok = o.parse::<http::Uri>().ok().is_some_and(|u| {
        u.scheme().is_some()
            && u.authority().is_some()
            && u.path_and_query()
                .is_none_or(|p| p.as_str() == "/" || p.as_str().is_empty())
    });
    if ok && !o.ends_with('/') {
        Ok(())
    } else {
        Err(format!(
            "{o:?} is not an origin like \"http://localhost:5173\" (scheme, host, optional port, no path)"
        ))
    }
}

/// `"65000-65100"` or `"65001"`.
pub fn parse_asn_range(s: &str) -> Option<std::ops::RangeInclusive<u32>> {
    let (a, b) = match s.split_once('-') {
        Some((a, b)) => (a.trim(), b.trim()),
        None => (s.trim(), s.trim()),
    };
    let a: Asn = a.parse().ok()?;
    let b: Asn = b.parse().ok()?;
    (a.0 <= b.0).then_some(a.0..=b.0)
}

fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let before = &text[..offset.min(text.len())];
    let line = before.matches('\n').count() + 1;
    let column = before
        .rfind('\n')
        .map_or(before.len(), |i| before.len() - i - 1)
        + 1;
    (line, column)
}

/// The commented `node.toml` that `abgp init` writes. Every option appears
/// with its default value; `asn` and `federation` are filled in.
pub fn template(asn: AsnSetting, federation: &str) -> String {
    let (asn_line, cert_line) = match asn {
        AsnSetting::Derived => ("asn = \"derived\"".to_string(), "certificate = \"derived\""),
        AsnSetting::Number(a) => (format!("asn = {}", a.0), "certificate = \"self-signed\""),
    };
    TEMPLATE
        .replace("@ASN@", &asn_line)
        .replace("@CERT@", cert_line)
        .replace("@FEDERATION@", &format!("{federation:?}"))
}

const TEMPLATE: &str = r#"# agent-bgp node configuration (written by `abgp init`).
# Every option is listed with its default. Relative paths are relative to
# this file's directory. Unknown keys are errors. Docs: docs/operations.md.

[node]
# This node's AS number: "derived" (a private-range ASN computed from the
# node key; self-certifying, no authority needed) or a number.
@ASN@
# Where the ASN certificate comes from: "derived" (only with asn = "derived"),
# "self-signed" (peers must pin this node's peer id to the ASN in a
# [[neighbor]] entry), or the path of a certificate file issued by an
# authority.
@CERT@
# Nodes only peer with members of the same federation.
federation = @FEDERATION@
# The node's ed25519 key (its PeerId). Created by `abgp init`, never overwritten.
key_file = "node.key"
# Where the RIB store lives (data_dir/store).
data_dir = "."
# A community bootstrap node: serves the Kademlia DHT, originates nothing.
bootstrap = false

[network]
# libp2p listen addresses (TCP and QUIC). Port 0 picks a free port.
listen = ["/ip4/0.0.0.0/tcp/4100", "/ip4/0.0.0.0/udp/4100/quic-v1"]
# Addresses other nodes should dial, announced through Kademlia.
external_addresses = []
# Also announce the addresses we actually listen on.
announce_listen_addresses = true
# A routing message not acknowledged in this time resets the session.
request_timeout_secs = 30
# Connection limits.
max_connections = 256
max_incoming_connections = 128
max_pending_incoming = 32
max_connections_per_peer = 2
# Messages queued for one peer before it is considered stuck and dropped.
max_queued_messages = 1024
# Memory for inbound frames being read or waiting to be handled, all peers
# together and per connection; a read that would go over is refused.
inbound_buffer_mb = 256
inbound_buffer_per_connection_mb = 16

[session]
# Silence tolerated before a session is torn down (0, or at least 3).
# Keepalives go out every third of it.
hold_time_secs = 90
# How long peers keep our routes as stale while we restart (RFC 4724);
# also how long we keep restored routes before purging. 0 disables.
graceful_restart_secs = 120
# Largest UPDATE the node sends; bigger batches are split.
max_routes_per_update = 1000
# Reconnect back-off after a session fails: the first delay, doubled with
# jitter per failure up to the cap (reset after a stable session).
connect_retry_min_secs = 1
connect_retry_max_secs = 60

[discovery]
# Find federation members on the local network (does not work on loopback).
mdns = true
mdns_query_interval_secs = 30
# Find federation members through the Kademlia DHT.
kademlia = true
# "auto" (server on bootstrap nodes, client elsewhere), "server" or "client".
kademlia_mode = "auto"
# Bootstrap nodes: multiaddrs ending in /p2p/<peer id>.
bootstrap = []
# How often to re-announce ourselves and look for members.
query_interval_secs = 60
# Sessions with discovered (not configured) peers; configured neighbours
# are always peered and do not count.
max_auto_peers = 8
# The max-prefix of discovered peers: more accepted routes reset the
# session (discovered peers must also keep a hold time: 0 is refused).
auto_peer_max_prefix = 10000
# With every slot taken and a member waiting, an auto peer that misbehaved,
# or that has been up this long with no accepted route, gives its slot up
# (the newest of those first).
auto_peer_idle_secs = 600
# A discovered peer whose session stays down this long is dropped.
auto_peer_down_secs = 300
# A node whose ASN certificate fails is not auto-peered again for this long.
cert_failure_cooldown_secs = 3600

[trust]
# Accept peers whose ASN is derived from their key.
accept_derived = true
# Check origin and path signatures of received routes; bad ones are dropped.
verify_routes = true
# Lifetime of the certificate made at start for derived and self-signed ASNs.
certificate_validity_days = 365
# Lifetime of origin signatures on our routes (re-signed at half-life).
route_signature_validity_secs = 86400
# Signature checks (off the node task) one peer may cause per second, in
# bursts of five times as many; beyond, its UPDATEs wait.
verify_checks_per_peer_per_sec = 20000
# Bad signatures in one UPDATE after which its other routes are dropped
# unchecked.
max_bad_signatures_per_update = 16
# Authorities whose issued ASN certificates we trust:
# anchors = [{ name = "acme", key = "<64 hex digits>", asns = ["65000-65100"] }]
anchors = []

[policy]
# Import/export policy file (docs/policy.md). Empty: RFC 8212 defaults,
# which accept nothing from and announce nothing to other ASes.
file = ""

[admin]
# The admin HTTP API (loopback only). "off" disables it.
listen = "127.0.0.1:4180"
# Every request must send `Authorization: Bearer <token>` with the token in
# this file (0600; created by `abgp init` or at first start; the CLI reads it).
token_file = "admin.token"
# Host names accepted besides localhost, 127.0.0.0/8 and ::1 (DNS rebinding
# guard).
allowed_hosts = []
# Browser origins allowed to call the API; requests with any other Origin
# header are refused.
allowed_origins = []

[store]
# sled page cache.
cache_capacity_mb = 64
# Space kept free on the store's disk: a write that would use it stops the
# node cleanly (everything acknowledged is kept; start again once there is
# space). sled cannot recover reliably from a disk that filled up.
min_free_mb = 64
# A write that is not durable after this long stops the node.
stall_secs = 60

[log]
# Tracing filter; the RUST_LOG environment variable overrides it.
level = "info"

# Configured neighbours (repeat the block for each):
# [[neighbor]]
# peer_id = "12D3KooW..."            # pinned: only this key is accepted
# address = "/ip4/192.0.2.10/tcp/4100"
# asn = 65001                        # the peer must open with this ASN
# passive = false                    # true: never dial, wait for the peer
# hold_time_secs = 90                # default: [session] hold_time_secs
# max_prefix = 10000                 # default: no limit
# rr_client = false
# description = ""
# connect_retry_min_secs = 1         # default: [session] connect_retry_min_secs
# connect_retry_max_secs = 60        # default: [session] connect_retry_max_secs

# Static routes, like BGP network statements (repeat for each):
# [[originate]]
# prefix = "tools/weather/*"
# agent = "weather"                  # default "static"
# capabilities = ["forecast"]
# communities = ["no-export"]
# med = 0

[mcp]
# The MCP front for local clients: streamable HTTP at http://<listen>/mcp
# ("off" disables it). `abgp mcp --config node.toml` serves it on stdio.
listen = "127.0.0.1:4181"
# Clients must send `Authorization: Bearer <token>` when set; required when
# listen is not a loopback address. Keep this file 0600 if you set it.
# bearer-token = "..."
# Host names accepted besides localhost, 127.0.0.1 and ::1 (on loopback).
allowed-hosts = []
# Browser origins allowed to use the front; any other Origin gets 403.
allowed-origins = []
# Deadline of a tool call whose client gives none.
call-timeout-secs = 60
# Hops a call may take.
hop-limit = 16
# Communities this node claims for its callers (origins may match them in
# their [[access]] rules).
caller-communities = []
# At the origin, when no [[access]] rule applies: "allow" (the call came
# along routes we advertised) or "deny".
access-default = "allow"
# A CALL's answer waits this long for the result (short calls come back in
# one round trip per hop); longer calls are answered "accepted".
answer-hold-ms = 1000
# Calls in flight at this node before new ones are refused.
max-calls = 10000
# Of those: slots only the local front may use (default: a tenth), calls
# in flight from or to one peer (default: a quarter of the rest), and for
# one caller (default: a quarter of the per-peer share).
# front-reserved-calls = 1000
# max-calls-per-peer = 2250
# max-calls-per-caller = 562
# CALLs per second one peer may send (bursts of twice as many).
max-call-rate-per-peer = 5000
# Call frames (arguments) in flight from one peer, in MiB.
max-call-bytes-per-peer-mb = 64
# One call-protocol message not answered in this time fails that hop.
call-request-timeout-secs = 30
# Call-protocol streams per connection.
max-concurrent-calls = 1024
# Spread transit calls over equally good paths too (front calls can ask).
balance-transit = false

# MCP agents this node hosts (repeat for each; docs/mcp.md lists every key):
# [[agents]]
# id = "time"
# prefix = "utility/time/*"
# capabilities = ["time"]
# command = "mcp-server-time"        # or url = "https://..." (+ bearer-token)
# args = []

# Who may call the tools this node originates (first matching rule wins):
# [[access]]
# name = "finance only"
# prefixes = ["finance/*"]
# caller-asns = [65001, "own"]
# caller-communities = ["finance"]
# any-caller = false
# action = "allow"                   # or "deny"
"#;

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<NodeConfig, ConfigError> {
        NodeConfig::parse(text, Path::new("node.toml"))
    }

    #[test]
    fn template_parses_to_the_defaults() {
        let c = parse(&template(AsnSetting::Derived, "default")).unwrap();
        assert_eq!(c, NodeConfig::default());
    }

    #[test]
    fn template_with_a_number_uses_a_self_signed_certificate() {
        let c = parse(&template(AsnSetting::Number(Asn(65001)), "acme")).unwrap();
        assert_eq!(c.node.asn, AsnSetting::Number(Asn(65001)));
        assert_eq!(c.node.certificate, CertSource::SelfSigned);
        assert_eq!(c.node.federation, "acme");
    }

    #[test]
    fn empty_file_is_all_defaults() {
        assert_eq!(parse("").unwrap(), NodeConfig::default());
    }

    #[test]
    fn unknown_key_is_an_error_with_its_path_and_line() {
        let e = parse("[network]\nlisten = []\nlisten_on = 3\n").unwrap_err();
        let s = e.to_string();
        assert!(matches!(e, ConfigError::Parse { line: 3, .. }), "{s}");
        assert!(s.contains("listen_on"), "{s}");
        assert!(s.contains("network"), "{s}");
    }

    #[test]
    fn wrong_type_names_the_key_path() {
        let e = parse("[[neighbor]]\npeer_id = \"x\"\nasn = 1\n").unwrap_err();
        let s = e.to_string();
        assert!(s.contains("neighbor[0].peer_id"), "{s}");
    }

    #[test]
    fn bad_values_name_the_key_path() {
        let cases = [
            ("[session]\nhold_time_secs = 2\n", "session.hold_time_secs"),
            (
                "[session]\nconnect_retry_min_secs = 0\n",
                "session.connect_retry_min_secs",
            ),
            (
                "[session]\nconnect_retry_min_secs = 30\nconnect_retry_max_secs = 10\n",
                "session.connect_retry_max_secs",
            ),
            ("[node]\nfederation = \"a b\"\n", "node.federation"),
            ("[node]\nasn = 65001\n", "node.certificate"),
            ("[admin]\nlisten = \"0.0.0.0:80\"\n", "admin.listen"),
            (
                "[discovery]\nbootstrap = [\"/ip4/1.2.3.4/tcp/1\"]\n",
                "discovery.bootstrap[0]",
            ),
            (
                "[[originate]]\nprefix = \"a/b\"\n[[originate]]\nprefix = \"a/b\"\n",
                "originate[1].prefix",
            ),
        ];
        for (text, key) in cases {
            match parse(text) {
                Err(ConfigError::Invalid { key: k, .. }) => assert_eq!(k, key, "{text}"),
                other => panic!("{text}: expected Invalid at {key}, got {other:?}"),
            }
        }
    }

    #[test]
    fn a_neighbor_may_have_its_own_reconnect_backoff() {
        let id = crate::identity::NodeKey::from_seed(&[1; 32])
            .peer_id()
            .unwrap();
        let base = format!(
            "[session]\nconnect_retry_max_secs = 120\n[[neighbor]]\npeer_id = \"{id}\"\nasn = 65001\npassive = true\n"
        );
        let c = parse(&base).unwrap();
        assert_eq!(c.neighbors[0].connect_retry(&c.session), (1, 120));
        let own = parse(&format!("{base}connect_retry_min_secs = 5\n")).unwrap();
        assert_eq!(own.neighbors[0].connect_retry(&own.session), (5, 120));
        let bad = format!("{base}connect_retry_min_secs = 300\n");
        assert!(
            matches!(parse(&bad), Err(ConfigError::Invalid { key, .. }) if key == "neighbor[0].connect_retry_max_secs"),
            "{:?}",
            parse(&bad)
        );
    }

    #[test]
    fn neighbor_needs_an_address_unless_passive_and_a_matching_p2p_suffix() {
        let id = crate::identity::NodeKey::from_seed(&[1; 32])
            .peer_id()
            .unwrap();
        let other = crate::identity::NodeKey::from_seed(&[2; 32])
            .peer_id()
            .unwrap();
        let no_addr = format!("[[neighbor]]\npeer_id = \"{id}\"\nasn = 65001\n");
        assert!(
            matches!(parse(&no_addr), Err(ConfigError::Invalid { key, .. }) if key == "neighbor[0].address")
        );
        let passive = format!("{no_addr}passive = true\n");
        assert!(parse(&passive).is_ok());
        let wrong = format!("{no_addr}address = \"/ip4/127.0.0.1/tcp/1/p2p/{other}\"\n");
        assert!(
            matches!(parse(&wrong), Err(ConfigError::Invalid { key, .. }) if key == "neighbor[0].address")
        );
        let good = format!("{no_addr}address = \"/ip4/127.0.0.1/tcp/1/p2p/{id}\"\n");
        let c = parse(&good).unwrap();
        assert_eq!(c.neighbors[0].asn, 65001);
    }

    #[test]
    fn originate_reads_prefix_capabilities_and_communities() {
        let c = parse(
            "[[originate]]\nprefix = \"tools/x/*\"\ncapabilities = [\"a\"]\ncommunities = [\"no-export\", \"65001:7\"]\n",
        )
        .unwrap();
        let o = &c.originate[0];
        assert_eq!(o.prefix.as_str(), "tools/x/*");
        assert_eq!(o.agent, "static");
        assert_eq!(o.communities.len(), 2);
        let e = parse("[[originate]]\nprefix = \"a//b\"\n").unwrap_err();
        assert!(e.to_string().contains("originate[0].prefix"), "{e}");
    }

    #[test]
    fn asn_ranges_parse() {
        assert_eq!(parse_asn_range("65000-65100"), Some(65000..=65100));
        assert_eq!(parse_asn_range("AS7"), Some(7..=7));
        assert_eq!(parse_asn_range("9-1"), None);
    }

    #[test]
    fn agents_are_checked_and_errors_name_the_entry() {
        let c = parse(
            "[[agents]]\nid = \"echo\"\nprefix = \"utility/echo/*\"\ncommand = \"echo-agent\"\n",
        )
        .unwrap();
        assert_eq!(c.agent_configs().unwrap()[0].id().as_str(), "echo");
        let e = parse("[[agents]]\nid = \"x\"\nprefix = \"a\"\n").unwrap_err();
        assert!(
            matches!(&e, ConfigError::Invalid { key, .. } if key == "agents[0]"),
            "{e}"
        );
    }

    #[test]
    fn mcp_front_off_loopback_needs_a_token() {
        let e = parse("[mcp]\nlisten = \"0.0.0.0:4181\"\n").unwrap_err();
        assert!(
            matches!(&e, ConfigError::Invalid { key, .. } if key == "mcp.listen"),
            "{e}"
        );
        let c = parse("[mcp]\nlisten = \"0.0.0.0:4181\"\nbearer-token = \"t0ken\"\n").unwrap();
        assert!(c.mcp.bearer_token.is_some());
        assert!(
            !format!("{c:?}").contains("t0ken"),
            "the token never shows in Debug"
        );
    }

    #[test]
    fn secret_keys_name_the_settings_that_hold_secrets() {
        let c = parse(
            "[mcp]\nbearer-token = \"t0ken-t0ken\"\n[[agents]]\nid = \"a\"\nprefix = \"a/*\"\ncommand = \"x\"\nenv = { KEY = \"v\" }\n[[agents]]\nid = \"b\"\nprefix = \"b/*\"\ncommand = \"y\"\n",
        )
        .unwrap();
        assert_eq!(c.secret_keys(), vec!["mcp.bearer-token", "agents[0].env"]);
        assert!(parse("").unwrap().secret_keys().is_empty());
    }

    #[test]
    fn origins_must_be_origins() {
        assert!(
            parse("[admin]\nallowed_origins = [\"http://localhost:5173\", \"null\"]\n").is_ok()
        );
        for bad in ["localhost:5173", "http://a/b", "http://a/", "*"] {
            let e = parse(&format!("[mcp]\nallowed-origins = [{bad:?}]\n")).unwrap_err();
            assert!(
                matches!(&e, ConfigError::Invalid { key, .. } if key == "mcp.allowed-origins[0]"),
                "{bad}: {e}"
            );
        }
    }

    #[test]
    fn a_missing_policy_file_is_named() {
        let err = load_policy_file(Path::new("/nonexistent/policy.toml")).unwrap_err();
        assert!(matches!(
            err,
            crate::core::policy::PolicyLoadError::Io { .. }
        ));
        assert!(
            err.to_string()
                .starts_with("/nonexistent/policy.toml: cannot read")
        );
    }

    #[test]
    fn policy_file_errors_start_with_the_path() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("bad.toml");
        std::fs::write(&p, "[[apply]]\nneighbors = [\"x\"]\n").unwrap();
        let e = load_policy_file(&p).unwrap_err().to_string();
        assert!(e.starts_with(&format!("{}:2:14: ", p.display())), "{e}");
    }

    #[test]
    fn access_rules_are_compiled_at_load() {
        let e = parse("[[access]]\nprefixes = [\"a/*\"]\naction = \"deny\"\n").unwrap_err();
        assert!(
            matches!(&e, ConfigError::Invalid { key, .. } if key == "access"),
            "{e}"
        );
        let c = parse("[[access]]\ncaller-asns = [\"own\"]\naction = \"allow\"\n").unwrap();
        assert_eq!(c.access_policy(Asn(7)).unwrap().rule_count(), 1);
    }
}
