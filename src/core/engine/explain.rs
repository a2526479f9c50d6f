//! Explanations for operators: why a prefix's best path won and every other
//! path lost or was left out (`abgp why`), and what a new policy would
//! change if it replaced the one in force (`abgp policy check`).
//!
//! Both only read the engine and run policies on copies of the
//! attributes; nothing here changes a RIB or emits a message.

use std::sync::Arc;

use super::{Engine, NotExported, PathReport, PeerState};
use crate::core::decision::Status;
use crate::core::ids::{Asn, NodeId};
use crate::core::policy::{Decision, Direction, NodePolicy};
use crate::core::prefix::Prefix;
use crate::core::route::Route;

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

impl NotExported {
    /// The reason in words.
    pub fn describe(self) -> &'static str {
        match self {
            NotExported::SessionDown => "session not established",
            NotExported::LearnedFromPeer => "learned from this peer",
            NotExported::NoAdvertise => "NO_ADVERTISE community",
            NotExported::NoExport => "NO_EXPORT community (peer in another AS)",
            NotExported::InternalToInternal => {
                "learned from an internal peer; not reflected to another internal peer"
            }
            NotExported::PeerAsInPath => "the peer's AS is already in the AS path",
            NotExported::SuppressedByAggregate => "suppressed by an aggregate",
            NotExported::Policy => "rejected by export policy",
            NotExported::NoRoute => "no best path",
        }
    }

    /// A short stable name (JSON, scripts).
    pub fn name(self) -> &'static str {
        match self {
            NotExported::SessionDown => "session-down",
            NotExported::LearnedFromPeer => "learned-from-peer",
            NotExported::NoAdvertise => "no-advertise",
            NotExported::NoExport => "no-export",
            NotExported::InternalToInternal => "internal-to-internal",
            NotExported::PeerAsInPath => "peer-as-in-path",
            NotExported::SuppressedByAggregate => "suppressed-by-aggregate",
            NotExported::Policy => "policy",
            NotExported::NoRoute => "no-route",
        }
    }
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

impl Engine {
    /// Every path to `prefix` and why it won or lost; what import policy
    /// decided for each and what export decides for each peer. `policy`
    /// must be the policy the engine runs (for the statement names).
    pub fn why(&mut self, prefix: &Prefix, policy: &NodePolicy) -> Why {
        let reports = self.paths(prefix);
        let multipath: Vec<(Option<NodeId>, u32)> = self
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
        let peers = self.peers();
        let mut paths = Vec::with_capacity(reports.len());
        for report in reports {
            let in_set = multipath.len() > 1
                && multipath.contains(&(report.peer, report.route.path_id))
                && !matches!(report.status, Status::Excluded(_));
            let (import, modified) = match report
                .peer
                .as_ref()
                .and_then(|n| peers.iter().find(|p| p.node == *n))
            {
                Some(info) => {
                    let pre = self
                        .adj_rib_in_pre(&info.node)
                        .into_iter()
                        .find(|r| r.prefix == *prefix && r.path_id == report.route.path_id);
                    match pre {
                        Some(pre) => {
                            let mut attrs = pre.attrs.clone();
                            let d = policy.decide(Direction::Import, info, prefix, &mut attrs);
                            (Some(d), *attrs != *pre.attrs)
                        }
                        None => (None, false),
                    }
                }
                None => (None, false),
            };
            paths.push(WhyPath {
                report,
                multipath: in_set,
                import,
                modified,
            });
        }
        let mut rejected = Vec::new();
        for info in &peers {
            for r in self.adj_rib_in_pre(&info.node) {
                if r.prefix != *prefix {
                    continue;
                }
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
        let best = self.best(prefix);
        let mut exports = Vec::new();
        for info in peers.iter().filter(|p| p.state == PeerState::Established) {
            let outcome = self.export_decision(prefix, &info.node);
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

    /// What `new` would change if it replaced `old` (the policy in force):
    /// every pre-policy route of every peer re-run on import, and every
    /// best route re-run on export to every established peer. Export is
    /// judged on today's best paths: a best path the new import policy
    /// would replace is not followed further.
    pub fn policy_dry_run(&mut self, old: &NodePolicy, new: &NodePolicy) -> DryRun {
        let mut out = DryRun::default();
        let peers = self.peers();
        for info in &peers {
            for r in self.adj_rib_in_pre(&info.node) {
                out.import_evaluated += 1;
                let mut a_old = r.attrs.clone();
                let mut a_new = r.attrs.clone();
                let before = old.decide(Direction::Import, info, &r.prefix, &mut a_old);
                let after = new.decide(Direction::Import, info, &r.prefix, &mut a_new);
                let change = match (before.is_accept(), after.is_accept()) {
                    (false, true) => Some(Change::Accepted),
                    (true, false) => Some(Change::Rejected),
                    (true, true) if *a_old != *a_new => Some(Change::Modified),
                    _ => None,
                };
                if let Some(change) = change {
                    let attrs = if after.is_accept() { a_new } else { a_old };
                    out.changes.push(RouteChange {
                        peer: info.node,
                        asn: info.asn,
                        direction: Direction::Import,
                        change,
                        route: Route { attrs, ..r },
                        before,
                        after,
                    });
                }
            }
        }
        let best = self.loc_rib();
        for info in peers.iter().filter(|p| p.state == PeerState::Established) {
            for b in &best {
                out.export_evaluated += 1;
                match self.export_decision(&b.prefix, &info.node) {
                    Ok(_) | Err(NotExported::Policy) => {}
                    // Not a policy matter: no policy can change it.
                    Err(_) => continue,
                }
                let mut a_old = b.attrs.clone();
                let mut a_new = b.attrs.clone();
                let before = old.decide(Direction::Export, info, &b.prefix, &mut a_old);
                let after = new.decide(Direction::Export, info, &b.prefix, &mut a_new);
                let change = match (before.is_accept(), after.is_accept()) {
                    (false, true) => Some(Change::Accepted),
                    (true, false) => Some(Change::Rejected),
                    (true, true) if *a_old != *a_new => Some(Change::Modified),
                    _ => None,
                };
                if let Some(change) = change {
                    let attrs: Arc<_> = if after.is_accept() { a_new } else { a_old };
                    out.changes.push(RouteChange {
                        peer: info.node,
                        asn: info.asn,
                        direction: Direction::Export,
                        change,
                        route: Route { attrs, ..b.clone() },
                        before,
                        after,
                    });
                }
            }
        }
        out
    }
}
