//! Turns a policy file into a [`PolicySet`]: parses the TOML (keeping field
//! paths and spans for errors), then checks and resolves everything that
//! evaluation relies on: prefixes, communities, ASNs, node ids, regexes and
//! globs, set and policy names, duplicate names, ranges, and the rule that
//! import chains never prepend. After this, evaluation cannot fail.
//!
//! The compiler does not stop at the first problem: it reports every one it
//! can find, each with `file:line:col: field: reason`.

use std::collections::hash_map::Entry;
use std::collections::{BTreeMap, HashMap};
use std::ops::Range;
use std::sync::Arc;

use toml::Spanned;

use crate::core::attrs::{AttrValue, ExtraAttr};
use crate::core::community::Community;
use crate::core::ids::{AgentId, Asn, NodeId};
use crate::core::prefix::Prefix;

use super::config::{
    AnyAllCfg, AsnCfg, DefaultCfg, FileCfg, ListOrSet, MatchCfg, PeerKindCfg, PolicyCfg, RangeCfg,
    SetItems, ThenCfg, VerdictCfg,
};
use super::error::{ErrorKind, PolicyLoadError, Reporter, SetKind};
use super::model::{
    Actions, AsnSet, Assignment, Chain, CommunitySet, Cond, Disposition, MAX_PREPEND, Policy,
    PolicySet, PrefixSet, Statement, TagSet,
};
use super::{StatementLabel, Verdict};

/// Caps on compiled regex size, so a hostile or careless pattern cannot eat
/// memory at load time or make matching slow.
const REGEX_SIZE_LIMIT: usize = 1 << 20;
const REGEX_DFA_SIZE_LIMIT: usize = 1 << 20;

/// Longest capability tag, policy, statement or extra-attribute name.
const MAX_NAME_LEN: usize = 128;

impl PolicySet {
    /// Parses and compiles a policy file. `file_name` only labels error
    /// messages (`policy.toml:12:3: ...`).
    pub fn from_toml_str(text: &str, file_name: &str) -> Result<PolicySet, PolicyLoadError> {
        let cfg = parse(text, file_name)?;
        let mut c = Compiler {
            rep: Reporter::new(file_name, text),
            sets: Sets::default(),
        };
        let set = c.compile(&cfg);
        if c.rep.has_errors() {
            return Err(PolicyLoadError::Invalid(c.rep.finish()));
        }
        Ok(set)
    }
}

fn parse(text: &str, file_name: &str) -> Result<FileCfg, PolicyLoadError> {
    let de = toml::Deserializer::new(text);
    serde_path_to_error::deserialize::<_, FileCfg>(de).map_err(|e| {
        let field = field_path(e.path());
        let inner = e.into_inner();
        let span = inner.span().unwrap_or(0..0);
        let mut rep = Reporter::new(file_name, text);
        // Keep one diagnostic per line: TOML messages may span several.
        let message: Vec<&str> = inner
            .message()
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .collect();
        rep.report(&span, field, ErrorKind::Toml(message.join("; ")));
        PolicyLoadError::Invalid(rep.finish())
    })
}

/// `policy[0].statement[1].then`, in the same shape the compiler uses.
fn field_path(path: &serde_path_to_error::Path) -> String {
    use serde_path_to_error::Segment;
    let mut out = String::new();
    for seg in path.iter() {
        match seg {
            Segment::Seq { index } => out.push_str(&format!("[{index}]")),
            // `Spanned` is a struct with private keys inside; not the user's.
            Segment::Map { key } if key.starts_with("$__") => {}
            Segment::Map { key } | Segment::Enum { variant: key } => {
                if !out.is_empty() {
                    out.push('.');
                }
                out.push_str(key);
            }
            Segment::Unknown => {}
        }
    }
    out
}

/// Named sets, compiled once and shared by every condition that names them.
#[derive(Default)]
struct Sets {
    prefixes: HashMap<String, Arc<PrefixSet>>,
    asns: HashMap<String, Arc<AsnSet>>,
    communities: HashMap<String, Arc<CommunitySet>>,
    capabilities: HashMap<String, Arc<TagSet>>,
}

impl Sets {
    /// The kind of set, if any, that has this name (for error hints).
    fn kind_holding(&self, name: &str) -> Option<SetKind> {
        if self.prefixes.contains_key(name) {
            Some(SetKind::Prefixes)
        } else if self.asns.contains_key(name) {
            Some(SetKind::Asns)
        } else if self.communities.contains_key(name) {
            Some(SetKind::Communities)
        } else if self.capabilities.contains_key(name) {
            Some(SetKind::Capabilities)
        } else {
            None
        }
    }
}

