//! Evaluating compiled policy against one route: conditions, actions, and
//! the chain walk with its defaults (style anchor R1).
//!
//! This is the hot path: import policy runs on every received route. Nothing
//! here allocates unless an action really changes the attributes (then
//! `Arc::make_mut` copies them once per evaluation), and a peer without
//! policy costs a few branches.

use std::sync::Arc;

use crate::core::attrs::PathAttrs;
use crate::core::community::Community;
use crate::core::ids::Asn;
use crate::core::prefix::Prefix;

use super::model::{Actions, Chain, Cond, Disposition, Policy, PolicySet, Statement};
use super::{DecidedBy, Decision, DefaultReason, Direction, PolicyCtx, Verdict};

/// The route being judged, minus the attributes (those are passed mutably).
#[derive(Clone, Copy)]
struct Subject<'a> {
    ctx: &'a PolicyCtx,
    prefix: &'a Prefix,
}

impl PolicySet {
    /// Runs the chain that applies to `ctx.peer` in `ctx.direction` on one
    /// route. Changes attributes in place (copy-on-write: `attrs` keeps its
    /// pointer unless an action changed something).
    pub fn evaluate(
        &self,
        ctx: &PolicyCtx,
        prefix: &Prefix,
        attrs: &mut Arc<PathAttrs>,
    ) -> Decision {
        match self.chain_ref(&ctx.peer, ctx.direction) {
            Some(chain) => chain.evaluate(ctx, prefix, attrs),
            None => default_decision(None, ctx),
        }
    }
}

impl Chain {
    /// Runs this chain on one route; see [`PolicySet::evaluate`]. `ctx.peer`
    /// must be the peer the chain was resolved for.
    pub fn evaluate(
        &self,
        ctx: &PolicyCtx,
        prefix: &Prefix,
        attrs: &mut Arc<PathAttrs>,
    ) -> Decision {
        let subject = Subject { ctx, prefix };
        for policy in self.policies.iter() {
            if let Some(d) = run_policy(policy, subject, attrs) {
                return d;
            }
        }
        default_decision(self.default, ctx)
    }
}

fn default_decision(configured: Option<Verdict>, ctx: &PolicyCtx) -> Decision {
    let (verdict, reason) = match configured {
        Some(v) => (v, DefaultReason::Configured),
        None if ctx.peer.internal => (Verdict::Accept, DefaultReason::InternalPeer),
        None => (Verdict::Reject, DefaultReason::ExternalPeer),
    };
    Decision {
        verdict,
        decided_by: DecidedBy::Default(reason),
    }
}

/// `Some` when a statement accepted or rejected; `None` falls through.
fn run_policy(policy: &Policy, s: Subject<'_>, attrs: &mut Arc<PathAttrs>) -> Option<Decision> {
    for stmt in policy.statements.iter() {
        // Later statements see what earlier `next` statements changed.
        if !all_match(&stmt.conds, s, attrs) {
            continue;
        }
        if stmt.has_actions {
            apply(&stmt.actions, s.ctx, attrs);
        }
        if let Some(verdict) = decided(stmt) {
            return Some(Decision {
                verdict,
                decided_by: DecidedBy::Statement(stmt.label.clone()),
            });
        }
    }
    None
}

fn decided(stmt: &Statement) -> Option<Verdict> {
    match stmt.disposition {
        Disposition::Accept => Some(Verdict::Accept),
        Disposition::Reject => Some(Verdict::Reject),
        Disposition::Next => None,
    }
}

fn all_match(conds: &[Cond], s: Subject<'_>, attrs: &PathAttrs) -> bool {
    conds.iter().all(|c| matches(c, s, attrs))
}

