//! Derived ASNs that collide, across real `abgp` processes.
//!
//! The colliding keys are real: two pairs of ed25519 seeds whose keys derive
//! the same ASN, found by a birthday search (SHA-256("collision" || i), i <
//! 12,286, and SHA-256("collision-b" || i), i < 18,361). No test-only
//! derivation hook and no forged binding: every certificate here is the
//! ordinary derived certificate the node makes for its own key.
//!
//! - A stranger whose key derives our own ASN is refused at OPEN (it is not
//!   an internal peer), counted and alerted on.
//! - The first key seen for a derived ASN holds it across a restart; a
//!   second key deriving it is refused until the operator runs
//!   `abgp trust rekey`, after which that key peers.

// Both helper modules include the port helper; one copy each is harmless.
#![allow(clippy::duplicate_mod)]

mod node_harness;

use std::path::Path;
use std::time::Duration;

use agent_bgp::identity::{NodeKey, derive_asn, peer_id_of};
use node_harness::*;

const CONVERGE: Duration = Duration::from_secs(30);

/// Keys deriving AS4274475037.
const PAIR_A: [&str; 2] = [
    "dd6e999e9a9231916da3d883bef48e1e7ad9d0f661fcc158454ef27b1685098c",
    "8fbb1b3c68f13635bc54e02f39307cf284ced7a07df68fdc034deb2d242ce4b1",
];
/// Keys deriving AS4205601013.
const PAIR_B: [&str; 2] = [
    "a29608ed577eb0dc795ae9d4dca44a956123da9653cab8df937374e1c0e0b908",
    "1f8015d7bead071e174da8ffd69af318568124708f4092af4c653d28c3b1390c",
];

/// A node directory (made by `abgp init`) whose key is replaced by the one
/// from `seed_hex`, before the node ever ran.
fn node_with_key(root: &Path, name: &str, seed_hex: &str) -> NodeDir {
    let mut nd = init(root, name, "test");
    let mut seed = [0u8; 32];
    hex::decode_to_slice(seed_hex, &mut seed).unwrap();
    let key = NodeKey::from_seed(&seed);
    let path = nd.dir.join("node.key");
    std::fs::remove_file(&path).unwrap();
    {
        use std::io::Write;
        use std::os::unix::fs::OpenOptionsExt;
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&path)
            .unwrap();
        write!(f, "agent-bgp node key v1\ned25519 {seed_hex}\n").unwrap();
    }
    let id = key.node_id();
    nd.node_id = id.to_string();
    nd.peer_id = peer_id_of(&id).to_string();
    nd.asn = derive_asn(&id).0;
    nd
}

/// `b` dials `a` (a configured neighbour on `b`'s side only; `a` takes it
/// as an inbound peer, so its binding is the derived one, not a pin).
fn dialer(b: &NodeDir, a: &NodeDir) {
    configure(
        b,
        &Spec {
            neighbors: vec![(a.clone(), false)],
            ..Spec::default()
        },
    );
}

#[test]
fn a_stranger_whose_key_derives_our_own_asn_is_refused_and_alerted_on() {
    let root = tempfile::tempdir().unwrap();
    let a = node_with_key(root.path(), "a", PAIR_A[0]);
    let b = node_with_key(root.path(), "b", PAIR_A[1]);
    assert_eq!(a.asn, b.asn, "the fixture keys derive the same ASN");
    assert_ne!(a.node_id, b.node_id);
    configure(&a, &Spec::default());
    dialer(&b, &a);
    let pa = Proc::start(&a);
    let pb = Proc::start(&b);
    wait_for("A to refuse B's OPEN as a collision", CONVERGE, || {
        (pa.metric("abgp_asn_key_conflicts_total")? >= 1.0).then_some(())
    });
    let err = wait_for("B to be told why", CONVERGE, || {
        pb.peer(&a.peer_id)?["last_error"]
            .as_str()
            .filter(|e| e.contains("own derived ASN"))
            .map(str::to_string)
    });
    assert!(err.contains("not an internal peer"), "{err}");
    assert!(!pa.established_with(&b.peer_id));
    assert!(
        pa.get("/v1/routes")
            .as_array()
            .is_some_and(|r| r.is_empty()),
        "nothing learned from the stranger"
    );
    assert!(
        pa.log_tail(400)
            .contains("ALERT: a second key claims a derived ASN"),
        "the refusal is alerted on in the log"
    );
}

#[test]
fn the_first_key_seen_holds_a_derived_asn_across_a_restart_until_a_rekey() {
    let root = tempfile::tempdir().unwrap();
    let a = init(root.path(), "a", "test");
    let first = node_with_key(root.path(), "first", PAIR_B[0]);
    let second = node_with_key(root.path(), "second", PAIR_B[1]);
    assert_eq!(first.asn, second.asn);
    configure(
        &a,
        &Spec {
            originate: vec!["tools/a/*".into()],
            ..Spec::default()
        },
    );
    dialer(&first, &a);
    dialer(&second, &a);

    let mut pa = Proc::start(&a);
    let mut p1 = Proc::start(&first);
    wait_for("the first key to peer with A", CONVERGE, || {
        pa.established_with(&first.peer_id).then_some(())
    });
    let known = pa.get("/v1/trust/asns");
    let rows = known.as_array().expect("a list");
    assert!(
        rows.iter()
            .any(|r| r["asn"] == first.asn && r["node"] == first.node_id.as_str()),
        "{known}"
    );
    p1.terminate();

    // The record is durable: A restarts and still holds the ASN to it.
    pa.terminate();
    let pa = Proc::start(&a);
    let _p2 = Proc::start(&second);
    wait_for("A to refuse the second key", CONVERGE, || {
        (pa.metric("abgp_asn_key_conflicts_total")? >= 1.0).then_some(())
    });
    assert!(!pa.established_with(&second.peer_id));
    let log = pa.log_tail(400);
    assert!(
        log.contains(&format!("abgp trust rekey {}", first.asn)),
        "the refusal tells the operator how to accept a re-key:\n{log}"
    );

    // `abgp trust list` shows the holder; `abgp trust rekey` hands the ASN over.
    let cfg = a.dir.join("node.toml");
    let cfg = cfg.to_str().unwrap();
    let (ok, out, err) = abgp(&["trust", "list", "-c", cfg]);
    assert!(ok, "{err}");
    assert!(out.contains(&first.node_id), "{out}");
    let asn = first.asn.to_string();
    let (ok, out, err) = abgp(&["trust", "rekey", &asn, &second.node_id, "-c", cfg]);
    assert!(ok, "{err}");
    assert!(
        out.contains("held by") && out.contains(&second.node_id),
        "{out}"
    );
    wait_for("the re-keyed AS to peer", CONVERGE, || {
        pa.established_with(&second.peer_id).then_some(())
    });
    // Our own ASN cannot be handed over.
    let own = a.asn.to_string();
    let (ok, _, err) = abgp(&["trust", "rekey", &own, &second.node_id, "-c", cfg]);
    assert!(!ok);
    assert!(err.contains("own ASN"), "{err}");
}
