//! The MCP client side of one agent session: what the node tells the agent
//! about itself, and where the agent's notifications go.
//!
//! Progress notifications are routed by progress token to the caller that
//! owns the call ([`ProgressRouter`]); `list_changed` notifications wake the
//! supervisor, which re-lists. Requests from the agent (sampling, roots,
//! elicitation) and its log messages go to the call they belong to
//! ([`SideRouter`]), whose caller's client answers them across the
//! federation: the node declares sampling, elicitation and roots to its
//! agents, and a caller whose client cannot answer gets the agent an
//! error, never a hang.
//!
//! Which call a request belongs to: on streamable HTTP the SDK marks a
//! request that arrived on the response stream of one of our requests with
//! that request's id, which is exact. Otherwise (stdio, or the standalone
//! stream) it is the agent's only call in flight; with several in flight
//! the request is refused and a log message dropped, since nothing in the
//! protocol says whose it is.

// Sampling, roots and logging are deprecated by SEP-2577 (2026-07-28) but
// are part of 2025-11-25, whose agents the node relays for.
#![allow(deprecated)]

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use rmcp::model::{
    ClientCapabilities, ClientConfig, CreateMessageRequestParams, CreateMessageResult,
    ElicitRequestParams, ElicitResult, ErrorCode, Implementation, ListRootsResult,
    LoggingMessageNotificationParam, ProgressNotificationParam, ProgressToken, ProtocolVersion,
    RequestId,
};
use rmcp::service::{InboundStreamOrigin, NotificationContext, RequestContext, RoleClient};
use rmcp::{ClientHandler, ErrorData};
use serde_json::Value as Json;

use crate::core::call::CallError;
use tokio::sync::{Notify, mpsc, oneshot};

use super::Progress;

/// Notifications whose token is not registered yet are kept this long, for
/// the race where the agent reports progress before the caller registered.
const EARLY_PROGRESS_TTL: Duration = Duration::from_secs(2);
/// At most this many such notifications are kept.
const EARLY_PROGRESS_MAX: usize = 64;

struct Route {
    /// `None` for a call whose caller does not follow progress: its
    /// notifications are dropped instead of filling the early buffer.
    tx: Option<mpsc::Sender<Progress>>,
    last: f64,
}

#[derive(Default)]
struct RouterState {
    routes: HashMap<ProgressToken, Route>,
    early: VecDeque<(Instant, ProgressNotificationParam)>,
}

/// Sends each progress notification to the caller of the call it belongs
/// to. The SDK hands notifications to separate tasks, so they can arrive
/// out of order; a notification that does not advance the progress is
/// dropped, keeping what the caller sees increasing.
#[derive(Default)]
pub(super) struct ProgressRouter {
    state: Mutex<RouterState>,
}

/// Unregisters its token when dropped.
pub(super) struct ProgressSubscription {
    router: Arc<ProgressRouter>,
    token: ProgressToken,
}

impl Drop for ProgressSubscription {
    fn drop(&mut self) {
        self.router.lock().routes.remove(&self.token);
    }
}

impl ProgressRouter {
    fn lock(&self) -> std::sync::MutexGuard<'_, RouterState> {
        // The lock is never held across an await or user code; poisoning can
        // only come from a panic in this module's own bookkeeping.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    pub(super) fn subscribe(
        self: &Arc<Self>,
        token: ProgressToken,
        tx: Option<mpsc::Sender<Progress>>,
    ) -> ProgressSubscription {
        let mut state = self.lock();
        let mut route = Route {
            tx,
            last: f64::NEG_INFINITY,
        };
        let now = Instant::now();
        let early = std::mem::take(&mut state.early);
        for (at, p) in early {
            if p.progress_token == token {
                forward(&mut route, p);
            } else if now.duration_since(at) < EARLY_PROGRESS_TTL {
                state.early.push_back((at, p));
            }
        }
        state.routes.insert(token.clone(), route);
        ProgressSubscription {
            router: self.clone(),
            token,
        }
    }

    pub(super) fn dispatch(&self, p: ProgressNotificationParam) {
        let mut state = self.lock();
        if let Some(route) = state.routes.get_mut(&p.progress_token) {
            forward(route, p);
            return;
        }
        let now = Instant::now();
        while state
            .early
            .front()
            .is_some_and(|(at, _)| now.duration_since(*at) >= EARLY_PROGRESS_TTL)
        {
            state.early.pop_front();
        }
        if state.early.len() >= EARLY_PROGRESS_MAX {
            state.early.pop_front();
        }
        state.early.push_back((now, p));
    }
}

