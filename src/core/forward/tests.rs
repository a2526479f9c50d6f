//! Forwarding behaviour over real engines: routes are exchanged on the
//! simulator, then calls travel between the nodes' forwarders through a
//! message queue that stands in for the call protocol.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::Arc;

use serde_json::json;

use super::*;
use crate::core::access::{AccessAction, AccessRuleConfig, AsnSpec};
use crate::core::attrs::AttrValue;
use crate::core::attrs::{ExtraAttr, PathAttrs};
use crate::core::call::{
    Call, CallAnswer, CallError, CallErrorKind, CallId, CallOp, CallOrigin, CallOutcome,
    CallReturn, LegId, Progress, ProgressInfo, TOOL_ATTR,
};
use crate::core::engine::Engine;
use crate::core::engine::{AcceptAll, Event, PeerConfig};
use crate::core::engine::{EngineConfig, PeerState};
use crate::core::ids::{AgentId, Asn, Millis, NodeId};
use crate::core::prefix::Prefix;
use crate::core::route::Route;
use crate::sim::SimNet;
use retry::MAX_RETRIES;
use serde_json::Value as Json;

/// Unsigned simulator links carry no signatures; this verifier accepts
/// exactly those and refuses anything claiming one it cannot check.
struct UnsignedOnly;

impl CallerVerifier for UnsignedOnly {
    fn verify(&self, _: Millis, origin: &CallOrigin, _: &Json) -> Result<(), CallerRefused> {
        match origin.signature {
            None => Ok(()),
            Some(_) => Err(CallerRefused::Untrusted(
                "this test verifier cannot check signatures",
            )),
        }
    }
}

/// Refuses every caller, as a trust store that knows none would.
struct TrustsNobody;

impl CallerVerifier for TrustsNobody {
    fn verify(&self, _: Millis, o: &CallOrigin, _: &Json) -> Result<(), CallerRefused> {
        Err(CallerRefused::Certificate(format!(
            "no trust anchor for {}",
            o.caller_asn
        )))
    }
}

const T0: Millis = Millis(1_700_000_000_000);
const A: u64 = 1;
const B: u64 = 2;
const C: u64 = 3;
const D: u64 = 4;

fn id(n: u64) -> NodeId {
    NodeId::from_u64(n)
}

fn asn(n: u64) -> Asn {
    Asn(65000 + n as u32)
}

fn p(s: &str) -> Prefix {
    Prefix::new(s).unwrap()
}

fn tool_route(prefix: &str, agent: &str, tool: &str) -> Route {
    let mut a = PathAttrs {
        agent: AgentId::new(agent),
        ..Default::default()
    };
    a.extra.insert(
        TOOL_ATTR.into(),
        ExtraAttr {
            transitive: true,
            value: AttrValue::Text(tool.into()),
        },
    );
    Route::new(p(prefix), Arc::new(a))
}

/// Nodes and their forwarders, with a queue of call events between them.
struct Rig {
    sim: SimNet,
    fwd: BTreeMap<NodeId, Forwarder>,
    inbox: VecDeque<(NodeId, CallEvent)>,
    done: Vec<(NodeId, FrontId, CallReturn)>,
    progress: Vec<(NodeId, FrontId, ProgressInfo)>,
    /// Side-channel actions that stay at a node (front and local ends).
    side: Vec<(NodeId, CallAction)>,
    delivered: Vec<(NodeId, Delivery)>,
    cancelled_local: Vec<(NodeId, LocalId)>,
    /// (from, to, message kind) of everything sent between nodes.
    wire: Vec<(NodeId, NodeId, &'static str)>,
    records: Vec<(NodeId, CallRecord)>,
    /// Nodes whose call protocol is gone: what is sent to them fails, and
    /// the failure says whether the CALL may have been received.
    dead: HashMap<NodeId, bool>,
    /// PROGRESS sent to this node is held back here (overtaken on the way)
    /// until [`Rig::release_progress`].
    slow_progress_to: Option<NodeId>,
    slowed: Vec<(NodeId, CallEvent)>,
    /// Nodes that answer every CALL with this refusal (a node that
    /// restarted and has not re-advertised yet, say).
    refusing: HashMap<NodeId, CallErrorKind>,
    next_front: u64,
    /// Every CALL sent, as its receiver got it.
    calls_seen: Vec<(NodeId, Call)>,
    /// Every return sent back (inline or as CALL-RESULT), as its receiver
    /// got it.
    returns_seen: Vec<(NodeId, CallReturn)>,
}

impl Rig {
    /// A chain A - B - C (and D - A, D - C with `with_d`), C originating
    /// `utility/echo/echo` for agent `echo`.
    fn new(with_d: bool, hold: std::time::Duration) -> Rig {
        let mut sim = SimNet::new(T0, 1);
        let mut nodes = vec![A, B, C];
        if with_d {
            nodes.push(D);
        }
        for n in &nodes {
            sim.add_node(
                Engine::new(EngineConfig::new(asn(*n), id(*n))).with_policy(Arc::new(AcceptAll)),
            );
        }
        let mut links = vec![(A, B), (B, C)];
        if with_d {
            links.extend([(A, D), (D, C)]);
        }
        for (x, y) in links {
            sim.link(id(x), id(y));
            sim.inject(
                id(x),
                Event::AddPeer(PeerConfig::new(id(y)).with_asn(asn(y))),
            );
            sim.inject(
                id(y),
                Event::AddPeer(PeerConfig::new(id(x)).with_asn(asn(x))),
            );
        }
        sim.inject(
            id(C),
            Event::Originate(tool_route("utility/echo/echo", "echo", "echo")),
        );
        sim.run_for(3_000);
        let fwd = nodes
            .iter()
            .map(|n| {
                let cfg = ForwardConfig::new(id(*n), asn(*n)).with_ack_hold(hold);
                (id(*n), Forwarder::new(cfg, Box::new(UnsignedOnly)))
            })
            .collect();
        Rig {
            sim,
            fwd,
            inbox: VecDeque::new(),
            done: Vec::new(),
            progress: Vec::new(),
            side: Vec::new(),
            delivered: Vec::new(),
            cancelled_local: Vec::new(),
            wire: Vec::new(),
            records: Vec::new(),
            dead: HashMap::new(),
            slow_progress_to: None,
            slowed: Vec::new(),
            refusing: HashMap::new(),
            next_front: 1,
            calls_seen: Vec::new(),
            returns_seen: Vec::new(),
        }
    }

    fn now(&self) -> Micros {
        Micros::from_millis(self.sim.now())
    }

    fn set(&mut self, n: u64, f: impl FnOnce(Forwarder) -> Forwarder) {
        let node = id(n);
        if let Some(old) = self.fwd.remove(&node) {
            self.fwd.insert(node, f(old));
        }
    }

