//! The example agent: a small MCP server for the demo, tests and
//! benchmarks, built on rmcp's server side. It is part of the library so
//! that `abgp example-agent` (what `abgp demo` starts) and
//! `examples/echo_agent.rs` serve the same tools with nothing else to build.
//!
//! ```text
//! abgp example-agent                        # MCP over stdio
//! abgp example-agent --http 127.0.0.1:0     # streamable HTTP at /mcp
//! cargo run --example echo_agent [-- --http 127.0.0.1:0]
//! ```
//! With `--http` the first line on stdout is `listening on http://ADDR/mcp`.
//!
//! Tools:
//! - `echo {text}`: returns the text, also as structured content
//!   `{ "text": ... }` (it has an output schema); read-only, idempotent.
//! - `add {a, b}`: the sum, also as `{ "sum": ... }`; read-only, idempotent.
//! - `slow_count {n, delay_ms?}`: counts to `n`, one progress notification
//!   per step, `delay_ms` (default 100) apart; stops when cancelled.
//! - `wait {ms}`: answers `{ "waited_ms": ms }` after `ms` milliseconds (at
//!   most 60000); read-only and idempotent, so a node may retry it on
//!   another path; stops when cancelled.
//! - `fail {message?}`: a tool error (`isError: true`) with the message.
//! - `crash {code?}`: exits the process at once (default code 3) without
//!   answering, to exercise crash detection and restart.
//! - `freeze`: stops the whole process (SIGSTOP) so it answers nothing, not
//!   even pings, to exercise health checks.
//! - `set_extra_tools {names}`: replaces a set of extra tools (each returns
//!   its own name) and sends `notifications/tools/list_changed`.
//! - `stats`: `{ "pid": ..., "cancelled": ... }`, the process id and how
//!   many calls saw a cancellation, so tests can check what reached it.
//!
//! With `--conformance` (`abgp example-agent --conformance`,
//! `cargo run --example echo_agent -- --conformance`, with or without
//! `--http`) it also serves the fixtures of the official MCP conformance
//! suite's server scenarios (`conformance.rs`): the `test_*` tools and
//! `json_schema_2020_12_tool` after the tools above, four `test_*` prompts,
//! the `test://` resources and template (subscribable, one changes every
//! second), completions and `logging/setLevel`. Without the flag it declares
//! tools only and its tool list is exactly the one above, which the demo and
//! the tests rely on. `tests/conformance.rs` runs the suite against it.

mod conformance;
mod input_required;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rmcp::model::{
    CallToolRequestParams, CallToolResponse, CallToolResult, CompleteRequestMethod,
    CompleteRequestParams, CompleteResult, ContentBlock, GetPromptRequestMethod,
    GetPromptRequestParams, GetPromptResponse, Implementation, JsonObject,
    ListPromptsRequestMethod, ListPromptsResult, ListResourceTemplatesRequestMethod,
    ListResourceTemplatesResult, ListResourcesRequestMethod, ListResourcesResult, ListToolsResult,
    PaginatedRequestParams, ProgressNotificationParam, ReadResourceRequestMethod,
    ReadResourceRequestParams, ReadResourceResponse, ServerCapabilities, ServerConfig,
    SetLevelRequestMethod, SubscribeRequestMethod, SubscribeRequestParams, SubscriptionFilter,
    Tool, ToolAnnotations, UnsubscribeRequestMethod, UnsubscribeRequestParams,
};
// Logging is deprecated by SEP-2577; the conformance fixtures serve it for
// 2025-11-25 clients.
#[allow(deprecated)]
use rmcp::model::SetLevelRequestParams;
use rmcp::service::{RequestContext, SubscriptionContext, SubscriptionSink};
use rmcp::transport::streamable_http_server::session::local::LocalSessionManager;
use rmcp::transport::{StreamableHttpServerConfig, StreamableHttpService};
use rmcp::{ErrorData, RoleServer, ServerHandler, ServiceExt};
use serde_json::{Value, json};
use tokio::io::AsyncWriteExt;

