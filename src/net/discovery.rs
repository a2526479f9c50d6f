//! Who to peer with automatically: the bookkeeping behind auto-peering.
//!
//! mDNS and Kademlia report nodes; identify tells whether a node speaks
//! the routing protocol for our federation. [`Discovery`] keeps those
//! members, the discovered peers we have sessions with (at most
//! `max_auto`), and peers we will not auto-peer for a while (their ASN
//! certificate failed, or their handshake did). Configured neighbours are
//! never counted, limited or dropped here: they always win.
//!
//! Everything is bounded; time is passed in. The node asks, then tells the
//! engine (`AddPeer`/`RemovePeer`): this module never touches the swarm.
//!
//! # When the slots are full
//!
//! Any key that names our federation can take a slot, so slots are not
//! first come, first kept: when a member is waiting and every slot is
//! taken, one auto peer is evicted ([`Discovery::evictable`]) if one
//! deserves it, in this order:
//!
//! 1. **misbehaving**: it made this node send it a NOTIFICATION, or sent
//!    routes with bad signatures (most offences first);
//! 2. **idle**: its session has been up for `auto_peer_idle_secs` and it
//!    has no accepted route (under RFC 8212 defaults a stranger's routes
//!    are all rejected);
//! 3. among those, the **newest** first.
//!
//! A peer that is up, well behaved and useful is never evicted. The evicted
//! peer is kept out for a cooldown, so the slot goes to the newcomer.

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use tokio::time::Instant;

use libp2p::PeerId;

/// Most remembered members and cooldowns (oldest forgotten first).
const MAX_REMEMBERED: usize = 4096;

/// How a peer became known.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Source {
    Configured,
    Mdns,
    Kademlia,
    /// It connected to us and opened a session.
    Inbound,
}

#[derive(Debug, Clone, Copy)]
struct Member {
    source: Source,
    seen: Instant,
}

#[derive(Debug, Clone, Copy)]
struct Auto {
    source: Source,
    /// When the session was last established or, if never, when added.
    last_up: Instant,
    established: bool,
    added: Instant,
    /// Offences counted against it (see [`Discovery::misbehaved`]).
    offences: u32,
}

/// Why an auto peer may lose its slot to a newcomer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Eviction {
    Misbehaving,
    Idle,
}

#[derive(Debug, Clone)]
struct Cooldown {
    until: Instant,
    reason: String,
}

/// Auto-peering state. See the module docs.
#[derive(Debug)]
pub struct Discovery {
    max_auto: usize,
    configured: HashSet<PeerId>,
    members: HashMap<PeerId, Member>,
    auto: HashMap<PeerId, Auto>,
    cooldown: HashMap<PeerId, Cooldown>,
}

impl Discovery {
    pub fn new(max_auto: usize, configured: impl IntoIterator<Item = PeerId>) -> Self {
        Discovery {
            max_auto,
            configured: configured.into_iter().collect(),
            members: HashMap::new(),
            auto: HashMap::new(),
            cooldown: HashMap::new(),
        }
    }

    pub fn is_configured(&self, p: &PeerId) -> bool {
        self.configured.contains(p)
    }

    pub fn is_auto(&self, p: &PeerId) -> bool {
        self.auto.contains_key(p)
    }

    pub fn auto_count(&self) -> usize {
        self.auto.len()
    }

    pub fn source_of(&self, p: &PeerId) -> Option<Source> {
        if self.configured.contains(p) {
            return Some(Source::Configured);
        }
        self.auto
            .get(p)
            .map(|a| a.source)
            .or_else(|| self.members.get(p).map(|m| m.source))
    }

    /// Why `p` is in cooldown, if it is.
    pub fn blocked(&self, p: &PeerId, now: Instant) -> Option<&str> {
        self.cooldown
            .get(p)
            .filter(|c| c.until > now)
            .map(|c| c.reason.as_str())
    }

    /// Lets `p` auto-peer again at once (an operator accepted its key).
    pub fn unblock(&mut self, p: &PeerId) -> bool {
        self.cooldown.remove(p).is_some()
    }

    /// Keeps `p` out of auto-peering until `now + for_`.
    pub fn block(&mut self, p: PeerId, now: Instant, for_: Duration, reason: impl Into<String>) {
        if self.cooldown.len() >= MAX_REMEMBERED && !self.cooldown.contains_key(&p) {
            self.cooldown.retain(|_, c| c.until > now);
            if self.cooldown.len() >= MAX_REMEMBERED
                && let Some(oldest) = self
                    .cooldown
                    .iter()
                    .min_by_key(|(_, c)| c.until)
                    .map(|(k, _)| *k)
            {
                self.cooldown.remove(&oldest);
            }
        }
        self.cooldown.insert(
            p,
            Cooldown {
                until: now + for_,
                reason: reason.into(),
            },
        );
    }

