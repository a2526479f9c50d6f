//! Load balancing across real `abgp` processes: two origins of one tool
//! prefix behind a front, `[[balance]]` on the front.
//!
//! ```text
//!          ┌── B ── example agent (remote/echo)
//!   A ─────┤
//!   (front)└── C ── example agent (remote/echo)
//! ```
//!
//! - `weighted` with configured weights 3 (B) and 1 (C): 200 calls split
//!   150 / 50, counted at the origins (`/v1/calls/recent`).
//! - `round-robin` while C is killed (SIGKILL) under a stream of read-only
//!   calls: no call fails, and C leaves the rotation at once (every call
//!   after goes to B).
//! - the same while C is frozen (SIGSTOP): C leaves the rotation within one
//!   hold time (3 s), still with no failed call; the calls caught on C wait
//!   for the hold timer and are retried on B.
//! - `capability`: B's agent tagged `on-b`, C's `on-c`; calls through
//!   `call_capability` wanting `on-b` all run at B, calls naming no tags
//!   take the rule's `on-c` and all run at C.
//! - `abgp why` on A shows the method and each member's weight.

#![allow(clippy::duplicate_mod)]

mod mcp_client;
mod node_harness;

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use mcp_client::{tool_name, within};
use node_harness::{BIN, NodeDir, Proc, Spec, abgp, configure, init, wait_for};
use rmcp::model::CallToolRequestParams;
use rmcp::service::{RoleClient, RunningService};
use serde_json::json;

const PREFIX: &str = "remote/echo/echo";
/// The hold time of every session (keepalives every second).
const HOLD: u16 = 3;
const CONVERGE: Duration = Duration::from_secs(30);

/// The example agent under `remote/echo`, advertising `tag`.
fn example_agent(tag: &str) -> String {
    format!(
        r#"
[[agents]]
id = "echo"
prefix = "remote/echo"
capabilities = [{tag:?}]
command = {BIN:?}
args = ["example-agent"]
"#
    )
}

/// A peered with B and C, each hosting the example agent; `balance` goes
/// into A's node.toml (given B and C).
fn two_origins(
    root: &std::path::Path,
    balance: impl Fn(&NodeDir, &NodeDir) -> String,
) -> (Vec<NodeDir>, Vec<Proc>) {
    let a = init(root, "A", "test");
    let b = init(root, "B", "test");
    let c = init(root, "C", "test");
    configure(
        &a,
        &Spec {
            hold: HOLD,
            neighbors: vec![(b.clone(), false), (c.clone(), false)],
            extra: balance(&b, &c),
            ..Default::default()
        },
    );
    for (o, tag) in [(&b, "on-b"), (&c, "on-c")] {
        configure(
            o,
            &Spec {
                hold: HOLD,
                neighbors: vec![(a.clone(), false)],
                extra: example_agent(tag),
                ..Default::default()
            },
        );
    }
    let procs = vec![Proc::start(&a), Proc::start(&b), Proc::start(&c)];
    (vec![a, b, c], procs)
}

/// A's usable paths to the tool, by next-hop peer id.
fn usable_paths(a: &Proc) -> Option<Vec<String>> {
    let w = a.try_get(&format!("/v1/why?prefix={PREFIX}"))?;
    Some(
        w["paths"]
            .as_array()?
            .iter()
            .filter(|p| p["stale"] != true && p["status"] != "excluded")
            .filter_map(|p| p["peer"].as_str().map(str::to_string))
            .collect(),
    )
}

fn wait_two_paths(a: &Proc) {
    wait_for(
        "A to have a path to the tool via B and via C",
        CONVERGE,
        || (usable_paths(a)?.len() == 2).then_some(()),
    );
}

/// The front's name for the echo tool, once listed with its descriptor.
async fn echo_name(c: &RunningService<RoleClient, ()>) -> String {
    tool_name(c, PREFIX, CONVERGE).await
}

/// One echo call; `Err` with the error text when it failed.
async fn echo(c: &RunningService<RoleClient, ()>, name: &str, text: &str) -> Result<(), String> {
    let p = CallToolRequestParams::new(name.to_string()).with_arguments(
        json!({ "text": text })
            .as_object()
            .cloned()
            .expect("object"),
    );
    match within("an echo call", Duration::from_secs(60), c.call_tool(p)).await {
        Ok(r) if r.is_error != Some(true) => Ok(()),
        Ok(r) => Err(format!("tool error: {r:?}")),
        Err(e) => Err(e.to_string()),
    }
}

