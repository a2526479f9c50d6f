//! `[routing]`: the node's role in distributing routes it does not
//! originate (docs/protocol.md, "Reflector vs route server vs transit"),
//! and the checks that tie it to the `[[neighbor]]` flags that use it.
//!
//! - `cluster_id = N`: this node is a route reflector (RFC 4456) for the
//!   neighbours of its own AS marked `rr_client = true`.
//! - `route_server = true`: this node is a transparent route server
//!   (RFC 7947) for the neighbours of other ASes marked
//!   `route_server_client = true`: it relays their routes to each other
//!   without its ASN and off the call path.
//! - On a client, `route_server = true` on a `[[neighbor]]` marks that
//!   neighbour as a transparent route server: its routes are accepted
//!   although its ASN is not in their path, and its pcount-0 path
//!   signatures are trusted.
//!
//! Keys are snake_case like the rest of node.toml; the kebab-case
//! spellings (`cluster-id`, `route-server`, `route-server-client`,
//! `rr-client`) are accepted too.

use serde::{Deserialize, Serialize};

use super::Problem;
use crate::core::ids::ClusterId;

/// The `[routing]` section.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct RoutingSection {
    /// Set: a route reflector for `rr_client` neighbours, with this
    /// cluster id (put in the cluster list of every reflected route).
    #[serde(alias = "cluster-id", skip_serializing_if = "Option::is_none")]
    pub cluster_id: Option<u32>,
    /// A transparent route server for `route_server_client` neighbours.
    #[serde(alias = "route-server")]
    pub route_server: bool,
}

impl RoutingSection {
    /// The engine's cluster id, when this node reflects.
    pub fn cluster_id(&self) -> Option<ClusterId> {
        self.cluster_id.map(ClusterId)
    }
}

/// The routing flags of one `[[neighbor]]` (taken apart by the caller, so
/// this module needs nothing of `sections`: no module cycle inside config).
#[derive(Debug, Clone, Copy)]
pub(super) struct NeighborFlags {
    pub asn: u32,
    pub rr_client: bool,
    pub route_server_client: bool,
    pub route_server: bool,
}

