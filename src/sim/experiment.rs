//! Experiments on the simulator: a topology of real engines, a table of
//! background prefixes, then a sequence of events on one watched prefix,
//! each measured from the event until the network is quiet again and
//! checked against the routing it must reach ([`super::expected`]).
//!
//! The same experiment runs under each [`Protocol`]: agent-bgp's settings
//! and classic BGP's (RFC 4271: a 30 s advertisement interval with jitter
//! on every session, withdrawals held by it too), so every figure compares
//! the two on identical topologies and events.
//!
//! Everything is deterministic: the same [`Setup`] gives the same
//! [`Report`], and with [`Setup::trace`] the same digest of every action
//! of every node.

use std::collections::{BTreeSet, HashMap};
use std::hash::{Hash, Hasher};
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde::Serialize;

use super::expected::{self, Class, Expected};
use super::topology::{Edge, Relation, T0, Topology};
use super::watch::{Convergence, Watch};
use super::{LinkModel, Processing, SimNet};
use crate::core::attrs::PathAttrs;
use crate::core::engine::{
    Action, DampingConfig, EngineConfig, Event, PeerState, TOMBSTONE_TTL_MS,
};
use crate::core::ids::{AgentId, Asn, NodeId};
use crate::core::message::Message;
use crate::core::prefix::Prefix;
use crate::core::proof::{AsnCert, Tombstone};
use crate::core::route::{Route, RouteKey};
use crate::wire::Limits;

/// Whose behaviour the engines follow.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Protocol {
    /// agent-bgp's defaults: no advertisement interval, withdrawals at once
    /// and with the unreachable signal.
    AgentBgp,
    /// RFC 4271: a 30 s interval (times 0.75 to 1) on every eBGP session,
    /// withdrawals held by it too, no unreachable signal.
    Classic,
}

impl Protocol {
    pub fn name(self) -> &'static str {
        match self {
            Protocol::AgentBgp => "agent-bgp",
            Protocol::Classic => "classic",
        }
    }

    /// The engine settings of this protocol.
    pub fn settings(self, cfg: EngineConfig) -> EngineConfig {
        match self {
            Protocol::AgentBgp => cfg.with_tombstones(true),
            Protocol::Classic => {
                let mut c = cfg.with_mrai(CLASSIC_MRAI, true);
                c.capabilities.unreachable = false;
                c
            }
        }
    }
}

/// Classic BGP's advertisement interval on eBGP sessions.
pub const CLASSIC_MRAI: Duration = Duration::from_secs(30);

/// What happens to the watched prefix or around it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum EventKind {
    /// The event's origin starts originating the prefix.
    Announce,
    /// It stops.
    Withdraw,
    /// The link from the origin to its first neighbour goes down (both
    /// sessions stop at once, as with fast external fallover).
    LinkDown,
    /// It comes back up.
    LinkUp,
    /// That neighbour's process dies.
    Crash,
    /// It starts again, empty, and dials its neighbours.
    Restart,
    /// The origin's side (its first neighbour's customer cone, or the
    /// origin and its neighbours on a flat graph) is cut from the rest.
    Partition,
    Heal,
    /// The origin announces the prefix again with another MED.
    MedChurn,
    /// The origin withdraws and announces again, [`Setup::flaps`] times.
    Flap,
}

impl EventKind {
    pub const ALL: [EventKind; 10] = [
        EventKind::Announce,
        EventKind::Withdraw,
        EventKind::LinkDown,
        EventKind::LinkUp,
        EventKind::Crash,
        EventKind::Restart,
        EventKind::Partition,
        EventKind::Heal,
        EventKind::MedChurn,
        EventKind::Flap,
    ];

