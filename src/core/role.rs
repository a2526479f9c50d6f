//! Neighbour roles and the only-to-customer marker, in the manner of
//! RFC 9234: what this node is to an external neighbour (its provider, its
//! customer, a lateral peer, its route server or a route-server client),
//! the pairs of roles two ends may agree on in OPEN, and the ingress and
//! egress rules of the only-to-customer (OTC) attribute that stop a route
//! learned from one provider or peer from being passed to another.
//!
//! Everything here is a pure function of the configured local role, the
//! ASNs and a route's attributes; the engine calls it on import and export.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use super::attrs::PathAttrs;
use super::ids::Asn;

/// This node's role towards one neighbour ("local role" in RFC 9234):
/// `Customer` means the neighbour is our provider.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Role {
    /// We sell transit to the neighbour (it is our customer).
    Provider,
    /// We are the neighbour's route server.
    #[serde(rename = "rs")]
    RouteServer,
    /// The neighbour is our route server.
    #[serde(rename = "rs-client")]
    RouteServerClient,
    /// We buy transit from the neighbour (it is our provider).
    Customer,
    /// Settlement-free lateral peering.
    Peer,
}

impl Role {
    /// Every role, in the order of their codes.
    pub const ALL: [Role; 5] = [
        Role::Provider,
        Role::RouteServer,
        Role::RouteServerClient,
        Role::Customer,
        Role::Peer,
    ];

    /// The role's value in the OPEN capability (RFC 9234 section 4.1).
    pub fn code(self) -> u8 {
        match self {
            Role::Provider => 0,
            Role::RouteServer => 1,
            Role::RouteServerClient => 2,
            Role::Customer => 3,
            Role::Peer => 4,
        }
    }

    pub fn from_code(code: u8) -> Option<Role> {
        Role::ALL.get(usize::from(code)).copied()
    }

    /// The name used in configuration and output.
    pub fn name(self) -> &'static str {
        match self {
            Role::Provider => "provider",
            Role::RouteServer => "rs",
            Role::RouteServerClient => "rs-client",
            Role::Customer => "customer",
            Role::Peer => "peer",
        }
    }

    /// The role the neighbour must announce when we hold this one.
    pub fn counterpart(self) -> Role {
        match self {
            Role::Provider => Role::Customer,
            Role::Customer => Role::Provider,
            Role::RouteServer => Role::RouteServerClient,
            Role::RouteServerClient => Role::RouteServer,
            Role::Peer => Role::Peer,
        }
    }

    /// The neighbour is one we send our customers' routes only: our
    /// provider, a lateral peer, or our route server.
    fn neighbour_is_upward_or_lateral(self) -> bool {
        matches!(self, Role::Customer | Role::Peer | Role::RouteServerClient)
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Role {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Role::ALL
            .into_iter()
            .find(|r| r.name() == s)
            .ok_or_else(|| {
                format!("role {s:?} is not one of provider, customer, peer, rs, rs-client")
            })
    }
}

/// Why a route from a neighbour is a leak (RFC 9234 section 5, ingress).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Leak {
    /// A route marked only-to-customer came from our customer or our
    /// route-server client: it went up again after coming down.
    FromCustomer { otc: Asn },
    /// A lateral peer sent a route another AS marked only-to-customer.
    FromPeer { otc: Asn },
}

impl fmt::Display for Leak {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Leak::FromCustomer { otc } => write!(
                f,
                "only-to-customer {otc} on a route from our customer (a route leak)"
            ),
            Leak::FromPeer { otc } => write!(
                f,
                "only-to-customer {otc} set by another AS on a route from a lateral peer (a route leak)"
            ),
        }
    }
}

/// The ingress rules for a route received from an external neighbour we
/// hold `local` towards, whose ASN is `neighbour`. A leak is an error (the
/// route is kept but never selected); otherwise the answer is the
/// only-to-customer mark to add: the neighbour's ASN, when the route came
/// from a provider, peer or route server and was not marked yet.
pub fn on_import(local: Role, neighbour: Asn, attrs: &PathAttrs) -> Result<Option<Asn>, Leak> {
    match (local, attrs.otc) {
        (Role::Provider | Role::RouteServer, Some(otc)) => Err(Leak::FromCustomer { otc }),
        (Role::Peer, Some(otc)) if otc != neighbour => Err(Leak::FromPeer { otc }),
        (Role::Customer | Role::Peer | Role::RouteServerClient, None) => Ok(Some(neighbour)),
        _ => Ok(None),
    }
}

/// Egress, first rule: a route marked only-to-customer never goes to a
/// provider, a lateral peer or a route server.
pub fn blocks_export(local: Role, attrs: &PathAttrs) -> bool {
    attrs.otc.is_some() && local.neighbour_is_upward_or_lateral()
}

/// Egress, second rule: the marker this node adds when it sends an
/// unmarked route to a customer, a lateral peer or a route-server client.
pub fn export_mark(local: Role, local_asn: Asn, attrs: &PathAttrs) -> Option<Asn> {
    let downward_or_lateral = matches!(local, Role::Provider | Role::Peer | Role::RouteServer);
    (attrs.otc.is_none() && downward_or_lateral).then_some(local_asn)
}

