//! The example agent's conformance fixtures: the tools, prompts, resources,
//! completions and logging that the server scenarios of the official MCP
//! conformance suite (`@modelcontextprotocol/conformance`) call by name. They
//! are served only with `--conformance` (see the parent module), so the demo
//! and the other tests keep seeing the agent's usual tool list.
//!
//! What each fixture answers is what the suite's scenarios expect (their
//! descriptions in the suite's `dist/index.js` name the tools, prompts and
//! URIs). Server-to-client requests (sampling, elicitation) go to the client
//! during the call on a session with an `initialize` handshake (2025-11-25
//! and older); on a 2026-07-28 request they come back as an `input_required`
//! result instead (SEP-2322, `input_required.rs`, which also has the
//! `test_input_required_result_*` fixtures).
//!
//! Sampling, roots and logging are deprecated by SEP-2577 and rmcp marks
//! their types so; this module serves them on purpose, hence the allowance.
#![allow(deprecated)]

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rmcp::model::{
    CallToolRequestParams, CallToolResponse, CallToolResult, ClientCapabilities, ClientResult,
    CompleteRequestParams, CompleteResult, CompletionInfo, ContentBlock,
    CreateMessageRequestParams, ElicitRequest, ElicitRequestParams, GetPromptRequestParams,
    GetPromptResponse, GetPromptResult, JsonObject, ListPromptsResult, ListResourceTemplatesResult,
    ListResourcesResult, LoggingLevel, LoggingMessageNotificationParam, Prompt, PromptArgument,
    PromptMessage, ReadResourceRequestParams, ReadResourceResponse, ReadResourceResult, Reference,
    Resource, ResourceContents, ResourceTemplate, ResourceUpdatedNotificationParam, Role,
    SamplingMessage, ServerCapabilities, ServerRequest, SubscriptionFilter, Tool,
};
use rmcp::service::{RequestContext, SubscriptionSink};
use rmcp::{ErrorData, RoleServer};
use serde_json::{Value, json};
use tokio::sync::broadcast;
use tokio_util::sync::CancellationToken;

use super::input_required::{
    self, Needs, StateSeal, elicit_request, sampled, sampling_request, sampling_text,
};
use super::schema;
use crate::mcp::log_level::severity;

/// A 1x1 red PNG.
const PNG_1X1: &str = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8DwHwAFBQIAX8jx0gAAAABJRU5ErkJggg==";
/// A valid WAV file: 8 samples of silence, 8 kHz, mono, 16 bit.
const WAV_SILENCE: &str =
    "UklGRjQAAABXQVZFZm10IBAAAAABAAEAQB8AAIA+AAACABAAZGF0YRAAAAAAAAAAAAAAAAAAAAAAAAAA";
/// The `logger` of the agent's log notifications.
const LOGGER: &str = "agent-bgp-echo-agent";

pub const STATIC_TEXT: &str = "test://static-text";
pub const STATIC_BINARY: &str = "test://static-binary";
pub const WATCHED: &str = "test://watched-resource";
pub const TEMPLATE: &str = "test://template/{id}/data";
const STATIC_TEXT_BODY: &str = "This is the content of the static text resource.";

/// How often the watched resource changes.
pub const WATCH_PERIOD: Duration = Duration::from_secs(1);

/// Fixture state shared by every session of one agent process.
pub struct Fixtures {
    /// The watched resource's revision; it grows by one each
    /// [`WATCH_PERIOD`].
    revision: AtomicU64,
    /// Fires on each change of the watched resource.
    changed: broadcast::Sender<u64>,
    /// Seals the `requestState` of `input_required` results.
    seal: StateSeal,
    /// Whether `test_dynamic_tool` is listed (`test_trigger_tool_change`
    /// flips it).
    dynamic_tool: AtomicBool,
}

impl Fixtures {
    /// Creates the fixtures and starts the watched resource's clock (on the
    /// current Tokio runtime; it stops when the fixtures are dropped).
    pub fn start() -> Arc<Self> {
        let (changed, _) = broadcast::channel(16);
        let fixtures = Arc::new(Fixtures {
            revision: AtomicU64::new(0),
            changed,
            seal: StateSeal::random(),
            dynamic_tool: AtomicBool::new(false),
        });
        let weak = Arc::downgrade(&fixtures);
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(WATCH_PERIOD);
            tick.tick().await; // the first tick is immediate
            loop {
                tick.tick().await;
                let Some(f) = weak.upgrade() else { break };
                let rev = f.revision.fetch_add(1, Ordering::Relaxed) + 1;
                // No receiver (nobody subscribed) is not an error.
                let _ = f.changed.send(rev);
            }
        });
        fixtures
    }
}

