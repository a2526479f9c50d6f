//! Path attributes: everything about a route except its prefix and agent.
//!
//! Attribute sets are immutable once built and shared through `Arc`; an
//! [`AttrInterner`] makes equal sets share one allocation, so a million routes
//! announced by a handful of agents hold a handful of attribute sets. Policy
//! modifies attributes copy-on-write (`Arc::make_mut`) and the engine
//! re-interns the result.

use std::collections::BTreeMap;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use super::community::Community;
use super::ids::{AgentId, Asn, ClusterId, Millis, NodeId};

/// Local preference given to routes that no policy set one for.
pub const DEFAULT_LOCAL_PREF: u32 = 100;

/// Longest AS path the wire carries (and most path signatures per route):
/// the decoder refuses longer ones, so the engine never exports a path
/// that would grow past it.
pub const MAX_PATH_LEN: usize = 64;

/// Most route-reflection cluster ids on one route, on the wire and when the
/// engine reflects.
pub const MAX_CLUSTER_LIST: usize = 32;

/// Most ASNs in an aggregate's AS set, on the wire and when exported.
pub const MAX_AS_SET: usize = 256;

/// Most communities on one route, on the wire and when exported (import
/// and export policy may add some).
pub const MAX_COMMUNITIES: usize = 256;

/// Most extra attributes on one route, on the wire and when exported.
pub const MAX_EXTRA_ATTRS: usize = 32;

/// A value of an extra (not built-in) attribute.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum AttrValue {
    Bool(bool),
    Int(i64),
    Text(Arc<str>),
    Bytes(Arc<[u8]>),
}

/// An extra attribute. `transitive` attributes travel on with the route, like
/// BGP's optional transitive attributes; others are dropped when the route is
/// sent to another AS.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct ExtraAttr {
    pub transitive: bool,
    pub value: AttrValue,
}

/// Set on a route that summarises others (BGP's AGGREGATOR and AS_SET).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Aggregator {
    pub asn: Asn,
    pub node: NodeId,
    /// ASNs that appeared in the paths of the contributing routes, sorted and
    /// deduplicated. Checked for loops like the AS path itself.
    pub as_set: Vec<Asn>,
}

/// The attributes of a path.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct PathAttrs {
    /// The agent (MCP server) that serves the route at its origin. Kept with
    /// the attributes, not per route, because one agent announces many
    /// prefixes with otherwise identical attributes: they share one set.
    pub agent: AgentId,
    /// ASes the route crossed, nearest first; the last one originated it.
    /// Empty for a route originated inside our own AS.
    pub as_path: Vec<Asn>,
    /// Higher wins. Meaningful inside one AS only; reset at AS borders.
    pub local_pref: u32,
    /// Multi-exit discriminator; lower wins. For agents, the origin's health
    /// metric (latency, error rate), so it travels with the route.
    pub med: u32,
    /// Sorted and deduplicated.
    pub communities: Vec<Community>,
    /// Capability tags the agent advertises (`typescript`, `testing`), sorted
    /// and deduplicated.
    pub capabilities: Vec<Arc<str>>,
    /// When the originating agent became available.
    pub origin_time: Millis,
    /// Set by the first route reflector that reflects the route (RFC 4456):
    /// the node that injected it into this AS.
    pub originator: Option<NodeId>,
    /// Route reflection clusters the route passed through, nearest first.
    pub cluster_list: Vec<ClusterId>,
    pub aggregator: Option<Aggregator>,
    pub extra: BTreeMap<Arc<str>, ExtraAttr>,
    /// A third-party next hop, set only by a transparent route server: the
    /// route-server client that announced the route, to which calls go
    /// directly (docs/protocol.md, "Reflector vs route server vs transit").
    /// Kept only on paths from a peer configured as our route server, and
    /// never passed on.
    #[serde(default)]
    pub next_hop: Option<NodeId>,
    /// Only-to-customer (RFC 9234): the AS that marked the route as one to
    /// pass on to customers only ([`crate::core::role`]). Optional and
    /// transitive; not covered by the path signatures.
    #[serde(default)]
    pub otc: Option<Asn>,
}

impl Default for PathAttrs {
    fn default() -> Self {
        PathAttrs {
            agent: AgentId::new(""),
            as_path: Vec::new(),
            local_pref: DEFAULT_LOCAL_PREF,
            med: 0,
            communities: Vec::new(),
            capabilities: Vec::new(),
            origin_time: Millis(0),
            originator: None,
            cluster_list: Vec::new(),
            aggregator: None,
            extra: BTreeMap::new(),
            next_hop: None,
            otc: None,
        }
    }
}

impl PathAttrs {
    /// The AS that originated the route, or `None` when it was originated
    /// inside the local AS (empty path).
    pub fn origin_asn(&self) -> Option<Asn> {
        self.as_path.last().copied()
    }

    /// The neighbouring AS the route was learned from (first in the path).
    pub fn neighbor_asn(&self) -> Option<Asn> {
        self.as_path.first().copied()
    }

    /// Path length as the decision process counts it: an aggregate's AS set
    /// counts as one hop, as in BGP.
    pub fn path_len(&self) -> usize {
        self.as_path.len()
            + usize::from(
                self.aggregator
                    .as_ref()
                    .is_some_and(|a| !a.as_set.is_empty()),
            )
    }

    /// Does `asn` appear anywhere in the path or the aggregate's AS set?
    pub fn path_contains(&self, asn: Asn) -> bool {
        self.as_path.contains(&asn)
            || self
                .aggregator
                .as_ref()
                .is_some_and(|a| a.as_set.contains(&asn))
    }

