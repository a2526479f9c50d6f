//! A transparent route server across real `abgp` processes: a bootstrap
//! node of AS 65100 relays routes between two client ASes without putting
//! its ASN in their path, names the announcing client as next hop, and is
//! not on the call path: calls go straight from client to client, and keep
//! working after the route server is killed.
//!
//! ```text
//!        RS (AS 65100, bootstrap, [routing] route_server = true)
//!       /  \          route sessions only
//!      A    B         (AS 65010 with a/echo, AS 65020 with b/echo)
//!       \__/          calls: A <-> B directly
//! ```
//!
//! Every node has a certificate issued by one authority: a client checks
//! the origin and path signatures of routes from an AS it has no session
//! with.

// Both helper modules include the port helper; one copy each is harmless.
#![allow(clippy::duplicate_mod)]

mod node_harness;

use std::process::Command;
use std::time::{Duration, Instant};

use node_harness::{
    BIN, NodeDir, Proc, Spec, authority, configure, example_agent_entry, init, issue_cert, wait_for,
};
use serde_json::Value;

const RS_ASN: u32 = 65100;
const A_ASN: u32 = 65010;
const B_ASN: u32 = 65020;
const CONVERGE: Duration = Duration::from_secs(30);

fn trust(public: &str) -> String {
    format!(
        "\n[trust]\naccept_derived = false\nanchors = [{{ name = \"ix\", key = \"{public}\", asns = [\"65000-65200\"] }}]\n"
    )
}

fn neighbor(n: &NodeDir, extra: &str) -> String {
    format!(
        "\n[[neighbor]]\npeer_id = \"{}\"\naddress = \"{}\"\nasn = {}\n{extra}\n",
        n.peer_id,
        n.addr(),
        n.asn
    )
}

/// The front name of the tool routed as `prefix`, once listed.
fn front_name(p: &Proc, prefix: &str) -> String {
    wait_for(
        &format!("{}'s front to list {prefix}", p.name),
        CONVERGE,
        || {
            let v = p.try_get("/v1/tools")?;
            v.as_array()?
                .iter()
                .find(|t| t["prefix"] == prefix && t["descriptor_missing"] == false)
                .and_then(|t| t["name"].as_str().map(String::from))
        },
    )
}

/// Calls `name` through `nd`'s front; returns the nodes of the trace
/// (caller first, first 8 hex digits each).
fn call(nd: &NodeDir, name: &str, text: &str) -> Vec<String> {
    let args = serde_json::json!({ "text": text }).to_string();
    let out = Command::new(BIN)
        .args(["call", name, "--json", "--args", &args, "--config"])
        .arg(nd.dir.join("node.toml"))
        .output()
        .expect("run abgp call");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{} calling {name}: {}{stdout}",
        nd.name,
        String::from_utf8_lossy(&out.stderr)
    );
    let v: Value = serde_json::from_str(&stdout).expect("JSON result");
    assert_eq!(v["structuredContent"]["text"], text, "{v}");
    v["_meta"]["agent-bgp/trace"]
        .as_array()
        .unwrap_or_else(|| panic!("no trace: {v}"))
        .iter()
        .filter_map(|h| h["node"].as_str().map(String::from))
        .collect()
}

fn short(n: &NodeDir) -> String {
    n.node_id[..8].to_string()
}

/// The route server RS and its clients A and B, started; with
/// `discovery` the clients find each other's addresses in the DHT RS
/// serves, without it they have none.
fn exchange(discovery: bool) -> (tempfile::TempDir, [NodeDir; 3], [Proc; 3]) {
    let root = tempfile::tempdir().unwrap();
    let (akey, public) = authority(root.path());
    let node = |name: &str, asn: u32| NodeDir {
        asn,
        ..init(root.path(), name, "ix")
    };
    let rs = node("RS", RS_ASN);
    let a = node("A", A_ASN);
    let b = node("B", B_ASN);
    let spec = |nd: &NodeDir, extra: String| Spec {
        federation: "ix".into(),
        asn: Some(nd.asn),
        certificate: Some(issue_cert(&akey, nd, nd.asn)),
        max_auto_peers: 0,
        hold: 30,
        extra,
        ..Default::default()
    };
    // The route server: a bootstrap node (the DHT the clients find each
    // other's addresses in), with both clients as route-server clients.
    configure(
        &rs,
        &Spec {
            bootstrap_node: true,
            kademlia: true,
            ..spec(
                &rs,
                format!(
                    "{}\n[routing]\nroute_server = true\n{}{}",
                    trust(&public),
                    neighbor(&a, "passive = true\nroute_server_client = true"),
                    neighbor(&b, "passive = true\nroute_server_client = true"),
                ),
            )
        },
    );
    for (nd, prefix) in [(&a, "a/echo"), (&b, "b/echo")] {
        configure(
            nd,
            &Spec {
                kademlia: discovery,
                bootstrap: if discovery {
                    vec![rs.p2p_addr()]
                } else {
                    Vec::new()
                },
                ..spec(
                    nd,
                    format!(
                        "{}{}{}",
                        trust(&public),
                        neighbor(&rs, "route_server = true"),
                        example_agent_entry(prefix)
                    ),
                )
            },
        );
    }
    let procs = [Proc::start(&rs), Proc::start(&a), Proc::start(&b)];
    (root, [rs, a, b], procs)
}

