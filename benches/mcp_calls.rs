//! The cost of routing an MCP tool call: the example agent's `echo` tool
//! called directly over MCP, through one node, and through a three-node
//! chain (two hops of the call protocol), on loopback, in one run; and the
//! latency of a `prompts/get` (`test_simple_prompt`) and a `resources/read`
//! (`test://static-text`) the same three ways, served by a second example
//! agent with its conformance fixtures (`--conformance`) next to the plain
//! one the tool calls use. The chain runs twice: as configured by default
//! (arguments and results sealed end to end, the ASes all differ), then
//! with the caller's `[mcp] seal = "off"`, for the cost of sealing.
//!
//! ```text
//! libp2p     swarm ──request-response──> swarm (the floor of one hop)
//! direct     client ──HTTP──> example agent
//! one node   client ──HTTP──> A ──stdio──> example agent
//! chain      client ──HTTP──> A ──call/1──> B ──call/1──> C ──stdio──> example agent
//! ```
//!
//! Command: `cargo bench --bench mcp_calls` (release build; runs real `abgp`
//! processes). For each setup: latency of sequential calls (p50, p99) and
//! throughput with many calls in flight, each as a ratio against the direct
//! call. Options via environment: `CALLS` (sequential calls, default 2000),
//! `SECONDS` (throughput window, default 4), `IN_FLIGHT` (default 64).
//! The load comes from a lean HTTP/1.1 client (keep-alive connections,
//! pre-built 2026-07-28 `tools/call` requests, JSON answers checked), so
//! that on a 2-core machine the load generator takes as little CPU as
//! possible from the servers it measures; rmcp's client only finds the
//! tool's name first.

mod common;
use common::client;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use rmcp::RoleClient;
use rmcp::model::CallToolRequestParams;
use rmcp::service::RunningService;
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader as TokioBufReader};

const BIN: &str = env!("CARGO_BIN_EXE_abgp");

struct Kill(Vec<Child>);

