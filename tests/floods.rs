//! Floods from a hostile peer (tests/hostile_peer: raw libp2p with noise,
//! speaking the wire badly on purpose) against real `abgp` processes. Each
//! test asserts the bound that holds while the flood runs (memory, queues,
//! slots, store size) and that the node keeps serving a well-behaved
//! neighbour, its admin API and its MCP front meanwhile. The figures each
//! test prints are the ones docs/reliability.md records.

// Both helper modules include the port helper; one copy each is harmless.
#![allow(clippy::duplicate_mod)]

mod hostile_peer;
mod node_harness;

use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::AsyncWriteExt;
use serde_json::{Value, json};

use agent_bgp::core::call::{
    Call, CallAnswer, CallErrorKind, CallId, CallMessage, CallOp, CallOrigin, LegId, Progress,
    ProgressInfo,
};
use agent_bgp::core::ids::{Asn, Millis};
use agent_bgp::core::message::{ErrorCode, Message};
use agent_bgp::core::prefix::Prefix;
use agent_bgp::net::call_codec::CALL_PROTOCOL;
use agent_bgp::net::route_codec::ROUTE_PROTOCOL;
use agent_bgp::wire::{self, Frame, Limits};
use hostile_peer::{Hostile, now_ms, usage, wait_async};
use node_harness::{BIN, NodeDir, Proc, Spec, configure, init, wait_for};

/// A node under test and a well-behaved neighbour (the witness, another
/// AS, routes flowing both ways), so a test can tell whether the node still
/// serves its real peers while a flood runs.
struct Rig {
    node: NodeDir,
    proc: Proc,
    witness: NodeDir,
    _witness_proc: Proc,
    /// Last, so the processes (and their logs) go first.
    _root: tempfile::TempDir,
}

fn rig(node_spec: impl FnOnce(&NodeDir) -> Spec) -> Rig {
    let root = tempfile::tempdir().unwrap();
    let node = init(root.path(), "n", "test");
    let witness = init(root.path(), "w", "test");
    let mut ns = node_spec(&witness);
    ns.neighbors.push((witness.clone(), false));
    configure(&node, &ns);
    configure(
        &witness,
        &Spec {
            neighbors: vec![(node.clone(), false)],
            originate: vec!["witness/tool".into()],
            ..Spec::default()
        },
    );
    let proc = Proc::start(&node);
    let witness_proc = Proc::start(&witness);
    wait_for("the witness session", Duration::from_secs(30), || {
        proc.established_with(&witness.peer_id).then_some(())
    });
    Rig {
        _root: root,
        node,
        proc,
        witness,
        _witness_proc: witness_proc,
    }
}

impl Rig {
    /// The node still serves: its session with the witness is up, routes
    /// still flow both ways, and the admin API answers.
    fn still_serving(&self, what: &str) {
        assert!(
            self.proc.established_with(&self.witness.peer_id),
            "{what}: the witness session went down"
        );
        assert!(
            self.proc.route("witness/tool").is_some(),
            "{what}: the witness's route is gone"
        );
        assert!(
            self.proc.try_get("/v1/status").is_some(),
            "{what}: admin API"
        );
    }

    fn addr(&self) -> String {
        self.node.addr()
    }

    fn status(&self) -> Value {
        self.proc.status()
    }
}

/// `ABGP_FLOOD_SCALE` multiplies the floods (scripts/bench.sh runs them
/// longer); 1 in the test suite.
fn scale() -> usize {
    std::env::var("ABGP_FLOOD_SCALE")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1)
        .max(1)
}

fn report(what: &str, before: hostile_peer::Usage, after: hostile_peer::Usage, took: Duration) {
    eprintln!(
        "FLOOD {what}: {:.1} s, node RSS {} -> {} KiB (peak {} KiB), CPU {} ms",
        took.as_secs_f64(),
        before.rss_kib,
        after.rss_kib,
        after.peak_kib,
        after.cpu_ms.saturating_sub(before.cpu_ms)
    );
}

fn notification(answer: &Option<Message>) -> Option<(ErrorCode, u8)> {
    match answer {
        Some(Message::Notification(n)) => Some((n.code, n.subcode)),
        _ => None,
    }
}