    fn origin(&self, from: u64, target: &str, deadline_ms: u64) -> CallOrigin {
        CallOrigin {
            id: CallId([self.next_front as u8; 16]),
            caller: id(from),
            caller_asn: asn(from),
            communities: Vec::new(),
            target: p(target),
            op: CallOp::Tool,
            idempotent: false,
            tool: Some("echo".into()),
            args_digest: [0; 32],
            issued: self.sim.now(),
            deadline: self.sim.now().saturating_add_ms(deadline_ms),
            cert: None,
            signature: None,
        }
    }

    /// A front call at `from`; returns its id.
    fn call(&mut self, from: u64, target: &str, deadline_ms: u64, idempotent: bool) -> FrontId {
        let mut origin = self.origin(from, target, deadline_ms);
        origin.idempotent = idempotent;
        self.call_with(from, origin, 16, FrontOpts::default())
    }

    fn call_with(
        &mut self,
        from: u64,
        origin: CallOrigin,
        hop_limit: u8,
        opts: FrontOpts,
    ) -> FrontId {
        let fid = FrontId(self.next_front);
        self.next_front += 1;
        let call = Call {
            sealed: None,
            leg: LegId(0),
            hop_limit,
            progress: true,
            log_level: None,
            origin: Arc::new(origin),
            arguments: json!({"text": "hi"}),
            trace: None,
        };
        self.send(
            id(from),
            CallEvent::Front {
                id: fid,
                call,
                opts,
            },
        );
        fid
    }

    fn send(&mut self, to: NodeId, ev: CallEvent) {
        self.inbox.push_back((to, ev));
        self.pump();
    }

    /// Delivers the PROGRESS held back by `slow_progress_to`.
    fn release_progress(&mut self) {
        self.slow_progress_to = None;
        for (to, ev) in std::mem::take(&mut self.slowed) {
            self.inbox.push_back((to, ev));
        }
        self.pump();
    }

    fn pump(&mut self) {
        while let Some((node, ev)) = self.inbox.pop_front() {
            let now = self.now();
            let (Some(f), Some(e)) = (self.fwd.get_mut(&node), self.sim.engine(&node)) else {
                continue;
            };
            let actions = f.handle(now, e, ev);
            for a in actions {
                self.dispatch(node, a);
            }
        }
    }

    fn dispatch(&mut self, from: NodeId, a: CallAction) {
        let mut wire = |to: NodeId, kind: &'static str, ev: CallEvent, inbox: &mut VecDeque<_>| {
            self.wire.push((from, to, kind));
            inbox.push_back((to, ev));
        };
        match a {
            CallAction::SendCall { peer, call } => {
                self.calls_seen.push((peer, call.clone()));
                if let Some(&kind) = self.refusing.get(&peer) {
                    self.wire.push((from, peer, "CALL"));
                    self.wire.push((peer, from, "REFUSED"));
                    self.inbox.push_back((
                        from,
                        CallEvent::Answered {
                            peer,
                            leg: call.leg,
                            answer: CallAnswer::Refused(CallError::new(kind, "refused")),
                        },
                    ));
                } else if let Some(&maybe_received) = self.dead.get(&peer) {
                    self.inbox.push_back((
                        from,
                        CallEvent::SendFailed {
                            peer,
                            leg: call.leg,
                            maybe_received,
                            reason: "connection closed".into(),
                        },
                    ));
                } else {
                    wire(
                        peer,
                        "CALL",
                        CallEvent::Inbound {
                            peer: from,
                            call,
                            bytes: 0,
                        },
                        &mut self.inbox,
                    );
                }
            }
            CallAction::Answer { peer, leg, answer } => {
                if let CallAnswer::Done(ret) = &answer {
                    self.returns_seen.push((peer, ret.clone()));
                }
                let kind = match &answer {
                    CallAnswer::Accepted => "ACCEPTED",
                    CallAnswer::Refused(_) => "REFUSED",
                    CallAnswer::Done(_) => "DONE",
                };
                wire(
                    peer,
                    kind,
                    CallEvent::Answered {
                        peer: from,
                        leg,
                        answer,
                    },
                    &mut self.inbox,
                )
            }
            CallAction::SendResult { peer, result } => {
                self.returns_seen.push((peer, result.ret.clone()));
                wire(
                    peer,
                    "CALL-RESULT",
                    CallEvent::Result { peer: from, result },
                    &mut self.inbox,
                )
            }
            CallAction::SendProgress { peer, progress } if self.slow_progress_to == Some(peer) => {
                self.wire.push((from, peer, "PROGRESS"));
                self.slowed.push((
                    peer,
                    CallEvent::Progress {
                        peer: from,
                        progress,
                    },
                ));
            }
            CallAction::SendProgress { peer, progress } => wire(
                peer,
                "PROGRESS",
                CallEvent::Progress {
                    peer: from,
                    progress,
                },
                &mut self.inbox,
            ),
            CallAction::SendCancel { peer, cancel } => wire(
                peer,
                "CANCEL",
                CallEvent::Cancel { peer: from, cancel },
                &mut self.inbox,
            ),
            CallAction::SendNotify { peer, notify } => wire(
                peer,
                "NOTIFY",
                CallEvent::Notify { peer: from, notify },
                &mut self.inbox,
            ),
            CallAction::SendAsk { peer, ask } => wire(
                peer,
                "ASK",
                CallEvent::Ask { peer: from, ask },
                &mut self.inbox,
            ),
            CallAction::SendReply { peer, reply } => wire(
                peer,
                "REPLY",
                CallEvent::Reply { peer: from, reply },
                &mut self.inbox,
            ),
            a @ (CallAction::FrontNotify { .. }
            | CallAction::FrontAsk { .. }
            | CallAction::LocalReply { .. }) => self.side.push((from, a)),
            CallAction::Deliver(d) => self.delivered.push((from, d)),
            CallAction::CancelLocal { id } => self.cancelled_local.push((from, id)),
            CallAction::FrontProgress { id, info } => self.progress.push((from, id, info)),
            CallAction::FrontDone { id, ret } => self.done.push((from, id, ret)),
            CallAction::Finished(r) => self.records.push((from, r)),
        }
    }

    /// The record of the call that finished at `node` with `outcome`.
    fn record(&self, node: u64, outcome: &str) -> &CallRecord {
        self.records
            .iter()
            .find(|(n, rec)| *n == id(node) && rec.outcome == outcome)
            .map(|(_, rec)| rec)
            .unwrap_or_else(|| panic!("no {outcome} record at {node}: {:?}", self.records))
    }

    /// Advances time and ticks every forwarder.
    fn advance(&mut self, ms: u64) {
        self.sim.run_for(ms);
        let nodes: Vec<NodeId> = self.fwd.keys().copied().collect();
        for n in nodes {
            self.send(n, CallEvent::Tick);
        }
    }