fn forward(route: &mut Route, p: ProgressNotificationParam) {
    // NaN and regressions are dropped: the spec says progress increases.
    if p.progress.is_nan() || p.progress <= route.last {
        return;
    }
    route.last = p.progress;
    let Some(tx) = &route.tx else { return };
    let progress = Progress {
        progress: p.progress,
        total: p.total,
        message: p.message,
    };
    if tx.try_send(progress).is_err() {
        tracing::debug!("progress receiver full or gone; notification dropped");
    }
}

/// What an agent sends for the caller of one of its calls.
#[derive(Debug)]
pub enum SideEvent {
    /// A notification (`notifications/message`), as MCP params.
    Notify { method: String, params: Json },
    /// A request (`sampling/createMessage`, `elicitation/create`,
    /// `roots/list`); the caller's client's result, or the error to give
    /// the agent, goes to `reply`.
    Ask {
        method: String,
        params: Json,
        reply: oneshot::Sender<Result<Json, CallError>>,
    },
}

/// A resource's subscribers: (subscription, where its updates go).
type Subscribers = Vec<(u64, mpsc::Sender<SideEvent>)>;

/// Sends an agent's requests and log messages to the call they belong to
/// (see the module documentation).
#[derive(Default)]
pub(super) struct SideRouter {
    calls: Mutex<HashMap<RequestId, mpsc::Sender<SideEvent>>>,
    /// Resource subscriptions: URI -> (subscription, where its updates go).
    subs: Mutex<HashMap<String, Subscribers>>,
    next_sub: std::sync::atomic::AtomicU64,
}

/// Unregisters its call when dropped.
pub(super) struct SideSubscription {
    router: Arc<SideRouter>,
    id: RequestId,
}

impl Drop for SideSubscription {
    fn drop(&mut self) {
        self.router.lock().remove(&self.id);
    }
}

/// How long a request of the agent waits for its call to be registered
/// (the agent can be faster than the registration after the send).
const SIDE_REGISTRATION_WAIT: Duration = Duration::from_millis(200);

impl SideRouter {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<RequestId, mpsc::Sender<SideEvent>>> {
        self.calls.lock().unwrap_or_else(PoisonError::into_inner)
    }

    pub(super) fn subscribe(
        self: &Arc<Self>,
        id: RequestId,
        tx: mpsc::Sender<SideEvent>,
    ) -> SideSubscription {
        self.lock().insert(id.clone(), tx);
        SideSubscription {
            router: self.clone(),
            id,
        }
    }

    /// The call a message belongs to: the one whose stream it came on, or
    /// the only one in flight.
    fn find(
        &self,
        origin: Option<&InboundStreamOrigin>,
    ) -> Result<mpsc::Sender<SideEvent>, String> {
        let calls = self.lock();
        if let Some(InboundStreamOrigin::OutboundRequest(id)) = origin
            && let Some(tx) = calls.get(id)
        {
            return Ok(tx.clone());
        }
        match calls.len() {
            1 => Ok(calls.values().next().cloned().ok_or_else(String::new)?),
            0 => Err("the agent has no call in flight whose caller could answer".into()),
            n => Err(format!(
                "the agent has {n} calls in flight and the request does not say which it belongs to"
            )),
        }
    }

    async fn ask(
        &self,
        method: &str,
        params: Json,
        origin: Option<&InboundStreamOrigin>,
    ) -> Result<Json, ErrorData> {
        let started = Instant::now();
        let tx = loop {
            match self.find(origin) {
                Ok(tx) => break tx,
                Err(why) if started.elapsed() >= SIDE_REGISTRATION_WAIT => {
                    return Err(ErrorData::new(ErrorCode::INVALID_REQUEST, why, None));
                }
                Err(_) => tokio::time::sleep(Duration::from_millis(10)).await,
            }
        };
        let (reply, rx) = oneshot::channel();
        let ev = SideEvent::Ask {
            method: method.to_string(),
            params,
            reply,
        };
        if tx.send(ev).await.is_err() {
            return Err(ErrorData::internal_error("the call ended", None));
        }
        match rx.await {
            Ok(Ok(v)) => Ok(v),
            Ok(Err(e)) => Err(ErrorData::new(
                ErrorCode(i32::try_from(e.code).unwrap_or(ErrorCode::INTERNAL_ERROR.0)),
                e.message,
                e.data,
            )),
            Err(_) => Err(ErrorData::internal_error(
                "the call ended before the client answered",
                None,
            )),
        }
    }

