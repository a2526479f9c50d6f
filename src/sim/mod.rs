//! A deterministic in-memory network of engines on a virtual clock.
//!
//! Drives real [`Engine`]s with real messages over virtual links, so tests
//! and the simulator (`abgp sim`, [`experiment`]) can wire up topologies in
//! one process and run them fast. No threads, no sockets, no wall clock:
//! the same inputs and seed always give the same run.
//!
//! Transports follow the contract the libp2p adapter also follows: each
//! (node, peer) pair has at most one *current* transport; `Send` and
//! `Disconnect` act on it; a transport reported by `Connected` becomes
//! current unless the engine answers it with `Refuse` in the same batch.
//!
//! Links follow a [`LinkModel`] (latency, jitter, loss, bandwidth; FIFO per
//! direction). With [`SimNet::with_frames`] every message crosses as the
//! real encoded CBOR frames (an UPDATE cut into as many as the wire needs)
//! and is decoded on arrival. Messages that reach a node while it is busy
//! wait and are handled together, as one burst, when it is free: the
//! node's cost per message and per signature check is [`Processing`].

use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap, HashMap, HashSet, VecDeque};

use rand::SeedableRng;
use rand::rngs::StdRng;

use crate::core::engine::{Action, Engine, Event, PeerConfig};
use crate::core::ids::{Asn, Millis, NodeId};
use crate::core::message::{Capabilities, Message, Open, PROTOCOL_VERSION};
use crate::wire::{self, Frame, Limits};

pub mod converge;
pub mod expected;
pub mod experiment;
mod link;
pub mod scenario;
pub mod topology;
pub mod tour;
pub mod watch;

use link::Direction;
pub use link::LinkModel;
use watch::Watch;

type ConnId = u64;

#[derive(Debug, Clone, Copy)]
struct Conn {
    dialer: NodeId,
    acceptor: NodeId,
    open: bool,
}

/// What a message travels as.
#[derive(Debug)]
enum Payload {
    Msg(Message),
    /// One encoded frame.
    Frame(Vec<u8>),
}

#[derive(Debug)]
enum Pending {
    /// Deliver an engine event to a node.
    Event(NodeId, Event),
    /// A message travelling on a connection.
    Deliver {
        conn: ConnId,
        from: NodeId,
        to: NodeId,
        payload: Payload,
    },
    /// Handle what waits in a node's inbox.
    Process(NodeId),
    /// Close a connection (after everything sent before it arrived).
    Close(ConnId),
    /// Run due timers on a node.
    Tick(NodeId),
}

/// What handling messages costs a node, in virtual time: while it works
/// on a burst, what arrives waits and forms the next burst.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Processing {
    /// Per message handled (microseconds).
    pub per_message_us: u64,
    /// Per signature checked (microseconds): an announced route carries
    /// the origin's attestation and one signature per AS on its path; a
    /// tombstone its origin's signature.
    pub per_signature_us: u64,
}

impl Processing {
    fn cost_us(&self, messages: &[Message]) -> u64 {
        if *self == Processing::default() {
            return 0;
        }
        let sigs: u64 = messages
            .iter()
            .map(|m| match m {
                Message::Update(u) => {
                    u.announce
                        .iter()
                        .map(|r| 1 + r.attrs.as_path.len() as u64)
                        .sum::<u64>()
                        + u.tombstones.len() as u64
                }
                _ => 0,
            })
            .sum();
        self.per_message_us * messages.len() as u64 + self.per_signature_us * sigs
    }
}

