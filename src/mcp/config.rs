//! The `[[agents]]` entries of `node.toml`: which MCP servers this node hosts,
//! how to reach them, and which capability prefix their tools are routed under.
//!
//! ```toml
//! [[agents]]
//! id = "time"
//! prefix = "utility/time/*"
//! capabilities = ["time"]
//! communities = ["65001:100", "internal"]
//! command = ".venv/bin/mcp-server-time"   # child process over stdio ...
//! args = ["--local-timezone", "Etc/UTC"]
//! env = { TZ = "Etc/UTC" }
//!
//! [[agents]]
//! id = "search"
//! prefix = "web/search/*"
//! url = "https://search.example/mcp"       # ... or streamable HTTP
//! bearer_token = "s3cret"                  # never logged
//! headers = { "X-Tenant" = "blue" }
//! call_timeout = "2m"
//! ```
//!
//! Parsing validates everything it can (prefix syntax, communities, header
//! names, URL scheme, durations) so a bad file fails at load with the field
//! named, not later at connect time. Whether the command exists or the URL
//! answers is only known when the upstream manager tries; that is reported as
//! an [`AgentEvent::Down`](super::upstream::AgentEvent::Down).
//!
//! Durations are written as a number and a unit: `250ms`, `15s`, `2m`, `1h`.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

use serde::Deserialize;

use crate::core::community::Community;
use crate::core::ids::AgentId;
use crate::core::prefix::{Prefix, PrefixError};

/// Default interval between health checks of a connected agent.
pub const DEFAULT_HEALTH_INTERVAL: Duration = Duration::from_secs(15);
/// Default time an agent has to answer a health check.
pub const DEFAULT_HEALTH_TIMEOUT: Duration = Duration::from_secs(5);
/// Default deadline of a tool call when the caller gives none.
pub const DEFAULT_CALL_TIMEOUT: Duration = Duration::from_secs(60);
/// Default time allowed to start (or reach) an agent, finish the MCP
/// handshake and list its tools.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(30);
/// Default first restart delay after an agent goes down.
pub const DEFAULT_RESTART_BACKOFF_MIN: Duration = Duration::from_millis(500);
/// Default ceiling of the restart delay.
pub const DEFAULT_RESTART_BACKOFF_MAX: Duration = Duration::from_secs(60);
/// Default number of tool calls in flight to one agent at a time.
pub const DEFAULT_MAX_CONCURRENT_CALLS: usize = 32;

/// Longest agent id, in bytes.
pub const MAX_AGENT_ID_LEN: usize = 64;
/// Longest capability tag, in bytes.
pub const MAX_CAPABILITY_LEN: usize = 64;

/// Why an agent entry is invalid. Each variant names the agent (when known)
/// and the field.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AgentConfigError {
    #[error(
        "agent id {0:?} is invalid: use 1 to {MAX_AGENT_ID_LEN} bytes of letters, digits, '-', '_' or '.'"
    )]
    BadId(String),
    #[error("agent {agent:?}: prefix {text:?} is invalid: {source}")]
    BadPrefix {
        agent: String,
        text: String,
        source: PrefixError,
    },
    #[error(
        "agent {agent:?}: capability tag {tag:?} is invalid: use 1 to {MAX_CAPABILITY_LEN} bytes of letters, digits, '-', '_' or '.'"
    )]
    BadCapability { agent: String, tag: String },
    #[error("agent {agent:?}: community {text:?} is invalid: {reason}")]
    BadCommunity {
        agent: String,
        text: String,
        reason: String,
    },
    #[error(
        "agent {0:?}: no transport; set `command` (child process over stdio) or `url` (streamable HTTP)"
    )]
    NoTransport(String),
    #[error(
        "agent {0:?}: both `command` and `url` are set; an agent is either a child process or an HTTP server"
    )]
    TwoTransports(String),
    #[error("agent {agent:?}: `{field}` only applies to {applies_to} agents")]
    FieldNotForTransport {
        agent: String,
        field: &'static str,
        applies_to: &'static str,
    },
    #[error("agent {0:?}: `command` is empty")]
    EmptyCommand(String),
    #[error("agent {agent:?}: url {url:?} is invalid: {reason}")]
    BadUrl {
        agent: String,
        url: String,
        reason: String,
    },
    #[error("agent {agent:?}: header {name:?} is invalid: {reason}")]
    BadHeader {
        agent: String,
        name: String,
        reason: String,
    },
    #[error(
        "agent {agent:?}: `{field}` = {text:?} is not a duration (write e.g. 250ms, 15s, 2m, 1h)"
    )]
    BadDuration {
        agent: String,
        field: &'static str,
        text: String,
    },
    #[error("agent {agent:?}: `{field}` must be greater than zero")]
    ZeroValue { agent: String, field: &'static str },
    #[error(
        "agent {agent:?}: `restart_backoff_min` ({min:?}) is larger than `restart_backoff_max` ({max:?})"
    )]
    BackoffOrder {
        agent: String,
        min: Duration,
        max: Duration,
    },
    #[error("agent {0:?}: the health-check timeout must be shorter than the interval")]
    HealthTimeoutTooLong(String),
    #[error("agent id {0:?} appears more than once")]
    DuplicateId(String),
}

