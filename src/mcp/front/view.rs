//! Front views: what one front endpoint offers.
//!
//! Besides `/mcp`, `[[mcp.views]]` entries in node.toml add endpoints
//! `/mcp/<name>`, each with its own bearer token and a filter over the
//! routed tools, prompts, resources and templates:
//!
//! ```toml
//! [[mcp.views]]
//! name = "finance"                  # /mcp/finance; [a-z0-9_-], at most 64
//! prefixes = ["finance/*"]          # route prefixes it covers (any of them)
//! communities = ["internal"]        # routes carrying one of these
//! origin_asns = [65010, "own"]      # routes originated by one of these ASes
//! token_file = "mcp-finance.token"  # default mcp-<name>.token, made 0600
//! mode = "discovery"                # or "full" (the default)
//! pinned = ["get_quote"]            # listed in discovery mode
//! ```
//!
//! A route is in a view when every list that is set has a match (a prefix
//! of the view covers the route's prefix, the route carries one of the
//! communities, its origin AS is one of the ASes); a view that sets none
//! has everything. The filter applies to every list and every lookup the
//! endpoint makes, so a name outside the view is unknown there.
//!
//! [`FrontMode::Discovery`]: `tools/list` shows the meta tools and the
//! pinned tools only, and `find_agents` searches the rest (at most
//! [`FIND_TOOLS_LIMIT`] tools per answer); every tool of the view can still
//! be called by its front name.
//!
//! The configuration form ([`ViewConfig`]) is compiled once into a
//! [`View`] (errors name the key), like `core::access`.

use std::collections::{BTreeSet, HashSet};
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use super::table::{FrontItem, FrontTool, RoutedItem, RoutedTool, ToolTable};
use crate::core::access::AsnSpec;
use crate::core::community::Community;
use crate::core::ids::Asn;
use crate::core::prefix::Prefix;
use crate::mcp::catalog::is_valid_front_name;
use crate::mcp::items::ItemKind;

/// At most this many `[[mcp.views]]`.
pub const MAX_VIEWS: usize = 64;
/// A view's name is at most this long.
pub const MAX_VIEW_NAME_LEN: usize = 64;
/// At most this many entries in each of a view's lists (`prefixes`,
/// `communities`, `origin_asns`, `pinned`).
pub const MAX_VIEW_LIST: usize = 256;
/// `find_agents` returns at most this many tools (and says when it cut).
pub const FIND_TOOLS_LIMIT: usize = 50;
/// A `find_agents` query is at most this long.
pub const MAX_QUERY_LEN: usize = 256;

/// What `tools/list` of an endpoint shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum FrontMode {
    /// The meta tools and every routed tool of the view.
    #[default]
    Full,
    /// The meta tools and the pinned tools; `find_agents` finds the rest.
    Discovery,
}

impl FrontMode {
    pub fn as_str(self) -> &'static str {
        match self {
            FrontMode::Full => "full",
            FrontMode::Discovery => "discovery",
        }
    }
}

/// One `[[mcp.views]]` entry as written in node.toml.
#[derive(Debug, Clone, PartialEq, Eq, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ViewConfig {
    pub name: String,
    #[serde(default)]
    pub prefixes: Vec<String>,
    #[serde(default)]
    pub communities: Vec<String>,
    #[serde(default, alias = "origin-asns")]
    pub origin_asns: Vec<AsnSpec>,
    /// The view's bearer token; default `mcp-<name>.token` beside
    /// node.toml, created (0600) at the first start that finds none.
    #[serde(default, alias = "token-file")]
    pub token_file: Option<PathBuf>,
    #[serde(default)]
    pub mode: FrontMode,
    #[serde(default)]
    pub pinned: Vec<String>,
}

impl ViewConfig {
    /// The token file as configured, or the default name.
    pub fn token_file(&self) -> PathBuf {
        self.token_file
            .clone()
            .unwrap_or_else(|| PathBuf::from(format!("mcp-{}.token", self.name)))
    }
}

/// Which routes a view has.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ViewFilter {
    prefixes: Vec<Prefix>,
    communities: Vec<Community>,
    origins: Vec<Asn>,
}

