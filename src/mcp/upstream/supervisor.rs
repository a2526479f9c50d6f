//! One task per agent: start it, watch it, restart it.
//!
//! ```text
//!            +--------- back-off (min * 2^(failures-1), capped) ----------+
//!            v                                                            |
//!   [Starting] --connect+handshake+list ok--> [Up] --exit / EOF / missed ping / re-list error--> [Down]
//!            |                                                            ^
//!            +--------------------- failure -------------------------------+
//! ```
//!
//! The current [`Link`] is published on a `watch` channel that calls read;
//! it turns `Down` before the process is torn down, so no new call is sent
//! to a dying session. Events go out on the manager's bounded channel.

use std::sync::Arc;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use rmcp::model::{ClientRequest, PingRequest, ServerNotification, SubscriptionFilter};
use rmcp::service::{Peer, PeerRequestOptions, RoleClient, ServiceError};
use tokio::sync::{Notify, Semaphore, mpsc, watch};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use super::client::{AgentClient, ProgressRouter, SideRouter};
use super::connect::{ChildProc, ConnectError, Connection, connect, list_catalog, summary};
use super::{AgentCatalog, AgentEvent, DownReason, SessionId};
use crate::mcp::config::AgentConfig;

/// Time a removed agent's process gets to exit after its stdin closes
/// (and again after SIGTERM) before it is killed.
const STOP_GRACE: Duration = Duration::from_secs(2);
/// Time allowed for the SDK's service loop to wind down.
const LOOP_WIND_DOWN: Duration = Duration::from_secs(2);
/// Time the last event of a removed agent may wait for channel space.
const FINAL_EVENT_TIMEOUT: Duration = Duration::from_secs(5);

/// What calls see of an agent.
#[derive(Clone)]
pub(super) enum Link {
    Starting,
    Up(Arc<Session>),
    Down { reason: DownReason, since: Instant },
}

/// A connected agent, as calls use it.
pub(super) struct Session {
    pub peer: Peer<RoleClient>,
    pub progress: Arc<ProgressRouter>,
    /// Where the agent's requests and log messages for a caller go.
    pub side: Arc<SideRouter>,
    /// Bounds the calls in flight; closed when the session ends.
    pub slots: Arc<Semaphore>,
    /// Cancelled when the session ends (subscriptions end with it).
    pub closed: CancellationToken,
    pub max_slots: usize,
    pub id: SessionId,
    pub up_since: Instant,
    pub protocol_version: String,
}

pub(super) struct Supervisor {
    pub config: AgentConfig,
    pub link: watch::Sender<Link>,
    pub events: mpsc::Sender<AgentEvent>,
    pub stop: CancellationToken,
    pub stop_reason: Arc<OnceLock<DownReason>>,
    pub sessions: Arc<AtomicU64>,
    pub next_session: Arc<AtomicU64>,
    /// Whether the last event (`Down` after a stop) was sent.
    pub final_sent: AtomicBool,
}

/// The delay before restart attempt number `failures` (1 = first).
pub(super) fn backoff_delay(min: Duration, max: Duration, failures: u32) -> Duration {
    let doublings = failures.saturating_sub(1).min(30);
    min.saturating_mul(1u32 << doublings).min(max)
}

impl Supervisor {
    fn stop_reason(&self) -> DownReason {
        self.stop_reason
            .get()
            .cloned()
            .unwrap_or(DownReason::Shutdown)
    }

    /// Sends the last event of a stopped agent, once: `Down` with the stop
    /// reason, as soon as the session is closed (before its process has
    /// exited), or when the run ends if no session was up.
    async fn send_final(&self, reason: DownReason) {
        if self.final_sent.swap(true, Ordering::Relaxed) {
            return;
        }
        let last = AgentEvent::Down {
            agent: self.config.id().clone(),
            reason,
        };
        if tokio::time::timeout(FINAL_EVENT_TIMEOUT, self.events.send(last))
            .await
            .is_err()
        {
            tracing::warn!("event channel full; last event of a removed agent dropped");
        }
    }

