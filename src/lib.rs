//! agent-bgp: a BGP-style routing node that federates MCP servers into an
//! internet of agents.
//!
//! - [`core`]: the sans-IO routing core (prefixes, RIBs, decision process,
//!   policy, session state machine, engine) and call forwarding (the
//!   per-hop call table, the origin's access policy).
//! - [`mcp`]: hosted agents (MCP servers) as upstream sessions, tool
//!   descriptors and names, the MCP front local clients use, and the plane
//!   that ties them to the node.
//! - [`identity`]: the node key, ASN certificates and trust anchors.
//! - [`wire`]: the versioned CBOR wire protocol and signed routes.
//! - [`net`]: the libp2p adapter (transports, routing and call protocols,
//!   discovery).
//! - [`store`]: the RIBs on disk (sled behind a small trait).
//! - [`node`]: the running node that drives the engine; [`admin`]: its
//!   HTTP API; [`config`]: `node.toml`.

pub mod admin;
pub mod config;
pub mod core;
pub mod identity;
pub mod local_http;
pub mod logging;
pub mod mcp;
pub mod net;
pub mod node;
pub mod secret_file;
pub mod sim;
pub mod store;
pub mod wire;
