//! The MCP side of a node: the agents (MCP servers) it hosts and, later, the
//! MCP front that local clients talk to.
//!
//! - [`config`]: the `[[agents]]` entries of `node.toml`, validated on load.
//! - [`upstream`]: one MCP client session per agent (child process over stdio
//!   or streamable HTTP), kept healthy, restarted with back-off, reported to
//!   the node as [`upstream::AgentEvent`]s; tool calls go through
//!   [`upstream::UpstreamHandle::call_tool`].
//! - [`catalog`]: tool descriptors as they travel between nodes, their
//!   content hashes, the route prefix of each tool, and the names the MCP
//!   front shows to clients.
//!
//! Nothing here decides which agents' routes are announced or who may call
//! them: the routing core and its policy consume the events and decide.

pub mod catalog;
pub mod config;
pub mod example_agent;
pub mod front;
pub mod plane;
pub mod upstream;

pub use catalog::{DescriptorHash, FrontNames, ToolDescriptor, ToolKey};
pub use config::{AgentConfig, AgentConfigError, AgentTransport, ProtocolMode};
pub use upstream::{
    AgentEvent, DownReason, Progress, ToolCall, ToolCallResult, UpstreamError, UpstreamHandle,
    UpstreamOptions,
};
