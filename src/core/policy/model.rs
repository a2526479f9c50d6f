//! The compiled form of a policy file: named sets resolved to shared,
//! pre-sorted lookup structures, regexes compiled, names checked. Built only
//! by [`super::compile`]; evaluated by [`super::eval`], which therefore
//! cannot fail (style anchor R2).

use std::collections::HashMap;
use std::sync::Arc;

use crate::core::attrs::ExtraAttr;
use crate::core::community::Community;
use crate::core::ids::{AgentId, Asn, NodeId};
use crate::core::prefix::{Prefix, PrefixTrie};

use super::{Direction, PeerCtx, StatementLabel, Verdict};

/// Most copies of the local ASN one `prepend` action may add.
pub const MAX_PREPEND: u32 = 32;

/// Below this many entries a linear scan with [`Prefix::covers`] beats
/// walking the trie (a hash lookup per segment).
const LINEAR_PREFIX_SCAN: usize = 8;

/// A set of AS numbers: inclusive ranges (a single ASN is a range of
/// one), sorted, with overlaps merged, so membership is one binary search.
/// Adjacent entries are not merged: `[7, 8]` stays two single ASNs.
#[derive(Debug)]
pub(crate) struct AsnSet(Box<[(u32, u32)]>);

impl AsnSet {
    pub(crate) fn new(mut v: Vec<(u32, u32)>) -> Self {
        v.sort_unstable();
        let mut merged: Vec<(u32, u32)> = Vec::with_capacity(v.len());
        for (lo, hi) in v {
            match merged.last_mut() {
                Some(last) if lo <= last.1 => last.1 = last.1.max(hi),
                _ => merged.push((lo, hi)),
            }
        }
        AsnSet(merged.into_boxed_slice())
    }
    pub(crate) fn contains(&self, a: Asn) -> bool {
        // The first range that does not end before `a`.
        let i = self.0.partition_point(|&(_, hi)| hi < a.0);
        self.0.get(i).is_some_and(|&(lo, _)| lo <= a.0)
    }
    /// Whether some entry is a range of more than one ASN.
    pub(crate) fn has_ranges(&self) -> bool {
        self.0.iter().any(|&(lo, hi)| lo != hi)
    }
    /// Every ASN; only for sets without ranges (`contains-all` refuses
    /// ranges at load time).
    pub(crate) fn iter(&self) -> impl Iterator<Item = Asn> + '_ {
        self.0.iter().flat_map(|&(lo, hi)| (lo..=hi).map(Asn))
    }
}

/// A set of communities, sorted like [`crate::core::attrs::PathAttrs::communities`]
/// so "any of" is a merge walk of two sorted lists.
#[derive(Debug)]
pub(crate) struct CommunitySet(Box<[Community]>);

impl CommunitySet {
    pub(crate) fn new(mut v: Vec<Community>) -> Self {
        v.sort();
        v.dedup();
        CommunitySet(v.into_boxed_slice())
    }
    pub(crate) fn as_slice(&self) -> &[Community] {
        &self.0
    }
    pub(crate) fn contains(&self, c: &Community) -> bool {
        self.0.binary_search(c).is_ok()
    }
}

/// A set of capability tags, sorted like `PathAttrs::capabilities`.
#[derive(Debug)]
pub(crate) struct TagSet(Box<[Arc<str>]>);

impl TagSet {
    pub(crate) fn new(mut v: Vec<Arc<str>>) -> Self {
        v.sort();
        v.dedup();
        TagSet(v.into_boxed_slice())
    }
    pub(crate) fn as_slice(&self) -> &[Arc<str>] {
        &self.0
    }
}

/// A set of prefixes that answers "is this exact prefix in the set" and
/// "does some member cover this prefix" without allocating.
#[derive(Debug)]
pub(crate) struct PrefixSet {
    sorted: Box<[Prefix]>,
    /// Only for sets large enough that a scan would be slower.
    trie: Option<PrefixTrie<()>>,
}

impl PrefixSet {
    pub(crate) fn new(mut v: Vec<Prefix>) -> Self {
        v.sort();
        v.dedup();
        let trie = (v.len() > LINEAR_PREFIX_SCAN).then(|| {
            let mut t = PrefixTrie::new();
            for p in &v {
                t.insert(p.clone(), ());
            }
            t
        });
        PrefixSet {
            sorted: v.into_boxed_slice(),
            trie,
        }
    }

