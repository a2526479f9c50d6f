//! Import and export policy: which routes a node accepts from a peer and
//! which it announces to a peer, and how it changes their attributes on the
//! way. The language is documented for operators in `docs/policy.md`.
//!
//! A policy file (TOML, see [`PolicySet::from_toml_str`]) defines named sets,
//! policies made of ordered statements, and `[[apply]]` entries that give
//! each peer an import chain and an export chain. It is compiled once, with
//! every name, prefix, community and regex checked ([`PolicyLoadError`]
//! points at line, column and field); evaluation then cannot fail and does
//! not allocate unless an action changes the attributes.
//!
//! The engine calls it through [`NodePolicy`], which binds a compiled set to
//! the local ASN and implements [`crate::core::engine::RoutePolicy`].
//! Evaluation ([`PolicySet::evaluate`], or [`Chain::evaluate`] on a chain
//! resolved once per session) runs the chain's statements in order.
//! The first `accept` or `reject` decides; when none does, the chain's
//! default decides: the `[[apply]]`'s `default-import` / `default-export`
//! if set, else RFC 8212's rule: accept for internal (same-AS) peers, reject
//! for external ones. The [`Decision`] says which statement (or default)
//! decided, for `abgp explain`-style tooling.
//!
//! What this module does **not** do; the engine does:
//! - enforce the well-known communities (`no-export` never leaves the AS,
//!   `no-advertise` never leaves the node). Policy can add them but cannot
//!   remove them (`remove` refuses them at load time, `set` keeps them), so
//!   the engine's check holds whatever policy does;
//! - exclude routes whose AS path holds the local ASN (loops) in the
//!   decision process, whatever import policy said;
//! - add the local ASN to the path when sending across an AS border, after
//!   export policy (so export policy sees paths as stored in the Loc-RIB),
//!   reset local-pref and drop non-transitive extra attributes there;
//! - re-intern attributes that policy changed ([`crate::core::AttrInterner`]).

mod compile;
mod config;
mod error;
mod eval;
mod lint;
mod model;
mod node;

#[cfg(test)]
mod tests;

use std::fmt;
use std::sync::Arc;

use crate::core::ids::{Asn, NodeId};

pub use error::{Diagnostic, ErrorKind, PolicyLoadError, SetKind};
pub use lint::Lint;
pub use model::{Chain, MAX_PREPEND, Policy, PolicySet};
pub use node::NodePolicy;

/// Which way a route is moving relative to this node.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Direction {
    /// Received from a peer, before it may enter the Loc-RIB.
    Import,
    /// About to be announced to a peer.
    Export,
}

impl fmt::Display for Direction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Direction::Import => "import",
            Direction::Export => "export",
        })
    }
}

/// The peer a route comes from (import) or goes to (export).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct PeerCtx {
    pub asn: Asn,
    pub node: NodeId,
    /// Same AS as the local node (iBGP-like). Decides the RFC 8212 default
    /// and whether `prepend` applies.
    pub internal: bool,
}

/// Everything policy evaluation needs besides the route itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PolicyCtx {
    /// Our AS. A route with an empty AS path originated in it, so
    /// `as-path.from = [local]` matches such routes.
    pub local_asn: Asn,
    pub peer: PeerCtx,
    pub direction: Direction,
}

/// The outcome for one route.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Verdict {
    Accept,
    Reject,
}

impl fmt::Display for Verdict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Verdict::Accept => "accept",
            Verdict::Reject => "reject",
        })
    }
}

/// Names a statement: the policy it belongs to and its own name.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct StatementLabel {
    pub policy: String,
    pub statement: String,
}

impl fmt::Display for StatementLabel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "policy {:?}, statement {:?}",
            self.policy, self.statement
        )
    }
}

/// Why no statement decided and the default did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DefaultReason {
    /// The peer's `[[apply]]` sets `default-import` / `default-export`.
    Configured,
    /// No configured default; internal peers default to accept.
    InternalPeer,
    /// No configured default; external peers default to reject (RFC 8212).
    ExternalPeer,
}

/// What decided a route's verdict.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DecidedBy {
    /// A statement whose verdict was `accept` or `reject`.
    Statement(Arc<StatementLabel>),
    /// No statement decided.
    Default(DefaultReason),
}

impl fmt::Display for DecidedBy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DecidedBy::Statement(l) => write!(f, "{l}"),
            DecidedBy::Default(DefaultReason::Configured) => {
                f.write_str("the configured default of the peer's [[apply]]")
            }
            DecidedBy::Default(DefaultReason::InternalPeer) => {
                f.write_str("the default for internal peers")
            }
            DecidedBy::Default(DefaultReason::ExternalPeer) => {
                f.write_str("the default for external peers (RFC 8212)")
            }
        }
    }
}

/// The verdict for a route and what decided it. Attribute changes, if any,
/// were made in place on the `Arc<PathAttrs>` passed in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision {
    pub verdict: Verdict,
    pub decided_by: DecidedBy,
}

impl Decision {
    pub fn is_accept(&self) -> bool {
        self.verdict == Verdict::Accept
    }
}

impl fmt::Display for Decision {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} by {}", self.verdict, self.decided_by)
    }
}
