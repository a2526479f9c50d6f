//! `abgp federation`: a federation anyone can join with one command
//! (docs/quickstart.md; the design and its limits: docs/security.md,
//! "Federation invitations").
//!
//! | command | what it does |
//! |---|---|
//! | `abgp federation create NAME --dir DIR [--asns A-B] [--ports P] [--days D]` | an authority key (`federation.key`, 0600) kept in DIR, and a node in DIR that is the federation's first member (the first ASN of the range, the federation preset) |
//! | `abgp federation invite --dir DIR [--expires 1h] [--listen ADDR] [--out FILE] [--community C]...` | prints an `abgp1-...` token offering the next ASN, then waits (up to the expiry) for the joiner's `abgp init --join` to claim it, and issues its certificate |
//! | `abgp federation authorize --dir DIR --prefix P [--asn N] [--max-depth D] [--days D]` | signs an origin authorisation (AS N, default the creator's, may originate P) with the federation's authority, records it, adds it to DIR/node.toml; every node that joins from then on gets it with its certificate |
//! | `abgp federation status --dir DIR` | the federation, its members, open invitations and origin authorisations |
//!
//! The claim exchange is one TCP connection to the inviter: a length-prefixed
//! CBOR [`Claim`] (the joiner's node id, signed with the token's one-time
//! claim key), answered by an [`Answer`] (the certificate, or why not).
//! The inviter records every invitation in DIR/federation.json (under an
//! exclusive lock, written atomically): an invitation is claimed once, by
//! one node id; the same node asking again gets the same certificate,
//! another node is refused. Bounds: claims of at most
//! [`invite::MAX_CLAIM_BYTES`], read within 5 s, at most 16 connections at
//! once.

use std::io::{Read, Write};
use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpStream};
use std::os::fd::AsRawFd;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::{Context, bail};
use clap::{Args, Subcommand};
use serde::{Deserialize, Serialize};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use agent_bgp::config::template::{
    AnchorPreset, DEFAULT_PORT_BASE, FEDERATION_POLICY_FILE, MAX_PORT_BASE, Settings,
    federation_policy, render,
};
use agent_bgp::config::{AsnSetting, NodeConfig};
use agent_bgp::core::community::Community;
use agent_bgp::core::ids::{Asn, Millis, NodeId};
use agent_bgp::core::proof::AsnCert;
use agent_bgp::identity::cert::{
    in_derived_range, issue_cert_with_communities, verify_cert_signature,
};
use agent_bgp::identity::invite::{
    self, Answer, Claim, Invite, MAX_ADDRESSES, Token, frame_len, valid_federation_name,
};
use agent_bgp::identity::{NodeKey, peer_id_of};

use super::init::{CERT_FILE_NAME, NewNode, write_node};

/// The authority key, in the creator's node directory.
pub const AUTHORITY_KEY_FILE: &str = "federation.key";
/// The invitations issued and who claimed them.
pub const STATE_FILE: &str = "federation.json";
const LOCK_FILE: &str = "federation.lock";
/// The default ASN range: the 16-bit private range (RFC 6996).
const DEFAULT_ASNS: &str = "64512-65534";
/// Where invitations are claimed, by default (all interfaces).
const DEFAULT_CLAIM_LISTEN: &str = "0.0.0.0:4190";
const MAX_STATE_BYTES: u64 = 64 * 1024 * 1024;
const CLAIM_READ_DEADLINE: Duration = Duration::from_secs(5);
const MAX_CLAIM_CONNECTIONS: usize = 16;
const MAX_INVITE_EXPIRY: Duration = Duration::from_secs(30 * 86_400);
const DAY_MS: u64 = 86_400_000;
/// Certificates are valid from this long ago (clock skew between laptops).
const BACKDATE_MS: u64 = 3_600_000;

#[derive(Debug, Subcommand)]
pub enum FederationCommand {
    /// Create a federation: its authority key and its first member node.
    Create(CreateArgs),
    /// Invite one node: print a token, then wait for it to be claimed.
    Invite(InviteArgs),
    /// Let an AS of the federation originate a prefix (an origin
    /// authorisation every member checks routes against).
    Authorize(FederationAuthorizeArgs),
    /// Show the federation, its members and open invitations.
    Status {
        /// The creator's node directory.
        #[arg(long)]
        dir: PathBuf,
    },
}

