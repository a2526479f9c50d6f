//! One peer's transport as the engine sees it: the libp2p connections
//! behind it, whether the engine has been told it is up, and the queue of
//! routing messages waiting to go out.
//!
//! Request-response opens a substream per request, so two requests in
//! flight can be handled out of order by the receiver. BGP needs order
//! (OPEN before UPDATE, a withdrawal after its announcement), so a link
//! keeps **at most one request in flight** and queues the rest; the
//! response is the peer's acknowledgement. While a request is in flight,
//! queued UPDATEs are merged into one (later changes to a route replace
//! earlier ones), so a slow peer gets fewer, larger UPDATEs instead of an
//! ever-growing queue. Why this and not sequence numbers: docs/operations.md,
//! "Ordering".

use std::collections::{HashSet, VecDeque};

use libp2p::request_response::OutboundRequestId;
use libp2p::swarm::ConnectionId;

use crate::core::message::{Message, Update};
use crate::core::route::RouteKey;
use crate::wire::{self, Limits};

/// One libp2p connection to the peer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Conn {
    pub id: ConnectionId,
    /// We dialled it.
    pub dialer: bool,
    /// Being closed on the engine's request; no longer carries the session.
    pub doomed: bool,
    /// Through a circuit relay ([`super::nat`]).
    pub relayed: bool,
    pub since: std::time::Instant,
}

/// What a frame in flight carried, for the acknowledgement counters.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FrameInfo {
    pub announced: u64,
    pub withdrawn: u64,
    /// May be sent again if its connection closes under it: everything
    /// but an OPEN (a second OPEN is an FSM error to the receiver).
    pub resendable: bool,
}

/// Counters per link, shown by the admin API.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct LinkStats {
    pub frames_sent: u64,
    pub frames_acked: u64,
    /// Routes the peer acknowledged (made durable) in UPDATEs we sent.
    pub routes_acked: u64,
    pub withdrawals_acked: u64,
    pub updates_merged: u64,
    pub keepalives_skipped: u64,
    pub requests_received: u64,
}

/// The queue would grow past its bound: the peer is not keeping up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stuck;

#[derive(Debug, Default)]
pub struct Link {
    pub conns: Vec<Conn>,
    /// The engine has been told `Connected` and not yet `Disconnected`, and
    /// has not asked to close.
    pub reported: bool,
    /// The engine asked to close: flush the queue, then disconnect.
    pub closing: bool,
    /// The engine asked for a dial that has not resolved yet.
    pub engine_dialing: bool,
    /// Dial again once the closing connections are gone.
    pub redial: bool,
    queue: VecDeque<Message>,
    /// Frames of a message already encoded (a large UPDATE splits).
    frames: VecDeque<(Vec<u8>, FrameInfo)>,
    /// The request in flight, with its frame: sent again if its connection
    /// closes while another one to the peer stays up.
    inflight: Option<(OutboundRequestId, FrameInfo, bytes::Bytes)>,
    pub stats: LinkStats,
    /// Hole punching to this peer failed: it stays relayed.
    pub punch_failed: bool,
}

impl Link {
    pub fn live_conns(&self) -> impl Iterator<Item = &Conn> {
        self.conns.iter().filter(|c| !c.doomed)
    }

    pub fn has_live(&self) -> bool {
        self.live_conns().next().is_some()
    }

    pub fn has_doomed(&self) -> bool {
        self.conns.iter().any(|c| c.doomed)
    }

    /// Whether the first live connection was dialled by us.
    pub fn outbound(&self) -> bool {
        self.live_conns().next().is_some_and(|c| c.dialer)
    }

    pub fn idle(&self) -> bool {
        self.queue.is_empty() && self.frames.is_empty() && self.inflight.is_none()
    }

    pub fn queued(&self) -> usize {
        self.queue.len() + self.frames.len()
    }

    pub fn inflight(&self) -> Option<OutboundRequestId> {
        self.inflight.as_ref().map(|(id, _, _)| *id)
    }

    /// When the oldest live direct connection came up, if one is up.
    pub fn direct_since(&self) -> Option<std::time::Instant> {
        self.live_conns()
            .filter(|c| !c.relayed)
            .map(|c| c.since)
            .min()
    }

    /// The frame in flight, to send again on another connection, unless
    /// it must not be sent twice.
    pub fn inflight_frame(&self) -> Option<bytes::Bytes> {
        self.inflight
            .as_ref()
            .filter(|(_, info, _)| info.resendable)
            .map(|(_, _, b)| b.clone())
    }