    /// The agent at `node` finishes its last delivery with `outcome`.
    fn finish_local(&mut self, node: u64, outcome: CallOutcome) {
        let d = self
            .delivered
            .iter()
            .rev()
            .find(|(n, _)| *n == id(node))
            .map(|(_, d)| d.id)
            .expect("a delivery at that node");
        self.send(id(node), CallEvent::LocalDone { id: d, outcome });
    }

    fn result_of(&self, fid: FrontId) -> &CallReturn {
        &self
            .done
            .iter()
            .find(|(_, f, _)| *f == fid)
            .expect("the front got an answer")
            .2
    }

    fn error_of(&self, fid: FrontId) -> &CallError {
        match &self.result_of(fid).outcome {
            CallOutcome::Err(e) => e,
            CallOutcome::Ok(v) => panic!("expected an error, got {v}"),
        }
    }

    fn kinds(&self) -> Vec<(u64, u64, &'static str)> {
        let num = |n: &NodeId| (1..=4).find(|i| id(*i) == *n).unwrap_or(0);
        self.wire
            .iter()
            .map(|(f, t, k)| (num(f), num(t), *k))
            .collect()
    }
}

fn ok_result() -> CallOutcome {
    CallOutcome::Ok(json!({"content": [{"type": "text", "text": "hi"}], "isError": false}))
}

#[test]
fn routes_converged_for_the_tests() {
    let r = Rig::new(true, std::time::Duration::ZERO);
    for (a, b) in [(A, B), (B, C), (A, D), (D, C)] {
        let info = r.sim.engine(&id(a)).and_then(|e| e.peer_info(&id(b)));
        assert_eq!(info.map(|i| i.state), Some(PeerState::Established));
    }
    let res = r
        .sim
        .engine(&id(A))
        .and_then(|e| e.resolve(&p("utility/echo/echo")))
        .unwrap();
    assert_eq!(res.hops, vec![NextHop::Peer(id(B)), NextHop::Peer(id(D))]);
    assert_eq!(res.multipath, 2, "equal AS paths through B and D");
}

#[test]
fn a_call_crosses_two_hops_and_a_short_one_comes_back_inline() {
    let mut r = Rig::new(false, std::time::Duration::from_secs(1));
    let f = r.call(A, "utility/echo/echo", 5_000, false);
    let (at, d) = r
        .delivered
        .last()
        .cloned()
        .expect("delivered at the origin");
    assert_eq!(at, id(C));
    assert_eq!(d.agent.as_str(), "echo");
    assert_eq!(&*d.tool, "echo");
    assert_eq!(d.caller_asn, asn(A));
    assert_eq!(d.arguments, json!({"text": "hi"}));
    assert_eq!(d.prefix, p("utility/echo/echo"));
    r.finish_local(C, ok_result());
    let ret = r.result_of(f);
    assert_eq!(ret.outcome, ok_result());
    let hops: Vec<Asn> = ret.trace.iter().map(|h| h.asn).collect();
    assert_eq!(hops, vec![asn(C), asn(B), asn(A)], "origin first");
    assert_eq!(
        r.kinds(),
        vec![
            (A, B, "CALL"),
            (B, C, "CALL"),
            (C, B, "DONE"),
            (B, A, "DONE")
        ],
        "one round trip per hop"
    );
    for n in [A, B, C] {
        assert_eq!(r.fwd[&id(n)].in_flight(), 0, "node {n} forgot the call");
    }
    assert_eq!(r.fwd[&id(B)].stats().answered_inline, 1);
}

#[test]
fn a_long_call_is_accepted_and_its_result_follows_as_a_request() {
    let mut r = Rig::new(false, std::time::Duration::from_millis(100));
    let f = r.call(A, "utility/echo/echo", 60_000, false);
    r.advance(200);
    assert_eq!(
        r.kinds(),
        vec![
            (A, B, "CALL"),
            (B, C, "CALL"),
            (B, A, "ACCEPTED"),
            (C, B, "ACCEPTED")
        ]
    );
    r.finish_local(C, ok_result());
    assert_eq!(r.result_of(f).outcome, ok_result());
    assert_eq!(
        &r.kinds()[4..],
        &[(C, B, "CALL-RESULT"), (B, A, "CALL-RESULT")]
    );
}

/// Sends a call's first [`PROGRESS_BURST`] progress steps (fractions below
/// 1, all relayed at once), lets the interval pass, and forgets them.
fn spend_burst(r: &mut Rig, lid: LocalId) {
    for i in 0..PROGRESS_BURST {
        r.send(
            id(C),
            CallEvent::LocalProgress {
                id: lid,
                info: ProgressInfo {
                    progress: f64::from(i) / 100.0,
                    total: None,
                    message: None,
                },
            },
        );
    }
    assert_eq!(
        r.progress.len(),
        PROGRESS_BURST as usize,
        "a short call's first steps all reach the front at once"
    );
    r.advance(PROGRESS_INTERVAL_US / 1000 + 10);
    r.progress.clear();
}

#[test]
fn the_agents_requests_and_notes_travel_back_and_the_answer_forward() {
    let mut r = Rig::new(false, std::time::Duration::from_secs(1));
    let f = r.call(A, "utility/echo/echo", 60_000, false);
    let lid = r.delivered[0].1.id;
    r.send(
        id(C),
        CallEvent::LocalNotify {
            id: lid,
            method: "notifications/message".into(),
            params: json!({"level": "info", "data": "working"}),
        },
    );
    r.send(
        id(C),
        CallEvent::LocalAsk {
            id: lid,
            ask: 7,
            method: "sampling/createMessage".into(),
            params: json!({"messages": [], "maxTokens": 5}),
        },
    );
    let notes: Vec<&CallAction> = r
        .side
        .iter()
        .filter(|(n, _)| *n == id(A))
        .map(|(_, a)| a)
        .collect();
    assert!(
        matches!(notes[0], CallAction::FrontNotify { id, params, .. } if *id == f && params["data"] == "working")
    );
    assert!(matches!(notes[1], CallAction::FrontAsk { id, ask: 7, .. } if *id == f));
    // Back through B, and only ever along the call's own legs.
    let k = r.kinds();
    assert!(
        k.contains(&(3, 2, "NOTIFY")) && k.contains(&(2, 1, "NOTIFY")),
        "{k:?}"
    );
    assert!(
        k.contains(&(3, 2, "ASK")) && k.contains(&(2, 1, "ASK")),
        "{k:?}"
    );
    r.send(
        id(A),
        CallEvent::FrontReply {
            id: f,
            ask: 7,
            outcome: CallOutcome::Ok(json!({"role": "assistant"})),
        },
    );
    let k = r.kinds();
    assert!(
        k.contains(&(1, 2, "REPLY")) && k.contains(&(2, 3, "REPLY")),
        "{k:?}"
    );
    let at_c: Vec<&CallAction> = r
        .side
        .iter()
        .filter(|(n, _)| *n == id(C))
        .map(|(_, a)| a)
        .collect();
    assert!(
        matches!(at_c[..], [CallAction::LocalReply { id, ask: 7, outcome: CallOutcome::Ok(_) }] if *id == lid),
        "{at_c:?}"
    );
    // After the call, side messages for it are dropped, not relayed.
    r.finish_local(C, ok_result());
    let before = r.side.len();
    r.send(
        id(C),
        CallEvent::LocalNotify {
            id: lid,
            method: "notifications/message".into(),
            params: json!({}),
        },
    );
    assert_eq!(r.side.len(), before);
    assert!(r.fwd[&id(C)].stats().side_dropped >= 1);
}

