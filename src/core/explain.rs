//! Explanations for operators: why a prefix's best path won and every other
//! path lost or was left out (`abgp why`), and what a new policy would
//! change if it replaced the one in force (`abgp policy check`).
//!
//! Both only read the engine (through its query methods) and run policies
//! on copies of the attributes; nothing here changes a RIB or emits a
//! message. A module of its own because it needs both the engine and the
//! policy language, which must not depend on each other both ways.

use crate::core::decision::Status;
use crate::core::engine::{Engine, NotExported, PathReport, PeerInfo, PeerState};
use crate::core::ids::{Asn, NodeId};
use crate::core::policy::{Decision, Direction, NodePolicy};
use crate::core::prefix::Prefix;
use crate::core::route::{Route, RouteKey};

/// Everything the engine knows about one prefix.
#[derive(Debug, Clone)]
pub struct Why {
    pub prefix: Prefix,
    /// Candidate paths (accepted on import), best first, then in decision
    /// order, each with its import decision.
    pub paths: Vec<WhyPath>,
    /// Paths peers sent that import policy rejected (kept pre-policy).
    pub rejected: Vec<RejectedPath>,
    /// For every established peer: is the best path advertised, and if
    /// not, why.
    pub exports: Vec<WhyExport>,
}

#[derive(Debug, Clone)]
pub struct WhyPath {
    pub report: PathReport,
    /// In the multipath set (equal to the best up to the tie-breakers).
    pub multipath: bool,
    /// What import policy decided (`None`: originated here).
    pub import: Option<Decision>,
    /// Import policy changed the attributes.
    pub modified: bool,
}

#[derive(Debug, Clone)]
pub struct RejectedPath {
    pub peer: NodeId,
    pub asn: Asn,
    pub route: Route,
    pub decision: Decision,
}

#[derive(Debug, Clone)]
pub struct WhyExport {
    pub peer: NodeId,
    pub asn: Asn,
    /// The route as advertised, or why it is not.
    pub outcome: Result<Route, NotExported>,
    /// What export policy decided, when the engine got as far as asking it.
    pub decision: Option<Decision>,
}

/// What a new policy would do to one route, compared with the policy in
/// force.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Change {
    /// Rejected today, accepted (or advertised) with the new policy.
    Accepted,
    /// Accepted (or advertised) today, rejected with the new policy.
    Rejected,
    /// Accepted by both, with different attributes.
    Modified,
}

impl Change {
    pub fn name(self) -> &'static str {
        match self {
            Change::Accepted => "accepted",
            Change::Rejected => "rejected",
            Change::Modified => "modified",
        }
    }
}

/// One route the new policy treats differently.
#[derive(Debug, Clone)]
pub struct RouteChange {
    pub peer: NodeId,
    pub asn: Asn,
    pub direction: Direction,
    pub change: Change,
    /// The route as the new policy leaves it (before: as it is today; for a
    /// newly rejected route, as it was accepted).
    pub route: Route,
    pub before: Decision,
    pub after: Decision,
}

/// The outcome of a dry run.
#[derive(Debug, Clone, Default)]
pub struct DryRun {
    /// Pre-policy routes evaluated on import, over all peers.
    pub import_evaluated: usize,
    /// Best routes times established peers evaluated on export.
    pub export_evaluated: usize,
    pub changes: Vec<RouteChange>,
}

impl DryRun {
    pub fn count(&self, direction: Direction, change: Change) -> usize {
        self.changes
            .iter()
            .filter(|c| c.direction == direction && c.change == change)
            .count()
    }
}

