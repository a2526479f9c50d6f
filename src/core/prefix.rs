//! Capability prefixes: the "address space" agent-bgp routes over.
//!
//! A prefix is a hierarchical name made of `/`-separated segments. It is either
//! *exact* (`coding/typescript/lint` names one capability) or a *wildcard*
//! (`coding/typescript/*` covers `coding/typescript` and everything below it;
//! `*` covers everything). Wildcards play the role of shorter IP prefixes: the
//! fewer segments before the `*`, the less specific the prefix.
//!
//! Specificity, from most to least specific for a wanted name `a/b/c`:
//! `a/b/c` (exact), `a/b/c/*`, `a/b/*`, `a/*`, `*`.
//!
//! [`PrefixTrie`] answers longest-prefix-match and covered-by queries by
//! walking segments, never by scanning all prefixes.

use std::collections::HashMap;
use std::fmt;
use std::str::FromStr;
use std::sync::Arc;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Most segments a prefix may have (the `*` counts as one).
pub const MAX_SEGMENTS: usize = 16;
/// Longest single segment, in bytes.
pub const MAX_SEGMENT_LEN: usize = 64;
/// Longest prefix text, in bytes.
pub const MAX_PREFIX_LEN: usize = 255;

/// Why a string is not a valid prefix.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PrefixError {
    #[error("prefix is empty")]
    Empty,
    #[error("prefix is {len} bytes long; the limit is {MAX_PREFIX_LEN}")]
    TooLong { len: usize },
    #[error("prefix has {count} segments; the limit is {MAX_SEGMENTS}")]
    TooManySegments { count: usize },
    #[error("segment {index} is empty (leading, trailing or doubled '/')")]
    EmptySegment { index: usize },
    #[error("segment {index} is {len} bytes long; the limit is {MAX_SEGMENT_LEN}")]
    SegmentTooLong { index: usize, len: usize },
    #[error(
        "segment {index} has the character {ch:?}; allowed are letters, digits, '-', '_' and '.'"
    )]
    BadCharacter { index: usize, ch: char },
    #[error("'*' may only appear alone as the last segment (segment {index})")]
    MisplacedWildcard { index: usize },
}

/// A validated capability prefix. Cheap to clone (one shared string).
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Prefix {
    /// Canonical text, including the trailing `/*` or lone `*` of a wildcard.
    text: Arc<str>,
}

fn valid_segment_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.'
}

impl Prefix {
    /// Parses and validates a prefix.
    pub fn new(text: &str) -> Result<Self, PrefixError> {
        Self::validate(text)?;
        Ok(Prefix { text: text.into() })
    }

    fn validate(text: &str) -> Result<(), PrefixError> {
        if text.is_empty() {
            return Err(PrefixError::Empty);
        }
        if text.len() > MAX_PREFIX_LEN {
            return Err(PrefixError::TooLong { len: text.len() });
        }
        let count = text.split('/').count();
        if count > MAX_SEGMENTS {
            return Err(PrefixError::TooManySegments { count });
        }
        for (index, seg) in text.split('/').enumerate() {
            if seg.is_empty() {
                return Err(PrefixError::EmptySegment { index });
            }
            if seg == "*" {
                if index + 1 != count {
                    return Err(PrefixError::MisplacedWildcard { index });
                }
                continue;
            }
            if seg.len() > MAX_SEGMENT_LEN {
                return Err(PrefixError::SegmentTooLong {
                    index,
                    len: seg.len(),
                });
            }
            if let Some(ch) = seg.chars().find(|c| !valid_segment_char(*c)) {
                if ch == '*' {
                    return Err(PrefixError::MisplacedWildcard { index });
                }
                return Err(PrefixError::BadCharacter { index, ch });
            }
        }
        Ok(())
    }

    /// The prefix that covers everything.
    pub fn any() -> Self {
        Prefix { text: "*".into() }
    }

    /// The canonical text.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// True for `a/b/*` and `*`.
    pub fn is_wildcard(&self) -> bool {
        self.text.ends_with('*')
    }

