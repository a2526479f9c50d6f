//! Plugs a compiled [`PolicySet`] into the routing engine.
//!
//! The engine asks its [`RoutePolicy`] for a yes or no per route and peer. A
//! policy file does not know which AS it runs in, but evaluation needs the
//! local ASN: an empty AS path means "originated here", and `prepend` adds
//! it. [`NodePolicy`] binds the two. Build one when the node starts or
//! reloads its policy file, and hand it to `Engine::with_policy` or
//! `Event::PolicyReloaded`.

use std::sync::Arc;

use crate::core::attrs::PathAttrs;
use crate::core::engine::{PeerInfo, RoutePolicy};
use crate::core::ids::Asn;
use crate::core::prefix::Prefix;

use super::{Decision, Direction, PeerCtx, PolicyCtx, PolicySet};

impl From<&PeerInfo> for PeerCtx {
    fn from(p: &PeerInfo) -> Self {
        PeerCtx {
            asn: p.asn,
            node: p.node,
            internal: p.internal,
        }
    }
}

/// A policy file bound to the AS of the node that runs it.
#[derive(Debug, Clone)]
pub struct NodePolicy {
    local_asn: Asn,
    set: Arc<PolicySet>,
}

impl NodePolicy {
    pub fn new(local_asn: Asn, set: impl Into<Arc<PolicySet>>) -> Self {
        NodePolicy {
            local_asn,
            set: set.into(),
        }
    }

    pub fn local_asn(&self) -> Asn {
        self.local_asn
    }

    pub fn policy_set(&self) -> &PolicySet {
        &self.set
    }

    /// The full decision, with what decided it. This is what the
    /// [`RoutePolicy`] methods use, exposed for "explain this route" tooling.
    pub fn decide(
        &self,
        direction: Direction,
        peer: &PeerInfo,
        prefix: &Prefix,
        attrs: &mut Arc<PathAttrs>,
    ) -> Decision {
        let ctx = PolicyCtx {
            local_asn: self.local_asn,
            peer: PeerCtx::from(peer),
            direction,
        };
        self.set.evaluate(&ctx, prefix, attrs)
    }
}

impl RoutePolicy for NodePolicy {
    fn import(&self, peer: &PeerInfo, prefix: &Prefix, attrs: &mut Arc<PathAttrs>) -> bool {
        self.decide(Direction::Import, peer, prefix, attrs)
            .is_accept()
    }

    fn export(&self, peer: &PeerInfo, prefix: &Prefix, attrs: &mut Arc<PathAttrs>) -> bool {
        self.decide(Direction::Export, peer, prefix, attrs)
            .is_accept()
    }
}
