//! Who may hold how much of one hop's call table.
//!
//! `max-calls` alone is one pool: a peer that calls a slow tool, or a hop
//! that answers "accepted" and never returns, could hold every slot until
//! the deadlines and lock the local front out. The [`Quotas`] split it:
//!
//! | bound | default | counts |
//! |---|---|---|
//! | front reserve | `max_calls / 10` | slots only the local front may use |
//! | per peer | `(max_calls - reserve) / 4` | calls in flight *from* one peer, and calls in flight *to* one peer (a black-hole next hop holds at most this many) |
//! | per caller | per peer / 4 | calls in flight for one caller (the node in the signed origin), wherever they came from |
//! | per-peer bytes | 64 MiB | call frames in flight from one peer (arguments are held until the call ends) |
//! | per-peer rate | 5,000 CALLs/s, bursts of 10,000 | a token bucket per sending peer (a node serves about 6,000 calls/s on 2 cores) |
//!
//! A refusal is an `Overloaded` error that says which bound was hit, and
//! is counted in [`QuotaStats`]. Everything is plain data; time is an input.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};

use super::Micros;
use crate::core::ids::NodeId;

/// The bounds. See the module table for the defaults.
#[derive(Debug, Clone, PartialEq)]
pub struct QuotaConfig {
    pub max_calls: usize,
    pub front_reserve: usize,
    pub per_peer: usize,
    pub per_caller: usize,
    pub peer_bytes: usize,
    /// CALLs per second from one peer (sustained).
    pub peer_rate: f64,
    /// CALLs one peer may send at once after a quiet spell.
    pub peer_burst: f64,
}

impl QuotaConfig {
    /// The defaults for a table of `max_calls` entries.
    pub fn for_max_calls(max_calls: usize) -> Self {
        let max_calls = max_calls.max(1);
        let front_reserve = max_calls / 10;
        let per_peer = ((max_calls - front_reserve) / 4).max(1);
        QuotaConfig {
            max_calls,
            front_reserve,
            per_peer,
            per_caller: (per_peer / 4).max(1),
            peer_bytes: 64 << 20,
            peer_rate: 5000.0,
            peer_burst: 10_000.0,
        }
    }
}

/// Refusals by bound, for the admin API and metrics.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct QuotaStats {
    /// The whole table (or, for peers, all but the front's reserve) full.
    pub node_full: u64,
    pub peer_calls: u64,
    pub peer_bytes: u64,
    pub caller_calls: u64,
    pub peer_rate: u64,
    /// The chosen next hop already holds its share of our calls.
    pub next_hop_full: u64,
}

#[derive(Debug, Clone, Copy, Default)]
struct Usage {
    calls: usize,
    bytes: usize,
}

#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    at: Micros,
}

/// Where a call entered this hop.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    Front,
    Peer(NodeId),
}

/// A claim on the quotas, kept in the call's table entry and given back
/// with [`Quotas::release`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Claim {
    source: Source,
    caller: NodeId,
    bytes: usize,
}

/// The usage counters and rate buckets.
#[derive(Debug, Clone)]
pub struct Quotas {
    cfg: QuotaConfig,
    front: usize,
    peers_total: usize,
    from_peer: HashMap<NodeId, Usage>,
    to_peer: HashMap<NodeId, usize>,
    by_caller: HashMap<NodeId, usize>,
    buckets: HashMap<NodeId, Bucket>,
    stats: QuotaStats,
}

impl Quotas {
    pub fn new(cfg: QuotaConfig) -> Self {
        Quotas {
            cfg,
            front: 0,
            peers_total: 0,
            from_peer: HashMap::new(),
            to_peer: HashMap::new(),
            by_caller: HashMap::new(),
            buckets: HashMap::new(),
            stats: QuotaStats::default(),
        }
    }

    pub fn config(&self) -> &QuotaConfig {
        &self.cfg
    }

    pub fn stats(&self) -> &QuotaStats {
        &self.stats
    }

    /// Calls in flight from `peer` now.
    pub fn from_peer(&self, peer: &NodeId) -> usize {
        self.from_peer.get(peer).map_or(0, |u| u.calls)
    }

    /// Calls in flight sent to `peer` now.
    pub fn to_peer(&self, peer: &NodeId) -> usize {
        self.to_peer.get(peer).copied().unwrap_or(0)
    }

