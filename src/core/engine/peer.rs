//! Per-peer state inside the engine: configuration, the session state
//! machine, the parts of the Adj-RIB-In the shared table does not hold, and
//! the queue of route changes waiting for the next flush.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::super::decision::Learned;
use super::super::ids::{Asn, Millis, NodeId};
use super::super::message::Update;
use super::super::rib::PeerRib;
use super::super::role::Role;
use super::super::route::{Route, RouteKey};
use super::super::session::{Session, State};

/// How a peer is configured. Peers found by discovery get a default config
/// with `asn: None` (learned from their verified OPEN).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PeerConfig {
    pub node: NodeId,
    /// Expected ASN; a peer whose OPEN claims another is refused.
    pub asn: Option<Asn>,
    /// Reflect internal routes to this peer (we must have a cluster id).
    pub rr_client: bool,
    /// Tear the session down when the peer has more accepted routes.
    pub max_prefix: Option<u32>,
    /// Never dial; wait for the peer to connect.
    pub passive: bool,
    /// Hold time offered in OPEN; `None` uses the session default (90 s).
    pub hold_time: Option<Duration>,
    /// Start the session (dial) as soon as the peer is added.
    pub auto_start: bool,
    /// Reconnect back-off (first delay, cap); `None` uses the engine's.
    #[serde(default)]
    pub connect_retry: Option<(Duration, Duration)>,
    /// Refuse an OPEN with hold time 0 (set for discovered peers).
    #[serde(default)]
    pub require_hold: bool,
    /// We are this peer's route server (the engine must be one): routes
    /// from it go to our other clients without our ASN, with it as next hop.
    #[serde(default)]
    pub route_server_client: bool,
    /// This peer is our transparent route server: the next hop it names
    /// on a route is kept (and calls for the route go there).
    #[serde(default)]
    pub route_server: bool,
    /// Our role towards this (external) peer, announced in OPEN and
    /// applied to routes with the only-to-customer rules
    /// ([`crate::core::role`]). `None`: no role, no such rules.
    #[serde(default)]
    pub local_role: Option<Role>,
    /// Refuse the session when the peer announces no role.
    #[serde(default)]
    pub strict_role: bool,
}

impl PeerConfig {
    pub fn new(node: NodeId) -> Self {
        PeerConfig {
            node,
            asn: None,
            rr_client: false,
            max_prefix: None,
            passive: false,
            hold_time: None,
            auto_start: true,
            connect_retry: None,
            require_hold: false,
            route_server_client: false,
            route_server: false,
            local_role: None,
            strict_role: false,
        }
    }

    /// A peer found by discovery: a max-prefix, and no hold time 0.
    pub fn discovered(node: NodeId, max_prefix: u32) -> Self {
        PeerConfig {
            max_prefix: Some(max_prefix),
            require_hold: true,
            ..PeerConfig::new(node)
        }
    }

    pub fn with_asn(mut self, asn: Asn) -> Self {
        self.asn = Some(asn);
        self
    }

    pub fn with_rr_client(mut self, on: bool) -> Self {
        self.rr_client = on;
        self
    }

    /// See [`PeerConfig::route_server_client`].
    pub fn with_route_server_client(mut self, on: bool) -> Self {
        self.route_server_client = on;
        self
    }

    /// See [`PeerConfig::route_server`].
    pub fn with_route_server(mut self, on: bool) -> Self {
        self.route_server = on;
        self
    }

    /// See [`PeerConfig::local_role`] and [`PeerConfig::strict_role`].
    pub fn with_role(mut self, role: Role, strict: bool) -> Self {
        self.local_role = Some(role);
        self.strict_role = strict;
        self
    }

    pub fn with_max_prefix(mut self, limit: u32) -> Self {
        self.max_prefix = Some(limit);
        self
    }

    pub fn with_passive(mut self, on: bool) -> Self {
        self.passive = on;
        self
    }

    /// Reconnect back-off for this peer: the first delay and the cap.
    pub fn with_connect_retry(mut self, first: Duration, max: Duration) -> Self {
        self.connect_retry = Some((first, max));
        self
    }
}

/// Session state as operators see it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum PeerState {
    Idle,
    Connecting,
    OpenSent,
    OpenConfirm,
    Established,
}