/// One session's fixture state: its log level and resource subscriptions.
#[derive(Default)]
pub struct Session {
    /// Set by `logging/setLevel`; until then every level is sent.
    log_level: Mutex<Option<LoggingLevel>>,
    /// Subscribed URI -> the token that stops its update forwarder.
    subscriptions: Mutex<HashMap<String, CancellationToken>>,
}

impl Drop for Session {
    fn drop(&mut self) {
        if let Ok(subs) = self.subscriptions.lock() {
            for token in subs.values() {
                token.cancel();
            }
        }
    }
}

/// The fixtures as one session sees them.
#[derive(Clone)]
pub struct Conformance {
    fixtures: Arc<Fixtures>,
    session: Arc<Session>,
}

/// What a fixture tool call gives back to the agent.
pub enum Call {
    /// Not a fixture tool.
    NotMine,
    Done(Result<CallToolResponse, ErrorData>),
    /// Done, and the tool list changed: the agent announces it.
    ToolsChanged(Result<CallToolResponse, ErrorData>),
}

/// Whether the request comes from a 2026-07-28 client (no `initialize`,
/// no server-to-client requests, `input_required` results instead).
fn stateless(ctx: &RequestContext<RoleServer>) -> bool {
    ctx.protocol_version().is_some_and(|v| !v.has_initialize())
}

/// The capabilities the client declared: per request on 2026-07-28, at
/// `initialize` before.
pub fn client_capabilities(ctx: &RequestContext<RoleServer>) -> ClientCapabilities {
    ctx.meta
        .client_capabilities()
        .or_else(|| ctx.peer.peer_info().map(|i| i.capabilities.clone()))
        .unwrap_or_default()
}

fn no_args() -> Arc<JsonObject> {
    schema(json!({"type": "object", "properties": {}}))
}

pub fn text(t: impl Into<String>) -> CallToolResponse {
    CallToolResult::success(vec![ContentBlock::text(t)]).into()
}

fn tool_error(t: impl Into<String>) -> CallToolResponse {
    CallToolResult::error(vec![ContentBlock::text(t)]).into()
}

fn cancelled() -> ErrorData {
    ErrorData::internal_error("cancelled", None)
}

fn arg_str<'a>(args: &'a JsonObject, key: &str) -> Result<&'a str, ErrorData> {
    args.get(key)
        .and_then(Value::as_str)
        .ok_or_else(|| ErrorData::invalid_params(format!("`{key}` must be a string"), None))
}

fn not_found(uri: &str) -> ErrorData {
    // SEP-2164: -32602 with the URI in `data`.
    ErrorData::invalid_params("Resource not found", Some(json!({ "uri": uri })))
}

/// `elicitation/create`'s answer as the tools report it.
fn elicit_summary(answer: &Value) -> String {
    let action = answer
        .get("action")
        .and_then(Value::as_str)
        .unwrap_or("(none)");
    let content = answer.get("content").cloned().unwrap_or(json!({}));
    format!("action={action}, content={content}")
}

/// The schema of `test_elicitation` (what the suite's description shows).
fn user_info_schema() -> Value {
    json!({
        "type": "object",
        "properties": {
            "username": {"type": "string", "description": "User's response"},
            "email": {"type": "string", "description": "User's email address"}
        },
        "required": ["username", "email"]
    })
}

/// SEP-1034: a default for every primitive type.
fn defaults_schema() -> Value {
    json!({
        "type": "object",
        "properties": {
            "name": {"type": "string", "description": "User name", "default": "John Doe"},
            "age": {"type": "integer", "description": "User age", "default": 30},
            "score": {"type": "number", "description": "User score", "default": 95.5},
            "status": {
                "type": "string",
                "description": "User status",
                "enum": ["active", "inactive", "pending"],
                "default": "active"
            },
            "verified": {"type": "boolean", "description": "Verification status", "default": true}
        }
    })
}

