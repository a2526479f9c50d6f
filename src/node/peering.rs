//! Peers: network events, inbound admission and auto-peer slots, route
//! requests with their signature checks, NOTIFICATIONs, discovery and
//! the periodic maintenance.

use super::*;

impl Node {
    /// A NOTIFICATION went to or came from a peer. An auto peer whose
    /// handshake fails is dropped and not retried for a while.
    pub(super) fn note_notification(&mut self, node: NodeId, n: &Notification, sent: bool) {
        let dir = if sent { "sent" } else { "received" };
        self.meta.entry(node).or_default().last_error = Some(format!("{dir} {n}"));
        let peer = peer_id_of(&node);
        if !self.discovery.is_auto(&peer) || self.shutting_down {
            return;
        }
        // Only a handshake that fails counts; an established session that
        // ends is the engine's to retry. `established_since` is cleared by
        // `SessionDown`, which comes after the NOTIFICATION that ends it.
        let established = self
            .meta
            .get(&node)
            .is_some_and(|m| m.established_since.is_some());
        if established {
            // A NOTIFICATION this node had to send (a malformed UPDATE, a
            // max-prefix, an FSM error) counts against the peer's slot.
            let offence =
                sent && matches!(
                    n.code,
                    ErrorCode::MessageHeader | ErrorCode::Update | ErrorCode::Fsm
                ) || (sent && n.code == ErrorCode::Cease && n.subcode == subcode::MAX_PREFIX);
            if offence {
                self.discovery.misbehaved(&peer);
            }
            return;
        }
        let c = &self.cfg.config.discovery;
        let cert_failure = n.code == ErrorCode::Open
            && matches!(
                n.subcode,
                subcode::BAD_CERTIFICATE
                    | subcode::CERTIFICATE_EXPIRED
                    | subcode::ASN_CLAIMED_BY_OTHER_KEY
                    | subcode::UNTRUSTED_ISSUER
                    | subcode::BAD_PEER_AS
                    | subcode::BAD_IDENTIFIER
            );
        let cooldown = if cert_failure {
            c.cert_failure_cooldown
        } else {
            (c.query_interval * 2).max(Duration::from_secs(5))
        };
        tracing::info!(peer = %peer, notification = %n, ?cooldown, "auto peer failed its handshake; not peering with it for a while");
        self.discovery
            .block(peer, Instant::now(), cooldown, format!("{dir} {n}"));
        self.drop_auto(node, peer);
    }

    pub(super) fn drop_auto(&mut self, node: NodeId, peer: PeerId) {
        self.discovery.remove_auto(&peer);
        self.started.remove(&node);
        self.net.set_engine_peer(&node, false);
        if !self.removals.contains(&node) {
            self.removals.push_back(node);
        }
    }

    pub(super) async fn on_net(&mut self, ev: NetEvent) -> Result<(), NodeError> {
        match ev {
            NetEvent::Connected { peer, outbound } => {
                self.step(vec![Event::Connected { peer, outbound }], None)
                    .await
            }
            NetEvent::Disconnected { peer, reason } => {
                tracing::debug!(peer = %peer_label(&peer), %reason, "transport closed");
                self.step(vec![Event::Disconnected { peer }], None).await
            }
            NetEvent::ConnectFailed { peer } => {
                self.step(vec![Event::ConnectFailed { peer }], None).await
            }
            NetEvent::Request {
                peer,
                node,
                reported,
                inbound,
                reply,
                charge,
            } => {
                self.on_request(peer, node, reported, inbound, reply, charge)
                    .await
            }
            NetEvent::Refused { peer, notification } => {
                self.note_notification(peer, &notification, false);
                let msg = Message::Notification(notification);
                self.step(vec![Event::Message { peer, msg }], None).await
            }
            NetEvent::Discovered { peer, source } => {
                if self.sources.len() >= MAX_SOURCES {
                    self.sources.clear();
                }
                self.sources.entry(peer).or_insert(source);
                Ok(())
            }
            NetEvent::Identified {
                peer,
                member,
                agent_version,
            } => {
                let source = self.sources.get(&peer).copied().unwrap_or(Source::Inbound);
                tracing::debug!(%peer, member, %agent_version, "identified");
                self.discovery
                    .note_member(peer, member, source, Instant::now());
                if member {
                    self.auto_peer().await?;
                }
                Ok(())
            }
            NetEvent::Listening(_) => Ok(()),
            ev @ (NetEvent::Call { .. }
            | NetEvent::CallAnswered { .. }
            | NetEvent::CallFailed { .. }
            | NetEvent::PeerGone { .. }) => self.on_call_net(ev).await,
            NetEvent::ListenerDown(e) => {
                tracing::warn!(error = %e, "listener down");
                Ok(())
            }
        }
    }

