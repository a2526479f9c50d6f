//! One call is one W3C trace across the federation: a client on A sends a
//! `traceparent`, the call crosses A, B and C, the example agent on C sees
//! the same trace id (with C's span as its parent), and
//! `GET /v1/calls/recent` on every node shows the call with that trace id,
//! each hop's span the next hop's parent.
//!
//! ```text
//!   rmcp client ── A ──── B ──── C ── example agent (echoes the traceparent it got)
//! ```

mod mcp_client;
mod node_harness;

use std::time::Duration;

use mcp_client::{client, tool_name, within};
use node_harness::{BIN, NodeDir, Proc, chain, wait_for};
use rmcp::model::{CallToolRequestParams, CallToolResult, RequestMetaObject};
use rmcp::service::{RoleClient, RunningService};
use serde_json::{Value, json};

const TRACE_ID: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
const CLIENT_SPAN: &str = "00f067aa0ba902b7";

fn agent_on_c() -> String {
    format!(
        r#"
[[agents]]
id = "echo"
prefix = "utility/echo"
command = {BIN:?}
args = ["example-agent"]
"#
    )
}

const WAIT: Duration = Duration::from_secs(30);

/// The front name of C's echo tool, once A lists it with its descriptor.
async fn echo_name(c: &RunningService<RoleClient, ()>) -> String {
    tool_name(c, "utility/echo/echo", WAIT).await
}

async fn echo(
    c: &RunningService<RoleClient, ()>,
    name: &str,
    text: &str,
    traceparent: Option<&str>,
) -> CallToolResult {
    echo_meta(c, name, text, traceparent.map(|t| Value::String(t.into()))).await
}

/// `echo` with any value as `params._meta.traceparent`.
async fn echo_meta(
    c: &RunningService<RoleClient, ()>,
    name: &str,
    text: &str,
    traceparent: Option<Value>,
) -> CallToolResult {
    let mut p = CallToolRequestParams::new(name.to_string())
        .with_arguments(json!({"text": text}).as_object().cloned().unwrap());
    if let Some(tp) = traceparent {
        let mut meta = RequestMetaObject::new();
        meta.insert("traceparent".into(), tp);
        p.meta = Some(meta);
    }
    within("the echo call", WAIT, c.call_tool(p))
        .await
        .expect("the call succeeds")
}

/// The traceparent the agent on C saw (from its result's `_meta`).
fn agent_saw(r: &CallToolResult, key: &str) -> String {
    let meta = serde_json::to_value(&r.meta).unwrap();
    meta[key]
        .as_str()
        .unwrap_or_else(|| panic!("the agent saw no {key}: {meta}"))
        .to_string()
}

/// The call with `trace_id` in a node's recent calls (waits for it).
fn recent(p: &Proc, trace_id: &str) -> Value {
    wait_for(
        &format!("{} to list the call of trace {trace_id}", p.name),
        Duration::from_secs(10),
        || {
            p.try_get("/v1/calls/recent")?
                .as_array()?
                .iter()
                .find(|c| c["trace_id"] == trace_id)
                .cloned()
        },
    )
}

fn parts(tp: &str) -> (String, String, String) {
    let v: Vec<&str> = tp.split('-').collect();
    assert_eq!(v.len(), 4, "{tp}");
    assert_eq!(v[0], "00", "{tp}");
    (v[1].into(), v[2].into(), v[3].into())
}