#[test]
fn a_flood_of_side_messages_is_cut_at_the_calls_share() {
    let mut r = Rig::new(false, std::time::Duration::from_secs(1));
    let _f = r.call(A, "utility/echo/echo", 60_000, false);
    let lid = r.delivered[0].1.id;
    for _ in 0..(crate::core::forward::SIDE_MESSAGES_PER_CALL + 10) {
        r.send(
            id(C),
            CallEvent::LocalNotify {
                id: lid,
                method: "notifications/message".into(),
                params: json!({}),
            },
        );
    }
    let front = r.side.iter().filter(|(n, _)| *n == id(A)).count();
    assert_eq!(front as u32, crate::core::forward::SIDE_MESSAGES_PER_CALL);
    assert_eq!(r.fwd[&id(C)].stats().side_dropped, 10);
}

#[test]
fn a_result_that_overtakes_the_last_progress_waits_for_it() {
    let mut r = Rig::new(false, std::time::Duration::from_secs(1));
    let f = r.call(A, "utility/echo/echo", 60_000, false);
    let lid = r.delivered[0].1.id;
    // C's PROGRESS to B is slow; its result (inline) is not.
    r.slow_progress_to = Some(id(B));
    r.send(
        id(C),
        CallEvent::LocalProgress {
            id: lid,
            info: ProgressInfo {
                progress: 100.0,
                total: Some(100.0),
                message: None,
            },
        },
    );
    r.finish_local(C, ok_result());
    assert!(
        r.done.iter().all(|(_, i, _)| *i != f),
        "B holds the result until the PROGRESS it came after"
    );
    r.release_progress();
    assert_eq!(
        r.progress.iter().filter(|(_, i, _)| *i == f).count(),
        1,
        "the last step reached the front"
    );
    assert_eq!(r.result_of(f).outcome, ok_result());

    // A PROGRESS that never comes holds the result only RETURN_HOLD_US.
    let f = r.call(A, "utility/echo/echo", 60_000, false);
    let lid = r.delivered.last().unwrap().1.id;
    r.slow_progress_to = Some(id(B));
    r.send(
        id(C),
        CallEvent::LocalProgress {
            id: lid,
            info: ProgressInfo {
                progress: 1.0,
                total: None,
                message: None,
            },
        },
    );
    r.finish_local(C, ok_result());
    r.slowed.clear();
    assert!(r.done.iter().all(|(_, i, _)| *i != f));
    r.advance(RETURN_HOLD_US / 1000 + 10);
    assert_eq!(r.result_of(f).outcome, ok_result());
    for n in [A, B, C] {
        assert_eq!(r.fwd[&id(n)].next_deadline(), None, "node {n} timers");
    }
}

#[test]
fn progress_travels_back_through_two_hops_to_the_front() {
    let mut r = Rig::new(false, std::time::Duration::from_secs(1));
    let f = r.call(A, "utility/echo/echo", 60_000, false);
    let lid = r.delivered[0].1.id;
    spend_burst(&mut r, lid);
    let merged_before = r.fwd[&id(C)].stats().progress_coalesced;
    for i in 1..=3 {
        r.send(
            id(C),
            CallEvent::LocalProgress {
                id: lid,
                info: ProgressInfo {
                    progress: f64::from(i),
                    total: Some(3.0),
                    message: Some(format!("{i}/3")),
                },
            },
        );
    }
    let seen = |r: &Rig| -> Vec<f64> {
        r.progress
            .iter()
            .filter(|(n, i, _)| *n == id(A) && *i == f)
            .map(|(_, _, p)| p.progress)
            .collect()
    };
    // Three at once: the first goes back at once, the newest of the rest
    // when the interval is over; the one in between is merged away.
    assert_eq!(seen(&r), vec![1.0]);
    r.advance(PROGRESS_INTERVAL_US / 1000 + 10);
    assert_eq!(seen(&r), vec![1.0, 3.0]);
    assert_eq!(r.fwd[&id(C)].stats().progress_coalesced, merged_before + 1);
    // Spaced out, each one travels.
    r.advance(PROGRESS_INTERVAL_US / 1000 + 10);
    r.send(
        id(C),
        CallEvent::LocalProgress {
            id: lid,
            info: ProgressInfo {
                progress: 4.0,
                total: None,
                message: None,
            },
        },
    );
    assert_eq!(seen(&r), vec![1.0, 3.0, 4.0]);
    r.finish_local(C, ok_result());
    assert_eq!(r.result_of(f).outcome, ok_result());
    for n in [A, B, C] {
        assert_eq!(r.fwd[&id(n)].next_deadline(), None, "node {n} timers");
    }
}

#[test]
fn progress_held_past_its_interval_is_superseded_not_sent_late() {
    let mut r = Rig::new(false, std::time::Duration::from_secs(1));
    let f = r.call(A, "utility/echo/echo", 60_000, false);
    let lid = r.delivered[0].1.id;
    spend_burst(&mut r, lid);
    let progress = |r: &mut Rig, p: f64| {
        r.send(
            id(C),
            CallEvent::LocalProgress {
                id: lid,
                info: ProgressInfo {
                    progress: p,
                    total: None,
                    message: None,
                },
            },
        )
    };
    progress(&mut r, 1.0);
    progress(&mut r, 2.0); // held
    // Time passes without a tick (a busy node), then a newer one comes.
    r.sim.run_for(PROGRESS_INTERVAL_US / 1000 + 10);
    progress(&mut r, 3.0);
    r.advance(PROGRESS_INTERVAL_US / 1000 + 10);
    let seen: Vec<f64> = r
        .progress
        .iter()
        .filter(|(_, i, _)| *i == f)
        .map(|(_, _, p)| p.progress)
        .collect();
    assert_eq!(seen, vec![1.0, 3.0], "2.0 is never sent after 3.0");
}