    /// Why an inbound OPEN from a peer without a session is not taken.
    /// With every slot taken, an auto peer that deserves it is evicted to
    /// make room (see [`crate::net::discovery`]).
    pub(super) fn refuse_inbound(&mut self, peer: &PeerId, node: &NodeId) -> Option<String> {
        if self.started.contains(node) {
            return None;
        }
        let now = Instant::now();
        if let Some(why) = self.discovery.blocked(peer, now) {
            return Some(format!("not peering with you for a while: {why}"));
        }
        if self.discovery.is_configured(peer) {
            return None;
        }
        if !self.discovery.may_auto_peer(peer, now) && !self.evict_for_newcomer(now) {
            return Some("no free session slots for discovered peers".into());
        }
        None
    }

    /// Frees an auto-peer slot for a waiting member if an auto peer
    /// deserves to lose it (misbehaving, then idle, newest first). The
    /// evicted peer is kept out for a cooldown. True when a slot was freed.
    pub(super) fn evict_for_newcomer(&mut self, now: Instant) -> bool {
        let c = &self.cfg.config.discovery;
        let idle = c.auto_peer_idle;
        let engine = &self.engine;
        let victim = self.discovery.evictable(now, idle, |p| {
            node_id_of(p)
                .ok()
                .and_then(|n| engine.peer_info(&n))
                .map_or(0, |i| i.accepted)
        });
        let Some((peer, why)) = victim else {
            return false;
        };
        let Ok(node) = node_id_of(&peer) else {
            return false;
        };
        let (cooldown, reason) = match why {
            Eviction::Misbehaving => (
                c.cert_failure_cooldown,
                "evicted for misbehaving while a member waited for a slot",
            ),
            Eviction::Idle => (
                c.auto_peer_idle,
                "evicted as idle (no accepted route) while a member waited for a slot",
            ),
        };
        tracing::info!(%peer, ?why, "freeing an auto-peer slot for a waiting member");
        self.discovery.block(peer, now, cooldown, reason);
        self.drop_auto(node, peer);
        true
    }

