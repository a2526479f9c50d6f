//! What the forwarder reads of the routing table ([`CallRoutes`],
//! implemented by the engine) and how it checks a caller
//! ([`CallerVerifier`], implemented by the node with its trust store).

use std::sync::Arc;

use serde_json::Value as Json;

use crate::core::attrs::{AttrValue, PathAttrs};
use crate::core::call::{AnswerSeal, CallOrigin, CallReturn, ReplyKey, Sealed, TOOL_ATTR};
use crate::core::engine::Engine;
use crate::core::ids::{AgentId, Asn, Millis, NodeId};
use crate::core::prefix::Prefix;
use crate::core::route::Route;

/// One way a call can leave this node.
#[derive(Debug, Clone, PartialEq)]
pub enum NextHop {
    /// This node originates the route: run the tool on `agent`.
    Local {
        agent: AgentId,
        /// The tool the route names (its `mcp.tool` attribute).
        tool: Option<Arc<str>>,
    },
    Peer(NodeId),
}

/// What the routing table says about a target.
#[derive(Debug, Clone, PartialEq)]
pub struct Resolution {
    /// The Loc-RIB prefix that matched.
    pub matched: Prefix,
    /// Best first; the first `multipath` are equally good.
    pub hops: Vec<NextHop>,
    pub multipath: usize,
    /// The attributes of each hop's route, in the order of `hops`.
    pub attrs: Vec<Arc<PathAttrs>>,
    /// The node that originated each hop's route, from its origin
    /// attestation (`None`: unsigned), in the order of `hops`.
    pub origin_nodes: Vec<Option<NodeId>>,
}

impl Resolution {
    /// The origin node and AS of the path through `peer` (the AS `None`
    /// for a path inside our own AS), if it is one of the hops.
    pub fn origin_of(&self, peer: &NodeId) -> Option<(Option<NodeId>, Option<Asn>)> {
        let i = self
            .hops
            .iter()
            .position(|h| matches!(h, NextHop::Peer(n) if n == peer))?;
        let asn = self.attrs.get(i).and_then(|a| a.as_path.last().copied());
        Some((self.origin_nodes.get(i).copied().flatten(), asn))
    }

    /// The ASNs that originate these paths (the last AS of each path, our
    /// own for a path inside our AS, and an aggregate's AS set): an answer
    /// must be sealed by one of them.
    pub fn origin_asns(&self, own: Asn) -> Vec<Asn> {
        let mut v: Vec<Asn> = Vec::new();
        for a in &self.attrs {
            for asn in a
                .as_path
                .last()
                .copied()
                .or(Some(own))
                .into_iter()
                .chain(a.aggregator.iter().flat_map(|g| g.as_set.iter().copied()))
            {
                if !v.contains(&asn) {
                    v.push(asn);
                }
            }
        }
        v
    }

    /// The peers among the hops, in order, and how many of the first are
    /// equal (the multipath set, at least 1).
    pub fn peer_hops(&self) -> (Vec<NodeId>, usize) {
        let peers: Vec<NodeId> = self
            .hops
            .iter()
            .filter_map(|h| match h {
                NextHop::Peer(n) => Some(*n),
                NextHop::Local { .. } => None,
            })
            .collect();
        let equal = self.multipath.clamp(1, peers.len().max(1));
        (peers, equal)
    }

    /// The peer hops with what balancing weighs (MED, capabilities; calls
    /// in flight from `in_flight`), and how many of the first are "equally
    /// near": equal to the best in local preference and AS-path length
    /// (decision steps 1 and 3; step 2, local origin, never differs between
    /// two peer hops), at least 1.
    pub fn balance_paths(
        &self,
        in_flight: impl Fn(&NodeId) -> usize,
    ) -> (Vec<super::balance::Path<'_>>, usize) {
        let paths: Vec<super::balance::Path<'_>> = self
            .hops
            .iter()
            .zip(&self.attrs)
            .filter_map(|(h, a)| match h {
                NextHop::Peer(n) => Some(super::balance::Path {
                    peer: *n,
                    med: a.med,
                    capabilities: &a.capabilities,
                    in_flight: in_flight(n),
                }),
                NextHop::Local { .. } => None,
            })
            .collect();
        let peer_attrs: Vec<&PathAttrs> = self
            .hops
            .iter()
            .zip(&self.attrs)
            .filter(|(h, _)| matches!(h, NextHop::Peer(_)))
            .map(|(_, a)| a.as_ref())
            .collect();
        let nearest = match peer_attrs.first() {
            Some(b) => peer_attrs
                .iter()
                .take_while(|a| a.local_pref == b.local_pref && a.path_len() == b.path_len())
                .count(),
            None => 1,
        };
        (paths, nearest.max(1))
    }
}

/// The routing table as the forwarder reads it. Implemented by [`Engine`].
pub trait CallRoutes {
    fn resolve(&self, wanted: &Prefix) -> Option<Resolution>;
    /// Did this node advertise a prefix covering `wanted` to `peer`?
    fn advertised_cover(&self, peer: &NodeId, wanted: &Prefix) -> bool;
}

/// The tool a route names, from its `mcp.tool` attribute.
pub fn route_tool(route: &Route) -> Option<Arc<str>> {
    match route.attrs.extra.get(TOOL_ATTR).map(|a| &a.value) {
        Some(AttrValue::Text(t)) => Some(t.clone()),
        _ => None,
    }
}

