//! What a peer can make this node read before the node looks at it.
//!
//! The request-response codecs read a whole request off its substream and
//! decode it before the behaviour reports it, for up to
//! `max-concurrent-calls` streams per connection at once. Unchecked, that
//! is gigabytes per connection from anyone who can connect. The [`Gate`]
//! bounds it:
//!
//! - **Call streams only from peers with an established session.** The
//!   node tells the gate when a session comes up or goes down; an inbound
//!   call stream from any other peer is reset before one byte of it is
//!   read (a CALL is only ever sent along routes the receiver advertised,
//!   which takes a session).
//! - **Routing frames before a session** (the OPEN) are read only up to
//!   [`GateConfig::pre_session_frame`] bytes.
//! - **A byte budget per connection and per node.** Every inbound frame
//!   (request or response, either protocol) is charged as it is read, in
//!   [`CHUNK`]-byte steps, against its connection's and the node's budget;
//!   a read that would go over is failed (the stream is reset) and counted.
//!   The [`Charge`] travels with the decoded message up to the node and is
//!   released when the node drops it, so frames waiting in queues count too.
//!
//! The codecs learn which peer their connection belongs to through
//! [`PeerSlot`], a behaviour placed before them in the node's behaviour:
//! libp2p builds a connection's handlers in field order, and the codec a
//! handler clones binds itself to the peer the slot names at that moment
//! ([`CodecGate`]).

use std::collections::HashSet;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::task::{Context, Poll};

use futures::prelude::*;
use libp2p::Multiaddr;
use libp2p::PeerId;
use libp2p::core::Endpoint;
use libp2p::core::transport::PortUse;
use libp2p::swarm::{
    ConnectionDenied, ConnectionId, FromSwarm, NetworkBehaviour, THandler, THandlerInEvent,
    THandlerOutEvent, ToSwarm, dummy,
};

/// Bytes read (and charged) per step.
pub const CHUNK: usize = 64 * 1024;

/// Budgets, with their defaults.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GateConfig {
    /// Inbound frames being read or waiting for the node, all peers
    /// (default 256 MiB).
    pub node_bytes: usize,
    /// The same, per connection (default 16 MiB: two call frames of the
    /// largest size).
    pub connection_bytes: usize,
    /// Largest routing frame read from a peer without a session (default
    /// 64 KiB; an OPEN with its certificate is under 2 KiB).
    pub pre_session_frame: usize,
}

impl Default for GateConfig {
    fn default() -> Self {
        GateConfig {
            node_bytes: 256 << 20,
            connection_bytes: 16 << 20,
            pre_session_frame: 64 << 10,
        }
    }
}

/// What the gate refused, for `/v1/status`.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct GateStats {
    /// Call streams reset because the peer had no session.
    pub call_streams_without_session: u64,
    /// Reads failed because a connection's budget was spent.
    pub over_connection_budget: u64,
    /// Reads failed because the node's budget was spent.
    pub over_node_budget: u64,
    /// Bytes charged now (all connections).
    pub bytes_in_use: u64,
    /// Most bytes charged at once since start, all connections together.
    pub peak_bytes: u64,
    /// Most bytes one connection held at once since start (never over
    /// its budget).
    pub peak_connection_bytes: u64,
}

#[derive(Debug)]
struct Shared {
    cfg: GateConfig,
    sessions: RwLock<HashSet<PeerId>>,
    used: AtomicUsize,
    peak: AtomicUsize,
    peak_conn: AtomicUsize,
    no_session: AtomicU64,
    over_conn: AtomicU64,
    over_node: AtomicU64,
    /// The peer of the connection whose handlers are being built.
    slot: Mutex<Option<PeerId>>,
    /// Call streams from nodes without a session are read too (a client
    /// of a transparent route server: calls come straight from the nodes
    /// the route server gave our routes to).
    open_calls: std::sync::atomic::AtomicBool,
}

