//! Health as MED: what an origin measures of each agent it hosts, the MED
//! it derives from that, and when it may re-advertise it.
//!
//! Sans-IO like the rest of the core: the plane feeds it observations
//! (a call to the agent started or ended, a probe answered or not) with the
//! time, asks which agents' advertised MED changed ([`Health::poll`]) and
//! which agents are due a probe ([`Health::probes_due`]), and wakes it at
//! [`Health::next_deadline`].
//!
//! # Measures (per agent)
//!
//! - **call latency**: EWMA of the latency of calls that ended with a
//!   result or a timeout, weight [`LATENCY_ALPHA`] per sample (a timeout
//!   counts with the time it took: at least that slow). Forgotten when no
//!   call ended for `forget_after`, so an agent that stopped getting calls
//!   (because it lost to a healthier one) is judged on its probes again.
//! - **probe latency**: EWMA of probe round trips (an MCP `ping`), weight
//!   [`LATENCY_ALPHA`].
//! - **success rate**: EWMA of 1 (a result, a probe answered) or 0 (an
//!   error, a timeout, a probe unanswered), weight [`SUCCESS_ALPHA`],
//!   starting at 1 (an agent is presumed healthy until it fails).
//! - **in flight**: calls started and not ended (those queued for one of
//!   the agent's `max_concurrent_calls` slots included).
//!
//! # The MED
//!
//! ```text
//! latency_ms = max(call latency, probe latency) in ms
//! med = min(max_med, base_med
//!                    + latency_ms * latency_weight / 100        (points per 100 ms)
//!                    + (1 - success rate) * error_weight        (points at 100 % failure)
//!                    + min(in_flight, 2 * slots) * load_weight / slots)   (points per full set of slots)
//! ```
//!
//! integer arithmetic (rounded down), computed in `u128`: no input overflows
//! it. `base_med` is the agent's configured `med` when it has one, else
//! `[health] base_med`; an agent with no observation at all has it.
//!
//! # When the advertised MED changes
//!
//! The advertised MED moves to the computed one only when both hold:
//!
//! - **hysteresis**: `|computed - advertised| > band(advertised)`, with
//!   `band(a) = max(band_min, a * band_percent / 100)`;
//! - **rate limit** (like BGP's MRAI): at least `min_interval` passed since
//!   the advertised MED last changed, or since the agent came up (its first
//!   advertisement).
//!
//! A computed MED that leaves the band inside the interval is re-checked at
//! the end of the interval ([`Health::next_deadline`]); if it came back in
//! the meantime nothing is sent. A noisy agent thus causes at most one
//! re-advertisement per `min_interval`, and none while it stays in its band.

#[cfg(test)]
mod tests;

use std::collections::BTreeMap;

use serde::Serialize;

use super::ids::{AgentId, Millis};

/// EWMA weight of a new latency sample: 1/5.
pub const LATENCY_ALPHA: (u64, u64) = (1, 5);
/// EWMA weight of a new success (1) or failure (0) sample: 1/10.
pub const SUCCESS_ALPHA: (u64, u64) = (1, 10);
/// Success rate as parts per million.
pub const PPM: u32 = 1_000_000;
/// Latencies above this (one hour) count as this.
pub const MAX_LATENCY_US: u64 = 3_600_000_000;

/// The formula's weights, the band and the timers. See the module
/// documentation; [`HealthConfig::default`] has the defaults of node.toml.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HealthConfig {
    pub enabled: bool,
    /// The MED of an agent with no observations, and the formula's floor.
    pub base_med: u32,
    /// MED points per 100 ms of smoothed latency.
    pub latency_weight: u32,
    /// MED points at a 100 % failure rate.
    pub error_weight: u32,
    /// MED points when as many calls are in flight as the agent has slots
    /// (twice that at most, with a queue as long as the slots).
    pub load_weight: u32,
    /// The computed MED never exceeds this.
    pub max_med: u32,
    /// Hysteresis band, percent of the advertised MED...
    pub band_percent: u32,
    /// ... but at least this many points.
    pub band_min: u32,
    /// At most one change of an agent's advertised MED per interval.
    pub min_interval_ms: u64,
    /// Time between probes of an agent.
    pub probe_interval_ms: u64,
    /// Call latency is forgotten when no call ended for this long.
    pub forget_after_ms: u64,
}

impl Default for HealthConfig {
    fn default() -> Self {
        HealthConfig {
            enabled: true,
            base_med: 0,
            latency_weight: 10,
            error_weight: 500,
            load_weight: 100,
            max_med: 10_000,
            band_percent: 10,
            band_min: 20,
            min_interval_ms: 30_000,
            probe_interval_ms: 10_000,
            forget_after_ms: 300_000,
        }
    }
}

