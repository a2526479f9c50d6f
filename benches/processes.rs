//! Real processes against the simulator (issue 14): `NODES` real `abgp`
//! processes on 127.0.0.1, peered in a random connected topology, and the
//! same topology on the simulator (`agent_bgp::sim`), for three figures:
//!
//! 1. an announcement (the origin adds the example agent at run time,
//!    `POST /v1/agents`, so its tools' prefixes appear) until the route is
//!    in every node's Loc-RIB;
//! 2. its withdrawal (`DELETE /v1/agents/echo`) until the route is gone
//!    from every node;
//! 3. a tunnelled `echo` call from the node with the longest path to the
//!    origin (p50 over `CALLS` calls) and its hop count, next to the same
//!    call at the origin's own front.
//!
//! Each event is read two ways: by polling every node's `/v1/routes`
//! (sweeps over the nodes not yet there: "every Loc-RIB agrees", with one
//! sweep of resolution) and from the nodes' logs (the `UPDATE received`
//! lines, microsecond timestamps: first and last arrival, message count).
//! From the logs also comes the **per-hop latency**: for each node, its
//! first UPDATE minus the latest UPDATE its sender had received before
//! (the median over nodes; hops straight from the origin are left out,
//! since the origin's moment is known only to the millisecond).
//!
//! The simulator runs the same graph with the same roles and policies on
//! real engines. With no advertisement interval its dynamics are purely
//! event-driven, so its times scale linearly with the link latency: it is
//! run at 1 ms per hop (giving the convergence in hops; checked against a
//! run at 10 ms) and the prediction is hops x the measured per-hop latency.
//! It is also run with its latency set to the measured hop rounded to whole
//! milliseconds (at least 1), as `SimNet` takes, and on jittered links
//! (`SimNet::with_links`: latency the 10th percentile of the measured hops,
//! jitter up to the 90th, median of 5 seeds), since real hops are uneven.
//!
//! The origin's moment: for the announcement the route's `origin_time`
//! (the origin's clock, to the millisecond); for the withdrawal, which the
//! node makes only once the agent's process has stopped, the first
//! neighbour's UPDATE minus one median hop.
//!
//! **Topology and roles.** The simulator wires every topology with
//! Gao-Rexford policies: RFC 9234 roles (only-to-customer: a route from a
//! peer or a provider goes to customers only) and local-pref customer 200,
//! peer 100, provider 50. On a flat graph (`erdos_renyi`, plain
//! `barabasi_albert`) every edge is `Relation::Peer`, so a route would stop
//! one hop from its origin. So the default topology (`TOPOLOGY=ba`) is a
//! Barabasi-Albert graph (m = 2, seed `SEED`) turned into a
//! provider/customer graph: on each edge the earlier node is the provider.
//! Node 0 is then above everyone, every node is multi-homed, and every
//! prefix reaches every node over valley-free paths. `TOPOLOGY=hierarchy`
//! takes `Topology::hierarchy` instead (a tier-1 clique of 3, `NODES/4`
//! regionals with some lateral peering, the rest stubs), which has peer
//! links too. The processes get exactly the simulator's setup: each
//! `[[neighbor]]` has the `local_role` `Topology::role_of` gives, and each
//! node's policy file sets local-pref 200 on routes from its customers, 50
//! from its providers (100, the default, from peers). `[health]` is off so
//! a route's MED never changes during a run, as in the simulator. Every
//! node is its own AS (derived ASNs) and MRAI is 0 on both sides.
//!
//! The origin is an end of a longest shortest path (the highest-numbered
//! node of largest eccentricity); the caller is the node whose best path to
//! the origin is longest in the simulator (ties: farthest in the graph).
//!
//! Command: `cargo bench --locked --bench processes` (release build; runs
//! real processes). Options via environment: `NODES` (20..=50, default 30),
//! `SEED` (default 1), `TOPOLOGY` (`ba` or `hierarchy`), `ROUNDS`
//! (announce/withdraw rounds, default 5; figures are medians over them),
//! `CALLS` (default 50), `POLL` (0: do not sweep the Loc-RIBs during an
//! event, only the logs measure), `ROOT` (where the node directories go,
//! e.g. a tmpfs to take fsync out; default the system's temporary
//! directory), `KEEP` (set: keep the node directories and their logs).
//! Every wait polls observable state with a deadline: sessions
//! established, routes present or gone, logs quiet (no log line for
//! 500 ms). docs/benchmarks.md has the figures.

