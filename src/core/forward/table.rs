//! The call table: one entry per call in flight at this hop, and the
//! indexes that find an entry from what comes back (the leg this hop sent
//! a CALL on, the id of a local run) and from the clock (its timers).
//!
//! Invariants, kept by [`CallTable`]'s methods and checked by its tests:
//! - each outgoing leg and each local id indexes exactly the entry whose
//!   `down` names it, and an entry's leg is unindexed once it is given up
//!   (rerouted, failed or removed);
//! - a Deadline timer exists for every entry, an Ack timer for every entry
//!   with `ack_until`, a Progress timer for every entry holding progress;
//!   removing an entry removes its timers (a timer that outlives its state
//!   is ignored when it fires);
//! - legs given up are remembered (bounded, [`GONE_LEGS`]) so a late
//!   PROGRESS on one gets a single CANCEL back.

use crate::core::call::ReplyKey;
use std::collections::{BTreeSet, HashMap, HashSet, VecDeque};

use super::events::{InKey, LocalId, Micros};
use super::quota::Claim;
use std::sync::Arc;

use crate::core::call::{Call, CallId, CallOrigin, CallReturn, LegId, ProgressInfo, TraceContext};
use crate::core::ids::{AgentId, Asn, NodeId};
use crate::core::prefix::Prefix;

/// Where an entry's call went.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Down {
    Peer { peer: NodeId, leg: LegId },
    Local(LocalId),
}

impl Down {
    pub(super) fn peer(&self) -> Option<NodeId> {
        match self {
            Down::Peer { peer, .. } => Some(*peer),
            Down::Local(_) => None,
        }
    }
}

#[derive(Debug)]
pub(super) struct Entry {
    pub call_id: CallId,
    pub target: Prefix,
    pub started: Micros,
    /// When the CALL went to the current next hop (the start of its
    /// round trip, for the latency balancer).
    pub sent_at: Micros,
    /// Effective deadline at this hop (capped by `max_call_ms`).
    pub deadline: Micros,
    /// An inbound CALL whose answer is still owed, until this time.
    pub ack_until: Option<Micros>,
    pub progress: bool,
    pub down: Down,
    pub agent: Option<AgentId>,
    /// The CALL to resend on another path; kept only for calls that may be
    /// retried (idempotent), or until the CALL is accepted.
    pub resend: Option<Call>,
    pub idempotent: bool,
    pub tried: Vec<NodeId>,
    pub retries: u32,
    pub balance: bool,
    /// Capability tags the caller wants (front calls; for retries).
    pub wants: Vec<Arc<str>>,
    /// What the call holds of the quotas.
    pub claim: Option<Claim>,
    /// When the last PROGRESS went back, and the newest one held since
    /// (relayed at most every [`PROGRESS_INTERVAL_US`]).
    pub progress_sent: Option<Micros>,
    pub progress_held: Option<ProgressInfo>,
    /// PROGRESS messages relayed so far (the first [`PROGRESS_BURST`] go
    /// at once).
    pub progress_count: u32,
    /// NOTIFY and ASK messages relayed back, and REPLY messages relayed on,
    /// for this call (at most [`MAX_SIDE_MESSAGES`]).
    pub side: u32,
    /// PROGRESS messages sent back towards the caller (what the return
    /// says it was preceded by), and received from the current next hop.
    pub back_out: u32,
    pub back_in: u32,
    /// A return that came before all the PROGRESS it says preceded it,
    /// with when its Hold timer is due; released when they arrive or then.
    pub held_return: Option<(Micros, CallReturn)>,
    /// What the caller signed (the tool and operation it named).
    pub origin: Arc<CallOrigin>,
    /// The ASNs that originate the paths the call was sent on: an answer
    /// must be sealed by one of them ([`AnswerSealer::check`]).
    pub origins: Vec<Asn>,
    /// The key of the sealed call's reply: at the origin, the result goes
    /// back under it; at the calling node, the answer is opened with it
    /// (the key of the attempt on the current leg).
    pub reply_key: Option<ReplyKey>,
    /// This hop's trace context (its own span id) and its parent's span.
    pub trace: TraceContext,
    pub parent_span: Option<[u8; 8]>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(super) enum Timer {
    Ack,
    Deadline,
    Progress,
    /// A held return is due (see [`RETURN_HOLD_US`]).
    Hold,
}

/// How long a return waits for PROGRESS it was sent after and that has
/// not arrived yet (PROGRESS travels on streams of its own and can be
/// overtaken).
pub const RETURN_HOLD_US: u64 = 200_000;

/// PROGRESS for one call is relayed back at most this often; what comes
/// in between is merged into the newest (MCP progress is advisory).
pub const PROGRESS_INTERVAL_US: u64 = 50_000;

/// The first this many PROGRESS messages of a call are relayed at once,
/// whatever their spacing: a short call's few steps all reach the client.
pub const PROGRESS_BURST: u32 = 8;

/// Side-channel messages (NOTIFY, ASK, REPLY) relayed for one call at one
/// hop; more are dropped and counted (`side_dropped`).
pub const MAX_SIDE_MESSAGES: u32 = 1024;

/// Legs this hop gave up on, remembered so a late PROGRESS on one gets a
/// single CANCEL back (a PROGRESS on a leg never used is ignored: no
/// amplification).
pub(super) const GONE_LEGS: usize = 4096;

/// The calls in flight at one hop and their indexes. See the module
/// documentation for the invariants.
#[derive(Debug)]
pub(super) struct CallTable {
    calls: HashMap<InKey, Entry>,
    /// Our outgoing legs: leg -> the entry that sent it.
    out_legs: HashMap<LegId, InKey>,
    locals: HashMap<LocalId, InKey>,
    timers: BTreeSet<(Micros, Timer, InKey)>,
    next_leg: u64,
    next_local: u64,
    gone: HashSet<(NodeId, LegId)>,
    gone_order: VecDeque<(NodeId, LegId)>,
}

impl CallTable {
    /// An empty table; leg ids start from `seed` (odd, so two nodes seeded
    /// differently rarely pick the same ids).
    pub fn new(seed: u64) -> Self {
        CallTable {
            calls: HashMap::new(),
            out_legs: HashMap::new(),
            locals: HashMap::new(),
            timers: BTreeSet::new(),
            next_leg: seed | 1,
            next_local: 1,
            gone: HashSet::new(),
            gone_order: VecDeque::new(),
        }
    }

