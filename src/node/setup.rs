//! Starting a node: node.toml to the engine, net, store, admin and MCP
//! configs; the state restored from the store; the first events.

use super::*;
use crate::config::NodeConfig;

/// The store holds run-time agents' environment values and tokens: its
/// directory is made 0700 (tightened if an older node made it open). A
/// node.toml that others can read while it holds secrets, and a data
/// directory others can list, get a warning.
pub(super) fn check_file_modes(
    cfg: &LoadedConfig,
    store_dir: &std::path::Path,
) -> Result<(), NodeError> {
    match crate::secret_file::tighten_dir(store_dir) {
        Ok(Some(mode)) => tracing::warn!(
            dir = %store_dir.display(),
            was = format!("{mode:04o}"),
            "the store directory was open to others; now 0700"
        ),
        Ok(None) => {}
        Err(e) => {
            return Err(NodeError::StoreDir {
                path: store_dir.to_path_buf(),
                source: e,
            });
        }
    }
    let secrets = cfg.config.secret_keys();
    if !secrets.is_empty()
        && let Some(mode) = crate::secret_file::readable_by_others(&cfg.path)
    {
        tracing::warn!(
            file = %cfg.path.display(),
            mode = format!("{mode:04o}"),
            holds = %secrets.join(", "),
            "node.toml holds secrets and others can read it; run chmod 600 on it"
        );
    }
    let data = cfg.data_dir();
    if let Some(mode) = crate::secret_file::readable_by_others(&data) {
        tracing::warn!(
            dir = %data.display(),
            mode = format!("{mode:04o}"),
            "the data directory is open to others; chmod 700 is advised"
        );
    }
    Ok(())
}

/// The engine's settings from node.toml.
fn engine_config(c: &NodeConfig, security: &Security) -> EngineConfig {
    EngineConfig::new(security.asn(), security.identity().node_id())
        .with_federation(c.node.federation.clone())
        .with_hold_time(c.session.hold_time)
        .with_connect_retry(c.session.connect_retry_min, c.session.connect_retry_max)
        .with_max_routes_per_update(c.session.max_routes_per_update)
        .with_mrai(c.session.mrai, c.session.mrai_withdrawals)
        .with_cert(security.cert())
        .with_graceful_restart(c.session.graceful_restart_secs())
        .with_damping(c.damping.engine())
        .with_cluster_id(c.routing.cluster_id())
        .with_route_server(c.routing.route_server)
        .with_tombstones(security.verifies_routes())
        .with_seed(rand::random())
}

/// The network's settings from node.toml.
pub(super) fn net_config(c: &NodeConfig) -> NetConfig {
    // Idle connections are closed well after the longest hold time.
    let max_hold = c
        .neighbors
        .iter()
        .filter_map(|n| n.hold_time)
        .chain([c.session.hold_time])
        .max()
        .unwrap_or(Duration::from_secs(90));
    let idle = if max_hold.is_zero() {
        Duration::from_secs(86_400)
    } else {
        max_hold * 2 + Duration::from_secs(30)
    };
    let kad_server = match c.discovery.kademlia_mode {
        KadMode::Auto => c.node.bootstrap,
        KadMode::Server => true,
        KadMode::Client => false,
    };
    NetConfig {
        listen: c.network.listen.clone(),
        external: c.network.external_addresses.clone(),
        announce_listen: c.network.announce_listen_addresses,
        federation: c.node.federation.clone(),
        request_timeout: c.network.request_timeout,
        call_request_timeout: c.mcp.call_request_timeout,
        max_concurrent_calls: c.mcp.max_concurrent_calls,
        idle_connection_timeout: idle,
        max_connections: c.network.max_connections,
        max_incoming_connections: c.network.max_incoming_connections,
        max_pending_incoming: c.network.max_pending_incoming,
        max_connections_per_peer: c.network.max_connections_per_peer,
        max_queued: c.network.max_queued_messages,
        limits: Limits::default(),
        gate: crate::net::gate::GateConfig {
            node_bytes: c.network.inbound_buffer_mb.saturating_mul(1 << 20),
            connection_bytes: c
                .network
                .inbound_buffer_per_connection_mb
                .saturating_mul(1 << 20),
            ..Default::default()
        },
        send_limits: {
            let l = Limits::default();
            let per_frame = c.session.max_routes_per_update.clamp(1, l.max_routes());
            let withdraws = c.session.max_routes_per_update.clamp(1, l.max_withdraws());
            l.with_max_routes(per_frame).with_max_withdraws(withdraws)
        },
        mdns: c.discovery.mdns,
        mdns_query_interval: c.discovery.mdns_query_interval,
        kademlia: c.discovery.kademlia,
        kad_server,
        provide: !c.node.bootstrap,
        bootstrap_node: c.node.bootstrap,
        bootstrap: c.discovery.bootstrap.clone(),
        query_interval: c.discovery.query_interval,
        transport: Transport::Network,
        nat: nat_config(c),
    }
}

