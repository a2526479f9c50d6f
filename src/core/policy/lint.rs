//! Warnings about a policy file that compiled: things that are legal but
//! almost certainly not what its author meant (`abgp policy check`).

use std::fmt;

use super::model::{Disposition, PolicySet};

/// One warning.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lint {
    /// A short stable name, for scripts.
    pub code: &'static str,
    pub message: String,
}

impl fmt::Display for Lint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "warning[{}]: {}", self.code, self.message)
    }
}

impl PolicySet {
    /// The warnings for this file, in file order.
    pub fn lint(&self) -> Vec<Lint> {
        let mut out = Vec::new();
        if self.assignments.is_empty() {
            out.push(Lint {
                code: "no-apply",
                message: "no [[apply]] entry: every peer gets the RFC 8212 defaults \
                          (internal peers accept, external peers exchange nothing)"
                    .into(),
            });
        } else if self.external.is_none()
            && self.all.is_none()
            && self.by_asn.is_empty()
            && self.by_node.is_empty()
        {
            out.push(Lint {
                code: "no-external-apply",
                message: "no [[apply]] selects external peers: they exchange nothing (RFC 8212)"
                    .into(),
            });
        }
        for p in &self.policies {
            let applied = self.assignments.iter().any(|a| {
                a.import
                    .policies
                    .iter()
                    .chain(a.export.policies.iter())
                    .any(|q| q.name == p.name)
            });
            if !applied {
                out.push(Lint {
                    code: "unused-policy",
                    message: format!("policy {:?} is defined but no [[apply]] uses it", &*p.name),
                });
            }
            let mut terminal: Option<&str> = None;
            for s in p.statements.iter() {
                if let Some(t) = terminal {
                    out.push(Lint {
                        code: "unreachable-statement",
                        message: format!(
                            "policy {:?}, statement {:?} is never reached: statement {t:?} \
                             before it matches every route and decides",
                            &*p.name, s.label.statement
                        ),
                    });
                    continue;
                }
                if s.conds.is_empty() && s.disposition != Disposition::Next {
                    terminal = Some(&s.label.statement);
                }
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lints(text: &str) -> Vec<&'static str> {
        PolicySet::from_toml_str(text, "p.toml")
            .unwrap()
            .lint()
            .iter()
            .map(|l| l.code)
            .collect()
    }

    #[test]
    fn a_clean_file_has_no_warnings() {
        assert!(
            lints(
                r#"
[[policy]]
name = "p"
  [[policy.statement]]
  name = "a"
  match = { prefix.exact = ["x/y"] }
  then = { verdict = "reject" }
  [[policy.statement]]
  name = "b"
  then = { verdict = "accept" }

[[apply]]
neighbors = ["external"]
import = ["p"]
"#
            )
            .is_empty()
        );
    }

    #[test]
    fn missing_apply_unused_policies_and_unreachable_statements_are_flagged() {
        assert_eq!(lints(""), vec!["no-apply"]);
        assert_eq!(
            lints("[[apply]]\nneighbors = [\"internal\"]\n"),
            vec!["no-external-apply"]
        );
        let l = lints(
            r#"
[[policy]]
name = "p"
  [[policy.statement]]
  name = "all"
  then = { verdict = "next", med = 5 }
  [[policy.statement]]
  name = "stop"
  then = { verdict = "accept" }
  [[policy.statement]]
  name = "never"
  then = { verdict = "reject" }

[[policy]]
name = "spare"

[[apply]]
neighbors = ["*"]
export = ["p"]
"#,
        );
        // `all` only sets a MED and goes on; `stop` decides everything.
        assert_eq!(l, vec!["unreachable-statement", "unused-policy"]);
    }
}
