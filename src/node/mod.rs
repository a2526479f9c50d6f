//! The running node: one task owns the [`Engine`] and drives it.
//!
//! ```text
//!              +------------------- node task ----------------------+
//!  swarm ────> | Net::next ──> checks (cert, signatures) ──> Engine   |
//!  timers ───> | engine deadline ──> Tick                     │       |
//!  admin  ───> | AdminRequest ──> views (oneshot reply)       │       |
//!  maint. ───> | discovery, auto-peering, re-signing          v       |
//!              |     Actions ──> Net (dial/send/close), WriteBatch ──────> store thread
//!  acks   <─── | <── durable seq (watch) <── pending acks <──────────────── (flush)
//!              +-----------------------------------------------------+
//! ```
//!
//! A `tokio::select!` loop waits on the swarm, the engine's next deadline,
//! admin requests, a 1 s maintenance tick, store durability and shutdown.
//! Every engine call goes through [`Node::step`]: it hands the engine the
//! events with the current [`Millis`], carries out the actions, submits the
//! RIB changes as one batch, and queues the acknowledgement of the request
//! that caused them until that batch is durable. Nothing else touches the
//! engine, so it needs no locks.
//!
//! On SIGTERM/SIGINT the store is closed first (everything durable, clean
//! shutdown recorded), then every session gets a Cease: peers drop our
//! routes at once, and our stored RIB still holds what they had sent, to be
//! restored as stale at the next start.

pub mod calls;
pub mod clock;
pub mod mcp;
pub mod security;
pub mod verify;

use std::collections::{HashMap, HashSet, VecDeque};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use libp2p::{Multiaddr, PeerId};
use tokio::sync::{mpsc, watch};
use tokio::time::Instant;

use crate::admin::views::{
    AdjInView, AdjOutView, DiscoveryView, PeerCounts, PeerView, RouteView, StatusView, StoreView,
};
use crate::admin::{AdminListener, AdminRequest, AdminToken, Guard};

use crate::config::{AsnSetting, CertSource, KadMode, LoadedConfig};
use crate::core::attrs::PathAttrs;
use crate::core::engine::{
    Action, DefaultPolicy, Engine, EngineConfig, Event, PeerConfig, PeerState, RibChange,
    RoutePolicy,
};
use crate::core::ids::{AgentId, Asn, Millis, NodeId};
use crate::core::message::{Capabilities, ErrorCode, Message, Notification, subcode};
use crate::core::policy::{NodePolicy, PolicyLoadError};
use crate::core::route::Route;
use crate::identity::{Binding, KeyFileError, NodeKey, node_id_of, peer_id_of};
use crate::net::codec::{Inbound, RouteResponse};
use crate::net::discovery::{Discovery, Eviction, Source};
use crate::net::gate::Charge;
use crate::net::{BuildError, Net, NetConfig, NetEvent, Reply};
use crate::store::{Durability, RibStore, SledStore, StoreError, StoreWriter, WriteBatch};
use crate::wire::Limits;

use clock::Clock;
use security::{IdentityError, Security};

/// File in the data directory holding the admin API's actual address.
pub const ADMIN_ADDR_FILE: &str = "admin.addr";

/// Batches that may wait for the store thread before the node waits.
const STORE_QUEUE: usize = 256;
/// Admin requests waiting for the node task.
const ADMIN_QUEUE: usize = 64;
/// How long shutdown waits for the goodbye NOTIFICATIONs to go out.
const SHUTDOWN_FLUSH: Duration = Duration::from_secs(2);
/// How long start-up waits for every listener before printing the summary.
const STARTUP_WAIT: Duration = Duration::from_secs(3);
const MAX_SOURCES: usize = 4096;

