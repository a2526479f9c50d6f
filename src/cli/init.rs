//! `abgp init`: a new node directory.
//!
//! Writes the identity key first (0600, created atomically, never
//! overwritten), the admin API token (0600), then `node.toml` with every
//! option and its default. The directory is created 0700. An
//! existing key or config is never replaced: the key *is* the node's
//! identity, and losing it means losing its PeerId and derived ASN.
//!
//! `abgp init --join TOKEN` makes a member of a federation instead: it
//! checks the invitation token (`abgp federation invite`), makes the node
//! key, claims the token's ASN certificate from the inviter for that key,
//! and writes the federation preset: the certificate (`node.cert`), the
//! federation's trust anchor, no derived ASNs, the inviter's addresses as
//! bootstrap nodes, and a policy that exchanges routes with members only
//! (docs/quickstart.md).

use std::io::{BufRead, Read, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, bail};
use clap::Args;
use zeroize::Zeroizing;

use agent_bgp::admin::AdminToken;
use agent_bgp::admin::token::TOKEN_FILE_NAME;
use agent_bgp::config::template::{
    DEFAULT_PORT_BASE, FEDERATION_POLICY_FILE, MAX_PORT_BASE, Settings, render,
};
use agent_bgp::config::{AsnSetting, CONFIG_FILE_NAME, NodeConfig};
use agent_bgp::core::ids::Asn;
use agent_bgp::core::proof::AsnCert;
use agent_bgp::identity::invite::{MAX_TOKEN_CHARS, Token};
use agent_bgp::identity::{KEY_FILE_NAME, NodeKey, derive_asn, write_cert_file};
use agent_bgp::secret_file;

use super::federation;

/// The issued certificate of a federation member, next to node.toml.
pub const CERT_FILE_NAME: &str = "node.cert";

#[derive(Debug, Args)]
pub struct InitArgs {
    /// The node directory (created if missing).
    #[arg(long)]
    pub dir: PathBuf,
    /// A chosen AS number (self-signed certificate: peers must pin it).
    /// Default: an ASN derived from the new key.
    #[arg(long, conflicts_with = "join")]
    pub asn: Option<String>,
    /// The federation this node joins (with --join: the token's).
    #[arg(long, default_value = "default", conflicts_with = "join")]
    pub federation: String,
    /// First port: libp2p on it (TCP and QUIC), the admin API on it + 80,
    /// the MCP front on it + 81. 0: free ports, picked at each start.
    #[arg(long, default_value_t = DEFAULT_PORT_BASE)]
    pub ports: u16,
    /// Join a federation with the token `abgp federation invite` printed
    /// ("-": read it from stdin, which keeps it out of the process list).
    #[arg(long, value_name = "TOKEN")]
    pub join: Option<String>,
}

/// A node directory to write.
pub(crate) struct NewNode<'a> {
    pub dir: &'a Path,
    pub key: &'a NodeKey,
    /// The key file is already there (an interrupted join being resumed).
    pub key_on_disk: bool,
    /// An issued certificate, written to [`CERT_FILE_NAME`].
    pub cert: Option<&'a AsnCert>,
    pub config: &'a str,
    /// The federation preset's policy, written to [`FEDERATION_POLICY_FILE`].
    pub policy: Option<&'a str>,
    /// Runs after the key, token, certificate and policy are written and
    /// before node.toml (which is written last, so a directory with a
    /// node.toml is complete).
    pub before_config: Option<&'a dyn Fn() -> anyhow::Result<()>>,
}

/// The paths [`write_node`] wrote.
pub(crate) struct Written {
    dir: PathBuf,
    key: PathBuf,
    token: PathBuf,
    config: PathBuf,
}

impl Written {
    pub(crate) fn print(&self, key: &NodeKey, asn: Asn, federation: &str) {
        println!("node in {}", self.dir.display());
        println!("  peer id     {}", key.peer_id());
        println!("  node id     {}", key.node_id());
        println!("  asn         {} (issued by the federation)", asn.0);
        println!("  federation  {federation}");
        println!("  key         {}", self.key.display());
        println!("  admin token {}", self.token.display());
        println!("  config      {}", self.config.display());
        println!("start it with: abgp run --config {}", self.config.display());
    }
}

