//! Tool calls across a federation of real `abgp` processes on loopback,
//! driven by MCP clients nobody here wrote (the official Python SDK and the
//! MCP Inspector CLI) and by rmcp's client for both protocol revisions.
//!
//! ```text
//!   client ── A ──── B ──── C ── agents (example agent, mcp-server-time, server-everything)
//! ```
//!
//! Each test builds its own small federation in a temporary directory; every
//! wait has a deadline and every process is killed when the test ends.

// Both helper modules include the port helper; one copy each is harmless.
#![allow(clippy::duplicate_mod)]

mod common;
mod mcp_client;
mod node_harness;

use std::process::Command;
use std::time::Duration;

use node_harness::{BIN, NodeDir, Proc, Spec, chain, configure, init, wait_for};
use serde_json::{Value, json};

use common::{inspector_cli, mcp_server_time, server_everything, venv_python};

/// `[[agents]]` entry for the example agent (`abgp example-agent`).
fn example_agent(id: &str, prefix: &str) -> String {
    format!(
        r#"
[[agents]]
id = "{id}"
prefix = "{prefix}"
capabilities = ["example"]
command = {BIN:?}
args = ["example-agent"]
restart_backoff_min = "200ms"
restart_backoff_max = "2s"
"#
    )
}

/// Waits until A's Loc-RIB has `prefix` through B and C.
fn wait_route(a: &Proc, prefix: &str, path_len: usize) {
    wait_for(
        &format!("{prefix} at A with an AS path of {path_len}"),
        Duration::from_secs(30),
        || a.as_path(prefix).filter(|p| p.len() == path_len),
    );
}

/// Runs a Python script with the venv's interpreter; returns its JSON lines.
fn python(script: &str, args: &[&str], timeout: Duration) -> Vec<Value> {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("client.py");
    std::fs::write(&file, script).expect("write script");
    let mut child = Command::new(venv_python())
        .arg(&file)
        .args(args)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("start python");
    let deadline = std::time::Instant::now() + timeout;
    loop {
        match child.try_wait() {
            Ok(Some(_)) => break,
            Ok(None) if std::time::Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(50))
            }
            _ => {
                let _ = child.kill();
                let out = child.wait_with_output().expect("python output");
                panic!(
                    "python client did not finish in {timeout:?}\nstdout:\n{}\nstderr:\n{}",
                    String::from_utf8_lossy(&out.stdout),
                    String::from_utf8_lossy(&out.stderr)
                );
            }
        }
    }
    let out = child.wait_with_output().expect("python output");
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(
        out.status.success(),
        "python client failed\nstdout:\n{stdout}\nstderr:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect()
}

fn step<'a>(lines: &'a [Value], name: &str, mode: &str) -> &'a Value {
    lines
        .iter()
        .find(|l| l["step"] == name && l["mode"] == mode)
        .unwrap_or_else(|| panic!("no step {name}/{mode} in {lines:#?}"))
}

const PY_PRELUDE: &str = r#"
import anyio, json, sys
from mcp import Client
from mcp.shared.exceptions import MCPError

URL = sys.argv[1]

def out(**kw):
    print(json.dumps(kw, default=str), flush=True)

def dump(r):
    return r.model_dump(mode="json", by_alias=True, exclude_none=True)

async def tool_for(c, capability, wait=20.0):
    # The front lists a routed tool by its front name; its description
    # says which capability it serves. Wait for its full descriptor.
    with anyio.fail_after(wait):
        while True:
            tools = (await c.list_tools()).tools
            for t in tools:
                d = t.description or ""
                if f"capability {capability}," in d and "not fetched" not in d:
                    return t, tools
            await anyio.sleep(0.2)
"#;