impl CallRoutes for Engine {
    fn resolve(&self, wanted: &Prefix) -> Option<Resolution> {
        let f = self.forwarding(wanted)?;
        let attrs = f.paths.iter().map(|(_, r)| r.attrs.clone()).collect();
        let origin_nodes = f
            .paths
            .iter()
            .map(|(_, r)| r.proof.as_ref().map(|p| p.origin.cert.node))
            .collect();
        let hops = f
            .paths
            .iter()
            .map(|(node, route)| match node {
                Some(n) => NextHop::Peer(*n),
                None => NextHop::Local {
                    agent: route.attrs.agent.clone(),
                    tool: route_tool(route),
                },
            })
            .collect();
        Some(Resolution {
            matched: f.prefix,
            hops,
            multipath: f.multipath,
            attrs,
            origin_nodes,
        })
    }

    fn advertised_cover(&self, peer: &NodeId, wanted: &Prefix) -> bool {
        // What we gave a transparent route server, it gave its clients, who
        // call us directly (we cannot know which of them it chose).
        // While a route server restarts, its clients keep our routes
        // (graceful restart) and keep calling: our own routes stay open.
        advertised_cover_to(self, peer, wanted)
            || self
                .route_server_peers()
                .any(|rs| advertised_cover_to(self, &rs, wanted))
            || (self.route_server_down() && originated_here(self, wanted))
    }
}

/// Is the route for `wanted` one this node originates?
fn originated_here(engine: &Engine, wanted: &Prefix) -> bool {
    engine
        .forwarding(wanted)
        .is_some_and(|f| f.paths.first().is_some_and(|(n, _)| n.is_none()))
}

/// Did this node advertise a prefix covering `wanted` to `peer`?
fn advertised_cover_to(engine: &Engine, peer: &NodeId, wanted: &Prefix) -> bool {
    if engine.advertised_to(peer, wanted) {
        return true;
    }
    let mut p = if wanted.is_wildcard() {
        wanted.parent()
    } else {
        Some(wanted.to_wildcard())
    };
    while let Some(q) = p {
        if engine.advertised_to(peer, &q) {
            return true;
        }
        p = q.parent();
    }
    false
}

/// Seals call payloads end to end (the arguments to the origin node, the
/// result to the calling node) and opens those sealed to this node. The
/// crypto is the node's (`crate::node` with `crate::identity::seal`); the
/// core decides what is sealed for whom.
pub trait PayloadSealer: Send {
    /// The arguments `plain` sealed to the origin node `to`, bound to the
    /// call `origin`, and the key its reply will come under (`None`: `to`
    /// is not a key one can seal to).
    fn seal(&self, to: &NodeId, origin: &CallOrigin, plain: &[u8]) -> Option<(Sealed, ReplyKey)>;
    /// The arguments of a call sealed to this node, and its reply key.
    fn open(&self, origin: &CallOrigin, sealed: &Sealed) -> Result<(Vec<u8>, ReplyKey), String>;
    /// The result `plain` sealed to the caller under the call's reply key.
    fn seal_reply(&self, key: &ReplyKey, origin: &CallOrigin, plain: &[u8]) -> Option<Sealed>;
    /// The result of a call made here, sealed under its reply key.
    fn open_reply(
        &self,
        key: &ReplyKey,
        origin: &CallOrigin,
        sealed: &Sealed,
    ) -> Result<Vec<u8>, String>;
}

/// What the calling node seals (`[mcp] seal`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum SealMode {
    /// Nothing.
    Off,
    /// Calls whose origin is in another AS (the default): transit ASes
    /// see neither arguments nor results.
    #[default]
    External,
    /// Every call to another node with a signed route, inside our AS too.
    Always,
}

/// Seals the answers this node gives as the origin, and checks the seal
/// of answers that come back for calls it made (the crypto is the node's,
/// `crate::node` with `crate::identity`; the core only asks).
pub trait AnswerSealer: Send {
    /// The seal on this origin's answer `ret` (its trace holds only this
    /// node's hop) to the call `origin`.
    fn seal(&self, origin: &CallOrigin, ret: &CallReturn) -> Option<Arc<AnswerSeal>>;
    /// Checks an answer to a call this node made, sent on paths that
    /// `origins` originate. `Ok(Some((node, asn)))`: sealed by that origin;
    /// `Ok(None)`: an unsealed error (made by a hop on the way).
    fn check(
        &self,
        now: Millis,
        origin: &CallOrigin,
        ret: &CallReturn,
        origins: &[Asn],
    ) -> Result<Option<(NodeId, Asn)>, String>;
}

/// Checks the signed origin of a CALL: signature, certificate, argument
/// digest. Implemented with the node's trust store by `crate::identity`;
/// the core only asks.
pub trait CallerVerifier: Send {
    fn verify(
        &self,
        now: Millis,
        origin: &CallOrigin,
        arguments: &Json,
    ) -> Result<(), CallerRefused>;
}

/// Why a CALL's signed origin does not verify.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CallerRefused {
    #[error("the call carries no ASN certificate")]
    NoCertificate,
    #[error("the certificate is for another node than the caller")]
    CertificateOfAnotherNode,
    #[error("the certificate binds {cert}, not the claimed {claimed}")]
    OtherAsn { cert: Asn, claimed: Asn },
    /// The certificate is not trusted (binding, validity, its signature).
    #[error("certificate: {0}")]
    Certificate(String),
    #[error("the call is not signed")]
    Unsigned,
    #[error("signature: {0}")]
    BadSignature(String),
    #[error("the arguments do not match the signed digest")]
    ArgumentsChanged,
    /// A verifier that trusts nobody (tests, a node without a trust store).
    #[error("{0}")]
    Untrusted(&'static str),
}
