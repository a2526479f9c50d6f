//! The meta tools' queries: `find_agents` (routes and why the best won)
//! and `list_agents` (hosted here, reachable from here).

use std::collections::BTreeMap;

use serde::Serialize;
use serde_json::{Value as Json, json};

use super::McpPlane;
use crate::core::decision::Status;
use crate::core::engine::Engine;
use crate::core::forward::route_tool;
use crate::core::ids::AgentId;
use crate::core::prefix::Prefix;
use crate::mcp::front::view::ViewFilter;

/// A hosted agent as the node's supervisor sees it, for `list_agents`.
#[derive(Debug, Clone, PartialEq)]
pub struct HostedAgent {
    pub id: AgentId,
    pub prefix: Option<Prefix>,
    /// "up (version)", "starting", "down: why".
    pub state: String,
}

impl McpPlane {
    /// Routes whose prefix is covered by the query (a capability prefix)
    /// or that carry it as a capability tag, with every path and why the
    /// best one won; only routes whose best path `view` admits.
    pub fn find_agents(&self, engine: &Engine, query: &str, view: &ViewFilter) -> Json {
        let q = query.trim();
        let mut prefixes: Vec<Prefix> = Vec::new();
        if let Ok(p) = Prefix::new(q) {
            let cover = if p.is_wildcard() {
                p.clone()
            } else {
                p.to_wildcard()
            };
            prefixes.extend(
                engine
                    .routes_covered_by(&cover)
                    .into_iter()
                    .map(|r| r.prefix),
            );
            if !p.is_wildcard() && engine.best(&p).is_some() && !prefixes.contains(&p) {
                prefixes.push(p);
            }
        }
        for r in engine.loc_rib() {
            if r.attrs.has_capability(q) && !prefixes.contains(&r.prefix) {
                prefixes.push(r.prefix.clone());
            }
        }
        if !view.is_all() {
            prefixes.retain(|p| {
                engine.best(p).is_some_and(|r| {
                    view.admits(
                        &r.prefix,
                        &r.attrs.communities,
                        r.attrs.origin_asn().unwrap_or(self.cfg.asn),
                    )
                })
            });
        }
        prefixes.sort();
        prefixes.truncate(200);
        let table = self.table.clone();
        let routes: Vec<Json> = prefixes
            .iter()
            .map(|p| {
                let paths = engine.paths(p);
                let multipath = engine.forwarding(p).map(|f| f.multipath).unwrap_or(0);
                let best = paths.first().filter(|r| r.status == Status::Best);
                let mut why = Vec::new();
                let views: Vec<Json> = paths
                    .iter()
                    .enumerate()
                    .map(|(i, r)| {
                        let a = &r.route.attrs;
                        let status = match r.status {
                            Status::Best => "best".to_string(),
                            Status::Lost(step) => {
                                let via = r.peer.map_or_else(|| "local".into(), |n| n.short());
                                why.push(format!("path via {via} lost: {}", step.describe_loss()));
                                format!("lost: {}", step.describe_loss())
                            }
                            Status::Excluded(e) => format!("excluded: {}", e.describe()),
                        };
                        json!({
                            "status": status,
                            "multipath": i < multipath,
                            "nextHop": r.peer.map_or_else(|| "local".to_string(), |n| n.to_string()),
                            "agent": a.agent.as_str(),
                            "originAsn": a.origin_asn().unwrap_or(self.cfg.asn).0,
                            "asPath": a.as_path.iter().map(|x| x.0).collect::<Vec<_>>(),
                            "med": a.med,
                            "localPref": a.local_pref,
                            "communities": a.communities.iter().map(|c| c.to_string()).collect::<Vec<_>>(),
                            "capabilities": a.capabilities.iter().map(|c| c.to_string()).collect::<Vec<_>>(),
                            "stale": r.stale,
                        })
                    })
                    .collect();
                let tool = best.and_then(|b| route_tool(&b.route));
                let front = table.by_prefix(p).map(|t| t.name.clone());
                json!({
                    "prefix": p.as_str(),
                    "tool": tool.as_deref(),
                    "frontName": front,
                    "paths": views,
                    "why": if why.is_empty() { vec!["only path".to_string()] } else { why },
                })
            })
            .collect();
        json!({ "query": q, "node": self.cfg.node.short(), "asn": self.cfg.asn.0, "routes": routes })
    }

    /// The agents hosted here (as the node's supervisor reports them)
    /// and the agents routes lead to; in a view that filters, only the
    /// agents with a tool in it.
    pub fn list_agents(&self, agents: &[HostedAgent], view: &ViewFilter) -> Json {
        let table = self.table.clone();
        let in_view: std::collections::HashSet<&AgentId> = table
            .tools()
            .iter()
            .filter(|t| t.routed.local && view.admits_tool(&t.routed))
            .map(|t| &t.routed.agent)
            .collect();
        let hosted: Vec<Json> = agents
            .iter()
            .filter(|a| view.is_all() || in_view.contains(&a.id))
            .map(|a| {
                json!({
                    "agent": a.id.as_str(),
                    "prefix": a.prefix.as_ref().map(|p| p.to_string()),
                    "state": a.state,
                    "tools": self.hosted.get(&a.id).map(|h| h.routes.len()).unwrap_or(0),
                })
            })
            .collect();
        #[derive(Serialize)]
        #[serde(rename_all = "camelCase")]
        struct RoutedAgent {
            agent: String,
            origin_asn: u32,
            local: bool,
            as_path_length: usize,
            med: u32,
            tools: Vec<String>,
            capabilities: Vec<String>,
        }
        let mut routed: BTreeMap<(u32, String), RoutedAgent> = BTreeMap::new();
        for t in table.tools().iter().filter(|t| view.admits_tool(&t.routed)) {
            let r = &t.routed;
            let e = routed
                .entry((r.origin_asn.0, r.agent.to_string()))
                .or_insert_with(|| RoutedAgent {
                    agent: r.agent.to_string(),
                    origin_asn: r.origin_asn.0,
                    local: r.local,
                    as_path_length: r.as_path.len(),
                    med: r.med,
                    tools: Vec::new(),
                    capabilities: Vec::new(),
                });
            e.tools.push(t.name.clone());
            for c in &r.capabilities {
                if !e.capabilities.iter().any(|x| x == c.as_ref()) {
                    e.capabilities.push(c.to_string());
                }
            }
        }
        let routed: Vec<RoutedAgent> = routed.into_values().collect();
        json!({ "node": self.cfg.node.short(), "asn": self.cfg.asn.0, "hosted": hosted, "routed": routed })
    }
}
