//! The address book and the discovery dials: addresses per peer (bounded),
//! what identify reports, probing what mDNS and Kademlia find (rate-limited),
//! and the periodic DHT queries.

use super::*;

/// Most addresses remembered per peer, and peers in the address book.
pub(super) const MAX_ADDRS_PER_PEER: usize = 8;
pub(super) const MAX_BOOK_PEERS: usize = 4096;
/// Events produced by one swarm event or call, waiting for [`Net::next`].
pub(super) const MAX_PENDING: usize = 4096;
/// Dials to discovered peers (mDNS, Kademlia, bootstrap): at most this
/// many a second, in bursts of `PROBE_BURST`; the rest wait for the next
/// query, which reports them again.
pub(super) const PROBE_RATE: f64 = 8.0;
pub(super) const PROBE_BURST: f64 = 32.0;

/// A token bucket for probe dials: [`PROBE_RATE`] a second, bursts of
/// [`PROBE_BURST`].
#[derive(Debug, Clone, Copy)]
pub(super) struct ProbeBudget {
    tokens: f64,
    at: std::time::Instant,
}

impl ProbeBudget {
    pub(super) fn new(now: std::time::Instant) -> Self {
        ProbeBudget {
            tokens: PROBE_BURST,
            at: now,
        }
    }

    pub(super) fn allow(&mut self, now: std::time::Instant) -> bool {
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
/// broadcast; or such an address of a relay followed by `/p2p/<relay>/p2p-circuit`
/// (one relay, not a chain). (Private and loopback addresses stay:
/// federations run on LANs and on one machine.)
pub fn dialable(a: &Multiaddr) -> bool {
    let parts: Vec<Protocol<'_>> = a.iter().collect();
    match parts.iter().position(|p| *p == Protocol::P2pCircuit) {
        None => dialable_direct(a),
        Some(i) => {
            // `<relay address>/p2p/<relay>/p2p-circuit`, and nothing after.
            i + 1 == parts.len()
                && i >= 1
                && matches!(parts[i - 1], Protocol::P2p(_))
                && dialable_direct(&parts[..i - 1].iter().cloned().collect())
        }
    }
}

fn dialable_direct(a: &Multiaddr) -> bool {
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

/// `addr` without its trailing `/p2p/<peer>` (a relayed address keeps the
/// `/p2p/<relay>` before `/p2p-circuit`).
fn without_peer(mut addr: Multiaddr) -> Multiaddr {
    if matches!(addr.iter().last(), Some(Protocol::P2p(_))) {
        addr.pop();
    }
    addr
}

/// A loopback IP address (127.0.0.0/8, ::1).
pub fn is_loopback(a: &Multiaddr) -> bool {
    match a.iter().next() {
        Some(Protocol::Ip4(ip)) => ip.is_loopback(),
        Some(Protocol::Ip6(ip)) => ip.is_loopback(),
        _ => false,
    }
}

impl Net {
    /// Every configured listen address is loopback: a node of a federation
    /// on one machine, for which others' loopback addresses are real.
    pub(super) fn loopback_only(&self) -> bool {
        !self.cfg.listen.is_empty() && self.cfg.listen.iter().all(is_loopback)
    }

    /// Adds known addresses for a peer (configured neighbours).
    pub fn add_addresses(&mut self, peer: PeerId, addrs: impl IntoIterator<Item = Multiaddr>) {
        for a in addrs {
            self.remember_configured(peer, a);
        }
    }

    /// Whether an address someone told us about can reach them: dialable
    /// on our transport, not another machine's loopback address, not one
    /// of our own (those would reach us or a neighbour of ours). `addr`
    /// has no trailing `/p2p/`.
    fn reaches_peer(&self, addr: &Multiaddr) -> bool {
        let elsewhere =
            (is_loopback(addr) && !self.loopback_only()) || self.listening.contains(addr);
        self.usable(addr) && !elsewhere
    }

    /// Dialable on our transport.
    fn usable(&self, addr: &Multiaddr) -> bool {
        if self.cfg.transport == Transport::Memory {
            matches!(addr.iter().next(), Some(Protocol::Memory(n)) if n != 0)
                && addr.iter().filter(|p| *p == Protocol::P2pCircuit).count() <= 1
        } else {
            dialable(addr)
        }
    }

    /// Remembers an address someone told us about (identify, a dial that
    /// worked, the DHT), if it can reach the peer.
    pub(super) fn remember(&mut self, peer: PeerId, addr: Multiaddr) {
        let addr = without_peer(addr);
        if !self.reaches_peer(&addr) {
            self.addresses_refused += 1;
            return;
        }
        self.store_addr(peer, addr);
    }

    /// A bootstrap node or relay from node.toml (an address ending in
    /// `/p2p/<peer>`): its peer, remembered at the address without its
    /// `/p2p/` parts, which is returned. `None` without a peer id.
    pub(super) fn add_configured_peer(&mut self, a: &Multiaddr) -> Option<(PeerId, Multiaddr)> {
        let p = crate::identity::peer_of_addr(a)?;
        let bare: Multiaddr = a
            .iter()
            .filter(|p| !matches!(p, Protocol::P2p(_)))
            .collect();
        self.remember_configured(p, bare.clone());
        Some((p, bare))
    }

    /// Remembers an address from node.toml (a neighbour, a bootstrap node,
    /// a relay): the operator knows where it is, loopback included.
    pub(super) fn remember_configured(&mut self, peer: PeerId, addr: Multiaddr) {
        let addr = without_peer(addr);
        if !self.usable(&addr) {
            self.addresses_refused += 1;
            return;
        }
        self.store_addr(peer, addr);
    }

    fn store_addr(&mut self, peer: PeerId, addr: Multiaddr) {
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

    /// Dials a discovered peer so identify can tell what it is, within the
    /// probe budget (`PROBE_RATE` a second).
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

    pub(super) fn on_identified(&mut self, peer: PeerId, info: identify::Info) {
        for a in &info.listen_addrs {
            self.remember(peer, a.clone());
        }
        let speaks_kad = info.protocols.contains(&KAD_PROTOCOL);
        if speaks_kad {
            // Only what can reach the peer: the DHT hands these to
            // everyone who asks.
            let good: Vec<Multiaddr> = info
                .listen_addrs
                .iter()
                .map(|a| without_peer(a.clone()))
                .filter(|a| self.reaches_peer(a))
                .collect();
            if let Some(k) = self.swarm.behaviour_mut().kad.as_mut() {
                for a in good {
                    k.add_address(&peer, a);
                }
            }
        }
        if info.protocols.contains(&libp2p::relay::HOP_PROTOCOL_NAME) {
            self.on_relay_identified(peer, is_bootstrap(&info.agent_version));
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
        let relay = PeerId::random();
        let good = format!("/ip4/10.0.0.1/tcp/4100/p2p/{relay}/p2p-circuit");
        assert!(dialable(&good.parse().unwrap()), "{good}");
        for bad in [
            // No relay named, a relay with no address, a chain of relays,
            // a relay at an unspecified address.
            "/ip4/10.0.0.1/tcp/4100/p2p-circuit".to_string(),
            format!("/p2p/{relay}/p2p-circuit"),
            format!("{good}/p2p/{relay}/p2p-circuit"),
            format!("/ip4/0.0.0.0/tcp/4100/p2p/{relay}/p2p-circuit"),
        ] {
            assert!(!dialable(&bad.parse().unwrap()), "{bad}");
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
