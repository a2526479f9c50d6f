//! Fast route verification: a bounded cache of verified signatures and
//! batch verification with ed25519-dalek's `verify_batch`.
//!
//! The cache remembers signature checks, not routes: an entry is the
//! SHA-256 of (signer key, signature, signed bytes) for a check that
//! passed. A route verifies from the cache when every check of its proof
//! (certificates, origin, each path hop) is there, so a (route, path) pair
//! seen before costs hashing only, and routes that share an origin or a
//! path prefix (the same route from two neighbours, a re-advertisement with
//! a new MED) share entries. Trust and time checks are never cached: they
//! are cheap and their answers change (expiry, reconfigured anchors).
//!
//! Eviction is CLOCK (second chance): O(1), close to LRU, no list
//! shuffling on hits. The keys are SHA-256 outputs an attacker cannot
//! steer, so the index hashes their first 8 bytes.
//!
//! Batches: [`VerifyCache::verify_routes`] checks the uncached signatures of
//! a whole UPDATE in one `verify_batch` call and bisects a failing batch to
//! find the bad signatures. Batch verification accepts exactly the
//! signatures strict single verification accepts, except ones crafted by a
//! key's own holder with small-order components (ed25519's known
//! batch/single gap); weak keys are refused before batching either way.

use std::collections::{BTreeMap, HashMap};
use std::hash::{BuildHasherDefault, Hasher};

use ed25519_dalek::VerifyingKey;
use sha2::{Digest, Sha256};

use super::sign::{Role, RouteVerifyError, SigCheck, VerifyContext, plan};
use crate::core::NodeId;
use crate::core::route::Route;
use crate::identity::key::{self, SigError};

/// Default number of cached signature checks (about 100 bytes each).
pub const DEFAULT_CAPACITY: usize = 1 << 20;
/// Batches smaller than this are verified one by one (no gain below it).
const MIN_BATCH: usize = 4;
/// Decompressed public keys kept; certificates repeat, so this is small.
const KEY_CACHE: usize = 4096;

type Key = [u8; 32];

/// Hashes a SHA-256 output by its first 8 bytes.
#[derive(Default)]
struct FirstBytes(u64);

impl Hasher for FirstBytes {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        // `[u8; 32]` hashes as its bytes; fold them in so other writes
        // (none today) still hash sensibly.
        for chunk in bytes.chunks(8) {
            let mut b = [0u8; 8];
            b[..chunk.len()].copy_from_slice(chunk);
            self.0 = self.0.rotate_left(5) ^ u64::from_le_bytes(b);
        }
    }
}

type Index = HashMap<Key, usize, BuildHasherDefault<FirstBytes>>;

/// Counters, for metrics and the bench.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct VerifyStats {
    pub routes_ok: u64,
    pub routes_dropped: u64,
    /// Signature checks answered by the cache.
    pub hits: u64,
    /// Signature checks that needed the curve.
    pub misses: u64,
    /// `verify_batch` calls, and how many failed and were bisected.
    pub batches: u64,
    pub batch_failures: u64,
    /// Dropped routes by [`RouteVerifyError::reason`].
    pub dropped_by_reason: BTreeMap<&'static str, u64>,
}

struct Slot {
    key: Key,
    referenced: bool,
}

/// Verified-signature cache plus the batch verifier. One per engine; not
/// shared across threads (wrap it in a mutex if you must).
pub struct VerifyCache {
    index: Index,
    slots: Vec<Slot>,
    hand: usize,
    capacity: usize,
    keys: HashMap<NodeId, Result<VerifyingKey, SigError>>,
    stats: VerifyStats,
}

impl std::fmt::Debug for VerifyCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VerifyCache")
            .field("len", &self.slots.len())
            .field("capacity", &self.capacity)
            .field("stats", &self.stats)
            .finish()
    }
}

impl Default for VerifyCache {
    fn default() -> Self {
        Self::new(DEFAULT_CAPACITY)
    }
}

