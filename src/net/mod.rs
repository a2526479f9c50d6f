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
pub mod call;
pub mod codec;
pub mod discovery;
pub mod gate;
pub mod link;

use std::collections::{HashMap, HashSet, VecDeque};
use std::time::Duration;

use futures::StreamExt;
use libp2p::multiaddr::Protocol;
use libp2p::request_response::{self, ResponseChannel};
use libp2p::swarm::dial_opts::{DialOpts, PeerCondition};
use libp2p::swarm::{ConnectionId, SwarmEvent};
use libp2p::{Multiaddr, PeerId, Swarm, identify, identity::Keypair, kad, mdns};
use sha2::{Digest, Sha256};

use crate::core::call::{Answer, CallAnswer, CallMessage, LegId};
use crate::core::ids::NodeId;
use crate::core::message::{Message, Notification};
use crate::identity::{node_id_of, peer_id_of};
use crate::wire::Limits;

use behaviour::{
    Behaviour, BehaviourEvent, KAD_PROTOCOL, build_swarm, federation_of, is_bootstrap,
};
use call::{CallInbound, CallRequest, CallResponse};
use codec::{Inbound, ROUTE_PROTOCOL, RouteRequest, RouteResponse};
use discovery::Source;
use link::{Conn, Link, LinkStats};

pub use behaviour::BuildError;

/// Most addresses remembered per peer, and peers in the address book.
const MAX_ADDRS_PER_PEER: usize = 8;
const MAX_BOOK_PEERS: usize = 4096;
/// Events produced by one swarm event or call, waiting for [`Net::next`].
const MAX_PENDING: usize = 4096;
/// Dials to discovered peers (mDNS, Kademlia, bootstrap): at most this
/// many a second, in bursts of `PROBE_BURST`; the rest wait for the next
/// query, which reports them again.
const PROBE_RATE: f64 = 8.0;
const PROBE_BURST: f64 = 32.0;

/// A token bucket for probe dials: [`PROBE_RATE`] a second, bursts of
/// [`PROBE_BURST`].
#[derive(Debug, Clone, Copy)]
struct ProbeBudget {
    tokens: f64,
    at: std::time::Instant,
}

impl ProbeBudget {
    fn new(now: std::time::Instant) -> Self {
        ProbeBudget {
            tokens: PROBE_BURST,
            at: now,
        }
    }

    fn allow(&mut self, now: std::time::Instant) -> bool {
        let dt = now.saturating_duration_since(self.at).as_secs_f64();
        self.tokens = (self.tokens + dt * PROBE_RATE).min(PROBE_BURST);
        self.at = now;
        if self.tokens < 1.0 {
            return false;
        }
        self.tokens -= 1.0;
        true
    }
}

/// Whether an address someone told us about is worth dialling: an IP or
/// DNS host, a real port, TCP or QUIC, nothing unspecified, multicast or
/// broadcast. (Private and loopback addresses stay: federations run on
/// LANs and on one machine.)
pub fn dialable(a: &Multiaddr) -> bool {
    let mut host = false;
    let mut transport = false;
    for p in a.iter() {
        match p {
            Protocol::Ip4(ip) => {
                if ip.is_unspecified() || ip.is_multicast() || ip.is_broadcast() {
                    return false;
                }
                host = true;
            }
            Protocol::Ip6(ip) => {
                if ip.is_unspecified() || ip.is_multicast() {
                    return false;
                }
                host = true;
            }
            Protocol::Dns(_) | Protocol::Dns4(_) | Protocol::Dns6(_) => host = true,
            Protocol::Tcp(port) | Protocol::Udp(port) => {
                if port == 0 {
                    return false;
                }
                transport = true;
            }
            Protocol::QuicV1 | Protocol::P2p(_) => {}
            _ => return false,
        }
    }
    host && transport
}

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
        kind: &'static str,
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
}

impl Reply {
    pub fn peer(&self) -> PeerId {
        self.peer
    }
}

/// A link as the admin API shows it.
#[derive(Debug, Clone, serde::Serialize)]
pub struct LinkInfo {
    pub connections: usize,
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
    call_codec: call::CallCodec,
    /// Call-protocol requests in flight: what each was.
    call_out: HashMap<request_response::OutboundRequestId, (NodeId, LegId, &'static str)>,
    /// CALLs received and not answered yet.
    call_answers: HashMap<(NodeId, LegId), ResponseChannel<CallResponse>>,
    /// Warnings caused by peers, at most one a second.
    log_throttle: crate::logging::Throttle,
    /// Dials to discovered peers, at most [`PROBE_RATE`] a second.
    probe_budget: ProbeBudget,
    /// Probe dials not made for want of budget, and addresses refused.
    pub probes_deferred: u64,
    pub addresses_refused: u64,
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
            call_codec: call::CallCodec::new(cfg.limits.clone(), gate.clone()),
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
            if let Some(p) = crate::identity::peer_of_addr(&a) {
                let bare: Multiaddr = a
                    .iter()
                    .filter(|p| !matches!(p, Protocol::P2p(_)))
                    .collect();
                net.remember(p, bare.clone());
                if let Some(k) = net.swarm.behaviour_mut().kad.as_mut() {
                    k.add_address(&p, bare);
                }
                net.probe(p);
            }
        }
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

