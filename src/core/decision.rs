//! The decision process: which of several paths to one prefix is best, and
//! why every other path lost or was excluded.
//!
//! Paths are first checked for eligibility (loops are excluded, not merely
//! ranked low). Eligible paths are then ordered by [`Step`]s, in this order:
//!
//! 1. [`Step::LocalPref`]: highest local preference.
//! 2. [`Step::LocallyOriginated`]: a path this node originated beats a learned one.
//! 3. [`Step::AsPathLength`]: shortest AS path (an aggregate's AS set counts one).
//! 4. [`Step::Med`]: lowest MED, compared as [`MedMode`] says. MED is the
//!    origin's measured health (`core::health`), banded and rate-limited
//!    there, so a degraded agent loses to a healthy one whatever their ages.
//! 5. [`Step::OriginTime`]: oldest origin time (a long-lived agent over a new one).
//! 6. [`Step::Internal`]: a path learned inside our AS beats one from another AS.
//! 7. [`Step::Capabilities`]: the path whose agent advertises more capability tags.
//! 8. [`Step::ClusterListLength`]: shortest cluster list (RFC 4456).
//! 9. [`Step::OriginatorId`]: lowest originator id (the reflector-set originator,
//!    else the advertising peer's node id).
//! 10. [`Step::PeerId`]: lowest advertising peer id (locally originated first).
//! 11. [`Step::PathId`]: lowest path id.
//!
//! The last two make the order total: two nodes given the same paths choose
//! the same best path regardless of arrival order.

use std::cmp::Ordering;

use serde::{Deserialize, Serialize};

use super::attrs::PathAttrs;
use super::ids::{Asn, ClusterId, NodeId};

/// How a path reached this node.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Learned {
    /// Originated here (an agent, a static route, an aggregate).
    Local,
    /// From a peer in our AS.
    Internal,
    /// From a peer in another AS.
    External,
}

/// Where MED is comparable.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum MedMode {
    /// Compare MED between any two paths (the default). For agents MED is
    /// the origin's health metric, so a healthier agent in another AS should
    /// win over a sicker one, whichever AS it sits in.
    #[default]
    Always,
    /// Compare MED only between paths from the same neighbouring AS, as
    /// classic BGP does. Paths are grouped by neighbour AS and the best of
    /// each group competes without MED ("deterministic MED"), so the result
    /// does not depend on the order paths arrived in.
    SameNeighborAs,
}

/// A step of the decision process; also the reason a path lost at it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Step {
    LocalPref,
    LocallyOriginated,
    AsPathLength,
    Med,
    OriginTime,
    Internal,
    Capabilities,
    ClusterListLength,
    OriginatorId,
    PeerId,
    PathId,
}

impl Step {
    /// Why a path lost at this step, in words.
    pub fn describe_loss(self) -> &'static str {
        match self {
            Step::LocalPref => "lower local preference",
            Step::LocallyOriginated => "learned, and the best path is locally originated",
            Step::AsPathLength => "longer AS path",
            Step::OriginTime => "newer origin time",
            Step::Med => "higher MED",
            Step::Internal => "external, and the best path is internal",
            Step::Capabilities => "fewer capability tags",
            Step::ClusterListLength => "longer cluster list",
            Step::OriginatorId => "higher originator id",
            Step::PeerId => "higher peer id",
            Step::PathId => "higher path id",
        }
    }
}

/// Why a path is not eligible at all.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Exclusion {
    /// Our own ASN is in the AS path: the route looped back.
    AsPathLoop,
    /// Our cluster id is in the cluster list: reflected back to us.
    ClusterLoop,
    /// The originator id is our own node id.
    OriginatorIsUs,
    /// Kept from a peer that went away during graceful restart; used only
    /// when nothing fresh exists.
    Stale,
    /// Suppressed by route flap damping until its penalty decays.
    Damped,
    /// A route leak by the only-to-customer rules (RFC 9234): marked for
    /// customers only, yet it came from a customer, or from a lateral peer
    /// that did not mark it itself.
    RouteLeak,
    /// An AS on its path said, with the unreachable signal, that it has no
    /// route to the prefix any more: the path is stale, and is not used
    /// until that AS announces the prefix again or the claim expires.
    Unreachable,
    /// The origin withdrew this origination with a signed tombstone: the
    /// path is dead, and is not used until the origin announces a newer
    /// origination or the tombstone expires.
    Tombstoned,
}

