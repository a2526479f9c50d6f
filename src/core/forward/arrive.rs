//! Calls entering this hop, from the front or a peer: admission (deadline,
//! quotas, advertised to the sender), the choice of next hop, and delivery
//! to a local agent at the origin (caller verified, replays refused, access
//! policy).

use std::sync::Arc;

use super::*;
use crate::core::access::Caller;
use crate::core::call::{
    Call, CallAnswer, CallError, CallErrorKind, CallOutcome, CallReturn, LegId, ReplyKey, Sealed,
    TraceContext,
};
use crate::core::ids::{AgentId, NodeId};
use crate::core::prefix::Prefix;
use quota::Source;
use serde_json::Value as Json;

/// The local route a call ends at: the prefix it matched, the agent, and
/// the tool the route names (none: not a tool route).
pub(super) struct Local {
    prefix: Prefix,
    agent: AgentId,
    tool: Option<Arc<str>>,
}

impl Forwarder {
    pub(super) fn on_front(
        &mut self,
        now: Micros,
        routes: &impl CallRoutes,
        id: FrontId,
        call: Call,
        opts: FrontOpts,
        out: &mut Vec<CallAction>,
    ) {
        self.stats.from_front += 1;
        let key = InKey::Front(id);
        let refuse = |kind, msg: String, out: &mut Vec<CallAction>| {
            out.push(CallAction::FrontDone {
                id,
                ret: CallReturn {
                    sealed: None,
                    seal: None,
                    sent_back: 0,
                    outcome: CallOutcome::err(kind, msg),
                    trace: Vec::new(),
                },
            })
        };
        if self.table.contains(&key) {
            debug_assert!(false, "front id {id:?} reused while in flight");
            return refuse(
                CallErrorKind::Internal,
                format!("{}: front call id reused", self.here()),
                out,
            );
        }
        if let Err(e) = self.admit(now, &call, Source::Front, 0) {
            self.stats.refused += 1;
            self.record(&call, None, None, e.kind.name(), out);
            return out.push(CallAction::FrontDone {
                id,
                ret: CallReturn {
                    sealed: None,
                    seal: None,
                    sent_back: 0,
                    outcome: CallOutcome::Err(e),
                    trace: Vec::new(),
                },
            });
        }
        self.route(now, routes, key, call, (opts.balance, opts.wants), out);
        self.end_admission();
    }

    /// Gives back the claim of a call that was admitted but refused before
    /// it took a table entry.
    pub(super) fn end_admission(&mut self) {
        if let Some(c) = self.admitting.take() {
            self.quotas.release(c);
        }
    }

    pub(super) fn on_inbound(
        &mut self,
        now: Micros,
        routes: &impl CallRoutes,
        peer: NodeId,
        call: Call,
        bytes: usize,
        out: &mut Vec<CallAction>,
    ) {
        self.stats.from_peers += 1;
        let key = InKey::Peer(peer, call.leg);
        let leg = call.leg;
        if self.table.contains(&key) {
            // The peer reused a leg id of a call still running: refuse the
            // newcomer, keep the original.
            return out.push(CallAction::Answer {
                peer,
                leg,
                answer: CallAnswer::Refused(CallError::new(
                    CallErrorKind::Internal,
                    format!("{}: leg {leg} is already in use", self.here()),
                )),
            });
        }
        let refused = if routes.advertised_cover(&peer, &call.origin.target) {
            self.admit(now, &call, Source::Peer(peer), bytes)
        } else {
            Err(CallError::new(
                CallErrorKind::NotAdvertised,
                format!(
                    "{}: no route covering {} was advertised to the sender",
                    self.here(),
                    call.origin.target
                ),
            ))
        };
        if let Err(e) = refused {
            self.stats.refused += 1;
            self.record(&call, Some(peer), None, e.kind.name(), out);
            return out.push(CallAction::Answer {
                peer,
                leg,
                answer: CallAnswer::Refused(e),
            });
        }
        let how = (self.cfg.balance_transit, Vec::new());
        self.route(now, routes, key, call, how, out);
        self.end_admission();
    }

