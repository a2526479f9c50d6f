//! NAT traversal: whether this node can be dialled from outside (AutoNAT
//! v2), reservations on circuit relays for a node that cannot, the relay a
//! node serves to others, and hole punching (DCUtR) from a relayed
//! connection to a direct one.
//!
//! A relay is a transport, not a router: a relayed connection is one more
//! connection to the same peer, noise-encrypted end to end through the
//! relay, so the relay never appears on an AS path and sees only
//! ciphertext. Once a direct connection to a peer is up, the relayed ones
//! are closed (when no call is in flight over the link, or after
//! [`RETIRE_AFTER`]); a routing request that was in flight on a closed
//! connection is sent again on the one left ([`super::link`]).

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use libp2p::core::transport::ListenerId;
use libp2p::multiaddr::Protocol;
use libp2p::{Multiaddr, PeerId, autonat, dcutr, relay, upnp};
use serde::Serialize;

use super::*;

/// Relays we consider at once (configured ones and bootstrap nodes that
/// offer relaying).
pub const MAX_RELAY_CANDIDATES: usize = 16;
/// Addresses AutoNAT confirmed, and those it found unreachable, that we
/// remember (each list; the oldest goes first).
const MAX_JUDGED: usize = 16;
/// A relayed connection is closed this long after a direct one to the
/// same peer came up, even with calls still in flight on the link.
pub const RETIRE_AFTER: Duration = Duration::from_secs(30);
/// Back-off after a reservation fails: this, doubled per failure up to
/// [`RESERVE_RETRY_MAX`].
const RESERVE_RETRY_MIN: Duration = Duration::from_secs(2);
const RESERVE_RETRY_MAX: Duration = Duration::from_secs(300);
/// A relayed link shows as `punching` this long, unless DCUtR failed
/// sooner; after that it is `relayed` (the peer may not punch at all).
pub const PUNCH_WINDOW: Duration = Duration::from_secs(30);

/// When to take relay reservations.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum UseRelays {
    /// When AutoNAT finds none of our addresses reachable, or, until it
    /// has answered, when we listen on no public address.
    #[default]
    Auto,
    Always,
    Never,
}

/// The limits of the relay a node serves (circuit relay v2).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RelayLimits {
    pub max_reservations: usize,
    pub max_reservations_per_peer: usize,
    pub reservation_duration: Duration,
    pub max_circuits: usize,
    pub max_circuits_per_peer: usize,
    pub max_circuit_duration: Duration,
    pub max_circuit_bytes: u64,
}

impl Default for RelayLimits {
    /// node.toml's defaults (docs/operations.md, "Running a relay").
    fn default() -> Self {
        RelayLimits {
            max_reservations: 128,
            max_reservations_per_peer: 4,
            reservation_duration: Duration::from_secs(3600),
            max_circuits: 64,
            max_circuits_per_peer: 8,
            max_circuit_duration: Duration::from_secs(3600),
            max_circuit_bytes: 64 << 20,
        }
    }
}

impl RelayLimits {
    /// The relay behaviour's configuration: these limits, and the crate's
    /// rate limits on reservations and circuits per peer and per IP.
    pub fn relay_config(&self) -> relay::Config {
        relay::Config {
            max_reservations: self.max_reservations,
            max_reservations_per_peer: self.max_reservations_per_peer,
            reservation_duration: self.reservation_duration,
            max_circuits: self.max_circuits,
            // libp2p-relay 0.22 refuses a circuit only when a peer already
            // has *more* than this many (`>`, not `>=`): one less makes the
            // configured number exact (a test holds it to that).
            max_circuits_per_peer: self.max_circuits_per_peer.saturating_sub(1),
            max_circuit_duration: self.max_circuit_duration,
            max_circuit_bytes: self.max_circuit_bytes,
            ..relay::Config::default()
        }
    }
}

/// NAT traversal settings (`[nat]` in node.toml).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NatConfig {
    /// Ask AutoNAT servers whether our addresses are reachable.
    pub autonat: bool,
    /// Answer others' AutoNAT requests.
    pub autonat_server: bool,
    /// Serve circuit relay v2 with these limits.
    pub relay_server: Option<RelayLimits>,
    pub use_relays: UseRelays,
    /// Relays to use (with `/p2p/`), besides bootstrap nodes that relay.
    pub relays: Vec<Multiaddr>,
    /// Reservations held at once.
    pub max_relays: usize,
    pub hole_punching: bool,
    pub upnp: bool,
}

