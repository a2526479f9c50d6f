//! Calls at this node: the front's calls (signed here), the forwarder run
//! on every call event, the local runs it asks for (started by the node),
//! and the ends of front calls.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

use serde_json::{Map, Value as Json};
use sha2::{Digest, Sha256};

use super::{INTERNAL_FRONT, McpPlane, PlaneOut};
use crate::core::call::{
    Call, CallError, CallErrorKind, CallId, CallOp, CallOrigin, CallOutcome, CallReturn, LegId,
    ProgressInfo, TraceContext,
};
use crate::core::engine::Engine;
use crate::core::forward::{CallAction, CallEvent, Delivery, FrontId, FrontOpts, LocalId, Micros};
use crate::core::ids::AgentId;
use crate::core::prefix::Prefix;
use crate::core::proof::{AsnCert, Signature};
use crate::mcp::catalog::write_canonical_json;
use crate::mcp::front::CallSpec;
use crate::mcp::items::{ItemDescriptor, ItemKind, match_template};

/// Signs the calls this node makes. Implemented with the node key by
/// `crate::identity`; the plane only asks.
pub trait CallSigner: Send {
    /// The certificate to attach (`None` on unsigned test setups).
    fn cert(&self) -> Option<Arc<AsnCert>>;
    /// The signature over `origin` (its `signature` field is ignored).
    fn sign(&self, origin: &CallOrigin) -> Option<Signature>;
}

/// The SHA-256 of the canonical JSON of a call's arguments: what the signed
/// origin commits to.
pub fn args_digest(arguments: &Json) -> [u8; 32] {
    let mut s = String::new();
    write_canonical_json(arguments, &mut s);
    let d = Sha256::digest(s.as_bytes());
    let mut out = [0u8; 32];
    out.copy_from_slice(&d);
    out
}

/// A tool call from the front, for the plane to route (the node keeps
/// where its answer goes).
#[derive(Debug, Clone, PartialEq)]
pub struct FrontCall {
    pub id: FrontId,
    pub spec: CallSpec,
    /// The client asked for progress.
    pub progress: bool,
}

/// What goes back to a front call.
#[derive(Debug, Clone, PartialEq)]
pub enum FrontReply {
    Progress {
        id: FrontId,
        info: ProgressInfo,
    },
    /// A notification of the agent for the client (a log message).
    Notify {
        id: FrontId,
        method: String,
        params: Json,
    },
    /// A request of the agent to the client (sampling, elicitation,
    /// roots); its answer comes back with [`McpPlane::on_front_reply`].
    Ask {
        id: FrontId,
        ask: u32,
        method: String,
        params: Json,
    },
    Done {
        id: FrontId,
        ret: CallReturn,
    },
}

/// A tool run on a hosted agent, for the node to start. It reports back
/// with [`LocalEvent`]s: any progress, then one Done (also when cancelled).
#[derive(Debug, Clone, PartialEq)]
pub struct LocalRun {
    pub id: LocalId,
    pub agent: AgentId,
    /// What to run: `tools/call`, `prompts/get`, `resources/read` or
    /// `completion/complete`.
    pub op: CallOp,
    /// The tool or prompt name, or the resource URI (the route's name).
    pub tool: String,
    /// The tool's or prompt's arguments; for a resource read `{uri}`, for
    /// a completion the request's params.
    pub arguments: Map<String, Json>,
    /// What is left of the call's deadline.
    pub timeout: Duration,
    pub progress: bool,
    /// The calling client's log level (see [`Call::log_level`]).
    pub log_level: Option<u8>,
    /// The origin hop's trace context: the agent's `traceparent`.
    pub trace: TraceContext,
}

/// What a local run reports.
#[derive(Debug)]
pub enum LocalEvent {
    Progress {
        id: LocalId,
        info: ProgressInfo,
    },
    /// The agent sent a notification for the caller during the run.
    Notify {
        id: LocalId,
        method: String,
        params: Json,
    },
    /// The agent asked the caller's client something; the answer comes
    /// back in [`PlaneOut::replies`].
    Ask {
        id: LocalId,
        ask: u32,
        method: String,
        params: Json,
    },
    Done {
        id: LocalId,
        outcome: CallOutcome,
    },
}

/// A front call waiting for its end.
#[derive(Debug)]
pub(super) struct FrontWait {
    target: Prefix,
    call_id: CallId,
    started: Micros,
    trace_id: [u8; 16],
}

/// What a call this node makes carries, before it is signed.
pub(super) struct NewCall {
    pub target: Prefix,
    pub tool: Option<String>,
    pub op: CallOp,
    pub arguments: Json,
    pub idempotent: bool,
    pub timeout: Duration,
    pub progress: bool,
    pub log_level: Option<u8>,
    /// Sign the origin (a call that leaves this node).
    pub sign: bool,
}