/// Every path to `prefix` and why it won or lost; what import policy
/// decided for each and what export decides for each peer. `policy`
/// must be the policy the engine runs (for the statement names).
pub fn why(engine: &mut Engine, prefix: &Prefix, policy: &NodePolicy) -> Why {
    let paths = explain_paths(engine, prefix, policy);
    let peers = engine.peers();
    let mut rejected = Vec::new();
    for info in &peers {
        let kept = engine.rejected_paths(&info.node, prefix);
        for r in kept {
            let mut attrs = r.attrs.clone();
            let d = policy.decide(Direction::Import, info, prefix, &mut attrs);
            if !d.is_accept() {
                rejected.push(RejectedPath {
                    peer: info.node,
                    asn: info.asn,
                    route: r,
                    decision: d,
                });
            }
        }
    }
    let best = engine.best(prefix);
    let mut exports = Vec::new();
    for info in peers.iter().filter(|p| p.state == PeerState::Established) {
        let outcome = engine.export_decision(prefix, &info.node);
        let decision = match (&outcome, &best) {
            (Ok(_) | Err(NotExported::Policy), Some(b)) => {
                let mut attrs = b.attrs.clone();
                Some(policy.decide(Direction::Export, info, prefix, &mut attrs))
            }
            _ => None,
        };
        exports.push(WhyExport {
            peer: info.node,
            asn: info.asn,
            outcome,
            decision,
        });
    }
    Why {
        prefix: prefix.clone(),
        paths,
        rejected,
        exports,
    }
}

/// Every candidate path of `prefix` with its status, multipath
/// membership and import decision (re-run on the attributes as
/// received): the part of [`why`] that `routes --detail` needs
/// for every prefix, so it costs a lookup per path, not a table scan.
pub fn explain_paths(engine: &Engine, prefix: &Prefix, policy: &NodePolicy) -> Vec<WhyPath> {
    let reports = engine.paths(prefix);
    let multipath: Vec<(Option<NodeId>, u32)> = engine
        .forwarding(prefix)
        .filter(|f| &f.prefix == prefix)
        .map(|f| {
            f.paths
                .iter()
                .take(f.multipath)
                .map(|(n, r)| (*n, r.path_id))
                .collect()
        })
        .unwrap_or_default();
    reports
        .into_iter()
        .map(|report| {
            let in_set = multipath.len() > 1
                && multipath.contains(&(report.peer, report.route.path_id))
                && !matches!(report.status, Status::Excluded(_));
            let peer = report.peer.as_ref().and_then(|n| engine.peer_info(n));
            let (import, modified) = match peer {
                Some(info) => {
                    let key = RouteKey {
                        prefix: prefix.clone(),
                        path_id: report.route.path_id,
                    };
                    // Kept pre-policy when policy changed it; else
                    // what was received is what is held.
                    let pre = engine
                        .pre_policy_attrs(&info.node, &key)
                        .unwrap_or_else(|| report.route.attrs.clone());
                    let mut attrs = pre.clone();
                    let d = policy.decide(Direction::Import, &info, prefix, &mut attrs);
                    (Some(d), *attrs != *pre)
                }
                None => (None, false),
            };
            WhyPath {
                report,
                multipath: in_set,
                import,
                modified,
            }
        })
        .collect()
}

/// What `new` would change if it replaced `old` (the policy in force):
/// every pre-policy route of every peer re-run on import, and every
/// best route re-run on export to every established peer. Export is
/// judged on today's best paths: a best path the new import policy
/// would replace is not followed further.
pub fn policy_dry_run(engine: &mut Engine, old: &NodePolicy, new: &NodePolicy) -> DryRun {
    let mut out = DryRun::default();
    let peers = engine.peers();
    for info in &peers {
        for r in engine.adj_rib_in_pre(&info.node) {
            out.import_evaluated += 1;
            out.changes
                .extend(compare(Direction::Import, info, &r, old, new));
        }
    }
    let best = engine.loc_rib();
    for info in peers.iter().filter(|p| p.state == PeerState::Established) {
        for b in &best {
            out.export_evaluated += 1;
            match engine.export_decision(&b.prefix, &info.node) {
                Ok(_) | Err(NotExported::Policy) => {}
                // Not a policy matter: no policy can change it.
                Err(_) => continue,
            }
            out.changes
                .extend(compare(Direction::Export, info, b, old, new));
        }
    }
    out
}

