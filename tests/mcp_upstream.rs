//! The upstream manager against real MCP servers: the example agent (over
//! stdio and streamable HTTP, on both protocol lifecycles), the reference
//! `server-everything` (TypeScript SDK) and `mcp-server-time` (Python SDK).
//!
//! The last two come from `scripts/install-test-deps.sh`; without them those
//! tests fail and say so. Every await has a deadline.

mod common;

use std::process::Stdio;
use std::time::{Duration, Instant};

use agent_bgp::core::{AgentId, Prefix};
use agent_bgp::mcp::config::{AgentConfig, ProtocolMode};
use agent_bgp::mcp::upstream::{
    AgentEvent, AgentState, DownReason, Progress, ToolCall, UpstreamError, UpstreamHandle,
    UpstreamOptions,
};
use common::*;
use serde_json::{Map, Value, json};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

fn args(v: Value) -> Map<String, Value> {
    v.as_object().cloned().expect("arguments are an object")
}

fn echo_config(id: &str) -> AgentConfig {
    AgentConfig::stdio(
        id,
        Prefix::new("test/echo/*").unwrap(),
        echo_agent().to_string_lossy(),
        Vec::<String>::new(),
    )
    .unwrap()
    .with_restart_backoff(Duration::from_millis(200), Duration::from_secs(5))
    .unwrap()
}

fn manager() -> (UpstreamHandle, mpsc::Receiver<AgentEvent>) {
    UpstreamHandle::new(UpstreamOptions::default())
}

async fn call(
    up: &UpstreamHandle,
    agent: &AgentId,
    tool: &str,
    a: Value,
) -> agent_bgp::mcp::upstream::ToolCallResult {
    within(
        10.0,
        tool,
        up.call_tool(ToolCall::new(agent.clone(), tool).with_arguments(args(a))),
    )
    .await
    .unwrap_or_else(|e| panic!("{tool}: {e}"))
}

