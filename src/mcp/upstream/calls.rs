//! Sending an operation to a connected agent: the request for each
//! operation, the rounds of a 2026-07-28 agent's `input_required` answered
//! over the caller's side channel, one request's send and wait (progress,
//! side channel, cancellation, deadline), resource subscriptions held for a
//! caller, and what the agent's answers and failures mean as
//! [`UpstreamError`]s.

use super::*;

impl UpstreamHandle {
    /// Holds a resource subscription at the agent for the call's caller
    /// until the call is cancelled or its deadline passes: the agent is
    /// sent `resources/subscribe` for the first subscriber of a URI and
    /// `resources/unsubscribe` when the last one goes; a progress step
    /// (`subscribed`) says it is in place; each
    /// `notifications/resources/updated` for the URI goes to the call's side
    /// channel. A subscription holds no call slot. It ends with `Cancelled`
    /// or `Timeout`, as a call would.
    pub(super) async fn subscribe(&self, call: ToolCall) -> Result<Value, UpstreamError> {
        let session = self.up_session(&call.agent)?.0;
        // An agent without subscriptions says so at once.
        let can = session
            .peer
            .peer_info()
            .and_then(|i| i.capabilities.resources.as_ref().and_then(|r| r.subscribe))
            .unwrap_or(false)
            || session
                .peer
                .peer_info()
                .is_some_and(|i| !i.protocol_version.has_initialize());
        if !can {
            return Err(UpstreamError::Rejected {
                agent: call.agent.clone(),
                tool: call.tool.clone(),
                code: ErrorCode::METHOD_NOT_FOUND.0,
                message: format!(
                    "agent {} does not support resource subscriptions",
                    call.agent
                ),
                data: None,
            });
        }
        let ToolCall {
            agent,
            tool,
            arguments,
            progress,
            side,
            cancel,
            timeout,
            ..
        } = call;
        let rejected = |message: String| UpstreamError::Rejected {
            agent: agent.clone(),
            tool: tool.clone(),
            code: ErrorCode::INVALID_PARAMS.0,
            message,
            data: None,
        };
        let uri = arguments
            .get("uri")
            .and_then(Value::as_str)
            .ok_or_else(|| rejected("a subscription needs a `uri`".into()))?
            .to_string();
        let side =
            side.ok_or_else(|| rejected("a subscription needs somewhere to send updates".into()))?;
        let timeout = timeout.unwrap_or(Duration::from_secs(3600));
        let deadline = tokio::time::Instant::now() + timeout;
        let legacy = session
            .peer
            .peer_info()
            .is_none_or(|i| i.protocol_version.has_initialize());
        if !legacy {
            // 2026-07-28 has no resources/subscribe: updates come on a
            // subscriptions/listen stream that names the resource.
            let mut filter = rmcp::model::SubscriptionFilter::new();
            filter.resource_subscriptions = Some(vec![uri.clone()]);
            let listened = tokio::select! {
                r = session.peer.listen(filter) => r.map_err(|e| service_error(&agent, &tool, e)),
                _ = cancel.cancelled() => return Err(UpstreamError::Cancelled { agent, tool, sent: false }),
                _ = tokio::time::sleep_until(deadline) => {
                    return Err(UpstreamError::Timeout { agent, tool, after: timeout, sent: true });
                }
            };
            let mut stream = listened?;
            if let Some(p) = &progress {
                let _ = p.try_send(Progress {
                    progress: 0.0,
                    total: None,
                    message: Some("subscribed".into()),
                });
            }
            loop {
                tokio::select! {
                    n = stream.next() => match n {
                        Ok(Some(rmcp::model::ServerNotification::ResourceUpdatedNotification(u))) => {
                            let params = serde_json::to_value(&u.params).unwrap_or(Value::Null);
                            let ev = SideEvent::Notify {
                                method: "notifications/resources/updated".into(),
                                params,
                            };
                            if side.try_send(ev).is_err() {
                                tracing::debug!(%agent, %uri, "subscriber's side channel full; update dropped");
                            }
                        }
                        Ok(Some(_)) => {}
                        Ok(None) | Err(_) => {
                            return Err(UpstreamError::Disconnected { agent, tool });
                        }
                    },
                    _ = cancel.cancelled() => return Err(UpstreamError::Cancelled { agent, tool, sent: true }),
                    _ = tokio::time::sleep_until(deadline) => {
                        return Err(UpstreamError::Timeout { agent, tool, after: timeout, sent: true });
                    }
                    _ = session.closed.cancelled() => return Err(UpstreamError::Disconnected { agent, tool }),
                }
            }
        }
        let (sub, first) = session.side.add_subscriber(&uri, side);
        if first {
            let request = build_request(CallOp::Subscribe, &tool, arguments, None, None, None)
                .map_err(rejected)?;
            let r = send_once(
                &session,
                request,
                Once {
                    agent: &agent,
                    tool: &tool,
                    progress: None,
                    side: None,
                    cancel: &cancel,
                    timeout,
                    deadline,
                    sent_before: false,
                },
            )
            .await;
            if let Err(e) = r {
                session.side.remove_subscriber(&uri, sub);
                return Err(e);
            }
        }
        if let Some(p) = &progress {
            let _ = p.try_send(Progress {
                progress: 0.0,
                total: None,
                message: Some("subscribed".into()),
            });
        }
        let cancelled = tokio::select! {
            _ = cancel.cancelled() => true,
            _ = tokio::time::sleep_until(deadline) => false,
            _ = session.closed.cancelled() => false,
        };
        if session.side.remove_subscriber(&uri, sub) {
            let params: Result<UnsubscribeRequestParams, _> =
                serde_json::from_value(serde_json::json!({"uri": uri}));
            if let Ok(p) = params {
                let req = ClientRequest::UnsubscribeRequest(Request::new(p));
                let send = session.peer.send_request(req);
                if tokio::time::timeout(CANCEL_SEND_TIMEOUT, send)
                    .await
                    .is_err()
                {
                    tracing::debug!(%agent, %uri, "unsubscribe not answered in time");
                }
            }
        }
        if cancelled {
            Err(UpstreamError::Cancelled {
                agent,
                tool,
                sent: true,
            })
        } else {
            Err(UpstreamError::Timeout {
                agent,
                tool,
                after: timeout,
                sent: true,
            })
        }
    }
}

