//! The node key: one ed25519 key per node, kept in the node's data dir.
//!
//! The same key gives the node its libp2p `PeerId` and its [`NodeId`], so a
//! PeerId names exactly one agent-bgp identity. This module owns the key file
//! (format, permissions, atomic creation), signing with the key, checking
//! signatures against a [`NodeId`], and the conversions to and from libp2p.
//!
//! Key file format (text, two lines, mode 0600):
//!
//! ```text
//! agent-bgp node key v1
//! ed25519 <64 lower-case hex digits: the 32-byte secret seed>
//! ```
//!
//! The file is a [`crate::secret_file`]: created next to its final name and
//! hard-linked into place, so a crash leaves either no key or a whole key,
//! and an existing key is never overwritten. Loading refuses a file that
//! group or others can read.

use std::fmt;
use std::path::{Path, PathBuf};

use ed25519_dalek::{Signer, SigningKey, VerifyingKey};
use libp2p::PeerId;
use zeroize::{Zeroize, Zeroizing};

use crate::core::NodeId;
use crate::core::proof::Signature;
use crate::secret_file::{self, SecretFileError};

/// File name of the node key inside the data dir.
pub const KEY_FILE_NAME: &str = "node.key";

const HEADER: &str = "agent-bgp node key v1";
const SEED_TAG: &str = "ed25519 ";
/// Longest key file we read: header, tag, 64 hex digits, newlines, slack.
const MAX_KEY_FILE_BYTES: u64 = 256;

/// Why a key file could not be created or loaded.
#[derive(Debug, thiserror::Error)]
pub enum KeyFileError {
    #[error("node key {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("node key {path} already exists; refusing to overwrite it")]
    Exists { path: PathBuf },
    #[error(
        "node key {path} has mode {mode:04o}; group and others must have no access (run: chmod 600 {path})"
    )]
    TooOpen { path: PathBuf, mode: u32 },
    #[error("node key {path} is not a regular file")]
    NotAFile { path: PathBuf },
    #[error("node key {path} is malformed: {reason}")]
    Malformed { path: PathBuf, reason: &'static str },
}

impl From<SecretFileError> for KeyFileError {
    fn from(e: SecretFileError) -> Self {
        match e {
            SecretFileError::Io { path, source } => KeyFileError::Io { path, source },
            SecretFileError::Exists { path } => KeyFileError::Exists { path },
            SecretFileError::TooOpen { path, mode } => KeyFileError::TooOpen { path, mode },
            SecretFileError::NotAFile { path } => KeyFileError::NotAFile { path },
            SecretFileError::TooLong { path, .. } => KeyFileError::Malformed {
                path,
                reason: "longer than a key file can be",
            },
        }
    }
}

/// Why a libp2p peer id or public key is not an agent-bgp node id.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PeerIdError {
    #[error(
        "peer id {0} does not embed its public key (agent-bgp needs ed25519 identity peer ids)"
    )]
    NotInline(String),
    #[error("peer id {0} is not an ed25519 key")]
    NotEd25519(String),
    #[error("peer id {0} holds a malformed public key")]
    BadKey(String),
    #[error("node id {0} is not a valid ed25519 public key")]
    BadNodeId(String),
}

/// A signature that does not verify, or a key that cannot verify anything.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SigError {
    #[error("public key is not a valid ed25519 point")]
    BadKey,
    #[error("public key is a weak (small-order) point")]
    WeakKey,
    #[error("signature does not verify")]
    Invalid,
}

/// The node's secret key. `Debug` never prints the secret; there is no
/// `Clone`, so share it with `Arc`.
pub struct NodeKey {
    signing: SigningKey,
    id: NodeId,
}

impl fmt::Debug for NodeKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NodeKey")
            .field("id", &self.id)
            .field("secret", &"<redacted>")
            .finish()
    }
}

impl NodeKey {
    /// A fresh key from the operating system's random source.
    pub fn generate() -> Self {
        let mut seed = Zeroizing::new([0u8; 32]);
        rand::RngCore::fill_bytes(&mut rand::rngs::OsRng, seed.as_mut());
        Self::from_seed(&seed)
    }

    /// The key for a 32-byte seed. Deterministic: tests, golden vectors and
    /// the simulator use it; a real node uses [`NodeKey::generate`].
    pub fn from_seed(seed: &[u8; 32]) -> Self {
        let signing = SigningKey::from_bytes(seed);
        let id = NodeId(signing.verifying_key().to_bytes());
        NodeKey { signing, id }
    }

    pub fn node_id(&self) -> NodeId {
        self.id
    }

    pub fn sign(&self, msg: &[u8]) -> Signature {
        Signature(self.signing.sign(msg).to_bytes())
    }

