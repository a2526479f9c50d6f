//! Prompts, resources and resource templates as routed items: their
//! descriptors (as the agent listed them) and content hashes, the route
//! prefixes they are announced under, the names the front lists them
//! under, and URI-template matching.
//!
//! Tools have their own richer type ([`crate::mcp::catalog::ToolDescriptor`]);
//! the other lists travel as the JSON the agent sent, so fields the SDK does
//! not model (icons, annotations, `_meta`) reach the client unchanged.
//!
//! Route prefixes: a prompt `p` of an agent under `a/b/*` is announced as
//! `a/b/prompt/<segment of p>`, a resource as `a/b/resource/<segment of its
//! URI>`, a template as `a/b/template/<segment of its URI template>` (the
//! segment rules are [`tool_route_prefix`](crate::mcp::catalog::tool_route_prefix)'s). Tool routes have one segment
//! after the agent's base, these two, so an item never takes a tool's
//! route.

use std::collections::{BTreeMap, HashMap};
use std::fmt;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value as Json};
use sha2::{Digest, Sha256};

use crate::core::prefix::Prefix;
use crate::mcp::catalog::{
    DescriptorHash, ToolRouteError, ToolRoutes, tool_routes, write_canonical_json,
};

/// What an item route leads to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ItemKind {
    Prompt,
    Resource,
    Template,
}

impl ItemKind {
    /// The route's `mcp.kind` attribute and the prefix segment.
    pub fn name(self) -> &'static str {
        match self {
            ItemKind::Prompt => "prompt",
            ItemKind::Resource => "resource",
            ItemKind::Template => "template",
        }
    }

    pub fn from_name(s: &str) -> Option<ItemKind> {
        match s {
            "prompt" => Some(ItemKind::Prompt),
            "resource" => Some(ItemKind::Resource),
            "template" => Some(ItemKind::Template),
            _ => None,
        }
    }

    /// The field of the listed item that names it.
    pub fn key_field(self) -> &'static str {
        match self {
            ItemKind::Prompt => "name",
            ItemKind::Resource => "uri",
            ItemKind::Template => "uriTemplate",
        }
    }
}

impl fmt::Display for ItemKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A prompt, resource or template as its agent listed it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ItemDescriptor {
    pub kind: ItemKind,
    /// The listed object (`name`, `title`, `description`, `arguments`,
    /// `uri`, `mimeType`, `uriTemplate`, `icons`, `_meta`, ...).
    pub json: Map<String, Json>,
}

/// Why a listed object is not an item.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("a listed {kind} needs a non-empty text `{field}`")]
pub struct ItemShapeError {
    pub kind: ItemKind,
    pub field: &'static str,
}

impl ItemDescriptor {
    /// Checks that the object names the item.
    pub fn new(kind: ItemKind, json: Map<String, Json>) -> Result<Self, ItemShapeError> {
        match json.get(kind.key_field()).and_then(Json::as_str) {
            Some(k) if !k.is_empty() => Ok(ItemDescriptor { kind, json }),
            _ => Err(ItemShapeError {
                kind,
                field: kind.key_field(),
            }),
        }
    }

    /// The prompt's name, the resource's URI or the template's URI
    /// template.
    pub fn key(&self) -> &str {
        self.json
            .get(self.kind.key_field())
            .and_then(Json::as_str)
            .unwrap_or_default()
    }

    /// First 16 bytes of SHA-256(`"agent-bgp/<kind>-descriptor/v1\0"` ||
    /// canonical JSON of the listed object).
    pub fn hash(&self) -> DescriptorHash {
        descriptor_hash(self.kind, &self.json)
    }
}

/// The hash a route carries for a listed item (see [`ItemDescriptor::hash`]).
pub fn descriptor_hash(kind: ItemKind, json: &Map<String, Json>) -> DescriptorHash {
    let mut s = String::new();
    write_canonical_json(&Json::Object(json.clone()), &mut s);
    let mut h = Sha256::new();
    h.update(b"agent-bgp/");
    h.update(kind.name().as_bytes());
    h.update(b"-descriptor/v1\0");
    h.update(s.as_bytes());
    let d = h.finalize();
    let mut out = [0u8; 16];
    out.copy_from_slice(&d[..16]);
    DescriptorHash(out)
}

