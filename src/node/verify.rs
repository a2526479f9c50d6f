//! Route signature checks off the node task, within a budget per peer.
//!
//! The node task plans an UPDATE's verification ([`Security::plan_update`]:
//! cache lookups, no curve operations) and hands what is left to the
//! [`Verifier`], which runs it on tokio's blocking pool and sends the
//! verdicts back; meanwhile the node keeps serving every other peer, its
//! front and its admin API. The peer's next routing message waits: it has
//! one request in flight, and it is acknowledged only after this one is
//! handled.
//!
//! Bounds:
//! - **Per-peer budget**: each peer may make this node check
//!   [`VerifyBudget::per_second`] signatures a second (bursts of
//!   [`VerifyBudget::burst`]); work beyond it waits for the budget, so a
//!   peer that floods signed routes slows itself down, not the node.
//! - **Early abort**: an UPDATE's checks stop after
//!   [`VerifyBudget::max_failures`] bad signatures; its remaining routes
//!   are dropped unchecked (treat-as-withdraw), so an UPDATE full of bad
//!   signatures costs a few bisections, not one per signature.
//! - **Concurrency**: at most [`VerifyBudget::workers`] jobs at once.
//!
//! [`Security::plan_update`]: super::security::Security::plan_update

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{Semaphore, mpsc};
use tokio::time::Instant;

use crate::core::ids::NodeId;
use crate::identity::verify_cache::{Pending, Verdicts};

/// The verifier's bounds, with their defaults.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct VerifyBudget {
    /// Signature checks per second one peer may cause (20,000; this
    /// machine does about 48,000 in batches).
    pub per_second: f64,
    /// Checks one peer may cause at once after a quiet spell (100,000: a
    /// full table of a few thousand routes).
    pub burst: f64,
    /// Bad signatures after which an UPDATE's remaining checks are skipped
    /// (16).
    pub max_failures: usize,
    /// Jobs run at once (the number of CPUs).
    pub workers: usize,
}

impl Default for VerifyBudget {
    fn default() -> Self {
        VerifyBudget {
            per_second: 20_000.0,
            burst: 100_000.0,
            max_failures: 16,
            workers: std::thread::available_parallelism().map_or(2, |n| n.get()),
        }
    }
}

/// A finished job: the verdicts and whatever the node needs to go on.
#[derive(Debug)]
pub struct Done<T> {
    pub peer: NodeId,
    pub pending: Pending,
    pub verdicts: Verdicts,
    /// How long the job waited for the peer's budget.
    pub waited: Duration,
    pub then: T,
}

#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    at: Instant,
}

/// Runs verification jobs; their results come back on [`Verifier::recv`].
#[derive(Debug)]
pub struct Verifier<T> {
    budget: VerifyBudget,
    buckets: HashMap<NodeId, Bucket>,
    permits: Arc<Semaphore>,
    tx: mpsc::UnboundedSender<Done<T>>,
    rx: mpsc::UnboundedReceiver<Done<T>>,
    in_flight: usize,
}

impl<T: Send + 'static> Verifier<T> {
    pub fn new(budget: VerifyBudget) -> Self {
        let (tx, rx) = mpsc::unbounded_channel();
        Verifier {
            permits: Arc::new(Semaphore::new(budget.workers.max(1))),
            budget,
            buckets: HashMap::new(),
            tx,
            rx,
            in_flight: 0,
        }
    }

    pub fn budget(&self) -> VerifyBudget {
        self.budget
    }

    /// Jobs submitted and not received back yet. At most one per peer
    /// (each peer has one routing request in flight), so the channel is
    /// bounded by the number of peers.
    pub fn in_flight(&self) -> usize {
        self.in_flight
    }

    /// How long `peer` must wait before `work` more checks fit its budget,
    /// charging them.
    fn charge(&mut self, peer: NodeId, work: usize, now: Instant) -> Duration {
        let (rate, burst) = (self.budget.per_second, self.budget.burst);
        let b = self.buckets.entry(peer).or_insert(Bucket {
            tokens: burst,
            at: now,
        });
        let dt = now.saturating_duration_since(b.at).as_secs_f64();
        b.tokens = (b.tokens + dt * rate).min(burst);
        b.at = now;
        b.tokens -= work as f64;
        if b.tokens >= 0.0 || rate <= 0.0 {
            Duration::ZERO
        } else {
            Duration::from_secs_f64(-b.tokens / rate)
        }
    }

    /// Starts checking `pending` for `peer`.
    pub fn submit(&mut self, peer: NodeId, pending: Pending, then: T) {
        let wait = self.charge(peer, pending.work(), Instant::now());
        let permits = self.permits.clone();
        let tx = self.tx.clone();
        let max_failures = self.budget.max_failures;
        self.in_flight += 1;
        tokio::spawn(async move {
            if !wait.is_zero() {
                tokio::time::sleep(wait).await;
            }
            let Ok(_permit) = permits.acquire_owned().await else {
                return;
            };
            let job = tokio::task::spawn_blocking(move || {
                let verdicts = pending.verify(max_failures);
                (pending, verdicts)
            });
            if let Ok((pending, verdicts)) = job.await {
                let _ = tx.send(Done {
                    peer,
                    pending,
                    verdicts,
                    waited: wait,
                    then,
                });
            }
        });
    }

    /// The next finished job.
    pub async fn recv(&mut self) -> Option<Done<T>> {
        let d = self.rx.recv().await;
        if d.is_some() {
            self.in_flight = self.in_flight.saturating_sub(1);
        }
        d
    }

    /// Forgets the budget of a peer that went away.
    pub fn forget(&mut self, peer: &NodeId) {
        self.buckets.remove(peer);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_budget_refills_at_its_rate_and_charges_work_beyond_it_as_waiting() {
        let mut v: Verifier<()> = Verifier::new(VerifyBudget {
            per_second: 1000.0,
            burst: 2000.0,
            max_failures: 16,
            workers: 1,
        });
        let t0 = Instant::now();
        let p = NodeId([1; 32]);
        assert_eq!(v.charge(p, 2000, t0), Duration::ZERO, "the burst");
        assert_eq!(v.charge(p, 500, t0), Duration::from_millis(500));
        // A second later 1000 came back: 500 owed, 500 left.
        assert_eq!(
            v.charge(p, 500, t0 + Duration::from_secs(1)),
            Duration::ZERO
        );
        // Another peer has its own budget.
        assert_eq!(v.charge(NodeId([2; 32]), 2000, t0), Duration::ZERO);
    }
}
