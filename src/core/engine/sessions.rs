//! Glue between the engine and each peer's session state machine: transport
//! and message events go into the [`Session`], its actions come back out as
//! engine [`Action`]s or RIB work (session up: dump the table; session down:
//! withdraw or keep as stale; UPDATE: import).

use super::super::ids::{Asn, Millis, NodeId};
use super::super::message::{ErrorCode, Message, Notification, subcode};
use super::super::rib::{PeerIdx, PeerRib};
use super::super::session::{
    self, Action as SAction, Direction, DownReason, Event as SEvent, Session, SessionConfig,
};
use super::peer::{MessageCounts, Peer, PeerConfig};
use super::{Action, Engine};

impl Engine {
    fn session_config(&self, pc: &PeerConfig) -> SessionConfig {
        let mut caps = self.cfg.capabilities.clone();
        // Roles are for AS borders: not announced to an internal peer.
        caps.role = pc.local_role.filter(|_| pc.asn != Some(self.cfg.asn));
        let mut sc = SessionConfig::new(self.cfg.asn, self.cfg.node, self.cfg.federation.clone())
            .with_peer_node(pc.node)
            .with_capabilities(caps)
            .with_strict_role(pc.strict_role)
            .with_hold_time(pc.hold_time.unwrap_or(self.cfg.hold_time))
            .with_passive(pc.passive);
        let (first, max) = pc.connect_retry.unwrap_or(self.cfg.connect_retry);
        sc = sc.with_connect_retry(first, max);
        if let Some(asn) = pc.asn {
            sc = sc.with_peer_asn(asn);
        }
        // Every peer has a max-prefix: its own, capped, or the cap.
        let cap = self.cfg.max_routes_per_peer;
        sc = sc
            .with_max_prefix(pc.max_prefix.map_or(cap, |l| l.min(cap)))
            .with_require_hold(pc.require_hold);
        if let Some(cert) = &self.cfg.cert {
            sc = sc.with_cert(cert.clone());
        }
        sc
    }

    fn seed_for(&self, node: &NodeId) -> u64 {
        let mut b = [0u8; 8];
        b.copy_from_slice(&node.0[..8]);
        u64::from_le_bytes(b) ^ self.cfg.seed
    }

    pub(super) fn add_peer(&mut self, now: Millis, pc: PeerConfig) {
        if pc.node == self.cfg.node {
            self.pending.push(Action::PeerConfigError {
                peer: pc.node,
                error: "a node cannot peer with itself".into(),
            });
            return;
        }
        let sc = self.session_config(&pc);
        let session = match Session::new(sc, self.seed_for(&pc.node)) {
            Ok(s) => s,
            Err(e) => {
                self.pending.push(Action::PeerConfigError {
                    peer: pc.node,
                    error: e.to_string(),
                });
                return;
            }
        };
        if let Some(idx) = self.idx(&pc.node) {
            // Reconfiguration: settings that shape the session take effect
            // on a fresh session, so an established one is reset.
            let changed = self.peer(idx).is_some_and(|p| p.cfg != pc);
            if !changed {
                return;
            }
            let established = self.peer(idx).is_some_and(|p| p.is_established());
            if established {
                self.session_event(now, idx, SEvent::Stop);
            }
            let local_asn = self.cfg.asn;
            if let Some(p) = self.peer_mut(idx) {
                p.asn = pc.asn.or(p.asn);
                p.internal = p.asn == Some(local_asn);
                p.session = session;
                p.cfg = pc.clone();
            }
        } else {
            let internal = pc.asn == Some(self.cfg.asn);
            let peer = Peer {
                asn: pc.asn,
                internal,
                cfg: pc.clone(),
                session,
                rib: PeerRib::default(),
                outq: Default::default(),
                mrai_until: None,
                held: Default::default(),
                mrai_sent: 0,
                send_eor: false,
                stale_until: None,
                restart_time: None,
                add_path: false,
                unreachable: false,
                tombstones: false,
                refresh_served: None,
                refresh_due: None,
                msgs: Default::default(),
            };
            let idx = match self.peers.iter().skip(1).position(|p| p.is_none()) {
                Some(free) => {
                    let i = free + 1;
                    self.peers[i] = Some(peer);
                    PeerIdx(i as u32)
                }
                None => {
                    self.peers.push(Some(peer));
                    PeerIdx((self.peers.len() - 1) as u32)
                }
            };
            self.by_node.insert(pc.node, idx);
        }
        if pc.auto_start
            && let Some(idx) = self.idx(&pc.node)
        {
            self.session_event(now, idx, SEvent::Start);
        }
    }

    pub(super) fn remove_peer(&mut self, now: Millis, node: NodeId) {
        let Some(idx) = self.idx(&node) else { return };
        self.session_event(now, idx, SEvent::Stop);
        self.drop_peer_paths(idx, false);
        self.by_node.remove(&node);
        if let Some(slot) = self.peers.get_mut(idx.0 as usize) {
            *slot = None;
        }
    }