/// `[nat]` as the network adapter takes it.
fn nat_config(c: &NodeConfig) -> crate::net::nat::NatConfig {
    use crate::config::nat::RelayUse;
    use crate::net::nat::{NatConfig, RelayLimits, UseRelays};
    let n = &c.nat;
    let bootstrap = c.node.bootstrap;
    NatConfig {
        autonat: n.autonat,
        autonat_server: n.autonat_server.on(bootstrap),
        relay_server: n.relay_server.on(bootstrap).then(|| RelayLimits {
            max_reservations: n.relay_max_reservations,
            max_reservations_per_peer: n.relay_max_reservations_per_peer,
            reservation_duration: n.relay_reservation_duration,
            max_circuits: n.relay_max_circuits,
            max_circuits_per_peer: n.relay_max_circuits_per_peer,
            max_circuit_duration: n.relay_max_circuit_duration,
            max_circuit_bytes: n.relay_max_circuit_kib.saturating_mul(1024),
        }),
        use_relays: match n.use_relays {
            RelayUse::Auto => UseRelays::Auto,
            RelayUse::Always => UseRelays::Always,
            RelayUse::Never => UseRelays::Never,
        },
        relays: n.relays.clone(),
        max_relays: n.max_relays,
        hole_punching: n.hole_punching,
        upnp: n.upnp,
    }
}

/// The admin API's listener and its guard (with the token, created on
/// first use), when `[admin] listen` is not "off".
async fn open_admin(
    cfg: &LoadedConfig,
) -> Result<(Option<AdminListener>, Option<Arc<Guard>>), NodeError> {
    let c = &cfg.config;
    let Some(addr) = c.admin.listen.0 else {
        return Ok((None, None));
    };
    let listener = AdminListener::bind(addr)
        .await
        .map_err(|source| NodeError::Admin { addr, source })?;
    let path = cfg.admin_token_path();
    let (token, created) = AdminToken::load_or_create(&path)?;
    if created {
        tracing::info!(file = %path.display(), "created the admin API token");
    }
    let guard = Guard::new(token, &c.admin.allowed_hosts, &c.admin.allowed_origins);
    Ok((Some(listener), Some(Arc::new(guard))))
}

/// Where the admin API really listens (the config may say port 0), for
/// the CLI commands that talk to a running node.
fn record_admin_addr(cfg: &LoadedConfig, addr: Option<SocketAddr>) {
    let addr_file = cfg.data_dir().join(ADMIN_ADDR_FILE);
    match addr {
        Some(a) => {
            if let Err(e) = std::fs::write(&addr_file, format!("{a}\n")) {
                tracing::warn!(file = %addr_file.display(), error = %e, "cannot record the admin address");
            }
        }
        None => {
            let _ = std::fs::remove_file(&addr_file);
        }
    }
}

impl Node {
    pub(super) async fn start(cfg: LoadedConfig) -> Result<Node, NodeError> {
        let clock = Clock::start();
        let now = clock.now();
        let key = NodeKey::load(&cfg.key_path()).map_err(NodeError::Key)?;
        let node_id = key.node_id();
        // The store: refuse another node's or another version's.
        let store_dir = cfg.store_dir();
        check_file_modes(&cfg, &store_dir)?;
        let c = &cfg.config;
        let store = SledStore::open(&store_dir, node_id, now, c.store.cache_capacity_mb)?
            .with_min_free(c.store.min_free_mb.saturating_mul(1 << 20));
        Self::start_with(cfg, key, clock, store, Transport::Network).await
    }

