//! Next-hop tracking across real `abgp` processes: when a node on the way to
//! a tool dies, the front stops listing the tool at once instead of after
//! the graceful-restart time, and lists it again when the node is back.
//!
//! ```text
//!   A (front) ──── B ──── C ── example agent (remote/echo)
//! ```

// Both helper modules include the port helper; one copy each is harmless.
#![allow(clippy::duplicate_mod)]

mod node_harness;

use std::time::{Duration, Instant};

use node_harness::{BIN, Proc, chain, wait_for};

const TOOL: &str = "remote/echo/echo";
/// Far below the graceful-restart time (120 s), far above what it takes.
const GONE: Duration = Duration::from_secs(10);
const CONVERGE: Duration = Duration::from_secs(30);

fn example_agent() -> String {
    format!(
        r#"
[[agents]]
id = "echo"
prefix = "remote/echo"
capabilities = ["example"]
command = {BIN:?}
args = ["example-agent"]
"#
    )
}

/// Does the front of `p` list the tool (`None`: the admin API did not answer).
fn front_lists(p: &Proc) -> Option<bool> {
    let v = p.try_get("/v1/tools")?;
    Some(v.as_array()?.iter().any(|t| t["prefix"] == TOOL))
}

fn wait_listed(p: &Proc, what: &str) -> Duration {
    let t0 = Instant::now();
    wait_for(what, CONVERGE, || front_lists(p)?.then_some(()));
    t0.elapsed()
}

fn wait_unlisted(p: &Proc, what: &str) -> Duration {
    let t0 = Instant::now();
    wait_for(what, GONE, || (!front_lists(p)?).then_some(()));
    t0.elapsed()
}

#[test]
fn a_killed_transit_stops_the_front_listing_the_tool_and_its_restart_brings_it_back() {
    let root = tempfile::tempdir().unwrap();
    let (d, mut procs) = chain(root.path(), &example_agent(), "");
    wait_listed(&procs[0], "A's front to list C's tool");
    procs[1].kill();
    let gone = wait_unlisted(&procs[0], "A's front to drop the tool after B died");
    println!("A's front listed C's tool {gone:?} after B was killed");
    // Kept for re-sync, marked stale, while B restarts.
    let r = procs[0].route(TOOL).expect("A keeps the stale path");
    assert_eq!(r["stale"], true, "{r}");
    procs[1] = Proc::start(&d[1]);
    let back = wait_listed(
        &procs[0],
        "A's front to list the tool again after B restarted",
    );
    println!("the tool was listed again {back:?} after B was started");
    let r = procs[0].route(TOOL).expect("A's route through B");
    assert_eq!(r["stale"], false, "{r}");
}

#[test]
fn a_killed_origin_is_withdrawn_downstream_and_returns_with_it() {
    let root = tempfile::tempdir().unwrap();
    let (d, mut procs) = chain(root.path(), &example_agent(), "");
    wait_listed(&procs[0], "A's front to list C's tool");
    procs[2].kill();
    // B keeps C's path stale and withdraws it from A.
    let gone = wait_unlisted(&procs[0], "A's front to drop the tool after C died");
    println!("A's front listed C's tool {gone:?} after C was killed");
    wait_for("B to withdraw the tool from A", GONE, || {
        let routes = procs[0].try_get("/v1/routes")?;
        (!routes.as_array()?.iter().any(|r| r["prefix"] == TOOL)).then_some(())
    });
    let r = procs[1].route(TOOL).expect("B keeps the stale path");
    assert_eq!(r["stale"], true, "{r}");
    procs[2] = Proc::start(&d[2]);
    let back = wait_listed(
        &procs[0],
        "A's front to list the tool again after C restarted",
    );
    println!("the tool was listed again {back:?} after C was started");
}

#[test]
fn a_cleanly_restarted_transit_is_dropped_at_once_and_listed_again() {
    let root = tempfile::tempdir().unwrap();
    let (d, mut procs) = chain(root.path(), &example_agent(), "");
    wait_listed(&procs[0], "A's front to list C's tool");
    procs[1].terminate();
    // A clean stop sends a Cease: no graceful restart, the paths go.
    let gone = wait_unlisted(&procs[0], "A's front to drop the tool after B stopped");
    println!("A's front listed C's tool {gone:?} after B was stopped");
    assert!(procs[0].routes().iter().all(|r| r["prefix"] != TOOL));
    procs[1] = Proc::start(&d[1]);
    let back = wait_listed(
        &procs[0],
        "A's front to list the tool again after B restarted",
    );
    println!("the tool was listed again {back:?} after B was started");
}
