//! Tool descriptors: the cache by hash, the front's table built from the
//! Loc-RIB, and DESCRIBE calls for what the cache lacks.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use serde_json::Value as Json;

use super::calls::NewCall;
use super::hosted::{Leads, route_leads};
use super::{INTERNAL_FRONT, McpPlane, PlaneOut};
use crate::core::attrs::AttrValue;
use crate::core::call::{CallOp, CallOutcome, CallReturn, DESCRIPTOR_ATTR};
use crate::core::engine::Engine;
use crate::core::forward::{CallEvent, FrontId, FrontOpts, Micros, route_tool};
use crate::core::prefix::Prefix;
use crate::mcp::catalog::{DescriptorHash, ToolDescriptor};
use crate::mcp::front::table::{RoutedItem, RoutedTool, ToolTable};
use crate::mcp::items::{ItemDescriptor, ItemKind, descriptor_hash};

/// Largest descriptor fetched from another node (its JSON): far more than
/// any real tool's name, description and schemas.
pub const MAX_DESCRIPTOR_BYTES: usize = 64 * 1024;

/// Descriptors by hash, least recently used out, bounded in count and in
/// bytes (of their JSON).
#[derive(Debug)]
pub(super) struct DescriptorCache<T> {
    pub(super) map: HashMap<DescriptorHash, (Arc<T>, u64, usize)>,
    pub(super) clock: u64,
    pub(super) cap: usize,
    pub(super) cap_bytes: usize,
    pub(super) bytes: usize,
}

impl<T> DescriptorCache<T> {
    pub fn new(cap: usize, cap_bytes: usize) -> Self {
        DescriptorCache {
            map: HashMap::new(),
            clock: 0,
            cap,
            cap_bytes,
            bytes: 0,
        }
    }

    pub fn len(&self) -> usize {
        self.map.len()
    }

    pub fn contains(&self, h: &DescriptorHash) -> bool {
        self.map.contains_key(h)
    }

    pub fn get(&mut self, h: &DescriptorHash) -> Option<Arc<T>> {
        self.clock += 1;
        let c = self.clock;
        self.map.get_mut(h).map(|(d, used, _)| {
            *used = c;
            d.clone()
        })
    }

    /// Caches `d` (`size` bytes of JSON), evicting the least recently used
    /// until both bounds hold.
    pub fn insert(&mut self, h: DescriptorHash, d: Arc<T>, size: usize) {
        self.clock += 1;
        if let Some((_, _, old)) = self.map.remove(&h) {
            self.bytes -= old;
        }
        while !self.map.is_empty()
            && (self.map.len() >= self.cap || self.bytes + size > self.cap_bytes)
        {
            let Some(old) = self
                .map
                .iter()
                .min_by_key(|(_, (_, u, _))| *u)
                .map(|(k, _)| *k)
            else {
                break;
            };
            if let Some((_, _, b)) = self.map.remove(&old) {
                self.bytes -= b;
            }
        }
        self.bytes += size;
        self.map.insert(h, (d, self.clock, size));
    }
}

impl McpPlane {
    /// The Loc-RIB changed: rebuild the front's table, publish it if it
    /// differs, fetch descriptors it lacks.
    pub fn on_routes(&mut self, now: Micros, engine: &Engine) -> PlaneOut {
        self.routes_dirty = false;
        let mut routed = Vec::new();
        let mut items = Vec::new();
        for r in engine.loc_rib() {
            let Some(tool) = route_tool(&r) else { continue };
            let hash = match r.attrs.extra.get(DESCRIPTOR_ATTR).map(|a| &a.value) {
                Some(AttrValue::Bytes(b)) if b.len() == 16 => {
                    let mut h = [0u8; 16];
                    h.copy_from_slice(b);
                    Some(DescriptorHash(h))
                }
                _ => None,
            };
            // A route whose only paths are stale (their peer's transport is
            // gone) cannot carry a call: not listed until the peer re-syncs.
            let Some(fwd) = engine.forwarding(&r.prefix) else {
                continue;
            };
            let local = fwd.paths.first().is_some_and(|(n, _)| n.is_none());
            match route_leads(&r) {
                Leads::Tool => {}
                Leads::Unknown => continue,
                Leads::Item(kind) => {
                    let descriptor = if local {
                        self.hosted
                            .get(&r.attrs.agent)
                            .and_then(|h| h.items.get(&r.prefix).cloned())
                    } else {
                        match hash {
                            Some(h) => {
                                let d = self.item_cache.get(&h);
                                if d.is_none() {
                                    self.want_descriptor(h, &r.prefix, Some(kind));
                                }
                                d
                            }
                            None => None,
                        }
                    };
                    items.push(RoutedItem {
                        prefix: r.prefix.clone(),
                        kind,
                        key: tool.to_string(),
                        agent: r.attrs.agent.clone(),
                        origin_asn: r.attrs.origin_asn().unwrap_or(self.cfg.asn),
                        as_path: r.attrs.as_path.clone(),
                        local,
                        communities: r.attrs.communities.clone(),
                        hash,
                        descriptor,
                    });
                    continue;
                }
            }
            let (descriptor, note) = if local {
                let d = self
                    .hosted
                    .get(&r.attrs.agent)
                    .and_then(|h| h.tools.get(tool.as_ref()).cloned());
                (d, None)
            } else if let Some(h) = hash {
                match self.cache.get(&h) {
                    Some(d) => (Some(d), None),
                    None => {
                        let note = match self.failed.get(&(h, r.prefix.clone())) {
                            Some((_, why)) => format!("(Descriptor unavailable: {why}.)"),
                            None if !self.cfg.fetch_descriptors => {
                                "(Descriptors are not fetched: this node has no MCP front.)"
                                    .to_string()
                            }
                            None => {
                                self.want_descriptor(h, &r.prefix, None);
                                "(Descriptor not fetched yet.)".to_string()
                            }
                        };
                        (None, Some(note))
                    }
                }
            } else {
                (
                    None,
                    Some("(The route carries no descriptor hash.)".to_string()),
                )
            };
            routed.push(RoutedTool {
                prefix: r.prefix.clone(),
                tool: tool.to_string(),
                agent: r.attrs.agent.clone(),
                origin_asn: r.attrs.origin_asn().unwrap_or(self.cfg.asn),
                as_path: r.attrs.as_path.clone(),
                local,
                med: r.attrs.med,
                communities: r.attrs.communities.clone(),
                capabilities: r.attrs.capabilities.clone(),
                hash,
                descriptor,
                descriptor_note: note,
            });
        }
        let table = ToolTable::build_from(&self.table, routed, now).with_items(items);
        let mut out = self.start_fetches(now, engine);
        if *self.table != table {
            self.table = Arc::new(table);
            out.table = Some(self.table.clone());
        }
        out
    }