use conformance::{Call, Conformance, Fixtures};

/// What the agent serves beyond its own tools.
#[derive(Debug, Clone, Copy, Default)]
pub struct Options {
    /// Also serve the conformance suite's fixtures (`--conformance`).
    pub conformance: bool,
}

/// Shared by every session (HTTP serves one handler per session).
#[derive(Default)]
pub struct State {
    extra_tools: Mutex<Vec<String>>,
    /// `subscriptions/listen` streams of 2026-07-28 clients.
    listeners: Mutex<Vec<SubscriptionSink>>,
    /// Calls that ended because the client cancelled them.
    cancelled: AtomicU64,
    /// The conformance fixtures, with `--conformance`.
    fixtures: Option<Arc<Fixtures>>,
}

impl State {
    /// The state of one agent process; starts the fixtures' clock when
    /// `options` asks for them, so call it on a Tokio runtime.
    pub fn new(options: Options) -> Arc<Self> {
        Arc::new(State {
            fixtures: options.conformance.then(Fixtures::start),
            ..State::default()
        })
    }
}

/// The agent's tools; one per session, all sharing one state.
#[derive(Clone)]
pub struct EchoAgent {
    state: Arc<State>,
    /// This session's view of the fixtures, with `--conformance`.
    conformance: Option<Conformance>,
}

/// The error a handler answers for a feature the agent does not declare
/// (the SDK's default for it).
fn not_declared<M: rmcp::model::ConstString>() -> ErrorData {
    ErrorData::method_not_found::<M>()
}

fn schema(v: Value) -> Arc<JsonObject> {
    Arc::new(v.as_object().cloned().unwrap_or_default())
}

fn read_only() -> ToolAnnotations {
    ToolAnnotations::new()
        .read_only(true)
        .idempotent(true)
        .destructive(false)
        .open_world(false)
}

impl EchoAgent {
    /// A handler for one session.
    pub fn new(state: &Arc<State>) -> Self {
        EchoAgent {
            conformance: state.fixtures.as_ref().map(Conformance::session),
            state: state.clone(),
        }
    }

    fn tools(&self) -> Vec<Tool> {
        let mut tools = vec![
            Tool::new(
                "echo",
                "Returns its text",
                schema(json!({
                    "type": "object",
                    "properties": {"text": {"type": "string"}},
                    "required": ["text"]
                })),
            )
            .with_title("Echo")
            .with_raw_output_schema(schema(json!({
                "type": "object",
                "properties": {"text": {"type": "string"}},
                "required": ["text"]
            })))
            .with_annotations(read_only()),
            Tool::new(
                "add",
                "Adds two numbers",
                schema(json!({
                    "type": "object",
                    "properties": {"a": {"type": "number"}, "b": {"type": "number"}},
                    "required": ["a", "b"]
                })),
            )
            .with_raw_output_schema(schema(json!({
                "type": "object",
                "properties": {"sum": {"type": "number"}},
                "required": ["sum"]
            })))
            .with_annotations(read_only()),
            Tool::new(
                "slow_count",
                "Counts to n with a delay, reporting progress at each step",
                schema(json!({
                    "type": "object",
                    "properties": {
                        "n": {"type": "integer", "minimum": 0, "maximum": 100000},
                        "delay_ms": {"type": "integer", "minimum": 0, "maximum": 60000}
                    },
                    "required": ["n"]
                })),
            ),
            Tool::new(
                "wait",
                "Waits ms milliseconds, then answers",
                schema(json!({
                    "type": "object",
                    "properties": {"ms": {"type": "integer", "minimum": 0, "maximum": 60000}},
                    "required": ["ms"]
                })),
            )
            .with_annotations(read_only()),
            Tool::new(
                "fail",
                "Always fails, as a tool error",
                schema(json!({"type": "object", "properties": {"message": {"type": "string"}}})),
            ),
            Tool::new(
                "crash",
                "Exits the server process without answering",
                schema(json!({"type": "object", "properties": {"code": {"type": "integer"}}})),
            ),
            Tool::new(
                "freeze",
                "Stops the server process so it answers nothing",
                schema(json!({"type": "object"})),
            ),
            Tool::new(
                "set_extra_tools",
                "Replaces the extra tools and announces the change",
                schema(json!({
                    "type": "object",
                    "properties": {"names": {"type": "array", "items": {"type": "string"}}},
                    "required": ["names"]
                })),
            ),
            Tool::new(
                "stats",
                "Process id and number of cancelled calls",
                schema(json!({"type": "object"})),
            )
            .with_annotations(read_only()),
        ];
        if let Some(c) = &self.conformance {
            // The fixtures first: the suite's header checks call the first
            // listed tool with no arguments.
            let mut all = c.tools();
            all.append(&mut tools);
            tools = all;
        }
        let extra = self
            .state
            .extra_tools
            .lock()
            .map(|e| e.clone())
            .unwrap_or_default();
        for name in extra {
            tools.push(Tool::new(
                name,
                "An extra tool; returns its own name",
                schema(json!({"type": "object"})),
            ));
        }
        tools
    }

