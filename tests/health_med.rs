//! Health as MED across real `abgp` processes: the same agent hosted on two
//! origins, a remote node choosing between them.
//!
//! ```text
//!   O1 (AS x) ── example agent "svc" ──┐
//!                                       R (AS z): two paths to svc/wait
//!   O2 (AS y) ── example agent "svc" ──┘
//! ```
//!
//! The agent on R's best origin is made slow (a `wait` call of 1.5 s at its
//! own front): its origin's MED rises past the band and R's best path moves
//! to the healthy origin at the MED step. A burst of slower calls right
//! after does not re-advertise inside the minimum interval (the UPDATEs R
//! received from the slow origin stay as they were, the origin shows the
//! change pending), and exactly one re-advertisement follows once the
//! interval has passed.

// Both helper modules include the port helper; one copy each is harmless.
#![allow(clippy::duplicate_mod)]

mod node_harness;

use std::process::Command;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use node_harness::{BIN, NodeDir, Proc, Spec, configure, init, wait_for};
use serde_json::Value;

const PREFIX: &str = "svc/wait";
const CONVERGE: Duration = Duration::from_secs(30);
const MIN_INTERVAL_MS: u64 = 5_000;

fn origin_extra() -> String {
    format!(
        r#"
[health]
probe_interval = "500ms"
min_interval = "{MIN_INTERVAL_MS}ms"
band_percent = 10
band_min = 20

[[agents]]
id = "svc"
prefix = "svc"
command = {BIN:?}
args = ["example-agent"]
max_concurrent_calls = 8
"#
    )
}

/// R's paths for the prefix, as `/v1/why` shows them.
fn paths(r: &Proc) -> Vec<Value> {
    r.try_get(&format!("/v1/why?prefix={PREFIX}"))
        .and_then(|v| v["paths"].as_array().cloned())
        .unwrap_or_default()
}

/// R's path from the origin with this peer id.
fn path_from(r: &Proc, peer: &str) -> Option<Value> {
    paths(r).into_iter().find(|p| p["peer"] == peer)
}

/// The origin's health report of its agent.
fn health(o: &Proc) -> Option<Value> {
    let agents = o.try_get("/v1/agents")?;
    let a = agents.as_array()?.iter().find(|a| a["id"] == "svc")?;
    a["health"].is_object().then(|| a["health"].clone())
}