/// Brings a session up on `engine` without a network: adds `node` as a
/// passive peer in `asn` and feeds the transport and the peer's side of the
/// handshake (OPEN with `hold_time` seconds, then KEEPALIVE). For
/// benchmarks and tests that drive one engine directly.
pub fn bring_up_passive(engine: &mut Engine, now: Millis, node: NodeId, asn: Asn, hold_time: u16) {
    let mut pc = PeerConfig::new(node).with_asn(asn).with_passive(true);
    pc.auto_start = true;
    engine.handle(now, Event::AddPeer(pc));
    engine.handle(
        now,
        Event::Connected {
            peer: node,
            outbound: false,
        },
    );
    let open = Open {
        version: PROTOCOL_VERSION,
        asn,
        node,
        hold_time,
        capabilities: Capabilities::default(),
        federation: engine.config().federation.clone(),
        cert: None,
    };
    for msg in [Message::Open(open), Message::Keepalive] {
        engine.handle(now, Event::Message { peer: node, msg });
    }
}

/// Counts of what crossed the virtual wire, per message kind, and the
/// encoded bytes and frames (with [`SimNet::with_frames`]).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WireStats {
    pub messages: BTreeMap<&'static str, u64>,
    pub bytes: u64,
    pub frames: u64,
}

/// The simulated network.
pub struct SimNet {
    now: Millis,
    model: LinkModel,
    rng: StdRng,
    dirs: HashMap<(ConnId, NodeId), Direction>,
    frames: Option<Limits>,
    processing: Processing,
    busy_until_us: HashMap<NodeId, u64>,
    inbox: HashMap<NodeId, Vec<(ConnId, NodeId, Payload)>>,
    process_at: HashSet<NodeId>,
    watch: Option<Watch>,
    seq: u64,
    queue: BinaryHeap<Reverse<(Millis, u64)>>,
    items: HashMap<u64, Pending>,
    nodes: BTreeMap<NodeId, Engine>,
    links: HashSet<(NodeId, NodeId)>,
    conns: HashMap<ConnId, Conn>,
    current: HashMap<(NodeId, NodeId), ConnId>,
    /// Connections whose `Connected` event is on its way to the owner.
    pending_conn: HashMap<(NodeId, NodeId), VecDeque<ConnId>>,
    next_conn: ConnId,
    scheduled_tick: HashMap<NodeId, Millis>,
    /// Every action each node produced, in order (for assertions).
    pub log: Vec<(Millis, NodeId, Action)>,
    pub wire: WireStats,
    keep_log: bool,
}

impl SimNet {
    /// A network starting at `start`, with one-way link latency `latency_ms`.
    pub fn new(start: Millis, latency_ms: u64) -> Self {
        SimNet {
            now: start,
            model: LinkModel::fixed(latency_ms),
            rng: StdRng::seed_from_u64(0),
            dirs: HashMap::new(),
            frames: None,
            processing: Processing::default(),
            busy_until_us: HashMap::new(),
            inbox: HashMap::new(),
            process_at: HashSet::new(),
            watch: None,
            seq: 0,
            queue: BinaryHeap::new(),
            items: HashMap::new(),
            nodes: BTreeMap::new(),
            links: HashSet::new(),
            conns: HashMap::new(),
            current: HashMap::new(),
            pending_conn: HashMap::new(),
            next_conn: 1,
            scheduled_tick: HashMap::new(),
            log: Vec::new(),
            wire: WireStats::default(),
            keep_log: true,
        }
    }

    /// Stop recording actions (large runs).
    pub fn without_log(mut self) -> Self {
        self.keep_log = false;
        self
    }

    /// Links like `model`; jitter and loss drawn from `seed`.
    pub fn with_links(mut self, model: LinkModel, seed: u64) -> Self {
        self.model = model;
        self.rng = StdRng::seed_from_u64(seed);
        self
    }

    /// Send every message as its encoded frames, within `limits`.
    pub fn with_frames(mut self, limits: Limits) -> Self {
        self.frames = Some(limits);
        self
    }

    /// Charge handling to virtual time.
    pub fn with_processing(mut self, p: Processing) -> Self {
        self.processing = p;
        self
    }

    pub fn now(&self) -> Millis {
        self.now
    }

    /// Whether anything is still to happen (messages, timers, closes).
    pub fn is_idle(&self) -> bool {
        self.queue.is_empty()
    }

