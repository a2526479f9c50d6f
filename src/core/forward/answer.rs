//! What comes back from downstream (answers, progress, results) and how a
//! call ends: finished, refused, cancelled, or timed out by the clock.

use super::*;
use crate::core::call::{
    Ask, Call, CallAnswer, CallError, CallErrorKind, CallOp, CallOutcome, CallResult, CallReturn,
    Cancel, HopTrace, LegId, Notify, Progress, ProgressInfo, Reply, Sealed, TraceContext,
};
use serde_json::Value as Json;
use std::sync::Arc;

/// A message on the way back to the caller.
pub(super) enum Back {
    Notify(String, serde_json::Value),
    Ask(u32, String, serde_json::Value),
}
use crate::core::ids::{AgentId, NodeId};

impl Forwarder {
    pub(super) fn on_answered(
        &mut self,
        now: Micros,
        routes: &impl CallRoutes,
        peer: NodeId,
        leg: LegId,
        answer: CallAnswer,
        out: &mut Vec<CallAction>,
    ) {
        let Some(key) = self.table.by_leg(&peer, leg) else {
            if let CallAnswer::Accepted = answer {
                // We gave up on this call (deadline, cancel) before the
                // answer came: tell the peer to stop.
                out.push(CallAction::SendCancel {
                    peer,
                    cancel: Cancel {
                        leg,
                        reason: Some("this call is no longer wanted".into()),
                    },
                });
            }
            return;
        };
        match answer {
            CallAnswer::Accepted => {
                if let Some(e) = self.table.get_mut(&key)
                    && !e.idempotent
                {
                    e.resend = None;
                }
            }
            CallAnswer::Refused(err) => {
                // Nothing ran. A routing refusal (the next hop has no
                // route, or has not advertised one to us yet: it is
                // restarting, or its UPDATE is on the way) may not hold on
                // another path, so that is tried, whatever the tool. Other
                // refusals (denied, bad caller, expired) would be the same
                // on every path.
                let routing = matches!(
                    err.kind,
                    CallErrorKind::NoRoute | CallErrorKind::NotAdvertised
                );
                if routing && self.retry_elsewhere(now, routes, key, peer, &err.message, out) {
                    return;
                }
                self.finish(
                    now,
                    key,
                    CallReturn {
                        sealed: None,
                        seal: None,
                        sent_back: 0,
                        outcome: CallOutcome::Err(err),
                        trace: Vec::new(),
                    },
                    out,
                );
            }
            CallAnswer::Done(ret) => {
                self.stats.answered_inline += 1;
                self.finish_from_down(now, key, ret, out);
            }
        }
    }

    /// Relays progress back, at most every [`PROGRESS_INTERVAL_US`] per
    /// call; what comes between is held, newest only, and sent when the
    /// interval is over (never more than one message held per call).
    pub(super) fn relay_progress(
        &mut self,
        now: Micros,
        key: InKey,
        info: ProgressInfo,
        out: &mut Vec<CallAction>,
    ) {
        let Some(e) = self.table.get_mut(&key) else {
            return;
        };
        if !e.progress {
            return;
        }
        if e.progress_count < PROGRESS_BURST && e.progress_held.is_none() {
            e.progress_count += 1;
            e.back_out += 1;
            e.progress_sent = Some(now);
            Self::send_progress(key, info, out);
            return;
        }
        e.progress_count = e.progress_count.saturating_add(1);
        if let Some(sent) = e.progress_sent
            && now.0 < sent.0 + PROGRESS_INTERVAL_US
        {
            if e.progress_held.replace(info).is_some() {
                self.stats.progress_coalesced += 1;
            } else {
                self.table
                    .arm(Micros(sent.0 + PROGRESS_INTERVAL_US), Timer::Progress, key);
            }
            return;
        }
        // A held one whose timer has not fired yet is older than this one:
        // this supersedes it (and keeps the order).
        let superseded = e.progress_held.take().and(e.progress_sent);
        e.progress_sent = Some(now);
        e.back_out += 1;
        if let Some(sent) = superseded {
            self.stats.progress_coalesced += 1;
            self.table
                .disarm(Micros(sent.0 + PROGRESS_INTERVAL_US), Timer::Progress, key);
        }
        Self::send_progress(key, info, out);
    }

