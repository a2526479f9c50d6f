//! Reaching an agent: spawning its process (or opening its HTTP endpoint),
//! running the MCP handshake, and listing what it offers.
//!
//! A child process runs in its own process group, so killing the group also
//! reaches whatever it started (`npx` wrappers, shell scripts). Its stderr is
//! read continuously (a full pipe would stall it) into a short tail that
//! goes into `Down` reasons, and logged at debug level.

use std::collections::{HashMap, VecDeque};
use std::process::{ExitStatus, Stdio};
use std::str::FromStr;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use rmcp::ClientLifecycleMode;
use rmcp::model::{PaginatedRequestParams, ProtocolVersion, ServerPeerInfo};
use rmcp::service::{Peer, RoleClient, RunningService, ServiceError};
use rmcp::transport::StreamableHttpClientTransport;
use rmcp::transport::streamable_http_client::StreamableHttpClientTransportConfig;
use tokio::io::AsyncReadExt;
use tokio::process::{Child, ChildStderr, Command};
use tokio_util::sync::CancellationToken;

use super::client::AgentClient;
use super::{AgentCatalog, ServerSummary};
use crate::core::ids::AgentId;
use crate::mcp::catalog::ToolDescriptor;
use crate::mcp::config::{
    AgentConfig, AgentTransport, HttpTransport, ProtocolMode, StdioTransport,
};
use crate::mcp::items::{ItemDescriptor, ItemKind};

/// Lines of stderr kept for `Down` reasons.
const STDERR_TAIL_LINES: usize = 8;
/// Longest stderr line kept; the rest of a longer line is dropped.
const STDERR_LINE_MAX: usize = 512;
/// Pages followed per list before the agent is deemed misbehaving.
const MAX_LIST_PAGES: usize = 100;
/// Items accepted per list.
const MAX_LIST_ITEMS: usize = 10_000;

/// Everything that can go wrong before an agent is up; becomes the text of
/// a `DownReason::StartFailed`.
#[derive(Debug, thiserror::Error)]
pub(super) enum ConnectError {
    #[error("cannot run {command:?}: {source}")]
    Spawn {
        command: String,
        source: std::io::Error,
    },
    #[error("MCP handshake failed: {0}")]
    Handshake(String),
    #[error("the process exited during the handshake ({status}){stderr}")]
    ExitedEarly { status: String, stderr: String },
    #[error("listing {what} failed: {source}")]
    List {
        what: &'static str,
        source: ServiceError,
    },
    #[error("listing {what}: more than {MAX_LIST_PAGES} pages or {MAX_LIST_ITEMS} items")]
    ListTooLong { what: &'static str },
}

/// A child process of an agent. Dropping it kills the process group.
pub(super) struct ChildProc {
    child: Child,
    pid: Option<u32>,
    stderr_tail: Arc<Mutex<VecDeque<String>>>,
    stderr_reader: Option<tokio::task::JoinHandle<()>>,
    exited: Option<ExitStatus>,
}

/// How long an exited process's stderr may take to reach EOF, so its last
/// words make it into the `Down` reason.
const STDERR_DRAIN: Duration = Duration::from_millis(500);

impl ChildProc {
    /// Waits until the process exits; returns at once if it already did.
    pub(super) async fn wait(&mut self) -> ExitStatus {
        if let Some(s) = self.exited {
            return s;
        }
        match self.child.wait().await {
            Ok(s) => {
                self.exited = Some(s);
                // The pipe may still hold its last lines; a grandchild that
                // keeps it open only costs the drain timeout.
                if let Some(mut reader) = self.stderr_reader.take()
                    && tokio::time::timeout(STDERR_DRAIN, &mut reader)
                        .await
                        .is_err()
                {
                    reader.abort();
                }
                s
            }
            // Only fails if the child was never spawned or already reaped
            // elsewhere; treat it as gone so callers stop waiting.
            Err(_) => {
                let s = ExitStatus::default();
                self.exited = Some(s);
                s
            }
        }
    }

    /// Sends `signal` to the whole process group.
    fn signal_group(&self, signal: i32) {
        #[cfg(unix)]
        if let Some(pid) = self.pid.and_then(|p| i32::try_from(p).ok()) {
            // SAFETY: kill(2) with a negative pid signals the process group
            // we created for this child; it has no memory-safety effects.
            unsafe {
                libc::kill(-pid, signal);
            }
        }
        #[cfg(not(unix))]
        let _ = signal;
    }

