//! The unreachable signal, against path exploration.
//!
//! A withdrawal alone says only "not this path from me"; the receiver then
//! falls back on the other paths it holds, which are often just as dead
//! (they lead through the same AS, which has not withdrawn them yet), so it
//! announces them, and its neighbours do the same: the network explores
//! stale paths, with transient loops, until the last is withdrawn.
//!
//! With the signal (negotiated as capability 5), a node that withdraws a
//! prefix because it has no route to it at all lists the prefix in the
//! UPDATE's `unreachable` (key 5). The receiver takes it as a claim about
//! the sender's own AS, the one thing the sender speaks for: every path it
//! holds for the prefix that passes through that AS is stale, and is
//! excluded from the decision ([`Exclusion::Unreachable`]), as are paths
//! through it that arrive later. A claim ends when that AS announces the
//! prefix again, and at the latest after [`CLAIM_TTL_MS`], so a claim that
//! was wrong for part of a multi-node AS cannot hide a good path for long.
//!
//! Bounds: a claim is kept only for a prefix the node has paths for, or
//! one the peer had a path for before the same UPDATE withdrew it; one per
//! (prefix, AS), renewed in place, at most [`MAX_CLAIMS`] in all (more are
//! ignored: the paths are then explored as without the signal).

use smallvec::SmallVec;

use super::super::decision::Exclusion;
use super::super::ids::{Asn, Millis};
use super::super::prefix::Prefix;
use super::super::rib::PeerIdx;
use super::Engine;
use super::by_origin::{ByOrigin, Lapses};
use super::import::snapshot;

/// How long a claim lasts at most (30 s).
pub const CLAIM_TTL_MS: u64 = 30_000;

/// The most claims kept at once.
pub const MAX_CLAIMS: usize = 100_000;

/// One AS's claim that it has no route to a prefix, until a time.
#[derive(Debug, Clone, Copy)]
struct Claim {
    asn: Asn,
    until: Millis,
}

impl Lapses for Claim {
    fn asn(&self) -> Asn {
        self.asn
    }
    fn until(&self) -> Millis {
        self.until
    }
}

/// The live claims: for each prefix, the ASes that said they have no
/// route to it, with when each claim expires. A renewed claim moves its
/// time on in place, so renewals add no queue items.
#[derive(Debug, Default)]
pub(super) struct Claims {
    live: ByOrigin<Claim>,
}

impl Claims {
    pub(super) fn next_deadline(&self) -> Option<Millis> {
        self.live.next_deadline()
    }

    /// Queue items waiting (one per live claim, and a bounded number for
    /// claims that ended early).
    #[cfg(test)]
    pub(super) fn queued(&self) -> usize {
        self.live.queued()
    }

    /// Whether a live claim names an AS on `path`.
    fn names(&self, prefix: &Prefix, path: &[Asn]) -> bool {
        self.live.at(prefix).iter().any(|c| path.contains(&c.asn))
    }

    pub(super) fn is_empty(&self) -> bool {
        self.live.is_empty()
    }
}

impl Engine {
    /// Peer `idx` says it has no route to `prefix`; `withdrawn` when it
    /// withdrew a path it had sent us for it in the same UPDATE.
    pub(super) fn on_unreachable(&mut self, idx: PeerIdx, prefix: Prefix, withdrawn: bool) {
        let Some(peer) = self.peer(idx) else { return };
        // Only on sessions that negotiated it, and only from another AS:
        // an AS speaks for itself.
        if !peer.unreachable || peer.internal {
            return;
        }
        let Some(asn) = peer.asn else { return };
        if !withdrawn && !self.rib.dests.contains_key(&prefix) {
            return;
        }
        self.stats.unreachable_in += 1;
        let until = self.now.saturating_add_ms(CLAIM_TTL_MS);
        let claims = &mut self.claims.live;
        let full = claims.len() >= MAX_CLAIMS;
        match claims.get_mut(&prefix, asn) {
            // Renewed in place: its queue item moves on when it comes up.
            Some(c) => c.until = until,
            None if !full => claims.insert(prefix.clone(), Claim { asn, until }),
            None => {
                self.stats.unreachable_ignored += 1;
                return;
            }
        }
        let (dests, mut settle) = self.table_and_settle();
        let Some(dest) = dests.get_mut(&prefix) else {
            return;
        };
        let old = snapshot(dest);
        let mut changed = false;
        for c in &mut dest.candidates {
            if c.peer != PeerIdx::LOCAL && c.excluded.is_none() && c.attrs.as_path.contains(&asn) {
                c.excluded = Some(Exclusion::Unreachable);
                changed = true;
            }
        }
        if changed {
            settle.run(&prefix, dest, old);
        }
    }

    /// `Some(Unreachable)` for a path arriving through an AS that claims
    /// to have no route to the prefix.
    pub(super) fn claimed_unreachable(&self, prefix: &Prefix, path: &[Asn]) -> Option<Exclusion> {
        if self.claims.is_empty() {
            return None;
        }
        self.claims
            .names(prefix, path)
            .then_some(Exclusion::Unreachable)
    }

    /// `asn` announced `prefix`: its claim ends.
    pub(super) fn end_claim(&mut self, asn: Asn, prefix: &Prefix) {
        if self.claims.is_empty() {
            return;
        }
        if self.claims.live.remove(prefix, asn).is_some() {
            self.release(prefix);
        }
    }

    /// Ends the claims whose time is over.
    pub(super) fn expire_claims(&mut self, now: Millis) {
        while let Some((prefix, _)) = self.claims.live.pop_lapsed(now) {
            self.release(&prefix);
        }
    }

    /// Paths of `prefix` excluded by claims that no longer stand compete
    /// again.
    fn release(&mut self, prefix: &Prefix) {
        let live: SmallVec<[Asn; 2]> = self.claims.live.at(prefix).iter().map(|c| c.asn).collect();
        // A path a tombstone also ends stays excluded, as tombstoned.
        let tombstoned: SmallVec<[usize; 4]> = self
            .rib
            .dests
            .get(prefix)
            .map(|d| {
                d.candidates
                    .iter()
                    .enumerate()
                    .filter(|(_, c)| c.excluded == Some(Exclusion::Unreachable))
                    .filter(|(_, c)| {
                        self.tombstoned(prefix, &c.attrs, c.proof.as_deref())
                            .is_some()
                    })
                    .map(|(i, _)| i)
                    .collect()
            })
            .unwrap_or_default();
        let (dests, mut settle) = self.table_and_settle();
        let Some(dest) = dests.get_mut(prefix) else {
            return;
        };
        let old = snapshot(dest);
        let mut changed = false;
        for (i, c) in dest.candidates.iter_mut().enumerate() {
            if c.excluded == Some(Exclusion::Unreachable)
                && !live.iter().any(|a| c.attrs.as_path.contains(a))
            {
                c.excluded = tombstoned.contains(&i).then_some(Exclusion::Tombstoned);
                changed = true;
            }
        }
        if changed {
            settle.run(prefix, dest, old);
        }
    }
}
