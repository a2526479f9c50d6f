//! Per-session figures for operators: plain data, updated by the FSM and
//! read through [`Session::counters`](super::Session::counters).

use crate::core::ids::Millis;
use crate::core::message::{Message, Notification};

/// Messages of each kind, in one direction.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct MessageCounts {
    pub open: u64,
    pub keepalive: u64,
    pub update: u64,
    pub notification: u64,
    pub route_refresh: u64,
}

impl MessageCounts {
    pub(super) fn count(&mut self, msg: &Message) {
        let slot = match msg {
            Message::Open(_) => &mut self.open,
            Message::Keepalive => &mut self.keepalive,
            Message::Update(_) => &mut self.update,
            Message::Notification(_) => &mut self.notification,
            Message::RouteRefresh => &mut self.route_refresh,
        };
        *slot = slot.saturating_add(1);
    }

    pub fn total(&self) -> u64 {
        self.open
            .saturating_add(self.keepalive)
            .saturating_add(self.update)
            .saturating_add(self.notification)
            .saturating_add(self.route_refresh)
    }
}

/// Which side sent the NOTIFICATION that ended a session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorSide {
    /// We sent it (our check failed, a timer expired, an operator stopped us).
    Sent,
    /// The peer sent it.
    Received,
}

/// The most recent NOTIFICATION that closed a session, either way.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LastError {
    pub at: Millis,
    pub side: ErrorSide,
    pub notification: Notification,
}

/// Operator figures for one session. Counts persist across reconnects.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Counters {
    /// Messages we sent, including NOTIFICATIONs on refused transports.
    pub sent: MessageCounts,
    /// Messages the peer sent that reached the FSM on its current transport.
    pub received: MessageCounts,
    /// Times the session left Established.
    pub flaps: u64,
    /// Times the session asked the driver to dial.
    pub connect_attempts: u64,
    /// When the current Established period began; `None` when not Established.
    pub established_since: Option<Millis>,
    /// The NOTIFICATION that closed the last failed session, if any.
    pub last_error: Option<LastError>,
}

impl Counters {
    /// Time spent Established so far, or `None` when the session is not up.
    pub fn uptime(&self, now: Millis) -> Option<std::time::Duration> {
        self.established_since
            .map(|since| std::time::Duration::from_millis(now.saturating_sub(since)))
    }
}