impl NatConfig {
    /// Everything off: what [`NetConfig::new`] starts with (node.toml turns
    /// the parts on).
    pub fn off() -> Self {
        NatConfig {
            autonat: false,
            autonat_server: false,
            relay_server: None,
            use_relays: UseRelays::Never,
            relays: Vec::new(),
            max_relays: 2,
            hole_punching: false,
            upnp: false,
        }
    }
}

/// What AutoNAT says about us.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Reachability {
    /// No AutoNAT answer yet (or AutoNAT is off).
    Unknown,
    /// A server dialled one of our addresses back.
    Public,
    /// Servers tried and none of our addresses could be dialled.
    Private,
}

/// How a peer's link is carried (`abgp peers`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Path {
    Direct,
    /// Only through a relay; hole punching failed or is off.
    Relayed,
    /// Through a relay while hole punching is being tried.
    Punching,
}

/// A relay we hold (or try to hold) a reservation on.
#[derive(Debug, Clone)]
struct RelaySlot {
    addr: Multiaddr,
    configured: bool,
    listener: Option<ListenerId>,
    /// The relayed addresses the reservation gave us.
    reserved: Vec<Multiaddr>,
    failures: u32,
    retry_at: Option<Instant>,
    last_error: Option<String>,
    /// We gave the reservation up (we became reachable): its listener is
    /// closing, which is not a failure.
    dropping: bool,
}

/// Where a reservation on a relay stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum RelayState {
    /// Granted: we are reachable through it.
    Reserved,
    /// Asked for, no answer yet.
    Requesting,
    /// Failed; asked for again after the back-off.
    Waiting,
    /// Not asked for (we need no relay, or enough others are held).
    Unused,
}

/// A relay as the admin API shows it.
#[derive(Debug, Clone, Serialize)]
pub struct RelayView {
    pub peer_id: String,
    pub address: String,
    pub configured: bool,
    pub state: RelayState,
    pub relayed_addresses: Vec<String>,
    pub failures: u32,
    pub last_error: Option<String>,
}

/// Counters of NAT traversal (`abgp status`, the admin API).
#[derive(Debug, Clone, Default, Serialize)]
pub struct NatStats {
    pub autonat_tests_ok: u64,
    pub autonat_tests_failed: u64,
    pub reservations_accepted: u64,
    pub reservations_failed: u64,
    pub punches_ok: u64,
    pub punches_failed: u64,
    pub relayed_connections_retired: u64,
    pub requests_resent: u64,
    /// As a relay: reservations and circuits we accepted and denied.
    pub relay_reservations_accepted: u64,
    pub relay_reservations_denied: u64,
    pub relay_circuits_accepted: u64,
    pub relay_circuits_denied: u64,
    pub relay_circuits_closed: u64,
    /// Accepted less closed (filled in by [`Net::nat_view`]).
    pub relay_circuits_active: u64,
}

/// NAT traversal as the admin API shows it.
#[derive(Debug, Clone, Serialize)]
pub struct NatView {
    pub reachability: Reachability,
    /// Addresses an AutoNAT server dialled back.
    pub confirmed: Vec<String>,
    /// Addresses AutoNAT servers could not dial.
    pub unreachable: Vec<String>,
    pub autonat: bool,
    pub autonat_server: bool,
    pub relay_server: bool,
    pub use_relays: UseRelays,
    pub hole_punching: bool,
    pub upnp: bool,
    pub relays: Vec<RelayView>,
    pub stats: NatStats,
}

/// The NAT traversal state of a [`Net`].
#[derive(Debug, Default)]
pub struct NatState {
    relays: BTreeMap<PeerId, RelaySlot>,
    confirmed: Vec<Multiaddr>,
    unreachable: Vec<Multiaddr>,
    pub stats: NatStats,
    logged: Option<Reachability>,
}

impl NatState {
    pub fn reachability(&self) -> Reachability {
        if !self.confirmed.is_empty() {
            Reachability::Public
        } else if !self.unreachable.is_empty() {
            Reachability::Private
        } else {
            Reachability::Unknown
        }
    }

