//! A route: one path to one capability prefix. The agent that serves it is
//! an attribute (`PathAttrs::agent`), shared by all of that agent's routes.

use std::sync::Arc;

use serde::{Deserialize, Serialize};

use super::attrs::PathAttrs;
use super::prefix::Prefix;
use super::proof::RouteProof;

/// Distinguishes several paths to one prefix from the same peer (add-path
/// style). Zero when a peer sends one path per prefix.
pub type PathId = u32;

/// A path to a prefix, as announced.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Route {
    pub prefix: Prefix,
    pub path_id: PathId,
    pub attrs: Arc<PathAttrs>,
    /// Origin attestation and path signatures; `None` on unsigned links
    /// (tests, the simulator) and for routes not yet signed for a peer.
    pub proof: Option<Arc<RouteProof>>,
}

impl Route {
    pub fn new(prefix: Prefix, attrs: Arc<PathAttrs>) -> Self {
        Route {
            prefix,
            path_id: 0,
            attrs,
            proof: None,
        }
    }

    pub fn key(&self) -> RouteKey {
        RouteKey {
            prefix: self.prefix.clone(),
            path_id: self.path_id,
        }
    }
}

/// What a withdrawal names.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct RouteKey {
    pub prefix: Prefix,
    pub path_id: PathId,
}

impl RouteKey {
    pub fn new(prefix: Prefix) -> Self {
        RouteKey { prefix, path_id: 0 }
    }
}