impl ViewFilter {
    /// Everything (the default `/mcp`).
    pub fn all() -> ViewFilter {
        ViewFilter::default()
    }

    /// A filter from its parts (empty lists: no condition).
    pub fn new(prefixes: Vec<Prefix>, communities: Vec<Community>, origins: Vec<Asn>) -> Self {
        ViewFilter {
            prefixes,
            communities,
            origins,
        }
    }

    /// The filter has no condition.
    pub fn is_all(&self) -> bool {
        self.prefixes.is_empty() && self.communities.is_empty() && self.origins.is_empty()
    }

    /// Is a route with these attributes in the view?
    pub fn admits(&self, prefix: &Prefix, communities: &[Community], origin: Asn) -> bool {
        (self.prefixes.is_empty() || self.prefixes.iter().any(|p| p.covers(prefix)))
            && (self.communities.is_empty()
                || self.communities.iter().any(|c| communities.contains(c)))
            && (self.origins.is_empty() || self.origins.contains(&origin))
    }

    pub fn admits_tool(&self, t: &RoutedTool) -> bool {
        self.admits(&t.prefix, &t.communities, t.origin_asn)
    }

    pub fn admits_item(&self, i: &RoutedItem) -> bool {
        self.admits(&i.prefix, &i.communities, i.origin_asn)
    }
}

/// One endpoint: `/mcp` (no name) or `/mcp/<name>`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct View {
    pub name: Option<String>,
    pub filter: ViewFilter,
    pub mode: FrontMode,
    pub pinned: BTreeSet<String>,
}

/// A problem in a view's configuration: the key under the view and what
/// is wrong.
pub type ViewProblem = (String, String);

impl View {
    /// The default endpoint `/mcp`: everything, in `mode`.
    pub fn everything(mode: FrontMode, pinned: &[String]) -> View {
        View {
            name: None,
            filter: ViewFilter::all(),
            mode,
            pinned: pinned.iter().cloned().collect(),
        }
    }

    /// Compiles a `[[mcp.views]]` entry for a node of AS `own`; every
    /// problem is returned, each with its key (`name`, `prefixes[1]`...).
    pub fn compile(cfg: &ViewConfig, own: Asn) -> Result<View, Vec<ViewProblem>> {
        let mut bad: Vec<ViewProblem> = Vec::new();
        if let Err(e) = check_name(&cfg.name) {
            bad.push(("name".into(), e));
        }
        for (key, len) in [
            ("prefixes", cfg.prefixes.len()),
            ("communities", cfg.communities.len()),
            ("origin_asns", cfg.origin_asns.len()),
            ("pinned", cfg.pinned.len()),
        ] {
            if len > MAX_VIEW_LIST {
                bad.push((key.into(), format!("at most {MAX_VIEW_LIST} entries")));
            }
        }
        let mut prefixes = Vec::new();
        for (i, t) in cfg.prefixes.iter().enumerate() {
            match Prefix::new(t) {
                Ok(p) => prefixes.push(p),
                Err(e) => bad.push((format!("prefixes[{i}]"), format!("{t:?}: {e}"))),
            }
        }
        let mut communities = Vec::new();
        for (i, t) in cfg.communities.iter().enumerate() {
            match t.parse::<Community>() {
                Ok(c) => communities.push(c),
                Err(e) => bad.push((format!("communities[{i}]"), e.to_string())),
            }
        }
        let mut origins = Vec::new();
        for (i, a) in cfg.origin_asns.iter().enumerate() {
            match a {
                AsnSpec::Number(n) => origins.push(Asn(*n)),
                AsnSpec::Text(t) if t == "own" => origins.push(own),
                AsnSpec::Text(t) => match t.parse::<Asn>() {
                    Ok(a) => origins.push(a),
                    Err(_) => bad.push((
                        format!("origin_asns[{i}]"),
                        format!("{t:?} is neither an AS number nor \"own\""),
                    )),
                },
            }
        }
        bad.extend(check_pinned(cfg.mode, &cfg.pinned));
        if cfg
            .token_file
            .as_ref()
            .is_some_and(|f| f.as_os_str().is_empty())
        {
            bad.push(("token_file".into(), "must name a file".into()));
        }
        if !bad.is_empty() {
            return Err(bad);
        }
        Ok(View {
            name: Some(cfg.name.clone()),
            filter: ViewFilter::new(prefixes, communities, origins),
            mode: cfg.mode,
            pinned: cfg.pinned.iter().cloned().collect(),
        })
    }

