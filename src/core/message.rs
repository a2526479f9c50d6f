//! Routing messages exchanged between peers, as plain data.
//!
//! These are what the engine and the session state machine consume and
//! produce. `crate::wire` maps them to and from versioned CBOR frames and
//! adds the call-tunnelling messages, which the routing core never sees.

use std::sync::Arc;

use serde::{Deserialize, Serialize};

use super::ids::{Asn, NodeId};
use super::prefix::Prefix;
use super::proof::{AsnCert, Tombstone};
use super::route::{Route, RouteKey};

/// Protocol version this build speaks.
pub const PROTOCOL_VERSION: u16 = 1;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Message {
    Open(Open),
    Keepalive,
    Update(Update),
    Notification(Notification),
    /// Asks the peer to re-send its whole Adj-RIB-Out to us.
    RouteRefresh,
}

impl Message {
    pub fn kind(&self) -> &'static str {
        match self {
            Message::Open(_) => "OPEN",
            Message::Keepalive => "KEEPALIVE",
            Message::Update(_) => "UPDATE",
            Message::Notification(_) => "NOTIFICATION",
            Message::RouteRefresh => "ROUTE-REFRESH",
        }
    }
}

/// Optional features a speaker offers in OPEN. A feature is used on a
/// session only when both sides offer it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Capabilities {
    pub route_refresh: bool,
    /// Seconds the peer keeps our routes as stale after we go away (RFC 4724).
    pub graceful_restart: Option<u16>,
    /// Willing to receive several paths per prefix (add-path style).
    pub add_path: bool,
    pub multipath: bool,
    /// The sender's role towards the receiver (RFC 9234), when configured.
    #[serde(default)]
    pub role: Option<crate::core::role::Role>,
    /// Sends and understands the unreachable signal: withdrawals marked
    /// "I have no route to this at all" (docs/protocol.md).
    #[serde(default)]
    pub unreachable: bool,
    /// Sends and understands origin-signed withdrawals (tombstones,
    /// docs/protocol.md).
    #[serde(default)]
    pub tombstones: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Open {
    pub version: u16,
    pub asn: Asn,
    pub node: NodeId,
    /// Seconds; 0 disables keepalives and the hold timer, else at least 3.
    pub hold_time: u16,
    pub capabilities: Capabilities,
    /// Peers of different federations refuse each other.
    pub federation: String,
    /// Proof that `node` may speak for `asn`; checked by `crate::identity`
    /// before the engine sees the OPEN.
    pub cert: Option<Arc<AsnCert>>,
}

/// Announcements and withdrawals in one batch. A route announced for a key
/// the peer already announced replaces it (implicit withdraw).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Update {
    pub announce: Vec<Route>,
    pub withdraw: Vec<RouteKey>,
    /// The sender has now sent its whole table (RFC 4724 end-of-RIB marker).
    pub end_of_rib: bool,
    /// Withdrawn prefixes to which the sender has no route at all (the
    /// unreachable signal; only on sessions that negotiated it).
    #[serde(default)]
    pub unreachable: Vec<Prefix>,
    /// Origin-signed withdrawals, relayed unchanged (only on sessions that
    /// negotiated them).
    #[serde(default)]
    pub tombstones: Vec<Arc<Tombstone>>,
}

impl Update {
    pub fn is_empty(&self) -> bool {
        self.announce.is_empty()
            && self.withdraw.is_empty()
            && !self.end_of_rib
            && self.tombstones.is_empty()
    }
}

/// NOTIFICATION error codes, numbered as in BGP (RFC 4271 section 4.5).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum ErrorCode {
    MessageHeader = 1,
    Open = 2,
    Update = 3,
    HoldTimerExpired = 4,
    Fsm = 5,
    Cease = 6,
    RouteRefresh = 7,
}

impl ErrorCode {
    pub fn from_u8(v: u8) -> Option<Self> {
        Some(match v {
            1 => ErrorCode::MessageHeader,
            2 => ErrorCode::Open,
            3 => ErrorCode::Update,
            4 => ErrorCode::HoldTimerExpired,
            5 => ErrorCode::Fsm,
            6 => ErrorCode::Cease,
            7 => ErrorCode::RouteRefresh,
            _ => return None,
        })
    }
}