mod common;
use common::client;
use std::collections::{BTreeSet, HashMap, VecDeque};
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use agent_bgp::core::attrs::PathAttrs;
use agent_bgp::core::engine::{Action, Event};
use agent_bgp::core::ids::AgentId;
use agent_bgp::core::message::Message;
use agent_bgp::core::prefix::Prefix;
use agent_bgp::core::role::Role;
use agent_bgp::core::route::{Route, RouteKey};
use agent_bgp::sim::converge::{Convergence, convergence_since, mark};
use agent_bgp::sim::topology::{Edge, Relation, T0, Topology};
use agent_bgp::sim::{LinkModel, SimNet};
use rmcp::RoleClient;
use rmcp::model::CallToolRequestParams;
use rmcp::service::RunningService;
use serde_json::json;

#[path = "../tests/node_harness/mod.rs"]
mod node_harness;
use node_harness::{BIN, NodeDir, Proc, Spec, configure, init, wait_for};

/// The route every figure follows (one of the example agent's tools).
const PREFIX: &str = "bench/echo/echo";
const AGENT: &str = "echo";
/// Seeds of the simulator runs with jittered links.
const SIM_SEEDS: u64 = 5;

fn env_or(name: &str, default: u64) -> u64 {
    match std::env::var(name) {
        Ok(v) => v
            .parse()
            .unwrap_or_else(|_| panic!("{name}={v:?} is not a number")),
        Err(_) => default,
    }
}

fn now_us() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_micros() as u64)
        .unwrap_or(0)
}

fn median(v: &mut [f64]) -> f64 {
    if v.is_empty() {
        return f64::NAN;
    }
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

fn pct(v: &[f64], p: f64) -> f64 {
    v[((v.len() as f64 - 1.0) * p) as usize]
}

// ----- the topology -----

#[derive(Debug, Clone, Copy, PartialEq)]
enum Shape {
    Ba,
    Hierarchy,
}

fn topology(shape: Shape, n: usize, seed: u64) -> Topology {
    match shape {
        Shape::Ba => {
            let flat = Topology::barabasi_albert(n, 2, seed);
            Topology {
                n,
                edges: flat
                    .edges
                    .iter()
                    .map(|e| Edge {
                        a: e.a.min(e.b),
                        b: e.a.max(e.b),
                        rel: Relation::ProviderOf,
                    })
                    .collect(),
            }
        }
        Shape::Hierarchy => Topology::hierarchy(3, n / 4, n - 3 - n / 4, seed),
    }
}

fn adjacency(t: &Topology) -> Vec<Vec<usize>> {
    let mut adj = vec![Vec::new(); t.n];
    for e in &t.edges {
        adj[e.a].push(e.b);
        adj[e.b].push(e.a);
    }
    adj
}

fn bfs(adj: &[Vec<usize>], from: usize) -> Vec<usize> {
    let mut d = vec![usize::MAX; adj.len()];
    d[from] = 0;
    let mut q = VecDeque::from([from]);
    while let Some(v) = q.pop_front() {
        for &u in &adj[v] {
            if d[u] == usize::MAX {
                d[u] = d[v] + 1;
                q.push_back(u);
            }
        }
    }
    d
}

fn role_name(r: Role) -> &'static str {
    match r {
        Role::Provider => "provider",
        Role::Customer => "customer",
        Role::Peer => "peer",
        Role::RouteServer => "rs",
        Role::RouteServerClient => "rs-client",
    }
}

// ----- the simulator -----

/// One event's convergence in the simulator.
#[derive(Debug, Clone)]
struct SimEvent {
    conv: Convergence,
    /// The last UPDATE naming the prefix to arrive, from the event (ms).
    last_arrival_ms: u64,
}

#[derive(Debug, Clone)]
struct SimRun {
    up: SimEvent,
    down: SimEvent,
    /// Each node's best-path length after the announcement.
    path_len: Vec<Option<usize>>,
}