/// The node's gate; cheap to clone.
#[derive(Debug, Clone)]
pub struct Gate(Arc<Shared>);

impl Gate {
    pub fn new(cfg: GateConfig) -> Self {
        Gate(Arc::new(Shared {
            cfg,
            sessions: RwLock::new(HashSet::new()),
            used: AtomicUsize::new(0),
            peak: AtomicUsize::new(0),
            peak_conn: AtomicUsize::new(0),
            no_session: AtomicU64::new(0),
            over_conn: AtomicU64::new(0),
            over_node: AtomicU64::new(0),
            slot: Mutex::new(None),
            open_calls: std::sync::atomic::AtomicBool::new(false),
        }))
    }

    /// Reads call streams from nodes without a session too (`true`), still
    /// within the byte budgets; the forwarder then decides (it refuses a
    /// CALL for anything not advertised to the sender or a route server).
    pub fn set_open_calls(&self, open: bool) {
        self.0.open_calls.store(open, Ordering::Relaxed);
    }

    pub fn config(&self) -> GateConfig {
        self.0.cfg
    }

    /// A session with `peer` came up (`true`) or went down.
    pub fn set_session(&self, peer: PeerId, up: bool) {
        let mut s = self.0.sessions.write().unwrap_or_else(|e| e.into_inner());
        if up {
            s.insert(peer);
        } else {
            s.remove(&peer);
        }
    }

    pub fn has_session(&self, peer: &PeerId) -> bool {
        self.0
            .sessions
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .contains(peer)
    }

    pub fn stats(&self) -> GateStats {
        GateStats {
            call_streams_without_session: self.0.no_session.load(Ordering::Relaxed),
            over_connection_budget: self.0.over_conn.load(Ordering::Relaxed),
            over_node_budget: self.0.over_node.load(Ordering::Relaxed),
            bytes_in_use: self.0.used.load(Ordering::Relaxed) as u64,
            peak_bytes: self.0.peak.load(Ordering::Relaxed) as u64,
            peak_connection_bytes: self.0.peak_conn.load(Ordering::Relaxed) as u64,
        }
    }

    /// The behaviour that tells codecs which peer a connection is.
    pub fn peer_slot(&self) -> PeerSlot {
        PeerSlot(self.clone())
    }

    /// Names the peer whose connection's codecs are cloned next (what
    /// [`PeerSlot`] does; codec tests call it directly).
    pub(crate) fn set_slot(&self, peer: PeerId) {
        *self.0.slot.lock().unwrap_or_else(|e| e.into_inner()) = Some(peer);
    }

