//! The MCP side of a node: the agents (MCP servers) it hosts, the MCP front
//! local clients talk to, and the plane that connects both to the node's
//! routing and call forwarding (docs/mcp.md).
//!
//! - [`config`]: the `[[agents]]` entries of `node.toml`, validated on load.
//! - [`upstream`]: one MCP client session per agent (child process over stdio
//!   or streamable HTTP), kept healthy, restarted with back-off, reported to
//!   the node as [`upstream::AgentEvent`]s; tool calls go through
//!   [`upstream::UpstreamHandle::call_tool`].
//! - [`catalog`]: tool descriptors as they travel between nodes, their
//!   content hashes, the route prefix of each tool, and the names the MCP
//!   front shows to clients.
//! - [`items`]: prompts, resources and resource templates as routed items:
//!   descriptors, hashes, route prefixes, front names, URI templates.
//! - [`log_level`]: MCP log levels as the call protocol's numbers.
//! - [`front`]: the MCP server local clients use (streamable HTTP, and the
//!   stdio bridge of `abgp mcp`), its tool table and meta tools.
//! - [`plane`]: what the node task does for MCP: tool routes of hosted
//!   agents, the call forwarder, local runs, descriptor fetches, metrics.
//! - [`example_agent`]: the example MCP server (`abgp example-agent`).
//! - [`stdio`]: this process's stdin and stdout as an MCP transport.
//!
//! Nothing here decides which routes are announced or which path a call
//! takes or who may call what: the routing core, its policy, the
//! forwarder and the access policy (`crate::core`) decide.

pub mod catalog;
pub mod config;
pub mod example_agent;
pub mod front;
pub mod items;
pub mod log_level;
pub mod plane;
pub mod stdio;
pub mod upstream;

pub use catalog::{DescriptorHash, FrontNames, ToolDescriptor, ToolKey};
pub use config::{AgentConfig, AgentConfigError, AgentTransport, ProtocolMode};
pub use upstream::{
    AgentEvent, DownReason, Progress, ToolCall, ToolCallResult, UpstreamError, UpstreamHandle,
    UpstreamOptions,
};