/// A kind of named set: how its entries are written, parsed and compiled,
/// and where the compiler keeps the named ones.
trait NamedSet: Sized {
    /// An entry as written in the file.
    type Item;
    /// An entry once checked.
    type Value;
    const KIND: SetKind;
    fn parse(item: &Self::Item) -> Result<Self::Value, ErrorKind>;
    fn build(values: Vec<Self::Value>) -> Self;
    fn named(sets: &Sets) -> &HashMap<String, Arc<Self>>;
    fn named_mut(sets: &mut Sets) -> &mut HashMap<String, Arc<Self>>;
}

impl NamedSet for PrefixSet {
    type Item = String;
    type Value = Prefix;
    const KIND: SetKind = SetKind::Prefixes;
    fn parse(item: &String) -> Result<Prefix, ErrorKind> {
        parse_prefix(item)
    }
    fn build(values: Vec<Prefix>) -> Self {
        PrefixSet::new(values)
    }
    fn named(sets: &Sets) -> &HashMap<String, Arc<Self>> {
        &sets.prefixes
    }
    fn named_mut(sets: &mut Sets) -> &mut HashMap<String, Arc<Self>> {
        &mut sets.prefixes
    }
}

impl NamedSet for AsnSet {
    type Item = AsnCfg;
    type Value = (u32, u32);
    const KIND: SetKind = SetKind::Asns;
    fn parse(item: &AsnCfg) -> Result<(u32, u32), ErrorKind> {
        parse_asn_or_range(item)
    }
    fn build(values: Vec<(u32, u32)>) -> Self {
        AsnSet::new(values)
    }
    fn named(sets: &Sets) -> &HashMap<String, Arc<Self>> {
        &sets.asns
    }
    fn named_mut(sets: &mut Sets) -> &mut HashMap<String, Arc<Self>> {
        &mut sets.asns
    }
}

impl NamedSet for CommunitySet {
    type Item = String;
    type Value = Community;
    const KIND: SetKind = SetKind::Communities;
    fn parse(item: &String) -> Result<Community, ErrorKind> {
        parse_community(item)
    }
    fn build(values: Vec<Community>) -> Self {
        CommunitySet::new(values)
    }
    fn named(sets: &Sets) -> &HashMap<String, Arc<Self>> {
        &sets.communities
    }
    fn named_mut(sets: &mut Sets) -> &mut HashMap<String, Arc<Self>> {
        &mut sets.communities
    }
}

impl NamedSet for TagSet {
    type Item = String;
    type Value = Arc<str>;
    const KIND: SetKind = SetKind::Capabilities;
    fn parse(item: &String) -> Result<Arc<str>, ErrorKind> {
        parse_capability(item)
    }
    fn build(values: Vec<Arc<str>>) -> Self {
        TagSet::new(values)
    }
    fn named(sets: &Sets) -> &HashMap<String, Arc<Self>> {
        &sets.capabilities
    }
    fn named_mut(sets: &mut Sets) -> &mut HashMap<String, Arc<Self>> {
        &mut sets.capabilities
    }
}

/// What the compiler remembers about a policy for the `[[apply]]` checks.
struct PolicyInfo {
    policy: Arc<Policy>,
    /// Where the first `prepend` action is, if any.
    prepend_at: Option<Range<usize>>,
}

struct Compiler<'a> {
    rep: Reporter<'a>,
    sets: Sets,
}