/// The problems of `[routing]` and of the routing flags of each
/// `[[neighbor]]` (`own`: our ASN when chosen), with their key paths.
pub(super) fn problems(
    own: Option<u32>,
    r: &RoutingSection,
    neighbors: impl Iterator<Item = NeighborFlags>,
) -> Vec<Problem> {
    let mut out = Vec::new();
    if r.cluster_id.is_some() && r.route_server {
        out.push(Problem::new(
            "routing.route_server",
            "a node is either a route reflector (cluster_id) or a route server, not both",
        ));
    }
    for (i, n) in neighbors.enumerate() {
        let key = |f: &str| format!("neighbor[{i}].{f}");
        let internal = own.map(|a| a == n.asn);
        if n.rr_client {
            if r.cluster_id.is_none() {
                out.push(Problem::new(
                    key("rr_client"),
                    "needs routing.cluster_id (this node must be a route reflector)",
                ));
            }
            if internal == Some(false) {
                out.push(Problem::new(
                    key("rr_client"),
                    format!("AS{} is not our AS: reflection is inside an AS", n.asn),
                ));
            }
        }
        if n.route_server_client {
            if !r.route_server {
                out.push(Problem::new(
                    key("route_server_client"),
                    "needs routing.route_server = true",
                ));
            }
            if internal == Some(true) {
                out.push(Problem::new(
                    key("route_server_client"),
                    "a route server's clients are in other ASes (use rr_client inside an AS)",
                ));
            }
        }
        if n.route_server {
            if internal == Some(true) {
                out.push(Problem::new(
                    key("route_server"),
                    "a route server is in another AS (a reflector inside our AS needs no flag)",
                ));
            }
            if n.route_server_client {
                out.push(Problem::new(
                    key("route_server"),
                    "a neighbour cannot be both our route server and our route-server client",
                ));
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;
    use crate::config::{ConfigError, NodeConfig};

    fn parse(text: &str) -> Result<NodeConfig, ConfigError> {
        NodeConfig::parse(text, Path::new("node.toml"))
    }

    fn invalid_keys(text: &str) -> Vec<String> {
        match parse(text) {
            Err(ConfigError::Invalid { problems, .. }) => {
                problems.keys().into_iter().map(String::from).collect()
            }
            other => panic!("{text}: expected Invalid, got {other:?}"),
        }
    }

    fn neighbor(seed: u8, asn: u32, extra: &str) -> String {
        let p = crate::identity::NodeKey::from_seed(&[seed; 32]).peer_id();
        format!("[[neighbor]]\npeer_id = \"{p}\"\npassive = true\nasn = {asn}\n{extra}\n")
    }

    #[test]
    fn defaults_are_neither_reflector_nor_route_server() {
        let c = parse("").unwrap();
        assert_eq!(c.routing, RoutingSection::default());
        assert_eq!(c.routing.cluster_id(), None);
        assert!(!c.routing.route_server);
    }

    #[test]
    fn both_spellings_parse() {
        let snake = parse(&format!(
            "[node]\nasn = 65000\ncertificate = \"self-signed\"\n[routing]\ncluster_id = 7\n{}",
            neighbor(1, 65000, "rr_client = true")
        ))
        .unwrap();
        let kebab = parse(&format!(
            "[node]\nasn = 65000\ncertificate = \"self-signed\"\n[routing]\ncluster-id = 7\n{}",
            neighbor(1, 65000, "rr-client = true")
        ))
        .unwrap();
        assert_eq!(snake, kebab);
        assert_eq!(snake.routing.cluster_id(), Some(ClusterId(7)));
        assert!(snake.neighbors[0].rr_client);

        let rs = parse(&format!(
            "[node]\nasn = 65100\ncertificate = \"self-signed\"\n[routing]\nroute-server = true\n{}",
            neighbor(1, 65010, "route-server-client = true")
        ))
        .unwrap();
        assert!(rs.routing.route_server && rs.neighbors[0].route_server_client);
        let client = parse(&format!(
            "[node]\nasn = 65010\ncertificate = \"self-signed\"\n{}",
            neighbor(1, 65100, "route-server = true")
        ))
        .unwrap();
        assert!(client.neighbors[0].route_server);
        assert_eq!(client.route_servers().count(), 1);
        assert!(parse("[routing]\ncluster_id = -1\n").is_err());
        assert!(parse("[routing]\nreflector = true\n").is_err());
    }

    #[test]
    fn flags_without_their_role_or_across_the_wrong_border_are_refused() {
        assert_eq!(
            invalid_keys(&format!(
                "[node]\nasn = 65000\ncertificate = \"self-signed\"\n{}",
                neighbor(1, 65000, "rr_client = true")
            )),
            vec!["neighbor[0].rr_client"]
        );
        assert_eq!(
            invalid_keys(&format!(
                "[node]\nasn = 65000\ncertificate = \"self-signed\"\n[routing]\ncluster_id = 1\n{}",
                neighbor(1, 65001, "rr_client = true")
            )),
            vec!["neighbor[0].rr_client"]
        );
        assert_eq!(
            invalid_keys(&format!(
                "[node]\nasn = 65100\ncertificate = \"self-signed\"\n{}{}",
                neighbor(1, 65010, "route_server_client = true"),
                neighbor(2, 65100, "route_server = true")
            )),
            vec![
                "neighbor[0].route_server_client",
                "neighbor[1].route_server"
            ]
        );
        assert_eq!(
            invalid_keys(&format!(
                "[node]\nasn = 65100\ncertificate = \"self-signed\"\n[routing]\nroute_server = true\n{}",
                neighbor(1, 65100, "route_server_client = true\nroute_server = true")
            )),
            vec![
                "neighbor[0].route_server_client",
                "neighbor[0].route_server",
                "neighbor[0].route_server"
            ]
        );
        assert_eq!(
            invalid_keys("[routing]\ncluster_id = 1\nroute_server = true\n"),
            vec!["routing.route_server"]
        );
        // A derived ASN is only known at start: the AS checks wait.
        assert!(
            parse(&format!(
                "[routing]\ncluster_id = 1\n{}",
                neighbor(1, 65001, "rr_client = true")
            ))
            .is_ok()
        );
    }
}
