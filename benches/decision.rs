//! Routing-core throughput and memory: 10 eBGP peers each announce the same
//! 100,000 prefixes (1,000,000 paths, with different AS paths, MEDs and origin
//! times, so the decision process has real work), then each withdraws
//! everything (a withdrawal wave of another 1,000,000 updates).
//!
//! Two configurations:
//! - `import-only`: export policy denies everything, so this measures
//!   receive + import policy + decision + Loc-RIB maintenance;
//! - `route-server`: every best-path change is exported to all 10 peers
//!   (export rules, AS prepend, Adj-RIB-Out diff, UPDATE building).
//!
//! Besides criterion's timings, the bench prints updates/s and the memory the
//! engine holds per Loc-RIB route, measured with a counting allocator.
//! Run: `cargo bench --bench decision`. Figures go to docs/benchmarks.md.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::Arc;
use std::sync::atomic::{AtomicIsize, Ordering};
use std::time::{Duration, Instant};

use agent_bgp::core::engine::{Engine, EngineConfig, Event, PeerInfo, RoutePolicy};
use agent_bgp::core::message::{Message, Update};
use agent_bgp::core::{AgentId, Asn, Millis, NodeId, PathAttrs, Prefix, Route, RouteKey};
use agent_bgp::sim::bring_up_passive;
use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};

struct Counting;

static LIVE: AtomicIsize = AtomicIsize::new(0);

// SAFETY: forwards to the system allocator and only counts bytes.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        LIVE.fetch_add(l.size() as isize, Ordering::Relaxed);
        // SAFETY: same contract as the caller's.
        unsafe { System.alloc(l) }
    }
    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        LIVE.fetch_sub(l.size() as isize, Ordering::Relaxed);
        // SAFETY: same contract as the caller's.
        unsafe { System.dealloc(p, l) }
    }
    unsafe fn realloc(&self, p: *mut u8, l: Layout, new: usize) -> *mut u8 {
        LIVE.fetch_add(new as isize - l.size() as isize, Ordering::Relaxed);
        // SAFETY: same contract as the caller's.
        unsafe { System.realloc(p, l, new) }
    }
}

#[global_allocator]
static ALLOC: Counting = Counting;

const PEERS: u64 = 10;
const PREFIXES: usize = 100_000;
const ROUTES_PER_UPDATE: usize = 1_000;
const ATTR_SETS_PER_PEER: usize = 1_000;
const LOCAL_ASN: u32 = 65000;
const T0: Millis = Millis(1_700_000_000_000);

#[derive(Debug)]
struct Policy {
    export: bool,
}

impl RoutePolicy for Policy {
    fn import(&self, _: &PeerInfo, _: &Prefix, _: &mut Arc<PathAttrs>) -> bool {
        true
    }
    fn export(&self, _: &PeerInfo, _: &Prefix, _: &mut Arc<PathAttrs>) -> bool {
        self.export
    }
}

fn peer_id(i: u64) -> NodeId {
    NodeId::from_u64(i + 1)
}

fn peer_asn(i: u64) -> Asn {
    Asn(65001 + i as u32)
}

/// A small deterministic PRNG so inputs are identical on every run.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

fn prefixes() -> Vec<Prefix> {
    (0..PREFIXES)
        .map(|i| {
            Prefix::new(&format!(
                "agents{}/agent{}/tool{}",
                i / 10_000,
                (i / 100) % 100,
                i % 100
            ))
            .unwrap()
        })
        .collect()
}

/// Each peer has its own pool of attribute sets; paths to one prefix differ
/// between peers in AS path length, MED and origin time.
fn attr_pool(peer: u64, rng: &mut Rng) -> Vec<Arc<PathAttrs>> {
    (0..ATTR_SETS_PER_PEER)
        .map(|k| {
            let len = 1 + rng.below(4) as usize;
            let mut path = vec![peer_asn(peer)];
            for _ in 1..len {
                path.push(Asn(64512 + rng.below(500) as u32));
            }
            Arc::new(
                PathAttrs {
                    agent: AgentId::new(&format!("agent-{peer}-{k}")),
                    as_path: path,
                    med: rng.below(4) as u32 * 10,
                    origin_time: Millis(T0.0 - rng.below(4) * 1000),
                    ..Default::default()
                }
                .with_capabilities(["typescript", "testing"]),
            )
        })
        .collect()
}

fn announcements(prefixes: &[Prefix]) -> Vec<(NodeId, Message)> {
    let mut rng = Rng(42);
    let pools: Vec<Vec<Arc<PathAttrs>>> = (0..PEERS).map(|p| attr_pool(p, &mut rng)).collect();
    let mut per_peer: Vec<Vec<Message>> = Vec::new();
    for p in 0..PEERS {
        let mut msgs = Vec::new();
        for chunk in prefixes.chunks(ROUTES_PER_UPDATE) {
            let announce = chunk
                .iter()
                .map(|px| {
                    let a =
                        pools[p as usize][rng.below(ATTR_SETS_PER_PEER as u64) as usize].clone();
                    // A fresh copy, as a decoder would produce.
                    Route::new(Prefix::new(px.as_str()).unwrap(), a)
                })
                .collect();
            msgs.push(Message::Update(Update {
                announce,
                ..Default::default()
            }));
        }
        per_peer.push(msgs);
    }
    interleave(per_peer)
}

