//! Helpers shared by the integration tests: where the test agents are, and
//! awaiting with a deadline so that no test can hang.

#![allow(dead_code)] // each test binary uses a different subset

use std::future::Future;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use std::time::Duration;

use agent_bgp::core::AgentId;
use agent_bgp::mcp::ToolDescriptor;
use agent_bgp::mcp::upstream::{AgentEvent, DownReason, SessionId};
use tokio::sync::mpsc;

pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Awaits `fut`, failing the test if it takes longer than `secs`.
pub async fn within<T>(secs: f64, what: &str, fut: impl Future<Output = T>) -> T {
    match tokio::time::timeout(Duration::from_secs_f64(secs), fut).await {
        Ok(v) => v,
        Err(_) => panic!("timed out after {secs}s waiting for {what}"),
    }
}

/// The example agent, built once per test binary with the same profile.
pub fn echo_agent() -> PathBuf {
    static PATH: OnceLock<PathBuf> = OnceLock::new();
    PATH.get_or_init(|| {
        let exe = std::env::current_exe().expect("test executable path");
        // target/<profile>/deps/<test> -> target/<profile>
        let profile_dir = exe
            .parent()
            .and_then(Path::parent)
            .expect("test executable lives in target/<profile>/deps")
            .to_path_buf();
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let mut cmd = Command::new(cargo);
        cmd.current_dir(repo_root())
            .args(["build", "--quiet", "--example", "echo_agent"]);
        if profile_dir.file_name().is_some_and(|n| n == "release") {
            cmd.arg("--release");
        }
        let status = cmd.status().expect("running cargo to build echo_agent");
        assert!(status.success(), "building examples/echo_agent.rs failed");
        let path = profile_dir.join("examples").join("echo_agent");
        assert!(path.exists(), "{} missing after build", path.display());
        path
    })
    .clone()
}

fn installed(rel: &str) -> PathBuf {
    let path = repo_root().join(rel);
    assert!(
        path.exists(),
        "{} is missing: run scripts/install-test-deps.sh (it installs the real MCP servers these tests use)",
        path.display()
    );
    path
}

/// `server-everything`'s entry point (run it with `node`).
pub fn server_everything() -> PathBuf {
    installed(".tools/node/node_modules/@modelcontextprotocol/server-everything/dist/index.js")
}

/// The MCP Inspector's CLI entry point (run it with `node`).
pub fn inspector_cli() -> PathBuf {
    installed(
        ".tools/node/node_modules/@modelcontextprotocol/inspector/clients/launcher/build/index.js",
    )
}

pub fn mcp_server_time() -> PathBuf {
    installed(".venv/bin/mcp-server-time")
}

pub fn venv_python() -> PathBuf {
    installed(".venv/bin/python")
}

pub async fn next_event(rx: &mut mpsc::Receiver<AgentEvent>, secs: f64) -> AgentEvent {
    within(secs, "an agent event", rx.recv())
        .await
        .expect("event channel closed")
}

/// Waits for `Up` of `agent`, failing on a `Down` first.
pub async fn expect_up(
    rx: &mut mpsc::Receiver<AgentEvent>,
    agent: &AgentId,
    secs: f64,
) -> (SessionId, Vec<ToolDescriptor>) {
    loop {
        match next_event(rx, secs).await {
            AgentEvent::Up {
                agent: a,
                session,
                tools,
                ..
            } if &a == agent => return (session, tools),
            AgentEvent::Down { agent: a, reason } if &a == agent => {
                panic!("agent {agent} went down instead of up: {reason}")
            }
            _ => {}
        }
    }
}

/// Waits for `Down` of `agent`, skipping other events.
pub async fn expect_down(
    rx: &mut mpsc::Receiver<AgentEvent>,
    agent: &AgentId,
    secs: f64,
) -> DownReason {
    loop {
        if let AgentEvent::Down { agent: a, reason } = next_event(rx, secs).await
            && &a == agent
        {
            return reason;
        }
    }
}

pub mod conformance;

#[path = "../ports/mod.rs"]
mod ports;
#[allow(unused_imports)] // not every test binary needs it
pub use ports::free_port;