    /// A return from the next hop: finished at once, unless it says PROGRESS
    /// preceded it that has not arrived (overtaken on the way); then it is
    /// held until they do, or for at most [`RETURN_HOLD_US`].
    pub(super) fn finish_from_down(
        &mut self,
        now: Micros,
        key: InKey,
        ret: CallReturn,
        out: &mut Vec<CallAction>,
    ) {
        if let Some(e) = self.table.get_mut(&key)
            && ret.sent_back > e.back_in
            && e.held_return.is_none()
        {
            let at = Micros(now.0 + RETURN_HOLD_US);
            e.held_return = Some((at, ret));
            self.table.arm(at, Timer::Hold, key);
            return;
        }
        self.finish(now, key, ret, out);
    }

    /// PROGRESS from the next hop: relayed, and a held return released once
    /// everything it waited for is here.
    pub(super) fn progress_from_down(
        &mut self,
        now: Micros,
        key: InKey,
        info: ProgressInfo,
        out: &mut Vec<CallAction>,
    ) {
        if !self.table.contains(&key) {
            return;
        }
        self.relay_progress(now, key, info, out);
        self.came_back(now, key, out);
    }

    /// NOTIFY or ASK from the next hop: relayed, then counted like PROGRESS.
    pub(super) fn back_from_down(
        &mut self,
        now: Micros,
        key: Option<InKey>,
        m: Back,
        out: &mut Vec<CallAction>,
    ) {
        self.relay_back(key, m, out);
        if let Some(key) = key {
            self.came_back(now, key, out);
        }
    }

    /// One more message came back on the call's current leg; a held return
    /// it was the last one missing for goes on.
    fn came_back(&mut self, now: Micros, key: InKey, out: &mut Vec<CallAction>) {
        let Some(e) = self.table.get_mut(&key) else {
            return;
        };
        e.back_in = e.back_in.saturating_add(1);
        let due = e
            .held_return
            .as_ref()
            .is_some_and(|(_, r)| r.sent_back <= e.back_in);
        if due && let Some((at, ret)) = e.held_return.take() {
            self.table.disarm(at, Timer::Hold, key);
            self.finish(now, key, ret, out);
        }
    }

    /// Counts one side-channel message against the call's share; false
    /// (and counted as dropped) when there is no such call or its share
    /// is used up.
    fn side_allowed(&mut self, key: Option<InKey>) -> Option<InKey> {
        let Some(e) = key.and_then(|k| self.table.get_mut(&k)) else {
            self.stats.side_dropped += 1;
            return None;
        };
        if e.side >= MAX_SIDE_MESSAGES {
            self.stats.side_dropped += 1;
            return None;
        }
        e.side += 1;
        self.stats.side_relayed += 1;
        key
    }

    /// Relays a NOTIFY or ASK back towards the caller of the call `key`.
    pub(super) fn relay_back(&mut self, key: Option<InKey>, m: Back, out: &mut Vec<CallAction>) {
        let Some(key) = self.side_allowed(key) else {
            return;
        };
        if let Some(e) = self.table.get_mut(&key) {
            e.back_out += 1;
        }
        out.push(match (key, m) {
            (InKey::Front(id), Back::Notify(method, params)) => {
                CallAction::FrontNotify { id, method, params }
            }
            (InKey::Front(id), Back::Ask(ask, method, params)) => CallAction::FrontAsk {
                id,
                ask,
                method,
                params,
            },
            (InKey::Peer(peer, leg), Back::Notify(method, params)) => CallAction::SendNotify {
                peer,
                notify: Notify {
                    leg,
                    method,
                    params,
                },
            },
            (InKey::Peer(peer, leg), Back::Ask(ask, method, params)) => CallAction::SendAsk {
                peer,
                ask: Ask {
                    leg,
                    ask,
                    method,
                    params,
                },
            },
        });
    }

    /// Relays a REPLY on towards the origin of the call `key` (that came
    /// from the front, or from the peer that sent the REPLY).
    pub(super) fn relay_reply(
        &mut self,
        key: InKey,
        ask: u32,
        outcome: CallOutcome,
        out: &mut Vec<CallAction>,
    ) {
        let Some(key) = self.side_allowed(Some(key).filter(|k| self.table.contains(k))) else {
            return;
        };
        let Some(e) = self.table.get(&key) else {
            return;
        };
        out.push(match e.down {
            Down::Peer { peer, leg } => CallAction::SendReply {
                peer,
                reply: Reply { leg, ask, outcome },
            },
            Down::Local(id) => CallAction::LocalReply { id, ask, outcome },
        });
    }

    pub(super) fn send_progress(key: InKey, info: ProgressInfo, out: &mut Vec<CallAction>) {
        match key {
            InKey::Front(id) => out.push(CallAction::FrontProgress { id, info }),
            InKey::Peer(peer, leg) => out.push(CallAction::SendProgress {
                peer,
                progress: Progress { leg, info },
            }),
        }
    }