    pub(crate) fn contains_exact(&self, p: &Prefix) -> bool {
        self.sorted.binary_search(p).is_ok()
    }

    pub(crate) fn covers(&self, p: &Prefix) -> bool {
        match &self.trie {
            Some(t) => t.longest_match(p).is_some(),
            None => self.sorted.iter().any(|s| s.covers(p)),
        }
    }
}

/// One compiled match condition. Evaluation order inside a statement is by
/// [`Cond::cost`], cheapest first; conditions have no side effects, so the
/// order cannot change a result.
#[derive(Debug)]
pub(crate) enum Cond {
    PrefixExact(Arc<PrefixSet>),
    PrefixCoveredBy(Arc<PrefixSet>),
    /// Origin AS in the set; an empty path counts as originated by the local AS.
    OriginIn(Arc<AsnSet>),
    OriginNotIn(Arc<AsnSet>),
    PathContainsAny(Arc<AsnSet>),
    PathContainsAll(Arc<AsnSet>),
    PathLen {
        min: u32,
        max: u32,
    },
    /// Over the path rendered as space-separated decimal ASNs, nearest first.
    PathRegex(regex::bytes::Regex),
    CapabilitiesAny(Arc<TagSet>),
    CapabilitiesAll(Arc<TagSet>),
    CommunitiesAny(Arc<CommunitySet>),
    CommunitiesAll(Arc<CommunitySet>),
    PeerAsn(Arc<AsnSet>),
    PeerNode(Box<[NodeId]>),
    PeerInternal(bool),
    Med {
        min: u32,
        max: u32,
    },
    LocalPref {
        min: u32,
        max: u32,
    },
    AgentIs(Box<[AgentId]>),
    /// Agent id against globs, compiled to one anchored regex.
    AgentGlob(regex::Regex),
    /// Holds when not all of the inner conditions hold.
    Not(Box<[Cond]>),
}

impl Cond {
    /// A rough rank of evaluation cost, so cheap tests reject early.
    pub(crate) fn cost(&self) -> u8 {
        match self {
            Cond::PeerInternal(_) | Cond::Med { .. } | Cond::LocalPref { .. } => 0,
            Cond::PathLen { .. } | Cond::OriginIn(_) | Cond::OriginNotIn(_) | Cond::PeerAsn(_) => 1,
            Cond::PeerNode(_) | Cond::PathContainsAny(_) | Cond::PathContainsAll(_) => 2,
            Cond::CommunitiesAny(_)
            | Cond::CommunitiesAll(_)
            | Cond::CapabilitiesAny(_)
            | Cond::CapabilitiesAll(_) => 3,
            Cond::PrefixExact(_) | Cond::PrefixCoveredBy(_) | Cond::AgentIs(_) => 4,
            Cond::AgentGlob(_) | Cond::PathRegex(_) => 5,
            Cond::Not(_) => 6,
        }
    }
}

/// Attribute changes of a matching statement, applied in field order
/// (communities set, remove, add; local-pref; MED; prepend; extra). Each one
/// touches the shared attributes only when it would change them.
#[derive(Debug, Default)]
pub(crate) struct Actions {
    /// Replace all communities, keeping well-known ones already present.
    pub communities_set: Option<Arc<CommunitySet>>,
    pub communities_remove: Option<Arc<CommunitySet>>,
    pub communities_add: Option<Arc<CommunitySet>>,
    pub local_pref: Option<u32>,
    pub med: Option<u32>,
    /// Copies of the local ASN to put in front of the path; export only,
    /// and only toward external peers.
    pub prepend: u32,
    pub extra: Box<[(Arc<str>, ExtraAttr)]>,
}

impl Actions {
    pub(crate) fn is_empty(&self) -> bool {
        self.communities_set.is_none()
            && self.communities_remove.is_none()
            && self.communities_add.is_none()
            && self.local_pref.is_none()
            && self.med.is_none()
            && self.prepend == 0
            && self.extra.is_empty()
    }
}

/// What a matching statement does after its actions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Disposition {
    Accept,
    Reject,
    /// Continue with the next statement (or the next policy of the chain).
    Next,
}

