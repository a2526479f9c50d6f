//! Route flap damping (RFC 2439) with the parameters RFC 7196 recommends:
//! a figure of merit per (peer, path) that grows with every flap and decays
//! exponentially; a path whose penalty crosses the suppress threshold is kept
//! but may not be selected until the penalty decays under the reuse
//! threshold. Time is passed in; decay is computed from the last update, and
//! the engine asks for a tick at the earliest reuse time.

use std::collections::BTreeSet;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::super::decision::Exclusion;
use super::super::ids::{Millis, NodeId};
use super::super::rib::{FastMap, PeerIdx};
use super::super::route::{Route, RouteKey};
use super::Engine;
use super::import::snapshot;

#[cfg(test)]
mod tests;

/// Damping parameters. The defaults are RFC 2439's half-life and reuse
/// threshold and maximum suppression, with RFC 7196's suppress threshold
/// of 6000 (a path must flap about six times in quick succession).
#[derive(Debug, Clone, PartialEq)]
pub struct DampingConfig {
    /// Damp paths from external peers (internal ones never are).
    pub enabled: bool,
    pub half_life: Duration,
    pub suppress: u32,
    pub reuse: u32,
    /// The longest a path stays suppressed after its last flap: the penalty
    /// is capped at `reuse * 2^(max_suppress / half_life)`.
    pub max_suppress: Duration,
    /// Added per withdrawal.
    pub withdrawal_penalty: u32,
    /// Added per re-announcement with different attributes.
    pub attribute_change_penalty: u32,
    /// Flap records kept at most (for all peers); more flapping paths go
    /// undamped (and are counted) rather than fill memory.
    pub max_entries: usize,
}

impl Default for DampingConfig {
    fn default() -> Self {
        DampingConfig {
            enabled: false,
            half_life: Duration::from_secs(15 * 60),
            suppress: 6000,
            reuse: 750,
            max_suppress: Duration::from_secs(60 * 60),
            withdrawal_penalty: 1000,
            attribute_change_penalty: 500,
            max_entries: 100_000,
        }
    }
}

impl DampingConfig {
    fn half_life_ms(&self) -> f64 {
        (self.half_life.as_millis() as f64).max(1.0)
    }

    /// The highest penalty a path can carry.
    pub fn ceiling(&self) -> f64 {
        let ratio = self.max_suppress.as_millis() as f64 / self.half_life_ms();
        // Bounded so the figure stays finite for absurd configurations.
        f64::from(self.reuse.max(1)) * ratio.min(60.0).exp2()
    }

    /// `penalty` at `from`, decayed to `now` (never negative, never more).
    pub fn decayed(&self, penalty: f64, from: Millis, now: Millis) -> f64 {
        let dt = now.0.saturating_sub(from.0) as f64;
        (penalty * (-dt / self.half_life_ms()).exp2()).max(0.0)
    }

    /// The first millisecond at or after `at` where `penalty` (as of `at`)
    /// has decayed to the reuse threshold or below.
    pub fn reuse_time(&self, penalty: f64, at: Millis) -> Millis {
        let reuse = f64::from(self.reuse);
        if penalty <= reuse {
            return at;
        }
        let est = (self.half_life_ms() * (penalty / reuse).log2()).ceil();
        let mut dt = if est.is_finite() && est > 0.0 {
            est as u64
        } else {
            0
        };
        // Float rounding: settle on the exact first millisecond.
        while dt > 0 && self.decayed(penalty, at, Millis(at.0 + dt - 1)) <= reuse {
            dt -= 1;
        }
        while self.decayed(penalty, at, Millis(at.0.saturating_add(dt))) > reuse {
            dt += 1;
        }
        Millis(at.0.saturating_add(dt))
    }
}

/// The flap record of one path from one peer.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct FlapState {
    /// The penalty as of `updated`.
    pub penalty: f64,
    pub updated: Millis,
    pub suppressed: bool,
    /// When a suppressed path becomes usable again.
    pub reuse_at: Option<Millis>,
}

impl FlapState {
    pub fn new(now: Millis) -> Self {
        FlapState {
            penalty: 0.0,
            updated: now,
            suppressed: false,
            reuse_at: None,
        }
    }

