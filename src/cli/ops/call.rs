//! `abgp call NAME --args JSON`: calls a tool through the node's MCP front,
//! as any MCP client would, and prints the result and the hops it took.

use std::borrow::Cow;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use clap::Args;
use rmcp::ServiceExt;
use rmcp::model::CallToolRequestParams;
use rmcp::transport::StreamableHttpClientTransport;
use rmcp::transport::streamable_http_client::StreamableHttpClientTransportConfig;
use serde_json::Value;

use agent_bgp::mcp::front::TRACE_META;

use super::{
    EXIT_FAILED, EXIT_NOT_FOUND, EXIT_UNREACHABLE, Node, Target, fail, micros, print_json,
};

#[derive(Debug, Args)]
pub struct CallArgs {
    #[command(flatten)]
    pub target: Target,
    /// The tool's name as `abgp tools` lists it.
    pub name: String,
    /// The arguments, a JSON object.
    #[arg(long, default_value = "{}")]
    pub args: String,
    /// Call through this front view (`[[mcp.views]]`) with its token,
    /// instead of `/mcp`.
    #[arg(long)]
    pub view: Option<String>,
    /// How long to wait for the answer.
    #[arg(long, default_value = "60s", value_parser = humantime_secs)]
    pub timeout: Duration,
}

/// `30s`, `2m`, `1500ms`, or plain seconds.
fn humantime_secs(s: &str) -> Result<Duration, String> {
    let bad = || format!("{s:?}: give a duration like 30s, 2m or 1500ms");
    let (n, unit) = s
        .find(|c: char| !c.is_ascii_digit())
        .map_or((s, "s"), |i| (&s[..i], &s[i..]));
    let n: u64 = n.parse().map_err(|_| bad())?;
    let d = match unit {
        "ms" => Duration::from_millis(n),
        "s" => Duration::from_secs(n),
        "m" => Duration::from_secs(n.saturating_mul(60)),
        _ => return Err(bad()),
    };
    if d.is_zero() {
        return Err(bad());
    }
    Ok(d)
}

pub fn call(a: CallArgs) -> anyhow::Result<ExitCode> {
    let args: Value = serde_json::from_str(&a.args)
        .map_err(|e| fail(EXIT_FAILED, format!("--args is not JSON: {e}")))?;
    let Value::Object(args) = args else {
        return Err(fail(EXIT_FAILED, "--args must be a JSON object"));
    };
    let node = Node::open(&a.target)?;
    let (url, token) = front_endpoint(&node, a.view.as_deref())?;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    let name = a.name.clone();
    let result = rt.block_on(async move {
        let client = session(&url, token.as_ref(), a.timeout).await?;
        let mut params = CallToolRequestParams::new(Cow::Owned(name.clone()));
        params.arguments = Some(args);
        let r = tokio::time::timeout(a.timeout, client.call_tool(params)).await;
        let _ = client.cancel().await;
        match r {
            Err(_) => Err(fail(
                EXIT_FAILED,
                format!("{name}: no answer within {:?}", a.timeout),
            )),
            Ok(Err(e)) => {
                let text = e.to_string();
                // The front answers an unknown name with invalid params.
                let code = if text.contains("unknown tool")
                    || text.contains("not found")
                    || text.contains("is routed to this node")
                {
                    EXIT_NOT_FOUND
                } else {
                    EXIT_FAILED
                };
                Err(fail(code, format!("{name}: {text}")))
            }
            Ok(Ok(r)) => Ok(r),
        }
    })?;
    let v = serde_json::to_value(&result)?;
    let is_error = v["isError"] == true;
    if a.target.json {
        print_json(&v)?;
    } else {
        print_result(&v);
    }
    Ok(if is_error {
        ExitCode::from(EXIT_FAILED)
    } else {
        ExitCode::SUCCESS
    })
}

/// The URL and token of `/mcp`, or of the front view `view`.
pub fn front_endpoint(
    node: &Node,
    view: Option<&str>,
) -> anyhow::Result<(String, Option<agent_bgp::mcp::config::BearerToken>)> {
    let mcp = node.get("/v1/mcp")?;
    let Some(url) = mcp["url"].as_str().map(str::to_string) else {
        return Err(fail(
            EXIT_UNREACHABLE,
            "the node's MCP front is off ([mcp] listen = \"off\")",
        ));
    };
    Ok(match view {
        Some(v) => {
            let (u, t) = super::view_endpoint(&node.cfg, &url, v)?;
            (u, Some(t))
        }
        None => (url, node.cfg.config.mcp.bearer_token.clone()),
    })
}

/// An MCP client session with the front at `url`, as any client makes one.
pub async fn session(
    url: &str,
    token: Option<&agent_bgp::mcp::config::BearerToken>,
    timeout: Duration,
) -> anyhow::Result<rmcp::service::RunningService<rmcp::RoleClient, ()>> {
    let mut cfg = StreamableHttpClientTransportConfig::with_uri(url);
    if let Some(t) = token {
        cfg = cfg.auth_header(t.expose());
    }
    tokio::time::timeout(
        timeout,
        ().serve(StreamableHttpClientTransport::from_config(cfg)),
    )
    .await
    .map_err(|_| {
        fail(
            EXIT_UNREACHABLE,
            format!("no MCP session with {url} in time"),
        )
    })?
    .map_err(|e| fail(EXIT_UNREACHABLE, format!("MCP session with {url}: {e}")))
}

fn print_result(v: &Value) {
    if v["isError"] == true {
        println!("the tool reported an error:");
    }
    for c in v["content"].as_array().into_iter().flatten() {
        match c["type"].as_str() {
            Some("text") => println!("{}", c["text"].as_str().unwrap_or("")),
            Some(kind) => println!(
                "[{kind} content{}]",
                c["mimeType"]
                    .as_str()
                    .map(|m| format!(", {m}"))
                    .unwrap_or_default()
            ),
            None => println!("{c}"),
        }
    }
    if let Some(s) = v.get("structuredContent").filter(|s| !s.is_null()) {
        println!("structured: {s}");
    }
    let trace = &v["_meta"][TRACE_META];
    if let Some(hops) = trace.as_array().filter(|h| !h.is_empty()) {
        println!("\nhops (this node first):");
        for (i, h) in hops.iter().enumerate() {
            let role = if i == 0 && hops.len() > 1 {
                "this node"
            } else if i + 1 == hops.len() {
                "origin"
            } else {
                "transit"
            };
            println!(
                "  {}. AS{} {:<9} own time {:>10}, total {:>10}",
                i + 1,
                h["asn"],
                role,
                micros(h["hopUs"].as_u64().unwrap_or(0)),
                micros(h["elapsedUs"].as_u64().unwrap_or(0)),
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    #[test]
    fn timeouts_parse_with_units() {
        assert_eq!(super::humantime_secs("30s"), Ok(Duration::from_secs(30)));
        assert_eq!(super::humantime_secs("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(
            super::humantime_secs("1500ms"),
            Ok(Duration::from_millis(1500))
        );
        assert_eq!(super::humantime_secs("5"), Ok(Duration::from_secs(5)));
        assert!(super::humantime_secs("0s").is_err());
        assert!(super::humantime_secs("5h").is_err());
        assert!(super::humantime_secs("x").is_err());
    }
}
