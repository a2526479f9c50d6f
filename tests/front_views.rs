//! Front views end to end: one node with two agents (the example agent as
//! `fin` under `fin/*`, its routes tagged `finance`, and the example agent
//! with its conformance fixtures as `conf` under `conf/*`), three views
//! beside `/mcp`, and rmcp's client:
//! - each view lists (tools, prompts, resources) only what its filter
//!   admits, and refuses calls and reads outside it as unknown;
//! - each view's token opens that view only, and `/mcp`'s opens no view;
//! - a discovery view lists the meta tools and its pinned tool, and
//!   `find_agents` finds the others, which `tools/call` then calls by name;
//! - a view's sessions hear `list_changed` when what it lists changes (an
//!   agent added at run time under its prefix), another view's do not;
//! - hostile paths (`/mcp/../x`, very long names, unknown views, foreign
//!   Host or Origin) are refused with a clear answer.

// Both helper modules include the port helper; one copy each is harmless.
#![allow(clippy::duplicate_mod)]

mod common;
mod node_harness;

use std::os::unix::fs::PermissionsExt;

use node_harness::{BIN, Proc, Spec, configure, init, raw_http};
use rmcp::model::{CallToolRequestParams, ProtocolVersion, ReadResourceRequestParams};
use rmcp::service::NotificationContext;
use rmcp::service::{ClientLifecycleMode, RunningService, serve_client_with_lifecycle_and_ct};
use rmcp::transport::StreamableHttpClientTransport;
use rmcp::transport::streamable_http_client::StreamableHttpClientTransportConfig;
use rmcp::{ClientHandler, RoleClient};
use serde_json::{Value, json};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

const TOKEN: &str = "front-views-default-token-5d1c";

struct Node {
    _root: tempfile::TempDir,
    dir: std::path::PathBuf,
    _p: Proc,
    /// `http://127.0.0.1:port`
    base: String,
}

impl Node {
    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    fn hostport(&self) -> &str {
        self.base.trim_start_matches("http://")
    }

    fn view_token(&self, name: &str) -> String {
        std::fs::read_to_string(self.dir.join(format!("mcp-{name}.token")))
            .unwrap()
            .trim()
            .to_string()
    }
}

fn node() -> Node {
    let root = tempfile::tempdir().unwrap();
    let n = init(root.path(), "N", "test");
    let agents = format!(
        r#"
[[agents]]
id = "fin"
prefix = "fin/*"
communities = ["finance"]
command = {BIN:?}
args = ["example-agent"]

[[agents]]
id = "conf"
prefix = "conf/*"
command = {BIN:?}
args = ["example-agent", "--conformance"]
"#
    );
    configure(
        &n,
        &Spec {
            mcp: format!(
                r#"bearer_token = "{TOKEN}"

[[mcp.views]]
name = "fin"
prefixes = ["fin/*"]

[[mcp.views]]
name = "finance"
communities = ["finance"]
origin_asns = ["own"]

[[mcp.views]]
name = "conf-discovery"
prefixes = ["conf/*"]
mode = "discovery"
pinned = ["test_simple_text"]
"#
            ),
            extra: agents,
            ..Default::default()
        },
    );
    let p = Proc::start(&n);
    let url = p.mcp_url();
    let base = url.trim_end_matches("/mcp").to_string();
    Node {
        _root: root,
        dir: n.dir.clone(),
        _p: p,
        base,
    }
}

/// Counts `notifications/tools/list_changed`.
#[derive(Clone)]
struct Watcher(mpsc::UnboundedSender<()>);

impl ClientHandler for Watcher {
    async fn on_tool_list_changed(&self, _: NotificationContext<RoleClient>) {
        let _ = self.0.send(());
    }
}

/// A 2025-11-25 session (it hears `list_changed` unsolicited).
async fn watch(
    url: &str,
    token: &str,
) -> (
    RunningService<RoleClient, Watcher>,
    mpsc::UnboundedReceiver<()>,
) {
    let (tx, rx) = mpsc::unbounded_channel();
    let cfg = StreamableHttpClientTransportConfig::with_uri(url).auth_header(token);
    let c = serve_client_with_lifecycle_and_ct(
        Watcher(tx),
        StreamableHttpClientTransport::from_config(cfg),
        ClientLifecycleMode::Initialize,
        CancellationToken::new(),
    )
    .await
    .unwrap();
    (c, rx)
}

