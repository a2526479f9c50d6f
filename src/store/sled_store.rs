//! The sled 0.34 implementation of [`RibStore`].
//!
//! sled is opened in `Mode::LowSpace` with a bounded page cache. Each
//! [`WriteBatch`] becomes at most one `sled::Batch` per tree, applied
//! atomically; [`RibStore::flush`] is sled's `flush`, after which the batch
//! survives a crash. sled recovers its log on open; a store it cannot
//! recover, or whose contents do not decode, is reported as
//! [`StoreError::Corrupt`] with the recovery command.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use sled::{Batch, Db, Tree};

use super::codec::{self, AdjInKey};
use super::{
    Dump, Meta, RibStore, SCHEMA_VERSION, StoreCounts, StoreError, StoredPeer, WriteBatch,
};
use crate::core::engine::RibChange;
use crate::core::ids::{Millis, NodeId};

mod meta_key {
    pub const SCHEMA_VERSION: &str = "schema_version";
    pub const NODE: &str = "node";
    pub const CREATED: &str = "created";
    pub const CLEAN_SHUTDOWN: &str = "clean_shutdown";
}

/// A RIB store in a sled database directory.
pub struct SledStore {
    dir: PathBuf,
    db: Db,
    meta_tree: Tree,
    adj_in: Tree,
    loc: Tree,
    adj_out: Tree,
    /// MCP agents added at run time (id -> entry as JSON). A tree older
    /// builds simply do not open, so the schema version stays.
    agents: Tree,
    meta: Meta,
    /// Bytes that must stay free on the store's filesystem.
    min_free: u64,
}

impl std::fmt::Debug for SledStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SledStore")
            .field("dir", &self.dir)
            .field("meta", &self.meta)
            .finish()
    }
}

/// Bytes available to this process on the filesystem holding `dir`.
fn free_bytes(dir: &Path) -> Option<u64> {
    use std::os::unix::ffi::OsStrExt;
    let path = std::ffi::CString::new(dir.as_os_str().as_bytes()).ok()?;
    // SAFETY: `path` is NUL-terminated and outlives the call; `st` is a
    // plain C struct that statvfs fills in.
    let mut st: libc::statvfs = unsafe { std::mem::zeroed() };
    let r = unsafe { libc::statvfs(path.as_ptr(), &mut st) };
    (r == 0).then(|| st.f_bavail.saturating_mul(st.f_frsize))
}

fn is_lock_error(e: &sled::Error) -> bool {
    matches!(e, sled::Error::Io(io) if io.kind() == std::io::ErrorKind::WouldBlock
        || io.to_string().contains("could not acquire lock"))
}

fn open_db(dir: &Path, cache_mb: u64) -> Result<Db, StoreError> {
    let cfg = sled::Config::new()
        .path(dir)
        .mode(sled::Mode::LowSpace)
        .cache_capacity(cache_mb.saturating_mul(1024 * 1024));
    // sled releases its file lock from a background thread after the last
    // handle is dropped, so reopening right after closing (in the same
    // process) can race it: retry briefly before calling the store busy.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(2);
    loop {
        match cfg.open() {
            Ok(db) => return Ok(db),
            Err(e) if is_lock_error(&e) && std::time::Instant::now() < deadline => {
                std::thread::sleep(std::time::Duration::from_millis(20));
            }
            Err(sled::Error::Corruption { .. }) => {
                return Err(StoreError::Corrupt {
                    dir: dir.to_path_buf(),
                    what: "sled could not recover its log".into(),
                });
            }
            Err(source) => {
                return Err(StoreError::Open {
                    dir: dir.to_path_buf(),
                    source,
                });
            }
        }
    }
}