/// How a call to the agent ended, for its health.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CallEnd {
    /// A result (an MCP result that is not `isError`).
    Ok,
    /// An error of the agent: a JSON-RPC error, an `isError` result, the
    /// connection lost mid-call, too many calls.
    Error,
    /// The deadline passed.
    Timeout,
    /// Ended without saying anything about the agent (cancelled by the
    /// caller, the agent went down): only the in-flight count changes.
    Neutral,
}

/// What went into a MED: the formula's inputs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Inputs {
    /// `max(call latency, probe latency)`, µs; `None`: never measured.
    pub latency_us: Option<u64>,
    /// Parts per million.
    pub success_ppm: u32,
    pub in_flight: u64,
    /// The agent's call slots (0 counts as 1).
    pub slots: u32,
}

/// The formula (see the module documentation), on `cfg.base_med`.
pub fn compute_med(cfg: &HealthConfig, i: &Inputs) -> u32 {
    compute_med_on(cfg, cfg.base_med, i)
}

/// The formula on an agent's own base MED (its configured `med`).
pub fn compute_med_on(cfg: &HealthConfig, base_med: u32, i: &Inputs) -> u32 {
    let latency_ms = u128::from(i.latency_us.unwrap_or(0).min(MAX_LATENCY_US) / 1000);
    let lat = latency_ms * u128::from(cfg.latency_weight) / 100;
    let failure = u128::from(PPM - i.success_ppm.min(PPM));
    let err = failure * u128::from(cfg.error_weight) / u128::from(PPM);
    let slots = u128::from(cfg_slots(i.slots));
    let load = u128::from(i.in_flight).min(2 * slots) * u128::from(cfg.load_weight) / slots;
    let med = u128::from(base_med) + lat + err + load;
    u32::try_from(med.min(u128::from(cfg.max_med.max(base_med)))).unwrap_or(u32::MAX)
}

fn cfg_slots(s: u32) -> u32 {
    s.max(1)
}

/// The hysteresis band around an advertised MED.
pub fn band(cfg: &HealthConfig, advertised: u32) -> u32 {
    let pct = u64::from(advertised) * u64::from(cfg.band_percent) / 100;
    u32::try_from(pct).unwrap_or(u32::MAX).max(cfg.band_min)
}

/// Whether `computed` is outside the band around `advertised`.
pub fn outside_band(cfg: &HealthConfig, advertised: u32, computed: u32) -> bool {
    computed.abs_diff(advertised) > band(cfg, advertised)
}

fn ewma(old: u64, sample: u64, (num, den): (u64, u64)) -> u64 {
    // old, sample <= MAX_LATENCY_US or PPM: no overflow in u128 anyway.
    let v = (u128::from(old) * u128::from(den - num) + u128::from(sample) * u128::from(num))
        / u128::from(den);
    u64::try_from(v).unwrap_or(u64::MAX)
}

/// One agent's health.
#[derive(Debug, Clone)]
struct Agent {
    /// Its configured MED, else `base_med`.
    base: u32,
    slots: u32,
    call_latency_us: Option<u64>,
    probe_latency_us: Option<u64>,
    success_ppm: u32,
    in_flight: u64,
    /// When a call last ended with a latency sample.
    last_call: Option<Millis>,
    observed: bool,
    advertised: u32,
    /// When the advertised MED last changed (or the agent came up).
    changed_at: Millis,
    changes: u64,
    next_probe: Millis,
    probing: bool,
    calls: u64,
    failures: u64,
    probes: u64,
    probe_failures: u64,
}

/// An agent's health as operators see it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct HealthReport {
    pub agent: AgentId,
    /// Smoothed latency of calls, ms (`null`: none recently).
    pub call_latency_ms: Option<f64>,
    /// Smoothed probe round trip, ms (`null`: no probe answered yet).
    pub probe_latency_ms: Option<f64>,
    /// Smoothed success rate, 0 to 1.
    pub success_rate: f64,
    pub in_flight: u64,
    pub slots: u32,
    pub computed_med: u32,
    pub advertised_med: u32,
    /// Times the advertised MED changed.
    pub med_changes: u64,
    /// The earliest time (ms since the epoch) the advertised MED may
    /// change again.
    pub next_change_at: u64,
    /// A change is waiting for `next_change_at` (computed outside the band).
    pub change_pending: bool,
    pub calls: u64,
    pub call_failures: u64,
    pub probes: u64,
    pub probe_failures: u64,
}

