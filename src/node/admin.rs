//! The node's answers to the admin API: status, peers, routes, agents,
//! calls, and the operations it allows.

use super::mcp::{resolve_agent, state_text};
use super::*;
use crate::admin::AdminError;
use crate::admin::views::{
    AgentSource, AgentView, CallInFlight, FrontListsView, FrontRefusedView, McpView,
};
use crate::core::ids::AgentId;
use crate::mcp::config::AgentConfig;
use crate::mcp::upstream::UpstreamError;

impl Node {
    /// A peer named by its peer id or its 64-hex-digit node id.
    pub(super) fn parse_peer(&self, s: &str) -> Result<NodeId, AdminError> {
        let node = if s.len() == 64 {
            s.parse::<NodeId>().map_err(AdminError::BadRequest)?
        } else {
            let p: PeerId = s.parse().map_err(|_| {
                AdminError::BadRequest(format!(
                    "{s:?} is neither a peer id nor a 64-hex-digit node id"
                ))
            })?;
            node_id_of(&p).map_err(|e| AdminError::BadRequest(e.to_string()))?
        };
        if self.engine.peer_info(&node).is_none() {
            return Err(AdminError::NotFound(format!(
                "{s} is not a peer of this node"
            )));
        }
        Ok(node)
    }

    pub(super) fn route_views(&self, routes: &[Route]) -> Vec<RouteView> {
        routes.iter().map(RouteView::new).collect()
    }

    pub(super) async fn on_admin(&mut self, req: AdminRequest) -> Result<(), NodeError> {
        match req {
            AdminRequest::PolicyReload(reply) => match self.reload_policy().await {
                Ok(v) => {
                    let _ = reply.send(Ok(v));
                }
                Err(super::policy::ReloadError::Refused(e)) => {
                    let _ = reply.send(Err(e));
                }
                Err(super::policy::ReloadError::Node(e)) => {
                    let _ = reply.send(Err(AdminError::Failed(e.to_string())));
                    return Err(e);
                }
            },
            AdminRequest::Agents(tx) => {
                let _ = tx.send(self.agent_views());
            }
            AdminRequest::AddAgent { entry, reply } => {
                let r = self.add_agent(entry).await;
                let _ = reply.send(r);
            }
            AdminRequest::RemoveAgent { id, reply } => {
                self.remove_agent(id, reply).await;
            }
            AdminRequest::Mcp(tx) => {
                let _ = tx.send(self.mcp_view());
            }
            AdminRequest::Calls(tx) => {
                let _ = tx.send(self.calls_view());
            }
            AdminRequest::RecentCalls { limit, reply } => {
                let v = self
                    .mcp
                    .plane
                    .recent_calls()
                    .newest_first()
                    .take(limit)
                    .map(crate::admin::views::RecentCallView::new)
                    .collect();
                let _ = reply.send(v);
            }
            AdminRequest::Metrics(tx) => {
                let _ = tx.send(self.metrics_snapshot());
            }
            AdminRequest::KnownAsns(tx) => {
                let known = self.security.trust().known_asns();
                let v = known
                    .list()
                    .into_iter()
                    .map(|(asn, k)| crate::admin::views::KnownAsnView {
                        asn: asn.0,
                        node: k.node.to_string(),
                        peer_id: peer_label(&k.node),
                        first_seen_ms: k.first_seen.0,
                    })
                    .collect();
                let _ = tx.send(v);
            }
            AdminRequest::Rekey { asn, node, reply } => {
                let _ = reply.send(self.rekey(asn, node));
            }
            AdminRequest::Status(tx) => {
                let _ = tx.send(self.status());
            }
            AdminRequest::Peers(tx) => {
                let _ = tx.send(self.peer_views());
            }
            AdminRequest::Routes(tx) => {
                let v = self
                    .engine
                    .loc_rib()
                    .iter()
                    .map(|r| {
                        let paths = self.engine.paths(&r.prefix);
                        RouteView::best(r, paths.first())
                    })
                    .collect();
                let _ = tx.send(v);
            }
            AdminRequest::RoutesIn { peer, reply } => {
                let r = self.parse_peer(&peer).map(|n| AdjInView {
                    peer: peer_label(&n),
                    pre_policy: self.route_views(&self.engine.adj_rib_in_pre(&n)),
                    post_policy: self.route_views(&self.engine.adj_rib_in_post(&n)),
                });
                let _ = reply.send(r);
            }
            AdminRequest::Why { prefix, reply } => {
                let _ = reply.send(self.why_view(&prefix));
            }
            AdminRequest::Paths(tx) => {
                let _ = tx.send(self.path_views());
            }
            AdminRequest::Tools(tx) => {
                let _ = tx.send(self.tool_views());
            }
            AdminRequest::PolicyCheck { text, file, reply } => {
                let _ = reply.send(Ok(self.policy_check(&text, &file)));
            }
            AdminRequest::RoutesOut { peer, reply } => {
                let r = self.parse_peer(&peer).map(|n| AdjOutView {
                    peer: peer_label(&n),
                    routes: self.route_views(&self.engine.adj_rib_out(&n)),
                });
                let _ = reply.send(r);
            }
        }
        Ok(())
    }

