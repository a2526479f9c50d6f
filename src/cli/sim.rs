//! `abgp sim`: the simulator from the command line. Builds a topology of
//! real engines ([`agent_bgp::sim::experiment`]), brings a background
//! table up, runs a sequence of events on one watched prefix under
//! agent-bgp's settings and classic BGP's, and prints what each cost:
//! virtual convergence time, UPDATEs and bytes, path exploration, transient
//! loops and black holes, and whether the network reached the routing the
//! policies give (computed independently). Also the wall time and the peak
//! memory of the process. Deterministic: the same arguments print the
//! same figures (wall time and memory aside).
//!
//! Exit codes: 0 when every run reached the expected routing, 1 when one
//! did not (the table says where), 2 for bad arguments.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use agent_bgp::sim::experiment::{self, EventKind, Protocol, Report, Setup, WallTimes};
use agent_bgp::sim::topology::Topology;
use agent_bgp::sim::{LinkModel, Processing};
use anyhow::{Context, bail};
use serde::Serialize;

#[derive(Debug, clap::Args)]
pub struct SimArgs {
    /// hierarchy (tier-1 clique, regionals, stubs; Gao-Rexford policies),
    /// ba (Barabasi-Albert), er (Erdos-Renyi), chain, ring, grid (open
    /// policies), or edges (read --edges FILE, CAIDA as-rel format).
    #[arg(long, default_value = "hierarchy")]
    topology: String,
    /// Nodes. A hierarchy has N/100 tier-1s (3 to 16), 15 % regionals and
    /// stubs for the rest; a grid is the nearest square.
    #[arg(long, default_value_t = 100)]
    nodes: usize,
    /// An edge-list file (`a|b|-1` provider to customer, `a|b|0` peers).
    #[arg(long)]
    edges: Option<PathBuf>,
    /// Links each new node makes (ba).
    #[arg(long, default_value_t = 2)]
    ba_m: usize,
    /// Probability of each link (er).
    #[arg(long, default_value_t = 0.05)]
    er_p: f64,
    /// Open policies (no roles, shortest paths) on a hierarchy or edge list.
    #[arg(long)]
    open: bool,
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Nodes originating the background table (stubs first).
    #[arg(long, default_value_t = 100)]
    origins: usize,
    /// Prefixes each of them originates.
    #[arg(long, default_value_t = 1)]
    prefixes_per_origin: usize,
    /// Comma-separated events, in order, or `all`: announce, withdraw,
    /// link-down, link-up, crash, restart, partition, heal, med-churn, flap.
    #[arg(long, default_value = "announce,withdraw,link-down")]
    events: String,
    /// agent-bgp, classic or both.
    #[arg(long, default_value = "both")]
    protocol: String,
    /// One-way link latency (ms).
    #[arg(long, default_value_t = 5)]
    latency_ms: u64,
    /// Uniform jitter added per message (ms).
    #[arg(long, default_value_t = 0)]
    jitter_ms: u64,
    /// Probability a transmission is lost and resent after a timeout.
    #[arg(long, default_value_t = 0.0)]
    loss: f64,
    /// Bits per second per link direction (0: unlimited).
    #[arg(long, default_value_t = 0)]
    bandwidth_bps: u64,
    /// Charge signature checks to virtual time, at the cost measured on
    /// this machine (ed25519 verify), per signature on each announced
    /// route (the origin's and one per AS).
    #[arg(long)]
    signatures: bool,
    /// With --signatures, charge this many microseconds per check instead
    /// of measuring (to rerun a recorded run: its JSON has the figure as
    /// `signature_check_us`).
    #[arg(long, requires = "signatures", value_parser = positive_us)]
    signature_check_us: Option<f64>,
    /// Virtual microseconds each message costs the node handling it.
    #[arg(long, default_value_t = 0)]
    per_message_us: u64,
    /// Pass messages as values instead of encoded frames (faster; no bytes).
    #[arg(long)]
    no_frames: bool,
    /// Route flap damping on every engine.
    #[arg(long)]
    damping: bool,
    /// Withdraw-announce cycles of a flap event.
    #[arg(long, default_value_t = 5)]
    flaps: usize,
    /// agent-bgp without its unreachable signal (withdrawals only).
    #[arg(long)]
    no_unreachable_signal: bool,
    /// agent-bgp without tombstones (origin-signed withdrawals).
    #[arg(long)]
    no_tombstones: bool,
    /// Graceful restart on (the neighbours of a crashed node keep its paths).
    #[arg(long)]
    graceful_restart: bool,
    /// Digest every action of every node (slow at scale).
    #[arg(long)]
    trace: bool,
    /// JSON instead of tables.
    #[arg(long)]
    json: bool,
}

#[derive(Serialize)]
struct Run {
    #[serde(flatten)]
    report: Report,
    wall_ms: u128,
    wall: WallTimes,
    /// The process's peak resident memory after this run (KiB).
    peak_rss_kib: Option<u64>,
    /// Resident memory with the converged network still in memory (KiB).
    rss_kib: Option<u64>,
}