impl McpPlane {
    /// A tool call from the front.
    pub fn on_front_call(&mut self, now: Micros, engine: &Engine, c: FrontCall) -> PlaneOut {
        self.on_front_call_traced(now, engine, c, None)
    }

    /// A tool call from the front in the client's trace (`None`: the
    /// client started none, so the call starts a new one with a random
    /// trace id).
    pub fn on_front_call_traced(
        &mut self,
        now: Micros,
        engine: &Engine,
        c: FrontCall,
        trace: Option<TraceContext>,
    ) -> PlaneOut {
        let FrontCall {
            id,
            spec:
                CallSpec {
                    target,
                    tool,
                    op,
                    arguments,
                    idempotent,
                    balance,
                    capabilities,
                    timeout,
                    log_level,
                },
            progress,
        } = c;
        // A call this node runs itself never leaves it: no hop needs the
        // signature, and signing (an ed25519 signature and a digest of the
        // arguments) is the largest cost of a local call.
        let local = engine
            .forwarding(&target)
            .and_then(|f| f.paths.first().map(|(n, _)| n.is_none()))
            .unwrap_or(false);
        let (mut call, call_id) = self.make_call(
            now,
            NewCall {
                target: target.clone(),
                tool,
                op,
                arguments,
                idempotent,
                timeout: timeout.unwrap_or(self.cfg.call_timeout),
                progress,
                log_level,
                sign: !local,
            },
        );
        let trace = trace
            .filter(TraceContext::is_valid)
            .unwrap_or_else(new_trace);
        call.trace = Some(trace);
        self.fronts.insert(
            id,
            FrontWait {
                target,
                call_id,
                started: now,
                trace_id: trace.trace_id,
            },
        );
        self.forward(
            now,
            engine,
            CallEvent::Front {
                id,
                call,
                opts: FrontOpts {
                    balance,
                    wants: wanted_tags(capabilities),
                },
            },
        )
    }

    /// The front's client cancelled, or went away: no answer is sent.
    pub fn on_front_cancel(
        &mut self,
        now: Micros,
        engine: &Engine,
        id: FrontId,
        reason: Option<String>,
    ) -> PlaneOut {
        self.fronts.remove(&id);
        self.forward(now, engine, CallEvent::FrontCancel { id, reason })
    }

    /// The front's client answered an ASK of call `id`.
    pub fn on_front_reply(
        &mut self,
        now: Micros,
        engine: &Engine,
        id: FrontId,
        ask: u32,
        outcome: CallOutcome,
    ) -> PlaneOut {
        self.forward(now, engine, CallEvent::FrontReply { id, ask, outcome })
    }

    /// A call message or transport event from the network (not `Front*`).
    pub fn on_call(&mut self, now: Micros, engine: &Engine, ev: CallEvent) -> PlaneOut {
        self.forward(now, engine, ev)
    }

    /// A local run reported.
    pub fn on_local(&mut self, now: Micros, engine: &Engine, ev: LocalEvent) -> PlaneOut {
        // The run's end measures its agent (health as MED).
        let remed = match &ev {
            LocalEvent::Done { id, outcome } => self.health_run_done(now, *id, outcome),
            _ => Vec::new(),
        };
        let ev = match ev {
            LocalEvent::Progress { id, info } => CallEvent::LocalProgress { id, info },
            LocalEvent::Notify { id, method, params } => {
                CallEvent::LocalNotify { id, method, params }
            }
            LocalEvent::Ask {
                id,
                ask,
                method,
                params,
            } => CallEvent::LocalAsk {
                id,
                ask,
                method,
                params,
            },
            LocalEvent::Done { id, outcome } => CallEvent::LocalDone { id, outcome },
        };
        let mut out = self.forward(now, engine, ev);
        out.engine.extend(remed);
        out
    }

    pub(super) fn make_call(&self, now: Micros, c: NewCall) -> (Call, CallId) {
        let mut id = [0u8; 16];
        rand::RngCore::fill_bytes(&mut rand::thread_rng(), &mut id);
        let call_id = CallId(id);
        let timeout_ms = u64::try_from(c.timeout.as_millis()).unwrap_or(u64::MAX);
        let mut origin = CallOrigin {
            id: call_id,
            caller: self.cfg.node,
            caller_asn: self.cfg.asn,
            communities: self.cfg.communities.clone(),
            target: c.target,
            op: c.op,
            idempotent: c.idempotent,
            tool: c.tool,
            args_digest: if c.sign {
                args_digest(&c.arguments)
            } else {
                [0; 32]
            },
            issued: now.millis(),
            deadline: now.millis().saturating_add_ms(timeout_ms),
            cert: if c.sign { self.signer.cert() } else { None },
            signature: None,
        };
        if c.sign {
            origin.signature = self.signer.sign(&origin);
        }
        (
            Call {
                sealed: None,
                leg: LegId(0),
                hop_limit: self.cfg.hop_limit,
                progress: c.progress,
                log_level: c.log_level,
                origin: Arc::new(origin),
                arguments: c.arguments,
                trace: None,
            },
            call_id,
        )
    }