#[derive(Debug, Args)]
pub struct CreateArgs {
    /// The federation's name (letters, digits, '-', '_', '.').
    pub name: String,
    /// The node directory to create (holds the authority key too).
    #[arg(long)]
    pub dir: PathBuf,
    /// The ASNs the federation hands out; the creator takes the first.
    #[arg(long, default_value = DEFAULT_ASNS)]
    pub asns: String,
    /// First port: libp2p on it, the admin API on it + 80, the MCP front on
    /// it + 81. Invitations tell joiners to dial this node on it.
    #[arg(long, default_value_t = DEFAULT_PORT_BASE)]
    pub ports: u16,
    /// Days the members' certificates are valid.
    #[arg(long, default_value_t = 365)]
    pub days: u64,
}

#[derive(Debug, Args)]
pub struct InviteArgs {
    /// The creator's node directory (from `abgp federation create`).
    #[arg(long)]
    pub dir: PathBuf,
    /// How long the invitation can be claimed ("10m", "1h", "2d"; at most 30d).
    #[arg(long, default_value = "1h")]
    pub expires: String,
    /// Where to take the claim (port 0: any free port).
    #[arg(long, default_value = DEFAULT_CLAIM_LISTEN)]
    pub listen: SocketAddr,
    /// Write the token to this file (0600) instead of printing it.
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Name no member addresses in the token: the joiner finds members by
    /// mDNS (on a LAN) or its own bootstrap configuration only.
    #[arg(long)]
    pub no_bootstrap: bool,
    /// A community the federation vouches the joiner belongs to, signed
    /// into its certificate (repeat for more): origins' `[[access]]` rules
    /// match callers on these.
    #[arg(long = "community", value_name = "COMMUNITY")]
    pub communities: Vec<String>,
}

#[derive(Debug, Args)]
pub struct FederationAuthorizeArgs {
    /// The creator's node directory (from `abgp federation create`).
    #[arg(long)]
    pub dir: PathBuf,
    /// The prefix, e.g. `finance/*`.
    #[arg(long)]
    pub prefix: String,
    /// The AS that may originate it (a member's; default: the creator's).
    #[arg(long)]
    pub asn: Option<u32>,
    /// The deepest prefix (in segments) it covers; default: the prefix's
    /// own depth plus 8.
    #[arg(long)]
    pub max_depth: Option<u8>,
    /// Days it is valid, from now.
    #[arg(long, default_value_t = 365)]
    pub days: u64,
}

pub fn federation(c: FederationCommand) -> anyhow::Result<ExitCode> {
    match c {
        FederationCommand::Create(a) => create(a),
        FederationCommand::Invite(a) => invite_cmd(a),
        FederationCommand::Authorize(a) => authorize(a),
        FederationCommand::Status { dir } => status(&dir),
    }
}

pub(crate) fn now() -> Millis {
    Millis(
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_millis() as u64)
            .unwrap_or(0),
    )
}

// ---- the inviter's record ----

#[derive(Debug, Serialize, Deserialize)]
struct State {
    name: String,
    /// The authority's public key (hex).
    anchor: String,
    asns: (u32, u32),
    validity_days: u64,
    /// The creator's node id (hex); it holds the first ASN.
    creator: String,
    next_asn: u32,
    invites: Vec<InviteRecord>,
    /// Origin authorisations signed by the authority (`abgp-roa1:`
    /// tokens): sent to every node that joins.
    #[serde(default)]
    authorizations: Vec<String>,
}

#[derive(Debug, Serialize, Deserialize)]
struct InviteRecord {
    asn: u32,
    claim_key: String,
    expires_ms: u64,
    claimed_by: Option<String>,
    /// The certificate issued to `claimed_by` (hex of its CBOR).
    cert: Option<String>,
    /// Communities signed into the certificate (`--community`).
    #[serde(default)]
    communities: Vec<String>,
}

impl State {
    fn anchor(&self) -> anyhow::Result<NodeId> {
        self.anchor
            .parse()
            .map_err(|e| anyhow::anyhow!("{STATE_FILE}: anchor: {e}"))
    }
}

fn load_state(dir: &Path) -> anyhow::Result<State> {
    let path = dir.join(STATE_FILE);
    let f = std::fs::File::open(&path).with_context(|| {
        format!(
            "opening {} (is {} a directory made by `abgp federation create`?)",
            path.display(),
            dir.display()
        )
    })?;
    let mut text = String::new();
    f.take(MAX_STATE_BYTES)
        .read_to_string(&mut text)
        .with_context(|| format!("reading {}", path.display()))?;
    serde_json::from_str(&text).with_context(|| format!("{} is damaged", path.display()))
}

