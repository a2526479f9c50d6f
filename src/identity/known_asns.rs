//! The keys first seen for derived ASNs (trust on first use, like SSH's
//! `known_hosts`), and this node's own.
//!
//! A derived ASN is a hash of a key into about 2^26.5 values, so a second
//! key that derives the same ASN exists: by accident in a big federation
//! (expected after about 12,000 keys) or ground on purpose (about 10^8 key
//! generations for a chosen ASN). [`KnownAsns`] makes the first key seen
//! for a derived ASN the only one: a peer session (an OPEN that passed every
//! other check) records its key; any other key deriving that ASN is refused
//! afterwards, in OPENs, in route path signatures and as a caller. This
//! node's own derived ASN is fixed to its own key, so a stranger whose key
//! derives our ASN is never taken for an internal peer, never matches
//! `own` in access rules and cannot sign routes as us.
//!
//! An operator accepts a re-key with `abgp trust rekey` (or by editing the
//! file while the node is stopped). Issued and pinned bindings are not
//! recorded here: the authority or the configuration already says which
//! keys hold the ASN.
//!
//! The file (`<data dir>/known-asns`, text) is one `ASN NODE-ID FIRST-SEEN-MS`
//! line per ASN under a version line; it is replaced atomically (written
//! next to it, synced, renamed, directory synced) before a new key counts
//! as known, so a restart never forgets a pin that was acted on. At most
//! `max` ASNs are recorded (10,000 by default); past that new keys are
//! still checked against what is known but not recorded, and counted.

use std::collections::BTreeMap;
use std::fs::{self, File};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{PoisonError, RwLock};

use crate::core::{Asn, Millis, NodeId};

/// First line of the file.
const HEADER: &str = "# agent-bgp known derived ASNs v1: ASN NODE-ID FIRST-SEEN-MS";

/// Longest file read at start (a line is under 100 bytes).
const MAX_FILE_BYTES: u64 = 16 << 20;

/// The default number of ASNs recorded.
pub const DEFAULT_MAX_KNOWN_ASNS: usize = 10_000;

/// A key recorded for a derived ASN.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KnownKey {
    pub node: NodeId,
    pub first_seen: Millis,
}

/// What [`KnownAsns::observe`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Observed {
    /// The key is now recorded (and durable).
    New,
    /// The key was already the one recorded (or is ours).
    Known,
    /// The registry is full: the key was not recorded.
    Full,
}

/// Why the registry could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum KnownAsnsError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}:{line}: {reason}")]
    Malformed {
        path: PathBuf,
        line: usize,
        reason: String,
    },
    #[error("{path} is longer than {max} bytes")]
    TooLong { path: PathBuf, max: u64 },
    #[error("{asn} is this node's own ASN; its key cannot be changed")]
    Own { asn: Asn },
}

#[derive(Debug, Default)]
struct Inner {
    own: Option<(Asn, NodeId)>,
    keys: BTreeMap<Asn, KnownKey>,
    not_recorded: u64,
}

/// The registry of first-seen keys, shared by every copy of the trust
/// store (OPENs, route verification, call verification).
#[derive(Debug)]
pub struct KnownAsns {
    inner: RwLock<Inner>,
    path: Option<PathBuf>,
    max: usize,
}

impl KnownAsns {
    /// A registry that is not persisted (tests, tools).
    pub fn in_memory(max: usize) -> Self {
        KnownAsns {
            inner: RwLock::new(Inner::default()),
            path: None,
            max,
        }
    }

