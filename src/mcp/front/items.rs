//! The front's prompts, resources, templates and completions: listed from
//! the table, and `prompts/get`, `resources/read` and
//! `completion/complete` routed to the origin like tool calls (same access
//! policy, deadlines and errors), with front names mapped back to the
//! origin's names on the way in.

use rmcp::model::{
    CompleteRequestParams, CompleteResult, ErrorCode, GetPromptRequestParams, GetPromptResult,
    ListPromptsResult, ListResourceTemplatesResult, ListResourcesResult, Prompt,
    ReadResourceRequestParams, ReadResourceResult, Resource, ResourceTemplate,
};
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use rmcp::model::{
    ResourceUpdatedNotificationParam, SubscribeRequestParams, UnsubscribeRequestParams,
};
use rmcp::service::{Peer, RequestContext};
use rmcp::{ErrorData, RoleServer};
use serde::de::DeserializeOwned;
use serde_json::{Value as Json, json};
use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;

use super::table::FrontItem;
use super::{CallSpec, FrontLink, FrontServer, FrontSide, error_of};
use crate::core::call::{CallOp, CallOutcome};
use crate::mcp::items::ItemKind;

/// The JSON-RPC code MCP gives an unknown resource (SEP-2164).
pub(super) const RESOURCE_NOT_FOUND: i32 = -32002;

/// A subscription's call is renewed this often (a fresh SUBSCRIBE on the
/// current best path), so no hop holds it past its one-hour cap and the
/// per-call bound on messages sent back (1,024) is per renewal.
pub(super) const SUBSCRIPTION_RENEW: Duration = Duration::from_secs(600);

/// How long `resources/subscribe` waits for the origin to say the
/// subscription is in place.
const SUBSCRIBE_WAIT: Duration = Duration::from_secs(30);

/// At most this many subscriptions per front session.
pub(super) const MAX_SUBSCRIPTIONS: usize = 256;

/// A session's resource subscriptions, by the URI the client knows; all
/// end when the session does (this is dropped with its handler).
#[derive(Default)]
pub(super) struct SessionSubs {
    map: Mutex<HashMap<String, CancellationToken>>,
}

impl Drop for SessionSubs {
    fn drop(&mut self) {
        let map = self
            .map
            .get_mut()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        for (_, t) in map.drain() {
            t.cancel();
        }
    }
}

fn listed<T: DeserializeOwned>(i: &FrontItem) -> Option<T> {
    match serde_json::from_value(Json::Object(i.listed())) {
        Ok(v) => Some(v),
        Err(e) => {
            tracing::debug!(item = %i.name, error = %e, "a routed item does not parse; not listed");
            None
        }
    }
}

impl FrontServer {
    pub(super) fn prompts(&self) -> ListPromptsResult {
        let t = self.link.table();
        let p: Vec<Prompt> = self
            .view
            .items(&t, ItemKind::Prompt)
            .filter_map(listed)
            .collect();
        ListPromptsResult::with_all_items(p)
    }

    pub(super) fn resources(&self) -> ListResourcesResult {
        let t = self.link.table();
        let r: Vec<Resource> = self
            .view
            .items(&t, ItemKind::Resource)
            .filter_map(listed)
            .collect();
        ListResourcesResult::with_all_items(r)
    }

    pub(super) fn templates(&self) -> ListResourceTemplatesResult {
        let t = self.link.table();
        let r: Vec<ResourceTemplate> = self
            .view
            .items(&t, ItemKind::Template)
            .filter_map(listed)
            .collect();
        ListResourceTemplatesResult::with_all_items(r)
    }

    /// Routes an item operation and reads the origin's answer as `T`.
    async fn item_call<T: DeserializeOwned>(
        &self,
        item: &FrontItem,
        op: CallOp,
        arguments: Json,
        ctx: &RequestContext<RoleServer>,
    ) -> Result<T, ErrorData> {
        let spec = CallSpec {
            target: item.routed.prefix.clone(),
            tool: Some(item.routed.key.clone()),
            op,
            arguments,
            // Reads: safe to retry on another path.
            idempotent: true,
            balance: false,
            capabilities: Vec::new(),
            timeout: self.default_timeout,
            log_level: None,
        };
        let ret = self
            .routed(spec, None, ctx)
            .await
            .map_err(|e| ErrorData::internal_error(e.to_string(), None))?;
        match ret.outcome {
            CallOutcome::Ok(v) => serde_json::from_value(v).map_err(|e| {
                ErrorData::internal_error(
                    format!("the origin's answer to {} is malformed: {e}", op.method()),
                    None,
                )
            }),
            CallOutcome::Err(e) => Err(error_of(e, &ret.trace)),
        }
    }