    fn add_candidate(&mut self, peer: PeerId, addr: Multiaddr, configured: bool) -> bool {
        if let Some(s) = self.relays.get_mut(&peer) {
            s.configured |= configured;
            return false;
        }
        if self.relays.len() >= MAX_RELAY_CANDIDATES {
            return false;
        }
        self.relays.insert(
            peer,
            RelaySlot {
                addr,
                configured,
                listener: None,
                reserved: Vec::new(),
                failures: 0,
                retry_at: None,
                last_error: None,
                dropping: false,
            },
        );
        true
    }

    fn slot_of(&mut self, id: ListenerId) -> Option<(PeerId, &mut RelaySlot)> {
        self.relays
            .iter_mut()
            .find(|(_, s)| s.listener == Some(id))
            .map(|(p, s)| (*p, s))
    }
}

/// Whether an address is on the public internet: not private (RFC 1918,
/// unique local), shared (RFC 6598, carrier-grade NAT), loopback,
/// link-local or unspecified. DNS names count as public.
pub fn is_public(a: &Multiaddr) -> bool {
    match a.iter().next() {
        Some(Protocol::Ip4(ip)) => {
            let [a, b, ..] = ip.octets();
            !(ip.is_private()
                || ip.is_loopback()
                || ip.is_link_local()
                || ip.is_unspecified()
                || ip.is_broadcast()
                || ip.is_multicast()
                || (a == 100 && (64..128).contains(&b)))
        }
        Some(Protocol::Ip6(ip)) => {
            let first = ip.segments()[0];
            !(ip.is_loopback()
                || ip.is_unspecified()
                || ip.is_multicast()
                || (first & 0xfe00) == 0xfc00
                || (first & 0xffc0) == 0xfe80)
        }
        Some(Protocol::Dns(_) | Protocol::Dns4(_) | Protocol::Dns6(_)) => true,
        _ => false,
    }
}

/// Adds `a` to a list of judged addresses, once, dropping the oldest past
/// [`MAX_JUDGED`].
pub(super) fn keep_judged(list: &mut Vec<Multiaddr>, a: Multiaddr) {
    if list.contains(&a) {
        return;
    }
    if list.len() >= MAX_JUDGED {
        list.remove(0);
    }
    list.push(a);
}

/// Whether an address goes through a relay.
pub fn is_relayed(a: &Multiaddr) -> bool {
    a.iter().any(|p| p == Protocol::P2pCircuit)
}

impl Net {
    /// Whether we want relay reservations now: in `auto`, when AutoNAT
    /// found us unreachable, or before it has said anything when none of
    /// the addresses we listen on is a public one (a laptop behind a home
    /// router: no need to wait the ~12 s AutoNAT takes). A node that
    /// listens on loopback alone (a federation on one machine) needs none.
    fn wants_relays(&self) -> bool {
        match self.cfg.nat.use_relays {
            UseRelays::Always => true,
            UseRelays::Never => false,
            UseRelays::Auto => match self.nat.reachability() {
                Reachability::Private => true,
                Reachability::Public => false,
                Reachability::Unknown => {
                    !self.loopback_only()
                        && !self.listening.is_empty()
                        && !self.listening.iter().any(is_public)
                        && !self
                            .swarm
                            .external_addresses()
                            .any(|a| !is_relayed(a) && is_public(a))
                }
            },
        }
    }

    /// Adds the configured relays to the book and dials them.
    pub(super) fn add_configured_relays(&mut self) {
        for a in self.cfg.nat.relays.clone() {
            let Some((p, bare)) = self.add_configured_peer(&a) else {
                continue;
            };
            self.nat.add_candidate(p, bare, true);
            self.probe(p);
        }
    }

    /// Identify says `peer` serves relaying: a bootstrap node or a
    /// configured relay becomes a candidate.
    pub(super) fn on_relay_identified(&mut self, peer: PeerId, bootstrap: bool) {
        if self.nat.relays.contains_key(&peer) {
            // A configured relay is up: its reservation can be asked for.
            self.nat_tick(Instant::now());
            return;
        }
        if !bootstrap {
            return;
        }
        let Some(addr) = self
            .addresses_of(&peer)
            .into_iter()
            .find(|a| !is_relayed(a))
        else {
            return;
        };
        if self.nat.add_candidate(peer, addr, false) {
            tracing::debug!(%peer, "relay candidate");
            self.nat_tick(Instant::now());
        }
    }