impl SledStore {
    /// Opens (or creates) the store for node `node`. Refuses a store of
    /// another schema version or another node.
    pub fn open(dir: &Path, node: NodeId, now: Millis, cache_mb: u64) -> Result<Self, StoreError> {
        let db = open_db(dir, cache_mb)?;
        let mut s = Self::from_db(dir, db)?;
        match s.read_meta()? {
            None => {
                s.meta = Meta {
                    schema_version: SCHEMA_VERSION,
                    node,
                    created: now,
                    clean_shutdown: true,
                };
                s.write_meta()?;
            }
            Some(m) => {
                if m.schema_version != SCHEMA_VERSION {
                    return Err(StoreError::Incompatible {
                        dir: dir.to_path_buf(),
                        found: m.schema_version,
                        expected: SCHEMA_VERSION,
                    });
                }
                if m.node != node {
                    return Err(StoreError::WrongNode {
                        dir: dir.to_path_buf(),
                        stored: m.node,
                        ours: node,
                    });
                }
                s.meta = m;
            }
        }
        Ok(s)
    }

    /// Opens an existing store for inspection, whatever node it belongs to.
    /// A missing store is an error, not a new empty one.
    pub fn open_existing(dir: &Path) -> Result<Self, StoreError> {
        if !dir.join("conf").exists() && !dir.join("db").exists() {
            return Err(StoreError::Open {
                dir: dir.to_path_buf(),
                source: sled::Error::Io(std::io::Error::new(
                    std::io::ErrorKind::NotFound,
                    "no store here",
                )),
            });
        }
        let db = open_db(dir, 16)?;
        let mut s = Self::from_db(dir, db)?;
        match s.read_meta()? {
            Some(m) => {
                if m.schema_version != SCHEMA_VERSION {
                    return Err(StoreError::Incompatible {
                        dir: dir.to_path_buf(),
                        found: m.schema_version,
                        expected: SCHEMA_VERSION,
                    });
                }
                s.meta = m;
                Ok(s)
            }
            None => Err(StoreError::Corrupt {
                dir: dir.to_path_buf(),
                what: "the meta tree is missing".into(),
            }),
        }
    }

    fn from_db(dir: &Path, db: Db) -> Result<Self, StoreError> {
        let tree = |name: &str| {
            db.open_tree(name).map_err(|source| StoreError::Open {
                dir: dir.to_path_buf(),
                source,
            })
        };
        Ok(SledStore {
            dir: dir.to_path_buf(),
            meta_tree: tree("meta")?,
            adj_in: tree("adj_in")?,
            loc: tree("loc")?,
            adj_out: tree("adj_out")?,
            agents: tree("agents")?,
            db,
            min_free: 0,
            meta: Meta {
                schema_version: SCHEMA_VERSION,
                node: NodeId([0; 32]),
                created: Millis(0),
                clean_shutdown: true,
            },
        })
    }

    /// Keeps `bytes` free on the store's filesystem: a batch that would go
    /// below it is refused with [`StoreError::DiskFull`] (0: no reserve,
    /// but batches are still refused when the disk is full).
    pub fn with_min_free(mut self, bytes: u64) -> Self {
        self.min_free = bytes;
        self
    }