    /// Sends an event unless the agent is being stopped meanwhile.
    async fn emit(&self, event: AgentEvent) {
        tokio::select! {
            r = self.events.send(event) => {
                if r.is_err() {
                    tracing::debug!(agent = %self.config.id(), "event receiver gone");
                }
            }
            _ = self.stop.cancelled() => {}
        }
    }

    fn set_down(&self, reason: &DownReason) {
        self.link.send_replace(Link::Down {
            reason: reason.clone(),
            since: Instant::now(),
        });
    }

    /// Sleeps before the next attempt; false when stopped meanwhile.
    async fn back_off(&self, failures: u32) -> bool {
        let delay = backoff_delay(
            self.config.restart_backoff_min(),
            self.config.restart_backoff_max(),
            failures,
        );
        tracing::debug!(agent = %self.config.id(), ?delay, failures, "restarting after back-off");
        tokio::select! {
            _ = tokio::time::sleep(delay) => true,
            _ = self.stop.cancelled() => false,
        }
    }
}

pub(super) async fn run(s: Supervisor) {
    let agent = s.config.id().clone();
    let mut failures: u32 = 0;
    // Down is reported once per transition, not per failed attempt.
    let mut down_reported = false;
    loop {
        if s.stop.is_cancelled() {
            break;
        }
        let progress = Arc::new(ProgressRouter::default());
        let lists_changed = Arc::new(Notify::new());
        let side = Arc::new(SideRouter::default());
        let client = AgentClient::new(progress.clone(), side.clone(), lists_changed.clone());
        let attempt = async {
            let conn = connect(&s.config, client).await?;
            // Subscribe before listing, so no change falls in between.
            let listener = listen_for_list_changes(conn.peer(), lists_changed.clone()).await;
            let catalog = list_catalog(conn.peer()).await?;
            Ok::<_, ConnectError>((conn, listener, catalog))
        };
        let timeout = s.config.connect_timeout();
        let result = tokio::select! {
            _ = s.stop.cancelled() => break,
            r = tokio::time::timeout(timeout, attempt) => r,
        };
        let outcome = match result {
            Ok(Ok(ok)) => Ok(ok),
            Ok(Err(e)) => Err(e.to_string()),
            Err(_) => Err(format!(
                "no complete handshake and listing within {timeout:?}"
            )),
        };
        let (conn, listener, catalog) = match outcome {
            Ok(ok) => ok,
            Err(text) => {
                // Dropping the attempt killed any process it started.
                let reason = DownReason::StartFailed(text);
                tracing::info!(%agent, %reason, "agent did not start");
                s.set_down(&reason);
                if !down_reported {
                    s.emit(AgentEvent::Down {
                        agent: agent.clone(),
                        reason,
                    })
                    .await;
                    down_reported = true;
                }
                failures = failures.saturating_add(1);
                if !s.back_off(failures).await {
                    break;
                }
                continue;
            }
        };

        let server = summary(conn.peer().peer_info().as_deref());
        let max_slots = s.config.max_concurrent_calls();
        let session = Arc::new(Session {
            peer: conn.peer().clone(),
            progress,
            side,
            slots: Arc::new(Semaphore::new(max_slots)),
            closed: CancellationToken::new(),
            max_slots,
            id: SessionId(s.next_session.fetch_add(1, Ordering::Relaxed)),
            up_since: Instant::now(),
            protocol_version: server.protocol_version.clone(),
        });
        s.sessions.fetch_add(1, Ordering::Relaxed);
        tracing::info!(%agent, session = %session.id, protocol = %server.protocol_version,
            tools = catalog.tools.len(), "agent up");
        s.link.send_replace(Link::Up(session.clone()));
        s.emit(AgentEvent::Up {
            agent: agent.clone(),
            session: session.id,
            server,
            tools: catalog.tools.clone(),
            items: catalog.items.clone(),
        })
        .await;

        let reason = watch_session(&s, conn, listener, &session, catalog, lists_changed).await;
        if s.stop.is_cancelled() {
            break;
        }
        tracing::warn!(%agent, session = %session.id, %reason, "agent down");
        s.emit(AgentEvent::Down {
            agent: agent.clone(),
            reason,
        })
        .await;
        down_reported = true;
        // A session that stayed up long enough wipes the failure record.
        if session.up_since.elapsed() >= s.config.restart_backoff_max() {
            failures = 0;
        }
        failures = failures.saturating_add(1);
        if !s.back_off(failures).await {
            break;
        }
    }
    let reason = s.stop_reason();
    s.set_down(&reason);
    s.send_final(reason).await;
}

