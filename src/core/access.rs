//! Access policy at the origin: which callers may run which tools.
//!
//! Reach is governed by routing first: a call only arrives at the origin
//! through hops that each advertised the route to the previous one, so
//! export policy already decides which ASes can get here at all. The
//! `[[access]]` rules of node.toml narrow that down per prefix, using the
//! caller the CALL's signed origin names (its ASN, and the communities its
//! node claims), never the previous hop.
//!
//! ```toml
//! [[access]]
//! name = "finance only"              # optional, shown in denials and logs
//! prefixes = ["finance/*"]           # tools these rules cover (default: all)
//! caller_asns = [65001, "own"]       # "own" is this node's AS
//! caller_communities = ["finance"]   # any of these, claimed by the caller
//! action = "allow"
//!
//! [[access]]
//! prefixes = ["finance/*"]
//! any_caller = true
//! action = "deny"
//! ```
//!
//! A rule applies when one of its prefixes covers the tool's route prefix
//! and the caller matches one of its conditions (an ASN, a community, or
//! `any_caller`). The first rule that applies decides. When none does, the
//! default applies: `allow` unless `access-default = "deny"` is set, because
//! the call arrived along advertised routes (or from this node itself).
//!
//! Like `core::policy`, the configuration form is compiled once (errors name
//! the rule) into a form whose evaluation cannot fail.

use serde::{Deserialize, Serialize};

use super::community::Community;
use super::ids::Asn;
use super::prefix::Prefix;

/// What a rule does to the callers it matches.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum AccessAction {
    #[default]
    Allow,
    Deny,
}

/// An ASN in a rule: a number, or `"own"` for this node's AS.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum AsnSpec {
    Number(u32),
    Text(String),
}

/// One `[[access]]` entry as written in node.toml.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AccessRuleConfig {
    #[serde(default)]
    pub name: Option<String>,
    /// Prefixes the rule covers; empty means every prefix.
    #[serde(default)]
    pub prefixes: Vec<String>,
    #[serde(default, alias = "caller-asns")]
    pub caller_asns: Vec<AsnSpec>,
    #[serde(default, alias = "caller-communities")]
    pub caller_communities: Vec<String>,
    #[serde(default, alias = "any-caller")]
    pub any_caller: bool,
    pub action: AccessAction,
}

/// Why an access configuration does not compile.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AccessConfigError {
    #[error("[[access]] rule {index}: prefix {text:?}: {error}")]
    Prefix {
        index: usize,
        text: String,
        error: super::prefix::PrefixError,
    },
    #[error("[[access]] rule {index}: caller ASN {text:?} is neither a number nor \"own\"")]
    Asn { index: usize, text: String },
    #[error("[[access]] rule {index}: community {text:?}: {error}")]
    Community {
        index: usize,
        text: String,
        error: super::community::CommunityError,
    },
    #[error(
        "[[access]] rule {index}: names no caller (set caller_asns, caller_communities or any_caller = true)"
    )]
    NoCaller { index: usize },
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Rule {
    label: String,
    prefixes: Vec<Prefix>,
    asns: Vec<Asn>,
    communities: Vec<Community>,
    any: bool,
    action: AccessAction,
}

/// The compiled access policy. The default policy has no rules and allows.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AccessPolicy {
    rules: Vec<Rule>,
    default: AccessAction,
}

/// The caller as the origin verified it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller<'a> {
    pub asn: Asn,
    pub communities: &'a [Community],
}

/// The verdict, with what decided it (for denials and logs).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccessDecision {
    pub action: AccessAction,
    /// `rule 2 ("finance only")`, or `default`.
    pub by: String,
}

impl AccessDecision {
    pub fn allowed(&self) -> bool {
        self.action == AccessAction::Allow
    }
}

impl AccessPolicy {
    /// Compiles `[[access]]` rules for a node of AS `own`.
    pub fn compile(
        own: Asn,
        rules: &[AccessRuleConfig],
        default: AccessAction,
    ) -> Result<Self, AccessConfigError> {
        let mut out = Vec::with_capacity(rules.len());
        for (i, r) in rules.iter().enumerate() {
            let index = i + 1;
            let prefixes = r
                .prefixes
                .iter()
                .map(|t| {
                    Prefix::new(t).map_err(|error| AccessConfigError::Prefix {
                        index,
                        text: t.clone(),
                        error,
                    })
                })
                .collect::<Result<Vec<_>, _>>()?;
            let asns = r
                .caller_asns
                .iter()
                .map(|a| match a {
                    AsnSpec::Number(n) => Ok(Asn(*n)),
                    AsnSpec::Text(t) if t == "own" => Ok(own),
                    AsnSpec::Text(t) => t.parse::<Asn>().map_err(|_| AccessConfigError::Asn {
                        index,
                        text: t.clone(),
                    }),
                })
                .collect::<Result<Vec<_>, _>>()?;
            let communities = r
                .caller_communities
                .iter()
                .map(|t| {
                    t.parse::<Community>()
                        .map_err(|error| AccessConfigError::Community {
                            index,
                            text: t.clone(),
                            error,
                        })
                })
                .collect::<Result<Vec<_>, _>>()?;
            if asns.is_empty() && communities.is_empty() && !r.any_caller {
                return Err(AccessConfigError::NoCaller { index });
            }
            let label = match &r.name {
                Some(n) => format!("rule {index} ({n:?})"),
                None => format!("rule {index}"),
            };
            out.push(Rule {
                label,
                prefixes,
                asns,
                communities,
                any: r.any_caller,
                action: r.action,
            });
        }
        Ok(AccessPolicy {
            rules: out,
            default,
        })
    }