    /// Accepts a re-key of a derived ASN (or forgets its key), durably.
    fn rekey(
        &mut self,
        asn: u32,
        node: Option<String>,
    ) -> Result<crate::admin::views::RekeyView, AdminError> {
        let node = match node {
            Some(n) => Some(n.parse::<NodeId>().map_err(AdminError::BadRequest)?),
            None => None,
        };
        let known = self.security.trust().known_asns();
        let before = known
            .rekey(Asn(asn), node, self.clock.now())
            .map_err(|e| match e {
                crate::identity::KnownAsnsError::Own { .. } => {
                    AdminError::BadRequest(e.to_string())
                }
                other => AdminError::Failed(other.to_string()),
            })?;
        tracing::warn!(asn, before = ?before.map(|b| b.node.short()), now = ?node.map(|n| n.short()), "operator accepted a re-key of a derived ASN");
        if let Some(n) = node {
            // Its refused OPEN kept it out of auto-peering; let it back in.
            self.discovery.unblock(&peer_id_of(&n));
        }
        Ok(crate::admin::views::RekeyView {
            asn,
            before: before.map(|b| b.node.to_string()),
            now: node.map(|n| n.to_string()),
        })
    }

    pub(super) fn peer_views(&self) -> Vec<PeerView> {
        let now = Instant::now();
        let mut v: Vec<PeerView> = self
            .engine
            .peers()
            .iter()
            .map(|p| {
                let mut view = PeerView::new(p);
                let pid = peer_id_of(&p.node);
                // Peers only restored from the store (not running a
                // session) have no source.
                view.source = self
                    .started
                    .contains(&p.node)
                    .then(|| self.discovery.source_of(&pid))
                    .flatten();
                view.blocked = self.discovery.blocked(&pid, now).map(str::to_string);
                view.addresses = self
                    .net
                    .addresses_of(&pid)
                    .iter()
                    .map(|a| a.to_string())
                    .collect();
                view.link = self.net.link_info(&p.node);
                view.advertised_routes = self.engine.adj_rib_out(&p.node).len();
                if let Some(m) = self.meta.get(&p.node) {
                    view.established_since = m.established_since.map(|t| t.0);
                    view.last_error = m.last_error.clone();
                }
                view
            })
            .collect();
        v.sort_by(|a, b| a.peer_id.cmp(&b.peer_id));
        v
    }

    pub(super) fn status(&self) -> StatusView {
        let c = &self.cfg.config;
        let peers = self.engine.peers();
        let d = self.durable.borrow().clone();
        let now = self.clock.now();
        StatusView {
            version: env!("CARGO_PKG_VERSION").to_string(),
            peer_id: self.net.local_peer_id().to_string(),
            node_id: self.security.identity().node_id().to_string(),
            asn: self.security.asn().0,
            asn_binding: match (&c.node.certificate, c.node.asn) {
                (CertSource::File(_), _) => "issued".into(),
                (CertSource::SelfSigned, AsnSetting::Number(_)) => "self-signed".into(),
                _ => "derived".into(),
            },
            federation: c.node.federation.clone(),
            bootstrap: c.node.bootstrap,
            listen: self
                .net
                .listen_addrs()
                .iter()
                .map(|a| a.to_string())
                .collect(),
            external: self
                .net
                .external_addrs()
                .iter()
                .map(|a| a.to_string())
                .collect(),
            admin: self.admin_addr.map(|a| format!("http://{a}")),
            now_ms: now.0,
            uptime_ms: now.saturating_sub(self.started_at),
            loc_rib_routes: self.engine.loc_rib_len(),
            peers: PeerCounts {
                configured: c.neighbors.len(),
                auto: self.discovery.auto_count(),
                established: peers
                    .iter()
                    .filter(|p| p.state == PeerState::Established)
                    .count(),
                total: peers.len(),
            },
            engine: self.engine.stats().clone(),
            verify: self.security.verify_view(),
            inbound: {
                let g = self.net.gate_config();
                crate::admin::views::InboundView {
                    gate: self.net.gate_stats(),
                    budget_bytes: g.node_bytes as u64,
                    budget_bytes_per_connection: g.connection_bytes as u64,
                    probes_deferred: self.net.probes_deferred,
                    addresses_refused: self.net.addresses_refused,
                }
            },
            admin_refused: self
                .admin_guard
                .as_ref()
                .map(|g| g.refused.view())
                .unwrap_or_default(),
            store: StoreView {
                dir: self.store_dir.display().to_string(),
                schema_version: crate::store::SCHEMA_VERSION,
                submitted_batches: self.writer.as_ref().map_or(0, |w| w.last_submitted()),
                durable_batches: d.seq,
                flushes: d.flushes,
                pending_acks: self.pending_acks.len(),
                error: d.error,
                restored_peers: self.restored.0,
                restored_routes: self.restored.1,
                previous_shutdown_clean: self.previous_clean,
            },
            discovery: DiscoveryView {
                mdns: self.net.mdns_enabled(),
                kademlia: self.net.kad_enabled(),
                kademlia_server: matches!(c.discovery.kademlia_mode, KadMode::Server)
                    || (matches!(c.discovery.kademlia_mode, KadMode::Auto) && c.node.bootstrap),
                auto_peers: self.discovery.auto_count(),
                max_auto_peers: c.discovery.max_auto_peers,
            },
            nat: self.net.nat_view(),
        }
    }