    /// What the gate refused and holds (for the admin API).
    pub fn gate_stats(&self) -> gate::GateStats {
        self.gate.stats()
    }

    pub fn gate_config(&self) -> gate::GateConfig {
        self.gate.config()
    }

    /// Adds known addresses for a peer (configured neighbours).
    pub fn add_addresses(&mut self, peer: PeerId, addrs: impl IntoIterator<Item = Multiaddr>) {
        for a in addrs {
            self.remember(peer, a);
        }
    }

    fn remember(&mut self, peer: PeerId, addr: Multiaddr) {
        let addr: Multiaddr = addr
            .iter()
            .filter(|p| !matches!(p, Protocol::P2p(_)))
            .collect();
        if addr.is_empty() {
            return;
        }
        if !dialable(&addr) {
            self.addresses_refused += 1;
            return;
        }
        if self.book.len() >= MAX_BOOK_PEERS && !self.book.contains_key(&peer) {
            // Forget someone we have no link with.
            if let Some(victim) = self
                .book
                .keys()
                .find(|p| !self.links.contains_key(p) && !self.engine_peers.contains(p))
                .copied()
            {
                self.book.remove(&victim);
            } else {
                return;
            }
        }
        let v = self.book.entry(peer).or_default();
        if !v.contains(&addr) {
            if v.len() >= MAX_ADDRS_PER_PEER {
                v.remove(0);
            }
            v.push(addr);
        }
    }

