//! `GET /metrics` of real running nodes, read with a Prometheus text-format
//! parser (`prometheus-parse`) and checked line by line for what the format
//! requires (`# HELP` and `# TYPE` before every family, no sample outside
//! a declared family, no sample twice, cumulative histogram buckets ending
//! with `+Inf`): the families exist with the right types, and their values
//! are what the test did and what the admin API shows.
//!
//! ```text
//!   rmcp client ── A ──── B ──── C ── example agent
//! ```

mod node_harness;

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use node_harness::{BIN, Proc, chain, wait_for};
use prometheus_parse::{Sample, Scrape, Value as PValue};
use rmcp::ServiceExt;
use rmcp::model::CallToolRequestParams;
use serde_json::{Value, json};

fn agent_on_c() -> String {
    format!(
        r#"
[[agents]]
id = "echo"
prefix = "utility/echo"
command = {BIN:?}
args = ["example-agent"]
"#
    )
}

/// The exposition's text, checked for what the format requires beyond
/// what the (lenient) parser checks.
fn check_format(text: &str) {
    let mut declared: HashMap<String, String> = HashMap::new();
    let mut helped: HashSet<String> = HashSet::new();
    let mut seen: HashSet<String> = HashSet::new();
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("# HELP ") {
            let name = rest.split(' ').next().unwrap();
            assert!(helped.insert(name.to_string()), "HELP twice: {line}");
            continue;
        }
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let mut it = rest.split(' ');
            let (name, ty) = (it.next().unwrap(), it.next().unwrap());
            assert!(helped.contains(name), "TYPE before HELP: {line}");
            assert!(
                ["counter", "gauge", "histogram"].contains(&ty),
                "type: {line}"
            );
            if ty == "counter" {
                assert!(name.ends_with("_total"), "a counter ends in _total: {line}");
            }
            assert!(
                declared.insert(name.to_string(), ty.to_string()).is_none(),
                "TYPE twice: {line}"
            );
            continue;
        }
        assert!(
            !line.starts_with('#') && !line.is_empty(),
            "stray: {line:?}"
        );
        let series = line.rsplit_once(' ').expect("a sample has a value").0;
        assert!(seen.insert(series.to_string()), "sample twice: {line}");
        let name = series.split('{').next().unwrap();
        assert!(
            name.chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':'),
            "metric name: {line}"
        );
        let family = ["_bucket", "_sum", "_count"]
            .iter()
            .find_map(|s| {
                name.strip_suffix(s)
                    .filter(|f| declared.get(*f).is_some_and(|t| t == "histogram"))
            })
            .unwrap_or(name);
        assert!(declared.contains_key(family), "undeclared family: {line}");
        let v = line.rsplit_once(' ').unwrap().1;
        assert!(
            v.parse::<f64>().is_ok() || ["+Inf", "-Inf", "NaN"].contains(&v),
            "value: {line}"
        );
    }
}

struct Metrics {
    text: String,
    scrape: Scrape,
}

fn scrape(p: &Proc) -> Metrics {
    let (code, text) = p.admin_request("GET", "/metrics", None);
    assert_eq!(code, 200, "{text}");
    check_format(&text);
    let scrape = Scrape::parse(text.lines().map(|l| Ok(l.to_string()))).expect("parses");
    Metrics { text, scrape }
}