    pub fn name(self) -> &'static str {
        match self {
            EventKind::Announce => "announce",
            EventKind::Withdraw => "withdraw",
            EventKind::LinkDown => "link-down",
            EventKind::LinkUp => "link-up",
            EventKind::Crash => "crash",
            EventKind::Restart => "restart",
            EventKind::Partition => "partition",
            EventKind::Heal => "heal",
            EventKind::MedChurn => "med-churn",
            EventKind::Flap => "flap",
        }
    }
}

impl FromStr for EventKind {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        EventKind::ALL
            .into_iter()
            .find(|e| e.name() == s)
            .ok_or_else(|| {
                let names: Vec<&str> = EventKind::ALL.iter().map(|e| e.name()).collect();
                format!("unknown event {s:?}; one of {}", names.join(", "))
            })
    }
}

/// One experiment.
#[derive(Debug, Clone)]
pub struct Setup {
    pub topology: Topology,
    /// Gao-Rexford policies (roles from the edges); false: open policies.
    pub gao: bool,
    pub links: LinkModel,
    pub seed: u64,
    /// Nodes originating background prefixes (stubs first on a hierarchy).
    pub origins: usize,
    /// Prefixes each of them originates.
    pub prefixes_per_origin: usize,
    /// Send real encoded frames (and count their bytes).
    pub frames: bool,
    pub processing: Processing,
    pub events: Vec<EventKind>,
    /// Withdraw-announce cycles of a [`EventKind::Flap`], and the time
    /// between one change and the next.
    pub flaps: usize,
    pub flap_interval_ms: u64,
    /// Route flap damping (RFC 2439 defaults) on every engine.
    pub damping: bool,
    /// The longest an event may take (virtual), after which it is reported
    /// as it stands.
    pub max_event_ms: u64,
    /// Digest every action of every node.
    pub trace: bool,
    /// Offer graceful restart (RFC 4724, 120 s) as the node does. Off by
    /// default: a crash then shows the protocol's own reaction, where
    /// with it the neighbours keep the dead node's paths, stale, until its
    /// restart time runs out.
    pub graceful_restart: bool,
    /// agent-bgp's unreachable signal (classic BGP never has it).
    pub unreachable_signal: bool,
    /// agent-bgp's tombstones (origin-signed withdrawals; classic BGP
    /// never has them). The simulator trusts them: no signature is made or
    /// checked.
    pub tombstones: bool,
}

impl Setup {
    /// A setup with the defaults: 5 ms links, frames on, no background
    /// table, every event once.
    pub fn new(topology: Topology, gao: bool) -> Self {
        Setup {
            topology,
            gao,
            links: LinkModel::fixed(5),
            seed: 1,
            origins: 0,
            prefixes_per_origin: 1,
            frames: true,
            processing: Processing::default(),
            events: EventKind::ALL.to_vec(),
            flaps: 5,
            flap_interval_ms: 2_000,
            damping: false,
            max_event_ms: 3_600_000,
            trace: false,
            graceful_restart: false,
            unreachable_signal: true,
            tombstones: true,
        }
    }
}

/// The table coming up: every background prefix from every origin at once.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SetupReport {
    pub time_ms: u64,
    pub updates: u64,
    pub bytes: u64,
    pub best_changes: u64,
    /// Loc-RIB entries over all nodes once converged.
    pub routes: u64,
    /// (node, prefix) pairs whose best route differs from the expected.
    pub mismatches: u64,
}

/// One event, measured.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct EventReport {
    pub event: EventKind,
    /// What it acted on (node indices).
    pub target: String,
    /// Events done first, unmeasured, so this one can happen (an announce
    /// before a withdrawal, a link down before it comes up).
    pub prepared_by: Vec<EventKind>,
    #[serde(flatten)]
    pub result: Convergence,
    /// Nodes with a route once converged.
    pub reached: usize,
    /// Nodes whose best route has another class or length than expected.
    pub mismatches: usize,
    /// Whether it was still going at [`Setup::max_event_ms`].
    pub timed_out: bool,
}