    /// When the next thing is due, if anything is.
    pub fn next_due(&self) -> Option<Millis> {
        self.queue.peek().map(|Reverse((at, _))| *at)
    }

    /// The nodes, in id order.
    pub fn nodes(&self) -> impl Iterator<Item = (&NodeId, &Engine)> {
        self.nodes.iter()
    }

    /// Starts measuring one prefix (replacing any watch before).
    pub fn watch(&mut self, w: Watch) {
        self.watch = Some(w);
    }

    /// Stops measuring and returns the watch.
    pub fn take_watch(&mut self) -> Option<Watch> {
        self.watch.take()
    }

    /// The AS of every node (one AS per node in topology runs).
    pub fn by_asn(&self) -> HashMap<Asn, NodeId> {
        self.nodes
            .iter()
            .map(|(id, e)| (e.config().asn, *id))
            .collect()
    }

    pub fn add_node(&mut self, engine: Engine) -> NodeId {
        let id = engine.config().node;
        self.nodes.insert(id, engine);
        id
    }

    pub fn engine(&self, node: &NodeId) -> Option<&Engine> {
        self.nodes.get(node)
    }

    pub fn engine_mut(&mut self, node: &NodeId) -> Option<&mut Engine> {
        self.nodes.get_mut(node)
    }

    /// Lets `a` and `b` reach each other.
    pub fn link(&mut self, a: NodeId, b: NodeId) {
        self.links.insert((a, b));
        self.links.insert((b, a));
    }

    /// Cuts the link and every open connection between `a` and `b`.
    pub fn unlink(&mut self, a: NodeId, b: NodeId) {
        self.links.remove(&(a, b));
        self.links.remove(&(b, a));
        let mut ids: Vec<ConnId> = self
            .conns
            .iter()
            .filter(|(_, c)| {
                c.open && ((c.dialer == a && c.acceptor == b) || (c.dialer == b && c.acceptor == a))
            })
            .map(|(id, _)| *id)
            .collect();
        // In a fixed order: the same run every time.
        ids.sort_unstable();
        for id in ids {
            self.close_now(id);
        }
    }

    /// Removes a node as if its process died: its connections drop.
    pub fn kill(&mut self, node: NodeId) -> Option<Engine> {
        let mut ids: Vec<ConnId> = self
            .conns
            .iter()
            .filter(|(_, c)| c.open && (c.dialer == node || c.acceptor == node))
            .map(|(id, _)| *id)
            .collect();
        // In a fixed order: the same run every time.
        ids.sort_unstable();
        for id in ids {
            self.close_now(id);
        }
        self.scheduled_tick.remove(&node);
        self.nodes.remove(&node)
    }

    /// Queues an event for a node, delivered now.
    pub fn inject(&mut self, node: NodeId, event: Event) {
        let t = self.now;
        self.push(t, Pending::Event(node, event));
    }

    fn push(&mut self, at: Millis, p: Pending) {
        self.seq += 1;
        self.items.insert(self.seq, p);
        self.queue.push(Reverse((at, self.seq)));
    }

    /// Runs until virtual time `until` (inclusive).
    pub fn run_until(&mut self, until: Millis) {
        while let Some(Reverse((at, seq))) = self.queue.peek().copied() {
            if at > until {
                break;
            }
            self.queue.pop();
            self.now = self.now.max(at);
            if let Some(p) = self.items.remove(&seq) {
                self.step(p);
            }
        }
        self.now = self.now.max(until);
    }

    /// Runs for `ms` more milliseconds of virtual time.
    pub fn run_for(&mut self, ms: u64) {
        let until = self.now.saturating_add_ms(ms);
        self.run_until(until);
    }

