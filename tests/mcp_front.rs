//! One node's MCP front, end to end: bearer-token auth, both protocol
//! revisions (rmcp's client), the meta tools, agents added and removed at
//! run time through the CLI (persisted across a restart), list_changed,
//! `abgp mcp` (the stdio bridge) driven by the Python SDK, and the metrics.

// Both helper modules include the port helper; one copy each is harmless.
#![allow(clippy::duplicate_mod)]

mod common;
mod node_harness;

use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};
use std::time::Duration;

use node_harness::{BIN, Proc, Spec, configure, init, wait_for};
use rmcp::model::{CallToolRequestParams, ProtocolVersion};
use rmcp::service::{
    ClientLifecycleMode, NotificationContext, RunningService, serve_client_with_lifecycle_and_ct,
};
use rmcp::transport::StreamableHttpClientTransport;
use rmcp::transport::streamable_http_client::StreamableHttpClientTransportConfig;
use rmcp::{ClientHandler, RoleClient};
use serde_json::{Value, json};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use common::{inspector_cli, venv_python, within};

const TOKEN: &str = "front-test-token-7f3a";

/// Counts `notifications/tools/list_changed`.
#[derive(Clone)]
struct Watcher(mpsc::UnboundedSender<()>);

impl ClientHandler for Watcher {
    async fn on_tool_list_changed(&self, _: NotificationContext<RoleClient>) {
        let _ = self.0.send(());
    }
}

async fn connect<H: ClientHandler>(
    url: &str,
    token: Option<&str>,
    mode: ClientLifecycleMode,
    handler: H,
) -> Result<RunningService<RoleClient, H>, String> {
    let mut cfg = StreamableHttpClientTransportConfig::with_uri(url);
    if let Some(t) = token {
        cfg = cfg.auth_header(t);
    }
    serve_client_with_lifecycle_and_ct(
        handler,
        StreamableHttpClientTransport::from_config(cfg),
        mode,
        CancellationToken::new(),
    )
    .await
    .map_err(|e| e.to_string())
}

fn args(v: Value) -> serde_json::Map<String, Value> {
    v.as_object().cloned().unwrap_or_default()
}

fn structured(r: &rmcp::model::CallToolResult) -> Value {
    r.structured_content.clone().unwrap_or(Value::Null)
}

fn agent_entry(id: &str, prefix: &str) -> String {
    format!(
        "\n[[agents]]\nid = \"{id}\"\nprefix = \"{prefix}\"\ncapabilities = [\"example\"]\ncommand = {BIN:?}\nargs = [\"example-agent\"]\n"
    )
}

fn abgp(args: &[&str]) -> (bool, String, String) {
    let out = Command::new(BIN).args(args).output().expect("run abgp");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into(),
        String::from_utf8_lossy(&out.stderr).into(),
    )
}

/// One node with the example agent as `echo` under `local/echo/*` and a
/// bearer token on its front.
struct Front {
    _root: tempfile::TempDir,
    n: node_harness::NodeDir,
    p: Proc,
    url: String,
    cfg: String,
}

fn front() -> Front {
    let root = tempfile::tempdir().unwrap();
    let n = init(root.path(), "N", "test");
    configure(
        &n,
        &Spec {
            mcp: format!("bearer_token = \"{TOKEN}\"\n"),
            extra: agent_entry("echo", "local/echo/*"),
            ..Default::default()
        },
    );
    let p = Proc::start(&n);
    // The front lists what its table holds; wait until the agent's tools
    // are in it (the agent starts after the node).
    wait_for(
        "the echo agent's tools at the front",
        Duration::from_secs(30),
        || {
            let tools = p.try_get("/v1/tools")?;
            let names: Vec<&str> = tools
                .as_array()?
                .iter()
                .filter_map(|t| t["name"].as_str())
                .collect();
            (names.contains(&"echo") && names.contains(&"add")).then_some(())
        },
    );
    let url = p.mcp_url();
    let cfg = n.dir.join("node.toml").to_str().unwrap().to_string();
    Front {
        _root: root,
        n,
        p,
        url,
        cfg,
    }
}

/// A 2026-07-28 client with the token.
async fn modern(url: &str) -> RunningService<RoleClient, ()> {
    connect(
        url,
        Some(TOKEN),
        ClientLifecycleMode::Discover {
            preferred_versions: vec![ProtocolVersion::V_2026_07_28],
        },
        (),
    )
    .await
    .unwrap()
}

async fn call(
    peer: &rmcp::service::Peer<RoleClient>,
    name: &str,
    arguments: Value,
) -> Result<rmcp::model::CallToolResult, rmcp::service::ServiceError> {
    peer.call_tool(CallToolRequestParams::new(name.to_string()).with_arguments(args(arguments)))
        .await
}

