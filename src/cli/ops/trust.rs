//! `abgp trust list|rekey`: the first-seen keys of derived ASNs on the
//! running node, and accepting a re-key (an AS that really changed its key;
//! a key that collides with or was ground for a known ASN is refused until
//! then).

use std::process::ExitCode;

use clap::{Args, Subcommand};
use serde_json::json;

use super::{Node, Target, print_json, print_table, table, text};

#[derive(Debug, Subcommand)]
pub enum TrustCommand {
    /// The derived ASNs whose first-seen key this node holds them to.
    List(Target),
    /// Accept another key for a derived ASN (or `--forget` it: the next key
    /// seen holds it). Durable before the command returns.
    Rekey(RekeyArgs),
}

#[derive(Debug, Args)]
pub struct RekeyArgs {
    #[command(flatten)]
    pub target: Target,
    /// The derived ASN.
    pub asn: u32,
    /// The key that holds it from now on (64 hex digits, as `abgp trust
    /// list` and the refusal in the log print them).
    #[arg(required_unless_present = "forget", conflicts_with = "forget")]
    pub node: Option<String>,
    /// Forget the ASN's key instead.
    #[arg(long)]
    pub forget: bool,
}

pub fn trust(c: TrustCommand) -> anyhow::Result<ExitCode> {
    match c {
        TrustCommand::List(t) => list(t),
        TrustCommand::Rekey(a) => rekey(a),
    }
}

fn list(t: Target) -> anyhow::Result<ExitCode> {
    let node = Node::open(&t)?;
    let v = node.get("/v1/trust/asns")?;
    if t.json {
        print_json(&v)?;
        return Ok(ExitCode::SUCCESS);
    }
    let rows = v.as_array().cloned().unwrap_or_default();
    if rows.is_empty() {
        println!("no derived ASN recorded yet (a peer's key is recorded at its first session)");
        return Ok(ExitCode::SUCCESS);
    }
    let mut tb = table(&["ASN", "NODE", "PEER ID", "FIRST SEEN (UNIX MS)"]);
    for r in &rows {
        tb.add_row(vec![
            text(&r["asn"]),
            text(&r["node"]),
            text(&r["peer_id"]),
            text(&r["first_seen_ms"]),
        ]);
    }
    print_table(&tb);
    Ok(ExitCode::SUCCESS)
}

fn rekey(a: RekeyArgs) -> anyhow::Result<ExitCode> {
    let node = Node::open(&a.target)?;
    let body = json!({"asn": a.asn, "node": if a.forget { None } else { a.node.clone() }});
    let v = node.post("/v1/trust/rekey", &body)?;
    if a.target.json {
        print_json(&v)?;
        return Ok(ExitCode::SUCCESS);
    }
    let before = v["before"].as_str().unwrap_or("none");
    match v["now"].as_str() {
        Some(now) => println!("AS{}: held by {now} from now on (was {before})", a.asn),
        None => println!(
            "AS{}: forgotten (was {before}); the next key seen holds it",
            a.asn
        ),
    }
    Ok(ExitCode::SUCCESS)
}
