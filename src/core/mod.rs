//! The sans-IO routing core: plain data and pure functions. Events in,
//! messages and actions out, time passed in. Nothing here touches a socket,
//! a file, a clock or an async runtime; the adapters (`net`, `store`, `mcp`)
//! drive it.

pub mod access;
pub mod attrs;
pub mod call;
pub mod community;
pub mod decision;
pub mod engine;
pub mod explain;
pub mod forward;
pub mod health;
pub mod ids;
pub mod message;
pub mod policy;
pub mod prefix;
pub mod proof;
pub mod rib;
pub mod role;
pub mod route;
pub mod session;

pub use attrs::{AttrInterner, PathAttrs};
pub use community::Community;
pub use ids::{AgentId, Asn, ClusterId, Millis, NodeId};
pub use prefix::{Prefix, PrefixSet, PrefixTrie};
pub use route::{Route, RouteKey};