#[test]
fn a_progress_flood_is_relayed_at_a_bounded_rate() {
    let mut r = Rig::new(false, std::time::Duration::from_secs(1));
    let f = r.call(A, "utility/echo/echo", 60_000, false);
    let lid = r.delivered[0].1.id;
    // 10,000 progress messages over one second of agent time.
    for i in 0..10_000u32 {
        if i % 100 == 0 {
            r.advance(10);
        }
        r.send(
            id(C),
            CallEvent::LocalProgress {
                id: lid,
                info: ProgressInfo {
                    progress: f64::from(i),
                    total: None,
                    message: None,
                },
            },
        );
    }
    r.advance(100);
    let at_a = r.progress.iter().filter(|(_, i, _)| *i == f).count();
    let on_wire = r.kinds().iter().filter(|k| k.2 == "PROGRESS").count();
    // The first burst, then about one per interval per hop, whatever the
    // agent sends.
    let bound = (1_100_000 / PROGRESS_INTERVAL_US) as usize + 2 + PROGRESS_BURST as usize;
    assert!(at_a <= bound, "{at_a} progress at the front");
    assert!(on_wire <= 2 * bound, "{on_wire} PROGRESS messages sent");
    let last = r.progress.iter().rfind(|(_, i, _)| *i == f).unwrap();
    assert_eq!(last.2.progress, 9_999.0, "the newest progress gets through");
}

#[test]
fn a_cancel_at_the_front_reaches_the_origins_agent_and_frees_every_hop() {
    let mut r = Rig::new(false, std::time::Duration::from_secs(1));
    let f = r.call(A, "utility/echo/echo", 60_000, false);
    let lid = r.delivered[0].1.id;
    r.send(
        id(A),
        CallEvent::FrontCancel {
            id: f,
            reason: Some("client cancelled".into()),
        },
    );
    assert_eq!(r.cancelled_local, vec![(id(C), lid)]);
    for n in [A, B, C] {
        assert_eq!(r.fwd[&id(n)].in_flight(), 0, "node {n}");
    }
    // The held CALL answers are released so no stream stays open.
    assert!(r.kinds().contains(&(C, B, "REFUSED")));
    assert!(r.kinds().contains(&(B, A, "REFUSED")));
    // A late result from the agent goes nowhere.
    r.send(
        id(C),
        CallEvent::LocalDone {
            id: lid,
            outcome: ok_result(),
        },
    );
    assert!(r.done.is_empty(), "the front was not answered after cancel");
}

#[test]
fn a_peer_cannot_use_a_node_as_relay_for_a_prefix_it_was_not_advertised() {
    let mut r = Rig::new(false, std::time::Duration::ZERO);
    // B learned the route from C and never advertised it back to C.
    let origin = r.origin(C, "utility/echo/echo", 5_000);
    let call = Call {
        sealed: None,
        leg: LegId(7),
        hop_limit: 8,
        log_level: None,
        progress: false,
        origin: Arc::new(origin),
        arguments: Json::Null,
        trace: None,
    };
    r.send(
        id(B),
        CallEvent::Inbound {
            peer: id(C),
            call,
            bytes: 0,
        },
    );
    let refused = r
        .wire
        .iter()
        .any(|(f, t, k)| *f == id(B) && *t == id(C) && *k == "REFUSED");
    assert!(refused);
    assert!(r.delivered.is_empty());
    let rec = &r.records.last().unwrap().1;
    assert_eq!(rec.outcome, "not_advertised");
}

#[test]
fn a_call_is_refused_where_its_hop_limit_runs_out() {
    let mut r = Rig::new(false, std::time::Duration::ZERO);
    let origin = r.origin(A, "utility/echo/echo", 5_000);
    let f = r.call_with(A, origin, 1, FrontOpts::default());
    let e = r.error_of(f);
    assert_eq!(e.kind, CallErrorKind::HopLimit);
    assert!(e.message.starts_with("AS65002"), "{}", e.message);
    assert!(r.delivered.is_empty());
}

#[test]
fn no_route_is_a_clear_error_at_the_front() {
    let mut r = Rig::new(false, std::time::Duration::ZERO);
    let f = r.call(A, "finance/ledger/post", 5_000, false);
    let e = r.error_of(f);
    assert_eq!(e.kind, CallErrorKind::NoRoute);
    assert!(e.message.contains("no route to finance/ledger/post"));
    assert!(r.wire.is_empty());
}

#[test]
fn a_deadline_ends_the_call_with_a_timeout_and_cancels_the_agent() {
    let mut r = Rig::new(false, std::time::Duration::from_millis(100));
    let f = r.call(A, "utility/echo/echo", 1_000, false);
    r.advance(1_100);
    let e = r.error_of(f);
    assert_eq!(e.kind, CallErrorKind::Timeout);
    assert!(e.kind.may_have_run());
    assert!(e.message.contains("deadline"), "{}", e.message);
    assert_eq!(r.cancelled_local.len(), 1, "the agent's run was cancelled");
    for n in [A, B, C] {
        assert_eq!(r.fwd[&id(n)].in_flight(), 0, "node {n}");
        assert_eq!(r.fwd[&id(n)].next_deadline(), None, "node {n} timers");
    }
}

#[test]
fn the_origins_access_policy_denies_by_caller_asn() {
    let mut r = Rig::new(false, std::time::Duration::ZERO);
    let rules = vec![AccessRuleConfig {
        name: Some("no A".into()),
        prefixes: vec!["utility/*".into()],
        caller_asns: vec![AsnSpec::Number(asn(A).0)],
        action: AccessAction::Deny,
        ..Default::default()
    }];
    let policy = AccessPolicy::compile(asn(C), &rules, AccessAction::Allow).unwrap();
    r.set(C, |f| f.with_access(policy));
    let f = r.call(A, "utility/echo/echo", 5_000, false);
    let e = r.error_of(f);
    assert_eq!(e.kind, CallErrorKind::AccessDenied);
    assert!(e.message.contains("denied to AS65001"), "{}", e.message);
    assert!(e.message.contains("no A"), "{}", e.message);
    assert!(r.delivered.is_empty());
    // B, not denied, gets through.
    let g = r.call(B, "utility/echo/echo", 5_000, false);
    assert_eq!(r.delivered.len(), 1);
    r.finish_local(C, ok_result());
    assert_eq!(r.result_of(g).outcome, ok_result());
}

#[test]
fn an_unverified_caller_is_refused_at_the_origin() {
    let mut r = Rig::new(false, std::time::Duration::ZERO);
    r.set(C, |f| {
        Forwarder::new(f.config().clone(), Box::new(TrustsNobody))
    });
    let f = r.call(A, "utility/echo/echo", 5_000, false);
    let e = r.error_of(f);
    assert_eq!(e.kind, CallErrorKind::BadCaller);
    assert!(e.message.contains("no trust anchor"), "{}", e.message);
}