    /// A routing message. `charge` holds the frame's bytes against the
    /// peer's budget until the message has been taken in (an UPDATE whose
    /// signatures are being checked keeps it until then).
    pub(super) async fn on_request(
        &mut self,
        peer: PeerId,
        node: Option<NodeId>,
        reported: bool,
        inbound: Inbound,
        reply: Reply,
        charge: Charge,
    ) -> Result<(), NodeError> {
        let refuse = |text: String| {
            RouteResponse::Refused(Notification::new(
                ErrorCode::Cease,
                subcode::CONNECTION_REJECTED,
                text,
            ))
        };
        let Some(node) = node else {
            self.net.respond(
                reply,
                refuse("agent-bgp nodes have ed25519 peer ids".into()),
            );
            return Ok(());
        };
        let now = self.clock.now();
        let mut events = Vec::new();
        if !reported {
            match &inbound {
                Inbound::Message(Message::Open(_)) => {
                    if let Some(why) = self.refuse_inbound(&peer, &node) {
                        tracing::debug!(%peer, %why, "refusing an inbound session");
                        self.net.respond(reply, refuse(why));
                        return Ok(());
                    }
                    if !self.started.contains(&node) {
                        self.discovery
                            .add_auto(peer, Source::Inbound, Instant::now());
                        self.started.insert(node);
                        self.net.set_engine_peer(&node, true);
                        events.push(Event::AddPeer(self.discovered_peer(node)));
                    }
                    match self.net.report_connected(&node) {
                        Some(outbound) => events.push(Event::Connected {
                            peer: node,
                            outbound,
                        }),
                        None => {
                            self.net
                                .respond(reply, refuse("connection is closing".into()));
                            return Ok(());
                        }
                    }
                }
                // A goodbye from a session we no longer have.
                Inbound::Message(Message::Notification(_)) => {
                    self.net.respond(reply, RouteResponse::Ack);
                    return Ok(());
                }
                _ => {
                    // Say why the session ended: our NOTIFICATION may have
                    // crossed this message and been dropped by the peer.
                    let why = match self.meta.get(&node).and_then(|m| m.last_error.as_ref()) {
                        Some(e) => format!("no session with you (it ended: {e})"),
                        None => "no session with you; send OPEN first".into(),
                    };
                    self.net.respond(reply, refuse(why));
                    return Ok(());
                }
            }
        }
        match inbound {
            Inbound::Malformed(e) => {
                let n = Notification::from(&e);
                if let Some(suppressed) = self.log_throttle.allow() {
                    tracing::warn!(%peer, error = %crate::logging::Untrusted(&e.to_string()), suppressed, "malformed message");
                }
                events.push(Event::BadMessage {
                    peer: node,
                    error: n,
                });
            }
            Inbound::Message(Message::Open(o)) => match self.security.check_open(&o, node, now) {
                Ok(binding) => {
                    tracing::debug!(%peer, asn = %o.asn, binding = ?binding_label(&binding), "OPEN certificate accepted");
                    events.push(Event::Message {
                        peer: node,
                        msg: Message::Open(o),
                    });
                }
                Err(e) => {
                    tracing::warn!(%peer, asn = %o.asn, error = %e, "refusing OPEN: certificate");
                    if !self.discovery.is_configured(&peer) {
                        let cd = self.cfg.config.discovery.cert_failure_cooldown;
                        self.discovery
                            .block(peer, Instant::now(), cd, format!("certificate: {e}"));
                    }
                    events.push(Event::BadMessage {
                        peer: node,
                        error: Notification::from(&e),
                    });
                }
            },
            Inbound::Message(Message::Update(mut u)) => {
                tracing::debug!(%peer, announced = u.announce.len(), withdrawn = u.withdraw.len(), end_of_rib = u.end_of_rib, "UPDATE received");
                let asn = self.engine.peer_info(&node).map(|p| p.asn);
                let planned = asn
                    .filter(|a| a.0 != 0)
                    .and_then(|asn| self.security.plan_update(&u, asn, now));
                if let Some(pending) = planned {
                    if pending.work() > 0 {
                        // Curve work: off the node task, within the peer's
                        // budget; the UPDATE goes on in `on_verified`.
                        self.security.off_task.checks += pending.work() as u64;
                        let epoch = self.meta.get(&node).map_or(0, |m| m.epoch);
                        self.verifier.submit(
                            node,
                            pending,
                            HeldUpdate {
                                update: u,
                                reply,
                                epoch,
                                _charge: charge,
                            },
                        );
                        return Ok(());
                    }
                    // Everything answered from the cache or by planning.
                    let v = pending.verify(usize::MAX);
                    let dropped = self.security.apply_verdicts(&mut u, pending, v);
                    self.note_dropped(peer, dropped);
                }
                self.security.validate_origins(&mut u, now);
                self.security.check_tombstones(&mut u, now);
                events.push(Event::Message {
                    peer: node,
                    msg: Message::Update(u),
                });
            }
            Inbound::Message(m) => {
                if let Message::Notification(n) = &m {
                    self.note_notification(node, n, false);
                }
                events.push(Event::Message { peer: node, msg: m });
            }
        }
        self.step(events, Some(reply)).await
    }

    /// The session settings of a peer found by discovery (or that dialled
    /// in): a max-prefix, and a hold time it must keep.
    pub(super) fn discovered_peer(&self, node: NodeId) -> PeerConfig {
        PeerConfig::discovered(node, self.cfg.config.discovery.auto_peer_max_prefix)
    }

    /// An UPDATE whose signatures were checked off the node task.
    pub(super) async fn on_verified(
        &mut self,
        done: verify::Done<HeldUpdate>,
    ) -> Result<(), NodeError> {
        let HeldUpdate {
            mut update,
            reply,
            epoch,
            ..
        } = done.then;
        if self.meta.get(&done.peer).map_or(0, |m| m.epoch) != epoch {
            // The session it came on ended meanwhile; the peer sends its
            // routes again on the next one.
            tracing::debug!(peer = %peer_label(&done.peer), "dropping an UPDATE of an ended session");
            return Ok(());
        }
        if !done.waited.is_zero() {
            self.security.off_task.budget_waits += 1;
            self.security.off_task.budget_wait_ms += done.waited.as_millis() as u64;
        }
        if done.verdicts.aborted
            && let Some(suppressed) = self.log_throttle.allow()
        {
            tracing::warn!(
                peer = %peer_label(&done.peer),
                failed = done.verdicts.failed,
                suppressed,
                "too many bad signatures in one UPDATE; its other routes were dropped unchecked"
            );
        }
        let dropped = self
            .security
            .apply_verdicts(&mut update, done.pending, done.verdicts);
        self.note_dropped(reply.peer(), dropped);
        let now = self.clock.now();
        self.security.validate_origins(&mut update, now);
        self.security.check_tombstones(&mut update, now);
        let peer = done.peer;
        self.step(
            vec![Event::Message {
                peer,
                msg: Message::Update(update),
            }],
            Some(reply),
        )
        .await
    }

