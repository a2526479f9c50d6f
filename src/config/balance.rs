//! `[[balance]]`: how this node spreads calls over the paths to a prefix
//! (docs/protocol.md, "Load balancing"; the methods are
//! [`crate::core::forward::balance`]).
//!
//! ```toml
//! [[balance]]
//! prefix = "tools/*"          # the calls whose target it covers
//! method = "weighted"         # call-id | round-robin | weighted | capability | latency
//! weights = { "12D3KooW..." = 3 }   # weighted only: per next-hop peer, 0..=1000
//! capabilities = ["fast"]     # capability only: the tags wanted
//! ```
//!
//! The most specific entry covering a call's target wins; an entry for
//! `prefix = "*"` is the node-wide default. With no entry covering it, a
//! call is balanced only when it asks (the front's `balance`,
//! `[mcp] balance_transit`), by call id over the multipath set.

use std::collections::BTreeMap;
use std::sync::Arc;

use libp2p::PeerId;
use serde::{Deserialize, Serialize};

use super::Problem;
use crate::core::forward::balance::{BalanceRules, MAX_WEIGHT, Method, Rule};
use crate::core::prefix::Prefix;
use crate::identity::node_id_of;

/// The most `[[balance]]` entries a node takes.
pub const MAX_BALANCE_ENTRIES: usize = 1_000;
/// The most weights, and wanted tags, per entry.
pub const MAX_PER_ENTRY: usize = 1_000;

/// One `[[balance]]` entry.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct BalanceEntry {
    pub prefix: Prefix,
    /// `call-id`, `round-robin`, `weighted`, `capability` or `latency`.
    pub method: String,
    /// `weighted`: weight per next-hop peer id (0..=1000); hops not listed
    /// weigh by their MED, `max(1, 10000 / (100 + MED))`.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub weights: BTreeMap<String, u32>,
    /// `capability`: the tags a call is matched on when it names none.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub capabilities: Vec<String>,
}