fn sim_event(net: &mut SimNet, latency: u64, event: Event, origin: usize) -> SimEvent {
    let prefix = Prefix::new(PREFIX).expect("a valid prefix");
    let m = mark(net);
    let (node, _) = Topology::node(origin);
    net.inject(node, event);
    net.run_for(120_000);
    let conv = convergence_since(net, m, &prefix);
    let last_arrival_ms = net
        .log
        .iter()
        .skip(m.0)
        .filter_map(|(at, _, a)| match a {
            Action::Send(_, Message::Update(u))
                if u.announce.iter().any(|r| r.prefix == prefix)
                    || u.withdraw.iter().any(|k| k.prefix == prefix) =>
            {
                Some(at.0 + latency - m.1.0)
            }
            _ => None,
        })
        .max()
        .unwrap_or(0);
    SimEvent {
        conv,
        last_arrival_ms,
    }
}

fn simulate(t: &Topology, origin: usize, latency: u64) -> SimRun {
    simulate_on(t, origin, LinkModel::fixed(latency), 0)
}

/// [`simulate`] on links like `model` (jitter drawn from `seed`). The last
/// UPDATE arrival is exact only without jitter.
fn simulate_on(t: &Topology, origin: usize, model: LinkModel, seed: u64) -> SimRun {
    let prefix = Prefix::new(PREFIX).expect("a valid prefix");
    let latency = model.latency_ms;
    let mut net = SimNet::new(T0, latency).with_links(model, seed);
    t.build(&mut net);
    net.run_for(5_000 + 100 * (latency + model.jitter_ms));
    let attrs = PathAttrs {
        agent: AgentId::new(AGENT),
        ..Default::default()
    };
    let up = sim_event(
        &mut net,
        latency,
        Event::Originate(Route::new(prefix.clone(), Arc::new(attrs))),
        origin,
    );
    let path_len = (0..t.n)
        .map(|i| {
            let (node, _) = Topology::node(i);
            net.engine(&node)
                .and_then(|e| e.best(&prefix))
                .map(|r| r.attrs.as_path.len())
        })
        .collect();
    let down = sim_event(
        &mut net,
        latency,
        Event::WithdrawLocal(RouteKey::new(prefix)),
        origin,
    );
    SimRun { up, down, path_len }
}

// ----- the processes -----

/// Writes node `i`'s node.toml and policy.toml: its neighbours with their
/// roles, local-pref by role.
fn configure_node(t: &Topology, dirs: &[NodeDir], i: usize) {
    let mut neighbors = String::new();
    let mut applies = String::new();
    let mut used = BTreeSet::new();
    for e in t.edges.iter().filter(|e| e.a == i || e.b == i) {
        let j = if e.a == i { e.b } else { e.a };
        let role = Topology::role_of(e, i);
        let nd = &dirs[j];
        // One end dials, the other waits: no connection races.
        let passive = j > i;
        neighbors.push_str(&format!(
            "\n[[neighbor]]\npeer_id = \"{}\"\naddress = \"{}\"\nasn = {}\npassive = {passive}\nlocal_role = \"{}\"\n",
            nd.peer_id,
            nd.addr(),
            nd.asn,
            role_name(role)
        ));
        let import = match role {
            Role::Provider => Some("from-customer"),
            Role::Customer => Some("from-provider"),
            _ => None,
        };
        if let Some(p) = import {
            used.insert(p);
            applies.push_str(&format!(
                "\n[[apply]]\nneighbors = [\"AS{}\"]\nimport = [\"{p}\"]\ndefault-import = \"accept\"\ndefault-export = \"accept\"\n",
                nd.asn
            ));
        }
    }
    let mut policy = String::new();
    for (name, pref) in [("from-customer", 200), ("from-provider", 50)] {
        if used.contains(name) {
            policy.push_str(&format!(
                "[[policy]]\nname = \"{name}\"\n  [[policy.statement]]\n  name = \"local-pref\"\n  then = {{ verdict = \"accept\", local-pref = {pref} }}\n\n"
            ));
        }
    }
    policy.push_str(&applies);
    policy.push_str(
        "\n[[apply]]\nneighbors = [\"*\"]\ndefault-import = \"accept\"\ndefault-export = \"accept\"\n",
    );
    configure(
        &dirs[i],
        &Spec {
            federation: "bench".into(),
            hold: 90,
            policy: Some(policy),
            extra: format!("\n[health]\nenabled = false\n{neighbors}"),
            ..Default::default()
        },
    );
}

