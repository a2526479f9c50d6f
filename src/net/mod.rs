//! The libp2p adapter: turns swarm events into engine transport events and
//! routing requests, and the engine's transport actions into swarm calls.
//!
//! [`Net`] owns the swarm ([`behaviour`]), one [`link::Link`] per peer, an
//! address book, and the discovery mechanics (probing what mDNS and
//! Kademlia find, announcing federation membership in the DHT). It
//! translates; it does **not** decide who to peer with, whether an OPEN's
//! certificate is good or what a route means. Those are the node's and the
//! core's; [`discovery::Discovery`] holds the auto-peering bookkeeping the
//! node consults.
//!
//! Files: `book` (addresses, identify, discovery dials), `conns` (the link
//! lifecycle), `route_proto` and `route_codec` (the routing protocol),
//! `call_proto` and `call_codec` (the call protocol), `gate` (who may open
//! call streams, inbound byte budgets), `link` (one peer's transport and
//! queue), `behaviour` (the swarm's behaviours), `discovery` (auto-peering
//! bookkeeping), `nat` (AutoNAT, relay reservations and the relay we
//! serve, hole punching).
//!
//! # Transports
//!
//! The engine expects at most one current transport per peer. libp2p may
//! hold several connections to a peer (both dialled at once); they are one
//! transport here: the engine hears `Connected` when the first connection
//! to a peer it knows is up (direction from that connection's endpoint) and
//! `Disconnected` when the last one closes. `Disconnect` and `Refuse` flush
//! the peer's queue (the NOTIFICATION goes first), then close every
//! connection; connections that come up meanwhile are reported once the
//! old ones are gone.
//!
//! # Requests
//!
//! Every routing message is one request; at most one is in flight per peer
//! (see [`link`]). An inbound request reaches the node as
//! [`NetEvent::Request`] with a [`Reply`]; the node answers with
//! [`Net::respond`] once the message is handled and durable. A request from
//! a peer the engine has no transport with is flagged (`reported: false`):
//! the node either starts a session (auto-peering an inbound OPEN) or
//! refuses it.

pub mod behaviour;
mod book;
pub mod call_codec;
mod call_proto;
mod conns;
pub mod discovery;
pub mod gate;
pub mod link;
pub mod nat;
#[cfg(test)]
mod nat_tests;
pub mod route_codec;
mod route_proto;
#[cfg(test)]
mod tests;

use std::collections::{HashMap, HashSet, VecDeque};
use std::time::Duration;

use futures::StreamExt;
use libp2p::multiaddr::Protocol;
use libp2p::request_response::{self, ResponseChannel};
use libp2p::swarm::dial_opts::{DialOpts, PeerCondition};
use libp2p::swarm::{ConnectionId, SwarmEvent};
use libp2p::{Multiaddr, PeerId, Swarm, identify, identity::Keypair, kad, mdns};
use sha2::{Digest, Sha256};

use crate::core::call::{Answer, CallAnswer, CallKind, CallMessage, LegId};
use crate::core::ids::NodeId;
use crate::core::message::{Message, Notification};
use crate::identity::{node_id_of, peer_id_of};
use crate::wire::Limits;

use behaviour::{
    Behaviour, BehaviourEvent, KAD_PROTOCOL, build_swarm, federation_of, is_bootstrap,
};
use book::{MAX_PENDING, ProbeBudget};
use call_codec::{CallInbound, CallRequest, CallResponse};
use discovery::Source;
use link::{Conn, Link, LinkStats};
use route_codec::{Inbound, ROUTE_PROTOCOL, RouteRequest, RouteResponse};

pub use behaviour::BuildError;

/// Settings of the libp2p side, derived from node.toml.
#[derive(Debug, Clone)]
pub struct NetConfig {
    pub listen: Vec<Multiaddr>,
    pub external: Vec<Multiaddr>,
    pub announce_listen: bool,
    pub federation: String,
    pub request_timeout: Duration,
    /// Timeout of one call-protocol message (a CALL's answer, a result).
    pub call_request_timeout: Duration,
    /// Call-protocol substreams per connection (calls in flight each way).
    pub max_concurrent_calls: usize,
    pub idle_connection_timeout: Duration,
    pub max_connections: u32,
    pub max_incoming_connections: u32,
    pub max_pending_incoming: u32,
    pub max_connections_per_peer: u32,
    pub max_queued: usize,
    /// What we accept from peers.
    pub limits: Limits,
    /// What peers may make us read and hold (see [`gate`]).
    pub gate: gate::GateConfig,
    /// How we cut what we send: like `limits`, but with at most
    /// `max_routes_per_update` routes per frame, also when queued UPDATEs
    /// were merged.
    pub send_limits: Limits,
    pub mdns: bool,
    pub mdns_query_interval: Duration,
    pub kademlia: bool,
    pub kad_server: bool,
    /// Announce federation membership in the DHT.
    pub provide: bool,
    /// This is a bootstrap node (announced through identify).
    pub bootstrap_node: bool,
    pub bootstrap: Vec<Multiaddr>,
    pub query_interval: Duration,
    /// TCP, QUIC and DNS, or libp2p's in-memory transport. node.toml has
    /// no key for it.
    pub transport: Transport,
    /// NAT traversal: AutoNAT, relays, hole punching, UPnP.
    pub nat: nat::NatConfig,
}