fn method_list() -> String {
    Method::ALL
        .iter()
        .map(|m| format!("{:?}", m.name()))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The problems of every `[[balance]]` entry, with their key paths.
pub(super) fn problems(entries: &[BalanceEntry]) -> Vec<Problem> {
    let mut out = Vec::new();
    if entries.len() > MAX_BALANCE_ENTRIES {
        out.push(Problem::new(
            "balance",
            format!("{} entries; at most {MAX_BALANCE_ENTRIES}", entries.len()),
        ));
    }
    for (i, e) in entries.iter().enumerate() {
        let key = |k: &str| format!("balance[{i}].{k}");
        if entries[..i].iter().any(|x| x.prefix == e.prefix) {
            out.push(Problem::new(
                key("prefix"),
                format!("{} has an entry already", e.prefix),
            ));
        }
        let method = Method::parse(&e.method);
        if method.is_none() {
            out.push(Problem::new(
                key("method"),
                format!("{:?} is not a method; one of {}", e.method, method_list()),
            ));
        }
        if !e.weights.is_empty() && method.is_some_and(|m| m != Method::Weighted) {
            out.push(Problem::new(
                key("weights"),
                format!(
                    "only the \"weighted\" method uses weights (this is {:?})",
                    e.method
                ),
            ));
        }
        if !e.capabilities.is_empty() && method.is_some_and(|m| m != Method::Capability) {
            out.push(Problem::new(
                key("capabilities"),
                format!(
                    "only the \"capability\" method uses capabilities (this is {:?})",
                    e.method
                ),
            ));
        }
        if e.weights.len() > MAX_PER_ENTRY {
            out.push(Problem::new(
                key("weights"),
                format!("{} weights; at most {MAX_PER_ENTRY}", e.weights.len()),
            ));
        }
        if e.capabilities.len() > MAX_PER_ENTRY {
            out.push(Problem::new(
                key("capabilities"),
                format!("{} tags; at most {MAX_PER_ENTRY}", e.capabilities.len()),
            ));
        }
        for (peer, w) in &e.weights {
            let k = format!("balance[{i}].weights.{peer}");
            match peer.parse::<PeerId>() {
                Err(err) => out.push(Problem::new(k.clone(), format!("not a peer id: {err}"))),
                Ok(p) => {
                    if let Err(err) = node_id_of(&p) {
                        out.push(Problem::new(k.clone(), err.to_string()));
                    }
                }
            }
            if *w > MAX_WEIGHT {
                out.push(Problem::new(k, format!("{w} is over {MAX_WEIGHT}")));
            }
        }
        for (j, t) in e.capabilities.iter().enumerate() {
            if t.is_empty() || t.len() > 256 {
                out.push(Problem::new(
                    format!("balance[{i}].capabilities[{j}]"),
                    "a tag is 1 to 256 bytes",
                ));
            }
        }
    }
    out
}

/// The forwarder's rules. Entries that do not validate are left out
/// ([`problems`] refuses the file before this runs).
pub fn rules(entries: &[BalanceEntry]) -> BalanceRules {
    BalanceRules::new(entries.iter().filter_map(|e| {
        let method = Method::parse(&e.method)?;
        let mut rule = Rule::new(e.prefix.clone(), method);
        for (peer, w) in &e.weights {
            let node = peer
                .parse::<PeerId>()
                .ok()
                .and_then(|p| node_id_of(&p).ok())?;
            rule = rule.with_weight(node, *w);
        }
        let mut tags: Vec<Arc<str>> = e
            .capabilities
            .iter()
            .map(|t| Arc::from(t.as_str()))
            .collect();
        tags.sort();
        tags.dedup();
        Some(rule.with_capabilities(tags))
    }))
}

#[cfg(test)]
mod tests {
    use super::super::sections::NodeConfig;
    use super::*;
    use crate::core::forward::balance::Method;
    use crate::core::ids::NodeId;
    use crate::identity::peer_id_of;

    fn parse(text: &str) -> Result<NodeConfig, crate::config::ConfigError> {
        NodeConfig::parse(text, std::path::Path::new("node.toml"))
    }

    #[test]
    fn entries_parse_into_rules() {
        let peer = peer_id_of(&NodeId::from_u64(9));
        let text = format!(
            "[[balance]]\nprefix = \"*\"\nmethod = \"round-robin\"\n\n\
             [[balance]]\nprefix = \"tools/*\"\nmethod = \"weighted\"\nweights = {{ \"{peer}\" = 3 }}\n\n\
             [[balance]]\nprefix = \"tools/fast/*\"\nmethod = \"capability\"\ncapabilities = [\"gpu\", \"fast\", \"gpu\"]\n"
        );
        let c = parse(&text).expect("valid");
        assert_eq!(c.balance.len(), 3);
        let r = rules(&c.balance);
        let at = |t: &str| {
            r.rule_for(&Prefix::new(t).expect("prefix"))
                .cloned()
                .expect("rule")
        };
        assert_eq!(at("other").method, Method::RoundRobin);
        let w = at("tools/x");
        assert_eq!(w.method, Method::Weighted);
        assert_eq!(w.weights.get(&NodeId::from_u64(9)), Some(&3));
        let cap = at("tools/fast/y");
        assert_eq!(
            cap.capabilities,
            vec![Arc::<str>::from("fast"), Arc::from("gpu")]
        );
        // No entries: no rules (calls are balanced only when they ask).
        assert!(rules(&parse("").expect("empty").balance).is_empty());
    }

    #[test]
    fn bad_entries_are_refused_with_their_keys() {
        let text = "[[balance]]\nprefix = \"tools/*\"\nmethod = \"random\"\n\n\
             [[balance]]\nprefix = \"tools/*\"\nmethod = \"round-robin\"\nweights = { \"not-a-peer\" = 2000 }\ncapabilities = [\"\"]\n";
        let e = parse(text).expect_err("invalid");
        let keys = e.keys();
        for k in [
            "balance[0].method",
            "balance[1].prefix",
            "balance[1].weights",
            "balance[1].capabilities",
            "balance[1].weights.not-a-peer",
            "balance[1].capabilities[0]",
        ] {
            assert!(keys.contains(&k), "{k} missing from {keys:?}");
        }
        let msg = e.to_string();
        assert!(msg.contains("\"random\" is not a method; one of \"call-id\", \"round-robin\", \"weighted\", \"capability\", \"latency\""), "{msg}");
        assert!(msg.contains("2000 is over 1000"), "{msg}");
        // Unknown keys and a bad prefix are parse errors naming the key.
        let e = parse("[[balance]]\nprefix = \"tools/*\"\nmethod = \"latency\"\nalpha = 0.5\n")
            .expect_err("unknown key");
        assert!(e.to_string().contains("alpha"), "{e}");
        let e = parse("[[balance]]\nprefix = \"tools//x\"\nmethod = \"latency\"\n")
            .expect_err("bad prefix");
        assert!(e.to_string().contains("balance"), "{e}");
    }
}