/// Subcodes. BGP's where one exists; 16 and up are agent-bgp's own.
pub mod subcode {
    // MessageHeader
    pub const BAD_MESSAGE_LENGTH: u8 = 2;
    pub const BAD_MESSAGE_TYPE: u8 = 3;
    pub const MALFORMED_CBOR: u8 = 16;
    /// The frame's schema version is not one this node speaks.
    pub const UNSUPPORTED_FRAME_VERSION: u8 = 17;
    /// Well-formed CBOR, but a message body (NOTIFICATION, call messages)
    /// does not match its schema.
    pub const MALFORMED_BODY: u8 = 18;
    // Open
    /// An OPEN body that does not match its schema (RFC 4271 allows 0).
    pub const UNSPECIFIC: u8 = 0;
    pub const UNSUPPORTED_VERSION: u8 = 1;
    pub const BAD_PEER_AS: u8 = 2;
    pub const BAD_IDENTIFIER: u8 = 3;
    pub const UNACCEPTABLE_HOLD_TIME: u8 = 6;
    /// The two ends' neighbour roles do not agree (RFC 9234).
    pub const ROLE_MISMATCH: u8 = 11;
    pub const BAD_CERTIFICATE: u8 = 16;
    pub const CERTIFICATE_EXPIRED: u8 = 17;
    pub const ASN_CLAIMED_BY_OTHER_KEY: u8 = 18;
    pub const WRONG_FEDERATION: u8 = 19;
    pub const UNTRUSTED_ISSUER: u8 = 20;
    // Update
    pub const MALFORMED_ATTRIBUTE_LIST: u8 = 1;
    /// An attribute key this version must understand but does not know.
    pub const UNRECOGNIZED_WELL_KNOWN_ATTRIBUTE: u8 = 2;
    pub const INVALID_NETWORK_FIELD: u8 = 10;
    pub const MALFORMED_AS_PATH: u8 = 11;
    pub const BAD_SIGNATURE: u8 = 16;
    pub const TOO_MANY_ROUTES: u8 = 17;
    /// A route proof (attestation, path signatures, certificate table) that
    /// does not match its schema; bad signatures are `BAD_SIGNATURE`.
    pub const MALFORMED_PROOF: u8 = 18;
    // RouteRefresh (RFC 7313)
    pub const INVALID_ROUTE_REFRESH: u8 = 1;
    // Cease (RFC 4486)
    pub const MAX_PREFIX: u8 = 1;
    pub const ADMIN_SHUTDOWN: u8 = 2;
    pub const PEER_DECONFIGURED: u8 = 3;
    pub const ADMIN_RESET: u8 = 4;
    pub const CONNECTION_REJECTED: u8 = 5;
    pub const OTHER_CONFIG_CHANGE: u8 = 6;
    pub const COLLISION_RESOLUTION: u8 = 7;
    pub const OUT_OF_RESOURCES: u8 = 8;
    // Fsm (RFC 6608)
    pub const UNEXPECTED_IN_OPENSENT: u8 = 1;
    pub const UNEXPECTED_IN_OPENCONFIRM: u8 = 2;
    pub const UNEXPECTED_IN_ESTABLISHED: u8 = 3;
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Notification {
    pub code: ErrorCode,
    pub subcode: u8,
    /// Human-readable reason, for the peer's logs.
    pub text: String,
}

impl Notification {
    pub fn new(code: ErrorCode, subcode: u8, text: impl Into<String>) -> Self {
        Notification {
            code,
            subcode,
            text: text.into(),
        }
    }
}

/// The reason text came from a peer: it is shown quoted and escaped
/// (`"line\nbreak"`), so it cannot forge log lines or terminal output.
impl std::fmt::Display for Notification {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:?}/{}: {:?}", self.code, self.subcode, self.text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn notification_text_is_escaped_when_shown() {
        let n = Notification::new(ErrorCode::Cease, 2, "bye\nINFO forged\u{1b}[2J");
        let s = n.to_string();
        assert!(!s.contains('\n') && !s.contains('\u{1b}'), "{s}");
        assert!(s.ends_with("\"bye\\nINFO forged\\u{1b}[2J\""), "{s}");
    }
}