impl Compiler<'_> {
    fn compile(&mut self, cfg: &FileCfg) -> PolicySet {
        self.compile_sets(cfg);
        let infos = self.compile_policies(&cfg.policy);
        let mut set = PolicySet::default();
        self.compile_applies(cfg, &infos, &mut set);
        // File order, for listings; names were checked unique above.
        let mut ordered: Vec<(usize, Arc<Policy>)> = infos
            .into_values()
            .map(|(i, info)| (i, info.policy))
            .collect();
        ordered.sort_by_key(|(i, _)| *i);
        set.policies = ordered.into_iter().map(|(_, p)| p).collect();
        set
    }

    // ---- sets ----

    fn compile_sets(&mut self, cfg: &FileCfg) {
        let s = &cfg.sets;
        self.define::<PrefixSet>(&s.prefixes);
        self.define::<AsnSet>(&s.asns);
        self.define::<CommunitySet>(&s.communities);
        self.define::<TagSet>(&s.capabilities);
    }

    /// Compiles the `[sets.<kind>]` table of one kind.
    fn define<S: NamedSet>(&mut self, table: &BTreeMap<String, SetItems<S::Item>>) {
        for (name, items) in table {
            let field = format!("sets.{}.{name}", S::KIND.table());
            if let Some(v) = self.items(items, &field, S::parse) {
                S::named_mut(&mut self.sets).insert(name.clone(), Arc::new(S::build(v)));
            }
        }
    }

    /// Parses every item, reporting each bad one; `None` if any was bad.
    fn items<I, T>(
        &mut self,
        items: &SetItems<I>,
        field: &str,
        parse: impl Fn(&I) -> Result<T, ErrorKind>,
    ) -> Option<Vec<T>> {
        let mut out = Vec::with_capacity(items.len());
        let mut ok = true;
        for (i, item) in items.iter().enumerate() {
            match parse(item.get_ref()) {
                Ok(v) => out.push(v),
                Err(kind) => {
                    self.rep.report(&item.span(), format!("{field}[{i}]"), kind);
                    ok = false;
                }
            }
        }
        ok.then_some(out)
    }

    /// Resolves an inline list or a set name. Inline lists in match
    /// conditions must not be empty; in actions they may (`set = []`).
    fn resolve<S: NamedSet>(
        &mut self,
        v: &Spanned<ListOrSet<S::Item>>,
        field: &str,
        in_match: bool,
    ) -> Option<Arc<S>> {
        match v.get_ref() {
            ListOrSet::Set(name) => {
                let found = S::named(&self.sets).get(name).cloned();
                if found.is_none() {
                    let known = Some(match self.sets.kind_holding(name) {
                        Some(k) => format!("[sets.{}] has a set of that name", k.table()),
                        None => format!(
                            "define it under [sets.{}], or write an inline list: [{name:?}]",
                            S::KIND.table()
                        ),
                    });
                    self.rep.report(
                        &v.span(),
                        field,
                        ErrorKind::UnknownSet {
                            kind: S::KIND,
                            name: name.clone(),
                            known,
                        },
                    );
                }
                found
            }
            ListOrSet::List(items) => {
                if in_match && items.is_empty() {
                    self.rep.report(&v.span(), field, ErrorKind::EmptyList);
                    return None;
                }
                self.items(items, field, S::parse)
                    .map(|v| Arc::new(S::build(v)))
            }
        }
    }

    // ---- policies ----

    /// Compiles every policy; returns them by name with their file index.
    fn compile_policies(&mut self, cfgs: &[PolicyCfg]) -> HashMap<String, (usize, PolicyInfo)> {
        let mut out: HashMap<String, (usize, PolicyInfo)> = HashMap::new();
        let mut first_line: HashMap<String, usize> = HashMap::new();
        for (i, p) in cfgs.iter().enumerate() {
            let field = format!("policy[{i}]");
            let name = p.name.get_ref();
            self.check_name(&p.name, &format!("{field}.name"));
            // A duplicate is still compiled, so its own mistakes show too.
            let info = self.compile_policy(p, &field);
            match first_line.entry(name.clone()) {
                Entry::Occupied(e) => {
                    self.rep.report(
                        &p.name.span(),
                        format!("{field}.name"),
                        ErrorKind::Duplicate {
                            what: "policy",
                            name: name.clone(),
                            first_line: *e.get(),
                        },
                    );
                }
                Entry::Vacant(e) => {
                    e.insert(self.rep.line_of(&p.name.span()));
                    out.insert(name.clone(), (i, info));
                }
            }
        }
        out
    }

    fn compile_policy(&mut self, p: &PolicyCfg, field: &str) -> PolicyInfo {
        let name: Arc<str> = p.name.get_ref().as_str().into();
        let mut statements = Vec::with_capacity(p.statement.len());
        let mut seen: HashMap<&str, usize> = HashMap::new();
        let mut prepend_at = None;
        for (j, s) in p.statement.iter().enumerate() {
            let sfield = format!("{field}.statement[{j}]");
            self.check_name(&s.name, &format!("{sfield}.name"));
            let sname = s.name.get_ref().as_str();
            if let Some(first) = seen.get(sname) {
                self.rep.report(
                    &s.name.span(),
                    format!("{sfield}.name"),
                    ErrorKind::Duplicate {
                        what: "statement",
                        name: sname.to_owned(),
                        first_line: *first,
                    },
                );
            } else {
                seen.insert(sname, self.rep.line_of(&s.name.span()));
            }
            let mut conds = Vec::new();
            self.compile_match(&s.matches, &format!("{sfield}.match"), &mut conds);
            let (actions, disposition) = self.compile_then(&s.then, &format!("{sfield}.then"));
            if prepend_at.is_none() {
                prepend_at = s.then.prepend.as_ref().map(|p| p.span());
            }
            statements.push(Statement {
                label: Arc::new(StatementLabel {
                    policy: name.to_string(),
                    statement: sname.to_owned(),
                }),
                conds: conds.into_boxed_slice(),
                has_actions: !actions.is_empty(),
                actions,
                disposition,
            });
        }
        PolicyInfo {
            policy: Arc::new(Policy {
                name,
                statements: statements.into_boxed_slice(),
            }),
            prepend_at,
        }
    }

    fn check_name(&mut self, name: &Spanned<String>, field: &str) {
        let n = name.get_ref();
        let why = if n.trim().is_empty() {
            Some("names must not be empty")
        } else if n.len() > MAX_NAME_LEN {
            Some("names are at most 128 bytes")
        } else if n.chars().any(char::is_control) {
            Some("names must not contain control characters")
        } else {
            None
        };
        if let Some(why) = why {
            self.rep
                .report(&name.span(), field, ErrorKind::Name(n.clone(), why));
        }
    }

    /// Appends the conditions of `m` to `out`, cheapest first.
    fn compile_match(&mut self, m: &MatchCfg, field: &str, out: &mut Vec<Cond>) {
        if let Some(p) = &m.prefix {
            if let Some(v) = &p.exact
                && let Some(s) =
                    self.resolve::<PrefixSet>(v, &format!("{field}.prefix.exact"), true)
            {
                out.push(Cond::PrefixExact(s));
            }
            if let Some(v) = &p.covered_by
                && let Some(s) =
                    self.resolve::<PrefixSet>(v, &format!("{field}.prefix.covered-by"), true)
            {
                out.push(Cond::PrefixCoveredBy(s));
            }
        }
        if let Some(a) = &m.as_path {
            let f = format!("{field}.as-path");
            if let Some(v) = &a.from
                && let Some(s) = self.resolve::<AsnSet>(v, &format!("{f}.from"), true)
            {
                out.push(Cond::OriginIn(s));
            }
            if let Some(v) = &a.not_from
                && let Some(s) = self.resolve::<AsnSet>(v, &format!("{f}.not-from"), true)
            {
                out.push(Cond::OriginNotIn(s));
            }
            if let Some(v) = &a.contains_any
                && let Some(s) = self.resolve::<AsnSet>(v, &format!("{f}.contains-any"), true)
            {
                out.push(Cond::PathContainsAny(s));
            }
            if let Some(v) = &a.contains_all
                && let Some(s) = self.resolve::<AsnSet>(v, &format!("{f}.contains-all"), true)
            {
                if s.has_ranges() {
                    self.rep.report(
                        &v.span(),
                        format!("{f}.contains-all"),
                        ErrorKind::Asn(
                            "contains-all takes single AS numbers, not ranges (a path holds only a few ASes)"
                                .into(),
                        ),
                    );
                } else {
                    out.push(Cond::PathContainsAll(s));
                }
            }
            if a.min_length.is_some() || a.max_length.is_some() {
                let range = RangeCfg {
                    min: a.min_length.clone(),
                    max: a.max_length.clone(),
                };
                if let Some((min, max)) = self.range(&range, &format!("{f}.min-length")) {
                    out.push(Cond::PathLen { min, max });
                }
            }
            if let Some(re) = &a.regex {
                match compile_path_regex(re.get_ref()) {
                    Ok(r) => out.push(Cond::PathRegex(r)),
                    Err(kind) => self.rep.report(&re.span(), format!("{f}.regex"), kind),
                }
            }
        }
        if let Some(c) = &m.capabilities {
            self.any_all(c, &format!("{field}.capabilities"), out, |me, v, f| {
                me.resolve::<TagSet>(v, f, true)
                    .map(|s| (Cond::CapabilitiesAny(s.clone()), Cond::CapabilitiesAll(s)))
            });
        }
        if let Some(c) = &m.communities {
            self.any_all(c, &format!("{field}.communities"), out, |me, v, f| {
                me.resolve::<CommunitySet>(v, f, true)
                    .map(|s| (Cond::CommunitiesAny(s.clone()), Cond::CommunitiesAll(s)))
            });
        }
        if let Some(n) = &m.neighbor {
            let f = format!("{field}.neighbor");
            if let Some(v) = &n.asn
                && let Some(s) = self.resolve::<AsnSet>(v, &format!("{f}.asn"), true)
            {
                out.push(Cond::PeerAsn(s));
            }
            if let Some(v) = &n.node {
                let nf = format!("{f}.node");
                if v.get_ref().is_empty() {
                    self.rep.report(&v.span(), nf, ErrorKind::EmptyList);
                } else if let Some(nodes) = self.items(v.get_ref(), &nf, |s: &String| parse_node(s))
                {
                    out.push(Cond::PeerNode(nodes.into_boxed_slice()));
                }
            }
            if let Some(k) = n.kind {
                out.push(Cond::PeerInternal(matches!(k, PeerKindCfg::Internal)));
            }
        }
        if let Some(r) = &m.med
            && let Some((min, max)) = self.range(r, &format!("{field}.med.min"))
        {
            out.push(Cond::Med { min, max });
        }
        if let Some(r) = &m.local_pref
            && let Some((min, max)) = self.range(r, &format!("{field}.local-pref.min"))
        {
            out.push(Cond::LocalPref { min, max });
        }
        if let Some(a) = &m.agent {
            let f = format!("{field}.agent");
            if let Some(v) = &a.id {
                let idf = format!("{f}.id");
                if v.get_ref().is_empty() {
                    self.rep.report(&v.span(), idf, ErrorKind::EmptyList);
                } else if let Some(ids) =
                    self.items(v.get_ref(), &idf, |s: &String| parse_agent_id(s))
                {
                    out.push(Cond::AgentIs(ids.into_boxed_slice()));
                }
            }
            if let Some(v) = &a.glob {
                let gf = format!("{f}.glob");
                if v.get_ref().is_empty() {
                    self.rep.report(&v.span(), gf, ErrorKind::EmptyList);
                } else if let Some(re) = self.globs(v.get_ref(), &gf) {
                    out.push(Cond::AgentGlob(re));
                }
            }
        }
        if let Some(n) = &m.not {
            let nf = format!("{field}.not");
            let errors_before = self.rep.error_count();
            let mut inner = Vec::new();
            self.compile_match(n.get_ref(), &nf, &mut inner);
            if !inner.is_empty() {
                out.push(Cond::Not(inner.into_boxed_slice()));
            } else if self.rep.error_count() == errors_before {
                // Empty but not because of errors already reported: `not {}`
                // (or only empty sub-tables) would silently never match.
                self.rep.report(&n.span(), nf, ErrorKind::EmptyNot);
            }
        }
        out.sort_by_key(Cond::cost);
    }

    fn any_all(
        &mut self,
        c: &AnyAllCfg,
        field: &str,
        out: &mut Vec<Cond>,
        resolve: impl Fn(&mut Self, &Spanned<ListOrSet<String>>, &str) -> Option<(Cond, Cond)>,
    ) {
        if let Some(v) = &c.any
            && let Some((any, _)) = resolve(self, v, &format!("{field}.any"))
        {
            out.push(any);
        }
        if let Some(v) = &c.all
            && let Some((_, all)) = resolve(self, v, &format!("{field}.all"))
        {
            out.push(all);
        }
    }

    /// An inclusive range with open ends; reports `min > max` at `min_field`.
    fn range(&mut self, r: &RangeCfg, min_field: &str) -> Option<(u32, u32)> {
        let min = r.min.as_ref().map_or(0, |m| *m.get_ref());
        let max = r.max.as_ref().map_or(u32::MAX, |m| *m.get_ref());
        if min > max {
            let span = r.min.as_ref().map_or(0..0, |m| m.span());
            self.rep.report(
                &span,
                min_field,
                ErrorKind::EmptyRange {
                    min: min.into(),
                    max: max.into(),
                },
            );
            return None;
        }
        Some((min, max))
    }

    fn globs(&mut self, globs: &[Spanned<String>], field: &str) -> Option<regex::Regex> {
        let mut alternatives = Vec::with_capacity(globs.len());
        let mut ok = true;
        for (i, g) in globs.iter().enumerate() {
            if g.get_ref().is_empty() {
                self.rep.report(
                    &g.span(),
                    format!("{field}[{i}]"),
                    ErrorKind::Glob {
                        glob: String::new(),
                        reason: "empty glob".into(),
                    },
                );
                ok = false;
                continue;
            }
            alternatives.push(glob_to_regex(g.get_ref()));
        }
        if !ok {
            return None;
        }
        let pattern = format!("(?s)^(?:{})$", alternatives.join("|"));
        match regex::RegexBuilder::new(&pattern)
            .size_limit(REGEX_SIZE_LIMIT)
            .dfa_size_limit(REGEX_DFA_SIZE_LIMIT)
            .build()
        {
            Ok(r) => Some(r),
            Err(e) => {
                // Globs translate to valid regexes, so only size limits land here.
                let span = globs.first().map_or(0..0, |g| g.span());
                let glob = globs
                    .iter()
                    .map(|g| g.get_ref().as_str())
                    .collect::<Vec<_>>()
                    .join(", ");
                self.rep.report(
                    &span,
                    field,
                    ErrorKind::Glob {
                        glob,
                        reason: regex_reason(&e),
                    },
                );
                None
            }
        }
    }

    fn compile_then(&mut self, t: &ThenCfg, field: &str) -> (Actions, Disposition) {
        let mut act = Actions {
            local_pref: t.local_pref,
            med: t.med,
            ..Actions::default()
        };
        if let Some(c) = &t.communities {
            let f = format!("{field}.communities");
            if let Some(v) = &c.set {
                act.communities_set = self.resolve::<CommunitySet>(v, &format!("{f}.set"), false);
            }
            if let Some(v) = &c.remove {
                let rf = format!("{f}.remove");
                act.communities_remove = self.resolve::<CommunitySet>(v, &rf, false);
                let well_known: Vec<String> = act
                    .communities_remove
                    .iter()
                    .flat_map(|s| s.as_slice())
                    .filter(|c| c.is_well_known())
                    .map(Community::to_string)
                    .collect();
                for wk in well_known {
                    self.rep
                        .report(&v.span(), rf.clone(), ErrorKind::RemoveWellKnown(wk));
                }
            }
            if let Some(v) = &c.add {
                act.communities_add = self.resolve::<CommunitySet>(v, &format!("{f}.add"), false);
            }
        }
        if let Some(p) = &t.prepend {
            let n = *p.get_ref();
            if (1..=MAX_PREPEND).contains(&n) {
                act.prepend = n;
            } else {
                self.rep.report(
                    &p.span(),
                    format!("{field}.prepend"),
                    ErrorKind::PrependRange(n),
                );
            }
        }
        if let Some(extra) = &t.extra {
            let mut out = Vec::with_capacity(extra.len());
            for (key, value) in extra {
                let f = format!("{field}.extra.{key}");
                if let Err(why) = check_extra_name(key) {
                    self.rep
                        .report(&value.span(), f.clone(), ErrorKind::Name(key.clone(), why));
                    continue;
                }
                match extra_value(value.get_ref()) {
                    Ok(v) => out.push((
                        Arc::<str>::from(key.as_str()),
                        // Policy-set extras are this AS's own annotations:
                        // they stop at the AS border.
                        ExtraAttr {
                            transitive: false,
                            value: v,
                        },
                    )),
                    Err(kind) => self.rep.report(&value.span(), f, kind),
                }
            }
            act.extra = out.into_boxed_slice();
        }
        let disposition = match t.verdict {
            VerdictCfg::Accept => Disposition::Accept,
            VerdictCfg::Reject => Disposition::Reject,
            VerdictCfg::Next => Disposition::Next,
        };
        (act, disposition)
    }

    // ---- assignments ----

    fn compile_applies(
        &mut self,
        cfg: &FileCfg,
        infos: &HashMap<String, (usize, PolicyInfo)>,
        set: &mut PolicySet,
    ) {
        // Selector text -> first apply index, to refuse overlaps.
        let mut taken: HashMap<Selector, usize> = HashMap::new();
        for (i, a) in cfg.apply.iter().enumerate() {
            let field = format!("apply[{i}]");
            if a.neighbors.get_ref().is_empty() {
                self.rep.report(
                    &a.neighbors.span(),
                    format!("{field}.neighbors"),
                    ErrorKind::NoNeighbors,
                );
            }
            for (j, sel) in a.neighbors.get_ref().iter().enumerate() {
                let sf = format!("{field}.neighbors[{j}]");
                let parsed = match parse_selector(sel.get_ref()) {
                    Ok(s) => s,
                    Err(kind) => {
                        self.rep.report(&sel.span(), sf, kind);
                        continue;
                    }
                };
                match taken.entry(parsed) {
                    Entry::Occupied(e) => {
                        self.rep.report(
                            &sel.span(),
                            sf,
                            ErrorKind::SelectorTaken {
                                selector: sel.get_ref().clone(),
                                first: *e.get(),
                            },
                        );
                    }
                    Entry::Vacant(e) => {
                        e.insert(i);
                        match parsed {
                            Selector::All => set.all = Some(i),
                            Selector::Internal => set.internal = Some(i),
                            Selector::External => set.external = Some(i),
                            Selector::Asn(asn) => {
                                set.by_asn.insert(asn, i);
                            }
                            Selector::Node(node) => {
                                set.by_node.insert(node, i);
                            }
                        }
                    }
                }
            }
            let import = self.chain(&a.import, &format!("{field}.import"), infos, true);
            let export = self.chain(&a.export, &format!("{field}.export"), infos, false);
            set.assignments.push(Assignment {
                import: Chain {
                    policies: import.into(),
                    default: a.default_import.map(default_verdict),
                },
                export: Chain {
                    policies: export.into(),
                    default: a.default_export.map(default_verdict),
                },
            });
        }
    }

    fn chain(
        &mut self,
        names: &[Spanned<String>],
        field: &str,
        infos: &HashMap<String, (usize, PolicyInfo)>,
        import: bool,
    ) -> Vec<Arc<Policy>> {
        let mut out = Vec::with_capacity(names.len());
        let mut seen: HashMap<&str, usize> = HashMap::new();
        for (k, n) in names.iter().enumerate() {
            let f = format!("{field}[{k}]");
            let name = n.get_ref().as_str();
            if let Some(first) = seen.get(name) {
                self.rep.report(
                    &n.span(),
                    f,
                    ErrorKind::Duplicate {
                        what: "policy in this chain",
                        name: name.to_owned(),
                        first_line: *first,
                    },
                );
                continue;
            }
            seen.insert(name, self.rep.line_of(&n.span()));
            let Some((_, info)) = infos.get(name) else {
                self.rep
                    .report(&n.span(), f, ErrorKind::UnknownPolicy(name.to_owned()));
                continue;
            };
            if import && let Some(at) = &info.prepend_at {
                let prepend_line = self.rep.line_of(at);
                self.rep.report(
                    &n.span(),
                    f,
                    ErrorKind::PrependOnImport {
                        policy: name.to_owned(),
                        prepend_line,
                    },
                );
                continue;
            }
            out.push(info.policy.clone());
        }
        out
    }
}

