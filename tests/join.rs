//! Federations joined with one command: `abgp federation create`,
//! `abgp federation invite`, `abgp init --join`, with the real binary and
//! fresh directories, no file edited by hand. On loopback; between two
//! network namespaces over mDNS (skipped, saying so, where namespaces
//! cannot be made); and the hostile tokens: expired, reused, tampered, of
//! another federation, garbled, and junk sent to the claim port.

mod node_harness;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use agent_bgp::identity::NodeKey;
use agent_bgp::identity::invite::{Answer, Token, frame_len};
use node_harness::*;

const CONVERGE: Duration = Duration::from_secs(60);

/// A port base whose +80 and +81 (admin, MCP front) are free too.
fn free_base() -> u16 {
    loop {
        let p = free_port();
        let free = |q: u16| std::net::TcpListener::bind(("127.0.0.1", q)).is_ok();
        if p < 60_000 && free(p + 80) && free(p + 81) {
            return p;
        }
    }
}

fn run(args: &[&str]) -> (bool, String, String) {
    abgp(args)
}

fn create(root: &Path, name: &str, federation: &str, ports: u16) -> PathBuf {
    let dir = root.join(name);
    let (ok, out, err) = run(&[
        "federation",
        "create",
        federation,
        "--dir",
        dir.to_str().unwrap(),
        "--ports",
        &ports.to_string(),
    ]);
    assert!(ok, "federation create: {err}");
    assert!(out.contains("64512"), "{out}");
    dir
}

/// A waiting `abgp federation invite` and the token it printed.
struct Inviter {
    child: Child,
    token: String,
    log: PathBuf,
}

impl Inviter {
    fn start(cmd: Command, dir: &Path, listen: &str, expires: &str) -> Inviter {
        Self::start_with(cmd, dir, listen, expires, &[])
    }

    fn start_with(
        cmd: Command,
        dir: &Path,
        listen: &str,
        expires: &str,
        extra: &[&str],
    ) -> Inviter {
        let log = dir.join(format!("invite-{}.log", free_port()));
        let mut cmd = cmd;
        let mut child = cmd
            .args(["federation", "invite", "--dir"])
            .arg(dir)
            .args(["--listen", listen, "--expires", expires])
            .args(extra)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::from(std::fs::File::create(&log).unwrap()))
            .spawn()
            .expect("spawn abgp federation invite");
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let token = line.trim().to_string();
        assert!(
            token.starts_with("abgp1-"),
            "no token printed: {token:?}\n{}",
            std::fs::read_to_string(&log).unwrap_or_default()
        );
        // Printed before it waits; wait for the "waiting" line.
        wait_for(
            "the inviter to wait for its claim",
            Duration::from_secs(10),
            || {
                self_log(&log)
                    .contains("waiting for the claim")
                    .then_some(())
            },
        );
        Inviter { child, token, log }
    }

    fn log(&self) -> String {
        self_log(&self.log)
    }

    /// Waits for the inviter to exit; its success.
    fn wait(&mut self) -> bool {
        wait_for("the inviter to exit", Duration::from_secs(20), || {
            self.child.try_wait().unwrap()
        })
        .success()
    }
}

fn self_log(p: &Path) -> String {
    std::fs::read_to_string(p).unwrap_or_default()
}

