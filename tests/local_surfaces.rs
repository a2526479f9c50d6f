//! The node's local HTTP surfaces against a hostile page and a curious
//! local process: the admin API (Host, Origin, token, JSON bodies), the MCP
//! front (Origin, Host), and the modes of the files that hold secrets.
//! Real `abgp` processes, raw HTTP requests exactly as a browser or curl
//! would send them.

mod node_harness;

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::time::Duration;

use node_harness::{BIN, Proc, Spec, abgp, configure, free_port, init, raw_http, wait_for};

/// The request from the issue: what a page can send cross-origin without
/// a preflight (`fetch(url, {method: "POST", mode: "no-cors", body})`).
fn pwn_body(marker: &std::path::Path) -> String {
    format!(
        r#"{{"id":"x","prefix":"x/*","command":"/bin/sh","args":["-c","touch {}"]}}"#,
        marker.display()
    )
}

/// A node started from the `abgp init` template itself, with only its
/// ports moved (and discovery off, as tests keep mDNS off).
fn node_from_template(root: &std::path::Path) -> (node_harness::NodeDir, Proc, u16) {
    let nd = init(root, "t", "test");
    let cfg = nd.dir.join("node.toml");
    let admin = free_port();
    let text = std::fs::read_to_string(&cfg)
        .unwrap()
        .replace("127.0.0.1:4180", &format!("127.0.0.1:{admin}"))
        .replace("127.0.0.1:4181", &format!("127.0.0.1:{}", free_port()))
        .replace("/tcp/4100", &format!("/tcp/{}", nd.port))
        .replace("/udp/4100", &format!("/udp/{}", nd.port))
        .replace("mdns = true", "mdns = false")
        .replace("kademlia = true", "kademlia = false");
    std::fs::write(&cfg, text).unwrap();
    let p = Proc::start(&nd);
    (nd, p, admin)
}

#[test]
fn a_hostile_page_cannot_add_an_agent_and_the_cli_still_can() {
    let root = tempfile::tempdir().unwrap();
    let (nd, p, admin) = node_from_template(root.path());
    let hp = format!("127.0.0.1:{admin}");
    let marker = root.path().join("pwned");
    let body = pwn_body(&marker);

    // The issue's curl, byte for byte: foreign Host and Origin, text/plain.
    let (code, answer) = raw_http(
        &hp,
        "POST",
        "/v1/agents",
        &[
            ("Content-Type", "text/plain"),
            ("Origin", "http://evil.example"),
            ("Host", "evil.example:4180"),
        ],
        Some(&body),
    )
    .unwrap();
    assert_eq!(code, 403, "{answer}");
    assert!(answer.contains("Host"), "{answer}");

    // A page on a loopback name (DNS rebinding done right, or a local
    // page): its Origin gives it away.
    let (code, answer) = raw_http(
        &hp,
        "POST",
        "/v1/agents",
        &[
            ("Content-Type", "text/plain"),
            ("Origin", "http://127.0.0.1:8000"),
        ],
        Some(&body),
    )
    .unwrap();
    assert_eq!(code, 403, "{answer}");
    assert!(answer.contains("Origin"), "{answer}");

    // No Origin, no token (a local process that cannot read the token).
    let (code, answer) = raw_http(
        &hp,
        "POST",
        "/v1/agents",
        &[("Content-Type", "application/json")],
        Some(&body),
    )
    .unwrap();
    assert_eq!(code, 401, "{answer}");
    let (code, _) = raw_http(
        &hp,
        "GET",
        "/v1/status",
        &[(
            "Authorization",
            "Bearer 0000000000000000000000000000000000000000",
        )],
        None,
    )
    .unwrap();
    assert_eq!(code, 401, "a wrong token");

    // The right token, but a text/plain body.
    let auth = format!("Bearer {}", p.token);
    let (code, answer) = raw_http(
        &hp,
        "POST",
        "/v1/agents",
        &[("Content-Type", "text/plain"), ("Authorization", &auth)],
        Some(&body),
    )
    .unwrap();
    assert_eq!(code, 415, "{answer}");

    // Nothing ran and nothing was added.
    assert!(!marker.exists(), "a refused request ran its command");
    assert_eq!(p.get("/v1/agents"), serde_json::json!([]));
    let refused = &p.get("/v1/status")["admin_refused"];
    assert_eq!(refused["host"], 1, "{refused}");
    assert_eq!(refused["origin"], 1, "{refused}");
    assert_eq!(refused["token"], 2, "{refused}");
    assert_eq!(refused["content_type"], 1, "{refused}");

    // The same request with the token and a JSON body works: it is the
    // operator's API.
    let (code, answer) = p.admin_request("POST", "/v1/agents", Some(&body));
    assert_eq!(code, 201, "{answer}");
    wait_for(
        "the agent's command to run",
        Duration::from_secs(10),
        || marker.exists().then_some(()),
    );
    let (code, answer) = p.admin_request("DELETE", "/v1/agents/x", None);
    assert_eq!(code, 200, "{answer}");

    // And the CLI, which reads the token file, still works.
    let cfg = nd.dir.join("node.toml");
    let cfg = cfg.to_str().unwrap();
    let (ok, out, err) = abgp(&[
        "agent",
        "add",
        "--config",
        cfg,
        "--id",
        "echo",
        "--prefix",
        "echo/*",
        "--command",
        BIN,
        "--arg",
        "example-agent",
    ]);
    assert!(ok, "agent add: {err}{out}");
    let (ok, out, err) = abgp(&["agent", "list", "--config", cfg]);
    assert!(ok && out.contains("echo"), "agent list: {err}{out}");
}

