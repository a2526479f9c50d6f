//! Route reflection across real `abgp` processes: one AS of eleven nodes,
//! a reflector and ten clients that peer only with it (no full mesh).
//! Every client's tool is listed at every other client's front, with the
//! originator and cluster list the reflector added, and is called through
//! the reflector.
//!
//! ```text
//!            c1   c2   c3 ... c10       (AS 65000, each hosting an agent cN/echo)
//!              \   |   /      /
//!               reflector R             (AS 65000, [routing] cluster_id = 7)
//! ```
//!
//! The eleven nodes share ASN 65000, so each has a certificate for it
//! issued by one authority (`abgp asn issue`), which every node trusts.

// Both helper modules include the port helper; one copy each is harmless.
#![allow(clippy::duplicate_mod)]

mod node_harness;

use std::process::Command;
use std::time::{Duration, Instant};

use node_harness::{
    BIN, NodeDir, Proc, Spec, authority, configure, example_agent_entry, init, issue_cert, wait_for,
};
use serde_json::Value;

const ASN: u32 = 65000;
const CLUSTER: u32 = 7;
const CLIENTS: usize = 10;
const CONVERGE: Duration = Duration::from_secs(60);

fn trust(public: &str) -> String {
    format!(
        "\n[trust]\naccept_derived = false\nanchors = [{{ name = \"corp\", key = \"{public}\", asns = [\"{ASN}\"] }}]\n"
    )
}

/// The route prefix of client `i`'s echo tool (its agent's prefix is
/// `cN/echo`).
fn prefix_of(i: usize) -> String {
    format!("c{}/echo/echo", i + 1)
}

/// The front name and prefix of every tool `p`'s front lists with a
/// descriptor.
fn front_tools(p: &Proc) -> Option<Vec<(String, String)>> {
    let v = p.try_get("/v1/tools")?;
    Some(
        v.as_array()?
            .iter()
            .filter(|t| t["descriptor_missing"] == false)
            .filter_map(|t| Some((t["name"].as_str()?.into(), t["prefix"].as_str()?.into())))
            .collect(),
    )
}

/// `abgp ARGS --config DIR/node.toml` (with `--json` first when asked).
fn cli(nd: &NodeDir, args: &[&str]) -> (bool, String, String) {
    let out = Command::new(BIN)
        .args(args)
        .arg("--config")
        .arg(nd.dir.join("node.toml"))
        .output()
        .expect("run abgp");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into(),
        String::from_utf8_lossy(&out.stderr).into(),
    )
}

