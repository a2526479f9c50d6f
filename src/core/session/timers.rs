//! The session's four RFC 4271 timers as absolute deadlines, the reconnect
//! back-off, and the small seeded PRNG that jitters it.
//!
//! Deadlines are [`Millis`] the driver compares with its own clock; nothing
//! here reads one.

use crate::core::ids::Millis;

/// The timers of RFC 4271 section 8 that this FSM keeps. Each is armed only
/// in the states that use it; every state entry disarms all of them first.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Timer {
    /// HoldTimer (RFC 4271 Event 10): silence from the peer for too long.
    Hold,
    /// KeepaliveTimer (Event 11): time to send a KEEPALIVE.
    Keepalive,
    /// ConnectRetryTimer (Event 9): the dial, or the wait for the peer's
    /// connection after a collision, took too long.
    ConnectRetry,
    /// IdleHoldTimer (Event 13, with DampPeerOscillations): time to leave
    /// Idle and try again.
    IdleHold,
}

impl Timer {
    /// Order in which due timers fire within one `handle` call: a hold
    /// expiry tears the session down first, so a keepalive due at the same
    /// instant is never sent on a dead session.
    pub(super) const FIRING_ORDER: [Timer; 4] = [
        Timer::Hold,
        Timer::Keepalive,
        Timer::ConnectRetry,
        Timer::IdleHold,
    ];
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(super) struct Timers {
    hold: Option<Millis>,
    keepalive: Option<Millis>,
    connect_retry: Option<Millis>,
    idle_hold: Option<Millis>,
}

impl Timers {
    fn slot(&mut self, t: Timer) -> &mut Option<Millis> {
        match t {
            Timer::Hold => &mut self.hold,
            Timer::Keepalive => &mut self.keepalive,
            Timer::ConnectRetry => &mut self.connect_retry,
            Timer::IdleHold => &mut self.idle_hold,
        }
    }

    /// Arms `t` to fire `after_ms` from `now`. A zero delay is bumped to
    /// 1 ms so a deadline is always strictly in the future.
    pub(super) fn arm(&mut self, t: Timer, now: Millis, after_ms: u64) {
        *self.slot(t) = Some(now.saturating_add_ms(after_ms.max(1)));
    }

    pub(super) fn disarm(&mut self, t: Timer) {
        *self.slot(t) = None;
    }

    pub(super) fn clear(&mut self) {
        *self = Timers::default();
    }

    #[cfg(test)]
    pub(super) fn get(&self, t: Timer) -> Option<Millis> {
        match t {
            Timer::Hold => self.hold,
            Timer::Keepalive => self.keepalive,
            Timer::ConnectRetry => self.connect_retry,
            Timer::IdleHold => self.idle_hold,
        }
    }

    /// Disarms and reports `t` if its deadline has passed. Taking it before
    /// it is handled means a handler that re-arms it cannot loop.
    pub(super) fn take_due(&mut self, t: Timer, now: Millis) -> bool {
        let slot = self.slot(t);
        match *slot {
            Some(at) if at <= now => {
                *slot = None;
                true
            }
            _ => false,
        }
    }

    pub(super) fn earliest(&self) -> Option<Millis> {
        [
            self.hold,
            self.keepalive,
            self.connect_retry,
            self.idle_hold,
        ]
        .into_iter()
        .flatten()
        .min()
    }
}

/// SplitMix64: tiny, seedable, and good enough to spread reconnects. The
/// caller seeds it so tests and the simulator replay exactly.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct SplitMix64(u64);

impl SplitMix64 {
    pub(super) fn new(seed: u64) -> Self {
        SplitMix64(seed)
    }

    pub(super) fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
}

/// Exponential reconnect back-off: nominal delay `base * 2^attempts`, capped
/// at `max`, then jittered uniformly within ±25 % of the nominal value so
/// that peers which failed together do not retry in lockstep.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Backoff {
    base_ms: u64,
    max_ms: u64,
    attempts: u32,
    rng: SplitMix64,
}

impl Backoff {
    pub(super) fn new(base_ms: u64, max_ms: u64, seed: u64) -> Self {
        Backoff {
            base_ms: base_ms.max(1),
            max_ms: max_ms.max(base_ms).max(1),
            attempts: 0,
            rng: SplitMix64::new(seed),
        }
    }

    /// The un-jittered delay the next attempt would use.
    pub(super) fn nominal_ms(&self) -> u64 {
        // 2^attempts overflows long before it matters; past 2^32 the cap has
        // certainly been reached for any base of at least 1 ms.
        let factor = 1u64 << self.attempts.min(32);
        self.base_ms.saturating_mul(factor).min(self.max_ms)
    }

    /// The delay before the next attempt; counts the attempt.
    pub(super) fn next_delay_ms(&mut self) -> u64 {
        let nominal = self.nominal_ms();
        let spread = nominal / 4;
        let offset = self.rng.next_u64() % (2 * spread + 1);
        self.attempts = self.attempts.saturating_add(1);
        (nominal - spread + offset).max(1)
    }

    pub(super) fn reset(&mut self) {
        self.attempts = 0;
    }

    pub(super) fn attempts(&self) -> u32 {
        self.attempts
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn due_timer_is_taken_once() {
        let mut t = Timers::default();
        t.arm(Timer::Hold, Millis(100), 50);
        assert!(!t.take_due(Timer::Hold, Millis(149)));
        assert!(t.take_due(Timer::Hold, Millis(150)));
        assert!(!t.take_due(Timer::Hold, Millis(150)));
        assert_eq!(t.earliest(), None);
    }

    #[test]
    fn zero_delay_still_lands_in_the_future() {
        let mut t = Timers::default();
        t.arm(Timer::Keepalive, Millis(7), 0);
        assert_eq!(t.get(Timer::Keepalive), Some(Millis(8)));
    }

    #[test]
    fn backoff_nominal_doubles_until_the_cap() {
        let mut b = Backoff::new(1_000, 60_000, 1);
        let mut nominals = Vec::new();
        for _ in 0..9 {
            nominals.push(b.nominal_ms());
            b.next_delay_ms();
        }
        assert_eq!(
            nominals,
            [
                1_000, 2_000, 4_000, 8_000, 16_000, 32_000, 60_000, 60_000, 60_000
            ]
        );
    }

    #[test]
    fn backoff_survives_huge_attempt_counts() {
        let mut b = Backoff::new(1, u64::MAX, 3);
        for _ in 0..200 {
            let d = b.next_delay_ms();
            assert!(d >= 1);
        }
    }

    #[test]
    fn same_seed_gives_same_delays() {
        let mut a = Backoff::new(1_000, 60_000, 42);
        let mut b = Backoff::new(1_000, 60_000, 42);
        for _ in 0..10 {
            assert_eq!(a.next_delay_ms(), b.next_delay_ms());
        }
    }
}