    /// The X25519 secret of this key (the clamped scalar of its ed25519
    /// secret, as RFC 8032 expands it), for opening payloads sealed to
    /// this node ([`super::seal`]). Secret: never logged or stored.
    pub(crate) fn x25519_secret(&self) -> Zeroizing<[u8; 32]> {
        Zeroizing::new(self.signing.to_scalar_bytes())
    }

    /// The same key as a libp2p identity keypair (for the swarm's noise
    /// handshake). libp2p only fails this for a seed that is not 32 bytes,
    /// which ours always is.
    pub fn to_libp2p(&self) -> Result<libp2p::identity::Keypair, PeerIdError> {
        let mut seed = self.signing.to_bytes();
        let out = libp2p::identity::Keypair::ed25519_from_bytes(&mut seed);
        seed.zeroize();
        out.map_err(|_| PeerIdError::BadNodeId(self.id.to_string()))
    }

    /// The libp2p peer id of this key.
    pub fn peer_id(&self) -> PeerId {
        peer_id_of(&self.id)
    }

    /// Writes a new key file. Never overwrites: an existing file is an
    /// error. Creates the parent directory (mode 0700) if needed.
    pub fn create(path: &Path, key: &NodeKey) -> Result<(), KeyFileError> {
        let mut text = Zeroizing::new(String::with_capacity(100));
        text.push_str(HEADER);
        text.push('\n');
        text.push_str(SEED_TAG);
        text.push_str(&Zeroizing::new(hex::encode(key.signing.to_bytes())));
        text.push('\n');
        secret_file::create(path, text.as_bytes()).map_err(KeyFileError::from)
    }

    /// Reads a key file, refusing one that group or others can access.
    pub fn load(path: &Path) -> Result<NodeKey, KeyFileError> {
        let malformed = |reason| KeyFileError::Malformed {
            path: path.to_path_buf(),
            reason,
        };
        let bytes = secret_file::read(path, MAX_KEY_FILE_BYTES).map_err(|e| match e {
            SecretFileError::TooLong { .. } => malformed("longer than a key file can be"),
            e => KeyFileError::from(e),
        })?;
        let text = std::str::from_utf8(&bytes).map_err(|_| malformed("not UTF-8 text"))?;
        let mut lines = text.lines();
        if lines.next() != Some(HEADER) {
            return Err(malformed("first line is not \"agent-bgp node key v1\""));
        }
        let seed_hex = lines
            .next()
            .and_then(|l| l.strip_prefix(SEED_TAG))
            .ok_or_else(|| malformed("second line is not \"ed25519 <hex seed>\""))?;
        if lines.any(|l| !l.is_empty()) {
            return Err(malformed("unexpected text after the seed"));
        }
        let mut seed = Zeroizing::new([0u8; 32]);
        hex::decode_to_slice(seed_hex.trim_end(), seed.as_mut())
            .map_err(|_| malformed("seed is not 64 hex digits"))?;
        Ok(NodeKey::from_seed(&seed))
    }

    /// Loads the key at `path`, or creates one there if there is none.
    /// Returns the key and whether it was just created.
    pub fn load_or_create(path: &Path) -> Result<(NodeKey, bool), KeyFileError> {
        match NodeKey::load(path) {
            Ok(k) => Ok((k, false)),
            Err(KeyFileError::Io { source, .. })
                if source.kind() == std::io::ErrorKind::NotFound =>
            {
                let key = NodeKey::generate();
                match NodeKey::create(path, &key) {
                    Ok(()) => Ok((key, true)),
                    // Another process won the race: use its key.
                    Err(KeyFileError::Exists { .. }) => NodeKey::load(path).map(|k| (k, false)),
                    Err(e) => Err(e),
                }
            }
            Err(e) => Err(e),
        }
    }
}

/// The ed25519 verifying key of a node, rejecting points that are not on
/// the curve and weak (small-order) keys, under which signatures prove
/// nothing.
pub fn verifying_key(node: &NodeId) -> Result<VerifyingKey, SigError> {
    let vk = VerifyingKey::from_bytes(node.as_bytes()).map_err(|_| SigError::BadKey)?;
    if vk.is_weak() {
        return Err(SigError::WeakKey);
    }
    Ok(vk)
}

/// Checks `sig` over `msg` by `node`, with ed25519-dalek's strict rules
/// (canonical `s`, no small-order `R` or key).
pub fn verify(node: &NodeId, msg: &[u8], sig: &Signature) -> Result<(), SigError> {
    let vk = verifying_key(node)?;
    vk.verify_strict(msg, &ed25519_dalek::Signature::from_bytes(&sig.0))
        .map_err(|_| SigError::Invalid)
}

/// How libp2p encodes an ed25519 public key (protobuf `PublicKey`): field 1
/// `Type = Ed25519 (1)`, then field 2 `Data`, 32 bytes long. Peer ids embed
/// this encoding in an identity multihash.
const ED25519_PROTOBUF_PREFIX: [u8; 4] = [0x08, 0x01, 0x12, 0x20];

