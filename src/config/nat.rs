//! `[nat]`: NAT traversal (docs/operations.md, "Behind NAT" and "Running
//! a relay"): AutoNAT, the circuit relay a node serves and its limits, the
//! relays a node behind NAT takes reservations on, hole punching and UPnP.
//! The node turns it into the network adapter's settings.

use std::time::Duration;

use libp2p::Multiaddr;
use serde::{Deserialize, Serialize};

use super::Problem;
use super::values;

/// Whether this node serves something to others: `"auto"` (bootstrap
/// nodes do), `"on"` or `"off"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Serve {
    #[default]
    Auto,
    On,
    Off,
}

impl Serve {
    /// Whether it is served by a node that is (or is not) a bootstrap node.
    pub fn on(self, bootstrap: bool) -> bool {
        match self {
            Serve::Auto => bootstrap,
            Serve::On => true,
            Serve::Off => false,
        }
    }
}

/// When to take relay reservations.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum RelayUse {
    /// When AutoNAT finds none of our addresses reachable from outside, or,
    /// until it has answered, when we listen on no public address.
    #[default]
    Auto,
    Always,
    Never,
}

/// The `[nat]` section.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct NatSection {
    pub autonat: bool,
    pub autonat_server: Serve,
    pub relay_server: Serve,
    pub use_relays: RelayUse,
    pub relays: Vec<Multiaddr>,
    pub max_relays: usize,
    pub hole_punching: bool,
    pub upnp: bool,
    pub relay_max_reservations: usize,
    pub relay_max_reservations_per_peer: usize,
    #[serde(deserialize_with = "values::secs", serialize_with = "values::ser")]
    pub relay_reservation_duration: Duration,
    pub relay_max_circuits: usize,
    pub relay_max_circuits_per_peer: usize,
    #[serde(deserialize_with = "values::secs", serialize_with = "values::ser")]
    pub relay_max_circuit_duration: Duration,
    pub relay_max_circuit_kib: u64,
}

impl Default for NatSection {
    fn default() -> Self {
        NatSection {
            autonat: true,
            autonat_server: Serve::Auto,
            relay_server: Serve::Auto,
            use_relays: RelayUse::Auto,
            relays: Vec::new(),
            max_relays: 2,
            hole_punching: true,
            upnp: false,
            relay_max_reservations: 128,
            relay_max_reservations_per_peer: 4,
            relay_reservation_duration: Duration::from_secs(3600),
            relay_max_circuits: 64,
            relay_max_circuits_per_peer: 8,
            relay_max_circuit_duration: Duration::from_secs(3600),
            relay_max_circuit_kib: 65_536,
        }
    }
}

