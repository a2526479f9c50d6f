//! `abgp status`: who this node is and how it is doing, at a glance.

use std::process::ExitCode;

use serde_json::{Value, json};

use super::{Node, Target, duration_ms, print_json, text};

/// Reachability as AutoNAT found it, the relays held, and whether this
/// node relays for others.
fn reach(n: &Value) -> String {
    let mut out = match n["reachability"].as_str() {
        Some("public") => format!("public ({})", super::joined(&n["confirmed"], " ")),
        Some("private") => "behind NAT (AutoNAT could not dial us back)".to_string(),
        _ if n["autonat"] == false => "unknown (AutoNAT off)".to_string(),
        _ => "unknown (no AutoNAT answer yet)".to_string(),
    };
    let reserved: Vec<String> = n["relays"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|r| r["state"] == "reserved")
        .map(|r| super::short_peer(r["peer_id"].as_str().unwrap_or("?")))
        .collect();
    if !reserved.is_empty() {
        out.push_str(&format!("; relayed by {}", reserved.join(", ")));
    }
    if n["relay_server"] == true {
        out.push_str(&format!(
            "; relaying for others ({} circuits open)",
            n["stats"]["relay_circuits_active"]
        ));
    }
    out
}

pub fn status(t: Target) -> anyhow::Result<ExitCode> {
    let node = Node::open(&t)?;
    let s = node.get("/v1/status")?;
    let mcp = node.get_optional("/v1/mcp")?.unwrap_or(Value::Null);
    if t.json {
        print_json(&json!({"status": s, "mcp": mcp}))?;
        return Ok(ExitCode::SUCCESS);
    }
    let p = &s["peers"];
    let store = &s["store"];
    let d = &s["discovery"];
    let mut discovery: Vec<&str> = Vec::new();
    if d["mdns"] == true {
        discovery.push("mdns");
    }
    if d["kademlia"] == true {
        discovery.push(if d["kademlia_server"] == true {
            "kademlia (server)"
        } else {
            "kademlia"
        });
    }
    let rows: Vec<(&str, String)> = vec![
        (
            "node",
            format!(
                "AS{} ({}), federation {}{}",
                s["asn"],
                text(&s["asn_binding"]),
                text(&s["federation"]),
                if s["bootstrap"] == true {
                    ", bootstrap node"
                } else {
                    ""
                }
            ),
        ),
        ("peer id", text(&s["peer_id"])),
        (
            "version",
            format!(
                "{}, up {}",
                text(&s["version"]),
                duration_ms(s["uptime_ms"].as_u64().unwrap_or(0))
            ),
        ),
        ("listen", super::joined(&s["listen"], " ")),
        ("admin", text(&s["admin"])),
        (
            "peers",
            format!(
                "{} established of {} ({} configured, {} discovered)",
                p["established"], p["total"], p["configured"], p["auto"]
            ),
        ),
        ("routes", format!("{} in the Loc-RIB", s["loc_rib_routes"])),
        (
            "discovery",
            if discovery.is_empty() {
                "off".into()
            } else {
                discovery.join(", ")
            },
        ),
        (
            "store",
            match store["error"].as_str() {
                Some(e) => format!("FAILING: {e}"),
                None => format!(
                    "{} of {} batches durable, {} acks pending",
                    store["durable_batches"], store["submitted_batches"], store["pending_acks"]
                ),
            },
        ),
        (
            "mcp front",
            match mcp["url"].as_str() {
                Some(u) => format!(
                    "{u}{}: {} tools, {} calls in flight",
                    if mcp["bearer_token_required"] == true {
                        " (token)"
                    } else {
                        ""
                    },
                    mcp["front_lists"]["tools"],
                    mcp["calls_in_flight"]
                ),
                None => "off".into(),
            },
        ),
    ];
    let mut rows = rows;
    rows.insert(7, ("reach", reach(&s["nat"])));
    if let Some(views) = mcp["views"].as_array().filter(|v| !v.is_empty()) {
        let list: Vec<String> = views
            .iter()
            .map(|v| format!("{} ({})", text(&v["name"]), text(&v["mode"])))
            .collect();
        rows.push(("views", list.join(", ")));
    }
    for (k, v) in rows {
        println!("{k:<10} {v}");
    }
    Ok(ExitCode::SUCCESS)
}