    /// Admits a call that entered from `source` for `caller`, whose frame
    /// took `bytes`; on success the claim must be released when the call
    /// leaves the table. The error says which bound refused it.
    pub fn admit(
        &mut self,
        now: Micros,
        source: Source,
        caller: NodeId,
        bytes: usize,
    ) -> Result<Claim, String> {
        let total = self.front + self.peers_total;
        match source {
            Source::Front => {
                if total >= self.cfg.max_calls {
                    self.stats.node_full += 1;
                    return Err(format!("{total} calls in flight, the limit (max-calls)"));
                }
            }
            Source::Peer(peer) => {
                if !self.take_token(now, peer) {
                    self.stats.peer_rate += 1;
                    return Err(format!(
                        "the sending peer exceeds {} calls per second (bursts of {})",
                        self.cfg.peer_rate, self.cfg.peer_burst
                    ));
                }
                // Peers may not use the slots kept for the local front.
                let room = self.cfg.max_calls.saturating_sub(self.cfg.front_reserve);
                if self.peers_total >= room || total >= self.cfg.max_calls {
                    self.stats.node_full += 1;
                    return Err(format!(
                        "{} calls from peers in flight, all this node takes from peers",
                        self.peers_total
                    ));
                }
                let u = self.from_peer.get(&peer).copied().unwrap_or_default();
                if u.calls >= self.cfg.per_peer {
                    self.stats.peer_calls += 1;
                    return Err(format!(
                        "the sending peer has {} calls in flight here, its share",
                        u.calls
                    ));
                }
                if u.bytes.saturating_add(bytes) > self.cfg.peer_bytes {
                    self.stats.peer_bytes += 1;
                    return Err(format!(
                        "the sending peer's calls in flight here hold {} bytes, its share is {}",
                        u.bytes, self.cfg.peer_bytes
                    ));
                }
            }
        }
        let c = self.by_caller.get(&caller).copied().unwrap_or(0);
        if c >= self.cfg.per_caller && source != Source::Front {
            self.stats.caller_calls += 1;
            return Err(format!(
                "caller {} has {c} calls in flight here, its share",
                caller.short()
            ));
        }
        match source {
            Source::Front => self.front += 1,
            Source::Peer(peer) => {
                self.peers_total += 1;
                let u = self.from_peer.entry(peer).or_default();
                u.calls += 1;
                u.bytes += bytes;
            }
        }
        *self.by_caller.entry(caller).or_default() += 1;
        Ok(Claim {
            source,
            caller,
            bytes,
        })
    }