/// Which libp2p transport a `Net` runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    /// TCP, QUIC and DNS (`abgp run`).
    Network,
    /// libp2p's in-memory transport (`/memory/N` addresses, one process):
    /// for adapter tests and in-process simulations.
    Memory,
}

impl NetConfig {
    /// node.toml's defaults (docs/operations.md): 30 s request timeouts,
    /// 1024 call streams per connection, 256 connections (128 inbound, 32
    /// pending, 3 per peer), 1024 queued messages per peer, the wire's
    /// limits in, at most 1000 routes per frame out; but no mDNS, no
    /// Kademlia, no bootstrap nodes and no NAT traversal (node.toml turns
    /// them on).
    pub fn new(listen: Vec<Multiaddr>, federation: impl Into<String>) -> Self {
        NetConfig {
            listen,
            external: Vec::new(),
            announce_listen: true,
            federation: federation.into(),
            request_timeout: Duration::from_secs(30),
            call_request_timeout: Duration::from_secs(30),
            max_concurrent_calls: 1024,
            idle_connection_timeout: Duration::from_secs(210),
            max_connections: 256,
            max_incoming_connections: 128,
            max_pending_incoming: 32,
            max_connections_per_peer: 3,
            max_queued: 1024,
            limits: Limits::default(),
            gate: gate::GateConfig::default(),
            send_limits: Limits::default()
                .with_max_routes(1000)
                .with_max_withdraws(1000),
            mdns: false,
            mdns_query_interval: Duration::from_secs(30),
            kademlia: false,
            kad_server: false,
            provide: false,
            bootstrap_node: false,
            bootstrap: Vec::new(),
            query_interval: Duration::from_secs(60),
            transport: Transport::Network,
            nat: nat::NatConfig::off(),
        }
    }

    /// Uses the in-memory transport ([`Transport::Memory`]).
    pub fn with_memory_transport(mut self) -> Self {
        self.transport = Transport::Memory;
        self
    }
}

/// What the node hears from the network.
#[derive(Debug)]
pub enum NetEvent {
    /// A transport to a peer the engine knows is up.
    Connected { peer: NodeId, outbound: bool },
    /// The last connection of a reported transport closed, or the peer
    /// stopped acknowledging.
    Disconnected { peer: NodeId, reason: String },
    /// A dial the engine asked for failed.
    ConnectFailed { peer: NodeId },
    /// A routing message; answer it with [`Net::respond`].
    Request {
        peer: PeerId,
        /// `None` if the peer's key is not an ed25519 key (not an agent-bgp node).
        node: Option<NodeId>,
        /// Whether the engine has a transport with this peer.
        reported: bool,
        inbound: Inbound,
        reply: Reply,
        /// The frame's bytes stay charged to the peer's budget until this
        /// is dropped.
        charge: gate::Charge,
    },
    /// The peer would not take our message: it has no session with us.
    Refused {
        peer: NodeId,
        notification: Notification,
    },
    /// mDNS or Kademlia found a node; it is being dialled so identify can
    /// tell what it is.
    Discovered { peer: PeerId, source: Source },
    /// Identify told us what a peer is.
    Identified {
        peer: PeerId,
        member: bool,
        agent_version: String,
    },
    /// A call-protocol message from a peer. A CALL is answered later with
    /// [`Net::answer_call`]; the others were acknowledged already. The
    /// frame stays charged to the peer's budget until `charge` is dropped.
    Call {
        peer: NodeId,
        msg: CallMessage,
        charge: gate::Charge,
    },
    /// The answer to a CALL this node sent.
    CallAnswered { peer: NodeId, answer: Answer },
    /// A call-protocol request this node sent got no response.
    /// `maybe_received` is false when it certainly did not arrive.
    CallFailed {
        peer: NodeId,
        leg: LegId,
        kind: CallKind,
        maybe_received: bool,
        reason: String,
    },
    /// The last connection to a peer closed: calls through it are lost.
    PeerGone { peer: NodeId },
    /// A listener is up on this address.
    Listening(Multiaddr),
    /// A listener failed or closed.
    ListenerDown(String),
}