#[derive(Serialize)]
struct Output {
    topology: String,
    nodes: usize,
    edges: usize,
    seed: u64,
    origins: usize,
    prefixes_per_origin: usize,
    links: Links,
    signature_check_us: Option<f64>,
    runs: Vec<Run>,
}

#[derive(Serialize)]
struct Links {
    latency_ms: u64,
    jitter_ms: u64,
    loss: f64,
    bandwidth_bps: u64,
}

fn topology(a: &SimArgs) -> anyhow::Result<(Topology, bool)> {
    let n = a.nodes.max(2);
    Ok(match a.topology.as_str() {
        "hierarchy" => {
            let tier1 = (n / 100).clamp(3, 16).min(n);
            let regional = (n * 15 / 100).min(n - tier1);
            let stubs = n - tier1 - regional;
            (Topology::hierarchy(tier1, regional, stubs, a.seed), !a.open)
        }
        "ba" => (Topology::barabasi_albert(n, a.ba_m, a.seed), false),
        "er" => (Topology::erdos_renyi(n, a.er_p, a.seed), false),
        "chain" => (Topology::chain(n), false),
        "ring" => (Topology::ring(n), false),
        "grid" => {
            let w = (n as f64).sqrt().round().max(1.0) as usize;
            (Topology::grid(w, n.div_ceil(w)), false)
        }
        "edges" => {
            let path = a
                .edges
                .as_ref()
                .context("--topology edges needs --edges FILE")?;
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("reading {}", path.display()))?;
            let (t, _) = Topology::from_edge_list(&text)
                .with_context(|| format!("{} is not an edge list", path.display()))?;
            (t, !a.open)
        }
        other => {
            bail!("unknown topology {other:?}; one of hierarchy, ba, er, chain, ring, grid, edges")
        }
    })
}

fn events(s: &str) -> anyhow::Result<Vec<EventKind>> {
    if s == "all" {
        return Ok(EventKind::ALL.to_vec());
    }
    if s.is_empty() || s == "none" {
        return Ok(Vec::new());
    }
    s.split(',')
        .map(|e| e.trim().parse::<EventKind>().map_err(anyhow::Error::msg))
        .collect()
}

/// What one ed25519 signature check costs here, in microseconds.
fn measure_signature_check() -> f64 {
    use ed25519_dalek::{Signer, SigningKey, Verifier};
    let key = SigningKey::from_bytes(&[7u8; 32]);
    let msg = [0x5au8; 200];
    let sig = key.sign(&msg);
    let vk = key.verifying_key();
    let n = 2_000;
    let t = Instant::now();
    let mut ok = 0;
    for _ in 0..n {
        ok += usize::from(vk.verify(&msg, &sig).is_ok());
    }
    let us = t.elapsed().as_secs_f64() * 1e6 / n as f64;
    debug_assert_eq!(ok, n);
    us
}

/// A field of /proc/self/status, in KiB (Linux).
fn status_kib(field: &str) -> Option<u64> {
    let text = std::fs::read_to_string("/proc/self/status").ok()?;
    text.lines()
        .find(|l| l.starts_with(field))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}

pub fn sim(a: SimArgs) -> anyhow::Result<ExitCode> {
    let (topo, gao) = topology(&a)?;
    if !topo.is_connected() {
        bail!(
            "the {} topology with {} nodes is not connected (raise --er-p or change --seed)",
            a.topology,
            topo.n
        );
    }
    let protocols = match a.protocol.as_str() {
        "both" => vec![Protocol::AgentBgp, Protocol::Classic],
        "agent-bgp" => vec![Protocol::AgentBgp],
        "classic" => vec![Protocol::Classic],
        other => bail!("unknown protocol {other:?}; one of agent-bgp, classic, both"),
    };
    if !(0.0..=0.5).contains(&a.loss) {
        bail!("--loss must be between 0 and 0.5");
    }
    let sig_us = a
        .signatures
        .then(|| a.signature_check_us.unwrap_or_else(measure_signature_check));
    let mut setup = Setup::new(topo, gao);
    setup.links = LinkModel {
        latency_ms: a.latency_ms,
        jitter_ms: a.jitter_ms,
        loss: a.loss,
        bandwidth_bps: a.bandwidth_bps,
    };
    setup.seed = a.seed;
    setup.origins = a.origins;
    setup.prefixes_per_origin = a.prefixes_per_origin.max(1);
    setup.frames = !a.no_frames;
    setup.processing = Processing {
        per_message_us: a.per_message_us,
        per_signature_us: sig_us.map_or(0, |us| us.ceil() as u64),
    };
    setup.events = events(&a.events)?;
    setup.flaps = a.flaps;
    setup.damping = a.damping;
    setup.graceful_restart = a.graceful_restart;
    setup.unreachable_signal = !a.no_unreachable_signal;
    setup.tombstones = !a.no_tombstones;
    setup.trace = a.trace;
    let mut runs = Vec::new();
    for p in protocols {
        let t = Instant::now();
        let (report, wall) = experiment::run_timed(&setup, p);
        let wall_ms = t.elapsed().as_millis();
        runs.push(Run {
            report,
            wall_ms,
            wall,
            peak_rss_kib: status_kib("VmHWM:"),
            rss_kib: status_kib("VmRSS:"),
        });
        if !a.json {
            eprintln!("{}: {} ms of wall time", p.name(), wall_ms);
        }
    }
    let out = Output {
        topology: a.topology.clone(),
        nodes: setup.topology.n,
        edges: setup.topology.edges.len(),
        seed: a.seed,
        origins: a.origins,
        prefixes_per_origin: setup.prefixes_per_origin,
        links: Links {
            latency_ms: a.latency_ms,
            jitter_ms: a.jitter_ms,
            loss: a.loss,
            bandwidth_bps: a.bandwidth_bps,
        },
        signature_check_us: sig_us,
        runs,
    };
    let wrong: u64 = out
        .runs
        .iter()
        .map(|r| {
            r.report.setup.mismatches
                + r.report
                    .events
                    .iter()
                    .map(|e| e.mismatches as u64)
                    .sum::<u64>()
        })
        .sum();
    if a.json {
        println!("{}", serde_json::to_string_pretty(&out)?);
    } else {
        print!("{}", table(&out));
    }
    if wrong > 0 {
        eprintln!("abgp sim: {wrong} best routes differ from the expected routing");
        return Ok(ExitCode::from(1));
    }
    Ok(ExitCode::SUCCESS)
}