    /// Refuses a batch of `bytes` encoded bytes that would take the free
    /// space below the reserve (sled writes a log, then compacts: four
    /// times the batch is a safe bound).
    fn check_space(&self, bytes: usize) -> Result<(), StoreError> {
        let Some(free) = free_bytes(&self.dir) else {
            return Ok(());
        };
        let needed = self
            .min_free
            .saturating_add(4u64.saturating_mul(bytes as u64))
            .saturating_add(1 << 20);
        if free < needed {
            return Err(StoreError::DiskFull {
                dir: self.dir.clone(),
                free,
                needed,
            });
        }
        Ok(())
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn corrupt(&self, what: impl Into<String>) -> StoreError {
        StoreError::Corrupt {
            dir: self.dir.clone(),
            what: what.into(),
        }
    }

    fn get(&self, key: &str) -> Result<Option<sled::IVec>, StoreError> {
        self.meta_tree
            .get(key)
            .map_err(|e| self.corrupt(format!("meta: {e}")))
    }

    fn read_meta(&self) -> Result<Option<Meta>, StoreError> {
        let Some(v) = self.get(meta_key::SCHEMA_VERSION)? else {
            if !self.meta_tree.is_empty()
                || !self.adj_in.is_empty()
                || !self.loc.is_empty()
                || !self.adj_out.is_empty()
            {
                return Err(self.corrupt("routes without a schema version"));
            }
            return Ok(None);
        };
        let schema_version = u32::from_be_bytes(
            v.as_ref()
                .try_into()
                .map_err(|_| self.corrupt("schema_version is not 4 bytes"))?,
        );
        if schema_version != SCHEMA_VERSION {
            // Do not read further: a different layout may store anything.
            return Ok(Some(Meta {
                schema_version,
                node: NodeId([0; 32]),
                created: Millis(0),
                clean_shutdown: false,
            }));
        }
        let node = self
            .get(meta_key::NODE)?
            .and_then(|v| <[u8; 32]>::try_from(v.as_ref()).ok())
            .map(NodeId)
            .ok_or_else(|| self.corrupt("meta node id missing or malformed"))?;
        let created = self
            .get(meta_key::CREATED)?
            .and_then(|v| <[u8; 8]>::try_from(v.as_ref()).ok())
            .map(|b| Millis(u64::from_be_bytes(b)))
            .ok_or_else(|| self.corrupt("meta creation time missing or malformed"))?;
        let clean_shutdown = self
            .get(meta_key::CLEAN_SHUTDOWN)?
            .is_some_and(|v| v.as_ref() == [1]);
        Ok(Some(Meta {
            schema_version,
            node,
            created,
            clean_shutdown,
        }))
    }

    fn write_meta(&mut self) -> Result<(), StoreError> {
        let mut b = Batch::default();
        b.insert(
            meta_key::SCHEMA_VERSION,
            &self.meta.schema_version.to_be_bytes(),
        );
        b.insert(meta_key::NODE, self.meta.node.as_bytes());
        b.insert(meta_key::CREATED, &self.meta.created.0.to_be_bytes());
        b.insert(
            meta_key::CLEAN_SHUTDOWN,
            &[u8::from(self.meta.clean_shutdown)],
        );
        self.meta_tree.apply_batch(b).map_err(StoreError::Write)?;
        self.flush()
    }

    /// Decodes every entry of every tree: what `abgp store check` runs.
    pub fn dump(&self) -> Result<Dump, StoreError> {
        let mut dump = Dump {
            adj_in: self.load_adj_in()?,
            ..Default::default()
        };
        for item in self.loc.iter() {
            let (k, v) = item.map_err(|e| self.corrupt(format!("loc: {e}")))?;
            codec::parse_prefix(&k).map_err(|e| self.corrupt(format!("loc key: {e}")))?;
            let r = codec::decode_route(&v).map_err(|e| self.corrupt(format!("loc value: {e}")))?;
            dump.loc.push(r);
        }
        for item in self.adj_out.iter() {
            let (k, v) = item.map_err(|e| self.corrupt(format!("adj_out: {e}")))?;
            let (node, rest) =
                codec::node_of(&k).map_err(|e| self.corrupt(format!("adj_out key: {e}")))?;
            codec::parse_prefix(rest).map_err(|e| self.corrupt(format!("adj_out key: {e}")))?;
            let r =
                codec::decode_route(&v).map_err(|e| self.corrupt(format!("adj_out value: {e}")))?;
            dump.adj_out.entry(node).or_default().push(r);
        }
        Ok(dump)
    }
}

impl RibStore for SledStore {
    fn meta(&self) -> &Meta {
        &self.meta
    }

