//! The operator commands (`abgp status|peers|routes|why|tools|call|calls|
//! policy check|completions`) against running nodes: a triangle A, B, C
//! with the example agent on C, so A has two paths to C's tools (direct,
//! and through B) and `why` has a loser to explain.

mod node_harness;

use std::process::Command;
use std::time::Duration;

use node_harness::*;
use serde_json::Value;

const CONVERGE: Duration = Duration::from_secs(60);

struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

fn run(node: &NodeDir, args: &[&str]) -> Run {
    let config = node.dir.join("node.toml");
    let out = Command::new(BIN)
        .args(args)
        .arg("--config")
        .arg(&config)
        .output()
        .expect("run abgp");
    Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into(),
        stderr: String::from_utf8_lossy(&out.stderr).into(),
    }
}

fn ok(node: &NodeDir, args: &[&str]) -> String {
    let r = run(node, args);
    assert_eq!(
        r.code, 0,
        "abgp {args:?} failed ({}): {}{}",
        r.code, r.stdout, r.stderr
    );
    r.stdout
}

fn json(node: &NodeDir, args: &[&str]) -> Value {
    let mut a = args.to_vec();
    a.push("--json");
    let out = ok(node, &a);
    serde_json::from_str(&out).unwrap_or_else(|e| panic!("abgp {a:?}: not JSON ({e}): {out}"))
}

fn agent(prefix: &str) -> String {
    format!(
        r#"
[[agents]]
id = "ex"
prefix = "{prefix}"
command = {BIN:?}
args = ["example-agent"]
"#
    )
}

struct Triangle {
    _root: tempfile::TempDir,
    a: NodeDir,
    b: NodeDir,
    c: NodeDir,
    _procs: Vec<Proc>,
}

fn triangle() -> Triangle {
    let root = tempfile::tempdir().unwrap();
    let a = init(root.path(), "a", "test");
    let b = init(root.path(), "b", "test");
    let c = init(root.path(), "c", "test");
    let spec = |n: Vec<&NodeDir>, extra: String| Spec {
        hold: 30,
        neighbors: n.into_iter().map(|x| (x.clone(), false)).collect(),
        extra,
        ..Spec::default()
    };
    configure(&a, &spec(vec![&b, &c], String::new()));
    configure(&b, &spec(vec![&a, &c], String::new()));
    configure(&c, &spec(vec![&a, &b], agent("ex")));
    let procs = vec![Proc::start(&a), Proc::start(&b), Proc::start(&c)];
    // A has C's echo route directly and through B.
    wait_for("A to hold two paths to ex/echo", CONVERGE, || {
        let v = procs[0].try_get("/v1/why?prefix=ex/echo")?;
        (v["paths"].as_array()?.len() == 2).then_some(())
    });
    wait_for(
        "A's front to list echo with its descriptor",
        CONVERGE,
        || {
            let v = procs[0].try_get("/v1/tools")?;
            v.as_array()?
                .iter()
                .any(|t| t["name"] == "echo" && t["descriptor_missing"] == false)
                .then_some(())
        },
    );
    Triangle {
        _root: root,
        a,
        b,
        c,
        _procs: procs,
    }
}

