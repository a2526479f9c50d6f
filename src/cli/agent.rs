//! `abgp agent list|add|remove --config node.toml`: the agents a running
//! node hosts, changed at run time through its admin API. Agents added
//! here are persisted in the node's store and come back after a restart;
//! those of node.toml come from the file.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, bail};
use clap::{Args, Subcommand};
use serde_json::{Map, Value, json};

use agent_bgp::config::NodeConfig;

use super::admin_http::AdminClient;

#[derive(Debug, Subcommand)]
pub enum AgentCommand {
    /// Lists the agents: where each came from, its state, its routes.
    List(Target),
    /// Adds an agent (started at once, persisted).
    Add(AddArgs),
    /// Removes an agent; its routes are withdrawn.
    Remove {
        #[command(flatten)]
        target: Target,
        /// The agent's id.
        id: String,
    },
}

#[derive(Debug, Args)]
pub struct Target {
    /// The running node's node.toml.
    #[arg(long)]
    pub config: PathBuf,
}

#[derive(Debug, Args)]
pub struct AddArgs {
    #[command(flatten)]
    pub target: Target,
    /// A TOML file with one agent entry (the keys of an `[[agents]]` entry,
    /// docs/mcp.md), as a table or as one `[[agents]]` block.
    #[arg(long, conflicts_with_all = ["id", "prefix", "command", "url"])]
    pub file: Option<PathBuf>,
    #[arg(long)]
    pub id: Option<String>,
    /// The capability prefix its tools are routed under.
    #[arg(long)]
    pub prefix: Option<String>,
    /// A program speaking MCP on stdio.
    #[arg(long, conflicts_with = "url")]
    pub command: Option<String>,
    /// Arguments of the program (repeat).
    #[arg(long = "arg", allow_hyphen_values = true)]
    pub args: Vec<String>,
    /// A streamable HTTP MCP server.
    #[arg(long)]
    pub url: Option<String>,
    /// Capability tags (repeat).
    #[arg(long = "capability")]
    pub capabilities: Vec<String>,
}

fn entry(a: &AddArgs) -> anyhow::Result<Value> {
    if let Some(f) = &a.file {
        let text =
            std::fs::read_to_string(f).with_context(|| format!("reading {}", f.display()))?;
        let v: toml::Value = toml::from_str(&text).with_context(|| format!("{}", f.display()))?;
        let table = match v.get("agents") {
            Some(toml::Value::Array(a)) if a.len() == 1 => a[0].clone(),
            Some(_) => bail!("{}: exactly one [[agents]] entry, please", f.display()),
            None => v,
        };
        return Ok(serde_json::to_value(table)?);
    }
    let (Some(id), Some(prefix)) = (&a.id, &a.prefix) else {
        bail!("give --file, or --id and --prefix with --command or --url");
    };
    let mut m = Map::new();
    m.insert("id".into(), json!(id));
    m.insert("prefix".into(), json!(prefix));
    if !a.capabilities.is_empty() {
        m.insert("capabilities".into(), json!(a.capabilities));
    }
    match (&a.command, &a.url) {
        (Some(c), None) => {
            m.insert("command".into(), json!(c));
            if !a.args.is_empty() {
                m.insert("args".into(), json!(a.args));
            }
        }
        (None, Some(u)) => {
            m.insert("url".into(), json!(u));
        }
        _ => bail!("give exactly one of --command and --url"),
    }
    Ok(Value::Object(m))
}

fn print_agents(v: &Value) {
    let Some(list) = v.as_array() else {
        println!("{v}");
        return;
    };
    if list.is_empty() {
        println!("no agents");
        return;
    }
    println!(
        "{:<20} {:<9} {:<28} {:>6}  state",
        "id", "source", "prefix", "routes"
    );
    for a in list {
        println!(
            "{:<20} {:<9} {:<28} {:>6}  {}",
            a["id"].as_str().unwrap_or("?"),
            a["source"].as_str().unwrap_or("?"),
            a["prefix"].as_str().unwrap_or("?"),
            a["routes"].as_u64().unwrap_or(0),
            a["state"].as_str().unwrap_or("?"),
        );
    }
}

pub fn agent(c: AgentCommand) -> anyhow::Result<ExitCode> {
    let cfg_path = match &c {
        AgentCommand::List(t) => &t.config,
        AgentCommand::Add(a) => &a.target.config,
        AgentCommand::Remove { target, .. } => &target.config,
    };
    let cfg = NodeConfig::load(cfg_path)?;
    let admin = AdminClient::from_config(&cfg)?;
    let (code, body) = match &c {
        AgentCommand::List(_) => admin.request("GET", "/v1/agents", None)?,
        AgentCommand::Add(a) => {
            let e = entry(a)?;
            admin.request("POST", "/v1/agents", Some(&e.to_string()))?
        }
        AgentCommand::Remove { id, .. } => {
            admin.request("DELETE", &format!("/v1/agents/{id}"), None)?
        }
    };
    let v: Value = serde_json::from_str(&body).unwrap_or(Value::String(body.clone()));
    if !(200..300).contains(&code) {
        let why = v["error"].as_str().map(str::to_string).unwrap_or(body);
        bail!("the node refused: {why}");
    }
    match c {
        AgentCommand::List(_) => print_agents(&v),
        AgentCommand::Add(_) => {
            println!("added");
            print_agents(&Value::Array(vec![v]));
        }
        AgentCommand::Remove { id, .. } => println!("removed {id}"),
    }
    Ok(ExitCode::SUCCESS)
}