impl Exclusion {
    pub fn describe(self) -> &'static str {
        match self {
            Exclusion::AsPathLoop => "AS path contains our ASN (loop)",
            Exclusion::ClusterLoop => "cluster list contains our cluster id (reflection loop)",
            Exclusion::OriginatorIsUs => "originator id is this node",
            Exclusion::Stale => "stale (peer restarting)",
            Exclusion::Damped => "suppressed by flap damping (flapped too often)",
            Exclusion::RouteLeak => {
                "route leak: marked only-to-customer, yet received from a customer or another AS's lateral peer"
            }
            Exclusion::Unreachable => "an AS on the path said it has no route any more (stale)",
            Exclusion::Tombstoned => "the origin withdrew this origination (signed tombstone)",
        }
    }

    /// Decided by the engine from where the path came (damping, the
    /// neighbour's role), not by the path's attributes: the decision
    /// process cannot recompute it, so such paths never compete.
    pub fn by_engine(self) -> bool {
        matches!(
            self,
            Exclusion::Damped
                | Exclusion::RouteLeak
                | Exclusion::Unreachable
                | Exclusion::Tombstoned
        )
    }
}

/// The outcome of selection for one path.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", tag = "status", content = "reason")]
pub enum Status {
    Best,
    /// Lost to the best path at this step.
    Lost(Step),
    Excluded(Exclusion),
}

/// The node-wide settings the decision process depends on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DecisionConfig {
    pub local_asn: Asn,
    pub local_node: NodeId,
    pub cluster_id: Option<ClusterId>,
    pub med: MedMode,
}

/// What the decision process reads of one path.
#[derive(Debug, Clone, Copy)]
pub struct PathView<'a> {
    pub attrs: &'a PathAttrs,
    pub learned: Learned,
    /// The advertising peer; `None` for locally originated paths.
    pub peer: Option<&'a NodeId>,
    pub path_id: u32,
    pub stale: bool,
}

impl PathView<'_> {
    fn originator(&self, cfg: &DecisionConfig) -> NodeId {
        self.attrs
            .originator
            .or(self.peer.copied())
            .unwrap_or(cfg.local_node)
    }
}

/// Checks whether a path may take part in selection at all.
pub fn eligibility(cfg: &DecisionConfig, p: &PathView<'_>) -> Result<(), Exclusion> {
    if p.learned != Learned::Local && p.attrs.path_contains(cfg.local_asn) {
        return Err(Exclusion::AsPathLoop);
    }
    if let Some(c) = cfg.cluster_id
        && p.attrs.cluster_list.contains(&c)
    {
        return Err(Exclusion::ClusterLoop);
    }
    if p.learned != Learned::Local && p.attrs.originator == Some(cfg.local_node) {
        return Err(Exclusion::OriginatorIsUs);
    }
    Ok(())
}

