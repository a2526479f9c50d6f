//! Access policy at the origin: which callers may run which tools.
//!
//! Reach is governed by routing first: a call only arrives at the origin
//! through hops that each advertised the route to the previous one, so
//! export policy already decides which ASes can get here at all. The
//! `[[access]]` rules of node.toml narrow that down per prefix, using the
//! caller the CALL's signed origin names (its ASN, and its communities),
//! never the previous hop.
//!
//! A caller's communities count when an authority vouched for them: they
//! are in the caller's issued ASN certificate (`abgp asn issue
//! --community`). Communities the caller's node merely claims (`[mcp]
//! caller_communities`) count only in a rule that opts in with
//! `claimed_communities = true`, and a call allowed that way says so.
//!
//! ```toml
//! [[access]]
//! name = "finance only"              # optional, shown in denials and logs
//! prefixes = ["finance/*"]           # tools these rules cover (default: all)
//! caller_asns = [65001, "own"]       # "own" is this node's AS
//! caller_communities = ["finance"]   # any of these, in the caller's certificate
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
    /// Also match `caller_communities` the caller's node claims without a
    /// certificate vouching for them (an opt-in: anyone can claim any).
    #[serde(default, alias = "claimed-communities")]
    pub claimed_communities: bool,
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
    claimed: bool,
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
    /// Communities an authority vouched for in the caller's certificate.
    pub certified: &'a [Community],
    /// Communities the caller's node claims (signed by it, vouched for by
    /// nobody).
    pub claimed: &'a [Community],
}

/// The verdict, with what decided it (for denials and logs).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccessDecision {
    pub action: AccessAction,
    /// `rule 2 ("finance only")`, or `default`.
    pub by: String,
    /// The rule matched only on this community, which the caller claims
    /// without a certificate vouching for it (the rule opted in).
    pub claimed: Option<Community>,
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
                claimed: r.claimed_communities,
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
            let proven = r.any
                || r.asns.contains(&caller.asn)
                || r.communities.iter().any(|c| caller.certified.contains(c));
            if proven {
                return AccessDecision {
                    action: r.action,
                    by: r.label.clone(),
                    claimed: None,
                };
            }
            let claimed = r
                .communities
                .iter()
                .find(|c| r.claimed && caller.claimed.contains(c));
            if let Some(c) = claimed {
                return AccessDecision {
                    action: r.action,
                    by: format!("{} on the claimed community {c}", r.label),
                    claimed: Some(c.clone()),
                };
            }
        }
        AccessDecision {
            action: self.default,
            by: "default".into(),
            claimed: None,
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
                certified: &[],
                claimed: &[],
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
                certified: &[],
                claimed: &[],
            },
            &p("finance/x"),
        );
        assert!(d.allowed());
    }

    #[test]
    fn a_certified_community_matches_a_claimed_one_only_where_a_rule_opts_in() {
        let c = [Community::named("finance").unwrap()];
        let certified = Caller {
            asn: Asn(65009),
            certified: &c,
            claimed: &[],
        };
        let d = finance().decide(&certified, &p("finance/x"));
        assert!(d.allowed());
        assert_eq!(d.claimed, None);
        // Claimed by the caller's node, vouched for by nobody: the rule
        // does not match, and the next one denies.
        let claiming = Caller {
            asn: Asn(65009),
            certified: &[],
            claimed: &c,
        };
        let d = finance().decide(&claiming, &p("finance/x"));
        assert!(!d.allowed());
        assert_eq!(d.by, "rule 2");
        // A rule that opts in accepts the claim, and says so.
        let opt_in = FINANCE.replacen(
            "caller_communities = [\"finance\"]",
            "caller_communities = [\"finance\"]\n        claimed_communities = true",
            1,
        );
        let policy =
            AccessPolicy::compile(Asn(65003), &rules(&opt_in), AccessAction::Allow).unwrap();
        let d = policy.decide(&claiming, &p("finance/x"));
        assert!(d.allowed());
        assert_eq!(d.claimed, Some(c[0].clone()));
        assert_eq!(
            d.by,
            "rule 1 (\"finance only\") on the claimed community finance"
        );
        // A certificate still wins over a claim in the same rule.
        let both = Caller {
            asn: Asn(65009),
            certified: &c,
            claimed: &c,
        };
        assert_eq!(policy.decide(&both, &p("finance/x")).claimed, None);
    }

    #[test]
    fn other_callers_fall_through_to_the_deny_rule() {
        let d = finance().decide(
            &Caller {
                asn: Asn(65002),
                certified: &[],
                claimed: &[],
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
                certified: &[],
                claimed: &[],
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
                        certified: &[],
                        claimed: &[]
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
