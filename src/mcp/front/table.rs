//! The tools the MCP front shows, as one immutable snapshot.
//!
//! The node rebuilds a [`ToolTable`] from its Loc-RIB whenever the routes
//! (or a fetched descriptor) change, and publishes it on a watch channel;
//! every front session reads the latest snapshot without asking the node.
//! A table that equals the previous one is not published, so clients only
//! hear `notifications/tools/list_changed` when what they see changed.
//!
//! Front names are sticky: a tool keeps its name while it stays routed,
//! and for [`NAME_HOLD`] after it goes away, so a client that cached the
//! name of a tool whose agent restarted (a withdraw, then an announce)
//! calls it by the same name afterwards, and no newcomer takes that name
//! in between.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;

use crate::core::community::Community;
use crate::core::forward::Micros;
use crate::core::ids::{AgentId, Asn};
use crate::core::prefix::Prefix;
use crate::mcp::catalog::{DescriptorHash, FrontNames, ToolDescriptor, ToolKey};
use crate::mcp::items::{
    ItemDescriptor, ItemKind, front_item_names, match_template, strip_uri_tag,
};

/// Names of the front's own tools; routed tools never take them.
pub const META_TOOLS: [&str; 5] = [
    "find_agents",
    "call_capability",
    "list_agents",
    "describe_agent",
    "call_agent",
];

/// A routed tool before it has a front name.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RoutedTool {
    /// The route prefix (`utility/time/get_current_time`).
    pub prefix: Prefix,
    /// The tool's real name at its origin.
    pub tool: String,
    pub agent: AgentId,
    /// The AS that originates the route (ours for local tools).
    pub origin_asn: Asn,
    /// ASes the route crossed, nearest first; empty inside our AS.
    pub as_path: Vec<Asn>,
    /// This node runs the tool itself.
    pub local: bool,
    pub med: u32,
    /// The route's communities (views filter on them).
    pub communities: Vec<Community>,
    pub capabilities: Vec<Arc<str>>,
    pub hash: Option<DescriptorHash>,
    /// `None` until fetched (remote tools) or when it cannot be had.
    #[serde(skip)]
    pub descriptor: Option<Arc<ToolDescriptor>>,
    /// Why the descriptor is missing, for the description text.
    pub descriptor_note: Option<String>,
}

impl RoutedTool {
    /// The tool may be retried on another path: the agent annotated it
    /// read-only or idempotent.
    pub fn idempotent(&self) -> bool {
        self.descriptor
            .as_ref()
            .is_some_and(|d| d.is_read_only() || d.is_idempotent())
    }

    /// What the front's description adds: where the tool lives.
    pub fn provenance(&self) -> String {
        if self.local {
            format!(
                "[agent-bgp] capability {}, agent {} on this node ({}).",
                self.prefix, self.agent, self.origin_asn
            )
        } else {
            let path: Vec<String> = self.as_path.iter().map(Asn::to_string).collect();
            format!(
                "[agent-bgp] capability {}, agent {} in {}, AS path length {} ({}).",
                self.prefix,
                self.agent,
                self.origin_asn,
                self.as_path.len(),
                if path.is_empty() {
                    "inside this AS".to_string()
                } else {
                    path.join(" ")
                }
            )
        }
    }
}

/// A routed tool with its front name.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FrontTool {
    pub name: String,
    #[serde(flatten)]
    pub routed: RoutedTool,
}

/// How long the name of a tool that is no longer routed stays reserved
/// for it.
pub const NAME_HOLD: Duration = Duration::from_secs(600);

/// At most this many names of departed tools are held (the oldest go
/// first), so a flood of short-lived routes cannot grow the table.
pub const MAX_HELD_NAMES: usize = 4096;

/// A routed prompt, resource or template before it has a front name.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RoutedItem {
    pub prefix: Prefix,
    pub kind: ItemKind,
    /// The prompt's name, the resource's URI or the template at the origin.
    pub key: String,
    pub agent: AgentId,
    pub origin_asn: Asn,
    pub as_path: Vec<Asn>,
    pub local: bool,
    /// The route's communities (views filter on them).
    pub communities: Vec<Community>,
    pub hash: Option<DescriptorHash>,
    /// `None` until fetched (remote items) or when it cannot be had.
    #[serde(skip)]
    pub descriptor: Option<Arc<ItemDescriptor>>,
}

