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

mod common;
mod node_harness;

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use node_harness::{BIN, NodeDir, Proc, Spec, configure, init, wait_for};
use serde_json::{Value, json};

use common::venv_python;

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
restart-backoff-min = "200ms"
restart-backoff-max = "2s"
"#
    )
}

/// A - B - C, each peered with its neighbours; `c_extra` and `a_mcp` go
/// into C's file and A's `[mcp]` section.
fn chain(root: &Path, c_extra: &str, a_mcp: &str) -> (Vec<NodeDir>, Vec<Proc>) {
    let a = init(root, "A", "test");
    let b = init(root, "B", "test");
    let c = init(root, "C", "test");
    let hold = 30;
    configure(
        &a,
        &Spec {
            hold,
            neighbors: vec![(b.clone(), false)],
            mcp: a_mcp.into(),
            ..Default::default()
        },
    );
    configure(
        &b,
        &Spec {
            hold,
            neighbors: vec![(a.clone(), false), (c.clone(), false)],
            ..Default::default()
        },
    );
    configure(
        &c,
        &Spec {
            hold,
            neighbors: vec![(b.clone(), false)],
            extra: c_extra.into(),
            ..Default::default()
        },
    );
    let procs = vec![Proc::start(&a), Proc::start(&b), Proc::start(&c)];
    (vec![a, b, c], procs)
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
caller-asns = ["own"]
action = "allow"

[[access]]
prefixes = ["vault/*"]
any-caller = true
action = "deny"
"#
    );
    let (nodes, procs) = chain(root.path(), &c_extra, "call-timeout-secs = 4\n");
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