    /// A peer slot for routes restored from the store whose peer is not
    /// configured (yet). Its session is not started; `AddPeer` may later
    /// configure it.
    pub(super) fn ensure_peer_for_restore(
        &mut self,
        now: Millis,
        node: NodeId,
        asn: Asn,
    ) -> PeerIdx {
        if let Some(idx) = self.idx(&node) {
            if let Some(p) = self.peer_mut(idx)
                && p.asn.is_none()
            {
                p.asn = Some(asn);
            }
            let local = self.cfg.asn;
            if let Some(p) = self.peer_mut(idx) {
                p.internal = p.asn == Some(local);
            }
            return idx;
        }
        let mut pc = PeerConfig::new(node);
        pc.auto_start = false;
        pc.passive = true;
        self.add_peer(now, pc);
        let idx = self.idx(&node).unwrap_or(PeerIdx::LOCAL);
        let local = self.cfg.asn;
        if let Some(p) = self.peer_mut(idx) {
            p.asn = Some(asn);
            p.internal = asn == local;
        }
        idx
    }

    pub(super) fn on_connected(&mut self, now: Millis, node: NodeId, outbound: bool) {
        let Some(idx) = self.idx(&node) else {
            self.pending.push(Action::Refuse(
                node,
                Notification::new(
                    ErrorCode::Cease,
                    subcode::CONNECTION_REJECTED,
                    "not a configured or discovered peer of this node",
                ),
            ));
            return;
        };
        let direction = if outbound {
            Direction::Outbound
        } else {
            Direction::Inbound
        };
        self.session_event(
            now,
            idx,
            SEvent::TransportUp {
                direction,
                remote: node,
            },
        );
    }

    pub(super) fn on_connect_failed(&mut self, now: Millis, node: NodeId) {
        if let Some(idx) = self.idx(&node) {
            self.session_event(now, idx, SEvent::TransportFailed);
        }
    }

    pub(super) fn on_disconnected(&mut self, now: Millis, node: NodeId) {
        if let Some(idx) = self.idx(&node) {
            self.session_event(now, idx, SEvent::TransportClosed);
        }
    }

    pub(super) fn on_message(&mut self, now: Millis, node: NodeId, msg: Message) {
        if let Some(idx) = self.idx(&node) {
            if let Some(p) = self.peer_mut(idx) {
                p.msgs.received[MessageCounts::slot(&msg)] += 1;
            }
            self.session_event(now, idx, SEvent::Received(msg));
        }
    }

    pub(super) fn on_bad_message(&mut self, now: Millis, node: NodeId, error: Notification) {
        if let Some(idx) = self.idx(&node) {
            self.session_event(now, idx, SEvent::DecodeError(error));
        }
    }

    pub(super) fn admin_enable(&mut self, now: Millis, node: NodeId, enabled: bool) {
        if let Some(idx) = self.idx(&node) {
            let ev = if enabled { SEvent::Start } else { SEvent::Stop };
            self.session_event(now, idx, ev);
        }
    }

    /// Peers whose time `at` (a session timer, stale routes, a deferred
    /// refresh) has come.
    fn peers_due(&self, now: Millis, at: impl Fn(&Peer) -> Option<Millis>) -> Vec<PeerIdx> {
        self.peers
            .iter()
            .enumerate()
            .filter(|(_, p)| p.as_ref().and_then(&at).is_some_and(|d| d <= now))
            .map(|(i, _)| PeerIdx(i as u32))
            .collect()
    }

    pub(super) fn on_tick(&mut self, now: Millis) {
        for idx in self.peers_due(now, |p| p.session.next_deadline()) {
            self.session_event(now, idx, SEvent::Tick);
        }
        for idx in self.peers_due(now, |p| p.stale_until) {
            self.purge_stale(idx);
        }
        self.due_refreshes(now);
    }

    /// Feeds one event to a peer's session and carries out what it says.
    pub(super) fn session_event(&mut self, now: Millis, idx: PeerIdx, ev: SEvent) {
        let Some(peer) = self.peer_mut(idx) else {
            return;
        };
        let node = peer.cfg.node;
        let actions = peer.session.handle(now, ev);
        for a in &actions {
            if let SAction::Send(m) = a {
                peer.msgs.sent[MessageCounts::slot(m)] += 1;
            }
        }
        for a in actions {
            match a {
                SAction::Connect => self.pending.push(Action::Dial(node)),
                SAction::CancelConnect => self.pending.push(Action::CancelDial(node)),
                SAction::Send(m) => self.pending.push(Action::Send(node, m)),
                SAction::Disconnect => self.pending.push(Action::Disconnect(node)),
                SAction::Refuse(n) => self.pending.push(Action::Refuse(node, n)),
                SAction::Established(neg) => self.on_established(idx, node, neg),
                SAction::Down { reason } => self.on_down(now, idx, node, reason),
                SAction::DeliverUpdate(u) => {
                    let add_path = self.peer(idx).is_some_and(|p| p.add_path);
                    let has_ids = u.announce.iter().any(|r| r.path_id != 0)
                        || u.withdraw.iter().any(|k| k.path_id != 0);
                    if has_ids && !add_path {
                        // A path id names a second path for a prefix; without
                        // ADD-PATH it would let one peer store any number of
                        // paths per prefix.
                        self.stats.path_id_refused += 1;
                        let n = Notification::new(
                            ErrorCode::Update,
                            subcode::MALFORMED_ATTRIBUTE_LIST,
                            "routes carry path ids, but ADD-PATH was not negotiated",
                        );
                        self.session_event(now, idx, SEvent::DecodeError(n));
                        continue;
                    }
                    let accepted = self.process_update(idx, u);
                    self.session_event(now, idx, SEvent::AcceptedRoutes(accepted as usize));
                }
                SAction::DeliverRouteRefresh => self.route_refresh(now, idx),
                SAction::MaxPrefixWarning { accepted, limit } => {
                    self.pending.push(Action::MaxPrefixWarning {
                        peer: node,
                        accepted,
                        limit,
                    })
                }
            }
        }
    }

