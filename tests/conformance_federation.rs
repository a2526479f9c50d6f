//! The official MCP conformance suite through the federation: the example
//! agent with its conformance fixtures hosted on a node, the suite pointed
//! at a node's front, (a) directly at the agent, (b) through the one node
//! hosting it, (c) through a 3-node chain (agent on C, suite at A's front),
//! for `--spec-version 2025-11-25` and `2026-07-28`. Every scenario that
//! passes directly passes in (b) and (c). The suite's own output is printed
//! into the test log.
//!
//! ```text
//!   (a) suite ───────────────────────────── agent
//!   (b) suite ── A ── agent
//!   (c) suite ── A ──── B ──── C ── agent
//! ```

// Both helper modules include the port helper; one copy each is harmless.
#![allow(clippy::duplicate_mod)]

mod common;
mod node_harness;

use std::path::Path;
use std::time::Duration;

use common::conformance::{SuiteResult, run_suite, start_conformance_agent};
use node_harness::{BIN, NodeDir, Proc, Spec, chain, configure, init, wait_for};

/// `[[agents]]` entry for the example agent with the suite's fixtures.
fn conformance_agent() -> String {
    format!(
        r#"
[[agents]]
id = "conformance"
prefix = "conformance/*"
capabilities = ["conformance"]
command = {BIN:?}
args = ["example-agent", "--conformance"]
restart_backoff_min = "200ms"
restart_backoff_max = "2s"
"#
    )
}

/// A node (or the first of a chain) whose front has the agent's tools,
/// prompts and resources, with every descriptor fetched.
fn wait_front_ready(a: &Proc, path_len: usize) {
    for prefix in [
        "conformance/test_simple_text",
        "conformance/test_sampling",
        "conformance/prompt/test_simple_prompt",
    ] {
        wait_for(
            &format!("{prefix} at A with an AS path of {path_len}"),
            Duration::from_secs(30),
            || a.as_path(prefix).filter(|p| p.len() == path_len),
        );
    }
    // Descriptors of remote tools are fetched after the routes arrive;
    // the suite checks schemas, so wait until none is missing.
    wait_for("every descriptor at A", Duration::from_secs(30), || {
        let lists = &a.get("/v1/mcp")["front_lists"];
        let ready = lists["tools"].as_u64() > Some(10)
            && lists["prompts"].as_u64() > Some(0)
            && lists["resources"].as_u64() > Some(0)
            && lists["descriptors_missing"] == 0;
        ready.then_some(())
    });
}

fn single(root: &Path) -> (Vec<NodeDir>, Vec<Proc>) {
    let a = init(root, "A", "test");
    configure(
        &a,
        &Spec {
            hold: 30,
            extra: conformance_agent(),
            ..Default::default()
        },
    );
    let procs = vec![Proc::start(&a)];
    (vec![a], procs)
}

/// A - B - C with the agent on C.
fn chain3(root: &Path) -> (Vec<NodeDir>, Vec<Proc>) {
    chain(root, &conformance_agent(), "")
}

fn report(what: &str, r: &SuiteResult) {
    println!(
        "=== conformance {} {what}: {} of {} scenarios passed ===\n{}",
        r.spec_version,
        r.scenarios.len() - r.failed().len(),
        r.scenarios.len(),
        r.output
    );
}