    pub(super) async fn get_routed_prompt(
        &self,
        req: GetPromptRequestParams,
        ctx: &RequestContext<RoleServer>,
    ) -> Result<GetPromptResult, ErrorData> {
        let table = self.link.table();
        let Some(item) = self.view.item(&table, ItemKind::Prompt, &req.name) else {
            return Err(ErrorData::invalid_params(
                format!(
                    "no prompt {:?} is routed to this node (list the prompts again: routes change)",
                    req.name
                ),
                None,
            ));
        };
        let args = serde_json::to_value(req.arguments.unwrap_or_default()).unwrap_or(Json::Null);
        self.item_call(item, CallOp::Prompt, args, ctx).await
    }

    pub(super) async fn read_routed(
        &self,
        req: ReadResourceRequestParams,
        ctx: &RequestContext<RoleServer>,
    ) -> Result<ReadResourceResult, ErrorData> {
        let table = self.link.table();
        let Some((item, origin_uri)) = self.view.resolve_uri(&table, &req.uri) else {
            return Err(ErrorData::new(
                ErrorCode(RESOURCE_NOT_FOUND),
                format!(
                    "Resource not found: no resource or template routed to this node serves {}",
                    req.uri
                ),
                Some(json!({"uri": req.uri})),
            ));
        };
        let mut r: ReadResourceResult = self
            .item_call(item, CallOp::Resource, json!({"uri": origin_uri}), ctx)
            .await?;
        if origin_uri != req.uri {
            // The client knows the resource by its front name.
            let mut v = serde_json::to_value(&r).unwrap_or(Json::Null);
            if let Some(Json::Array(contents)) = v.get_mut("contents") {
                for c in contents {
                    if c.get("uri").and_then(Json::as_str) == Some(origin_uri.as_str()) {
                        c["uri"] = Json::String(req.uri.clone());
                    }
                }
            }
            if let Ok(mapped) = serde_json::from_value(v) {
                r = mapped;
            }
        }
        Ok(r)
    }

    /// `resources/subscribe`: a subscription call to the resource's origin,
    /// held (and renewed) by a task until the client unsubscribes or goes
    /// away, or the route goes. Answers once the origin says the agent
    /// subscribed, or with its error.
    pub(super) async fn subscribe_routed(
        &self,
        req: SubscribeRequestParams,
        ctx: &RequestContext<RoleServer>,
    ) -> Result<(), ErrorData> {
        let uri = req.uri;
        let table = self.link.table();
        let Some((item, origin_uri)) = self.view.resolve_uri(&table, &uri) else {
            return Err(ErrorData::new(
                ErrorCode(RESOURCE_NOT_FOUND),
                format!("Resource not found: nothing routed to this node serves {uri}"),
                Some(json!({"uri": uri})),
            ));
        };
        let token = {
            let mut map = self
                .subs
                .map
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            if map.contains_key(&uri) {
                return Ok(());
            }
            if map.len() >= MAX_SUBSCRIPTIONS {
                return Err(ErrorData::invalid_request(
                    format!("at most {MAX_SUBSCRIPTIONS} subscriptions per session"),
                    None,
                ));
            }
            let t = CancellationToken::new();
            map.insert(uri.clone(), t.clone());
            t
        };
        let (ack, acked) = oneshot::channel();
        tokio::spawn(hold_subscription(
            Subscription {
                link: self.link.clone(),
                peer: ctx.peer.clone(),
                target: item.routed.prefix.clone(),
                key: item.routed.key.clone(),
                origin_uri,
                uri: uri.clone(),
                token: token.clone(),
                view: self.view.clone(),
            },
            ack,
        ));
        let r = match tokio::time::timeout(SUBSCRIBE_WAIT, acked).await {
            Ok(Ok(r)) => r,
            Ok(Err(_)) => Err(ErrorData::internal_error(
                "the subscription ended before it was in place",
                None,
            )),
            Err(_) => Err(ErrorData::internal_error(
                format!("the origin did not confirm the subscription within {SUBSCRIBE_WAIT:?}"),
                None,
            )),
        };
        if r.is_err() {
            token.cancel();
            self.subs
                .map
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .remove(&uri);
        }
        r
    }

    /// `resources/unsubscribe`: ends the subscription (a CANCEL to the
    /// origin, which unsubscribes the agent).
    pub(super) fn unsubscribe_routed(
        &self,
        req: UnsubscribeRequestParams,
    ) -> Result<(), ErrorData> {
        if let Some(t) = self
            .subs
            .map
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .remove(&req.uri)
        {
            t.cancel();
        }
        Ok(())
    }