    /// Gives back what [`Self::admit`] took.
    pub fn release(&mut self, c: Claim) {
        match c.source {
            Source::Front => self.front = self.front.saturating_sub(1),
            Source::Peer(peer) => {
                self.peers_total = self.peers_total.saturating_sub(1);
                if let Some(u) = self.from_peer.get_mut(&peer) {
                    u.calls = u.calls.saturating_sub(1);
                    u.bytes = u.bytes.saturating_sub(c.bytes);
                    if u.calls == 0 {
                        self.from_peer.remove(&peer);
                    }
                }
            }
        }
        if let Some(n) = self.by_caller.get_mut(&c.caller) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                self.by_caller.remove(&c.caller);
            }
        }
    }

    /// Whether one more call may be sent to `peer`.
    pub fn next_hop_has_room(&mut self, peer: &NodeId) -> bool {
        let ok = self.to_peer(peer) < self.cfg.per_peer;
        if !ok {
            self.stats.next_hop_full += 1;
        }
        ok
    }

    /// A call was sent to `peer` (`true`) or is no longer there.
    pub fn sent_to(&mut self, peer: NodeId, sent: bool) {
        if sent {
            *self.to_peer.entry(peer).or_default() += 1;
        } else if let Some(n) = self.to_peer.get_mut(&peer) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                self.to_peer.remove(&peer);
            }
        }
    }

    /// Forgets the rate bucket of a peer that went away.
    pub fn peer_gone(&mut self, peer: &NodeId) {
        self.buckets.remove(peer);
    }

    fn take_token(&mut self, now: Micros, peer: NodeId) -> bool {
        let (rate, burst) = (self.cfg.peer_rate, self.cfg.peer_burst);
        let b = self.buckets.entry(peer).or_insert(Bucket {
            tokens: burst,
            at: now,
        });
        let dt = now.0.saturating_sub(b.at.0) as f64 / 1e6;
        b.tokens = (b.tokens + dt * rate).min(burst);
        b.at = now;
        if b.tokens >= 1.0 {
            b.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node(n: u8) -> NodeId {
        NodeId([n; 32])
    }

    fn small() -> QuotaConfig {
        QuotaConfig {
            max_calls: 10,
            front_reserve: 2,
            per_peer: 4,
            per_caller: 3,
            peer_bytes: 1000,
            peer_rate: 10.0,
            peer_burst: 100.0,
        }
    }

    #[test]
    fn defaults_split_the_table() {
        let c = QuotaConfig::for_max_calls(10_000);
        assert_eq!(
            (c.front_reserve, c.per_peer, c.per_caller),
            (1000, 2250, 562)
        );
        let tiny = QuotaConfig::for_max_calls(1);
        assert_eq!(
            (tiny.front_reserve, tiny.per_peer, tiny.per_caller),
            (0, 1, 1)
        );
    }

    #[test]
    fn one_peer_cannot_take_more_than_its_share() {
        let mut q = Quotas::new(small());
        let t = Micros(0);
        for i in 0..4 {
            q.admit(t, Source::Peer(node(1)), node(100 + i), 10)
                .unwrap();
        }
        let e = q
            .admit(t, Source::Peer(node(1)), node(200), 10)
            .unwrap_err();
        assert!(e.contains("its share"), "{e}");
        assert_eq!(q.stats().peer_calls, 1);
        // Another peer still gets in.
        assert!(q.admit(t, Source::Peer(node(2)), node(201), 10).is_ok());
    }

    #[test]
    fn the_front_keeps_its_reserve_when_peers_fill_the_rest() {
        let mut q = Quotas::new(small());
        let t = Micros(0);
        let mut claims = Vec::new();
        for p in 1..=2u8 {
            for i in 0..4u8 {
                claims.push(
                    q.admit(t, Source::Peer(node(p)), node(p * 10 + i), 1)
                        .unwrap(),
                );
            }
        }
        // 8 from peers = max_calls - reserve: a third peer is refused...
        let e = q.admit(t, Source::Peer(node(3)), node(99), 1).unwrap_err();
        assert!(e.contains("all this node takes from peers"), "{e}");
        // ...while the front still has its two slots.
        let f1 = q.admit(t, Source::Front, node(0), 0).unwrap();
        q.admit(t, Source::Front, node(0), 0).unwrap();
        assert!(q.admit(t, Source::Front, node(0), 0).is_err());
        // Released slots come back.
        q.release(f1);
        q.release(claims.pop().unwrap());
        assert!(q.admit(t, Source::Front, node(0), 0).is_ok());
        assert!(q.admit(t, Source::Peer(node(3)), node(98), 1).is_ok());
    }

    #[test]
    fn bytes_callers_and_rate_are_bounded_per_peer() {
        let mut q = Quotas::new(small());
        let t = Micros(0);
        q.admit(t, Source::Peer(node(1)), node(50), 900).unwrap();
        let e = q
            .admit(t, Source::Peer(node(1)), node(51), 200)
            .unwrap_err();
        assert!(e.contains("bytes"), "{e}");
        // One caller behind two peers: three calls in all.
        let mut q = Quotas::new(small());
        q.admit(t, Source::Peer(node(1)), node(7), 1).unwrap();
        q.admit(t, Source::Peer(node(1)), node(7), 1).unwrap();
        q.admit(t, Source::Peer(node(2)), node(7), 1).unwrap();
        let e = q.admit(t, Source::Peer(node(2)), node(7), 1).unwrap_err();
        assert!(e.contains("caller"), "{e}");
        // Rate: a burst of 100, then 10 per second.
        let mut cfg = small();
        cfg.per_peer = 1000;
        cfg.per_caller = 1000;
        cfg.max_calls = 10_000;
        cfg.peer_bytes = usize::MAX;
        let mut q = Quotas::new(cfg);
        for i in 0..100u32 {
            let c = q.admit(t, Source::Peer(node(1)), node(9), 0);
            assert!(c.is_ok(), "{i}");
        }
        let e = q.admit(t, Source::Peer(node(1)), node(9), 0).unwrap_err();
        assert!(e.contains("per second"), "{e}");
        assert_eq!(q.stats().peer_rate, 1);
        // A tenth of a second later, one more token.
        assert!(
            q.admit(Micros(100_000), Source::Peer(node(1)), node(9), 0)
                .is_ok()
        );
        assert!(
            q.admit(Micros(100_000), Source::Peer(node(1)), node(9), 0)
                .is_err()
        );
        // Other peers have buckets of their own.
        assert!(q.admit(t, Source::Peer(node(2)), node(9), 0).is_ok());
    }

    #[test]
    fn next_hops_hold_at_most_their_share() {
        let mut q = Quotas::new(small());
        for _ in 0..4 {
            assert!(q.next_hop_has_room(&node(5)));
            q.sent_to(node(5), true);
        }
        assert!(!q.next_hop_has_room(&node(5)));
        assert_eq!(q.stats().next_hop_full, 1);
        q.sent_to(node(5), false);
        assert!(q.next_hop_has_room(&node(5)));
    }
}