    /// The named segments, without the trailing `*` of a wildcard.
    pub fn segments(&self) -> impl Iterator<Item = &str> + Clone {
        let base = self.base();
        base.split('/').filter(move |_| !base.is_empty())
    }

    /// Number of named segments (`a/b/*` has 2, `a/b` has 2, `*` has 0).
    pub fn depth(&self) -> usize {
        self.segments().count()
    }

    /// The text without the wildcard: `a/b` for `a/b/*`, `` for `*`.
    pub fn base(&self) -> &str {
        let t: &str = &self.text;
        if t == "*" {
            ""
        } else if let Some(b) = t.strip_suffix("/*") {
            b
        } else {
            t
        }
    }

    /// The wildcard prefix covering this one's base (`a/b` -> `a/b/*`).
    pub fn to_wildcard(&self) -> Prefix {
        if self.is_wildcard() {
            return self.clone();
        }
        Prefix {
            text: format!("{}/*", self.text).into(),
        }
    }

    /// The wildcard one level up (`a/b/c` -> `a/b/*`, `a/b/*` -> `a/*`, `a/*` -> `*`).
    pub fn parent(&self) -> Option<Prefix> {
        let base = self.base();
        if base.is_empty() {
            return None;
        }
        let exact_parent = if self.is_wildcard() {
            base.rsplit_once('/').map(|(p, _)| p)
        } else {
            Some(base.rsplit_once('/').map(|(p, _)| p).unwrap_or(""))
        };
        Some(match exact_parent {
            None | Some("") => Prefix::any(),
            Some(p) => Prefix {
                text: format!("{p}/*").into(),
            },
        })
    }

    /// Does this prefix cover `other`? A prefix covers itself; a wildcard
    /// covers every prefix (exact or wildcard) at or below its base.
    pub fn covers(&self, other: &Prefix) -> bool {
        if self == other {
            return true;
        }
        if !self.is_wildcard() {
            return false;
        }
        let base = self.base();
        if base.is_empty() {
            return true;
        }
        let ob = other.base();
        ob == base
            || (ob.len() > base.len() && ob.starts_with(base) && ob.as_bytes()[base.len()] == b'/')
    }

    /// Specificity rank: higher is more specific. Exact names outrank a
    /// wildcard of the same depth.
    pub fn specificity(&self) -> usize {
        self.depth() * 2 + usize::from(!self.is_wildcard())
    }
}

impl fmt::Display for Prefix {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

impl fmt::Debug for Prefix {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Prefix({})", self.text)
    }
}

impl FromStr for Prefix {
    type Err = PrefixError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Prefix::new(s)
    }
}

impl TryFrom<&str> for Prefix {
    type Error = PrefixError;
    fn try_from(s: &str) -> Result<Self, Self::Error> {
        Prefix::new(s)
    }
}

impl Serialize for Prefix {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.text)
    }
}

impl<'de> Deserialize<'de> for Prefix {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        Prefix::new(&s).map_err(serde::de::Error::custom)
    }
}

/// A trie keyed by prefix segments. Each node may hold a value for the exact
/// name ending there and one for the wildcard rooted there.
#[derive(Debug, Clone)]
pub struct PrefixTrie<V> {
    root: Node<V>,
    len: usize,
}

#[derive(Debug, Clone)]
struct Node<V> {
    exact: Option<(Prefix, V)>,
    wild: Option<(Prefix, V)>,
    children: HashMap<Box<str>, Node<V>>,
}

impl<V> Default for Node<V> {
    fn default() -> Self {
        Node {
            exact: None,
            wild: None,
            children: HashMap::new(),
        }
    }
}

impl<V> Node<V> {
    fn is_empty(&self) -> bool {
        self.exact.is_none() && self.wild.is_none() && self.children.is_empty()
    }