/// UPDATEs R received from `peer`, from R's /metrics.
fn updates_from(r: &Proc, peer: &str) -> Option<u64> {
    let auth = format!("Bearer {}", r.token);
    let (code, body) = node_harness::raw_http(
        r.admin_hostport(),
        "GET",
        "/metrics",
        &[("Authorization", &auth)],
        None,
    )
    .ok()?;
    if code != 200 {
        return None;
    }
    let want =
        format!("abgp_peer_messages_total{{peer=\"{peer}\",direction=\"in\",type=\"UPDATE\"}}");
    body.lines().find_map(|l| {
        let v = l.strip_prefix(&want)?;
        v.trim().parse::<f64>().ok().map(|v| v as u64)
    })
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// Starts `abgp call wait {ms}` at `o`'s front.
fn call_wait(o: &NodeDir, ms: u64) -> std::process::Child {
    Command::new(BIN)
        .args([
            "call",
            "wait",
            "--args",
            &format!("{{\"ms\": {ms}}}"),
            "--config",
        ])
        .arg(o.dir.join("node.toml"))
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("run abgp call")
}

fn finish(c: std::process::Child) {
    let out = c.wait_with_output().expect("abgp call");
    assert!(
        out.status.success(),
        "abgp call: {}{}",
        String::from_utf8_lossy(&out.stderr),
        String::from_utf8_lossy(&out.stdout)
    );
}

#[test]
fn a_slow_agent_loses_at_the_med_step_and_re_advertises_at_most_once_per_interval() {
    let root = tempfile::tempdir().unwrap();
    let o1 = init(root.path(), "O1", "test");
    let o2 = init(root.path(), "O2", "test");
    let r = init(root.path(), "R", "test");
    for o in [&o1, &o2] {
        configure(
            o,
            &Spec {
                hold: 30,
                neighbors: vec![(r.clone(), false)],
                extra: origin_extra(),
                ..Default::default()
            },
        );
    }
    configure(
        &r,
        &Spec {
            hold: 30,
            neighbors: vec![(o1.clone(), false), (o2.clone(), false)],
            ..Default::default()
        },
    );
    let p1 = Proc::start(&o1);
    let p2 = Proc::start(&o2);
    let pr = Proc::start(&r);

    // R hears both origins, both with the base MED; the older one is best.
    let best = wait_for("R to hear the agent from both origins", CONVERGE, || {
        let ps = paths(&pr);
        (ps.len() == 2 && ps.iter().all(|p| p["med"] == 0))
            .then(|| ps.into_iter().find(|p| p["status"] == "best"))
            .flatten()
    });
    let (slow, slow_dir, healthy_p, healthy) = if best["peer"] == o1.peer_id {
        (&p1, &o1, &p2, &o2)
    } else {
        (&p2, &o2, &p1, &o1)
    };
    let h = health(slow).expect("the origin reports its agent's health");
    assert_eq!(h["advertised_med"], 0, "{h}");
    assert_eq!(h["med_changes"], 0, "{h}");

    // One 1.5 s call: the call latency EWMA is 1.5 s, 150 points; past the
    // band (20 around 0), re-advertised once the interval since the
    // agent came up has passed.
    finish(call_wait(slow_dir, 1_500));
    let lost = wait_for("R to see the slow origin's higher MED", CONVERGE, || {
        path_from(&pr, &slow_dir.peer_id).filter(|p| p["med"].as_u64().unwrap_or(0) >= 100)
    });
    assert_eq!(lost["status"], "lost", "{lost}");
    assert_eq!(lost["reason"], "med", "the MED step decides: {lost}");
    let best = pr.route(PREFIX).expect("R still has a best path");
    assert_eq!(best["peer"], healthy.peer_id.as_str(), "{best}");
    assert_eq!(best["med"], 0, "{best}");
    let h1 = health(slow).unwrap();
    assert_eq!(h1["med_changes"], 1, "{h1}");
    assert_eq!(lost["med"], h1["advertised_med"], "{h1}");
    let first = updates_from(&pr, &slow_dir.peer_id).expect("R counts UPDATEs from the origin");

    // A burst of slower calls inside the interval: the computed MED moves
    // past the band again, but nothing is sent before next_change_at.
    let next_change_at = h1["next_change_at"].as_u64().unwrap();
    let burst: Vec<_> = (0..6).map(|_| call_wait(slow_dir, 2_500)).collect();
    for c in burst {
        finish(c);
    }
    let pending = wait_for("the burst to be measured", CONVERGE, || {
        health(slow).filter(|h| h["calls"].as_u64() >= Some(7) && h["in_flight"] == 0)
    });
    let now = now_ms();
    assert!(
        now < next_change_at,
        "the burst ended {} ms after the interval (too slow a machine?)",
        now - next_change_at
    );
    assert_eq!(pending["med_changes"], 1, "{pending}");
    assert_eq!(pending["change_pending"], true, "{pending}");
    assert!(
        pending["computed_med"].as_u64() > pending["advertised_med"].as_u64(),
        "{pending}"
    );
    assert_eq!(
        updates_from(&pr, &slow_dir.peer_id),
        Some(first),
        "no UPDATE inside the minimum interval"
    );
    assert_eq!(
        path_from(&pr, &slow_dir.peer_id).unwrap()["med"],
        lost["med"]
    );

    // Once the interval has passed: exactly one more re-advertisement.
    let h2 = wait_for("the second change", CONVERGE, || {
        health(slow).filter(|h| h["med_changes"] == 2)
    });
    let med2 = h2["advertised_med"].as_u64().unwrap();
    assert!(med2 >= 200, "{h2}");
    assert!(
        h2["next_change_at"].as_u64().unwrap() >= next_change_at + MIN_INTERVAL_MS,
        "changes at least min_interval apart: {h1} then {h2}"
    );
    wait_for("R to see the second MED", CONVERGE, || {
        path_from(&pr, &slow_dir.peer_id).filter(|p| p["med"].as_u64() == Some(med2))
    });
    assert_eq!(updates_from(&pr, &slow_dir.peer_id), Some(first + 1));
    assert_eq!(
        pr.route(PREFIX).unwrap()["peer"],
        healthy.peer_id.as_str(),
        "the healthy origin stays best"
    );
    // The healthy origin measured nothing worth advertising.
    let hh = health(healthy_p).unwrap();
    assert_eq!(hh["med_changes"], 0, "{hh}");
    assert!(hh["probes"].as_u64() > Some(0), "probes ran: {hh}");
}
