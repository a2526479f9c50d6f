//! The module graph, checked: which top-level modules of `src` may name
//! which (the table below, also in docs/architecture.md), no cycles among
//! the modules inside one, and a core that names no adapter and no outside
//! system (files, clocks, tokio, libp2p, sled, rmcp, axum).
//!
//! The edges are read from the source text: `crate::<module>` paths and
//! `super::` paths resolved against the file's own module, in code that is
//! not a test (files named `tests.rs` or `proptests.rs`, and `#[cfg(test)]`
//! modules, are left out; comments and strings are ignored).

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Which top-level modules each may use. Keep docs/architecture.md in step.
const ALLOWED: &[(&str, &[&str])] = &[
    ("core", &[]),
    ("sim", &["core", "wire"]),
    ("wire", &["core"]),
    ("secret_file", &[]),
    ("logging", &[]),
    ("local_http", &["logging"]),
    ("identity", &["core", "wire", "secret_file"]),
    ("store", &["core", "wire"]),
    ("net", &["core", "wire", "identity", "logging"]),
    (
        "mcp",
        &["core", "wire", "identity", "logging", "local_http"],
    ),
    ("config", &["core", "wire", "identity", "mcp", "admin"]),
    (
        "admin",
        &[
            "core",
            "identity",
            "local_http",
            "logging",
            "mcp",
            "net",
            "secret_file",
        ],
    ),
    (
        "node",
        &[
            "admin",
            "config",
            "core",
            "identity",
            "local_http",
            "logging",
            "mcp",
            "net",
            "secret_file",
            "store",
            "wire",
        ],
    ),
];

/// What the core must never name: it is plain data and pure functions.
const CORE_FORBIDDEN: &[&str] = &[
    "std::fs",
    "std::net",
    "std::thread",
    "SystemTime::now",
    "Instant::now",
    "tokio",
    "libp2p",
    "sled",
    "rmcp",
    "axum",
    "hyper",
    "reqwest",
];

fn src() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        let p = e.path();
        if p.is_dir() {
            rust_files(&p, out);
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
}

/// `src/mcp/front/http.rs` -> ["mcp", "front", "http"]; `mod.rs` names
/// its directory.
fn module_path(file: &Path) -> Vec<String> {
    let rel = file.strip_prefix(src()).unwrap();
    let mut parts: Vec<String> = rel
        .iter()
        .map(|c| c.to_string_lossy().trim_end_matches(".rs").to_string())
        .collect();
    if parts.last().is_some_and(|l| l == "mod") {
        parts.pop();
    }
    parts
}

/// The source without comments, string literals and `#[cfg(test)]` items.
fn code_of(text: &str) -> String {
    let b = text.as_bytes();
    let mut out = String::with_capacity(text.len());
    let mut i = 0;
    while i < b.len() {
        if b[i..].starts_with(b"//") {
            while i < b.len() && b[i] != b'\n' {
                i += 1;
            }
        } else if b[i..].starts_with(b"/*") {
            i += 2;
            while i + 1 < b.len() && !b[i..].starts_with(b"*/") {
                i += 1;
            }
            i += 2;
        } else if b[i] == b'"' {
            i += 1;
            while i < b.len() && b[i] != b'"' {
                if b[i] == b'\\' {
                    i += 1;
                }
                i += 1;
            }
            i += 1;
            out.push_str("\"\"");
        } else if b[i..].starts_with(b"#[cfg(test)]") {
            // Skip the item that follows: up to its matching brace (or a
            // semicolon for `mod tests;`).
            i += b"#[cfg(test)]".len();
            let mut depth = 0usize;
            while i < b.len() {
                match b[i] {
                    b'{' => depth += 1,
                    b'}' => {
                        depth = depth.saturating_sub(1);
                        if depth == 0 {
                            i += 1;
                            break;
                        }
                    }
                    b';' if depth == 0 => {
                        i += 1;
                        break;
                    }
                    _ => {}
                }
                i += 1;
            }
        } else {
            out.push(b[i] as char);
            i += 1;
        }
    }
    out
}

/// The module paths a file's code names: `crate::a::b` -> [a, b];
/// `super::x` resolved from the file's module.
fn named_modules(code: &str, me: &[String]) -> Vec<Vec<String>> {
    let mut out = Vec::new();
    let words: Vec<&str> = code
        .split(|c: char| !(c.is_alphanumeric() || c == '_' || c == ':'))
        .filter(|w| w.contains("::"))
        .collect();
    for w in words {
        let segs: Vec<&str> = w.split("::").filter(|s| !s.is_empty()).collect();
        let (mut base, rest): (Vec<String>, &[&str]) = match segs.first() {
            Some(&"crate") => (Vec::new(), &segs[1..]),
            Some(&"super") => {
                let mut base = me.to_vec();
                let mut k = 0;
                while segs.get(k) == Some(&"super") {
                    base.pop();
                    k += 1;
                }
                (base, &segs[k..])
            }
            _ => continue,
        };
        for s in rest.iter().take(2) {
            if s.chars().next().is_some_and(|c| c.is_lowercase()) {
                base.push(s.to_string());
            } else {
                break;
            }
        }
        if !base.is_empty() {
            out.push(base);
        }
    }
    out
}

fn is_test_file(p: &Path) -> bool {
    p.file_name()
        .is_some_and(|n| n == "tests.rs" || n == "proptests.rs")
}

struct Graph {
    /// top-level -> top-level
    top: BTreeMap<String, BTreeSet<String>>,
    /// (top-level, second-level) -> second-levels of the same top-level
    inner: BTreeMap<String, BTreeMap<String, BTreeSet<String>>>,
    /// core files naming forbidden things: (file, what)
    core_violations: Vec<(String, String)>,
}