/// Who an `[[apply]]` is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Selector {
    All,
    Internal,
    External,
    Asn(Asn),
    Node(NodeId),
}

fn parse_selector(s: &str) -> Result<Selector, ErrorKind> {
    match s {
        "*" => return Ok(Selector::All),
        "internal" => return Ok(Selector::Internal),
        "external" => return Ok(Selector::External),
        _ => {}
    }
    if let Some(hex) = s.strip_prefix("node:") {
        return hex
            .parse::<NodeId>()
            .map(Selector::Node)
            .map_err(|_| ErrorKind::NodeId(hex.to_owned()));
    }
    match s.parse::<Asn>() {
        Ok(a) if a.0 != 0 => Ok(Selector::Asn(a)),
        _ => Err(ErrorKind::Selector(s.to_owned())),
    }
}

fn default_verdict(d: DefaultCfg) -> Verdict {
    match d {
        DefaultCfg::Accept => Verdict::Accept,
        DefaultCfg::Reject => Verdict::Reject,
    }
}

fn parse_prefix(s: &str) -> Result<Prefix, ErrorKind> {
    Prefix::new(s).map_err(|source| ErrorKind::Prefix {
        text: s.to_owned(),
        source,
    })
}

fn parse_community(s: &str) -> Result<Community, ErrorKind> {
    s.parse::<Community>().map_err(ErrorKind::Community)
}