fn save_state(dir: &Path, st: &State) -> anyhow::Result<()> {
    let path = dir.join(STATE_FILE);
    let tmp = dir.join(format!("{STATE_FILE}.tmp"));
    let text = serde_json::to_string_pretty(st)?;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&tmp)
        .with_context(|| format!("writing {}", tmp.display()))?;
    f.write_all(text.as_bytes())
        .and_then(|()| f.sync_all())
        .with_context(|| format!("writing {}", tmp.display()))?;
    std::fs::rename(&tmp, &path).with_context(|| format!("replacing {}", path.display()))
}

/// Runs `f` on the state under an exclusive lock, then saves it.
fn with_state<R>(dir: &Path, f: impl FnOnce(&mut State) -> anyhow::Result<R>) -> anyhow::Result<R> {
    let lock_path = dir.join(LOCK_FILE);
    let lock = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .mode(0o600)
        .open(&lock_path)
        .with_context(|| format!("opening {}", lock_path.display()))?;
    // SAFETY: flock on a file descriptor we own; released when `lock` drops.
    if unsafe { libc::flock(lock.as_raw_fd(), libc::LOCK_EX) } != 0 {
        bail!(
            "locking {}: {}",
            lock_path.display(),
            std::io::Error::last_os_error()
        );
    }
    let mut st = load_state(dir)?;
    let r = f(&mut st)?;
    save_state(dir, &st)?;
    Ok(r)
}

fn load_authority(dir: &Path) -> anyhow::Result<NodeKey> {
    let path = dir.join(AUTHORITY_KEY_FILE);
    NodeKey::load(&path).with_context(|| format!("loading the authority key {}", path.display()))
}

fn issue_for(
    authority: &NodeKey,
    node: NodeId,
    asn: Asn,
    days: u64,
    communities: &[String],
) -> anyhow::Result<AsnCert> {
    let t = now();
    let not_before = Millis(t.0.saturating_sub(BACKDATE_MS));
    let not_after = t.saturating_add_ms(days.saturating_mul(DAY_MS));
    issue_cert_with_communities(
        authority,
        node,
        asn,
        not_before,
        not_after,
        parse_communities(communities)?,
    )
    .map_err(|e| anyhow::anyhow!("{e}"))
}

fn parse_communities(list: &[String]) -> anyhow::Result<Vec<Community>> {
    list.iter()
        .map(|c| {
            c.parse::<Community>()
                .map_err(|e| anyhow::anyhow!("--community: {e}"))
        })
        .collect()
}

fn cert_hex(c: &AsnCert) -> String {
    let mut b = Vec::new();
    let _ = ciborium::into_writer(&agent_bgp::wire::schema::encode_cert(c), &mut b);
    hex::encode(b)
}

fn cert_from_hex(s: &str) -> anyhow::Result<AsnCert> {
    let b = hex::decode(s).context("a stored certificate is not hex")?;
    let v: ciborium::Value = ciborium::from_reader(b.as_slice()).context("a stored certificate")?;
    agent_bgp::wire::schema::decode_cert(&v)
        .map_err(|e| anyhow::anyhow!("a stored certificate: {e}"))
}

/// The node.toml and policy of a federation member.
pub(crate) fn member_settings(
    federation: &str,
    anchor: NodeId,
    asns: (u32, u32),
    asn: Asn,
    port_base: u16,
    bootstrap: Vec<String>,
    authorizations: Vec<String>,
) -> (String, String) {
    let s = Settings {
        certificate: Some(CERT_FILE_NAME.into()),
        port_base,
        bootstrap,
        authorizations,
        anchor: Some(AnchorPreset {
            name: federation.to_string(),
            key: anchor,
            asns,
        }),
        policy_file: Some(FEDERATION_POLICY_FILE.into()),
        ..Settings::new(AsnSetting::Number(asn), federation)
    };
    (render(&s), federation_policy(federation, asns))
}

// ---- create ----

fn parse_range(s: &str) -> anyhow::Result<(u32, u32)> {
    let r = agent_bgp::config::parse_asn_range(s)
        .ok_or_else(|| anyhow::anyhow!("--asns {s:?}: expected a range like 64512-65534"))?;
    let (lo, hi) = (*r.start(), *r.end());
    if lo == 0 || hi == u32::MAX || lo >= hi {
        bail!("--asns {s:?}: the range needs at least two usable ASNs (no 0, no 4294967295)");
    }
    if in_derived_range(Asn(lo)) || in_derived_range(Asn(hi)) {
        bail!(
            "--asns {s:?} overlaps the derived range ({}-{}), which belongs to self-certifying keys",
            Asn::PRIVATE_START,
            Asn::PRIVATE_END
        );
    }
    Ok((lo, hi))
}