/// The route prefixes of an agent's items of one kind (see the module
/// documentation): `a/b/*` -> `a/b/prompt/*`, then the segment rules of
/// tool routes.
pub fn item_routes<'a>(
    agent_prefix: &Prefix,
    kind: ItemKind,
    keys: impl IntoIterator<Item = &'a str>,
) -> ToolRoutes {
    let base = agent_prefix.base();
    let text = if base.is_empty() {
        format!("{}/*", kind.name())
    } else {
        format!("{base}/{}/*", kind.name())
    };
    match Prefix::new(&text) {
        Ok(kind_prefix) => tool_routes(&kind_prefix, keys),
        Err(source) => ToolRoutes {
            routes: BTreeMap::new(),
            rejected: keys
                .into_iter()
                .map(|k| {
                    let e = ToolRouteError::Prefix {
                        prefix: agent_prefix.to_string(),
                        tool: k.to_string(),
                        source: source.clone(),
                    };
                    (k.to_string(), e)
                })
                .collect(),
        },
    }
}

/// Front names of items: a name (prompt name, resource URI, template) that
/// no other origin uses is kept as is; names two origins share are told
/// apart by a short hash of the origin (`name_1a2b3c4d` for prompts,
/// `abgp-1a2b3c4d+uri` for URIs, a valid URI scheme prefix that
/// [`strip_uri_tag`] takes off again). A function of the set of keys.
pub fn front_item_names(kind: ItemKind, keys: &[(String, String)]) -> Vec<String> {
    let mut count: HashMap<&str, usize> = HashMap::new();
    for (_, name) in keys {
        *count.entry(name.as_str()).or_default() += 1;
    }
    keys.iter()
        .map(|(origin, name)| {
            if count.get(name.as_str()) == Some(&1) {
                return name.clone();
            }
            let tag = origin_tag(origin, name);
            match kind {
                ItemKind::Prompt => format!("{name}_{tag}"),
                ItemKind::Resource | ItemKind::Template => format!("abgp-{tag}+{name}"),
            }
        })
        .collect()
}

fn origin_tag(origin: &str, name: &str) -> String {
    let mut h = Sha256::new();
    h.update(origin.as_bytes());
    h.update([0]);
    h.update(name.as_bytes());
    hex::encode(&h.finalize()[..4])
}

/// `abgp-<8 hex>+rest` -> `rest`; anything else unchanged.
pub fn strip_uri_tag(uri: &str) -> &str {
    let Some(rest) = uri.strip_prefix("abgp-") else {
        return uri;
    };
    match rest.split_once('+') {
        Some((tag, inner)) if tag.len() == 8 && tag.bytes().all(|b| b.is_ascii_hexdigit()) => inner,
        _ => uri,
    }
}

/// Whether `uri` is one the RFC 6570 template can produce, read the way
/// MCP servers use templates: `{var}` is one or more characters other than
/// `/`, `?`, `#` and `,`; `{+var}` and `{#var}` any characters;
/// `{?a,b}` and `{&a}` an optional query part; literal text must match
/// exactly. Variable values are returned by name.
pub fn match_template(template: &str, uri: &str) -> Option<BTreeMap<String, String>> {
    let mut parts: Vec<Part<'_>> = Vec::new();
    let mut rest = template;
    while let Some(open) = rest.find('{') {
        if open > 0 {
            parts.push(Part::Lit(&rest[..open]));
        }
        let close = rest[open..].find('}')? + open;
        let expr = &rest[open + 1..close];
        let (op, names) = match expr.chars().next() {
            Some(c @ ('+' | '#' | '?' | '&' | '/' | '.' | ';')) => (Some(c), &expr[1..]),
            _ => (None, expr),
        };
        parts.push(Part::Var(op, names));
        rest = &rest[close + 1..];
    }
    if !rest.is_empty() {
        parts.push(Part::Lit(rest));
    }
    let mut vars = BTreeMap::new();
    if match_parts(&parts, uri, &mut vars) {
        Some(vars)
    } else {
        None
    }
}

