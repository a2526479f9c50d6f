//! Tool descriptors as they travel between nodes, and the names a tool gets
//! on its way: a route prefix for the routing core and a front name for MCP
//! clients.
//!
//! - [`ToolDescriptor`] is what an agent's `tools/list` said about one tool,
//!   as owned data free of SDK types. [`ToolDescriptor::hash`] is a content
//!   hash (SHA-256 over a canonical JSON encoding, truncated to 16 bytes), so
//!   routes can carry a tool's name and hash, and a remote node fetches the
//!   full descriptor once per hash and caches it.
//! - [`tool_route_prefix`] turns an agent prefix and a tool name into the
//!   exact prefix that tool is routed under (`utility/time/*` +
//!   `get_current_time` -> `utility/time/get_current_time`).
//!   [`tool_routes`] does it for a whole tool list and rejects collisions.
//! - [`FrontNames`] gives every tool the MCP front shows a name valid for MCP
//!   clients (`^[A-Za-z0-9_-]{1,64}$`), unique, and a function of the set of
//!   tools alone, so names do not change when routes arrive in another order.
//!
//! Route segments and front names are lossy views for routing and display:
//! the route also carries the original tool name, which is what a call uses.

use std::borrow::Cow;
use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

use crate::core::prefix::{MAX_SEGMENT_LEN, Prefix, PrefixError};

/// Domain separation for descriptor hashes; bump the version if the
/// canonical encoding ever changes.
const DESCRIPTOR_HASH_DOMAIN: &[u8] = b"agent-bgp/tool-descriptor/v1\0";

/// Longest tool name an MCP client accepts.
pub const MAX_FRONT_NAME_LEN: usize = 64;

/// What an agent's `tools/list` said about one tool.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ToolDescriptor {
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// JSON Schema of the arguments (an object schema).
    pub input_schema: Map<String, Value>,
    /// JSON Schema of `structuredContent`, when the tool declares one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output_schema: Option<Map<String, Value>>,
    /// MCP tool annotations (`readOnlyHint`, `idempotentHint`, ...): hints
    /// from the agent, not promises.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub annotations: Option<Map<String, Value>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub icons: Option<Vec<Value>>,
    #[serde(rename = "_meta", default, skip_serializing_if = "Option::is_none")]
    pub meta: Option<Map<String, Value>>,
}

/// Why a descriptor could not be turned back into an SDK tool.
#[derive(Debug, thiserror::Error)]
#[error("tool descriptor {name:?} does not fit the MCP tool shape: {source}")]
pub struct DescriptorShapeError {
    pub name: String,
    #[source]
    pub source: serde_json::Error,
}

impl ToolDescriptor {
    /// Takes what the MCP SDK decoded from `tools/list`.
    pub fn from_rmcp(tool: &rmcp::model::Tool) -> Self {
        // Annotations, icons and `_meta` are kept as JSON so fields this SDK
        // version does not model still travel; a failure to re-encode (which
        // serde_json does not do for these types) just drops the field.
        let object = |v: Option<Value>| match v {
            Some(Value::Object(m)) => Some(m),
            _ => None,
        };
        ToolDescriptor {
            name: tool.name.to_string(),
            title: tool.title.clone(),
            description: tool.description.as_ref().map(|d| d.to_string()),
            input_schema: tool.input_schema.as_ref().clone(),
            output_schema: tool.output_schema.as_ref().map(|s| s.as_ref().clone()),
            annotations: object(
                tool.annotations
                    .as_ref()
                    .and_then(|a| serde_json::to_value(a).ok()),
            ),
            icons: tool.icons.as_ref().and_then(|icons| {
                icons
                    .iter()
                    .map(serde_json::to_value)
                    .collect::<Result<Vec<_>, _>>()
                    .ok()
            }),
            meta: object(
                tool.meta
                    .as_ref()
                    .and_then(|m| serde_json::to_value(m).ok()),
            ),
        }
    }