#[test]
fn a_route_server_relays_without_its_asn_and_stays_off_the_call_path() {
    let t0 = Instant::now();
    let (_root, [rs, a, b], [mut rsp, ap, bp]) = exchange(true);

    // Routes cross, with the route server's ASN nowhere in the path.
    let at_b = front_name(&bp, "a/echo/echo");
    let at_a = front_name(&ap, "b/echo/echo");
    let converged = t0.elapsed();
    assert_eq!(bp.as_path("a/echo/echo"), Some(vec![u64::from(A_ASN)]));
    assert_eq!(ap.as_path("b/echo/echo"), Some(vec![u64::from(B_ASN)]));
    // The route names A as the next hop for calls (the route server's own
    // table has none: it learned the route from A itself).
    let r = bp.route("a/echo/echo").expect("B's route");
    assert_eq!(r["next_hop"], a.node_id.as_str(), "{r}");
    assert_eq!(r["peer_node"], rs.node_id.as_str(), "{r}");
    assert_eq!(
        rsp.route("a/echo/echo").expect("RS's route")["next_hop"],
        Value::Null
    );
    let out = Command::new(BIN)
        .args(["routes", "a/echo/echo", "--detail", "--config"])
        .arg(b.dir.join("node.toml"))
        .output()
        .expect("run abgp routes");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains(&format!(
            "next hop     {} (named by our route server",
            a.node_id
        )),
        "{text}"
    );
    // The route server's own table has them as an ordinary transit would.
    assert_eq!(rsp.as_path("a/echo/echo"), Some(vec![u64::from(A_ASN)]));
    // No session between the clients: only the route server.
    assert_eq!(ap.established_count(), 1);
    assert!(!ap.established_with(&b.peer_id));

    // Calls go straight to the announcing client: the trace has two hops.
    // Until a client has found the other's addresses (in the DHT the
    // route server serves), a call it cannot deliver directly is retried
    // through the route server (three hops); wait for the direct one.
    for (from, name, to) in [(&b, &at_b, &a), (&a, &at_a, &b)] {
        let mut via_rs = 0;
        wait_for(
            &format!("{} to call {} directly", from.name, to.name),
            CONVERGE,
            || {
                let hops = call(from, name, "hello");
                if hops == [short(from), short(to)] {
                    return Some(());
                }
                assert_eq!(hops, [short(from), short(&rs), short(to)]);
                via_rs += 1;
                None
            },
        );
        println!(
            "{} called {} through the route server {via_rs} times first",
            from.name, to.name
        );
        assert_eq!(call(from, name, "direct"), [short(from), short(to)]);
    }

    // The route server dies: the clients keep its routes for the
    // graceful-restart time (stale), and since calls never went through
    // it, they keep working over the clients' direct connection.
    rsp.kill();
    wait_for("B to see the route server gone", CONVERGE, || {
        (!bp.established_with(&rs.peer_id)).then_some(())
    });
    let r = bp.route("a/echo/echo").expect("B keeps A's route");
    assert_eq!(r["stale"], true, "{r}");
    assert_eq!(call(&b, &at_b, "after"), [short(&b), short(&a)]);
    assert_eq!(call(&a, &at_a, "after"), [short(&a), short(&b)]);
    println!(
        "route server: converged in {converged:?}, total {:?}",
        t0.elapsed()
    );
}

#[test]
fn without_the_other_client_s_address_calls_fall_back_through_the_route_server() {
    let (_root, [rs, a, b], [_rsp, ap, bp]) = exchange(false);
    let at_b = front_name(&bp, "a/echo/echo");
    let at_a = front_name(&ap, "b/echo/echo");
    assert_eq!(
        bp.route("a/echo/echo").expect("B's route")["next_hop"],
        a.node_id.as_str()
    );
    // The direct dial finds no address: the call is not delivered and is
    // retried on the next path, the route server, which forwards it as a
    // transit would.
    assert_eq!(
        call(&b, &at_b, "b to a"),
        [short(&b), short(&rs), short(&a)]
    );
    assert_eq!(
        call(&a, &at_a, "a to b"),
        [short(&a), short(&rs), short(&b)]
    );
}
