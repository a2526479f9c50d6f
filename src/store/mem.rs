//! A [`RibStore`] in memory, for tests that drive a whole node in one
//! process: the same contract as the sled store (batches applied in
//! order, durable at `flush`), with what is durable kept apart from what
//! is only applied, so a test can see exactly what a crash would keep.
//! Nothing survives the process.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, PoisonError};

use super::{Meta, RibStore, SCHEMA_VERSION, StoreCounts, StoreError, StoredPeer, WriteBatch};
use crate::core::engine::RibChange;
use crate::core::ids::{Asn, Millis, NodeId};
use crate::core::prefix::Prefix;
use crate::core::route::{Route, RouteKey};

/// The trees of a store.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct MemTrees {
    pub peers: BTreeMap<NodeId, Asn>,
    pub adj_in: BTreeMap<(NodeId, RouteKey), Route>,
    pub loc: BTreeMap<Prefix, Route>,
    pub adj_out: BTreeMap<(NodeId, Prefix), Route>,
    pub agents: BTreeMap<String, String>,
}

impl MemTrees {
    fn apply(&mut self, b: &WriteBatch) {
        for (node, asn) in &b.peers {
            self.peers.insert(*node, *asn);
        }
        for c in &b.changes {
            match c {
                RibChange::AdjIn { peer, key, route } => match route {
                    Some(r) => {
                        self.adj_in.insert((*peer, key.clone()), r.clone());
                    }
                    None => {
                        self.adj_in.remove(&(*peer, key.clone()));
                    }
                },
                RibChange::Loc { prefix, best } => match best {
                    Some(r) => {
                        self.loc.insert(prefix.clone(), r.clone());
                    }
                    None => {
                        self.loc.remove(prefix);
                    }
                },
                RibChange::AdjOut {
                    peer,
                    prefix,
                    route,
                } => match route {
                    Some(r) => {
                        self.adj_out.insert((*peer, prefix.clone()), r.clone());
                    }
                    None => {
                        self.adj_out.remove(&(*peer, prefix.clone()));
                    }
                },
            }
        }
        for (id, entry) in &b.agents {
            match entry {
                Some(json) => {
                    self.agents.insert(id.clone(), json.clone());
                }
                None => {
                    self.agents.remove(id);
                }
            }
        }
    }
}

/// What a test sees of a [`MemStore`] while the node owns it.
#[derive(Debug, Default)]
pub struct MemState {
    /// Applied, durable or not.
    pub applied: MemTrees,
    /// What the last flush made durable: what a crash would keep.
    pub durable: MemTrees,
    pub batches: u64,
    pub flushes: u64,
}

/// See the module documentation.
#[derive(Debug)]
pub struct MemStore {
    meta: Meta,
    state: Arc<Mutex<MemState>>,
}

impl MemStore {
    /// An empty store for `node`, and the handle to look into it.
    pub fn new(node: NodeId, now: Millis) -> (MemStore, Arc<Mutex<MemState>>) {
        let state = Arc::new(Mutex::new(MemState::default()));
        let meta = Meta {
            schema_version: SCHEMA_VERSION,
            node,
            created: now,
            clean_shutdown: true,
        };
        (
            MemStore {
                meta,
                state: state.clone(),
            },
            state,
        )
    }

    fn state(&self) -> std::sync::MutexGuard<'_, MemState> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl RibStore for MemStore {
    fn meta(&self) -> &Meta {
        &self.meta
    }

    fn apply(&mut self, batch: &WriteBatch) -> Result<(), StoreError> {
        let mut s = self.state();
        s.applied.apply(batch);
        s.batches += 1;
        Ok(())
    }

    fn flush(&mut self) -> Result<(), StoreError> {
        let mut s = self.state();
        s.durable = s.applied.clone();
        s.flushes += 1;
        Ok(())
    }

    fn load_adj_in(&self) -> Result<Vec<StoredPeer>, StoreError> {
        let s = self.state();
        let mut peers: BTreeMap<NodeId, StoredPeer> = BTreeMap::new();
        fn peer(peers: &mut BTreeMap<NodeId, StoredPeer>, node: NodeId) -> &mut StoredPeer {
            peers.entry(node).or_insert_with(|| StoredPeer {
                node,
                asn: None,
                routes: Vec::new(),
            })
        }
        for (node, asn) in &s.durable.peers {
            peer(&mut peers, *node).asn = Some(*asn);
        }
        for ((node, _), r) in &s.durable.adj_in {
            peer(&mut peers, *node).routes.push(r.clone());
        }
        Ok(peers.into_values().collect())
    }

    fn clear_derived(&mut self) -> Result<(), StoreError> {
        let mut s = self.state();
        s.applied.loc.clear();
        s.applied.adj_out.clear();
        Ok(())
    }

    fn load_agents(&self) -> Result<Vec<(String, String)>, StoreError> {
        Ok(self
            .state()
            .durable
            .agents
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect())
    }

    fn set_clean_shutdown(&mut self, clean: bool) -> Result<(), StoreError> {
        self.meta.clean_shutdown = clean;
        Ok(())
    }

    fn counts(&self) -> StoreCounts {
        let s = self.state();
        StoreCounts {
            peers: s.applied.peers.len(),
            adj_in: s.applied.adj_in.len(),
            loc: s.applied.loc.len(),
            adj_out: s.applied.adj_out.len(),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::core::attrs::PathAttrs;

    #[test]
    fn only_what_was_flushed_is_restored() {
        let (mut store, state) = MemStore::new(NodeId([1; 32]), Millis(0));
        let peer = NodeId([2; 32]);
        let route = Route::new(
            "a/b".parse().expect("prefix"),
            Arc::new(PathAttrs::default()),
        );
        let batch = WriteBatch {
            changes: vec![RibChange::AdjIn {
                peer,
                key: route.key(),
                route: Some(route.clone()),
            }],
            peers: vec![(peer, Asn(65002))],
            agents: vec![("echo".into(), Some("{}".into()))],
        };
        store.apply(&batch).expect("apply");
        assert!(
            store.load_adj_in().expect("load").is_empty(),
            "applied, not durable"
        );
        assert!(store.load_agents().expect("agents").is_empty());
        store.flush().expect("flush");
        let peers = store.load_adj_in().expect("load");
        assert_eq!(peers.len(), 1);
        assert_eq!((peers[0].node, peers[0].asn), (peer, Some(Asn(65002))));
        assert_eq!(peers[0].routes, vec![route]);
        assert_eq!(
            store.load_agents().expect("agents"),
            vec![("echo".into(), "{}".into())]
        );
        let s = state.lock().expect("state");
        assert_eq!((s.batches, s.flushes), (1, 1));
    }
}