/// An AS number, or an inclusive range written `"64512-65534"` (also
/// `"AS64512-AS65534"`), as `(first, last)`.
fn parse_asn_or_range(a: &AsnCfg) -> Result<(u32, u32), ErrorKind> {
    if let AsnCfg::Text(t) = a
        && let Some((lo, hi)) = t.split_once('-')
    {
        let lo = parse_asn(&AsnCfg::Text(lo.trim().to_string()))?;
        let hi = parse_asn(&AsnCfg::Text(hi.trim().to_string()))?;
        if lo > hi {
            return Err(ErrorKind::Asn(format!(
                "range {t:?} is empty: its first ASN is greater than its last"
            )));
        }
        return Ok((lo.0, hi.0));
    }
    parse_asn(a).map(|x| (x.0, x.0))
}

fn parse_asn(a: &AsnCfg) -> Result<Asn, ErrorKind> {
    let asn = match a {
        AsnCfg::Number(n) => u32::try_from(*n)
            .map(Asn)
            .map_err(|_| ErrorKind::Asn(format!("{n} is out of range 1..=4294967295")))?,
        AsnCfg::Text(t) => t.parse::<Asn>().map_err(ErrorKind::Asn)?,
    };
    if asn.0 == 0 {
        return Err(ErrorKind::Asn("AS 0 is reserved (RFC 7607)".into()));
    }
    Ok(asn)
}