/// Which MCP lifecycle to use with an agent.
///
/// Protocol revision 2025-11-25 and earlier open with an `initialize`
/// handshake; 2026-07-28 replaced it with `server/discover` and per-request
/// metadata. Both are in use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ProtocolMode {
    /// Probe with `server/discover`; fall back to `initialize` when the server
    /// answers with an error (a server from before 2026-07-28). Costs one
    /// extra round trip against old servers.
    #[default]
    Auto,
    /// Always use the `initialize` handshake (revision 2025-11-25).
    Initialize,
    /// Always use `server/discover` (revision 2026-07-28); old servers fail.
    Discover,
}

/// A secret sent as `Authorization: Bearer <token>`. `Debug` never shows it,
/// and it has no `Display`, so it cannot end up in a log line by accident.
#[derive(Clone, PartialEq, Eq, Deserialize)]
#[serde(transparent)]
pub struct BearerToken(String);

impl BearerToken {
    pub fn new(token: impl Into<String>) -> Self {
        BearerToken(token.into())
    }

    /// The secret itself, for the transport that sends it.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// Whether `given` is this token, compared in constant time (only the
    /// length may show; tokens should be long).
    pub fn matches(&self, given: &[u8]) -> bool {
        use subtle::ConstantTimeEq;
        self.0.as_bytes().ct_eq(given).into()
    }
}

impl fmt::Debug for BearerToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("BearerToken(<redacted>)")
    }
}

/// Serialises as `"<redacted>"`: a configuration dump must not leak it.
impl serde::Serialize for BearerToken {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str("<redacted>")
    }
}

/// A child process speaking MCP over its stdin and stdout.
#[derive(Clone, PartialEq, Eq)]
pub struct StdioTransport {
    /// Program to run; looked up on `PATH` when it has no `/`.
    pub command: String,
    pub args: Vec<String>,
    /// Added to (or overriding) the node's own environment.
    pub env: BTreeMap<String, String>,
    /// Working directory; the node's own when absent.
    pub cwd: Option<PathBuf>,
}

impl fmt::Debug for StdioTransport {
    // Environment values often carry API keys: show the names only.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StdioTransport")
            .field("command", &self.command)
            .field("args", &self.args)
            .field("env", &self.env.keys().collect::<Vec<_>>())
            .field("cwd", &self.cwd)
            .finish()
    }
}

/// An MCP server reached over streamable HTTP.
#[derive(Clone, PartialEq, Eq)]
pub struct HttpTransport {
    pub url: String,
    pub bearer_token: Option<BearerToken>,
    /// Extra request headers; names and values are checked at load.
    pub headers: BTreeMap<String, String>,
}

impl fmt::Debug for HttpTransport {
    // Header values may be credentials too: show the names only.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HttpTransport")
            .field("url", &self.url)
            .field("bearer_token", &self.bearer_token)
            .field("headers", &self.headers.keys().collect::<Vec<_>>())
            .finish()
    }
}

/// How the node reaches an agent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AgentTransport {
    Stdio(StdioTransport),
    Http(HttpTransport),
}

/// One hosted agent, validated.
///
/// Defaults (each with a `with_*` builder and a `node.toml` key):
/// - `health_interval` 15 s: how often a connected agent is pinged;
/// - `health_timeout` 5 s: a ping unanswered this long marks the agent down,
///   its process killed and restarted;
/// - `call_timeout` 60 s: deadline of a tool call whose caller gives none;
/// - `connect_timeout` 30 s: to start or reach the agent, finish the MCP
///   handshake and list its tools;
/// - `restart_backoff_min` 500 ms and `restart_backoff_max` 60 s: the delay
///   before a restart doubles after each failed attempt, within these bounds,
///   and goes back to the minimum once the agent stayed up for
///   `restart_backoff_max`;
/// - `max_concurrent_calls` 32: calls beyond this wait for a slot (within
///   their deadline);
/// - `protocol` `auto`: see [`ProtocolMode`].
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(try_from = "RawAgentConfig")]
pub struct AgentConfig {
    id: AgentId,
    prefix: Prefix,
    capabilities: Vec<String>,
    communities: Vec<Community>,
    transport: AgentTransport,
    protocol: ProtocolMode,
    health_interval: Duration,
    health_timeout: Duration,
    call_timeout: Duration,
    connect_timeout: Duration,
    restart_backoff_min: Duration,
    restart_backoff_max: Duration,
    max_concurrent_calls: usize,
    /// The MED of the agent's routes until health as MED measures it
    /// (`None`: `[health] base_med`).
    med: Option<u32>,
}

