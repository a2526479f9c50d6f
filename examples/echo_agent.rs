//! The example agent as a standalone program (the same tools as
//! `abgp example-agent`; see `agent_bgp::mcp::example_agent`).
//!
//! ```text
//! cargo run --example echo_agent                        # MCP over stdio
//! cargo run --example echo_agent -- --http 127.0.0.1:0  # streamable HTTP at /mcp
//! cargo run --example echo_agent -- --conformance       # plus the conformance fixtures
//! ```

use agent_bgp::mcp::example_agent::{self, Options};

const USAGE: &str = "usage: echo_agent [--http ADDR] [--conformance]";

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "warn".into()),
        )
        .init();
    let mut http = None;
    let mut options = Options::default();
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--http" if http.is_none() => match args.next() {
                Some(addr) => http = Some(addr),
                None => anyhow::bail!("--http needs an address; {USAGE}"),
            },
            "--conformance" if !options.conformance => options.conformance = true,
            other => anyhow::bail!("unexpected argument {other:?}; {USAGE}"),
        }
    }
    match http {
        Some(addr) => example_agent::serve_http(&addr, options).await?,
        None => example_agent::serve_stdio(options).await?,
    }
    Ok(())
}
