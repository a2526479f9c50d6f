//! When the next hop fails: which calls may be retried on another path
//! (not received for sure, or idempotent), how the next path is picked,
//! and the cap on retries.

use super::*;
use crate::core::call::{CallErrorKind, CallId, CallOutcome, CallReturn, LegId};
use crate::core::ids::NodeId;

/// A CALL this hop sent that is lost: to which peer, whether the peer may
/// have received it (then only an idempotent call is retried), and why.
#[derive(Debug, Clone, Copy)]
pub(super) struct Lost<'a> {
    pub peer: NodeId,
    pub maybe_received: bool,
    pub reason: &'a str,
}

impl Forwarder {
    pub(super) fn on_send_failed(
        &mut self,
        now: Micros,
        routes: &impl CallRoutes,
        leg: LegId,
        lost: Lost<'_>,
        out: &mut Vec<CallAction>,
    ) {
        let Some(key) = self.table.by_leg(&lost.peer, leg) else {
            return;
        };
        self.fail_downstream(now, routes, key, lost, out);
    }

    pub(super) fn on_peer_down(
        &mut self,
        now: Micros,
        routes: &impl CallRoutes,
        peer: NodeId,
        out: &mut Vec<CallAction>,
    ) {
        let mut affected: Vec<(InKey, bool)> = self
            .table
            .iter()
            .filter_map(|(k, e)| {
                let sent_there = matches!(e.down, Down::Peer { peer: p, .. } if p == peer);
                let came_from = matches!(k, InKey::Peer(p, _) if *p == peer);
                (sent_there || came_from).then_some((*k, came_from))
            })
            .collect();
        affected.sort();
        for (key, came_from) in affected {
            if came_from {
                // Nobody is left to answer: stop whatever runs for it.
                self.abandon(now, key, "the caller's hop went away", out);
            } else {
                let lost = Lost {
                    peer,
                    maybe_received: true,
                    reason: "connection closed",
                };
                self.fail_downstream(now, routes, key, lost, out);
            }
        }
    }

    /// The CALL sent for `key` to `peer` is lost. Retry or fail.
    pub(super) fn fail_downstream(
        &mut self,
        now: Micros,
        routes: &impl CallRoutes,
        key: InKey,
        lost: Lost<'_>,
        out: &mut Vec<CallAction>,
    ) {
        let Lost {
            peer,
            maybe_received,
            reason,
        } = lost;
        let Some(e) = self.table.get(&key) else {
            return;
        };
        let idempotent = e.idempotent;
        if (!maybe_received || idempotent)
            && self.retry_elsewhere(now, routes, key, peer, reason, out)
        {
            return;
        }
        let what = if maybe_received {
            "the tool may or may not have run"
        } else {
            "the call was not delivered"
        };
        let why_no_retry = if !maybe_received || idempotent {
            "no other path"
        } else {
            "not retried: the tool is not marked read-only or idempotent"
        };
        let msg = format!(
            "{}: next hop {} failed mid-call ({reason}); {what}; {why_no_retry}",
            self.here(),
            peer.short()
        );
        self.finish(
            now,
            key,
            CallReturn {
                sent_back: 0,
                outcome: CallOutcome::err(CallErrorKind::NextHopDown, msg),
                trace: Vec::new(),
            },
            out,
        );
    }

    /// Sends the call for `key` on another usable path than the ones
    /// tried, within its deadline. False when there is none (or no copy of
    /// the CALL is left).
    pub(super) fn retry_elsewhere(
        &mut self,
        now: Micros,
        routes: &impl CallRoutes,
        key: InKey,
        failed: NodeId,
        reason: &str,
        out: &mut Vec<CallAction>,
    ) -> bool {
        let Some(e) = self.table.get(&key) else {
            return false;
        };
        let resend = e.resend.clone().filter(|_| now < e.deadline);
        let (tried, retries, balance) = (e.tried.clone(), e.retries, e.balance);
        // The old leg is given up either way: a late PROGRESS on it gets
        // one CANCEL back.
        self.table.unlink(key);
        let Some(call) = resend else {
            return false;
        };
        let from = key.peer();
        let next = routes.resolve(&call.origin.target).and_then(|res| {
            let (peers, equal) = res.peer_hops();
            pick(
                &peers,
                equal,
                &call.origin.id,
                balance,
                from.as_ref(),
                &tried,
            )
            .or_else(|| {
                // Every path was tried once. One that failed earlier (a
                // neighbour restarting refuses until its routes are back)
                // may work now; only the hop that just failed is skipped,
                // and the retries are capped.
                if retries >= MAX_RETRIES {
                    return None;
                }
                peers
                    .iter()
                    .copied()
                    .find(|n| *n != failed && Some(n) != from.as_ref())
            })
        });
        let Some(next) = next.filter(|n| self.quotas.next_hop_has_room(n)) else {
            return false;
        };
        if let Some(e) = self.table.get_mut(&key) {
            e.retries += 1;
        }
        self.stats.retries += 1;
        tracing::info!(call = %call.origin.id.short(), failed = %failed.short(), next = %next.short(), %reason, "retrying the call on another path");
        self.send_to(key, next, call, out);
        true
    }
}

/// A call retried this many times at one hop is not sent again on a path
/// it already tried: enough to get past a neighbour that refused while
/// restarting, bounded so two refusing neighbours cannot bounce a call
/// until its deadline. (The first round over untried paths is not capped.)
pub(super) const MAX_RETRIES: u32 = 3;

/// Chooses a next hop: among the first `equal` candidates (by call id when
/// balancing, else the first), skipping the sender and peers already tried;
/// if those are all excluded, the next usable one in order.
pub(super) fn pick(
    peers: &[NodeId],
    equal: usize,
    id: &CallId,
    balance: bool,
    sender: Option<&NodeId>,
    tried: &[NodeId],
) -> Option<NodeId> {
    let usable = |n: &NodeId| Some(n) != sender && !tried.contains(n);
    let head: Vec<NodeId> = peers
        .iter()
        .take(equal)
        .copied()
        .filter(|n| usable(n))
        .collect();
    if !head.is_empty() {
        let i = if balance && head.len() > 1 {
            let mut h = [0u8; 8];
            h.copy_from_slice(&id.0[..8]);
            (u64::from_le_bytes(h) % head.len() as u64) as usize
        } else {
            0
        };
        return Some(head[i]);
    }
    peers.iter().skip(equal).copied().find(|n| usable(n))
}