    pub fn penalty_at(&self, cfg: &DampingConfig, now: Millis) -> f64 {
        cfg.decayed(self.penalty, self.updated, now)
    }

    /// One flap at `now` adding `amount`: suppresses the path once the
    /// penalty exceeds the suppress threshold, and moves the reuse time.
    pub fn flap(&mut self, cfg: &DampingConfig, now: Millis, amount: u32) {
        self.release_if_due(now);
        let p = (self.penalty_at(cfg, now) + f64::from(amount)).min(cfg.ceiling());
        self.penalty = p;
        self.updated = now;
        if p > f64::from(cfg.suppress) {
            self.suppressed = true;
        }
        self.reuse_at = self.suppressed.then(|| cfg.reuse_time(p, now));
    }

    /// Ends the suppression when its reuse time has come.
    pub fn release_if_due(&mut self, now: Millis) {
        if self.suppressed && self.reuse_at.is_some_and(|t| t <= now) {
            self.suppressed = false;
            self.reuse_at = None;
        }
    }

    /// Nothing left worth remembering (RFC 2439: under half the reuse
    /// threshold and not suppressed).
    pub fn forgettable(&self, cfg: &DampingConfig, now: Millis) -> bool {
        !self.suppressed && self.penalty_at(cfg, now) < f64::from(cfg.reuse) / 2.0
    }
}

/// The damping state of a path as the looking glass shows it.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct DampingReport {
    /// The penalty now, rounded.
    pub penalty: u32,
    pub suppressed: bool,
    /// When a suppressed path is reused.
    pub reuse_at: Option<Millis>,
}

/// Every flap record of the engine.
#[derive(Debug, Default)]
pub(super) struct Damping {
    entries: FastMap<(NodeId, RouteKey), FlapState>,
    /// Suppressed paths by reuse time, for `next_deadline` and ticks.
    reuse: BTreeSet<(Millis, NodeId, RouteKey)>,
    /// Flaps not recorded because `max_entries` was reached.
    pub not_recorded: u64,
}

impl Damping {
    /// Records a flap; returns whether the path is now suppressed.
    fn flap(
        &mut self,
        cfg: &DampingConfig,
        now: Millis,
        node: NodeId,
        key: &RouteKey,
        amount: u32,
    ) {
        let id = (node, key.clone());
        if !self.entries.contains_key(&id) && self.entries.len() >= cfg.max_entries {
            self.entries.retain(|_, s| !s.forgettable(cfg, now));
            if self.entries.len() >= cfg.max_entries {
                self.not_recorded += 1;
                return;
            }
        }
        let st = self
            .entries
            .entry(id)
            .or_insert_with(|| FlapState::new(now));
        if let Some(t) = st.reuse_at {
            self.reuse.remove(&(t, node, key.clone()));
        }
        st.flap(cfg, now, amount);
        if let Some(t) = st.reuse_at {
            self.reuse.insert((t, node, key.clone()));
        }
    }

    fn suppressed(&self, now: Millis, node: NodeId, key: &RouteKey) -> bool {
        self.entries
            .get(&(node, key.clone()))
            .is_some_and(|s| s.suppressed && s.reuse_at.is_none_or(|t| t > now))
    }

    pub(super) fn report(
        &self,
        cfg: &DampingConfig,
        now: Millis,
        node: NodeId,
        key: &RouteKey,
    ) -> Option<DampingReport> {
        let mut s = *self.entries.get(&(node, key.clone()))?;
        s.release_if_due(now);
        Some(DampingReport {
            penalty: s.penalty_at(cfg, now).round() as u32,
            suppressed: s.suppressed,
            reuse_at: s.reuse_at,
        })
    }

    pub(super) fn next_deadline(&self) -> Option<Millis> {
        self.reuse.first().map(|(t, _, _)| *t)
    }

