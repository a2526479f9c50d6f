//! The link lifecycle: dialling, connections up and down as one transport
//! per peer, closing once the queue is flushed, and what the engine hears.

use super::*;

impl Net {
    /// `Action::Dial`.
    pub fn dial(&mut self, node: &NodeId) {
        let peer = peer_id_of(node);
        let link = self.links.entry(peer).or_default();
        if link.reported {
            // The session already has this transport; its dial is moot.
            return;
        }
        if link.closing || link.has_doomed() {
            link.redial = true;
            return;
        }
        if link.has_live() {
            link.reported = true;
            let outbound = link.outbound();
            self.emit(NetEvent::Connected {
                peer: *node,
                outbound,
            });
            return;
        }
        link.engine_dialing = true;
        let addrs = self.addresses_of(&peer);
        let opts = DialOpts::peer_id(peer)
            .addresses(addrs)
            .extend_addresses_through_behaviour()
            .condition(PeerCondition::DisconnectedAndNotDialing)
            .build();
        match self.swarm.dial(opts) {
            Ok(()) => {}
            // A dial (a discovery probe) is already running; its outcome is
            // reported as ours.
            Err(libp2p::swarm::DialError::DialPeerConditionFalse(_)) => {}
            Err(e) => {
                tracing::debug!(%peer, error = %e, "dial failed at once");
                if let Some(l) = self.links.get_mut(&peer) {
                    l.engine_dialing = false;
                }
                self.emit(NetEvent::ConnectFailed { peer: *node });
            }
        }
    }

    /// `Action::CancelDial`: a connection that completes anyway is reported
    /// if the engine knows the peer, and the session decides.
    pub fn cancel_dial(&mut self, node: &NodeId) {
        if let Some(l) = self.links.get_mut(&peer_id_of(node)) {
            l.engine_dialing = false;
        }
    }

    /// `Action::Disconnect`: flush what is queued, then close.
    pub fn disconnect(&mut self, node: &NodeId) {
        let peer = peer_id_of(node);
        let Some(link) = self.links.get_mut(&peer) else {
            return;
        };
        link.reported = false;
        link.closing = true;
        link.engine_dialing = false;
        self.pump(peer);
        self.maybe_close(peer);
    }

    /// Reports the live connection of a peer as the engine's transport,
    /// for a session the node starts on an inbound OPEN. Returns the
    /// direction, or `None` if there is no live connection or the engine
    /// already has one.
    pub fn report_connected(&mut self, node: &NodeId) -> Option<bool> {
        let peer = peer_id_of(node);
        let link = self.links.get_mut(&peer)?;
        if link.reported || !link.has_live() {
            return None;
        }
        link.reported = true;
        link.closing = false;
        link.engine_dialing = false;
        Some(link.outbound())
    }

    /// Closes a link whose queue is drained after the engine asked to.
    pub(super) fn maybe_close(&mut self, peer: PeerId) {
        let Some(link) = self.links.get_mut(&peer) else {
            return;
        };
        if !link.closing || !link.idle() {
            return;
        }
        if link.has_live() {
            for c in link.conns.iter_mut() {
                c.doomed = true;
            }
            let _ = self.swarm.disconnect_peer_id(peer);
        } else if !link.has_doomed() {
            self.finish_closing(peer);
        }
    }

    /// All connections of a closing link are gone.
    pub(super) fn finish_closing(&mut self, peer: PeerId) {
        let Some(link) = self.links.get_mut(&peer) else {
            return;
        };
        link.closing = false;
        link.clear_queue();
        if std::mem::take(&mut link.redial) {
            if let Ok(node) = node_id_of(&peer) {
                self.dial(&node);
            }
        } else {
            self.report_if_known(peer);
        }
        self.gc_link(peer);
    }