    fn walk<'a>(&'a self, out: &mut impl FnMut(&'a Prefix, &'a V)) {
        if let Some((p, v)) = &self.exact {
            out(p, v);
        }
        if let Some((p, v)) = &self.wild {
            out(p, v);
        }
        for child in self.children.values() {
            child.walk(out);
        }
    }
}

impl<V> Default for PrefixTrie<V> {
    fn default() -> Self {
        PrefixTrie {
            root: Node::default(),
            len: 0,
        }
    }
}

impl<V> PrefixTrie<V> {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    fn slot_mut<'a>(node: &'a mut Node<V>, prefix: &Prefix) -> &'a mut Option<(Prefix, V)> {
        if prefix.is_wildcard() {
            &mut node.wild
        } else {
            &mut node.exact
        }
    }

    /// Inserts or replaces; returns the previous value.
    pub fn insert(&mut self, prefix: Prefix, value: V) -> Option<V> {
        let mut node = &mut self.root;
        for seg in prefix.segments() {
            node = node.children.entry(seg.into()).or_default();
        }
        let old = Self::slot_mut(node, &prefix).replace((prefix, value));
        if old.is_none() {
            self.len += 1;
        }
        old.map(|(_, v)| v)
    }

    pub fn get(&self, prefix: &Prefix) -> Option<&V> {
        let mut node = &self.root;
        for seg in prefix.segments() {
            node = node.children.get(seg)?;
        }
        let slot = if prefix.is_wildcard() {
            &node.wild
        } else {
            &node.exact
        };
        slot.as_ref().map(|(_, v)| v)
    }

    pub fn get_mut(&mut self, prefix: &Prefix) -> Option<&mut V> {
        let mut node = &mut self.root;
        for seg in prefix.segments() {
            node = node.children.get_mut(seg)?;
        }
        Self::slot_mut(node, prefix).as_mut().map(|(_, v)| v)
    }

    /// Removes a prefix, pruning empty branches.
    pub fn remove(&mut self, prefix: &Prefix) -> Option<V> {
        let segs: Vec<&str> = prefix.segments().collect();
        let out = Self::remove_at(&mut self.root, &segs, prefix);
        if out.is_some() {
            self.len -= 1;
        }
        out
    }

    fn remove_at(node: &mut Node<V>, segs: &[&str], prefix: &Prefix) -> Option<V> {
        match segs.split_first() {
            None => Self::slot_mut(node, prefix).take().map(|(_, v)| v),
            Some((first, rest)) => {
                let child = node.children.get_mut(*first)?;
                let out = Self::remove_at(child, rest, prefix);
                if child.is_empty() {
                    node.children.remove(*first);
                }
                out
            }
        }
    }

    /// The most specific stored prefix that covers `wanted`.
    pub fn longest_match(&self, wanted: &Prefix) -> Option<(&Prefix, &V)> {
        let mut best = self.root.wild.as_ref();
        let mut node = &self.root;
        let mut complete = true;
        for seg in wanted.segments() {
            match node.children.get(seg) {
                Some(child) => {
                    node = child;
                    if let Some(w) = &node.wild {
                        best = Some(w);
                    }
                }
                None => {
                    complete = false;
                    break;
                }
            }
        }
        if complete
            && !wanted.is_wildcard()
            && let Some(e) = &node.exact
        {
            best = Some(e);
        }
        best.map(|(p, v)| (p, v))
    }

    /// Every stored prefix that covers `wanted`, most specific first.
    pub fn matches(&self, wanted: &Prefix) -> Vec<(&Prefix, &V)> {
        let mut out = Vec::new();
        if let Some((p, v)) = &self.root.wild {
            out.push((p, v));
        }
        let mut node = &self.root;
        let mut complete = true;
        for seg in wanted.segments() {
            match node.children.get(seg) {
                Some(child) => {
                    node = child;
                    if let Some((p, v)) = &node.wild {
                        out.push((p, v));
                    }
                }
                None => {
                    complete = false;
                    break;
                }
            }
        }
        if complete
            && !wanted.is_wildcard()
            && let Some((p, v)) = &node.exact
        {
            out.push((p, v));
        }
        out.reverse();
        out
    }

    /// Every stored prefix that `cover` covers (itself included), in no set order.
    pub fn covered_by(&self, cover: &Prefix) -> Vec<(&Prefix, &V)> {
        let mut out = Vec::new();
        let mut node = &self.root;
        for seg in cover.segments() {
            match node.children.get(seg) {
                Some(child) => node = child,
                None => return out,
            }
        }
        if cover.is_wildcard() {
            node.walk(&mut |p, v| out.push((p, v)));
        } else if let Some((p, v)) = &node.exact {
            out.push((p, v));
        }
        out
    }

    /// All entries, in no set order.
    pub fn iter(&self) -> Vec<(&Prefix, &V)> {
        let mut out = Vec::with_capacity(self.len);
        self.root.walk(&mut |p, v| out.push((p, v)));
        out
    }
}