    /// Checks that apply to every call entering this hop: its deadline,
    /// then the quotas. On success the claim waits in `admitting` for the
    /// call's table entry ([`Self::end_admission`] gives it back if none is
    /// made).
    pub(super) fn admit(
        &mut self,
        now: Micros,
        call: &Call,
        source: Source,
        bytes: usize,
    ) -> Result<(), CallError> {
        if now.millis() >= call.origin.deadline {
            return Err(CallError::new(
                CallErrorKind::Timeout,
                format!(
                    "{}: the call arrived after its deadline (clock skew or a slow path); not run",
                    self.here()
                ),
            ));
        }
        debug_assert!(self.admitting.is_none(), "a claim left from another call");
        let claim = self
            .quotas
            .admit(now, source, call.origin.caller, bytes)
            .map_err(|why| {
                CallError::new(CallErrorKind::Overloaded, format!("{}: {why}", self.here()))
            })?;
        self.admitting = Some(claim);
        Ok(())
    }

    /// Picks where a call goes and sends it there (or refuses it).
    /// `(balance, wants)`: the call asked to be balanced, and the
    /// capability tags it wants.
    pub(super) fn route(
        &mut self,
        now: Micros,
        routes: &impl CallRoutes,
        key: InKey,
        call: Call,
        (balance, wants): (bool, Vec<Arc<str>>),
        out: &mut Vec<CallAction>,
    ) {
        let from = key.peer();
        let Some(res) = routes.resolve(&call.origin.target) else {
            let e = CallError::new(
                CallErrorKind::NoRoute,
                format!("{}: no route to {}", self.here(), call.origin.target),
            );
            return self.refuse(key, &call, e, out);
        };
        if let Some(NextHop::Local { agent, tool }) = res.hops.first() {
            let here = Local {
                prefix: res.matched,
                agent: agent.clone(),
                tool: tool.clone(),
            };
            return self.deliver(now, key, call, here, out);
        }
        let Some(peer) = self.choose(now, &res, &call, (balance, &wants), from.as_ref(), &[])
        else {
            let e = CallError::new(
                CallErrorKind::NoRoute,
                format!(
                    "{}: the only path to {} leads back to the sender",
                    self.here(),
                    res.matched
                ),
            );
            return self.refuse(key, &call, e, out);
        };
        if call.hop_limit == 0 {
            let e = CallError::new(
                CallErrorKind::HopLimit,
                format!(
                    "{}: hop limit reached before the origin of {}",
                    self.here(),
                    res.matched
                ),
            );
            return self.refuse(key, &call, e, out);
        }
        if !self.quotas.next_hop_has_room(&peer) {
            let e = CallError::new(
                CallErrorKind::Overloaded,
                format!(
                    "{}: next hop {} already has {} of this node's calls, its share",
                    self.here(),
                    peer.short(),
                    self.quotas.to_peer(&peer)
                ),
            );
            return self.refuse(key, &call, e, out);
        }
        let leg = self.table.alloc_leg();
        let mut entry = self.entry(now, key, &call, Down::Peer { peer, leg });
        entry.idempotent = call.origin.idempotent;
        entry.balance = balance;
        entry.wants = wants;
        // Only the calling node checks the answer's seal against them.
        if matches!(key, InKey::Front(_)) {
            entry.origins = res.origin_asns(self.cfg.asn);
        }
        // The next hop's parent span is this hop's.
        let trace = entry.trace;
        self.insert(key, entry);
        self.stats.forwarded += 1;
        let mut call = call;
        call.hop_limit -= 1;
        call.trace = Some(trace);
        let seal = self.seal_target(key, &res, &peer);
        self.sent(now, key, (peer, leg), call, seal, out);
    }

    /// The node a call made here is sealed to when it goes to `peer`: the
    /// origin of that path, when the seal mode covers it and the route is
    /// signed. Transit calls go on as they came.
    pub(super) fn seal_target(
        &self,
        key: InKey,
        res: &Resolution,
        peer: &NodeId,
    ) -> Option<NodeId> {
        if !matches!(key, InKey::Front(_)) || self.payloads.is_none() {
            return None;
        }
        let (node, asn) = res.origin_of(peer)?;
        let external = asn.is_some_and(|a| a != self.cfg.asn);
        match self.cfg.seal {
            SealMode::Off => None,
            SealMode::External if !external => None,
            SealMode::External | SealMode::Always => node,
        }
    }