fn parse_capability(s: &str) -> Result<Arc<str>, ErrorKind> {
    let ok = !s.is_empty()
        && s.len() <= MAX_NAME_LEN
        && !s.chars().any(|c| c.is_whitespace() || c.is_control());
    if ok {
        Ok(s.into())
    } else {
        Err(ErrorKind::Capability(s.to_owned()))
    }
}

fn parse_node(s: &str) -> Result<NodeId, ErrorKind> {
    let hex = s.strip_prefix("node:").unwrap_or(s);
    hex.parse::<NodeId>()
        .map_err(|_| ErrorKind::NodeId(s.to_owned()))
}

fn parse_agent_id(s: &str) -> Result<AgentId, ErrorKind> {
    if s.is_empty() {
        return Err(ErrorKind::Name(s.to_owned(), "agent ids must not be empty"));
    }
    Ok(AgentId::new(s))
}

fn check_extra_name(key: &str) -> Result<(), &'static str> {
    let ok = !key.is_empty()
        && key.len() <= 64
        && key
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "-_.".contains(c));
    if ok {
        Ok(())
    } else {
        Err("extra attribute names are words of [a-z0-9._-], at most 64 bytes")
    }
}

fn extra_value(v: &toml::Value) -> Result<AttrValue, ErrorKind> {
    match v {
        toml::Value::Boolean(b) => Ok(AttrValue::Bool(*b)),
        toml::Value::Integer(i) => Ok(AttrValue::Int(*i)),
        toml::Value::String(s) => Ok(AttrValue::Text(s.as_str().into())),
        toml::Value::Float(_) => Err(ErrorKind::ExtraValue("a float")),
        toml::Value::Datetime(_) => Err(ErrorKind::ExtraValue("a date-time")),
        toml::Value::Array(_) => Err(ErrorKind::ExtraValue("an array")),
        toml::Value::Table(_) => Err(ErrorKind::ExtraValue("a table")),
    }
}

