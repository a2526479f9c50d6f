//! The JSON shapes of the operator endpoints that explain rather than
//! list: every path of a prefix with its decision (`/v1/why`, `/v1/paths`),
//! a policy dry run (`/v1/policy/check`), and what the MCP front offers
//! (`/v1/tools`).

use serde::Serialize;

use super::views::RouteView;
use crate::core::decision::Status;
use crate::core::engine::{DampingReport, PathReport};
use crate::core::explain::{DryRun, Why};
use crate::core::policy::{Decision, Direction};
use crate::identity::peer_id_of;
use crate::mcp::front::table::FrontTool;

/// A policy decision: the verdict and what decided it, in words.
#[derive(Debug, Clone, Serialize)]
pub struct DecisionView {
    pub verdict: String,
    pub decided_by: String,
}

impl From<&Decision> for DecisionView {
    fn from(d: &Decision) -> Self {
        DecisionView {
            verdict: d.verdict.to_string(),
            decided_by: d.decided_by.to_string(),
        }
    }
}

/// One path of a prefix, as `why` and `routes --detail` show it.
#[derive(Debug, Clone, Serialize)]
pub struct PathView {
    #[serde(flatten)]
    pub route: RouteView,
    /// `best`, `lost` or `excluded`.
    pub status: &'static str,
    /// The decision step it lost at, or the exclusion (kebab-case).
    pub reason: Option<String>,
    /// The reason in words.
    pub reason_text: Option<&'static str>,
    pub multipath: bool,
    pub learned: String,
    pub import: Option<DecisionView>,
    pub modified_on_import: bool,
    /// The flap-damping record (penalty now, suppressed, reuse time in ms
    /// since the epoch), when the path has one.
    pub damping: Option<DampingReport>,
}

fn status_of(s: &Status) -> (&'static str, Option<String>, Option<&'static str>) {
    let name = |v: serde_json::Value| v.as_str().map(str::to_string);
    match s {
        Status::Best => ("best", None, None),
        Status::Lost(step) => (
            "lost",
            serde_json::to_value(step).ok().and_then(name),
            Some(step.describe_loss()),
        ),
        Status::Excluded(e) => (
            "excluded",
            serde_json::to_value(e).ok().and_then(name),
            Some(e.describe()),
        ),
    }
}

impl PathView {
    pub fn new(
        report: &PathReport,
        multipath: bool,
        import: Option<&Decision>,
        modified: bool,
    ) -> Self {
        let (status, reason, reason_text) = status_of(&report.status);
        PathView {
            route: RouteView::best(&report.route, Some(report)),
            status,
            reason,
            reason_text,
            multipath,
            learned: format!("{:?}", report.learned).to_lowercase(),
            import: import.map(DecisionView::from),
            modified_on_import: modified,
            damping: report.damping,
        }
    }
}

/// A path import policy rejected.
#[derive(Debug, Clone, Serialize)]
pub struct RejectedView {
    pub peer: String,
    pub asn: u32,
    pub route: RouteView,
    pub import: DecisionView,
}

/// What happens to the best path towards one peer.
#[derive(Debug, Clone, Serialize)]
pub struct ExportView {
    pub peer: String,
    pub asn: u32,
    pub advertised: bool,
    /// Why not (a stable name), when not.
    pub reason: Option<&'static str>,
    pub reason_text: Option<&'static str>,
    pub export: Option<DecisionView>,
    /// The route as advertised (AS path with our AS prepended).
    pub route: Option<RouteView>,
}

/// `GET /v1/why?prefix=P`.
#[derive(Debug, Clone, Serialize)]
pub struct WhyView {
    pub prefix: String,
    /// The Loc-RIB prefix a call for `prefix` would use, when it is not
    /// `prefix` itself (a tool name under a routed prefix).
    pub longest_match: Option<String>,
    pub paths: Vec<PathView>,
    pub rejected: Vec<RejectedView>,
    pub exports: Vec<ExportView>,
    /// How calls for the prefix are spread over its paths (`None`: no
    /// path to a peer, e.g. it is originated here).
    pub balance: Option<BalanceJson>,
}

/// `/v1/why`'s `balance`: the method, the rule that chose it, the set
/// (`multipath`, or `nearest`: equal through AS-path length) and each
/// member with its weight (`weighted`) and latency EWMA (`latency`).
#[derive(Debug, Clone, Serialize)]
pub struct BalanceJson {
    pub method: &'static str,
    pub rule: Option<String>,
    pub set: &'static str,
    pub members: Vec<BalanceMemberJson>,
}

#[derive(Debug, Clone, Serialize)]
pub struct BalanceMemberJson {
    /// The next hop's peer id.
    pub peer: String,
    pub weight: Option<u32>,
    /// `config` or `med`.
    pub weight_from: Option<&'static str>,
    pub latency_ewma_us: Option<u64>,
    pub latency_samples: Option<u64>,
}

impl From<&crate::core::forward::balance::BalanceView> for BalanceJson {
    fn from(v: &crate::core::forward::balance::BalanceView) -> Self {
        BalanceJson {
            method: v.method.name(),
            rule: v.rule.as_ref().map(|r| r.to_string()),
            set: v.set,
            members: v
                .members
                .iter()
                .map(|m| BalanceMemberJson {
                    peer: peer_id_of(&m.peer).to_string(),
                    weight: m.weight,
                    weight_from: m.weight_from,
                    latency_ewma_us: m.latency.map(|l| l.ewma_us),
                    latency_samples: m.latency.map(|l| l.samples),
                })
                .collect(),
        }
    }
}