/// A whole run under one protocol.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Report {
    pub protocol: Protocol,
    pub nodes: usize,
    pub edges: usize,
    pub event_origin: usize,
    pub setup: SetupReport,
    pub events: Vec<EventReport>,
    /// Everything sent over the run, by kind, and the encoded bytes.
    pub messages: std::collections::BTreeMap<&'static str, u64>,
    pub bytes: u64,
    /// A digest of every action (with [`Setup::trace`]).
    pub trace_digest: Option<String>,
}

/// The watched prefix.
pub fn event_prefix() -> Prefix {
    Prefix::new("event/agent").unwrap_or_else(|_| unreachable!("a valid literal"))
}

fn background_prefix(origin: usize, k: usize) -> Prefix {
    Prefix::new(&format!("o{origin}/p{k}")).unwrap_or_else(|_| unreachable!("a valid name"))
}

/// The tombstone `origin` issues when it withdraws its route `key`, when
/// its engine offers tombstones. Unsigned: the simulator's engines take it
/// as verified (the node checks signatures before its engine sees one).
pub(crate) fn tombstone_for(net: &SimNet, origin: NodeId, key: &RouteKey) -> Option<Event> {
    let e = net.engine(&origin)?;
    if !e.config().capabilities.tombstones {
        return None;
    }
    let ended = e.local_origin_time(key)?;
    let now = net.now();
    Some(Event::Tombstone(Arc::new(Tombstone::unsigned(
        key.prefix.clone(),
        Arc::new(AsnCert::unsigned(e.config().asn, origin)),
        ended,
        now,
        now.saturating_add_ms(TOMBSTONE_TTL_MS),
    ))))
}

fn route(prefix: Prefix, med: u32) -> Route {
    Route::new(
        prefix,
        Arc::new(PathAttrs {
            agent: AgentId::new("agent"),
            med,
            ..Default::default()
        }),
    )
}

fn index_of(asn: Asn) -> Option<usize> {
    asn.0.checked_sub(Topology::node(0).1.0).map(|i| i as usize)
}

/// Runs `setup` under `protocol`.
pub fn run(setup: &Setup, protocol: Protocol) -> Report {
    run_inspect(setup, protocol, |_, _| {})
}

/// [`run`], calling `inspect` with the network after each event.
pub fn run_inspect(
    setup: &Setup,
    protocol: Protocol,
    inspect: impl FnMut(&EventReport, &SimNet),
) -> Report {
    World::new(setup, protocol).run(inspect).0
}

/// The wall-clock time the phases of a run took on this machine (not part
/// of the [`Report`], which is the same on every machine).
#[derive(Debug, Clone, Default, Serialize)]
pub struct WallTimes {
    /// Building the engines and bringing every session up.
    pub establish_ms: u128,
    /// The background table converging.
    pub table_ms: u128,
    /// Checking every node's best route for every background prefix.
    pub table_check_ms: u128,
    /// Each event, its preparation and its check.
    pub events_ms: Vec<u128>,
}

/// [`run`], with the wall time of each phase.
pub fn run_timed(setup: &Setup, protocol: Protocol) -> (Report, WallTimes) {
    let t = std::time::Instant::now();
    let w = World::new(setup, protocol);
    let (r, mut times) = w.run(|_, _| {});
    times.establish_ms += t.elapsed().as_millis()
        - times.table_ms
        - times.table_check_ms
        - times.events_ms.iter().sum::<u128>();
    (r, times)
}

/// An engine's settings in an experiment.
fn engine_settings(s: &Setup, protocol: Protocol, cfg: EngineConfig) -> EngineConfig {
    let mut c = protocol.settings(cfg);
    // Nothing here stores the Adj-RIBs; the watch reads the Loc-RIB changes.
    c.emit_adj_rib_changes = false;
    if s.damping {
        c = c.with_damping(DampingConfig {
            enabled: true,
            ..DampingConfig::default()
        });
    }
    if !s.graceful_restart {
        c.capabilities.graceful_restart = None;
    }
    if !s.unreachable_signal {
        c.capabilities.unreachable = false;
    }
    if !s.tombstones {
        c.capabilities.tombstones = false;
    }
    c
}