#[derive(Debug)]
pub(crate) struct Statement {
    pub label: Arc<StatementLabel>,
    /// All must hold; empty means always.
    pub conds: Box<[Cond]>,
    pub actions: Actions,
    /// Cached `actions.is_empty()`, so a pure filter skips the call.
    pub has_actions: bool,
    pub disposition: Disposition,
}

/// A named, ordered list of statements.
#[derive(Debug)]
pub struct Policy {
    pub(crate) name: Arc<str>,
    pub(crate) statements: Box<[Statement]>,
}

impl Policy {
    pub fn name(&self) -> &str {
        &self.name
    }
}

/// The policies applied to one direction of one peer, and what happens when
/// none of their statements decides. Cheap to clone (shared), so the engine
/// can resolve it once per session and keep it.
#[derive(Debug, Clone, Default)]
pub struct Chain {
    pub(crate) policies: Arc<[Arc<Policy>]>,
    /// From `default-import` / `default-export`; `None` means the RFC 8212
    /// rule: accept for internal peers, reject for external ones.
    pub(crate) default: Option<Verdict>,
}

impl Chain {
    /// The names of the policies, in evaluation order.
    pub fn policy_names(&self) -> impl Iterator<Item = &str> {
        self.policies.iter().map(|p| p.name())
    }

    /// The configured default, if any (else the RFC 8212 rule applies).
    pub fn configured_default(&self) -> Option<Verdict> {
        self.default
    }
}

/// One `[[apply]]` entry, compiled.
#[derive(Debug, Clone, Default)]
pub(crate) struct Assignment {
    pub import: Chain,
    pub export: Chain,
}

/// A compiled policy file: the policies, the named sets they use, and the
/// assignments of chains to peers. Immutable; share it behind an `Arc` and
/// swap the whole set on reload.
///
/// [`PolicySet::default`] is the set of a node without a policy file: every
/// peer falls back to the RFC 8212 defaults (internal accept, external
/// reject).
#[derive(Debug, Default)]
pub struct PolicySet {
    pub(crate) policies: Vec<Arc<Policy>>,
    pub(crate) assignments: Vec<Assignment>,
    /// Selector indexes into `assignments`, most specific first at lookup.
    pub(crate) by_node: HashMap<NodeId, usize>,
    pub(crate) by_asn: HashMap<Asn, usize>,
    pub(crate) internal: Option<usize>,
    pub(crate) external: Option<usize>,
    pub(crate) all: Option<usize>,
}

impl PolicySet {
    /// The set of a node without a policy file.
    pub fn empty() -> Self {
        Self::default()
    }

    /// Names of all defined policies, in file order.
    pub fn policy_names(&self) -> impl Iterator<Item = &str> {
        self.policies.iter().map(|p| p.name())
    }

    /// The `[[apply]]` entry for `peer`: the most specific selector wins
    /// (node id, then ASN, then internal/external, then `*`).
    pub(crate) fn assignment(&self, peer: &PeerCtx) -> Option<&Assignment> {
        // Each lookup is skipped when no selector of its kind exists, so the
        // common small file costs a few branches, not hashes.
        let idx = (!self.by_node.is_empty())
            .then(|| self.by_node.get(&peer.node).copied())
            .flatten()
            .or_else(|| {
                (!self.by_asn.is_empty())
                    .then(|| self.by_asn.get(&peer.asn).copied())
                    .flatten()
            })
            .or(if peer.internal {
                self.internal
            } else {
                self.external
            })
            .or(self.all)?;
        self.assignments.get(idx)
    }

    /// The chain for one direction of one peer, for callers that resolve
    /// once per session. A peer no `[[apply]]` selects gets an empty chain,
    /// i.e. the RFC 8212 defaults.
    pub fn chain_for(&self, peer: &PeerCtx, direction: Direction) -> Chain {
        self.chain_ref(peer, direction).cloned().unwrap_or_default()
    }

    pub(crate) fn chain_ref(&self, peer: &PeerCtx, direction: Direction) -> Option<&Chain> {
        let a = self.assignment(peer)?;
        Some(match direction {
            Direction::Import => &a.import,
            Direction::Export => &a.export,
        })
    }
}
