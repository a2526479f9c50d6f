//! The agents this node hosts, as routes: their tools, prompts, resources
//! and resource templates become routes to originate (or withdraw) when an
//! agent comes up, changes or goes down.

use std::collections::BTreeMap;
use std::sync::Arc;

use super::{McpPlane, PlaneOut};
use crate::core::attrs::{AttrValue, ExtraAttr, PathAttrs};
use crate::core::call::{DESCRIPTOR_ATTR, KIND_ATTR, TOOL_ATTR};
use crate::core::engine::Event;
use crate::core::ids::Millis;
use crate::core::prefix::Prefix;
use crate::core::route::{Route, RouteKey};
use crate::mcp::catalog::DescriptorHash;
use crate::mcp::catalog::{ToolDescriptor, tool_routes};
use crate::mcp::config::AgentConfig;
use crate::mcp::items::{ItemDescriptor, ItemKind, item_routes};
use crate::mcp::upstream::{AgentEvent, DownReason};

/// An agent this node hosts, as its routes see it.
#[derive(Debug, Default)]
pub(super) struct Hosted {
    pub tools: BTreeMap<String, Arc<ToolDescriptor>>,
    /// Prompts, resources and templates by their route prefix.
    pub items: BTreeMap<Prefix, Arc<ItemDescriptor>>,
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
            AgentEvent::Up {
                agent,
                tools,
                items,
                ..
            }
            | AgentEvent::ToolsChanged {
                agent,
                tools,
                items,
                ..
            } => {
                let Some(cfg) = cfg else {
                    // Removed while its event was queued.
                    return out;
                };
                let routes = tool_routes(cfg.prefix(), tools.iter().map(|t| t.name.as_str()));
                for (tool, why) in &routes.rejected {
                    tracing::warn!(%agent, %tool, error = %why, "tool not routed");
                }
                self.health.agent_up(now, &agent, cfg_slots(cfg), cfg.med());
                let med = self.health.advertised(&agent, cfg.med());
                let h = self.hosted.entry(agent.clone()).or_default();
                h.up = true;
                h.tools = tools
                    .into_iter()
                    .map(|t| (t.name.clone(), Arc::new(t)))
                    .collect();
                let base = |now| {
                    PathAttrs {
                        agent: agent.clone(),
                        med,
                        origin_time: now,
                        ..Default::default()
                    }
                    .with_capabilities(cfg.capabilities())
                    .with_communities(cfg.communities().iter().cloned())
                };
                let mut wanted: Vec<(Prefix, PathAttrs)> = Vec::new();
                for (tool, prefix) in routes.routes {
                    let Some(d) = h.tools.get(&tool) else {
                        continue;
                    };
                    let attrs = with_item_attrs(base(now), None, &tool, d.hash());
                    wanted.push((prefix, attrs));
                }
                h.items.clear();
                for kind in [ItemKind::Prompt, ItemKind::Resource, ItemKind::Template] {
                    let of_kind: Vec<&ItemDescriptor> =
                        items.iter().filter(|i| i.kind == kind).collect();
                    let r = item_routes(cfg.prefix(), kind, of_kind.iter().map(|i| i.key()));
                    for (key, why) in &r.rejected {
                        tracing::warn!(%agent, %kind, %key, error = %why, "item not routed");
                    }
                    for (key, prefix) in r.routes {
                        let Some(d) = of_kind.iter().find(|i| i.key() == key) else {
                            continue;
                        };
                        let attrs = with_item_attrs(base(now), Some(kind), &key, d.hash());
                        h.items.insert(prefix.clone(), Arc::new((*d).clone()));
                        wanted.push((prefix, attrs));
                    }
                }
                let mut next: BTreeMap<Prefix, Route> = BTreeMap::new();
                for (prefix, attrs) in wanted {
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
                tracing::info!(%agent, routes = next.len(), "agent up; originating its routes");
                h.routes = next;
            }
            AgentEvent::Down { agent, reason } => {
                // Removed (or shut down) is an agent's last event: forget it.
                let gone = matches!(reason, DownReason::Removed | DownReason::Shutdown);
                self.health.agent_down(&agent);
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

/// The route attributes that say what a route leads to: the name (tool,
/// prompt, URI or template), the kind when it is not a tool, the
/// descriptor's hash.
fn with_item_attrs(
    mut attrs: PathAttrs,
    kind: Option<ItemKind>,
    name: &str,
    hash: DescriptorHash,
) -> PathAttrs {
    attrs.extra.insert(
        TOOL_ATTR.into(),
        ExtraAttr {
            transitive: true,
            value: AttrValue::Text(name.into()),
        },
    );
    if let Some(kind) = kind {
        attrs.extra.insert(
            KIND_ATTR.into(),
            ExtraAttr {
                transitive: true,
                value: AttrValue::Text(kind.name().into()),
            },
        );
    }
    attrs.extra.insert(
        DESCRIPTOR_ATTR.into(),
        ExtraAttr {
            transitive: true,
            value: AttrValue::Bytes(Arc::from(&hash.0[..])),
        },
    );
    attrs
}

/// What a route leads to, from its `mcp.kind`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Leads {
    /// No `mcp.kind`: a tool.
    Tool,
    Item(ItemKind),
    /// A kind this build does not know (a newer origin): not offered.
    Unknown,
}

pub fn route_leads(r: &Route) -> Leads {
    match r.attrs.extra.get(KIND_ATTR).map(|a| &a.value) {
        None => Leads::Tool,
        Some(AttrValue::Text(t)) => ItemKind::from_name(t).map_or(Leads::Unknown, Leads::Item),
        Some(_) => Leads::Unknown,
    }
}

/// An agent's call slots, for the load term of its health.
fn cfg_slots(cfg: &AgentConfig) -> u32 {
    u32::try_from(cfg.max_concurrent_calls()).unwrap_or(u32::MAX)
}

fn same_but_time(a: &PathAttrs, b: &PathAttrs) -> bool {
    let mut x = a.clone();
    x.origin_time = b.origin_time;
    x == *b
}