fn create(a: CreateArgs) -> anyhow::Result<ExitCode> {
    if !valid_federation_name(&a.name) {
        bail!(
            "federation name {:?} must be 1 to 64 letters, digits, '-', '_', '.'",
            a.name
        );
    }
    let asns = parse_range(&a.asns)?;
    if a.days == 0 || a.days > 100 * 365 {
        bail!("--days must be 1 to 36500");
    }
    if a.ports > MAX_PORT_BASE {
        bail!("--ports must be at most {MAX_PORT_BASE} (the MCP front uses it + 81)");
    }
    let authority_path = a.dir.join(AUTHORITY_KEY_FILE);
    if authority_path.exists() || a.dir.join(STATE_FILE).exists() {
        bail!(
            "{} already holds a federation; refusing to replace its authority",
            a.dir.display()
        );
    }
    let authority = NodeKey::generate();
    let key = NodeKey::generate();
    let asn = Asn(asns.0);
    let cert = issue_for(&authority, key.node_id(), asn, a.days, &[])?;
    let (config, policy) = member_settings(
        &a.name,
        authority.node_id(),
        asns,
        asn,
        a.ports,
        Vec::new(),
        Vec::new(),
    );
    let written = write_node(NewNode {
        dir: &a.dir,
        key: &key,
        key_on_disk: false,
        cert: Some(&cert),
        config: &config,
        policy: Some(&policy),
        before_config: Some(&|| {
            NodeKey::create(&authority_path, &authority)
                .with_context(|| format!("creating {}", authority_path.display()))?;
            save_state(
                &a.dir,
                &State {
                    name: a.name.clone(),
                    anchor: authority.node_id().to_string(),
                    asns,
                    validity_days: a.days,
                    creator: key.node_id().to_string(),
                    next_asn: asns.0 + 1,
                    invites: Vec::new(),
                    authorizations: Vec::new(),
                },
            )
        }),
    })?;
    println!("created federation {:?} in {}", a.name, a.dir.display());
    println!(
        "  authority   {} ({})",
        authority.node_id(),
        authority_path.display()
    );
    println!("  asns        {}-{}", asns.0, asns.1);
    written.print(&key, asn, &a.name);
    println!(
        "invite a node with: abgp federation invite --dir {}",
        a.dir.display()
    );
    Ok(ExitCode::SUCCESS)
}

// ---- invite ----

/// Addresses others can reach this machine at, for a listener on `ip`:
/// the address itself, or for an unspecified one the IPv4 addresses of the
/// interfaces that are up, loopback only when there is nothing else.
fn reachable_ips(ip: IpAddr) -> Vec<IpAddr> {
    if !ip.is_unspecified() {
        return vec![ip];
    }
    let mut out: Vec<IpAddr> = if_addrs::get_if_addrs()
        .unwrap_or_default()
        .into_iter()
        .map(|i| i.ip())
        .filter(|ip| ip.is_ipv4() && !ip.is_loopback())
        .collect();
    out.sort();
    out.dedup();
    if out.is_empty() {
        out.push(IpAddr::V4(Ipv4Addr::LOCALHOST));
    }
    out.truncate(MAX_ADDRESSES);
    out
}

/// The creator node's TCP addresses for joiners to dial first: for a node
/// listening on all interfaces, the addresses the claim is taken at (so an
/// invitation taken on loopback names loopback).
fn bootstrap_addrs(dir: &Path, claim_ip: IpAddr) -> anyhow::Result<Vec<String>> {
    let cfg = NodeConfig::load(&dir.join(agent_bgp::config::CONFIG_FILE_NAME))?;
    let key_path = cfg.key_path();
    let key =
        NodeKey::load(&key_path).with_context(|| format!("loading {}", key_path.display()))?;
    let peer = key.peer_id();
    let mut out = Vec::new();
    for m in &cfg.config.network.listen {
        use libp2p::multiaddr::Protocol;
        let mut it = m.iter();
        let (ip, port) = match (it.next(), it.next()) {
            (Some(Protocol::Ip4(ip)), Some(Protocol::Tcp(p))) => (IpAddr::V4(ip), p),
            (Some(Protocol::Ip6(ip)), Some(Protocol::Tcp(p))) => (IpAddr::V6(ip), p),
            _ => continue,
        };
        if port == 0 {
            continue;
        }
        let ips = if ip.is_unspecified() {
            reachable_ips(claim_ip)
        } else {
            vec![ip]
        };
        for ip in ips {
            let proto = if ip.is_ipv4() { "ip4" } else { "ip6" };
            out.push(format!("/{proto}/{ip}/tcp/{port}/p2p/{peer}"));
        }
    }
    out.truncate(MAX_ADDRESSES);
    Ok(out)
}