    /// Starts a node on a given store and transport (the sled store and
    /// TCP/QUIC in `abgp run`; an in-memory store and libp2p's memory
    /// transport in the node's own tests).
    pub(super) async fn start_with<S: RibStore>(
        cfg: LoadedConfig,
        key: NodeKey,
        clock: Clock,
        mut store: S,
        transport: Transport,
    ) -> Result<Node, NodeError> {
        let c = cfg.config.clone();
        let now = clock.now();
        let keypair = key.to_libp2p().map_err(NodeError::Libp2pKey)?;
        let security = Security::new(&cfg, key, now)?;
        let node_id = security.identity().node_id();
        let asn = security.asn();

        let policy_path = cfg.policy_path();
        // The policy in force, also kept for explanations (`abgp why`,
        // `abgp policy check`); without a file, the empty set is the RFC
        // 8212 default the engine's DefaultPolicy runs.
        let explain_policy = match &policy_path {
            Some(p) => NodePolicy::new(asn, crate::config::load_policy_file(p)?),
            None => NodePolicy::new(asn, crate::core::policy::PolicySet::empty()),
        };
        let policy: Arc<dyn RoutePolicy> = match &policy_path {
            Some(_) => Arc::new(explain_policy.clone()),
            None => Arc::new(DefaultPolicy),
        };

        // Restore the Adj-RIB-In; the derived trees are rebuilt by the
        // engine.
        let store_dir = cfg.store_dir();
        let previous_clean = store.meta().clean_shutdown;
        if !previous_clean {
            tracing::warn!("the previous run did not shut down cleanly; the store was recovered");
        }
        let stored = store.load_adj_in()?;
        let stored_agents = store.load_agents()?;
        store.clear_derived()?;
        store.set_clean_shutdown(false)?;
        let writer = StoreWriter::spawn(store, STORE_QUEUE).map_err(NodeError::StoreThread)?;
        let durable = writer.durable();

        let engine = Engine::new(engine_config(&c, &security)).with_policy(policy);
        let mut ncfg = net_config(&c);
        ncfg.transport = transport;
        let mut net = Net::new(keypair, ncfg)?;
        // Calls for routes given to our route server come straight from
        // the nodes it gave them to (docs/protocol.md).
        net.set_open_calls(c.neighbors.iter().any(|n| n.route_server));

        let (admin_tx, admin_rx) = mpsc::channel(ADMIN_QUEUE);
        let (admin_listener, admin_guard) = open_admin(&cfg).await?;
        let admin_addr = admin_listener.as_ref().map(|l| l.addr);
        record_admin_addr(&cfg, admin_addr);

        // Bootstrap nodes serve the DHT and peer only with configured
        // neighbours (members skip them too: identify marks them).
        let max_auto = if c.node.bootstrap {
            0
        } else {
            c.discovery.max_auto_peers
        };
        let discovery = Discovery::new(max_auto, c.neighbors.iter().map(|n| n.peer_id));
        let restored_routes = stored.iter().map(|p| p.routes.len()).sum();
        let restored = (stored.len(), restored_routes);
        let mut mcp = mcp::NodeMcp::start(
            &cfg,
            &security,
            node_id,
            net.local_peer_id().to_string(),
            stored_agents,
        )?;
        mcp.serve_front(&cfg).await?;
        let mut node = Node {
            clock,
            engine,
            net,
            discovery,
            security,
            writer: Some(writer),
            durable,
            pending_acks: VecDeque::new(),
            undurable: VecDeque::new(),
            admin_tx,
            admin_rx,
            admin_listener,
            admin_addr,
            admin_guard,
            meta: HashMap::new(),
            sources: HashMap::new(),
            started: HashSet::new(),
            removals: VecDeque::new(),
            originated: Vec::new(),
            last_signed: now,
            last_expiry_sweep: now,
            started_at: now,
            started_info: None,
            on_started: None,
            startup_deadline: Instant::now() + STARTUP_WAIT,
            next_discovery: Instant::now(),
            shutting_down: false,
            store_dir,
            restored,
            previous_clean,
            policy_path,
            explain_policy,
            mcp,
            verifier: verify::Verifier::new(verify::VerifyBudget {
                per_second: f64::from(c.trust.verify_checks_per_peer_per_sec),
                burst: f64::from(c.trust.verify_checks_per_peer_per_sec) * 5.0,
                max_failures: c.trust.max_bad_signatures_per_update,
                ..Default::default()
            }),
            log_throttle: crate::logging::Throttle::per_second(),
            cfg,
        };
        node.initial_events(stored, now).await?;
        Ok(node)
    }