    /// Takes or drops reservations as reachability asks; retries failed
    /// ones after their back-off; closes relayed connections overtaken by
    /// direct ones. Called every second and when something changed.
    pub fn nat_tick(&mut self, now: Instant) {
        let peers: Vec<PeerId> = self.links.keys().copied().collect();
        for p in peers {
            self.retire_relayed(p, now);
        }
        let want = self.wants_relays();
        let max = self.cfg.nat.max_relays;
        let active = self
            .nat
            .relays
            .values()
            .filter(|s| s.listener.is_some())
            .count();
        if !want {
            let mut gone = Vec::new();
            for s in self.nat.relays.values_mut() {
                if let Some(id) = s.listener.filter(|_| !s.dropping) {
                    s.dropping = true;
                    gone.push((id, std::mem::take(&mut s.reserved)));
                }
            }
            for (id, addrs) in gone {
                tracing::info!("reachable without relays; giving a reservation up");
                for a in &addrs {
                    self.swarm.remove_external_address(a);
                }
                self.swarm.remove_listener(id);
            }
            return;
        }
        let mut room = max.saturating_sub(active);
        // Configured relays first.
        let mut order: Vec<(bool, PeerId)> = self
            .nat
            .relays
            .iter()
            .filter(|(_, s)| s.listener.is_none() && s.retry_at.is_none_or(|t| t <= now))
            .map(|(p, s)| (!s.configured, *p))
            .collect();
        order.sort();
        for (_, peer) in order {
            if room == 0 {
                break;
            }
            let Some(slot) = self.nat.relays.get(&peer) else {
                continue;
            };
            let addr = slot
                .addr
                .clone()
                .with(Protocol::P2p(peer))
                .with(Protocol::P2pCircuit);
            match self.swarm.listen_on(addr.clone()) {
                Ok(id) => {
                    tracing::info!(relay = %peer, "asking for a relay reservation");
                    if let Some(s) = self.nat.relays.get_mut(&peer) {
                        s.listener = Some(id);
                        s.retry_at = None;
                    }
                    room -= 1;
                }
                Err(e) => {
                    tracing::warn!(relay = %peer, error = %e, "cannot listen through the relay");
                    self.reservation_failed(peer, e.to_string(), now);
                }
            }
        }
    }

    fn reservation_failed(&mut self, peer: PeerId, error: String, now: Instant) {
        self.nat.stats.reservations_failed += 1;
        if let Some(s) = self.nat.relays.get_mut(&peer) {
            s.listener = None;
            s.reserved.clear();
            s.failures = s.failures.saturating_add(1);
            let backoff = RESERVE_RETRY_MIN
                .saturating_mul(1u32 << s.failures.min(8))
                .min(RESERVE_RETRY_MAX);
            s.retry_at = Some(now + backoff);
            s.last_error = Some(error);
        }
    }

    /// A listener came up: a relay reservation if it is one of ours.
    /// Returns whether it was.
    pub(super) fn on_relay_listen_addr(&mut self, id: ListenerId, addr: &Multiaddr) -> bool {
        let Some((peer, slot)) = self.nat.slot_of(id) else {
            return false;
        };
        if !slot.reserved.contains(addr) {
            slot.reserved.push(addr.clone());
        }
        slot.failures = 0;
        slot.last_error = None;
        tracing::info!(relay = %peer, %addr, "reachable through a relay");
        // Others must learn the relayed address: announce it whether or not
        // listen addresses are announced, and publish the membership record
        // again so it carries the address.
        self.swarm.add_external_address(addr.clone());
        self.republish();
        true
    }

    /// A listener closed: a reservation lost, to be retried after a back-off.
    pub(super) fn on_relay_listener_closed(&mut self, id: ListenerId, why: &str) -> bool {
        let Some((peer, slot)) = self.nat.slot_of(id) else {
            return false;
        };
        let gone = std::mem::take(&mut slot.reserved);
        if std::mem::take(&mut slot.dropping) {
            slot.listener = None;
            return true;
        }
        for a in &gone {
            self.swarm.remove_external_address(a);
        }
        tracing::info!(relay = %peer, reason = %why, "relay reservation ended");
        self.reservation_failed(peer, why.to_string(), Instant::now());
        true
    }