    pub fn len(&self) -> usize {
        self.calls.len()
    }

    pub fn contains(&self, key: &InKey) -> bool {
        self.calls.contains_key(key)
    }

    pub fn get(&self, key: &InKey) -> Option<&Entry> {
        self.calls.get(key)
    }

    /// The entry, to change its call state. Where it went (`down`) and
    /// its deadline are changed only through the table.
    pub fn get_mut(&mut self, key: &InKey) -> Option<&mut Entry> {
        self.calls.get_mut(key)
    }

    pub fn iter(&self) -> impl Iterator<Item = (&InKey, &Entry)> {
        self.calls.iter()
    }

    /// A leg id not in use by any call of this hop.
    pub fn alloc_leg(&mut self) -> LegId {
        loop {
            let leg = LegId(self.next_leg);
            self.next_leg = self.next_leg.wrapping_add(1);
            if !self.out_legs.contains_key(&leg) {
                return leg;
            }
        }
    }

    /// A fresh id for a local run.
    pub fn alloc_local(&mut self) -> LocalId {
        let id = LocalId(self.next_local);
        self.next_local += 1;
        id
    }

    /// Adds an entry (its `down` already set) with its indexes and timers.
    pub fn insert(&mut self, key: InKey, e: Entry) {
        self.timers.insert((e.deadline, Timer::Deadline, key));
        if let Some(t) = e.ack_until {
            self.timers.insert((t, Timer::Ack, key));
        }
        match e.down {
            Down::Peer { leg, .. } => {
                self.out_legs.insert(leg, key);
            }
            Down::Local(id) => {
                self.locals.insert(id, key);
            }
        }
        if let Some(old) = self.calls.insert(key, e) {
            debug_assert!(false, "call table key {key:?} reused");
            self.unindex(key, &old);
        }
    }

    /// Takes an entry out with its indexes and timers; its leg, if it had
    /// one, is remembered as gone.
    pub fn remove(&mut self, key: InKey) -> Option<Entry> {
        let e = self.calls.remove(&key)?;
        self.unindex(key, &e);
        Some(e)
    }

    fn unindex(&mut self, key: InKey, e: &Entry) {
        self.timers.remove(&(e.deadline, Timer::Deadline, key));
        if let Some(t) = e.ack_until {
            self.timers.remove(&(t, Timer::Ack, key));
        }
        if let (Some(sent), Some(_)) = (e.progress_sent, &e.progress_held) {
            self.timers
                .remove(&(Micros(sent.0 + PROGRESS_INTERVAL_US), Timer::Progress, key));
        }
        if let Some((at, _)) = &e.held_return {
            self.timers.remove(&(*at, Timer::Hold, key));
        }
        match e.down {
            Down::Peer { peer, leg } => {
                if self.out_legs.get(&leg) == Some(&key) {
                    self.out_legs.remove(&leg);
                }
                self.remember_gone(peer, leg);
            }
            Down::Local(id) => {
                self.locals.remove(&id);
            }
        }
    }