impl AgentConfig {
    /// An agent run as a child process, with all defaults.
    pub fn stdio(
        id: &str,
        prefix: Prefix,
        command: impl Into<String>,
        args: impl IntoIterator<Item = impl Into<String>>,
    ) -> Result<Self, AgentConfigError> {
        let command = command.into();
        if command.is_empty() {
            return Err(AgentConfigError::EmptyCommand(id.into()));
        }
        Ok(Self::with_defaults(
            validate_id(id)?,
            prefix,
            AgentTransport::Stdio(StdioTransport {
                command,
                args: args.into_iter().map(Into::into).collect(),
                env: BTreeMap::new(),
                cwd: None,
            }),
        ))
    }

    /// An agent reached over streamable HTTP, with all defaults.
    pub fn http(id: &str, prefix: Prefix, url: &str) -> Result<Self, AgentConfigError> {
        validate_url(id, url)?;
        Ok(Self::with_defaults(
            validate_id(id)?,
            prefix,
            AgentTransport::Http(HttpTransport {
                url: url.into(),
                bearer_token: None,
                headers: BTreeMap::new(),
            }),
        ))
    }

    fn with_defaults(id: AgentId, prefix: Prefix, transport: AgentTransport) -> Self {
        AgentConfig {
            id,
            prefix,
            capabilities: Vec::new(),
            communities: Vec::new(),
            transport,
            protocol: ProtocolMode::default(),
            health_interval: DEFAULT_HEALTH_INTERVAL,
            health_timeout: DEFAULT_HEALTH_TIMEOUT,
            call_timeout: DEFAULT_CALL_TIMEOUT,
            connect_timeout: DEFAULT_CONNECT_TIMEOUT,
            restart_backoff_min: DEFAULT_RESTART_BACKOFF_MIN,
            restart_backoff_max: DEFAULT_RESTART_BACKOFF_MAX,
            max_concurrent_calls: DEFAULT_MAX_CONCURRENT_CALLS,
            med: None,
        }
    }

    pub fn id(&self) -> &AgentId {
        &self.id
    }
    /// The capability prefix the agent's tools are routed under.
    pub fn prefix(&self) -> &Prefix {
        &self.prefix
    }
    /// Capability tags, sorted and deduplicated.
    pub fn capabilities(&self) -> &[String] {
        &self.capabilities
    }
    /// Communities attached to the agent's routes, sorted and deduplicated.
    pub fn communities(&self) -> &[Community] {
        &self.communities
    }
    pub fn transport(&self) -> &AgentTransport {
        &self.transport
    }
    pub fn protocol(&self) -> ProtocolMode {
        self.protocol
    }
    pub fn health_interval(&self) -> Duration {
        self.health_interval
    }
    pub fn health_timeout(&self) -> Duration {
        self.health_timeout
    }
    pub fn call_timeout(&self) -> Duration {
        self.call_timeout
    }
    pub fn connect_timeout(&self) -> Duration {
        self.connect_timeout
    }
    pub fn restart_backoff_min(&self) -> Duration {
        self.restart_backoff_min
    }
    pub fn restart_backoff_max(&self) -> Duration {
        self.restart_backoff_max
    }
    pub fn max_concurrent_calls(&self) -> usize {
        self.max_concurrent_calls
    }

    /// The configured MED: the base of this agent's health MED.
    pub fn med(&self) -> Option<u32> {
        self.med
    }

    /// Sets the configured MED (the base of the agent's health MED).
    pub fn with_med(mut self, med: u32) -> Self {
        self.med = Some(med);
        self
    }

