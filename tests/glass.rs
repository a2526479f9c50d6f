//! The looking glass (`/glass`, src/admin/glass) on real nodes: the page
//! is served without the token under the Host and Origin checks while its
//! data still needs the token; and, in Debian's Chromium driven headless by
//! tests/browser/glass.mjs, the page logs in from the URL fragment, draws
//! the peers, the routes with their AS paths and the AS graph, follows a
//! node that joins while it is open, shows hostile agent names and
//! capabilities as text, and takes a screenshot in which the graph's
//! circles are visible.
//!
//! The browser test needs Chromium and playwright-core, which
//! scripts/install-test-deps.sh installs; without them it fails saying so.
//! `ABGP_GLASS_SCREENSHOT=PATH` writes its screenshot to PATH (that is how
//! docs/looking-glass.png is made); `ABGP_CHROMIUM` and
//! `ABGP_PLAYWRIGHT_DIR` point at another Chromium or playwright-core.

mod node_harness;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use serde_json::{Value, json};

use node_harness::{BIN, NodeDir, Proc, Spec, abgp, configure, init, wait_for};
use rmcp::model::CallToolRequestParams;
use rmcp::service::{ClientLifecycleMode, serve_client_with_lifecycle_and_ct};
use rmcp::transport::StreamableHttpClientTransport;
use rmcp::transport::streamable_http_client::StreamableHttpClientTransportConfig;
use tokio_util::sync::CancellationToken;

/// One HTTP/1.1 request: (status, lower-case headers, body).
fn request(
    hostport: &str,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
) -> (u16, Vec<(String, String)>, String) {
    let mut s = TcpStream::connect(hostport).expect("connect to the admin API");
    s.set_read_timeout(Some(Duration::from_secs(30)))
        .expect("read timeout");
    let mut req = format!("{method} {path} HTTP/1.1\r\nConnection: close\r\n");
    if !headers.iter().any(|(k, _)| k.eq_ignore_ascii_case("host")) {
        req.push_str(&format!("Host: {hostport}\r\n"));
    }
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str("\r\n");
    s.write_all(req.as_bytes()).expect("send");
    let mut buf = Vec::new();
    s.read_to_end(&mut buf).expect("read");
    let text = String::from_utf8_lossy(&buf).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").expect("a header end");
    let mut lines = head.lines();
    let code = lines
        .next()
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|c| c.parse().ok())
        .expect("a status code");
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    (code, headers, body.to_string())
}

fn header<'a>(h: &'a [(String, String)], name: &str) -> Option<&'a str> {
    h.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
}

fn one_node(root: &Path) -> (NodeDir, Proc) {
    let a = init(root, "A", "test");
    configure(&a, &Spec::default());
    let p = Proc::start(&a);
    (a, p)
}