#[test]
fn operator_commands_against_a_running_triangle() {
    let t = triangle();
    let (a, b, c) = (&t.a, &t.b, &t.c);

    // status
    let s = ok(a, &["status"]);
    assert!(s.contains(&format!("AS{}", a.asn)), "{s}");
    assert!(s.contains("2 established of 2"), "{s}");
    let sj = json(a, &["status"]);
    assert_eq!(sj["status"]["asn"], a.asn);
    assert!(sj["mcp"]["url"].is_string(), "{sj}");

    // peers: a table, one peer in full, a peer that is not there
    let p = ok(a, &["peers"]);
    let rows: Vec<&str> = p.lines().filter(|l| l.contains("established")).collect();
    assert_eq!(rows.len(), 2, "{p}");
    assert!(p.contains(&format!("AS{}", b.asn)) && p.contains(&format!("AS{}", c.asn)));
    let pj = json(a, &["peers"]);
    let pc = pj
        .as_array()
        .unwrap()
        .iter()
        .find(|x| x["peer_id"] == c.peer_id.as_str())
        .expect("C in peers");
    assert!(pc["advertised_routes"].as_u64().is_some(), "{pc}");
    assert!(pc["accepted_routes"].as_u64().unwrap() >= 1, "{pc}");
    let one = ok(a, &["peers", &c.peer_id]);
    assert!(one.contains(&c.node_id), "{one}");
    let by_asn = ok(a, &["peers", &format!("AS{}", b.asn)]);
    assert!(by_asn.contains(&b.peer_id), "{by_asn}");
    let missing = run(a, &["peers", "12D3KooWnothere"]);
    assert_eq!(missing.code, 4, "{}{}", missing.stdout, missing.stderr);
    assert!(missing.stderr.contains("no peer"), "{}", missing.stderr);

    // routes: both paths of ex/echo, the direct one best
    let r = ok(a, &["routes", "ex/echo"]);
    let best: Vec<&str> = r.lines().filter(|l| l.starts_with("*>")).collect();
    assert_eq!(best.len(), 1, "{r}");
    assert!(best[0].contains(&format!(" {} ", c.asn)), "{r}");
    assert!(
        r.lines().any(|l| l.starts_with('*')
            && !l.starts_with("*>")
            && l.contains(&format!("{} {}", b.asn, c.asn))),
        "the path through B is listed as a loser: {r}"
    );
    let rj = json(a, &["routes", "ex/echo"]);
    assert_eq!(rj.as_array().unwrap().len(), 2, "{rj}");
    let under = json(a, &["routes", "ex/*", "--longer"]);
    let prefixes: Vec<&str> = under
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|x| x["prefix"].as_str())
        .collect();
    assert!(
        prefixes.contains(&"ex/echo") && prefixes.contains(&"ex/add"),
        "{prefixes:?}"
    );
    assert!(
        prefixes.iter().all(|p| p.starts_with("ex/")),
        "{prefixes:?}"
    );
    let none = run(a, &["routes", "nothing/here"]);
    assert_eq!(none.code, 4, "{}", none.stderr);
    let detail = ok(a, &["routes", "ex/echo", "--detail"]);
    assert!(
        detail.contains("lost: longer AS path (as-path-length)"),
        "{detail}"
    );
    assert!(detail.contains("import       accept by"), "{detail}");
    let rin = ok(a, &["routes", "--in", &c.peer_id]);
    assert!(
        rin.lines()
            .any(|l| l.starts_with('a') && l.contains("ex/echo")),
        "{rin}"
    );
    let rout = json(b, &["routes", "--out", &a.peer_id]);
    assert!(
        rout["routes"]
            .as_array()
            .unwrap()
            .iter()
            .any(|x| x["prefix"] == "ex/echo"),
        "{rout}"
    );

    // why: the step the loser lost at, and the export reasons
    let w = ok(a, &["why", "ex/echo"]);
    assert!(w.contains("best path"), "{w}");
    assert!(w.contains("lost at as-path-length: longer AS path"), "{w}");
    assert!(
        w.contains("import: accept by the configured default"),
        "{w}"
    );
    assert!(w.contains("not advertised: learned from this peer"), "{w}");
    let wb = json(b, &["why", "ex/echo"]);
    let to_a = wb["exports"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["peer"] == a.peer_id.as_str())
        .expect("B's export to A");
    assert_eq!(to_a["advertised"], true, "{wb}");
    assert_eq!(to_a["route"]["as_path"][0], b.asn, "{wb}");
    let by_name = ok(a, &["why", "add"]);
    assert_eq!(json(a, &["why", "add"])["prefix"], "ex/add");
    assert!(
        by_name.starts_with("add is the front's name for ex/add"),
        "{by_name}"
    );
    let unknown = run(a, &["why", "nothing/here"]);
    assert_eq!(unknown.code, 4, "{}", unknown.stderr);

    // tools
    let tl = ok(a, &["tools"]);
    let echo = tl
        .lines()
        .find(|l| l.starts_with("echo "))
        .expect("echo listed");
    assert!(
        echo.contains("ex/echo") && echo.contains(&format!("AS{}", c.asn)),
        "{tl}"
    );
    assert!(echo.contains("Returns its text"), "{tl}");

    // call, with the hops it took
    let out = ok(a, &["call", "add", "--args", r#"{"a": 2, "b": 3}"#]);
    assert!(out.lines().next() == Some("5"), "{out}");
    assert!(out.contains("hops (this node first):"), "{out}");
    assert!(out.contains(&format!("AS{} origin", c.asn)), "{out}");
    let cj = json(a, &["call", "echo", "--args", r#"{"text": "hi"}"#]);
    assert_eq!(cj["structuredContent"]["text"], "hi", "{cj}");
    let bad = run(a, &["call", "echo", "--args", "[1]"]);
    assert_eq!(bad.code, 1, "{}", bad.stderr);
    let absent = run(a, &["call", "no_such_tool"]);
    assert_eq!(absent.code, 4, "not found: {}", absent.stderr);
    assert!(absent.stderr.contains("no_such_tool"), "{}", absent.stderr);

    // calls: nothing in flight now; then a slow call while it runs
    let calls = json(a, &["calls"]);
    assert_eq!(calls["in_flight"], serde_json::json!([]), "{calls}");
    let text = ok(a, &["calls"]);
    assert!(text.starts_with("in flight (0):"), "{text}");
    let mut slow = Command::new(BIN)
        .args(["call", "wait", "--args", r#"{"ms": 4000}"#, "--config"])
        .arg(a.dir.join("node.toml"))
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let seen = wait_for("the slow call in flight at A", CONVERGE, || {
        let v = json(a, &["calls"]);
        let f = v["in_flight"].as_array()?.first()?.clone();
        Some(f)
    });
    assert_eq!(seen["target"], "ex/wait", "{seen}");
    assert_eq!(seen["from"], Value::Null, "from the front");
    assert_eq!(seen["to"], c.peer_id.as_str(), "to C, the best path");
    let text = ok(a, &["calls"]);
    assert!(
        text.lines()
            .any(|l| l.contains("ex/wait") && l.contains("front") && l.contains(&c.peer_id[..8])),
        "{text}"
    );
    assert!(slow.wait().unwrap().success());
    let calls = json(a, &["calls"]);
    let recent = calls["recent"].as_array().expect("recent calls");
    let done = recent
        .iter()
        .find(|r| r["target"] == "ex/wait")
        .unwrap_or_else(|| panic!("the slow call among the recent: {calls}"));
    assert_eq!(done["outcome"], "ok", "{done}");
    assert_eq!(done["trace_id"].as_str().map(str::len), Some(32), "{done}");
    let hops: Vec<u64> = done["trace"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|h| h["asn"].as_u64())
        .collect();
    assert_eq!(
        hops,
        vec![u64::from(c.asn), u64::from(a.asn)],
        "origin first: {done}"
    );
    let text = ok(a, &["calls"]);
    let line = text
        .lines()
        .find(|l| l.contains("ex/wait"))
        .unwrap_or_else(|| panic!("{text}"));
    assert!(
        line.contains(&format!("AS{} ", a.asn)) && line.contains(&format!("> AS{} ", c.asn)),
        "hops caller first: {line}"
    );

    // policy check: a deny-all dry run shows what would go
    let deny = a.dir.join("deny.toml");
    std::fs::write(
        &deny,
        "[[apply]]\nneighbors = [\"*\"]\ndefault-import = \"reject\"\ndefault-export = \"reject\"\n",
    )
    .unwrap();
    let pc = json(a, &["policy", "check", deny.to_str().unwrap()]);
    assert_eq!(pc["valid"], true, "{pc}");
    let routes_in: u64 = pj
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["accepted_routes"].as_u64().unwrap())
        .sum();
    assert_eq!(pc["import"]["rejected"], routes_in, "{pc}");
    assert_eq!(pc["import"]["accepted"], 0, "{pc}");
    let human = ok(a, &["policy", "check", deny.to_str().unwrap()]);
    assert!(human.contains("newly rejected"), "{human}");
    assert!(
        human
            .lines()
            .any(|l| l.starts_with("import") && l.contains("rejected") && l.contains("ex/echo")),
        "{human}"
    );
}

#[test]
fn policy_check_reports_errors_and_lints_without_a_node() {
    let root = tempfile::tempdir().unwrap();
    let n = init(root.path(), "n", "test");
    let broken = root.path().join("broken.toml");
    std::fs::write(&broken, "[[apply]]\nneighbors = []\n").unwrap();
    let r = run(&n, &["policy", "check", broken.to_str().unwrap()]);
    assert_eq!(r.code, 1, "{}{}", r.stdout, r.stderr);
    let first = r.stdout.lines().next().unwrap_or("");
    assert!(
        first.starts_with("error: ") && first.contains("broken.toml:2:"),
        "an error with file:line: {}",
        r.stdout
    );

    let lint = root.path().join("lint.toml");
    std::fs::write(
        &lint,
        r#"[[policy]]
name = "never-used"

  [[policy.statement]]
  name = "all"
  then = { verdict = "accept" }

  [[policy.statement]]
  name = "late"
  then = { verdict = "reject" }
"#,
    )
    .unwrap();
    let r = run(
        &n,
        &["policy", "check", "--offline", lint.to_str().unwrap()],
    );
    assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
    let expected = format!(
        "warning[no-apply]: no [[apply]] entry: every peer gets the RFC 8212 defaults (internal peers accept, external peers exchange nothing)
warning[unused-policy]: policy \"never-used\" is defined but no [[apply]] uses it
warning[unreachable-statement]: policy \"never-used\", statement \"late\" is never reached: statement \"all\" before it matches every route and decides
{}: valid (3 warnings)
",
        lint.display()
    );
    assert_eq!(r.stdout, expected);
}

#[test]
fn commands_say_when_the_node_is_not_running() {
    let root = tempfile::tempdir().unwrap();
    let n = init(root.path(), "n", "test");
    configure(&n, &Spec::default());
    for args in [
        &["status"][..],
        &["peers"],
        &["routes"],
        &["why", "x/*"],
        &["tools"],
        &["calls"],
    ] {
        let r = run(&n, args);
        assert_eq!(r.code, 3, "abgp {args:?}: {}{}", r.stdout, r.stderr);
        assert!(
            r.stderr.contains("is `abgp run` up?"),
            "abgp {args:?}: {}",
            r.stderr
        );
    }
    let missing = Command::new(BIN)
        .args(["status", "--config", "/nonexistent/node.toml"])
        .output()
        .unwrap();
    assert_eq!(missing.status.code(), Some(3));
    assert!(String::from_utf8_lossy(&missing.stderr).contains("/nonexistent/node.toml"));
}

#[test]
fn completions_are_generated_for_the_common_shells() {
    for shell in ["bash", "zsh", "fish"] {
        let out = Command::new(BIN)
            .args(["completions", shell])
            .output()
            .unwrap();
        assert!(out.status.success(), "{shell}");
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(
            text.contains("abgp") && text.contains("why"),
            "{shell}: {text}"
        );
    }
}

#[test]
fn the_explaining_endpoints_refuse_hostile_requests() {
    let root = tempfile::tempdir().unwrap();
    let n = init(root.path(), "n", "test");
    configure(&n, &Spec::default());
    let p = Proc::start(&n);
    let hp = p.admin_hostport().to_string();
    let auth = format!("Bearer {}", admin_token(&n.dir));
    let json_headers = [
        ("Authorization", auth.as_str()),
        ("Content-Type", "application/json"),
    ];
    let get = |path: &str| raw_http(&hp, "GET", path, &[("Authorization", &auth)], None).unwrap();
    // No token: refused before anything is parsed.
    let (code, _) = raw_http(&hp, "GET", "/v1/why?prefix=x/*", &[], None).unwrap();
    assert_eq!(code, 401);
    let (code, _) = raw_http(
        &hp,
        "POST",
        "/v1/policy/check",
        &[("Content-Type", "application/json")],
        Some(r#"{"policy": ""}"#),
    )
    .unwrap();
    assert_eq!(code, 401);
    // A foreign origin: refused.
    let (code, _) = raw_http(
        &hp,
        "GET",
        "/v1/tools",
        &[("Authorization", &auth), ("Origin", "https://evil.example")],
        None,
    )
    .unwrap();
    assert_eq!(code, 403);
    // Malformed queries and prefixes.
    assert_eq!(get("/v1/why").0, 400);
    assert_eq!(get("/v1/why?prefix=").0, 400);
    let (code, body) = get("/v1/why?prefix=%00%ff%2F%2F");
    assert_eq!(code, 400, "{body}");
    let long = format!("/v1/why?prefix={}", "a".repeat(60_000));
    assert!(
        matches!(get(&long).0, 400 | 414 | 431),
        "an over-long prefix"
    );
    assert_eq!(get("/v1/why?prefix=nothing/*").0, 404);
    // Bodies that are not the policy check's shape.
    for body in [
        "not json",
        "[]",
        r#"{"policy": 5}"#,
        r#"{"policy": "", "extra": 1}"#,
    ] {
        let (code, text) =
            raw_http(&hp, "POST", "/v1/policy/check", &json_headers, Some(body)).unwrap();
        assert_eq!(code, 400, "{body}: {text}");
    }
    // A policy that does not compile is an answer, not a failure.
    let (code, text) = raw_http(
        &hp,
        "POST",
        "/v1/policy/check",
        &json_headers,
        Some(r#"{"policy": "[[apply]]\nneighbors = 7\n", "file": "x.toml"}"#),
    )
    .unwrap();
    assert_eq!(code, 200, "{text}");
    let v: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(v["valid"], false);
    assert!(
        v["errors"][0].as_str().unwrap().starts_with("x.toml:2:"),
        "{v}"
    );
    // Over the 1 MiB bound.
    let big = format!(r#"{{"policy": "{}"}}"#, "#".repeat(1024 * 1024 + 10));
    let (code, _) = raw_http(&hp, "POST", "/v1/policy/check", &json_headers, Some(&big)).unwrap();
    assert_eq!(code, 413);
    // The node is still fine.
    assert_eq!(get("/v1/status").0, 200);
}

#[test]
fn call_goes_through_a_front_view_with_its_token() {
    let root = tempfile::tempdir().unwrap();
    let n = init(root.path(), "n", "test");
    let extra = format!(
        "{}\n[[mcp.views]]\nname = \"adds\"\nprefixes = [\"ex/add\"]\n",
        agent("ex")
    );
    // The view sits in [mcp]; the agent entry after it would land inside
    // the view's table, so the agent goes first.
    configure(
        &n,
        &Spec {
            extra,
            ..Spec::default()
        },
    );
    let p = Proc::start(&n);
    wait_for("the agent's tools at the front", CONVERGE, || {
        let v = p.try_get("/v1/tools")?;
        (v.as_array()?.len() >= 2).then_some(())
    });
    let out = ok(
        &n,
        &[
            "call",
            "add",
            "--view",
            "adds",
            "--args",
            r#"{"a": 1, "b": 2}"#,
        ],
    );
    assert_eq!(out.lines().next(), Some("3"), "{out}");
    let outside = run(
        &n,
        &[
            "call",
            "echo",
            "--view",
            "adds",
            "--args",
            r#"{"text": "x"}"#,
        ],
    );
    assert_ne!(
        outside.code, 0,
        "echo is outside the view: {}",
        outside.stdout
    );
    assert!(outside.stderr.contains("echo"), "{}", outside.stderr);
    let listed = json(&n, &["tools", "--view", "adds"]);
    let names: Vec<&str> = listed
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|t| t["name"].as_str())
        .collect();
    assert!(
        names.contains(&"add") && !names.contains(&"echo"),
        "{names:?}"
    );
    assert!(
        names.contains(&"find_agents"),
        "the meta tools too: {names:?}"
    );
    let human = ok(&n, &["tools", "--view", "adds"]);
    assert!(human.lines().any(|l| l.starts_with("add ")), "{human}");
    let status = ok(&n, &["status"]);
    assert!(status.contains("views      adds (full)"), "{status}");
    let mcp = json(&n, &["status"])["mcp"].clone();
    assert_eq!(mcp["views"][0]["name"], "adds", "{mcp}");
    assert!(
        mcp["views"][0]["url"]
            .as_str()
            .unwrap()
            .ends_with("/mcp/adds"),
        "{mcp}"
    );
    assert!(
        !mcp.to_string().contains(
            &std::fs::read_to_string(n.dir.join("mcp-adds.token"))
                .unwrap()
                .trim()
                .to_string()
        ),
        "the view's token is never shown"
    );
    let none = run(&n, &["call", "add", "--view", "nosuch"]);
    assert_eq!(none.code, 4, "{}", none.stderr);
    assert!(none.stderr.contains("views: adds"), "{}", none.stderr);
}

#[test]
fn a_policy_reload_puts_a_new_file_in_force_and_a_broken_one_changes_nothing() {
    let root = tempfile::tempdir().unwrap();
    let a = init(root.path(), "a", "test");
    let b = init(root.path(), "b", "test");
    configure(
        &a,
        &Spec {
            hold: 30,
            neighbors: vec![(b.clone(), false)],
            originate: vec!["tools/a/*".into()],
            ..Spec::default()
        },
    );
    configure(
        &b,
        &Spec {
            hold: 30,
            neighbors: vec![(a.clone(), false)],
            ..Spec::default()
        },
    );
    let pa = Proc::start(&a);
    let pb = Proc::start(&b);
    wait_for("B to learn A's route", CONVERGE, || pb.route("tools/a/*"));
    let policy = a.dir.join("policy.toml");
    let open = std::fs::read_to_string(&policy).unwrap();
    let since = |p: &Proc, peer: &NodeDir| {
        p.peer(&peer.peer_id).expect("peer")["established_since"].clone()
    };
    let (a_since, b_since) = (since(&pa, &b), since(&pb, &a));
    assert!(a_since.is_u64(), "{a_since}");

    // A broken file: refused with its error, nothing changes.
    std::fs::write(&policy, "[[apply]]\nneighbors = 5\n").unwrap();
    let r = run(&a, &["policy", "reload"]);
    assert_eq!(r.code, 1, "{}{}", r.stdout, r.stderr);
    assert!(r.stderr.contains("policy.toml:2:"), "{}", r.stderr);
    assert!(r.stderr.contains("unchanged"), "{}", r.stderr);
    assert!(pb.route("tools/a/*").is_some(), "B still has A's route");

    // Deny export: B loses A's route; the answer says what went.
    std::fs::write(
        &policy,
        "[[apply]]\nneighbors = [\"*\"]\ndefault-import = \"accept\"\ndefault-export = \"reject\"\n",
    )
    .unwrap();
    let v = json(&a, &["policy", "reload"]);
    assert_eq!(v["export"]["rejected"], 1, "{v}");
    wait_for("B to lose A's route", CONVERGE, || {
        pb.route("tools/a/*").is_none().then_some(())
    });
    let why = json(&a, &["why", "tools/a/*"]);
    assert_eq!(why["exports"][0]["reason"], "policy", "{why}");

    // SIGHUP with the open file back: B has it again.
    std::fs::write(&policy, open).unwrap();
    let rc = unsafe { libc::kill(pa.pid() as i32, libc::SIGHUP) };
    assert_eq!(rc, 0);
    wait_for("B to learn A's route again", CONVERGE, || {
        pb.route("tools/a/*")
    });
    assert!(pa.status()["peers"]["established"] == 1, "A kept running");
    assert_eq!(
        (since(&pa, &b), since(&pb, &a)),
        (a_since, b_since),
        "two reloads and no session was reset"
    );

    // A node without a policy file says so.
    let c = init(root.path(), "c", "test");
    configure(
        &c,
        &Spec {
            policy: None,
            ..Spec::default()
        },
    );
    let _pc = Proc::start(&c);
    let r = run(&c, &["policy", "reload"]);
    assert_eq!(r.code, 1, "{}", r.stderr);
    assert!(r.stderr.contains("no [policy] file"), "{}", r.stderr);
}
