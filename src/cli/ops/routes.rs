//! `abgp routes [PREFIX] [--detail] [--in PEER | --out PEER] [--longer]`:
//! the Loc-RIB with every path and its markers, or one peer's Adj-RIB-In
//! or Adj-RIB-Out.
//!
//! Markers, as in `show ip bgp`: `*>` best, `*=` in the multipath set,
//! `*` a valid path that lost, `x` excluded (a loop, or stale beside fresh
//! paths), `S` stale (its peer is restarting); on `--in`, `a` a path
//! import policy accepted and `r` one it rejected.

use std::process::ExitCode;

use clap::Args;
use serde_json::{Value, json};

use agent_bgp::core::prefix::Prefix;

use super::{
    EXIT_NOT_FOUND, Node, Target, align_right, as_path, duration_ms, fail, joined, print_json,
    print_table, short_peer, table, text,
};

#[derive(Debug, Args)]
pub struct RoutesArgs {
    #[command(flatten)]
    pub target: Target,
    /// Only this prefix (exactly), or with --longer it and everything
    /// under it.
    pub prefix: Option<String>,
    /// Every attribute of every path, and why each lost.
    #[arg(long)]
    pub detail: bool,
    /// The Adj-RIB-In of a peer (pre- and post-policy).
    #[arg(long = "in", value_name = "PEER", conflicts_with = "out_peer")]
    pub in_peer: Option<String>,
    /// What we advertise to a peer (its Adj-RIB-Out).
    #[arg(long = "out", value_name = "PEER")]
    pub out_peer: Option<String>,
    /// With PREFIX: also the more specific prefixes under it.
    #[arg(long, requires = "prefix")]
    pub longer: bool,
}

/// Keeps the routes PREFIX selects.
fn selected(a: &RoutesArgs, routes: Vec<Value>) -> anyhow::Result<Vec<Value>> {
    let Some(p) = &a.prefix else {
        return Ok(routes);
    };
    let want: Prefix = p
        .parse()
        .map_err(|e| fail(super::EXIT_FAILED, format!("{p:?} is not a prefix: {e}")))?;
    Ok(routes
        .into_iter()
        .filter(|r| {
            let Some(rp) = r["prefix"].as_str().and_then(|s| s.parse::<Prefix>().ok()) else {
                return false;
            };
            if a.longer {
                want.covers(&rp)
            } else {
                rp == want
            }
        })
        .collect())
}

fn marker(r: &Value) -> String {
    let mut m = match (r["status"].as_str(), r["multipath"] == true) {
        (Some("best"), _) => "*>".to_string(),
        (Some("lost"), true) => "*=".to_string(),
        (Some("lost"), false) => "*".to_string(),
        (Some("excluded"), _) => "x".to_string(),
        (Some("accepted"), _) => "a".to_string(),
        (Some("rejected"), _) => "r".to_string(),
        _ => String::new(),
    };
    if r["stale"] == true {
        m.push('S');
    }
    m
}

fn next_hop(r: &Value) -> String {
    match r["peer"].as_str() {
        Some(p) => short_peer(p),
        None => "local".into(),
    }
}

fn age(r: &Value, now_ms: u64) -> String {
    match r["origin_time"].as_u64() {
        Some(t) if t > 0 && t <= now_ms => duration_ms(now_ms - t),
        _ => "-".into(),
    }
}

fn print_rows(routes: &[Value], now_ms: u64, with_markers: bool) {
    let mut header = vec![
        "PREFIX",
        "NEXT HOP",
        "AS PATH",
        "LPREF",
        "MED",
        "AGE",
        "COMMUNITIES",
    ];
    if with_markers {
        header.insert(0, "");
    }
    let mut t = table(&header);
    for r in routes {
        let mut row = vec![
            text(&r["prefix"]),
            next_hop(r),
            as_path(&r["as_path"]),
            text(&r["local_pref"]),
            text(&r["med"]),
            age(r, now_ms),
            joined(&r["communities"], " "),
        ];
        if with_markers {
            row.insert(0, marker(r));
        }
        t.add_row(row);
    }
    let shift = usize::from(with_markers);
    align_right(&mut t, &[3 + shift, 4 + shift]);
    print_table(&t);
}

