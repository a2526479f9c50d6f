//! The calls that finished at this hop most recently (from the front,
//! passing through, or ending here), for operators: the admin API's
//! `GET /v1/calls/recent`, the `abgp calls` command and the looking glass.
//! A ring of at most [`RECENT_CALLS`] records, oldest out first.

use std::collections::VecDeque;

use crate::core::forward::{CallRecord, Micros};

/// How many finished calls a node keeps.
pub const RECENT_CALLS: usize = 256;

/// One finished call, with when it finished (node clock, ms since the
/// Unix epoch).
#[derive(Debug, Clone, PartialEq)]
pub struct RecentCall {
    pub record: CallRecord,
    pub finished_ms: u64,
}

/// The ring. See the module documentation.
#[derive(Debug)]
pub struct RecentCalls {
    calls: VecDeque<RecentCall>,
    cap: usize,
}

impl Default for RecentCalls {
    fn default() -> Self {
        RecentCalls::new(RECENT_CALLS)
    }
}

impl RecentCalls {
    pub fn new(cap: usize) -> Self {
        RecentCalls {
            calls: VecDeque::with_capacity(cap.min(RECENT_CALLS)),
            cap,
        }
    }

    pub fn push(&mut self, now: Micros, record: CallRecord) {
        if self.cap == 0 {
            return;
        }
        if self.calls.len() == self.cap {
            self.calls.pop_front();
        }
        self.calls.push_back(RecentCall {
            record,
            finished_ms: now.millis().0,
        });
    }

    /// Newest first.
    pub fn newest_first(&self) -> impl Iterator<Item = &RecentCall> {
        self.calls.iter().rev()
    }

    pub fn len(&self) -> usize {
        self.calls.len()
    }

    pub fn is_empty(&self) -> bool {
        self.calls.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::call::{CallId, CallOp, TraceContext};
    use crate::core::prefix::Prefix;

    fn record(n: u8) -> CallRecord {
        CallRecord {
            call_id: CallId([n; 16]),
            target: Prefix::new("a/b").unwrap(),
            from: None,
            to: None,
            agent: None,
            outcome: "ok",
            elapsed_us: u64::from(n),
            retries: 0,
            op: CallOp::Tool,
            tool: None,
            trace: TraceContext {
                trace_id: [n; 16],
                span_id: [1; 8],
                flags: 1,
            },
            parent_span: None,
            hops: Vec::new(),
        }
    }

    #[test]
    fn the_ring_keeps_the_newest_and_lists_them_first() {
        let mut r = RecentCalls::new(3);
        for n in 1..=5u8 {
            r.push(Micros(u64::from(n) * 1000), record(n));
        }
        let ids: Vec<u8> = r.newest_first().map(|c| c.record.call_id.0[0]).collect();
        assert_eq!(ids, vec![5, 4, 3]);
        assert_eq!(r.newest_first().next().map(|c| c.finished_ms), Some(5));
        assert_eq!(r.len(), 3);
    }

    #[test]
    fn the_default_ring_is_bounded() {
        let mut r = RecentCalls::default();
        for n in 0..(RECENT_CALLS + 10) {
            r.push(Micros(n as u64), record((n % 250) as u8));
        }
        assert_eq!(r.len(), RECENT_CALLS);
    }
}
