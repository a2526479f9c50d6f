//! What a client is handed by `tools/list` in a big federation: 10,000
//! routed tools (500 agents of 20 tools in 100 capability domains, from 50
//! origin ASes, with descriptors like real MCP servers': a title, a two
//! sentence description, an input schema of 2-4 described properties,
//! annotations, an output schema on a third of them) listed by the front
//! in full mode and in discovery mode, at `/mcp` and in a view filtered to
//! 1 % of the prefixes (one domain of 100).
//!
//! The list comes from the real front: a [`FrontServer`] per view reading a
//! [`ToolTable`] published on its link, [`FrontServer::listed_tools`] (what
//! its `tools/list` handler answers), wrapped in the SDK's
//! `ListToolsResult` and a JSON-RPC response as the client receives it.
//!
//! Command: `cargo bench --bench front_views`. Options via environment:
//! `TOOLS` (default 10000), `RUNS` (list builds timed per case, default
//! 20). Prints one line per case: tools listed, bytes of the JSON-RPC
//! response, and the median time to build and serialise it; then the
//! `tools` part of a `find_agents` answer (what a discovery client reads
//! instead) for three queries, with the time of the search.

use std::sync::Arc;
use std::time::{Duration, Instant};

use agent_bgp::core::community::Community;
use agent_bgp::core::ids::{AgentId, Asn};
use agent_bgp::core::prefix::Prefix;
use agent_bgp::mcp::catalog::ToolDescriptor;
use agent_bgp::mcp::front::table::{RoutedTool, ToolTable};
use agent_bgp::mcp::front::view::{FrontMode, View, ViewConfig};
use agent_bgp::mcp::front::{FrontInfo, FrontLink, FrontServer};
use rmcp::model::ListToolsResult;
use serde_json::json;

const VERBS: [&str; 10] = [
    "get",
    "list",
    "search",
    "create",
    "update",
    "delete",
    "export",
    "summarize",
    "check",
    "compare",
];
const NOUNS: [&str; 20] = [
    "invoice",
    "customer",
    "order",
    "ticket",
    "repository",
    "issue",
    "document",
    "calendar_event",
    "message",
    "forecast",
    "quote",
    "shipment",
    "employee",
    "contract",
    "dataset",
    "metric",
    "alert",
    "deployment",
    "report",
    "account",
];