/// Sweeps the Loc-RIBs of every node until each has the route (`present`)
/// or has not; returns when each was first seen so (us since the epoch)
/// and the mean time of one sweep.
fn sweep(procs: &[Proc], present: bool, timeout: Duration) -> (Vec<u64>, Duration) {
    let n = procs.len();
    let mut seen = vec![0u64; n];
    let mut pending: Vec<usize> = (0..n).collect();
    let start = Instant::now();
    let mut sweeps = 0u32;
    while !pending.is_empty() {
        assert!(
            start.elapsed() < timeout,
            "after {timeout:?}, {} nodes still {} the route",
            pending.len(),
            if present { "lack" } else { "have" }
        );
        sweeps += 1;
        pending.retain(|&i| {
            let Some(routes) = procs[i].try_get("/v1/routes") else {
                return true;
            };
            let route = routes
                .as_array()
                .and_then(|rs| rs.iter().find(|r| r["prefix"] == PREFIX));
            if route.is_some() != present {
                return true;
            }
            seen[i] = now_us();
            false
        });
    }
    (seen, start.elapsed() / sweeps.max(1))
}

/// [`sweep`] with `poll`; without, waits for each node in turn (one look
/// every 100 ms, so the nodes are left alone), and measures nothing: the
/// times are 0 and the sweep time NaN.
fn settle(procs: &[Proc], present: bool, poll: bool) -> (Vec<u64>, Duration) {
    if poll {
        return sweep(procs, present, Duration::from_secs(60));
    }
    for p in procs {
        wait_for(
            &format!(
                "{} to {} the route",
                p.name,
                if present { "have" } else { "lose" }
            ),
            Duration::from_secs(60),
            || {
                let routes = p.try_get("/v1/routes")?;
                let has = routes
                    .as_array()
                    .is_some_and(|rs| rs.iter().any(|r| r["prefix"] == PREFIX));
                (has == present).then_some(())
            },
        );
    }
    (vec![0; procs.len()], Duration::MAX)
}

/// Waits until no node's log has grown for `quiet` (every UPDATE of the
/// event has been received and logged).
fn wait_quiet(dirs: &[NodeDir], quiet: Duration) {
    let size = || -> u64 {
        dirs.iter()
            .map(|d| {
                std::fs::metadata(d.dir.join("node.log"))
                    .map(|m| m.len())
                    .unwrap_or(0)
            })
            .sum()
    };
    let mut last = size();
    let mut since = Instant::now();
    wait_for("the logs to go quiet", Duration::from_secs(60), || {
        let s = size();
        if s != last {
            last = s;
            since = Instant::now();
        }
        (since.elapsed() >= quiet).then_some(())
    });
}

/// An `UPDATE received` log line.
#[derive(Debug, Clone, Copy)]
struct Arrival {
    at_us: u64,
    node: usize,
    from: usize,
}

/// The UPDATEs (announcing or withdrawing something) the nodes logged
/// between `from_us` and `to_us`, in time order.
fn arrivals(
    dirs: &[NodeDir],
    index: &HashMap<String, usize>,
    from_us: u64,
    to_us: u64,
) -> Vec<Arrival> {
    let mut out = Vec::new();
    for (node, d) in dirs.iter().enumerate() {
        let text = std::fs::read_to_string(d.dir.join("node.log")).unwrap_or_default();
        for line in text.lines().filter(|l| l.contains("UPDATE received")) {
            let field = |k: &str| {
                line.split_whitespace()
                    .find_map(|w| w.strip_prefix(k))
                    .unwrap_or_default()
            };
            let count = |k: &str| field(k).parse::<u64>().unwrap_or(0);
            if count("announced=") + count("withdrawn=") == 0 {
                continue;
            }
            let Some(at_us) = line
                .split_whitespace()
                .next()
                .and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok())
                .and_then(|t| u64::try_from(t.timestamp_micros()).ok())
            else {
                continue;
            };
            let Some(&from) = index.get(field("peer=")) else {
                continue;
            };
            if (from_us..=to_us).contains(&at_us) {
                out.push(Arrival { at_us, node, from });
            }
        }
    }
    out.sort_by_key(|a| a.at_us);
    out
}

/// What the logs say about one event.
#[derive(Debug, Clone)]
struct LogFigures {
    first_us: u64,
    last_us: u64,
    updates: usize,
    /// Median per-hop latency (us) and the hops it is taken over (us).
    hop_us: f64,
    hops: Vec<f64>,
}