    /// The suppressed paths whose reuse time has come, released.
    fn due(&mut self, cfg: &DampingConfig, now: Millis) -> Vec<(NodeId, RouteKey)> {
        let mut out = Vec::new();
        while let Some((t, node, key)) = self.reuse.first().cloned() {
            if t > now {
                break;
            }
            self.reuse.pop_first();
            let id = (node, key);
            if let Some(s) = self.entries.get_mut(&id) {
                s.release_if_due(now);
                if s.forgettable(cfg, now) {
                    self.entries.remove(&id);
                }
            }
            out.push(id);
        }
        out
    }
}

impl Engine {
    /// The node behind `idx` when its paths are damped.
    fn damped_node(&self, idx: PeerIdx) -> Option<NodeId> {
        let p = self.peer(idx)?;
        (self.cfg.damping.enabled && !p.internal).then_some(p.cfg.node)
    }

    /// A withdrawal from a peer: a flap if the path was there.
    pub(super) fn damp_withdrawal(&mut self, idx: PeerIdx, key: &RouteKey) {
        let Some(node) = self.damped_node(idx) else {
            return;
        };
        let present = self
            .rib
            .dests
            .get(&key.prefix)
            .is_some_and(|d| d.find(idx, key.path_id).is_some())
            || self
                .peer(idx)
                .is_some_and(|p| p.rib.pre_policy.contains_key(key));
        if present {
            let (now, amount) = (self.now, self.cfg.damping.withdrawal_penalty);
            self.damping.flap(&self.cfg.damping, now, node, key, amount);
        }
    }

    /// An announcement from a peer: a flap if it replaces the path with
    /// different attributes (as received, before import policy).
    pub(super) fn damp_announcement(&mut self, idx: PeerIdx, route: &Route) {
        let Some(node) = self.damped_node(idx) else {
            return;
        };
        let key = route.key();
        let pre = self
            .peer(idx)
            .and_then(|p| p.rib.pre_policy.get(&key))
            .map(|p| p.attrs.clone());
        let previous = pre.or_else(|| {
            let d = self.rib.dests.get(&key.prefix)?;
            d.find(idx, key.path_id)
                .map(|i| d.candidates[i].attrs.clone())
        });
        if previous.is_some_and(|a| *a != *route.attrs) {
            let (now, amount) = (self.now, self.cfg.damping.attribute_change_penalty);
            self.damping
                .flap(&self.cfg.damping, now, node, &key, amount);
        }
    }

    /// `Some(Damped)` when the path from `idx` is suppressed.
    pub(super) fn damped(&self, idx: PeerIdx, key: &RouteKey) -> Option<Exclusion> {
        let node = self.node_of(idx)?;
        self.damping
            .suppressed(self.now, node, key)
            .then_some(Exclusion::Damped)
    }

    /// Releases the suppressed paths whose reuse time has come and re-runs
    /// the decision for them.
    pub(super) fn reuse_damped(&mut self, now: Millis) {
        for (node, key) in self.damping.due(&self.cfg.damping, now) {
            let Some(idx) = self.idx(&node) else { continue };
            let Some(dest) = self.rib.dests.get_mut(&key.prefix) else {
                continue;
            };
            let Some(i) = dest.find(idx, key.path_id) else {
                continue;
            };
            if dest.candidates[i].excluded != Some(Exclusion::Damped) {
                continue;
            }
            let old = snapshot(dest);
            dest.candidates[i].excluded = None;
            self.decide(&key.prefix, old);
        }
    }

    /// The damping state of a path from `peer`, if it has one.
    pub(super) fn damping_report(
        &self,
        peer: Option<NodeId>,
        key: &RouteKey,
    ) -> Option<DampingReport> {
        self.damping.report(&self.cfg.damping, self.now, peer?, key)
    }
}

#[cfg(test)]
mod unit {
    use super::*;
    use proptest::prelude::*;

    fn cfg() -> DampingConfig {
        DampingConfig::default()
    }

    #[test]
    fn defaults_are_rfc_7196() {
        let c = cfg();
        assert_eq!((c.suppress, c.reuse), (6000, 750));
        assert_eq!(c.half_life, Duration::from_secs(900));
        // reuse * 2^(60/15) = 12000: the cap that bounds suppression to 1 h.
        assert_eq!(c.ceiling(), 12000.0);
    }