    /// The session's transport broke under it (the peer stopped
    /// acknowledging, or its queue overflowed): close everything.
    pub(super) fn fail_link(&mut self, peer: PeerId, reason: &str) {
        let Some(link) = self.links.get_mut(&peer) else {
            return;
        };
        let was = std::mem::take(&mut link.reported);
        link.clear_queue();
        link.closing = true;
        for c in link.conns.iter_mut() {
            c.doomed = true;
        }
        let _ = self.swarm.disconnect_peer_id(peer);
        if was && let Ok(node) = node_id_of(&peer) {
            self.emit(NetEvent::Disconnected {
                peer: node,
                reason: reason.to_string(),
            });
        }
        self.maybe_close(peer);
    }

    /// Reports a live connection to a known peer as its transport.
    pub(super) fn report_if_known(&mut self, peer: PeerId) {
        if !self.engine_peers.contains(&peer) {
            return;
        }
        let Some(link) = self.links.get_mut(&peer) else {
            return;
        };
        if link.reported || link.closing || !link.has_live() {
            return;
        }
        let Ok(node) = node_id_of(&peer) else { return };
        link.reported = true;
        link.engine_dialing = false;
        let outbound = link.outbound();
        self.emit(NetEvent::Connected {
            peer: node,
            outbound,
        });
    }

    /// Forgets a link nobody needs any more (bounded memory on busy
    /// bootstrap nodes).
    pub(super) fn gc_link(&mut self, peer: PeerId) {
        let remove = self.links.get(&peer).is_some_and(|l| {
            l.conns.is_empty() && !l.reported && !l.closing && !l.engine_dialing && !l.redial
        }) && !self.engine_peers.contains(&peer);
        if remove {
            self.links.remove(&peer);
        }
    }

    pub(super) fn on_connection_established(
        &mut self,
        peer: PeerId,
        id: ConnectionId,
        endpoint: &libp2p::core::ConnectedPoint,
    ) {
        if endpoint.is_dialer() {
            self.remember(peer, endpoint.get_remote_address().clone());
        }
        let relayed = endpoint.is_relayed();
        let link = self.links.entry(peer).or_default();
        if relayed && !link.has_live() {
            // A fresh relayed link: hole punching gets its chance again.
            link.punch_failed = false;
        }
        link.conns.push(Conn {
            id,
            dialer: endpoint.is_dialer(),
            doomed: false,
            relayed,
            since: std::time::Instant::now(),
        });
        tracing::debug!(%peer, dialer = endpoint.is_dialer(), relayed, "connection established");
        self.report_if_known(peer);
        if !relayed {
            self.retire_relayed(peer, std::time::Instant::now());
        }
    }

    pub(super) fn on_connection_closed(
        &mut self,
        peer: PeerId,
        id: ConnectionId,
        cause: Option<String>,
    ) {
        let Some(link) = self.links.get_mut(&peer) else {
            return;
        };
        link.conns.retain(|c| c.id != id);
        let gone = link.conns.is_empty();
        if link.reported && !link.has_live() {
            link.reported = false;
            link.clear_queue();
            if let Ok(node) = node_id_of(&peer) {
                let reason = cause.unwrap_or_else(|| "connection closed".into());
                tracing::debug!(%peer, %reason, "transport down");
                self.emit(NetEvent::Disconnected { peer: node, reason });
            }
        }
        if gone && let Ok(node) = node_id_of(&peer) {
            self.call_answers.retain(|(n, _), _| *n != node);
            self.emit(NetEvent::PeerGone { peer: node });
        }
        let Some(link) = self.links.get_mut(&peer) else {
            return;
        };
        if link.closing && !link.has_doomed() {
            if link.has_live() && !link.idle() {
                // The queue still drains on a connection that came up
                // meanwhile; close once it is done.
                return;
            }
            self.finish_closing(peer);
        } else {
            self.gc_link(peer);
        }
    }

    pub(super) fn on_dial_failure(&mut self, peer: PeerId, error: &str) {
        let Some(link) = self.links.get_mut(&peer) else {
            return;
        };
        if link.engine_dialing && !link.has_live() {
            link.engine_dialing = false;
            tracing::debug!(%peer, %error, "dial failed");
            if let Ok(node) = node_id_of(&peer) {
                self.emit(NetEvent::ConnectFailed { peer: node });
            }
        }
        self.gc_link(peer);
    }
}