/// The health of every agent this node hosts. See the module documentation.
#[derive(Debug, Clone)]
pub struct Health {
    cfg: HealthConfig,
    agents: BTreeMap<AgentId, Agent>,
}

impl Health {
    pub fn new(cfg: HealthConfig) -> Health {
        Health {
            cfg,
            agents: BTreeMap::new(),
        }
    }

    pub fn config(&self) -> &HealthConfig {
        &self.cfg
    }

    /// The agent came up (its routes are first advertised now, with
    /// [`Health::advertised`]), with `slots` call slots and its configured
    /// MED (`None`: `base_med`). An agent already known keeps its state (a
    /// re-list of its tools).
    pub fn agent_up(&mut self, now: Millis, agent: &AgentId, slots: u32, med: Option<u32>) {
        if !self.cfg.enabled {
            return;
        }
        let base = med.unwrap_or(self.cfg.base_med);
        let first_probe = now.saturating_add_ms(self.cfg.probe_interval_ms);
        let a = self.agents.entry(agent.clone()).or_insert_with(|| Agent {
            base,
            slots,
            call_latency_us: None,
            probe_latency_us: None,
            success_ppm: PPM,
            in_flight: 0,
            last_call: None,
            observed: false,
            advertised: base,
            changed_at: now,
            changes: 0,
            next_probe: first_probe,
            probing: false,
            calls: 0,
            failures: 0,
            probes: 0,
            probe_failures: 0,
        });
        a.slots = slots;
    }

    /// The agent went down or was removed: its measures are forgotten (it
    /// starts afresh, with the base MED, when it comes back).
    pub fn agent_down(&mut self, agent: &AgentId) {
        self.agents.remove(agent);
    }

    /// The MED the agent's routes carry: for an agent not tracked (health
    /// off, or not up) its configured MED, else `base_med`.
    pub fn advertised(&self, agent: &AgentId, configured: Option<u32>) -> u32 {
        self.agents
            .get(agent)
            .map_or(configured.unwrap_or(self.cfg.base_med), |a| a.advertised)
    }

    pub fn call_started(&mut self, agent: &AgentId) {
        if let Some(a) = self.agents.get_mut(agent) {
            a.in_flight = a.in_flight.saturating_add(1);
        }
    }

    /// A call started with [`Health::call_started`] ended after
    /// `latency_us`.
    pub fn call_done(&mut self, now: Millis, agent: &AgentId, latency_us: u64, end: CallEnd) {
        let Some(a) = self.agents.get_mut(agent) else {
            return;
        };
        a.in_flight = a.in_flight.saturating_sub(1);
        let sample = latency_us.min(MAX_LATENCY_US);
        match end {
            CallEnd::Neutral => return,
            CallEnd::Ok | CallEnd::Timeout => {
                a.call_latency_us = Some(match a.call_latency_us {
                    Some(old) => ewma(old, sample, LATENCY_ALPHA),
                    None => sample,
                });
                a.last_call = Some(now);
            }
            CallEnd::Error => {}
        }
        a.observed = true;
        a.calls = a.calls.saturating_add(1);
        let ok = end == CallEnd::Ok;
        if !ok {
            a.failures = a.failures.saturating_add(1);
        }
        a.success_ppm = success(a.success_ppm, ok);
    }

    /// A probe asked for by [`Health::probes_due`] answered after
    /// `Some(round trip µs)`, or not at all (`None`).
    pub fn probe_done(&mut self, now: Millis, agent: &AgentId, rtt_us: Option<u64>) {
        let interval = self.cfg.probe_interval_ms;
        let Some(a) = self.agents.get_mut(agent) else {
            return;
        };
        a.probing = false;
        a.next_probe = now.saturating_add_ms(interval);
        a.observed = true;
        a.probes = a.probes.saturating_add(1);
        match rtt_us {
            Some(rtt) => {
                let rtt = rtt.min(MAX_LATENCY_US);
                a.probe_latency_us = Some(match a.probe_latency_us {
                    Some(old) => ewma(old, rtt, LATENCY_ALPHA),
                    None => rtt,
                });
                a.success_ppm = success(a.success_ppm, true);
            }
            None => {
                a.probe_failures = a.probe_failures.saturating_add(1);
                a.success_ppm = success(a.success_ppm, false);
            }
        }
    }

    /// A probe asked for could not be sent (the agent is not connected):
    /// nothing measured; the next one is due an interval from now.
    pub fn probe_skipped(&mut self, now: Millis, agent: &AgentId) {
        let interval = self.cfg.probe_interval_ms;
        if let Some(a) = self.agents.get_mut(agent) {
            a.probing = false;
            a.next_probe = now.saturating_add_ms(interval);
        }
    }