fn log_figures(arr: &[Arrival], origin: usize, n: usize) -> LogFigures {
    assert!(!arr.is_empty(), "no UPDATE was logged for the event");
    let mut first: Vec<Option<Arrival>> = vec![None; n];
    for a in arr {
        if first[a.node].is_none() {
            first[a.node] = Some(*a);
        }
    }
    let mut hops: Vec<f64> = first
        .iter()
        .flatten()
        .filter(|f| f.from != origin)
        .filter_map(|f| {
            arr.iter()
                .filter(|a| a.node == f.from && a.at_us < f.at_us)
                .map(|a| a.at_us)
                .max()
                .map(|prev| (f.at_us - prev) as f64)
        })
        .collect();
    LogFigures {
        first_us: arr[0].at_us,
        last_us: arr[arr.len() - 1].at_us,
        updates: arr.len(),
        hop_us: median(&mut hops),
        hops,
    }
}

/// One round's measurements of one event.
#[derive(Debug, Clone)]
struct Measured {
    /// From the origin's change to every Loc-RIB agreeing (polled), ms.
    loc_rib_ms: f64,
    /// From the origin's change to the last UPDATE arrival (logged), ms.
    last_update_ms: f64,
    /// From the trigger (POST or DELETE sent) to every Loc-RIB agreeing, ms.
    trigger_ms: f64,
    updates: usize,
    hop_ms: f64,
    /// Every hop measured (ms).
    hops: Vec<f64>,
    sweep_ms: f64,
}

impl Measured {
    /// From the nodes' first sight of the new state (`seen`, one sweep
    /// taking `sweep`), the logs, the origin's change (`start_us`) and
    /// the trigger (`trigger_us`); the polled figures are NaN without
    /// `poll`.
    fn new(
        seen: &[u64],
        sweep: Duration,
        lf: &LogFigures,
        start_us: u64,
        trigger_us: u64,
        poll: bool,
    ) -> Measured {
        let all = seen.iter().copied().max().unwrap_or(0);
        let ms = |to: u64, from: u64| to.saturating_sub(from) as f64 / 1e3;
        let polled = |v: f64| if poll { v } else { f64::NAN };
        Measured {
            loc_rib_ms: polled(ms(all, start_us)),
            last_update_ms: ms(lf.last_us, start_us),
            trigger_ms: polled(ms(all, trigger_us)),
            updates: lf.updates,
            hop_ms: lf.hop_us / 1e3,
            hops: lf.hops.iter().map(|h| h / 1e3).collect(),
            sweep_ms: polled(sweep.as_secs_f64() * 1e3),
        }
    }
}

// ----- calls -----

/// The front name of the echo tool.
async fn echo_name(c: &RunningService<RoleClient, ()>) -> String {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let tools = c.list_all_tools().await.expect("tools/list");
        if let Some(t) = tools.iter().find(|t| {
            t.description
                .as_deref()
                .is_some_and(|d| d.contains(&format!("capability {PREFIX},")))
        }) {
            return t.name.to_string();
        }
        assert!(Instant::now() < deadline, "no echo tool at the front");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// p50 and p90 (ms) of `calls` sequential echo calls at `url`, and the
/// ASNs of the nodes the last one went through (its trace).
async fn calls(url: &str, calls: usize) -> (f64, f64, Vec<u64>) {
    let c = client(url).await;
    let name = echo_name(&c).await;
    let params = || {
        CallToolRequestParams::new(name.clone()).with_arguments(
            json!({"text": "ping"})
                .as_object()
                .cloned()
                .unwrap_or_default(),
        )
    };
    for _ in 0..5 {
        c.call_tool(params()).await.expect("a warm-up echo call");
    }
    let mut lat = Vec::with_capacity(calls);
    let mut trace = Vec::new();
    for _ in 0..calls {
        let t = Instant::now();
        let r = c.call_tool(params()).await.expect("an echo call");
        lat.push(t.elapsed().as_secs_f64() * 1e3);
        assert_eq!(r.structured_content, Some(json!({"text": "ping"})));
        let meta = serde_json::to_value(r.meta.unwrap_or_default()).unwrap_or_default();
        trace = meta["agent-bgp/trace"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|h| h["asn"].as_u64())
            .collect();
    }
    let _ = c.cancel().await;
    lat.sort_by(|a, b| a.total_cmp(b));
    (pct(&lat, 0.5), pct(&lat, 0.9), trace)
}

fn rss_mib(procs: &[Proc]) -> f64 {
    procs
        .iter()
        .filter_map(|p| std::fs::read_to_string(format!("/proc/{}/status", p.pid())).ok())
        .filter_map(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("VmRSS:"))
                .and_then(|v| v.split_whitespace().next()?.parse::<f64>().ok())
        })
        .sum::<f64>()
        / 1024.0
}