struct World<'a> {
    s: &'a Setup,
    protocol: Protocol,
    net: SimNet,
    /// Edges (indices into the topology) that are down.
    down: BTreeSet<usize>,
    dead: BTreeSet<usize>,
    /// The watched prefix is originated.
    announced: bool,
    med: u32,
    origin: usize,
    /// The origin's first neighbour and the edge to it.
    neighbour: usize,
    link: usize,
    /// The edges a partition cuts.
    cut: Vec<usize>,
    classes: HashMap<(usize, usize), Class>,
    digest: Option<std::collections::hash_map::DefaultHasher>,
    quiet_ms: u64,
}

impl<'a> World<'a> {
    fn new(s: &'a Setup, protocol: Protocol) -> Self {
        let t = &s.topology;
        let mut net = SimNet::new(T0, s.links.latency_ms).with_links(s.links, s.seed);
        if s.frames {
            net = net.with_frames(Limits::default());
        }
        net = net.with_processing(s.processing);
        if !s.trace {
            net = net.without_log();
        }
        t.build_policy(&mut net, s.gao, |c| engine_settings(s, protocol, c));
        let origin = pick_origin(t, s.seed);
        let (neighbour, link) = t
            .edges
            .iter()
            .enumerate()
            .filter(|(_, e)| e.a == origin || e.b == origin)
            .map(|(i, e)| (if e.a == origin { e.b } else { e.a }, i))
            .min()
            .unwrap_or((origin, usize::MAX));
        let cut = partition(t, s.gao, origin, neighbour);
        let mrai = match protocol {
            Protocol::AgentBgp => 0,
            Protocol::Classic => CLASSIC_MRAI.as_millis() as u64,
        };
        World {
            s,
            protocol,
            net,
            down: BTreeSet::new(),
            dead: BTreeSet::new(),
            announced: false,
            med: 0,
            origin,
            neighbour,
            link,
            cut,
            classes: expected::classes(t),
            digest: s.trace.then(std::collections::hash_map::DefaultHasher::new),
            quiet_ms: mrai + 5_000 + 20 * (s.links.latency_ms + s.links.jitter_ms),
        }
    }

    fn run(mut self, mut inspect: impl FnMut(&EventReport, &SimNet)) -> (Report, WallTimes) {
        let mut times = WallTimes::default();
        self.establish();
        let setup = self.originate_table(&mut times);
        let mut events = Vec::new();
        for &ev in &self.s.events {
            let t = std::time::Instant::now();
            let r = self.event(ev);
            times.events_ms.push(t.elapsed().as_millis());
            inspect(&r, &self.net);
            events.push(r);
        }
        self.flush_trace();
        let t = &self.s.topology;
        let report = Report {
            protocol: self.protocol,
            nodes: t.n,
            edges: t.edges.len(),
            event_origin: self.origin,
            setup,
            events,
            messages: self.net.wire.messages.clone(),
            bytes: self.net.wire.bytes,
            trace_digest: self.digest.map(|d| format!("{:016x}", d.finish())),
        };
        (report, times)
    }

    /// Folds the log into the digest and empties it.
    fn flush_trace(&mut self) {
        if let Some(d) = self.digest.as_mut() {
            for (at, node, action) in self.net.log.drain(..) {
                at.0.hash(d);
                node.hash(d);
                canonical(&action).hash(d);
            }
        }
    }

    fn run_for(&mut self, ms: u64) {
        self.net.run_for(ms);
        self.flush_trace();
    }

    /// Runs until every session is up (or a virtual minute has passed).
    fn establish(&mut self) {
        for _ in 0..60 {
            self.run_for(1_000);
            if self.all_established() {
                return;
            }
        }
    }