fn add_agent(cfg: &str, id: &str, prefix: &str) {
    let (ok, out, err) = abgp(&[
        "agent",
        "add",
        "--config",
        cfg,
        "--id",
        id,
        "--prefix",
        prefix,
        "--command",
        BIN,
        "--arg",
        "example-agent",
    ]);
    assert!(ok, "agent add: {err}{out}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_front_refuses_a_client_without_the_token_and_serves_the_inspector() {
    let f = front();
    assert!(
        connect(&f.url, None, ClientLifecycleMode::Initialize, ())
            .await
            .is_err(),
        "a client without the bearer token is refused"
    );
    let out = Command::new("node")
        .arg(inspector_cli())
        .args(["--cli", &f.url, "--method", "tools/list", "--header"])
        .arg(format!("Authorization: Bearer {TOKEN}"))
        .output()
        .unwrap();
    let list: Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("inspector: {e}: {}", String::from_utf8_lossy(&out.stderr)));
    assert!(
        list["tools"]
            .as_array()
            .unwrap()
            .iter()
            .any(|t| t["name"] == "echo")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn both_revisions_list_the_hosted_and_meta_tools_and_call_them() {
    let f = front();
    let legacy = connect(&f.url, Some(TOKEN), ClientLifecycleMode::Initialize, ())
        .await
        .unwrap();
    let modern = modern(&f.url).await;
    for (label, peer) in [("legacy", legacy.peer()), ("modern", modern.peer())] {
        let tools = peer.list_all_tools().await.unwrap();
        let names: Vec<&str> = tools.iter().map(|t| t.name.as_ref()).collect();
        for want in [
            "echo",
            "add",
            "find_agents",
            "call_capability",
            "call_agent",
        ] {
            assert!(names.contains(&want), "{label}: {want} in {names:?}");
        }
        let echo = tools.iter().find(|t| t.name == "echo").unwrap();
        let desc = echo.description.as_deref().unwrap_or("");
        assert!(desc.contains("agent echo on this node"), "{desc}");
        let r = call(peer, "echo", json!({"text": label})).await.unwrap();
        assert_eq!(structured(&r), json!({"text": label}));
    }
    let _ = (legacy.cancel().await, modern.cancel().await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_meta_tools_call_by_capability_and_agent_find_routes_and_describe_agents() {
    let f = front();
    let client = modern(&f.url).await;
    let peer = client.peer();
    let r = call(
        peer,
        "call_capability",
        json!({"capability": "local/echo", "tool": "add", "arguments": {"a": 2, "b": 3}}),
    )
    .await
    .unwrap();
    assert_eq!(structured(&r), json!({"sum": 5.0}));
    let r = call(
        peer,
        "call_agent",
        json!({"agent": "echo", "tool": "echo", "arguments": {"text": "by id"}}),
    )
    .await
    .unwrap();
    assert_eq!(structured(&r), json!({"text": "by id"}));
    let found = structured(
        &call(peer, "find_agents", json!({"query": "local/echo"}))
            .await
            .unwrap(),
    );
    let routes = found["routes"].as_array().unwrap();
    let add = routes
        .iter()
        .find(|r| r["prefix"] == "local/echo/add")
        .unwrap();
    assert_eq!(add["tool"], "add");
    assert_eq!(add["frontName"], "add");
    assert_eq!(add["paths"][0]["status"], "best");
    assert_eq!(add["paths"][0]["nextHop"], "local");
    assert!(add["why"].is_array());
    let by_tag = structured(
        &call(peer, "find_agents", json!({"query": "example"}))
            .await
            .unwrap(),
    );
    assert_eq!(
        by_tag["routes"].as_array().map(Vec::len),
        Some(routes.len())
    );
    let described = structured(
        &call(peer, "describe_agent", json!({"agent": "echo"}))
            .await
            .unwrap(),
    );
    let tools = described["tools"].as_array().unwrap();
    assert!(
        tools
            .iter()
            .any(|t| t["descriptor"]["name"] == "slow_count")
    );
    let unknown = call(
        peer,
        "call_capability",
        json!({"capability": "nowhere/at/all"}),
    )
    .await
    .unwrap_err();
    assert!(
        unknown.to_string().contains("no route to nowhere/at/all"),
        "{unknown}"
    );
    let _ = client.cancel().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_time_agent_appears_with_list_changed_and_the_stdio_bridge_sees_it_go() {
    let f = front();
    let (tx, mut changed) = mpsc::unbounded_channel();
    let legacy = connect(
        &f.url,
        Some(TOKEN),
        ClientLifecycleMode::Initialize,
        Watcher(tx),
    )
    .await
    .unwrap();
    let peer = legacy.peer();
    add_agent(&f.cfg, "second", "more/echo/*");
    within(
        20.0,
        "list_changed after the agent was added",
        changed.recv(),
    )
    .await
    .unwrap();
    within(20.0, "the new agent's tools", async {
        loop {
            let tools = peer.list_all_tools().await.unwrap();
            if tools.iter().any(|t| {
                t.description
                    .as_deref()
                    .is_some_and(|d| d.contains("capability more/echo/echo,"))
            }) {
                break;
            }
            // The list is re-read until it has them (a poll, not a wait).
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    })
    .await;
    let (ok, out, _) = abgp(&["agent", "list", "--config", &f.cfg]);
    assert!(
        ok && out.contains("second") && out.contains("run-time"),
        "{out}"
    );
    assert!(out.contains("echo") && out.contains("config"), "{out}");

    // The stdio bridge, driven by the Python SDK.
    let script = r#"
import anyio, json, sys
from mcp import Client, StdioServerParameters

async def main():
    params = StdioServerParameters(command=sys.argv[1], args=["mcp", "--config", sys.argv[2]])
    async with Client(params, mode="auto") as c:
        tools = (await c.list_tools()).tools
        r = await c.call_tool("echo", {"text": "over stdio"})
        print(json.dumps({"count": len(tools), "proto": c.protocol_version,
                          "text": r.structured_content["text"]}), flush=True)
        # The test removes the run-time agent now; the bridge hears of it.
        sys.stdin.readline()
        with anyio.fail_after(20):
            while True:
                now = (await c.list_tools()).tools
                if len(now) < len(tools):
                    break
                await anyio.sleep(0.2)
        print(json.dumps({"count": len(now)}), flush=True)

anyio.run(main)
"#;
    let mut py = Command::new(venv_python())
        .arg("-c")
        .arg(script)
        .arg(BIN)
        .arg(&f.cfg)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(py.stdout.take().unwrap()).lines();
    let Some(Ok(line)) = lines.next() else {
        let mut err = String::new();
        let _ = std::io::Read::read_to_string(&mut py.stderr.take().unwrap(), &mut err);
        panic!("the Python client on `abgp mcp` said nothing:\n{err}");
    };
    let first: Value = serde_json::from_str(&line).unwrap();
    assert_eq!(first["text"], "over stdio");
    assert_eq!(first["proto"], "2026-07-28");
    let (ok, out, err) = abgp(&["agent", "remove", "--config", &f.cfg, "second"]);
    assert!(ok, "agent remove: {err}{out}");
    writeln!(py.stdin.take().unwrap(), "go").unwrap();
    let second: Value = serde_json::from_str(&lines.next().unwrap().unwrap()).unwrap();
    assert!(
        second["count"].as_u64() < first["count"].as_u64(),
        "{second}"
    );
    let status = py.wait().unwrap();
    assert!(status.success());
    let _ = legacy.cancel().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn front_calls_are_counted_in_the_metrics() {
    let f = front();
    let client = modern(&f.url).await;
    for i in 0..3 {
        call(client.peer(), "echo", json!({"text": format!("n{i}")}))
            .await
            .unwrap();
    }
    let m = f.p.get("/v1/mcp");
    assert_eq!(m["metrics"]["front_calls"]["ok"].as_u64(), Some(3), "{m}");
    let (code, t) = f.p.admin_request("GET", "/metrics", None);
    assert_eq!(code, 200, "{t}");
    assert!(
        t.contains("abgp_front_calls_total{outcome=\"ok\"} 3"),
        "{t}"
    );
    assert!(t.contains("abgp_front_call_seconds_bucket"), "{t}");
    let _ = client.cancel().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_time_agent_survives_a_restart_and_a_removed_one_stays_removed() {
    let mut f = front();
    add_agent(&f.cfg, "second", "more/echo/*");
    add_agent(&f.cfg, "third", "third/*");
    let (ok, out, err) = abgp(&["agent", "remove", "--config", &f.cfg, "second"]);
    assert!(ok, "agent remove: {err}{out}");
    f.p.terminate();
    let p = Proc::start(&f.n);
    let agents = wait_for(
        "the agents after a restart",
        Duration::from_secs(20),
        || {
            let v = p.try_get("/v1/agents")?;
            let ids: Vec<String> = v
                .as_array()?
                .iter()
                .filter_map(|a| a["id"].as_str().map(str::to_string))
                .collect();
            (ids.len() == 2).then_some(ids)
        },
    );
    assert_eq!(agents, vec!["echo".to_string(), "third".to_string()]);
}