    fn step(&mut self, p: Pending) {
        match p {
            Pending::Event(node, ev) => self.deliver(node, ev),
            Pending::Deliver {
                conn,
                from,
                to,
                payload,
            } => {
                self.inbox
                    .entry(to)
                    .or_default()
                    .push((conn, from, payload));
                if self.process_at.insert(to) {
                    let free = self.busy_until_us.get(&to).copied().unwrap_or(0);
                    let at = self.now.max(Millis(free.div_ceil(1_000)));
                    self.push(at, Pending::Process(to));
                }
            }
            Pending::Process(node) => self.process(node),
            Pending::Close(conn) => {
                // What came before the close is handled before it, even by
                // a node still busy with an earlier burst.
                if let Some(c) = self.conns.get(&conn).copied() {
                    for end in [c.dialer, c.acceptor] {
                        let waiting = self
                            .inbox
                            .get(&end)
                            .is_some_and(|q| q.iter().any(|(id, _, _)| *id == conn));
                        if waiting {
                            self.process(end);
                        }
                    }
                }
                self.close_now(conn)
            }
            Pending::Tick(node) => {
                let due = self.scheduled_tick.get(&node).copied();
                if due.is_some_and(|d| d <= self.now) {
                    self.scheduled_tick.remove(&node);
                    self.deliver(node, Event::Tick);
                }
            }
        }
    }

    /// Handles everything in `node`'s inbox that came on a transport still
    /// current and open, as one burst.
    fn process(&mut self, node: NodeId) {
        self.process_at.remove(&node);
        let waiting = self.inbox.remove(&node).unwrap_or_default();
        let mut msgs = Vec::with_capacity(waiting.len());
        let mut froms = Vec::with_capacity(waiting.len());
        for (conn, from, payload) in waiting {
            let is_current = self.current.get(&(node, from)) == Some(&conn);
            let open = self.conns.get(&conn).is_some_and(|c| c.open);
            if !(is_current && open) {
                continue;
            }
            let msg = match payload {
                Payload::Msg(m) => m,
                Payload::Frame(bytes) => {
                    let Some(limits) = self.frames.as_ref() else {
                        debug_assert!(false, "a frame on a network without frames");
                        continue;
                    };
                    match wire::decode(&bytes, limits) {
                        Ok(Frame::Routing(m)) => m,
                        other => {
                            debug_assert!(false, "a frame we encoded does not decode: {other:?}");
                            continue;
                        }
                    }
                }
            };
            msgs.push(msg);
            froms.push(from);
        }
        if msgs.is_empty() {
            return;
        }
        let cost = self.processing.cost_us(&msgs);
        if cost > 0 {
            let start = self.now.0.saturating_mul(1_000);
            self.busy_until_us.insert(node, start.saturating_add(cost));
        }
        let events: Vec<Event> = froms
            .into_iter()
            .zip(msgs)
            .map(|(peer, msg)| Event::Message { peer, msg })
            .collect();
        self.deliver_all(node, None, events);
    }

    fn deliver(&mut self, node: NodeId, ev: Event) {
        let just_connected = match &ev {
            Event::Connected { peer, .. } => Some(*peer),
            _ => None,
        };
        self.deliver_all(node, just_connected, vec![ev]);
    }

    fn deliver_all(&mut self, node: NodeId, just_connected: Option<NodeId>, events: Vec<Event>) {
        let now = self.now;
        let Some(engine) = self.nodes.get_mut(&node) else {
            return;
        };
        let actions = engine.handle_all(now, events);
        let deadline = engine.next_deadline();
        self.after_handle(node, just_connected, actions);
        if let Some(d) = deadline {
            let d = d.max(now);
            let earlier = self.scheduled_tick.get(&node).is_none_or(|t| d < *t);
            if earlier {
                self.scheduled_tick.insert(node, d);
                self.push(d, Pending::Tick(node));
            }
        }
    }