#[test]
fn a_replayed_call_is_refused_at_the_origin() {
    let mut r = Rig::new(false, std::time::Duration::ZERO);
    let origin = r.origin(A, "utility/echo/echo", 5_000);
    let first = r.call_with(A, origin.clone(), 16, FrontOpts::default());
    r.finish_local(C, ok_result());
    assert_eq!(r.result_of(first).outcome, ok_result());
    let again = r.call_with(A, origin, 16, FrontOpts::default());
    let e = r.error_of(again);
    assert_eq!(e.kind, CallErrorKind::BadCaller);
    assert!(e.message.contains("replay"), "{}", e.message);
    assert_eq!(r.delivered.len(), 1);
}

#[test]
fn a_next_hop_dying_mid_call_fails_a_non_idempotent_call_clearly() {
    let mut r = Rig::new(true, std::time::Duration::from_millis(100));
    let f = r.call(A, "utility/echo/echo", 60_000, false);
    r.advance(200); // answers are `Accepted`: the tool is running
    let via = r.wire[0].1;
    r.send(id(A), CallEvent::PeerDown { peer: via });
    let e = r.error_of(f);
    assert_eq!(e.kind, CallErrorKind::NextHopDown);
    assert!(
        e.message.contains("may or may not have run"),
        "{}",
        e.message
    );
    assert!(e.message.contains("not retried"), "{}", e.message);
    assert_eq!(r.delivered.len(), 1, "not run a second time");
}

#[test]
fn an_idempotent_call_is_retried_on_the_other_path_when_its_next_hop_dies() {
    let mut r = Rig::new(true, std::time::Duration::from_millis(100));
    let f = r.call(A, "utility/echo/echo", 60_000, true);
    r.advance(200);
    let via = r.wire[0].1;
    let other = other_path(via);
    r.send(id(A), CallEvent::PeerDown { peer: via });
    assert!(
        r.done.is_empty(),
        "still running, on the other path: {:?}",
        r.done
    );
    assert!(
        r.wire
            .iter()
            .any(|(fr, t, k)| *fr == id(A) && *t == other && *k == "CALL")
    );
    assert_eq!(r.delivered.len(), 2, "delivered again through {other:?}");
    r.finish_local(C, ok_result());
    assert_eq!(r.result_of(f).outcome, ok_result());
    let rec = r.record(A, "ok");
    assert_eq!(rec.retries, 1);
    assert_eq!(rec.to, Some(other));
}

#[test]
fn a_call_that_certainly_did_not_arrive_is_retried_whatever_the_tool() {
    let mut r = Rig::new(true, std::time::Duration::ZERO);
    let first = preferred_hop(&r);
    // Sending to the preferred next hop fails before delivery (a dial
    // failure): the tool cannot have run, so any tool may be retried.
    r.dead.insert(first, false);
    let f = r.call(A, "utility/echo/echo", 5_000, false);
    assert!(r.done.is_empty(), "retried, not failed");
    assert_eq!(r.delivered.len(), 1);
    r.finish_local(C, ok_result());
    assert_eq!(r.result_of(f).outcome, ok_result());
}

#[test]
fn a_lost_call_to_a_dead_hop_is_not_retried_unless_idempotent() {
    let mut r = Rig::new(true, std::time::Duration::ZERO);
    let first = preferred_hop(&r);
    r.dead.insert(first, true);
    let f = r.call(A, "utility/echo/echo", 5_000, false);
    let e = r.error_of(f);
    assert_eq!(e.kind, CallErrorKind::NextHopDown);
    assert!(e.message.contains("not retried"), "{}", e.message);
    assert!(r.delivered.is_empty());
    let g = r.call(A, "utility/echo/echo", 5_000, true);
    assert_eq!(
        r.delivered.len(),
        1,
        "the idempotent call took the other path"
    );
    r.finish_local(C, ok_result());
    assert_eq!(r.result_of(g).outcome, ok_result());
}

/// In the A - B - C, A - D - C rig: the transit node that is not `via`.
fn other_path(via: NodeId) -> NodeId {
    if via == id(B) { id(D) } else { id(B) }
}

fn preferred_hop(r: &Rig) -> NodeId {
    let res = r
        .sim
        .engine(&id(A))
        .and_then(|e| e.resolve(&p("utility/echo/echo")))
        .unwrap();
    match res.hops[0] {
        NextHop::Peer(n) => n,
        NextHop::Local { .. } => panic!("remote route expected"),
    }
}

fn progress_on(leg: LegId, from: u64) -> CallEvent {
    CallEvent::Progress {
        peer: id(from),
        progress: Progress {
            leg,
            info: ProgressInfo {
                progress: 1.0,
                total: None,
                message: None,
            },
        },
    }
}

#[test]
fn progress_for_a_call_no_longer_here_is_answered_with_one_cancel() {
    let mut r = Rig::new(false, std::time::Duration::ZERO);
    // A leg never used: ignored (no reply a stranger could use to make
    // this node send).
    r.send(id(A), progress_on(LegId(99), B));
    assert!(r.kinds().is_empty(), "{:?}", r.kinds());
    // A leg whose call this node gave up on: one CANCEL, then silence.
    let f = r.call(A, "utility/echo/echo", 60_000, false);
    r.send(
        id(A),
        CallEvent::FrontCancel {
            id: f,
            reason: None,
        },
    );
    let leg = r.fwd[&id(A)]
        .table
        .last_gone()
        .expect("the cancelled leg is remembered");
    r.wire.clear();
    r.send(id(A), progress_on(leg, B));
    r.send(id(A), progress_on(leg, B));
    assert_eq!(r.kinds(), vec![(A, B, "CANCEL")]);
}

#[test]
fn one_peer_cannot_fill_a_hops_table_and_the_hops_front_keeps_its_reserve() {
    let mut r = Rig::new(false, std::time::Duration::from_secs(1));
    r.set(B, |f| {
        let q = quota::QuotaConfig {
            max_calls: 6,
            front_reserve: 2,
            per_peer: 3,
            per_caller: 100,
            peer_bytes: usize::MAX,
            peer_rate: 1e9,
            peer_burst: 1e9,
        };
        Forwarder::new(f.config().clone().with_quotas(q), Box::new(UnsignedOnly))
    });
    for _ in 0..3 {
        r.call(A, "utility/echo/echo", 60_000, false);
    }
    let fourth = r.call(A, "utility/echo/echo", 60_000, false);
    let e = r.error_of(fourth);
    assert_eq!(e.kind, CallErrorKind::Overloaded);
    assert!(e.message.contains("its share"), "{}", e.message);
    assert_eq!(r.fwd[&id(B)].stats().quota.peer_calls, 1);
    // A holds its share at B and no more; those calls went on to C.
    assert_eq!(r.fwd[&id(B)].peer_load(&id(A)), (3, 0));
    assert_eq!(r.fwd[&id(B)].peer_load(&id(C)), (0, 3));
}

