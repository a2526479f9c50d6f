//! The node's clock for the core: [`Millis`] since the Unix epoch that
//! never go backwards.
//!
//! The wall clock is read once at start; after that time advances with
//! tokio's monotonic [`Instant`], so a wall-clock step (NTP, a laptop
//! waking up) cannot make the engine see time run backwards. Engine
//! deadlines convert back to `Instant`s for `sleep_until`.

use tokio::time::Instant;

use crate::core::ids::Millis;

#[derive(Debug, Clone, Copy)]
pub struct Clock {
    base_ms: u64,
    base: Instant,
}

impl Clock {
    pub fn start() -> Self {
        let base_ms = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
            .unwrap_or(0);
        Clock {
            base_ms,
            base: Instant::now(),
        }
    }

    pub fn now(&self) -> Millis {
        let elapsed = u64::try_from(self.base.elapsed().as_millis()).unwrap_or(u64::MAX);
        Millis(self.base_ms.saturating_add(elapsed))
    }

    /// [`Clock::now`] with microseconds: the call forwarder's clock.
    pub fn now_micros(&self) -> crate::core::forward::Micros {
        let elapsed = u64::try_from(self.base.elapsed().as_micros()).unwrap_or(u64::MAX);
        crate::core::forward::Micros(self.base_ms.saturating_mul(1000).saturating_add(elapsed))
    }

    /// The instant at which [`Clock::now_micros`] reaches `at`.
    pub fn instant_of_micros(&self, at: crate::core::forward::Micros) -> Instant {
        let ahead = at.0.saturating_sub(self.base_ms.saturating_mul(1000));
        self.base + std::time::Duration::from_micros(ahead)
    }

    /// The instant at which [`Clock::now`] reaches `at` (now if it already has).
    pub fn instant_of(&self, at: Millis) -> Instant {
        let ahead = at.0.saturating_sub(self.base_ms);
        self.base + std::time::Duration::from_millis(ahead)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn time_only_moves_forward_and_deadlines_map_back() {
        let c = Clock::start();
        let a = c.now();
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        let b = c.now();
        assert!(b.0 >= a.0 + 20, "{a:?} -> {b:?}");
        let deadline = b.saturating_add_ms(250);
        let at = c.instant_of(deadline);
        let ahead = at.saturating_duration_since(Instant::now());
        assert!(ahead <= std::time::Duration::from_millis(250), "{ahead:?}");
        assert!(ahead >= std::time::Duration::from_millis(200), "{ahead:?}");
        // A deadline in the past maps to now or earlier: sleep returns at once.
        assert!(c.instant_of(Millis(0)) <= Instant::now());
    }
}