    fn all_established(&self) -> bool {
        self.s.topology.edges.iter().enumerate().all(|(i, e)| {
            if self.down.contains(&i) || self.dead.contains(&e.a) || self.dead.contains(&e.b) {
                return true;
            }
            let (na, _) = Topology::node(e.a);
            let (nb, _) = Topology::node(e.b);
            self.net
                .engine(&na)
                .and_then(|x| x.peer_info(&nb))
                .is_some_and(|p| p.state == PeerState::Established)
        })
    }

    fn updates_sent(&self) -> u64 {
        self.net.wire.messages.get("UPDATE").copied().unwrap_or(0)
    }

    /// Runs until no UPDATE has crossed for the quiet time (longer than
    /// the advertisement interval, so nothing is still held), or until
    /// `max` ms have passed. True when it went quiet.
    fn until_quiet(&mut self, max: u64) -> bool {
        let start = self.net.now();
        let mut last = self.updates_sent();
        let mut quiet_since = start;
        loop {
            self.run_for(500);
            let now = self.net.now();
            let sent = self.updates_sent();
            if sent != last {
                last = sent;
                quiet_since = now;
            } else if now.saturating_sub(quiet_since) >= self.quiet_ms {
                return true;
            }
            if now.saturating_sub(start) >= max {
                return false;
            }
        }
    }

    fn originate_table(&mut self, times: &mut WallTimes) -> SetupReport {
        let clock = std::time::Instant::now();
        let t = &self.s.topology;
        let origins = background_origins(t, self.origin, self.s.origins, self.s.seed);
        let start = self.net.now();
        self.net.watch(Watch::all(start));
        for &o in &origins {
            let (node, _) = Topology::node(o);
            for k in 0..self.s.prefixes_per_origin {
                self.net
                    .inject(node, Event::Originate(route(background_prefix(o, k), 0)));
            }
        }
        self.until_quiet(self.s.max_event_ms);
        times.table_ms = clock.elapsed().as_millis();
        let clock = std::time::Instant::now();
        let w = self.net.take_watch().map(|w| w.result());
        let mut mismatches = 0u64;
        let effective = self.effective();
        for &o in &origins {
            let want = self.expect(&effective, o);
            for k in 0..self.s.prefixes_per_origin {
                mismatches += self.mismatches(&want, &background_prefix(o, k)) as u64;
            }
        }
        let routes = self.net.nodes().map(|(_, e)| e.loc_rib_len() as u64).sum();
        let w = w.unwrap_or_else(|| Watch::all(start).result());
        times.table_check_ms = clock.elapsed().as_millis();
        SetupReport {
            time_ms: w.time_ms,
            updates: w.updates,
            bytes: w.bytes,
            best_changes: w.best_changes,
            routes,
            mismatches,
        }
    }

    /// The topology as it stands: edges down and nodes dead left out.
    fn effective(&self) -> Topology {
        let t = &self.s.topology;
        Topology {
            n: t.n,
            edges: t
                .edges
                .iter()
                .enumerate()
                .filter(|(i, e)| {
                    !self.down.contains(i) && !self.dead.contains(&e.a) && !self.dead.contains(&e.b)
                })
                .map(|(_, e)| *e)
                .collect(),
        }
    }

    fn expect(&self, t: &Topology, origin: usize) -> Vec<Expected> {
        if self.dead.contains(&origin) {
            return vec![None; t.n];
        }
        if self.s.gao {
            expected::gao_rexford(t, origin)
        } else {
            expected::shortest(t, origin)
        }
    }

    /// What node `i` has for `prefix`, as a class and a length.
    fn actual(&self, i: usize, prefix: &Prefix) -> Expected {
        let (node, _) = Topology::node(i);
        let best = self.net.engine(&node)?.best(prefix)?;
        let path = &best.attrs.as_path;
        let Some(first) = path.first() else {
            return Some((Class::Origin, 0));
        };
        let class = if self.s.gao {
            let from = index_of(*first)?;
            *self.classes.get(&(i, from))?
        } else {
            Class::Any
        };
        Some((class, path.len()))
    }