/// Watches a connected agent until it goes down or is stopped; tears the
/// session down and says why.
async fn watch_session(
    s: &Supervisor,
    conn: Connection,
    listener: Option<JoinHandle<()>>,
    session: &Arc<Session>,
    mut catalog: AgentCatalog,
    lists_changed: Arc<Notify>,
) -> DownReason {
    let agent = s.config.id().clone();
    let Connection {
        service,
        service_ct,
        mut child,
    } = conn;
    let peer = service.peer().clone();
    let mut closed = tokio::spawn(service.waiting());
    let mut closed_done = false;
    let interval = s.config.health_interval();
    let mut health = tokio::time::interval_at(tokio::time::Instant::now() + interval, interval);
    health.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);

    let reason = loop {
        tokio::select! {
            _ = s.stop.cancelled() => break s.stop_reason(),
            status = wait_child(&mut child) => {
                let stderr = child.as_ref().map(ChildProc::stderr_tail).unwrap_or_default();
                break DownReason::Exited { status: status.to_string(), stderr };
            }
            _ = &mut closed => {
                closed_done = true;
                // EOF usually means the process is exiting: prefer its status.
                if let Some(c) = child.as_mut()
                    && let Ok(status) = tokio::time::timeout(Duration::from_millis(300), c.wait()).await
                {
                    break DownReason::Exited { status: status.to_string(), stderr: c.stderr_tail() };
                }
                break DownReason::ConnectionClosed;
            }
            _ = health.tick() => {
                if let Err(reason) = probe(&peer, s.config.health_timeout()).await {
                    break reason;
                }
            }
            _ = lists_changed.notified() => {
                let timeout = s.config.connect_timeout();
                match tokio::time::timeout(timeout, list_catalog(&peer)).await {
                    Ok(Ok(new)) if new == catalog => {}
                    Ok(Ok(new)) => {
                        tracing::info!(%agent, tools = new.tools.len(), "agent lists changed");
                        catalog = new;
                        s.emit(AgentEvent::ToolsChanged {
                            agent: agent.clone(),
                            session: session.id,
                            tools: catalog.tools.clone(),
                            items: catalog.items.clone(),
                        }).await;
                    }
                    Ok(Err(e)) => break DownReason::Failed(format!("re-listing after list_changed: {e}")),
                    Err(_) => break DownReason::Unresponsive { timeout },
                }
            }
        }
    };

    // Calls see the agent down before anything is torn down.
    s.set_down(&reason);
    session.slots.close();
    session.closed.cancel();
    if let Some(l) = listener {
        l.abort();
    }
    service_ct.cancel();
    if s.stop.is_cancelled() {
        // Removed or shut down: the node withdraws the agent's routes on
        // this event, so it goes before the process is given its grace
        // to exit, not after.
        s.send_final(reason.clone()).await;
    }
    if let Some(c) = child.as_mut() {
        if matches!(reason, DownReason::Removed | DownReason::Shutdown) {
            c.stop_gracefully(STOP_GRACE).await;
        } else {
            c.kill_now();
            let _ = tokio::time::timeout(STOP_GRACE, c.wait()).await;
        }
    }
    if !closed_done
        && tokio::time::timeout(LOOP_WIND_DOWN, &mut closed)
            .await
            .is_err()
    {
        closed.abort();
    }
    reason
}

async fn wait_child(child: &mut Option<ChildProc>) -> std::process::ExitStatus {
    match child {
        Some(c) => c.wait().await,
        None => std::future::pending().await,
    }
}