fn start_nodes(t: &Topology, root: &Path) -> (Vec<NodeDir>, Vec<Proc>) {
    let dirs: Vec<NodeDir> = (0..t.n)
        .map(|i| init(root, &format!("n{i:02}"), "bench"))
        .collect();
    let asns: BTreeSet<u32> = dirs.iter().map(|d| d.asn).collect();
    assert_eq!(
        asns.len(),
        t.n,
        "two nodes derived the same ASN; try another SEED"
    );
    for i in 0..t.n {
        configure_node(t, &dirs, i);
    }
    let procs: Vec<Proc> = dirs.iter().map(Proc::start).collect();
    (dirs, procs)
}

fn main() {
    let n = env_or("NODES", 30) as usize;
    assert!((20..=50).contains(&n), "NODES must be 20..=50, not {n}");
    let seed = env_or("SEED", 1);
    let rounds = env_or("ROUNDS", 5).max(1) as usize;
    let poll = env_or("POLL", 1) != 0;
    let n_calls = env_or("CALLS", 50).max(1) as usize;
    let shape = match std::env::var("TOPOLOGY").as_deref() {
        Err(_) | Ok("ba") => Shape::Ba,
        Ok("hierarchy") => Shape::Hierarchy,
        Ok(other) => panic!("TOPOLOGY must be ba or hierarchy, not {other:?}"),
    };

    let t = topology(shape, n, seed);
    assert!(t.is_connected(), "the topology is not connected");
    let adj = adjacency(&t);
    let dist: Vec<Vec<usize>> = (0..n).map(|i| bfs(&adj, i)).collect();
    let ecc: Vec<usize> = dist.iter().map(|d| *d.iter().max().unwrap_or(&0)).collect();
    let diameter = *ecc.iter().max().unwrap_or(&0);
    let origin = (0..n)
        .rev()
        .find(|&i| ecc[i] == diameter)
        .expect("a node of largest eccentricity");
    let peers = t.edges.iter().filter(|e| e.rel == Relation::Peer).count();

    // The simulator first: its paths choose the caller.
    let sim1 = simulate(&t, origin, 1);
    let sim10 = simulate(&t, origin, 10);
    for (a, b, what) in [
        (&sim1.up, &sim10.up, "announcement"),
        (&sim1.down, &sim10.down, "withdrawal"),
    ] {
        assert_eq!(
            a.conv.time_ms * 10,
            b.conv.time_ms,
            "the simulated {what} does not scale with the latency"
        );
    }
    let missing = sim1.path_len.iter().filter(|l| l.is_none()).count();
    assert_eq!(missing, 0, "{missing} nodes get no route in the simulator");
    let far = (0..n)
        .max_by_key(|&i| {
            (
                sim1.path_len[i].unwrap_or(0),
                dist[origin][i],
                usize::MAX - i,
            )
        })
        .expect("a caller");

    println!(
        "topology {shape:?}, seed {seed}: {n} nodes, {} edges ({} provider-customer, {peers} peer), diameter {diameter}",
        t.edges.len(),
        t.edges.len() - peers
    );
    println!(
        "nodes in {}, Loc-RIBs {}",
        std::env::var("ROOT").unwrap_or_else(|_| std::env::temp_dir().display().to_string()),
        if poll {
            "swept during events"
        } else {
            "not polled during events"
        }
    );
    println!(
        "origin n{origin:02}; caller n{far:02}: {} hops in the graph, best path {} ASes",
        dist[origin][far],
        sim1.path_len[far].unwrap_or(0)
    );

    let root = match std::env::var_os("ROOT") {
        Some(dir) => tempfile::tempdir_in(dir),
        None => tempfile::tempdir(),
    }
    .expect("a temporary directory for the nodes");
    let t_start = Instant::now();
    let (dirs, procs) = start_nodes(&t, root.path());
    let index: HashMap<String, usize> = dirs
        .iter()
        .enumerate()
        .map(|(i, d)| (d.peer_id.clone(), i))
        .collect();
    let asn_index: HashMap<u64, usize> = dirs
        .iter()
        .enumerate()
        .map(|(i, d)| (u64::from(d.asn), i))
        .collect();
    wait_for(
        "every session to be established",
        Duration::from_secs(180),
        || {
            (0..n)
                .all(|i| procs[i].established_count() == adj[i].len())
                .then_some(())
        },
    );
    wait_quiet(&dirs, Duration::from_millis(500));
    println!(
        "{n} processes up, {} sessions established in {:.1} s; {:.0} MiB resident in all",
        t.edges.len(),
        t_start.elapsed().as_secs_f64(),
        rss_mib(&procs)
    );

    let o = &procs[origin];
    let agent = json!({
        "id": AGENT,
        "prefix": "bench/echo/*",
        "command": BIN,
        "args": ["example-agent"],
    })
    .to_string();
    let mut ups: Vec<Measured> = Vec::new();
    let mut downs: Vec<Measured> = Vec::new();
    let mut call_figures = None;
    let mut path_match = (0, 0);
    for round in 0..rounds {
        // Announcement.
        let posted = now_us();
        let (code, body) = o.admin_request("POST", "/v1/agents", Some(&agent));
        assert_eq!(code, 201, "POST /v1/agents: {body}");
        let (seen, sweep_time) = settle(&procs, true, poll);
        wait_quiet(&dirs, Duration::from_millis(500));
        let origin_us = o
            .route(PREFIX)
            .and_then(|r| r["origin_time"].as_u64())
            .expect("the origin's route and its origin time")
            * 1000;
        let arr = arrivals(&dirs, &index, posted, now_us());
        let lf = log_figures(&arr, origin, n);
        ups.push(Measured::new(
            &seen, sweep_time, &lf, origin_us, posted, poll,
        ));
        if round == 0 {
            // The paths the processes chose, against the simulator's.
            let final_paths: Vec<usize> = procs
                .iter()
                .map(|p| p.as_path(PREFIX).map_or(usize::MAX, |a| a.len()))
                .collect();
            let same = (0..n)
                .filter(|&i| Some(final_paths[i]) == sim1.path_len[i])
                .count();
            path_match = (same, n);
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("a tokio runtime");
            let local = rt.block_on(calls(&o.mcp_url(), n_calls));
            let remote = rt.block_on(calls(&procs[far].mcp_url(), n_calls));
            let via: Vec<String> = remote
                .2
                .iter()
                .map(|a| {
                    asn_index
                        .get(a)
                        .map_or(format!("AS{a}"), |i| format!("n{i:02}"))
                })
                .collect();
            call_figures = Some((local, remote, via, final_paths[far]));
            wait_quiet(&dirs, Duration::from_millis(500));
        }

        // Withdrawal.
        let deleted = now_us();
        let token = o.token.clone();
        let admin = o.admin_hostport().to_string();
        let del = std::thread::spawn(move || {
            node_harness::raw_http(
                &admin,
                "DELETE",
                &format!("/v1/agents/{AGENT}"),
                &[("Authorization", &format!("Bearer {token}"))],
                None,
            )
        });
        let (gone, sweep_time) = settle(&procs, false, poll);
        let (code, body) = del
            .join()
            .expect("the DELETE thread")
            .expect("DELETE /v1/agents/echo");
        assert_eq!(code, 200, "DELETE /v1/agents/echo: {body}");
        wait_quiet(&dirs, Duration::from_millis(500));
        let arr = arrivals(&dirs, &index, deleted, now_us());
        let lf = log_figures(&arr, origin, n);
        // The origin's withdrawal: one hop before its first neighbour heard.
        let withdrawn_us = lf.first_us.saturating_sub(lf.hop_us as u64);
        downs.push(Measured::new(
            &gone,
            sweep_time,
            &lf,
            withdrawn_us,
            deleted,
            poll,
        ));
        println!(
            "round {round}: announcement {:.1} ms to every Loc-RIB ({:.1} ms to the last UPDATE, hop {:.2} ms), withdrawal {:.1} ms ({:.1} ms, hop {:.2} ms)",
            ups[round].loc_rib_ms,
            ups[round].last_update_ms,
            ups[round].hop_ms,
            downs[round].loc_rib_ms,
            downs[round].last_update_ms,
            downs[round].hop_ms
        );
    }
    let rss = rss_mib(&procs);
    drop(procs);

    println!();
    println!(
        "best paths: the processes' AS-path length equals the simulator's at {}/{} nodes",
        path_match.0, path_match.1
    );
    for (what, ms, sim) in [
        ("announcement", &ups, &sim1.up),
        ("withdrawal", &downs, &sim1.down),
    ] {
        let med = |f: fn(&Measured) -> f64| median(&mut ms.iter().map(f).collect::<Vec<_>>());
        let hop = med(|m| m.hop_ms);
        let loc = med(|m| m.loc_rib_ms);
        let last = med(|m| m.last_update_ms);
        let whole = (hop.round() as u64).max(1);
        let pick = |r: SimRun| if what == "announcement" { r.up } else { r.down };
        let at_whole = pick(simulate(&t, origin, whole));
        // Links as spread as the measured hops: latency the 10th
        // percentile, jitter up to the 90th, over SIM_SEEDS seeds.
        let mut all_hops: Vec<f64> = ms.iter().flat_map(|m| m.hops.iter().copied()).collect();
        all_hops.sort_by(|a, b| a.total_cmp(b));
        let (lo, hi) = (pct(&all_hops, 0.1), pct(&all_hops, 0.9));
        let model = LinkModel {
            latency_ms: (lo.round() as u64).max(1),
            jitter_ms: (hi - lo).round().max(0.0) as u64,
            ..LinkModel::fixed(1)
        };
        let jittered: Vec<SimEvent> = (0..SIM_SEEDS)
            .map(|s| pick(simulate_on(&t, origin, model, s)))
            .collect();
        let j_time = median(
            &mut jittered
                .iter()
                .map(|e| e.conv.time_ms as f64)
                .collect::<Vec<_>>(),
        );
        let j_updates = median(
            &mut jittered
                .iter()
                .map(|e| e.conv.updates as f64)
                .collect::<Vec<_>>(),
        );
        let best_ms = sim.conv.time_ms as f64 * hop;
        let last_ms = sim.last_arrival_ms as f64 * hop;
        let trigger = if what == "announcement" {
            "POST"
        } else {
            "DELETE"
        };
        println!("{what} (median of {rounds} rounds)");
        println!(
            "  per-hop latency (logs)            {hop:.2} ms median, {lo:.2} p10, {hi:.2} p90 (over {} hops)",
            all_hops.len()
        );
        if poll {
            println!(
                "  real: origin to every Loc-RIB     {loc:.1} ms (polled; one sweep of all nodes takes {:.1} ms)",
                med(|m| m.sweep_ms)
            );
        }
        println!(
            "  real: origin to last UPDATE       {last:.1} ms ({:.0} UPDATEs received)",
            med(|m| m.updates as f64)
        );
        if poll {
            println!(
                "  real: {trigger:<6} to every Loc-RIB {:.1} ms",
                med(|m| m.trigger_ms)
            );
        }
        println!(
            "  sim: last best-path change        {} hops = {best_ms:.1} ms at {hop:.2} ms a hop ({} ms with SimNet latency {whole} ms); {} UPDATEs",
            sim.conv.time_ms, at_whole.conv.time_ms, sim.conv.updates
        );
        println!(
            "  sim: last UPDATE arrival          {} hops = {last_ms:.1} ms",
            sim.last_arrival_ms
        );
        println!(
            "  sim, links {}-{} ms: best-path    {j_time:.0} ms, {j_updates:.0} UPDATEs (median of {SIM_SEEDS} seeds)",
            model.latency_ms,
            model.latency_ms + model.jitter_ms
        );
        println!(
            "  real / sim                        {:.2} (every Loc-RIB / best-path change), {:.2} (last UPDATE / last UPDATE), {:.2} (last UPDATE / jittered best-path change)",
            loc / best_ms,
            last / last_ms,
            last / j_time
        );
    }
    if let Some((local, remote, via, hops)) = call_figures {
        println!(
            "echo call from n{far:02} over {hops} AS hops ({}): p50 {:.2} ms, p90 {:.2} ms; at the origin's own front p50 {:.2} ms, p90 {:.2} ms; {:.2} ms a hop",
            via.join(" -> "),
            remote.0,
            remote.1,
            local.0,
            local.1,
            (remote.0 - local.0) / hops.max(1) as f64
        );
    }
    println!("{:.0} MiB resident in all {n} nodes at the end", rss);
    if std::env::var_os("KEEP").is_some() {
        println!(
            "node directories and logs kept in {}",
            root.keep().display()
        );
    }
}