    /// Closes the relayed connections of a link that has a direct one, once
    /// no call is in flight over the link (or [`RETIRE_AFTER`] after the
    /// direct connection came up).
    pub(super) fn retire_relayed(&mut self, peer: PeerId, now: Instant) {
        let Some(link) = self.links.get(&peer) else {
            return;
        };
        let Some(since) = link.direct_since() else {
            return;
        };
        let relayed: Vec<ConnectionId> = link
            .live_conns()
            .filter(|c| c.relayed)
            .map(|c| c.id)
            .collect();
        if relayed.is_empty() {
            return;
        }
        // Not while the session is being opened (its OPEN must not be
        // lost: it is not sent twice), nor with a routing message of ours
        // in flight or queued: those wait for a quiet moment, which comes
        // after every acknowledgement. Calls in flight are waited for up
        // to RETIRE_AFTER.
        if (link.reported && !self.gate.has_session(&peer)) || !link.idle() {
            return;
        }
        let node = node_id_of(&peer).ok();
        let calls = node.is_some_and(|n| {
            self.call_out.values().any(|(p, _, _)| *p == n)
                || self.call_answers.keys().any(|(p, _)| *p == n)
        });
        if calls && now.saturating_duration_since(since) < RETIRE_AFTER {
            return;
        }
        for id in relayed {
            if self.swarm.close_connection(id) {
                self.nat.stats.relayed_connections_retired += 1;
                tracing::debug!(%peer, "closing a relayed connection: a direct one is up");
            }
        }
    }

    /// Publishes the membership record again (our addresses changed).
    fn republish(&mut self) {
        if !self.cfg.provide {
            return;
        }
        let key = self.fed_key.clone();
        if let Some(k) = self.swarm.behaviour_mut().kad.as_mut() {
            match k.start_providing(key.clone()) {
                Ok(_) => self.providing = true,
                Err(e) => tracing::warn!(error = %e, "cannot announce federation membership"),
            }
            k.get_providers(key);
        }
    }

    pub(super) fn on_autonat(&mut self, e: autonat::v2::client::Event) {
        let a = e.tested_addr;
        // Identify's "observed address" of a relayed connection is the
        // relay's or no host at all: not an address of ours to judge.
        if is_relayed(&a) || !matches!(a.iter().next(), Some(Protocol::Ip4(_) | Protocol::Ip6(_))) {
            return;
        }
        match e.result {
            Ok(()) => {
                self.nat.stats.autonat_tests_ok += 1;
                self.nat.unreachable.retain(|u| *u != a);
                keep_judged(&mut self.nat.confirmed, a);
            }
            Err(err) => {
                self.nat.stats.autonat_tests_failed += 1;
                tracing::debug!(addr = %a, server = %e.server, error = %err, "AutoNAT: not reachable");
                if !self.nat.confirmed.contains(&a) {
                    keep_judged(&mut self.nat.unreachable, a);
                }
            }
        }
        let r = self.nat.reachability();
        if self.nat.logged != Some(r) {
            self.nat.logged = Some(r);
            match r {
                Reachability::Public => tracing::info!(
                    addresses = ?self.nat.confirmed,
                    "AutoNAT: this node is reachable from outside"
                ),
                Reachability::Private => tracing::info!(
                    "AutoNAT: this node is not reachable from outside; relays will be used"
                ),
                Reachability::Unknown => {}
            }
        }
        self.nat_tick(Instant::now());
    }

    pub(super) fn on_dcutr(&mut self, e: dcutr::Event) {
        let peer = e.remote_peer_id;
        match e.result {
            Ok(_) => {
                self.nat.stats.punches_ok += 1;
                tracing::info!(%peer, "hole punched: direct connection");
                self.retire_relayed(peer, Instant::now());
            }
            Err(err) => {
                self.nat.stats.punches_failed += 1;
                tracing::info!(%peer, error = %err, "hole punching failed; staying on the relay");
                if let Some(l) = self.links.get_mut(&peer) {
                    l.punch_failed = true;
                }
            }
        }
    }

    pub(super) fn on_relay_client(&mut self, e: relay::client::Event) {
        match e {
            relay::client::Event::ReservationReqAccepted {
                relay_peer_id,
                renewal,
                ..
            } => {
                if !renewal {
                    self.nat.stats.reservations_accepted += 1;
                }
                tracing::debug!(relay = %relay_peer_id, renewal, "relay reservation accepted");
            }
            other => tracing::debug!(event = ?other, "relay client"),
        }
    }