pub(super) async fn call_on_session(
    session: &Arc<Session>,
    call: ToolCall,
    timeout: Duration,
    deadline: tokio::time::Instant,
) -> Result<ServerResult, UpstreamError> {
    let ToolCall {
        agent,
        op,
        tool,
        arguments,
        progress,
        side,
        log_level,
        trace,
        cancel,
        ..
    } = call;
    let traceparent = trace.map(|t| t.traceparent());
    let started = tokio::time::Instant::now();

    // A slot first: it bounds what one agent has in flight.
    let _permit = tokio::select! {
        biased;
        _ = cancel.cancelled() => return Err(UpstreamError::Cancelled { agent, tool, sent: false }),
        permit = session.slots.clone().acquire_owned() => match permit {
            Ok(p) => p,
            // Closed only when the session is torn down.
            Err(_) => return Err(UpstreamError::AgentDown { agent, reason: "session closed".into() }),
        },
        _ = tokio::time::sleep_until(deadline) => {
            return Err(UpstreamError::Overloaded { agent, slots: session.max_slots, waited: started.elapsed() });
        }
    };

    // A 2026-07-28 agent asks for input by answering `input_required`
    // (SEP-2322) instead of sending requests mid-call: each round's
    // requests go to the caller's client over the side channel, as a
    // 2025-11-25 agent's would, and the request is sent again with the
    // answers and the agent's opaque state, until it completes.
    let mut retry: Option<(Map<String, Value>, Option<String>)> = None;
    let mut rounds = 0usize;
    // Only a 2026-07-28 session can answer input_required (and with no side
    // channel there is nobody to ask): otherwise the arguments go as they
    // are, without a copy kept for a retry.
    let may_retry = side.is_some()
        && session
            .peer
            .peer_info()
            .is_some_and(|i| !i.protocol_version.has_initialize());
    let mut arguments = Some(arguments);
    loop {
        let args = if may_retry {
            arguments.clone().unwrap_or_default()
        } else {
            arguments.take().unwrap_or_default()
        };
        let request = build_request(
            op,
            &tool,
            args,
            retry.take(),
            log_level,
            traceparent.as_deref(),
        )
        .map_err(|detail| UpstreamError::Rejected {
            agent: agent.clone(),
            tool: tool.clone(),
            code: ErrorCode::INVALID_PARAMS.0,
            message: detail,
            data: None,
        })?;
        let result = send_once(
            session,
            request,
            Once {
                agent: &agent,
                tool: &tool,
                progress: progress.clone(),
                side: side.clone(),
                cancel: &cancel,
                timeout,
                deadline,
                sent_before: rounds > 0,
            },
        )
        .await?;
        let ServerResult::InputRequiredResult(ir) = result else {
            return Ok(result);
        };
        let (Some(side), Some(requests)) = (&side, ir.input_requests.clone()) else {
            return Ok(ServerResult::InputRequiredResult(ir));
        };
        rounds += 1;
        if rounds > rmcp::model::DEFAULT_MRTR_MAX_ROUNDS {
            return Err(UpstreamError::Unsupported {
                agent,
                tool,
                what: "the upstream asked for more input more than 10 rounds in a row",
            });
        }
        let mut answers = Map::new();
        for (key, req) in requests {
            let v = serde_json::to_value(&req).unwrap_or(Value::Null);
            let method = v["method"].as_str().unwrap_or_default().to_string();
            let params = v.get("params").cloned().unwrap_or(Value::Null);
            let (reply, rx) = tokio::sync::oneshot::channel();
            let asked = side
                .send(SideEvent::Ask {
                    method,
                    params,
                    reply,
                })
                .await;
            let answer = match asked {
                Ok(()) => tokio::select! {
                    a = rx => a.ok(),
                    _ = cancel.cancelled() => return Err(UpstreamError::Cancelled { agent, tool, sent: true }),
                    _ = tokio::time::sleep_until(deadline) => {
                        return Err(UpstreamError::Timeout { agent, tool, after: timeout, sent: true });
                    }
                },
                Err(_) => None,
            };
            match answer {
                Some(Ok(v)) => {
                    answers.insert(key, v);
                }
                Some(Err(e)) => {
                    return Err(UpstreamError::Rejected {
                        agent,
                        tool,
                        code: i32::try_from(e.code).unwrap_or(ErrorCode::INTERNAL_ERROR.0),
                        message: format!(
                            "the calling client could not give the input the agent asked for: {}",
                            e.message
                        ),
                        data: e.data,
                    });
                }
                None => {
                    return Err(UpstreamError::Rejected {
                        agent,
                        tool,
                        code: ErrorCode::INTERNAL_ERROR.0,
                        message: "the call ended before the calling client gave the input the agent asked for".into(),
                        data: None,
                    });
                }
            }
        }
        retry = Some((answers, ir.request_state.clone()));
    }
}