    /// The SDK's tool type, for the MCP front to list.
    pub fn to_rmcp(&self) -> Result<rmcp::model::Tool, DescriptorShapeError> {
        serde_json::to_value(self)
            .and_then(serde_json::from_value)
            .map_err(|source| DescriptorShapeError {
                name: self.name.clone(),
                source,
            })
    }

    /// The content hash: equal descriptors hash equal on every node,
    /// whatever order the agent wrote object keys in.
    pub fn hash(&self) -> DescriptorHash {
        // A derived `Serialize` of plain data into a `Value` cannot fail.
        let value = serde_json::to_value(self).unwrap_or(Value::Null);
        let mut canonical = String::new();
        write_canonical_json(&value, &mut canonical);
        let mut h = Sha256::new();
        h.update(DESCRIPTOR_HASH_DOMAIN);
        h.update(canonical.as_bytes());
        let digest = h.finalize();
        let mut out = [0u8; 16];
        out.copy_from_slice(&digest[..16]);
        DescriptorHash(out)
    }

    /// True when the agent marked the tool read-only.
    pub fn is_read_only(&self) -> bool {
        self.annotation_flag("readOnlyHint")
    }

    /// True when the agent marked the tool idempotent.
    pub fn is_idempotent(&self) -> bool {
        self.annotation_flag("idempotentHint")
    }

    fn annotation_flag(&self, key: &str) -> bool {
        self.annotations
            .as_ref()
            .and_then(|a| a.get(key))
            .and_then(Value::as_bool)
            .unwrap_or(false)
    }
}

/// Writes `value` as JSON with object keys sorted by their UTF-8 bytes and no
/// whitespace. Strings and numbers use serde_json's own encoding, which is
/// deterministic (shortest round-trip form for floats).
pub fn write_canonical_json(value: &Value, out: &mut String) {
    match value {
        Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort();
            out.push('{');
            for (i, k) in keys.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                push_json_string(k, out);
                out.push(':');
                if let Some(v) = map.get(k) {
                    write_canonical_json(v, out);
                }
            }
            out.push('}');
        }
        Value::Array(items) => {
            out.push('[');
            for (i, v) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_canonical_json(v, out);
            }
            out.push(']');
        }
        Value::String(s) => push_json_string(s, out),
        Value::Number(n) => out.push_str(&n.to_string()),
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::Null => out.push_str("null"),
    }
}

fn push_json_string(s: &str, out: &mut String) {
    // Serialising a &str to JSON cannot fail.
    out.push_str(&serde_json::to_string(s).unwrap_or_default());
}

/// The first 16 bytes of a descriptor's SHA-256 content hash; written as 32
/// hex digits.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct DescriptorHash(pub [u8; 16]);

impl fmt::Display for DescriptorHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&hex::encode(self.0))
    }
}

impl fmt::Debug for DescriptorHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "DescriptorHash({self})")
    }
}

impl FromStr for DescriptorHash {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let mut b = [0u8; 16];
        hex::decode_to_slice(s, &mut b)
            .map_err(|e| format!("{s:?} is not a descriptor hash (32 hex digits): {e}"))?;
        Ok(DescriptorHash(b))
    }
}

impl Serialize for DescriptorHash {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for DescriptorHash {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = <Cow<'de, str>>::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// Why a tool cannot be given a route prefix.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ToolRouteError {
    #[error("the tool name is empty")]
    EmptyName,
    #[error("agent prefix {prefix} + tool {tool:?} does not make a valid prefix: {source}")]
    Prefix {
        prefix: String,
        tool: String,
        source: PrefixError,
    },
    #[error("tools {tool:?} and {other:?} map to the same route segment {segment:?}")]
    Collision {
        tool: String,
        other: String,
        segment: String,
    },
}

fn valid_segment_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.')
}