    /// Seals `call`'s arguments to `to` (a copy: the entry keeps them in
    /// the clear, to seal again for another path on a retry).
    fn sealed_copy(&mut self, key: InKey, call: &mut Call, to: &NodeId) {
        let Some(p) = &self.payloads else { return };
        let plain = serde_json::to_vec(&call.arguments).unwrap_or_default();
        match p.seal(to, &call.origin, &plain) {
            Some((s, reply)) => {
                call.arguments = Json::Null;
                call.sealed = Some(Arc::new(s));
                self.stats.sealed_out += 1;
                if let Some(e) = self.table.get_mut(&key) {
                    e.reply_key = Some(reply);
                }
            }
            // Only a node id that is no usable key gets here, and origin
            // attestations are signed by theirs.
            None => {
                tracing::warn!(call = %call.origin.id.short(), to = %to.short(), "cannot seal to the origin node: the arguments go in the clear")
            }
        }
    }

    /// Sends the entry's call (its hop limit already decremented) to
    /// `peer` on a fresh leg instead of where it went (a retry resends the
    /// same copy).
    pub(super) fn send_to(
        &mut self,
        now: Micros,
        key: InKey,
        peer: NodeId,
        call: Call,
        seal: Option<NodeId>,
        out: &mut Vec<CallAction>,
    ) {
        let Some((leg, before)) = self.table.reroute(key, peer) else {
            return;
        };
        if let Some(e) = self.table.get_mut(&key) {
            // PROGRESS of the new leg is counted from zero.
            e.back_in = 0;
        }
        if let Some(old) = before {
            self.quotas.sent_to(old, false);
        }
        self.sent(now, key, (peer, leg), call, seal, out);
    }

    /// The entry's call goes to `peer` on `leg`: counted against the peer,
    /// kept for a resend, and sent.
    pub(super) fn sent(
        &mut self,
        now: Micros,
        key: InKey,
        (peer, leg): (NodeId, LegId),
        mut call: Call,
        seal: Option<NodeId>,
        out: &mut Vec<CallAction>,
    ) {
        call.leg = leg;
        self.quotas.sent_to(peer, true);
        if let Some(e) = self.table.get_mut(&key) {
            e.tried.push(peer);
            e.sent_at = now;
            // Keep a copy until the peer has it for sure; keep it for good
            // if the call may be retried after that.
            e.resend = Some(call.clone());
        }
        if let Some(to) = seal {
            self.sealed_copy(key, &mut call, &to);
        }
        out.push(CallAction::SendCall { peer, call });
    }

    /// The table entry of a call entering here, going to `down`: its
    /// deadline capped at `max_call_ms` from now, the answer of a peer's
    /// CALL owed for up to the hold time.
    fn entry(&self, now: Micros, key: InKey, call: &Call, down: Down) -> Entry {
        let cap = now.millis().saturating_add_ms(self.cfg.max_call_ms);
        let (trace, parent_span) = TraceContext::for_hop(call, &self.cfg.node);
        Entry {
            call_id: call.origin.id,
            target: call.origin.target.clone(),
            started: now,
            sent_at: now,
            deadline: Micros::from_millis(call.origin.deadline.min(cap)),
            ack_until: key.peer().map(|_| now.plus_us(self.cfg.ack_hold_us)),
            progress: call.progress,
            down,
            agent: None,
            resend: None,
            idempotent: false,
            tried: Vec::new(),
            retries: 0,
            balance: false,
            wants: Vec::new(),
            claim: None,
            progress_sent: None,
            progress_held: None,
            progress_count: 0,
            side: 0,
            back_out: 0,
            back_in: 0,
            held_return: None,
            origin: call.origin.clone(),
            origins: Vec::new(),
            reply_key: None,
            trace,
            parent_span,
        }
    }

