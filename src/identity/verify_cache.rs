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

use super::key::{self, SigError};
use super::route_sign::{Role, RouteVerifyError, SigCheck, VerifyContext, plan};
use crate::core::NodeId;
use crate::core::route::Route;

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
    /// order. The same as [`Self::plan`], [`Pending::verify`] (no limit on
    /// failures) and [`Self::finish`] in a row.
    pub fn verify_routes(
        &mut self,
        routes: &[Route],
        ctx: &VerifyContext<'_>,
    ) -> Vec<Result<(), RouteVerifyError>> {
        let pending = self.plan(routes, ctx);
        let verdicts = pending.verify(usize::MAX);
        self.finish(routes, pending, verdicts)
    }

    /// The first step of verifying an UPDATE: plans every route's checks,
    /// answers what it can from the cache, and keeps the rest (with their
    /// decompressed keys) for [`Pending::verify`], which needs no access to
    /// the cache and may run on another thread.
    pub fn plan(&mut self, routes: &[Route], ctx: &VerifyContext<'_>) -> Pending {
        // Per route: its plan's checks that still need the curve, as
        // indexes into `checks`; or the error found while planning.
        let mut outstanding: Vec<Result<Vec<(usize, Role)>, RouteVerifyError>> =
            Vec::with_capacity(routes.len());
        let mut checks: Vec<SigCheck> = Vec::new();
        let mut keys: Vec<Key> = Vec::new();
        let mut index: HashMap<Key, usize, BuildHasherDefault<FirstBytes>> = HashMap::default();
        for route in routes {
            let planned = match plan(route, ctx) {
                Ok(c) => c,
                Err(e) => {
                    outstanding.push(Err(e));
                    continue;
                }
            };
            let mut mine = Vec::new();
            for c in planned {
                let k = cache_key(&c);
                if self.lookup(&k) {
                    self.stats.hits += 1;
                    continue;
                }
                let role = c.role;
                let i = *index.entry(k).or_insert_with(|| {
                    checks.push(c);
                    keys.push(k);
                    checks.len() - 1
                });
                mine.push((i, role));
            }
            outstanding.push(Ok(mine));
        }
        self.stats.misses += checks.len() as u64;
        let vks = checks
            .iter()
            .map(|c| self.verifying_key(&c.signer))
            .collect();
        Pending {
            outstanding,
            checks,
            keys,
            vks,
        }
    }

    /// The last step: caches the checks that passed, and gives each route
    /// its result (in `routes` order, the routes given to [`Self::plan`]).
    pub fn finish(
        &mut self,
        routes: &[Route],
        pending: Pending,
        v: Verdicts,
    ) -> Vec<Result<(), RouteVerifyError>> {
        self.stats.batches += v.batches;
        self.stats.batch_failures += v.batch_failures;
        for (k, verdict) in pending.keys.iter().zip(&v.checks) {
            if *verdict == Verdict::Ok {
                self.insert(*k);
            }
        }
        let results: Vec<Result<(), RouteVerifyError>> = routes
            .iter()
            .zip(pending.outstanding)
            .map(|(route, o)| {
                let mine = o?;
                for (i, role) in mine {
                    match v.checks.get(i).copied().unwrap_or(Verdict::Skipped) {
                        Verdict::Ok => {}
                        Verdict::Failed(e) => return Err(role.failure(route, e)),
                        Verdict::Skipped => return Err(RouteVerifyError::NotChecked),
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
}

/// What one signature check came to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Ok,
    Failed(SigError),
    /// Not checked: the limit on failures was reached first.
    Skipped,
}

/// The curve's answers for a [`Pending`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verdicts {
    checks: Vec<Verdict>,
    batches: u64,
    batch_failures: u64,
    /// Signatures that failed.
    pub failed: usize,
    /// Whether checking stopped at the limit on failures.
    pub aborted: bool,
}

/// The checks of an UPDATE that the cache could not answer (see
/// [`VerifyCache::plan`]). Plain data: `Send`, no borrow of the cache.
#[derive(Debug)]
pub struct Pending {
    outstanding: Vec<Result<Vec<(usize, Role)>, RouteVerifyError>>,
    checks: Vec<SigCheck>,
    keys: Vec<Key>,
    vks: Vec<Result<VerifyingKey, SigError>>,
}

/// Checks are verified in slices of this many, so a limit on failures
/// stops the work early.
const SLICE: usize = 256;

impl Pending {
    /// Signature checks that need the curve.
    pub fn work(&self) -> usize {
        self.checks.len()
    }

    /// Verifies the checks, batching where it pays and bisecting failed
    /// batches. Stops once `max_failures` signatures have failed: the rest
    /// are [`Verdict::Skipped`] (their routes fail as not checked), so an
    /// UPDATE full of bad signatures costs about `max_failures` bisections,
    /// not one per signature.
    pub fn verify(&self, max_failures: usize) -> Verdicts {
        let mut v = Verdicts {
            checks: vec![Verdict::Skipped; self.checks.len()],
            batches: 0,
            batch_failures: 0,
            failed: 0,
            aborted: false,
        };
        let mut good: Vec<(usize, VerifyingKey)> = Vec::with_capacity(SLICE);
        let mut i = 0;
        while i < self.checks.len() {
            if v.failed >= max_failures {
                v.aborted = true;
                break;
            }
            good.clear();
            let end = (i + SLICE).min(self.checks.len());
            for j in i..end {
                match self.vks[j] {
                    Ok(vk) => good.push((j, vk)),
                    // Keys that cannot verify anything fail up front and
                    // stay out of the batch, so one bad key does not sink it.
                    Err(e) => {
                        v.checks[j] = Verdict::Failed(e);
                        v.failed += 1;
                    }
                }
            }
            self.bisect(&good, &mut v, max_failures);
            i = end;
        }
        v
    }

    fn bisect(&self, items: &[(usize, VerifyingKey)], v: &mut Verdicts, max_failures: usize) {
        if items.is_empty() || v.failed >= max_failures {
            return;
        }
        if items.len() < MIN_BATCH {
            for (i, vk) in items {
                if v.failed >= max_failures {
                    return;
                }
                let c = &self.checks[*i];
                v.checks[*i] = match vk
                    .verify_strict(&c.msg, &ed25519_dalek::Signature::from_bytes(&c.sig.0))
                {
                    Ok(()) => Verdict::Ok,
                    Err(_) => {
                        v.failed += 1;
                        Verdict::Failed(SigError::Invalid)
                    }
                };
            }
            return;
        }
        let msgs: Vec<&[u8]> = items
            .iter()
            .map(|(i, _)| self.checks[*i].msg.as_slice())
            .collect();
        let sigs: Vec<ed25519_dalek::Signature> = items
            .iter()
            .map(|(i, _)| ed25519_dalek::Signature::from_bytes(&self.checks[*i].sig.0))
            .collect();
        let vks: Vec<VerifyingKey> = items.iter().map(|(_, vk)| *vk).collect();
        v.batches += 1;
        if ed25519_dalek::verify_batch(&msgs, &sigs, &vks).is_ok() {
            for (i, _) in items {
                v.checks[*i] = Verdict::Ok;
            }
            return;
        }
        v.batch_failures += 1;
        let (a, b) = items.split_at(items.len() / 2);
        self.bisect(a, v, max_failures);
        self.bisect(b, v, max_failures);
    }
}