#[test]
fn a_next_hop_that_never_answers_holds_at_most_its_share() {
    let mut r = Rig::new(false, std::time::Duration::from_secs(1));
    r.set(A, |f| {
        let mut q = quota::QuotaConfig::for_max_calls(100);
        q.per_peer = 2;
        Forwarder::new(f.config().clone().with_quotas(q), Box::new(UnsignedOnly))
    });
    // C's agent never finishes: every call stays in flight through B.
    r.call(A, "utility/echo/echo", 60_000, false);
    r.call(A, "utility/echo/echo", 60_000, false);
    let third = r.call(A, "utility/echo/echo", 60_000, false);
    let e = r.error_of(third);
    assert_eq!(e.kind, CallErrorKind::Overloaded);
    assert!(e.message.contains("next hop"), "{}", e.message);
    assert_eq!(r.fwd[&id(A)].stats().quota.next_hop_full, 1);
    // When one ends, the slot comes back.
    r.finish_local(C, ok_result());
    let fourth = r.call(A, "utility/echo/echo", 60_000, false);
    assert!(
        r.done.iter().all(|(_, f, _)| *f != fourth),
        "in flight, not refused"
    );
}

#[test]
fn when_the_callers_hop_goes_away_the_call_is_stopped_downstream() {
    let mut r = Rig::new(false, std::time::Duration::from_secs(1));
    r.call(A, "utility/echo/echo", 60_000, false);
    assert_eq!(r.delivered.len(), 1);
    r.send(id(B), CallEvent::PeerDown { peer: id(A) });
    assert!(r.kinds().contains(&(B, C, "CANCEL")));
    assert_eq!(r.cancelled_local.len(), 1);
    assert_eq!(r.fwd[&id(B)].in_flight(), 0);
    assert_eq!(r.fwd[&id(C)].in_flight(), 0);
}

#[test]
fn balancing_spreads_front_calls_over_equal_paths() {
    let mut r = Rig::new(true, std::time::Duration::ZERO);
    let mut via = std::collections::BTreeSet::new();
    for i in 0..16u8 {
        let mut o = r.origin(A, "utility/echo/echo", 5_000);
        o.id = CallId([i.wrapping_mul(37); 16]);
        r.call_with(
            A,
            o,
            16,
            FrontOpts {
                balance: true,
                ..Default::default()
            },
        );
        via.insert(r.wire.first().map(|w| w.1));
        r.wire.clear();
    }
    assert_eq!(via.len(), 2, "both B and D carried calls");
}

#[test]
fn the_table_is_bounded() {
    let mut r = Rig::new(false, std::time::Duration::from_secs(1));
    r.set(A, |f| {
        let cfg = f.config().clone().with_max_calls(2);
        Forwarder::new(cfg, Box::new(UnsignedOnly))
    });
    r.call(A, "utility/echo/echo", 60_000, false);
    r.call(A, "utility/echo/echo", 60_000, false);
    let third = r.call(A, "utility/echo/echo", 60_000, false);
    assert_eq!(r.error_of(third).kind, CallErrorKind::Overloaded);
}

#[test]
fn a_routing_refusal_is_retried_on_another_path_whatever_the_tool() {
    let mut r = Rig::new(true, std::time::Duration::ZERO);
    let first = preferred_hop(&r);
    r.refusing.insert(first, CallErrorKind::NotAdvertised);
    let f = r.call(A, "utility/echo/echo", 5_000, false);
    assert!(r.done.is_empty(), "retried, not failed: {:?}", r.done);
    assert_eq!(r.delivered.len(), 1);
    r.finish_local(C, ok_result());
    assert_eq!(r.result_of(f).outcome, ok_result());
}

#[test]
fn an_access_refusal_is_final() {
    let mut r = Rig::new(true, std::time::Duration::ZERO);
    let first = preferred_hop(&r);
    r.refusing.insert(first, CallErrorKind::AccessDenied);
    let f = r.call(A, "utility/echo/echo", 5_000, true);
    assert_eq!(r.error_of(f).kind, CallErrorKind::AccessDenied);
    assert!(r.delivered.is_empty());
}

/// The CI failure of 2026-11-25: the preferred hop refused a call while
/// restarting (no routes yet), the retry went to the other path, and that
/// hop died mid-call. The first hop has its routes again, so an idempotent
/// call goes back to it instead of failing with "no other path".
#[test]
fn a_path_that_refused_while_restarting_is_tried_again_when_the_other_dies() {
    let mut r = Rig::new(true, std::time::Duration::from_millis(100));
    let first = preferred_hop(&r);
    let other = other_path(first);
    r.refusing.insert(first, CallErrorKind::NotAdvertised);
    let f = r.call(A, "utility/echo/echo", 60_000, true);
    r.advance(200);
    assert!(r.done.is_empty(), "running through {other:?}: {:?}", r.done);
    assert_eq!(r.delivered.len(), 1);
    // The first hop is back; the one carrying the call dies.
    r.refusing.remove(&first);
    r.send(id(A), CallEvent::PeerDown { peer: other });
    assert!(r.done.is_empty(), "retried, not failed: {:?}", r.done);
    assert_eq!(r.delivered.len(), 2, "delivered again through {first:?}");
    r.finish_local(C, ok_result());
    assert_eq!(r.result_of(f).outcome, ok_result());
    let rec = r.record(A, "ok");
    assert_eq!(rec.retries, 2);
    assert_eq!(rec.to, Some(first));
}

/// Two neighbours that keep refusing do not bounce a call until its
/// deadline: the retries stop at the cap with a clear error.
#[test]
fn retries_between_refusing_paths_are_capped() {
    let mut r = Rig::new(true, std::time::Duration::ZERO);
    r.refusing.insert(id(B), CallErrorKind::NotAdvertised);
    r.refusing.insert(id(D), CallErrorKind::NotAdvertised);
    let f = r.call(A, "utility/echo/echo", 60_000, true);
    let e = r.error_of(f);
    assert_eq!(e.kind, CallErrorKind::NotAdvertised, "{e:?}");
    let calls = r
        .wire
        .iter()
        .filter(|(fr, _, k)| *fr == id(A) && *k == "CALL")
        .count();
    assert_eq!(calls, 1 + MAX_RETRIES as usize, "{:?}", r.wire);
    assert!(r.delivered.is_empty());
}