async fn connect(url: &str, token: &str) -> Result<RunningService<RoleClient, ()>, String> {
    let cfg = StreamableHttpClientTransportConfig::with_uri(url).auth_header(token);
    serve_client_with_lifecycle_and_ct(
        (),
        StreamableHttpClientTransport::from_config(cfg),
        ClientLifecycleMode::Discover {
            preferred_versions: vec![ProtocolVersion::V_2026_07_28],
        },
        CancellationToken::new(),
    )
    .await
    .map_err(|e| e.to_string())
}

async fn call(
    peer: &rmcp::service::Peer<RoleClient>,
    name: &str,
    arguments: Value,
) -> Result<rmcp::model::CallToolResult, rmcp::service::ServiceError> {
    let args = arguments.as_object().cloned().unwrap_or_default();
    peer.call_tool(CallToolRequestParams::new(name.to_string()).with_arguments(args))
        .await
}

const META: [&str; 5] = [
    "find_agents",
    "call_capability",
    "list_agents",
    "describe_agent",
    "call_agent",
];

/// (front name, capability prefix) of every routed tool listed.
async fn routed_tools(peer: &rmcp::service::Peer<RoleClient>) -> Vec<(String, String)> {
    peer.list_all_tools()
        .await
        .unwrap()
        .iter()
        .filter(|t| !META.contains(&t.name.as_ref()))
        .map(|t| {
            let d = t.description.as_deref().unwrap_or("");
            let cap = d
                .split("[agent-bgp] capability ")
                .nth(1)
                .and_then(|r| r.split(',').next())
                .unwrap_or("")
                .to_string();
            (t.name.to_string(), cap)
        })
        .collect()
}