    pub fn has_community(&self, c: &Community) -> bool {
        self.communities.binary_search(c).is_ok()
    }

    pub fn add_community(&mut self, c: Community) {
        if let Err(i) = self.communities.binary_search(&c) {
            self.communities.insert(i, c);
        }
    }

    pub fn remove_community(&mut self, c: &Community) {
        if let Ok(i) = self.communities.binary_search(c) {
            self.communities.remove(i);
        }
    }

    pub fn has_capability(&self, tag: &str) -> bool {
        self.capabilities
            .binary_search_by(|t| (**t).cmp(tag))
            .is_ok()
    }

    /// Restores the sorted, deduplicated invariants after a raw edit.
    pub fn normalize(&mut self) {
        self.communities.sort();
        self.communities.dedup();
        self.capabilities.sort();
        self.capabilities.dedup();
        if let Some(a) = &mut self.aggregator {
            a.as_set.sort();
            a.as_set.dedup();
        }
    }

    /// Sets capability tags from strings, sorted and deduplicated.
    pub fn with_capabilities<I, S>(mut self, tags: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        self.capabilities = tags.into_iter().map(|t| Arc::from(t.as_ref())).collect();
        self.normalize();
        self
    }

    pub fn with_communities<I: IntoIterator<Item = Community>>(mut self, cs: I) -> Self {
        self.communities = cs.into_iter().collect();
        self.normalize();
        self
    }
}

/// Shares equal attribute sets. Holds one strong reference to each set it has
/// seen; [`AttrInterner::collect`] drops the sets nobody else uses.
#[derive(Debug, Default)]
pub struct AttrInterner {
    // Each set is kept with its hash, so growing the table rehashes a
    // number, not the whole set (an AS path, communities, capabilities):
    // at a thousand distinct sets per node, rehashing them on every growth
    // was a tenth of a full-table simulation's time.
    set: hashbrown::HashTable<(u64, Arc<PathAttrs>)>,
    // foldhash: fast, and randomly seeded per process, so peers cannot
    // precompute colliding attribute sets.
    hasher: foldhash::fast::RandomState,
}

impl AttrInterner {
    pub fn new() -> Self {
        Self::default()
    }

    fn hash_of(&self, attrs: &PathAttrs) -> u64 {
        use std::hash::BuildHasher;
        self.hasher.hash_one(attrs)
    }

    /// Returns the shared copy of `attrs`.
    pub fn intern(&mut self, attrs: Arc<PathAttrs>) -> Arc<PathAttrs> {
        let hash = self.hash_of(&attrs);
        match self
            .set
            .entry(hash, |(h, a)| *h == hash && **a == *attrs, |(h, _)| *h)
        {
            hashbrown::hash_table::Entry::Occupied(e) => e.get().1.clone(),
            hashbrown::hash_table::Entry::Vacant(e) => {
                e.insert((hash, attrs.clone()));
                attrs
            }
        }
    }

    pub fn intern_owned(&mut self, attrs: PathAttrs) -> Arc<PathAttrs> {
        // Looked up first: an equal set costs no allocation.
        let hash = self.hash_of(&attrs);
        if let Some((_, existing)) = self.set.find(hash, |(h, a)| *h == hash && **a == attrs) {
            return existing.clone();
        }
        let a = Arc::new(attrs);
        self.set.insert_unique(hash, (hash, a.clone()), |(h, _)| *h);
        a
    }

    /// Drops sets held only by the interner; returns how many were dropped.
    pub fn collect(&mut self) -> usize {
        let before = self.set.len();
        self.set.retain(|(_, a)| Arc::strong_count(a) > 1);
        before - self.set.len()
    }

    pub fn len(&self) -> usize {
        self.set.len()
    }

    pub fn is_empty(&self) -> bool {
        self.set.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn interner_shares_equal_sets_and_collects_unused() {
        let mut i = AttrInterner::new();
        let a = i.intern_owned(PathAttrs::default().with_capabilities(["x", "y"]));
        let b = i.intern_owned(PathAttrs::default().with_capabilities(["y", "x", "x"]));
        assert!(Arc::ptr_eq(&a, &b));
        assert_eq!(i.len(), 1);
        drop(a);
        assert_eq!(i.collect(), 0);
        drop(b);
        assert_eq!(i.collect(), 1);
        assert!(i.is_empty());
    }

    #[test]
    fn aggregate_as_set_counts_as_one_hop_and_is_loop_checked() {
        let attrs = PathAttrs {
            as_path: vec![Asn(1)],
            aggregator: Some(Aggregator {
                asn: Asn(1),
                node: NodeId::from_u64(1),
                as_set: vec![Asn(7), Asn(9)],
            }),
            ..Default::default()
        };
        assert_eq!(attrs.path_len(), 2);
        assert!(attrs.path_contains(Asn(9)));
        assert!(!attrs.path_contains(Asn(8)));
    }

    #[test]
    fn communities_stay_sorted_and_unique() {
        let mut a = PathAttrs::default();
        a.add_community(Community::NO_EXPORT);
        a.add_community(Community::standard(1, 1));
        a.add_community(Community::NO_EXPORT);
        assert_eq!(a.communities.len(), 2);
        assert!(a.has_community(&Community::NO_EXPORT));
        a.remove_community(&Community::NO_EXPORT);
        assert!(!a.has_community(&Community::NO_EXPORT));
    }
}
