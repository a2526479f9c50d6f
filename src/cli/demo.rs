//! `abgp demo`: three real nodes of three ASes on loopback, narrated.
//!
//! ```text
//!   A (AS65001) ──── B (AS65002, transit) ──── C (AS65003)
//!   agent demo-a      agent demo-b               agent demo-c
//!   demo/a/*          demo/b/*                   demo/c/*
//! ```
//!
//! Each node is this same binary (`abgp run`) in its own directory under the
//! system temp dir, with an open import/export policy, and hosts the
//! example agent (`abgp example-agent`, the tools of
//! `agent_bgp::mcp::example_agent`). The tour waits for the sessions, shows
//! A's routes with their AS paths, then calls a tool of C from an MCP
//! client on A's front (two hops through B) and prints the result and the
//! path it took. It then stays up with the MCP endpoint and the `abgp mcp`
//! line a client can use, until Ctrl-C, which stops the nodes (SIGTERM,
//! then SIGKILL after 5 s) and removes the directory.
//!
//! `abgp demo --simulated` is the earlier tour of the routing core alone,
//! on the in-memory simulator.

use std::io::Write;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitCode, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use clap::Args;
use rmcp::ServiceExt;
use rmcp::model::CallToolRequestParams;
use rmcp::transport::StreamableHttpClientTransport;
use serde_json::{Value, json};

use agent_bgp::core::ids::{Asn, Millis};
use agent_bgp::identity::{NodeKey, issue_cert};
use agent_bgp::mcp::front::TRACE_META;
use agent_bgp::wire::schema::encode_cert;

use agent_bgp::admin::AdminToken;
use agent_bgp::admin::token::TOKEN_FILE_NAME;

use super::admin_http::AdminClient;

#[derive(Debug, Args)]
pub struct DemoArgs {
    /// The routing-core tour on the in-memory simulator instead.
    #[arg(long)]
    pub simulated: bool,
    /// Stop after the tour instead of waiting for Ctrl-C (for scripts).
    #[arg(long, hide = true)]
    pub no_wait: bool,
    /// Keep the nodes' directories (configs, logs) after stopping.
    #[arg(long)]
    pub keep_dir: bool,
}

const OPEN_POLICY: &str = r#"# The demo's policy: exchange every route with every neighbour.
[[apply]]
neighbors = ["*"]
default-import = "accept"
default-export = "accept"
"#;

struct DemoNode {
    name: &'static str,
    asn: u32,
    dir: PathBuf,
    peer_id: String,
    port: u16,
    admin_port: u16,
    admin: AdminClient,
    mcp: u16,
}

impl DemoNode {
    fn admin(&self) -> &AdminClient {
        &self.admin
    }
    fn config(&self) -> PathBuf {
        self.dir.join("node.toml")
    }
}