fn parse_expiry(s: &str) -> anyhow::Result<Duration> {
    let d = agent_bgp::config::values::parse_duration(s)
        .ok_or_else(|| anyhow::anyhow!("--expires {s:?}: expected a duration like 10m, 1h, 2d"))?;
    if d < Duration::from_secs(1) || d > MAX_INVITE_EXPIRY {
        bail!("--expires {s:?}: must be from 1s to 30d");
    }
    Ok(d)
}

fn invite_cmd(a: InviteArgs) -> anyhow::Result<ExitCode> {
    let expiry = parse_expiry(&a.expires)?;
    let communities = parse_communities(&a.communities)?;
    if communities.len() > agent_bgp::core::proof::MAX_CERT_COMMUNITIES {
        bail!(
            "--community: at most {} communities",
            agent_bgp::core::proof::MAX_CERT_COMMUNITIES
        );
    }
    let authority = load_authority(&a.dir)?;
    let bootstrap = if a.no_bootstrap {
        Vec::new()
    } else {
        bootstrap_addrs(&a.dir, a.listen.ip())?
    };
    let std_listener = std::net::TcpListener::bind(a.listen).with_context(|| {
        format!(
            "listening for the claim on {} (another `abgp federation invite` waiting? use --listen)",
            a.listen
        )
    })?;
    let port = std_listener.local_addr()?.port();
    let claim: Vec<SocketAddr> = reachable_ips(a.listen.ip())
        .into_iter()
        .map(|ip| SocketAddr::new(ip, port))
        .collect();
    let expires = now().saturating_add_ms(expiry.as_millis() as u64);
    let (text, asn, name) = with_state(&a.dir, |st| {
        let anchor = st.anchor()?;
        if anchor != authority.node_id() {
            bail!("{AUTHORITY_KEY_FILE} is not the key {STATE_FILE} names as the anchor");
        }
        if st.next_asn > st.asns.1 {
            bail!(
                "every ASN of the federation's range {}-{} has been handed out",
                st.asns.0,
                st.asns.1
            );
        }
        let asn = Asn(st.next_asn);
        let invite = Invite {
            federation: st.name.clone(),
            anchor,
            asns: st.asns,
            asn,
            expires,
            claim_key: anchor,
            claim: claim.clone(),
            bootstrap: bootstrap.clone(),
        };
        let (text, claim_key) = Token::create(&authority, invite)?;
        st.next_asn += 1;
        st.invites.push(InviteRecord {
            asn: asn.0,
            claim_key: claim_key.to_string(),
            expires_ms: expires.0,
            claimed_by: None,
            cert: None,
            communities: communities.iter().map(|c| c.to_string()).collect(),
        });
        Ok((text, asn, st.name.clone()))
    })?;
    match &a.out {
        Some(path) => {
            agent_bgp::secret_file::create(path, format!("{text}\n").as_bytes())
                .map_err(|e| anyhow::anyhow!("writing {}: {e}", path.display()))?;
            eprintln!(
                "invitation for AS{} written to {} (0600)",
                asn.0,
                path.display()
            );
        }
        None => println!("{text}"),
    }
    eprintln!(
        "This token lets one node join federation {name:?} as AS{}. It is a secret until it is \
         claimed: send it over a channel you trust.",
        asn.0
    );
    eprintln!("On the joining machine run:  abgp init --dir <new node dir> --join <token>");
    eprintln!(
        "waiting for the claim on {} (until {}s from now; Ctrl-C to stop)",
        claim
            .iter()
            .map(|c| c.to_string())
            .collect::<Vec<_>>()
            .join(", "),
        expiry.as_secs()
    );
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    let outcome = rt.block_on(serve(std_listener, a.dir.clone(), asn, expiry))?;
    match outcome {
        Some(node) => {
            eprintln!(
                "claimed: node {} joined federation {name:?} as AS{}",
                peer_id_of(&node),
                asn.0
            );
            Ok(ExitCode::SUCCESS)
        }
        None => {
            eprintln!("the invitation for AS{} expired unclaimed", asn.0);
            Ok(ExitCode::FAILURE)
        }
    }
}