    /// Runs the forwarder and turns what it asks into the plane's output.
    pub(super) fn forward(&mut self, now: Micros, engine: &Engine, ev: CallEvent) -> PlaneOut {
        let mut out = PlaneOut::default();
        self.recent.arriving(&ev);
        let mut pending = VecDeque::from([ev]);
        while let Some(ev) = pending.pop_front() {
            for a in self.fwd.handle(now, engine, ev) {
                match a {
                    CallAction::SendCall { .. }
                    | CallAction::Answer { .. }
                    | CallAction::SendResult { .. }
                    | CallAction::SendProgress { .. }
                    | CallAction::SendCancel { .. }
                    | CallAction::SendNotify { .. }
                    | CallAction::SendAsk { .. }
                    | CallAction::SendReply { .. } => out.net.push(a),
                    CallAction::FrontNotify { id, method, params } => {
                        if self.fronts.contains_key(&id) {
                            out.front.push(FrontReply::Notify { id, method, params });
                        }
                    }
                    CallAction::FrontAsk {
                        id,
                        ask,
                        method,
                        params,
                    } => {
                        if self.fronts.contains_key(&id) {
                            out.front.push(FrontReply::Ask {
                                id,
                                ask,
                                method,
                                params,
                            });
                        }
                    }
                    CallAction::LocalReply { id, ask, outcome } => {
                        out.replies.push((id, ask, outcome))
                    }
                    CallAction::Deliver(d) => match self.deliver(now, d) {
                        Delivered::Run(run) => {
                            self.health_run_started(now, run.id, &run.agent);
                            out.runs.push(run)
                        }
                        Delivered::Now(done) => pending.push_back(done),
                    },
                    CallAction::CancelLocal { id } => out.cancel.push(id),
                    CallAction::FrontProgress { id, info } => {
                        if self.fronts.contains_key(&id) {
                            out.front.push(FrontReply::Progress { id, info });
                        }
                    }
                    CallAction::FrontDone { id, ret } => {
                        if let Some(ret) = self.front_done(now, id, ret) {
                            out.front.push(FrontReply::Done { id, ret });
                        }
                    }
                    CallAction::Finished(r) => self.finished(now, r),
                }
            }
        }
        out
    }

    /// The end of a front call: counted and logged, and returned for the
    /// front (an internal DESCRIBE ends here instead).
    fn front_done(&mut self, now: Micros, id: FrontId, ret: CallReturn) -> Option<CallReturn> {
        if id.0 >= INTERNAL_FRONT {
            self.describe_done(now, id, ret);
            return None;
        }
        let w = self.fronts.remove(&id)?;
        let us = now.0.saturating_sub(w.started.0);
        self.metrics.observe_front(ret.outcome.label(), us);
        log_trace(&w.target, &w.call_id, &w.trace_id, &ret, us);
        Some(ret)
    }

    /// A run on a local agent for the node to start; or, when there is
    /// nothing to run (a DESCRIBE is answered from the hosted tools,
    /// arguments that are not an object are refused), its end at once.
    fn deliver(&mut self, now: Micros, d: Delivery) -> Delivered {
        if let Some(c) = &d.claimed_community {
            // A rule opted in to communities nobody vouched for: the log
            // says the call ran on the caller's word alone.
            tracing::warn!(
                call = %d.call_id,
                caller_asn = %d.caller_asn,
                community = %c,
                prefix = %d.prefix,
                "call allowed on a community the caller claims without a certificate vouching for it"
            );
        }
        let done = |outcome| Delivered::Now(CallEvent::LocalDone { id: d.id, outcome });
        let hosted = self.hosted.get(&d.agent);
        let item = hosted.and_then(|h| h.items.get(&d.prefix));
        if d.op == CallOp::Describe {
            let described = match item {
                Some(i) => Some(Json::Object(i.json.clone())),
                None => hosted
                    .and_then(|h| h.tools.get(d.tool.as_ref()))
                    .and_then(|t| serde_json::to_value(t.as_ref()).ok()),
            };
            return done(match described {
                Some(v) => CallOutcome::Ok(v),
                None => CallOutcome::err(
                    CallErrorKind::AgentDown,
                    format!("agent {} has nothing under {} right now", d.agent, d.prefix),
                ),
            });
        }
        let arguments = match d.arguments {
            Json::Object(m) => m,
            Json::Null => Map::new(),
            other => {
                return done(CallOutcome::Err(CallError::upstream(
                    -32602,
                    format!("arguments must be an object, not {other}"),
                    None,
                )));
            }
        };
        // The operation must fit what the route leads to: no tools/call of
        // a prompt, no read of a URI the route does not serve.
        if let Err(why) = op_fits(d.op, item.map(|i| i.as_ref()), &arguments) {
            return done(CallOutcome::Err(CallError::upstream(
                -32602,
                format!("{}: {why}", d.prefix),
                None,
            )));
        }
        let left_ms = d.deadline.saturating_sub(now.millis()).max(1);
        Delivered::Run(LocalRun {
            id: d.id,
            agent: d.agent,
            op: d.op,
            tool: d.tool.to_string(),
            arguments,
            timeout: Duration::from_millis(left_ms),
            progress: d.progress,
            log_level: d.log_level,
            trace: d.trace,
        })
    }
}

