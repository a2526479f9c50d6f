//! Entries kept per prefix and origin AS until a time: the bookkeeping that
//! kept tombstones ([`super::tombstone`]) and unreachable claims
//! ([`super::unreachable`]) share.
//!
//! At most one entry per (prefix, AS). A queue ordered by time says which
//! lapses next; it is lazy: an entry removed early leaves its queue item,
//! skipped when it comes up, and an entry whose time moved on is put back
//! with its new time. Stale items are dropped once they outnumber the
//! entries, so removing and adding again and again cannot grow the queue
//! without bound.

use std::cmp::Reverse;
use std::collections::BinaryHeap;

use smallvec::SmallVec;

use super::super::ids::{Asn, Millis};
use super::super::prefix::Prefix;
use super::super::rib::FastMap;

/// What [`ByOrigin`] keeps: an entry for one AS that lapses at a time.
pub(super) trait Lapses {
    fn asn(&self) -> Asn;
    fn until(&self) -> Millis;
}

#[derive(Debug)]
pub(super) struct ByOrigin<T> {
    by_prefix: FastMap<Prefix, SmallVec<[T; 1]>>,
    /// Soonest first; see the module comment.
    queue: BinaryHeap<Reverse<(Millis, Prefix, Asn)>>,
    len: usize,
}

impl<T> Default for ByOrigin<T> {
    fn default() -> Self {
        ByOrigin {
            by_prefix: FastMap::default(),
            queue: BinaryHeap::new(),
            len: 0,
        }
    }
}

impl<T: Lapses> ByOrigin<T> {
    /// When the next entry lapses (or a stale queue item comes up).
    pub(super) fn next_deadline(&self) -> Option<Millis> {
        self.queue.peek().map(|Reverse((t, _, _))| *t)
    }

    pub(super) fn len(&self) -> usize {
        self.len
    }

    pub(super) fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The entries for `prefix`.
    pub(super) fn at(&self, prefix: &Prefix) -> &[T] {
        self.by_prefix.get(prefix).map_or(&[], |v| v.as_slice())
    }

    /// The entry of (`prefix`, `asn`), to change in place. Its time may be
    /// moved later, not earlier: the queue item it has comes up first and
    /// is put back with the new time.
    pub(super) fn get_mut(&mut self, prefix: &Prefix, asn: Asn) -> Option<&mut T> {
        self.by_prefix
            .get_mut(prefix)
            .and_then(|v| v.iter_mut().find(|e| e.asn() == asn))
    }

    /// Keeps `entry` for `prefix`, in place of the one its AS had.
    pub(super) fn insert(&mut self, prefix: Prefix, entry: T) {
        let (asn, until) = (entry.asn(), entry.until());
        let v = self.by_prefix.entry(prefix.clone()).or_default();
        match v.iter_mut().find(|e| e.asn() == asn) {
            Some(old) => *old = entry,
            None => {
                v.push(entry);
                self.len += 1;
            }
        }
        self.queue.push(Reverse((until, prefix, asn)));
        self.compact();
    }

    /// Removes the entry of (`prefix`, `asn`).
    pub(super) fn remove(&mut self, prefix: &Prefix, asn: Asn) -> Option<T> {
        let v = self.by_prefix.get_mut(prefix)?;
        let i = v.iter().position(|e| e.asn() == asn)?;
        let entry = v.swap_remove(i);
        self.len -= 1;
        if v.is_empty() {
            self.by_prefix.remove(prefix);
        }
        Some(entry)
    }

    /// Removes and returns the next entry whose time is over at `now`.
    pub(super) fn pop_lapsed(&mut self, now: Millis) -> Option<(Prefix, T)> {
        while let Some(Reverse((t, _, _))) = self.queue.peek() {
            if *t > now {
                return None;
            }
            let Reverse((_, prefix, asn)) = self.queue.pop()?;
            match self.at(&prefix).iter().find(|e| e.asn() == asn) {
                // Removed early.
                None => continue,
                // Its time moved on: wait for that.
                Some(e) if e.until() > now => {
                    let until = e.until();
                    self.queue.push(Reverse((until, prefix, asn)));
                }
                Some(_) => {
                    let entry = self.remove(&prefix, asn)?;
                    return Some((prefix, entry));
                }
            }
        }
        None
    }

    /// Removes and returns the entry whose queue item comes up first (to
    /// make room).
    pub(super) fn pop_soonest(&mut self) -> Option<(Prefix, T)> {
        while let Some(Reverse((_, prefix, asn))) = self.queue.pop() {
            if let Some(entry) = self.remove(&prefix, asn) {
                return Some((prefix, entry));
            }
        }
        None
    }

    /// Drops stale queue items once they outnumber the entries.
    fn compact(&mut self) {
        if self.queue.len() <= 2 * self.len + 64 {
            return;
        }
        self.queue = self
            .by_prefix
            .iter()
            .flat_map(|(p, v)| v.iter().map(|e| Reverse((e.until(), p.clone(), e.asn()))))
            .collect();
    }

    /// Queue items: one per entry, and a bounded number of stale ones.
    #[cfg(test)]
    pub(super) fn queued(&self) -> usize {
        self.queue.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, Clone, Copy, PartialEq)]
    struct E(u32, u64);

    impl Lapses for E {
        fn asn(&self) -> Asn {
            Asn(self.0)
        }
        fn until(&self) -> Millis {
            Millis(self.1)
        }
    }

    fn p(s: &str) -> Prefix {
        Prefix::new(s).unwrap()
    }

    #[test]
    fn entries_lapse_in_time_order_and_moved_or_removed_ones_are_skipped() {
        let mut b = ByOrigin::default();
        b.insert(p("a"), E(1, 10));
        b.insert(p("a"), E(2, 20));
        b.insert(p("b"), E(1, 30));
        assert_eq!((b.len(), b.next_deadline()), (3, Some(Millis(10))));
        // One AS, one entry: this replaces (a, 1).
        b.insert(p("a"), E(1, 40));
        assert_eq!(b.len(), 3);
        if let Some(e) = b.get_mut(&p("a"), Asn(2)) {
            e.1 = 50;
        }
        assert!(b.remove(&p("b"), Asn(1)).is_some());
        assert_eq!(b.pop_lapsed(Millis(35)), None, "nothing is over at 35");
        assert_eq!(b.pop_lapsed(Millis(45)), Some((p("a"), E(1, 40))));
        assert_eq!(b.pop_lapsed(Millis(45)), None);
        assert_eq!(b.pop_lapsed(Millis(50)), Some((p("a"), E(2, 50))));
        assert!(b.is_empty());
        assert_eq!(b.at(&p("a")), &[]);
    }

    #[test]
    fn replacing_again_and_again_keeps_the_queue_bounded() {
        let mut b = ByOrigin::default();
        for t in 0..10_000 {
            b.insert(p("a"), E(1, t));
        }
        assert_eq!(b.len(), 1);
        assert!(b.queued() <= 2 + 64, "{}", b.queued());
        assert_eq!(b.pop_soonest(), Some((p("a"), E(1, 9_999))));
        assert_eq!(b.pop_soonest(), None);
    }
}
