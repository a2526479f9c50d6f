//! Federation across NATs, in network namespaces this test creates: a
//! "wan" bridge with a public bootstrap node that relays (10.99.0.1), and
//! two home networks, each behind its own NAT router (nftables
//! masquerade, unsolicited inbound dropped as home routers do). Each home
//! holds one node configured with nothing but the bootstrap address.
//!
//! - Port-preserving NATs (Linux masquerade keeps the source port): both
//!   nodes find each other through the DHT, peer through the relay, punch
//!   a hole (DCUtR) to a direct connection, exchange routes, and a tool
//!   hosted behind one NAT is called from the other's front.
//! - A symmetric NAT (`masquerade random`: a new port per destination):
//!   the punch fails and the session and the calls stay on the relay.
//! - The relay's byte limit: three homes behind symmetric NATs; the
//!   circuit that carries too much is cut, the others keep working.
//!
//! Needs root, `ip` and `nft` (scripts/test.sh installs nftables when it
//! runs as root); skipped with a SKIPPED line otherwise. Timings are
//! printed as `NAT-BENCH` lines for docs/benchmarks.md
//! (scripts/bench.sh).

mod node_harness;

use std::path::Path;
use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use serde_json::Value;

use node_harness::*;

const CONVERGE: Duration = Duration::from_secs(90);

/// Takes every route, passes none on.
const IMPORT_ONLY: &str = r#"
[[apply]]
neighbors = ["*"]
default-import = "accept"
default-export = "reject"
"#;
const PORT: u16 = 4100;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum NatKind {
    /// Keeps a flow's source port where it can: hole punching works.
    PortPreserving,
    /// A random source port per new flow: hole punching cannot work.
    Symmetric,
}

/// The namespaces of one test; deleted on drop.
struct Internet {
    /// wan, then each home's NAT router and host: nat A, host A, nat B, ...
    ns: Vec<String>,
}

const WAN: usize = 0;
const HOST_A: usize = 2;
const HOST_B: usize = 4;
const HOST_C: usize = 6;

