//! `abgp peers [PEER]`: the sessions, one line each, or one peer in full.

use std::process::ExitCode;

use clap::Args;
use serde_json::Value;

use super::{
    EXIT_NOT_FOUND, Node, Target, align_right, duration_ms, fail, print_json, print_table,
    short_peer, table, text,
};

#[derive(Debug, Args)]
pub struct PeersArgs {
    #[command(flatten)]
    pub target: Target,
    /// One peer: its peer id (or a unique start of it), node id, or ASN
    /// (`AS65001` or `65001`).
    pub peer: Option<String>,
}

/// The peer `wanted` names, if exactly one does.
pub fn find<'a>(peers: &'a [Value], wanted: &str) -> anyhow::Result<&'a Value> {
    let asn = wanted
        .strip_prefix("AS")
        .unwrap_or(wanted)
        .parse::<u64>()
        .ok();
    let hits: Vec<&Value> = peers
        .iter()
        .filter(|p| {
            p["peer_id"]
                .as_str()
                .is_some_and(|id| id.starts_with(wanted))
                || p["node_id"].as_str() == Some(wanted)
                || (asn.is_some() && p["asn"].as_u64() == asn)
        })
        .collect();
    match hits.as_slice() {
        [one] => Ok(one),
        [] => Err(fail(
            EXIT_NOT_FOUND,
            format!("no peer {wanted:?} (see `abgp peers`)"),
        )),
        many => Err(fail(
            EXIT_NOT_FOUND,
            format!(
                "{wanted:?} names {} peers; give more of the peer id",
                many.len()
            ),
        )),
    }
}

fn uptime(p: &Value, now_ms: u64) -> String {
    match p["established_since"].as_u64() {
        Some(t) if p["state"] == "established" => duration_ms(now_ms.saturating_sub(t)),
        _ => "-".into(),
    }
}

/// How the link is carried: `direct`, `relayed` (hole punching failed or
/// is off), `punching` (relayed while a hole punch is tried), or `-`.
fn path(p: &Value) -> String {
    text(&p["link"]["path"])
}

pub fn peers(a: PeersArgs) -> anyhow::Result<ExitCode> {
    let node = Node::open(&a.target)?;
    let v = node.get("/v1/peers")?;
    let list = v.as_array().cloned().unwrap_or_default();
    let now_ms = node.get("/v1/status")?["now_ms"].as_u64().unwrap_or(0);
    if let Some(w) = &a.peer {
        let p = find(&list, w)?;
        if a.target.json {
            print_json(p)?;
            return Ok(ExitCode::SUCCESS);
        }
        let link = &p["link"];
        let rows = [
            ("peer id", text(&p["peer_id"])),
            ("node id", text(&p["node_id"])),
            ("asn", format!("AS{}", p["asn"])),
            (
                "state",
                format!(
                    "{}{}",
                    text(&p["state"]),
                    if p["internal"] == true {
                        " (internal)"
                    } else {
                        " (external)"
                    }
                ),
            ),
            (
                "role",
                match p["local_role"].as_str() {
                    Some(r) => format!("{r} (our role towards it, RFC 9234)"),
                    None => "-".into(),
                },
            ),
            ("uptime", uptime(p, now_ms)),
            ("source", text(&p["source"])),
            ("routes in", text(&p["accepted_routes"])),
            ("routes out", text(&p["advertised_routes"])),
            ("addresses", super::joined(&p["addresses"], " ")),
            ("path", path(p)),
            (
                "link",
                if link.is_null() {
                    "-".into()
                } else {
                    link.to_string()
                },
            ),
            ("stale until", text(&p["stale_until"])),
            ("blocked", text(&p["blocked"])),
            ("last error", text(&p["last_error"])),
        ];
        for (k, v) in rows {
            println!("{k:<12} {v}");
        }
        return Ok(ExitCode::SUCCESS);
    }
    if a.target.json {
        print_json(&v)?;
        return Ok(ExitCode::SUCCESS);
    }
    let mut t = table(&[
        "PEER",
        "ASN",
        "STATE",
        "UPTIME",
        "IN",
        "OUT",
        "SOURCE",
        "PATH",
        "LAST ERROR",
    ]);
    for p in &list {
        t.add_row(vec![
            short_peer(p["peer_id"].as_str().unwrap_or("?")),
            format!("AS{}", p["asn"]),
            text(&p["state"]),
            uptime(p, now_ms),
            text(&p["accepted_routes"]),
            text(&p["advertised_routes"]),
            text(&p["source"]),
            path(p),
            text(&p["last_error"]),
        ]);
    }
    align_right(&mut t, &[4, 5]);
    print_table(&t);
    Ok(ExitCode::SUCCESS)
}