    /// Replaces the capability tags (validated, sorted, deduplicated).
    pub fn with_capabilities<I, S>(mut self, tags: I) -> Result<Self, AgentConfigError>
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.capabilities =
            validate_capabilities(self.id.as_str(), tags.into_iter().map(Into::into).collect())?;
        Ok(self)
    }

    pub fn with_communities(mut self, communities: impl IntoIterator<Item = Community>) -> Self {
        let set: BTreeSet<Community> = communities.into_iter().collect();
        self.communities = set.into_iter().collect();
        self
    }

    pub fn with_protocol(mut self, mode: ProtocolMode) -> Self {
        self.protocol = mode;
        self
    }

    /// Sets a child-process environment variable; ignored for HTTP agents.
    pub fn with_env(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        if let AgentTransport::Stdio(s) = &mut self.transport {
            s.env.insert(key.into(), value.into());
        }
        self
    }

    /// Sets the child's working directory; ignored for HTTP agents.
    pub fn with_cwd(mut self, dir: impl Into<PathBuf>) -> Self {
        if let AgentTransport::Stdio(s) = &mut self.transport {
            s.cwd = Some(dir.into());
        }
        self
    }

    /// Sets the bearer token; ignored for child-process agents.
    pub fn with_bearer_token(mut self, token: BearerToken) -> Self {
        if let AgentTransport::Http(h) = &mut self.transport {
            h.bearer_token = Some(token);
        }
        self
    }

    /// Adds an HTTP header; ignored for child-process agents.
    pub fn with_header(mut self, name: &str, value: &str) -> Result<Self, AgentConfigError> {
        validate_header(self.id.as_str(), name, value)?;
        if let AgentTransport::Http(h) = &mut self.transport {
            h.headers.insert(name.into(), value.into());
        }
        Ok(self)
    }

    /// Sets how often a connected agent is pinged and how long it has to
    /// answer; the timeout must be shorter than the interval.
    pub fn with_health_check(
        mut self,
        interval: Duration,
        timeout: Duration,
    ) -> Result<Self, AgentConfigError> {
        let agent = self.id.as_str();
        nonzero(agent, "health_interval", interval)?;
        nonzero(agent, "health_timeout", timeout)?;
        if timeout >= interval {
            return Err(AgentConfigError::HealthTimeoutTooLong(agent.into()));
        }
        self.health_interval = interval;
        self.health_timeout = timeout;
        Ok(self)
    }

    pub fn with_call_timeout(mut self, d: Duration) -> Result<Self, AgentConfigError> {
        nonzero(self.id.as_str(), "call_timeout", d)?;
        self.call_timeout = d;
        Ok(self)
    }

    pub fn with_connect_timeout(mut self, d: Duration) -> Result<Self, AgentConfigError> {
        nonzero(self.id.as_str(), "connect_timeout", d)?;
        self.connect_timeout = d;
        Ok(self)
    }

    /// Sets the restart delay bounds; `min` must not exceed `max`.
    pub fn with_restart_backoff(
        mut self,
        min: Duration,
        max: Duration,
    ) -> Result<Self, AgentConfigError> {
        let agent = self.id.as_str();
        nonzero(agent, "restart_backoff_min", min)?;
        if min > max {
            return Err(AgentConfigError::BackoffOrder {
                agent: agent.into(),
                min,
                max,
            });
        }
        self.restart_backoff_min = min;
        self.restart_backoff_max = max;
        Ok(self)
    }

    /// Makes a relative `command` path (one with a `/`) and a relative
    /// `cwd` relative to `dir` (node.toml's directory). A bare command name
    /// is left for the `PATH` search.
    pub fn with_base_dir(mut self, dir: &std::path::Path) -> Self {
        if let AgentTransport::Stdio(s) = &mut self.transport {
            let cmd = std::path::Path::new(&s.command);
            if cmd.is_relative() && s.command.contains('/') {
                s.command = dir.join(cmd).to_string_lossy().into_owned();
            }
            if let Some(cwd) = &s.cwd
                && cwd.is_relative()
            {
                s.cwd = Some(dir.join(cwd));
            }
        }
        self
    }

    pub fn with_max_concurrent_calls(mut self, n: usize) -> Result<Self, AgentConfigError> {
        if n == 0 {
            return Err(AgentConfigError::ZeroValue {
                agent: self.id.to_string(),
                field: "max_concurrent_calls",
            });
        }
        self.max_concurrent_calls = n;
        Ok(self)
    }
}

/// Checks what a single entry cannot: that agent ids are unique.
pub fn validate_agents(agents: &[AgentConfig]) -> Result<(), AgentConfigError> {
    let mut seen = BTreeSet::new();
    for a in agents {
        if !seen.insert(a.id.as_str()) {
            return Err(AgentConfigError::DuplicateId(a.id.to_string()));
        }
    }
    Ok(())
}

/// Parses `250ms`, `15s`, `2m`, `1h` or `7d` (a whole number and a unit):
/// the duration format of every node.toml key.
pub fn parse_duration(text: &str) -> Option<Duration> {
    let t = text.trim();
    let split = t.find(|c: char| !c.is_ascii_digit())?;
    let (num, unit) = t.split_at(split);
    let n: u64 = num.parse().ok()?;
    let ms = match unit.trim() {
        "ms" => Some(n),
        "s" => n.checked_mul(1_000),
        "m" => n.checked_mul(60_000),
        "h" => n.checked_mul(3_600_000),
        "d" => n.checked_mul(86_400_000),
        _ => None,
    }?;
    Some(Duration::from_millis(ms))
}