fn compile_path_regex(pattern: &str) -> Result<regex::bytes::Regex, ErrorKind> {
    regex::bytes::RegexBuilder::new(pattern)
        .size_limit(REGEX_SIZE_LIMIT)
        .dfa_size_limit(REGEX_DFA_SIZE_LIMIT)
        .build()
        .map_err(|e| ErrorKind::Regex {
            pattern: pattern.to_owned(),
            reason: regex_reason(&e),
        })
}

/// The one-line reason from a regex error, without the multi-line caret
/// diagram that would not fit a `file:line:col:` message.
fn regex_reason(e: &regex::Error) -> String {
    match e {
        regex::Error::Syntax(s) => s
            .lines()
            .rev()
            .find_map(|l| l.strip_prefix("error: "))
            .unwrap_or(s)
            .trim()
            .to_owned(),
        regex::Error::CompiledTooBig(limit) => {
            format!("the compiled pattern exceeds the size limit of {limit} bytes")
        }
        other => other.to_string(),
    }
}

/// `*` is any run of characters, `?` any one character; the rest is literal.
fn glob_to_regex(glob: &str) -> String {
    let mut out = String::with_capacity(glob.len() + 8);
    let mut literal = String::new();
    for ch in glob.chars() {
        if ch == '*' || ch == '?' {
            out.push_str(&regex::escape(&literal));
            literal.clear();
            out.push_str(if ch == '*' { ".*" } else { "." });
        } else {
            literal.push(ch);
        }
    }
    out.push_str(&regex::escape(&literal));
    out
}
