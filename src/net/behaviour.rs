//! The libp2p [`libp2p::swarm::NetworkBehaviour`] of a
//! node and the swarm around it.
//!
//! | part | what it is for |
//! |---|---|
//! | `limits` | connection limits (total, incoming, pending, per peer) |
//! | `slot` | names each connection's peer for the codecs' [gate](super::gate) |
//! | `route` | the routing protocol: request-response with [`RouteCodec`] |
//! | `call` | the call protocol: request-response with [`CallCodec`], many in flight |
//! | `identify` | learns a peer's listen addresses, protocols and federation |
//! | `ping` | connection liveness for operators (sessions use their own hold timer) |
//! | `mdns` | finds peers on the local network (off on loopback-only hosts) |
//! | `kad` | the Kademlia DHT: bootstrap, and federation members as providers |
//! | `relay` | serves circuit relay v2 to nodes behind NAT (bootstrap nodes; limits in [`super::nat`]) |
//! | `relay_client` | takes reservations on relays and dials through them |
//! | `dcutr` | hole punching: upgrades a relayed connection to a direct one |
//! | `autonat` | AutoNAT v2 client: asks servers whether our addresses are reachable |
//! | `autonat_server` | AutoNAT v2 server: dials others' addresses back for them |
//! | `upnp` | asks a home router for a port mapping (off by default) |
//!
//! The behaviour decides nothing about sessions; [`super::Net`] translates
//! its events for the engine.

use std::time::Duration;

use libp2p::swarm::behaviour::toggle::Toggle;
use libp2p::{
    StreamProtocol, Swarm, SwarmBuilder, autonat, connection_limits, dcutr, identify,
    identity::Keypair, kad, mdns, noise, ping, relay, request_response, swarm::NetworkBehaviour,
    tcp, upnp, yamux,
};

use super::NetConfig;
use super::call_codec::{CALL_PROTOCOL, CallCodec};
use super::gate::{Gate, PeerSlot};
use super::route_codec::{ROUTE_PROTOCOL, RouteCodec};

/// The Kademlia protocol of agent-bgp's DHT, kept apart from the public
/// IPFS DHT so a federation's records stay among agent-bgp nodes.
pub const KAD_PROTOCOL: StreamProtocol = StreamProtocol::new("/agent-bgp/kad/1.0.0");

/// A TCP connection must be up, authenticated and multiplexed within this
/// (both ways). Under the 10 s an AutoNAT v2 server has to answer, so an
/// address behind a NAT that drops SYNs is reported unreachable rather
/// than timing out unanswered. (QUIC's handshake timeout is 5 s.)
pub const TCP_DIAL_TIMEOUT: Duration = Duration::from_secs(7);

/// Identify's protocol version string.
pub const IDENTIFY_PROTOCOL: &str = "/agent-bgp/id/1";

#[derive(NetworkBehaviour)]
pub struct Behaviour {
    pub limits: connection_limits::Behaviour,
    /// Must stay before `route` and `call`: it names the peer whose
    /// connection their codecs are bound to (see [`super::gate`]).
    pub slot: PeerSlot,
    pub route: request_response::Behaviour<RouteCodec>,
    pub call: request_response::Behaviour<CallCodec>,
    pub identify: identify::Behaviour,
    pub ping: ping::Behaviour,
    pub mdns: Toggle<mdns::tokio::Behaviour>,
    pub kad: Toggle<kad::Behaviour<kad::store::MemoryStore>>,
    pub relay: Toggle<relay::Behaviour>,
    pub relay_client: relay::client::Behaviour,
    pub dcutr: Toggle<dcutr::Behaviour>,
    pub autonat: Toggle<autonat::v2::client::Behaviour>,
    pub autonat_server: Toggle<autonat::v2::server::Behaviour>,
    pub upnp: Toggle<upnp::tokio::Behaviour>,
}

/// Why the swarm could not be built.
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    #[error("TCP transport: {0}")]
    Tcp(String),
    #[error("DNS resolver: {0}")]
    Dns(String),
    #[error("relay client transport: {0}")]
    Relay(String),
    #[error("behaviour: {0}")]
    Behaviour(String),
}