/// What makes no sense in `[nat]`.
pub fn problems(n: &NatSection) -> Vec<Problem> {
    let mut out = Vec::new();
    for (key, v, min) in [
        ("nat.max_relays", n.max_relays, 1),
        ("nat.relay_max_reservations", n.relay_max_reservations, 1),
        (
            "nat.relay_max_reservations_per_peer",
            n.relay_max_reservations_per_peer,
            1,
        ),
        ("nat.relay_max_circuits", n.relay_max_circuits, 1),
        (
            "nat.relay_max_circuits_per_peer",
            n.relay_max_circuits_per_peer,
            1,
        ),
    ] {
        if v < min {
            out.push(Problem::new(key, format!("must be at least {min}")));
        }
    }
    if n.max_relays > 8 {
        out.push(Problem::new(
            "nat.max_relays",
            "at most 8: each reservation keeps a connection open",
        ));
    }
    if n.relay_max_circuit_kib == 0 {
        out.push(Problem::new(
            "nat.relay_max_circuit_kib",
            "must be at least 1",
        ));
    }
    for (key, d) in [
        (
            "nat.relay_reservation_duration",
            n.relay_reservation_duration,
        ),
        (
            "nat.relay_max_circuit_duration",
            n.relay_max_circuit_duration,
        ),
    ] {
        if d < Duration::from_secs(10) {
            out.push(Problem::new(key, "must be at least 10s"));
        } else if d > Duration::from_secs(86_400) {
            out.push(Problem::new(key, "must be at most a day"));
        }
    }
    for (i, a) in n.relays.iter().enumerate() {
        if crate::identity::peer_of_addr(a).is_none() {
            out.push(Problem::new(
                format!("nat.relays[{i}]"),
                format!("{a} must end with /p2p/<peer id> so the relay is authenticated"),
            ));
        } else if a
            .iter()
            .any(|p| p == libp2p::multiaddr::Protocol::P2pCircuit)
        {
            out.push(Problem::new(
                format!("nat.relays[{i}]"),
                format!("{a} is itself relayed; a relay must be dialled directly"),
            ));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::parse_for_test as parse;

    #[test]
    fn defaults_serve_on_bootstrap_nodes_and_punch_holes() {
        let c = parse("").unwrap();
        let n = &c.nat;
        assert!(n.autonat && n.hole_punching && !n.upnp);
        assert!(n.relay_server.on(true) && !n.relay_server.on(false));
        assert!(n.autonat_server.on(true) && !n.autonat_server.on(false));
        assert_eq!(n.use_relays, RelayUse::Auto);
        assert_eq!(n.relay_max_circuit_kib, 65_536);
    }

    #[test]
    fn every_key_is_read() {
        let c = parse(
            "[nat]\nautonat = false\nautonat_server = \"on\"\nrelay_server = \"off\"\n\
             use_relays = \"always\"\nrelays = [\"/ip4/10.0.0.1/tcp/4100/p2p/12D3KooWLNgzFYd5m7PWaMnWD5gkyKiqRGqBKkvx5eqSDkjvVJGH\"]\n\
             max_relays = 3\nhole_punching = false\nupnp = true\nrelay_max_reservations = 9\n\
             relay_max_reservations_per_peer = 2\nrelay_reservation_duration = \"10m\"\n\
             relay_max_circuits = 5\nrelay_max_circuits_per_peer = 1\n\
             relay_max_circuit_duration = \"30s\"\nrelay_max_circuit_kib = 64\n",
        )
        .unwrap();
        let n = &c.nat;
        assert!(!n.autonat && !n.hole_punching && n.upnp);
        assert_eq!((n.autonat_server, n.relay_server), (Serve::On, Serve::Off));
        assert_eq!(n.use_relays, RelayUse::Always);
        assert_eq!(n.relays.len(), 1);
        assert_eq!(n.max_relays, 3);
        assert_eq!(
            (
                n.relay_max_reservations,
                n.relay_max_reservations_per_peer,
                n.relay_max_circuits,
                n.relay_max_circuits_per_peer,
                n.relay_max_circuit_kib
            ),
            (9, 2, 5, 1, 64)
        );
        assert_eq!(n.relay_reservation_duration, Duration::from_secs(600));
        assert_eq!(n.relay_max_circuit_duration, Duration::from_secs(30));
    }

    #[test]
    fn bad_values_are_reported_with_their_keys() {
        let e = parse(
            "[nat]\nmax_relays = 0\nrelay_max_circuits = 0\nrelay_max_circuit_kib = 0\n\
             relay_max_circuit_duration = \"1s\"\nrelays = [\"/ip4/10.0.0.1/tcp/4100\"]\n",
        )
        .unwrap_err();
        for key in [
            "nat.max_relays",
            "nat.relay_max_circuits",
            "nat.relay_max_circuit_kib",
            "nat.relay_max_circuit_duration",
            "nat.relays[0]",
        ] {
            assert!(e.contains(key), "{key} not in {e}");
        }
        assert!(parse("[nat]\nuse_relays = \"sometimes\"\n").is_err());
        assert!(parse("[nat]\nnope = 1\n").is_err());
    }
}