/// The prefix segment a tool name is routed under.
///
/// A name that already is a valid segment (at most 64 bytes of
/// `[A-Za-z0-9._-]`) is used as is. Any other name (spaces, `/`, unicode,
/// too long) becomes: each character outside the set replaced by `_`, cut to
/// 55 bytes, then `-` and the first 8 hex digits of the name's SHA-256. So
/// `get time` -> `get_time-<8 hex>`. Distinct names collide only if one
/// valid name happens to equal another's sanitised form; [`tool_routes`]
/// checks for that.
pub fn tool_segment(tool: &str) -> Result<Cow<'_, str>, ToolRouteError> {
    if tool.is_empty() {
        return Err(ToolRouteError::EmptyName);
    }
    if tool.len() <= MAX_SEGMENT_LEN && tool.chars().all(valid_segment_char) {
        return Ok(Cow::Borrowed(tool));
    }
    const SUFFIX_LEN: usize = 1 + 8;
    let mut s: String = tool
        .chars()
        .map(|c| if valid_segment_char(c) { c } else { '_' })
        .take(MAX_SEGMENT_LEN - SUFFIX_LEN)
        .collect();
    s.push('-');
    s.push_str(&short_hash_hex(tool.as_bytes(), 8));
    Ok(Cow::Owned(s))
}

/// The exact prefix a tool is routed under: the agent prefix's base plus the
/// tool's segment. `utility/time/*` and `utility/time` both give
/// `utility/time/get_current_time`; `*` gives `get_current_time`.
pub fn tool_route_prefix(agent_prefix: &Prefix, tool: &str) -> Result<Prefix, ToolRouteError> {
    let segment = tool_segment(tool)?;
    let base = agent_prefix.base();
    let text = if base.is_empty() {
        segment.into_owned()
    } else {
        format!("{base}/{segment}")
    };
    Prefix::new(&text).map_err(|source| ToolRouteError::Prefix {
        prefix: agent_prefix.to_string(),
        tool: tool.into(),
        source,
    })
}

/// Route prefixes for a whole tool list.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ToolRoutes {
    /// Tool name -> its route prefix.
    pub routes: BTreeMap<String, Prefix>,
    /// Tools left without a route, and why.
    pub rejected: Vec<(String, ToolRouteError)>,
}

/// Maps every tool of an agent to its route prefix. When two names map to
/// the same prefix, a name that is its own segment keeps it, otherwise the
/// smaller name does; the other is rejected. The result depends only on the
/// set of names.
pub fn tool_routes<'a>(
    agent_prefix: &Prefix,
    tools: impl IntoIterator<Item = &'a str>,
) -> ToolRoutes {
    let names: BTreeSet<&str> = tools.into_iter().collect();
    let mut out = ToolRoutes::default();
    let mut by_prefix: BTreeMap<Prefix, Vec<&str>> = BTreeMap::new();
    for name in names {
        match tool_route_prefix(agent_prefix, name) {
            Ok(p) => by_prefix.entry(p).or_default().push(name),
            Err(e) => out.rejected.push((name.to_string(), e)),
        }
    }
    for (prefix, mut claimants) in by_prefix {
        // Literal names first, then by name: deterministic for a given set.
        let segment = prefix.segments().last().unwrap_or_default().to_string();
        claimants.sort_by_key(|n| (*n != segment, *n));
        let winner = claimants[0];
        for loser in &claimants[1..] {
            out.rejected.push((
                loser.to_string(),
                ToolRouteError::Collision {
                    tool: loser.to_string(),
                    other: winner.to_string(),
                    segment: segment.clone(),
                },
            ));
        }
        out.routes.insert(winner.to_string(), prefix);
    }
    out
}

fn short_hash_hex(bytes: &[u8], hex_len: usize) -> String {
    let digest = Sha256::digest(bytes);
    let mut s = hex::encode(digest);
    s.truncate(hex_len);
    s
}

/// One tool the MCP front shows: its name, and what tells it apart from
/// other tools of the same name. The front uses the tool's route prefix as
/// the origin.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct ToolKey {
    pub origin: String,
    pub tool: String,
}

