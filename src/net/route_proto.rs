//! The routing protocol (`/agent-bgp/route/2`) on the swarm: routing
//! messages queued per link and sent one at a time, NOTIFICATIONs, and the
//! requests and answers that come in.

use super::*;

impl Net {
    /// `Action::Send`.
    pub fn send(&mut self, node: &NodeId, msg: Message) {
        let peer = peer_id_of(node);
        let max = self.cfg.max_queued;
        let Some(link) = self.links.get_mut(&peer).filter(|l| l.reported) else {
            tracing::debug!(peer = %node.short(), kind = msg.kind(), "no transport; message dropped");
            return;
        };
        if link.enqueue(msg, max).is_err() {
            tracing::warn!(%peer, "peer is not acknowledging; its queue is full; dropping the session");
            self.fail_link(peer, "send queue full: the peer stopped acknowledging");
            return;
        }
        self.pump(peer);
    }

    /// `Action::Refuse`: the transport just reported is not taken. Send the
    /// NOTIFICATION on it and close it.
    pub fn refuse(&mut self, node: &NodeId, n: Notification) {
        let peer = peer_id_of(node);
        let max = self.cfg.max_queued;
        let Some(link) = self.links.get_mut(&peer) else {
            return;
        };
        link.reported = false;
        link.closing = true;
        link.engine_dialing = false;
        let _ = link.enqueue(Message::Notification(n), max);
        self.pump(peer);
        self.maybe_close(peer);
    }

    /// Answers an inbound request.
    pub fn respond(&mut self, reply: Reply, r: RouteResponse) {
        if self
            .swarm
            .behaviour_mut()
            .route
            .send_response(reply.channel, r)
            .is_err()
        {
            // Known race: the connection closed or the request timed out
            // while we were handling it. The peer learns from its side.
            tracing::debug!(peer = %reply.peer, "response channel closed before the answer");
        }
    }

    /// Sends the next queued frame if nothing is in flight.
    pub(super) fn pump(&mut self, peer: PeerId) {
        let limits = self.cfg.send_limits.clone();
        loop {
            let Some(link) = self.links.get_mut(&peer) else {
                return;
            };
            match link.next_frame(&limits) {
                Ok(Some((bytes, info))) => {
                    let bytes = bytes::Bytes::from(bytes);
                    let id = self
                        .swarm
                        .behaviour_mut()
                        .route
                        .send_request(&peer, RouteRequest::Encoded(bytes.clone()));
                    if let Some(link) = self.links.get_mut(&peer) {
                        link.set_inflight(id, info, bytes);
                    }
                    return;
                }
                Ok(None) => return,
                Err(e) => {
                    // Our own message does not encode: a bug, logged loudly;
                    // the rest of the queue still goes.
                    tracing::error!(%peer, error = %e, "dropping an outgoing message");
                }
            }
        }
    }

    pub(super) fn on_route_event(
        &mut self,
        ev: request_response::Event<RouteRequest, RouteResponse>,
    ) {
        use request_response::{Event, Message as M};
        match ev {
            Event::Message {
                peer,
                connection_id,
                message: M::Request {
                    request, channel, ..
                },
            } => {
                let RouteRequest::Received { inbound, charge } = request else {
                    debug_assert!(false, "an inbound request is always Received");
                    return;
                };
                let link = self.links.entry(peer).or_default();
                link.stats.requests_received += 1;
                let doomed = link.conns.iter().any(|c| c.id == connection_id && c.doomed);
                let reported = link.reported;
                let reply = Reply {
                    peer,
                    channel,
                    connection: connection_id,
                };
                if doomed {
                    // A leftover of a transport the engine already dropped.
                    self.respond(reply, RouteResponse::Ack);
                    return;
                }
                self.emit(NetEvent::Request {
                    peer,
                    node: node_id_of(&peer).ok(),
                    reported,
                    inbound,
                    reply,
                    charge,
                });
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
                let Some(link) = self.links.get_mut(&peer) else {
                    return;
                };
                if !link.on_ack(request_id) {
                    tracing::debug!(%peer, ?request_id, "acknowledgement of a request no longer tracked");
                    return;
                }
                let reported = link.reported;
                if let RouteResponse::Refused(n) = response {
                    tracing::info!(%peer, notification = %n, "peer refused our message");
                    if reported && let Ok(node) = node_id_of(&peer) {
                        self.emit(NetEvent::Refused {
                            peer: node,
                            notification: n,
                        });
                    }
                }
                self.pump(peer);
                self.maybe_close(peer);
                // A quiet moment: a relayed connection a direct one
                // overtook can go now.
                self.retire_relayed(peer, std::time::Instant::now());
            }
            Event::OutboundFailure {
                peer,
                request_id,
                error,
                ..
            } => {
                let Some(link) = self
                    .links
                    .get_mut(&peer)
                    .filter(|l| l.inflight() == Some(request_id))
                else {
                    return;
                };
                // Its connection closed under it (a relayed one retired
                // after a hole punch, or closed by the peer) while another
                // stays up: send it again there. Routing messages but OPEN
                // are idempotent for the receiver (a route replaces itself,
                // a withdrawal of nothing is nothing), so a frame the peer
                // did get costs nothing; an OPEN is never sent twice.
                if matches!(error, request_response::OutboundFailure::ConnectionClosed)
                    && link.reported
                    && link.has_live()
                    && let Some(frame) = link.inflight_frame()
                {
                    let id = self
                        .swarm
                        .behaviour_mut()
                        .route
                        .send_request(&peer, RouteRequest::Encoded(frame));
                    if let Some(link) = self.links.get_mut(&peer) {
                        link.resent(id);
                    }
                    self.nat.stats.requests_resent += 1;
                    tracing::debug!(%peer, "routing request sent again on another connection");
                    return;
                }
                tracing::info!(%peer, %error, "routing request failed; resetting the transport");
                self.fail_link(peer, &format!("request failed: {error}"));
            }
            Event::InboundFailure { peer, error, .. } => {
                tracing::debug!(%peer, %error, "inbound routing request failed");
            }
            Event::ResponseSent { .. } => {}
        }
    }
}
