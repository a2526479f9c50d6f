//! The `abgp` command line (clap).
//!
//! | command | what it does |
//! |---|---|
//! | `abgp init --dir DIR [--asn N] [--federation NAME]` | writes DIR/node.toml and the identity key |
//! | `abgp run --config DIR/node.toml [--log-json]` | runs a node |
//! | `abgp store check\|dump\|reset --dir DIR` | inspects or resets a node's RIB store |
//! | `abgp demo` | a narrated tour of the routing core (simulated) |
//! | `abgp asn authority-init\|whoami\|issue\|verify` | ASN certificates (see `asn.rs`) |
//!
//! Later commands (`mcp`, `why`) are added as further [`Command`] variants.

mod asn;
mod init;
mod run;
mod store;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(
    name = "abgp",
    version,
    about = "agent-bgp: routes MCP tools between nodes the way BGP routes IP prefixes"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Create a node directory: a commented node.toml and the identity key.
    Init(init::InitArgs),
    /// Run a node from its node.toml.
    Run(run::RunArgs),
    /// Inspect or reset a node's RIB store (docs/store.md).
    #[command(subcommand)]
    Store(store::StoreCommand),
    /// A narrated tour of the routing core on a simulated corporate network.
    Demo,
    /// ASN certificates: authority keys, issuing and checking certificates.
    #[command(subcommand)]
    Asn(asn::AsnCommand),
}

fn demo() -> anyhow::Result<ExitCode> {
    use std::io::Write;
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    agent_bgp::sim::tour::corporate_tour(&mut out)?;
    out.flush()?;
    Ok(ExitCode::SUCCESS)
}

pub fn main() -> ExitCode {
    let cli = Cli::parse();
    let r = match cli.command {
        Command::Init(a) => init::init(a),
        Command::Run(a) => run::run(a),
        Command::Store(c) => store::store(c),
        Command::Demo => demo(),
        Command::Asn(c) => asn::asn(c),
    };
    match r {
        Ok(code) => code,
        Err(e) => {
            eprintln!("abgp: {}", error_text(&e));
            ExitCode::FAILURE
        }
    }
}

/// The error and its causes, skipping causes whose text the message
/// already includes (most of our errors name their cause themselves).
fn error_text(e: &anyhow::Error) -> String {
    let mut text = e.to_string();
    for cause in e.chain().skip(1) {
        let c = cause.to_string();
        if !text.contains(&c) {
            text.push_str(": ");
            text.push_str(&c);
        }
    }
    text
}
