//! The design seed's two networks as runnable examples: `examples/corporate/run.sh`
//! and `examples/multi-cloud/run.sh` start their nodes (real `abgp` processes
//! on loopback), check every policy their README describes and stop them.
//! These tests run each script with the binary under test and require it to
//! pass every check; on failure they print the script's whole output (its
//! PASS/FAIL lines and the tail of every node's log).

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_abgp");

/// A script that has not finished by then is stopped (SIGTERM: its trap
/// stops the nodes) and the test fails. Each takes 12 to 25 s on 2 cores.
const DEADLINE: Duration = Duration::from_secs(150);

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Runs `examples/NAME/run.sh` with `ABGP` set to the binary under test;
/// returns its exit status and its stdout and stderr together.
fn run(name: &str) -> (Option<i32>, String) {
    let script = repo().join("examples").join(name).join("run.sh");
    let mut child = Command::new("bash")
        .arg(&script)
        .env("ABGP", BIN)
        .env_remove("KEEP")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("start {}: {e}", script.display()));
    let reader = |mut r: Box<dyn Read + Send>| {
        std::thread::spawn(move || {
            let mut s = String::new();
            let _ = r.read_to_string(&mut s);
            s
        })
    };
    let out = reader(Box::new(child.stdout.take().expect("piped stdout")));
    let err = reader(Box::new(child.stderr.take().expect("piped stderr")));
    let start = Instant::now();
    let status = loop {
        if let Some(s) = child.try_wait().expect("wait for the script") {
            break s.code();
        }
        if start.elapsed() > DEADLINE {
            let _ = Command::new("kill")
                .args(["-TERM", &child.id().to_string()])
                .status();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let text = format!(
        "{}{}",
        out.join().unwrap_or_default(),
        err.join().unwrap_or_default()
    );
    eprintln!("{name}: {:.1} s", start.elapsed().as_secs_f64());
    (status, text)
}

/// The script exited 0, reported PASS lines and no FAIL line, and its
/// summary says nothing failed.
fn assert_passed(name: &str, min_checks: usize) {
    let (status, text) = run(name);
    let passed = text.lines().filter(|l| l.starts_with("PASS: ")).count();
    let failed: Vec<&str> = text.lines().filter(|l| l.starts_with("FAIL")).collect();
    assert!(
        status == Some(0)
            && failed.is_empty()
            && passed >= min_checks
            && text.contains(&format!("== {name}: {passed} passed, 0 failed")),
        "examples/{name}/run.sh: exit {status:?} (None: stopped after {DEADLINE:?}), \
         {passed} PASS lines (want at least {min_checks}), failures {failed:?}\n\
         ---- output ----\n{text}"
    );
}

#[test]
fn the_corporate_network_holds_its_policies() {
    assert_passed("corporate", 26);
}

#[test]
fn the_multi_cloud_federation_holds_its_policies() {
    assert_passed("multi-cloud", 42);
}

/// The corporate example runs the policy files the in-memory scenario
/// (`sim::scenario::corporate`, tests/corporate.rs) loads: the real nodes and
/// the simulated ones are the same network.
#[test]
fn the_corporate_example_runs_the_scenarios_policy_files() {
    let read = |p: &Path| {
        std::fs::read_to_string(p).unwrap_or_else(|e| panic!("read {}: {e}", p.display()))
    };
    for part in ["core", "finance", "engineering"] {
        let example = repo().join(format!("examples/corporate/policies/{part}.toml"));
        let scenario = repo().join(format!("examples/policies/corporate-{part}.toml"));
        assert_eq!(
            read(&example),
            read(&scenario),
            "{} and {} must be the same file",
            example.display(),
            scenario.display()
        );
    }
}
