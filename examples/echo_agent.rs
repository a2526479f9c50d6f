//! The example agent as a standalone program (the same tools as
//! `abgp example-agent`; see `agent_bgp::mcp::example_agent`).
//!
//! ```text
//! cargo run --example echo_agent                        # MCP over stdio
//! cargo run --example echo_agent -- --http 127.0.0.1:0  # streamable HTTP at /mcp
//! ```

use agent_bgp::mcp::example_agent;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "warn".into()),
        )
        .init();
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.as_slice() {
        [] => example_agent::serve_stdio().await?,
        [flag, addr] if flag == "--http" => example_agent::serve_http(addr).await?,
        _ => anyhow::bail!("usage: echo_agent [--http ADDR]"),
    }
    Ok(())
}