fn cache_key(c: &SigCheck) -> Key {
    let mut h = Sha256::new();
    h.update(c.signer.as_bytes());
    h.update(c.sig.0);
    h.update(c.msg.as_slice());
    h.finalize().into()
}

impl VerifyCache {
    /// A cache holding up to `capacity` verified signature checks.
    pub fn new(capacity: usize) -> Self {
        let capacity = capacity.max(1);
        VerifyCache {
            index: Index::default(),
            slots: Vec::new(),
            hand: 0,
            capacity,
            keys: HashMap::new(),
            stats: VerifyStats::default(),
        }
    }

    pub fn len(&self) -> usize {
        self.slots.len()
    }

    pub fn is_empty(&self) -> bool {
        self.slots.is_empty()
    }

    pub fn stats(&self) -> &VerifyStats {
        &self.stats
    }

    pub fn clear(&mut self) {
        self.index.clear();
        self.slots.clear();
        self.hand = 0;
    }

    fn lookup(&mut self, k: &Key) -> bool {
        match self.index.get(k) {
            Some(&i) => {
                self.slots[i].referenced = true;
                true
            }
            None => false,
        }
    }

    fn insert(&mut self, k: Key) {
        if self.index.contains_key(&k) {
            return;
        }
        if self.slots.len() < self.capacity {
            self.index.insert(k, self.slots.len());
            self.slots.push(Slot {
                key: k,
                referenced: false,
            });
            return;
        }
        // CLOCK: clear reference bits until an unreferenced slot comes up.
        loop {
            let slot = &mut self.slots[self.hand];
            if slot.referenced {
                slot.referenced = false;
                self.hand = (self.hand + 1) % self.capacity;
                continue;
            }
            self.index.remove(&slot.key);
            slot.key = k;
            self.index.insert(k, self.hand);
            self.hand = (self.hand + 1) % self.capacity;
            return;
        }
    }

    fn verifying_key(&mut self, node: &NodeId) -> Result<VerifyingKey, SigError> {
        if let Some(k) = self.keys.get(node) {
            return *k;
        }
        if self.keys.len() >= KEY_CACHE {
            self.keys.clear();
        }
        let k = key::verifying_key(node);
        self.keys.insert(*node, k);
        k
    }

    fn verify_one(&mut self, c: &SigCheck) -> Result<(), SigError> {
        let vk = self.verifying_key(&c.signer)?;
        vk.verify_strict(&c.msg, &ed25519_dalek::Signature::from_bytes(&c.sig.0))
            .map_err(|_| SigError::Invalid)
    }

    fn record(&mut self, r: &Result<(), RouteVerifyError>) {
        match r {
            Ok(()) => self.stats.routes_ok += 1,
            Err(e) => {
                self.stats.routes_dropped += 1;
                *self.stats.dropped_by_reason.entry(e.reason()).or_insert(0) += 1;
            }
        }
    }

    /// Verifies one route, answering from the cache where it can.
    pub fn verify_route(
        &mut self,
        route: &Route,
        ctx: &VerifyContext<'_>,
    ) -> Result<(), RouteVerifyError> {
        let r = self.verify_route_inner(route, ctx);
        self.record(&r);
        r
    }

    fn verify_route_inner(
        &mut self,
        route: &Route,
        ctx: &VerifyContext<'_>,
    ) -> Result<(), RouteVerifyError> {
        for c in plan(route, ctx)? {
            let k = cache_key(&c);
            if self.lookup(&k) {
                self.stats.hits += 1;
                continue;
            }
            self.stats.misses += 1;
            self.verify_one(&c).map_err(|e| c.failure(route, e))?;
            self.insert(k);
        }
        Ok(())
    }

