//! `abgp asn`: ASN certificates for organisations and communities that run
//! an authority (docs/operations.md, "Issued ASNs").
//!
//! | command | what it does |
//! |---|---|
//! | `abgp asn authority-init --key FILE` | creates an authority key; prints the public key for `trust.anchors` |
//! | `abgp asn whoami --dir DIR` | prints a node's PeerId, node id and derived ASN (what an authority needs) |
//! | `abgp asn issue --authority-key FILE --asn N --node ID --out FILE [--days D] [--community C]...` | signs a certificate binding ASN N to that node, vouching for the communities given (what `[[access]]` rules trust) |
//! | `abgp asn verify --cert FILE [--anchor HEX]... [--node ID]` | checks a certificate: signature, validity window, issuer, node |
//! | `abgp asn authorize --authority-key FILE --prefix P --asn N [--max-depth D] [--days D]` | signs an origin authorisation (AS N may originate P) and prints its token for `[trust] authorizations` |

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::{Context, bail};
use clap::{Args, Subcommand};

use agent_bgp::core::community::Community;
use agent_bgp::core::ids::{Asn, Millis, NodeId};
use agent_bgp::core::proof::AsnCert;
use agent_bgp::identity::cert::{
    in_derived_range, issue_cert_with_communities, verify_cert_signature,
};
use agent_bgp::identity::{
    KEY_FILE_NAME, NodeKey, derive_asn, node_id_of, peer_id_of, read_cert_file, write_cert_file,
};

const DAY_MS: u64 = 24 * 3_600_000;

#[derive(Debug, Subcommand)]
pub enum AsnCommand {
    /// Create an authority key (0600) and print its public key.
    AuthorityInit {
        /// Where to write the key; never overwritten.
        #[arg(long)]
        key: PathBuf,
    },
    /// Print a node's PeerId, node id and derived ASN.
    Whoami {
        /// The node directory (made by `abgp init`).
        #[arg(long)]
        dir: PathBuf,
    },
    /// Sign a certificate binding an ASN to a node's key.
    Issue(IssueArgs),
    /// Check a certificate file.
    Verify(VerifyArgs),
    /// Sign an origin authorisation: AS N may originate PREFIX (and what is
    /// under it, to --max-depth segments); prints the token.
    Authorize(AuthorizeArgs),
}

#[derive(Debug, Args)]
pub struct AuthorizeArgs {
    /// The authority's key file (a `[[trust.anchors]]` key of the nodes
    /// that will check it).
    #[arg(long)]
    authority_key: PathBuf,
    /// The prefix, e.g. `finance/*`.
    #[arg(long)]
    prefix: String,
    /// The AS number that may originate it.
    #[arg(long)]
    asn: String,
    /// The deepest prefix (in segments) it covers; default: the prefix's
    /// own depth plus 8.
    #[arg(long)]
    max_depth: Option<u8>,
    /// Days it is valid, from now (and from one hour ago, for clock skew).
    #[arg(long, default_value_t = 365)]
    days: u64,
}

#[derive(Debug, Args)]
pub struct IssueArgs {
    /// The authority's key file (from `abgp asn authority-init`).
    #[arg(long)]
    authority_key: PathBuf,
    /// The AS number to grant.
    #[arg(long)]
    asn: String,
    /// The node: its PeerId (12D3Koo...) or 64-hex node id.
    #[arg(long)]
    node: String,
    /// Days the certificate is valid, from now (it is also valid from one
    /// hour ago, to absorb clock skew).
    #[arg(long, default_value_t = 365)]
    days: u64,
    /// Where to write the certificate; never overwritten.
    #[arg(long)]
    out: PathBuf,
    /// A community the authority vouches the node belongs to (repeat for
    /// more, at most 32): `[[access]]` rules match callers on these.
    #[arg(long = "community", value_name = "COMMUNITY")]
    communities: Vec<String>,
}

#[derive(Debug, Args)]
pub struct VerifyArgs {
    /// The certificate file.
    #[arg(long)]
    cert: PathBuf,
    /// Trusted authority public keys (64 hex digits); when given, the
    /// issuer must be one of them.
    #[arg(long)]
    anchor: Vec<String>,
    /// The node the certificate must be for (PeerId or 64-hex node id).
    #[arg(long)]
    node: Option<String>,
}

