//! `abgp policy check FILE`: compiles and lints a policy file here, then
//! has the running node dry-run it against its Adj-RIB-In and Loc-RIB and
//! shows what would change: routes newly accepted, rejected or modified on
//! import, and routes newly advertised, withdrawn or modified on export.
//! Nothing changes on the node.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Subcommand};
use serde_json::{Value, json};

use agent_bgp::core::policy::PolicySet;

use super::{
    EXIT_FAILED, Node, Target, as_path, fail, print_json, print_table, short_peer, table, text,
};

/// Largest policy file read (the node takes the same).
const MAX_POLICY_FILE: u64 = 1024 * 1024 - 1024;

#[derive(Debug, Subcommand)]
pub enum PolicyCommand {
    /// Parse and lint a policy file, then dry-run it on the running node.
    Check(CheckArgs),
    /// Re-read the node's `[policy]` file and put it in force (as SIGHUP
    /// does); a file with errors changes nothing.
    Reload(Target),
}

#[derive(Debug, Args)]
pub struct CheckArgs {
    #[command(flatten)]
    pub target: Target,
    /// The policy file (docs/policy.md).
    pub file: PathBuf,
    /// Only parse and lint; do not ask the node.
    #[arg(long)]
    pub offline: bool,
}

pub fn policy(c: PolicyCommand) -> anyhow::Result<ExitCode> {
    match c {
        PolicyCommand::Check(a) => check(a),
        PolicyCommand::Reload(t) => reload(t),
    }
}

fn reload(t: Target) -> anyhow::Result<ExitCode> {
    let node = Node::open(&t)?;
    let v = node.post("/v1/policy/reload", &json!({}))?;
    if t.json {
        print_json(&v)?;
        return Ok(ExitCode::SUCCESS);
    }
    let name = node
        .cfg
        .policy_path()
        .map_or_else(|| "the policy".to_string(), |p| p.display().to_string());
    for w in v["warnings"].as_array().into_iter().flatten() {
        println!("{}", text(w));
    }
    print_changes(&format!("{name}: reloaded, in force now"), &v);
    Ok(ExitCode::SUCCESS)
}

fn check(a: CheckArgs) -> anyhow::Result<ExitCode> {
    let len = std::fs::metadata(&a.file)
        .map_err(|e| fail(EXIT_FAILED, format!("{}: {e}", a.file.display())))?
        .len();
    if len > MAX_POLICY_FILE {
        return Err(fail(
            EXIT_FAILED,
            format!(
                "{}: {len} bytes; a policy file may have at most {MAX_POLICY_FILE}",
                a.file.display()
            ),
        ));
    }
    let text_in = std::fs::read_to_string(&a.file)
        .map_err(|e| fail(EXIT_FAILED, format!("{}: {e}", a.file.display())))?;
    let name = a.file.display().to_string();
    // Compile here first: errors need no node.
    let (errors, warnings): (Vec<String>, Vec<String>) =
        match PolicySet::from_toml_str(&text_in, &name) {
            Ok(set) => (
                Vec::new(),
                set.lint().iter().map(|l| l.to_string()).collect(),
            ),
            Err(e) => (e.messages(), Vec::new()),
        };
    if !errors.is_empty() || a.offline {
        if a.target.json {
            print_json(
                &json!({"valid": errors.is_empty(), "errors": errors, "warnings": warnings}),
            )?;
        } else {
            for e in &errors {
                println!("error: {e}");
            }
            for w in &warnings {
                println!("{w}");
            }
            if errors.is_empty() {
                println!("{name}: valid ({} warnings)", warnings.len());
            } else {
                println!("{name}: {} errors", errors.len());
            }
        }
        return Ok(if errors.is_empty() {
            ExitCode::SUCCESS
        } else {
            ExitCode::from(EXIT_FAILED)
        });
    }
    let node = Node::open(&a.target)?;
    let v = node.post(
        "/v1/policy/check",
        &json!({"policy": text_in, "file": name}),
    )?;
    if a.target.json {
        print_json(&v)?;
    } else {
        print_check(&name, &v);
    }
    Ok(if v["valid"] == true {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(EXIT_FAILED)
    })
}

fn print_check(name: &str, v: &Value) {
    for e in v["errors"].as_array().into_iter().flatten() {
        println!("error: {}", text(e));
    }
    if v["valid"] != true {
        return;
    }
    for w in v["warnings"].as_array().into_iter().flatten() {
        println!("{}", text(w));
    }
    print_changes(
        &format!("{name}: valid; dry run against the running node"),
        v,
    );
}

/// The counts and the routes of a dry run (or of a reload just done).
fn print_changes(title: &str, v: &Value) {
    println!(
        "{title} ({} paths in, {} best-path x peer pairs out):",
        v["import_evaluated"], v["export_evaluated"]
    );
    let (i, e) = (&v["import"], &v["export"]);
    println!(
        "  import: {} newly accepted, {} newly rejected, {} modified",
        i["accepted"], i["rejected"], i["modified"]
    );
    println!(
        "  export: {} newly exported, {} no longer exported, {} modified",
        e["accepted"], e["rejected"], e["modified"]
    );
    let changes = v["changes"].as_array().cloned().unwrap_or_default();
    if changes.is_empty() {
        println!("  nothing would change");
        return;
    }
    let mut t = table(&[
        "DIR",
        "CHANGE",
        "PEER",
        "PREFIX",
        "AS PATH",
        "NOW",
        "WITH THE FILE",
    ]);
    for c in &changes {
        let change = match (c["direction"].as_str(), c["change"].as_str()) {
            (Some("export"), Some("accepted")) => "newly exported",
            (Some("export"), Some("rejected")) => "withdrawn",
            (_, Some("accepted")) => "accepted",
            (_, Some("rejected")) => "rejected",
            (_, Some("modified")) => "modified",
            _ => "?",
        };
        t.add_row(vec![
            text(&c["direction"]),
            change.to_string(),
            format!(
                "{} AS{}",
                short_peer(c["peer"].as_str().unwrap_or("?")),
                c["asn"]
            ),
            text(&c["route"]["prefix"]),
            as_path(&c["route"]["as_path"]),
            format!(
                "{} by {}",
                text(&c["before"]["verdict"]),
                text(&c["before"]["decided_by"])
            ),
            format!(
                "{} by {}",
                text(&c["after"]["verdict"]),
                text(&c["after"]["decided_by"])
            ),
        ]);
    }
    print_table(&t);
    if v["changes_truncated"] == true {
        println!("  (more changes not listed; the counts above are complete)");
    }
}