/// Takes claims until the invitation for `asn` is claimed (its node) or
/// `expiry` passes (`None`). Claims for other open invitations of the
/// federation are answered too.
async fn serve(
    std_listener: std::net::TcpListener,
    dir: PathBuf,
    asn: Asn,
    expiry: Duration,
) -> anyhow::Result<Option<NodeId>> {
    std_listener.set_nonblocking(true)?;
    let listener = tokio::net::TcpListener::from_std(std_listener)?;
    let (done_tx, mut done_rx) = tokio::sync::mpsc::channel::<NodeId>(1);
    let slots = Arc::new(tokio::sync::Semaphore::new(MAX_CLAIM_CONNECTIONS));
    let deadline = tokio::time::sleep(expiry);
    tokio::pin!(deadline);
    let dir = Arc::new(dir);
    loop {
        tokio::select! {
            () = &mut deadline => return Ok(None),
            Some(node) = done_rx.recv() => return Ok(Some(node)),
            r = listener.accept() => {
                let (sock, from) = match r {
                    Ok(x) => x,
                    Err(e) => {
                        eprintln!("accepting a claim connection: {e}");
                        continue;
                    }
                };
                let Ok(permit) = slots.clone().try_acquire_owned() else {
                    eprintln!("refused a connection from {from}: {MAX_CLAIM_CONNECTIONS} claims in progress");
                    continue;
                };
                let (dir, done) = (dir.clone(), done_tx.clone());
                tokio::spawn(async move {
                    let _permit = permit;
                    match tokio::time::timeout(CLAIM_READ_DEADLINE, answer_one(sock, &dir)).await {
                        Ok(Ok((claim_asn, Some(node)))) => {
                            if claim_asn == asn {
                                let _ = done.send(node).await;
                            }
                        }
                        Ok(Ok((_, None))) => {}
                        Ok(Err(why)) => eprintln!("claim from {from}: {why}"),
                        Err(_) => eprintln!("claim from {from}: not complete within {}s", CLAIM_READ_DEADLINE.as_secs()),
                    }
                });
            }
        }
    }
}

/// Reads one claim, answers it; returns the claimed ASN and, when a
/// certificate was issued, the node.
async fn answer_one(
    mut sock: tokio::net::TcpStream,
    dir: &Path,
) -> Result<(Asn, Option<NodeId>), String> {
    let mut header = [0u8; 4];
    sock.read_exact(&mut header)
        .await
        .map_err(|e| format!("reading: {e}"))?;
    let n = frame_len(header, invite::MAX_CLAIM_BYTES)?;
    let mut body = vec![0u8; n];
    sock.read_exact(&mut body)
        .await
        .map_err(|e| format!("reading: {e}"))?;
    let (asn, answer) = match Claim::decode(&body) {
        Ok(claim) => {
            let asn = claim.asn;
            let dir = dir.to_path_buf();
            let answer = tokio::task::spawn_blocking(move || process_claim(&dir, &claim, now()))
                .await
                .map_err(|e| format!("{e}"))?
                .unwrap_or_else(|e| Answer::Refused(format!("the inviter failed: {e:#}")));
            (asn, answer)
        }
        Err(e) => (Asn(0), Answer::Refused(e)),
    };
    let _ = sock.write_all(&answer.to_frame()).await;
    let _ = sock.shutdown().await;
    match answer {
        Answer::Cert { cert: c, .. } => {
            eprintln!("issued AS{} to node {}", c.asn.0, peer_id_of(&c.node));
            Ok((asn, Some(c.node)))
        }
        Answer::Refused(why) => Err(format!("refused: {}", why.escape_default())),
    }
}

/// The inviter's decision on one claim (under the state lock).
fn process_claim(dir: &Path, claim: &Claim, now: Millis) -> anyhow::Result<Answer> {
    with_state(dir, |st| {
        let anchor = st.anchor()?;
        if claim.anchor != anchor {
            return Ok(Answer::Refused(format!(
                "this invitation is for another federation (authority {}), not {:?} (authority {})",
                claim.anchor.short(),
                st.name,
                anchor.short()
            )));
        }
        let days = st.validity_days;
        let authorizations = st.authorizations.clone();
        let answer = |cert| Answer::Cert {
            cert,
            authorizations: authorizations.clone(),
        };
        let Some(rec) = st.invites.iter_mut().find(|r| r.asn == claim.asn.0) else {
            return Ok(Answer::Refused(format!(
                "federation {:?} has no invitation for AS{}",
                st.name, claim.asn.0
            )));
        };
        let claim_key: NodeId = rec
            .claim_key
            .parse()
            .map_err(|e| anyhow::anyhow!("{STATE_FILE}: claim key: {e}"))?;
        if !claim.verify(&claim_key) {
            return Ok(Answer::Refused(
                "the claim is not signed with this invitation's key: the token is not one this \
                 federation issued"
                    .into(),
            ));
        }
        let node_hex = claim.node.to_string();
        if let Some(by) = &rec.claimed_by {
            if *by == node_hex
                && let Some(c) = &rec.cert
            {
                // The same node asking again (its answer was lost).
                return Ok(answer(cert_from_hex(c)?));
            }
            let by: NodeId = by
                .parse()
                .map_err(|e| anyhow::anyhow!("{STATE_FILE}: claimed_by: {e}"))?;
            return Ok(Answer::Refused(format!(
                "this invitation was already used by node {}; ask for a new one",
                peer_id_of(&by)
            )));
        }
        if now.0 > rec.expires_ms {
            return Ok(Answer::Refused(format!(
                "this invitation expired at {} ms since the epoch (now {}); ask for a new one",
                rec.expires_ms, now.0
            )));
        }
        let authority = load_authority(dir)?;
        let cert = issue_for(&authority, claim.node, claim.asn, days, &rec.communities)?;
        rec.claimed_by = Some(node_hex);
        rec.cert = Some(cert_hex(&cert));
        Ok(answer(cert))
    })
}