/// Runs the suite directly, through one node and through a chain, and
/// checks that what passed directly passed through both.
async fn through_the_federation(spec_version: &str) {
    let agent = start_conformance_agent().await;
    let direct = run_suite(&agent.url, spec_version).await;
    report("directly", &direct);
    let passing: Vec<String> = direct
        .scenarios
        .iter()
        .filter(|(_, r)| r.passed())
        .map(|(n, _)| n.clone())
        .collect();
    assert!(
        passing.len() >= 20,
        "the example agent passes only {passing:?} directly"
    );

    let mut lost = Vec::new();
    type Build = fn(&Path) -> (Vec<NodeDir>, Vec<Proc>);
    for (what, build, path_len) in [
        ("through one node", single as Build, 0),
        ("through a 3-node chain", chain3 as Build, 2),
    ] {
        let root = tempfile::tempdir().unwrap();
        let (_nodes, procs) = build(root.path());
        let a = &procs[0];
        wait_front_ready(a, path_len);
        let r = run_suite(&a.mcp_url(), spec_version).await;
        report(what, &r);
        for name in &passing {
            let ok = r.scenarios.get(name).is_some_and(|s| s.passed());
            if !ok {
                lost.push(format!("{what}: {name}"));
            }
        }
        if !lost.is_empty() {
            println!("--- findings {what} ---\n{}", r.findings());
            for (i, p) in procs.iter().enumerate() {
                println!("--- node {i} log ---\n{}", p.log_tail(80));
            }
        }
    }
    assert!(
        lost.is_empty(),
        "scenarios that pass directly but not through the federation ({spec_version}): {lost:#?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_2025_11_25_suite_passes_through_a_node_and_a_chain() {
    through_the_federation("2025-11-25").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_2026_07_28_suite_passes_through_a_node_and_a_chain() {
    through_the_federation("2026-07-28").await;
}

/// The agent's log lines during a call reach a client through a 3-node
/// chain, all of them and before the result, call after call (the last
/// one is sent right before the result, which travels on another stream).
#[test]
fn log_lines_cross_a_chain_before_the_result() {
    let root = tempfile::tempdir().unwrap();
    let (_nodes, procs) = chain3(root.path());
    let a = &procs[0];
    wait_front_ready(a, 2);
    let script = r#"
import anyio, json, sys
from mcp import Client

async def main():
    for i in range(5):
        logs = []
        async def on_log(params):
            logs.append(params.data)
        async with Client(sys.argv[1], mode="legacy", logging_callback=on_log) as c:
            r = await c.call_tool("test_tool_with_logging", {})
            print(json.dumps({"logs": logs, "text": r.content[0].text}), flush=True)

anyio.run(main)
"#;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("logs.py");
    std::fs::write(&file, script).unwrap();
    let out = std::process::Command::new(common::venv_python())
        .arg(&file)
        .arg(a.mcp_url())
        .output()
        .expect("run python");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let runs: Vec<serde_json::Value> = stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(runs.len(), 5, "{stdout}");
    for r in &runs {
        let counters: Vec<String> = procs
            .iter()
            .map(|p| p.get("/v1/mcp")["forwarder"].to_string())
            .collect();
        assert_eq!(
            r["logs"].as_array().map(Vec::len),
            Some(3),
            "every log line arrives: {r}\nforwarders A, B, C: {counters:#?}"
        );
    }
}

/// Forwards the URIs of `notifications/resources/updated`.
#[derive(Clone)]
struct Updates(tokio::sync::mpsc::UnboundedSender<String>);

impl rmcp::ClientHandler for Updates {
    async fn on_resource_updated(
        &self,
        params: rmcp::model::ResourceUpdatedNotificationParam,
        _: rmcp::service::NotificationContext<rmcp::RoleClient>,
    ) {
        let _ = self.0.send(params.uri);
    }
}

/// A subscription made at A to a resource on C keeps delivering updates
/// when the path it took (through B or D) dies: the subscription call is
/// made again on the path that is left.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[allow(deprecated)] // resources/subscribe is 2025-11-25's
async fn a_subscription_survives_the_loss_of_its_path() {
    let root = tempfile::tempdir().unwrap();
    let a = init(root.path(), "A", "test");
    let b = init(root.path(), "B", "test");
    let c = init(root.path(), "C", "test");
    let d = init(root.path(), "D", "test");
    let hold = 30;
    for (n, neighbors, extra) in [
        (&a, vec![b.clone(), d.clone()], String::new()),
        (&b, vec![a.clone(), c.clone()], String::new()),
        (&d, vec![a.clone(), c.clone()], String::new()),
        (&c, vec![b.clone(), d.clone()], conformance_agent()),
    ] {
        configure(
            n,
            &Spec {
                hold,
                neighbors: neighbors.into_iter().map(|x| (x, false)).collect(),
                extra,
                ..Default::default()
            },
        );
    }
    let mut procs = [
        Proc::start(&a),
        Proc::start(&b),
        Proc::start(&d),
        Proc::start(&c),
    ];
    wait_front_ready(&procs[0], 2);
    let (tx, mut updates) = tokio::sync::mpsc::unbounded_channel();
    let client = common::within(
        10.0,
        "connecting",
        rmcp::service::serve_client_with_lifecycle_and_ct(
            Updates(tx),
            rmcp::transport::StreamableHttpClientTransport::from_uri(procs[0].mcp_url()),
            rmcp::service::ClientLifecycleMode::Initialize,
            tokio_util::sync::CancellationToken::new(),
        ),
    )
    .await
    .expect("an MCP session with A's front");
    common::within(
        15.0,
        "subscribing through the federation",
        client.subscribe(rmcp::model::SubscribeRequestParams::new(
            "test://watched-resource",
        )),
    )
    .await
    .expect("subscribe answers");
    for _ in 0..2 {
        let uri = common::within(10.0, "an update before the loss", updates.recv())
            .await
            .expect("the client is there");
        assert_eq!(uri, "test://watched-resource");
    }
    // The path the subscription's call took goes.
    let via = wait_for(
        "the subscription's call at A",
        Duration::from_secs(10),
        || {
            procs[0]
                .try_get("/v1/calls")?
                .as_array()?
                .iter()
                .find(|c| {
                    c["target"]
                        .as_str()
                        .is_some_and(|t| t.starts_with("conformance/resource/"))
                })?["to"]
                .as_str()
                .map(str::to_string)
        },
    );
    let transit = if via == b.peer_id { 1 } else { 2 };
    assert!(via == b.peer_id || via == d.peer_id, "{via}");
    procs[transit].kill();
    while updates.try_recv().is_ok() {}
    for _ in 0..3 {
        let uri = common::within(20.0, "an update after its path died", updates.recv())
            .await
            .expect("the client is there");
        assert_eq!(uri, "test://watched-resource");
    }
    let _ = client.cancel().await;
}

/// A front session holds at most 256 resource subscriptions (each is a held
/// call to the origin): the 257th is refused with a clear error, at once;
/// one already held is not counted twice, an unsubscribe frees a slot, and
/// another session has its own 256.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
// A 2025-11-25 session: resources/subscribe is how it subscribes.
#[allow(deprecated)]
async fn a_session_holds_at_most_256_subscriptions() {
    use rmcp::model::{SubscribeRequestParams, UnsubscribeRequestParams};
    let root = tempfile::tempdir().unwrap();
    let a = init(root.path(), "A", "test");
    configure(
        &a,
        &Spec {
            extra: conformance_agent(),
            ..Default::default()
        },
    );
    let pa = Proc::start(&a);
    wait_front_ready(&pa, 0);
    let (tx, _updates) = tokio::sync::mpsc::unbounded_channel();
    let connect = || {
        rmcp::service::serve_client_with_lifecycle_and_ct(
            Updates(tx.clone()),
            rmcp::transport::StreamableHttpClientTransport::from_uri(pa.mcp_url()),
            rmcp::service::ClientLifecycleMode::Initialize,
            tokio_util::sync::CancellationToken::new(),
        )
    };
    let client = common::within(10.0, "connecting", connect())
        .await
        .expect("an MCP session with A's front");
    let uri = |i: usize| format!("test://template/{i}/data");
    for i in 0..256 {
        common::within(
            15.0,
            "a subscription",
            client.subscribe(SubscribeRequestParams::new(uri(i))),
        )
        .await
        .unwrap_or_else(|e| panic!("subscription {i}: {e}"));
    }
    let refused = common::within(
        5.0,
        "the 257th subscription's answer",
        client.subscribe(SubscribeRequestParams::new(uri(256))),
    )
    .await
    .expect_err("over the bound");
    assert!(
        refused
            .to_string()
            .contains("at most 256 subscriptions per session"),
        "{refused}"
    );
    common::within(
        5.0,
        "a held one again",
        client.subscribe(SubscribeRequestParams::new(uri(0))),
    )
    .await
    .expect("one already held is not a new one");
    common::within(
        5.0,
        "unsubscribing",
        client.unsubscribe(UnsubscribeRequestParams::new(uri(0))),
    )
    .await
    .expect("unsubscribe");
    common::within(
        15.0,
        "the freed slot",
        client.subscribe(SubscribeRequestParams::new(uri(256))),
    )
    .await
    .expect("an unsubscribe frees a slot");
    let other = common::within(10.0, "a second session", connect())
        .await
        .expect("another MCP session");
    common::within(
        15.0,
        "its own subscription",
        other.subscribe(SubscribeRequestParams::new(uri(1))),
    )
    .await
    .expect("another session has its own bound");
}
