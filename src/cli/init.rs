//! `abgp init`: a new node directory.
//!
//! Writes the identity key first (0600, created atomically, never
//! overwritten), the admin API token (0600), then `node.toml` with every
//! option and its default. The directory is created 0700. An
//! existing key or config is never replaced: the key *is* the node's
//! identity, and losing it means losing its PeerId and derived ASN.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, bail};
use clap::Args;

use agent_bgp::admin::AdminToken;
use agent_bgp::admin::token::TOKEN_FILE_NAME;
use agent_bgp::config::{AsnSetting, CONFIG_FILE_NAME, NodeConfig, template};
use agent_bgp::core::ids::Asn;
use agent_bgp::identity::{KEY_FILE_NAME, NodeKey, derive_asn};
use agent_bgp::secret_file;

#[derive(Debug, Args)]
pub struct InitArgs {
    /// The node directory (created if missing).
    #[arg(long)]
    pub dir: PathBuf,
    /// A chosen AS number (self-signed certificate: peers must pin it).
    /// Default: an ASN derived from the new key.
    #[arg(long)]
    pub asn: Option<String>,
    /// The federation this node joins.
    #[arg(long, default_value = "default")]
    pub federation: String,
}

pub fn init(a: InitArgs) -> anyhow::Result<ExitCode> {
    let asn = match &a.asn {
        None => AsnSetting::Derived,
        Some(s) => AsnSetting::Number(
            s.parse::<Asn>()
                .map_err(|e| anyhow::anyhow!("--asn: {e}"))?,
        ),
    };
    let text = template(asn, &a.federation);
    let cfg_path = a.dir.join(CONFIG_FILE_NAME);
    NodeConfig::parse(&text, &cfg_path).context("the requested settings are not valid")?;
    let key_path = a.dir.join(KEY_FILE_NAME);
    if key_path.exists() {
        bail!(
            "{} already exists; refusing to overwrite a node identity (remove it yourself if you really mean to)",
            key_path.display()
        );
    }
    if cfg_path.exists() {
        bail!(
            "{} already exists; refusing to overwrite it",
            cfg_path.display()
        );
    }
    // The node directory holds the key, the admin token and the store.
    secret_file::create_private_dir(&a.dir)
        .with_context(|| format!("creating {}", a.dir.display()))?;
    let key = NodeKey::generate();
    NodeKey::create(&key_path, &key)?;
    let token_path = a.dir.join(TOKEN_FILE_NAME);
    AdminToken::load_or_create(&token_path)?;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&cfg_path)
        .with_context(|| format!("creating {}", cfg_path.display()))?;
    f.write_all(text.as_bytes())
        .and_then(|()| f.sync_all())
        .with_context(|| format!("writing {}", cfg_path.display()))?;
    let node = key.node_id();
    let peer = key.peer_id();
    let asn_text = match asn {
        AsnSetting::Derived => format!("{} (derived from the key)", derive_asn(&node).0),
        AsnSetting::Number(n) => format!("{} (self-signed; peers pin it)", n.0),
    };
    println!("created node in {}", a.dir.display());
    println!("  peer id     {peer}");
    println!("  node id     {node}");
    println!("  asn         {asn_text}");
    println!("  federation  {}", a.federation);
    println!("  key         {}", key_path.display());
    println!("  admin token {}", token_path.display());
    println!("  config      {}", cfg_path.display());
    println!("start it with: abgp run --config {}", cfg_path.display());
    Ok(ExitCode::SUCCESS)
}