fn valid_name_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.')
}

fn validate_id(id: &str) -> Result<AgentId, AgentConfigError> {
    if id.is_empty() || id.len() > MAX_AGENT_ID_LEN || !id.chars().all(valid_name_char) {
        return Err(AgentConfigError::BadId(id.into()));
    }
    Ok(AgentId::new(id))
}

fn validate_capabilities(agent: &str, tags: Vec<String>) -> Result<Vec<String>, AgentConfigError> {
    let mut set = BTreeSet::new();
    for tag in tags {
        if tag.is_empty() || tag.len() > MAX_CAPABILITY_LEN || !tag.chars().all(valid_name_char) {
            return Err(AgentConfigError::BadCapability {
                agent: agent.into(),
                tag,
            });
        }
        set.insert(tag);
    }
    Ok(set.into_iter().collect())
}

fn validate_url(agent: &str, url: &str) -> Result<(), AgentConfigError> {
    let bad = |reason: &str| AgentConfigError::BadUrl {
        agent: agent.into(),
        url: url.into(),
        reason: reason.into(),
    };
    let uri = http::Uri::from_str(url).map_err(|e| bad(&e.to_string()))?;
    match uri.scheme_str() {
        Some("http") | Some("https") => {}
        _ => return Err(bad("the scheme must be http or https")),
    }
    if uri.host().is_none_or(str::is_empty) {
        return Err(bad("it has no host"));
    }
    Ok(())
}

fn validate_header(agent: &str, name: &str, value: &str) -> Result<(), AgentConfigError> {
    let bad = |reason: String| AgentConfigError::BadHeader {
        agent: agent.into(),
        name: name.into(),
        reason,
    };
    http::HeaderName::from_str(name).map_err(|e| bad(e.to_string()))?;
    // The value may be a secret: the error never echoes it.
    http::HeaderValue::from_str(value)
        .map_err(|_| bad("the value has characters not allowed in a header".into()))?;
    if name.eq_ignore_ascii_case("authorization") {
        return Err(bad("use `bearer_token` for the Authorization header".into()));
    }
    Ok(())
}

fn nonzero(agent: &str, field: &'static str, d: Duration) -> Result<(), AgentConfigError> {
    if d.is_zero() {
        return Err(AgentConfigError::ZeroValue {
            agent: agent.into(),
            field,
        });
    }
    Ok(())
}

/// The entry as written; [`AgentConfig`] is built from it by validation.
/// Keys are snake_case like the rest of node.toml; the kebab-case
/// spellings of earlier releases are accepted as aliases.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawAgentConfig {
    id: String,
    prefix: String,
    #[serde(default)]
    capabilities: Vec<String>,
    #[serde(default)]
    communities: Vec<String>,
    command: Option<String>,
    args: Option<Vec<String>>,
    env: Option<BTreeMap<String, String>>,
    cwd: Option<PathBuf>,
    url: Option<String>,
    #[serde(alias = "bearer-token")]
    bearer_token: Option<BearerToken>,
    headers: Option<BTreeMap<String, String>>,
    #[serde(default)]
    protocol: ProtocolMode,
    #[serde(alias = "health-interval")]
    health_interval: Option<String>,
    #[serde(alias = "health-timeout")]
    health_timeout: Option<String>,
    #[serde(alias = "call-timeout")]
    call_timeout: Option<String>,
    #[serde(alias = "connect-timeout")]
    connect_timeout: Option<String>,
    #[serde(alias = "restart-backoff-min")]
    restart_backoff_min: Option<String>,
    #[serde(alias = "restart-backoff-max")]
    restart_backoff_max: Option<String>,
    #[serde(alias = "max-concurrent-calls")]
    max_concurrent_calls: Option<usize>,
    med: Option<u32>,
}

impl TryFrom<RawAgentConfig> for AgentConfig {
    type Error = AgentConfigError;