    /// The frame in flight went out again as `id`.
    pub fn resent(&mut self, id: OutboundRequestId) {
        if let Some(f) = self.inflight.as_mut() {
            f.0 = id;
        }
    }

    /// Drops everything waiting to be sent (the transport is gone).
    pub fn clear_queue(&mut self) {
        self.queue.clear();
        self.frames.clear();
        self.inflight = None;
    }

    /// Queues a message, merging it into a queued UPDATE where possible.
    pub fn enqueue(&mut self, msg: Message, max: usize) -> Result<(), Stuck> {
        match msg {
            Message::Update(u) => {
                if let Some(Message::Update(last)) = self.queue.back_mut() {
                    merge_update(last, u);
                    self.stats.updates_merged += 1;
                    return Ok(());
                }
                self.push(Message::Update(u), max)
            }
            // Anything already waiting will reach the peer first and
            // restart its hold timer just as well.
            Message::Keepalive if !self.queue.is_empty() || !self.frames.is_empty() => {
                self.stats.keepalives_skipped += 1;
                Ok(())
            }
            m => self.push(m, max),
        }
    }

    fn push(&mut self, m: Message, max: usize) -> Result<(), Stuck> {
        if self.queued() >= max {
            return Err(Stuck);
        }
        self.queue.push_back(m);
        Ok(())
    }

    /// The next frame to send, if nothing is in flight. Messages that fail
    /// to encode are dropped and returned as errors to log (they would be
    /// our bug, not the peer's).
    pub fn next_frame(&mut self, limits: &Limits) -> Result<Option<(Vec<u8>, FrameInfo)>, String> {
        if self.inflight.is_some() {
            return Ok(None);
        }
        if let Some(f) = self.frames.pop_front() {
            return Ok(Some(f));
        }
        let Some(msg) = self.queue.pop_front() else {
            return Ok(None);
        };
        match msg {
            Message::Update(u) => {
                let wire::EncodedUpdate {
                    frames,
                    update: u,
                    withdrawn,
                } = wire::encode_update_frames_or_withdraw(u, limits)
                    .map_err(|e| format!("UPDATE does not encode: {e}"))?;
                if let Some(first) = withdrawn.first() {
                    // Our bug, not the peer's: the engine keeps to the
                    // wire's bounds. The peer is told to drop these paths
                    // rather than keep old ones.
                    tracing::error!(
                        routes = withdrawn.len(),
                        first = %first.prefix,
                        "routes that do not encode are sent as withdrawals"
                    );
                }
                // Each frame is a valid UPDATE on its own; count what each
                // carries so acknowledgements can be attributed.
                let infos = split_info(&u, frames.len(), limits);
                let infos = infos.into_iter().map(|i| FrameInfo {
                    resendable: true,
                    ..i
                });
                self.frames.extend(frames.into_iter().zip(infos));
                Ok(self.frames.pop_front())
            }
            m => {
                let kind = m.kind();
                let info = FrameInfo {
                    resendable: !matches!(m, Message::Open(_)),
                    ..FrameInfo::default()
                };
                wire::encode_message(&m, limits)
                    .map(|b| Some((b, info)))
                    .map_err(|e| format!("{kind} does not encode: {e}"))
            }
        }
    }

    pub fn set_inflight(&mut self, id: OutboundRequestId, info: FrameInfo, frame: bytes::Bytes) {
        debug_assert!(self.inflight.is_none(), "two requests in flight");
        self.inflight = Some((id, info, frame));
        self.stats.frames_sent += 1;
    }

    /// The peer acknowledged `id`. False if it was not ours in flight.
    pub fn on_ack(&mut self, id: OutboundRequestId) -> bool {
        match self.inflight {
            Some((want, info, _)) if want == id => {
                self.inflight = None;
                self.stats.frames_acked += 1;
                self.stats.routes_acked += info.announced;
                self.stats.withdrawals_acked += info.withdrawn;
                true
            }
            _ => false,
        }
    }
}