/// Why the node could not start or had to stop.
#[derive(Debug, thiserror::Error)]
pub enum NodeError {
    #[error("{0} (create one with `abgp init --dir DIR`)")]
    Key(#[source] KeyFileError),
    #[error("identity: {0}")]
    Identity(#[from] IdentityError),
    #[error("{0}")]
    Store(#[from] StoreError),
    #[error(
        "store failed while running: {0}; stopping rather than acknowledging routes it cannot keep"
    )]
    StoreFailed(String),
    #[error("policy: {0}")]
    Policy(#[from] PolicyLoadError),
    #[error("network: {0}")]
    Net(#[from] BuildError),
    #[error("admin API on {addr}: {source}")]
    Admin {
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot create {path}: {source}")]
    StoreDir {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot start the store thread: {0}")]
    StoreThread(#[source] std::io::Error),
    #[error("node key as a libp2p identity: {0}")]
    Libp2pKey(#[source] crate::identity::key::PeerIdError),
    #[error("admin API token: {0}")]
    AdminToken(#[from] crate::admin::token::TokenError),
    #[error("access rules: {0}")]
    Access(#[from] crate::core::access::AccessConfigError),
    #[error("{0}")]
    Agents(#[from] crate::config::AgentsError),
    #[error("agent: {0}")]
    Agent(#[from] crate::mcp::upstream::UpstreamError),
    #[error("MCP front: {0}")]
    Front(#[from] crate::mcp::front::http::FrontHttpError),
}

/// What the node reports once it is up (the CLI prints it).
#[derive(Debug, Clone)]
pub struct Started {
    pub peer_id: PeerId,
    pub node_id: NodeId,
    pub asn: Asn,
    pub asn_source: String,
    pub federation: String,
    pub bootstrap: bool,
    pub listen: Vec<Multiaddr>,
    pub admin: Option<SocketAddr>,
    pub store_dir: PathBuf,
    pub restored_peers: usize,
    pub restored_routes: usize,
    pub previous_shutdown_clean: bool,
    pub policy: Option<PathBuf>,
    pub neighbors: usize,
    pub originated: usize,
    /// The MCP front (`http://<addr>/mcp`), when it listens.
    pub mcp: Option<SocketAddr>,
    /// Agents configured (node.toml and run-time).
    pub agents: usize,
}

type StartedHook = Box<dyn FnOnce(&Started) + Send>;

/// Per-peer facts the engine does not keep.
#[derive(Debug, Clone, Default)]
struct PeerMeta {
    established_since: Option<Millis>,
    last_error: Option<String>,
    /// Bumped when a session ends, so an UPDATE of an earlier session that
    /// finishes its checks late is not applied to a later one.
    epoch: u64,
}

/// The store holds run-time agents' environment values and tokens: its
/// directory is made 0700 (tightened if an older node made it open). A
/// node.toml that others can read while it holds secrets, and a data
/// directory others can list, get a warning.
fn check_file_modes(cfg: &LoadedConfig, store_dir: &std::path::Path) -> Result<(), NodeError> {
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

fn stalled(stall: Duration) -> NodeError {
    NodeError::StoreFailed(format!(
        "nothing became durable for {} s (a stalled or failing disk)",
        stall.as_secs()
    ))
}

/// Starts a node and runs it until `shutdown` resolves.
pub async fn run(
    cfg: LoadedConfig,
    shutdown: impl std::future::Future<Output = ()> + Send,
    on_started: impl FnOnce(&Started) + Send + 'static,
) -> Result<(), NodeError> {
    let mut node = Node::start(cfg).await?;
    node.on_started = Some(Box::new(on_started));
    node.run_loop(shutdown).await
}

struct Node {
    cfg: LoadedConfig,
    clock: Clock,
    engine: Engine,
    net: Net,
    discovery: Discovery,
    security: Security,
    writer: Option<StoreWriter>,
    durable: watch::Receiver<Durability>,
    pending_acks: VecDeque<(u64, Reply)>,
    /// Batches submitted and not durable yet, with when: a batch older than
    /// `[store] stall` stops the node (a stalled disk).
    undurable: VecDeque<(u64, Instant)>,
    admin_tx: mpsc::Sender<AdminRequest>,
    admin_rx: mpsc::Receiver<AdminRequest>,
    admin_listener: Option<AdminListener>,
    admin_addr: Option<SocketAddr>,
    /// The admin API's checks (and their refusal counts), while it listens.
    admin_guard: Option<Arc<Guard>>,
    meta: HashMap<NodeId, PeerMeta>,
    sources: HashMap<PeerId, Source>,
    /// Peers the engine runs a session for (configured or auto-added);
    /// restored-only peers are not here until they are peered again.
    started: HashSet<NodeId>,
    /// Auto peers to remove after the current step.
    removals: VecDeque<NodeId>,
    /// Static routes without their signature; re-signed periodically.
    originated: Vec<Route>,
    last_signed: Millis,
    started_at: Millis,
    started_info: Option<Started>,
    on_started: Option<StartedHook>,
    startup_deadline: Instant,
    next_discovery: Instant,
    shutting_down: bool,
    store_dir: PathBuf,
    restored: (usize, usize),
    previous_clean: bool,
    policy_path: Option<PathBuf>,
    mcp: mcp::NodeMcp,
    /// Route signature checks off the node task.
    verifier: verify::Verifier<HeldUpdate>,
    /// Warnings caused by peers, at most one a second.
    log_throttle: crate::logging::Throttle,
}

/// An UPDATE waiting for its signature checks, with what answers it.
#[derive(Debug)]
struct HeldUpdate {
    update: crate::core::message::Update,
    reply: Reply,
    epoch: u64,
    /// The frame's bytes stay charged to the peer meanwhile.
    _charge: Charge,
}

impl Node {
    async fn start(cfg: LoadedConfig) -> Result<Node, NodeError> {
        let c = cfg.config.clone();
        let clock = Clock::start();
        let now = clock.now();
        let key = NodeKey::load(&cfg.key_path()).map_err(NodeError::Key)?;
        let keypair = key.to_libp2p().map_err(NodeError::Libp2pKey)?;
        let security = Security::new(&cfg, key, now)?;
        let node_id = security.identity().node_id();
        let asn = security.asn();

        let policy_path = cfg.policy_path();
        let policy: Arc<dyn RoutePolicy> = match &policy_path {
            Some(p) => Arc::new(NodePolicy::new(asn, crate::config::load_policy_file(p)?)),
            None => Arc::new(DefaultPolicy),
        };

        // The store: refuse another node's or another version's; restore
        // the Adj-RIB-In; the derived trees are rebuilt by the engine.
        let store_dir = cfg.store_dir();
        check_file_modes(&cfg, &store_dir)?;
        let mut store = SledStore::open(&store_dir, node_id, now, c.store.cache_capacity_mb)?
            .with_min_free(c.store.min_free_mb.saturating_mul(1 << 20));
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

        let hold = c.session.hold_time;
        let gr = c.session.graceful_restart_secs();
        let mut ecfg = EngineConfig::new(asn, node_id);
        ecfg.federation = c.node.federation.clone();
        ecfg.hold_time = hold;
        ecfg.connect_retry = (c.session.connect_retry_min, c.session.connect_retry_max);
        ecfg.max_routes_per_update = c.session.max_routes_per_update;
        ecfg.cert = Some(security.cert());
        ecfg.capabilities = Capabilities {
            route_refresh: true,
            graceful_restart: (gr > 0).then_some(gr),
            add_path: false,
            multipath: false,
        };
        ecfg.seed = rand::random();
        let engine = Engine::new(ecfg).with_policy(policy);

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
        let query_interval = c.discovery.query_interval;
        let ncfg = NetConfig {
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
            query_interval,
        };
        let net = Net::new(keypair, ncfg)?;

        let (admin_tx, admin_rx) = mpsc::channel(ADMIN_QUEUE);
        let admin_listener = match c.admin.listen.0 {
            Some(addr) => Some(
                AdminListener::bind(addr)
                    .await
                    .map_err(|source| NodeError::Admin { addr, source })?,
            ),
            None => None,
        };
        let admin_addr = admin_listener.as_ref().map(|l| l.addr);
        let admin_guard = match admin_listener {
            Some(_) => {
                let path = cfg.admin_token_path();
                let (token, created) = AdminToken::load_or_create(&path)?;
                if created {
                    tracing::info!(file = %path.display(), "created the admin API token");
                }
                Some(Arc::new(Guard::new(
                    token,
                    &c.admin.allowed_hosts,
                    &c.admin.allowed_origins,
                )))
            }
            None => None,
        };
        // Where the admin API really listens (the config may say port 0),
        // for the CLI commands that talk to a running node.
        let addr_file = cfg.data_dir().join(ADMIN_ADDR_FILE);
        match admin_addr {
            Some(a) => {
                if let Err(e) = std::fs::write(&addr_file, format!("{a}\n")) {
                    tracing::warn!(file = %addr_file.display(), error = %e, "cannot record the admin address");
                }
            }
            None => {
                let _ = std::fs::remove_file(&addr_file);
            }
        }

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
    async fn initial_events(
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
            tracing::info!(peer = %p.node.short(), %asn, routes = p.routes.len(), "restoring routes as stale");
            events.push(Event::RestoreStale {
                peer: p.node,
                asn,
                routes: p.routes,
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

    fn signed_originations(&mut self, now: Millis) -> Vec<Event> {
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

    async fn run_loop(
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
                Some(req) = self.admin_rx.recv() => {
                    self.on_admin(req).await;
                    Ok(())
                }
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
            self.report_started_if_ready();
        };
        let _ = stop_admin_tx.send(());
        let closed = self.shutdown().await;
        result.and(closed)
    }

    fn report_started_if_ready(&mut self) {
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
    async fn step(&mut self, events: Vec<Event>, reply: Option<Reply>) -> Result<(), NodeError> {
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

    async fn commit(&mut self, batch: WriteBatch, reply: Option<Reply>) -> Result<(), NodeError> {
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
            Ok(r) => r.map_err(NodeError::StoreFailed)?,
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
    fn check_store_stall(&self) -> Result<(), NodeError> {
        let stall = self.cfg.config.store.stall;
        match self.undurable.front() {
            Some((_, at)) if at.elapsed() > stall => Err(stalled(stall)),
            _ => Ok(()),
        }
    }

    fn on_durable(&mut self) -> Result<(), NodeError> {
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
    fn apply(&mut self, now: Millis, actions: Vec<Action>, batch: &mut WriteBatch) {
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

    /// A NOTIFICATION went to or came from a peer. An auto peer whose
    /// handshake fails is dropped and not retried for a while.
    fn note_notification(&mut self, node: NodeId, n: &Notification, sent: bool) {
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

    fn drop_auto(&mut self, node: NodeId, peer: PeerId) {
        self.discovery.remove_auto(&peer);
        self.started.remove(&node);
        self.net.set_engine_peer(&node, false);
        if !self.removals.contains(&node) {
            self.removals.push_back(node);
        }
    }

    async fn on_net(&mut self, ev: NetEvent) -> Result<(), NodeError> {
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
    fn refuse_inbound(&mut self, peer: &PeerId, node: &NodeId) -> Option<String> {
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
    fn evict_for_newcomer(&mut self, now: Instant) -> bool {
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
    async fn on_request(
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
    fn discovered_peer(&self, node: NodeId) -> PeerConfig {
        PeerConfig::discovered(node, self.cfg.config.discovery.auto_peer_max_prefix)
    }

    /// An UPDATE whose signatures were checked off the node task.
    async fn on_verified(&mut self, done: verify::Done<HeldUpdate>) -> Result<(), NodeError> {
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

    fn note_dropped(&mut self, peer: PeerId, dropped: usize) {
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
    async fn auto_peer(&mut self) -> Result<(), NodeError> {
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
    async fn maintain(&mut self) -> Result<(), NodeError> {
        self.check_store_stall()?;
        let now_i = Instant::now();
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

    fn parse_peer(&self, s: &str) -> Result<NodeId, String> {
        let node = if s.len() == 64 {
            s.parse::<NodeId>()?
        } else {
            let p: PeerId = s
                .parse()
                .map_err(|_| format!("{s:?} is neither a peer id nor a 64-hex-digit node id"))?;
            node_id_of(&p).map_err(|e| e.to_string())?
        };
        if self.engine.peer_info(&node).is_none() {
            return Err(format!("{s} is not a peer of this node"));
        }
        Ok(node)
    }

    fn route_views(&self, routes: &[Route]) -> Vec<RouteView> {
        routes.iter().map(RouteView::new).collect()
    }

    async fn on_admin(&mut self, req: AdminRequest) {
        match req {
            AdminRequest::Agents(tx) => {
                let _ = tx.send(self.agent_views());
            }
            AdminRequest::AddAgent { entry, reply } => {
                let r = self.add_agent(entry).await;
                let _ = reply.send(r);
            }
            AdminRequest::RemoveAgent { id, reply } => {
                self.remove_agent(id, reply).await;
            }
            AdminRequest::Mcp(tx) => {
                let _ = tx.send(self.mcp_view());
            }
            AdminRequest::Calls(tx) => {
                let _ = tx.send(self.calls_view());
            }
            AdminRequest::Status(tx) => {
                let _ = tx.send(self.status());
            }
            AdminRequest::Peers(tx) => {
                let _ = tx.send(self.peer_views());
            }
            AdminRequest::Routes(tx) => {
                let v = self
                    .engine
                    .loc_rib()
                    .iter()
                    .map(|r| {
                        let paths = self.engine.paths(&r.prefix);
                        RouteView::best(r, paths.first())
                    })
                    .collect();
                let _ = tx.send(v);
            }
            AdminRequest::RoutesIn { peer, reply } => {
                let r = self.parse_peer(&peer).map(|n| AdjInView {
                    peer: peer_label(&n),
                    pre_policy: self.route_views(&self.engine.adj_rib_in_pre(&n)),
                    post_policy: self.route_views(&self.engine.adj_rib_in_post(&n)),
                });
                let _ = reply.send(r);
            }
            AdminRequest::RoutesOut { peer, reply } => {
                let r = self.parse_peer(&peer).map(|n| AdjOutView {
                    peer: peer_label(&n),
                    routes: self.route_views(&self.engine.adj_rib_out(&n)),
                });
                let _ = reply.send(r);
            }
        }
    }

    fn peer_views(&self) -> Vec<PeerView> {
        let now = Instant::now();
        let mut v: Vec<PeerView> = self
            .engine
            .peers()
            .iter()
            .map(|p| {
                let mut view = PeerView::new(p);
                let pid = peer_id_of(&p.node);
                // Peers only restored from the store (not running a
                // session) have no source.
                view.source = self
                    .started
                    .contains(&p.node)
                    .then(|| self.discovery.source_of(&pid))
                    .flatten();
                view.blocked = self.discovery.blocked(&pid, now).map(str::to_string);
                view.addresses = self
                    .net
                    .addresses_of(&pid)
                    .iter()
                    .map(|a| a.to_string())
                    .collect();
                view.link = self.net.link_info(&p.node);
                if let Some(m) = self.meta.get(&p.node) {
                    view.established_since = m.established_since.map(|t| t.0);
                    view.last_error = m.last_error.clone();
                }
                view
            })
            .collect();
        v.sort_by(|a, b| a.peer_id.cmp(&b.peer_id));
        v
    }

    fn status(&self) -> StatusView {
        let c = &self.cfg.config;
        let peers = self.engine.peers();
        let d = self.durable.borrow().clone();
        let now = self.clock.now();
        StatusView {
            version: env!("CARGO_PKG_VERSION").to_string(),
            peer_id: self.net.local_peer_id().to_string(),
            node_id: self.security.identity().node_id().to_string(),
            asn: self.security.asn().0,
            asn_binding: match (&c.node.certificate, c.node.asn) {
                (CertSource::File(_), _) => "issued".into(),
                (CertSource::SelfSigned, AsnSetting::Number(_)) => "self-signed".into(),
                _ => "derived".into(),
            },
            federation: c.node.federation.clone(),
            bootstrap: c.node.bootstrap,
            listen: self
                .net
                .listen_addrs()
                .iter()
                .map(|a| a.to_string())
                .collect(),
            external: self
                .net
                .external_addrs()
                .iter()
                .map(|a| a.to_string())
                .collect(),
            admin: self.admin_addr.map(|a| format!("http://{a}")),
            now_ms: now.0,
            uptime_ms: now.saturating_sub(self.started_at),
            loc_rib_routes: self.engine.loc_rib_len(),
            peers: PeerCounts {
                configured: c.neighbors.len(),
                auto: self.discovery.auto_count(),
                established: peers
                    .iter()
                    .filter(|p| p.state == PeerState::Established)
                    .count(),
                total: peers.len(),
            },
            engine: self.engine.stats().clone(),
            verify: self.security.verify_view(),
            inbound: {
                let g = self.net.gate_config();
                crate::admin::views::InboundView {
                    gate: self.net.gate_stats(),
                    budget_bytes: g.node_bytes as u64,
                    budget_bytes_per_connection: g.connection_bytes as u64,
                    probes_deferred: self.net.probes_deferred,
                    addresses_refused: self.net.addresses_refused,
                }
            },
            admin_refused: self
                .admin_guard
                .as_ref()
                .map(|g| g.refused.view())
                .unwrap_or_default(),
            store: StoreView {
                dir: self.store_dir.display().to_string(),
                schema_version: crate::store::SCHEMA_VERSION,
                submitted_batches: self.writer.as_ref().map_or(0, |w| w.last_submitted()),
                durable_batches: d.seq,
                flushes: d.flushes,
                pending_acks: self.pending_acks.len(),
                error: d.error,
                restored_peers: self.restored.0,
                restored_routes: self.restored.1,
                previous_shutdown_clean: self.previous_clean,
            },
            discovery: DiscoveryView {
                mdns: self.net.mdns_enabled(),
                kademlia: self.net.kad_enabled(),
                kademlia_server: matches!(c.discovery.kademlia_mode, KadMode::Server)
                    || (matches!(c.discovery.kademlia_mode, KadMode::Auto) && c.node.bootstrap),
                auto_peers: self.discovery.auto_count(),
                max_auto_peers: c.discovery.max_auto_peers,
            },
        }
    }

    /// Closes the store (all durable, clean shutdown recorded), then sends
    /// every peer a Cease and gives the NOTIFICATIONs a moment to leave.
    async fn shutdown(&mut self) -> Result<(), NodeError> {
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

async fn sleep_until_opt(at: Option<Instant>) {
    match at {
        Some(t) => tokio::time::sleep_until(t).await,
        None => std::future::pending().await,
    }
}

fn peer_label(n: &NodeId) -> String {
    peer_id_of(n).to_string()
}

fn binding_label(b: &Binding) -> String {
    match b {
        Binding::Derived => "derived".into(),
        Binding::Issued { anchor } => format!("issued by {anchor}"),
        Binding::Pinned => "pinned".into(),
    }
}
