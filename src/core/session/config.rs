//! Per-peer session settings: private fields, documented defaults and
//! `with_*` builders. [`SessionConfig::validate`] (called by
//! [`Session::new`](super::Session::new)) rejects combinations the state
//! machine could not honour, so the FSM itself never has to.

use std::sync::Arc;
use std::time::Duration;

use crate::core::ids::{Asn, NodeId};
use crate::core::message::Capabilities;
use crate::core::proof::AsnCert;

/// Settings for one peering session.
///
/// Defaults (see `docs/session.md` for what each one does on the wire):
///
/// | setting | default | effect |
/// |---|---|---|
/// | hold time | 90 s | session drops after this much silence; 0 disables keepalives and the hold timer |
/// | minimum keepalive | 1 s | floor for the keepalive interval (negotiated hold / 3) |
/// | open hold time | 240 s | how long we wait for the peer's OPEN (RFC 4271's "large value") |
/// | connect retry base | 1 s | first reconnect delay after a failure |
/// | connect retry max | 60 s | cap on the (pre-jitter) reconnect delay |
/// | connect timeout | 30 s | how long a dial may take before we give up and back off |
/// | stable after | 60 s | an Established session that lasted this long resets the back-off |
/// | damped idle hold | 60 s | minimum wait before reconnecting after a Cease (ours for max-prefix, or the peer's) |
/// | max prefix | none | tear down when the peer makes us hold more routes than this |
/// | max prefix warning | 75 % | warn once when accepted routes reach this share of the limit |
/// | passive | false | when true, never dial; only accept the peer's connection |
/// | capabilities | route refresh only | what we offer in OPEN |
/// | peer asn / peer node | not pinned | when pinned, an OPEN naming anything else is refused |
/// | strict role | false | with a role in our capabilities, refuse a peer that announces none |
#[derive(Debug, Clone, PartialEq)]
pub struct SessionConfig {
    local_asn: Asn,
    local_node: NodeId,
    federation: String,
    cert: Option<Arc<AsnCert>>,
    capabilities: Capabilities,
    peer_asn: Option<Asn>,
    peer_node: Option<NodeId>,
    hold_time: Duration,
    min_keepalive: Duration,
    open_hold_time: Duration,
    connect_retry_base: Duration,
    connect_retry_max: Duration,
    connect_timeout: Duration,
    stable_after: Duration,
    damped_idle_hold: Duration,
    max_prefix: Option<u32>,
    max_prefix_warning_pct: u8,
    passive: bool,
    require_hold: bool,
    strict_role: bool,
}

/// A [`SessionConfig`] the state machine cannot run with.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    /// OPEN carries the hold time as whole seconds in a `u16`, and RFC 4271
    /// forbids 1 and 2 seconds.
    #[error("hold time {0:?} must be 0 or a whole number of seconds from 3 to 65535")]
    HoldTime(Duration),
    #[error("open hold time must be at least 1 s, got {0:?}")]
    OpenHoldTime(Duration),
    #[error("connect retry base must be at least 1 ms and at most the max ({base:?} > {max:?})")]
    Backoff { base: Duration, max: Duration },
    #[error("connect timeout must be at least 1 ms")]
    ConnectTimeout,
    #[error("max prefix warning must be 1 to 100 percent, got {0}")]
    MaxPrefixWarning(u8),
}

impl SessionConfig {
    /// A config with the defaults in the table above; the local identity is
    /// required because it goes into our OPEN.
    pub fn new(local_asn: Asn, local_node: NodeId, federation: impl Into<String>) -> Self {
        SessionConfig {
            local_asn,
            local_node,
            federation: federation.into(),
            cert: None,
            capabilities: Capabilities {
                route_refresh: true,
                ..Capabilities::default()
            },
            peer_asn: None,
            peer_node: None,
            hold_time: Duration::from_secs(90),
            min_keepalive: Duration::from_secs(1),
            open_hold_time: Duration::from_secs(240),
            connect_retry_base: Duration::from_secs(1),
            connect_retry_max: Duration::from_secs(60),
            connect_timeout: Duration::from_secs(30),
            stable_after: Duration::from_secs(60),
            damped_idle_hold: Duration::from_secs(60),
            max_prefix: None,
            max_prefix_warning_pct: 75,
            passive: false,
            require_hold: false,
            strict_role: false,
        }
    }