/// Whether operation `op` may run on the route that leads to `item` (`None`:
/// a tool) with these arguments.
fn op_fits(
    op: CallOp,
    item: Option<&ItemDescriptor>,
    args: &Map<String, Json>,
) -> Result<(), String> {
    let kind = item.map(|i| i.kind);
    let uri = || args.get("uri").and_then(Json::as_str);
    match (op, kind) {
        (CallOp::Tool, None) => Ok(()),
        (CallOp::Prompt, Some(ItemKind::Prompt)) => Ok(()),
        (CallOp::Resource | CallOp::Subscribe, Some(ItemKind::Resource)) => match (uri(), item) {
            (Some(u), Some(i)) if u == i.key() => Ok(()),
            _ => Err("the URI is not the one this route serves".into()),
        },
        (CallOp::Resource | CallOp::Subscribe, Some(ItemKind::Template)) => match (uri(), item) {
            (Some(u), Some(i)) if match_template(i.key(), u).is_some() => Ok(()),
            _ => Err("the URI does not match this route's template".into()),
        },
        (CallOp::Complete, Some(k @ (ItemKind::Prompt | ItemKind::Template))) => {
            let r = args.get("ref");
            let ty = r.and_then(|r| r.get("type")).and_then(Json::as_str);
            let (want_ty, field) = if k == ItemKind::Prompt {
                ("ref/prompt", "name")
            } else {
                ("ref/resource", "uri")
            };
            let named = r.and_then(|r| r.get(field)).and_then(Json::as_str);
            match (ty, named, item) {
                (Some(t), Some(n), Some(i)) if t == want_ty && n == i.key() => Ok(()),
                _ => Err(format!("the completion's ref is not this route's {k}")),
            }
        }
        (op, kind) => Err(format!(
            "{} does not apply to a {}",
            op.method(),
            kind.map_or("tool", ItemKind::name)
        )),
    }
}

/// What a delivery comes to: a run for the node, or an end at once.
enum Delivered {
    Run(LocalRun),
    Now(CallEvent),
}

/// A new trace for a call whose client started none: a random trace id,
/// no parent span, sampled.
fn new_trace() -> TraceContext {
    let mut trace_id = [0u8; 16];
    while trace_id == [0; 16] {
        rand::RngCore::fill_bytes(&mut rand::thread_rng(), &mut trace_id);
    }
    TraceContext {
        trace_id,
        span_id: [0; 8],
        flags: TraceContext::SAMPLED,
    }
}

/// Logs a finished front call with its path and each hop's share.
fn log_trace(target: &Prefix, id: &CallId, trace_id: &[u8; 16], ret: &CallReturn, total_us: u64) {
    if !tracing::enabled!(tracing::Level::INFO) {
        return;
    }
    let path: Vec<String> = ret.trace.iter().rev().map(|h| h.asn.to_string()).collect();
    let hops = crate::core::call::hop_costs(&ret.trace)
        .iter()
        .map(|(h, us)| format!("{} {:.3}ms", h.asn, *us as f64 / 1000.0))
        .collect::<Vec<_>>()
        .join(", ");
    tracing::info!(
        call = %id.short(),
        trace_id = %hex::encode(trace_id),
        %target,
        outcome = ret.outcome.label(),
        path = %path.join(" -> "),
        per_hop = %hops,
        total_ms = total_us as f64 / 1000.0,
        "call"
    );
}

/// The tags a front call wants, as balancing takes them: sorted, each once.
fn wanted_tags(tags: Vec<String>) -> Vec<std::sync::Arc<str>> {
    let mut v: Vec<std::sync::Arc<str>> = tags.into_iter().map(Into::into).collect();
    v.sort();
    v.dedup();
    v
}