fn graph() -> Graph {
    let mut files = Vec::new();
    rust_files(&src(), &mut files);
    let mut g = Graph {
        top: BTreeMap::new(),
        inner: BTreeMap::new(),
        core_violations: Vec::new(),
    };
    for f in files {
        if is_test_file(&f) {
            continue;
        }
        let me = module_path(&f);
        let Some(top) = me.first().cloned() else {
            continue;
        };
        // The crate roots and the binary's command line are not modules of
        // the library graph.
        if top == "lib" || top == "main" || top == "cli" {
            continue;
        }
        let code = code_of(&std::fs::read_to_string(&f).unwrap());
        // The core and the MCP plane are sans-IO: the node drives them.
        let sans_io = top == "core" || (top == "mcp" && me.get(1).is_some_and(|m| m == "plane"));
        if sans_io {
            for bad in CORE_FORBIDDEN {
                let named = code
                    .split(|c: char| !(c.is_alphanumeric() || c == '_' || c == ':'))
                    .any(|w| {
                        w == *bad
                            || w.starts_with(&format!("{bad}::"))
                            || w.ends_with(&format!("::{bad}"))
                            || w.contains(&format!("::{bad}::"))
                    });
                if named {
                    g.core_violations
                        .push((f.display().to_string(), bad.to_string()));
                }
            }
        }
        let me_second = me.get(1).cloned();
        for m in named_modules(&code, &me) {
            if m[0] != top {
                g.top.entry(top.clone()).or_default().insert(m[0].clone());
            } else if let (Some(a), Some(b)) = (&me_second, m.get(1))
                && a != b
            {
                g.inner
                    .entry(top.clone())
                    .or_default()
                    .entry(a.clone())
                    .or_default()
                    .insert(b.clone());
            }
        }
    }
    g
}

/// A cycle in `edges`, if there is one.
fn cycle(edges: &BTreeMap<String, BTreeSet<String>>) -> Option<Vec<String>> {
    fn visit(
        n: &str,
        edges: &BTreeMap<String, BTreeSet<String>>,
        stack: &mut Vec<String>,
        done: &mut BTreeSet<String>,
    ) -> Option<Vec<String>> {
        if let Some(i) = stack.iter().position(|s| s == n) {
            let mut c = stack[i..].to_vec();
            c.push(n.to_string());
            return Some(c);
        }
        if done.contains(n) {
            return None;
        }
        stack.push(n.to_string());
        for m in edges.get(n).into_iter().flatten() {
            if let Some(c) = visit(m, edges, stack, done) {
                return Some(c);
            }
        }
        stack.pop();
        done.insert(n.to_string());
        None
    }
    let mut done = BTreeSet::new();
    for n in edges.keys() {
        if let Some(c) = visit(n, edges, &mut Vec::new(), &mut done) {
            return Some(c);
        }
    }
    None
}

#[test]
fn top_level_modules_name_only_what_the_table_allows() {
    let g = graph();
    let allowed: BTreeMap<&str, BTreeSet<&str>> = ALLOWED
        .iter()
        .map(|(m, deps)| (*m, deps.iter().copied().collect()))
        .collect();
    let mut wrong = Vec::new();
    for (from, tos) in &g.top {
        let Some(ok) = allowed.get(from.as_str()) else {
            wrong.push(format!(
                "{from}: not in the table (add it, and to docs/architecture.md)"
            ));
            continue;
        };
        for to in tos {
            if !ok.contains(to.as_str()) && allowed.contains_key(to.as_str()) {
                wrong.push(format!("{from} -> {to}"));
            }
        }
    }
    assert!(
        wrong.is_empty(),
        "edges the table does not allow:\n{}",
        wrong.join("\n")
    );
    assert!(cycle(&g.top).is_none(), "a cycle: {:?}", cycle(&g.top));
}

#[test]
fn the_core_names_no_adapter_and_no_outside_system() {
    let g = graph();
    assert!(
        g.top.get("core").is_none_or(|s| s.is_empty()),
        "core names {:?}",
        g.top.get("core")
    );
    assert!(
        g.core_violations.is_empty(),
        "the core names outside systems: {:?}",
        g.core_violations
    );
}

#[test]
fn the_mcp_plane_is_sans_io_like_the_core() {
    let g = graph();
    let plane: Vec<_> = g
        .core_violations
        .iter()
        .filter(|(f, _)| f.contains("mcp/plane"))
        .collect();
    assert!(
        plane.is_empty(),
        "the plane names outside systems: {plane:?}"
    );
}

#[test]
fn no_cycles_among_the_modules_inside_one() {
    let g = graph();
    for (top, edges) in &g.inner {
        assert!(
            cycle(edges).is_none(),
            "a cycle inside {top}: {:?}",
            cycle(edges)
        );
    }
}

#[test]
fn the_checker_sees_an_edge_added_by_hand() {
    // The same reading applied to text with a forbidden edge in it.
    let code = code_of(
        "use crate::node::Node;\n// use crate::admin::X; (a comment)\nfn f() { let s = \"crate::store\"; }\n#[cfg(test)]\nmod tests { use crate::sim::SimNet; }\n",
    );
    let me = vec!["core".to_string(), "engine".to_string()];
    let named: Vec<String> = named_modules(&code, &me)
        .into_iter()
        .map(|m| m.join("::"))
        .collect();
    assert_eq!(named, vec!["node"], "only the real edge counts");
    let rel = named_modules("use super::super::policy::X;", &me);
    assert_eq!(rel, vec![vec!["policy".to_string()]]);
    let mut edges = BTreeMap::new();
    edges.insert("a".to_string(), BTreeSet::from(["b".to_string()]));
    edges.insert("b".to_string(), BTreeSet::from(["a".to_string()]));
    assert!(cycle(&edges).is_some());
}