    /// The certificate binding our node to our ASN, sent in our OPEN.
    pub fn with_cert(mut self, cert: Arc<AsnCert>) -> Self {
        self.cert = Some(cert);
        self
    }
    /// Capabilities we offer; the session uses the intersection with the peer's.
    pub fn with_capabilities(mut self, caps: Capabilities) -> Self {
        self.capabilities = caps;
        self
    }
    /// Refuse an OPEN from any other ASN (NOTIFICATION Open/BAD_PEER_AS).
    pub fn with_peer_asn(mut self, asn: Asn) -> Self {
        self.peer_asn = Some(asn);
        self
    }
    /// Refuse an OPEN from any other node (NOTIFICATION Open/BAD_IDENTIFIER).
    pub fn with_peer_node(mut self, node: NodeId) -> Self {
        self.peer_node = Some(node);
        self
    }
    /// Silence tolerated before the session is torn down; we offer it in
    /// OPEN and the session uses the smaller of ours and the peer's.
    pub fn with_hold_time(mut self, d: Duration) -> Self {
        self.hold_time = d;
        self
    }
    /// Never send keepalives more often than this, even if hold / 3 is shorter.
    /// The interval is still capped at hold / 2 so the peer never times out.
    pub fn with_min_keepalive(mut self, d: Duration) -> Self {
        self.min_keepalive = d;
        self
    }
    /// How long to wait in OpenSent for the peer's OPEN.
    pub fn with_open_hold_time(mut self, d: Duration) -> Self {
        self.open_hold_time = d;
        self
    }
    /// Reconnect back-off: first delay `base`, doubling per failed attempt up
    /// to `max`, each delay jittered by ±25 %.
    pub fn with_connect_retry(mut self, base: Duration, max: Duration) -> Self {
        self.connect_retry_base = base;
        self.connect_retry_max = max;
        self
    }
    /// How long a dial may take before the session gives up and backs off.
    pub fn with_connect_timeout(mut self, d: Duration) -> Self {
        self.connect_timeout = d;
        self
    }
    /// A session that stayed Established this long resets the back-off to its base.
    pub fn with_stable_after(mut self, d: Duration) -> Self {
        self.stable_after = d;
        self
    }
    /// Minimum idle time before reconnecting after a max-prefix teardown or
    /// after the peer sent a Cease (it asked us to go away).
    pub fn with_damped_idle_hold(mut self, d: Duration) -> Self {
        self.damped_idle_hold = d;
        self
    }
    /// Tear the session down (Cease/MAX_PREFIX) when the engine reports
    /// holding more than `limit` routes from this peer.
    pub fn with_max_prefix(mut self, limit: u32) -> Self {
        self.max_prefix = Some(limit);
        self
    }
    /// Emit one [`Action::MaxPrefixWarning`](super::Action::MaxPrefixWarning)
    /// when accepted routes reach `pct` percent of the max-prefix limit.
    pub fn with_max_prefix_warning(mut self, pct: u8) -> Self {
        self.max_prefix_warning_pct = pct;
        self
    }
    /// Never dial; wait for the peer to connect.
    /// Refuse an OPEN with hold time 0 (no keepalives, a session that never
    /// times out): discovered peers must prove they are alive.
    pub fn with_require_hold(mut self, on: bool) -> Self {
        self.require_hold = on;
        self
    }

    pub fn require_hold(&self) -> bool {
        self.require_hold
    }

    /// With our role set in the capabilities, refuse a peer whose OPEN
    /// announces no role (RFC 9234 strict mode).
    pub fn with_strict_role(mut self, on: bool) -> Self {
        self.strict_role = on;
        self
    }

    pub fn strict_role(&self) -> bool {
        self.strict_role
    }

    pub fn with_passive(mut self, passive: bool) -> Self {
        self.passive = passive;
        self
    }

    pub fn local_asn(&self) -> Asn {
        self.local_asn
    }
    pub fn local_node(&self) -> NodeId {
        self.local_node
    }
    pub fn federation(&self) -> &str {
        &self.federation
    }
    pub fn cert(&self) -> Option<&Arc<AsnCert>> {
        self.cert.as_ref()
    }
    pub fn capabilities(&self) -> &Capabilities {
        &self.capabilities
    }
    pub fn peer_asn(&self) -> Option<Asn> {
        self.peer_asn
    }
    pub fn peer_node(&self) -> Option<NodeId> {
        self.peer_node
    }
    pub fn hold_time(&self) -> Duration {
        self.hold_time
    }
    pub fn min_keepalive(&self) -> Duration {
        self.min_keepalive
    }
    pub fn open_hold_time(&self) -> Duration {
        self.open_hold_time
    }
    pub fn connect_retry_base(&self) -> Duration {
        self.connect_retry_base
    }
    pub fn connect_retry_max(&self) -> Duration {
        self.connect_retry_max
    }
    pub fn connect_timeout(&self) -> Duration {
        self.connect_timeout
    }
    pub fn stable_after(&self) -> Duration {
        self.stable_after
    }
    pub fn damped_idle_hold(&self) -> Duration {
        self.damped_idle_hold
    }
    pub fn max_prefix(&self) -> Option<u32> {
        self.max_prefix
    }
    pub fn max_prefix_warning_pct(&self) -> u8 {
        self.max_prefix_warning_pct
    }
    pub fn passive(&self) -> bool {
        self.passive
    }

    /// Our hold time as OPEN carries it. Only meaningful after `validate`.
    pub(super) fn hold_time_secs(&self) -> u16 {
        u16::try_from(self.hold_time.as_secs()).unwrap_or(u16::MAX)
    }

    /// Checks everything [`Session::new`](super::Session::new) relies on.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let hold = self.hold_time;
        let whole = hold.subsec_nanos() == 0;
        let secs = hold.as_secs();
        if !whole || secs == 1 || secs == 2 || secs > u64::from(u16::MAX) {
            return Err(ConfigError::HoldTime(hold));
        }
        if self.open_hold_time < Duration::from_secs(1) {
            return Err(ConfigError::OpenHoldTime(self.open_hold_time));
        }
        if self.connect_retry_base < Duration::from_millis(1)
            || self.connect_retry_base > self.connect_retry_max
        {
            return Err(ConfigError::Backoff {
                base: self.connect_retry_base,
                max: self.connect_retry_max,
            });
        }
        if self.connect_timeout < Duration::from_millis(1) {
            return Err(ConfigError::ConnectTimeout);
        }
        if !(1..=100).contains(&self.max_prefix_warning_pct) {
            return Err(ConfigError::MaxPrefixWarning(self.max_prefix_warning_pct));
        }
        Ok(())
    }
}

/// Whole milliseconds of a duration, saturating; the core's clock is in ms.
pub(super) fn ms(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}
