//! The store thread: applies [`WriteBatch`]es in order and reports when
//! they are durable.
//!
//! ```text
//!  engine task ──submit(batch) -> seq──> [bounded queue] ──> store thread
//!       ^                                                  apply, apply, ...
//!       └──────── watch: Durability { seq } <──────────── flush (group commit)
//! ```
//!
//! The engine task never waits for the disk except when the queue is full
//! (back-pressure). It keeps the acknowledgements of the requests a batch
//! came from and sends them once [`Durability::seq`] reaches the batch's
//! sequence number. The thread drains whatever is queued before each flush,
//! so a burst from many peers costs one flush. It never waits for the
//! engine task, so the two cannot deadlock; a `watch` channel holds only
//! the latest value, so reporting can never block either.
//!
//! A failed write or flush is reported in [`Durability::error`] and stops
//! the thread: the node must not acknowledge routes it cannot keep.

use std::thread::JoinHandle;

use tokio::sync::{mpsc, watch};

use super::{RibStore, WriteBatch};

/// Batches applied between two flushes at most (bounds flush latency).
const MAX_GROUP: usize = 256;

/// How far the store got.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Durability {
    /// Every batch with a sequence number up to this one is durable.
    pub seq: u64,
    /// The store failed; nothing later will become durable.
    pub error: Option<String>,
    /// Batches written and flushes done, for the admin API.
    pub batches: u64,
    pub flushes: u64,
}

/// Handle to the store thread.
#[derive(Debug)]
pub struct StoreWriter {
    tx: Option<mpsc::Sender<(u64, WriteBatch)>>,
    next_seq: u64,
    durable: watch::Receiver<Durability>,
    thread: Option<JoinHandle<()>>,
}

/// Why a batch was not taken.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SubmitError {
    #[error("the store is closed")]
    Closed,
    /// The store thread stopped, with the failure it reported, if any.
    #[error("the store thread stopped{}", .0.as_ref().map(|e| format!(": {e}")).unwrap_or_default())]
    Stopped(Option<String>),
}

impl StoreWriter {
    /// Starts the thread. `queue` bounds the batches waiting to be written.
    pub fn spawn<S: RibStore>(mut store: S, queue: usize) -> std::io::Result<Self> {
        let (tx, mut rx) = mpsc::channel::<(u64, WriteBatch)>(queue.max(1));
        let (dtx, drx) = watch::channel(Durability::default());
        let thread = std::thread::Builder::new()
            .name("abgp-store".into())
            .spawn(move || {
                let mut last = 0u64;
                let (mut batches, mut flushes) = (0u64, 0u64);
                let fail = |e: String, dtx: &watch::Sender<Durability>| {
                    tracing::error!(error = %e, "store failed; no further routes will be acknowledged");
                    dtx.send_modify(|d| d.error = Some(e));
                };
                while let Some((seq, first)) = rx.blocking_recv() {
                    let mut group = vec![(seq, first)];
                    while group.len() < MAX_GROUP {
                        match rx.try_recv() {
                            Ok(j) => group.push(j),
                            Err(_) => break,
                        }
                    }
                    let mut upto = last;
                    for (seq, batch) in &group {
                        if let Err(e) = store.apply(batch) {
                            fail(e.to_string(), &dtx);
                            return;
                        }
                        upto = *seq;
                    }
                    if let Err(e) = store.flush() {
                        fail(e.to_string(), &dtx);
                        return;
                    }
                    last = upto;
                    batches += group.len() as u64;
                    flushes += 1;
                    dtx.send_replace(Durability {
                        seq: last,
                        error: None,
                        batches,
                        flushes,
                    });
                }
                // The node is shutting down: everything queued was written.
                if let Err(e) = store.set_clean_shutdown(true) {
                    tracing::warn!(error = %e, "could not record the clean shutdown");
                }
            })?;
        Ok(StoreWriter {
            tx: Some(tx),
            next_seq: 0,
            durable: drx,
            thread: Some(thread),
        })
    }

    /// Queues a batch; returns its sequence number. Waits only while the
    /// queue is full. Fails once the store thread has stopped.
    pub async fn submit(&mut self, batch: WriteBatch) -> Result<u64, SubmitError> {
        let tx = self.tx.as_ref().ok_or(SubmitError::Closed)?;
        self.next_seq += 1;
        let seq = self.next_seq;
        tx.send((seq, batch))
            .await
            .map_err(|_| SubmitError::Stopped(self.durable.borrow().error.clone()))?;
        Ok(seq)
    }

    /// The sequence number of the last submitted batch.
    pub fn last_submitted(&self) -> u64 {
        self.next_seq
    }

    /// A receiver that changes whenever more batches become durable.
    pub fn durable(&self) -> watch::Receiver<Durability> {
        self.durable.clone()
    }