/// One request of a call (a call is several when the agent asks for input).
struct Once<'a> {
    agent: &'a AgentId,
    tool: &'a str,
    progress: Option<mpsc::Sender<Progress>>,
    side: Option<mpsc::Sender<SideEvent>>,
    cancel: &'a CancellationToken,
    timeout: Duration,
    deadline: tokio::time::Instant,
    /// An earlier round of this call reached the agent.
    sent_before: bool,
}

async fn send_once(
    session: &Arc<Session>,
    request: ClientRequest,
    o: Once<'_>,
) -> Result<ServerResult, UpstreamError> {
    let (agent, tool) = (o.agent.clone(), o.tool.to_string());
    let send = session
        .peer
        .send_request_with_option(request, PeerRequestOptions::no_options());
    let handle = tokio::select! {
        biased;
        // The SDK's send is an mpsc send: dropped before it completes, the
        // request was not queued.
        _ = o.cancel.cancelled() => return Err(UpstreamError::Cancelled { agent, tool, sent: o.sent_before }),
        h = send => h.map_err(|e| service_error(&agent, &tool, e))?,
        _ = tokio::time::sleep_until(o.deadline) => {
            return Err(UpstreamError::Timeout { agent, tool, after: o.timeout, sent: o.sent_before });
        }
    };
    let request_id = handle.id.clone();
    // Registered before awaiting the reply; notifications that beat the
    // registration are held briefly by the router and replayed.
    let _progress = session
        .progress
        .subscribe(handle.progress_token.clone(), o.progress);
    let _side = o
        .side
        .map(|tx| session.side.subscribe(request_id.clone(), tx));

    let outcome = tokio::select! {
        biased;
        r = handle.await_response() => Ok(r),
        _ = o.cancel.cancelled() => Err("cancelled by the caller"),
        _ = tokio::time::sleep_until(o.deadline) => Err("timed out"),
    };
    if outcome.is_ok() {
        // The SDK hands each notification to a task of its own but the
        // response straight to us, so a log line the agent sent just
        // before its result may not have been routed yet: let those tasks
        // run before the call's registrations go (they were queued before
        // the response woke this task).
        tokio::task::yield_now().await;
    }
    match outcome {
        Ok(Ok(result)) => Ok(result),
        Ok(Err(e)) => Err(service_error(&agent, &tool, e)),
        Err(why) => {
            // Tell the agent to stop; this also drops the pending reply
            // from the SDK's table.
            let notice = session
                .peer
                .notify_cancelled(CancelledNotificationParam::new(
                    Some(request_id),
                    Some(why.to_string()),
                ));
            if tokio::time::timeout(CANCEL_SEND_TIMEOUT, notice)
                .await
                .is_err()
            {
                tracing::debug!(%agent, %tool, "cancellation not sent in time");
            }
            if o.cancel.is_cancelled() {
                Err(UpstreamError::Cancelled {
                    agent,
                    tool,
                    sent: true,
                })
            } else {
                Err(UpstreamError::Timeout {
                    agent,
                    tool,
                    after: o.timeout,
                    sent: true,
                })
            }
        }
    }
}