/// How many announcements and withdrawals each of `n` frames of `u` carry,
/// following [`wire::encode_update_frames`]' order: withdrawals first, then
/// announcements. Exact when frames were cut by count; when the encoder
/// also halved a frame for size, the totals still add up.
fn split_info(u: &Update, n: usize, limits: &Limits) -> Vec<FrameInfo> {
    let mut out = vec![FrameInfo::default(); n.max(1)];
    let mut w = u.withdraw.len() as u64;
    let mut a = u.announce.len() as u64;
    let per_w = limits.max_withdraws().max(1) as u64;
    let per_a = limits.max_routes().max(1) as u64;
    for f in out.iter_mut() {
        if w > 0 {
            f.withdrawn = w.min(per_w);
            w -= f.withdrawn;
        } else if a > 0 {
            f.announced = a.min(per_a);
            a -= f.announced;
        }
    }
    if let Some(last) = out.last_mut() {
        last.withdrawn += w;
        last.announced += a;
    }
    out
}

/// Applies `next` on top of `into`: for every route key `next` names, its
/// announcement or withdrawal replaces whatever `into` said about it.
pub fn merge_update(into: &mut Update, next: Update) {
    let touched: HashSet<RouteKey> = next
        .announce
        .iter()
        .map(|r| r.key())
        .chain(next.withdraw.iter().cloned())
        .collect();
    into.announce.retain(|r| !touched.contains(&r.key()));
    into.withdraw.retain(|k| !touched.contains(k));
    into.withdraw.extend(next.withdraw);
    into.announce.extend(next.announce);
    into.end_of_rib |= next.end_of_rib;
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::core::attrs::PathAttrs;
    use crate::core::ids::AgentId;
    use crate::core::prefix::Prefix;
    use crate::core::route::Route;

    fn route(p: &str, med: u32) -> Route {
        Route::new(
            Prefix::new(p).unwrap(),
            Arc::new(PathAttrs {
                agent: AgentId::new("a"),
                med,
                ..Default::default()
            }),
        )
    }

    fn key(p: &str) -> RouteKey {
        RouteKey::new(Prefix::new(p).unwrap())
    }

    #[test]
    fn later_changes_to_a_route_replace_earlier_ones_when_merging() {
        let mut u = Update {
            unreachable: Default::default(),
            tombstones: Default::default(),
            announce: vec![route("a", 1), route("b", 1)],
            withdraw: vec![key("c")],
            end_of_rib: false,
        };
        merge_update(
            &mut u,
            Update {
                unreachable: Default::default(),
                tombstones: Default::default(),
                announce: vec![route("a", 2), route("c", 1)],
                withdraw: vec![key("b")],
                end_of_rib: true,
            },
        );
        let ann: Vec<_> = u
            .announce
            .iter()
            .map(|r| (r.prefix.to_string(), r.attrs.med))
            .collect();
        assert_eq!(ann, vec![("a".into(), 2), ("c".into(), 1)]);
        assert_eq!(u.withdraw, vec![key("b")]);
        assert!(u.end_of_rib);
    }

    /// A second OPEN is an FSM error to the receiver: an OPEN whose
    /// connection closed under it is never sent again.
    #[test]
    fn an_open_in_flight_is_not_offered_for_resending() {
        let limits = Limits::default();
        let mut l = Link::default();
        let open = crate::core::message::Open {
            version: crate::core::message::PROTOCOL_VERSION,
            asn: crate::core::ids::Asn(65001),
            node: crate::core::ids::NodeId::from_u64(1),
            hold_time: 90,
            capabilities: Default::default(),
            federation: "f".into(),
            cert: None,
        };
        l.enqueue(Message::Open(open), 8).unwrap();
        let (bytes, info) = l.next_frame(&limits).unwrap().unwrap();
        assert!(!info.resendable);
        l.set_inflight(fake_id(), info, bytes.into());
        assert_eq!(l.inflight_frame(), None);
    }

    #[test]
    fn a_route_that_does_not_encode_is_withdrawn_and_the_rest_is_sent() {
        let limits = Limits::default();
        let mut l = Link::default();
        let mut long = route("t/long", 0);
        Arc::make_mut(&mut long.attrs).as_path = (0..65).map(crate::core::ids::Asn).collect();
        let u = Update {
            announce: vec![route("t/a", 0), long, route("t/b", 0)],
            ..Default::default()
        };
        l.enqueue(Message::Update(u), 8).unwrap();
        let (mut announced, mut withdrawn) = (Vec::new(), Vec::new());
        let mut counted = (0, 0);
        while let Some((bytes, info)) = l.next_frame(&limits).unwrap() {
            counted = (counted.0 + info.announced, counted.1 + info.withdrawn);
            let Ok(crate::wire::Frame::Routing(Message::Update(sent))) =
                crate::wire::decode(&bytes, &limits)
            else {
                panic!("an UPDATE");
            };
            announced.extend(sent.announce.into_iter().map(|r| r.key()));
            withdrawn.extend(sent.withdraw);
            let id = fake_id();
            l.set_inflight(id, info, bytes.into());
            assert!(l.on_ack(id));
        }
        assert_eq!(announced, vec![key("t/a"), key("t/b")]);
        assert_eq!(withdrawn, vec![key("t/long")]);
        assert_eq!(counted, (2, 1), "acknowledgements count what was sent");
    }

    #[test]
    fn one_frame_in_flight_and_updates_queue_up_merged() {
        let limits = Limits::default();
        let mut l = Link::default();
        l.enqueue(Message::Keepalive, 8).unwrap();
        let (_, info) = l.next_frame(&limits).unwrap().unwrap();
        assert_eq!(
            info,
            FrameInfo {
                resendable: true,
                ..FrameInfo::default()
            },
            "a KEEPALIVE carries no route and may be sent twice"
        );
        // Pretend it is in flight; nothing else may go.
        let id = fake_id();
        l.set_inflight(id, info, bytes::Bytes::new());
        for i in 0..5 {
            l.enqueue(
                Message::Update(Update {
                    announce: vec![route(&format!("t/{i}"), 0)],
                    ..Default::default()
                }),
                8,
            )
            .unwrap();
        }
        l.enqueue(Message::Keepalive, 8).unwrap();
        assert_eq!(l.queued(), 1, "five UPDATEs merged, the keepalive skipped");
        assert!(l.next_frame(&limits).unwrap().is_none());
        assert!(l.on_ack(id));
        let (bytes, info) = l.next_frame(&limits).unwrap().unwrap();
        assert_eq!(info.announced, 5);
        assert!(!bytes.is_empty());
        assert_eq!(l.stats.keepalives_skipped, 1);
    }

    #[test]
    fn a_full_queue_reports_the_peer_as_stuck() {
        let mut l = Link::default();
        l.enqueue(Message::RouteRefresh, 2).unwrap();
        l.enqueue(Message::RouteRefresh, 2).unwrap();
        assert_eq!(l.enqueue(Message::RouteRefresh, 2), Err(Stuck));
    }

    #[test]
    fn a_large_update_goes_out_as_several_frames_one_at_a_time() {
        let limits = Limits::default().with_max_routes(10);
        let mut l = Link::default();
        l.enqueue(
            Message::Update(Update {
                unreachable: Default::default(),
                tombstones: Default::default(),
                announce: (0..25).map(|i| route(&format!("t/{i}"), 0)).collect(),
                withdraw: vec![key("x")],
                end_of_rib: true,
            }),
            8,
        )
        .unwrap();
        let mut total = FrameInfo::default();
        let mut frames = 0;
        while let Some((_, info)) = l.next_frame(&limits).unwrap() {
            frames += 1;
            assert!(info.resendable, "an UPDATE frame may be sent twice");
            total.announced += info.announced;
            total.withdrawn += info.withdrawn;
            let id = fake_id();
            l.set_inflight(id, info, bytes::Bytes::new());
            assert!(l.on_ack(id));
        }
        assert_eq!(frames, 4);
        assert_eq!(
            total,
            FrameInfo {
                announced: 25,
                withdrawn: 1,
                resendable: false,
            }
        );
        assert_eq!(l.stats.routes_acked, 25);
    }

    /// Request ids are minted by request-response only; take real ones from
    /// a behaviour that has no connections (the requests just queue).
    fn fake_id() -> OutboundRequestId {
        use libp2p::request_response::{Behaviour, Config, ProtocolSupport};
        thread_local! {
            static B: std::cell::RefCell<Behaviour<super::super::route_codec::RouteCodec>> =
                std::cell::RefCell::new(Behaviour::with_codec(
                    super::super::route_codec::RouteCodec::new(
                        Limits::default(),
                        super::super::gate::Gate::new(Default::default()),
                    ),
                    [(super::super::route_codec::ROUTE_PROTOCOL, ProtocolSupport::Full)],
                    Config::default(),
                ));
        }
        B.with(|b| {
            b.borrow_mut().send_request(
                &libp2p::PeerId::random(),
                super::super::route_codec::RouteRequest::Encoded(bytes::Bytes::new()),
            )
        })
    }
}