    pub(super) async fn complete_routed(
        &self,
        req: CompleteRequestParams,
        ctx: &RequestContext<RoleServer>,
    ) -> Result<CompleteResult, ErrorData> {
        let table = self.link.table();
        let mut params = serde_json::to_value(&req)
            .map_err(|e| ErrorData::internal_error(e.to_string(), None))?;
        let r = params.get("ref").cloned().unwrap_or(Json::Null);
        let ty = r.get("type").and_then(Json::as_str).unwrap_or_default();
        let (item, field) = match ty {
            "ref/prompt" => {
                let name = r.get("name").and_then(Json::as_str).unwrap_or_default();
                (self.view.item(&table, ItemKind::Prompt, name), "name")
            }
            "ref/resource" => {
                let uri = r.get("uri").and_then(Json::as_str).unwrap_or_default();
                (
                    self.view
                        .item(&table, ItemKind::Template, uri)
                        .or_else(|| self.view.item(&table, ItemKind::Resource, uri)),
                    "uri",
                )
            }
            other => {
                return Err(ErrorData::invalid_params(
                    format!("unknown completion ref type {other:?}"),
                    None,
                ));
            }
        };
        let Some(item) = item else {
            return Err(ErrorData::invalid_params(
                format!("nothing routed to this node matches the completion ref {r}"),
                None,
            ));
        };
        if item.routed.kind == ItemKind::Resource {
            // A plain resource has no arguments to complete.
            return Ok(CompleteResult::default());
        }
        params["ref"][field] = Json::String(item.routed.key.clone());
        self.item_call(item, CallOp::Complete, params, ctx).await
    }
}

/// One held subscription (see [`FrontServer::subscribe_routed`]).
struct Subscription {
    link: FrontLink,
    peer: Peer<RoleServer>,
    target: crate::core::prefix::Prefix,
    key: String,
    origin_uri: String,
    /// The URI the client subscribed to (its front name).
    uri: String,
    token: CancellationToken,
    /// The endpoint's view: the subscription ends when the resource
    /// leaves it.
    view: std::sync::Arc<super::view::View>,
}

async fn hold_subscription(s: Subscription, ack: oneshot::Sender<Result<(), ErrorData>>) {
    let mut ack = Some(ack);
    loop {
        let (ptx, mut prx) = mpsc::channel(4);
        let (stx, mut srx) = mpsc::channel(super::side::SIDE_BUFFER);
        let spec = CallSpec {
            target: s.target.clone(),
            tool: Some(s.key.clone()),
            op: CallOp::Subscribe,
            arguments: json!({"uri": s.origin_uri}),
            idempotent: true,
            balance: false,
            capabilities: Vec::new(),
            timeout: Some(SUBSCRIPTION_RENEW),
            log_level: None,
        };
        let call = s.link.call_with_side(spec, Some(ptx), Some(stx), &s.token);
        tokio::pin!(call);
        let ended = loop {
            tokio::select! {
                r = &mut call => break r,
                Some(_) = prx.recv() => {
                    if let Some(a) = ack.take() {
                        let _ = a.send(Ok(()));
                    }
                }
                Some(ev) = srx.recv() => {
                    if let FrontSide::Notify { method, .. } = ev
                        && method == "notifications/resources/updated"
                    {
                        let p = ResourceUpdatedNotificationParam::new(s.uri.clone());
                        if s.peer.notify_resource_updated(p).await.is_err() {
                            s.token.cancel();
                        }
                    }
                }
            }
        };
        if s.token.is_cancelled() || s.peer.is_transport_closed() {
            return;
        }
        if let Some(a) = ack.take() {
            // It never got in place: the client hears why.
            let e = match ended {
                Ok(ret) => match ret.outcome {
                    CallOutcome::Err(e) => error_of(e, &ret.trace),
                    CallOutcome::Ok(_) => {
                        ErrorData::internal_error("the subscription ended at once", None)
                    }
                },
                Err(e) => ErrorData::internal_error(e.to_string(), None),
            };
            let _ = a.send(Err(e));
            return;
        }
        // Renewed, or moved to another path; it ends when the route goes.
        if s.view.resolve_uri(&s.link.table(), &s.uri).is_none() {
            tracing::info!(uri = %s.uri, "subscription ended: the resource is no longer routed here");
            return;
        }
        tokio::select! {
            _ = s.token.cancelled() => return,
            _ = tokio::time::sleep(Duration::from_secs(1)) => {}
        }
    }
}