impl WhyView {
    pub fn new(w: &Why, longest_match: Option<String>) -> Self {
        WhyView {
            prefix: w.prefix.to_string(),
            longest_match,
            paths: w
                .paths
                .iter()
                .map(|p| PathView::new(&p.report, p.multipath, p.import.as_ref(), p.modified))
                .collect(),
            rejected: w
                .rejected
                .iter()
                .map(|r| RejectedView {
                    peer: peer_id_of(&r.peer).to_string(),
                    asn: r.asn.0,
                    route: RouteView::new(&r.route),
                    import: DecisionView::from(&r.decision),
                })
                .collect(),
            exports: w
                .exports
                .iter()
                .map(|e| ExportView {
                    peer: peer_id_of(&e.peer).to_string(),
                    asn: e.asn.0,
                    advertised: e.outcome.is_ok(),
                    reason: e.outcome.as_ref().err().map(|r| r.name()),
                    reason_text: e.outcome.as_ref().err().map(|r| r.describe()),
                    export: e.decision.as_ref().map(DecisionView::from),
                    route: e.outcome.as_ref().ok().map(RouteView::new),
                })
                .collect(),
            balance: None,
        }
    }
}

/// One route a new policy treats differently.
#[derive(Debug, Clone, Serialize)]
pub struct ChangeView {
    pub direction: String,
    /// `accepted`, `rejected`, `modified`.
    pub change: &'static str,
    pub peer: String,
    pub asn: u32,
    pub route: RouteView,
    pub before: DecisionView,
    pub after: DecisionView,
}

/// Counts per direction and kind of change.
#[derive(Debug, Clone, Default, Serialize)]
pub struct ChangeCounts {
    pub accepted: usize,
    pub rejected: usize,
    pub modified: usize,
}

/// `POST /v1/policy/check`: the file's warnings and what it would change.
#[derive(Debug, Clone, Serialize)]
pub struct PolicyCheckView {
    /// The file compiled.
    pub valid: bool,
    /// `file:line:col: field: reason`, one per problem (when not valid).
    pub errors: Vec<String>,
    pub warnings: Vec<String>,
    pub import_evaluated: usize,
    pub export_evaluated: usize,
    pub import: ChangeCounts,
    pub export: ChangeCounts,
    /// At most [`MAX_CHANGES_LISTED`]; the counts are complete.
    pub changes: Vec<ChangeView>,
    pub changes_truncated: bool,
}

/// Changes listed one by one in a dry run's answer.
pub const MAX_CHANGES_LISTED: usize = 1000;

impl PolicyCheckView {
    pub fn invalid(errors: Vec<String>) -> Self {
        PolicyCheckView {
            valid: false,
            errors,
            warnings: Vec::new(),
            import_evaluated: 0,
            export_evaluated: 0,
            import: ChangeCounts::default(),
            export: ChangeCounts::default(),
            changes: Vec::new(),
            changes_truncated: false,
        }
    }

    pub fn new(warnings: Vec<String>, d: &DryRun) -> Self {
        use crate::core::explain::Change;
        let counts = |dir| ChangeCounts {
            accepted: d.count(dir, Change::Accepted),
            rejected: d.count(dir, Change::Rejected),
            modified: d.count(dir, Change::Modified),
        };
        PolicyCheckView {
            valid: true,
            errors: Vec::new(),
            warnings,
            import_evaluated: d.import_evaluated,
            export_evaluated: d.export_evaluated,
            import: counts(Direction::Import),
            export: counts(Direction::Export),
            changes: d
                .changes
                .iter()
                .take(MAX_CHANGES_LISTED)
                .map(|c| ChangeView {
                    direction: c.direction.to_string(),
                    change: c.change.name(),
                    peer: peer_id_of(&c.peer).to_string(),
                    asn: c.asn.0,
                    route: RouteView::new(&c.route),
                    before: DecisionView::from(&c.before),
                    after: DecisionView::from(&c.after),
                })
                .collect(),
            changes_truncated: d.changes.len() > MAX_CHANGES_LISTED,
        }
    }
}

/// `GET /v1/tools`: one tool the MCP front lists.
#[derive(Debug, Clone, Serialize)]
pub struct ToolView {
    /// The name a client calls.
    pub name: String,
    pub prefix: String,
    /// Its name at the origin.
    pub tool: String,
    pub agent: String,
    pub origin_asn: u32,
    pub as_path: Vec<u32>,
    pub local: bool,
    pub med: u32,
    pub description: Option<String>,
    /// The descriptor has not been fetched (yet).
    pub descriptor_missing: bool,
}

impl From<&FrontTool> for ToolView {
    fn from(t: &FrontTool) -> Self {
        let r = &t.routed;
        ToolView {
            name: t.name.clone(),
            prefix: r.prefix.to_string(),
            tool: r.tool.clone(),
            agent: r.agent.to_string(),
            origin_asn: r.origin_asn.0,
            as_path: r.as_path.iter().map(|a| a.0).collect(),
            local: r.local,
            med: r.med,
            description: r.descriptor.as_ref().and_then(|d| d.description.clone()),
            descriptor_missing: r.descriptor.is_none(),
        }
    }
}