impl Metrics {
    fn samples<'a>(
        &'a self,
        name: &'a str,
        labels: &'a [(&'a str, &'a str)],
    ) -> impl Iterator<Item = &'a Sample> + 'a {
        self.scrape.samples.iter().filter(move |s| {
            s.metric == name && labels.iter().all(|(k, v)| s.labels.get(k) == Some(*v))
        })
    }

    /// The value of the one sample of `name` with these labels.
    fn value(&self, name: &str, labels: &[(&str, &str)]) -> f64 {
        let v: Vec<&Sample> = self.samples(name, labels).collect();
        assert_eq!(v.len(), 1, "{name} {labels:?} in\n{}", self.text);
        match v[0].value {
            PValue::Counter(x) | PValue::Gauge(x) | PValue::Untyped(x) => x,
            ref other => panic!("{name}: not a number: {other:?}"),
        }
    }

    fn is_counter(&self, name: &str) -> bool {
        self.samples(name, &[])
            .next()
            .is_some_and(|s| matches!(s.value, PValue::Counter(_)))
    }

    fn is_gauge(&self, name: &str) -> bool {
        self.samples(name, &[])
            .next()
            .is_some_and(|s| matches!(s.value, PValue::Gauge(_)))
    }

    /// A histogram's buckets (cumulative, `+Inf` last) and its count.
    fn histogram(&self, name: &str, labels: &[(&str, &str)]) -> (Vec<(f64, f64)>, f64) {
        let h: Vec<&Sample> = self.samples(name, labels).collect();
        assert_eq!(h.len(), 1, "{name} {labels:?} in\n{}", self.text);
        let PValue::Histogram(b) = &h[0].value else {
            panic!("{name} is not a histogram: {:?}", h[0].value);
        };
        let buckets: Vec<(f64, f64)> = b.iter().map(|c| (c.less_than, c.count)).collect();
        assert!(
            buckets
                .windows(2)
                .all(|w| w[0].0 < w[1].0 && w[0].1 <= w[1].1),
            "{name}: buckets cumulative by bound: {buckets:?}"
        );
        assert_eq!(buckets.last().map(|b| b.0), Some(f64::INFINITY), "{name}");
        let count = self.value(&format!("{name}_count"), labels);
        assert_eq!(
            buckets.last().map(|b| b.1),
            Some(count),
            "{name}: +Inf == count"
        );
        self.value(&format!("{name}_sum"), labels);
        (buckets, count)
    }

    fn help(&self, name: &str) -> bool {
        self.scrape.docs.contains_key(name)
    }
}

