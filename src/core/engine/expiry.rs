//! Routes whose origin attestation expired leave the RIBs.
//!
//! An origin signs its route with an expiry and re-signs it at half that
//! lifetime; a route whose attestation has run out is one nobody refreshed
//! (an origin gone quiet behind a peer that keeps announcing it, or a copy
//! kept as stale). [`Event::ExpireAttested`](super::Event::ExpireAttested)
//! at time `now` drops every path from a peer whose attestation expired
//! before `now - skew` (received, rejected by policy, or stale alike), as
//! if the peer had withdrawn it: the best path is chosen again and the
//! withdrawal propagates. Local routes are not touched (the node re-signs
//! them). Routes without a proof (signature checks off) never expire.

use std::collections::BTreeMap;

use super::*;

impl Engine {
    /// Every peer path whose origin attestation expired before
    /// `now - skew_ms`, by peer.
    pub fn expired_paths(&self, now: Millis, skew_ms: u64) -> Vec<(NodeId, Vec<RouteKey>)> {
        let limit = now.0.saturating_sub(skew_ms);
        let expired = |proof: &Option<Arc<crate::core::proof::RouteProof>>| {
            proof.as_ref().is_some_and(|p| p.origin.expires.0 < limit)
        };
        let mut by_peer: BTreeMap<PeerIdx, Vec<RouteKey>> = BTreeMap::new();
        for (prefix, d) in &self.rib.dests {
            for c in d.candidates.iter().filter(|c| c.peer != PeerIdx::LOCAL) {
                if expired(&c.proof) {
                    by_peer.entry(c.peer).or_default().push(RouteKey {
                        prefix: prefix.clone(),
                        path_id: c.path_id,
                    });
                }
            }
        }
        for (i, p) in self.peers.iter().enumerate() {
            let Some(p) = p else { continue };
            let idx = PeerIdx(i as u32);
            for (k, pre) in &p.rib.pre_policy {
                if expired(&pre.proof) {
                    let v = by_peer.entry(idx).or_default();
                    if !v.contains(k) {
                        v.push(k.clone());
                    }
                }
            }
        }
        by_peer
            .into_iter()
            .filter_map(|(idx, keys)| Some((self.node_of(idx)?, keys)))
            .collect()
    }

    /// Drops the expired paths (as withdrawn by their peers). Returns how
    /// many were dropped.
    pub(super) fn expire_attested(&mut self, now: Millis, skew_ms: u64) -> usize {
        let mut n = 0;
        for (node, keys) in self.expired_paths(now, skew_ms) {
            let Some(idx) = self.idx(&node) else { continue };
            for key in keys {
                self.withdraw_path(idx, &key, true);
                n += 1;
            }
        }
        self.stats.expired_paths += n as u64;
        n
    }
}

#[cfg(test)]
mod tests;