fn run(cmd: &mut Command) -> Result<(), String> {
    let out = cmd.output().map_err(|e| format!("{cmd:?}: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "{cmd:?}: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

fn ip(args: &[&str]) -> Result<(), String> {
    run(Command::new("ip").args(args))
}

/// The NAT router's rules: masquerade onto the wan, forward only what the
/// home network started, drop (and leave no trace of) unsolicited inbound.
fn nat_rules(wan: &str, lan: &str, kind: NatKind) -> String {
    let flags = match kind {
        NatKind::PortPreserving => "",
        NatKind::Symmetric => " random",
    };
    format!(
        "table ip nat {{\n  chain postnat {{\n    type nat hook postrouting priority srcnat; policy accept;\n    \
         oifname \"{wan}\" masquerade{flags}\n  }}\n}}\n\
         table ip filter {{\n  chain prefilter {{\n    type filter hook prerouting priority -150; policy accept;\n    \
         iifname \"{wan}\" ct state new drop\n  }}\n  \
         chain forwarding {{\n    type filter hook forward priority filter; policy drop;\n    \
         ct state established,related accept\n    iifname \"{lan}\" oifname \"{wan}\" accept\n  }}\n}}\n"
    )
}

impl Internet {
    /// The wan and one home behind a NAT of each kind in `homes` (A, B, ...).
    fn create(homes: &[NatKind]) -> Result<Internet, String> {
        static SEQ: AtomicU32 = AtomicU32::new(0);
        let tag = format!(
            "{}{}",
            std::process::id() % 10_000,
            SEQ.fetch_add(1, Ordering::Relaxed)
        );
        let sides: Vec<char> = ('a'..='z').take(homes.len()).collect();
        let mut ns = vec![format!("abgpw{tag}")];
        for side in &sides {
            ns.push(format!("abgpn{side}{tag}"));
            ns.push(format!("abgph{side}{tag}"));
        }
        let it = Internet { ns };
        let w = &it.ns[WAN];
        for n in &it.ns {
            ip(&["netns", "add", n])?;
            ip(&["-n", n, "link", "set", "lo", "up"])?;
        }
        ip(&["-n", w, "link", "add", "br0", "type", "bridge"])?;
        ip(&["-n", w, "addr", "add", "10.99.0.1/24", "dev", "br0"])?;
        ip(&["-n", w, "link", "set", "br0", "up"])?;
        for (i, (side, kind)) in sides.iter().zip(homes).enumerate() {
            let (nat, host) = (&it.ns[1 + 2 * i], &it.ns[2 + 2 * i]);
            let wan_ip = format!("10.99.0.{}/24", i + 2);
            let lan = format!("192.168.{}", i + 1);
            let kind = *kind;
            let (wan_if, port_if) = (format!("w{side}{tag}"), format!("p{side}{tag}"));
            let (lan_if, host_if) = (format!("l{side}{tag}"), format!("h{side}{tag}"));
            ip(&[
                "link", "add", &wan_if, "type", "veth", "peer", "name", &port_if,
            ])?;
            ip(&["link", "set", &wan_if, "netns", nat])?;
            ip(&["link", "set", &port_if, "netns", w])?;
            ip(&["-n", w, "link", "set", &port_if, "master", "br0"])?;
            ip(&["-n", w, "link", "set", &port_if, "up"])?;
            ip(&["-n", nat, "addr", "add", &wan_ip, "dev", &wan_if])?;
            ip(&["-n", nat, "link", "set", &wan_if, "up"])?;
            ip(&[
                "link", "add", &lan_if, "type", "veth", "peer", "name", &host_if,
            ])?;
            ip(&["link", "set", &lan_if, "netns", nat])?;
            ip(&["link", "set", &host_if, "netns", host])?;
            let gw = format!("{lan}.1");
            ip(&[
                "-n",
                nat,
                "addr",
                "add",
                &format!("{gw}/24"),
                "dev",
                &lan_if,
            ])?;
            ip(&["-n", nat, "link", "set", &lan_if, "up"])?;
            ip(&[
                "-n",
                host,
                "addr",
                "add",
                &format!("{lan}.2/24"),
                "dev",
                &host_if,
            ])?;
            ip(&["-n", host, "link", "set", &host_if, "up"])?;
            ip(&["-n", host, "route", "add", "default", "via", &gw])?;
            run(Command::new("ip").args([
                "netns",
                "exec",
                nat,
                "sysctl",
                "-qw",
                "net.ipv4.ip_forward=1",
            ]))?;
            let rules = nat_rules(&wan_if, &lan_if, kind);
            let path = std::env::temp_dir().join(format!("abgp-nat-{tag}-{side}.nft"));
            std::fs::write(&path, rules).map_err(|e| e.to_string())?;
            let r = run(Command::new("ip")
                .args(["netns", "exec", nat, "nft", "-f"])
                .arg(&path));
            let _ = std::fs::remove_file(&path);
            r?;
        }
        Ok(it)
    }

    /// `abgp` in namespace `i`.
    fn abgp(&self, i: usize) -> Command {
        let mut c = Command::new("ip");
        c.args(["netns", "exec", &self.ns[i], BIN]);
        c
    }

    /// `abgp ARGS --json --config DIR/node.toml` in namespace `i`.
    fn json(&self, i: usize, nd: &NodeDir, args: &[&str]) -> Option<Value> {
        let out = self
            .abgp(i)
            .args(args)
            .arg("--json")
            .arg("--config")
            .arg(nd.dir.join("node.toml"))
            .output()
            .ok()?;
        if !out.status.success() {
            return None;
        }
        serde_json::from_slice(&out.stdout).ok()
    }
}

impl Drop for Internet {
    fn drop(&mut self) {
        for n in &self.ns {
            let _ = Command::new("ip").args(["netns", "del", n]).status();
        }
    }
}

/// Why this machine cannot run the test, if it cannot.
fn missing() -> Option<String> {
    let root = Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false);
    if !root {
        return Some("not root (network namespaces need it)".into());
    }
    for tool in ["ip", "nft"] {
        let found = Command::new("sh")
            .args(["-c", &format!("command -v {tool}")])
            .output()
            .map(|o| o.status.success())
            .unwrap_or(false);
        if !found {
            return Some(format!(
                "`{tool}` not found (apt-get install iproute2 nftables)"
            ));
        }
    }
    None
}

fn setup(name: &str, homes: &[NatKind]) -> Option<Internet> {
    if let Some(why) = missing() {
        eprintln!("SKIPPED {name}: {why}");
        return None;
    }
    match Internet::create(homes) {
        Ok(it) => Some(it),
        Err(e) => {
            eprintln!("SKIPPED {name}: cannot build the namespaces here ({e})");
            None
        }
    }
}

/// The federation: the relay in the wan, A (hosting `echo`) and B at home,
/// and C in a third home when asked for.
struct Federation {
    relay: NodeDir,
    a: NodeDir,
    b: NodeDir,
    c: Option<NodeDir>,
    procs: Vec<Proc>,
    started: Instant,
}

fn federation(it: &Internet, root: &Path) -> Federation {
    federation_with(it, root, "", false)
}

/// `relay_extra` goes at the end of the relay's node.toml.
fn federation_with(it: &Internet, root: &Path, relay_extra: &str, with_c: bool) -> Federation {
    let relay = init(root, "relay", "test");
    configure(
        &relay,
        &Spec {
            kademlia: true,
            bootstrap_node: true,
            policy: None,
            listen: Some(vec![
                format!("/ip4/10.99.0.1/tcp/{PORT}"),
                format!("/ip4/10.99.0.1/udp/{PORT}/quic-v1"),
            ]),
            extra: relay_extra.into(),
            ..Spec::default()
        },
    );
    let boot = format!("/ip4/10.99.0.1/tcp/{PORT}/p2p/{}", relay.peer_id);
    let a = init(root, "a", "test");
    let b = init(root, "b", "test");
    let c = with_c.then(|| init(root, "c", "test"));
    let mut homes = vec![
        (&a, example_agent_entry("a/echo"), OPEN_POLICY),
        (&b, String::new(), OPEN_POLICY),
    ];
    if let Some(c) = &c {
        // C passes nothing on, so B's calls to A never cross C's circuit.
        homes.push((c, String::new(), IMPORT_ONLY));
    }
    for (nd, extra, policy) in homes {
        configure(
            nd,
            &Spec {
                kademlia: true,
                bootstrap: vec![boot.clone()],
                listen: Some(vec![
                    format!("/ip4/0.0.0.0/tcp/{PORT}"),
                    format!("/ip4/0.0.0.0/udp/{PORT}/quic-v1"),
                ]),
                hold: 9,
                extra,
                policy: Some(policy.into()),
                ..Spec::default()
            },
        );
    }
    let mut procs = vec![Proc::start_with(&relay, it.abgp(WAN))];
    let started = Instant::now();
    procs.push(Proc::start_with(&a, it.abgp(HOST_A)));
    procs.push(Proc::start_with(&b, it.abgp(HOST_B)));
    if let Some(c) = &c {
        procs.push(Proc::start_with(c, it.abgp(HOST_C)));
    }
    Federation {
        relay,
        a,
        b,
        c,
        procs,
        started,
    }
}

/// `who`'s view of its session with `other`, once established.
fn session(it: &Internet, ns: usize, who: &NodeDir, other: &NodeDir) -> Option<Value> {
    let peers = it.json(ns, who, &["peers"])?;
    peers
        .as_array()?
        .iter()
        .find(|p| p["peer_id"] == other.peer_id.as_str() && p["state"] == "established")
        .cloned()
}

/// One call of `echo` through `nd`'s front: the result, or why not.
fn call(it: &Internet, ns: usize, nd: &NodeDir, text: &str) -> Result<Value, String> {
    let args = format!(r#"{{"text": "{text}"}}"#);
    let out = it
        .abgp(ns)
        .args([
            "call",
            "echo",
            "--timeout",
            "20s",
            "--json",
            "--args",
            &args,
        ])
        .arg("--config")
        .arg(nd.dir.join("node.toml"))
        .output()
        .map_err(|e| e.to_string())?;
    if !out.status.success() {
        return Err(String::from_utf8_lossy(&out.stderr).into_owned());
    }
    serde_json::from_slice(&out.stdout).map_err(|e| e.to_string())
}

/// The call's time at the calling node's front (its first hop), in µs.
fn front_us(r: &Value) -> Option<u64> {
    r["_meta"]["agent-bgp/trace"][0]["elapsedUs"].as_u64()
}

/// The median front time of `n` calls of `echo` from B.
fn median_call_us(it: &Internet, f: &Federation, n: usize) -> u64 {
    let mut us: Vec<u64> = (0..n)
        .map(|i| {
            let r = call(it, HOST_B, &f.b, &format!("m{i}")).expect("a call");
            front_us(&r).expect("a trace")
        })
        .collect();
    us.sort_unstable();
    us[n / 2]
}

/// Runs the common part: both join, peer through the relay, learn each
/// other's routes with only each other's AS on the path, and B calls the
/// tool behind A's NAT. Returns when the first call succeeded.
fn join_and_call(it: &Internet, f: &Federation) {
    let (a, b) = (&f.a, &f.b);
    let sa = wait_for("a and b to peer", CONVERGE, || session(it, HOST_A, a, b));
    let peered = f.started.elapsed();
    assert_eq!(sa["asn"], b.asn, "{sa}");
    let route = wait_for("b to learn a's echo route", CONVERGE, || {
        let routes = it.json(HOST_B, b, &["routes"])?;
        routes
            .as_array()?
            .iter()
            .find(|r| r["prefix"] == "a/echo/echo")
            .cloned()
    });
    let first_route = f.started.elapsed();
    // The relay is not an AS hop: the path is A's AS alone.
    assert_eq!(route["as_path"], serde_json::json!([a.asn]), "{route}");
    let r = wait_for("b's call of echo behind a's NAT", CONVERGE, || {
        call(it, HOST_B, b, "across").ok()
    });
    let first_call = f.started.elapsed();
    assert_eq!(r["structuredContent"]["text"], "across", "{r}");
    eprintln!(
        "NAT-BENCH peered_ms={} first_route_ms={} first_call_ms={}",
        peered.as_millis(),
        first_route.as_millis(),
        first_call.as_millis()
    );
}

/// The namespaces for `homes`, the federation started in them, joined and
/// called across ([`join_and_call`]); `None` (said) where namespaces cannot
/// be made. The directory holds the nodes' files.
fn joined(name: &str, homes: &[NatKind]) -> Option<(Internet, tempfile::TempDir, Federation)> {
    let it = setup(name, homes)?;
    let root = tempfile::tempdir().unwrap();
    let f = federation(&it, root.path());
    join_and_call(&it, &f);
    Some((it, root, f))
}

/// Both hold a reservation on the relay (taken at once: they listen on no
/// public address), and AutoNAT confirms they are behind NAT (it takes
/// about 12 s: a 5 s probe interval and the dial back's 7 s deadline).
fn behind_nat_confirmed(it: &Internet, f: &Federation) {
    let (a, b) = (&f.a, &f.b);
    for (ns, nd) in [(HOST_A, a), (HOST_B, b)] {
        wait_for(
            &format!("{} to hold a relay reservation", nd.name),
            CONVERGE,
            || {
                let s = it.json(ns, nd, &["status"])?;
                let n = &s["status"]["nat"];
                (n["reachability"] == "private"
                    && n["relays"].as_array()?.iter().any(|r| {
                        r["state"] == "reserved" && r["peer_id"] == f.relay.peer_id.as_str()
                    }))
                .then_some(())
            },
        );
    }
}

#[test]
fn nodes_behind_two_nats_peer_through_a_relay_and_punch_a_hole() {
    let Some((it, _root, f)) = joined(
        "nodes_behind_two_nats_peer_through_a_relay_and_punch_a_hole",
        &[NatKind::PortPreserving, NatKind::PortPreserving],
    ) else {
        return;
    };
    // The hole punch moves the link to a direct connection; the relayed
    // one is closed once it is overtaken.
    let (a, b) = (&f.a, &f.b);
    for (ns, who, other) in [(HOST_A, a, b), (HOST_B, b, a)] {
        wait_for(
            &format!("{}'s link to {} to go direct", who.name, other.name),
            CONVERGE,
            || {
                let p = session(&it, ns, who, other)?;
                (p["link"]["path"] == "direct" && p["link"]["connections"] == 1).then_some(())
            },
        );
    }
    let direct = f.started.elapsed();
    let sb = it.json(HOST_B, b, &["status"]).expect("b's status");
    let sa = it.json(HOST_A, a, &["status"]).expect("a's status");
    let punched = sa["status"]["nat"]["stats"]["punches_ok"]
        .as_u64()
        .unwrap_or(0)
        + sb["status"]["nat"]["stats"]["punches_ok"]
            .as_u64()
            .unwrap_or(0);
    assert!(punched >= 1, "no hole punch counted: {sa} {sb}");
    // The session never reset on the way: one session, still up.
    let p = session(&it, HOST_B, b, a).expect("still established");
    assert!(p["last_error"].is_null(), "{p}");
    // Calls keep working over the direct connection.
    let r = call(&it, HOST_B, b, "direct").expect("a call after the punch");
    assert_eq!(r["structuredContent"]["text"], "direct", "{r}");
    let us = median_call_us(&it, &f, 21);
    eprintln!(
        "NAT-BENCH direct_ms={} direct_call_median_us={us}",
        direct.as_millis()
    );
    behind_nat_confirmed(&it, &f);
    drop(f.procs);
}

#[test]
fn behind_a_symmetric_nat_the_call_keeps_working_over_the_relay() {
    let Some((it, _root, f)) = joined(
        "behind_a_symmetric_nat_the_call_keeps_working_over_the_relay",
        &[NatKind::PortPreserving, NatKind::Symmetric],
    ) else {
        return;
    };
    let (a, b) = (&f.a, &f.b);
    // The punch fails (B's NAT gives every destination another port);
    // the link says so and stays on the relay.
    wait_for("b's link to a to settle on the relay", CONVERGE, || {
        let p = session(&it, HOST_B, b, a)?;
        (p["link"]["path"] == "relayed").then_some(())
    });
    let s = it.json(HOST_A, a, &["status"]).expect("a's status");
    assert_eq!(s["status"]["nat"]["stats"]["punches_ok"], 0, "{s}");
    let r = call(&it, HOST_B, b, "relayed").expect("a call over the relay");
    assert_eq!(r["structuredContent"]["text"], "relayed", "{r}");
    let us = median_call_us(&it, &f, 21);
    eprintln!("NAT-BENCH relayed_call_median_us={us}");
    behind_nat_confirmed(&it, &f);
    let relay = it
        .json(WAN, &f.relay, &["status"])
        .expect("the relay's status");
    assert!(
        relay["status"]["nat"]["stats"]["relay_circuits_active"]
            .as_u64()
            .unwrap_or(0)
            >= 1,
        "{relay}"
    );
    drop(f.procs);
}

/// The relay's byte limit holds: B's calls push its circuit to A over
/// 2 MiB and the relay cuts it; C's circuit to A through the same relay
/// is untouched (the same session, calls still answered). All three homes
/// are behind symmetric NATs, so nothing can punch its way off the relay.
#[test]
fn a_relay_cuts_the_circuit_that_moves_too_much_and_keeps_the_others() {
    let Some(it) = setup(
        "a_relay_cuts_the_circuit_that_moves_too_much_and_keeps_the_others",
        &[NatKind::Symmetric, NatKind::Symmetric, NatKind::Symmetric],
    ) else {
        return;
    };
    let root = tempfile::tempdir().unwrap();
    let f = federation_with(
        &it,
        root.path(),
        "\n[nat]\nrelay_max_circuit_kib = 2048\n",
        true,
    );
    let (a, b) = (&f.a, &f.b);
    let c = f.c.as_ref().expect("a third home");
    for (ns, nd) in [(HOST_B, b), (HOST_C, c)] {
        wait_for(&format!("{} and a to peer", nd.name), CONVERGE, || {
            session(&it, ns, nd, a)
        });
        wait_for(
            &format!("{}'s first call of echo behind a's NAT", nd.name),
            CONVERGE,
            || call(&it, ns, nd, "small").ok(),
        );
    }
    let since =
        |ns: usize, who: &NodeDir| session(&it, ns, who, a).map(|p| p["established_since"].clone());
    let c_since = since(HOST_C, c).expect("c's session to a");
    let b_since = since(HOST_B, b).expect("b's session to a");
    // 100 KiB each way per call: the eleventh at the latest goes over.
    let big = "x".repeat(100 * 1024);
    let failed = (0..30).find(|_| call(&it, HOST_B, b, &big).is_err());
    assert!(
        failed.is_some(),
        "thirty 100 KiB calls crossed a 2 MiB circuit"
    );
    eprintln!("b's circuit to a was cut at call {failed:?}");
    let relay = wait_for("the relay to count the cut circuit", CONVERGE, || {
        let s = it.json(WAN, &f.relay, &["status"])?;
        (s["status"]["nat"]["stats"]["relay_circuits_closed"].as_u64()? >= 1).then_some(s)
    });
    assert!(
        since(HOST_B, b) != Some(b_since),
        "b's session to a went down with its circuit: {relay}"
    );
    // C's circuit carried on: the same session, and calls are answered.
    let r = call(&it, HOST_C, c, "still").expect("c's call after b's cut");
    assert_eq!(r["structuredContent"]["text"], "still", "{r}");
    assert_eq!(since(HOST_C, c), Some(c_since), "c's session stayed up");
    drop(f.procs);
}