fn matches(c: &Cond, s: Subject<'_>, a: &PathAttrs) -> bool {
    match c {
        Cond::PrefixExact(set) => set.contains_exact(s.prefix),
        Cond::PrefixCoveredBy(set) => set.covers(s.prefix),
        Cond::OriginIn(set) => set.contains(origin(s.ctx, a)),
        Cond::OriginNotIn(set) => !set.contains(origin(s.ctx, a)),
        Cond::PathContainsAny(set) => {
            a.as_path.iter().any(|x| set.contains(*x))
                || a.aggregator
                    .as_ref()
                    .is_some_and(|ag| ag.as_set.iter().any(|x| set.contains(*x)))
        }
        Cond::PathContainsAll(set) => set.iter().all(|x| a.path_contains(x)),
        Cond::PathLen { min, max } => {
            let len = u32::try_from(a.path_len()).unwrap_or(u32::MAX);
            (*min..=*max).contains(&len)
        }
        Cond::PathRegex(re) => path_regex_matches(re, &a.as_path),
        Cond::CapabilitiesAny(set) => sorted_intersect(&a.capabilities, set.as_slice()),
        Cond::CapabilitiesAll(set) => set.as_slice().iter().all(|t| a.has_capability(t)),
        Cond::CommunitiesAny(set) => sorted_intersect(&a.communities, set.as_slice()),
        Cond::CommunitiesAll(set) => set.as_slice().iter().all(|c| a.has_community(c)),
        Cond::PeerAsn(set) => set.contains(s.ctx.peer.asn),
        Cond::PeerNode(nodes) => nodes.contains(&s.ctx.peer.node),
        Cond::PeerInternal(internal) => s.ctx.peer.internal == *internal,
        Cond::Med { min, max } => (*min..=*max).contains(&a.med),
        Cond::LocalPref { min, max } => (*min..=*max).contains(&a.local_pref),
        Cond::AgentIs(ids) => ids.contains(&a.agent),
        Cond::AgentGlob(re) => re.is_match(a.agent.as_str()),
        Cond::Not(inner) => !all_match(inner, s, a),
    }
}

/// The origin AS, where an empty path means "originated in our own AS".
fn origin(ctx: &PolicyCtx, a: &PathAttrs) -> Asn {
    a.origin_asn().unwrap_or(ctx.local_asn)
}

/// Do two sorted, deduplicated slices share an element? A merge walk:
/// linear in both, no allocation.
fn sorted_intersect<T: Ord>(a: &[T], b: &[T]) -> bool {
    let (mut i, mut j) = (0, 0);
    while i < a.len() && j < b.len() {
        match a[i].cmp(&b[j]) {
            std::cmp::Ordering::Less => i += 1,
            std::cmp::Ordering::Greater => j += 1,
            std::cmp::Ordering::Equal => return true,
        }
    }
    false
}

/// Paths up to this many bytes rendered (about 90 hops) match without
/// touching the heap.
const PATH_BUF: usize = 1024;
/// Widest rendering of one ASN plus its separator: `4294967295 `.
const ASN_TEXT_MAX: usize = 11;

fn path_regex_matches(re: &regex::bytes::Regex, path: &[Asn]) -> bool {
    if path.len() * ASN_TEXT_MAX <= PATH_BUF {
        let mut buf = [0u8; PATH_BUF];
        let n = render_path(path, &mut buf);
        re.is_match(&buf[..n])
    } else {
        // Absurdly long paths are rare (and bounded by the wire codec);
        // correctness over the no-allocation goal here.
        let mut buf = vec![0u8; path.len() * ASN_TEXT_MAX];
        let n = render_path(path, &mut buf);
        re.is_match(&buf[..n])
    }
}

/// Writes `65002 65000` into `buf` (which must hold `ASN_TEXT_MAX` bytes
/// per ASN) and returns the length.
fn render_path(path: &[Asn], buf: &mut [u8]) -> usize {
    let mut n = 0;
    for (i, asn) in path.iter().enumerate() {
        if i > 0 {
            buf[n] = b' ';
            n += 1;
        }
        let mut digits = [0u8; 10];
        let mut v = asn.0;
        let mut k = digits.len();
        loop {
            k -= 1;
            // `v % 10` is below 10, so the cast cannot truncate.
            digits[k] = b'0' + (v % 10) as u8;
            v /= 10;
            if v == 0 {
                break;
            }
        }
        let d = &digits[k..];
        buf[n..n + d.len()].copy_from_slice(d);
        n += d.len();
    }
    n
}