    fn mismatches(&self, want: &[Expected], prefix: &Prefix) -> usize {
        (0..self.s.topology.n)
            .filter(|i| !self.dead.contains(i))
            .filter(|&i| self.actual(i, prefix) != want[i])
            .count()
    }

    fn start_watch(&mut self) {
        let prefix = event_prefix();
        let now_best: Vec<(NodeId, Option<Asn>)> = self
            .net
            .nodes()
            .filter_map(|(id, e)| {
                let best = e.best(&prefix)?;
                Some((*id, best.attrs.as_path.first().copied()))
            })
            .collect();
        let w = Watch::new(prefix, self.net.now(), self.net.by_asn(), now_best);
        self.net.watch(w);
    }

    /// Does `ev` unmeasured and waits for quiet.
    fn prepare(&mut self, ev: EventKind) {
        self.act(ev);
        self.until_quiet(self.s.max_event_ms);
    }

    fn event(&mut self, ev: EventKind) -> EventReport {
        let mut prepared_by = Vec::new();
        let needs_up = !matches!(ev, EventKind::Announce);
        // Undo what stands in the way, then make what the event needs.
        let undo = match ev {
            EventKind::LinkDown if self.down.contains(&self.link) => Some(EventKind::LinkUp),
            EventKind::Crash if self.dead.contains(&self.neighbour) => Some(EventKind::Restart),
            EventKind::Partition if self.cut.iter().any(|c| self.down.contains(c)) => {
                Some(EventKind::Heal)
            }
            _ => None,
        };
        if let Some(u) = undo {
            self.prepare(u);
            prepared_by.push(u);
        }
        if ev == EventKind::Announce && self.announced {
            self.prepare(EventKind::Withdraw);
            prepared_by.push(EventKind::Withdraw);
        }
        if needs_up && !self.announced {
            self.prepare(EventKind::Announce);
            prepared_by.push(EventKind::Announce);
        }
        let first = match ev {
            EventKind::LinkUp if !self.down.contains(&self.link) => Some(EventKind::LinkDown),
            EventKind::Restart if !self.dead.contains(&self.neighbour) => Some(EventKind::Crash),
            EventKind::Heal if !self.cut.iter().any(|c| self.down.contains(c)) => {
                Some(EventKind::Partition)
            }
            _ => None,
        };
        if let Some(f) = first {
            self.prepare(f);
            prepared_by.push(f);
        }
        self.start_watch();
        let mut quiet = if ev == EventKind::Flap {
            self.flap()
        } else {
            self.act(ev);
            self.until_quiet(self.s.max_event_ms)
        };
        // Damped paths come back when their penalty has decayed: wait for
        // the routing the policies give, within the bound.
        let prefix = event_prefix();
        let effective = self.effective();
        let want = if self.announced {
            self.expect(&effective, self.origin)
        } else {
            vec![None; effective.n]
        };
        let mut mismatches = self.mismatches(&want, &prefix);
        let started = self.net.now();
        while mismatches > 0 && self.s.damping {
            let spent = self.net.now().saturating_sub(started);
            if spent >= self.s.max_event_ms {
                quiet = false;
                break;
            }
            self.run_for(10_000);
            mismatches = self.mismatches(&want, &prefix);
        }
        let result = self
            .net
            .take_watch()
            .map(|w| w.result())
            .unwrap_or_else(|| Watch::all(started).result());
        EventReport {
            event: ev,
            target: self.target(ev),
            prepared_by,
            result,
            reached: want.iter().filter(|w| w.is_some()).count(),
            mismatches,
            timed_out: !quiet,
        }
    }

