//! The `abgp` command line (clap).
//!
//! | command | what it does |
//! |---|---|
//! | `abgp init --dir DIR [--asn N] [--federation NAME]` | writes DIR/node.toml and the identity key |
//! | `abgp run --config DIR/node.toml [--log-json]` | runs a node |
//! | `abgp store check\|dump\|reset --dir DIR` | inspects or resets a node's RIB store |
//! | `abgp demo [--simulated]` | three nodes on loopback, narrated; then stays up for MCP clients |
//! | `abgp mcp --config DIR/node.toml` | the running node's MCP front on stdio |
//! | `abgp sim [--topology T --nodes N --events E ...]` | the simulator: events on real engines, agent-bgp against classic BGP (see `sim.rs`) |
//! | `abgp agent list\|add\|remove --config DIR/node.toml` | the agents of a running node |
//! | `abgp asn authority-init\|whoami\|issue\|verify` | ASN certificates (see `asn.rs`) |
//! | `abgp glass --config DIR/node.toml [--no-token]` | the address of the node's looking glass, with the admin token |
//! | `abgp federation create\|invite\|status` | federations joined with one command (see `federation.rs`) |
//! | `abgp example-agent [--http ADDR] [--conformance]` | (hidden) the example MCP agent the demo runs |
//!
//! | `abgp status\|peers\|routes\|why\|tools\|call\|calls\|policy check` | the running node, for operators (see `ops`; exit codes there) |
//! | `abgp completions SHELL` | a shell completion script |

mod admin_http;
mod agent;
mod asn;
mod demo;
mod federation;
mod glass;
mod init;
mod mcp;
mod ops;
mod run;
mod sim;
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
    /// Three nodes of three ASes on loopback with an example agent each, a
    /// narrated tour, then an MCP endpoint to try until Ctrl-C.
    Demo(demo::DemoArgs),
    /// Serve the running node's MCP front on stdin/stdout.
    Mcp(mcp::McpArgs),
    /// Simulate a federation of real engines on a virtual clock: a
    /// topology, a table, events; agent-bgp against classic BGP.
    Sim(sim::SimArgs),
    /// List, add or remove the MCP agents of a running node.
    #[command(subcommand)]
    Agent(agent::AgentCommand),
    /// ASN certificates: authority keys, issuing and checking certificates.
    #[command(subcommand)]
    Asn(asn::AsnCommand),
    /// Print the address of the running node's looking glass (a web page).
    Glass(glass::GlassArgs),
    /// Federations joined with one command: create, invite, status.
    #[command(subcommand)]
    Federation(federation::FederationCommand),
    /// The running node at a glance: identity, peers, routes, store, front.
    Status(ops::Target),
    /// The sessions (state, ASN, uptime, routes in/out, last error), or one peer.
    Peers(ops::peers::PeersArgs),
    /// The Loc-RIB with every path and its markers, or a peer's Adj-RIB-In/Out.
    Routes(ops::routes::RoutesArgs),
    /// Why a prefix is routed as it is: every path, the step each lost at,
    /// the policy statements that decided, what is exported to whom.
    Why(ops::why::WhyArgs),
    /// What the node's MCP front offers: names, prefixes, origins.
    Tools(ops::tools::ToolsArgs),
    /// Call a tool through the node's MCP front; prints the result and hops.
    Call(ops::call::CallArgs),
    /// Calls in flight at this node, and recent ones with their hops.
    Calls(ops::Target),
    /// Policy files: parse, lint and dry-run against the running node.
    #[command(subcommand)]
    Policy(ops::policy::PolicyCommand),
    /// The keys that hold derived ASNs (first seen), and accepting a re-key.
    #[command(subcommand)]
    Trust(ops::trust::TrustCommand),
    /// Print a shell completion script (bash, zsh, fish, elvish, powershell).
    Completions { shell: clap_complete::Shell },
    /// The example MCP agent (echo, add, slow_count, ...), on stdio or HTTP.
    #[command(hide = true)]
    ExampleAgent {
        /// Serve streamable HTTP at http://ADDR/mcp instead of stdio.
        #[arg(long)]
        http: Option<String>,
        /// Also serve the MCP conformance suite's fixtures (test_* tools,
        /// prompts, resources, completions, logging).
        #[arg(long)]
        conformance: bool,
    },
}

fn example_agent(http: Option<String>, conformance: bool) -> anyhow::Result<ExitCode> {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(false)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "warn".into()),
        )
        .init();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    use agent_bgp::mcp::example_agent as ex;
    let options = ex::Options { conformance };
    rt.block_on(async {
        match http {
            Some(addr) => ex::serve_http(&addr, options).await,
            None => ex::serve_stdio(options).await,
        }
    })?;
    Ok(ExitCode::SUCCESS)
}

pub fn main() -> ExitCode {
    let cli = Cli::parse();
    let r = match cli.command {
        Command::Init(a) => init::init(a),
        Command::Run(a) => run::run(a),
        Command::Store(c) => store::store(c),
        Command::Demo(a) => demo::demo(a),
        Command::Mcp(a) => mcp::mcp(a),
        Command::Sim(a) => sim::sim(a),
        Command::Agent(c) => agent::agent(c),
        Command::Asn(c) => asn::asn(c),
        Command::Glass(a) => glass::glass(a),
        Command::Federation(c) => federation::federation(c),
        Command::Status(t) => ops::status::status(t),
        Command::Peers(a) => ops::peers::peers(a),
        Command::Routes(a) => ops::routes::routes(a),
        Command::Why(a) => ops::why::why(a),
        Command::Tools(a) => ops::tools::tools(a),
        Command::Call(a) => ops::call::call(a),
        Command::Calls(t) => ops::calls::calls(t),
        Command::Policy(c) => ops::policy::policy(c),
        Command::Trust(c) => ops::trust::trust(c),
        Command::Completions { shell } => {
            use clap::CommandFactory;
            clap_complete::generate(shell, &mut Cli::command(), "abgp", &mut std::io::stdout());
            Ok(ExitCode::SUCCESS)
        }
        Command::ExampleAgent { http, conformance } => example_agent(http, conformance),
    };
    match r {
        Ok(code) => code,
        Err(e) => {
            eprintln!("abgp: {}", error_text(&e));
            match e.downcast_ref::<ops::Failure>() {
                Some(f) => ExitCode::from(f.code),
                None => ExitCode::FAILURE,
            }
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