enum Part<'a> {
    Lit(&'a str),
    Var(Option<char>, &'a str),
}

fn match_parts(parts: &[Part<'_>], s: &str, vars: &mut BTreeMap<String, String>) -> bool {
    let Some((first, more)) = parts.split_first() else {
        return s.is_empty();
    };
    match first {
        Part::Lit(l) => s
            .strip_prefix(l)
            .is_some_and(|rest| match_parts(more, rest, vars)),
        Part::Var(Some('?' | '&'), _) => {
            // Optional query: everything up to a fragment, or nothing.
            if match_parts(more, s, vars) {
                return true;
            }
            let lead = if matches!(first, Part::Var(Some('?'), _)) {
                '?'
            } else {
                '&'
            };
            if !s.starts_with(lead) {
                return false;
            }
            let end = s.find('#').unwrap_or(s.len());
            (1..=end).rev().any(|i| match_parts(more, &s[i..], vars))
        }
        Part::Var(op, names) => {
            let any = matches!(op, Some('+' | '#'));
            let s = match op {
                Some(c @ ('#' | '/' | '.' | ';')) => match s.strip_prefix(*c) {
                    Some(r) => r,
                    None => return false,
                },
                _ => s,
            };
            // Longest first, so a greedy `{+path}` before a literal works.
            let max = if any {
                s.len()
            } else {
                s.find(['/', '?', '#', ',']).unwrap_or(s.len())
            };
            for end in (1..=max).rev() {
                if !s.is_char_boundary(end) {
                    continue;
                }
                if match_parts(more, &s[end..], vars) {
                    vars.insert(names.to_string(), s[..end].to_string());
                    return true;
                }
            }
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn obj(v: Json) -> Map<String, Json> {
        v.as_object().cloned().unwrap()
    }

    #[test]
    fn items_need_their_key_and_hash_by_content_and_kind() {
        assert!(ItemDescriptor::new(ItemKind::Resource, obj(json!({"name": "x"}))).is_err());
        let a =
            ItemDescriptor::new(ItemKind::Prompt, obj(json!({"name": "p", "title": "T"}))).unwrap();
        let b =
            ItemDescriptor::new(ItemKind::Prompt, obj(json!({"title": "T", "name": "p"}))).unwrap();
        assert_eq!(a.hash(), b.hash());
        let c = ItemDescriptor {
            kind: ItemKind::Template,
            json: a.json.clone(),
        };
        assert_ne!(a.hash(), c.hash(), "the kind is part of the hash");
        assert_eq!(a.key(), "p");
    }

    #[test]
    fn item_routes_sit_one_level_below_tools() {
        let p = Prefix::new("util/x/*").unwrap();
        let r = item_routes(&p, ItemKind::Resource, ["test://static-text"]);
        let (key, prefix) = r.routes.into_iter().next().unwrap();
        assert_eq!(key, "test://static-text");
        assert!(prefix.as_str().starts_with("util/x/resource/"), "{prefix}");
        let r = item_routes(&Prefix::new("*").unwrap(), ItemKind::Prompt, ["hello"]);
        assert_eq!(r.routes["hello"].as_str(), "prompt/hello");
    }

    #[test]
    fn shared_names_get_origin_tags_that_strip_back() {
        let keys = vec![
            ("a/resource/x".to_string(), "test://x".to_string()),
            ("b/resource/x".to_string(), "test://x".to_string()),
            ("b/resource/y".to_string(), "test://y".to_string()),
        ];
        let names = front_item_names(ItemKind::Resource, &keys);
        assert_eq!(names[2], "test://y");
        assert_ne!(names[0], names[1]);
        assert!(names[0].starts_with("abgp-"), "{}", names[0]);
        assert_eq!(strip_uri_tag(&names[0]), "test://x");
        assert_eq!(strip_uri_tag("test://x"), "test://x");
        assert_eq!(strip_uri_tag("abgp-zz+x"), "abgp-zz+x");
        let p = front_item_names(
            ItemKind::Prompt,
            &[("a".into(), "p".into()), ("b".into(), "p".into())],
        );
        assert!(p[0].starts_with("p_") && p[0] != p[1]);
    }

    #[test]
    fn templates_match_what_they_can_produce() {
        let t = "test://template/{id}/data";
        assert_eq!(
            match_template(t, "test://template/123/data").and_then(|v| v.get("id").cloned()),
            Some("123".into())
        );
        assert!(match_template(t, "test://template/1/2/data").is_none());
        assert!(match_template(t, "test://template//data").is_none());
        assert!(match_template(t, "test://other/1/data").is_none());
        assert!(match_template("file:///{+path}", "file:///a/b/c.txt").is_some());
        assert!(match_template("db://t{?limit,offset}", "db://t").is_some());
        assert!(match_template("db://t{?limit,offset}", "db://t?limit=3").is_some());
        assert!(match_template("db://t{?limit}", "db://tx").is_none());
        assert!(match_template("x://{a}{", "x://1").is_none());
    }
}
