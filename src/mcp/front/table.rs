//! The tools the MCP front shows, as one immutable snapshot.
//!
//! The node rebuilds a [`ToolTable`] from its Loc-RIB whenever the routes
//! (or a fetched descriptor) change, and publishes it on a watch channel;
//! every front session reads the latest snapshot without asking the node.
//! A table that equals the previous one is not published, so clients only
//! hear `notifications/tools/list_changed` when what they see changed.

use std::collections::HashMap;
use std::sync::Arc;

use serde::Serialize;

use crate::core::ids::{AgentId, Asn};
use crate::core::prefix::Prefix;
use crate::mcp::catalog::{DescriptorHash, FrontNames, ToolDescriptor, ToolKey};

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

/// Every tool the front shows, by front name.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ToolTable {
    tools: Vec<FrontTool>,
    by_name: HashMap<String, usize>,
}

impl ToolTable {
    /// Names the tools (collision-free, valid for MCP clients, a function
    /// of the set of tools) and indexes them. Routed tools that want a
    /// meta tool's name get a hashed name instead.
    pub fn build(routed: Vec<RoutedTool>) -> ToolTable {
        let keys = routed
            .iter()
            .map(|r| ToolKey::new(r.prefix.as_str(), r.tool.as_str()))
            .chain(
                META_TOOLS
                    .iter()
                    .map(|m| ToolKey::new("agent-bgp/meta", *m)),
            );
        let names = FrontNames::allocate(keys);
        let mut tools: Vec<FrontTool> = routed
            .into_iter()
            .filter_map(|r| {
                let key = ToolKey::new(r.prefix.as_str(), r.tool.as_str());
                let name = names.name_of(&key)?.to_string();
                Some(FrontTool { name, routed: r })
            })
            .collect();
        tools.sort_by(|a, b| a.name.cmp(&b.name));
        let by_name = tools
            .iter()
            .enumerate()
            .map(|(i, t)| (t.name.clone(), i))
            .collect();
        ToolTable { tools, by_name }
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

    #[test]
    fn provenance_names_origin_and_path_length() {
        let r = routed("utility/time/now", "now");
        assert_eq!(
            r.provenance(),
            "[agent-bgp] capability utility/time/now, agent a in AS65003, AS path length 2 (AS65002 AS65003)."
        );
    }
}