    // ----- endings -----

    /// A call ends with `ret`: pass it back the way it came.
    pub(super) fn finish(
        &mut self,
        now: Micros,
        key: InKey,
        mut ret: CallReturn,
        out: &mut Vec<CallAction>,
    ) {
        let Some(mut e) = self.remove(key) else {
            return;
        };
        // Progress still held for its interval goes first: it is older
        // than the result.
        if let Some(info) = e.progress_held.take() {
            e.back_out += 1;
            Self::send_progress(key, info, out);
        }
        ret.sent_back = e.back_out;
        let elapsed = now.0.saturating_sub(e.started.0);
        ret.trace.push(HopTrace {
            node: self.cfg.node,
            asn: self.cfg.asn,
            elapsed_us: elapsed,
        });
        self.seal_or_check(now, key, &e, &mut ret);
        match &ret.outcome {
            CallOutcome::Ok(_) => self.stats.completed += 1,
            CallOutcome::Err(err) => {
                self.stats.failed += 1;
                if err.kind == CallErrorKind::Timeout {
                    self.stats.timeouts += 1;
                }
            }
        }
        let to = e.down.peer();
        // The round trip from the CALL to its result: the latency
        // balancer's sample. A timeout counts its whole wait; other errors
        // are not samples (a hop that fails fast must not look fast).
        let sample = match &ret.outcome {
            CallOutcome::Ok(_) => true,
            CallOutcome::Err(err) => err.kind == CallErrorKind::Timeout,
        };
        if let (Some(peer), true) = (to, sample) {
            self.balancer
                .observe(now, peer, now.0.saturating_sub(e.sent_at.0));
        }
        out.push(CallAction::Finished(CallRecord {
            call_id: e.call_id,
            caller: e.origin.caller,
            caller_asn: e.origin.caller_asn,
            target: e.target.clone(),
            from: key.peer(),
            to,
            agent: e.agent.clone(),
            outcome: ret.outcome.label(),
            elapsed_us: elapsed,
            retries: e.retries,
            op: e.origin.op,
            tool: e.origin.tool.clone(),
            trace: e.trace,
            parent_span: e.parent_span,
            hops: ret.trace.clone(),
        }));
        match key {
            InKey::Front(id) => out.push(CallAction::FrontDone { id, ret }),
            InKey::Peer(peer, leg) => {
                if e.ack_until.is_some() {
                    out.push(CallAction::Answer {
                        peer,
                        leg,
                        answer: CallAnswer::Done(ret),
                    })
                } else {
                    out.push(CallAction::SendResult {
                        peer,
                        result: CallResult { leg, ret },
                    })
                }
            }
        }
    }

    /// The origin seals its answer to a peer's call; the calling node
    /// checks the seal of an answer that came back from a peer before its
    /// front sees it (an answer without a valid seal of the route's origin
    /// becomes a `bad_answer` error naming the hop that handed it over).
    fn seal_or_check(&mut self, now: Micros, key: InKey, e: &Entry, ret: &mut CallReturn) {
        if let (InKey::Front(_), Down::Peer { peer, .. }) = (key, &e.down)
            && let Some(s) = ret.sealed.take()
            && let Err(why) = self.open_result(e, ret, &s)
        {
            self.stats.sealed_refused += 1;
            tracing::warn!(call = %e.call_id.short(), next_hop = %peer.short(), %why, "a sealed answer did not open");
            ret.seal = None;
            ret.outcome = CallOutcome::err(
                CallErrorKind::BadAnswer,
                format!(
                    "{}: the answer handed over by next hop {} does not open ({why}); not returned",
                    self.here(),
                    peer.short()
                ),
            );
            return;
        }
        self.sign_or_check(now, key, e, ret);
        // The origin encrypts after it signed: the seal covers the
        // plaintext, which the caller checks after opening.
        if e.reply_key.is_some() && matches!((key, &e.down), (InKey::Peer(..), Down::Local(_))) {
            self.seal_result(e, ret);
        }
    }