impl Drop for Inviter {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `abgp init --join` into `root/name`; (success, stdout, stderr).
fn join(root: &Path, name: &str, token: &str) -> (bool, String, String) {
    let dir = root.join(name);
    run(&[
        "init",
        "--dir",
        dir.to_str().unwrap(),
        "--join",
        token,
        "--ports",
        "0",
    ])
}

/// The harness's view of a directory made by create or join.
fn node_dir(dir: &Path, name: &str) -> NodeDir {
    let (ok, out, err) = run(&["asn", "whoami", "--dir", dir.to_str().unwrap()]);
    assert!(ok, "{err}");
    let field = |k: &str| {
        out.lines()
            .find_map(|l| l.trim().strip_prefix(k).map(|v| v.trim().to_string()))
            .unwrap()
    };
    let toml = std::fs::read_to_string(dir.join("node.toml")).unwrap();
    let asn = toml
        .lines()
        .find_map(|l| l.strip_prefix("asn = ").and_then(|v| v.trim().parse().ok()))
        .unwrap();
    NodeDir {
        name: name.into(),
        dir: dir.to_path_buf(),
        peer_id: field("peer id"),
        node_id: field("node id"),
        asn,
        port: 0,
        quic: false,
    }
}

fn add_agent(cmd: Command, config: &Path, id: &str, prefix: &str) {
    let mut cmd = cmd;
    let out = cmd
        .args(["agent", "add", "--config"])
        .arg(config)
        .args([
            "--id",
            id,
            "--prefix",
            prefix,
            "--command",
            BIN,
            "--arg",
            "example-agent",
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "agent add: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Tool descriptions the node's MCP front lists, through `program` (an
/// MCP client launching the stdio command, as Claude Desktop would).
fn front_tools(program: &str, args: Vec<String>) -> Vec<String> {
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        use rmcp::ServiceExt;
        let mut cmd = tokio::process::Command::new(program);
        cmd.args(&args);
        let transport = rmcp::transport::TokioChildProcess::new(cmd).expect("spawn abgp mcp");
        let c = ().serve(transport).await.expect("connect to abgp mcp");
        let tools = c.list_all_tools().await.expect("tools/list");
        let _ = c.cancel().await;
        tools
            .into_iter()
            .map(|t| t.description.map(|d| d.to_string()).unwrap_or_default())
            .collect()
    })
}

fn sees_tool_of(descriptions: &[String], agent: &str, asn: u32) -> bool {
    let want = format!("agent {agent} in AS{asn}");
    descriptions.iter().any(|d| d.contains(&want))
}

#[test]
fn two_nodes_join_on_loopback_and_see_each_others_tools() {
    let root = tempfile::tempdir().unwrap();
    let a_dir = create(root.path(), "a", "home", free_base());
    let mut inv = Inviter::start(Command::new(BIN), &a_dir, "127.0.0.1:0", "10m");
    let (ok, out, err) = join(root.path(), "b", &inv.token);
    assert!(ok, "join: {err}");
    assert!(out.contains("joined federation \"home\""), "{out}");
    assert!(out.contains("64513"), "{out}");
    assert!(
        inv.wait(),
        "the inviter did not report the claim:\n{}",
        inv.log()
    );
    assert!(inv.log().contains("joined federation \"home\" as AS64513"));
    // The token names no secret anywhere on disk of the joiner.
    for f in std::fs::read_dir(root.path().join("b")).unwrap() {
        let text = std::fs::read(f.unwrap().path()).unwrap();
        assert!(!String::from_utf8_lossy(&text).contains(&inv.token));
    }

    let a = node_dir(&a_dir, "a");
    let b = node_dir(&root.path().join("b"), "b");
    assert_eq!((a.asn, b.asn), (64512, 64513));
    let pa = Proc::start(&a);
    let pb = Proc::start(&b);
    add_agent(
        Command::new(BIN),
        &a.dir.join("node.toml"),
        "a-agent",
        "tools/a/*",
    );
    add_agent(
        Command::new(BIN),
        &b.dir.join("node.toml"),
        "b-agent",
        "tools/b/*",
    );
    wait_for(
        "b to peer with a (bootstrap from the token)",
        CONVERGE,
        || pb.established_with(&a.peer_id).then_some(()),
    );
    for (p, prefix, asn) in [(&pb, "tools/a/", a.asn), (&pa, "tools/b/", b.asn)] {
        let route = wait_for(
            &format!("{} to learn {prefix}...", p.name),
            CONVERGE,
            || {
                p.routes()
                    .into_iter()
                    .find(|r| r["prefix"].as_str().is_some_and(|x| x.starts_with(prefix)))
            },
        );
        assert_eq!(route["as_path"], serde_json::json!([asn]), "{route}");
    }
    for (me, agent, asn) in [(&b, "a-agent", a.asn), (&a, "b-agent", b.asn)] {
        let config = me.dir.join("node.toml").to_str().unwrap().to_string();
        let tools = wait_for(
            &format!("{}'s front to list {agent}", me.name),
            CONVERGE,
            || {
                let t = front_tools(BIN, vec!["mcp".into(), "--config".into(), config.clone()]);
                sees_tool_of(&t, agent, asn).then_some(t)
            },
        );
        assert!(tools.len() >= 2, "{tools:?}");
    }
}

/// Sends `bytes` to the claim port and returns the answer, if any.
fn raw_claim(port: u16, bytes: &[u8]) -> Option<Answer> {
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s.write_all(bytes).unwrap();
    let mut header = [0u8; 4];
    s.read_exact(&mut header).ok()?;
    let n = frame_len(header, 64 * 1024).ok()?;
    let mut body = vec![0u8; n];
    s.read_exact(&mut body).ok()?;
    Answer::decode(&body).ok()
}

fn refused(a: Option<Answer>) -> String {
    match a {
        Some(Answer::Refused(why)) => why,
        other => panic!("expected a refusal, got {other:?}"),
    }
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64
}

#[test]
fn hostile_tokens_are_refused_with_clear_errors() {
    let root = tempfile::tempdir().unwrap();
    let r = root.path();
    let a_dir = create(r, "a", "home", free_base());
    let port = free_port();
    let listen = format!("127.0.0.1:{port}");

    // A token used once, then by a second node: refused by the
    // federation (an inviter of the same federation is waiting again).
    let mut first = Inviter::start(Command::new(BIN), &a_dir, &listen, "10m");
    let (ok, b_out, err) = join(r, "b", &first.token);
    assert!(ok, "{err}");
    assert!(first.wait());
    let b_peer = b_out
        .lines()
        .find_map(|l| {
            l.trim()
                .strip_prefix("peer id")
                .map(|v| v.trim().to_string())
        })
        .unwrap();
    let second = Inviter::start(Command::new(BIN), &a_dir, &listen, "10m");
    let (ok, _, err) = join(r, "c", &first.token);
    assert!(!ok);
    assert!(
        err.contains("already used by node") && err.contains(&b_peer),
        "{err}"
    );
    assert!(
        !r.join("c").join("node.key").exists(),
        "a refused join wrote a node"
    );

    // Tampered and garbled strings: a clear error, no panic, nothing written.
    let t = &second.token;
    let mid = t.len() / 2;
    let flipped = {
        let mut c: Vec<char> = t.chars().collect();
        c[mid] = if c[mid] == 'A' { 'B' } else { 'A' };
        c.into_iter().collect::<String>()
    };
    for (bad, want) in [
        (flipped.as_str(), "--join: the token"),
        (&t[..mid], "damaged"),
        ("hello", "starts with abgp1-"),
        ("", "starts with abgp1-"),
        ("abgp1-%%%", "not base64url"),
    ] {
        let (ok, _, err) = join(r, "d", bad);
        assert!(!ok, "{bad:?} was accepted");
        assert!(err.contains(want), "{bad:?}: {err}");
        assert!(!err.contains("panicked"), "{err}");
        assert!(!r.join("d").join("node.toml").exists());
    }

    // A token of another federation (same name, its own authority) sent
    // to this federation's inviter: refused, it says why.
    let x_dir = create(r, "x", "home", free_base());
    let x_inv = Inviter::start(Command::new(BIN), &x_dir, "127.0.0.1:0", "10m");
    let x_token = Token::decode(&x_inv.token).unwrap();
    let joiner = NodeKey::generate().node_id();
    let why = refused(raw_claim(port, &x_token.claim(joiner).to_frame()));
    assert!(why.contains("for another federation"), "{why}");

    // An expired token: the joiner refuses it, and so does the inviter
    // when the claim is sent anyway.
    let mut short = Inviter::start(Command::new(BIN), &a_dir, "127.0.0.1:0", "1s");
    let expired = Token::decode(&short.token).unwrap();
    assert!(!short.wait(), "an unclaimed invitation exits with failure");
    assert!(short.log().contains("expired unclaimed"));
    assert!(now_ms() > expired.invite.expires.0);
    let (ok, _, err) = join(r, "e", &short.token);
    assert!(!ok);
    assert!(err.contains("expired"), "{err}");
    let why = refused(raw_claim(port, &expired.claim(joiner).to_frame()));
    assert!(why.contains("expired"), "{why}");

    // A claim signed with the wrong key for an open invitation, an HTTP
    // request and an oversized frame: refused or dropped; the inviter
    // still answers the real claim afterwards.
    let open = Token::decode(&second.token).unwrap();
    let mut forged = open.claim(joiner);
    forged.node = NodeKey::generate().node_id();
    let why = refused(raw_claim(port, &forged.to_frame()));
    assert!(
        why.contains("not signed with this invitation's key"),
        "{why}"
    );
    assert!(raw_claim(port, b"POST / HTTP/1.1\r\nHost: x\r\n\r\n").is_none());
    assert!(raw_claim(port, &[0xff, 0xff, 0xff, 0xff, 1, 2, 3]).is_none());
    let started = Instant::now();
    assert!(
        raw_claim(port, b"\x00\x00\x00\x10").is_none(),
        "a frame that never comes"
    );
    assert!(started.elapsed() < Duration::from_secs(9));
    let mut second = second;
    let (ok, _, err) = join(r, "f", &second.token);
    assert!(ok, "{err}");
    assert!(second.wait());

    // An interrupted join (no inviter answered) keeps its new key and
    // says so; the same command later claims with that key.
    let port2 = free_port();
    let listen2 = format!("127.0.0.1:{port2}");
    let gone = Inviter::start(Command::new(BIN), &a_dir, &listen2, "10m");
    let token = gone.token.clone();
    drop(gone);
    let (ok, _, err) = join(r, "g", &token);
    assert!(!ok);
    assert!(
        err.contains("could not reach the inviter") && err.contains("run the same command again"),
        "{err}"
    );
    let g = r.join("g");
    assert!(g.join("node.key").exists() && !g.join("node.toml").exists());
    let (_, before, _) = run(&["asn", "whoami", "--dir", g.to_str().unwrap()]);
    let back = Inviter::start(Command::new(BIN), &a_dir, &listen2, "10m");
    let (ok, out, err) = join(r, "g", &token);
    assert!(ok, "{err}");
    let peer = |t: &str| {
        t.lines()
            .find_map(|l| {
                l.trim()
                    .strip_prefix("peer id")
                    .map(|v| v.trim().to_string())
            })
            .unwrap()
    };
    assert_eq!(peer(&out), peer(&before), "the resumed join kept its key");
    drop(back);

    let (ok, status, _) = run(&["federation", "status", "--dir", a_dir.to_str().unwrap()]);
    assert!(ok);
    assert!(status.contains(&b_peer), "{status}");
    assert!(status.contains("AS64515"), "{status}");
    drop(x_inv);
}

/// Two network namespaces joined by a veth pair; removed on drop.
struct Namespaces {
    names: [String; 2],
}

impl Namespaces {
    fn create() -> Result<Namespaces, String> {
        let tag = std::process::id() % 100_000;
        let names = [format!("abgp-j1-{tag}"), format!("abgp-j2-{tag}")];
        let ns = Namespaces { names };
        let (a, b) = (&ns.names[0], &ns.names[1]);
        let (va, vb) = (format!("vja{tag}"), format!("vjb{tag}"));
        let steps: Vec<Vec<&str>> = vec![
            vec!["netns", "add", a],
            vec!["netns", "add", b],
            vec!["link", "add", &va, "type", "veth", "peer", "name", &vb],
            vec!["link", "set", &va, "netns", a],
            vec!["link", "set", &vb, "netns", b],
            vec!["-n", a, "addr", "add", "10.78.0.1/24", "dev", &va],
            vec!["-n", b, "addr", "add", "10.78.0.2/24", "dev", &vb],
            vec!["-n", a, "link", "set", "lo", "up"],
            vec!["-n", b, "link", "set", "lo", "up"],
            vec!["-n", a, "link", "set", &va, "up"],
            vec!["-n", b, "link", "set", &vb, "up"],
            // mDNS sends to 224.0.0.251: give multicast a route.
            vec!["-n", a, "route", "add", "224.0.0.0/4", "dev", &va],
            vec!["-n", b, "route", "add", "224.0.0.0/4", "dev", &vb],
        ];
        for s in steps {
            let out = Command::new("ip")
                .args(&s)
                .output()
                .map_err(|e| format!("ip {}: {e}", s.join(" ")))?;
            if !out.status.success() {
                return Err(format!(
                    "ip {}: {}",
                    s.join(" "),
                    String::from_utf8_lossy(&out.stderr).trim()
                ));
            }
        }
        Ok(ns)
    }

    fn exec(&self, i: usize) -> Command {
        let mut c = Command::new("ip");
        c.args(["netns", "exec", &self.names[i], BIN]);
        c
    }
}

impl Drop for Namespaces {
    fn drop(&mut self) {
        for n in &self.names {
            let _ = Command::new("ip").args(["netns", "del", n]).status();
        }
    }
}

#[test]
fn join_over_mdns_between_network_namespaces() {
    let ns = match Namespaces::create() {
        Ok(ns) => ns,
        Err(e) => {
            eprintln!(
                "SKIPPED join_over_mdns_between_network_namespaces: cannot create network \
                 namespaces here ({e}); run as root on Linux to try the LAN join"
            );
            return;
        }
    };
    let root = tempfile::tempdir().unwrap();
    let r = root.path();
    // Default ports: each namespace has its own.
    let a_dir = r.join("a");
    let mut c = ns.exec(0);
    let out = c
        .args(["federation", "create", "lan", "--dir"])
        .arg(&a_dir)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // The token names the inviter's veth address; with --no-bootstrap no
    // member address, so the joiner has to find the creator by mDNS.
    let mut inv = Inviter::start_with(
        ns.exec(0),
        &a_dir,
        "0.0.0.0:4190",
        "10m",
        &["--no-bootstrap"],
    );
    let token = Token::decode(&inv.token).unwrap();
    assert!(token.invite.bootstrap.is_empty());
    assert_eq!(
        token.invite.claim,
        vec!["10.78.0.1:4190".parse().unwrap()],
        "the claim address is the LAN address"
    );
    let b_dir = r.join("b");
    let out = ns
        .exec(1)
        .args(["init", "--dir"])
        .arg(&b_dir)
        .args(["--join", &inv.token])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(inv.wait(), "{}", inv.log());

    let a = node_dir(&a_dir, "a");
    let b = node_dir(&b_dir, "b");
    let pa = Proc::start_with(&a, ns.exec(0));
    let pb = Proc::start_with(&b, ns.exec(1));
    add_agent(ns.exec(0), &a.dir.join("node.toml"), "a-agent", "tools/a/*");
    add_agent(ns.exec(1), &b.dir.join("node.toml"), "b-agent", "tools/b/*");
    let log_of = |p: &Proc| std::fs::read_to_string(&p.log).unwrap_or_default();
    for (p, other) in [(&pa, &b), (&pb, &a)] {
        wait_for(
            &format!("{} to establish a session with {}", p.name, other.name),
            CONVERGE,
            || {
                log_of(p)
                    .lines()
                    .any(|l| l.contains("session established") && l.contains(&other.peer_id))
                    .then_some(())
            },
        );
    }
    let by_mdns = [(&pa, &b), (&pb, &a)].iter().any(|(p, other)| {
        log_of(p).lines().any(|l| {
            l.contains("auto-peering with a discovered federation member")
                && l.contains(&other.peer_id)
                && l.contains("Mdns")
        })
    });
    assert!(by_mdns, "neither node auto-peered through mDNS");
    // Each front (inside its namespace) lists the other's tools.
    for (i, me, agent, asn) in [(1, &b, "a-agent", a.asn), (0, &a, "b-agent", b.asn)] {
        let config = me.dir.join("node.toml").to_str().unwrap().to_string();
        wait_for(
            &format!("{}'s front to list {agent}", me.name),
            CONVERGE,
            || {
                let args = vec![
                    "netns".into(),
                    "exec".into(),
                    ns.names[i].clone(),
                    BIN.into(),
                    "mcp".into(),
                    "--config".into(),
                    config.clone(),
                ];
                sees_tool_of(&front_tools("ip", args), agent, asn).then_some(())
            },
        );
    }
}

#[test]
fn nodes_outside_the_federation_get_no_session_and_no_routes() {
    let root = tempfile::tempdir().unwrap();
    let r = root.path();
    let a_dir = create(r, "a", "home", free_base());
    let a = node_dir(&a_dir, "a");
    let a_addr = {
        let base: u16 = std::fs::read_to_string(a_dir.join("node.toml"))
            .unwrap()
            .lines()
            .find_map(|l| {
                l.strip_prefix("listen = [\"/ip4/0.0.0.0/tcp/")
                    .and_then(|v| v.split('"').next())
                    .and_then(|p| p.parse().ok())
            })
            .unwrap();
        format!("/ip4/127.0.0.1/tcp/{base}/p2p/{}", a.peer_id)
    };
    let pa = Proc::start(&a);
    // A stranger with the federation's name and a derived ASN, and the
    // creator of another federation of the same name (its own authority,
    // the same first ASN): both dial a, both accept everything.
    let s = init(r, "s", "home");
    let mut x = node_dir(&create(r, "x", "home", free_base()), "x");
    x.port = free_port();
    for (n, asn) in [(&s, None), (&x, Some(64512))] {
        configure(
            n,
            &Spec {
                federation: "home".into(),
                asn,
                certificate: asn.map(|_| "node.cert".to_string()),
                kademlia: true,
                mdns: false,
                bootstrap: vec![a_addr.clone()],
                policy: Some(OPEN_POLICY.into()),
                originate: vec![format!("tools/{}/*", n.name)],
                ..Spec::default()
            },
        );
    }
    let ps = Proc::start(&s);
    let px = Proc::start(&x);
    let log = |p: &Proc| std::fs::read_to_string(&p.log).unwrap_or_default();
    for (p, other, why) in [
        (&ps, &s, "derived ASNs are not accepted"),
        (&px, &x, "is not a trust anchor"),
    ] {
        wait_for(&format!("a to refuse {}", other.name), CONVERGE, || {
            let seen = log(&pa)
                .lines()
                .any(|l| l.contains(&other.peer_id) && l.contains(why))
                || log(p).lines().any(|l| l.contains(why));
            seen.then_some(())
        });
        assert!(!pa.established_with(&other.peer_id));
        assert!(pa.route(&format!("tools/{}/*", other.name)).is_none());
    }
    assert_eq!(pa.established_count(), 0);
}

/// The federation's origin authorisations travel with the invitation and a
/// community the inviter vouches for goes into the joiner's certificate:
/// the creator authorises its own AS for `finance/*`, invites a node as a
/// `finance` member, and each side then checks the other's finance routes
/// against the authorisation.
#[test]
fn invitations_carry_the_federations_authorisations_and_certified_communities() {
    let root = tempfile::tempdir().unwrap();
    let a_dir = create(root.path(), "a", "corp", free_base());
    let (ok, token, err) = run(&[
        "federation",
        "authorize",
        "--dir",
        a_dir.to_str().unwrap(),
        "--prefix",
        "finance/*",
    ]);
    assert!(ok, "federation authorize: {err}");
    let token = token.trim().to_string();
    assert!(token.starts_with("abgp-roa1:"), "{token}");
    assert!(err.contains("AS64512 may originate finance/*"), "{err}");
    // Recorded, and in the creator's own node.toml, which still parses and
    // keeps its comments.
    let a_toml = std::fs::read_to_string(a_dir.join("node.toml")).unwrap();
    assert!(a_toml.contains(&token), "{a_toml}");
    assert!(a_toml.contains("# Origin authorisations"), "comments kept");
    let (ok, status, _) = run(&["federation", "status", "--dir", a_dir.to_str().unwrap()]);
    assert!(ok && status.contains("AS64512      finance/*"), "{status}");
    // An ASN outside the federation is refused.
    let (ok, _, err) = run(&[
        "federation",
        "authorize",
        "--dir",
        a_dir.to_str().unwrap(),
        "--prefix",
        "x/*",
        "--asn",
        "70000",
    ]);
    assert!(
        !ok && err.contains("not one of the federation's ASNs"),
        "{err}"
    );

    let mut inv = Inviter::start_with(
        Command::new(BIN),
        &a_dir,
        "127.0.0.1:0",
        "10m",
        &["--community", "finance"],
    );
    let (ok, out, err) = join(root.path(), "b", &inv.token);
    assert!(ok, "join: {err}");
    assert!(out.contains("communities finance"), "{out}");
    assert!(out.contains("origin authorisations 1"), "{out}");
    assert!(inv.wait(), "{}", inv.log());
    let b_dir = root.path().join("b");
    let b_toml = std::fs::read_to_string(b_dir.join("node.toml")).unwrap();
    assert!(b_toml.contains(&token), "the joiner got the authorisation");
    let (ok, cert, err) = run(&[
        "asn",
        "verify",
        "--cert",
        b_dir.join("node.cert").to_str().unwrap(),
    ]);
    assert!(ok, "{err}");
    assert!(cert.contains("communities  finance"), "{cert}");

    // Both run: A's finance agent is valid at B; B's, in A's authorised
    // space, is rejected at A.
    let a = node_dir(&a_dir, "a");
    let b = node_dir(&b_dir, "b");
    let pa = Proc::start(&a);
    let pb = Proc::start(&b);
    add_agent(
        Command::new(BIN),
        &a.dir.join("node.toml"),
        "fa",
        "finance/a/*",
    );
    add_agent(
        Command::new(BIN),
        &b.dir.join("node.toml"),
        "fb",
        "finance/b/*",
    );
    add_agent(Command::new(BIN), &b.dir.join("node.toml"), "eb", "eng/b/*");
    wait_for("A's finance route at B, marked valid", CONVERGE, || {
        pb.communities("finance/a/echo")
            .contains(&"origin-valid".to_string())
            .then_some(())
    });
    wait_for("B's other route at A, marked not-found", CONVERGE, || {
        pa.communities("eng/b/echo")
            .contains(&"origin-not-found".to_string())
            .then_some(())
    });
    wait_for("B's finance routes rejected at A", CONVERGE, || {
        pa.metric("abgp_route_origin_invalid_rejected_total")
            .filter(|n| *n >= 1.0)
    });
    assert!(pa.route("finance/b/echo").is_none());
}
