//! The store under fire: SIGKILL in the middle of a flood of routes, and
//! the offline store tools.

mod node_harness;

use std::time::{Duration, Instant};

use node_harness::*;

const FLOOD: usize = 3000;

fn routes_acked(p: &Proc, peer: &str) -> Option<u64> {
    p.peer(peer)?["link"]["stats"]["routes_acked"].as_u64()
}

fn stored_from(dir: &std::path::Path, peer: &str) -> Vec<String> {
    let (ok, out, err) = abgp(&["store", "dump", "--json", "--dir", dir.to_str().unwrap()]);
    assert!(ok, "store dump failed: {err}");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    v["adj_in"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| p["peer_id"] == peer)
        .flat_map(|p| p["routes"].as_array().unwrap().clone())
        .filter_map(|r| r["prefix"].as_str().map(str::to_string))
        .collect()
}

#[test]
fn sigkill_during_a_flood_loses_no_acknowledged_route() {
    let root = tempfile::tempdir().unwrap();
    let a = init(root.path(), "a", "test");
    let b = init(root.path(), "b", "test");
    // a floods b with small UPDATEs; b acknowledges each once it is durable.
    configure(
        &a,
        &Spec {
            neighbors: vec![(b.clone(), false)],
            originate: (0..FLOOD).map(|i| format!("flood/r{i}")).collect(),
            max_routes_per_update: 10,
            ..Spec::default()
        },
    );
    configure(
        &b,
        &Spec {
            neighbors: vec![(a.clone(), false)],
            // No policy: b rejects the routes but keeps them in its
            // pre-policy Adj-RIB-In, which is what is stored.
            policy: None,
            ..Spec::default()
        },
    );
    let mut pb = Proc::start(&b);
    let mut pa = Proc::start(&a);
    // Kill b once some hundreds of routes are acknowledged: mid-flood, at a
    // point that differs from run to run.
    let threshold = 100
        + std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| u64::from(d.subsec_nanos()) % 900)
            .unwrap_or(0);
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if routes_acked(&pa, &b.peer_id).is_some_and(|n| n >= threshold) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the flood did not start:\n{}",
            pa.log_tail(20)
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    pb.kill();
    // b is gone, so a's count can no longer grow once the session drops.
    let acked = wait_for("a to notice b is gone", Duration::from_secs(20), || {
        let p = pa.peer(&b.peer_id)?;
        (p["state"] != "established").then_some(())?;
        routes_acked(&pa, &b.peer_id)
    });
    pa.kill();
    assert!(
        (acked as usize) < FLOOD,
        "the kill landed after the flood ({acked} of {FLOOD} acknowledged); make FLOOD bigger"
    );
    let (ok, out, err) = abgp(&["store", "check", "--dir", b.dir.to_str().unwrap()]);
    assert!(ok, "store check after SIGKILL: {out}{err}");
    assert!(out.contains("not clean"), "{out}");
    let stored = stored_from(&b.dir, &a.peer_id);
    eprintln!(
        "flood of {FLOOD}: {acked} acknowledged, {} stored",
        stored.len()
    );
    assert!(
        stored.len() as u64 >= acked,
        "b acknowledged {acked} routes but stored only {}",
        stored.len()
    );
    // Every stored route is one a announced, once.
    let set: std::collections::HashSet<&str> = stored.iter().map(String::as_str).collect();
    assert!(stored.iter().all(|p| p.starts_with("flood/r")));
    assert_eq!(set.len(), stored.len(), "no duplicates");
    // And the node starts on it.
    let pb = Proc::start(&b);
    assert_eq!(
        pb.status()["store"]["restored_routes"].as_u64().unwrap() as usize,
        stored.len()
    );
}