#[test]
fn the_page_needs_no_token_and_its_data_does() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let (node, a) = one_node(tmp.path());
    let hp = a.admin_hostport().to_string();
    let auth = format!("Bearer {}", a.token);

    // The shell, without a token, with its headers.
    for (path, kind) in [
        ("/glass", "text/html"),
        ("/glass/", "text/html"),
        ("/glass/glass.js", "text/javascript"),
        ("/glass/glass.css", "text/css"),
        ("/glass/favicon.svg", "image/svg+xml"),
    ] {
        let (code, h, body) = request(&hp, "GET", path, &[]);
        assert_eq!(code, 200, "GET {path}: {body}");
        assert!(
            header(&h, "content-type").is_some_and(|v| v.starts_with(kind)),
            "{path}: {h:?}"
        );
        let csp = header(&h, "content-security-policy").expect("a CSP header");
        assert!(csp.contains("default-src 'none'"), "{csp}");
        assert!(csp.contains("script-src 'self'"), "{csp}");
        assert!(!csp.contains("unsafe"), "{csp}");
        assert_eq!(header(&h, "x-content-type-options"), Some("nosniff"));
        assert_eq!(header(&h, "cache-control"), Some("no-store"));
        assert!(!body.is_empty());
    }
    // `abgp glass` prints the address, with the token unless told not to.
    let cfg = node.dir.join("node.toml");
    let cfg = cfg.to_str().expect("a UTF-8 path");
    let (ok, out, err) = abgp(&["glass", "--config", cfg]);
    assert!(ok, "{err}");
    assert_eq!(out.trim(), format!("{}/glass#token={}", a.admin, a.token));
    assert!(err.contains("carries the admin token"), "{err}");
    let (ok, out, _) = abgp(&["glass", "--config", cfg, "--no-token"]);
    assert!(ok);
    assert_eq!(out.trim(), format!("{}/glass", a.admin));
    let (_, _, html) = request(&hp, "GET", "/glass", &[]);
    assert!(html.contains(r#"<script src="/glass/glass.js" defer></script>"#));
    // Only GET (and HEAD): the shell changes nothing.
    let (code, _, _) = request(&hp, "POST", "/glass", &[("Content-Length", "0")]);
    assert_eq!(code, 405);

    // The data the page shows still needs the token, and a wrong one fails.
    for path in [
        "/v1/status",
        "/v1/peers",
        "/v1/routes",
        "/v1/calls",
        "/v1/calls/recent",
        "/glass/../v1/routes",
    ] {
        let (code, _, body) = request(&hp, "GET", path, &[]);
        assert_eq!(code, 401, "GET {path} without a token: {body}");
        let (code, _, _) = request(
            &hp,
            "GET",
            path,
            &[("Authorization", "Bearer 0000000000000000000000")],
        );
        assert_eq!(code, 401, "GET {path} with a wrong token");
    }

    // What the page's fetches send: its own origin and the token.
    let own = format!("http://{hp}");
    let (code, _, body) = request(
        &hp,
        "GET",
        "/v1/peers",
        &[("Authorization", &auth), ("Origin", &own)],
    );
    assert_eq!(code, 200, "{body}");

    // A foreign page is refused the data even with the token, and the page.
    let before = a.status()["admin_refused"].clone();
    for path in ["/v1/peers", "/glass", "/glass/glass.js"] {
        let (code, _, body) = request(
            &hp,
            "GET",
            path,
            &[("Authorization", &auth), ("Origin", "http://evil.example")],
        );
        assert_eq!(code, 403, "GET {path} from a foreign origin: {body}");
        assert!(body.contains("Origin"), "{body}");
    }
    // A page that rebinds its DNS name to 127.0.0.1 sends its own Host.
    for path in ["/glass", "/glass/glass.js"] {
        let (code, _, _) = request(&hp, "GET", path, &[("Host", "evil.example")]);
        assert_eq!(code, 403, "GET {path} with a foreign Host");
    }
    let after = a.status()["admin_refused"].clone();
    let grew = |k: &str| after[k].as_u64().unwrap_or(0) - before[k].as_u64().unwrap_or(0);
    assert_eq!(grew("origin"), 3, "{before} -> {after}");
    assert_eq!(grew("host"), 2, "{before} -> {after}");

    // A node that is not running: a clear error, no address.
    let mut a = a;
    a.terminate();
    let (ok, out, err) = abgp(&["glass", "--config", cfg]);
    assert!(!ok && out.is_empty(), "{out}");
    assert!(err.contains("is `abgp run` up?"), "{err}");
}

// ---- the browser ------------------------------------------------------------

/// tests/browser/glass.mjs, running Chromium.
struct Browser {
    child: Child,
    stdin: ChildStdin,
    lines: mpsc::Receiver<String>,
}

/// How long one driver command may take (its own waits stop at 30 s).
const COMMAND_TIMEOUT: Duration = Duration::from_secs(60);

impl Browser {
    fn start() -> Browser {
        let repo = Path::new(env!("CARGO_MANIFEST_DIR"));
        let chromium =
            std::env::var("ABGP_CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into());
        let pw = std::env::var("ABGP_PLAYWRIGHT_DIR")
            .map(PathBuf::from)
            .unwrap_or_else(|_| repo.join(".tools/browser"));
        let missing: Vec<String> = [
            (!Path::new(&chromium).exists()).then(|| format!("Chromium at {chromium}")),
            (!pw.join("node_modules/playwright-core/package.json")
                .exists())
            .then(|| format!("playwright-core in {}", pw.display())),
            Command::new("node")
                .arg("--version")
                .output()
                .is_err()
                .then(|| "node".to_string()),
        ]
        .into_iter()
        .flatten()
        .collect();
        assert!(
            missing.is_empty(),
            "the looking glass's browser test needs {}: run scripts/install-test-deps.sh \
             (it installs Debian's chromium and playwright-core)",
            missing.join(", ")
        );
        let mut child = Command::new("node")
            .arg(repo.join("tests/browser/glass.mjs"))
            .env("ABGP_CHROMIUM", &chromium)
            .env("ABGP_PLAYWRIGHT_DIR", &pw)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start node tests/browser/glass.mjs");
        let stdin = child.stdin.take().expect("driver stdin");
        let stdout = child.stdout.take().expect("driver stdout");
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for l in BufReader::new(stdout).lines() {
                let Ok(l) = l else { break };
                if tx.send(l).is_err() {
                    break;
                }
            }
        });
        let mut b = Browser {
            child,
            stdin,
            lines,
        };
        let ready = b.answer("start-up");
        eprintln!("glass test: Chromium {}", ready["browser"]);
        b
    }

    fn answer(&mut self, what: &str) -> Value {
        let line = self
            .lines
            .recv_timeout(COMMAND_TIMEOUT)
            .unwrap_or_else(|e| panic!("the browser driver did not answer {what}: {e}"));
        let v: Value = serde_json::from_str(&line)
            .unwrap_or_else(|e| panic!("the browser driver said {line:?} to {what}: {e}"));
        if v["ok"] != true {
            panic!("browser: {what}: {}", v["error"]);
        }
        v["value"].clone()
    }

    fn run(&mut self, cmd: Value) -> Value {
        let what = cmd.to_string();
        writeln!(self.stdin, "{what}").expect("write to the browser driver");
        self.stdin.flush().expect("flush");
        self.answer(&what)
    }

    fn open(&mut self, url: &str) -> String {
        self.run(json!({"op": "open", "url": url}))
            .as_str()
            .unwrap_or_default()
            .to_string()
    }

    fn wait_count(&mut self, selector: &str, min: usize) -> u64 {
        self.run(json!({"op": "wait_count", "selector": selector, "min": min}))
            .as_u64()
            .unwrap_or(0)
    }

    fn wait_text(&mut self, selector: &str, text: &str) -> String {
        self.run(json!({"op": "wait_text", "selector": selector, "text": text}))
            .as_str()
            .unwrap_or_default()
            .to_string()
    }

    fn texts(&mut self, selector: &str) -> Vec<String> {
        strings(&self.run(json!({"op": "texts", "selector": selector})))
    }

    fn attrs(&mut self, selector: &str, name: &str) -> Vec<String> {
        strings(&self.run(json!({"op": "attrs", "selector": selector, "name": name})))
    }

    fn eval(&mut self, expr: &str) -> Value {
        self.run(json!({"op": "eval", "expr": expr}))
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn strings(v: &Value) -> Vec<String> {
    v.as_array()
        .map(|a| {
            a.iter()
                .map(|s| s.as_str().unwrap_or_default().to_string())
                .collect()
        })
        .unwrap_or_default()
}

/// Width and height from a PNG's IHDR, if `bytes` is a PNG.
fn png_size(bytes: &[u8]) -> Option<(u32, u32)> {
    if bytes.len() < 24 || &bytes[..8] != b"\x89PNG\r\n\x1a\n" || &bytes[12..16] != b"IHDR" {
        return None;
    }
    let be = |i: usize| u32::from_be_bytes([bytes[i], bytes[i + 1], bytes[i + 2], bytes[i + 3]]);
    Some((be(16), be(20)))
}

/// One `call_capability` through the MCP front at `url` (rmcp's client):
/// the answer's text, or the error.
fn call_capability(url: &str, capability: &str, arguments: Value) -> Result<String, String> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a runtime");
    rt.block_on(async {
        let run = async {
            let client = serve_client_with_lifecycle_and_ct(
                (),
                StreamableHttpClientTransport::from_config(
                    StreamableHttpClientTransportConfig::with_uri(url),
                ),
                ClientLifecycleMode::Initialize,
                CancellationToken::new(),
            )
            .await
            .map_err(|e| e.to_string())?;
            let args = json!({"capability": capability, "arguments": arguments});
            let r = client
                .peer()
                .call_tool(
                    CallToolRequestParams::new("call_capability".to_string())
                        .with_arguments(args.as_object().cloned().unwrap_or_default()),
                )
                .await
                .map_err(|e| e.to_string());
            let _ = client.cancel().await;
            r.map(|r| serde_json::to_string(&r).unwrap_or_default())
        };
        tokio::time::timeout(Duration::from_secs(30), run)
            .await
            .map_err(|_| "no answer in 30 s".to_string())?
    })
}

/// The least distance between the centres of two AS circles of the graph,
/// as drawn (r = 17 px, so under 34 they overlap).
const CLOSEST_CIRCLES: &str = "(() => {
  const c = [...document.querySelectorAll('#graph g.as-node circle')].map((e) => {
    const r = e.getBoundingClientRect();
    return [r.x + r.width / 2, r.y + r.height / 2];
  });
  let min = Infinity;
  for (let i = 0; i < c.length; i++)
    for (let j = i + 1; j < c.length; j++)
      min = Math.min(min, Math.hypot(c[i][0] - c[j][0], c[i][1] - c[j][1]));
  return min;
})()";