    fn slot(&self) -> Option<PeerId> {
        *self.0.slot.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// A codec's view of the gate: unbound (the behaviour's own copy) or bound
/// to one connection. Cloning an unbound one binds the clone to the peer in
/// the slot, with a fresh connection budget; cloning a bound one (one per
/// stream) shares that budget.
#[derive(Debug)]
pub struct CodecGate {
    gate: Gate,
    conn: Option<ConnBudget>,
}

#[derive(Debug, Clone)]
struct ConnBudget {
    /// `None`: the slot was empty (never expected); such a connection is
    /// treated as having no session.
    peer: Option<PeerId>,
    used: Arc<AtomicUsize>,
}

impl Clone for CodecGate {
    fn clone(&self) -> Self {
        let conn = match &self.conn {
            Some(c) => c.clone(),
            None => ConnBudget {
                peer: self.gate.slot(),
                used: Arc::new(AtomicUsize::new(0)),
            },
        };
        CodecGate {
            gate: self.gate.clone(),
            conn: Some(conn),
        }
    }
}

/// Bytes charged to a connection and the node; released on drop.
#[derive(Debug, Default)]
pub struct Charge {
    bytes: usize,
    owner: Option<(Gate, Arc<AtomicUsize>)>,
}

impl Charge {
    pub fn bytes(&self) -> usize {
        self.bytes
    }

    /// Gives back what was charged beyond `keep` bytes.
    fn shrink_to(&mut self, keep: usize) {
        if keep >= self.bytes {
            return;
        }
        if let Some((gate, conn)) = &self.owner {
            let give = self.bytes - keep;
            conn.fetch_sub(give, Ordering::Relaxed);
            gate.0.used.fetch_sub(give, Ordering::Relaxed);
        }
        self.bytes = keep;
    }
}

impl Drop for Charge {
    fn drop(&mut self) {
        if let Some((gate, conn)) = &self.owner {
            conn.fetch_sub(self.bytes, Ordering::Relaxed);
            gate.0.used.fetch_sub(self.bytes, Ordering::Relaxed);
        }
    }
}

/// Why a read was stopped.
fn refused(what: &str) -> std::io::Error {
    std::io::Error::new(std::io::ErrorKind::OutOfMemory, what.to_string())
}

impl CodecGate {
    pub fn new(gate: Gate) -> Self {
        CodecGate { gate, conn: None }
    }

    fn peer(&self) -> Option<PeerId> {
        self.conn.as_ref().and_then(|c| c.peer)
    }

    /// Whether the peer of this connection has a session.
    pub fn has_session(&self) -> bool {
        self.peer().is_some_and(|p| self.gate.has_session(&p))
    }

    /// Refuses a call stream from a peer without a session, counting it.
    pub fn require_session(&self) -> std::io::Result<()> {
        if self.has_session() || self.gate.0.open_calls.load(Ordering::Relaxed) {
            return Ok(());
        }
        self.gate.0.no_session.fetch_add(1, Ordering::Relaxed);
        Err(std::io::Error::new(
            std::io::ErrorKind::PermissionDenied,
            "call stream from a peer without a session",
        ))
    }

    /// The largest routing frame this connection may send now.
    pub fn route_frame_cap(&self, max: usize) -> usize {
        if self.has_session() {
            max
        } else {
            max.min(self.gate.0.cfg.pre_session_frame)
        }
    }

    /// Adds `n` bytes to `charge`, or fails without charging them.
    fn grow(&self, charge: &mut Charge, n: usize) -> std::io::Result<()> {
        let Some(conn) = &self.conn else {
            return Ok(());
        };
        let shared = &self.gate.0;
        let cap = shared.cfg;
        let on_conn = conn.used.fetch_add(n, Ordering::Relaxed) + n;
        if on_conn > cap.connection_bytes {
            conn.used.fetch_sub(n, Ordering::Relaxed);
            shared.over_conn.fetch_add(1, Ordering::Relaxed);
            return Err(refused("the connection's inbound buffer budget is spent"));
        }
        let now = shared.used.fetch_add(n, Ordering::Relaxed) + n;
        if now > cap.node_bytes {
            shared.used.fetch_sub(n, Ordering::Relaxed);
            conn.used.fetch_sub(n, Ordering::Relaxed);
            shared.over_node.fetch_add(1, Ordering::Relaxed);
            return Err(refused("the node's inbound buffer budget is spent"));
        }
        shared.peak.fetch_max(now, Ordering::Relaxed);
        shared.peak_conn.fetch_max(on_conn, Ordering::Relaxed);
        if charge.owner.is_none() {
            charge.owner = Some((self.gate.clone(), conn.used.clone()));
        }
        charge.bytes += n;
        Ok(())
    }

    /// A response frame: like [`CodecGate::read`], with an oversized one an
    /// `InvalidData` error naming `what` (a response is not answered, so
    /// there is nothing to send back).
    pub async fn read_response<T: AsyncRead + Unpin + Send>(
        &self,
        io: &mut T,
        max: usize,
        what: &str,
    ) -> std::io::Result<Vec<u8>> {
        match self.read(io, max).await? {
            Some((bytes, _charge)) => Ok(bytes),
            None => Err(std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                format!("{what} larger than {max} bytes"),
            )),
        }
    }

    /// Reads the stream to its end, at most `max` bytes, charging every
    /// chunk before reading it. `Ok(None)` when the peer sent more than
    /// `max`; an error when a budget is spent (nothing stays charged).
    pub async fn read<T: AsyncRead + Unpin + Send>(
        &self,
        io: &mut T,
        max: usize,
    ) -> std::io::Result<Option<(Vec<u8>, Charge)>> {
        let mut charge = Charge::default();
        let mut buf: Vec<u8> = Vec::new();
        loop {
            // One byte past `max` tells an oversized frame from a full one.
            let room = (max + 1).saturating_sub(buf.len());
            if room == 0 {
                return Ok(None);
            }
            let step = room.min(CHUNK);
            self.grow(&mut charge, step)?;
            let start = buf.len();
            buf.resize(start + step, 0);
            let mut filled = start;
            while filled < start + step {
                let n = io.read(&mut buf[filled..start + step]).await?;
                if n == 0 {
                    buf.truncate(filled);
                    if buf.len() > max {
                        return Ok(None);
                    }
                    charge.shrink_to(buf.len());
                    return Ok(Some((buf, charge)));
                }
                filled += n;
            }
        }
    }
}

/// A behaviour with no protocol of its own: it records the peer of each
/// connection whose handlers are about to be built, for the codecs of the
/// behaviours after it. See the module docs.
pub struct PeerSlot(Gate);

impl NetworkBehaviour for PeerSlot {
    type ConnectionHandler = dummy::ConnectionHandler;
    type ToSwarm = std::convert::Infallible;