/// Each failure of the admin API has its own status: a malformed request
/// 400, what it names missing 404, a duplicate 409; the body says why.
#[test]
fn admin_failures_answer_with_the_status_that_says_what_went_wrong() {
    let root = tempfile::tempdir().unwrap();
    let (_nd, p, _admin) = node_from_template(root.path());
    let (code, body) = p.admin_request("GET", "/v1/routes/in/not-a-peer", None);
    assert_eq!(code, 400, "{body}");
    assert!(body.contains("neither a peer id"), "{body}");
    let stranger = "12D3KooWLRPJAA5o6Z6gSE9HRAVxk4qUPNGcPv5CwsxvWFsn1RqE";
    let (code, body) = p.admin_request("GET", &format!("/v1/routes/out/{stranger}"), None);
    assert_eq!(code, 404, "{body}");
    assert!(body.contains("not a peer of this node"), "{body}");
    let (code, body) = p.admin_request("POST", "/v1/agents", Some("{\"id\": 3}"));
    assert_eq!(code, 400, "{body}");
    let (code, body) = p.admin_request("DELETE", "/v1/agents/nobody", None);
    assert_eq!(code, 404, "{body}");
    let entry =
        format!(r#"{{"id":"echo","prefix":"echo/*","command":"{BIN}","args":["example-agent"]}}"#);
    let (code, body) = p.admin_request("POST", "/v1/agents", Some(&entry));
    assert_eq!(code, 201, "{body}");
    let (code, body) = p.admin_request("POST", "/v1/agents", Some(&entry));
    assert_eq!(code, 409, "{body}");
    assert!(body.contains("already configured"), "{body}");
    let (code, body) = p.admin_request("GET", "/v1/nothing-here", None);
    assert_eq!(code, 404, "{body}");
}

#[test]
fn the_cli_says_what_is_wrong_when_the_token_is_not_the_nodes() {
    let root = tempfile::tempdir().unwrap();
    let (nd, _p, _) = node_from_template(root.path());
    let token = nd.dir.join("admin.token");
    std::fs::remove_file(&token).unwrap();
    let cfg = nd.dir.join("node.toml");
    let (ok, _, err) = abgp(&["agent", "list", "--config", cfg.to_str().unwrap()]);
    assert!(!ok);
    assert!(err.contains("admin token"), "{err}");
    std::fs::write(&token, "someone-elses-token-123456\n").unwrap();
    std::fs::set_permissions(&token, std::fs::Permissions::from_mode(0o600)).unwrap();
    let (ok, _, err) = abgp(&["agent", "list", "--config", cfg.to_str().unwrap()]);
    assert!(!ok);
    assert!(err.contains("refused the token"), "{err}");
}

const INITIALIZE: &str = r#"{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"t","version":"1"}}}"#;

fn front_post(url: &str, extra: &[(&str, &str)]) -> (u16, String) {
    let hp = url
        .strip_prefix("http://")
        .and_then(|r| r.strip_suffix("/mcp"))
        .unwrap();
    let mut h = vec![
        ("Content-Type", "application/json"),
        ("Accept", "application/json, text/event-stream"),
    ];
    for (k, v) in extra {
        h.retain(|(n, _)| !n.eq_ignore_ascii_case(k));
        h.push((k, v));
    }
    raw_http(hp, "POST", "/mcp", &h, Some(INITIALIZE)).unwrap()
}

#[test]
fn the_front_refuses_foreign_origins_and_rebinding_hosts() {
    let root = tempfile::tempdir().unwrap();
    let nd = init(root.path(), "f", "test");
    configure(
        &nd,
        &Spec {
            mcp: "allowed_origins = [\"http://localhost:6274\"]\n".into(),
            ..Spec::default()
        },
    );
    let p = Proc::start(&nd);
    let url = p.mcp_url();

    let (code, body) = front_post(&url, &[]);
    assert_eq!(code, 200, "an MCP client sends no Origin: {body}");
    let (code, body) = front_post(&url, &[("Origin", "http://evil.example")]);
    assert_eq!(code, 403, "{body}");
    let (code, body) = front_post(&url, &[("Origin", "http://localhost:8080")]);
    assert_eq!(code, 403, "another local page: {body}");
    let (code, body) = front_post(&url, &[("Origin", "null")]);
    assert_eq!(code, 403, "a sandboxed page: {body}");
    let (code, body) = front_post(&url, &[("Origin", "http://localhost:6274")]);
    assert_eq!(code, 200, "an allowed origin: {body}");
    let (code, body) = front_post(&url, &[("Host", "evil.example:4181")]);
    assert_eq!(code, 403, "a rebinding Host: {body}");
    let (code, body) = front_post(&url, &[("Content-Type", "text/plain")]);
    assert!((400..500).contains(&code), "text/plain body: {code} {body}");
    let refused = &p.get("/v1/mcp")["front_refused"];
    assert_eq!(refused["origin"], 3, "{refused}");
    assert_eq!(refused["host"], 1, "{refused}");
}

#[test]
fn secrets_live_in_private_files_and_an_open_node_toml_is_reported() {
    let root = tempfile::tempdir().unwrap();
    let nd = init(root.path(), "m", "test");
    let mode = |p: &std::path::Path| std::fs::metadata(p).unwrap().mode() & 0o777;
    assert_eq!(mode(&nd.dir), 0o700, "the node directory");
    assert_eq!(mode(&nd.dir.join("admin.token")), 0o600);
    assert_eq!(mode(&nd.dir.join("node.key")), 0o600);
    configure(
        &nd,
        &Spec {
            mcp: "bearer_token = \"front-secret-token-1234\"\n".into(),
            ..Spec::default()
        },
    );
    let cfg = nd.dir.join("node.toml");
    std::fs::set_permissions(&cfg, std::fs::Permissions::from_mode(0o644)).unwrap();
    // A store an older node made with the default umask.
    let store = nd.dir.join("store");
    std::fs::create_dir(&store).unwrap();
    std::fs::set_permissions(&store, std::fs::Permissions::from_mode(0o755)).unwrap();
    let mut p = Proc::start(&nd);
    assert_eq!(mode(&store), 0o700, "the store directory is tightened");
    let log = wait_for(
        "the warning about node.toml",
        Duration::from_secs(10),
        || {
            let l = std::fs::read_to_string(&p.log).ok()?;
            l.contains("node.toml holds secrets").then_some(l)
        },
    );
    assert!(log.contains("mcp.bearer_token"), "{log}");
    assert!(
        !log.contains("front-secret-token-1234"),
        "the secret itself is never logged"
    );
    p.terminate();

    // A node whose token file disappeared makes a new one at start.
    std::fs::remove_file(nd.dir.join("admin.token")).unwrap();
    let p = Proc::start(&nd);
    assert_eq!(mode(&nd.dir.join("admin.token")), 0o600);
    assert!(p.try_get("/v1/status").is_some());
}