/// The echo calls a node ran for its agent (`tools/call`, at the origin),
/// from its recent calls.
fn ran_here(p: &Proc) -> Option<usize> {
    let v = p.try_get("/v1/calls/recent?limit=256")?;
    Some(
        v.as_array()?
            .iter()
            .filter(|c| c["op"] == "tools/call" && c["agent"] == "echo" && c["outcome"] == "ok")
            .count(),
    )
}

/// The front's finished tool calls, oldest first: (to, outcome).
fn front_calls(a: &Proc) -> Vec<(String, String)> {
    front_records(a)
        .iter()
        .map(|c| {
            (
                c["to"].as_str().unwrap_or("").to_string(),
                c["outcome"].as_str().unwrap_or("").to_string(),
            )
        })
        .collect()
}

/// The front's finished tool calls, oldest first, as recorded.
fn front_records(a: &Proc) -> Vec<serde_json::Value> {
    let v = a.get("/v1/calls/recent?limit=256");
    let mut out: Vec<serde_json::Value> = v
        .as_array()
        .expect("a list")
        .iter()
        .filter(|c| c["op"] == "tools/call" && c["from"].is_null())
        .cloned()
        .collect();
    out.reverse();
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn weighted_spreads_calls_over_two_origins_as_configured() {
    let root = tempfile::tempdir().unwrap();
    let (d, procs) = two_origins(root.path(), |b, c| {
        format!(
            "\n[[balance]]\nprefix = \"remote/echo/*\"\nmethod = \"weighted\"\nweights = {{ \"{}\" = 3, \"{}\" = 1 }}\n",
            b.peer_id, c.peer_id
        )
    });
    wait_two_paths(&procs[0]);
    let c = mcp_client::client(&procs[0].mcp_url(), &[]).await;
    let name = echo_name(&c).await;
    let before = [
        wait_for("B's recent calls", CONVERGE, || ran_here(&procs[1])),
        wait_for("C's recent calls", CONVERGE, || ran_here(&procs[2])),
    ];
    const N: usize = 200;
    for i in 0..N {
        echo(&c, &name, &format!("w{i}"))
            .await
            .unwrap_or_else(|e| panic!("call {i} failed: {e}"));
    }
    let after = [
        wait_for("B's recent calls", CONVERGE, || ran_here(&procs[1])),
        wait_for("C's recent calls", CONVERGE, || ran_here(&procs[2])),
    ];
    let (at_b, at_c) = (after[0] - before[0], after[1] - before[1]);
    println!("weighted 3:1 over {N} calls: B ran {at_b}, C ran {at_c}");
    assert_eq!(at_b + at_c, N, "every call ran once");
    // Smooth weighted round-robin: exact over every 4 calls.
    assert_eq!((at_b, at_c), (150, 50));

    // `abgp why` names the method and each member's weight.
    let a_cfg = d[0].dir.join("node.toml").to_string_lossy().to_string();
    let (ok, out, err) = abgp(&["why", "-c", &a_cfg, PREFIX]);
    assert!(ok, "abgp why: {err}");
    assert!(
        out.contains("balancing: weighted (rule remote/echo/*) over 2 equally near paths"),
        "{out}"
    );
    assert!(
        out.contains("weight 3 (config)") && out.contains("weight 1 (config)"),
        "{out}"
    );
    let w = procs[0].get(&format!("/v1/why?prefix={PREFIX}"));
    let bal = &w["balance"];
    assert_eq!(bal["method"], "weighted", "{w}");
    assert_eq!(bal["set"], "nearest", "{w}");
    let weights: HashMap<String, u64> = bal["members"]
        .as_array()
        .expect("members")
        .iter()
        .map(|m| {
            (
                m["peer"].as_str().unwrap_or("").to_string(),
                m["weight"].as_u64().unwrap_or(0),
            )
        })
        .collect();
    assert_eq!(weights.get(&d[1].peer_id), Some(&3), "{bal}");
    assert_eq!(weights.get(&d[2].peer_id), Some(&1), "{bal}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn capability_sends_each_call_to_the_origin_with_the_tags_it_wants() {
    let root = tempfile::tempdir().unwrap();
    // B's agent is tagged on-b, C's on-c; the rule wants on-c unless the
    // call names its own tags.
    let (_d, procs) = two_origins(root.path(), |_, _| {
        "\n[[balance]]\nprefix = \"remote/echo/*\"\nmethod = \"capability\"\ncapabilities = [\"on-c\"]\n"
            .into()
    });
    wait_two_paths(&procs[0]);
    let c = mcp_client::client(&procs[0].mcp_url(), &[]).await;
    echo_name(&c).await;
    let before = [
        wait_for("B's recent calls", CONVERGE, || ran_here(&procs[1])),
        wait_for("C's recent calls", CONVERGE, || ran_here(&procs[2])),
    ];
    let by_capability = |tags: Option<&[&str]>, i: usize| {
        let mut args = json!({
            "capability": "remote/echo",
            "tool": "echo",
            "arguments": {"text": format!("c{i}")},
        });
        if let Some(t) = tags {
            args["capabilities"] = json!(t);
        }
        CallToolRequestParams::new("call_capability")
            .with_arguments(args.as_object().cloned().expect("object"))
    };
    // 10 calls wanting on-b, 10 naming none (the rule's on-c).
    for i in 0..20 {
        let tags: Option<&[&str]> = if i < 10 { Some(&["on-b"]) } else { None };
        let r = within(
            "a call_capability call",
            CONVERGE,
            c.call_tool(by_capability(tags, i)),
        )
        .await
        .unwrap_or_else(|e| panic!("call {i}: {e}"));
        assert_ne!(r.is_error, Some(true), "call {i}: {r:?}");
    }
    let after = [
        wait_for("B's recent calls", CONVERGE, || ran_here(&procs[1])),
        wait_for("C's recent calls", CONVERGE, || ran_here(&procs[2])),
    ];
    let (at_b, at_c) = (after[0] - before[0], after[1] - before[1]);
    println!("capability: calls wanting on-b ran at B {at_b}, the rule's on-c at C {at_c}");
    assert_eq!((at_b, at_c), (10, 10));
    // A bad list of tags is refused with the reason.
    let mut bad = by_capability(None, 99);
    if let Some(a) = bad.arguments.as_mut() {
        a.insert("capabilities".into(), json!([""]));
    }
    let e = within("a refused call", CONVERGE, c.call_tool(bad))
        .await
        .expect_err("an empty tag is refused");
    assert!(
        e.to_string().contains("at most 64 tags of 1 to 256 bytes"),
        "{e}"
    );
}

/// A stream of echo calls from `workers` clients until `stop`; counts
/// successes, keeps every failure.
struct Stream {
    stop: Arc<AtomicBool>,
    ok: Arc<AtomicUsize>,
    tasks: Vec<tokio::task::JoinHandle<Vec<String>>>,
}

impl Stream {
    async fn start(url: &str, name: &str, workers: usize) -> Stream {
        let stop = Arc::new(AtomicBool::new(false));
        let ok = Arc::new(AtomicUsize::new(0));
        let mut tasks = Vec::new();
        for w in 0..workers {
            let c = mcp_client::client(url, &[]).await;
            let (stop, ok, name) = (stop.clone(), ok.clone(), name.to_string());
            tasks.push(tokio::spawn(async move {
                let mut failed = Vec::new();
                let mut i = 0;
                while !stop.load(Ordering::Relaxed) {
                    match echo(&c, &name, &format!("s{w}-{i}")).await {
                        Ok(()) => {
                            ok.fetch_add(1, Ordering::Relaxed);
                        }
                        Err(e) => failed.push(e),
                    }
                    i += 1;
                }
                failed
            }));
        }
        Stream { stop, ok, tasks }
    }

    fn done(&self) -> usize {
        self.ok.load(Ordering::Relaxed)
    }

    /// Waits until `n` more calls have succeeded.
    async fn more(&self, n: usize, what: &str) {
        let target = self.done() + n;
        within(what, CONVERGE, async {
            while self.done() < target {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        })
        .await
    }

    async fn stop(self) -> Vec<String> {
        self.stop.store(true, Ordering::Relaxed);
        let mut failed = Vec::new();
        for t in self.tasks {
            failed.extend(t.await.expect("worker"));
        }
        failed
    }
}

/// What taking C out did at the front.
struct Outcome {
    /// Until A stopped offering C's path (stale or gone).
    gone: Duration,
    /// Calls the front retried on B, and the longest of them.
    retried: usize,
    longest_ms: u64,
}

/// Round-robin over B and C, a stream of calls, C taken out by `take_out`.
async fn dying_origin_leaves_the_rotation(how: &str, take_out: impl FnOnce(&mut Proc)) -> Outcome {
    let root = tempfile::tempdir().unwrap();
    let (d, mut procs) = two_origins(root.path(), |_, _| {
        "\n[[balance]]\nprefix = \"remote/echo/*\"\nmethod = \"round-robin\"\n".into()
    });
    wait_two_paths(&procs[0]);
    let url = procs[0].mcp_url();
    let name = echo_name(&mcp_client::client(&url, &[]).await).await;
    let stream = Stream::start(&url, &name, 4).await;
    stream.more(40, "40 calls before C goes").await;
    // Both origins are in the rotation.
    let calls = front_calls(&procs[0]);
    let to = |peer: &str| calls.iter().filter(|(t, _)| t == peer).count();
    assert!(
        to(&d[1].peer_id) >= 10 && to(&d[2].peer_id) >= 10,
        "both origins take calls: {calls:?}"
    );
    let t0 = Instant::now();
    take_out(&mut procs[2]);
    let gone = within("A to stop offering C's path", CONVERGE, async {
        loop {
            if usable_paths(&procs[0]).is_some_and(|p| p == vec![d[1].peer_id.clone()]) {
                return t0.elapsed();
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await;
    println!("{how}: A stopped offering C {gone:?} after it was taken out");
    // Calls started from now on all go to B.
    let mark = front_calls(&procs[0]).len();
    stream.more(60, "60 calls after C left").await;
    let failed = stream.stop().await;
    assert!(
        failed.is_empty(),
        "{how}: {} calls failed: {failed:?}",
        failed.len()
    );
    let calls = front_calls(&procs[0]);
    // Calls finished after the mark that started before it may have gone
    // to C (and been retried on B: they then end at B too).
    let after: Vec<&(String, String)> = calls.iter().skip(mark).collect();
    assert!(after.len() >= 60, "{}", after.len());
    assert!(
        after.iter().all(|(t, o)| t == &d[1].peer_id && o == "ok"),
        "{how}: after C left, every call goes to B: {after:?}"
    );
    let recs = front_records(&procs[0]);
    let retried: Vec<&serde_json::Value> = recs
        .iter()
        .filter(|c| c["retries"].as_u64() > Some(0))
        .collect();
    let longest_ms = retried
        .iter()
        .filter_map(|c| c["elapsed_us"].as_u64())
        .max()
        .unwrap_or(0)
        / 1000;
    println!(
        "{how}: {} calls retried on B, the longest took {longest_ms} ms; {} calls in all, none failed",
        retried.len(),
        recs.len()
    );
    Outcome {
        gone,
        retried: retried.len(),
        longest_ms,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_origin_leaves_the_rotation_with_no_failed_call() {
    let o = dying_origin_leaves_the_rotation("SIGKILL", |c| c.kill()).await;
    // The kernel closes C's sockets: A sees it at once.
    assert!(o.gone < Duration::from_secs(2), "{:?}", o.gone);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_frozen_origin_leaves_the_rotation_within_one_hold_time_with_no_failed_call() {
    let o = dying_origin_leaves_the_rotation("SIGSTOP", |c| c.freeze()).await;
    // Nothing is closed: the hold timer (3 s) notices (the last keepalive
    // came up to a second before the freeze; 1 s of slack for polling).
    assert!(
        o.gone < Duration::from_secs(u64::from(HOLD) + 1),
        "{:?} is over one hold time ({HOLD} s)",
        o.gone
    );
    // Round-robin sent calls to C until then; they waited and went to B.
    assert!(o.retried >= 1, "no call was caught on the frozen C");
    assert!(
        o.longest_ms < u64::from(HOLD) * 1000 + 1000,
        "a caught call took {} ms: longer than one hold time",
        o.longest_ms
    );
}