/// Asks the agent for a sign of life. Any correlated answer counts, an error
/// included: 2026-07-28 servers answer `ping` with "method not found", which
/// still proves they read and answer requests.
async fn probe(peer: &Peer<RoleClient>, timeout: Duration) -> Result<(), DownReason> {
    let request = ClientRequest::PingRequest(PingRequest::default());
    let ask = async {
        // The SDK's own timeout also sends `notifications/cancelled` and
        // forgets the request; ours is a backstop if sending itself blocks.
        let handle = peer
            .send_request_with_option(request, PeerRequestOptions::with_timeout(timeout))
            .await?;
        handle.await_response().await
    };
    match tokio::time::timeout(timeout + Duration::from_secs(1), ask).await {
        Ok(Ok(_)) | Ok(Err(ServiceError::McpError(_))) => Ok(()),
        Err(_) | Ok(Err(ServiceError::Timeout { .. })) => Err(DownReason::Unresponsive { timeout }),
        Ok(Err(ServiceError::TransportClosed)) => Err(DownReason::ConnectionClosed),
        Ok(Err(e)) => Err(DownReason::Failed(format!("health check: {e}"))),
    }
}

/// On a 2026-07-28 session, `list_changed` notifications only come on a
/// `subscriptions/listen` stream; open one for the lists the server says
/// can change, and return the task that forwards them. Older sessions get
/// them unsolicited (see `AgentClient`).
/// How long a 2026-07-28 agent has to acknowledge `subscriptions/listen`.
pub(super) const LISTEN_ACK_TIMEOUT: Duration = Duration::from_secs(5);

async fn listen_for_list_changes(
    peer: &Peer<RoleClient>,
    notify: Arc<Notify>,
) -> Option<JoinHandle<()>> {
    let info = peer.peer_info()?;
    if info.protocol_version.has_initialize() {
        return None;
    }
    let caps = &info.capabilities;
    let mut filter = SubscriptionFilter::builder();
    let mut wanted = false;
    if caps.tools.as_ref().and_then(|c| c.list_changed) == Some(true) {
        filter = filter.tools_list_changed();
        wanted = true;
    }
    if caps.resources.as_ref().and_then(|c| c.list_changed) == Some(true) {
        filter = filter.resources_list_changed();
        wanted = true;
    }
    if caps.prompts.as_ref().and_then(|c| c.list_changed) == Some(true) {
        filter = filter.prompts_list_changed();
        wanted = true;
    }
    if !wanted {
        return None;
    }
    // Returns once the server acknowledged the subscription. A server that
    // never acknowledges must not keep the agent from coming up: after
    // LISTEN_ACK_TIMEOUT the node goes on without list-change notices.
    let mut sub = match tokio::time::timeout(LISTEN_ACK_TIMEOUT, peer.listen(filter.build())).await
    {
        Ok(Ok(sub)) => sub,
        Ok(Err(e)) => {
            tracing::debug!(error = %e, "agent refused subscriptions/listen; list changes will not be seen");
            return None;
        }
        Err(_) => {
            tracing::warn!(
                timeout = ?LISTEN_ACK_TIMEOUT,
                "agent did not acknowledge subscriptions/listen; list changes will not be seen"
            );
            return None;
        }
    };
    Some(tokio::spawn(async move {
        loop {
            match sub.next().await {
                Ok(Some(
                    ServerNotification::ToolListChangedNotification(_)
                    | ServerNotification::ResourceListChangedNotification(_)
                    | ServerNotification::PromptListChangedNotification(_),
                )) => notify.notify_one(),
                Ok(Some(_)) => {}
                Ok(None) | Err(_) => {
                    tracing::debug!("list-change subscription ended");
                    return;
                }
            }
        }
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_from_min_and_stops_at_max() {
        let min = Duration::from_millis(100);
        let max = Duration::from_secs(1);
        let got: Vec<u128> = (1..=6)
            .map(|f| backoff_delay(min, max, f).as_millis())
            .collect();
        assert_eq!(got, [100, 200, 400, 800, 1000, 1000]);
        assert_eq!(backoff_delay(min, max, 0), min);
        assert_eq!(backoff_delay(min, max, u32::MAX), max);
    }
}
