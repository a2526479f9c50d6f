//! `[health]`: health as MED (docs/protocol.md, "Health as MED"): how this
//! node measures the agents it hosts, the formula's weights, the hysteresis
//! band and the minimum interval between re-advertisements; converted to
//! [`crate::core::health::HealthConfig`] for the plane.
//!
//! On by default: a steady agent keeps the base MED (its computed MED stays
//! inside the band), so a federation of healthy agents sends no extra
//! UPDATE, and a degraded one costs at most one re-advertisement per
//! `min_interval`. Turned off, every hosted route carries `base_med`.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::Problem;
use super::values;
use crate::core::health::HealthConfig;

/// The `[health]` section.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct HealthSection {
    pub enabled: bool,
    /// Time between probes (an MCP `ping`) of each hosted agent.
    #[serde(deserialize_with = "values::secs", serialize_with = "values::ser")]
    pub probe_interval: Duration,
    /// At most one change of an agent's advertised MED per interval.
    #[serde(deserialize_with = "values::secs", serialize_with = "values::ser")]
    pub min_interval: Duration,
    /// Hysteresis: the advertised MED changes only when the computed one
    /// differs by more than this percentage of it...
    pub band_percent: u32,
    /// ... and by more than this many points.
    pub band_min: u32,
    /// The MED of an agent not measured yet; the formula's floor.
    pub base_med: u32,
    /// MED points per 100 ms of smoothed latency.
    pub latency_weight: u32,
    /// MED points at a 100 % failure rate.
    pub error_weight: u32,
    /// MED points with all of an agent's call slots busy.
    pub load_weight: u32,
    pub max_med: u32,
    /// A call latency no call refreshed for this long is forgotten.
    #[serde(deserialize_with = "values::secs", serialize_with = "values::ser")]
    pub forget_after: Duration,
}

impl Default for HealthSection {
    fn default() -> Self {
        let d = HealthConfig::default();
        HealthSection {
            enabled: d.enabled,
            probe_interval: Duration::from_millis(d.probe_interval_ms),
            min_interval: Duration::from_millis(d.min_interval_ms),
            band_percent: d.band_percent,
            band_min: d.band_min,
            base_med: d.base_med,
            latency_weight: d.latency_weight,
            error_weight: d.error_weight,
            load_weight: d.load_weight,
            max_med: d.max_med,
            forget_after: Duration::from_millis(d.forget_after_ms),
        }
    }
}

fn ms(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

impl HealthSection {
    /// The plane's health settings.
    pub fn core(&self) -> HealthConfig {
        HealthConfig {
            enabled: self.enabled,
            base_med: self.base_med,
            latency_weight: self.latency_weight,
            error_weight: self.error_weight,
            load_weight: self.load_weight,
            max_med: self.max_med,
            band_percent: self.band_percent,
            band_min: self.band_min,
            min_interval_ms: ms(self.min_interval),
            probe_interval_ms: ms(self.probe_interval),
            forget_after_ms: ms(self.forget_after),
        }
    }
}

/// Shortest `probe_interval` and `min_interval`.
pub const MIN_INTERVAL: Duration = Duration::from_millis(100);

/// The problems of `[health]`, with their key paths.
pub(super) fn problems(h: &HealthSection) -> Vec<Problem> {
    let mut out = Vec::new();
    for (key, d) in [
        ("health.probe_interval", h.probe_interval),
        ("health.min_interval", h.min_interval),
        ("health.forget_after", h.forget_after),
    ] {
        if d < MIN_INTERVAL {
            out.push(Problem::new(key, "must be at least 100ms"));
        } else if d > Duration::from_secs(86_400) {
            out.push(Problem::new(key, "must be at most a day"));
        }
    }
    if h.band_percent > 100 {
        out.push(Problem::new("health.band_percent", "at most 100"));
    }
    if h.max_med < h.base_med {
        out.push(Problem::new(
            "health.max_med",
            format!("{} is below base_med ({})", h.max_med, h.base_med),
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::parse_for_test as parse;

    #[test]
    fn defaults_are_the_cores() {
        let c = parse("").unwrap();
        assert_eq!(c.health.core(), HealthConfig::default());
        assert!(c.health.enabled);
    }

    #[test]
    fn every_key_reaches_the_core() {
        let c = parse(
            "[health]\nenabled = false\nprobe_interval = \"250ms\"\nmin_interval = \"2s\"\n\
             band_percent = 5\nband_min = 3\nbase_med = 7\nlatency_weight = 1\n\
             error_weight = 2\nload_weight = 4\nmax_med = 99\nforget_after = \"1m\"\n",
        )
        .unwrap();
        let h = c.health.core();
        assert_eq!(
            h,
            HealthConfig {
                enabled: false,
                base_med: 7,
                latency_weight: 1,
                error_weight: 2,
                load_weight: 4,
                max_med: 99,
                band_percent: 5,
                band_min: 3,
                min_interval_ms: 2_000,
                probe_interval_ms: 250,
                forget_after_ms: 60_000,
            }
        );
    }

    #[test]
    fn bad_values_are_reported_with_their_keys() {
        let e = parse(
            "[health]\nprobe_interval = \"10ms\"\nmin_interval = \"2d\"\nband_percent = 101\n\
             base_med = 10\nmax_med = 5\n",
        )
        .unwrap_err();
        for key in [
            "health.probe_interval",
            "health.min_interval",
            "health.band_percent",
            "health.max_med",
        ] {
            assert!(e.contains(key), "{key} not in {e}");
        }
        assert!(parse("[health]\nnope = 1\n").is_err());
    }
}