fn withdrawals(prefixes: &[Prefix]) -> Vec<(NodeId, Message)> {
    let per_peer = (0..PEERS)
        .map(|_| {
            prefixes
                .chunks(ROUTES_PER_UPDATE)
                .map(|chunk| {
                    Message::Update(Update {
                        withdraw: chunk.iter().map(|p| RouteKey::new(p.clone())).collect(),
                        ..Default::default()
                    })
                })
                .collect()
        })
        .collect();
    interleave(per_peer)
}

/// Peers' messages arrive interleaved, as they would from 10 live sessions.
fn interleave(per_peer: Vec<Vec<Message>>) -> Vec<(NodeId, Message)> {
    let mut out = Vec::new();
    let mut iters: Vec<_> = per_peer.into_iter().map(|v| v.into_iter()).collect();
    loop {
        let mut any = false;
        for (p, it) in iters.iter_mut().enumerate() {
            if let Some(m) = it.next() {
                out.push((peer_id(p as u64), m));
                any = true;
            }
        }
        if !any {
            return out;
        }
    }
}

/// An engine with 10 established eBGP sessions, brought up through OPEN and
/// KEEPALIVE like a real peer would.
fn engine(export: bool) -> Engine {
    let mut cfg = EngineConfig::new(Asn(LOCAL_ASN), NodeId::from_u64(1000));
    cfg.emit_rib_changes = false;
    let mut e = Engine::new(cfg).with_policy(Arc::new(Policy { export }));
    for p in 0..PEERS {
        bring_up_passive(&mut e, T0, peer_id(p), peer_asn(p), 90);
    }
    assert_eq!(
        e.peers()
            .iter()
            .filter(|p| p.state == agent_bgp::core::engine::PeerState::Established)
            .count(),
        PEERS as usize
    );
    e
}

/// CPU time of this thread: unlike wall time, it does not count time the
/// thread spent preempted by other processes, so it measures one core's work
/// even on a busy machine.
fn thread_cpu() -> Duration {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes into the timespec we pass.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    assert_eq!(rc, 0, "clock_gettime(CLOCK_THREAD_CPUTIME_ID) failed");
    Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32)
}

fn feed(e: &mut Engine, msgs: Vec<(NodeId, Message)>) -> usize {
    let mut out = 0;
    for (peer, msg) in msgs {
        out += e.handle(T0, Event::Message { peer, msg }).len();
    }
    out
}

fn report(prefixes: &[Prefix], export: bool) {
    let label = if export {
        "route-server"
    } else {
        "import-only"
    };
    let mut e = engine(export);
    // Messages own fresh allocations, as decoded ones would; each is either
    // handed over to the engine or freed once handled, so after the run the
    // difference is what the engine keeps.
    let base = LIVE.load(Ordering::Relaxed);
    let msgs = announcements(prefixes);
    let t = Instant::now();
    let c = thread_cpu();
    let sent = feed(&mut e, msgs);
    let load = t.elapsed();
    let load_cpu = thread_cpu() - c;
    e.collect_garbage();
    let held = LIVE.load(Ordering::Relaxed) - base;
    let loc = e.loc_rib_len();
    let wd = withdrawals(prefixes);
    let t = Instant::now();
    let c = thread_cpu();
    let sent_wd = feed(&mut e, wd);
    let withdraw = t.elapsed();
    let withdraw_cpu = thread_cpu() - c;
    let rate = |n: usize, d: Duration| n as f64 / d.as_secs_f64();
    let n = PEERS as usize * PREFIXES;
    eprintln!(
        "[{label}] load: {n} paths in {:.3}s wall / {:.3}s cpu = {:.0} updates/s wall, {:.0} per cpu-second \
         ({sent} actions); Loc-RIB {loc} routes",
        load.as_secs_f64(),
        load_cpu.as_secs_f64(),
        rate(n, load),
        rate(n, load_cpu),
    );
    eprintln!(
        "[{label}] withdraw wave: {n} in {:.3}s wall / {:.3}s cpu = {:.0} updates/s wall, {:.0} per cpu-second \
         ({sent_wd} actions); best changes {}",
        withdraw.as_secs_f64(),
        withdraw_cpu.as_secs_f64(),
        rate(n, withdraw),
        rate(n, withdraw_cpu),
        e.stats().best_changes,
    );
    eprintln!(
        "[{label}] memory held by the engine after load: {} bytes = {:.0} bytes per Loc-RIB route \
         ({:.0} bytes per path); interned attribute sets: {}",
        held,
        held as f64 / loc as f64,
        held as f64 / (PEERS as f64 * PREFIXES as f64),
        e.interned_attr_sets(),
    );
}

fn bench(c: &mut Criterion) {
    let prefixes = prefixes();
    report(&prefixes, false);
    report(&prefixes, true);

    let mut g = c.benchmark_group("decision");
    g.sample_size(10);
    g.measurement_time(Duration::from_secs(20));
    g.throughput(Throughput::Elements(PEERS * PREFIXES as u64));
    for export in [false, true] {
        let label = if export {
            "route-server"
        } else {
            "import-only"
        };
        g.bench_function(format!("{label}/load-1M-paths"), |b| {
            b.iter_batched(
                || (engine(export), announcements(&prefixes)),
                |(mut e, msgs)| {
                    feed(&mut e, msgs);
                    e
                },
                BatchSize::PerIteration,
            )
        });
        g.bench_function(format!("{label}/withdraw-1M-paths"), |b| {
            b.iter_batched(
                || {
                    let mut e = engine(export);
                    feed(&mut e, announcements(&prefixes));
                    (e, withdrawals(&prefixes))
                },
                |(mut e, msgs)| {
                    feed(&mut e, msgs);
                    e
                },
                BatchSize::PerIteration,
            )
        });
    }
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
