//! `abgp mcp --config node.toml`: the node's MCP front on stdin/stdout, for
//! MCP clients that launch a command.
//!
//! It attaches to the running node: the front's URL comes from the admin
//! API (`/v1/mcp`, which knows the port even when node.toml says port 0),
//! or from `[mcp] listen` when the admin API is off (the admin token is
//! read from its file). The front's bearer token, if any, is read from
//! node.toml. Logs go to stderr; stdout is the protocol.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, bail};
use clap::Args;

use agent_bgp::config::NodeConfig;
use agent_bgp::mcp::front::bridge;

use super::admin_http::AdminClient;

#[derive(Debug, Args)]
pub struct McpArgs {
    /// The running node's node.toml.
    #[arg(long)]
    pub config: PathBuf,
    /// The front's URL, when it cannot be found from the config.
    #[arg(long)]
    pub url: Option<String>,
    /// Serve this front view (`[[mcp.views]]`, `/mcp/<name>`) with its
    /// token, instead of `/mcp`.
    #[arg(long)]
    pub view: Option<String>,
}

fn front_url(a: &McpArgs) -> anyhow::Result<(String, Option<agent_bgp::mcp::config::BearerToken>)> {
    let cfg = NodeConfig::load(&a.config)?;
    let token = cfg.config.mcp.bearer_token.clone();
    if let Some(u) = &a.url {
        return Ok((u.clone(), token));
    }
    if let Ok(admin) = AdminClient::from_config(&cfg)
        && let Ok((200, body)) = admin.request("GET", "/v1/mcp", None)
    {
        let v: serde_json::Value = serde_json::from_str(&body).context("the node's /v1/mcp")?;
        if let Some(u) = v["url"].as_str() {
            return Ok((u.to_string(), token));
        }
        bail!("the node's MCP front is off ([mcp] listen = \"off\")");
    }
    match cfg.config.mcp.listen.0 {
        Some(a) if a.port() != 0 => Ok((format!("http://{a}/mcp"), token)),
        _ => bail!("cannot find the node's MCP front: is the node running? (or pass --url)"),
    }
}

pub fn mcp(a: McpArgs) -> anyhow::Result<ExitCode> {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(false)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "warn".into()),
        )
        .init();
    let (url, token) = front_url(&a)?;
    let (url, token) = match &a.view {
        Some(v) => {
            let cfg = NodeConfig::load(&a.config)?;
            let (u, t) = super::ops::view_endpoint(&cfg, &url, v)?;
            (u, Some(t))
        }
        None => (url, token),
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    rt.block_on(bridge::run_stdio(&url, token))?;
    Ok(ExitCode::SUCCESS)
}
