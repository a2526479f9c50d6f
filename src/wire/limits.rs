//! Decoder limits: how much a peer may make this node parse and allocate.
//!
//! Every count and length the decoder accepts is bounded here, and the
//! frame size is checked before any parsing. The encoder checks the same
//! limits, so a node never sends what a peer with default limits refuses.

/// Bounds for one frame. Private fields, documented defaults, `with_*`
/// builders.
///
/// | limit | default | bounds |
/// |---|---|---|
/// | `max_frame_bytes` | 1 MiB | a routing frame (OPEN, UPDATE, ...) |
/// | `max_call_frame_bytes` | 8 MiB | a call-tunnelling frame (tool arguments and results) |
/// | `max_depth` | 64 | CBOR nesting (stack use while decoding; JSON arguments nest) |
/// | `max_items` | 524288 | CBOR items in one frame (memory of the decoded tree) |
/// | `max_map_entries` | 65536 | entries of any one CBOR map (tool arguments are JSON objects; schema maps have far fewer, see [`crate::wire::cbor::MAX_FIELDS`]) |
/// | `max_routes` | 4096 | routes announced in one UPDATE |
/// | `max_withdraws` | 8192 | routes withdrawn in one UPDATE or WITHDRAW |
/// | `max_attr_sets` | 4096 | distinct attribute sets in one UPDATE |
/// | `max_certs` | 1024 | distinct certificates in one UPDATE |
/// | `max_path_len` | 64 | AS path entries, and path signatures per route |
/// | `max_communities` | 256 | communities on one route |
/// | `max_capabilities` | 128 | capability tags on one route |
/// | `max_cluster_list` | 32 | route-reflection cluster ids on one route |
/// | `max_as_set` | 256 | ASNs in an aggregate's AS set |
/// | `max_extra_attrs` | 32 | extra (named or carried-through) attributes on one route |
/// | `max_extra_bytes` | 4096 | one extra attribute's value |
/// | `max_text` | 1024 | agent ids, federation, tool names, notification text |
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limits {
    pub(crate) max_frame_bytes: usize,
    pub(crate) max_call_frame_bytes: usize,
    pub(crate) max_depth: usize,
    pub(crate) max_items: usize,
    pub(crate) max_map_entries: usize,
    pub(crate) max_routes: usize,
    pub(crate) max_withdraws: usize,
    pub(crate) max_attr_sets: usize,
    pub(crate) max_certs: usize,
    pub(crate) max_path_len: usize,
    pub(crate) max_communities: usize,
    pub(crate) max_capabilities: usize,
    pub(crate) max_cluster_list: usize,
    pub(crate) max_as_set: usize,
    pub(crate) max_extra_attrs: usize,
    pub(crate) max_extra_bytes: usize,
    pub(crate) max_text: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_frame_bytes: 1 << 20,
            max_call_frame_bytes: 8 << 20,
            max_depth: 64,
            max_items: 512 * 1024,
            max_map_entries: 64 * 1024,
            max_routes: 4096,
            max_withdraws: 8192,
            max_attr_sets: 4096,
            max_certs: 1024,
            max_path_len: crate::core::attrs::MAX_PATH_LEN,
            max_communities: crate::core::attrs::MAX_COMMUNITIES,
            max_capabilities: 128,
            max_cluster_list: crate::core::attrs::MAX_CLUSTER_LIST,
            max_as_set: crate::core::attrs::MAX_AS_SET,
            max_extra_attrs: crate::core::attrs::MAX_EXTRA_ATTRS,
            max_extra_bytes: 4096,
            max_text: 1024,
        }
    }
}

macro_rules! limit_accessors {
    ($($field:ident, $with:ident, $doc:literal;)*) => {
        impl Limits {
            $(
                #[doc = $doc]
                pub fn $field(&self) -> usize { self.$field }
                #[doc = $doc]
                pub fn $with(mut self, v: usize) -> Self { self.$field = v; self }
            )*
        }
    };
}

limit_accessors! {
    max_frame_bytes, with_max_frame_bytes, "Largest routing frame, in bytes.";
    max_call_frame_bytes, with_max_call_frame_bytes, "Largest call-tunnelling frame, in bytes.";
    max_depth, with_max_depth, "Deepest CBOR nesting accepted.";
    max_items, with_max_items, "Most CBOR items (scalars and containers) in one frame.";
    max_map_entries, with_max_map_entries, "Most entries in any one CBOR map.";
    max_routes, with_max_routes, "Most routes announced in one UPDATE.";
    max_withdraws, with_max_withdraws, "Most routes withdrawn in one frame.";
    max_attr_sets, with_max_attr_sets, "Most attribute sets in one UPDATE's table.";
    max_certs, with_max_certs, "Most certificates in one UPDATE's table.";
    max_path_len, with_max_path_len, "Longest AS path, and most path signatures per route.";
    max_communities, with_max_communities, "Most communities on one route.";
    max_capabilities, with_max_capabilities, "Most capability tags on one route.";
    max_cluster_list, with_max_cluster_list, "Longest cluster list.";
    max_as_set, with_max_as_set, "Largest aggregate AS set.";
    max_extra_attrs, with_max_extra_attrs, "Most extra attributes on one route.";
    max_extra_bytes, with_max_extra_bytes, "Largest extra attribute value, in bytes.";
    max_text, with_max_text, "Longest text field, in bytes.";
}

impl Limits {
    /// The most bytes a transport should read for one frame of any type;
    /// cap the read with this (`io.take(n)`) before calling `decode`.
    pub fn max_read_bytes(&self) -> usize {
        self.max_frame_bytes.max(self.max_call_frame_bytes)
    }
}