    /// Identify says `p` is (or is not) a member of our federation.
    pub fn note_member(&mut self, p: PeerId, member: bool, source: Source, now: Instant) {
        if !member {
            self.members.remove(&p);
            return;
        }
        if self.members.len() >= MAX_REMEMBERED
            && !self.members.contains_key(&p)
            && let Some(oldest) = self
                .members
                .iter()
                .min_by_key(|(_, m)| m.seen)
                .map(|(k, _)| *k)
        {
            self.members.remove(&oldest);
        }
        let src = self.members.get(&p).map_or(source, |m| m.source);
        self.members.insert(
            p,
            Member {
                source: src,
                seen: now,
            },
        );
    }

    /// May we start a session with `p` on our own initiative?
    pub fn may_auto_peer(&self, p: &PeerId, now: Instant) -> bool {
        !self.configured.contains(p)
            && !self.auto.contains_key(p)
            && self.blocked(p, now).is_none()
            && self.auto.len() < self.max_auto
    }

    pub fn add_auto(&mut self, p: PeerId, source: Source, now: Instant) {
        self.auto.insert(
            p,
            Auto {
                source,
                last_up: now,
                established: false,
                added: now,
                offences: 0,
            },
        );
    }

    /// Counts an offence against an auto peer (a NOTIFICATION we had to
    /// send it, routes with bad signatures). Configured peers are not
    /// counted: they are never evicted.
    pub fn misbehaved(&mut self, p: &PeerId) {
        if let Some(a) = self.auto.get_mut(p) {
            a.offences = a.offences.saturating_add(1);
        }
    }

    /// A member we would peer with if a slot were free (most recently
    /// seen first).
    pub fn waiting(&self, now: Instant) -> Option<(PeerId, Source)> {
        if self.auto.len() < self.max_auto {
            return None;
        }
        self.members
            .iter()
            .filter(|(p, _)| {
                !self.configured.contains(p)
                    && !self.auto.contains_key(p)
                    && self.blocked(p, now).is_none()
            })
            .max_by_key(|(_, m)| m.seen)
            .map(|(p, m)| (*p, m.source))
    }

    /// The auto peer that should give its slot to a newcomer, if any (see
    /// the module docs). `accepted` says how many routes of a peer are
    /// accepted now.
    pub fn evictable(
        &self,
        now: Instant,
        idle_after: Duration,
        accepted: impl Fn(&PeerId) -> u32,
    ) -> Option<(PeerId, Eviction)> {
        self.auto
            .iter()
            .filter_map(|(p, a)| {
                let why = if a.offences > 0 {
                    Eviction::Misbehaving
                } else if a.established
                    && now.saturating_duration_since(a.last_up) >= idle_after
                    && accepted(p) == 0
                {
                    Eviction::Idle
                } else {
                    return None;
                };
                Some((
                    why,
                    std::cmp::Reverse(a.offences),
                    std::cmp::Reverse(a.added),
                    *p,
                ))
            })
            .min()
            .map(|(why, _, _, p)| (p, why))
    }

    pub fn remove_auto(&mut self, p: &PeerId) -> bool {
        self.auto.remove(p).is_some()
    }

    pub fn session_up(&mut self, p: &PeerId, now: Instant) {
        if let Some(a) = self.auto.get_mut(p) {
            a.established = true;
            a.last_up = now;
        }
    }

    pub fn session_down(&mut self, p: &PeerId, now: Instant) {
        if let Some(a) = self.auto.get_mut(p) {
            a.established = false;
            a.last_up = now;
        }
    }

    /// Members we could auto-peer with now, most recently seen first, at
    /// most as many as there are free slots.
    pub fn candidates(&self, now: Instant) -> Vec<(PeerId, Source)> {
        let free = self.max_auto.saturating_sub(self.auto.len());
        let mut c: Vec<(&PeerId, &Member)> = self
            .members
            .iter()
            .filter(|(p, _)| self.may_auto_peer(p, now))
            .collect();
        c.sort_by_key(|(_, m)| std::cmp::Reverse(m.seen));
        c.into_iter()
            .take(free)
            .map(|(p, m)| (*p, m.source))
            .collect()
    }