impl ToolKey {
    pub fn new(origin: impl Into<String>, tool: impl Into<String>) -> Self {
        ToolKey {
            origin: origin.into(),
            tool: tool.into(),
        }
    }
}

fn valid_front_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '_' | '-')
}

/// True for names MCP clients accept: `^[A-Za-z0-9_-]{1,64}$`.
pub fn is_valid_front_name(name: &str) -> bool {
    !name.is_empty() && name.len() <= MAX_FRONT_NAME_LEN && name.chars().all(valid_front_char)
}

/// Hex digits of suffix at each disambiguation level; level 0 has none.
const SUFFIX_HEX: [usize; 4] = [0, 8, 16, 32];

/// The front name of `key` at disambiguation `level`.
fn front_candidate(key: &ToolKey, level: usize) -> String {
    let mut base: String = key
        .tool
        .chars()
        .map(|c| if valid_front_char(c) { c } else { '_' })
        .collect();
    if base.is_empty() {
        base.push_str("tool");
    }
    let hex_len = SUFFIX_HEX[level.min(SUFFIX_HEX.len() - 1)];
    if hex_len == 0 {
        base.truncate(MAX_FRONT_NAME_LEN);
        return base;
    }
    // Hash origin and tool with a separator neither can fake (NUL).
    let mut input = Vec::with_capacity(key.origin.len() + key.tool.len() + 1);
    input.extend_from_slice(key.origin.as_bytes());
    input.push(0);
    input.extend_from_slice(key.tool.as_bytes());
    base.truncate(MAX_FRONT_NAME_LEN - 1 - hex_len);
    base.push('_');
    base.push_str(&short_hash_hex(&input, hex_len));
    base
}

/// Names for the tools the MCP front shows.
///
/// Rule: a tool keeps its own name (characters outside `[A-Za-z0-9_-]`
/// replaced by `_`, cut to 64 bytes) when no other tool in the set wants the
/// same name. Every tool in a clash gets `_` and 8 hex digits of
/// SHA-256(origin, NUL, tool) appended (the name cut to fit); if that still
/// clashes, 16 digits, then 32. The names are a function of the set of keys,
/// not of the order they were added in.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FrontNames {
    by_name: BTreeMap<String, ToolKey>,
    by_key: BTreeMap<ToolKey, String>,
}

impl FrontNames {
    pub fn allocate(keys: impl IntoIterator<Item = ToolKey>) -> Self {
        let keys: BTreeSet<ToolKey> = keys.into_iter().collect();
        let mut level: BTreeMap<&ToolKey, usize> = keys.iter().map(|k| (k, 0)).collect();
        let max_level = SUFFIX_HEX.len() - 1;
        // Each round raises every key in a clash by one level (a key already
        // at the top stays), so it ends after at most `max_level + 1` rounds
        // unless two top-level names clash, which needs a 128-bit hash
        // collision; the loop bound covers that and the tie-break below
        // still makes names unique.
        for _ in 0..=max_level + 1 {
            let mut claims: BTreeMap<String, Vec<&ToolKey>> = BTreeMap::new();
            for (k, l) in &level {
                claims.entry(front_candidate(k, *l)).or_default().push(k);
            }
            let mut bumped = false;
            for clash in claims.values().filter(|c| c.len() > 1) {
                for k in clash {
                    if let Some(l) = level.get_mut(*k)
                        && *l < max_level
                    {
                        *l += 1;
                        bumped = true;
                    }
                }
            }
            if !bumped {
                break;
            }
        }
        let mut out = FrontNames::default();
        for (k, l) in level {
            let mut name = front_candidate(k, l);
            // Only reachable with a hash collision: number the later keys.
            let mut n = 1u32;
            while out.by_name.contains_key(&name) {
                let tail = format!("_{n}");
                let mut cut = front_candidate(k, l);
                cut.truncate(MAX_FRONT_NAME_LEN - tail.len());
                name = cut + &tail;
                n += 1;
            }
            out.by_name.insert(name.clone(), k.clone());
            out.by_key.insert(k.clone(), name);
        }
        out
    }