    /// Configured neighbours, the restored Adj-RIB-In (stale), and static
    /// routes, as the engine's first events.
    pub(super) async fn initial_events(
        &mut self,
        stored: Vec<crate::store::StoredPeer>,
        now: Millis,
    ) -> Result<(), NodeError> {
        let c = self.cfg.config.clone();
        let mut events = Vec::new();
        for n in &c.neighbors {
            let Ok(node) = node_id_of(&n.peer_id) else {
                continue;
            };
            let pc = PeerConfig {
                node,
                asn: Some(Asn(n.asn)),
                rr_client: n.rr_client,
                max_prefix: n.max_prefix,
                passive: n.passive,
                hold_time: n.hold_time,
                auto_start: true,
                connect_retry: Some(n.connect_retry(&c.session)),
                require_hold: false,
                route_server_client: n.route_server_client,
                route_server: n.route_server,
                local_role: n.local_role,
                strict_role: n.strict_role,
            };
            if let Some(a) = &n.address {
                self.net.add_addresses(n.peer_id, [a.clone()]);
            }
            self.net.set_engine_peer(&node, true);
            self.started.insert(node);
            events.push(Event::AddPeer(pc));
        }
        let until = now.saturating_add_ms(c.session.graceful_restart.as_millis() as u64);
        for p in stored {
            let Some(asn) = p.asn else {
                tracing::warn!(peer = %p.node.short(), routes = p.routes.len(), "stored routes of a peer with no known ASN; not restored");
                continue;
            };
            // Restored routes are verified again before they are used: an
            // origin attestation may have expired while the node was down,
            // the trust settings may have changed, the store may have been
            // edited. Those that fail are not restored.
            let stored_count = p.routes.len();
            let mut u = crate::core::message::Update {
                announce: p.routes,
                ..Default::default()
            };
            if let Some(pending) = self.security.plan_update(&u, asn, now) {
                let job = tokio::task::spawn_blocking(move || {
                    let v = pending.verify(usize::MAX);
                    (pending, v)
                });
                match job.await {
                    Ok((pending, v)) => {
                        let failed = self.security.apply_verdicts(&mut u, pending, v);
                        if failed > 0 {
                            tracing::warn!(peer = %p.node.short(), %asn, failed, "stored routes that no longer verify (expired attestations, changed trust, or an edited store); not restored, and removed from the store");
                            let changes = std::mem::take(&mut u.withdraw)
                                .into_iter()
                                .map(|key| RibChange::AdjIn {
                                    peer: p.node,
                                    key,
                                    route: None,
                                })
                                .collect();
                            let batch = crate::store::WriteBatch {
                                changes,
                                ..Default::default()
                            };
                            self.commit(batch, None).await?;
                        }
                    }
                    Err(e) => {
                        tracing::error!(peer = %p.node.short(), error = %e, "verifying stored routes failed; none of this peer's are restored");
                        u.announce.clear();
                    }
                }
            }
            // Authorisations may have changed while the node was down.
            self.security.validate_origins(&mut u, now);
            tracing::info!(peer = %p.node.short(), %asn, routes = u.announce.len(), stored = stored_count, "restoring routes as stale");
            events.push(Event::RestoreStale {
                peer: p.node,
                asn,
                routes: u.announce,
                until,
            });
        }
        if c.node.bootstrap && !c.originate.is_empty() {
            tracing::warn!(
                "a bootstrap node originating routes: allowed, but bootstrap nodes usually carry no agents"
            );
        }
        for o in &c.originate {
            let attrs = PathAttrs {
                agent: AgentId::new(&o.agent),
                med: o.med,
                origin_time: now,
                ..Default::default()
            }
            .with_capabilities(&o.capabilities)
            .with_communities(o.communities.iter().cloned());
            self.originated
                .push(Route::new(o.prefix.clone(), Arc::new(attrs)));
        }
        events.extend(self.signed_originations(now));
        self.step(events, None).await
    }

    pub(super) fn signed_originations(&mut self, now: Millis) -> Vec<Event> {
        self.last_signed = now;
        self.originated
            .iter()
            .map(|r| {
                let mut r = r.clone();
                r.proof = Some(self.security.sign_origin(&r, now));
                Event::Originate(r)
            })
            .collect()
    }
}
