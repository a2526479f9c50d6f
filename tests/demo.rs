//! `abgp demo`: the README's first command tells its tour, stays up with
//! an MCP endpoint that answers, and stops cleanly on Ctrl-C (SIGINT).

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_abgp");

#[test]
fn the_demo_tells_its_tour_serves_mcp_and_stops_on_ctrl_c() {
    let mut child = Command::new(BIN)
        .arg("demo")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start abgp demo");
    let (tx, rx) = mpsc::channel();
    let out = child.stdout.take().unwrap();
    std::thread::spawn(move || {
        for l in BufReader::new(out).lines() {
            let Ok(l) = l else { break };
            if tx.send(l).is_err() {
                break;
            }
        }
    });
    let mut lines = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(120);
    while !lines.iter().any(|l: &String| l.contains("Press Ctrl-C")) {
        let left = deadline.saturating_duration_since(Instant::now());
        match rx.recv_timeout(left) {
            Ok(l) => lines.push(l),
            Err(_) => {
                let _ = child.kill();
                let mut err = String::new();
                if let Some(e) = child.stderr.take() {
                    let _ = std::io::Read::read_to_string(&mut BufReader::new(e), &mut err);
                }
                panic!(
                    "the demo did not finish its tour:\n{}\n{err}",
                    lines.join("\n")
                );
            }
        }
    }
    let text = lines.join("\n");
    assert!(text.contains("A–B established"), "{text}");
    assert!(text.contains("B–C established"), "{text}");
    assert!(
        text.contains("demo/c/add") && text.contains("AS path AS65002 AS65003"),
        "{text}"
    );
    assert!(text.contains("result: 42"), "{text}");
    assert!(text.contains("path: AS65001"), "{text}");
    let url = lines
        .iter()
        .find_map(|l| l.split("MCP endpoint (streamable HTTP): ").nth(1))
        .expect("the endpoint line")
        .trim()
        .to_string();
    assert!(text.contains(" mcp --config "), "{text}");
    let dir = lines
        .iter()
        .find_map(|l| l.split("logs: ").nth(1))
        .and_then(|l| l.split("/{A,B,C}").next())
        .expect("the logs line")
        .to_string();
    assert!(std::path::Path::new(&dir).exists());

    // The endpoint answers an MCP client while the demo stays up.
    let rt = tokio::runtime::Runtime::new().unwrap();
    let names = rt.block_on(async {
        use rmcp::ServiceExt;
        let c = ()
            .serve(rmcp::transport::StreamableHttpClientTransport::from_uri(
                url.as_str(),
            ))
            .await
            .expect("connect to the demo's front");
        let tools = c.list_all_tools().await.expect("tools/list");
        let _ = c.cancel().await;
        tools
            .into_iter()
            .map(|t| t.name.to_string())
            .collect::<Vec<_>>()
    });
    assert!(names.iter().any(|n| n == "find_agents"), "{names:?}");
    assert!(names.len() > 20, "{names:?}");

    // Ctrl-C: nodes stopped, directory removed, exit status 0.
    let pid = i32::try_from(child.id()).unwrap();
    // SAFETY: kill(2) on our own child.
    unsafe {
        libc::kill(pid, libc::SIGINT);
    }
    let deadline = Instant::now() + Duration::from_secs(20);
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("the demo did not stop on Ctrl-C");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(status.success(), "{status}");
    let rest: Vec<String> = rx.try_iter().collect();
    assert!(rest.iter().any(|l| l.contains("done.")), "{rest:?}");
    assert!(!std::path::Path::new(&dir).exists(), "{dir} removed");
}

#[test]
fn ctrl_c_during_the_tour_still_stops_the_nodes_and_cleans_up() {
    let mut child = Command::new(BIN)
        .arg("demo")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("start abgp demo");
    let pid = child.id();
    let dir = std::env::temp_dir().join(format!("abgp-demo-{pid}"));
    let mut out = BufReader::new(child.stdout.take().unwrap()).lines();
    // Interrupt as soon as the nodes are being started.
    for l in out.by_ref() {
        if l.unwrap_or_default().starts_with("1. Sessions") {
            break;
        }
    }
    // SAFETY: kill(2) on our own child.
    unsafe {
        libc::kill(i32::try_from(pid).unwrap(), libc::SIGINT);
    }
    let deadline = Instant::now() + Duration::from_secs(20);
    while child.try_wait().unwrap().is_none() {
        assert!(Instant::now() < deadline, "the demo did not stop on Ctrl-C");
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(!dir.exists(), "{} removed", dir.display());
    // No node of this demo is left running.
    let ps = Command::new("pgrep")
        .args(["-f", &format!("abgp-demo-{pid}/")])
        .output()
        .unwrap();
    assert!(
        ps.stdout.is_empty(),
        "{}",
        String::from_utf8_lossy(&ps.stdout)
    );
}