    fn try_from(raw: RawAgentConfig) -> Result<Self, Self::Error> {
        let id = validate_id(&raw.id)?;
        let agent = raw.id.as_str();
        let prefix = Prefix::new(&raw.prefix).map_err(|source| AgentConfigError::BadPrefix {
            agent: agent.into(),
            text: raw.prefix.clone(),
            source,
        })?;
        let capabilities = validate_capabilities(agent, raw.capabilities)?;
        let mut communities = BTreeSet::new();
        for text in raw.communities {
            let c = text
                .parse::<Community>()
                .map_err(|e| AgentConfigError::BadCommunity {
                    agent: agent.into(),
                    text: text.clone(),
                    reason: e.to_string(),
                })?;
            communities.insert(c);
        }

        let not_for = |field: &'static str, applies_to: &'static str| {
            AgentConfigError::FieldNotForTransport {
                agent: agent.into(),
                field,
                applies_to,
            }
        };
        let transport = match (raw.command, raw.url) {
            (Some(_), Some(_)) => return Err(AgentConfigError::TwoTransports(agent.into())),
            (None, None) => return Err(AgentConfigError::NoTransport(agent.into())),
            (Some(command), None) => {
                if raw.bearer_token.is_some() {
                    return Err(not_for("bearer_token", "HTTP (`url`)"));
                }
                if raw.headers.is_some() {
                    return Err(not_for("headers", "HTTP (`url`)"));
                }
                if command.is_empty() {
                    return Err(AgentConfigError::EmptyCommand(agent.into()));
                }
                AgentTransport::Stdio(StdioTransport {
                    command,
                    args: raw.args.unwrap_or_default(),
                    env: raw.env.unwrap_or_default(),
                    cwd: raw.cwd,
                })
            }
            (None, Some(url)) => {
                if raw.args.is_some() {
                    return Err(not_for("args", "child-process (`command`)"));
                }
                if raw.env.is_some() {
                    return Err(not_for("env", "child-process (`command`)"));
                }
                if raw.cwd.is_some() {
                    return Err(not_for("cwd", "child-process (`command`)"));
                }
                validate_url(agent, &url)?;
                let headers = raw.headers.unwrap_or_default();
                for (name, value) in &headers {
                    validate_header(agent, name, value)?;
                }
                AgentTransport::Http(HttpTransport {
                    url,
                    bearer_token: raw.bearer_token,
                    headers,
                })
            }
        };

        let dur = |field: &'static str, text: Option<String>, default: Duration| match text {
            None => Ok(default),
            Some(text) => match parse_duration(&text) {
                Some(d) if d.is_zero() => Err(AgentConfigError::ZeroValue {
                    agent: agent.into(),
                    field,
                }),
                Some(d) => Ok(d),
                None => Err(AgentConfigError::BadDuration {
                    agent: agent.into(),
                    field,
                    text,
                }),
            },
        };
        let health_interval = dur(
            "health_interval",
            raw.health_interval,
            DEFAULT_HEALTH_INTERVAL,
        )?;
        let health_timeout = dur("health_timeout", raw.health_timeout, DEFAULT_HEALTH_TIMEOUT)?;
        let call_timeout = dur("call_timeout", raw.call_timeout, DEFAULT_CALL_TIMEOUT)?;
        let connect_timeout = dur(
            "connect_timeout",
            raw.connect_timeout,
            DEFAULT_CONNECT_TIMEOUT,
        )?;
        let restart_backoff_min = dur(
            "restart_backoff_min",
            raw.restart_backoff_min,
            DEFAULT_RESTART_BACKOFF_MIN,
        )?;
        let restart_backoff_max = dur(
            "restart_backoff_max",
            raw.restart_backoff_max,
            DEFAULT_RESTART_BACKOFF_MAX,
        )?;

        let mut config = AgentConfig::with_defaults(id, prefix, transport);
        config.capabilities = capabilities;
        config.communities = communities.into_iter().collect();
        config.protocol = raw.protocol;
        config.med = raw.med;
        // The builders carry the cross-field checks; run them once here so
        // a file and code are held to the same rules.
        config
            .with_health_check(health_interval, health_timeout)?
            .with_call_timeout(call_timeout)?
            .with_connect_timeout(connect_timeout)?
            .with_restart_backoff(restart_backoff_min, restart_backoff_max)?
            .with_max_concurrent_calls(
                raw.max_concurrent_calls
                    .unwrap_or(DEFAULT_MAX_CONCURRENT_CALLS),
            )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    struct NodeToml {
        agents: Vec<AgentConfig>,
    }

    fn parse(text: &str) -> Result<Vec<AgentConfig>, String> {
        toml::from_str::<NodeToml>(text)
            .map(|n| n.agents)
            .map_err(|e| e.to_string())
    }

