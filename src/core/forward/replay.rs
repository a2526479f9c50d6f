//! The replay window at the origin: the (caller, call id) pairs seen,
//! each kept until its deadline (a replay after that is refused as
//! expired anyway), at most `capacity` of them, oldest dropped first.

use std::collections::{HashMap, VecDeque};

use crate::core::call::CallId;
use crate::core::ids::{Millis, NodeId};

#[derive(Debug)]
pub(super) struct ReplayWindow {
    capacity: usize,
    seen: HashMap<(NodeId, CallId), Millis>,
    /// Arrival order, for the capacity bound and the deadline trim.
    order: VecDeque<((NodeId, CallId), Millis)>,
}

impl ReplayWindow {
    pub fn new(capacity: usize) -> Self {
        ReplayWindow {
            capacity: capacity.max(1),
            seen: HashMap::new(),
            order: VecDeque::new(),
        }
    }

    /// Records a call id; false if it is in the window already.
    pub fn first_time(
        &mut self,
        now: Millis,
        caller: NodeId,
        id: CallId,
        deadline: Millis,
    ) -> bool {
        self.expire(now);
        let k = (caller, id);
        if self.seen.contains_key(&k) {
            return false;
        }
        while self.seen.len() >= self.capacity {
            match self.order.pop_front() {
                Some((old, _)) => {
                    self.seen.remove(&old);
                }
                None => break,
            }
        }
        self.seen.insert(k, deadline);
        self.order.push_back((k, deadline));
        true
    }

    /// Forgets ids whose deadline has passed. Deadlines differ, so this
    /// only trims the front; the capacity does the rest.
    pub fn expire(&mut self, now: Millis) {
        while let Some((k, d)) = self.order.front().cloned() {
            if d > now {
                break;
            }
            self.order.pop_front();
            self.seen.remove(&k);
        }
    }

    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.seen.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_replay_is_caught_until_the_deadline() {
        let mut w = ReplayWindow::new(10);
        let (c, id) = (NodeId([1; 32]), CallId([2; 16]));
        assert!(w.first_time(Millis(0), c, id, Millis(100)));
        assert!(!w.first_time(Millis(50), c, id, Millis(100)));
        assert!(
            w.first_time(Millis(50), NodeId([3; 32]), id, Millis(100)),
            "another caller"
        );
        w.expire(Millis(100));
        assert_eq!(w.len(), 0);
    }

    #[test]
    fn the_window_is_bounded() {
        let mut w = ReplayWindow::new(3);
        let c = NodeId([1; 32]);
        for i in 0..10u8 {
            assert!(w.first_time(Millis(0), c, CallId([i; 16]), Millis(1_000)));
        }
        assert_eq!(w.len(), 3);
        assert!(
            w.first_time(Millis(0), c, CallId([0; 16]), Millis(1_000)),
            "the oldest were dropped"
        );
        assert!(!w.first_time(Millis(0), c, CallId([9; 16]), Millis(1_000)));
    }
}