/// Checks the call of `trace_id` at A, B and C: one call id, each hop's
/// span the next one's parent, the agent's parent C's span. Returns A's
/// record.
fn check_hops(
    nodes: &[NodeDir],
    procs: &[Proc],
    trace_id: &str,
    client_span: Option<&str>,
    agent_tp: &str,
) -> Value {
    let (a, b, c) = (
        recent(&procs[0], trace_id),
        recent(&procs[1], trace_id),
        recent(&procs[2], trace_id),
    );
    for r in [&a, &b, &c] {
        assert_eq!(r["call_id"], a["call_id"], "{r}");
        assert_eq!(r["outcome"], "ok", "{r}");
        assert_eq!(r["target"], "utility/echo/echo", "{r}");
        assert_eq!(r["tool"], "echo", "{r}");
        assert_eq!(r["op"], "tools/call", "{r}");
        assert!(r["finished_ms"].as_u64().unwrap() > 0, "{r}");
        assert_eq!(r["span_id"].as_str().unwrap().len(), 16, "{r}");
    }
    // Where each hop had it from and sent it to.
    assert_eq!(
        (&a["from"], &a["to"]),
        (&Value::Null, &json!(nodes[1].peer_id))
    );
    assert_eq!(
        (&b["from"], &b["to"]),
        (&json!(nodes[0].peer_id), &json!(nodes[2].peer_id))
    );
    assert_eq!(
        (&c["from"], &c["to"]),
        (&json!(nodes[1].peer_id), &Value::Null)
    );
    assert_eq!(c["agent"], "echo", "{c}");
    // Span ids: client -> A -> B -> C -> agent.
    assert_eq!(a["parent_span_id"], json!(client_span), "{a}");
    assert_eq!(b["parent_span_id"], a["span_id"], "{b}");
    assert_eq!(c["parent_span_id"], b["span_id"], "{c}");
    let (agent_trace, agent_parent, flags) = parts(agent_tp);
    assert_eq!(agent_trace, trace_id);
    assert_eq!(
        json!(agent_parent),
        c["span_id"],
        "the agent's parent is C's span"
    );
    assert_eq!(flags, "01");
    // The trace the result carried, origin first: C, B, A.
    let asns: Vec<u64> = a["trace"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h["asn"].as_u64().unwrap())
        .collect();
    let want: Vec<u64> = nodes.iter().rev().map(|n| u64::from(n.asn)).collect();
    assert_eq!(asns, want, "{a}");
    assert_eq!(
        a["trace"][0]["node"], nodes[2].node_id,
        "origin first, by node id"
    );
    let elapsed: Vec<u64> = a["trace"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h["elapsed_us"].as_u64().unwrap())
        .collect();
    assert!(
        elapsed.windows(2).all(|w| w[0] <= w[1]),
        "each hop's time includes the next one's: {elapsed:?}"
    );
    a
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_call_is_one_trace_across_three_nodes_and_the_agent() {
    let root = tempfile::tempdir().unwrap();
    let (nodes, procs) = chain(root.path(), &agent_on_c(), "");
    wait_for("A's route to C's echo", Duration::from_secs(30), || {
        procs[0]
            .as_path("utility/echo/echo")
            .filter(|p| p.len() == 2)
    });
    let url = procs[0].mcp_url();
    let c = client(&url, &[]).await;
    let name = echo_name(&c).await;

    // The client's trace, in params._meta (the MCP OpenTelemetry way).
    let tp = format!("00-{TRACE_ID}-{CLIENT_SPAN}-01");
    let r = echo(&c, &name, "traced", Some(&tp)).await;
    let seen = agent_saw(&r, "traceparent");
    check_hops(&nodes, &procs, TRACE_ID, Some(CLIENT_SPAN), &seen);

    // No traceparent: a new trace, the same at every hop, with no parent
    // at A.
    let r = echo(&c, &name, "untraced", None).await;
    let seen = agent_saw(&r, "traceparent");
    let (fresh, _, _) = parts(&seen);
    assert_ne!(fresh, TRACE_ID);
    assert_ne!(fresh, "0".repeat(32));
    check_hops(&nodes, &procs, &fresh, None, &seen);

    // An invalid traceparent (upper-case hex, a version 00 must not have)
    // starts a new trace; the call still succeeds.
    let bad = format!("00-{}-{CLIENT_SPAN}-01", TRACE_ID.to_uppercase());
    let r = echo(&c, &name, "bad trace", Some(&bad)).await;
    let seen = agent_saw(&r, "traceparent");
    let (other, _, _) = parts(&seen);
    assert_ne!(other, TRACE_ID);
    assert_ne!(other, fresh);
    check_hops(&nodes, &procs, &other, None, &seen);

    // Hostile ones: not text, far too long, a valid one padded. Each is
    // ignored (the agent gets a new trace's traceparent, not the junk).
    let long = format!("00-{TRACE_ID}-{CLIENT_SPAN}-01{}", "0".repeat(100_000));
    for junk in [
        json!({"trace": TRACE_ID}),
        json!(12),
        Value::String(long),
        json!(format!(" 00-{TRACE_ID}-{CLIENT_SPAN}-01")),
    ] {
        let r = echo_meta(&c, &name, "junk", Some(junk.clone())).await;
        let seen = agent_saw(&r, "traceparent");
        assert_eq!(seen.len(), 55, "{junk}: {seen}");
        let (t, _, _) = parts(&seen);
        assert_ne!(t, TRACE_ID, "{junk}");
        check_hops(&nodes, &procs, &t, None, &seen);
    }
    c.cancel().await.ok();

    // The HTTP traceparent header, for clients that trace the transport.
    let header_trace = "0af7651916cd43dd8448eb211c80319c";
    let header_span = "b7ad6b7169203331";
    let tp = format!("00-{header_trace}-{header_span}-01");
    let c = client(&url, &[("traceparent", &tp)]).await;
    let r = echo(&c, &name, "header", None).await;
    let seen = agent_saw(&r, "traceparent");
    check_hops(&nodes, &procs, header_trace, Some(header_span), &seen);
    c.cancel().await.ok();

    // The list is newest first and bounded by ?limit.
    let all = procs[0].get("/v1/calls/recent");
    let all = all.as_array().unwrap();
    assert!(all.len() >= 4, "{all:?}");
    let finished: Vec<u64> = all
        .iter()
        .map(|c| c["finished_ms"].as_u64().unwrap())
        .collect();
    assert!(finished.windows(2).all(|w| w[0] >= w[1]), "{finished:?}");
    let one = procs[0].get("/v1/calls/recent?limit=1");
    assert_eq!(one.as_array().unwrap().len(), 1);
    assert_eq!(one[0], all[0]);
    let (code, body) = procs[0].admin_request("GET", "/v1/calls/recent?limit=-1", None);
    assert_eq!(code, 400, "{body}");
}
