//! The replay guard at the origin: which signed CALLs may run here.
//!
//! A transit hop sees every CALL it carries, signed by its caller, and could
//! send it again to the origin. The guard refuses that, within bounds stated
//! here and in docs/security.md:
//!
//! - **Issued time.** A CALL issued more than the clock skew in the future,
//!   or longer ago than the longest call this node runs (plus the skew), is
//!   refused whatever deadline it names. So a call id needs remembering only
//!   until `min(deadline, issued + longest call + skew)`.
//! - **Restart.** The window lives in memory. A non-idempotent CALL issued
//!   before this node started is refused (the window that would have caught
//!   its replay is gone); the caller makes the call again under a new id. A
//!   caller whose clock is behind ours by `d` sees this only for the first
//!   `d` after our start.
//! - **Window.** Each (caller, call id) is kept until its time above. At most
//!   `capacity` are kept; when full, the caller with the most entries loses
//!   its oldest, so flooding the window with one's own calls evicts one's
//!   own entries, never another caller's first.
//! - **Idempotent calls** may arrive again (a hop retries them on another
//!   path), but at most [`MAX_IDEMPOTENT_RUNS`] times in all.

use std::collections::{BTreeSet, HashMap};

use crate::core::call::CallId;
use crate::core::ids::{Millis, NodeId};

/// An idempotent call runs at most this many times at one origin: enough
/// for every hop on the way to retry it on other paths, bounded so a
/// transit cannot replay it at will.
pub const MAX_IDEMPOTENT_RUNS: u32 = 8;

/// What the guard says about a CALL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Verdict {
    /// Run it.
    Run,
    /// Refuse it, and why (the caller sees this text).
    Refuse(String),
}

/// How often a remembered call ran here.
#[derive(Debug, Clone, Copy)]
struct Seen {
    runs: u32,
}

#[derive(Debug)]
pub(super) struct ReplayWindow {
    capacity: usize,
    /// The node's start: non-idempotent calls issued before are refused.
    started: Millis,
    skew_ms: u64,
    max_call_ms: u64,
    seen: HashMap<(NodeId, CallId), Seen>,
    /// Every entry by the time it may be forgotten.
    by_time: BTreeSet<(Millis, NodeId, CallId)>,
    /// Each caller's entries by the time they may be forgotten.
    per_caller: HashMap<NodeId, BTreeSet<(Millis, CallId)>>,
}

/// The facts of a CALL the guard looks at.
#[derive(Debug, Clone, Copy)]
pub(super) struct Arrival {
    pub caller: NodeId,
    pub id: CallId,
    pub issued: Millis,
    pub deadline: Millis,
    pub idempotent: bool,
}

impl ReplayWindow {
    pub fn new(capacity: usize, started: Millis, skew_ms: u64, max_call_ms: u64) -> Self {
        ReplayWindow {
            capacity: capacity.max(1),
            started,
            skew_ms,
            max_call_ms,
            seen: HashMap::new(),
            by_time: BTreeSet::new(),
            per_caller: HashMap::new(),
        }
    }

    /// Checks a CALL that arrived from a peer at `now`, and records it.
    pub fn check(&mut self, now: Millis, a: Arrival) -> Verdict {
        self.expire(now);
        if a.issued.0 > now.0.saturating_add(self.skew_ms) {
            return Verdict::Refuse(format!(
                "the call was issued {} ms in the future (more than the {} ms of clock skew allowed); not run",
                a.issued.0 - now.0,
                self.skew_ms
            ));
        }
        let oldest = self.max_call_ms.saturating_add(self.skew_ms);
        if now.0.saturating_sub(a.issued.0) > oldest {
            return Verdict::Refuse(format!(
                "the call was issued {} ms ago, longer than the longest call this node runs ({} ms) and the clock skew allowed ({} ms); not run",
                now.0 - a.issued.0,
                self.max_call_ms,
                self.skew_ms
            ));
        }
        if !a.idempotent && a.issued < self.started {
            return Verdict::Refuse(format!(
                "the call was issued before this node started ({} ms earlier), so whether it already ran here cannot be told; not run (make the call again)",
                self.started.0 - a.issued.0
            ));
        }
        let k = (a.caller, a.id);
        if let Some(s) = self.seen.get_mut(&k) {
            if !a.idempotent {
                return Verdict::Refuse(format!("call {} was already received (replay)", a.id));
            }
            if s.runs >= MAX_IDEMPOTENT_RUNS {
                return Verdict::Refuse(format!(
                    "call {} already ran {} times here, the most an idempotent call may",
                    a.id, s.runs
                ));
            }
            s.runs += 1;
            return Verdict::Run;
        }
        while self.seen.len() >= self.capacity {
            if !self.evict_from_heaviest() {
                break;
            }
        }
        let until = Millis(
            a.deadline
                .0
                .min(a.issued.0.saturating_add(oldest))
                .max(now.0),
        );
        self.seen.insert(k, Seen { runs: 1 });
        self.by_time.insert((until, a.caller, a.id));
        self.per_caller
            .entry(a.caller)
            .or_default()
            .insert((until, a.id));
        Verdict::Run
    }

    /// Removes the entry kept the shortest of the caller with the most.
    fn evict_from_heaviest(&mut self) -> bool {
        let Some(heaviest) = self
            .per_caller
            .iter()
            .max_by_key(|(n, s)| (s.len(), **n))
            .map(|(n, _)| *n)
        else {
            return false;
        };
        let Some(set) = self.per_caller.get_mut(&heaviest) else {
            return false;
        };
        let Some((until, id)) = set.pop_first() else {
            self.per_caller.remove(&heaviest);
            return false;
        };
        if set.is_empty() {
            self.per_caller.remove(&heaviest);
        }
        self.by_time.remove(&(until, heaviest, id));
        self.seen.remove(&(heaviest, id));
        true
    }