/// A frame map with `n` distinct extension keys: the quadratic frame of the
/// issue (about 1 MiB for 174,000 keys).
fn wide_map_frame(n: u32) -> Vec<u8> {
    let mut f = vec![0xba];
    f.extend_from_slice(&(n + 2).to_be_bytes());
    f.extend_from_slice(&[0x00, 0x01, 0x01, 0x02]);
    for k in 0..n {
        f.push(0x1a);
        f.extend_from_slice(&(k + 32).to_be_bytes());
        f.push(0xf6);
    }
    f
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stranger_without_a_session_cannot_make_the_node_read_or_hold_much() {
    let r = rig(|_| Spec::default());
    let pid = r.proc.pid();
    let before = usage(pid);
    let t0 = Instant::now();
    let mut h = Hostile::connect(&r.addr(), &r.node.peer_id).await;

    // Garbage, a truncated frame, an UPDATE before OPEN: each refused with
    // a NOTIFICATION, nothing taken.
    let refused = |a: &std::io::Result<Vec<u8>>| {
        let bytes = a.as_ref().expect("an answer");
        matches!(
            wire::decode(bytes, &Limits::default()),
            Ok(Frame::Routing(Message::Notification(_)))
        )
    };
    assert!(refused(&h.route_request(&[0xff, 0x00, 0x13]).await));
    let ka = wire::encode_message(&Message::Keepalive, &Limits::default()).unwrap();
    assert!(refused(&h.route_request(&ka[..ka.len() - 1]).await));
    let upd = Hostile::update(vec![h.signed_route("x/y", Asn(1))]);
    let answer = h.send(&upd).await.unwrap();
    assert!(
        notification(&answer).is_some(),
        "UPDATE before OPEN: {answer:?}"
    );

    // Oversized and quadratic frames: read no further than an OPEN can be,
    // refused (with a NOTIFICATION, or the stream reset mid-write).
    for frame in [vec![0u8; 1 << 20], wide_map_frame(174_000)] {
        let a = h.route_request(&frame).await;
        assert!(a.is_err() || refused(&a), "{a:?}");
    }

    // Call streams: reset before anything is read, however many.
    let big = vec![0x42u8; 1 << 20];
    let streams = 200 * scale();
    for _ in 0..streams {
        if let Ok(mut s) = h.stream(CALL_PROTOCOL).await {
            // The node resets the stream: the write fails, or stalls on a
            // window nobody reads.
            let _ = tokio::time::timeout(Duration::from_millis(200), s.write_all(&big)).await;
        }
    }
    eprintln!("inbound after the call streams: {}", r.status()["inbound"]);
    let t_calls = Instant::now();
    let inbound = wait_async(
        "the call streams to be refused",
        Duration::from_secs(20),
        || {
            let i = r.proc.try_get("/v1/status")?["inbound"].clone();
            (i["call_streams_without_session"].as_u64()? >= streams as u64).then_some(i)
        },
    )
    .await;
    eprintln!(
        "{streams} call streams refused within {:?}",
        t_calls.elapsed()
    );

    // Slow-loris: 400 routing streams opened and never written.
    let mut held = Vec::new();
    for _ in 0..400 {
        if let Ok(s) = h.stream(ROUTE_PROTOCOL).await {
            held.push(s);
        }
    }
    r.still_serving("during the slow-loris streams");
    let after = usage(pid);
    report(
        &format!(
            "no session: garbage, 1 MiB and quadratic frames, {streams} x 1 MiB call streams, 400 silent streams"
        ),
        before,
        after,
        t0.elapsed(),
    );
    assert!(
        inbound["peak_bytes"].as_u64().unwrap() <= 1 << 20,
        "at most about one frame per stream was charged: {inbound}"
    );
    assert!(
        after.rss_kib < before.rss_kib + 100 * 1024,
        "RSS grew from {} to {} KiB",
        before.rss_kib,
        after.rss_kib
    );
    drop(held);
    // The node is still whole after the stranger goes.
    drop(h);
    r.still_serving("after the stranger left");
    assert_eq!(r.status()["peers"]["established"], 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_peer_with_a_session_cannot_fill_memory_or_the_store() {
    // Routes flow with the witness only; every other peer (the hostile
    // one) gets the RFC 8212 defaults: everything it sends is rejected.
    let r = rig(|w| Spec {
        policy: Some(format!(
            "[[apply]]\nneighbors = [\"node:{}\"]\ndefault-import = \"accept\"\ndefault-export = \"accept\"\n",
            w.node_id
        )),
        ..Spec::default()
    });
    let pid = r.proc.pid();
    let mut h = Hostile::connect(&r.addr(), &r.node.peer_id).await;
    let open = h.handshake("test", 30).await;
    let node_asn = open.asn;
    wait_for("the hostile session", Duration::from_secs(20), || {
        r.proc
            .established_with(&h.peer_id.to_string())
            .then_some(())
    });
    let before = usage(pid);
    let t0 = Instant::now();

    // 12,000 signed routes in UPDATEs of 1,000: all rejected by policy;
    // at most 10,000 are kept (pre-policy) and stored.
    let batches = 12 * scale();
    for batch in 0..batches {
        let routes = (0..1000)
            .map(|i| h.signed_route(&format!("junk/b{batch}/r{i}"), node_asn))
            .collect();
        let a = h.send(&Hostile::update(routes)).await.expect("UPDATE");
        assert!(a.is_none(), "UPDATE {batch} refused: {a:?}");
    }
    let s = wait_for(
        "the UPDATEs to be processed",
        Duration::from_secs(60),
        || {
            let s = r.proc.try_get("/v1/status")?;
            (s["engine"]["routes_rejected"].as_u64()? >= batches as u64 * 1000).then_some(s)
        },
    );
    assert!(
        s["engine"]["rejected_not_kept"].as_u64().unwrap() >= 2_000,
        "{s}"
    );
    let adj = r.proc.get(&format!("/v1/routes/in/{}", h.peer_id));
    let pre = adj["pre_policy"].as_array().map_or(0, |a| a.len());
    assert!(pre <= 10_000, "{pre} rejected routes kept");
    let after_updates = usage(pid);
    report(
        &format!(
            "{} rejected routes (signed) in {batches} UPDATEs",
            batches * 1000
        ),
        before,
        after_updates,
        t0.elapsed(),
    );
    r.still_serving("after the rejected-route flood");

    // ROUTE-REFRESH flood: answered at most once per 10 s.
    let eor_before = h.count(|m| matches!(m, Message::Update(u) if u.end_of_rib));
    let t1 = Instant::now();
    let refreshes = 300 * scale();
    for _ in 0..refreshes {
        let a = h.send(&Message::RouteRefresh).await.expect("ROUTE-REFRESH");
        assert!(a.is_none());
    }
    let s = wait_for(
        "the refreshes to be counted",
        Duration::from_secs(20),
        || {
            let s = r.proc.try_get("/v1/status")?;
            let deferred = s["engine"]["route_refresh_deferred"].as_u64()?;
            (deferred + 1 + t1.elapsed().as_secs() / 10 >= refreshes as u64).then_some(s)
        },
    );
    let answers = h.count(|m| matches!(m, Message::Update(u) if u.end_of_rib)) - eor_before;
    assert!(
        answers <= 1 + (t1.elapsed().as_secs() as usize / 10),
        "{answers} refresh answers: {s}"
    );
    report(
        &format!("{refreshes} ROUTE-REFRESH"),
        after_updates,
        usage(pid),
        t1.elapsed(),
    );

    // One UPDATE of 2,000 routes with forged origin signatures: checked
    // off the node task, stopped after 16 failures.
    let t2 = Instant::now();
    let forged: Vec<_> = (0..2000)
        .map(|i| {
            let mut rt = h.signed_route(&format!("forged/r{i}"), node_asn);
            let mut p = (**rt.proof.as_ref().unwrap()).clone();
            p.origin.signature.0[0] ^= 0xff;
            rt.proof = Some(Arc::new(p));
            rt
        })
        .collect();
    let a = h
        .send(&Hostile::update(forged))
        .await
        .expect("forged UPDATE");
    assert!(a.is_none());
    let v = wait_for(
        "the forged UPDATE to be checked",
        Duration::from_secs(20),
        || {
            let v = r.proc.try_get("/v1/status")?["verify"].clone();
            (v["aborted_updates"].as_u64()? >= 1).then_some(v)
        },
    );
    assert!(
        v["dropped_by_reason"]["not_checked"].as_u64().unwrap() >= 1000,
        "{v}"
    );
    report(
        "2,000 forged signatures in one UPDATE",
        after_updates,
        usage(pid),
        t2.elapsed(),
    );
    r.still_serving("after the forged signatures");

    // The store holds at most what the bounds allow.
    let store = dir_size(&r.node.dir.join("store"));
    eprintln!("FLOOD store size after the floods: {} KiB", store / 1024);
    assert!(store < 64 << 20, "store is {store} bytes");

    // Path ids without ADD-PATH: the session is reset.
    let mut rt = h.signed_route("pathid/x", node_asn);
    rt.path_id = 9;
    let _ = h.send(&Hostile::update(vec![rt])).await;
    h.notified(ErrorCode::Update, "the NOTIFICATION for the path id")
        .await;
    r.still_serving("after the session reset");
}

fn dir_size(p: &std::path::Path) -> u64 {
    let mut total = 0;
    if let Ok(rd) = std::fs::read_dir(p) {
        for e in rd.flatten() {
            let Ok(m) = e.metadata() else { continue };
            total += if m.is_dir() {
                dir_size(&e.path())
            } else {
                m.len()
            };
        }
    }
    total
}

/// A CALL from the hostile peer for `target`, signed as a real caller
/// would sign it.
fn call(h: &Hostile, leg: u64, target: &Prefix, tool: &str, args: Value, ms: u64) -> Vec<u8> {
    let now = now_ms();
    let mut id = [0u8; 16];
    id[..8].copy_from_slice(&leg.to_le_bytes());
    id[8] = 0x77;
    let mut origin = CallOrigin {
        id: CallId(id),
        caller: h.node_id,
        caller_asn: h.asn,
        communities: Vec::new(),
        target: target.clone(),
        op: CallOp::Tool,
        idempotent: false,
        tool: Some(tool.into()),
        args_digest: agent_bgp::mcp::plane::args_digest(&args),
        issued: now,
        deadline: Millis(now.0 + ms),
        cert: Some(h.identity.cert().clone()),
        signature: None,
    };
    origin.signature = Some(
        h.identity
            .key()
            .sign(&agent_bgp::wire::call::call_signed_bytes(&origin)),
    );
    let c = Call {
        sealed: None,
        leg: LegId(leg),
        hop_limit: 8,
        log_level: None,
        progress: false,
        origin: Arc::new(origin),
        arguments: args,
        trace: None,
    };
    wire::encode(&Frame::Call(CallMessage::Call(c)), &Limits::default()).unwrap()
}

fn answer_kind(bytes: &[u8]) -> String {
    match wire::decode(bytes, &Limits::default()) {
        Ok(Frame::Call(CallMessage::Answer(a))) => match a.answer {
            CallAnswer::Accepted => "accepted".into(),
            CallAnswer::Done(_) => "done".into(),
            CallAnswer::Refused(e) if e.kind == CallErrorKind::Overloaded => {
                if e.message.contains("per second") {
                    "rate".into()
                } else {
                    "overloaded".into()
                }
            }
            CallAnswer::Refused(e) => format!("refused {:?}: {}", e.kind, e.message),
        },
        other => format!("odd answer {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn call_floods_are_held_to_the_peers_share_and_the_front_keeps_working() {
    let agent = format!(
        "\n[[agents]]\nid = \"ex\"\nprefix = \"ex/*\"\ncommand = {BIN:?}\nargs = [\"example-agent\"]\nmax_concurrent_calls = 64\n"
    );
    let r = rig(|_| Spec {
        mcp: "max_calls_per_peer = 20\nmax_calls_per_caller = 20\nmax_call_rate_per_peer = 200\n"
            .into(),
        extra: agent,
        ..Spec::default()
    });
    let pid = r.proc.pid();
    let mut h = Hostile::connect(&r.addr(), &r.node.peer_id).await;
    h.handshake("test", 30).await;
    // The node advertises its agent's tools to us (open policy).
    let wait_route = wait_async("the wait tool's route", Duration::from_secs(30), || {
        h.messages().into_iter().find_map(|m| match m {
            Message::Update(u) => u
                .announce
                .into_iter()
                .find(|rt| rt.prefix.as_str().ends_with("/wait"))
                .map(|rt| rt.prefix),
            _ => None,
        })
    })
    .await;
    let echo = Prefix::new(&wait_route.as_str().replace("/wait", "/echo")).unwrap();
    let before = usage(pid);
    let t0 = Instant::now();

    // 300 CALLs to a tool that waits 20 s: 20 are taken (the peer's
    // share), the rest are refused at once. Each CALL holds its stream
    // until answered, so they go out concurrently.
    let mut tasks = Vec::new();
    for leg in 1..=300u64 {
        let bytes = call(&h, leg, &wait_route, "wait", json!({"ms": 20_000}), 30_000);
        let mut s = h.stream(CALL_PROTOCOL).await.expect("call stream");
        tasks.push(tokio::spawn(async move {
            s.write_all(&bytes).await.ok()?;
            s.close().await.ok()?;
            hostile_peer::read_all(&mut s, 1 << 20).await.ok()
        }));
    }
    let mut kinds = std::collections::BTreeMap::<String, usize>::new();
    for t in tasks {
        let got = tokio::time::timeout(Duration::from_secs(15), t).await;
        let k = match got {
            Ok(Ok(Some(b))) => answer_kind(&b),
            _ => "held".into(),
        };
        *kinds.entry(k).or_default() += 1;
    }
    eprintln!("answers to 300 slow CALLs: {kinds:?}");
    let taken =
        kinds.get("accepted").copied().unwrap_or(0) + kinds.get("held").copied().unwrap_or(0);
    assert!(taken <= 20, "{kinds:?}");
    assert!(
        kinds.get("overloaded").copied().unwrap_or(0) >= 270,
        "{kinds:?}"
    );
    let m = r.proc.get("/v1/mcp");
    assert!(
        m["forwarder"]["quota"]["peer_calls"].as_u64().unwrap() >= 270,
        "{m}"
    );

    // Meanwhile the node's own front still calls tools (its reserve).
    let front = r.proc.mcp_url();
    let echoed = {
        use rmcp::ServiceExt;
        let c = ()
            .serve(rmcp::transport::StreamableHttpClientTransport::from_uri(
                front.as_str(),
            ))
            .await
            .expect("connect to the front");
        let res = c
            .call_tool(
                rmcp::model::CallToolRequestParams::new("echo")
                    .with_arguments(json!({"text": "still here"}).as_object().unwrap().clone()),
            )
            .await;
        let _ = c.cancel().await;
        res
    };
    let echoed = echoed.expect("a front call during the flood");
    assert_ne!(echoed.is_error, Some(true), "{echoed:?}");
    let status = r.status();
    assert!(status["peers"]["established"].as_u64().unwrap() >= 2);
    r.still_serving("during the slow-call flood");

    // Fast CALLs over the rate: 200 a second, bursts of 400. They go in
    // waves of 200, each CALL on its own stream at once, until the limiter
    // refuses some (a machine that handles them slowly needs more waves:
    // the bound below is what is checked, not how fast the node is).
    let t1 = Instant::now();
    let mut rate_refused = 0u64;
    let mut sent = 0u64;
    let most = 6000 * scale() as u64;
    let mut leg = 1000u64;
    while rate_refused == 0 && sent < most {
        let mut tasks = Vec::new();
        for _ in 0..200 {
            leg += 1;
            let bytes = call(&h, leg, &echo, "echo", json!({"text": "x"}), 10_000);
            let Ok(mut s) = h.stream(CALL_PROTOCOL).await else {
                continue;
            };
            sent += 1;
            tasks.push(tokio::spawn(async move {
                s.write_all(&bytes).await.ok()?;
                s.close().await.ok()?;
                hostile_peer::read_all(&mut s, 1 << 20).await.ok()
            }));
        }
        for t in tasks {
            if let Ok(Ok(Some(a))) = tokio::time::timeout(Duration::from_secs(15), t).await
                && answer_kind(&a) == "rate"
            {
                rate_refused += 1;
            }
        }
    }
    let secs = t1.elapsed().as_secs_f64();
    eprintln!("{sent} fast CALLs in {secs:.1} s: {rate_refused} refused by the rate limit");
    let allowed_max = 400.0 + 200.0 * secs;
    assert!(
        (sent - rate_refused) as f64 <= allowed_max + 1.0,
        "{rate_refused} of {sent} refused in {secs:.1} s"
    );
    assert!(
        rate_refused > 0,
        "{sent} CALLs and none refused by the rate"
    );

    // Call frames started and never finished: 40 streams of 900 KiB each,
    // held open. The connection's budget (16 MiB) stops the reads; the
    // frames over it are reset, and nothing stays charged once they go.
    let mut open_streams = Vec::new();
    let part = vec![0xa5u8; 900 << 10];
    for _ in 0..40 {
        if let Ok(mut s) = h.stream(CALL_PROTOCOL).await {
            let _ = tokio::time::timeout(Duration::from_millis(500), s.write_all(&part)).await;
            open_streams.push(s);
        }
    }
    let inbound = wait_for(
        "the connection budget to refuse",
        Duration::from_secs(20),
        || {
            let i = r.proc.try_get("/v1/status")?["inbound"].clone();
            (i["over_connection_budget"].as_u64()? >= 1).then_some(i)
        },
    );
    eprintln!("half-written call frames: {inbound}");
    // The connection's own peak: the node-wide one also counts what other
    // connections (the witness's) hold at the same moment.
    assert!(
        inbound["peak_connection_bytes"].as_u64().unwrap() <= 16 << 20,
        "never more than the connection's budget: {inbound}"
    );
    r.still_serving("with the connection's budget spent");
    drop(open_streams);
    wait_for(
        "the budget to be given back",
        Duration::from_secs(40),
        || {
            let i = r.proc.try_get("/v1/status")?["inbound"].clone();
            (i["bytes_in_use"].as_u64()? == 0).then_some(())
        },
    );

    // PROGRESS for legs never used: ignored, no CANCEL comes back.
    let calls_before = h.received.lock().unwrap().len();
    let stray = 5000 * scale() as u64;
    for leg in 0..stray {
        let p = CallMessage::Progress(Progress {
            leg: LegId(9_000_000 + leg),
            info: ProgressInfo {
                progress: 1.0,
                total: None,
                message: None,
            },
        });
        let bytes = wire::encode(&Frame::Call(p), &Limits::default()).unwrap();
        let _ = h.request(CALL_PROTOCOL, &bytes).await;
    }
    let after = usage(pid);
    report(
        &format!(
            "300 slow CALLs, {sent} fast CALLs, 40 half-written 900 KiB call frames, {stray} stray PROGRESS"
        ),
        before,
        after,
        t0.elapsed(),
    );
    let cancels = h.received.lock().unwrap()[calls_before..]
        .iter()
        .filter(|m| matches!(m, Err(k) if k.contains("CANCEL")))
        .count();
    assert_eq!(cancels, 0, "no CANCEL for legs never used");
    assert!(after.rss_kib < before.rss_kib + 150 * 1024);
    r.still_serving("after the call floods");
}

/// Counts the progress notifications an MCP client receives.
#[derive(Clone, Default)]
struct ProgressCounter(Arc<std::sync::atomic::AtomicUsize>);

impl rmcp::ClientHandler for ProgressCounter {
    async fn on_progress(
        &self,
        _: rmcp::model::ProgressNotificationParam,
        _: rmcp::service::NotificationContext<rmcp::RoleClient>,
    ) {
        self.0.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_next_hop_that_swallows_calls_floods_progress_and_sends_huge_descriptors_holds_little() {
    use agent_bgp::core::attrs::{AttrValue, ExtraAttr};
    use agent_bgp::core::call::{DESCRIPTOR_ATTR, TOOL_ATTR};
    use rmcp::ServiceExt;
    use rmcp::model::{CallToolRequestParams, NumberOrString, ProgressToken, RequestParamsMeta};

    let r = rig(|_| Spec {
        mcp: "call_timeout = \"6s\"\nmax_calls_per_peer = 3\n".into(),
        ..Spec::default()
    });
    let pid = r.proc.pid();
    let mut h = Hostile::connect(&r.addr(), &r.node.peer_id).await;
    let node_asn = h.handshake("test", 30).await.asn;
    // The hostile peer swallows CALLs ("accepted", then nothing) and
    // answers DESCRIBE with a 1 MiB descriptor.
    *h.call_behaviour.lock().unwrap() = hostile_peer::CallBehaviour::Accept {
        describe: Some(json!({
            "name": "evil",
            "description": "x".repeat(1 << 20),
            "inputSchema": {"type": "object"}
        })),
    };
    let route = h.signed_route_with("evil/tool", node_asn, |a| {
        a.extra.insert(
            TOOL_ATTR.into(),
            ExtraAttr {
                transitive: true,
                value: AttrValue::Text("evil".into()),
            },
        );
        a.extra.insert(
            DESCRIPTOR_ATTR.into(),
            ExtraAttr {
                transitive: true,
                value: AttrValue::Bytes(vec![7u8; 16].into()),
            },
        );
    });
    assert!(
        h.send(&Hostile::update(vec![route]))
            .await
            .unwrap()
            .is_none()
    );
    wait_for("the hostile tool's route", Duration::from_secs(20), || {
        r.proc.route("evil/tool")
    });
    // The node's front fetches the descriptor and refuses the oversized one.
    let m = wait_for("the refused descriptor", Duration::from_secs(20), || {
        let m = r.proc.try_get("/v1/mcp")?;
        (m["metrics"]["descriptor_fetch_failures"].as_u64()? >= 1).then_some(m)
    });
    assert_eq!(m["metrics"]["descriptors_cached"], 0, "{m}");
    let before = usage(pid);
    let t0 = Instant::now();

    // Four front calls to the black hole at once: three go (its share of
    // this node's calls), the fourth is refused at once.
    let front = r.proc.mcp_url();
    let counter = ProgressCounter::default();
    let client = counter
        .clone()
        .serve(rmcp::transport::StreamableHttpClientTransport::from_uri(
            front.as_str(),
        ))
        .await
        .expect("connect to the front");
    let client = Arc::new(client);
    let tool_calls = |h: &Hostile| -> Vec<LegId> {
        h.calls
            .lock()
            .unwrap()
            .iter()
            .filter(|c| c.origin.op == CallOp::Tool)
            .map(|c| c.leg)
            .collect()
    };
    let mut calls = Vec::new();
    for i in 0..4 {
        let c = client.clone();
        calls.push(tokio::spawn(async move {
            let mut p = CallToolRequestParams::new("call_capability").with_arguments(
                json!({"capability": "evil/tool", "arguments": {}})
                    .as_object()
                    .unwrap()
                    .clone(),
            );
            p.set_progress_token(ProgressToken(NumberOrString::Number(i)));
            c.call_tool(p).await
        }));
        // One at a time (the raw-stream harness drops streams that arrive
        // while it is taking another).
        if i < 3 {
            wait_async(
                "the CALL at the black hole",
                Duration::from_secs(10),
                || (tool_calls(&h).len() > i as usize).then_some(()),
            )
            .await;
        }
    }
    let legs = tool_calls(&h);
    assert_eq!(legs.len(), 3);
    // 3,000 PROGRESS for those calls, as fast as the streams go.
    let flood = 3_000 * scale() as u64;
    let t1 = Instant::now();
    for i in 0..flood {
        let p = CallMessage::Progress(Progress {
            leg: legs[(i as usize) % legs.len()],
            info: ProgressInfo {
                progress: i as f64,
                total: None,
                message: Some("flood".into()),
            },
        });
        let bytes = wire::encode(&Frame::Call(p), &Limits::default()).unwrap();
        let _ = h.request(CALL_PROTOCOL, &bytes).await;
    }
    let flood_secs = t1.elapsed().as_secs_f64();
    r.still_serving("during the PROGRESS flood");
    let mut outcomes = Vec::new();
    for c in calls {
        let r = tokio::time::timeout(Duration::from_secs(20), c).await;
        outcomes.push(match r {
            Ok(Ok(Ok(res))) => format!("{:?}", res.content),
            Ok(Ok(Err(e))) => e.to_string(),
            other => format!("{other:?}"),
        });
    }
    let progress = counter.0.load(std::sync::atomic::Ordering::Relaxed);
    let after = usage(pid);
    report(
        &format!("black-hole next hop: 4 front calls, {flood} PROGRESS in {flood_secs:.1} s"),
        before,
        after,
        t0.elapsed(),
    );
    eprintln!("the client saw {progress} progress notifications; outcomes: {outcomes:?}");
    // At most one relayed per 50 ms per call while it lives, plus the
    // first PROGRESS_BURST of each, which go at once.
    let window = t0.elapsed().as_secs_f64();
    let burst = agent_bgp::core::forward::PROGRESS_BURST as usize;
    let bound = 3 * ((window * 20.0) as usize + burst + 1);
    assert!(progress <= bound, "{progress} > {bound}");
    assert!(progress > 0, "progress still gets through");
    let overloaded = outcomes.iter().filter(|o| o.contains("its share")).count();
    let timed_out = outcomes
        .iter()
        .filter(|o| o.contains("deadline") || o.contains("timeout"))
        .count();
    assert_eq!((overloaded, timed_out), (1, 3), "{outcomes:?}");
    let m = r.proc.get("/v1/mcp");
    assert!(
        m["forwarder"]["progress_coalesced"].as_u64().unwrap() > 0,
        "{m}"
    );
    assert_eq!(m["forwarder"]["quota"]["next_hop_full"], 1, "{m}");
    assert!(after.rss_kib < before.rss_kib + 100 * 1024);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn auto_peer_slots_go_to_newcomers_and_strangers_cannot_hold_them() {
    // Two slots; an auto peer idle for 2 s may lose its slot.
    let r = rig(|_| Spec {
        max_auto_peers: 2,
        extra: String::new(),
        ..Spec::default()
    });
    let cfg = r.node.dir.join("node.toml");
    let text = std::fs::read_to_string(&cfg).unwrap().replace(
        "max_auto_peers = 2",
        "max_auto_peers = 2\nauto_peer_idle = \"2s\"\nauto_peer_max_prefix = 50",
    );
    std::fs::write(&cfg, text).unwrap();
    drop(r.proc);
    let r = Rig {
        proc: Proc::start(&r.node),
        ..r
    };
    wait_for("the witness session", Duration::from_secs(30), || {
        r.proc.established_with(&r.witness.peer_id).then_some(())
    });

    // Hold time 0 is refused from a discovered peer.
    let mut zero = Hostile::connect(&r.addr(), &r.node.peer_id).await;
    let _ = zero.send(&zero.open_message("test", 0)).await;
    zero.notified(ErrorCode::Open, "the refusal of hold time 0")
        .await;

    // Two strangers take both slots and send nothing the policy takes.
    let mut a = Hostile::connect(&r.addr(), &r.node.peer_id).await;
    a.handshake("test", 30).await;
    let mut b = Hostile::connect(&r.addr(), &r.node.peer_id).await;
    b.handshake("test", 30).await;
    wait_for("both auto peers up", Duration::from_secs(10), || {
        (r.status()["peers"]["auto"] == 2).then_some(())
    });

    // A third is refused while they are fresh...
    let mut c = Hostile::connect(&r.addr(), &r.node.peer_id).await;
    let answer = c.send(&c.open_message("test", 30)).await.unwrap();
    assert!(notification(&answer).is_some(), "no slot yet: {answer:?}");
    // ...and gets one once they have been idle: the newest (b) goes.
    // Idle is the node's own judgement (up for auto_peer_idle, no route
    // accepted): wait until its clock says both sessions are that old.
    wait_for(
        "both auto peers idle for 2 s",
        Duration::from_secs(15),
        || {
            let now = r.status()["now_ms"].as_u64()?;
            let idle = |p: String| {
                r.proc
                    .peer(&p)
                    .and_then(|v| v["established_since"].as_u64())
                    .is_some_and(|since| since + 2_000 < now)
            };
            (idle(a.peer_id.to_string()) && idle(b.peer_id.to_string())).then_some(())
        },
    );
    let mut c = Hostile::connect(&r.addr(), &r.node.peer_id).await;
    c.handshake("test", 30).await;
    wait_for("the newcomer's session", Duration::from_secs(10), || {
        r.proc
            .established_with(&c.peer_id.to_string())
            .then_some(())
    });
    assert!(r.proc.established_with(&a.peer_id.to_string()), "a stays");
    assert!(
        !r.proc.established_with(&b.peer_id.to_string()),
        "b was evicted"
    );
    let pb = r.proc.peer(&b.peer_id.to_string());
    assert!(
        pb.as_ref().is_none_or(|p| p["state"] != "established"),
        "{pb:?}"
    );

    // A discovered peer's max-prefix (50 here): more accepted routes reset it.
    let node_asn = Asn(r.status()["asn"].as_u64().unwrap() as u32);
    let routes = (0..60)
        .map(|i| c.signed_route(&format!("c/r{i}"), node_asn))
        .collect();
    let _ = c.send(&Hostile::update(routes)).await;
    c.notified(ErrorCode::Cease, "the max-prefix NOTIFICATION")
        .await;
    r.still_serving("after the slot changes");
}