/// Orders two eligible paths. `Less` means `a` is preferred; the step says
/// where they first differed. `compare_med` is false when MED must be skipped.
pub fn compare(
    cfg: &DecisionConfig,
    a: &PathView<'_>,
    b: &PathView<'_>,
    compare_med: bool,
) -> (Ordering, Step) {
    macro_rules! step {
        ($step:expr, $ord:expr) => {
            let o = $ord;
            if o != Ordering::Equal {
                return (o, $step);
            }
        };
    }
    let (x, y) = (a.attrs, b.attrs);
    step!(Step::LocalPref, y.local_pref.cmp(&x.local_pref));
    step!(
        Step::LocallyOriginated,
        (b.learned == Learned::Local).cmp(&(a.learned == Learned::Local))
    );
    step!(Step::AsPathLength, x.path_len().cmp(&y.path_len()));
    if compare_med {
        step!(Step::Med, x.med.cmp(&y.med));
    }
    step!(Step::OriginTime, x.origin_time.cmp(&y.origin_time));
    step!(
        Step::Internal,
        (b.learned == Learned::Internal).cmp(&(a.learned == Learned::Internal))
    );
    step!(
        Step::Capabilities,
        y.capabilities.len().cmp(&x.capabilities.len())
    );
    step!(
        Step::ClusterListLength,
        x.cluster_list.len().cmp(&y.cluster_list.len())
    );
    step!(
        Step::OriginatorId,
        a.originator(cfg).cmp(&b.originator(cfg))
    );
    // `None` (local) sorts before any peer.
    step!(Step::PeerId, a.peer.cmp(&b.peer));
    (a.path_id.cmp(&b.path_id), Step::PathId)
}

fn med_comparable(cfg: &DecisionConfig, a: &PathView<'_>, b: &PathView<'_>) -> bool {
    match cfg.med {
        MedMode::Always => true,
        MedMode::SameNeighborAs => a.attrs.neighbor_asn() == b.attrs.neighbor_asn(),
    }
}