    /// Auto peers whose session has been down (or never came up) for
    /// longer than `limit`: drop them to free their slot.
    pub fn expired(&self, now: Instant, limit: Duration) -> Vec<PeerId> {
        self.auto
            .iter()
            .filter(|(_, a)| !a.established && now.saturating_duration_since(a.last_up) > limit)
            .map(|(p, _)| *p)
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn auto_peering_is_bounded_and_configured_peers_do_not_count() {
        let now = Instant::now();
        let conf = PeerId::random();
        let mut d = Discovery::new(2, [conf]);
        assert!(
            !d.may_auto_peer(&conf, now),
            "configured peers are not auto peers"
        );
        let (a, b, c) = (PeerId::random(), PeerId::random(), PeerId::random());
        for p in [a, b, c, conf] {
            d.note_member(p, true, Source::Mdns, now);
        }
        let cands = d.candidates(now);
        assert_eq!(cands.len(), 2);
        assert!(cands.iter().all(|(p, _)| *p != conf));
        for (p, s) in cands {
            d.add_auto(p, s, now);
        }
        assert!(d.candidates(now).is_empty());
        assert_eq!(d.auto_count(), 2);
    }

    #[test]
    fn a_blocked_peer_is_not_auto_peered_until_the_cooldown_ends() {
        let now = Instant::now();
        let mut d = Discovery::new(4, []);
        let p = PeerId::random();
        d.note_member(p, true, Source::Kademlia, now);
        d.block(p, now, Duration::from_secs(60), "bad certificate");
        assert_eq!(d.blocked(&p, now), Some("bad certificate"));
        assert!(d.candidates(now).is_empty());
        let later = now + Duration::from_secs(61);
        assert_eq!(d.candidates(later), vec![(p, Source::Kademlia)]);
    }

    #[test]
    fn auto_peers_that_stay_down_expire() {
        let now = Instant::now();
        let mut d = Discovery::new(4, []);
        let (up, down) = (PeerId::random(), PeerId::random());
        d.add_auto(up, Source::Mdns, now);
        d.add_auto(down, Source::Mdns, now);
        d.session_up(&up, now);
        let later = now + Duration::from_secs(400);
        assert_eq!(d.expired(later, Duration::from_secs(300)), vec![down]);
        d.session_down(&up, later);
        assert!(d.expired(later, Duration::from_secs(300)).contains(&down));
        assert!(!d.expired(later, Duration::from_secs(300)).contains(&up));
    }

    #[test]
    fn full_slots_go_to_a_newcomer_only_by_evicting_misbehaving_then_idle_newest_first() {
        let t0 = Instant::now();
        let idle = Duration::from_secs(600);
        let mut d = Discovery::new(3, []);
        let (old, mid, new) = (PeerId::random(), PeerId::random(), PeerId::random());
        for (i, p) in [old, mid, new].into_iter().enumerate() {
            let at = t0 + Duration::from_secs(i as u64);
            d.add_auto(p, Source::Kademlia, at);
            d.session_up(&p, at);
        }
        let newcomer = PeerId::random();
        d.note_member(newcomer, true, Source::Mdns, t0);
        assert_eq!(d.waiting(t0), Some((newcomer, Source::Mdns)));
        // All healthy and useful: nobody is evicted.
        let useful = |_: &PeerId| 5;
        assert_eq!(d.evictable(t0 + idle * 2, idle, useful), None);
        // Idle ones (no accepted route after the idle time): newest first.
        let none = |_: &PeerId| 0;
        assert_eq!(
            d.evictable(t0, idle, none),
            None,
            "not idle for long enough"
        );
        assert_eq!(
            d.evictable(t0 + idle * 2, idle, none),
            Some((new, Eviction::Idle))
        );
        // A misbehaving one goes before any idle one, the worst first.
        d.misbehaved(&old);
        d.misbehaved(&mid);
        d.misbehaved(&mid);
        assert_eq!(
            d.evictable(t0 + idle * 2, idle, none),
            Some((mid, Eviction::Misbehaving))
        );
        // A free slot means nobody waits.
        d.remove_auto(&mid);
        assert_eq!(d.waiting(t0), None);
    }

    #[test]
    fn non_members_are_forgotten() {
        let now = Instant::now();
        let mut d = Discovery::new(4, []);
        let p = PeerId::random();
        d.note_member(p, true, Source::Mdns, now);
        d.note_member(p, false, Source::Mdns, now);
        assert!(d.candidates(now).is_empty());
    }
}