/// A compact set of prefixes with the same queries as [`PrefixTrie`]: the
/// Loc-RIB index. Nodes keep sorted child vectors and two flags instead of
/// hash maps and copies of the prefix, so an index entry costs tens of bytes;
/// results are rebuilt from the query's own segments.
#[derive(Debug, Clone, Default)]
pub struct PrefixSet {
    root: SetNode,
    len: usize,
}

#[derive(Debug, Clone, Default)]
struct SetNode {
    exact: bool,
    wild: bool,
    children: Vec<(SegKey, SetNode)>,
}

/// A child's segment with its first eight bytes kept inline: a search
/// compares numbers in the child vector and reads a segment's text only
/// when the heads are equal, instead of following a pointer per probe (the
/// root of a table with a thousand origins has a thousand children).
#[derive(Debug, Clone)]
struct SegKey {
    head: u64,
    text: Box<str>,
}

impl SegKey {
    fn new(seg: &str) -> Self {
        SegKey {
            head: seg_head(seg),
            text: seg.into(),
        }
    }

    /// The same order as comparing the texts: segments hold no NUL byte, so
    /// a zero-padded head orders a shorter text before its extensions.
    fn cmp_to(&self, head: u64, seg: &str) -> std::cmp::Ordering {
        self.head.cmp(&head).then_with(|| (*self.text).cmp(seg))
    }
}

/// The first eight bytes of a segment, zero-padded, as a big-endian number.
fn seg_head(seg: &str) -> u64 {
    let mut b = [0u8; 8];
    let n = seg.len().min(8);
    b[..n].copy_from_slice(&seg.as_bytes()[..n]);
    u64::from_be_bytes(b)
}

impl SetNode {
    fn find(&self, seg: &str) -> Result<usize, usize> {
        let head = seg_head(seg);
        self.children.binary_search_by(|(k, _)| k.cmp_to(head, seg))
    }

    fn child(&self, seg: &str) -> Option<&SetNode> {
        self.find(seg).ok().map(|i| &self.children[i].1)
    }

    fn is_empty(&self) -> bool {
        !self.exact && !self.wild && self.children.is_empty()
    }

    fn walk(&self, path: &mut String, out: &mut Vec<Prefix>) {
        if self.exact && !path.is_empty() {
            out.push(Prefix {
                text: path.as_str().into(),
            });
        }
        if self.wild {
            let text = if path.is_empty() {
                "*".to_string()
            } else {
                format!("{path}/*")
            };
            out.push(Prefix { text: text.into() });
        }
        for (seg, child) in &self.children {
            let len = path.len();
            if !path.is_empty() {
                path.push('/');
            }
            path.push_str(&seg.text);
            child.walk(path, out);
            path.truncate(len);
        }
    }
}

impl PrefixSet {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Adds a prefix; returns false if it was already present.
    pub fn insert(&mut self, prefix: &Prefix) -> bool {
        let mut node = &mut self.root;
        for seg in prefix.segments() {
            let i = match node.find(seg) {
                Ok(i) => i,
                Err(i) => {
                    node.children
                        .insert(i, (SegKey::new(seg), SetNode::default()));
                    i
                }
            };
            node = &mut node.children[i].1;
        }
        let flag = if prefix.is_wildcard() {
            &mut node.wild
        } else {
            &mut node.exact
        };
        let added = !*flag;
        *flag = true;
        if added {
            self.len += 1;
        }
        added
    }