impl From<State> for PeerState {
    fn from(s: State) -> Self {
        match s {
            State::Idle => PeerState::Idle,
            State::Connecting => PeerState::Connecting,
            State::OpenSent => PeerState::OpenSent,
            State::OpenConfirm => PeerState::OpenConfirm,
            State::Established => PeerState::Established,
        }
    }
}

/// A peer as policy and the looking glass see it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PeerInfo {
    pub node: NodeId,
    /// The peer's ASN once known (configured, or from its OPEN).
    pub asn: Asn,
    /// Same AS as this node.
    pub internal: bool,
    pub rr_client: bool,
    /// Our role towards the peer, when one is configured (external peers).
    #[serde(default)]
    pub local_role: Option<Role>,
    pub state: PeerState,
    /// Paths from this peer that passed import policy.
    pub accepted: u32,
    /// Paths kept as stale while the peer restarts.
    pub stale_until: Option<Millis>,
}

#[derive(Debug)]
pub(crate) struct Peer {
    pub cfg: PeerConfig,
    pub session: Session,
    /// ASN from configuration, the verified OPEN, or a restore.
    pub asn: Option<Asn>,
    pub internal: bool,
    pub rib: PeerRib,
    /// Route changes waiting for the next flush.
    pub outq: Update,
    /// With a minimum route advertisement interval: when the next UPDATE
    /// may go to this peer, and the changes held until then (the latest
    /// per route: `None` a withdrawal).
    pub mrai_until: Option<Millis>,
    pub held: BTreeMap<RouteKey, Option<Route>>,
    /// UPDATEs the interval has spaced out so far (seeds its jitter).
    pub mrai_sent: u64,
    /// Send an end-of-RIB marker at the next flush.
    pub send_eor: bool,
    /// Stale paths are purged at this time (graceful restart).
    pub stale_until: Option<Millis>,
    /// The peer's graceful-restart time from the last session, if both
    /// sides offered it (capped by the engine's `max_peer_restart_time`).
    pub restart_time: Option<u16>,
    /// ADD-PATH was negotiated: routes may carry a path id.
    pub add_path: bool,
    /// The unreachable signal was negotiated.
    pub unreachable: bool,
    /// Tombstones (origin-signed withdrawals) were negotiated.
    pub tombstones: bool,
    /// When a ROUTE-REFRESH was last answered, and when a deferred one is
    /// due (one at most; more in between are merged into it).
    pub refresh_served: Option<Millis>,
    pub refresh_due: Option<Millis>,
    /// Routing messages received from and sent to the peer (all sessions
    /// of this peer entry).
    pub msgs: MessageCounts,
}

/// Routing messages exchanged with one peer, by type (the order of
/// [`MessageCounts::KINDS`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct MessageCounts {
    pub received: [u64; 5],
    pub sent: [u64; 5],
}

impl MessageCounts {
    /// Message types, as [`Message::kind`](crate::core::message::Message::kind)
    /// names them.
    pub const KINDS: [&'static str; 5] = [
        "OPEN",
        "UPDATE",
        "NOTIFICATION",
        "KEEPALIVE",
        "ROUTE-REFRESH",
    ];

    pub(super) fn slot(m: &crate::core::message::Message) -> usize {
        use crate::core::message::Message::*;
        match m {
            Open(_) => 0,
            Update(_) => 1,
            Notification(_) => 2,
            Keepalive => 3,
            RouteRefresh => 4,
        }
    }
}

impl Peer {
    pub fn is_established(&self) -> bool {
        self.session.state() == State::Established
    }

    /// The role the only-to-customer rules apply with: the configured one,
    /// for an external peer only (roles are for AS borders).
    pub fn role(&self) -> Option<Role> {
        self.cfg.local_role.filter(|_| !self.internal)
    }

    pub fn learned(&self) -> Learned {
        if self.internal {
            Learned::Internal
        } else {
            Learned::External
        }
    }

    pub fn info(&self) -> PeerInfo {
        PeerInfo {
            node: self.cfg.node,
            asn: self.asn.unwrap_or(Asn(0)),
            internal: self.internal,
            rr_client: self.cfg.rr_client,
            local_role: self.role(),
            state: self.session.state().into(),
            accepted: self.rib.accepted,
            stale_until: self.stale_until,
        }
    }

    pub fn next_deadline(&self) -> Option<Millis> {
        [
            self.session.next_deadline(),
            self.stale_until,
            self.refresh_due,
            self.mrai_until.filter(|_| !self.held.is_empty()),
        ]
        .into_iter()
        .flatten()
        .min()
    }
}