/// The means to answer one inbound request.
#[derive(Debug)]
pub struct Reply {
    peer: PeerId,
    channel: ResponseChannel<RouteResponse>,
    /// The connection the request came on.
    connection: ConnectionId,
}

impl Reply {
    pub fn peer(&self) -> PeerId {
        self.peer
    }

    pub fn connection(&self) -> ConnectionId {
        self.connection
    }
}

/// A link as the admin API shows it.
#[derive(Debug, Clone, serde::Serialize)]
pub struct LinkInfo {
    pub connections: usize,
    /// Direct, relayed, or relayed while hole punching is tried.
    pub path: Option<nat::Path>,
    pub reported: bool,
    pub closing: bool,
    pub queued: usize,
    pub in_flight: bool,
    pub stats: LinkStats,
}

/// The Kademlia key members of a federation provide:
/// SHA-256("agent-bgp/federation/" + name).
pub fn federation_key(federation: &str) -> kad::RecordKey {
    let mut h = Sha256::new();
    h.update(b"agent-bgp/federation/");
    h.update(federation.as_bytes());
    kad::RecordKey::new(&h.finalize().to_vec())
}

/// The network side of a node. See the module docs.
pub struct Net {
    swarm: Swarm<Behaviour>,
    cfg: NetConfig,
    gate: gate::Gate,
    links: HashMap<PeerId, Link>,
    /// Peers the engine has a session slot for (configured or auto-added).
    engine_peers: HashSet<PeerId>,
    book: HashMap<PeerId, Vec<Multiaddr>>,
    pending: VecDeque<NetEvent>,
    listening: Vec<Multiaddr>,
    fed_key: kad::RecordKey,
    bootstrapped: bool,
    providing: bool,
    /// Encodes call-protocol requests (the behaviour's copy is private).
    call_codec: call_codec::CallCodec,
    /// Call-protocol requests in flight: what each was.
    call_out: HashMap<request_response::OutboundRequestId, (NodeId, LegId, CallKind)>,
    /// CALLs received and not answered yet.
    call_answers: HashMap<(NodeId, LegId), ResponseChannel<CallResponse>>,
    /// Warnings caused by peers, at most one a second.
    log_throttle: crate::logging::Throttle,
    /// Dials to discovered peers, at most [`PROBE_RATE`] a second.
    probe_budget: ProbeBudget,
    /// Probe dials not made for want of budget, and addresses refused.
    pub probes_deferred: u64,
    pub addresses_refused: u64,
    /// Reachability, relay reservations, hole punching ([`nat`]).
    nat: nat::NatState,
}

impl std::fmt::Debug for Net {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Net")
            .field("local", self.swarm.local_peer_id())
            .field("links", &self.links.len())
            .finish()
    }
}

impl Net {
    /// Builds the swarm and starts listening and bootstrapping.
    pub fn new(key: Keypair, cfg: NetConfig) -> Result<Net, BuildError> {
        let gate = gate::Gate::new(cfg.gate);
        let swarm = build_swarm(key, &cfg, &gate)?;
        let fed_key = federation_key(&cfg.federation);
        let mut net = Net {
            swarm,
            call_codec: call_codec::CallCodec::new(cfg.limits.clone(), gate.clone()),
            gate,
            links: HashMap::new(),
            engine_peers: HashSet::new(),
            book: HashMap::new(),
            pending: VecDeque::new(),
            listening: Vec::new(),
            fed_key,
            bootstrapped: false,
            providing: false,
            call_out: HashMap::new(),
            call_answers: HashMap::new(),
            log_throttle: crate::logging::Throttle::per_second(),
            probe_budget: ProbeBudget::new(std::time::Instant::now()),
            probes_deferred: 0,
            addresses_refused: 0,
            nat: nat::NatState::default(),
            cfg,
        };
        for a in net.cfg.listen.clone() {
            if let Err(e) = net.swarm.listen_on(a.clone()) {
                return Err(BuildError::Behaviour(format!("cannot listen on {a}: {e}")));
            }
        }
        for a in net.cfg.external.clone() {
            net.swarm.add_external_address(a);
        }
        for a in net.cfg.bootstrap.clone() {
            if let Some((p, bare)) = net.add_configured_peer(&a) {
                if let Some(k) = net.swarm.behaviour_mut().kad.as_mut() {
                    k.add_address(&p, bare);
                }
                net.probe(p);
            }
        }
        net.add_configured_relays();
        Ok(net)
    }