    fn sign_or_check(&mut self, now: Micros, key: InKey, e: &Entry, ret: &mut CallReturn) {
        let Some(a) = &self.answers else {
            return;
        };
        match (key, &e.down) {
            (InKey::Peer(..), Down::Local(_)) => ret.seal = a.seal(&e.origin, ret),
            (InKey::Front(_), Down::Peer { peer, .. }) => {
                match a.check(now.millis(), &e.origin, ret, &e.origins) {
                    Ok(None) => {}
                    Ok(Some((node, asn))) => {
                        self.stats.answers_verified += 1;
                        if e.origin.op == CallOp::Tool
                            && let CallOutcome::Ok(Json::Object(m)) = &mut ret.outcome
                        {
                            let meta = m
                                .entry("_meta")
                                .or_insert_with(|| Json::Object(Default::default()));
                            if let Json::Object(meta) = meta {
                                meta.insert(
                                    ANSWER_META.into(),
                                    serde_json::json!({
                                        "verified": true,
                                        "origin_node": node.to_string(),
                                        "origin_asn": asn.0,
                                    }),
                                );
                            }
                        }
                    }
                    Err(why) => {
                        self.stats.answers_refused += 1;
                        tracing::warn!(call = %e.call_id.short(), next_hop = %peer.short(), %why, "an answer failed its origin check");
                        ret.seal = None;
                        ret.outcome = CallOutcome::err(
                            CallErrorKind::BadAnswer,
                            format!(
                                "{}: the answer handed over by next hop {} is not what the origin of {} said ({why}); not returned",
                                self.here(),
                                peer.short(),
                                e.target
                            ),
                        );
                    }
                }
            }
            _ => {}
        }
    }

    /// Seals this origin's `Ok` answer (after its seal signed it) to the
    /// calling node, for a call whose arguments came sealed.
    fn seal_result(&mut self, e: &Entry, ret: &mut CallReturn) {
        let (Some(p), Some(k), CallOutcome::Ok(v)) = (&self.payloads, &e.reply_key, &ret.outcome)
        else {
            return;
        };
        let plain = serde_json::to_vec(v).unwrap_or_default();
        match p.seal_reply(k, &e.origin, &plain) {
            Some(s) => {
                ret.outcome = CallOutcome::Ok(Json::Null);
                ret.sealed = Some(Arc::new(s));
            }
            None => {
                // The caller's node id is its verified key: cannot happen.
                tracing::warn!(call = %e.call_id.short(), "cannot seal the answer to the caller: sent in the clear")
            }
        }
    }

    /// Opens the sealed `Ok` outcome of an answer to a call made here
    /// (before its seal is checked: the seal covers the plaintext).
    fn open_result(&mut self, e: &Entry, ret: &mut CallReturn, s: &Sealed) -> Result<(), String> {
        if s.to != self.cfg.node {
            return Err(format!("sealed for node {}, not this one", s.to.short()));
        }
        if !matches!(ret.outcome, CallOutcome::Ok(Json::Null)) {
            return Err("a sealed answer that also carries an outcome".into());
        }
        let Some(p) = &self.payloads else {
            return Err("this node cannot open sealed answers".into());
        };
        let Some(k) = &e.reply_key else {
            return Err("a sealed answer to a call this node did not seal".into());
        };
        let plain = p.open_reply(k, &e.origin, s)?;
        let v = serde_json::from_slice(&plain)
            .map_err(|e| format!("the sealed answer is not JSON: {e}"))?;
        ret.outcome = CallOutcome::Ok(v);
        self.stats.sealed_opened += 1;
        Ok(())
    }

    /// Refuses a call before it went anywhere.
    pub(super) fn refuse(
        &mut self,
        key: InKey,
        call: &Call,
        e: CallError,
        out: &mut Vec<CallAction>,
    ) {
        self.stats.refused += 1;
        let from = key.peer();
        self.record(call, from, None, e.kind.name(), out);
        let ret = CallReturn {
            sealed: None,
            seal: None,
            sent_back: 0,
            outcome: CallOutcome::Err(e),
            trace: vec![HopTrace {
                node: self.cfg.node,
                asn: self.cfg.asn,
                elapsed_us: 0,
            }],
        };
        match key {
            InKey::Front(id) => out.push(CallAction::FrontDone { id, ret }),
            InKey::Peer(peer, leg) => out.push(CallAction::Answer {
                peer,
                leg,
                answer: match ret.outcome {
                    CallOutcome::Err(e) => CallAnswer::Refused(e),
                    CallOutcome::Ok(_) => CallAnswer::Done(ret),
                },
            }),
        }
    }

    pub(super) fn record(
        &self,
        call: &Call,
        from: Option<NodeId>,
        to: Option<NodeId>,
        outcome: &'static str,
        out: &mut Vec<CallAction>,
    ) {
        let (trace, parent_span) = TraceContext::for_hop(call, &self.cfg.node);
        out.push(CallAction::Finished(CallRecord {
            call_id: call.origin.id,
            caller: call.origin.caller,
            caller_asn: call.origin.caller_asn,
            target: call.origin.target.clone(),
            from,
            to,
            agent: None,
            outcome,
            elapsed_us: 0,
            retries: 0,
            op: call.origin.op,
            tool: call.origin.tool.clone(),
            trace,
            parent_span,
            hops: vec![HopTrace {
                node: self.cfg.node,
                asn: self.cfg.asn,
                elapsed_us: 0,
            }],
        }));
    }

