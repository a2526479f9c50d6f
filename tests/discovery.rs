//! Discovery without configured neighbours: Kademlia through a bootstrap
//! node (mDNS off), and mDNS between network namespaces.

mod node_harness;

use std::process::Command;
use std::time::Duration;

use node_harness::*;

const CONVERGE: Duration = Duration::from_secs(60);

#[test]
fn kademlia_bootstrap_lets_members_find_and_peer_with_each_other() {
    let root = tempfile::tempdir().unwrap();
    let boot = init(root.path(), "boot", "test");
    configure(
        &boot,
        &Spec {
            kademlia: true,
            bootstrap_node: true,
            policy: None,
            ..Spec::default()
        },
    );
    let pboot = Proc::start(&boot);
    let members: Vec<NodeDir> = ["a", "b", "c"]
        .iter()
        .map(|n| init(root.path(), n, "test"))
        .collect();
    for m in &members {
        configure(
            m,
            &Spec {
                kademlia: true,
                mdns: false,
                bootstrap: vec![boot.p2p_addr()],
                originate: vec![format!("tools/{}/*", m.name)],
                ..Spec::default()
            },
        );
    }
    let procs: Vec<Proc> = members.iter().map(Proc::start).collect();
    for (p, m) in procs.iter().zip(&members) {
        wait_for(
            &format!("{} to peer with both other members", m.name),
            CONVERGE,
            || (p.established_count() == 2).then_some(()),
        );
        for other in members.iter().filter(|o| o.name != m.name) {
            let peer = p.peer(&other.peer_id).expect("peer listed");
            let source = peer["source"].as_str().unwrap_or("");
            assert!(
                source == "kademlia" || source == "inbound",
                "{} found {} through {source}",
                m.name,
                other.name
            );
            // The route may first arrive through the third member (a path
            // of two ASes); once both sessions are up the direct one wins.
            let direct = vec![other.asn as u64];
            wait_for(
                &format!("{} to learn {}'s route directly", m.name, other.name),
                CONVERGE,
                || {
                    p.as_path(&format!("tools/{}/*", other.name))
                        .filter(|path| *path == direct)
                },
            );
        }
        assert!(
            p.peer(&boot.peer_id).is_none(),
            "the bootstrap node serves the DHT; it is not auto-peered"
        );
    }
    let s = pboot.status();
    assert_eq!(s["peers"]["total"], 0);
    assert_eq!(s["discovery"]["kademlia_server"], true);
}

/// A bootstrap node and members that find each other through it.
fn kad_federation(
    root: &std::path::Path,
    names: &[&str],
    spec: Spec,
) -> ((NodeDir, Proc), Vec<NodeDir>, Vec<Proc>) {
    let boot = init(root, "boot", "test");
    configure(
        &boot,
        &Spec {
            kademlia: true,
            bootstrap_node: true,
            policy: None,
            ..Spec::default()
        },
    );
    let pboot = Proc::start(&boot);
    let members: Vec<NodeDir> = names.iter().map(|n| init(root, n, "test")).collect();
    for m in &members {
        configure(
            m,
            &Spec {
                kademlia: true,
                bootstrap: vec![boot.p2p_addr()],
                originate: vec![format!("tools/{}/*", m.name)],
                ..spec.clone()
            },
        );
    }
    let procs = members.iter().map(Proc::start).collect();
    ((boot, pboot), members, procs)
}