    /// The URL path of the endpoint.
    pub fn path(&self) -> String {
        match &self.name {
            None => "/mcp".into(),
            Some(n) => format!("/mcp/{n}"),
        }
    }

    /// For messages: `/mcp` or `view "finance"`.
    pub fn label(&self) -> String {
        match &self.name {
            None => "/mcp".into(),
            Some(n) => format!("view {n:?}"),
        }
    }

    /// Every routed tool of the view.
    pub fn tools<'s, 't>(
        &'s self,
        t: &'t ToolTable,
    ) -> impl Iterator<Item = &'t FrontTool> + use<'s, 't> {
        t.tools()
            .iter()
            .filter(|t| self.filter.admits_tool(&t.routed))
    }

    /// The routed tools `tools/list` shows: all of the view's (full) or
    /// its pinned ones (discovery).
    pub fn listed<'s, 't>(
        &'s self,
        t: &'t ToolTable,
    ) -> impl Iterator<Item = &'t FrontTool> + use<'s, 't> {
        self.tools(t)
            .filter(|t| self.mode == FrontMode::Full || self.pinned.contains(&t.name))
    }

    /// The view's tool of that front name.
    pub fn tool<'a>(&self, t: &'a ToolTable, name: &str) -> Option<&'a FrontTool> {
        t.get(name).filter(|t| self.filter.admits_tool(&t.routed))
    }

    /// The view's tool routed exactly under `prefix`.
    pub fn tool_by_prefix<'a>(&self, t: &'a ToolTable, prefix: &Prefix) -> Option<&'a FrontTool> {
        t.by_prefix(prefix)
            .filter(|t| self.filter.admits_tool(&t.routed))
    }

    /// The view's items of `kind`.
    pub fn items<'s, 't>(
        &'s self,
        t: &'t ToolTable,
        kind: ItemKind,
    ) -> impl Iterator<Item = &'t FrontItem> + use<'s, 't> {
        t.items(kind).filter(|i| self.filter.admits_item(&i.routed))
    }

    /// The view's item of `kind` listed as `name`.
    pub fn item<'a>(&self, t: &'a ToolTable, kind: ItemKind, name: &str) -> Option<&'a FrontItem> {
        t.item(kind, name)
            .filter(|i| self.filter.admits_item(&i.routed))
    }

    /// [`ToolTable::resolve_uri`] within the view.
    pub fn resolve_uri<'a>(&self, t: &'a ToolTable, uri: &str) -> Option<(&'a FrontItem, String)> {
        t.resolve_uri_where(uri, |i| self.filter.admits_item(&i.routed))
    }

    /// Whether what this view lists differs between two tables (for
    /// `list_changed`): (tools, prompts, resources and templates).
    pub fn changed(&self, prev: &ToolTable, next: &ToolTable) -> (bool, bool, bool) {
        let tools = !self.listed(prev).eq(self.listed(next));
        let prompts = !self
            .items(prev, ItemKind::Prompt)
            .eq(self.items(next, ItemKind::Prompt));
        let resources = !self
            .items(prev, ItemKind::Resource)
            .eq(self.items(next, ItemKind::Resource))
            || !self
                .items(prev, ItemKind::Template)
                .eq(self.items(next, ItemKind::Template));
        (tools, prompts, resources)
    }

    /// The view's tools that match a `find_agents` query, at most
    /// [`FIND_TOOLS_LIMIT`], and whether more matched. A tool matches when
    /// the query, as a capability prefix, covers its route prefix, when it
    /// carries the query as a capability tag, or when every word of the
    /// query appears (case-insensitively) in its front name, real name,
    /// route prefix, agent id or description.
    pub fn search<'a>(&self, t: &'a ToolTable, query: &str) -> (Vec<&'a FrontTool>, bool) {
        let q = query.trim();
        let cover = Prefix::new(q).ok().map(|p| p.to_wildcard());
        let words: Vec<String> = q.split_whitespace().map(str::to_lowercase).collect();
        let mut out = Vec::new();
        let mut more = false;
        for tool in self.tools(t) {
            let r = &tool.routed;
            let hit = cover.as_ref().is_some_and(|c| c.covers(&r.prefix))
                || r.capabilities.iter().any(|c| c.as_ref() == q)
                || (!words.is_empty() && {
                    let mut hay = format!(
                        "{} {} {} {}",
                        tool.name,
                        r.tool,
                        r.prefix.as_str(),
                        r.agent.as_str()
                    );
                    if let Some(d) = r.descriptor.as_ref().and_then(|d| d.description.as_deref()) {
                        hay.push(' ');
                        hay.push_str(d);
                    }
                    let hay = hay.to_lowercase();
                    words.iter().all(|w| hay.contains(w.as_str()))
                });
            if !hit {
                continue;
            }
            if out.len() == FIND_TOOLS_LIMIT {
                more = true;
                break;
            }
            out.push(tool);
        }
        (out, more)
    }
}