/// A routed item with the name the front lists it under: the prompt name,
/// or the URI / URI template (the origin's, unless two origins share it;
/// see [`front_item_names`]).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FrontItem {
    pub name: String,
    #[serde(flatten)]
    pub routed: RoutedItem,
}

impl FrontItem {
    /// The item as the front lists it: the origin's listed object (or what
    /// the route says, until the descriptor is here) under its front name.
    pub fn listed(&self) -> serde_json::Map<String, serde_json::Value> {
        let mut m = self
            .routed
            .descriptor
            .as_ref()
            .map(|d| d.json.clone())
            .unwrap_or_default();
        m.insert(
            self.routed.kind.key_field().into(),
            serde_json::Value::String(self.name.clone()),
        );
        if self.routed.kind != ItemKind::Prompt && !m.contains_key("name") {
            m.insert(
                "name".into(),
                serde_json::Value::String(self.routed.key.clone()),
            );
        }
        m
    }
}

/// Every tool the front shows, by front name, and the prompts, resources
/// and templates.
#[derive(Debug, Clone, Default)]
pub struct ToolTable {
    tools: Vec<FrontTool>,
    by_name: HashMap<String, usize>,
    /// Sorted by (kind, name).
    items: Vec<FrontItem>,
    /// Names of tools that left, with when they left; not part of what
    /// clients see, so not compared.
    held: Vec<(ToolKey, String, Micros)>,
}

/// Two tables are equal when a client sees the same tools under the same
/// names; held names are bookkeeping.
impl PartialEq for ToolTable {
    fn eq(&self, other: &Self) -> bool {
        self.tools == other.tools && self.items == other.items
    }
}

impl ToolTable {
    /// Names the tools (collision-free, valid for MCP clients) and indexes
    /// them, keeping the names of `prev`: a tool keeps the name it was
    /// listed under for as long as it stays routed, so a client's cached
    /// name does not break when another tool of the same name appears;
    /// the newcomer gets the hashed form instead. New tools are named by
    /// [`FrontNames`] over the whole set (order independent among
    /// themselves). Routed tools never take a meta tool's name. A tool
    /// that left less than [`NAME_HOLD`] before `now` gets its old name
    /// back when it returns, and meanwhile its name is not given to
    /// another tool (a newcomer that would clash with it is named as if
    /// it were still there).
    pub fn build_from(prev: &ToolTable, routed: Vec<RoutedTool>, now: Micros) -> ToolTable {
        let key = |r: &RoutedTool| ToolKey::new(r.prefix.as_str(), r.tool.as_str());
        let hold_us = u64::try_from(NAME_HOLD.as_micros()).unwrap_or(u64::MAX);
        let present: std::collections::HashSet<ToolKey> = routed.iter().map(key).collect();
        let recent = prev
            .held
            .iter()
            .filter(|(_, _, left)| now.0 < left.0.saturating_add(hold_us));
        // The names tools had: shown in the previous table, or held.
        let mut old: HashMap<ToolKey, &str> = recent
            .clone()
            .map(|(k, n, _)| (k.clone(), n.as_str()))
            .collect();
        old.extend(prev.tools.iter().map(|t| (key(&t.routed), t.name.as_str())));
        // Names held for tools that are gone now: the holds still in time
        // plus every tool the previous table showed that is not routed any
        // more. Newest last, so the cap drops the oldest.
        let mut held: Vec<(ToolKey, String, Micros)> = recent
            .filter(|(k, _, _)| !present.contains(k))
            .cloned()
            .collect();
        held.extend(
            prev.tools
                .iter()
                .map(|t| (key(&t.routed), t))
                .filter(|(k, _)| !present.contains(k))
                .map(|(k, t)| (k, t.name.clone(), now)),
        );
        if held.len() > MAX_HELD_NAMES {
            held.drain(..held.len() - MAX_HELD_NAMES);
        }
        let names = FrontNames::allocate(
            routed
                .iter()
                .map(key)
                .chain(held.iter().map(|(k, _, _)| k.clone()))
                .chain(
                    META_TOOLS
                        .iter()
                        .map(|m| ToolKey::new("agent-bgp/meta", *m)),
                ),
        );
        let mut taken: std::collections::HashSet<String> =
            META_TOOLS.iter().map(|m| m.to_string()).collect();
        taken.extend(held.iter().map(|(_, n, _)| n.clone()));
        let mut named: Vec<Option<String>> = routed
            .iter()
            .map(|r| {
                let n = old.get(&key(r))?;
                taken.insert(n.to_string()).then(|| n.to_string())
            })
            .collect();
        for (r, slot) in routed.iter().zip(named.iter_mut()) {
            if slot.is_some() {
                continue;
            }
            let Some(base) = names.name_of(&key(r)) else {
                continue;
            };
            let mut name = base.to_string();
            let mut n = 2u32;
            while taken.contains(&name) {
                // Only a hashed name equal to a kept one gets here.
                let tail = format!("_{n}");
                let mut cut = base.to_string();
                cut.truncate(crate::mcp::catalog::MAX_FRONT_NAME_LEN - tail.len());
                name = cut + &tail;
                n += 1;
            }
            taken.insert(name.clone());
            *slot = Some(name);
        }
        let mut tools: Vec<FrontTool> = routed
            .into_iter()
            .zip(named)
            .filter_map(|(r, name)| {
                Some(FrontTool {
                    name: name?,
                    routed: r,
                })
            })
            .collect();
        tools.sort_by(|a, b| a.name.cmp(&b.name));
        let by_name = tools
            .iter()
            .enumerate()
            .map(|(i, t)| (t.name.clone(), i))
            .collect();
        ToolTable {
            tools,
            by_name,
            items: Vec::new(),
            held,
        }
    }