    /// The front name of a tool.
    pub fn name_of(&self, key: &ToolKey) -> Option<&str> {
        self.by_key.get(key).map(String::as_str)
    }

    /// The tool a client's front name refers to.
    pub fn resolve(&self, name: &str) -> Option<&ToolKey> {
        self.by_name.get(name)
    }

    /// All (front name, tool) pairs, by name.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &ToolKey)> {
        self.by_name.iter().map(|(n, k)| (n.as_str(), k))
    }

    pub fn len(&self) -> usize {
        self.by_name.len()
    }

    pub fn is_empty(&self) -> bool {
        self.by_name.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde_json::json;

    fn descriptor(name: &str) -> ToolDescriptor {
        ToolDescriptor {
            name: name.into(),
            title: Some("Echo".into()),
            description: Some("Echoes its input".into()),
            input_schema: json!({"type": "object", "properties": {"text": {"type": "string"}}})
                .as_object()
                .cloned()
                .unwrap_or_default(),
            output_schema: None,
            annotations: json!({"readOnlyHint": true}).as_object().cloned(),
            icons: None,
            meta: None,
        }
    }

    #[test]
    fn hash_ignores_key_order_and_sees_every_field() {
        let a = descriptor("echo");
        let mut b = a.clone();
        // Same schema, keys inserted in another order.
        b.input_schema = serde_json::from_str(
            r#"{"properties": {"text": {"type": "string"}}, "type": "object"}"#,
        )
        .unwrap();
        assert_eq!(a.hash(), b.hash());
        let mut c = a.clone();
        c.description = Some("Echoes its input.".into());
        assert_ne!(a.hash(), c.hash());
        let mut d = a.clone();
        d.annotations = None;
        assert_ne!(a.hash(), d.hash());
        assert_ne!(a.hash(), descriptor("echo2").hash());
    }

    #[test]
    fn hash_is_pinned_so_nodes_agree_across_versions() {
        // If this changes, every cached descriptor in the federation goes
        // stale: bump DESCRIPTOR_HASH_DOMAIN on purpose instead.
        let mut canonical = String::new();
        write_canonical_json(
            &serde_json::to_value(descriptor("echo")).unwrap(),
            &mut canonical,
        );
        assert_eq!(
            canonical,
            r#"{"annotations":{"readOnlyHint":true},"description":"Echoes its input","inputSchema":{"properties":{"text":{"type":"string"}},"type":"object"},"name":"echo","title":"Echo"}"#
        );
        let h = descriptor("echo").hash();
        assert_eq!(h.to_string().len(), 32);
        assert_eq!(h.to_string().parse::<DescriptorHash>(), Ok(h));
    }

    #[test]
    fn descriptor_round_trips_through_the_sdk_type_and_cbor() {
        let mut d = descriptor("echo");
        d.output_schema = json!({"type": "object"}).as_object().cloned();
        d.meta = json!({"x/y": 1}).as_object().cloned();
        let tool = d.to_rmcp().unwrap();
        assert_eq!(ToolDescriptor::from_rmcp(&tool), d);
        let mut buf = Vec::new();
        ciborium::into_writer(&d, &mut buf).unwrap();
        let back: ToolDescriptor = ciborium::from_reader(buf.as_slice()).unwrap();
        assert_eq!(back.hash(), d.hash());
        assert!(d.is_read_only());
        assert!(!d.is_idempotent());
    }

    #[test]
    fn valid_tool_names_become_their_own_segment() {
        let p = Prefix::new("utility/time/*").unwrap();
        assert_eq!(
            tool_route_prefix(&p, "get_current_time").unwrap().as_str(),
            "utility/time/get_current_time"
        );
        let exact = Prefix::new("utility/time").unwrap();
        assert_eq!(
            tool_route_prefix(&exact, "convert_time").unwrap().as_str(),
            "utility/time/convert_time"
        );
        assert_eq!(
            tool_route_prefix(&Prefix::any(), "echo").unwrap().as_str(),
            "echo"
        );
    }

    #[test]
    fn other_tool_names_are_sanitised_with_a_hash_suffix() {
        let seg = tool_segment("get time/zone ü").unwrap();
        assert!(seg.starts_with("get_time_zone__-"), "{seg}");
        assert_eq!(seg.len(), "get_time_zone__-".len() + 8);
        let long = "x".repeat(100);
        let seg = tool_segment(&long).unwrap();
        assert_eq!(seg.len(), MAX_SEGMENT_LEN);
        assert_ne!(tool_segment("a b").unwrap(), tool_segment("a/b").unwrap());
        assert_eq!(tool_segment(""), Err(ToolRouteError::EmptyName));
    }

    #[test]
    fn too_deep_agent_prefix_is_reported() {
        // 16 named segments: the limit, so a tool segment does not fit.
        let deep = Prefix::new(&format!("{}a", "a/".repeat(15))).unwrap();
        assert!(matches!(
            tool_route_prefix(&deep, "t"),
            Err(ToolRouteError::Prefix { .. })
        ));
        // 15 named segments and a wildcard: the tool makes the 16th.
        let ok = Prefix::new(&format!("{}*", "a/".repeat(15))).unwrap();
        assert!(tool_route_prefix(&ok, "t").is_ok());
        let long = Prefix::new(&format!("{}/*", vec!["x".repeat(60); 4].join("/"))).unwrap();
        assert!(matches!(
            tool_route_prefix(&long, &"t".repeat(20)),
            Err(ToolRouteError::Prefix { .. })
        ));
    }

    #[test]
    fn colliding_tool_routes_keep_the_literal_name() {
        let p = Prefix::new("x/*").unwrap();
        let sanitised = tool_segment("a b").unwrap().into_owned();
        let names = ["a b", sanitised.as_str(), "c"];
        let routes = tool_routes(&p, names);
        assert_eq!(routes.routes.len(), 2);
        assert!(routes.routes.contains_key(sanitised.as_str()));
        assert_eq!(routes.rejected.len(), 1);
        assert_eq!(routes.rejected[0].0, "a b");
        let reversed = tool_routes(&p, names.iter().rev().copied());
        assert_eq!(routes, reversed);
    }

    #[test]
    fn unique_front_names_are_the_tool_names() {
        let names = FrontNames::allocate([
            ToolKey::new("a/echo", "echo"),
            ToolKey::new("b/add", "add"),
            ToolKey::new("c/x", "get.time"),
        ]);
        assert_eq!(names.name_of(&ToolKey::new("a/echo", "echo")), Some("echo"));
        assert_eq!(
            names.name_of(&ToolKey::new("c/x", "get.time")),
            Some("get_time")
        );
        assert_eq!(names.resolve("add"), Some(&ToolKey::new("b/add", "add")));
    }

    #[test]
    fn clashing_front_names_all_get_suffixes() {
        let a = ToolKey::new("a/search", "search");
        let b = ToolKey::new("b/search", "search");
        let names = FrontNames::allocate([a.clone(), b.clone()]);
        let na = names.name_of(&a).unwrap();
        let nb = names.name_of(&b).unwrap();
        assert_ne!(na, nb);
        assert!(
            na.starts_with("search_") && na.len() == "search_".len() + 8,
            "{na}"
        );
        assert!(nb.starts_with("search_"), "{nb}");
        assert!(names.resolve("search").is_none());
    }

    #[test]
    fn a_literal_name_equal_to_a_suffixed_one_is_disambiguated() {
        let a = ToolKey::new("a", "t");
        let b = ToolKey::new("b", "t");
        let first = FrontNames::allocate([a.clone(), b.clone()]);
        let taken = first.name_of(&a).unwrap().to_string();
        let c = ToolKey::new("c", taken.clone());
        let names = FrontNames::allocate([a, b, c.clone()]);
        assert_eq!(names.len(), 3);
        assert!(names.iter().all(|(n, _)| is_valid_front_name(n)));
        assert_ne!(names.name_of(&c), Some(taken.as_str()));
    }

    #[test]
    fn empty_and_long_tool_names_get_valid_front_names() {
        let long = "é".repeat(80);
        let names = FrontNames::allocate([ToolKey::new("a", ""), ToolKey::new("b", long.clone())]);
        assert_eq!(names.name_of(&ToolKey::new("a", "")), Some("tool"));
        let n = names.name_of(&ToolKey::new("b", long)).unwrap();
        assert!(is_valid_front_name(n), "{n}");
    }

    fn arb_key() -> impl Strategy<Value = ToolKey> {
        // Small alphabets make clashes likely.
        (
            prop_oneof![Just("a".to_string()), Just("b".to_string()), "[a-c/]{0,6}"],
            prop_oneof![
                Just("search".to_string()),
                Just("search_".to_string()),
                "[a-c _.-]{0,5}",
                "\\PC{0,80}",
            ],
        )
            .prop_map(|(o, t)| ToolKey::new(o, t))
    }

    proptest! {
        #[test]
        fn front_names_are_valid_unique_and_order_independent(
            keys in proptest::collection::vec(arb_key(), 0..40),
            seed in any::<u64>(),
        ) {
            let names = FrontNames::allocate(keys.clone());
            let distinct: BTreeSet<_> = keys.iter().cloned().collect();
            prop_assert_eq!(names.len(), distinct.len());
            for k in &distinct {
                let n = names.name_of(k);
                prop_assert!(n.is_some());
                let n = n.unwrap_or_default();
                prop_assert!(is_valid_front_name(n), "{:?}", n);
                prop_assert_eq!(names.resolve(n), Some(k));
            }
            let mut shuffled = keys.clone();
            // A deterministic shuffle from the seed.
            let len = shuffled.len();
            if len > 1 {
                let mut s = seed;
                for i in (1..len).rev() {
                    s = s.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
                    shuffled.swap(i, (s >> 33) as usize % (i + 1));
                }
            }
            prop_assert_eq!(FrontNames::allocate(shuffled), names);
        }

        #[test]
        fn a_tool_alone_with_its_name_keeps_it(
            tools in proptest::collection::btree_set("[A-Za-z0-9_-]{1,64}", 1..20),
        ) {
            let keys = tools.iter().enumerate().map(|(i, t)| ToolKey::new(format!("o{i}"), t.clone()));
            let names = FrontNames::allocate(keys);
            for (i, t) in tools.iter().enumerate() {
                prop_assert_eq!(names.name_of(&ToolKey::new(format!("o{i}"), t.clone())), Some(t.as_str()));
            }
        }

        #[test]
        fn every_tool_name_gets_a_valid_route_segment(tool in "\\PC{1,100}") {
            let seg = tool_segment(&tool);
            prop_assert!(seg.is_ok());
            let seg = seg.unwrap_or_default();
            prop_assert!(Prefix::new(&seg).is_ok(), "{:?}", seg);
            let p = Prefix::new("a/b/*").unwrap_or_else(|_| Prefix::any());
            prop_assert!(tool_route_prefix(&p, &tool).is_ok());
        }

        #[test]
        fn tool_routes_do_not_depend_on_order(
            tools in proptest::collection::vec("[a-c _/]{1,4}", 0..20),
        ) {
            let p = Prefix::new("x/*").unwrap_or_else(|_| Prefix::any());
            let fwd = tool_routes(&p, tools.iter().map(String::as_str));
            let rev = tool_routes(&p, tools.iter().rev().map(String::as_str));
            prop_assert_eq!(&fwd, &rev);
            let segs: BTreeSet<_> = fwd.routes.values().collect();
            prop_assert_eq!(segs.len(), fwd.routes.len());
        }
    }
}