fn refuse_existing(dir: &Path) -> anyhow::Result<()> {
    let key_path = dir.join(KEY_FILE_NAME);
    if key_path.exists() {
        bail!(
            "{} already exists; refusing to overwrite a node identity (remove it yourself if you really mean to)",
            key_path.display()
        );
    }
    refuse_existing_config(dir)
}

fn refuse_existing_config(dir: &Path) -> anyhow::Result<()> {
    let cfg_path = dir.join(CONFIG_FILE_NAME);
    if cfg_path.exists() {
        bail!(
            "{} already exists; refusing to overwrite it",
            cfg_path.display()
        );
    }
    Ok(())
}

fn create_new(path: &Path, text: &str) -> anyhow::Result<()> {
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(path)
        .with_context(|| format!("creating {}", path.display()))?;
    f.write_all(text.as_bytes())
        .and_then(|()| f.sync_all())
        .with_context(|| format!("writing {}", path.display()))
}

/// Writes a node directory: refuses an existing key or config, checks the
/// config, then writes the key, the admin token, the certificate, the
/// policy and node.toml, in that order.
pub(crate) fn write_node(n: NewNode<'_>) -> anyhow::Result<Written> {
    let cfg_path = n.dir.join(CONFIG_FILE_NAME);
    NodeConfig::parse(n.config, &cfg_path).context("the requested settings are not valid")?;
    let key_path = n.dir.join(KEY_FILE_NAME);
    if n.key_on_disk {
        refuse_existing_config(n.dir)?;
    } else {
        refuse_existing(n.dir)?;
        // The node directory holds the key, the admin token and the store.
        secret_file::create_private_dir(n.dir)
            .with_context(|| format!("creating {}", n.dir.display()))?;
        NodeKey::create(&key_path, n.key)?;
    }
    let token_path = n.dir.join(TOKEN_FILE_NAME);
    AdminToken::load_or_create(&token_path)?;
    if let Some(c) = n.cert {
        write_cert_file(&n.dir.join(CERT_FILE_NAME), c)?;
    }
    if let Some(p) = n.policy {
        create_new(&n.dir.join(FEDERATION_POLICY_FILE), p)?;
    }
    if let Some(f) = n.before_config {
        f()?;
    }
    create_new(&cfg_path, n.config)?;
    Ok(Written {
        dir: n.dir.to_path_buf(),
        key: key_path,
        token: token_path,
        config: cfg_path,
    })
}

pub fn init(a: InitArgs) -> anyhow::Result<ExitCode> {
    if a.ports > MAX_PORT_BASE {
        bail!("--ports must be at most {MAX_PORT_BASE} (the MCP front uses it + 81)");
    }
    if let Some(t) = &a.join {
        return join(&a, t);
    }
    let asn = match &a.asn {
        None => AsnSetting::Derived,
        Some(s) => AsnSetting::Number(
            s.parse::<Asn>()
                .map_err(|e| anyhow::anyhow!("--asn: {e}"))?,
        ),
    };
    let text = render(&Settings {
        port_base: a.ports,
        ..Settings::new(asn, &a.federation)
    });
    let key = NodeKey::generate();
    let w = write_node(NewNode {
        dir: &a.dir,
        key: &key,
        key_on_disk: false,
        cert: None,
        config: &text,
        policy: None,
        before_config: None,
    })?;
    let node = key.node_id();
    let asn_text = match asn {
        AsnSetting::Derived => format!("{} (derived from the key)", derive_asn(&node).0),
        AsnSetting::Number(n) => format!("{} (self-signed; peers pin it)", n.0),
    };
    println!("created node in {}", a.dir.display());
    println!("  peer id     {}", key.peer_id());
    println!("  node id     {node}");
    println!("  asn         {asn_text}");
    println!("  federation  {}", a.federation);
    println!("  key         {}", w.key.display());
    println!("  admin token {}", w.token.display());
    println!("  config      {}", w.config.display());
    println!("start it with: abgp run --config {}", w.config.display());
    Ok(ExitCode::SUCCESS)
}