/// A view name: 1 to [`MAX_VIEW_NAME_LEN`] of `[a-z0-9_-]`, starting with a
/// letter or digit (it is a URL path segment).
pub fn check_name(name: &str) -> Result<(), String> {
    if name.is_empty() || name.len() > MAX_VIEW_NAME_LEN {
        return Err(format!(
            "{name:?}: a view name is 1 to {MAX_VIEW_NAME_LEN} characters"
        ));
    }
    let ok = name
        .bytes()
        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_');
    let first = name
        .bytes()
        .next()
        .is_some_and(|b| b.is_ascii_lowercase() || b.is_ascii_digit());
    if !ok || !first {
        return Err(format!(
            "{name:?}: a view name is lower-case letters, digits, '-' and '_', starting with a letter or digit (it is the URL path /mcp/<name>)"
        ));
    }
    Ok(())
}

/// `pinned` entries: front names, and only in discovery mode.
pub fn check_pinned(mode: FrontMode, pinned: &[String]) -> Vec<ViewProblem> {
    let mut bad = Vec::new();
    if mode == FrontMode::Full && !pinned.is_empty() {
        bad.push((
            "pinned".into(),
            "pinned tools only apply in discovery mode (full mode lists every tool)".into(),
        ));
    }
    for (i, p) in pinned.iter().enumerate() {
        if !is_valid_front_name(p) {
            bad.push((
                format!("pinned[{i}]"),
                format!("{p:?} is not a valid front tool name"),
            ));
        }
    }
    bad
}