    /// Writes everything queued, records a clean shutdown and stops the
    /// thread. Blocks until done; call from a blocking context.
    pub fn close(mut self) {
        self.tx.take();
        if let Some(t) = self.thread.take()
            && t.join().is_err()
        {
            tracing::error!("store thread panicked while closing");
        }
    }
}

impl Drop for StoreWriter {
    fn drop(&mut self) {
        // Dropping the sender lets the thread finish; it is not joined here
        // because drop may run on the async runtime.
        self.tx.take();
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::core::attrs::PathAttrs;
    use crate::core::engine::RibChange;
    use crate::core::ids::{Millis, NodeId};
    use crate::core::prefix::Prefix;
    use crate::core::route::Route;
    use crate::store::SledStore;

    /// A store whose writes fail from the `fail_at`-th batch on, as a full
    /// or broken disk would.
    struct Failing {
        meta: crate::store::Meta,
        applied: usize,
        fail_at: usize,
    }

    impl RibStore for Failing {
        fn meta(&self) -> &crate::store::Meta {
            &self.meta
        }
        fn apply(&mut self, _: &WriteBatch) -> Result<(), crate::store::StoreError> {
            self.applied += 1;
            if self.applied >= self.fail_at {
                return Err(crate::store::StoreError::DiskFull {
                    dir: "/nowhere".into(),
                    free: 0,
                    needed: 1 << 20,
                });
            }
            Ok(())
        }
        fn flush(&mut self) -> Result<(), crate::store::StoreError> {
            Ok(())
        }
        fn load_adj_in(&self) -> Result<Vec<crate::store::StoredPeer>, crate::store::StoreError> {
            Ok(Vec::new())
        }
        fn clear_derived(&mut self) -> Result<(), crate::store::StoreError> {
            Ok(())
        }
        fn load_agents(&self) -> Result<Vec<(String, String)>, crate::store::StoreError> {
            Ok(Vec::new())
        }
        fn set_clean_shutdown(&mut self, _: bool) -> Result<(), crate::store::StoreError> {
            Ok(())
        }
        fn counts(&self) -> crate::store::StoreCounts {
            crate::store::StoreCounts::default()
        }
    }

    #[tokio::test]
    async fn a_failed_write_is_reported_and_nothing_after_it_becomes_durable() {
        let store = Failing {
            meta: crate::store::Meta {
                schema_version: crate::store::SCHEMA_VERSION,
                node: NodeId::from_u64(1),
                created: Millis(0),
                clean_shutdown: true,
            },
            applied: 0,
            fail_at: 4,
        };
        let mut w = StoreWriter::spawn(store, 1).unwrap();
        let mut durable = w.durable();
        let empty = || WriteBatch {
            agents: Vec::new(),
            peers: Vec::new(),
            changes: Vec::new(),
        };
        // One at a time, so each is its own group.
        for _ in 0..3 {
            let seq = w.submit(empty()).await.unwrap();
            while durable.borrow_and_update().seq < seq {
                durable.changed().await.unwrap();
            }
        }
        let _ = w.submit(empty()).await;
        // The thread stops: `changed` ends, and the error is there.
        while durable.changed().await.is_ok() {}
        let d = durable.borrow().clone();
        assert_eq!(d.seq, 3, "the failed batch never became durable");
        assert!(d.error.unwrap().contains("MiB free"));
        assert!(w.submit(empty()).await.is_err(), "nothing more is taken");
    }

    #[tokio::test]
    async fn batches_become_durable_in_order_and_close_is_clean() {
        let dir = tempfile::tempdir().unwrap();
        let me = NodeId::from_u64(1);
        let mut store = SledStore::open(dir.path(), me, Millis(0), 8).unwrap();
        store.set_clean_shutdown(false).unwrap();
        let mut w = StoreWriter::spawn(store, 4).unwrap();
        let mut durable = w.durable();
        let mut last = 0;
        for i in 0..20 {
            let r = Route::new(
                Prefix::new(&format!("t/{i}")).unwrap(),
                Arc::new(PathAttrs {
                    agent: crate::core::ids::AgentId::new("a"),
                    ..Default::default()
                }),
            );
            last = w
                .submit(WriteBatch {
                    agents: Vec::new(),
                    peers: vec![],
                    changes: vec![RibChange::AdjIn {
                        peer: NodeId::from_u64(2),
                        key: r.key(),
                        route: Some(r),
                    }],
                })
                .await
                .unwrap();
        }
        assert_eq!(last, 20);
        tokio::time::timeout(std::time::Duration::from_secs(10), async {
            while durable.borrow_and_update().seq < last {
                durable.changed().await.unwrap();
            }
        })
        .await
        .unwrap();
        assert!(durable.borrow().flushes >= 1);
        tokio::task::spawn_blocking(move || w.close())
            .await
            .unwrap();
        let s = SledStore::open(dir.path(), me, Millis(0), 8).unwrap();
        assert!(s.meta().clean_shutdown);
        assert_eq!(s.load_adj_in().unwrap()[0].routes.len(), 20);
    }
}