    async fn announce_tool_change(&self, ctx: &RequestContext<RoleServer>) {
        // Sessions with an `initialize` handshake take the notification
        // unsolicited; 2026-07-28 ones only on their listen streams.
        let legacy = ctx.protocol_version().is_none_or(|v| v.has_initialize());
        if legacy && let Err(e) = ctx.peer.notify_tool_list_changed().await {
            tracing::warn!("list_changed not sent: {e}");
        }
        let sinks = self
            .state
            .listeners
            .lock()
            .map(|l| l.clone())
            .unwrap_or_default();
        for sink in sinks {
            if let Err(e) = sink.notify_tool_list_changed().await {
                tracing::debug!("listener gone: {e}");
            }
        }
    }
}

fn text_result(text: impl Into<String>, structured: Value) -> CallToolResponse {
    let mut r = CallToolResult::success(vec![ContentBlock::text(text)]);
    r.structured_content = Some(structured);
    r.into()
}

/// The W3C trace context the request came with, for `echo` to show in
/// its result's `_meta`: `traceparent` from the request's `_meta`, and
/// `traceparentHeader` from the HTTP header (with `--http`). `None` when
/// neither came.
fn trace_seen(ctx: &RequestContext<RoleServer>) -> Option<rmcp::model::MetaObject> {
    let mut m = JsonObject::new();
    if let Some(tp) = ctx.meta.get("traceparent") {
        m.insert("traceparent".into(), tp.clone());
    }
    let header = ctx
        .extensions
        .get::<http::request::Parts>()
        .and_then(|p| p.headers.get("traceparent")?.to_str().ok());
    if let Some(h) = header {
        m.insert("traceparentHeader".into(), Value::String(h.to_string()));
    }
    (!m.is_empty()).then_some(rmcp::model::MetaObject(m))
}

fn arg_f64(args: &JsonObject, key: &str) -> Result<f64, ErrorData> {
    args.get(key)
        .and_then(Value::as_f64)
        .ok_or_else(|| ErrorData::invalid_params(format!("`{key}` must be a number"), None))
}

impl ServerHandler for EchoAgent {
    fn get_info(&self) -> ServerConfig {
        let capabilities = match self.conformance {
            Some(_) => Conformance::capabilities(),
            None => ServerCapabilities::builder()
                .enable_tools()
                .enable_tool_list_changed()
                .build(),
        };
        ServerConfig::new(capabilities).with_server_info(Implementation::new(
            "agent-bgp-echo-agent",
            env!("CARGO_PKG_VERSION"),
        ))
    }

    async fn list_tools(
        &self,
        _request: Option<PaginatedRequestParams>,
        _context: RequestContext<RoleServer>,
    ) -> Result<ListToolsResult, ErrorData> {
        Ok(ListToolsResult::with_all_items(self.tools()))
    }