/// SEP-1330: the five enum shapes.
fn enums_schema() -> Value {
    json!({
        "type": "object",
        "properties": {
            "untitledSingle": {
                "type": "string",
                "description": "Select one option",
                "enum": ["option1", "option2", "option3"]
            },
            "titledSingle": {
                "type": "string",
                "description": "Select one option with titles",
                "oneOf": [
                    {"const": "value1", "title": "First Option"},
                    {"const": "value2", "title": "Second Option"},
                    {"const": "value3", "title": "Third Option"}
                ]
            },
            "legacyEnum": {
                "type": "string",
                "description": "Select one option (legacy)",
                "enum": ["opt1", "opt2", "opt3"],
                "enumNames": ["Option One", "Option Two", "Option Three"]
            },
            "untitledMulti": {
                "type": "array",
                "description": "Select multiple options",
                "minItems": 1,
                "maxItems": 3,
                "items": {"type": "string", "enum": ["option1", "option2", "option3"]}
            },
            "titledMulti": {
                "type": "array",
                "description": "Select multiple options with titles",
                "minItems": 1,
                "maxItems": 3,
                "items": {
                    "anyOf": [
                        {"const": "value1", "title": "First Choice"},
                        {"const": "value2", "title": "Second Choice"},
                        {"const": "value3", "title": "Third Choice"}
                    ]
                }
            }
        }
    })
}

/// SEP-1613 and SEP-2106: a JSON Schema 2020-12 input schema whose keywords
/// must reach the client unchanged.
fn json_schema_2020_12() -> Value {
    json!({
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "type": "object",
        "$defs": {
            "address": {
                "$anchor": "addressDef",
                "type": "object",
                "properties": {"street": {"type": "string"}, "city": {"type": "string"}}
            }
        },
        "properties": {
            "name": {"type": "string"},
            "address": {"$ref": "#/$defs/address"},
            "contactMethod": {"type": "string", "enum": ["phone", "email"]},
            "phone": {"type": "string"},
            "email": {"type": "string"}
        },
        "allOf": [{"anyOf": [{"required": ["phone"]}, {"required": ["email"]}]}],
        "if": {"properties": {"contactMethod": {"const": "phone"}}, "required": ["contactMethod"]},
        "then": {"required": ["phone"]},
        "else": {"required": ["email"]},
        "additionalProperties": false
    })
}

/// The fixture tools: (name, description, input schema).
fn tool_table() -> Vec<(&'static str, &'static str, Arc<JsonObject>)> {
    let prompt_arg = schema(json!({
        "type": "object",
        "properties": {"prompt": {"type": "string", "description": "The prompt to send to the LLM"}},
        "required": ["prompt"]
    }));
    let message_arg = schema(json!({
        "type": "object",
        "properties": {"message": {"type": "string", "description": "The message to show the user"}},
        "required": ["message"]
    }));
    let header_arg = schema(json!({
        "type": "object",
        "properties": {
            "region": {
                "type": "string",
                "description": "Also sent as the Mcp-Param-Region header (SEP-2243)",
                "x-mcp-header": "Region"
            }
        },
        "required": ["region"]
    }));
    // test_simple_text first: the suite's header checks call the first
    // listed tool with no arguments.
    let mut tools = vec![
        ("test_simple_text", "Returns a simple text", no_args()),
        ("test_image_content", "Returns an image (PNG)", no_args()),
        ("test_audio_content", "Returns audio (WAV)", no_args()),
        (
            "test_embedded_resource",
            "Returns an embedded text resource",
            no_args(),
        ),
        (
            "test_multiple_content_types",
            "Returns text, an image and a resource",
            no_args(),
        ),
        (
            "test_tool_with_logging",
            "Sends three log messages while it runs",
            no_args(),
        ),
        (
            "test_tool_with_progress",
            "Reports progress 0, 50 and 100 of 100",
            no_args(),
        ),
        (
            "test_error_handling",
            "Always fails, as a tool error",
            no_args(),
        ),
        (
            "test_sampling",
            "Asks the client's LLM to answer the prompt",
            prompt_arg,
        ),
        (
            "test_elicitation",
            "Asks the client's user for a name and email",
            message_arg,
        ),
        (
            "test_elicitation_sep1034_defaults",
            "Elicitation with a default per field (SEP-1034)",
            no_args(),
        ),
        (
            "test_elicitation_sep1330_enums",
            "Elicitation with the five enum shapes (SEP-1330)",
            no_args(),
        ),
        (
            "json_schema_2020_12_tool",
            "Takes a JSON Schema 2020-12 input (SEP-1613, SEP-2106)",
            schema(json_schema_2020_12()),
        ),
        (
            "test_missing_capability",
            "Needs the sampling capability: asks the client's LLM for a greeting",
            no_args(),
        ),
        (
            "test_streaming_elicitation",
            "Asks the user to confirm (on 2026-07-28 inside the input_required result, never as a request on the stream)",
            no_args(),
        ),
        (
            "test_logging_tool",
            "Sends three log messages while it runs (on 2026-07-28 only with _meta logLevel)",
            no_args(),
        ),
        (
            "test_trigger_tool_change",
            "Adds or removes test_dynamic_tool and announces tools/list_changed",
            no_args(),
        ),
        (
            "test_custom_header",
            "Returns its region, which also travels as a header (SEP-2243)",
            header_arg,
        ),
    ];
    tools.extend(input_required::TOOLS.map(|(name, description)| (name, description, no_args())));
    tools
}