/// Every problem of a set of views, keyed from `mcp.views[i]`: each
/// view's own, too many views, names and token files used twice.
pub fn problems(views: &[ViewConfig]) -> Vec<ViewProblem> {
    let mut out = Vec::new();
    if views.len() > MAX_VIEWS {
        out.push((
            "mcp.views".into(),
            format!("{} views; at most {MAX_VIEWS}", views.len()),
        ));
    }
    let mut names = HashSet::new();
    let mut files = HashSet::new();
    for (i, v) in views.iter().enumerate() {
        if let Err(bad) = View::compile(v, Asn(0)) {
            out.extend(
                bad.into_iter()
                    .map(|(k, m)| (format!("mcp.views[{i}].{k}"), m)),
            );
        }
        if !names.insert(v.name.as_str()) {
            out.push((
                format!("mcp.views[{i}].name"),
                format!("{:?} names two views", v.name),
            ));
        }
        if !files.insert(v.token_file()) {
            out.push((
                format!("mcp.views[{i}].token_file"),
                format!(
                    "{} is another view's token file: each view needs its own token",
                    v.token_file().display()
                ),
            ));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::ids::AgentId;

    fn routed(prefix: &str, communities: &[&str], origin: u32) -> RoutedTool {
        RoutedTool {
            prefix: Prefix::new(prefix).unwrap(),
            tool: prefix.rsplit('/').next().unwrap().into(),
            agent: AgentId::new("a"),
            origin_asn: Asn(origin),
            as_path: vec![],
            local: false,
            med: 0,
            communities: communities.iter().map(|c| c.parse().unwrap()).collect(),
            capabilities: Vec::new(),
            hash: None,
            descriptor: None,
            descriptor_note: None,
        }
    }

    fn view(toml_text: &str) -> Result<View, Vec<ViewProblem>> {
        let cfg: ViewConfig = toml::from_str(toml_text).unwrap();
        View::compile(&cfg, Asn(65001))
    }

    #[test]
    fn every_list_that_is_set_must_match() {
        let v = view(
            "name = \"fin\"\nprefixes = [\"finance/*\"]\ncommunities = [\"internal\"]\norigin_asns = [65010, \"own\"]",
        )
        .unwrap();
        let f = &v.filter;
        assert!(f.admits_tool(&routed("finance/q/get", &["internal"], 65010)));
        assert!(f.admits_tool(&routed("finance/q/get", &["internal"], 65001)));
        assert!(!f.admits_tool(&routed("other/q/get", &["internal"], 65010)));
        assert!(!f.admits_tool(&routed("finance/q/get", &[], 65010)));
        assert!(!f.admits_tool(&routed("finance/q/get", &["internal"], 65011)));
        let all = view("name = \"all\"").unwrap();
        assert!(all.filter.is_all());
        assert!(all.filter.admits_tool(&routed("x/y", &[], 1)));
    }

    #[test]
    fn discovery_lists_pinned_tools_and_finds_the_rest() {
        let table = ToolTable::build(vec![
            routed("finance/q/get_quote", &[], 1),
            routed("finance/q/convert", &[], 1),
            routed("hr/p/lookup", &[], 1),
        ]);
        let v = view(
            "name = \"fin\"\nprefixes = [\"finance/*\"]\nmode = \"discovery\"\npinned = [\"get_quote\", \"lookup\"]",
        )
        .unwrap();
        let listed: Vec<&str> = v.listed(&table).map(|t| t.name.as_str()).collect();
        assert_eq!(
            listed,
            ["get_quote"],
            "a pinned tool outside the view stays out"
        );
        assert!(v.tool(&table, "convert").is_some());
        assert!(v.tool(&table, "lookup").is_none());
        let (found, more) = v.search(&table, "CONVERT");
        assert_eq!(found.len(), 1);
        assert!(!more);
        let (found, _) = v.search(&table, "finance/q");
        assert_eq!(found.len(), 2);
        let (found, _) = v.search(&table, "hr/p");
        assert!(found.is_empty(), "search stays inside the view");
    }

    #[test]
    fn a_view_changes_only_when_what_it_lists_changes() {
        let before = ToolTable::build(vec![routed("finance/q/get_quote", &[], 1)]);
        let hr = ToolTable::build_from(
            &before,
            vec![
                routed("finance/q/get_quote", &[], 1),
                routed("hr/p/lookup", &[], 1),
            ],
            crate::core::forward::Micros(1),
        );
        let fin = view("name = \"fin\"\nprefixes = [\"finance/*\"]").unwrap();
        assert_eq!(fin.changed(&before, &hr), (false, false, false));
        let everything = View::everything(FrontMode::Full, &[]);
        assert_eq!(everything.changed(&before, &hr), (true, false, false));
        // Discovery: a new unpinned tool changes nothing listed.
        let disc = View::everything(FrontMode::Discovery, &["get_quote".into()]);
        assert_eq!(disc.changed(&before, &hr), (false, false, false));
        let gone = ToolTable::build_from(&hr, vec![], crate::core::forward::Micros(2));
        assert_eq!(disc.changed(&hr, &gone), (true, false, false));
    }

    #[test]
    fn search_is_bounded() {
        let many: Vec<RoutedTool> = (0..FIND_TOOLS_LIMIT + 5)
            .map(|i| routed(&format!("p/t{i}"), &[], 1))
            .collect();
        let table = ToolTable::build(many);
        let v = View::everything(FrontMode::Discovery, &[]);
        let (found, more) = v.search(&table, "p/*");
        assert_eq!(found.len(), FIND_TOOLS_LIMIT);
        assert!(more);
    }

    #[test]
    fn bad_views_name_every_problem() {
        let bad = view(
            "name = \"../x\"\nprefixes = [\"a//b\"]\ncommunities = [\"Not A Community\"]\norigin_asns = [\"mine\"]\npinned = [\"x\"]\ntoken_file = \"\"",
        )
        .unwrap_err();
        let keys: Vec<&str> = bad.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(
            keys,
            [
                "name",
                "prefixes[0]",
                "communities[0]",
                "origin_asns[0]",
                "pinned",
                "token_file"
            ],
            "{bad:?}"
        );
        assert!(check_name(&"a".repeat(MAX_VIEW_NAME_LEN)).is_ok());
        assert!(check_name(&"a".repeat(MAX_VIEW_NAME_LEN + 1)).is_err());
        for hostile in ["", "A", "-a", "a/b", "a b", "a%2e", "é", ".."] {
            assert!(check_name(hostile).is_err(), "{hostile:?}");
        }
        let unknown = toml::from_str::<ViewConfig>("name = \"a\"\nprefix = [\"x/*\"]");
        assert!(unknown.unwrap_err().to_string().contains("prefix"));
    }

    /// node.toml: every problem of the views and of `/mcp`'s mode under its
    /// key path, unknown keys named.
    #[test]
    fn node_toml_names_the_keys_of_bad_views() {
        use crate::config::{ConfigError, NodeConfig};
        let parse = |t: &str| NodeConfig::parse(t, std::path::Path::new("node.toml"));
        let ok = parse(
            "[mcp]\nfront_mode = \"discovery\"\nfront_pinned = [\"echo\"]\n[[mcp.views]]\nname = \"a\"\nprefixes = [\"a/*\"]\n[[mcp.views]]\nname = \"b\"\nmode = \"discovery\"\n",
        )
        .unwrap();
        assert_eq!(ok.mcp.views.len(), 2);
        assert_eq!(ok.mcp.front_mode, FrontMode::Discovery);
        let bad = "[mcp]\nfront_pinned = [\"echo\"]\n[[mcp.views]]\nname = \"a\"\n[[mcp.views]]\nname = \"a\"\nprefixes = [\"x//y\"]\n";
        match parse(bad) {
            Err(ConfigError::Invalid { problems, .. }) => {
                let keys: Vec<&str> = problems.keys().into_iter().collect();
                assert_eq!(
                    keys,
                    [
                        "mcp.front_pinned",
                        "mcp.views[1].prefixes[0]",
                        "mcp.views[1].name",
                        "mcp.views[1].token_file"
                    ],
                    "{problems:?}"
                );
            }
            other => panic!("expected Invalid, got {other:?}"),
        }
        let unknown = parse("[[mcp.views]]\nname = \"a\"\nfilter = \"x\"\n").unwrap_err();
        assert!(unknown.to_string().contains("filter"), "{unknown}");
        let mode = parse("[[mcp.views]]\nname = \"a\"\nmode = \"some\"\n").unwrap_err();
        assert!(mode.to_string().contains("discovery"), "{mode}");
    }

    #[test]
    fn names_and_token_files_are_unique_and_views_bounded() {
        let v = |name: &str, file: Option<&str>| ViewConfig {
            name: name.into(),
            token_file: file.map(PathBuf::from),
            ..Default::default()
        };
        let p = problems(&[
            v("a", None),
            v("a", Some("x.token")),
            v("b", Some("x.token")),
        ]);
        let keys: Vec<&str> = p.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(
            keys,
            ["mcp.views[1].name", "mcp.views[2].token_file"],
            "{p:?}"
        );
        let many: Vec<ViewConfig> = (0..=MAX_VIEWS).map(|i| v(&format!("v{i}"), None)).collect();
        assert_eq!(problems(&many)[0].0, "mcp.views");
    }
}