fn len(v: &Value) -> f64 {
    v.as_array().map_or(0, Vec::len) as f64
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_of_a_chain_are_prometheus_text_and_count_what_happened() {
    let root = tempfile::tempdir().unwrap();
    let (nodes, procs) = chain(root.path(), &agent_on_c(), "");
    let (a, b, c) = (&procs[0], &procs[1], &procs[2]);
    wait_for("A's route to C's echo", Duration::from_secs(30), || {
        a.as_path("utility/echo/echo").filter(|p| p.len() == 2)
    });

    // Three calls that succeed and one the agent refuses (no `text`).
    let url = a.mcp_url();
    let client = tokio::time::timeout(
        Duration::from_secs(20),
        ().serve(rmcp::transport::StreamableHttpClientTransport::from_uri(
            url.as_str(),
        )),
    )
    .await
    .expect("connects in time")
    .expect("MCP client connects to A's front");
    let name = tokio::time::timeout(Duration::from_secs(30), async {
        loop {
            let tools = client.list_all_tools().await.expect("tools/list");
            if let Some(t) = tools.iter().find(|t| {
                t.description.as_deref().is_some_and(|d| {
                    d.contains("capability utility/echo/echo,") && !d.contains("not fetched")
                })
            }) {
                return t.name.to_string();
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    })
    .await
    .expect("the echo tool at A");
    let call = |args: Value| {
        CallToolRequestParams::new(name.clone()).with_arguments(args.as_object().cloned().unwrap())
    };
    for i in 0..3 {
        let r = client
            .call_tool(call(json!({"text": format!("call {i}")})))
            .await;
        assert!(r.is_ok(), "{r:?}");
    }
    let refused = client.call_tool(call(json!({}))).await;
    assert!(refused.is_err(), "{refused:?}");
    client.cancel().await.ok();

    let m = scrape(a);
    for f in [
        "abgp_sessions",
        "abgp_routes",
        "abgp_peer_routes",
        "abgp_descriptors_cached",
        "abgp_calls_in_flight",
        "abgp_recent_calls",
        "abgp_uptime_seconds",
        "abgp_node_info",
        "abgp_nat_reachability",
        "abgp_relay_reservations_held",
        "abgp_relay_circuits_active",
    ] {
        assert!(m.is_gauge(f), "{f} is a gauge:\n{}", m.text);
        assert!(m.help(f), "{f} has help");
    }
    for f in [
        "abgp_updates_received_total",
        "abgp_updates_sent_total",
        "abgp_route_announcements_received_total",
        "abgp_route_withdrawals_received_total",
        "abgp_route_withdrawals_sent_total",
        "abgp_decision_runs_total",
        "abgp_best_path_changes_total",
        "abgp_route_verifications_total",
        "abgp_opens_refused_total",
        "abgp_front_calls_total",
        "abgp_hop_calls_total",
        "abgp_forwarder_calls_total",
        "abgp_descriptor_fetches_total",
        "abgp_peer_messages_total",
        "abgp_hole_punches_total",
        "abgp_relay_circuits_total",
    ] {
        assert!(m.is_counter(f), "{f} is a counter:\n{}", m.text);
        assert!(m.help(f), "{f} has help");
    }
    // On loopback with no AutoNAT server, reachability is unknown, no relay
    // is held and nothing is punched; exactly one state is 1.
    let states: f64 = ["public", "private", "unknown"]
        .iter()
        .map(|s| m.value("abgp_nat_reachability", &[("state", s)]))
        .sum();
    assert_eq!(states, 1.0);
    assert_eq!(
        m.value("abgp_nat_reachability", &[("state", "unknown")]),
        1.0
    );
    assert_eq!(m.value("abgp_relay_reservations_held", &[]), 0.0);
    assert_eq!(m.value("abgp_hole_punches_total", &[("result", "ok")]), 0.0);

    // Calls by outcome at the front: what the client did.
    assert_eq!(m.value("abgp_front_calls_total", &[("outcome", "ok")]), 3.0);
    assert_eq!(
        m.value("abgp_front_calls_total", &[("outcome", "upstream_error")]),
        1.0
    );
    let (_, n) = m.histogram("abgp_front_call_seconds", &[]);
    assert_eq!(n, 4.0);
    // Every hop timed the four tool calls: A and B by their next hop, C
    // by its agent (descriptor fetches are counted apart, as `describe`).
    const TOOL: (&str, &str) = ("op", "tools/call");
    let (_, n) = m.histogram(
        "abgp_hop_call_seconds",
        &[("next_hop", &nodes[1].peer_id), TOOL],
    );
    assert_eq!(n, 4.0);
    assert_eq!(
        m.value(
            "abgp_hop_calls_total",
            &[("from", "front"), TOOL, ("outcome", "ok")]
        ),
        3.0
    );
    let mb = scrape(b);
    let (_, n) = mb.histogram(
        "abgp_hop_call_seconds",
        &[("next_hop", &nodes[2].peer_id), TOOL],
    );
    assert_eq!(n, 4.0);
    assert_eq!(
        mb.value(
            "abgp_hop_calls_total",
            &[("from", "peer"), TOOL, ("outcome", "ok")]
        ),
        3.0
    );
    let mc = scrape(c);
    let (_, n) = mc.histogram("abgp_hop_call_seconds", &[("next_hop", "local"), TOOL]);
    assert_eq!(n, 4.0);
    assert_eq!(
        mc.value(
            "abgp_hop_calls_total",
            &[("from", "peer"), TOOL, ("outcome", "upstream_error")]
        ),
        1.0
    );
    // The descriptors A fetched were answered at C.
    let fetched = m.value("abgp_descriptor_fetches_total", &[]);
    assert!(fetched >= 1.0);
    let described: f64 = mc
        .samples("abgp_hop_calls_total", &[("op", "describe")])
        .map(|s| match s.value {
            PValue::Counter(x) => x,
            _ => 0.0,
        })
        .sum();
    assert!(described >= fetched, "{described} >= {fetched}");

    // Sessions by state: A and C have one peer, B two, all established.
    assert_eq!(m.value("abgp_sessions", &[("state", "established")]), 1.0);
    assert_eq!(mb.value("abgp_sessions", &[("state", "established")]), 2.0);
    assert_eq!(mb.value("abgp_sessions", &[("state", "idle")]), 0.0);

    // Routes per RIB and the per-peer counters agree with the admin API
    // (read together until nothing moves between the two reads).
    let b_peer = nodes[1].peer_id.clone();
    wait_for(
        "A's metrics to match its admin API",
        Duration::from_secs(20),
        || {
            let m = scrape(a);
            let routes = a.get("/v1/routes");
            let adj_in = a.get(&format!("/v1/routes/in/{b_peer}"));
            let adj_out = a.get(&format!("/v1/routes/out/{b_peer}"));
            let status = a.status();
            let want = [
                (m.value("abgp_routes", &[("rib", "loc_rib")]), len(&routes)),
                (
                    m.value("abgp_routes", &[("rib", "adj_rib_in_post")]),
                    len(&adj_in["post_policy"]),
                ),
                (
                    m.value("abgp_routes", &[("rib", "adj_rib_in_pre")]),
                    len(&adj_in["pre_policy"]),
                ),
                (
                    m.value("abgp_routes", &[("rib", "adj_rib_out")]),
                    len(&adj_out["routes"]),
                ),
                (
                    m.value(
                        "abgp_peer_routes",
                        &[("peer", b_peer.as_str()), ("rib", "adj_rib_in_post")],
                    ),
                    len(&adj_in["post_policy"]),
                ),
                (
                    m.value("abgp_updates_received_total", &[]),
                    status["engine"]["updates_in"].as_f64()?,
                ),
                (
                    m.value("abgp_decision_runs_total", &[]),
                    status["engine"]["decision_runs"].as_f64()?,
                ),
                (
                    m.value("abgp_route_verifications_total", &[("result", "ok")]),
                    status["verify"]["routes_ok"].as_f64()?,
                ),
            ];
            want.iter().all(|(got, api)| got == api).then_some(())
        },
    );
    let m = scrape(a);
    assert!(m.value("abgp_routes", &[("rib", "loc_rib")]) >= 1.0);
    assert!(m.value("abgp_decision_runs_total", &[]) >= 1.0);
    let b = b_peer.as_str();
    for (dir, ty) in [
        ("in", "OPEN"),
        ("out", "OPEN"),
        ("in", "UPDATE"),
        ("out", "UPDATE"),
    ] {
        let n = m.value(
            "abgp_peer_messages_total",
            &[("peer", b), ("direction", dir), ("type", ty)],
        );
        assert!(n >= 1.0, "{dir} {ty}: {n}");
    }
    // Only the node's peers are labels.
    let peers: HashSet<&str> = m
        .samples("abgp_peer_messages_total", &[])
        .filter_map(|s| s.labels.get("peer"))
        .collect();
    assert_eq!(peers, HashSet::from([b]));
    assert_eq!(
        m.value("abgp_node_info", &[("peer_id", nodes[0].peer_id.as_str())]),
        1.0
    );
}

#[test]
fn metrics_need_the_admin_token() {
    let root = tempfile::tempdir().unwrap();
    let nd = node_harness::init(root.path(), "A", "test");
    node_harness::configure(&nd, &node_harness::Spec::default());
    let p = Proc::start(&nd);
    let (code, _) = node_harness::raw_http(p.admin_hostport(), "GET", "/metrics", &[], None)
        .expect("the admin API answers");
    assert_eq!(code, 401);
    // A lone node: no peers, no calls, still every family.
    let m = scrape(&p);
    assert_eq!(m.value("abgp_sessions", &[("state", "established")]), 0.0);
    assert_eq!(m.value("abgp_routes", &[("rib", "loc_rib")]), 0.0);
    let (_, n) = m.histogram("abgp_front_call_seconds", &[]);
    assert_eq!(n, 0.0);
}