impl Conformance {
    /// A session's view of the fixtures.
    pub fn session(fixtures: &Arc<Fixtures>) -> Self {
        Conformance {
            fixtures: fixtures.clone(),
            session: Arc::new(Session::default()),
        }
    }

    /// What the server declares on top of tools.
    pub fn capabilities() -> ServerCapabilities {
        ServerCapabilities::builder()
            .enable_logging()
            .enable_completions()
            .enable_prompts()
            .enable_resources()
            .enable_resources_subscribe()
            .enable_tools()
            .enable_tool_list_changed()
            .build()
    }

    pub fn tools(&self) -> Vec<Tool> {
        let mut tools: Vec<Tool> = tool_table()
            .into_iter()
            .map(|(name, description, input)| Tool::new(name, description, input))
            .collect();
        if self.fixtures.dynamic_tool.load(Ordering::Relaxed) {
            tools.push(Tool::new(
                "test_dynamic_tool",
                "Listed after test_trigger_tool_change; returns its name",
                no_args(),
            ));
        }
        tools
    }

    /// Sends a log notification if the client asked for this level: on a
    /// session, from `logging/setLevel` on (everything before it); on a
    /// 2026-07-28 request, only with `_meta.io.modelcontextprotocol/logLevel`.
    async fn log(&self, ctx: &RequestContext<RoleServer>, level: LoggingLevel, message: &str) {
        let threshold = if stateless(ctx) {
            match ctx.meta.log_level() {
                Some(l) => Some(l),
                None => return,
            }
        } else {
            self.session.log_level.lock().map(|l| *l).unwrap_or(None)
        };
        if threshold.is_some_and(|t| severity(level) < severity(t)) {
            return;
        }
        let param = LoggingMessageNotificationParam::new(level, json!(message)).with_logger(LOGGER);
        if let Err(e) = ctx.peer.notify_logging_message(param).await {
            tracing::debug!("log notification not sent: {e}");
        }
    }

    pub fn set_level(&self, level: LoggingLevel) {
        if let Ok(mut l) = self.session.log_level.lock() {
            *l = Some(level);
        }
    }

    /// Calls fixture tool `request.name`, if it is one.
    pub async fn call(
        &self,
        request: &CallToolRequestParams,
        ctx: &RequestContext<RoleServer>,
    ) -> Call {
        let args = request.arguments.clone().unwrap_or_default();
        let r = match request.name.as_ref() {
            "test_simple_text" => Ok(text("This is a simple text response for testing.")),
            "test_image_content" => {
                Ok(CallToolResult::success(vec![ContentBlock::image(PNG_1X1, "image/png")]).into())
            }
            "test_audio_content" => Ok(CallToolResult::success(vec![ContentBlock::audio(
                WAV_SILENCE,
                "audio/wav",
            )])
            .into()),
            "test_embedded_resource" => Ok(CallToolResult::success(vec![ContentBlock::resource(
                ResourceContents::text(
                    "This is an embedded resource content.",
                    "test://embedded-resource",
                ),
            )])
            .into()),
            "test_multiple_content_types" => Ok(CallToolResult::success(vec![
                ContentBlock::text("Multiple content types test:"),
                ContentBlock::image(PNG_1X1, "image/png"),
                ContentBlock::resource(
                    ResourceContents::text(
                        json!({"test": "data", "value": 123}).to_string(),
                        "test://mixed-content-resource",
                    )
                    .with_mime_type("application/json"),
                ),
            ])
            .into()),
            "test_tool_with_logging" | "test_logging_tool" => self.with_logging(ctx).await,
            "test_tool_with_progress" => with_progress(ctx).await,
            "test_error_handling" => Ok(tool_error(
                "This tool intentionally returns an error for testing",
            )),
            "test_sampling" => match arg_str(&args, "prompt") {
                Ok(prompt) => self.sampling(request, ctx, prompt).await,
                Err(e) => Err(e),
            },
            "test_elicitation" => match arg_str(&args, "message") {
                Ok(message) => {
                    self.elicitation(request, ctx, message, user_info_schema(), "User response")
                        .await
                }
                Err(e) => Err(e),
            },
            "test_elicitation_sep1034_defaults" => {
                self.elicitation(
                    request,
                    ctx,
                    "Please review and update the form fields with defaults",
                    defaults_schema(),
                    "Elicitation completed",
                )
                .await
            }
            "test_elicitation_sep1330_enums" => {
                self.elicitation(
                    request,
                    ctx,
                    "Please select options from the enum fields",
                    enums_schema(),
                    "Elicitation completed",
                )
                .await
            }
            "json_schema_2020_12_tool" => Ok(text(format!(
                "JSON Schema 2020-12 tool called with: {}",
                Value::Object(args.clone())
            ))),
            "test_missing_capability" => self.sampling(request, ctx, "Say hello in one word").await,
            "test_streaming_elicitation" => {
                let form = json!({
                    "type": "object",
                    "properties": {"ok": {"type": "boolean", "description": "Go ahead?"}},
                    "required": ["ok"]
                });
                self.elicitation(request, ctx, "Please confirm", form, "Confirmation")
                    .await
            }
            "test_trigger_tool_change" => {
                let listed = !self
                    .fixtures
                    .dynamic_tool
                    .fetch_xor(true, Ordering::Relaxed);
                let r = Ok(text(if listed {
                    "test_dynamic_tool added"
                } else {
                    "test_dynamic_tool removed"
                }));
                return Call::ToolsChanged(r);
            }
            "test_dynamic_tool" if self.fixtures.dynamic_tool.load(Ordering::Relaxed) => {
                Ok(text("test_dynamic_tool"))
            }
            "test_custom_header" => {
                // rmcp checks the Mcp-Param-Region header against this
                // argument (SEP-2243) before the call gets here.
                arg_str(&args, "region").map(|region| text(format!("region={region}")))
            }
            name if input_required::TOOLS.iter().any(|(n, _)| *n == name) => {
                if stateless(ctx) {
                    input_required::tool(name, request, ctx, &self.fixtures.seal).await
                } else {
                    Ok(tool_error(
                        "input_required results need protocol 2026-07-28; this session negotiated an older one",
                    ))
                }
            }
            _ => return Call::NotMine,
        };
        Call::Done(r)
    }

