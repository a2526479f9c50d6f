//! Health as MED in the plane: the hosted agents' runs and probes fed to
//! [`crate::core::health::Health`], and an agent's routes re-originated
//! with its new MED when the health module says so (the node signs them).
//!
//! ```text
//!  Deliver (a run starts)  ──> call_started
//!  LocalEvent::Done        ──> call_done (latency, ok / error / timeout)
//!  probe answered / not    ──> probe_done           ──> poll ──> Originate (same routes, new MED)
//!  tick                    ──> poll, probes_due ──> PlaneOut::probes (the node pings the agents)
//! ```

use std::sync::Arc;

use serde_json::Value as Json;

use super::{McpPlane, PlaneOut};
use crate::core::call::{CallErrorKind, CallOutcome};
use crate::core::engine::Event;
use crate::core::forward::{LocalId, Micros};
use crate::core::health::{CallEnd, HealthReport};
use crate::core::ids::AgentId;
use crate::core::route::Route;

/// What a finished run says about its agent.
pub(super) fn call_end(outcome: &CallOutcome) -> CallEnd {
    match outcome {
        CallOutcome::Ok(v) => {
            if v.get("isError").and_then(Json::as_bool) == Some(true) {
                CallEnd::Error
            } else {
                CallEnd::Ok
            }
        }
        CallOutcome::Err(e) => match e.kind {
            CallErrorKind::Timeout => CallEnd::Timeout,
            CallErrorKind::Upstream
            | CallErrorKind::UpstreamLost
            | CallErrorKind::Overloaded
            | CallErrorKind::Internal => CallEnd::Error,
            // The caller cancelled, the agent is down (withdrawn anyway),
            // or the call never reached it.
            _ => CallEnd::Neutral,
        },
    }
}

impl McpPlane {
    /// A run on a hosted agent starts.
    pub(super) fn health_run_started(&mut self, now: Micros, id: LocalId, agent: &AgentId) {
        self.health.call_started(agent);
        self.runs_started.insert(id, (agent.clone(), now));
    }

    /// A run on a hosted agent ended: measured, and the agent's routes
    /// re-originated if its MED moves.
    pub(super) fn health_run_done(
        &mut self,
        now: Micros,
        id: LocalId,
        outcome: &CallOutcome,
    ) -> Vec<Event> {
        let Some((agent, started)) = self.runs_started.remove(&id) else {
            return Vec::new();
        };
        let us = now.0.saturating_sub(started.0);
        self.health
            .call_done(now.millis(), &agent, us, call_end(outcome));
        self.health_poll(now)
    }

    /// A probe the node ran for [`PlaneOut::probes`] ended: answered after
    /// `rtt`, or not (`None`).
    pub fn on_probe(
        &mut self,
        now: Micros,
        agent: &AgentId,
        rtt: Option<std::time::Duration>,
    ) -> PlaneOut {
        let rtt_us = rtt.map(|d| u64::try_from(d.as_micros()).unwrap_or(u64::MAX));
        self.health.probe_done(now.millis(), agent, rtt_us);
        PlaneOut {
            engine: self.health_poll(now),
            ..Default::default()
        }
    }

    /// A probe could not be sent (the agent is not connected).
    pub fn probe_skipped(&mut self, now: Micros, agent: &AgentId) {
        self.health.probe_skipped(now.millis(), agent);
    }

    /// Time passed: MED changes now due, probes to run.
    pub(super) fn health_tick(&mut self, now: Micros) -> PlaneOut {
        let engine = self.health_poll(now);
        let probes = self.health.probes_due(now.millis());
        PlaneOut {
            engine,
            probes,
            ..Default::default()
        }
    }

    /// When the health module next needs a tick.
    pub(super) fn health_deadline(&self) -> Option<Micros> {
        self.health.next_deadline().map(Micros::from_millis)
    }

    /// Every hosted agent's health.
    pub fn health_reports(&self) -> Vec<HealthReport> {
        self.health.reports()
    }

