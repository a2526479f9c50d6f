//! The node in one process: an in-memory store ([`MemStore`]) and
//! libp2p's memory transport, so `Node::step`, the commit path and two
//! nodes peering run in milliseconds, with no ports, files beyond a
//! temporary key, or processes.

use std::sync::{Arc, Mutex};

use super::*;
use crate::config::NodeConfig;
use crate::core::prefix::Prefix;
use crate::core::route::RouteKey;
use crate::identity::NodeKey;
use crate::identity::cert::derive_asn;
use crate::store::{MemState, MemStore};

/// A node's directory and key, before it starts.
struct Prepared {
    dir: tempfile::TempDir,
    key: NodeKey,
    peer_id: String,
    addr: String,
    asn: Asn,
}

fn prepare() -> Prepared {
    let dir = tempfile::tempdir().expect("tempdir");
    let key = NodeKey::generate();
    NodeKey::create(&dir.path().join("node.key"), &key).expect("key file");
    Prepared {
        peer_id: key.peer_id().to_string(),
        addr: format!("/memory/{}", rand::random::<u64>() | 1),
        asn: derive_asn(&key.node_id()),
        key,
        dir,
    }
}

impl Prepared {
    /// A `[[neighbor]]` entry naming this node.
    fn neighbor(&self) -> String {
        format!(
            "\n[[neighbor]]\npeer_id = \"{p}\"\naddress = \"{a}/p2p/{p}\"\nasn = {asn}\n",
            p = self.peer_id,
            a = self.addr,
            asn = self.asn.0
        )
    }

    async fn start(self, extra: &str) -> TestNode {
        let cfg = config(self.dir.path(), &self.addr, extra);
        let clock = Clock::start();
        let (store, state) = MemStore::new(self.key.node_id(), clock.now());
        let node = Node::start_with(cfg, self.key, clock, store, Transport::Memory)
            .await
            .expect("node starts");
        TestNode {
            node,
            store: state,
            _dir: self.dir,
        }
    }
}

struct TestNode {
    node: Node,
    store: Arc<Mutex<MemState>>,
    _dir: tempfile::TempDir,
}

const OPEN_POLICY: &str = r#"
[[apply]]
neighbors = ["*"]
default-import = "accept"
default-export = "accept"
"#;

/// node.toml for a test node: memory listen address, no admin API, no MCP
/// front, no discovery, an open policy, `extra` appended.
fn config(dir: &std::path::Path, listen: &str, extra: &str) -> LoadedConfig {
    std::fs::write(dir.join("policy.toml"), OPEN_POLICY).expect("policy");
    let text = format!(
        r#"[node]
federation = "test"
[network]
listen = ["{listen}"]
[session]
hold_time = "3s"
[discovery]
mdns = false
kademlia = false
[policy]
file = "policy.toml"
[admin]
listen = "off"
[mcp]
listen = "off"
{extra}
"#
    );
    let path = dir.join("node.toml");
    std::fs::write(&path, text).expect("node.toml");
    NodeConfig::load(&path).expect("a valid node.toml")
}

/// Waits (on the store's durability watch, not a clock) until `f` holds
/// for what is durable.
async fn durable_until(n: &mut TestNode, what: &str, f: impl Fn(&MemState) -> bool) {
    let wait = async {
        loop {
            if f(&n.store.lock().expect("state")) {
                return;
            }
            if n.node.durable.changed().await.is_err() {
                panic!("the store thread stopped");
            }
        }
    };
    tokio::time::timeout(Duration::from_secs(10), wait)
        .await
        .unwrap_or_else(|_| panic!("{what}: not durable within 10 s"));
}

#[tokio::test]
async fn a_static_route_is_committed_and_a_step_that_withdraws_it_is_too() {
    let mut n = prepare()
        .start("[[originate]]\nprefix = \"tools/weather/*\"\nagent = \"weather\"\n")
        .await;
    let prefix: Prefix = "tools/weather/*".parse().expect("prefix");
    assert!(n.node.engine.best(&prefix).is_some(), "originated at start");
    durable_until(&mut n, "the originated route", |s| {
        s.durable.loc.contains_key(&prefix)
    })
    .await;
    {
        let s = n.store.lock().expect("state");
        assert_eq!(s.durable.loc[&prefix].attrs.agent.as_str(), "weather");
        assert!(s.flushes >= 1 && s.batches >= 1);
    }
    n.node
        .step(
            vec![Event::WithdrawLocal(RouteKey::new(prefix.clone()))],
            None,
        )
        .await
        .expect("step");
    assert!(n.node.engine.best(&prefix).is_none());
    durable_until(&mut n, "the withdrawal", |s| {
        !s.durable.loc.contains_key(&prefix)
    })
    .await;
    let view = n.node.status();
    assert_eq!(view.loc_rib_routes, 0, "{view:?}");
}

