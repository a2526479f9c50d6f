//! The node task's loop: the select over every input, `step` (events in,
//! actions carried out, RIB changes committed), durable acknowledgements,
//! the store's stall watch, and the clean shutdown.

use super::*;

impl Node {
    pub(super) async fn run_loop(
        &mut self,
        shutdown: impl std::future::Future<Output = ()> + Send,
    ) -> Result<(), NodeError> {
        tokio::pin!(shutdown);
        let (stop_admin_tx, stop_admin_rx) = tokio::sync::oneshot::channel::<()>();
        if let (Some(l), Some(g)) = (self.admin_listener.take(), self.admin_guard.clone()) {
            l.spawn(self.admin_tx.clone(), g, async move {
                let _ = stop_admin_rx.await;
            });
        }
        let mut maintenance = tokio::time::interval(Duration::from_secs(1));
        maintenance.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
        // SIGHUP reloads the policy file (where signals can be had).
        let mut hangup =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()).ok();
        let result = loop {
            let deadline = self
                .engine
                .next_deadline()
                .map(|d| self.clock.instant_of(d));
            let call_deadline = self
                .mcp
                .plane
                .next_deadline()
                .map(|d| self.clock.instant_of_micros(d));
            let r = tokio::select! {
                _ = &mut shutdown => break Ok(()),
                changed = self.durable.changed() => match changed {
                    Ok(()) => self.on_durable(),
                    Err(_) => Err(NodeError::StoreFailed("store thread stopped".into())),
                },
                ev = self.net.next() => self.on_net(ev).await,
                Some(req) = self.admin_rx.recv() => self.on_admin(req).await,
                Some(()) = next_hangup(&mut hangup) => self.reload_policy_on_signal().await,
                Some(req) = self.mcp.front_rx.recv() => self.on_front(req).await,
                Some(ev) = self.mcp.local_rx.recv() => self.on_local(ev).await,
                Some(ev) = self.mcp.agent_rx.recv() => self.on_agent(ev).await,
                Some(done) = self.verifier.recv() => self.on_verified(done).await,
                _ = sleep_until_opt(call_deadline) => self.on_call_tick().await,
                _ = sleep_until_opt(deadline) => self.step(vec![Event::Tick], None).await,
                _ = maintenance.tick() => self.maintain().await,
            };
            if let Err(e) = r {
                break Err(e);
            }
            if !self.mcp.sessions_lost.is_empty()
                && let Err(e) = self.end_calls_of_lost_sessions().await
            {
                break Err(e);
            }
            self.report_started_if_ready();
        };
        let _ = stop_admin_tx.send(());
        let closed = self.shutdown().await;
        result.and(closed)
    }

    pub(super) fn report_started_if_ready(&mut self) {
        if self.on_started.is_none() {
            return;
        }
        let want = self.cfg.config.network.listen.len();
        let have = self.net.listen_addrs().len();
        if have < want && Instant::now() < self.startup_deadline {
            return;
        }
        let c = &self.cfg.config;
        let asn_source = match (&c.node.certificate, c.node.asn) {
            (CertSource::Derived, _) | (CertSource::SelfSigned, AsnSetting::Derived) => {
                "derived from the node key".to_string()
            }
            (CertSource::SelfSigned, _) => "self-signed (peers pin it)".to_string(),
            (CertSource::File(p), _) => format!("issued ({})", p.display()),
        };
        let s = Started {
            peer_id: self.net.local_peer_id(),
            node_id: self.security.identity().node_id(),
            asn: self.security.asn(),
            asn_source,
            federation: c.node.federation.clone(),
            bootstrap: c.node.bootstrap,
            listen: self.net.listen_addrs(),
            admin: self.admin_addr,
            store_dir: self.store_dir.clone(),
            restored_peers: self.restored.0,
            restored_routes: self.restored.1,
            previous_shutdown_clean: self.previous_clean,
            policy: self.policy_path.clone(),
            neighbors: c.neighbors.len(),
            originated: self.originated.len(),
            mcp: self.mcp.front_addr(),
            agents: self.mcp.upstream.agent_ids().len(),
        };
        if let Some(hook) = self.on_started.take() {
            hook(&s);
        }
        self.started_info = Some(s);
    }

    /// Runs the engine on `events` and carries out what it says. `reply`
    /// is answered once the changes are durable.
    pub(super) async fn step(
        &mut self,
        events: Vec<Event>,
        reply: Option<Reply>,
    ) -> Result<(), NodeError> {
        let now = self.clock.now();
        let actions = self.engine.handle_all(now, events);
        let mut batch = WriteBatch::default();
        self.apply(now, actions, &mut batch);
        self.commit(batch, reply).await?;
        while let Some(node) = self.removals.pop_front() {
            let actions = self.engine.handle(now, Event::RemovePeer(node));
            let mut batch = WriteBatch::default();
            self.apply(now, actions, &mut batch);
            self.commit(batch, None).await?;
        }
        self.after_step();
        Ok(())
    }

    pub(super) async fn commit(
        &mut self,
        batch: WriteBatch,
        reply: Option<Reply>,
    ) -> Result<(), NodeError> {
        if batch.is_empty() {
            // Nothing to make durable.
            if let Some(r) = reply {
                self.net.respond(r, RouteResponse::Ack);
            }
            return Ok(());
        }
        if self.shutting_down {
            // The store is closed and the teardown is deliberately not
            // persisted; a request whose changes are not durable is not
            // acknowledged (dropping the reply tells the peer it failed).
            drop(reply);
            return Ok(());
        }
        let Some(w) = self.writer.as_mut() else {
            return Err(NodeError::StoreFailed("store is closed".into()));
        };
        // The queue is full only while the store thread is behind; one that
        // makes no progress at all must not hold the node for ever.
        let stall = self.cfg.config.store.stall;
        let seq = match tokio::time::timeout(stall, w.submit(batch)).await {
            Ok(r) => r.map_err(|e| NodeError::StoreFailed(e.to_string()))?,
            Err(_) => return Err(stalled(stall)),
        };
        self.undurable.push_back((seq, Instant::now()));
        if let Some(r) = reply {
            self.pending_acks.push_back((seq, r));
        }
        Ok(())
    }

    /// Stops the node when a batch has waited `[store] stall` to
    /// become durable.
    pub(super) fn check_store_stall(&self) -> Result<(), NodeError> {
        let stall = self.cfg.config.store.stall;
        match self.undurable.front() {
            Some((_, at)) if at.elapsed() > stall => Err(stalled(stall)),
            _ => Ok(()),
        }
    }

    pub(super) fn on_durable(&mut self) -> Result<(), NodeError> {
        let d = self.durable.borrow_and_update().clone();
        if let Some(e) = d.error {
            return Err(NodeError::StoreFailed(e));
        }
        while self.pending_acks.front().is_some_and(|(s, _)| *s <= d.seq) {
            if let Some((_, r)) = self.pending_acks.pop_front() {
                self.net.respond(r, RouteResponse::Ack);
            }
        }
        while self.undurable.front().is_some_and(|(s, _)| *s <= d.seq) {
            self.undurable.pop_front();
        }
        Ok(())
    }

    /// Carries out engine actions; RIB changes go into `batch`.
    pub(super) fn apply(&mut self, now: Millis, actions: Vec<Action>, batch: &mut WriteBatch) {
        for a in actions {
            match a {
                Action::Dial(n) => self.net.dial(&n),
                Action::CancelDial(n) => self.net.cancel_dial(&n),
                Action::Send(n, mut m) => {
                    if let Message::Notification(x) = &m {
                        self.note_notification(n, x, true);
                    }
                    if let Message::Update(u) = &mut m
                        && let Some(info) = self.engine.peer_info(&n)
                    {
                        self.security.sign_update(u, info.asn);
                    }
                    self.net.send(&n, m);
                }
                Action::Disconnect(n) => self.net.disconnect(&n),
                Action::Refuse(n, x) => {
                    self.note_notification(n, &x, true);
                    self.net.refuse(&n, x);
                }
                Action::PeerConfigError { peer, error } => {
                    tracing::warn!(peer = %peer.short(), %error, "peer configuration refused");
                }
                Action::MaxPrefixWarning {
                    peer,
                    accepted,
                    limit,
                } => {
                    tracing::warn!(peer = %peer.short(), accepted, limit, "peer nears its max-prefix limit");
                }
                Action::SessionUp { peer, asn } => {
                    tracing::info!(peer = %peer_label(&peer), %asn, "session established");
                    batch.peers.push((peer, asn));
                    let m = self.meta.entry(peer).or_default();
                    m.established_since = Some(now);
                    self.net.set_session(&peer, true);
                    self.discovery
                        .session_up(&peer_id_of(&peer), Instant::now());
                }
                Action::SessionDown { peer, reason } => {
                    tracing::info!(peer = %peer_label(&peer), %reason, "session down");
                    let m = self.meta.entry(peer).or_default();
                    m.established_since = None;
                    m.last_error = Some(reason);
                    m.epoch += 1;
                    self.net.set_session(&peer, false);
                    self.mcp.sessions_lost.push(peer);
                    self.discovery
                        .session_down(&peer_id_of(&peer), Instant::now());
                }
                Action::RibChanges(c) => {
                    if c.iter().any(|x| matches!(x, RibChange::Loc { .. })) {
                        self.mcp.routes_changed = true;
                    }
                    batch.changes.extend(c)
                }
            }
        }
    }

    /// Closes the store (all durable, clean shutdown recorded), then sends
    /// every peer a Cease and gives the NOTIFICATIONs a moment to leave.
    pub(super) async fn shutdown(&mut self) -> Result<(), NodeError> {
        self.shutting_down = true;
        // Agents first: their routes leave with the sessions below anyway,
        // and calls in flight end with the front.
        self.mcp.shutdown().await;
        tracing::info!("shutting down");
        let mut result = Ok(());
        if let Some(w) = self.writer.take() {
            // A store stuck in a failing disk must not hold the exit.
            let stall = self.cfg.config.store.stall;
            match tokio::time::timeout(stall, tokio::task::spawn_blocking(move || w.close())).await
            {
                Ok(Ok(())) => {}
                Ok(Err(_)) => {
                    result = Err(NodeError::StoreFailed(
                        "store thread panicked while closing".into(),
                    ));
                }
                Err(_) => result = Err(stalled(stall)),
            }
        }
        // A clean close made everything submitted durable; after a store
        // failure only what was durable before it is acknowledged, and
        // the rest is dropped unanswered (the peer sees the request fail).
        let d = self.durable.borrow().clone();
        if let Some(e) = &d.error {
            tracing::warn!(error = %e, unacknowledged = self.pending_acks.iter().filter(|(s, _)| *s > d.seq).count(), "requests whose changes the store could not keep are not acknowledged");
        }
        while let Some((seq, r)) = self.pending_acks.pop_front() {
            if seq <= d.seq {
                self.net.respond(r, RouteResponse::Ack);
            }
        }
        let now = self.clock.now();
        let events: Vec<Event> = self
            .engine
            .peers()
            .iter()
            .map(|p| Event::AdminEnable {
                peer: p.node,
                enabled: false,
            })
            .collect();
        let actions = self.engine.handle_all(now, events);
        let mut discard = WriteBatch::default();
        self.apply(now, actions, &mut discard);
        let deadline = Instant::now() + SHUTDOWN_FLUSH;
        while !self.net.all_quiet() {
            tokio::select! {
                ev = self.net.next() => {
                    if let Err(e) = self.on_net(ev).await {
                        tracing::debug!(error = %e, "during shutdown");
                    }
                }
                _ = tokio::time::sleep_until(deadline) => break,
            }
        }
        result
    }
}

pub(super) fn stalled(stall: Duration) -> NodeError {
    NodeError::StoreFailed(format!(
        "nothing became durable for {} s (a stalled or failing disk)",
        stall.as_secs()
    ))
}

pub(super) async fn sleep_until_opt(at: Option<Instant>) {
    match at {
        Some(t) => tokio::time::sleep_until(t).await,
        None => std::future::pending().await,
    }
}

/// The next SIGHUP, or never when the handler could not be installed.
async fn next_hangup(s: &mut Option<tokio::signal::unix::Signal>) -> Option<()> {
    match s {
        Some(s) => s.recv().await,
        None => std::future::pending().await,
    }
}