    /// Adds a subscriber of `uri`; true when it is the first (the agent
    /// must be asked to subscribe).
    pub(super) fn add_subscriber(&self, uri: &str, tx: mpsc::Sender<SideEvent>) -> (u64, bool) {
        let id = self
            .next_sub
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let mut subs = self.subs.lock().unwrap_or_else(PoisonError::into_inner);
        let list = subs.entry(uri.to_string()).or_default();
        list.push((id, tx));
        (id, list.len() == 1)
    }

    /// Removes a subscriber; true when it was the last of its URI (the
    /// agent may be told to unsubscribe).
    pub(super) fn remove_subscriber(&self, uri: &str, id: u64) -> bool {
        let mut subs = self.subs.lock().unwrap_or_else(PoisonError::into_inner);
        let Some(list) = subs.get_mut(uri) else {
            return false;
        };
        list.retain(|(i, _)| *i != id);
        if list.is_empty() {
            subs.remove(uri);
            return true;
        }
        false
    }

    /// `notifications/resources/updated`: to every subscriber of the URI.
    fn updated(&self, params: Json) {
        let Some(uri) = params.get("uri").and_then(Json::as_str) else {
            return;
        };
        let subs = self.subs.lock().unwrap_or_else(PoisonError::into_inner);
        for (_, tx) in subs.get(uri).into_iter().flatten() {
            let ev = SideEvent::Notify {
                method: "notifications/resources/updated".into(),
                params: params.clone(),
            };
            if tx.try_send(ev).is_err() {
                tracing::debug!(uri, "subscriber's side channel full; update dropped");
            }
        }
    }

    fn notify(&self, method: &str, params: Json) {
        match self.find(None) {
            Ok(tx) => {
                let ev = SideEvent::Notify {
                    method: method.to_string(),
                    params,
                };
                if tx.try_send(ev).is_err() {
                    tracing::debug!(method, "caller's side channel full; notification dropped");
                }
            }
            Err(why) => tracing::debug!(method, %why, "agent notification not relayed"),
        }
    }
}

/// The node as an MCP client of one agent. Clones share the routers (a
/// second handshake attempt uses one).
#[derive(Clone)]
pub(super) struct AgentClient {
    info: ClientConfig,
    progress: Arc<ProgressRouter>,
    side: Arc<SideRouter>,
    lists_changed: Arc<Notify>,
}

/// Turns what the caller's client answered into the SDK's type.
fn typed<T: serde::de::DeserializeOwned>(v: Result<Json, ErrorData>) -> Result<T, ErrorData> {
    let v = v?;
    serde_json::from_value(v).map_err(|e| {
        ErrorData::internal_error(format!("the client's answer is malformed: {e}"), None)
    })
}

fn to_json<T: serde::Serialize>(v: &T) -> Json {
    serde_json::to_value(v).unwrap_or(Json::Null)
}

impl AgentClient {
    pub(super) fn new(
        progress: Arc<ProgressRouter>,
        side: Arc<SideRouter>,
        lists_changed: Arc<Notify>,
    ) -> Self {
        // What the callers' clients may be asked across the federation;
        // one whose client did not declare it answers with an error.
        let caps: ClientCapabilities = serde_json::from_value(serde_json::json!({
            "sampling": {},
            "elicitation": {"form": {}},
            "roots": {},
        }))
        .unwrap_or_default();
        let mut info = ClientConfig::new(
            caps,
            Implementation::new("agent-bgp", env!("CARGO_PKG_VERSION")),
        );
        // `initialize` must name a revision that still has the handshake;
        // discovery negotiates its own version.
        info.protocol_version = ProtocolVersion::LATEST_WITH_INITIALIZE;
        AgentClient {
            info,
            progress,
            side,
            lists_changed,
        }
    }
}

impl ClientHandler for AgentClient {
    fn get_info(&self) -> ClientConfig {
        self.info.clone()
    }

    async fn on_progress(
        &self,
        params: ProgressNotificationParam,
        _context: NotificationContext<RoleClient>,
    ) {
        self.progress.dispatch(params);
    }

    async fn create_message(
        &self,
        params: CreateMessageRequestParams,
        context: RequestContext<RoleClient>,
    ) -> Result<CreateMessageResult, ErrorData> {
        let origin = context.extensions.get::<InboundStreamOrigin>();
        typed(
            self.side
                .ask("sampling/createMessage", to_json(&params), origin)
                .await,
        )
    }