// ---- the joiner's side ----

/// Why a claim got no certificate.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ClaimFailure {
    /// The inviter answered no: final.
    #[error("the federation refused the invitation: {0}")]
    Refused(String),
    /// No inviter answered: worth retrying with the same key.
    #[error(
        "could not reach the inviter ({0}): is `abgp federation invite` still waiting on the \
         inviting machine, and can this machine reach it?"
    )]
    Unreachable(String),
}

/// Sends `claim` to the inviter's claim addresses in turn; the first that
/// answers decides.
pub(crate) fn claim_cert(
    invite: &Invite,
    claim: &Claim,
) -> Result<(AsnCert, Vec<String>), ClaimFailure> {
    let frame = claim.to_frame();
    let mut errors = Vec::new();
    for addr in &invite.claim {
        match try_claim(addr, &frame) {
            Ok(Answer::Cert {
                cert,
                authorizations,
            }) => return Ok((cert, authorizations)),
            Ok(Answer::Refused(why)) => return Err(ClaimFailure::Refused(why)),
            Err(e) => errors.push(format!("{addr}: {e}")),
        }
    }
    Err(ClaimFailure::Unreachable(errors.join("; ")))
}

fn try_claim(addr: &SocketAddr, frame: &[u8]) -> anyhow::Result<Answer> {
    let mut s = TcpStream::connect_timeout(addr, Duration::from_secs(3))?;
    s.set_read_timeout(Some(Duration::from_secs(10)))?;
    s.set_write_timeout(Some(Duration::from_secs(10)))?;
    s.write_all(frame)?;
    let mut header = [0u8; 4];
    s.read_exact(&mut header)?;
    let n = frame_len(header, invite::MAX_ANSWER_BYTES).map_err(|e| anyhow::anyhow!(e))?;
    let mut body = vec![0u8; n];
    s.read_exact(&mut body)?;
    Answer::decode(&body).map_err(|e| anyhow::anyhow!(e))
}

/// Checks the certificate the inviter sent: for our node and the offered
/// ASN, issued by the token's anchor, signature good, valid now.
pub(crate) fn check_issued(
    invite: &Invite,
    cert: &AsnCert,
    node: NodeId,
    now: Millis,
) -> anyhow::Result<()> {
    if cert.node != node {
        bail!(
            "the inviter sent a certificate for another node ({})",
            cert.node
        );
    }
    if cert.asn != invite.asn {
        bail!(
            "the inviter sent a certificate for AS{}, not the offered AS{}",
            cert.asn.0,
            invite.asn.0
        );
    }
    if cert.issuer != Some(invite.anchor) {
        bail!("the inviter sent a certificate not issued by the federation's authority");
    }
    verify_cert_signature(cert)
        .map_err(|e| anyhow::anyhow!("the certificate's signature does not verify: {e}"))?;
    if now > cert.not_after {
        bail!("the inviter sent an expired certificate");
    }
    Ok(())
}

/// Checks the origin authorisations the inviter sent: each a token signed
/// by the federation's authority (the node would refuse any other at
/// start).
pub(crate) fn check_authorizations(invite: &Invite, tokens: &[String]) -> anyhow::Result<()> {
    for (i, t) in tokens.iter().enumerate() {
        let roa = agent_bgp::identity::roa::Authorization::from_token(t)
            .map_err(|e| anyhow::anyhow!("the inviter sent origin authorisation {i}: {e}"))?;
        if roa.issuer != invite.anchor {
            bail!(
                "the inviter sent origin authorisation {i} ({}), not signed by the federation's authority",
                roa.prefix
            );
        }
    }
    Ok(())
}

// ---- authorize ----

