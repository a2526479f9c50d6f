//! The calls that finished at this hop most recently (from the front,
//! passing through, or ending here), for operators: the admin API's
//! `GET /v1/calls/recent`, the `abgp calls` command and the looking glass.
//! A ring of at most [`RECENT_CALLS`] records, oldest out first. Each
//! finished call is also handed to the audit sink when the node has one
//! ([`AuditSink`], the `[audit]` log; the sink does no I/O on the caller's
//! thread), with the call's arguments when the node logs them.

use std::collections::{HashMap, VecDeque};

use serde_json::Value as Json;

use super::McpPlane;
use crate::core::call::CallId;
use crate::core::forward::{CallEvent, CallRecord, Micros};

/// Calls whose arguments are held for the audit sink at once; the
/// arguments of calls beyond this are not logged (the line says so).
pub const AUDIT_ARGUMENTS_HELD: usize = 1024;

/// Where finished calls go besides the ring: the node's audit log. Must
/// not block (the node's task calls it).
pub trait AuditSink: Send {
    /// `arguments`: `None` when the node does not log them; `Some(None)`
    /// when it does but they were not held.
    fn finished(&mut self, call: &RecentCall, arguments: Option<Option<Json>>);
}

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
    audit: Option<Box<dyn AuditSink>>,
    /// The arguments of calls in flight, by call id, when the audit log
    /// records them (at most [`AUDIT_ARGUMENTS_HELD`]).
    arguments: Option<HashMap<CallId, Json>>,
}

impl std::fmt::Debug for dyn AuditSink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("AuditSink")
    }
}

impl McpPlane {
    /// Hands every finished call to `sink` too; with `log_arguments`, with
    /// the call's arguments.
    pub fn with_audit(mut self, sink: Box<dyn AuditSink>, log_arguments: bool) -> Self {
        self.recent.audit = Some(sink);
        self.recent.arguments = log_arguments.then(HashMap::new);
        self
    }
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
            audit: None,
            arguments: None,
        }
    }

    /// A call arriving (from the front or a peer): its arguments are held
    /// until it finishes when the audit log records them.
    pub fn arriving(&mut self, ev: &CallEvent) {
        let Some(held) = self.arguments.as_mut() else {
            return;
        };
        if let CallEvent::Front { call, .. } | CallEvent::Inbound { call, .. } = ev
            && held.len() < AUDIT_ARGUMENTS_HELD
        {
            // Sealed to another node, they are not ours to read: the log
            // says so, and how big they are.
            let args = match &call.sealed {
                Some(s) => serde_json::json!({
                    "sealed": {"to": s.to.to_string(), "bytes": s.ct.len()}
                }),
                None => call.arguments.clone(),
            };
            held.insert(call.origin.id, args);
        }
    }

    pub fn push(&mut self, now: Micros, record: CallRecord) {
        let call = RecentCall {
            record,
            finished_ms: now.millis().0,
        };
        if let Some(sink) = self.audit.as_mut() {
            let args = self
                .arguments
                .as_mut()
                .map(|held| held.remove(&call.record.call_id));
            sink.finished(&call, args);
        }
        if self.cap == 0 {
            return;
        }
        if self.calls.len() == self.cap {
            self.calls.pop_front();
        }
        self.calls.push_back(call);
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
    use crate::core::call::{CallOp, TraceContext};
    use crate::core::prefix::Prefix;

    fn record(n: u8) -> CallRecord {
        CallRecord {
            call_id: CallId([n; 16]),
            caller: crate::core::ids::NodeId([n; 32]),
            caller_asn: crate::core::ids::Asn(65001),
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
