//! The call protocol (`/agent-bgp/call/1`) on the swarm: call messages
//! sent and answered, inbound calls through the gate, and their failures.

use super::*;

impl Net {
    /// Sends a call-protocol request (CALL, CALL-RESULT, PROGRESS,
    /// CANCEL). Failures come back as [`NetEvent::CallFailed`].
    pub fn send_call(&mut self, node: &NodeId, msg: CallMessage) {
        let leg = msg.leg();
        let kind = msg.kind();
        let fail = |this: &mut Self, reason: String| {
            this.emit(NetEvent::CallFailed {
                peer: *node,
                leg,
                kind,
                maybe_received: false,
                reason,
            })
        };
        let peer = peer_id_of(node);
        let bytes = match self.call_codec.encode_request(&msg) {
            Ok(b) => b,
            Err(e) => {
                tracing::warn!(%peer, %kind, error = %e, "call message does not encode");
                return fail(self, format!("does not encode: {e}"));
            }
        };
        if !self.swarm.is_connected(&peer) {
            // A third-party next hop (a route server's client) is not one
            // of our links: dial it with what the book knows of it; the
            // request goes out once the connection is up.
            let opts = DialOpts::peer_id(peer)
                .addresses(self.addresses_of(&peer))
                .extend_addresses_through_behaviour()
                .condition(PeerCondition::DisconnectedAndNotDialing)
                .build();
            if let Err(e) = self.swarm.dial(opts) {
                tracing::debug!(%peer, error = %e, "call dial not started");
            }
        }
        let id = self
            .swarm
            .behaviour_mut()
            .call
            .send_request(&peer, CallRequest::Encoded(bytes));
        self.call_out.insert(id, (*node, leg, kind));
    }

    /// Answers the CALL `leg` received from `node`.
    pub fn answer_call(&mut self, node: &NodeId, leg: LegId, answer: CallAnswer) {
        let Some(ch) = self.call_answers.remove(&(*node, leg)) else {
            // Known race: the connection closed, or the request timed out.
            tracing::debug!(peer = %node.short(), %leg, "no open CALL to answer");
            return;
        };
        let r = CallResponse::Answer(Answer { leg, answer });
        if self
            .swarm
            .behaviour_mut()
            .call
            .send_response(ch, r)
            .is_err()
        {
            tracing::debug!(peer = %node.short(), %leg, "CALL answer channel closed");
        }
    }

    /// CALLs received and not answered yet (for the admin API).
    pub fn open_calls(&self) -> usize {
        self.call_answers.len()
    }

    pub(super) fn on_call_event(&mut self, ev: request_response::Event<CallRequest, CallResponse>) {
        use request_response::{Event, Message as M, OutboundFailure};
        match ev {
            Event::Message {
                peer,
                message: M::Request {
                    request, channel, ..
                },
                ..
            } => {
                let CallRequest::Received { inbound, charge } = request else {
                    debug_assert!(false, "an inbound request is always Received");
                    return;
                };
                let Ok(node) = node_id_of(&peer) else {
                    // Not an agent-bgp node; nothing it sends is a call.
                    let _ = self
                        .swarm
                        .behaviour_mut()
                        .call
                        .send_response(channel, CallResponse::Ack);
                    return;
                };
                match inbound {
                    CallInbound::Message(CallMessage::Call(c)) => {
                        let leg = c.leg;
                        if let Some(old) = self.call_answers.insert((node, leg), channel) {
                            // The peer reused a leg whose CALL is still
                            // open; the forwarder refuses the newcomer, and
                            // the older stream is released here.
                            let _ = self.swarm.behaviour_mut().call.send_response(
                                old,
                                CallResponse::Answer(Answer {
                                    leg,
                                    answer: CallAnswer::Refused(crate::core::call::CallError::new(
                                        crate::core::call::CallErrorKind::Internal,
                                        "leg reused while open",
                                    )),
                                }),
                            );
                        }
                        self.emit(NetEvent::Call {
                            peer: node,
                            msg: CallMessage::Call(c),
                            charge,
                        });
                    }
                    CallInbound::Message(m) => {
                        let _ = self
                            .swarm
                            .behaviour_mut()
                            .call
                            .send_response(channel, CallResponse::Ack);
                        self.emit(NetEvent::Call {
                            peer: node,
                            msg: m,
                            charge,
                        });
                    }
                    CallInbound::Malformed(e) => {
                        if let Some(suppressed) = self.log_throttle.allow() {
                            tracing::warn!(%peer, error = %crate::logging::Untrusted(&e.to_string()), suppressed, "malformed call message");
                        }
                        let _ = self
                            .swarm
                            .behaviour_mut()
                            .call
                            .send_response(channel, CallResponse::Ack);
                    }
                }
            }
            Event::Message {
                peer,
                message:
                    M::Response {
                        request_id,
                        response,
                    },
                ..
            } => {
                let Some((node, leg, kind)) = self.call_out.remove(&request_id) else {
                    return;
                };
                match (kind, response) {
                    (CallKind::Call, CallResponse::Answer(a)) if a.leg == leg => {
                        self.emit(NetEvent::CallAnswered {
                            peer: node,
                            answer: a,
                        });
                    }
                    (CallKind::Call, other) => {
                        tracing::warn!(%peer, ?other, "CALL answered with something else");
                        self.emit(NetEvent::CallFailed {
                            peer: node,
                            leg,
                            kind,
                            maybe_received: true,
                            reason: "the peer's answer does not fit the CALL".into(),
                        });
                    }
                    (_, CallResponse::Ack) => {}
                    (_, other) => {
                        tracing::debug!(%peer, %kind, ?other, "unexpected call response");
                    }
                }
            }
            Event::OutboundFailure {
                peer,
                request_id,
                error,
                ..
            } => {
                let Some((node, leg, kind)) = self.call_out.remove(&request_id) else {
                    return;
                };
                let maybe_received = !matches!(
                    error,
                    OutboundFailure::DialFailure | OutboundFailure::UnsupportedProtocols
                );
                tracing::debug!(%peer, %kind, %leg, %error, "call request failed");
                self.emit(NetEvent::CallFailed {
                    peer: node,
                    leg,
                    kind,
                    maybe_received,
                    reason: error.to_string(),
                });
            }
            Event::InboundFailure { peer, error, .. } => {
                tracing::debug!(%peer, %error, "inbound call request failed");
            }
            Event::ResponseSent { .. } => {}
        }
    }
}
