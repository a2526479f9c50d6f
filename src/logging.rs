//! What the node writes to its log on behalf of strangers.
//!
//! - [`Untrusted`] shows text that came from a peer, a browser or a local
//!   process with control characters escaped (a NOTIFICATION reason with a
//!   newline cannot forge a second log line, nor an escape sequence repaint
//!   the operator's terminal) and cut at [`Untrusted::MAX_CHARS`].
//! - [`Throttle`] lets one warning through per interval and counts the
//!   ones it held back, so a flood of bad input cannot flood the log.

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// Text from outside, escaped for the log.
#[derive(Debug, Clone, Copy)]
pub struct Untrusted<'a>(pub &'a str);

impl Untrusted<'_> {
    /// Longer text is cut, with a note of how much was left out.
    pub const MAX_CHARS: usize = 256;
}

impl fmt::Display for Untrusted<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (shown, c) in self.0.chars().enumerate() {
            if shown == Self::MAX_CHARS {
                let rest = self.0.chars().count() - shown;
                return write!(f, "...({rest} more characters)");
            }
            if c.is_control() || matches!(c, '\u{2028}' | '\u{2029}' | '\u{200e}' | '\u{202e}') {
                write!(f, "{}", c.escape_default())?;
            } else {
                fmt::Write::write_char(f, c)?;
            }
        }
        Ok(())
    }
}

/// Lets one event through per interval; thread-safe, lock-free.
#[derive(Debug)]
pub struct Throttle {
    start: Instant,
    interval_ms: u64,
    /// Milliseconds since `start` of the last event let through, plus one
    /// (0: none yet).
    last: AtomicU64,
    suppressed: AtomicU64,
}

impl Throttle {
    pub fn new(interval: Duration) -> Self {
        Throttle {
            start: Instant::now(),
            interval_ms: interval.as_millis().max(1) as u64,
            last: AtomicU64::new(0),
            suppressed: AtomicU64::new(0),
        }
    }

    pub fn per_second() -> Self {
        Self::new(Duration::from_secs(1))
    }

    /// `Some(n)` when this event may be logged, `n` being how many were
    /// held back since the last one; `None` when it should be dropped.
    pub fn allow(&self) -> Option<u64> {
        self.allow_at(self.start.elapsed().as_millis() as u64)
    }

    /// [`Self::allow`] at `ms` milliseconds after the throttle was made.
    fn allow_at(&self, ms: u64) -> Option<u64> {
        let now = ms + 1;
        let last = self.last.load(Ordering::Relaxed);
        if last != 0 && now < last + self.interval_ms {
            self.suppressed.fetch_add(1, Ordering::Relaxed);
            return None;
        }
        if self
            .last
            .compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed)
            .is_err()
        {
            self.suppressed.fetch_add(1, Ordering::Relaxed);
            return None;
        }
        Some(self.suppressed.swap(0, Ordering::Relaxed))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_characters_are_escaped() {
        let s = Untrusted("bye\nINFO forged line\x1b[2J\r\u{202e}").to_string();
        assert!(!s.contains('\n') && !s.contains('\x1b') && !s.contains('\r'));
        assert!(
            s.contains("bye\\nINFO forged line\\u{1b}[2J\\r\\u{202e}"),
            "{s}"
        );
        assert_eq!(Untrusted("plain ünïcode").to_string(), "plain ünïcode");
    }

    #[test]
    fn long_text_is_cut() {
        let long = "x".repeat(1000);
        let s = Untrusted(&long).to_string();
        assert!(s.starts_with(&"x".repeat(Untrusted::MAX_CHARS)));
        assert!(s.ends_with("...(744 more characters)"), "{s}");
    }

    #[test]
    fn throttle_lets_one_through_per_interval_and_counts_the_rest() {
        let t = Throttle::new(Duration::from_secs(1));
        assert_eq!(t.allow_at(5), Some(0));
        for ms in [6, 500, 1004] {
            assert_eq!(t.allow_at(ms), None);
        }
        assert_eq!(t.allow_at(1005), Some(3));
        assert_eq!(t.allow_at(1006), None);
        assert_eq!(t.allow_at(9000), Some(1));
    }
}