    /// Gives up the entry's outgoing leg (its CALL failed): what comes
    /// back on it is no longer matched to the entry.
    pub fn unlink(&mut self, key: InKey) {
        if let Some(Down::Peer { peer, leg }) = self.calls.get(&key).map(|e| e.down)
            && self.out_legs.get(&leg) == Some(&key)
        {
            self.out_legs.remove(&leg);
            self.remember_gone(peer, leg);
        }
    }

    /// Sends the entry's call to `peer` on a fresh leg instead of where
    /// it went. Returns the new leg and the peer it went to before; `None`
    /// for no entry, or one that runs locally (a local run is not sent
    /// elsewhere).
    pub fn reroute(&mut self, key: InKey, peer: NodeId) -> Option<(LegId, Option<NodeId>)> {
        if let Down::Local(_) = self.calls.get(&key)?.down {
            return None;
        }
        self.unlink(key);
        let leg = self.alloc_leg();
        let e = self.calls.get_mut(&key)?;
        let before = e.down.peer();
        e.down = Down::Peer { peer, leg };
        self.out_legs.insert(leg, key);
        Some((leg, before))
    }

    /// The entry whose CALL went to `peer` on `leg` (another peer naming
    /// our leg finds nothing).
    pub fn by_leg(&self, peer: &NodeId, leg: LegId) -> Option<InKey> {
        let key = *self.out_legs.get(&leg)?;
        match self.calls.get(&key)?.down {
            Down::Peer { peer: p, leg: l } if p == *peer && l == leg => Some(key),
            _ => None,
        }
    }

    pub fn by_local(&self, id: LocalId) -> Option<InKey> {
        self.locals.get(&id).copied()
    }

    /// True once for a leg this hop gave up on (then forgotten).
    pub fn take_gone(&mut self, peer: NodeId, leg: LegId) -> bool {
        self.gone.remove(&(peer, leg))
    }

    fn remember_gone(&mut self, peer: NodeId, leg: LegId) {
        if self.gone_order.len() >= GONE_LEGS
            && let Some(old) = self.gone_order.pop_front()
        {
            self.gone.remove(&old);
        }
        if self.gone.insert((peer, leg)) {
            self.gone_order.push_back((peer, leg));
        }
    }

    /// Arms a timer for an entry (Progress: the entry holds progress).
    pub fn arm(&mut self, at: Micros, timer: Timer, key: InKey) {
        self.timers.insert((at, timer, key));
    }

    pub fn disarm(&mut self, at: Micros, timer: Timer, key: InKey) {
        self.timers.remove(&(at, timer, key));
    }

    /// The next timer due at `now`, taken off the table.
    pub fn pop_due(&mut self, now: Micros) -> Option<(Timer, InKey)> {
        let &(t, timer, key) = self.timers.first()?;
        if t > now {
            return None;
        }
        self.timers.remove(&(t, timer, key));
        Some((timer, key))
    }

    /// When the next timer is due.
    pub fn next_due(&self) -> Option<Micros> {
        self.timers.first().map(|(t, _, _)| *t)
    }

    /// The leg given up last (for tests).
    #[cfg(test)]
    pub fn last_gone(&self) -> Option<LegId> {
        self.gone_order.back().map(|(_, l)| *l)
    }