    fn target(&self, ev: EventKind) -> String {
        match ev {
            EventKind::LinkDown | EventKind::LinkUp => {
                format!("link {}-{}", self.origin, self.neighbour)
            }
            EventKind::Crash | EventKind::Restart => format!("node {}", self.neighbour),
            EventKind::Partition | EventKind::Heal => format!("{} links", self.cut.len()),
            _ => format!("origin {}", self.origin),
        }
    }

    /// Withdraws and announces again, `flaps` times; ends announced.
    fn flap(&mut self) -> bool {
        for _ in 0..self.s.flaps {
            self.act(EventKind::Withdraw);
            self.run_for(self.s.flap_interval_ms);
            self.act(EventKind::Announce);
            self.run_for(self.s.flap_interval_ms);
        }
        self.until_quiet(self.s.max_event_ms)
    }

    fn set_link(&mut self, edge: usize, up: bool) {
        let Some(e) = self.s.topology.edges.get(edge).copied() else {
            return;
        };
        let (na, _) = Topology::node(e.a);
        let (nb, _) = Topology::node(e.b);
        if up {
            self.down.remove(&edge);
            self.net.link(na, nb);
        } else {
            self.down.insert(edge);
        }
        for (me, other) in [(na, nb), (nb, na)] {
            self.net.inject(
                me,
                Event::AdminEnable {
                    peer: other,
                    enabled: up,
                },
            );
        }
        if !up {
            self.net.unlink(na, nb);
        }
    }

    fn act(&mut self, ev: EventKind) {
        let (origin, _) = Topology::node(self.origin);
        match ev {
            EventKind::Announce => {
                self.announced = true;
                self.net
                    .inject(origin, Event::Originate(route(event_prefix(), self.med)));
            }
            EventKind::Withdraw => {
                self.announced = false;
                let tomb = tombstone_for(&self.net, origin, &RouteKey::new(event_prefix()));
                self.net
                    .inject(origin, Event::WithdrawLocal(RouteKey::new(event_prefix())));
                if let Some(t) = tomb {
                    self.net.inject(origin, t);
                }
            }
            EventKind::MedChurn => {
                self.med += 10;
                self.net
                    .inject(origin, Event::Originate(route(event_prefix(), self.med)));
            }
            EventKind::LinkDown | EventKind::LinkUp => {
                self.set_link(self.link, ev == EventKind::LinkUp);
            }
            EventKind::Partition | EventKind::Heal => {
                for c in self.cut.clone() {
                    self.set_link(c, ev == EventKind::Heal);
                }
            }
            EventKind::Crash => {
                let (node, _) = Topology::node(self.neighbour);
                self.net.kill(node);
                self.dead.insert(self.neighbour);
            }
            EventKind::Restart => {
                let i = self.neighbour;
                let (s, protocol) = (self.s, self.protocol);
                let engine = Topology::engine_for(i, s.gao, |c| engine_settings(s, protocol, c));
                let node = self.net.add_node(engine);
                self.dead.remove(&i);
                for (idx, e) in self.s.topology.edges.iter().enumerate() {
                    if (e.a == i || e.b == i) && !self.down.contains(&idx) {
                        self.net.inject(
                            node,
                            Event::AddPeer(Topology::peer_config(e, i, self.s.gao)),
                        );
                    }
                }
            }
            EventKind::Flap => {
                self.flap();
            }
        }
    }
}

/// An action as text, with the entries of one burst (RIB changes, the
/// routes of an UPDATE) in sorted order: within a burst the engines list
/// them in the order of their hash tables, which are seeded per process so
/// that peers cannot aim collisions at them; everything else is in order.
fn canonical(action: &Action) -> String {
    fn sorted<T: std::fmt::Debug>(items: &[T]) -> Vec<String> {
        let mut v: Vec<String> = items.iter().map(|i| format!("{i:?}")).collect();
        v.sort_unstable();
        v
    }
    match action {
        Action::RibChanges(c) => format!("RibChanges{:?}", sorted(c)),
        Action::Send(peer, Message::Update(u)) => format!(
            "Send({peer:?}, Update{:?}{:?}{})",
            sorted(&u.announce),
            sorted(&u.withdraw),
            u.end_of_rib
        ),
        a => format!("{a:?}"),
    }
}