    fn apply(&mut self, batch: &WriteBatch) -> Result<(), StoreError> {
        let mut adj_in = Batch::default();
        let mut loc = Batch::default();
        let mut adj_out = Batch::default();
        let (mut n_in, mut n_loc, mut n_out) = (0usize, 0usize, 0usize);
        // Encoded bytes of the batch, for the free-space check.
        let mut bytes = 0usize;
        let mut sized = |v: Vec<u8>| {
            bytes += v.len() + 64;
            v
        };
        for (node, asn) in &batch.peers {
            adj_in.insert(codec::peer_key(node), codec::encode_peer(*asn));
            n_in += 1;
        }
        for c in &batch.changes {
            match c {
                RibChange::AdjIn { peer, key, route } => {
                    let k = codec::adj_in_key(peer, key);
                    match route {
                        Some(r) => adj_in.insert(
                            k,
                            sized(codec::encode_route(r).map_err(StoreError::Encode)?),
                        ),
                        None => adj_in.remove(k),
                    }
                    n_in += 1;
                }
                RibChange::Loc { prefix, best } => {
                    let k = codec::loc_key(prefix);
                    match best.as_ref().map(codec::encode_route) {
                        Some(Ok(v)) => loc.insert(k, sized(v)),
                        // The mirror trees are for inspection only: a route
                        // that cannot be encoded is left out, not fatal.
                        Some(Err(e)) => {
                            tracing::warn!(error = %e, "not mirroring a Loc-RIB route");
                            loc.remove(k)
                        }
                        None => loc.remove(k),
                    }
                    n_loc += 1;
                }
                RibChange::AdjOut {
                    peer,
                    prefix,
                    route,
                } => {
                    let k = codec::adj_out_key(peer, prefix);
                    match route.as_ref().map(codec::encode_route) {
                        Some(Ok(v)) => adj_out.insert(k, sized(v)),
                        Some(Err(e)) => {
                            tracing::warn!(error = %e, "not mirroring an Adj-RIB-Out route");
                            adj_out.remove(k)
                        }
                        None => adj_out.remove(k),
                    }
                    n_out += 1;
                }
            }
        }
        for (id, entry) in &batch.agents {
            bytes += id.len() + entry.as_ref().map_or(0, String::len);
        }
        self.check_space(bytes)?;
        if !batch.agents.is_empty() {
            let mut b = Batch::default();
            for (id, entry) in &batch.agents {
                match entry {
                    Some(json) => b.insert(id.as_bytes(), json.as_bytes()),
                    None => b.remove(id.as_bytes()),
                }
            }
            self.agents.apply_batch(b).map_err(StoreError::Write)?;
        }
        // The Adj-RIB-In first: it is what a restart restores.
        if n_in > 0 {
            self.adj_in.apply_batch(adj_in).map_err(StoreError::Write)?;
        }
        if n_loc > 0 {
            self.loc.apply_batch(loc).map_err(StoreError::Write)?;
        }
        if n_out > 0 {
            self.adj_out
                .apply_batch(adj_out)
                .map_err(StoreError::Write)?;
        }
        Ok(())
    }

    fn flush(&mut self) -> Result<(), StoreError> {
        self.db.flush().map(|_| ()).map_err(StoreError::Write)
    }

    fn load_adj_in(&self) -> Result<Vec<StoredPeer>, StoreError> {
        let mut peers: BTreeMap<NodeId, StoredPeer> = BTreeMap::new();
        for item in self.adj_in.iter() {
            let (k, v) = item.map_err(|e| self.corrupt(format!("adj_in: {e}")))?;
            let key = codec::parse_adj_in_key(&k)
                .map_err(|e| self.corrupt(format!("adj_in key: {e}")))?;
            match key {
                AdjInKey::Peer(node) => {
                    let asn = codec::decode_peer(&v).map_err(|e| self.corrupt(e))?;
                    peers
                        .entry(node)
                        .or_insert_with(|| StoredPeer {
                            node,
                            asn: None,
                            routes: Vec::new(),
                        })
                        .asn = Some(asn);
                }
                AdjInKey::Route(node, rk) => {
                    let r = codec::decode_route(&v)
                        .map_err(|e| self.corrupt(format!("adj_in value: {e}")))?;
                    if r.key() != rk {
                        return Err(self.corrupt(format!(
                            "adj_in entry for {} holds a route for {}",
                            rk.prefix, r.prefix
                        )));
                    }
                    peers
                        .entry(node)
                        .or_insert_with(|| StoredPeer {
                            node,
                            asn: None,
                            routes: Vec::new(),
                        })
                        .routes
                        .push(r);
                }
            }
        }
        Ok(peers.into_values().collect())
    }

