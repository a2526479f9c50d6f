//! `abgp why PREFIX`: every candidate path of a prefix, the decision step
//! at which each lost, exclusions and their reasons, the import policy
//! statement that decided each path (rejected ones too), and for every
//! established peer whether the best path is advertised and what decided.

use std::process::ExitCode;

use clap::Args;
use serde_json::Value;

use super::{Node, Target, as_path, percent_encode, print_json, short_peer, text};

#[derive(Debug, Args)]
pub struct WhyArgs {
    #[command(flatten)]
    pub target: Target,
    /// A routed prefix, a name under one (the prefix a call would use is
    /// explained), or a tool's name as the MCP front lists it.
    pub prefix: String,
}

fn is_not_found(e: &anyhow::Error) -> bool {
    e.downcast_ref::<super::Failure>()
        .is_some_and(|f| f.code == super::EXIT_NOT_FOUND)
}

/// The prefix of the tool the MCP front lists under `name`.
fn front_prefix(node: &Node, name: &str) -> anyhow::Result<Option<String>> {
    let tools = node.get("/v1/tools")?;
    Ok(tools
        .as_array()
        .into_iter()
        .flatten()
        .find(|t| t["name"] == name)
        .and_then(|t| t["prefix"].as_str().map(str::to_string)))
}

fn decision(d: &Value) -> String {
    format!("{} by {}", text(&d["verdict"]), text(&d["decided_by"]))
}

fn via(v: &Value) -> String {
    match v["peer"].as_str() {
        Some(p) => format!("via {} (AS{})", short_peer(p), first_as(v)),
        None => "originated here".into(),
    }
}

fn first_as(v: &Value) -> String {
    v["as_path"]
        .as_array()
        .and_then(|a| a.first())
        .map_or_else(|| "own".into(), |a| a.to_string())
}

pub fn why(a: WhyArgs) -> anyhow::Result<ExitCode> {
    let node = Node::open(&a.target)?;
    let w = match node.get(&format!("/v1/why?prefix={}", percent_encode(&a.prefix))) {
        Ok(w) => w,
        // Not a prefix with paths: maybe the name a client calls.
        Err(e) if is_not_found(&e) => match front_prefix(&node, &a.prefix)? {
            Some(p) => {
                if !a.target.json {
                    println!("{} is the front's name for {p}", a.prefix);
                }
                node.get(&format!("/v1/why?prefix={}", percent_encode(&p)))?
            }
            None => return Err(e),
        },
        Err(e) => return Err(e),
    };
    if a.target.json {
        print_json(&w)?;
        return Ok(ExitCode::SUCCESS);
    }
    match w["longest_match"].as_str() {
        Some(m) => println!("{} is routed by {m}", a.prefix),
        None => println!("{}", text(&w["prefix"])),
    }
    let paths = w["paths"].as_array().cloned().unwrap_or_default();
    println!("\npaths ({}), best first:", paths.len());
    for p in &paths {
        let mark = match p["status"].as_str() {
            Some("best") => "*>",
            Some("lost") if p["multipath"] == true => "*=",
            Some("lost") => "* ",
            _ => "x ",
        };
        println!(
            "  {mark} {}  as-path {}  local-pref {}  med {}{}",
            via(p),
            as_path(&p["as_path"]),
            text(&p["local_pref"]),
            text(&p["med"]),
            if p["stale"] == true { "  stale" } else { "" }
        );
        match p["status"].as_str() {
            Some("best") => println!("       best path"),
            Some("lost") => println!(
                "       lost at {}: {}{}",
                text(&p["reason"]),
                text(&p["reason_text"]),
                if p["multipath"] == true {
                    " (tie-breaker only: in the multipath set)"
                } else {
                    ""
                }
            ),
            _ => println!(
                "       excluded: {} ({})",
                text(&p["reason_text"]),
                text(&p["reason"])
            ),
        }
        if p["import"].is_object() {
            println!(
                "       import: {}{}",
                decision(&p["import"]),
                if p["modified_on_import"] == true {
                    " (attributes changed)"
                } else {
                    ""
                }
            );
        }
    }
    if w["balance"].is_object() {
        print_balance(&w["balance"]);
    }
    let rejected = w["rejected"].as_array().cloned().unwrap_or_default();
    if !rejected.is_empty() {
        println!("\nrejected on import ({}):", rejected.len());
        for r in &rejected {
            println!(
                "  r  via {} (AS{})  as-path {}",
                short_peer(r["peer"].as_str().unwrap_or("?")),
                r["asn"],
                as_path(&r["route"]["as_path"])
            );
            println!("       import: {}", decision(&r["import"]));
        }
    }
    let exports = w["exports"].as_array().cloned().unwrap_or_default();
    println!("\nexport to established peers ({}):", exports.len());
    for e in &exports {
        let who = format!(
            "{} (AS{})",
            short_peer(e["peer"].as_str().unwrap_or("?")),
            e["asn"]
        );
        if e["advertised"] == true {
            println!(
                "  -> {who}: advertised, as-path {}",
                as_path(&e["route"]["as_path"])
            );
        } else {
            println!("  -- {who}: not advertised: {}", text(&e["reason_text"]));
        }
        if e["export"].is_object() {
            println!("       export: {}", decision(&e["export"]));
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// `balancing: METHOD (rule P) over N equally near paths:` and a line per
/// member with its weight and latency.
fn print_balance(b: &Value) {
    let members = b["members"].as_array().cloned().unwrap_or_default();
    let rule = match b["rule"].as_str() {
        Some(r) => format!(" (rule {r})"),
        None => " (no [[balance]] rule: only calls that ask, by call id)".into(),
    };
    let set = if b["set"] == "nearest" {
        "equally near"
    } else {
        "multipath"
    };
    println!(
        "\nbalancing: {}{rule} over {} {set} path{}:",
        text(&b["method"]),
        members.len(),
        if members.len() == 1 { "" } else { "s" }
    );
    for m in &members {
        let mut line = format!("  {}", short_peer(m["peer"].as_str().unwrap_or("?")));
        if let Some(w) = m["weight"].as_u64() {
            line.push_str(&format!("  weight {w} ({})", text(&m["weight_from"])));
        }
        match (m["latency_ewma_us"].as_u64(), m["latency_samples"].as_u64()) {
            (Some(us), Some(n)) => line.push_str(&format!(
                "  latency {:.1} ms ({n} sample{})",
                us as f64 / 1000.0,
                if n == 1 { "" } else { "s" }
            )),
            _ if b["method"] == "latency" => line.push_str("  latency not measured yet"),
            _ => {}
        }
        println!("{line}");
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn query_values_are_percent_encoded() {
        assert_eq!(super::super::percent_encode("tools/c/*"), "tools%2Fc%2F%2A");
        assert_eq!(super::super::percent_encode("a b&c"), "a%20b%26c");
    }
}