    pub(super) fn on_relay_server(&mut self, e: relay::Event) {
        let s = &mut self.nat.stats;
        match e {
            relay::Event::ReservationReqAccepted { .. } => s.relay_reservations_accepted += 1,
            relay::Event::ReservationReqDenied { src_peer_id, .. } => {
                s.relay_reservations_denied += 1;
                tracing::debug!(peer = %src_peer_id, "relay reservation denied");
            }
            relay::Event::CircuitReqAccepted { .. } => s.relay_circuits_accepted += 1,
            relay::Event::CircuitReqDenied {
                src_peer_id,
                dst_peer_id,
                status,
            } => {
                s.relay_circuits_denied += 1;
                tracing::info!(src = %src_peer_id, dst = %dst_peer_id, ?status, "relay circuit denied");
            }
            relay::Event::CircuitClosed {
                src_peer_id,
                dst_peer_id,
                error,
            } => {
                s.relay_circuits_closed += 1;
                tracing::debug!(src = %src_peer_id, dst = %dst_peer_id, ?error, "relay circuit closed");
            }
            _ => {}
        }
    }

    pub(super) fn on_upnp(&mut self, e: upnp::Event) {
        match e {
            upnp::Event::NewExternalAddr { external_addr, .. } => {
                tracing::info!(addr = %external_addr, "UPnP: port mapped")
            }
            upnp::Event::ExpiredExternalAddr { external_addr, .. } => {
                tracing::info!(addr = %external_addr, "UPnP: port mapping expired")
            }
            upnp::Event::GatewayNotFound => tracing::info!("UPnP: no gateway found"),
            upnp::Event::NonRoutableGateway => {
                tracing::info!("UPnP: the gateway is not on the public internet")
            }
        }
    }

    /// Our addresses changed (a laptop on another network): what AutoNAT
    /// said about the old ones no longer tells where we are.
    pub(super) fn forget_reachability(&mut self) {
        self.nat.confirmed.clear();
        self.nat.unreachable.clear();
        self.nat.logged = None;
    }

    /// NAT traversal for the admin API.
    pub fn nat_view(&self) -> NatView {
        let now = Instant::now();
        let relays = self
            .nat
            .relays
            .iter()
            .map(|(p, s)| RelayView {
                peer_id: p.to_string(),
                address: s.addr.to_string(),
                configured: s.configured,
                state: if !s.reserved.is_empty() {
                    RelayState::Reserved
                } else if s.listener.is_some() {
                    RelayState::Requesting
                } else if s.retry_at.is_some_and(|t| t > now) {
                    RelayState::Waiting
                } else {
                    RelayState::Unused
                },
                relayed_addresses: s.reserved.iter().map(|a| a.to_string()).collect(),
                failures: s.failures,
                last_error: s.last_error.clone(),
            })
            .collect();
        let nat = &self.cfg.nat;
        NatView {
            reachability: self.nat.reachability(),
            confirmed: self.nat.confirmed.iter().map(|a| a.to_string()).collect(),
            unreachable: self.nat.unreachable.iter().map(|a| a.to_string()).collect(),
            autonat: nat.autonat,
            autonat_server: nat.autonat_server,
            relay_server: nat.relay_server.is_some(),
            use_relays: nat.use_relays,
            hole_punching: nat.hole_punching,
            upnp: nat.upnp,
            relays,
            stats: NatStats {
                // Every accepted circuit ends with one CircuitClosed.
                relay_circuits_active: self
                    .nat
                    .stats
                    .relay_circuits_accepted
                    .saturating_sub(self.nat.stats.relay_circuits_closed),
                ..self.nat.stats.clone()
            },
        }
    }

    /// How the link to `peer` is carried, if there is a live connection.
    pub fn path_of(&self, peer: &PeerId) -> Option<Path> {
        let l = self.links.get(peer)?;
        if !l.has_live() {
            return None;
        }
        let oldest_relayed = l.live_conns().filter(|c| c.relayed).map(|c| c.since).min();
        Some(if l.live_conns().any(|c| !c.relayed) {
            Path::Direct
        } else if self.cfg.nat.hole_punching
            && !l.punch_failed
            && oldest_relayed.is_some_and(|t| t.elapsed() < PUNCH_WINDOW)
        {
            Path::Punching
        } else {
            Path::Relayed
        })
    }
}
