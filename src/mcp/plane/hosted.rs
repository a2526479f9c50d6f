//! The agents this node hosts, as routes: their tools become routes to
//! originate (or withdraw) when an agent comes up, changes or goes down.

use std::collections::BTreeMap;
use std::sync::Arc;

use super::{McpPlane, PlaneOut};
use crate::core::attrs::{AttrValue, ExtraAttr, PathAttrs};
use crate::core::call::{DESCRIPTOR_ATTR, TOOL_ATTR};
use crate::core::engine::Event;
use crate::core::ids::Millis;
use crate::core::prefix::Prefix;
use crate::core::route::{Route, RouteKey};
use crate::mcp::catalog::{ToolDescriptor, tool_routes};
use crate::mcp::config::AgentConfig;
use crate::mcp::upstream::{AgentEvent, DownReason};

/// An agent this node hosts, as its routes see it.
#[derive(Debug, Default)]
pub(super) struct Hosted {
    pub tools: BTreeMap<String, Arc<ToolDescriptor>>,
    pub routes: BTreeMap<Prefix, Route>,
    pub up: bool,
}

impl McpPlane {
    /// Routes this node originates for its agents (the node re-signs them
    /// periodically).
    pub fn originated(&self) -> impl Iterator<Item = &Route> {
        self.hosted.values().flat_map(|h| h.routes.values())
    }

    // ----- hosted agents -----

    /// An upstream agent came up, changed its tools, or went down: the
    /// routes to originate or withdraw. `cfg` is the agent's configuration
    /// (`None`: it was removed while its event was queued).
    pub fn on_agent(&mut self, now: Millis, ev: AgentEvent, cfg: Option<&AgentConfig>) -> PlaneOut {
        let mut out = PlaneOut::default();
        match ev {
            AgentEvent::Up { agent, tools, .. } | AgentEvent::ToolsChanged { agent, tools, .. } => {
                let Some(cfg) = cfg else {
                    // Removed while its event was queued.
                    return out;
                };
                let routes = tool_routes(cfg.prefix(), tools.iter().map(|t| t.name.as_str()));
                for (tool, why) in &routes.rejected {
                    tracing::warn!(%agent, %tool, error = %why, "tool not routed");
                }
                let h = self.hosted.entry(agent.clone()).or_default();
                h.up = true;
                h.tools = tools
                    .into_iter()
                    .map(|t| (t.name.clone(), Arc::new(t)))
                    .collect();
                let mut next: BTreeMap<Prefix, Route> = BTreeMap::new();
                for (tool, prefix) in routes.routes {
                    let Some(d) = h.tools.get(&tool) else {
                        continue;
                    };
                    let mut attrs = PathAttrs {
                        agent: agent.clone(),
                        origin_time: now,
                        ..Default::default()
                    }
                    .with_capabilities(cfg.capabilities())
                    .with_communities(cfg.communities().iter().cloned());
                    attrs.extra.insert(
                        TOOL_ATTR.into(),
                        ExtraAttr {
                            transitive: true,
                            value: AttrValue::Text(tool.as_str().into()),
                        },
                    );
                    attrs.extra.insert(
                        DESCRIPTOR_ATTR.into(),
                        ExtraAttr {
                            transitive: true,
                            value: AttrValue::Bytes(Arc::from(&d.hash().0[..])),
                        },
                    );
                    // Keep the origin time of an unchanged route, so a
                    // re-list does not make it look newer (and lose ties).
                    let route = match h.routes.get(&prefix) {
                        Some(old) if same_but_time(&old.attrs, &attrs) => old.clone(),
                        _ => Route::new(prefix.clone(), Arc::new(attrs)),
                    };
                    next.insert(prefix, route);
                }
                for (p, r) in &next {
                    if h.routes.get(p) != Some(r) {
                        out.engine.push(Event::Originate(r.clone()));
                    }
                }
                for p in h.routes.keys() {
                    if !next.contains_key(p) {
                        out.engine
                            .push(Event::WithdrawLocal(RouteKey::new(p.clone())));
                    }
                }
                tracing::info!(%agent, routes = next.len(), "agent up; originating its tool routes");
                h.routes = next;
            }
            AgentEvent::Down { agent, reason } => {
                // Removed (or shut down) is an agent's last event: forget it.
                let gone = matches!(reason, DownReason::Removed | DownReason::Shutdown);
                if let Some(h) = self.hosted.get_mut(&agent) {
                    h.up = false;
                    for p in std::mem::take(&mut h.routes).into_keys() {
                        out.engine.push(Event::WithdrawLocal(RouteKey::new(p)));
                    }
                    tracing::info!(%agent, %reason, "agent down; its routes withdrawn");
                }
                if gone {
                    self.hosted.remove(&agent);
                }
            }
        }
        self.routes_dirty = true;
        out
    }
}

fn same_but_time(a: &PathAttrs, b: &PathAttrs) -> bool {
    let mut x = a.clone();
    x.origin_time = b.origin_time;
    x == *b
}
