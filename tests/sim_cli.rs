//! `abgp sim` end to end: a small hierarchy through every event under both
//! protocols, JSON that parses, the same figures in two runs, the expected
//! routing reached (exit 0), and clear refusals of bad arguments (exit 2).

use std::process::Command;

use serde_json::Value;

fn sim(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_abgp"))
        .arg("sim")
        .args(args)
        .output()
        .expect("abgp runs");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// The figures of a run, without what depends on the machine.
fn figures(json: &str) -> Value {
    let mut v: Value = serde_json::from_str(json).expect("JSON");
    for r in v["runs"].as_array_mut().expect("runs") {
        let r = r.as_object_mut().expect("a run");
        for k in ["wall_ms", "wall", "peak_rss_kib", "rss_kib"] {
            r.remove(k);
        }
    }
    v
}

#[test]
fn a_small_hierarchy_through_every_event_is_deterministic_and_correct() {
    let args = [
        "--nodes",
        "60",
        "--origins",
        "10",
        "--events",
        "all",
        "--jitter-ms",
        "3",
        "--loss",
        "0.02",
        "--json",
        "--trace",
    ];
    let (code, out, err) = sim(&args);
    assert_eq!(code, 0, "{err}");
    let v = figures(&out);
    let runs = v["runs"].as_array().expect("runs");
    assert_eq!(runs.len(), 2, "both protocols");
    for r in runs {
        assert_eq!(r["setup"]["mismatches"], 0);
        let events = r["events"].as_array().expect("events");
        assert_eq!(events.len(), 10);
        for e in events {
            assert_eq!(e["mismatches"], 0, "{e}");
            assert!(e["updates"].as_u64().is_some());
        }
        assert!(r["trace_digest"].is_string());
    }
    let withdraw = |p: usize| {
        runs[p]["events"]
            .as_array()
            .and_then(|e| e.iter().find(|e| e["event"] == "withdraw"))
            .and_then(|e| e["time_ms"].as_u64())
            .expect("a withdrawal")
    };
    assert!(withdraw(0) * 10 <= withdraw(1), "classic BGP is slower");
    let (_, again, _) = sim(&args);
    assert_eq!(figures(&again), v, "the same arguments, the same run");
    // The human table names every event and the ratios.
    let (code, table, _) = sim(&["--nodes", "40", "--origins", "5"]);
    assert_eq!(code, 0);
    assert!(
        table.contains("withdraw") && table.contains("classic / agent-bgp"),
        "{table}"
    );
}

#[test]
fn bad_arguments_are_refused_clearly() {
    for (args, says) in [
        (vec!["--topology", "moon"], "unknown topology"),
        (vec!["--events", "explode"], "unknown event"),
        (vec!["--protocol", "ospf"], "unknown protocol"),
        (vec!["--loss", "0.9"], "--loss"),
        (vec!["--topology", "edges"], "--edges FILE"),
        (
            vec!["--topology", "er", "--nodes", "50", "--er-p", "0.0"],
            "not connected",
        ),
        (vec!["--signature-check-us", "30"], "--signatures"),
        (
            vec!["--signatures", "--signature-check-us=-1"],
            "between 0 and 1,000,000",
        ),
    ] {
        let (code, _, err) = sim(&args);
        assert_ne!(code, 0, "{args:?}");
        assert!(err.contains(says), "{args:?}: {err}");
    }
    let dir = tempfile::tempdir().expect("a temp dir");
    let f = dir.path().join("edges.txt");
    std::fs::write(&f, "1|2|-1\n2|x|0\n").expect("written");
    let (code, _, err) = sim(&["--topology", "edges", "--edges", f.to_str().expect("utf-8")]);
    assert_ne!(code, 0);
    assert!(err.contains("line 2"), "{err}");
    // A valid file runs.
    std::fs::write(&f, "# a|b|rel\n1|2|-1\n1|3|-1\n2|3|0\n3|4|-1\n2|4|-1\n").expect("written");
    let (code, out, err) = sim(&[
        "--topology",
        "edges",
        "--edges",
        f.to_str().expect("utf-8"),
        "--origins",
        "1",
        "--json",
    ]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(figures(&out)["nodes"], 4);
}

#[test]
fn a_run_with_signature_checks_reruns_the_same_at_its_recorded_cost() {
    // The measured cost differs between runs, and so do the figures; the
    // JSON records it, and giving it back reproduces the run.
    let base = ["--nodes", "60", "--origins", "10", "--json", "--signatures"];
    let (code, first, err) = sim(&base);
    assert_eq!(code, 0, "{err}");
    let first = figures(&first);
    let us = first["signature_check_us"]
        .as_f64()
        .expect("the cost is recorded");
    let us = us.to_string();
    let pinned: Vec<&str> = base
        .iter()
        .copied()
        .chain(["--signature-check-us", &us])
        .collect();
    let (code, again, err) = sim(&pinned);
    assert_eq!(code, 0, "{err}");
    assert_eq!(figures(&again), first, "the same cost, the same run");
}
