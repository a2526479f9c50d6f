//! Persistence of the RIBs across restarts.
//!
//! The routing core reports every RIB change as [`RibChange`]s; the node
//! groups the changes one event produced into a [`WriteBatch`] and hands it
//! to the [`writer`] thread, which applies batches in order, flushes, and
//! then reports them durable. Only then does the node acknowledge the
//! UPDATE that caused them, so an acknowledged route survives a SIGKILL.
//!
//! [`RibStore`] is the small interface the rest of the node sees; sled 0.34
//! (beta) sits behind it in [`sled_store`], so it can be replaced without
//! touching the node. What is stored, the schema version, how to recover a
//! broken store and how migrations will work are in `docs/store.md`.
//!
//! The Adj-RIB-In (pre-policy, as received) is the source of truth after a
//! restart: it is fed back to the engine as stale routes (graceful restart,
//! RFC 4724), which re-derives the Loc-RIB and Adj-RIB-Out. The stored
//! Loc-RIB and Adj-RIB-Outs are a durable mirror for offline inspection
//! (`abgp store dump`), cleared and rebuilt at every start.

pub mod codec;
pub mod mem;
pub mod sled_store;
pub mod writer;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::core::engine::RibChange;
use crate::core::ids::{Asn, Millis, NodeId};
use crate::core::route::Route;

pub use mem::{MemState, MemStore};
pub use sled_store::SledStore;
pub use writer::{Durability, StoreWriter};

/// Version of the on-disk layout this build reads and writes. Bump it when
/// a key or value format changes, and add the migration from the previous
/// version (docs/store.md).
pub const SCHEMA_VERSION: u32 = 1;

/// Why the store cannot be used. Every variant's message says what to do.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error(
        "cannot open the store at {dir}: {source}{hint}",
        hint = lock_hint(source)
    )]
    Open {
        dir: PathBuf,
        #[source]
        source: sled::Error,
    },
    #[error(
        "the store at {dir} is corrupt ({what}). Inspect it with `abgp store check --dir {node_dir}`; \
         `abgp store reset --dir {node_dir}` moves it aside and starts empty (routes are re-learned \
         from peers)",
        node_dir = node_dir_hint(dir)
    )]
    Corrupt { dir: PathBuf, what: String },
    #[error(
        "the store at {dir} has schema version {found}; this build reads version {expected}. \
         Run the abgp version that wrote it, or `abgp store reset --dir {node_dir}` to start \
         empty (docs/store.md, \"Migrations\")",
        node_dir = node_dir_hint(dir)
    )]
    Incompatible {
        dir: PathBuf,
        found: u32,
        expected: u32,
    },
    #[error(
        "the store at {dir} belongs to node {stored}, but this node's key is {ours}; \
         point data_dir elsewhere or `abgp store reset --dir {node_dir}`",
        node_dir = node_dir_hint(dir)
    )]
    WrongNode {
        dir: PathBuf,
        stored: NodeId,
        ours: NodeId,
    },
    #[error("store write failed: {0}")]
    Write(#[source] sled::Error),
    #[error(
        "the disk holding the store at {dir} has {free_mib} MiB free, and the next batch needs \
         {needed_mib} MiB with the reserve ([store] min_free_mb); stopping before the store can \
         be damaged. Free some space, then start the node again: it restores every route it \
         acknowledged",
        free_mib = free / (1 << 20),
        needed_mib = needed.div_ceil(1 << 20)
    )]
    DiskFull {
        dir: PathBuf,
        free: u64,
        needed: u64,
    },
    #[error("cannot encode a route for the store: {0}")]
    Encode(String),
}

fn lock_hint(e: &sled::Error) -> &'static str {
    match e {
        sled::Error::Io(io) if io.kind() == std::io::ErrorKind::WouldBlock => {
            " (is another abgp running with this data dir?)"
        }
        sled::Error::Io(io) if io.to_string().contains("lock") => {
            " (is another abgp running with this data dir?)"
        }
        sled::Error::Corruption { .. } => {
            " (the store is corrupt: see `abgp store check` and `abgp store reset` in docs/store.md)"
        }
        _ => "",
    }
}

/// The node directory for recovery commands: the store lives in
/// `<data_dir>/store`, and `--dir` takes the node directory.
fn node_dir_hint(store_dir: &Path) -> String {
    store_dir
        .parent()
        .unwrap_or(store_dir)
        .display()
        .to_string()
}

/// Everything one engine step changed, written atomically per tree.
#[derive(Debug, Clone, Default)]
pub struct WriteBatch {
    pub changes: Vec<RibChange>,
    /// Peers whose ASN became known (session up); needed to restore their
    /// routes after a restart.
    pub peers: Vec<(NodeId, Asn)>,
    /// MCP agents added (`Some(entry as JSON)`) or removed (`None`) at run
    /// time through the admin API, by id.
    pub agents: Vec<(String, Option<String>)>,
}

impl WriteBatch {
    pub fn is_empty(&self) -> bool {
        self.changes.is_empty() && self.peers.is_empty() && self.agents.is_empty()
    }
}

/// Node facts kept in the `meta` tree.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Meta {
    pub schema_version: u32,
    pub node: NodeId,
    pub created: Millis,
    /// Whether the previous run ended with a clean shutdown.
    pub clean_shutdown: bool,
}

/// A peer's routes as restored at start.
#[derive(Debug, Clone)]
pub struct StoredPeer {
    pub node: NodeId,
    /// `None` if the session never came up while the routes were written
    /// (cannot happen for routes written by this build).
    pub asn: Option<Asn>,
    pub routes: Vec<Route>,
}

/// Entry counts per tree, for `abgp store check` and the admin API.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct StoreCounts {
    pub peers: usize,
    pub adj_in: usize,
    pub loc: usize,
    pub adj_out: usize,
}

/// The whole store, decoded (offline inspection and tests).
#[derive(Debug, Clone, Default)]
pub struct Dump {
    pub adj_in: Vec<StoredPeer>,
    pub loc: Vec<Route>,
    pub adj_out: BTreeMap<NodeId, Vec<Route>>,
}

/// What the node needs from a RIB store. Implementations must apply each
/// batch atomically per tree and in order, and make everything applied
/// before a successful [`RibStore::flush`] survive a crash.
pub trait RibStore: Send + 'static {
    fn meta(&self) -> &Meta;
    /// Applies a batch; not durable until [`RibStore::flush`].
    fn apply(&mut self, batch: &WriteBatch) -> Result<(), StoreError>;
    /// Makes everything applied so far durable.
    fn flush(&mut self) -> Result<(), StoreError>;
    /// The Adj-RIB-In of every peer, for graceful-restart restore.
    fn load_adj_in(&self) -> Result<Vec<StoredPeer>, StoreError>;
    /// Empties the derived trees (Loc-RIB, Adj-RIB-Out); the engine
    /// rebuilds them after a restore.
    fn clear_derived(&mut self) -> Result<(), StoreError>;
    /// MCP agents added at run time: (id, the entry as JSON), by id.
    fn load_agents(&self) -> Result<Vec<(String, String)>, StoreError>;
    /// Records whether this run is ending cleanly (flushed).
    fn set_clean_shutdown(&mut self, clean: bool) -> Result<(), StoreError>;
    fn counts(&self) -> StoreCounts;
}