    /// Forgets entries whose time has passed.
    pub fn expire(&mut self, now: Millis) {
        while let Some(&(until, caller, id)) = self.by_time.first() {
            if until > now {
                break;
            }
            self.by_time.pop_first();
            self.seen.remove(&(caller, id));
            if let Some(set) = self.per_caller.get_mut(&caller) {
                set.remove(&(until, id));
                if set.is_empty() {
                    self.per_caller.remove(&caller);
                }
            }
        }
    }

    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.seen.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const START: Millis = Millis(1_000_000);
    const SKEW: u64 = 300_000;
    const MAX: u64 = 3_600_000;

    fn window(capacity: usize) -> ReplayWindow {
        ReplayWindow::new(capacity, START, SKEW, MAX)
    }

    fn call(caller: u8, id: u8, issued: u64, idempotent: bool) -> Arrival {
        Arrival {
            caller: NodeId([caller; 32]),
            id: CallId([id; 16]),
            issued: Millis(issued),
            deadline: Millis(issued + 60_000),
            idempotent,
        }
    }

    fn runs(v: &Verdict) -> bool {
        *v == Verdict::Run
    }

    #[test]
    fn a_replay_is_caught_until_its_time_and_another_callers_id_is_its_own() {
        let mut w = window(10);
        let now = START.0 + 1_000;
        let c = call(1, 2, now, false);
        assert!(runs(&w.check(Millis(now), c)));
        let again = w.check(Millis(now + 50), c);
        assert!(
            matches!(&again, Verdict::Refuse(t) if t.contains("replay")),
            "{again:?}"
        );
        assert!(runs(&w.check(Millis(now + 50), call(3, 2, now, false))));
        w.expire(Millis(now + 60_000));
        assert_eq!(w.len(), 0);
    }

    #[test]
    fn calls_issued_in_the_future_or_too_long_ago_are_refused() {
        let mut w = window(10);
        let now = START.0 + 10 * MAX;
        let future = w.check(Millis(now), call(1, 1, now + SKEW + 1, true));
        assert!(matches!(&future, Verdict::Refuse(t) if t.contains("future")));
        assert!(runs(&w.check(Millis(now), call(1, 2, now + SKEW, true))));
        let mut old = call(1, 3, now - MAX - SKEW - 1, true);
        // A far deadline does not make an old call acceptable.
        old.deadline = Millis(now + 365 * 86_400_000);
        let v = w.check(Millis(now), old);
        assert!(
            matches!(&v, Verdict::Refuse(t) if t.contains("issued")),
            "{v:?}"
        );
    }

    #[test]
    fn a_far_deadline_does_not_keep_an_entry_past_the_longest_call() {
        let mut w = window(10);
        let now = START.0 + 1;
        let mut c = call(1, 1, now, false);
        c.deadline = Millis(u64::MAX);
        assert!(runs(&w.check(Millis(now), c)));
        w.expire(Millis(now + MAX + SKEW));
        assert_eq!(
            w.len(),
            0,
            "forgotten once it would be refused as too old anyway"
        );
        let v = w.check(Millis(now + MAX + SKEW + 1), c);
        assert!(
            matches!(v, Verdict::Refuse(_)),
            "and then it is refused by its issued time"
        );
    }

    #[test]
    fn after_a_restart_non_idempotent_calls_issued_before_it_are_refused() {
        let mut w = window(10);
        let before = call(1, 1, START.0 - 1, false);
        let v = w.check(Millis(START.0 + 10), before);
        assert!(matches!(&v, Verdict::Refuse(t) if t.contains("before this node started")));
        assert!(
            runs(&w.check(Millis(START.0 + 10), call(1, 2, START.0 - 1, true))),
            "an idempotent one may run again"
        );
        assert!(runs(
            &w.check(Millis(START.0 + 10), call(1, 3, START.0, false))
        ));
    }

    #[test]
    fn an_idempotent_call_runs_a_bounded_number_of_times() {
        let mut w = window(10);
        let now = START.0 + 5;
        let c = call(1, 1, now, true);
        for _ in 0..MAX_IDEMPOTENT_RUNS {
            assert!(runs(&w.check(Millis(now), c)));
        }
        let v = w.check(Millis(now), c);
        assert!(
            matches!(&v, Verdict::Refuse(t) if t.contains("8 times")),
            "{v:?}"
        );
    }

    #[test]
    fn a_caller_flooding_the_window_evicts_its_own_entries_not_others() {
        let mut w = window(100);
        let now = START.0 + 5;
        let victim = call(9, 200, now, false);
        assert!(runs(&w.check(Millis(now), victim)));
        for i in 0..1_000u32 {
            let mut c = call(1, 0, now, false);
            c.id = CallId([
                (i % 251) as u8,
                (i / 251) as u8,
                1,
                0,
                0,
                0,
                0,
                0,
                0,
                0,
                0,
                0,
                0,
                0,
                0,
                0,
            ]);
            assert!(runs(&w.check(Millis(now), c)));
        }
        assert_eq!(w.len(), 100, "bounded");
        let v = w.check(Millis(now + 1), victim);
        assert!(
            matches!(&v, Verdict::Refuse(t) if t.contains("replay")),
            "the victim's call is still remembered: {v:?}"
        );
    }
}