    /// Agents due a probe now; each is marked as being probed until its
    /// [`Health::probe_done`].
    pub fn probes_due(&mut self, now: Millis) -> Vec<AgentId> {
        if self.cfg.probe_interval_ms == 0 {
            return Vec::new();
        }
        let mut out = Vec::new();
        for (id, a) in &mut self.agents {
            if !a.probing && a.next_probe <= now {
                a.probing = true;
                out.push(id.clone());
            }
        }
        out
    }

    fn inputs(&self, a: &Agent) -> Inputs {
        Inputs {
            latency_us: match (a.call_latency_us, a.probe_latency_us) {
                (Some(x), Some(y)) => Some(x.max(y)),
                (x, y) => x.or(y),
            },
            success_ppm: a.success_ppm,
            in_flight: a.in_flight,
            slots: a.slots,
        }
    }

    fn computed(&self, a: &Agent) -> u32 {
        if !a.observed && a.in_flight == 0 {
            return a.base;
        }
        compute_med_on(&self.cfg, a.base, &self.inputs(a))
    }

    fn allowed_at(&self, a: &Agent) -> Millis {
        a.changed_at.saturating_add_ms(self.cfg.min_interval_ms)
    }

    /// Applies the passing of time (call latency forgotten) and returns the
    /// agents whose advertised MED changes now, with the new MED: their
    /// routes must be re-advertised.
    pub fn poll(&mut self, now: Millis) -> Vec<(AgentId, u32)> {
        let forget = self.cfg.forget_after_ms;
        for a in self.agents.values_mut() {
            if let Some(t) = a.last_call
                && now.saturating_sub(t) >= forget
            {
                a.call_latency_us = None;
                a.last_call = None;
            }
        }
        let mut out = Vec::new();
        let ids: Vec<AgentId> = self.agents.keys().cloned().collect();
        for id in ids {
            let Some(a) = self.agents.get(&id) else {
                continue;
            };
            let computed = self.computed(a);
            if outside_band(&self.cfg, a.advertised, computed) && now >= self.allowed_at(a) {
                if let Some(a) = self.agents.get_mut(&id) {
                    a.advertised = computed;
                    a.changed_at = now;
                    a.changes = a.changes.saturating_add(1);
                }
                out.push((id, computed));
            }
        }
        out
    }

    /// When [`Health::poll`] or [`Health::probes_due`] next has something
    /// to do without a new observation.
    pub fn next_deadline(&self) -> Option<Millis> {
        let mut next: Option<Millis> = None;
        let mut at = |t: Millis| next = Some(next.map_or(t, |n| n.min(t)));
        for a in self.agents.values() {
            if !a.probing && self.cfg.probe_interval_ms > 0 {
                at(a.next_probe);
            }
            if let Some(t) = a.last_call {
                at(t.saturating_add_ms(self.cfg.forget_after_ms));
            }
            if outside_band(&self.cfg, a.advertised, self.computed(a)) {
                at(self.allowed_at(a));
            }
        }
        next
    }

    /// Every agent's health, by agent id.
    pub fn reports(&self) -> Vec<HealthReport> {
        self.agents
            .iter()
            .map(|(id, a)| {
                let computed = self.computed(a);
                HealthReport {
                    agent: id.clone(),
                    call_latency_ms: a.call_latency_us.map(|us| us as f64 / 1000.0),
                    probe_latency_ms: a.probe_latency_us.map(|us| us as f64 / 1000.0),
                    success_rate: f64::from(a.success_ppm) / f64::from(PPM),
                    in_flight: a.in_flight,
                    slots: a.slots,
                    computed_med: computed,
                    advertised_med: a.advertised,
                    med_changes: a.changes,
                    next_change_at: self.allowed_at(a).0,
                    change_pending: outside_band(&self.cfg, a.advertised, computed),
                    calls: a.calls,
                    call_failures: a.failures,
                    probes: a.probes,
                    probe_failures: a.probe_failures,
                }
            })
            .collect()
    }

    /// One agent's health.
    pub fn report(&self, agent: &AgentId) -> Option<HealthReport> {
        self.reports().into_iter().find(|r| &r.agent == agent)
    }
}

fn success(old: u32, ok: bool) -> u32 {
    let sample = if ok { u64::from(PPM) } else { 0 };
    u32::try_from(ewma(u64::from(old.min(PPM)), sample, SUCCESS_ALPHA)).unwrap_or(PPM)
}