    /// The table with these prompts, resources and templates, named by
    /// [`front_item_names`] per kind.
    pub fn with_items(mut self, routed: Vec<RoutedItem>) -> ToolTable {
        let mut items = Vec::with_capacity(routed.len());
        for kind in [ItemKind::Prompt, ItemKind::Resource, ItemKind::Template] {
            let of_kind: Vec<RoutedItem> =
                routed.iter().filter(|r| r.kind == kind).cloned().collect();
            let keys: Vec<(String, String)> = of_kind
                .iter()
                .map(|r| (r.prefix.to_string(), r.key.clone()))
                .collect();
            let names = front_item_names(kind, &keys);
            items.extend(
                of_kind
                    .into_iter()
                    .zip(names)
                    .map(|(routed, name)| FrontItem { name, routed }),
            );
        }
        items.sort_by(|a, b| (a.routed.kind, &a.name).cmp(&(b.routed.kind, &b.name)));
        self.items = items;
        self
    }

    /// The items of one kind, by front name.
    pub fn items(&self, kind: ItemKind) -> impl Iterator<Item = &FrontItem> {
        self.items.iter().filter(move |i| i.routed.kind == kind)
    }

    /// The item of `kind` listed as `name`.
    pub fn item(&self, kind: ItemKind, name: &str) -> Option<&FrontItem> {
        self.items
            .iter()
            .find(|i| i.routed.kind == kind && i.name == name)
    }

    /// What a `resources/read` of `uri` reaches: the resource listed under
    /// that URI, else a template that can produce it; with the URI the
    /// origin knows it by.
    pub fn resolve_uri(&self, uri: &str) -> Option<(&FrontItem, String)> {
        self.resolve_uri_where(uri, |_| true)
    }

    /// [`ToolTable::resolve_uri`] among the items `keep` accepts.
    pub fn resolve_uri_where(
        &self,
        uri: &str,
        keep: impl Fn(&FrontItem) -> bool,
    ) -> Option<(&FrontItem, String)> {
        if let Some(r) = self.item(ItemKind::Resource, uri).filter(|r| keep(r)) {
            return Some((r, r.routed.key.clone()));
        }
        self.items(ItemKind::Template)
            .filter(|t| keep(t))
            .find(|t| match_template(&t.name, uri).is_some())
            .map(|t| (t, strip_uri_tag(uri).to_string()))
    }