    /// Verifies many routes (an UPDATE's worth): cached checks are skipped,
    /// the rest go through one batch verification. Results are in `routes`
    /// order.
    pub fn verify_routes(
        &mut self,
        routes: &[Route],
        ctx: &VerifyContext<'_>,
    ) -> Vec<Result<(), RouteVerifyError>> {
        // Per route: its plan's checks that still need the curve, as
        // indexes into `pending`; or the error found while planning.
        let mut outstanding: Vec<Result<Vec<(usize, Role)>, RouteVerifyError>> =
            Vec::with_capacity(routes.len());
        let mut pending: Vec<SigCheck> = Vec::new();
        let mut pending_keys: Vec<Key> = Vec::new();
        let mut pending_index: HashMap<Key, usize, BuildHasherDefault<FirstBytes>> =
            HashMap::default();
        for route in routes {
            let checks = match plan(route, ctx) {
                Ok(c) => c,
                Err(e) => {
                    outstanding.push(Err(e));
                    continue;
                }
            };
            let mut mine = Vec::new();
            for c in checks {
                let k = cache_key(&c);
                if self.lookup(&k) {
                    self.stats.hits += 1;
                    continue;
                }
                let role = c.role;
                let i = *pending_index.entry(k).or_insert_with(|| {
                    pending.push(c);
                    pending_keys.push(k);
                    pending.len() - 1
                });
                mine.push((i, role));
            }
            outstanding.push(Ok(mine));
        }
        self.stats.misses += pending.len() as u64;
        let verdicts = self.verify_many(&pending);
        for (k, v) in pending_keys.iter().zip(&verdicts) {
            if v.is_ok() {
                self.insert(*k);
            }
        }
        let results: Vec<Result<(), RouteVerifyError>> = routes
            .iter()
            .zip(outstanding)
            .map(|(route, o)| {
                let mine = o?;
                for (i, role) in mine {
                    if let Err(e) = verdicts[i] {
                        return Err(role.failure(route, e));
                    }
                }
                Ok(())
            })
            .collect();
        for r in &results {
            self.record(r);
        }
        results
    }

    /// Verifies `checks`, batching where it pays, bisecting failed batches.
    fn verify_many(&mut self, checks: &[SigCheck]) -> Vec<Result<(), SigError>> {
        let mut out = vec![Ok(()); checks.len()];
        // Keys that cannot verify anything fail up front and stay out of
        // the batch, so one bad key does not sink it.
        let mut good: Vec<(usize, VerifyingKey)> = Vec::with_capacity(checks.len());
        for (i, c) in checks.iter().enumerate() {
            match self.verifying_key(&c.signer) {
                Ok(vk) => good.push((i, vk)),
                Err(e) => out[i] = Err(e),
            }
        }
        self.bisect(checks, &good, &mut out);
        out
    }

    fn bisect(
        &mut self,
        checks: &[SigCheck],
        items: &[(usize, VerifyingKey)],
        out: &mut [Result<(), SigError>],
    ) {
        if items.is_empty() {
            return;
        }
        if items.len() < MIN_BATCH {
            for (i, vk) in items {
                let c = &checks[*i];
                out[*i] = vk
                    .verify_strict(&c.msg, &ed25519_dalek::Signature::from_bytes(&c.sig.0))
                    .map_err(|_| SigError::Invalid);
            }
            return;
        }
        let msgs: Vec<&[u8]> = items
            .iter()
            .map(|(i, _)| checks[*i].msg.as_slice())
            .collect();
        let sigs: Vec<ed25519_dalek::Signature> = items
            .iter()
            .map(|(i, _)| ed25519_dalek::Signature::from_bytes(&checks[*i].sig.0))
            .collect();
        let vks: Vec<VerifyingKey> = items.iter().map(|(_, vk)| *vk).collect();
        self.stats.batches += 1;
        if ed25519_dalek::verify_batch(&msgs, &sigs, &vks).is_ok() {
            return;
        }
        self.stats.batch_failures += 1;
        let (a, b) = items.split_at(items.len() / 2);
        self.bisect(checks, a, out);
        self.bisect(checks, b, out);
    }
}
