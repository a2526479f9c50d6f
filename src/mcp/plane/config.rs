//! Plane settings, built with documented defaults and `with_*`.

use std::time::Duration;

use crate::core::community::Community;
use crate::core::ids::{Asn, NodeId};

/// Plane settings. Defaults: 60 s call deadline, hop limit 16, 4096 cached
/// descriptors in at most 16 MiB (each at most
/// [`MAX_DESCRIPTOR_BYTES`](super::MAX_DESCRIPTOR_BYTES)), 16 descriptor
/// fetches at a time, failed fetches retried after 30 s.
#[derive(Debug, Clone)]
pub struct PlaneConfig {
    pub(super) node: NodeId,
    pub(super) asn: Asn,
    pub(super) call_timeout: Duration,
    pub(super) hop_limit: u8,
    pub(super) communities: Vec<Community>,
    pub(super) descriptor_cache: usize,
    pub(super) descriptor_cache_bytes: usize,
    pub(super) describe_parallel: usize,
    pub(super) describe_retry: Duration,
    pub(super) fetch_descriptors: bool,
    /// Health as MED; off unless set ([`PlaneConfig::with_health`]).
    pub(super) health: crate::core::health::HealthConfig,
}

impl PlaneConfig {
    pub fn new(node: NodeId, asn: Asn) -> Self {
        PlaneConfig {
            node,
            asn,
            call_timeout: Duration::from_secs(60),
            hop_limit: 16,
            communities: Vec::new(),
            descriptor_cache: 4096,
            descriptor_cache_bytes: 16 << 20,
            describe_parallel: 16,
            describe_retry: Duration::from_secs(30),
            fetch_descriptors: true,
            health: crate::core::health::HealthConfig {
                enabled: false,
                ..Default::default()
            },
        }
    }

    /// Health as MED for the hosted agents (the node's `[health]`).
    pub fn with_health(mut self, h: crate::core::health::HealthConfig) -> Self {
        self.health = h;
        self
    }

    /// Deadline of calls whose client gives none.
    pub fn with_call_timeout(mut self, d: Duration) -> Self {
        self.call_timeout = d;
        self
    }

    pub fn with_hop_limit(mut self, n: u8) -> Self {
        self.hop_limit = n.max(1);
        self
    }

    /// Communities this node claims for its callers (signed into calls).
    pub fn with_caller_communities(mut self, c: Vec<Community>) -> Self {
        self.communities = c;
        self
    }

    /// Whether to fetch remote tools' descriptors (only a node with a
    /// front needs them).
    pub fn with_descriptor_fetch(mut self, on: bool) -> Self {
        self.fetch_descriptors = on;
        self
    }

    /// Bytes of descriptor JSON kept in the cache (default 16 MiB).
    pub fn with_descriptor_cache_bytes(mut self, n: usize) -> Self {
        self.descriptor_cache_bytes = n.max(super::MAX_DESCRIPTOR_BYTES);
        self
    }

    pub fn with_descriptor_cache(mut self, n: usize) -> Self {
        self.descriptor_cache = n.max(1);
        self
    }

    pub fn call_timeout(&self) -> Duration {
        self.call_timeout
    }
}