    /// Whether the list of `kind` differs between two tables (for
    /// `list_changed`).
    pub fn items_differ(&self, other: &ToolTable, kind: ItemKind) -> bool {
        !self.items(kind).eq(other.items(kind))
    }

    /// Whether the tools differ between two tables.
    pub fn tools_differ(&self, other: &ToolTable) -> bool {
        self.tools != other.tools
    }

    /// [`ToolTable::build_from`] with no history: the names are a function
    /// of the set of tools.
    pub fn build(routed: Vec<RoutedTool>) -> ToolTable {
        Self::build_from(&ToolTable::default(), routed, Micros(0))
    }

    pub fn get(&self, name: &str) -> Option<&FrontTool> {
        self.by_name.get(name).and_then(|i| self.tools.get(*i))
    }

    /// The tool routed under `prefix`, if any.
    pub fn by_prefix(&self, prefix: &Prefix) -> Option<&FrontTool> {
        self.tools.iter().find(|t| &t.routed.prefix == prefix)
    }

    pub fn tools(&self) -> &[FrontTool] {
        &self.tools
    }

    pub fn len(&self) -> usize {
        self.tools.len()
    }

    pub fn is_empty(&self) -> bool {
        self.tools.is_empty()
    }

    /// Remote tools whose descriptor is still missing.
    pub fn missing_descriptors(&self) -> impl Iterator<Item = &FrontTool> {
        self.tools
            .iter()
            .filter(|t| t.routed.descriptor.is_none() && t.routed.hash.is_some())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mcp::catalog::is_valid_front_name;

    fn routed(prefix: &str, tool: &str) -> RoutedTool {
        RoutedTool {
            prefix: Prefix::new(prefix).unwrap(),
            tool: tool.into(),
            agent: AgentId::new("a"),
            origin_asn: Asn(65003),
            as_path: vec![Asn(65002), Asn(65003)],
            local: false,
            med: 0,
            communities: Vec::new(),
            capabilities: Vec::new(),
            hash: None,
            descriptor: None,
            descriptor_note: None,
        }
    }

    #[test]
    fn a_routed_tool_never_takes_a_meta_tools_name() {
        let t = ToolTable::build(vec![
            routed("x/find_agents", "find_agents"),
            routed("x/echo", "echo"),
        ]);
        let names: Vec<&str> = t.tools().iter().map(|t| t.name.as_str()).collect();
        assert!(names.contains(&"echo"));
        assert!(!names.contains(&"find_agents"), "{names:?}");
        assert!(names.iter().all(|n| is_valid_front_name(n)));
        assert!(t.get("echo").is_some());
    }

    #[test]
    fn same_tool_name_at_two_prefixes_gets_two_stable_names() {
        let a = ToolTable::build(vec![routed("x/echo", "echo"), routed("y/echo", "echo")]);
        let b = ToolTable::build(vec![routed("y/echo", "echo"), routed("x/echo", "echo")]);
        assert_eq!(a, b, "order independent");
        assert_eq!(a.len(), 2);
        assert_ne!(a.tools()[0].name, a.tools()[1].name);
    }

    fn name_of<'a>(t: &'a ToolTable, prefix: &str) -> Option<&'a str> {
        t.tools()
            .iter()
            .find(|t| t.routed.prefix.as_str() == prefix)
            .map(|t| t.name.as_str())
    }

    /// The CI failure of 2026-11-25: an agent restarted (its routes
    /// withdrawn, then announced again) while a namesake stayed; the
    /// restarted tool came back under a hashed name and the client's
    /// cached name stopped working.
    #[test]
    fn a_tool_that_flaps_gets_its_name_back() {
        let s = 1_000_000;
        let first = ToolTable::build(vec![routed("x/stats", "stats")]);
        let both = ToolTable::build_from(
            &first,
            vec![routed("x/stats", "stats"), routed("y/stats", "stats")],
            Micros(s),
        );
        assert_eq!(name_of(&both, "x/stats"), Some("stats"));
        let other = name_of(&both, "y/stats").unwrap().to_string();
        // x withdrawn: y keeps its name and does not take x's.
        let gone = ToolTable::build_from(&both, vec![routed("y/stats", "stats")], Micros(2 * s));
        assert_eq!(name_of(&gone, "y/stats"), Some(other.as_str()));
        assert!(gone.get("stats").is_none());
        // A newcomer that clashes with the held name is named as a clash.
        let newcomer = ToolTable::build_from(
            &gone,
            vec![routed("y/stats", "stats"), routed("z/stats", "stats")],
            Micros(3 * s),
        );
        assert_ne!(name_of(&newcomer, "z/stats"), Some("stats"));
        // x back within the hold: the same name again.
        let back = ToolTable::build_from(
            &newcomer,
            vec![
                routed("x/stats", "stats"),
                routed("y/stats", "stats"),
                routed("z/stats", "stats"),
            ],
            Micros(4 * s),
        );
        assert_eq!(name_of(&back, "x/stats"), Some("stats"));
        assert_eq!(name_of(&back, "y/stats"), Some(other.as_str()));
        assert_eq!(
            name_of(&back, "z/stats"),
            name_of(&newcomer, "z/stats"),
            "names of tools that stayed do not move"
        );
        // The table a client sees did not change when only holds did.
        let again = ToolTable::build_from(&gone, vec![routed("y/stats", "stats")], Micros(5 * s));
        assert_eq!(gone, again);
    }

    #[test]
    fn a_held_name_is_released_after_the_hold() {
        let first = ToolTable::build(vec![routed("x/stats", "stats")]);
        let gone = ToolTable::build_from(&first, vec![], Micros(0));
        let hold = u64::try_from(NAME_HOLD.as_micros()).unwrap();
        let still =
            ToolTable::build_from(&gone, vec![routed("y/stats", "stats")], Micros(hold - 1));
        assert_ne!(name_of(&still, "y/stats"), Some("stats"), "held");
        let empty = ToolTable::build_from(&gone, vec![], Micros(hold));
        let later = ToolTable::build_from(&empty, vec![routed("y/stats", "stats")], Micros(hold));
        assert_eq!(name_of(&later, "y/stats"), Some("stats"), "released");
    }

    #[test]
    fn held_names_are_bounded() {
        let many: Vec<RoutedTool> = (0..MAX_HELD_NAMES + 10)
            .map(|i| routed(&format!("p/t{i}"), &format!("t{i}")))
            .collect();
        let full = ToolTable::build(many);
        let gone = ToolTable::build_from(&full, vec![], Micros(1));
        assert_eq!(gone.held.len(), MAX_HELD_NAMES);
    }

    #[test]
    fn a_listed_tool_keeps_its_name_when_a_namesake_appears() {
        let first = ToolTable::build(vec![routed("x/echo", "echo")]);
        assert!(first.get("echo").is_some());
        let second = ToolTable::build_from(
            &first,
            vec![routed("x/echo", "echo"), routed("y/echo", "echo")],
            Micros(0),
        );
        assert_eq!(
            second.get("echo").map(|t| t.routed.prefix.as_str()),
            Some("x/echo")
        );
        let other = second
            .tools()
            .iter()
            .find(|t| t.routed.prefix.as_str() == "y/echo")
            .unwrap();
        assert!(other.name.starts_with("echo_"), "{}", other.name);
        // Without history both would be hashed.
        let fresh = ToolTable::build(vec![routed("x/echo", "echo"), routed("y/echo", "echo")]);
        assert!(fresh.get("echo").is_none());
        // When the first one goes, the newcomer keeps its hashed name.
        let third = ToolTable::build_from(&second, vec![routed("y/echo", "echo")], Micros(0));
        assert_eq!(third.tools()[0].name, other.name);
    }

    #[test]
    fn provenance_names_origin_and_path_length() {
        let r = routed("utility/time/now", "now");
        assert_eq!(
            r.provenance(),
            "[agent-bgp] capability utility/time/now, agent a in AS65003, AS path length 2 (AS65002 AS65003)."
        );
    }
}