    fn load_agents(&self) -> Result<Vec<(String, String)>, StoreError> {
        let mut out = Vec::new();
        for item in self.agents.iter() {
            let (k, v) = item.map_err(|e| self.corrupt(format!("agents: {e}")))?;
            let id = String::from_utf8(k.to_vec())
                .map_err(|_| self.corrupt("agents: a key is not text"))?;
            let entry = String::from_utf8(v.to_vec())
                .map_err(|_| self.corrupt(format!("agents: entry {id} is not text")))?;
            out.push((id, entry));
        }
        Ok(out)
    }

    fn clear_derived(&mut self) -> Result<(), StoreError> {
        self.loc.clear().map_err(StoreError::Write)?;
        self.adj_out.clear().map_err(StoreError::Write)?;
        self.flush()
    }

    fn set_clean_shutdown(&mut self, clean: bool) -> Result<(), StoreError> {
        self.meta.clean_shutdown = clean;
        self.meta_tree
            .insert(meta_key::CLEAN_SHUTDOWN, &[u8::from(clean)])
            .map_err(StoreError::Write)?;
        self.flush()
    }

    fn counts(&self) -> StoreCounts {
        let peers = self
            .adj_in
            .iter()
            .keys()
            .filter(|k| k.as_ref().is_ok_and(|k| k.len() == 33))
            .count();
        StoreCounts {
            peers,
            adj_in: self.adj_in.len().saturating_sub(peers),
            loc: self.loc.len(),
            adj_out: self.adj_out.len(),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::core::attrs::PathAttrs;
    use crate::core::ids::{AgentId, Asn};
    use crate::core::prefix::Prefix;
    use crate::core::route::Route;

    fn route(p: &str) -> Route {
        Route::new(
            Prefix::new(p).unwrap(),
            Arc::new(PathAttrs {
                agent: AgentId::new("a"),
                as_path: vec![Asn(65002)],
                ..Default::default()
            }),
        )
    }

    fn adj_in(peer: u64, r: &Route, present: bool) -> RibChange {
        RibChange::AdjIn {
            peer: NodeId::from_u64(peer),
            key: r.key(),
            route: present.then(|| r.clone()),
        }
    }

    #[test]
    fn batches_survive_reopen_and_withdrawals_remove() {
        let dir = tempfile::tempdir().unwrap();
        let me = NodeId::from_u64(1);
        {
            let mut s = SledStore::open(dir.path(), me, Millis(5), 8).unwrap();
            let (a, b) = (route("a/x"), route("b/y"));
            s.apply(&WriteBatch {
                agents: Vec::new(),
                peers: vec![(NodeId::from_u64(2), Asn(65002))],
                changes: vec![
                    adj_in(2, &a, true),
                    adj_in(2, &b, true),
                    RibChange::Loc {
                        prefix: a.prefix.clone(),
                        best: Some(a.clone()),
                    },
                ],
            })
            .unwrap();
            s.apply(&WriteBatch {
                agents: Vec::new(),
                peers: vec![],
                changes: vec![adj_in(2, &b, false)],
            })
            .unwrap();
            s.flush().unwrap();
        }
        let s = SledStore::open(dir.path(), me, Millis(9), 8).unwrap();
        assert_eq!(s.meta().created, Millis(5));
        let peers = s.load_adj_in().unwrap();
        assert_eq!(peers.len(), 1);
        assert_eq!(peers[0].asn, Some(Asn(65002)));
        assert_eq!(peers[0].routes, vec![route("a/x")]);
        assert_eq!(
            s.counts(),
            StoreCounts {
                peers: 1,
                adj_in: 1,
                loc: 1,
                adj_out: 0
            }
        );
        assert_eq!(s.dump().unwrap().loc.len(), 1);
    }

    #[test]
    fn another_nodes_store_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        drop(SledStore::open(dir.path(), NodeId::from_u64(1), Millis(0), 8).unwrap());
        let e = SledStore::open(dir.path(), NodeId::from_u64(2), Millis(0), 8).unwrap_err();
        assert!(matches!(e, StoreError::WrongNode { .. }), "{e}");
        assert!(e.to_string().contains("abgp store reset"), "{e}");
    }

    #[test]
    fn another_schema_version_is_refused_with_the_recovery_command() {
        let dir = tempfile::tempdir().unwrap();
        {
            let s = SledStore::open(dir.path(), NodeId::from_u64(1), Millis(0), 8).unwrap();
            s.meta_tree
                .insert(meta_key::SCHEMA_VERSION, &99u32.to_be_bytes())
                .unwrap();
            s.db.flush().unwrap();
        }
        let e = SledStore::open(dir.path(), NodeId::from_u64(1), Millis(0), 8).unwrap_err();
        assert!(
            matches!(e, StoreError::Incompatible { found: 99, .. }),
            "{e}"
        );
        assert!(e.to_string().contains("abgp store reset"), "{e}");
    }

    #[test]
    fn undecodable_routes_are_reported_as_corruption() {
        let dir = tempfile::tempdir().unwrap();
        let me = NodeId::from_u64(1);
        {
            let s = SledStore::open(dir.path(), me, Millis(0), 8).unwrap();
            let k = codec::adj_in_key(&NodeId::from_u64(2), &route("a/x").key());
            s.adj_in.insert(k, &b"not cbor"[..]).unwrap();
            s.db.flush().unwrap();
        }
        let s = SledStore::open(dir.path(), me, Millis(0), 8).unwrap();
        let e = s.load_adj_in().unwrap_err();
        assert!(matches!(e, StoreError::Corrupt { .. }), "{e}");
        assert!(e.to_string().contains("abgp store check"), "{e}");
    }

    #[test]
    fn run_time_agents_survive_reopen_and_removal_sticks() {
        let dir = tempfile::tempdir().unwrap();
        let me = NodeId::from_u64(1);
        {
            let mut s = SledStore::open(dir.path(), me, Millis(0), 8).unwrap();
            s.apply(&WriteBatch {
                agents: vec![
                    ("echo".into(), Some(r#"{"id":"echo"}"#.into())),
                    ("time".into(), Some(r#"{"id":"time"}"#.into())),
                ],
                ..Default::default()
            })
            .unwrap();
            s.apply(&WriteBatch {
                agents: vec![("time".into(), None)],
                ..Default::default()
            })
            .unwrap();
            s.flush().unwrap();
        }
        let s = SledStore::open(dir.path(), me, Millis(1), 8).unwrap();
        assert_eq!(
            s.load_agents().unwrap(),
            vec![("echo".to_string(), r#"{"id":"echo"}"#.to_string())]
        );
    }

    #[test]
    fn clean_shutdown_flag_round_trips_and_derived_trees_clear() {
        let dir = tempfile::tempdir().unwrap();
        let me = NodeId::from_u64(1);
        {
            let mut s = SledStore::open(dir.path(), me, Millis(0), 8).unwrap();
            s.set_clean_shutdown(false).unwrap();
            let a = route("a/x");
            s.apply(&WriteBatch {
                agents: Vec::new(),
                peers: vec![],
                changes: vec![RibChange::Loc {
                    prefix: a.prefix.clone(),
                    best: Some(a),
                }],
            })
            .unwrap();
            s.flush().unwrap();
        }
        let mut s = SledStore::open(dir.path(), me, Millis(0), 8).unwrap();
        assert!(!s.meta().clean_shutdown);
        s.clear_derived().unwrap();
        assert_eq!(s.counts().loc, 0);
    }
}