    /// Only with `--conformance`, where rmcp uses it to check SEP-2243
    /// `Mcp-Param-*` headers against `x-mcp-header` arguments; without it
    /// the SDK's default (`None`) stands.
    fn get_tool(&self, name: &str) -> Option<Tool> {
        self.conformance.as_ref()?;
        self.tools().into_iter().find(|t| t.name == name)
    }

    async fn call_tool(
        &self,
        request: CallToolRequestParams,
        ctx: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, ErrorData> {
        let args = request.arguments.clone().unwrap_or_default();
        match request.name.as_ref() {
            "echo" => {
                let text = args
                    .get("text")
                    .and_then(Value::as_str)
                    .ok_or_else(|| ErrorData::invalid_params("`text` must be a string", None))?;
                let mut r = CallToolResult::success(vec![ContentBlock::text(text)]);
                r.structured_content = Some(json!({ "text": text }));
                r.meta = trace_seen(&ctx);
                Ok(r.into())
            }
            "add" => {
                let sum = arg_f64(&args, "a")? + arg_f64(&args, "b")?;
                Ok(text_result(sum.to_string(), json!({ "sum": sum })))
            }
            "slow_count" => {
                let n = args
                    .get("n")
                    .and_then(Value::as_u64)
                    .unwrap_or(0)
                    .min(100_000);
                let delay = args
                    .get("delay_ms")
                    .and_then(Value::as_u64)
                    .unwrap_or(100)
                    .min(60_000);
                let token = ctx.meta.get_progress_token();
                for i in 1..=n {
                    tokio::select! {
                        _ = ctx.ct.cancelled() => {
                            self.state.cancelled.fetch_add(1, Ordering::Relaxed);
                            eprintln!("slow_count cancelled at {i}");
                            return Err(ErrorData::internal_error("cancelled", None));
                        }
                        _ = tokio::time::sleep(Duration::from_millis(delay)) => {}
                    }
                    if let Some(token) = &token {
                        let p = ProgressNotificationParam::new(token.clone(), i as f64)
                            .with_total(n as f64)
                            .with_message(format!("{i}/{n}"));
                        let _ = ctx.peer.notify_progress(p).await;
                    }
                }
                Ok(text_result(
                    format!("counted to {n}"),
                    json!({ "count": n }),
                ))
            }
            "wait" => {
                let ms = args
                    .get("ms")
                    .and_then(Value::as_u64)
                    .unwrap_or(0)
                    .min(60_000);
                tokio::select! {
                    _ = ctx.ct.cancelled() => {
                        self.state.cancelled.fetch_add(1, Ordering::Relaxed);
                        Err(ErrorData::internal_error("cancelled", None))
                    }
                    _ = tokio::time::sleep(Duration::from_millis(ms)) => {
                        Ok(text_result(format!("waited {ms} ms"), json!({ "waited_ms": ms })))
                    }
                }
            }
            "stats" => {
                let cancelled = self.state.cancelled.load(Ordering::Relaxed);
                let pid = std::process::id();
                Ok(text_result(
                    format!("pid {pid}, {cancelled} cancelled"),
                    json!({ "pid": pid, "cancelled": cancelled }),
                ))
            }
            "fail" => {
                let msg = args
                    .get("message")
                    .and_then(Value::as_str)
                    .unwrap_or("this tool always fails");
                Ok(CallToolResult::error(vec![ContentBlock::text(msg)]).into())
            }
            "crash" => {
                let code = args.get("code").and_then(Value::as_i64).unwrap_or(3);
                eprintln!("crashing on request with code {code}");
                std::process::exit(i32::try_from(code).unwrap_or(3));
            }
            "freeze" => {
                eprintln!("freezing on request");
                #[cfg(unix)]
                // SAFETY: raise(3) only sends a signal to this process.
                unsafe {
                    libc::raise(libc::SIGSTOP);
                }
                Ok(text_result("thawed", json!({})))
            }
            "set_extra_tools" => {
                let names: Vec<String> = args
                    .get("names")
                    .and_then(Value::as_array)
                    .map(|a| {
                        a.iter()
                            .filter_map(|v| v.as_str().map(String::from))
                            .collect()
                    })
                    .ok_or_else(|| ErrorData::invalid_params("`names` must be a list", None))?;
                if let Ok(mut extra) = self.state.extra_tools.lock() {
                    *extra = names.clone();
                }
                self.announce_tool_change(&ctx).await;
                Ok(text_result(
                    format!("{} extra tools", names.len()),
                    json!({ "names": names }),
                ))
            }
            other => {
                if let Some(c) = &self.conformance {
                    let r = match c.call(&request, &ctx).await {
                        Call::NotMine => None,
                        Call::Done(r) => Some(r),
                        Call::ToolsChanged(r) => {
                            self.announce_tool_change(&ctx).await;
                            Some(r)
                        }
                    };
                    if let Some(r) = r {
                        if ctx.ct.is_cancelled() {
                            self.state.cancelled.fetch_add(1, Ordering::Relaxed);
                        }
                        return r;
                    }
                }
                let extra = self
                    .state
                    .extra_tools
                    .lock()
                    .map(|e| e.iter().any(|n| n == other))
                    .unwrap_or(false);
                if extra {
                    Ok(text_result(other, json!({ "name": other })))
                } else {
                    Err(ErrorData::invalid_params(
                        format!("no tool {other:?}"),
                        None,
                    ))
                }
            }
        }
    }

    fn accepted_subscription_filter(
        &self,
        requested: &SubscriptionFilter,
    ) -> Option<SubscriptionFilter> {
        let filter = SubscriptionFilter::builder().tools_list_changed();
        Some(match self.conformance {
            Some(_) => filter
                .resource_subscriptions(Conformance::accepted_resources(requested))
                .build(),
            None => filter.build(),
        })
    }

    async fn listen(&self, context: SubscriptionContext) -> Result<(), ErrorData> {
        if let Ok(mut l) = self.state.listeners.lock() {
            l.push(context.sink().clone());
        }
        match &self.conformance {
            Some(c) => {
                c.forward_updates(context.sink(), context.accepted(), context.cancelled())
                    .await
            }
            None => context.cancelled().await,
        }
        Ok(())
    }

    // The conformance fixtures' features; without `--conformance` these
    // answer what the SDK answers for an undeclared feature.

    async fn list_prompts(
        &self,
        _request: Option<PaginatedRequestParams>,
        _context: RequestContext<RoleServer>,
    ) -> Result<ListPromptsResult, ErrorData> {
        match self.conformance {
            Some(_) => Ok(Conformance::list_prompts()),
            None => Err(not_declared::<ListPromptsRequestMethod>()),
        }
    }

    async fn get_prompt(
        &self,
        request: GetPromptRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<GetPromptResponse, ErrorData> {
        match &self.conformance {
            Some(c) => c.get_prompt(&request, &context),
            None => Err(not_declared::<GetPromptRequestMethod>()),
        }
    }

    async fn list_resources(
        &self,
        _request: Option<PaginatedRequestParams>,
        _context: RequestContext<RoleServer>,
    ) -> Result<ListResourcesResult, ErrorData> {
        match self.conformance {
            Some(_) => Ok(Conformance::list_resources()),
            None => Err(not_declared::<ListResourcesRequestMethod>()),
        }
    }

    async fn list_resource_templates(
        &self,
        _request: Option<PaginatedRequestParams>,
        _context: RequestContext<RoleServer>,
    ) -> Result<ListResourceTemplatesResult, ErrorData> {
        match self.conformance {
            Some(_) => Ok(Conformance::list_resource_templates()),
            None => Err(not_declared::<ListResourceTemplatesRequestMethod>()),
        }
    }

    async fn read_resource(
        &self,
        request: ReadResourceRequestParams,
        _context: RequestContext<RoleServer>,
    ) -> Result<ReadResourceResponse, ErrorData> {
        match &self.conformance {
            Some(c) => c.read_resource(&request),
            None => Err(not_declared::<ReadResourceRequestMethod>()),
        }
    }

    async fn subscribe(
        &self,
        request: SubscribeRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<(), ErrorData> {
        match &self.conformance {
            Some(c) => c.subscribe(&request.uri, &context),
            None => Err(not_declared::<SubscribeRequestMethod>()),
        }
    }

    async fn unsubscribe(
        &self,
        request: UnsubscribeRequestParams,
        _context: RequestContext<RoleServer>,
    ) -> Result<(), ErrorData> {
        match &self.conformance {
            Some(c) => {
                c.unsubscribe(&request.uri);
                Ok(())
            }
            None => Err(not_declared::<UnsubscribeRequestMethod>()),
        }
    }

    async fn complete(
        &self,
        request: CompleteRequestParams,
        _context: RequestContext<RoleServer>,
    ) -> Result<CompleteResult, ErrorData> {
        match self.conformance {
            Some(_) => Conformance::complete(&request),
            None => Err(not_declared::<CompleteRequestMethod>()),
        }
    }

    #[allow(deprecated)] // see the import of SetLevelRequestParams
    async fn set_level(
        &self,
        request: SetLevelRequestParams,
        _context: RequestContext<RoleServer>,
    ) -> Result<(), ErrorData> {
        match &self.conformance {
            Some(c) => {
                c.set_level(request.level);
                Ok(())
            }
            None => Err(not_declared::<SetLevelRequestMethod>()),
        }
    }
}

/// Why the example agent stopped.
#[derive(Debug, thiserror::Error)]
pub enum ExampleAgentError {
    #[error("MCP over stdio: {0}")]
    Stdio(String),
    #[error("binding {addr}: {source}")]
    Bind {
        addr: String,
        #[source]
        source: std::io::Error,
    },
    #[error("HTTP: {0}")]
    Http(#[source] std::io::Error),
}

/// Serves the tools on stdin/stdout until the client closes them.
pub async fn serve_stdio(options: Options) -> Result<(), ExampleAgentError> {
    let state = State::new(options);
    let service = EchoAgent::new(&state)
        .serve(crate::mcp::stdio::streams())
        .await
        .map_err(|e| ExampleAgentError::Stdio(e.to_string()))?;
    service
        .waiting()
        .await
        .map(|_| ())
        .map_err(|e| ExampleAgentError::Stdio(e.to_string()))
}

/// The `Origin`s the HTTP server accepts: pages served from this machine.
pub const LOOPBACK_ORIGINS: [&str; 6] = [
    "http://localhost:*",
    "http://127.0.0.1:*",
    "http://[::1]:*",
    "https://localhost:*",
    "https://127.0.0.1:*",
    "https://[::1]:*",
];

/// Serves the tools over streamable HTTP at `http://ADDR/mcp`, printing
/// `listening on http://ADDR/mcp` on stdout first.
///
/// Against DNS rebinding it refuses (403) a request whose `Host` is not a
/// loopback name (`localhost`, `127.0.0.1`, `::1`: rmcp's default) or that
/// carries an `Origin` other than a loopback page ([`LOOPBACK_ORIGINS`]);
/// clients that send no `Origin` (every non-browser client) pass.
pub async fn serve_http(addr: &str, options: Options) -> Result<(), ExampleAgentError> {
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|source| ExampleAgentError::Bind {
            addr: addr.into(),
            source,
        })?;
    let bound = listener.local_addr().map_err(ExampleAgentError::Http)?;
    let state = State::new(options);
    let service = StreamableHttpService::new(
        move || Ok(EchoAgent::new(&state)),
        LocalSessionManager::default().into(),
        StreamableHttpServerConfig::default()
            .with_json_response(true)
            .with_allowed_origins(LOOPBACK_ORIGINS),
    );
    let app = axum::Router::new().nest_service("/mcp", service);
    let mut out = tokio::io::stdout();
    out.write_all(format!("listening on http://{bound}/mcp\n").as_bytes())
        .await
        .map_err(ExampleAgentError::Http)?;
    out.flush().await.map_err(ExampleAgentError::Http)?;
    axum::serve(listener, app)
        .await
        .map_err(ExampleAgentError::Http)
}
