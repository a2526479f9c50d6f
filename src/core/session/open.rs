//! What we put in our OPEN, the checks the peer's OPEN must pass, and the
//! parameters both sides settle on.
//!
//! Certificate *verification* is not here: `crate::identity` checks the
//! peer's `cert` before the OPEN reaches the session. These are the
//! protocol-level checks RFC 4271 section 6.2 makes, adapted to our ids.

use std::sync::Arc;
use std::time::Duration;

use super::Direction;
use super::config::{SessionConfig, ms};
use crate::core::ids::{Asn, NodeId};
use crate::core::message::{
    Capabilities, ErrorCode, Notification, Open, PROTOCOL_VERSION, subcode,
};
use crate::core::proof::AsnCert;
use crate::core::role::roles_agree;

/// The parameters a session runs with once both OPENs have been accepted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Negotiated {
    pub peer_asn: Asn,
    pub peer_node: NodeId,
    pub federation: String,
    /// The peer's certificate, already verified by `crate::identity`.
    pub peer_cert: Option<Arc<AsnCert>>,
    /// The smaller of both hold times; zero means no hold timer and no keepalives.
    pub hold_time: Duration,
    /// How often we send KEEPALIVE; `None` when the hold time is zero.
    pub keepalive_interval: Option<Duration>,
    /// Features both sides offered. `graceful_restart` carries the *peer's*
    /// restart time: how long we keep its routes as stale if it goes away.
    pub capabilities: Capabilities,
    /// Who opened the transport the session runs on.
    pub direction: Direction,
}

pub(super) fn our_open(cfg: &SessionConfig) -> Open {
    Open {
        version: PROTOCOL_VERSION,
        asn: cfg.local_asn(),
        node: cfg.local_node(),
        hold_time: cfg.hold_time_secs(),
        capabilities: cfg.capabilities().clone(),
        federation: cfg.federation().to_owned(),
        cert: cfg.cert().cloned(),
    }
}

fn reject(sub: u8, text: String) -> Notification {
    Notification::new(ErrorCode::Open, sub, text)
}

/// Checks the peer's OPEN, received on a transport whose far end
/// authenticated as `remote`. The error is the NOTIFICATION to send.
pub(super) fn check_open(
    cfg: &SessionConfig,
    remote: &NodeId,
    open: &Open,
) -> Result<(), Notification> {
    if open.version != PROTOCOL_VERSION {
        return Err(reject(
            subcode::UNSUPPORTED_VERSION,
            format!(
                "peer speaks protocol version {}, we speak {PROTOCOL_VERSION}",
                open.version
            ),
        ));
    }
    if let Some(want) = cfg.peer_asn()
        && open.asn != want
    {
        return Err(reject(
            subcode::BAD_PEER_AS,
            format!("expected {want}, OPEN says {}", open.asn),
        ));
    }
    if open.node == cfg.local_node() {
        return Err(reject(
            subcode::BAD_IDENTIFIER,
            format!(
                "OPEN carries our own node id {}: connected to ourselves",
                open.node.short()
            ),
        ));
    }
    // The transport authenticated `remote`; an OPEN naming another node is
    // someone speaking for a key they do not hold.
    if open.node != *remote {
        return Err(reject(
            subcode::BAD_IDENTIFIER,
            format!(
                "OPEN names node {} but the transport authenticated {}",
                open.node.short(),
                remote.short()
            ),
        ));
    }
    if let Some(want) = cfg.peer_node()
        && open.node != want
    {
        return Err(reject(
            subcode::BAD_IDENTIFIER,
            format!(
                "expected node {}, OPEN says {}",
                want.short(),
                open.node.short()
            ),
        ));
    }
    if open.federation != cfg.federation() {
        return Err(reject(
            subcode::WRONG_FEDERATION,
            format!(
                "we belong to federation {:?}, OPEN says {:?}",
                cfg.federation(),
                open.federation
            ),
        ));
    }
    if open.hold_time == 0 && cfg.require_hold() {
        return Err(reject(
            subcode::UNACCEPTABLE_HOLD_TIME,
            "hold time 0 (no keepalives) is not accepted from a discovered peer".into(),
        ));
    }
    check_role(cfg, open)?;
    if open.hold_time == 1 || open.hold_time == 2 {
        return Err(reject(
            subcode::UNACCEPTABLE_HOLD_TIME,
            format!(
                "hold time {} s is not allowed (0 or at least 3)",
                open.hold_time
            ),
        ));
    }
    Ok(())
}

/// RFC 9234 section 4.2: when we hold a role towards the peer, its role
/// must be the counterpart (provider with customer, route server with
/// client, peer with peer); in strict mode it must announce one.
fn check_role(cfg: &SessionConfig, open: &Open) -> Result<(), Notification> {
    let Some(ours) = cfg.capabilities().role else {
        return Ok(());
    };
    match open.capabilities.role {
        Some(theirs) if !roles_agree(ours, theirs) => Err(reject(
            subcode::ROLE_MISMATCH,
            format!(
                "role mismatch: we are {ours} to the peer, so it must be {}, but its OPEN says {theirs}",
                ours.counterpart()
            ),
        )),
        None if cfg.strict_role() => Err(reject(
            subcode::ROLE_MISMATCH,
            format!(
                "role mismatch: we are {ours} to the peer and require its role (strict), but its OPEN announces none"
            ),
        )),
        _ => Ok(()),
    }
}

/// RFC 4271 section 4.2: the session uses the smaller hold time; a
/// keepalive every third of it, never more often than the configured floor
/// and never less often than half of it, so the peer's hold timer cannot
/// fire on a healthy session.
pub(super) fn keepalive_interval(cfg: &SessionConfig, hold: Duration) -> Option<Duration> {
    if hold.is_zero() {
        return None;
    }
    let hold_ms = ms(hold);
    let every = (hold_ms / 3).max(ms(cfg.min_keepalive())).min(hold_ms / 2);
    Some(Duration::from_millis(every.max(1)))
}

/// The parameters of a session whose OPEN passed [`check_open`].
pub(super) fn negotiate(cfg: &SessionConfig, open: Open, direction: Direction) -> Negotiated {
    let hold_secs = cfg.hold_time_secs().min(open.hold_time);
    let hold_time = Duration::from_secs(u64::from(hold_secs));
    let ours = cfg.capabilities();
    let theirs = &open.capabilities;
    let capabilities = Capabilities {
        route_refresh: ours.route_refresh && theirs.route_refresh,
        // Only meaningful when both speak it; the time that matters to us is
        // the one the peer asked for.
        graceful_restart: ours.graceful_restart.and(theirs.graceful_restart),
        add_path: ours.add_path && theirs.add_path,
        multipath: ours.multipath && theirs.multipath,
        // The peer's role towards us, as it announced it.
        role: theirs.role,
        unreachable: ours.unreachable && theirs.unreachable,
        tombstones: ours.tombstones && theirs.tombstones,
    };
    Negotiated {
        peer_asn: open.asn,
        peer_node: open.node,
        federation: open.federation,
        peer_cert: open.cert,
        hold_time,
        keepalive_interval: keepalive_interval(cfg, hold_time),
        capabilities,
        direction,
    }
}