    /// Reads the registry at `path` (none there: empty); changes are
    /// written back to it.
    pub fn load(path: &Path, max: usize) -> Result<Self, KnownAsnsError> {
        let io = |source| KnownAsnsError::Io {
            path: path.to_path_buf(),
            source,
        };
        let mut keys = BTreeMap::new();
        match fs::metadata(path) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(io(e)),
            Ok(m) if m.len() > MAX_FILE_BYTES => {
                return Err(KnownAsnsError::TooLong {
                    path: path.to_path_buf(),
                    max: MAX_FILE_BYTES,
                });
            }
            Ok(_) => {
                let text = fs::read_to_string(path).map_err(io)?;
                keys = parse(path, &text)?;
            }
        }
        Ok(KnownAsns {
            inner: RwLock::new(Inner {
                keys,
                ..Inner::default()
            }),
            path: Some(path.to_path_buf()),
            max,
        })
    }

    /// This node's own derived ASN: only `node` may hold it.
    pub fn set_own(&self, asn: Asn, node: NodeId) {
        self.write().own = Some((asn, node));
    }

    /// The key another one would conflict with: `Some(known)` when `asn`
    /// is recorded (or ours) for a key other than `node`.
    pub fn conflict(&self, asn: Asn, node: &NodeId) -> Option<KnownKey> {
        let g = self.read();
        if let Some((own, ours)) = g.own
            && own == asn
        {
            return (ours != *node).then_some(KnownKey {
                node: ours,
                first_seen: Millis(0),
            });
        }
        g.keys.get(&asn).filter(|k| k.node != *node).copied()
    }

    /// Is `asn` this node's own?
    pub fn is_own(&self, asn: Asn) -> bool {
        self.read().own.is_some_and(|(a, _)| a == asn)
    }

    /// Records `node` as the key of `asn` if none is. The caller has
    /// checked [`Self::conflict`]; a conflicting key is never recorded.
    /// A new key is durable when this returns `Ok(Observed::New)`; on an
    /// error it is recorded for this run only.
    pub fn observe(&self, asn: Asn, node: NodeId, now: Millis) -> Result<Observed, KnownAsnsError> {
        let mut g = self.write();
        if g.own.is_some_and(|(a, _)| a == asn) || g.keys.contains_key(&asn) {
            return Ok(Observed::Known);
        }
        if g.keys.len() >= self.max {
            g.not_recorded += 1;
            return Ok(Observed::Full);
        }
        g.keys.insert(
            asn,
            KnownKey {
                node,
                first_seen: now,
            },
        );
        // Kept in memory even when the file cannot be written (this run is
        // protected either way); the error says it is not durable yet.
        self.save(&g.keys)?;
        Ok(Observed::New)
    }

    /// Accepts a re-key of `asn`: records `node` in place of the known key,
    /// or (`None`) forgets it so the next key seen is recorded. Returns the
    /// key that was recorded before.
    pub fn rekey(
        &self,
        asn: Asn,
        node: Option<NodeId>,
        now: Millis,
    ) -> Result<Option<KnownKey>, KnownAsnsError> {
        let mut g = self.write();
        if g.own.is_some_and(|(a, _)| a == asn) {
            return Err(KnownAsnsError::Own { asn });
        }
        let before = g.keys.get(&asn).copied();
        let mut next = g.keys.clone();
        match node {
            Some(node) => {
                next.insert(
                    asn,
                    KnownKey {
                        node,
                        first_seen: now,
                    },
                );
            }
            None => {
                next.remove(&asn);
            }
        }
        self.save(&next)?;
        g.keys = next;
        Ok(before)
    }

    /// Every recorded ASN with its key, lowest ASN first.
    pub fn list(&self) -> Vec<(Asn, KnownKey)> {
        self.read().keys.iter().map(|(a, k)| (*a, *k)).collect()
    }

    /// Keys not recorded because the registry was full.
    pub fn not_recorded(&self) -> u64 {
        self.read().not_recorded
    }

    pub fn max(&self) -> usize {
        self.max
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, Inner> {
        self.inner.read().unwrap_or_else(PoisonError::into_inner)
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, Inner> {
        self.inner.write().unwrap_or_else(PoisonError::into_inner)
    }

    fn save(&self, keys: &BTreeMap<Asn, KnownKey>) -> Result<(), KnownAsnsError> {
        let Some(path) = &self.path else {
            return Ok(());
        };
        let io = |source| KnownAsnsError::Io {
            path: path.clone(),
            source,
        };
        let mut text = String::with_capacity(keys.len() * 96 + HEADER.len() + 1);
        text.push_str(HEADER);
        text.push('\n');
        for (asn, k) in keys {
            text.push_str(&format!("{} {} {}\n", asn.0, k.node, k.first_seen.0));
        }
        let mut tmp = path.clone().into_os_string();
        tmp.push(".tmp");
        let tmp = PathBuf::from(tmp);
        let mut f = File::create(&tmp).map_err(io)?;
        f.write_all(text.as_bytes()).map_err(io)?;
        f.sync_all().map_err(io)?;
        fs::rename(&tmp, path).map_err(io)?;
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            File::open(dir).and_then(|d| d.sync_all()).map_err(io)?;
        }
        Ok(())
    }
}