/// The event's origin: a node with two neighbours or more (so a link or a
/// neighbour can fail without cutting it off), a stub with two providers
/// on a hierarchy, chosen by the seed.
fn pick_origin(t: &Topology, seed: u64) -> usize {
    let mut degree = vec![0usize; t.n];
    let mut providers = vec![0usize; t.n];
    let mut customers = vec![0usize; t.n];
    for e in &t.edges {
        degree[e.a] += 1;
        degree[e.b] += 1;
        if e.rel == Relation::ProviderOf {
            customers[e.a] += 1;
            providers[e.b] += 1;
        }
    }
    let hierarchy = t.edges.iter().any(|e| e.rel == Relation::ProviderOf);
    let good: Vec<usize> = (0..t.n)
        .filter(|&i| {
            if hierarchy {
                customers[i] == 0 && providers[i] >= 2
            } else {
                degree[i] >= 2
            }
        })
        .collect();
    let mut rng = StdRng::seed_from_u64(seed ^ 0x5eed);
    if good.is_empty() {
        t.n.saturating_sub(1)
    } else {
        good[rng.gen_range(0..good.len())]
    }
}

/// `count` nodes other than `except` that originate the background table:
/// stubs (nodes without customers) first, chosen by the seed.
fn background_origins(t: &Topology, except: usize, count: usize, seed: u64) -> Vec<usize> {
    let mut has_customers = vec![false; t.n];
    for e in &t.edges {
        if e.rel == Relation::ProviderOf {
            has_customers[e.a] = true;
        }
    }
    let mut stubs: Vec<usize> = (0..t.n)
        .filter(|&i| i != except && !has_customers[i])
        .collect();
    let mut rest: Vec<usize> = (0..t.n)
        .filter(|&i| i != except && has_customers[i])
        .collect();
    let mut rng = StdRng::seed_from_u64(seed ^ 0xb0b);
    shuffle(&mut stubs, &mut rng);
    shuffle(&mut rest, &mut rng);
    stubs.extend(rest);
    stubs.truncate(count);
    stubs.sort_unstable();
    stubs
}

fn shuffle(v: &mut [usize], rng: &mut StdRng) {
    for i in (1..v.len()).rev() {
        let j = rng.gen_range(0..=i);
        v.swap(i, j);
    }
}

/// The edges that cut the origin's side from the rest: on a hierarchy
/// the customer cone of `neighbour` (when it is the origin's provider;
/// else the origin's own cone), on a flat graph the origin and its
/// neighbours.
fn partition(t: &Topology, gao: bool, origin: usize, neighbour: usize) -> Vec<usize> {
    let mut side = BTreeSet::new();
    let is_provider =
        |p: usize, c: usize, e: &Edge| e.rel == Relation::ProviderOf && e.a == p && e.b == c;
    let root = if gao && t.edges.iter().any(|e| is_provider(neighbour, origin, e)) {
        neighbour
    } else {
        origin
    };
    if gao {
        let mut stack = vec![root];
        side.insert(root);
        while let Some(v) = stack.pop() {
            for e in &t.edges {
                if e.rel == Relation::ProviderOf && e.a == v && side.insert(e.b) {
                    stack.push(e.b);
                }
            }
        }
    } else {
        side.insert(origin);
        for e in &t.edges {
            if e.a == origin {
                side.insert(e.b);
            }
            if e.b == origin {
                side.insert(e.a);
            }
        }
    }
    t.edges
        .iter()
        .enumerate()
        .filter(|(_, e)| side.contains(&e.a) != side.contains(&e.b))
        .map(|(i, _)| i)
        .collect()
}

#[cfg(test)]
mod tests;