    async fn create_elicitation(
        &self,
        request: ElicitRequestParams,
        context: RequestContext<RoleClient>,
    ) -> Result<ElicitResult, ErrorData> {
        let origin = context.extensions.get::<InboundStreamOrigin>();
        typed(
            self.side
                .ask("elicitation/create", to_json(&request), origin)
                .await,
        )
    }

    async fn list_roots(
        &self,
        context: RequestContext<RoleClient>,
    ) -> Result<ListRootsResult, ErrorData> {
        let origin = context.extensions.get::<InboundStreamOrigin>();
        typed(
            self.side
                .ask("roots/list", Json::Object(Default::default()), origin)
                .await,
        )
    }

    async fn on_logging_message(
        &self,
        params: LoggingMessageNotificationParam,
        _context: NotificationContext<RoleClient>,
    ) {
        self.side.notify("notifications/message", to_json(&params));
    }

    async fn on_resource_updated(
        &self,
        params: rmcp::model::ResourceUpdatedNotificationParam,
        _context: NotificationContext<RoleClient>,
    ) {
        self.side.updated(to_json(&params));
    }

    async fn on_tool_list_changed(&self, _context: NotificationContext<RoleClient>) {
        self.lists_changed.notify_one();
    }

    async fn on_resource_list_changed(&self, _context: NotificationContext<RoleClient>) {
        self.lists_changed.notify_one();
    }

    async fn on_prompt_list_changed(&self, _context: NotificationContext<RoleClient>) {
        self.lists_changed.notify_one();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rmcp::model::NumberOrString;

    fn note(token: i64, progress: f64) -> ProgressNotificationParam {
        ProgressNotificationParam::new(ProgressToken(NumberOrString::Number(token)), progress)
    }

    fn token(n: i64) -> ProgressToken {
        ProgressToken(NumberOrString::Number(n))
    }

    #[test]
    fn progress_goes_to_its_own_caller_in_increasing_order() {
        let router = Arc::new(ProgressRouter::default());
        let (tx1, mut rx1) = mpsc::channel(8);
        let (tx2, mut rx2) = mpsc::channel(8);
        let _a = router.subscribe(token(1), Some(tx1));
        let _b = router.subscribe(token(2), Some(tx2));
        router.dispatch(note(1, 1.0));
        router.dispatch(note(2, 5.0));
        router.dispatch(note(1, 3.0));
        router.dispatch(note(1, 2.0)); // arrived late: dropped
        assert_eq!(rx1.try_recv().map(|p| p.progress), Ok(1.0));
        assert_eq!(rx1.try_recv().map(|p| p.progress), Ok(3.0));
        assert!(rx1.try_recv().is_err());
        assert_eq!(rx2.try_recv().map(|p| p.progress), Ok(5.0));
    }

    #[test]
    fn progress_before_subscription_is_replayed() {
        let router = Arc::new(ProgressRouter::default());
        router.dispatch(note(7, 1.0));
        router.dispatch(note(8, 1.0));
        let (tx, mut rx) = mpsc::channel(8);
        let _s = router.subscribe(token(7), Some(tx));
        assert_eq!(rx.try_recv().map(|p| p.progress), Ok(1.0));
        assert_eq!(router.lock().early.len(), 1);
    }

    #[test]
    fn dropping_the_subscription_unregisters_and_early_buffer_is_bounded() {
        let router = Arc::new(ProgressRouter::default());
        let (tx, _rx) = mpsc::channel(1);
        drop(router.subscribe(token(1), Some(tx)));
        assert!(router.lock().routes.is_empty());
        for i in 0..200 {
            router.dispatch(note(i, 1.0));
        }
        assert_eq!(router.lock().early.len(), EARLY_PROGRESS_MAX);
    }

    #[test]
    fn a_call_without_a_receiver_swallows_its_progress() {
        let router = Arc::new(ProgressRouter::default());
        let _s = router.subscribe(token(1), None);
        router.dispatch(note(1, 1.0));
        assert!(router.lock().early.is_empty());
    }

    #[test]
    fn a_full_receiver_drops_instead_of_blocking() {
        let router = Arc::new(ProgressRouter::default());
        let (tx, mut rx) = mpsc::channel(1);
        let _s = router.subscribe(token(1), Some(tx));
        router.dispatch(note(1, 1.0));
        router.dispatch(note(1, 2.0));
        assert_eq!(rx.try_recv().map(|p| p.progress), Ok(1.0));
        assert!(rx.try_recv().is_err());
    }
}