/// The `_meta` key of a request that carries the W3C trace context.
pub(super) const TRACEPARENT_META: &str = "traceparent";

/// The request an operation sends; `retry` carries the answers to an
/// earlier `input_required` round and the agent's state; `traceparent`
/// goes in the request's `_meta`.
fn build_request(
    op: CallOp,
    name: &str,
    args: Map<String, Value>,
    retry: Option<(Map<String, Value>, Option<String>)>,
    log_level: Option<u8>,
    traceparent: Option<&str>,
) -> Result<ClientRequest, String> {
    if let (CallOp::Tool, None, None) = (op, &retry, log_level) {
        // The common case, without a detour through JSON.
        let mut p = CallToolRequestParams::new(name.to_string()).with_arguments(args);
        if let Some(tp) = traceparent {
            let mut meta = rmcp::model::RequestMetaObject::new();
            meta.insert(TRACEPARENT_META.into(), Value::String(tp.to_string()));
            p.meta = Some(meta);
        }
        return Ok(ClientRequest::CallToolRequest(Request::new(p)));
    }
    let mut params = match op {
        CallOp::Tool => serde_json::json!({"name": name, "arguments": args}),
        CallOp::Prompt => serde_json::json!({"name": name, "arguments": args}),
        CallOp::Resource | CallOp::Complete | CallOp::Subscribe => Value::Object(args),
        CallOp::Describe => return Err("describe is answered by the node, not the agent".into()),
    };
    if let (Some((answers, state)), Value::Object(p)) = (retry, &mut params) {
        p.insert("inputResponses".into(), Value::Object(answers));
        if let Some(state) = state {
            p.insert("requestState".into(), Value::String(state));
        }
    }
    if let (Some(tp), Value::Object(p)) = (traceparent, &mut params) {
        let meta = p
            .entry("_meta")
            .or_insert_with(|| Value::Object(Map::new()));
        if let Value::Object(m) = meta {
            m.insert(TRACEPARENT_META.into(), Value::String(tp.to_string()));
        }
    }
    if let (Some(level), Value::Object(p)) = (log_level, &mut params) {
        let name = serde_json::to_value(crate::mcp::log_level::level(level)).unwrap_or(Value::Null);
        let meta = p
            .entry("_meta")
            .or_insert_with(|| Value::Object(Map::new()));
        if let Value::Object(m) = meta {
            m.insert("io.modelcontextprotocol/logLevel".into(), name);
        }
    }
    Ok(match op {
        CallOp::Tool => {
            let p: CallToolRequestParams =
                serde_json::from_value(params).map_err(|e| format!("not tool call params: {e}"))?;
            ClientRequest::CallToolRequest(Request::new(p))
        }
        CallOp::Prompt => {
            let p: GetPromptRequestParams = serde_json::from_value(params)
                .map_err(|e| format!("prompt arguments must be text values: {e}"))?;
            ClientRequest::GetPromptRequest(Request::new(p))
        }
        CallOp::Resource => {
            let p: ReadResourceRequestParams = serde_json::from_value(params)
                .map_err(|e| format!("a resource read needs a `uri`: {e}"))?;
            ClientRequest::ReadResourceRequest(Request::new(p))
        }
        CallOp::Complete => {
            let p: CompleteRequestParams = serde_json::from_value(params)
                .map_err(|e| format!("not completion params: {e}"))?;
            ClientRequest::CompleteRequest(Request::new(p))
        }
        CallOp::Subscribe => {
            let p: SubscribeRequestParams = serde_json::from_value(params)
                .map_err(|e| format!("a subscription needs a `uri`: {e}"))?;
            ClientRequest::SubscribeRequest(Request::new(p))
        }
        CallOp::Describe => return Err("describe is answered by the node, not the agent".into()),
    })
}

