//! The operator commands that read a running node through its admin API:
//! `status`, `peers`, `routes`, `why`, `tools`, `call`, `calls`, `policy
//! check`, `trust`. Human tables by default, the admin API's JSON with `--json`.
//!
//! Exit codes (docs/operations.md):
//!
//! | code | meaning |
//! |---|---|
//! | 0 | done |
//! | 1 | the node answered and the answer is a failure (a tool error, an invalid policy) |
//! | 2 | bad command line (clap) |
//! | 3 | the node cannot be reached: not running, admin API off, token refused |
//! | 4 | not found: no such peer, prefix or tool |

pub mod call;
pub mod calls;
pub mod peers;
pub mod policy;
pub mod routes;
pub mod status;
pub mod tools;
pub mod trust;
pub mod why;

use std::path::PathBuf;

use clap::Args;
use comfy_table::{Cell, CellAlignment, Table};
use serde_json::Value;

use agent_bgp::config::{LoadedConfig, NodeConfig};

use super::admin_http::AdminClient;

/// A failure with its exit code.
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct Failure {
    pub code: u8,
    pub message: String,
}

pub const EXIT_FAILED: u8 = 1;
pub const EXIT_UNREACHABLE: u8 = 3;
pub const EXIT_NOT_FOUND: u8 = 4;

pub fn fail(code: u8, message: impl Into<String>) -> anyhow::Error {
    Failure {
        code,
        message: message.into(),
    }
    .into()
}

/// Which node, and how to print.
#[derive(Debug, Clone, Args)]
pub struct Target {
    /// The running node's node.toml.
    #[arg(long, short = 'c', env = "ABGP_CONFIG", default_value = "node.toml")]
    pub config: PathBuf,
    /// Print the admin API's JSON instead of a table.
    #[arg(long)]
    pub json: bool,
}

/// A connection to the running node's admin API.
pub struct Node {
    pub cfg: LoadedConfig,
    client: AdminClient,
}

impl Node {
    pub fn open(t: &Target) -> anyhow::Result<Node> {
        let cfg = NodeConfig::load(&t.config).map_err(|e| {
            fail(
                EXIT_UNREACHABLE,
                format!(
                    "{}: {e} (point --config or ABGP_CONFIG at the node's node.toml)",
                    t.config.display()
                ),
            )
        })?;
        let client = AdminClient::from_config(&cfg)
            .map_err(|e| fail(EXIT_UNREACHABLE, super::error_text(&e)))?;
        Ok(Node { cfg, client })
    }

    /// GET a JSON document; 404 is [`EXIT_NOT_FOUND`].
    pub fn get(&self, path: &str) -> anyhow::Result<Value> {
        self.call("GET", path, None)
    }

    pub fn post(&self, path: &str, body: &Value) -> anyhow::Result<Value> {
        self.call("POST", path, Some(&body.to_string()))
    }

    /// Like [`Node::get`], but a 404 (an endpoint this node does not
    /// have, or nothing there) is `None`.
    pub fn get_optional(&self, path: &str) -> anyhow::Result<Option<Value>> {
        match self.get(path) {
            Ok(v) => Ok(Some(v)),
            Err(e)
                if e.downcast_ref::<Failure>()
                    .is_some_and(|f| f.code == EXIT_NOT_FOUND) =>
            {
                Ok(None)
            }
            Err(e) => Err(e),
        }
    }

    fn call(&self, method: &str, path: &str, body: Option<&str>) -> anyhow::Result<Value> {
        let (code, text) = self
            .client
            .request(method, path, body)
            .map_err(|e| fail(EXIT_UNREACHABLE, super::error_text(&e)))?;
        let value: Option<Value> = serde_json::from_str(&text).ok();
        let detail = || {
            value
                .as_ref()
                .and_then(|v| v["error"].as_str().map(str::to_string))
                .unwrap_or_else(|| text.trim().to_string())
        };
        match code {
            200..=299 => value.ok_or_else(|| {
                fail(
                    EXIT_FAILED,
                    format!("the admin API answered {path} with something that is not JSON"),
                )
            }),
            404 => Err(fail(EXIT_NOT_FOUND, detail())),
            _ => Err(fail(
                EXIT_FAILED,
                format!("the node answered {code}: {}", detail()),
            )),
        }
    }
}

/// The endpoint of a front view (`[[mcp.views]]`): its URL under the
/// front's `/mcp` URL and its token from its file.
pub fn view_endpoint(
    cfg: &LoadedConfig,
    front_url: &str,
    name: &str,
) -> anyhow::Result<(String, agent_bgp::mcp::config::BearerToken)> {
    let Some(v) = cfg.config.mcp.views.iter().find(|v| v.name == name) else {
        let names: Vec<&str> = cfg
            .config
            .mcp
            .views
            .iter()
            .map(|v| v.name.as_str())
            .collect();
        return Err(fail(
            EXIT_NOT_FOUND,
            format!(
                "{}: no [[mcp.views]] named {name:?} (views: {})",
                cfg.path.display(),
                if names.is_empty() {
                    "none".to_string()
                } else {
                    names.join(", ")
                }
            ),
        ));
    };
    let path = cfg.resolve(&v.token_file());
    let token = agent_bgp::admin::AdminToken::load(&path).map_err(|e| {
        fail(
            EXIT_UNREACHABLE,
            format!(
                "the token of view {name:?} ({}): {e} (the node writes it at its first start)",
                path.display()
            ),
        )
    })?;
    Ok((
        format!("{}/{name}", front_url.trim_end_matches('/')),
        agent_bgp::mcp::config::BearerToken::new(token.expose()),
    ))
}