const HOSTILE_AGENT: &str = r#"<img src=x onerror="window.__glass_pwned=1">"#;
const HOSTILE_CAP: &str = "<script>window.__glass_pwned=2</script>";

#[test]
fn the_glass_in_headless_chromium() {
    let mut browser = Browser::start();
    let tmp = tempfile::tempdir().expect("tempdir");
    let root = tmp.path();
    let (a, b, c) = (
        init(root, "A", "test"),
        init(root, "B", "test"),
        init(root, "C", "test"),
    );
    let hold = 30;
    configure(
        &a,
        &Spec {
            hold,
            neighbors: vec![(b.clone(), false)],
            originate: vec!["a/local".into()],
            ..Default::default()
        },
    );
    // B's agent name and capability are what a hostile AS could send.
    configure(
        &b,
        &Spec {
            hold,
            neighbors: vec![(a.clone(), false), (c.clone(), false)],
            extra: format!(
                "\n[[originate]]\nprefix = \"b/hostile\"\nagent = '{HOSTILE_AGENT}'\n\
                 capabilities = ['{HOSTILE_CAP}', \"test\"]\n"
            ),
            ..Default::default()
        },
    );
    configure(
        &c,
        &Spec {
            hold,
            neighbors: vec![(b.clone(), false)],
            extra: format!(
                "\n[[agents]]\nid = \"echo\"\nprefix = \"c/echo/*\"\ncommand = {BIN:?}\n\
                 args = [\"example-agent\"]\n"
            ),
            ..Default::default()
        },
    );
    let pa = Proc::start(&a);
    let _pb = Proc::start(&b);
    wait_for("A to learn b/hostile", Duration::from_secs(30), || {
        pa.route("b/hostile")
    });

    // Logged in from the fragment, which then leaves the address bar.
    let base = pa.admin.clone();
    let url = browser.open(&format!("{base}/glass#token={}", pa.token));
    assert_eq!(url, format!("{base}/glass"), "the token stayed in the URL");
    assert_eq!(
        browser.eval("sessionStorage.getItem('abgp-glass-token')"),
        json!(pa.token)
    );

    // The graph: this node and its peer.
    browser.wait_count("#graph g.as-node", 2);
    assert_eq!(
        browser.attrs("#graph g.as-node.me", "data-asn"),
        [a.asn.to_string()]
    );
    assert_eq!(
        browser.attrs("#graph g.as-node.peer", "data-asn"),
        [b.asn.to_string()]
    );
    assert!(browser.wait_count("#graph .edge", 1) >= 1);
    // The peers table: B, established, with its ASN.
    let row = browser.wait_text("#peers-table tbody tr", "established");
    assert!(row.contains(&b.asn.to_string()), "{row}");
    assert_eq!(
        browser.attrs("#peers-table tbody tr", "data-peer"),
        [b.peer_id.as_str()]
    );
    // The routes: b/hostile through B's AS, a/local originated here.
    browser.wait_count(r#"#routes-table tr[data-prefix="b/hostile"]"#, 1);
    assert_eq!(
        browser.texts(r#"#routes-table tr[data-prefix="b/hostile"] td.path .asn"#),
        [b.asn.to_string()]
    );
    let local = browser.texts(r#"#routes-table tr[data-prefix="a/local"] td.path"#);
    assert_eq!(local, ["local"]);

    // Hostile text is shown as text: no element made of it, nothing ran.
    let hostile = browser.texts(r#"#routes-table tr[data-prefix="b/hostile"]"#);
    assert!(
        hostile[0].contains(HOSTILE_AGENT) && hostile[0].contains(HOSTILE_CAP),
        "{hostile:?}"
    );
    assert_eq!(browser.eval("document.querySelectorAll('img').length"), 0);
    assert_eq!(browser.eval("document.scripts.length"), 1);
    assert_eq!(
        browser.eval("typeof window.__glass_pwned"),
        json!("undefined")
    );

    // Live: C joins while the page is open; the page follows without a
    // reload.
    browser.eval("window.__glass_same_page = 1");
    let _pc = Proc::start(&c);
    browser.wait_count("#graph g.as-node", 3);
    assert_eq!(
        browser.attrs("#graph g.as-node.remote", "data-asn"),
        [c.asn.to_string()]
    );
    browser.wait_count(r#"#routes-table tr[data-prefix="c/echo/echo"]"#, 1);
    assert_eq!(
        browser.texts(r#"#routes-table tr[data-prefix="c/echo/echo"] td.path .asn"#),
        [b.asn.to_string(), c.asn.to_string()]
    );
    assert_eq!(browser.eval("window.__glass_same_page"), 1);
    // B's Adj-RIB-In: every path it sent, the chosen ones marked best.
    browser.run(json!({"op": "click", "selector": "#peers-table tbody tr button"}));
    let adj = pa.get(&format!("/v1/routes/in/{}", b.peer_id));
    let post = adj["post_policy"].as_array().map_or(0, Vec::len);
    assert!(post >= 10, "b/hostile and C's tools: {adj}");
    assert_eq!(
        browser.wait_count("#adj-in-table tbody tr.adj-best", post),
        post as u64
    );
    let title = browser.texts("#adj-in-title");
    assert!(title[0].starts_with("Paths from 12D3KooW"), "{title:?}");
    browser.run(json!({"op": "click", "selector": "#adj-in-title button"}));
    browser.wait_count("#adj-in[hidden]", 1);
    // Clicking an AS filters the routes to those through it.
    browser.run(json!({"op": "click", "selector": "#graph g.as-node.remote"}));
    let rib = pa.routes();
    let through_c = rib
        .iter()
        .filter(|r| {
            r["as_path"]
                .as_array()
                .is_some_and(|p| p.contains(&json!(c.asn)))
        })
        .count();
    assert!(through_c >= 1);
    browser.wait_text("#routes-count", &format!("({through_c} of {})", rib.len()));
    assert_eq!(
        browser.eval("document.getElementById('route-filter').value"),
        json!(c.asn.to_string())
    );
    let shown = browser.attrs("#routes-table tbody tr", "data-prefix");
    assert!(shown.iter().all(|p| p.starts_with("c/echo/")), "{shown:?}");
    browser.run(json!({"op": "click", "selector": "#filter-clear"}));
    browser.wait_text("#routes-count", &format!("({})", rib.len()));
    let updated = browser.texts("#updated");
    assert!(updated[0].starts_with("updated "), "{updated:?}");

    // A call from A's MCP front to C's agent, and its trace hop by hop.
    let answer = call_capability(&pa.mcp_url(), "c/echo/echo", json!({"text": "via B"}))
        .expect("the call through B");
    assert!(answer.contains("via B"), "{answer}");
    let (code, _, recent) = request(
        pa.admin_hostport(),
        "GET",
        "/v1/calls/recent",
        &[("Authorization", &format!("Bearer {}", pa.token))],
    );
    assert_eq!(code, 200, "/v1/calls/recent: {recent}");
    let recent: Value = serde_json::from_str(&recent).expect("recent calls JSON");
    let ours = recent
        .as_array()
        .and_then(|a| a.iter().find(|c| c["op"] == "tools/call"))
        .unwrap_or_else(|| panic!("no tools/call in {recent}"));
    let hops: Vec<String> = ours["trace"]
        .as_array()
        .map(|t| t.iter().map(|h| format!("AS {}", h["asn"])).collect())
        .unwrap_or_default();
    assert!(
        hops.len() >= 2 && hops[0] == format!("AS {}", c.asn),
        "the trace starts at C: {ours}"
    );
    let id = ours["call_id"].as_str().expect("a call id");
    let li = format!(r#"#recent-list li.trace[data-call="{id}"]"#);
    browser.wait_text(&li, "c/echo/echo");
    assert_eq!(browser.texts(&format!("{li} .hop .asn")), hops);

    // The screenshot, with the graph's circles in it.
    let shot = std::env::var("ABGP_GLASS_SCREENSHOT")
        .map(PathBuf::from)
        .unwrap_or_else(|_| root.join("glass.png"));
    browser.run(json!({"op": "screenshot", "path": shot}));
    let png = std::fs::read(&shot).expect("the screenshot");
    let (w, h) = png_size(&png).expect("the screenshot is a PNG");
    assert!(w >= 1000 && h >= 800, "{w}x{h}");
    assert!(png.len() > 20_000, "a {} byte screenshot", png.len());
    let found = browser.run(json!({
        "op": "pixels",
        "path": shot,
        "colors": [[0xf5, 0x9e, 0x0b], [0x02, 0x84, 0xc7], [0x6d, 0x5b, 0xd0]],
    }));
    for (i, what) in ["this node", "its peer", "the remote AS"]
        .iter()
        .enumerate()
    {
        let n = found[i].as_u64().unwrap_or(0);
        assert!(n > 300, "{n} pixels of {what}'s colour in the screenshot");
    }

    // Without a token: the login form; a wrong token is refused, the right
    // one opens the views.
    browser.eval("sessionStorage.clear()");
    browser.open("about:blank");
    browser.open(&format!("{base}/glass"));
    browser.wait_count("#login:not([hidden])", 1);
    browser.run(json!({"op": "fill", "selector": "#token-input", "text": "0123456789abcdef0123"}));
    browser.run(json!({"op": "click", "selector": "#login-form button"}));
    browser.wait_text("#login-why", "refused");
    browser.run(json!({"op": "fill", "selector": "#token-input", "text": pa.token}));
    browser.run(json!({"op": "click", "selector": "#login-form button"}));
    browser.wait_count("#views:not([hidden]) #graph g.as-node", 3);

    // No page error and no CSP violation; the only failed loads are the
    // wrong token's 401s.
    let problems = strings(&browser.run(json!({"op": "problems"})));
    let unexpected: Vec<&String> = problems
        .iter()
        .filter(|p| !(p.contains("status of 401") || p.contains("net::ERR_ABORTED")))
        .collect();
    assert!(unexpected.is_empty(), "{unexpected:#?}");

    // The node goes away: the page says so and keeps what it showed.
    let mut pa = pa;
    pa.kill();
    browser.wait_text("#error", "Not updated since");
    assert_eq!(browser.texts("#routes-count"), [format!("({})", rib.len())]);
}

/// What the page does with answers too big to draw whole or full of markup:
/// the admin API's answers replaced, in the browser, by big and hostile
/// ones (a node's RIB is the network's to fill).
#[test]
fn the_glass_bounds_what_it_draws_and_shows_markup_as_text() {
    let mut browser = Browser::start();
    let tmp = tempfile::tempdir().expect("tempdir");
    // A token of the operator's own, with the characters a URL treats
    // specially: `abgp glass` encodes it, the page decodes it.
    let node = init(tmp.path(), "A", "test");
    // A real Loc-RIB longer than the page draws.
    configure(
        &node,
        &Spec {
            originate: (0..600).map(|i| format!("many/p{i:03}")).collect(),
            ..Default::default()
        },
    );
    let token = "glass+token%41&x#y=z/~!?";
    let file = node.dir.join("admin.token");
    std::fs::write(&file, format!("{token}\n")).expect("write admin.token");
    std::fs::set_permissions(&file, std::os::unix::fs::PermissionsExt::from_mode(0o600))
        .expect("chmod admin.token");
    let a = Proc::start(&node);
    assert_eq!(a.token, token);
    let cfg = node.dir.join("node.toml");
    let (ok, out, err) = abgp(&["glass", "--config", cfg.to_str().expect("UTF-8")]);
    assert!(ok, "{err}");
    let url = browser.open(out.trim());
    assert_eq!(url, format!("{}/glass", a.admin));
    assert_eq!(
        browser.eval("sessionStorage.getItem('abgp-glass-token')"),
        json!(token)
    );
    browser.wait_count("#graph g.as-node.me", 1);
    browser.wait_text("#routes-note", "Showing 500 of 600 routes");
    assert_eq!(browser.wait_count("#routes-table tbody tr", 500), 500);
    browser.run(json!({"op": "fill", "selector": "#route-filter", "text": "many/p59"}));
    browser.wait_text("#routes-count", "(10 of 600)");
    browser.run(json!({"op": "click", "selector": "#filter-clear"}));
    browser.wait_text("#routes-count", "(600)");
    assert_eq!(
        browser.attrs("#graph g.as-node", "data-asn"),
        [node.asn.to_string()]
    );

    // 3,000 routes through 190 ASes, and one of markup.
    let mut routes: Vec<Value> = (0..3000u32)
        .map(|i| {
            json!({
                "prefix": format!("big/p{i:04}"), "path_id": 0, "agent": "bulk",
                "as_path": [64512 + i % 150, 4_200_000_000u32 + i % 40],
                "local_pref": 100, "med": 0, "communities": [], "capabilities": [],
                "peer": "12D3KooWbulk", "stale": i % 2 == 0, "signed": false,
                "path_signatures": 0,
            })
        })
        .collect();
    routes.push(json!({
        "prefix": r#"<img src=x onerror="window.__glass_pwned=3">"#, "path_id": 0,
        "agent": "</td><script>window.__glass_pwned=4</script>",
        "as_path": ["<b>1</b>", -5, 1.5, 64999],
        "communities": ["<svg onload=window.__glass_pwned=5>"],
        "capabilities": [{"html": "<b>x</b>"}], "local_pref": "<i>", "med": null,
    }));
    let mut peers: Vec<Value> = (0..250u32)
        .map(|i| {
            json!({
                "peer_id": format!("12D3KooWpeer{i:03}"), "node_id": "00", "asn": 65000 + i,
                "state": "established", "internal": false, "accepted_routes": 1,
                "source": "configured",
            })
        })
        .collect();
    peers.push(json!({
        "peer_id": "<img src=x onerror=window.__glass_pwned=6>", "asn": "65001",
        "state": "<b>weird</b>", "last_error": "<iframe src=javascript:alert(1)>",
    }));
    let hops: Vec<Value> = (0..40u32)
        .map(|i| json!({"asn": 64512 + i, "node": format!("{i:064}"), "elapsed_us": i * 100}))
        .collect();
    let recent: Vec<Value> = (0..80u32)
        .map(|i| {
            json!({
                "call_id": format!("call-{i}"), "target": "<script>window.__glass_pwned=7</script>",
                "op": "tools/call", "outcome": "ok", "elapsed_us": 1500 + i,
                "trace_id": "t", "trace": hops,
            })
        })
        .collect();
    for (path, body) in [
        ("/v1/routes", Value::from(routes)),
        ("/v1/peers", Value::from(peers)),
        ("/v1/calls/recent", Value::from(recent)),
    ] {
        browser.run(json!({"op": "intercept", "path": path, "body": body.to_string()}));
    }

    browser.wait_text("#routes-note", "Showing 500 of 3001 routes");
    assert_eq!(browser.wait_count("#routes-table tbody tr", 500), 500);
    browser.wait_text(
        "#graph-note",
        "Showing the 60 ASes nearest this node of 441",
    );
    assert_eq!(browser.wait_count("#graph g.as-node", 60), 60);
    // Drawn around this node, no two circles overlapping.
    let closest = browser.eval(CLOSEST_CIRCLES).as_f64().unwrap_or(0.0);
    assert!(closest >= 34.0, "two AS circles {closest} px apart");
    browser.wait_text("#peers-note", "Showing 200 of 251 peers");
    assert_eq!(browser.wait_count("#peers-table tbody tr", 200), 200);
    browser.wait_text("#recent-note", "Showing 50 of 80 calls");
    // A figure, not a bound: how long one update (fetch and draw) took.
    eprintln!(
        "glass test: one update of the big answers: {:?}",
        browser.texts("#updated")
    );
    assert_eq!(browser.wait_count("#recent-list li.trace", 50), 50);
    let first = browser.texts("#recent-list li.trace:first-child .hop");
    assert_eq!(first.len(), 33, "32 hops and a note");
    assert_eq!(first[32], "+8 hops");

    // The markup is text: in the cells, and nowhere an element.
    let row = browser.texts(r#"#routes-table tbody tr:first-child"#);
    for t in [
        r#"<img src=x onerror="window.__glass_pwned=3">"#,
        "</td><script>window.__glass_pwned=4</script>",
        "<svg onload=window.__glass_pwned=5>",
        r#"{"html":"<b>x</b>"}"#,
    ] {
        assert!(row[0].contains(t), "{t} not in {row:?}");
    }
    assert_eq!(
        browser.texts(r#"#routes-table tbody tr:first-child td.path .asn"#),
        ["?", "?", "?", "64999"]
    );
    browser.wait_text("#recent-list", "<script>window.__glass_pwned=7</script>");
    for (what, expr) in [
        ("img", "document.querySelectorAll('img').length"),
        ("iframe", "document.querySelectorAll('iframe').length"),
        ("svg", "document.querySelectorAll('svg').length"),
        ("script", "document.scripts.length"),
        ("b or i", "document.querySelectorAll('b, i').length"),
    ] {
        let want = if what == "svg" || what == "script" {
            1
        } else {
            0
        };
        assert_eq!(browser.eval(expr), want, "{what} elements");
    }
    assert_eq!(
        browser.eval("typeof window.__glass_pwned"),
        json!("undefined")
    );

    // An answer over the page's 32 MiB is not read; the page says so and
    // keeps what it showed.
    browser.run(json!({"op": "intercept", "path": "/v1/routes", "bytes": 33 << 20}));
    browser.wait_text("#error", "over this page's 32 MiB");
    assert_eq!(browser.texts("#routes-count"), ["(3001)"]);

    // The only failed request is that answer, cut off once over the limit.
    let problems = strings(&browser.run(json!({"op": "problems"})));
    let unexpected: Vec<&String> = problems
        .iter()
        .filter(|p| !p.contains("/v1/routes net::ERR_ABORTED"))
        .collect();
    assert!(unexpected.is_empty(), "{unexpected:#?}");
}
