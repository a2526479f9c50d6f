//! `abgp calls`: the calls in flight at this node and the recent ones,
//! with where each came from and went, and its hops.

use std::process::ExitCode;

use serde_json::{Value, json};

use super::{
    Node, Target, align_right, duration_ms, micros, print_json, print_table, short_peer, table,
    text,
};

fn side(v: &Value, none: &str) -> String {
    v.as_str().map_or_else(|| none.to_string(), short_peer)
}

/// The hops of a trace, origin last: `AS1 0.20 ms > AS2 1.10 ms`.
pub fn hops(trace: &Value) -> String {
    let Some(t) = trace.as_array().filter(|t| !t.is_empty()) else {
        return "-".into();
    };
    t.iter()
        .rev()
        .map(|h| {
            format!(
                "AS{} {}",
                h["asn"],
                micros(h["elapsed_us"].as_u64().unwrap_or(0))
            )
        })
        .collect::<Vec<_>>()
        .join(" > ")
}

pub fn calls(t: Target) -> anyhow::Result<ExitCode> {
    let node = Node::open(&t)?;
    let in_flight = node.get("/v1/calls")?;
    let recent = node.get_optional("/v1/calls/recent")?;
    if t.json {
        print_json(&json!({"in_flight": in_flight, "recent": recent}))?;
        return Ok(ExitCode::SUCCESS);
    }
    let list = in_flight.as_array().cloned().unwrap_or_default();
    println!("in flight ({}):", list.len());
    if !list.is_empty() {
        let mut tb = table(&[
            "CALL",
            "TARGET",
            "FROM",
            "TO",
            "AGE",
            "DEADLINE IN",
            "RETRIES",
        ]);
        for c in &list {
            tb.add_row(vec![
                text(&c["call_id"]),
                text(&c["target"]),
                side(&c["from"], "front"),
                side(&c["to"], "agent here"),
                duration_ms(c["age_ms"].as_u64().unwrap_or(0)),
                duration_ms(c["deadline_in_ms"].as_u64().unwrap_or(0)),
                text(&c["retries"]),
            ]);
        }
        align_right(&mut tb, &[6]);
        print_table(&tb);
    }
    match recent {
        None => println!("\nrecent: this node does not keep recent calls"),
        Some(r) => {
            let list = r.as_array().cloned().unwrap_or_default();
            println!("\nrecent ({}), newest first:", list.len());
            if !list.is_empty() {
                let mut tb = table(&[
                    "CALL",
                    "TARGET",
                    "FROM",
                    "TO",
                    "OUTCOME",
                    "TIME",
                    "RETRIES",
                    "HOPS (origin last)",
                ]);
                for c in &list {
                    tb.add_row(vec![
                        text(&c["call_id"]),
                        text(&c["target"]),
                        side(&c["from"], "front"),
                        side(&c["to"], "agent here"),
                        text(&c["outcome"]),
                        micros(c["elapsed_us"].as_u64().unwrap_or(0)),
                        text(&c["retries"]),
                        hops(&c["trace"]),
                    ]);
                }
                align_right(&mut tb, &[5, 6]);
                print_table(&tb);
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}