/// The identify agent version: names the federation, so discovery can skip
/// nodes of other federations without opening a session, and marks
/// bootstrap nodes, which serve the DHT and are not auto-peered.
pub fn agent_version(federation: &str, bootstrap: bool) -> String {
    let role = if bootstrap { " role=bootstrap" } else { "" };
    format!(
        "agent-bgp/{} fed={federation}{role}",
        env!("CARGO_PKG_VERSION")
    )
}

fn tokens(agent_version: &str) -> Option<std::str::SplitWhitespace<'_>> {
    agent_version
        .strip_prefix("agent-bgp/")
        .map(str::split_whitespace)
}

/// The federation an identify agent version names, if it is an agent-bgp node.
pub fn federation_of(agent_version: &str) -> Option<&str> {
    tokens(agent_version)?.find_map(|w| w.strip_prefix("fed="))
}

/// Whether an agent version is a bootstrap node's.
pub fn is_bootstrap(agent_version: &str) -> bool {
    tokens(agent_version).is_some_and(|mut t| t.any(|w| w == "role=bootstrap"))
}

fn build_behaviour(
    key: &Keypair,
    relay_client: relay::client::Behaviour,
    cfg: &NetConfig,
    gate: &Gate,
) -> Behaviour {
    let local = key.public().to_peer_id();
    let limits = connection_limits::Behaviour::new(
        connection_limits::ConnectionLimits::default()
            .with_max_established(Some(cfg.max_connections))
            .with_max_established_incoming(Some(cfg.max_incoming_connections))
            .with_max_pending_incoming(Some(cfg.max_pending_incoming))
            // Discovery can name many peers; dials in progress are capped.
            .with_max_pending_outgoing(Some(64))
            .with_max_established_per_peer(Some(cfg.max_connections_per_peer)),
    );
    let route = request_response::Behaviour::with_codec(
        RouteCodec::new(cfg.limits.clone(), gate.clone()),
        [(ROUTE_PROTOCOL, request_response::ProtocolSupport::Full)],
        request_response::Config::default()
            .with_request_timeout(cfg.request_timeout)
            // One routing request in flight per peer and direction, plus
            // slack for a peer whose requests race a reconnect.
            .with_max_concurrent_streams(16),
    );
    let call = request_response::Behaviour::with_codec(
        CallCodec::new(cfg.limits.clone(), gate.clone()),
        [(CALL_PROTOCOL, request_response::ProtocolSupport::Full)],
        request_response::Config::default()
            // A CALL's answer is held at most the hold time (1 s by
            // default) and results come as requests of their own, so the
            // timeout only bounds one message; a peer that stalls longer is
            // treated as gone for that call.
            .with_request_timeout(cfg.call_request_timeout)
            .with_max_concurrent_streams(cfg.max_concurrent_calls),
    );
    let identify = identify::Behaviour::new(
        identify::Config::new(IDENTIFY_PROTOCOL.into(), key.public())
            .with_agent_version(agent_version(&cfg.federation, cfg.bootstrap_node))
            .with_push_listen_addr_updates(true),
    );
    let ping = ping::Behaviour::new(ping::Config::new());
    let mdns = if cfg.mdns {
        let mc = mdns::Config {
            query_interval: cfg.mdns_query_interval,
            ..Default::default()
        };
        match mdns::tokio::Behaviour::new(mc, local) {
            Ok(m) => Some(m),
            Err(e) => {
                tracing::warn!(error = %e, "mDNS unavailable; continuing without it");
                None
            }
        }
    } else {
        None
    };
    let kad = cfg.kademlia.then(|| {
        let mut kc = kad::Config::new(KAD_PROTOCOL);
        // Membership is re-announced every query interval; records of
        // members that stopped doing so expire after a few intervals.
        kc.set_provider_publication_interval(Some(cfg.query_interval));
        kc.set_provider_record_ttl(Some(cfg.query_interval * 3 + Duration::from_secs(60)));
        kc.set_query_timeout(Duration::from_secs(30));
        let mut k = kad::Behaviour::with_config(local, kad::store::MemoryStore::new(local), kc);
        k.set_mode(Some(if cfg.kad_server {
            kad::Mode::Server
        } else {
            kad::Mode::Client
        }));
        k
    });
    let nat = &cfg.nat;
    let relay = nat
        .relay_server
        .as_ref()
        .map(|l| relay::Behaviour::new(local, l.relay_config()));
    // Probes a candidate address every 5 s (the crate's default).
    let autonat = nat.autonat.then(autonat::v2::client::Behaviour::default);
    Behaviour {
        limits,
        slot: gate.peer_slot(),
        route,
        call,
        identify,
        ping,
        mdns: Toggle::from(mdns),
        kad: Toggle::from(kad),
        relay: Toggle::from(relay),
        relay_client,
        dcutr: Toggle::from(nat.hole_punching.then(|| dcutr::Behaviour::new(local))),
        autonat: Toggle::from(autonat),
        autonat_server: Toggle::from(
            nat.autonat_server
                .then(autonat::v2::server::Behaviour::default),
        ),
        upnp: Toggle::from(nat.upnp.then(upnp::tokio::Behaviour::default)),
    }
}