    /// Kills the process group at once (for a hung or dead agent).
    pub(super) fn kill_now(&mut self) {
        #[cfg(unix)]
        self.signal_group(libc::SIGKILL);
        let _ = self.child.start_kill();
    }

    /// Closes down politely: waits `grace` for the process to exit by
    /// itself (its stdin is already closed), then SIGTERM, then SIGKILL.
    pub(super) async fn stop_gracefully(&mut self, grace: Duration) {
        if tokio::time::timeout(grace, self.wait()).await.is_ok() {
            // Leftover members of the group (grandchildren) go too.
            self.kill_now();
            return;
        }
        #[cfg(unix)]
        {
            self.signal_group(libc::SIGTERM);
            if tokio::time::timeout(grace, self.wait()).await.is_ok() {
                self.kill_now();
                return;
            }
        }
        self.kill_now();
        let _ = tokio::time::timeout(grace, self.wait()).await;
    }

    /// The last lines the process wrote to stderr, joined with ` | `.
    pub(super) fn stderr_tail(&self) -> String {
        let tail = self
            .stderr_tail
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        tail.iter().cloned().collect::<Vec<_>>().join(" | ")
    }
}

impl Drop for ChildProc {
    fn drop(&mut self) {
        if self.exited.is_none() {
            self.kill_now();
        }
    }
}

/// A connected, initialised agent.
pub(super) struct Connection {
    pub service: RunningService<RoleClient, AgentClient>,
    /// Cancels the SDK's service loop (closing the transport).
    pub service_ct: CancellationToken,
    pub child: Option<ChildProc>,
}

impl Connection {
    pub(super) fn peer(&self) -> &Peer<RoleClient> {
        self.service.peer()
    }
}

/// How long `auto` waits for an HTTP agent to answer `server/discover`
/// before trying `initialize`: a third of the connect timeout, at most 10 s
/// (rmcp's own probe timeout), so both attempts fit in the connect timeout.
fn auto_probe_timeout(connect: Duration) -> Duration {
    (connect / 3).min(Duration::from_secs(10))
}

fn lifecycle(mode: ProtocolMode) -> ClientLifecycleMode {
    match mode {
        ProtocolMode::Initialize => ClientLifecycleMode::Initialize,
        ProtocolMode::Discover => ClientLifecycleMode::Discover {
            preferred_versions: vec![ProtocolVersion::V_2026_07_28],
        },
        ProtocolMode::Auto => ClientLifecycleMode::Auto {
            preferred_versions: vec![ProtocolVersion::V_2026_07_28],
            legacy_version: Some(ProtocolVersion::LATEST_WITH_INITIALIZE),
        },
    }
}

/// Starts (or reaches) the agent and runs the handshake. The caller bounds
/// the time; dropping the future kills a child that was started.
pub(super) async fn connect(
    config: &AgentConfig,
    client: AgentClient,
) -> Result<Connection, ConnectError> {
    let mode = lifecycle(config.protocol());
    let service_ct = CancellationToken::new();
    match config.transport() {
        AgentTransport::Stdio(stdio) => {
            let (mut child, stdout, stdin) = spawn(config.id(), stdio)?;
            let served = rmcp::service::serve_client_with_lifecycle_and_ct(
                client,
                (stdout, stdin),
                mode,
                service_ct.clone(),
            )
            .await;
            match served {
                Ok(service) => Ok(Connection {
                    service,
                    service_ct,
                    child: Some(child),
                }),
                Err(e) => {
                    // A process that died explains the failure better than
                    // "connection closed"; give it a moment to be reaped.
                    let exited =
                        tokio::time::timeout(Duration::from_millis(200), child.wait()).await;
                    match exited {
                        Ok(status) => {
                            let tail = child.stderr_tail();
                            Err(ConnectError::ExitedEarly {
                                status: status.to_string(),
                                stderr: if tail.is_empty() {
                                    String::new()
                                } else {
                                    format!("; last stderr: {tail}")
                                },
                            })
                        }
                        Err(_) => Err(ConnectError::Handshake(e.to_string())),
                    }
                }
            }
        }
        AgentTransport::Http(http) if config.protocol() == ProtocolMode::Auto => {
            // The probe on a transport of its own: a server that never
            // answers `server/discover` would otherwise hold the one
            // transport's first request and the fallback behind it.
            let probe_ct = CancellationToken::new();
            let probe = rmcp::service::serve_client_with_lifecycle_and_ct(
                client.clone(),
                StreamableHttpClientTransport::from_config(http_config(http)),
                lifecycle(ProtocolMode::Discover),
                probe_ct.clone(),
            );
            let wait = auto_probe_timeout(config.connect_timeout());
            let why = match tokio::time::timeout(wait, probe).await {
                Ok(Ok(service)) => {
                    return Ok(Connection {
                        service,
                        service_ct: probe_ct,
                        child: None,
                    });
                }
                Ok(Err(e)) => e.to_string(),
                Err(_) => format!("no answer to server/discover within {wait:?}"),
            };
            probe_ct.cancel();
            tracing::debug!(agent = %config.id(), %why, "server/discover failed; trying initialize");
            let service = rmcp::service::serve_client_with_lifecycle_and_ct(
                client,
                StreamableHttpClientTransport::from_config(http_config(http)),
                lifecycle(ProtocolMode::Initialize),
                service_ct.clone(),
            )
            .await
            .map_err(|e| {
                ConnectError::Handshake(format!("server/discover: {why}; initialize: {e}"))
            })?;
            Ok(Connection {
                service,
                service_ct,
                child: None,
            })
        }
        AgentTransport::Http(http) => {
            let transport = StreamableHttpClientTransport::from_config(http_config(http));
            let service = rmcp::service::serve_client_with_lifecycle_and_ct(
                client,
                transport,
                mode,
                service_ct.clone(),
            )
            .await
            .map_err(|e| ConnectError::Handshake(e.to_string()))?;
            Ok(Connection {
                service,
                service_ct,
                child: None,
            })
        }
    }
}

fn http_config(http: &HttpTransport) -> StreamableHttpClientTransportConfig {
    let mut headers = HashMap::new();
    for (name, value) in &http.headers {
        // Both were validated when the configuration was built.
        if let (Ok(n), Ok(mut v)) = (
            http::HeaderName::from_str(name),
            http::HeaderValue::from_str(value),
        ) {
            v.set_sensitive(true);
            headers.insert(n, v);
        }
    }
    let mut config =
        StreamableHttpClientTransportConfig::with_uri(http.url.as_str()).custom_headers(headers);
    if let Some(token) = &http.bearer_token {
        config = config.auth_header(token.expose());
    }
    config
}

fn spawn(
    agent: &AgentId,
    stdio: &StdioTransport,
) -> Result<
    (
        ChildProc,
        tokio::process::ChildStdout,
        tokio::process::ChildStdin,
    ),
    ConnectError,
> {
    let spawn_err = |source| ConnectError::Spawn {
        command: stdio.command.clone(),
        source,
    };
    let mut cmd = Command::new(&stdio.command);
    cmd.args(&stdio.args)
        .envs(&stdio.env)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    if let Some(dir) = &stdio.cwd {
        cmd.current_dir(dir);
    }
    #[cfg(unix)]
    cmd.process_group(0);
    let mut child = cmd.spawn().map_err(spawn_err)?;
    let missing = || spawn_err(std::io::Error::other("stdio pipe missing after spawn"));
    let stdout = child.stdout.take().ok_or_else(missing)?;
    let stdin = child.stdin.take().ok_or_else(missing)?;
    let stderr_tail = Arc::new(Mutex::new(VecDeque::new()));
    let stderr_reader = child
        .stderr
        .take()
        .map(|stderr| tokio::spawn(read_stderr(agent.clone(), stderr, stderr_tail.clone())));
    let pid = child.id();
    Ok((
        ChildProc {
            child,
            pid,
            stderr_tail,
            stderr_reader,
            exited: None,
        },
        stdout,
        stdin,
    ))
}

/// Drains stderr until EOF, keeping the last lines (each cut short).
async fn read_stderr(agent: AgentId, mut stderr: ChildStderr, tail: Arc<Mutex<VecDeque<String>>>) {
    let mut buf = [0u8; 4096];
    let mut line: Vec<u8> = Vec::new();
    let push = |line: &mut Vec<u8>| {
        let text = String::from_utf8_lossy(line).trim_end().to_string();
        line.clear();
        if text.is_empty() {
            return;
        }
        tracing::debug!(%agent, "stderr: {text}");
        let mut t = tail.lock().unwrap_or_else(PoisonError::into_inner);
        if t.len() == STDERR_TAIL_LINES {
            t.pop_front();
        }
        t.push_back(text);
    };
    loop {
        let n = match stderr.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        for &b in &buf[..n] {
            if b == b'\n' {
                push(&mut line);
            } else if line.len() < STDERR_LINE_MAX {
                line.push(b);
            }
        }
    }
    push(&mut line);
}

/// What the handshake said about the server.
pub(super) fn summary(info: Option<&ServerPeerInfo>) -> ServerSummary {
    match info {
        Some(i) => ServerSummary {
            name: i.server_info.as_ref().map(|s| s.name.clone()),
            version: i.server_info.as_ref().map(|s| s.version.clone()),
            protocol_version: i.protocol_version.to_string(),
            instructions: i.instructions.clone(),
        },
        None => ServerSummary {
            name: None,
            version: None,
            protocol_version: String::new(),
            instructions: None,
        },
    }
}

/// Lists tools, and resources and prompts when the server advertises them,
/// following pagination within fixed bounds.
pub(super) async fn list_catalog(peer: &Peer<RoleClient>) -> Result<AgentCatalog, ConnectError> {
    let caps = peer.peer_info().map(|i| i.capabilities.clone());
    // A server that advertised nothing is still asked for tools: serving
    // tools is why it was configured, and the error says more than silence.
    let wants_tools = caps.as_ref().is_none_or(|c| c.tools.is_some());
    let wants_resources = caps.as_ref().is_some_and(|c| c.resources.is_some());
    let wants_prompts = caps.as_ref().is_some_and(|c| c.prompts.is_some());

    let mut catalog = AgentCatalog::default();
    if wants_tools {
        let tools = paginate("tools", |params| async move {
            let page = peer.list_tools(params).await?;
            Ok((page.tools, page.next_cursor))
        })
        .await?;
        let mut seen = std::collections::BTreeSet::new();
        for t in &tools {
            if seen.insert(t.name.to_string()) {
                catalog.tools.push(ToolDescriptor::from_rmcp(t));
            } else {
                tracing::warn!(tool = %t.name, "agent listed a tool twice; keeping the first");
            }
        }
    }
    if wants_resources {
        let resources = paginate("resources", |params| async move {
            let page = peer.list_resources(params).await?;
            Ok((page.resources, page.next_cursor))
        })
        .await?;
        push_items(&mut catalog, ItemKind::Resource, &resources);
        // Templates are part of the resources capability; a server that
        // has none may answer "method not found".
        match paginate("resource templates", |params| async move {
            let page = peer.list_resource_templates(params).await?;
            Ok((page.resource_templates, page.next_cursor))
        })
        .await
        {
            Ok(templates) => push_items(&mut catalog, ItemKind::Template, &templates),
            Err(ConnectError::List {
                source: ServiceError::McpError(e),
                ..
            }) if e.code == rmcp::model::ErrorCode::METHOD_NOT_FOUND => {}
            Err(e) => return Err(e),
        }
    }
    if wants_prompts {
        let prompts = paginate("prompts", |params| async move {
            let page = peer.list_prompts(params).await?;
            Ok((page.prompts, page.next_cursor))
        })
        .await?;
        push_items(&mut catalog, ItemKind::Prompt, &prompts);
    }
    Ok(catalog)
}

/// Adds listed items of one kind, as the JSON the agent sent; an item
/// without its key, or a key listed twice, is logged and skipped.
fn push_items<T: serde::Serialize>(catalog: &mut AgentCatalog, kind: ItemKind, listed: &[T]) {
    let mut seen = std::collections::BTreeSet::new();
    for item in listed {
        let json = match serde_json::to_value(item) {
            Ok(serde_json::Value::Object(m)) => m,
            _ => continue,
        };
        match ItemDescriptor::new(kind, json) {
            Ok(d) if seen.insert(d.key().to_string()) => catalog.items.push(d),
            Ok(d) => {
                tracing::warn!(%kind, key = d.key(), "agent listed an item twice; keeping the first")
            }
            Err(e) => tracing::warn!(error = %e, "agent listed an item without its key; skipped"),
        }
    }
}

async fn paginate<T, F, Fut>(what: &'static str, mut page: F) -> Result<Vec<T>, ConnectError>
where
    F: FnMut(Option<PaginatedRequestParams>) -> Fut,
    Fut: Future<Output = Result<(Vec<T>, Option<String>), ServiceError>>,
{
    let mut items = Vec::new();
    let mut cursor: Option<String> = None;
    for _ in 0..MAX_LIST_PAGES {
        let params = cursor
            .take()
            .map(|c| PaginatedRequestParams::default().with_cursor(Some(c)));
        let (mut batch, next) = page(params)
            .await
            .map_err(|source| ConnectError::List { what, source })?;
        items.append(&mut batch);
        if items.len() > MAX_LIST_ITEMS {
            return Err(ConnectError::ListTooLong { what });
        }
        match next {
            Some(c) if !c.is_empty() => cursor = Some(c),
            _ => return Ok(items),
        }
    }
    Err(ConnectError::ListTooLong { what })
}