fn env_or(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Tool `i` of agent `a` in domain `d`, as its MCP server would list it.
fn descriptor(d: usize, a: usize, i: usize) -> (String, ToolDescriptor) {
    let verb = VERBS[i % VERBS.len()];
    let noun = NOUNS[(i / VERBS.len() + a) % NOUNS.len()];
    let name = format!("{verb}_{noun}");
    let mut props = serde_json::Map::new();
    props.insert(
        "id".into(),
        json!({"type": "string", "description": format!("The {noun}'s identifier, as returned by list_{noun}.")}),
    );
    props.insert(
        "limit".into(),
        json!({"type": "integer", "minimum": 1, "maximum": 500, "default": 50, "description": "At most this many results."}),
    );
    if i.is_multiple_of(2) {
        props.insert(
            "query".into(),
            json!({"type": "string", "description": format!("Free text matched against the {noun}'s fields.")}),
        );
    }
    if i.is_multiple_of(3) {
        props.insert(
            "since".into(),
            json!({"type": "string", "format": "date-time", "description": "Only items changed after this time (RFC 3339)."}),
        );
    }
    let read_only = matches!(
        verb,
        "get" | "list" | "search" | "summarize" | "check" | "compare"
    );
    let mut v = json!({
        "name": name,
        "title": format!("{} {}", verb[..1].to_uppercase() + &verb[1..], noun.replace('_', " ")),
        "description": format!(
            "{} the {noun} records of domain {d}'s service {a}. Results are paginated and sorted by last change; the caller needs read access to the {noun} collection.",
            verb[..1].to_uppercase() + &verb[1..]
        ),
        "inputSchema": {"type": "object", "properties": props, "required": ["id"]},
        "annotations": {"readOnlyHint": read_only, "idempotentHint": read_only, "openWorldHint": false},
    });
    if i % 3 == 1 {
        v["outputSchema"] = json!({
            "type": "object",
            "properties": {"items": {"type": "array", "items": {"type": "object"}}, "next": {"type": "string"}},
            "required": ["items"]
        });
    }
    let d = serde_json::from_value(v).expect("a well-formed descriptor");
    (name, d)
}

fn federation(tools: usize) -> Vec<RoutedTool> {
    let per_agent = 20;
    let domains = 100;
    (0..tools)
        .map(|n| {
            let a = n / per_agent;
            let i = n % per_agent;
            let d = a % domains;
            let (name, desc) = descriptor(d, a, i);
            let prefix = Prefix::new(&format!("domain{d}/agent{a}/{name}")).expect("a prefix");
            let origin = Asn(65_000 + (a % 50) as u32);
            let hops = 1 + a % 4;
            let as_path: Vec<Asn> = (0..hops)
                .map(|h| Asn(64_600 + ((a + h) % 50) as u32))
                .chain([origin])
                .collect();
            RoutedTool {
                prefix,
                tool: name,
                agent: AgentId::new(&format!("agent{a}")),
                origin_asn: origin,
                as_path,
                local: false,
                med: (a % 7) as u32,
                communities: vec![Community::standard(65_000, (d % 10) as u16)],
                capabilities: vec![Arc::from(format!("domain{d}"))],
                hash: Some(desc.hash()),
                descriptor: Some(Arc::new(desc)),
                descriptor_note: None,
            }
        })
        .collect()
}

/// The JSON-RPC response a client gets for `tools/list` at this server.
fn tools_list_response(server: &FrontServer) -> (usize, Vec<u8>) {
    let tools = server.listed_tools();
    let n = tools.len();
    let result = ListToolsResult::with_all_items(tools);
    let body = serde_json::to_vec(&json!({"jsonrpc": "2.0", "id": 1, "result": result}))
        .expect("a tools/list result serialises");
    (n, body)
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn main() {
    let tools = env_or("TOOLS", 10_000);
    let runs = env_or("RUNS", 20).max(1);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a runtime");
    rt.block_on(async {
        let (link, end) = FrontLink::channel(
            FrontInfo {
                asn: Asn(65_100),
                node: "12D3KooWBench".into(),
            },
            16,
        );
        let table = ToolTable::build(federation(tools));
        let routed = table.len();
        // Five tools a client always wants at hand, named as the table named them.
        let pinned: Vec<String> = table.tools().iter().take(5).map(|t| t.name.clone()).collect();
        let pinned_1pct: Vec<String> = table
            .tools()
            .iter()
            .filter(|t| t.routed.prefix.as_str().starts_with("domain0/"))
            .take(5)
            .map(|t| t.name.clone())
            .collect();
        let _ = end.tables.send(Arc::new(table));
        let view = |mode: FrontMode, pinned: &[String]| {
            let cfg = ViewConfig {
                name: "domain0".into(),
                prefixes: vec!["domain0/*".into()],
                mode,
                pinned: if mode == FrontMode::Discovery {
                    pinned.to_vec()
                } else {
                    Vec::new()
                },
                ..Default::default()
            };
            View::compile(&cfg, Asn(65_100)).expect("a valid view")
        };
        let cases: Vec<(&str, View)> = vec![
            ("/mcp, full", View::everything(FrontMode::Full, &[])),
            (
                "/mcp, discovery (5 pinned)",
                View::everything(FrontMode::Discovery, &pinned),
            ),
            ("view of 1 % of prefixes, full", view(FrontMode::Full, &[])),
            (
                "view of 1 % of prefixes, discovery (5 pinned)",
                view(FrontMode::Discovery, &pinned_1pct),
            ),
        ];
        println!("{routed} routed tools");
        println!("| endpoint | tools listed | tools/list response | build + serialise (median of {runs}) |");
        println!("|---|---|---|---|");
        for (label, v) in cases {
            let server = FrontServer::for_view(link.clone(), v);
            let mut times = Vec::with_capacity(runs);
            let mut last = (0, Vec::new());
            for _ in 0..runs {
                let t0 = Instant::now();
                last = tools_list_response(&server);
                times.push(t0.elapsed());
            }
            let (n, body) = last;
            println!(
                "| {label} | {n} | {} bytes ({:.1} KiB) | {:.2} ms |",
                body.len(),
                body.len() as f64 / 1024.0,
                median(times).as_secs_f64() * 1e3
            );
        }
        // What a discovery client reads instead: the tools part of a
        // find_agents answer, for a query that matches more than the bound.
        let server = FrontServer::for_view(link.clone(), View::everything(FrontMode::Discovery, &[]));
        for query in ["invoice", "get customer", "domain7/agent307"] {
            let mut times = Vec::with_capacity(runs);
            let mut last = (Vec::new(), false);
            for _ in 0..runs {
                let t0 = Instant::now();
                last = server.found_tools(query);
                times.push(t0.elapsed());
            }
            let (tools, more) = last;
            let bytes = serde_json::to_vec(&tools).map(|b| b.len()).unwrap_or(0);
            println!(
                "| find_agents {query:?}: tools part | {}{} | {bytes} bytes ({:.1} KiB) | {:.2} ms |",
                tools.len(),
                if more { " (truncated)" } else { "" },
                bytes as f64 / 1024.0,
                median(times).as_secs_f64() * 1e3
            );
        }
    });
}
