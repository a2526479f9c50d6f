//! A deterministic in-memory network of engines on a virtual clock.
//!
//! Drives real [`Engine`]s with real messages over virtual links, so tests
//! (and later the large-scale simulator) can wire up topologies in one
//! process and run them in microseconds. No threads, no sockets, no wall
//! clock: the same inputs always give the same run.
//!
//! Transports follow the contract the libp2p adapter also follows: each
//! (node, peer) pair has at most one *current* transport; `Send` and
//! `Disconnect` act on it; a transport reported by `Connected` becomes
//! current unless the engine answers it with `Refuse` in the same batch.

use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap, HashMap, HashSet, VecDeque};

use crate::core::engine::{Action, Engine, Event, PeerConfig};
use crate::core::ids::{Asn, Millis, NodeId};
use crate::core::message::{Capabilities, Message, Open, PROTOCOL_VERSION};

pub mod converge;
pub mod scenario;
pub mod topology;
pub mod tour;

type ConnId = u64;

#[derive(Debug, Clone, Copy)]
struct Conn {
    dialer: NodeId,
    acceptor: NodeId,
    open: bool,
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
        msg: Message,
    },
    /// Close a connection (after everything sent before it arrived).
    Close(ConnId),
    /// Run due timers on a node.
    Tick(NodeId),
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

/// Counts of what crossed the virtual wire, per message kind.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WireStats {
    pub messages: BTreeMap<&'static str, u64>,
}

/// The simulated network.
pub struct SimNet {
    now: Millis,
    latency_ms: u64,
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
            latency_ms,
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

    pub fn now(&self) -> Millis {
        self.now
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
        let ids: Vec<ConnId> = self
            .conns
            .iter()
            .filter(|(_, c)| {
                c.open && ((c.dialer == a && c.acceptor == b) || (c.dialer == b && c.acceptor == a))
            })
            .map(|(id, _)| *id)
            .collect();
        for id in ids {
            self.close_now(id);
        }
    }

    /// Removes a node as if its process died: its connections drop.
    pub fn kill(&mut self, node: NodeId) -> Option<Engine> {
        let ids: Vec<ConnId> = self
            .conns
            .iter()
            .filter(|(_, c)| c.open && (c.dialer == node || c.acceptor == node))
            .map(|(id, _)| *id)
            .collect();
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
                msg,
            } => {
                let is_current = self.current.get(&(to, from)) == Some(&conn);
                let open = self.conns.get(&conn).is_some_and(|c| c.open);
                if is_current && open {
                    self.deliver(to, Event::Message { peer: from, msg });
                }
            }
            Pending::Close(conn) => self.close_now(conn),
            Pending::Tick(node) => {
                let due = self.scheduled_tick.get(&node).copied();
                if due.is_some_and(|d| d <= self.now) {
                    self.scheduled_tick.remove(&node);
                    self.deliver(node, Event::Tick);
                }
            }
        }
    }

    fn deliver(&mut self, node: NodeId, ev: Event) {
        let now = self.now;
        let just_connected = match &ev {
            Event::Connected { peer, .. } => Some(*peer),
            _ => None,
        };
        let Some(engine) = self.nodes.get_mut(&node) else {
            return;
        };
        let actions = engine.handle(now, ev);
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
        let at = self.now.saturating_add_ms(self.latency_ms);
        self.push(
            at,
            Pending::Deliver {
                conn,
                from,
                to,
                msg,
            },
        );
    }

    fn dial(&mut self, from: NodeId, to: NodeId) {
        let reachable = self.links.contains(&(from, to)) && self.nodes.contains_key(&to);
        let at = self.now.saturating_add_ms(self.latency_ms);
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
        let at = self.now.saturating_add_ms(self.latency_ms);
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