/// Runs `route` through both policies in one direction; the difference,
/// if any, with the route as the new policy leaves it (as the old one left
/// it, for a newly rejected route).
fn compare(
    direction: Direction,
    info: &PeerInfo,
    route: &Route,
    old: &NodePolicy,
    new: &NodePolicy,
) -> Option<RouteChange> {
    let mut a_old = route.attrs.clone();
    let mut a_new = route.attrs.clone();
    let before = old.decide(direction, info, &route.prefix, &mut a_old);
    let after = new.decide(direction, info, &route.prefix, &mut a_new);
    let change = match (before.is_accept(), after.is_accept()) {
        (false, true) => Change::Accepted,
        (true, false) => Change::Rejected,
        (true, true) if *a_old != *a_new => Change::Modified,
        _ => return None,
    };
    let attrs = if after.is_accept() { a_new } else { a_old };
    Some(RouteChange {
        peer: info.node,
        asn: info.asn,
        direction,
        change,
        route: Route {
            attrs,
            ..route.clone()
        },
        before,
        after,
    })
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::core::attrs::PathAttrs;
    use crate::core::decision::Step;
    use crate::core::engine::{EngineConfig, Event, PeerConfig};
    use crate::core::ids::{AgentId, Millis};
    use crate::core::policy::{DecidedBy, DefaultReason, PolicySet, Verdict};
    use crate::sim::SimNet;

    const T0: Millis = Millis(1_700_000_000_000);

    const OPEN: &str = r#"
[[policy]]
name = "tag"
  [[policy.statement]]
  name = "med"
  match = { prefix.exact = ["x/y"] }
  then = { verdict = "next", med = 7 }

[[apply]]
neighbors = ["*"]
import = ["tag"]
default-import = "accept"
default-export = "accept"
"#;

    fn id(n: u64) -> NodeId {
        NodeId::from_u64(n)
    }

    fn p(s: &str) -> Prefix {
        Prefix::new(s).unwrap()
    }

    fn policy(asn: u32, text: &str) -> NodePolicy {
        NodePolicy::new(Asn(asn), PolicySet::from_toml_str(text, "p.toml").unwrap())
    }

    fn route(prefix: &str) -> Route {
        Route::new(
            p(prefix),
            Arc::new(PathAttrs {
                agent: AgentId::new("a"),
                ..Default::default()
            }),
        )
    }

    /// A triangle 1-2-3 of three ASes, every node on `OPEN`; node 1
    /// originates x/y and x/z.
    fn triangle() -> SimNet {
        let mut net = SimNet::new(T0, 1);
        for (n, asn) in [(1, 65001), (2, 65002), (3, 65003)] {
            let e = Engine::new(EngineConfig::new(Asn(asn), id(n)))
                .with_policy(Arc::new(policy(asn, OPEN)));
            net.add_node(e);
        }
        for (a, b) in [
            ((1, 65001), (2, 65002)),
            ((2, 65002), (3, 65003)),
            ((1, 65001), (3, 65003)),
        ] {
            net.link(id(a.0), id(b.0));
            net.inject(
                id(a.0),
                Event::AddPeer(PeerConfig::new(id(b.0)).with_asn(Asn(b.1))),
            );
            net.inject(
                id(b.0),
                Event::AddPeer(PeerConfig::new(id(a.0)).with_asn(Asn(a.1))),
            );
        }
        net.inject(id(1), Event::Originate(route("x/y")));
        net.inject(id(1), Event::Originate(route("x/z")));
        net.run_for(3_000);
        net
    }

    #[test]
    fn why_names_the_step_the_loser_lost_at_and_the_statements_that_decided() {
        let mut net = triangle();
        let pol = policy(65003, OPEN);
        let e3 = net.engine_mut(&id(3)).unwrap();
        let w = why(e3, &p("x/y"), &pol);
        assert_eq!(w.paths.len(), 2);
        assert_eq!(w.paths[0].report.status, Status::Best);
        assert_eq!(w.paths[0].report.peer, Some(id(1)));
        assert_eq!(w.paths[1].report.status, Status::Lost(Step::AsPathLength));
        for path in &w.paths {
            let d = path.import.as_ref().expect("an import decision");
            assert_eq!(d.verdict, Verdict::Accept);
            assert_eq!(d.decided_by, DecidedBy::Default(DefaultReason::Configured));
            assert_eq!(path.report.route.attrs.med, 7);
        }
        // The statement set the MED on the direct path; the path through 2
        // arrived with the MED node 2's import had already set (MED crosses
        // AS borders here: it is the origin's health metric).
        assert!(w.paths[0].modified);
        assert!(!w.paths[1].modified);
        assert!(w.rejected.is_empty());
        // Node 3 advertises its best path (from 1) to 2, not back to 1.
        let to1 = w.exports.iter().find(|e| e.peer == id(1)).unwrap();
        assert_eq!(
            to1.outcome.as_ref().err(),
            Some(&NotExported::LearnedFromPeer)
        );
        let to2 = w.exports.iter().find(|e| e.peer == id(2)).unwrap();
        let sent = to2.outcome.as_ref().expect("advertised to 2");
        assert_eq!(
            sent.attrs.as_path.iter().map(|a| a.0).collect::<Vec<_>>(),
            vec![65003, 65001]
        );
        assert!(to2.decision.as_ref().is_some_and(Decision::is_accept));
        // x/z matches no statement: not modified.
        let wz = why(e3, &p("x/z"), &pol);
        assert!(wz.paths.iter().all(|p| !p.modified));
    }

    #[test]
    fn a_deny_all_dry_run_lists_every_accepted_path_and_every_export() {
        let mut net = triangle();
        let old = policy(65003, OPEN);
        let deny = policy(
            65003,
            "[[apply]]\nneighbors = [\"*\"]\ndefault-import = \"reject\"\ndefault-export = \"reject\"\n",
        );
        let e3 = net.engine_mut(&id(3)).unwrap();
        let before = e3.loc_rib();
        let run = policy_dry_run(e3, &old, &deny);
        // Two prefixes, each from both peers.
        assert_eq!(run.import_evaluated, 4);
        assert_eq!(run.count(Direction::Import, Change::Rejected), 4);
        assert_eq!(run.count(Direction::Import, Change::Accepted), 0);
        // Both best paths go to node 2 today (not to 1, where they came from).
        assert_eq!(run.count(Direction::Export, Change::Rejected), 2);
        assert!(
            run.changes
                .iter()
                .all(|c| c.after.verdict == Verdict::Reject)
        );
        // Nothing changed.
        assert_eq!(e3.loc_rib(), before);
        // The same policy changes nothing; dropping the MED statement
        // modifies x/y only.
        assert!(policy_dry_run(e3, &old, &old).changes.is_empty());
        let plain = policy(
            65003,
            "[[apply]]\nneighbors = [\"*\"]\ndefault-import = \"accept\"\ndefault-export = \"accept\"\n",
        );
        let run = policy_dry_run(e3, &old, &plain);
        // Only the direct x/y path: the one through 2 keeps node 2's MED.
        assert_eq!(run.count(Direction::Import, Change::Modified), 1);
        assert!(run.changes.iter().all(|c| c.route.prefix == p("x/y")));
        assert!(run.changes.iter().all(|c| c.route.attrs.med == 0));
    }

    #[test]
    fn a_stricter_policy_shows_what_it_would_newly_accept_from_rejected_paths() {
        let mut net = triangle();
        let deny = policy(
            65003,
            "[[apply]]\nneighbors = [\"*\"]\ndefault-import = \"reject\"\ndefault-export = \"reject\"\n",
        );
        let open = policy(65003, OPEN);
        // Run node 3 on the deny policy for real, then ask what OPEN would do.
        net.inject(id(3), Event::PolicyReloaded(Arc::new(deny.clone())));
        net.run_for(10);
        let e3 = net.engine_mut(&id(3)).unwrap();
        assert!(e3.loc_rib().is_empty());
        let w = why(e3, &p("x/y"), &deny);
        assert!(w.paths.is_empty());
        assert_eq!(w.rejected.len(), 2, "both rejected paths are explained");
        assert!(
            w.rejected
                .iter()
                .all(|r| r.decision.decided_by == DecidedBy::Default(DefaultReason::Configured))
        );
        let run = policy_dry_run(e3, &deny, &open);
        assert_eq!(run.count(Direction::Import, Change::Accepted), 4);
    }
}
