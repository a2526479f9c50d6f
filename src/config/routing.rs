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
use crate::core::role::Role;

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
    pub local_role: Option<Role>,
    pub strict_role: bool,
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
        role_problems(&n, internal, &key, &mut out);
    }
    out
}

/// A role is for an AS border, and must agree with the route-server flags:
/// `rs` is what we are to a `route_server_client`, `rs-client` what we are
/// to a `route_server`.
fn role_problems(
    n: &NeighborFlags,
    internal: Option<bool>,
    key: &dyn Fn(&str) -> String,
    out: &mut Vec<Problem>,
) {
    let Some(role) = n.local_role else {
        if n.strict_role {
            out.push(Problem::new(
                key("strict_role"),
                "needs local_role (the role the neighbour's must agree with)",
            ));
        }
        return;
    };
    if internal == Some(true) {
        out.push(Problem::new(
            key("local_role"),
            "roles are for neighbours in other ASes (AS borders)",
        ));
    }
    let flag = |on: bool, name: &str, needs: Role| {
        (on != (role == needs)).then(|| {
            Problem::new(
                key("local_role"),
                if on {
                    format!("{name} = true needs local_role = \"{needs}\", not \"{role}\"")
                } else {
                    format!("local_role = \"{role}\" needs {name} = true")
                },
            )
        })
    };
    out.extend(flag(
        n.route_server_client,
        "route_server_client",
        Role::RouteServer,
    ));
    out.extend(flag(
        n.route_server,
        "route_server",
        Role::RouteServerClient,
    ));
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

    #[test]
    fn roles_parse_and_must_fit_the_border_and_the_route_server_flags() {
        let node = "[node]\nasn = 65100\ncertificate = \"self-signed\"\n";
        let c = parse(&format!(
            "{node}{}{}",
            neighbor(1, 65010, "local_role = \"provider\"\nstrict_role = true"),
            neighbor(2, 65020, "local-role = \"rs-client\"\nroute_server = true")
        ))
        .unwrap();
        assert_eq!(c.neighbors[0].local_role, Some(Role::Provider));
        assert!(c.neighbors[0].strict_role);
        assert_eq!(c.neighbors[1].local_role, Some(Role::RouteServerClient));
        assert!(
            parse(&format!(
                "{node}{}",
                neighbor(1, 65010, "local_role = \"transit\"")
            ))
            .is_err()
        );
        assert_eq!(
            invalid_keys(&format!(
                "{node}{}{}{}{}",
                // Inside our AS.
                neighbor(1, 65100, "local_role = \"peer\""),
                // A route server that is not our rs-client role.
                neighbor(2, 65020, "local_role = \"customer\"\nroute_server = true"),
                // rs without the client flag.
                neighbor(3, 65030, "local_role = \"rs\""),
                // Strict with no role.
                neighbor(4, 65040, "strict_role = true")
            )),
            vec![
                "neighbor[0].local_role",
                "neighbor[1].local_role",
                "neighbor[2].local_role",
                "neighbor[3].strict_role"
            ]
        );
    }
}