    async fn with_logging(
        &self,
        ctx: &RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, ErrorData> {
        let steps = [
            "Tool execution started",
            "Tool processing data",
            "Tool execution completed",
        ];
        for (i, step) in steps.iter().enumerate() {
            if i > 0 {
                pause(ctx, 50).await?;
            }
            self.log(ctx, LoggingLevel::Info, step).await;
        }
        Ok(text("Tool with logging executed successfully"))
    }

    /// `test_sampling`: a `sampling/createMessage` to the client during the
    /// call, or an `input_required` result on 2026-07-28.
    async fn sampling(
        &self,
        request: &CallToolRequestParams,
        ctx: &RequestContext<RoleServer>,
        prompt: &str,
    ) -> Result<CallToolResponse, ErrorData> {
        let answer = if stateless(ctx) {
            // Without the capability, Needs answers -32021 (SEP-2575).
            let mut needs = Needs::of_call(request, ctx);
            let Some(v) = needs.input("sampling", sampling_request(prompt, 100)?)? else {
                return needs.ask(None);
            };
            sampled(&v, "sampling")?
        } else {
            if client_capabilities(ctx).sampling.is_none() {
                return Ok(tool_error(
                    "the client did not declare the sampling capability",
                ));
            }
            let params =
                CreateMessageRequestParams::new(vec![SamplingMessage::user_text(prompt)], 100);
            match ctx.peer.create_message(params).await {
                Ok(r) => sampling_text(&r),
                Err(e) => return Ok(tool_error(format!("sampling failed: {e}"))),
            }
        };
        Ok(text(format!("LLM response: {answer}")))
    }

    /// An `elicitation/create` form to the client during the call, or an
    /// `input_required` result on 2026-07-28; answers `"{lead}: action=...,
    /// content=..."`.
    async fn elicitation(
        &self,
        request: &CallToolRequestParams,
        ctx: &RequestContext<RoleServer>,
        message: &str,
        schema: Value,
        lead: &str,
    ) -> Result<CallToolResponse, ErrorData> {
        let answer = if stateless(ctx) {
            let mut needs = Needs::of_call(request, ctx);
            let Some(v) = needs.input("elicitation", elicit_request(message, schema)?)? else {
                return needs.ask(None);
            };
            v
        } else {
            if client_capabilities(ctx).elicitation.is_none() {
                return Ok(tool_error(
                    "the client did not declare the elicitation capability",
                ));
            }
            let params: ElicitRequestParams = serde_json::from_value(json!({
                "mode": "form",
                "message": message,
                "requestedSchema": schema
            }))
            .map_err(|e| ErrorData::internal_error(format!("elicitation schema: {e}"), None))?;
            let req = ServerRequest::ElicitRequest(ElicitRequest::new(params));
            match ctx.peer.send_request(req).await {
                Ok(ClientResult::ElicitResult(r)) => serde_json::to_value(&r)
                    .map_err(|e| ErrorData::internal_error(e.to_string(), None))?,
                Ok(other) => {
                    return Ok(tool_error(format!(
                        "unexpected answer to elicitation: {other:?}"
                    )));
                }
                Err(e) => return Ok(tool_error(format!("elicitation failed: {e}"))),
            }
        };
        Ok(text(format!("{lead}: {}", elicit_summary(&answer))))
    }

    pub fn list_prompts() -> ListPromptsResult {
        let arg = |name: &str, description: &str| {
            PromptArgument::new(name)
                .with_description(description)
                .with_required(true)
        };
        ListPromptsResult::with_all_items(vec![
            Prompt::new(
                "test_simple_prompt",
                Some("A simple prompt without arguments"),
                None,
            )
            .with_title("Simple Test Prompt"),
            Prompt::new(
                "test_prompt_with_arguments",
                Some("A prompt with required arguments"),
                Some(vec![
                    arg("arg1", "First test argument"),
                    arg("arg2", "Second test argument"),
                ]),
            )
            .with_title("Prompt With Arguments"),
            Prompt::new(
                "test_prompt_with_embedded_resource",
                Some("A prompt that includes an embedded resource"),
                Some(vec![arg("resourceUri", "URI of the resource to embed")]),
            )
            .with_title("Prompt With Embedded Resource"),
            Prompt::new(
                "test_prompt_with_image",
                Some("A prompt that includes image content"),
                None,
            )
            .with_title("Prompt With Image"),
            Prompt::new(
                input_required::PROMPT,
                Some("Asks the user for context through an input_required result (2026-07-28)"),
                None,
            ),
        ])
    }

    pub fn get_prompt(
        &self,
        request: &GetPromptRequestParams,
        ctx: &RequestContext<RoleServer>,
    ) -> Result<GetPromptResponse, ErrorData> {
        let args = request.arguments.clone().unwrap_or_default();
        let user_text = |t: String| PromptMessage::new_text(Role::User, t);
        let messages = match request.name.as_str() {
            "test_simple_prompt" => vec![user_text("This is a simple prompt for testing.".into())],
            "test_prompt_with_arguments" => {
                let arg1 = arg_str(&args, "arg1")?;
                let arg2 = arg_str(&args, "arg2")?;
                vec![user_text(format!(
                    "Prompt with arguments: arg1='{arg1}', arg2='{arg2}'"
                ))]
            }
            "test_prompt_with_embedded_resource" => {
                let uri = arg_str(&args, "resourceUri")?;
                vec![
                    PromptMessage::new(
                        Role::User,
                        ContentBlock::resource(ResourceContents::text(
                            "Embedded resource content for testing.",
                            uri,
                        )),
                    ),
                    user_text("Please process the embedded resource above.".into()),
                ]
            }
            "test_prompt_with_image" => vec![
                PromptMessage::new(Role::User, ContentBlock::image(PNG_1X1, "image/png")),
                user_text("Please analyze the image above.".into()),
            ],
            input_required::PROMPT => {
                if !stateless(ctx) {
                    return Err(ErrorData::invalid_params(
                        "this prompt needs protocol 2026-07-28 (input_required results)",
                        None,
                    ));
                }
                return input_required::prompt(request, ctx);
            }
            other => {
                return Err(ErrorData::invalid_params(
                    format!("no prompt {other:?}"),
                    None,
                ));
            }
        };
        Ok(GetPromptResult::new(messages).into())
    }

    pub fn list_resources() -> ListResourcesResult {
        ListResourcesResult::with_all_items(vec![
            Resource::new(STATIC_TEXT, "static-text")
                .with_title("Static Text Resource")
                .with_description("A static text resource")
                .with_mime_type("text/plain"),
            Resource::new(STATIC_BINARY, "static-binary")
                .with_title("Static Binary Resource")
                .with_description("A static binary resource (a PNG image)")
                .with_mime_type("image/png"),
            Resource::new(WATCHED, "watched-resource")
                .with_title("Watched Resource")
                .with_description("Changes once a second; subscribe to be told")
                .with_mime_type("text/plain"),
        ])
    }

    pub fn list_resource_templates() -> ListResourceTemplatesResult {
        ListResourceTemplatesResult::with_all_items(vec![
            ResourceTemplate::new(TEMPLATE, "template")
                .with_title("Resource Template")
                .with_description("JSON data for an id")
                .with_mime_type("application/json"),
        ])
    }

    /// The id of a `test://template/{id}/data` URI.
    fn template_id(uri: &str) -> Option<&str> {
        let id = uri
            .strip_prefix("test://template/")?
            .strip_suffix("/data")?;
        (!id.is_empty() && !id.contains('/')).then_some(id)
    }

    fn known_resource(uri: &str) -> bool {
        matches!(uri, STATIC_TEXT | STATIC_BINARY | WATCHED) || Self::template_id(uri).is_some()
    }

    pub fn read_resource(
        &self,
        request: &ReadResourceRequestParams,
    ) -> Result<ReadResourceResponse, ErrorData> {
        let uri = request.uri.as_str();
        let contents = match uri {
            STATIC_TEXT => ResourceContents::text(STATIC_TEXT_BODY, uri),
            STATIC_BINARY => ResourceContents::blob(PNG_1X1, uri).with_mime_type("image/png"),
            WATCHED => {
                let rev = self.fixtures.revision.load(Ordering::Relaxed);
                ResourceContents::text(format!("Watched resource content, revision {rev}"), uri)
            }
            _ => match Self::template_id(uri) {
                Some(id) => ResourceContents::text(
                    json!({"id": id, "templateTest": true, "data": format!("Data for ID: {id}")})
                        .to_string(),
                    uri,
                )
                .with_mime_type("application/json"),
                None => return Err(not_found(uri)),
            },
        };
        Ok(ReadResourceResult::new(vec![contents]).into())
    }

    /// `resources/subscribe`: the session gets `notifications/resources/updated`
    /// for `uri` until it unsubscribes or goes away. Only the watched
    /// resource ever changes; the static ones may be subscribed to all the
    /// same.
    pub fn subscribe(&self, uri: &str, ctx: &RequestContext<RoleServer>) -> Result<(), ErrorData> {
        if !Self::known_resource(uri) {
            return Err(not_found(uri));
        }
        let token = CancellationToken::new();
        if let Ok(mut subs) = self.session.subscriptions.lock()
            && let Some(old) = subs.insert(uri.to_string(), token.clone())
        {
            old.cancel();
        }
        if uri != WATCHED {
            return Ok(());
        }
        let mut changes = self.fixtures.changed.subscribe();
        let peer = ctx.peer.clone();
        tokio::spawn(async move {
            loop {
                tokio::select! {
                    _ = token.cancelled() => break,
                    change = changes.recv() => match change {
                        Ok(_) | Err(broadcast::error::RecvError::Lagged(_)) => {
                            let param = ResourceUpdatedNotificationParam::new(WATCHED);
                            if let Err(e) = peer.notify_resource_updated(param).await {
                                tracing::debug!("resource update not sent, unsubscribing: {e}");
                                break;
                            }
                        }
                        Err(broadcast::error::RecvError::Closed) => break,
                    },
                }
            }
        });
        Ok(())
    }

    pub fn unsubscribe(&self, uri: &str) {
        if let Ok(mut subs) = self.session.subscriptions.lock()
            && let Some(token) = subs.remove(uri)
        {
            token.cancel();
        }
    }

    /// The resource subscriptions a 2026-07-28 `subscriptions/listen` may
    /// have: the requested URIs this agent knows.
    pub fn accepted_resources(requested: &SubscriptionFilter) -> Vec<String> {
        requested
            .resource_subscriptions
            .iter()
            .flatten()
            .filter(|u| Self::known_resource(u))
            .cloned()
            .collect()
    }

    /// Forwards the watched resource's changes to a listen stream that
    /// subscribed to it, until `done` completes.
    pub async fn forward_updates(
        &self,
        sink: &SubscriptionSink,
        accepted: &SubscriptionFilter,
        done: impl Future<Output = ()>,
    ) {
        let watches = accepted
            .resource_subscriptions
            .iter()
            .flatten()
            .any(|u| u == WATCHED);
        if !watches {
            return done.await;
        }
        let mut changes = self.fixtures.changed.subscribe();
        let forward = async {
            loop {
                match changes.recv().await {
                    Ok(_) | Err(broadcast::error::RecvError::Lagged(_)) => {
                        if let Err(e) = sink.notify_resource_updated(WATCHED).await {
                            tracing::debug!("resource update not sent on listen stream: {e}");
                            return;
                        }
                    }
                    Err(broadcast::error::RecvError::Closed) => return,
                }
            }
        };
        tokio::pin!(done);
        tokio::select! {
            _ = &mut done => {}
            _ = forward => done.await,
        }
    }

    /// `completion/complete` for the prompts' arguments and the template's
    /// `id`: the known values that start with what was typed.
    pub fn complete(request: &CompleteRequestParams) -> Result<CompleteResult, ErrorData> {
        let arg = request.argument.name.as_str();
        let candidates: &[&str] = match &request.r#ref {
            Reference::Prompt(p) => match (p.name.as_str(), arg) {
                ("test_prompt_with_arguments", "arg1") => &["hello", "help", "test", "testValue1"],
                ("test_prompt_with_arguments", "arg2") => &["test", "testValue2", "word", "world"],
                ("test_prompt_with_embedded_resource", "resourceUri") => {
                    &[STATIC_BINARY, STATIC_TEXT, WATCHED]
                }
                ("test_simple_prompt" | "test_prompt_with_image", _)
                | ("test_prompt_with_arguments" | "test_prompt_with_embedded_resource", _) => {
                    return Err(ErrorData::invalid_params(
                        format!("prompt {:?} has no argument {arg:?}", p.name),
                        None,
                    ));
                }
                (other, _) => {
                    return Err(ErrorData::invalid_params(
                        format!("no prompt {other:?}"),
                        None,
                    ));
                }
            },
            Reference::Resource(r) if r.uri == TEMPLATE && arg == "id" => {
                &["1", "2", "3", "42", "123"]
            }
            Reference::Resource(r) => {
                return Err(ErrorData::invalid_params(
                    format!("no template {:?} with argument {arg:?}", r.uri),
                    None,
                ));
            }
            _ => {
                return Err(ErrorData::invalid_params(
                    "unknown completion reference",
                    None,
                ));
            }
        };
        let typed = request.argument.value.as_str();
        let values = candidates
            .iter()
            .filter(|c| c.starts_with(typed))
            .map(|c| c.to_string())
            .collect();
        CompletionInfo::with_all_values(values)
            .map(CompleteResult::new)
            .map_err(|e| ErrorData::internal_error(e, None))
    }
}

