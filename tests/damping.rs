//! Flap damping across real `abgp` processes: an agent on C added and
//! removed over and over (`abgp agent add/remove --config`) is suppressed at
//! A, which shows it in `/v1/why`, and used again once its penalty decays.
//!
//! ```text
//!   A ([damping] on, small parameters) ──── C ── agent added and removed
//! ```

// Both helper modules include the port helper; one copy each is harmless.
#![allow(clippy::duplicate_mod)]

mod node_harness;

use std::time::Duration;

use node_harness::{BIN, Proc, Spec, abgp, configure, init, wait_for};
use serde_json::Value;

const PREFIX: &str = "remote/flap/echo";
const CONVERGE: Duration = Duration::from_secs(30);
/// Half-life 10 s: three withdrawals a few seconds apart (~2500) cross
/// 2000 and decay under 1600 within about 7 s.
const DAMPING: &str = "\n[damping]\nenabled = true\nhalf_life = \"10s\"\nsuppress = 2000\nreuse = 1600\nmax_suppress = \"1m\"\n";

/// A's paths for the prefix as `/v1/why` shows them.
fn paths(a: &Proc) -> Vec<Value> {
    a.try_get(&format!("/v1/why?prefix={PREFIX}"))
        .and_then(|v| v["paths"].as_array().cloned())
        .unwrap_or_default()
}

fn agent(args: &[&str]) {
    let (ok, out, err) = abgp(args);
    assert!(ok, "abgp {args:?}: {err}{out}");
}

#[test]
fn a_flapping_agent_is_suppressed_then_reused() {
    let root = tempfile::tempdir().unwrap();
    let a = init(root.path(), "A", "test");
    let c = init(root.path(), "C", "test");
    assert_ne!(a.asn, c.asn, "A and C must be in different ASes");
    configure(
        &a,
        &Spec {
            hold: 30,
            neighbors: vec![(c.clone(), false)],
            extra: DAMPING.into(),
            ..Default::default()
        },
    );
    configure(
        &c,
        &Spec {
            hold: 30,
            neighbors: vec![(a.clone(), false)],
            ..Default::default()
        },
    );
    let pa = Proc::start(&a);
    let _pc = Proc::start(&c);
    let cfg = c.dir.join("node.toml");
    let cfg = cfg.to_str().unwrap();
    let add = [
        "agent",
        "add",
        "--config",
        cfg,
        "--id",
        "flappy",
        "--prefix",
        "remote/flap/*",
        "--command",
        BIN,
        "--arg",
        "example-agent",
    ];
    let remove = ["agent", "remove", "--config", cfg, "flappy"];
    // Flap until A suppresses it: the third withdrawal does when the flaps
    // come a few seconds apart; a slow machine may need a few more.
    let mut flaps = 0;
    let p = loop {
        agent(&add);
        let p = wait_for(
            &format!("A to hear the agent ({flaps} flaps)"),
            CONVERGE,
            || {
                paths(&pa)
                    .first()
                    .filter(|p| p["status"] == "best" || p["reason"] == "damped")
                    .cloned()
            },
        );
        if p["reason"] == "damped" {
            break p;
        }
        assert!(flaps < 8, "not suppressed after {flaps} flaps: {p}");
        agent(&remove);
        wait_for(
            &format!("A to hear the withdrawal ({flaps})"),
            CONVERGE,
            || paths(&pa).is_empty().then_some(()),
        );
        flaps += 1;
    };
    assert!(flaps >= 3, "suppressed after {flaps} flaps: {p}");
    assert_eq!(p["status"], "excluded", "{p}");
    assert_eq!(p["damping"]["suppressed"], true, "{p}");
    assert!(p["damping"]["penalty"].as_u64().unwrap() > 2000, "{p}");
    assert!(p["damping"]["reuse_at"].as_u64().is_some(), "{p}");
    assert!(
        pa.route(PREFIX).is_none(),
        "a suppressed path is not in the Loc-RIB"
    );
    // The node wakes itself at the reuse time: the path comes back.
    let p = wait_for("A to reuse the path", CONVERGE, || {
        paths(&pa)
            .first()
            .filter(|p| p["status"] == "best")
            .cloned()
    });
    assert_eq!(p["damping"]["suppressed"], false, "{p}");
    assert!(pa.route(PREFIX).is_some());
}