    fn after_handle(&mut self, node: NodeId, just_connected: Option<NodeId>, actions: Vec<Action>) {
        // The transport just reported becomes current when the slot is free:
        // at once if there is no current one, else right after the
        // Disconnect that closes the old one; never if it is refused.
        let mut new_conn: Option<(NodeId, ConnId)> = None;
        if let Some(peer) = just_connected
            && let Some(c) = self
                .pending_conn
                .get_mut(&(node, peer))
                .and_then(|q| q.pop_front())
        {
            let open = self.conns.get(&c).is_some_and(|c| c.open);
            if open {
                new_conn = Some((peer, c));
            }
        }
        if let Some((peer, c)) = new_conn
            && let std::collections::hash_map::Entry::Vacant(e) = self.current.entry((node, peer))
        {
            let refused = actions
                .iter()
                .any(|a| matches!(a, Action::Refuse(p, _) if *p == peer));
            if !refused {
                e.insert(c);
                new_conn = None;
            }
        }
        for a in actions {
            if let Some(w) = self.watch.as_mut() {
                w.on_action(self.now, node, &a);
            }
            if self.keep_log {
                self.log.push((self.now, node, a.clone()));
            }
            match a {
                Action::Dial(peer) => self.dial(node, peer),
                Action::Send(peer, msg) => {
                    if let Some(&c) = self.current.get(&(node, peer)) {
                        self.send_on(c, node, peer, msg);
                    }
                }
                Action::Disconnect(peer) => {
                    if let Some(c) = self.current.remove(&(node, peer)) {
                        self.close_later(c);
                    }
                    if let Some((p, c)) = new_conn
                        && p == peer
                    {
                        self.current.insert((node, peer), c);
                        new_conn = None;
                    }
                }
                Action::Refuse(peer, n) => {
                    if let Some((p, c)) = new_conn
                        && p == peer
                    {
                        self.send_on(c, node, peer, Message::Notification(n));
                        self.close_later(c);
                        new_conn = None;
                    }
                }
                _ => {}
            }
        }
        if let Some((peer, c)) = new_conn {
            // Neither adopted nor refused: the engine broke the contract;
            // close the newcomer rather than leak it.
            debug_assert!(false, "transport to {peer:?} neither adopted nor refused");
            self.close_later(c);
        }
    }

    fn send_on(&mut self, conn: ConnId, from: NodeId, to: NodeId, msg: Message) {
        *self.wire.messages.entry(msg.kind()).or_default() += 1;
        let frames = match &self.frames {
            None => None,
            Some(limits) => {
                // As the node's link does: a route that does not encode goes
                // as a withdrawal; a message that does not encode at all is
                // dropped (and logged). Either is the engine's bug.
                let encoded = match &msg {
                    Message::Update(u) => wire::encode_update_frames(u, limits).or_else(|_| {
                        let sent = wire::encode_update_frames_or_withdraw(u.clone(), limits)?;
                        debug_assert!(false, "routes do not encode: {:?}", sent.withdrawn);
                        Ok(sent.frames)
                    }),
                    m => wire::encode_message(m, limits).map(|b| vec![b]),
                };
                match encoded {
                    Ok(f) => Some(f),
                    Err(e) => {
                        debug_assert!(false, "{} does not encode: {e}", msg.kind());
                        return;
                    }
                }
            }
        };
        if let Some(w) = self.watch.as_mut() {
            let bytes = frames.iter().flatten().map(Vec::len).sum();
            w.on_send(&msg, bytes);
        }
        let payloads: Vec<(Payload, usize)> = match frames {
            None => vec![(Payload::Msg(msg), 0)],
            Some(f) => f
                .into_iter()
                .map(|b| {
                    let n = b.len();
                    (Payload::Frame(b), n)
                })
                .collect(),
        };
        for (payload, bytes) in payloads {
            self.wire.bytes += bytes as u64;
            self.wire.frames += 1;
            let now = self.now;
            let at = self.dirs.entry((conn, from)).or_default().send(
                &self.model,
                &mut self.rng,
                now,
                bytes,
            );
            self.push(
                at,
                Pending::Deliver {
                    conn,
                    from,
                    to,
                    payload,
                },
            );
        }
    }