    // ----- MCP: agents, calls, the front -----

    pub(super) fn agent_views(&self) -> Vec<AgentView> {
        let mut health: std::collections::HashMap<AgentId, _> = self
            .mcp
            .plane
            .health_reports()
            .into_iter()
            .map(|r| (r.agent.clone(), r))
            .collect();
        let up = &self.mcp.upstream;
        up.agent_ids()
            .into_iter()
            .map(|id| {
                let status = up.status(&id);
                let state = state_text(status.as_ref().map(|s| &s.state));
                let prefix = up
                    .config(&id)
                    .map(|c| c.prefix().to_string())
                    .unwrap_or_default();
                let routes = self
                    .mcp
                    .plane
                    .originated()
                    .filter(|r| r.attrs.agent == id)
                    .count();
                AgentView {
                    source: if self.mcp.run_time.contains(&id) {
                        AgentSource::RunTime
                    } else {
                        AgentSource::Config
                    },
                    id: id.to_string(),
                    prefix,
                    state,
                    sessions: status.map_or(0, |s| s.sessions),
                    routes,
                    health: health.remove(&id),
                }
            })
            .collect()
    }

    /// Adds an agent from its `[[agents]]` entry as JSON, and persists it.
    pub(super) async fn add_agent(&mut self, json: String) -> Result<AgentView, AdminError> {
        let a: AgentConfig =
            serde_json::from_str(&json).map_err(|e| AdminError::BadRequest(e.to_string()))?;
        let id = a.id().clone();
        self.mcp
            .upstream
            .add_agent(resolve_agent(&self.cfg, a))
            .map_err(|e| match e {
                UpstreamError::AgentExists(_) => AdminError::Conflict(e.to_string()),
                other => AdminError::Failed(other.to_string()),
            })?;
        self.mcp.run_time.insert(id.clone());
        let batch = WriteBatch {
            agents: vec![(id.to_string(), Some(json))],
            ..Default::default()
        };
        self.commit(batch, None)
            .await
            .map_err(|e| AdminError::Failed(e.to_string()))?;
        tracing::info!(agent = %id, "agent added at run time");
        self.agent_views()
            .into_iter()
            .find(|v| v.id == id.as_str())
            .ok_or_else(|| AdminError::Failed("the agent vanished while it was added".into()))
    }

    /// Removes an agent: persisted at once, its routes withdrawn when its
    /// supervisor reports `Down { Removed }` (its last event). The polite
    /// shutdown of the agent (seconds, for a child process) runs in a task,
    /// so the node task does not wait for it; `reply` is answered when it
    /// is done.
    pub(super) async fn remove_agent(
        &mut self,
        id: String,
        reply: tokio::sync::oneshot::Sender<Result<(), AdminError>>,
    ) {
        let agent = AgentId::new(&id);
        let up = self.mcp.upstream.clone();
        if up.config(&agent).is_none() {
            let _ = reply.send(Err(AdminError::NotFound(format!(
                "no agent {id} on this node"
            ))));
            return;
        }
        if self.mcp.run_time.remove(&agent) {
            let batch = WriteBatch {
                agents: vec![(id.clone(), None)],
                ..Default::default()
            };
            if let Err(e) = self.commit(batch, None).await {
                let _ = reply.send(Err(AdminError::Failed(e.to_string())));
                return;
            }
        }
        tokio::spawn(async move {
            let r = up.remove_agent(&agent).await.map_err(|e| match e {
                UpstreamError::UnknownAgent(_) => AdminError::NotFound(e.to_string()),
                other => AdminError::Failed(other.to_string()),
            });
            if r.is_ok() {
                tracing::info!(agent = %id, "agent removed");
            }
            let _ = reply.send(r);
        });
    }