/// A's forwarder with these `[[balance]]` rules (seed 1).
fn with_rules(r: &mut Rig, rules: Vec<balance::Rule>) {
    r.set(A, |f| {
        let cfg = f
            .config()
            .clone()
            .with_seed(1)
            .with_balance(balance::BalanceRules::new(rules));
        Forwarder::new(cfg, Box::new(UnsignedOnly))
    });
}

/// The peer A sent the last CALL to.
fn last_hop_from_a(r: &Rig) -> NodeId {
    r.wire
        .iter()
        .rev()
        .find(|(fr, _, k)| *fr == id(A) && *k == "CALL")
        .map(|w| w.1)
        .expect("A sent a CALL")
}

#[test]
fn a_round_robin_rule_alternates_calls_that_did_not_ask() {
    let mut r = Rig::new(true, std::time::Duration::ZERO);
    with_rules(
        &mut r,
        vec![balance::Rule::new(
            p("utility/*"),
            balance::Method::RoundRobin,
        )],
    );
    let mut hops = Vec::new();
    for _ in 0..10 {
        let f = r.call(A, "utility/echo/echo", 5_000, false);
        hops.push(last_hop_from_a(&r));
        r.finish_local(C, ok_result());
        assert_eq!(r.result_of(f).outcome, ok_result());
    }
    let first = preferred_hop(&r);
    let expect: Vec<NodeId> = (0..10)
        .map(|i| if i % 2 == 0 { first } else { other_path(first) })
        .collect();
    assert_eq!(hops, expect, "in decision order, one after the other");
    // The admin view says so.
    let e = r.sim.engine(&id(A)).expect("A");
    let v = r.fwd[&id(A)]
        .balance_view(e, &p("utility/echo/echo"))
        .expect("a view");
    assert_eq!(
        (v.method, v.set, v.members.len()),
        (balance::Method::RoundRobin, "nearest", 2)
    );
    // Without the rule a call that does not ask takes the best path.
    let mut r = Rig::new(true, std::time::Duration::ZERO);
    for _ in 0..4 {
        r.call(A, "utility/echo/echo", 5_000, false);
        assert_eq!(last_hop_from_a(&r), first);
        r.finish_local(C, ok_result());
    }
}

#[test]
fn the_latency_rule_measures_round_trips_and_prefers_the_faster_hop() {
    let mut r = Rig::new(true, std::time::Duration::from_secs(10));
    with_rules(
        &mut r,
        vec![balance::Rule::new(p("utility/*"), balance::Method::Latency)],
    );
    let fast = preferred_hop(&r);
    let slow = other_path(fast);
    let mut count: HashMap<NodeId, u32> = HashMap::new();
    for _ in 0..50 {
        r.call(A, "utility/echo/echo", 60_000, true);
        let hop = last_hop_from_a(&r);
        *count.entry(hop).or_default() += 1;
        // The agent answers in 2 ms through the fast hop, 40 ms through
        // the slow one; calls are 100 ms apart.
        let ms = if hop == fast { 2 } else { 40 };
        r.advance(ms);
        r.finish_local(C, ok_result());
        r.advance(100 - ms);
    }
    let a = &r.fwd[&id(A)];
    let lat = |n: &NodeId| a.balancer().latency(n).expect("measured");
    // Round trips measured from the CALL to the result (whole ms here:
    // the simulator's clock).
    assert!(
        (2_000..3_000).contains(&lat(&fast).ewma_us),
        "{:?}",
        lat(&fast)
    );
    assert!(
        (40_000..41_000).contains(&lat(&slow).ewma_us),
        "{:?}",
        lat(&slow)
    );
    // 50 calls in 5 s: the slow hop gets its first call and no probe (10 s).
    assert_eq!(count.get(&slow).copied(), Some(1), "{count:?}");
    assert_eq!(count.get(&fast).copied(), Some(49), "{count:?}");
    let e = r.sim.engine(&id(A)).expect("A");
    let v = a.balance_view(e, &p("utility/echo/echo")).expect("a view");
    let ewma: Vec<Option<u64>> = v
        .members
        .iter()
        .map(|m| m.latency.map(|l| l.samples))
        .collect();
    assert_eq!(ewma.iter().flatten().sum::<u64>(), 50, "{v:?}");
}

#[test]
fn balanced_calls_still_fail_over_when_the_chosen_hop_dies() {
    // Round-robin sends the call to one hop; it dies mid-call; the
    // idempotent call is retried on the other.
    let mut r = Rig::new(true, std::time::Duration::from_millis(100));
    with_rules(
        &mut r,
        vec![balance::Rule::new(
            p("utility/*"),
            balance::Method::RoundRobin,
        )],
    );
    for _ in 0..2 {
        let f = r.call(A, "utility/echo/echo", 60_000, true);
        let hop = last_hop_from_a(&r);
        r.advance(200);
        r.send(id(A), CallEvent::PeerDown { peer: hop });
        assert_eq!(last_hop_from_a(&r), other_path(hop));
        r.finish_local(C, ok_result());
        assert_eq!(r.result_of(f).outcome, ok_result());
        r.dead.clear();
    }
}

#[test]
fn the_capability_rule_follows_the_tags_the_front_call_wants() {
    let mut r = Rig::new(true, std::time::Duration::from_millis(100));
    // B and D both originate gpu/run, with different tags.
    for (n, tag) in [(B, "cpu"), (D, "gpu")] {
        let mut route = tool_route("gpu/run", "runner", "run");
        let mut a = (*route.attrs).clone();
        a.capabilities = vec![Arc::from(tag)];
        route.attrs = Arc::new(a);
        r.sim.inject(id(n), Event::Originate(route));
    }
    r.sim.run_for(3_000);
    with_rules(
        &mut r,
        vec![balance::Rule::new(p("gpu/*"), balance::Method::Capability)],
    );
    let call = |r: &mut Rig, tag: &str| {
        let mut o = r.origin(A, "gpu/run", 60_000);
        o.idempotent = true;
        let opts = FrontOpts {
            balance: false,
            wants: vec![Arc::from(tag)],
        };
        let f = r.call_with(A, o, 16, opts);
        (f, last_hop_from_a(r))
    };
    for _ in 0..3 {
        let (_, hop) = call(&mut r, "gpu");
        assert_eq!(hop, id(D));
        r.finish_local(D, ok_result());
        let (_, hop) = call(&mut r, "cpu");
        assert_eq!(hop, id(B));
        r.finish_local(B, ok_result());
    }
    // The best match dies mid-call: the retry takes the other path.
    let (f, hop) = call(&mut r, "gpu");
    assert_eq!(hop, id(D));
    r.advance(200);
    r.send(id(A), CallEvent::PeerDown { peer: id(D) });
    assert_eq!(last_hop_from_a(&r), id(B));
    r.finish_local(B, ok_result());
    assert_eq!(r.result_of(f).outcome, ok_result());
}

#[path = "sealed/tests.rs"]
mod sealed;