    /// Queues a DESCRIBE for `h` through the route `prefix`, unless one is
    /// on the way, queued, or failed there recently (a failed item is
    /// listed without its descriptor until the retry time).
    fn want_descriptor(&mut self, h: DescriptorHash, prefix: &Prefix, kind: Option<ItemKind>) {
        if self.fetching.contains(&h)
            || self.queue.iter().any(|(q, _, _)| *q == h)
            || (kind.is_some() && self.failed.contains_key(&(h, prefix.clone())))
            || !self.cfg.fetch_descriptors
        {
            return;
        }
        self.queue.push_back((h, prefix.clone(), kind));
    }

    pub(super) fn start_fetches(&mut self, now: Micros, engine: &Engine) -> PlaneOut {
        let mut out = PlaneOut::default();
        while self.fetching.len() < self.cfg.describe_parallel {
            let Some((h, prefix, kind)) = self.queue.pop_front() else {
                break;
            };
            if self.fetching.contains(&h) || self.cache.contains(&h) || self.item_cache.contains(&h)
            {
                continue;
            }
            self.fetching.insert(h);
            self.metrics.descriptor_fetches += 1;
            let id = FrontId(self.next_internal);
            self.next_internal = self.next_internal.wrapping_add(1).max(INTERNAL_FRONT);
            self.describes.insert(id, (h, prefix.clone(), kind));
            let (call, _) = self.make_call(
                now,
                NewCall {
                    target: prefix,
                    tool: None,
                    op: CallOp::Describe,
                    arguments: Json::Null,
                    idempotent: true,
                    timeout: Duration::from_secs(10),
                    progress: false,
                    log_level: None,
                    sign: true,
                },
            );
            let more = self.forward(
                now,
                engine,
                CallEvent::Front {
                    id,
                    call,
                    opts: FrontOpts::default(),
                },
            );
            out.extend(more);
        }
        out
    }

    pub(super) fn describe_done(&mut self, now: Micros, id: FrontId, ret: CallReturn) {
        let Some((h, prefix, kind)) = self.describes.remove(&id) else {
            return;
        };
        self.fetching.remove(&h);
        let fail = |why: String, this: &mut Self| {
            this.metrics.descriptor_fetch_failures += 1;
            tracing::info!(%prefix, error = %why, "descriptor fetch failed");
            let retry =
                now.plus_us(u64::try_from(this.cfg.describe_retry.as_micros()).unwrap_or(u64::MAX));
            this.failed.insert((h, prefix.clone()), (retry, why));
        };
        let size = match &ret.outcome {
            CallOutcome::Ok(v) => serde_json::to_vec(v).map_or(usize::MAX, |b| b.len()),
            CallOutcome::Err(_) => 0,
        };
        if size > MAX_DESCRIPTOR_BYTES {
            fail(
                format!("the descriptor is {size} bytes; the limit is {MAX_DESCRIPTOR_BYTES}"),
                self,
            );
            self.routes_dirty = true;
            return;
        }
        if let Some(kind) = kind {
            match ret.outcome {
                CallOutcome::Ok(Json::Object(m)) if descriptor_hash(kind, &m) == h => {
                    match ItemDescriptor::new(kind, m) {
                        Ok(d) => self.item_cache.insert(h, Arc::new(d), size),
                        Err(e) => fail(e.to_string(), self),
                    }
                }
                CallOutcome::Ok(_) => fail(
                    "the origin's descriptor does not match the route's hash".into(),
                    self,
                ),
                CallOutcome::Err(e) => fail(e.message, self),
            }
            self.routes_dirty = true;
            return;
        }
        match ret.outcome {
            CallOutcome::Ok(v) => match serde_json::from_value::<ToolDescriptor>(v) {
                Ok(d) if d.hash() == h => {
                    self.cache.insert(h, Arc::new(d), size);
                }
                Ok(_) => fail(
                    "the origin's descriptor does not match the route's hash".into(),
                    self,
                ),
                Err(e) => fail(format!("not a tool descriptor: {e}"), self),
            },
            CallOutcome::Err(e) => fail(e.message, self),
        }
        self.routes_dirty = true;
    }

    /// Whether the table should be rebuilt (a descriptor arrived, a fetch
    /// failed or its retry time came): the node calls [`Self::on_routes`].
    pub fn routes_dirty(&self) -> bool {
        self.routes_dirty
    }
}