    pub(super) fn calls_view(&self) -> Vec<CallInFlight> {
        let label = |n: &NodeId| crate::identity::peer_id_of(n).to_string();
        self.mcp
            .plane
            .forwarder()
            .calls(self.clock.now_micros())
            .into_iter()
            .map(|c| CallInFlight {
                call_id: c.call_id.to_string(),
                target: c.target.to_string(),
                from: c.from.as_ref().map(label),
                to: c.to.as_ref().map(label),
                agent: c.agent.map(|a| a.to_string()),
                age_ms: c.age_ms,
                deadline_in_ms: c.deadline_in_ms,
                retries: c.retries,
            })
            .collect()
    }

    /// What `/metrics` shows: counters read from the engine, the
    /// verifier, the forwarder and the plane.
    pub(super) fn metrics_snapshot(&self) -> crate::admin::metrics::MetricsSnapshot {
        let mut routes: std::collections::HashMap<NodeId, _> =
            self.engine.rib_counts().into_iter().collect();
        let mut messages: std::collections::HashMap<NodeId, _> =
            self.engine.peer_messages().into_iter().collect();
        let peers = self
            .engine
            .peers()
            .iter()
            .map(|p| crate::admin::metrics::PeerMetrics {
                peer: peer_id_of(&p.node).to_string(),
                state: p.state,
                routes: routes.remove(&p.node).unwrap_or_default(),
                messages: messages.remove(&p.node).unwrap_or_default(),
            })
            .collect();
        crate::admin::metrics::MetricsSnapshot {
            asn: self.security.asn().0,
            peer_id: self.net.local_peer_id().to_string(),
            uptime_ms: self.clock.now().saturating_sub(self.started_at),
            loc_rib_routes: self.engine.loc_rib_len(),
            peers,
            engine: self.engine.stats().clone(),
            verify: self.security.verify_view(),
            calls: self.mcp.metrics(),
            forwarder: self.mcp.plane.forwarder().stats(),
            calls_in_flight: self.mcp.plane.forwarder().in_flight(),
            recent_calls: self.mcp.plane.recent_calls().len(),
            health: self.mcp.plane.health_reports(),
            nat: self.net.nat_view(),
        }
    }

    pub(super) fn mcp_view(&self) -> McpView {
        let url = self.mcp.front_addr().map(|a| format!("http://{a}/mcp"));
        let views = self
            .cfg
            .config
            .mcp
            .views
            .iter()
            .map(|v| crate::admin::views::FrontViewView {
                name: v.name.clone(),
                url: url.as_ref().map(|u| format!("{u}/{}", v.name)),
                mode: v.mode,
                prefixes: v.prefixes.clone(),
                communities: v.communities.clone(),
                origin_asns: v
                    .origin_asns
                    .iter()
                    .map(|a| match a {
                        crate::core::access::AsnSpec::Number(n) => n.to_string(),
                        crate::core::access::AsnSpec::Text(t) => t.clone(),
                    })
                    .collect(),
                pinned: v.pinned.clone(),
                token_file: self.cfg.resolve(&v.token_file()).display().to_string(),
            })
            .collect();
        McpView {
            mode: self.cfg.config.mcp.front_mode,
            views,
            url,
            bearer_token_required: self.mcp.bearer,
            asn: self.security.asn(),
            calls_in_flight: self.mcp.plane.forwarder().in_flight(),
            open_calls_from_peers: self.net.open_calls(),
            forwarder: self.mcp.plane.forwarder().stats(),
            metrics: self.mcp.metrics(),
            front_refused: self
                .mcp
                .http
                .as_ref()
                .map(|h| {
                    let (host, origin, token) = h.refused.counts();
                    FrontRefusedView {
                        host,
                        origin,
                        token,
                    }
                })
                .unwrap_or_default(),
            front_lists: {
                use crate::mcp::items::ItemKind;
                let t = self.mcp.plane.table();
                let missing_items = [ItemKind::Prompt, ItemKind::Resource, ItemKind::Template]
                    .into_iter()
                    .flat_map(|k| t.items(k))
                    .filter(|i| i.routed.descriptor.is_none() && i.routed.hash.is_some())
                    .count();
                FrontListsView {
                    tools: t.len(),
                    prompts: t.items(ItemKind::Prompt).count(),
                    resources: t.items(ItemKind::Resource).count(),
                    templates: t.items(ItemKind::Template).count(),
                    descriptors_missing: t.missing_descriptors().count() + missing_items,
                }
            },
        }
    }
}
