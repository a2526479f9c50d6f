//! The audit log (`[audit]`) across a chain A - B - C with the example
//! agent on C: calls made through A's front leave one JSON line at every
//! hop, naming A as the caller; arguments only where `log_arguments` is
//! on (B); the files are 0600; C's tiny `max_file_kb` rotates its log,
//! keeping `keep_files` rotated files.

mod node_harness;

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use node_harness::*;
use serde_json::Value;

const CONVERGE: Duration = Duration::from_secs(60);
const CALLS: usize = 6;

fn audit(extra: &str) -> String {
    format!("\n[audit]\nenabled = true\n{extra}\n")
}

/// Every line of the audit file and its rotated files present, oldest
/// first.
fn lines_of(files: &[PathBuf]) -> Vec<Value> {
    files
        .iter()
        .rev()
        .filter_map(|f| std::fs::read_to_string(f).ok())
        .flat_map(|t| {
            t.lines()
                .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{l}: {e}")))
                .collect::<Vec<_>>()
        })
        .collect()
}

fn tool_calls(v: &[Value]) -> Vec<&Value> {
    v.iter().filter(|l| l["op"] == "tools/call").collect()
}

fn files(dir: &Path, n: u32) -> Vec<PathBuf> {
    let mut out = vec![dir.join("audit.jsonl")];
    out.extend((1..=n).map(|i| dir.join(format!("audit.jsonl.{i}"))));
    out
}

#[test]
fn every_hop_logs_each_call_with_its_caller_and_rotates() {
    let root = tempfile::tempdir().unwrap();
    let a = init(root.path(), "A", "test");
    let b = init(root.path(), "B", "test");
    let c = init(root.path(), "C", "test");
    let spec = |n: Vec<&NodeDir>, extra: String| Spec {
        hold: 30,
        neighbors: n.into_iter().map(|x| (x.clone(), false)).collect(),
        extra,
        ..Spec::default()
    };
    let agent = format!(
        "\n[[agents]]\nid = \"ex\"\nprefix = \"ex\"\ncommand = {BIN:?}\nargs = [\"example-agent\"]\n"
    );
    configure(&a, &spec(vec![&b], audit("")));
    configure(&b, &spec(vec![&a, &c], audit("log_arguments = true")));
    configure(
        &c,
        &spec(
            vec![&b],
            format!("{agent}{}", audit("max_file_kb = 1\nkeep_files = 2")),
        ),
    );
    let procs = [Proc::start(&a), Proc::start(&b), Proc::start(&c)];
    wait_for("A's front to list echo", CONVERGE, || {
        let v = procs[0].try_get("/v1/tools")?;
        v.as_array()?
            .iter()
            .any(|t| t["name"] == "echo" && t["descriptor_missing"] == false)
            .then_some(())
    });

    let config = a.dir.join("node.toml");
    for n in 0..CALLS {
        let args = format!(r#"{{"text": "secret-{n}"}}"#);
        let out = Command::new(BIN)
            .args(["call", "echo", "--args", &args, "--config"])
            .arg(&config)
            .output()
            .expect("run abgp call");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    // Each hop writes its line when the call finishes there; C and B
    // finish before A answers, so A's lines are the last to be needed.
    let got = |nd: &NodeDir, rotated: u32, done: &dyn Fn(&[&Value]) -> bool| {
        wait_for("the audit lines of every call", CONVERGE, || {
            let v = lines_of(&files(&nd.dir, rotated));
            done(&tool_calls(&v)).then_some(v)
        })
    };
    let la = got(&a, 0, &|l| l.len() >= CALLS);
    let lb = got(&b, 0, &|l| l.len() >= CALLS);
    let la = tool_calls(&la);
    let lb = tool_calls(&lb);
    assert_eq!(la.len(), CALLS, "one line per call at A");
    assert_eq!(lb.len(), CALLS, "one line per call at B");

    for (ea, eb) in la.iter().zip(&lb) {
        for e in [ea, eb] {
            assert_eq!(e["caller_asn"], a.asn, "{e}");
            assert_eq!(e["caller_node"], a.node_id, "{e}");
            assert_eq!(e["outcome"], "ok", "{e}");
            assert_eq!(e["tool"], "echo", "{e}");
            assert_eq!(e["target"], "ex/echo", "{e}");
            let t = e["time"].as_str().unwrap();
            assert!(t.ends_with('Z') && t.len() == 24, "RFC 3339 UTC ms: {t}");
        }
        assert_eq!(ea["call_id"], eb["call_id"]);
        assert_eq!(ea["trace_id"], eb["trace_id"]);
        // Where it came from and went, and the hops back to here.
        assert!(ea["from"].is_null(), "A: from its front: {ea}");
        assert_eq!(ea["to"], b.peer_id);
        assert_eq!(eb["from"], a.peer_id);
        assert_eq!(eb["to"], c.peer_id);
        let asns = |e: &Value| -> Vec<u64> {
            e["trace"]
                .as_array()
                .unwrap()
                .iter()
                .map(|h| h["asn"].as_u64().unwrap())
                .collect()
        };
        assert_eq!(
            asns(ea),
            vec![u64::from(c.asn), u64::from(b.asn), u64::from(a.asn)]
        );
        assert_eq!(asns(eb), vec![u64::from(c.asn), u64::from(b.asn)]);
        // Arguments: A does not log them; B, a transit AS that wants them
        // logged, only ever sees them sealed to C (docs/security.md,
        // "Sealed payloads").
        assert!(ea.get("arguments").is_none(), "A does not log arguments");
        assert_eq!(eb["arguments"]["sealed"]["to"], c.node_id, "{eb}");
        assert!(eb["arguments"]["sealed"]["bytes"].as_u64().unwrap() > 0);
    }
    for nd in [&a, &b] {
        for f in files(&nd.dir, 0) {
            let text = std::fs::read_to_string(f).unwrap_or_default();
            assert!(!text.contains("secret-"), "no arguments at {}", nd.name);
        }
    }

    // C: a 1 KiB limit rotates at each line; two rotated files kept.
    let last = la.last().unwrap()["call_id"].clone();
    let lc = got(&c, 2, &|l| l.last().is_some_and(|e| e["call_id"] == last));
    let lc = tool_calls(&lc);
    assert!(!lc.is_empty());
    for e in &lc {
        assert_eq!(e["caller_asn"], a.asn);
        assert_eq!(e["agent"], "ex");
        assert!(e["to"].is_null());
        assert!(e.get("arguments").is_none());
    }
    let current = lines_of(&files(&c.dir, 0));
    assert_eq!(
        tool_calls(&current).last().map(|e| e["call_id"].clone()),
        Some(last),
        "the newest call is in C's current file"
    );
    let cf = files(&c.dir, 3);
    assert!(cf[1].exists() && cf[2].exists(), "rotated files kept");
    assert!(!cf[3].exists(), "only keep_files rotated files");
    for f in &cf[..3] {
        let text = std::fs::read_to_string(f).unwrap();
        assert!(
            text.len() <= 1024 || text.lines().count() == 1,
            "{f:?}: {} bytes in {} lines",
            text.len(),
            text.lines().count()
        );
    }

    for f in files(&a.dir, 0)
        .iter()
        .chain(&files(&b.dir, 0))
        .chain(&cf[..3])
    {
        let mode = std::fs::metadata(f).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600, "{f:?}");
    }
}