/// The node has routed every tool of both agents (6 of the plain example
/// agent each, and the conformance fixtures).
async fn wait_for_tools(peer: &rmcp::service::Peer<RoleClient>) -> Vec<(String, String)> {
    for _ in 0..200 {
        let t = routed_tools(peer).await;
        if t.iter().any(|(_, c)| c.starts_with("fin/"))
            && t.iter().any(|(n, _)| n == "test_simple_text")
        {
            return t;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    panic!("the agents' tools were not routed");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn views_list_call_and_authenticate_only_what_they_cover() {
    let n = node();
    let all = connect(&n.url("/mcp"), TOKEN).await.unwrap();
    let everything = wait_for_tools(all.peer()).await;
    let conf_tool = everything
        .iter()
        .find(|(_, c)| c.starts_with("conf/"))
        .map(|(n, _)| n.clone())
        .unwrap();

    // The token files: made at first start, 0600, one per view.
    let fin_token = n.view_token("fin");
    let finance_token = n.view_token("finance");
    let disc_token = n.view_token("conf-discovery");
    let mode = std::fs::metadata(n.dir.join("mcp-fin.token"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);
    assert!(fin_token.len() >= 16 && fin_token != finance_token && fin_token != TOKEN);

    // Each token opens its own endpoint only.
    let (fin_t, finance_t, disc_t) = (
        fin_token.as_str(),
        finance_token.as_str(),
        disc_token.as_str(),
    );
    for (path, good, bad) in [
        ("/mcp/fin", fin_t, vec![TOKEN, finance_t, disc_t]),
        ("/mcp/finance", finance_t, vec![TOKEN, fin_t]),
        ("/mcp", TOKEN, vec![fin_t, disc_t]),
    ] {
        for t in bad {
            assert!(
                connect(&n.url(path), t).await.is_err(),
                "{path} must refuse another endpoint's token"
            );
        }
        assert!(connect(&n.url(path), good).await.is_ok(), "{path}");
    }

    // `fin` (by prefix) and `finance` (by community and origin AS) list
    // fin's tools and nothing else.
    let fin_expected: Vec<(String, String)> = everything
        .iter()
        .filter(|(_, c)| c.starts_with("fin/"))
        .cloned()
        .collect();
    assert!(fin_expected.len() >= 2);
    for (path, token) in [("/mcp/fin", &fin_token), ("/mcp/finance", &finance_token)] {
        let c = connect(&n.url(path), token).await.unwrap();
        let peer = c.peer();
        let mut listed = routed_tools(peer).await;
        listed.sort();
        let mut want = fin_expected.clone();
        want.sort();
        assert_eq!(listed, want, "{path}");
        let meta: Vec<String> = peer
            .list_all_tools()
            .await
            .unwrap()
            .iter()
            .map(|t| t.name.to_string())
            .filter(|n| META.contains(&n.as_str()))
            .collect();
        assert_eq!(meta.len(), 5, "{path}: the meta tools are always there");
        // A tool outside the view is unknown here, whatever its name.
        let e = call(peer, &conf_tool, json!({"text": "x"}))
            .await
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("no tool") && e.contains("in view"),
            "{path}: {e}"
        );
        let e = call(
            peer,
            "call_capability",
            json!({"capability": "conf/echo/echo", "arguments": {"text": "x"}}),
        )
        .await
        .unwrap_err()
        .to_string();
        assert!(e.contains("no tool of this endpoint"), "{path}: {e}");
        let e = call(
            peer,
            "call_agent",
            json!({"agent": "conf", "tool": "echo", "arguments": {"text": "x"}}),
        )
        .await
        .unwrap_err()
        .to_string();
        assert!(e.contains("no route leads to agent"), "{path}: {e}");
        // The view's own tools work.
        let (echo, _) = fin_expected.iter().find(|(_, c)| c == "fin/echo").unwrap();
        let r = call(peer, echo, json!({"text": path})).await.unwrap();
        assert_eq!(r.structured_content, Some(json!({"text": path})));
        // find_agents and list_agents stay inside the view.
        let found = call(peer, "find_agents", json!({"query": "echo"}))
            .await
            .unwrap()
            .structured_content
            .unwrap();
        let tools = found["tools"].as_array().unwrap();
        assert!(!tools.is_empty(), "{found}");
        assert!(
            tools
                .iter()
                .all(|t| t["prefix"].as_str().unwrap().starts_with("fin/")),
            "{found}"
        );
        let routes = call(peer, "find_agents", json!({"query": "conf/*"}))
            .await
            .unwrap()
            .structured_content
            .unwrap();
        assert_eq!(routes["routes"], json!([]), "{routes}");
        let agents = call(peer, "list_agents", json!({}))
            .await
            .unwrap()
            .structured_content
            .unwrap();
        let routed: Vec<&str> = agents["routed"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| a["agent"].as_str().unwrap())
            .collect();
        assert_eq!(routed, ["fin"], "{agents}");
        // Prompts and resources: conf's are not in these views.
        assert!(peer.list_all_prompts().await.unwrap().is_empty(), "{path}");
        assert!(
            peer.list_all_resources().await.unwrap().is_empty(),
            "{path}"
        );
        let e = peer
            .read_resource(ReadResourceRequestParams::new("test://static-text"))
            .await
            .unwrap_err()
            .to_string();
        assert!(e.contains("Resource not found"), "{path}: {e}");
        let _ = c.cancel().await;
    }
    // ... while /mcp has them.
    let peer = all.peer();
    let mut prompts = Vec::new();
    for _ in 0..100 {
        prompts = peer.list_all_prompts().await.unwrap();
        if !prompts.is_empty() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert!(!prompts.is_empty());
    assert!(
        peer.read_resource(ReadResourceRequestParams::new("test://static-text"))
            .await
            .is_ok()
    );
    let _ = all.cancel().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_discovery_view_lists_meta_and_pinned_tools_and_finds_the_rest() {
    let n = node();
    let all = connect(&n.url("/mcp"), TOKEN).await.unwrap();
    let everything = wait_for_tools(all.peer()).await;
    let (conf_add, _) = everything
        .iter()
        .find(|(_, c)| c == "conf/add")
        .cloned()
        .unwrap();
    let c = connect(
        &n.url("/mcp/conf-discovery"),
        &n.view_token("conf-discovery"),
    )
    .await
    .unwrap();
    let peer = c.peer();
    let info = peer.peer_info().and_then(|i| i.instructions.clone());
    assert!(
        info.as_deref().unwrap_or("").contains("Discovery mode"),
        "{info:?}"
    );
    let mut names: Vec<String> = peer
        .list_all_tools()
        .await
        .unwrap()
        .iter()
        .map(|t| t.name.to_string())
        .collect();
    names.sort();
    let mut want: Vec<String> = META
        .iter()
        .map(|s| s.to_string())
        .chain(["test_simple_text".to_string()])
        .collect();
    want.sort();
    assert_eq!(names, want, "meta tools and the pinned tool only");
    // find_agents by words of the description finds the unlisted tool,
    // only in the view (fin's `add` has the same description).
    let found = call(peer, "find_agents", json!({"query": "adds two NUMBERS"}))
        .await
        .unwrap()
        .structured_content
        .unwrap();
    let tools = found["tools"].as_array().unwrap();
    assert_eq!(tools.len(), 1, "{found}");
    assert_eq!(tools[0]["name"], conf_add.as_str());
    assert_eq!(tools[0]["prefix"], "conf/add");
    assert!(
        tools[0]["inputSchema"]["properties"]["a"].is_object(),
        "{found}"
    );
    assert_eq!(found["toolsTruncated"], false);
    // ... and tools/call takes it by name though it is not listed.
    let r = call(peer, &conf_add, json!({"a": 2, "b": 3}))
        .await
        .unwrap();
    assert_eq!(r.structured_content, Some(json!({"sum": 5.0})));
    // call_capability reaches it too.
    let r = call(
        peer,
        "call_capability",
        json!({"capability": "conf/add", "arguments": {"a": 1, "b": 1}}),
    )
    .await
    .unwrap();
    assert_eq!(r.structured_content, Some(json!({"sum": 2.0})));
    // A hostile query is refused, not searched.
    let e = call(peer, "find_agents", json!({"query": "x".repeat(10_000)}))
        .await
        .unwrap_err()
        .to_string();
    assert!(e.contains("longer than 256"), "{e}");
    let _ = (c.cancel().await, all.cancel().await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn list_changed_reaches_the_views_whose_list_changed() {
    let n = node();
    let all = connect(&n.url("/mcp"), TOKEN).await.unwrap();
    wait_for_tools(all.peer()).await;
    let (fin, mut fin_changed) = watch(&n.url("/mcp/fin"), &n.view_token("fin")).await;
    let (disc, mut disc_changed) = watch(
        &n.url("/mcp/conf-discovery"),
        &n.view_token("conf-discovery"),
    )
    .await;
    let cfg = n.dir.join("node.toml");
    let out = std::process::Command::new(BIN)
        .args(["agent", "add", "--config"])
        .arg(&cfg)
        .args([
            "--id",
            "fin2",
            "--prefix",
            "fin/two/*",
            "--command",
            BIN,
            "--arg",
            "example-agent",
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    common::within(20.0, "list_changed at /mcp/fin", fin_changed.recv())
        .await
        .unwrap();
    let listed = routed_tools(fin.peer()).await;
    assert!(
        listed.iter().any(|(_, c)| c.starts_with("fin/two/")),
        "{listed:?}"
    );
    // The same table change told the discovery view nothing: its list
    // (meta tools, test_simple_text) did not change.
    assert!(
        disc_changed.try_recv().is_err(),
        "/mcp/conf-discovery heard list_changed"
    );
    assert_eq!(routed_tools(disc.peer()).await.len(), 1);
    let _ = (fin.cancel().await, disc.cancel().await, all.cancel().await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_view_paths_and_headers_are_refused_clearly() {
    let n = node();
    let fin = n.view_token("fin");
    let auth = format!("Bearer {fin}");
    let body = r#"{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"t","version":"1"}}}"#;
    let post_as = |path: &str, auth: &str, headers: &[(&str, &str)]| {
        let mut h = vec![
            ("Authorization", auth),
            ("Content-Type", "application/json"),
            ("Accept", "application/json, text/event-stream"),
        ];
        h.extend_from_slice(headers);
        raw_http(n.hostport(), "POST", path, &h, Some(body)).unwrap()
    };
    let post = |path: &str, headers: &[(&str, &str)]| post_as(path, &auth, headers);
    let long = format!("/mcp/{}", "a".repeat(65));
    let huge = format!("/mcp/{}", "a".repeat(20_000));
    for path in [
        "/mcp/../x",
        "/mcp/%2e%2e/fin",
        "/mcp/unknown",
        "/mcp/fin/extra",
        "/mcp/FIN",
        "/mcpfin",
        long.as_str(),
    ] {
        let (code, text) = post(path, &[]);
        assert_eq!(code, 404, "{path}: {text}");
        assert!(
            text.contains("no MCP endpoint at this path"),
            "{path}: {text}"
        );
    }
    // A request line that long is cut off before any routing.
    let (code, _) = post(&huge, &[]);
    assert!((400..500).contains(&code), "{code}");
    // A view checks Host and Origin as /mcp does.
    let (code, text) = post("/mcp/fin", &[("Host", "evil.example")]);
    assert_eq!(code, 403, "{text}");
    let (code, text) = post("/mcp/fin", &[("Origin", "http://evil.example")]);
    assert_eq!(code, 403, "{text}");
    assert!(text.contains("Origin"), "{text}");
    // The real path with the right token answers (the request is fine).
    let (code, text) = post("/mcp/fin", &[]);
    assert_eq!(code, 200, "{text}");
    assert!(text.contains("serverInfo"), "{text}");
    let (code, _) = post_as("/mcp/fin", "Bearer wrong", &[]);
    assert_eq!(code, 401);
    let (code, _) = post_as("/mcp/fin", &format!("Bearer {TOKEN}"), &[]);
    assert_eq!(code, 401, "/mcp's token does not open a view");
}