impl Drop for Kill {
    fn drop(&mut self) {
        for c in &mut self.0 {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

fn env_or(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

fn admin_get(admin: &str, token: &str, path: &str) -> Option<Value> {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(admin).ok()?;
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: {admin}\r\nAuthorization: Bearer {token}\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    let mut buf = String::new();
    s.read_to_string(&mut buf).ok()?;
    serde_json::from_str(buf.split_once("\r\n\r\n")?.1).ok()
}

fn wait<T>(what: &str, mut f: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

struct Node {
    dir: PathBuf,
    peer_id: String,
    port: u16,
    admin: u16,
    mcp: u16,
    asn: u32,
}

/// A node directory with a fresh key; its ASN is the one the key derives
/// (self-certifying, so every node believes every other without setup).
fn node(root: &Path, name: &str) -> Node {
    let dir = root.join(name);
    std::fs::create_dir_all(&dir).unwrap();
    let key = agent_bgp::identity::NodeKey::generate();
    agent_bgp::identity::NodeKey::create(&dir.join("node.key"), &key).unwrap();
    std::fs::write(
        dir.join("policy.toml"),
        "[[apply]]\nneighbors = [\"*\"]\ndefault-import = \"accept\"\ndefault-export = \"accept\"\n",
    )
    .unwrap();
    Node {
        peer_id: key.peer_id().to_string(),
        dir,
        port: port(),
        admin: port(),
        mcp: port(),
        asn: agent_bgp::identity::derive_asn(&key.node_id()).0,
    }
}

/// `ITEMS=0` leaves out the agent with the fixtures (and the prompt and
/// resource figures), for a tool-call run with exactly the landed setup.
fn with_items() -> bool {
    env_or("ITEMS", 1) != 0
}

fn configure(n: &Node, neighbors: &[&Node], agent: bool, seal: &str) {
    let mut t = format!(
        "[node]\nfederation = \"bench\"\n\
         [network]\nlisten = [\"/ip4/127.0.0.1/tcp/{}\"]\n[discovery]\nmdns = false\nkademlia = false\n\
         [policy]\nfile = \"policy.toml\"\n[admin]\nlisten = \"127.0.0.1:{}\"\n\
         [mcp]\nlisten = \"127.0.0.1:{}\"\nseal = \"{seal}\"\n[log]\nlevel = \"warn\"\n",
        n.port, n.admin, n.mcp
    );
    if agent {
        t.push_str(&format!(
            "\n[[agents]]\nid = \"echo\"\nprefix = \"bench/echo/*\"\ncommand = {BIN:?}\nargs = [\"example-agent\"]\nmax_concurrent_calls = 256\n"
        ));
        if with_items() {
            t.push_str(&format!(
                "\n[[agents]]\nid = \"fixtures\"\nprefix = \"bench/fix/*\"\ncommand = {BIN:?}\nargs = [\"example-agent\", \"--conformance\"]\nmax_concurrent_calls = 256\n"
            ));
        }
    }
    for nb in neighbors {
        t.push_str(&format!(
            "\n[[neighbor]]\npeer_id = \"{}\"\naddress = \"/ip4/127.0.0.1/tcp/{}/p2p/{}\"\nasn = {}\n",
            nb.peer_id, nb.port, nb.peer_id, nb.asn
        ));
    }
    std::fs::write(n.dir.join("node.toml"), t).unwrap();
}

fn run(n: &Node) -> Child {
    Command::new(BIN)
        .args(["run", "--config"])
        .arg(n.dir.join("node.toml"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start abgp run")
}

/// The front name of the echo tool (the example agent's own name directly).
async fn echo_name(c: &RunningService<RoleClient, ()>) -> String {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let tools = c.list_all_tools().await.expect("tools/list");
        if let Some(t) = tools.iter().find(|t| {
            t.name == "echo"
                || t.description
                    .as_deref()
                    .is_some_and(|d| d.contains("capability bench/echo/echo,"))
        }) {
            return t.name.to_string();
        }
        assert!(Instant::now() < deadline, "no echo tool at the front");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn params(name: &str) -> CallToolRequestParams {
    CallToolRequestParams::new(name.to_string()).with_arguments(
        json!({"text": "ping"})
            .as_object()
            .cloned()
            .unwrap_or_default(),
    )
}

/// One keep-alive HTTP/1.1 connection sending 2026-07-28 `tools/call`
/// requests for `echo {"text": "ping"}` and reading JSON answers.
struct Lean {
    io: TokioBufReader<tokio::net::TcpStream>,
    head: String,
    name: String,
    next_id: u64,
    op: Op,
}

/// What a lean connection sends.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Op {
    /// `tools/call` of echo
    Tool,
    /// `prompts/get` of `test_simple_prompt`
    Prompt,
    /// `resources/read` of `test://static-text`
    Resource,
}

impl Op {
    fn method(self) -> &'static str {
        match self {
            Op::Tool => "tools/call",
            Op::Prompt => "prompts/get",
            Op::Resource => "resources/read",
        }
    }

    /// The request's params (without `_meta`) and a piece its answer has.
    fn params(self, tool: &str) -> (Value, &'static str) {
        match self {
            Op::Tool => (
                json!({"name": tool, "arguments": {"text": "ping"}}),
                "\"structuredContent\":{\"text\":\"ping\"}",
            ),
            Op::Prompt => (json!({"name": "test_simple_prompt"}), "\"messages\""),
            Op::Resource => (json!({"uri": "test://static-text"}), "\"contents\""),
        }
    }
}

impl Lean {
    async fn connect(url: &str, name: &str) -> Lean {
        Self::connect_op(url, name, Op::Tool).await
    }

    async fn connect_op(url: &str, name: &str, op: Op) -> Lean {
        let (params, _) = op.params(name);
        let header_name = params
            .get("name")
            .or_else(|| params.get("uri"))
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string();
        let rest = url.strip_prefix("http://").expect("an http URL");
        let (hostport, path) = rest.split_once('/').expect("host/path");
        let s = tokio::net::TcpStream::connect(hostport)
            .await
            .expect("connect");
        s.set_nodelay(true).unwrap();
        Lean {
            io: TokioBufReader::new(s),
            head: format!(
                "POST /{path} HTTP/1.1\r\nHost: {hostport}\r\nContent-Type: application/json\r\nAccept: application/json, text/event-stream\r\nMCP-Protocol-Version: 2026-07-28\r\nMcp-Method: {}\r\nMcp-Name: {header_name}\r\n",
                op.method()
            ),
            name: name.to_string(),
            next_id: 1,
            op,
        }
    }

    async fn call(&mut self) -> Result<(), String> {
        self.next_id += 1;
        let (mut params, expect) = self.op.params(&self.name);
        params["_meta"] = json!({
            "io.modelcontextprotocol/protocolVersion": "2026-07-28",
            "io.modelcontextprotocol/clientCapabilities": {},
            "io.modelcontextprotocol/clientInfo": {"name": "mcp-calls-bench", "version": "1"}
        });
        let body = json!({
            "jsonrpc": "2.0", "id": self.next_id, "method": self.op.method(),
            "params": params,
        })
        .to_string();
        let req = format!("{}Content-Length: {}\r\n\r\n{body}", self.head, body.len());
        let err = |e: std::io::Error| e.to_string();
        self.io
            .get_mut()
            .write_all(req.as_bytes())
            .await
            .map_err(err)?;
        let mut status = String::new();
        self.io.read_line(&mut status).await.map_err(err)?;
        if !status.starts_with("HTTP/1.1 200") {
            return Err(status);
        }
        let (mut len, mut chunked) = (None, false);
        loop {
            let mut l = String::new();
            self.io.read_line(&mut l).await.map_err(err)?;
            let l = l.trim_end().to_ascii_lowercase();
            if l.is_empty() {
                break;
            }
            if let Some(v) = l.strip_prefix("content-length:") {
                len = v.trim().parse::<usize>().ok();
            }
            if l.starts_with("transfer-encoding:") && l.contains("chunked") {
                chunked = true;
            }
        }
        let mut body = Vec::new();
        if let Some(n) = len {
            body.resize(n, 0);
            self.io.read_exact(&mut body).await.map_err(err)?;
        } else if chunked {
            loop {
                let mut l = String::new();
                self.io.read_line(&mut l).await.map_err(err)?;
                let n = usize::from_str_radix(l.trim(), 16).map_err(|e| e.to_string())?;
                let mut chunk = vec![0; n + 2];
                self.io.read_exact(&mut chunk).await.map_err(err)?;
                if n == 0 {
                    break;
                }
                body.extend_from_slice(&chunk[..n]);
            }
        } else {
            return Err("no body length".into());
        }
        let text = String::from_utf8_lossy(&body);
        if text.contains(expect) {
            Ok(())
        } else {
            Err(text.into_owned())
        }
    }
}

#[derive(Debug, Clone, Copy)]
struct Figures {
    p50_us: f64,
    p99_us: f64,
    calls_per_s: f64,
}

/// Median share of each node of the chain, from the trace results carry
/// (`_meta["agent-bgp/trace"]`), over `n` sequential calls. A node's share
/// includes the round trip to the next node; the last one's includes the
/// agent.
async fn hop_shares(url: &str, n: usize) -> Vec<(u64, f64)> {
    let c = client(url).await;
    let name = echo_name(&c).await;
    let mut per: Vec<(u64, Vec<f64>)> = Vec::new();
    for _ in 0..n {
        let r = c.call_tool(params(&name)).await.expect("echo");
        let meta = serde_json::to_value(r.meta.unwrap_or_default()).unwrap_or_default();
        for (i, h) in meta["agent-bgp/trace"]
            .as_array()
            .into_iter()
            .flatten()
            .enumerate()
        {
            let asn = h["asn"].as_u64().unwrap_or(0);
            let us = h["hopUs"].as_f64().unwrap_or(0.0);
            if per.len() <= i {
                per.push((asn, Vec::new()));
            }
            per[i].1.push(us);
        }
    }
    let _ = c.cancel().await;
    per.into_iter()
        .map(|(asn, mut v)| {
            v.sort_by(|a, b| a.total_cmp(b));
            (asn, v[v.len() / 2])
        })
        .collect()
}

/// Sequential latency (p50, p99 in us) of a prompt get or resource read.
async fn latency(url: &str, op: Op, calls: u64) -> (f64, f64) {
    let mut lean = Lean::connect_op(url, "echo", op).await;
    for _ in 0..100 {
        lean.call().await.expect("warm-up");
    }
    let mut lat = Vec::with_capacity(calls as usize);
    for _ in 0..calls {
        let t = Instant::now();
        lean.call().await.expect("answer");
        lat.push(t.elapsed().as_secs_f64() * 1e6);
    }
    lat.sort_by(|a, b| a.total_cmp(b));
    let pct = |p: f64| lat[((lat.len() as f64 - 1.0) * p) as usize];
    (pct(0.5), pct(0.99))
}

async fn measure(url: &str, calls: u64, seconds: u64, in_flight: u64) -> Figures {
    let c = client(url).await;
    let name = echo_name(&c).await;
    // One call through rmcp's client checks the tool answers as MCP says.
    let r = c.call_tool(params(&name)).await.expect("echo");
    assert_eq!(r.structured_content, Some(json!({"text": "ping"})));
    let _ = c.cancel().await;
    let mut lean = Lean::connect(url, &name).await;
    for _ in 0..200 {
        lean.call().await.expect("warm-up call");
    }
    let mut lat = Vec::with_capacity(calls as usize);
    for _ in 0..calls {
        let t = Instant::now();
        lean.call().await.expect("echo");
        lat.push(t.elapsed().as_secs_f64() * 1e6);
    }
    lat.sort_by(|a, b| a.total_cmp(b));
    let pct = |p: f64| lat[((lat.len() as f64 - 1.0) * p) as usize];
    // Throughput: `in_flight` connections, one call in flight on each.
    let done = Arc::new(AtomicU64::new(0));
    let failed = Arc::new(AtomicU64::new(0));
    let mut conns = Vec::new();
    for _ in 0..in_flight {
        conns.push(Lean::connect(url, &name).await);
    }
    let stop = Instant::now() + Duration::from_secs(seconds);
    let t0 = Instant::now();
    let mut tasks = Vec::new();
    for mut conn in conns {
        let (done, failed) = (done.clone(), failed.clone());
        tasks.push(tokio::spawn(async move {
            while Instant::now() < stop {
                match conn.call().await {
                    Ok(()) => done.fetch_add(1, Ordering::Relaxed),
                    Err(_) => failed.fetch_add(1, Ordering::Relaxed),
                };
            }
        }));
    }
    for t in tasks {
        let _ = t.await;
    }
    let secs = t0.elapsed().as_secs_f64();
    assert_eq!(failed.load(Ordering::Relaxed), 0, "failed calls at {url}");
    Figures {
        p50_us: pct(0.5),
        p99_us: pct(0.99),
        calls_per_s: done.load(Ordering::Relaxed) as f64 / secs,
    }
}

/// The floor of one call hop, measured in the same run: a bare libp2p
/// request-response round trip (TCP, noise, yamux on loopback, 64-byte
/// request and answer) between two swarms of this process.
mod floor {
    use std::io;
    use std::time::{Duration, Instant};

    use futures::{AsyncReadExt, AsyncWriteExt, StreamExt};
    use libp2p::request_response::{self, ProtocolSupport};
    use libp2p::swarm::SwarmEvent;
    use libp2p::{Multiaddr, StreamProtocol, Swarm, SwarmBuilder, noise, tcp, yamux};

    use super::Figures;

    const PROTO: StreamProtocol = StreamProtocol::new("/bench/floor/1");

    #[derive(Clone, Default)]
    pub struct Bytes;

    async fn read<T: futures::AsyncRead + Unpin + Send>(io: &mut T) -> io::Result<Vec<u8>> {
        let mut v = Vec::new();
        io.take(1 << 16).read_to_end(&mut v).await?;
        Ok(v)
    }

    impl request_response::Codec for Bytes {
        type Protocol = StreamProtocol;
        type Request = Vec<u8>;
        type Response = Vec<u8>;
        async fn read_request<T>(&mut self, _: &StreamProtocol, io: &mut T) -> io::Result<Vec<u8>>
        where
            T: futures::AsyncRead + Unpin + Send,
        {
            read(io).await
        }
        async fn read_response<T>(&mut self, _: &StreamProtocol, io: &mut T) -> io::Result<Vec<u8>>
        where
            T: futures::AsyncRead + Unpin + Send,
        {
            read(io).await
        }
        async fn write_request<T>(
            &mut self,
            _: &StreamProtocol,
            io: &mut T,
            r: Vec<u8>,
        ) -> io::Result<()>
        where
            T: futures::AsyncWrite + Unpin + Send,
        {
            io.write_all(&r).await?;
            io.close().await
        }
        async fn write_response<T>(
            &mut self,
            _: &StreamProtocol,
            io: &mut T,
            r: Vec<u8>,
        ) -> io::Result<()>
        where
            T: futures::AsyncWrite + Unpin + Send,
        {
            io.write_all(&r).await?;
            io.close().await
        }
    }

    type Rr = request_response::Behaviour<Bytes>;

    fn swarm() -> Swarm<Rr> {
        SwarmBuilder::with_new_identity()
            .with_tokio()
            .with_tcp(
                tcp::Config::default().nodelay(true),
                noise::Config::new,
                yamux::Config::default,
            )
            .unwrap()
            .with_behaviour(|_| {
                Rr::with_codec(
                    Bytes,
                    [(PROTO, ProtocolSupport::Full)],
                    request_response::Config::default().with_max_concurrent_streams(1024),
                )
            })
            .unwrap()
            .with_swarm_config(|c| c.with_idle_connection_timeout(Duration::from_secs(60)))
            .build()
    }

    /// p50/p99 of `calls` sequential round trips, then throughput with
    /// `in_flight` requests outstanding for `seconds`.
    pub async fn measure(calls: u64, seconds: u64, in_flight: u64) -> Figures {
        let mut server = swarm();
        server
            .listen_on("/ip4/127.0.0.1/tcp/0".parse().unwrap())
            .unwrap();
        let addr: Multiaddr = loop {
            if let SwarmEvent::NewListenAddr { address, .. } = server.select_next_some().await {
                break address;
            }
        };
        let server_id = *server.local_peer_id();
        tokio::spawn(async move {
            loop {
                if let SwarmEvent::Behaviour(request_response::Event::Message {
                    message: request_response::Message::Request { channel, .. },
                    ..
                }) = server.select_next_some().await
                {
                    let _ = server.behaviour_mut().send_response(channel, vec![1u8; 64]);
                }
            }
        });
        let mut client = swarm();
        client
            .dial(addr.with(libp2p::multiaddr::Protocol::P2p(server_id)))
            .unwrap();
        let next = |client: &mut Swarm<Rr>| {
            client
                .behaviour_mut()
                .send_request(&server_id, vec![0u8; 64])
        };
        // Warm-up and latency, one at a time.
        let mut lat = Vec::with_capacity(calls as usize);
        for i in 0..(calls + 200) {
            let t = Instant::now();
            next(&mut client);
            loop {
                if let SwarmEvent::Behaviour(request_response::Event::Message {
                    message: request_response::Message::Response { .. },
                    ..
                }) = client.select_next_some().await
                {
                    break;
                }
            }
            if i >= 200 {
                lat.push(t.elapsed().as_secs_f64() * 1e6);
            }
        }
        lat.sort_by(|a, b| a.total_cmp(b));
        let pct = |p: f64| lat[((lat.len() as f64 - 1.0) * p) as usize];
        // Throughput: keep `in_flight` outstanding.
        for _ in 0..in_flight {
            next(&mut client);
        }
        let t0 = Instant::now();
        let stop = t0 + Duration::from_secs(seconds);
        let mut done = 0u64;
        while Instant::now() < stop {
            if let SwarmEvent::Behaviour(request_response::Event::Message {
                message: request_response::Message::Response { .. },
                ..
            }) = client.select_next_some().await
            {
                done += 1;
                next(&mut client);
            }
        }
        Figures {
            p50_us: pct(0.5),
            p99_us: pct(0.99),
            calls_per_s: done as f64 / t0.elapsed().as_secs_f64(),
        }
    }
}

/// Starts A - B - C (names prefixed with `tag`), the agents on C, A's
/// `[mcp] seal` set to `seal`; returns the processes and A's front URL once
/// A has C's routes.
fn start_chain(root: &Path, tag: &str, seal: &str) -> (Kill, String) {
    let a = node(root, &format!("{tag}-A"));
    let b = node(root, &format!("{tag}-B"));
    let c = node(root, &format!("{tag}-C"));
    configure(&a, &[&b], false, seal);
    configure(&b, &[&a, &c], false, seal);
    configure(&c, &[&b], true, seal);
    let procs = Kill(vec![run(&a), run(&b), run(&c)]);
    wait("A's front", || {
        std::net::TcpStream::connect(("127.0.0.1", a.mcp)).ok()
    });
    let admin_a = format!("127.0.0.1:{}", a.admin);
    // The node made its admin token at first start.
    let token = wait("A's admin token", || {
        std::fs::read_to_string(a.dir.join("admin.token")).ok()
    });
    wait("C's echo, prompt and resource routes at A", || {
        let routes = admin_get(&admin_a, token.trim(), "/v1/routes")?;
        let has = |p: &str| {
            routes
                .as_array()
                .is_some_and(|rs| rs.iter().any(|r| r["prefix"] == p))
        };
        (has("bench/echo/echo") && (!with_items() || has("bench/fix/prompt/test_simple_prompt")))
            .then_some(())
    });
    (procs, format!("http://127.0.0.1:{}/mcp", a.mcp))
}

fn main() {
    // `cargo bench` passes `--bench`; nothing else is accepted.
    let calls = env_or("CALLS", 2000);
    let seconds = env_or("SECONDS", 4);
    let in_flight = env_or("IN_FLIGHT", 64);
    let root = std::env::temp_dir().join(format!("abgp-bench-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&root);
    std::fs::create_dir_all(&root).unwrap();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();

    // The floor: a bare libp2p request-response round trip.
    let floor = rt.block_on(floor::measure(calls, seconds, in_flight));

    // Direct: the example agent over streamable HTTP (and one with the
    // conformance fixtures for the prompt and the resource).
    let mut fixtures = Command::new(BIN)
        .args(["example-agent", "--http", "127.0.0.1:0", "--conformance"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("start the example agent with its fixtures");
    let mut fline = String::new();
    BufReader::new(fixtures.stdout.take().unwrap())
        .read_line(&mut fline)
        .unwrap();
    let fixtures_url = fline
        .trim()
        .strip_prefix("listening on ")
        .unwrap()
        .to_string();
    let _fixtures = Kill(vec![fixtures]);
    let mut agent = Command::new(BIN)
        .args(["example-agent", "--http", "127.0.0.1:0"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("start the example agent");
    let mut line = String::new();
    BufReader::new(agent.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let direct_url = line
        .trim()
        .strip_prefix("listening on ")
        .unwrap()
        .to_string();
    let _agent = Kill(vec![agent]);
    let direct = rt.block_on(measure(&direct_url, calls, seconds, in_flight));
    let item_calls = (calls / 2).max(100);
    let direct_items = with_items().then(|| {
        rt.block_on(async {
            (
                latency(&fixtures_url, Op::Prompt, item_calls).await,
                latency(&fixtures_url, Op::Resource, item_calls).await,
            )
        })
    });

    // One node hosting the agent.
    let solo = node(&root, "solo");
    configure(&solo, &[], true, "external");
    let _solo = Kill(vec![run(&solo)]);
    wait("the node's front", || {
        std::net::TcpStream::connect(("127.0.0.1", solo.mcp)).ok()
    });
    let solo_url = format!("http://127.0.0.1:{}/mcp", solo.mcp);
    let one = rt.block_on(measure(&solo_url, calls, seconds, in_flight));
    let one_items = with_items().then(|| {
        rt.block_on(async {
            (
                latency(&solo_url, Op::Prompt, item_calls).await,
                latency(&solo_url, Op::Resource, item_calls).await,
            )
        })
    });
    drop(_solo);

    // A - B - C, the agent on C; first with the payloads sealed (the
    // default across AS borders), then in the clear.
    let chain_clear = {
        let (_chain, url) = start_chain(&root, "clear", "off");
        rt.block_on(measure(&url, calls, seconds, in_flight))
    };
    let (_chain, chain_url) = start_chain(&root, "sealed", "external");
    let chain = rt.block_on(measure(&chain_url, calls, seconds, in_flight));
    let shares = rt.block_on(hop_shares(&chain_url, 500));
    let chain_items = with_items().then(|| {
        rt.block_on(async {
            (
                latency(&chain_url, Op::Prompt, item_calls).await,
                latency(&chain_url, Op::Resource, item_calls).await,
            )
        })
    });
    let _ = std::fs::remove_dir_all(&root);

    println!(
        "\nMCP call cost, {calls} sequential calls, {seconds} s at {in_flight} in flight (2026-07-28 clients)\n"
    );
    println!(
        "| setup | p50 | p99 | calls/s | p50 vs direct | calls/s vs direct | added per hop at p50 |"
    );
    println!("|---|---:|---:|---:|---:|---:|---:|");
    println!(
        "| bare libp2p request-response (the floor of a hop) | {:.0} us | {:.0} us | {:.0} | - | - | - |",
        floor.p50_us, floor.p99_us, floor.calls_per_s
    );
    for (label, f, hops) in [
        ("direct (client -> agent)", direct, 0),
        ("through one node", one, 1),
        ("3-node chain (2 call hops, sealed)", chain, 3),
    ] {
        let added = if hops == 0 {
            "-".to_string()
        } else {
            format!("{:.0} us", (f.p50_us - direct.p50_us) / hops as f64)
        };
        println!(
            "| {label} | {:.0} us | {:.0} us | {:.0} | {:.2}x | {:.2}x | {added} |",
            f.p50_us,
            f.p99_us,
            f.calls_per_s,
            f.p50_us / direct.p50_us,
            f.calls_per_s / direct.calls_per_s,
        );
    }
    println!(
        "| 3-node chain, `seal = \"off\"` (arguments and results in the clear) | {:.0} us | {:.0} us | {:.0} | {:.2}x | {:.2}x | - |",
        chain_clear.p50_us,
        chain_clear.p99_us,
        chain_clear.calls_per_s,
        chain_clear.p50_us / direct.p50_us,
        chain_clear.calls_per_s / direct.calls_per_s,
    );
    println!(
        "\nSealing end to end (the default across AS borders) costs {:.0} us at p50 on the chain ({:+.1}%), {:.2}x the clear chain's calls/s",
        chain.p50_us - chain_clear.p50_us,
        100.0 * (chain.p50_us - chain_clear.p50_us) / chain_clear.p50_us,
        chain.calls_per_s / chain_clear.calls_per_s,
    );
    let one_added = one.p50_us - direct.p50_us;
    let per_hop = (chain.p50_us - one.p50_us) / 2.0;
    println!(
        "\nTargets: one node adds {one_added:.0} us at p50 (target <= 200 us), runs {:.2}x direct's calls/s (target >= 0.5x); \
         each call hop adds {per_hop:.0} us = {:.2}x the bare libp2p round trip (target <= 2x)",
        one.calls_per_s / direct.calls_per_s,
        per_hop / floor.p50_us
    );
    println!(
        "\nChain, median share of each node (caller first; includes the round trip to the next node):"
    );
    for (i, (asn, us)) in shares.iter().enumerate() {
        let what = match i {
            0 => "A: front, signing, CALL to B and back",
            1 => "B: transit, CALL to C and back",
            _ => "C: verify, access, agent over stdio",
        };
        println!("  AS{asn}  {us:.0} us   ({what})");
    }
    let (Some(direct_items), Some(one_items), Some(chain_items)) =
        (direct_items, one_items, chain_items)
    else {
        return;
    };
    println!(
        "\nPrompt get (`test_simple_prompt`) and resource read (`test://static-text`), {item_calls} sequential requests each\n"
    );
    println!(
        "| setup | prompts/get p50 | p99 | resources/read p50 | p99 | prompt p50 vs direct | read p50 vs direct |"
    );
    println!("|---|---:|---:|---:|---:|---:|---:|");
    for (label, ((pp50, pp99), (rp50, rp99))) in [
        ("direct (client -> agent)", direct_items),
        ("through one node", one_items),
        ("3-node chain (2 call hops)", chain_items),
    ] {
        println!(
            "| {label} | {pp50:.0} us | {pp99:.0} us | {rp50:.0} us | {rp99:.0} us | {:.2}x | {:.2}x |",
            pp50 / direct_items.0.0,
            rp50 / direct_items.1.0,
        );
    }
}