    // ----- engine actions -----

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
                tracing::warn!(%peer, kind, error = %e, "call message does not encode");
                return fail(self, format!("does not encode: {e}"));
            }
        };
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

    /// Dials a discovered peer so identify can tell what it is, within the
    /// probe budget ([`PROBE_RATE`] a second).
    pub fn probe(&mut self, peer: PeerId) {
        if peer == self.local_peer_id() || self.swarm.is_connected(&peer) {
            return;
        }
        if !self.probe_budget.allow(std::time::Instant::now()) {
            self.probes_deferred += 1;
            return;
        }
        let opts = DialOpts::peer_id(peer)
            .addresses(self.addresses_of(&peer))
            .extend_addresses_through_behaviour()
            .condition(PeerCondition::DisconnectedAndNotDialing)
            .build();
        if let Err(e) = self.swarm.dial(opts) {
            tracing::trace!(%peer, error = %e, "probe dial not started");
        }
    }

    /// Periodic discovery work: announce membership and look for members.
    pub fn discovery_tick(&mut self) {
        let provide = self.cfg.provide;
        let key = self.fed_key.clone();
        let Some(k) = self.swarm.behaviour_mut().kad.as_mut() else {
            return;
        };
        if !self.bootstrapped {
            // Fails only without any known peer; retried next tick.
            self.bootstrapped = k.bootstrap().is_ok();
        }
        // Once: Kademlia re-publishes the record every query interval
        // (`set_provider_publication_interval`).
        if provide && !self.providing {
            match k.start_providing(key.clone()) {
                Ok(_) => self.providing = true,
                Err(e) => tracing::warn!(error = %e, "cannot announce federation membership"),
            }
        }
        k.get_providers(key);
    }

    // ----- internals -----

    /// Sends the next queued frame if nothing is in flight.
    fn pump(&mut self, peer: PeerId) {
        let limits = self.cfg.send_limits.clone();
        loop {
            let Some(link) = self.links.get_mut(&peer) else {
                return;
            };
            match link.next_frame(&limits) {
                Ok(Some((bytes, info))) => {
                    let id = self
                        .swarm
                        .behaviour_mut()
                        .route
                        .send_request(&peer, RouteRequest::Encoded(bytes));
                    if let Some(link) = self.links.get_mut(&peer) {
                        link.set_inflight(id, info);
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

    /// Closes a link whose queue is drained after the engine asked to.
    fn maybe_close(&mut self, peer: PeerId) {
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
    fn finish_closing(&mut self, peer: PeerId) {
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
    fn fail_link(&mut self, peer: PeerId, reason: &str) {
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
    fn report_if_known(&mut self, peer: PeerId) {
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
    fn gc_link(&mut self, peer: PeerId) {
        let remove = self.links.get(&peer).is_some_and(|l| {
            l.conns.is_empty() && !l.reported && !l.closing && !l.engine_dialing && !l.redial
        }) && !self.engine_peers.contains(&peer);
        if remove {
            self.links.remove(&peer);
        }
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
            SwarmEvent::NewListenAddr { address, .. } => {
                tracing::info!(%address, "listening");
                if self.cfg.announce_listen {
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
            }
            SwarmEvent::ListenerClosed {
                addresses, reason, ..
            } => {
                for a in &addresses {
                    self.listening.retain(|l| l != a);
                }
                let why = match reason {
                    Ok(()) => "closed".to_string(),
                    Err(e) => e.to_string(),
                };
                self.emit(NetEvent::ListenerDown(format!("{addresses:?}: {why}")));
            }
            SwarmEvent::ListenerError { error, .. } => {
                self.emit(NetEvent::ListenerDown(error.to_string()));
            }
            _ => {}
        }
    }

    fn on_connection_established(
        &mut self,
        peer: PeerId,
        id: ConnectionId,
        endpoint: &libp2p::core::ConnectedPoint,
    ) {
        if endpoint.is_dialer() {
            self.remember(peer, endpoint.get_remote_address().clone());
        }
        let link = self.links.entry(peer).or_default();
        link.conns.push(Conn {
            id,
            dialer: endpoint.is_dialer(),
            doomed: false,
        });
        tracing::debug!(%peer, dialer = endpoint.is_dialer(), "connection established");
        self.report_if_known(peer);
    }

    fn on_connection_closed(&mut self, peer: PeerId, id: ConnectionId, cause: Option<String>) {
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

    fn on_dial_failure(&mut self, peer: PeerId, error: &str) {
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
            _ => {}
        }
    }

    fn on_identified(&mut self, peer: PeerId, info: identify::Info) {
        for a in &info.listen_addrs {
            self.remember(peer, a.clone());
        }
        let speaks_kad = info.protocols.contains(&KAD_PROTOCOL);
        if speaks_kad && let Some(k) = self.swarm.behaviour_mut().kad.as_mut() {
            for a in &info.listen_addrs {
                k.add_address(&peer, a.clone());
            }
        }
        let speaks_route = info.protocols.contains(&ROUTE_PROTOCOL);
        // Bootstrap nodes serve the DHT; they are peered only when configured.
        let member = speaks_route
            && federation_of(&info.agent_version) == Some(self.cfg.federation.as_str())
            && !is_bootstrap(&info.agent_version);
        self.emit(NetEvent::Identified {
            peer,
            member,
            agent_version: info.agent_version,
        });
    }

    fn on_call_event(&mut self, ev: request_response::Event<CallRequest, CallResponse>) {
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
                    ("CALL", CallResponse::Answer(a)) if a.leg == leg => {
                        self.emit(NetEvent::CallAnswered {
                            peer: node,
                            answer: a,
                        });
                    }
                    ("CALL", other) => {
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
                        tracing::debug!(%peer, kind, ?other, "unexpected call response");
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
                tracing::debug!(%peer, kind, %leg, %error, "call request failed");
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

    fn on_route_event(&mut self, ev: request_response::Event<RouteRequest, RouteResponse>) {
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
                let reply = Reply { peer, channel };
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
            }
            Event::OutboundFailure {
                peer,
                request_id,
                error,
                ..
            } => {
                let ours = self
                    .links
                    .get(&peer)
                    .is_some_and(|l| l.inflight() == Some(request_id));
                if ours {
                    tracing::info!(%peer, %error, "routing request failed; resetting the transport");
                    self.fail_link(peer, &format!("request failed: {error}"));
                }
            }
            Event::InboundFailure { peer, error, .. } => {
                tracing::debug!(%peer, %error, "inbound routing request failed");
            }
            Event::ResponseSent { .. } => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn discovery_dials_are_rate_limited() {
        let t0 = std::time::Instant::now();
        let mut b = ProbeBudget::new(t0);
        let burst = (0..100).filter(|_| b.allow(t0)).count();
        assert_eq!(burst, PROBE_BURST as usize);
        // A second later, PROBE_RATE more.
        let t1 = t0 + std::time::Duration::from_secs(1);
        let more = (0..100).filter(|_| b.allow(t1)).count();
        assert_eq!(more, PROBE_RATE as usize);
    }

    #[test]
    fn only_real_dialable_addresses_are_remembered() {
        for ok in [
            "/ip4/192.168.1.20/tcp/4100",
            "/ip4/127.0.0.1/udp/4100/quic-v1",
            "/ip6/::1/tcp/4100",
            "/dns4/node.example/tcp/4100",
        ] {
            assert!(dialable(&ok.parse().unwrap()), "{ok}");
        }
        for bad in [
            "/ip4/0.0.0.0/tcp/4100",
            "/ip4/224.0.0.251/udp/5353/quic-v1",
            "/ip4/255.255.255.255/tcp/1",
            "/ip4/10.0.0.1/tcp/0",
            "/ip6/::/tcp/4100",
            "/ip4/10.0.0.1",
            "/ip4/10.0.0.1/tcp/4100/ws",
            "/unix/tmp%2Fsock",
        ] {
            assert!(!dialable(&bad.parse().unwrap()), "{bad}");
        }
    }
}