fn apply(act: &Actions, ctx: &PolicyCtx, attrs: &mut Arc<PathAttrs>) {
    if let Some(set) = &act.communities_set {
        let wanted = || merged_with_well_known(set.as_slice(), &attrs.communities);
        if !wanted().eq(attrs.communities.iter()) {
            let new: Vec<Community> = wanted().cloned().collect();
            Arc::make_mut(attrs).communities = new;
        }
    }
    if let Some(remove) = &act.communities_remove
        && attrs.communities.iter().any(|c| remove.contains(c))
    {
        Arc::make_mut(attrs)
            .communities
            .retain(|c| !remove.contains(c));
    }
    if let Some(add) = &act.communities_add
        && add.as_slice().iter().any(|c| !attrs.has_community(c))
    {
        let a = Arc::make_mut(attrs);
        for c in add.as_slice() {
            a.add_community(c.clone());
        }
    }
    if let Some(lp) = act.local_pref
        && attrs.local_pref != lp
    {
        Arc::make_mut(attrs).local_pref = lp;
    }
    if let Some(med) = act.med
        && attrs.med != med
    {
        Arc::make_mut(attrs).med = med;
    }
    // Toward internal peers BGP never adds ASNs, and a copy of our own ASN
    // would make the route look like a loop to them; import prepends are
    // refused at compile time for the same reason.
    if act.prepend > 0 && ctx.direction == Direction::Export && !ctx.peer.internal {
        let path = &mut Arc::make_mut(attrs).as_path;
        let n = act.prepend as usize;
        path.splice(0..0, std::iter::repeat_n(ctx.local_asn, n));
    }
    for (key, value) in act.extra.iter() {
        if attrs.extra.get(key) != Some(value) {
            Arc::make_mut(attrs)
                .extra
                .insert(key.clone(), value.clone());
        }
    }
}

/// The sorted union of `set` and the well-known communities of `current`
/// (which `communities.set` must keep: the engine, not policy, owns them).
fn merged_with_well_known<'a>(
    set: &'a [Community],
    current: &'a [Community],
) -> impl Iterator<Item = &'a Community> + 'a {
    let mut a = set.iter().peekable();
    let mut b = current.iter().filter(|c| c.is_well_known()).peekable();
    std::iter::from_fn(move || match (a.peek(), b.peek()) {
        (Some(x), Some(y)) => match x.cmp(y) {
            std::cmp::Ordering::Less => a.next(),
            std::cmp::Ordering::Greater => b.next(),
            std::cmp::Ordering::Equal => {
                b.next();
                a.next()
            }
        },
        (Some(_), None) => a.next(),
        (None, _) => b.next(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn path_renders_as_space_separated_decimals_nearest_first() {
        let mut buf = [0u8; 64];
        let n = render_path(&[Asn(65002), Asn(0), Asn(u32::MAX)], &mut buf);
        assert_eq!(&buf[..n], b"65002 0 4294967295");
        assert_eq!(render_path(&[], &mut buf), 0);
    }

    #[test]
    fn sorted_intersect_finds_a_shared_element_only() {
        assert!(sorted_intersect(&[1, 3, 5], &[2, 5]));
        assert!(!sorted_intersect(&[1, 3, 5], &[2, 4, 6]));
        assert!(!sorted_intersect::<u8>(&[], &[1]));
    }

    #[test]
    fn very_long_paths_still_match_regexes() {
        let re = regex::bytes::Regex::new("^1( 1)* 2$").unwrap();
        let mut path = vec![Asn(1); 500];
        path.push(Asn(2));
        assert!(path_regex_matches(&re, &path));
    }

    #[test]
    fn merged_with_well_known_keeps_well_known_and_drops_others() {
        let set = [Community::standard(1, 1)];
        let cur = [
            Community::standard(2, 2),
            Community::NO_EXPORT,
            Community::NO_ADVERTISE,
        ];
        let got: Vec<_> = merged_with_well_known(&set, &cur).cloned().collect();
        assert_eq!(
            got,
            vec![
                Community::standard(1, 1),
                Community::NO_EXPORT,
                Community::NO_ADVERTISE
            ]
        );
    }
}
