//! When the next hop fails: which calls may be retried on another path
//! (not received for sure, or idempotent), how the next path is picked,
//! and the cap on retries.

use super::*;
use crate::core::call::{Call, CallErrorKind, CallOutcome, CallReturn, LegId};
use crate::core::ids::NodeId;
use std::sync::Arc;

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
                sealed: None,
                seal: None,
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
        let wants = e.wants.clone();
        // The old leg is given up either way: a late PROGRESS on it gets
        // one CANCEL back.
        self.table.unlink(key);
        let Some(call) = resend else {
            return false;
        };
        let from = key.peer();
        let own = self.cfg.asn;
        let mut origins = Vec::new();
        let mut resolved = None;
        let next = routes.resolve(&call.origin.target).and_then(|res| {
            if matches!(key, InKey::Front(_)) {
                origins = res.origin_asns(own);
            }
            let res = &*resolved.insert(res);
            self.choose(now, res, &call, (balance, &wants), from.as_ref(), &tried)
                .or_else(|| {
                    // Every path was tried once. One that failed earlier (a
                    // neighbour restarting refuses until its routes are back)
                    // may work now; only the hop that just failed is skipped,
                    // and the retries are capped.
                    if retries >= MAX_RETRIES {
                        return None;
                    }
                    let (peers, _) = res.peer_hops();
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
            for a in origins {
                if !e.origins.contains(&a) {
                    e.origins.push(a);
                }
            }
        }
        self.stats.retries += 1;
        tracing::info!(call = %call.origin.id.short(), failed = %failed.short(), next = %next.short(), %reason, "retrying the call on another path");
        // A call made here is sealed again, for the origin of the new path.
        let seal = resolved.and_then(|res| self.seal_target(key, &res, &next));
        self.send_to(now, key, next, call, seal, out);
        true
    }
}

/// A call retried this many times at one hop is not sent again on a path
/// it already tried: enough to get past a neighbour that refused while
/// restarting, bounded so two refusing neighbours cannot bounce a call
/// until its deadline. (The first round over untried paths is not capped.)
pub(super) const MAX_RETRIES: u32 = 3;

impl Forwarder {
    /// Chooses a next hop for `call` among the paths of `res` with the
    /// balancing method of its prefix ([`balance`](super::balance)),
    /// skipping the sender and the peers already tried; if the whole
    /// balancing set is excluded, the next usable path in order.
    pub(super) fn choose(
        &mut self,
        now: Micros,
        res: &Resolution,
        call: &Call,
        (balance, wants): (bool, &[Arc<str>]),
        sender: Option<&NodeId>,
        tried: &[NodeId],
    ) -> Option<NodeId> {
        let (paths, nearest) = res.balance_paths(|n| self.quotas.to_peer(n));
        let (_, multipath) = res.peer_hops();
        let ps = super::balance::Paths {
            matched: &res.matched,
            paths: &paths,
            multipath,
            nearest,
        };
        let ask = super::balance::Ask {
            target: &call.origin.target,
            id: &call.origin.id,
            asked: balance,
            wants,
            sender,
            tried,
        };
        self.balancer.pick(now, ps, &ask)
    }
}