/// The token from the argument, or from one line of stdin for "-".
fn token_text(arg: &str) -> anyhow::Result<Zeroizing<String>> {
    if arg != "-" {
        return Ok(Zeroizing::new(arg.to_string()));
    }
    let mut line = Zeroizing::new(String::new());
    std::io::stdin()
        .lock()
        .take(MAX_TOKEN_CHARS as u64 + 2)
        .read_line(&mut line)
        .context("reading the token from stdin")?;
    Ok(line)
}

fn join(a: &InitArgs, arg: &str) -> anyhow::Result<ExitCode> {
    let text = token_text(arg)?;
    let token = Token::decode(&text).map_err(|e| anyhow::anyhow!("--join: {e}"))?;
    token
        .check_expiry(federation::now())
        .map_err(|e| anyhow::anyhow!("--join: {e}"))?;
    refuse_existing_config(&a.dir)?;
    let inv = &token.invite;
    let (config, policy) = federation::member_settings(
        &inv.federation,
        inv.anchor,
        inv.asns,
        inv.asn,
        a.ports,
        inv.bootstrap.clone(),
        Vec::new(),
    );
    // Check the settings before the claim uses the invitation up.
    NodeConfig::parse(&config, &a.dir.join(CONFIG_FILE_NAME))
        .context("the invitation's settings are not valid")?;
    // The key goes to disk before the claim, so a claim whose answer was
    // lost can be made again with the same key (the inviter then sends the
    // same certificate). A key without a node.toml is such a join.
    let key_path = a.dir.join(KEY_FILE_NAME);
    let resumed = key_path.exists();
    let created_dir = !a.dir.exists();
    let key = if resumed {
        NodeKey::load(&key_path).with_context(|| format!("loading {}", key_path.display()))?
    } else {
        secret_file::create_private_dir(&a.dir)
            .with_context(|| format!("creating {}", a.dir.display()))?;
        let key = NodeKey::generate();
        NodeKey::create(&key_path, &key)?;
        key
    };
    let claim = token.claim(key.node_id());
    let (cert, authorizations) = match federation::claim_cert(inv, &claim) {
        Ok(c) => c,
        Err(e @ federation::ClaimFailure::Refused(_)) => {
            if !resumed {
                // Ours and useless: leave nothing behind.
                let _ = std::fs::remove_file(&key_path);
                if created_dir {
                    let _ = std::fs::remove_dir(&a.dir);
                }
            }
            return Err(e.into());
        }
        Err(e @ federation::ClaimFailure::Unreachable(_)) => {
            return Err(anyhow::anyhow!(
                "{e}\nThe new node key stays in {}: run the same command again to retry.",
                key_path.display()
            ));
        }
    };
    federation::check_issued(inv, &cert, key.node_id(), federation::now())?;
    federation::check_authorizations(inv, &authorizations)?;
    // The federation's origin authorisations go into [trust].
    let (config, _) = federation::member_settings(
        &inv.federation,
        inv.anchor,
        inv.asns,
        inv.asn,
        a.ports,
        inv.bootstrap.clone(),
        authorizations.clone(),
    );
    NodeConfig::parse(&config, &a.dir.join(CONFIG_FILE_NAME))
        .context("the invitation's settings with the federation's origin authorisations")?;
    let w = write_node(NewNode {
        dir: &a.dir,
        key: &key,
        key_on_disk: true,
        cert: Some(&cert),
        config: &config,
        policy: Some(&policy),
        before_config: None,
    })?;
    println!("joined federation {:?}", inv.federation);
    println!("  authority   {}", inv.anchor);
    if !cert.communities.is_empty() {
        let c: Vec<String> = cert.communities.iter().map(|c| c.to_string()).collect();
        println!("  communities {} (in the certificate)", c.join(" "));
    }
    if !authorizations.is_empty() {
        println!(
            "  origin authorisations {} (in [trust] authorizations)",
            authorizations.len()
        );
    }
    w.print(&key, inv.asn, &inv.federation);
    Ok(ExitCode::SUCCESS)
}