    /// Removes a prefix, pruning empty branches; returns whether it was there.
    pub fn remove(&mut self, prefix: &Prefix) -> bool {
        let segs: Vec<&str> = prefix.segments().collect();
        let removed = Self::remove_at(&mut self.root, &segs, prefix.is_wildcard());
        if removed {
            self.len -= 1;
        }
        removed
    }

    fn remove_at(node: &mut SetNode, segs: &[&str], wild: bool) -> bool {
        match segs.split_first() {
            None => {
                let flag = if wild {
                    &mut node.wild
                } else {
                    &mut node.exact
                };
                std::mem::replace(flag, false)
            }
            Some((first, rest)) => {
                let Ok(i) = node.find(first) else {
                    return false;
                };
                let removed = Self::remove_at(&mut node.children[i].1, rest, wild);
                if node.children[i].1.is_empty() {
                    node.children.remove(i);
                }
                removed
            }
        }
    }

    pub fn contains(&self, prefix: &Prefix) -> bool {
        let mut node = &self.root;
        for seg in prefix.segments() {
            match node.child(seg) {
                Some(c) => node = c,
                None => return false,
            }
        }
        if prefix.is_wildcard() {
            node.wild
        } else {
            node.exact
        }
    }

    /// The most specific stored prefix covering `wanted`.
    pub fn longest_match(&self, wanted: &Prefix) -> Option<Prefix> {
        // (number of segments consumed, exact?) of the best match so far.
        let mut best: Option<(usize, bool)> = self.root.wild.then_some((0, false));
        let mut node = &self.root;
        let mut depth = 0;
        let mut complete = true;
        for seg in wanted.segments() {
            match node.child(seg) {
                Some(c) => {
                    node = c;
                    depth += 1;
                    if node.wild {
                        best = Some((depth, false));
                    }
                }
                None => {
                    complete = false;
                    break;
                }
            }
        }
        if complete && !wanted.is_wildcard() && node.exact {
            best = Some((depth, true));
        }
        let (depth, exact) = best?;
        if exact {
            return Some(wanted.clone());
        }
        let base: Vec<&str> = wanted.segments().take(depth).collect();
        let text = if base.is_empty() {
            "*".to_string()
        } else {
            format!("{}/*", base.join("/"))
        };
        Some(Prefix { text: text.into() })
    }