pub(super) fn server_result(
    agent: &AgentId,
    tool: &str,
    result: ServerResult,
) -> Result<ToolCallResult, UpstreamError> {
    let unsupported = |what| UpstreamError::Unsupported {
        agent: agent.clone(),
        tool: tool.to_string(),
        what,
    };
    match result {
        ServerResult::CallToolResult(r) => Ok(ToolCallResult::from_rmcp(&r)),
        // A reply with neither content nor structured content decodes as
        // an empty result: the tool succeeded and said nothing.
        ServerResult::EmptyResult(_) => Ok(ToolCallResult {
            content: Vec::new(),
            structured_content: None,
            is_error: false,
            meta: None,
        }),
        ServerResult::InputRequiredResult(_) => {
            Err(unsupported("the upstream asked for more input (MRTR)"))
        }
        ServerResult::CreateTaskResult(_) => Err(unsupported(
            "the upstream started a task (the tool is running) instead of answering",
        )),
        other => Err(UpstreamError::Protocol {
            agent: agent.clone(),
            tool: tool.to_string(),
            detail: format!("{other:?}").chars().take(200).collect(),
        }),
    }
}

fn service_error(agent: &AgentId, tool: &str, e: ServiceError) -> UpstreamError {
    let agent = agent.clone();
    let tool = tool.to_string();
    match e {
        ServiceError::McpError(e) => UpstreamError::Rejected {
            agent,
            tool,
            code: e.code.0,
            message: e.message.to_string(),
            data: e.data,
        },
        ServiceError::TransportClosed => UpstreamError::Disconnected { agent, tool },
        ServiceError::TransportSend(e) => UpstreamError::Transport {
            agent,
            tool,
            detail: e.to_string(),
        },
        ServiceError::Cancelled { reason } => UpstreamError::UpstreamCancelled {
            agent,
            tool,
            reason: reason.unwrap_or_else(|| "no reason given".into()),
        },
        ServiceError::Timeout { timeout } => UpstreamError::Timeout {
            agent,
            tool,
            after: timeout,
            sent: true,
        },
        other => UpstreamError::Protocol {
            agent,
            tool,
            detail: other.to_string(),
        },
    }
}