/// Builds the swarm: TCP and QUIC, noise, yamux, DNS, and the relay
/// client; or the in-memory transport with noise and yamux and the relay
/// client ([`Transport::Memory`](super::Transport::Memory)).
pub fn build_swarm(
    key: Keypair,
    cfg: &NetConfig,
    gate: &Gate,
) -> Result<Swarm<Behaviour>, BuildError> {
    let idle = cfg.idle_connection_timeout;
    if cfg.transport == super::Transport::Memory {
        use libp2p::Transport;
        use libp2p::core::transport::MemoryTransport;
        use libp2p::core::upgrade::Version;
        let swarm = SwarmBuilder::with_existing_identity(key)
            .with_tokio()
            .with_other_transport(|key| {
                Ok(MemoryTransport::default()
                    .upgrade(Version::V1)
                    .authenticate(noise::Config::new(key)?)
                    .multiplex(yamux::Config::default()))
            })
            .map_err(|e| BuildError::Behaviour(e.to_string()))?
            .with_relay_client(noise::Config::new, yamux::Config::default)
            .map_err(|e| BuildError::Relay(e.to_string()))?
            .with_behaviour(|key, relay| build_behaviour(key, relay, cfg, gate))
            .map_err(|e| BuildError::Behaviour(e.to_string()))?
            .with_swarm_config(|c| c.with_idle_connection_timeout(idle))
            .build();
        return Ok(swarm);
    }
    let swarm = SwarmBuilder::with_existing_identity(key)
        .with_tokio()
        .with_quic()
        .with_other_transport(|key| {
            use libp2p::Transport;
            use libp2p::core::upgrade::Version;
            // As `with_tcp` builds it, with a deadline on connecting and
            // upgrading: a SYN into a NAT that drops it silently would
            // otherwise hang for two minutes of retries, longer than an
            // AutoNAT server has to report the address unreachable.
            Ok(
                tcp::tokio::Transport::new(tcp::Config::default().nodelay(true))
                    .upgrade(Version::V1Lazy)
                    .authenticate(noise::Config::new(key)?)
                    .multiplex(yamux::Config::default())
                    .timeout(TCP_DIAL_TIMEOUT),
            )
        })
        .map_err(|e| BuildError::Tcp(e.to_string()))?
        .with_dns()
        .map_err(|e| BuildError::Dns(e.to_string()))?
        // Dials and listens through relays (`/p2p-circuit` addresses).
        .with_relay_client(noise::Config::new, yamux::Config::default)
        .map_err(|e| BuildError::Relay(e.to_string()))?
        .with_behaviour(|key, relay| build_behaviour(key, relay, cfg, gate))
        .map_err(|e| BuildError::Behaviour(e.to_string()))?
        // Sessions keep their connection busy with keepalives; the idle
        // timeout only has to outlast the gap between two of them.
        .with_swarm_config(|c| c.with_idle_connection_timeout(idle))
        .build();
    Ok(swarm)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn agent_version_carries_the_federation() {
        assert_eq!(federation_of(&agent_version("acme", false)), Some("acme"));
        assert!(!is_bootstrap(&agent_version("acme", false)));
        assert!(is_bootstrap(&agent_version("acme", true)));
        assert_eq!(federation_of(&agent_version("acme", true)), Some("acme"));
        assert_eq!(federation_of("rust-libp2p/0.1"), None);
        assert_eq!(federation_of("agent-bgp/9.9 other=x"), None);
    }
}