/// The scenario of the issue on the example agent: a tool on C listed and
/// called from a client on A through B, with arguments and a structured
/// result; progress and cancellation through two hops; a deadline; access
/// denial at the origin; an upstream crash and recovery. Both protocol
/// revisions (initialize handshake and 2026-07-28) at A's front.
#[test]
fn the_example_agent_on_c_is_called_from_a_through_b() {
    let root = tempfile::tempdir().unwrap();
    let c_extra = format!(
        "{}{}{}",
        example_agent("echo", "remote/echo/*"),
        example_agent("vault", "vault/*"),
        r#"
[[access]]
name = "the vault is for AS-internal callers"
prefixes = ["vault/*"]
caller_asns = ["own"]
action = "allow"

[[access]]
prefixes = ["vault/*"]
any_caller = true
action = "deny"
"#
    );
    let (nodes, procs) = chain(root.path(), &c_extra, "call_timeout = \"4s\"\n");
    let (a, c) = (&procs[0], &procs[2]);
    wait_route(a, "remote/echo/echo", 2);
    wait_route(a, "vault/echo", 2);
    let script = format!(
        "{PY_PRELUDE}{}",
        r#"
async def main():
    for mode in ("legacy", "auto"):
        async with Client(URL, mode=mode) as c:
            echo, tools = await tool_for(c, "remote/echo/echo")
            out(step="list", mode=mode, proto=c.protocol_version, count=len(tools),
                names=[t.name for t in tools], echo=dump(echo))
            r = await c.call_tool(echo.name, {"text": "through two hops"})
            out(step="call", mode=mode, result=dump(r))
            slow, _ = await tool_for(c, "remote/echo/slow_count")
            seen = []
            with anyio.CancelScope() as scope:
                async def on_progress(p, total, msg):
                    seen.append([p, total, msg])
                    if len(seen) == 3:
                        scope.cancel()
                await c.call_tool(slow.name, {"n": 60, "delay_ms": 100}, progress_callback=on_progress)
            out(step="cancel", mode=mode, progress=seen, cancelled=scope.cancelled_caught)
            stats, _ = await tool_for(c, "remote/echo/stats")
            cancelled = 0
            with anyio.fail_after(10):
                while cancelled < 1:
                    cancelled = (await c.call_tool(stats.name, {})).structured_content["cancelled"]
                    await anyio.sleep(0.1)
            out(step="upstream-cancelled", mode=mode, cancelled=cancelled)
            # The vault's descriptors are denied too: find it by its route.
            vault = [t for t in tools if "capability vault/echo," in (t.description or "")][0]
            try:
                await c.call_tool(vault.name, {"text": "let me in"})
                out(step="denied", mode=mode, error=None)
            except MCPError as e:
                out(step="denied", mode=mode, code=e.error.code, message=e.error.message,
                    data=e.error.data, description=vault.description)
    async with Client(URL, mode="legacy") as c:
        wait, _ = await tool_for(c, "remote/echo/wait")
        t0 = anyio.current_time()
        try:
            await c.call_tool(wait.name, {"ms": 20000})
            out(step="deadline", mode="legacy", error=None)
        except MCPError as e:
            out(step="deadline", mode="legacy", code=e.error.code, message=e.error.message,
                data=e.error.data, after=anyio.current_time() - t0)
        stats, _ = await tool_for(c, "remote/echo/stats")
        pid = (await c.call_tool(stats.name, {})).structured_content["pid"]
        crash, _ = await tool_for(c, "remote/echo/crash")
        try:
            await c.call_tool(crash.name, {})
            out(step="crash", mode="legacy", error=None)
        except MCPError as e:
            out(step="crash", mode="legacy", code=e.error.code, message=e.error.message)
        # Withdrawn, restarted with back-off, re-announced: the same front
        # name answers again, from a new process.
        with anyio.fail_after(30):
            while True:
                try:
                    r = await c.call_tool(stats.name, {})
                    if not r.is_error and r.structured_content["pid"] != pid:
                        break
                except MCPError:
                    pass
                await anyio.sleep(0.2)
        out(step="recovered", mode="legacy", old_pid=pid, new_pid=r.structured_content["pid"])

anyio.run(main)
"#
    );
    let url = a.mcp_url();
    let lines = python(&script, &[&url], Duration::from_secs(120));

    for mode in ["legacy", "auto"] {
        let list = step(&lines, "list", mode);
        let proto = list["proto"].as_str().unwrap();
        let want = if mode == "legacy" {
            "2025-11-25"
        } else {
            "2026-07-28"
        };
        assert_eq!(proto, want, "{mode}");
        // The remote tool shows its real descriptor and where it lives.
        let echo = &list["echo"];
        assert_eq!(echo["inputSchema"]["required"], json!(["text"]));
        assert_eq!(echo["annotations"]["readOnlyHint"], true);
        assert_eq!(echo["title"], "Echo");
        let desc = echo["description"].as_str().unwrap();
        assert!(desc.starts_with("Returns its text"), "{desc}");
        assert!(desc.contains(&format!("in AS{}", nodes[2].asn)), "{desc}");
        assert!(desc.contains("AS path length 2"), "{desc}");
        let names: Vec<&str> = list["names"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(Value::as_str)
            .collect();
        for meta in ["find_agents", "call_capability", "list_agents"] {
            assert!(names.contains(&meta), "{meta} in {names:?}");
        }
        assert!(
            names.iter().all(|n| n.len() <= 64
                && n.chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')),
            "{names:?}"
        );

        let call = &step(&lines, "call", mode)["result"];
        assert_eq!(
            call["structuredContent"],
            json!({"text": "through two hops"})
        );
        assert_eq!(call["isError"], false);
        let trace = call["_meta"]["agent-bgp/trace"].as_array().unwrap();
        let asns: Vec<u64> = trace.iter().map(|h| h["asn"].as_u64().unwrap()).collect();
        let want: Vec<u64> = nodes.iter().map(|n| u64::from(n.asn)).collect();
        assert_eq!(asns, want, "path A, B, C");
        // A checked the origin's seal on the answer before returning it.
        let answer = &call["_meta"]["agent-bgp/answer"];
        assert_eq!(answer["verified"], true, "{call}");
        assert_eq!(answer["origin_asn"], u64::from(nodes[2].asn), "{call}");
        assert_eq!(answer["origin_node"], nodes[2].node_id.as_str(), "{call}");

        let cancel = step(&lines, "cancel", mode);
        assert_eq!(cancel["cancelled"], true);
        let progress = cancel["progress"].as_array().unwrap();
        assert_eq!(progress.len(), 3, "{progress:?}");
        assert_eq!(progress[0], json!([1.0, 60.0, "1/60"]));
        assert!(step(&lines, "upstream-cancelled", mode)["cancelled"].as_u64() >= Some(1));

        let denied = step(&lines, "denied", mode);
        assert_eq!(denied["code"], -32004, "{denied}");
        let msg = denied["message"].as_str().unwrap();
        assert!(
            msg.contains("denied") && msg.contains(&format!("AS{}", nodes[0].asn)),
            "{msg}"
        );
        assert_eq!(denied["data"]["kind"], "access_denied");
        assert_eq!(denied["data"]["mayHaveRun"], false);
    }

    let deadline = step(&lines, "deadline", "legacy");
    assert_eq!(deadline["code"], -32006, "{deadline}");
    assert_eq!(deadline["data"]["mayHaveRun"], true);
    let after = deadline["after"].as_f64().unwrap();
    assert!((3.5..8.0).contains(&after), "ended after {after} s");

    let crash = step(&lines, "crash", "legacy");
    assert!(
        crash["code"].is_i64(),
        "a crash is an error, not a hang: {crash}"
    );
    let rec = step(&lines, "recovered", "legacy");
    assert_ne!(rec["old_pid"], rec["new_pid"]);
    let agents = c.get("/v1/agents");
    let echo = agents
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["id"] == "echo")
        .unwrap();
    assert!(echo["sessions"].as_u64() >= Some(2), "{echo}");
    let m = a.get("/v1/mcp");
    assert!(m["metrics"]["front_calls"]["ok"].as_u64() >= Some(4), "{m}");
}

/// Runs the MCP Inspector CLI against `url`; returns its JSON output.
fn inspector(url: &str, args: &[&str]) -> Value {
    let out = Command::new("node")
        .arg(inspector_cli())
        .arg("--cli")
        .arg(url)
        .args(args)
        .output()
        .expect("run the MCP Inspector CLI");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "inspector {args:?} failed: {}\n{stdout}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_str(&stdout).unwrap_or_else(|e| panic!("{e}: {stdout}"))
}

/// Real MCP servers nobody here wrote as C's upstreams (mcp-server-time on
/// the Python SDK, server-everything on the TypeScript SDK), used from A
/// through B by the Python SDK and by the MCP Inspector CLI.
#[test]
fn real_mcp_servers_on_c_are_used_from_a_through_b() {
    let root = tempfile::tempdir().unwrap();
    let c_extra = format!(
        r#"
[[agents]]
id = "time"
prefix = "utility/time/*"
capabilities = ["time"]
command = {time:?}
args = ["--local-timezone", "Etc/UTC"]

[[agents]]
id = "everything"
prefix = "reference/everything/*"
capabilities = ["reference"]
command = "node"
args = [{everything:?}, "stdio"]
"#,
        time = mcp_server_time().to_string_lossy(),
        everything = server_everything().to_string_lossy(),
    );
    let (_nodes, procs) = chain(root.path(), &c_extra, "");
    let a = &procs[0];
    wait_route(a, "utility/time/get_current_time", 2);
    wait_route(a, "reference/everything/get-sum", 2);
    let script = format!(
        "{PY_PRELUDE}{}",
        r#"
async def main():
    for mode in ("legacy", "auto"):
        async with Client(URL, mode=mode) as c:
            now, _ = await tool_for(c, "utility/time/get_current_time")
            r = await c.call_tool(now.name, {"timezone": "Etc/UTC"})
            out(step="time", mode=mode, name=now.name, schema=now.input_schema, result=dump(r))
            add, _ = await tool_for(c, "reference/everything/get-sum")
            r = await c.call_tool(add.name, {"a": 2, "b": 40})
            out(step="sum", mode=mode, result=dump(r))
            slow, _ = await tool_for(c, "reference/everything/trigger-long-running-operation")
            seen = []
            async def on_progress(p, total, msg):
                seen.append([p, total])
            r = await c.call_tool(slow.name, {"duration": 1, "steps": 4}, progress_callback=on_progress)
            out(step="progress", mode=mode, progress=seen, result=dump(r))

anyio.run(main)
"#
    );
    let url = a.mcp_url();
    let lines = python(&script, &[&url], Duration::from_secs(90));
    for mode in ["legacy", "auto"] {
        let time = step(&lines, "time", mode);
        assert_eq!(time["schema"]["required"], json!(["timezone"]), "{time}");
        let text = time["result"]["content"][0]["text"].as_str().unwrap();
        assert!(
            text.contains("Etc/UTC") && text.contains("datetime"),
            "{text}"
        );
        let sum = &step(&lines, "sum", mode)["result"];
        let text = sum["content"][0]["text"].as_str().unwrap();
        assert!(text.contains("42"), "{text}");
        let progress = step(&lines, "progress", mode);
        let steps = progress["progress"].as_array().unwrap();
        assert!(steps.len() >= 3, "progress through two hops: {progress}");
        assert_eq!(steps.last().unwrap()[1], 4.0, "{progress}");
    }
    // The Inspector CLI, another client nobody here wrote.
    let list = inspector(&url, &["--method", "tools/list"]);
    let tools = list["tools"].as_array().unwrap();
    let now = tools
        .iter()
        .find(|t| {
            t["description"]
                .as_str()
                .is_some_and(|d| d.contains("capability utility/time/get_current_time,"))
        })
        .expect("the time tool in the inspector's list");
    let name = now["name"].as_str().unwrap();
    let r = inspector(
        &url,
        &[
            "--method",
            "tools/call",
            "--tool-name",
            name,
            "--tool-arg",
            "timezone=Asia/Tokyo",
        ],
    );
    let text = r["content"][0]["text"].as_str().unwrap_or_default();
    assert!(text.contains("Asia/Tokyo"), "{r}");
}

/// An rmcp client on `url` speaking the initialize handshake (2025-11-25)
/// or the 2026-07-28 lifecycle.
async fn rmcp_client(
    url: &str,
    mode: rmcp::service::ClientLifecycleMode,
) -> rmcp::service::RunningService<rmcp::RoleClient, ()> {
    let t = rmcp::transport::StreamableHttpClientTransport::from_uri(url);
    rmcp::service::serve_client_with_lifecycle_and_ct(
        (),
        t,
        mode,
        tokio_util::sync::CancellationToken::new(),
    )
    .await
    .expect("MCP client connects to the front")
}

fn args(v: Value) -> serde_json::Map<String, Value> {
    v.as_object().cloned().unwrap_or_default()
}

/// The peer a call for `target` in flight at A went to.
fn in_flight_to(a: &Proc, target: &str) -> String {
    wait_for("the call in flight at A", Duration::from_secs(10), || {
        a.try_get("/v1/calls")?
            .as_array()?
            .iter()
            .find(|c| c["target"] == target)?["to"]
            .as_str()
            .map(str::to_string)
    })
}

type CallHandle =
    tokio::task::JoinHandle<Result<rmcp::model::CallToolResult, rmcp::service::ServiceError>>;

/// Starts a call of the front tool `name`, waits until it runs at the
/// origin (in flight at `origin` towards its agent) and at A towards
/// `target`, and kills the transit node it went through. Returns the
/// running call and the killed node's peer id and place in `transit`.
async fn call_and_kill_its_hop(
    peer: rmcp::service::Peer<rmcp::RoleClient>,
    a: &Proc,
    origin: &Proc,
    transit: &mut [(NodeDir, Option<Proc>)],
    name: String,
    arguments: Value,
    target: &str,
) -> (CallHandle, String, usize) {
    let call = tokio::spawn(async move {
        peer.call_tool(
            rmcp::model::CallToolRequestParams::new(name).with_arguments(args(arguments)),
        )
        .await
    });
    // Waits on the nodes' tables of calls in flight, not a clock: the call
    // is mid-call once its agent at the origin runs it.
    wait_for(
        "the call running at the origin",
        Duration::from_secs(10),
        || {
            origin
                .try_get("/v1/calls")?
                .as_array()?
                .iter()
                .any(|c| c["target"] == target && c["agent"].is_string())
                .then_some(())
        },
    );
    let hop = in_flight_to(a, target);
    let i = transit.iter().position(|(n, _)| n.peer_id == hop).unwrap();
    if let Some(mut p) = transit[i].1.take() {
        p.kill();
    }
    (call, hop, i)
}

/// A - B - C and A - D - C (equal paths). The next hop of a running call
/// dies: a call of a tool not marked idempotent fails with a clear error
/// saying the tool may have run; a read-only one is retried through the
/// other path and succeeds.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_next_hop_that_dies_mid_call_fails_the_call_or_it_is_retried_if_idempotent() {
    let root = tempfile::tempdir().unwrap();
    let (a, b, c, d) = (
        init(root.path(), "A", "test"),
        init(root.path(), "B", "test"),
        init(root.path(), "C", "test"),
        init(root.path(), "D", "test"),
    );
    let hold = 30;
    configure(
        &a,
        &Spec {
            hold,
            neighbors: vec![(b.clone(), false), (d.clone(), false)],
            ..Default::default()
        },
    );
    for x in [&b, &d] {
        configure(
            x,
            &Spec {
                hold,
                neighbors: vec![(a.clone(), false), (c.clone(), false)],
                ..Default::default()
            },
        );
    }
    configure(
        &c,
        &Spec {
            hold,
            neighbors: vec![(b.clone(), false), (d.clone(), false)],
            extra: example_agent("echo", "remote/echo/*"),
            ..Default::default()
        },
    );
    let pa = Proc::start(&a);
    let mut transit = vec![
        (b.clone(), Some(Proc::start(&b))),
        (d.clone(), Some(Proc::start(&d))),
    ];
    let pc = Proc::start(&c);
    wait_route(&pa, "remote/echo/wait", 2);
    let url = pa.mcp_url();
    let client = rmcp_client(&url, rmcp::service::ClientLifecycleMode::Initialize).await;
    let slow =
        mcp_client::tool_name(&client, "remote/echo/slow_count", Duration::from_secs(20)).await;
    let wait = mcp_client::tool_name(&client, "remote/echo/wait", Duration::from_secs(20)).await;

    // 1. Not idempotent: the call fails, clearly, and is not run again.
    let (call, _, i) = call_and_kill_its_hop(
        client.peer().clone(),
        &pa,
        &pc,
        &mut transit,
        slow,
        json!({"n": 50, "delay_ms": 100}),
        "remote/echo/slow_count",
    )
    .await;
    let r = common::within(10.0, "the failed call to end", call)
        .await
        .unwrap();
    let e = match r {
        Err(rmcp::service::ServiceError::McpError(e)) => e,
        other => panic!("expected an MCP error, got {other:?}"),
    };
    assert_eq!(e.code.0, -32007, "{e:?}");
    assert!(e.message.contains("may or may not have run"), "{e:?}");
    assert!(e.message.contains("not retried"), "{e:?}");

    // Bring it back and let the routes settle: both paths again.
    let dead = transit[i].0.clone();
    transit[i].1 = Some(Proc::start(&dead));
    wait_for(
        "A to peer with the restarted node again",
        Duration::from_secs(30),
        || pa.established_with(&dead.peer_id).then_some(()),
    );
    // Each transit node advertises C's routes to A again (A's copies of the
    // restarted node's routes may still be the stale ones graceful restart
    // kept).
    for (n, p) in &transit {
        let p = p.as_ref().unwrap();
        wait_for(
            &format!("{} to advertise C's routes to A", n.name),
            Duration::from_secs(30),
            || {
                p.try_get(&format!("/v1/routes/out/{}", a.peer_id))?["routes"]
                    .as_array()?
                    .iter()
                    .any(|r| r["prefix"] == "remote/echo/wait")
                    .then_some(())
            },
        );
    }

    // 2. Read-only: retried through the other path, and it succeeds.
    let started = std::time::Instant::now();
    let (call, hop, _) = call_and_kill_its_hop(
        client.peer().clone(),
        &pa,
        &pc,
        &mut transit,
        wait,
        json!({"ms": 2500}),
        "remote/echo/wait",
    )
    .await;
    let r = common::within(15.0, "the retried call", call)
        .await
        .unwrap()
        .expect("the read-only call succeeds on the other path");
    assert_eq!(r.structured_content, Some(json!({"waited_ms": 2500})));
    let stats = pa.get("/v1/mcp")["forwarder"].clone();
    // It was running at the origin when its hop died, and a whole run
    // (2.5 s) followed on the other path.
    assert!(
        started.elapsed() >= Duration::from_millis(2500) && stats["retries"].as_u64() >= Some(1),
        "ran again after the retry: {:?}, {stats}, killed {hop}, trace {:?}",
        started.elapsed(),
        r.meta
    );
    let trace = serde_json::to_value(r.meta.unwrap()).unwrap()["agent-bgp/trace"].clone();
    assert_eq!(trace.as_array().map(Vec::len), Some(3), "{trace}");
    let _ = client.cancel().await;
}