/// Sleeps `ms`, or fails if the call is cancelled first.
async fn pause(ctx: &RequestContext<RoleServer>, ms: u64) -> Result<(), ErrorData> {
    tokio::select! {
        _ = ctx.ct.cancelled() => Err(cancelled()),
        _ = tokio::time::sleep(Duration::from_millis(ms)) => Ok(()),
    }
}

/// `test_tool_with_progress`: progress 0, 50, 100 of 100, 50 ms apart (the
/// same pauses without a progress token).
async fn with_progress(ctx: &RequestContext<RoleServer>) -> Result<CallToolResponse, ErrorData> {
    let token = ctx.meta.get_progress_token();
    for (i, step) in [0u32, 50, 100].into_iter().enumerate() {
        if i > 0 {
            pause(ctx, 50).await?;
        }
        if let Some(token) = &token {
            let p = rmcp::model::ProgressNotificationParam::new(token.clone(), f64::from(step))
                .with_total(100.0)
                .with_message(format!("Completed step {step} of 100"));
            if let Err(e) = ctx.peer.notify_progress(p).await {
                tracing::debug!("progress not sent: {e}");
            }
        }
    }
    let shown = token
        .map(|t| {
            serde_json::to_value(&t)
                .map(|v| v.to_string())
                .unwrap_or_default()
        })
        .unwrap_or_else(|| "no progress token".into());
    Ok(text(format!("Progress reported to {shown}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// rmcp's typed elicitation schema must carry every keyword of the
    /// fixtures' schemas unchanged, or the SEP-1034/SEP-1330 scenarios
    /// would see stripped fields.
    #[test]
    fn elicitation_schemas_survive_rmcp_types() {
        for schema in [user_info_schema(), defaults_schema(), enums_schema()] {
            let params: ElicitRequestParams = serde_json::from_value(json!({
                "mode": "form", "message": "m", "requestedSchema": schema
            }))
            .expect("the schema parses as rmcp's ElicitRequestParams");
            let back = serde_json::to_value(&params).expect("serialises");
            assert_eq!(back["requestedSchema"], schema);
        }
    }

    #[test]
    fn template_ids() {
        assert_eq!(
            Conformance::template_id("test://template/123/data"),
            Some("123")
        );
        assert_eq!(Conformance::template_id("test://template//data"), None);
        assert_eq!(Conformance::template_id("test://template/1/2/data"), None);
        assert_eq!(Conformance::template_id("test://static-text"), None);
    }
}