    pub fn rule_count(&self) -> usize {
        self.rules.len()
    }

    /// May `caller` run the tool routed under `prefix`?
    pub fn decide(&self, caller: &Caller<'_>, prefix: &Prefix) -> AccessDecision {
        for r in &self.rules {
            let covers = r.prefixes.is_empty() || r.prefixes.iter().any(|p| p.covers(prefix));
            if !covers {
                continue;
            }
            let matches = r.any
                || r.asns.contains(&caller.asn)
                || r.communities.iter().any(|c| caller.communities.contains(c));
            if matches {
                return AccessDecision {
                    action: r.action,
                    by: r.label.clone(),
                };
            }
        }
        AccessDecision {
            action: self.default,
            by: "default".into(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> Prefix {
        Prefix::new(s).unwrap()
    }

    fn rules(toml_text: &str) -> Vec<AccessRuleConfig> {
        #[derive(Deserialize)]
        struct Doc {
            access: Vec<AccessRuleConfig>,
        }
        toml::from_str::<Doc>(toml_text).unwrap().access
    }

    const FINANCE: &str = r#"
        [[access]]
        name = "finance only"
        prefixes = ["finance/*"]
        caller_asns = [65001, "own"]
        caller_communities = ["finance"]
        action = "allow"

        [[access]]
        prefixes = ["finance/*"]
        any-caller = true
        action = "deny"
    "#;

    fn finance() -> AccessPolicy {
        AccessPolicy::compile(Asn(65003), &rules(FINANCE), AccessAction::Allow).unwrap()
    }

    #[test]
    fn listed_asn_is_allowed_by_the_first_rule() {
        let d = finance().decide(
            &Caller {
                asn: Asn(65001),
                communities: &[],
            },
            &p("finance/ledger/post"),
        );
        assert!(d.allowed());
        assert_eq!(d.by, "rule 1 (\"finance only\")");
    }

    #[test]
    fn own_as_keyword_means_this_nodes_asn() {
        let d = finance().decide(
            &Caller {
                asn: Asn(65003),
                communities: &[],
            },
            &p("finance/x"),
        );
        assert!(d.allowed());
    }

    #[test]
    fn claimed_community_matches() {
        let c = [Community::named("finance").unwrap()];
        let d = finance().decide(
            &Caller {
                asn: Asn(65009),
                communities: &c,
            },
            &p("finance/x"),
        );
        assert!(d.allowed());
    }

    #[test]
    fn other_callers_fall_through_to_the_deny_rule() {
        let d = finance().decide(
            &Caller {
                asn: Asn(65002),
                communities: &[],
            },
            &p("finance/x"),
        );
        assert!(!d.allowed());
        assert_eq!(d.by, "rule 2");
    }

    #[test]
    fn prefixes_no_rule_covers_get_the_default() {
        let d = finance().decide(
            &Caller {
                asn: Asn(65002),
                communities: &[],
            },
            &p("utility/time/now"),
        );
        assert!(d.allowed());
        assert_eq!(d.by, "default");
        let strict = AccessPolicy::compile(Asn(1), &rules(FINANCE), AccessAction::Deny).unwrap();
        assert!(
            !strict
                .decide(
                    &Caller {
                        asn: Asn(65002),
                        communities: &[]
                    },
                    &p("utility/time/now")
                )
                .allowed()
        );
    }

    #[test]
    fn compile_rejects_a_rule_without_callers_and_names_it() {
        let r = rules(
            r#"
            [[access]]
            action = "allow"
            caller-asns = [1]
            [[access]]
            prefixes = ["a/*"]
            action = "deny"
        "#,
        );
        assert_eq!(
            AccessPolicy::compile(Asn(1), &r, AccessAction::Allow),
            Err(AccessConfigError::NoCaller { index: 2 })
        );
    }

    #[test]
    fn compile_rejects_bad_prefixes_asns_and_communities() {
        let bad_prefix =
            rules("[[access]]\nprefixes = [\"a//b\"]\nany-caller = true\naction = \"deny\"");
        assert!(matches!(
            AccessPolicy::compile(Asn(1), &bad_prefix, AccessAction::Allow),
            Err(AccessConfigError::Prefix { index: 1, .. })
        ));
        let bad_asn = rules("[[access]]\ncaller-asns = [\"mine\"]\naction = \"deny\"");
        assert!(matches!(
            AccessPolicy::compile(Asn(1), &bad_asn, AccessAction::Allow),
            Err(AccessConfigError::Asn { index: 1, .. })
        ));
        let bad_comm = rules("[[access]]\ncaller-communities = [\"A B\"]\naction = \"deny\"");
        assert!(matches!(
            AccessPolicy::compile(Asn(1), &bad_comm, AccessAction::Allow),
            Err(AccessConfigError::Community { index: 1, .. })
        ));
    }

    #[test]
    fn unknown_keys_are_rejected() {
        #[derive(Deserialize, Debug)]
        struct Doc {
            #[allow(dead_code)]
            access: Vec<AccessRuleConfig>,
        }
        let e = toml::from_str::<Doc>("[[access]]\naction = \"allow\"\ncallers = 1").unwrap_err();
        assert!(e.to_string().contains("callers"), "{e}");
    }
}