    pub fn local_peer_id(&self) -> PeerId {
        *self.swarm.local_peer_id()
    }

    /// Addresses we listen on, each with our `/p2p/` suffix.
    pub fn listen_addrs(&self) -> Vec<Multiaddr> {
        let me = self.local_peer_id();
        self.listening
            .iter()
            .map(|a| a.clone().with(Protocol::P2p(me)))
            .collect()
    }

    pub fn external_addrs(&self) -> Vec<Multiaddr> {
        self.swarm.external_addresses().cloned().collect()
    }

    pub fn kad_enabled(&self) -> bool {
        self.swarm.behaviour().kad.is_enabled()
    }

    pub fn mdns_enabled(&self) -> bool {
        self.swarm.behaviour().mdns.is_enabled()
    }

    pub fn link_info(&self, node: &NodeId) -> Option<LinkInfo> {
        let peer = peer_id_of(node);
        let l = self.links.get(&peer)?;
        Some(LinkInfo {
            connections: l.live_conns().count(),
            path: self.path_of(&peer),
            reported: l.reported,
            closing: l.closing,
            queued: l.queued(),
            in_flight: l.inflight().is_some(),
            stats: l.stats.clone(),
        })
    }

    pub fn addresses_of(&self, peer: &PeerId) -> Vec<Multiaddr> {
        self.book.get(peer).cloned().unwrap_or_default()
    }

    pub fn is_connected(&self, peer: &PeerId) -> bool {
        self.swarm.is_connected(peer)
    }

    /// The next event. Cancel-safe: state only changes after a swarm event
    /// has been taken, and what it produces is queued.
    pub async fn next(&mut self) -> NetEvent {
        loop {
            if let Some(e) = self.pending.pop_front() {
                return e;
            }
            let ev = self.swarm.select_next_some().await;
            self.on_swarm_event(ev);
        }
    }

    /// No link has anything queued or in flight.
    pub fn all_quiet(&self) -> bool {
        self.links.values().all(|l| l.idle())
    }

    fn emit(&mut self, e: NetEvent) {
        if self.pending.len() >= MAX_PENDING {
            // Only discovery chatter can pile up this far; transport events
            // are few per peer. Dropping the oldest discovery news is safe:
            // it is re-learned at the next query.
            if let Some(i) = self.pending.iter().position(|e| {
                matches!(e, NetEvent::Discovered { .. } | NetEvent::Identified { .. })
            }) {
                self.pending.remove(i);
            } else {
                tracing::error!("network event queue full; dropping an event");
                return;
            }
        }
        self.pending.push_back(e);
    }

    /// Tells the net whether the engine has a session slot for `node`:
    /// only those peers' connections are reported as transports.
    pub fn set_engine_peer(&mut self, node: &NodeId, known: bool) {
        let peer = peer_id_of(node);
        if known {
            self.engine_peers.insert(peer);
        } else {
            self.engine_peers.remove(&peer);
        }
    }

    /// A session with `node` came up or went down: only peers with one may
    /// open call streams, or send routing frames larger than an OPEN.
    pub fn set_session(&mut self, node: &NodeId, up: bool) {
        self.gate.set_session(peer_id_of(node), up);
    }

    /// Take call streams from nodes without a session too (a client of a
    /// transparent route server; see [`gate::Gate::set_open_calls`]).
    pub fn set_open_calls(&mut self, open: bool) {
        self.gate.set_open_calls(open);
    }

    /// What the gate refused and holds (for the admin API).
    pub fn gate_stats(&self) -> gate::GateStats {
        self.gate.stats()
    }

    pub fn gate_config(&self) -> gate::GateConfig {
        self.gate.config()
    }