#[test]
fn auto_peering_stays_within_max_auto_peers() {
    let root = tempfile::tempdir().unwrap();
    let spec = Spec {
        max_auto_peers: 1,
        ..Spec::default()
    };
    let (_boot, members, procs) = kad_federation(root.path(), &["a", "b", "c", "d"], spec);
    // Everyone ends up with a session, nobody with more than one.
    for (p, m) in procs.iter().zip(&members) {
        wait_for(
            &format!("{} to get its one session", m.name),
            CONVERGE,
            || (p.established_count() == 1).then_some(()),
        );
    }
    let deadline = std::time::Instant::now() + Duration::from_secs(3);
    while std::time::Instant::now() < deadline {
        for (p, m) in procs.iter().zip(&members) {
            let s = p.status();
            assert!(
                s["peers"]["established"].as_u64().unwrap() <= 1,
                "{} exceeds its limit: {s}",
                m.name
            );
            assert!(s["discovery"]["auto_peers"].as_u64().unwrap() <= 1, "{s}");
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
fn a_node_whose_certificate_fails_is_refused_and_not_auto_peered_again() {
    let root = tempfile::tempdir().unwrap();
    let ((boot, _pboot), _members, procs) = kad_federation(root.path(), &["a"], Spec::default());
    // x claims AS65001 with a self-signed certificate nobody pinned.
    let x = init(root.path(), "x", "test");
    configure(
        &x,
        &Spec {
            asn: Some(65001),
            kademlia: true,
            bootstrap: vec![boot.p2p_addr()],
            originate: vec!["tools/x/*".into()],
            ..Spec::default()
        },
    );
    let px = Proc::start(&x);
    let a = &procs[0];
    let refusals = || {
        std::fs::read_to_string(&a.log)
            .unwrap_or_default()
            .lines()
            .filter(|l| l.contains("refusing OPEN: certificate") && l.contains(&x.peer_id))
            .count()
    };
    wait_for("a to refuse x's certificate", CONVERGE, || {
        (refusals() >= 1).then_some(())
    });
    wait_for("x to be told why", CONVERGE, || {
        let xlog = std::fs::read_to_string(&px.log).unwrap_or_default();
        xlog.lines()
            .any(|l| l.contains("Open/16") && l.contains("self-signed certificate claims AS65001"))
            .then_some(())
    });
    // Several discovery rounds later: still refused once, never peered.
    let first = refusals();
    let deadline = std::time::Instant::now() + Duration::from_secs(4);
    while std::time::Instant::now() < deadline {
        assert!(!a.established_with(&x.peer_id), "a peered with x");
        std::thread::sleep(Duration::from_millis(200));
    }
    assert_eq!(refusals(), first, "a retried x within its cooldown");
    assert!(a.route("tools/x/*").is_none());
}

/// Two network namespaces joined by a veth pair; removed on drop.
struct Namespaces {
    names: [String; 2],
}

impl Namespaces {
    fn create() -> Result<Namespaces, String> {
        let tag = std::process::id() % 100_000;
        let names = [format!("abgp-m1-{tag}"), format!("abgp-m2-{tag}")];
        let ns = Namespaces { names };
        let (a, b) = (&ns.names[0], &ns.names[1]);
        let (va, vb) = (format!("vab{tag}"), format!("vba{tag}"));
        let steps: Vec<Vec<&str>> = vec![
            vec!["netns", "add", a],
            vec!["netns", "add", b],
            vec!["link", "add", &va, "type", "veth", "peer", "name", &vb],
            vec!["link", "set", &va, "netns", a],
            vec!["link", "set", &vb, "netns", b],
            vec!["-n", a, "addr", "add", "10.77.0.1/24", "dev", &va],
            vec!["-n", b, "addr", "add", "10.77.0.2/24", "dev", &vb],
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
fn mdns_finds_members_on_a_lan_between_network_namespaces() {
    // libp2p's mDNS ignores loopback, so the nodes need a real (virtual)
    // network: two namespaces joined by a veth pair. This needs root.
    let ns = match Namespaces::create() {
        Ok(ns) => ns,
        Err(e) => {
            eprintln!(
                "SKIPPED mdns_finds_members_on_a_lan_between_network_namespaces: cannot create \
                 network namespaces here ({e}); run as root on Linux to test mDNS"
            );
            return;
        }
    };
    let root = tempfile::tempdir().unwrap();
    let a = init(root.path(), "a", "lan");
    let b = init(root.path(), "b", "lan");
    for (n, ip) in [(&a, "10.77.0.1"), (&b, "10.77.0.2")] {
        configure(
            n,
            &Spec {
                federation: "lan".into(),
                mdns: true,
                kademlia: false,
                listen: Some(vec![format!("/ip4/{ip}/tcp/{}", n.port)]),
                originate: vec![format!("tools/{}/*", n.name)],
                ..Spec::default()
            },
        );
    }
    let mut pa = Proc::start_with(&a, ns.exec(0));
    let mut pb = Proc::start_with(&b, ns.exec(1));
    // The admin API listens on each namespace's own loopback, out of reach
    // from here: watch the logs, then read the stores offline.
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
    wait_for("b to receive a's UPDATE", CONVERGE, || {
        log_of(&pb)
            .lines()
            .any(|l| {
                l.contains("UPDATE received") && l.contains(&a.peer_id) && l.contains("announced=1")
            })
            .then_some(())
    });
    // b first: its store closes before a's goodbye could withdraw anything.
    pb.terminate();
    pa.terminate();
    let (ok, out, err) = abgp(&["store", "dump", "--json", "--dir", b.dir.to_str().unwrap()]);
    assert!(ok, "{err}");
    let dump: serde_json::Value = serde_json::from_str(&out).unwrap();
    let from_a = dump["adj_in"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["peer_id"] == a.peer_id.as_str())
        .expect("b stored routes from a");
    assert!(
        from_a["routes"]
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r["prefix"] == "tools/a/*")
    );
}