/// The libp2p peer id of a node (an identity multihash of its public key).
/// Built from the key's bytes as they are: no curve arithmetic, so it is
/// cheap enough for every message. A node id that is not a valid point
/// gives a peer id nobody can authenticate as.
pub fn peer_id_of(node: &NodeId) -> PeerId {
    let mut enc = [0u8; 36];
    enc[..4].copy_from_slice(&ED25519_PROTOBUF_PREFIX);
    enc[4..].copy_from_slice(node.as_bytes());
    // 36 bytes fit the 64-byte multihash, and identity multihashes of up
    // to 42 bytes are peer ids: neither step can fail.
    libp2p::multihash::Multihash::<64>::wrap(0, &enc)
        .ok()
        .and_then(|mh| PeerId::from_multihash(mh).ok())
        .unwrap_or_else(|| unreachable!("a 36-byte identity multihash is a peer id"))
}

/// The peer id at the end of a multiaddr (`.../p2p/<id>`), if any: the key
/// a dial to that address must authenticate.
pub fn peer_of_addr(a: &libp2p::Multiaddr) -> Option<PeerId> {
    match a.iter().last() {
        Some(libp2p::multiaddr::Protocol::P2p(p)) => Some(p),
        _ => None,
    }
}

/// The node id a libp2p peer id names. Only ed25519 peer ids qualify: they
/// embed the public key, so no lookup is needed.
pub fn node_id_of(peer: &PeerId) -> Result<NodeId, PeerIdError> {
    let mh = peer.as_ref();
    // Multihash code 0 is "identity": the digest is the protobuf-encoded
    // public key itself. Hashed (sha2-256) peer ids are RSA and similar.
    if mh.code() != 0 {
        return Err(PeerIdError::NotInline(peer.to_string()));
    }
    // The canonical encoding (what libp2p writes): the key's bytes are
    // read as they are, without decompressing the point (this runs for
    // every message; keys are checked where signatures are).
    if let Some(key) = mh.digest().strip_prefix(&ED25519_PROTOBUF_PREFIX[..])
        && let Ok(bytes) = <[u8; 32]>::try_from(key)
    {
        return Ok(NodeId(bytes));
    }
    let pk = libp2p::identity::PublicKey::try_decode_protobuf(mh.digest())
        .map_err(|_| PeerIdError::BadKey(peer.to_string()))?;
    let ed = pk
        .try_into_ed25519()
        .map_err(|_| PeerIdError::NotEd25519(peer.to_string()))?;
    Ok(NodeId(ed.to_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;
    use std::os::unix::fs::MetadataExt;

    fn key(n: u8) -> NodeKey {
        NodeKey::from_seed(&[n; 32])
    }

    #[test]
    fn created_key_file_is_0600_and_loads_back() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("data").join(KEY_FILE_NAME);
        let k = key(1);
        NodeKey::create(&path, &k).unwrap();
        let mode = fs::metadata(&path).unwrap().mode() & 0o777;
        assert_eq!(mode, 0o600);
        let dir_mode = fs::metadata(path.parent().unwrap()).unwrap().mode() & 0o777;
        assert_eq!(dir_mode & 0o077, 0);
        assert_eq!(NodeKey::load(&path).unwrap().node_id(), k.node_id());
        let text = fs::read_to_string(&path).unwrap();
        assert!(text.starts_with("agent-bgp node key v1\ned25519 "));
        // No temporary file is left behind.
        assert_eq!(fs::read_dir(path.parent().unwrap()).unwrap().count(), 1);
    }

    #[test]
    fn create_refuses_to_overwrite() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(KEY_FILE_NAME);
        NodeKey::create(&path, &key(1)).unwrap();
        let err = NodeKey::create(&path, &key(2)).unwrap_err();
        assert!(matches!(err, KeyFileError::Exists { .. }), "{err}");
        assert_eq!(NodeKey::load(&path).unwrap().node_id(), key(1).node_id());
    }

    #[test]
    fn load_refuses_group_or_world_readable_file() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(KEY_FILE_NAME);
        NodeKey::create(&path, &key(1)).unwrap();
        fs::set_permissions(&path, fs::Permissions::from_mode(0o640)).unwrap();
        let err = NodeKey::load(&path).unwrap_err();
        assert!(
            matches!(err, KeyFileError::TooOpen { mode: 0o640, .. }),
            "{err}"
        );
        assert!(err.to_string().contains("chmod 600"));
    }

    #[test]
    fn load_reports_malformed_files() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let cases: &[(&str, &str)] = &[
            ("", "first line"),
            ("agent-bgp node key v2\ned25519 00\n", "first line"),
            ("agent-bgp node key v1\n", "second line"),
            ("agent-bgp node key v1\nrsa 00\n", "second line"),
            ("agent-bgp node key v1\ned25519 zz\n", "64 hex"),
            ("agent-bgp node key v1\ned25519 0011\n", "64 hex"),
        ];
        for (i, (text, want)) in cases.iter().enumerate() {
            let path = dir.path().join(format!("k{i}"));
            fs::write(&path, text).unwrap();
            fs::set_permissions(&path, fs::Permissions::from_mode(0o600)).unwrap();
            let err = NodeKey::load(&path).unwrap_err();
            assert!(err.to_string().contains(want), "case {i}: {err}");
        }
        let long = dir.path().join("long");
        fs::write(&long, "x".repeat(10_000)).unwrap();
        fs::set_permissions(&long, fs::Permissions::from_mode(0o600)).unwrap();
        assert!(matches!(
            NodeKey::load(&long),
            Err(KeyFileError::Malformed { .. })
        ));
        let trailing = dir.path().join("trailing");
        let seed = "ab".repeat(32);
        fs::write(
            &trailing,
            format!("agent-bgp node key v1\ned25519 {seed}\nmore\n"),
        )
        .unwrap();
        fs::set_permissions(&trailing, fs::Permissions::from_mode(0o600)).unwrap();
        assert!(matches!(
            NodeKey::load(&trailing),
            Err(KeyFileError::Malformed { .. })
        ));
        assert!(matches!(
            NodeKey::load(dir.path()),
            Err(KeyFileError::NotAFile { .. }) | Err(KeyFileError::TooOpen { .. })
        ));
    }

    #[test]
    fn load_or_create_creates_once_then_loads() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(KEY_FILE_NAME);
        let (a, created) = NodeKey::load_or_create(&path).unwrap();
        assert!(created);
        let (b, created) = NodeKey::load_or_create(&path).unwrap();
        assert!(!created);
        assert_eq!(a.node_id(), b.node_id());
    }

    #[test]
    fn debug_never_prints_the_secret() {
        let k = key(7);
        let dbg = format!("{k:?}");
        assert!(dbg.contains("redacted"));
        assert!(!dbg.contains(&hex::encode([7u8; 32])));
        assert!(!dbg.contains(&hex::encode(k.signing.to_bytes())));
    }

    #[test]
    fn peer_id_and_node_id_name_the_same_key() {
        let k = key(3);
        let pid = k.peer_id();
        assert_eq!(node_id_of(&pid), Ok(k.node_id()));
        assert_eq!(peer_id_of(&k.node_id()), pid);
        // The same peer id libp2p derives from the key.
        let lp =
            libp2p::identity::ed25519::PublicKey::try_from_bytes(k.node_id().as_bytes()).unwrap();
        assert_eq!(libp2p::identity::PublicKey::from(lp).to_peer_id(), pid);
        let kp = k.to_libp2p().unwrap();
        assert_eq!(kp.public().to_peer_id(), pid);
        // libp2p signatures with the converted key verify as ours.
        let sig = kp.sign(b"m").unwrap();
        let mut arr = [0u8; 64];
        arr.copy_from_slice(&sig);
        assert_eq!(verify(&k.node_id(), b"m", &Signature(arr)), Ok(()));
    }

    #[test]
    fn non_ed25519_peer_ids_are_refused() {
        // A sha2-256 multihash peer id (as RSA keys get) embeds no key.
        let hashed = PeerId::from_bytes(&{
            let mut b = vec![0x12, 0x20];
            b.extend_from_slice(&[9u8; 32]);
            b
        })
        .unwrap();
        assert!(matches!(
            node_id_of(&hashed),
            Err(PeerIdError::NotInline(_))
        ));
        // An inline (identity multihash) secp256k1 key: protobuf KeyType 2.
        let mut inline = vec![0x00, 0x25, 0x08, 0x02, 0x12, 0x21, 0x02];
        inline.extend_from_slice(&[7u8; 32]);
        let secp = PeerId::from_bytes(&inline).unwrap();
        assert!(matches!(
            node_id_of(&secp),
            Err(PeerIdError::NotEd25519(_)) | Err(PeerIdError::BadKey(_))
        ));
    }

    #[test]
    fn signatures_verify_only_with_the_right_key_and_message() {
        let k = key(4);
        let sig = k.sign(b"hello");
        assert_eq!(verify(&k.node_id(), b"hello", &sig), Ok(()));
        assert_eq!(verify(&k.node_id(), b"hellp", &sig), Err(SigError::Invalid));
        assert_eq!(
            verify(&key(5).node_id(), b"hello", &sig),
            Err(SigError::Invalid)
        );
        // The identity point is a weak key.
        let mut ident = [0u8; 32];
        ident[0] = 1;
        assert_eq!(
            verify(&NodeId(ident), b"hello", &sig),
            Err(SigError::WeakKey)
        );
    }
}