#[test]
fn init_refuses_to_overwrite_and_store_tools_find_and_reset_a_broken_store() {
    let root = tempfile::tempdir().unwrap();
    let a = init(root.path(), "a", "test");
    let (ok, _, err) = abgp(&["init", "--dir", a.dir.to_str().unwrap()]);
    assert!(!ok && err.contains("refusing to overwrite"), "{err}");
    // Every option is in the generated file, and it loads.
    let text = std::fs::read_to_string(a.dir.join("node.toml")).unwrap();
    for key in [
        "hold_time = \"90s\"",
        "max_auto_peers",
        "bootstrap",
        "[admin]",
        "graceful_restart = \"2m\"",
    ] {
        assert!(text.contains(key), "node.toml lacks {key}");
    }
    configure(&a, &Spec::default());
    let mut pa = Proc::start(&a);
    pa.terminate();
    let dir = a.dir.to_str().unwrap();
    let (ok, out, _) = abgp(&["store", "check", "--dir", dir]);
    assert!(ok && out.contains("readable"), "{out}");
    // Break it: a value that does not decode.
    let store = a.dir.join("store");
    {
        let db = sled::open(&store).unwrap();
        let t = db.open_tree("adj_in").unwrap();
        let mut k = vec![7u8; 32];
        k.extend_from_slice(&[1, 0, 0, 0, 0]);
        k.extend_from_slice(b"x/y");
        t.insert(k, &b"garbage"[..]).unwrap();
        db.flush().unwrap();
    }
    let (ok, _, err) = abgp(&["store", "check", "--dir", dir]);
    assert!(!ok, "check must fail on a corrupt store");
    assert!(
        err.contains("corrupt") && err.contains("abgp store reset"),
        "{err}"
    );
    // The node refuses to start on it, with the same advice.
    let out = std::process::Command::new(BIN)
        .args(["run", "--config"])
        .arg(a.dir.join("node.toml"))
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(err.contains("abgp store reset"), "{err}");
    // Reset moves it aside; the node starts empty.
    let (ok, out, err) = abgp(&["store", "reset", "--dir", dir]);
    assert!(ok, "{out}{err}");
    assert!(std::fs::read_dir(&a.dir).unwrap().any(|e| {
        e.unwrap()
            .file_name()
            .to_string_lossy()
            .starts_with("store.broken-")
    }));
    let pa = Proc::start(&a);
    assert_eq!(pa.status()["store"]["restored_routes"], 0);
}

#[test]
fn bad_config_values_are_reported_with_their_key_path() {
    let root = tempfile::tempdir().unwrap();
    let a = init(root.path(), "a", "test");
    std::fs::write(
        a.dir.join("node.toml"),
        "[session]\nhold_time_secs = 90\n\n[network]\nlisten = [\"/ip4/127.0.0.1/tcp/0\"]\nmax_conections = 3\n",
    )
    .unwrap();
    let out = std::process::Command::new(BIN)
        .args(["run", "--config"])
        .arg(a.dir.join("node.toml"))
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        err.contains("node.toml:6:1") && err.contains("network") && err.contains("max_conections"),
        "{err}"
    );
}

/// Restored routes are verified again before they are used: here b's
/// operator changed the ASN pinned for a while b was down, so a's stored
/// routes (signed by a key certified for its real ASN) no longer verify.
/// Without the check they would come back as stale for the graceful-restart
/// time (120 s) and be offered to b's callers.
#[test]
fn restored_routes_are_verified_again() {
    let root = tempfile::tempdir().unwrap();
    let a = init(root.path(), "a", "test");
    let b = init(root.path(), "b", "test");
    configure(
        &a,
        &Spec {
            neighbors: vec![(b.clone(), false)],
            originate: vec!["a/tool".into(), "a/other".into()],
            ..Spec::default()
        },
    );
    configure(
        &b,
        &Spec {
            neighbors: vec![(a.clone(), false)],
            ..Spec::default()
        },
    );
    let mut pa = Proc::start(&a);
    let mut pb = Proc::start(&b);
    wait_for("b to learn a's routes", Duration::from_secs(30), || {
        (pb.route("a/tool").is_some() && pb.route("a/other").is_some()).then_some(())
    });
    pb.terminate();
    pa.terminate();
    assert_eq!(stored_from(&b.dir, &a.peer_id).len(), 2, "stored");

    // a restarted with the same key but b now pins it to another ASN.
    let mut moved = a.clone();
    moved.asn = a.asn.wrapping_add(1);
    configure(
        &b,
        &Spec {
            neighbors: vec![(moved, false)],
            ..Spec::default()
        },
    );
    let pb = Proc::start(&b);
    wait_for("b's admin API", Duration::from_secs(30), || {
        pb.try_get("/v1/status")
    });
    assert!(
        pb.route("a/tool").is_none() && pb.route("a/other").is_none(),
        "routes that no longer verify are not restored: {:?}",
        pb.routes()
    );
    assert!(
        pb.log_tail(400).contains("no longer verify"),
        "the log says why"
    );
    drop(pb);
    assert!(
        stored_from(&b.dir, &a.peer_id).is_empty(),
        "and they are gone from the store"
    );
}