fn authorize(a: FederationAuthorizeArgs) -> anyhow::Result<ExitCode> {
    let authority = load_authority(&a.dir)?;
    let config_path = a.dir.join(agent_bgp::config::CONFIG_FILE_NAME);
    let (token, roa) = with_state(&a.dir, |st| {
        if st.anchor()? != authority.node_id() {
            bail!("{AUTHORITY_KEY_FILE} is not the key {STATE_FILE} names as the anchor");
        }
        let asn = a.asn.unwrap_or(st.asns.0);
        if !(st.asns.0..=st.asns.1).contains(&asn) {
            bail!(
                "--asn {asn} is not one of the federation's ASNs ({}-{})",
                st.asns.0,
                st.asns.1
            );
        }
        if st.authorizations.len() >= invite::MAX_ANSWER_AUTHORIZATIONS {
            bail!(
                "the federation already has {} origin authorisations, the most an invitation carries",
                st.authorizations.len()
            );
        }
        let roa =
            super::asn::issue_authorization(&authority, &a.prefix, Asn(asn), a.max_depth, a.days)?;
        let token = roa.to_token();
        st.authorizations.push(token.clone());
        Ok((token, roa))
    })?;
    add_authorization_to_config(&config_path, &token)?;
    println!("{token}");
    eprintln!(
        "AS{} may originate {} (to depth {}) for {} days. Recorded in {STATE_FILE} and added to \
         {}'s [trust] authorizations (restart that node to use it). Nodes that join from now on \
         get it with their certificate; members that joined earlier add the line above to \
         their [trust] authorizations.",
        roa.asn.0,
        roa.prefix,
        roa.max_depth,
        a.days,
        config_path.display()
    );
    Ok(ExitCode::SUCCESS)
}

/// Appends `token` to `[trust] authorizations` in the node.toml at `path`,
/// keeping the rest of the file (comments included) as it is, and checks
/// that the result is still a valid configuration before replacing it.
fn add_authorization_to_config(path: &Path, token: &str) -> anyhow::Result<()> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let mut doc: toml_edit::DocumentMut = text
        .parse()
        .with_context(|| format!("{} is not TOML", path.display()))?;
    let trust = doc
        .entry("trust")
        .or_insert_with(|| toml_edit::Item::Table(toml_edit::Table::new()))
        .as_table_like_mut()
        .ok_or_else(|| anyhow::anyhow!("{}: [trust] is not a table", path.display()))?;
    let list = trust
        .entry("authorizations")
        .or_insert(toml_edit::value(toml_edit::Array::new()))
        .as_array_mut()
        .ok_or_else(|| anyhow::anyhow!("{}: trust.authorizations is not a list", path.display()))?;
    if !list.iter().any(|v| v.as_str() == Some(token)) {
        list.push(token);
    }
    let out = doc.to_string();
    NodeConfig::parse(&out, path).context("the configuration with the new authorisation")?;
    let tmp = path.with_extension("toml.tmp");
    std::fs::write(&tmp, &out).with_context(|| format!("writing {}", tmp.display()))?;
    std::fs::rename(&tmp, path).with_context(|| format!("replacing {}", path.display()))?;
    Ok(())
}

// ---- status ----

fn status(dir: &Path) -> anyhow::Result<ExitCode> {
    let st = load_state(dir)?;
    let t = now();
    println!("federation  {}", st.name);
    println!("authority   {}", st.anchor);
    println!(
        "asns        {}-{} (next {})",
        st.asns.0, st.asns.1, st.next_asn
    );
    let peer = |hex: &str| {
        hex.parse::<NodeId>()
            .map(|n| peer_id_of(&n).to_string())
            .unwrap_or_else(|_| "(unreadable)".into())
    };
    println!("members");
    println!("  AS{:<10} {} (the creator)", st.asns.0, peer(&st.creator));
    for r in st.invites.iter().filter(|r| r.claimed_by.is_some()) {
        println!(
            "  AS{:<10} {}",
            r.asn,
            peer(r.claimed_by.as_deref().unwrap_or(""))
        );
    }
    println!("open invitations");
    for r in st.invites.iter().filter(|r| r.claimed_by.is_none()) {
        let state = if t.0 > r.expires_ms {
            "expired".to_string()
        } else {
            format!("expires in {}s", (r.expires_ms - t.0) / 1000)
        };
        println!("  AS{:<10} {state}", r.asn);
    }
    println!("origin authorisations");
    for t in &st.authorizations {
        match agent_bgp::identity::roa::Authorization::from_token(t) {
            Ok(r) => println!(
                "  AS{:<10} {} (to depth {}, until {} ms since the epoch)",
                r.asn.0, r.prefix, r.max_depth, r.not_after.0
            ),
            Err(e) => println!("  (unreadable: {e})"),
        }
    }
    Ok(ExitCode::SUCCESS)
}