/// The best path's index, without explaining the others: what the engine
/// runs on every update. Agrees with [`select`] (property-tested).
pub fn best_index(cfg: &DecisionConfig, paths: &[PathView<'_>]) -> Option<usize> {
    if cfg.med == MedMode::Always {
        return best_of(cfg, paths, |p| eligibility(cfg, p).is_ok());
    }
    let mut st = Vec::with_capacity(paths.len());
    select(cfg, paths, &mut st)
}

/// [`best_index`] for paths the caller has already checked with
/// [`eligibility`] (the engine does it once, when a path arrives).
pub fn best_index_of_eligible(cfg: &DecisionConfig, paths: &[PathView<'_>]) -> Option<usize> {
    if cfg.med == MedMode::Always {
        return best_of(cfg, paths, |_| true);
    }
    let mut st = Vec::with_capacity(paths.len());
    select(cfg, paths, &mut st)
}

/// One pass: the best fresh path, and the best stale one in case there is
/// no fresh path at all.
fn best_of(
    cfg: &DecisionConfig,
    paths: &[PathView<'_>],
    eligible: impl Fn(&PathView<'_>) -> bool,
) -> Option<usize> {
    let mut fresh: Option<usize> = None;
    let mut stale: Option<usize> = None;
    for (i, p) in paths.iter().enumerate() {
        if !eligible(p) {
            continue;
        }
        let slot = if p.stale { &mut stale } else { &mut fresh };
        *slot = match *slot {
            Some(b) if compare(cfg, &paths[b], p, true).0 == Ordering::Less => Some(b),
            _ => Some(i),
        };
    }
    fresh.or(stale)
}

/// Runs selection over all paths to one prefix. Returns the index of the best
/// path (if any is eligible) and writes a status for every path.
///
/// Stale paths compete only when no fresh eligible path exists.
pub fn select(
    cfg: &DecisionConfig,
    paths: &[PathView<'_>],
    status: &mut Vec<Status>,
) -> Option<usize> {
    status.clear();
    status.extend(paths.iter().map(|p| match eligibility(cfg, p) {
        Ok(()) => Status::Best,
        Err(e) => Status::Excluded(e),
    }));
    let any_fresh = paths
        .iter()
        .zip(status.iter())
        .any(|(p, s)| *s == Status::Best && !p.stale);
    if any_fresh {
        for (p, s) in paths.iter().zip(status.iter_mut()) {
            if p.stale && *s == Status::Best {
                *s = Status::Excluded(Exclusion::Stale);
            }
        }
    }
    let eligible = |i: &usize| status[*i] == Status::Best;
    let best = match cfg.med {
        MedMode::Always => (0..paths.len())
            .filter(eligible)
            .min_by(|&i, &j| compare(cfg, &paths[i], &paths[j], true).0),
        MedMode::SameNeighborAs => {
            // Best of each neighbour-AS group (MED counts inside a group),
            // then the group winners compete without MED.
            let mut winners: Vec<usize> = Vec::new();
            for i in (0..paths.len()).filter(eligible) {
                let n = paths[i].attrs.neighbor_asn();
                match winners
                    .iter_mut()
                    .find(|w| paths[**w].attrs.neighbor_asn() == n)
                {
                    Some(w) => {
                        if compare(cfg, &paths[i], &paths[*w], true).0 == Ordering::Less {
                            *w = i;
                        }
                    }
                    None => winners.push(i),
                }
            }
            winners
                .into_iter()
                .min_by(|&i, &j| compare(cfg, &paths[i], &paths[j], false).0)
        }
    };
    if let Some(b) = best {
        for i in 0..paths.len() {
            if i != b && status[i] == Status::Best {
                let med = med_comparable(cfg, &paths[b], &paths[i]);
                let (_, step) = compare(cfg, &paths[b], &paths[i], med);
                status[i] = Status::Lost(step);
            }
        }
    }
    best
}

/// Paths equal to the best one up to and including [`Step::Capabilities`]:
/// the candidates for multipath load balancing. The best path comes first.
pub fn multipath(
    cfg: &DecisionConfig,
    paths: &[PathView<'_>],
    status: &[Status],
    best: usize,
) -> Vec<usize> {
    let mut out = vec![best];
    for (i, s) in status.iter().enumerate() {
        if let Status::Lost(step) = s {
            let tie_break = matches!(
                step,
                Step::ClusterListLength | Step::OriginatorId | Step::PeerId | Step::PathId
            );
            if tie_break && med_comparable(cfg, &paths[best], &paths[i]) {
                out.push(i);
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::ids::Millis;
    use proptest::prelude::*;

    fn cfg() -> DecisionConfig {
        DecisionConfig {
            local_asn: Asn(65000),
            local_node: NodeId::from_u64(1000),
            cluster_id: Some(ClusterId(7)),
            med: MedMode::Always,
        }
    }

    /// A node id that lives for the whole test run (views borrow ids).
    fn nid(n: u64) -> &'static NodeId {
        Box::leak(Box::new(NodeId::from_u64(n)))
    }

    fn ext(attrs: &PathAttrs, peer: u64) -> PathView<'_> {
        PathView {
            attrs,
            learned: Learned::External,
            peer: Some(nid(peer)),
            path_id: 0,
            stale: false,
        }
    }

    fn attrs(path: &[u32]) -> PathAttrs {
        PathAttrs {
            as_path: path.iter().map(|a| Asn(*a)).collect(),
            ..Default::default()
        }
    }

    fn run(paths: &[PathView<'_>]) -> (Option<usize>, Vec<Status>) {
        let mut st = Vec::new();
        let b = select(&cfg(), paths, &mut st);
        (b, st)
    }

    #[test]
    fn higher_local_pref_beats_shorter_path() {
        let a = PathAttrs {
            local_pref: 200,
            ..attrs(&[1, 2, 3])
        };
        let b = attrs(&[1]);
        let (best, st) = run(&[ext(&b, 1), ext(&a, 2)]);
        assert_eq!(best, Some(1));
        assert_eq!(st[0], Status::Lost(Step::LocalPref));
    }

    #[test]
    fn locally_originated_beats_learned_at_equal_local_pref() {
        let local = attrs(&[]);
        let learned = attrs(&[]);
        let paths = [
            PathView {
                learned: Learned::Internal,
                ..ext(&learned, 1)
            },
            PathView {
                attrs: &local,
                learned: Learned::Local,
                peer: None,
                path_id: 0,
                stale: false,
            },
        ];
        let (best, st) = run(&paths);
        assert_eq!(best, Some(1));
        assert_eq!(st[0], Status::Lost(Step::LocallyOriginated));
    }

    #[test]
    fn shorter_as_path_wins() {
        let (a, b) = (attrs(&[1, 2]), attrs(&[3]));
        let (best, st) = run(&[ext(&a, 1), ext(&b, 2)]);
        assert_eq!(best, Some(1));
        assert_eq!(st[0], Status::Lost(Step::AsPathLength));
    }

    #[test]
    fn lower_med_wins_over_older_origin_time() {
        // Health as MED: the healthier agent wins, however new it is.
        let a = PathAttrs {
            origin_time: Millis(10),
            med: 50,
            ..attrs(&[1])
        };
        let b = PathAttrs {
            origin_time: Millis(5),
            med: 90,
            ..attrs(&[2])
        };
        let (best, st) = run(&[ext(&a, 1), ext(&b, 2)]);
        assert_eq!(best, Some(0));
        assert_eq!(st[1], Status::Lost(Step::Med));
        // With equal MEDs the older one wins.
        let b = PathAttrs { med: 50, ..b };
        let (best, st) = run(&[ext(&a, 1), ext(&b, 2)]);
        assert_eq!(best, Some(1));
        assert_eq!(st[0], Status::Lost(Step::OriginTime));
    }

    #[test]
    fn lower_med_wins_across_neighbour_ases_by_default() {
        let a = PathAttrs {
            med: 50,
            ..attrs(&[1])
        };
        let b = PathAttrs {
            med: 10,
            ..attrs(&[2])
        };
        let (best, st) = run(&[ext(&a, 1), ext(&b, 2)]);
        assert_eq!(best, Some(1));
        assert_eq!(st[0], Status::Lost(Step::Med));
    }

    #[test]
    fn med_is_ignored_across_neighbour_ases_in_same_neighbor_mode() {
        let mut c = cfg();
        c.med = MedMode::SameNeighborAs;
        let a = PathAttrs {
            med: 50,
            ..attrs(&[1])
        };
        let b = PathAttrs {
            med: 10,
            ..attrs(&[2])
        };
        let mut st = Vec::new();
        // Falls through to the router id (the advertising peer's, as no
        // originator is set): peer 1 wins despite its higher MED.
        let best = select(&c, &[ext(&a, 1), ext(&b, 2)], &mut st);
        assert_eq!(best, Some(0));
        assert_eq!(st[1], Status::Lost(Step::OriginatorId));
    }

    #[test]
    fn deterministic_med_does_not_depend_on_arrival_order() {
        // The classic MED cycle: A and C share neighbour AS 1, B is from AS 2.
        let mut c = cfg();
        c.med = MedMode::SameNeighborAs;
        let a = PathAttrs {
            med: 20,
            ..attrs(&[1])
        };
        let b = PathAttrs {
            med: 0,
            ..attrs(&[2])
        };
        let cc = PathAttrs {
            med: 10,
            ..attrs(&[1])
        };
        let views = [ext(&a, 3), ext(&b, 2), ext(&cc, 1)];
        let mut winners = std::collections::HashSet::new();
        for perm in [
            [0, 1, 2],
            [0, 2, 1],
            [1, 0, 2],
            [1, 2, 0],
            [2, 0, 1],
            [2, 1, 0],
        ] {
            let ps: Vec<PathView<'_>> = perm.iter().map(|i| views[*i]).collect();
            let mut st = Vec::new();
            let b = select(&c, &ps, &mut st).unwrap();
            winners.insert(ps[b].peer);
        }
        assert_eq!(winners.len(), 1);
    }

    #[test]
    fn internal_beats_external_when_earlier_steps_tie() {
        let (a, b) = (attrs(&[1]), attrs(&[1]));
        let paths = [
            ext(&a, 1),
            PathView {
                learned: Learned::Internal,
                ..ext(&b, 2)
            },
        ];
        let (best, st) = run(&paths);
        assert_eq!(best, Some(1));
        assert_eq!(st[0], Status::Lost(Step::Internal));
    }

    #[test]
    fn more_capability_tags_win_when_earlier_steps_tie() {
        let a = attrs(&[1]).with_capabilities(["x"]);
        let b = attrs(&[1]).with_capabilities(["x", "y"]);
        let (best, st) = run(&[ext(&a, 1), ext(&b, 2)]);
        assert_eq!(best, Some(1));
        assert_eq!(st[0], Status::Lost(Step::Capabilities));
    }

    #[test]
    fn shorter_cluster_list_then_lowest_originator_then_peer_break_ties() {
        let a = PathAttrs {
            cluster_list: vec![ClusterId(1), ClusterId(2)],
            ..attrs(&[])
        };
        let b = PathAttrs {
            cluster_list: vec![ClusterId(1)],
            ..attrs(&[])
        };
        let (best, st) = run(&[ext(&a, 1), ext(&b, 2)]);
        assert_eq!(
            (best, st[0]),
            (Some(1), Status::Lost(Step::ClusterListLength))
        );

        let a = PathAttrs {
            originator: Some(NodeId::from_u64(9)),
            ..attrs(&[])
        };
        let b = PathAttrs {
            originator: Some(NodeId::from_u64(8)),
            ..attrs(&[])
        };
        let (best, st) = run(&[ext(&a, 1), ext(&b, 2)]);
        assert_eq!((best, st[0]), (Some(1), Status::Lost(Step::OriginatorId)));

        let a = attrs(&[]);
        let paths = [
            PathView {
                path_id: 2,
                ..ext(&a, 5)
            },
            PathView {
                path_id: 1,
                ..ext(&a, 5)
            },
        ];
        let (best, st) = run(&paths);
        assert_eq!((best, st[0]), (Some(1), Status::Lost(Step::PathId)));
    }

    #[test]
    fn loops_are_excluded_not_ranked() {
        let looped = PathAttrs {
            local_pref: 1000,
            ..attrs(&[1, 65000, 2])
        };
        let cluster = PathAttrs {
            cluster_list: vec![ClusterId(7)],
            ..attrs(&[])
        };
        let mine = PathAttrs {
            originator: Some(NodeId::from_u64(1000)),
            ..attrs(&[])
        };
        let ok = attrs(&[1, 2, 3, 4]);
        let (best, st) = run(&[
            ext(&looped, 1),
            ext(&cluster, 2),
            ext(&mine, 3),
            ext(&ok, 4),
        ]);
        assert_eq!(best, Some(3));
        assert_eq!(st[0], Status::Excluded(Exclusion::AsPathLoop));
        assert_eq!(st[1], Status::Excluded(Exclusion::ClusterLoop));
        assert_eq!(st[2], Status::Excluded(Exclusion::OriginatorIsUs));
    }

    #[test]
    fn only_looped_paths_means_no_best() {
        let looped = attrs(&[65000]);
        let (best, st) = run(&[ext(&looped, 1)]);
        assert_eq!(best, None);
        assert_eq!(st[0], Status::Excluded(Exclusion::AsPathLoop));
    }

    #[test]
    fn stale_paths_are_used_only_without_a_fresh_one() {
        let a = attrs(&[1]);
        let b = attrs(&[1, 2, 3]);
        let stale = PathView {
            stale: true,
            ..ext(&a, 1)
        };
        let (best, st) = run(&[stale, ext(&b, 2)]);
        assert_eq!(best, Some(1));
        assert_eq!(st[0], Status::Excluded(Exclusion::Stale));
        let (best, _) = run(&[stale]);
        assert_eq!(best, Some(0));
    }

    #[test]
    fn multipath_collects_paths_tied_before_tie_breaks() {
        let a = attrs(&[1]);
        let b = attrs(&[2]);
        let c = attrs(&[2, 3]);
        let paths = [ext(&a, 1), ext(&b, 2), ext(&c, 3)];
        let (best, st) = run(&paths);
        let mp = multipath(&cfg(), &paths, &st, best.unwrap());
        assert_eq!(mp, vec![0, 1]);
    }

    fn arb_attrs() -> impl Strategy<Value = PathAttrs> {
        (
            prop::sample::select(vec![100u32, 150]),
            prop::collection::vec(prop::sample::select(vec![1u32, 2, 3, 65000]), 0..3),
            0u64..3,
            prop::sample::select(vec![0u32, 10]),
            prop::collection::vec(prop::sample::select(vec!["a", "b"]), 0..2),
            prop::option::of(0u64..3),
        )
            .prop_map(|(lp, path, t, med, caps, orig)| {
                PathAttrs {
                    local_pref: lp,
                    as_path: path.into_iter().map(Asn).collect(),
                    origin_time: Millis(t),
                    med,
                    originator: orig.map(NodeId::from_u64),
                    ..Default::default()
                }
                .with_capabilities(caps)
            })
    }

    proptest! {
        #[test]
        fn best_does_not_depend_on_arrival_order(
            set in prop::collection::vec((arb_attrs(), 0u8..3), 1..8),
            shuffle_seed in any::<u64>(),
            same_neighbor in any::<bool>(),
        ) {
            let mut c = cfg();
            if same_neighbor { c.med = MedMode::SameNeighborAs; }
            let views: Vec<PathView<'_>> = set.iter().enumerate().map(|(i, (a, l))| PathView {
                attrs: a,
                learned: match l { 0 => Learned::Local, 1 => Learned::Internal, _ => Learned::External },
                peer: if *l == 0 { None } else { Some(nid(i as u64)) },
                path_id: i as u32,
                stale: false,
            }).collect();
            let mut shuffled = views.clone();
            let mut s = shuffle_seed;
            for i in (1..shuffled.len()).rev() {
                s = s.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
                shuffled.swap(i, (s >> 33) as usize % (i + 1));
            }
            let mut st1 = Vec::new();
            let mut st2 = Vec::new();
            let b1 = select(&c, &views, &mut st1).map(|i| (views[i].peer, views[i].path_id));
            let b2 = select(&c, &shuffled, &mut st2).map(|i| (shuffled[i].peer, shuffled[i].path_id));
            prop_assert_eq!(b1, b2);
        }

        #[test]
        fn best_index_agrees_with_select(
            set in prop::collection::vec((arb_attrs(), 0u8..3, any::<bool>()), 1..8),
            same_neighbor in any::<bool>(),
        ) {
            let mut c = cfg();
            if same_neighbor { c.med = MedMode::SameNeighborAs; }
            let views: Vec<PathView<'_>> = set.iter().enumerate().map(|(i, (a, l, stale))| PathView {
                attrs: a,
                learned: match l { 0 => Learned::Local, 1 => Learned::Internal, _ => Learned::External },
                peer: if *l == 0 { None } else { Some(nid(i as u64)) },
                path_id: i as u32,
                stale: *stale,
            }).collect();
            let mut st = Vec::new();
            prop_assert_eq!(best_index(&c, &views), select(&c, &views, &mut st));
        }

        #[test]
        fn compare_is_antisymmetric_and_total(a in arb_attrs(), b in arb_attrs(), p in 0u64..3, q in 0u64..3) {
            let c = cfg();
            let (x, y) = (ext(&a, p), PathView { path_id: 1, ..ext(&b, q) });
            let (o1, s1) = compare(&c, &x, &y, true);
            let (o2, s2) = compare(&c, &y, &x, true);
            prop_assert_eq!(o1, o2.reverse());
            prop_assert_eq!(s1, s2);
            prop_assert_ne!(o1, Ordering::Equal);
        }

        #[test]
        fn every_non_best_path_has_a_reason(set in prop::collection::vec(arb_attrs(), 1..8)) {
            let views: Vec<PathView<'_>> = set.iter().enumerate().map(|(i, a)| ext(a, i as u64)).collect();
            let mut st = Vec::new();
            let best = select(&cfg(), &views, &mut st);
            let bests = st.iter().filter(|s| **s == Status::Best).count();
            prop_assert_eq!(bests, usize::from(best.is_some()));
            if let Some(b) = best {
                for (i, s) in st.iter().enumerate() {
                    if let Status::Lost(step) = s {
                        let (o, why) = compare(&cfg(), &views[b], &views[i], true);
                        prop_assert_eq!(o, Ordering::Less);
                        prop_assert_eq!(why, *step);
                    }
                }
            }
        }
    }
}