#[test]
fn a_reflector_with_ten_clients_and_no_full_mesh() {
    let t0 = Instant::now();
    let root = tempfile::tempdir().unwrap();
    let (akey, public) = authority(root.path());
    // Every node of the AS opens with ASN 65000 (init derived another).
    let node = |name: &str| NodeDir {
        asn: ASN,
        ..init(root.path(), name, "corp")
    };
    let r = node("R");
    let clients: Vec<NodeDir> = (0..CLIENTS).map(|i| node(&format!("c{}", i + 1))).collect();
    let spec = |nd: &NodeDir, extra: String, neighbors: Vec<(NodeDir, bool)>| Spec {
        federation: "corp".into(),
        asn: Some(ASN),
        certificate: Some(issue_cert(&akey, nd, ASN)),
        max_auto_peers: 0,
        hold: 30,
        neighbors,
        extra,
        ..Default::default()
    };
    // The reflector lists its clients (passive: they dial it).
    let mut rx = trust(&public);
    rx.push_str(&format!("\n[routing]\ncluster_id = {CLUSTER}\n"));
    for c in &clients {
        rx.push_str(&format!(
            "\n[[neighbor]]\npeer_id = \"{}\"\nasn = {ASN}\npassive = true\nrr_client = true\n",
            c.peer_id
        ));
    }
    configure(&r, &spec(&r, rx, Vec::new()));
    for (i, c) in clients.iter().enumerate() {
        let extra = format!(
            "{}{}",
            trust(&public),
            example_agent_entry(&format!("c{}/echo", i + 1))
        );
        configure(c, &spec(c, extra, vec![(r.clone(), false)]));
    }
    let setup = t0.elapsed();

    let t1 = Instant::now();
    let rp = Proc::start(&r);
    let cp: Vec<Proc> = clients.iter().map(Proc::start).collect();
    let started = t1.elapsed();

    // Converged: every client's front lists all ten tools.
    let t2 = Instant::now();
    let names: Vec<Vec<(String, String)>> = cp
        .iter()
        .map(|p| {
            wait_for(
                &format!("{}'s front to list all {CLIENTS} tools", p.name),
                CONVERGE,
                || {
                    let tools = front_tools(p)?;
                    (0..CLIENTS)
                        .all(|i| tools.iter().any(|(_, pre)| *pre == prefix_of(i)))
                        .then_some(tools)
                },
            )
        })
        .collect();
    let converged = t2.elapsed();

    // No full mesh: each client has one session, the reflector ten.
    assert_eq!(rp.established_count(), CLIENTS);
    for p in &cp {
        let peers = p.get("/v1/peers");
        let up: Vec<&Value> = peers
            .as_array()
            .unwrap()
            .iter()
            .filter(|x| x["state"] == "established")
            .collect();
        assert_eq!(up.len(), 1, "{}: {peers}", p.name);
        assert_eq!(up[0]["peer_id"], r.peer_id.as_str(), "{}", p.name);
    }

    // Each reflected route names its originator and the cluster, and has
    // an empty AS path (it never left the AS).
    for (i, p) in cp.iter().enumerate() {
        for (k, origin) in clients.iter().enumerate() {
            if k == i {
                continue;
            }
            let route = p.route(&prefix_of(k)).expect("route listed");
            assert_eq!(route["originator"], origin.node_id.as_str(), "{route}");
            assert_eq!(
                route["cluster_list"],
                serde_json::json!([CLUSTER]),
                "{route}"
            );
            assert_eq!(route["as_path"], serde_json::json!([]), "{route}");
        }
    }
    // The reflector's own table shows the clients' routes unreflected.
    let at_r = rp.route(&prefix_of(0)).expect("R holds c1's route");
    assert_eq!(at_r["cluster_list"], serde_json::json!([]), "{at_r}");
    // And the operator sees it in `abgp routes --detail`.
    let (ok, text, err) = cli(&clients[1], &["routes", &prefix_of(0), "--detail"]);
    assert!(ok, "{err}");
    assert!(
        text.contains(&format!(
            "reflected    originator {}, cluster list {CLUSTER}",
            clients[0].node_id
        )),
        "{text}"
    );

    // Every client calls every other client's tool, through the reflector:
    // the trace is caller, R, origin.
    let t3 = Instant::now();
    std::thread::scope(|s| {
        for (i, c) in clients.iter().enumerate() {
            let names = &names[i];
            let clients = &clients;
            let r = &r;
            s.spawn(move || {
                for (k, origin) in clients.iter().enumerate() {
                    if k == i {
                        continue;
                    }
                    let (name, _) = names
                        .iter()
                        .find(|(_, pre)| *pre == prefix_of(k))
                        .unwrap_or_else(|| panic!("no echo of {} at {}", prefix_of(k), c.name));
                    let text = format!("{} to {}", c.name, origin.name);
                    let args = serde_json::json!({ "text": text }).to_string();
                    let (ok, out, err) = cli(c, &["call", name, "--json", "--args", &args]);
                    assert!(ok, "{} calling {name}: {err}{out}", c.name);
                    let v: Value = serde_json::from_str(&out).expect("JSON result");
                    assert_eq!(v["structuredContent"]["text"], text.as_str(), "{v}");
                    let hops: Vec<&str> = v["_meta"]["agent-bgp/trace"]
                        .as_array()
                        .unwrap_or_else(|| panic!("no trace: {v}"))
                        .iter()
                        .filter_map(|h| h["node"].as_str())
                        .collect();
                    // The trace names nodes by their first 8 hex digits.
                    let short = |n: &NodeDir| n.node_id[..8].to_string();
                    assert_eq!(hops, [short(c), short(r), short(origin)], "{v}");
                }
            });
        }
    });
    let called = t3.elapsed();
    println!(
        "setup {setup:?}, 11 nodes started in {started:?}, converged in {converged:?}, \
         {} calls in {called:?}, total {:?}",
        CLIENTS * (CLIENTS - 1),
        t0.elapsed()
    );
}