    /// The caller no longer wants the call: stop it downstream, answer a
    /// held CALL, forget it. No result goes back.
    pub(super) fn cancel_entry(
        &mut self,
        now: Micros,
        key: InKey,
        reason: Option<String>,
        out: &mut Vec<CallAction>,
    ) {
        if !self.table.contains(&key) {
            return;
        }
        self.stats.cancelled += 1;
        let reason = reason.unwrap_or_else(|| "cancelled by the caller".into());
        self.abandon(now, key, &reason, out);
    }

    pub(super) fn abandon(
        &mut self,
        now: Micros,
        key: InKey,
        reason: &str,
        out: &mut Vec<CallAction>,
    ) {
        let Some(e) = self.remove(key) else {
            return;
        };
        match e.down {
            Down::Peer { peer, leg } => out.push(CallAction::SendCancel {
                peer,
                cancel: Cancel {
                    leg,
                    reason: Some(reason.to_string()),
                },
            }),
            Down::Local(id) => out.push(CallAction::CancelLocal { id }),
        }
        if let (InKey::Peer(peer, leg), Some(_)) = (key, e.ack_until) {
            out.push(CallAction::Answer {
                peer,
                leg,
                answer: CallAnswer::Refused(CallError::new(
                    CallErrorKind::Cancelled,
                    format!("{}: cancelled ({reason})", self.here()),
                )),
            });
        }
        out.push(CallAction::Finished(CallRecord {
            call_id: e.call_id,
            caller: e.origin.caller,
            caller_asn: e.origin.caller_asn,
            target: e.target,
            from: key.peer(),
            to: e.down.peer(),
            agent: e.agent,
            outcome: CallErrorKind::Cancelled.name(),
            elapsed_us: now.0.saturating_sub(e.started.0),
            retries: e.retries,
            op: e.origin.op,
            tool: e.origin.tool.clone(),
            trace: e.trace,
            parent_span: e.parent_span,
            hops: Vec::new(),
        }));
    }

    pub(super) fn on_tick(&mut self, now: Micros, out: &mut Vec<CallAction>) {
        while let Some((timer, key)) = self.table.pop_due(now) {
            match timer {
                Timer::Progress => {
                    if let Some(e) = self.table.get_mut(&key)
                        && let Some(info) = e.progress_held.take()
                    {
                        e.progress_sent = Some(now);
                        e.back_out += 1;
                        Self::send_progress(key, info, out);
                    }
                }
                Timer::Hold => {
                    if let Some((_, ret)) =
                        self.table.get_mut(&key).and_then(|e| e.held_return.take())
                    {
                        self.finish(now, key, ret, out);
                    }
                }
                Timer::Ack => {
                    if let (Some(e), InKey::Peer(peer, leg)) = (self.table.get_mut(&key), key)
                        && e.ack_until.take().is_some()
                    {
                        out.push(CallAction::Answer {
                            peer,
                            leg,
                            answer: CallAnswer::Accepted,
                        });
                    }
                }
                Timer::Deadline => {
                    let Some(e) = self.table.get(&key) else {
                        continue;
                    };
                    let waited_ms = now.0.saturating_sub(e.started.0) / 1000;
                    let (down, sent) = match e.down {
                        Down::Peer { peer, leg } => (
                            Some(CallAction::SendCancel {
                                peer,
                                cancel: Cancel {
                                    leg,
                                    reason: Some("deadline passed".into()),
                                },
                            }),
                            format!("next hop {}", peer.short()),
                        ),
                        Down::Local(id) => (
                            Some(CallAction::CancelLocal { id }),
                            format!(
                                "agent {}",
                                e.agent.as_ref().map(AgentId::as_str).unwrap_or("?")
                            ),
                        ),
                    };
                    out.extend(down);
                    let msg = format!(
                        "{}: no result from {sent} within the deadline ({waited_ms} ms); the tool may or may not have run (a cancellation was sent)",
                        self.here()
                    );
                    self.finish(
                        now,
                        key,
                        CallReturn {
                            sealed: None,
                            seal: None,
                            sent_back: 0,
                            outcome: CallOutcome::err(CallErrorKind::Timeout, msg),
                            trace: Vec::new(),
                        },
                        out,
                    );
                }
            }
        }
        self.replay.expire(now.millis());
    }
}
