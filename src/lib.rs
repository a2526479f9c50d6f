//! agent-bgp: a BGP-style routing node that federates MCP servers into an
//! internet of agents.
//!
//! - [`core`]: the sans-IO routing core (prefixes, RIBs, decision process,
//!   policy, session state machine, engine).

pub mod core;
pub mod sim;