    /// Answers a ROUTE-REFRESH: the whole Adj-RIB-Out again, at most once
    /// per `min_route_refresh_interval`; one that comes sooner is merged
    /// into a single answer at the end of the interval.
    fn route_refresh(&mut self, now: Millis, idx: PeerIdx) {
        let gap = u64::try_from(self.cfg.min_route_refresh_interval.as_millis()).unwrap_or(0);
        let Some(p) = self.peer_mut(idx) else { return };
        if let Some(last) = p.refresh_served
            && now < last.saturating_add_ms(gap)
        {
            if p.refresh_due.is_none() {
                p.refresh_due = Some(last.saturating_add_ms(gap));
            }
            self.stats.route_refresh_deferred += 1;
            return;
        }
        p.refresh_served = Some(now);
        p.refresh_due = None;
        self.clear_adj_out(idx);
        self.dump_to(idx);
    }

    /// Deferred ROUTE-REFRESH answers that are due.
    pub(super) fn due_refreshes(&mut self, now: Millis) {
        for idx in self.peers_due(now, |p| p.refresh_due) {
            let established = self.peer(idx).is_some_and(|p| p.is_established());
            if let Some(p) = self.peer_mut(idx) {
                p.refresh_due = None;
            }
            if established {
                self.route_refresh(now, idx);
            }
        }
    }

    fn on_established(&mut self, idx: PeerIdx, node: NodeId, neg: session::Negotiated) {
        let local = self.cfg.asn;
        let asn = neg.peer_asn;
        let cap = self.cfg.max_peer_restart_time;
        if let Some(p) = self.peer_mut(idx) {
            p.asn = Some(asn);
            p.internal = asn == local;
            // The peer chooses how long we keep its routes after it goes
            // away; we keep them at most `max_peer_restart_time`.
            p.restart_time = neg.capabilities.graceful_restart.map(|t| t.min(cap));
            p.add_path = neg.capabilities.add_path;
            p.unreachable = neg.capabilities.unreachable;
            p.tombstones = neg.capabilities.tombstones;
            p.refresh_served = None;
            p.refresh_due = None;
            // A new session starts with the whole table, at once.
            p.mrai_until = None;
            p.held.clear();
        }
        // Paths restored or kept from an earlier session now follow the
        // peer's current relationship to us.
        let learned = self.peer(idx).map(|p| p.learned());
        if let Some(l) = learned {
            for d in self.rib.dests.values_mut() {
                for c in d.candidates.iter_mut().filter(|c| c.peer == idx) {
                    c.learned = l;
                }
            }
        }
        self.pending.push(Action::SessionUp { peer: node, asn });
        self.clear_adj_out(idx);
        self.dump_to(idx);
    }

    fn on_down(&mut self, now: Millis, idx: PeerIdx, node: NodeId, reason: DownReason) {
        let text = match &reason {
            DownReason::Sent(n) => format!("sent NOTIFICATION {n}"),
            DownReason::Received(n) => format!("received NOTIFICATION {n}"),
            DownReason::TransportClosed => "transport closed".to_string(),
        };
        self.pending.push(Action::SessionDown {
            peer: node,
            reason: text,
        });
        // Graceful restart (RFC 4724): only when the peer offered it and the
        // session did not end with a NOTIFICATION, which is deliberate.
        let restart = self.peer(idx).and_then(|p| p.restart_time);
        match (restart, &reason) {
            (Some(secs), DownReason::TransportClosed) if secs > 0 => {
                self.mark_peer_stale(idx);
                if let Some(p) = self.peer_mut(idx) {
                    p.stale_until = Some(now.saturating_add_ms(u64::from(secs) * 1000));
                }
            }
            _ => self.drop_peer_paths(idx, false),
        }
        if let Some(p) = self.peer_mut(idx) {
            p.mrai_until = None;
            p.held.clear();
        }
        self.clear_adj_out(idx);
    }
}