    /// The agents whose advertised MED changes now: their routes again,
    /// with the new MED and their origin time kept (a MED change does not
    /// make a route look newer).
    fn health_poll(&mut self, now: Micros) -> Vec<Event> {
        let mut out = Vec::new();
        for (agent, med) in self.health.poll(now.millis()) {
            let Some(h) = self.hosted.get_mut(&agent) else {
                continue;
            };
            let before = out.len();
            for r in h.routes.values_mut() {
                if r.attrs.med == med {
                    continue;
                }
                let mut attrs = (*r.attrs).clone();
                attrs.med = med;
                *r = Route::new(r.prefix.clone(), Arc::new(attrs));
                out.push(Event::Originate(r.clone()));
            }
            let routes = out.len() - before;
            tracing::info!(%agent, med, routes, "agent health moved its MED; re-advertising");
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::call::{CallError, CallOp, CallOrigin};
    use crate::core::engine::{Engine, EngineConfig};
    use crate::core::forward::{Forwarder, FrontId};
    use crate::core::health::HealthConfig;
    use crate::core::ids::{Asn, Millis, NodeId};
    use crate::core::proof::{AsnCert, Signature};
    use crate::mcp::catalog::ToolDescriptor;
    use crate::mcp::plane::{CallSigner, FrontCall, LocalEvent, PlaneConfig};
    use crate::mcp::upstream::{AgentEvent, ServerSummary, SessionId};
    use serde_json::json;

    struct NoSigner;
    impl CallSigner for NoSigner {
        fn cert(&self) -> Option<Arc<AsnCert>> {
            None
        }
        fn sign(&self, _: &CallOrigin) -> Option<Signature> {
            None
        }
    }

    struct Nobody;
    impl crate::core::forward::CallerVerifier for Nobody {
        fn verify(
            &self,
            _: Millis,
            _: &CallOrigin,
            _: &Json,
        ) -> Result<(), crate::core::forward::CallerRefused> {
            Err(crate::core::forward::CallerRefused::Untrusted("nobody"))
        }
    }

    fn up_event() -> AgentEvent {
        AgentEvent::Up {
            agent: AgentId::new("slow"),
            session: SessionId(1),
            server: ServerSummary {
                name: None,
                version: None,
                protocol_version: "2025-11-25".into(),
                instructions: None,
            },
            tools: ["wait", "echo"]
                .map(|n| ToolDescriptor {
                    name: n.into(),
                    title: None,
                    description: None,
                    input_schema: serde_json::Map::new(),
                    output_schema: None,
                    annotations: None,
                    icons: None,
                    meta: None,
                })
                .to_vec(),
            items: Vec::new(),
        }
    }

    #[test]
    fn slow_runs_re_originate_the_agents_routes_with_a_higher_med_once_per_interval() {
        let node = NodeId::from_u64(1);
        let fwd = Forwarder::new(
            crate::core::forward::ForwardConfig::new(node, Asn(65001)),
            Box::new(Nobody),
        );
        let health = HealthConfig {
            min_interval_ms: 5_000,
            ..HealthConfig::default()
        };
        let pcfg = PlaneConfig::new(node, Asn(65001)).with_health(health);
        let mut p = McpPlane::new(pcfg, fwd, Box::new(NoSigner));
        let mut e = Engine::new(EngineConfig::new(Asn(65001), node));
        let t0 = Millis(1_700_000_000_000);
        let cfg: crate::mcp::config::AgentConfig = serde_json::from_value(json!({
            "id": "slow", "prefix": "util", "command": "unused"
        }))
        .unwrap();
        let out = p.on_agent(t0, up_event(), Some(&cfg));
        assert_eq!(out.engine.len(), 2);
        for ev in out.engine {
            let Event::Originate(r) = &ev else {
                panic!("{ev:?}")
            };
            assert_eq!(r.attrs.med, 0, "no observation yet: the base MED");
            e.handle(t0, ev);
        }
        let routes_at = |p: &McpPlane| -> Vec<(u32, Millis)> {
            p.originated()
                .map(|r| (r.attrs.med, r.attrs.origin_time))
                .collect()
        };
        let us = |ms: u64| Micros::from_millis(t0.saturating_add_ms(ms));
        p.on_routes(us(0), &e);
        let call = |id| FrontCall {
            id: FrontId(id),
            spec: crate::mcp::front::CallSpec {
                op: CallOp::Tool,
                log_level: None,
                target: crate::core::prefix::Prefix::new("util/wait").unwrap(),
                tool: Some("wait".into()),
                arguments: json!({"ms": 2000}),
                idempotent: false,
                balance: false,
                timeout: None,
                capabilities: Vec::new(),
            },
            progress: false,
        };
        // A 2 s run inside the first interval: measured, not advertised.
        let out = p.on_front_call(us(10), &e, call(1));
        let run = out.runs[0].id;
        assert_eq!(p.health_reports()[0].in_flight, 1);
        let done = |id| LocalEvent::Done {
            id,
            outcome: CallOutcome::Ok(json!({"content": []})),
        };
        let out = p.on_local(us(2_010), &e, done(run));
        assert!(out.engine.is_empty(), "{:?}", out.engine);
        let r = &p.health_reports()[0];
        assert_eq!((r.in_flight, r.computed_med, r.advertised_med), (0, 200, 0));
        assert!(r.change_pending);
        // The plane asks to be woken when the change is due, and then
        // re-originates both routes with the new MED and their origin time.
        assert_eq!(p.next_deadline(), Some(us(5_000)));
        let out = p.tick(us(5_000), &e);
        assert_eq!(out.engine.len(), 2, "{:?}", out.engine);
        for ev in &out.engine {
            let Event::Originate(r) = ev else {
                panic!("{ev:?}")
            };
            assert_eq!((r.attrs.med, r.attrs.origin_time), (200, t0));
        }
        assert_eq!(routes_at(&p), vec![(200, t0), (200, t0)]);
        // A burst of fast runs within the next interval changes nothing
        // until it ends.
        for i in 0..20 {
            let out = p.on_front_call(us(5_100 + i), &e, call(10 + i));
            let run = out.runs[0].id;
            let out = p.on_local(us(5_101 + i), &e, done(run));
            assert!(out.engine.is_empty());
        }
        assert!(p.health_reports()[0].computed_med < 10);
        assert!(p.tick(us(9_999), &e).engine.is_empty());
        let out = p.tick(us(10_000), &e);
        assert_eq!(out.engine.len(), 2);
        assert_eq!(p.health_reports()[0].med_changes, 2);
        // Down: forgotten; up again at the base MED.
        let down = AgentEvent::Down {
            agent: AgentId::new("slow"),
            reason: crate::mcp::upstream::DownReason::ConnectionClosed,
        };
        p.on_agent(t0.saturating_add_ms(11_000), down, Some(&cfg));
        assert!(p.health_reports().is_empty());
        let out = p.on_agent(t0.saturating_add_ms(12_000), up_event(), Some(&cfg));
        assert!(
            out.engine
                .iter()
                .all(|ev| matches!(ev, Event::Originate(r) if r.attrs.med == 0))
        );
    }

    #[test]
    fn probes_are_asked_for_on_ticks_and_measured() {
        let node = NodeId::from_u64(1);
        let fwd = Forwarder::new(
            crate::core::forward::ForwardConfig::new(node, Asn(65001)),
            Box::new(Nobody),
        );
        let health = HealthConfig {
            probe_interval_ms: 500,
            ..HealthConfig::default()
        };
        let pcfg = PlaneConfig::new(node, Asn(65001)).with_health(health);
        let mut p = McpPlane::new(pcfg, fwd, Box::new(NoSigner));
        let e = Engine::new(EngineConfig::new(Asn(65001), node));
        let t0 = Millis(1_000_000);
        let cfg: crate::mcp::config::AgentConfig = serde_json::from_value(json!({
            "id": "slow", "prefix": "util", "command": "unused"
        }))
        .unwrap();
        p.on_agent(t0, up_event(), Some(&cfg));
        let us = |ms: u64| Micros::from_millis(t0.saturating_add_ms(ms));
        assert_eq!(p.next_deadline(), Some(us(500)));
        assert!(p.tick(us(499), &e).probes.is_empty());
        assert_eq!(p.tick(us(500), &e).probes, vec![AgentId::new("slow")]);
        let out = p.on_probe(
            us(520),
            &AgentId::new("slow"),
            Some(std::time::Duration::from_millis(20)),
        );
        assert!(out.engine.is_empty());
        let r = &p.health_reports()[0];
        assert_eq!((r.probes, r.probe_latency_ms), (1, Some(20.0)));
        assert_eq!(p.next_deadline(), Some(us(1_020)));
    }

    #[test]
    fn outcomes_map_to_what_they_say_about_the_agent() {
        assert_eq!(
            call_end(&CallOutcome::Ok(json!({"content": []}))),
            CallEnd::Ok
        );
        assert_eq!(
            call_end(&CallOutcome::Ok(json!({"isError": true}))),
            CallEnd::Error
        );
        let err = |k| CallOutcome::Err(CallError::new(k, "x"));
        assert_eq!(call_end(&err(CallErrorKind::Timeout)), CallEnd::Timeout);
        assert_eq!(call_end(&err(CallErrorKind::Upstream)), CallEnd::Error);
        assert_eq!(call_end(&err(CallErrorKind::UpstreamLost)), CallEnd::Error);
        assert_eq!(call_end(&err(CallErrorKind::Cancelled)), CallEnd::Neutral);
        assert_eq!(call_end(&err(CallErrorKind::AgentDown)), CallEnd::Neutral);
    }
}
