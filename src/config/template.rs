//! The commented node.toml that `abgp init` writes (template.toml): every
//! option with its default, so the file documents itself. Tests keep it in
//! step with the defaults of [`super::sections`] and with the key tables
//! of docs/operations.md.
//!
//! [`render`] fills the template for other starting points: other ports
//! (two nodes on one machine), and the federation preset that `abgp
//! federation create` and `abgp init --join` write: an issued certificate,
//! the federation's trust anchor, no derived ASNs, bootstrap addresses and
//! [`federation_policy`], which exchanges routes with members (peers whose
//! ASN is in the anchor's range, which only the anchor can certify) and
//! nothing with anyone else.

use super::values::AsnSetting;
use crate::core::ids::NodeId;

/// The template text with its placeholders (`@ASN@`, `@CERT@`,
/// `@FEDERATION@`, `@LISTEN@`, ...) still in.
pub const TEMPLATE: &str = include_str!("template.toml");

/// The default first port: libp2p listens on it (TCP and QUIC), the admin
/// API on it + 80, the MCP front on it + 81 (4100, 4180, 4181).
pub const DEFAULT_PORT_BASE: u16 = 4100;
/// The admin API's port relative to the port base.
pub const ADMIN_PORT_OFFSET: u16 = 80;
/// The MCP front's port relative to the port base.
pub const MCP_PORT_OFFSET: u16 = 81;
/// Highest port base (its MCP port must still be a port).
pub const MAX_PORT_BASE: u16 = u16::MAX - MCP_PORT_OFFSET;

/// A federation's authority as node.toml names it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AnchorPreset {
    pub name: String,
    pub key: NodeId,
    /// Inclusive ASN range the authority certifies.
    pub asns: (u32, u32),
}

/// What [`render`] fills in. [`Settings::new`] gives the defaults.
#[derive(Debug, Clone)]
pub struct Settings {
    pub asn: AsnSetting,
    /// An issued certificate file (relative to node.toml); `None`: derived
    /// for a derived ASN, self-signed for a number.
    pub certificate: Option<String>,
    pub federation: String,
    /// See [`DEFAULT_PORT_BASE`]; 0 lets every listener pick a free port.
    pub port_base: u16,
    /// `[discovery] bootstrap` addresses.
    pub bootstrap: Vec<String>,
    /// The federation's anchor; when set, derived ASNs are refused.
    pub anchor: Option<AnchorPreset>,
    /// `[policy] file`.
    pub policy_file: Option<String>,
    /// `[trust] authorizations` (origin authorisation tokens).
    pub authorizations: Vec<String>,
}

impl Settings {
    pub fn new(asn: AsnSetting, federation: &str) -> Settings {
        Settings {
            asn,
            certificate: None,
            federation: federation.to_string(),
            port_base: DEFAULT_PORT_BASE,
            bootstrap: Vec::new(),
            anchor: None,
            policy_file: None,
            authorizations: Vec::new(),
        }
    }
}

/// The file `abgp init` writes: the template with the ASN, the matching
/// certificate source and the federation filled in.
pub fn template(asn: AsnSetting, federation: &str) -> String {
    render(&Settings::new(asn, federation))
}

fn toml_list(items: &[String]) -> String {
    let quoted: Vec<String> = items.iter().map(|s| format!("{s:?}")).collect();
    format!("[{}]", quoted.join(", "))
}

/// The template filled from `s`. Strings are written as TOML basic
/// strings; the caller validates the result with `NodeConfig::parse`.
pub fn render(s: &Settings) -> String {
    let asn_line = match s.asn {
        AsnSetting::Derived => "asn = \"derived\"".to_string(),
        AsnSetting::Number(a) => format!("asn = {}", a.0),
    };
    let cert_line = match (&s.certificate, s.asn) {
        (Some(file), _) => format!("certificate = {file:?}"),
        (None, AsnSetting::Derived) => "certificate = \"derived\"".to_string(),
        (None, AsnSetting::Number(_)) => "certificate = \"self-signed\"".to_string(),
    };
    let (p2p, admin, mcp) = if s.port_base == 0 {
        (0, 0, 0)
    } else {
        (
            s.port_base,
            s.port_base.saturating_add(ADMIN_PORT_OFFSET),
            s.port_base.saturating_add(MCP_PORT_OFFSET),
        )
    };
    let listen = format!("[\"/ip4/0.0.0.0/tcp/{p2p}\", \"/ip4/0.0.0.0/udp/{p2p}/quic-v1\"]");
    let anchors = match &s.anchor {
        None => String::new(),
        Some(a) => format!(
            "anchors = [{{ name = {:?}, key = \"{}\", asns = [\"{}-{}\"] }}]\n",
            a.name, a.key, a.asns.0, a.asns.1
        ),
    };
    TEMPLATE
        .replace("@ASN@", &asn_line)
        .replace("@CERT@", &cert_line)
        .replace("@FEDERATION@", &format!("{:?}", s.federation))
        .replace("@LISTEN@", &listen)
        .replace("@BOOTSTRAP@", &toml_list(&s.bootstrap))
        .replace(
            "@ACCEPT_DERIVED@",
            if s.anchor.is_some() { "false" } else { "true" },
        )
        .replace("@ANCHORS@\n", &anchors)
        .replace("@AUTHORIZATIONS@", &toml_list(&s.authorizations))
        .replace(
            "@POLICY_FILE@",
            &format!("{:?}", s.policy_file.as_deref().unwrap_or("")),
        )
        .replace("@ADMIN_LISTEN@", &format!("\"127.0.0.1:{admin}\""))
        .replace("@MCP_LISTEN@", &format!("\"127.0.0.1:{mcp}\""))
}