/// Whether two ends' roles agree (RFC 9234 section 4.2): provider with
/// customer, route server with client, peer with peer.
pub fn roles_agree(local: Role, remote: Role) -> bool {
    local.counterpart() == remote
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn attrs(otc: Option<u32>) -> PathAttrs {
        PathAttrs {
            otc: otc.map(Asn),
            ..PathAttrs::default()
        }
    }

    #[test]
    fn names_and_codes_round_trip() {
        for r in Role::ALL {
            assert_eq!(Role::from_code(r.code()), Some(r));
            assert_eq!(r.name().parse::<Role>(), Ok(r));
            assert_eq!(r.counterpart().counterpart(), r);
        }
        assert_eq!(Role::from_code(5), None);
        assert!("transit".parse::<Role>().is_err());
    }

    #[test]
    fn only_matching_pairs_agree() {
        let ok = [
            (Role::Provider, Role::Customer),
            (Role::Customer, Role::Provider),
            (Role::RouteServer, Role::RouteServerClient),
            (Role::RouteServerClient, Role::RouteServer),
            (Role::Peer, Role::Peer),
        ];
        for a in Role::ALL {
            for b in Role::ALL {
                assert_eq!(roles_agree(a, b), ok.contains(&(a, b)), "{a} with {b}");
            }
        }
    }

    #[test]
    fn ingress_follows_rfc_9234() {
        let n = Asn(65001);
        // From a customer or an RS client: a marked route is a leak.
        for local in [Role::Provider, Role::RouteServer] {
            assert_eq!(
                on_import(local, n, &attrs(Some(65009))),
                Err(Leak::FromCustomer { otc: Asn(65009) })
            );
            assert_eq!(on_import(local, n, &attrs(None)), Ok(None));
        }
        // From a peer: marked by someone else is a leak, by the peer itself
        // is fine, unmarked gets the peer's ASN.
        assert_eq!(
            on_import(Role::Peer, n, &attrs(Some(65009))),
            Err(Leak::FromPeer { otc: Asn(65009) })
        );
        assert_eq!(on_import(Role::Peer, n, &attrs(Some(65001))), Ok(None));
        // From a provider or a route server: marked with its ASN if unmarked,
        // kept as it is otherwise.
        for local in [Role::Customer, Role::Peer, Role::RouteServerClient] {
            assert_eq!(on_import(local, n, &attrs(None)), Ok(Some(n)));
        }
        assert_eq!(on_import(Role::Customer, n, &attrs(Some(65009))), Ok(None));
    }

    #[test]
    fn egress_follows_rfc_9234() {
        let me = Asn(65000);
        for local in Role::ALL {
            let up = matches!(local, Role::Customer | Role::Peer | Role::RouteServerClient);
            assert_eq!(blocks_export(local, &attrs(Some(1))), up, "{local}");
            assert!(!blocks_export(local, &attrs(None)));
            let down = matches!(local, Role::Provider | Role::Peer | Role::RouteServer);
            assert_eq!(export_mark(local, me, &attrs(None)), down.then_some(me));
            assert_eq!(export_mark(local, me, &attrs(Some(1))), None);
        }
    }

    /// One AS-to-AS movement of a route: up to a provider, down to a
    /// customer, over to a lateral peer, or over through a route server
    /// (client to server, server to client).
    #[derive(Debug, Clone, Copy, PartialEq)]
    enum Move {
        Up,
        Down,
        Over,
        ViaRouteServer,
    }

    fn hops(m: Move) -> &'static [Role] {
        match m {
            Move::Up => &[Role::Customer],
            Move::Down => &[Role::Provider],
            Move::Over => &[Role::Peer],
            Move::ViaRouteServer => &[Role::RouteServerClient, Role::RouteServer],
        }
    }

    proptest! {
        /// Along any chain of ASes that all apply the rules (each sender
        /// holding a role towards the receiver, the receiver the
        /// counterpart), a route is stopped exactly at the first move that
        /// breaks valley-freeness: up or over after it has gone down or
        /// over. Valid routes are never stopped.
        #[test]
        fn stops_exactly_the_valleys(moves in prop::collection::vec(
            prop::sample::select(vec![Move::Up, Move::Down, Move::Over, Move::ViaRouteServer]),
            1..12,
        )) {
            let first_invalid = moves.iter().enumerate().position(|(i, m)| {
                *m != Move::Down && moves[..i].iter().any(|e| *e != Move::Up)
            });
            let mut a = PathAttrs::default();
            let mut asn = 100u32;
            let mut stopped = None;
            'outer: for (i, m) in moves.iter().enumerate() {
                for local in hops(*m) {
                    let sender = Asn(asn);
                    asn += 1;
                    if blocks_export(*local, &a) {
                        stopped = Some(i);
                        break 'outer;
                    }
                    if let Some(mark) = export_mark(*local, sender, &a) {
                        a.otc = Some(mark);
                    }
                    match on_import(local.counterpart(), sender, &a) {
                        Ok(mark) => a.otc = a.otc.or(mark),
                        Err(_) => {
                            stopped = Some(i);
                            break 'outer;
                        }
                    }
                }
            }
            prop_assert_eq!(stopped, first_invalid, "moves {:?}", moves);
        }
    }
}
