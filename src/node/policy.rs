//! Reloading the policy file while the node runs (`POST /v1/policy/reload`,
//! `abgp policy reload`, SIGHUP): the file is compiled first and a file
//! with errors changes nothing; a good one replaces the policy in force,
//! every kept pre-policy path is re-run through import and the export
//! pass advertises or withdraws what changed.

use super::*;
use crate::admin::AdminError;
use crate::admin::explain::PolicyCheckView;

/// Why a reload did not happen.
#[derive(Debug)]
pub(super) enum ReloadError {
    /// Nothing to reload, or the file does not compile: nothing changed.
    Refused(AdminError),
    /// The store failed while the change was written: fatal, as elsewhere.
    Node(NodeError),
}

impl Node {
    /// Compiles the configured policy file and puts it in force. The
    /// answer is what the change did (a dry run taken just before it).
    pub(super) async fn reload_policy(&mut self) -> Result<PolicyCheckView, ReloadError> {
        let Some(path) = self.policy_path.clone() else {
            return Err(ReloadError::Refused(AdminError::Conflict(format!(
                "{}: no [policy] file is configured; the RFC 8212 defaults are in force \
                 (set [policy] file and restart to use one)",
                self.cfg.path.display()
            ))));
        };
        let set = crate::config::load_policy_file(&path).map_err(|e| {
            let errors: Vec<String> = e.messages();
            ReloadError::Refused(AdminError::BadRequest(format!(
                "the policy in force is unchanged: {}",
                errors.join("; ")
            )))
        })?;
        let warnings = set.lint().iter().map(|l| l.to_string()).collect();
        let new = NodePolicy::new(self.security.asn(), set);
        let old = self.explain_policy.clone();
        let run = crate::core::explain::policy_dry_run(&mut self.engine, &old, &new);
        self.explain_policy = new.clone();
        self.step(vec![Event::PolicyReloaded(Arc::new(new))], None)
            .await
            .map_err(ReloadError::Node)?;
        tracing::info!(
            file = %path.display(),
            changes = run.changes.len(),
            "policy reloaded"
        );
        Ok(PolicyCheckView::new(warnings, &run))
    }

    /// SIGHUP: reload, and say in the log what happened.
    pub(super) async fn reload_policy_on_signal(&mut self) -> Result<(), NodeError> {
        match self.reload_policy().await {
            Ok(_) => Ok(()),
            Err(ReloadError::Refused(e)) => {
                tracing::warn!(error = %e, "SIGHUP: policy not reloaded");
                Ok(())
            }
            Err(ReloadError::Node(e)) => Err(e),
        }
    }
}