pub fn asn(c: AsnCommand) -> anyhow::Result<ExitCode> {
    match c {
        AsnCommand::AuthorityInit { key } => authority_init(key),
        AsnCommand::Whoami { dir } => whoami(dir),
        AsnCommand::Issue(a) => issue(a),
        AsnCommand::Verify(a) => verify(a),
        AsnCommand::Authorize(a) => authorize(a),
    }
}

fn now() -> Millis {
    let ms = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0);
    Millis(ms)
}

/// A node named by PeerId or by 64-hex node id.
fn parse_node(s: &str) -> anyhow::Result<NodeId> {
    if let Ok(n) = s.parse::<NodeId>() {
        return Ok(n);
    }
    let peer: libp2p::PeerId = s
        .parse()
        .map_err(|_| anyhow::anyhow!("{s:?} is neither a PeerId nor a 64-hex node id"))?;
    node_id_of(&peer).map_err(|e| anyhow::anyhow!("{s:?}: {e}"))
}

fn authority_init(path: PathBuf) -> anyhow::Result<ExitCode> {
    let key = NodeKey::generate();
    NodeKey::create(&path, &key).with_context(|| format!("creating {}", path.display()))?;
    println!("authority key written to {}", path.display());
    println!("public key  {}", key.node_id());
    println!();
    println!("Nodes that trust this authority add to [trust] in node.toml:");
    println!(
        "  anchors = [{{ name = \"<name>\", key = \"{}\", asns = [\"<first>-<last>\"] }}]",
        key.node_id()
    );
    Ok(ExitCode::SUCCESS)
}

fn whoami(dir: PathBuf) -> anyhow::Result<ExitCode> {
    let path = dir.join(KEY_FILE_NAME);
    let key = NodeKey::load(&path).with_context(|| format!("loading {}", path.display()))?;
    let node = key.node_id();
    let peer = peer_id_of(&node);
    println!("peer id      {peer}");
    println!("node id      {node}");
    println!("derived asn  {}", derive_asn(&node).0);
    Ok(ExitCode::SUCCESS)
}

fn issue(a: IssueArgs) -> anyhow::Result<ExitCode> {
    let asn: Asn = a.asn.parse().map_err(|e| anyhow::anyhow!("--asn: {e}"))?;
    if asn.0 == 0 || asn.0 == u32::MAX {
        bail!("--asn: AS {} is reserved", asn.0);
    }
    if in_derived_range(asn) {
        bail!(
            "--asn: {} is in the derived range ({}-{}), which belongs to self-certifying keys",
            asn.0,
            Asn::PRIVATE_START,
            Asn::PRIVATE_END
        );
    }
    if a.days == 0 {
        bail!("--days must be at least 1");
    }
    let node = parse_node(&a.node).context("--node")?;
    let authority = NodeKey::load(&a.authority_key)
        .with_context(|| format!("loading {}", a.authority_key.display()))?;
    let t = now();
    let not_before = Millis(t.0.saturating_sub(3_600_000));
    let not_after = t.saturating_add_ms(a.days.saturating_mul(DAY_MS));
    let communities = a
        .communities
        .iter()
        .map(|c| c.parse::<Community>())
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| anyhow::anyhow!("--community: {e}"))?;
    let cert =
        issue_cert_with_communities(&authority, node, asn, not_before, not_after, communities)
            .map_err(|e| anyhow::anyhow!("{e}"))?;
    write_cert_file(&a.out, &cert)?;
    println!("certificate written to {}", a.out.display());
    describe(&cert);
    println!();
    println!("The node uses it with, in its node.toml:");
    println!(
        "  [node]\n  asn = {}\n  certificate = {:?}",
        asn.0,
        a.out.display().to_string()
    );
    Ok(ExitCode::SUCCESS)
}