    pub(super) fn note_dropped(&mut self, peer: PeerId, dropped: usize) {
        if dropped == 0 {
            return;
        }
        self.discovery.misbehaved(&peer);
        if let Some(suppressed) = self.log_throttle.allow() {
            tracing::warn!(%peer, dropped, suppressed, "routes with bad signatures treated as withdrawn");
        }
    }

    /// Starts sessions with discovered members while slots are free; with
    /// every slot taken and a member waiting, frees one if an auto peer
    /// deserves to lose it.
    pub(super) async fn auto_peer(&mut self) -> Result<(), NodeError> {
        let now = Instant::now();
        if self.discovery.waiting(now).is_some() {
            self.evict_for_newcomer(now);
        }
        let mut events = Vec::new();
        for (peer, source) in self.discovery.candidates(now) {
            let Ok(node) = node_id_of(&peer) else {
                self.discovery.note_member(peer, false, source, now);
                continue;
            };
            if self.started.contains(&node) {
                continue;
            }
            if !self.net.is_connected(&peer) && self.net.addresses_of(&peer).is_empty() {
                continue;
            }
            tracing::info!(%peer, ?source, "auto-peering with a discovered federation member");
            self.discovery.add_auto(peer, source, now);
            self.started.insert(node);
            self.net.set_engine_peer(&node, true);
            events.push(Event::AddPeer(self.discovered_peer(node)));
        }
        if events.is_empty() {
            return Ok(());
        }
        self.step(events, None).await
    }

    /// Once a second: discovery queries, expiring auto peers, re-signing,
    /// the store's progress.
    pub(super) async fn maintain(&mut self) -> Result<(), NodeError> {
        self.check_store_stall()?;
        let now_i = Instant::now();
        self.net.nat_tick(now_i.into_std());
        let c = self.cfg.config.discovery.clone();
        if now_i >= self.next_discovery {
            self.net.discovery_tick();
            self.next_discovery = now_i + c.query_interval;
        }
        for peer in self.discovery.expired(now_i, c.auto_peer_down) {
            if let Ok(node) = node_id_of(&peer) {
                tracing::info!(%peer, "dropping an auto peer whose session stayed down");
                self.discovery.block(
                    peer,
                    now_i,
                    (c.query_interval * 2).max(Duration::from_secs(5)),
                    "session stayed down",
                );
                self.drop_auto(node, peer);
            }
        }
        if !self.removals.is_empty() {
            self.step(Vec::new(), None).await?;
        }
        self.auto_peer().await?;
        // Descriptor fetches that failed are retried from here.
        self.on_call_tick().await?;
        let now = self.clock.now();
        if self.security.verifies_routes()
            && now.saturating_sub(self.last_expiry_sweep) >= EXPIRY_SWEEP_MS
        {
            // Paths whose origin attestation ran out leave the RIBs.
            self.last_expiry_sweep = now;
            let skew_ms = self.security.trust().clock_skew_ms();
            self.step(vec![Event::ExpireAttested { skew_ms }], None)
                .await?;
        }
        let agent_routes = self.mcp.originated();
        if (!self.originated.is_empty() || !agent_routes.is_empty())
            && now.saturating_sub(self.last_signed) >= self.security.resign_every_ms()
        {
            let mut events = self.signed_originations(now);
            for mut r in agent_routes {
                r.proof = Some(self.security.sign_origin(&r, now));
                events.push(Event::Originate(r));
            }
            self.step(events, None).await?;
        }
        Ok(())
    }
}

/// How often paths whose origin attestation expired are looked for (the
/// scan reads the whole table; attestations last a day by default and are
/// re-signed at half-life, so a lapse is found well within its minute).
const EXPIRY_SWEEP_MS: u64 = 30_000;