/// Prompts, resources, templates and completions of server-everything on C,
/// used from A through B by the Python SDK and the Inspector CLI; and a
/// sampling request and an elicitation of the agent answered by the client
/// on A, across both hops.
#[test]
fn prompts_resources_sampling_and_elicitation_cross_two_hops() {
    let root = tempfile::tempdir().unwrap();
    let c_extra = format!(
        r#"
[[agents]]
id = "everything"
prefix = "reference/everything/*"
capabilities = ["reference"]
command = "node"
args = [{everything:?}, "stdio"]
"#,
        everything = server_everything().to_string_lossy(),
    );
    let (_nodes, procs) = chain(root.path(), &c_extra, "");
    let a = &procs[0];
    wait_route(a, "reference/everything/prompt/args-prompt", 2);
    wait_route(a, "reference/everything/trigger-sampling-request", 2);
    let script = format!(
        "{PY_PRELUDE}{}",
        r#"
from mcp import types

async def wait_for(what, f, wait=20.0):
    with anyio.fail_after(wait):
        while True:
            v = await f()
            if v:
                return v
            await anyio.sleep(0.2)

async def main():
    asked = []
    async def sampling(ctx, params):
        asked.append(dump(params))
        return types.CreateMessageResult(
            role="assistant",
            content=types.TextContent(type="text", text="the federation says hi"),
            model="test-model",
            stop_reason="endTurn",
        )
    async def elicit(ctx, params):
        asked.append(dump(params))
        return types.ElicitResult(action="accept", content={"name": "Ada", "check": True, "firstLine": "x", "email": "ada@example.org", "homepage": "https://example.org", "birthdate": "1815-12-10", "integer": 7, "number": 1.5, "untitledSingleSelectEnum": "option1", "titledSingleSelectEnum": "value1", "legacyTitledEnum": "opt1", "untitledMultipleSelectEnum": ["option1"], "titledMultipleSelectEnum": ["value1"]})
    async with Client(URL, mode="legacy", sampling_callback=sampling, elicitation_callback=elicit) as c:
        async def prompts():
            ps = (await c.list_prompts()).prompts
            return ps if any(p.name == "args-prompt" and p.arguments for p in ps) else None
        ps = await wait_for("prompts", prompts)
        out(step="prompts", prompts=[dump(p) for p in ps])
        r = await c.get_prompt("args-prompt", {"city": "Paris", "state": "Texas"})
        out(step="prompt", result=dump(r))
        async def resources():
            rs = (await c.list_resources()).resources
            return rs if any(r.name == "architecture.md" for r in rs) else None
        rs = await wait_for("resources", resources)
        out(step="resources", resources=[dump(r) for r in rs])
        arch = next(r for r in rs if r.name == "architecture.md")
        r = await c.read_resource(arch.uri)
        out(step="read", result=dump(r))
        ts = await wait_for("templates", lambda: c.list_resource_templates())
        out(step="templates", templates=[dump(t) for t in ts.resource_templates])
        r = await c.read_resource("demo://resource/dynamic/text/7")
        out(step="template-read", result=dump(r))
        try:
            await c.read_resource("demo://nowhere/at/all")
            out(step="missing", error=None)
        except MCPError as e:
            out(step="missing", error={"code": e.error.code, "message": e.error.message})
        comp = await c.complete(types.PromptReference(type="ref/prompt", name="completable-prompt"), {"name": "department", "value": "E"})
        out(step="complete", result=dump(comp))
        samp, _ = await tool_for(c, "reference/everything/trigger-sampling-request")
        r = await c.call_tool(samp.name, {"prompt": "hello", "maxTokens": 10})
        out(step="sampling", result=dump(r), asked=asked[-1])
        el, _ = await tool_for(c, "reference/everything/trigger-elicitation-request")
        r = await c.call_tool(el.name, {})
        out(step="elicitation", result=dump(r), asked=asked[-1])
    # A client that cannot sample gets an error from the agent, not a hang.
    async with Client(URL, mode="legacy") as c:
        samp, _ = await tool_for(c, "reference/everything/trigger-sampling-request")
        try:
            r = await c.call_tool(samp.name, {"prompt": "hello", "maxTokens": 10})
            out(step="no-sampling", result=dump(r))
        except MCPError as e:
            out(step="no-sampling", error={"code": e.error.code, "message": e.error.message})

anyio.run(main)
"#
    );
    let url = a.mcp_url();
    let lines = python(&script, &[&url], Duration::from_secs(120));
    let get = |name: &str| {
        lines
            .iter()
            .find(|l| l["step"] == name)
            .unwrap_or_else(|| panic!("no step {name} in {lines:#?}"))
    };
    let prompts = get("prompts")["prompts"].as_array().unwrap();
    let args_prompt = prompts.iter().find(|p| p["name"] == "args-prompt").unwrap();
    assert_eq!(args_prompt["arguments"][0]["name"], "city", "{args_prompt}");
    let text = get("prompt")["result"]["messages"][0]["content"]["text"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(text.contains("Paris") && text.contains("Texas"), "{text}");
    let read = &get("read")["result"]["contents"][0];
    assert!(
        read["uri"].as_str().unwrap().ends_with("architecture.md"),
        "{read}"
    );
    assert!(
        !read["text"].as_str().unwrap_or_default().is_empty(),
        "{read}"
    );
    let templates = get("templates")["templates"].as_array().unwrap();
    assert!(
        templates
            .iter()
            .any(|t| t["uriTemplate"] == "demo://resource/dynamic/text/{resourceId}"),
        "{templates:?}"
    );
    let dynamic = &get("template-read")["result"]["contents"][0];
    assert_eq!(
        dynamic["uri"], "demo://resource/dynamic/text/7",
        "{dynamic}"
    );
    assert_eq!(
        get("missing")["error"]["code"],
        -32002,
        "{:?}",
        get("missing")
    );
    let values = get("complete")["result"]["completion"]["values"]
        .as_array()
        .unwrap();
    assert!(values.iter().any(|v| v == "Engineering"), "{values:?}");
    let s = get("sampling");
    let text = s["result"]["content"][0]["text"].as_str().unwrap();
    assert!(text.contains("the federation says hi"), "{s}");
    assert!(
        s["asked"]["messages"][0]["content"]["text"]
            .as_str()
            .unwrap()
            .contains("hello"),
        "{s}"
    );
    let e = get("elicitation");
    let text = serde_json::to_string(&e["result"]).unwrap();
    assert!(
        text.contains("Ada"),
        "the elicited answer reached the agent: {e}"
    );
    let refused = get("no-sampling");
    let shown = refused.to_string();
    assert!(
        refused["result"]["isError"] == true || refused.get("error").is_some(),
        "{shown}"
    );
    // The Inspector CLI sees the same prompts and resources.
    let list = inspector(&url, &["--method", "prompts/list"]);
    assert!(
        list["prompts"]
            .as_array()
            .unwrap()
            .iter()
            .any(|p| p["name"] == "simple-prompt"),
        "{list}"
    );
    let r = inspector(
        &url,
        &[
            "--method",
            "prompts/get",
            "--prompt-name",
            "args-prompt",
            "--prompt-args",
            "city=Lyon",
        ],
    );
    assert!(r.to_string().contains("Lyon"), "{r}");
    let list = inspector(&url, &["--method", "resources/list"]);
    let uri = list["resources"][0]["uri"].as_str().unwrap().to_string();
    let r = inspector(&url, &["--method", "resources/read", "--uri", &uri]);
    assert_eq!(r["contents"][0]["uri"], uri.as_str(), "{r}");
}

/// B is killed while the client on A is answering a sampling request of
/// the agent on C: the call ends with a clear error naming the lost hop,
/// within seconds, and nothing hangs (the client's late answer goes
/// nowhere).
#[test]
fn a_hop_killed_during_a_sampling_round_trip_fails_the_call_cleanly() {
    use std::io::{BufRead, BufReader};
    let root = tempfile::tempdir().unwrap();
    let c_extra = format!(
        r#"
[[agents]]
id = "everything"
prefix = "reference/everything/*"
capabilities = ["reference"]
command = "node"
args = [{everything:?}, "stdio"]
"#,
        everything = server_everything().to_string_lossy(),
    );
    let (_nodes, mut procs) = chain(root.path(), &c_extra, "");
    wait_route(
        &procs[0],
        "reference/everything/trigger-sampling-request",
        2,
    );
    let go = root.path().join("answer-now");
    let script = format!(
        "{PY_PRELUDE}{}",
        r#"
import os, time
from mcp import types

GO = sys.argv[2]

async def main():
    async def sampling(ctx, params):
        out(step="asked")
        with anyio.fail_after(30):
            while not os.path.exists(GO):
                await anyio.sleep(0.05)
        return types.CreateMessageResult(role="assistant", content=types.TextContent(type="text", text="late"), model="m", stop_reason="endTurn")
    async with Client(URL, mode="legacy", sampling_callback=sampling) as c:
        samp, _ = await tool_for(c, "reference/everything/trigger-sampling-request")
        t = time.monotonic()
        try:
            r = await c.call_tool(samp.name, {"prompt": "hello", "maxTokens": 5})
            out(step="end", result=dump(r), secs=time.monotonic() - t)
        except MCPError as e:
            out(step="end", error={"code": e.error.code, "message": e.error.message, "data": e.error.data}, secs=time.monotonic() - t)

anyio.run(main)
"#
    );
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("client.py");
    std::fs::write(&file, script).unwrap();
    let mut child = std::process::Command::new(venv_python())
        .arg(&file)
        .arg(procs[0].mcp_url())
        .arg(&go)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("start python");
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let Some(asked) = lines.next().and_then(Result::ok) else {
        let _ = child.kill();
        panic!("the client was never asked: {:?}", child.wait_with_output());
    };
    assert!(asked.contains("asked"), "{asked}");
    // The request crossed B; now B dies before the answer goes back.
    procs[1].kill();
    std::fs::write(&go, b"").unwrap();
    let end = lines
        .next()
        .and_then(Result::ok)
        .expect("the call ended (the client printed its end)");
    let _ = child.wait();
    let v: Value = serde_json::from_str(&end).unwrap();
    println!("the client saw: {v}");
    assert!(v["secs"].as_f64().unwrap() < 20.0, "{v}");
    let failed = v.get("error").is_some() || v["result"]["isError"] == true;
    assert!(failed, "the call cannot succeed without B: {v}");
    let shown = v.to_string();
    assert!(
        shown.contains("next_hop_down")
            || shown.contains("next hop")
            || shown.contains("the call ended"),
        "the error says what happened: {v}"
    );
}

/// An agent may have at most 16 requests open with its caller's client
/// during one run: a Python SDK agent on C fires 20 sampling requests at
/// once while the client on A holds its answers; 16 reach the client, the
/// other 4 are refused at once (the agent hears why), and once the client
/// answers, the 16 complete and the tool returns.
#[test]
fn an_agent_has_at_most_16_requests_open_with_the_client() {
    let root = tempfile::tempdir().unwrap();
    let agent_py = root.path().join("flood.py");
    std::fs::write(
        &agent_py,
        r#"
import anyio, json
from mcp import types
from mcp.server.mcpserver import MCPServer, Context

server = MCPServer("flood")

@server.tool()
async def flood(n: int, ctx: Context) -> str:
    """Sends n sampling requests to the caller's client at once."""
    results = []
    async def one(i):
        try:
            await ctx.session.create_message(
                messages=[types.SamplingMessage(role="user", content=types.TextContent(type="text", text=f"q{i}"))],
                max_tokens=5,
            )
            results.append("ok")
        except Exception as e:
            results.append(f"error: {e}")
    async with anyio.create_task_group() as tg:
        for i in range(n):
            tg.start_soon(one, i)
    return json.dumps(results)

server.run()
"#,
    )
    .unwrap();
    let c_extra = format!(
        // 2025-11-25, where an agent asks the client with requests of its
        // own (2026-07-28 has input-required rounds instead).
        "\n[[agents]]\nid = \"flood\"\nprefix = \"flood/*\"\nprotocol = \"initialize\"\ncommand = {:?}\nargs = [{:?}]\n",
        venv_python().to_string_lossy(),
        agent_py.to_string_lossy()
    );
    let (_nodes, procs) = chain(root.path(), &c_extra, "");
    let a = &procs[0];
    wait_route(a, "flood/flood", 2);
    let script = format!(
        "{PY_PRELUDE}{}",
        r#"
from mcp import types

async def main():
    asked = []
    enough = anyio.Event()
    async def sampling(ctx, params):
        asked.append(1)
        if len(asked) >= 16:
            enough.set()
        # Hold every answer until 16 are open (or 5 s pass), so the agent
        # has as many open as the node lets it.
        with anyio.move_on_after(5):
            await enough.wait()
        return types.CreateMessageResult(
            role="assistant",
            content=types.TextContent(type="text", text="a"),
            model="test-model",
            stop_reason="endTurn",
        )
    async with Client(URL, mode="legacy", sampling_callback=sampling) as c:
        t, _ = await tool_for(c, "flood/flood")
        r = await c.call_tool(t.name, {"n": 20})
        out(step="flood", mode="legacy", asked=len(asked), result=dump(r))

anyio.run(main)
"#
    );
    let url = a.mcp_url();
    let lines = python(&script, &[&url], Duration::from_secs(90));
    let flood = step(&lines, "flood", "legacy");
    assert_eq!(flood["asked"], 16, "only 16 reach the client: {flood}");
    let text = flood["result"]["content"][0]["text"].as_str().unwrap();
    let results: Vec<String> = serde_json::from_str(text).unwrap();
    assert_eq!(results.len(), 20, "{results:?}");
    assert_eq!(
        results.iter().filter(|r| *r == "ok").count(),
        16,
        "{results:?}"
    );
    let refused: Vec<&String> = results.iter().filter(|r| *r != "ok").collect();
    assert_eq!(refused.len(), 4, "{results:?}");
    for r in refused {
        assert!(
            r.contains("at most 16 requests to the caller at a time"),
            "{r}"
        );
    }
}