    #[test]
    fn stdio_agent_parses_with_documented_defaults() {
        let agents = parse(
            r#"
            [[agents]]
            id = "time"
            prefix = "utility/time/*"
            capabilities = ["time", "utility", "time"]
            communities = ["65001:100", "internal"]
            command = "mcp-server-time"
            args = ["--local-timezone", "Etc/UTC"]
            env = { TZ = "Etc/UTC" }
            cwd = "/tmp"
            "#,
        )
        .unwrap();
        let a = &agents[0];
        assert_eq!(a.id().as_str(), "time");
        assert_eq!(a.prefix().as_str(), "utility/time/*");
        assert_eq!(a.capabilities(), ["time", "utility"]);
        assert_eq!(a.communities().len(), 2);
        assert_eq!(a.protocol(), ProtocolMode::Auto);
        assert_eq!(a.health_interval(), DEFAULT_HEALTH_INTERVAL);
        assert_eq!(a.health_timeout(), DEFAULT_HEALTH_TIMEOUT);
        assert_eq!(a.call_timeout(), DEFAULT_CALL_TIMEOUT);
        assert_eq!(a.connect_timeout(), DEFAULT_CONNECT_TIMEOUT);
        assert_eq!(a.restart_backoff_min(), DEFAULT_RESTART_BACKOFF_MIN);
        assert_eq!(a.restart_backoff_max(), DEFAULT_RESTART_BACKOFF_MAX);
        assert_eq!(a.max_concurrent_calls(), DEFAULT_MAX_CONCURRENT_CALLS);
        let AgentTransport::Stdio(s) = a.transport() else {
            panic!("expected stdio")
        };
        assert_eq!(s.command, "mcp-server-time");
        assert_eq!(s.args, ["--local-timezone", "Etc/UTC"]);
        assert_eq!(s.env.get("TZ").map(String::as_str), Some("Etc/UTC"));
        assert_eq!(s.cwd.as_deref(), Some(std::path::Path::new("/tmp")));
    }

    #[test]
    fn http_agent_parses_durations_and_protocol() {
        let agents = parse(
            r#"
            [[agents]]
            id = "search"
            prefix = "web/search/*"
            url = "https://search.example/mcp"
            bearer-token = "s3cret"
            headers = { "X-Tenant" = "blue" }
            protocol = "initialize"
            health-interval = "2m"
            health-timeout = "250ms"
            call-timeout = "1h"
            restart-backoff-min = "1s"
            restart-backoff-max = "30s"
            max-concurrent-calls = 4
            "#,
        )
        .unwrap();
        let a = &agents[0];
        assert_eq!(a.protocol(), ProtocolMode::Initialize);
        assert_eq!(a.health_interval(), Duration::from_secs(120));
        assert_eq!(a.health_timeout(), Duration::from_millis(250));
        assert_eq!(a.call_timeout(), Duration::from_secs(3600));
        assert_eq!(a.restart_backoff_min(), Duration::from_secs(1));
        assert_eq!(a.restart_backoff_max(), Duration::from_secs(30));
        assert_eq!(a.max_concurrent_calls(), 4);
        let AgentTransport::Http(h) = a.transport() else {
            panic!("expected http")
        };
        assert_eq!(h.bearer_token.as_ref().map(|t| t.expose()), Some("s3cret"));
        assert_eq!(h.headers.get("X-Tenant").map(String::as_str), Some("blue"));
    }

    #[test]
    fn debug_output_never_shows_secrets() {
        let agents = parse(
            r#"
            [[agents]]
            id = "search"
            prefix = "web/*"
            url = "https://search.example/mcp"
            bearer-token = "s3cret-token"
            headers = { "X-Api-Key" = "key-value-123" }
            [[agents]]
            id = "local"
            prefix = "local/*"
            command = "x"
            env = { API_KEY = "env-secret-456" }
            "#,
        )
        .unwrap();
        let text = format!("{agents:?}");
        assert!(!text.contains("s3cret-token"), "{text}");
        assert!(!text.contains("key-value-123"), "{text}");
        assert!(!text.contains("env-secret-456"), "{text}");
        assert!(text.contains("<redacted>"));
        assert!(text.contains("X-Api-Key") && text.contains("API_KEY"));
    }

    #[test]
    fn unknown_fields_are_rejected_with_their_name() {
        let err = parse(
            r#"
            [[agents]]
            id = "a"
            prefix = "a/*"
            command = "x"
            helth-interval = "1s"
            "#,
        )
        .unwrap_err();
        assert!(err.contains("helth-interval"), "{err}");
    }

    #[test]
    fn transport_must_be_exactly_one_of_command_or_url() {
        let both = parse(
            "[[agents]]\nid = \"a\"\nprefix = \"a/*\"\ncommand = \"x\"\nurl = \"http://h/mcp\"\n",
        )
        .unwrap_err();
        assert!(both.contains("both `command` and `url`"), "{both}");
        let none = parse("[[agents]]\nid = \"a\"\nprefix = \"a/*\"\n").unwrap_err();
        assert!(none.contains("no transport"), "{none}");
    }