/// The policy file name the federation preset uses, next to node.toml.
pub const FEDERATION_POLICY_FILE: &str = "federation-policy.toml";

/// The federation preset's policy (docs/policy.md, "Federation members"):
/// routes are imported from and exported to peers whose ASN lies in the
/// federation's range, and to no one else. Only the federation's anchor
/// can certify an ASN in that range (the trust store refuses any other
/// certificate there), so "ASN in the range" means "issued by the anchor".
pub fn federation_policy(federation: &str, asns: (u32, u32)) -> String {
    format!(
        r#"# Written by abgp for federation {federation:?} (docs/policy.md, "Federation members").
# Routes go to and come from members of the federation: peers whose ASN its
# authority certified (the range below belongs to the federation's trust
# anchor in node.toml, so no other certificate can claim it). Nothing is
# exchanged with anyone else.

[sets.asns]
members = ["{lo}-{hi}"]

[[policy]]
name = "federation-members"

  [[policy.statement]]
  name = "members"
  match = {{ neighbor.asn = "members" }}
  then = {{ verdict = "accept" }}

[[apply]]
neighbors = ["*"]
import = ["federation-members"]
export = ["federation-members"]
default-import = "reject"
default-export = "reject"
"#,
        lo = asns.0,
        hi = asns.1
    )
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;
    use crate::config::{CertSource, NodeConfig};
    use crate::core::attrs::PathAttrs;
    use crate::core::ids::{AgentId, Asn};
    use crate::core::policy::{Direction, PeerCtx, PolicyCtx, PolicySet};
    use crate::core::prefix::Prefix;

    #[test]
    fn the_federation_preset_parses_with_its_anchor_ports_and_policy() {
        let key = crate::identity::NodeKey::from_seed(&[5; 32]);
        let boot = format!("/ip4/10.0.0.1/tcp/4100/p2p/{}", key.peer_id());
        let s = Settings {
            certificate: Some("node.cert".into()),
            port_base: 4200,
            bootstrap: vec![boot.clone()],
            anchor: Some(AnchorPreset {
                name: "home".into(),
                key: key.node_id(),
                asns: (64512, 65534),
            }),
            policy_file: Some(FEDERATION_POLICY_FILE.into()),
            ..Settings::new(AsnSetting::Number(Asn(64513)), "home")
        };
        let c = NodeConfig::parse(&render(&s), Path::new("node.toml")).unwrap();
        assert_eq!(c.node.asn, AsnSetting::Number(Asn(64513)));
        assert!(matches!(c.node.certificate, CertSource::File(_)));
        assert_eq!(c.node.federation, "home");
        assert!(!c.trust.accept_derived);
        assert_eq!(c.trust.anchors.len(), 1);
        assert_eq!(c.discovery.bootstrap.len(), 1);
        assert_eq!(c.discovery.bootstrap[0].to_string(), boot);
        assert!(c.discovery.mdns && c.discovery.kademlia);
        assert_eq!(c.network.listen[0].to_string(), "/ip4/0.0.0.0/tcp/4200");
        let text = render(&s);
        assert!(text.contains("listen = \"127.0.0.1:4280\""), "{text}");
        assert!(text.contains("listen = \"127.0.0.1:4281\""), "{text}");
        assert!(text.contains("file = \"federation-policy.toml\""));
    }

    #[test]
    fn port_base_zero_picks_free_ports_everywhere() {
        let s = Settings {
            port_base: 0,
            ..Settings::new(AsnSetting::Derived, "default")
        };
        let text = render(&s);
        NodeConfig::parse(&text, Path::new("node.toml")).unwrap();
        assert!(text.contains("/ip4/0.0.0.0/tcp/0\""));
        assert!(text.contains("listen = \"127.0.0.1:0\""));
    }

    fn decide(set: &PolicySet, asn: u32, direction: Direction) -> bool {
        let peer = PeerCtx {
            asn: Asn(asn),
            node: NodeId::from_u64(9),
            internal: asn == 64513,
        };
        let ctx = PolicyCtx {
            local_asn: Asn(64513),
            peer,
            direction,
        };
        let prefix: Prefix = "tools/x/*".parse().unwrap();
        let mut attrs = std::sync::Arc::new(PathAttrs {
            agent: AgentId::new("a"),
            ..PathAttrs::default()
        });
        set.evaluate(&ctx, &prefix, &mut attrs).is_accept()
    }

    #[test]
    fn docs_policy_shows_the_federation_policy_as_written() {
        let doc = include_str!("../../docs/policy.md");
        let start = doc
            .find("### Federation members")
            .and_then(|i| {
                doc[i..]
                    .find("```toml\n")
                    .map(|j| i + j + "```toml\n".len())
            })
            .expect("the federation members example");
        let block = &doc[start..start + doc[start..].find("```").unwrap()];
        let strip = |t: &str| -> Vec<String> {
            t.lines()
                .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
                .map(str::to_owned)
                .collect()
        };
        assert_eq!(
            strip(block),
            strip(&federation_policy("home", (64512, 65534)))
        );
    }

    #[test]
    fn the_federation_policy_exchanges_with_members_only() {
        let set =
            PolicySet::from_toml_str(&federation_policy("home", (64512, 65534)), "p.toml").unwrap();
        for d in [Direction::Import, Direction::Export] {
            for member in [64512, 64514, 65534] {
                assert!(decide(&set, member, d), "{member} {d}");
            }
            for stranger in [64511, 65535, 4_200_000_123, 64000, 100] {
                assert!(!decide(&set, stranger, d), "{stranger} {d}");
            }
        }
    }
}