#[tokio::test]
async fn two_nodes_peer_over_memory_and_exchange_routes() {
    let (pa, pb) = (prepare(), prepare());
    let a_asn = pa.asn;
    let (a_entry, b_entry) = (pa.neighbor(), pb.neighbor());
    let na = pa
        .start(&format!("[[originate]]\nprefix = \"alpha/*\"\n{b_entry}"))
        .await;
    let nb = pb
        .start(&format!("[[originate]]\nprefix = \"beta/*\"\n{a_entry}"))
        .await;
    let sb = nb.store.clone();
    let (_da, _db) = (na._dir, nb._dir);
    let (na, nb) = (na.node, nb.node);
    let (tx_b, stop_a, stop_b) = (
        nb.admin_tx.clone(),
        tokio_util::sync::CancellationToken::new(),
        tokio_util::sync::CancellationToken::new(),
    );
    let ta = {
        let s = stop_a.clone();
        let mut na = na;
        tokio::spawn(async move { na.run_loop(async move { s.cancelled().await }).await })
    };
    let tb = {
        let s = stop_b.clone();
        let mut nb = nb;
        tokio::spawn(async move { nb.run_loop(async move { s.cancelled().await }).await })
    };
    // B learns A's route through the session, with A's ASN on the path,
    // and commits it to its Adj-RIB-In before acknowledging.
    let alpha: Prefix = "alpha/*".parse().expect("prefix");
    let wait = async {
        loop {
            let (otx, orx) = tokio::sync::oneshot::channel();
            tx_b.send(AdminRequest::Routes(otx))
                .await
                .expect("node B runs");
            let routes = orx.await.expect("an answer");
            if let Some(r) = routes.iter().find(|r| r.prefix == "alpha/*") {
                return r.as_path.clone();
            }
            tokio::task::yield_now().await;
        }
    };
    let path = tokio::time::timeout(Duration::from_secs(20), wait)
        .await
        .expect("B learns alpha/* within 20 s");
    assert_eq!(path, vec![a_asn.0]);
    // The Loc-RIB changes before the store thread has written the batch
    // (the ACK to A waits for it, not the Loc-RIB): wait for the write.
    let stored = async {
        while !sb
            .lock()
            .expect("state")
            .applied
            .adj_in
            .keys()
            .any(|(_, k)| k.prefix == alpha)
        {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    };
    tokio::time::timeout(Duration::from_secs(20), stored)
        .await
        .expect("B stored the route it learned");
    stop_a.cancel();
    stop_b.cancel();
    ta.await.expect("A's task").expect("A stops cleanly");
    tb.await.expect("B's task").expect("B stops cleanly");
}

/// `NetConfig::new` has node.toml's defaults, discovery and NAT traversal
/// aside (off in `new`, on in node.toml): the two cannot drift apart.
#[test]
fn net_config_defaults_are_node_tomls() {
    let c = NodeConfig::default();
    let from_toml = super::setup::net_config(&c);
    let mut new = NetConfig::new(c.network.listen.clone(), c.node.federation.clone());
    assert!(!new.mdns && !new.kademlia && !new.provide);
    assert_eq!(new.nat, crate::net::nat::NatConfig::off());
    (new.mdns, new.kademlia, new.provide) = (true, true, true);
    // node.toml: AutoNAT and hole punching on, relays when AutoNAT finds
    // us unreachable; a node that is not a bootstrap node serves neither
    // AutoNAT nor a relay.
    new.nat.autonat = true;
    new.nat.hole_punching = true;
    new.nat.use_relays = crate::net::nat::UseRelays::Auto;
    assert_eq!(format!("{new:?}"), format!("{from_toml:?}"));
    // A bootstrap node serves both, with the documented relay limits.
    let mut b = NodeConfig::default();
    b.node.bootstrap = true;
    let nat = super::setup::net_config(&b).nat;
    assert!(nat.autonat_server);
    assert_eq!(
        nat.relay_server,
        Some(crate::net::nat::RelayLimits::default())
    );
}

/// Tombstones are checked before the engine sees them: one signed by the
/// origin passes; one whose fields were changed after signing, or one a
/// different key signed under the origin's certificate, is dropped and
/// counted.
#[test]
fn tombstones_that_do_not_verify_are_dropped_before_the_engine() {
    use crate::core::ids::Millis;
    use crate::core::message::Update;
    use crate::node::security::Security;
    let dir = tempfile::tempdir().expect("a temp dir");
    let cfg = config(dir.path(), "/memory/1", "");
    let now = Millis(1_800_000_000_000);
    let origin = Security::new(&cfg, NodeKey::generate(), now).expect("origin");
    let stranger = Security::new(&cfg, NodeKey::generate(), now).expect("stranger");
    let mut receiver = Security::new(&cfg, NodeKey::generate(), now).expect("receiver");
    let p = Prefix::new("tools/x").expect("a prefix");
    let good = origin
        .sign_tombstone(&p, Millis(5), now)
        .expect("route signatures are on by default");
    // Changed after signing: it would end a later origination.
    let mut later = (*good).clone();
    later.ended = Millis(now.0);
    // Signed by another key, carrying the origin's certificate.
    let mut forged = (*stranger
        .sign_tombstone(&p, Millis(5), now)
        .expect("a tombstone"))
    .clone();
    forged.cert = good.cert.clone();
    let mut u = Update {
        tombstones: vec![good.clone(), Arc::new(later), Arc::new(forged)],
        ..Default::default()
    };
    assert_eq!(receiver.check_tombstones(&mut u, now), 2);
    assert_eq!(u.tombstones, vec![good]);
    assert_eq!(receiver.tombstones_dropped(), 2);
}
