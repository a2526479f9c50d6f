//! What an agent sends the calling client during a call, delivered to the
//! front session that made the call: log messages (filtered by the
//! session's `logging/setLevel`) and requests (sampling, elicitation,
//! roots), whose answers go back to the origin as REPLY.
//!
//! A request for a capability the client did not declare is answered with
//! a "method not found" error at once: the agent hears no, never silence.

#![allow(deprecated)] // Sampling, roots and logging: SEP-2577 deprecates them; 2025-11-25 has them.

use std::sync::{Arc, Mutex};

use rmcp::RoleServer;
use rmcp::model::{
    CustomRequest, ErrorCode, LoggingLevel, LoggingMessageNotificationParam, ServerRequest,
};
use rmcp::service::{Peer, ServiceError};
use serde_json::Value as Json;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::{FrontLink, FrontSide};
use crate::core::call::{CallError, CallErrorKind, CallOutcome};
use crate::mcp::log_level::severity;

/// Side-channel messages queued per call before log lines are dropped.
pub(super) const SIDE_BUFFER: usize = 64;

/// Relays one call's side channel to `peer` until the node drops its end
/// (the call is over); requests still waiting for the client then stop.
pub(super) async fn relay(
    mut rx: mpsc::Receiver<FrontSide>,
    peer: Peer<RoleServer>,
    link: FrontLink,
    level: Arc<Mutex<Option<LoggingLevel>>>,
) {
    let done = CancellationToken::new();
    let _stop = done.clone().drop_guard();
    while let Some(ev) = rx.recv().await {
        match ev {
            FrontSide::Notify { method, params } => {
                if method != "notifications/message" {
                    continue;
                }
                let Ok(p) = serde_json::from_value::<LoggingMessageNotificationParam>(params)
                else {
                    tracing::debug!("an agent's log message is malformed; dropped");
                    continue;
                };
                let min = *level
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner);
                if min.is_some_and(|m| severity(p.level) < severity(m)) {
                    continue;
                }
                if peer.notify_logging_message(p).await.is_err() {
                    // The client went away; its cancellation ends the call.
                    break;
                }
            }
            FrontSide::Ask {
                id,
                ask,
                method,
                params,
            } => {
                // In a task of its own: a person answering an elicitation
                // must not hold up the call's log lines.
                let peer = peer.clone();
                let link = link.clone();
                let done = done.clone();
                tokio::spawn(async move {
                    let outcome = tokio::select! {
                        o = ask_client(&peer, &method, params) => o,
                        _ = done.cancelled() => return,
                    };
                    let _ = link.reply(id, ask, outcome).await;
                });
            }
        }
    }
}

/// Sends the agent's request to the client, if it declared the capability.
async fn ask_client(peer: &Peer<RoleServer>, method: &str, params: Json) -> CallOutcome {
    let caps = peer.peer_info().map(|i| i.capabilities.clone());
    let declared = caps.as_ref().is_some_and(|c| match method {
        "sampling/createMessage" => c.sampling.is_some(),
        "elicitation/create" => c.elicitation.is_some(),
        "roots/list" => c.roots.is_some(),
        _ => false,
    });
    if !declared {
        return CallOutcome::Err(CallError::upstream(
            i64::from(ErrorCode::METHOD_NOT_FOUND.0),
            format!("the calling MCP client does not support {method}"),
            None,
        ));
    }
    let req = ServerRequest::CustomRequest(CustomRequest::new(method, Some(params)));
    match peer.send_request(req).await {
        Ok(result) => match serde_json::to_value(&result) {
            Ok(v) => CallOutcome::Ok(v),
            Err(e) => CallOutcome::err(CallErrorKind::Internal, e.to_string()),
        },
        Err(ServiceError::McpError(e)) => CallOutcome::Err(CallError::upstream(
            i64::from(e.code.0),
            e.message.to_string(),
            e.data,
        )),
        Err(e) => CallOutcome::Err(CallError::upstream(
            i64::from(ErrorCode::INTERNAL_ERROR.0),
            format!("the calling MCP client did not answer: {e}"),
            None,
        )),
    }
}