    fn on_swarm_event(&mut self, ev: SwarmEvent<BehaviourEvent>) {
        match ev {
            SwarmEvent::Behaviour(b) => self.on_behaviour_event(b),
            SwarmEvent::ConnectionEstablished {
                peer_id,
                connection_id,
                endpoint,
                ..
            } => self.on_connection_established(peer_id, connection_id, &endpoint),
            SwarmEvent::ConnectionClosed {
                peer_id,
                connection_id,
                cause,
                ..
            } => self.on_connection_closed(peer_id, connection_id, cause.map(|c| c.to_string())),
            SwarmEvent::OutgoingConnectionError {
                peer_id: Some(peer),
                error,
                ..
            } => self.on_dial_failure(peer, &error.to_string()),
            SwarmEvent::NewListenAddr {
                listener_id,
                address,
            } => {
                if self.on_relay_listen_addr(listener_id, &address) {
                    return;
                }
                tracing::info!(%address, "listening");
                // A loopback address means something to others only on
                // this machine: announced when the node listens on loopback
                // alone (a one-machine federation), not when an unspecified
                // address expanded to it. (A peer dialling it would reach
                // whatever listens there on its own machine, often its own
                // node on the same port, and that failed dial takes the
                // good addresses dialled alongside down with it.)
                if self.cfg.announce_listen
                    && (!book::is_loopback(&address) || self.loopback_only())
                {
                    self.swarm.add_external_address(address.clone());
                }
                if !self.listening.contains(&address) {
                    self.listening.push(address.clone());
                }
                self.emit(NetEvent::Listening(address));
            }
            SwarmEvent::ExpiredListenAddr { address, .. } => {
                self.listening.retain(|a| *a != address);
                self.swarm.remove_external_address(&address);
                if !nat::is_relayed(&address) {
                    self.forget_reachability();
                }
            }
            SwarmEvent::ListenerClosed {
                listener_id,
                addresses,
                reason,
            } => {
                let why = match reason {
                    Ok(()) => "closed".to_string(),
                    Err(e) => e.to_string(),
                };
                if self.on_relay_listener_closed(listener_id, &why) {
                    return;
                }
                for a in &addresses {
                    self.listening.retain(|l| l != a);
                }
                self.emit(NetEvent::ListenerDown(format!("{addresses:?}: {why}")));
            }
            SwarmEvent::ListenerError {
                listener_id, error, ..
            } => {
                if self.on_relay_listener_closed(listener_id, &error.to_string()) {
                    return;
                }
                self.emit(NetEvent::ListenerDown(error.to_string()));
            }
            _ => {}
        }
    }

    fn on_behaviour_event(&mut self, ev: BehaviourEvent) {
        match ev {
            BehaviourEvent::Route(e) => self.on_route_event(e),
            BehaviourEvent::Call(e) => self.on_call_event(e),
            BehaviourEvent::Identify(identify::Event::Received { peer_id, info, .. }) => {
                self.on_identified(peer_id, info)
            }
            BehaviourEvent::Mdns(mdns::Event::Discovered(list)) => {
                let mut seen = HashSet::new();
                for (peer, addr) in list {
                    self.remember(peer, addr);
                    seen.insert(peer);
                }
                for peer in seen {
                    if peer == self.local_peer_id() {
                        continue;
                    }
                    self.probe(peer);
                    self.emit(NetEvent::Discovered {
                        peer,
                        source: Source::Mdns,
                    });
                }
            }
            BehaviourEvent::Kad(kad::Event::OutboundQueryProgressed {
                result:
                    kad::QueryResult::GetProviders(Ok(kad::GetProvidersOk::FoundProviders {
                        providers,
                        ..
                    })),
                ..
            }) => {
                for peer in providers {
                    if peer == self.local_peer_id() {
                        continue;
                    }
                    // Dial while the query still holds the addresses the
                    // provider record carried.
                    self.probe(peer);
                    self.emit(NetEvent::Discovered {
                        peer,
                        source: Source::Kademlia,
                    });
                }
            }
            BehaviourEvent::Kad(kad::Event::RoutingUpdated {
                peer, addresses, ..
            }) => {
                for a in addresses.iter() {
                    self.remember(peer, a.clone());
                }
            }
            BehaviourEvent::Kad(kad::Event::OutboundQueryProgressed {
                result: kad::QueryResult::Bootstrap(Err(e)),
                ..
            }) => {
                tracing::debug!(error = ?e, "DHT bootstrap step failed");
            }
            BehaviourEvent::Autonat(e) => self.on_autonat(e),
            BehaviourEvent::Dcutr(e) => self.on_dcutr(e),
            BehaviourEvent::RelayClient(e) => self.on_relay_client(e),
            BehaviourEvent::Relay(e) => self.on_relay_server(e),
            BehaviourEvent::Upnp(e) => self.on_upnp(e),
            _ => {}
        }
    }
}