    #[test]
    fn six_flaps_do_not_suppress_seven_do() {
        let c = cfg();
        let mut s = FlapState::new(Millis(0));
        for i in 0..6 {
            s.flap(&c, Millis(i), 1000);
        }
        assert!(!s.suppressed, "penalty {} is not over 6000", s.penalty);
        s.flap(&c, Millis(6), 1000);
        assert!(s.suppressed);
        let t = s.reuse_at.unwrap();
        // ~7000 down to 750 takes log2(7000/750) half-lives ≈ 48.3 min.
        assert!(t.0 > 48 * 60_000 && t.0 < 49 * 60_000, "{t:?}");
    }

    #[test]
    fn suppression_lasts_at_most_max_suppress_after_the_last_flap() {
        let c = cfg();
        let mut s = FlapState::new(Millis(0));
        for i in 0..100 {
            s.flap(&c, Millis(i), 1000);
        }
        assert_eq!(s.penalty, 12000.0);
        assert_eq!(s.reuse_at, Some(Millis(99 + 3_600_000)));
    }

    #[test]
    fn forgotten_under_half_the_reuse_threshold() {
        let c = cfg();
        let mut s = FlapState::new(Millis(0));
        s.flap(&c, Millis(0), 1000);
        assert!(!s.forgettable(&c, Millis(0)));
        // 1000 -> 375 after log2(1000/375) ≈ 1.415 half-lives.
        assert!(s.forgettable(&c, Millis(22 * 60_000)));
    }

    #[test]
    fn records_are_bounded() {
        let c = DampingConfig {
            max_entries: 2,
            ..cfg()
        };
        let mut d = Damping::default();
        let key = |s: &str| RouteKey {
            prefix: crate::core::prefix::Prefix::new(s).unwrap(),
            path_id: 0,
        };
        let n = NodeId::from_u64(1);
        for (i, k) in ["a/a", "b/b", "c/c"].iter().enumerate() {
            d.flap(&c, Millis(i as u64), n, &key(k), 1000);
        }
        assert_eq!((d.entries.len(), d.not_recorded), (2, 1));
        // Once the old records have decayed, new ones are taken again.
        d.flap(&c, Millis(3_600_000), n, &key("c/c"), 1000);
        assert_eq!((d.entries.len(), d.not_recorded), (1, 1));
    }

    proptest! {
        #[test]
        fn penalty_is_never_negative_and_decays_monotonically(
            p in 0.0f64..1e6, a in 0u64..10_000_000, b in 0u64..10_000_000
        ) {
            let c = cfg();
            let (lo, hi) = (a.min(b), a.max(b));
            let x = c.decayed(p, Millis(0), Millis(lo));
            let y = c.decayed(p, Millis(0), Millis(hi));
            prop_assert!(y >= 0.0);
            prop_assert!(y <= x && x <= p);
        }

        #[test]
        fn reuse_time_is_the_first_millisecond_at_or_under_reuse(
            p in 0.0f64..20_000.0, at in 0u64..1_000_000_000, half in 1u64..100_000
        ) {
            let c = DampingConfig { half_life: Duration::from_millis(half), ..cfg() };
            let t = c.reuse_time(p, Millis(at));
            let r = f64::from(c.reuse);
            prop_assert!(c.decayed(p, Millis(at), t) <= r);
            if t.0 > at {
                prop_assert!(c.decayed(p, Millis(at), Millis(t.0 - 1)) > r);
            }
        }

        #[test]
        fn flaps_never_exceed_the_ceiling(flaps in prop::collection::vec((0u64..600_000, 0u32..5000), 1..50)) {
            let c = cfg();
            let mut s = FlapState::new(Millis(0));
            let mut now = 0;
            for (dt, amount) in flaps {
                now += dt;
                s.flap(&c, Millis(now), amount);
                prop_assert!(s.penalty >= 0.0 && s.penalty <= c.ceiling());
                prop_assert_eq!(s.suppressed, s.reuse_at.is_some());
                if let Some(t) = s.reuse_at {
                    prop_assert!(t.0 <= now + c.max_suppress.as_millis() as u64);
                }
            }
        }
    }
}