    #[test]
    fn fields_of_the_other_transport_are_rejected() {
        let err = parse(
            "[[agents]]\nid = \"a\"\nprefix = \"a/*\"\ncommand = \"x\"\nbearer-token = \"t\"\n",
        )
        .unwrap_err();
        assert!(err.contains("`bearer_token` only applies to HTTP"), "{err}");
        let err = parse(
            "[[agents]]\nid = \"a\"\nprefix = \"a/*\"\nurl = \"http://h/mcp\"\nargs = [\"x\"]\n",
        )
        .unwrap_err();
        assert!(
            err.contains("`args` only applies to child-process"),
            "{err}"
        );
    }

    #[test]
    fn bad_values_name_the_agent_and_field() {
        let cases = [
            (
                "prefix = \"a b/*\"\ncommand = \"x\"",
                "prefix \"a b/*\" is invalid",
            ),
            (
                "prefix = \"a/*\"\ncommand = \"x\"\ncommunities = [\"70000:1\"]",
                "community",
            ),
            (
                "prefix = \"a/*\"\ncommand = \"x\"\ncapabilities = [\"has space\"]",
                "capability tag",
            ),
            (
                "prefix = \"a/*\"\nurl = \"ftp://h/x\"",
                "scheme must be http",
            ),
            (
                "prefix = \"a/*\"\nurl = \"http://h/x\"\nheaders = { \"bad name\" = \"v\" }",
                "header",
            ),
            (
                "prefix = \"a/*\"\nurl = \"http://h/x\"\nheaders = { \"Authorization\" = \"v\" }",
                "bearer_token",
            ),
            (
                "prefix = \"a/*\"\ncommand = \"x\"\ncall-timeout = \"5 parsecs\"",
                "`call_timeout`",
            ),
            (
                "prefix = \"a/*\"\ncommand = \"x\"\ncall-timeout = \"0s\"",
                "greater than zero",
            ),
            (
                "prefix = \"a/*\"\ncommand = \"x\"\nhealth-interval = \"1s\"\nhealth-timeout = \"2s\"",
                "shorter than the interval",
            ),
            (
                "prefix = \"a/*\"\ncommand = \"x\"\nrestart-backoff-min = \"2m\"\nrestart-backoff-max = \"1m\"",
                "larger than",
            ),
            ("prefix = \"a/*\"\ncommand = \"\"", "`command` is empty"),
        ];
        for (body, want) in cases {
            let text = format!("[[agents]]\nid = \"ag\"\n{body}\n");
            let err = parse(&text).unwrap_err();
            assert!(err.contains(want), "for {body:?}: {err}");
            assert!(
                err.contains("\"ag\""),
                "agent not named for {body:?}: {err}"
            );
        }
    }

    #[test]
    fn bad_agent_ids_are_rejected() {
        for id in ["", "has space", "slash/y", &"x".repeat(65)] {
            let text = format!("[[agents]]\nid = {id:?}\nprefix = \"a/*\"\ncommand = \"x\"\n");
            let err = parse(&text).unwrap_err();
            assert!(err.contains("agent id"), "{id:?}: {err}");
        }
    }

    #[test]
    fn duplicate_ids_are_found() {
        let agents =
            parse("[[agents]]\nid = \"a\"\nprefix = \"a/*\"\ncommand = \"x\"\n[[agents]]\nid = \"a\"\nprefix = \"b/*\"\ncommand = \"y\"\n")
                .unwrap();
        assert_eq!(
            validate_agents(&agents),
            Err(AgentConfigError::DuplicateId("a".into()))
        );
    }

    #[test]
    fn durations_parse_with_units_only() {
        assert_eq!(parse_duration("250ms"), Some(Duration::from_millis(250)));
        assert_eq!(parse_duration("15s"), Some(Duration::from_secs(15)));
        assert_eq!(parse_duration("2m"), Some(Duration::from_secs(120)));
        assert_eq!(parse_duration("1h"), Some(Duration::from_secs(3600)));
        assert_eq!(parse_duration("15"), None);
        assert_eq!(parse_duration("s"), None);
        assert_eq!(parse_duration("1.5s"), None);
        assert_eq!(parse_duration("99999999999999999999h"), None);
    }

    #[test]
    fn builders_apply_the_same_rules_as_the_file() {
        let p = Prefix::new("a/*").unwrap();
        let a = AgentConfig::stdio("a", p.clone(), "x", ["--flag"]).unwrap();
        assert!(
            a.clone()
                .with_health_check(Duration::from_secs(1), Duration::from_secs(1))
                .is_err()
        );
        assert!(a.clone().with_max_concurrent_calls(0).is_err());
        assert!(
            a.with_restart_backoff(Duration::from_secs(2), Duration::from_secs(1))
                .is_err()
        );
        assert!(AgentConfig::http("a", p.clone(), "not a url").is_err());
        assert!(AgentConfig::stdio("bad id", p, "x", Vec::<String>::new()).is_err());
    }
}
