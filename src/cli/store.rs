//! `abgp store check|dump|reset --dir DIR`: offline tools for a node's RIB
//! store (docs/store.md). `DIR` is the node directory: the store is
//! `<data_dir>/store`, with `data_dir` from DIR/node.toml when there is one.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::bail;
use clap::{Args, Subcommand};
use serde::Serialize;

use agent_bgp::admin::views::RouteView;
use agent_bgp::config::{CONFIG_FILE_NAME, NodeConfig};
use agent_bgp::identity::peer_id_of;
use agent_bgp::store::{Dump, RibStore, SCHEMA_VERSION, SledStore, StoreError};

#[derive(Debug, Args)]
pub struct DirArg {
    /// The node directory (holding node.toml), or a data directory.
    #[arg(long)]
    pub dir: PathBuf,
}

#[derive(Debug, Subcommand)]
pub enum StoreCommand {
    /// Open the store and decode every entry; exit 1 if anything is wrong.
    Check(DirArg),
    /// Print what the store holds.
    Dump {
        #[command(flatten)]
        dir: DirArg,
        /// As JSON (one document).
        #[arg(long)]
        json: bool,
    },
    /// Move the store aside (kept as store.broken-<time>) so the node starts
    /// with an empty one. Routes are re-learned from peers.
    Reset(DirArg),
}

/// The store directory for a node directory.
fn store_dir(dir: &Path) -> anyhow::Result<PathBuf> {
    let cfg = dir.join(CONFIG_FILE_NAME);
    if cfg.exists() {
        let c = NodeConfig::load(&cfg)?;
        return Ok(c.store_dir());
    }
    Ok(dir.join("store"))
}

pub fn store(c: StoreCommand) -> anyhow::Result<ExitCode> {
    match c {
        StoreCommand::Check(d) => check(&store_dir(&d.dir)?),
        StoreCommand::Dump { dir, json } => dump(&store_dir(&dir.dir)?, json),
        StoreCommand::Reset(d) => reset(&store_dir(&d.dir)?),
    }
}

fn check(dir: &Path) -> anyhow::Result<ExitCode> {
    let s = match SledStore::open_existing(dir) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("store check failed: {e}");
            return Ok(ExitCode::FAILURE);
        }
    };
    match s.dump() {
        Ok(d) => {
            let routes: usize = d.adj_in.iter().map(|p| p.routes.len()).sum();
            let out: usize = d.adj_out.values().map(Vec::len).sum();
            println!("store {} is readable", dir.display());
            println!("  schema version  {SCHEMA_VERSION}");
            println!("  node            {}", s.meta().node);
            println!(
                "  last shutdown   {}",
                if s.meta().clean_shutdown {
                    "clean"
                } else {
                    "not clean (crash or kill; recovered)"
                }
            );
            println!(
                "  adj_in          {routes} routes from {} peers",
                d.adj_in.len()
            );
            println!("  loc             {} routes", d.loc.len());
            println!(
                "  adj_out         {out} routes to {} peers",
                d.adj_out.len()
            );
            Ok(ExitCode::SUCCESS)
        }
        Err(e) => {
            eprintln!("store check failed: {e}");
            Ok(ExitCode::FAILURE)
        }
    }
}

#[derive(Serialize)]
struct PeerDump {
    node_id: String,
    peer_id: String,
    asn: Option<u32>,
    routes: Vec<RouteView>,
}

#[derive(Serialize)]
struct DumpView {
    schema_version: u32,
    node_id: String,
    clean_shutdown: bool,
    adj_in: Vec<PeerDump>,
    loc: Vec<RouteView>,
    adj_out: Vec<PeerDump>,
}

fn view(s: &SledStore, d: &Dump) -> DumpView {
    let peer = |n: &agent_bgp::core::NodeId| peer_id_of(n).to_string();
    DumpView {
        schema_version: s.meta().schema_version,
        node_id: s.meta().node.to_string(),
        clean_shutdown: s.meta().clean_shutdown,
        adj_in: d
            .adj_in
            .iter()
            .map(|p| PeerDump {
                node_id: p.node.to_string(),
                peer_id: peer(&p.node),
                asn: p.asn.map(|a| a.0),
                routes: p.routes.iter().map(RouteView::new).collect(),
            })
            .collect(),
        loc: d.loc.iter().map(RouteView::new).collect(),
        adj_out: d
            .adj_out
            .iter()
            .map(|(n, rs)| PeerDump {
                node_id: n.to_string(),
                peer_id: peer(n),
                asn: None,
                routes: rs.iter().map(RouteView::new).collect(),
            })
            .collect(),
    }
}

fn dump(dir: &Path, json: bool) -> anyhow::Result<ExitCode> {
    let s = SledStore::open_existing(dir)?;
    let d = s.dump()?;
    let v = view(&s, &d);
    if json {
        println!("{}", serde_json::to_string_pretty(&v)?);
        return Ok(ExitCode::SUCCESS);
    }
    println!("node {} (schema {})", v.node_id, v.schema_version);
    for p in &v.adj_in {
        println!(
            "adj_in from {} (AS{}): {} routes",
            p.peer_id,
            p.asn.unwrap_or(0),
            p.routes.len()
        );
        for r in &p.routes {
            println!("  {}  path {:?}  agent {}", r.prefix, r.as_path, r.agent);
        }
    }
    println!("loc: {} routes", v.loc.len());
    for r in &v.loc {
        println!("  {}  path {:?}  agent {}", r.prefix, r.as_path, r.agent);
    }
    for p in &v.adj_out {
        println!("adj_out to {}: {} routes", p.peer_id, p.routes.len());
    }
    Ok(ExitCode::SUCCESS)
}

fn reset(dir: &Path) -> anyhow::Result<ExitCode> {
    if !dir.exists() {
        println!("no store at {}; nothing to reset", dir.display());
        return Ok(ExitCode::SUCCESS);
    }
    // Opening takes sled's lock: if a node runs on this store, stop here.
    match SledStore::open_existing(dir) {
        Err(StoreError::Open {
            source: sled::Error::Io(e),
            ..
        }) if e.kind() == std::io::ErrorKind::WouldBlock || e.to_string().contains("lock") => {
            bail!(
                "the store at {} is in use by a running node; stop it first",
                dir.display()
            );
        }
        Ok(s) => drop(s),
        Err(_) => {}
    }
    let stamp = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let name = format!(
        "{}.broken-{stamp}",
        dir.file_name().and_then(|n| n.to_str()).unwrap_or("store")
    );
    let aside = dir.with_file_name(name);
    std::fs::rename(dir, &aside)?;
    println!("moved {} to {}", dir.display(), aside.display());
    println!("the node starts with an empty store and re-learns routes from its peers");
    Ok(ExitCode::SUCCESS)
}
