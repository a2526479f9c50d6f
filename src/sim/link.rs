//! How a simulated link carries a message: one-way latency plus jitter,
//! loss repaired by retransmission (the transports are reliable streams,
//! so a lost segment costs time, not the message), and a bandwidth that
//! serialises what is sent one after the other. Each direction of a
//! connection is a FIFO: a message never overtakes one sent before it.
//!
//! Times inside are microseconds; the engines see milliseconds, so a
//! delivery lands on the next whole millisecond.

use rand::Rng;
use rand::rngs::StdRng;

use crate::core::ids::Millis;

/// What every link of a simulated network is like.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LinkModel {
    /// One-way latency, milliseconds.
    pub latency_ms: u64,
    /// Added to each message: uniform in `0..=jitter_ms`.
    pub jitter_ms: u64,
    /// Probability that a transmission is lost and sent again after the
    /// retransmission timeout (0.0 to 0.5).
    pub loss: f64,
    /// Bits per second in each direction; 0: unlimited.
    pub bandwidth_bps: u64,
}

impl LinkModel {
    /// A link with a fixed latency and nothing else.
    pub fn fixed(latency_ms: u64) -> Self {
        LinkModel {
            latency_ms,
            jitter_ms: 0,
            loss: 0.0,
            bandwidth_bps: 0,
        }
    }

    /// The retransmission timeout: twice the round trip, at least 200 ms
    /// (RFC 6298's floor is 1 s; Linux uses 200 ms).
    pub fn rto_us(&self) -> u64 {
        (4 * self.latency_ms * 1_000).max(200_000)
    }
}

/// The sending side of one direction of a connection.
#[derive(Debug, Clone, Copy, Default)]
pub(super) struct Direction {
    /// When the last bit of what was sent before leaves the sender (us).
    free_at_us: u64,
    /// When the last message sent before arrives (us): FIFO order.
    last_arrival_us: u64,
}

impl Direction {
    /// When the last message sent so far arrives.
    pub(super) fn last_arrival(&self) -> Millis {
        Millis(self.last_arrival_us.div_ceil(1_000))
    }

    /// When a message of `bytes` sent at `now` arrives.
    pub(super) fn send(
        &mut self,
        model: &LinkModel,
        rng: &mut StdRng,
        now: Millis,
        bytes: usize,
    ) -> Millis {
        let now_us = now.0.saturating_mul(1_000);
        let start = self.free_at_us.max(now_us);
        let wire_us = (bytes as u64)
            .saturating_mul(8_000_000)
            .checked_div(model.bandwidth_bps)
            .unwrap_or(0);
        self.free_at_us = start.saturating_add(wire_us);
        let mut delay_us = model.latency_ms * 1_000;
        if model.jitter_ms > 0 {
            delay_us += rng.gen_range(0..=model.jitter_ms * 1_000);
        }
        let loss = model.loss.clamp(0.0, 0.5);
        if loss > 0.0 {
            // Lost until it is not: each loss costs a timeout, doubled.
            let mut rto = model.rto_us();
            while rng.gen_bool(loss) {
                delay_us = delay_us.saturating_add(rto);
                rto = rto.saturating_mul(2).min(60_000_000);
            }
        }
        let arrival = self
            .free_at_us
            .saturating_add(delay_us)
            .max(self.last_arrival_us);
        self.last_arrival_us = arrival;
        Millis(arrival.div_ceil(1_000))
    }
}

#[cfg(test)]
mod tests {
    use rand::SeedableRng;

    use super::*;

    #[test]
    fn a_fixed_link_adds_its_latency() {
        let mut d = Direction::default();
        let mut rng = StdRng::seed_from_u64(1);
        assert_eq!(
            d.send(&LinkModel::fixed(5), &mut rng, Millis(100), 500),
            Millis(105)
        );
    }

    #[test]
    fn bandwidth_serialises_and_order_holds() {
        // 1 Mbit/s: 125 bytes take 1 ms on the wire.
        let m = LinkModel {
            bandwidth_bps: 1_000_000,
            ..LinkModel::fixed(5)
        };
        let mut d = Direction::default();
        let mut rng = StdRng::seed_from_u64(1);
        let a = d.send(&m, &mut rng, Millis(0), 12_500); // 100 ms on the wire
        let b = d.send(&m, &mut rng, Millis(0), 125);
        assert_eq!(a, Millis(105));
        assert_eq!(b, Millis(106), "queued behind the first");
    }

    #[test]
    fn jitter_never_reorders_and_loss_costs_time() {
        let m = LinkModel {
            jitter_ms: 50,
            loss: 0.3,
            ..LinkModel::fixed(5)
        };
        let mut d = Direction::default();
        let mut rng = StdRng::seed_from_u64(7);
        let mut last = Millis(0);
        let mut slow = 0;
        for i in 0..1_000u64 {
            let at = d.send(&m, &mut rng, Millis(i), 100);
            assert!(at >= last, "FIFO");
            assert!(at.0 >= i + 5);
            if at.0 >= i + 200 {
                slow += 1;
            }
            last = at;
        }
        assert!(slow > 100, "about 30 % wait a timeout: {slow}");
    }
}