    /// Every stored prefix that `cover` covers, itself included, sorted.
    pub fn covered_by(&self, cover: &Prefix) -> Vec<Prefix> {
        let mut node = &self.root;
        for seg in cover.segments() {
            match node.child(seg) {
                Some(c) => node = c,
                None => return Vec::new(),
            }
        }
        let mut out = Vec::new();
        if cover.is_wildcard() {
            let mut path = cover.base().to_string();
            node.walk(&mut path, &mut out);
        } else if node.exact {
            out.push(cover.clone());
        }
        out.sort();
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn p(s: &str) -> Prefix {
        Prefix::new(s).unwrap()
    }

    #[test]
    fn valid_prefixes_parse() {
        for s in [
            "*",
            "coding/*",
            "coding/typescript/lint",
            "a.b/c-d/e_f",
            "x",
        ] {
            assert_eq!(p(s).as_str(), s);
        }
    }

    #[test]
    fn invalid_prefixes_say_why() {
        assert_eq!(Prefix::new(""), Err(PrefixError::Empty));
        assert_eq!(
            Prefix::new("a//b"),
            Err(PrefixError::EmptySegment { index: 1 })
        );
        assert_eq!(
            Prefix::new("/a"),
            Err(PrefixError::EmptySegment { index: 0 })
        );
        assert_eq!(
            Prefix::new("a/"),
            Err(PrefixError::EmptySegment { index: 1 })
        );
        assert_eq!(
            Prefix::new("a/*/b"),
            Err(PrefixError::MisplacedWildcard { index: 1 })
        );
        assert_eq!(
            Prefix::new("a/b*"),
            Err(PrefixError::MisplacedWildcard { index: 1 })
        );
        assert_eq!(
            Prefix::new("a/b c"),
            Err(PrefixError::BadCharacter { index: 1, ch: ' ' })
        );
        assert!(matches!(
            Prefix::new("a/".repeat(20).trim_end_matches('/')),
            Err(PrefixError::TooManySegments { .. })
        ));
        assert!(matches!(
            Prefix::new(&"x".repeat(65)),
            Err(PrefixError::SegmentTooLong { index: 0, len: 65 })
        ));
        assert!(matches!(
            Prefix::new(&"abcdefgh/".repeat(40)),
            Err(PrefixError::TooLong { .. })
        ));
    }

    #[test]
    fn wildcard_covers_its_base_and_descendants_only() {
        let w = p("coding/typescript/*");
        assert!(w.covers(&p("coding/typescript")));
        assert!(w.covers(&p("coding/typescript/lint")));
        assert!(w.covers(&p("coding/typescript/lint/fix")));
        assert!(w.covers(&p("coding/typescript/x/*")));
        assert!(!w.covers(&p("coding/typescriptx")));
        assert!(!w.covers(&p("coding/*")));
        assert!(p("*").covers(&p("anything/at/all")));
        assert!(!p("a/b").covers(&p("a/b/c")));
    }

    #[test]
    fn parent_climbs_one_level() {
        assert_eq!(p("a/b/c").parent(), Some(p("a/b/*")));
        assert_eq!(p("a/b/*").parent(), Some(p("a/*")));
        assert_eq!(p("a/*").parent(), Some(p("*")));
        assert_eq!(p("a").parent(), Some(p("*")));
        assert_eq!(p("*").parent(), None);
    }

    #[test]
    fn longest_match_prefers_exact_then_deepest_wildcard() {
        let mut t = PrefixTrie::new();
        t.insert(p("*"), 0);
        t.insert(p("coding/*"), 1);
        t.insert(p("coding/typescript/*"), 2);
        t.insert(p("coding/typescript/lint"), 3);
        let lm = |s: &str| t.longest_match(&p(s)).map(|(_, v)| *v);
        assert_eq!(lm("coding/typescript/lint"), Some(3));
        assert_eq!(lm("coding/typescript/format"), Some(2));
        assert_eq!(lm("coding/typescript"), Some(2));
        assert_eq!(lm("coding/rust/fmt"), Some(1));
        assert_eq!(lm("finance/audit"), Some(0));
        assert_eq!(lm("coding/typescript/lint/deep"), Some(2));
        let all: Vec<i32> = t
            .matches(&p("coding/typescript/lint"))
            .into_iter()
            .map(|(_, v)| *v)
            .collect();
        assert_eq!(all, vec![3, 2, 1, 0]);
    }

    #[test]
    fn remove_prunes_and_counts() {
        let mut t = PrefixTrie::new();
        t.insert(p("a/b/c"), 1);
        t.insert(p("a/b/*"), 2);
        assert_eq!(t.len(), 2);
        assert_eq!(t.remove(&p("a/b/c")), Some(1));
        assert_eq!(t.remove(&p("a/b/c")), None);
        assert_eq!(t.longest_match(&p("a/b/c")).map(|(_, v)| *v), Some(2));
        assert_eq!(t.remove(&p("a/b/*")), Some(2));
        assert!(t.is_empty());
        assert!(t.root.children.is_empty());
    }

    #[test]
    fn covered_by_walks_the_subtree() {
        let mut t = PrefixTrie::new();
        for (i, s) in ["a/b", "a/b/c", "a/b/*", "a/x", "b"].iter().enumerate() {
            t.insert(p(s), i);
        }
        let mut got: Vec<&str> = t
            .covered_by(&p("a/b/*"))
            .into_iter()
            .map(|(k, _)| k.as_str())
            .collect();
        got.sort();
        assert_eq!(got, vec!["a/b", "a/b/*", "a/b/c"]);
        assert_eq!(t.covered_by(&p("*")).len(), 5);
    }

    fn arb_prefix() -> impl Strategy<Value = Prefix> {
        (
            // Long segments sharing their first eight bytes, and one that
            // is the start of others: the set compares heads before texts.
            prop::collection::vec(
                prop::sample::select(vec!["a", "b", "c", "abcdefgh", "abcdefghi", "abcdefgh-x"]),
                0..4,
            ),
            any::<bool>(),
        )
            .prop_map(|(segs, wild)| {
                let mut s = segs.join("/");
                if wild || s.is_empty() {
                    if s.is_empty() {
                        s = "*".into();
                    } else {
                        s.push_str("/*");
                    }
                }
                Prefix::new(&s).unwrap()
            })
    }

    #[test]
    fn prefix_set_matches_and_lists_like_the_trie() {
        let mut set = PrefixSet::new();
        for s in [
            "*",
            "coding/*",
            "coding/ts/*",
            "coding/ts/lint",
            "fin/audit",
        ] {
            assert!(set.insert(&p(s)));
        }
        assert!(!set.insert(&p("coding/*")));
        assert_eq!(set.len(), 5);
        let lm = |s: &str| set.longest_match(&p(s)).map(|x| x.to_string());
        assert_eq!(lm("coding/ts/lint").as_deref(), Some("coding/ts/lint"));
        assert_eq!(lm("coding/ts/fmt").as_deref(), Some("coding/ts/*"));
        assert_eq!(lm("coding/go").as_deref(), Some("coding/*"));
        assert_eq!(lm("other").as_deref(), Some("*"));
        let under: Vec<String> = set
            .covered_by(&p("coding/*"))
            .iter()
            .map(|x| x.to_string())
            .collect();
        assert_eq!(under, vec!["coding/*", "coding/ts/*", "coding/ts/lint"]);
        assert!(set.remove(&p("coding/ts/lint")));
        assert!(!set.remove(&p("coding/ts/lint")));
        assert!(!set.contains(&p("coding/ts/lint")));
        assert_eq!(set.len(), 4);
    }

    proptest! {
        #[test]
        fn prefix_set_agrees_with_the_trie(
            stored in prop::collection::vec(arb_prefix(), 0..20),
            removed in prop::collection::vec(arb_prefix(), 0..5),
            wanted in arb_prefix(),
        ) {
            let mut t = PrefixTrie::new();
            let mut set = PrefixSet::new();
            for s in &stored { t.insert(s.clone(), ()); set.insert(s); }
            for r in &removed { t.remove(r); set.remove(r); }
            prop_assert_eq!(set.len(), t.len());
            prop_assert_eq!(set.longest_match(&wanted), t.longest_match(&wanted).map(|(p, _)| p.clone()));
            let mut from_trie: Vec<Prefix> = t.covered_by(&wanted).into_iter().map(|(p, _)| p.clone()).collect();
            from_trie.sort();
            prop_assert_eq!(set.covered_by(&wanted), from_trie);
        }

        #[test]
        fn trie_longest_match_equals_linear_scan(
            stored in prop::collection::vec(arb_prefix(), 0..20),
            wanted in arb_prefix(),
        ) {
            let mut t = PrefixTrie::new();
            for s in &stored { t.insert(s.clone(), ()); }
            let linear = stored.iter().filter(|s| s.covers(&wanted)).max_by_key(|s| s.specificity());
            let got = t.longest_match(&wanted).map(|(p, _)| p);
            prop_assert_eq!(got, linear);
        }

        #[test]
        fn parse_display_round_trip(x in arb_prefix()) {
            prop_assert_eq!(Prefix::new(x.as_str()).unwrap(), x);
        }
    }
}