fn table(o: &Output) -> String {
    use std::fmt::Write;
    let mut s = String::new();
    let _ = writeln!(
        s,
        "{} topology: {} nodes, {} edges, seed {}; {} origins x {} prefixes; links {} ms (+{} ms jitter, {} loss, {} bit/s)",
        o.topology,
        o.nodes,
        o.edges,
        o.seed,
        o.origins,
        o.prefixes_per_origin,
        o.links.latency_ms,
        o.links.jitter_ms,
        o.links.loss,
        if o.links.bandwidth_bps == 0 {
            "unlimited".to_string()
        } else {
            o.links.bandwidth_bps.to_string()
        }
    );
    if let Some(us) = o.signature_check_us {
        let _ = writeln!(s, "signature checks charged at {us:.1} us each");
    }
    for r in &o.runs {
        let rep = &r.report;
        let _ = writeln!(
            s,
            "\n{}: table up in {} ms virtual, {} UPDATEs, {} bytes, {} routes, {} off the expected; wall {} ms (sessions {}, table {}, its check {}), peak RSS {} MiB",
            rep.protocol.name(),
            rep.setup.time_ms,
            rep.setup.updates,
            rep.setup.bytes,
            rep.setup.routes,
            rep.setup.mismatches,
            r.wall_ms,
            r.wall.establish_ms,
            r.wall.table_ms,
            r.wall.table_check_ms,
            r.peak_rss_kib
                .map_or("?".into(), |k| (k / 1024).to_string())
        );
        let _ = writeln!(
            s,
            "{:<10} {:<14} {:>10} {:>8} {:>9} {:>9} {:>6} {:>6} {:>9}",
            "event",
            "target",
            "time ms",
            "updates",
            "bytes",
            "explored",
            "loops",
            "holes",
            "expected"
        );
        for e in &rep.events {
            let c = &e.result;
            let _ = writeln!(
                s,
                "{:<10} {:<14} {:>10} {:>8} {:>9} {:>4}/{:<4.1} {:>6} {:>6} {:>9}",
                e.event.name(),
                e.target,
                c.time_ms,
                c.updates,
                c.bytes,
                c.max_explored,
                c.mean_explored,
                c.transient_loops,
                c.black_holes,
                if e.mismatches == 0 {
                    "ok".to_string()
                } else {
                    format!("{} off", e.mismatches)
                }
            );
        }
    }
    if let [ours, classic] = o.runs.as_slice() {
        let _ = writeln!(s, "\nclassic / agent-bgp:");
        for (a, b) in ours.report.events.iter().zip(&classic.report.events) {
            let ratio = |x: u64, y: u64| {
                if x == 0 {
                    "-".to_string()
                } else {
                    format!("{:.1}x", y as f64 / x as f64)
                }
            };
            let _ = writeln!(
                s,
                "{:<10} time {:>8}  updates {:>8}",
                a.event.name(),
                ratio(a.result.time_ms, b.result.time_ms),
                ratio(a.result.updates, b.result.updates)
            );
        }
    }
    s
}

/// A cost in microseconds: finite, above zero, at most a second.
fn positive_us(s: &str) -> Result<f64, String> {
    let v: f64 = s
        .parse()
        .map_err(|e| format!("{s:?} is not a number: {e}"))?;
    if v.is_finite() && v > 0.0 && v <= 1e6 {
        Ok(v)
    } else {
        Err(format!("{s} is not between 0 and 1,000,000 microseconds"))
    }
}
