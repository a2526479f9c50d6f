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

use std::cmp::Reverse;
use std::collections::BinaryHeap;

use smallvec::SmallVec;

use super::super::decision::Exclusion;
use super::super::ids::{Asn, Millis};
use super::super::prefix::Prefix;
use super::super::rib::{FastMap, PeerIdx};
use super::Engine;
use super::import::snapshot;

/// How long a claim lasts at most (30 s).
pub const CLAIM_TTL_MS: u64 = 30_000;

/// The most claims kept at once.
pub const MAX_CLAIMS: usize = 100_000;

/// The live claims: for each prefix, the ASes that said they have no
/// route to it, with when each claim expires.
#[derive(Debug, Default)]
pub(super) struct Claims {
    by_prefix: FastMap<Prefix, SmallVec<[(Asn, Millis); 2]>>,
    /// One entry per claim, soonest first, with the expiry the claim had
    /// when it was made; a renewed claim is put back with its new expiry
    /// when the old one comes up, so renewals add no entries.
    expiry: BinaryHeap<Reverse<(Millis, Prefix, Asn)>>,
    len: usize,
}

impl Claims {
    pub(super) fn next_deadline(&self) -> Option<Millis> {
        self.expiry.peek().map(|Reverse((t, _, _))| *t)
    }

    /// Drops the entries of claims that ended early (by an announcement),
    /// once they outnumber the live ones: made and ended again and again,
    /// claims cannot grow the queue without bound.
    fn compact(&mut self) {
        if self.expiry.len() <= 2 * self.len + 64 {
            return;
        }
        self.expiry = self
            .by_prefix
            .iter()
            .flat_map(|(p, c)| c.iter().map(|(a, until)| Reverse((*until, p.clone(), *a))))
            .collect();
    }

    /// Entries waiting to expire (one per live claim, and a bounded number
    /// for claims that ended early).
    #[cfg(test)]
    pub(super) fn queued(&self) -> usize {
        self.expiry.len()
    }

    /// Whether a live claim names an AS on `path`.
    fn names(&self, prefix: &Prefix, path: &[Asn]) -> bool {
        self.by_prefix
            .get(prefix)
            .is_some_and(|c| c.iter().any(|(a, _)| path.contains(a)))
    }

    pub(super) fn is_empty(&self) -> bool {
        self.len == 0
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
        let claims = &mut self.claims;
        let entry = claims.by_prefix.entry(prefix.clone()).or_default();
        match entry.iter_mut().find(|(a, _)| *a == asn) {
            // Renewed in place: its entry in `expiry` moves on when it
            // comes up.
            Some(c) => c.1 = until,
            None if claims.len < MAX_CLAIMS => {
                entry.push((asn, until));
                claims.len += 1;
                claims.expiry.push(Reverse((until, prefix.clone(), asn)));
                claims.compact();
            }
            None => {
                if entry.is_empty() {
                    claims.by_prefix.remove(&prefix);
                }
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
        let Some(entry) = self.claims.by_prefix.get_mut(prefix) else {
            return;
        };
        let before = entry.len();
        entry.retain(|(a, _)| *a != asn);
        if entry.len() == before {
            return;
        }
        self.claims.len -= 1;
        if entry.is_empty() {
            self.claims.by_prefix.remove(prefix);
        }
        self.release(prefix);
    }

    /// Ends the claims whose time is over.
    pub(super) fn expire_claims(&mut self, now: Millis) {
        while let Some(Reverse((t, _, _))) = self.claims.expiry.peek() {
            if *t > now {
                break;
            }
            let Some(Reverse((_, prefix, asn))) = self.claims.expiry.pop() else {
                break;
            };
            let Some(entry) = self.claims.by_prefix.get_mut(&prefix) else {
                continue;
            };
            let Some(i) = entry.iter().position(|(a, _)| *a == asn) else {
                // Ended by an announcement before it expired.
                continue;
            };
            let until = entry[i].1;
            if until > now {
                // Renewed since: wait for the new expiry.
                self.claims.expiry.push(Reverse((until, prefix, asn)));
                continue;
            }
            entry.swap_remove(i);
            self.claims.len -= 1;
            if entry.is_empty() {
                self.claims.by_prefix.remove(&prefix);
            }
            self.release(&prefix);
        }
    }

    /// Paths of `prefix` excluded by claims that no longer stand compete
    /// again.
    fn release(&mut self, prefix: &Prefix) {
        let live: SmallVec<[Asn; 2]> = self
            .claims
            .by_prefix
            .get(prefix)
            .map(|c| c.iter().map(|(a, _)| *a).collect())
            .unwrap_or_default();
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
