//! Ready-made topologies on the simulator. The first is the corporate network
//! of the design seed:
//!
//! ```text
//!  Finance AS 65001            Corporate core AS 65000              Engineering AS 65002
//!  fin-1 (budget, audit*) --- core-1 --\                /-- core-2 --- eng-1 (code, test)
//!    |                                  core-rr (reflector)              |
//!  fin-2 (report)                                                       eng-2 (deploy)
//!  * audit is tagged `confidential`      policy: no fin -> eng
//! ```
//!
//! Each AS runs its own policy file from `examples/policies/corporate-*.toml`.

use std::sync::Arc;

use crate::core::community::Community;
use crate::core::engine::{Engine, EngineConfig, Event, PeerConfig};
use crate::core::ids::{AgentId, Asn, ClusterId, Millis, NodeId};
use crate::core::policy::{NodePolicy, PolicyLoadError, PolicySet};
use crate::core::{PathAttrs, Prefix, Route};

use super::SimNet;

pub const CORE_POLICY: &str = include_str!("../../examples/policies/corporate-core.toml");
pub const FINANCE_POLICY: &str = include_str!("../../examples/policies/corporate-finance.toml");
pub const ENGINEERING_POLICY: &str =
    include_str!("../../examples/policies/corporate-engineering.toml");

/// One node of a scenario.
#[derive(Debug, Clone)]
pub struct NodeSpec {
    pub name: &'static str,
    pub id: NodeId,
    pub asn: Asn,
}

/// One agent a node originates.
#[derive(Debug, Clone)]
pub struct AgentSpec {
    pub node: &'static str,
    pub agent: &'static str,
    pub prefix: &'static str,
    pub capabilities: &'static [&'static str],
    pub confidential: bool,
}

pub struct Scenario {
    pub net: SimNet,
    pub nodes: Vec<NodeSpec>,
    pub agents: Vec<AgentSpec>,
    /// (a, b) sessions, by node name.
    pub sessions: Vec<(&'static str, &'static str)>,
}

impl Scenario {
    pub fn node(&self, name: &str) -> Option<&NodeSpec> {
        self.nodes.iter().find(|n| n.name == name)
    }

    pub fn name_of(&self, id: &NodeId) -> &'static str {
        self.nodes
            .iter()
            .find(|n| n.id == *id)
            .map_or("?", |n| n.name)
    }

    pub fn engine(&self, name: &str) -> Option<&Engine> {
        self.node(name).and_then(|n| self.net.engine(&n.id))
    }

    /// The prefixes in a node's Loc-RIB, sorted.
    pub fn loc_rib(&self, name: &str) -> Vec<String> {
        self.engine(name)
            .map(|e| e.loc_rib().iter().map(|r| r.prefix.to_string()).collect())
            .unwrap_or_default()
    }
}

const NODES: [(&str, u64, u32); 7] = [
    ("core-rr", 1, 65000),
    ("core-1", 2, 65000),
    ("core-2", 3, 65000),
    ("fin-1", 11, 65001),
    ("fin-2", 12, 65001),
    ("eng-1", 21, 65002),
    ("eng-2", 22, 65002),
];

const AGENTS: [AgentSpec; 6] = [
    AgentSpec {
        node: "fin-1",
        agent: "budget",
        prefix: "finance/budget/forecast",
        capabilities: &["finance", "forecasting"],
        confidential: false,
    },
    AgentSpec {
        node: "fin-1",
        agent: "audit",
        prefix: "finance/audit/ledger",
        capabilities: &["finance", "audit"],
        confidential: true,
    },
    AgentSpec {
        node: "fin-2",
        agent: "report",
        prefix: "finance/report/quarterly",
        capabilities: &["finance", "reporting"],
        confidential: false,
    },
    AgentSpec {
        node: "eng-1",
        agent: "code",
        prefix: "eng/code/review",
        capabilities: &["coding", "typescript"],
        confidential: false,
    },
    AgentSpec {
        node: "eng-1",
        agent: "test",
        prefix: "eng/test/run",
        capabilities: &["testing"],
        confidential: false,
    },
    AgentSpec {
        node: "eng-2",
        agent: "deploy",
        prefix: "eng/deploy/ship",
        capabilities: &["deploy"],
        confidential: false,
    },
];

const SESSIONS: [(&str, &str); 6] = [
    ("fin-1", "fin-2"),
    ("fin-1", "core-1"),
    ("core-rr", "core-1"),
    ("core-rr", "core-2"),
    ("core-2", "eng-1"),
    ("eng-1", "eng-2"),
];

/// Builds the corporate network, configured and with its agents originated,
/// but not yet run: call `net.run_for(..)` to let it converge.
pub fn corporate(start: Millis) -> Result<Scenario, PolicyLoadError> {
    let core = Arc::new(PolicySet::from_toml_str(
        CORE_POLICY,
        "corporate-core.toml",
    )?);
    let finance = Arc::new(PolicySet::from_toml_str(
        FINANCE_POLICY,
        "corporate-finance.toml",
    )?);
    let engineering = Arc::new(PolicySet::from_toml_str(
        ENGINEERING_POLICY,
        "corporate-engineering.toml",
    )?);
    let mut net = SimNet::new(start, 2);
    let nodes: Vec<NodeSpec> = NODES
        .iter()
        .map(|(name, n, asn)| NodeSpec {
            name,
            id: NodeId::from_u64(*n),
            asn: Asn(*asn),
        })
        .collect();
    for n in &nodes {
        let mut cfg = EngineConfig::new(n.asn, n.id);
        cfg.federation = "corporate".into();
        if n.name == "core-rr" {
            cfg.cluster_id = Some(ClusterId(1));
        }
        let set = match n.asn.0 {
            65000 => core.clone(),
            65001 => finance.clone(),
            _ => engineering.clone(),
        };
        let engine = Engine::new(cfg).with_policy(Arc::new(NodePolicy::new(n.asn, set)));
        net.add_node(engine);
    }
    let find = |name: &str| nodes.iter().find(|n| n.name == name).cloned();
    for (a, b) in SESSIONS {
        let (Some(a), Some(b)) = (find(a), find(b)) else {
            continue;
        };
        net.link(a.id, b.id);
        // Only the reflector marks the core nodes as its clients.
        let client = |me: &NodeSpec, other: &NodeSpec| me.name == "core-rr" && other.asn == me.asn;
        net.inject(
            a.id,
            Event::AddPeer(
                PeerConfig::new(b.id)
                    .with_asn(b.asn)
                    .with_rr_client(client(&a, &b)),
            ),
        );
        net.inject(
            b.id,
            Event::AddPeer(
                PeerConfig::new(a.id)
                    .with_asn(a.asn)
                    .with_rr_client(client(&b, &a)),
            ),
        );
    }
    for ag in AGENTS.iter() {
        let Some(n) = find(ag.node) else { continue };
        let mut attrs = PathAttrs {
            agent: AgentId::new(ag.agent),
            ..Default::default()
        }
        .with_capabilities(ag.capabilities.iter().copied());
        if ag.confidential
            && let Ok(c) = Community::named("confidential")
        {
            attrs.add_community(c);
        }
        if let Ok(prefix) = Prefix::new(ag.prefix) {
            net.inject(n.id, Event::Originate(Route::new(prefix, Arc::new(attrs))));
        }
    }
    Ok(Scenario {
        net,
        nodes,
        agents: AGENTS.to_vec(),
        sessions: SESSIONS.to_vec(),
    })
}
