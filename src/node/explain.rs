//! The node's answers to the explaining admin requests: `why` a prefix is
//! routed as it is, every path with its decision, a policy dry run, and
//! what the MCP front lists.

use super::*;
use crate::admin::AdminError;
use crate::admin::explain::{PathView, PolicyCheckView, ToolView, WhyView};
use crate::core::policy::PolicySet;
use crate::core::prefix::Prefix;

impl Node {
    pub(super) fn why_view(&mut self, prefix: &str) -> Result<WhyView, AdminError> {
        let wanted: Prefix = prefix
            .parse()
            .map_err(|e| AdminError::BadRequest(format!("{prefix:?} is not a prefix: {e}")))?;
        // A tool name under a routed prefix explains the prefix that
        // carries it, as a call would use it.
        let (exact, longest) = if self.engine.paths(&wanted).is_empty() {
            match self.engine.next_hop(&wanted) {
                Some((p, _)) => (p.clone(), Some(p.to_string())),
                None => (wanted.clone(), None),
            }
        } else {
            (wanted.clone(), None)
        };
        let why = crate::core::explain::why(&mut self.engine, &exact, &self.explain_policy);
        if why.paths.is_empty() && why.rejected.is_empty() {
            return Err(AdminError::NotFound(format!(
                "no path to {prefix}, accepted or rejected"
            )));
        }
        let mut view = WhyView::new(&why, longest);
        view.balance = self
            .mcp
            .plane
            .forwarder()
            .balance_view(&self.engine, &wanted)
            .as_ref()
            .map(Into::into);
        Ok(view)
    }

    pub(super) fn path_views(&self) -> Vec<PathView> {
        let prefixes: Vec<Prefix> = self
            .engine
            .loc_rib()
            .into_iter()
            .map(|r| r.prefix)
            .collect();
        let mut out = Vec::new();
        for p in prefixes {
            let paths = crate::core::explain::explain_paths(&self.engine, &p, &self.explain_policy);
            out.extend(
                paths
                    .iter()
                    .map(|w| PathView::new(&w.report, w.multipath, w.import.as_ref(), w.modified)),
            );
        }
        out
    }

    pub(super) fn policy_check(&mut self, text: &str, file: &str) -> PolicyCheckView {
        let set = match PolicySet::from_toml_str(text, file) {
            Ok(s) => s,
            Err(e) => {
                let errors = e.messages();
                return PolicyCheckView::invalid(errors);
            }
        };
        let warnings = set.lint().iter().map(|l| l.to_string()).collect();
        let new = NodePolicy::new(self.security.asn(), set);
        let old = self.explain_policy.clone();
        let run = crate::core::explain::policy_dry_run(&mut self.engine, &old, &new);
        PolicyCheckView::new(warnings, &run)
    }

    pub(super) fn tool_views(&self) -> Vec<ToolView> {
        self.mcp
            .plane
            .table()
            .tools()
            .iter()
            .map(ToolView::from)
            .collect()
    }
}
