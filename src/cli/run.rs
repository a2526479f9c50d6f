//! `abgp run`: loads node.toml, sets up logging, runs the node until
//! SIGINT or SIGTERM, and prints a start-up summary on stdout (logs go to
//! stderr).

use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::Args;
use tracing_subscriber::EnvFilter;

use agent_bgp::config::NodeConfig;
use agent_bgp::node::{self, Started};

#[derive(Debug, Args)]
pub struct RunArgs {
    /// The node's node.toml.
    #[arg(long)]
    pub config: PathBuf,
    /// Log as JSON lines instead of human-readable text.
    #[arg(long)]
    pub log_json: bool,
}

fn init_logging(level: &str, json: bool) {
    let filter = EnvFilter::try_from_default_env()
        .or_else(|_| EnvFilter::try_new(level))
        .unwrap_or_else(|_| EnvFilter::new("info"));
    let b = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::stderr().is_terminal())
        .with_writer(std::io::stderr);
    if json {
        b.json().init();
    } else {
        b.init();
    }
}

fn print_started(s: &Started) {
    let mut out = std::io::stdout().lock();
    let mut lines = vec![
        format!("abgp {} running", env!("CARGO_PKG_VERSION")),
        format!("  peer id     {}", s.peer_id),
        format!("  node id     {}", s.node_id),
        format!("  asn         {} ({})", s.asn.0, s.asn_source),
        format!(
            "  federation  {}{}",
            s.federation,
            if s.bootstrap { " (bootstrap node)" } else { "" }
        ),
    ];
    if s.listen.is_empty() {
        lines.push("  listen      (none)".into());
    }
    for (i, a) in s.listen.iter().enumerate() {
        lines.push(format!(
            "  {}  {a}",
            if i == 0 { "listen    " } else { "          " }
        ));
    }
    lines.push(match s.admin {
        Some(a) => format!("  admin       http://{a}"),
        None => "  admin       off".into(),
    });
    lines.push(format!(
        "  policy      {}",
        s.policy
            .as_ref()
            .map_or("none (RFC 8212: nothing crosses AS borders)".into(), |p| p
                .display()
                .to_string())
    ));
    lines.push(format!(
        "  store       {} (restored {} routes from {} peers; previous shutdown {})",
        s.store_dir.display(),
        s.restored_routes,
        s.restored_peers,
        if s.previous_shutdown_clean {
            "clean"
        } else {
            "NOT clean"
        }
    ));
    lines.push(format!(
        "  neighbors   {} configured, {} static routes",
        s.neighbors, s.originated
    ));
    lines.push(match s.mcp {
        Some(a) => format!("  mcp front   http://{a}/mcp ({} agents hosted)", s.agents),
        None => format!("  mcp front   off ({} agents hosted)", s.agents),
    });
    for l in lines {
        let _ = writeln!(out, "{l}");
    }
    let _ = out.flush();
}

async fn shutdown_signal() {
    let ctrl_c = async {
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {}
        _ = term => {}
    }
}

pub fn run(a: RunArgs) -> anyhow::Result<ExitCode> {
    let cfg = NodeConfig::load(&a.config)?;
    init_logging(&cfg.config.log.level, a.log_json);
    let rt = runtime(cfg.config.node.worker_threads).context("starting the async runtime")?;
    rt.block_on(node::run(cfg, shutdown_signal(), print_started))?;
    Ok(ExitCode::SUCCESS)
}

/// The runtime for `node.worker_threads`: one thread by default (every
/// hand-off of a call stays on it), else a work-stealing pool.
fn runtime(threads: usize) -> std::io::Result<tokio::runtime::Runtime> {
    if threads == 1 {
        return tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .thread_name("abgp")
            .build();
    }
    let mut b = tokio::runtime::Builder::new_multi_thread();
    if threads > 1 {
        b.worker_threads(threads);
    }
    b.enable_all().thread_name("abgp").build()
}
