//! Aggregation: advertise a wildcard such as `coding/*` that summarises the
//! more specific routes this node holds under it, like BGP's
//! aggregate-address.
//!
//! An aggregate is active while at least one more specific Loc-RIB route sits
//! under its prefix. It is originated locally with an empty AS path and an
//! [`Aggregator`] whose AS set holds every ASN of the contributing paths, so
//! a peer that contributed sees its own ASN and rejects it as a loop. Its
//! capability tags and communities are the union of the contributors' (a
//! `confidential` contributor keeps the summary confidential); its origin
//! time is the oldest and its MED the lowest among them. With
//! `summary_only`, the more specific routes are not advertised while the
//! aggregate is active.

use std::collections::BTreeSet;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use super::super::attrs::{Aggregator, PathAttrs};
use super::super::community::Community;
use super::super::ids::{AgentId, Millis};
use super::super::prefix::Prefix;
use super::super::route::{PathId, Route, RouteKey};
use super::Engine;

/// Path id of aggregate routes, so they never collide with an agent's
/// locally originated route for the same prefix.
pub const AGGREGATE_PATH_ID: PathId = u32::MAX;

/// Agent id carried by aggregate routes.
pub const AGGREGATE_AGENT: &str = "aggregate";

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct AggregateConfig {
    /// A wildcard prefix, e.g. `coding/*`.
    pub prefix: Prefix,
    /// Advertise only the aggregate, not the more specific routes.
    #[serde(default)]
    pub summary_only: bool,
    /// Communities added to the aggregate.
    #[serde(default)]
    pub communities: Vec<Community>,
}

#[derive(Debug)]
pub(crate) struct Aggregate {
    pub cfg: AggregateConfig,
    pub active: bool,
    pub needs_recompute: bool,
    current: Option<Arc<PathAttrs>>,
}

impl Aggregate {
    pub fn new(cfg: AggregateConfig) -> Self {
        Aggregate {
            cfg,
            active: false,
            needs_recompute: true,
            current: None,
        }
    }
}

impl Engine {
    /// Brings every aggregate up to date with the Loc-RIB. Nested aggregates
    /// may trigger each other; the loop ends because each pass only reacts
    /// to changed aggregates, bounded by their number.
    pub(super) fn recompute_aggregates(&mut self) {
        for _ in 0..=self.aggregates.len() {
            let Some(i) = self.aggregates.iter().position(|a| a.needs_recompute) else {
                return;
            };
            self.aggregates[i].needs_recompute = false;
            self.recompute_aggregate(i);
        }
    }

    fn recompute_aggregate(&mut self, i: usize) {
        let prefix = self.aggregates[i].cfg.prefix.clone();
        let contributors: Vec<Arc<PathAttrs>> = self
            .rib
            .loc_index
            .covered_by(&prefix)
            .into_iter()
            .filter(|p| *p != prefix)
            .filter_map(|p| self.rib.dests.get(&p))
            .filter_map(|d| d.best())
            .map(|c| c.attrs.clone())
            .collect();
        let key = RouteKey {
            prefix: prefix.clone(),
            path_id: AGGREGATE_PATH_ID,
        };
        let was_active = self.aggregates[i].active;
        if contributors.is_empty() {
            if was_active {
                self.aggregates[i].active = false;
                self.aggregates[i].current = None;
                self.withdraw_local(key);
                self.mark_covered_dirty(&prefix);
            }
            return;
        }
        let attrs = self.aggregate_attrs(i, &contributors);
        let unchanged = self.aggregates[i]
            .current
            .as_ref()
            .is_some_and(|c| **c == attrs);
        if unchanged {
            return;
        }
        let attrs = self.interner.intern_owned(attrs);
        self.aggregates[i].current = Some(attrs.clone());
        self.aggregates[i].active = true;
        let route = Route {
            prefix: prefix.clone(),
            path_id: AGGREGATE_PATH_ID,
            attrs,
            proof: None,
        };
        self.originate(Millis(0), route);
        if !was_active && self.aggregates[i].cfg.summary_only {
            self.mark_covered_dirty(&prefix);
        }
    }

    fn aggregate_attrs(&self, i: usize, contributors: &[Arc<PathAttrs>]) -> PathAttrs {
        let cfg = &self.aggregates[i].cfg;
        let mut as_set = BTreeSet::new();
        let mut caps = BTreeSet::new();
        let mut comms: BTreeSet<Community> = cfg.communities.iter().cloned().collect();
        let mut origin_time = Millis(u64::MAX);
        let mut med = u32::MAX;
        for a in contributors {
            as_set.extend(a.as_path.iter().copied());
            if let Some(agg) = &a.aggregator {
                as_set.extend(agg.as_set.iter().copied());
            }
            caps.extend(a.capabilities.iter().cloned());
            comms.extend(a.communities.iter().cloned());
            origin_time = origin_time.min(a.origin_time);
            med = med.min(a.med);
        }
        as_set.remove(&self.cfg.asn);
        PathAttrs {
            agent: AgentId::new(AGGREGATE_AGENT),
            capabilities: caps.into_iter().collect(),
            communities: comms.into_iter().collect(),
            origin_time,
            med,
            aggregator: Some(Aggregator {
                asn: self.cfg.asn,
                node: self.cfg.node,
                as_set: as_set.into_iter().collect(),
            }),
            ..PathAttrs::default()
        }
    }

    fn mark_covered_dirty(&mut self, cover: &Prefix) {
        let covered: Vec<Prefix> = self.rib.loc_index.covered_by(cover);
        for p in covered {
            self.rib.mark_dirty(&p);
        }
    }

    /// Is this prefix hidden behind an active summary-only aggregate?
    pub(super) fn suppressed_by_aggregate(&self, prefix: &Prefix) -> bool {
        self.aggregates.iter().any(|a| {
            a.active && a.cfg.summary_only && a.cfg.prefix != *prefix && a.cfg.prefix.covers(prefix)
        })
    }
}