/// `s` percent-encoded but for the unreserved characters (RFC 3986): a
/// query value for the admin API, or the token in the looking glass's
/// fragment (which may hold any printable ASCII, `+ & % #` included).
pub fn percent_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Prints a JSON value the way `--json` promises: pretty, one document.
pub fn print_json(v: &Value) -> anyhow::Result<()> {
    println!("{}", serde_json::to_string_pretty(v)?);
    Ok(())
}

/// A plain, aligned table (no borders): what `birdc` and `gobgp` print.
pub fn table(header: &[&str]) -> Table {
    let mut t = Table::new();
    t.load_preset(comfy_table::presets::NOTHING)
        .set_content_arrangement(comfy_table::ContentArrangement::Disabled)
        .set_header(header.iter().map(Cell::new));
    // Two spaces between columns, none before the first.
    for col in t.column_iter_mut() {
        col.set_padding((0, 2));
    }
    t
}

/// Right-aligns the given columns (numbers).
pub fn align_right(t: &mut Table, columns: &[usize]) {
    for c in columns {
        if let Some(col) = t.column_mut(*c) {
            col.set_cell_alignment(CellAlignment::Right);
        }
    }
}

/// Prints a table with its trailing spaces trimmed (stable golden output).
pub fn print_table(t: &Table) {
    for line in t.to_string().lines() {
        println!("{}", line.trim_end());
    }
}

/// `12D3KooWAbc…xyz123`: enough of a peer id to tell peers apart in a
/// table; `--json` and the detail views print it whole.
pub fn short_peer(id: &str) -> String {
    let n = id.chars().count();
    if n <= 20 {
        return id.to_string();
    }
    let head: String = id.chars().take(8).collect();
    let tail: String = id.chars().skip(n - 6).collect();
    format!("{head}…{tail}")
}

/// `1d02h`, `3h04m`, `5m06s`, `7s`, `850ms`.
pub fn duration_ms(ms: u64) -> String {
    let s = ms / 1000;
    match s {
        0 => format!("{ms}ms"),
        1..=59 => format!("{s}s"),
        60..=3599 => format!("{}m{:02}s", s / 60, s % 60),
        3600..=86_399 => format!("{}h{:02}m", s / 3600, (s % 3600) / 60),
        _ => format!("{}d{:02}h", s / 86_400, (s % 86_400) / 3600),
    }
}

/// Microseconds as `1.23 ms` or `456 µs`.
pub fn micros(us: u64) -> String {
    if us >= 1000 {
        format!("{:.2} ms", us as f64 / 1000.0)
    } else {
        format!("{us} µs")
    }
}

/// An AS path as `AS1 AS2`, or `(local)` when empty.
pub fn as_path(v: &Value) -> String {
    let path: Vec<String> = v
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(Value::as_u64)
                .map(|n| n.to_string())
                .collect()
        })
        .unwrap_or_default();
    if path.is_empty() {
        "(local)".into()
    } else {
        path.join(" ")
    }
}

/// A string field, or `-`.
pub fn text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => "-".into(),
        other => other.to_string(),
    }
}

/// Strings from a JSON array, joined.
pub fn joined(v: &Value, sep: &str) -> String {
    let items: Vec<String> = v
        .as_array()
        .map(|a| a.iter().map(text).collect())
        .unwrap_or_default();
    if items.is_empty() {
        "-".into()
    } else {
        items.join(sep)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_like_birdc() {
        assert_eq!(duration_ms(850), "850ms");
        assert_eq!(duration_ms(7_000), "7s");
        assert_eq!(duration_ms(306_000), "5m06s");
        assert_eq!(duration_ms(3 * 3_600_000 + 4 * 60_000), "3h04m");
        assert_eq!(duration_ms(86_400_000 + 2 * 3_600_000), "1d02h");
    }

    #[test]
    fn peer_ids_are_shortened_only_when_long() {
        assert_eq!(short_peer("abc"), "abc");
        let id = "12D3KooWDgAn7Yjr1J4Yhw5xzM7zjcXiE9KMw8emaesiEwsE9uLd";
        assert_eq!(short_peer(id), "12D3KooW…sE9uLd");
    }

    #[test]
    fn as_paths_print_local_when_empty() {
        assert_eq!(as_path(&serde_json::json!([])), "(local)");
        assert_eq!(as_path(&serde_json::json!([1, 2])), "1 2");
    }
}