/// The nodes' processes; stopped (and the directory removed) on drop.
struct Running {
    root: PathBuf,
    keep: bool,
    children: Vec<(&'static str, Child)>,
}

impl Drop for Running {
    fn drop(&mut self) {
        for (_, c) in &self.children {
            // SIGTERM: the node closes its store and says goodbye.
            if let Ok(pid) = i32::try_from(c.id()) {
                // SAFETY: kill(2) on our own child's pid.
                unsafe {
                    libc::kill(pid, libc::SIGTERM);
                }
            }
        }
        let deadline = Instant::now() + Duration::from_secs(5);
        for (name, c) in &mut self.children {
            loop {
                match c.try_wait() {
                    Ok(Some(_)) => break,
                    Ok(None) if Instant::now() < deadline => {
                        std::thread::sleep(Duration::from_millis(50))
                    }
                    _ => {
                        eprintln!("node {name} did not stop in time; killing it");
                        let _ = c.kill();
                        let _ = c.wait();
                        break;
                    }
                }
            }
        }
        if !self.keep {
            let _ = std::fs::remove_dir_all(&self.root);
        }
    }
}

fn free_port() -> anyhow::Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

fn node_toml(n: &DemoNode, neighbors: &[&DemoNode], exe: &Path, anchor: &str) -> String {
    let mut t = format!(
        r#"# Written by `abgp demo`.
[node]
asn = {asn}
# Issued by the demo's own authority (the trust anchor below).
certificate = "asn.cert"
federation = "demo"

[trust]
anchors = [{{ name = "demo-authority", key = "{anchor}", asns = ["65001-65003"] }}]

[network]
listen = ["/ip4/127.0.0.1/tcp/{port}"]

[discovery]
mdns = false
kademlia = false

[policy]
file = "policy.toml"

[admin]
listen = "127.0.0.1:{admin_port}"

[mcp]
listen = "127.0.0.1:{mcp}"

[[agents]]
id = "demo-{lower}"
prefix = "demo/{lower}/*"
capabilities = ["demo", "echo"]
command = {exe:?}
args = ["example-agent"]
"#,
        asn = n.asn,
        port = n.port,
        admin_port = n.admin_port,
        mcp = n.mcp,
        lower = n.name.to_lowercase(),
        exe = exe.to_string_lossy(),
        anchor = anchor,
    );
    for nb in neighbors {
        t.push_str(&format!(
            "\n[[neighbor]]\npeer_id = \"{}\"\naddress = \"/ip4/127.0.0.1/tcp/{}/p2p/{}\"\nasn = {}\nhold_time = \"30s\"\n",
            nb.peer_id, nb.port, nb.peer_id, nb.asn
        ));
    }
    t
}

fn get(admin: &AdminClient, path: &str) -> Option<Value> {
    match admin.request("GET", path, None) {
        Ok((200, body)) => serde_json::from_str(&body).ok(),
        _ => None,
    }
}

/// Set by Ctrl-C, so that an interrupted tour still stops the nodes and
/// removes their directory.
static INTERRUPTED: AtomicBool = AtomicBool::new(false);

fn wait<T>(what: &str, timeout: Duration, mut f: impl FnMut() -> Option<T>) -> anyhow::Result<T> {
    let deadline = Instant::now() + timeout;
    loop {
        if INTERRUPTED.load(Ordering::Relaxed) {
            bail!("interrupted");
        }
        if let Some(v) = f() {
            return Ok(v);
        }
        if Instant::now() >= deadline {
            bail!("timed out after {timeout:?} waiting for {what}");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn established(admin: &AdminClient, peer: &str) -> bool {
    get(admin, "/v1/peers")
        .and_then(|v| v.as_array().cloned())
        .is_some_and(|ps| {
            ps.iter()
                .any(|p| p["peer_id"] == peer && p["state"] == "established")
        })
}

fn say(text: impl AsRef<str>) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{}", text.as_ref());
    let _ = out.flush();
}

pub fn demo(a: DemoArgs) -> anyhow::Result<ExitCode> {
    if a.simulated {
        let stdout = std::io::stdout();
        let mut out = stdout.lock();
        agent_bgp::sim::tour::corporate_tour(&mut out)?;
        out.flush()?;
        return Ok(ExitCode::SUCCESS);
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    rt.spawn(async {
        if tokio::signal::ctrl_c().await.is_ok() {
            INTERRUPTED.store(true, Ordering::Relaxed);
        }
    });
    let exe = std::env::current_exe().context("finding the abgp binary")?;
    let root = std::env::temp_dir().join(format!("abgp-demo-{}", std::process::id()));
    if root.exists() {
        std::fs::remove_dir_all(&root)?;
    }
    let mut running = Running {
        root: root.clone(),
        keep: a.keep_dir,
        children: Vec::new(),
    };
    // A demo ASN authority, so every node can check every other node's
    // ASN (a self-signed ASN is only believed by the neighbours that pin it).
    let authority = NodeKey::generate();
    let anchor = authority.node_id().to_string();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_millis()).unwrap_or(0))
        .unwrap_or(0);
    let mut nodes = Vec::new();
    for (name, asn) in [("A", 65001), ("B", 65002), ("C", 65003)] {
        let dir = root.join(name);
        // Node keys and tokens live here: 0700 from the start.
        agent_bgp::secret_file::create_private_dir(&dir)?;
        let key = NodeKey::generate();
        NodeKey::create(&dir.join("node.key"), &key)?;
        let cert = issue_cert(
            &authority,
            key.node_id(),
            Asn(asn),
            Millis(now.saturating_sub(3_600_000)),
            Millis(now.saturating_add(30 * 86_400_000)),
        )
        .map_err(|e| anyhow::anyhow!("issuing the demo certificate: {e}"))?;
        let mut bytes = Vec::new();
        ciborium::into_writer(&encode_cert(&cert), &mut bytes)?;
        std::fs::write(dir.join("asn.cert"), bytes)?;
        std::fs::write(dir.join("policy.toml"), OPEN_POLICY)?;
        let (token, _) = AdminToken::load_or_create(&dir.join(TOKEN_FILE_NAME))?;
        let admin_port = free_port()?;
        nodes.push(DemoNode {
            name,
            asn,
            peer_id: key.peer_id().to_string(),
            dir,
            port: free_port()?,
            admin_port,
            admin: AdminClient::new(format!("127.0.0.1:{admin_port}"), token),
            mcp: free_port()?,
        });
    }
    let (na, nb, nc) = (&nodes[0], &nodes[1], &nodes[2]);
    std::fs::write(na.config(), node_toml(na, &[nb], &exe, &anchor))?;
    std::fs::write(nb.config(), node_toml(nb, &[na, nc], &exe, &anchor))?;
    std::fs::write(nc.config(), node_toml(nc, &[nb], &exe, &anchor))?;

    say("agent-bgp demo: three nodes of three ASes on loopback, an example MCP agent on each.\n");
    say("   A (AS65001) ──── B (AS65002, transit) ──── C (AS65003)");
    say("   agent demo-a      agent demo-b               agent demo-c");
    say("   demo/a/*          demo/b/*                   demo/c/*\n");
    let t0 = Instant::now();
    for n in &nodes {
        let log = std::fs::File::create(n.dir.join("node.log"))?;
        let out = std::fs::File::create(n.dir.join("run.out"))?;
        let child = Command::new(&exe)
            .args(["run", "--config"])
            .arg(n.config())
            .env("RUST_LOG", "info")
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(log)
            .spawn()
            .with_context(|| format!("starting node {}", n.name))?;
        running.children.push((n.name, child));
    }

    say("1. Sessions");
    for (x, y) in [(na, nb), (nb, nc)] {
        wait(
            &format!("the {}–{} session", x.name, y.name),
            Duration::from_secs(30),
            || established(x.admin(), &y.peer_id).then_some(()),
        )?;
        say(format!(
            "   {}–{} established (AS{} ⇄ AS{}) at {:.1} s",
            x.name,
            y.name,
            x.asn,
            y.asn,
            t0.elapsed().as_secs_f64()
        ));
    }

    say("\n2. Routes: A's Loc-RIB (best paths; each tool of each agent is a route)");
    let routes = wait(
        "C's tool routes to reach A through B",
        Duration::from_secs(30),
        || {
            let r = get(na.admin(), "/v1/routes")?.as_array()?.clone();
            let has = |p: &str| r.iter().any(|x| x["prefix"] == p);
            (has("demo/a/add") && has("demo/b/add") && has("demo/c/add")).then_some(r)
        },
    )?;
    say(format!(
        "   {} routes; the `add` tool of each agent:",
        routes.len()
    ));
    for p in ["demo/a/add", "demo/b/add", "demo/c/add"] {
        if let Some(r) = routes.iter().find(|r| r["prefix"] == p) {
            let path: Vec<String> = r["as_path"]
                .as_array()
                .map(|a| a.iter().map(|x| format!("AS{x}")).collect())
                .unwrap_or_default();
            say(format!(
                "   {p:<12} agent {:<7} AS path {:<20} {}",
                r["agent"].as_str().unwrap_or("?"),
                if path.is_empty() {
                    "(local)".to_string()
                } else {
                    path.join(" ")
                },
                if r["signed"] == true {
                    format!("signed ({} path signatures)", r["path_signatures"])
                } else {
                    String::new()
                }
            ));
        }
    }

    let url = format!("http://127.0.0.1:{}/mcp", na.mcp);
    rt.block_on(async {
        tokio::select! {
            r = call_across(&url) => r,
            _ = interrupted() => bail!("interrupted"),
        }
    })?;

    say("\n4. Try it yourself");
    say(format!("   MCP endpoint (streamable HTTP): {url}"));
    say(format!(
        "   stdio, for clients that launch a command: {} mcp --config {}",
        exe.display(),
        na.config().display()
    ));
    say(format!(
        "   admin API: curl -H \"Authorization: Bearer $(cat {})\" http://{}/v1/routes",
        na.dir.join(TOKEN_FILE_NAME).display(),
        na.admin().hostport(),
    ));
    say(format!("   logs: {}/{{A,B,C}}/node.log", root.display()));
    if a.no_wait {
        return Ok(ExitCode::SUCCESS);
    }
    say("   Press Ctrl-C to stop.");
    rt.block_on(interrupted());
    say("\nstopping the nodes...");
    drop(running);
    say("done.");
    Ok(ExitCode::SUCCESS)
}

/// Resolves once Ctrl-C was pressed.
async fn interrupted() {
    while !INTERRUPTED.load(Ordering::Relaxed) {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Lists A's tools and calls C's `add` through B, as an MCP client would.
async fn call_across(url: &str) -> anyhow::Result<()> {
    say("\n3. A tool across two hops: an MCP client on A's front calls C's `add`");
    let client =
        ().serve(StreamableHttpClientTransport::from_uri(url))
            .await
            .context("connecting an MCP client to A's front")?;
    let deadline = Instant::now() + Duration::from_secs(20);
    let (tools, target) = loop {
        let tools = client.list_all_tools().await?;
        let target = tools.iter().find(|t| {
            t.description
                .as_deref()
                .is_some_and(|d| d.contains("capability demo/c/add,") && d.contains("Adds"))
        });
        if let Some(t) = target {
            break (tools.clone(), t.clone());
        }
        if Instant::now() > deadline {
            bail!("A's front never listed C's `add` with its descriptor");
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    say(format!(
        "   tools/list on A: {} tools (the agents' tools under collision-free names, plus 5 meta tools)",
        tools.len()
    ));
    let desc = target.description.as_deref().unwrap_or("");
    say(format!(
        "   `{}`: {}",
        target.name,
        desc.replace("\n\n", " ")
    ));
    let args = json!({"a": 2, "b": 40});
    say(format!("   tools/call {} {args}", target.name));
    let t = Instant::now();
    let r = client
        .call_tool(
            CallToolRequestParams::new(target.name.to_string())
                .with_arguments(args.as_object().cloned().unwrap_or_default()),
        )
        .await
        .context("calling C's add from A")?;
    let took = t.elapsed();
    let text: Vec<String> = r
        .content
        .iter()
        .filter_map(|c| serde_json::to_value(c).ok())
        .filter_map(|c| c["text"].as_str().map(str::to_string))
        .collect();
    say(format!(
        "   result: {}   structured: {}   ({:.1} ms)",
        text.join(" "),
        r.structured_content.clone().unwrap_or(Value::Null),
        took.as_secs_f64() * 1000.0
    ));
    if let Some(hops) = r
        .meta
        .as_ref()
        .and_then(|m| serde_json::to_value(m).ok())
        .and_then(|m| m.get(TRACE_META).cloned())
        .and_then(|h| h.as_array().cloned())
    {
        let parts: Vec<String> = hops
            .iter()
            .map(|h| {
                format!(
                    "AS{} {:.2} ms",
                    h["asn"],
                    h["hopUs"].as_f64().unwrap_or(0.0) / 1000.0
                )
            })
            .collect();
        say(format!(
            "   path: {}  (each hop's own share; the last includes the agent)",
            parts.join(" → ")
        ));
    }
    let _ = client.cancel().await;
    Ok(())
}
