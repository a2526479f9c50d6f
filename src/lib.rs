//! agent-bgp: a BGP-style routing node that federates MCP servers into an
//! internet of agents.
//!
//! - [`core`]: the sans-IO routing core (prefixes, RIBs, decision process,
//!   policy, session state machine, engine).
//! - [`mcp`]: hosted agents (MCP servers) as upstream sessions, tool
//!   descriptors and the names tools get on the way.

pub mod core;
pub mod mcp;
pub mod sim;