fn parse(path: &Path, text: &str) -> Result<BTreeMap<Asn, KnownKey>, KnownAsnsError> {
    let bad = |line: usize, reason: String| KnownAsnsError::Malformed {
        path: path.to_path_buf(),
        line,
        reason,
    };
    let mut keys = BTreeMap::new();
    for (i, line) in text.lines().enumerate() {
        let n = i + 1;
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let mut parts = line.split_whitespace();
        let (Some(asn), Some(node), Some(seen), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(bad(n, "want `ASN NODE-ID FIRST-SEEN-MS`".into()));
        };
        let asn: u32 = asn
            .parse()
            .map_err(|_| bad(n, format!("{asn:?} is not an ASN")))?;
        let node: NodeId = node
            .parse()
            .map_err(|_| bad(n, format!("{node:?} is not a node id (64 hex digits)")))?;
        let seen: u64 = seen
            .parse()
            .map_err(|_| bad(n, format!("{seen:?} is not a time in milliseconds")))?;
        let k = KnownKey {
            node,
            first_seen: Millis(seen),
        };
        if keys.insert(Asn(asn), k).is_some() {
            return Err(bad(n, format!("AS{asn} is listed twice")));
        }
    }
    Ok(keys)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node(b: u8) -> NodeId {
        NodeId([b; 32])
    }

    #[test]
    fn the_first_key_seen_holds_the_asn_and_survives_a_restart() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("known-asns");
        let k = KnownAsns::load(&path, 10).unwrap();
        assert_eq!(k.conflict(Asn(4_200_000_001), &node(1)), None);
        assert_eq!(
            k.observe(Asn(4_200_000_001), node(1), Millis(5)).unwrap(),
            Observed::New
        );
        assert_eq!(
            k.observe(Asn(4_200_000_001), node(1), Millis(6)).unwrap(),
            Observed::Known
        );
        let again = KnownAsns::load(&path, 10).unwrap();
        let c = again.conflict(Asn(4_200_000_001), &node(2)).unwrap();
        assert_eq!(c.node, node(1));
        assert_eq!(c.first_seen, Millis(5));
        assert_eq!(again.conflict(Asn(4_200_000_001), &node(1)), None);
    }

    #[test]
    fn our_own_asn_belongs_to_our_key_only_and_cannot_be_rekeyed() {
        let k = KnownAsns::in_memory(10);
        k.set_own(Asn(4_200_000_007), node(7));
        assert!(k.conflict(Asn(4_200_000_007), &node(8)).is_some());
        assert_eq!(k.conflict(Asn(4_200_000_007), &node(7)), None);
        assert_eq!(
            k.observe(Asn(4_200_000_007), node(8), Millis(1)).unwrap(),
            Observed::Known
        );
        assert!(matches!(
            k.rekey(Asn(4_200_000_007), Some(node(8)), Millis(2)),
            Err(KnownAsnsError::Own { .. })
        ));
    }

    #[test]
    fn a_rekey_replaces_or_forgets_the_key_durably() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("known-asns");
        let k = KnownAsns::load(&path, 10).unwrap();
        k.observe(Asn(10), node(1), Millis(1)).unwrap();
        let before = k.rekey(Asn(10), Some(node(2)), Millis(2)).unwrap();
        assert_eq!(before.map(|b| b.node), Some(node(1)));
        let reread = KnownAsns::load(&path, 10).unwrap();
        assert!(reread.conflict(Asn(10), &node(1)).is_some());
        reread.rekey(Asn(10), None, Millis(3)).unwrap();
        let reread = KnownAsns::load(&path, 10).unwrap();
        assert!(reread.list().is_empty());
    }

    #[test]
    fn a_full_registry_records_no_more_and_counts_them() {
        let k = KnownAsns::in_memory(2);
        for (i, a) in [1u32, 2, 3, 4].into_iter().enumerate() {
            let want = if i < 2 { Observed::New } else { Observed::Full };
            assert_eq!(k.observe(Asn(a), node(a as u8), Millis(0)).unwrap(), want);
        }
        assert_eq!(k.list().len(), 2);
        assert_eq!(k.not_recorded(), 2);
        assert_eq!(k.conflict(Asn(3), &node(9)), None);
    }

    #[test]
    fn a_malformed_file_is_refused_with_its_line() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("known-asns");
        for (text, want) in [
            ("1 abc 0\n", "not a node id"),
            ("x\n", "want `ASN"),
            (
                &format!("{HEADER}\n\n12 {} 0 extra\n", node(1)),
                "want `ASN",
            ),
            (
                &format!("12 {} 0\n12 {} 1\n", node(1), node(2)),
                "listed twice",
            ),
            (&format!("99999999999 {} 0\n", node(1)), "not an ASN"),
        ] {
            fs::write(&path, text).unwrap();
            let e = KnownAsns::load(&path, 10).unwrap_err().to_string();
            assert!(e.contains(want) && e.contains("known-asns:"), "{e}");
        }
        let f = File::create(&path).unwrap();
        f.set_len(MAX_FILE_BYTES + 1).unwrap();
        assert!(matches!(
            KnownAsns::load(&path, 10),
            Err(KnownAsnsError::TooLong { .. })
        ));
    }
}