fn print_detail(routes: &[Value], now_ms: u64) {
    for (i, r) in routes.iter().enumerate() {
        if i > 0 {
            println!();
        }
        let m = marker(r);
        println!(
            "{}{} via {}",
            if m.is_empty() { "" } else { &m },
            if m.is_empty() { "" } else { " " },
            r["peer"].as_str().unwrap_or("local (originated here)")
        );
        println!("  prefix       {}", text(&r["prefix"]));
        match r["status"].as_str() {
            Some("best") => println!("  status       best"),
            Some(s) => println!(
                "  status       {s}: {} ({})",
                text(&r["reason_text"]),
                text(&r["reason"])
            ),
            None => {}
        }
        if r["multipath"] == true {
            println!("  multipath    yes");
        }
        println!("  agent        {}", text(&r["agent"]));
        println!("  as path      {}", as_path(&r["as_path"]));
        println!("  local pref   {}", text(&r["local_pref"]));
        println!("  med          {}", text(&r["med"]));
        println!("  communities  {}", joined(&r["communities"], " "));
        println!("  capabilities {}", joined(&r["capabilities"], " "));
        println!("  age          {}", age(r, now_ms));
        println!(
            "  signed       {} ({} path signatures)",
            if r["signed"] == true { "yes" } else { "no" },
            text(&r["path_signatures"])
        );
        if r["originator"].is_string()
            || r["cluster_list"].as_array().is_some_and(|a| !a.is_empty())
        {
            println!(
                "  reflected    originator {}, cluster list {}",
                text(&r["originator"]),
                joined(&r["cluster_list"], " ")
            );
        }
        if r["next_hop"].is_string() {
            println!(
                "  next hop     {} (named by our route server: calls go there directly)",
                text(&r["next_hop"])
            );
        }
        if let Some(otc) = r["otc"].as_u64() {
            println!("  only to customers, marked by AS{otc} (RFC 9234)");
        }
        if r["stale"] == true {
            println!("  stale        yes (its peer is restarting)");
        }
        if let Some(d) = r["import"].as_object() {
            println!(
                "  import       {} by {}",
                text(&d["verdict"]),
                text(&d["decided_by"])
            );
        }
        if r["modified_on_import"] == true {
            println!("               (attributes changed by import policy)");
        }
    }
}

pub fn routes(a: RoutesArgs) -> anyhow::Result<ExitCode> {
    let node = Node::open(&a.target)?;
    let now_ms = node.get("/v1/status")?["now_ms"].as_u64().unwrap_or(0);
    let (routes, with_markers, raw) = if let Some(p) = &a.in_peer {
        let id = peer_id(&node, p)?;
        let v = node.get(&format!("/v1/routes/in/{id}"))?;
        let post = v["post_policy"].as_array().cloned().unwrap_or_default();
        let key = |r: &Value| (r["prefix"].clone(), r["path_id"].clone());
        let mut all = Vec::new();
        for mut r in v["pre_policy"].as_array().cloned().unwrap_or_default() {
            let accepted = post.iter().any(|q| key(q) == key(&r));
            r["status"] = json!(if accepted { "accepted" } else { "rejected" });
            r["peer"] = json!(id);
            all.push(r);
        }
        (all, true, v)
    } else if let Some(p) = &a.out_peer {
        let id = peer_id(&node, p)?;
        let v = node.get(&format!("/v1/routes/out/{id}"))?;
        (
            v["routes"].as_array().cloned().unwrap_or_default(),
            false,
            v,
        )
    } else {
        let v = node.get("/v1/paths")?;
        (v.as_array().cloned().unwrap_or_default(), true, v)
    };
    let routes = selected(&a, routes)?;
    if a.prefix.is_some() && routes.is_empty() {
        return Err(fail(
            EXIT_NOT_FOUND,
            format!(
                "no route for {}{}",
                a.prefix.as_deref().unwrap_or(""),
                if a.longer { " or under it" } else { "" }
            ),
        ));
    }
    if a.target.json {
        if a.prefix.is_some() || a.in_peer.is_none() && a.out_peer.is_none() {
            print_json(&Value::Array(routes))?;
        } else {
            print_json(&raw)?;
        }
        return Ok(ExitCode::SUCCESS);
    }
    if a.detail {
        print_detail(&routes, now_ms);
    } else {
        print_rows(&routes, now_ms, with_markers);
    }
    Ok(ExitCode::SUCCESS)
}

/// The full peer id of the peer the user named.
fn peer_id(node: &Node, wanted: &str) -> anyhow::Result<String> {
    let v = node.get("/v1/peers")?;
    let list = v.as_array().cloned().unwrap_or_default();
    let p = super::peers::find(&list, wanted)?;
    Ok(p["peer_id"].as_str().unwrap_or_default().to_string())
}
