//! The plane's own tests: signing digests, metrics text, descriptor
//! fetches and the cache.

use std::sync::Arc;

use serde_json::{Map, Value as Json};

use super::*;
use crate::core::attrs::{AttrValue, ExtraAttr, PathAttrs};
use crate::core::call::{
    CallErrorKind, CallOp, CallOrigin, CallOutcome, CallReturn, DESCRIPTOR_ATTR, TOOL_ATTR,
};
use crate::core::ids::{Asn, Millis, NodeId};
use crate::core::proof::{AsnCert, Signature};
use crate::core::route::Route;
use crate::mcp::catalog::ToolDescriptor;

#[test]
fn args_digest_ignores_key_order() {
    let a: Json = serde_json::from_str(r#"{"b":1,"a":[1,2]}"#).unwrap();
    let b: Json = serde_json::from_str(r#"{"a":[1,2],"b":1}"#).unwrap();
    assert_eq!(args_digest(&a), args_digest(&b));
    assert_ne!(args_digest(&a), args_digest(&Json::Null));
}

#[test]
fn metrics_render_as_prometheus_text() {
    let mut m = CallMetrics::default();
    m.observe_front("ok", 300);
    m.observe_front("timeout", 2_000_000);
    let t = m.prometheus();
    assert!(t.contains("abgp_front_calls_total{outcome=\"ok\"} 1"));
    assert!(t.contains("abgp_front_call_seconds_bucket{le=\"0.0005\"} 1"));
    assert!(t.contains("abgp_front_call_seconds_bucket{le=\"+Inf\"} 2"));
}

struct NoSigner;
impl CallSigner for NoSigner {
    fn cert(&self) -> Option<Arc<AsnCert>> {
        None
    }
    fn sign(&self, _: &CallOrigin) -> Option<Signature> {
        None
    }
}

struct Nobody;
impl crate::core::forward::CallerVerifier for Nobody {
    fn verify(
        &self,
        _: Millis,
        _: &CallOrigin,
        _: &Json,
    ) -> Result<(), crate::core::forward::CallerRefused> {
        Err(crate::core::forward::CallerRefused::Untrusted(
            "test plane verifies nobody",
        ))
    }
}

fn plane() -> McpPlane {
    let node = NodeId::from_u64(1);
    let fwd = Forwarder::new(
        crate::core::forward::ForwardConfig::new(node, Asn(65001)),
        Box::new(Nobody),
    );
    McpPlane::new(PlaneConfig::new(node, Asn(65001)), fwd, Box::new(NoSigner))
}

fn descriptor(name: &str) -> ToolDescriptor {
    ToolDescriptor {
        name: name.into(),
        title: None,
        description: Some("does things".into()),
        input_schema: Map::new(),
        output_schema: None,
        annotations: None,
        icons: None,
        meta: None,
    }
}

#[test]
fn a_fetched_descriptor_is_cached_only_if_it_hashes_to_the_routes_hash() {
    let mut p = plane();
    let good = descriptor("lint");
    let prefix = Prefix::new("coding/lint").unwrap();
    let answer = |d: &ToolDescriptor| CallReturn {
        sealed: None,
        seal: None,
        sent_back: 0,
        outcome: CallOutcome::Ok(serde_json::to_value(d).unwrap()),
        trace: Vec::new(),
    };
    // The origin (or a hop on the way) answers with another schema.
    let id = FrontId(INTERNAL_FRONT + 1);
    p.describes.insert(id, (good.hash(), prefix.clone(), None));
    p.fetching.insert(good.hash());
    p.describe_done(Micros(1), id, answer(&descriptor("rm-rf")));
    assert!(p.cache.get(&good.hash()).is_none());
    let (_, why) = p
        .failed
        .get(&(good.hash(), prefix.clone()))
        .expect("the failure is remembered");
    assert!(why.contains("does not match"), "{why}");
    assert_eq!(p.metrics().descriptor_fetch_failures, 1);
    // The right one is cached.
    let id = FrontId(INTERNAL_FRONT + 2);
    p.failed.clear();
    p.describes.insert(id, (good.hash(), prefix, None));
    p.describe_done(Micros(2), id, answer(&good));
    assert_eq!(p.cache.get(&good.hash()).as_deref(), Some(&good));
}

#[test]
fn an_oversized_descriptor_is_refused_and_the_cache_is_bounded_in_bytes() {
    let mut p = plane();
    let prefix = Prefix::new("coding/huge").unwrap();
    let mut huge = descriptor("huge");
    huge.description = Some("x".repeat(MAX_DESCRIPTOR_BYTES));
    let id = FrontId(INTERNAL_FRONT + 1);
    p.describes.insert(id, (huge.hash(), prefix.clone(), None));
    p.describe_done(
        Micros(1),
        id,
        CallReturn {
            sealed: None,
            seal: None,
            sent_back: 0,
            outcome: CallOutcome::Ok(serde_json::to_value(&huge).unwrap()),
            trace: Vec::new(),
        },
    );
    assert!(p.cache.get(&huge.hash()).is_none());
    let (_, why) = &p.failed[&(huge.hash(), prefix)];
    assert!(why.contains("limit"), "{why}");

    // 40 descriptors of ~20 KiB in a cache of 256 KiB: the newest stay.
    let mut c = DescriptorCache::<ToolDescriptor>::new(1000, 256 << 10);
    let mut hashes = Vec::new();
    for i in 0..40 {
        let mut d = descriptor(&format!("t{i}"));
        d.description = Some("y".repeat(20_000));
        let size = serde_json::to_vec(&d).unwrap().len();
        hashes.push(d.hash());
        c.insert(d.hash(), Arc::new(d), size);
        assert!(c.bytes <= 256 << 10, "{} bytes cached", c.bytes);
    }
    assert!(c.get(&hashes[39]).is_some());
    assert!(c.get(&hashes[0]).is_none());
    assert_eq!(c.bytes, c.map.values().map(|(_, _, b)| b).sum::<usize>());
}

/// The CI failure of 2026-11-25: the same agent runs under two
/// prefixes, so their routes carry one descriptor hash. The origin
/// refuses to describe one of them (access policy); the other must
/// still be fetched, not marked unavailable.
#[test]
fn a_refused_fetch_does_not_mark_a_namesake_route_unavailable() {
    use crate::core::engine::{AcceptAll, EngineConfig};
    use crate::core::message::{Message, Update};

    let now = Millis(1_700_000_000_000);
    let mut e = Engine::new(EngineConfig::new(Asn(65001), NodeId::from_u64(1)))
        .with_policy(Arc::new(AcceptAll));
    let peer = NodeId::from_u64(2);
    crate::sim::bring_up_passive(&mut e, now, peer, Asn(65002), 0);
    let d = descriptor("echo");
    let route = |prefix: &str| {
        let mut a = PathAttrs {
            agent: AgentId::new(prefix.split('/').next().unwrap()),
            as_path: vec![Asn(65002)],
            ..Default::default()
        };
        a.extra.insert(
            TOOL_ATTR.into(),
            ExtraAttr {
                transitive: true,
                value: AttrValue::Text("echo".into()),
            },
        );
        a.extra.insert(
            DESCRIPTOR_ATTR.into(),
            ExtraAttr {
                transitive: true,
                value: AttrValue::Bytes(Arc::from(&d.hash().0[..])),
            },
        );
        Route::new(Prefix::new(prefix).unwrap(), Arc::new(a))
    };
    e.handle(
        now,
        Event::Message {
            peer,
            msg: Message::Update(Update {
                announce: vec![route("remote/echo"), route("vault/echo")],
                ..Default::default()
            }),
        },
    );
    let mut p = plane();
    let t = Micros::from_millis(now);
    let _ = p.on_routes(t, &e);
    // One fetch for the shared hash; answer it with a refusal.
    let (id, (h, first, _)) = p
        .describes
        .iter()
        .map(|(id, v)| (*id, v.clone()))
        .next()
        .expect("a fetch started");
    assert_eq!(h, d.hash());
    let refused = CallReturn {
        sealed: None,
        seal: None,
        sent_back: 0,
        outcome: CallOutcome::err(CallErrorKind::AccessDenied, "access denied".to_string()),
        trace: Vec::new(),
    };
    p.describe_done(t, id, refused);
    let _ = p.on_routes(t, &e);
    let other = if first.as_str() == "vault/echo" {
        "remote/echo"
    } else {
        "vault/echo"
    };
    let table = p.table.clone();
    let note = |prefix: &str| {
        table
            .by_prefix(&Prefix::new(prefix).unwrap())
            .and_then(|t| t.routed.descriptor_note.clone())
            .unwrap_or_default()
    };
    assert!(
        note(first.as_str()).contains("unavailable"),
        "{}",
        note(first.as_str())
    );
    assert!(note(other).contains("not fetched yet"), "{}", note(other));
    assert!(
        p.describes.values().any(|(_, q, _)| q.as_str() == other),
        "the other route's descriptor is fetched through it"
    );
}

#[test]
fn the_descriptor_cache_drops_the_least_recently_used() {
    let mut c = DescriptorCache::<ToolDescriptor>::new(2, usize::MAX);
    let d = |n: &str| {
        Arc::new(ToolDescriptor {
            name: n.into(),
            title: None,
            description: None,
            input_schema: Map::new(),
            output_schema: None,
            annotations: None,
            icons: None,
            meta: None,
        })
    };
    let (a, b, x) = (d("a"), d("b"), d("x"));
    c.insert(a.hash(), a.clone(), 100);
    c.insert(b.hash(), b.clone(), 100);
    assert!(c.get(&a.hash()).is_some()); // a is now more recent than b
    c.insert(x.hash(), x.clone(), 100);
    assert!(c.get(&b.hash()).is_none());
    assert!(c.get(&a.hash()).is_some());
    assert!(c.get(&x.hash()).is_some());
}

/// The plane drives a whole local call without a runtime: the agent's
/// tools become routes, a front call becomes a run for the node, the run's
/// progress and end go back to the front; a cancelled call asks the node to
/// cancel its run.
#[test]
fn a_front_call_to_a_hosted_tool_is_a_run_for_the_node_and_its_end_goes_back() {
    use crate::core::engine::EngineConfig;
    use crate::core::forward::FrontId;
    use crate::core::forward::Micros;
    use crate::mcp::upstream::{AgentEvent, ServerSummary, SessionId};

    let now = Millis(1_700_000_000_000);
    let us = Micros::from_millis(now);
    let mut e = Engine::new(EngineConfig::new(Asn(65001), NodeId::from_u64(1)));
    let mut p = plane();
    let cfg: crate::mcp::config::AgentConfig = serde_json::from_value(serde_json::json!({
        "id": "utility", "prefix": "utility/echo", "command": "unused"
    }))
    .unwrap();
    let up = AgentEvent::Up {
        agent: AgentId::new("utility"),
        session: SessionId(1),
        server: ServerSummary {
            name: None,
            version: None,
            protocol_version: "2025-11-25".into(),
            instructions: None,
        },
        tools: vec![descriptor("echo")],
        items: Vec::new(),
    };
    let out = p.on_agent(now, up, Some(&cfg));
    assert_eq!(out.engine.len(), 1, "one tool, one route: {:?}", out.engine);
    for ev in out.engine {
        e.handle(now, ev);
    }
    let out = p.on_routes(us, &e);
    let table = out.table.expect("the front's table is published");
    let tool = table.tools().first().expect("the hosted tool is listed");
    let call = |id| FrontCall {
        id: FrontId(id),
        spec: crate::mcp::front::CallSpec {
            op: CallOp::Tool,
            log_level: None,
            target: tool.routed.prefix.clone(),
            tool: Some("echo".into()),
            arguments: serde_json::json!({"text": "hi"}),
            idempotent: false,
            balance: false,
            capabilities: Vec::new(),
            timeout: None,
        },
        progress: true,
    };
    let out = p.on_front_call(us, &e, call(1));
    assert!(out.net.is_empty() && out.front.is_empty());
    let [run] = &out.runs[..] else {
        panic!("one run for the node: {:?}", out.runs)
    };
    assert_eq!((run.agent.as_str(), run.tool.as_str()), ("utility", "echo"));
    assert_eq!(run.arguments.get("text"), Some(&serde_json::json!("hi")));
    let info = crate::core::call::ProgressInfo {
        progress: 1.0,
        total: None,
        message: None,
    };
    let out = p.on_local(us, &e, LocalEvent::Progress { id: run.id, info });
    assert!(matches!(
        &out.front[..],
        [FrontReply::Progress { id: FrontId(1), .. }]
    ));
    let done = LocalEvent::Done {
        id: run.id,
        outcome: CallOutcome::Ok(serde_json::json!({"content": []})),
    };
    let out = p.on_local(Micros(us.0 + 1_000), &e, done);
    let [FrontReply::Done { id, ret }] = &out.front[..] else {
        panic!("the end goes back to the front: {:?}", out.front)
    };
    assert_eq!(*id, FrontId(1));
    assert!(matches!(ret.outcome, CallOutcome::Ok(_)));
    assert_eq!(ret.trace.len(), 1, "one hop: this node");
    assert_eq!(p.metrics().front_calls.get("ok"), Some(&1));

    // Cancelled by the client: the node is asked to cancel the run, and
    // nothing goes back.
    let out = p.on_front_call(us, &e, call(2));
    let id = out.runs[0].id;
    let out = p.on_front_cancel(us, &e, FrontId(2), None);
    assert_eq!(out.cancel, vec![id]);
    assert!(out.front.is_empty());
}