/// Signs "AS `asn` may originate `prefix` (to `max_depth`, default its
/// depth plus 8) for `days` days" with `authority` (`abgp asn authorize`,
/// `abgp federation authorize`).
pub(crate) fn issue_authorization(
    authority: &NodeKey,
    prefix: &str,
    asn: Asn,
    max_depth: Option<u8>,
    days: u64,
) -> anyhow::Result<agent_bgp::identity::roa::Authorization> {
    let prefix =
        agent_bgp::core::Prefix::new(prefix).map_err(|e| anyhow::anyhow!("--prefix: {e}"))?;
    if days == 0 {
        bail!("--days must be at least 1");
    }
    let depth = u8::try_from(prefix.depth()).unwrap_or(u8::MAX);
    let max_depth = max_depth.unwrap_or(depth.saturating_add(8));
    let t = now();
    agent_bgp::identity::roa::Authorization::issue(
        authority,
        prefix,
        max_depth,
        asn,
        Millis(t.0.saturating_sub(3_600_000)),
        t.saturating_add_ms(days.saturating_mul(DAY_MS)),
    )
    .map_err(|e| anyhow::anyhow!("{e}"))
}

fn authorize(a: AuthorizeArgs) -> anyhow::Result<ExitCode> {
    let asn: Asn = a.asn.parse().map_err(|e| anyhow::anyhow!("--asn: {e}"))?;
    let authority = NodeKey::load(&a.authority_key)
        .with_context(|| format!("loading {}", a.authority_key.display()))?;
    let roa = issue_authorization(&authority, &a.prefix, asn, a.max_depth, a.days)?;
    println!("{}", roa.to_token());
    eprintln!(
        "AS{} may originate {} (to depth {}), signed by {}, for {} days. Nodes that trust this authority add the line above to [trust] authorizations.",
        asn.0,
        roa.prefix,
        roa.max_depth,
        authority.node_id(),
        a.days
    );
    Ok(ExitCode::SUCCESS)
}

fn describe(c: &AsnCert) {
    let peer = peer_id_of(&c.node);
    println!("asn          {}", c.asn.0);
    println!("node id      {}", c.node);
    println!("peer id      {peer}");
    match &c.issuer {
        Some(i) => println!("issuer       {i}"),
        None => println!("issuer       (self-signed)"),
    }
    println!(
        "valid        {} .. {} (ms since epoch)",
        c.not_before.0, c.not_after.0
    );
    if !c.communities.is_empty() {
        let list: Vec<String> = c.communities.iter().map(|x| x.to_string()).collect();
        println!(
            "communities  {}{}",
            list.join(" "),
            if c.issuer.is_some() {
                ""
            } else {
                " (claimed: self-signed)"
            }
        );
    }
}

fn verify(a: VerifyArgs) -> anyhow::Result<ExitCode> {
    let cert = read_cert_file(&a.cert)?;
    describe(&cert);
    let mut problems: Vec<String> = Vec::new();
    if let Err(e) = verify_cert_signature(&cert) {
        problems.push(format!("signature does not verify: {e}"));
    }
    let t = now();
    if t < cert.not_before {
        problems.push("not valid yet".into());
    }
    if t > cert.not_after {
        problems.push("expired".into());
    }
    if !a.anchor.is_empty() {
        let anchors: Vec<NodeId> = a
            .anchor
            .iter()
            .map(|s| {
                s.parse::<NodeId>()
                    .map_err(|e| anyhow::anyhow!("--anchor: {e}"))
            })
            .collect::<anyhow::Result<_>>()?;
        match &cert.issuer {
            Some(i) if anchors.contains(i) => {}
            Some(i) => problems.push(format!("issuer {i} is not one of the given anchors")),
            None => problems.push("self-signed, not issued by any of the given anchors".into()),
        }
    }
    if let Some(n) = &a.node {
        let want = parse_node(n).context("--node")?;
        if want != cert.node {
            problems.push(format!("certificate is for node {}, not {want}", cert.node));
        }
    }
    if problems.is_empty() {
        println!("OK");
        Ok(ExitCode::SUCCESS)
    } else {
        for p in &problems {
            println!("INVALID: {p}");
        }
        Ok(ExitCode::FAILURE)
    }
}