    /// The arguments of a call sealed to this node.
    fn open_arguments(&mut self, call: &Call, s: &Sealed) -> Result<(Json, ReplyKey), String> {
        if s.to != self.cfg.node {
            return Err(format!(
                "the arguments are sealed for node {}, not this origin (the path changed on the way): make the call again",
                s.to.short()
            ));
        }
        let Some(p) = &self.payloads else {
            return Err("this origin cannot open sealed arguments".into());
        };
        let (plain, key) = p.open(&call.origin, s)?;
        let args = serde_json::from_slice(&plain)
            .map_err(|e| format!("the sealed arguments are not JSON: {e}"))?;
        self.stats.sealed_opened += 1;
        Ok((args, key))
    }

    pub(super) fn deliver(
        &mut self,
        now: Micros,
        key: InKey,
        call: Call,
        here: Local,
        out: &mut Vec<CallAction>,
    ) {
        let Local {
            prefix,
            agent,
            tool,
        } = here;
        let mut call = call;
        let mut reply_key = None;
        if let Some(s) = call.sealed.take() {
            match self.open_arguments(&call, &s) {
                Ok((args, key)) => {
                    call.arguments = args;
                    reply_key = Some(key);
                }
                Err(why) => {
                    self.stats.sealed_refused += 1;
                    let e =
                        CallError::new(CallErrorKind::BadCaller, format!("{}: {why}", self.here()));
                    return self.refuse(key, &call, e, out);
                }
            }
        }
        let o = &call.origin;
        if let InKey::Peer(..) = key {
            if let Err(why) = self.verifier.verify(now.millis(), o, &call.arguments) {
                let e = CallError::new(
                    CallErrorKind::BadCaller,
                    format!("{}: caller not verified: {why}", self.here()),
                );
                return self.refuse(key, &call, e, out);
            }
            let arrival = Arrival {
                caller: o.caller,
                id: o.id,
                issued: o.issued,
                deadline: o.deadline,
                idempotent: o.idempotent,
            };
            if let Verdict::Refuse(why) = self.replay.check(now.millis(), arrival) {
                self.stats.replays_refused += 1;
                let e = CallError::new(CallErrorKind::BadCaller, format!("{}: {why}", self.here()));
                return self.refuse(key, &call, e, out);
            }
        }
        // An authority vouches for the communities in an issued
        // certificate (verified above for calls from peers; ours for calls
        // from the front); a self-signed one only repeats the node's claim.
        let certified = o
            .cert
            .as_deref()
            .filter(|c| c.issuer.is_some())
            .map_or(&[][..], |c| c.communities.as_slice());
        let decision = self.access.decide(
            &Caller {
                asn: o.caller_asn,
                certified,
                claimed: &o.communities,
            },
            &prefix,
        );
        if !decision.allowed() {
            self.stats.denied += 1;
            let e = CallError::new(
                CallErrorKind::AccessDenied,
                format!(
                    "{}: access to {prefix} denied to {} by {}",
                    self.here(),
                    o.caller_asn,
                    decision.by
                ),
            );
            return self.refuse(key, &call, e, out);
        }
        let Some(tool) = tool else {
            let e = CallError::new(
                CallErrorKind::NoRoute,
                format!("{}: {prefix} is not a tool route", self.here()),
            );
            return self.refuse(key, &call, e, out);
        };
        let id = self.table.alloc_local();
        let mut entry = self.entry(now, key, &call, Down::Local(id));
        entry.agent = Some(agent.clone());
        entry.reply_key = reply_key;
        let deadline = entry.deadline.millis();
        let trace = entry.trace;
        self.insert(key, entry);
        self.stats.delivered += 1;
        out.push(CallAction::Deliver(Delivery {
            id,
            call_id: o.id,
            agent,
            tool,
            op: o.op,
            deadline,
            progress: call.progress,
            log_level: call.log_level,
            trace,
            caller: o.caller,
            caller_asn: o.caller_asn,
            prefix,
            arguments: call.arguments,
            claimed_community: decision.claimed,
        }));
    }
}
