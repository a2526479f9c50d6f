//! Harness for multi-process node tests: real `abgp` processes on 127.0.0.1
//! with temporary node directories, queried through their admin API.
//!
//! Every wait has a deadline ([`wait_for`]); children are killed when their
//! [`Proc`] is dropped, and a failing test prints the tail of each node's
//! log.

#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::Value;

pub const BIN: &str = env!("CARGO_BIN_EXE_abgp");

/// A policy that exchanges everything with every peer.
pub const OPEN_POLICY: &str = r#"
[[apply]]
neighbors = ["*"]
default-import = "accept"
default-export = "accept"
"#;

#[path = "../ports/mod.rs"]
mod ports;
pub use ports::free_port;

/// Polls `f` until it returns `Some`, or panics after `timeout` saying
/// what it waited for.
pub fn wait_for<T>(what: &str, timeout: Duration, mut f: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = f() {
            return v;
        }
        if Instant::now() >= deadline {
            panic!("timed out after {timeout:?} waiting for {what}");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// A node directory made by `abgp init`.
#[derive(Debug, Clone)]
pub struct NodeDir {
    pub name: String,
    pub dir: PathBuf,
    pub peer_id: String,
    pub node_id: String,
    pub asn: u32,
    pub port: u16,
    /// Listen and be dialled on QUIC instead of TCP.
    pub quic: bool,
}

impl NodeDir {
    pub fn addr(&self) -> String {
        if self.quic {
            format!("/ip4/127.0.0.1/udp/{}/quic-v1", self.port)
        } else {
            format!("/ip4/127.0.0.1/tcp/{}", self.port)
        }
    }

    pub fn p2p_addr(&self) -> String {
        format!("{}/p2p/{}", self.addr(), self.peer_id)
    }
}

/// Runs `abgp init` in `root/name`.
pub fn init(root: &Path, name: &str, federation: &str) -> NodeDir {
    let dir = root.join(name);
    let out = Command::new(BIN)
        .args(["init", "--dir"])
        .arg(&dir)
        .args(["--federation", federation])
        .output()
        .expect("run abgp init");
    assert!(
        out.status.success(),
        "abgp init failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    let field = |k: &str| {
        text.lines()
            .find_map(|l| l.trim().strip_prefix(k).map(|v| v.trim().to_string()))
            .unwrap_or_else(|| panic!("no {k} in init output:\n{text}"))
    };
    let asn = field("asn")
        .split_whitespace()
        .next()
        .and_then(|a| a.parse().ok())
        .expect("asn in init output");
    NodeDir {
        name: name.into(),
        dir,
        peer_id: field("peer id"),
        node_id: field("node id"),
        asn,
        port: free_port(),
        quic: false,
    }
}

/// What goes into a test node.toml.
#[derive(Debug, Clone)]
pub struct Spec {
    pub federation: String,
    /// A chosen ASN (default: derived), with a self-signed certificate
    /// unless `certificate` names an issued certificate file.
    pub asn: Option<u32>,
    pub certificate: Option<String>,
    pub max_auto_peers: usize,
    pub hold: u16,
    pub graceful_restart: u16,
    pub policy: Option<String>,
    /// (peer, passive)
    pub neighbors: Vec<(NodeDir, bool)>,
    pub originate: Vec<String>,
    pub mdns: bool,
    pub kademlia: bool,
    pub bootstrap_node: bool,
    pub bootstrap: Vec<String>,
    pub listen: Option<Vec<String>>,
    pub max_routes_per_update: usize,
    /// Lines inside `[mcp]` (its `listen` is always an ephemeral port).
    pub mcp: String,
    pub extra: String,
}

impl Default for Spec {
    fn default() -> Self {
        Spec {
            federation: "test".into(),
            asn: None,
            certificate: None,
            max_auto_peers: 8,
            hold: 3,
            graceful_restart: 120,
            policy: Some(OPEN_POLICY.into()),
            neighbors: Vec::new(),
            originate: Vec::new(),
            mdns: false,
            kademlia: false,
            bootstrap_node: false,
            bootstrap: Vec::new(),
            listen: None,
            max_routes_per_update: 1000,
            mcp: String::new(),
            extra: String::new(),
        }
    }
}

/// Writes `nd.dir/node.toml` (and `policy.toml`) for `spec`.
pub fn configure(nd: &NodeDir, spec: &Spec) {
    let listen = spec
        .listen
        .clone()
        .unwrap_or_else(|| vec![nd.addr()])
        .iter()
        .map(|a| format!("{a:?}"))
        .collect::<Vec<_>>()
        .join(", ");
    let policy = match &spec.policy {
        Some(p) => {
            std::fs::write(nd.dir.join("policy.toml"), p).expect("write policy");
            "policy.toml"
        }
        None => "",
    };
    let bootstrap = spec
        .bootstrap
        .iter()
        .map(|a| format!("{a:?}"))
        .collect::<Vec<_>>()
        .join(", ");
    let asn = match (spec.asn, &spec.certificate) {
        (Some(n), Some(file)) => format!("asn = {n}\ncertificate = {file:?}\n"),
        (Some(n), None) => format!("asn = {n}\ncertificate = \"self-signed\"\n"),
        (None, _) => String::new(),
    };
    let mut t = format!(
        r#"[node]
federation = "{fed}"
bootstrap = {boot}
{asn}
[network]
listen = [{listen}]
request_timeout = "10s"

[session]
hold_time = "{hold}s"
graceful_restart = "{gr}s"
max_routes_per_update = {per_update}

[discovery]
mdns = {mdns}
mdns_query_interval = "1s"
max_auto_peers = {max_auto}
kademlia = {kad}
bootstrap = [{bootstrap}]
query_interval = "1s"

[policy]
file = "{policy}"

[admin]
listen = "127.0.0.1:0"

[mcp]
listen = "127.0.0.1:0"
{mcp}

[log]
level = "info,agent_bgp=debug"
"#,
        fed = spec.federation,
        boot = spec.bootstrap_node,
        hold = spec.hold,
        gr = spec.graceful_restart,
        mdns = spec.mdns,
        kad = spec.kademlia,
        per_update = spec.max_routes_per_update,
        max_auto = spec.max_auto_peers,
        mcp = spec.mcp,
    );
    for (n, passive) in &spec.neighbors {
        t.push_str(&format!(
            "\n[[neighbor]]\npeer_id = \"{}\"\naddress = \"{}\"\nasn = {}\npassive = {}\n",
            n.peer_id,
            n.addr(),
            n.asn,
            passive
        ));
    }
    for p in &spec.originate {
        t.push_str(&format!(
            "\n[[originate]]\nprefix = \"{p}\"\nagent = \"{}-agent\"\ncapabilities = [\"test\"]\n",
            nd.name
        ));
    }
    t.push_str(&spec.extra);
    std::fs::write(nd.dir.join("node.toml"), t).expect("write node.toml");
}

/// A running `abgp run`.
pub struct Proc {
    pub name: String,
    pub child: Child,
    pub admin: String,
    /// The node's admin token (`admin.token`, made by `abgp init`).
    pub token: String,
    pub log: PathBuf,
    stdout: Arc<Mutex<Vec<String>>>,
}

impl Proc {
    /// Starts the node in `nd` and waits for its start-up summary.
    pub fn start(nd: &NodeDir) -> Proc {
        Self::start_with(nd, Command::new(BIN))
    }

    /// Starts the node with `cmd` as the program (e.g. `ip netns exec ..`).
    pub fn start_with(nd: &NodeDir, mut cmd: Command) -> Proc {
        let log = nd.dir.join("node.log");
        let logf = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log)
            .expect("open log");
        let child = cmd
            .args(["run", "--config"])
            .arg(nd.dir.join("node.toml"))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::from(logf))
            .spawn()
            .expect("spawn abgp run");
        let mut p = Proc {
            name: nd.name.clone(),
            child,
            admin: String::new(),
            token: String::new(),
            log,
            stdout: Arc::new(Mutex::new(Vec::new())),
        };
        if let Some(out) = p.child.stdout.take() {
            let lines = p.stdout.clone();
            std::thread::spawn(move || {
                for l in BufReader::new(out).lines() {
                    let Ok(l) = l else { break };
                    lines.lock().unwrap_or_else(|e| e.into_inner()).push(l);
                }
            });
        }
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let admin = p
                .stdout
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .iter()
                .find_map(|l| l.trim().strip_prefix("admin").map(|a| a.trim().to_string()));
            if let Some(a) = admin {
                p.admin = a;
                // Made by `abgp init`, or by the node before it reports.
                p.token = admin_token(&nd.dir);
                return p;
            }
            if let Ok(Some(status)) = p.child.try_wait() {
                panic!(
                    "{} exited during start-up ({status}):\n{}",
                    nd.name,
                    p.log_tail(40)
                );
            }
            if Instant::now() > deadline {
                panic!("{} did not report start-up:\n{}", nd.name, p.log_tail(40));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// The MCP front's URL from the start-up summary.
    pub fn mcp_url(&self) -> String {
        wait_for(
            &format!("{} to report its MCP front", self.name),
            Duration::from_secs(10),
            || {
                self.stdout().iter().find_map(|l| {
                    l.trim()
                        .strip_prefix("mcp front")
                        .and_then(|r| r.split_whitespace().next())
                        .filter(|u| u.starts_with("http://"))
                        .map(str::to_string)
                })
            },
        )
    }

    pub fn stdout(&self) -> Vec<String> {
        self.stdout
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    pub fn log_tail(&self, n: usize) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(n)..].join("\n")
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    fn signal(&self, sig: &str) {
        let ok = Command::new("kill")
            .args(["-s", sig, &self.pid().to_string()])
            .status()
            .map(|s| s.success())
            .unwrap_or(false);
        assert!(ok, "kill -s {sig} {}", self.name);
    }

    /// SIGKILL: the process dies mid-whatever.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// SIGTERM, then wait for a clean exit.
    pub fn terminate(&mut self) {
        self.signal("TERM");
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            if let Ok(Some(s)) = self.child.try_wait() {
                assert!(
                    s.success(),
                    "{} exited with {s}:\n{}",
                    self.name,
                    self.log_tail(30)
                );
                return;
            }
            if Instant::now() > deadline {
                let _ = self.child.kill();
                panic!(
                    "{} did not stop on SIGTERM:\n{}",
                    self.name,
                    self.log_tail(30)
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// SIGSTOP: frozen, connections stay open, nothing is sent.
    pub fn freeze(&self) {
        self.signal("STOP");
    }

    pub fn thaw(&self) {
        self.signal("CONT");
    }

    /// `GET` an admin path; `None` on any failure (the caller retries).
    pub fn try_get(&self, path: &str) -> Option<Value> {
        http_get(self.admin_hostport(), &self.token, path).ok()
    }

    /// `host:port` of the admin API.
    pub fn admin_hostport(&self) -> &str {
        self.admin.strip_prefix("http://").unwrap_or(&self.admin)
    }

    /// Any admin request with the node's token: (status, body).
    pub fn admin_request(&self, method: &str, path: &str, body: Option<&str>) -> (u16, String) {
        let auth = format!("Bearer {}", self.token);
        let mut headers = vec![("Authorization", auth.as_str())];
        if body.is_some() {
            headers.push(("Content-Type", "application/json"));
        }
        raw_http(self.admin_hostport(), method, path, &headers, body)
            .unwrap_or_else(|e| panic!("{} admin {method} {path}: {e}", self.name))
    }

    pub fn get(&self, path: &str) -> Value {
        wait_for(
            &format!("{} to answer GET {path}", self.name),
            Duration::from_secs(10),
            || self.try_get(path),
        )
    }

    pub fn status(&self) -> Value {
        self.get("/v1/status")
    }

    pub fn routes(&self) -> Vec<Value> {
        self.get("/v1/routes")
            .as_array()
            .cloned()
            .unwrap_or_default()
    }

    /// The Loc-RIB route for `prefix`, if any.
    pub fn route(&self, prefix: &str) -> Option<Value> {
        self.try_get("/v1/routes")?
            .as_array()?
            .iter()
            .find(|r| r["prefix"] == prefix)
            .cloned()
    }

    /// The communities of the Loc-RIB route for `prefix` (none without one).
    pub fn communities(&self, prefix: &str) -> Vec<String> {
        self.route(prefix)
            .and_then(|r| r["communities"].as_array().cloned())
            .unwrap_or_default()
            .iter()
            .filter_map(|c| c.as_str().map(str::to_string))
            .collect()
    }

    /// The value of the unlabelled metric `name` on `/metrics`.
    pub fn metric(&self, name: &str) -> Option<f64> {
        let (code, text) = self.admin_request("GET", "/metrics", None);
        if code != 200 {
            return None;
        }
        text.lines()
            .find(|l| l.starts_with(name) && l[name.len()..].starts_with(' '))
            .and_then(|l| l.rsplit(' ').next())
            .and_then(|v| v.parse().ok())
    }

    pub fn as_path(&self, prefix: &str) -> Option<Vec<u64>> {
        self.route(prefix)?["as_path"]
            .as_array()
            .map(|a| a.iter().filter_map(Value::as_u64).collect())
    }

    pub fn peer(&self, peer_id: &str) -> Option<Value> {
        self.try_get("/v1/peers")?
            .as_array()?
            .iter()
            .find(|p| p["peer_id"] == peer_id)
            .cloned()
    }

    pub fn established_with(&self, peer_id: &str) -> bool {
        self.peer(peer_id)
            .is_some_and(|p| p["state"] == "established")
    }

    pub fn established_count(&self) -> usize {
        self.try_get("/v1/status")
            .and_then(|s| s["peers"]["established"].as_u64())
            .unwrap_or(0) as usize
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if std::thread::panicking() {
            // ABGP_TEST_LOG_LINES widens the tail when chasing a failure.
            let n = std::env::var("ABGP_TEST_LOG_LINES")
                .ok()
                .and_then(|v| v.parse().ok())
                .unwrap_or(60);
            eprintln!("---- log of {} ----\n{}", self.name, self.log_tail(n));
        }
    }
}

/// The admin token `abgp init` (or the node's first start) wrote in `dir`.
pub fn admin_token(dir: &Path) -> String {
    std::fs::read_to_string(dir.join("admin.token"))
        .map(|t| t.trim().to_string())
        .unwrap_or_default()
}

/// One HTTP/1.1 request with exactly the given headers (plus Host, unless
/// given, and Connection: close): (status, body).
pub fn raw_http(
    hostport: &str,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: Option<&str>,
) -> Result<(u16, String), String> {
    let mut s = TcpStream::connect(hostport).map_err(|e| e.to_string())?;
    s.set_read_timeout(Some(Duration::from_secs(30)))
        .map_err(|e| e.to_string())?;
    let mut req = format!("{method} {path} HTTP/1.1\r\nConnection: close\r\n");
    if !headers.iter().any(|(k, _)| k.eq_ignore_ascii_case("host")) {
        req.push_str(&format!("Host: {hostport}\r\n"));
    }
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    let body = body.unwrap_or("");
    req.push_str(&format!("Content-Length: {}\r\n\r\n{body}", body.len()));
    s.write_all(req.as_bytes()).map_err(|e| e.to_string())?;
    let mut buf = Vec::new();
    s.read_to_end(&mut buf).map_err(|e| e.to_string())?;
    let text = String::from_utf8_lossy(&buf);
    let (head, body) = text.split_once("\r\n\r\n").ok_or("no header end")?;
    let code = head
        .lines()
        .next()
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|c| c.parse().ok())
        .ok_or("no status code")?;
    Ok((code, body.to_string()))
}

/// A GET of a JSON admin path with the token (the admin API is plain
/// loopback HTTP).
pub fn http_get(hostport: &str, token: &str, path: &str) -> Result<Value, String> {
    let auth = format!("Bearer {token}");
    let (code, body) = raw_http(hostport, "GET", path, &[("Authorization", &auth)], None)?;
    if code != 200 {
        return Err(format!("{code}: {body}"));
    }
    serde_json::from_str(&body).map_err(|e| e.to_string())
}

/// Runs the binary with arguments; returns (success, stdout, stderr).
pub fn abgp(args: &[&str]) -> (bool, String, String) {
    let out = Command::new(BIN).args(args).output().expect("run abgp");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into(),
        String::from_utf8_lossy(&out.stderr).into(),
    )
}

/// A - B - C, each peered with its neighbours; `c_extra` and `a_mcp` go
/// into C's file and A's `[mcp]` section.
pub fn chain(root: &Path, c_extra: &str, a_mcp: &str) -> (Vec<NodeDir>, Vec<Proc>) {
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

/// The value after `key` on a line of a command's output.
pub fn field(out: &str, key: &str) -> String {
    out.lines()
        .find_map(|l| l.strip_prefix(key).map(|v| v.trim().to_string()))
        .unwrap_or_else(|| panic!("no {key:?} in:\n{out}"))
}

/// A new authority (`abgp asn authority-init` in `root`): its key file and
/// public key.
pub fn authority(root: &Path) -> (String, String) {
    let key = root.join("authority.key");
    let (ok, out, err) = abgp(&["asn", "authority-init", "--key", key.to_str().unwrap()]);
    assert!(ok, "{err}");
    (key.display().to_string(), field(&out, "public key"))
}

/// Issues `nd` a certificate for `asn` (`abgp asn issue`) into its
/// directory; returns the file's path.
pub fn issue_cert(authority_key: &str, nd: &NodeDir, asn: u32) -> String {
    issue_cert_with(authority_key, nd, asn, &[])
}

/// [`issue_cert`] vouching for `communities` too (`--community`).
pub fn issue_cert_with(
    authority_key: &str,
    nd: &NodeDir,
    asn: u32,
    communities: &[&str],
) -> String {
    let out = nd.dir.join("node.cert");
    let asn = asn.to_string();
    let mut args = vec![
        "asn",
        "issue",
        "--authority-key",
        authority_key,
        "--asn",
        &asn,
        "--node",
        &nd.peer_id,
        "--out",
        out.to_str().unwrap(),
    ];
    for c in communities {
        args.extend(["--community", c]);
    }
    let (ok, stdout, err) = abgp(&args);
    assert!(ok, "{err}");
    if !communities.is_empty() {
        assert!(stdout.contains("communities"), "{stdout}");
    }
    out.display().to_string()
}

/// An `[[agents]]` entry running the example agent under `prefix`.
pub fn example_agent_entry(prefix: &str) -> String {
    format!(
        "\n[[agents]]\nid = \"echo\"\nprefix = \"{prefix}\"\ncommand = {BIN:?}\nargs = [\"example-agent\"]\n"
    )
}