async fn cancelled_count(up: &UpstreamHandle, agent: &AgentId) -> u64 {
    let r = call(up, agent, "stats", json!({})).await;
    r.structured_content
        .and_then(|s| s.get("cancelled").and_then(Value::as_u64))
        .expect("stats has a cancelled count")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn echo_agent_lists_tools_with_schemas_and_annotations() {
    let (up, mut rx) = manager();
    let id = AgentId::new("echo");
    up.add_agent(echo_config("echo")).unwrap();
    let (_, tools) = expect_up(&mut rx, &id, 20.0).await;
    let names: Vec<&str> = tools.iter().map(|t| t.name.as_str()).collect();
    for want in [
        "echo",
        "add",
        "slow_count",
        "fail",
        "crash",
        "set_extra_tools",
    ] {
        assert!(names.contains(&want), "{want} missing from {names:?}");
    }
    let echo = tools.iter().find(|t| t.name == "echo").unwrap();
    assert!(echo.output_schema.is_some());
    assert!(echo.is_read_only() && echo.is_idempotent());
    assert_eq!(echo.input_schema.get("type"), Some(&json!("object")));
    // The hash is stable across two listings of the same agent.
    up.remove_agent(&id).await.unwrap();
    assert_eq!(expect_down(&mut rx, &id, 10.0).await, DownReason::Removed);
    up.add_agent(echo_config("echo")).unwrap();
    let (_, again) = expect_up(&mut rx, &id, 20.0).await;
    let again_echo = again.iter().find(|t| t.name == "echo").unwrap();
    assert_eq!(echo.hash(), again_echo.hash());
    up.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn echo_returns_text_and_structured_content() {
    let (up, mut rx) = manager();
    let id = AgentId::new("echo");
    up.add_agent(echo_config("echo")).unwrap();
    expect_up(&mut rx, &id, 20.0).await;
    let r = call(&up, &id, "echo", json!({"text": "héllo"})).await;
    assert!(!r.is_error);
    assert_eq!(r.text(), "héllo");
    assert_eq!(r.structured_content, Some(json!({"text": "héllo"})));
    let sum = call(&up, &id, "add", json!({"a": 2, "b": 3.5})).await;
    assert_eq!(sum.structured_content, Some(json!({"sum": 5.5})));
    up.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tool_failure_is_a_result_with_is_error_and_bad_arguments_are_rejected() {
    let (up, mut rx) = manager();
    let id = AgentId::new("echo");
    up.add_agent(echo_config("echo")).unwrap();
    expect_up(&mut rx, &id, 20.0).await;
    let r = call(&up, &id, "fail", json!({"message": "disk on fire"})).await;
    assert!(r.is_error);
    assert_eq!(r.text(), "disk on fire");
    let err = within(
        10.0,
        "echo without text",
        up.call_tool(ToolCall::new(id.clone(), "echo")),
    )
    .await
    .unwrap_err();
    assert!(
        matches!(&err, UpstreamError::Rejected { code: -32602, .. }),
        "{err:?}"
    );
    up.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_count_progress_reaches_the_caller_in_order() {
    let (up, mut rx) = manager();
    let id = AgentId::new("echo");
    up.add_agent(echo_config("echo")).unwrap();
    expect_up(&mut rx, &id, 20.0).await;
    let (ptx, mut prx) = mpsc::channel::<Progress>(64);
    let r = within(
        10.0,
        "slow_count",
        up.call_tool(
            ToolCall::new(id.clone(), "slow_count")
                .with_arguments(args(json!({"n": 5, "delay_ms": 20})))
                .with_progress(ptx),
        ),
    )
    .await
    .unwrap();
    assert_eq!(r.text(), "counted to 5");
    let mut seen = Vec::new();
    while let Ok(p) = prx.try_recv() {
        assert_eq!(p.total, Some(5.0));
        seen.push(p.progress);
    }
    // The last notification may race the result; the rest must be there,
    // in order.
    assert!(seen.len() >= 4, "progress seen: {seen:?}");
    assert!(seen.windows(2).all(|w| w[0] < w[1]), "{seen:?}");
    up.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancelling_a_call_sends_cancelled_upstream() {
    let (up, mut rx) = manager();
    let id = AgentId::new("echo");
    up.add_agent(echo_config("echo")).unwrap();
    expect_up(&mut rx, &id, 20.0).await;
    let (ptx, mut prx) = mpsc::channel::<Progress>(64);
    let cancel = CancellationToken::new();
    let call = up.call_tool(
        ToolCall::new(id.clone(), "slow_count")
            .with_arguments(args(json!({"n": 1000, "delay_ms": 50})))
            .with_progress(ptx)
            .with_cancel(cancel.clone()),
    );
    let canceller = async {
        // Cancel once the tool is visibly running.
        let p = within(10.0, "first progress", prx.recv()).await.unwrap();
        assert_eq!(p.progress, 1.0);
        cancel.cancel();
    };
    let (result, ()) = within(10.0, "cancelled call", async {
        tokio::join!(call, canceller)
    })
    .await;
    let err = result.unwrap_err();
    assert!(
        matches!(err, UpstreamError::Cancelled { sent: true, .. }),
        "{err:?}"
    );
    assert!(err.to_string().contains("may or may not have run"));
    // The agent saw the cancellation (it counts them) and is still healthy.
    within(10.0, "agent to see the cancellation", async {
        while cancelled_count(&up, &id).await < 1 {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await;
    up.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_call_past_its_deadline_ends_with_a_timeout_and_is_cancelled_upstream() {
    let (up, mut rx) = manager();
    let id = AgentId::new("echo");
    up.add_agent(echo_config("echo")).unwrap();
    expect_up(&mut rx, &id, 20.0).await;
    let started = Instant::now();
    let err = within(
        10.0,
        "timed-out call",
        up.call_tool(
            ToolCall::new(id.clone(), "slow_count")
                .with_arguments(args(json!({"n": 100, "delay_ms": 100})))
                .with_timeout(Duration::from_millis(300)),
        ),
    )
    .await
    .unwrap_err();
    let took = started.elapsed();
    assert!(
        matches!(err, UpstreamError::Timeout { sent: true, .. }),
        "{err:?}"
    );
    assert!(err.to_string().contains("may or may not have run the tool"));
    assert!(
        took >= Duration::from_millis(300) && took < Duration::from_secs(3),
        "{took:?}"
    );
    within(10.0, "agent to see the cancellation", async {
        while cancelled_count(&up, &id).await < 1 {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await;
    up.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn calls_beyond_the_slot_limit_wait_and_then_give_up_unsent() {
    let (up, mut rx) = manager();
    let id = AgentId::new("echo");
    up.add_agent(echo_config("echo").with_max_concurrent_calls(1).unwrap())
        .unwrap();
    expect_up(&mut rx, &id, 20.0).await;
    let (ptx, mut prx) = tokio::sync::mpsc::channel(16);
    let busy = up.call_tool(
        ToolCall::new(id.clone(), "slow_count")
            .with_arguments(args(json!({"n": 10, "delay_ms": 50})))
            .with_progress(ptx),
    );
    let waiting = async {
        // The slow call holds the only slot once its first progress
        // step arrives.
        prx.recv().await.expect("the slow call's progress");
        up.call_tool(
            ToolCall::new(id.clone(), "echo")
                .with_arguments(args(json!({"text": "x"})))
                .with_timeout(Duration::from_millis(150)),
        )
        .await
    };
    let (busy, waiting) = within(10.0, "both calls", async { tokio::join!(busy, waiting) }).await;
    assert_eq!(busy.unwrap().text(), "counted to 10");
    let err = waiting.unwrap_err();
    assert!(
        matches!(err, UpstreamError::Overloaded { slots: 1, .. }),
        "{err:?}"
    );
    assert!(err.to_string().contains("was not sent"));
    // A call whose token is already cancelled is not sent at all.
    let cancel = CancellationToken::new();
    cancel.cancel();
    let err = up
        .call_tool(ToolCall::new(id.clone(), "echo").with_cancel(cancel))
        .await
        .unwrap_err();
    assert!(
        matches!(err, UpstreamError::Cancelled { sent: false, .. }),
        "{err:?}"
    );
    assert_eq!(cancelled_count(&up, &id).await, 0);
    up.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crash_is_reported_and_the_agent_restarts_with_growing_backoff() {
    let (up, mut rx) = manager();
    let id = AgentId::new("echo");
    up.add_agent(echo_config("echo")).unwrap();
    let (first, _) = expect_up(&mut rx, &id, 20.0).await;

    let mut gaps = Vec::new();
    let mut last = first;
    for _ in 0..2 {
        let err = within(
            10.0,
            "crash",
            up.call_tool(
                ToolCall::new(id.clone(), "crash").with_arguments(args(json!({"code": 7}))),
            ),
        )
        .await
        .unwrap_err();
        assert!(
            matches!(
                err,
                UpstreamError::Disconnected { .. } | UpstreamError::Transport { .. }
            ),
            "{err:?}"
        );
        let reason = expect_down(&mut rx, &id, 10.0).await;
        let down_at = Instant::now();
        match &reason {
            DownReason::Exited { status, stderr } => {
                assert!(status.contains('7'), "{status}");
                assert!(stderr.contains("crashing on request"), "{stderr}");
            }
            other => panic!("expected an exit, got {other}"),
        }
        // Calls fail fast while it is down.
        let down_err = up.call_tool(ToolCall::new(id.clone(), "echo")).await;
        assert!(
            matches!(down_err, Err(UpstreamError::AgentDown { .. })),
            "{down_err:?}"
        );
        let (session, _) = expect_up(&mut rx, &id, 20.0).await;
        assert_ne!(session, last);
        last = session;
        gaps.push(down_at.elapsed());
    }
    // Back-off 200 ms, then 400 ms: the second restart waits longer.
    assert!(gaps[0] >= Duration::from_millis(200), "{gaps:?}");
    assert!(gaps[1] >= Duration::from_millis(400), "{gaps:?}");
    let r = call(&up, &id, "echo", json!({"text": "back"})).await;
    assert_eq!(r.text(), "back");
    let status = up.status(&id).unwrap();
    assert_eq!(status.sessions, 3);
    assert!(matches!(status.state, AgentState::Up { .. }));
    up.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_agent_that_stops_answering_is_killed_and_restarted() {
    let (up, mut rx) = manager();
    let id = AgentId::new("echo");
    let config = echo_config("echo")
        .with_health_check(Duration::from_millis(300), Duration::from_millis(200))
        .unwrap();
    up.add_agent(config).unwrap();
    expect_up(&mut rx, &id, 20.0).await;
    let pid = call(&up, &id, "stats", json!({}))
        .await
        .structured_content
        .and_then(|s| s.get("pid").and_then(Value::as_u64))
        .unwrap();
    // A healthy agent passes several checks; on this 2026-07-28 session
    // `ping` is answered with "method not found", which counts as alive.
    tokio::time::sleep(Duration::from_millis(1000)).await;
    assert!(rx.try_recv().is_err(), "a healthy agent was reported");
    let err = within(
        10.0,
        "freeze",
        up.call_tool(ToolCall::new(id.clone(), "freeze").with_timeout(Duration::from_millis(500))),
    )
    .await
    .unwrap_err();
    // The health check may win the race against the call's own deadline.
    assert!(
        matches!(
            err,
            UpstreamError::Timeout { .. } | UpstreamError::Disconnected { .. }
        ),
        "{err:?}"
    );
    let reason = expect_down(&mut rx, &id, 10.0).await;
    assert_eq!(
        reason,
        DownReason::Unresponsive {
            timeout: Duration::from_millis(200)
        }
    );
    expect_up(&mut rx, &id, 20.0).await;
    // The frozen process was killed, not left stopped.
    assert!(
        !std::path::Path::new(&format!("/proc/{pid}")).exists(),
        "frozen agent {pid} still exists"
    );
    assert_eq!(
        call(&up, &id, "echo", json!({"text": "x"})).await.text(),
        "x"
    );
    up.shutdown().await;
}

async fn list_changed_relists(mode: ProtocolMode, want_protocol: &str) {
    let (up, mut rx) = manager();
    let id = AgentId::new("echo");
    up.add_agent(echo_config("echo").with_protocol(mode))
        .unwrap();
    expect_up(&mut rx, &id, 20.0).await;
    match up.status(&id).unwrap().state {
        AgentState::Up {
            protocol_version, ..
        } => assert_eq!(protocol_version, want_protocol),
        other => panic!("{other:?}"),
    }
    call(
        &up,
        &id,
        "set_extra_tools",
        json!({"names": ["extra one", "ns/extra_two"]}),
    )
    .await;
    let tools = loop {
        match next_event(&mut rx, 10.0).await {
            AgentEvent::ToolsChanged { tools, .. } => break tools,
            AgentEvent::Down { reason, .. } => panic!("down: {reason}"),
            _ => {}
        }
    };
    let names: Vec<&str> = tools.iter().map(|t| t.name.as_str()).collect();
    assert!(
        names.contains(&"extra one") && names.contains(&"ns/extra_two"),
        "{names:?}"
    );
    assert_eq!(
        call(&up, &id, "extra one", json!({})).await.text(),
        "extra one"
    );
    up.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn list_changed_relists_on_an_initialize_session() {
    list_changed_relists(ProtocolMode::Initialize, "2025-11-25").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn list_changed_relists_on_a_2026_session_through_listen() {
    list_changed_relists(ProtocolMode::Auto, "2026-07-28").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_command_that_does_not_exist_is_reported_down_and_retried() {
    let (up, mut rx) = manager();
    let id = AgentId::new("ghost");
    let config = AgentConfig::stdio(
        "ghost",
        Prefix::new("x/*").unwrap(),
        "/nonexistent/mcp-server",
        Vec::<String>::new(),
    )
    .unwrap()
    .with_restart_backoff(Duration::from_millis(50), Duration::from_millis(100))
    .unwrap();
    up.add_agent(config).unwrap();
    let reason = expect_down(&mut rx, &id, 10.0).await;
    assert!(
        matches!(&reason, DownReason::StartFailed(t) if t.contains("/nonexistent/mcp-server")),
        "{reason}"
    );
    // Retries are not reported again, and calls say why it is down.
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert!(rx.try_recv().is_err(), "a retry was reported again");
    let err = up
        .call_tool(ToolCall::new(id.clone(), "x"))
        .await
        .unwrap_err();
    assert!(err.to_string().contains("/nonexistent/mcp-server"), "{err}");
    assert!(matches!(
        up.call_tool(ToolCall::new(AgentId::new("nobody"), "x"))
            .await,
        Err(UpstreamError::UnknownAgent(_))
    ));
    assert!(matches!(
        up.add_agent(echo_config("ghost")),
        Err(UpstreamError::AgentExists(_))
    ));
    up.remove_agent(&id).await.unwrap();
    assert_eq!(expect_down(&mut rx, &id, 5.0).await, DownReason::Removed);
    assert!(up.status(&id).is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn removing_an_agent_stops_its_process() {
    let (up, mut rx) = manager();
    let id = AgentId::new("echo");
    up.add_agent(echo_config("echo")).unwrap();
    expect_up(&mut rx, &id, 20.0).await;
    let pid = call(&up, &id, "stats", json!({}))
        .await
        .structured_content
        .and_then(|s| s.get("pid").and_then(Value::as_u64))
        .unwrap();
    let remove = tokio::spawn({
        let up = up.clone();
        let id = id.clone();
        async move { up.remove_agent(&id).await }
    });
    assert_eq!(expect_down(&mut rx, &id, 5.0).await, DownReason::Removed);
    // The example agent does not exit when its stdin closes; it is
    // signalled after the grace. `Down` (on which the node withdraws the
    // agent's routes) comes before that, not after the process is gone.
    assert!(
        std::path::Path::new(&format!("/proc/{pid}")).exists(),
        "Down came only after the process had exited"
    );
    within(10.0, "remove", remove).await.unwrap().unwrap();
    within(5.0, "process to be reaped", async {
        while std::path::Path::new(&format!("/proc/{pid}")).exists() {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await;
    assert!(matches!(
        up.remove_agent(&id).await,
        Err(UpstreamError::UnknownAgent(_))
    ));
}

/// Starts the example agent with `--http ADDR`; returns the process
/// (killed on drop) and its URL.
async fn spawn_http_echo(addr: &str) -> (tokio::process::Child, String) {
    let mut child = tokio::process::Command::new(echo_agent())
        .args(["--http", addr])
        .stdout(Stdio::piped())
        // A killed server's sessions log errors that are expected here.
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let mut lines = BufReader::new(stdout).lines();
    let line = within(20.0, "the HTTP agent to listen", lines.next_line())
        .await
        .unwrap()
        .unwrap();
    let url = line
        .strip_prefix("listening on ")
        .unwrap_or_else(|| panic!("unexpected first line {line:?}"))
        .to_string();
    (child, url)
}

async fn http_agent_works(mode: ProtocolMode) {
    let (mut server, url) = spawn_http_echo("127.0.0.1:0").await;
    let (up, mut rx) = manager();
    let id = AgentId::new("web-echo");
    let config = AgentConfig::http("web-echo", Prefix::new("test/web/*").unwrap(), &url)
        .unwrap()
        .with_protocol(mode)
        .with_restart_backoff(Duration::from_millis(100), Duration::from_millis(500))
        .unwrap()
        .with_health_check(Duration::from_millis(300), Duration::from_millis(250))
        .unwrap();
    up.add_agent(config).unwrap();
    let (_, tools) = expect_up(&mut rx, &id, 20.0).await;
    assert!(tools.iter().any(|t| t.name == "echo"));
    let r = call(&up, &id, "echo", json!({"text": "over http"})).await;
    assert_eq!(r.structured_content, Some(json!({"text": "over http"})));

    let (ptx, mut prx) = mpsc::channel::<Progress>(64);
    let r = within(
        10.0,
        "slow_count over http",
        up.call_tool(
            ToolCall::new(id.clone(), "slow_count")
                .with_arguments(args(json!({"n": 4, "delay_ms": 20})))
                .with_progress(ptx),
        ),
    )
    .await
    .unwrap();
    assert_eq!(r.text(), "counted to 4");
    let mut n = 0;
    while prx.try_recv().is_ok() {
        n += 1;
    }
    assert!(n >= 3, "only {n} progress notifications over HTTP");

    // The server goes away: health checks notice, and it is retried...
    server.kill().await.unwrap();
    let reason = expect_down(&mut rx, &id, 10.0).await;
    assert!(
        !matches!(reason, DownReason::Removed | DownReason::Shutdown),
        "{reason}"
    );
    // ... until it is back on the same address.
    let addr = url
        .trim_start_matches("http://")
        .trim_end_matches("/mcp")
        .to_string();
    let (_server, _) = spawn_http_echo(&addr).await;
    expect_up(&mut rx, &id, 20.0).await;
    let r = call(&up, &id, "echo", json!({"text": "again"})).await;
    assert_eq!(r.text(), "again");
    up.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn streamable_http_agent_on_an_initialize_session() {
    http_agent_works(ProtocolMode::Initialize).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn streamable_http_agent_on_a_2026_session() {
    http_agent_works(ProtocolMode::Discover).await;
}

fn everything_config(id: &str) -> AgentConfig {
    AgentConfig::stdio(
        id,
        Prefix::new("reference/everything/*").unwrap(),
        "node",
        [
            server_everything().to_string_lossy().to_string(),
            "stdio".into(),
        ],
    )
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_everything_over_stdio() {
    let (up, mut rx) = manager();
    let id = AgentId::new("everything");
    up.add_agent(everything_config("everything")).unwrap();
    let (_, tools) = expect_up(&mut rx, &id, 30.0).await;
    let names: Vec<&str> = tools.iter().map(|t| t.name.as_str()).collect();
    for want in [
        "echo",
        "get-sum",
        "get-structured-content",
        "trigger-long-running-operation",
    ] {
        assert!(names.contains(&want), "{want} missing from {names:?}");
    }
    match up.status(&id).unwrap().state {
        // The TypeScript server predates 2026-07-28: auto fell back.
        AgentState::Up {
            protocol_version, ..
        } => assert_eq!(protocol_version, "2025-11-25"),
        other => panic!("{other:?}"),
    }
    assert_eq!(
        call(&up, &id, "echo", json!({"message": "hi"}))
            .await
            .text(),
        "Echo: hi"
    );
    assert!(
        call(&up, &id, "get-sum", json!({"a": 2, "b": 3}))
            .await
            .text()
            .contains('5')
    );
    let weather = call(
        &up,
        &id,
        "get-structured-content",
        json!({"location": "Chicago"}),
    )
    .await;
    assert!(
        weather
            .structured_content
            .as_ref()
            .is_some_and(|s| s.get("temperature").is_some()),
        "{weather:?}"
    );
    let (ptx, mut prx) = mpsc::channel::<Progress>(64);
    within(
        15.0,
        "long-running operation",
        up.call_tool(
            ToolCall::new(id.clone(), "trigger-long-running-operation")
                .with_arguments(args(json!({"duration": 1, "steps": 3})))
                .with_progress(ptx),
        ),
    )
    .await
    .unwrap();
    let mut steps = Vec::new();
    while let Ok(p) = prx.try_recv() {
        steps.push(p.progress);
    }
    assert!(
        steps.len() >= 2,
        "progress from server-everything: {steps:?}"
    );
    up.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_everything_over_streamable_http() {
    let port = free_port();
    let mut server = tokio::process::Command::new("node")
        .arg(server_everything())
        .arg("streamableHttp")
        .env("PORT", port.to_string())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    // It says so on stderr once it listens.
    let mut err_lines = BufReader::new(server.stderr.take().unwrap()).lines();
    within(20.0, "server-everything to listen", async {
        while let Some(line) = err_lines.next_line().await.unwrap() {
            if line.contains("listening on port") {
                return;
            }
        }
        panic!("server-everything exited before listening");
    })
    .await;
    let (up, mut rx) = manager();
    let id = AgentId::new("everything-http");
    let url = format!("http://127.0.0.1:{port}/mcp");
    up.add_agent(
        AgentConfig::http(
            "everything-http",
            Prefix::new("reference/http/*").unwrap(),
            &url,
        )
        .unwrap(),
    )
    .unwrap();
    let (_, tools) = expect_up(&mut rx, &id, 30.0).await;
    assert!(tools.iter().any(|t| t.name == "get-sum"));
    assert!(
        call(&up, &id, "get-sum", json!({"a": 20, "b": 22}))
            .await
            .text()
            .contains("42")
    );
    up.shutdown().await;
    server.kill().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mcp_server_time_answers_with_a_timezone() {
    let (up, mut rx) = manager();
    let id = AgentId::new("time");
    up.add_agent(
        AgentConfig::stdio(
            "time",
            Prefix::new("utility/time/*").unwrap(),
            mcp_server_time().to_string_lossy(),
            ["--local-timezone", "Etc/UTC"],
        )
        .unwrap(),
    )
    .unwrap();
    let (_, tools) = expect_up(&mut rx, &id, 30.0).await;
    let names: Vec<&str> = tools.iter().map(|t| t.name.as_str()).collect();
    assert!(names.contains(&"get_current_time"), "{names:?}");
    let r = call(
        &up,
        &id,
        "get_current_time",
        json!({"timezone": "Europe/Paris"}),
    )
    .await;
    assert!(!r.is_error, "{r:?}");
    let s = r.structured_content.expect("structured content");
    assert_eq!(s.get("timezone"), Some(&json!("Europe/Paris")));
    assert!(
        s.get("datetime")
            .and_then(Value::as_str)
            .is_some_and(|d| d.contains('T'))
    );
    // A bad timezone is the tool's error, not a hang or a crash.
    let bad = within(
        10.0,
        "bad timezone",
        up.call_tool(
            ToolCall::new(id.clone(), "get_current_time")
                .with_arguments(args(json!({"timezone": "Mars/Olympus_Mons"}))),
        ),
    )
    .await;
    match bad {
        Ok(r) => assert!(r.is_error, "{r:?}"),
        Err(e) => assert!(matches!(e, UpstreamError::Rejected { .. }), "{e:?}"),
    }
    up.shutdown().await;
}

/// The example agent speaks MCP to a client nobody here wrote: the official
/// Python SDK.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_python_sdk_client_can_use_the_example_agent() {
    // Both lifecycles: `legacy` is the initialize handshake, `auto` ends
    // on 2026-07-28 against this agent.
    let script = r#"
import anyio, sys
from mcp import Client, StdioServerParameters

async def main():
    for mode in ("legacy", "auto"):
        params = StdioServerParameters(command=sys.argv[1], args=[])
        async with Client(params, mode=mode) as c:
            tools = await c.list_tools()
            names = sorted(t.name for t in tools.tools)
            res = await c.call_tool("echo", {"text": "from python"})
            print(mode, c.protocol_version, ",".join(names), res.structured_content["text"])

anyio.run(main)
"#;
    let out = within(
        60.0,
        "python client",
        tokio::process::Command::new(venv_python())
            .arg("-c")
            .arg(script)
            .arg(echo_agent())
            .output(),
    )
    .await
    .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "python client failed: {}\n{stdout}",
        String::from_utf8_lossy(&out.stderr)
    );
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.len(), 2, "{stdout}");
    for (line, want) in lines.iter().zip(["legacy 2025-11-25", "auto 2026-07-28"]) {
        assert!(line.starts_with(want), "{line}");
        assert!(
            line.contains("echo,fail") && line.ends_with(" from python"),
            "{line}"
        );
    }
}

/// A 2026-07-28 server over streamable HTTP that accepts
/// `subscriptions/listen` and never acknowledges it (nor sends anything on
/// it): the shape of a server whose listen support is broken or slow.
async fn spawn_unacknowledging_server() -> String {
    spawn_fake_server(Fake::NoListenAck).await
}

/// The shapes of fake servers the negotiation tests need.
#[derive(Clone, Copy)]
enum Fake {
    /// 2026-07-28 only; never acknowledges `subscriptions/listen`.
    NoListenAck,
    /// 2025-11-25 only; a `server/discover` probe is never answered at
    /// all (the request hangs), so only the probe's timeout ends it.
    LegacyDiscoverHangs,
}

async fn spawn_fake_server(kind: Fake) -> String {
    use axum::body::Body;
    use axum::extract::State;
    use axum::http::StatusCode;
    use axum::response::{IntoResponse, Response};
    use axum::routing::post;
    use axum::{Json, Router};

    async fn mcp(State(kind): State<Fake>, Json(req): Json<Value>) -> Response {
        let method = req["method"].as_str().unwrap_or_default();
        if let Fake::LegacyDiscoverHangs = kind {
            let result = match method {
                "server/discover" => {
                    futures::future::pending::<()>().await;
                    unreachable!()
                }
                "initialize" => json!({
                    "protocolVersion": "2025-11-25",
                    "capabilities": {"tools": {}},
                    "serverInfo": {"name": "legacy-hangs-on-discover", "version": "1"}
                }),
                "tools/list" => {
                    json!({"tools": [{"name": "hello", "inputSchema": {"type": "object"}}]})
                }
                _ => json!({}),
            };
            return match req.get("id") {
                None => StatusCode::ACCEPTED.into_response(),
                Some(id) => {
                    Json(json!({"jsonrpc": "2.0", "id": id, "result": result})).into_response()
                }
            };
        }
        let result = match method {
            "server/discover" => json!({
                "resultType": "complete",
                "supportedVersions": ["2026-07-28"],
                "capabilities": {"tools": {"listChanged": true}},
                "ttlMs": 0,
                "cacheScope": "private",
                "_meta": {"io.modelcontextprotocol/serverInfo": {"name": "unacknowledging", "version": "1"}}
            }),
            "subscriptions/listen" => {
                // An event stream that stays open and says nothing.
                let body = Body::from_stream(futures::stream::pending::<
                    Result<Vec<u8>, std::io::Error>,
                >());
                return Response::builder()
                    .header("content-type", "text/event-stream")
                    .body(body)
                    .unwrap();
            }
            "tools/list" => json!({
                "resultType": "complete",
                "tools": [{"name": "hello", "inputSchema": {"type": "object"}}]
            }),
            _ => json!({"resultType": "complete"}),
        };
        match req.get("id") {
            None => StatusCode::ACCEPTED.into_response(),
            Some(id) => Json(json!({"jsonrpc": "2.0", "id": id, "result": result})).into_response(),
        }
    }
    let app = Router::new().route("/mcp", post(mcp)).with_state(kind);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    format!("http://{addr}/mcp")
}

/// `protocol = "auto"` against a 2026-07-28 server that never acknowledges
/// `subscriptions/listen`: the agent still comes up, on 2026-07-28, within
/// the bounded wait, instead of staying `starting` forever.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_agent_that_never_acknowledges_listen_still_comes_up() {
    let url = spawn_unacknowledging_server().await;
    let (up, mut rx) = manager();
    let id = AgentId::new("silent");
    up.add_agent(
        AgentConfig::http("silent", Prefix::new("test/silent/*").unwrap(), &url)
            .unwrap()
            .with_protocol(ProtocolMode::Auto),
    )
    .unwrap();
    let started = Instant::now();
    let (_, tools) = expect_up(&mut rx, &id, 20.0).await;
    assert_eq!(tools.len(), 1);
    assert!(
        started.elapsed() < Duration::from_secs(15),
        "up after {:?}",
        started.elapsed()
    );
    match up.status(&id).unwrap().state {
        AgentState::Up {
            protocol_version, ..
        } => assert_eq!(protocol_version, "2026-07-28"),
        other => panic!("{other:?}"),
    }
    up.shutdown().await;
}

/// `protocol = "auto"` against a 2025-11-25 server that never answers the
/// `server/discover` probe at all: the probe times out (rmcp's 10 s) and the
/// agent comes up on the initialize handshake, well within the connect
/// timeout.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn auto_falls_back_within_bounded_time_when_discover_hangs() {
    let url = spawn_fake_server(Fake::LegacyDiscoverHangs).await;
    let (up, mut rx) = manager();
    let id = AgentId::new("legacy");
    up.add_agent(
        AgentConfig::http("legacy", Prefix::new("test/legacy/*").unwrap(), &url)
            .unwrap()
            .with_protocol(ProtocolMode::Auto),
    )
    .unwrap();
    let started = Instant::now();
    let (_, tools) = expect_up(&mut rx, &id, 25.0).await;
    assert_eq!(tools.len(), 1);
    let took = started.elapsed();
    assert!(took < Duration::from_secs(20), "up after {took:?}");
    match up.status(&id).unwrap().state {
        AgentState::Up {
            protocol_version, ..
        } => assert_eq!(protocol_version, "2025-11-25"),
        other => panic!("{other:?}"),
    }
    up.shutdown().await;
}