    fn handle_established_inbound_connection(
        &mut self,
        _: ConnectionId,
        peer: PeerId,
        _: &Multiaddr,
        _: &Multiaddr,
    ) -> Result<THandler<Self>, ConnectionDenied> {
        self.0.set_slot(peer);
        Ok(dummy::ConnectionHandler)
    }

    fn handle_established_outbound_connection(
        &mut self,
        _: ConnectionId,
        peer: PeerId,
        _: &Multiaddr,
        _: Endpoint,
        _: PortUse,
    ) -> Result<THandler<Self>, ConnectionDenied> {
        self.0.set_slot(peer);
        Ok(dummy::ConnectionHandler)
    }

    fn on_swarm_event(&mut self, _: FromSwarm) {}

    fn on_connection_handler_event(
        &mut self,
        _: PeerId,
        _: ConnectionId,
        e: THandlerOutEvent<Self>,
    ) {
        libp2p::core::util::unreachable(e)
    }

    fn poll(&mut self, _: &mut Context<'_>) -> Poll<ToSwarm<Self::ToSwarm, THandlerInEvent<Self>>> {
        Poll::Pending
    }
}

/// A gate on which the next codec clone is bound to a connection of a
/// peer that has a session (for codec tests).
/// Writes one frame and closes our side of the substream, which is what
/// delimits a frame on both protocols.
pub async fn write_frame<T: AsyncWrite + Unpin + Send>(
    io: &mut T,
    bytes: &[u8],
) -> std::io::Result<()> {
    io.write_all(bytes).await?;
    io.close().await
}

#[cfg(test)]
pub(crate) fn in_session() -> Gate {
    let gate = Gate::new(GateConfig::default());
    let peer = PeerId::random();
    gate.set_session(peer, true);
    gate.set_slot(peer);
    gate
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures::io::Cursor;

    fn bound(gate: &Gate, peer: PeerId) -> CodecGate {
        gate.set_slot(peer);
        CodecGate::new(gate.clone()).clone()
    }

    fn tiny() -> GateConfig {
        GateConfig {
            node_bytes: 3 * CHUNK,
            connection_bytes: 2 * CHUNK,
            pre_session_frame: 100,
        }
    }

    #[tokio::test]
    async fn reads_are_charged_and_released_when_the_charge_drops() {
        let gate = Gate::new(GateConfig::default());
        let c = bound(&gate, PeerId::random());
        let (bytes, charge) = c
            .read(&mut Cursor::new(vec![7u8; 1000]), 4096)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(bytes.len(), 1000);
        assert_eq!(charge.bytes(), 1000);
        assert_eq!(gate.stats().bytes_in_use, charge.bytes() as u64);
        drop(charge);
        assert_eq!(gate.stats().bytes_in_use, 0);
        assert!(gate.stats().peak_bytes >= 1000);
    }

    #[tokio::test]
    async fn an_oversized_frame_is_none_and_leaves_nothing_charged() {
        let gate = Gate::new(GateConfig::default());
        let c = bound(&gate, PeerId::random());
        let got = c
            .read(&mut Cursor::new(vec![0u8; 5000]), 4096)
            .await
            .unwrap();
        assert!(got.is_none());
        assert_eq!(gate.stats().bytes_in_use, 0);
    }

    #[tokio::test]
    async fn a_connection_cannot_hold_more_than_its_budget() {
        let gate = Gate::new(tiny());
        let c = bound(&gate, PeerId::random());
        let held = c
            .read(&mut Cursor::new(vec![0u8; CHUNK + 10]), 4 * CHUNK)
            .await
            .unwrap()
            .unwrap();
        // Another stream of the same connection (the handler clones the
        // codec per stream) shares the budget.
        let again = c.clone();
        let e = again
            .read(&mut Cursor::new(vec![0u8; CHUNK]), 4 * CHUNK)
            .await
            .unwrap_err();
        assert_eq!(e.kind(), std::io::ErrorKind::OutOfMemory);
        assert_eq!(gate.stats().over_connection_budget, 1);
        let budget = tiny().connection_bytes as u64;
        assert_eq!(
            gate.stats().peak_connection_bytes,
            budget,
            "the first frame filled it"
        );
        // A second connection still has its own.
        let other = bound(&gate, PeerId::random());
        let ok = other
            .read(&mut Cursor::new(vec![0u8; 100]), 4 * CHUNK)
            .await
            .unwrap();
        assert!(ok.is_some());
        drop((held, ok));
        assert_eq!(gate.stats().bytes_in_use, 0);
    }

    #[tokio::test]
    async fn the_node_budget_caps_all_connections_together() {
        let gate = Gate::new(tiny());
        let mut held = Vec::new();
        // Frames just under a chunk: each connection holds one.
        let frame = || Cursor::new(vec![0u8; CHUNK - 1]);
        for _ in 0..3 {
            let c = bound(&gate, PeerId::random());
            held.push(c.read(&mut frame(), CHUNK - 1).await.unwrap());
        }
        let c = bound(&gate, PeerId::random());
        let e = c.read(&mut frame(), CHUNK - 1).await.unwrap_err();
        assert_eq!(e.kind(), std::io::ErrorKind::OutOfMemory);
        assert_eq!(gate.stats().over_node_budget, 1);
        held.clear();
        assert_eq!(gate.stats().bytes_in_use, 0);
    }

    #[test]
    fn sessions_open_call_streams_and_lift_the_pre_session_cap() {
        let gate = Gate::new(tiny());
        let peer = PeerId::random();
        let c = bound(&gate, peer);
        assert!(c.require_session().is_err());
        assert_eq!(c.route_frame_cap(1 << 20), 100);
        gate.set_session(peer, true);
        assert!(c.require_session().is_ok());
        assert_eq!(c.route_frame_cap(1 << 20), 1 << 20);
        gate.set_session(peer, false);
        assert!(c.require_session().is_err());
        assert_eq!(gate.stats().call_streams_without_session, 2);
        // A codec never bound to a connection has no session either.
        let unbound_clone = CodecGate {
            gate: gate.clone(),
            conn: Some(ConnBudget {
                peer: None,
                used: Arc::new(AtomicUsize::new(0)),
            }),
        };
        assert!(!unbound_clone.has_session());
    }
}