    /// Checks the invariants (for tests).
    #[cfg(test)]
    pub fn check(&self) -> Result<(), String> {
        for (leg, key) in &self.out_legs {
            match self.calls.get(key).map(|e| e.down) {
                Some(Down::Peer { leg: l, .. }) if l == *leg => {}
                other => {
                    return Err(format!(
                        "leg {leg:?} indexes {key:?} whose down is {other:?}"
                    ));
                }
            }
        }
        for (id, key) in &self.locals {
            match self.calls.get(key).map(|e| e.down) {
                Some(Down::Local(l)) if l == *id => {}
                other => {
                    return Err(format!(
                        "local {id:?} indexes {key:?} whose down is {other:?}"
                    ));
                }
            }
        }
        for (key, e) in &self.calls {
            if !self.timers.contains(&(e.deadline, Timer::Deadline, *key)) {
                return Err(format!("{key:?} has no deadline timer"));
            }
            if let Some(t) = e.ack_until
                && !self.timers.contains(&(t, Timer::Ack, *key))
            {
                return Err(format!("{key:?} owes an answer but has no timer"));
            }
            if let Down::Local(id) = e.down
                && self.locals.get(&id) != Some(key)
            {
                return Err(format!("{key:?} runs locally as {id:?}, not indexed"));
            }
        }
        for (_, _, key) in &self.timers {
            if !self.calls.contains_key(key) {
                return Err(format!("a timer outlives {key:?}"));
            }
        }
        if self.gone.len() > GONE_LEGS || self.gone_order.len() > GONE_LEGS {
            return Err("gone legs over their bound".into());
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::forward::events::FrontId;

    fn entry(down: Down, deadline: u64, ack: Option<u64>) -> Entry {
        Entry {
            call_id: CallId([7; 16]),
            target: "a/b".parse().expect("prefix"),
            started: Micros(0),
            sent_at: Micros(0),
            deadline: Micros(deadline),
            ack_until: ack.map(Micros),
            progress: false,
            down,
            agent: None,
            resend: None,
            idempotent: false,
            tried: Vec::new(),
            retries: 0,
            balance: false,
            wants: Vec::new(),
            claim: None,
            progress_sent: None,
            progress_held: None,
            progress_count: 0,
            side: 0,
            back_out: 0,
            back_in: 0,
            held_return: None,
            origins: Vec::new(),
            reply_key: None,
            origin: Arc::new(crate::core::call::CallOrigin {
                id: CallId([7; 16]),
                caller: node(9),
                caller_asn: crate::core::ids::Asn(65009),
                communities: Vec::new(),
                target: "a/b".parse().expect("prefix"),
                op: crate::core::call::CallOp::Tool,
                idempotent: false,
                tool: None,
                args_digest: [0; 32],
                issued: crate::core::ids::Millis(0),
                deadline: crate::core::ids::Millis(deadline / 1000),
                cert: None,
                signature: None,
            }),
            trace: TraceContext {
                trace_id: [7; 16],
                span_id: [1; 8],
                flags: 1,
            },
            parent_span: None,
        }
    }

    fn node(b: u8) -> NodeId {
        NodeId([b; 32])
    }

    #[test]
    fn indexes_follow_reroutes_and_removal() {
        let mut t = CallTable::new(10);
        let k = InKey::Peer(node(1), LegId(5));
        let leg = t.alloc_leg();
        t.insert(k, entry(Down::Peer { peer: node(2), leg }, 100, Some(50)));
        t.check().expect("after insert");
        assert_eq!(t.by_leg(&node(2), leg), Some(k));
        assert_eq!(t.by_leg(&node(3), leg), None, "another peer naming our leg");
        let (leg2, before) = t.reroute(k, node(3)).expect("reroute");
        t.check().expect("after reroute");
        assert_eq!(before, Some(node(2)));
        assert_ne!(leg, leg2);
        assert_eq!(t.by_leg(&node(2), leg), None, "the old leg is given up");
        assert_eq!(t.by_leg(&node(3), leg2), Some(k));
        assert!(t.take_gone(node(2), leg), "the old leg is remembered once");
        assert!(!t.take_gone(node(2), leg));
        let l = t.alloc_local();
        let f = InKey::Front(FrontId(1));
        t.insert(f, entry(Down::Local(l), 80, None));
        t.check().expect("with a local run");
        assert_eq!(t.by_local(l), Some(f));
        assert!(t.remove(k).is_some());
        assert!(t.remove(f).is_some());
        t.check().expect("after removal");
        assert_eq!(t.len(), 0);
        assert_eq!(t.next_due(), None, "no timer outlives its entry");
        assert!(t.take_gone(node(3), leg2));
    }

    #[test]
    fn timers_come_due_in_order() {
        let mut t = CallTable::new(1);
        let a = InKey::Front(FrontId(1));
        let b = InKey::Front(FrontId(2));
        let (la, lb) = (t.alloc_local(), t.alloc_local());
        t.insert(a, entry(Down::Local(la), 300, None));
        t.insert(b, entry(Down::Local(lb), 200, Some(100)));
        assert_eq!(t.next_due(), Some(Micros(100)));
        assert_eq!(t.pop_due(Micros(99)), None);
        assert_eq!(t.pop_due(Micros(250)), Some((Timer::Ack, b)));
        assert_eq!(t.pop_due(Micros(250)), Some((Timer::Deadline, b)));
        assert_eq!(t.pop_due(Micros(250)), None);
        assert_eq!(t.next_due(), Some(Micros(300)));
    }

    #[test]
    fn gone_legs_stay_bounded() {
        let mut t = CallTable::new(1);
        for i in 0..(GONE_LEGS as u64 + 100) {
            t.remember_gone(node(1), LegId(i));
        }
        t.check().expect("bounded");
        assert!(!t.take_gone(node(1), LegId(0)), "the oldest are forgotten");
        assert!(t.take_gone(node(1), LegId(GONE_LEGS as u64 + 99)));
    }

    /// Any sequence of the table's operations keeps its invariants, and
    /// what it finds by leg or local id is what was put there.
    mod props {
        use super::*;
        use proptest::prelude::*;

        #[derive(Debug, Clone)]
        enum Op {
            InsertPeer { key: u8, peer: u8, ack: bool },
            InsertLocal { key: u8 },
            Reroute { key: u8, peer: u8 },
            Unlink { key: u8 },
            Remove { key: u8 },
            Pop { at: u16 },
            Arm { key: u8, at: u16 },
        }

        fn op() -> impl Strategy<Value = Op> {
            prop_oneof![
                (0u8..8, 1u8..4, any::<bool>()).prop_map(|(key, peer, ack)| Op::InsertPeer {
                    key,
                    peer,
                    ack
                }),
                (0u8..8).prop_map(|key| Op::InsertLocal { key }),
                (0u8..8, 1u8..4).prop_map(|(key, peer)| Op::Reroute { key, peer }),
                (0u8..8).prop_map(|key| Op::Unlink { key }),
                (0u8..8).prop_map(|key| Op::Remove { key }),
                (0u16..2000).prop_map(|at| Op::Pop { at }),
                (0u8..8, 0u16..2000).prop_map(|(key, at)| Op::Arm { key, at }),
            ]
        }

        fn key(k: u8) -> InKey {
            InKey::Front(FrontId(u64::from(k)))
        }

        proptest! {
            #[test]
            fn invariants_hold_after_any_operations(ops in proptest::collection::vec(op(), 1..80)) {
                let mut t = CallTable::new(3);
                for o in ops {
                    match o {
                        Op::InsertPeer { key: k, peer, ack } => {
                            if !t.contains(&key(k)) {
                                let leg = t.alloc_leg();
                                let ack = ack.then_some(500);
                                t.insert(key(k), entry(Down::Peer { peer: node(peer), leg }, 1000, ack));
                                prop_assert_eq!(t.by_leg(&node(peer), leg), Some(key(k)));
                            }
                        }
                        Op::InsertLocal { key: k } => {
                            if !t.contains(&key(k)) {
                                let id = t.alloc_local();
                                t.insert(key(k), entry(Down::Local(id), 1500, None));
                                prop_assert_eq!(t.by_local(id), Some(key(k)));
                            }
                        }
                        Op::Reroute { key: k, peer } => {
                            if let Some((leg, _)) = t.reroute(key(k), node(peer)) {
                                prop_assert_eq!(t.by_leg(&node(peer), leg), Some(key(k)));
                            }
                        }
                        Op::Unlink { key: k } => t.unlink(key(k)),
                        Op::Remove { key: k } => {
                            t.remove(key(k));
                            prop_assert!(!t.contains(&key(k)));
                        }
                        Op::Pop { at } => {
                            // A popped timer is the caller's to act on:
                            // take the entry out as the forwarder would on
                            // a deadline, keep it for the others.
                            if let Some((timer, k)) = t.pop_due(Micros(u64::from(at))) {
                                match timer {
                                    Timer::Deadline => {
                                        t.remove(k);
                                    }
                                    Timer::Ack => {
                                        if let Some(e) = t.get_mut(&k) {
                                            e.ack_until = None;
                                        }
                                    }
                                    Timer::Progress | Timer::Hold => {}
                                }
                            }
                        }
                        Op::Arm { key: k, at } => {
                            // Progress is held only for entries in the table.
                            if let Some(e) = t.get_mut(&key(k))
                                && e.progress_held.is_none()
                            {
                                let at = Micros(u64::from(at));
                                e.progress_sent = Some(Micros(at.0.saturating_sub(PROGRESS_INTERVAL_US)));
                                e.progress_held = Some(ProgressInfo { progress: 1.0, total: None, message: None });
                                let sent = e.progress_sent.map(|s| s.0).unwrap_or(0);
                                t.arm(Micros(sent + PROGRESS_INTERVAL_US), Timer::Progress, key(k));
                            }
                        }
                    }
                    prop_assert!(t.check().is_ok(), "{:?}", t.check());
                }
            }
        }
    }
}