    fn dial(&mut self, from: NodeId, to: NodeId) {
        let reachable = self.links.contains(&(from, to)) && self.nodes.contains_key(&to);
        let at = self.now.saturating_add_ms(self.model.latency_ms);
        if !reachable {
            self.push(at, Pending::Event(from, Event::ConnectFailed { peer: to }));
            return;
        }
        let id = self.next_conn;
        self.next_conn += 1;
        self.conns.insert(
            id,
            Conn {
                dialer: from,
                acceptor: to,
                open: true,
            },
        );
        self.pending_conn
            .entry((to, from))
            .or_default()
            .push_back(id);
        self.pending_conn
            .entry((from, to))
            .or_default()
            .push_back(id);
        self.push(
            at,
            Pending::Event(
                to,
                Event::Connected {
                    peer: from,
                    outbound: false,
                },
            ),
        );
        self.push(
            at,
            Pending::Event(
                from,
                Event::Connected {
                    peer: to,
                    outbound: true,
                },
            ),
        );
    }

    fn close_later(&mut self, conn: ConnId) {
        // After what was sent before it.
        let last = [true, false]
            .into_iter()
            .filter_map(|dialer| {
                let c = self.conns.get(&conn)?;
                let from = if dialer { c.dialer } else { c.acceptor };
                self.dirs.get(&(conn, from)).map(|d| d.last_arrival())
            })
            .max()
            .unwrap_or(Millis(0));
        let at = self.now.saturating_add_ms(self.model.latency_ms).max(last);
        self.push(at, Pending::Close(conn));
    }

    fn close_now(&mut self, conn: ConnId) {
        let Some(c) = self.conns.get_mut(&conn) else {
            return;
        };
        if !c.open {
            return;
        }
        c.open = false;
        let c = *c;
        self.dirs.remove(&(conn, c.dialer));
        self.dirs.remove(&(conn, c.acceptor));
        for (me, other) in [(c.dialer, c.acceptor), (c.acceptor, c.dialer)] {
            let reported_later = self
                .pending_conn
                .get(&(me, other))
                .is_some_and(|q| q.contains(&conn));
            if reported_later {
                // Its `Connected` is still on the way; the close follows it.
                let t = self.now;
                self.push(t, Pending::Event(me, Event::Disconnected { peer: other }));
            } else if self.current.get(&(me, other)) == Some(&conn) {
                self.current.remove(&(me, other));
                let t = self.now;
                self.push(t, Pending::Event(me, Event::Disconnected { peer: other }));
            }
        }
    }
}

#[cfg(test)]
mod processing_tests {
    use std::sync::Arc;

    use super::*;
    use crate::core::message::Update;
    use crate::core::prefix::Prefix;
    use crate::core::proof::{AsnCert, Tombstone};

    fn tombstone(p: &str) -> Arc<Tombstone> {
        Arc::new(Tombstone::unsigned(
            Prefix::new(p).expect("a prefix"),
            Arc::new(AsnCert::unsigned(Asn(65001), NodeId::from_u64(1))),
            Millis(1),
            Millis(2),
            Millis(3),
        ))
    }

    /// `--signatures` charges what a node verifies: the origin attestation
    /// and path signatures of each announced route, and each tombstone.
    #[test]
    fn signature_cost_counts_tombstones_and_path_signatures() {
        let p = Processing {
            per_message_us: 10,
            per_signature_us: 100,
        };
        let attrs = Arc::new(crate::core::attrs::PathAttrs {
            as_path: vec![Asn(1), Asn(2)],
            ..Default::default()
        });
        let u = Update {
            announce: vec![crate::core::route::Route::new(
                Prefix::new("a/b").expect("a prefix"),
                attrs,
            )],
            tombstones: vec![tombstone("c/d"), tombstone("e/f")],
            ..Default::default()
        };
        // 2 messages x 10 + (1 + 2 path signatures + 2 tombstones) x 100.
        assert_eq!(
            p.cost_us(&[Message::Update(u), Message::Keepalive]),
            20 + 500
        );
        assert_eq!(Processing::default().cost_us(&[Message::Keepalive]), 0);
    }
}
